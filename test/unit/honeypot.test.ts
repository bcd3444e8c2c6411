/**
 * The honeypot mode's process side, in-process with an in-memory pipe and real sockets on
 * loopback: its configuration is checked, ports a service uses or the ephemeral range holds are
 * refused with a coded log, and every connection to a decoy is one honeypot_touch event (the
 * banner sent, the first bytes kept, silent and over-capacity connections reported too).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { PluginFrame } from '../../src/common/plugins/frames.js';
import { Honeypot, SOURCE_BURST, honeypotHealth, openFilesLimit, parseBoundPorts, sourceKey, type HoneypotOptions, parseEphemeralRange, parseListeningPorts, plainAddress, portRefusal, readPortUse, validHoneypotConfig } from '../../src/agent/honeypot/decoys.js';
import { waitFor } from '../helpers/agent.js';
import { decoyPort } from '../helpers/decoy-port.js';

interface Frame {
  type: number;
  value: Record<string, unknown>;
}

function honeypot(options: HoneypotOptions = {}): { h: Honeypot; frames: Frame[]; events: () => Record<string, unknown>[] } {
  const frames: Frame[] = [];
  const h = new Honeypot({ send: async (type, payload) => void frames.push({ type, value: type === PluginFrame.events ? { text: Buffer.from(payload).toString('utf8') } : (JSON.parse(Buffer.from(payload).toString('utf8')) as Record<string, unknown>) }) }, 'test', options);
  const events = () =>
    frames
      .filter((f) => f.type === PluginFrame.events)
      .flatMap((f) => String(f.value['text']).split('\n').filter(Boolean))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { h, frames, events };
}

const configure = (h: Honeypot, config: unknown, id = 1) => h.onFrame(PluginFrame.config, Buffer.from(JSON.stringify({ request_id: id, config })));

const connect = (port: number) =>
  new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });

const stoppers: (() => Promise<void>)[] = [];
after(async () => {
  for (const stop of stoppers) await stop();
});

describe('honeypot configuration and port choice', () => {
  it('refuses bad configurations and fills the defaults', () => {
    for (const bad of [null, [], { ports: 'x' }, { ports: [{ port: 0 }] }, { ports: [{ port: 70000 }] }, { ports: [{ port: 23 }, { port: 23 }] }, { ports: [{ port: 23, service: 'a b' }] }, { ports: [{ port: 23, banner: 'x'.repeat(513) }] }, { bind: 'localhost' }, { max_bytes: 7000 }, { idle_ms: 10 }, { max_connections: 0 }]) {
      assert.equal(typeof validHoneypotConfig(bad), 'string', JSON.stringify(bad));
    }
    assert.match(validHoneypotConfig({ ports: [{ port: 161, protocol: 'udp', banner: 'x' }] }) as string, /never answers/);
    assert.match(validHoneypotConfig({ ports: [{ port: 161, protocol: 'sctp' }] }) as string, /tcp or udp/);
    assert.equal(typeof validHoneypotConfig({ ports: [{ port: 161, protocol: 'udp' }, { port: 161 }] }), 'object', 'the same port in each protocol');
    assert.deepEqual(validHoneypotConfig({ ports: [{ port: 2323, service: 'telnet', banner: 'login: ' }, { port: 6380 }] }), {
      ports: [{ port: 2323, protocol: 'tcp', service: 'telnet', banner: 'login: ' }, { port: 6380, protocol: 'tcp', service: 'generic' }],
      bind: '::',
      max_bytes: 1024,
      idle_ms: 5000,
      max_connections: 256,
    });
  });

  it('reads listening ports and the ephemeral range, and refuses both', () => {
    const tcp = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1234 1',
      '   1: 0100007F:1F90 0100007F:D2A4 01 00000000:00000000 00:00000000 00000000     0        0 1235 1',
      'garbage',
    ].join('\n');
    assert.deepEqual([...parseListeningPorts(tcp)], [22], 'only LISTEN (0A) rows');
    const tcp6 = [
      '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4321 1',
    ].join('\n');
    assert.deepEqual([...parseListeningPorts(tcp6)], [8080]);
    const udp = [
      '   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops',
      '  123: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 555 2 0000000000000000 0',
    ].join('\n');
    assert.deepEqual([...parseBoundPorts(udp)], [68], 'any bound UDP socket');
    assert.match(portRefusal(68, { listening: new Set(), udp: new Set([68]) }, 'udp')!, /udp port 68 is in use/);
    assert.equal(portRefusal(68, { listening: new Set(), udp: new Set([68]) }, 'tcp'), undefined);
    assert.equal(openFilesLimit('Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n'), 1024);
    assert.equal(openFilesLimit('Max open files            unlimited            unlimited            files\n'), undefined);
    assert.deepEqual(parseEphemeralRange('32768\t60999\n'), [32768, 60999]);
    assert.equal(parseEphemeralRange('nonsense'), undefined);
    const use = { listening: new Set([22]), ephemeral: [32768, 60999] as const };
    assert.match(portRefusal(22, use)!, /in use by a service/);
    assert.match(portRefusal(40000, use)!, /ephemeral range 32768-60999/);
    assert.equal(portRefusal(2323, use), undefined);
    assert.equal(plainAddress('::ffff:10.0.0.7'), '10.0.0.7');
    assert.equal(plainAddress('2001:db8::1'), '2001:db8::1');
    // Allowances go by IPv4 address and by IPv6 /64.
    assert.equal(sourceKey('192.0.2.7'), '192.0.2.7');
    assert.equal(sourceKey('2001:db8:0:1::7'), '2001:db8:0:1::/64');
    assert.equal(sourceKey('2001:DB8:0:1:ffff::9'), '2001:db8:0:1::/64');
    assert.equal(sourceKey('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(sourceKey('::1'), '0:0:0:0::/64');
    assert.equal(sourceKey('fe80:0000:0000:0000:1:2:3:4'), 'fe80:0:0:0::/64');
  });
});

describe('honeypot decoys on loopback', () => {
  it('opens the decoys it may, refuses the others with a coded log, and reports each touch', async () => {
    const { h, frames, events } = honeypot();
    stoppers.push(() => h.stop());
    const port = await decoyPort(21_000);
    const busy = net.createServer();
    const busyPort = await decoyPort(port + 1);
    await new Promise<void>((resolve) => busy.listen(busyPort, '0.0.0.0', resolve));
    stoppers.push(() => new Promise((resolve) => busy.close(() => resolve())));
    const ephemeral = readPortUse().ephemeral ?? [32768, 60999];
    configure(h, { ports: [{ port, service: 'telnet', banner: 'login: ' }, { port: busyPort }, { port: ephemeral[0] }], max_bytes: 64 });
    const ack = await waitFor('the ACK', () => frames.find((f) => f.type === PluginFrame.ack));
    assert.equal(ack.value['ok'], true);
    assert.deepEqual(h.stats.listening, [`tcp/${port}`]);
    assert.deepEqual(h.stats.refused, { [`tcp/${busyPort}`]: 'in_use', [`tcp/${ephemeral[0]}`]: 'ephemeral' });
    const logs = frames.filter((f) => f.type === PluginFrame.log).map((f) => f.value);
    assert.equal(logs.length, 2);
    assert.ok(logs.every((l) => l['code'] === 'HADES_ERR_HONEYPOT_PORT'));
    // Said at once, without waiting for a STATS_REQUEST: one decoy of three listens.
    const stats = await waitFor('the STATS after the configuration', () => frames.find((f) => f.type === PluginFrame.stats));
    assert.deepEqual(stats.value['health'], { status: 'degraded', detail: `1 of 3 decoys listening; not listening: ${[`tcp/${busyPort} (in_use)`, `tcp/${ephemeral[0]} (ephemeral)`].sort().join(', ')}` });

    // A client that reads the greeting, sends a user name and leaves.
    const client = await connect(port);
    const greeting = await new Promise<string>((resolve) => client.once('data', (d: Buffer) => resolve(d.toString())));
    assert.equal(greeting, 'login: ');
    const clientPort = client.localPort;
    client.end('root\r\n');
    const [touch] = await waitFor('the touch', () => (events().length > 0 ? events() : undefined));
    assert.deepEqual(touch!['event'], { action: 'honeypot_touch' });
    assert.deepEqual(touch!['source'], { ip: '127.0.0.1', port: clientPort });
    assert.deepEqual(touch!['destination'], { ip: '127.0.0.1', port });
    assert.deepEqual(touch!['network'], { transport: 'tcp', type: 'ipv4', direction: 'ingress' });
    assert.deepEqual(touch!['hades'], { backend: 'honeypot', honeypot: { service: 'telnet', bytes: 6, payload: Buffer.from('root\r\n').toString('base64') } });

    // More than max_bytes: the decoy keeps the first 64 and closes.
    const big = await connect(port);
    big.on('error', () => undefined);
    big.write(Buffer.alloc(5000, 0x41));
    await waitFor('the second touch', () => events().length === 2);
    const second = events()[1]!['hades'] as { honeypot: { bytes: number; payload: string } };
    assert.equal(Buffer.from(second.honeypot.payload, 'base64').length, 64);
    assert.ok(second.honeypot.bytes >= 64);
    big.destroy();
  });

  it('says it is degraded, and why, when no decoy listens (and ok when every one does)', async () => {
    const { h, frames } = honeypot();
    stoppers.push(() => h.stop());
    const busy = net.createServer();
    const busyPort = await decoyPort(22_500);
    await new Promise<void>((resolve) => busy.listen(busyPort, '0.0.0.0', resolve));
    stoppers.push(() => new Promise((resolve) => busy.close(() => resolve())));
    // Before any configuration it says nothing of its health.
    h.onFrame(PluginFrame.statsRequest, new Uint8Array(0));
    const first = await waitFor('the STATS', () => frames.find((f) => f.type === PluginFrame.stats));
    assert.equal(first.value['health'], undefined);
    frames.length = 0;
    configure(h, { ports: [{ port: busyPort }] });
    const stats = await waitFor('the STATS after the configuration', () => frames.find((f) => f.type === PluginFrame.stats));
    assert.deepEqual(stats.value['listening'], []);
    assert.deepEqual(stats.value['health'], { status: 'degraded', detail: `0 of 1 decoy listening: the honeypot watches nothing; not listening: tcp/${busyPort} (in_use)` });
    // Asked again, it says the same.
    frames.length = 0;
    h.onFrame(PluginFrame.statsRequest, new Uint8Array(0));
    const again = await waitFor('the answer', () => frames.find((f) => f.type === PluginFrame.stats));
    assert.equal((again.value['health'] as { status: string }).status, 'degraded');
    // A configuration whose decoys all open is ok.
    frames.length = 0;
    const free = await decoyPort(busyPort + 1);
    configure(h, { ports: [{ port: free }] }, 2);
    const ok = await waitFor('the STATS after the second configuration', () => frames.find((f) => f.type === PluginFrame.stats));
    assert.deepEqual(ok.value['health'], { status: 'ok', detail: '1 of 1 decoy listening' });
  });

  it('names the decoys that do not listen in its health, a few of them, and counts the rest', () => {
    assert.deepEqual(honeypotHealth(0, { listening: [], refused: {} }), { status: 'degraded', detail: 'no decoy configured (plugins.honeypot.ports is empty): the honeypot watches nothing' });
    assert.deepEqual(honeypotHealth(2, { listening: ['tcp/2323', 'udp/1161'], refused: {} }), { status: 'ok', detail: '2 of 2 decoys listening' });
    assert.deepEqual(honeypotHealth(2, { listening: ['tcp/2323'], refused: { 'tcp/6380': 'failed: EBADF' } }), { status: 'degraded', detail: '1 of 2 decoys listening; not listening: tcp/6380 (failed: EBADF)' });
    const refused = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`tcp/${2000 + i}`, 'privilege_drop_failed']));
    const many = honeypotHealth(10, { listening: [], refused });
    assert.equal(many.status, 'degraded');
    assert.match(many.detail!, /^0 of 10 decoys listening: the honeypot watches nothing; not listening: tcp\/2000 \(privilege_drop_failed\), .*tcp\/2007 \(privilege_drop_failed\), and 2 more$/);
  });

  it('reports silent connections after idle_ms, and those over max_connections at once', async () => {
    const { h, frames, events } = honeypot();
    stoppers.push(() => h.stop());
    const port = await decoyPort(23_000);
    // idle_ms long enough for the extra connection to come while the silent one is still open, on a loaded machine too.
    configure(h, { ports: [{ port }], idle_ms: 1500, max_connections: 1 });
    await waitFor('the ACK', () => frames.find((f) => f.type === PluginFrame.ack));
    const opened = Date.now();
    const silent = await connect(port);
    silent.on('error', () => undefined);
    await waitFor('the first connection counted', () => h.stats.connections === 1);
    const extra = await connect(port);
    extra.on('error', () => undefined);
    await waitFor('the extra connection reported at once', () => events().length === 1, 2000);
    assert.equal(h.stats.over_capacity, 1);
    await waitFor('the silent connection closed and reported', () => events().length === 2, 5000);
    assert.ok(Date.now() - opened >= 1400, 'not before idle_ms');
    assert.deepEqual(
      events().map((e) => (e['hades'] as { honeypot: unknown }).honeypot),
      [
        { service: 'generic', bytes: 0 },
        { service: 'generic', bytes: 0 },
      ],
    );
    silent.destroy();
    extra.destroy();
  });

  it('counts a connection its client reset before the decoy took it (no address left to read), and still reports the touch', async () => {
    const { h, frames, events } = honeypot();
    stoppers.push(() => h.stop());
    const port = await decoyPort(23_500);
    configure(h, { ports: [{ port }] });
    await waitFor('the ACK', () => frames.find((f) => f.type === PluginFrame.ack));
    // spawnSync holds this event loop: the kernel completes the handshake, takes the bytes and
    // the reset (SO_LINGER 0) before the decoy accepts the connection.
    const script = `import socket, struct\ns = socket.create_connection(('127.0.0.1', ${port}))\ns.sendall(b'hello')\ns.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))\ns.close()\n`;
    const run = spawnSync('python3', ['-c', script], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    await waitFor('the touch reported', () => events().length === 1, 3000);
    const source = (events()[0] as { source?: { ip?: string } }).source;
    assert.equal(source?.ip, undefined, 'Linux no longer has the peer of a connection reset before accept');
    assert.equal(h.stats.source_unknown, 1);
    // What it sent before the reset is still read.
    assert.equal((events()[0] as { hades: { honeypot: { bytes: number } } }).hades.honeypot.bytes, 5);
  });

  it('closes every decoy at stop', async () => {
    const { h, frames } = honeypot();
    const port = await decoyPort(25_000);
    configure(h, { ports: [{ port }] });
    await waitFor('the ACK', () => frames.find((f) => f.type === PluginFrame.ack));
    await h.stop();
    await assert.rejects(connect(port), /ECONNREFUSED/);
  });

  it('reports the connections still open when it stops, before stop() resolves', async () => {
    const { h, frames, events } = honeypot();
    const port = await decoyPort(25_100);
    configure(h, { ports: [{ port }] });
    await waitFor('the ACK', () => frames.find((f) => f.type === PluginFrame.ack));
    const clients = await Promise.all([connect(port), connect(port), connect(port)]);
    for (const c of clients) c.on('error', () => undefined);
    await waitFor('three connections', () => h.stats.connections === 3);
    await h.stop();
    assert.equal(events().length, 3);
  });

  it('keeps the first bytes of many small writes in order', async () => {
    const { h, frames, events } = honeypot();
    stoppers.push(() => h.stop());
    const port = await decoyPort(25_200);
    configure(h, { ports: [{ port }], max_bytes: 50 });
    await waitFor('the ACK', () => frames.find((f) => f.type === PluginFrame.ack));
    const c = await connect(port);
    c.on('error', () => undefined);
    c.setNoDelay(true);
    for (let i = 0; i < 80; i++) {
      c.write(String.fromCharCode(65 + (i % 26)));
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    c.end();
    const [touch] = await waitFor('the touch', () => (events().length > 0 ? events() : undefined));
    const honeypotFields = (touch!['hades'] as { honeypot: { payload: string; bytes: number } }).honeypot;
    const expected = Array.from({ length: 50 }, (_, i) => String.fromCharCode(65 + (i % 26))).join('');
    assert.equal(Buffer.from(honeypotFields.payload, 'base64').toString(), expected);
  });

  it('folds a source\'s touches over its allowance into one event per source', async () => {
    const { h, frames, events } = honeypot({ now: () => 0 }); // no refill while the test runs
    const port = await decoyPort(25_300);
    configure(h, { ports: [{ port }] });
    await waitFor('the ACK', () => frames.find((f) => f.type === PluginFrame.ack));
    for (let i = 0; i < SOURCE_BURST + 5; i++) {
      const c = await connect(port);
      c.on('error', () => undefined);
      c.end('x');
      await waitFor('the touch counted', () => h.stats.events + h.stats.folded === i + 1, 5000);
    }
    assert.equal(events().length, SOURCE_BURST);
    assert.equal(h.stats.folded, 5);
    await h.stop(); // reports what is folded
    const last = events().at(-1)!;
    assert.deepEqual(last['source'], { ip: '127.0.0.1' });
    assert.deepEqual((last['hades'] as { honeypot: unknown }).honeypot, { service: 'generic', bytes: 5, folded: 5 });
  });

  it('folds touches over the overall rate, whatever their sources', async () => {
    const { h, frames, events } = honeypot({ now: () => 0, eventsPerSecond: 3 });
    const port = await decoyPort(25_400);
    configure(h, { ports: [{ port }] });
    await waitFor('the ACK', () => frames.find((f) => f.type === PluginFrame.ack));
    for (let i = 0; i < 5; i++) {
      const c = await connect(port);
      c.on('error', () => undefined);
      c.end();
      await waitFor('the touch counted', () => h.stats.events + h.stats.folded === i + 1, 5000);
    }
    assert.equal(events().length, 3);
    assert.equal(h.stats.folded, 2);
    await h.stop();
    assert.equal((events().at(-1)!['hades'] as { honeypot: { folded: number } }).honeypot.folded, 2);
  });

  it('reports each datagram to a UDP decoy, and never answers', async () => {
    const { h, frames, events } = honeypot();
    stoppers.push(() => h.stop());
    const port = await decoyPort(25_500);
    configure(h, { ports: [{ port, protocol: 'udp', service: 'snmp' }], max_bytes: 4 });
    await waitFor('the ACK', () => frames.find((f) => f.type === PluginFrame.ack));
    assert.deepEqual(h.stats.listening, [`udp/${port}`]);
    const client = dgram.createSocket('udp4');
    stoppers.push(() => new Promise((resolve) => client.close(() => resolve())));
    let answered = false;
    client.on('message', () => (answered = true));
    await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', () => resolve()));
    client.send(Buffer.from('public-community'), port, '127.0.0.1');
    const [touch] = await waitFor('the datagram', () => (events().length > 0 ? events() : undefined));
    assert.deepEqual(touch!['source'], { ip: '127.0.0.1', port: client.address().port });
    assert.deepEqual(touch!['network'], { transport: 'udp', type: 'ipv4', direction: 'ingress' });
    assert.deepEqual(touch!['hades'], { backend: 'honeypot', honeypot: { service: 'snmp', bytes: 16, payload: Buffer.from('publ').toString('base64') } });
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(answered, false);
    assert.equal(h.stats.datagrams, 1);
  });
});
