import { Type } from '@sinclair/typebox';

/** A port, 1 to 65535, leading zeros allowed (a regular expression, so that `hades config check` reports it in place). */
const PORT = '0*(6553[0-5]|655[0-2]\\d|65[0-4]\\d{2}|6[0-4]\\d{3}|[1-5]\\d{4}|[1-9]\\d{0,3})';

/** A host of `host:port`: a name or IPv4 address (no colon), or an IPv6 address in brackets, with a zone id. */
const HOST = '([^\\s:\\[\\]/]+|\\[[0-9A-Fa-f:.]+(%[\\w.-]+)?\\])';

/**
 * `host:port` to connect to: a name, an IPv4 address or an IPv6 address in brackets (with a zone
 * id; unbracketed, its last group would be read as the port), or a gRPC target
 * (`dns:///gw.example:7443`, `ipv4:10.0.0.1:7443`), passed as it is.
 */
export const HOST_PORT = `^((dns|ipv4|ipv6|unix):\\S+|${HOST}:${PORT})$`;
/** `host:port` as given to agents: an IPv6 address in brackets (unbracketed, agents misread it). */
export const ADVERTISED_HOST_PORT = `^${HOST}:${PORT}$`;
/** `host:port` to listen on: the host may be empty (`:7080`, every address) or an IPv6 address with or without brackets; port 0 picks a free one. */
export const LISTEN_HOST_PORT = `^[^\\s]*:(0+|${PORT})$`;
/** A host name or address a certificate names: a DNS name, IPv4 or IPv6 (no brackets). */
export const CERT_HOST = '^([A-Za-z0-9*]([A-Za-z0-9._-]*[A-Za-z0-9])?|[0-9A-Fa-f:.]+)$';

export const LogLevel = Type.Union(
  [Type.Literal('debug'), Type.Literal('info'), Type.Literal('warn'), Type.Literal('error')],
  { default: 'info', description: 'Least severe level written.' },
);

export const LogConfig = Type.Object(
  {
    level: LogLevel,
    file: Type.Union([Type.String({ minLength: 1 }), Type.Null()], {
      default: null,
      description: 'Path of the log file; null writes to standard error.',
    }),
    max_mb: Type.Integer({ minimum: 1, maximum: 1024, default: 16, description: 'Size at which the log file rotates.' }),
    max_files: Type.Integer({ minimum: 1, maximum: 100, default: 5, description: 'Rotated files kept.' }),
    write_kb_per_s: Type.Integer({
      minimum: 0,
      maximum: 1_048_576,
      default: 1024,
      description: 'Disk write rate limit for logs in KiB/s (bursts of four seconds pass); lines over it are dropped and counted. 0 is unlimited.',
    }),
  },
  { additionalProperties: false, default: {}, description: 'Structured JSON logging.' },
);
