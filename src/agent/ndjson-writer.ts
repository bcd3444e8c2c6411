/**
 * Writes events as NDJSON to a stream in batches: each line is encoded straight into a reusable
 * buffer, and a batch is written once per turn of the event loop or when the buffer is full.
 * Buffers come back to a small pool when their write completes, so a storm does not allocate
 * (and the garbage collector does not chase) a new buffer per batch.
 */
import type { Writable } from 'node:stream';
import type { HadesEvent } from '../common/events/index.js';
import { serializeEvent } from './serialize.js';

const BATCH_BYTES = 256 * 1024;
const POOL_SIZE = 4;

export class NdjsonWriter {
  private readonly pool: Buffer[] = [];
  private batch: Buffer;
  private used = 0;
  private scheduled: NodeJS.Immediate | undefined;
  private waiting = false;
  /** Lines and bytes written since creation. */
  lines = 0;
  bytes = 0;

  constructor(
    private readonly out: Writable,
    /** Called once the stream has drained after write() returned false. */
    private readonly onDrain: () => void,
  ) {
    this.batch = Buffer.allocUnsafeSlow(BATCH_BYTES);
  }

  /** Queues one event as a line. Returns false when the caller should wait for onDrain. */
  write(event: HadesEvent): boolean {
    return this.writeLine(serializeEvent(event));
  }

  /** Queues one serialised event (without its newline). Returns false when the caller should wait for onDrain. */
  writeLine(line: string): boolean {
    // A UTF-16 unit takes at most 3 bytes in UTF-8: flush first when the line might not fit.
    let ok = true;
    const worst = line.length * 3 + 1;
    if (this.used + worst > this.batch.length) {
      ok = this.flush();
      if (worst > this.batch.length) this.batch = Buffer.allocUnsafeSlow(worst);
    }
    this.used += this.batch.write(line, this.used);
    this.batch[this.used++] = 0x0a;
    this.lines++;
    this.scheduled ??= setImmediate(() => this.flush());
    return ok && !this.waiting;
  }

  /** Writes what is queued. Returns false when the stream asked to wait. */
  flush(): boolean {
    if (this.scheduled) {
      clearImmediate(this.scheduled);
      this.scheduled = undefined;
    }
    if (this.used === 0) return !this.waiting;
    const full = this.batch;
    const chunk = full.subarray(0, this.used);
    this.bytes += this.used;
    this.used = 0;
    this.batch = this.pool.pop() ?? Buffer.allocUnsafeSlow(BATCH_BYTES);
    const ok = this.out.write(chunk, () => {
      if (full.length === BATCH_BYTES && this.pool.length < POOL_SIZE) this.pool.push(full);
    });
    if (!ok && !this.waiting) {
      this.waiting = true;
      this.out.once('drain', () => {
        this.waiting = false;
        this.onDrain();
      });
    }
    return ok;
  }

  /** Flushes and cancels the pending flush: after close() nothing is scheduled. */
  close(): void {
    this.flush();
  }
}
