/**
 * Follows a log file as `tail -F` does, polled: new lines as they are appended, across rotation
 * (the name now points to another file: the old one is read to its end first) and truncation
 * (copytruncate: read again from the start). A position (device, inode, offset) is given back
 * after each poll so that the collector can resume where it was after a restart: lines written
 * while it was down are read, and so is the rest of a file rotated meanwhile, found as `PATH.1`.
 */
import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';

export interface FilePosition {
  readonly dev: number;
  readonly ino: number;
  readonly offset: number;
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
}

export interface FileFollowerOptions {
  readonly maxLineBytes: number;
  /** Where a previous run stopped; absent: start at the end (the file's history is not replayed). */
  readonly position?: FilePosition;
  readonly onLine: (line: string) => void;
}

/** Most bytes read in one poll, so one huge append does not hold the process. */
const MAX_READ_PER_POLL = 4 * 1024 * 1024;
const CHUNK = 64 * 1024;

interface Open {
  readonly fd: number;
  readonly dev: number;
  readonly ino: number;
  offset: number;
}

function statOf(file: string): { dev: number; ino: number; size: number } | undefined {
  try {
    const s = statSync(file);
    return s.isFile() ? { dev: s.dev, ino: s.ino, size: s.size } : undefined;
  } catch {
    return undefined;
  }
}

export class FileFollower {
  readonly counters: FollowerCounters = { lines: 0, truncated: 0, rotations: 0, truncations: 0 };
  private current: Open | undefined;
  private saved: FilePosition | undefined;
  /** Before the first open attempt of this run. */
  private first = true;
  private partial: Buffer[] = [];
  private partialBytes = 0;
  /** Inside an overlong line: the rest of it up to its newline is skipped. */
  private skipping = false;
  private readonly buffer = Buffer.allocUnsafe(CHUNK);

  constructor(
    readonly path: string,
    private readonly options: FileFollowerOptions,
  ) {
    this.saved = options.position;
  }

  /** Where the next read starts; undefined before the file was first opened. */
  position(): FilePosition | undefined {
    const c = this.current;
    // A line read in part is read again whole after a restart.
    return c ? { dev: c.dev, ino: c.ino, offset: this.skipping ? c.offset : c.offset - this.partialBytes } : this.saved;
  }

  /** Reads what was appended since the last poll. Never throws (an unreadable file is retried). */
  poll(): void {
    let budget = MAX_READ_PER_POLL;
    if (!this.current && !this.open()) return;
    const c = this.current as Open;
    budget -= this.drain(c, budget);
    if (budget <= 0) return; // more to read: the next poll goes on
    const now = statOf(this.path);
    if (!now || now.ino !== c.ino || now.dev !== c.dev) {
      // Rotated (or removed): the old file was read to its end just now; the new one is read from its start.
      this.drain(c, MAX_READ_PER_POLL);
      this.endLine();
      this.closeCurrent();
      this.saved = undefined;
      this.counters.rotations++;
      if (now && this.open(0)) this.drain(this.current as Open, budget);
      return;
    }
    if (now.size < c.offset) {
      this.counters.truncations++;
      this.partial = [];
      this.partialBytes = 0;
      this.skipping = false;
      c.offset = 0;
      this.drain(c, budget);
    }
  }

  close(): void {
    this.closeCurrent();
  }

  private closeCurrent(): void {
    if (!this.current) return;
    this.saved = this.position();
    try {
      closeSync(this.current.fd);
    } catch {
      // already closed
    }
    this.current = undefined;
  }

  /** Opens the file; `from` forces the offset (a file that appeared after a rotation). */
  private open(from?: number): boolean {
    // Only a file there when the collector starts is taken from its end: one that appears later is new.
    const first = this.first;
    this.first = false;
    let fd: number;
    try {
      fd = openSync(this.path, 'r');
    } catch {
      return false;
    }
    const s = fstatSync(fd);
    if (!s.isFile()) {
      closeSync(fd);
      return false;
    }
    let offset: number;
    const saved = this.saved;
    if (from !== undefined) offset = from;
    else if (saved && saved.dev === s.dev && saved.ino === s.ino && saved.offset <= s.size) offset = saved.offset;
    else if (saved) {
      // The file was replaced while this collector was not reading: finish the old one if it
      // is now PATH.1, then read the new one from its start.
      this.finishRotated(saved);
      offset = 0;
    } else offset = first ? s.size : 0;
    this.current = { fd, dev: s.dev, ino: s.ino, offset };
    return true;
  }

  private finishRotated(saved: FilePosition): void {
    const rotated = `${this.path}.1`;
    const s = statOf(rotated);
    if (!s || s.dev !== saved.dev || s.ino !== saved.ino || s.size < saved.offset) return;
    let fd: number;
    try {
      fd = openSync(rotated, 'r');
    } catch {
      return;
    }
    try {
      this.drain({ fd, dev: s.dev, ino: s.ino, offset: saved.offset }, MAX_READ_PER_POLL * 4);
      this.endLine();
      this.counters.rotations++;
    } finally {
      closeSync(fd);
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
    if (this.skipping) {
      this.skipping = false;
      return;
    }
    if (this.partialBytes > 0) this.emit();
  }

  private emit(): void {
    const line = Buffer.concat(this.partial, this.partialBytes).toString('utf8');
    this.partial = [];
    this.partialBytes = 0;
    this.counters.lines++;
    this.options.onLine(line.endsWith('\r') ? line.slice(0, -1) : line);
  }
}
