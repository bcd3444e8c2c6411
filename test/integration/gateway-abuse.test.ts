// hades-test: shares the machine
/**
 * The agent gateway against an agent that misbehaves on purpose (a host taken over keeps its
 * certificate): one that stops reading what the server sends, so that the server's writes back
 * up, and one that sends batches faster than the server stores them.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import os from 'node:os';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { Gateway, TLS_HANDSHAKE_TIMEOUT_MS, type IngestResult, type PreparedBatch } from '../../src/server/gateway.js';
import { Pki } from '../../src/server/pki.js';
import { gatewayService, type AgentMessage, type ServerMessage } from '../../src/runtime/gateway-proto.js';
import { cleanupTempDirs, identityCredentials, makeCsr, makeEvents, ndjson, sinkLogger, sleep, tempDir, TestServer, waitUntil, within } from '../helpers/server.js';

type Call = grpc.ClientDuplexStream<AgentMessage, ServerMessage>;

function connect(address: string, credentials: grpc.ChannelCredentials, options: grpc.ChannelOptions = {}): { client: grpc.Client; call: Call; ended: Promise<grpc.ServiceError> } {
  const Client = gatewayService();
  const client = new Client(address, credentials, options);
  const call = (client as unknown as { Connect(): Call }).Connect();
  const ended = new Promise<grpc.ServiceError>((resolve) => call.on('error', resolve));
  call.on('data', () => undefined);
  return { client, call, ended };
}

const hello: AgentMessage = { hello: { agent_version: 't', hostname: 'misbehaving', addresses: [], os: 'Linux', kernel: 'k', config_version: 0 } };

/**
 * A TCP relay between an agent and the gateway (TLS goes through it untouched) that can stop
 * passing what the server sends, as an agent that no longer reads its socket does.
 */
async function relay(port: number, localAddress = '127.0.0.1'): Promise<{ address: string; deafen(): void; hear(): void; close(): void }> {
  const upstreams: net.Socket[] = [];
  const sockets: net.Socket[] = [];
  const server = net.createServer((down) => {
    // From another loopback address, the server sees a second host.
    const up = net.connect({ port, host: '127.0.0.1', localAddress });
    upstreams.push(up);
    sockets.push(up, down);
    down.pipe(up);
    up.pipe(down);
    down.on('error', () => undefined);
    up.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    deafen: () => {
      for (const up of upstreams) {
        up.unpipe();
        up.pause();
      }
    },
    hear: () => {
      for (const [i, up] of upstreams.entries()) {
        up.pipe(sockets[2 * i + 1]!);
        up.resume();
      }
    },
    close: () => {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

describe('an agent revoked while its stream is open', () => {
  let server: TestServer;
  before(async () => {
    server = await TestServer.start();
  });
  after(async () => {
    await server?.stop();
  });

  it('has nothing more stored, even when it reads nothing the server sends (its writes backed up)', { timeout: 60_000 }, async () => {
    const identity = await server.enrollAgent();
    const gatewayPort = Number(server.addresses.gateway.split(':').pop());
    const tcp = await relay(gatewayPort);
    const { client, call, ended } = connect(tcp.address, identityCredentials(identity), { 'grpc.ssl_target_name_override': 'localhost' });
    try {
      call.write(hello);
      await waitUntil('the agent online', async () => ((await server.ok('GET', `/api/v1/agents/${identity.agentId}`)) as { online: boolean }).online || undefined, 10_000, 50);
      // From now on the agent reads nothing: the Nacks of its empty messages back up in the server.
      tcp.deafen();
      const nacks = server.server!.stats().gateway!.nacks;
      for (let i = 0; i < 5000; i++) call.write({});
      await waitUntil('the server answered them', () => server.server!.stats().gateway!.nacks >= nacks + 5000 || undefined, 30_000, 50);
      await server.ok('POST', `/api/v1/agents/${identity.agentId}/revoke`);
      call.write({ batch: { first_seq: 1, last_seq: 1, events: 3, ndjson: ndjson(makeEvents(3)) } });
      await sleep(1500);
      assert.equal((await server.searchAll({ agent: identity.agentId })).length, 0, 'nothing of a revoked agent is stored');
      // The status waits behind thousands of unread messages: the server does not wait for the
      // agent to read them, it resets the call (what the agent reads from then on ends with it).
      await sleep(3000);
      tcp.hear();
      const end = await within(ended, 10_000);
      assert.ok(end, 'the call ends');
      assert.equal(end.code, grpc.status.CANCELLED, `the server reset the call by itself, not ${end.code}: ${end.details}`);
    } finally {
      call.cancel();
      client.close();
      tcp.close();
    }
  });
});

describe('connections the gateway must not hold: handshakes never begun, one identity on two hosts', () => {
  let server: TestServer;
  before(async () => {
    server = await TestServer.start();
  });
  after(async () => {
    await server?.stop();
  });

  it('closes, as the API does, connections that never begin their TLS handshake after the handshake timeout, not after minutes', { timeout: 60_000 }, async () => {
    const portOf = (address: string) => Number(new URL(address.includes('://') ? address : `tls://${address}`).port);
    const idle = (port: number) =>
      new Promise<number>((resolve, reject) => {
        const opened = Date.now();
        const socket = net.connect(port, '127.0.0.1');
        socket.on('error', reject);
        socket.on('close', () => resolve(Date.now() - opened));
      });
    const [gateway, api] = await Promise.all([idle(portOf(server.addresses.gateway)), idle(portOf(server.addresses.api))]);
    for (const [name, ms] of [['gateway', gateway], ['api', api]] as const) {
      assert.ok(ms >= TLS_HANDSHAKE_TIMEOUT_MS - 1000 && ms < TLS_HANDSHAKE_TIMEOUT_MS + 10_000, `${name} closed the idle connection after ${ms} ms`);
    }
  });

  it('says one agent identity on two hosts (a cloned image) when its streams keep replacing each other from two addresses, not when one host reconnects', { timeout: 60_000 }, async () => {
    const identity = await server.enrollAgent();
    const gatewayPort = Number(server.addresses.gateway.split(':').pop());
    const opened: ReturnType<typeof connect>[] = [];
    const relays = [await relay(gatewayPort, '127.0.0.1'), await relay(gatewayPort, '127.0.0.2')];
    const streams = async (count: number, through: (i: number) => string) => {
      for (let i = 0; i < count; i++) {
        const stream = connect(through(i), identityCredentials(identity), { 'grpc.ssl_target_name_override': 'localhost' });
        opened.push(stream);
        stream.call.write(hello);
        await waitUntil('the stream greeted', () => server.server!.stats().gateway!.connected >= 1 || undefined, 10_000, 20);
        await sleep(150);
      }
    };
    try {
      // One host reconnecting again and again, from one address: a flapping link, not a clone.
      await streams(6, () => relays[0]!.address);
      await sleep(300);
      assert.equal(server.log.lines().filter((l) => l['code'] === 'HADES_ERR_AGENT_DUPLICATE').length, 0, 'one address is no duplicate');
      // Each new stream of the identity ends the one before, as two hosts reconnecting in turn do.
      await streams(6, (i) => relays[i % 2]!.address);
      const said = await waitUntil('the duplicate said', () => server.log.lines().find((l) => l['code'] === 'HADES_ERR_AGENT_DUPLICATE'), 10_000, 50);
      assert.equal(said['agent'], identity.agentId);
      assert.ok(Number(said['replaced']) >= 5, String(said['replaced']));
      assert.match(String(said['peers']), /127\.0\.0\.1/);
      assert.match(String(said['peers']), /127\.0\.0\.2/);
      assert.equal(server.log.lines().filter((l) => l['code'] === 'HADES_ERR_AGENT_DUPLICATE').length, 1, 'said once');
    } finally {
      for (const { call, client } of opened) {
        call.cancel();
        client.close();
      }
      for (const r of relays) r.close();
    }
  });
});

describe('enrollment of a host with many network addresses', () => {
  let server: TestServer;
  before(async () => {
    server = await TestServer.start();
  });
  after(async () => {
    await server?.stop();
  });

  it('enrolls a host with more addresses than the server takes (a container host: a veth per pod), with its global ones', async () => {
    const nic = (address: string, family: 'IPv4' | 'IPv6', scopeid = 0): os.NetworkInterfaceInfo =>
      (family === 'IPv4'
        ? { address, family, netmask: '255.255.255.0', mac: '02:00:00:00:00:01', internal: false, cidr: `${address}/24` }
        : { address, family, netmask: 'ffff:ffff:ffff:ffff::', mac: '02:00:00:00:00:01', internal: false, cidr: `${address}/64`, scopeid });
    const interfaces: NodeJS.Dict<os.NetworkInterfaceInfo[]> = { lo: [{ address: '127.0.0.1', family: 'IPv4', netmask: '255.0.0.0', mac: '00:00:00:00:00:00', internal: true, cidr: '127.0.0.1/8' }] };
    for (let i = 1; i <= 100; i++) interfaces[`veth${i}`] = [nic(`fe80::${i.toString(16)}`, 'IPv6', i + 10)];
    interfaces['eth0'] = [nic('192.0.2.10', 'IPv4'), nic('2001:db8::10', 'IPv6')];
    const real = os.networkInterfaces;
    os.networkInterfaces = () => interfaces;
    let agentId: string;
    try {
      agentId = (await server.enrollAgent()).agentId;
    } finally {
      os.networkInterfaces = real;
    }
    const agent = (await server.ok('GET', `/api/v1/agents/${agentId}`)) as { addresses: string[] };
    assert.ok(agent.addresses.length <= 64, `${agent.addresses.length} addresses`);
    assert.ok(agent.addresses.includes('192.0.2.10') && agent.addresses.includes('2001:db8::10'), 'the addresses the CMDB matches hosts by are kept');
  });
});

describe('an agent that sends faster than the server stores', () => {
  let gateway: Gateway<PreparedBatch, IngestResult>;
  let credentials: grpc.ChannelCredentials;
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  before(async () => {
    const pki = await Pki.open(tempDir('hades-gw-pki-'), { hostnames: [], ips: [] });
    const { csrPem, keyPem } = await makeCsr();
    const issued = await pki.signAgentCsr(csrPem, 'ag_00000000000000aa');
    credentials = identityCredentials({ caPem: pki.caPem, keyPem, certPem: issued.certPem });
    gateway = new Gateway({
      caPem: pki.caPem,
      certPem: pki.serverCertPem,
      keyPem: pki.serverKeyPem,
      serverVersion: 'test',
      log: sinkLogger(),
      hooks: {
        authorize: () => ({ agentId: 'ag_00000000000000aa' }),
        // The store is slow: nothing is checked until the test lets it.
        prepare: async () => {
          await gate;
          return { rejected: 0 };
        },
        store: () => ({ stored: 1, duplicates: 0 }),
      },
    });
    await gateway.listen('127.0.0.1:0');
  });
  after(async () => {
    release();
    await gateway?.close();
    cleanupTempDirs();
  });

  it('is read no further ahead than a few messages: the rest waits at the agent (HTTP/2 flow control)', { timeout: 60_000 }, async () => {
    // No compression, so that the bytes on the wire are what the server holds once decoded.
    const { client, call } = connect(`127.0.0.1:${gateway.port}`, credentials, { 'grpc.default_compression_algorithm': 0 });
    try {
      call.write(hello);
      const batch = Buffer.alloc(1024 * 1024, 0x0a);
      let written = 0;
      for (let i = 1; i <= 64; i++) call.write({ batch: { first_seq: i, last_seq: i, events: 1, ndjson: batch } }, () => written++);
      await sleep(3000);
      // Unbounded, the server would take all 64 MiB into its memory while the first batch waits.
      assert.ok(written <= 24, `the server read ${written} of 64 batches of 1 MiB while it stored none`);
      // Once the store goes on, everything is taken, in order.
      release();
      await waitUntil('every batch written', () => written === 64 || undefined, 30_000, 50);
      await waitUntil('every batch handled', () => gateway.stats.batches === 64 || undefined, 30_000, 50);
    } finally {
      call.cancel();
      client.close();
    }
  });
});
