/**
 * The Ack deadline: a stream that stays up while the server stores nothing (its ingest held by a
 * database lock another process keeps, or the server frozen behind a relay that keeps the
 * connection open) is ended after `ackTimeoutMs`; the batch is sent again on a new stream, at
 * the next address when there is one, and the store holds each event once; that address is held
 * down for a while, so that the agent does not go back to a stuck server as soon as it answers.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { SpooledChannel } from '../../src/agent/pipeline/channels.js';
import { Spool } from '../../src/agent/spool.js';
import { GrpcTransport, type GrpcTransportOptions } from '../../src/agent/transport/grpc-transport.js';
import { AddressHolds } from '../../src/agent/transport/holds.js';
import { HadesError } from '../../src/common/errors.js';
import { projectRoot } from '../helpers/generated-docs.js';
import { AGENT_VERSION, cleanupTempDirs, LogSink, makeEvents, ndjson, sinkLogger, sleep, tempDir, TestServer, waitUntil } from '../helpers/server.js';

after(cleanupTempDirs);

/**
 * Another process that takes the database's write lock and keeps it `holdMs`: the server's
 * ingest waits on it (within its busy timeout), and so does its main thread when it records an
 * agent's coming or going; a lock held in this process would stop this process's loop too.
 */
async function holdDatabaseLock(dbFile: string, holdMs: number): Promise<ChildProcess> {
  const script = `import Database from 'better-sqlite3';
const db = new Database(process.argv[1]);
db.exec('BEGIN IMMEDIATE');
process.stdout.write('locked\\n');
setTimeout(() => { db.exec('ROLLBACK'); db.close(); }, Number(process.argv[2]));`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, dbFile, String(holdMs)], { cwd: projectRoot, stdio: ['ignore', 'pipe', 'inherit'] });
  const [chunk] = (await once(child.stdout, 'data')) as [Buffer];
  assert.equal(chunk.toString(), 'locked\n');
  return child;
}

const eventsOf = (data: Uint8Array): number => (data.length >= 4 ? new DataView(data.buffer, data.byteOffset, 4).getUint32(0, true) : 0);
const ackTimeouts = (sink: LogSink) => sink.lines().filter((l) => l['code'] === 'HADES_ERR_SERVER_ACK_TIMEOUT');

describe('the Ack deadline of the server output', () => {
  it('ends a stream whose server stores nothing, and delivers the spooled batch once when the server is back', { timeout: 60_000 }, async () => {
    const server = await TestServer.start();
    const sink = new LogSink();
    const identity = await server.enrollAgent();
    const transport = new GrpcTransport({ identity, addresses: identity.gateways, agentVersion: AGENT_VERSION, log: sinkLogger(sink, 'info'), connectTimeoutMs: 10_000, ackTimeoutMs: 1000 });
    const spool = Spool.open({ dir: tempDir('hades-ack-spool-'), maxBytes: 8 << 20, segmentBytes: 1 << 20, fsync: 'never', eventsOf });
    const channel = new SpooledChannel('server', spool, transport, { batchEvents: 1000, backoffMinMs: 100, backoffMaxMs: 200 });
    let locker: ChildProcess | undefined;
    try {
      transport.start();
      await waitUntil('connected', () => sink.lines().some((l) => l['msg'] === 'connected to the server'), 15_000);
      // Held 3 s: past the Ack deadline, within the server's busy timeout (5 s), so the batch
      // the agent gave up on is stored once the lock goes, and its copy must be a duplicate.
      locker = await holdDatabaseLock(path.join(server.dataDir, 'hades.db'), 3000);
      const events = makeEvents(10);
      const started = performance.now();
      for (const line of ndjson(events).toString().trimEnd().split('\n')) channel.write(line);
      await waitUntil('the Ack deadline passed', () => ackTimeouts(sink).length > 0, 10_000, 20);
      const waited = performance.now() - started;
      assert.ok(waited >= 1000, `the stream was ended after ${waited} ms, before the deadline`);
      assert.equal(ackTimeouts(sink)[0]?.['level'], 'warn', sink.text);
      assert.equal(channel.stats().up, false, 'the output reports the failure');
      assert.match(channel.stats().lastError ?? '', /no Ack for the batch within 1000 ms/);
      await waitUntil('delivered', () => channel.stats().out === events.length, 20_000);
      assert.equal(channel.stats().up, true);
      const stored = await server.searchAll({ agent: identity.agentId });
      assert.deepEqual(stored.map((e) => e['event'].id).sort(), events.map((e) => e['event'].id).sort(), 'each event once');
      assert.equal(server.server?.stats().gateway?.duplicates, events.length, 'the batch reached the server twice; its copy was dropped there');
      assert.ok(sink.lines().filter((l) => l['msg'] === 'connected to the server').length >= 2, 'a new stream carried the batch again');
      assert.equal(spool.stats().events, 0, 'the spool let the batch go only once it was acknowledged');
      // The output's stats carry the transport's streams: the timeout, and the batch sent again.
      const streams = channel.stats().stream;
      assert.ok(streams && streams.lost.ack_timeout >= 1 && streams.resent >= 1 && streams.opened >= 2, JSON.stringify(streams));
      assert.equal(streams.lost.connect_failed, 0);
    } finally {
      await channel.close(2000);
      await transport.close();
      if (locker && locker.exitCode === null) await once(locker, 'exit');
      await server.stop();
    }
  });

  it('moves on to the next gateway address when the first keeps the connection but never answers', { timeout: 60_000 }, async () => {
    const server = await TestServer.start();
    const gatewayPort = Number(server.addresses.gateway.split(':').pop());
    const relay = new FreezingRelay(gatewayPort);
    const relayPort = await relay.listen();
    const sink = new LogSink();
    const identity = await server.enrollAgent();
    const relayAddress = `127.0.0.1:${relayPort}`;
    const transport = new GrpcTransport({ identity, addresses: [relayAddress, server.addresses.gateway], agentVersion: AGENT_VERSION, log: sinkLogger(sink, 'info'), connectTimeoutMs: 10_000, ackTimeoutMs: 1000 });
    const connectedTo = () => sink.lines().filter((l) => l['msg'] === 'connected to the server').map((l) => l['address'] as string);
    const signal = new AbortController().signal;
    try {
      transport.start();
      await waitUntil('connected through the relay', () => connectedTo().includes(relayAddress), 15_000);
      // The server behind the first address freezes: its connection stays up, no byte comes back.
      relay.freeze();
      const events = makeEvents(8);
      const batch = { firstSeq: 1, lastSeq: 1, events: events.length, data: ndjson(events) };
      const started = performance.now();
      await assert.rejects(transport.send(batch, signal), (e: unknown) => e instanceof HadesError && e.code === 'HADES_ERR_SERVER_ACK_TIMEOUT');
      assert.ok(performance.now() - started >= 1000);
      assert.equal(ackTimeouts(sink)[0]?.['address'], relayAddress, sink.text);
      // Sent again (as the channel does, from its spool): the new stream goes to the second address at once.
      await transport.send(batch, signal);
      assert.deepEqual(connectedTo(), [relayAddress, server.addresses.gateway]);
      // Counted as it happened: two streams, the first ended for its missing Ack (once, not again
      // when its cancellation comes back as an error), the batch written twice, the second address in use.
      assert.deepEqual(transport.streamStats(), {
        opened: 2,
        lost: { connect_failed: 0, server_ended: 0, ack_timeout: 1, renewal_reconnect: 0, preferred_return: 0 },
        nacked: { temporary: 0, permanent: 0 },
        resent: 1,
        held: 1,
        address: server.addresses.gateway,
        addressIndex: 1,
      });
      const stored = await server.searchAll({ agent: identity.agentId });
      assert.deepEqual(stored.map((e) => e['event'].id).sort(), events.map((e) => e['event'].id).sort());
    } finally {
      await transport.close();
      await relay.close();
      await server.stop();
    }
  });
});

describe('going back to a gateway address whose ingest is stuck', () => {
  it('holds the address down after its Ack timeout: no return when it answers again, until the hold ends, also for a reload\'s new transport', { timeout: 60_000 }, async () => {
    const server = await TestServer.start();
    const gatewayPort = Number(server.addresses.gateway.split(':').pop());
    // Every connection through the relay passes its first second (TLS, hello, Welcome: the
    // address answers every check), then nothing: batches sent there get no Ack.
    const relay = new FreezingRelay(gatewayPort, 1000);
    const relayAddress = `127.0.0.1:${await relay.listen()}`;
    const sink = new LogSink();
    const identity = await server.enrollAgent();
    const holdMs = 4000;
    const options: GrpcTransportOptions = {
      identity,
      addresses: [relayAddress, server.addresses.gateway],
      agentVersion: AGENT_VERSION,
      log: sinkLogger(sink, 'info'),
      connectTimeoutMs: 10_000,
      ackTimeoutMs: 1000,
      // The preferred address is looked at every 100 to 200 ms.
      preferredCheckMs: 200,
      holds: new AddressHolds(),
      holdDownMs: { firstMs: holdMs, maxMs: 4 * holdMs },
    };
    let transport = new GrpcTransport(options);
    const connectedTo = () => sink.lines().filter((l) => l['msg'] === 'connected to the server').map((l) => l['address'] as string);
    const signal = new AbortController().signal;
    const events = makeEvents(4);
    const batch = { firstSeq: 1, lastSeq: 1, events: events.length, data: ndjson(events) };
    try {
      transport.start();
      await waitUntil('connected through the relay', () => connectedTo().includes(relayAddress), 15_000);
      await sleep(1200);
      await assert.rejects(transport.send(batch, signal), (e: unknown) => e instanceof HadesError && e.code === 'HADES_ERR_SERVER_ACK_TIMEOUT');
      const timedOutAt = performance.now();
      assert.equal(ackTimeouts(sink)[0]?.['held_down_s'], holdMs / 1000, sink.text);
      await transport.send(batch, signal);
      // Many looks at the first address meanwhile, each answered: the stream stays where batches are stored.
      await sleep(2000);
      assert.deepEqual(connectedTo(), [relayAddress, server.addresses.gateway], sink.text);
      const streams = transport.streamStats();
      assert.equal(streams.lost.preferred_return, 0, JSON.stringify(streams));
      assert.equal(streams.held, 1);
      assert.equal(streams.addressIndex, 1);
      // A reload: the new transport, with the agent's holds, starts at the second address.
      await transport.close();
      transport = new GrpcTransport(options);
      transport.start();
      await waitUntil('connected again', () => connectedTo().length === 3, 15_000);
      assert.equal(connectedTo()[2], server.addresses.gateway, sink.text);
      // Once the hold has ended, the first address is preferred again.
      await waitUntil('back on the first address', () => connectedTo()[3] === relayAddress, 15_000);
      assert.ok(performance.now() - timedOutAt >= holdMs, 'not before the hold ended');
      assert.equal(transport.streamStats().lost.preferred_return, 1);
      assert.equal(transport.streamStats().held, 0);
    } finally {
      await transport.close();
      await relay.close();
      await server.stop();
    }
  });
});

/**
 * A TCP relay to the gateway that can freeze: from then on it passes no byte either way and
 * answers no new connection, but closes nothing, as a frozen server behind a middlebox that
 * keeps connections up would look.
 */
class FreezingRelay {
  private readonly sockets = new Set<net.Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private frozen = false;
  private readonly server = net.createServer((client) => {
    this.track(client);
    if (this.frozen) return;
    const upstream = this.track(net.connect(this.target, '127.0.0.1'));
    client.pipe(upstream).pipe(client);
    let timer: NodeJS.Timeout | undefined;
    if (this.freezeAfterMs !== undefined) {
      timer = setTimeout(() => {
        this.timers.delete(timer!);
        for (const socket of [client, upstream]) {
          socket.unpipe();
          socket.pause();
        }
      }, this.freezeAfterMs);
      this.timers.add(timer);
    }
    const close = () => {
      clearTimeout(timer);
      this.timers.delete(timer!);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', close);
    upstream.on('close', close);
  });

  /** `freezeAfterMs`: each connection freezes on its own once it has been open that long. */
  constructor(
    private readonly target: number,
    private readonly freezeAfterMs?: number,
  ) {}

  private track(socket: net.Socket): net.Socket {
    this.sockets.add(socket);
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.sockets.delete(socket));
    return socket;
  }

  async listen(): Promise<number> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    return (this.server.address() as net.AddressInfo).port;
  }

  freeze(): void {
    this.frozen = true;
    for (const socket of this.sockets) {
      socket.unpipe();
      socket.pause();
    }
  }

  close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
