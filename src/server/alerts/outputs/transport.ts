/**
 * The contract between an output's queue (queue.ts) and the code that puts an alert on the wire
 * (webhook.ts, syslog.ts, file.ts), the failures a transport reports, and the TLS files the
 * transports read (checked with the configuration too). A transport delivers
 * one alert at a time and knows nothing of queues, retries or counters; the queue knows nothing
 * of the wire. Tests drive the queue with an in-memory transport and each transport against a
 * real receiver.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import type { AlertOutputsConfig, AlertOutputTlsConfig } from '../../../common/config/alert-outputs.js';
import type { ConfigProblem } from '../../../common/config/validate.js';
import { HadesError, type ErrorCode } from '../../../common/errors.js';
import { pemCertificates } from '../../../common/pem.js';
import type { Alert } from '../types.js';

/**
 * The fields of an alert an output reads besides its JSON: the header and structured data of a
 * syslog message, and what logs name the alert by. A few short strings.
 */
export interface AlertHead {
  readonly id: string;
  readonly '@timestamp': string;
  readonly count: number;
  readonly rule: Pick<Alert['rule'], 'id' | 'severity'>;
  readonly host: Pick<Alert['host'], 'id' | 'name'>;
}

/**
 * An alert waiting in an output's queue: its JSON and its head, not the alert itself. The alert
 * takes about as much memory as its JSON (mostly its events' strings): keeping both would take
 * twice what `queue_mb` counts. What needs more of the alert (a chat message, a syslog message
 * without its events) parses the JSON.
 */
export interface QueuedAlert {
  readonly head: AlertHead;
  /** The alert as JSON, serialised once whatever the number of outputs. */
  readonly json: string;
  /** The memory the JSON takes (stringBytes): what the queue counts against `queue_mb`. */
  readonly bytes: number;
}

/** What an output's queue keeps of an alert (QueuedAlert); made once, shared by every output. */
export function queuedAlert(alert: Alert): QueuedAlert {
  const json = JSON.stringify(alert);
  const { id, count, rule, host } = alert;
  return {
    head: { id, '@timestamp': alert['@timestamp'], count, rule: { id: rule.id, severity: rule.severity }, host: { id: host.id, name: host.name } },
    json,
    bytes: stringBytes(json),
  };
}

/**
 * The memory the characters of a string take in V8: one byte each while they all are Latin-1
 * (up to U+00FF), two each otherwise (a single other character makes the whole string so).
 */
export function stringBytes(text: string): number {
  return /[\u0100-\uffff]/.test(text) ? 2 * text.length : text.length;
}

/**
 * What a transport keeps of an alert it holds (HoldListener) besides the bytes it wrote: what
 * logs name the alert by. Never the alert nor its JSON, which can be a thousand times larger
 * than the message written (cut to the receiver's size limit).
 */
export interface AlertRef {
  readonly id: string;
  /** The rule's id. */
  readonly rule: string;
}

export interface AlertTransport {
  /** Where alerts go, safe to log: the origin of a URL (never its path), host:port, a file path. */
  readonly target: string;
  /** Messages cut to fit the receiver's size limit so far. */
  readonly truncated: number;
  /** Alerts written again on a new connection (counted once their write completed), their first one having died before the receiver acknowledged them (syslog over TCP and TLS). */
  readonly resent?: number;
  /**
   * Puts one alert on the wire; rejects with a delivery failure (see `failure`). Resolves `held`
   * when the transport keeps the alert until its receiver acknowledges it (see HoldListener):
   * the queue counts it as sent only then.
   */
  deliver(item: QueuedAlert): Promise<void | 'held'>;
  /** Registers the queue's listener (transports that hold alerts). */
  hold?(listener: HoldListener): void;
  /** Held alerts wait to be written again: their connection died. */
  readonly resendPending?: boolean;
  /** Writes them on a new connection (deliver does so too, before its alert); rejects like deliver. */
  resend?(): Promise<void>;
  /** The output is about to close: look for acknowledgements more often. */
  hurry?(): void;
  /** Closes every socket, agent and file; a delivery in flight rejects. Idempotent. */
  close(): Promise<void>;
}

/**
 * What a transport that holds the alerts it wrote until its receiver acknowledges them (syslog
 * over TCP and TLS) tells its queue about them after `deliver` resolved `held`.
 */
export interface HoldListener {
  /** `count` held alerts, the oldest, were acknowledged (or can no longer be followed, and count as delivered). */
  acknowledged(count: number): void;
  /** A held alert is given up: `attempts` connections it was the oldest unacknowledged alert of died. */
  givenUp(alert: AlertRef, error: HadesError, attempts: number): void;
  /** The connection died with held alerts while no delivery was in flight (one in flight fails with the error instead). */
  connectionLost(error: HadesError): void;
}

/**
 * Who a failure is about, which decides what the queue does with the alert:
 * - `receiver`: the alert never reached the receiver (refused, unreachable, TLS, connect
 *   timeout, a full disk); the alert keeps its place and uses up none of its attempts.
 * - `alert`: the receiver got the alert and failed it (a 5xx; a reset or a timeout once the
 *   connection took the request, or its start for a large one); it uses up one of the alert's
 *   attempts.
 * - `final`: retrying cannot help (a 4xx); the alert fails at once.
 */
export type FailureScope = 'receiver' | 'alert' | 'final';

/** The codes a delivery fails with. */
export type DeliveryErrorCode = Extract<
  ErrorCode,
  | 'HADES_ERR_ALERT_OUTPUT_REFUSED'
  | 'HADES_ERR_ALERT_OUTPUT_UNREACHABLE'
  | 'HADES_ERR_ALERT_OUTPUT_TIMEOUT'
  | 'HADES_ERR_ALERT_OUTPUT_BAD_STATUS'
  | 'HADES_ERR_ALERT_OUTPUT_TLS'
  | 'HADES_ERR_ALERT_OUTPUT_WRITE'
>;

export function failure(code: DeliveryErrorCode, message: string, scope: FailureScope, cause?: unknown): HadesError {
  return new HadesError(code, message, { details: { scope }, ...(cause === undefined ? {} : { cause }) });
}

/** The scope of a failure; an error that is not a delivery failure (a bug formatting the alert) is final. */
export function scopeOf(error: HadesError): FailureScope {
  const scope = error.details?.['scope'];
  return scope === 'receiver' || scope === 'alert' ? scope : 'final';
}

const TLS_ERROR = /CERT|SSL|TLS|EPROTO|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)/;

/**
 * A failure from a Node socket or request error: refused, timed out, TLS, or otherwise
 * unreachable. `reached` says whether the alert had been handed to the receiver.
 */
export function networkFailure(target: string, error: unknown, reached: boolean): HadesError {
  if (error instanceof HadesError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code ?? '';
  const message = `${target}: ${error instanceof Error ? error.message : String(error)}`;
  if (code === 'ECONNREFUSED') return failure('HADES_ERR_ALERT_OUTPUT_REFUSED', message, 'receiver', error);
  if (TLS_ERROR.test(code)) return failure('HADES_ERR_ALERT_OUTPUT_TLS', message, 'receiver', error);
  const scope = reached ? 'alert' : 'receiver';
  if (code === 'ETIMEDOUT') return failure('HADES_ERR_ALERT_OUTPUT_TIMEOUT', message, scope, error);
  return failure('HADES_ERR_ALERT_OUTPUT_UNREACHABLE', message, scope, error);
}

/**
 * The TLS files of the outputs that use TLS (webhooks with an https:// URL, syslog with
 * transport: tls), read and checked as `readTlsFiles` does: the configuration check of the
 * server's start and of `hades config check`. Apart from `checkAlertOutputs` because it reads
 * files: not for a command that reads the configuration only for the API's address, whose
 * user may not be allowed to read a key.
 */
export function checkAlertOutputFiles(outputs: AlertOutputsConfig, base = 'alerts.outputs'): ConfigProblem[] {
  return outputs.flatMap((output, index) => {
    const label = `output '${output.name}'`;
    const webhook = output.type === 'webhook' ? output.webhook : undefined;
    if (webhook && URL.canParse(webhook.url) && new URL(webhook.url).protocol === 'https:') return readTlsFiles(webhook.tls, `${base}.${index}.webhook.tls`, label).problems;
    const syslog = output.type === 'syslog' ? output.syslog : undefined;
    if (syslog?.transport === 'tls') return readTlsFiles(syslog.tls, `${base}.${index}.syslog.tls`, label).problems;
    return [];
  });
}

/** What `tls.connect` and `https.Agent` take from an output's `tls` section. */
export interface TlsMaterial {
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  readonly rejectUnauthorized: boolean;
}

/**
 * Reads the PEM files of a `tls` section and checks that TLS can use them: the CA file holds
 * certificates that parse, the certificate and the key are PEM that OpenSSL takes, and the key
 * is the certificate's. Otherwise every connection would fail (tls.connect throws on a bad
 * certificate or key), or, for a CA file without a certificate, nothing would be trusted.
 * `path` is the key path of the section; each problem (HADES_ERR_ALERT_OUTPUT_TLS) names the
 * key of its file, and its message the output and the file.
 */
export function readTlsFiles(tls: AlertOutputTlsConfig, path: string, label: string): { material: TlsMaterial; problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = [];
  const problem = (key: 'ca_file' | 'cert_file' | 'key_file', message: string) => problems.push({ code: 'HADES_ERR_ALERT_OUTPUT_TLS', path: `${path}.${key}`, message: `${label}: ${message}` });
  const read = (key: 'ca_file' | 'cert_file' | 'key_file'): Buffer | undefined => {
    const file = tls[key];
    if (file === null) return undefined;
    try {
      return readFileSync(file);
    } catch (error) {
      problem(key, `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
      return undefined;
    }
  };
  const usable = (options: SecureContextOptions): string | undefined => {
    try {
      createSecureContext(options);
      return undefined;
    } catch (error) {
      return error instanceof Error ? error.message : String(error);
    }
  };
  const ca = read('ca_file');
  const cert = read('cert_file');
  const key = read('key_file');
  if (ca) {
    const blocks = pemCertificates(ca.toString('latin1'));
    if (blocks.length === 0) problem('ca_file', `${tls.ca_file} holds no PEM certificate`);
    for (const block of blocks) {
      try {
        new X509Certificate(block);
      } catch (error) {
        problem('ca_file', `${tls.ca_file} holds a certificate that does not parse: ${error instanceof Error ? error.message : String(error)}`);
        break;
      }
    }
  }
  const badCert = cert && usable({ cert });
  if (badCert) problem('cert_file', `${tls.cert_file} is not a PEM certificate: ${badCert}`);
  const badKey = key && usable({ key });
  if (badKey) problem('key_file', `${tls.key_file} is not a PEM private key (without a passphrase): ${badKey}`);
  const mismatch = cert && key && !badCert && !badKey && usable({ cert, key });
  if (mismatch) problem('key_file', `${tls.key_file} is not the key of ${tls.cert_file}: ${mismatch}`);
  return { material: { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}), rejectUnauthorized: !tls.insecure }, problems };
}

/**
 * Reads and checks the PEM files of a `tls` section once, at creation (readTlsFiles); throws
 * HADES_ERR_ALERT_OUTPUT_TLS naming the output and each file that TLS could not use.
 */
export function readTlsMaterial(name: string, tls: AlertOutputTlsConfig): TlsMaterial {
  const { material, problems } = readTlsFiles(tls, 'tls', `output '${name}'`);
  if (problems.length > 0) throw failure('HADES_ERR_ALERT_OUTPUT_TLS', problems.map((p) => p.message).join('; '), 'receiver');
  return material;
}

/** A function that runs at its first call only (a promise's settle, which several events race to call); `done` says whether it ran. */
export function once<A extends unknown[]>(fn: (...args: A) => void): { (...args: A): void; done: boolean } {
  const wrapped = Object.assign(
    (...args: A): void => {
      if (wrapped.done) return;
      wrapped.done = true;
      fn(...args);
    },
    { done: false },
  );
  return wrapped;
}

/**
 * Calls that a transport must be able to abort at close: each delivery in flight registers how
 * to reject itself, and removes that when it settles.
 */
export class InFlight {
  private readonly aborts = new Set<(error: HadesError) => void>();

  add(abort: (error: HadesError) => void): () => void {
    this.aborts.add(abort);
    return () => this.aborts.delete(abort);
  }

  abortAll(error: HadesError): void {
    for (const abort of [...this.aborts]) abort(error);
    this.aborts.clear();
  }
}
