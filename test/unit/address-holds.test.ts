import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AddressHolds, holdDownMs } from '../../src/agent/transport/holds.js';

describe('gateway addresses held down after an Ack timeout', () => {
  it('holds an address longer after each timeout, up to the longest hold, and no more once it acknowledges', () => {
    let now = 1_000_000;
    const holds = new AddressHolds(() => now);
    assert.equal(holds.held('a:1'), false);
    assert.equal(holds.ackTimedOut('a:1', 100, 350), 100);
    assert.equal(holds.held('a:1'), true);
    assert.equal(holds.held('b:1'), false, 'per address');
    now += 100;
    assert.equal(holds.held('a:1'), false, 'the hold has ended: the address may be tried again');
    // Tried again, still stuck: twice as long, then capped.
    assert.equal(holds.ackTimedOut('a:1', 100, 350), 200);
    assert.equal(holds.ackTimedOut('a:1', 100, 350), 350);
    assert.equal(holds.ackTimedOut('a:1', 100, 350), 350);
    now += 349;
    assert.equal(holds.held('a:1'), true);
    // A batch acknowledged there: its ingest works; the next timeout starts over.
    holds.acknowledged('a:1');
    assert.equal(holds.held('a:1'), false);
    assert.equal(holds.ackTimedOut('a:1', 100, 350), 100);
  });

  it('ends a hold on time whatever is done to the wall clock meanwhile', async (t) => {
    let wall = Date.now();
    t.mock.method(Date, 'now', () => wall);
    const holds = new AddressHolds();
    holds.ackTimedOut('a:1', 50, 50);
    holds.ackTimedOut('b:1', 60_000, 60_000);
    // The host's clock set back a day (an NTP step, an intruder) right after the timeouts.
    wall -= 86_400_000;
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(holds.held('a:1'), false, 'held for the day the clock went back');
    assert.equal(holds.held('b:1'), true);
  });

  it('forgets the addresses a new list leaves out', () => {
    const holds = new AddressHolds();
    holds.ackTimedOut('a:1', 60_000, 60_000);
    holds.ackTimedOut('b:1', 60_000, 60_000);
    holds.keepOnly(['b:1', 'c:1']);
    assert.equal(holds.held('a:1'), false);
    assert.equal(holds.held('b:1'), true);
  });

  it('derives the holds from the Ack deadline: 5 deadlines then up to 30, at least 10 minutes and 1 hour', () => {
    assert.deepEqual(holdDownMs(120_000), { firstMs: 600_000, maxMs: 3_600_000 });
    assert.deepEqual(holdDownMs(10_000), { firstMs: 600_000, maxMs: 3_600_000 });
    assert.deepEqual(holdDownMs(600_000), { firstMs: 3_000_000, maxMs: 18_000_000 });
  });
});
