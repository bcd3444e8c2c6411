/**
 * The agent's structured log: one JSON object per line (time, level, msg, code, bindings such as
 * component, then fields), written with synchronous appends so that a crash loses nothing already
 * logged. It owns the log file's descriptor and its rotation by size and count, a disk write rate
 * limit (lines over it are dropped, then reported by count), the fallback to a stream when the
 * file cannot be written, and the rules that keep secrets and event payloads out of the log.
 *
 * Fields are cleaned before they are written: values of secret-looking names become
 * "[redacted]", fields named `event`/`events` are dropped except at debug level (the only place
 * payloads may appear), strings are cut at 2048 characters, depth and collection sizes are
 * bounded, and errors become `{code, msg, kind}` (HadesError) or `{msg, stack at debug}`.
 */
import { closeSync, constants, fstatSync, openSync, readSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Static } from '@sinclair/typebox';
import type { LogConfig, LogLevel as LogLevelSchema } from '../common/config/shared.js';
import { HadesError, isHadesError } from '../common/errors.js';
import { TokenBucket } from './rate-limit.js';
import { makeFolders } from './folders.js';
import { PathWatch } from './path-watch.js';

export type LogLevel = Static<typeof LogLevelSchema>;
export type LogFields = Readonly<Record<string, unknown>>;

/** What the logger reads of the `log` section of a configuration. */
export type LogSettings = Pick<Static<typeof LogConfig>, 'level' | 'file' | 'max_mb' | 'max_files'> & {
  /** KiB per second; 0 is unlimited. Absent: the default rate. */
  readonly write_kb_per_s?: number;
};

export interface LoggerOptions {
  /** Least severe level written. */
  readonly level: LogLevel;
  /** Path of the log file; absent or null writes to `stream`. */
  readonly file?: string | null;
  /** Size bound of each file: a line that would pass it goes to a fresh file. */
  readonly maxBytes: number;
  /** Files kept, the base file included (`hades-agent.log`, `.1`, ... `.N-1`). */
  readonly maxFiles: number;
  /** Where lines go without a file, or while the file cannot be written. Default process.stderr. */
  readonly stream?: NodeJS.WritableStream;
  /** Disk write rate limit; 0 or Infinity is unlimited. Default 1 MiB/s. */
  readonly bytesPerSecond?: number;
  /** Bytes that may be written at once above the rate. Default four seconds' worth (4 MiB). */
  readonly burstBytes?: number;
  /** Wall clock for the `time` field. */
  readonly now?: () => Date;
  /** Monotonic milliseconds for the rate limit and the reopen delay. Default performance.now. */
  readonly clock?: () => number;
}

export interface LogStats {
  /** Lines handed to the file or the stream. */
  lines: number;
  /** Lines lost: larger than the file's size bound, or the stream was not writable or failed. */
  dropped: number;
  /** Lines refused by the write rate limit. */
  suppressed: number;
  /** Rotations of the file. */
  rotations: number;
  /** Failures to open, write or rotate the file. */
  writeErrors: number;
}

export const DEFAULT_BYTES_PER_SECOND = 1024 * 1024;
const BURST_SECONDS = 4;
/** While the file cannot be written, a reopen is tried on the first line after this delay. */
export const REOPEN_DELAY_MS = 30_000;
/**
 * How often an append checks that the path still names the open file: one deleted, or moved by
 * an external logrotate (or its folder removed), took every later line with it, unseen, until
 * the file reached its size limit.
 */
export const PATH_CHECK_MS = 5000;
/** A log file is read (its last byte) and appended to; never through a symbolic link, never blocked by a FIFO. */
const LOG_OPEN_FLAGS = constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY;

const SEVERITY: Readonly<Record<LogLevel, number>> = { error: 0, warn: 1, info: 2, debug: 3 };
const SECRET_NAME = /token|secret|password|passwd|private|key$|authorization|cookie/i;
/** A name of an identifier (token_id, tokenId): the public part by which a secret is known, logged as it is. */
const ID_NAME = /(?:_id|Id|_ids|Ids)$/;
const RESERVED = new Set(['time', 'level', 'msg', 'code']);
const MAX_STRING = 2048;
const MAX_DEPTH = 6;
const MAX_ITEMS = 100;
const MAX_LINE = 64 * 1024;
const NEWLINE = Buffer.from('\n');
const OMIT = Symbol('omit');

type Clean = unknown;

/** Logs through a shared sink; `child` loggers add bindings and share everything else. */
export class Logger {
  private core!: LogCore;
  private bindings!: LogFields;

  constructor(options: LoggerOptions) {
    this.core = new LogCore(options);
    this.bindings = {};
  }

  /** A logger for the `log` section of a configuration (max_mb, max_files, write_kb_per_s). */
  static fromConfig(config: LogSettings, overrides: Partial<LoggerOptions> = {}): Logger {
    return new Logger({ ...optionsOf(config), ...overrides });
  }

  /** A logger that adds `bindings` (e.g. `{ component: 'driver' }`) to every line. */
  child(bindings: LogFields): Logger {
    const child = Object.create(Logger.prototype) as Logger;
    child.core = this.core;
    child.bindings = { ...this.bindings, ...bindings };
    return child;
  }

  get level(): LogLevel {
    return this.core.level;
  }

  /** True when lines of `level` are written, to skip building costly fields. */
  enabled(level: LogLevel): boolean {
    return SEVERITY[level] <= SEVERITY[this.core.level];
  }

  log(level: LogLevel, msg: string, fields?: LogFields): void {
    if (this.enabled(level)) this.core.write(level, msg, this.bindings, fields);
  }

  error(msg: string, fields?: LogFields): void {
    this.log('error', msg, fields);
  }

  warn(msg: string, fields?: LogFields): void {
    this.log('warn', msg, fields);
  }

  info(msg: string, fields?: LogFields): void {
    this.log('info', msg, fields);
  }

  debug(msg: string, fields?: LogFields): void {
    this.log('debug', msg, fields);
  }

  /** Changes the level of this logger, its parent and all their children. */
  setLevel(level: LogLevel): void {
    this.core.level = level;
  }

  /**
   * Applies a reloaded `log` section: level, file, sizes, rate. Options that the configuration
   * does not hold (stream, clocks) keep their values unless `overrides` sets them.
   */
  reconfigure(config: LogSettings, overrides: Partial<LoggerOptions> = {}): void {
    this.core.configure({ ...this.core.options, ...optionsOf(config), ...overrides });
  }

  stats(): LogStats {
    return { ...this.core.stats };
  }

  /** Closes the file (idempotent). Lines logged afterwards go to the stream. */
  close(): void {
    this.core.close();
  }
}

function optionsOf(config: LogSettings): LoggerOptions {
  const options: LoggerOptions = {
    level: config.level,
    file: config.file,
    maxBytes: config.max_mb * 1024 * 1024,
    maxFiles: config.max_files,
  };
  return config.write_kb_per_s === undefined ? options : { ...options, bytesPerSecond: config.write_kb_per_s * 1024 };
}

/** The state every logger of one family shares: level, sink, rate limit and counters. */
class LogCore {
  level: LogLevel = 'info';
  options!: LoggerOptions;
  readonly stats: LogStats = { lines: 0, dropped: 0, suppressed: 0, rotations: 0, writeErrors: 0 };
  private stream!: NodeJS.WritableStream;
  private now!: () => Date;
  private clock!: () => number;
  private readonly bucket: TokenBucket;
  private file: LogFile | undefined;
  /** The file failed: lines go to the stream until a reopen at `reopenAt` succeeds. */
  private failing = false;
  private reopenAt = 0;
  private pendingSuppressed = 0;
  private suppressedSince: Date | undefined;
  private closed = false;
  private readonly onStreamError = (): void => {
    this.stats.dropped++;
  };

  constructor(options: LoggerOptions) {
    this.clock = options.clock ?? (() => performance.now());
    this.bucket = new TokenBucket(0, undefined, () => this.clock());
    this.configure(options);
  }

  configure(options: LoggerOptions): void {
    if (!(options.maxBytes >= 1) || !Number.isInteger(options.maxFiles) || options.maxFiles < 1) {
      throw new HadesError('HADES_ERR_CONFIG_VALUE', `log files need maxBytes >= 1 and maxFiles >= 1, not ${options.maxBytes} and ${options.maxFiles}`);
    }
    this.options = options;
    this.level = options.level;
    this.now = options.now ?? (() => new Date());
    this.clock = options.clock ?? (() => performance.now());
    const stream = options.stream ?? process.stderr;
    if (stream !== this.stream) {
      this.stream?.removeListener('error', this.onStreamError);
      // An EPIPE on the stream must cost a line, not the process.
      if (!this.closed) stream.on('error', this.onStreamError);
      this.stream = stream;
    }
    const rate = options.bytesPerSecond ?? DEFAULT_BYTES_PER_SECOND;
    this.bucket.setRate(rate, options.burstBytes ?? rate * BURST_SECONDS);

    const path = options.file ?? undefined;
    if (this.file && this.file.path !== path) {
      this.file.close();
      this.file = undefined;
    }
    if (path !== undefined && !this.closed) {
      this.file ??= new LogFile(path, () => this.stats.rotations++, () => this.clock());
      this.file.maxBytes = options.maxBytes;
      this.file.maxFiles = options.maxFiles;
      // A reload is a natural moment to try again; opening now reports a bad path at once.
      this.reopenAt = 0;
      this.usableFile();
    }
  }

  write(level: LogLevel, msg: string, bindings: LogFields, fields: LogFields | undefined): void {
    const line = this.format(level, msg, bindings, fields);
    if (!this.bucket.tryTake(Buffer.byteLength(line) + 1)) {
      this.pendingSuppressed++;
      this.stats.suppressed++;
      this.suppressedSince ??= this.now();
      return;
    }
    if (this.pendingSuppressed > 0) {
      const n = this.pendingSuppressed;
      const since = this.suppressedSince?.toISOString();
      this.pendingSuppressed = 0;
      this.suppressedSince = undefined;
      // Not charged to the rate limit: one short line each time writing resumes.
      this.deliver(
        this.format('warn', `${n} log lines suppressed by the log rate limit`, { component: 'log' }, {
          suppressed: n,
          since,
          bytes_per_second: this.options.bytesPerSecond ?? DEFAULT_BYTES_PER_SECOND,
        }),
      );
    }
    this.deliver(line);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.file?.close();
    this.file = undefined;
    this.stream.removeListener('error', this.onStreamError);
  }

  private deliver(line: string): void {
    const file = this.usableFile();
    if (file) {
      const buf = Buffer.from(line + '\n');
      if (buf.length > file.maxBytes) {
        this.stats.dropped++;
        return;
      }
      try {
        file.append(buf);
        this.stats.lines++;
        return;
      } catch (e) {
        this.fileFailed(file, e);
      }
    }
    this.toStream(line + '\n');
  }

  /** The file when it is open or may be reopened now, else undefined (use the stream). */
  private usableFile(): LogFile | undefined {
    const file = this.file;
    if (!file) return undefined;
    if (file.isOpen) return file;
    if (this.clock() < this.reopenAt) return undefined;
    try {
      file.open();
    } catch (e) {
      this.fileFailed(file, e);
      return undefined;
    }
    if (this.failing) {
      this.failing = false;
      if (SEVERITY.warn <= SEVERITY[this.level]) {
        const line = this.format('warn', 'the log file is writable again; lines logged meanwhile went to the fallback stream', { component: 'log' }, {
          file: file.path,
          write_errors: this.stats.writeErrors,
        });
        try {
          file.append(Buffer.from(line + '\n'));
          this.stats.lines++;
        } catch (e) {
          this.fileFailed(file, e);
          return undefined;
        }
      }
    }
    return file;
  }

  /** Counts the failure, falls back to the stream and reports it once per outage. */
  private fileFailed(file: LogFile, cause: unknown): void {
    this.stats.writeErrors++;
    file.close();
    this.reopenAt = this.clock() + REOPEN_DELAY_MS;
    if (this.failing) return;
    this.failing = true;
    const reason = cause instanceof Error ? cause.message : String(cause);
    const err = new HadesError('HADES_ERR_LOG_IO', `cannot write the log file ${file.path}: ${reason}`, { cause });
    this.toStream(
      this.format('error', `cannot write the log file; logging here instead, reopening it every ${REOPEN_DELAY_MS / 1000} s`, { component: 'log' }, {
        err,
        file: file.path,
      }) + '\n',
    );
  }

  private toStream(text: string): void {
    if (!this.stream.writable) {
      this.stats.dropped++;
      return;
    }
    try {
      this.stream.write(text);
      this.stats.lines++;
    } catch {
      this.stats.dropped++;
    }
  }

  /** One JSON line; never throws, whatever the fields hold. */
  private format(level: LogLevel, msg: string, bindings: LogFields, fields: LogFields | undefined): string {
    const time = this.now().toISOString();
    const debug = level === 'debug';
    const head: Record<string, Clean> = { time, level, msg: cut(msg) };
    const code = codeOf(fields) ?? codeOf(bindings);
    if (code !== undefined) head.code = code;
    try {
      const out: Record<string, Clean> = Object.assign(Object.create(null) as Record<string, Clean>, head);
      addFields(out, bindings, debug);
      if (fields) addFields(out, fields, debug);
      const line = JSON.stringify(out);
      if (line.length <= MAX_LINE) return line;
      return JSON.stringify({ ...head, fields_omitted: `the fields made a line of ${line.length} characters, over the ${MAX_LINE} limit` });
    } catch (e) {
      return JSON.stringify({ ...head, fields_omitted: `the fields could not be serialised: ${cut(e instanceof Error ? e.message : String(e))}` });
    }
  }
}

/** The top-level code of a line: a `code` field, else the code of a HadesError in `err`. */
function codeOf(fields: LogFields | undefined): string | undefined {
  if (!fields) return undefined;
  const code = fields.code;
  if (typeof code === 'string') return cut(code);
  const err = fields.err;
  return isHadesError(err) ? err.code : undefined;
}

function addFields(out: Record<string, Clean>, fields: LogFields, debug: boolean): void {
  for (const key of Object.keys(fields)) {
    if (RESERVED.has(key)) continue;
    const value = cleanField(key, fields[key], 0, debug);
    if (value !== OMIT) out[key] = value;
  }
}

function cleanField(key: string, value: unknown, depth: number, debug: boolean): Clean {
  if (!debug && (key === 'event' || key === 'events')) return OMIT;
  if (SECRET_NAME.test(key) && !ID_NAME.test(key)) return '[redacted]';
  return clean(value, depth, debug);
}

function clean(value: unknown, depth: number, debug: boolean): Clean {
  switch (typeof value) {
    case 'string':
      return cut(value);
    case 'number':
    case 'boolean':
      return value;
    case 'bigint':
      return value.toString();
    case 'undefined':
    case 'function':
    case 'symbol':
      return OMIT;
  }
  if (value === null) return null;
  if (depth >= MAX_DEPTH) return '[too deep]';
  if (value instanceof Error) return cleanError(value, debug);
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString();
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return `[${value.byteLength} bytes]`;
  if (Array.isArray(value)) return cleanList(value, depth, debug);
  if (value instanceof Set) return cleanList([...value], depth, debug);
  const entries: [string, unknown][] =
    value instanceof Map ? [...(value as Map<unknown, unknown>)].map(([k, v]) => [String(k), v]) : Object.entries(value as object);
  const out: Record<string, Clean> = Object.create(null) as Record<string, Clean>;
  let n = 0;
  for (const [key, item] of entries) {
    if (n++ === MAX_ITEMS) {
      out['[more]'] = `${entries.length - MAX_ITEMS} more keys`;
      break;
    }
    const v = cleanField(key, item, depth + 1, debug);
    if (v !== OMIT) out[key] = v;
  }
  return out;
}

function cleanList(list: readonly unknown[], depth: number, debug: boolean): Clean[] {
  const out: Clean[] = [];
  for (let i = 0; i < list.length && i < MAX_ITEMS; i++) {
    const v = clean(list[i], depth + 1, debug);
    out.push(v === OMIT ? null : v);
  }
  if (list.length > MAX_ITEMS) out.push(`[${list.length - MAX_ITEMS} more items]`);
  return out;
}

function cleanError(e: Error, debug: boolean): Clean {
  if (isHadesError(e)) return { code: e.code, msg: cut(e.message), kind: e.kind };
  return debug && e.stack !== undefined ? { msg: cut(e.message), stack: cut(e.stack) } : { msg: cut(e.message) };
}

function cut(s: string): string {
  return s.length <= MAX_STRING ? s : `${s.slice(0, MAX_STRING)}...[cut ${s.length - MAX_STRING} characters]`;
}

/**
 * The log file: its descriptor, its size, and rotation to `path.1` ... `path.(maxFiles-1)`.
 * Appends are synchronous: what was logged before a crash is in the file.
 */
class LogFile {
  maxBytes = Infinity;
  maxFiles = 1;
  private fd: number | undefined;
  private size = 0;
  /** Whether the path still names the open file (deleted or moved away by someone else). */
  private readonly watch: PathWatch;

  constructor(
    readonly path: string,
    private readonly onRotate: () => void,
    clock: () => number,
  ) {
    this.watch = new PathWatch(path, PATH_CHECK_MS, clock);
  }

  get isOpen(): boolean {
    return this.fd !== undefined;
  }

  open(): void {
    if (this.fd !== undefined) return;
    makeFolders(dirname(this.path), 0o750);
    // As the rotating file does: never through a symbolic link at the path (whoever could write in
    // the folder would choose the file root appends to), nor held by a FIFO there without a reader.
    const fd = openSync(this.path, LOG_OPEN_FLAGS, 0o640);
    try {
      const stat = fstatSync(fd);
      this.size = stat.size;
      this.watch.opened(stat.dev, stat.ino);
      // A line torn by a crash or a full disk is ended, so the next line starts clean.
      if (this.size > 0) {
        const last = Buffer.alloc(1);
        readSync(fd, last, 0, 1, this.size - 1);
        if (last[0] !== 0x0a) {
          writeAll(fd, NEWLINE);
          this.size++;
        }
      }
    } catch (e) {
      closeSync(fd);
      throw e;
    }
    this.fd = fd;
  }

  /** Appends whole lines, first rotating when they would take the file past maxBytes. */
  append(buf: Buffer): void {
    // A file deleted or moved away by someone else: a new one at the path.
    if (this.fd !== undefined && this.watch.moved()) this.close();
    this.open();
    if (this.size > 0 && this.size + buf.length > this.maxBytes) this.rotate();
    writeAll(this.fd!, buf);
    this.size += buf.length;
  }

  close(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    try {
      closeSync(fd);
    } catch {
      // The descriptor is gone either way.
    }
  }

  private rotate(): void {
    this.close();
    // Files past the bound are left over from a larger max_files before a reload.
    for (let i = this.maxFiles; i < 1000; i++) {
      if (!removeIfPresent(`${this.path}.${i}`)) break;
    }
    for (let i = this.maxFiles - 2; i >= 1; i--) renameIfPresent(`${this.path}.${i}`, `${this.path}.${i + 1}`);
    if (this.maxFiles > 1) renameIfPresent(this.path, `${this.path}.1`);
    else removeIfPresent(this.path);
    this.open();
    this.onRotate();
  }
}

function writeAll(fd: number, buf: Buffer): void {
  let done = 0;
  while (done < buf.length) done += writeSync(fd, buf, done, buf.length - done);
}

function renameIfPresent(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

/** True when the file was there and is removed. */
function removeIfPresent(path: string): boolean {
  try {
    unlinkSync(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    return false;
  }
}
