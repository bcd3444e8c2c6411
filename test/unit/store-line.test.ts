/** Splicing what the server adds into the agent's own text (src/server/store/line.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { keyCounts, withAgentId, withCmdb, withIngested } from '../../src/server/store/line.js';

const AGENT = 'a1b2c3';
const LINE = '{"@timestamp":"2026-11-28T10:00:00.000Z","event":{"id":"x-1","action":"exec"},"host":{"name":"web-1"},"agent":{"version":"0.1.0","type":"hades"},"process":{"args":["echo","\\"agent\\":{"]},"hades":{"backend":"ebpf"}}';

const parse = (text: string) => JSON.parse(text) as Record<string, Record<string, unknown>>;

describe('the agent\'s text kept as the stored copy', () => {
  it('counts keys, not values that look like them', () => {
    assert.deepEqual(keyCounts(LINE), { timestamp: 1, agent: 1, hades: 1, event: 1, escaped: false });
    assert.equal(keyCounts('{"a":"\\u0041"}').escaped, true);
  });

  it('splices the agent id where the text says none, keeps an equal one, refuses another', () => {
    const event = parse(LINE);
    const text = withAgentId(LINE, event, keyCounts(LINE), AGENT);
    assert.ok(text !== undefined);
    assert.deepEqual(parse(text), { ...event, agent: { id: AGENT, version: '0.1.0', type: 'hades' } });

    const same = LINE.replace('"agent":{', `"agent":{"id":"${AGENT}",`);
    assert.equal(withAgentId(same, parse(same), keyCounts(same), AGENT), same);
    const other = LINE.replace('"agent":{', '"agent":{"id":"someone-else",');
    assert.equal(withAgentId(other, parse(other), keyCounts(other), AGENT), undefined);

    const spaced = '{"@timestamp":"t","agent" : {  }}';
    assert.deepEqual(parse(withAgentId(spaced, parse(spaced), keyCounts(spaced), AGENT) as string), { '@timestamp': 't', agent: { id: AGENT } });
  });

  it('never splices where another reader could see a different agent, CMDB or event', () => {
    // JSON.parse keeps the last of two equal keys; other readers may keep the first.
    const twice = LINE.replace('"host":', '"agent":{"id":"forged"},"host":');
    assert.equal(withAgentId(twice, parse(twice), keyCounts(twice), AGENT), undefined);
    const escaped = LINE.replace('"host":', '"\\u0061gent":{"id":"forged"},"host":');
    assert.equal(withAgentId(escaped, parse(escaped), keyCounts(escaped), AGENT), undefined);
    const hadesTwice = LINE.replace('"host":', '"hades":{"cmdb":{"owner":"forged"}},"host":');
    assert.equal(withCmdb(hadesTwice, parse(hadesTwice), keyCounts(hadesTwice), { owner: 'ops' }), undefined);
    const eventTwice = `${LINE.slice(0, -1)},"event":{"id":"x-2","action":"exec"}}`;
    assert.equal(withIngested(eventTwice, parse(eventTwice)['event'] as Record<string, unknown>, keyCounts(eventTwice), '2026-11-28T10:00:00.000Z', '2026-11-28T10:00:01.000Z'), undefined);
  });

  it('adds hades.cmdb only when hades closes the event and has no cmdb of its own', () => {
    const cmdb = { owner: 'ops', tags: ['pci'] };
    const text = withCmdb(LINE, parse(LINE), keyCounts(LINE), cmdb);
    assert.deepEqual(parse(text as string), { ...parse(LINE), hades: { backend: 'ebpf', cmdb } });

    const notLast = '{"@timestamp":"t","hades":{"backend":"ebpf"},"host":{"name":"h"}}';
    assert.equal(withCmdb(notLast, parse(notLast), keyCounts(notLast), cmdb), undefined);
    const own = '{"@timestamp":"t","hades":{"cmdb":{"owner":"x"}}}';
    assert.equal(withCmdb(own, parse(own), keyCounts(own), cmdb), undefined);
    const empty = '{"@timestamp":"t","hades":{}}';
    assert.equal(withCmdb(empty, parse(empty), keyCounts(empty), cmdb), undefined);
    const trailing = '{"@timestamp":"t","hades":{"backend":"ebpf"}} ';
    assert.equal(withCmdb(trailing, parse(trailing), keyCounts(trailing), cmdb), undefined);
  });

  it('adds event.ingested at the start of the event object', () => {
    const event = parse(LINE);
    const text = withIngested(LINE, event['event'] as Record<string, unknown>, keyCounts(LINE), '2026-11-28T10:00:00.000Z', '2026-11-28T10:00:01.000Z');
    assert.deepEqual(parse(text as string)['event'], { ingested: '2026-11-28T10:00:01.000Z', id: 'x-1', action: 'exec' });
    const emptyEvent = '{"@timestamp":"2026-11-28T10:00:00.000Z","event":{}}';
    assert.deepEqual(parse(withIngested(emptyEvent, {}, keyCounts(emptyEvent), '2026-11-28T10:00:00.000Z', 'i') as string)['event'], { ingested: 'i' });
    const own = LINE.replace('"event":{', '"event":{"ingested":"2000-01-01T00:00:00Z",');
    assert.equal(withIngested(own, parse(own)['event'] as Record<string, unknown>, keyCounts(own), '2026-11-28T10:00:00.000Z', 'i'), undefined);
    const otherLayout = `{"event":{"id":"x"},"@timestamp":"2026-11-28T10:00:00.000Z"}`;
    assert.equal(withIngested(otherLayout, { id: 'x' }, keyCounts(otherLayout), '2026-11-28T10:00:00.000Z', 'i'), undefined);
  });
});
