/**
 * The collector's protocol and schedule, with tables made for the test and the frames it writes
 * captured: HELLO, CONFIG/ACK, a snapshot then the rows added and removed by content, failures
 * logged once, package findings, ad-hoc queries answered in chunks, pacing; and the asking side
 * (QueryClient): reassembly, a collector that does not answer, one that goes away.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkEvent } from '../../src/common/events/index.js';
import { PluginFrame, type QueryResultFrame } from '../../src/common/plugins/protocol.js';
import { FRAME_MAX_PAYLOAD } from '../../src/common/codec/frames.js';
import { Collector, type CollectorConfig } from '../../src/agent/inventory/collector.js';
import { QueryClient } from '../../src/agent/inventory/query-client.js';
import type { ColumnSpec, Row, TableSpec } from '../../src/agent/inventory/table.js';
import { EventStamp } from '../../src/agent/pipeline/stamp.js';
import { Sequencer } from '../../src/agent/sequencer.js';

interface Sent {
  readonly type: number;
  readonly text: string;
}

class Harness {
  readonly sent: Sent[] = [];
  readonly collector: Collector;
  private id = 1;

  constructor(readonly tables: TableSpec[]) {
    this.collector = new Collector({ send: async (type, payload) => void this.sent.push({ type, text: Buffer.from(payload).toString('utf8') }) }, tables, '9.9.9');
  }

  frame(type: number, value: unknown): void {
    this.collector.onFrame(type, new TextEncoder().encode(JSON.stringify(value)));
  }

  configure(config: Partial<CollectorConfig> & { queries: CollectorConfig['queries'] }): number {
    const id = this.id++;
    this.frame(PluginFrame.config, { request_id: id, config: { query_timeout_s: 10, max_rows: 1000, events_per_s: 0, package_findings_interval_s: 0, ...config } });
    return id;
  }

  of(type: number): unknown[] {
    return this.sent.filter((s) => s.type === type).map((s) => JSON.parse(s.text) as unknown);
  }

  /** Every event line sent so far. */
  events(): Record<string, any>[] {
    return this.sent.filter((s) => s.type === PluginFrame.events).flatMap((s) => s.text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>));
  }

  async until<T>(what: string, check: () => T | undefined | false, ms = 5000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const value = check();
      if (value !== undefined && value !== false) return value;
      if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

function mutable(name: string, initial: Row[]): TableSpec & { rows: Row[] } {
  const spec = {
    name,
    description: 'For tests.',
    columns: [
      { name: 'port', type: 'INTEGER', description: 'Port.' },
      { name: 'proto', type: 'TEXT', description: 'Protocol.' },
    ] as const,
    examples: [{ description: 'All.', sql: `SELECT * FROM ${name}` }],
    rows: initial,
    async generate() {
      return spec.rows;
    },
  };
  return spec;
}

const stamp = new EventStamp(new Sequencer(), { name: 'test-host' }, '9.9.9');
const valid = (event: Record<string, any>) => {
  const result = checkEvent(stamp.complete(event['event'].action, event));
  assert.ok(result.ok, JSON.stringify(result.ok ? [] : result.problems));
};

describe('inventory collector', () => {
  it('says HELLO, accepts a configuration and refuses a broken one', async () => {
    const h = new Harness([]);
    await h.collector.hello();
    assert.deepEqual(h.of(PluginFrame.hello), [{ protocol: 1, plugin: 'inventory', version: '9.9.9', tables: [] }]);
    const ok = h.configure({ queries: [] });
    h.frame(PluginFrame.config, { request_id: 77, config: { queries: [{ name: 'x', sql: 'SELECT 1', interval_s: 5 }, { name: 'x', sql: 'SELECT 2', interval_s: 5 }] } });
    h.frame(PluginFrame.config, { request_id: 78, config: { queries: 'all of them' } });
    assert.deepEqual(h.of(PluginFrame.ack), [
      { request_id: ok, ok: true },
      { request_id: 77, ok: false, code: 'HADES_ERR_CONFIG_VALUE', msg: 'queries[1]: the name x is used twice' },
      { request_id: 78, ok: false, code: 'HADES_ERR_CONFIG_VALUE', msg: 'queries must be a list' },
    ]);
    h.collector.stop();
  });

  it('sends a snapshot first, then only the rows added and removed, compared by content (duplicates counted)', async () => {
    const ports = mutable('ports', [
      { port: 22, proto: 'tcp' },
      { port: 53, proto: 'udp' },
      { port: 53, proto: 'udp' },
    ]);
    const h = new Harness([ports]);
    h.configure({ queries: [{ name: 'open-ports', sql: 'SELECT port, proto FROM ports', interval_s: 0.2 }] });
    const snapshot = await h.until('the snapshot', () => h.events().length === 3 && h.events());
    assert.deepEqual(snapshot.map((e) => [e['hades'].inventory.change, e['hades'].inventory.row.port]), [['snapshot', 22], ['snapshot', 53], ['snapshot', 53]]);
    assert.deepEqual({ ...snapshot[0]!['hades'].inventory, row: undefined }, { table: 'ports', query: 'open-ports', change: 'snapshot', row: undefined });
    snapshot.forEach(valid);
    // Nothing changes: nothing is sent.
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(h.events().length, 3);
    ports.rows = [
      { port: 53, proto: 'udp' },
      { port: 4444, proto: 'tcp' },
    ];
    // One run: 4444 came, 22 went, and one of the two udp/53 rows went (counted by content).
    const changes = await h.until('the changes', () => h.events().length === 6 && h.events().slice(3));
    assert.deepEqual(changes.map((e) => JSON.stringify([e['hades'].inventory.change, e['hades'].inventory.row])).sort(), [
      JSON.stringify(['added', { port: 4444, proto: 'tcp' }]),
      JSON.stringify(['removed', { port: 22, proto: 'tcp' }]),
      JSON.stringify(['removed', { port: 53, proto: 'udp' }]),
    ]);
    changes.forEach(valid);
    h.collector.stop();
  });

  it('logs a failing scheduled query once, not at every run, and keeps the other queries going', async () => {
    const ports = mutable('ports', [{ port: 1, proto: 'tcp' }]);
    const h = new Harness([ports]);
    h.configure({ queries: [{ name: 'missing', sql: 'SELECT * FROM crontab', interval_s: 0.1 }, { name: 'fine', sql: 'SELECT * FROM ports', interval_s: 0.1 }] });
    await h.until('the good snapshot', () => h.events().length === 1);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const logs = h.of(PluginFrame.log) as { level: string; code: string; msg: string }[];
    assert.equal(logs.length, 1, JSON.stringify(logs));
    assert.equal(logs[0]!.code, 'HADES_ERR_QUERY_UNKNOWN_TABLE');
    assert.match(logs[0]!.msg, /scheduled query missing failed/);
    assert.ok(h.collector.stats.scheduled_failed >= 3);
    h.collector.stop();
  });

  it('does not compare a scheduled result cut by max_rows, and says so to the server with an agent_drop event', async () => {
    const ports = mutable('ports', Array.from({ length: 20 }, (_, i) => ({ port: i, proto: 'tcp' })));
    const h = new Harness([ports]);
    h.configure({ queries: [{ name: 'big', sql: 'SELECT * FROM ports', interval_s: 60 }], max_rows: 10 });
    const logs = await h.until('the warning', () => (h.of(PluginFrame.log) as { msg: string }[]).find((l) => /more than max_rows/.test(l.msg)));
    assert.ok(logs);
    // A table a user can fill (units, keys of one's own) would otherwise hide every change of it unseen.
    const drops = await h.until('the drop', () => h.events().length > 0 && h.events());
    assert.deepEqual(
      drops.map((e) => [e['event']['action'], e['hades']['drops']['component'], e['hades']['drops']['hook'], e['hades']['drops']['reason'], e['hades']['drops']['count']]),
      [['agent_drop', 'agent', 'inventory big', 'max_rows', 1]],
    );
    assert.equal(h.events().filter((e) => e['event']['action'] === 'inventory_change').length, 0);
    h.collector.stop();
  });

  it('sends each new package finding as a package_finding event, once', async () => {
    const findings: TableSpec & { rows: Row[] } = {
      name: 'package_findings',
      description: 'For tests.',
      columns: [...['name', 'version', 'ecosystem', 'path', 'finding', 'similar_to'].map((n): ColumnSpec => ({ name: n, type: 'TEXT', description: n, nullable: true })), { name: 'distance', type: 'INTEGER', description: 'd', nullable: true }],
      examples: [{ description: 'All.', sql: 'SELECT * FROM package_findings' }],
      rows: [{ name: 'reqeusts', version: '2.31.0', ecosystem: 'python', path: '/usr/lib/python3/dist-packages/reqeusts-2.31.0.dist-info', finding: 'typosquat', similar_to: 'requests', distance: 2 }],
      async generate() {
        return findings.rows;
      },
    };
    const h = new Harness([findings]);
    h.configure({ queries: [], package_findings_interval_s: 0.1 });
    const first = await h.until('the finding', () => h.events()[0]);
    assert.deepEqual({ package: first['package'], finding: first['hades'].finding, action: first['event'].action }, {
      package: { name: 'reqeusts', version: '2.31.0', type: 'python', path: '/usr/lib/python3/dist-packages/reqeusts-2.31.0.dist-info' },
      finding: { reason: 'typosquat', similar_to: 'requests', distance: 2 },
      action: 'package_finding',
    });
    valid(first);
    findings.rows = [...findings.rows, { name: 'evil-pkg', version: null, ecosystem: 'python', path: '/x', finding: 'known_bad', similar_to: null, distance: null }];
    const second = await h.until('the second finding', () => h.events()[1]);
    assert.equal(second['package'].name, 'evil-pkg');
    valid(second);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(h.events().length, 2, 'a finding is reported once');
    h.collector.stop();
  });

  it('paces its events under the agent\'s rate limit', async () => {
    const ports = mutable('ports', Array.from({ length: 600 }, (_, i) => ({ port: i, proto: 'tcp' })));
    const h = new Harness([ports]);
    const started = Date.now();
    h.configure({ queries: [{ name: 'many', sql: 'SELECT * FROM ports', interval_s: 60 }], events_per_s: 500 });
    await h.until('every snapshot row', () => h.events().length === 600);
    // 400 per second at most (80% of 500): 600 take a second or more after the first burst.
    assert.ok(Date.now() - started >= 450, `${Date.now() - started} ms`);
    h.collector.stop();
  });

  it('answers ad-hoc queries in chunks under the frame limit, then a final frame; errors are coded', async () => {
    const wide = mutable('wide', Array.from({ length: 3000 }, (_, i) => ({ port: i, proto: 'x'.repeat(500) })));
    const h = new Harness([wide]);
    h.frame(PluginFrame.query, { request_id: 1, sql: 'SELECT 1', timeout_ms: 1000, max_rows: 10, max_bytes: 1000 });
    h.configure({ queries: [] });
    h.frame(PluginFrame.query, { request_id: 2, sql: 'SELECT * FROM wide', timeout_ms: 10_000, max_rows: 100_000, max_bytes: 64 << 20 });
    h.frame(PluginFrame.query, { request_id: 3, sql: 'DROP TABLE wide', timeout_ms: 10_000, max_rows: 10, max_bytes: 1000 });
    h.frame(PluginFrame.query, { request_id: 4, sql: 'SELECT port FROM wide', timeout_ms: 10_000, max_rows: 5, max_bytes: 1000 });
    const frames = await h.until('every answer', () => {
      const all = h.of(PluginFrame.queryResult) as QueryResultFrame[];
      return all.filter((f) => f.done).length === 4 && all;
    });
    const final = (id: number) => frames.find((f) => f.request_id === id && f.done)!;
    assert.deepEqual(final(1), { request_id: 1, done: true, ok: false, code: 'HADES_ERR_QUERY_UNAVAILABLE', message: 'the collector has no configuration yet' });
    const chunks = frames.filter((f) => f.request_id === 2 && !f.done) as Extract<QueryResultFrame, { done: false }>[];
    assert.ok(chunks.length >= 3, `${chunks.length} chunks`);
    assert.ok(h.sent.every((s) => Buffer.byteLength(s.text) < 1 << 20));
    assert.equal(chunks.reduce((n, c) => n + c.rows.length, 0), 3000);
    assert.deepEqual({ ...final(2), collect_ms: 0, sql_ms: 0 }, { request_id: 2, done: true, ok: true, columns: [{ name: 'port', type: 'INTEGER' }, { name: 'proto', type: 'TEXT' }], row_count: 3000, truncated: false, tables: ['wide'], warnings: [], warnings_total: 0, collect_ms: 0, sql_ms: 0 });
    assert.equal((final(3) as { code: string }).code, 'HADES_ERR_QUERY_NOT_READ_ONLY');
    assert.deepEqual({ truncated: (final(4) as { truncated: boolean }).truncated, by: (final(4) as { truncated_by: string }).truncated_by, rows: (final(4) as { row_count: number }).row_count }, { truncated: true, by: 'rows', rows: 5 });
    h.collector.stop();
  });
});

describe('inventory collector and text of several bytes a character', () => {
  it('keeps every frame under the frame limit in bytes, and ends with the final frame', async () => {
    // 200,000 characters of three bytes each: two such rows are 1.2 MB, over a frame.
    const wide = mutable('wide', [
      { port: 1, proto: '€'.repeat(200_000) },
      { port: 2, proto: '€'.repeat(200_000) },
      { port: 3, proto: '€'.repeat(400_000) },
    ]);
    const h = new Harness([wide]);
    h.configure({ queries: [] });
    h.frame(PluginFrame.query, { request_id: 1, sql: 'SELECT * FROM wide', timeout_ms: 10_000, max_rows: 100, max_bytes: 64 << 20 });
    const frames = await h.until('the final frame', () => {
      const all = h.of(PluginFrame.queryResult) as QueryResultFrame[];
      return all.some((f) => f.done) && all;
    });
    for (const s of h.sent) assert.ok(Buffer.byteLength(s.text) <= FRAME_MAX_PAYLOAD, `a frame of ${Buffer.byteLength(s.text)} bytes`);
    const rows = frames.flatMap((f) => (f.done ? [] : f.rows));
    // The row of 1.2 MB cannot go in any frame: left out, and the answer says it was cut.
    assert.deepEqual(rows.map((r) => r[0]), [1, 2]);
    const final = frames.find((f) => f.done) as Extract<QueryResultFrame, { done: true; ok: true }>;
    assert.deepEqual([final.ok, final.row_count, final.truncated, final.truncated_by], [true, 2, true, 'bytes']);
    h.collector.stop();
  });
});

describe('query client', () => {
  const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

  it('gathers the chunks of an answer and settles with the final frame', async () => {
    const sent: unknown[] = [];
    const client = new QueryClient({ send: (_type, payload) => sent.push(JSON.parse(Buffer.from(payload).toString('utf8'))) > 0 });
    const answer = client.query({ sql: 'SELECT 1', timeout_ms: 1000, max_rows: 10, max_bytes: 1000 });
    const id = (sent[0] as { request_id: number }).request_id;
    client.onFrame(encode({ request_id: id, done: false, rows: [[1], [2]] }));
    client.onFrame(encode({ request_id: id + 100, done: false, rows: [[9]] })); // someone else's
    client.onFrame(encode({ request_id: id, done: false, rows: [[3]] }));
    client.onFrame(new TextEncoder().encode('not json'));
    client.onFrame(encode({ request_id: id, done: true, ok: true, columns: [{ name: 'x', type: null }], row_count: 3, truncated: false, tables: [], warnings: [], warnings_total: 0, collect_ms: 1, sql_ms: 1 }));
    const result = await answer;
    assert.ok(result.ok);
    assert.deepEqual(result.rows, [[1], [2], [3]]);
    assert.equal(client.waiting, 0);
  });

  it('answers a timeout and reports the collector hung when it does not answer in time; fails what waits when it goes', async () => {
    let hung = '';
    const client = new QueryClient({ send: () => true, graceMs: 50, onHung: (reason) => (hung = reason) });
    const late = await client.query({ sql: 'SELECT 1', timeout_ms: 50, max_rows: 1, max_bytes: 100 });
    assert.deepEqual({ ok: late.ok, code: !late.ok && late.code }, { ok: false, code: 'HADES_ERR_QUERY_TIMEOUT' });
    assert.match(hung, /not answered in 50 ms/);
    const waiting = client.query({ sql: 'SELECT 1', timeout_ms: 10_000, max_rows: 1, max_bytes: 100 });
    client.failAll('HADES_ERR_QUERY_UNAVAILABLE', 'gone');
    assert.deepEqual(await waiting, { ok: false, code: 'HADES_ERR_QUERY_UNAVAILABLE', message: 'gone' });
    const down = new QueryClient({ send: () => false });
    assert.equal((await down.query({ sql: 'SELECT 1', timeout_ms: 10, max_rows: 1, max_bytes: 100 })).ok, false);
    const full = new QueryClient({ send: () => true, maxPending: 1 });
    void full.query({ sql: 'SELECT 1', timeout_ms: 10_000, max_rows: 1, max_bytes: 100 });
    const refused = await full.query({ sql: 'SELECT 1', timeout_ms: 10_000, max_rows: 1, max_bytes: 100 });
    assert.equal(!refused.ok && refused.code, 'HADES_ERR_QUERY_UNAVAILABLE');
    full.failAll('HADES_ERR_QUERY_UNAVAILABLE', 'done');
  });
});
