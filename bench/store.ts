/**
 * The server's event store: ingestion rate and search latency on a database of realistic
 * events, in a temporary folder (or DIR), as the server uses it (openDatabase: WAL,
 * synchronous=NORMAL).
 *
 *   node dist/bench/store.js [EVENTS=1000000] [BATCH=1000] [MIX=exec] [INDEXES=all] [DIR]
 *
 * MIX: `exec` (exec events only) or `mixed` (70% exec, 15% connect, 10% dns_query, 5%
 * file_create). INDEXES: `all` (the migration's), `min` (only the unique event id index, which
 * deduplication needs), or a comma-separated list of index names to drop, to price each index.
 * Events are generated from exampleEvent with varied hosts, programs, users, arguments and
 * addresses, 1 to 2.5 KB each, as NDJSON lines; generating them is not timed. Phases: ingestion
 * (rate per tenth of the run, CPU per event), re-delivery (all duplicates), searches (each query
 * 5 times: first run and median), pagination, count and stats, retention by age and by size,
 * the cost of compressing each event (which the store does not do), and the archive.
 *
 * Settings, from the environment, to compare in alternation on these noisy machines:
 * - HADES_BENCH_INPUT=objects: insertBatch gets parsed events, as from the server's gateway,
 *   instead of lines (parsing them is not timed).
 * - HADES_BENCH_MEMORY=1: an in-memory database, which leaves the CPU cost alone.
 * - HADES_BENCH_PHASES=ingest: stop after ingestion.
 * - HADES_BENCH_PAGE_SIZE=16384: create the database with that page size before openDatabase
 *   opens it (openDatabase keeps SQLite's default, 4096).
 * - HADES_BENCH_PRAGMAS="wal_autocheckpoint=4000,cache_size=-65536": connection pragmas, set
 *   after openDatabase.
 * - HADES_BENCH_CHECKPOINTER=MS: no automatic checkpoints on the ingesting connection; a worker
 *   thread with its own connection runs a PASSIVE checkpoint every MS ms instead (and a RESTART
 *   when the WAL passes 64 MiB, so that the writer starts it over), which takes the copy of the
 *   WAL into the file, and its fsync, off the ingestion thread.
 * - HADES_BENCH_GZIP_LEVEL: the archive's gzip level (1 by default, as the archive's).
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { deflateRawSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { exampleEvent } from '../src/common/events/schema.js';
import { openDatabase } from '../src/server/db.js';
import { Archive } from '../src/server/store/archive.js';
import { EventStore, type EventQuery } from '../src/server/store/events.js';

const [eventsText = '1000000', batchText = '1000', mix = 'exec', indexes = 'all', dirArg] = process.argv.slice(2);
const TOTAL = Number(eventsText);
const BATCH = Number(batchText);
if (!Number.isInteger(TOTAL) || !Number.isInteger(BATCH) || !['exec', 'mixed'].includes(mix)) {
  throw new Error('usage: store.js [EVENTS] [BATCH] [exec|mixed] [all|min|index,...] [DIR]');
}
const dir = dirArg ?? mkdtempSync(path.join(tmpdir(), 'hades-bench-store-'));
/** HADES_BENCH_INPUT=objects: insertBatch gets parsed events (as from the gateway), not lines. */
const objects = process.env['HADES_BENCH_INPUT'] === 'objects';
/** HADES_BENCH_MEMORY=1: an in-memory database, to separate CPU from I/O. */
const memory = process.env['HADES_BENCH_MEMORY'] === '1';
const file = memory ? ':memory:' : path.join(dir, 'hades.db');
const fileSize = (name: string): number => (memory ? 0 : statSync(name).size);

// ----- a deterministic generator of realistic events -----
let seed = 0x9e3779b9;
const random = (): number => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;
/** Skewed towards the start of the list, as real fleets are (a few programs run most). */
const pickSkewed = <T>(list: readonly T[]): T => list[Math.floor(random() ** 3 * list.length)] as T;

const HOSTS = Array.from({ length: 50 }, (_, i) => `web-${String(i + 1).padStart(2, '0')}.prod.example.com`);
const AGENTS = HOSTS.map((_, i) => `agent-${i}`);
const ID_PREFIX = HOSTS.map(() => Math.floor(random() * 2 ** 32).toString(16).padStart(8, '0'));
const BINS = ['bash', 'sh', 'dash', 'curl', 'wget', 'python3', 'perl', 'ls', 'cat', 'grep', 'sed', 'awk', 'ps', 'ss', 'systemctl', 'journalctl', 'sudo', 'ssh', 'scp', 'git', 'node', 'java', 'nginx', 'php-fpm8.2', 'cron', 'logrotate', 'apt-get', 'dpkg', 'tar', 'gzip', 'find', 'xargs', 'sort', 'uniq', 'head', 'tail', 'id', 'whoami', 'uname', 'hostname'];
const EXECUTABLES = [...BINS.map((b) => `/usr/bin/${b}`), ...Array.from({ length: 160 }, (_, i) => `/opt/app${i % 20}/bin/tool${i}`)];
const USERS = ['root', 'www-data', 'postgres', 'deploy', 'alice', 'bob', 'nobody', 'systemd-network', 'backup', 'ci', ...Array.from({ length: 10 }, (_, i) => `user${i}`)];
const WORDS = ['-s', '-la', '--verbose', '/var/log/syslog', '/etc/passwd', 'http://203.0.113.7/x.sh', 'status', 'nginx', '--since', 'today', '-rf', '/tmp/build', 'origin', 'main', '-c', 'import os; print(os.getpid())', '/srv/www/index.php', '--format=json', 'user@10.0.0.9', '/home/deploy/release.tar.gz'];
const DOMAINS = ['api.example.com', 'updates.ubuntu.com', 'x1y2.oast.fun', 'pypi.org', 'registry.npmjs.org', 'github.com', 'metadata.google.internal', 'login.microsoftonline.com'];
const execTemplate = exampleEvent('exec') as any;

const args = (): string[] => {
  const out = [pick(BINS)];
  const n = 1 + Math.floor(random() * 24);
  for (let i = 0; i < n; i++) out.push(random() < 0.1 ? `/tmp/${Math.floor(random() * 1e9).toString(36)}` : pick(WORDS));
  return out;
};

let sequence = 0;
/** One event of the kind `action`, from agent `agent`, at `time`. */
function makeEvent(action: string, agent: number, time: number): Record<string, unknown> {
  const host = HOSTS[agent] as string;
  const executable = pickSkewed(EXECUTABLES);
  const name = path.basename(executable);
  const argv = args();
  const pid = 1000 + Math.floor(random() * 4_000_000);
  const ppid = 1000 + Math.floor(random() * 4_000_000);
  const iso = new Date(time).toISOString();
  const process = {
    pid,
    entity_id: `${host}:${pid}:${time}`,
    name,
    executable,
    args: argv,
    command_line: argv.join(' '),
    working_directory: pick(['/', '/tmp', '/root', '/home/deploy', '/srv/www', '/var/lib/app']),
    user: { id: String(Math.floor(random() * 2000)), name: pickSkewed(USERS) },
    parent: { pid: ppid, entity_id: `${host}:${ppid}:${time - 5000}`, name: 'bash', executable: '/usr/bin/bash' },
  };
  const ancestors = Array.from({ length: 1 + Math.floor(random() * 4) }, () => {
    const a = args();
    return { pid: 1000 + Math.floor(random() * 4_000_000), name: a[0], executable: `/usr/bin/${a[0]}`, args: a.slice(0, 6) };
  });
  const hades = { ancestors, ancestry: ancestors.map((a) => `${a.name}(${a.pid})`).join(' < ') + ' < systemd(1)' };
  const common = {
    '@timestamp': iso,
    event: { id: `${time.toString(36).padStart(9, '0')}-${ID_PREFIX[agent]}-${(++sequence).toString(36)}`, kind: 'event', category: ['process'], type: ['start'], action, sequence },
    host: { name: host, os: { type: 'linux', kernel: '6.18.0' } },
    agent: { id: AGENTS[agent], version: '0.1.0', type: 'hades' },
  };
  switch (action) {
    case 'connect':
      return {
        ...common,
        event: { ...common.event, category: ['network'], type: ['connection', 'start'], outcome: 'success' },
        process,
        source: { ip: '10.0.0.5', port: 30000 + Math.floor(random() * 30000) },
        destination: { ip: `203.0.${Math.floor(random() * 256)}.${Math.floor(random() * 256)}`, port: pick([80, 443, 22, 53, 4444, 8080, 5432]) },
        network: { transport: 'tcp', type: 'ipv4', direction: 'egress' },
        hades,
      };
    case 'dns_query':
      return {
        ...common,
        event: { ...common.event, category: ['network'], type: ['protocol', 'info'] },
        process,
        destination: { ip: '127.0.0.53', port: 53 },
        network: { transport: 'udp', type: 'ipv4', protocol: 'dns' },
        dns: { id: Math.floor(random() * 65536), type: 'query', question: { name: `${Math.floor(random() * 1000)}.${pick(DOMAINS)}`, type: 'A', class: 'IN' } },
        hades,
      };
    case 'file_create': {
      const file = `/tmp/${Math.floor(random() * 1e9).toString(36)}/${name}.out`;
      return { ...common, event: { ...common.event, category: ['file'], type: ['creation'] }, process, file: { path: file, name: path.basename(file), directory: path.dirname(file), mode: '0644' }, hades: { ...hades, file: { created: true, executable: false, watch: '/tmp' } } };
    }
    default:
      return {
        ...common,
        process: { ...process, args_count: argv.length, start: iso, hash: { sha256: execTemplate.process.hash.sha256.replace(/a/g, () => pick(['a', 'b', 'c', 'd', 'e', 'f', '0', '1'])) } },
        hades: { ...hades, process: execTemplate.hades.process },
      };
  }
}

const chooseAction = (): string => {
  if (mix === 'exec') return 'exec';
  const r = random();
  return r < 0.7 ? 'exec' : r < 0.85 ? 'connect' : r < 0.95 ? 'dns_query' : 'file_create';
};

const START = Date.UTC(2026, 10, 1);
const SPAN = 7 * 86_400_000; // the events cover a week
/** A batch as one agent sends it: consecutive events of one host, close in time. */
function makeBatch(batchIndex: number, size: number): { agent: number; lines: string[] } {
  const agent = batchIndex % HOSTS.length;
  const base = START + Math.floor((batchIndex * BATCH * SPAN) / TOTAL);
  const lines = new Array<string>(size);
  for (let i = 0; i < size; i++) lines[i] = JSON.stringify(makeEvent(chooseAction(), agent, base + Math.floor(random() * 2000)));
  return { agent, lines };
}

const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const mb = (bytes: number): string => `${fmt(bytes / 1048576, 1)} MiB`;

// ----- ingestion -----
const pageSize = process.env['HADES_BENCH_PAGE_SIZE'];
if (pageSize !== undefined && !memory) {
  const raw = new Database(file);
  raw.pragma(`page_size = ${Number(pageSize)}`);
  raw.exec('VACUUM');
  raw.close();
}
const db = openDatabase(file);
for (const pragma of (process.env['HADES_BENCH_PRAGMAS'] ?? '').split(',').filter((p) => p !== '')) db.pragma(pragma);
const store = new EventStore(db);
if (indexes !== 'all') {
  const all = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL").all() as { name: string }[]).map((r) => r.name);
  const drop = indexes === 'min' ? all.filter((n) => n !== 'events_event_id_agent') : indexes.split(',');
  for (const name of drop) db.exec(`DROP INDEX ${name}`);
  console.log(`indexes dropped: ${drop.join(', ')}`);
}
const checkpointMs = process.env['HADES_BENCH_CHECKPOINTER'];
const stopCheckpointer = new Int32Array(new SharedArrayBuffer(4));
let checkpointer: Worker | undefined;
if (checkpointMs !== undefined) {
  db.pragma('wal_autocheckpoint = 0');
  db.pragma('journal_size_limit = 67108864');
  const driver = pathToFileURL(createRequire(import.meta.url).resolve('better-sqlite3')).href;
  const code = `(async () => {
    const { default: Database } = await import(${JSON.stringify(driver)});
    const { workerData } = await import('node:worker_threads');
    const db = new Database(workerData.file);
    db.pragma('busy_timeout = 5000');
    const stop = new Int32Array(workerData.stop);
    const pageSize = db.pragma('page_size', { simple: true });
    while (Atomics.load(stop, 0) === 0) {
      const [result] = db.pragma('wal_checkpoint(PASSIVE)');
      // The writer starts the WAL over only after a checkpoint caught up with it: when the WAL
      // passes 64 MiB, finish with RESTART, which holds the writer back for what is left.
      if (result.log * pageSize > 64 * 1048576) db.pragma('wal_checkpoint(RESTART)');
      Atomics.wait(stop, 0, 0, workerData.ms);
    }
    db.close();
  })()`;
  checkpointer = new Worker(code, { eval: true, workerData: { file, ms: Number(checkpointMs), stop: stopCheckpointer.buffer } });
}
console.log(`store bench: ${fmt(TOTAL)} ${mix} events (${objects ? 'objects' : 'lines'}) in batches of ${BATCH}, database ${file}, page size ${String(db.pragma('page_size', { simple: true }))}${process.env['HADES_BENCH_PRAGMAS'] ? `, ${process.env['HADES_BENCH_PRAGMAS']}` : ''}${checkpointMs === undefined ? '' : `, checkpoints on a worker every ${checkpointMs} ms`}`);

let insertMs = 0;
let bytesIn = 0;
let stored = 0;
const batches = Math.ceil(TOTAL / BATCH);
const sections = 10;
let sectionMs = 0;
let sectionEvents = 0;
const sectionRates: string[] = [];
const kept: { agent: number; lines: string[] }[] = [];
let cpuUser = 0;
let cpuSystem = 0;
for (let b = 0; b < batches; b++) {
  const batch = makeBatch(b, Math.min(BATCH, TOTAL - b * BATCH));
  for (const line of batch.lines) bytesIn += line.length;
  if (b % Math.max(1, Math.floor(batches / 10)) === 0 && kept.length < 10) kept.push(batch);
  const input = objects ? batch.lines.map((l) => JSON.parse(l) as Record<string, unknown>) : batch.lines;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  stored += store.insertBatch(AGENTS[batch.agent] as string, input).stored;
  const dt = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  cpuUser += cpu.user;
  cpuSystem += cpu.system;
  insertMs += dt;
  sectionMs += dt;
  sectionEvents += batch.lines.length;
  if ((b + 1) % Math.ceil(batches / sections) === 0 || b === batches - 1) {
    sectionRates.push(fmt(sectionEvents / (sectionMs / 1000)));
    sectionMs = 0;
    sectionEvents = 0;
  }
}
const walBytes = fileSize(`${file}-wal`);
if (checkpointer !== undefined) {
  Atomics.store(stopCheckpointer, 0, 1);
  Atomics.notify(stopCheckpointer, 0);
  await new Promise((resolve) => checkpointer?.once('exit', resolve));
  db.pragma('wal_autocheckpoint = 1000');
}
const sizes = store.stats();
console.log(`\ningestion: ${fmt(stored)} events stored in ${fmt(insertMs / 1000, 1)} s of insertBatch = ${fmt(stored / (insertMs / 1000))} events/s (${fmt(bytesIn / stored)} bytes per event, ${mb(bytesIn / (insertMs / 1000))}/s)`);
console.log(`  rate per tenth of the run (events/s): ${sectionRates.join(', ')}`);
console.log(`  CPU of the process while in insertBatch: ${fmt((cpuUser + cpuSystem) / stored, 1)} us per event (user ${fmt(cpuUser / stored, 1)}, system ${fmt(cpuSystem / stored, 1)}); wall ${fmt((insertMs * 1000) / stored, 1)} us per event`);
console.log(`  database: ${mb(sizes.bytes)} (${fmt(sizes.bytes / stored)} bytes per event, JSON ${fmt(bytesIn / stored)}); file ${mb(fileSize(file))}; WAL at the end of ingestion ${mb(walBytes)}`);
for (const row of db.prepare("SELECT name, sum(pgsize) AS bytes FROM dbstat WHERE name LIKE 'events%' GROUP BY name ORDER BY bytes DESC").all() as { name: string; bytes: number }[]) {
  console.log(`    ${row.name.padEnd(28)} ${mb(row.bytes)}`);
}

if (process.env['HADES_BENCH_PHASES'] === 'ingest') {
  db.close();
  if (dirArg === undefined) rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}

// ----- re-delivery -----
{
  let dups = 0;
  let n = 0;
  const t0 = performance.now();
  for (const batch of kept) {
    const r = store.insertBatch(AGENTS[batch.agent] as string, batch.lines);
    dups += r.duplicates;
    n += batch.lines.length;
  }
  const ms = performance.now() - t0;
  console.log(`\nre-delivery: ${fmt(n)} events sent again, ${fmt(dups)} dropped as duplicates, ${fmt(n / (ms / 1000))} events/s`);
}

// ----- searches -----
db.pragma('optimize');
const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;
const END = START + SPAN;
const HOUR = 3_600_000;
/** A host that sent batches in the last day of the run, and an id stored half way. */
const recentHost = HOSTS[(batches - 1) % HOSTS.length] as string;
const someId = (JSON.parse(kept[Math.floor(kept.length / 2)]?.lines[0] ?? '{}') as { event?: { id?: string } }).event?.id ?? '';
const queries: [string, EventQuery][] = [
  ['newest 100', {}],
  ['newest 100, last hour', { since: END - HOUR }],
  ['host, last day', { host: recentHost, since: END - 24 * HOUR }],
  ['host, whole week, oldest first', { host: recentHost, order: 'asc' }],
  ['action=connect', { action: 'connect' }],
  ['action in (dns_query, file_create)', { action: ['dns_query', 'file_create'] }],
  ['process.executable eq (common)', { filters: [{ field: 'process.executable', op: 'eq', value: '/usr/bin/bash' }] }],
  ['process.executable eq (rare)', { filters: [{ field: 'process.executable', op: 'eq', value: '/opt/app19/bin/tool159' }] }],
  ['process.executable prefix /opt/app1', { filters: [{ field: 'process.executable', op: 'prefix', value: '/opt/app1' }] }],
  ['user.name eq root, host', { host: recentHost, filters: [{ field: 'user.name', op: 'eq', value: 'root' }] }],
  ['user.name eq user9 (rare)', { filters: [{ field: 'user.name', op: 'eq', value: 'user9' }] }],
  ['destination.ip eq (rare)', { filters: [{ field: 'destination.ip', op: 'eq', value: '203.0.113.7' }] }],
  ['event.id eq', { filters: [{ field: 'event.id', op: 'eq', value: someId }] }],
  ['process.name eq (column, no index)', { filters: [{ field: 'process.name', op: 'eq', value: 'wget' }] }],
  ['process.name eq (rare, column, no index), 1 day', { since: END - 24 * HOUR, filters: [{ field: 'process.name', op: 'eq', value: 'tool159' }] }],
  ['process.command_line contains (JSON), 1 hour', { since: END - HOUR, filters: [{ field: 'process.command_line', op: 'contains', value: 'os.getpid' }] }],
  ['process.args any eq (JSON array), 1 hour', { since: END - HOUR, filters: [{ field: 'process.args', op: 'eq', value: '/etc/passwd' }] }],
  ['process.args any eq (JSON array), host, 1 day', { host: recentHost, since: END - 24 * HOUR, filters: [{ field: 'process.args', op: 'eq', value: '/etc/passwd' }] }],
  ['process.working_directory eq (JSON, no match), 1 hour', { since: END - HOUR, filters: [{ field: 'process.working_directory', op: 'eq', value: '/nowhere' }] }],
  ['process.working_directory eq (JSON, no match), whole week', { filters: [{ field: 'process.working_directory', op: 'eq', value: '/nowhere' }] }],
  ['1,000 newest', { limit: 1000 }],
];
console.log('\nsearches (ms: first run, median of 5; events returned):');
for (const [label, query] of queries) {
  const times: number[] = [];
  let count = 0;
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    count = store.search(query).events.length;
    times.push(performance.now() - t0);
  }
  console.log(`  ${label.padEnd(58)} ${fmt(times[0] as number, 1).padStart(9)} ${fmt(median(times), 1).padStart(9)}   ${count}`);
}
{
  const t0 = performance.now();
  let cursor: string | undefined;
  let n = 0;
  for (let page = 0; page < 20; page++) {
    const r = store.search({ limit: 500, host: HOSTS[11], ...(cursor === undefined ? {} : { cursor }) });
    n += r.events.length;
    cursor = r.next;
    if (cursor === undefined) break;
  }
  console.log(`  ${'20 pages of 500, one host'.padEnd(58)} ${fmt(performance.now() - t0, 1).padStart(9)} total   ${n}`);
}
{
  let t0 = performance.now();
  const n = store.count();
  const countMs = performance.now() - t0;
  t0 = performance.now();
  store.stats();
  console.log(`  count(): ${fmt(countMs, 1)} ms (${fmt(n)}); stats(): ${fmt(performance.now() - t0, 1)} ms`);
}

// ----- retention -----
{
  const first = store.stats();
  let t0 = performance.now();
  const byAge = store.enforceRetention({ maxAgeDays: 6, now: (first.newest as number) + 1 });
  const ageMs = performance.now() - t0;
  // The longest single chunk, which is how long ingestion waits at most.
  const deleteChunk = db.prepare('DELETE FROM events WHERE id IN (SELECT id FROM events WHERE time < ? ORDER BY time LIMIT 10000)');
  t0 = performance.now();
  deleteChunk.run(Number.MAX_SAFE_INTEGER);
  const chunkMs = performance.now() - t0;
  const before = store.stats().bytes;
  t0 = performance.now();
  const bySize = store.enforceRetention({ maxBytes: Math.floor(before * 0.8) });
  const sizeMs = performance.now() - t0;
  console.log(`\nretention: by age ${fmt(byAge.deletedByAge)} events in ${fmt(ageMs)} ms (${fmt(byAge.deletedByAge / (ageMs / 1000))} events/s); one chunk of 10,000: ${fmt(chunkMs)} ms`);
  console.log(`  by size (to 80% of ${mb(before)}): ${fmt(bySize.deletedBySize)} events in ${fmt(sizeMs)} ms, now ${mb(store.stats().bytes)}`);
  // Insertion into a database with a free list (the steady state under retention).
  let n = 0;
  let ms = 0;
  for (let b = 0; b < 100; b++) {
    const batch = makeBatch(batches + b, BATCH);
    const t1 = performance.now();
    n += store.insertBatch(AGENTS[batch.agent] as string, batch.lines).stored;
    ms += performance.now() - t1;
  }
  console.log(`  ingestion after retention (free pages reused): ${fmt(n / (ms / 1000))} events/s; database ${mb(store.stats().bytes)}, file ${mb(fileSize(file))}`);
}
db.close();

// ----- compression of each stored event (not done: measured here) -----
{
  const sample = makeBatch(0, 5000).lines;
  let raw = 0;
  for (const level of [1, 6]) {
    let packed = 0;
    const t0 = performance.now();
    for (const line of sample) {
      raw += level === 1 ? line.length : 0;
      packed += deflateRawSync(line, { level }).length;
    }
    const us = ((performance.now() - t0) * 1000) / sample.length;
    console.log(`\ndeflate per event, level ${level}: ${fmt(us, 1)} us per event, ${fmt(raw / packed, 2)}x smaller`);
  }
}

// ----- the archive -----
{
  const archiveDir = path.join(dir, 'archive');
  const level = Number(process.env['HADES_BENCH_GZIP_LEVEL'] ?? '1');
  const archive = Archive.open({ dir: archiveDir, flushBytes: 32 << 20, flushSeconds: 60, level });
  const n = Math.min(TOTAL, 200_000);
  const lines: string[][] = [];
  let bytes = 0;
  for (let b = 0; b < n / BATCH; b++) {
    const batch = makeBatch(b, BATCH).lines;
    for (const line of batch) bytes += line.length;
    lines.push(batch);
  }
  const t0 = performance.now();
  for (const batch of lines) archive.append(batch);
  await archive.close();
  const ms = performance.now() - t0;
  let gz = 0;
  let files = 0;
  for (const entry of readdirSync(archiveDir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && entry.name.endsWith('.ndjson.gz')) {
      files++;
      gz += statSync(path.join(entry.parentPath, entry.name)).size;
    }
  }
  console.log(`\narchive: ${fmt(n)} events (${mb(bytes)}) into ${files} files, ${mb(gz)} gzip (${fmt(bytes / gz, 1)}x), ${fmt(n / (ms / 1000))} events/s (gzip level ${level}, on the thread pool)`);
}

if (dirArg === undefined) rmSync(dir, { recursive: true, force: true });
