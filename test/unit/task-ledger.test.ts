import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TaskLedger } from '../../src/agent/transport/tasks.js';

describe('the agent\'s task ledger', () => {
  it('runs a task once: running while it runs, then its answer to send again', () => {
    const ledger = new TaskLedger();
    assert.equal(ledger.receive('t1'), 'run');
    assert.equal(ledger.receive('t1'), 'running');
    ledger.finish('t1', { status: 'done', resultJson: '{"ok":true}' });
    assert.deepEqual(ledger.receive('t1'), { status: 'done', resultJson: '{"ok":true}' });
    // An answer for a task it never saw (refused before it ran) is kept all the same.
    ledger.finish('t2', { status: 'failed', resultJson: '' });
    assert.deepEqual(ledger.receive('t2'), { status: 'failed', resultJson: '' });
  });

  it('keeps the newest tasks within its bounds: a task forgotten runs again', () => {
    const ledger = new TaskLedger(3, 10);
    for (const id of ['a', 'b', 'c', 'd']) ledger.receive(id);
    assert.equal(ledger.size, 3);
    assert.equal(ledger.receive('a'), 'run', 'the oldest was forgotten');
    // Answers count in bytes: two of 6 do not fit in 10, the older goes.
    const ledger2 = new TaskLedger(10, 10);
    ledger2.finish('x', { status: 'done', resultJson: '"abcd"' });
    ledger2.finish('y', { status: 'done', resultJson: '"éfg"' });
    assert.equal(ledger2.size, 1);
    assert.equal(ledger2.receive('x'), 'run');
    // An answer larger than the whole budget is not kept.
    const ledger3 = new TaskLedger(10, 4);
    ledger3.receive('big');
    ledger3.finish('big', { status: 'done', resultJson: '"too large"' });
    assert.equal(ledger3.size, 0);
  });
});
