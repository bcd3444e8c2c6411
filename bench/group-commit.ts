/**
 * What the server's store writes for a fleet: group commits (the gateway's turns) of small
 * batches from many hosts, as in the fleet bench at a moderate rate, with each of the two event
 * id shapes, alternating. Measures the bytes written (wchar of /proc/self/io) and the CPU per
 * event, in the second half of the run (the indexes have grown past the page cache by then).
 *
 *   node dist/bench/group-commit.js [HOSTS=1000] [EVENTS_PER_BATCH=5] [BATCHES_PER_COMMIT=100] [COMMITS=1600] [PAIRS=2]
 *
 * Ids: `random`, the agent's id before 2026-11-29 (a random prefix per agent start, then the
 * sequence number), whose index entries go to one place per agent; `time`, the agent's id now
 * (src/agent/sequencer.ts: the millisecond first), whose entries go to the end of the index.
 * Rows are the store's own (toRow's column order), 1.75 KB of JSON each, 25% of them connects
 * with a destination address; the database is the server's (openDatabase), in a temporary folder.
 *
 * HADES_BENCH_COMPARE chooses the pair: `ids` (the default, above), `cache` (time ids, SQLite's
 * default page cache of 2 MiB against the server's 128 MiB) or `commit` (time ids, commits of
 * BATCHES_PER_COMMIT batches against four times as many, the gateway's longer turns).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { openDatabase } from '../src/server/db.js';
import { EventStore } from '../src/server/store/events.js';
import type { Row } from '../src/server/store/row.js';

const [hostsText = '1000', perBatchText = '5', perCommitText = '100', commitsText = '1600', pairsText = '2'] = process.argv.slice(2);
const HOSTS = Number(hostsText);
const PER_BATCH = Number(perBatchText);
const PER_COMMIT = Number(perCommitText);
const COMMITS = Number(commitsText);
const PAIRS = Number(pairsText);
for (const [name, value] of Object.entries({ HOSTS, PER_BATCH, PER_COMMIT, COMMITS, PAIRS })) {
  if (!Number.isInteger(value) || value < 1) throw new Error(`usage: group-commit.js [HOSTS] [EVENTS_PER_BATCH] [BATCHES_PER_COMMIT] [COMMITS] [PAIRS] (${name} must be a positive integer)`);
}

/** A small deterministic generator, so that both shapes store the same rows but for their ids. */
function randomFrom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function written(): number {
  const line = readFileSync('/proc/self/io', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('wchar:'));
  return Number(line?.split(':')[1] ?? 0);
}

const EXECUTABLES = Array.from({ length: 40 }, (_, i) => `/usr/bin/tool${i}`);
const USERS = ['root', 'www-data', 'postgres', 'deploy', 'alice', 'bob', 'nobody', 'backup', 'ci'];
const PAD = 'x'.repeat(1700);

interface Variant {
  readonly name: string;
  readonly shape: 'random' | 'time';
  /** SQLite's cache_size pragma, when not the server's. */
  readonly cacheSize?: number;
  readonly perCommit: number;
}

const COMPARE = process.env['HADES_BENCH_COMPARE'] ?? 'ids';
const PAIR: Record<string, readonly Variant[]> = {
  ids: [
    { name: 'random ids', shape: 'random', perCommit: PER_COMMIT },
    { name: 'time ids', shape: 'time', perCommit: PER_COMMIT },
  ],
  cache: [
    { name: 'cache 2 MiB', shape: 'time', cacheSize: -2000, perCommit: PER_COMMIT },
    { name: 'cache 128 MiB', shape: 'time', perCommit: PER_COMMIT },
  ],
  commit: [
    { name: `${PER_COMMIT * PER_BATCH} a commit`, shape: 'time', perCommit: PER_COMMIT },
    { name: `${4 * PER_COMMIT * PER_BATCH} a commit`, shape: 'time', perCommit: 4 * PER_COMMIT },
  ],
};
const variants = PAIR[COMPARE];
if (variants === undefined) throw new Error(`HADES_BENCH_COMPARE must be one of ${Object.keys(PAIR).join(', ')}`);

function run(variant: Variant): { usPerEvent: number; kibPerEvent: number } {
  const { shape, perCommit } = variant;
  const dir = mkdtempSync(path.join(tmpdir(), 'hades-bench-group-'));
  const db = openDatabase(path.join(dir, 'hades.db'));
  if (variant.cacheSize !== undefined) db.pragma(`cache_size = ${variant.cacheSize}`);
  try {
    const store = new EventStore(db);
    const random = randomFrom(7);
    const prefixes = Array.from({ length: HOSTS }, () => Math.floor(random() * 2 ** 48).toString(16).padStart(12, '0'));
    const sequence = new Array<number>(HOSTS).fill(0);
    let time = Date.parse('2026-11-29T00:00:00Z');
    const row = (host: number): Row => {
      const n = sequence[host]!++;
      const id = shape === 'time' ? `${time.toString(36).padStart(9, '0')}-${prefixes[host]!}-${n.toString(36)}` : `${prefixes[host]!}-${n.toString(36)}`;
      const connect = random() < 0.25;
      const address = connect ? `203.0.${Math.floor(random() * 256)}.${Math.floor(random() * 256)}` : null;
      return [id, time, time, `ag_${host}`, `host-${host}.prod.example.com`, connect ? 'connect' : 'exec', EXECUTABLES[Math.floor(random() * 40)]!, 'tool', USERS[Math.floor(random() * 9)]!, address, connect ? 443 : null, null, null, null, `{"event":{"id":"${id}"},"pad":"${PAD}"}`];
    };
    let bytes = 0;
    let cpu = process.cpuUsage();
    let events = 0;
    // As many events in all whatever the commit's size.
    const commits = Math.round((COMMITS * PER_COMMIT) / perCommit);
    for (let c = 0; c < commits; c++) {
      if (c === Math.floor(commits / 2)) {
        bytes = written();
        cpu = process.cpuUsage();
        events = 0;
      }
      time += (40 * perCommit) / PER_COMMIT; // a gateway turn every 40 ms
      store.grouped(() => {
        for (let b = 0; b < perCommit; b++) {
          const host = Math.floor(random() * HOSTS);
          store.insertRows(`ag_${host}`, Array.from({ length: PER_BATCH }, () => row(host)));
          events += PER_BATCH;
        }
      });
    }
    const used = process.cpuUsage(cpu);
    return { usPerEvent: (used.user + used.system) / events, kibPerEvent: (written() - bytes) / 1024 / events };
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`group commits of ${PER_COMMIT} batches of ${PER_BATCH} events from ${HOSTS} hosts, ${COMMITS * PER_COMMIT * PER_BATCH} events (the second half measured), comparing ${COMPARE}`);
const started = performance.now();
for (let pair = 1; pair <= PAIRS; pair++) {
  for (const variant of variants) {
    const r = run(variant);
    console.log(`pair ${pair}, ${variant.name.padEnd(14)}: ${r.usPerEvent.toFixed(1)} us of CPU per event, ${r.kibPerEvent.toFixed(1)} KiB written per event`);
  }
}
console.log(`(${((performance.now() - started) / 1000).toFixed(0)} s)`);
