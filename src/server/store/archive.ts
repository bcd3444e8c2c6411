/**
 * The raw archive: every stored event, as gzip-compressed NDJSON files in Hive-style partitions
 * by the event's `@timestamp` (UTC), which DuckDB, Spark, Athena and friends read as they are:
 *
 *   <dir>/dt=2026-11-28/hour=08/1764316860123-4242-17-9f8e7d6c.ndjson.gz
 *
 * Events are buffered per partition and a partition is written as one file (one gzip member)
 * when its buffer reaches `flushBytes` (uncompressed) or its oldest event has waited
 * `flushSeconds`. Compression runs on libuv's thread pool, off the event loop. A file is written
 * under `<dir>/.staging/<name>.tmp`, synced, then renamed into its partition, so a partition only
 * ever holds complete files; `.staging` is hidden from the engines (a leading dot, and the
 * `.tmp` suffix) and emptied at open, which removes what a crash left there. Retention goes by
 * when a file was written (the time its name starts with), not by its partition. Events buffered
 * when the server dies are written from the event store at its next start (see MARK_FILE): the archive is a
 * copy for long-term and bulk analysis, not the system of record.
 */
import { readOwnFile } from '../../runtime/regular-file.js';
import { randomBytes } from 'node:crypto';
import { readdirSync, rmSync } from 'node:fs';
import { open, readdir, rename, rm, rmdir, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { HadesError } from '../../common/errors.js';
import { makeFolders, makeFoldersAsync } from '../../runtime/folders.js';

const gzipAsync = promisify(gzip);

export interface ArchiveOptions {
  /** The archive's root folder (created if missing). */
  readonly dir: string;
  /** Write a partition when this many uncompressed bytes wait for it; 32 MiB by default. */
  readonly flushBytes?: number;
  /** Write a partition when its oldest buffered event has waited this long; 60 by default. */
  readonly flushSeconds?: number;
  /** Write the largest partitions early when all buffers together exceed this; 4 x flushBytes by default. */
  readonly maxBufferedBytes?: number;
  /** gzip level, 1 (fastest, the default: see bench/store.ts) to 9. */
  readonly level?: number;
  /** Called when a file cannot be written (its events are lost to the archive and counted). */
  readonly onError?: (error: HadesError) => void;
  /** The clock (ms), for tests. */
  readonly now?: () => number;
  /** Run the timer that writes partitions when they are due; true by default (tests call flushDue). */
  readonly timer?: boolean;
}

export interface ArchiveStats {
  readonly bufferedEvents: number;
  readonly bufferedBytes: number;
  readonly filesWritten: number;
  readonly eventsWritten: number;
  /** Compressed bytes written. */
  readonly bytesWritten: number;
  /** Events lost because their file could not be written. */
  readonly eventsFailed: number;
}

export interface ArchiveRetentionResult {
  /** Hour partitions deleted. */
  readonly deletedPartitions: number;
  readonly deletedFiles: number;
}

interface Partition {
  readonly key: string;
  lines: string[];
  bytes: number;
  /** When its oldest buffered line arrived (ms). */
  since: number;
  /** The lowest store rowid of its buffered lines (+Infinity: none given). */
  minRow: number;
}

/**
 * The file, in the archive's folder, that holds the store rowid through which every event is in
 * a file (or failed to be, and was counted): where a catch-up from the store begins.
 */
export const MARK_FILE = '.written-through';

/** The staging folder, below the root. */
export const STAGING = '.staging';
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;
const PREFIX = '{"@timestamp":"';
const DAY = /^dt=(\d{4}-\d{2}-\d{2})$/;
const HOUR = /^hour=(\d{2})$/;

/** When a file of the archive was written (ms, the server's clock); +Infinity when unknown. */
async function writtenAt(folder: string, name: string): Promise<number> {
  const named = /^(\d{10,16})-/.exec(name);
  if (named !== null) return Number(named[1]);
  try {
    return (await stat(path.join(folder, name))).mtimeMs;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

function invalid(index: number, message: string): HadesError {
  return new HadesError('HADES_ERR_EVENT_INVALID', `archive: event ${index} of the batch: ${message}`);
}

/** The mark in its file: a whole number, or undefined when there is no file or it says nothing usable. */
function readMark(file: string): number | undefined {
  let text: string;
  try {
    text = readOwnFile(file, 4096);
  } catch (error) {
    // Missing, or something else than a mark (a folder, a FIFO, a file too large for a number): none.
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'HADES_ERR_FILE_NOT_REGULAR' || code === 'HADES_ERR_FILE_TOO_LARGE') return undefined;
    throw error;
  }
  const mark = Number(text.trim());
  return Number.isSafeInteger(mark) && mark >= 0 ? mark : undefined;
}

/** The partition of an ISO UTC timestamp: `dt=YYYY-MM-DD/hour=HH`. */
export function partitionOf(timestamp: string): string {
  return `dt=${timestamp.slice(0, 10)}/hour=${timestamp.slice(11, 13)}`;
}

/** The timestamp and NDJSON line of one event (a line is used as it is when it can be). */
function lineOf(event: unknown, index: number): { timestamp: string; line: string } {
  if (typeof event === 'string') {
    // The agent writes @timestamp first: read it without parsing the line.
    if (event.startsWith(PREFIX) && !event.includes('\n')) {
      const end = event.indexOf('"', PREFIX.length);
      const timestamp = event.slice(PREFIX.length, end);
      if (end > 0 && TIMESTAMP.test(timestamp)) return { timestamp, line: event };
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(event);
    } catch {
      throw invalid(index, 'not JSON');
    }
    const timestamp = (parsed as Record<string, unknown> | null)?.['@timestamp'];
    if (typeof timestamp !== 'string' || !TIMESTAMP.test(timestamp)) throw invalid(index, '@timestamp must be an ISO 8601 UTC time');
    return { timestamp, line: event.includes('\n') ? JSON.stringify(parsed) : event };
  }
  if (typeof event !== 'object' || event === null) throw invalid(index, 'not an object');
  const timestamp = (event as Record<string, unknown>)['@timestamp'];
  if (typeof timestamp !== 'string' || !TIMESTAMP.test(timestamp)) throw invalid(index, '@timestamp must be an ISO 8601 UTC time');
  return { timestamp, line: JSON.stringify(event) };
}

export class Archive {
  readonly #dir: string;
  readonly #staging: string;
  readonly #flushBytes: number;
  readonly #flushMs: number;
  readonly #maxBuffered: number;
  readonly #level: number;
  readonly #onError: ((error: HadesError) => void) | undefined;
  readonly #now: () => number;
  readonly #partitions = new Map<string, Partition>();
  readonly #pending = new Set<Promise<void>>();
  /** The lowest rowid of each partition being written. */
  readonly #writing = new Map<Promise<void>, number>();
  /** The highest rowid appended. */
  #appendedThrough = 0;
  /** While a catch-up runs: the rowid it has appended through (the mark stays at or below it). */
  #hold: number | undefined;
  /** The mark last saved, and whether a save runs (another follows it when the mark moved meanwhile). */
  #savedMark: number | undefined;
  #saving: Promise<void> | undefined;
  /** The mark read when the archive was opened; undefined when it had none (new, or of a release before marks). */
  readonly markAtOpen: number | undefined;
  readonly #timer: NodeJS.Timeout | undefined;
  #buffered = 0;
  #bufferedEvents = 0;
  #sequence = 0;
  #closed = false;
  #filesWritten = 0;
  #eventsWritten = 0;
  #bytesWritten = 0;
  #eventsFailed = 0;

  private constructor(options: ArchiveOptions, mark: number | undefined) {
    this.markAtOpen = mark;
    this.#savedMark = mark;
    this.#appendedThrough = mark ?? 0;
    this.#dir = options.dir;
    this.#staging = path.join(options.dir, STAGING);
    this.#flushBytes = options.flushBytes ?? 32 << 20;
    this.#flushMs = (options.flushSeconds ?? 60) * 1000;
    this.#maxBuffered = options.maxBufferedBytes ?? 4 * this.#flushBytes;
    this.#level = options.level ?? 1;
    this.#onError = options.onError;
    this.#now = options.now ?? Date.now;
    if (options.timer !== false) {
      this.#timer = setInterval(() => this.flushDue(), Math.max(10, Math.min(1000, this.#flushMs / 2)));
      this.#timer.unref();
    }
  }

  /**
   * Opens (creating) an archive folder and removes what a crash left in its staging folder.
   * Throws HADES_ERR_STORE_OPEN when the folder cannot be created.
   */
  static open(options: ArchiveOptions): Archive {
    const staging = path.join(options.dir, STAGING);
    let mark: number | undefined;
    try {
      makeFolders(staging, 0o750);
      for (const name of readdirSync(staging)) rmSync(path.join(staging, name), { recursive: true, force: true });
      mark = readMark(path.join(options.dir, MARK_FILE));
    } catch (error) {
      throw new HadesError('HADES_ERR_STORE_OPEN', `cannot open the archive ${options.dir}: ${(error as Error).message}`, { cause: error });
    }
    return new Archive(options, mark);
  }

  /**
   * Buffers events (NDJSON lines or objects) in the partitions of their `@timestamp`. Throws
   * HADES_ERR_EVENT_INVALID, buffering nothing, when an event has no valid `@timestamp`.
   */
  append(events: readonly string[] | readonly Record<string, unknown>[], rowids?: readonly number[]): void {
    if (this.#closed) throw new HadesError('HADES_ERR_INTERNAL', 'archive: append after close');
    const items = events.map((event: unknown, index) => lineOf(event, index));
    const now = this.#now();
    const full: Partition[] = [];
    for (let i = 0; i < items.length; i++) {
      const { timestamp, line } = items[i]!;
      const key = partitionOf(timestamp);
      let partition = this.#partitions.get(key);
      if (partition === undefined) {
        partition = { key, lines: [], bytes: 0, since: now, minRow: Number.POSITIVE_INFINITY };
        this.#partitions.set(key, partition);
      }
      const rowid = rowids?.[i];
      if (rowid !== undefined) {
        partition.minRow = Math.min(partition.minRow, rowid);
        this.#appendedThrough = Math.max(this.#appendedThrough, rowid);
      }
      partition.lines.push(line);
      partition.bytes += line.length + 1;
      this.#buffered += line.length + 1;
      this.#bufferedEvents++;
      if (partition.bytes >= this.#flushBytes && !full.includes(partition)) full.push(partition);
    }
    for (const partition of full) this.#flush(partition);
    if (this.#buffered > this.#maxBuffered) {
      const largest = [...this.#partitions.values()].sort((a, b) => b.bytes - a.bytes);
      for (const partition of largest) {
        if (this.#buffered <= this.#maxBuffered / 2) break;
        this.#flush(partition);
      }
    }
  }

  /** Writes the partitions whose oldest event has waited flushSeconds (the timer calls it). */
  flushDue(): void {
    const now = this.#now();
    for (const partition of [...this.#partitions.values()]) {
      if (now - partition.since >= this.#flushMs) this.#flush(partition);
    }
  }

  /** Writes every buffered partition now and waits for every write in progress. */
  async flush(): Promise<void> {
    for (const partition of [...this.#partitions.values()]) this.#flush(partition);
    await this.settled();
  }

  /** Waits for the writes in progress, and the mark they moved (buffers stay buffered). */
  async settled(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
    while (this.#saving !== undefined) await this.#saving;
  }

  /** Flushes and stops; the archive takes no more events. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    await this.flush();
    await this.#saveMark();
  }

  /**
   * The store rowid through which every event appended with its rowid is in a file (or was lost
   * to a failed write, and counted): the lowest rowid buffered or being written, less one; what was
   * appended last when nothing is; never past a catch-up under way (hold).
   */
  writtenThrough(): number {
    let low = this.#appendedThrough;
    for (const partition of this.#partitions.values()) low = Math.min(low, partition.minRow - 1);
    for (const minRow of this.#writing.values()) low = Math.min(low, minRow - 1);
    return this.#hold === undefined ? low : Math.min(low, this.#hold);
  }

  /**
   * Holds the mark at `rowid` or below while a catch-up from the store appends the events after
   * it (live events appended meanwhile are newer); undefined ends the hold. `appendedThrough` is
   * raised to at least `rowid`: the store holds nothing below it that the archive lacks.
   */
  hold(rowid: number | undefined): void {
    this.#hold = rowid;
    if (rowid !== undefined) this.#appendedThrough = Math.max(this.#appendedThrough, rowid);
    void this.#saveMark();
  }

  /**
   * The store holds events through `rowid`, and the archive nothing it lacks of them (a new
   * archive, or one that was all written): the mark starts there.
   */
  startAt(rowid: number): void {
    this.#appendedThrough = rowid;
    void this.#saveMark();
  }

  /** Writes the mark file when the mark moved; one write at a time, the last mark winning. */
  async #saveMark(): Promise<void> {
    while (this.#saving !== undefined) await this.#saving;
    const mark = this.writtenThrough();
    if (mark === this.#savedMark) return;
    this.#saving = (async () => {
      const file = path.join(this.#dir, MARK_FILE);
      try {
        await writeFile(`${file}.tmp`, `${mark}\n`, { mode: 0o640 });
        await rename(`${file}.tmp`, file);
        this.#savedMark = mark;
      } catch (error) {
        this.#onError?.(new HadesError('HADES_ERR_STORE_WRITE', `archive: cannot save how far it has written (${file}): ${(error as Error).message}; the next start may write some events again`, { cause: error }));
      }
    })();
    try {
      await this.#saving;
    } finally {
      this.#saving = undefined;
    }
  }

  stats(): ArchiveStats {
    return {
      bufferedEvents: this.#bufferedEvents,
      bufferedBytes: this.#buffered,
      filesWritten: this.#filesWritten,
      eventsWritten: this.#eventsWritten,
      bytesWritten: this.#bytesWritten,
      eventsFailed: this.#eventsFailed,
    };
  }

  /**
   * Deletes the files written more than `maxAgeDays` ago, by the server's clock (the time at the
   * start of a file's name, or its modification time for a file of another name), whatever the
   * partition: never by the time the agents gave their events, as the event store's retention, so
   * that a host whose clock is set back (by an intruder, or a dead battery) does not have the
   * events it sends today deleted at the next pass, nor one set ahead keep them for ever. Hour
   * partitions and day folders left empty go too; folders that are not partitions are left alone.
   */
  async enforceRetention(options: { readonly maxAgeDays: number; readonly now?: number }): Promise<ArchiveRetentionResult> {
    if (!(options.maxAgeDays > 0)) throw new HadesError('HADES_ERR_INTERNAL', `archive retention maxAgeDays must be positive, not ${options.maxAgeDays}`);
    const cutoff = (options.now ?? this.#now()) - options.maxAgeDays * 86_400_000;
    let deletedPartitions = 0;
    let deletedFiles = 0;
    try {
      for (const day of await readdir(this.#dir)) {
        if (!DAY.test(day)) continue;
        const dayDir = path.join(this.#dir, day);
        let hours: string[];
        try {
          hours = await readdir(dayDir);
        } catch {
          continue; // not a folder
        }
        let kept = 0;
        for (const hour of hours) {
          const hourDir = path.join(dayDir, hour);
          // Not a partition, or not a folder: left alone.
          const files = HOUR.test(hour) ? await readdir(hourDir).catch(() => undefined) : undefined;
          if (files === undefined) {
            kept++;
            continue;
          }
          let left = files.length;
          for (const file of files) {
            if ((await writtenAt(hourDir, file)) >= cutoff) continue;
            await rm(path.join(hourDir, file), { recursive: true, force: true });
            deletedFiles++;
            left--;
          }
          // Emptied here: removed unless a file was renamed into it meanwhile (rmdir fails on a
          // folder that is not empty; a file about to be renamed makes the folder again: #write).
          if (left === 0 && files.length > 0 && (await rmdir(hourDir).then(() => true, () => false))) deletedPartitions++;
          else kept++;
        }
        if (kept === 0) await rmdir(dayDir).catch(() => undefined);
      }
    } catch (error) {
      throw new HadesError('HADES_ERR_STORE_WRITE', `archive: retention could not delete old files in ${this.#dir}: ${(error as Error).message}`, { cause: error });
    }
    return { deletedPartitions, deletedFiles };
  }

  /** Takes a partition's buffer and writes it in the background. */
  #flush(partition: Partition): void {
    if (partition.lines.length === 0) return;
    this.#partitions.delete(partition.key);
    this.#buffered -= partition.bytes;
    this.#bufferedEvents -= partition.lines.length;
    const write = this.#write(partition).finally(() => {
      this.#pending.delete(write);
      this.#writing.delete(write);
      void this.#saveMark();
    });
    this.#pending.add(write);
    if (Number.isFinite(partition.minRow)) this.#writing.set(write, partition.minRow);
  }

  async #write(partition: Partition): Promise<void> {
    const name = `${this.#now()}-${process.pid}-${++this.#sequence}-${randomBytes(4).toString('hex')}.ndjson.gz`;
    const tmp = path.join(this.#staging, `${name}.tmp`);
    const folder = path.join(this.#dir, partition.key);
    const count = partition.lines.length;
    try {
      partition.lines.push(''); // the final newline
      const data = await gzipAsync(Buffer.from(partition.lines.join('\n')), { level: this.#level });
      partition.lines = [];
      let file;
      try {
        file = await open(tmp, 'wx', 0o640);
      } catch (error) {
        // The archive folder was removed while the server runs (a clean-up): without its staging
        // folder every later file would fail, for good. Made again, the archive goes on.
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        await makeFoldersAsync(this.#staging, 0o750);
        file = await open(tmp, 'wx', 0o640);
        this.#onError?.(new HadesError('HADES_ERR_STORE_WRITE', `archive: its folder ${this.#dir} (or ${STAGING} in it) was removed while the server runs; made again, the files it held are gone with it`));
      }
      try {
        await file.writeFile(data);
        await file.datasync();
      } finally {
        await file.close();
      }
      await makeFoldersAsync(folder, 0o750);
      try {
        await rename(tmp, path.join(folder, name));
      } catch (error) {
        // Retention removed the partition it had just emptied between the two: once more.
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        await makeFoldersAsync(folder, 0o750);
        await rename(tmp, path.join(folder, name));
      }
      this.#filesWritten++;
      this.#eventsWritten += count;
      this.#bytesWritten += data.length;
    } catch (error) {
      await unlink(tmp).catch(() => undefined);
      this.#eventsFailed += count;
      const failure = new HadesError('HADES_ERR_STORE_WRITE', `archive: cannot write ${count} events of ${partition.key}: ${(error as Error).message}`, { cause: error });
      this.#onError?.(failure);
    }
  }
}
