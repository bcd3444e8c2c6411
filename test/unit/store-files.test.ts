/** The database's files removed or replaced under a running server: seen, and put back (src/server/store-files.ts). */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { isHadesError } from '../../src/common/errors.js';
import { openDatabase, type Db } from '../../src/server/db.js';
import { StoreFiles } from '../../src/server/store-files.js';

const root = mkdtempSync(path.join(tmpdir(), 'hades-store-files-'));
after(() => rmSync(root, { recursive: true, force: true }));
let serial = 0;

/** A database with `rows` rows in t, its WAL made, and its watch. */
function opened(rows = 3): { dir: string; file: string; db: Db; files: StoreFiles } {
  const dir = path.join(root, `case-${serial++}`);
  const file = path.join(dir, 'hades.db');
  const db = openDatabase(file);
  const files = new StoreFiles(file);
  db.exec('CREATE TABLE t (n INTEGER)');
  const insert = db.prepare('INSERT INTO t VALUES (?)');
  for (let n = 0; n < rows; n++) insert.run(n);
  assert.equal(files.lost(), undefined);
  return { dir, file, db, files };
}

const count = (file: string) => {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n;
  } finally {
    db.close();
  }
};

describe('the database files of a running server', () => {
  it('are not lost while they stay at their paths', () => {
    const { db, files } = opened();
    assert.equal(files.lost(), undefined);
    db.close();
  });

  it('a removed database is seen, copied (owner-only, with every commit) and put back at its path', () => {
    const { file, db, files } = opened(50);
    rmSync(file);
    assert.equal(files.lost(), file);
    // Written after the removal, into the file no path names: in the copy too.
    db.prepare('INSERT INTO t VALUES (?)').run(50);
    const { copy, aside } = files.saveCopy(db);
    assert.ok(copy !== undefined);
    assert.equal(aside, undefined, 'nothing was in its place');
    assert.equal(statSync(copy).mode & 0o777, 0o600);
    db.close();
    files.placeBack(copy);
    assert.equal(count(file), 51);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(existsSync(copy), false);
  });

  it('a database moved away is seen the same way', () => {
    const { file, db, files } = opened();
    renameSync(file, `${file}.old`);
    assert.equal(files.lost(), file);
    db.close();
  });

  it('a file put in its place is moved aside, with its -wal and -shm, and the server\'s content wins', () => {
    const { dir, file, db, files } = opened(7);
    // All of it replaced (unlinked first: the server's -shm is mapped, and written over it would fault).
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${file}${suffix}`);
    const other = new Database(file);
    other.pragma('journal_mode = WAL');
    other.exec('CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (1)');
    assert.equal(files.lost(), file);
    const { copy, aside } = files.saveCopy(db, new Date('2026-12-02T10:00:00.000Z'));
    assert.equal(aside, path.join(dir, 'hades.db.replaced-2026-12-02T10-00-00-000Z'));
    assert.ok(copy !== undefined && aside !== undefined);
    db.close();
    files.placeBack(copy);
    assert.equal(count(file), 7);
    assert.equal(existsSync(`${aside}-wal`), true, 'its -wal went with it: the server closing did not remove it');
    other.close();
    assert.equal(count(aside), 1, 'the replacement is kept, whole');
  });

  it('a removed -wal is seen; its commits are checkpointed into the main file, which needs no copy', () => {
    const { file, db, files } = opened(20);
    rmSync(`${file}-wal`);
    assert.equal(files.lost(), `${file}-wal`);
    assert.deepEqual(files.saveCopy(db), {});
    db.close();
    assert.equal(count(file), 20);
  });

  it('a removed -wal while another process reads: the checkpoint cannot finish, so the content is copied over the file', () => {
    const { file, db, files } = opened(20);
    const reader = new Database(file, { readonly: true });
    try {
      // A read transaction whose snapshot keeps the later commits out of the main file.
      reader.exec('BEGIN');
      reader.prepare('SELECT count(*) FROM t').get();
      const insert = db.prepare('INSERT INTO t VALUES (?)');
      for (let n = 20; n < 30; n++) insert.run(n);
      rmSync(`${file}-wal`);
      assert.equal(files.lost(), `${file}-wal`);
      const { copy, aside } = files.saveCopy(db);
      assert.ok(copy !== undefined, 'a copy, the checkpoint being partial');
      assert.equal(aside, undefined);
      db.close();
      files.placeBack(copy);
    } finally {
      reader.close();
    }
    assert.equal(count(file), 30);
    const check = new Database(file, { readonly: true });
    assert.equal(check.pragma('integrity_check', { simple: true }), 'ok');
    check.close();
  });

  it('a -shm removed alone is seen too', () => {
    const { file, db, files } = opened();
    rmSync(`${file}-shm`);
    assert.equal(files.lost(), `${file}-shm`);
    assert.deepEqual(files.saveCopy(db), {});
    db.close();
  });

  it('a -wal of another put beside the server\'s own database is moved aside, not removed by the close', () => {
    const { dir, file, db, files } = opened(3);
    rmSync(`${file}-wal`);
    writeFileSync(`${file}-wal`, 'a stranger');
    assert.equal(files.lost(), `${file}-wal`);
    const { copy, aside } = files.saveCopy(db, new Date('2026-12-02T11:00:00.000Z'));
    assert.equal(copy, undefined, 'the database is the server\'s, and all of it is in the main file');
    assert.equal(aside, path.join(dir, 'hades.db.replaced-2026-12-02T11-00-00-000Z'));
    db.close();
    assert.equal(readFileSync(`${aside}-wal`, 'utf8'), 'a stranger');
    assert.equal(count(file), 3);
  });

  it('a removed folder is made again for the copy', () => {
    const { dir, file, db, files } = opened(4);
    rmSync(dir, { recursive: true });
    assert.equal(files.lost(), file);
    const { copy } = files.saveCopy(db);
    db.close();
    files.placeBack(copy!);
    assert.equal(count(file), 4);
  });

  it('a copy that cannot be written throws HADES_ERR_STORE_LOST, leaves nothing behind, and can be tried again', () => {
    const { dir, file, db, files } = opened(5);
    rmSync(file);
    // Something the copy cannot replace where it writes.
    mkdirSync(`${file}.restoring`);
    writeFileSync(path.join(`${file}.restoring`, 'x'), '');
    assert.throws(() => files.saveCopy(db), (error: unknown) => isHadesError(error) && error.code === 'HADES_ERR_STORE_LOST');
    rmSync(`${file}.restoring`, { recursive: true });
    const { copy } = files.saveCopy(db);
    db.close();
    files.placeBack(copy!);
    assert.equal(count(file), 5);
    assert.deepEqual(readdirSync(dir).filter((f) => f.includes('restoring')), []);
  });
});

describe('a copy a restart left when the server was killed', () => {
  it('is put in place when nothing is at the path and it is whole', () => {
    const { file, db } = opened(6);
    db.prepare('VACUUM INTO ?').run(`${file}.restoring`);
    db.close();
    rmSync(file);
    assert.equal(StoreFiles.recover(file), `${file}.restoring`);
    assert.equal(count(file), 6);
    assert.equal(existsSync(`${file}.restoring`), false);
  });

  it('stays where it is beside a database at the path', () => {
    const { file, db } = opened(2);
    db.close();
    writeFileSync(`${file}.restoring`, 'partial');
    assert.equal(StoreFiles.recover(file), undefined);
    assert.equal(existsSync(`${file}.restoring`), true);
  });

  it('stops the start with HADES_ERR_STORE_OPEN when damaged and nothing is at the path', () => {
    const { file, db } = opened(2);
    db.close();
    rmSync(file);
    writeFileSync(`${file}.restoring`, 'SQLite format 3\0 cut short');
    assert.throws(() => StoreFiles.recover(file), (error: unknown) => isHadesError(error) && error.code === 'HADES_ERR_STORE_OPEN');
    assert.equal(existsSync(`${file}.restoring`), true, 'left for a person to look at');
  });

  it('does nothing when there is none', () => {
    const { file, db } = opened(1);
    db.close();
    assert.equal(StoreFiles.recover(file), undefined);
  });
});
