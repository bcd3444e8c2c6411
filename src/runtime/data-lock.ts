/**
 * One process per data folder: one server (`hades server`, `hades start`), one agent. A second
 * one on a folder in use must stop before it touches anything: a second server would mark the
 * fleet offline and compete for the database; a second agent would read the same spool and
 * deliver its batches twice.
 *
 * The lock is an exclusive lock, held for the process's life, on a small SQLite file in the
 * folder (`server.lock`, `agent.lock`): SQLite's exclusive locking mode keeps the lock of the
 * first write until the connection closes. The lock itself is the kernel's (a POSIX advisory
 * lock), so it ends with the process however the process ends (kill -9 included): no stale lock
 * to clean up after a crash, and no guess from a process id written in a file, which after a
 * reboot may belong to any program. SQLite also keeps two connections of one process apart, so
 * two servers started in one process (tests) are refused the same way. The CLI commands that
 * open the server's database while it runs (`hades server token create`, ...) do not take the
 * lock; `hades agent status` looks whether the agent's is held (DataLock.held).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { HadesError } from '../common/errors.js';

export interface LockKind {
  /** The lock file's name in the data folder. */
  readonly file: string;
  /** The error when another process holds the folder. */
  readonly busy: (dataDir: string, cause: unknown) => HadesError;
  /**
   * How long to wait for the lock (ms; 0 by default): a `hades agent status` looking whether the
   * lock is held holds it shared for an instant.
   */
  readonly waitMs?: number;
}

export class DataLock {
  #db: Database.Database | undefined;

  private constructor(db: Database.Database) {
    this.#db = db;
  }

  /**
   * Takes the folder's lock. Throws the kind's `busy` error when another process holds it, and
   * HADES_ERR_STORE_OPEN when the lock file cannot be opened or written.
   */
  static acquire(dataDir: string, kind: LockKind): DataLock {
    const file = path.join(dataDir, kind.file);
    let db: Database.Database;
    try {
      db = new Database(file, { timeout: kind.waitMs ?? 0 });
    } catch (error) {
      throw new HadesError('HADES_ERR_STORE_OPEN', `cannot open the lock file ${file}: ${(error as Error).message}`, { cause: error });
    }
    try {
      db.pragma('locking_mode = EXCLUSIVE');
      // The first write takes the exclusive lock, which exclusive locking mode then keeps.
      db.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER NOT NULL, started TEXT NOT NULL); DELETE FROM holder;');
      db.prepare('INSERT INTO holder (pid, started) VALUES (?, ?)').run(process.pid, new Date().toISOString());
    } catch (error) {
      db.close();
      if ((error as { code?: unknown }).code === 'SQLITE_BUSY') throw kind.busy(dataDir, error);
      throw new HadesError('HADES_ERR_STORE_OPEN', `cannot write the lock file ${file}: ${(error as Error).message}`, { cause: error });
    }
    return new DataLock(db);
  }

  /**
   * Whether a live process holds the folder's lock of this kind: true, false (no lock file, or
   * nobody holds it), or undefined when the file cannot be read (another user's folder).
   */
  static held(dataDir: string, kind: Pick<LockKind, 'file'>): boolean | undefined {
    const file = path.join(dataDir, kind.file);
    if (!existsSync(file)) return false;
    let db: Database.Database;
    try {
      db = new Database(file, { readonly: true, fileMustExist: true, timeout: 0 });
    } catch {
      return undefined;
    }
    try {
      db.prepare('SELECT count(*) FROM holder').get();
      return false;
    } catch (error) {
      return (error as { code?: unknown }).code === 'SQLITE_BUSY' ? true : undefined;
    } finally {
      db.close();
    }
  }

  /** Lets the folder go (once; later calls do nothing). */
  release(): void {
    this.#db?.close();
    this.#db = undefined;
  }
}
