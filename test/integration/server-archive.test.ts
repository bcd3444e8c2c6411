// hades-test: shares the machine
/**
 * The server's raw archive, end to end: events an agent sends reach the archive, and a file the
 * archive cannot write is reported in the server's log with its code (the store keeps the events).
 */
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { openDatabase } from '../../src/server/db.js';
import { MARK_FILE } from '../../src/server/store/archive.js';
import { EventStore } from '../../src/server/store/events.js';
import { GrpcTransport } from '../../src/agent/transport/grpc-transport.js';
import { AGENT_VERSION, cleanupTempDirs, makeEvents, ndjson, sinkLogger, tempDir, TestServer } from '../helpers/server.js';

after(() => cleanupTempDirs());

describe('the raw archive of a running server', () => {
  it('logs a file it cannot write (HADES_ERR_STORE_WRITE), and counts its events in the server\'s stats', async () => {
    const dataDir = tempDir();
    const archive = path.join(dataDir, 'archive');
    // The day's partition cannot be made: a file stands where its folder would be (as a full or
    // broken disk would fail the write).
    mkdirSync(archive, { recursive: true });
    writeFileSync(path.join(archive, 'dt=2026-01-02'), 'not a folder');
    const server = await TestServer.start({ dataDir, extra: 'store: { archive: { enabled: true } }\n' });
    let stopped = false;
    try {
      const identity = await server.enrollAgent();
      const transport = new GrpcTransport({ identity, addresses: identity.gateways, agentVersion: AGENT_VERSION, log: sinkLogger() });
      const events = makeEvents(3, { extra: (e) => (e['@timestamp'] = '2026-01-02T10:00:00.000Z') });
      try {
        await transport.send({ firstSeq: 1, lastSeq: 1, events: events.length, data: ndjson(events) }, new AbortController().signal);
      } finally {
        await transport.close();
      }
      assert.equal((await server.searchAll({ agent: identity.agentId, since: '2026-01-01T00:00:00Z' })).length, 3, 'the store has the events');
      // Stopping writes what the archive holds.
      await server.stop();
      stopped = true;
      const failures = server.log.lines().filter((l) => l['code'] === 'HADES_ERR_STORE_WRITE' || JSON.stringify(l).includes('HADES_ERR_STORE_WRITE'));
      assert.ok(failures.length > 0, `no coded error in the log:\n${server.log.text}`);
      assert.match(JSON.stringify(failures[0]), /archive/);
    } finally {
      if (!stopped) await server.stop();
    }
  });

  it('writes at start the events a killed server stored but had not written to files, and only those', { timeout: 60_000 }, async () => {
    const dataDir = tempDir();
    const archive = path.join(dataDir, 'archive');
    const extra = 'store: { archive: { enabled: true } }\n';
    /** The event ids in the archive's files. */
    const archived = (): string[] => {
      const ids: string[] = [];
      const walk = (dir: string): void => {
        for (const entry of readdirSync(dir, { withFileTypes: true })) {
          if (entry.name.startsWith('.')) continue;
          const full = path.join(dir, entry.name);
          if (entry.isDirectory()) walk(full);
          else if (entry.name.endsWith('.ndjson.gz')) for (const line of gunzipSync(readFileSync(full)).toString('utf8').split('\n').filter(Boolean)) ids.push((JSON.parse(line) as { event: { id: string } }).event.id);
        }
      };
      walk(archive);
      return ids.sort();
    };
    const first = await TestServer.start({ dataDir, extra });
    await first.stop();
    assert.equal(readFileSync(path.join(archive, MARK_FILE), 'utf8'), '0\n', 'an empty store: the mark at 0');
    // What a server killed with a partition's buffer leaves: events stored, none of them in a file.
    const db = openDatabase(path.join(dataDir, 'hades.db'));
    try {
      assert.equal(new EventStore(db).insertBatch('ag_killed', makeEvents(2500, { prefix: 'killed' })).stored, 2500);
    } finally {
      db.close();
    }
    assert.deepEqual(archived(), []);
    const second = await TestServer.start({ dataDir, extra });
    await second.stop();
    const ids = archived();
    assert.equal(ids.length, 2500, 'every event the store had, once');
    assert.equal(new Set(ids).size, 2500);
    assert.ok(second.log.lines().some((l) => l['msg'] === 'archive caught up' && l['event_count'] === 2500), second.log.text);
    assert.equal(readFileSync(path.join(archive, MARK_FILE), 'utf8'), '2500\n');
    // Started again: nothing is written twice.
    const third = await TestServer.start({ dataDir, extra });
    await third.stop();
    assert.equal(archived().length, 2500);
  });
});

