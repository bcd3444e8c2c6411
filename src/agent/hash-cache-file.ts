/**
 * SHA-256 of executables kept across restarts and shared between the agent and its inventory
 * collector (docs/architecture.md, "Hashes"). Each process keeps its hashes in memory, keyed by
 * the file version, and writes them to its own file in the agent's data folder; each reads both
 * files, so a version either has hashed is not read again by the other, nor after a restart.
 *
 * A version is (device, inode, size, mtime, ctime): a write to a file changes its ctime, which
 * unlike mtime cannot be set back from user space, so a changed file has another key. Keys are
 * made the way the kernel driver reports an executed file (device as major << 20 | minor, times
 * as the driver's nanosecond doubles), so a key from stat() and one from an exec record agree.
 * Two rules keep a cached hash from ever describing other content than its key's:
 * - the file's version is read before and after the content; a hash whose file changed
 *   meanwhile is not kept;
 * - a version whose ctime is less than RACY_MS old when hashing ends is not kept: timestamps
 *   advance in clock ticks, so a second write in the same tick would not change the key (the
 *   "racy" rule of git's index).
 *
 * The file is text, one version per line (`KEY SHA256`), least recently used first, at most the
 * owner's cache size; it is written to a temporary file and renamed, so a reader sees a whole
 * file. Every line is checked on reading: a damaged file loses lines, never yields a wrong hash.
 */
import { renameSync, rmSync, statSync, writeFileSync, type BigIntStats } from 'node:fs';
import { readOwnFile } from '../runtime/regular-file.js';
import { HadesError } from '../common/errors.js';
import path from 'node:path';

/** The executed file's identity as the kernel saw it at exec (EXEC v2), or as stat() gives it. */
export interface FileIdentity {
  /** Device of the file's filesystem in the kernel's form, major << 20 | minor. */
  readonly dev: number;
  readonly ino: number;
  readonly size: number;
  /** Nanoseconds since the epoch as a double, computed as the driver does (seconds * 1e9 + nanoseconds). */
  readonly mtimeNs: number;
  readonly ctimeNs: number;
}

/** File names in the agent's data folder: the agent's hashes of executed files, and the collector's. */
export const HASH_CACHE_FILES = { agent: 'exec-hashes.txt', inventory: 'inventory-hashes.txt' } as const;

/** A version whose ctime is younger than this when its hash is done is not cached. */
export const RACY_MS = 2000;
/** Larger files are not read: 16,384 lines of at most 150 bytes fit with room to spare. */
export const MAX_HASH_FILE_BYTES = 4 * 1024 * 1024;
const HEADER = '# hades executable hashes 1';
const LINE = /^(\d{1,10}):(\d{1,20}):(\d{1,20}):(-?\d{1,22}):(-?\d{1,22}) ([0-9a-f]{64})$/;

const NS_PER_S = 1_000_000_000n;

/** A timestamp of stat({bigint: true}) as the driver's double: the same operations, so the same number. */
function driverNs(ns: bigint): number {
  let seconds = ns / NS_PER_S;
  let nanoseconds = ns % NS_PER_S;
  if (nanoseconds < 0n) {
    seconds -= 1n;
    nanoseconds += NS_PER_S;
  }
  return Number(seconds) * 1e9 + Number(nanoseconds);
}

/** glibc's st_dev encoding to the kernel's (major << 20 | minor, 12 and 20 bits). */
export function kernelDev(dev: bigint): number {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & 0xfffff000n);
  const minor = (dev & 0xffn) | ((dev >> 12n) & 0xffffff00n);
  return Number(((major << 20n) | (minor & 0xfffffn)) & 0xffffffffn);
}

/** The version of a file from stat({bigint: true}). */
export function identityOf(stats: BigIntStats): FileIdentity {
  return { dev: kernelDev(stats.dev), ino: Number(stats.ino), size: Number(stats.size), mtimeNs: driverNs(stats.mtimeNs), ctimeNs: driverNs(stats.ctimeNs) };
}

export const identityKey = (v: FileIdentity): string => `${v.dev}:${v.ino}:${v.size}:${v.mtimeNs}:${v.ctimeNs}`;

/**
 * The same content version: the device is left out, since the kernel's superblock device and
 * stat()'s differ on some filesystems (btrfs subvolumes) for the very same file.
 */
export const sameContent = (a: FileIdentity, b: FileIdentity): boolean => a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;

/** Changed so recently that another write in the same clock tick would keep its key. */
export const isRacy = (v: FileIdentity, nowMs: number = Date.now()): boolean => v.ctimeNs / 1e6 > nowMs - RACY_MS;

/** What a cache of hashes offers for persistence. */
export interface PersistentHashes {
  /** Hashes known (key, SHA-256), least recently used first. */
  entries(): Iterable<readonly [string, string]>;
  /** Adds hashes not known yet; returns how many were added. */
  import(entries: Iterable<readonly [string, string]>): number;
  /** Grows each time a hash is learned (not imported). */
  readonly revision: number;
}

export interface HashFileRead {
  readonly entries: [string, string][];
  /** Lines that did not parse. */
  readonly skipped: number;
  /** Why nothing was read (absent is not a problem: undefined). */
  readonly problem?: string;
}

/** Reads a hash file; never throws. An absent file is empty. */
export function readHashFile(file: string, maxEntries: number): HashFileRead {
  let text: string;
  try {
    text = readOwnFile(file, MAX_HASH_FILE_BYTES, 'latin1');
  } catch (error) {
    if (error instanceof HadesError) return { entries: [], skipped: 0, problem: `${error.code}: ${error.message}` };
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? { entries: [], skipped: 0 } : { entries: [], skipped: 0, problem: `${file} cannot be read: ${code ?? String(error)}` };
  }
  const lines = text.split('\n');
  if (lines[0] !== HEADER) return { entries: [], skipped: 0, problem: `${file} is not a hash file of this version (first line ${JSON.stringify(lines[0]?.slice(0, 40))})` };
  const entries: [string, string][] = [];
  let skipped = 0;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === '') continue;
    const match = LINE.exec(line);
    if (!match) {
      skipped++;
      continue;
    }
    entries.push([line.slice(0, line.length - 65), match[6]!]);
  }
  // The newest are last: keep those when the file holds more than we may.
  return { entries: entries.length > maxEntries ? entries.slice(entries.length - maxEntries) : entries, skipped };
}

/** Writes a hash file whole: a temporary file, then a rename over the old one. Throws on failure. */
export function writeHashFile(file: string, entries: Iterable<readonly [string, string]>): number {
  const lines = [HEADER];
  for (const [key, sha] of entries) lines.push(`${key} ${sha}`);
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    writeFileSync(temporary, `${lines.join('\n')}\n`, { mode: 0o600 });
    renameSync(temporary, file);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
  return lines.length - 1;
}

export interface HashCacheFileOptions {
  /** The file this process writes. */
  readonly file: string;
  /** Files of others, read at load and again whenever they change (`refresh`). */
  readonly shared?: readonly string[];
  readonly cache: PersistentHashes;
  readonly maxEntries: number;
  /** At most one write per this period (a pending change is written at `close`). */
  readonly minIntervalMs?: number;
  /** A file that could not be read or written, or had damaged lines. */
  readonly onProblem?: (message: string) => void;
}

/**
 * One process's hash file and the files it shares in: loads them into its cache, reads a shared
 * file again when it changes, and writes its own when the cache learned something, at most once
 * per `minIntervalMs`. Its owner calls `close()` when it stops, for a last write.
 */
export class HashCacheFile {
  private saved = -1;
  private savedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly seen = new Map<string, string>();
  readonly stats = { loaded: 0, written: 0, writes: 0, problems: 0 };

  constructor(private readonly options: HashCacheFileOptions) {}

  get file(): string {
    return this.options.file;
  }

  /** Reads the shared files, then our own (ours last: the most relevant stay when space runs out). */
  load(): void {
    for (const file of this.options.shared ?? []) this.read(file);
    this.read(this.options.file);
    this.saved = this.options.cache.revision;
  }

  /** Reads shared files that changed since they were last read; a stat each when none did. */
  refresh(): void {
    for (const file of this.options.shared ?? []) {
      let stamp: string;
      try {
        const s = statSync(file);
        stamp = `${s.ino}:${s.size}:${s.mtimeMs}`;
      } catch {
        continue;
      }
      if (this.seen.get(file) !== stamp) this.read(file);
    }
  }

  private read(file: string): void {
    try {
      const s = statSync(file);
      this.seen.set(file, `${s.ino}:${s.size}:${s.mtimeMs}`);
    } catch {
      this.seen.delete(file);
    }
    const read = readHashFile(file, this.options.maxEntries);
    if (read.problem) this.problem(read.problem);
    else if (read.skipped > 0) this.problem(`${file}: ${read.skipped} line(s) did not parse and were skipped`);
    this.stats.loaded += this.options.cache.import(read.entries);
  }

  /** Writes our file now when the cache learned something since the last write, or soon (after the interval). */
  saveSoon(): void {
    if (this.closed || this.timer || this.options.cache.revision === this.saved) return;
    const wait = this.savedAt + (this.options.minIntervalMs ?? 60_000) - Date.now();
    if (wait <= 0) {
      this.save();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.save();
    }, wait);
    this.timer.unref();
  }

  /** Writes our file if the cache learned something since the last write. */
  save(): void {
    const revision = this.options.cache.revision;
    if (this.closed || revision === this.saved) return;
    try {
      this.stats.written = writeHashFile(this.options.file, this.options.cache.entries());
      this.stats.writes++;
      this.saved = revision;
      this.savedAt = Date.now();
      // Ours changed by our own hand: no need to read it back.
    } catch (error) {
      this.savedAt = Date.now();
      this.problem(`${this.options.file} cannot be written: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
  }

  /** A last write, and no more. */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.closed) this.save();
    this.closed = true;
  }

  private problem(message: string): void {
    this.stats.problems++;
    this.options.onProblem?.(message);
  }
}
