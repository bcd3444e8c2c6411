/**
 * The database's files removed or replaced under a running server. SQLite writes to the files it
 * holds open, not to their paths: with `hades.db` (or its `-wal`) deleted, by mistake or by an
 * intruder erasing what was recorded, a server would go on storing and acknowledging batches into
 * a file no path names any more, and all of it would be gone at its next stop, the agents having
 * dropped what was acknowledged. The server looks at the paths every few seconds (StoreFiles.lost)
 * and, when one moved, restarts its parts on a copy of what it holds put back at the path
 * (saveCopy before the database closes, placeBack after): nothing acknowledged is lost, and the
 * agents resend what the restart left unacknowledged.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { HadesError } from '../common/errors.js';
import { makeFolders } from '../runtime/folders.js';
import { PathWatch } from '../runtime/path-watch.js';
import { ownerOnly, type Db } from './db.js';

/** The inode at a path, or undefined when nothing is there. */
function inodeAt(file: string): number | undefined {
  try {
    return statSync(file).ino;
  } catch {
    return undefined;
  }
}

/** A copy that failed, removed when it is a file (something else at its name stays, and the next copy fails on it, said). */
function removeCopy(copy: string): void {
  try {
    rmSync(copy, { force: true });
  } catch {
    // a folder at the copy's name
  }
}

export class StoreFiles {
  private readonly main: PathWatch;
  private readonly ino: number;
  private wal: PathWatch | undefined;

  /** Right after the database at `file` was opened. */
  constructor(readonly file: string) {
    this.main = new PathWatch(file, 0);
    const ino = inodeAt(file);
    if (ino === undefined) throw new HadesError('HADES_ERR_STORE_OPEN', `the database ${file} is gone right after it was opened`);
    this.ino = ino;
    this.main.opened(ino);
    this.watchWal();
  }

  /** Knows the `-wal` once there is one (SQLite makes it as the database opens in WAL mode); true when it was found now. */
  private watchWal(): boolean {
    if (this.wal !== undefined) return false;
    const walFile = `${this.file}-wal`;
    const ino = inodeAt(walFile);
    if (ino === undefined) return false;
    this.wal = new PathWatch(walFile, 0);
    this.wal.opened(ino);
    return true;
  }

  /**
   * The path of the first of the database's files that no longer names the file the server holds
   * (removed, moved or replaced), or undefined.
   */
  lost(): string | undefined {
    if (this.main.moved()) return this.file;
    if (this.watchWal()) return undefined;
    return this.wal?.moved() ? `${this.file}-wal` : undefined;
  }

  /**
   * Before the database closes: moves every commit into the main file and, when the path no longer
   * names it, copies its whole content (VACUUM INTO) to an owner-only file beside the path, synced,
   * for placeBack. A file found at the path (one put in its place) is then moved aside with its
   * `-wal` and `-shm`, before the database closes (SQLite removes those names when it does): the
   * events the server holds win over a replacement, which is kept for whoever wants it. Undefined
   * when only the `-wal` was lost: the checkpoint has put its commits in the main file, which the
   * path still names. Throws HADES_ERR_STORE_LOST (disk full, the folder unwritable) with the copy
   * removed; the database stays open for another try.
   */
  saveCopy(db: Db, now = new Date()): { copy: string; aside?: string } | undefined {
    db.pragma('wal_checkpoint(TRUNCATE)');
    if (inodeAt(this.file) === this.ino) return undefined;
    const copy = `${this.file}.restoring`;
    try {
      makeFolders(path.dirname(this.file), 0o700);
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
    if (inodeAt(this.file) === undefined) return { copy };
    const aside = `${this.file}.replaced-${now.toISOString().replace(/[:.]/g, '-')}`;
    try {
      for (const suffix of ['-wal', '-shm']) {
        if (inodeAt(`${this.file}${suffix}`) !== undefined) renameSync(`${this.file}${suffix}`, `${aside}${suffix}`);
      }
      renameSync(this.file, aside);
    } catch (error) {
      removeCopy(copy);
      throw new HadesError('HADES_ERR_STORE_LOST', `the file put in the database's place could not be moved aside to ${aside}: ${(error as Error).message}`, { cause: error });
    }
    return { copy, aside };
  }

  /** After the database closed: the copy renamed to the database's path. */
  placeBack(copy: string): void {
    renameSync(copy, this.file);
  }
}
