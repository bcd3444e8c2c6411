/**
 * Connect storm against `hades events`: CPU and memory of driver + agent, events seen by the
 * kernel vs reported vs aggregated/dropped, and how fast the agent is idle again.
 *
 *   node dist/bench/connect-storm.js [SECONDS=5] [WORKERS=4]
 *
 * Needs root. The generator (connstorm.c) comes from the workplace's shared bench folder
 * (HADES_PEERS_DIR, default ../shared/bench). Two runs: the default configuration (connects
 * deduplicated in the kernel per process and destination, 1 s), and deduplication turned off,
 * where the agent's CPU governor has to impose it. Prints a Markdown report for docs/perf.md.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { rssKb, startHades, stopHades, ticks } from './proc.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const peersDir = process.env['HADES_PEERS_DIR'] ?? path.resolve(root, '../shared/bench');
const [secs = 5, workers = 4] = process.argv.slice(2).map(Number);
const work = mkdtempSync(path.join(tmpdir(), 'hades-connbench-'));
const connstorm = path.join(work, 'connstorm');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rssMb = (pid: number): number => rssKb(pid) / 1024;

interface Result {
  rate: number;
  ops: number;
  cpuStorm: number;
  cpuAfter: number[];
  rssPeak: number;
  rssAfter: number;
  seen: number;
  sent: number;
  suppressed: number;
  dropped: number;
  reported: number;
  counted: number;
  governorLevel: number;
}

async function run(label: string, config: string): Promise<Result> {
  const cfg = path.join(work, `${label}.yaml`);
  writeFileSync(cfg, config);
  const out = path.join(work, `${label}.ndjson`);
  const { child, driver, stderr: stderrOf } = await startHades(['--config', cfg, '--stats'], out);
  const agent = child.pid ?? 0;
  await sleep(2000);
  const both = () => ticks(agent) + ticks(driver);
  const t0 = both();
  const started = Date.now();
  let rssPeak = 0;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rssMb(agent) + rssMb(driver))), 250);
  const line = await new Promise<string>((resolve) => {
    const storm = spawn(connstorm, [String(secs), String(workers)]);
    let text = '';
    storm.stdout.setEncoding('utf8').on('data', (d: string) => (text += d));
    storm.on('close', () => resolve(text.trim()));
  });
  const cpuStorm = (both() - t0) / ((Date.now() - started) / 1000);
  clearInterval(sampler);
  const cpuAfter: number[] = [];
  for (let i = 0; i < 8; i++) {
    const a = both();
    await sleep(1000);
    cpuAfter.push(both() - a);
  }
  const rssAfter = rssMb(agent) + rssMb(driver);
  await stopHades(child);
  const stats = JSON.parse(stderrOf().split('\n').find((l) => l.startsWith('{"stats"')) ?? '{"stats":{}}') as {
    stats: { kernel?: Record<string, Record<string, number>>; agent?: { cpu?: { level: number } } };
  };
  const c = stats.stats.kernel?.['connect'] ?? {};
  let reported = 0;
  let counted = 0;
  for await (const l of createInterface({ input: createReadStream(out) })) {
    if (!l.includes('"connect"') || !l.includes('9999')) continue;
    const e = JSON.parse(l) as { event: { action: string; count?: number }; destination?: { port?: number } };
    if (e.event.action !== 'connect' || e.destination?.port !== 9999) continue;
    reported++;
    counted += e.event.count ?? 1;
  }
  return {
    rate: Number(/rate=(\d+)/.exec(line)?.[1] ?? 0),
    ops: Number(/execs=(\d+)/.exec(line)?.[1] ?? 0),
    cpuStorm,
    cpuAfter,
    rssPeak,
    rssAfter,
    seen: c['seen'] ?? 0,
    sent: c['sent'] ?? 0,
    suppressed: c['suppressed'] ?? 0,
    dropped: (c['dropped_ringbuf_full'] ?? 0) + (c['dropped_state_full'] ?? 0),
    reported,
    counted,
    governorLevel: stats.stats.agent?.cpu?.level ?? 0,
  };
}

function untraced(): number {
  const line = execFileSync(connstorm, [String(secs), String(workers)], { encoding: 'utf8' });
  return Number(/rate=(\d+)/.exec(line)?.[1] ?? 0);
}

async function main(): Promise<void> {
  execFileSync('cc', ['-O2', '-o', connstorm, path.join(peersDir, 'connstorm.c')]);
  const base = untraced();
  const dedup = await run('dedup', '');
  const flood = await run('flood', 'driver:\n  connect_dedup_ms: 0\n');
  const out: string[] = [`Run: ${new Date().toISOString()}, connstorm ${secs} s with ${workers} workers (UDP connect() to 127.0.0.1:9999); untraced ${base} connects/s.`, ''];
  out.push('| configuration | connects/s | kernel saw | sent to agent | aggregated in kernel | dropped | connect events reported | sum of event.count | CPU during storm (driver + agent) | peak RSS | CPU each second after (ticks of 10 ms) | RSS after |');
  out.push('|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const [name, r] of [['default (dedup 1 s)', dedup], ['connect_dedup_ms: 0', flood]] as const) {
    out.push(
      `| ${name} | ${r.rate} | ${r.seen} | ${r.sent} | ${r.suppressed} | ${r.dropped} | ${r.reported} | ${r.counted} | ${r.cpuStorm.toFixed(1)}% | ${r.rssPeak.toFixed(0)} MB | ${r.cpuAfter.join(', ')} | ${r.rssAfter.toFixed(0)} MB |`,
    );
  }
  out.push('', `CPU governor level at the end: default ${dedup.governorLevel}, dedup off ${flood.governorLevel}.`);
  process.stdout.write(`${out.join('\n')}\n`);
}

try {
  await main();
} finally {
  rmSync(work, { recursive: true, force: true });
}
