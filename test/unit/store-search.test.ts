/**
 * The event search against a model: thousands of varied events in a store on a temporary file,
 * random searches (time range, hosts, actions, field filters, limits, both orders, small scan
 * budgets) walked page by page through their cursors, each compared with a plain filter over
 * the same events. Seeded: a failure names its seed and query.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { HadesError } from '../../src/common/errors.js';
import { exampleEvent, type EventAction } from '../../src/common/events/schema.js';
import { openDatabase } from '../../src/server/db.js';
import { EventStore, type EventQuery, type FieldFilter, type FilterOp } from '../../src/server/store/events.js';
import { encodeCursor, INDEXED_FIELDS } from '../../src/server/store/query.js';

const root = mkdtempSync(path.join(tmpdir(), 'hades-store-search-'));
after(() => rmSync(root, { recursive: true, force: true }));
let files = 0;
const dbFile = (): string => path.join(root, `db${++files}.db`);

const T0 = Date.UTC(2026, 10, 28, 8, 0, 0);
const NOW = Date.UTC(2026, 10, 28, 12, 0, 0);

/** mulberry32: a small seeded generator, so that a failing run can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Text meant to trip SQL: LIKE and GLOB wildcards, quotes, backslashes, NUL, case, code points past the BMP. */
const AWKWARD = ['a%b', 'a_b', '%', '_', "it's", '"q"', 'back\\slash', 'nul\0byte', '*', '?', '[x]', 'CURL', 'curl', 'Ünï', 'ünï', '日本', '🦀', 'x\u{10FFFF}y', '\u{10FFFF}'];
const HOSTS = ['web-01', 'WEB-01', 'db-01', 'h%_1', "h'q", 'ホスト'];
const ACTIONS: EventAction[] = ['exec', 'connect', 'dns_query', 'file_open'];
const EXECUTABLES = ['/usr/bin/curl', '/usr/bin/CURL', '/usr/bin/curl\u{10FFFF}', '/usr/bin/curl\u{10FFFF}x', '/tmp/a%b', '/tmp/a_b', '/tmp/axb', "/tmp/it's", '/tmp/back\\slash', '/tmp/nul\0x', '/opt/日本/バイナリ', '/opt/🦀'];
const USERS = ['root', 'Root', 'www-data', 'ünï', 'a%b'];
const TAG_KEYS = ['Cost Center', 'team-name', 'a.b', "it's"];

function pickFrom<T>(rnd: () => number, list: readonly T[]): T {
  return list[Math.floor(rnd() * list.length)] as T;
}

/** `count` events: times out of storage order with many ties, fields sometimes missing, arrays of strings and numbers. */
function makeEvents(rnd: () => number, count: number): Record<string, unknown>[] {
  const events: Record<string, unknown>[] = [];
  for (let i = 0; i < count; i++) {
    const action = pickFrom(rnd, ACTIONS);
    const e: any = structuredClone(exampleEvent(action));
    // 300 distinct milliseconds for thousands of events: ties everywhere, in random storage order.
    e['@timestamp'] = new Date(T0 + Math.floor(rnd() * 300) * 7).toISOString();
    e.event.id = `ev-${i}`;
    e.host.name = pickFrom(rnd, HOSTS);
    e.process ??= {};
    if (rnd() < 0.15) delete e.process.executable;
    else e.process.executable = pickFrom(rnd, EXECUTABLES);
    e.process.name = pickFrom(rnd, ['curl', 'Curl', 'sh', 'a%b', 'nul\0']);
    const args: unknown[] = [];
    for (let n = Math.floor(rnd() * 4); n > 0; n--) args.push(rnd() < 0.2 ? Math.floor(rnd() * 100) : pickFrom(rnd, [...AWKWARD, 'curl', '-s', '42', '4242']));
    if (rnd() < 0.1) delete e.process.args;
    else e.process.args = args;
    e.process.pid = rnd() < 0.1 ? 4242.5 : pickFrom(rnd, [1, 42, 4242, 65535]);
    e.process.working_directory = pickFrom(rnd, [...AWKWARD, '/tmp', '/srv/app', '42']);
    if (rnd() < 0.3) delete e.process.working_directory;
    const user = pickFrom(rnd, USERS);
    if (rnd() < 0.5) e.user = { name: user };
    else delete e.user;
    e.process.user = rnd() < 0.2 ? {} : { id: '0', name: pickFrom(rnd, USERS) };
    if (rnd() < 0.5) {
      e.destination = { ip: pickFrom(rnd, ['203.0.113.7', '10.0.0.1', '2001:db8::1']), port: pickFrom<unknown>(rnd, [80, 443, 8080, '80']) };
    } else delete e.destination;
    e.event.outcome = pickFrom(rnd, ['success', 'failure', 'unknown']);
    if (rnd() < 0.3) {
      const tags: Record<string, string> = {};
      for (const key of TAG_KEYS) if (rnd() < 0.5) tags[key] = pickFrom(rnd, ['Ops', 'ops', 'a%b', '🦀']);
      e.hades = { ...e.hades, cmdb: { owner: pickFrom(rnd, ['ana', 'Ana']), tags } };
    }
    events.push(e);
  }
  return events;
}

/** What the model reads for a field: values (a list's elements), never objects. */
function valuesAt(event: any, field: string): unknown[] {
  let value: any = event;
  const tags = 'hades.cmdb.tags.';
  const keys = field.startsWith(tags) ? ['hades', 'cmdb', 'tags', field.slice(tags.length)] : field.split('.');
  for (const key of keys) {
    if (value === null || typeof value !== 'object' || Array.isArray(value) || !Object.hasOwn(value, key)) return [];
    value = value[key];
  }
  return Array.isArray(value) ? value : [value];
}

/** A value as SQLite's text of it (integers as such, 4242.5 as itself, booleans as true/false); undefined for what never matches. */
function asText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return undefined;
}

function test(text: string, op: FilterOp, value: string): boolean {
  if (op === 'eq') return text === value;
  if (op === 'prefix') return text.startsWith(value);
  return text.includes(value);
}

/** The model of one filter, as the docs describe it. */
function matchesFilter(event: any, filter: FieldFilter): boolean {
  const { field, op, value } = filter;
  if (Object.hasOwn(INDEXED_FIELDS, field)) {
    let column: unknown;
    if (field === 'user.name') column = typeof event.user?.name === 'string' ? event.user.name : event.process?.user?.name;
    else column = valuesAt(event, field)[0];
    if (field === 'destination.port') {
      if (typeof column !== 'number' || !Number.isInteger(column)) return false;
      return op === 'eq' ? column === Number(value) : test(String(column), op, value);
    }
    return typeof column === 'string' && test(column, op, value);
  }
  const numeric = op === 'eq' && (field === 'process.pid' || field === 'process.parent.pid');
  return valuesAt(event, field).some((v) => {
    if (numeric) return typeof v === 'number' && v === Number(value);
    const text = asText(v);
    return text !== undefined && test(text, op, value);
  });
}

function matches(event: any, query: EventQuery): boolean {
  const time = Date.parse(event['@timestamp']);
  if (query.since !== undefined && time < Number(query.since)) return false;
  if (query.until !== undefined && time >= Number(query.until)) return false;
  if (query.host !== undefined && event.host.name !== query.host) return false;
  if (query.action !== undefined && ![query.action].flat().includes(event.event.action)) return false;
  return (query.filters ?? []).every((f) => matchesFilter(event, f));
}

/** The ids a search should return, in its order: by time, then by storage order. */
function expected(stored: readonly Record<string, unknown>[], query: EventQuery): string[] {
  const rows = stored.map((e: any, rowid) => ({ e, rowid, time: Date.parse(e['@timestamp']) })).filter((r) => matches(r.e, query));
  rows.sort((a, b) => a.time - b.time || a.rowid - b.rowid);
  if ((query.order ?? 'desc') === 'desc') rows.reverse();
  return rows.map((r) => r.e.event.id as string);
}

/** Every page of a search, following its cursors. */
function walk(store: EventStore, query: EventQuery): { ids: string[]; pages: number } {
  const ids: string[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = store.search({ ...query, ...(cursor === undefined ? {} : { cursor }) });
    assert.ok(page.events.length <= (query.limit ?? 100), 'a page holds at most its limit');
    if (page.partial !== true && page.next !== undefined) assert.equal(page.events.length, query.limit ?? 100, 'a page that is not partial and has a next is full');
    ids.push(...page.events.map((e: any) => e.event.id as string));
    cursor = page.next;
    pages++;
    assert.ok(pages < 10_000, 'the walk ends');
  } while (cursor !== undefined);
  return { ids, pages };
}

const FILTER_FIELDS = ['process.executable', 'process.name', 'user.name', 'host.name', 'event.action', 'destination.ip', 'destination.port', 'process.args', 'process.pid', 'process.working_directory', 'event.outcome', 'hades.cmdb.owner', ...TAG_KEYS.map((k) => `hades.cmdb.tags.${k}`)];

/** A filter value: mostly one some event holds (whole, or a piece of it for prefix and contains), sometimes awkward text. */
function filterFor(rnd: () => number, events: readonly Record<string, unknown>[]): FieldFilter {
  const field = pickFrom(rnd, FILTER_FIELDS);
  const op = pickFrom<FilterOp>(rnd, ['eq', 'prefix', 'contains']);
  let value: string | undefined;
  for (let tries = 0; tries < 20 && value === undefined; tries++) {
    const text = asText(pickFrom(rnd, valuesAt(pickFrom(rnd, events), field)));
    if (text === undefined || text === '') continue;
    const chars = [...text];
    if (op === 'prefix') value = chars.slice(0, 1 + Math.floor(rnd() * chars.length)).join('');
    else if (op === 'contains') {
      const from = Math.floor(rnd() * chars.length);
      value = chars.slice(from, from + 1 + Math.floor(rnd() * (chars.length - from))).join('');
    } else value = text;
  }
  if (value === undefined || rnd() < 0.15) value = pickFrom(rnd, AWKWARD);
  return { field, op, value };
}

const isQueryError = (e: unknown): boolean => e instanceof HadesError && e.code === 'HADES_ERR_STORE_QUERY';

describe('event search against a model', () => {
  const SEED = 20261128;
  const rnd = random(SEED);
  const events = makeEvents(rnd, 3000);
  const file = dbFile();
  const db = openDatabase(file);
  const store = new EventStore(db, { now: () => NOW });
  const small = new EventStore(db, { now: () => NOW, scanBudget: 97 });
  for (let i = 0; i < events.length; i += 250) store.insertBatch(i % 500 === 0 ? 'agent-1' : 'agent-2', events.slice(i, i + 250).map((e) => JSON.stringify(e)));
  after(() => db.close());

  it('returns every matching event once, in order, across the pages of random searches', () => {
    let refused = 0;
    let nonEmpty = 0;
    for (let n = 0; n < 400; n++) {
      const query: Record<string, unknown> = { order: rnd() < 0.5 ? 'desc' : 'asc', limit: pickFrom(rnd, [1, 3, 17, 100, 10_000]) };
      if (rnd() < 0.4) query['since'] = T0 + Math.floor(rnd() * 300) * 7;
      if (rnd() < 0.4) query['until'] = (query['since'] as number | undefined ?? T0) + Math.floor(rnd() * 300) * 7;
      if (rnd() < 0.3) query['host'] = pickFrom(rnd, HOSTS);
      if (rnd() < 0.3) query['action'] = rnd() < 0.5 ? pickFrom(rnd, ACTIONS) : [pickFrom(rnd, ACTIONS), pickFrom(rnd, ACTIONS)];
      const filters = Array.from({ length: Math.floor(rnd() * 3) }, () => filterFor(rnd, events));
      if (filters.length > 0) query['filters'] = filters;
      const q = query as EventQuery;
      const want = expected(events, q);
      for (const [name, s] of [['default budget', store], ['small budget', small]] as const) {
        let got: { ids: string[]; pages: number };
        try {
          got = walk(s, q);
        } catch (error) {
          // A value a field cannot hold (a number field given text, an address field no address) is refused, with its code.
          assert.ok(isQueryError(error), `${name} ${JSON.stringify(q)}: ${String(error)}`);
          assert.match((error as Error).message, /is a number|is one of|is an integer|is an IP address/, JSON.stringify(q));
          refused++;
          break;
        }
        assert.deepEqual(got.ids, want, `seed ${SEED}, ${name}: ${JSON.stringify(q)}`);
      }
      if (want.length > 0) nonEmpty++;
    }
    assert.ok(nonEmpty > 100, `searches that find something: ${nonEmpty}`);
    assert.ok(refused < 100, `searches refused: ${refused}`);
  });

  it('matches text exactly: wildcards, quotes, backslashes, NUL and case are plain characters', () => {
    const wrong: string[] = [];
    for (const field of ['process.executable', 'process.name', 'process.args', 'process.working_directory', 'user.name']) {
      for (const value of [...AWKWARD, '/tmp/nul\0', 'nul\0', '/usr/bin/curl', '/usr/bin/curl\u{10FFFF}', '/opt/\u{1F980}']) {
        for (const op of ['eq', 'prefix', 'contains'] as const) {
          const query: EventQuery = { filters: [{ field, op, value }], limit: 10_000 };
          const got = walk(store, query).ids;
          const want = expected(events, query);
          if (JSON.stringify(got) !== JSON.stringify(want)) wrong.push(`${JSON.stringify(query.filters)}: ${got.length} events, not ${want.length}`);
        }
      }
    }
    assert.deepEqual(wrong, []);
  });

  it('bounds time at exact equality: since inclusive, until exclusive, cursors at the bounds', () => {
    const time = Date.parse((events[17] as any)['@timestamp']);
    const at = (q: EventQuery): string[] => walk(store, { ...q, limit: 2 }).ids;
    assert.deepEqual(at({ since: time, until: time + 1 }), expected(events, { since: time, until: time + 1 }));
    assert.ok(at({ since: time, until: time + 1 }).includes('ev-17'));
    assert.deepEqual(at({ since: time, until: time }), []);
    assert.deepEqual(at({ since: new Date(time + 1), order: 'asc' }), expected(events, { since: time + 1, order: 'asc' }));
    assert.ok(!at({ until: time }).includes('ev-17'));
  });

  it('refuses a forged cursor or one of the other order with a code, and reads one from another query as a position', () => {
    for (const cursor of ['', 'x', '!!', 'a'.repeat(200), Buffer.from('[1,2]').toString('base64url'), Buffer.from('[1,0,"d"]').toString('base64url'), Buffer.from('[1.5,2,"d"]').toString('base64url'), Buffer.from('{"a":1}').toString('base64url'), Buffer.from('[1,2,"x"]').toString('base64url'), Buffer.from('\0').toString('base64url')]) {
      assert.throws(() => store.search({ cursor }), isQueryError, JSON.stringify(cursor));
    }
    assert.throws(() => store.search({ cursor: encodeCursor({ time: T0, id: 5, order: 'asc' }) }), isQueryError);
    // A cursor is a position in (time, storage) order: from another search it still returns exactly the rows after it.
    const other = store.search({ host: 'db-01', limit: 5 });
    assert.ok(other.next !== undefined);
    const after = walk(store, { action: 'exec', cursor: other.next, limit: 500 }).ids;
    const last = other.events.at(-1) as any;
    const lastTime = Date.parse(last['@timestamp']);
    const lastRow = events.findIndex((e: any) => e.event.id === last.event.id);
    const want = expected(events, { action: 'exec' }).filter((id) => {
      const row = events.findIndex((e: any) => e.event.id === id);
      const t = Date.parse((events[row] as any)['@timestamp']);
      return t < lastTime || (t === lastTime && row < lastRow);
    });
    assert.deepEqual(after, want);
  });

  it('compares numbers as numbers and text as text', () => {
    const q = (field: string, value: string, op: FilterOp = 'eq'): string[] => walk(store, { filters: [{ field, op, value }], limit: 10_000 }).ids;
    assert.deepEqual(q('process.pid', '4242.0'), q('process.pid', '4242'));
    assert.deepEqual(q('process.pid', '4242.50'), expected(events, { filters: [{ field: 'process.pid', op: 'eq', value: '4242.5' }] }));
    // destination.port "80" (text) is not the port 80.
    assert.deepEqual(q('destination.port', '80'), expected(events, { filters: [{ field: 'destination.port', op: 'eq', value: '80' }] }));
    // process.args: the number 42 and the text "42" are both "42".
    assert.deepEqual(q('process.args', '42'), expected(events, { filters: [{ field: 'process.args', op: 'eq', value: '42' }] }));
    assert.throws(() => q('process.pid', 'abc'), isQueryError);
    assert.throws(() => q('destination.port', '080'), isQueryError);
  });
});
