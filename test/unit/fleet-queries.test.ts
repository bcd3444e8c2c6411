import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HadesError } from '../../src/common/errors.js';
import { openDatabase } from '../../src/server/db.js';
import { DEFAULT_HOSTS_PAGE, FleetQueries, QUERY_SUMMARY_SQL, QUERY_TASKS_SQL } from '../../src/server/fleet/queries.js';
import { FleetRegistry, type Task } from '../../src/server/fleet/registry.js';

const T0 = Date.UTC(2026, 10, 28, 12, 0, 0);
const code = (c: string) => (e: unknown) => e instanceof HadesError && e.code === c;

function setup(options: { pageBytes?: number } = {}) {
  let now = T0;
  const db = openDatabase(':memory:');
  const registry = new FleetRegistry(db, { now: () => now });
  const queries = new FleetQueries(db, registry, { now: () => now, ...options });
  let n = 0;
  const enroll = (hostname: string, group?: string) => {
    const id = registry.newAgentId();
    n++;
    return registry.enroll(
      { id, hostname, addresses: ['10.0.0.1'], os: 'Debian 12', kernel: '6.1', version: '0.1.0', ...(group ? { group } : {}) },
      { agentId: id, fingerprint: n.toString(16).padStart(64, '0'), serial: n.toString(16), notAfter: new Date(T0 + 86_400_000).toISOString() },
    ).id;
  };
  return { db, registry, queries, enroll, advance: (ms: number) => (now += ms) };
}

describe('fleet queries', () => {
  it('creates one query task per agent, sends those connected, and gathers partial then complete results', () => {
    const { registry, queries, enroll } = setup();
    const a = enroll('web-1');
    const b = enroll('web-2');
    const c = enroll('db-1');
    const sent: Task[] = [];
    const created = queries.create({ sql: ' SELECT name FROM users ', agentIds: [a, b, c, a], timeoutMs: 30_000, createdBy: 'ana' }, (task) => {
      sent.push(task);
      return task.agentId !== c; // db-1 is offline
    });
    assert.match(created.id, /^fq_[0-9a-f]{16}$/);
    assert.equal(created.sql, 'SELECT name FROM users');
    assert.equal(created.complete, false);
    assert.deepEqual(created.summary, { agents: 3, done: 0, failed: 0, pending: 3, expired: 0, rows: 0 });
    assert.equal(sent.length, 3, 'one task per distinct agent');
    assert.deepEqual(sent[0]?.params, { sql: 'SELECT name FROM users', query_id: created.id, timeout_ms: 30_000 });
    assert.equal(registry.getTask(sent[0].id)?.status, 'sent');
    assert.equal(registry.getTask(sent[2]!.id)?.status, 'pending', 'an offline agent gets it when it connects');

    registry.complete(sent[0].id, 'done', { rows: [{ name: 'root' }, { name: 'www-data' }], truncated: false }, a);
    registry.complete(sent[1]!.id, 'failed', { code: 'HADES_ERR_QUERY_UNKNOWN_TABLE', message: 'no table userz' }, b);
    const partial = queries.get(created.id)!;
    assert.equal(partial.complete, false);
    assert.deepEqual(partial.summary, { agents: 3, done: 1, failed: 1, pending: 1, expired: 0, rows: 2 });
    assert.deepEqual(partial.hosts.map((h) => [h.hostname, h.status]), [['web-1', 'done'], ['web-2', 'failed'], ['db-1', 'pending']]);
    assert.deepEqual(partial.hosts[1]?.error, { code: 'HADES_ERR_QUERY_UNKNOWN_TABLE', message: 'no table userz' });

    registry.complete(sent[2]!.id, 'done', { rows: [{ name: 'postgres' }], truncated: true }, c);
    const done = queries.get(created.id)!;
    assert.equal(done.complete, true);
    assert.equal(done.hosts[2]?.truncated, true);
    assert.equal(queries.list(10)[0]?.id, created.id);
  });

  it('hosts that have not answered by the deadline are reported expired, and the query is complete', () => {
    const { queries, enroll, advance } = setup();
    const a = enroll('web-1');
    const created = queries.create({ sql: 'SELECT 1', agentIds: [a], timeoutMs: 5000, createdBy: 'ana' }, () => false);
    advance(5000);
    const result = queries.get(created.id)!;
    assert.equal(result.complete, true);
    assert.equal(result.hosts[0]?.status, 'expired');
    assert.equal(result.hosts[0]?.error?.code, 'HADES_ERR_QUERY_NO_ANSWER');
  });

  it('forgets a query once its deadline has passed and its tasks are gone (the events\' retention), not before', () => {
    const { registry, queries, enroll, advance } = setup();
    const a = enroll('web-1');
    const created = queries.create({ sql: 'SELECT 1', agentIds: [a], timeoutMs: 5000, createdBy: 'ana' }, () => false);
    advance(6000);
    assert.equal(queries.forgetEnded(T0 + 60_000), 0, 'its task is still kept');
    registry.expireOverdue();
    assert.equal(registry.forgetEnded(T0 + 60_000), 1);
    assert.equal(queries.forgetEnded(T0 + 60_000), 1);
    assert.equal(queries.get(created.id), undefined);
  });

  it('finds a query\'s tasks through an index, not by reading every task the server ever made', () => {
    const { db } = setup();
    const plan = db.prepare(`EXPLAIN QUERY PLAN ${QUERY_TASKS_SQL}`).all('fq_0000000000000000') as { detail: string }[];
    assert.ok(plan.some((step) => /USING INDEX tasks_fleet_query/.test(step.detail)), JSON.stringify(plan));
  });

  it('records the query (its audit entry) in its transaction, before any task is sent: a record that fails sends and keeps nothing', () => {
    const { registry, queries, enroll } = setup();
    const a = enroll('web-1');
    const sent: Task[] = [];
    const recorded: string[] = [];
    const created = queries.create({ sql: 'SELECT 1', agentIds: [a], timeoutMs: 30_000, createdBy: 'ana' }, (task) => (sent.push(task), true), (id) => {
      assert.equal(sent.length, 0, 'recorded before anything is sent');
      recorded.push(id);
    });
    assert.deepEqual(recorded, [created.id]);
    assert.equal(sent.length, 1);
    assert.throws(
      () => queries.create({ sql: 'SELECT 2', agentIds: [a], timeoutMs: 30_000, createdBy: 'ana' }, (task) => (sent.push(task), true), () => {
        throw new Error('the audit log cannot be written');
      }),
      /audit log/,
    );
    assert.equal(sent.length, 1, 'nothing sent');
    assert.equal(queries.list(10).length, 1, 'no query kept');
    assert.equal(registry.listTasks({ agentId: a }).length, 1, 'no task kept');
  });

  it('refuses empty SQL, no agents, unknown and revoked agents, before creating anything', () => {
    const { registry, queries, enroll } = setup();
    const a = enroll('web-1');
    const b = enroll('web-2');
    registry.revoke(b);
    const create = (sql: string, agentIds: string[]) => () => queries.create({ sql, agentIds, timeoutMs: 1000, createdBy: 'ana' }, () => true);
    assert.throws(create('   ', [a]), code('HADES_ERR_API_INVALID_REQUEST'));
    assert.throws(create('SELECT 1', []), code('HADES_ERR_API_INVALID_REQUEST'));
    assert.throws(create('SELECT 1', [a, 'ag_nope']), code('HADES_ERR_API_NOT_FOUND'));
    assert.throws(create('SELECT 1', [a, b]), code('HADES_ERR_AGENT_REVOKED'));
    assert.equal(queries.list(10).length, 0);
    assert.equal(registry.listTasks({}).length, 0);
    assert.equal(queries.get('fq_nope'), undefined);
  });
  it('gives the hosts a page at a time: a cursor walk gives every host once, in order, with the whole summary on each page', () => {
    const { registry, queries, enroll, advance } = setup();
    const agents = Array.from({ length: 250 }, (_, i) => enroll(`host-${String(i).padStart(3, '0')}`));
    const sent: Task[] = [];
    const created = queries.create({ sql: 'SELECT 1', agentIds: agents, timeoutMs: 30_000, createdBy: 'ana' }, (task) => (sent.push(task), true));
    // 200 answer (with i % 3 rows), 20 fail, 30 are left without an answer.
    for (const [i, task] of sent.entries()) {
      if (i < 200) registry.complete(task.id, 'done', { rows: Array.from({ length: i % 3 }, () => ({ x: i })), truncated: false }, task.agentId);
      else if (i < 220) registry.complete(task.id, 'failed', { code: 'HADES_ERR_QUERY_TIMEOUT', message: 'too long' }, task.agentId);
    }
    const rows = Array.from({ length: 200 }, (_, i) => i % 3).reduce((a, b) => a + b, 0);
    const whole = { agents: 250, done: 200, failed: 20, pending: 30, expired: 0, rows };
    // The creation answer is a page too (the default size).
    assert.equal(created.hosts.length, DEFAULT_HOSTS_PAGE);
    assert.equal(typeof created.next, 'string');

    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = queries.get(created.id, { limit: 100, ...(cursor === undefined ? {} : { cursor }) })!;
      assert.deepEqual(page.summary, whole, 'every page counts every host');
      assert.equal(page.complete, false);
      seen.push(...page.hosts.map((h) => h.hostname));
      cursor = page.next;
      pages++;
    } while (cursor !== undefined);
    assert.equal(pages, 3);
    assert.deepEqual(seen, agents.map((_, i) => `host-${String(i).padStart(3, '0')}`), 'each host once, in the order the tasks were made');

    // A page that ends exactly at the last host has no next.
    const exact = queries.get(created.id, { limit: 250 })!;
    assert.equal(exact.hosts.length, 250);
    assert.equal(exact.next, undefined);
    // limit 0: the summary alone, to wait on.
    const summary = queries.get(created.id, { limit: 0 })!;
    assert.deepEqual([summary.hosts, summary.next, summary.summary], [[], undefined, whole]);
    // Past the deadline the hosts without an answer are expired, in the summary and in the page.
    advance(30_000);
    const late = queries.get(created.id, { limit: 1, cursor: queries.get(created.id, { limit: 249 })!.next! })!;
    assert.deepEqual(late.summary, { ...whole, pending: 0, expired: 30 });
    assert.equal(late.complete, true);
    assert.deepEqual(late.hosts.map((h) => [h.hostname, h.status]), [['host-249', 'expired']]);
    assert.equal(late.next, undefined);
  });

  it('ends a page before its answers pass the byte bound (always at least one host)', () => {
    const { registry, queries, enroll } = setup({ pageBytes: 10_000 });
    const agents = Array.from({ length: 5 }, (_, i) => enroll(`host-${i}`));
    const sent: Task[] = [];
    const created = queries.create({ sql: 'SELECT 1', agentIds: agents, timeoutMs: 30_000, createdBy: 'ana' }, (task) => (sent.push(task), true));
    // Answers of about 4 KB, then one of 30 KB (over the bound alone), then 4 KB again.
    const sizes = [4000, 4000, 4000, 30_000, 4000];
    for (const [i, task] of sent.entries()) registry.complete(task.id, 'done', { rows: [{ t: 'x'.repeat(sizes[i]!) }] }, task.agentId);
    const pages: string[][] = [];
    let cursor: string | undefined;
    do {
      const page = queries.get(created.id, { limit: 100, ...(cursor === undefined ? {} : { cursor }) })!;
      pages.push(page.hosts.map((h) => h.hostname));
      cursor = page.next;
    } while (cursor !== undefined);
    assert.deepEqual(pages, [['host-0', 'host-1'], ['host-2'], ['host-3'], ['host-4']]);
  });

  it('refuses a cursor it did not give, a cursor of another query, and a limit out of bounds (HADES_ERR_API_INVALID_REQUEST)', () => {
    const { queries, enroll } = setup();
    const a = enroll('web-1');
    const b = enroll('web-2');
    const one = queries.create({ sql: 'SELECT 1', agentIds: [a, b], timeoutMs: 30_000, createdBy: 'ana' }, () => true);
    const two = queries.create({ sql: 'SELECT 2', agentIds: [a, b], timeoutMs: 30_000, createdBy: 'ana' }, () => true);
    const next = queries.get(one.id, { limit: 1 })!.next!;
    assert.equal(queries.get(one.id, { cursor: next })!.hosts.length, 1);
    for (const cursor of ['', 'nope', '!!', Buffer.from(`q:${one.id}:x`).toString('base64url'), Buffer.from('a:12').toString('base64url'), 'A'.repeat(600)]) {
      assert.throws(() => queries.get(one.id, { cursor }), code('HADES_ERR_API_INVALID_REQUEST'), cursor);
    }
    assert.throws(() => queries.get(two.id, { cursor: next }), (e: unknown) => e instanceof HadesError && e.code === 'HADES_ERR_API_INVALID_REQUEST' && /another query/.test(e.message));
    for (const limit of [-1, 1001, 1.5, Number.NaN]) assert.throws(() => queries.get(one.id, { limit }), code('HADES_ERR_API_INVALID_REQUEST'), String(limit));
  });

  it('counts the summary from an index, without reading the hosts\' answers', () => {
    const { db } = setup();
    const plan = db.prepare(`EXPLAIN QUERY PLAN ${QUERY_SUMMARY_SQL}`).all('fq_0000000000000000') as { detail: string }[];
    assert.ok(plan.some((step) => /USING (COVERING )?INDEX tasks_fleet_query_summary/.test(step.detail)), JSON.stringify(plan));
  });
});
