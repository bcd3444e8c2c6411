/**
 * One server per data folder. A second `hades server` (or `hades start`) on a folder in use must
 * stop before it touches anything: it would mark the fleet offline, compete for the database and
 * then fail to bind the ports anyway.
 *
 * The lock is an exclusive lock, held for the server's life, on the small SQLite file
 * `server.lock` in the folder: SQLite's exclusive locking mode keeps the lock of the first write
 * until the connection closes. The lock itself is the kernel's (a POSIX advisory lock), so it ends
 * with the process however the process ends (kill -9 included): no stale lock to clean up after a
 * crash. SQLite also keeps two connections of one process apart, so two servers started in one
 * process (tests) are refused the same way. The CLI commands that open the database while a
 * server runs (`hades server token create`, ...) do not take this lock.
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import { HadesError } from '../common/errors.js';
import { ownerOnly } from './db.js';

export const LOCK_FILE = 'server.lock';

export class DataLock {
  #db: Database.Database | undefined;

  private constructor(db: Database.Database) {
    this.#db = db;
  }

  /**
   * Takes the folder's lock. Throws HADES_ERR_SERVER_RUNNING when another server holds it, and
   * HADES_ERR_STORE_OPEN when the lock file cannot be opened or written.
   */
  static acquire(dataDir: string): DataLock {
    const file = path.join(dataDir, LOCK_FILE);
    let db: Database.Database;
    try {
      ownerOnly(file);
      db = new Database(file, { timeout: 0 });
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
      if ((error as { code?: unknown }).code === 'SQLITE_BUSY') {
        throw new HadesError('HADES_ERR_SERVER_RUNNING', `another server already runs with the data folder ${dataDir}`, { cause: error, details: { data_dir: dataDir } });
      }
      throw new HadesError('HADES_ERR_STORE_OPEN', `cannot write the lock file ${file}: ${(error as Error).message}`, { cause: error });
    }
    return new DataLock(db);
  }

  /** Lets the folder go (once; later calls do nothing). */
  release(): void {
    this.#db?.close();
    this.#db = undefined;
  }
}
