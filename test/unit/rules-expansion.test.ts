import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { exampleWith } from '../helpers/rule-events.js';
import { formatProblem, loadRules, type LoadResult, type RuleProblem } from '../../src/rules/index.js';
import { MAX_EXPANDED_DEPTH, MAX_EXPANDED_NODES, MAX_EXPANDED_VALUES } from '../../src/rules/resolve.js';

/** Macros m0 .. m<n>, each using the next twice (`m0` expands to 2^(n+1) - 1 nodes). */
function doubling(n: number, op = 'and'): string {
  const lines = Array.from({ length: n }, (_, i) => `  m${i}: m${i + 1} ${op} m${i + 1}\n`);
  return `macros:\n${lines.join('')}  m${n}: process.name = z\n`;
}

/** Macros m0 .. m<n - 1>, each using the next once. */
function chain(n: number): string {
  const lines = Array.from({ length: n }, (_, i) => `  m${i}: ${i === n - 1 ? 'process.name = z' : `m${i + 1}`}\n`);
  return `macros:\n${lines.join('')}`;
}

/** A rule; its condition starts at column 16 of its fifth line. */
const rule = (id: string, condition: string) => `  - id: ${id}\n    title: T\n    severity: low\n    condition: ${condition}\n`;

/** The line the condition of the rule `index` (0-based) of `rules(...)` sits on, after `before`. */
const conditionLine = (before: string, index: number) => before.split('\n').length + 1 + index * 4 + 3;

function load(text: string): LoadResult {
  return loadRules([{ name: 'f.yaml', text }]);
}

function tooComplex(problems: readonly RuleProblem[], rule: string): RuleProblem {
  const p = problems.find((x) => x.code === 'HADES_ERR_RULE_TOO_COMPLEX' && x.rule === rule);
  assert.ok(p, `expected HADES_ERR_RULE_TOO_COMPLEX for '${rule}', got ${problems.map(formatProblem).join('; ') || 'nothing'}`);
  assert.equal(p.severity, 'error');
  return p;
}

const sh = exampleWith('exec', { 'process.name': 'sh' });
const z = exampleWith('exec', { 'process.name': 'z' });

describe('rule compiler: conditions too complex once macros are expanded', () => {
  it('refuses macros that double at each level at once, at the rule, and loads the other rules', () => {
    const macros = doubling(40);
    const text = `${macros}rules:\n${rule('bad', 'm0')}${rule('good', 'process.name = sh')}`;
    const started = performance.now();
    const { ruleSet, problems } = load(text);
    const elapsed = performance.now() - started;
    // Expanded, 2^40 nodes would never finish: seconds on a loaded machine still prove the limit.
    assert.ok(elapsed < 5000, `took ${elapsed} ms`);
    const p = tooComplex(problems, 'bad');
    assert.deepEqual([p.file, p.line, p.column], ['f.yaml', conditionLine(macros, 0), 16], formatProblem(p));
    assert.match(p.message, new RegExp(`more than ${MAX_EXPANDED_NODES} nodes`));
    assert.match(p.message, /in macro 'm\d+', reached by m0 -> m1 -> /);
    assert.ok(problems.every((x) => x.code !== 'HADES_ERR_INTERNAL'));
    assert.deepEqual(
      ruleSet.rules.map((r) => r.id),
      ['good'],
    );
    assert.deepEqual(
      ruleSet.match(sh).map((m) => m.rule.id),
      ['good'],
    );
  });

  it('refuses a chain of 2000 macros as too deep instead of overflowing the stack', () => {
    const macros = chain(2000);
    const text = `${macros}rules:\n${rule('bad', 'm0')}${rule('good', 'process.name = sh')}`;
    const started = performance.now();
    const { ruleSet, problems } = load(text);
    assert.ok(performance.now() - started < 5000);
    const p = tooComplex(problems, 'bad');
    assert.deepEqual([p.file, p.line, p.column], ['f.yaml', conditionLine(macros, 0), 16], formatProblem(p));
    assert.match(p.message, new RegExp(`more than ${MAX_EXPANDED_DEPTH} levels deep`));
    assert.match(p.message, new RegExp(`in macro 'm${MAX_EXPANDED_DEPTH}', reached by m0 -> m1 -> m2 -> … -> m${MAX_EXPANDED_DEPTH - 2} -> m${MAX_EXPANDED_DEPTH - 1} -> m${MAX_EXPANDED_DEPTH}$`));
    assert.ok(problems.every((x) => x.code !== 'HADES_ERR_INTERNAL'));
    assert.deepEqual(
      ruleSet.match(sh).map((m) => m.rule.id),
      ['good'],
    );
  });

  it('puts the depth limit exactly at MAX_EXPANDED_DEPTH levels, each macro one', () => {
    const fits = load(`${chain(MAX_EXPANDED_DEPTH)}rules:\n${rule('r', 'm0')}`);
    assert.deepEqual(fits.problems.filter((p) => p.severity === 'error'), []);
    assert.equal(fits.ruleSet.match(z).length, 1);
    tooComplex(load(`${chain(MAX_EXPANDED_DEPTH + 1)}rules:\n${rule('r', 'm0')}`).problems, 'r');
    // The macro's depth counts again where it is used: at the limit alone, one level more in a `not`.
    tooComplex(load(`${chain(MAX_EXPANDED_DEPTH)}rules:\n${rule('r', 'not m0')}`).problems, 'r');
  });

  it('loads rules that use the same macros several times, and matches them as written', () => {
    const text = [
      'macros:',
      '  shell: process.name in (sh, bash)',
      '  root: process.user.name = root',
      '  both: shell and root',
      '  either: shell or root',
      'rules:',
      rule('r', '"both or (either and shell) or (not root and shell)"').trimEnd(),
      rule('s', '"shell and shell and not (shell and root)"').trimEnd(),
      '',
    ].join('\n');
    const { ruleSet, problems } = load(text);
    assert.deepEqual(problems.map(formatProblem), []);
    const rootSh = exampleWith('exec', { 'process.name': 'sh', 'process.user.name': 'root' });
    const userSh = exampleWith('exec', { 'process.name': 'sh', 'process.user.name': 'alice' });
    const rootCurl = exampleWith('exec', { 'process.name': 'curl', 'process.user.name': 'root' });
    assert.deepEqual(ruleSet.match(rootSh).map((m) => m.rule.id), ['r']);
    assert.deepEqual(ruleSet.match(userSh).map((m) => m.rule.id), ['r', 's']);
    assert.deepEqual(ruleSet.match(rootCurl).map((m) => m.rule.id), []);
  });

  it('counts a macro at each use: one that fits alone is refused when used three times', () => {
    // m0 expands to 4095 nodes: once fits, three times (and the or) do not.
    const macros = doubling(11);
    const once = load(`${macros}rules:\n${rule('r', 'm0')}`);
    assert.deepEqual(once.problems.filter((p) => p.severity === 'error'), []);
    assert.equal(once.ruleSet.match(z).length, 1);
    const thrice = load(`${macros}rules:\n${rule('ok', 'm1')}${rule('r', 'm0 or m0 or m0')}`);
    const p = tooComplex(thrice.problems, 'r');
    // Passed at the third use, the first two having been counted.
    assert.deepEqual([p.line, p.column], [conditionLine(macros, 1), 28], formatProblem(p));
    assert.match(p.message, /in macro 'm0', reached by m0$/);
    assert.deepEqual(thrice.ruleSet.rules.map((r) => r.id), ['ok']);
  });

  it('counts the values of lists at each use', () => {
    const items = Array.from({ length: 100_000 }, (_, i) => `v${i}`).join(',');
    const uses = Math.floor(MAX_EXPANDED_VALUES / 100_000) + 1;
    const condition = Array.from({ length: uses }, (_, i) => `(big_name and process.pid = ${i})`).join(' or ');
    const text = `lists:\n  big: [${items}]\nmacros:\n  big_name: process.name in big\nrules:\n${rule('r', condition)}`;
    const p = tooComplex(load(text).problems, 'r');
    assert.match(p.message, new RegExp(`more than ${MAX_EXPANDED_VALUES} values`));
  });

  it('refuses an appended condition that makes the rule too complex, at the override', () => {
    const macros = doubling(11);
    const { ruleSet, problems } = loadRules([
      { name: 'f.yaml', text: `${macros}rules:\n${rule('r', 'm0')}` },
      { name: 'local.yaml', text: 'rules:\n  - override: r\n    append:\n      condition: m0 and m0\n' },
    ]);
    const p = tooComplex(problems, 'r');
    assert.deepEqual([p.file, p.line, p.column], ['local.yaml', 4, 25], formatProblem(p));
    assert.equal(ruleSet.rules.length, 0);
  });

  it('reports an unused macro that is too complex on its own, at its condition', () => {
    const macros = doubling(40);
    const problems = load(macros).problems;
    const p = tooComplex(problems, 'm0');
    assert.deepEqual([p.line, p.column], [2, 7], formatProblem(p));
    assert.equal(problems.filter((x) => x.severity === 'error').length, 1);
    assert.ok(problems.every((x) => x.code !== 'HADES_ERR_INTERNAL'));
  });

  it('leaves long structured exceptions to the schema', () => {
    const tuples = Array.from({ length: 4000 }, (_, i) => `[u${i}, p${i}]`).join(', ');
    const text = `rules:\n${rule('r', 'event.action = exec')}    exceptions:\n      - fields: [process.user.name, process.name]\n        values: [${tuples}]\n`;
    const { ruleSet, problems } = load(text);
    assert.deepEqual(problems.filter((p) => p.severity === 'error').map(formatProblem), []);
    assert.equal(ruleSet.match(exampleWith('exec', { 'process.user.name': 'u7', 'process.name': 'p7' })).length, 0);
    assert.equal(ruleSet.match(exampleWith('exec', { 'process.user.name': 'u7', 'process.name': 'p8' })).length, 1);
  });
});
