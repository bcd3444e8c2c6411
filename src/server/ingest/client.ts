/**
 * The main thread's side of the ingest worker (./worker.ts): it owns the thread, matches replies
 * to requests, and restarts the thread when it dies. A request that was waiting when the thread
 * died is rejected with HADES_ERR_INGEST_WORKER: a batch is then not acknowledged, and the agent
 * sends it again. After a restart the last rules that loaded are loaded again before anything
 * else (correlation state starts empty, as after a reload).
 */
import { Worker } from 'node:worker_threads';
import { HadesError } from '../../common/errors.js';
import type { RuleFile, RuleStats } from '../../rules/index.js';
import type { Logger } from '../../runtime/log.js';
import type { DetectReply, IngestReply, IngestRequest, LoadReply, PrepareReply } from './protocol.js';

const RESTART_MIN_MS = 100;
const RESTART_MAX_MS = 10_000;

type Pending = { readonly resolve: (value: unknown) => void; readonly reject: (error: HadesError) => void };
type Body<K extends IngestRequest['kind']> = Omit<Extract<IngestRequest, { kind: K }>, 'id' | 'kind'>;

export interface IngestWorkerStats {
  /** Times the thread died and was started again. */
  readonly restarts: number;
  /** Requests waiting for their reply now. */
  readonly pending: number;
}

export class IngestWorker {
  readonly #log: Logger;
  readonly #url: URL;
  #worker: Worker | undefined;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed = false;
  #restarts = 0;
  #restartDelay = RESTART_MIN_MS;
  #restartTimer: NodeJS.Timeout | undefined;
  /** The rules that loaded last, to load again in a new thread. */
  #files: readonly RuleFile[] | undefined;

  /** `url`: the worker's module; the compiled ./worker.js by default (tests give another). */
  constructor(log: Logger, url: URL = new URL('./worker.js', import.meta.url)) {
    this.#log = log;
    this.#url = url;
    this.#start();
  }

  get stats(): IngestWorkerStats {
    return { restarts: this.#restarts, pending: this.#pending.size };
  }

  #start(): void {
    const worker = new Worker(this.#url);
    this.#worker = worker;
    worker.on('message', (reply: IngestReply) => {
      const pending = this.#pending.get(reply.id);
      if (pending === undefined) return;
      this.#pending.delete(reply.id);
      this.#restartDelay = RESTART_MIN_MS;
      if (reply.ok) pending.resolve(reply.value);
      else pending.reject(new HadesError(reply.code, reply.message));
    });
    worker.on('error', (error) => this.#log.error('ingest worker failed', { err: error }));
    worker.on('exit', (code) => {
      if (this.#worker !== worker) return;
      this.#worker = undefined;
      this.#failPending(`the ingest worker stopped (exit code ${code})`);
      if (this.#closed) return;
      this.#restarts++;
      this.#log.error('ingest worker stopped; starting it again', { code, delay_ms: this.#restartDelay });
      this.#restartTimer = setTimeout(() => {
        this.#restartTimer = undefined;
        if (this.#closed) return;
        this.#start();
        if (this.#files !== undefined) {
          const files = this.#files;
          this.#request('load', { files }).catch((error: unknown) => this.#log.error('rules could not be loaded in the new ingest worker', { err: error }));
        }
      }, this.#restartDelay);
      this.#restartDelay = Math.min(RESTART_MAX_MS, this.#restartDelay * 2);
    });
  }

  #failPending(message: string): void {
    const error = new HadesError('HADES_ERR_INGEST_WORKER', message);
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.reject(error);
  }

  #request<K extends IngestRequest['kind']>(kind: K, body: Body<K>, transfer?: ArrayBuffer[]): Promise<unknown> {
    return this.#send(kind, body, transfer).reply;
  }

  /** Posts a request; its id, and its reply to come. */
  #send<K extends IngestRequest['kind']>(kind: K, body: Body<K>, transfer?: ArrayBuffer[]): { readonly id: number; readonly reply: Promise<unknown> } {
    const worker = this.#worker;
    const id = this.#nextId++;
    if (worker === undefined) {
      return { id, reply: Promise.reject(new HadesError('HADES_ERR_INGEST_WORKER', this.#closed ? 'the server is stopping' : 'the ingest worker is starting again after a failure')) };
    }
    const reply = new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
    });
    worker.postMessage({ ...body, kind, id }, transfer);
    return { id, reply };
  }

  /**
   * Checks a batch and makes its rows. `ndjson` is copied (the copy is moved to the thread, not
   * copied again). With `keep`, the events wait in the thread for detect() or forget() with the
   * returned id.
   */
  async prepare(agentId: string, ndjson: Uint8Array, cmdb: object | undefined, now: number, keep: boolean): Promise<PrepareReply & { readonly id: number }> {
    const copy = new Uint8Array(ndjson);
    const sent = this.#send('prepare', { agentId, ndjson: copy, cmdb, now, keep }, [copy.buffer]);
    return { ...((await sent.reply) as PrepareReply), id: sent.id };
  }

  /** Runs a prepared batch's events (those at `stored`, or all) through the rules. */
  async detect(batch: number, stored: readonly number[] | null): Promise<DetectReply> {
    return (await this.#request('detect', { batch, stored })) as DetectReply;
  }

  /** Drops a prepared batch's kept events. */
  forget(batch: number): void {
    this.#request('forget', { batch }).catch(() => undefined); // the thread died: nothing is kept any more
  }

  async load(files: readonly RuleFile[]): Promise<LoadReply> {
    const reply = (await this.#request('load', { files })) as LoadReply;
    if (reply.applied) this.#files = files;
    return reply;
  }

  async ruleStats(): Promise<RuleStats[]> {
    return (await this.#request('stats', {})) as RuleStats[];
  }

  /** Stops the thread; waiting requests are rejected. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#restartTimer !== undefined) clearTimeout(this.#restartTimer);
    this.#restartTimer = undefined;
    const worker = this.#worker;
    this.#worker = undefined;
    this.#failPending('the server is stopping');
    if (worker !== undefined) await worker.terminate();
  }

  /** For tests: ends the thread as a crash would. */
  async crashForTest(): Promise<void> {
    await this.#worker?.terminate();
  }
}
