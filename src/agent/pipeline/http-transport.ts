/**
 * The HTTP collector output: each batch is POSTed as NDJSON; a 2xx answer acknowledges it, a 400,
 * 413, 415 or 422 refuses it for good (dropped and counted), anything else has it sent again. The
 * batch's spool sequence numbers go in a header, so a collector can drop a batch it already has
 * (after a crash the agent resends from its last acknowledged batch).
 *
 * Errors name the collector by its origin only: an error is the output's `last_error`, which the
 * heartbeat carries to the server's API (every token reads it), and a collector URL may hold a
 * secret in its path or query string, as an API key.
 */
import { HadesError } from '../../common/errors.js';
import type { BatchTransport, EventBatch } from './channels.js';

/** The answers that refuse this batch whatever the time: bad request, too large, unsupported media type, unprocessable. */
const REFUSED_FOR_GOOD: ReadonlySet<number> = new Set([400, 413, 415, 422]);

export interface HttpTransportOptions {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  readonly agentVersion: string;
}

export class HttpTransport implements BatchTransport {
  readonly name = 'http';
  /** What errors say of the collector: its origin, not the URL (see the module comment). */
  readonly #target: string;

  constructor(private readonly options: HttpTransportOptions) {
    let target = 'the HTTP collector';
    try {
      target = new URL(options.url).origin;
    } catch {
      // The configuration's pattern admits only URLs; fetch says what else is wrong.
    }
    this.#target = target;
  }

  async send(batch: EventBatch, signal: AbortSignal): Promise<void> {
    const timeout = AbortSignal.timeout(this.options.timeoutMs);
    let response: Response;
    try {
      response = await fetch(this.options.url, {
        method: 'POST',
        headers: {
          ...this.options.headers,
          'content-type': 'application/x-ndjson',
          'user-agent': `hades-agent/${this.options.agentVersion}`,
          'x-hades-batch': `${batch.firstSeq}-${batch.lastSeq}`,
          'x-hades-events': String(batch.events),
        },
        body: batch.data,
        signal: AbortSignal.any([signal, timeout]),
      });
      // Read the body so the connection can be reused.
      await response.arrayBuffer();
    } catch (error) {
      const reason = timeout.aborted ? `no answer within ${this.options.timeoutMs} ms` : (error as Error).cause instanceof Error ? ((error as Error).cause as Error).message : (error as Error).message;
      // fetch's own messages may repeat the URL (one it cannot parse).
      throw new HadesError('HADES_ERR_OUTPUT_FAILED', `POST ${this.#target}: ${reason.split(this.options.url).join(this.#target)}`);
    }
    if (response.status < 200 || response.status > 299) {
      // A malformed, too large or unsupported batch is refused again each time it is sent;
      // anything else (a collector down or overloaded, a token not accepted yet, a wrong path
      // being fixed) may pass later.
      const code = REFUSED_FOR_GOOD.has(response.status) ? 'HADES_ERR_OUTPUT_REFUSED' : 'HADES_ERR_OUTPUT_FAILED';
      throw new HadesError(code, `POST ${this.#target}: HTTP ${response.status}`);
    }
  }

  async close(): Promise<void> {
    // fetch keeps no state of ours; its idle connections close on their own.
  }
}
