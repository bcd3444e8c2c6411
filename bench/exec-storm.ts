/**
 * Exec storm, side by side in one run: untraced, auditd (execve rule), bpftrace, and
 * `hades events` with the eBPF and the cn_proc backends; then Hades idle for 60 s.
 *
 * Each Hades run starts `hades events`, runs a warm-up storm of WARM_SECONDS (a copy of the
 * storm named `warmup`, whose events the capture count leaves out) and reports its CPU as the
 * cold cost, then measures the storm proper on the warm agent. The first seconds of a storm
 * after start cost an agent much more than the next ones: V8 compiles the hot path then (about
 * 50 functions optimised in the background). A deployed agent runs for months, so the warm
 * figure is the one that compares with a C daemon; both are printed.
 *
 *   node dist/bench/exec-storm.js [SECONDS=5] [WORKERS=4] [IDLE_SECONDS=60] [WARM_SECONDS=5] [PAIRS=5]
 *
 * Needs root. The storm generator and the peers script come from the workplace's shared bench
 * folder (HADES_PEERS_DIR, default ../shared/bench next to the repository). Prints a Markdown
 * report for docs/perf.md.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, createReadStream, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { rssKb, startHades, stopHades, ticks } from './proc.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const peersDir = process.env['HADES_PEERS_DIR'] ?? path.resolve(root, '../shared/bench');
const [secs = 5, workers = 4, idleSecs = 60, warmSecs = 5, pairs = 5] = process.argv.slice(2).map(Number);
const work = mkdtempSync(path.join(tmpdir(), 'hades-bench-'));
const storm = path.join(work, 'storm');
/** The same program under another name: its children's ancestor is `warmup`, not `storm`. */
const warmup = path.join(work, 'warmup');

function runStorm(program = storm, seconds = secs): { execs: number; rate: number; line: string } {
  const line = execFileSync(program, [String(seconds), String(workers)], { encoding: 'utf8' }).trim();
  const execs = Number(/execs=(\d+)/.exec(line)?.[1] ?? 0);
  const rate = Number(/rate=([\d.]+)/.exec(line)?.[1] ?? 0);
  return { execs, rate, line };
}

interface Capture {
  /** exec events of the storm's children (found by ancestry, whether or not args were read). */
  stormEvents: number;
  /** ... whose args carry storm-arg. */
  stormExecs: number;
  /** ... with executable, args, cwd and ancestors. */
  complete: number;
  /** ... whose args are marked missing (cn_proc: the process exited before /proc was read). */
  missingArgs: number;
}

/** Counts storm execs in the NDJSON output, and those with executable, args, cwd and ancestors. */
async function analyse(file: string): Promise<Capture> {
  const result: Capture = { stormEvents: 0, stormExecs: 0, complete: 0, missingArgs: 0 };
  const lines = createInterface({ input: createReadStream(file) });
  for await (const line of lines) {
    if (!line.includes('"exec"') || !line.includes('storm(')) continue;
    const e = JSON.parse(line) as { event: { action: string }; process: { args?: string[]; executable?: string; working_directory?: string }; hades?: { ancestors?: { name?: string }[]; missing?: string[] } };
    if (e.event.action !== 'exec' || e.hades?.ancestors?.[0]?.name !== 'storm') continue;
    result.stormEvents++;
    if (e.process.args?.includes('storm-arg')) {
      result.stormExecs++;
      if (e.process.executable && e.process.working_directory && (e.hades.ancestors.length ?? 0) > 0) result.complete++;
    } else if (e.hades.missing?.includes('process.args')) {
      result.missingArgs++;
    }
  }
  return result;
}

interface HadesMeasure {
  storm: ReturnType<typeof runStorm>;
  capture: Capture;
  cpu: number;
  driverCpu: number;
  agentCpu: number;
  /** CPU (driver + agent, % of one core) during the warm-up storm right after start. */
  coldCpu: number;
  coldExecs: number;
  stats: string;
}

async function measureHades(backend: string, actions: string): Promise<HadesMeasure> {
  const out = path.join(work, `hades-${backend}.ndjson`);
  const { child, driver, stderr } = await startHades(['--backend', backend, '--action', actions, '--stats'], out);
  await new Promise((r) => setTimeout(r, 1000));
  const cpuOf = () => ticks(child.pid ?? 0) + ticks(driver);
  let t0 = Date.now();
  const c0 = cpuOf();
  const cold = warmSecs > 0 ? runStorm(warmup, warmSecs) : { execs: 0, rate: 0, line: '' };
  const coldCpu = warmSecs > 0 ? (cpuOf() - c0) / ((Date.now() - t0) / 1000) : 0;
  await new Promise((r) => setTimeout(r, 2000));
  const a0 = ticks(child.pid ?? 0);
  const d0 = ticks(driver);
  t0 = Date.now();
  const result = runStorm();
  const wall = (Date.now() - t0) / 1000;
  const a1 = ticks(child.pid ?? 0);
  const d1 = ticks(driver);
  await new Promise((r) => setTimeout(r, 2000));
  await stopHades(child);
  const agentCpu = (a1 - a0) / wall;
  const driverCpu = (d1 - d0) / wall;
  const statsLine = stderr().split('\n').find((l) => l.startsWith('{"stats"')) ?? '{}';
  return { storm: result, capture: await analyse(out), cpu: agentCpu + driverCpu, driverCpu, agentCpu, coldCpu, coldExecs: cold.execs, stats: statsLine };
}

async function measureIdle(): Promise<{ cpu: number; rssMb: number; agentRssMb: number; driverRssMb: number }> {
  const { child, driver } = await startHades([], '/dev/null');
  await new Promise((r) => setTimeout(r, 5000));
  const a0 = ticks(child.pid ?? 0) + ticks(driver);
  await new Promise((r) => setTimeout(r, idleSecs * 1000));
  const a1 = ticks(child.pid ?? 0) + ticks(driver);
  const agentRss = rssKb(child.pid ?? 0);
  const driverRss = rssKb(driver);
  await stopHades(child);
  return { cpu: (a1 - a0) / idleSecs, rssMb: (agentRss + driverRss) / 1024, agentRssMb: agentRss / 1024, driverRssMb: driverRss / 1024 };
}

function peers(): string[] {
  const script = path.join(peersDir, 'peers/exec-peers.sh');
  if (!existsSync(script)) throw new Error(`peers script not found at ${script}; set HADES_PEERS_DIR`);
  // bpftrace attaches classic tracepoints, which need tracefs (not mounted on these machines).
  if (!existsSync('/sys/kernel/tracing/events')) execFileSync('mount', ['-t', 'tracefs', 'nodev', '/sys/kernel/tracing']);
  return execFileSync('bash', [script, String(secs), String(workers)], { encoding: 'utf8' }).trim().split('\n');
}

const pct = (n: number) => `${n.toFixed(1)}%`;

/** Exec events the driver saw, from the final counters. */
function execSeen(stats: string): number {
  const parsed = JSON.parse(stats) as { stats?: { kernel?: Record<string, { sent?: number }> } };
  return parsed.stats?.kernel?.['sched_process_exec']?.sent ?? 0;
}

async function main(): Promise<void> {
  execFileSync('cc', ['-O2', '-o', storm, path.join(peersDir, 'storm.c')]);
  copyFileSync(storm, warmup);
  const peerLines = peers();
  // Each Hades run is compared with untraced runs around it: the machines are noisy. The
  // like-for-like run (exec events, eBPF) is repeated PAIRS times and summarised by its median.
  const runs: [string, number, Awaited<ReturnType<typeof measureHades>>][] = [];
  for (const [name, backend, actions, repeat] of [
    // Like for like with auditd's execve rule: exec events (fork and exit still keep the tree).
    ['hades events --action exec (ebpf)', 'ebpf', 'exec', pairs],
    ['hades events --action exec,fork,exit (ebpf)', 'ebpf', 'exec,fork,exit', 1],
    ['hades events --action exec --backend cnproc', 'cnproc', 'exec', 1],
  ] as const) {
    // Untraced storms before and after each Hades run, and the mean of the two as its baseline:
    // the machine's speed drifts by several per cent within minutes.
    let before = runStorm().rate;
    for (let i = 0; i < repeat; i++) {
      const measured = await measureHades(backend, actions);
      const after = runStorm().rate;
      runs.push([name, (before + after) / 2, measured]);
      before = after;
    }
  }
  const idle = await measureIdle();
  const cnproc = runs.find(([name]) => name.includes('cnproc'))?.[2];
  const execOnly = runs[0]?.[2];
  const out: string[] = [];
  out.push(`Run: ${new Date().toISOString()}, ${secs} s storms with ${workers} workers; kernel ${execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim()}.`, '');
  out.push('Peers (exec-peers.sh from the shared bench folder, same run; CPU in % of one core):', '', '```', ...peerLines, '```', '');
  // CPU per exec against auditd + kauditd's, from the peers' line of the same run.
  const audit = peerLines.find((l) => l.startsWith('auditd:')) ?? '';
  const auditExecs = Number(/execs=(\d+)/.exec(audit)?.[1] ?? 0);
  const auditCpu = Number(/ cpu=([\d.]+)%/.exec(audit)?.[1] ?? 0) + Number(/kauditd_cpu=([\d.]+)%/.exec(audit)?.[1] ?? 0);
  const auditUsPerExec = auditExecs > 0 ? (auditCpu / 100) * secs * 1e6 / auditExecs : 0;
  const usPerExec = (cpu: number, execs: number, seconds: number) => (execs > 0 ? (cpu / 100) * seconds * 1e6 / execs : 0);
  out.push(`auditd + kauditd: ${auditUsPerExec.toFixed(1)} µs of CPU per exec in this run.`, '');
  out.push('| run | untraced execs/s (mean of the runs before and after) | execs/s (warm agent) | vs untraced | exec events from the driver since start (all processes, warm-up included) | storm execs captured with storm-arg | with executable, args, cwd and ancestors | CPU, warm (driver + agent) | µs per exec, warm (vs auditd) | CPU, first storm after start | µs per exec, first storm (vs auditd) |', '|---|---|---|---|---|---|---|---|---|---|---|');
  for (const [name, base, r] of runs) {
    const warmUs = usPerExec(r.cpu, r.storm.execs, secs);
    const coldUs = usPerExec(r.coldCpu, r.coldExecs, warmSecs);
    const ratio = (us: number) => (auditUsPerExec > 0 ? ` (${(us / auditUsPerExec).toFixed(2)})` : '');
    out.push(
      `| ${name} | ${base.toFixed(0)} | ${r.storm.rate.toFixed(0)} | ${pct((r.storm.rate / base - 1) * 100)} | ${execSeen(r.stats)} | ${r.capture.stormExecs} / ${r.storm.execs} (${((r.capture.stormExecs / r.storm.execs) * 100).toFixed(2)}%) | ${r.capture.complete} (${((r.capture.complete / r.storm.execs) * 100).toFixed(2)}%) | ${pct(r.cpu)} (${pct(r.driverCpu)} + ${pct(r.agentCpu)}) | ${warmUs.toFixed(1)}${ratio(warmUs)} | ${pct(r.coldCpu)} | ${coldUs.toFixed(1)}${ratio(coldUs)} |`,
    );
  }
  const likeForLike = runs.filter(([name]) => name === 'hades events --action exec (ebpf)');
  const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
  const slowdowns = likeForLike.map(([, base, r]) => (r.storm.rate / base - 1) * 100);
  const perExec = likeForLike.map(([, , r]) => usPerExec(r.cpu, r.storm.execs, secs));
  out.push(
    '',
    `hades events --action exec (ebpf), ${likeForLike.length} pairs: storm slowed by ${slowdowns.map((v) => pct(v)).join(', ')} (median ${pct(median([...slowdowns]))}); ` +
      `warm agent ${perExec.map((v) => v.toFixed(1)).join(', ')} µs per exec (median ${median([...perExec]).toFixed(1)}, ${auditUsPerExec > 0 ? (median([...perExec]) / auditUsPerExec).toFixed(2) : '?'} of auditd + kauditd).`,
  );
  out.push('', `cn_proc: ${cnproc?.capture.stormEvents ?? 0} exec events of storm processes arrived; ${cnproc?.capture.stormExecs ?? 0} with their arguments, ${cnproc?.capture.missingArgs ?? 0} with the arguments marked missing in hades.missing (the process had exited before /proc could be read).`);
  out.push('', `Idle over ${idleSecs} s (all hooks): CPU ${pct(idle.cpu)} of one core (driver + agent); resident memory ${idle.rssMb.toFixed(1)} MB (agent ${idle.agentRssMb.toFixed(1)} MB + driver ${idle.driverRssMb.toFixed(1)} MB).`);
  out.push('', 'Final counters of the exec-only eBPF run:', '', '```json', execOnly?.stats ?? '', '```');
  process.stdout.write(`${out.join('\n')}\n`);
}

try {
  await main();
} finally {
  rmSync(work, { recursive: true, force: true });
}
