// hades-test: shares the machine
/**
 * The event database's size limit in a running server (store.max_mb): held every few seconds,
 * not once a minute, so that a burst does not pile up past it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { statfsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { cleanupTempDirs, tempDir, TestServer, waitUntil } from '../helpers/server.js';

after(cleanupTempDirs);

describe('a running server holds its event database to store.max_mb', () => {
  it('deletes the first events stored within seconds of the database passing its limit', async () => {
    const dataDir = tempDir();
    const server = await TestServer.start({ dataDir, extra: 'store: { max_mb: 16 }\n' });
    try {
      // 24 MB of events written beside the server (as a burst of agents would store them): the
      // minute's retention ran at start, so only the check every few seconds can catch this.
      const db = new Database(path.join(dataDir, 'hades.db'));
      const json = JSON.stringify({ padding: 'x'.repeat(2000) });
      const insert = db.prepare("INSERT INTO events (event_id, time, ingested, agent_id, host, action, event) VALUES (?, ?, ?, 'ag_0000000000000000', 'h', 'exec', ?)");
      const now = Date.now();
      db.transaction(() => {
        for (let i = 0; i < 12_000; i++) insert.run(`burst-${String(i).padStart(6, '0')}`, now, now, json);
      })();
      const live = () => {
        const pages = db.pragma('page_count', { simple: true }) as number;
        const free = db.pragma('freelist_count', { simple: true }) as number;
        return (pages - free) * (db.pragma('page_size', { simple: true }) as number);
      };
      assert.ok(live() > 16 * 1024 * 1024, `the burst took the database past its limit (${live()} bytes)`);
      await waitUntil('the database back under its limit', () => live() <= 16 * 1024 * 1024 || undefined, 20_000, 250);
      const left = db.prepare('SELECT min(event_id) AS first, count(*) AS n FROM events').get() as { first: string; n: number };
      assert.ok(left.n > 0 && left.n < 12_000, `some events are left (${left.n})`);
      assert.notEqual(left.first, 'burst-000000', 'the first stored went first');
      db.close();
      assert.ok(server.log.lines().some((l) => l['msg'] === 'retention' && Number(l['deletedBySize']) > 0), 'the deletion is logged');
    } finally {
      await server.stop();
    }
  });

  it('deletes the first events stored while the disk has less room than store.min_free_mb (at most a tenth of it), so that it never fills to the last byte', { skip: process.getuid?.() !== 0 && 'mounts a small file system: needs root' }, async () => {
    const dataDir = tempDir();
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=48m', 'tmpfs', dataDir], { encoding: 'utf8' });
    assert.equal(mounted.status, 0, mounted.stderr);
    try {
      const server = await TestServer.start({ dataDir, extra: 'store: { max_mb: 1024 }\n' });
      try {
        const db = new Database(path.join(dataDir, 'hades.db'));
        try {
          const json = JSON.stringify({ padding: 'x'.repeat(2000) });
          const insert = db.prepare("INSERT INTO events (event_id, time, ingested, agent_id, host, action, event) VALUES (?, ?, ?, 'ag_0000000000000000', 'h', 'exec', ?)");
          const now = Date.now();
          db.transaction(() => {
            for (let i = 0; i < 8_000; i++) insert.run(`full-${String(i).padStart(6, '0')}`, now, now, json);
          })();
          db.pragma('wal_checkpoint(TRUNCATE)');
          // Something else fills the disk up to 2 MB of the end (a tenth of 48 MB is wanted free).
          const fs = () => statfsSync(dataDir);
          writeFileSync(path.join(dataDir, 'other'), Buffer.alloc(Math.max(0, fs().bavail * fs().bsize - 2 * 1024 * 1024)));
          const pageSize = db.pragma('page_size', { simple: true }) as number;
          const room = () => fs().bavail * fs().bsize + (db.pragma('freelist_count', { simple: true }) as number) * pageSize;
          const wanted = (fs().blocks * fs().bsize) / 10;
          await waitUntil('room made in the database', () => room() >= wanted || undefined, 20_000, 250);
          const left = db.prepare('SELECT min(event_id) AS first, count(*) AS n FROM events').get() as { first: string; n: number };
          assert.ok(left.n > 0 && left.n < 8_000, `some events are left (${left.n})`);
          assert.notEqual(left.first, 'full-000000', 'the first stored went first');
          assert.ok(server.log.lines().some((l) => l['code'] === 'HADES_ERR_STORE_WRITE' && String(l['msg']).includes('store.min_free_mb')), 'said in the log');
        } finally {
          db.close();
        }
      } finally {
        await server.stop();
      }
    } finally {
      spawnSync('umount', [dataDir]);
    }
  });
});
