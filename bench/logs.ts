/**
 * The log collector (the built-in plugin `logs`) idle and under a flood: a real collector process,
 * started as the agent starts it (its Node flags), follows a syslog file in a temporary folder.
 *
 *   node dist/bench/logs.js [LINES=200000] [IDLE_SECONDS=30]
 *
 * First the idle collector (nothing written) for IDLE_SECONDS: CPU and resident memory. Then
 * LINES lines are appended at once, as a password-guessing flood looks in auth.log: 70% sshd
 * `Failed password`, 10% `Invalid user`, 10% sudo commands, 10% lines of other programs (PAM
 * sessions, cron), in rsyslog's default format. Reported: the time until every event arrived,
 * lines per second, CPU per line, and resident memory at the end.
 *
 * Peer, in the same run when installed: fail2ban 1.0 (`apt-get install fail2ban`), the usual
 * reader of auth.log for SSH password guessing, through `fail2ban-regex FILE sshd.conf` on the
 * same lines (its offline tester, which runs the daemon's filter; measured with GNU time).
 */
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { FrameReader, encodeFrame } from '../src/common/codec/frames.js';
import { PluginFrame } from '../src/common/plugins/frames.js';
import { LOGS_NODE_FLAGS, logsMain } from '../src/agent/plugins/logs-plugin.js';
import { rssKb, ticks } from './proc.js';

const [lines = 200_000, idleSeconds = 30] = process.argv.slice(2).map(Number);
const dir = mkdtempSync(path.join(tmpdir(), 'hades-bench-logs-'));
const file = path.join(dir, 'auth.log');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function flood(count: number): { text: string; events: number } {
  const out: string[] = [];
  let events = 0;
  const t0 = Date.now();
  for (let i = 0; i < count; i++) {
    const time = new Date(t0 + i).toISOString().replace('Z', '+00:00');
    const ip = `198.51.${(i >> 8) & 255}.${i & 255}`;
    const r = i % 10;
    let line: string;
    if (r < 7) line = `${time} web-01 sshd[${1000 + (i % 30_000)}]: Failed password for root from ${ip} port ${1024 + (i % 60_000)} ssh2`;
    else if (r === 7) line = `${time} web-01 sshd[${1000 + (i % 30_000)}]: Invalid user user${i % 997} from ${ip} port ${1024 + (i % 60_000)}`;
    else if (r === 8) line = `${time} web-01 sudo:    alice : TTY=pts/${i % 9} ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/systemctl restart app-${i % 50}`;
    else line = `${time} web-01 CRON[${2000 + (i % 9000)}]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)`;
    if (r < 9) events++;
    out.push(line);
  }
  return { text: `${out.join('\n')}\n`, events };
}

/** fail2ban-regex over the same lines: CPU seconds, peak RSS (MB), lines it matched; undefined when not installed. */
function fail2ban(text: string): { cpuS: number; rssMb: number; matched: number } | undefined {
  const filter = '/etc/fail2ban/filter.d/sshd.conf';
  if (!existsSync('/usr/bin/fail2ban-regex') || !existsSync(filter) || !existsSync('/usr/bin/time')) return undefined;
  const file = path.join(dir, 'peer-auth.log');
  writeFileSync(file, text);
  const r = spawnSync('/usr/bin/time', ['-f', 'TIME %U %S %M', 'fail2ban-regex', file, filter], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const time = /TIME ([\d.]+) ([\d.]+) (\d+)/.exec(r.stderr);
  const matched = /Lines: \d+ lines, \d+ ignored, (\d+) matched/.exec(r.stdout);
  if (!time) return undefined;
  return { cpuS: Number(time[1]) + Number(time[2]), rssMb: Number(time[3]) / 1024, matched: Number(matched?.[1] ?? 0) };
}

async function main(): Promise<void> {
  const child = spawn(process.execPath, [...LOGS_NODE_FLAGS, logsMain(), 'bench'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const pid = child.pid ?? 0;
  let events = 0;
  const reader = new FrameReader();
  child.stdout.on('data', (chunk: Buffer) => {
    for (const frame of reader.push(chunk)) {
      if (frame.type !== PluginFrame.events) continue;
      const payload = frame.payload;
      for (let i = 0; i < payload.length; i++) if (payload[i] === 0x0a) events++;
    }
  });
  child.stdin.write(encodeFrame(PluginFrame.config, Buffer.from(JSON.stringify({ request_id: 1, config: { source: 'files', files: [file], poll_ms: 1000, state_dir: dir } }))));
  await sleep(3000);
  const i0 = ticks(pid);
  await sleep(idleSeconds * 1000);
  const idleCpu = (ticks(pid) - i0) / idleSeconds;
  const idleRss = rssKb(pid) / 1024;

  const { text, events: expected } = flood(lines);
  const peer = fail2ban(text);
  const c0 = ticks(pid);
  const t0 = performance.now();
  appendFileSync(file, text);
  let peak = 0;
  while (events < expected) {
    peak = Math.max(peak, rssKb(pid));
    if (performance.now() - t0 > 300_000) throw new Error(`only ${events} of ${expected} events after 300 s`);
    await sleep(20);
  }
  const wall = (performance.now() - t0) / 1000;
  const cpuS = (ticks(pid) - c0) / 100;
  peak = Math.max(peak, rssKb(pid));
  child.stdin.end();
  await new Promise((resolve) => child.once('exit', resolve));
  const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
  console.log(`Run: ${new Date().toISOString()}; ${fmt(lines)} lines (${fmt(text.length / 1048576, 1)} MiB) appended at once, ${fmt(expected)} of them events; the collector polls every 1 s.`);
  console.log('');
  console.log('| reader | idle CPU (% of a core) | idle RSS | flood: done in | lines/s | CPU per line | RSS peak | events (matches) |');
  console.log('|---|---|---|---|---|---|---|---|');
  console.log(`| Hades log collector (files) | ${fmt(idleCpu, 2)}% over ${idleSeconds} s | ${fmt(idleRss, 1)} MB | ${fmt(wall, 2)} s | ${fmt(lines / wall)} | ${fmt((cpuS * 1e6) / lines, 1)} µs | ${fmt(peak / 1024, 1)} MB | ${fmt(events)} (sshd and sudo) |`);
  if (peer) console.log(`| fail2ban-regex, sshd filter | | | ${fmt(peer.cpuS, 2)} s of CPU | ${fmt(lines / peer.cpuS)} | ${fmt((peer.cpuS * 1e6) / lines, 1)} µs | ${fmt(peer.rssMb, 1)} MB | ${fmt(peer.matched)} (sshd only) |`);
  else console.log('(fail2ban-regex not installed: no peer row)');
}

try {
  await main();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
