import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_RUNNING_TASKS, MAX_TASKS, TaskLedger } from '../../src/agent/transport/tasks.js';

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

  it('keeps the newest answers within its bounds: a task whose answer was forgotten runs again', () => {
    const ledger = new TaskLedger(3, 10);
    for (const id of ['a', 'b', 'c', 'd']) {
      ledger.receive(id);
      ledger.finish(id, { status: 'done', resultJson: '' });
    }
    assert.equal(ledger.size, 3);
    assert.equal(ledger.receive('a'), 'run', 'the oldest answer was forgotten');
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

  it('never forgets a task that runs, however many tasks come after it', () => {
    const ledger = new TaskLedger();
    assert.equal(ledger.receive('slow-query'), 'run');
    // More than MAX_TASKS tasks after it, each answered at once (as log_level tasks are).
    for (let i = 0; i < MAX_TASKS + 10; i++) {
      const id = `quick-${i}`;
      assert.equal(ledger.receive(id), 'run');
      ledger.finish(id, { status: 'done', resultJson: '{}' });
    }
    assert.equal(ledger.receive('slow-query'), 'running', 'sent again while it runs: not run a second time');
    assert.equal(ledger.size, MAX_TASKS + 1, 'the answers within their bound, and the running task');
    ledger.finish('slow-query', { status: 'done', resultJson: '[1]' });
    assert.deepEqual(ledger.receive('slow-query'), { status: 'done', resultJson: '[1]' });
    assert.equal(ledger.size, MAX_TASKS, 'its answer counts among the kept ones now');
  });

  it('runs at most MAX_RUNNING_TASKS at once: a task past that is refused and not recorded', () => {
    const ledger = new TaskLedger();
    for (let i = 0; i < MAX_RUNNING_TASKS; i++) assert.equal(ledger.receive(`q${i}`), 'run');
    assert.equal(ledger.running, MAX_RUNNING_TASKS);
    assert.equal(ledger.receive('one-more'), 'busy');
    assert.equal(ledger.receive('q0'), 'running', 'a running task sent again is still known');
    ledger.finish('q0', { status: 'done', resultJson: '' });
    // Refused, it was not recorded: sent again once a place is free, it runs.
    assert.equal(ledger.receive('one-more'), 'run');
    assert.equal(ledger.running, MAX_RUNNING_TASKS);
  });
});
