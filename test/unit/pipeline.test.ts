import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ChannelStats, OutputChannel } from '../../src/agent/pipeline/channels.js';
import { DropReporter, type DropCount } from '../../src/agent/pipeline/drops.js';
import { Pipeline } from '../../src/agent/pipeline/pipeline.js';
import { EventStamp } from '../../src/agent/pipeline/stamp.js';
import { Sequencer } from '../../src/agent/sequencer.js';
import { serializeEvent } from '../../src/agent/serialize.js';
import { checkEvent, eventKinds, type HadesEvent } from '../../src/common/events/index.js';

/** An output the test steers: `accept` is what write() answers; drain() plays the stream draining. */
class FakeChannel implements OutputChannel {
  readonly lines: string[] = [];
  accept = true;
  closed = 0;
  onDrain: () => void = () => undefined;

  constructor(readonly name: string) {}

  write(line: string): boolean {
    this.lines.push(line);
    return this.accept;
  }

  drain(): void {
    this.accept = true;
    this.onDrain();
  }

  stats(): ChannelStats {
    return { name: this.name, in: this.lines.length, out: this.lines.length, bytesOut: 0, dropped: {}, queued: 0, up: true };
  }

  async close(): Promise<void> {
    this.closed++;
  }
}

const host = { name: 'web-01', hostname: 'web-01', architecture: 'x64', os: { type: 'linux', kernel: '6.1.0' } };
const stamp = new EventStamp(new Sequencer(), host, '1.2.3');
const drop = (n = 1): HadesEvent => stamp.complete('agent_drop', { hades: { drops: { component: 'kernel', reason: 'ringbuf_full', count: n, since: '2026-01-01T00:00:00.000Z' } } });
const inventory = (): HadesEvent => stamp.complete('inventory_change', { hades: { inventory: { table: 'crontab', change: 'added', row: { user: 'root' } } } });

describe('Pipeline', () => {
  it('hands every channel the same line, serialised once', () => {
    const channels = [new FakeChannel('a'), new FakeChannel('b'), new FakeChannel('c')];
    const pipeline = new Pipeline(channels);
    let serialisations = 0;
    const event = drop();
    // A value JSON.stringify asks for once per serialisation.
    (event as unknown as { hades: Record<string, unknown> }).hades['probe'] = {
      toJSON: () => {
        serialisations++;
        return 'p';
      },
    };
    assert.equal(pipeline.push(event), true);
    assert.equal(serialisations, 1);
    const expected = serializeEvent({ ...event, hades: { ...(event as unknown as { hades: object }).hades, probe: 'p' } } as unknown as HadesEvent);
    for (const c of channels) assert.deepEqual(c.lines, [expected]);
    assert.equal((JSON.parse(expected) as { hades: { probe: string } }).hades.probe, 'p');
  });

  it('runs the enrichers before serialising', () => {
    const channel = new FakeChannel('a');
    const pipeline = new Pipeline([channel], [(e) => ((e as unknown as { labels: Record<string, string> }).labels = { site: 'paris' })]);
    pipeline.push(drop());
    assert.deepEqual((JSON.parse(channel.lines[0]!) as { labels: unknown }).labels, { site: 'paris' });
  });

  it('returns false while any channel pushes back, and calls drain listeners once all drained', () => {
    const a = new FakeChannel('a');
    const b = new FakeChannel('b');
    const pipeline = new Pipeline([a, b]);
    let drains = 0;
    pipeline.onDrain(() => drains++);
    a.accept = false;
    b.accept = false;
    assert.equal(pipeline.push(drop()), false);
    assert.equal(pipeline.paused, true);
    assert.equal(pipeline.stats().paused, true);
    a.drain();
    assert.equal(drains, 0, 'b still pushes back');
    assert.equal(pipeline.paused, true);
    // A channel saying it drained while the pipeline was not waiting for it changes nothing.
    a.onDrain();
    assert.equal(drains, 0);
    b.drain();
    assert.equal(drains, 1);
    assert.equal(pipeline.paused, false);
    b.onDrain();
    assert.equal(drains, 1, 'a second drain of the same channel is not a new drain');
    assert.equal(pipeline.push(drop()), true);
    // Every channel got every event, also while pushing back.
    assert.equal(a.lines.length, 2);
    assert.equal(b.lines.length, 2);
  });

  it('stays paused when only one of two channels pushes back', () => {
    const a = new FakeChannel('a');
    const b = new FakeChannel('b');
    const pipeline = new Pipeline([a, b]);
    let drains = 0;
    const off = pipeline.onDrain(() => drains++);
    b.accept = false;
    assert.equal(pipeline.push(drop()), false);
    assert.equal(pipeline.push(drop()), false);
    b.drain();
    assert.equal(drains, 1);
    off();
    b.accept = false;
    pipeline.push(drop());
    b.drain();
    assert.equal(drains, 1, 'a removed listener is not called');
  });

  it('replaceChannels() returns the old channels, attaches the new ones and fires drain listeners', () => {
    const old = new FakeChannel('old');
    const pipeline = new Pipeline([old]);
    let drains = 0;
    pipeline.onDrain(() => drains++);
    old.accept = false;
    assert.equal(pipeline.push(drop()), false);
    const fresh = [new FakeChannel('x'), new FakeChannel('y')];
    assert.deepEqual(pipeline.replaceChannels(fresh), [old]);
    assert.equal(drains, 1, 'sources waiting on the old channels are woken');
    assert.equal(pipeline.paused, false);
    assert.deepEqual(pipeline.outputs, fresh);
    // The old channel draining later is no concern of the pipeline's any more.
    old.drain();
    assert.equal(drains, 1);
    assert.equal(pipeline.push(drop()), true);
    assert.equal(old.lines.length, 1);
    assert.equal(fresh[0]!.lines.length, 1);
    // The new channels push back and drain like the first ones.
    fresh[1]!.accept = false;
    assert.equal(pipeline.push(drop()), false);
    fresh[1]!.drain();
    assert.equal(drains, 2);
    assert.deepEqual(
      pipeline.stats().outputs.map((o) => o.name),
      ['x', 'y'],
    );
  });

  it('counts events by action', async () => {
    const channel = new FakeChannel('a');
    const pipeline = new Pipeline([channel]);
    for (let i = 0; i < 3; i++) pipeline.push(drop());
    pipeline.push(inventory());
    const stats = pipeline.stats();
    assert.equal(stats.in, 4);
    assert.deepEqual(stats.byAction, { agent_drop: 3, inventory_change: 1 });
    assert.deepEqual(stats.outputs, [channel.stats()]);
    assert.equal(stats.paused, false);
    await pipeline.close(100);
    assert.equal(channel.closed, 1);
  });

  it('counts events with no channel at all', () => {
    const pipeline = new Pipeline([]);
    assert.equal(pipeline.push(drop()), true);
    assert.equal(pipeline.stats().in, 1);
  });
});

describe('EventStamp', () => {
  it('fills id, sequence, kind, category, type, host and agent', () => {
    const sequencer = new Sequencer();
    const s = new EventStamp(sequencer, host, '1.2.3', 'agent-7');
    const before = Date.now();
    const first = s.complete('inventory_change', { hades: { inventory: { table: 'crontab', change: 'added', row: { user: 'root' } } } }) as any;
    const second = s.complete('inventory_change', { hades: { inventory: { table: 'crontab', change: 'removed', row: { user: 'root' } } } }) as any;
    const spec = eventKinds.inventory_change;
    assert.equal(first.event.sequence, 0);
    assert.equal(second.event.sequence, 1);
    assert.match(first.event.id, new RegExp(`^[0-9a-z]{9}-${sequencer.prefix}-0$`));
    assert.match(second.event.id, new RegExp(`^[0-9a-z]{9}-${sequencer.prefix}-1$`));
    assert.notEqual(first.event.id, second.event.id);
    assert.equal(first.event.kind, spec.kind);
    assert.deepEqual(first.event.category, spec.category);
    assert.deepEqual(first.event.type, spec.type);
    assert.equal(first.event.action, 'inventory_change');
    assert.deepEqual(first.host, host);
    assert.deepEqual(first.agent, { id: 'agent-7', version: '1.2.3', type: 'hades' });
    assert.ok(Date.parse(first['@timestamp']) >= before - 1);
    const check = checkEvent(first);
    assert.ok(check.ok, JSON.stringify(check));
  });

  it('keeps the fields a plugin gave, except the ones only the agent sets', () => {
    const sequencer = new Sequencer();
    const s = new EventStamp(sequencer, host, '1.2.3');
    const body = {
      '@timestamp': '2026-02-03T04:05:06.000Z',
      event: { action: 'something_else', type: ['change'], id: 'forged', sequence: 99, kind: 'alert', created: '2026-02-03T04:05:00.000Z' },
      host: { name: 'forged-host' },
      agent: { type: 'forged', version: '0' },
      hades: { inventory: { table: 'users', change: 'snapshot', row: { name: 'alice' } } },
      labels: { team: 'blue' },
    };
    const e = s.complete('inventory_change', body) as any;
    assert.equal(e['@timestamp'], '2026-02-03T04:05:06.000Z');
    assert.deepEqual(e.event.type, ['change'], 'a type the plugin chose is kept');
    assert.equal(e.event.created, '2026-02-03T04:05:00.000Z');
    assert.equal(e.event.action, 'inventory_change');
    assert.match(e.event.id, new RegExp(`^[0-9a-z]{9}-${sequencer.prefix}-0$`));
    assert.equal(e.event.sequence, 0);
    assert.equal(e.event.kind, 'state');
    assert.deepEqual(e.host, host);
    assert.deepEqual(e.agent, { version: '1.2.3', type: 'hades' });
    assert.deepEqual(e.hades, body.hades);
    assert.deepEqual(e.labels, { team: 'blue' });
    // The plugin's object is not changed.
    assert.equal(body.event.id, 'forged');
  });

  it('uses the explicit timestamp, else now, when the body has none', () => {
    const s = new EventStamp(new Sequencer(), host, '1');
    const e = s.complete('agent_drop', { hades: {} }, '2027-01-01T00:00:00.000Z') as any;
    assert.equal(e['@timestamp'], '2027-01-01T00:00:00.000Z');
    const before = Date.now();
    const f = s.complete('agent_drop', { hades: {} }) as any;
    assert.ok(Math.abs(Date.parse(f['@timestamp']) - before) < 5000);
  });

  it(
    'takes an explicit timestamp over the body\'s, and replaces a body timestamp that is not a string',

    () => {
      const s = new EventStamp(new Sequencer(), host, '1');
      const e = s.complete('agent_drop', { '@timestamp': '2026-01-01T00:00:00.000Z', hades: {} }, '2027-01-01T00:00:00.000Z') as any;
      assert.equal(e['@timestamp'], '2027-01-01T00:00:00.000Z');
      const f = s.complete('agent_drop', { '@timestamp': 12, hades: {} }) as any;
      assert.equal(typeof f['@timestamp'], 'string');
    },
  );

  it('numbers events from all stamps sharing a sequencer in one sequence', () => {
    const sequencer = new Sequencer();
    const a = new EventStamp(sequencer, host, '1');
    const b = new EventStamp(sequencer, host, '1');
    assert.deepEqual(
      [a.complete('agent_drop', {}), b.complete('agent_drop', {}), a.complete('agent_drop', {})].map((e) => e.event.sequence),
      [0, 1, 2],
    );
  });
});

describe('DropReporter', () => {
  const count = (total: number, reason = 'ringbuf_full', hook = 'exec'): DropCount => ({ component: 'kernel', hook, reason, total });

  it('reports only what grew since the previous report', () => {
    const reporter = new DropReporter();
    const t1 = new Date('2026-01-01T00:00:10.000Z');
    const t2 = new Date('2026-01-01T00:00:20.000Z');
    const t3 = new Date('2026-01-01T00:00:30.000Z');
    const first = reporter.diff([count(5), count(0, 'queue_full'), count(2, 'ringbuf_full', 'open')], t1);
    assert.deepEqual(
      first.map((r) => [r.hook, r.reason, r.count]),
      [
        ['exec', 'ringbuf_full', 5],
        ['open', 'ringbuf_full', 2],
      ],
    );
    assert.deepEqual(reporter.diff([count(5), count(0, 'queue_full'), count(2, 'ringbuf_full', 'open')], t2), [], 'nothing new, nothing reported');
    const third = reporter.diff([count(8), count(3, 'queue_full'), count(2, 'ringbuf_full', 'open')], t3);
    assert.deepEqual(third, [
      { component: 'kernel', hook: 'exec', reason: 'ringbuf_full', count: 3, since: t2.toISOString() },
      { component: 'kernel', hook: 'exec', reason: 'queue_full', count: 3, since: t2.toISOString() },
    ]);
  });

  it('dates the drops of a counter read late from when it was last read, not from the late report', () => {
    const reporter = new DropReporter();
    const read = (total: number, at: string): DropCount => ({ component: 'kernel', hook: 'exec', reason: 'ringbuf_full', total, asOf: new Date(at) });
    reporter.diff([read(0, '2026-01-01T00:00:10.000Z')], new Date('2026-01-01T00:00:10.000Z'));
    // The agent stopped from 00:00:12 to 00:00:40: its report at 00:00:41 still has the counters of
    // 00:00:10, those of 00:00:41 come in after it, and the next report (00:00:51) has them.
    assert.deepEqual(reporter.diff([read(0, '2026-01-01T00:00:10.000Z')], new Date('2026-01-01T00:00:41.000Z')), []);
    assert.deepEqual(reporter.diff([read(500, '2026-01-01T00:00:41.000Z')], new Date('2026-01-01T00:00:51.000Z')), [
      { component: 'kernel', hook: 'exec', reason: 'ringbuf_full', count: 500, since: '2026-01-01T00:00:10.000Z' },
    ]);
    // A reading older than the last one is left out.
    assert.deepEqual(reporter.diff([read(900, '2026-01-01T00:00:30.000Z')], new Date('2026-01-01T00:01:01.000Z')), []);
  });

  it('keeps counters of different components apart', () => {
    const reporter = new DropReporter();
    const out = reporter.diff([
      { component: 'spool', hook: 'server', reason: 'spool_full', total: 4 },
      { component: 'output', hook: 'server', reason: 'spool_full', total: 1 },
    ]);
    assert.deepEqual(
      out.map((r) => [r.component, r.count]),
      [
        ['spool', 4],
        ['output', 1],
      ],
    );
  });

  it(
    'reports a counter that started over (an output rebuilt by a reload) from zero',

    () => {
      const reporter = new DropReporter();
      reporter.diff([count(10)]);
      assert.deepEqual(
        reporter.diff([count(4)]).map((r) => r.count),
        [4],
      );
      assert.deepEqual(
        reporter.diff([count(12)]).map((r) => r.count),
        [8],
      );
    },
  );

  it('sums its reports to the total', () => {
    const reporter = new DropReporter();
    let sum = 0;
    for (const total of [1, 1, 5, 9, 9, 30]) for (const r of reporter.diff([count(total)])) sum += r.count;
    assert.equal(sum, 30);
  });
});

describe('Sequencer', () => {
  it('makes ids that sort by the time they were made, as text, and are unique per start', () => {
    const a = new Sequencer();
    const b = new Sequencer();
    assert.notEqual(a.prefix, b.prefix);
    const ids = [a.id(a.next(), 1_000), b.id(b.next(), 1_000), a.id(a.next(), 1_764_316_800_000), b.id(b.next(), 1_764_316_800_001), a.id(a.next(), 99_999_999_999_999)];
    assert.deepEqual([...ids].sort(), ids.slice(0, 2).sort().concat(ids.slice(2)));
    assert.equal(new Set(ids).size, ids.length);
    for (const id of ids) assert.match(id, /^[0-9a-z]{9}-[0-9a-f]{12}-[0-9a-z]+$/);
    assert.equal(a.id(35, 0), `000000000-${a.prefix}-z`);
    // The same millisecond and sequence number give the same id; a clock gone back still makes unique ids.
    assert.equal(a.id(7, 5_000), a.id(7, 5_000));
    assert.notEqual(a.id(a.next(), 2_000), a.id(a.next(), 2_000));
    assert.equal(a.count, 5);
  });
});
