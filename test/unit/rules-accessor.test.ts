/**
 * Field readers of the rule engine (accessor.ts): the getters and visitors generated per field
 * read what the path says, quote any key as data, and the value index reads a field of one value
 * by the schema (`process.args[0]`) as that value, without an array around it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { allValues, anyValue, firstValue, keyReader, nextEvent } from '../../src/rules/accessor.js';
import { resolveField, type FieldRef } from '../../src/rules/fields.js';
import { fuzzParams } from '../helpers/fuzz.js';

function field(text: string): FieldRef {
  const r = resolveField(text);
  if (!r.ok) throw new RangeError(`${text}: ${r.message}`);
  return r.ref;
}

/** A reference with keys of our own, for what the catalogue never names. */
function raw(keys: readonly (string | [string, number])[], multi: boolean): FieldRef {
  const base = field('process.args');
  return { ...base, text: 'raw', multi, segments: keys.map((k) => (typeof k === 'string' ? { key: k } : { key: k[0], index: k[1] })) };
}

const exec = {
  event: { action: 'exec' },
  process: { name: 'sh', args: ['sh', '-c', 'id'], parent: { name: 'cron' } },
  hades: { ancestors: [{ name: 'cron', args: ['/usr/sbin/cron', '-f'] }, { name: 'systemd', args: ['/sbin/init'] }] },
};

describe('rule engine field readers', () => {
  it('read plain, indexed, multi-valued and nested-array fields', () => {
    assert.equal(firstValue(field('process.parent.name'))(exec), 'cron');
    assert.equal(firstValue(field('process.args[1]'))(exec), '-c');
    assert.equal(firstValue(field('process.args[7]'))(exec), undefined);
    assert.deepEqual(allValues(field('process.args'))(exec), ['sh', '-c', 'id']);
    assert.deepEqual(allValues(field('process.args'))({ process: {} }), []);
    assert.equal(anyValue(field('process.args'), (v) => v === 'id')(exec), true);
    assert.equal(anyValue(field('process.args'), (v) => v === 'ls')(exec), false);
    // An array met before the last key: each element is walked.
    assert.deepEqual(allValues(raw(['hades', 'ancestors', 'args'], true))(exec), ['/usr/sbin/cron', '-f', '/sbin/init']);
    assert.deepEqual(allValues(raw(['hades', 'ancestors', ['args', 0]], true))(exec), ['/usr/sbin/cron', '/sbin/init']);
    // A value that is not an object where the path goes on: nothing, no exception.
    assert.equal(firstValue(field('process.parent.name'))({ process: { parent: 'x' } }), undefined);
    assert.equal(firstValue(field('process.args[0]'))({ process: { args: 'sh' } }), undefined);
  });

  it('read keys that are not identifiers as data, never as code', () => {
    const odd = ['a"b', "c'd", 'e]f', 'g\\h', '\u2028', '${x}', 'constructor'];
    for (const k of odd) {
      const event = { outer: { [k]: { leaf: 7 } }, list: [{ [k]: 8 }] };
      assert.equal(firstValue(raw(['outer', k, 'leaf'], false))(event), 7, k);
      assert.deepEqual(allValues(raw(['list', k], true))(event), [8], k);
    }
  });

  it('give the value index a field of one value by the schema as that value', () => {
    nextEvent();
    assert.equal(keyReader(field('process.args[0]'), 'value')(exec), 'sh');
    assert.equal(keyReader(field('process.args[0]'), 'lower_basename')({ process: { args: ['/usr/bin/Python3'] } }), 'python3');
    assert.equal(keyReader(field('process.args[0]'), 'value')({ process: { args: [] } }), undefined);
    // Several values (an array where the schema has an object): all of them, as an array.
    assert.deepEqual(keyReader(field('process.args[0]'), 'value')({ process: [{ args: ['a'] }, { args: ['b'] }] }), ['a', 'b']);
    assert.deepEqual(keyReader(field('process.args'), 'value')(exec), ['sh', '-c', 'id']);
  });

  it('read a field through indices directly as the walk over every value reads it, whatever the event holds', () => {
    // The direct read of `a.b[1].c` serves events the schema describes; an array anywhere else
    // (or null, a text, a number where an object belongs) must give what the walk gives.
    const leaf = fc.oneof(fc.constantFrom(undefined, null, 0, '', 'x', true), fc.string({ maxLength: 3 }));
    const shape = fc.letrec<{ node: unknown }>((tie) => ({
      node: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        leaf,
        fc.array(tie('node'), { maxLength: 3 }),
        fc.record({ a: tie('node'), b: tie('node'), c: tie('node') }, { requiredKeys: [] }),
      ),
    })).node;
    const refs = [raw(['a', ['b', 1], 'c'], false), raw([['a', 0]], false), raw(['a', 'b', ['c', 0]], false), raw([['a', 0], ['b', 1]], false)];
    fc.assert(
      fc.property(shape, fc.integer({ min: 0, max: refs.length - 1 }), (event, which) => {
        const ref = refs[which]!;
        const e = { a: event, b: event } as Record<string, unknown>;
        const all = allValues({ ...ref, multi: true })(e);
        nextEvent();
        const expected = all.length === 0 ? undefined : all.length === 1 ? all[0] : all;
        assert.deepEqual(keyReader(ref, 'value')(e), expected);
        assert.equal(anyValue(ref, (v) => v === 'x')(e), all.includes('x'));
        assert.equal(anyValue(ref, () => true)(e), all.length > 0);
      }),
      fuzzParams(2000),
    );
  });
});
