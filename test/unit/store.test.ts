import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { HadesError } from '../../src/common/errors.js';
import { exampleEvent, type EventAction } from '../../src/common/events/schema.js';
import { migrate, openDatabase, type Db } from '../../src/server/db.js';
import { EVENTS_MIGRATIONS, EventStore, PAGE_BYTES, type EventQuery } from '../../src/server/store/events.js';
import { buildQuery, decodeCursor, encodeCursor, prefixEnd } from '../../src/server/store/query.js';

const root = mkdtempSync(path.join(tmpdir(), 'hades-store-'));
after(() => rmSync(root, { recursive: true, force: true }));
let files = 0;
const dbFile = (): string => path.join(root, `db${++files}`, 'hades.db');

const T0 = Date.UTC(2026, 10, 28, 8, 0, 0);
const NOW = Date.UTC(2026, 10, 28, 12, 0, 0);
const iso = (ms: number): string => new Date(ms).toISOString();

let ids = 0;
/** An event of `action` from the schema's example, with a fresh id, at `time`, with changes. */
function ev(action: EventAction, time: number, change: (e: any) => void = () => undefined): Record<string, unknown> {
  const e: any = structuredClone(exampleEvent(action));
  e['@timestamp'] = iso(time);
  e.event.id = `id-${++ids}`;
  change(e);
  return e;
}
const line = (e: Record<string, unknown>): string => JSON.stringify(e);
const idsOf = (events: readonly Record<string, unknown>[]): string[] => events.map((e: any) => e.event.id);

const open = (file = ':memory:'): { db: Db; store: EventStore } => {
  const db = openDatabase(file);
  return { db, store: new EventStore(db, { now: () => NOW }) };
};
const isCode =
  (code: string, text?: RegExp) =>
  (e: unknown): boolean => {
    assert.ok(e instanceof HadesError, `expected a HadesError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (text !== undefined) assert.match(e.message, text);
    return true;
  };

describe('event store: ingestion', () => {
  it('stores lines and objects, and drops duplicates by event.id across and within batches', () => {
    const { store } = open();
    const a = ev('exec', T0);
    const b = ev('exec', T0 + 1);
    const c = ev('exec', T0 + 2);
    assert.deepEqual(store.insertBatch('agent-1', [line(a), line(b)]), { stored: 2, duplicates: 0, storedIndexes: [0, 1], firstRowid: 1, lastRowid: 2 });
    assert.deepEqual(store.insertBatch('agent-1', [line(b), line(c), line(a)]), { stored: 1, duplicates: 2, storedIndexes: [1], firstRowid: 3, lastRowid: 3 });
    assert.deepEqual(store.insertBatch('agent-1', [c, c]), { stored: 0, duplicates: 2, storedIndexes: [], firstRowid: 0, lastRowid: 0 });
    const d = ev('exec', T0 + 3);
    assert.deepEqual(store.insertBatch('agent-2', [d, d]), { stored: 1, duplicates: 1, storedIndexes: [0], firstRowid: 4, lastRowid: 4 });
    assert.deepEqual(store.insertBatch('agent-2', []), { stored: 0, duplicates: 0, storedIndexes: [], firstRowid: 0, lastRowid: 0 });
    assert.equal(store.count(), 4);
  });

  it('adds event.ingested to the stored JSON, keeping the rest as sent, and leaves the caller\'s objects alone', () => {
    const { db, store } = open();
    const fromLine = ev('exec', T0);
    const fromObject = ev('connect', T0 + 1);
    const before = structuredClone(fromObject);
    store.insertBatch('agent-1', [line(fromLine)]);
    store.insertBatch('agent-1', [fromObject]);
    assert.deepEqual(fromObject, before);
    const stored = (db.prepare('SELECT event FROM events ORDER BY id').all() as { event: string }[]).map((r) => JSON.parse(r.event));
    const expect = (e: any): any => ({ ...e, event: { ...e.event, ingested: iso(NOW) } });
    assert.deepEqual(stored, [expect(fromLine), expect(fromObject)]);
    assert.deepEqual(store.search({ order: 'asc' }).events, stored);
  });

  it('adds event.ingested to lines of any layout, replacing one the agent sent', () => {
    const { db, store } = open();
    const reordered = ev('exec', T0);
    const { '@timestamp': ts, ...rest } = reordered as any;
    const lines = [
      JSON.stringify({ ...rest, '@timestamp': ts }), // @timestamp not first
      JSON.stringify(ev('exec', T0 + 1), null, 2), // pretty-printed
      line(ev('exec', T0 + 2, (e) => (e.event.ingested = '2020-01-01T00:00:00.000Z'))), // a stale ingested
      line(ev('exec', T0 + 3, (e) => (e['@timestamp'] = '2026-11-28T08:00:00.003000Z'))), // microseconds
      line(ev('exec', T0 + 4)).replace('"event":{"id"', '"event":{ "id"'), // a space in the event object
    ];
    assert.equal(store.insertBatch('agent-1', lines).stored, 5);
    const rows = db.prepare('SELECT time, event FROM events ORDER BY id').all() as { time: number; event: string }[];
    rows.forEach((row, i) => {
      const e = JSON.parse(row.event);
      assert.equal(e.event.ingested, iso(NOW), `line ${i}`);
      assert.equal(row.time, T0 + i, `line ${i}`);
    });
    assert.equal(JSON.parse((rows[0] as { event: string }).event)['@timestamp'], ts);
  });

  it('extracts the indexed columns of every kind of event', () => {
    const { db, store } = open();
    const events = [
      ev('exec', T0),
      ev('connect', T0 + 1),
      ev('dns_query', T0 + 2),
      ev('file_create', T0 + 3),
      ev('ssh_login', T0 + 4),
      ev('sudo', T0 + 5, (e) => (e.process = { pid: 1, name: 'sudo', executable: '/usr/bin/sudo', user: { id: '1000', name: 'alice-process' } })),
    ];
    store.insertBatch('agent-7', events.map(line));
    const rows = db.prepare('SELECT event_id, time, ingested, agent_id, host, action, executable, process_name, user_name, destination_ip, destination_port, source_ip, file_path, dns_name FROM events ORDER BY time').all() as any[];
    const common = (i: number) => ({ event_id: (events[i] as any).event.id, time: T0 + i, ingested: NOW, agent_id: 'agent-7', host: 'web-01' });
    const none = { executable: null, process_name: null, user_name: null, destination_ip: null, destination_port: null, source_ip: null, file_path: null, dns_name: null };
    assert.deepEqual(rows, [
      { ...common(0), ...none, action: 'exec', executable: '/usr/bin/curl', process_name: 'curl', user_name: 'www-data' },
      { ...common(1), ...none, action: 'connect', executable: '/usr/bin/curl', process_name: 'curl', user_name: 'www-data', destination_ip: '203.0.113.7', destination_port: 80, source_ip: '10.0.0.5' },
      { ...common(2), ...none, action: 'dns_query', executable: '/usr/bin/curl', process_name: 'curl', user_name: 'www-data', destination_ip: '127.0.0.53', destination_port: 53, dns_name: 'x1y2.oast.fun' },
      { ...common(3), ...none, action: 'file_create', executable: '/usr/bin/curl', process_name: 'curl', user_name: 'www-data', file_path: '/tmp/x' },
      { ...common(4), ...none, action: 'ssh_login', user_name: 'root', source_ip: '198.51.100.9' },
      // user.name wins over process.user.name
      { ...common(5), ...none, action: 'sudo', executable: '/usr/bin/sudo', process_name: 'sudo', user_name: 'alice' },
    ]);
  });

  it('refuses a batch with an event it cannot store, before writing any of it', () => {
    const { store } = open();
    const good = line(ev('exec', T0));
    const cases: [unknown, RegExp][] = [
      ['{"not json', /event 1 .*not JSON/],
      ['[1,2]', /not a JSON object/],
      [line(ev('exec', T0, (e) => delete e.event)), /no event object/],
      [line(ev('exec', T0, (e) => delete e.event.id)), /event\.id/],
      [line(ev('exec', T0, (e) => (e.event.id = ''))), /event\.id/],
      [line(ev('exec', T0, (e) => (e.event.action = 7))), /event\.action/],
      [line(ev('exec', T0, (e) => (e['@timestamp'] = 'yesterday'))), /@timestamp/],
      [line(ev('exec', T0, (e) => (e['@timestamp'] = '2026-11-28T08:00:00+02:00'))), /@timestamp/],
      [line(ev('exec', T0, (e) => delete e.host)), /host\.name/],
      [null, /not an object/],
    ];
    for (const [bad, message] of cases) {
      assert.throws(() => store.insertBatch('agent-1', [good, bad] as string[]), isCode('HADES_ERR_EVENT_INVALID', message));
    }
    assert.equal(store.count(), 0);
  });

  it('hands the events a batch stored, and only those, to onStored', () => {
    const db = openDatabase(':memory:');
    const seen: string[][] = [];
    const lastRowids: number[] = [];
    const store = new EventStore(db, {
      now: () => NOW,
      onStored: (lines, lastRowid) => {
        seen.push([...lines]);
        lastRowids.push(lastRowid);
      },
    });
    const a = ev('exec', T0);
    const b = ev('exec', T0 + 1);
    const c = ev('exec', T0 + 2);
    store.insertBatch('agent-1', [line(a)]);
    store.insertBatch('agent-1', [line(a), line(b), line(c)]);
    store.insertBatch('agent-1', [line(b)]);
    // With the rowid of the last: the rows of a batch are consecutive (a duplicate takes none).
    assert.deepEqual(lastRowids, [1, 3]);
    assert.deepEqual(
      seen.map((batch) => batch.map((l) => JSON.parse(l).event.id)),
      [[(a as any).event.id], [(b as any).event.id, (c as any).event.id]],
    );
    assert.equal(JSON.parse((seen[0] as string[])[0] as string).event.ingested, iso(NOW));
  });

  it('migrates once: a second store over the same database keeps the events', () => {
    const file = dbFile();
    const first = open(file);
    first.store.insertBatch('agent-1', [line(ev('exec', T0))]);
    first.db.close();
    const second = open(file);
    assert.equal(second.store.count(), 1);
    assert.equal((second.db.prepare("SELECT count(*) AS n FROM schema_migrations WHERE module = 'events'").get() as { n: number }).n, EVENTS_MIGRATIONS.length);
    second.db.close();
  });

  it('hands what a group of batches stored to onStored only once the group commits (a rolled-back group is not archived)', () => {
    const handed: string[][] = [];
    const db = openDatabase(':memory:');
    const store = new EventStore(db, { now: () => NOW, onStored: (lines) => handed.push([...lines]) });
    const a = ev('exec', T0);
    const b = ev('exec', T0 + 1);
    assert.throws(
      () =>
        store.grouped(() => {
          store.insertBatch('agent-1', [line(a)]);
          assert.equal(handed.length, 0, 'not before the commit');
          throw new Error('the turn failed');
        }),
      /the turn failed/,
    );
    assert.equal(store.count(), 0);
    assert.deepEqual(handed, [], 'nothing of the rolled-back group');
    store.grouped(() => {
      store.insertBatch('agent-1', [line(a)]);
      store.insertBatch('agent-2', [line(b)]);
    });
    assert.equal(handed.length, 2);
    assert.equal(store.count(), 2);
    store.insertBatch('agent-1', [line(ev('exec', T0 + 2))]);
    assert.equal(handed.length, 3, 'a batch on its own is handed on at its own commit');
    db.close();
  });

  it('drops an event as a duplicate only of the same agent\'s (another agent cannot shadow its ids)', () => {
    const { store } = open();
    const victim = ev('exec', T0);
    // A rogue agent sends the victim's next event id first.
    const forged = structuredClone(victim) as { process: { name: string } };
    forged.process.name = 'forged';
    assert.equal(store.insertBatch('rogue', [line(forged)]).stored, 1);
    assert.deepEqual(store.insertBatch('victim', [line(victim)]), { stored: 1, duplicates: 0, storedIndexes: [0], firstRowid: 2, lastRowid: 2 });
    assert.equal(store.insertBatch('victim', [line(victim)]).duplicates, 1, 'its own resend is still a duplicate');
    assert.equal(store.search({ agentId: 'victim', since: 0 }).events.length, 1);
    const id = (victim as { event: { id: string } }).event.id;
    assert.notEqual((store.byIds([id], 'victim')[0] as { process: { name: string } }).process.name, 'forged', 'the alert\'s own agent\'s event first');
    assert.equal((store.byIds([id], 'rogue')[0] as { process: { name: string } }).process.name, 'forged');
  });

  it('gives HADES_ERR_STORE_OPEN for a file that is not a database', () => {
    const file = dbFile();
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, 'this is not a database, but it is long enough to have a header of its own.'.repeat(20));
    assert.throws(() => openDatabase(file), isCode('HADES_ERR_STORE_OPEN', /cannot use the database .*: file is not a database/));
  });

  it('moves a store made before per-agent ids to them, keeping its events', () => {
    const file = dbFile();
    mkdirSync(path.dirname(file), { recursive: true });
    const old = openDatabase(file);
    migrate(old, 'events', EVENTS_MIGRATIONS.slice(0, 1));
    old.prepare("INSERT INTO events (event_id, time, ingested, agent_id, host, action, event) VALUES ('e1', ?, ?, 'agent-1', 'web-01', 'exec', '{}')").run(T0, NOW);
    old.close();
    const { db, store } = open(file);
    assert.equal(store.count(), 1);
    const indexes = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'").all() as { name: string }[]).map((r) => r.name);
    assert.ok(indexes.includes('events_event_id_agent') && !indexes.includes('events_event_id'), indexes.join(', '));
    db.close();
  });
});

/** A store with a small, varied fleet of events, one per second from T0, in the given order. */
function fleet(): { store: EventStore; all: Record<string, unknown>[] } {
  const { store } = open();
  const all = [
    ev('exec', T0 + 0, (e) => ((e.host.name = 'web-01'), (e.process.executable = '/usr/bin/curl'))),
    ev('exec', T0 + 1000, (e) => ((e.host.name = 'web-02'), (e.process.executable = '/usr/bin/wget'), (e.process.name = 'wget'), (e.process.args = ['wget', '-q', 'http://198.51.100.1/a']), (e.process.user.name = 'root'))),
    ev('connect', T0 + 2000, (e) => ((e.host.name = 'web-01'), (e.destination = { ip: '198.51.100.1', port: 4444 }))),
    ev('dns_query', T0 + 3000, (e) => (e.host.name = 'db-01')),
    ev('file_create', T0 + 4000, (e) => ((e.host.name = 'web-02'), (e.file.path = '/etc/cron.d/evil'))),
    ev('ssh_login', T0 + 5000, (e) => (e.host.name = 'db-01')),
    ev('exec', T0 + 6000, (e) => ((e.host.name = 'web-01'), (e.process.executable = '/usr/bin/python3'), (e.process.name = 'python3'), (e.process.args = ['python3', '-c', "import pty; pty.spawn('/bin/sh')"]), (e.process.working_directory = '/dev/shm'))),
  ];
  store.insertBatch('agent-a', all.slice(0, 4).map(line));
  store.insertBatch('agent-b', all.slice(4).map(line));
  return { store, all };
}

describe('event store: search', () => {
  const { store, all } = fleet();
  const newest = idsOf([...all].reverse());
  const find = (query: EventQuery): string[] => idsOf(store.search(query).events);
  const pick = (...indexes: number[]): string[] => indexes.map((i) => (all[i] as any).event.id);

  it('returns newest first by default, oldest first on request, and a limited page', () => {
    assert.deepEqual(find({}), newest);
    assert.deepEqual(find({ order: 'asc' }), [...newest].reverse());
    const page = store.search({ limit: 2 });
    assert.deepEqual(idsOf(page.events), newest.slice(0, 2));
    assert.equal(typeof page.next, 'string');
    assert.equal(store.search({ limit: 7 }).next, undefined);
  });

  it('filters by time (since inclusive, until exclusive), as Dates or milliseconds', () => {
    assert.deepEqual(find({ since: T0 + 2000, until: T0 + 4000, order: 'asc' }), pick(2, 3));
    assert.deepEqual(find({ since: new Date(T0 + 5000) }), pick(6, 5));
    assert.deepEqual(find({ until: new Date(T0 + 1000) }), pick(0));
    assert.deepEqual(find({ since: T0 + 3000, until: T0 + 3000 }), []);
  });

  it('filters by host, action (one or several) and the agent that sent the events', () => {
    assert.deepEqual(find({ host: 'web-01' }), pick(6, 2, 0));
    assert.deepEqual(find({ action: 'exec' }), pick(6, 1, 0));
    assert.deepEqual(find({ action: ['dns_query', 'ssh_login'] }), pick(5, 3));
    assert.deepEqual(find({ agentId: 'agent-b' }), pick(6, 5, 4));
    assert.deepEqual(find({ host: 'web-01', action: 'exec', agentId: 'agent-a' }), pick(0));
    assert.deepEqual(find({ host: 'nowhere' }), []);
  });

  it('filters on indexed fields: eq, prefix and contains', () => {
    const f = (field: string, op: 'eq' | 'prefix' | 'contains', value: string): string[] => find({ filters: [{ field, op, value }] });
    assert.deepEqual(f('process.executable', 'eq', '/usr/bin/wget'), pick(1));
    assert.deepEqual(f('process.executable', 'prefix', '/usr/bin/'), pick(6, 4, 3, 2, 1, 0));
    assert.deepEqual(f('process.executable', 'prefix', '/usr/bin/py'), pick(6));
    assert.deepEqual(f('process.executable', 'contains', 'get'), pick(1));
    assert.deepEqual(f('process.name', 'eq', 'python3'), pick(6));
    assert.deepEqual(f('user.name', 'eq', 'root'), pick(5, 1)); // ssh_login's user.name, wget's process.user.name
    assert.deepEqual(f('destination.ip', 'eq', '198.51.100.1'), pick(2));
    assert.deepEqual(f('destination.port', 'eq', '4444'), pick(2));
    assert.deepEqual(f('destination.port', 'prefix', '44'), pick(2));
    assert.deepEqual(f('destination.port', 'contains', '5'), pick(3));
    assert.deepEqual(f('source.ip', 'prefix', '198.51.'), pick(5));
    assert.deepEqual(f('file.path', 'prefix', '/etc/cron'), pick(4));
    assert.deepEqual(f('dns.question.name', 'contains', 'oast'), pick(3));
    assert.deepEqual(f('event.id', 'eq', (all[3] as any).event.id), pick(3));
    assert.deepEqual(f('event.action', 'eq', 'connect'), pick(2));
    assert.deepEqual(f('host.name', 'prefix', 'db-'), pick(5, 3));
  });

  it('filters on any other field through the JSON: strings, numbers, booleans, nested', () => {
    const f = (field: string, op: 'eq' | 'prefix' | 'contains', value: string): string[] => find({ filters: [{ field, op, value }] });
    assert.deepEqual(f('process.working_directory', 'eq', '/dev/shm'), pick(6));
    assert.deepEqual(f('process.working_directory', 'prefix', '/dev/'), pick(6));
    assert.deepEqual(f('hades.ancestry', 'contains', 'php-fpm'), pick(6, 1, 0)); // exec events carry it
    assert.deepEqual(f('process.pid', 'eq', '4242'), pick(6, 4, 3, 2, 1, 0));
    // A number is compared as a number: 4242.0 is 4242 (the check lets it through, so it must find it).
    assert.deepEqual(f('process.pid', 'eq', '4242.0'), pick(6, 4, 3, 2, 1, 0));
    assert.deepEqual(f('process.pid', 'eq', '4242.5'), []);
    assert.deepEqual(f('process.parent.name', 'eq', 'sh'), pick(6, 4, 3, 2, 1, 0));
    assert.deepEqual(f('hades.process.args_truncated', 'eq', 'false'), pick(6, 1, 0));
    assert.deepEqual(f('@timestamp', 'eq', iso(T0 + 5000)), pick(5));
    assert.deepEqual(f('agent.id', 'eq', 'ag_5f0c2d4e9a1b3c7d'), newest);
    assert.deepEqual(f('process.user.name', 'eq', 'root'), pick(1)); // exact ECS field, not the user_name column
    // An object, or a map itself, is not a value: refused, not an empty page that looks like "no such event".
    for (const field of ['process.parent', 'user', 'hades.cmdb', 'hades.cmdb.tags']) {
      assert.throws(() => f(field, 'eq', 'sh'), (e: unknown) => (e as HadesError).code === 'HADES_ERR_STORE_QUERY' && /is an object|holds a value under each of its keys/.test((e as Error).message), field);
    }
    // A value an enumerated field never holds, indexed or not.
    for (const [field, value] of [['event.action', 'Exec'], ['event.outcome', 'Success']] as const) {
      assert.throws(() => f(field, 'eq', value), (e: unknown) => (e as HadesError).code === 'HADES_ERR_STORE_QUERY' && /is one of/.test((e as Error).message), field);
    }
  });

  it('filters on a CMDB tag by the name its file gives the column (spaces, dashes, capitals, dots)', () => {
    const { store } = open();
    const tags = { 'Cost Center': 'cc-42', 'team-name': 'red', Team: 'blue', 'os.family': 'debian', plain: 'x' };
    const tagged = ev('exec', T0, (e) => (e.hades = { ...e.hades, cmdb: { owner: 'ana', tags } }));
    store.insertBatch('agent-1', [tagged, ev('exec', T0 + 1)]);
    const f = (field: string, value: string): string[] => idsOf(store.search({ filters: [{ field, op: 'eq', value }] }).events);
    for (const [key, value] of Object.entries(tags)) assert.deepEqual(f(`hades.cmdb.tags.${key}`, value), [(tagged as any).event.id], key);
    assert.deepEqual(f('hades.cmdb.tags.Team', 'red'), []);
    assert.deepEqual(f('hades.cmdb.owner', 'ana'), [(tagged as any).event.id]);
    // A quote cannot be put in a JSON path; other fields keep their strict names.
    assert.throws(() => store.search({ filters: [{ field: 'hades.cmdb.tags.a"b', op: 'eq', value: 'x' }] }), isCode('HADES_ERR_STORE_QUERY'));
    assert.throws(() => store.search({ filters: [{ field: 'process.Name', op: 'eq', value: 'x' }] }), isCode('HADES_ERR_STORE_QUERY'));
  });

  it('matches an array field when any element matches', () => {
    const f = (field: string, op: 'eq' | 'prefix' | 'contains', value: string): string[] => find({ filters: [{ field, op, value }] });
    assert.deepEqual(f('process.args', 'eq', '-q'), pick(1));
    assert.deepEqual(f('process.args', 'eq', 'curl'), pick(4, 3, 2, 0));
    assert.deepEqual(f('process.args', 'prefix', 'http://198.'), pick(1));
    assert.deepEqual(f('process.args', 'contains', 'pty.spawn'), pick(6));
    assert.deepEqual(f('event.category', 'eq', 'network'), pick(3, 2));
    const starts = [...all].reverse().filter((e: any) => e.event.type.includes('start'));
    assert.ok(starts.length >= 3);
    assert.deepEqual(f('event.type', 'eq', 'start'), idsOf(starts));
  });

  it('combines every filter with AND', () => {
    assert.deepEqual(
      find({
        since: T0,
        until: T0 + 10_000,
        host: 'web-01',
        action: ['exec', 'connect'],
        filters: [
          { field: 'process.executable', op: 'prefix', value: '/usr/bin/' },
          { field: 'process.args', op: 'contains', value: 'pty' },
        ],
      }),
      pick(6),
    );
  });

  it('treats values as data, never as SQL or patterns', () => {
    const f = (field: string, op: 'eq' | 'prefix' | 'contains', value: string): string[] => find({ filters: [{ field, op, value }] });
    for (const value of ["' OR 1=1 --", '%', '_', '*', '") OR 1=1 --']) {
      assert.deepEqual(f('process.executable', 'contains', value), []);
      assert.deepEqual(f('process.working_directory', 'prefix', value), []);
    }
    assert.deepEqual(find({ host: "web-01' OR '1'='1" }), []);
    assert.equal(store.count(), 7);
  });

  it('rejects bad input with HADES_ERR_STORE_QUERY and a message naming the part at fault', () => {
    const cursor = store.search({ limit: 1 }).next as string;
    const bad: [unknown, RegExp][] = [
      [{ filters: [{ field: 'process.name', op: 'like', value: 'x' }] }, /filters\[0\]\.op: unknown operator "like"/],
      [{ filters: [{ field: 'Process.Name', op: 'eq', value: 'x' }] }, /filters\[0\]\.field: "Process\.Name" is not a field path/],
      [{ filters: [{ field: "process.name') OR 1=1 --", op: 'eq', value: 'x' }] }, /is not a field path/],
      [{ filters: [{ field: 'process..name', op: 'eq', value: 'x' }] }, /is not a field path/],
      [{ filters: [{ field: 'process.nme', op: 'eq', value: 'x' }] }, /filters\[0\]\.field: no event has a field "process\.nme"; did you mean "process\.name"\?/],
      [{ filters: [{ field: 'no.such.field', op: 'eq', value: 'x' }] }, /no event has a field "no\.such\.field"/],
      // A field cut short: the one it begins, not the closest by spelling (process.end).
      [{ filters: [{ field: 'process.exe', op: 'eq', value: 'x' }] }, /no event has a field "process\.exe"; did you mean "process\.executable"\?/],
      [{ filters: [{ field: 'hades.ancestors.name', op: 'eq', value: 'nginx' }] }, /inside the list hades\.ancestors, .*hades\.ancestry~=nginx/],
      [{ filters: [{ field: 'dns.answers.data', op: 'eq', value: '1.2.3.4' }] }, /inside the list dns\.answers/],
      [{ filters: [{ field: 'hades.ancestors.nmae', op: 'eq', value: 'x' }] }, /no event has a field "hades\.ancestors\.nmae"(?!; did you mean "hades\.ancestors)/],
      [{ filters: [{ field: 'process.name[0]', op: 'eq', value: 'x' }] }, /is not a field path/],
      [{ filters: [{ field: '', op: 'eq', value: 'x' }] }, /is not a field path/],
      [{ filters: [{ field: 'process.name', op: 'eq', value: 7 }] }, /filters\[0\]\.value: must be a string/],
      [{ filters: [{ field: 'process.name', op: 'eq', value: 'x'.repeat(5000) }] }, /longer than/],
      [{ filters: [{ field: 'destination.port', op: 'eq', value: '80 OR 1=1' }] }, /integer/],
      // Fields that are not indexed: a value the field can never hold is refused, not matched against nothing.
      [{ filters: [{ field: 'process.pid', op: 'eq', value: 'abc' }] }, /process\.pid is a number; "abc" is not one/],
      [{ filters: [{ field: 'source.ip', op: 'eq', value: 'notanip' }] }, /source\.ip is an IP address; "notanip" is not one \(a prefix of one: source\.ip\^=notanip\)/],
      [{ filters: [{ field: 'destination.ip', op: 'eq', value: '10.0.0' }] }, /destination\.ip is an IP address/],
      [{ filters: [{ field: 'process.pid', op: 'eq', value: '9007199254740993' }] }, /process\.pid holds integers up to 9007199254740991 exactly; "9007199254740993" is beyond them/],
      [{ filters: [{ field: 'hades.process.fileless', op: 'eq', value: 'yes' }] }, /hades\.process\.fileless is true or false, not "yes"/],
      [{ filters: [{ field: 'hades.tamper.target', op: 'eq', value: 'proces' }] }, /hades\.tamper\.target is one of .*process.*, not "proces"/],
      [{ filters: [null] }, /filters\[0\]: must be an object/],
      [{ filters: 'process.name=x' }, /filters: must be a list/],
      [{ filters: Array.from({ length: 33 }, () => ({ field: 'process.name', op: 'eq', value: 'x' })) }, /at most 32/],
      [{ cursor: 'not a cursor!' }, /cursor: not a cursor/],
      [{ cursor: Buffer.from('[1,2]').toString('base64url') }, /cursor: not a cursor/],
      [{ cursor: Buffer.from('[1.5,2,"d"]').toString('base64url') }, /cursor: not a cursor/],
      [{ cursor: Buffer.from('[1,0,"d"]').toString('base64url') }, /cursor: not a cursor/],
      [{ cursor: Buffer.from('{"time":1}').toString('base64url') }, /cursor: not a cursor/],
      [{ cursor: cursor.slice(0, -3) }, /cursor: not a cursor/],
      [{ cursor, order: 'asc' }, /cursor: it belongs to a query in desc order/],
      [{ since: T0 + 1, until: T0 }, /until .* is before since/],
      [{ since: new Date('garbage') }, /since: not a valid time/],
      [{ until: Number.NaN }, /until: not a valid time/],
      [{ since: '2026-11-28' }, /since: not a valid time/],
      [{ limit: 0 }, /limit: must be an integer from 1 to 10000/],
      [{ limit: 10_001 }, /limit/],
      [{ limit: 2.5 }, /limit/],
      [{ limit: '10' }, /limit/],
      [{ order: 'sideways' }, /order: must be desc or asc/],
      [{ action: [] }, /action: an empty list/],
      [{ action: [3] }, /action\[0\]: must be a string/],
      [{ host: 5 }, /host: must be a string/],
      [{ agentId: null }, /agentId: must be a string/],
      [null, /must be an object/],
    ];
    for (const [query, message] of bad) {
      assert.throws(() => store.search(query as EventQuery), isCode('HADES_ERR_STORE_QUERY', message), JSON.stringify(query)?.slice(0, 80));
    }
    assert.equal(store.search({ limit: 10_000 }).events.length, 7);
  });

  it('issues cursors that decode to the last row and resist tampering', () => {
    const cursor = encodeCursor({ time: T0, id: 12, order: 'desc' });
    assert.match(cursor, /^[A-Za-z0-9_-]+$/);
    assert.deepEqual(decodeCursor(cursor), { time: T0, id: 12, order: 'desc' });
    assert.throws(() => decodeCursor(`${cursor}=`), isCode('HADES_ERR_STORE_QUERY'));
    const windowed = encodeCursor({ time: T0, id: 12, order: 'asc', window: { since: T0 - 1000, until: null } });
    assert.deepEqual(decodeCursor(windowed), { time: T0, id: 12, order: 'asc', window: { since: T0 - 1000, until: null } });
    for (const bad of ['[1,2,"d",1.5,null]', '[1,2,"d","x",null]', '[1,2,"d",1]', '[1,2,"d",1e300,null]']) {
      assert.throws(() => decodeCursor(Buffer.from(bad).toString('base64url')), isCode('HADES_ERR_STORE_QUERY'), bad);
    }
  });

  it('keeps the time window of the first page in the next ones: a since read again later (24h back from a later now) loses no event', () => {
    const { store } = open();
    const events = Array.from({ length: 6 }, (_, i) => ev('exec', T0 + i * 1000));
    store.insertBatch('agent-1', events.map(line));
    const first = store.search({ since: T0, limit: 4 });
    assert.equal(first.events.length, 4);
    // The next page's request names a since 3 s later, as the API's `since=24h` does minutes later.
    const second = store.search({ since: T0 + 3000, until: T0 + 1, limit: 4, cursor: first.next! });
    assert.deepEqual(idsOf(second.events), idsOf(events.slice(0, 2).reverse()));
    assert.equal(second.next, undefined);
  });

  it('reads fractional bounds as the times they are: an event at T is after since T - 0.5 and before until T + 0.5', () => {
    const { store } = open();
    store.insertBatch('agent-1', [ev('exec', T0)].map(line));
    assert.equal(store.search({ since: T0 + 0.5 }).events.length, 0);
    assert.equal(store.search({ since: T0 - 0.5 }).events.length, 1);
    assert.equal(store.search({ until: T0 + 0.5 }).events.length, 1);
    assert.equal(store.search({ until: T0 - 0.5 }).events.length, 0);
    for (const q of [{ since: 0, until: -1e16 }, { since: 1e300, until: 0 }]) assert.throws(() => store.search(q), isCode('HADES_ERR_STORE_QUERY', /not a valid time/));
  });
});

describe('event store: pagination', () => {
  it('walks every event exactly once, in order, through ties at the same millisecond', () => {
    const { store } = open();
    // 60 events over 12 milliseconds: five share each millisecond, in two batches.
    const events = Array.from({ length: 60 }, (_, i) => ev('exec', T0 + Math.floor(i / 5)));
    store.insertBatch('agent-1', events.slice(30).map(line));
    store.insertBatch('agent-1', events.slice(0, 30).map(line));
    for (const order of ['desc', 'asc'] as const) {
      const whole = idsOf(store.search({ order, limit: 1000 }).events);
      assert.equal(whole.length, 60);
      const walked: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = store.search({ order, limit: 7, ...(cursor === undefined ? {} : { cursor }) });
        walked.push(...idsOf(page.events));
        cursor = page.next;
        pages++;
      } while (cursor !== undefined);
      assert.deepEqual(walked, whole, order);
      assert.equal(pages, 9);
    }
  });

  it('stops a search with filters on fields that are not indexed at its scan budget, and goes on from there', () => {
    const db = openDatabase(':memory:');
    // 20 (row, filter) pairs: 10 rows with two such filters, 20 with one.
    const store = new EventStore(db, { now: () => NOW, scanBudget: 20 });
    // 50 events, newest first by time: every tenth has cwd /srv/app.
    const events = Array.from({ length: 50 }, (_, i) =>
      ev('exec', T0 + i * 1000, (e) => {
        e.process.working_directory = i % 10 === 0 ? '/srv/app' : '/home/x';
      }),
    );
    store.insertBatch('agent-1', events.map(line));
    const wanted = idsOf(events.filter((_, i) => i % 10 === 0)).reverse();
    const filters = [{ field: 'process.working_directory', op: 'eq' as const, value: '/srv/app' }];
    const first = store.search({ filters, limit: 100 });
    assert.equal(first.partial, true, 'stopped at 20 rows, not at the end');
    assert.deepEqual(idsOf(first.events), wanted.slice(0, 2), 'the matches among the newest 20');
    const walked = [...idsOf(first.events)];
    let page = first;
    let pages = 1;
    while (page.next !== undefined) {
      page = store.search({ filters, limit: 100, cursor: page.next });
      walked.push(...idsOf(page.events));
      pages++;
    }
    assert.deepEqual(walked, wanted, 'every match once, in order, across the partial pages');
    assert.equal(pages, 3);
    assert.equal(page.partial, undefined, 'the last page reached the start of the window');
    // Two such filters: 10 rows a request.
    const two = store.search({ filters: [...filters, { field: 'process.args', op: 'contains', value: 'a' }], limit: 100 });
    assert.equal(two.partial, true);
    // A window of exactly the budget: examined whole, so not partial (no empty page after it).
    const exact = store.search({ filters, limit: 100, since: T0 + 30 * 1000 });
    assert.equal(exact.partial, undefined);
    assert.equal(exact.next, undefined);
    assert.deepEqual(idsOf(exact.events), wanted.slice(0, 2));
    // A page that fills its limit is an ordinary one.
    const full = store.search({ filters, limit: 1 });
    assert.equal(full.partial, undefined);
    assert.deepEqual(idsOf(full.events), wanted.slice(0, 1));
    // A column no index serves (process.name, or any contains) is read row by row too, without the
    // JSON: a row costs a quarter of a JSON filter, 80 rows a request here.
    const byName = store.search({ filters: [{ field: 'process.name', op: 'eq', value: 'no-such-name' }], limit: 100, since: T0 - 1 });
    assert.equal(byName.partial, undefined, 'all 50 rows within the 80 allowed');
    const wide = new EventStore(db, { now: () => NOW, scanBudget: 2 });
    const capped = wide.search({ filters: [{ field: 'process.name', op: 'eq', value: 'no-such-name' }], limit: 100 });
    assert.equal(capped.partial, true, 'stopped at 8 rows, not at the end');
    assert.equal(wide.search({ filters: [{ field: 'process.executable', op: 'contains', value: 'no-such' }], limit: 100 }).partial, true, 'contains walks no index');
    assert.equal(wide.search({ filters: [{ field: 'process.executable', op: 'eq', value: '/no/such' }], limit: 100 }).partial, undefined, 'the executable index serves eq');
    // A prefix too: its range of the index is in executable order, which would be read whole and
    // sorted by time before the first row (a read-only token held the server for seconds so).
    const byPrefix = wide.search({ filters: [{ field: 'process.executable', op: 'prefix', value: '/usr/' }], limit: 100 });
    assert.equal(byPrefix.partial, true, 'a prefix walks no index in time order');
    assert.deepEqual(
      idsOf(byPrefix.events),
      idsOf(events.slice(-8)).reverse(),
      'the newest 8 rows examined, their JSON read for the matches',
    );
    const mixed = wide.search({ filters: [{ field: 'process.executable', op: 'prefix', value: '/usr/' }, { field: 'process.working_directory', op: 'eq', value: '/srv/app' }], limit: 100 });
    assert.equal(mixed.partial, true);
    // The agent id too (no index has it first): every event of the agent, a budget of rows a page.
    const ofAgent = wide.search({ agentId: 'agent-1', limit: 100 });
    assert.equal(ofAgent.partial, true);
    let agentPage = ofAgent;
    const agentEvents = [...idsOf(ofAgent.events)];
    while (agentPage.next !== undefined) {
      agentPage = wide.search({ agentId: 'agent-1', limit: 100, cursor: agentPage.next });
      agentEvents.push(...idsOf(agentPage.events));
    }
    assert.deepEqual(agentEvents, idsOf(events).reverse(), 'every event of the agent once, across the pages');
    assert.deepEqual(idsOf(wide.search({ agentId: 'agent-2', limit: 100, since: T0 + 40 * 1000 }).events), [], 'none of another agent');
    // Refused: too many such filters, and an empty text or prefix (it matches everything).
    assert.throws(() => store.search({ filters: Array.from({ length: 9 }, (_, i) => ({ field: 'process.working_directory', op: 'contains' as const, value: `x${i}` })) }), isCode('HADES_ERR_STORE_QUERY', /at most 8 on fields read from each event's JSON; these are not \(columns of their own\): .*host\.name.*\(indexed\) and .*process\.name/));
    assert.throws(() => store.search({ filters: [{ field: 'process.args', op: 'contains', value: '' }] }), isCode('HADES_ERR_STORE_QUERY', /an empty text matches every value/));
    db.close();
  });

  it('bounds a search on indexed columns alone too: one index walked, the other terms tested on a budget of rows', () => {
    const db = openDatabase(':memory:');
    // A budget of 5: 20 rows a request when no term reads the JSON.
    const store = new EventStore(db, { now: () => NOW, scanBudget: 5 });
    // 100 events on two hosts: the execs run curl, the file_opens are ls's.
    const events = Array.from({ length: 100 }, (_, i) =>
      ev(i % 2 === 0 ? 'exec' : 'file_open', T0 + i * 1000, (e) => {
        e.host.name = i % 4 < 2 ? 'web-1' : 'db-1';
        e.process.executable = i % 2 === 0 ? '/usr/bin/curl' : '/usr/bin/ls';
        e.user = { name: i % 3 === 0 ? 'root' : 'www-data' };
      }),
    );
    store.insertBatch('agent-1', events.map(line));
    const walkAll = (query: EventQuery): { ids: string[]; pages: number; partial: number } => {
      const found: string[] = [];
      let pages = 0;
      let partial = 0;
      let cursor: string | undefined;
      do {
        const page = store.search({ ...query, ...(cursor === undefined ? {} : { cursor }) });
        found.push(...idsOf(page.events));
        if (page.partial === true) partial++;
        cursor = page.next;
        pages++;
      } while (cursor !== undefined && pages < 100);
      return { ids: found, pages, partial };
    };
    const want = (test: (e: any) => boolean, order: 'asc' | 'desc' = 'desc'): string[] => {
      const ids = idsOf(events.filter(test));
      return order === 'desc' ? ids.reverse() : ids;
    };
    // The reviewer's search: host, action and executable that never meet, each of 50 events. It
    // used to read every event of one of them; it now stops after 20 rows walked, says so, and
    // goes on.
    const none: EventQuery = { host: 'web-1', action: 'file_open', filters: [{ field: 'process.executable', op: 'eq', value: '/usr/bin/curl' }], limit: 10 };
    const first = store.search(none);
    assert.deepEqual(first.events, []);
    assert.equal(first.partial, true, 'stopped at its budget of rows');
    assert.ok(first.next !== undefined);
    const walked = walkAll(none);
    assert.deepEqual(walked.ids, []);
    assert.ok(walked.pages > 1 && walked.pages <= 6, `pages: ${walked.pages}`);
    // Every combination finds each match once, in order, across its partial pages, in both orders.
    const queries: [EventQuery, (e: any) => boolean][] = [
      [{ host: 'web-1', action: 'exec' }, (e) => e.host.name === 'web-1' && e.event.action === 'exec'],
      [{ host: 'web-1', filters: [{ field: 'process.executable', op: 'eq', value: '/usr/bin/curl' }] }, (e) => e.host.name === 'web-1' && e.process.executable === '/usr/bin/curl'],
      [{ action: ['exec', 'file_open'], filters: [{ field: 'user.name', op: 'eq', value: 'root' }] }, (e) => e.user.name === 'root'],
      [{ action: ['file_open', 'connect'], host: 'db-1' }, (e) => e.event.action === 'file_open' && e.host.name === 'db-1'],
      [{ filters: [{ field: 'user.name', op: 'eq', value: 'root' }, { field: 'process.executable', op: 'eq', value: '/usr/bin/ls' }] }, (e) => e.user.name === 'root' && e.process.executable === '/usr/bin/ls'],
      [{ host: 'db-1', filters: [{ field: 'event.id', op: 'eq', value: idsOf([events[2]!])[0]! }] }, (e) => e === events[2]],
    ];
    for (const [query, test] of queries) {
      for (const order of ['desc', 'asc'] as const) {
        for (const limit of [1, 3, 100]) {
          assert.deepEqual(walkAll({ ...query, order, limit }).ids, want(test, order), `${JSON.stringify(query)} ${order} ${limit}`);
        }
      }
    }
    // Of the terms an index can walk, the one with the fewest rows is: a user no event has ends
    // the search at once, where a walk of the host would have gone on for pages.
    const nobody = store.search({ host: 'web-1', action: 'exec', filters: [{ field: 'user.name', op: 'eq', value: 'nobody' }], limit: 10 });
    assert.deepEqual(nobody, { events: [] });
    const rare = store.search({ host: 'web-1', action: 'exec', filters: [{ field: 'event.id', op: 'eq', value: idsOf([events[4]!])[0]! }] });
    assert.deepEqual(idsOf(rare.events), idsOf([events[4]!]));
    assert.equal(rare.partial, undefined);
    // One term alone is the walk itself: a full page, never partial.
    const alone = store.search({ host: 'web-1', limit: 5 });
    assert.equal(alone.partial, undefined);
    assert.deepEqual(idsOf(alone.events), want((e) => e.host.name === 'web-1').slice(0, 5));
    // Several actions alone: one walk per action, merged in order.
    const merged = walkAll({ action: ['file_open', 'exec'], limit: 7 });
    assert.equal(merged.partial, 0);
    assert.deepEqual(merged.ids, want(() => true));
    db.close();
  });

  it('finds an address however it is written: case, zeros, and an IPv4 address plain or mapped into IPv6', () => {
    const { db, store } = open();
    const v6 = ev('connect', T0, (e) => {
      e.destination.ip = '2001:db8::1';
      e.source.ip = '2001:db8::2';
      e.host.ip = ['2001:db8::5', '10.0.0.5'];
    });
    const v4 = ev('connect', T0 + 1, (e) => {
      e.destination.ip = '203.0.113.9';
      e.source.ip = '10.0.0.7';
    });
    // A dual-stack socket's IPv4 peer, as the agent writes it.
    const mapped = ev('connect', T0 + 2, (e) => {
      e.destination.ip = '::ffff:203.0.113.9';
      e.source.ip = '::ffff:10.0.0.7';
      e.host.ip = ['::ffff:10.0.0.5'];
    });
    store.insertBatch('agent-1', [v6, v4, mapped].map(line));
    const find = (field: string, value: string): string[] => idsOf(store.search({ filters: [{ field, op: 'eq', value }], order: 'asc' }).events);
    for (const field of ['destination.ip', 'source.ip', 'host.ip']) {
      const stored = field === 'destination.ip' ? '2001:db8::1' : field === 'source.ip' ? '2001:db8::2' : '2001:db8::5';
      const full = field === 'destination.ip' ? '2001:0db8:0000:0000:0000:0000:0000:0001' : field === 'source.ip' ? '2001:DB8:0:0:0:0:0:2' : '2001:0DB8::0005';
      assert.deepEqual(find(field, stored), idsOf([v6]), field);
      assert.deepEqual(find(field, stored.toUpperCase()), idsOf([v6]), `${field} in upper case`);
      assert.deepEqual(find(field, full), idsOf([v6]), `${field} written in full`);
    }
    // An IPv4 address finds it plain and mapped, whichever form is asked for.
    for (const value of ['203.0.113.9', '::ffff:203.0.113.9', '::FFFF:cb00:7109']) assert.deepEqual(find('destination.ip', value), idsOf([v4, mapped]), value);
    for (const value of ['10.0.0.7', '::ffff:10.0.0.7']) assert.deepEqual(find('source.ip', value), idsOf([v4, mapped]), value);
    assert.deepEqual(find('host.ip', '10.0.0.5'), idsOf([v6, mapped]));
    // Not an address: refused, as before; a prefix is compared as text.
    assert.throws(() => find('destination.ip', '203.0.113.09'), isCode('HADES_ERR_STORE_QUERY', /is an IP address/));
    assert.deepEqual(idsOf(store.search({ filters: [{ field: 'destination.ip', op: 'prefix', value: '203.0.' }] }).events), idsOf([v4]));
    db.close();
  });

  it('stops a page before PAGE_BYTES of events, with one event at least, and goes on from there', () => {
    const db = openDatabase(':memory:');
    // Events of 1 MiB of arguments (as an agent never writes, but the store may hold from before
    // ingestion bounded them): the default budget of 4 MiB takes three of them a page.
    const store = new EventStore(db, { now: () => NOW });
    const big = Array.from({ length: 8 }, (_, i) => ev('exec', T0 + i * 1000, (e) => (e.process.args = ['x'.repeat(1024 * 1024)])));
    store.insertBatch('agent-1', big.map(line));
    const first = store.search({ limit: 100 });
    assert.equal(PAGE_BYTES, 4 * 1024 * 1024);
    assert.deepEqual(idsOf(first.events), idsOf(big.slice(5)).reverse(), 'the newest three: a fourth would pass 4 MiB');
    assert.equal(first.partial, true);
    assert.ok(first.next !== undefined);
    const walked = [...idsOf(first.events)];
    let page = first;
    while (page.next !== undefined) {
      page = store.search({ limit: 100, cursor: page.next });
      walked.push(...idsOf(page.events));
    }
    assert.deepEqual(walked, idsOf(big).reverse(), 'every event once, in order, across the pages');
    assert.equal(page.partial, undefined);

    // One event larger than the budget still makes a page; the budget counts with the scan's.
    const tiny = new EventStore(db, { now: () => NOW, pageBytes: 1000, scanBudget: 2 });
    const one = tiny.search({ limit: 100, order: 'asc' });
    assert.deepEqual(idsOf(one.events), idsOf(big.slice(0, 1)));
    assert.equal(one.partial, true);
    const small = Array.from({ length: 30 }, (_, i) => ev('exec', T0 - 100_000 + i, (e) => (e.host.name = i % 3 === 0 ? 'web-1' : 'db-1')));
    store.insertBatch('agent-1', small.map(line));
    const size = Buffer.byteLength(JSON.stringify(store.search({ limit: 1, until: T0 }).events[0]));
    const paged = new EventStore(db, { now: () => NOW, pageBytes: size * 4 + 10, scanBudget: 2 });
    for (const query of [{ until: T0 }, { until: T0, host: 'web-1' }, { until: T0, action: 'exec', host: 'db-1' }, { until: T0, filters: [{ field: 'process.working_directory', op: 'contains' as const, value: '/' }] }] as EventQuery[]) {
      const ids: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const p = paged.search({ ...query, limit: 10, ...(cursor === undefined ? {} : { cursor }) });
        assert.ok(p.events.length <= 4, `${JSON.stringify(query)}: ${p.events.length} events in a page of at most 4`);
        ids.push(...idsOf(p.events));
        cursor = p.next;
        pages++;
      } while (cursor !== undefined && pages < 200);
      assert.deepEqual(ids, idsOf(store.search({ ...query, limit: 10_000 }).events), JSON.stringify(query));
    }
    db.close();
  });

  it('walks one index in time order for every search, the one with the fewest rows of those it could, and reads no table whole', () => {
    const { db, store } = open();
    store.insertBatch('agent-1', [line(ev('exec', T0)), line(ev('connect', T0 + 1))]);
    const queries: EventQuery[] = [
      {},
      { since: T0, until: T0 + 5 },
      { host: 'h', action: 'exec', filters: [{ field: 'process.executable', op: 'eq', value: '/x' }] },
      { action: ['exec', 'connect'], filters: [{ field: 'user.name', op: 'eq', value: 'root' }] },
      { filters: [{ field: 'destination.ip', op: 'eq', value: '203.0.113.7' }, { field: 'user.name', op: 'eq', value: 'root' }] },
      { filters: [{ field: 'event.id', op: 'eq', value: 'x' }, { field: 'host.name', op: 'eq', value: 'h' }], order: 'asc' },
      { agentId: 'agent-1', filters: [{ field: 'process.name', op: 'eq', value: 'x' }, { field: 'process.working_directory', op: 'eq', value: '/' }] },
      { action: Array.from({ length: 9 }, (_, i) => `a${i}`) },
    ];
    for (const query of queries) {
      const built = buildQuery(query);
      const statements: [string, readonly (string | number)[]][] = [];
      for (const plan of [built, ...(built.choices ?? []).map((c) => c.plan())]) {
        statements.push([plan.sql, plan.params]);
        if (plan.scan !== undefined) statements.push([plan.scan.sql, plan.scan.params]);
      }
      for (const choice of built.choices ?? []) statements.push([choice.probe(100).sql, choice.probe(100).params]);
      for (const [sql, params] of statements) {
        const plan = (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map((r) => r.detail);
        // Rows of `events` are only ever reached through an index, never by a scan of the table.
        const scans = plan.filter((d) => /^SCAN (events|e)\b(?! USING (COVERING )?INDEX)/.test(d));
        assert.deepEqual(scans, [], `${JSON.stringify(query)}: ${plan.join(' | ')}`);
      }
      store.search(query);
    }
    db.close();
  });

  it('stays stable while events arrive: no event twice, none of the first ones missed', () => {
    const { store } = open();
    const first = Array.from({ length: 40 }, (_, i) => ev('exec', T0 + Math.floor(i / 4)));
    store.insertBatch('agent-1', first.map(line));
    const walked: string[] = [];
    let page = store.search({ limit: 6, action: 'exec' });
    let round = 0;
    for (;;) {
      walked.push(...idsOf(page.events));
      if (page.next === undefined) break;
      // Between pages: newer events, late events older than the cursor, and events at its very millisecond.
      const last = page.events[page.events.length - 1] as any;
      const at = Date.parse(last['@timestamp']);
      store.insertBatch('agent-1', [line(ev('exec', T0 + 1000 + round)), line(ev('exec', at)), line(ev('exec', T0 - 1 - round))]);
      round++;
      page = store.search({ limit: 6, action: 'exec', cursor: page.next });
    }
    assert.equal(new Set(walked).size, walked.length, 'an event came twice');
    for (const id of idsOf(first)) assert.ok(walked.includes(id), `${id} was missed`);
    // The order held: each page continued below the previous one.
    const times = store.search({ limit: 1000 }).events.filter((e: any) => walked.includes(e.event.id)).map((e: any) => e.event.id);
    assert.deepEqual(walked, times);
  });
});

describe('event store: retention, counts and stats', () => {
  it('counts and describes an empty and a filled store', () => {
    const { store } = open();
    const empty = store.stats();
    assert.equal(empty.events, 0);
    assert.equal(empty.oldest, undefined);
    assert.equal(empty.newest, undefined);
    assert.ok(empty.bytes > 0);
    store.insertBatch('agent-1', [line(ev('exec', T0 + 5)), line(ev('exec', T0 - 5)), line(ev('exec', T0))]);
    const filled = store.stats();
    assert.deepEqual({ ...filled, bytes: 0 }, { events: 3, bytes: 0, oldest: T0 - 5, newest: T0 + 5 });
    // Pages are 16 KiB: three small events may fit in pages the empty store already has.
    assert.ok(filled.bytes >= empty.bytes);
    store.insertBatch('agent-1', Array.from({ length: 200 }, (_, i) => line(ev('exec', T0 + 10 + i))));
    assert.ok(store.stats().bytes > empty.bytes);
    assert.equal(store.count(), 203);
  });

  it('deletes events stored more than maxAgeDays ago, in chunks, and keeps the rest, whatever their own time says', async () => {
    const db = openDatabase(':memory:');
    const day = 86_400_000;
    let clock = NOW - 6 * day;
    const store = new EventStore(db, { now: () => clock });
    // Stored over 6 days, every 6 hours (oldest first); each event's own time is a year before
    // its storage, as from a host whose clock was set back: that must not make it go sooner.
    const events: Record<string, unknown>[] = [];
    for (let i = 0; i < 25; i++) {
      clock = NOW - (24 - i) * day * 0.25;
      const e = ev('exec', clock - 365 * day);
      events.push(e);
      store.insertBatch('agent-1', [line(e)]);
    }
    // Stored more than 3 days before NOW: (24 - i) * 0.25 > 3, i.e. i < 12.
    assert.deepEqual(store.enforceRetention({ maxAgeDays: 3, chunkRows: 4, now: NOW }), { deletedByAge: 12, deletedBySize: 0 });
    assert.equal(store.count(), 13);
    assert.deepEqual(await store.enforceRetentionAsync({ maxAgeDays: 1, chunkRows: 2, now: NOW }), { deletedByAge: 8, deletedBySize: 0 });
    assert.deepEqual(idsOf(store.search({ order: 'asc', since: 0 }).events), idsOf(events.slice(20)));
    assert.deepEqual(store.enforceRetention({ maxAgeDays: 1, now: NOW }), { deletedByAge: 0, deletedBySize: 0 });
    // Everything past its age: the newest row stays, so that rowids keep growing (the detection
    // mark and the cursors count on it).
    const last = store.lastRowid();
    assert.deepEqual(store.enforceRetention({ maxAgeDays: 1, now: NOW + 30 * day }), { deletedByAge: 4, deletedBySize: 0 });
    assert.equal(store.count(), 1);
    clock = NOW + 30 * day;
    assert.equal(store.insertBatch('agent-1', [line(ev('exec', clock))]).firstRowid, last + 1);
    // One row a chunk, and only the newest left: done, not a loop.
    assert.deepEqual(store.enforceRetention({ maxAgeDays: 1, chunkRows: 1, now: NOW + 60 * day }), { deletedByAge: 1, deletedBySize: 0 });
    db.close();
  });

  it('ages out the events stored after a time the server clock was ahead, and those stamped ahead once a later one is old', () => {
    const db = openDatabase(':memory:');
    const day = 86_400_000;
    let clock = NOW - 10 * day;
    const store = new EventStore(db, { now: () => clock });
    const stored: Record<string, unknown>[] = [];
    const store1 = (): void => {
      const e = ev('exec', clock);
      stored.push(e);
      store.insertBatch('agent-1', [line(e)]);
    };
    store1(); // 10 days ago
    clock = NOW + 5 * 365 * day; // the clock jumps five years ahead for three events (9 days ago)
    for (let i = 0; i < 3; i++) store1();
    clock = NOW - 8 * day; // set right again
    for (let i = 0; i < 4; i++) store1();
    clock = NOW - 4 * day;
    store1();
    // Before, the walk stopped at the first event stamped ahead and kept everything after it.
    assert.deepEqual(store.enforceRetention({ maxAgeDays: 7, chunkRows: 2, now: NOW }), { deletedByAge: 8, deletedBySize: 0 });
    assert.deepEqual(idsOf(store.search({ order: 'asc', since: 0 }).events), idsOf(stored.slice(8)));
    // Stamped ahead with nothing old stored after them: their age is not known, they stay.
    clock = NOW + 5 * 365 * day;
    store1();
    store1();
    clock = NOW;
    store1();
    assert.deepEqual(store.enforceRetention({ maxAgeDays: 3, chunkRows: 1, now: NOW }), { deletedByAge: 1, deletedBySize: 0 });
    assert.equal(store.count(), 3);
    db.close();
  });

  it('deletes the oldest events while the database is larger than maxBytes, counting its WAL', () => {
    const { db, store } = open(dbFile());
    const pad = 'p'.repeat(1500);
    const events = Array.from({ length: 3000 }, (_, i) => ev('exec', T0 + i * 1000, (e) => (e.process.command_line = pad)));
    for (let i = 0; i < events.length; i += 500) store.insertBatch('agent-1', events.slice(i, i + 500).map(line));
    const before = store.stats();
    assert.ok(before.bytes > 6_000_000, `only ${before.bytes} bytes`);
    const maxBytes = 2_000_000;
    const result = store.enforceRetention({ maxBytes, chunkRows: 500 });
    assert.equal(result.deletedByAge, 0);
    const after = store.stats();
    assert.ok(after.bytes <= maxBytes, `${after.bytes} > ${maxBytes}`);
    assert.equal(after.events, 3000 - result.deletedBySize);
    // Deleted from the oldest, and not much more than needed (the database stays close to the limit).
    assert.equal(after.newest, T0 + 2999 * 1000);
    assert.equal(after.oldest, T0 + result.deletedBySize * 1000);
    assert.ok(after.bytes > maxBytes * 0.75, `${after.bytes} bytes kept: more deleted than needed`);
    // Under the limit, nothing more goes.
    assert.deepEqual(store.enforceRetention({ maxBytes }), { deletedByAge: 0, deletedBySize: 0 });
    db.close();
  });

  it('counts only the events\' pages against maxBytes: rows added to other tables (tasks, alerts) never have events deleted', () => {
    const { db, store } = open(dbFile());
    const pad = 'p'.repeat(1500);
    const events = Array.from({ length: 1000 }, (_, i) => ev('exec', T0 + i * 1000, (e) => (e.process.command_line = pad)));
    for (let i = 0; i < events.length; i += 500) store.insertBatch('agent-1', events.slice(i, i + 500).map(line));
    db.pragma('wal_checkpoint(TRUNCATE)');
    const events1 = store.eventBytes();
    // An analyst's tasks of 64 KiB of SQL each, say: 8 MB in a table of their own.
    db.exec('CREATE TABLE padding (text TEXT)');
    const insert = db.prepare('INSERT INTO padding VALUES (?)');
    for (let i = 0; i < 128; i++) insert.run('x'.repeat(65_536));
    db.pragma('wal_checkpoint(TRUNCATE)');
    assert.ok(store.liveBytes() > events1 + 8_000_000, 'the file grew');
    assert.ok(Math.abs(store.eventBytes() - events1) < 64 * 1024, `${store.eventBytes()} against ${events1}: the events' share did not move`);
    // A limit the events alone are under: nothing goes, however large the file.
    assert.deepEqual(store.enforceRetention({ maxBytes: events1 + 100_000 }), { deletedByAge: 0, deletedBySize: 0 });
    assert.equal(store.count(), 1000);
    // Under it, the oldest go until the events' pages fit, not the file.
    const result = store.enforceRetention({ maxBytes: Math.floor(events1 / 2), chunkRows: 200 });
    assert.ok(result.deletedBySize > 300 && result.deletedBySize < 700, `${result.deletedBySize} of 1000 deleted to halve the events' pages`);
    db.close();
  });

  it('deletes only what the limit asks while another connection reads (its WAL cannot be folded back, and deletes only grow it)', () => {
    const file = dbFile();
    const { db, store } = open(file);
    const pad = 'p'.repeat(1500);
    const events = Array.from({ length: 3000 }, (_, i) => ev('exec', T0 + i * 1000, (e) => (e.process.command_line = pad)));
    for (let i = 0; i < events.length; i += 500) store.insertBatch('agent-1', events.slice(i, i + 500).map(line));
    db.pragma('wal_checkpoint(TRUNCATE)');
    const before = store.stats();
    // A backup, an analyst's sqlite3, Litestream: a reader that holds a snapshot keeps the WAL.
    const reader = new Database(file, { readonly: true });
    reader.exec('BEGIN');
    reader.prepare('SELECT count(*) AS n FROM events').get();
    try {
      const maxBytes = Math.floor(before.bytes * 0.8);
      const result = store.enforceRetention({ maxBytes, chunkRows: 500 });
      // About a fifth had to go; every event but the newest went.
      assert.ok(result.deletedBySize > 0);
      assert.ok(result.deletedBySize < 3000 * 0.4, `${result.deletedBySize} of 3000 events deleted to free a fifth of the database`);
      assert.equal(store.count(), 3000 - result.deletedBySize);
    } finally {
      reader.exec('ROLLBACK');
      reader.close();
      db.close();
    }
  });
});

describe('event store: write failures', () => {
  it('gives HADES_ERR_STORE_WRITE on a read-only database, with nothing written', () => {
    const file = dbFile();
    const first = open(file);
    first.store.insertBatch('agent-1', [line(ev('exec', T0))]);
    first.db.close();
    const readonly = new Database(file, { readonly: true });
    const store = new EventStore(readonly);
    assert.throws(() => store.insertBatch('agent-1', [line(ev('exec', T0 + 1)), line(ev('exec', T0 + 2))]), isCode('HADES_ERR_STORE_WRITE', /agent-1/));
    assert.equal(store.count(), 1);
    readonly.close();
  });

  it('gives HADES_ERR_STORE_WRITE when the database stays locked, and stores the batch once it is free', () => {
    const file = dbFile();
    const { db, store } = open(file);
    db.pragma('busy_timeout = 50');
    const other = new Database(file);
    other.exec('BEGIN IMMEDIATE');
    const batch = [line(ev('exec', T0)), line(ev('exec', T0 + 1))];
    assert.throws(
      () => store.insertBatch('agent-1', batch),
      (e: unknown) => isCode('HADES_ERR_STORE_WRITE')(e) && (e as HadesError).details?.['sqlite'] === 'SQLITE_BUSY',
    );
    other.exec('ROLLBACK');
    other.close();
    assert.deepEqual(store.insertBatch('agent-1', batch), { stored: 2, duplicates: 0, storedIndexes: [0, 1], firstRowid: 1, lastRowid: 2 });
    db.close();
  });

  it('grows the file only as far as limitGrowth lets it: past it a batch fails as on a full disk, and the pages retention frees are reused', () => {
    const { db, store } = open(dbFile());
    const pad = 'g'.repeat(1000);
    const batch = (from: number, n: number) => Array.from({ length: n }, (_, i) => line(ev('exec', T0 + from + i, (e) => (e.process.command_line = pad))));
    store.insertBatch('agent-1', batch(0, 2000));
    // The WAL holds pages the file does not have yet, and may grow to its limit: both are owed.
    assert.ok(store.owedBytes() > 0);
    const pages = db.pragma('page_count', { simple: true }) as number;
    store.limitGrowth(0);
    assert.throws(
      () => store.insertBatch('agent-1', batch(2000, 500)),
      (e: unknown) => isCode('HADES_ERR_STORE_WRITE')(e) && (e as HadesError).details?.['sqlite'] === 'SQLITE_FULL',
    );
    assert.equal(store.count(), 2000, 'nothing of the refused batch is stored');
    assert.ok(store.enforceRetention({ maxBytes: store.eventBytes() / 2 }).deletedBySize > 0);
    assert.equal(store.insertBatch('agent-1', batch(2000, 500)).stored, 500, 'stored in the pages the deletes freed');
    assert.equal(db.pragma('page_count', { simple: true }), pages);
    store.limitGrowth(Infinity);
    assert.equal(store.insertBatch('agent-1', batch(2500, 2000)).stored, 2000);
    assert.ok((db.pragma('page_count', { simple: true }) as number) > pages);
    db.close();
  });

  it('gives HADES_ERR_STORE_WRITE when the disk is full, keeping every batch it acknowledged and no part of the others', (t) => {
    if (process.getuid?.() !== 0) return t.skip('needs root to mount a tmpfs');
    const dir = path.join(root, 'full');
    mkdirSync(dir);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', dir], { stdio: 'ignore' });
    } catch {
      return t.skip('cannot mount a tmpfs here');
    }
    try {
      const { db, store } = open(path.join(dir, 'hades.db'));
      let acknowledged = 0;
      let failure: unknown;
      const pad = 'f'.repeat(1000);
      for (let b = 0; b < 200 && failure === undefined; b++) {
        const batch = Array.from({ length: 50 }, (_, i) => line(ev('exec', T0 + b * 50 + i, (e) => (e.process.command_line = pad))));
        try {
          acknowledged += store.insertBatch('agent-1', batch).stored;
        } catch (error) {
          failure = error;
        }
      }
      assert.ok(failure !== undefined, 'the disk never filled');
      isCode('HADES_ERR_STORE_WRITE')(failure);
      assert.equal((failure as HadesError).details?.['sqlite'], 'SQLITE_FULL');
      assert.ok(acknowledged > 0);
      assert.equal(store.count(), acknowledged);
      assert.equal(store.search({ limit: 10_000 }).events.length, acknowledged);
      db.close();
    } finally {
      execFileSync('umount', [dir]);
    }
  });
});

describe('event store: prefix filters on awkward text', () => {
  it('finds every text that starts with a prefix, past U+10FFFF and through NUL characters', () => {
    const { store } = open();
    const all = [
      ev('exec', T0, (e) => ((e.process.executable = '/tmp/\u{10FFFF}evil'), (e.process.working_directory = 'a\0b'))),
      ev('exec', T0 + 1, (e) => ((e.process.executable = '/tmp/\u{10FFFF}'), (e.process.working_directory = 'a\0c'))),
      ev('exec', T0 + 2, (e) => ((e.process.executable = '/tmp/a\0b'), (e.process.args = ['x\0y']))),
      ev('exec', T0 + 3, (e) => (e.process.executable = '/tmq')),
    ];
    store.insertBatch('agent-1', all.map(line));
    const f = (field: string, value: string): string[] => idsOf(store.search({ filters: [{ field, op: 'prefix', value }], order: 'asc' }).events);
    const pick = (...indexes: number[]): string[] => indexes.map((i) => (all[i] as any).event.id);
    // An indexed column walks a range: its end must not stop at the prefix followed by U+10FFFF.
    assert.deepEqual(f('process.executable', '/tmp/'), pick(0, 1, 2));
    assert.deepEqual(f('process.executable', '/tmp/\u{10FFFF}'), pick(0, 1));
    assert.deepEqual(f('process.executable', '\u{10FFFF}'), []);
    // SQLite's substr() of text stops at NUL: the prefix is compared as bytes.
    assert.deepEqual(f('process.executable', '/tmp/a\0'), pick(2));
    assert.deepEqual(f('process.working_directory', 'a\0'), pick(0, 1));
    assert.deepEqual(f('process.working_directory', 'a\0c'), pick(1));
    assert.deepEqual(f('process.args', 'x\0'), pick(2));
  });

  it('ends a prefix range at the next code point, past the surrogates', () => {
    assert.equal(prefixEnd('/tmp/'), '/tmp0');
    assert.equal(prefixEnd('a\u{10FFFF}\u{10FFFF}'), 'b');
    assert.equal(prefixEnd('\u{D7FF}'), '\u{E000}');
    assert.equal(prefixEnd('\u{10FFFF}'), undefined);
  });
});
