/**
 * Output channels: what stands between the pipeline and one output. Events arrive here already
 * serialised (one line each), so an event is serialised once whatever the number of outputs.
 *
 * - StreamChannel (stdout, rotated files): lines are batched into pooled buffers and written
 *   once per turn of the event loop; a slow stream pushes back on the pipeline, which pauses
 *   its sources (the driver's pipe fills and the kernel counts what it cannot hold). A file has
 *   one writer at a time: at a reload, the file output that replaces one opens the path only
 *   once the old one has written its last lines and closed it, and holds lines meanwhile.
 * - SpooledChannel (HTTP, and the server transport): every batch goes to the disk spool first
 *   and leaves it only once the receiver acknowledged it, so an output that is down or slow
 *   never pushes back and nothing acknowledged by the spool is lost (see ../spool.ts). A spool
 *   folder has one Spool at a time: at a reload, the output that replaces one takes its spool
 *   once the old one has handed it over (close with `handover`), and holds events in memory
 *   meanwhile.
 *
 * Rate limits (events/s, bytes/s) apply per output: a stream output drops what is over them, a
 * spooled output sends slower and its spool grows. Every event dropped is counted by reason.
 */
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { HadesError, toHadesError } from '../../common/errors.js';
import type { Logger } from '../../runtime/log.js';
import { NdjsonWriter } from '../ndjson-writer.js';
import { TokenBucket } from '../../runtime/rate-limit.js';
import type { RotatingFile } from '../../runtime/rotating-file.js';
import type { Spool, SpoolStats } from '../spool.js';
import type { StreamStats } from '../transport/grpc-transport.js';

export interface RateLimits {
  readonly eventsPerSecond: number;
  readonly bytesPerSecond: number;
}

/** A spooled output's spool: what it holds, and what went wrong with it since the spool was opened (see SpoolStats). */
export type SpoolHealth = Readonly<Pick<SpoolStats, 'records' | 'events' | 'bytes' | 'segments' | 'corruptRecords' | 'corruptEvents' | 'corruptBytes' | 'writeErrors' | 'readErrors' | 'cursorResets'>>;

const NO_SPOOL: SpoolHealth = { records: 0, events: 0, bytes: 0, segments: 0, corruptRecords: 0, corruptEvents: 0, corruptBytes: 0, writeErrors: 0, readErrors: 0, cursorResets: 0 };

/**
 * An output's counters since it started (the agent's start, or the reload that made it). For a
 * spooled output, `in + backlogAtStart = out + queued + spool.events + dropped` (the spool's
 * damaged records aside: `spool_corrupt_records` counts records, as a torn record's events are
 * not known), so `out` may exceed `in` by at most the backlog: what it delivers from its spool
 * includes what an earlier process (or the output a reload replaced) wrote there. Events a
 * receiver acknowledged but refused (the server's invalid lines) are in `out` and in `dropped`.
 */
export interface ChannelStats {
  readonly name: string;
  /** Events handed to this output since it started. */
  readonly in: number;
  /**
   * Spooled outputs: events already in the spool when the output started, not yet acknowledged
   * (written by the agent's previous run, or by the output a reload replaced). They are
   * delivered (in `out`) or dropped like the rest, but were never counted in `in`.
   */
  readonly backlogAtStart?: number;
  /** Events the output took (stream) or acknowledged (spooled), the backlog's included. */
  readonly out: number;
  readonly bytesOut: number;
  readonly dropped: Readonly<Record<string, number>>;
  readonly queued: number;
  readonly spool?: SpoolHealth;
  /** The server output: its streams to the gateway (opened, lost by reason, Nacks, batches sent again, the address in use). */
  readonly stream?: StreamStats;
  readonly up: boolean;
  readonly lastError?: string;
}

export interface OutputChannel {
  readonly name: string;
  /** Takes one line. Returns false when the pipeline should pause its sources until onDrain. */
  write(line: string): boolean;
  /** Set by the pipeline: called when a channel that returned false can take more. */
  onDrain: () => void;
  stats(): ChannelStats;
  /**
   * Delivers what it can within the deadline, then releases everything it holds. With
   * `handover` (a reload made an output that takes over this one's spool), a spooled channel
   * only finishes the batch in flight and writes what it holds to the spool: its successor
   * delivers the rest.
   */
  close(deadlineMs: number, handover?: boolean): Promise<void>;
}

const buckets = (limits: RateLimits | undefined) => ({
  events: limits && limits.eventsPerSecond > 0 ? new TokenBucket(limits.eventsPerSecond) : undefined,
  bytes: limits && limits.bytesPerSecond > 0 ? new TokenBucket(limits.bytesPerSecond) : undefined,
});

function countDrop(dropped: Record<string, number>, reason: string, n = 1): void {
  dropped[reason] = (dropped[reason] ?? 0) + n;
}

/** NDJSON to a stream (stdout) or a rotated file, with back-pressure. */
export class StreamChannel implements OutputChannel {
  onDrain: () => void = () => undefined;
  private readonly writer: NdjsonWriter;
  private readonly limits: ReturnType<typeof buckets>;
  private readonly dropped: Record<string, number> = {};
  private received = 0;
  private lastError: string | undefined;
  /** The stream can never be written again (its reader is gone). */
  private dead = false;
  private closed = false;

  constructor(
    readonly name: string,
    private readonly out: Writable,
    rate?: RateLimits,
    private readonly onClose?: () => void,
  ) {
    this.limits = buckets(rate);
    this.writer = new NdjsonWriter(out, () => this.onDrain());
    out.on('error', (error) => {
      // A closed stdout (EPIPE) or a broken file: count, do not crash, and never hold the other
      // outputs back waiting for a drain that will not come.
      this.lastError = toHadesError(error).message;
      // Its reader gone (process.stdout stays open for writes, each failing): for good.
      if ((error as NodeJS.ErrnoException).code === 'EPIPE' || out.destroyed) {
        this.dead = true;
        this.onDrain();
      }
    });
  }

  /**
   * A channel writing to a RotatingFile with synchronous appends. With `after` (a reload: the
   * output it replaces may still have the path open), the file is opened and written only once
   * `after` has settled; meanwhile the lines wait in the stream, which pushes back on the
   * pipeline past its high-water mark, as a slow stdout does.
   */
  static toFile(name: string, file: RotatingFile, log: Logger | undefined, rate?: RateLimits, after?: Promise<unknown>): StreamChannel {
    let channel: StreamChannel | undefined = undefined;
    let failing = false;
    let waitFor = after?.then(
      () => undefined,
      () => undefined,
    );
    const append = (chunk: Buffer) => {
      try {
        file.write(chunk);
        if (failing) log?.info('file output writes again', { output: name, file: file.file });
        failing = false;
      } catch (error) {
        // A full disk must not stop the agent: count the lines and try again with the next batch.
        let lines = 0;
        for (let i = chunk.indexOf(0x0a); i !== -1; i = chunk.indexOf(0x0a, i + 1)) lines++;
        channel?.drop('write_failed', lines);
        if (!failing) log?.error('file output cannot write; events are dropped and counted', { output: name, err: error });
        failing = true;
      }
    };
    const sink = new Writable({
      highWaterMark: 1 << 20,
      write(chunk: Buffer, _encoding, callback) {
        if (waitFor === undefined) {
          append(chunk);
          return callback();
        }
        // The stream holds the chunks after this one in order until the callback.
        void waitFor.then(() => {
          waitFor = undefined;
          append(chunk);
          callback();
        });
      },
      final(callback) {
        file.close();
        callback();
      },
    });
    channel = new StreamChannel(name, sink, rate, () => file.close());
    return channel;
  }

  drop(reason: string, n = 1): void {
    countDrop(this.dropped, reason, n);
  }

  write(line: string): boolean {
    this.received++;
    if (this.closed) {
      this.drop('closed');
      return true;
    }
    if (this.dead) {
      // Its reader went away (stdout closed): nothing written to it can arrive.
      this.drop('write_failed');
      return true;
    }
    if (this.limits.events && !this.limits.events.tryTake(1)) {
      this.drop('rate_limited');
      return true;
    }
    if (this.limits.bytes && !this.limits.bytes.tryTake(Buffer.byteLength(line) + 1)) {
      this.drop('rate_limited');
      return true;
    }
    return this.writer.writeLine(line);
  }

  stats(): ChannelStats {
    const dropped = Object.values(this.dropped).reduce((a, b) => a + b, 0);
    return {
      name: this.name,
      in: this.received,
      out: this.writer.lines - (this.dropped['write_failed'] ?? 0),
      bytesOut: this.writer.bytes,
      dropped: { ...this.dropped },
      queued: Math.max(0, this.received - this.writer.lines - dropped + (this.dropped['write_failed'] ?? 0)),
      up: this.lastError === undefined,
      ...(this.lastError ? { lastError: this.lastError } : {}),
    };
  }

  async close(deadlineMs: number, _handover?: boolean): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.writer.close();
    if (this.out === process.stdout || this.out === process.stderr) return;
    // The deadline's timer goes as soon as the stream has ended: a stop waits for the slower of
    // the two only when the stream is stuck.
    const deadline = new AbortController();
    await Promise.race([new Promise<void>((resolve) => this.out.end(() => resolve())), sleep(deadlineMs, undefined, { signal: deadline.signal }).catch(() => undefined)]);
    deadline.abort();
    this.onClose?.();
  }
}

/** A batch of events as it goes to a receiver that acknowledges. */
export interface EventBatch {
  /** Spool sequence of the first and last record in the batch (stable across restarts: a receiver may use it to drop duplicates). */
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly events: number;
  /** NDJSON, one event per line. */
  readonly data: Buffer;
}

/** A receiver that acknowledges batches: the HTTP collector, later the server's gateway. */
export interface BatchTransport {
  readonly name: string;
  /**
   * Resolves once the receiver has stored the batch; rejects otherwise: HADES_ERR_OUTPUT_REFUSED
   * when the receiver will never take this batch (it is dropped and counted), any other error
   * to have it sent again.
   */
  send(batch: EventBatch, signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
  /** Events the receiver acknowledged but refused (invalid), by reason: lost, and counted. */
  dropped?(): Readonly<Record<string, number>>;
  /** A transport over streams (the server's): what became of them. */
  streamStats?(): StreamStats;
}

export interface SpooledChannelOptions {
  readonly batchEvents: number;
  readonly rate?: RateLimits;
  /** Disk write rate of the spool in bytes/s; 0 is unlimited. */
  readonly spoolWriteBytesPerSecond?: number;
  readonly log?: Logger;
  readonly backoffMinMs?: number;
  readonly backoffMaxMs?: number;
}

/** Bytes waiting in memory when the spool's write rate limit holds them back. */
const MAX_HELD_BYTES = 16 * 1024 * 1024;
/** A failure that repeats (a spool that keeps failing writes, batches refused) is logged about at most this often. */
const REPEAT_LOG_MS = 10_000;

/** A failure logged the first time and then at most every REPEAT_LOG_MS, with how many times it happened since. */
class RepeatedFailure {
  #loggedAt = -Infinity;
  #unlogged = 0;

  /** One more time: how many since the last log line when one is due now, else undefined. */
  due(): number | undefined {
    this.#unlogged++;
    const now = performance.now();
    if (now - this.#loggedAt < REPEAT_LOG_MS) return undefined;
    const times = this.#unlogged;
    this.#loggedAt = now;
    this.#unlogged = 0;
    return times;
  }
}
/** Lines are gathered into one spool record per turn of the event loop, or at this size. */
const RECORD_BYTES = 256 * 1024;
const RECORD_HEADER = 4;

/**
 * Write-ahead delivery: lines -> spool records (u32 event count + NDJSON) -> batches -> the
 * transport; the spool's cursor moves only on acknowledgement.
 */
export class SpooledChannel implements OutputChannel {
  onDrain: () => void = () => undefined;
  private pending: string[] = [];
  private pendingBytes = 0;
  private scheduled: NodeJS.Immediate | undefined;
  /** Records held back by the spool's write rate limit. */
  private held: Buffer[] = [];
  private heldBytes = 0;
  private heldTimer: NodeJS.Timeout | undefined;
  private readonly limits: ReturnType<typeof buckets>;
  private readonly spoolWrite: TokenBucket | undefined;
  private readonly dropped: Record<string, number> = {};
  private received = 0;
  /** Undefined until the spool is open (a reload's output waits for the old one's to close). */
  private spool: Spool | undefined;
  private openError: HadesError | undefined;
  /**
   * Settles once the spool is open, with the error when it could not be opened (the events
   * are then dropped as spool_write_failed, and counted).
   */
  readonly ready: Promise<HadesError | undefined>;
  /** Events in the spool when it was opened: not in `received`, and delivered with the rest. */
  private backlogAtStart = 0;
  private delivered = 0;
  private bytesOut = 0;
  private up = true;
  private lastError: string | undefined;
  private wake: (() => void) | undefined;
  private readonly abort = new AbortController();
  /** Aborted at a handover: the send loop stops waiting (backoff, rate) and sends no new batch. */
  private readonly handover = new AbortController();
  private readonly waits = AbortSignal.any([this.abort.signal, this.handover.signal]);
  private readonly loop: Promise<void>;
  private closing = false;
  private spoolDroppedSeen = 0;
  /**
   * Events the spool dropped to its size limit (its droppedEvents) that the receiver
   * acknowledged all the same: they were in the batch in flight when their segment went.
   */
  private droppedYetDelivered = 0;
  /** The seq and event count of each record of the batch read and not yet settled (empty when none is). */
  private inFlightSeqs: number[] = [];
  private inFlightCounts: number[] = [];
  private readonly spoolFails = new RepeatedFailure();
  private readonly refusals = new RepeatedFailure();

  /**
   * `spool` is the open spool, or its opening: until it settles, events wait in memory (as
   * when the spool's write rate holds them back, and within the same bound).
   */
  constructor(
    readonly name: string,
    spool: Spool | Promise<Spool>,
    private readonly transport: BatchTransport,
    private readonly options: SpooledChannelOptions,
  ) {
    this.limits = buckets(options.rate);
    const writeRate = options.spoolWriteBytesPerSecond ?? 0;
    // Bursts of four seconds pass, so that a storm's first seconds are not held back.
    this.spoolWrite = writeRate > 0 ? new TokenBucket(writeRate, writeRate * 4) : undefined;
    if (spool instanceof Promise) {
      this.ready = spool.then(
        (opened) => this.opened(opened),
        (error: unknown) => this.openFailed(error),
      );
    } else {
      this.opened(spool);
      this.ready = Promise.resolve(undefined);
    }
    this.loop = this.sendLoop();
  }

  private opened(spool: Spool): undefined {
    this.spool = spool;
    this.backlogAtStart = spool.stats().events;
    // What waited for the spool goes in now (unless close() is about to write it).
    if (!this.closing) this.writeHeld();
    return undefined;
  }

  private openFailed(error: unknown): HadesError {
    const e = toHadesError(error);
    this.openError = e;
    this.up = false;
    this.lastError = e.message;
    this.options.log?.error('spool cannot be opened; events are dropped and counted', { output: this.name, err: e });
    this.writeHeld();
    return e;
  }

  write(line: string): boolean {
    this.received++;
    if (this.closing) {
      countDrop(this.dropped, 'closed');
      return true;
    }
    this.pending.push(line);
    this.pendingBytes += line.length + 1;
    if (this.pendingBytes >= RECORD_BYTES) this.flush();
    else this.scheduled ??= setImmediate(() => this.flush());
    // Never pushes back: the spool absorbs a slow or absent receiver.
    return true;
  }

  /** Turns the pending lines into one spool record. */
  flush(): void {
    if (this.scheduled) {
      clearImmediate(this.scheduled);
      this.scheduled = undefined;
    }
    if (this.pending.length === 0) return;
    const text = this.pending.join('\n') + '\n';
    const record = Buffer.allocUnsafe(RECORD_HEADER + Buffer.byteLength(text));
    record.writeUInt32LE(this.pending.length, 0);
    record.write(text, RECORD_HEADER);
    this.pending = [];
    this.pendingBytes = 0;
    this.held.push(record);
    this.heldBytes += record.length;
    this.writeHeld();
  }

  private writeHeld(): void {
    if (this.openError) {
      for (const record of this.held) countDrop(this.dropped, 'spool_write_failed', record.readUInt32LE(0));
      this.held = [];
      this.heldBytes = 0;
    }
    const spool = this.spool;
    while (spool && this.held.length > 0) {
      const record = this.held[0]!;
      if (this.spoolWrite) {
        const wait = this.spoolWrite.take(record.length);
        if (wait > 0) {
          this.heldTimer ??= setTimeout(() => {
            this.heldTimer = undefined;
            this.writeHeld();
          }, Math.min(wait, 1000));
          break;
        }
      }
      this.held.shift();
      this.heldBytes -= record.length;
      this.appendRecord(spool, record);
    }
    // Held back by the write rate (or the spool's opening) for too long: the oldest held records go.
    while (this.heldBytes > MAX_HELD_BYTES && this.held.length > 1) {
      const record = this.held.shift()!;
      this.heldBytes -= record.length;
      countDrop(this.dropped, 'spool_rate_limited', record.readUInt32LE(0));
    }
    this.wake?.();
  }

  /**
   * Appends one record; a refusal is counted (spool_write_failed) unless the spool counted it
   * already (a record larger than the whole spool is dropped as spool_full).
   */
  private appendRecord(spool: Spool, record: Buffer): void {
    const dropped = spool.droppedEventsTotal;
    if (spool.append([record]) >= 0 || spool.droppedEventsTotal > dropped) return;
    countDrop(this.dropped, 'spool_write_failed', record.readUInt32LE(0));
    this.spoolWriteFailed();
  }

  /**
   * Logs a failed spool write: the first one, then at most one line every 10 s saying how many
   * batches failed since the last (a full disk fails every batch, and must not fill the log).
   */
  private spoolWriteFailed(): void {
    const times = this.spoolFails.due();
    if (times === undefined) return;
    this.options.log?.error('spool cannot be written; events are dropped and counted', { output: this.name, code: 'HADES_ERR_SPOOL_IO', failed_batches: times, dropped_total: this.dropped['spool_write_failed'] ?? 0 });
  }

  private async sendLoop(): Promise<void> {
    const { backoffMinMs = 200, backoffMaxMs = 30_000 } = this.options;
    let backoff = backoffMinMs;
    await this.ready;
    const spool = this.spool;
    if (!spool) return;
    // A handover stops the loop between batches: the batch in flight is finished, not the rest.
    while (!this.waits.aborted) {
      const batch = this.nextBatch(spool);
      if (!batch) {
        if (this.closing) return;
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
        continue;
      }
      const wait = Math.max(this.limits.events?.take(batch.events) ?? 0, this.limits.bytes?.take(batch.data.length) ?? 0);
      if (wait > 0) await sleep(wait, undefined, { signal: this.waits }).catch(() => undefined);
      if (this.waits.aborted) {
        this.settleInFlight(false);
        spool.rewind();
        return;
      }
      try {
        await this.transport.send(batch, this.abort.signal);
        this.settleInFlight(true);
        spool.commit(batch.lastSeq);
        this.delivered += batch.events;
        this.bytesOut += batch.data.length;
        if (!this.up) this.options.log?.info('output delivers again', { output: this.name });
        this.up = true;
        this.lastError = undefined;
        backoff = backoffMinMs;
      } catch (error) {
        const e = toHadesError(error);
        if (e.code === 'HADES_ERR_OUTPUT_REFUSED' && !this.waits.aborted) {
          // Never to be taken: sent again, it would hold back every later batch until the spool
          // fills. Its events are lost, counted and logged; the receiver is up.
          this.settleInFlight(true);
          spool.commit(batch.lastSeq);
          countDrop(this.dropped, 'output_refused', batch.events);
          const times = this.refusals.due();
          if (times !== undefined) this.options.log?.error('output refused a batch for good; its events are dropped and counted', { output: this.name, refused_batches: times, first_seq: batch.firstSeq, last_seq: batch.lastSeq, dropped_total: this.dropped['output_refused'] ?? 0, err: e });
          this.lastError = e.message;
          continue;
        }
        this.settleInFlight(false);
        spool.rewind();
        if (this.waits.aborted) return;
        if (this.up) this.options.log?.warn('output failed; events stay in the spool and are retried', { output: this.name, err: e });
        this.up = false;
        this.lastError = e.message;
        // Jitter keeps a fleet from retrying in step after a server restart.
        await sleep(backoff * (0.5 + Math.random() / 2), undefined, { signal: this.waits }).catch(() => undefined);
        backoff = Math.min(backoffMaxMs, backoff * 2);
      }
    }
  }

  /**
   * Events of the batch in flight whose records the spool dropped to its size limit meanwhile
   * (they are in its droppedEvents): neither lost nor delivered until the batch is settled, they
   * count as queued (the batch holds them in memory) rather than as spool_full.
   */
  private droppedInFlight(): number {
    const gone = this.spool?.committedSeq ?? 0;
    let events = 0;
    for (let i = 0; i < this.inFlightSeqs.length && this.inFlightSeqs[i]! <= gone; i++) events += this.inFlightCounts[i]!;
    return events;
  }

  /** The batch in flight was acknowledged (what the spool dropped of it was delivered after all), or not (lost). */
  private settleInFlight(delivered: boolean): void {
    if (delivered) this.droppedYetDelivered += this.droppedInFlight();
    this.inFlightSeqs = [];
    this.inFlightCounts = [];
  }

  private nextBatch(spool: Spool): EventBatch | undefined {
    const records = spool.read(64, 4 * 1024 * 1024);
    if (records.length === 0) return undefined;
    const parts: Buffer[] = [];
    let events = 0;
    let taken = 0;
    this.inFlightSeqs = [];
    this.inFlightCounts = [];
    for (const record of records) {
      const data = Buffer.from(record.data.buffer, record.data.byteOffset, record.data.byteLength);
      const count = data.length >= RECORD_HEADER ? data.readUInt32LE(0) : 0;
      if (taken > 0 && events + count > this.options.batchEvents) break;
      parts.push(data.subarray(RECORD_HEADER));
      this.inFlightSeqs.push(record.seq);
      this.inFlightCounts.push(count);
      events += count;
      taken++;
    }
    if (taken < records.length) {
      // Give back what did not fit: read again from the first record not taken.
      spool.rewind();
      spool.read(taken, Number.MAX_SAFE_INTEGER);
    }
    return { firstSeq: records[0]!.seq, lastSeq: records[taken - 1]!.seq, events, data: parts.length === 1 ? parts[0]! : Buffer.concat(parts) };
  }

  stats(): ChannelStats {
    const spool = this.spool?.stats();
    const dropped = { ...this.dropped };
    const inFlight = this.droppedInFlight();
    const full = (spool?.droppedEvents ?? 0) - this.droppedYetDelivered - inFlight;
    if (full > 0) dropped['spool_full'] = full;
    if (spool && spool.corruptRecords > 0) dropped['spool_corrupt_records'] = spool.corruptRecords;
    for (const [reason, n] of Object.entries(this.transport.dropped?.() ?? {})) if (n > 0) dropped[reason] = n;
    return {
      name: this.name,
      in: this.received,
      backlogAtStart: this.backlogAtStart,
      out: this.delivered,
      bytesOut: this.bytesOut,
      dropped,
      queued: this.pending.length + this.held.reduce((n, record) => n + record.readUInt32LE(0), 0) + inFlight,
      // Until the spool is open (a reload's handover), it holds nothing of this output's.
      spool: spool
        ? {
            records: spool.records,
            events: spool.events,
            bytes: spool.bytes,
            segments: spool.segments,
            corruptRecords: spool.corruptRecords,
            corruptEvents: spool.corruptEvents,
            corruptBytes: spool.corruptBytes,
            writeErrors: spool.writeErrors,
            readErrors: spool.readErrors,
            cursorResets: spool.cursorResets,
          }
        : NO_SPOOL,
      ...(this.transport.streamStats ? { stream: this.transport.streamStats() } : {}),
      up: this.up,
      ...(this.lastError ? { lastError: this.lastError } : {}),
    };
  }

  /** Spool drops reported since the last call (for the drop events). */
  takeSpoolDrops(): number {
    const total = (this.spool?.droppedEventsTotal ?? 0) - this.droppedYetDelivered - this.droppedInFlight();
    const fresh = total - this.spoolDroppedSeen;
    this.spoolDroppedSeen = total;
    return fresh;
  }

  async close(deadlineMs: number, handover = false): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const timer = setTimeout(() => this.abort.abort(new HadesError('HADES_ERR_OUTPUT_FAILED', 'agent stopping')), deadlineMs);
    try {
      this.flush();
      clearTimeout(this.heldTimer);
      // A spool still opening (this channel was made by a reload a moment ago) is waited for:
      // what is held must reach it before it is handed on.
      await this.ready;
      const spool = this.spool;
      for (const record of this.held) {
        if (spool) this.appendRecord(spool, record);
        else countDrop(this.dropped, 'spool_write_failed', record.readUInt32LE(0));
      }
      this.held = [];
      this.heldBytes = 0;
      if (handover) this.handover.abort();
      this.wake?.();
      await this.loop;
    } finally {
      clearTimeout(timer);
      this.abort.abort();
      // The spool is closed whatever the transport does: a successor may be waiting to open it.
      try {
        await this.transport.close();
      } finally {
        this.spool?.close();
      }
    }
  }
}
