/**
 * The agent's per-event cost without I/O: replays a raw driver capture (frames as the driver
 * writes them) through frame reader -> decoder -> process tree and event builder ->
 * serialisation (the agent's serializeEvent) -> encoding into the NDJSON writer's buffers (a
 * stream that discards them), and reports the garbage collector's time.
 *
 *   driver/build/hades-driver --ignore-stdin > capture.bin   (while a workload runs; Ctrl-C)
 *   node dist/bench/pipeline.js capture.bin [ROUNDS=5] [ACTIONS=exec,fork,exit] [MODE=check]
 *
 * MODE: `check` also times JSON.stringify on each event and counts the lines that differ from
 * it (there must be none; its garbage counts in the GC time); `agent` runs the agent's path
 * alone; `stringify` serialises with JSON.stringify instead, as the agent did before its
 * hand-written serialiser, for a before/after in one build.
 */
import { readFileSync } from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { FrameReader } from '../src/common/codec/frames.js';
import type { HadesEvent } from '../src/common/events/index.js';
import { Accounts } from '../src/agent/accounts.js';
import { EventBuilder } from '../src/agent/builder.js';
import { decodeRecords, newDecodeCounters, type DriverRecord } from '../src/agent/driver/records.js';
import type { SecurityRecord } from '../src/agent/driver/security-records.js';
import { ExecutableHasher } from '../src/agent/hasher.js';
import { NdjsonWriter } from '../src/agent/ndjson-writer.js';
import { serializeEvent } from '../src/agent/serialize.js';
import { ProcessTree } from '../src/agent/tree.js';

const [file, roundsText = '5', actionsText = 'exec,fork,exit', mode = 'check'] = process.argv.slice(2);
if (!file || !['check', 'agent', 'stringify'].includes(mode)) throw new Error('usage: pipeline.js CAPTURE [ROUNDS] [ACTIONS] [check|agent|stringify]');
const serialize = mode === 'stringify' ? (e: HadesEvent) => JSON.stringify(e) : serializeEvent;
const wanted = new Set(actionsText.split(','));
const bytes = readFileSync(file);

let gcNs = 0;
let gcCount = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    gcNs += entry.duration * 1e6;
    gcCount++;
  }
}).observe({ entryTypes: ['gc'] });

/** A stream that takes every chunk at once, so the writer's own cost is what is measured. */
const sink = new Writable({
  write(_chunk, _encoding, done) {
    done();
  },
});

interface Round {
  records: number;
  events: number;
  bytes: number;
  decodeUs: number;
  buildUs: number;
  serializeUs: number;
  encodeUs: number;
  stringifyUs: number;
  mismatches: number;
  gcMs: number;
  gcs: number;
  byAction: Map<string, { events: number; serializeUs: number; stringifyUs: number; bytes: number }>;
}

async function round(): Promise<Round> {
  const tree = new ProcessTree('bench', 65536);
  const builder = new EventBuilder(tree, new Accounts(), new ExecutableHasher({ enabled: true, maxFileBytes: 64 << 20, maxBytesPerSecond: 64 << 20 }), {
    host: { name: 'bench', kernel: '6.x', architecture: 'x64' },
    agentVersion: 'bench',
    ancestors: 8,
  });
  const writer = new NdjsonWriter(sink, () => undefined);
  // The GC observer reports asynchronously: let the last round's entries arrive, then count.
  await new Promise((r) => setImmediate(r));
  const gc0 = gcNs;
  const gcs0 = gcCount;
  const t0 = process.hrtime.bigint();
  const records: (DriverRecord | SecurityRecord)[] = [];
  const counters = newDecodeCounters();
  for (const frame of new FrameReader().push(bytes)) if (frame.type === 2) decodeRecords(frame.payload, counters, records);
  const t1 = process.hrtime.bigint();
  // Events are built, serialised and encoded one at a time, as in the agent, so that memory behaves alike.
  const r: Round = { records: records.length, events: 0, bytes: 0, decodeUs: Number(t1 - t0) / 1e3, buildUs: 0, serializeUs: 0, encodeUs: 0, stringifyUs: 0, mismatches: 0, gcMs: 0, gcs: 0, byAction: new Map() };
  let buildNs = 0n;
  let serializeNs = 0n;
  let encodeNs = 0n;
  let stringifyNs = 0n;
  for (const record of records) {
    if (record.type !== 'exec' && record.type !== 'fork' && record.type !== 'exit') continue;
    if (!wanted.has(record.type)) {
      builder.track(record);
      continue;
    }
    const b0 = process.hrtime.bigint();
    const built = builder.build(record);
    const e: HadesEvent = built instanceof Promise ? await built : built;
    const b1 = process.hrtime.bigint();
    const line = serialize(e);
    const b2 = process.hrtime.bigint();
    // What NdjsonWriter.write does after serializeEvent: encode the line into its batch buffer.
    writer.writeLine(line);
    const b3 = process.hrtime.bigint();
    if (mode === 'check' && line !== JSON.stringify(e)) r.mismatches++;
    const b4 = process.hrtime.bigint();
    buildNs += b1 - b0;
    serializeNs += b2 - b1;
    encodeNs += b3 - b2;
    stringifyNs += b4 - b3;
    r.events++;
    r.bytes += line.length + 1;
    const kind = e.event.action;
    let k = r.byAction.get(kind);
    if (!k) r.byAction.set(kind, (k = { events: 0, serializeUs: 0, stringifyUs: 0, bytes: 0 }));
    k.events++;
    k.serializeUs += Number(b2 - b1) / 1e3;
    k.stringifyUs += Number(b4 - b3) / 1e3;
    k.bytes += line.length + 1;
  }
  writer.close();
  await new Promise((resolve) => setImmediate(resolve));
  r.buildUs = Number(buildNs) / 1e3;
  r.serializeUs = Number(serializeNs) / 1e3;
  r.encodeUs = Number(encodeNs) / 1e3;
  r.stringifyUs = Number(stringifyNs) / 1e3;
  r.gcMs = (gcNs - gc0) / 1e6;
  r.gcs = gcCount - gcs0;
  return r;
}

const per = (us: number, n: number) => (n ? us / n : 0).toFixed(2);
process.stdout.write(`mode ${mode}: ${mode === 'stringify' ? 'JSON.stringify' : 'serializeEvent'}${mode === 'check' ? ', checked against JSON.stringify (timed apart; its garbage counts in GC)' : ''}\n`);
for (let i = 0; i < Number(roundsText); i++) {
  const r = await round();
  const kinds = [...r.byAction].map(([a, k]) => `${a} ${k.events} (${(k.bytes / k.events).toFixed(0)} B) ${per(k.serializeUs, k.events)}${mode === 'check' ? ` [JSON.stringify ${per(k.stringifyUs, k.events)}]` : ''}`).join('; ');
  process.stdout.write(
    `round ${i}: ${r.records} records, ${r.events} events (${(r.bytes / r.events).toFixed(0)} B avg); µs per record: decode ${per(r.decodeUs, r.records)}; ` +
      `µs per event: build ${per(r.buildUs, r.events)}, serialize ${per(r.serializeUs, r.events)}, encode ${per(r.encodeUs, r.events)}; ` +
      `GC ${per(r.gcMs * 1e3, r.events)} (${r.gcs} pauses)${mode === 'check' ? `; ${r.mismatches} lines differ from JSON.stringify` : ''}\n` +
      `  serialize, µs per event: ${kinds}\n`,
  );
  if (r.mismatches > 0) process.exitCode = 1;
}
