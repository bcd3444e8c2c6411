/**
 * The database's files removed or replaced under a running server. SQLite writes to the files it
 * holds open, not to their paths: with `hades.db` (or its `-wal` or `-shm`) deleted, by mistake
 * or by an intruder erasing what was recorded, a server would go on storing and acknowledging
 * batches into a file no path names any more, and all of it would be gone at its next stop, the
 * agents having dropped what was acknowledged. The server looks at the paths every few seconds
 * and at its stop (StoreFiles.lost) and, when one moved, restarts its parts on a copy of what it
 * holds put back at the path (saveCopy before the database closes, placeBack after; recover at
 * the next start for a copy a crash left between them): nothing acknowledged is lost, and the
 * agents resend what the restart left unacknowledged.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, statSync, statfsSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { HadesError } from '../common/errors.js';
import { makeFolders } from '../runtime/folders.js';
import { syncFolder } from '../runtime/private-file.js';
import { liveBytes, ownerOnly, type Db } from './db.js';

/** A file's identity: its inode number alone is reused by another file system (a fresh mount). */
interface FileId {
  readonly dev: number;
  readonly ino: number;
}

/** The file at a path, or undefined when nothing is there. */
function idAt(file: string): FileId | undefined {
  try {
    const { dev, ino } = statSync(file);
    return { dev, ino };
  } catch {
    return undefined;
  }
}

const same = (a: FileId | undefined, b: FileId | undefined): boolean => a !== undefined && b !== undefined && a.dev === b.dev && a.ino === b.ino;

/** A copy that failed, removed when it is a file (something else at its name stays, and the next copy fails on it, said). */
function removeCopy(copy: string): void {
  try {
    rmSync(copy, { force: true });
  } catch {
    // a folder at the copy's name
  }
}

const MB = 1024 * 1024;

/** The files SQLite keeps beside the database in WAL mode. */
const SIDECARS = ['-wal', '-shm'] as const;

export class StoreFiles {
  private readonly main: FileId;
  /** The `-wal` and `-shm` the server holds, once seen (SQLite makes them as the database opens in WAL mode). */
  private readonly sidecars = new Map<string, FileId>();

  /** Right after the database at `file` was opened. */
  constructor(readonly file: string) {
    const main = idAt(file);
    if (main === undefined) throw new HadesError('HADES_ERR_STORE_OPEN', `the database ${file} is gone right after it was opened`);
    this.main = main;
    for (const suffix of SIDECARS) this.seen(suffix);
  }

  /** Records the sidecar when it is not known yet and is there; true when it was recorded now. */
  private seen(suffix: string): boolean {
    if (this.sidecars.has(suffix)) return false;
    const id = idAt(`${this.file}${suffix}`);
    if (id !== undefined) this.sidecars.set(suffix, id);
    return id !== undefined;
  }

  /** A sidecar at the path that is not the server's (put there by another process), or undefined. */
  private foreign(suffix: string): FileId | undefined {
    const at = idAt(`${this.file}${suffix}`);
    return at !== undefined && !same(at, this.sidecars.get(suffix)) ? at : undefined;
  }

  /**
   * The path of the first of the database's files (`hades.db`, its `-wal`, its `-shm`) that no
   * longer names the file the server holds (removed, moved or replaced), or undefined. A `-shm`
   * removed alone matters too: another process opening the database would make a new one, and
   * the two would no longer see each other's locks and commits.
   */
  lost(): string | undefined {
    if (!same(idAt(this.file), this.main)) return this.file;
    for (const suffix of SIDECARS) {
      if (this.seen(suffix)) continue;
      const known = this.sidecars.get(suffix);
      if (known !== undefined && !same(idAt(`${this.file}${suffix}`), known)) return `${this.file}${suffix}`;
    }
    return undefined;
  }

  /**
   * Before the database closes: moves every commit into the main file (a checkpoint) and, when
   * the path no longer names it or the checkpoint could not finish (another process, a backup or
   * an sqlite3 shell, holding a read transaction: the commits after its snapshot stay in the
   * -wal), copies the whole content (VACUUM INTO, which reads through the server's connection) to
   * an owner-only file beside the path, synced, whose name it returns for placeBack. Files put at
   * the paths by someone else (a database in its place, a `-wal` or `-shm` of another) are then
   * moved aside, before the database closes (SQLite removes the `-wal` and `-shm` names when it
   * does): the events the server holds win over a replacement, which is kept, under the name
   * returned as `aside`. Throws HADES_ERR_STORE_LOST (disk full, the folder unwritable) with the
   * copy removed; the database stays open for another try.
   */
  saveCopy(db: Db, now = new Date()): { copy?: string; aside?: string } {
    const [result] = db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number; log: number; checkpointed: number }[];
    const complete = result !== undefined && result.busy === 0 && result.log === result.checkpointed;
    const mainAt = idAt(this.file);
    let copy: string | undefined;
    if (!complete || !same(mainAt, this.main)) {
      copy = `${this.file}.restoring`;
      try {
        makeFolders(path.dirname(this.file), 0o700);
        // The lost file keeps its room while it is open: a copy needs as much again.
        const needed = liveBytes(db);
        const fs = statfsSync(path.dirname(this.file));
        const free = fs.bavail * fs.bsize;
        if (needed > free) throw new HadesError('HADES_ERR_STORE_LOST', `it needs ${Math.ceil(needed / MB)} MB and ${Math.floor(free / MB)} MB are free in its folder (the lost file keeps its room until the server stops): free space there`);
        rmSync(copy, { force: true });
        // Created empty and owner-only first: VACUUM INTO writes into an empty file, keeping its mode.
        ownerOnly(copy);
        db.prepare('VACUUM INTO ?').run(copy);
        const fd = openSync(copy, 'r');
        try {
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
      } catch (error) {
        removeCopy(copy);
        throw new HadesError('HADES_ERR_STORE_LOST', `the database could not be copied back to ${copy}: ${(error as Error).message}`, { cause: error });
      }
    }
    // What is not the server's at the paths: a replacement of the database (with whatever -wal
    // and -shm are there), or sidecars of another beside the server's own database.
    const replaced = mainAt !== undefined && !same(mainAt, this.main);
    const moved = [...(replaced ? [''] : []), ...SIDECARS.filter((suffix) => (replaced ? idAt(`${this.file}${suffix}`) !== undefined : this.foreign(suffix) !== undefined))];
    if (moved.length === 0) return copy === undefined ? {} : { copy };
    const aside = `${this.file}.replaced-${now.toISOString().replace(/[:.]/g, '-')}`;
    try {
      // The sidecars first, the database last: a crash between leaves no database with a stranger's -wal.
      for (const suffix of [...moved].reverse()) renameSync(`${this.file}${suffix}`, `${aside}${suffix}`);
    } catch (error) {
      if (copy !== undefined) removeCopy(copy);
      throw new HadesError('HADES_ERR_STORE_LOST', `a file put in the place of the database's could not be moved aside to ${aside}: ${(error as Error).message}`, { cause: error });
    }
    return { ...(copy === undefined ? {} : { copy }), aside };
  }

  /**
   * After the database closed: the copy renamed to the database's path. A -wal and -shm still at
   * the path are the lost file's (another process kept them open, so SQLite did not remove them at
   * the close): opened with the copy, their frames would be read over its pages.
   */
  placeBack(copy: string): void {
    for (const suffix of SIDECARS) rmSync(`${this.file}${suffix}`, { force: true });
    renameSync(copy, this.file);
    syncFolder(path.dirname(this.file));
  }

  /**
   * Before the database opens: a copy that a crash left between its sync and its rename (the
   * server killed in a restart) is put in place when nothing is at the path and SQLite finds it
   * whole (quick_check), and its name returned; a damaged one stops the start
   * (HADES_ERR_STORE_OPEN). With a database at the path, the copy stays where it is, and
   * undefined is returned.
   */
  static recover(file: string): string | undefined {
    const copy = `${file}.restoring`;
    if (idAt(copy) === undefined || idAt(file) !== undefined) return undefined;
    // A copy the crash cut short is no database: it stays for a person to look at.
    let whole = false;
    try {
      const db = new Database(copy, { readonly: true, fileMustExist: true });
      try {
        whole = db.pragma('quick_check', { simple: true }) === 'ok';
      } finally {
        db.close();
      }
    } catch {
      whole = false;
    }
    if (!whole) throw new HadesError('HADES_ERR_STORE_OPEN', `${copy}, the copy of the database a restart was putting back when the server stopped, is damaged and ${file} is missing: move the copy aside (or try to recover it with sqlite3's .recover) before starting the server`);
    for (const suffix of SIDECARS) rmSync(`${file}${suffix}`, { force: true });
    renameSync(copy, file);
    syncFolder(path.dirname(file));
    return copy;
  }
}
