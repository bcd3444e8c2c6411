import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { setImmediate as tick, setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import type { Logger } from '../../src/runtime/log.js';
import { SpooledChannel, StreamChannel, type ChannelStats, type EventBatch, type SpooledChannelOptions } from '../../src/agent/pipeline/channels.js';
import { RotatingFile } from '../../src/runtime/rotating-file.js';
import { Spool } from '../../src/agent/spool.js';
import { HadesError } from '../../src/common/errors.js';
import { MemoryTransport, waitFor } from '../helpers/agent.js';

const root = mkdtempSync(path.join(tmpdir(), 'hades-channels-'));
after(() => rmSync(root, { recursive: true, force: true }));
let folders = 0;
const folder = (): string => path.join(root, `c${++folders}`);

/** A stream whose write callbacks the test releases; `hold` keeps them. */
class HeldWritable extends Writable {
  readonly chunks: Buffer[] = [];
  private held: (() => void)[] = [];
  hold = false;

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.chunks.push(Buffer.from(chunk));
    if (this.hold) this.held.push(callback);
    else callback();
  }

  release(): void {
    this.hold = false;
    const held = this.held;
    this.held = [];
    for (const callback of held) callback();
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

/** What a stream of lines ends as, without the last newline. */
const linesOf = (text: string): string[] => text.split('\n').filter((l) => l !== '');
const dropTotal = (s: ChannelStats): number => Object.values(s.dropped).reduce((a, b) => a + b, 0);
const line = (n: number, pad = 0): string => JSON.stringify({ n, pad: 'x'.repeat(pad) });

describe('StreamChannel', () => {
  it('batches lines and writes them once per turn of the event loop', async () => {
    const out = new HeldWritable();
    const channel = new StreamChannel('stdout', out);
    assert.equal(channel.write('{"a":1}'), true);
    assert.equal(channel.write('{"b":2}'), true);
    assert.equal(channel.write('{"c":3}'), true);
    assert.equal(out.chunks.length, 0, 'nothing is written before the turn ends');
    await tick();
    assert.equal(out.chunks.length, 1);
    assert.equal(out.text(), '{"a":1}\n{"b":2}\n{"c":3}\n');
    channel.write('{"d":4}');
    await tick();
    assert.equal(out.chunks.length, 2);
    const stats = channel.stats();
    assert.deepEqual({ ...stats, dropped: { ...stats.dropped } }, { name: 'stdout', in: 4, out: 4, bytesOut: 32, dropped: {}, queued: 0, up: true });
    await channel.close(500);
    assert.equal(out.writableEnded, true);
  });

  it('pushes back while the stream is full and calls onDrain once it drained', async () => {
    const out = new HeldWritable({ highWaterMark: 64 });
    out.hold = true;
    const channel = new StreamChannel('stdout', out);
    let drains = 0;
    channel.onDrain = () => drains++;
    const results: boolean[] = [];
    // 300 lines of 1000 bytes: more than one 256 KiB batch, so a batch is written at once.
    for (let n = 0; n < 300; n++) results.push(channel.write(line(n, 1000)));
    const firstRefusal = results.indexOf(false);
    assert.ok(firstRefusal > 0, 'a write returned false once the stream was full');
    assert.ok(results.slice(firstRefusal).every((r) => !r), 'and every write after it until the drain');
    await tick();
    assert.equal(channel.write(line(300)), false, 'still full');
    assert.equal(drains, 0);
    out.release();
    await waitFor('drain', () => drains > 0, 2000, 5);
    assert.equal(drains, 1);
    assert.equal(channel.write(line(301)), true, 'takes lines again after the drain');
    await tick();
    const got = linesOf(out.text()).map((l) => (JSON.parse(l) as { n: number }).n);
    assert.deepEqual(got, Array.from({ length: 302 }, (_, i) => i), 'nothing lost, in order');
    await channel.close(500);
    assert.equal(drains, 1);
  });

  it('drops and counts what is over the events/s limit, never pushing back', async () => {
    const out = new HeldWritable();
    const channel = new StreamChannel('stdout', out, { eventsPerSecond: 10, bytesPerSecond: 0 });
    for (let n = 0; n < 25; n++) assert.equal(channel.write(line(n)), true);
    await tick();
    assert.deepEqual(linesOf(out.text()).map((l) => (JSON.parse(l) as { n: number }).n), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const stats = channel.stats();
    assert.deepEqual(stats.dropped, { rate_limited: 15 });
    assert.equal(stats.in, 25);
    assert.equal(stats.out, 10);
    assert.equal(stats.queued, 0);
    await channel.close(500);
  });

  it('drops and counts what is over the KiB/s limit', async () => {
    const out = new HeldWritable();
    const channel = new StreamChannel('stdout', out, { eventsPerSecond: 0, bytesPerSecond: 1024 });
    // Lines of 99 bytes plus the newline: ten fit in one second's 1024 bytes.
    const l = 'y'.repeat(99);
    for (let n = 0; n < 20; n++) assert.equal(channel.write(l), true);
    await tick();
    assert.equal(linesOf(out.text()).length, 10);
    assert.deepEqual(channel.stats().dropped, { rate_limited: 10 });
    assert.equal(channel.stats().bytesOut, 1000);
    await channel.close(500);
  });

  it(
    'counts bytes, not characters, against the KiB/s limit',

    async () => {
      const out = new HeldWritable();
      const channel = new StreamChannel('stdout', out, { eventsPerSecond: 0, bytesPerSecond: 1024 });
      // 100 three-byte characters: 301 bytes per line; three lines fit in 1024 bytes.
      for (let n = 0; n < 10; n++) channel.write('€'.repeat(100));
      await tick();
      assert.ok(channel.stats().bytesOut <= 1024, `${channel.stats().bytesOut} bytes written in the first second`);
      await channel.close(500);
    },
  );

  it('counts a failing stream as down without throwing', async () => {
    const out = new Writable({
      write(_chunk, _encoding, callback) {
        callback(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
      },
    });
    const channel = new StreamChannel('stdout', out);
    channel.write(line(1));
    await tick();
    await tick();
    const stats = channel.stats();
    assert.equal(stats.up, false);
    assert.match(stats.lastError ?? '', /EPIPE/);
    assert.doesNotThrow(() => channel.write(line(2)));
    await tick();
    await channel.close(50);
  });

  it('counts lines written after close() as closed', async () => {
    const out = new HeldWritable();
    const channel = new StreamChannel('stdout', out);
    channel.write(line(1));
    await channel.close(500);
    assert.equal(out.text(), `${line(1)}\n`, 'close() flushes');
    assert.equal(channel.write(line(2)), true);
    assert.deepEqual(channel.stats().dropped, { closed: 1 });
    assert.equal(channel.stats().in, 2);
    await channel.close(500);
  });
});

describe('StreamChannel.toFile', () => {
  const logs: [string, string][] = [];
  const log = {
    error: (msg: string) => logs.push(['error', msg]),
    warn: (msg: string) => logs.push(['warn', msg]),
    info: (msg: string) => logs.push(['info', msg]),
    debug: () => undefined,
  } as unknown as Logger;

  it('writes NDJSON to the rotating file', async () => {
    const file = path.join(folder(), 'out', 'events.ndjson');
    const channel = StreamChannel.toFile('file', new RotatingFile({ file, maxBytes: 1 << 20, maxFiles: 2 }), log);
    for (let n = 0; n < 5; n++) channel.write(line(n));
    await tick();
    await tick();
    assert.deepEqual(linesOf(readFileSync(file, 'utf8')).map((l) => JSON.parse(l) as unknown), [0, 1, 2, 3, 4].map((n) => ({ n, pad: '' })));
    // The drain deadline is a limit, not a wait: a file that ends at once closes at once, and
    // leaves no timer behind to hold the process (an agent's stop took drain_s longer).
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    const t0 = Date.now();
    await channel.close(5000);
    assert.ok(Date.now() - t0 < 2000, `closed in ${Date.now() - t0} ms`);
    assert.ok(timers() <= before, `${timers()} timers after close, ${before} before`);
    const stats = channel.stats();
    assert.equal(stats.in, 5);
    assert.equal(stats.out, 5);
    assert.deepEqual(stats.dropped, {});
  });

  it('counts the lines it cannot write as write_failed, and writes again once it can', async () => {
    logs.length = 0;
    // The output's folder is a regular file: the folder cannot be created.
    const parent = folder();
    writeFileSync(parent, 'not a folder');
    const file = path.join(parent, 'events.ndjson');
    const channel = StreamChannel.toFile('file', new RotatingFile({ file, maxBytes: 1 << 20, maxFiles: 2 }), log);
    for (let n = 0; n < 3; n++) assert.doesNotThrow(() => channel.write(line(n)));
    await tick();
    await tick();
    channel.write(line(3));
    await tick();
    await tick();
    let stats = channel.stats();
    assert.deepEqual(stats.dropped, { write_failed: 4 });
    assert.equal(stats.in, 4);
    assert.equal(stats.out, 0);
    assert.equal(stats.queued, 0);
    assert.equal(logs.filter(([level]) => level === 'error').length, 1, 'a failing file is logged once, not per batch');

    rmSync(parent);
    channel.write(line(4));
    await tick();
    await tick();
    assert.deepEqual(linesOf(readFileSync(file, 'utf8')), [line(4)]);
    stats = channel.stats();
    assert.deepEqual(stats.dropped, { write_failed: 4 });
    assert.equal(stats.out, 1);
    assert.equal(stats.in, stats.out + dropTotal(stats) + stats.queued);
    assert.deepEqual(
      logs.filter(([level]) => level === 'info').map(([, msg]) => msg),
      ['file output writes again'],
    );
    await channel.close(500);
  });

  it('takes a file over (a reload): its successor writes only after the old one closed it, holding lines and pushing back meanwhile', async () => {
    const file = path.join(folder(), 'events.ndjson');
    // Small files: the old output's last lines rotate the file, and the successor's first ones.
    const rotating = () => new RotatingFile({ file, maxBytes: 64 * 1024, maxFiles: 100 });
    const old = StreamChannel.toFile('file', rotating(), log);
    for (let n = 0; n < 200; n++) old.write(line(n, 300));
    await tick();
    await tick();
    // The old output holds the lines of this turn when the successor comes.
    for (let n = 200; n < 400; n++) old.write(line(n, 300));
    let release!: () => void;
    const closed = new Promise<void>((resolve) => (release = resolve));
    const next = StreamChannel.toFile('file', rotating(), log, undefined, closed);
    let paused = false;
    let drained = 0;
    next.onDrain = () => drained++;
    let n = 400;
    for (; n < 6000 && !paused; n++) paused = !next.write(line(n, 300));
    assert.ok(paused && n < 6000, `the successor pushes back while it waits (${n})`);
    await tick();
    await tick();
    await old.close(500);
    release();
    await waitFor('the drain', () => drained > 0 || undefined, 2000, 5);
    for (const m = n + 100; n < m; n++) next.write(line(n, 300));
    await next.close(500);
    const rotated = readdirSync(path.dirname(file)).filter((f) => f !== 'events.ndjson').length;
    assert.ok(rotated >= 4, `rotations (${rotated})`);
    const names = [...Array.from({ length: rotated }, (_, i) => `${file}.${rotated - i}`), file];
    const written = names.flatMap((name) => linesOf(readFileSync(name, 'utf8'))).map((l) => (JSON.parse(l) as { n: number }).n);
    assert.deepEqual(written, range(0, n), 'every line once, in order, across the rotated files');
    assert.deepEqual({ old: old.stats().dropped, next: next.stats().dropped }, { old: {}, next: {} });
  });

  it('counts writes to a full device as write_failed without throwing', async () => {
    const channel = StreamChannel.toFile('file', new RotatingFile({ file: '/dev/full', maxBytes: 1 << 20, maxFiles: 1 }), undefined);
    for (let n = 0; n < 3; n++) channel.write(line(n));
    await tick();
    await tick();
    channel.write(line(3));
    await tick();
    await tick();
    const stats = channel.stats();
    assert.deepEqual(stats.dropped, { write_failed: 4 });
    assert.equal(stats.out, 0);
    await channel.close(500);
  });
});

/** The spool's event count of a record: its u32 header, as the agent counts them. */
const eventsOf = (data: Uint8Array): number => (data.length >= 4 ? new DataView(data.buffer, data.byteOffset, 4).getUint32(0, true) : 0);
const openSpool = (dir: string): Spool => Spool.open({ dir, maxBytes: 8 << 20, segmentBytes: 1 << 20, fsync: 'never', eventsOf });

/** The receiver double, also keeping each acknowledged batch's size and sequence numbers. */
class RecordingTransport extends MemoryTransport {
  readonly acked: { events: number; firstSeq: number; lastSeq: number }[] = [];
  readonly sentAt: number[] = [];

  override async send(batch: EventBatch): Promise<void> {
    await super.send(batch);
    this.acked.push({ events: batch.events, firstSeq: batch.firstSeq, lastSeq: batch.lastSeq });
    this.sentAt.push(performance.now());
  }
}

const fast: SpooledChannelOptions = { batchEvents: 1000, backoffMinMs: 5, backoffMaxMs: 20 };
const numbers = (t: MemoryTransport): number[] => t.events.map((e) => e['n'] as number);
const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

/** Writes `count` lines numbered from `from`, `perTurn` per turn of the event loop (one spool record per turn). */
async function writeTurns(channel: SpooledChannel, from: number, count: number, perTurn: number, pad = 0): Promise<void> {
  for (let n = from; n < from + count; n++) {
    channel.write(line(n, pad));
    if ((n - from + 1) % perTurn === 0) await tick();
  }
  await tick();
}

/** in + the spool's backlog at start = delivered + in the spool + waiting in memory + dropped. */
function assertBalanced(channel: SpooledChannel): ChannelStats {
  const s = channel.stats();
  assert.equal(s.in + (s.backlogAtStart ?? 0), s.out + (s.spool?.events ?? 0) + s.queued + dropTotal(s), JSON.stringify(s));
  return s;
}

describe('SpooledChannel', () => {
  it('delivers every event in order, with consistent stats', async () => {
    const spool = openSpool(folder());
    const transport = new RecordingTransport();
    const channel = new SpooledChannel('server', spool, transport, fast);
    channel.write(line(0));
    channel.write(line(1));
    assert.equal(channel.stats().queued, 2, 'lines wait in memory until the turn ends');
    assertBalanced(channel);
    await writeTurns(channel, 2, 98, 7);
    await waitFor('delivery', () => transport.events.length === 100, 3000, 5);
    assert.deepEqual(numbers(transport), range(0, 100));
    const s = assertBalanced(channel);
    assert.equal(s.in, 100);
    assert.equal(s.out, 100);
    assert.equal(s.queued, 0);
    assert.deepEqual(s.spool && { records: s.spool.records, events: s.spool.events }, { records: 0, events: 0 });
    assert.equal(s.up, true);
    assert.ok(s.bytesOut > 100 * line(0).length);
    // Batches follow the spool's sequence without gaps or overlaps.
    for (let i = 1; i < transport.acked.length; i++) assert.equal(transport.acked[i]!.firstSeq, transport.acked[i - 1]!.lastSeq + 1);
    await channel.close(500);
  });

  it('never sends more than batchEvents in a batch, except a single larger spool record', async () => {
    const spool = openSpool(folder());
    const transport = new RecordingTransport();
    transport.up = false;
    const channel = new SpooledChannel('server', spool, transport, { ...fast, batchEvents: 10 });
    await writeTurns(channel, 0, 90, 3);
    assert.equal(spool.stats().records, 30);
    transport.up = true;
    await waitFor('delivery', () => transport.events.length === 90, 3000, 5);
    assert.ok(transport.acked.every((b) => b.events <= 10), JSON.stringify(transport.acked));
    assert.ok(transport.acked.some((b) => b.events === 9), 'records are grouped up to the limit');

    // 25 lines in one turn make one record: it goes alone, whole.
    await writeTurns(channel, 90, 25, 25);
    await waitFor('delivery', () => transport.events.length === 115, 3000, 5);
    assert.deepEqual(transport.acked.at(-1)?.events, 25);
    assert.deepEqual(numbers(transport), range(0, 115));
    assertBalanced(channel);
    await channel.close(500);
  });

  it('keeps events in the spool while the receiver fails and delivers them, once each, after it recovers', async () => {
    const spool = openSpool(folder());
    const transport = new RecordingTransport();
    transport.up = false;
    const channel = new SpooledChannel('server', spool, transport, fast);
    await writeTurns(channel, 0, 50, 10);
    await waitFor('failed sends', () => transport.refused >= 2, 3000, 5);
    let s = assertBalanced(channel);
    assert.equal(s.up, false);
    assert.match(s.lastError ?? '', /receiver down/);
    assert.equal(s.out, 0);
    assert.equal(s.spool?.events, 50);
    assert.equal(s.spool?.records, 5);

    await writeTurns(channel, 50, 10, 5);
    transport.up = true;
    await waitFor('delivery', () => transport.events.length >= 60 && channel.stats().out === 60, 3000, 5);
    await sleep(30);
    assert.deepEqual(numbers(transport), range(0, 60), 'none lost, none twice, in order');
    s = assertBalanced(channel);
    assert.equal(s.up, true);
    assert.equal(s.lastError, undefined);
    assert.equal(s.spool?.events, 0);
    await channel.close(500);
  });

  it('drops and counts a batch the receiver refuses for good, logs it once, and delivers the rest after it', async () => {
    const spool = openSpool(folder());
    const transport = new RecordingTransport();
    // The receiver refuses every batch holding event 20 (too large for it, say), whenever sent.
    const send = transport.send.bind(transport);
    let refusals = 0;
    transport.send = async (batch: EventBatch): Promise<void> => {
      if (batch.data.toString('utf8').includes('"n":20,')) {
        refusals++;
        throw new HadesError('HADES_ERR_OUTPUT_REFUSED', 'POST collector: HTTP 413');
      }
      await send(batch);
    };
    const logged: string[] = [];
    const log = { error: (message: string) => logged.push(message), warn: () => undefined, info: () => undefined } as unknown as Logger;
    const channel = new SpooledChannel('server', spool, transport, { ...fast, log });
    await writeTurns(channel, 0, 20, 10);
    await waitFor('delivery', () => transport.events.length === 20, 3000, 5);
    await writeTurns(channel, 20, 10, 10);
    await writeTurns(channel, 30, 10, 10);
    await waitFor('delivery after the refusal', () => transport.events.length === 30, 3000, 5);
    assert.equal(refusals, 1, 'sent once, not again');
    assert.deepEqual(numbers(transport), [...range(0, 20), ...range(30, 40)]);
    const s = assertBalanced(channel);
    assert.deepEqual(s.dropped, { output_refused: 10 });
    assert.equal(s.spool?.events, 0);
    assert.equal(s.up, true);
    assert.equal(s.lastError, undefined, 'delivering again clears it: the count and the log keep the refusal');
    assert.deepEqual(logged, ['output refused a batch for good; its events are dropped and counted']);
    await channel.close(500);
  });

  it('close() with the receiver down keeps everything in the spool', async () => {
    const dir = folder();
    const spool = openSpool(dir);
    const transport = new RecordingTransport();
    transport.up = false;
    const channel = new SpooledChannel('server', spool, transport, { ...fast, backoffMinMs: 50, backoffMaxMs: 50 });
    await writeTurns(channel, 0, 20, 10);
    await waitFor('a failed send', () => transport.refused >= 1, 3000, 5);
    // Written in the same turn as close(): flushed to the spool by close().
    channel.write(line(20));
    const started = performance.now();
    await channel.close(100);
    assert.ok(performance.now() - started < 1000, 'close() keeps to its deadline');
    assert.equal(transport.events.length, 0);
    assert.equal(channel.write(line(21)), true);
    assert.equal(channel.stats().dropped['closed'], 1);

    const again = openSpool(dir);
    try {
      assert.equal(again.stats().events, 21);
      assert.equal(again.stats().records, 3);
      const lines = again
        .read(100, 1 << 20)
        .flatMap((r) => linesOf(Buffer.from(r.data.buffer, r.data.byteOffset + 4, r.data.byteLength - 4).toString('utf8')));
      assert.deepEqual(
        lines.map((l) => (JSON.parse(l) as { n: number }).n),
        range(0, 21),
      );
    } finally {
      again.close();
    }
  });

  it('counts what it finds in its spool at start as backlog, not as in, and delivers it with the rest', async () => {
    const dir = folder();
    // An earlier run: 30 events written, the receiver down, the agent stopped.
    const down = new RecordingTransport();
    down.up = false;
    const first = new SpooledChannel('server', openSpool(dir), down, { ...fast, backoffMinMs: 50, backoffMaxMs: 50 });
    await writeTurns(first, 0, 30, 10);
    assert.equal(first.stats().backlogAtStart, 0, 'an empty spool: no backlog');
    await first.close(100);

    // The next run: the receiver is up, 5 new events come in.
    const transport = new RecordingTransport();
    const channel = new SpooledChannel('server', openSpool(dir), transport, fast);
    assert.equal(channel.stats().backlogAtStart, 30);
    assertBalanced(channel);
    await writeTurns(channel, 30, 5, 5);
    await waitFor('delivery', () => channel.stats().out === 35, 3000, 5);
    assert.deepEqual(numbers(transport), range(0, 35));
    const s = assertBalanced(channel);
    assert.deepEqual({ in: s.in, backlogAtStart: s.backlogAtStart, out: s.out }, { in: 5, backlogAtStart: 30, out: 35 }, 'delivered exceeds in by the backlog, and says so');
    assert.ok(s.in + s.backlogAtStart! >= s.out);
    await channel.close(500);
  });

  it('hands its spool over (a reload): finishes the batch in flight, and its successor opens the spool after it and delivers the rest', async () => {
    const dir = folder();
    const transport = new RecordingTransport();
    transport.delayMs = 100;
    const old = new SpooledChannel('server', openSpool(dir), transport, { ...fast, batchEvents: 10 });
    await writeTurns(old, 0, 50, 10);
    await sleep(20);
    // The successor, made before the old one closes, holds what comes meanwhile in memory.
    let release!: () => void;
    const closed = new Promise<void>((resolve) => (release = resolve));
    const successor = new RecordingTransport();
    const next = new SpooledChannel('server', closed.then(() => openSpool(dir)), successor, fast);
    await writeTurns(next, 50, 10, 10);
    let s = assertBalanced(next);
    assert.deepEqual({ queued: s.queued, spool: s.spool?.events, backlog: s.backlogAtStart }, { queued: 10, spool: 0, backlog: 0 });
    const started = performance.now();
    await old.close(5000, true);
    assert.ok(performance.now() - started < 1000, 'the handover does not deliver the whole spool');
    assert.deepEqual(numbers(transport), range(0, 10), 'the batch in flight, acknowledged and committed');
    assertBalanced(old);
    release();
    assert.equal(await next.ready, undefined);
    assert.equal(next.stats().backlogAtStart, 40, 'the successor finds what the old one left');
    await waitFor('delivery', () => next.stats().out === 50, 3000, 5);
    assert.deepEqual(numbers(successor), range(10, 60), 'none lost, none twice, in order');
    s = assertBalanced(next);
    assert.deepEqual({ in: s.in, out: s.out, spool: s.spool?.events }, { in: 10, out: 50, spool: 0 });
    await next.close(500);
  });

  it('drops and counts what it holds when its spool cannot be opened', async () => {
    const transport = new RecordingTransport();
    const channel = new SpooledChannel('server', Promise.reject(new HadesError('HADES_ERR_SPOOL_IO', 'test: no spool')), transport, fast);
    await writeTurns(channel, 0, 5, 5);
    const error = await channel.ready;
    assert.equal(error?.code, 'HADES_ERR_SPOOL_IO');
    await writeTurns(channel, 5, 3, 3);
    const s = assertBalanced(channel);
    assert.deepEqual({ dropped: s.dropped, up: s.up, lastError: s.lastError }, { dropped: { spool_write_failed: 8 }, up: false, lastError: 'test: no spool' });
    await channel.close(500);
    assert.equal(transport.events.length, 0);
  });

  it('logs a spool that keeps failing writes once, not once per batch, and counts every event', async () => {
    const spool = openSpool(folder());
    spool.close(); // appends now fail
    const lines: Record<string, unknown>[] = [];
    const log = { error: (_msg: string, fields: Record<string, unknown>) => lines.push(fields), warn: () => undefined, info: () => undefined, debug: () => undefined } as unknown as Logger;
    const channel = new SpooledChannel('server', spool, new RecordingTransport(), { ...fast, log });
    await writeTurns(channel, 0, 50, 1);
    assert.equal(channel.stats().dropped['spool_write_failed'], 50);
    assert.deepEqual(lines, [{ output: 'server', code: 'HADES_ERR_SPOOL_IO', failed_batches: 1, dropped_total: 1 }], 'the first failure only, within 10 s');
    await channel.close(500);
  });

  it('close() with the receiver up delivers what was written before it', async () => {
    const dir = folder();
    const transport = new RecordingTransport();
    const channel = new SpooledChannel('server', openSpool(dir), transport, fast);
    for (let n = 0; n < 5; n++) channel.write(line(n));
    await channel.close(1000);
    assert.deepEqual(numbers(transport), range(0, 5));
    const again = openSpool(dir);
    assert.equal(again.stats().events, 0);
    again.close();
  });

  it('holds records in memory under the spool write rate and writes them later', async () => {
    const spool = openSpool(folder());
    const transport = new RecordingTransport();
    // 10 000 bytes/s, bursts of 40 000: a first record of 45 000 bytes passes and leaves the bucket in debt.
    const channel = new SpooledChannel('server', spool, transport, { ...fast, spoolWriteBytesPerSecond: 10_000 });
    const pad = 100 - line(0).length - 1;
    await writeTurns(channel, 0, 450, 450, pad);
    assert.equal(spool.stats().appended, 1);
    await waitFor('first record', () => transport.events.length === 450, 3000, 5);
    const heldAt = performance.now();
    for (let n = 450; n < 460; n++) channel.write(line(n, pad));
    await tick();
    await tick();
    assert.equal(spool.stats().appended, 1, 'the second record is held back');
    assert.equal(channel.stats().in, 460);
    await waitFor('held record', () => transport.events.length === 460, 3000, 5);
    assert.ok(performance.now() - heldAt >= 300, `written after ${Math.round(performance.now() - heldAt)} ms`);
    assert.equal(spool.stats().appended, 2);
    assert.deepEqual(numbers(transport), range(0, 460));
    assert.deepEqual(channel.stats().dropped, {});
    await channel.close(500);
  });

  it(
    'counts records held back by the spool write rate as queued',

    async () => {
      const spool = openSpool(folder());
      const transport = new RecordingTransport();
      const channel = new SpooledChannel('server', spool, transport, { ...fast, spoolWriteBytesPerSecond: 10_000 });
      const pad = 100 - line(0).length - 1;
      await writeTurns(channel, 0, 450, 450, pad);
      for (let n = 450; n < 460; n++) channel.write(line(n, pad));
      await tick();
      await tick();
      try {
        assertBalanced(channel);
      } finally {
        await channel.close(500);
      }
    },
  );

  it('counts as dropped only what the spool dropped and the receiver did not take: a batch in flight when its segment goes is delivered', async () => {
    // A small spool, a slow receiver: while the first batch waits for its acknowledgement, the
    // spool fills and drops its oldest segment, the one the batch was read from.
    const spool = Spool.open({ dir: folder(), maxBytes: 64 * 1024, segmentBytes: 16 * 1024, fsync: 'never', eventsOf });
    const transport = new RecordingTransport();
    transport.delayMs = 200;
    const channel = new SpooledChannel('server', spool, transport, { ...fast, batchEvents: 10 });
    await writeTurns(channel, 0, 10, 10, 200);
    await sleep(20);
    await writeTurns(channel, 10, 600, 10, 200);
    assert.ok(spool.stats().droppedEvents > 0, 'the spool dropped its oldest segments');
    assert.equal(transport.acked.length, 0, 'the first batch is still in flight');
    // Meanwhile its events are neither lost nor delivered: held in memory (queued), and the
    // counters balance. The drop count never goes back (agent_drop reports its increases).
    const during = assertBalanced(channel);
    assert.equal(during.queued, 10);
    await waitFor('the spool emptied', () => channel.stats().spool?.events === 0 && transport.acked.length > 1, 10_000, 5);
    assert.ok(channel.stats().dropped['spool_full']! >= during.dropped['spool_full']!);
    assert.deepEqual(numbers(transport).slice(0, 10), range(0, 10), 'the batch in flight was delivered');
    const s = assertBalanced(channel);
    assert.equal(s.out, transport.events.length);
    assert.equal(s.dropped['spool_full'], 610 - transport.events.length, 'dropped: exactly what never reached the receiver');
    await channel.close(500);
  });

  it('counts a record larger than the whole spool once (it was dropped as spool_full and as spool_write_failed)', async () => {
    const spool = Spool.open({ dir: folder(), maxBytes: 16 * 1024, segmentBytes: 4096, fsync: 'never', eventsOf });
    const transport = new RecordingTransport();
    const channel = new SpooledChannel('server', spool, transport, fast);
    // One turn of 100 lines of 200 bytes: one record of 20 KB, more than the spool holds.
    await writeTurns(channel, 0, 100, 100, 200);
    await writeTurns(channel, 100, 5, 5);
    await waitFor('delivery', () => channel.stats().out === 5, 3000, 5);
    const s = assertBalanced(channel);
    assert.equal(dropTotal(s), 100, JSON.stringify(s.dropped));
    await channel.close(500);
  });

  it('sends slower, without dropping, over its events/s limit', async () => {
    const spool = openSpool(folder());
    const transport = new RecordingTransport();
    const channel = new SpooledChannel('server', spool, transport, { ...fast, rate: { eventsPerSecond: 100, bytesPerSecond: 0 } });
    // 150 events in one batch pass on a full bucket and leave it 50 in debt: the next 10 wait ~600 ms.
    await writeTurns(channel, 0, 150, 150);
    await waitFor('first batch', () => transport.events.length === 150, 3000, 5);
    const after = performance.now();
    await writeTurns(channel, 150, 10, 10);
    await waitFor('second batch', () => transport.events.length === 160, 3000, 5);
    assert.ok(transport.sentAt.at(-1)! - after >= 300, `sent after ${Math.round(transport.sentAt.at(-1)! - after)} ms`);
    assert.deepEqual(channel.stats().dropped, {});
    assertBalanced(channel);
    await channel.close(500);
  });
});
