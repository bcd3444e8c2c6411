/**
 * An append-only file rotated by size and count: `name`, `name.1` (newest rotated) ... up to
 * `maxFiles` rotated files. Writes are synchronous appends, so what was written survives a
 * crash of the agent and no write is in flight at shutdown. Used by the NDJSON file output.
 */
import { closeSync, fstatSync, mkdirSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { HadesError } from '../common/errors.js';

export interface RotatingFileOptions {
  readonly file: string;
  readonly maxBytes: number;
  /** Rotated files kept besides the current one. */
  readonly maxFiles: number;
  readonly mode?: number;
}

/** How often a write checks that the path still names the open file (moved or deleted by someone else). */
const CHECK_PATH_MS = 5000;

export class RotatingFile {
  private fd: number | undefined;
  private ino = 0;
  private size = 0;
  private checkedAt = 0;
  rotations = 0;

  constructor(private readonly options: RotatingFileOptions) {}

  get file(): string {
    return this.options.file;
  }

  /** Opens (creating the folder); throws HADES_ERR_OUTPUT_FAILED when it cannot. */
  open(): void {
    if (this.fd !== undefined) return;
    try {
      mkdirSync(path.dirname(this.options.file), { recursive: true, mode: 0o750 });
      this.fd = openSync(this.options.file, 'a', this.options.mode ?? 0o640);
      const stat = fstatSync(this.fd);
      this.size = stat.size;
      this.ino = stat.ino;
      this.checkedAt = Date.now();
    } catch (error) {
      throw new HadesError('HADES_ERR_OUTPUT_FAILED', `cannot open ${this.options.file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
  }

  /** Appends a chunk, rotating first when it would pass the size limit. Throws HADES_ERR_OUTPUT_FAILED. */
  write(chunk: Uint8Array): void {
    this.reopenIfMoved();
    this.open();
    try {
      if (this.size > 0 && this.size + chunk.length > this.options.maxBytes) this.rotate();
    } catch (error) {
      throw new HadesError('HADES_ERR_OUTPUT_FAILED', `cannot rotate ${this.options.file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
    try {
      let offset = 0;
      while (offset < chunk.length) offset += writeSync(this.fd!, chunk, offset, chunk.length - offset);
      this.size += chunk.length;
    } catch (error) {
      throw new HadesError('HADES_ERR_OUTPUT_FAILED', `cannot write ${this.options.file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
  }

  /** A file moved or deleted by someone else (an external logrotate): start a new one at the path. */
  private reopenIfMoved(): void {
    if (this.fd === undefined || Date.now() - this.checkedAt < CHECK_PATH_MS) return;
    this.checkedAt = Date.now();
    let ino = 0;
    try {
      ino = statSync(this.options.file).ino;
    } catch {
      // gone
    }
    if (ino !== this.ino) this.close();
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
