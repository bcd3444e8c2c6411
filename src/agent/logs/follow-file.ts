/**
 * Follows a log file as `tail -F` does, polled: new lines as they are appended, across rotation
 * (the name now points to another file) and truncation (copytruncate: read again from the start).
 *
 * - After a rotation the old file is still read for a few seconds: the logger writes to it until
 *   it is told to reopen (logrotate's postrotate), and those lines count too.
 * - A position (inode, offset, and the file's first bytes) is given back after each poll, so the
 *   collector resumes where it was after a restart: lines written while it was down are read, and
 *   so is the rest of a file rotated meanwhile, found among its rotated names (`PATH.1`,
 *   `PATH-20261128`) by its inode. A file is recognised by inode and first bytes, not by device
 *   number, which may change across reboots (btrfs, device mapper).
 */
import { closeSync, constants, fstatSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import path from 'node:path';

export interface FilePosition {
  readonly dev: number;
  readonly ino: number;
  readonly offset: number;
  /** The file's first bytes (hex, up to 64 bytes): with the inode, tells the same file. */
  readonly head?: string;
}

export interface FollowerCounters {
  /** Complete lines handed over. */
  lines: number;
  /** Lines longer than the limit, handed over cut. */
  truncated: number;
  /** Times the name pointed to a new file. */
  rotations: number;
  /** Times the file became shorter than what was read (copytruncate). */
  truncations: number;
  /**
   * Bytes of a rotated file left unread: at a start, the rest of the file the kept position was
   * taken in is read from its rotated name, up to 8 polls' worth (what was logged while the agent
   * was down, past that, is not read).
   */
  unread_bytes: number;
}

export interface FileFollowerOptions {
  readonly maxLineBytes: number;
  /** Where a previous run stopped; absent: start at the end (the file's history is not replayed). */
  readonly position?: FilePosition;
  readonly onLine: (line: string) => void;
  /** How long a rotated file is still read (ms); 5 s by default. */
  readonly retireMs?: number;
  /** Told once when the path names something that is not a regular file (a FIFO, a folder). */
  readonly onProblem?: (message: string) => void;
}

/** Opened without blocking: a FIFO under a log's name would hold the collector's reads for ever. */
const READ_NONBLOCK = constants.O_RDONLY | constants.O_NONBLOCK;

/** Most bytes read in one poll, so one huge append does not hold the process. */
const MAX_READ_PER_POLL = 1024 * 1024;
const CHUNK = 64 * 1024;
const HEAD_BYTES = 64;

interface Open {
  readonly fd: number;
  readonly dev: number;
  readonly ino: number;
  offset: number;
  head: string;
  /** A rotated file: closed once this time (ms) has passed. */
  retireAt?: number;
}

function statOf(file: string): { dev: number; ino: number; size: number } | undefined {
  try {
    const s = statSync(file);
    return s.isFile() ? { dev: s.dev, ino: s.ino, size: s.size } : undefined;
  } catch {
    return undefined;
  }
}

function headOf(fd: number): string {
  const buffer = Buffer.alloc(HEAD_BYTES);
  try {
    return buffer.subarray(0, readSync(fd, buffer, 0, HEAD_BYTES, 0)).toString('hex');
  } catch {
    return '';
  }
}

/** Whether the file no longer begins with the bytes it began with when read (emptied and written again). */
function rewritten(c: Open): boolean {
  if (c.head === '') return false;
  const now = headOf(c.fd);
  return now !== '' && !now.startsWith(c.head);
}

/** Whether an open file is the one a position was taken in. */
function same(position: FilePosition, ino: number, head: string): boolean {
  if (position.ino !== ino) return false;
  // Positions kept before heads were: the inode alone. Else the head read then must begin the file now.
  return position.head === undefined || head.startsWith(position.head) || position.head.startsWith(head);
}

export class FileFollower {
  readonly counters: FollowerCounters = { lines: 0, truncated: 0, rotations: 0, truncations: 0, unread_bytes: 0 };
  private current: Open | undefined;
  private retired: Open | undefined;
  private saved: FilePosition | undefined;
  /** Before the first open attempt of this run. */
  private first = true;
  /** The path named something other than a file when last opened (reported once). */
  private notAFile = false;
  private partial: Buffer[] = [];
  private partialBytes = 0;
  /** Inside an overlong line: the rest of it up to its newline is skipped. */
  private skipping = false;
  /** Bytes of the current line read so far (kept or skipped): a position points at the line's start. */
  private lineBytes = 0;
  private readonly buffer = Buffer.allocUnsafe(CHUNK);

  constructor(
    readonly path: string,
    private readonly options: FileFollowerOptions,
  ) {
    this.saved = options.position;
  }

  /** Where the next read starts (the start of a line read in part); undefined before the file was first seen. */
  position(): FilePosition | undefined {
    const c = this.current;
    return c ? { dev: c.dev, ino: c.ino, offset: c.offset - this.lineBytes, head: c.head } : this.saved;
  }

  /**
   * Reads what was appended since the last poll, at most about 1 MiB: true when there is more
   * (the caller polls again soon). Never throws (an unreadable file is retried).
   */
  poll(now = Date.now()): boolean {
    let budget = MAX_READ_PER_POLL;
    if (this.retired) {
      budget -= this.drain(this.retired, budget);
      if (now >= (this.retired.retireAt ?? 0)) this.closeRetired();
    }
    // A new file after a rotation whose old file is still read starts at 0 (no catching up to do).
    if (!this.current && !this.open(this.retired ? 0 : undefined)) return budget <= 0;
    const c = this.current as Open;
    // Emptied and written again past where it was read (copytruncate, then a burst) before this
    // poll: its first bytes are not those read. Read from the start, not on from the old offset.
    const emptied = c.offset > 0 && rewritten(c);
    if (emptied) this.truncated(c);
    const read = this.drain(c, budget);
    budget -= read;
    if (read > 0 && (emptied || c.head.length < HEAD_BYTES * 2)) c.head = headOf(c.fd); // it was shorter when opened
    if (budget <= 0) return true; // more to read: the next poll goes on
    const there = statOf(this.path);
    if (!there || there.ino !== c.ino || there.dev !== c.dev) {
      // Rotated (or removed): the old file is still read for a while, the new one from its start.
      this.closeRetired();
      this.endLine();
      this.saved = this.position();
      this.retired = { ...c, retireAt: now + (this.options.retireMs ?? 5000) };
      this.current = undefined;
      this.counters.rotations++;
      if (there && this.open(0)) return this.drain(this.current as unknown as Open, budget) >= budget;
      return false;
    }
    if (there.size < c.offset) {
      this.truncated(c);
      const more = this.drain(c, budget) >= budget;
      // The position kept from now on names this content, not what was there before.
      c.head = headOf(c.fd);
      return more;
    }
    return false;
  }

  /** The file was emptied (copytruncate): it is read again from its start. */
  private truncated(c: Open): void {
    this.counters.truncations++;
    this.resetLine();
    c.offset = 0;
  }

  close(): void {
    this.closeRetired();
    if (!this.current) return;
    this.saved = this.position();
    try {
      closeSync(this.current.fd);
    } catch {
      // already closed
    }
    this.current = undefined;
  }

  private closeRetired(): void {
    if (!this.retired) return;
    // No new file yet: a restart catches up with the rotated one from where it was left.
    if (!this.current) this.saved = { dev: this.retired.dev, ino: this.retired.ino, offset: this.retired.offset, head: this.retired.head };
    try {
      closeSync(this.retired.fd);
    } catch {
      // already closed
    }
    this.retired = undefined;
  }

  /** Opens the file; `from` forces the offset (a file that appeared after a rotation). */
  private open(from?: number): boolean {
    // Only a file there when the collector starts is taken from its end: one that appears later is new.
    const first = this.first;
    this.first = false;
    let fd: number;
    try {
      fd = openSync(this.path, READ_NONBLOCK);
    } catch {
      return false;
    }
    const s = fstatSync(fd);
    if (!s.isFile()) {
      closeSync(fd);
      if (!this.notAFile) this.options.onProblem?.(`${this.path} is not a regular file (${s.isFIFO() ? 'a FIFO' : s.isDirectory() ? 'a folder' : 'a device or socket'}): not read`);
      this.notAFile = true;
      return false;
    }
    this.notAFile = false;
    const head = headOf(fd);
    let offset: number;
    const saved = this.saved;
    if (from !== undefined) offset = from;
    else if (saved && same(saved, s.ino, head) && saved.offset <= s.size) offset = saved.offset;
    else if (saved && saved.ino === s.ino && saved.offset > s.size) offset = 0; // emptied meanwhile
    else if (saved) {
      // The file was replaced while this collector was not reading: finish the old one where it
      // was rotated to, then read the new one from its start.
      this.finishRotated(saved);
      offset = 0;
    } else offset = first ? s.size : 0;
    this.current = { fd, dev: s.dev, ino: s.ino, offset, head };
    return true;
  }

  /** Reads the rest of the file a position was taken in, found among PATH's rotated names by inode. */
  private finishRotated(saved: FilePosition): void {
    const folder = path.dirname(this.path);
    const base = path.basename(this.path);
    let names: string[];
    try {
      names = readdirSync(folder).filter((n) => n.length > base.length && n.startsWith(base) && (n[base.length] === '.' || n[base.length] === '-') && !/\.(gz|xz|bz2|zst)$/.test(n));
    } catch {
      return;
    }
    for (const name of names.slice(0, 64)) {
      const file = path.join(folder, name);
      const s = statOf(file);
      if (!s || s.ino !== saved.ino || s.size < saved.offset) continue;
      let fd: number;
      try {
        fd = openSync(file, READ_NONBLOCK);
      } catch {
        continue;
      }
      try {
        if (!same(saved, s.ino, headOf(fd))) continue;
        const read = this.drain({ fd, dev: s.dev, ino: s.ino, offset: saved.offset, head: '' }, MAX_READ_PER_POLL * 8);
        // Counted, not silent: what was logged there past the budget is not read.
        this.counters.unread_bytes += Math.max(0, s.size - saved.offset - read);
        this.endLine();
        this.counters.rotations++;
        return;
      } finally {
        closeSync(fd);
      }
    }
  }

  /** Reads to the end (at most `budget` bytes); returns the bytes read. */
  private drain(c: Open, budget: number): number {
    let total = 0;
    while (total < budget) {
      let n: number;
      try {
        n = readSync(c.fd, this.buffer, 0, Math.min(CHUNK, budget - total), c.offset);
      } catch {
        break;
      }
      if (n <= 0) break;
      c.offset += n;
      total += n;
      this.split(this.buffer.subarray(0, n));
    }
    return total;
  }

  private split(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      this.take(chunk.subarray(start, nl));
      this.endLine();
      start = nl + 1;
    }
    if (start < chunk.length) this.take(chunk.subarray(start));
  }

  /** Part of the current line. */
  private take(piece: Buffer): void {
    this.lineBytes += piece.length;
    if (this.skipping || piece.length === 0) return;
    const room = this.options.maxLineBytes - this.partialBytes;
    if (piece.length > room) {
      if (room > 0) this.partial.push(Buffer.from(piece.subarray(0, room)));
      this.partialBytes += Math.max(0, room);
      this.counters.truncated++;
      this.emit();
      this.skipping = true;
      return;
    }
    this.partial.push(Buffer.from(piece));
    this.partialBytes += piece.length;
  }

  /** A newline (or the end of a rotated file): the line is complete. */
  private endLine(): void {
    if (!this.skipping && this.partialBytes > 0) this.emit();
    this.resetLine();
  }

  private resetLine(): void {
    this.partial = [];
    this.partialBytes = 0;
    this.skipping = false;
    this.lineBytes = 0;
  }

  private emit(): void {
    const line = Buffer.concat(this.partial, this.partialBytes).toString('utf8');
    this.partial = [];
    this.partialBytes = 0;
    this.counters.lines++;
    this.options.onLine(line.endsWith('\r') ? line.slice(0, -1) : line);
  }
}
