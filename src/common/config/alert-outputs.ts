/**
 * Configuration of the server's alert outputs (`alerts.outputs`): a list of outputs, each a
 * webhook, a syslog receiver or an NDJSON file, with the settings of its type in a section
 * named after the type. Settings of the type are nested rather than flat so that every key
 * keeps `additionalProperties: false` and a precise error: a union of flat objects would
 * reduce any mistake to "does not match any output type". What a schema cannot say (the
 * section matches the type, names are unique, the URL parses) is checked by
 * `checkAlertOutputs`, with the code HADES_ERR_ALERT_OUTPUT_CONFIG; the TLS files the outputs
 * name are read and checked by the server's `checkAlertOutputFiles` (outputs/transport.ts).
 *
 * docs/alert-outputs.md describes every key; a test checks that it names them all.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { ConfigProblem } from './validate.js';

/** The rule engine's severities (src/rules/schema.ts, which this layer may not import), least severe first. */
export const ALERT_SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;

const Severity = Type.Union(
  [Type.Literal('info'), Type.Literal('low'), Type.Literal('medium'), Type.Literal('high'), Type.Literal('critical')],
  { default: 'info', description: 'Least severe alert sent to this output (info < low < medium < high < critical).' },
);

const AbsolutePath = (description: string) => Type.Union([Type.String({ minLength: 1, pattern: '^/', description: 'an absolute path' }), Type.Null()], { default: null, description });

export const AlertOutputTls = Type.Object(
  {
    ca_file: AbsolutePath('PEM file of the CA certificates that verify the receiver; null: the system\'s CAs.'),
    cert_file: AbsolutePath('PEM client certificate, for receivers that require TLS client authentication (with key_file).'),
    key_file: AbsolutePath('PEM private key of cert_file.'),
    insecure: Type.Boolean({ default: false, description: 'Do not verify the receiver\'s certificate (logged as a warning at every start). For tests only.' }),
  },
  { additionalProperties: false, default: {}, description: 'TLS towards the receiver (https:// webhooks, syslog over TLS).' },
);

export const WebhookOutput = Type.Object(
  {
    url: Type.String({
      minLength: 1,
      maxLength: 2048,
      pattern: '^https?://',
      description: 'an http:// or https:// URL, where alerts are POSTed (may hold a secret, as chat webhook URLs do: only its origin is ever logged)',
      // Configuration problems do not repeat it (validate.ts).
      secret: true,
    }),
    format: Type.Union([Type.Literal('json'), Type.Literal('chat')], {
      default: 'json',
      description: 'json: the alert document itself; chat: a `{"text": ...}` message for Slack and Mattermost incoming webhooks.',
    }),
    chat_dialect: Type.Union([Type.Literal('slack'), Type.Literal('mattermost')], {
      default: 'slack',
      description: 'With format chat: the markup of the text, which the two differ on (escaping of &, < and >).',
    }),
    link_base_url: Type.Union([Type.String({ minLength: 1, maxLength: 1024, pattern: '^https?://', description: 'an http:// or https:// URL' }), Type.Null()], {
      default: null,
      description: 'With format chat: the alert id is appended to this URL to make a link to the alert (e.g. https://hades.example.org/alerts/); null: no link.',
    }),
    headers: Type.Record(Type.String({ pattern: '^[A-Za-z0-9!#$%&\'*+.^_`|~-]+$' }), Type.String({ secret: true }), {
      // Without it, TypeBox lets names that do not match the pattern through.
      additionalProperties: false,
      default: {},
      description: 'Extra request headers, such as an authorization token; their values are never logged.',
    }),
    timeout_ms: Type.Integer({ minimum: 100, maximum: 600_000, default: 10_000, description: 'A request without a complete answer after this long fails with HADES_ERR_ALERT_OUTPUT_TIMEOUT.' }),
    tls: AlertOutputTls,
  },
  { additionalProperties: false, description: 'An HTTP(S) receiver: one POST per alert; any 2xx answer counts as delivered.' },
);

export const SYSLOG_FACILITIES = [
  'kern', 'user', 'mail', 'daemon', 'auth', 'syslog', 'lpr', 'news', 'uucp', 'cron', 'authpriv', 'ftp', 'ntp', 'audit', 'alert', 'clock',
  'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7',
] as const;
export type SyslogFacility = (typeof SYSLOG_FACILITIES)[number];

export const SyslogOutput = Type.Object(
  {
    transport: Type.Union([Type.Literal('udp'), Type.Literal('tcp'), Type.Literal('tls')], {
      default: 'tls',
      description: 'udp (RFC 5426, one datagram per alert), tcp (RFC 6587) or tls (RFC 5425); tcp and tls frame messages by octet counting.',
    }),
    host: Type.String({ minLength: 1, maxLength: 253, pattern: '^[^\\s/]+$', description: 'a host name or address, without a port' }),
    port: Type.Union([Type.Integer({ minimum: 1, maximum: 65_535 }), Type.Null()], { default: null, description: 'Port of the receiver; null: 514 for udp and tcp, 6514 for tls.' }),
    facility: Type.Union(
      SYSLOG_FACILITIES.map((f) => Type.Literal(f)),
      { default: 'local0', description: 'Syslog facility of the messages (the PRI is facility * 8 + severity).' },
    ),
    app_name: Type.String({ minLength: 1, maxLength: 48, pattern: '^[!-~]+$', default: 'hades', description: 'APP-NAME of the messages (printable ASCII, no spaces).' }),
    hostname: Type.Union([Type.String({ minLength: 1, maxLength: 255, pattern: '^[!-~]+$', description: 'printable ASCII without spaces' }), Type.Null()], {
      default: null,
      description: 'HOSTNAME of the messages; null: the server\'s host name. The host the alert is about is in the structured data (host=).',
    }),
    max_message_bytes: Type.Integer({
      minimum: 480,
      maximum: 65_507,
      default: 8192,
      description: 'Largest message, header included; a longer one is sent without the alert\'s events, then cut, and counted as truncated.',
    }),
    timeout_ms: Type.Integer({ minimum: 100, maximum: 600_000, default: 10_000, description: 'Longest wait to look the host name up (udp), to connect, to hand a message to the connection, and (tcp, tls) for the receiver\'s TCP to acknowledge more of what was written before the connection is taken as dead.' }),
    tls: AlertOutputTls,
  },
  { additionalProperties: false, description: 'A syslog receiver (RFC 5424 messages).' },
);

export const FileOutput = Type.Object(
  {
    path: Type.String({ minLength: 1, pattern: '^/', description: 'an absolute path; rotated files get .1, .2, ...' }),
    max_mb: Type.Integer({ minimum: 1, maximum: 1_048_576, default: 100, description: 'Size at which the file rotates.' }),
    keep: Type.Integer({ minimum: 1, maximum: 1000, default: 5, description: 'Rotated files kept besides the current one.' }),
  },
  { additionalProperties: false, description: 'An NDJSON file: one alert per line.' },
);

export const AlertOutputRetry = Type.Object(
  {
    max_attempts: Type.Integer({
      minimum: 0,
      maximum: 1000,
      default: 5,
      description: 'Attempts at one alert that the receiver answered with an error (a 5xx status, a timeout after the request was sent) before the alert is given up and counted as failed; 0: no limit. While the receiver cannot be reached at all, alerts wait in the queue instead.',
    }),
    backoff_ms: Type.Integer({ minimum: 1, maximum: 600_000, default: 500, description: 'Wait after the first failure; it doubles with every further failure in a row (with jitter).' }),
    backoff_max_ms: Type.Integer({ minimum: 1, maximum: 3_600_000, default: 60_000, description: 'Longest wait between two attempts.' }),
  },
  { additionalProperties: false, default: {}, description: 'Retries after a failure.' },
);

export const AlertOutputConfig = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-z0-9][a-z0-9_-]*$', description: 'lower-case letters, digits, _ and -, unique among the outputs' }),
    type: Type.Union([Type.Literal('webhook'), Type.Literal('syslog'), Type.Literal('file')], {
      description: 'Kind of output; its settings go in the section of the same name.',
    }),
    min_severity: Severity,
    queue: Type.Integer({
      minimum: 1,
      maximum: 1_000_000,
      default: 1000,
      description: 'Alerts held in memory while the receiver is slow or down (besides the one being delivered); when full, the oldest is dropped and counted.',
    }),
    queue_mb: Type.Integer({
      minimum: 1,
      maximum: 4096,
      default: 64,
      description: 'Most MiB of alerts held in the queue, counted as the memory their JSON takes (two bytes a character when one is beyond U+00FF): an alert keeps up to max_events events, so a count alone does not bound memory; past it the oldest is dropped and counted, as when the queue is full. One alert larger than this is still held alone.',
    }),
    retry: AlertOutputRetry,
    webhook: Type.Optional(WebhookOutput),
    syslog: Type.Optional(SyslogOutput),
    file: Type.Optional(FileOutput),
  },
  { additionalProperties: false, description: 'One alert output.' },
);

/** The `alerts.outputs` list. Empty by default: alerts stay in the store and the API. */
export const AlertOutputsConfig = Type.Array(AlertOutputConfig, {
  default: [],
  maxItems: 32,
  description: 'Where alerts are sent besides the store: webhooks, syslog receivers, NDJSON files.',
});

export type AlertOutputsConfig = Static<typeof AlertOutputsConfig>;
export type AlertOutputConfig = Static<typeof AlertOutputConfig>;
export type AlertOutputType = AlertOutputConfig['type'];
export type WebhookOutputConfig = Static<typeof WebhookOutput>;
export type SyslogOutputConfig = Static<typeof SyslogOutput>;
export type FileOutputConfig = Static<typeof FileOutput>;
export type AlertOutputTlsConfig = Static<typeof AlertOutputTls>;
export type AlertOutputRetryConfig = Static<typeof AlertOutputRetry>;

const TYPES: readonly AlertOutputType[] = ['webhook', 'syslog', 'file'];
/** Headers the HTTP client sets itself. */
const RESERVED_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'content-type']);
/** A header value HTTP can carry: tabs, printable ASCII, and the bytes 0x80 to 0xFF (Latin-1). */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * What the schema cannot check: every output has the section of its type and no other, names
 * are unique, URLs parse, TLS settings are complete and apply to the transport. `base` is
 * the key path of the list in the configuration file.
 */
export function checkAlertOutputs(outputs: AlertOutputsConfig, base = 'alerts.outputs'): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const problem = (path: string, message: string) => problems.push({ code: 'HADES_ERR_ALERT_OUTPUT_CONFIG', path, message });
  const names = new Set<string>();
  const files = new Map<string, string>();
  outputs.forEach((output, index) => {
    const at = `${base}.${index}`;
    const label = `output '${output.name}'`;
    if (names.has(output.name)) problem(`${at}.name`, `${label}: the name is used by an earlier output`);
    names.add(output.name);
    if (output[output.type] === undefined) problem(`${at}.${output.type}`, `${label} has type ${output.type} but no '${output.type}' section`);
    for (const other of TYPES) {
      if (other !== output.type && output[other] !== undefined) problem(`${at}.${other}`, `${label} has type ${output.type}: the '${other}' section does not apply`);
    }
    if (output.retry.backoff_max_ms < output.retry.backoff_ms) problem(`${at}.retry.backoff_max_ms`, `${label}: backoff_max_ms is below backoff_ms`);
    const webhook = output.type === 'webhook' ? output.webhook : undefined;
    if (webhook) {
      checkUrl(webhook.url, `${at}.webhook.url`, label, problem);
      if (webhook.link_base_url !== null) checkUrl(webhook.link_base_url, `${at}.webhook.link_base_url`, label, problem);
      for (const [name, value] of Object.entries(webhook.headers)) {
        if (RESERVED_HEADERS.has(name.toLowerCase())) problem(`${at}.webhook.headers.${name}`, `${label}: the header ${name} is set by Hades itself`);
        // The value may be a secret: the message does not repeat it (a schema pattern would).
        // HTTP carries tabs, printable ASCII and Latin-1 (what Node's client takes): with any other
        // character (a control character, a typographic quote pasted in) every request would throw.
        if (!HEADER_VALUE.test(value) || value.length > 8192) {
          problem(`${at}.webhook.headers.${name}`, `${label}: the value of the header ${name} must be one line of at most 8192 characters, printable ASCII or Latin-1 (no control character, no character beyond U+00FF)`);
        }
      }
      if (webhook.url.startsWith('http://') && hasTlsSettings(webhook.tls)) problem(`${at}.webhook.tls`, `${label}: tls settings need an https:// URL`);
      checkTls(webhook.tls, `${at}.webhook.tls`, label, problem);
    }
    const file = output.type === 'file' ? output.file : undefined;
    if (file) {
      const path = normalPath(file.path);
      // Problems that would fail every write for good, found when the server runs: refused now.
      if (/\/\.{0,2}$/.test(file.path) || path === '/') problem(`${at}.file.path`, `${label}: ${file.path} names a folder; give the file's path, such as ${path === '/' ? '' : path}/alerts.ndjson`);
      else if (/^\/(proc|sys|dev)(\/|$)/.test(path)) problem(`${at}.file.path`, `${label}: ${file.path} is in /${path.split('/')[1]}, where no file can be appended to and rotated`);
      // Two writers of one file would rotate it under each other and interleave their lines; one
      // whose file is another's rotated name (alerts.ndjson.1) would have its lines moved and
      // deleted by the other's rotations.
      for (const [other, name] of files) {
        if (other === path) problem(`${at}.file.path`, `${label}: the file is written by output '${name}' already`);
        else if (rotatedName(other, path) || rotatedName(path, other)) problem(`${at}.file.path`, `${label}: ${path} and the file of output '${name}' (${other}) are one the other's rotated file: their rotations would move and delete each other's alerts`);
      }
      if (!files.has(path)) files.set(path, output.name);
    }
    const syslog = output.type === 'syslog' ? output.syslog : undefined;
    if (syslog) {
      // host:port (not an IPv6 address, which has several colons) is a port in the wrong key.
      const hostPort = /^([^:]+):(\d{1,5})$/.exec(syslog.host);
      if (hostPort) problem(`${at}.syslog.host`, `${label}: host '${syslog.host}' includes a port; write host: ${hostPort[1]} and port: ${hostPort[2]}`);
      // [::1] or [::1]:514, as in a URL: no address has brackets, so it would never connect.
      const bracketed = /^\[([^\]]*)\](?::(\d{1,5}))?$/.exec(syslog.host);
      if (bracketed) problem(`${at}.syslog.host`, `${label}: host '${syslog.host}' is written as in a URL; write host: ${JSON.stringify(bracketed[1])}${bracketed[2] ? ` and port: ${bracketed[2]}` : ''}`);
      if (syslog.transport !== 'tls' && hasTlsSettings(syslog.tls)) problem(`${at}.syslog.tls`, `${label}: tls settings need transport: tls`);
      checkTls(syslog.tls, `${at}.syslog.tls`, label, problem);
    }
  });
  return problems;
}

/** Whether `name` is one of the rotated files of `base` (base.1, base.2, ...). */
function rotatedName(base: string, name: string): boolean {
  return name.startsWith(`${base}.`) && /^[0-9]+$/.test(name.slice(base.length + 1));
}

/** An absolute path without `.`, `..` and repeated slashes (no I/O: links are not followed). */
function normalPath(absolute: string): string {
  const parts: string[] = [];
  for (const part of absolute.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return `/${parts.join('/')}`;
}

function checkUrl(text: string, path: string, label: string, problem: (path: string, message: string) => void): void {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    // The text may hold a secret: it is not repeated.
    problem(path, `${label}: the URL does not parse`);
    return;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') problem(path, `${label}: the URL must be http:// or https://`);
  else if (url.hostname === '') problem(path, `${label}: the URL has no host`);
}

function hasTlsSettings(tls: AlertOutputTlsConfig): boolean {
  return tls.ca_file !== null || tls.cert_file !== null || tls.key_file !== null || tls.insecure;
}

function checkTls(tls: AlertOutputTlsConfig, path: string, label: string, problem: (path: string, message: string) => void): void {
  if ((tls.cert_file === null) !== (tls.key_file === null)) problem(path, `${label}: cert_file and key_file go together`);
}
