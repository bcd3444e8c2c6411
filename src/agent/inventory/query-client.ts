/**
 * The asking side of QUERY / QUERY_RESULT (docs/plugins.md): sends a query to the collector
 * process, gathers its row chunks, and settles with the final frame. The collector enforces the
 * timeout itself; when it does not answer within the timeout and a grace period (a single SQLite
 * step cannot be interrupted), the client answers HADES_ERR_QUERY_TIMEOUT and tells its owner, who
 * restarts or kills the collector. This module loads neither SQLite nor the tables: the agent uses it.
 */
import type { QueryRequest, QueryResultFrame } from '../../common/plugins/protocol.js';
import { PluginFrame } from '../../common/plugins/protocol.js';

/** The final frame's fields (without the framing) and, on success, the rows of its chunks. */
type FinalFrame<Ok extends boolean> = Omit<Extract<QueryResultFrame, { done: true; ok: Ok }>, 'request_id' | 'done'>;

export type QueryAnswer = (FinalFrame<true> & { readonly rows: unknown[][]; readonly elapsed_ms: number }) | FinalFrame<false>;

export interface QueryClientOptions {
  /** Writes a frame to the collector; false when it is not running. */
  readonly send: (type: number, payload: Uint8Array) => boolean;
  /** Extra time past the query's timeout before the collector counts as hung. */
  readonly graceMs?: number;
  /** The collector did not answer in time: restart (agent) or kill (CLI) it. */
  readonly onHung?: (reason: string) => void;
  /** Queries waiting at most; more are refused (HADES_ERR_QUERY_UNAVAILABLE). */
  readonly maxPending?: number;
}

interface Pending {
  readonly started: number;
  readonly maxBytes: number;
  readonly rows: unknown[][];
  bytes: number;
  overflow: boolean;
  readonly timer: NodeJS.Timeout;
  readonly resolve: (answer: QueryAnswer) => void;
}

export class QueryClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly decoder = new TextDecoder();
  private readonly encoder = new TextEncoder();

  constructor(private readonly options: QueryClientOptions) {}

  get waiting(): number {
    return this.pending.size;
  }

  query(request: Omit<QueryRequest, 'request_id'>): Promise<QueryAnswer> {
    if (this.pending.size >= (this.options.maxPending ?? 16)) {
      return Promise.resolve({ ok: false, code: 'HADES_ERR_QUERY_UNAVAILABLE', message: `the inventory collector has ${this.pending.size} queries waiting; try again later` });
    }
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.settle(id, { ok: false, code: 'HADES_ERR_QUERY_TIMEOUT', message: `the inventory collector did not answer within the query's timeout of ${(request.timeout_ms / 1000).toFixed(1)} s (one SQLite step ran that long); the collector was stopped` });
        this.options.onHung?.(`query ${id} not answered in ${request.timeout_ms} ms`);
      }, request.timeout_ms + (this.options.graceMs ?? 3000));
      this.pending.set(id, { started: performance.now(), maxBytes: request.max_bytes, rows: [], bytes: 0, overflow: false, timer, resolve });
      const sent = this.options.send(PluginFrame.query, this.encoder.encode(JSON.stringify({ request_id: id, ...request } satisfies QueryRequest)));
      if (!sent) this.settle(id, { ok: false, code: 'HADES_ERR_QUERY_UNAVAILABLE', message: 'the inventory collector is not running' });
    });
  }

  /** A QUERY_RESULT frame from the collector. */
  onFrame(payload: Uint8Array): void {
    let frame: QueryResultFrame;
    try {
      frame = JSON.parse(this.decoder.decode(payload)) as QueryResultFrame;
    } catch {
      return;
    }
    const pending = typeof frame?.request_id === 'number' ? this.pending.get(frame.request_id) : undefined;
    if (!pending) return; // answered already (timed out) or unknown
    if (!frame.done) {
      if (!Array.isArray(frame.rows)) return;
      for (const row of frame.rows) {
        // The collector is trusted to respect max_bytes; this only bounds a misbehaving one.
        if (pending.overflow) break;
        const size = Buffer.byteLength(JSON.stringify(row)) + 1;
        if (pending.bytes + size > pending.maxBytes + (1 << 20)) {
          pending.overflow = true;
          break;
        }
        pending.bytes += size;
        pending.rows.push(row as unknown[]);
      }
      return;
    }
    if (!frame.ok) {
      this.settle(frame.request_id, { ok: false, code: String(frame.code), message: String(frame.message), ...(frame.details ? { details: frame.details } : {}) });
      return;
    }
    this.settle(frame.request_id, {
      ok: true,
      columns: frame.columns,
      rows: pending.rows,
      row_count: pending.rows.length,
      truncated: frame.truncated || pending.overflow,
      ...(frame.truncated_by ? { truncated_by: frame.truncated_by } : pending.overflow ? { truncated_by: 'bytes' as const } : {}),
      tables: frame.tables,
      warnings: frame.warnings,
      warnings_total: frame.warnings_total,
      collect_ms: frame.collect_ms,
      sql_ms: frame.sql_ms,
      elapsed_ms: Math.round(performance.now() - pending.started),
    });
  }

  /** The collector went away: every waiting query fails. */
  failAll(code: string, message: string): void {
    for (const id of [...this.pending.keys()]) this.settle(id, { ok: false, code, message });
  }

  private settle(id: number, answer: QueryAnswer): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    pending.resolve(answer);
  }
}
