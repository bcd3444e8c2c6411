import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { formatProblem, loadRules, runSamples, type LoadResult } from '../../src/rules/index.js';
import { withoutSamples } from '../../src/rules/without-samples.js';
import { readDefaultPack, type RuleFileText } from '../../src/runtime/rule-pack.js';

const lineCount = (text: string) => text.split('\n').length;

describe('rule files read without their samples', () => {
  let files: RuleFileText[];
  let full: LoadResult;
  let lean: LoadResult;
  before(async () => {
    files = await readDefaultPack();
    full = loadRules(files);
    lean = loadRules(files, { samples: false });
  });

  it('loads the default pack to the same rules, with the same lines, and no samples', () => {
    assert.deepEqual(lean.problems.map(formatProblem), full.problems.map(formatProblem));
    assert.deepEqual(lean.ruleSet.rules, full.ruleSet.rules);
    assert.deepEqual(lean.counts, full.counts);
    assert.equal(lean.samples.length, 0);
    assert.ok(full.samples.length > 200);
  });

  it('matches as the rules read with their samples do: every sample passes against the lean set', () => {
    const report = runSamples(lean.ruleSet, full.samples);
    assert.deepEqual(report.problems.map(formatProblem), []);
  });

  it('takes two thirds of the pack out of the parser, and keeps every line in its place', () => {
    let before = 0;
    let after = 0;
    for (const f of files) {
      const lean = withoutSamples(f.text);
      assert.equal(lineCount(lean), lineCount(f.text), f.name);
      before += f.text.length;
      after += lean.length;
    }
    assert.ok(after < before / 2, `${after} of ${before} bytes left`);
  });

  it('blanks only the samples key of a rule entry and what is under it', () => {
    const text = [
      '# a comment',
      'macros:',
      '  samples: process.name = x', // a macro called samples: not a rule entry
      'rules:',
      '  - id: a',
      '    description: |',
      '      what it is',
      '    samples:', // key of the entry: blanked with its block
      '      match:',
      '# a comment at column 0 inside the block',
      '        - { event.action: exec }',
      '',
      '      no_match: []',
      '    condition: process.name = a',
      '    exceptions:',
      '      - name: e',
      '        fields: [process.name]',
      '        samples: kept', // deeper: not the entry's key
      '  - id: b',
      '    samples: { match: [] }', // one line, flow
      '    condition: process.name = b',
      'lists:',
      '  samples: [x]',
    ].join('\n');
    const lean = withoutSamples(text).split('\n');
    const kept = (i: number) => assert.equal(lean[i], text.split('\n')[i], `line ${i + 1}`);
    const blank = (i: number) => assert.equal(lean[i], '', `line ${i + 1}`);
    for (const i of [0, 1, 2, 3, 4, 5, 6]) kept(i);
    for (const i of [7, 8, 9, 10, 11, 12]) blank(i);
    for (const i of [13, 14, 15, 16, 17, 18]) kept(i);
    blank(19);
    for (const i of [20, 21, 22]) kept(i);
  });

  it('reads entries written at column 0 too, and leaves a text without samples as it is', () => {
    const text = 'rules:\n- id: a\n  samples:\n    match: []\n  condition: process.name = a\n';
    assert.equal(withoutSamples(text), 'rules:\n- id: a\n\n\n  condition: process.name = a\n');
    const plain = 'rules:\n  - id: a\n    condition: process.name = a\n';
    assert.equal(withoutSamples(plain), plain);
  });

  it('reports a problem after the samples at its own line', () => {
    const text = 'rules:\n  - id: a\n    title: A\n    description: the first rule, with samples before a broken one\n    severity: low\n    tags: [attack.execution, attack.t1059]\n    condition: event.action = exec\n    output: "a"\n    samples:\n      match:\n        - { event.action: exec }\n  - id: b\n    title: B\n    description: the second rule, whose condition names no field of the schema\n    severity: low\n    tags: [attack.execution, attack.t1059]\n    condition: no.such.field = 1\n    output: "b"\n';
    const problems = (samples: boolean) => loadRules([{ name: 'x.yaml', text }], { samples }).problems.filter((p) => p.severity === 'error').map((p) => `${p.code} ${p.line}:${p.column}`);
    assert.deepEqual(problems(false), problems(true));
    assert.equal(problems(false).length, 1);
  });
});
