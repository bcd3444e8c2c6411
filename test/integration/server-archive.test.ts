// hades-test: shares the machine
/**
 * The server's raw archive, end to end: events an agent sends reach the archive, and a file the
 * archive cannot write is reported in the server's log with its code (the store keeps the events).
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
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
});
