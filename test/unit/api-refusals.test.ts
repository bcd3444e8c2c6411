/**
 * The rate limit of refused API requests (src/server/api-refusals.ts): the first of a minute one
 * by one, then a summary with the count when the minute ends (by its own timer), keys bounded.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RefusalRecorder, type Refusal } from '../../src/server/api-refusals.js';
import { LogSink, sinkLogger } from '../helpers/server.js';

const denial = (id: string): Refusal => ({ status: 403, code: 'HADES_ERR_API_FORBIDDEN', method: 'GET', route: '/api/v1/audit', address: '10.0.0.1', principal: { id, name: `n-${id}`, role: 'read-only' }, needed: 'admin' });
const failure = (address: string): Refusal => ({ status: 401, code: 'HADES_ERR_API_UNAUTHENTICATED', method: 'GET', route: '/api/v1/agents', address, reason: 'unknown' });

function recorder(limits: ConstructorParameters<typeof RefusalRecorder>[1]) {
  const sink = new LogSink();
  const audited: Record<string, unknown>[] = [];
  const refusals = new RefusalRecorder({ log: sinkLogger(sink), audit: (actor, target, details) => audited.push({ actor: actor.id, target, ...details }) }, limits);
  return { refusals, sink, audited };
}

describe('RefusalRecorder', () => {
  it('writes the first N of a key one by one, then one summary when the window ends, by its timer', async () => {
    const { refusals, sink, audited } = recorder({ perKey: 3, windowMs: 100 });
    try {
      for (let i = 0; i < 8; i++) refusals.refused(denial('a'));
      for (let i = 0; i < 5; i++) refusals.refused(failure('10.0.0.9'));
      assert.equal(audited.length, 3);
      assert.equal(sink.lines().length, 6);
      await new Promise((resolve) => setTimeout(resolve, 250));
      const summaries = sink.lines().filter((l) => l['more'] !== undefined);
      assert.deepEqual(summaries.map((l) => [l['actor_id'] ?? l['address'], l['more']]).sort(), [['10.0.0.9', 2], ['a', 5]]);
      assert.equal(audited.length, 4);
      assert.equal(audited[3]!['more'], 5);
      // A new window: recorded one by one again.
      refusals.refused(denial('a'));
      assert.equal(audited.length, 5);
      assert.equal(audited[4]!['more'], undefined);
    } finally {
      refusals.close();
    }
  });

  it('holds to a total over all keys and to a bound on keys (the others counted under *), and survives an audit log that fails', () => {
    const sink = new LogSink();
    const refusals = new RefusalRecorder({ log: sinkLogger(sink), audit: () => { throw new Error('disk full'); } }, { perKey: 2, total: 5, maxKeys: 3, windowMs: 60_000 });
    for (let i = 0; i < 50; i++) refusals.refused(failure(`10.1.0.${i}`));
    assert.equal(sink.lines().filter((l) => l['level'] === 'warn').length, 5);
    assert.doesNotThrow(() => refusals.refused(denial('b')));
    refusals.close();
    const overflow = sink.lines().find((l) => l['address'] === '*');
    assert.equal(overflow?.['more'], 45, 'three addresses one each, then 47 under *: 2 written (the total), 45 counted');
    refusals.refused(failure('10.2.0.1'));
    assert.equal(sink.lines().filter((l) => l['address'] === '10.2.0.1').length, 0, 'closed: nothing more');
    const failing = new RefusalRecorder({ log: sinkLogger(sink), audit: () => { throw new Error('disk full'); } });
    assert.doesNotThrow(() => failing.refused(denial('c')));
    failing.close();
    assert.ok(sink.lines().some((l) => l['level'] === 'error' && /could not be written to the audit log/.test(String(l['msg']))));
  });
});
