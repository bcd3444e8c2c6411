/**
 * The inventory collector on a host with many processes: it starts PROCESSES `sleep` processes
 * (2,000 by default, in a process group of their own that is killed at the end, whatever
 * happens), then asks real collector processes (the one the agent runs) for
 *
 * - a full snapshot: `SELECT * FROM t` for every table, one query each. Reported: the
 *   collector's CPU seconds (user + system from /proc/PID/stat, all its threads; the collector
 *   starts no children) and wall time per round, and its resident memory (now and peak).
 *   Three collectors run one after the other, each with its own first (cold) snapshot:
 *   1. `first start`: an empty hash folder, so every executable is hashed (a host the agent has
 *      never run on); then ROUNDS - 1 warm rounds in the same process;
 *   2. `restart`: a new process with the hash file the first one kept (inventory-hashes.txt), as
 *      after a restart of the agent or of the collector;
 *   3. `agent's hashes`: a new process whose folder holds only the agent's file
 *      (exec-hashes.txt), here the same hashes under the agent's name: what the collector finds
 *      when the agent hashed those executables at exec;
 * - a join of processes and listening_ports, JOINS times, in the first collector: latency as the
 *   asker sees it (the benchmark listens on LISTENERS ports itself, so that the join has rows).
 *
 *   node dist/bench/inventory.js [PROCESSES=2000] [ROUNDS=5] [JOINS=20]
 *
 * Targets (issue 8): a full snapshot under 1 CPU-second, the join under 200 ms.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { HASH_CACHE_FILES } from '../src/agent/hash-cache-file.js';
import { PluginFrame } from '../src/common/plugins/protocol.js';
import { QueryClient, type QueryAnswer } from '../src/agent/inventory/query-client.js';
import { allTables } from '../src/agent/inventory/tables/index.js';
import { collectorArgs } from '../src/agent/plugins/inventory-plugin.js';
import { PluginProcess } from '../src/agent/plugins/plugin-process.js';

const [processesText = '2000', roundsText = '5', joinsText = '20'] = process.argv.slice(2);
const PROCESSES = Number(processesText);
const ROUNDS = Number(roundsText);
const JOINS = Number(joinsText);
const LISTENERS = 20;
const TICKS = 100;
const JOIN_SQL = 'SELECT p.pid, p.name, p.user, l.protocol, l.address, l.port FROM processes p JOIN listening_ports l USING (pid)';

const sleepers = spawn('/bin/sh', ['-c', `i=0; while [ $i -lt ${PROCESSES} ]; do sleep 600 & i=$((i+1)); done; wait`], { detached: true, stdio: 'ignore' });
const killSleepers = () => {
  try {
    if (sleepers.pid !== undefined) process.kill(-sleepers.pid, 'SIGKILL');
  } catch {
    // gone already
  }
};
process.on('exit', killSleepers);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    killSleepers();
    process.exit(130);
  });
}

const processCount = () => readdirSync('/proc').filter((n) => /^\d+$/.test(n)).length;
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / TICKS;
}
function memory(pid: number): { rssMb: number; peakMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 };
}
const quantile = (values: readonly number[], q: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;
};
const fmt = (n: number, digits = 3) => n.toFixed(digits);

interface Round {
  cpu: number;
  wall: number;
  rows: number;
  perTable: Record<string, number>;
}

/** A collector process of its own, configured with a hash folder, and a way to ask it. */
async function startCollector(hashDir: string) {
  const collector = new PluginProcess(
    { name: 'inventory', binary: process.execPath, args: collectorArgs('bench'), graceMs: 5000 },
    {
      onFrame: (type, payload) => {
        if (type === PluginFrame.queryResult) client.onFrame(payload);
      },
    },
  );
  const client: QueryClient = new QueryClient({
    send: (type, payload) => {
      collector.send(type, payload);
      return true;
    },
  });
  await collector.start();
  const pid = collector.pid!;
  const config = { queries: [], query_timeout_s: 120, max_rows: 1_000_000, events_per_s: 0, hash_cache_dir: hashDir };
  await collector.command(PluginFrame.config, (id) => new TextEncoder().encode(JSON.stringify({ request_id: id, config })));
  const ask = async (sql: string): Promise<Extract<QueryAnswer, { ok: true }>> => {
    const answer = await client.query({ sql, timeout_ms: 120_000, max_rows: 1_000_000, max_bytes: 1 << 30 });
    if (!answer.ok) throw new Error(`${sql}: ${answer.code} ${answer.message}`);
    return answer;
  };
  /** One full snapshot: every table, one query each. */
  const snapshot = async (): Promise<Round> => {
    const cpu0 = cpuSeconds(pid);
    const wall0 = performance.now();
    let rows = 0;
    const perTable: Record<string, number> = {};
    for (const table of allTables) {
      const t0 = performance.now();
      const answer = await ask(`SELECT * FROM "${table.name}"`);
      perTable[table.name] = performance.now() - t0;
      rows += answer.row_count;
    }
    return { cpu: cpuSeconds(pid) - cpu0, wall: (performance.now() - wall0) / 1000, rows, perTable };
  };
  return { pid, ask, snapshot, stop: () => collector.stop() };
}

async function main(): Promise<void> {
  const started = Date.now();
  while (processCount() < PROCESSES && Date.now() - started < 60_000) await new Promise((resolve) => setTimeout(resolve, 100));
  const total = processCount();
  const listeners = await Promise.all(
    Array.from({ length: LISTENERS }, () => new Promise<net.Server>((resolve) => {
      const server = net.createServer();
      server.listen(0, '127.0.0.1', () => resolve(server));
    })),
  );
  process.stdout.write(`host: ${total} processes (${PROCESSES} sleepers started), ${allTables.length} tables\n`);

  const hashDir = mkdtempSync(path.join(os.tmpdir(), 'hades-bench-hashes-'));
  const agentDir = mkdtempSync(path.join(os.tmpdir(), 'hades-bench-hashes-'));
  const first = await startCollector(hashDir);
  const pid = first.pid;
  const { ask } = first;
  const idle = memory(pid);
  let stopped = false;

  try {
    const rounds: Round[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      rounds.push(await first.snapshot());
      process.stdout.write(`snapshot round ${round + 1}${round === 0 ? ' (cold, first start: nothing hashed yet)' : ''}: ${fmt(rounds.at(-1)!.cpu, 2)} CPU-s, ${fmt(rounds.at(-1)!.wall, 2)} s wall, ${rounds.at(-1)!.rows} rows\n`);
    }
    const warm = rounds.slice(1);
    const slowest = Object.entries(warm.at(-1)?.perTable ?? rounds[0]!.perTable)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 6)
      .map(([name, ms]) => `${name} ${ms.toFixed(0)} ms`);

    const joins: number[] = [];
    const collectorSide: number[] = [];
    let joinRows = 0;
    for (let i = 0; i < JOINS; i++) {
      const t0 = performance.now();
      const answer = await ask(JOIN_SQL);
      joins.push(performance.now() - t0);
      collectorSide.push(answer.collect_ms + answer.sql_ms);
      joinRows = answer.row_count;
    }
    const mem = memory(pid);
    // The collector writes its hash file at stop (and after queries, at most once a minute).
    await first.stop();
    stopped = true;
    const cold = async (dir: string, label: string): Promise<Round> => {
      const collector = await startCollector(dir);
      try {
        const round = await collector.snapshot();
        process.stdout.write(`snapshot (cold, ${label}): ${fmt(round.cpu, 2)} CPU-s, ${fmt(round.wall, 2)} s wall, ${round.rows} rows\n`);
        return round;
      } finally {
        await collector.stop();
      }
    };
    copyFileSync(path.join(hashDir, HASH_CACHE_FILES.inventory), path.join(agentDir, HASH_CACHE_FILES.agent));
    const restart = await cold(hashDir, 'restart: its own hash file');
    const agentShared = await cold(agentDir, "the agent's hash file only");
    const summary = {
      processes: total,
      tables: allTables.length,
      snapshot: {
        cold_first_start_cpu_s: rounds[0]!.cpu,
        cold_first_start_wall_s: rounds[0]!.wall,
        cold_restart_cpu_s: restart.cpu,
        cold_restart_wall_s: restart.wall,
        cold_agent_hashes_cpu_s: agentShared.cpu,
        cold_agent_hashes_wall_s: agentShared.wall,
        warm_cpu_s_median: quantile(warm.map((r) => r.cpu), 0.5),
        warm_cpu_s_p95: quantile(warm.map((r) => r.cpu), 0.95),
        warm_wall_s_median: quantile(warm.map((r) => r.wall), 0.5),
        warm_wall_s_p95: quantile(warm.map((r) => r.wall), 0.95),
        rows: rounds[0]!.rows,
        slowest_tables_warm: slowest,
      },
      join: { sql: JOIN_SQL, rows: joinRows, ms_median: quantile(joins, 0.5), ms_p95: quantile(joins, 0.95), collector_ms_median: quantile(collectorSide, 0.5) },
      collector_memory_mb: { idle_rss: idle.rssMb, rss_after: mem.rssMb, peak_rss: mem.peakMb },
      targets: { snapshot_cpu_s: 1, join_ms: 200 },
    };
    process.stdout.write(
      [
        `full snapshot, warm (median of ${warm.length}): ${fmt(summary.snapshot.warm_cpu_s_median, 2)} CPU-s (p95 ${fmt(summary.snapshot.warm_cpu_s_p95, 2)}), ${fmt(summary.snapshot.warm_wall_s_median, 2)} s wall  [target < 1 CPU-s]`,
        `full snapshot, cold: restart ${fmt(restart.cpu, 2)} CPU-s (${fmt(restart.wall, 2)} s wall), agent's hashes ${fmt(agentShared.cpu, 2)} CPU-s (${fmt(agentShared.wall, 2)} s wall), first start ${fmt(rounds[0]!.cpu, 2)} CPU-s (${fmt(rounds[0]!.wall, 2)} s wall)  [target < 1 CPU-s]`,
        `slowest tables (warm): ${slowest.join(', ')}`,
        `join processes x listening_ports (${joinRows} rows): median ${fmt(summary.join.ms_median, 1)} ms, p95 ${fmt(summary.join.ms_p95, 1)} ms  [target < 200 ms]`,
        `collector memory: ${fmt(idle.rssMb, 0)} MB idle, ${fmt(mem.rssMb, 0)} MB after, peak ${fmt(mem.peakMb, 0)} MB`,
        JSON.stringify(summary),
        '',
      ].join('\n'),
    );
  } finally {
    if (!stopped) await first.stop();
    for (const server of listeners) server.close();
    killSleepers();
    rmSync(hashDir, { recursive: true, force: true });
    rmSync(agentDir, { recursive: true, force: true });
  }
}

await main();
