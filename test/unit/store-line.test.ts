/** event.ingested spliced into a line given to the store as text (src/server/store/line.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { keyCounts, withIngested } from '../../src/server/store/line.js';

const TS = '2026-11-28T10:00:00.000Z';
const LINE = `{"@timestamp":"${TS}","event":{"id":"x-1","action":"exec"},"host":{"name":"web-1"},"agent":{"version":"0.1.0","type":"hades"},"process":{"args":["echo","\\"event\\" {"]},"hades":{"backend":"ebpf"}}`;

const parse = (text: string) => JSON.parse(text) as Record<string, Record<string, unknown>>;
const splice = (text: string) => withIngested(text, parse(text)['event'] as Record<string, unknown>, keyCounts(text, JSON.parse(text)), TS, '2026-11-28T10:00:01.000Z');

describe('event.ingested spliced into a stored line', () => {
  it('counts keys, not values that look like them', () => {
    assert.deepEqual(keyCounts(LINE, JSON.parse(LINE)), { timestamp: 1, event: 1, spliceable: true });
  });

  it('adds event.ingested at the start of the event object', () => {
    assert.deepEqual(parse(splice(LINE) as string), { ...parse(LINE), event: { ingested: '2026-11-28T10:00:01.000Z', id: 'x-1', action: 'exec' } });
    const spaced = `{"@timestamp":"${TS}","event":{ "id":"x-2" }}`;
    assert.deepEqual(parse(splice(spaced) as string)['event'], { ingested: '2026-11-28T10:00:01.000Z', id: 'x-2' });
  });

  it('serialises again a line with an ingested of its own, another layout, an escape or a spaced colon', () => {
    assert.equal(splice(LINE.replace('"event":{', '"event":{"ingested":"2000-01-01T00:00:00Z",')), undefined);
    assert.equal(splice(`{"event":{"id":"x"},"@timestamp":"${TS}"}`), undefined);
    assert.equal(splice(LINE.replace('"web-1"', '"web\\u002d1"')), undefined);
    assert.equal(splice(LINE.replace('"host":', '"host" :')), undefined);
  });

  it('never splices a line with a duplicate key anywhere: first-key readers (SQLite\'s JSON functions) would read it otherwise', () => {
    const cases = [
      // event.id twice: deduplication and a first-key reader would disagree.
      LINE.replace('"event":{"id":"x-1"', '"event":{"id":"FIRST","id":"x-1"'),
      // a second event object after the first.
      `${LINE.slice(0, -1)},"event":{"id":"x-2","action":"exec"}}`,
      // anywhere else.
      LINE.replace('"process":{', '"process":{"executable":"/bin/ls","executable":"/tmp/x",'),
      LINE.replace('"agent":{', '"agent":{"id":"victim","id":"mine",'),
    ];
    for (const text of cases) {
      assert.equal(keyCounts(text, JSON.parse(text)).spliceable, false, text);
      assert.equal(splice(text), undefined, text);
    }
    // A string that holds an escaped quote before a colon only costs a fallback.
    const quoted = LINE.replace('"echo"', '"{\\"a\\":1}"');
    assert.equal(keyCounts(quoted, JSON.parse(quoted)).spliceable, false);
  });
});
