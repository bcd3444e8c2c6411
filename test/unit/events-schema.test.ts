import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { renderEventsDoc } from '../../src/common/docs.js';
import { assertEvent, checkEvent, eventActions, eventKinds, eventSchemas, exampleEvent, type EventAction } from '../../src/common/events/index.js';
import { HadesError } from '../../src/common/errors.js';
import { timestampMs } from '../../src/common/events/fields.js';
import { projectRoot } from '../helpers/generated-docs.js';

/** The actions the mission names; the schema must define every one. */
const MISSION_ACTIONS: EventAction[] = [
  'exec', 'fork', 'exit', 'connect', 'accept', 'listen', 'dns_query', 'ptrace', 'memfd_create', 'module_load',
  'privilege_change', 'file_create', 'file_rename', 'file_delete', 'file_chmod', 'ssh_login', 'honeypot_touch',
  'scan_match', 'inventory_change', 'agent_drop', 'agent_health',
];

const clone = <T>(v: T): T => structuredClone(v);

describe('event schema', () => {
  it('defines every event kind of the mission', () => {
    for (const action of MISSION_ACTIONS) assert.ok(eventActions.includes(action), action);
  });

  it('keeps actions short, stable identifiers', () => {
    for (const action of eventActions) assert.match(action, /^[a-z][a-z_]{1,20}$/);
  });

  it('accepts the documented example of every kind', () => {
    for (const action of eventActions) {
      const result = checkEvent(exampleEvent(action));
      assert.ok(result.ok, `${action}: ${JSON.stringify(result.ok ? [] : result.problems)}`);
    }
  });

  it('uses ECS names for the common and process fields', () => {
    const exec = eventSchemas.exec.properties as Record<string, { properties?: Record<string, unknown> }>;
    assert.ok(exec['@timestamp']);
    for (const f of ['id', 'kind', 'category', 'type', 'action', 'sequence']) assert.ok(exec['event']?.properties?.[f], `event.${f}`);
    for (const f of ['pid', 'entity_id', 'executable', 'args', 'command_line', 'working_directory', 'parent', 'user']) {
      assert.ok(exec['process']?.properties?.[f], `process.${f}`);
    }
  });

  it('rejects an unknown field, naming it', () => {
    const e = clone(exampleEvent('exec')) as { process: Record<string, unknown> };
    e.process['comand_line'] = 'x';
    const result = checkEvent(e);
    assert.equal(result.ok, false);
    assert.ok(!result.ok && result.code === 'HADES_ERR_EVENT_INVALID');
    assert.ok(!result.ok && result.problems.some((p) => p.path === '/process/comand_line'), JSON.stringify(result));
  });

  it('rejects a missing required field and a wrong type', () => {
    const e = clone(exampleEvent('connect')) as { destination?: unknown; process: { pid: unknown } };
    delete e.destination;
    e.process.pid = 'forty-two';
    const result = checkEvent(e);
    assert.ok(!result.ok);
    const paths = result.problems.map((p) => p.path);
    assert.ok(paths.includes('/destination'), paths.join());
    assert.ok(paths.includes('/process/pid'), paths.join());
  });

  it('rejects an empty host name (it would become the host of the event\'s alerts)', () => {
    const e = clone(exampleEvent('exec')) as { host: { name: string } };
    e.host.name = '';
    const result = checkEvent(e);
    assert.ok(!result.ok);
    assert.deepEqual(result.problems.map((p) => p.path), ['/host/name']);
  });

  it('rejects an event time of the right shape that is no real time, and takes the real ones', () => {
    for (const time of ['2026-13-01T00:00:00Z', '2026-00-10T00:00:00Z', '2026-02-30T00:00:00Z', '2027-02-29T00:00:00Z', '2026-02-28T24:00:00Z', '2026-02-28T23:60:00Z', '2026-02-28T23:59:60Z']) {
      const result = checkEvent({ ...clone(exampleEvent('exec')), '@timestamp': time });
      assert.ok(!result.ok, time);
      assert.deepEqual([result.code, result.problems[0]?.path], ['HADES_ERR_EVENT_INVALID', '/@timestamp'], time);
    }
    for (const time of ['2028-02-29T23:59:59.999999999Z', '1970-01-01T00:00:00Z', '2026-12-31T00:00:00.1Z']) assert.ok(checkEvent({ ...clone(exampleEvent('exec')), '@timestamp': time }).ok, time);
  });

  it('reads an event time as the pattern and Date.parse together would, for every shape and edge (timestampMs)', () => {
    // The reference: the pattern, the calendar's days in the month, and Date.parse for the instant.
    const parts = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?Z$/;
    const reference = (text: string): number => {
      const m = parts.exec(text);
      if (!m) return NaN;
      const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
      const days = new Date(Date.UTC(2000, month, 0)).getUTCDate() - (month === 2 && !(year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)) ? 1 : 0);
      if (month < 1 || month > 12 || day < 1 || day > days || hour > 23 || minute > 59 || second > 59) return NaN;
      return Date.parse(text);
    };
    const texts = [
      '2026-11-29T10:00:00Z', '2026-11-29T10:00:00.1Z', '2026-11-29T10:00:00.12Z', '2026-11-29T10:00:00.123Z', '2026-11-29T10:00:00.123456789Z',
      '2026-11-29T10:00:00.1234567890Z', '2026-11-29T10:00:00.Z', '2026-11-29T10:00:00', '2026-11-29 10:00:00Z', '2026-11-29T10:00:00+00:00',
      '0000-01-01T00:00:00Z', '0099-12-31T23:59:59.999Z', '1969-12-31T23:59:59.5Z', '1900-02-29T00:00:00Z', '2000-02-29T00:00:00Z', '2100-02-29T00:00:00Z',
      '9999-12-31T23:59:59.999999999Z', '2026-02-30T00:00:00Z', '2026-04-31T00:00:00Z', '2026-13-01T00:00:00Z', '2026-00-01T00:00:00Z', '2026-01-00T00:00:00Z',
      '2026-01-01T24:00:00Z', '2026-01-01T23:60:00Z', '2026-01-01T23:59:60Z', '2026-1-01T00:00:00Z', '+2026-01-01T00:00:00Z', '2026-01-01T00:00:0aZ',
      '2026-01-01T00:00:00.1a3Z', '２０２６-01-01T00:00:00Z', '', 'Z', '2026-11-29T10:00:00.123z',
    ];
    // And a spread of real instants, with 0 to 9 decimals.
    for (let i = 0; i < 2000; i++) {
      const iso = new Date(-62_000_000_000_000 + i * 123_456_789_012.345).toISOString();
      texts.push(iso, iso.replace(/\.\d{3}Z$/, 'Z'), iso.replace(/Z$/, `${i % 1000}`.padStart(3, '0').slice(0, 1 + (i % 6)) + 'Z'));
    }
    for (const text of texts) assert.deepEqual(timestampMs(text), reference(text), text);
  });

  it('rejects a category or type that does not belong to the action', () => {
    const e = clone(exampleEvent('exec')) as { event: { category: string[] } };
    e.event.category = ['network'];
    assert.equal(checkEvent(e).ok, false);
  });

  it('rejects an unknown action and a value that is not an event, with codes', () => {
    const e = clone(exampleEvent('exec')) as { event: { action: string } };
    e.event.action = 'teleport';
    const result = checkEvent(e);
    assert.ok(!result.ok && result.code === 'HADES_ERR_EVENT_UNKNOWN_ACTION');
    for (const bad of [null, 42, 'exec', [], {}]) assert.equal(checkEvent(bad).ok, false);
    assert.throws(() => assertEvent({ event: {} }), (err: unknown) => err instanceof HadesError && err.code === 'HADES_ERR_EVENT_UNKNOWN_ACTION');
  });

  it('requires the process context where the kind says so, and only there', () => {
    for (const action of eventActions) {
      const spec = eventKinds[action];
      const e = clone(exampleEvent(action));
      delete e['process'];
      delete e['hades'];
      delete e['container'];
      const result = checkEvent(e);
      if (spec.process === 'required') assert.ok(!result.ok, `${action} must require process`);
    }
  });

  it('generates docs/events.md from the schema, and the file is up to date', () => {
    const doc = readFileSync(path.join(projectRoot, 'docs/events.md'), 'utf8');
    for (const action of eventActions) assert.ok(doc.includes(`## ${action}\n`), action);
    assert.equal(doc, renderEventsDoc(), 'docs/events.md is stale: run `npm run docs`');
  });
});
