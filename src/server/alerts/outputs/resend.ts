/**
 * The alerts a stream output (syslog over TCP and TLS) has written on its connection and that the
 * receiver's TCP has not acknowledged yet, kept to be written again, first, on the next
 * connection should this one die (at least once). Each alert's place is the offset of its last
 * byte in the connection's count of bytes written; what the receiver acknowledged is the bytes
 * handed to the kernel minus those the kernel still holds unacknowledged (tcp-acks.ts), so every
 * alert that ends at or before it is released. Pure bookkeeping: the transport does the I/O.
 */

export interface HeldAlert<T> {
  /** What the alert is known by: kept small, since the bounds count the frames only. */
  readonly item: T;
  /** The bytes written on the connection (the framed message). */
  readonly frame: Buffer;
  /** Offset just past the alert's last byte on the current connection; undefined: not written on it (yet). */
  end: number | undefined;
  /** Connections it was written on. */
  sends: number;
  /** Connections that died while it was the first unacknowledged alert on them. */
  failures: number;
}

export interface Acknowledgement {
  /** Alerts released: acknowledged by the receiver's TCP. */
  readonly released: number;
  /** Whether the count of acknowledged bytes grew since the previous reading. */
  readonly progress: boolean;
}

export class ResendBuffer<T> {
  private entries: (HeldAlert<T> | undefined)[] = [];
  /** Index of the first entry still held in `entries` (shifting an array is linear). */
  private first = 0;
  /** Bytes of the frames held. */
  private heldBytes = 0;
  /** Bytes written on the current connection (passed to socket.write). */
  private written = 0;
  /** Bytes of the current connection that reached the kernel (their write completed). */
  private inKernel = 0;
  /** Bytes of the current connection the receiver acknowledged, by the latest reading (may be below zero under TLS: its records add bytes). */
  private acked = 0;
  /** Counts the connections, so that a reading of an earlier connection is ignored. */
  private connection = 0;
  private unwrittenCount = 0;

  constructor(
    readonly maxAlerts: number,
    readonly maxBytes: number,
  ) {}

  /** Alerts held: written and not acknowledged, or waiting to be written again. */
  get size(): number {
    return this.entries.length - this.first;
  }

  /** Alerts waiting to be written again (the last ones held: after `restart`, all of them). */
  get pending(): number {
    return this.unwrittenCount;
  }

  get bytes(): number {
    return this.heldBytes;
  }

  /** The current connection's number (changes at `restart`). */
  get generation(): number {
    return this.connection;
  }

  /** The bytes of the current connection in the kernel: what a reading of the kernel's table is taken against. */
  get base(): number {
    return this.inKernel;
  }

  /** Whether one more frame of `bytes` fits; an empty buffer takes any one frame. */
  hasRoom(bytes: number): boolean {
    return this.size === 0 || (this.size < this.maxAlerts && this.heldBytes + bytes <= this.maxBytes);
  }

  /** The alerts held, oldest first. */
  heldAlerts(): HeldAlert<T>[] {
    return this.entries.slice(this.first) as HeldAlert<T>[];
  }

  /** Alerts to write again on this connection, before any new one (after `restart`). */
  unwritten(): HeldAlert<T>[] {
    return this.entries.slice(this.entries.length - this.unwrittenCount) as HeldAlert<T>[];
  }

  /** Takes the place of `bytes` about to be written that no alert is held for; returns its end offset. */
  reserve(bytes: number): number {
    this.written += bytes;
    return this.written;
  }

  /**
   * Holds an alert whose frame was written at `end` (reserve); false when a reading already
   * showed it acknowledged (nothing to hold). Alerts to write again go first (unwritten).
   */
  hold(item: T, frame: Buffer, end: number): boolean {
    if (end <= this.acked) return false;
    this.entries.push({ item, frame, end, sends: 1, failures: 0 });
    this.heldBytes += frame.length;
    return true;
  }

  /** An alert written again on this connection; returns its end offset. */
  rewrite(entry: HeldAlert<T>): number {
    if (entry.end === undefined) this.unwrittenCount--;
    entry.end = this.reserve(entry.frame.length);
    entry.sends++;
    return entry.end;
  }

  /** The write that ends at `end` completed: its bytes are in the kernel. */
  completed(end: number, generation = this.connection): void {
    if (generation === this.connection && end > this.inKernel) this.inKernel = end;
  }

  /**
   * A reading of the kernel: `unacknowledged` bytes of the connection were not acknowledged when
   * `base` bytes had reached the kernel (its value when the reading started: bytes that reached
   * it during the reading only make the count smaller than the truth). Releases the alerts that
   * end at or before what was acknowledged.
   */
  acknowledge(generation: number, base: number, unacknowledged: number): Acknowledgement {
    if (generation !== this.connection) return { released: 0, progress: false };
    const acked = base - unacknowledged;
    if (acked <= this.acked) return { released: 0, progress: false };
    this.acked = acked;
    return { released: this.release((entry) => entry.end !== undefined && entry.end <= acked), progress: true };
  }

  /** Releases every alert written on this connection: acknowledgements cannot be read, written is all there is to know. */
  releaseWritten(): number {
    return this.release((entry) => entry.end !== undefined);
  }

  /**
   * The connection died: every alert held is to be written again on the next one, from offset 0.
   * The first one, when it was written on the dead connection, is charged a failure (what the
   * receiver choked on, or what it never acknowledged); it is given up, and returned, once it has
   * `maxFailures` of them (0: never).
   */
  restart(maxFailures: number): HeldAlert<T> | undefined {
    this.connection++;
    this.written = 0;
    this.inKernel = 0;
    this.acked = 0;
    let givenUp: HeldAlert<T> | undefined;
    const head = this.entries[this.first];
    if (head?.end !== undefined) {
      head.failures++;
      if (maxFailures > 0 && head.failures >= maxFailures) {
        givenUp = head;
        this.release((entry) => entry === head);
      }
    }
    for (let i = this.first; i < this.entries.length; i++) this.entries[i]!.end = undefined;
    this.unwrittenCount = this.size;
    return givenUp;
  }

  /** Empties the buffer (the output closes); returns what was held. */
  clear(): number {
    const count = this.size;
    this.entries = [];
    this.first = 0;
    this.heldBytes = 0;
    this.unwrittenCount = 0;
    return count;
  }

  /** Releases the leading alerts that `done` says are done. Alerts are released in order. */
  private release(done: (entry: HeldAlert<T>) => boolean): number {
    let count = 0;
    while (this.first < this.entries.length && done(this.entries[this.first]!)) {
      this.heldBytes -= this.entries[this.first]!.frame.length;
      this.entries[this.first] = undefined;
      this.first++;
      count++;
    }
    if (this.first > 1024 && this.first * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.first);
      this.first = 0;
    }
    return count;
  }
}
