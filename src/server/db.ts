/**
 * The server's embedded database: one SQLite file (better-sqlite3) in WAL mode, shared by the
 * event store, the fleet registry, tokens and the audit log. Each module owns its tables and
 * brings its own ordered list of migrations; `migrate` applies the ones not yet applied, each in
 * a transaction, and records them in `schema_migrations`. Migrations are append-only: a
 * released step is never edited, a change is a new step.
 */

import { chmodSync, closeSync, openSync, statfsSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { HadesError } from '../common/errors.js';
import { makeFolders } from '../runtime/folders.js';

export type Db = Database.Database;

/** The WAL's size limit on a file system of 2.5 GiB or more (walBytes). */
const WAL_BYTES = 64 * 1024 * 1024;

/**
 * Makes a database file (created empty when missing) and the journal files SQLite keeps beside
 * it readable by their owner only: SQLite gives a new `-wal`, `-shm` or `-journal` file the mode
 * of the database's, and the events (their command lines), alerts and group configurations
 * (output credentials) must not be one copy or loosened folder away from every local user.
 */
export function ownerOnly(file: string): void {
  closeSync(openSync(file, 'a', 0o600));
  for (const suffix of ['', '-wal', '-shm', '-journal']) {
    try {
      chmodSync(`${file}${suffix}`, 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
}

/** Opens (creating, owner-only) the database file; `:memory:` for tests. */
export function openDatabase(file: string): Db {
  let db: Db;
  try {
    if (file !== ':memory:') {
      makeFolders(path.dirname(file), 0o700);
      ownerOnly(file);
    }
    db = new Database(file);
  } catch (error) {
    throw new HadesError('HADES_ERR_STORE_OPEN', `cannot open the database ${file}: ${(error as Error).message}`);
  }
  try {
    configure(db);
  } catch (error) {
    // Not a database (damaged, or another file at that path), or one that cannot be set up.
    db.close();
    throw new HadesError('HADES_ERR_STORE_OPEN', `cannot use the database ${file}: ${(error as Error).message}`, { cause: error });
  }
  return db;
}

function configure(db: Db): void {
  // 16 KiB pages (only for a new file): events of 1-2.5 KB fit with less overhead, and inserts
  // were about 40% faster than with 4 KiB pages in bench/store.ts.
  db.pragma('page_size = 16384');
  // WAL: readers (API searches) never block the writer (event ingestion), and commits are cheap.
  db.pragma('journal_mode = WAL');
  // Fewer, larger checkpoints on the ingest thread (every 4,000 pages, or less on a small disk);
  // the WAL file is trimmed back after them.
  const limit = walBytes(db);
  const pageSize = db.pragma('page_size', { simple: true }) as number;
  db.pragma(`wal_autocheckpoint = ${Math.max(1, Math.min(4000, Math.floor(limit / pageSize)))}`);
  db.pragma(`journal_size_limit = ${limit}`);
  // NORMAL with WAL: a commit survives a crash of the server; a power loss may lose the last
  // commits (agents resend what was not acknowledged... acknowledgement follows the commit).
  db.pragma('synchronous = NORMAL');
  // A page cache of up to 128 MiB instead of 2 MiB (125 pages of 16 KiB): the pages a stream of
  // events dirties (the last page of each host's run in the host index, one per executable, user
  // and destination) outnumber 125 in a fleet, and each one evicted is read back at the next
  // commit. Grows only as pages are used. About a seventh less CPU per event stored in
  // bench/group-commit.ts (docs/perf.md, "The session of 2026-12-02 06:40 UTC").
  db.pragma('cache_size = -131072');
  db.pragma('busy_timeout = 5000');
  // Statement journals of savepoints (each batch is one inside its turn's group commit) in
  // memory rather than in temporary files.
  db.pragma('temp_store = MEMORY');
  db.pragma('foreign_keys = ON');
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (module TEXT NOT NULL, step INTEGER NOT NULL, applied TEXT NOT NULL, PRIMARY KEY (module, step))');
}

/**
 * The size the WAL is folded back into the file at (and trimmed back to): 64 MiB, or a fortieth of
 * a smaller file system. The checkpoint writes the pages the WAL holds into the file, which needs
 * as much room again: a WAL of 64 MiB on a disk of 80 MB took the room of its own checkpoint, and
 * nothing, not even a delete, could be written from then on.
 */
function walBytes(db: Db): number {
  if (db.memory) return WAL_BYTES;
  try {
    const fs = statfsSync(path.dirname(db.name));
    return Math.min(WAL_BYTES, Math.floor((fs.blocks * fs.bsize) / 40));
  } catch {
    return WAL_BYTES; // the file system cannot be told
  }
}

/** Bytes of the database's pages in use (its free list is reused by new rows, not returned to the OS): what a copy of it takes. */
export function liveBytes(db: Db): number {
  const pageSize = db.pragma('page_size', { simple: true }) as number;
  const pages = db.pragma('page_count', { simple: true }) as number;
  const free = db.pragma('freelist_count', { simple: true }) as number;
  return (pages - free) * pageSize;
}

/** Applies a module's migrations that are not applied yet, in order, each in a transaction. */
export function migrate(db: Db, module: string, steps: readonly string[]): void {
  const applied = new Set((db.prepare('SELECT step FROM schema_migrations WHERE module = ?').all(module) as { step: number }[]).map((r) => r.step));
  const record = db.prepare('INSERT INTO schema_migrations (module, step, applied) VALUES (?, ?, ?)');
  steps.forEach((sql, index) => {
    if (applied.has(index)) return;
    db.transaction(() => {
      db.exec(sql);
      record.run(module, index, new Date().toISOString());
    })();
  });
}
