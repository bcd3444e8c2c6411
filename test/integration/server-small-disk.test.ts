// hades-test: runs alone (it mounts a small tmpfs to fill a disk)
/**
 * A server whose data folder is on a small file system, with agents streaming more than it holds:
 * its WAL stays within what the disk allows, and short of room it deletes its first events and
 * stores again, by itself. On an 80 MB tmpfs the WAL once reached 66 MB (it was folded back into
 * the file only at 4,000 pages of 16 KiB), its checkpoint found no room for the pages it had to
 * write into the file, and every retention failed on the full disk: the agents' batches got
 * temporary Nacks until someone freed space by hand.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { statfsSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { cleanupTempDirs, GatewayStream, identityCredentials, makeEvents, ndjson, sleep, tempDir, TestServer } from '../helpers/server.js';

const MB = 1024 * 1024;
const dataDir = tempDir();
let mounted = false;

after(() => {
  if (mounted) spawnSync('umount', [dataDir]);
  cleanupTempDirs();
});

describe('a server on a small disk', () => {
  it('keeps its WAL and the disk within bounds under a stream of events, and deletes its first events to store again', { skip: process.getuid?.() !== 0 && 'mounts a small file system: needs root' }, async () => {
    const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=80m', 'tmpfs', dataDir], { encoding: 'utf8' });
    assert.equal(mount.status, 0, mount.stderr);
    mounted = true;
    const server = await TestServer.start({ dataDir });
    const streams: GatewayStream[] = [];
    const walFile = path.join(dataDir, 'hades.db-wal');
    let largestWal = 0;
    let leastFree = Infinity;
    const sample = setInterval(() => {
      const fs = statfsSync(dataDir);
      leastFree = Math.min(leastFree, fs.bavail * fs.bsize);
      try {
        largestWal = Math.max(largestWal, statSync(walFile).size);
      } catch {
        // no WAL yet
      }
    }, 100);
    try {
      for (let i = 0; i < 3; i++) {
        const identity = await server.enrollAgent();
        const stream = new GatewayStream(identity.gateways[0]!, identityCredentials(identity));
        stream.hello(`small-disk-${i}`);
        await stream.welcome();
        streams.push(stream);
      }
      // About 1 MB a batch, as fast as the server takes them, until it has refused batches for
      // want of room and then stored some again (or 40 s).
      const firstId = 'first-0';
      const deadline = Date.now() + 40_000;
      let seq = 0;
      let refused = 0;
      let storedAfterRefusal = 0;
      const codes = new Set<string>();
      await Promise.all(
        streams.map(async (stream) => {
          while (Date.now() < deadline && storedAfterRefusal < 6) {
            const n = ++seq;
            const events = makeEvents(400, { action: 'exec', prefix: n === 1 ? 'first' : `b${n}`, extra: (e) => (e['process'].args = ['/bin/true', 'x'.repeat(2000)]) });
            const answer = await stream.batch(ndjson(events), n, events.length, 30_000);
            if (answer.ack !== undefined) {
              if (refused > 0) storedAfterRefusal++;
            } else {
              refused++;
              codes.add(answer.nack!.code);
              assert.equal(answer.nack!.permanent, false, 'refused for now: the agent sends it again');
              await sleep(200);
            }
          }
        }),
      );
      clearInterval(sample);
      assert.ok(refused > 0, 'the stream was more than the disk holds');
      assert.deepEqual([...codes], ['HADES_ERR_STORE_WRITE']);
      assert.ok(storedAfterRefusal >= 6, `batches are stored again once events are deleted (${storedAfterRefusal} after ${refused} refused)`);
      assert.ok(largestWal <= 8 * MB, `the WAL stays within a tenth of the disk (${largestWal} bytes at most)`);
      assert.ok(leastFree >= 2 * MB, `the disk never filled (${leastFree} bytes free at least)`);
      const lines = server.log.lines();
      assert.ok(lines.some((l) => l['msg'] === 'retention' && Number(l['deletedBySize']) > 0), 'the deletions are counted in the log');
      assert.ok(lines.some((l) => l['code'] === 'HADES_ERR_STORE_WRITE' && String(l['msg']).includes('store.min_free_mb')), 'the lack of room is said');
      assert.deepEqual(
        lines.filter((l) => l['msg'] === 'retention failed'),
        [],
        'no retention failed',
      );
      const db = new Database(path.join(dataDir, 'hades.db'), { readonly: true });
      try {
        const left = db.prepare('SELECT count(*) AS n, sum(event_id = ?) AS first FROM events').get(firstId) as { n: number; first: number };
        assert.ok(left.n > 0, 'events are kept');
        assert.equal(left.first, 0, 'the first stored went first');
      } finally {
        db.close();
      }
    } finally {
      clearInterval(sample);
      for (const stream of streams) stream.close();
      await server.stop();
    }
  });
});
