// hades-test: shares the machine (servers and agents in this process, on ephemeral loopback ports)
/**
 * Failover: an agent given several gateway addresses moves to the next one when a connection
 * fails, and its batch is delivered there; it goes back to a preferred address (earlier in the
 * list) once that one answers again.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { GrpcTransport } from '../../src/agent/transport/grpc-transport.js';
import { HadesError } from '../../src/common/errors.js';
import { AGENT_VERSION, cleanupTempDirs, freePorts, LogSink, makeEvents, ndjson, sinkLogger, TestServer, waitUntil } from '../helpers/server.js';

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
      // One failed connection, one stream, on the second address; the batch was written once
      // (the first attempt had no stream to write it on), so nothing was sent again.
      assert.deepEqual(transport.streamStats(), {
        opened: 1,
        lost: { connect_failed: 1, server_ended: 0, ack_timeout: 0, renewal_reconnect: 0, preferred_return: 0 },
        nacked: { temporary: 0, permanent: 0 },
        resent: 0,
        held: 0,
        address: server.addresses.gateway,
        addressIndex: 1,
      });
      await transport.close();
    } finally {
      await server.stop();
    }
  });
});

/** A TCP relay from a port of its own to `target` (another address of the same gateway). */
class Relay {
  private readonly server = net.createServer((client) => {
    const upstream = net.connect(this.target, '127.0.0.1');
    this.sockets.add(client).add(upstream);
    this.connections++;
    client.pipe(upstream).pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  });
  private readonly sockets = new Set<net.Socket>();
  connections = 0;

  constructor(private readonly target: number) {}

  listen(port: number): Promise<void> {
    return new Promise((resolve) => this.server.listen(port, '127.0.0.1', resolve));
  }

  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

describe('agent back on its preferred gateway address', () => {
  it('leaves the second address for the first once the first answers again, and delivers there', { timeout: 60_000 }, async () => {
    const server = await TestServer.start();
    const gatewayPort = Number(server.addresses.gateway.split(':').pop());
    const [preferredPort] = await freePorts(1);
    const relay = new Relay(gatewayPort);
    const sink = new LogSink();
    // The first address (the relay, the preferred way to the server) is down at first.
    const identity = await server.enrollAgent();
    const transport = new GrpcTransport({ identity, addresses: [`127.0.0.1:${preferredPort}`, server.addresses.gateway], agentVersion: AGENT_VERSION, log: sinkLogger(sink, 'info'), connectTimeoutMs: 3000, preferredCheckMs: 500 });
    const connectedTo = () => sink.lines().filter((l) => l['msg'] === 'connected to the server').map((l) => l['address'] as string);
    try {
      transport.start();
      await waitUntil('connected to the second address', () => connectedTo().includes(server.addresses.gateway), 15_000);
      await relay.listen(preferredPort!);
      await waitUntil('back on the first address', () => connectedTo().includes(`127.0.0.1:${preferredPort}`), 15_000);
      const events = makeEvents(5);
      await transport.send({ firstSeq: 1, lastSeq: 1, events: events.length, data: ndjson(events) }, new AbortController().signal);
      assert.equal((await server.searchAll({ agent: identity.agentId })).length, events.length);
      assert.ok(relay.connections > 0);
      // The move back is counted as such, and the first address is the one in use.
      const streams = transport.streamStats();
      assert.equal(streams.lost.preferred_return, 1, JSON.stringify(streams));
      assert.equal(streams.lost.server_ended, 0);
      assert.equal(streams.address, `127.0.0.1:${preferredPort}`);
      assert.equal(streams.addressIndex, 0);
    } finally {
      await transport.close();
      await relay.close();
      await server.stop();
    }
  });

  it('does not take for a preferred address one that answers TLS for another deployment (another CA)', { timeout: 60_000 }, async () => {
    const server = await TestServer.start();
    const other = await TestServer.start();
    const identity = await server.enrollAgent();
    const sink = new LogSink();
    const transport = new GrpcTransport({ identity, addresses: [other.addresses.gateway, server.addresses.gateway], agentVersion: AGENT_VERSION, log: sinkLogger(sink, 'info'), connectTimeoutMs: 3000, preferredCheckMs: 200 });
    try {
      transport.start();
      await waitUntil('connected to its own server', () => sink.lines().some((l) => l['msg'] === 'connected to the server'), 15_000);
      // Several looks at the first address: its TLS fails both ways, the stream stays.
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const messages = sink.lines().map((l) => l['msg']);
      assert.equal(messages.filter((m) => m === 'connected to the server').length, 1, sink.text);
      assert.ok(!messages.includes('a preferred gateway address answers again'), sink.text);
      assert.equal(other.server?.stats().gateway?.refusedConnections ?? 0, 0, 'the other server never saw a stream: its TLS refused the agent first');
    } finally {
      await transport.close();
      await other.stop();
      await server.stop();
    }
  });
});
