/**
 * The honeypot mode (the built-in plugin `honeypot`) idle and under a connection flood: a real
 * plugin process, started as the agent starts it (its Node flags), with one TCP decoy on
 * loopback.
 *
 *   node dist/bench/honeypot.js [CONNECTIONS=20000] [CONCURRENCY=64] [IDLE_SECONDS=30]
 *
 * First the idle plugin (nobody connects) for IDLE_SECONDS: CPU and resident memory. Then
 * CONNECTIONS connections from CONCURRENCY clients at a time, each sending 32 bytes and closing,
 * as a scanner or a worm would. Reported: connections per second, the plugin's CPU per
 * connection, resident memory at the peak, and how the touches were reported: one event each
 * while within the allowances, the rest folded into one event per source (all come from
 * 127.0.0.1 here, so nearly all are folded), and every touch is accounted for.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { FrameReader, encodeFrame } from '../src/common/codec/frames.js';
import { PluginFrame } from '../src/common/plugins/frames.js';
import { honeypotMain } from '../src/agent/plugins/honeypot-plugin.js';
import { LOGS_NODE_FLAGS } from '../src/agent/plugins/logs-plugin.js';
import { decoyPort } from '../test/helpers/decoy-port.js';
import { rssKb, ticks } from './proc.js';

const [connections = 20_000, concurrency = 64, idleSeconds = 30] = process.argv.slice(2).map(Number);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One client: connects, sends 32 bytes, closes; resolves when the decoy closed too. */
const touch = (port: number) =>
  new Promise<void>((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.end(Buffer.alloc(32, 0x41)));
    s.on('error', () => resolve());
    s.on('close', () => resolve());
    s.resume();
  });

async function main(): Promise<void> {
  const port = await decoyPort(24_000);
  const child = spawn(process.execPath, [...LOGS_NODE_FLAGS, honeypotMain(), 'bench'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const pid = child.pid ?? 0;
  let events = 0;
  let folded = 0;
  let foldedEvents = 0;
  let stats: Record<string, unknown> | undefined;
  const reader = new FrameReader();
  child.stdout.on('data', (chunk: Buffer) => {
    for (const frame of reader.push(chunk)) {
      if (frame.type === PluginFrame.stats) stats = JSON.parse(Buffer.from(frame.payload).toString('utf8')) as Record<string, unknown>;
      if (frame.type !== PluginFrame.events) continue;
      for (const line of Buffer.from(frame.payload).toString('utf8').split('\n')) {
        if (line === '') continue;
        events++;
        const n = (JSON.parse(line) as { hades: { honeypot: { folded?: number } } }).hades.honeypot.folded;
        if (n !== undefined) {
          folded += n;
          foldedEvents++;
        }
      }
    }
  });
  child.stdin.write(encodeFrame(PluginFrame.config, Buffer.from(JSON.stringify({ request_id: 1, config: { ports: [{ port, service: 'telnet' }], max_connections: 256 } }))));
  await sleep(3000);
  const i0 = ticks(pid);
  await sleep(idleSeconds * 1000);
  const idleCpu = (ticks(pid) - i0) / idleSeconds;
  const idleRss = rssKb(pid) / 1024;

  const c0 = ticks(pid);
  const t0 = performance.now();
  let started = 0;
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, rssKb(pid))), 50);
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (started < connections) {
        started++;
        await touch(port);
      }
    }),
  );
  const wall = (performance.now() - t0) / 1000;
  const cpuS = (ticks(pid) - c0) / 100;
  clearInterval(sampler);
  peak = Math.max(peak, rssKb(pid));
  child.stdin.write(encodeFrame(PluginFrame.statsRequest, new Uint8Array()));
  await sleep(500);
  const counted = stats ?? {};
  child.stdin.end(); // the plugin reports what is folded, then exits
  await new Promise((resolve) => child.once('exit', resolve));
  const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
  const accounted = events - foldedEvents + folded + Number(counted['dropped'] ?? 0);
  console.log(`Run: ${new Date().toISOString()}; ${fmt(connections)} connections to one decoy from ${concurrency} clients at a time on loopback, 32 bytes each.`);
  console.log('');
  console.log('| idle CPU (% of a core) | idle RSS | flood: connections/s | CPU per connection | RSS peak | events: one by one + folded (touches in them) | touches accounted for |');
  console.log('|---|---|---|---|---|---|---|');
  console.log(
    `| ${fmt(idleCpu, 2)}% over ${idleSeconds} s | ${fmt(idleRss, 1)} MB | ${fmt(connections / wall)} | ${fmt((cpuS * 1e6) / connections, 1)} µs | ${fmt(peak / 1024, 1)} MB | ${fmt(events - foldedEvents)} + ${fmt(foldedEvents)} (${fmt(folded)}) | ${fmt(accounted)} of ${fmt(Number(counted['connections'] ?? 0))} |`,
  );
}

await main();
