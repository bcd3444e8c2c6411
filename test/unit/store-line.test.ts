/** What the server adds spliced into a line given to the store as text (src/server/store/line.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { unambiguous, splicedText, type ServerFields } from '../../src/server/store/line.js';

const TS = '2026-11-28T10:00:00.000Z';
const INGESTED = '2026-11-28T10:00:01.000Z';
const LINE = `{"@timestamp":"${TS}","event":{"id":"x-1","action":"exec"},"host":{"name":"web-1"},"agent":{"id":"ag_1","version":"0.1.0","type":"hades"},"process":{"args":["echo","\\"event\\" {"]},"hades":{"backend":"ebpf"}}`;

const parse = (text: string) => JSON.parse(text) as Record<string, Record<string, unknown>>;
const splice = (text: string, server?: ServerFields) => splicedText(text, JSON.parse(text) as Record<string, unknown>, INGESTED, server);

describe('what the server adds, spliced into a stored line', () => {
  it('counts keys, not values that look like them', () => {
    assert.equal(unambiguous(LINE, JSON.parse(LINE)), true);
  });

  it('adds event.ingested at the start of the event object', () => {
    assert.deepEqual(parse(splice(LINE) as string), { ...parse(LINE), event: { ingested: INGESTED, id: 'x-1', action: 'exec' } });
    const spaced = `{"@timestamp":"${TS}","event":{ "id":"x-2" }}`;
    assert.deepEqual(parse(splice(spaced) as string)['event'], { ingested: INGESTED, id: 'x-2' });
    const empty = `{"@timestamp":"${TS}","event":{}}`;
    assert.deepEqual(parse(splice(empty) as string)['event'], { ingested: INGESTED });
  });

  it('adds hades.cmdb into the hades object, or a hades object when there is none', () => {
    const cmdb = JSON.stringify({ owner: 'web team', tags: ['pci'] });
    const out = parse(splice(LINE, { agentId: 'ag_1', cmdb }) as string);
    assert.deepEqual(out['hades'], { cmdb: { owner: 'web team', tags: ['pci'] }, backend: 'ebpf' });
    assert.deepEqual(out['event'], { ingested: INGESTED, id: 'x-1', action: 'exec' });
    const bare = LINE.replace(',"hades":{"backend":"ebpf"}', '');
    assert.deepEqual(parse(splice(bare, { agentId: 'ag_1', cmdb }) as string)['hades'], { cmdb: { owner: 'web team', tags: ['pci'] } });
    const emptyHades = LINE.replace('"hades":{"backend":"ebpf"}', '"hades":{}');
    assert.deepEqual(parse(splice(emptyHades, { agentId: 'ag_1', cmdb }) as string)['hades'], { cmdb: { owner: 'web team', tags: ['pci'] } });
    // Without CMDB metadata, a line without hades.cmdb is stored as it came.
    assert.deepEqual(parse(splice(LINE, { agentId: 'ag_1', cmdb: null }) as string)['hades'], { backend: 'ebpf' });
  });

  it('sets agent.id, which the agent leaves to the server, in its agent object or in a new one', () => {
    const unnamed = LINE.replace('"id":"ag_1",', '');
    assert.deepEqual(parse(splice(unnamed, { agentId: 'ag_9', cmdb: null }) as string)['agent'], { id: 'ag_9', version: '0.1.0', type: 'hades' });
    const bare = LINE.replace(',"agent":{"id":"ag_1","version":"0.1.0","type":"hades"}', '');
    const out = parse(splice(bare, { agentId: 'ag_9', cmdb: '{"owner":"o"}' }) as string);
    assert.deepEqual([out['agent'], out['hades']], [{ id: 'ag_9' }, { cmdb: { owner: 'o' }, backend: 'ebpf' }]);
    assert.deepEqual(parse(splice(LINE.replace('"agent":{"id":"ag_1","version":"0.1.0","type":"hades"}', '"agent":{}'), { agentId: 'ag_9' }) as string)['agent'], { id: 'ag_9' });
  });

  it('serialises again a line whose values the server replaces: another agent id, the agent\'s own hades.cmdb', () => {
    assert.equal(splice(LINE, { agentId: 'ag_2', cmdb: null }), undefined);
    const nestedAgent = LINE.replace('"process":{', '"process":{"agent":{"x":1},').replace('"id":"ag_1",', '');
    assert.equal(splice(nestedAgent, { agentId: 'ag_1', cmdb: null }), undefined, 'a second agent object below the top level: the place is not certain');
    assert.equal(splice(LINE.replace('"agent":{', '"agent":"x","old":{'), { agentId: 'ag_1', cmdb: null }), undefined);
    const claimed = LINE.replace('"hades":{', '"hades":{"cmdb":{"owner":"me"},');
    assert.equal(splice(claimed, { agentId: 'ag_1', cmdb: null }), undefined);
    assert.equal(splice(claimed, { agentId: 'ag_1', cmdb: '{}' }), undefined);
    // A second hades object below the top level: the place is not certain.
    const nested = LINE.replace('"process":{', '"process":{"hades":{"x":1},');
    assert.equal(splice(nested, { agentId: 'ag_1', cmdb: '{}' }), undefined);
  });

  it('serialises again a line with an ingested of its own, another layout, an escape or a spaced colon', () => {
    assert.equal(splice(LINE.replace('"event":{', '"event":{"ingested":"2000-01-01T00:00:00Z",')), undefined);
    assert.equal(splice(`{"event":{"id":"x"},"@timestamp":"${TS}"}`), undefined);
    assert.equal(splice(LINE.replace('"web-1"', '"web\\u002d1"')), undefined);
    assert.equal(splice(LINE.replace('"host":', '"host" :')), undefined);
    assert.equal(splice(`${LINE}\r`), undefined);
  });

  it('never splices a line with a duplicate key anywhere: first-key readers (SQLite\'s JSON functions) would read it otherwise', () => {
    const cases = [
      // event.id twice: deduplication and a first-key reader would disagree.
      LINE.replace('"event":{"id":"x-1"', '"event":{"id":"FIRST","id":"x-1"'),
      // a second event object after the first.
      `${LINE.slice(0, -1)},"event":{"id":"x-2","action":"exec"}}`,
      // anywhere else.
      LINE.replace('"process":{', '"process":{"executable":"/bin/ls","executable":"/tmp/x",'),
      LINE.replace('"agent":{', '"agent":{"id":"victim",'),
      // two hades objects: the agent's cmdb would hide behind the server's.
      `${LINE.slice(0, -1)},"hades":{"cmdb":{"owner":"me"}}}`,
    ];
    for (const text of cases) {
      assert.equal(unambiguous(text, JSON.parse(text)), false, text);
      assert.equal(splice(text, { agentId: 'ag_1', cmdb: '{}' }), undefined, text);
    }
    // A string that begins with a colon (an IPv6 address) only costs a fallback; an escaped quote before a colon is a string's, not counted.
    assert.equal(unambiguous(LINE.replace('"echo"', '"::1"'), JSON.parse(LINE.replace('"echo"', '"::1"'))), false);
    const quoted = LINE.replace('"echo"', '"{\\"a\\":1, \\"b\\\\\\\\\\": 2.5}"');
    assert.equal(unambiguous(quoted, JSON.parse(quoted)), true, quoted);
    // A key that ends in an escaped backslash is a key: its duplicate is seen.
    const slashKey = LINE.replace('"process":{', '"process":{"k\\\\":1,"k\\\\":2,');
    assert.equal(unambiguous(slashKey, JSON.parse(slashKey)), false, slashKey);
  });

  it('serialises again a line whose numbers or line breaks readers would read otherwise', () => {
    const cases = [
      // beyond 2^53: JSON.parse rounds it, SQLite and Python keep every digit.
      LINE.replace('"name":"web-1"', '"name":"web-1","n":9007199254740993'),
      // SQLite rounds this long spelling down to 1233.9999999999998; JSON.parse reads 1234.
      LINE.replace('"name":"web-1"', '"name":"web-1","n":1233.99999999999988632'),
      LINE.replace('"name":"web-1"', '"name":"web-1","n":1.0'),
      LINE.replace('"name":"web-1"', '"name":"web-1","n":1e3'),
      LINE.replace('"name":"web-1"', '"name":"web-1","n":[1, -0]'),
      LINE.replace('"name":"web-1"', '"name":"web-1","n":-0'),
      // a carriage return between members: a line break to readline, Python, Spark and Athena.
      LINE.replace(',"host":', ',\r"host":'),
    ];
    for (const text of cases) assert.equal(splice(text, { agentId: 'ag_1', cmdb: null }), undefined, text);
    // Numbers in arrays are not looked into; after a colon and whitespace they are.
    for (const text of [LINE.replace('"name":"web-1"', '"name":"web-1","n":[0,5]'), LINE.replace('"name":"web-1"', '"name":"web-1","n": 1.5')]) assert.equal(splice(text), undefined, text);
    // Plain integers of up to 15 digits still splice.
    const plain = LINE.replace('"name":"web-1"', '"name":"web-1","n":{"a":0,"b": -5,"c":999999999999999,"d":"-0.5e3","e":"{\\"k\\": \\"v\\"}"}');
    assert.deepEqual(parse(splice(plain, { agentId: 'ag_1', cmdb: null }) as string)['host'], { name: 'web-1', n: { a: 0, b: -5, c: 999999999999999, d: '-0.5e3', e: '{"k": "v"}' } });
  });
});
