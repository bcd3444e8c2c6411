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
import type { Row } from '../store/row.js';
import { MAX_BATCH_BYTES } from './prepare.js';
import type { BatchSeq, DetectReply, IngestReply, IngestRequest, LoadReply, PrepareReply } from './protocol.js';

/**
 * NDJSON bytes of the batches between their prepare and their detect, forget or release, whose
 * rows wait for the store (and, for a batch not matched as it was prepared, whose events the
 * thread holds parsed, several times their text in memory): more waits its turn as received
 * text, so that a fleet's backlog is not all parsed ahead of the store. A batch larger than this
 * alone goes through when nothing else is held.
 */
export const PIPELINE_BYTES = 32 * 1024 * 1024;

const RESTART_MIN_MS = 100;
const RESTART_MAX_MS = 10_000;

type Admission = { readonly bytes: number; readonly resolve: () => void; readonly reject: (error: HadesError) => void };
type Pending = { readonly resolve: (value: unknown) => void; readonly reject: (error: HadesError) => void };
type Body<K extends IngestRequest['kind']> = Omit<Extract<IngestRequest, { kind: K }>, 'id' | 'kind'>;

export interface IngestWorkerStats {
  /** Times the thread died and was started again. */
  readonly restarts: number;
  /** Requests waiting for their reply now. */
  readonly pending: number;
  /** NDJSON bytes of the prepared batches not yet through detection (at most PIPELINE_BYTES but one batch). */
  readonly heldBytes: number;
  /** Batches waiting for room in the pipeline. */
  readonly waiting: number;
}

/**
 * A batch's matches made as it was prepared, for the events the store took (`stored`: their
 * indexes, or null for all): a duplicate was matched when its first copy was stored.
 */
export function storedOnly(matched: DetectReply, stored: readonly number[] | null): DetectReply {
  if (stored === null) return matched;
  const taken = new Set(stored);
  return { evaluated: stored.length, errors: matched.errors, matches: matched.matches.filter((m) => taken.has(m.index)) };
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
  /** Bytes held per prepared batch, their sum, and the batches waiting to be let in. */
  readonly #held = new Map<number, number>();
  #heldBytes = 0;
  readonly #admissions: Admission[] = [];
  /** Waiting for the thread to be started again (or for close: then they are called too). */
  readonly #onStart: (() => void)[] = [];

  /** `url`: the worker's module; the compiled ./worker.js by default (tests give another). */
  constructor(log: Logger, url: URL = new URL('./worker.js', import.meta.url)) {
    this.#log = log;
    this.#url = url;
    this.#start();
  }

  get stats(): IngestWorkerStats {
    return { restarts: this.#restarts, pending: this.#pending.size, heldBytes: this.#heldBytes, waiting: this.#admissions.length };
  }

  /** Waits until `bytes` more fit in the pipeline (in arrival order), and counts them in. */
  #admit(bytes: number): Promise<void> {
    // Closed: nothing would ever let it in (close() rejected those that waited).
    if (this.#closed) return Promise.reject(new HadesError('HADES_ERR_INGEST_WORKER', 'the server is stopping'));
    if (this.#admissions.length === 0 && this.#fits(bytes)) {
      this.#heldBytes += bytes;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => this.#admissions.push({ bytes, resolve, reject }));
  }

  #fits(bytes: number): boolean {
    return this.#heldBytes === 0 || this.#heldBytes + bytes <= PIPELINE_BYTES;
  }

  #release(bytes: number): void {
    this.#heldBytes -= bytes;
    let next: Admission | undefined;
    while ((next = this.#admissions[0]) !== undefined && this.#fits(next.bytes)) {
      this.#admissions.shift();
      this.#heldBytes += next.bytes;
      next.resolve();
    }
  }

  /** Releases what a prepared batch held, once. */
  #releaseBatch(batch: number): void {
    const bytes = this.#held.get(batch);
    if (bytes === undefined) return;
    this.#held.delete(batch);
    this.#release(bytes);
  }

  #start(): void {
    const worker = new Worker(this.#url);
    this.#worker = worker;
    for (const started of this.#onStart.splice(0)) started();
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
      // What the thread held is gone with it.
      for (const batch of [...this.#held.keys()]) this.#releaseBatch(batch);
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
   * copied again); `inflated`: it is gzip that inflates to that many bytes, on the thread. With
   * `keep`, the events go through the rules: at once when `seq` says the batch is new (the reply's
   * `detection`; then release() with the returned id once the batch is settled), else they wait in
   * the thread for detect() or forget(). Either way the batch holds its room in the pipeline until
   * then.
   */
  async prepare(agentId: string, ndjson: Uint8Array, cmdb: object | undefined, now: number | undefined, keep: boolean, inflated?: number, seq?: BatchSeq): Promise<PrepareReply & { readonly id: number }> {
    // A compressed batch is let in at the size it says it inflates to (the thread refuses it if
    // it inflates to anything else), so the budget holds whatever the gzip holds.
    const admitted = inflated === undefined ? ndjson.byteLength : Math.min(inflated, MAX_BATCH_BYTES);
    await this.#admit(admitted);
    const copy = new Uint8Array(ndjson);
    // `event.ingested`, when not given: now, once the batch is let in, just ahead of the store
    // (not when it arrived: a batch may wait for room in the pipeline for seconds under load).
    const sent = this.#send('prepare', { agentId, ndjson: copy, inflated, cmdb, now: now ?? Date.now(), keep, seq }, [copy.buffer]);
    let reply: PrepareReply;
    try {
      reply = (await sent.reply) as PrepareReply;
    } catch (error) {
      this.#release(admitted);
      throw error;
    }
    // A batch that was not refused inflated to exactly what it was let in at: that is what it holds.
    if (keep && reply.refused === undefined && reply.rows.length > 0 && this.#worker !== undefined) this.#held.set(sent.id, admitted);
    else this.#release(admitted);
    return { ...reply, id: sent.id };
  }

  /**
   * Runs a prepared batch's events (those at `stored`, or all) through the rules. With `rows`
   * (the batch's rows, as prepare() gave them), events the thread no longer keeps (it died and
   * was started again after the prepare, or dropped them) are matched from their stored JSON
   * instead: a stored batch is acknowledged, and sent again it would be a duplicate, so this is
   * its only run through the rules.
   */
  async detect(batch: number, stored: readonly number[] | null, rows?: readonly Row[]): Promise<DetectReply> {
    let reply: DetectReply & { readonly missing?: boolean };
    try {
      reply = (await this.#request('detect', { batch, stored })) as DetectReply;
    } catch (error) {
      // The thread died, or is being started again: the rows' stored JSON goes to the new one.
      if (rows === undefined || this.#closed) throw error;
      reply = { evaluated: 0, matches: [], errors: [], missing: true };
    } finally {
      this.#releaseBatch(batch);
    }
    const { missing, ...found } = reply;
    if (!missing || rows === undefined) return found;
    await this.#started();
    const indexes = (stored ?? [...rows.keys()]).filter((i) => rows[i] !== undefined);
    const again = await this.match(indexes.map((i) => (rows[i] as Row)[14]));
    return { evaluated: again.evaluated, errors: again.errors, matches: again.matches.map((m) => ({ ...m, index: indexes[m.index] as number })) };
  }

  /** Resolves once a thread runs (at once when one does), or when closed. */
  async #started(): Promise<void> {
    if (this.#worker === undefined && !this.#closed) await new Promise<void>((resolve) => this.#onStart.push(resolve));
  }

  /**
   * Runs stored events (their stored JSON) through the rules; a match's `index` is its line's.
   * With `retry`, a thread that dies (or is down) meanwhile is waited for and asked again once:
   * stored events have no other run through the rules.
   */
  async match(lines: readonly string[], options: { readonly retry?: boolean } = {}): Promise<DetectReply> {
    try {
      return (await this.#request('match', { lines })) as DetectReply;
    } catch (error) {
      if (!options.retry || this.#closed || (error as HadesError).code !== 'HADES_ERR_INGEST_WORKER') throw error;
      await this.#started();
      return (await this.#request('match', { lines })) as DetectReply;
    }
  }

  /**
   * Gives back the room of a batch whose events went through the rules as it was prepared (its
   * reply's `detection`): it is settled, and the thread keeps nothing of it.
   */
  release(batch: number): void {
    this.#releaseBatch(batch);
  }

  /** Drops a prepared batch's kept events. */
  forget(batch: number): void {
    this.#request('forget', { batch }).catch(() => undefined); // the thread died: nothing is kept any more
    this.#releaseBatch(batch);
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
    const stopping = new HadesError('HADES_ERR_INGEST_WORKER', 'the server is stopping');
    for (const waiting of this.#admissions.splice(0)) waiting.reject(stopping);
    for (const started of this.#onStart.splice(0)) started(); // their next request is refused
    if (worker !== undefined) await worker.terminate();
  }

  /** For tests: ends the thread as a crash would. */
  async crashForTest(): Promise<void> {
    await this.#worker?.terminate();
  }
}
