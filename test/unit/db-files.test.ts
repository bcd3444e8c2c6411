/** The server's database files are readable by their owner only, however they were left. */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { openDatabase } from '../../src/server/db.js';
import { DataLock, LOCK_FILE } from '../../src/server/data-lock.js';

const dir = mkdtempSync(path.join(tmpdir(), 'hades-db-files-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const mode = (file: string) => statSync(file).mode & 0o777;

describe('the server\'s database files', () => {
  it('are created owner-only, the WAL and shared memory with them, whatever the umask', () => {
    const old = process.umask(0o022);
    try {
      const file = path.join(dir, 'new.db');
      const db = openDatabase(file);
      db.prepare('CREATE TABLE t (x)').run();
      db.prepare('INSERT INTO t VALUES (1)').run();
      for (const f of [file, `${file}-wal`, `${file}-shm`]) assert.equal(mode(f), 0o600, f);
      db.close();
      const lock = DataLock.acquire(dir);
      assert.equal(mode(path.join(dir, LOCK_FILE)), 0o600);
      lock.release();
    } finally {
      process.umask(old);
    }
  });

  it('are made owner-only when an earlier version (or a copy) left them readable by others', () => {
    const file = path.join(dir, 'old.db');
    const first = openDatabase(file);
    first.prepare('CREATE TABLE t (x)').run();
    first.close();
    chmodSync(file, 0o644);
    writeFileSync(`${file}-wal`, '');
    chmodSync(`${file}-wal`, 0o644);
    openDatabase(file).close();
    assert.equal(mode(file), 0o600);
  });
});
