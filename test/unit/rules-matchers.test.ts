import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCidr, parseIpv4, parseIpv6, cidrMatcher } from '../../src/rules/cidr.js';
import { compileGlob } from '../../src/rules/glob.js';
import { parseCondition } from '../../src/rules/parser.js';
import { plainSource } from '../../src/rules/problems.js';
import { parseDuration } from '../../src/rules/index.js';
import { fastestMs } from '../helpers/fuzz.js';

/** The meaning of a glob, written the slow and obvious way, to check the fast matcher against. */
function reference(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '[\\s\\S]*';
    else if (c === '?') re += '[\\s\\S]';
    else if (c === '[') {
      const close = pattern.indexOf(']', i + 2);
      let body = pattern.slice(i + 1, close);
      const negated = body.startsWith('!');
      if (negated) body = body.slice(1);
      re += `[${negated ? '^' : ''}${body.replace(/[\\\]^]/g, '\\$&')}]`;
      i = close;
    } else re += c.replace(/[.+^${}()|\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

describe('glob matcher', () => {
  it('matches the whole text', () => {
    const cases: [string, string, boolean][] = [
      ['/tmp/*', '/tmp/x', true],
      ['/tmp/*', '/tmp/a/b', true],
      ['/tmp/*', '/var/tmp/x', false],
      ['*.sh', '/tmp/x.sh', true],
      ['*.sh', '/tmp/x.shx', false],
      ['/home/*/.ssh/authorized_keys', '/home/alice/.ssh/authorized_keys', true],
      ['a*b*c', 'abc', true],
      ['a*b*c', 'aXbYbZc', true],
      ['a*b*c', 'acb', false],
      ['a*a', 'a', false],
      ['?', '', false],
      ['???', 'abc', true],
      ['[!a]x', 'bx', true],
      ['[!a]x', 'ax', false],
      ['x[0-9][0-9]', 'x42', true],
      ['x[0-9][0-9]', 'x4a', false],
      ['\\*', '*', true],
      ['\\*', 'a', false],
      ['*', '', true],
      ['', '', true],
    ];
    for (const [pattern, text, expected] of cases) assert.equal(compileGlob(pattern).test(text), expected, `${pattern} on ${text}`);
  });

  it('takes a ] right after [ or [! as a member of the set, as shells do', () => {
    const cases: [string, string, boolean][] = [
      ['[]a]', ']', true],
      ['[]a]', 'b', false],
      ['[!]a]', 'b', true],
      ['[!]a]', ']', false],
      ['[!]a]', 'a', false],
      ['[!]]x', 'ax', true],
      ['[!]]x', ']x', false],
      ['[^]]', ']', false],
    ];
    for (const [pattern, text, expected] of cases) assert.equal(compileGlob(pattern).test(text), expected, `${pattern} on ${text}`);
  });

  it('folds case for iglob without changing what a set holds', () => {
    // The text comes lower-cased (operators.ts); sets keep their ranges as written.
    const cases: [string, string, boolean][] = [
      ['[0-Z]', 'Q', true],
      ['[0-Z]', '[', false], // `[0-z]` would hold it
      ['[0-Z]', '_', false],
      ['[Z-a]x', 'AX', true], // `[z-a]` would be refused as reversed
      ['[Z-a]x', '_x', true],
      ['[Z-a]x', 'bx', false],
      ['[!A-Z]', 'q', false],
      ['[!A-Z]', '1', true],
      ['*.SH', 'RUN.sh', true],
      ['*Σ', 'ΑΣ', true], // a final capital sigma lower-cases to ς
      ['İd', 'İD', true],
      // İ lower-cases to two units (i and a combining dot): a glob takes it as one character, as glob does.
      ['x?', 'xİ', true],
      ['y[İ]', 'yİ', true],
      ['?d', 'İD', true],
      ['İ*', 'İSTANBUL', true],
      ['i*', 'İSTANBUL', false], // İ is not i under simple case folding (nor for i=)
    ];
    for (const [pattern, text, expected] of cases) assert.equal(compileGlob(pattern, undefined, 0, true).test(text.toLowerCase()), expected, `${pattern} on ${text}`);
  });

  it('agrees with a reference implementation on random patterns and texts', () => {
    let seed = 42;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const alphabet = 'ab/.';
    const atoms = ['a', 'b', '/', '.', '*', '?', '[ab]', '[!a]'];
    for (let round = 0; round < 3000; round++) {
      let pattern = '';
      for (let i = random(6); i >= 0; i--) pattern += atoms[random(atoms.length)];
      let text = '';
      for (let i = random(9); i > 0; i--) text += alphabet[random(alphabet.length)];
      assert.equal(compileGlob(pattern).test(text), reference(pattern).test(text), `${pattern} on ${JSON.stringify(text)}`);
    }
  });

  it('stays fast on patterns that make backtracking matchers slow', () => {
    const glob = compileGlob('*a*a*a*a*a*a*a*b');
    assert.equal(glob.test('a'.repeat(20_000)), false);
    const took = fastestMs(() => glob.test('a'.repeat(20_000)));
    assert.ok(took < 200, `${took} ms`);
  });
});

describe('address ranges', () => {
  it('parses IPv4 and IPv6', () => {
    assert.equal(parseIpv4('10.1.2.3'), 0x0a010203);
    for (const bad of ['10.1.2', '10.1.2.3.4', '256.1.1.1', '1..2.3', 'a.b.c.d', '']) assert.equal(parseIpv4(bad), undefined, bad);
    assert.deepEqual(parseIpv6('2001:db8::1'), [0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]);
    assert.deepEqual(parseIpv6('::'), [0, 0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(parseIpv6('::ffff:10.0.0.1'), [0, 0, 0, 0, 0, 0xffff, 0x0a00, 1]);
    assert.deepEqual(parseIpv6('fe80::1%eth0'), [0xfe80, 0, 0, 0, 0, 0, 0, 1]);
    for (const bad of ['1::2::3', '12345::', 'x::1', '1:2:3:4:5:6:7', '1.2.3.4']) assert.equal(parseIpv6(bad), undefined, bad);
  });

  it('matches ranges', () => {
    const m = cidrMatcher(['10.0.0.0/8', '192.168.1.7', 'fd00::/8', '0.0.0.0/0'].slice(0, 3).map((t) => parseCidr(t)!));
    assert.equal(m('10.200.1.1'), true);
    assert.equal(m('11.0.0.1'), false);
    assert.equal(m('192.168.1.7'), true);
    assert.equal(m('192.168.1.8'), false);
    assert.equal(m('fd12::1'), true);
    assert.equal(m('fe80::1'), false);
    assert.equal(m('::ffff:10.9.9.9'), true);
    assert.equal(m('not an address'), false);
    assert.equal(cidrMatcher([parseCidr('0.0.0.0/0')!])('1.2.3.4'), true);
    assert.equal(cidrMatcher([parseCidr('2001:db8:1:2::/63')!])('2001:db8:1:3::1'), true);
    assert.equal(cidrMatcher([parseCidr('2001:db8:1:2::/64')!])('2001:db8:1:3::1'), false);
    for (const bad of ['10.0.0.0/33', '10.0.0.0/x', '::/129', 'host']) assert.equal(parseCidr(bad), undefined, bad);
  });
});

describe('condition parser', () => {
  it('builds n-ary and/or with not binding tightest', () => {
    const e = parseCondition(plainSource('a and not b or c and d and e'));
    assert.equal(e.kind, 'or');
    if (e.kind !== 'or') return;
    assert.equal(e.items.length, 2);
    assert.equal(e.items[0]?.kind, 'and');
    assert.equal(e.items[1]?.kind, 'and');
    if (e.items[1]?.kind === 'and') assert.equal(e.items[1].items.length, 3);
  });

  it('reads operators, values, lists and list names', () => {
    const e = parseCondition(plainSource("process.args[1] i= '-E' and x.y in (a, \"b c\", 3,) and z.w in_cidr 10.0.0.0/8 and q.r in my_list"));
    assert.equal(e.kind, 'and');
    if (e.kind !== 'and') return;
    const [a, b, c, d] = e.items;
    assert.ok(a?.kind === 'cmp' && a.op.ci && a.op.base === 'eq' && a.field === 'process.args[1]' && a.value.kind === 'scalar' && a.value.text === '-E');
    assert.ok(b?.kind === 'cmp' && b.value.kind === 'list' && b.value.items.map((i) => i.text).join('|') === 'a|b c|3');
    assert.ok(c?.kind === 'cmp' && c.op.base === 'cidr' && c.value.kind === 'scalar' && c.value.text === '10.0.0.0/8');
    assert.ok(d?.kind === 'cmp' && d.value.kind === 'listref' && d.value.name === 'my_list');
  });

  it('parses durations', () => {
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('60s'), 60_000);
    assert.equal(parseDuration('5m'), 300_000);
    assert.equal(parseDuration('1h'), 3_600_000);
    assert.equal(parseDuration('2d'), 172_800_000);
    assert.equal(parseDuration(30), 30_000);
    assert.ok(Number.isNaN(parseDuration('1 week')));
  });
});
