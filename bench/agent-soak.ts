/**
 * The agent daemon over time: idle, then a soak of mixed load.
 *
 *   node dist/bench/agent-soak.js [IDLE_SECONDS=300] [SOAK_MINUTES=30]
 *
 * Either phase can be skipped with 0: the idle phase needs a quiet machine (the agent sees every
 * process of the host), the soak does not.
 * Needs root. Runs `hades agent` with the kernel driver (all hooks) and the rotated file output.
 * 1. Idle: CPU of agent + driver averaged over IDLE_SECONDS, and their resident memory.
 * 2. Soak: SOAK_MINUTES of mixed load: every minute a 5 s exec storm (../shared/bench/storm.c,
 *    2 workers) and, all the time, ~200 UDP connects per second to changing ports. Resident
 *    memory of agent + driver is sampled every 10 s; growth is the last 5 minutes' average
 *    against the average of the 5 minutes after warm-up (the first 5 minutes of the soak).
 * Prints a Markdown summary and writes every sample to hades-bench-soak.json in the temp folder.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { childOf, rssKb, ticks } from './proc.js';
import { AGENT_NODE_FLAGS } from '../src/common/agent-node-flags.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const peersDir = process.env['HADES_PEERS_DIR'] ?? path.join(root, '..', 'shared', 'bench');
const idleSeconds = Number(process.argv[2] ?? 300);
const soakMinutes = Number(process.argv[3] ?? 30);
const work = mkdtempSync(path.join(tmpdir(), 'hades-soak-'));
const storm = path.join(work, 'storm');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Sample {
  readonly t: number;
  readonly agentKb: number;
  readonly driverKb: number;
  readonly agentTicks: number;
  readonly driverTicks: number;
  readonly phase: 'idle' | 'soak';
}

const CONNECTS = `
const dgram = require('node:dgram');
const sockets = [];
let port = 20000;
setInterval(() => {
  for (let i = 0; i < 10; i++) {
    const s = dgram.createSocket('udp4');
    s.connect(port, '127.0.0.1', () => s.close());
    port = port >= 20999 ? 20000 : port + 1;
  }
}, 50);
`;

async function main(): Promise<void> {
  execFileSync('cc', ['-O2', '-o', storm, path.join(peersDir, 'storm.c')]);
  const config = path.join(work, 'agent.yaml');
  writeFileSync(
    config,
    `agent: { data_dir: ${path.join(work, 'data')} }\noutputs:\n  file: { enabled: true, path: ${path.join(work, 'events.ndjson')}, max_mb: 64, max_files: 2 }\nmetrics: { listen: "127.0.0.1:0" }\n`,
  );
  // As deployed (the systemd unit's V8 flags).
  const agent = spawn(process.execPath, [...AGENT_NODE_FLAGS, path.join(root, 'bin/hades.js'), 'agent', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  agent.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  for (let i = 0; i < 100 && !stderr.includes('agent started'); i++) await sleep(100);
  const driver = childOf(agent.pid!, 'hades-driver');
  if (!driver) throw new Error(`no driver: ${stderr}`);
  const samples: Sample[] = [];
  const t0 = Date.now();
  const sample = (phase: Sample['phase']) => samples.push({ t: (Date.now() - t0) / 1000, agentKb: rssKb(agent.pid!), driverKb: rssKb(driver), agentTicks: ticks(agent.pid!), driverTicks: ticks(driver), phase });

  // Idle: let start-up settle for 10 s, then measure.
  await sleep(10_000);
  sample('idle');
  for (let s = 0; s < idleSeconds; s += 10) {
    await sleep(10_000);
    sample('idle');
  }
  const idle = samples.filter((s) => s.phase === 'idle');
  const first = idle[0]!;
  const last = idle.at(-1)!;
  const lines = [`Run: ${new Date().toISOString()}, kernel ${execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim()}`, '', '| measure | result |', '|---|---|'];
  if (idleSeconds > 0) {
    // Clock ticks are 10 ms: ticks per second is percent of one core.
    const idleCpu = (last.agentTicks + last.driverTicks - first.agentTicks - first.driverTicks) / (last.t - first.t);
    lines.push(
      `| idle CPU, agent + driver, over ${Math.round(last.t - first.t)} s | ${idleCpu.toFixed(2)}% of a core |`,
      `| idle resident memory, agent + driver | ${((last.agentKb + last.driverKb) / 1024).toFixed(1)} MB (agent ${(last.agentKb / 1024).toFixed(1)}, driver ${(last.driverKb / 1024).toFixed(1)}) |`,
    );
  }
  if (soakMinutes <= 0) {
    const closed = new Promise((resolve) => agent.on('close', resolve));
    agent.kill('SIGTERM');
    await closed;
    rmSync(work, { recursive: true, force: true });
    process.stdout.write(`${lines.join('\n')}\n`);
    return;
  }

  // Soak.
  const connects = spawn(process.execPath, ['-e', CONNECTS], { stdio: 'ignore' });
  const soakStart = Date.now();
  let bursts = 0;
  let execs = 0;
  while (Date.now() - soakStart < soakMinutes * 60_000) {
    const minuteStart = Date.now();
    const out = spawnSync(storm, ['5', '2'], { encoding: 'utf8' });
    execs += Number(/execs=(\d+)/.exec(out.stdout)?.[1] ?? 0);
    bursts++;
    while (Date.now() - minuteStart < 60_000 && Date.now() - soakStart < soakMinutes * 60_000) {
      sample('soak');
      await sleep(10_000);
    }
  }
  connects.kill('SIGKILL');
  sample('soak');
  const soak = samples.filter((s) => s.phase === 'soak');
  const window = (from: number, to: number) => {
    const inWindow = soak.filter((s) => s.t - soak[0]!.t >= from && s.t - soak[0]!.t < to);
    return inWindow.reduce((a, s) => a + s.agentKb + s.driverKb, 0) / Math.max(1, inWindow.length) / 1024;
  };
  const soakSeconds = soak.at(-1)!.t - soak[0]!.t;
  const warm = window(300, 600);
  const end = window(soakSeconds - 300, soakSeconds + 1);
  const peak = Math.max(...soak.map((s) => s.agentKb + s.driverKb)) / 1024;
  const soakCpu = (soak.at(-1)!.agentTicks + soak.at(-1)!.driverTicks - soak[0]!.agentTicks - soak[0]!.driverTicks) / soakSeconds;

  const closed = new Promise((resolve) => agent.on('close', resolve));
  agent.kill('SIGTERM');
  await closed;
  writeFileSync(path.join(tmpdir(), 'hades-bench-soak.json'), JSON.stringify({ idleSeconds, soakMinutes, bursts, execs, samples }, null, 1));
  rmSync(work, { recursive: true, force: true });

  lines.push(
    `| soak | ${(soakSeconds / 60).toFixed(0)} min, ${bursts} storm bursts (${execs} execs), ~200 connects/s throughout |`,
    `| soak CPU, agent + driver (average) | ${soakCpu.toFixed(1)}% of a core |`,
    `| resident memory after warm-up (minutes 5-10) | ${warm.toFixed(1)} MB |`,
    `| resident memory, last 5 minutes | ${end.toFixed(1)} MB |`,
    `| growth after warm-up | ${(((end - warm) / warm) * 100).toFixed(1)}% |`,
    `| peak | ${peak.toFixed(1)} MB |`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();
