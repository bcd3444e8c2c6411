/**
 * The agent's disk spool: records (serialised events) that an output cannot deliver yet wait
 * here, in order, until the output's receiver acknowledges them (at-least-once delivery). The
 * spool owns one folder. It is bounded (the oldest segments are dropped, and counted, to stay
 * under its size), survives `kill -9` of the agent and, with fsync, a power loss, and costs one
 * write syscall per appended batch. fsync runs on libuv's threadpool, so a slow disk never
 * blocks the event loop: a record counts as durable once an fsync that began after its write
 * has ended.
 *
 * On disk (integers little-endian):
 * - `<first seq, 16 digits>.seg`: the magic `HADESSP1`, then records
 *   `[u32 crc32][u32 length][u64 seq][u64 events before][payload]`. The checksum covers
 *   everything after itself, so a torn or zero-filled header is caught like a torn payload.
 *   "Events before" is a running count of the events (see `eventsOf`) in all earlier records,
 *   so that events held, dropped and lost are known exactly without reading the spool through.
 * - `cursor`: the committed seq and its running event count in two 24-byte slots at offsets 0
 *   and 512, `[u32 crc32][u32 magic][u64 seq][u64 events]`, written in turn: a torn write can
 *   only damage the slot being written, and the higher valid slot wins.
 *
 * Damage is stepped over, never read past: after a record that fails its check, reading goes on
 * at the next record whose header and checksum hold (its seq above the one expected, and within
 * its segment), so only the damaged records are lost, and counted. Opening checks only the newest
 * segment (its torn tail is cut off and counted, and the good records past damage further back
 * are kept); older segments are checked as they are read, so opening a full spool does not read
 * it through. Appends after an open go to a new segment.
 */
import { closeSync, constants, fdatasync, fdatasyncSync, fsync, fsyncSync, ftruncateSync, lstatSync, openSync, readSync, readdirSync, truncateSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { HadesError } from '../common/errors.js';
import { makeFolders } from '../runtime/folders.js';

export type FsyncPolicy = 'always' | 'interval' | 'never';

export interface SpoolOptions {
  /** The spool's own folder, created with mode 0700 when missing. One spool per folder. */
  readonly dir: string;
  /** Bytes on disk at most; the oldest whole segments are dropped (and counted) to stay under. */
  readonly maxBytes: number;
  /** Size at which a new segment is started (default 8 MiB; at most a quarter of maxBytes). */
  readonly segmentBytes?: number;
  /**
   * always: a batch is durable once an fsync that began after its write has ended;
   * interval: an fsync every fsyncIntervalMs; never: durable once in the page cache.
   */
  readonly fsync: FsyncPolicy;
  /** Default 1000. */
  readonly fsyncIntervalMs?: number;
  /** Recent batches kept in memory, so a reader that keeps up never reads the disk (default 4 MiB). */
  readonly memoryCacheBytes?: number;
  /** How many events a record holds (default 1 each); called once per record appended or read. */
  readonly eventsOf?: (data: Uint8Array) => number;
  /** Told (HADES_ERR_SPOOL_CORRUPT) each time records are found damaged and skipped; must not throw. */
  readonly onCorrupt?: (error: HadesError) => void;
  /**
   * Told (HADES_ERR_SPOOL_IO) when the folder was found removed while the spool runs and was made
   * again, so that appends go on; must not throw.
   */
  readonly onFolderRemade?: (error: HadesError) => void;
}

export interface SpoolRecord {
  readonly seq: number;
  /** A view of memory the spool never writes again: it stays valid as long as it is kept. */
  readonly data: Uint8Array;
}

export interface SpoolStats {
  /** Records appended and not committed (including any still to be found damaged). */
  records: number;
  /** Events in those records. */
  events: number;
  /** Bytes of segment files on disk. */
  bytes: number;
  segments: number;
  /** Records appended since open. */
  appended: number;
  durableSeq: number;
  committedSeq: number;
  /** The seq of the newest record. */
  lastSeq: number;
  /** The seq the next read() starts at. */
  readSeq: number;
  /** Uncommitted records given up to the size limit (oldest segments, or a batch larger than the spool). */
  droppedRecords: number;
  droppedEvents: number;
  /** On-disk bytes of the segments dropped with uncommitted records, plus the batches too large. */
  droppedBytes: number;
  /** Records of batches append() refused (returned -1: a write failed, or closed), and records over 16 MiB. */
  refusedRecords: number;
  refusedEvents: number;
  /**
   * Records lost to damage: the records between the damage and the next good record (to the
   * segment's end when none is left), each damage counted once; a torn tail counts one record.
   */
  corruptRecords: number;
  corruptEvents: number;
  /** Bytes that failed their check and were cut off or stepped over. */
  corruptBytes: number;
  /** Failed writes, truncations, deletions and fsyncs. */
  writeErrors: number;
  /** Segments that could not be read (the rest of each is skipped as damaged). */
  readErrors: number;
  /** Opens that found the cursor file unreadable and replayed from the oldest record. */
  cursorResets: number;
  /** Reads of segment files: none while the reader keeps up with the memory cache. */
  diskReads: number;
  cacheBytes: number;
}

const MAGIC = Buffer.from('HADESSP1', 'latin1');
/** crc32, length, seq, events before. */
const HEADER = 24;
const MAX_RECORD = 16 * 1024 * 1024;
const READ_CHUNK = 1024 * 1024;
const CURSOR_MAGIC = 0x31435348; // "HSC1"
const CURSOR_SLOT = 512;
const CURSOR_BYTES = 24;
/** Records returned by read() whose position and event count are remembered until committed. */
const MAX_TRACKED = 1 << 20;
const TWO_32 = 2 ** 32;
const SEGMENT_NAME = /^(\d{16})\.seg$/;
/** The highest first sequence a segment may have: far past any real spool, and exact in a double. */
const MAX_FIRST_SEQ = 2 ** 52;
const EMPTY = Buffer.alloc(0);
const ONE_EVENT = (): number => 1;

interface Segment {
  readonly firstSeq: number;
  readonly path: string;
  /** The running event count before its first record (NaN until known). */
  eventsBefore: number;
  /** eventsBefore was read from its first record (not borrowed from the segment before it). */
  eventsKnown: boolean;
  /** Bytes in the file: what counts against maxBytes. */
  size: number;
  /** Bytes that may be read: the size, or where damage was found. */
  end: number;
  /**
   * The damage found in it, by the byte it starts at, with where good records resume: each is
   * counted when found, and stepped over without counting when read again (a rewind).
   */
  holes: Map<number, Hole> | undefined;
  /** A read of it failed (its rest was counted as lost). */
  readFailed: boolean;
  /** Removed from the folder (an fd may still be open on it). */
  deleted: boolean;
}

/** Where good records resume after damage: the next good record's offset, seq and events before it (NaN when unknown). */
interface Hole {
  readonly to: number;
  readonly seq: number;
  readonly eventsBefore: number;
}

/** One appended batch as written (records in their on-disk form from `start`), kept for readers. */
interface Block {
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly buf: Buffer;
  readonly start: number;
  readonly seg: Segment;
  /** File offset of buf[0]. */
  readonly fileStart: number;
}

const RECORD = 0;
const END = 1;
const DAMAGED = 2;

function readU64(buf: Buffer, offset: number): number {
  return buf.readUInt32LE(offset) + buf.readUInt32LE(offset + 4) * TWO_32;
}

function writeU64(buf: Buffer, offset: number, value: number): void {
  buf.writeUInt32LE(value >>> 0, offset);
  buf.writeUInt32LE(Math.floor(value / TWO_32), offset + 4);
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // Already closed: nothing is left to release.
  }
}

/**
 * Reads one segment's records in order, checking each record's checksum, length and seq. Owns one
 * read-only fd. Chunks are fresh buffers that are never written again, so the payloads it hands
 * out stay valid.
 */
class SegmentReader {
  seg: Segment | undefined;
  /** File offset and seq of the next record. */
  off = 0;
  seq = 0;
  /** The running event count after the last record read (NaN when not known). */
  eventsNext = NaN;
  /** The last record read: its payload (a view of the chunk), offset and events before it. */
  data: Buffer = EMPTY;
  recordOff = 0;
  eventsBefore = 0;
  reads = 0;
  private fd = -1;
  private chunk: Buffer = EMPTY;
  private chunkPos = 0;
  private prevEvents = NaN;
  private readonly head = Buffer.alloc(HEADER - 4);

  constructor(private readonly eventsOf: (data: Uint8Array) => number) {}

  open(seg: Segment): void {
    this.close();
    this.fd = openSync(seg.path, 'r');
    this.seg = seg;
    this.off = 0;
    this.seq = seg.firstSeq;
    this.eventsNext = seg.eventsKnown ? seg.eventsBefore : NaN;
  }

  /** Continues at a record whose offset is known (in the open segment). */
  moveTo(off: number, seq: number, eventsBefore = NaN): void {
    this.off = off;
    this.seq = seq;
    this.eventsNext = eventsBefore;
  }

  close(): void {
    if (this.fd >= 0) closeQuietly(this.fd);
    this.fd = -1;
    this.seg = undefined;
    this.chunk = EMPTY;
    this.data = EMPTY;
  }

  /** RECORD (see `data`), END (no more bytes to read) or DAMAGED (at `off`). */
  next(): number {
    const seg = this.seg;
    if (!seg) return END;
    if (this.off === 0) {
      // A damaged magic alone loses nothing: the records' own checks decide.
      if (!this.fill(seg, MAGIC.length)) return seg.end === 0 ? END : DAMAGED;
      this.off = MAGIC.length;
    }
    if (this.off >= seg.end) return END;
    if (!this.fill(seg, HEADER)) return DAMAGED;
    // The seq and the length are checked before the payload is read: a damaged length never
    // makes a read larger than a record may be, nor past the segment's end.
    const length = this.chunk.readUInt32LE(this.off - this.chunkPos + 4);
    if (readU64(this.chunk, this.off - this.chunkPos + 8) !== this.seq) return DAMAGED;
    if (length > MAX_RECORD || !this.fill(seg, HEADER + length)) return DAMAGED;
    const chunk = this.chunk;
    const at = this.off - this.chunkPos;
    chunk.copy(this.head, 0, at + 4, at + HEADER);
    const data = chunk.subarray(at + HEADER, at + HEADER + length);
    if (crc32(data, crc32(this.head)) !== chunk.readUInt32LE(at)) return DAMAGED;
    this.data = data;
    this.recordOff = this.off;
    this.eventsBefore = readU64(chunk, at + 16);
    this.prevEvents = this.eventsNext;
    this.eventsNext = this.eventsBefore + (this.eventsOf(data) >>> 0);
    this.off += HEADER + length;
    this.seq++;
    return RECORD;
  }

  /**
   * The first record past byte `from` (where record `fromSeq` was expected and failed its check)
   * whose header and checksum hold, with a seq above `fromSeq` and at most `maxSeq`: where
   * reading resumes. Undefined when none is left before the segment's end. Searched byte by byte
   * in chunks of 1 MiB; a candidate's seq must also fit the bytes between (each record takes at
   * least a header), and its length the segment, before its payload is read for the checksum.
   */
  resync(from: number, fromSeq: number, maxSeq: number): Hole | undefined {
    const seg = this.seg;
    if (!seg) return undefined;
    const end = seg.end;
    const head = Buffer.allocUnsafe(HEADER - 4);
    let pos = from + 1;
    while (pos + HEADER <= end) {
      const buf = this.readAt(pos, Math.min(end - pos, READ_CHUNK + HEADER));
      if (buf.length < HEADER) return undefined;
      const stop = buf.length - HEADER;
      for (let at = 0; at <= stop; at++) {
        const seq = readU64(buf, at + 8);
        const p = pos + at;
        if (seq <= fromSeq || seq > maxSeq || (seq - fromSeq) * HEADER > p - from) continue;
        const length = buf.readUInt32LE(at + 4);
        if (length > MAX_RECORD || p + HEADER + length > end) continue;
        let record = buf;
        let r = at;
        if (at + HEADER + length > buf.length) {
          record = this.readAt(p, HEADER + length);
          r = 0;
          if (record.length < HEADER + length) continue;
        }
        record.copy(head, 0, r + 4, r + HEADER);
        if (crc32(record.subarray(r + HEADER, r + HEADER + length), crc32(head)) !== record.readUInt32LE(r)) continue;
        return { to: p, seq, eventsBefore: readU64(record, r + 16) };
      }
      pos += stop + 1;
    }
    return undefined;
  }

  /** Steps back over the record next() just returned. */
  unread(): void {
    this.off = this.recordOff;
    this.seq--;
    this.eventsNext = this.prevEvents;
  }

  /** Up to `size` bytes of the open segment from `off`, in a fresh buffer (shorter at the file's end). */
  private readAt(off: number, size: number): Buffer {
    const buf = Buffer.allocUnsafeSlow(size);
    let got = 0;
    while (got < size) {
      const r = readSync(this.fd, buf, got, size - got, off + got);
      if (r === 0) break;
      got += r;
    }
    this.reads++;
    return got === size ? buf : buf.subarray(0, got);
  }

  /** Makes the bytes [off, off + n) available in `chunk`; false when the segment ends first. */
  private fill(seg: Segment, n: number): boolean {
    if (this.off >= this.chunkPos && this.off + n <= this.chunkPos + this.chunk.length) return true;
    if (this.off + n > seg.end) return false;
    this.chunk = this.readAt(this.off, Math.min(seg.end - this.off, Math.max(n, READ_CHUNK)));
    this.chunkPos = this.off;
    return this.chunk.length >= n;
  }
}

interface Waiter {
  readonly seq: number;
  readonly resolve: (seq: number) => void;
}

export class Spool {
  /**
   * Called (never from inside append) when the records up to `seq` became durable per the fsync
   * policy: after an fsync ended ('always', 'interval'), or once written ('never').
   */
  onDurable: ((seq: number) => void) | undefined;

  private readonly dir: string;
  private readonly maxBytes: number;
  private readonly segmentBytes: number;
  private readonly policy: FsyncPolicy;
  private readonly cacheMax: number;
  private readonly intervalMs: number;
  private readonly eventsOf: (data: Uint8Array) => number;

  /** Oldest first; the last one is `current` while appends go to it. */
  private readonly segments: Segment[] = [];
  private current: { readonly seg: Segment; readonly fd: number } | undefined;
  private readonly reader: SegmentReader;
  private dirFd = -1;
  private cursorFd = -1;
  private cursorSlot = 1;
  private readonly cursorBuf = Buffer.alloc(CURSOR_BYTES);
  private readonly cursorBody = this.cursorBuf.subarray(4);
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  private last = 0;
  private committed = 0;
  private readPos = 1;
  private durable = 0;
  private notified = 0;
  /** Running event counts: through the newest record, and through the committed one. */
  private totalEvents = 0;
  private committedEvents = 0;
  private totalBytes = 0;

  /** Segments no longer appended to, waiting for their fsync before their fd is closed. */
  private unsynced: { readonly seg: Segment; readonly fd: number }[] = [];
  /** The fds an fsync on the threadpool is working through; they are not closed meanwhile. */
  private syncing: readonly number[] | undefined;
  private closeAfterSync: number[] = [];
  private dirDirty = false;
  private cursorDirty = false;
  private waiters: Waiter[] = [];
  private notifyQueued = false;

  private readonly blocks: Block[] = [];
  private cacheBytes = 0;
  private hintBlock: Block | undefined;
  private hintOff = 0;
  private hintSeq = 0;
  private scratch = EMPTY;
  private readonly head = Buffer.alloc(HEADER - 4);

  /** Records read and not committed: seq, events through it, and where it is (for rewinds). */
  private readonly trackSeq: number[] = [];
  private readonly trackEvents: number[] = [];
  private readonly trackOff: number[] = [];
  private readonly trackSeg: Segment[] = [];
  private trackHead = 0;
  private trackedUpTo = 0;

  private appended = 0;
  private droppedRecords = 0;
  private droppedEvents = 0;
  private droppedBytes = 0;
  private refusedRecords = 0;
  private refusedEvents = 0;
  private corruptRecords = 0;
  private readonly onCorrupt: ((error: HadesError) => void) | undefined;
  private readonly onFolderRemade: ((error: HadesError) => void) | undefined;
  private corruptEvents = 0;
  private corruptBytes = 0;
  private writeErrors = 0;
  private readErrors = 0;
  private cursorResets = 0;

  private constructor(options: SpoolOptions) {
    const atLeast = (name: string, value: number | undefined, min: number): number => {
      if (value === undefined || !Number.isFinite(value) || value < min) {
        throw new HadesError('HADES_ERR_INTERNAL', `spool option ${name} must be a number of at least ${min}, not ${String(value)}`);
      }
      return Math.floor(value);
    };
    if (!['always', 'interval', 'never'].includes(options.fsync)) {
      throw new HadesError('HADES_ERR_INTERNAL', `spool option fsync must be always, interval or never, not ${String(options.fsync)}`);
    }
    this.dir = options.dir;
    this.onCorrupt = options.onCorrupt;
    this.onFolderRemade = options.onFolderRemade;
    this.maxBytes = atLeast('maxBytes', options.maxBytes, 1024);
    this.segmentBytes = Math.min(atLeast('segmentBytes', options.segmentBytes ?? 8 * 1024 * 1024, 1), Math.floor(this.maxBytes / 4));
    this.policy = options.fsync;
    this.intervalMs = atLeast('fsyncIntervalMs', options.fsyncIntervalMs ?? 1000, 1);
    this.cacheMax = atLeast('memoryCacheBytes', options.memoryCacheBytes ?? 4 * 1024 * 1024, 0);
    this.eventsOf = options.eventsOf ?? ONE_EVENT;
    this.reader = new SegmentReader(this.eventsOf);
  }

  /**
   * Opens (creating it when missing) the spool in `options.dir` and recovers it synchronously:
   * cuts off a torn tail, finds the committed cursor, continues the sequence.
   * Throws HADES_ERR_SPOOL_IO when the folder cannot be used.
   */
  static open(options: SpoolOptions): Spool {
    const spool = new Spool(options);
    try {
      spool.recover();
    } catch (error) {
      spool.abandon();
      if (error instanceof HadesError) throw error;
      const reason = error instanceof Error ? error.message : String(error);
      throw new HadesError('HADES_ERR_SPOOL_IO', `the spool folder ${options.dir} cannot be used: ${reason}`, {
        cause: error,
        details: { dir: options.dir },
      });
    }
    return spool;
  }

  /** Records appended and not committed. */
  get pending(): number {
    return this.last - this.committed;
  }

  /** The highest seq on disk per the fsync policy. */
  get durableSeq(): number {
    return this.durable;
  }

  get committedSeq(): number {
    return this.committed;
  }

  get lastSeq(): number {
    return this.last;
  }

  /** Events given up to the size limit since open (stats().droppedEvents, without the copy). */
  get droppedEventsTotal(): number {
    return this.droppedEvents;
  }

  /**
   * Appends a batch with one write and returns the seq of its last record. Never throws. When the
   * write fails (disk full, I/O error) or the spool is closed, the batch is refused (counted) and
   * -1 returned; a batch larger than the whole spool is dropped (counted) and -1 returned.
   * Records over 16 MiB are refused one by one; the others are appended.
   */
  append(records: readonly Uint8Array[]): number {
    const count = records.length;
    if (count === 0) return this.last;
    let bytes = 0;
    let accepted = 0;
    for (let i = 0; i < count; i++) {
      const n = records[i]!.length;
      if (n <= MAX_RECORD) {
        bytes += HEADER + n;
        accepted++;
      }
    }
    if (accepted < count) {
      for (const r of records) {
        if (r.length <= MAX_RECORD) continue;
        this.refusedRecords++;
        this.refusedEvents += this.eventsOf(r) >>> 0;
      }
      if (accepted === 0) return -1;
    }
    if (this.closed) return this.refuse(records);
    // A batch that cannot fit even in an empty spool is dropped before anything else is.
    if (bytes + MAGIC.length > this.maxBytes || !this.makeRoom(bytes + MAGIC.length)) {
      for (const r of records) {
        if (r.length > MAX_RECORD) continue;
        this.droppedRecords++;
        this.droppedEvents += this.eventsOf(r) >>> 0;
      }
      this.droppedBytes += bytes;
      return -1;
    }
    let cur = this.current;
    if (cur && cur.seg.size > 0 && cur.seg.size + bytes > this.segmentBytes) {
      this.retireCurrent();
      cur = undefined;
    }
    try {
      cur ??= this.createSegment();
    } catch {
      this.writeErrors++;
      return this.refuse(records);
    }
    const offset = cur.seg.size;
    const start = offset === 0 ? MAGIC.length : 0;
    const total = start + bytes;
    const cached = total <= this.cacheMax;
    const buf = cached ? Buffer.allocUnsafe(total) : this.scratchOf(total);
    if (start > 0) MAGIC.copy(buf, 0);
    const head = this.head;
    let at = start;
    let seq = this.last;
    let events = this.totalEvents;
    for (let i = 0; i < count; i++) {
      const data = records[i]!;
      const n = data.length;
      if (n > MAX_RECORD) continue;
      seq++;
      head.writeUInt32LE(n, 0);
      writeU64(head, 4, seq);
      writeU64(head, 12, events);
      events += this.eventsOf(data) >>> 0;
      buf.writeUInt32LE(crc32(data, crc32(head)), at);
      head.copy(buf, at + 4);
      buf.set(data, at + HEADER);
      at += HEADER + n;
    }
    let written = 0;
    try {
      while (written < total) {
        const n = writeSync(cur.fd, buf, written, total - written, offset + written);
        if (n <= 0) throw new HadesError('HADES_ERR_SPOOL_IO', 'a segment write made no progress');
        written += n;
      }
    } catch {
      this.writeErrors++;
      if (written > 0) this.undoWrite(cur);
      // Appends go on in a new segment, so that this one can be deleted once its records are
      // delivered: on a full disk it may be the only one, and the space it holds the only space.
      this.retireCurrent();
      this.deleteCommitted();
      this.refusedRecords += accepted;
      this.refusedEvents += events - this.totalEvents;
      return -1;
    }
    if (start > 0) cur.seg.eventsBefore = this.totalEvents;
    cur.seg.size = offset + total;
    cur.seg.end = cur.seg.size;
    this.totalBytes += total;
    const first = this.last + 1;
    this.last = seq;
    this.totalEvents = events;
    this.appended += accepted;
    if (cached) this.remember({ firstSeq: first, lastSeq: seq, buf, start, seg: cur.seg, fileStart: offset });
    if (this.policy === 'never') {
      this.durable = seq;
      this.queueNotify();
    } else if (this.policy === 'always') {
      this.flush();
    }
    return seq;
  }

  /**
   * The next records after the read position, in order: at most `maxRecords`, and at most
   * `maxBytes` of payload unless a single record is larger (it then comes alone). Empty when
   * caught up. Records may be returned before they are durable. Damaged records are skipped,
   * and counted, as they are found.
   */
  read(maxRecords: number, maxBytes: number): SpoolRecord[] {
    const out: SpoolRecord[] = [];
    let bytes = 0;
    while (out.length < maxRecords && this.readPos <= this.last && !this.closed) {
      const seq = this.readPos;
      let data: Buffer;
      if (this.findCached(seq)) {
        const block = this.hintBlock!;
        const at = this.hintOff;
        const n = block.buf.readUInt32LE(at + 4);
        if (out.length > 0 && bytes + n > maxBytes) break;
        data = block.buf.subarray(at + HEADER, at + HEADER + n);
        this.hintOff += HEADER + n;
        this.hintSeq = seq + 1;
        if (seq > this.trackedUpTo) this.track(seq, readU64(block.buf, at + 16) + (this.eventsOf(data) >>> 0), block.seg, block.fileStart + at);
      } else {
        if (!this.seekDisk(seq)) continue;
        const r = this.reader;
        if (out.length > 0 && bytes + r.data.length > maxBytes) {
          r.unread();
          break;
        }
        data = r.data;
        if (seq > this.trackedUpTo) this.track(seq, r.eventsNext, r.seg!, r.recordOff);
      }
      out.push({ seq, data });
      bytes += data.length;
      this.readPos = seq + 1;
    }
    return out;
  }

  /**
   * Everything up to `seq` was acknowledged: advances the committed cursor (written at once,
   * made durable with the next fsync) and deletes the segments that hold only committed records.
   */
  commit(seq: number): void {
    if (this.closed || !(seq > this.committed)) return;
    const upTo = Math.min(Math.floor(seq), this.last);
    if (upTo <= this.committed) return;
    let events = this.untrack(upTo);
    if (Number.isNaN(events)) events = this.eventsBeforeOf(upTo + 1);
    this.committed = upTo;
    if (!Number.isNaN(events)) this.committedEvents = Math.min(this.totalEvents, Math.max(this.committedEvents, events));
    if (this.readPos <= upTo) this.readPos = upTo + 1;
    this.evictCommitted();
    this.deleteCommitted();
    this.writeCursor();
  }

  /** Moves the read position back to the first uncommitted record (after a failed send). */
  rewind(): void {
    this.readPos = this.committed + 1;
  }

  /**
   * Resolves with the durable seq once everything appended before the call is durable, after
   * the next fsync attempt failed (compare the result), or at close.
   */
  sync(): Promise<number> {
    if (this.closed || this.durable >= this.last) return Promise.resolve(this.durable);
    return new Promise((resolve) => {
      this.waiters.push({ seq: this.last, resolve });
      this.flush();
    });
  }

  stats(): SpoolStats {
    return {
      records: this.last - this.committed,
      events: this.totalEvents - this.committedEvents,
      bytes: this.totalBytes,
      segments: this.segments.length,
      appended: this.appended,
      durableSeq: this.durable,
      committedSeq: this.committed,
      lastSeq: this.last,
      readSeq: this.readPos,
      droppedRecords: this.droppedRecords,
      droppedEvents: this.droppedEvents,
      droppedBytes: this.droppedBytes,
      refusedRecords: this.refusedRecords,
      refusedEvents: this.refusedEvents,
      corruptRecords: this.corruptRecords,
      corruptEvents: this.corruptEvents,
      corruptBytes: this.corruptBytes,
      writeErrors: this.writeErrors,
      readErrors: this.readErrors,
      cursorResets: this.cursorResets,
      diskReads: this.reader.reads,
      cacheBytes: this.cacheBytes,
    };
  }

  /**
   * Makes everything durable with a final synchronous fsync (unless the policy is 'never'), then
   * closes every fd and the timer. Idempotent. An fd that an fsync on the threadpool is still
   * using is closed when that fsync ends.
   */
  close(): void {
    if (this.closed) return;
    clearInterval(this.timer);
    this.timer = undefined;
    if (this.policy !== 'never') {
      let failed = false;
      const files = this.unsynced.filter((u) => !u.seg.deleted).map((u) => u.fd);
      if (this.current) files.push(this.current.fd);
      if (this.cursorDirty) files.push(this.cursorFd);
      for (const fd of files) {
        try {
          fdatasyncSync(fd);
        } catch {
          failed = true;
        }
      }
      if (this.dirDirty) {
        try {
          fsyncSync(this.dirFd);
        } catch {
          failed = true;
        }
      }
      if (failed) this.writeErrors++;
      else this.durable = this.last;
    }
    this.closed = true;
    for (const u of this.unsynced) this.release(u.fd);
    this.unsynced = [];
    if (this.current) this.release(this.current.fd);
    this.current = undefined;
    this.abandon();
    this.blocks.length = 0;
    this.cacheBytes = 0;
    this.hintBlock = undefined;
    this.notify(false);
  }

  // --- recovery

  /** Makes the folder if missing and opens it and its cursor file (created if missing); neither is left open when the other fails. */
  private openFolder(): { dirFd: number; cursorFd: number } {
    makeFolders(this.dir, 0o700);
    const dirFd = openSync(this.dir, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      return { dirFd, cursorFd: openSync(path.join(this.dir, 'cursor'), constants.O_RDWR | constants.O_CREAT, 0o600) };
    } catch (error) {
      closeQuietly(dirFd);
      throw error;
    }
  }

  private recover(): void {
    ({ dirFd: this.dirFd, cursorFd: this.cursorFd } = this.openFolder());
    const stored = this.readCursor();
    // Damage found at or before the acknowledged cursor loses nothing (set again below).
    this.committed = stored.seq;
    this.committedEvents = stored.events;
    for (const name of readdirSync(this.dir)) {
      const match = SEGMENT_NAME.exec(name);
      if (!match) continue;
      const file = path.join(this.dir, name);
      // Past what a sequence reaches (and where seq + 1 is still exact): not one of ours, and
      // taking it would leave the reader unable to move past it.
      if (Number(match[1]) > MAX_FIRST_SEQ) {
        this.onCorrupt?.(new HadesError('HADES_ERR_SPOOL_CORRUPT', `${file}: not a segment of this spool (its number is past any sequence); left alone`));
        continue;
      }
      // A FIFO, a folder, a device or a link is no segment of ours: opening a FIFO to read waits
      // for a writer for good (the agent hung at its start), and a link leads out of the folder.
      const stat = lstatSync(file);
      if (!stat.isFile()) {
        this.onCorrupt?.(new HadesError('HADES_ERR_SPOOL_CORRUPT', `${file}: not a segment of this spool (not a regular file); left alone`));
        continue;
      }
      const size = stat.size;
      const seg: Segment = { firstSeq: Number(match[1]), path: file, eventsBefore: NaN, eventsKnown: false, size, end: size, holes: undefined, readFailed: false, deleted: false };
      seg.eventsBefore = this.firstEventsBefore(seg);
      seg.eventsKnown = !Number.isNaN(seg.eventsBefore);
      this.segments.push(seg);
    }
    this.segments.sort((a, b) => a.firstSeq - b.firstSeq);
    const tail = this.recoverTail();
    // Unknown counts (a damaged first record) borrow the previous segment's: never decreasing.
    let before = 0;
    for (const seg of this.segments) {
      if (Number.isNaN(seg.eventsBefore) || seg.eventsBefore < before) seg.eventsBefore = before;
      before = seg.eventsBefore;
    }
    // Sequences never go back (a receiver may drop a batch whose numbers it has seen), even when
    // the cursor says more was delivered than the spool holds: say so, it is not normal.
    if (stored.seq > tail.seq && this.segments.length > 0) {
      this.onCorrupt?.(new HadesError('HADES_ERR_SPOOL_CORRUPT', `${path.join(this.dir, 'cursor')}: records up to ${stored.seq} are marked delivered, past the newest record written (${tail.seq}); the records at or before it are taken as delivered`));
    }
    this.last = Math.max(stored.seq, tail.seq);
    this.totalEvents = Math.max(stored.events, tail.events, before);
    const oldest = this.segments[0];
    if (oldest && oldest.firstSeq - 1 > stored.seq) {
      this.committed = oldest.firstSeq - 1;
      this.committedEvents = oldest.eventsBefore;
    } else {
      this.committed = stored.seq;
      this.committedEvents = Math.min(stored.events, this.totalEvents);
    }
    this.readPos = this.committed + 1;
    // Counted before the committed segments go: removing one takes its size off the total.
    for (const seg of this.segments) this.totalBytes += seg.size;
    this.deleteCommitted();
    if (this.committed !== stored.seq || this.cursorResets > 0) this.writeCursor();
    if (this.policy !== 'never') {
      // What a killed predecessor left in the page cache is made durable before it counts so.
      for (const seg of this.segments) {
        const fd = openSync(seg.path, 'r');
        try {
          fdatasyncSync(fd);
        } finally {
          closeSync(fd);
        }
      }
      fdatasyncSync(this.cursorFd);
      fsyncSync(this.dirFd);
      this.cursorDirty = false;
    }
    this.durable = this.last;
    this.notified = this.last;
    if (this.policy === 'interval') {
      this.timer = setInterval(() => this.flush(), this.intervalMs);
      this.timer.unref();
    }
  }

  /** The events-before count in a segment's first record header, or NaN (checked later, when read). */
  private firstEventsBefore(seg: Segment): number {
    const buf = Buffer.alloc(MAGIC.length + HEADER);
    const fd = openSync(seg.path, 'r');
    try {
      if (readSync(fd, buf, 0, buf.length, 0) < buf.length) return NaN;
    } finally {
      closeSync(fd);
    }
    return readU64(buf, MAGIC.length + 8) === seg.firstSeq ? readU64(buf, MAGIC.length + 16) : NaN;
  }

  /**
   * Checks every record of the newest segment. Damage with good records past it (a bit flip, a
   * hole of zeros a power loss left) is stepped over: the good records stay, and what was lost is
   * counted and remembered (the reader steps over it without counting it again). The file is cut
   * after its last good record (a torn write, counted as one record). A segment left without
   * records is deleted and the one before it checked in turn (it was complete when the deleted one
   * was started). Returns the last good seq and event count: appends go on after them, in a new
   * segment, so that a later open finds every record in order.
   */
  private recoverTail(): { seq: number; events: number } {
    const r = this.reader;
    for (;;) {
      const seg = this.segments.at(-1);
      if (!seg) return { seq: 0, events: 0 };
      r.open(seg);
      let last = seg.firstSeq - 1;
      let events = NaN;
      let status = r.next();
      for (;;) {
        if (status === RECORD) {
          last = r.seq - 1;
          events = r.eventsNext;
        } else if (status === END) {
          break;
        } else {
          const from = r.seq;
          const hole = r.resync(r.off, from, from + Math.floor((seg.size - r.off) / HEADER));
          if (!hole) break;
          this.countHole(seg, r.off, from, r.eventsNext, hole, 'skipped when the spool was opened; the good records after it are kept');
          r.moveTo(hole.to, hole.seq, hole.eventsBefore);
        }
        status = r.next();
      }
      const good = status === END ? seg.size : r.off;
      r.close();
      if (good < seg.size) {
        this.corruptRecords += 1;
        this.corruptBytes += seg.size - good;
        this.onCorrupt?.(new HadesError('HADES_ERR_SPOOL_CORRUPT', `${seg.path}: a torn or damaged record at byte ${good} (${seg.size - good} bytes) was cut off when the spool was opened`));
      }
      if (last < seg.firstSeq) {
        unlinkSync(seg.path);
        this.segments.pop();
        continue;
      }
      if (good < seg.size) {
        truncateSync(seg.path, good);
        seg.size = good;
        seg.end = good;
      }
      return { seq: last, events: Number.isNaN(events) ? 0 : events };
    }
  }

  /** The committed seq and event count from the newer valid slot of the cursor file, or zeros. */
  private readCursor(): { seq: number; events: number } {
    const buf = Buffer.alloc(CURSOR_SLOT + CURSOR_BYTES);
    const n = readSync(this.cursorFd, buf, 0, buf.length, 0);
    let best = { seq: -1, events: 0 };
    for (let slot = 0; slot < 2; slot++) {
      const at = slot * CURSOR_SLOT;
      if (n < at + CURSOR_BYTES || buf.readUInt32LE(at + 4) !== CURSOR_MAGIC) continue;
      if (crc32(buf.subarray(at + 4, at + CURSOR_BYTES)) !== buf.readUInt32LE(at)) continue;
      const seq = readU64(buf, at + 8);
      const events = readU64(buf, at + 16);
      if (Number.isSafeInteger(seq) && Number.isSafeInteger(events) && seq > best.seq) {
        best = { seq, events };
        this.cursorSlot = slot;
      }
    }
    if (best.seq >= 0) return best;
    if (n > 0) this.cursorResets++;
    return { seq: 0, events: 0 };
  }

  private writeCursor(): void {
    const b = this.cursorBuf;
    b.writeUInt32LE(CURSOR_MAGIC, 4);
    writeU64(b, 8, this.committed);
    writeU64(b, 16, this.committedEvents);
    b.writeUInt32LE(crc32(this.cursorBody), 0);
    const slot = this.cursorSlot ^ 1;
    try {
      writeSync(this.cursorFd, b, 0, CURSOR_BYTES, slot * CURSOR_SLOT);
      this.cursorSlot = slot;
      if (this.policy !== 'never') this.cursorDirty = true;
    } catch {
      this.writeErrors++;
    }
  }

  /** Closes the folder's fds without syncing: for close() and for a failed open. */
  private abandon(): void {
    this.closed = true;
    this.reader.close();
    if (this.dirFd >= 0) this.release(this.dirFd);
    if (this.cursorFd >= 0) this.release(this.cursorFd);
    this.dirFd = -1;
    this.cursorFd = -1;
  }

  // --- segments

  /** The seq of the last record segment `i` holds (or should hold). */
  private segmentLast(i: number): number {
    const next = this.segments[i + 1];
    return next ? next.firstSeq - 1 : this.last;
  }

  /** The running event count after segment `i`. */
  private segmentEvents(i: number): number {
    const next = this.segments[i + 1];
    return next ? next.eventsBefore : this.totalEvents;
  }

  /** The index of the segment that holds `seq`, or -1. */
  private segmentIndex(seq: number): number {
    let lo = 0;
    let hi = this.segments.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.segments[mid]!.firstSeq <= seq) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  }

  private createSegment(): { seg: Segment; fd: number } {
    const firstSeq = this.last + 1;
    const file = path.join(this.dir, `${String(firstSeq).padStart(16, '0')}.seg`);
    let fd: number;
    try {
      fd = openSync(file, 'wx', 0o600);
    } catch (error) {
      // The folder was removed while the spool runs (a clean-up of the data folder): without it
      // every later batch would be refused, for good. Made again, appends go on in it.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      this.remakeFolder();
      fd = openSync(file, 'wx', 0o600);
    }
    const seg: Segment = { firstSeq, path: file, eventsBefore: this.totalEvents, eventsKnown: true, size: 0, end: 0, holes: undefined, readFailed: false, deleted: false };
    this.segments.push(seg);
    this.current = { seg, fd };
    if (this.policy !== 'never') this.dirDirty = true;
    return this.current;
  }

  /**
   * Makes the folder again, with a new cursor file holding the committed position, and opens it
   * in place of the removed one. The records of the segments removed with it cannot be read any
   * more: they are counted as damaged (HADES_ERR_SPOOL_CORRUPT) when the reader reaches them.
   */
  private remakeFolder(): void {
    const { dirFd, cursorFd } = this.openFolder();
    if (this.dirFd >= 0) this.release(this.dirFd);
    if (this.cursorFd >= 0) this.release(this.cursorFd);
    this.dirFd = dirFd;
    this.cursorFd = cursorFd;
    this.writeCursor();
    if (this.policy !== 'never') this.dirDirty = true;
    this.onFolderRemade?.(new HadesError('HADES_ERR_SPOOL_IO', `the spool folder ${this.dir} was removed while in use and is made again; records it held, not yet delivered and no longer in memory, are lost (counted as damaged when reached)`));
  }

  /** Stops appending to the current segment; its fd is closed after its fsync. */
  private retireCurrent(): void {
    const cur = this.current;
    if (!cur) return;
    this.current = undefined;
    if (cur.seg.size === 0) {
      this.release(cur.fd);
      this.removeSegment(cur.seg);
    } else if (this.policy === 'never') {
      this.release(cur.fd);
    } else {
      this.unsynced.push(cur);
    }
  }

  /** Cuts a partly written batch off; when that fails, appends continue in a new segment. */
  private undoWrite(cur: { seg: Segment; fd: number }): void {
    try {
      ftruncateSync(cur.fd, cur.seg.size);
    } catch {
      this.writeErrors++;
      this.retireCurrent();
    }
  }

  private removeSegment(seg: Segment): void {
    const i = this.segments.indexOf(seg);
    if (i >= 0) this.segments.splice(i, 1);
    seg.deleted = true;
    this.totalBytes -= seg.size;
    if (this.reader.seg === seg) this.reader.close();
    // An unlinked file's space comes back only when its last fd is closed: no need to sync it first.
    const k = this.unsynced.findIndex((u) => u.seg === seg);
    if (k >= 0) this.release(this.unsynced.splice(k, 1)[0]!.fd);
    try {
      unlinkSync(seg.path);
    } catch {
      this.writeErrors++;
    }
  }

  /** Deletes the oldest segments while they hold only committed records (never the current one). */
  private deleteCommitted(): void {
    while (this.segments.length > 0) {
      const seg = this.segments[0]!;
      if (seg === this.current?.seg || this.segmentLast(0) > this.committed) break;
      this.removeSegment(seg);
    }
  }

  /** Drops the oldest segments until `bytes` more fit under maxBytes; false when they cannot. */
  private makeRoom(bytes: number): boolean {
    while (this.totalBytes + bytes > this.maxBytes && this.segments.length > 0) {
      const seg = this.segments[0]!;
      const last = this.segmentLast(0);
      const lost = last - Math.max(this.committed, seg.firstSeq - 1);
      if (lost > 0) {
        const through = this.segmentEvents(0);
        this.droppedRecords += lost;
        this.droppedEvents += Math.max(0, through - Math.max(this.committedEvents, seg.eventsBefore));
        this.droppedBytes += seg.size;
        this.committed = last;
        this.committedEvents = Math.max(this.committedEvents, through);
        if (this.readPos <= last) this.readPos = last + 1;
        this.untrack(last);
        this.evictCommitted();
      }
      if (seg === this.current?.seg) {
        this.release(this.current.fd);
        this.current = undefined;
      }
      this.removeSegment(seg);
    }
    return this.totalBytes + bytes <= this.maxBytes;
  }

  /** Counts the records of a batch append() turns away (returns -1); those over 16 MiB are counted already. */
  private refuse(records: readonly Uint8Array[]): number {
    for (const r of records) {
      if (r.length > MAX_RECORD) continue;
      this.refusedRecords++;
      this.refusedEvents += this.eventsOf(r) >>> 0;
    }
    return -1;
  }

  /** A reusable buffer for batches the memory cache does not keep. */
  private scratchOf(size: number): Buffer {
    if (this.scratch.length < size) this.scratch = Buffer.allocUnsafeSlow(Math.max(size, 64 * 1024));
    return this.scratch;
  }

  // --- memory cache

  private remember(block: Block): void {
    this.blocks.push(block);
    this.cacheBytes += block.buf.length;
    while (this.cacheBytes > this.cacheMax) this.cacheBytes -= this.blocks.shift()!.buf.length;
  }

  private evictCommitted(): void {
    while (this.blocks.length > 0 && this.blocks[0]!.lastSeq <= this.committed) this.cacheBytes -= this.blocks.shift()!.buf.length;
  }

  /** Points the hint at record `seq` when the memory cache holds it. */
  private findCached(seq: number): boolean {
    const hint = this.hintBlock;
    if (hint && this.hintSeq === seq && seq <= hint.lastSeq) return true;
    const blocks = this.blocks;
    let lo = 0;
    let hi = blocks.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const block = blocks[mid]!;
      if (block.lastSeq < seq) {
        lo = mid + 1;
      } else if (block.firstSeq > seq) {
        hi = mid - 1;
      } else {
        let at = block.start;
        for (let s = block.firstSeq; s < seq; s++) at += HEADER + block.buf.readUInt32LE(at + 4);
        this.hintBlock = block;
        this.hintOff = at;
        this.hintSeq = seq;
        return true;
      }
    }
    return false;
  }

  // --- records read and not yet committed

  private track(seq: number, eventsThrough: number, seg: Segment, off: number): void {
    this.trackedUpTo = seq;
    if (this.trackSeq.length - this.trackHead >= MAX_TRACKED) return;
    this.trackSeq.push(seq);
    this.trackEvents.push(eventsThrough);
    this.trackSeg.push(seg);
    this.trackOff.push(off);
  }

  /** Forgets the tracked records up to `seq`; returns the events through `seq` when tracked, else NaN. */
  private untrack(seq: number): number {
    let events = NaN;
    let head = this.trackHead;
    while (head < this.trackSeq.length && this.trackSeq[head]! <= seq) {
      if (this.trackSeq[head] === seq) events = this.trackEvents[head]!;
      head++;
    }
    this.trackHead = head;
    if (head === this.trackSeq.length) {
      this.trackHead = 0;
      this.trackSeq.length = this.trackEvents.length = this.trackSeg.length = this.trackOff.length = 0;
    } else if (head > 4096 && head * 2 > this.trackSeq.length) {
      this.trackHead = 0;
      this.trackSeq.splice(0, head);
      this.trackEvents.splice(0, head);
      this.trackSeg.splice(0, head);
      this.trackOff.splice(0, head);
    }
    return events;
  }

  /** Where a tracked record is, or -1. */
  private tracked(seq: number): number {
    let lo = this.trackHead;
    let hi = this.trackSeq.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const s = this.trackSeq[mid]!;
      if (s === seq) return mid;
      if (s < seq) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** The running event count before record `seq` (for a commit of a record read() did not return). */
  private eventsBeforeOf(seq: number): number {
    if (seq > this.last) return this.totalEvents;
    const seg = this.segments[this.segmentIndex(seq)];
    if (seg?.firstSeq === seq) return seg.eventsBefore;
    if (this.findCached(seq)) return readU64(this.hintBlock!.buf, this.hintOff + 16);
    if (!this.seekDisk(seq)) return NaN;
    this.reader.unread();
    return this.reader.eventsBefore;
  }

  // --- disk reads

  /**
   * Reads record `seq` from its segment into the reader (`data`, `eventsNext`) and returns true.
   * Damage on the way is stepped over (see `hole`); when record `seq` itself was lost, the read
   * position moves to the next good record and false is returned. A read that fails skips the
   * rest of the segment, counted.
   */
  private seekDisk(seq: number): boolean {
    const i = this.segmentIndex(seq);
    if (i < 0) {
      // Older than anything kept; cannot happen while committed >= oldest - 1.
      this.readPos = Math.max(this.readPos, this.segments[0]?.firstSeq ?? this.last + 1);
      return false;
    }
    const seg = this.segments[i]!;
    const last = this.segmentLast(i);
    const r = this.reader;
    try {
      if (r.seg !== seg || r.seq !== seq) {
        const k = this.tracked(seq);
        if (k >= 0 && this.trackSeg[k] === seg) {
          if (r.seg !== seg) r.open(seg);
          r.moveTo(this.trackOff[k]!, seq);
        } else if (r.seg !== seg || r.seq > seq) {
          r.open(seg);
        }
      }
      for (;;) {
        if (r.next() === RECORD) {
          if (r.seq - 1 === seq) return true;
          continue;
        }
        const from = r.seq;
        const hole = this.hole(i, r);
        // Never backwards, never twice: the read position only moves on, over lost records.
        if (this.readPos >= from && this.readPos < hole.seq) this.readPos = hole.seq;
        if (hole.seq > last) {
          r.close();
          return false;
        }
        r.moveTo(hole.to, hole.seq, hole.eventsBefore);
        if (hole.seq > seq) return false;
      }
    } catch {
      this.readErrors++;
      const here = r.seg === seg;
      this.unreadable(i, here ? r.seq : seq, here ? r.off : 0, here ? r.eventsNext : NaN);
      return false;
    }
  }

  /**
   * The reader, in segment `i`, found no good record where record `r.seq` belongs (at `r.off`):
   * where good records resume, found by a search past the damage (the end of the segment when
   * none is left). Counted once: the same damage read again (after a rewind) is stepped over.
   */
  private hole(i: number, r: SegmentReader): Hole {
    const seg = this.segments[i]!;
    const off = r.off;
    const known = seg.holes?.get(off);
    if (known) return known;
    const last = this.segmentLast(i);
    const from = r.seq;
    const found = from <= last ? r.resync(off, from, last) : undefined;
    const hole = found ?? { to: Math.max(off, seg.end), seq: last + 1, eventsBefore: this.segmentEvents(i) };
    let eventsFrom = r.eventsNext;
    if (Number.isNaN(eventsFrom)) eventsFrom = this.eventsThrough(from - 1);
    this.countHole(seg, off, from, eventsFrom, hole, found ? 'skipped; reading goes on at the next good record' : 'skipped, to the end of the segment');
    return hole;
  }

  /** Counts the records, events and bytes of segment `seg` lost to damage at `off` (record `from` expected there), remembers it, and reports it. */
  private countHole(seg: Segment, off: number, from: number, eventsFrom: number, hole: Hole, outcome: string): void {
    (seg.holes ??= new Map()).set(off, hole);
    // Records at or before the cursor were acknowledged (an earlier run counted their loss).
    if (from <= this.committed) {
      from = this.committed + 1;
      eventsFrom = this.committedEvents;
    }
    const lost = hole.seq - from;
    if (lost <= 0) return;
    this.corruptRecords += lost;
    if (!Number.isNaN(eventsFrom) && !Number.isNaN(hole.eventsBefore)) this.corruptEvents += Math.max(0, hole.eventsBefore - eventsFrom);
    this.corruptBytes += Math.max(0, hole.to - off);
    const records = lost === 1 ? `record ${from} is` : `records ${from} to ${hole.seq - 1} are`;
    this.onCorrupt?.(new HadesError('HADES_ERR_SPOOL_CORRUPT', `${seg.path}: damage at byte ${off}: ${records} lost (${hole.to - off} bytes), ${outcome}`));
  }

  /** The running event count through record `seq` when known without reading (committed, or read and tracked), else NaN. */
  private eventsThrough(seq: number): number {
    if (seq === this.committed) return this.committedEvents;
    const k = this.tracked(seq);
    return k >= 0 ? this.trackEvents[k]! : NaN;
  }

  /** Segment `i` could not be read from `off` (record `from` on): counts the rest once and moves past it. */
  private unreadable(i: number, from: number, off: number, eventsFrom: number): void {
    const seg = this.segments[i]!;
    const last = this.segmentLast(i);
    if (!seg.readFailed && last >= from) {
      seg.readFailed = true;
      this.corruptRecords += last - from + 1;
      this.onCorrupt?.(new HadesError('HADES_ERR_SPOOL_CORRUPT', `${seg.path}: could not be read from byte ${off}; records ${from} to ${last} are skipped`));
      if (!Number.isNaN(eventsFrom)) this.corruptEvents += Math.max(0, this.segmentEvents(i) - eventsFrom);
      this.corruptBytes += Math.max(0, seg.size - off);
      if (seg !== this.current?.seg) seg.end = Math.min(seg.end, off);
    }
    this.reader.close();
    if (this.readPos <= last) this.readPos = last + 1;
  }

  // --- durability

  /** Starts an fsync of everything written since the last one, unless one is under way. */
  private flush(): void {
    if (this.syncing || this.closed) return;
    const retired = this.unsynced;
    this.unsynced = [];
    const files: number[] = [];
    for (const u of retired) if (!u.seg.deleted) files.push(u.fd);
    const target = this.last;
    if (this.current && target > this.durable) files.push(this.current.fd);
    if (this.cursorDirty) files.push(this.cursorFd);
    if (this.dirDirty) files.push(this.dirFd);
    this.cursorDirty = false;
    this.dirDirty = false;
    const owned = retired.map((u) => u.fd);
    if (files.length === 0) {
      for (const fd of owned) closeQuietly(fd);
      if (target > this.durable) this.durable = target;
      this.notify(false);
      return;
    }
    this.syncing = files;
    this.syncNext(files, 0, target, owned, false);
  }

  /** One fsync at a time, so a flush holds at most one threadpool thread. */
  private syncNext(files: readonly number[], i: number, target: number, owned: readonly number[], failed: boolean): void {
    const fd = files[i];
    if (fd === undefined) {
      this.synced(target, owned, failed);
      return;
    }
    const next = (error: NodeJS.ErrnoException | null): void => this.syncNext(files, i + 1, target, owned, failed || error !== null);
    if (fd === this.dirFd) fsync(fd, next);
    else fdatasync(fd, next);
  }

  private synced(target: number, owned: readonly number[], failed: boolean): void {
    this.syncing = undefined;
    for (const fd of owned) closeQuietly(fd);
    for (const fd of this.closeAfterSync) closeQuietly(fd);
    this.closeAfterSync = [];
    if (this.closed) return;
    if (failed) {
      // After a failed fsync the kernel may have dropped the pages: continue in a new file.
      this.writeErrors++;
      this.retireCurrent();
    } else if (target > this.durable) {
      this.durable = target;
    }
    this.notify(failed);
    if (!failed && this.last > this.durable && (this.policy === 'always' || this.waiters.length > 0)) this.flush();
  }

  /** Closes an fd now, or after the fsync that is using it. */
  private release(fd: number): void {
    if (this.syncing?.includes(fd)) this.closeAfterSync.push(fd);
    else closeQuietly(fd);
  }

  private queueNotify(): void {
    if (this.notifyQueued) return;
    this.notifyQueued = true;
    queueMicrotask(() => {
      this.notifyQueued = false;
      this.notify(false);
    });
  }

  private notify(failed: boolean): void {
    const seq = this.durable;
    if (seq > this.notified) {
      this.notified = seq;
      this.onDurable?.(seq);
    }
    if (this.waiters.length === 0) return;
    const waiting: Waiter[] = [];
    for (const w of this.waiters) {
      if (failed || this.closed || w.seq <= seq) w.resolve(seq);
      else waiting.push(w);
    }
    this.waiters = waiting;
  }
}
