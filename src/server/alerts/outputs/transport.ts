/**
 * The contract between an output's queue (queue.ts) and the code that puts an alert on the wire
 * (webhook.ts, syslog.ts, file.ts), and the failures a transport reports. A transport delivers
 * one alert at a time and knows nothing of queues, retries or counters; the queue knows nothing
 * of the wire. Tests drive the queue with an in-memory transport and each transport against a
 * real receiver.
 */
import { readFileSync } from 'node:fs';
import type { AlertOutputTlsConfig } from '../../../common/config/alert-outputs.js';
import { HadesError, type ErrorCode } from '../../../common/errors.js';
import type { Alert } from '../types.js';

/** An alert waiting in an output's queue. */
export interface QueuedAlert {
  readonly alert: Alert;
  /** The alert as JSON, serialised once whatever the number of outputs. */
  readonly json: string;
}

export interface AlertTransport {
  /** Where alerts go, safe to log: the origin of a URL (never its path), host:port, a file path. */
  readonly target: string;
  /** Messages cut to fit the receiver's size limit so far. */
  readonly truncated: number;
  /** Puts one alert on the wire; rejects with a delivery failure (see `failure`). */
  deliver(item: QueuedAlert): Promise<void>;
  /** Closes every socket, agent and file; a delivery in flight rejects. Idempotent. */
  close(): Promise<void>;
}

/**
 * Who a failure is about, which decides what the queue does with the alert:
 * - `receiver`: the alert never reached the receiver (refused, unreachable, TLS, connect
 *   timeout, a full disk); the alert keeps its place and uses up none of its attempts.
 * - `alert`: the receiver got the alert and failed it (a 5xx, a timeout after sending); it
 *   uses up one of the alert's attempts.
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

/** What `tls.connect` and `https.Agent` take from an output's `tls` section. */
export interface TlsMaterial {
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  readonly rejectUnauthorized: boolean;
}

/** Reads the PEM files of a `tls` section once, at creation; throws HADES_ERR_ALERT_OUTPUT_TLS. */
export function readTlsMaterial(name: string, tls: AlertOutputTlsConfig): TlsMaterial {
  const read = (file: string | null): Buffer | undefined => {
    if (file === null) return undefined;
    try {
      return readFileSync(file);
    } catch (error) {
      throw failure('HADES_ERR_ALERT_OUTPUT_TLS', `output '${name}': cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, 'receiver', error);
    }
  };
  const ca = read(tls.ca_file);
  const cert = read(tls.cert_file);
  const key = read(tls.key_file);
  return { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}), rejectUnauthorized: !tls.insecure };
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
