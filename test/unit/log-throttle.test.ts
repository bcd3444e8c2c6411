/** Once per interval per key, bounded without forgetting recent keys (src/server/log-throttle.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LogThrottle } from '../../src/server/log-throttle.js';

describe('LogThrottle', () => {
  it('lets a key through once per interval and keeps its state in between', () => {
    const throttle = new LogThrottle<{ more: number }>(60_000);
    assert.equal(throttle.recent('a', 1_000), undefined);
    assert.deepEqual(throttle.admit('a', 1_000, { more: 0 }), { previous: null });
    const recent = throttle.recent('a', 30_000);
    assert.ok(recent);
    recent.state.more += 5;
    assert.equal(throttle.recent('a', 61_000), undefined, 'the interval is over');
    const again = throttle.admit('a', 61_000, { more: 0 });
    assert.deepEqual(again?.previous, { at: 1_000, state: { more: 5 } }, 'what was counted since is handed back');
  });

  it('takes a clock set back as the interval being over', () => {
    const throttle = new LogThrottle<null>(3_600_000);
    throttle.admit('a', 10_000_000, null);
    assert.equal(throttle.recent('a', 9_000_000), undefined);
  });

  it('when full, forgets only keys over the interval old, and lets no new key through while every one is recent', () => {
    const throttle = new LogThrottle<null>(60_000, 3);
    throttle.admit('a', 0, null);
    throttle.admit('b', 50_000, null);
    throttle.admit('c', 50_000, null);
    // 'a' is over a minute old at 70 s: it makes room for 'd'; 'b' and 'c' stay recent.
    assert.ok(throttle.admit('d', 70_000, null));
    assert.equal(throttle.size, 3);
    assert.ok(throttle.recent('b', 70_000), 'a recent key is not forgotten to make room');
    assert.equal(throttle.admit('e', 70_000, null), undefined, 'no room: the line is not logged');
    assert.ok(throttle.recent('c', 70_000));
    // A key already in the table is let through again whatever the table's size.
    assert.ok(throttle.admit('b', 111_000, null));
  });

  it('logs each of a fleet larger than its bound at most once per interval (the flood a whole-table clear caused)', () => {
    const throttle = new LogThrottle<null>(3_600_000, 10_000);
    let logged = 0;
    // 10,001 agents a day off, each heartbeating every 10 s for a minute.
    for (let t = 0; t < 60_000; t += 10_000) {
      for (let agent = 0; agent <= 10_000; agent++) {
        const key = `agent-${agent}`;
        if (throttle.recent(key, t) === undefined && throttle.admit(key, t, null) !== undefined) logged++;
      }
    }
    assert.equal(logged, 10_000);
  });
});
