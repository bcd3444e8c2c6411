import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EventAction } from '../../src/common/events/index.js';
import { exampleWith } from '../helpers/rule-events.js';
import { formatProblem, loadRules, type RuleSet } from '../../src/rules/index.js';

const ev = exampleWith;

function load(text: string): RuleSet {
  const { ruleSet, problems } = loadRules([{ name: 'test.yaml', text }]);
  const errors = problems.filter((p) => p.severity === 'error');
  assert.deepEqual(errors.map(formatProblem), [], 'the rules should load');
  return ruleSet;
}

function ruleYaml(condition: string, extra = ''): string {
  return `rules:\n  - id: r\n    title: T\n    severity: low\n    condition: ${JSON.stringify(condition)}\n${extra}`;
}

/** True when a rule with this condition matches the event. */
function holds(condition: string, event: Record<string, unknown>): boolean {
  return load(ruleYaml(condition)).match(event).length === 1;
}

const exec = ev('exec');
const connect = ev('connect');

describe('rule language: operators', () => {
  const cases: [string, Record<string, unknown>, boolean][] = [
    ['process.name = curl', exec, true],
    ['process.name == curl', exec, true],
    ['process.name = wget', exec, false],
    ['process.name = CURL', exec, false],
    ['process.name i= CURL', exec, true],
    ['process.name != wget', exec, true],
    ['process.name != curl', exec, false],
    ['process.name i!= CURL', exec, false],
    ['process.name i!= WGET', exec, true],
    ['process.pid > 4000', exec, true],
    ['process.pid < 4242', exec, false],
    ['process.pid <= 4242', exec, true],
    ['process.pid >= 4243', exec, false],
    ['process.pid = 4242', exec, true],
    ['process.name in (wget, curl)', exec, true],
    ['process.name in (wget, "CURL")', exec, false],
    ['process.name iin (wget, "CURL")', exec, true],
    ['destination.port in (80, 443)', connect, true],
    ['destination.port in (22)', connect, false],
    ['process.command_line contains "203.0.113"', exec, true],
    ['process.command_line contains "X.SH"', exec, false],
    ['process.command_line icontains "X.SH"', exec, true],
    ['process.command_line contains (wget, "x.sh")', exec, true],
    ['process.executable startswith /usr/', exec, true],
    ['process.executable startswith /USR/', exec, false],
    ['process.executable istartswith /USR/', exec, true],
    ['process.executable endswith /curl', exec, true],
    ['process.executable endswith /CURL', exec, false],
    ['process.executable iendswith /CURL', exec, true],
    ['process.executable glob "/usr/*/curl"', exec, true],
    ['process.executable glob "/usr/*/cur[lx]"', exec, true],
    ['process.executable glob "/usr/*/wget"', exec, false],
    ['process.executable glob "/USR/BIN/CUR?"', exec, false],
    ['process.executable iglob "/USR/BIN/CUR?"', exec, true],
    ['process.command_line matches "https?://[0-9.]+/"', exec, true],
    ['process.command_line ~= "^curl -s"', exec, true],
    ['process.command_line ~= "^CURL"', exec, false],
    ['process.command_line i~= "^CURL"', exec, true],
    ['process.command_line imatches "^CURL -S"', exec, true],
    ['destination.ip in_cidr 203.0.113.0/24', connect, true],
    ['destination.ip in_cidr (10.0.0.0/8, 192.168.0.0/16)', connect, false],
    ['source.ip in_cidr (10.0.0.0/8, 192.168.0.0/16)', connect, true],
    ['destination.ip in_cidr "2001:db8::/32"', ev('connect', { 'destination.ip': '2001:db8::7' }), true],
    ['destination.ip in_cidr 10.0.0.0/8', ev('connect', { 'destination.ip': '::ffff:10.1.2.3' }), true],
    ['destination.ip in_cidr 10.0.0.0/8', ev('connect', { 'destination.ip': 'fe80::1' }), false],
    ['destination.ip in_cidr "::ffff:10.0.0.0/104"', ev('connect', { 'destination.ip': '10.1.2.3' }), true],
    ['destination.ip in_cidr "::ffff:10.0.0.0/104"', ev('connect', { 'destination.ip': '11.1.2.3' }), false],
    ['destination.ip in_cidr "::ffff:10.0.0.0/104"', ev('connect', { 'destination.ip': '::ffff:10.9.9.9' }), true],
    ['destination.ip in_cidr "::/0"', ev('connect', { 'destination.ip': '10.1.2.3' }), true],
    ['destination.ip in_cidr "::ffff:0:0/96"', ev('connect', { 'destination.ip': '192.0.2.1' }), true],
    ['process.parent.executable exists', exec, true],
    ['process.exit_code exists', exec, false],
    ['process.exit_code != 3', exec, true],
    ['process.exit_code = 3', exec, false],
    ['process.user.id = 33', exec, true],
    ['process.interactive = true', ev('exec', { 'process.interactive': true }), true],
    ['process.interactive = false', ev('exec', { 'process.interactive': true }), false],
    ['process.interactive in (false, true)', ev('exec', { 'process.interactive': true }), true],
    ['process.interactive != true', ev('exec', { 'process.interactive': true }), false],
    ['hades.cmdb.tags.team = blue', ev('exec', { 'hades.cmdb': { tags: { team: 'blue' } } }), true],
    ['hades.cmdb.tags.team = red', ev('exec', { 'hades.cmdb': { tags: { team: 'blue' } } }), false],
    ['hades.inventory.row.port = 4444', ev('inventory_change'), true],
    ['hades.inventory.row.port > 1024', ev('inventory_change'), true],
    // A text compares as a number only when written as a number, as a rule's own are.
    ['hades.inventory.row.port < 1024', ev('inventory_change', { 'hades.inventory.row': { port: ' 80 ' } }), true],
    ['hades.inventory.row.port < 1024', ev('inventory_change', { 'hades.inventory.row': { port: '0x10' } }), false],
    ['hades.inventory.row.port < 1024', ev('inventory_change', { 'hades.inventory.row': { port: '1e2' } }), false],
    ['hades.inventory.row.port > 1024', ev('inventory_change', { 'hades.inventory.row': { port: 'Infinity' } }), false],
    // Whole numbers past 2^53 come as digit text, to stay exact, and compare exactly.
    ['hades.inventory.row.inode > 9007199254740992', ev('inventory_change', { 'hades.inventory.row': { inode: '9007199254740993' } }), true],
    ['hades.inventory.row.inode <= 9007199254740992', ev('inventory_change', { 'hades.inventory.row': { inode: '9007199254740993' } }), false],
    ['hades.inventory.row.inode < 9007199254740992', ev('inventory_change', { 'hades.inventory.row': { inode: '-18446744073709551615' } }), true],
    ['hades.inventory.row.inode >= 1', ev('inventory_change', { 'hades.inventory.row': { inode: '18446744073709551615' } }), true],
    ['hades.inventory.row.address in_cidr 0.0.0.0/32', ev('inventory_change'), true],
    ['hades.inventory.row.protocol icontains TC', ev('inventory_change'), true],
    ['process.name iglob "[0-Z]*"', ev('exec', { 'process.name': '[kworker]' }), false],
    ['process.name iglob "[0-Z]*"', ev('exec', { 'process.name': 'kworker' }), true],
    ['process.args iglob "[0-Z]*"', ev('exec', { 'process.args': ['[x]'] }), false],
    ['process.name iglob "[Z-a]*"', ev('exec', { 'process.name': 'ABC' }), true],
    ['event.category = process', exec, true],
    ['event.category = network', exec, false],
  ];
  for (const [condition, event, expected] of cases) {
    it(`${condition} is ${expected}`, () => assert.equal(holds(condition, event), expected));
  }
});

describe('rule language: boolean logic', () => {
  it('binds not tighter than and, and tighter than or', () => {
    assert.equal(holds('not process.name = wget and process.pid = 4242', exec), true);
    assert.equal(holds('process.name = wget or process.pid = 4242 and process.name = curl', exec), true);
    assert.equal(holds('(process.name = wget or process.pid = 4242) and process.name = wget', exec), false);
    assert.equal(holds('not (process.name = curl or process.name = wget)', exec), false);
    assert.equal(holds('not not process.name = curl', exec), true);
  });

  it('reads conditions over several lines, with either quote', () => {
    const set = load(`rules:\n  - id: r\n    title: T\n    severity: low\n    condition: |\n      event.action = exec\n        and process.name = 'curl'\n        and process.working_directory = "/tmp"\n`);
    assert.equal(set.match(exec).length, 1);
  });

  it('unescapes quotes and backslashes in strings, and keeps other escapes for regular expressions', () => {
    const e = ev('exec', { 'process.command_line': 'echo "a\\b" x.sh' });
    assert.equal(holds(String.raw`process.command_line contains "\"a\\b\""`, e), true);
    assert.equal(holds(String.raw`process.command_line matches "x\.sh$"`, e), true);
    assert.equal(holds(String.raw`process.command_line matches "y\.sh$"`, e), false);
  });

  it('unescapes either quote in either kind of string, as documented', () => {
    const e = ev('exec', { 'process.command_line': `echo it's "done"` });
    assert.equal(holds(String.raw`process.command_line contains "it\'s \"done\""`, e), true);
    assert.equal(holds(String.raw`process.command_line contains 'it\'s \"done\"'`, e), true);
    assert.equal(holds(String.raw`process.command_line matches "it\'s"`, e), true);
  });
});

describe('rule language: arrays and the process tree', () => {
  it('matches an array field when any element matches', () => {
    assert.equal(holds('process.args contains "-s"', exec), true);
    assert.equal(holds('process.args = "-s"', exec), true);
    assert.equal(holds('process.args = "-x"', exec), false);
    assert.equal(holds('process.args startswith "http:"', exec), true);
  });

  it('negates array comparisons as "no element"', () => {
    assert.equal(holds('process.args != "-x"', exec), true);
    assert.equal(holds('process.args != "-s"', exec), false);
    assert.equal(holds('not process.args contains "-s"', exec), false);
  });

  it('indexes arrays', () => {
    assert.equal(holds('process.args[0] = curl', exec), true);
    assert.equal(holds('process.args[1] = curl', exec), false);
    assert.equal(holds('process.args[2] startswith http', exec), true);
    assert.equal(holds('process.args[9] exists', exec), false);
    assert.equal(holds('hades.ancestors[1].name = php-fpm8.2', exec), true);
    assert.equal(holds('hades.ancestors[0].name = php-fpm8.2', exec), false);
  });

  it('tests the parent and any ancestor', () => {
    assert.equal(holds('process.parent.name = sh', exec), true);
    assert.equal(holds('ancestor.name in (nginx, apache2, php-fpm8.2)', exec), true);
    assert.equal(holds('ancestor.name in (nginx, apache2)', exec), false);
    assert.equal(holds('ancestor.executable startswith /usr/sbin/php-fpm', exec), true);
    assert.equal(holds('ancestor.args contains "| sh"', exec), true);
    assert.equal(holds('ancestor.pid = 812', exec), true);
    assert.equal(holds('ancestor.name exists', ev('exec', { hades: undefined })), false);
    assert.equal(holds('not ancestor.name = nginx', ev('exec', { hades: undefined })), true);
  });
});

describe('rule language: any ancestor (...)', () => {
  /** An exec whose ancestors are given, parent first; none: no hades.ancestors at all. */
  const under = (...ancestors: Record<string, unknown>[]) => ev('exec', { 'hades.ancestors': ancestors.length > 0 ? ancestors : undefined });
  const dnf = { pid: 20, name: 'dnf', executable: '/usr/bin/python3.12', args: ['/usr/bin/python3', '/usr/bin/dnf', 'upgrade'] };
  const python = { pid: 21, name: 'python3', executable: '/usr/bin/python3.12', args: ['python3', '/tmp/x.py'] };
  const fake = { pid: 22, name: 'dnf', executable: '/tmp/dnf', args: ['/tmp/dnf', '/usr/bin/dnf'] };
  const scripted = 'any ancestor (executable matches "^(/usr)?/bin/python[0-9.]*$" and args[1] = /usr/bin/dnf)';

  it('is true through one ancestor that satisfies the whole condition', () => {
    assert.equal(holds(scripted, under(dnf)), true);
    assert.equal(holds(scripted, under({ pid: 2, name: 'sh', executable: '/usr/bin/dash' }, { pid: 3, name: 'bash' }, dnf)), true, 'at any depth');
  });

  it('is false when the conditions hold on two different ancestors', () => {
    // The interpreter is one ancestor, the script's path in another's arguments.
    assert.equal(holds(scripted, under(python, fake)), false);
    assert.equal(holds(scripted, under(fake, python)), false);
    // ... which the ancestor.* fields, each on its own, accept.
    assert.equal(holds('ancestor.executable matches "^(/usr)?/bin/python[0-9.]*$" and ancestor.args[1] = /usr/bin/dnf', under(python, fake)), true);
  });

  it('reads the fields under an ancestor\'s objects: a copy of a shell among them (copy_of)', () => {
    const copy = { pid: 30, name: 'kworker', executable: '/usr/local/lib/.x/kworker', args: ['/usr/local/lib/.x/kworker', '-i'], copy_of: { path: '/usr/bin/bash', name: 'bash' } };
    const sh = { pid: 31, name: 'sh', executable: '/usr/bin/dash' };
    assert.equal(holds('ancestor.copy_of.name = bash', under(sh, copy)), true);
    assert.equal(holds('ancestor.copy_of.path matches "/(ba|da)?sh$"', under(copy)), true);
    assert.equal(holds('ancestor.copy_of exists', under(sh)), false);
    assert.equal(holds('hades.ancestors[0].copy_of.name = bash', under(copy, sh)), true);
    assert.equal(holds('hades.ancestors[0].copy_of.name = bash', under(sh, copy)), false, 'the parent only');
    // One ancestor that is a copy of bash and runs a script file.
    assert.equal(holds('any ancestor (copy_of.name = bash and args[1] = "-i")', under(sh, copy)), true);
    assert.equal(holds('any ancestor (copy_of.name = bash and name = sh)', under(sh, copy)), false);
    assert.equal(holds('any ancestor (copy_of exists)', under(copy)), true);
    assert.equal(holds('not any ancestor (copy_of.path exists)', under(sh)), true);
  });

  it('is false without ancestors, so that its negation is true', () => {
    for (const e of [under(), ev('exec', { hades: undefined }), ev('exec', { 'hades.ancestors': [] })]) {
      assert.equal(holds(scripted, e), false);
      assert.equal(holds(`not ${scripted}`, e), true);
      assert.equal(holds('any ancestor (not name = x)', e), false, 'no ancestor to satisfy even a negation');
    }
  });

  it('takes and, or, not, parentheses and every operator inside, and fields of one ancestor', () => {
    const e = under({ pid: 5, entity_id: 'h-5-1', name: 'sh', executable: '/usr/bin/dash', args: ['sh', '-c', 'curl x | sh'], args_truncated: false }, { pid: 812, name: 'php-fpm8.2', executable: '/usr/sbin/php-fpm8.2' });
    const cases: [string, boolean][] = [
      ['any ancestor (name = sh and pid = 5)', true],
      ['any ancestor (name = sh and pid = 812)', false],
      ['any ancestor (name = sh or pid = 812)', true],
      ['any ancestor (name = php-fpm8.2 and not args exists)', true],
      ['any ancestor (name = sh and not args exists)', false],
      ['any ancestor (not (name = sh or name startswith php))', false],
      ['any ancestor (name i= SH and executable iendswith /DASH and args icontains "| SH")', true],
      ['any ancestor (args[1] = "-c" and args[2] matches "\\| *sh$" and args contains curl)', true],
      ['any ancestor (args[1] = "-c" and name = php-fpm8.2)', false],
      ['any ancestor (executable glob "/usr/*/php-fpm*" and pid >= 800 and pid < 900)', true],
      ['any ancestor (entity_id = h-5-1 and args_truncated = false)', true],
      ['any ancestor (name in (bash, sh) and executable in (/usr/bin/dash, /bin/dash))', true],
      ['any ancestor (pid != 5 and name = sh)', false],
      ['process.name = curl and any ancestor (name = sh and args[1] = "-c")', true],
      ['process.name = wget or any ancestor (name = php-fpm8.2 and executable startswith /usr/sbin/)', true],
      ['not any ancestor (name = php-fpm8.2 and executable startswith /tmp/)', true],
      ['any ancestor (name = sh) and any ancestor (name = php-fpm8.2)', true],
      ['(any ancestor (name = sh and pid = 5))', true],
      ['any ancestor ((name = sh or name = bash) and (pid = 5 or pid = 6))', true],
    ];
    for (const [condition, expected] of cases) assert.equal(holds(condition, e), expected, condition);
  });

  it('uses lists, and macros written with the fields of one ancestor', () => {
    const set = load(`
lists:
  interpreters: [python3, perl]
macros:
  is_interpreter: name in interpreters
  runs_dnf: args[1] = /usr/bin/dnf
  scripted_dnf: is_interpreter and runs_dnf
  under_scripted_dnf: any ancestor (scripted_dnf)
  is_curl: process.name = curl
rules:
  - id: both
    title: T
    severity: low
    condition: any ancestor (is_interpreter and runs_dnf) and is_curl
  - id: nested_macros
    title: T
    severity: low
    condition: under_scripted_dnf
  - id: list
    title: T
    severity: low
    condition: any ancestor (name in interpreters and args[1] = /tmp/x.py)
`);
    const ids = (e: Record<string, unknown>) => set.match(e).map((m) => m.rule.id);
    assert.deepEqual(ids(under({ ...dnf, name: 'python3' })), ['both', 'nested_macros']);
    assert.deepEqual(ids(under(python, fake)), ['list']);
    assert.deepEqual(ids(under({ ...python, args: ['python3', '/usr/bin/dnf'] })), ['both', 'nested_macros']);
  });

  it('means what the test repeated on each of the 8 ancestors meant', () => {
    const test = (i: number) => `(hades.ancestors[${i}].executable matches "^(/usr)?/bin/python[0-9.]*$" and hades.ancestors[${i}].args[1] = /usr/bin/dnf)`;
    const set = load(`rules:
  - id: construct
    title: T
    severity: low
    condition: ${JSON.stringify(scripted)}
  - id: eightfold
    title: T
    severity: low
    condition: ${JSON.stringify(Array.from({ length: 8 }, (_, i) => test(i)).join(' or '))}
`);
    const pool = [dnf, python, fake, { pid: 1, name: 'systemd' }, { ...dnf, args: ['/usr/bin/python3'] }, { ...python, args: ['python3', '/usr/bin/dnf'] }];
    let seed = 5;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    let matched = 0;
    for (let i = 0; i < 400; i++) {
      const e = under(...Array.from({ length: random(9) }, () => pool[random(pool.length)]!));
      const ids = set.match(e).map((m) => m.rule.id);
      assert.ok(ids.length === 0 || ids.length === 2, JSON.stringify(e['hades']));
      if (ids.length === 2) matched++;
    }
    assert.ok(matched > 100 && matched < 390, `${matched} of 400 matched`);
  });
});

describe('rule language: macros and lists', () => {
  const text = `
lists:
  web_servers: [nginx, apache2, php-fpm8.2]
  downloaders: [curl, wget]
  web_ports: [80, 443]
macros:
  spawned_by_web: ancestor.name in web_servers
  downloader: process.name in downloaders
  web_download: downloader and spawned_by_web
rules:
  - id: web_download
    title: Download from a web server's child
    severity: high
    condition: event.action = exec and web_download
  - id: listed_in_parens
    title: Lists expand inside a literal list
    severity: low
    condition: process.name in (downloaders, lynx) and ancestor.name in (web_servers)
  - id: web_port
    title: Numbers from lists
    severity: low
    condition: event.action = connect and destination.port in web_ports
  - id: quoted_is_literal
    title: A quoted item is never a list
    severity: low
    condition: process.name in ("downloaders")
`;
  it('expands macros (nested) and lists', () => {
    const set = load(text);
    assert.deepEqual(
      set.match(exec).map((m) => m.rule.id),
      ['web_download', 'listed_in_parens'],
    );
    assert.deepEqual(
      set.match(connect).map((m) => m.rule.id),
      ['web_port'],
    );
    assert.deepEqual(set.match(ev('exec', { 'process.name': 'downloaders' })).map((m) => m.rule.id), ['quoted_is_literal']);
  });

  it('shares macros and lists between files', () => {
    const { ruleSet, problems } = loadRules([
      { name: 'base.yaml', text: 'lists:\n  shells: [sh, bash]\nmacros:\n  shell: process.name in shells\n' },
      { name: 'local.yaml', text: 'rules:\n  - id: r\n    title: T\n    severity: low\n    condition: shell\n' },
    ]);
    assert.deepEqual(problems, []);
    assert.equal(ruleSet.match(ev('exec', { 'process.name': 'bash' })).length, 1);
  });

  it('takes numbers in lists and exceptions as written (04755 is not 4755)', () => {
    const set = load(`
lists:
  setuid_modes: [04755, 06755]
rules:
  - id: setuid_chmod
    title: T
    severity: low
    condition: event.action = file_chmod and file.mode in setuid_modes
    exceptions:
      - field: file.mode
        values: [06755]
      - fields: [file.path, file.mode]
        values: [[/opt/app/helper, [04755, 0755]]]
`);
    const chmod = (mode: string, path = '/tmp/x') => set.match(ev('file_chmod', { 'file.mode': mode, 'file.path': path })).map((m) => m.rule.id);
    assert.deepEqual(chmod('04755'), ['setuid_chmod'], 'the list keeps the leading zero');
    assert.deepEqual(chmod('06755'), [], 'the exception keeps it too');
    assert.deepEqual(chmod('04755', '/opt/app/helper'), [], 'and so does a tuple exception');
    assert.deepEqual(chmod('4755'), []);
  });

  it('does not let a list of a folder read later rewrite a bare value of an earlier folder, and says so', () => {
    const pack = 'rules:\n  - id: web_recon\n    title: T\n    severity: low\n    condition: process.name in (ps, whoami) and process.parent.name in (web_servers)\n';
    const { ruleSet, problems } = loadRules([
      // The pack's own files share their lists in any order: rules/a.yaml uses rules/z.yaml's.
      { name: 'rules/a.yaml', text: pack },
      { name: 'rules/z.yaml', text: 'lists:\n  web_servers: [nginx, php-fpm8.2]\n' },
      { name: 'site/lists.yaml', text: 'lists:\n  ps: [ps-exporter]\nrules:\n  - id: exporter\n    title: T\n    severity: low\n    condition: process.name in (ps)\n' },
    ]);
    assert.deepEqual(
      problems.map((p) => [p.code, p.file, p.line]),
      [['HADES_ERR_RULE_LIST_LATER', 'rules/a.yaml', 5]],
    );
    assert.match(problems[0]!.message, /'ps' stays a value here: the list of that name is defined in site\/lists\.yaml/);
    const ids = (name: string) => ruleSet.match(ev('exec', { 'process.name': name, 'process.parent.name': 'php-fpm8.2' })).map((m) => m.rule.id);
    assert.deepEqual(ids('ps'), ['web_recon'], 'the pack still sees ps as ps');
    assert.deepEqual(ids('ps-exporter'), ['exporter'], 'the site\'s own rule uses its list');
  });
});

describe('rule language: exceptions', () => {
  const text = `
rules:
  - id: curl_run
    title: curl ran
    severity: medium
    condition: event.action = exec and process.name = curl
    exceptions:
      - name: package_managers
        field: process.parent.name
        values: [apt, dpkg]
      - name: known_fetches
        fields: [process.working_directory, process.command_line]
        operators: [startswith, contains]
        values:
          - [/opt/ci, "artifacts.example"]
          - [/srv, [mirror.example, cdn.example]]
`;
  it('suppresses matches by one field', () => {
    const set = load(text);
    assert.equal(set.match(exec).length, 1);
    assert.equal(set.match(ev('exec', { 'process.parent.name': 'apt' })).length, 0);
    assert.equal(set.stats().find((s) => s.id === 'curl_run')?.suppressed, 1);
  });

  it('suppresses matches by a combination of fields, each with its operator', () => {
    const set = load(text);
    assert.equal(set.match(ev('exec', { 'process.working_directory': '/opt/ci/job', 'process.command_line': 'curl https://artifacts.example/x' })).length, 0);
    assert.equal(set.match(ev('exec', { 'process.working_directory': '/opt/ci/job', 'process.command_line': 'curl https://evil.example/x' })).length, 1);
    assert.equal(set.match(ev('exec', { 'process.working_directory': '/tmp', 'process.command_line': 'curl https://artifacts.example/x' })).length, 1);
    assert.equal(set.match(ev('exec', { 'process.working_directory': '/srv/a', 'process.command_line': 'curl https://cdn.example/x' })).length, 0);
  });
});

describe('rule language: overrides', () => {
  const base = `
rules:
  - id: curl_run
    title: curl ran
    severity: medium
    tags: [attack.t1105]
    condition: event.action = exec and process.name = curl
    output: "curl by {process.user.name}"
    exceptions:
      - name: parents
        field: process.parent.name
        values: [apt]
`;
  const both = (override: string) => {
    const { ruleSet, problems } = loadRules([
      { name: 'base.yaml', text: base },
      { name: 'local.yaml', text: `rules:\n${override}` },
    ]);
    assert.deepEqual(problems.filter((p) => p.severity === 'error').map(formatProblem), []);
    return ruleSet;
  };

  it('appends to a condition (and), an output and tags', () => {
    const set = both(`  - override: curl_run\n    append:\n      condition: process.working_directory = /home\n      output: "in {process.working_directory}"\n      tags: [attack.command_and_control]\n`);
    assert.equal(set.match(exec).length, 0);
    const [m] = set.match(ev('exec', { 'process.working_directory': '/home' }));
    assert.equal(m?.output, 'curl by www-data in /home');
    assert.deepEqual(m?.tags, ['attack.t1105', 'attack.command_and_control']);
  });

  it('appends an output after the title of a rule that has none (the title was its text)', () => {
    const { ruleSet, problems } = loadRules([
      { name: 'base.yaml', text: 'rules:\n  - id: bare\n    title: "curl {ran}"\n    severity: low\n    condition: event.action = exec and process.name = curl\n' },
      { name: 'local.yaml', text: 'rules:\n  - override: bare\n    append:\n      output: "(host {host.name})"\n  - override: bare\n    append:\n      output: "by {process.user.name}"\n' },
    ]);
    assert.deepEqual(problems.filter((p) => p.severity === 'error').map(formatProblem), []);
    const [m] = ruleSet.match(ev('exec', { 'host.name': 'web-01' }));
    assert.equal(m?.output, 'curl {ran} (host web-01) by www-data');
  });

  it('replaces a condition, the severity and the output', () => {
    const set = both(`  - override: curl_run\n    replace:\n      condition: event.action = exec and process.name = wget\n      severity: critical\n      output: wget!\n`);
    assert.equal(set.match(exec).length, 0);
    const [m] = set.match(ev('exec', { 'process.name': 'wget' }));
    assert.equal(m?.severity, 'critical');
    assert.equal(m?.output, 'wget!');
  });

  it('disables a rule', () => {
    const set = both(`  - override: curl_run\n    replace:\n      enabled: false\n`);
    assert.equal(set.match(exec).length, 0);
    assert.equal(set.rule('curl_run')?.enabled, false);
    assert.equal(set.stats().find((s) => s.id === 'curl_run')?.evaluations, 0);
  });

  it('appends values to a named exception, and new exceptions', () => {
    const set = both(`  - override: curl_run\n    append:\n      exceptions:\n        - name: parents\n          values: [sh]\n        - field: process.user.name\n          values: [root]\n`);
    assert.equal(set.match(exec).length, 0, 'the parent sh is now excepted');
    assert.equal(set.match(ev('exec', { 'process.parent.name': 'apt' })).length, 0);
    assert.equal(set.match(ev('exec', { 'process.parent.name': 'bash', 'process.user.name': 'root' })).length, 0);
    assert.equal(set.match(ev('exec', { 'process.parent.name': 'bash' })).length, 1);
  });

  it('replaces exceptions', () => {
    const set = both(`  - override: curl_run\n    replace:\n      exceptions: []\n`);
    assert.equal(set.match(ev('exec', { 'process.parent.name': 'apt' })).length, 1);
  });
});

describe('rule language: output templates', () => {
  it('renders fields, arrays and <na> for missing fields', () => {
    const set = load(ruleYaml('process.name = curl', '    output: "{process.executable} by {process.parent.name} args={process.args} ancestors={ancestor.name} code={process.exit_code} {{literal}}"\n'));
    assert.equal(set.match(exec)[0]?.output, '/usr/bin/curl by sh args=curl -s http://203.0.113.7/x.sh ancestors=sh php-fpm8.2 systemd code=<na> {literal}');
  });

  it('renders the text after a bar for a field the event lacks, and the field where it has it', () => {
    const set = load(ruleYaml('process.name = curl', '    output: "code={process.exit_code|still running} name={process.name|none} empty={process.exit_code|}"\n'));
    assert.equal(set.match(exec)[0]?.output, 'code=still running name=curl empty=');
  });

  it('cuts a long value and a long text, saying how much was left out, never inside a surrogate pair', () => {
    const long = { ...exec, process: { ...(exec['process'] as object), command_line: `${'a'.repeat(1023)}\u{1F600}${'b'.repeat(5000)}` } };
    const one = load(ruleYaml('process.name = curl', '    output: "cmd={process.command_line} end"\n')).match(long)[0]?.output ?? '';
    assert.equal(one, `cmd=${'a'.repeat(1023)}…[5002 more] end`);
    const many = load(ruleYaml('process.name = curl', `    output: "${'{process.command_line} '.repeat(6)}"\n`)).match(long)[0]?.output ?? '';
    assert.ok(many.length < 4096 + 20, `${many.length} characters`);
    assert.match(many, /…\[\d+ more\]$/);
  });

  it('uses the title when there is no output', () => {
    assert.equal(load(ruleYaml('process.name = curl')).match(exec)[0]?.output, 'T');
  });
});

describe('rule set: indexing by action', () => {
  const text = `
rules:
  - id: on_exec
    title: exec rule
    severity: low
    condition: event.action = exec and process.name = curl
  - id: on_net
    title: network rule
    severity: low
    condition: event.action in (connect, accept) and destination.port = 80
  - id: on_dns
    title: inferred from its field
    severity: low
    condition: dns.question.name endswith .oast.fun
  - id: on_any
    title: any action
    severity: low
    condition: host.name = web-01
  - id: not_exec
    title: every action but exec
    severity: low
    condition: not event.action = exec and host.name = web-01
  - id: feeder
    title: evaluated, never alerts
    severity: low
    alert: false
    condition: event.action = exec
`;
  it('knows the actions of each rule', () => {
    const set = load(text);
    const actions = Object.fromEntries(set.rules.map((r) => [r.id, r.actions]));
    assert.deepEqual(actions['on_exec'], ['exec']);
    assert.deepEqual(actions['on_net'], ['accept', 'connect']);
    assert.deepEqual(actions['on_dns'], ['dns_query']);
    assert.equal(actions['on_any'], null);
    assert.ok(!actions['not_exec']?.includes('exec') && actions['not_exec']!.includes('connect'));
  });

  it('never evaluates a rule for events of other actions', () => {
    const set = load(text);
    for (let i = 0; i < 10; i++) set.match(connect);
    set.match(ev('dns_query'));
    set.match(exec);
    const evaluations = Object.fromEntries(set.stats().map((s) => [s.id, s.evaluations]));
    assert.equal(evaluations['on_exec'], 1);
    assert.equal(evaluations['on_net'], 10);
    assert.equal(evaluations['on_dns'], 1);
    assert.equal(evaluations['on_any'], 12);
    assert.equal(evaluations['not_exec'], 11);
    assert.equal(evaluations['feeder'], 1);
  });

  it('returns matches in definition order and no alert for alert: false', () => {
    const set = load(text);
    assert.deepEqual(
      set.match(exec).map((m) => m.rule.id),
      ['on_exec', 'on_any'],
    );
    assert.deepEqual(
      set.match(connect).map((m) => m.rule.id),
      ['on_net', 'on_any', 'not_exec'],
    );
  });

  it('evaluates rules of any action for an action it does not know', () => {
    const set = load(text);
    const odd = ev('exec', { 'event.action': 'future_action' });
    assert.deepEqual(
      set.match(odd).map((m) => m.rule.id),
      ['on_any'],
    );
  });
});

describe('rule set: indexes change the cost, never the result', () => {
  it('matches the same with and without the action and value indexes', () => {
    const tools = ['nc', 'socat', 'nmap', 'curl', 'wget', 'bash', 'sh', 'python3'];
    const text = `
lists:
  shells: [sh, bash]
rules:
${tools.map((t, i) => `  - id: tool_${i}\n    title: ${t}\n    severity: low\n    condition: event.action = exec and process.name = ${t} and process.pid > ${i * 10}\n`).join('')}
  - id: shells
    title: shells
    severity: low
    condition: process.name in shells and not process.user.name = root
  - id: ports
    title: ports
    severity: low
    condition: destination.port in (80, 4444) or destination.ip in_cidr 10.0.0.0/8
  - id: anything_www
    title: www
    severity: low
    condition: process.user.name = www-data
  - id: not_exec
    title: not exec
    severity: low
    condition: event.action != exec and host.name = web-01
`;
    const indexed = loadRules([{ name: 'a.yaml', text }]).ruleSet;
    const flat = loadRules([{ name: 'a.yaml', text }], { indexByAction: false }).ruleSet;
    let seed = 1;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const actions: EventAction[] = ['exec', 'connect', 'dns_query', 'fork', 'file_create'];
    let matched = 0;
    for (let i = 0; i < 2000; i++) {
      const action = actions[random(actions.length)]!;
      const set: Record<string, unknown> = { 'process.name': [...tools, 'ls'][random(tools.length + 1)], 'process.pid': random(100), 'process.user.name': ['root', 'www-data', 'alice'][random(3)] };
      if (action === 'connect') Object.assign(set, { 'destination.port': [80, 443, 4444][random(3)], 'destination.ip': ['10.1.1.1', '203.0.113.5'][random(2)] });
      const e = ev(action, set);
      const a = indexed.match(e).map((m) => m.rule.id);
      assert.deepEqual(a, flat.match(e).map((m) => m.rule.id));
      matched += a.length;
    }
    assert.ok(matched > 500);
    const total = (s: RuleSet) => s.stats().reduce((n, x) => n + x.evaluations, 0);
    assert.ok(total(indexed) * 3 < total(flat), 'the indexes save most evaluations');
  });

});

describe('rule set: robustness', () => {
  it('never throws on events that do not follow the schema', () => {
    const conditions = [
      'process.name = curl',
      'process.name i= CURL',
      'process.pid > 3',
      'process.args contains "-s"',
      'process.args[1] istartswith "-"',
      'process.executable glob "/usr/*"',
      'process.command_line matches "^c"',
      'destination.ip in_cidr 10.0.0.0/8',
      'ancestor.name in (sh, bash)',
      'any ancestor (name = sh and args[1] i= "-C" and not args contains x)',
      'not any ancestor (pid > 3 or executable matches "^/")',
      'hades.inventory.row.port > 3',
      'process.interactive = true',
      'process.parent exists',
    ];
    const text = `rules:\n${conditions.map((c, i) => `  - id: r${i}\n    title: T\n    severity: low\n    condition: ${JSON.stringify(c)}\n    output: "{process.name} {process.args} {ancestor.name} {destination.ip}"\n`).join('')}`;
    const set = load(text);
    const weird: unknown[] = [null, 7, 'x', true, [], [null, 1, 'a', { x: 1 }], { name: 1 }, { nested: { deep: [1] } }];
    const shapes: Record<string, unknown>[] = [{}, { event: null }, { event: { action: 7 } }, { event: { action: 'exec' }, process: null }];
    let seed = 3;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const paths = ['process', 'process.name', 'process.pid', 'process.args', 'process.executable', 'process.command_line', 'destination', 'destination.ip', 'hades', 'hades.ancestors', 'hades.inventory', 'process.parent', 'process.interactive', '@timestamp'];
    for (let i = 0; i < 500; i++) {
      const e = ev((['exec', 'connect', 'inventory_change'] as const)[random(3)]!);
      for (let k = random(4); k >= 0; k--) {
        const keys = paths[random(paths.length)]!.split('.');
        let node = e;
        for (const key of keys.slice(0, -1)) {
          if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
          node = node[key] as Record<string, unknown>;
        }
        node[keys.at(-1)!] = weird[random(weird.length)];
      }
      shapes.push(e);
    }
    for (const e of shapes) assert.doesNotThrow(() => set.match(e));
  });
});
