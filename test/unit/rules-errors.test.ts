import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { exampleEvent } from '../../src/common/events/index.js';
import { HadesError } from '../../src/common/errors.js';
import { capProblems, formatProblem, loadRules, MAX_PROBLEMS, MAX_RULE_FILE_BYTES, rulesError, runSamples, type RuleProblem } from '../../src/rules/index.js';
import { fastestMs } from '../helpers/fuzz.js';

function problemsOf(text: string, name = 'f.yaml'): RuleProblem[] {
  return [...loadRules([{ name, text }]).problems];
}

/** The one problem of a file, checked for code, position and (part of) message. */
function expectProblem(text: string, code: string, line: number, column: number, message?: RegExp, severity = 'error'): RuleProblem {
  const problems = problemsOf(text);
  const p = problems.find((x) => x.code === code && (message === undefined || message.test(x.message)));
  assert.ok(p, `expected ${code}, got ${problems.map(formatProblem).join('; ') || 'nothing'}`);
  assert.equal(p.severity, severity);
  assert.equal(p.file, 'f.yaml');
  assert.deepEqual([p.line, p.column], [line, column], formatProblem(p));
  if (message) assert.match(p.message, message);
  return p;
}

/** A rule whose condition is on line 5, starting at column 16. */
const rule = (condition: string, extra = '') => `rules:\n  - id: r\n    title: T\n    severity: low\n    condition: ${condition}\n${extra}`;

describe('rule compiler: YAML and schema', () => {
  it('reports bad YAML with its position and loads nothing from the file', () => {
    const p = expectProblem('rules:\n  - id: r\n   title: x\n', 'HADES_ERR_RULE_YAML', 3, 1);
    assert.match(formatProblem(p), /^f\.yaml:3:1: error HADES_ERR_RULE_YAML: /);
    expectProblem('rules:\n  - id: r\n    id: s\n', 'HADES_ERR_RULE_YAML', 3, 5, /unique/);
  });

  it('explains the usual YAML mistakes of rule files, one problem per line', () => {
    // A key indented one column less than its siblings: the parser says three things of line 4.
    const under = problemsOf('rules:\n  - id: r\n    title: T\n   severity: low\n    condition: process.name = x\n');
    assert.deepEqual(under.map((p) => [p.code, p.line, p.column]), [['HADES_ERR_RULE_YAML', 4, 1]], under.map(formatProblem).join('\n'));
    assert.match(under[0]!.message, /check the indentation/);
    // ': ' in a plain condition.
    expectProblem(rule('event.action = exec and process.name: x'), 'HADES_ERR_RULE_YAML', 5, 16, /a plain value cannot hold ': ' \(quote it, or write a condition as a block after '>'\)/);
    // A condition that starts with a quoted string.
    expectProblem(rule('"event.action = exec" and process.name = x'), 'HADES_ERR_RULE_YAML', 5, 38, /starts with a quote ends at the closing quote/);
    // Mis-indented under a mapping key.
    expectProblem('rules:\n  - id: r\n    title: T\n  severity: low\n', 'HADES_ERR_RULE_YAML', 4, 1, /check the indentation/);
  });

  it("names the YAML comment that cut a plain condition short when its syntax fails", () => {
    // ' #' in a plain value starts a comment: the condition YAML gives is `... contains "`.
    expectProblem(rule('event.action = exec and process.command_line contains " #" and process.name = bash'), 'HADES_ERR_RULE_SYNTAX', 5, 70, /unterminated string.*\(YAML read '#" and process.name = bash' as a comment, which ends a plain value/);
    const macro = problemsOf('macros:\n  m: process.name in (a, #b)\n');
    assert.match(macro.find((p) => p.code === 'HADES_ERR_RULE_SYNTAX')?.message ?? '', /YAML read '#b\)' as a comment/);
    // A comment after a condition that parses is a comment; quoted or block values are not cut.
    assert.deepEqual(problemsOf(rule('event.action = exec and process.name = bash  # shells only', '    samples: {match: [{event: {action: exec}, process: {name: bash}}], no_match: [{event: {action: exec}, process: {name: sh}}]}\n')), []);
    assert.doesNotMatch(expectProblem(rule('"event.action = exec and process.name = (a, " # b'), 'HADES_ERR_RULE_SYNTAX', 5, 60).message, /YAML read/);
  });

  it('refuses a file that is too large', () => {
    const [p] = problemsOf('#'.repeat(MAX_RULE_FILE_BYTES + 1));
    assert.equal(p?.code, 'HADES_ERR_RULE_TOO_LARGE');
  });

  it('reports a file its reader could not take (too large, not UTF-8) as that file\'s error, with its position', () => {
    const ok = { name: 'ok.yaml', text: rule('process.name = x') };
    const large = { name: 'big.yaml', text: '', unreadable: { code: 'HADES_ERR_RULE_TOO_LARGE' as const, message: 'the file is 9437229 bytes; a rule file may be 8388608' } };
    const latin1 = { name: 'latin1.yaml', text: '', unreadable: { code: 'HADES_ERR_RULE_YAML' as const, message: 'byte 0xC3 is not UTF-8 text: save the file as UTF-8', line: 5, column: 32 } };
    const { ruleSet, problems } = loadRules([large, ok, latin1]);
    assert.deepEqual(problems.map((p) => [p.file, p.code, p.line, p.column]), [['big.yaml', 'HADES_ERR_RULE_TOO_LARGE', undefined, undefined], ['latin1.yaml', 'HADES_ERR_RULE_YAML', 5, 32]]);
    assert.deepEqual(ruleSet.rules.map((r) => r.id), ['r'], 'the other file loads');
  });

  it('says where an alias without its anchor, or an alias bomb, is, and what a second YAML document means', () => {
    expectProblem('macros:\n  a: process.name = x\nrules:\n  - id: r\n    title: *nowhere\n', 'HADES_ERR_RULE_YAML', 5, 12, /alias/i);
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]', ...'bcdefgh'.split('').map((c, i) => `${c}: &${c} [${Array(10).fill(`*${'abcdefgh'[i]}`).join(', ')}]`)].join('\n');
    expectProblem(`${bomb}\n`, 'HADES_ERR_RULE_YAML', 2, 8, /alias/i);
    expectProblem('lists:\n  l: &l [a, *l]\n', 'HADES_ERR_RULE_YAML', 2, 13, /would contain itself/);
    const two = expectProblem(`${rule('process.name = x')}---\nrules: []\n`, 'HADES_ERR_RULE_YAML', 6, 1);
    assert.match(two.message, /one YAML document/);
    assert.doesNotMatch(two.message, /parseAllDocuments/);
  });

  it('refuses unknown keys with the intended key', () => {
    const p = expectProblem('rules:\n  - id: r\n    title: T\n    severty: low\n    condition: process.name = x\n', 'HADES_ERR_RULE_INVALID', 4, 5, /unknown key 'severty'; did you mean 'severity'/);
    assert.equal(p.suggestion, 'severity');
    assert.equal(p.rule, 'r');
    expectProblem('rulez: []\n', 'HADES_ERR_RULE_INVALID', 1, 1, /did you mean 'rules'/);
  });

  it('refuses missing keys, bad severities and bad types', () => {
    expectProblem('rules:\n  - id: r\n    title: T\n    condition: process.name = x\n', 'HADES_ERR_RULE_INVALID', 2, 5, /missing required key 'severity'/);
    expectProblem('rules:\n  - id: r\n    title: T\n    severity: urgent\n    condition: process.name = x\n', 'HADES_ERR_RULE_INVALID', 4, 15, /one of info, low, medium, high, critical/);
    expectProblem('rules:\n  - id: r\n    type: seq\n    title: T\n    severity: low\n', 'HADES_ERR_RULE_INVALID', 3, 11, /rule, sequence, threshold/);
    expectProblem(rule('""'), 'HADES_ERR_RULE_INVALID', 5, 16, /must not be empty/);
    // Bounds said as an author reads them, not in the schema library's words.
    const zero = expectProblem('rules:\n  - id: t\n    type: threshold\n    title: T\n    severity: low\n    condition: process.name = x\n    count: 0\n    within: 1m\n', 'HADES_ERR_RULE_INVALID', 7, 12);
    assert.equal(zero.message, "'count' must be at least 1 (got number 0)");
    const one = expectProblem('rules:\n  - id: s\n    type: sequence\n    title: T\n    severity: low\n    within: 1m\n    steps:\n      - condition: process.name = x\n', 'HADES_ERR_RULE_INVALID', 8, 7);
    assert.match(one.message, /^'steps' must be a list of at least 2 items \(got /);
  });

  it('checks ATT&CK tags', () => {
    const p = expectProblem(rule('process.name = x', '    tags: [attack.t1059.004, attack.executon]\n'), 'HADES_ERR_RULE_INVALID', 6, 30, /did you mean 'attack.execution'/);
    assert.equal(p.suggestion, 'attack.execution');
    assert.deepEqual(problemsOf(rule('process.name = x', '    tags: [attack.t1059, attack.g0032, attack.s0002, attack.privilege-escalation, linux]\n')), []);
  });

  it('refuses a duplicate id and keeps the first', () => {
    const text = rule('process.name = x') + '  - id: r\n    title: U\n    severity: low\n    condition: process.name = y\n';
    expectProblem(text, 'HADES_ERR_RULE_DUPLICATE_ID', 6, 5, /already defined at f\.yaml:2/);
    const { ruleSet } = loadRules([{ name: 'f.yaml', text }]);
    assert.equal(ruleSet.rules.length, 1);
    assert.equal(ruleSet.rules[0]?.title, 'T');
  });

  it('refuses duplicate macros and lists across files', () => {
    const { problems } = loadRules([
      { name: 'a.yaml', text: 'macros:\n  m: process.name = x\nlists:\n  l: [a]\n' },
      { name: 'f.yaml', text: 'macros:\n  m: process.name = y\nlists:\n  l: [b]\n' },
    ]);
    const dups = problems.filter((p) => p.code === 'HADES_ERR_RULE_DUPLICATE_ID');
    assert.deepEqual(
      dups.map((p) => [p.file, p.line, p.rule]),
      [
        ['f.yaml', 2, 'm'],
        ['f.yaml', 4, 'l'],
      ],
    );
  });
});

describe('rule compiler: condition syntax', () => {
  it('points at the token at fault', () => {
    expectProblem(rule('(process.name = x'), 'HADES_ERR_RULE_SYNTAX', 5, 33, /expected '\)' to close the '\(' of line 5, column 16/);
    expectProblem(rule('process.name = x)'), 'HADES_ERR_RULE_SYNTAX', 5, 32, /unbalanced '\)'/);
    expectProblem(rule(`'process.name = "x'`), 'HADES_ERR_RULE_SYNTAX', 5, 32, /unterminated string/);
    expectProblem(rule('process.name = x ; y'), 'HADES_ERR_RULE_SYNTAX', 5, 33, /unexpected character ';'/);
    expectProblem(rule('process.name = x and and process.pid = 1'), 'HADES_ERR_RULE_SYNTAX', 5, 37, /expected a field, a macro or '\('/);
    expectProblem(rule('process.name'), 'HADES_ERR_RULE_SYNTAX', 5, 28, /expected an operator after the field 'process.name'/);
    expectProblem(rule('process.name in "x"'), 'HADES_ERR_RULE_SYNTAX', 5, 32, /'in' takes a list/);
  });

  it('cuts a message that quotes a huge condition, saying how long it was', () => {
    const { problems } = loadRules([{ name: 'f.yaml', text: rule(`process.name = ${'a'.repeat(70_000)}`) }]);
    assert.ok(problems.length > 0);
    for (const p of problems) assert.ok(p.message.length <= 1100, `${p.code}: ${p.message.length} characters`);
    assert.ok(problems.some((p) => /… \(\d+ characters\)$/.test(p.message)));
  });

  it('refuses names every object inherits as keys of free-form objects (they would exist on every event)', () => {
    expectProblem(rule('hades.cmdb.tags.constructor exists'), 'HADES_ERR_RULE_UNKNOWN_FIELD', 5, 16, /'constructor' is a name every object has/);
    expectProblem(rule('hades.inventory.row.toString = x'), 'HADES_ERR_RULE_UNKNOWN_FIELD', 5, 16, /'toString' is a name every object has/);
    expectProblem(rule('hades.cmdb.tags.__proto__ exists'), 'HADES_ERR_RULE_UNKNOWN_FIELD', 5, 16);
  });

  it('checks dedup_by: event fields that exist and hold one value each, with their position', () => {
    expectProblem(rule('process.name = x', '    dedup_by: [process.nmae]\n'), 'HADES_ERR_RULE_UNKNOWN_FIELD', 6, 16, /did you mean 'process\.name'/);
    expectProblem(rule('process.name = x', '    dedup_by: [process.pid, process.parent]\n'), 'HADES_ERR_RULE_TYPE_MISMATCH', 6, 29, /is an object/);
    expectProblem(rule('process.name = x', '    dedup_by: []\n'), 'HADES_ERR_RULE_INVALID', 6, 15);
    expectProblem(rule('process.name = x', '    dedup_by: ["process.args[1]"]\n'), 'HADES_ERR_RULE_INVALID', 6, 29, /not list positions/);
    expectProblem(rule('process.name = x', '    dedup_by: [hades.ancestors.name]\n'), 'HADES_ERR_RULE_TYPE_MISMATCH', 6, 16, /several values/);
    const threshold = 'rules:\n  - id: t\n    type: threshold\n    title: T\n    severity: low\n    condition: event.action = exec\n    count: 3\n    within: 1m\n    by: [host.name]\n    dedup_by: [process.executable]\n';
    expectProblem(threshold, 'HADES_ERR_RULE_INVALID', 10, 15, /dedup_by is for rules of type rule/);
    const { ruleSet, problems } = loadRules([{ name: 'f.yaml', text: rule('process.name = x', '    dedup_by: [process.parent.entity_id]\n') }]);
    assert.deepEqual(problems, []);
    assert.deepEqual(ruleSet.rule('r')?.dedupBy, ['process.parent.entity_id']);
    // An override replaces it; its problems point into the override's file.
    const overridden = loadRules([
      { name: 'f.yaml', text: rule('process.name = x') },
      { name: 'o.yaml', text: 'rules:\n  - override: r\n    replace:\n      dedup_by: [process.pid]\n' },
    ]);
    assert.deepEqual(overridden.problems, []);
    assert.deepEqual(overridden.ruleSet.rule('r')?.dedupBy, ['process.pid']);
    const bad = loadRules([
      { name: 'f.yaml', text: rule('process.name = x') },
      { name: 'o.yaml', text: 'rules:\n  - override: r\n    replace:\n      dedup_by: [process.pdi]\n' },
    ]).problems;
    assert.deepEqual(bad.map((p) => [p.file, p.code, p.line, p.column]), [['o.yaml', 'HADES_ERR_RULE_UNKNOWN_FIELD', 4, 18]]);
  });

  it('refuses conditions nested too deep rather than overflowing the stack', () => {
    expectProblem(rule(`"${'('.repeat(100)}process.name = x${')'.repeat(100)}"`), 'HADES_ERR_RULE_SYNTAX', 5, 81, /deeper than 64/);
  });

  it('maps positions through folded, literal and quoted YAML scalars', () => {
    const folded = 'rules:\n  - id: r\n    title: T\n    severity: low\n    condition: >\n      event.action = exec and\n      process.name = x and process.nmae = y\n';
    expectProblem(folded, 'HADES_ERR_RULE_UNKNOWN_FIELD', 7, 28);
    const literal = folded.replace('condition: >', 'condition: |');
    expectProblem(literal, 'HADES_ERR_RULE_UNKNOWN_FIELD', 7, 28);
    const quoted = 'rules:\n  - id: r\n    title: T\n    severity: low\n    condition: "event.action = exec and process.nmae = \\"y\\""\n';
    expectProblem(quoted, 'HADES_ERR_RULE_UNKNOWN_FIELD', 5, 41);
  });

  it('maps positions through the escapes of double-quoted YAML scalars', () => {
    // Each escape is one character of the condition: the token after it is found where it is written.
    const line = (condition: string) => `rules:\n  - id: r\n    title: T\n    severity: low\n    condition: "${condition}"\n`;
    expectProblem(line(String.raw`process.name = \"caf\u00e9\" and process.nmae = y`), 'HADES_ERR_RULE_UNKNOWN_FIELD', 5, 50);
    expectProblem(line(String.raw`process.name = \"caf\xe9\" and process.nmae = y`), 'HADES_ERR_RULE_UNKNOWN_FIELD', 5, 48);
    expectProblem(line(String.raw`process.name = \"\U0001F600\" and process.nmae = y`), 'HADES_ERR_RULE_UNKNOWN_FIELD', 5, 51);
    expectProblem(line(String.raw`process.name = a\nand process.nmae = y`), 'HADES_ERR_RULE_UNKNOWN_FIELD', 5, 39);
    // An escape no longer throws the rest of the scalar, and its lines, to its end.
    const folded = 'rules:\n  - id: r\n    title: T\n    severity: low\n    condition: "process.name = \\"\\u00e9\\" and process.nmae = y and\n      process.name = z"\n';
    expectProblem(folded, 'HADES_ERR_RULE_UNKNOWN_FIELD', 5, 47);
    // A line continued with a backslash.
    const continued = 'rules:\n  - id: r\n    title: T\n    severity: low\n    condition: "process.name = a and \\\n      process.nmae = y"\n';
    expectProblem(continued, 'HADES_ERR_RULE_UNKNOWN_FIELD', 6, 7);
  });

  it('refuses unknown operators with the intended one', () => {
    const like = expectProblem(rule('process.name like x'), 'HADES_ERR_RULE_BAD_OPERATOR', 5, 29, /unknown operator 'like'; did you mean 'glob'/);
    assert.equal(like.suggestion, 'glob');
    expectProblem(rule('process.name =~ x'), 'HADES_ERR_RULE_BAD_OPERATOR', 5, 29, /did you mean '~='/);
    expectProblem(rule('process.name startwith x'), 'HADES_ERR_RULE_BAD_OPERATOR', 5, 29, /did you mean 'startswith'/);
    // A name every object inherits is no operator, and suggests none of Object.prototype's functions.
    const proto = expectProblem(rule('process.name constructor x'), 'HADES_ERR_RULE_BAD_OPERATOR', 5, 29, /unknown operator 'constructor'/);
    assert.ok(proto.suggestion === undefined || typeof proto.suggestion === 'string', `suggestion: ${String(proto.suggestion)}`);
    assert.doesNotMatch(proto.message, /native code/);
  });
});

describe('rule compiler: resolution and types', () => {
  it('refuses unknown fields with a suggestion', () => {
    const p = expectProblem(rule('process.nme = x'), 'HADES_ERR_RULE_UNKNOWN_FIELD', 5, 16, /unknown field 'process.nme'; did you mean 'process.name'/);
    assert.equal(p.suggestion, 'process.name');
    expectProblem(rule('proc.name = x'), 'HADES_ERR_RULE_UNKNOWN_FIELD', 5, 16, /did you mean 'process.name'/);
    expectProblem(rule('ancestor.nam = x'), 'HADES_ERR_RULE_UNKNOWN_FIELD', 5, 16, /did you mean 'ancestor.name'/);
    expectProblem(rule('process.name[1] = x'), 'HADES_ERR_RULE_UNKNOWN_FIELD', 5, 16, /not an array/);
  });

  it('refuses, inside any ancestor (...), what is not a field of one ancestor, with the one meant', () => {
    const p = expectProblem(rule('any ancestor (nmae = x)'), 'HADES_ERR_RULE_UNKNOWN_FIELD', 5, 30, /unknown field 'nmae' of an ancestor .*fields are pid, entity_id, name, executable, args, args_truncated, copy_of.path, copy_of.name\); did you mean 'name'/);
    assert.equal(p.suggestion, 'name');
    assert.equal(expectProblem(rule('any ancestor (ancestor.name = x)'), 'HADES_ERR_RULE_UNKNOWN_FIELD', 5, 30, /did you mean 'name'/).suggestion, 'name');
    assert.equal(expectProblem(rule('any ancestor (name = x and process.args[1] = y)'), 'HADES_ERR_RULE_UNKNOWN_FIELD', 5, 43, /'process.args\[1\]' of an ancestor.*did you mean 'args\[1\]'/).suggestion, 'args[1]');
    expectProblem(rule('any ancestor (process.command_line = x)'), 'HADES_ERR_RULE_UNKNOWN_FIELD', 5, 30, /unknown field 'process.command_line' of an ancestor/);
    expectProblem(rule('any ancestor (name[1] = x)'), 'HADES_ERR_RULE_UNKNOWN_FIELD', 5, 30, /'name' is not an array/);
    expectProblem(rule('any ancestor (copy_of.path[0] = x)'), 'HADES_ERR_RULE_UNKNOWN_FIELD', 5, 30, /'copy_of.path' is not an array/);
    expectProblem(rule('any ancestor (copy_of[0].name = x)'), 'HADES_ERR_RULE_UNKNOWN_FIELD', 5, 30, /unknown field 'copy_of\[0\].name' of an ancestor/);
    assert.equal(expectProblem(rule('any ancestor (copy_of.nam = x)'), 'HADES_ERR_RULE_UNKNOWN_FIELD', 5, 30, /unknown field 'copy_of.nam' of an ancestor/).suggestion, 'copy_of.name');
    expectProblem(rule('ancestor.copy_of.nam = x'), 'HADES_ERR_RULE_UNKNOWN_FIELD', 5, 16, /did you mean 'ancestor.copy_of.name'/);
    // Outside, the fields are the event's again.
    expectProblem(rule('any ancestor (name = x) and name = y'), 'HADES_ERR_RULE_UNKNOWN_FIELD', 5, 44, /unknown field 'name'/);
    // Types are those of the ancestor's fields.
    expectProblem(rule('any ancestor (name > 3)'), 'HADES_ERR_RULE_TYPE_MISMATCH', 5, 35, /'>' compares numbers, and 'name' is text/);
    expectProblem(rule('any ancestor (pid contains 4)'), 'HADES_ERR_RULE_TYPE_MISMATCH', 5, 34, /applies to text, and 'pid' is a number/);
    expectProblem(rule('any ancestor (args_truncated = maybe)'), 'HADES_ERR_RULE_TYPE_MISMATCH', 5, 47, /true or false/);
  });

  it('refuses a malformed or nested any ancestor (...)', () => {
    expectProblem(rule('any ancestor name = x'), 'HADES_ERR_RULE_SYNTAX', 5, 29, /expected '\(' after 'any ancestor', found 'name'/);
    expectProblem(rule('any ancestors (name = x)'), 'HADES_ERR_RULE_SYNTAX', 5, 20, /expected 'any ancestor \('/);
    expectProblem(rule('"any ancestor (name = x"'), 'HADES_ERR_RULE_SYNTAX', 5, 39, /expected '\)' to close the 'any ancestor \(' of line 5, column 30/);
    expectProblem(rule('any ancestor ()'), 'HADES_ERR_RULE_SYNTAX', 5, 30, /expected a field, a macro or '\(', found '\)'/);
    expectProblem(rule('any ancestor (name = x and any ancestor (pid = 1))'), 'HADES_ERR_RULE_SYNTAX', 5, 43, /cannot be used inside another/);
    // `any` alone is still a name for a macro.
    assert.deepEqual(problemsOf(`macros:\n  any: process.name = x\n${rule('any and process.pid = 1')}`), []);
  });

  it('refuses a macro used inside any ancestor (...) with fields an ancestor lacks, at the use', () => {
    const text = `macros:\n  downloader: process.name = curl\n  nested: "any ancestor (name = x)"\n${rule('any ancestor (pid = 1 and downloader)')}  - id: s\n    title: T\n    severity: low\n    condition: any ancestor (nested)\n  - id: t\n    title: T\n    severity: low\n    condition: downloader\n`;
    const problems = problemsOf(text);
    assert.deepEqual(
      problems.map((p) => [p.code, p.line, p.column, p.rule]),
      [
        ['HADES_ERR_RULE_UNKNOWN_FIELD', 8, 42, 'r'],
        ['HADES_ERR_RULE_SYNTAX', 12, 30, 's'],
      ],
      problems.map(formatProblem).join('; '),
    );
    assert.match(problems[0]!.message, /macro 'downloader' cannot be used inside 'any ancestor \(\.\.\.\)': unknown field 'process.name' of an ancestor.*did you mean 'name'/);
    assert.match(problems[1]!.message, /macro 'nested' cannot be used inside 'any ancestor \(\.\.\.\)': 'any ancestor \(\.\.\.\)' cannot be used inside another/);
  });

  it('refuses operators that do not fit the field type', () => {
    expectProblem(rule('process.name > 3'), 'HADES_ERR_RULE_TYPE_MISMATCH', 5, 29, /compares numbers, and 'process.name' is text/);
    expectProblem(rule('process.pid contains 4'), 'HADES_ERR_RULE_TYPE_MISMATCH', 5, 28, /applies to text, and 'process.pid' is a number/);
    expectProblem(rule('process.pid icontains 4'), 'HADES_ERR_RULE_TYPE_MISMATCH', 5, 28);
    expectProblem(rule('process.pid i= 4'), 'HADES_ERR_RULE_TYPE_MISMATCH', 5, 28, /case-insensitive/);
    expectProblem(rule('process.pid = abc'), 'HADES_ERR_RULE_TYPE_MISMATCH', 5, 30, /'abc' is not/);
    expectProblem(rule('process.interactive = yes'), 'HADES_ERR_RULE_TYPE_MISMATCH', 5, 38, /true or false/);
    // Names every object inherits are no truth values (the rule would load and never match).
    expectProblem(rule('process.interactive = constructor'), 'HADES_ERR_RULE_TYPE_MISMATCH', 5, 38, /true or false/);
    expectProblem(rule('process.interactive != toString'), 'HADES_ERR_RULE_TYPE_MISMATCH', 5, 39, /true or false/);
    expectProblem(rule('process.interactive contains t'), 'HADES_ERR_RULE_TYPE_MISMATCH', 5, 36);
    expectProblem(rule('process.parent = x'), 'HADES_ERR_RULE_TYPE_MISMATCH', 5, 31, /object: compare one of its fields, e.g. 'process.parent.name'/);
    expectProblem(rule('process.name in_cidr 10.0.0.0/8'), 'HADES_ERR_RULE_TYPE_MISMATCH', 5, 29, /address fields/);
    expectProblem(rule('process.pid > (1, 2)'), 'HADES_ERR_RULE_TYPE_MISMATCH', 5, 28, /one number/);
  });

  it('refuses values a field never takes, and malformed values', () => {
    const p = expectProblem(rule('event.action = exek'), 'HADES_ERR_RULE_BAD_VALUE', 5, 31, /'event.action' is never 'exek'; did you mean 'exec'/);
    assert.equal(p.suggestion, 'exec');
    expectProblem(rule('hades.process.stdio.stdin.type in (pipe, tty, sockett)'), 'HADES_ERR_RULE_BAD_VALUE', 5, 62, /did you mean 'socket'/);
    expectProblem(rule('destination.ip in_cidr 10.0.0.0/33'), 'HADES_ERR_RULE_BAD_VALUE', 5, 39, /not an address/);
    expectProblem(rule('process.name glob "[abc"'), 'HADES_ERR_RULE_BAD_VALUE', 5, 34, /no closing/);
    expectProblem(rule('process.name matches "a(b"'), 'HADES_ERR_RULE_BAD_VALUE', 5, 37, /not valid/);
  });

  it('refuses regular expressions that need backtracking or are too large', () => {
    expectProblem(rule(String.raw`process.name matches "(a)\\1"`), 'HADES_ERR_RULE_REGEX_TOO_EXPENSIVE', 5, 37, /back-reference/);
    expectProblem(rule('process.name matches "a(?=b)"'), 'HADES_ERR_RULE_REGEX_TOO_EXPENSIVE', 5, 37, /look-around/);
    expectProblem(rule('process.name matches "a(?<!b)"'), 'HADES_ERR_RULE_REGEX_TOO_EXPENSIVE', 5, 37, /look-around/);
    expectProblem(rule(String.raw`process.name matches "(?P<x>a)\\k<x>"`), 'HADES_ERR_RULE_REGEX_TOO_EXPENSIVE', 5, 37, /back-reference/);
    // What only looks like them is text to RE2: an escaped parenthesis, a class, a quoted stretch, an escaped backslash.
    for (const pattern of [String.raw`eval\\(?=1`, '[(?!]+x', String.raw`\\Q(?=\\E`, String.raw`a\\\\1`, '[]\\\\(?=]']) {
      assert.deepEqual(problemsOf(rule(`process.name matches "${pattern}"`, '    samples: {match: [], no_match: [{event: {action: exec}, process: {name: x}}]}\n')).map((p) => p.message), [], pattern);
    }
    const { ruleSet: paren } = loadRules([{ name: 'f.yaml', text: rule(String.raw`process.command_line matches "eval\\(?=1"`) }]);
    assert.equal(paren.match({ ...exampleEvent('exec'), process: { pid: 1, entity_id: 'x', command_line: 'x eval=1' } }).length, 1, '`\\(?` is an optional parenthesis');
    expectProblem(rule('process.name matches "a{5000}"'), 'HADES_ERR_RULE_REGEX_TOO_EXPENSIVE', 5, 37, /repeat/);
    expectProblem(rule('process.name matches "[a-z]{1000}[0-9]{1000}[A-Z]{1000}[a-f]{1000}x{1000}"'), 'HADES_ERR_RULE_REGEX_TOO_EXPENSIVE', 5, 37, /instructions/);
    // (a+)+b is catastrophic for a backtracking engine; here it loads and runs in linear time.
    const { ruleSet, problems } = loadRules([{ name: 'f.yaml', text: rule('process.command_line matches "^(a+)+b"') }]);
    assert.deepEqual(problems, []);
    const event = { ...exampleEvent('exec'), process: { pid: 1, entity_id: 'x', command_line: `${'a'.repeat(50_000)}c` } };
    assert.equal(ruleSet.match(event).length, 0);
    const took = fastestMs(() => ruleSet.match(event));
    assert.ok(took < 500, `linear-time matching: ${took} ms`);
  });

  it('refuses unknown macros and lists with suggestions, and macro loops', () => {
    expectProblem(`macros:\n  shell_procs: process.name = sh\n${rule('shell_proc')}`, 'HADES_ERR_RULE_UNKNOWN_MACRO', 7, 16, /did you mean 'shell_procs'/);
    expectProblem(`lists:\n  shells: [sh]\n${rule('process.name in shell')}`, 'HADES_ERR_RULE_UNKNOWN_LIST', 7, 32, /did you mean 'shells'/);
    expectProblem(`macros:\n  a: b and process.name = x\n  b: a\n${rule('a')}`, 'HADES_ERR_RULE_CYCLE', 3, 6, /a -> b -> a/);
  });

  it('reports a broken macro once, and every rule that uses it', () => {
    const text = `macros:\n  bad: process.nmae = x\nrules:\n  - id: r1\n    title: T\n    severity: low\n    condition: bad\n  - id: r2\n    title: T\n    severity: low\n    condition: process.pid = 1 and bad\n`;
    const problems = problemsOf(text);
    assert.deepEqual(
      problems.map((p) => [p.code, p.line, p.rule]),
      [
        ['HADES_ERR_RULE_UNKNOWN_FIELD', 2, 'bad'],
        ['HADES_ERR_RULE_UNKNOWN_FIELD', 7, 'r1'],
        ['HADES_ERR_RULE_UNKNOWN_FIELD', 11, 'r2'],
      ],
    );
    assert.match(problems[1]!.message, /macro 'bad' cannot be used/);
  });

  it('checks exceptions and output templates', () => {
    expectProblem(rule('process.name = x', '    exceptions:\n      - field: process.nmae\n        values: [a]\n'), 'HADES_ERR_RULE_UNKNOWN_FIELD', 7, 16, /did you mean 'process.name'/);
    expectProblem(rule('process.name = x', '    exceptions:\n      - field: process.name\n        operator: like\n        values: [a]\n'), 'HADES_ERR_RULE_BAD_OPERATOR', 8, 19, /did you mean 'glob'/);
    expectProblem(rule('process.name = x', '    exceptions:\n      - field: process.name\n        operator: exists\n        values: [a]\n'), 'HADES_ERR_RULE_BAD_OPERATOR', 8, 19, /'exists' takes no value, .*'and not FIELD exists'/);
    expectProblem(rule('process.name = x', '    exceptions:\n      - fields: [process.name, process.pid]\n        values: [[a]]\n'), 'HADES_ERR_RULE_INVALID', 8, 18, /one per field/);
    expectProblem(rule('process.name = x', '    exceptions:\n      - fields: [process.name, process.pid]\n        values: [[a, b]]\n'), 'HADES_ERR_RULE_TYPE_MISMATCH', 8, 22, /'b' is not/);
    expectProblem(rule('process.name = x', '    output: "by {process.nam}"\n'), 'HADES_ERR_RULE_UNKNOWN_FIELD', 6, 18, /output template: unknown field 'process.nam'/);
    expectProblem(rule('process.name = x', '    output: "a { b"\n'), 'HADES_ERR_RULE_SYNTAX', 6, 16, /without '}'/);
  });

  it('refuses overrides and steps that name unknown rules', () => {
    expectProblem(rule('process.name = x', '  - override: q\n    replace:\n      enabled: false\n'), 'HADES_ERR_RULE_UNKNOWN_RULE', 6, 15, /override of unknown rule 'q'; did you mean 'r'/);
    expectProblem(
      'rules:\n  - id: s\n    type: sequence\n    title: T\n    severity: low\n    within: 1m\n    steps:\n      - rule: nope\n      - condition: process.name = x\n',
      'HADES_ERR_RULE_UNKNOWN_RULE',
      8,
      15,
      /unknown rule 'nope'/,
    );
  });

  it('refuses correlation rules that use each other in a loop', () => {
    const seq = (id: string, other: string) =>
      `  - id: ${id}\n    type: sequence\n    title: T\n    severity: low\n    within: 1m\n    steps:\n      - rule: ${other}\n      - condition: process.name = x\n`;
    const problems = problemsOf(`rules:\n${seq('a', 'b')}${seq('b', 'a')}`);
    assert.ok(problems.some((p) => p.code === 'HADES_ERR_RULE_CYCLE' && /a -> b -> a|b -> a -> b/.test(p.message)), problems.map(formatProblem).join('; '));
  });

  it('refuses bad correlation settings', () => {
    const threshold = (extra: string) => `rules:\n  - id: t\n    type: threshold\n    title: T\n    severity: low\n    count: 3\n${extra}`;
    expectProblem(threshold('    condition: process.name = x\n    within: 10 minutes\n'), 'HADES_ERR_RULE_INVALID', 8, 13, /a duration such as/);
    expectProblem(threshold('    within: 1m\n'), 'HADES_ERR_RULE_INVALID', 2, 5, /either 'condition' or a rule reference/);
    expectProblem(threshold('    condition: process.name = x\n    within: 1m\n    by: process.nam\n'), 'HADES_ERR_RULE_UNKNOWN_FIELD', 9, 9, /did you mean 'process.name'/);
    expectProblem(threshold('    condition: process.name = x\n    within: 1m\n    by: process.args\n'), 'HADES_ERR_RULE_TYPE_MISMATCH', 9, 9, /several values/);
    expectProblem(threshold('    condition: process.name = x\n    within: 1m\n    by: process.tree\n'), 'HADES_ERR_RULE_INVALID', 9, 9, /ordered sequence/);
  });
});

describe('rule compiler: warnings', () => {
  it('warns about unused macros and lists, and still loads', () => {
    const text = `lists:\n  unused_list: [a]\nmacros:\n  unused_macro: process.name = x\n${rule('process.name = y')}`;
    expectProblem(text, 'HADES_ERR_RULE_UNUSED_MACRO', 4, 3, /'unused_macro' is not used/, 'warning');
    expectProblem(text, 'HADES_ERR_RULE_UNUSED_LIST', 2, 3, /'unused_list' is not used/, 'warning');
    assert.equal(loadRules([{ name: 'f.yaml', text }]).ruleSet.rules.length, 1);
  });

  it('warns about a macro that only an unused macro uses, whatever the order of definition', () => {
    for (const macros of ['  m1: m2 and process.name = a\n  m2: process.name = b\n', '  m2: process.name = b\n  m1: m2 and process.name = a\n']) {
      const problems = problemsOf(`macros:\n${macros}${rule('process.name = y')}`);
      const unused = problems.filter((p) => p.code === 'HADES_ERR_RULE_UNUSED_MACRO').map((p) => p.rule).sort();
      assert.deepEqual(unused, ['m1', 'm2'], macros);
    }
  });

  it('does not call unused the macros and lists of a condition that failed before reaching them', () => {
    // The condition stops at its unknown field: m, m's own macro and the lists are never
    // resolved, yet the rule uses them; "not used by any rule" would have them deleted.
    const text = `lists:\n  l1: [a]\n  l2: [b]\nmacros:\n  m: inner and process.name in l2\n  inner: host.name = h\n  lonely: process.name = z\n${rule('process.nme = y and m and process.name in (l1, c)')}`;
    const problems = problemsOf(text);
    assert.deepEqual(
      problems.map((p) => `${p.code} ${p.rule ?? ''}`).sort(),
      ['HADES_ERR_RULE_UNKNOWN_FIELD r', 'HADES_ERR_RULE_UNUSED_MACRO lonely'],
      problems.map(formatProblem).join('\n'),
    );
    // The same in a sequence's step, and through a broken macro.
    const seq = `macros:\n  broken: process.nme = x and helper\n  helper: host.name = h\nrules:\n  - id: s\n    type: sequence\n    title: T\n    severity: low\n    within: 1m\n    steps:\n      - condition: broken\n      - condition: process.name = y\n`;
    assert.deepEqual(problemsOf(seq).filter((p) => p.code.startsWith('HADES_ERR_RULE_UNUSED')), []);
  });

  it('warns when a list name is compared as text by an operator that takes one value', () => {
    const lists = 'lists:\n  tools: [curl, wget]\n';
    const p = expectProblem(`${lists}${rule('process.name = tools')}`, 'HADES_ERR_RULE_LIST_AS_VALUE', 7, 31, /'tools' is compared as the text 'tools'.*'process.name in tools'/, 'warning');
    assert.equal(p.file, 'f.yaml');
    expectProblem(`${lists}${rule('process.name i!= tools')}`, 'HADES_ERR_RULE_LIST_AS_VALUE', 7, 33, /'not process.name iin tools'/, 'warning');
    expectProblem(`${lists}${rule('process.command_line contains tools')}`, 'HADES_ERR_RULE_LIST_AS_VALUE', 7, 46, /'process.command_line contains \(tools\)'/, 'warning');
    // Still loaded, and compared as the text it is.
    const { ruleSet } = loadRules([{ name: 'f.yaml', text: `${lists}${rule('process.name = tools')}` }]);
    assert.deepEqual(ruleSet.match({ ...exampleEvent('exec'), process: { pid: 1, entity_id: 'x', name: 'tools' } }).map((m) => m.rule.id), ['r']);
    // Quoted, in a list, or after in: what was meant, no warning.
    for (const condition of ['process.name = "tools"', 'process.name in tools', 'process.name = (tools)', 'process.name = (other, "tools")']) {
      assert.deepEqual(problemsOf(`${lists}${rule(condition)}`).filter((x) => x.code === 'HADES_ERR_RULE_LIST_AS_VALUE'), [], condition);
    }
    // A list that only a later folder defines cannot be what the rule meant.
    const later = loadRules([{ name: 'pack/a.yaml', text: rule('process.name = tools') }, { name: 'site/b.yaml', text: `${lists}macros:\n  m: process.name in tools\n` }]).problems;
    assert.deepEqual(later.filter((x) => x.code === 'HADES_ERR_RULE_LIST_AS_VALUE'), []);
  });

  it('still checks an unused macro', () => {
    expectProblem('macros:\n  m: process.nmae = x\n', 'HADES_ERR_RULE_UNKNOWN_FIELD', 2, 6);
    // Written for any ancestor (...): its fields are an ancestor's, and only its non-use is reported.
    assert.deepEqual(problemsOf('macros:\n  m: name = x and args[1] = y\n').map((p) => p.code), ['HADES_ERR_RULE_UNUSED_MACRO']);
    expectProblem('macros:\n  m: name = x and nmae = y\n', 'HADES_ERR_RULE_UNKNOWN_FIELD', 2, 6, /unknown field 'name'/);
  });

  it('warns about a condition no event can satisfy', () => {
    expectProblem(rule('event.action = exec and destination.port = 22'), 'HADES_ERR_RULE_NEVER_MATCHES', 5, 16, /can match no event/, 'warning');
    // Agent health events carry no ancestors.
    expectProblem(rule('event.action = agent_health and any ancestor (name = x)'), 'HADES_ERR_RULE_NEVER_MATCHES', 5, 16, /can match no event/, 'warning');
    expectProblem(rule('any ancestor (name = x and args exists and process.name = y)'), 'HADES_ERR_RULE_UNKNOWN_FIELD', 5, 59);
  });
});

describe('rule loader: isolation', () => {
  it('loads the good files and rules around a bad one', () => {
    const { ruleSet, problems } = loadRules([
      { name: 'base.yaml', text: 'macros:\n  shell: process.name in (sh, bash)\nrules:\n  - id: a\n    title: A\n    severity: low\n    condition: shell\n' },
      { name: 'broken.yaml', text: 'rules:\n  - id: b\n    title: [unclosed\n' },
      {
        name: 'local.yaml',
        text: 'rules:\n  - id: c\n    title: C\n    severity: low\n    condition: shell and process.user.name = root\n  - id: d\n    title: D\n    severity: low\n    condition: process.nam = x\n  - id: e\n    title: E\n    severity: high\n    condition: event.action = connect\n',
      },
    ]);
    assert.deepEqual(
      ruleSet.rules.map((r) => r.id),
      ['a', 'c', 'e'],
    );
    assert.deepEqual(
      problems.map((p) => [p.file, p.code]),
      [
        ['broken.yaml', 'HADES_ERR_RULE_YAML'],
        ['local.yaml', 'HADES_ERR_RULE_UNKNOWN_FIELD'],
      ],
    );
  });

  it('turns problems into one coded HadesError for callers that must refuse them', () => {
    const { problems } = loadRules([{ name: 'f.yaml', text: rule('process.nme = x') }]);
    const error = rulesError(problems);
    assert.ok(error instanceof HadesError);
    assert.equal(error.code, 'HADES_ERR_RULE_UNKNOWN_FIELD');
    assert.match(error.message, /f\.yaml:5:16/);
  });
});

describe('rule loader: hostile input', () => {
  it('answers random conditions and files with problems, never an exception', () => {
    let seed = 11;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const pieces = ['process.name', 'ancestor.args', 'process.pid', '=', '!=', 'i=', '<', 'in', 'contains', 'matches', 'glob', 'in_cidr', 'exists', 'and', 'or', 'not', '(', ')', ',', '"x', "'y'", '"(a+)+"', '10.0.0.0/8', '42', '-e', 'm', 'l', '[', '{', '}', '\\', '#', ':'];
    for (let i = 0; i < 400; i++) {
      let condition = '';
      for (let k = random(12); k >= 0; k--) condition += `${pieces[random(pieces.length)]} `;
      const text = `lists:\n  l: [a, 1]\nmacros:\n  m: process.name = sh\nrules:\n  - id: r\n    title: T\n    severity: low\n    condition: ${JSON.stringify(condition)}\n`;
      const { problems } = loadRules([{ name: 'f.yaml', text }]);
      for (const p of problems) assert.notEqual(p.code, 'HADES_ERR_INTERNAL', `${condition}: ${p.message}`);
    }
    for (let i = 0; i < 200; i++) {
      let text = '';
      for (let k = random(40); k >= 0; k--) text += 'rules:\n  - id: x\n    {}[]:,-|>&*!%@`"\'#\n'[random(38)];
      assert.doesNotThrow(() => loadRules([{ name: 'f.yaml', text }]));
    }
  });

  it('refuses a very long chain of macros as too complex, never overflowing the stack', () => {
    const macros = Array.from({ length: 1000 }, (_, i) => `  m${i}: ${i === 999 ? 'process.name = sh' : `m${i + 1}`}\n`).join('');
    const { problems } = loadRules([{ name: 'f.yaml', text: `macros:\n${macros}${rule('m0')}` }]);
    assert.ok(problems.every((p) => p.code !== 'HADES_ERR_INTERNAL'));
    const p = problems.find((x) => x.rule === 'r');
    assert.deepEqual([p?.code, p?.line, p?.column], ['HADES_ERR_RULE_TOO_COMPLEX', 1006, 16]);
  });

  it('refuses a rule file nested too deep to parse safely, before parsing it, and loads the other files', () => {
    const { ruleSet, problems } = loadRules([
      { name: 'deep.yaml', text: `rules:\n  - id: deep\n    tags: ${'['.repeat(20_000)}${']'.repeat(20_000)}\n` },
      { name: 'ok.yaml', text: rule('process.name = sh') },
    ]);
    const p = problems.find((x) => x.file === 'deep.yaml');
    assert.deepEqual([p?.code, p?.line], ['HADES_ERR_RULE_YAML', 3]);
    assert.match(p?.message ?? '', /nests more than 256 levels deep/);
    assert.deepEqual(ruleSet.rules.map((r) => r.id), ['r']);
  });
});

describe('rule compiler: every independent error of a rule in one run', () => {
  /** `file:line:column code` of each problem, in file order. */
  const where = (problems: readonly RuleProblem[]) => problems.map((p) => `${p.line}:${p.column} ${p.code}`);

  it('reports a bad severity, a condition syntax error and an output typo together', () => {
    const text = 'rules:\n  - id: r\n    title: T\n    severity: hgih\n    condition: (process.name = x\n    output: "run {process.nmae}"\n';
    const { ruleSet, problems, counts } = loadRules([{ name: 'f.yaml', text }]);
    assert.deepEqual(where(problems), ['4:15 HADES_ERR_RULE_INVALID', '5:33 HADES_ERR_RULE_SYNTAX', '6:19 HADES_ERR_RULE_UNKNOWN_FIELD'], problems.map(formatProblem).join('\n'));
    assert.ok(problems.every((p) => p.file === 'f.yaml' && p.rule === 'r' && p.severity === 'error'));
    assert.deepEqual(ruleSet.rules, []);
    assert.deepEqual(counts, { rules: 1, errors: 3, warnings: 0 });
  });

  it('reports bad tags, each exception, each output and dedup_by field, an override and invalid samples of a rule that does not load', () => {
    const text = [
      'rules:',
      '  - id: r',
      '    title: T',
      '    severity: low',
      '    tags: [attack.execusion]',
      '    condition: process.nme = x',
      '    exceptions:',
      '      - {field: process.name, operator: like, values: [a]}',
      '      - {field: process.nam, values: [b]}',
      '      - {field: process.name, values: [c]}',
      '    dedup_by: [process.nme]',
      '    samples:',
      '      match:',
      '        - {event: {action: exec}, process: {nme: x}}',
      '  - override: r',
      '    append:',
      '      output: "{oops"',
      '',
    ].join('\n');
    const { problems } = loadRules([{ name: 'f.yaml', text }]);
    assert.deepEqual(
      where(problems),
      [
        '5:12 HADES_ERR_RULE_INVALID',
        '6:16 HADES_ERR_RULE_UNKNOWN_FIELD',
        '8:41 HADES_ERR_RULE_BAD_OPERATOR',
        '9:17 HADES_ERR_RULE_UNKNOWN_FIELD',
        '11:16 HADES_ERR_RULE_UNKNOWN_FIELD',
        '17:16 HADES_ERR_RULE_SYNTAX',
      ],
      problems.map(formatProblem).join('\n'),
    );
    // The sample events of a rule that did not load are still checked (runSamples).
    const loaded = loadRules([{ name: 'f.yaml', text }]);
    const report = runSamples(loaded.ruleSet, loaded.samples);
    assert.deepEqual(where(report.problems), ['14:45 HADES_ERR_RULE_SAMPLE_INVALID']);
    assert.equal(report.rules[0]?.status, 'not_loaded');
  });

  it('reports a duplicate id and the duplicate rule\'s own errors, samples included, and keeps the first', () => {
    const text =
      rule('process.name = x') +
      '  - id: r\n    title: U\n    severity: lo\n    condition: process.nme = y\n    samples:\n      match:\n        - {event: {action: exec}, process: {nme: y}}\n';
    const { ruleSet, problems, counts } = loadRules([{ name: 'f.yaml', text }]);
    assert.deepEqual(
      where(problems),
      ['6:5 HADES_ERR_RULE_DUPLICATE_ID', '8:15 HADES_ERR_RULE_INVALID', '9:16 HADES_ERR_RULE_UNKNOWN_FIELD', '12:45 HADES_ERR_RULE_SAMPLE_INVALID'],
      problems.map(formatProblem).join('\n'),
    );
    assert.deepEqual(
      ruleSet.rules.map((r) => [r.id, r.title]),
      [['r', 'T']],
    );
    // Rules as written: the duplicate counts; overrides do not.
    assert.equal(counts.rules, 2);
  });

  it('checks the parts of an override with a schema problem against its rule, without applying it', () => {
    const text = [
      'rules:',
      '  - id: r',
      '    title: T',
      '    severity: low',
      '    condition: event.action = exec and process.name = x',
      '    exceptions:',
      '      - {name: pids, field: process.pid, values: [1]}',
      '  - override: r',
      '    append:',
      '      conditon: process.name = y',
      '      condition: process.nme = y',
      '      output: "{process.nmae}"',
      '      tags: [attack.executon]',
      '      exceptions:',
      '        - {name: pids, values: [abc]}',
      '        - {field: process.nam, values: [b]}',
      '        - {field: 3, values: [b]}',
      '    replace:',
      '      severity: urgent',
      '      dedup_by: [process.nme]',
      '      within: 5m',
      '',
    ].join('\n');
    const { ruleSet, problems } = loadRules([{ name: 'f.yaml', text }]);
    assert.deepEqual(
      where(problems),
      [
        '10:7 HADES_ERR_RULE_INVALID',
        '11:18 HADES_ERR_RULE_UNKNOWN_FIELD',
        '12:17 HADES_ERR_RULE_UNKNOWN_FIELD',
        '13:14 HADES_ERR_RULE_INVALID',
        // Joins the named exception: checked in its shape (process.pid is a number), at its own place.
        '15:33 HADES_ERR_RULE_TYPE_MISMATCH',
        '16:19 HADES_ERR_RULE_UNKNOWN_FIELD',
        '17:19 HADES_ERR_RULE_INVALID',
        '19:7 HADES_ERR_RULE_INVALID',
        '19:17 HADES_ERR_RULE_INVALID',
        '20:18 HADES_ERR_RULE_UNKNOWN_FIELD',
      ],
      problems.map(formatProblem).join('\n'),
    );
    assert.ok(problems.every((p) => p.rule === 'r'));
    // Not applied: the rule loads as written.
    assert.deepEqual(
      ruleSet.rules.map((r) => [r.id, r.severity, r.tags, r.dedupBy]),
      [['r', 'low', [], undefined]],
    );
  });

  it('checks an override with a bad name for nothing more, and one of an unknown rule as unknown', () => {
    const base = rule('process.name = x');
    const named = (name: string) => loadRules([{ name: 'f.yaml', text: `${base}  - override: ${name}\n    append:\n      condition: process.nme = y\n      oops: 1\n` }]).problems;
    assert.deepEqual(where(named('"bad name"')), ['6:15 HADES_ERR_RULE_INVALID', '9:7 HADES_ERR_RULE_INVALID']);
    assert.deepEqual(where(named('rr')), ['6:15 HADES_ERR_RULE_UNKNOWN_RULE', '9:7 HADES_ERR_RULE_INVALID']);
  });

  it('reports a bad value an override appends to a named exception at the override, in its file', () => {
    const { problems } = loadRules([
      { name: 'a.yaml', text: rule('event.action = exec', '    exceptions:\n      - {name: pids, field: process.pid, values: [1]}\n') },
      { name: 'f.yaml', text: 'rules:\n  - override: r\n    append:\n      exceptions:\n        - {name: pids, values: [2, abc]}\n' },
    ]);
    assert.deepEqual(
      problems.map((p) => `${p.file}:${p.line}:${p.column} ${p.code} ${p.rule}`),
      ['f.yaml:5:36 HADES_ERR_RULE_TYPE_MISMATCH r'],
    );
  });

  it("reports a duplicate macro's own errors, and lets it use nothing", () => {
    const { problems } = loadRules([
      { name: 'a.yaml', text: 'macros:\n  m: process.name = a\nrules:\n  - id: r\n    title: T\n    severity: low\n    condition: m\n' },
      { name: 'f.yaml', text: 'macros:\n  m: process.nme = b and n\n  n: process.name = c\n  k: (process.name = d\n' },
      { name: 'g.yaml', text: 'macros:\n  k: process.name = (e\n  m: parent_name = sh\n' },
    ]);
    assert.deepEqual(
      problems.map((p) => `${p.file}:${p.line}:${p.column} ${p.code}`),
      [
        'f.yaml:2:3 HADES_ERR_RULE_DUPLICATE_ID',
        'f.yaml:2:6 HADES_ERR_RULE_UNKNOWN_FIELD',
        // Used by the duplicate only: unused.
        'f.yaml:3:3 HADES_ERR_RULE_UNUSED_MACRO',
        'f.yaml:4:3 HADES_ERR_RULE_UNUSED_MACRO',
        'f.yaml:4:23 HADES_ERR_RULE_SYNTAX',
        'g.yaml:2:3 HADES_ERR_RULE_DUPLICATE_ID',
        'g.yaml:2:23 HADES_ERR_RULE_SYNTAX',
        'g.yaml:3:3 HADES_ERR_RULE_DUPLICATE_ID',
        'g.yaml:3:6 HADES_ERR_RULE_UNKNOWN_FIELD',
      ],
      problems.map(formatProblem).join('\n'),
    );
  });

  it('reports the independent errors of a correlation rule together', () => {
    const text = [
      'rules:',
      '  - id: s',
      '    type: sequence',
      '    title: T',
      '    severity: low',
      '    within: 5x',
      '    by: host.nme',
      '    steps:',
      '      - condition: process.name = (x',
      '      - condition: process.nme = y',
      '    output: "{correlation.cnt}"',
      '',
    ].join('\n');
    const { problems } = loadRules([{ name: 'f.yaml', text }]);
    assert.deepEqual(
      where(problems),
      ['6:13 HADES_ERR_RULE_INVALID', '7:9 HADES_ERR_RULE_UNKNOWN_FIELD', '9:37 HADES_ERR_RULE_SYNTAX', '10:20 HADES_ERR_RULE_UNKNOWN_FIELD', '11:15 HADES_ERR_RULE_UNKNOWN_FIELD'],
      problems.map(formatProblem).join('\n'),
    );
  });

  it('still loads the good rules around rules with several errors', () => {
    const text = rule('process.name = (x', '    severity: bad\n').replace('    severity: low\n', '') + '  - id: good\n    title: G\n    severity: low\n    condition: process.name = sh\n';
    const { ruleSet, problems } = loadRules([{ name: 'f.yaml', text }]);
    assert.ok(problems.length >= 2, problems.map(formatProblem).join('\n'));
    assert.deepEqual(
      ruleSet.rules.map((r) => r.id),
      ['good'],
    );
  });

  it('lists at most MAX_PROBLEMS problems, errors first, then one line that counts the others', () => {
    const broken = Array.from({ length: 600 }, (_, i) => `  - id: r${i}\n    title: T\n    severity: hgih\n    condition: process.nme = x\n`).join('');
    const { problems, counts } = loadRules([{ name: 'f.yaml', text: `macros:\n  unused: process.name = x\nrules:\n${broken}` }]);
    assert.deepEqual(counts, { rules: 600, errors: 1200, warnings: 1 });
    assert.equal(problems.length, MAX_PROBLEMS + 1);
    assert.ok(problems.slice(0, MAX_PROBLEMS).every((p) => p.severity === 'error'));
    const last = problems.at(-1)!;
    assert.deepEqual([last.code, last.severity], ['HADES_ERR_RULE_TOO_MANY_PROBLEMS', 'error']);
    assert.match(last.message, /^201 more problems \(200 errors, 1 warnings\) are not listed/);
    assert.deepEqual(capProblems(problems.slice(0, 3), 3), problems.slice(0, 3));
  });
});
