/**
 * An append-only file rotated by size and count: `name`, `name.1` (newest rotated) ... up to
 * `maxFiles` rotated files. Writes are synchronous appends, so what was written survives a
 * crash of the agent and no write is in flight at shutdown. Used by the NDJSON file output.
 */
import { closeSync, constants, fstatSync, ftruncateSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { HadesError } from '../common/errors.js';
import { makeFolders } from './folders.js';
import { PathWatch } from './path-watch.js';

export interface RotatingFileOptions {
  readonly file: string;
  readonly maxBytes: number;
  /** Rotated files kept besides the current one. */
  readonly maxFiles: number;
  readonly mode?: number;
}

/**
 * Opened without blocking: a FIFO at the path with no reader would hold the event loop in open(2)
 * for good, and one whose reader stops would block every write; what is opened is then checked
 * to be a regular file (a FIFO, a device or a socket is refused: it cannot be rotated either).
 * Never through a symbolic link at the path: whoever can write in the folder could otherwise
 * point it at any file, and root would append to that file lines whose text others wrote (an
 * alert's command line appended to a script run as root).
 */
const OPEN_FLAGS = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NONBLOCK | constants.O_NOCTTY | constants.O_NOFOLLOW;
const NOT_A_FILE = 'not a regular file (a FIFO, a device or a socket cannot be appended to and rotated)';
const A_LINK = 'a symbolic link (not followed: a file is written only at its own path)';

/** How often a write checks that the path still names the open file (moved or deleted by someone else). */
const CHECK_PATH_MS = 5000;

export class RotatingFile {
  private fd: number | undefined;
  private size = 0;
  /** Whether the path still names the open file (moved or deleted by someone else). */
  private readonly watch: PathWatch;
  rotations = 0;

  constructor(private readonly options: RotatingFileOptions) {
    this.watch = new PathWatch(options.file, CHECK_PATH_MS);
  }

  get file(): string {
    return this.options.file;
  }

  /** Opens (creating the folder); throws HADES_ERR_OUTPUT_FAILED when it cannot, or when the path is not a regular file. */
  open(): void {
    if (this.fd !== undefined) return;
    let fd: number;
    let stat;
    try {
      makeFolders(path.dirname(this.options.file), 0o750);
      fd = openSync(this.options.file, OPEN_FLAGS, this.options.mode ?? 0o640);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? String(error);
      // What a non-blocking open of a FIFO without a reader (or of a device without its driver) says.
      throw new HadesError('HADES_ERR_OUTPUT_FAILED', `cannot open ${this.options.file}: ${code === 'ENXIO' ? `ENXIO: ${NOT_A_FILE}` : code === 'ELOOP' ? `ELOOP: ${A_LINK}` : code}`);
    }
    try {
      stat = fstatSync(fd);
    } catch (error) {
      closeSync(fd);
      throw new HadesError('HADES_ERR_OUTPUT_FAILED', `cannot open ${this.options.file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
    if (!stat.isFile()) {
      closeSync(fd);
      throw new HadesError('HADES_ERR_OUTPUT_FAILED', `cannot open ${this.options.file}: ${NOT_A_FILE}`);
    }
    this.fd = fd;
    this.size = stat.size;
    this.watch.opened(stat.dev, stat.ino);
  }

  /** Appends a chunk, rotating first when it would pass the size limit. Throws HADES_ERR_OUTPUT_FAILED. */
  write(chunk: Uint8Array): void {
    // A file moved or deleted by someone else (an external logrotate): a new one at the path.
    if (this.fd !== undefined && this.watch.moved()) this.close();
    this.open();
    try {
      if (this.size > 0 && this.size + chunk.length > this.options.maxBytes) this.rotate();
    } catch (error) {
      throw new HadesError('HADES_ERR_OUTPUT_FAILED', `cannot rotate ${this.options.file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
    const fd = this.fd!;
    let offset = 0;
    try {
      while (offset < chunk.length) offset += writeSync(fd, chunk, offset, chunk.length - offset);
      this.size += chunk.length;
    } catch (error) {
      // A full disk can take the start of a chunk and refuse the rest: the part written is taken
      // back, or the chunk written again (the caller retries) would follow half a line.
      if (offset > 0) this.takeBack(fd, offset);
      throw new HadesError('HADES_ERR_OUTPUT_FAILED', `cannot write ${this.options.file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
  }

  /** Cuts the last `bytes` appended to the file (shrinking a regular file needs no space). */
  private takeBack(fd: number, bytes: number): void {
    try {
      ftruncateSync(fd, Math.max(0, fstatSync(fd).size - bytes));
    } catch {
      // The descriptor failed too: the write's error says why.
    }
  }

  private rotate(): void {
    this.close();
    const { file, maxFiles } = this.options;
    rmSync(`${file}.${maxFiles}`, { force: true });
    for (let i = maxFiles - 1; i >= 1; i--) {
      try {
        renameSync(`${file}.${i}`, `${file}.${i + 1}`);
      } catch {
        // that generation does not exist yet
      }
    }
    try {
      renameSync(file, `${file}.1`);
    } catch (error) {
      // Already moved away by someone else: the new file simply starts.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    this.rotations++;
    this.open();
  }

  close(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    closeSync(fd);
  }
}
