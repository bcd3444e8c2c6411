/**
 * The value index only ever skips rules that cannot match: with the default pack and every Sigma
 * rule of third_party/sigma loaded, the indexed rule set and the one without indexes
 * (`indexByAction: false`) give the same matches, outputs and correlation alerts on a varied
 * stream of events built from the rules' own values. Plus the pieces the index stands on: the
 * literal prefilter of regular expressions and the many-string scanner.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { RE2JS } from 're2js';
import { parse } from 'yaml';
import { checkEvent, eventActions, eventKinds, exampleEvent, type EventAction } from '../../src/common/events/index.js';
import { formatProblem, loadRules, type LoadResult, type Match, type RuleFile, type RuleSet } from '../../src/rules/index.js';
import { NeedleScanner } from '../../src/rules/needles.js';
import { prefiltered } from '../../src/rules/operators.js';
import { compileRegex, type Regex } from '../../src/rules/regex.js';
import { minimumLength, requiredLiterals } from '../../src/rules/regex-prefilter.js';
import { convertSigma } from '../../src/rules/sigma/index.js';
import { readDefaultPack } from '../../src/runtime/rule-pack.js';
import { sigmaFiles } from '../helpers/sigma-files.js';

let seed = 20261128;
function random(n: number): number {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed % n;
}
function pick<T>(items: readonly T[]): T {
  return items[random(items.length)]!;
}

const produced = eventActions.filter((a) => !('planned' in eventKinds[a]));

/** Sets dotted fields of an event (undefined deletes). */
function set(e: Record<string, unknown>, fields: Record<string, unknown>): Record<string, unknown> {
  for (const [dotted, value] of Object.entries(fields)) {
    const keys = dotted.split('.');
    let node = e;
    for (const k of keys.slice(0, -1)) {
      if (typeof node[k] !== 'object' || node[k] === null || Array.isArray(node[k])) node[k] = {};
      node = node[k] as Record<string, unknown>;
    }
    if (value === undefined) delete node[keys.at(-1)!];
    else node[keys.at(-1)!] = value;
  }
  return e;
}

/** The values a rule is written with, and the actions it names. */
interface Group {
  readonly values: readonly string[];
  readonly actions: readonly EventAction[];
}

/**
 * The values each rule is written with: the literals of its conditions, with those of the
 * macros it uses and the items of the lists it names; and the produced actions it names.
 */
function literalGroups(files: readonly RuleFile[]): Group[] {
  const lists = new Map<string, string[]>();
  const macros = new Map<string, string>();
  const conditions: string[] = [];
  for (const f of files) {
    const doc = parse(f.text) as { lists?: Record<string, unknown[]>; macros?: Record<string, string>; rules?: { condition?: string; steps?: { condition?: string }[] }[] } | null;
    for (const [name, items] of Object.entries(doc?.lists ?? {})) lists.set(name, items.map(String));
    for (const [name, condition] of Object.entries(doc?.macros ?? {})) macros.set(name, condition);
    for (const r of doc?.rules ?? []) for (const c of [r.condition, ...(r.steps ?? []).map((st) => st.condition)]) if (typeof c === 'string') conditions.push(c);
  }
  const quoted = /"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'/g;
  return conditions.map((condition) => {
    let text = condition;
    for (let depth = 0; depth < 4; depth++) for (const [name, body] of macros) if (new RegExp(`\\b${name}\\b`).test(text) && !text.includes(body)) text += ` ${body}`;
    const out = new Set<string>();
    for (const m of text.matchAll(quoted)) out.add((m[1] ?? m[2]!).replace(/\\(.)/g, '$1'));
    for (const word of text.replace(quoted, ' ').split(/[\s(),]+/)) {
      const items = lists.get(word);
      if (items) for (const item of items) out.add(item);
      else if (/[/.:-]/.test(word) && !/^[a-z_]+(\.[a-z_\d[\]]+)+$/.test(word)) out.add(word);
    }
    const actions = produced.filter((a) => new RegExp(`\\b${a}\\b`).test(text));
    for (const a of [...actions, '']) out.delete(a);
    return { values: [...out], actions };
  }).filter((g) => g.values.length > 0);
}

/** A text built around a literal, as it could appear in a field. */
function around(literal: string): string {
  switch (random(9)) {
    case 0:
      return literal;
    case 1:
      return literal.toUpperCase();
    case 2:
      return `/usr/bin/${literal}`;
    case 3:
      return `${literal} --verbose /tmp/x`;
    case 4:
      return `sh -c ${literal}`;
    case 5:
      return `/opt/${literal.replace(/^\//, '')}/run`;
    case 6:
      return literal.slice(0, 1 + random(literal.length));
    case 7:
      return `${literal.charAt(0).toUpperCase()}${literal.slice(1)}`;
    default:
      return `x${literal}`;
  }
}

const textFields = [
  'process.name',
  'process.executable',
  'process.command_line',
  'process.working_directory',
  'process.parent.name',
  'process.parent.executable',
  'process.user.name',
  'process.real_user.name',
  'file.path',
  'file.name',
  'dns.question.name',
  'destination.address',
  'container.id',
  'hades.module.name',
  'hades.ptrace.target.name',
  'hades.process.stdio.stdin.type',
];
const numberFields = ['destination.port', 'source.port', 'process.args_count', 'hades.process.login_uid'];

/**
 * An event of the schema with fields set from one rule's values (so that its conjunctions can
 * hold) and from any rule's, in varied forms.
 */
function varied(groups: readonly Group[], numbers: readonly number[], i: number): Record<string, unknown> {
  const own = pick(groups);
  const literals = random(4) === 0 ? pick(groups).values : own.values;
  const action = own.actions.length > 0 && random(5) > 0 ? pick(own.actions) : pick(produced);
  const e = structuredClone(exampleEvent(action));
  e['@timestamp'] = new Date(Date.parse('2026-11-28T08:00:00.000Z') + i * 250).toISOString();
  (e['host'] as Record<string, unknown>)['name'] = `web-0${random(3)}`;
  const fields: Record<string, unknown> = {};
  for (let k = 1 + random(5); k > 0; k--) {
    const field = pick(textFields);
    const text = around(pick(literals));
    fields[field] = field.endsWith('.name') && field.startsWith('process.') ? text.slice(0, 15) : text;
  }
  if (random(2) === 0) {
    const program = pick(literals).replace(/^\/+/, '');
    fields['process.executable'] = `/usr/bin/${program}`;
    fields['process.name'] = program.slice(0, 15);
  }
  if (random(2) === 0) {
    const args = [pick(literals), ...Array.from({ length: random(4) }, () => (random(2) === 0 ? pick(literals) : around(pick(literals))))];
    fields[random(3) === 0 ? 'process.parent.args' : 'process.args'] = args;
    if (random(2) === 0) fields['process.command_line'] = args.join(' ');
  }
  if (random(3) === 0) fields[pick(numberFields)] = pick(numbers);
  if (random(4) === 0) fields['hades.ancestors'] = [{ pid: 10, name: around(pick(literals)).slice(0, 15), executable: `/usr/sbin/${pick(literals)}`, args: [pick(literals), '-c', around(pick(literals))] }];
  if (random(6) === 0) fields['hades.process.fileless'] = random(2) === 0;
  if (random(3) > 0) {
    // All the rule's values at once: its conjunctions on the command line and the path can hold.
    const values = literals.slice(0, 12);
    const program = pick(values).replace(/^\/+/, '');
    fields['process.executable'] = random(3) === 0 ? pick(values) : `/usr/bin/${program}`;
    fields['process.name'] = path.posix.basename(program).slice(0, 15) || 'x';
    fields['process.args'] = [program, ...values];
    fields['process.command_line'] = [program, ...values].join(' ');
    if (random(2) === 0) fields['process.parent.executable'] = `/usr/sbin/${pick(values).replace(/^\/+/, '')}`;
    if (random(2) === 0) fields['file.path'] = pick(values);
    if (random(2) === 0) fields['dns.question.name'] = pick(values);
  }
  // Only what the action's events can carry: the others make the event invalid, and are left out.
  for (const [field, value] of Object.entries(fields)) {
    const candidate = set(structuredClone(e), { [field]: value });
    if (checkEvent(candidate).ok) set(e, { [field]: value });
  }
  return e;
}

/**
 * For each rule, exec-like events of its action that hold all its values at once, each value in
 * turn the program: what makes most rules match.
 */
function* coherent(groups: readonly Group[]): Generator<Record<string, unknown>> {
  let i = 0;
  for (const g of groups) {
    const values = g.values.slice(0, 12);
    for (const [k, value] of values.slice(0, 6).entries()) {
      const e = structuredClone(exampleEvent(g.actions[k % Math.max(1, g.actions.length)] ?? 'exec'));
      e['@timestamp'] = new Date(Date.parse('2026-11-28T07:00:00.000Z') + i++ * 250).toISOString();
      const program = value.replace(/^\/+/, '');
      const fields: Record<string, unknown> = {
        'process.executable': k % 3 === 2 ? value : `/usr/bin/${program}`,
        'process.name': path.posix.basename(program).slice(0, 15) || 'x',
        'process.args': [program, ...values],
        'process.command_line': [program, ...values].join(' '),
        'process.parent.executable': `/usr/sbin/${pick(values).replace(/^\/+/, '')}`,
        'file.path': value,
        'dns.question.name': value,
      };
      for (const [field, v] of Object.entries(fields)) if (checkEvent(set(structuredClone(e), { [field]: v })).ok) set(e, { [field]: v });
      yield e;
    }
  }
}

/** Matches as the caller sees them, correlation alerts included. */
const seen = (matches: readonly Match[]) => matches.map((m) => `${m.rule.id}: ${m.output}${m.correlation ? ` [${m.correlation.key} x${m.correlation.count}]` : ''}`);

describe('value index: same matches with and without it (default pack and Sigma)', () => {
  let files: RuleFile[];
  let pack: LoadResult;
  let indexed: RuleSet;
  let flat: RuleSet;
  let groups: Group[];
  let numbers: number[];

  before(async () => {
    const packFiles = await readDefaultPack();
    const sigma = convertSigma(sigmaFiles());
    files = [...packFiles, ...sigma.files];
    pack = loadRules(packFiles);
    const loaded = loadRules(files, { samples: false });
    assert.deepEqual(loaded.problems.filter((p) => p.severity === 'error').map(formatProblem), []);
    indexed = loaded.ruleSet;
    flat = loadRules(files, { indexByAction: false, samples: false }).ruleSet;
    groups = literalGroups(files);
    numbers = [...new Set(groups.flatMap((g) => g.values).filter((l) => /^\d{1,5}$/.test(l)).map(Number)), 0, 22, 443, 4444];
  });

  it('loads hundreds of rules and finds the rules’ values to build events from', () => {
    assert.ok(indexed.rules.length >= 250, `${indexed.rules.length} rules`);
    assert.ok(groups.length >= 200, `${groups.length} rules with values`);
  });

  it('gives the same matches, in the same order, on events built from the rules’ values', () => {
    const distinct = new Set<string>();
    let matches = 0;
    let checked = 0;
    const events = function* () {
      yield* coherent(groups);
      for (let i = 0; i < 10_000; i++) yield varied(groups, numbers, i);
    };
    for (const e of events()) {
      if (!checkEvent(e).ok) continue;
      checked++;
      const a = seen(indexed.match(e));
      assert.deepEqual(a, seen(flat.match(e)), JSON.stringify(e));
      matches += a.length;
      for (const m of a) distinct.add(m.slice(0, m.indexOf(':')));
    }
    assert.ok(checked > 9_000, `${checked} events follow the schema`);
    assert.ok(matches > 3_000 && distinct.size > 150, `${matches} matches of ${distinct.size} rules`);
  });

  it('gives the same matches on the samples of the default pack, every rule’s positive and negative cases', () => {
    let matches = 0;
    for (const rs of pack.samples) {
      for (const sample of rs.samples) {
        for (const e of sample.events as Record<string, unknown>[]) {
          const a = seen(indexed.match(e));
          assert.deepEqual(a, seen(flat.match(e)), `${rs.rule}: ${JSON.stringify(e)}`);
          matches += a.length;
        }
      }
    }
    assert.ok(matches > 100, `${matches} matches`);
  });

  it('gives the same matches on events whose fields have the wrong shapes', () => {
    const shapes: unknown[] = [null, 42, true, ['a', 'B'], { x: 1 }, '', 'İSTANBUL /BİN/ΣΑΣ', ['/usr/bin/whoami', 7, null]];
    const paths = ['process', 'process.name', 'process.executable', 'process.args', 'process.args.0', 'process.parent', 'process.parent.args', 'process.command_line', 'hades.ancestors', 'file.path', 'dns.question', 'dns.question.name', 'destination.port'];
    for (let i = 0; i < 3_000; i++) {
      const e = varied(groups, numbers, i);
      for (let k = 1 + random(3); k > 0; k--) {
        const p = pick(paths);
        if (p === 'process.args.0') set(e, { 'process.args': [pick(shapes), around(pick(pick(groups).values))] });
        else set(e, { [p]: pick(shapes) });
      }
      assert.deepEqual(seen(indexed.match(e)), seen(flat.match(e)), JSON.stringify(e));
    }
  });

  it('evaluates a small part of the rules per event', () => {
    const total = (s: RuleSet) => s.stats().reduce((n, x) => n + x.evaluations, 0);
    assert.ok(total(indexed) * 10 < total(flat), `${total(indexed)} evaluations indexed, ${total(flat)} without the index`);
  });
});

describe('any ancestor (...): the indexes skip no rule that matches', () => {
  // Each beside clauses the value index files rules under (equalities, strings, regular
  // expressions), in and, or and not, and with action tests.
  const conditions = {
    with_name: 'event.action = exec and process.name = curl and any ancestor (name = sh and args[1] = "-c")',
    either: 'process.name = curl or any ancestor (name in (nginx, php-fpm8.2) and executable startswith /usr/sbin/)',
    none_sshd: 'process.command_line contains wget and not any ancestor (name = sshd and pid < 1000)',
    scripted: 'any ancestor (executable matches "^(/usr)?/bin/python[0-9.]*$" and args[1] matches "^/usr/bin/(dnf|yum)$")',
    network: 'event.action in (connect, dns_query) and any ancestor (not name = sh)',
    folded: 'any ancestor (args icontains "| SH" or (pid < 100 and name iendswith D))',
    branches: '(process.executable endswith /bin/bash or any ancestor (name = bash and args[1] = "-i")) and process.args contains "-c"',
    file: 'file.path startswith /etc/ and any ancestor (name = dpkg and not executable = /tmp/dpkg)',
    no_shell: 'process.name in (curl, wget) and not any ancestor (name in (sh, bash))',
    two: 'any ancestor (name = sh) and any ancestor (name = nginx and args exists)',
  };
  const text = `rules:\n${Object.entries(conditions)
    .map(([id, c]) => `  - id: ${id}\n    title: ${id}\n    severity: low\n    condition: ${JSON.stringify(c)}\n    output: "{process.name} {ancestor.name}"\n`)
    .join('')}`;
  const pool: Record<string, unknown>[] = [
    { pid: 4240, name: 'sh', executable: '/usr/bin/dash', args: ['sh', '-c', 'curl x | sh'] },
    { pid: 77, name: 'sh', executable: '/usr/bin/dash', args: ['sh', '/tmp/x.sh'] },
    { pid: 812, name: 'php-fpm8.2', executable: '/usr/sbin/php-fpm8.2' },
    { pid: 90, name: 'nginx', executable: '/tmp/nginx', args: ['nginx'] },
    { pid: 30, name: 'dnf', executable: '/usr/bin/python3.12', args: ['/usr/bin/python3', '/usr/bin/dnf', '-y'] },
    { pid: 31, name: 'python3', executable: '/usr/bin/python3', args: ['python3', '/tmp/x.py'] },
    { pid: 32, name: 'dnf', executable: '/tmp/dnf', args: ['/tmp/dnf', '/usr/bin/yum'] },
    { pid: 700, name: 'sshd', executable: '/usr/sbin/sshd', args: ['sshd: root'] },
    { pid: 1700, name: 'sshd', executable: '/usr/sbin/sshd' },
    { pid: 50, name: 'dpkg', executable: '/usr/bin/dpkg', args: ['dpkg', '-i', 'x.deb'] },
    { pid: 51, name: 'dpkg', executable: '/tmp/dpkg' },
    { pid: 60, name: 'bash', executable: '/usr/bin/bash', args: ['bash', '-i'] },
    { pid: 1, name: 'systemd', executable: '/usr/lib/systemd/systemd', args: ['/sbin/init', '| sh'] },
  ];
  const weird: unknown[] = [null, 'sh', 7, {}, { name: 'sh' }, [null, 'sh', 3, { name: 'sh', args: '-c' }, { name: ['sh'], pid: '1' }], [{ name: 'dnf', executable: '/usr/bin/python3', args: [null, '/usr/bin/dnf'] }]];
  const names = ['curl', 'wget', 'bash', 'sh', 'python3', 'cp'];

  it('gives the same matches with the indexes and without, on events with one, several or no ancestors', () => {
    const indexed = loadRules([{ name: 't.yaml', text }]);
    assert.deepEqual(indexed.problems.map(formatProblem), []);
    const flat = loadRules([{ name: 't.yaml', text }], { indexByAction: false }).ruleSet;
    const withAncestors = produced.filter((a) => checkEvent(set(structuredClone(exampleEvent(a)), { 'hades.ancestors': [pool[0]] })).ok);
    assert.ok(withAncestors.length >= 10 && withAncestors.length < produced.length, withAncestors.join(' '));
    const matched = new Map<string, number>();
    let valid = 0;
    for (let i = 0; i < 6_000; i++) {
      const action = random(3) === 0 ? 'exec' : pick(produced);
      const e = structuredClone(exampleEvent(action));
      e['@timestamp'] = new Date(Date.parse('2026-11-28T09:00:00.000Z') + i * 100).toISOString();
      const name = pick(names);
      const fields: Record<string, unknown> = {
        'process.name': name,
        'process.executable': random(2) === 0 ? `/usr/bin/${name}` : `/bin/${name}`,
        'process.args': random(2) === 0 ? [name, '-c', 'x'] : [name],
        'process.command_line': random(2) === 0 ? `${name} http://x/wget` : name,
        'file.path': random(2) === 0 ? '/etc/passwd' : '/tmp/x',
      };
      for (const [field, value] of Object.entries(fields)) if (checkEvent(set(structuredClone(e), { [field]: value })).ok) set(e, { [field]: value });
      if (withAncestors.includes(action)) {
        const shape = random(10);
        if (shape === 0) set(e, { hades: undefined });
        else if (shape === 1) set(e, { 'hades.ancestors': pick(weird) });
        else set(e, { 'hades.ancestors': Array.from({ length: random(9) }, () => structuredClone(pick(pool))) });
      }
      if (checkEvent(e).ok) valid++;
      const a = seen(indexed.ruleSet.match(e));
      assert.deepEqual(a, seen(flat.match(e)), JSON.stringify(e));
      for (const m of a) matched.set(m.slice(0, m.indexOf(':')), (matched.get(m.slice(0, m.indexOf(':'))) ?? 0) + 1);
    }
    assert.ok(valid > 4_000, `${valid} events follow the schema`);
    // Every rule matched, and none on every event: the comparison tells something of each.
    for (const id of Object.keys(conditions)) assert.ok((matched.get(id) ?? 0) > 20 && (matched.get(id) ?? 0) < 5_000, `${id}: ${matched.get(id) ?? 0} matches`);
    // The indexes did their part: fewer evaluations, and none for events that carry no ancestors.
    const evaluations = (s: RuleSet) => s.stats().reduce((n, x) => n + x.evaluations, 0);
    assert.ok(evaluations(indexed.ruleSet) * 3 < evaluations(flat) * 2, `${evaluations(indexed.ruleSet)} evaluations indexed, ${evaluations(flat)} without`);
    const health = loadRules([{ name: 't.yaml', text }]).ruleSet;
    health.match(exampleEvent('agent_health'));
    // (scripted, folded and two test nothing but ancestors.)
    assert.deepEqual(health.stats().filter((x) => x.evaluations > 0).map((x) => x.id), []);
  });
});

describe('value index: file names, suffixes and case', () => {
  const conditions = {
    bin_bash: 'event.action = exec and process.executable endswith "/bin/bash"',
    any_bash: 'event.action = exec and process.executable endswith "bash"',
    whoami_ci: 'event.action = exec and process.executable iendswith "/whoami"',
    shells: 'event.action = exec and process.executable iendswith ("/sh", "/dash", "/zsh")',
    either: 'event.action = exec and (process.name = curl or process.executable iendswith "/wget" or process.command_line icontains "http://")',
    sigma_cs: 'event.action = exec and process.executable endswith "/ΣΑΣ"',
    sigma_ci: 'event.action = exec and process.executable iendswith "/σας"',
    dotted_i: 'event.action = exec and process.name i= "İd"',
  };
  const text = `rules:\n${Object.entries(conditions)
    .map(([id, c]) => `  - id: ${id}\n    title: ${id}\n    severity: low\n    condition: ${JSON.stringify(c)}\n`)
    .join('')}`;
  const load = (indexByAction = true) => loadRules([{ name: 't.yaml', text }], { indexByAction }).ruleSet;
  const exec = (executable: string, more: Record<string, unknown> = {}) =>
    set(structuredClone(exampleEvent('exec')), { 'process.executable': executable, 'process.name': path.posix.basename(executable).slice(0, 15), 'process.command_line': executable, ...more });
  const ids = (s: RuleSet, e: Record<string, unknown>) => s.match(e).map((m) => m.rule.id);

  it('finds a rule on a suffix with a / by the file name, and still tests the whole suffix', () => {
    const ruleSet = load();
    assert.deepEqual(ids(ruleSet, exec('/usr/bin/bash')), ['bin_bash', 'any_bash']);
    // The file name is bash and the path ends with "bin/bash", but not with "/bin/bash".
    assert.deepEqual(ids(ruleSet, exec('/usr/local/xbin/bash')), ['any_bash']);
    // A suffix without a '/' is no file name: /usr/bin/rbash ends with "bash".
    assert.deepEqual(ids(ruleSet, exec('/usr/bin/rbash')), ['any_bash']);
    assert.deepEqual(ids(ruleSet, exec('/USR/BIN/WhoAmI')), ['whoami_ci']);
    assert.deepEqual(ids(ruleSet, exec('/bin/DASH')), ['shells']);
    // Any branch of a disjunction finds the rule.
    assert.deepEqual(ids(ruleSet, exec('/usr/bin/curl')), ['either']);
    assert.deepEqual(ids(ruleSet, exec('/usr/bin/WGET')), ['either']);
    assert.deepEqual(ids(ruleSet, exec('/usr/bin/python3', { 'process.command_line': 'python3 -c HTTP://x' })), ['either']);
    const evaluations = new Map(ruleSet.stats().map((s) => [s.id, s.evaluations]));
    // Of the eight execs, the rules on a file name ran only on the execs of that file name (the
    // suffix rule perhaps only on the one whose path holds its whole suffix).
    assert.ok(evaluations.get('bin_bash')! >= 1 && evaluations.get('bin_bash')! <= 2);
    assert.equal(evaluations.get('whoami_ci'), 1);
    assert.equal(evaluations.get('shells'), 1);
  });

  it('folds case as the operators do, Greek final sigma and dotted capital I included', () => {
    const indexed = load();
    const flat = load(false);
    for (const executable of ['/x/ΣΑΣ', '/x/σας', '/x/σασ', '/x/ΣΑΣ/', '/x/aΣΑΣ', '/ΣΑΣ', 'ΣΑΣ', 'aΣ/ΣΑΣ', '/usr/bin/İd', '/usr/bin/id', '/usr/bin/ID', '/x/İD', '/x/i̇d']) {
      const e = exec(executable);
      assert.deepEqual(ids(indexed, e), ids(flat, e), executable);
    }
    assert.deepEqual(ids(indexed, exec('/x/ΣΑΣ')), ['sigma_cs', 'sigma_ci']);
  });
});

describe('value index: one scan of a process\u2019s command', () => {
  // Strings searched for in the arguments, one argument and the command line, of the process and
  // of its parent: enough rules that the index reads them, in one scan of each command line.
  const conditions = {
    args_exfil: 'event.action = exec and process.args contains "--exfil"',
    args_ci: 'event.action = exec and process.args icontains "-NoProfile"',
    arg0: 'event.action = exec and process.args[0] contains "kworker"',
    line_decode: 'event.action = exec and process.command_line icontains "base64 -d"',
    line_cs: 'event.action = exec and process.command_line contains "LD_PRELOAD="',
    across: 'event.action = exec and process.args contains "x y"',
    greek: 'event.action = exec and process.args contains "ΣΑΣ"',
    parent_args: 'event.action = exec and process.parent.args contains "--remote-shell"',
    parent_line: 'event.action = exec and process.parent.command_line icontains "curl http"',
    parent_arg1: 'event.action = exec and process.parent.args[1] contains "--payload"',
  };
  const text = `rules:\n${Object.entries(conditions)
    .map(([id, c]) => `  - id: ${id}\n    title: ${id}\n    severity: low\n    condition: ${JSON.stringify(c)}\n`)
    .join('')}`;
  const load = (indexByAction = true) => loadRules([{ name: 't.yaml', text }], { indexByAction }).ruleSet;
  const exec = (args: unknown, line: unknown, parentArgs: unknown = ['bash'], parentLine: unknown = 'bash') =>
    set(structuredClone(exampleEvent('exec')), { 'process.args': args, 'process.command_line': line, 'process.parent.args': parentArgs, 'process.parent.command_line': parentLine });
  const ids = (s: RuleSet, e: Record<string, unknown>) => s.match(e).map((m) => m.rule.id);
  const candidates = (s: RuleSet, e: Record<string, unknown>) => s.candidates(e).map((r) => r.id);

  it('finds the rules of every string in the agent\u2019s form (arguments joined by spaces), as without the index', () => {
    const indexed = load();
    const flat = load(false);
    const cases: [string[], string[]][] = [
      [['tar', '--exfil', '/etc'], ['args_exfil']],
      [['pwsh', '-noprofile'], ['args_ci']],
      [['[kworker/0:1]'], ['arg0']],
      [['sh', '-c', 'echo x | BASE64 -D'], ['line_decode']],
      [['env', 'LD_PRELOAD=/tmp/x.so', 'id'], ['line_cs']],
      [['cat', 'ΣΑΣ'], ['greek']],
      [['cat', 'σας'], []],
      [['true'], []],
    ];
    for (const [args, expected] of cases) {
      const e = exec(args, args.join(' '));
      assert.deepEqual(ids(indexed, e), expected, args.join(' '));
      assert.deepEqual(ids(indexed, e), ids(flat, e), args.join(' '));
    }
    const parent = exec(['id'], 'id', ['sh', '--payload=1', 'curl', 'HTTP://x'], 'sh --payload=1 curl HTTP://x');
    assert.deepEqual(ids(indexed, parent), ['parent_line', 'parent_arg1']);
    assert.deepEqual(ids(indexed, exec(['id'], 'id', ['x', '--remote-shell'], 'x --remote-shell')), ['parent_args']);
  });

  it('reads the arguments and the command line one by one when the command line does not hold the arguments', () => {
    const indexed = load();
    const flat = load(false);
    const forged: [unknown, unknown][] = [
      [['tar', '--exfil'], 'tar'],
      [['tar', '--exfil'], undefined],
      [['tar', '--exfil'], 'tar  --exfil'],
      [['tar', 7, '--exfil'], 'tar 7 --exfil'],
      [['x'], 'sh -c "base64 -d"'],
      ['--exfil', 'tar'],
      [undefined, 'LD_PRELOAD=/x id'],
      [['[kworker/0:1]', 'a'], '[kworker/0:1]'],
    ];
    for (const [args, line] of forged) {
      const e = exec(args, line);
      assert.deepEqual(ids(indexed, e), ids(flat, e), JSON.stringify([args, line]));
    }
    assert.deepEqual(ids(indexed, exec(['tar', '--exfil'], 'tar')), ['args_exfil']);
    assert.deepEqual(ids(indexed, exec(['x', 'y'], 'sh -c "base64 -d"')), ['line_decode']);
  });

  it('scans the command line once for the strings of the arguments: a string across two arguments costs an evaluation, no match', () => {
    const indexed = load();
    const e = exec(['a', 'x', 'y'], 'a x y');
    assert.ok(candidates(indexed, e).includes('across'), candidates(indexed, e).join(', '));
    assert.deepEqual(ids(indexed, e), []);
    // Read one by one (the command line is not the arguments'), the arguments hold no "x y".
    assert.ok(!candidates(indexed, exec(['a', 'x', 'y'], 'b')).includes('across'));
  });
});

describe('regular expressions: literal prefilter', () => {
  it('finds the strings every match holds', () => {
    assert.deepEqual(requiredLiterals('/dev/(tcp|udp)/[^/ ]+/[0-9]+'), ['/dev/tcp/', '/dev/udp/']);
    assert.deepEqual(requiredLiterals('(release_agent|notify_on_release)'), ['release_agent', 'notify_on_release']);
    assert.deepEqual(requiredLiterals('^python[0-9.]*$'), ['python']);
    assert.deepEqual(requiredLiterals('\\.ko(\\.[a-z]+)?$'), ['.ko']);
  });

  it('knows the fewest characters a match holds, and a rule refuses shorter texts without running the expression', () => {
    const cases: [string, number][] = [
      ['(^|[=:@ ])[48][0-9AB][1-9A-HJ-NP-Za-km-z]{93}([.+/ ]|$)', 95],
      ['^(--algo|--coin|-a)=?(rx/|cn/)', 5],
      ['a*', 0],
      ['x|yz', 1],
      ['(ab){2,5}c?', 4],
      ['.\\d[^a]\\b', 3],
      ['😀{2}', 2],
      ['(?i)abc', 0],
      ['\\pL{9}', 0],
    ];
    for (const [pattern, min] of cases) assert.equal(minimumLength(pattern), min, pattern);
    // Every match of each pattern is at least that long (in UTF-16 units: a code point is 1 or 2).
    for (const [pattern, text] of [['😀{2}', '😀😀'], ['(ab){2,5}c?', 'abab'], ['x|yz', 'x']] as const) {
      assert.ok(new RegExp(pattern, 'u').test(text) && text.length >= minimumLength(pattern), pattern);
    }
    const wallet = '4' + 'A'.repeat(94);
    const rules = `
rules:
  - id: wallet
    title: T
    severity: low
    condition: event.action = exec and process.args matches "(^|[=:@ ])[48][0-9AB][1-9A-HJ-NP-Za-km-z]{93}([.+/ ]|$)"
`;
    const { ruleSet } = loadRules([{ name: 'w.yaml', text: rules }]);
    const run = (args: string[]) => ruleSet.match(set(structuredClone(exampleEvent('exec')), { 'process.args': args })).map((m) => m.rule.id);
    assert.deepEqual(run(['xmrig', '-u', wallet]), ['wallet']);
    assert.deepEqual(run(['xmrig', '-u', wallet.slice(1)]), []);
    assert.deepEqual(run(['xmrig', `--user=${wallet}`]), ['wallet']);
  });

  it('prefilters case-insensitive expressions by their ASCII strings, folding as RE2 does (the long s, the Kelvin sign)', () => {
    const rules = `
rules:
  - id: stratum
    title: T
    severity: low
    condition: event.action = exec and process.args imatches "stratum[0-9]*\\\\+(tcp|ssl)://"
  - id: kelvin
    title: T
    severity: low
    condition: event.action = exec and process.args imatches "^--kill=[0-9]"
`;
    const { ruleSet, problems } = loadRules([{ name: 'ci.yaml', text: rules }]);
    assert.deepEqual(problems.filter((p) => p.severity === 'error').map(formatProblem), []);
    const run = (args: string[]) => ruleSet.match(set(structuredClone(exampleEvent('exec')), { 'process.args': args })).map((m) => m.rule.id);
    assert.deepEqual(run(['x', '-o', 'STRATUM+TCP://pool:3333']), ['stratum']);
    // RE2 folds ſ into s and K (Kelvin) into k: the prefilter must not refuse what RE2 matches.
    assert.deepEqual(run(['x', '-o', '\u017ftratum1+ssl://pool:443']), ['stratum']);
    assert.deepEqual(run(['x', '--\u212Aill=9']), ['kelvin']);
    assert.deepEqual(run(['x', '-o', 'tcp://pool:3333', '--kil=9']), []);
  });

  it('refuses a text shorter than any match without running a case-insensitive expression too', () => {
    let runs = 0;
    const counting = (pattern: string): Regex => {
      const re = compileRegex(pattern, true);
      return { pattern, test: (s) => (runs++, re.test(s)) };
    };
    // No ASCII string every match holds, so no literal prefilter: only the length guard spares RE2.
    const hash = prefiltered(counting('[0-9a-f]{64}'), true);
    assert.equal(hash('abc'), false);
    assert.equal(hash('x'.repeat(63)), false);
    assert.equal(runs, 0, 'shorter texts never reach RE2');
    assert.equal(hash('A'.repeat(64)), true);
    assert.equal(runs, 1);
    // Folding keeps one code point per code point: the Kelvin sign and the long s are one UTF-16
    // unit, like k and s; Deseret letters are two in either case.
    assert.equal(prefiltered(compileRegex('^k{3}$', true), true)('\u212A\u212A\u212A'), true);
    assert.equal(prefiltered(compileRegex('^ss$', true), true)('\u017f\u017f'), true);
    assert.equal(prefiltered(compileRegex('^\u{10428}{2}$', true), true)('\u{10400}\u{10400}'), true);
  });

  it('never refuses a text a case-insensitive expression matches, with characters whose cases differ in form or length', () => {
    // RE2 folds simply: one code point to one (ß is not ss, the ﬀ ligature not ff, ΐ is ΐ).
    assert.equal(compileRegex('^ss$', true).test('\u00df'), false);
    assert.equal(compileRegex('^ff$', true).test('\ufb00'), false);
    const tricky = ['k', 'K', '\u212A', 's', 'S', '\u017f', '\u00df', '\u1e9e', '\ufb00', 'f', 'i', 'I', '\u0130', '\u0131', '\u03a3', '\u03c3', '\u03c2', '\u0390', '\u1fd3', '\u{10400}', '\u{10428}', '\u00b5', '\u03bc', 'a'];
    const atoms = [...tricky, '.', '[ks]', '[^a]', '\\w', '(k|ss)', '(\u00df|f)'];
    const quantifiers = ['', '', '*', '+', '?', '{2}', '{1,3}'];
    let guarded = 0;
    for (let i = 0; i < 1_500; i++) {
      let pattern = '';
      for (let k = 1 + random(5); k > 0; k--) pattern += pick(atoms) + pick(quantifiers);
      const re = compileRegex(pattern, true);
      const test = prefiltered(re, true);
      if (minimumLength(pattern) > 1) guarded++;
      for (let t = 0; t < 30; t++) {
        const text = Array.from({ length: random(7) }, () => pick(tricky)).join('');
        if (re.test(text)) assert.ok(test(text), `${pattern} matches ${JSON.stringify(text)} (${text.length} units), refused`);
      }
    }
    assert.ok(guarded > 500, `${guarded} patterns with a length guard`);
  });

  it('gives none when a match may hold none, or when it does not understand the pattern', () => {
    for (const p of ['a*', 'x|', '(?i)abc', '(?s:a.b)', '\\x41b', '\\pLx', '\\Qab\\E', '.{3}', '[^a]+', '😀*', 'a{0}']) assert.equal(requiredLiterals(p), undefined, p);
  });

  it('never refuses a text the expression matches (random patterns and texts)', () => {
    const atoms = ['a', 'b', 'ab', '\\.', '.', '[ab]', '[^a]', '[a-c]', '\\d', '^', '$', '\\b', '(a|b)', '(ab|c)', '(|a)', '(?:ba)', '😀', 'Σ', 'é'];
    const quantifiers = ['', '', '', '*', '+', '?', '{2}', '{0,1}', '{1,}'];
    let useful = 0;
    for (let i = 0; i < 4_000; i++) {
      let pattern = '';
      for (let k = 1 + random(5); k > 0; k--) pattern += pick(atoms) + pick(quantifiers);
      if (random(4) === 0) pattern = `${pattern}|${pick(atoms)}${pick(quantifiers)}`;
      let re: RE2JS;
      try {
        re = RE2JS.compile(pattern);
      } catch {
        continue;
      }
      const literals = requiredLiterals(pattern);
      if (literals === undefined) continue;
      useful++;
      for (let t = 0; t < 30; t++) {
        const text = Array.from({ length: random(8) }, () => pick(['a', 'b', 'c', '.', '1', ' ', '😀', 'Σ', 'é'])).join('');
        if (re.test(text)) assert.ok(literals.some((l) => text.includes(l)), `${pattern} matches ${JSON.stringify(text)} which holds none of ${JSON.stringify(literals)}`);
      }
    }
    assert.ok(useful > 1_000, `${useful} patterns with a prefilter`);
  });
});

describe('many-string scanner', () => {
  it('finds every occurrence of every needle, as includes does', () => {
    const alphabet = ['a', 'b', 'c', '/', 'é', '😀', 'A'];
    for (let round = 0; round < 200; round++) {
      const needles = [...new Set(Array.from({ length: 1 + random(12) }, () => Array.from({ length: 1 + random(4) }, () => pick(alphabet)).join('')))];
      const scanner = new NeedleScanner(needles);
      for (let t = 0; t < 20; t++) {
        const text = Array.from({ length: random(20) }, () => pick(alphabet)).join('');
        const found: number[] = [];
        scanner.scan(text, found);
        const expected = needles.map((n) => {
          let count = 0;
          for (let at = text.indexOf(n); at >= 0; at = text.indexOf(n, at + 1)) count++;
          return count;
        });
        assert.deepEqual(needles.map((_, id) => found.filter((x) => x === id).length), expected, `${JSON.stringify(needles)} in ${JSON.stringify(text)}`);
      }
    }
  });
});
