/** How an agent's clock offset reads (src/common/clock-offset.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatOffset } from '../../src/common/clock-offset.js';

describe('formatOffset', () => {
  it('gives the sign and the two largest units, to the second', () => {
    assert.equal(formatOffset(0), '+0 s');
    assert.equal(formatOffset(400), '+0 s');
    assert.equal(formatOffset(1500), '+2 s');
    assert.equal(formatOffset(-61_000), '-1 min 1 s');
    assert.equal(formatOffset(-86_400_000), '-1 d');
    assert.equal(formatOffset(3 * 3_600_000 + 2 * 60_000 + 5_000), '+3 h 2 min');
    assert.equal(formatOffset(-(2 * 86_400_000 + 5 * 60_000)), '-2 d 5 min');
    assert.equal(formatOffset(-400), '+0 s', 'no sign of its own for what rounds to nothing');
    assert.equal(formatOffset(Number.NaN), '?');
    assert.equal(formatOffset(Number.POSITIVE_INFINITY), '?');
  });
});
