import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CpuGovernor, RateAggregator, type Aggregated } from '../../src/agent/aggregator.js';

describe('rate aggregator', () => {
  it('lets the first event of a key through and counts repeats into the window', () => {
    const agg = new RateAggregator<string>(1000);
    const closed: Aggregated<string>[] = [];
    assert.equal(agg.offer('k', 'e1', 0, closed), true);
    assert.equal(agg.offer('k', 'e2', 100, closed), false);
    assert.equal(agg.offer('k', 'e3', 200, closed), false);
    assert.equal(agg.offer('other', 'o1', 300, closed), true);
    assert.deepEqual(agg.sweep(999), []);
    assert.deepEqual(agg.sweep(1000), [{ last: 'e3', count: 2 }]);
    assert.deepEqual([agg.emitted, agg.aggregated], [2, 2]);
  });

  it('closes a window when the key comes back after it, and stays bounded', () => {
    const agg = new RateAggregator<number>(1000, 2);
    const closed: Aggregated<number>[] = [];
    agg.offer('a', 1, 0, closed);
    agg.offer('a', 2, 10, closed);
    assert.equal(agg.offer('a', 3, 1500, closed), true);
    assert.deepEqual(closed, [{ last: 2, count: 1 }]);
    agg.offer('b', 1, 1600, closed);
    agg.offer('b', 2, 1601, closed);
    agg.offer('c', 1, 1602, closed);
    assert.equal(agg.open, 2, 'the oldest window was closed early');
    assert.equal(agg.sweep(0, true).length + closed.length, 2, 'no repeat lost: a:1 and b:1');
  });

  it('lets everything through with a zero window', () => {
    const agg = new RateAggregator<number>(0);
    assert.equal(agg.offer('k', 1, 0, []), true);
    assert.equal(agg.offer('k', 2, 0, []), true);
  });
});

describe('CPU governor', () => {
  it('raises at once on a second far over budget and lowers only after a calm period', () => {
    const g = new CpuGovernor(10);
    assert.equal(g.observe(5), false);
    assert.equal(g.observe(60), true);
    assert.equal(g.level, 1);
    assert.equal(g.factor, 4);
    for (let i = 0; i < 9; i++) g.observe(1);
    assert.equal(g.level, 1);
    g.observe(1);
    assert.equal(g.level, 0);
  });

  it('waits longer before lowering again after a lowering had to be undone', () => {
    const g = new CpuGovernor(10);
    g.observe(60);
    for (let i = 0; i < 10; i++) g.observe(1);
    assert.equal(g.level, 0);
    g.observe(60); // the flood is still there
    assert.equal(g.level, 1);
    for (let i = 0; i < 19; i++) g.observe(1);
    assert.equal(g.level, 1, 'the calm period doubled to 20 s');
    g.observe(1);
    assert.equal(g.level, 0);
  });

  it('does not raise when nothing could be shed (an exec storm)', () => {
    const g = new CpuGovernor(10);
    assert.equal(g.observe(80, false), false);
    assert.equal(g.level, 0);
  });

  it('never goes past its top level', () => {
    const g = new CpuGovernor(10, 2);
    for (let i = 0; i < 10; i++) g.observe(100);
    assert.equal(g.level, 2);
  });
});
