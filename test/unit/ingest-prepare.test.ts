/**
 * prepareBatch (src/server/ingest/prepare.ts): what the ingest worker makes of an agent's batch
 * before the store sees it. The lines that are valid events become rows (the stored JSON last,
 * with event.ingested and the certificate's agent id); the others are counted as rejected without
 * costing the batch; a batch with no valid event, or too many lines, is refused whole.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { exampleEvent, type EventAction } from '../../src/common/events/index.js';
import { REDACTED } from '../../src/common/redact.js';
import { batchBytes, MAX_BATCH_BYTES, MAX_BATCH_EVENTS, MAX_EVENT_BYTES, prepareBatch } from '../../src/server/ingest/prepare.js';
import { MAX_MESSAGE_BYTES } from '../../src/runtime/gateway-proto.js';
import type { Row } from '../../src/server/store/row.js';

const T0 = Date.UTC(2026, 10, 28, 8, 0, 0);
const NOW = Date.UTC(2026, 10, 28, 12, 0, 0);
const iso = (ms: number): string => new Date(ms).toISOString();
const AGENT = 'ag_certificate0001';

let ids = 0;
/** An example event of `action` with a fresh id, at T0 + `offset` ms, with changes. */
function ev(action: EventAction, offset = 0, change: (e: any) => void = () => undefined): Record<string, any> {
  const e: any = structuredClone(exampleEvent(action));
  e['@timestamp'] = iso(T0 + offset);
  e.event.id = `id-${++ids}`;
  change(e);
  return e;
}
const ndjson = (lines: readonly (Record<string, unknown> | string)[]): string => lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n';
/** The stored JSON of a row (its last column), parsed. */
const stored = (row: Row | undefined): any => JSON.parse(row![14]);

describe('ingest: prepareBatch', () => {
  it('makes a row of every valid line, in order: the columns, and the stored JSON with event.ingested and the certificate\'s agent id', () => {
    const exec = ev('exec', 0, (e) => (e.agent.id = 'ag_someone_else'));
    const connect = ev('connect', 1, (e) => delete e.agent);
    const stale = ev('exec', 2, (e) => (e.event.ingested = '2020-01-01T00:00:00.000Z'));
    const batch = prepareBatch(AGENT, ndjson([exec, connect, stale]), undefined, NOW);
    assert.equal(batch.refused, undefined);
    assert.equal(batch.rejected, 0);
    assert.equal(batch.rows.length, 3);
    assert.equal(batch.events.length, 3);

    const [row0, row1, row2] = batch.rows;
    assert.deepEqual(row0!.slice(0, 14), [exec.event.id, T0, NOW, AGENT, 'web-01', 'exec', '/usr/bin/curl', 'curl', 'www-data', null, null, null, null, null]);
    assert.deepEqual(row1!.slice(0, 6), [connect.event.id, T0 + 1, NOW, AGENT, 'web-01', 'connect']);
    assert.equal(row1![9], '203.0.113.7');
    assert.equal(row1![10], 80);

    // The stored JSON is the event as sent, with event.ingested and the agent id the certificate names.
    assert.deepEqual(stored(row0), { ...exec, event: { ...exec.event, ingested: iso(NOW) }, agent: { ...exec.agent, id: AGENT } });
    assert.deepEqual(stored(row1).agent, { id: AGENT }, 'an event without agent gets one with the id');
    assert.equal(stored(row2).event.ingested, iso(NOW), 'the agent\'s own event.ingested is replaced');
    assert.deepEqual(batch.rows.map((r) => stored(r).event.id), [exec.event.id, connect.event.id, stale.event.id]);

    // The parsed events (what detection reads) carry the same agent id.
    assert.deepEqual(batch.events.map((e: any) => e.agent.id), [AGENT, AGENT, AGENT]);
    assert.deepEqual(batch.events.map((e: any) => e.event.id), [exec.event.id, connect.event.id, stale.event.id]);
  });

  it('stores the agent\'s own line with what the server adds spliced in, and the same event as serialising it again would', () => {
    // As the agent writes them, without agent.id (the server sets it); or with its own id.
    const unnamed = (e: any) => delete e.agent.id;
    const own = (e: any) => (e.agent.id = AGENT);
    const events = [ev('exec', 0, unnamed), ev('connect', 1, own), ev('connect', 2, (e) => (unnamed(e), delete e.hades)), ev('exec', 3, (e) => (own(e), (e.process.args = ['printf', 'a:b', '::1', '"x":1'])))];
    const cmdb = { owner: 'team-web', tags: ['pci'] };
    for (const meta of [cmdb, undefined]) {
      const batch = prepareBatch(AGENT, ndjson(events), meta, NOW);
      assert.equal(batch.rows.length, events.length);
      batch.rows.forEach((row, i) => {
        const e = events[i]!;
        const hades = meta === undefined ? e['hades'] : { ...e['hades'], cmdb: meta };
        assert.deepEqual(stored(row), { ...e, event: { ...e['event'], ingested: iso(NOW) }, agent: { ...e['agent'], id: AGENT }, ...(hades === undefined ? {} : { hades }) });
      });
      // The first three lines are spliced: the agent's text is kept, member order and all.
      const line = JSON.stringify(events[0]);
      const spliced = batch.rows[0]![14];
      assert.ok(spliced.startsWith(line.slice(0, line.indexOf('"event":{') + 9) + `"ingested":"${iso(NOW)}",`), spliced);
      assert.ok(spliced.includes(`"agent":{"id":"${AGENT}",`), spliced);
      if (meta !== undefined) assert.ok(spliced.includes(`"hades":{"cmdb":${JSON.stringify(meta)},`), spliced);
    }
  });

  it('sets the CMDB\'s metadata, replacing what the agent put there, and removes an agent\'s hades.cmdb when the CMDB has none', () => {
    const cmdb = { owner: 'team-web', environment: 'production', tags: { rack: 'r12' } };
    const claimed = { owner: 'mallory', environment: 'test' };
    const withClaim = ev('exec', 0, (e) => (e.hades = { ...e.hades, backend: 'ebpf', cmdb: claimed }));
    const plain = ev('connect', 1, (e) => delete e.hades);

    const known = prepareBatch(AGENT, ndjson([withClaim, plain]), cmdb, NOW);
    assert.equal(known.rejected, 0);
    assert.deepEqual(known.rows.map((r) => stored(r).hades.cmdb), [cmdb, cmdb]);
    assert.equal(stored(known.rows[0]).hades.backend, 'ebpf', 'the rest of hades stays');
    assert.deepEqual(known.events.map((e: any) => e.hades.cmdb), [cmdb, cmdb]);

    const unknown = prepareBatch(AGENT, ndjson([withClaim, plain]), undefined, NOW);
    assert.equal(unknown.rejected, 0);
    const first = stored(unknown.rows[0]);
    assert.equal('cmdb' in first.hades, false, 'what the agent claimed is not stored');
    assert.equal(first.hades.backend, 'ebpf');
    assert.equal((unknown.events[0] as any).hades.cmdb, undefined);
    assert.equal(stored(unknown.rows[1]).hades, undefined, 'no hades object is made up');
  });

  it('counts invalid JSON, schema failures and what the store cannot take as rejected, and keeps the rest', () => {
    const good = [ev('exec', 0), ev('connect', 1), ev('dns_query', 2)];
    const unknownAction = ev('exec', 3, (e) => (e.event.action = 'no_such_action'));
    const noHost = ev('exec', 4, (e) => delete e.host);
    const extraField = ev('exec', 5, (e) => (e.not_in_schema = 1));
    const unrealTime = ev('exec', 6, (e) => (e['@timestamp'] = '2026-02-30T00:00:00Z'));
    // An empty event.id passes the schema, but is no key for the store.
    const emptyId = ev('exec', 7, (e) => (e.event.id = ''));
    const lines = [good[0]!, 'not json', '{"truncated":', unknownAction, good[1]!, noHost, extraField, '[1,2,3]', 'null', unrealTime, emptyId, good[2]!];
    const batch = prepareBatch(AGENT, ndjson(lines), undefined, NOW);
    assert.equal(batch.refused, undefined);
    assert.equal(batch.rejected, 9);
    assert.equal(batch.rejectedFirst, 'line 2: not JSON', 'the first refused line, and why');
    assert.deepEqual(batch.rows.map((r) => r[0]), good.map((e) => e.event.id));
    assert.equal(batch.events.length, 3);
    assert.match(prepareBatch(AGENT, ndjson([good[0]!, extraField]), undefined, NOW).rejectedFirst ?? '', /^line 2: \/not_in_schema: /);
    assert.match(prepareBatch(AGENT, ndjson([emptyId, good[0]!]), undefined, NOW).rejectedFirst ?? '', /^line 1: .*event\.id/);
  });

  it(`refuses an event larger than MAX_EVENT_BYTES (${MAX_EVENT_BYTES}) on its own, and takes the largest an agent writes`, () => {
    // 112 arguments of 64 KiB: each string within the schema, 7.5 MB in all (a batch may be 8 MiB).
    const huge = ev('exec', 0, (e) => {
      e.process.command_line = 'A'.repeat(65536);
      e.process.args = Array.from({ length: 112 }, () => 'B'.repeat(65536));
    });
    // The largest legitimate exec: 64 KiB of arguments and command line, for the process and its
    // parent, every byte one JSON writes as an escape of six.
    const largest = ev('exec', 1, (e) => {
      e.process.args = ['\u0001'.repeat(65536)];
      e.process.command_line = '\u0001'.repeat(65536);
      e.process.parent = { ...e.process.parent, args: ['\u0001'.repeat(65536)], command_line: '\u0001'.repeat(65536) };
    });
    const small = ev('exec', 2);
    const text = ndjson([huge, small]);
    assert.ok(text.length < MAX_BATCH_BYTES);
    const batch = prepareBatch(AGENT, text, undefined, NOW);
    assert.equal(batch.refused, undefined);
    assert.equal(batch.rejected, 1);
    assert.match(batch.rejectedFirst ?? '', /^line 1: the event is \d+ bytes of JSON, more than the 4194304 an event may be$/);
    assert.deepEqual(batch.rows.map((r) => stored(r).event.id), [small.event.id]);
    assert.ok(JSON.stringify(largest).length > 1.5 * 1024 * 1024, 'the largest is over 1.5 MiB of JSON');
    const taken = prepareBatch(AGENT, ndjson([largest, small]), undefined, NOW);
    assert.equal(taken.rejected, 0, taken.rejectedFirst);
    assert.deepEqual(taken.rows.map((r) => stored(r).event.id), [largest.event.id, small.event.id]);
    // Counted in bytes, not characters: 1.5 M three-byte characters are 4.5 MB.
    const wide = ev('exec', 3, (e) => (e.process.args = Array.from({ length: 24 }, () => '\u20ac'.repeat(65536))));
    assert.ok(JSON.stringify(wide).length < MAX_EVENT_BYTES);
    assert.equal(prepareBatch(AGENT, ndjson([wide, small]), undefined, NOW).rejected, 1);
  });

  it('skips empty lines without counting them; an empty batch is neither refused nor rows', () => {
    const a = ev('exec');
    const b = ev('exec', 1);
    const batch = prepareBatch(AGENT, `\n${JSON.stringify(a)}\n\n\n${JSON.stringify(b)}`, undefined, NOW);
    assert.equal(batch.rejected, 0);
    assert.equal(batch.rows.length, 2, 'the last line needs no newline');
    assert.deepEqual(prepareBatch(AGENT, '', undefined, NOW), { rejected: 0, rows: [], events: [] });
    assert.deepEqual(prepareBatch(AGENT, '\n\n', undefined, NOW), { rejected: 0, rows: [], events: [] });
  });

  it('refuses a batch none of whose lines is a valid event (HADES_ERR_STREAM_MESSAGE_INVALID)', () => {
    const batch = prepareBatch(AGENT, ndjson(['garbage', '{"also":"not an event"}', ev('exec', 0, (e) => (e.event.id = ''))]), undefined, NOW);
    assert.equal(batch.refused?.code, 'HADES_ERR_STREAM_MESSAGE_INVALID');
    assert.match(batch.refused.message, /none of the 3 lines is a valid event \(line 1: not JSON\)/);
    assert.equal(batch.rejected, 3);
    assert.deepEqual(batch.rows, []);
    assert.deepEqual(batch.events, []);
  });

  it(`refuses a batch of more than MAX_BATCH_EVENTS (${MAX_BATCH_EVENTS}) lines (HADES_ERR_STREAM_MESSAGE_TOO_LARGE) before reading them`, () => {
    const line = JSON.stringify(ev('exec'));
    const tooMany = prepareBatch(AGENT, `${line}\n`.repeat(MAX_BATCH_EVENTS + 1), undefined, NOW);
    assert.equal(tooMany.refused?.code, 'HADES_ERR_STREAM_MESSAGE_TOO_LARGE');
    assert.match(tooMany.refused.message, new RegExp(`${MAX_BATCH_EVENTS + 1} events`));
    assert.equal(tooMany.rejected, 0);
    assert.deepEqual(tooMany.rows, []);
    // At the limit the lines are read (garbage here, cheap to check): refused for that, not for size.
    const atLimit = prepareBatch(AGENT, 'x\n'.repeat(MAX_BATCH_EVENTS), undefined, NOW);
    assert.equal(atLimit.refused?.code, 'HADES_ERR_STREAM_MESSAGE_INVALID');
    assert.equal(atLimit.rejected, MAX_BATCH_EVENTS);
  });

  it('redacts secrets from the stored JSON and from the events detection reads: bearer credentials, and Hades tokens but their id', () => {
    const bearer = 'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abcdefgh';
    const apiToken = 'hadesapi_320ec5be22514c30_jLeZX3b9AdwXNEEaQSjT3D_Mqn';
    const agentToken = 'hades1_0123456789abcdef_c2VjcmV0LXNlY3JldA';
    const e = ev('exec', 0, (x) => {
      x.process.command_line = `curl -H "${bearer}" https://h/api --token ${agentToken}`;
      x.process.args = ['curl', '-H', `Authorization: bearer ${apiToken}`];
    });
    const plain = ev('exec', 1, (x) => (x.process.command_line = 'the bearer of bad news'));
    const batch = prepareBatch(AGENT, ndjson([e, plain]), undefined, NOW);
    assert.equal(batch.rejected, 0);
    const row = stored(batch.rows[0]);
    assert.equal(row.process.command_line, `curl -H "Authorization: Bearer ${REDACTED}" https://h/api --token hades1_0123456789abcdef_${REDACTED}`);
    assert.deepEqual(row.process.args, ['curl', '-H', `Authorization: bearer hadesapi_320ec5be22514c30_${REDACTED}`]);
    assert.deepEqual((batch.events[0] as any).process, row.process);
    assert.ok(!batch.rows[0]![14].includes('c2VjcmV0') && !batch.rows[0]![14].includes('jLeZX3b9') && !batch.rows[0]![14].includes('e30.abc'));
    assert.equal(stored(batch.rows[1]).process.command_line, 'the bearer of bad news', 'text without a secret stays');
  });

  it('stores a process whose command line ends in a flag that takes a secret (the next member is no secret)', () => {
    const endings = ['--token', '--password', 'Authorization: Bearer', 'sshpass -p'];
    const events = endings.map((ending, i) => ev('exec', i, (x) => (x.process.command_line = `sh -c /bin/echo ${ending}`)));
    const batch = prepareBatch(AGENT, ndjson(events), undefined, NOW);
    assert.equal(batch.rejected, 0);
    assert.deepEqual(batch.rows.map((r) => stored(r).process.command_line), endings.map((ending) => `sh -c /bin/echo ${ending}`));
  });
});

describe('ingest: batchBytes (a batch the agent compressed)', () => {
  const text = Buffer.from('{"a":1}\n{"b":2}\n');
  const inflate = (data: Uint8Array, size: number): Buffer => Buffer.from(batchBytes(data, size) as Uint8Array);
  const refusal = (data: Uint8Array, size: number) => {
    const result = batchBytes(data, size);
    assert.ok(!(result instanceof Uint8Array), 'refused');
    return result;
  };

  it('hands lines over as they are, and inflates gzip of one or more members to the size it said', () => {
    assert.equal(batchBytes(text), text);
    assert.deepEqual(inflate(gzipSync(text), text.length), text);
    const members = Buffer.concat([gzipSync(text.subarray(0, 8)), gzipSync(text.subarray(8))]);
    assert.deepEqual(inflate(members, text.length), text);
    assert.deepEqual(inflate(gzipSync(Buffer.alloc(0)), 0), Buffer.alloc(0));
  });

  it('refuses what is not gzip, or is cut short (HADES_ERR_STREAM_MESSAGE_INVALID)', () => {
    for (const bad of [Buffer.from('plain text'), gzipSync(text).subarray(0, 12), Buffer.from([0x1f, 0x8b])]) {
      const r = refusal(bad, text.length);
      assert.equal(r.code, 'HADES_ERR_STREAM_MESSAGE_INVALID');
      assert.match(r.message, /ndjson_gzip is not gzip data/);
    }
  });

  it('refuses gzip that inflates to more or less than its ndjson_size, without inflating more than it said (HADES_ERR_STREAM_MESSAGE_INVALID)', () => {
    // A bomb that says it is small: stopped at the size it said, whatever it would grow to.
    const more = refusal(gzipSync(Buffer.alloc(64 * 1024 * 1024, 0x0a)), 100);
    assert.equal(more.code, 'HADES_ERR_STREAM_MESSAGE_INVALID');
    assert.match(more.message, /more than its ndjson_size \(100 bytes\)/);
    const less = refusal(gzipSync(text), text.length + 1);
    assert.equal(less.code, 'HADES_ERR_STREAM_MESSAGE_INVALID');
    assert.match(less.message, new RegExp(`inflates to ${text.length} bytes, not its ndjson_size \\(${text.length + 1}\\)`));
    assert.equal(refusal(gzipSync(text), 0).code, 'HADES_ERR_STREAM_MESSAGE_INVALID', 'no size said (0) for lines that are not empty');
  });

  it('refuses an ndjson_size past a message\'s limit (HADES_ERR_STREAM_MESSAGE_TOO_LARGE) before inflating anything', () => {
    assert.equal(MAX_BATCH_BYTES, MAX_MESSAGE_BYTES, 'the same limit as a gRPC message');
    const big = Buffer.alloc(MAX_BATCH_BYTES + 1, 0x0a);
    const r = refusal(gzipSync(big), big.length);
    assert.equal(r.code, 'HADES_ERR_STREAM_MESSAGE_TOO_LARGE');
    assert.equal(inflate(gzipSync(big.subarray(1)), MAX_BATCH_BYTES).byteLength, MAX_BATCH_BYTES, 'at the limit it is taken');
  });
});
