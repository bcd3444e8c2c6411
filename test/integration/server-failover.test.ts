/**
 * Failover: an agent given several gateway addresses moves to the next one when a connection
 * fails, and its batch is delivered there.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { GrpcTransport } from '../../src/agent/transport/grpc-transport.js';
import { HadesError } from '../../src/common/errors.js';
import { AGENT_VERSION, cleanupTempDirs, freePorts, makeEvents, ndjson, sinkLogger, TestServer } from '../helpers/server.js';

after(cleanupTempDirs);

describe('agent failover between gateway addresses', () => {
  it('fails on an address where no server listens, then delivers through the next one', async () => {
    const server = await TestServer.start();
    try {
      const identity = await server.enrollAgent();
      const [dead] = await freePorts(1);
      const transport = new GrpcTransport({ identity, addresses: [`127.0.0.1:${dead}`, server.addresses.gateway], agentVersion: AGENT_VERSION, log: sinkLogger(), connectTimeoutMs: 3000 });
      const events = makeEvents(10);
      const batch = { firstSeq: 1, lastSeq: 1, events: events.length, data: ndjson(events) };
      const signal = new AbortController().signal;
      await assert.rejects(transport.send(batch, signal), (e: unknown) => e instanceof HadesError && e.code === 'HADES_ERR_SERVER_UNREACHABLE');
      // The spooled channel retries the same batch: it goes to the second address.
      await transport.send(batch, signal);
      const stored = await server.searchAll({ agent: identity.agentId });
      assert.equal(stored.length, events.length);
      await transport.close();
    } finally {
      await server.stop();
    }
  });
});
