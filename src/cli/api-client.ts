/**
 * The `hades` command's client of the REST API. By default it talks to the local deployment:
 * the server configuration (--config, else the file HADES_SERVER_CONFIG names, else
 * /etc/hades/server.yaml when it exists, else the defaults) gives the API address and the data folder, where the server keeps its CA and the
 * admin token. `--server URL --token TOKEN` (and HADES_API_TOKEN) point it elsewhere, with
 * `--ca FILE` (or HADES_API_CA) the CA certificate that server's certificate must chain to (each
 * deployment has a CA of its own; the local one's is used when there is one).
 */
import { readOwnFile } from '../runtime/regular-file.js';
import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import type { ServerConfig } from '../common/config/index.js';
import { HadesError, isErrorCode } from '../common/errors.js';
import { TIME_BOUND_FORMS, timeBound } from '../common/time-bound.js';
import { caFile, localCredentials } from '../server/local-files.js';
import { loadRoleConfig } from './commands/config.js';
import { shown } from './terminal.js';
import { gatherAnswer } from '../runtime/bounded-answer.js';

export const loadServerConfig = (options: Readonly<Record<string, unknown>>, checks: { readonly files?: boolean } = {}): Promise<{ config: ServerConfig; file: string | undefined }> => {
  // A deployment started elsewhere (hades start --data DIR) is named once for a whole shell.
  // Not for another server (--server): its address and token are given, this one's are not wanted.
  const fromEnv = typeof options['server'] === 'string' ? undefined : process.env['HADES_SERVER_CONFIG'];
  if (typeof options['config'] === 'string' || !fromEnv) return loadRoleConfig('server', options, checks);
  return loadRoleConfig('server', { ...options, config: fromEnv }, checks).catch((error: unknown) => {
    const e = error instanceof HadesError ? error : new HadesError('HADES_ERR_CONFIG_READ', String(error));
    throw new HadesError(e.code, `${e.message} (the file HADES_SERVER_CONFIG names)`, { cause: e });
  });
};

export interface ApiClient {
  readonly base: string;
  get(path: string, query?: Record<string, string | string[] | undefined>): Promise<unknown>;
  post(path: string, body: unknown): Promise<unknown>;
  /** `headers`: more request headers (If-Match). */
  patch(path: string, body: unknown, headers?: Readonly<Record<string, string>>): Promise<unknown>;
  put(path: string, body: unknown): Promise<unknown>;
  delete(path: string): Promise<unknown>;
}

/**
 * Refuses a --since or --until the server would refuse, before anything is sent (so that a typo
 * is a usage error even when the server is down).
 */
export function checkTimeBounds(options: Readonly<Record<string, unknown>>): void {
  for (const name of ['since', 'until']) {
    const value = options[name];
    if (typeof value === 'string' && timeBound(value, Date.now(), 'local') === undefined) throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', `--${name} '${value}' is not ${TIME_BOUND_FORMS}`);
  }
}

/**
 * --since (else `defaultSince`) and --until as ISO times, read once: a relative bound (`1h`) read
 * again at each page would move the window under the cursor, and the next page, asked for
 * minutes later, would miss the oldest events of the first. `again` is what to pass for the
 * same window later (empty when both were given as times already).
 */
export function fixedTimeBounds(options: Readonly<Record<string, unknown>>, defaultSince: string, now = Date.now()): { since: string; until?: string; again: string } {
  checkTimeBounds(options);
  const given = { since: typeof options['since'] === 'string' ? options['since'] : defaultSince, until: typeof options['until'] === 'string' ? options['until'] : undefined };
  // A time with a zone, or a date alone (UTC), goes as given; a time without a zone is this
  // person's local time, which the server (in another zone, or on another host) would read as its own.
  // A duration reaching before 1970 (`--since 800000d`) means everything stored: the epoch, not
  // a year ISO 8601 writes with a sign and six digits, which the server does not take.
  const iso = (value: string) => (/^\d{4}-\d{2}-\d{2}$/.test(value) || /^\d{4}-.*(Z|[+-]\d{2}(:?\d{2})?)$/i.test(value) ? value : new Date(Math.max(0, timeBound(value, now, 'local')!)).toISOString());
  const until = given.until === undefined ? undefined : iso(given.until);
  // Without --since, the default span ends at --until (else now): `--until 2d` alone is the day
  // (or hour) before that, not a window that ends before it starts.
  const since = typeof options['since'] !== 'string' && until !== undefined ? new Date(Math.max(0, Date.parse(until) - (now - timeBound(defaultSince, now)!))).toISOString() : iso(given.since);
  const again = [since !== given.since ? `--since ${since}` : '', until !== undefined && until !== given.until ? `--until ${until}` : ''].filter(Boolean).join(' ');
  return { since, ...(until === undefined ? {} : { until }), again };
}

/** A client of the deployment the options name (see the top of this file). */
export async function apiClient(options: Readonly<Record<string, unknown>>): Promise<ApiClient> {
  const { config } = await loadServerConfig(options);
  const server = typeof options['server'] === 'string' ? serverUrl(options['server']) : undefined;
  // Port 0 asks the system for a free port at each start: the file does not say which it got.
  if (server === undefined && /:0$/.test(config.listen.api)) {
    throw new HadesError('HADES_ERR_CLI_MISSING_ARGUMENT', `listen.api of this configuration is ${config.listen.api}, a port the system chooses at each start: pass --config the server.yaml that hades start writes in its data folder (it names the port the server got), or --server with the address the server printed and --token`);
  }
  const explicitToken = typeof options['token'] === 'string' ? options['token'] : process.env['HADES_API_TOKEN'];
  let token: string;
  let ca: string | undefined;
  if (explicitToken) {
    // An API token is printable ASCII without spaces: anything else (a pasted newline) cannot
    // even be sent as a header.
    if (!/^[\x21-\x7e]+$/.test(explicitToken)) throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', `the API token (${typeof options['token'] === 'string' ? '--token' : 'HADES_API_TOKEN'}) holds a space, a control or a non-ASCII character; an API token is hadesapi_ followed by letters and digits`);
    token = explicitToken;
    ca = existsSync(caFile(config.data_dir)) ? readOwnFile(caFile(config.data_dir)) : undefined;
  } else {
    // The local deployment's admin token is for the local deployment: sent to the server --server
    // names, it would hand that server (whoever runs it) admin rights over this one.
    if (server !== undefined) throw new HadesError('HADES_ERR_CLI_MISSING_ARGUMENT', `--server ${server} needs that server's API token: pass --token (or set HADES_API_TOKEN); the local deployment's admin token is not sent to another server`);
    ({ token, caPem: ca } = localCredentials(config.data_dir));
  }
  const caOption = typeof options['ca'] === 'string' ? options['ca'] : process.env['HADES_API_CA'];
  if (caOption) ca = readCa(caOption);
  const listen = /^(.*):(\d+)$/.exec(config.listen.api);
  const host = listen?.[1] === '0.0.0.0' || listen?.[1] === '::' ? '127.0.0.1' : listen?.[1];
  const base = server ?? `https://${host}:${listen?.[2]}`;
  // The local deployment's CA, and a server that has another: most often one started with
  // `hades start --data DIR` (or another configuration) on the default address.
  const untrustedHint =
    server === undefined && !caOption
      ? `the server at ${base} is not the deployment whose CA is in ${config.data_dir}: for one started with hades start --data DIR, pass --config DIR/server.yaml (or set HADES_SERVER_CONFIG to it); for another server, --server, --token and --ca`
      : undefined;
  // Nothing listening at the local deployment's address: most often it is not running, or it was
  // started with --data DIR or on other ports and this command was not told.
  const refusedHint =
    server === undefined
      ? `nothing listens there: start it (hades start, or hades server); for a deployment started with hades start --data DIR or on other ports, pass --config DIR/server.yaml (or set HADES_SERVER_CONFIG to it)`
      : undefined;
  return clientOf({ base, token, ...(ca ? { caPem: ca } : {}), ...(untrustedHint ? { untrustedHint } : {}), ...(refusedHint ? { refusedHint } : {}) });
}

/** --limit as the API takes it: a whole number from 1 to `max`, checked before anything is sent. */
export function limitOption(options: Readonly<Record<string, unknown>>, max: number): string {
  const limit = typeof options['limit'] === 'string' ? options['limit'] : '100';
  if (!/^\d{1,6}$/.test(limit) || Number(limit) < 1 || Number(limit) > max) throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', `--limit must be a number from 1 to ${max} (got '${limit}')`);
  return limit;
}

/** A --ttl (how long a token lasts) the server takes: a duration such as 30m, 1h or 7d, checked before anything is sent. */
export function checkTtl(ttl: string): string {
  if (!/^\d+(s|m|h|d)$/.test(ttl)) throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', `--ttl must be a duration such as 30m, 1h or 7d (got '${shown(ttl)}')`);
  return ttl;
}

function readCa(file: string): string {
  let text: string;
  try {
    // The person's own argument, not a file of a data folder: a pipe (--ca <(...), /dev/stdin) is read too.
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', `--ca: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  // GET /api/v1/enroll/ca answers JSON ({"ca": PEM, "sha256": ...}): saved as it comes, its PEM is used.
  if (text.trimStart().startsWith('{')) {
    try {
      const answer = JSON.parse(text) as { ca?: unknown };
      if (typeof answer.ca === 'string') text = answer.ca;
    } catch {
      // Not JSON after all: checked as PEM below.
    }
  }
  if (!/^-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----/m.test(text)) throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', `--ca: ${file} holds no PEM certificate (the server's CA is the \`ca\` of GET /api/v1/enroll/ca: \`curl -sk URL/api/v1/enroll/ca | jq -r .ca > ca.pem\`, or that answer saved whole)`);
  return text;
}

/** TLS errors of a certificate that does not chain to the CA given. */
const UNTRUSTED = new Set(['SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_SIGNATURE_FAILURE']);

/** The --server address: an https:// URL (the API speaks TLS only), without a trailing slash. */
function serverUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', `--server must be the API's URL, such as https://hades.example:7080 (got '${text}')`);
  }
  if (url.protocol !== 'https:') throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', `--server must be an https:// URL: the API speaks TLS only (got '${text}')`);
  return text.replace(/\/+$/, '');
}

/** Re-throws a 404 of the API with what to run to find the right name: "no WHAT; HINT". */
export async function named<T>(call: Promise<T>, what: string, hint: string): Promise<T> {
  try {
    return await call;
  } catch (error) {
    if (error instanceof HadesError && error.code === 'HADES_ERR_API_NOT_FOUND') throw new HadesError('HADES_ERR_API_NOT_FOUND', `no ${what}; ${hint}`, { cause: error });
    throw error;
  }
}

/** How long a command waits for the API's answer to one request. */
const REQUEST_TIMEOUT_MS = 30_000;
/** The largest answer a command takes (a page of events is megabytes at most). */
const MAX_ANSWER_BYTES = 256 * 1024 * 1024;

/** A client of a given API address, token and CA. */
export function clientOf({ base, token, caPem: ca, untrustedHint, refusedHint }: { base: string; token: string; caPem?: string; untrustedHint?: string; refusedHint?: string }): ApiClient {
  const call = (method: string, path: string, body?: unknown, extraHeaders: Readonly<Record<string, string>> = {}) =>
    new Promise<unknown>((resolve, reject) => {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const req = request(
        `${base}${path}`,
        {
          method,
          ...(ca ? { ca } : {}),
          headers: { ...extraHeaders, authorization: `Bearer ${token}`, accept: 'application/json', ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}) },
          // While the answer comes: no byte for this long ends it.
          timeout: REQUEST_TIMEOUT_MS,
        },
        (response) =>
          gatherAnswer(req, response, MAX_ANSWER_BYTES, () => new HadesError('HADES_ERR_SERVER_UNREACHABLE', `${method} ${path}: the answer is over ${MAX_ANSWER_BYTES / 1024 / 1024} MiB: what answered is not a Hades API, or the request asks too much at once (a smaller --limit)`), (text) => {
            let parsed: unknown;
            try {
              parsed = text ? JSON.parse(text) : null;
            } catch {
              return reject(new HadesError('HADES_ERR_SERVER_UNREACHABLE', `${method} ${path}: the answer is not JSON (HTTP ${response.statusCode})`));
            }
            if ((response.statusCode ?? 500) >= 400) {
              const error = parsed as { code?: string; message?: string; details?: Record<string, unknown> } | null;
              const code = error?.code && isErrorCode(error.code) ? error.code : 'HADES_ERR_SERVER_UNREACHABLE';
              return reject(new HadesError(code, error?.message ?? `HTTP ${response.statusCode}`, error?.details && typeof error.details === 'object' ? { details: error.details } : {}));
            }
            resolve(parsed);
          }),
      );
      // Until the answer begins, one deadline (connection, handshake, the server's work), not the
      // idle timeout that each stalled stage would start again.
      const deadline = setTimeout(() => req.destroy(new HadesError('HADES_ERR_SERVER_UNREACHABLE', `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`)), REQUEST_TIMEOUT_MS);
      req.on('response', () => clearTimeout(deadline));
      req.on('close', () => clearTimeout(deadline));
      req.on('timeout', () => req.destroy(new HadesError('HADES_ERR_SERVER_UNREACHABLE', `the answer stopped for ${REQUEST_TIMEOUT_MS / 1000} s`)));
      req.on('error', (error) => {
        if (error instanceof HadesError) return reject(error);
        const untrusted = UNTRUSTED.has((error as NodeJS.ErrnoException).code ?? '');
        const refused = (error as NodeJS.ErrnoException).code === 'ECONNREFUSED';
        const hint = !untrusted
          ? refused && refusedHint
            ? ` (${refusedHint})`
            : ''
          : untrustedHint
            ? ` (the server's certificate is not from the CA trusted here: ${untrustedHint})`
            : ` (the server's certificate is not from the CA trusted here: pass --ca with that deployment's CA certificate, from GET /api/v1/enroll/ca, checked against the fingerprint hades server token create prints)`;
        reject(new HadesError('HADES_ERR_SERVER_UNREACHABLE', `cannot reach the API at ${base}: ${error.message}${hint}`));
      });
      req.end(payload);
    });
  return {
    base,
    get: (path, query = {}) => {
      const params = new URLSearchParams();
      for (const [key, value] of Object.entries(query)) {
        if (value === undefined) continue;
        for (const v of Array.isArray(value) ? value : [value]) params.append(key, v);
      }
      const qs = params.toString();
      return call('GET', qs ? `${path}?${qs}` : path);
    },
    post: (path, body) => call('POST', path, body),
    patch: (path, body, headers) => call('PATCH', path, body, headers),
    put: (path, body) => call('PUT', path, body),
    delete: (path) => call('DELETE', path),
  };
}
