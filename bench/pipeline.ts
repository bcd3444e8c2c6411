/**
 * The agent's per-event cost without I/O: replays a raw driver capture (frames as the driver
 * writes them) through frame reader -> decoder -> process tree and event builder -> JSON.
 *
 *   driver/build/hades-driver --ignore-stdin > capture.bin   (while a workload runs; Ctrl-C)
 *   node dist/bench/pipeline.js capture.bin [ROUNDS=5] [ACTIONS=exec,fork,exit]
 */
import { readFileSync } from 'node:fs';
import { FrameReader } from '../src/common/codec/frames.js';
import { Accounts } from '../src/agent/accounts.js';
import { EventBuilder } from '../src/agent/builder.js';
import { decodeRecords, newDecodeCounters, type DriverRecord } from '../src/agent/driver/records.js';
import { ExecutableHasher } from '../src/agent/hasher.js';
import { ProcessTree } from '../src/agent/tree.js';

const [file, roundsText = '5', actionsText = 'exec,fork,exit'] = process.argv.slice(2);
if (!file) throw new Error('usage: pipeline.js CAPTURE [ROUNDS] [ACTIONS]');
const wanted = new Set(actionsText.split(','));
const bytes = readFileSync(file);

async function round(): Promise<{ records: number; events: number; decodeUs: number; buildUs: number; jsonUs: number; bytes: number }> {
  const tree = new ProcessTree('bench', 65536);
  const builder = new EventBuilder(tree, new Accounts(), new ExecutableHasher({ enabled: true, maxFileBytes: 64 << 20, maxBytesPerSecond: 64 << 20 }), {
    host: { name: 'bench', kernel: '6.x', architecture: 'x64' },
    agentVersion: 'bench',
    ancestors: 8,
  });
  const t0 = process.hrtime.bigint();
  const records: DriverRecord[] = [];
  const counters = newDecodeCounters();
  for (const frame of new FrameReader().push(bytes)) if (frame.type === 2) decodeRecords(frame.payload, counters, records);
  const t1 = process.hrtime.bigint();
  // Events are built and serialised one at a time, as in the agent, so that memory behaves alike.
  let events = 0;
  let size = 0;
  let buildNs = 0n;
  let jsonNs = 0n;
  for (const r of records) {
    if (!wanted.has(r.type)) {
      builder.track(r);
      continue;
    }
    const b0 = process.hrtime.bigint();
    const built = builder.build(r);
    const e = built instanceof Promise ? await built : built;
    const b1 = process.hrtime.bigint();
    size += JSON.stringify(e).length + 1;
    jsonNs += process.hrtime.bigint() - b1;
    buildNs += b1 - b0;
    events++;
  }
  return { records: records.length, events, decodeUs: Number(t1 - t0) / 1e3, buildUs: Number(buildNs) / 1e3, jsonUs: Number(jsonNs) / 1e3, bytes: size };
}

for (let i = 0; i < Number(roundsText); i++) {
  const r = await round();
  const per = (us: number, n: number) => (us / n).toFixed(2);
  process.stdout.write(
    `round ${i}: ${r.records} records, ${r.events} events (${(r.bytes / r.events).toFixed(0)} B avg); µs per record: decode ${per(r.decodeUs, r.records)}; µs per event: build ${per(r.buildUs, r.events)}, JSON ${per(r.jsonUs, r.events)}\n`,
  );
}
