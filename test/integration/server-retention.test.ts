// hades-test: shares the machine
/**
 * The event database's size limit in a running server (store.max_mb): held every few seconds,
 * not once a minute, so that a burst does not pile up past it.
 */
import assert from 'node:assert/strict';
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
});
