/**
 * The ingest worker (src/server/ingest/client.ts and worker.ts), with its real thread: batches
 * prepared and their kept events run through the rules loaded there, a bad rule edit that leaves
 * the running rules in place, a thread that dies and comes back with the last rules that loaded,
 * close(), and the admission budget (PIPELINE_BYTES) that keeps a backlog from being parsed all
 * at once ahead of the store.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { gzipSync } from 'node:zlib';
import { HadesError } from '../../src/common/errors.js';
import { exampleEvent, type EventAction } from '../../src/common/events/index.js';
import type { RuleFile } from '../../src/rules/index.js';
import { Logger } from '../../src/runtime/log.js';
import { batchSeq } from '../../src/server/gateway.js';
import { IngestWorker, PIPELINE_BYTES, storedOnly } from '../../src/server/ingest/client.js';
import { MAX_BATCH_BYTES } from '../../src/server/ingest/prepare.js';
import type { DetectReply } from '../../src/server/ingest/protocol.js';

const T0 = Date.UTC(2026, 10, 28, 8, 0, 0);
const NOW = Date.UTC(2026, 10, 28, 12, 0, 0);
const AGENT = 'ag_worker_test_01';
const MiB = 1024 * 1024;

const quiet = (): Logger => new Logger({ level: 'error', maxBytes: 1 << 20, maxFiles: 1, stream: new PassThrough() });

const RULES: RuleFile = {
  name: 'test.yaml',
  text: `
rules:
  - id: shell_under_web
    title: Shell under a web server
    severity: high
    tags: [attack.t1505.003]
    condition: event.action = exec and process.name in (sh, bash) and process.parent.name = nginx
    output: "shell {process.executable} under {process.parent.name}"
  - id: curl_seen
    title: curl ran
    severity: low
    condition: event.action = exec and process.name = curl
    output: "curl on {host.name}"
  - id: many_curls
    type: threshold
    title: Three curls
    severity: medium
    condition: event.action = exec and process.name = curl
    count: 3
    within: 60s
    by: host.name
`,
};
const OTHER_RULES: RuleFile = {
  name: 'other.yaml',
  text: `
rules:
  - id: connect_seen
    title: A connection
    severity: low
    condition: event.action = connect
`,
};
/** A rule that does not compile: a load of it alone has an error. */
const BROKEN: RuleFile = {
  name: 'broken.yaml',
  text: `
rules:
  - id: broken
    title: Broken
    severity: high
    condition: event.action = exec and (
`,
};

let ids = 0;
function ev(action: EventAction, offset: number, change: (e: any) => void = () => undefined): Record<string, unknown> {
  const e: any = structuredClone(exampleEvent(action));
  e['@timestamp'] = new Date(T0 + offset).toISOString();
  e.event.id = `w-${++ids}`;
  change(e);
  return e;
}
const curl = (offset: number) => ev('exec', offset); // the example exec is curl
const webShell = (offset: number) =>
  ev('exec', offset, (e) => {
    e.process.name = 'bash';
    e.process.executable = '/usr/bin/bash';
    e.process.parent.name = 'nginx';
  });
const quietExec = (offset: number) => ev('exec', offset, (e) => (e.process.name = 'ls'));

const encoder = new TextEncoder();
const ndjson = (events: readonly Record<string, unknown>[]): Uint8Array => encoder.encode(events.map((e) => JSON.stringify(e)).join('\n') + '\n');
/** Bytes of one padded line of heavy(): under the 4 MiB an event may be (MAX_EVENT_BYTES). */
const HEAVY_LINE = 2 * 1024 * 1024;
/** How many events heavy(bytes) holds. */
const heavyEvents = (bytes: number): number => Math.ceil(bytes / HEAVY_LINE);
/**
 * Valid events padded with spaces (JSON allows them) to `bytes` in all, each line at most
 * HEAVY_LINE: a batch that weighs that much and costs little to check.
 */
function heavy(bytes: number): Uint8Array {
  const lines: string[] = [];
  for (let left = bytes; left > 0; left -= HEAVY_LINE) {
    const line = JSON.stringify(curl(0));
    lines.push(line + ' '.repeat(Math.max(0, Math.min(left, HEAVY_LINE) - line.length - 1)) + '\n');
  }
  return encoder.encode(lines.join(''));
}

const workerError = (e: unknown): boolean => {
  assert.ok(e instanceof HadesError, `expected a HadesError, got ${String(e)}`);
  assert.equal(e.code, 'HADES_ERR_INGEST_WORKER', e.message);
  return true;
};

/** Whether a promise has settled by the time the thread could have answered twice over. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  await sleep(50);
  return done;
}

/** Waits until the thread answers again after a crash. */
async function back(worker: IngestWorker): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      await worker.ruleStats();
      return;
    } catch (error) {
      workerError(error);
      if (Date.now() > deadline) throw error;
      await sleep(20);
    }
  }
}

const workers: IngestWorker[] = [];
function start(): IngestWorker {
  const worker = new IngestWorker(quiet());
  workers.push(worker);
  return worker;
}
after(async () => {
  for (const w of workers) await w.close();
});

describe('ingest worker: prepare and detect', () => {
  // One thread for these (each loads the rules again, which starts their counters anew).
  let worker: IngestWorker;
  before(() => {
    worker = start();
  });

  it('runs the events of a prepared batch through the loaded rules; each match names its event by its index in the batch', async () => {
    const loaded = await worker.load([RULES]);
    assert.equal(loaded.applied, true);
    assert.deepEqual(loaded.problems.filter((p) => p.severity === 'error'), []);
    assert.deepEqual(loaded.rules.map((r) => r.id).sort(), ['curl_seen', 'many_curls', 'shell_under_web']);

    const events = [curl(0), webShell(1), quietExec(2), curl(3), curl(4)];
    const prepared = await worker.prepare(AGENT, ndjson(events), undefined, NOW, true);
    assert.equal(prepared.refused, undefined);
    assert.equal(prepared.rejected, 0);
    assert.equal(prepared.rows.length, 5);
    assert.equal(prepared.rows[0]![3], AGENT);
    assert.equal(JSON.parse(prepared.rows[0]![14]).event.ingested, new Date(NOW).toISOString());
    assert.equal(worker.stats.heldBytes, ndjson(events).byteLength, 'the kept batch is counted until its detection');

    const found = await worker.detect(prepared.id, null);
    assert.equal(found.evaluated, 5);
    assert.deepEqual(found.errors, []);
    const byRule = (id: string) => found.matches.filter((m) => m.rule.id === id);
    assert.deepEqual(byRule('curl_seen').map((m) => m.index), [0, 3, 4]);
    assert.deepEqual(byRule('shell_under_web').map((m) => m.index), [1]);
    const shell = byRule('shell_under_web')[0]!;
    assert.equal(shell.output, 'shell /usr/bin/bash under nginx');
    assert.equal(shell.severity, 'high');
    assert.deepEqual(shell.tags, ['attack.t1505.003']);
    assert.equal(byRule('curl_seen')[0]!.output, 'curl on web-01');
    assert.equal('event' in shell, false, 'the event stays in the thread: the main thread has its stored copy');
    // The third curl completes the threshold: the match carries its correlation.
    const threshold = byRule('many_curls');
    assert.deepEqual(threshold.map((m) => m.index), [4]);
    assert.equal(threshold[0]!.correlation?.count, 3);
    assert.equal(worker.stats.heldBytes, 0);

    // The kept events went with their detection.
    assert.deepEqual(await worker.detect(prepared.id, null), { evaluated: 0, matches: [], errors: [] });

    const stats = new Map((await worker.ruleStats()).map((s) => [s.id, s]));
    assert.equal(stats.get('curl_seen')?.matches, 3);
    assert.equal(stats.get('shell_under_web')?.matches, 1);
    assert.equal(stats.get('many_curls')?.matches, 1);
    assert.ok((stats.get('curl_seen')?.evaluations ?? 0) >= 3, 'the curls were evaluated');
  });

  it('evaluates only the events at `stored` (the others were duplicates); indexes past the batch are skipped', async () => {
    await worker.load([RULES]);
    const prepared = await worker.prepare(AGENT, ndjson([curl(0), webShell(1), curl(2)]), undefined, NOW, true);
    const found = await worker.detect(prepared.id, [1, 2, 7]);
    assert.equal(found.evaluated, 2);
    assert.deepEqual(found.matches.map((m) => [m.rule.id, m.index]).sort(), [['curl_seen', 2], ['shell_under_web', 1]]);
    const stats = new Map((await worker.ruleStats()).map((s) => [s.id, s]));
    assert.equal(stats.get('curl_seen')?.matches, 1, 'the curl at 0 was not run through the rules');
  });

  it('a new batch (its first sequence number after the agent\'s last matched) goes through the rules as it is prepared, and holds its room until release', async () => {
    await worker.load([RULES]);
    const agent = 'ag_worker_test_seq1';
    const text = ndjson([curl(0), webShell(1), curl(2), curl(3)]);
    const prepared = await worker.prepare(agent, text, undefined, NOW, true, undefined, { first: 1, last: 4 });
    assert.ok(prepared.detection, 'matched as prepared');
    assert.equal(prepared.detection.evaluated, 4);
    assert.deepEqual(prepared.detection.errors, []);
    assert.deepEqual(prepared.detection.matches.map((m) => [m.rule.id, m.index]).sort(), [['curl_seen', 0], ['curl_seen', 2], ['curl_seen', 3], ['many_curls', 3], ['shell_under_web', 1]]);
    assert.equal(worker.stats.heldBytes, text.byteLength, 'its rows wait for the store: the room stays held');
    assert.deepEqual(await worker.detect(prepared.id, null), { evaluated: 0, matches: [], errors: [] }, 'nothing kept in the thread');
    // detect() released it; a batch matched as prepared is released so.
    const next = await worker.prepare(agent, ndjson([webShell(4)]), undefined, NOW, true, undefined, { first: 5, last: 5 });
    assert.deepEqual(next.detection?.matches.map((m) => [m.rule.id, m.index]), [['shell_under_web', 0]]);
    assert.equal(worker.stats.heldBytes, ndjson([webShell(4)]).byteLength);
    worker.release(next.id);
    assert.equal(worker.stats.heldBytes, 0);
  });

  it('a batch that begins at or before what its agent\'s batches reached may be one sent again: kept, and matched only at the indexes the store took', async () => {
    await worker.load([RULES]);
    const agent = 'ag_worker_test_seq2';
    const first = await worker.prepare(agent, ndjson([curl(0), curl(1)]), undefined, NOW, true, undefined, { first: 10, last: 11 });
    assert.equal(first.detection?.matches.length, 2);
    worker.release(first.id);
    // Sent again (its Ack was lost), with one event more: the first two are duplicates in the store.
    const again = await worker.prepare(agent, ndjson([curl(0), curl(1), curl(2)]), undefined, NOW, true, undefined, { first: 10, last: 12 });
    assert.equal(again.detection, undefined, 'not matched as prepared');
    assert.ok(worker.stats.heldBytes > 0, 'kept for detect');
    const found = await worker.detect(again.id, [2]);
    assert.equal(found.evaluated, 1);
    // Two curls before, one now: the threshold of three is reached once, by the new event.
    assert.deepEqual(found.matches.map((m) => [m.rule.id, m.index]).sort(), [['curl_seen', 2], ['many_curls', 2]]);
    // Another agent's numbers are its own; the next batch of this one is new again.
    const other = await worker.prepare('ag_worker_test_seq3', ndjson([quietExec(0)]), undefined, NOW, true, undefined, { first: 1, last: 1 });
    assert.ok(other.detection);
    worker.release(other.id);
    const later = await worker.prepare(agent, ndjson([quietExec(3)]), undefined, NOW, true, undefined, { first: 13, last: 13 });
    assert.ok(later.detection);
    worker.release(later.id);
    // Without numbers (or without keep) nothing is matched as prepared.
    const unnumbered = await worker.prepare(agent, ndjson([curl(4)]), undefined, NOW, true);
    assert.equal(unnumbered.detection, undefined);
    worker.forget(unnumbered.id);
    const notKept = await worker.prepare(agent, ndjson([curl(5)]), undefined, NOW, false, undefined, { first: 20, last: 20 });
    assert.equal(notKept.detection, undefined);
    assert.equal(worker.stats.heldBytes, 0);
  });

  it('forget drops the kept events; without keep nothing is kept or held; a refused batch holds nothing', async () => {
    await worker.load([RULES]);
    const forgotten = await worker.prepare(AGENT, ndjson([curl(0), webShell(1)]), undefined, NOW, true);
    assert.ok(worker.stats.heldBytes > 0);
    worker.forget(forgotten.id);
    assert.equal(worker.stats.heldBytes, 0, 'released at once');
    assert.deepEqual(await worker.detect(forgotten.id, null), { evaluated: 0, matches: [], errors: [] });

    const notKept = await worker.prepare(AGENT, ndjson([webShell(0)]), undefined, NOW, false);
    assert.equal(notKept.rows.length, 1);
    assert.equal(worker.stats.heldBytes, 0);
    assert.equal((await worker.detect(notKept.id, null)).evaluated, 0);

    const refused = await worker.prepare(AGENT, encoder.encode('garbage\n[1]\n'), undefined, NOW, true);
    assert.equal(refused.refused?.code, 'HADES_ERR_STREAM_MESSAGE_INVALID');
    assert.equal(refused.rejected, 2);
    assert.deepEqual(refused.rows, []);
    assert.equal(worker.stats.heldBytes, 0);

    const mixed = await worker.prepare(AGENT, encoder.encode(`not json\n${JSON.stringify(webShell(2))}\n`), { owner: 'team-web' }, NOW, true);
    assert.equal(mixed.rejected, 1);
    assert.deepEqual(JSON.parse(mixed.rows[0]![14]).hades.cmdb, { owner: 'team-web' }, 'the CMDB metadata travels to the thread');
    const found = await worker.detect(mixed.id, null);
    assert.deepEqual(found.matches.map((m) => [m.rule.id, m.index]), [['shell_under_web', 0]], 'indexes count the valid events only');
    assert.equal(worker.stats.pending, 0);
  });

  it('inflates a compressed batch on the thread, let in and held at the size it says; one that lies about it is refused and holds nothing', async () => {
    await worker.load([RULES]);
    const text = ndjson([curl(0), webShell(1)]);
    const prepared = await worker.prepare(AGENT, gzipSync(text), undefined, NOW, true, text.byteLength);
    assert.equal(prepared.refused, undefined);
    assert.equal(prepared.bytes, text.byteLength);
    assert.equal(prepared.rows.length, 2);
    assert.equal(worker.stats.heldBytes, text.byteLength, 'held at its inflated size');
    assert.deepEqual((await worker.detect(prepared.id, null)).matches.map((m) => m.rule.id).sort(), ['curl_seen', 'shell_under_web']);
    assert.equal(worker.stats.heldBytes, 0);
    const bad = await worker.prepare(AGENT, encoder.encode('not gzip'), undefined, NOW, true, 10);
    assert.equal(bad.refused?.code, 'HADES_ERR_STREAM_MESSAGE_INVALID');
    assert.equal(worker.stats.heldBytes, 0);
    // Very repetitive lines that say they are small: stopped there, never held at what they would inflate to.
    const lying = await worker.prepare(AGENT, gzipSync(Buffer.from(`${JSON.stringify(curl(5))}\n`.repeat(20_000))), undefined, NOW, true, 1000);
    assert.equal(lying.refused?.code, 'HADES_ERR_STREAM_MESSAGE_INVALID');
    assert.equal(worker.stats.heldBytes, 0);
  });

  it('lets compressed batches in by the size they say, so the budget holds however well they compress', async () => {
    await worker.load([RULES]);
    // Batches of the largest size a batch may say, a few KB each once compressed: the budget
    // takes PIPELINE_BYTES / MAX_BATCH_BYTES of them, and the next waits for room.
    const padded = Buffer.concat([ndjson([curl(0)]), Buffer.alloc(MAX_BATCH_BYTES - ndjson([curl(0)]).byteLength, 0x0a)]);
    const gz = gzipSync(padded);
    const fit = PIPELINE_BYTES / MAX_BATCH_BYTES;
    const held = await Promise.all(Array.from({ length: fit }, () => worker.prepare(AGENT, gz, undefined, NOW, true, MAX_BATCH_BYTES)));
    assert.deepEqual(held.map((p) => p.refused), held.map(() => undefined));
    assert.equal(worker.stats.heldBytes, PIPELINE_BYTES);
    let next: Awaited<ReturnType<IngestWorker['prepare']>> | undefined;
    const waiting = worker.prepare(AGENT, gz, undefined, NOW, true, MAX_BATCH_BYTES).then((r) => (next = r));
    await sleep(50);
    assert.equal(next, undefined, 'held back: no room for what it says it inflates to');
    assert.equal(worker.stats.waiting, 1);
    worker.forget(held[0]!.id);
    await waiting;
    assert.equal(worker.stats.heldBytes, PIPELINE_BYTES);
    for (const p of [...held.slice(1), next!]) worker.forget(p.id);
    assert.equal(worker.stats.heldBytes, 0);
  });
});

describe('ingest worker: rules', () => {
  it('a load with an error keeps the running rules (applied false); with no rules running yet it applies what compiled', async () => {
    const worker = start();
    // No rules yet: nothing is detected.
    const early = await worker.prepare(AGENT, ndjson([webShell(0)]), undefined, NOW, true);
    assert.deepEqual(await worker.detect(early.id, null), { evaluated: 0, matches: [], errors: [] });
    assert.deepEqual(await worker.ruleStats(), []);

    // Nothing runs yet: what compiled runs, with the problems reported.
    const first = await worker.load([OTHER_RULES, BROKEN]);
    assert.equal(first.applied, true);
    assert.ok(first.problems.some((p) => p.severity === 'error' && p.file === 'broken.yaml'));
    assert.deepEqual(first.rules.map((r) => r.id), ['connect_seen']);

    const good = await worker.load([RULES]);
    assert.equal(good.applied, true);

    const bad = await worker.load([OTHER_RULES, BROKEN]);
    assert.equal(bad.applied, false);
    assert.ok(bad.problems.some((p) => p.severity === 'error'));
    assert.deepEqual(bad.rules.map((r) => r.id).sort(), ['curl_seen', 'many_curls', 'shell_under_web'], 'the rules that run are reported');

    const prepared = await worker.prepare(AGENT, ndjson([webShell(0), ev('connect', 1)]), undefined, NOW, true);
    const found = await worker.detect(prepared.id, null);
    assert.deepEqual(found.matches.map((m) => m.rule.id), ['shell_under_web'], 'the running rules stay; the failed edit does not run');
    assert.deepEqual((await worker.ruleStats()).map((s) => s.id).sort(), ['curl_seen', 'many_curls', 'shell_under_web']);
  });
});

describe('ingest worker: a thread that dies', () => {
  it('rejects what was pending with HADES_ERR_INGEST_WORKER, comes back, and loads the last rules that applied again', async () => {
    const worker = start();
    assert.equal((await worker.load([RULES])).applied, true);
    assert.equal((await worker.load([BROKEN])).applied, false, 'not the rules to load again');
    const kept = await worker.prepare(AGENT, ndjson([webShell(0)]), undefined, NOW, true);
    assert.ok(worker.stats.heldBytes > 0);

    // The request is posted after the thread was told to end: it can never be answered.
    const pending = assert.rejects(worker.prepare(AGENT, ndjson([webShell(1)]), undefined, NOW, true), workerError);
    await worker.crashForTest();
    await pending;
    assert.equal(worker.stats.restarts, 1);
    assert.equal(worker.stats.pending, 0);
    assert.equal(worker.stats.heldBytes, 0, 'what the dead thread held is released');
    // Until the new thread runs, requests are refused the same way (the agent sends its batch again).
    await assert.rejects(worker.prepare(AGENT, ndjson([webShell(2)]), undefined, NOW, true), workerError);
    assert.equal(worker.stats.heldBytes, 0);

    await back(worker);
    assert.equal(worker.stats.restarts, 1);
    // The events kept by the dead thread are gone.
    assert.equal((await worker.detect(kept.id, null)).evaluated, 0);
    // The rules that applied last run again (counters start anew).
    const stats = await worker.ruleStats();
    assert.deepEqual(stats.map((s) => s.id).sort(), ['curl_seen', 'many_curls', 'shell_under_web']);
    assert.ok(stats.every((s) => s.matches === 0));
    const again = await worker.prepare(AGENT, ndjson([quietExec(3), webShell(4)]), undefined, NOW, true);
    const found = await worker.detect(again.id, null);
    assert.deepEqual(found.matches.map((m) => [m.rule.id, m.index]), [['shell_under_web', 1]]);
  });
});

describe('ingest worker: close', () => {
  // A timeout: a request that waits for ever is the failure to catch.
  it('rejects pending and new requests, and batches waiting for admission, with HADES_ERR_INGEST_WORKER', { timeout: 5000 }, async () => {
    const worker = start();
    await worker.load([RULES]);
    const held = await worker.prepare(AGENT, heavy(PIPELINE_BYTES - 1024), undefined, NOW, true);
    assert.equal(held.rows.length, heavyEvents(PIPELINE_BYTES - 1024));
    const waiting = assert.rejects(worker.prepare(AGENT, heavy(4096), undefined, NOW, true), workerError);
    assert.equal(worker.stats.waiting, 1);
    const pending = assert.rejects(worker.ruleStats(), workerError);
    assert.equal(worker.stats.pending, 1);
    await worker.close();
    await waiting;
    await pending;
    assert.equal(worker.stats.waiting, 0);
    assert.equal(worker.stats.pending, 0);
    // The held batch's bytes are still counted: a batch that does not fit beside them is refused
    // too, not queued for a room that would never come.
    await assert.rejects(worker.prepare(AGENT, heavy(4096), undefined, NOW, true), workerError);
    await assert.rejects(worker.prepare(AGENT, ndjson([curl(0)]), undefined, NOW, true), workerError);
    assert.equal(worker.stats.waiting, 0);
    await assert.rejects(worker.load([RULES]), workerError);
    await assert.rejects(worker.ruleStats(), workerError);
    await assert.rejects(worker.detect(held.id, null), workerError);
    worker.forget(held.id); // no thread: nothing to drop, and no unhandled rejection
    await worker.close(); // twice is harmless
    assert.equal(worker.stats.restarts, 0, 'a closed worker is not started again');
  });
});

describe('ingest worker: the admission budget (PIPELINE_BYTES)', () => {
  it('holds batches beyond the budget, in arrival order, until earlier ones are detected or forgotten', async () => {
    const worker = start();
    await worker.load([RULES]);
    const big = 20 * MiB;
    const a = await worker.prepare(AGENT, heavy(big), undefined, NOW, true);
    assert.equal(worker.stats.heldBytes, big);

    // B does not fit beside A; C would, but comes after B.
    const b = worker.prepare(AGENT, heavy(big), undefined, NOW, true);
    const small = ndjson([webShell(0)]);
    const c = worker.prepare(AGENT, small, undefined, NOW, true);
    assert.equal(worker.stats.waiting, 2);
    assert.equal(await settled(b), false);
    assert.equal(await settled(c), false, 'no overtaking: C waits behind B');
    assert.equal(worker.stats.heldBytes, big);

    const found = await worker.detect(a.id, null);
    assert.equal(found.evaluated, heavyEvents(big));
    const [bReply, cReply] = await Promise.all([b, c]);
    assert.equal(worker.stats.waiting, 0);
    assert.equal(worker.stats.heldBytes, big + small.byteLength);

    // D waits for room again, and comes in when B is forgotten.
    const d = worker.prepare(AGENT, heavy(big), undefined, NOW, true);
    assert.equal(worker.stats.waiting, 1);
    assert.equal(await settled(d), false);
    worker.forget(bReply.id);
    const dReply = await d;
    assert.equal(worker.stats.waiting, 0);
    assert.equal(worker.stats.heldBytes, big + small.byteLength);

    // What was let in is still detected as usual.
    assert.deepEqual((await worker.detect(cReply.id, null)).matches.map((m) => [m.rule.id, m.index]), [['shell_under_web', 0]]);
    assert.equal((await worker.detect(dReply.id, null)).evaluated, heavyEvents(big));
    assert.equal(worker.stats.heldBytes, 0);
  });

  it('lets a single batch larger than the budget through when nothing is held, and holds the next until it is done', async () => {
    const worker = start();
    const huge = PIPELINE_BYTES + MiB;
    const first = await worker.prepare(AGENT, heavy(huge), undefined, NOW, true);
    assert.equal(first.rows.length, heavyEvents(huge));
    assert.equal(worker.stats.heldBytes, huge);
    const next = worker.prepare(AGENT, ndjson([curl(0)]), undefined, NOW, true);
    assert.equal(worker.stats.waiting, 1);
    assert.equal(await settled(next), false);
    worker.forget(first.id);
    const nextReply = await next;
    assert.equal(nextReply.rows.length, 1);
    worker.forget(nextReply.id);
    await worker.ruleStats(); // replies come in order: the forgets are answered
    assert.deepEqual(worker.stats, { restarts: 0, pending: 0, heldBytes: 0, waiting: 0 });
  });

  it('a batch waiting for room when the thread dies is refused like the others (the agent sends it again)', async () => {
    const worker = start();
    await worker.prepare(AGENT, heavy(20 * MiB), undefined, NOW, true);
    const waiting = assert.rejects(worker.prepare(AGENT, heavy(20 * MiB), undefined, NOW, true), workerError);
    assert.equal(worker.stats.waiting, 1);
    await worker.crashForTest();
    await waiting;
    assert.deepEqual({ ...worker.stats, pending: 0 }, { restarts: 1, pending: 0, heldBytes: 0, waiting: 0 });
    await back(worker);
    const batch = ndjson([curl(0)]);
    const later = await worker.prepare(AGENT, batch, undefined, NOW, true);
    assert.equal(worker.stats.heldBytes, batch.byteLength);
    worker.forget(later.id);
  });
});

describe('ingest worker: a batch whose kept events are gone', () => {
  it('is run through the rules from its rows when the thread that kept it died before its detection', async () => {
    const worker = start();
    assert.equal((await worker.load([RULES])).applied, true);
    const events = [quietExec(0), webShell(1), curl(2)];
    const kept = await worker.prepare(AGENT, ndjson(events), undefined, NOW, true);
    // The batch is stored (and acknowledged) on the main thread meanwhile; then the thread dies.
    await worker.crashForTest();
    await back(worker);
    const found = await worker.detect(kept.id, null, kept.rows);
    assert.equal(found.evaluated, 3, 'the stored events still go through the rules');
    assert.deepEqual(found.matches.map((m) => [m.rule.id, m.index]).sort(), [['curl_seen', 2], ['shell_under_web', 1]]);
    // Only the stored ones, when some were duplicates; indexes stay those of the batch.
    const again = await worker.prepare(AGENT, ndjson([webShell(3), quietExec(4), curl(5)]), undefined, NOW, true);
    await worker.crashForTest();
    await back(worker);
    const some = await worker.detect(again.id, [1, 2], again.rows);
    assert.equal(some.evaluated, 2);
    assert.deepEqual(some.matches.map((m) => [m.rule.id, m.index]), [['curl_seen', 2]]);
    assert.equal(worker.stats.heldBytes, 0);
  });

  it('match with retry: a thread that dies meanwhile, or is down, hands the stored events to the next', async () => {
    const worker = start();
    assert.equal((await worker.load([RULES])).applied, true);
    const lines = [JSON.stringify(webShell(0)), JSON.stringify(quietExec(1))];
    const asked = worker.match(lines, { retry: true });
    await worker.crashForTest();
    const found = await asked;
    assert.equal(found.evaluated, 2);
    assert.deepEqual(found.matches.map((m) => [m.rule.id, m.index]), [['shell_under_web', 0]]);
    // Without retry, the caller hears of the crash (asked once the thread is told to end: never answered).
    const crashed = worker.crashForTest();
    const plain = assert.rejects(worker.match(lines), workerError);
    await crashed;
    await plain;
    assert.equal(worker.stats.restarts, 2);
  });

  it('waits for the thread started again when the detection is asked while it is down', async () => {
    const worker = start();
    assert.equal((await worker.load([RULES])).applied, true);
    const kept = await worker.prepare(AGENT, ndjson([webShell(0), quietExec(1)]), undefined, NOW, true);
    await worker.crashForTest();
    // Asked during the restart delay: no error, the answer comes from the new thread.
    const found = await worker.detect(kept.id, null, kept.rows);
    assert.equal(found.evaluated, 2);
    assert.deepEqual(found.matches.map((m) => [m.rule.id, m.index]), [['shell_under_web', 0]]);
    assert.equal(worker.stats.restarts, 1);
  });
});

describe('a batch\'s numbers and its matches made as prepared', () => {
  it('batchSeq takes whole numbers from 1 in order, as the gRPC loader gives them (strings), and nothing else', () => {
    assert.deepEqual(batchSeq({ first_seq: '1', last_seq: '500' }), { first: 1, last: 500 });
    assert.deepEqual(batchSeq({ first_seq: 7, last_seq: 7 }), { first: 7, last: 7 });
    for (const [first_seq, last_seq] of [
      ['0', '0'], // the default of a message without them
      ['5', '4'],
      ['x', '9'],
      ['1.5', '2'],
      ['-1', '3'],
      ['9007199254740993', '9007199254740993'], // past what a double holds exactly
    ]) {
      assert.equal(batchSeq({ first_seq: first_seq!, last_seq: last_seq! }), undefined, `${first_seq}..${last_seq}`);
    }
  });

  it('storedOnly leaves out what the duplicates matched, and counts the events the store took', () => {
    const rule = { id: 'r', title: 'R', severity: 'low' as const, tags: [], type: 'rule' as const };
    const match = (index: number) => ({ rule, output: `at ${index}`, severity: 'low' as const, tags: [], index });
    // Only the indexes matter here: the rest of a match is passed through as it is.
    const matched = { evaluated: 4, errors: ['one'], matches: [match(0), match(2), match(3)] } as unknown as DetectReply;
    assert.equal(storedOnly(matched, null), matched, 'everything stored: as matched');
    assert.deepEqual(storedOnly(matched, [1, 3]), { evaluated: 2, errors: ['one'], matches: [match(3)] } as unknown as DetectReply);
    assert.deepEqual(storedOnly(matched, []), { evaluated: 0, errors: ['one'], matches: [] });
  });
});
