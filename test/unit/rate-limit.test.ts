import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HadesError } from '../../src/common/errors.js';
import { TokenBucket, rateLimit, unlimited } from '../../src/runtime/rate-limit.js';

/** A clock the test moves by hand. */
function manualClock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1000;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('token bucket', () => {
  it('starts full, refills at the rate and never holds more than the burst', () => {
    const clock = manualClock();
    const b = new TokenBucket(10, 20, clock.now);
    assert.equal(b.available(), 20);
    assert.equal(b.tryTake(20), true);
    assert.equal(b.tryTake(), false);
    clock.advance(100);
    assert.equal(b.available(), 1);
    assert.equal(b.tryTake(), true);
    assert.equal(b.tryTake(), false);
    clock.advance(60_000);
    assert.equal(b.available(), 20, 'capped at the burst');
  });

  it('defaults the burst to one second of the rate', () => {
    const clock = manualClock();
    const b = new TokenBucket(50, undefined, clock.now);
    assert.equal(b.available(), 50);
    assert.equal(b.tryTake(51), true, 'more than the burst passes when the bucket is full');
  });

  it('take() returns 0 when it took, else the wait and takes nothing', () => {
    const clock = manualClock();
    const b = new TokenBucket(100, 100, clock.now);
    assert.equal(b.take(100), 0);
    assert.equal(b.take(5), 50);
    assert.equal(b.take(5), 50, 'nothing was taken by the refusal');
    clock.advance(49);
    assert.equal(b.take(5), 1);
    clock.advance(1);
    assert.equal(b.take(5), 0);
    assert.equal(b.available(), 0);
  });

  it('grants an amount over the burst from a full bucket and carries the debt', () => {
    const clock = manualClock();
    const b = new TokenBucket(10, 10, clock.now);
    assert.equal(b.tryTake(25), true);
    assert.equal(b.available(), -15);
    assert.equal(b.take(1), 1600, '15 tokens of debt plus 1 at 10/s');
    assert.equal(b.take(25), 2500, 'a large amount waits for a full bucket');
    clock.advance(2500);
    assert.equal(b.tryTake(25), true);
  });

  it('earns nothing when the clock goes backwards', () => {
    const clock = manualClock();
    const b = new TokenBucket(10, 10, clock.now);
    b.tryTake(10);
    clock.advance(-500);
    assert.equal(b.available(), 0);
    clock.advance(100);
    assert.equal(b.available(), 1);
  });

  it('setRate keeps earned tokens up to the new burst and applies the new rate', () => {
    const clock = manualClock();
    const b = new TokenBucket(10, 10, clock.now);
    b.tryTake(4);
    b.setRate(100, 5);
    assert.equal(b.available(), 5, 'cut to the new burst');
    b.tryTake(5);
    clock.advance(10);
    assert.equal(b.available(), 1, 'refills at 100/s');
    b.setRate(100, 1000);
    assert.equal(b.available(), 1, 'a larger burst is not a gift of tokens');
  });

  it('treats 0 and Infinity as unlimited, also across setRate', () => {
    const clock = manualClock();
    const b = new TokenBucket(0, undefined, clock.now);
    assert.equal(b.unlimited, true);
    assert.equal(b.tryTake(1e12), true);
    assert.equal(b.take(1e12), 0);
    assert.equal(b.available(), Infinity);
    b.setRate(10, 30);
    assert.equal(b.available(), 30, 'a bucket that was unlimited starts full');
    b.setRate(Infinity);
    assert.equal(b.tryTake(1e12), true);
  });

  it('rejects negative and NaN rates and bad bursts with a coded error', () => {
    assert.throws(() => new TokenBucket(-1), (e: unknown) => e instanceof HadesError && e.code === 'HADES_ERR_CONFIG_VALUE');
    assert.throws(() => new TokenBucket(Number.NaN), HadesError);
    assert.throws(() => new TokenBucket(10, 0), HadesError);
    assert.throws(() => new TokenBucket(10, Infinity), HadesError);
  });

  it('rateLimit() gives the shared unlimited limit for 0 and Infinity', () => {
    assert.equal(rateLimit(0), unlimited);
    assert.equal(rateLimit(Infinity), unlimited);
    assert.equal(unlimited.tryTake(1e15), true);
    assert.equal(unlimited.take(1e15), 0);
    assert.equal(unlimited.available(), Infinity);
    const clock = manualClock();
    const limited = rateLimit(2, 2, clock.now);
    assert.equal(limited.tryTake(2), true);
    assert.equal(limited.tryTake(), false);
  });
});
