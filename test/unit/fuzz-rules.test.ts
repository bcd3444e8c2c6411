/**
 * Property-based fuzzing of the rule loader and compiler (src/rules: loadRules) and of the Sigma
 * importer (src/rules/sigma: convertSigma), with fast-check (test/helpers/fuzz.ts). Any rule file
 * or Sigma file, arbitrary or a mutation of a rule of the pack or of a Sigma rule of
 * third_party/sigma, loads, or is reported with problems whose codes are catalogued; never an
 * exception, in bounded time. What loads matches arbitrary events without throwing.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parse, stringify } from 'yaml';
import { exampleEvent, eventActions } from '../../src/common/events/index.js';
import { formatProblem, loadRules, rulesError, type RuleFile } from '../../src/rules/index.js';
import { convertSigma, type SigmaFile } from '../../src/rules/sigma/index.js';
import { assertInputCode, codedOutcome, fuzzParams, mutatedText, mutatedTree, textLike, withDuplicatedLine, wrongValue, type Json } from '../helpers/fuzz.js';
import { projectRoot } from '../helpers/generated-docs.js';

// --- Seeds: rules of the pack, each in a file with the macros and lists it uses ---------------

const packDocs = readdirSync(path.join(projectRoot, 'rules'))
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => parse(readFileSync(path.join(projectRoot, 'rules', f), 'utf8')) as { lists?: Record<string, Json>; macros?: Record<string, Json>; rules?: Record<string, Json>[] });
const packLists: Record<string, Json> = Object.assign({}, ...packDocs.map((d) => d.lists ?? {}));
const packMacros: Record<string, Json> = Object.assign({}, ...packDocs.map((d) => d.macros ?? {}));
const packRules = packDocs.flatMap((d) => d.rules ?? []);

/** Rules of each kind (a plain rule, dedup_by, a sequence, a threshold, exceptions) that load quickly. */
const SEED_RULES = ['exec_from_dev_shm', 'tmp_script_written_then_run', 'awk_reverse_shell', 'ptrace_code_injection', 'dns_oast_domain', 'kernel_module_loaded', 'user_account_created', 'reconnaissance_burst', 'shadow_read_by_unexpected_program', 'sensor_gap'];

/** A rule file holding `rule` and the macros and lists it names (transitively). */
function seedFile(rule: Record<string, Json>): Json {
  const words = (x: unknown) => new Set(JSON.stringify(x).match(/[A-Za-z_][A-Za-z0-9_]*/g));
  let text = JSON.stringify(rule);
  const macros: Record<string, Json> = {};
  const lists: Record<string, Json> = {};
  for (let changed = true; changed; ) {
    changed = false;
    const w = words(text);
    for (const [name, body] of Object.entries(packMacros)) {
      if (w.has(name) && macros[name] === undefined) {
        macros[name] = body;
        text += JSON.stringify(body);
        changed = true;
      }
    }
    for (const [name, items] of Object.entries(packLists)) if (w.has(name)) lists[name] = items;
  }
  return { ...(Object.keys(lists).length > 0 ? { lists } : {}), ...(Object.keys(macros).length > 0 ? { macros } : {}), rules: [rule] };
}

const seeds: Json[] = SEED_RULES.map((id) => {
  const rule = packRules.find((r) => r['id'] === id);
  assert.ok(rule, `the pack has ${id}`);
  return seedFile(rule);
});
const seedTexts = seeds.map((s) => stringify(s));

/** Events to match loaded rules against: the schema's examples of every action. */
const events = eventActions.map((a) => exampleEvent(a));

/** loadRules must return problems with catalogued codes, and a rule set that matches without throwing. */
function checkRules(files: RuleFile[], extraEvent?: Record<string, unknown>): void {
  const outcome = codedOutcome(() => loadRules(files), 3000, 'loadRules');
  assert.ok('value' in outcome, 'loadRules reports problems, it does not throw');
  const { ruleSet, problems, counts } = outcome.value;
  for (const p of problems) {
    assertInputCode(p.code, `rule problem (${p.message.slice(0, 120)})`);
    assert.ok(p.severity === 'error' || p.severity === 'warning');
    formatProblem(p);
  }
  if (counts.errors > 0) assert.equal(rulesError(problems).code.startsWith('HADES_ERR_'), true);
  const start = performance.now();
  for (const event of extraEvent ? [...events, extraEvent] : events) {
    codedOutcome(() => ruleSet.match(event), 1000, 'RuleSet.match');
  }
  assert.ok(performance.now() - start < 3000, 'matching the examples takes bounded time');
}

/** Conditions made of the language's pieces: fields, operators, values, lists, macros, parentheses. */
const conditionToken = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('event.action', 'process.name', 'process.args', 'process.command_line', 'process.parent.name', 'user.id', 'destination.port', 'hades.ancestry', 'file.path', 'dns.question.name', 'process.tree', 'nonexistent.field') },
  { weight: 4, arbitrary: fc.constantFrom('=', '!=', '<', '<=', '>', '>=', 'in', 'contains', 'icontains', 'startswith', 'endswith', 'matches', 'glob', 'cidr', 'exists', 'and', 'or', 'not') },
  { weight: 3, arbitrary: fc.constantFrom('exec', 'connect', '(', ')', '((', '))', ',', '"', "'", '"\\.ko$"', '"(a+)+$"', '"[z-a]"', '"\\\\"', '0', '-1', '99999999999999999999', '10.0.0.0/8', '::/0', '300.1.1.1/99', 'unusual_module_dirs', 'kmod_tools', '*', '?', '{', '}', '$', '%') },
  { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
);
const condition = fc.array(conditionToken, { minLength: 1, maxLength: 24 }).map((ts) => ts.join(' '));

describe('fuzz: rule files', () => {
  it('the seed files load without errors', () => {
    for (const text of seedTexts) {
      const { problems } = loadRules([{ name: 'seed.yaml', text }]);
      assert.deepEqual(problems.filter((p) => p.severity === 'error').map(formatProblem), []);
    }
  });

  it('arbitrary text: rules, or coded problems', () => {
    fc.assert(
      fc.property(fc.oneof(textLike, fc.string({ maxLength: 200 })), (text) => checkRules([{ name: 'fuzz.yaml', text }])),
      fuzzParams(300),
    );
  });

  it('conditions made of the language\'s tokens in any order', () => {
    fc.assert(
      fc.property(condition, fc.constantFrom<Json>(null, 'process.name', ['process.name', 'user.id']), (cond, dedup) => {
        const rule: Record<string, Json> = { id: 'fuzz_rule', title: 'Fuzz', description: 'A rule made by the fuzzer.', severity: 'low', condition: cond, output: 'out {process.name}' };
        if (dedup !== null) rule['dedup_by'] = dedup;
        checkRules([{ name: 'fuzz.yaml', text: stringify({ lists: { unusual_module_dirs: ['/tmp/'], kmod_tools: ['modprobe'] }, rules: [rule] }) }]);
      }),
      fuzzParams(300),
    );
  });

  it('regression: a list or macro whose name is not a name is refused with its value, not let through unchecked', () => {
    // Found by the fuzzer: the schema checked only the values of names matching the pattern,
    // so `lists: {"": 0}` reached the loader as a list that is a number (TypeError: items.map).
    for (const [text, name] of [
      ['lists: {"": 0}\n', 'lists.'],
      ['lists: {"bad name": 0, a: [x]}\nrules: []\n', 'lists.bad name'],
      ['macros: {"9x": [1]}\n', 'macros.9x'],
    ] as const) {
      const { problems } = loadRules([{ name: 'x.yaml', text }]);
      const problem = problems.find((p) => p.severity === 'error');
      assert.equal(problem?.code, 'HADES_ERR_RULE_INVALID', text);
      assert.match(problem?.message ?? '', new RegExp(`'${name}' is not a valid name`));
    }
    checkRules([{ name: 'x.yaml', text: 'lists: {unusual_module_dirs: 0, "": 0}\n' }]);
  });

  it('tree mutations of rules of the pack: fields removed, duplicated, of the wrong type, nested deep, huge, added', () => {
    fc.assert(
      fc.property(fc.constantFrom(...seeds).chain((s) => mutatedTree(s, 3)), (tree) => checkRules([{ name: 'mutated.yaml', text: stringify(tree, { aliasDuplicateObjects: false }) }])),
      fuzzParams(50),
    );
  });

  it('text mutations of rules of the pack: byte flips, cuts, splices, repeated keys, raw bytes', () => {
    fc.assert(
      fc.property(fc.oneof(fc.constantFrom(...seedTexts).chain((t) => mutatedText(t, 5)), fc.tuple(fc.constantFrom(...seedTexts), fc.nat()).map(([t, pick]) => withDuplicatedLine(t, pick))), (text) =>
        checkRules([{ name: 'mutated.yaml', text }]),
      ),
      fuzzParams(100),
    );
  });

  it('arbitrary events against a loaded rule set: matching never throws', () => {
    const files = seedTexts.map((text, i) => ({ name: `seed${i}.yaml`, text }));
    const { ruleSet } = loadRules(files);
    const event = fc.tuple(fc.constantFrom(...events), fc.array(fc.tuple(fc.constantFrom('process', 'process.args', 'process.name', 'event', 'event.action', 'destination.port', 'user', 'file.path', 'hades', '@timestamp'), wrongValue), { maxLength: 4 })).map(([e, changes]) => {
      const copy = structuredClone(e) as Record<string, any>;
      for (const [where, value] of changes) {
        const parts = where.split('.');
        let node = copy;
        for (const p of parts.slice(0, -1)) node = (node[p] = typeof node[p] === 'object' && node[p] !== null ? node[p] : {});
        node[parts.at(-1)!] = value;
      }
      return copy;
    });
    fc.assert(
      fc.property(event, (e) => {
        codedOutcome(() => ruleSet.match(e), 1000, 'RuleSet.match');
      }),
      fuzzParams(500),
    );
  });
});

// --- Sigma -------------------------------------------------------------------------------------

const sigmaDir = path.join(projectRoot, 'third_party/sigma');
const sigmaFiles: SigmaFile[] = (readdirSync(sigmaDir, { recursive: true }) as string[])
  .filter((f) => f.endsWith('.yml'))
  .sort()
  .filter((_, i) => i % 12 === 0)
  .map((f) => ({ path: f, text: readFileSync(path.join(sigmaDir, f), 'utf8') }));
const correlationSeed = `title: Base
id: 00000000-0000-4000-8000-000000000001
name: recon_whoami
logsource: {product: linux, category: process_creation}
detection: {selection: {Image|endswith: /whoami}, condition: selection}
level: low
---
title: The correlation
id: c0000000-0000-4000-8000-000000000001
correlation:
    type: event_count
    rules: [recon_whoami]
    group-by: [User]
    timespan: 5m
    condition: {gte: 3}
level: high
`;

function checkSigma(files: SigmaFile[]): void {
  const outcome = codedOutcome(() => convertSigma(files), 3000, 'convertSigma');
  assert.ok('value' in outcome, 'convertSigma reports each rule, it does not throw');
  const conversion = outcome.value;
  for (const entry of conversion.report) for (const r of [...entry.reasons, ...entry.notes]) assertInputCode(r.code, `sigma ${entry.file}: ${r.message.slice(0, 120)}`);
  // What `hades rules sigma` does next: the converted rules load.
  const loaded = codedOutcome(() => loadRules(conversion.files), 3000, 'loadRules(sigma)');
  assert.ok('value' in loaded);
  for (const p of loaded.value.problems) assertInputCode(p.code, `converted rule: ${p.message.slice(0, 120)}`);
}

describe('fuzz: Sigma files', () => {
  it('the seed files convert', () => {
    assert.ok(sigmaFiles.length >= 10);
    checkSigma([...sigmaFiles, { path: 'correlation.yml', text: correlationSeed }]);
  });

  it('arbitrary text', () => {
    fc.assert(
      fc.property(fc.oneof(textLike, fc.string({ maxLength: 200 })), (text) => checkSigma([{ path: 'fuzz.yml', text }])),
      fuzzParams(300),
    );
  });

  it('tree mutations of Sigma rules (detection, modifiers, conditions, correlations)', () => {
    const trees = [...sigmaFiles.map((f) => parse(f.text) as Json), ...correlationSeed.split('---\n').map((t) => parse(t) as Json)];
    fc.assert(
      fc.property(fc.constantFrom(...trees).chain((t) => mutatedTree(t, 3)), fc.boolean(), (tree, withBase) =>
        checkSigma([{ path: 'mutated.yml', text: (withBase ? correlationSeed.split('---\n')[0] + '---\n' : '') + stringify(tree, { aliasDuplicateObjects: false }) }]),
      ),
      fuzzParams(60),
    );
  });

  it('text mutations of Sigma rules', () => {
    fc.assert(
      fc.property(fc.oneof(fc.constantFrom(...sigmaFiles.map((f) => f.text), correlationSeed).chain((t) => mutatedText(t, 5)), fc.tuple(fc.constantFrom(correlationSeed, ...sigmaFiles.map((f) => f.text)), fc.nat()).map(([t, pick]) => withDuplicatedLine(t, pick))), (text) =>
        checkSigma([{ path: 'mutated.yml', text }]),
      ),
      fuzzParams(250),
    );
  });

  it('Sigma detection values and conditions made of the language\'s pieces', () => {
    const modifiers = fc.array(fc.constantFrom('contains', 'startswith', 'endswith', 'all', 're', 'cidr', 'base64', 'base64offset', 'windash', 'exists', 'gt', 'lt', 'i', 'm', 's', 'fieldref', 'expand', 'wide', 'utf16le', 'unknown'), { maxLength: 3 });
    const field = fc.constantFrom('Image', 'CommandLine', 'ParentImage', 'User', 'DestinationPort', 'TargetFilename', 'a', '');
    const selection = fc.dictionary(fc.tuple(field, modifiers).map(([f, ms]) => [f, ...ms].join('|')), wrongValue, { maxKeys: 3 });
    const cond = fc.array(fc.constantFrom('selection', 'filter', 'and', 'or', 'not', '1 of', 'all of', 'them', 'selection*', '(', ')', '|', 'count()', '>', '5', 'near'), { minLength: 1, maxLength: 10 }).map((t) => t.join(' '));
    fc.assert(
      fc.property(selection, selection, cond, fc.constantFrom('process_creation', 'network_connection', 'file_event', 'dns_query', 'unknown'), (sel, filter, condition, category) =>
        checkSigma([{ path: 'made.yml', text: stringify({ title: 'Made', id: '00000000-0000-4000-8000-0000000000aa', logsource: { product: 'linux', category }, detection: { selection: sel, filter, condition }, level: 'low' }) }]),
      ),
      fuzzParams(300),
    );
  });
});
