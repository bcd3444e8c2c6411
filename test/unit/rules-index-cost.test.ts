/**
 * What the index costs, with the default pack and every Sigma rule of third_party/sigma loaded
 * together (as the server and bench/detection-engine.ts load them): the rules evaluated for
 * benign events of each action the pack handles stay few, and the rules evaluated on EVERY exec
 * event (filed under no value the index reads) are a reviewed list kept here.
 *
 * Which source a rule is indexed on is chosen by a cost model over the whole rule set, so one
 * term added to one rule can push another rule out of the index: once, a `process.args
 * startswith ("UUID=", ...)` term in the container mount rule left
 * `mining_pool_url_in_command_line` evaluated on every exec, and only the throughput bench
 * showed it. Here such a change fails in seconds and
 * names the rules that moved. When the change is deliberate, update EVERY_EXEC or the bound,
 * and say why in the commit.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { checkEvent } from '../../src/common/events/index.js';
import { formatProblem, loadRules, type RuleInfo, type RuleSet } from '../../src/rules/index.js';
import { convertSigma } from '../../src/rules/sigma/index.js';
import { readDefaultPack } from '../../src/runtime/rule-pack.js';
import { sigmaFiles } from '../helpers/sigma-files.js';

/**
 * The rules evaluated on every exec event, reviewed: none (the pipeline correlation rules are
 * found by a pipe on the standard input or output, or by the programs' names). Each one here
 * would cost on every exec of the fleet; a rule joins this list only on purpose.
 */
const EVERY_EXEC: string[] = [];

/**
 * The rules found by value on every benign exec event below, reviewed: filed under a value
 * nearly every exec holds, they cost as much as EVERY_EXEC. None: a one-character string (the
 * `-` of an option) is as wide as every event to the index's cost model.
 */
const EVERY_BENIGN_EXEC_BY_VALUE: string[] = [];

// ----- benign events, shaped as the agent sends them -----

const HOST = { name: 'web-014', hostname: 'web-014', architecture: 'x64', os: { type: 'linux', kernel: '6.1.0-28-amd64' } };
const AGENT = { id: 'ag_5f0c2d4e9a1b3c7d', version: '0.1.0', type: 'hades' };
let sequence = 5000;

type Ancestor = readonly [pid: number, name: string, executable: string, args: readonly string[]];
const systemd: Ancestor = [1, 'systemd', '/usr/lib/systemd/systemd', ['/sbin/init']];
const sshSession: readonly Ancestor[] = [
  [30410, 'bash', '/usr/bin/bash', ['-bash']],
  [30402, 'sshd', '/usr/sbin/sshd', ['sshd: alice@pts/0']],
  [30390, 'sshd', '/usr/sbin/sshd', ['sshd: alice [priv]']],
  [780, 'sshd', '/usr/sbin/sshd', ['/usr/sbin/sshd', '-D']],
  systemd,
];
const cronJob: readonly Ancestor[] = [[21200, 'cron', '/usr/sbin/cron', ['/usr/sbin/cron', '-f']], systemd];
const ciBuild: readonly Ancestor[] = [
  [41020, 'sh', '/usr/bin/dash', ['sh', '-c', 'npm ci && npm test']],
  [40990, 'java', '/usr/lib/jvm/java-17-openjdk-amd64/bin/java', ['java', '-jar', '/usr/share/jenkins/agent.jar']],
  systemd,
];

function base(action: string, category: string[], type: string[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { '@timestamp': '2026-11-30T10:00:00.000Z', event: { id: `01JDQ7Z3M4S9W2R8K5${String(++sequence).padStart(8, '0')}`, kind: 'event', category, type, action, sequence, ...extra }, host: HOST, agent: AGENT };
}

interface Proc {
  readonly pid: number;
  readonly name: string;
  readonly executable: string;
  readonly args: readonly string[];
  readonly user?: string;
  readonly cwd?: string;
  readonly lineage: readonly Ancestor[];
  readonly tty?: boolean;
}

const uid: Record<string, string> = { root: '0', alice: '1000', 'www-data': '33', jenkins: '112', app: '999' };

function processOf(p: Proc): Record<string, unknown> {
  const user = { id: uid[p.user ?? 'root']!, name: p.user ?? 'root' };
  const [ppid, pname, pexe, pargs] = p.lineage[0]!;
  return {
    pid: p.pid,
    entity_id: `web-014:${p.pid}:1764496800000`,
    name: p.name,
    executable: p.executable,
    args: [...p.args],
    command_line: p.args.join(' '),
    working_directory: p.cwd ?? '/',
    user,
    group: { id: user.id, name: user.name },
    parent: { pid: ppid, entity_id: `web-014:${ppid}:1764496700000`, name: pname, executable: pexe, args: [...pargs] },
    args_count: p.args.length,
    start: '2026-11-30T10:00:00.000Z',
  };
}

function hadesOf(p: Proc): Record<string, unknown> {
  const ancestors = p.lineage.map(([pid, name, executable, args]) => ({ pid, entity_id: `web-014:${pid}:1764496700000`, name, executable, args: [...args], args_truncated: false }));
  const stdio = p.tty === true ? { stdin: { type: 'tty' }, stdout: { type: 'tty' } } : { stdin: { type: 'char_device' }, stdout: { type: 'pipe' } };
  return {
    backend: 'ebpf',
    ancestors,
    ancestry: [`${p.name}(${p.pid})`, ...p.lineage.map(([pid, name]) => `${name}(${pid})`)].join(' < '),
    process: { stdio, args_truncated: false, ...(p.tty === true ? { tty: 'pts/0' } : {}) },
  };
}

function exec(p: Proc): Record<string, unknown> {
  return { ...base('exec', ['process'], ['start']), process: processOf(p), hades: hadesOf(p) };
}

const ls: Proc = { pid: 30455, name: 'ls', executable: '/usr/bin/ls', args: ['ls', '-la', '/var/www'], user: 'alice', cwd: '/home/alice', lineage: sshSession, tty: true };
const gitFetch: Proc = { pid: 30460, name: 'git', executable: '/usr/bin/git', args: ['git', 'fetch', '--quiet', 'origin'], user: 'alice', cwd: '/home/alice/src/app', lineage: sshSession, tty: true };
const npmCi: Proc = { pid: 41030, name: 'node', executable: '/usr/bin/node', args: ['node', '/usr/lib/node_modules/npm/bin/npm-cli.js', 'ci'], user: 'jenkins', cwd: '/var/lib/jenkins/workspace/app', lineage: ciBuild };
const cronShell: Proc = { pid: 21230, name: 'sh', executable: '/usr/bin/dash', args: ['/bin/sh', '-c', 'test -x /usr/sbin/anacron || ( cd / && run-parts --report /etc/cron.daily )'], lineage: cronJob };
const systemctl: Proc = { pid: 21240, name: 'systemctl', executable: '/usr/bin/systemctl', args: ['systemctl', 'is-active', 'nginx'], lineage: [[21230, 'sh', '/usr/bin/dash', ['/bin/sh', '-c', '/opt/monitor/collect.sh']], ...cronJob] };
const python: Proc = { pid: 21250, name: 'python3', executable: '/usr/bin/python3.11', args: ['python3', '/opt/monitor/probe.py', '--json'], user: 'app', cwd: '/opt/monitor', lineage: cronJob };
const app: Proc = { pid: 1500, name: 'node', executable: '/usr/bin/node', args: ['node', '/srv/app/server.js'], user: 'app', cwd: '/srv/app', lineage: [systemd] };
const sshd: Proc = { pid: 780, name: 'sshd', executable: '/usr/sbin/sshd', args: ['/usr/sbin/sshd', '-D'], lineage: [systemd] };

/**
 * Benign events of each action the pack handles in volume (the rarer ones, module loads or
 * tampering, cost nothing to speak of), each with the most rules it may have evaluated
 * (EVERY_EXEC included): the count with the pack of 2026-11-30 (138 rules) and the 188 Sigma
 * rules, plus three (at least 3): room for a few new rules found by value, not for a handful
 * come loose.
 */
function benignEvents(): [label: string, event: Record<string, unknown>, bound: number][] {
  return [
    ['exec of /usr/bin/ls by bash under sshd', exec(ls), 10],
    ['exec of git fetch in an SSH session', exec(gitFetch), 10],
    ['exec of npm ci under a CI agent', exec(npmCi), 9],
    ['exec of a cron shell running run-parts', exec(cronShell), 19],
    ['exec of systemctl is-active by a monitoring script', exec(systemctl), 17],
    ['exec of a python probe under cron', exec(python), 11],
    ['fork of bash', { ...base('fork', ['process'], ['start']), process: { pid: 30455, entity_id: 'web-014:30455:1764496800000', name: 'bash', parent: { pid: 30410, entity_id: 'web-014:30410:1764496700000' } } }, 3],
    ['exit of ls', { ...base('exit', ['process'], ['end']), process: { pid: 30455, entity_id: 'web-014:30455:1764496800000', name: 'ls', exit_code: 0, end: '2026-11-30T10:00:00.020Z' } }, 3],
    ['connect of the app to PostgreSQL on a private address', { ...base('connect', ['network'], ['connection'], { outcome: 'success' }), process: processOf(app), source: { ip: '10.0.0.5', port: 41822 }, destination: { ip: '10.0.0.8', port: 5432 }, network: { transport: 'tcp', type: 'ipv4', direction: 'egress' } }, 9],
    ['accept of an SSH connection from the bastion', { ...base('accept', ['network'], ['connection']), process: processOf(sshd), source: { ip: '10.0.1.20', port: 50022 }, destination: { ip: '10.0.0.5', port: 22 }, network: { transport: 'tcp', type: 'ipv4', direction: 'ingress' } }, 3],
    ['DNS query of the npm registry', { ...base('dns_query', ['network'], ['protocol']), process: processOf(npmCi), destination: { ip: '127.0.0.53', port: 53 }, network: { transport: 'udp', type: 'ipv4', protocol: 'dns' }, dns: { id: 4711, type: 'query', question: { name: 'registry.npmjs.org', type: 'A', class: 'IN' } } }, 10],
    ['file_create of an object file in a build tree', { ...base('file_create', ['file'], ['creation']), process: processOf(npmCi), file: { path: '/tmp/build/obj/main.o', name: 'main.o', directory: '/tmp/build/obj', mode: '0644' }, hades: { file: { executable: false, watch: '/tmp' } } }, 8],
    ['file_rename of an upload into place', { ...base('file_rename', ['file'], ['change']), process: processOf(app), file: { path: '/srv/app/uploads/a.png', name: 'a.png', directory: '/srv/app/uploads' }, hades: { file: { old_path: '/srv/app/uploads/.a.png.part', watch: '/srv/app' } } }, 3],
    ['file_delete of a lock file', { ...base('file_delete', ['file'], ['deletion']), process: processOf(app), file: { path: '/tmp/app.lock', name: 'app.lock', directory: '/tmp' }, hades: { file: { syscall: 'unlinkat' } } }, 3],
    ['file_chmod of a release script', { ...base('file_chmod', ['file'], ['change']), process: processOf(npmCi), file: { path: '/srv/app/bin/run', name: 'run', directory: '/srv/app/bin', mode: '0755' }, hades: { file: { old_mode: '0644', made_executable: true } } }, 3],
    ['file_open of /etc/shadow by sshd', { ...base('file_open', ['file'], ['access']), process: processOf(sshd), file: { path: '/etc/shadow', name: 'shadow', directory: '/etc', inode: 1837, mode: '0640' }, hades: { file: { syscall: 'openat', sensitive: '/etc/shadow', access: 'read' } } }, 6],
    ['ssh_login of alice by public key', { ...base('ssh_login', ['authentication', 'session'], ['start'], { outcome: 'success' }), source: { ip: '10.0.1.20', port: 50022 }, user: { name: 'alice' }, hades: { ssh: { method: 'publickey', invalid_user: false }, log: { source: 'journal', program: 'sshd', pid: 30390, message: 'Accepted publickey for alice from 10.0.1.20 port 50022 ssh2' } } }, 3],
    ['sudo systemctl reload nginx', { ...base('sudo', ['process', 'authentication'], ['start'], { outcome: 'success' }), user: { name: 'alice', target: { name: 'root' } }, hades: { sudo: { command: '/usr/bin/systemctl reload nginx', tty: 'pts/0', working_directory: '/home/alice' }, log: { source: 'file', file: '/var/log/auth.log', program: 'sudo', pid: 30470, message: 'alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/systemctl reload nginx' } } }, 3],
    ['privilege_change of sshd dropping to alice', { ...base('privilege_change', ['process'], ['change']), process: processOf(sshd), hades: { privilege: { call: 'setuid', before: { uid: 0, gid: 0, euid: 0, egid: 0 }, after: { uid: 1000, gid: 1000, euid: 1000, egid: 1000 } } } }, 3],
    ['process_rename of node to npm', { ...base('process_rename', ['process'], ['change']), process: { ...processOf(npmCi), name: 'npm ci' }, hades: { rename: { old_name: 'node' } } }, 3],
  ];
}

const actionOf = (e: Record<string, unknown>) => (e['event'] as { action: string }).action;
const describeRule = (r: RuleInfo) => `${r.id} (${r.file}:${r.line})`;

describe('rule index: rules evaluated per benign event (default pack and Sigma)', () => {
  let ruleSet: RuleSet;
  const events = benignEvents();

  before(async () => {
    const sigma = convertSigma(sigmaFiles());
    const loaded = loadRules([...(await readDefaultPack()), ...sigma.files], { samples: false });
    assert.deepEqual(loaded.problems.filter((p) => p.severity === 'error').map(formatProblem), []);
    ruleSet = loaded.ruleSet;
  });

  it('builds events that follow the schema', () => {
    for (const [label, e] of events) {
      const check = checkEvent(e);
      assert.ok(check.ok, `${label}: ${JSON.stringify(check)}`);
    }
  });

  it('evaluates exactly the reviewed rules on every exec event', () => {
    const now = ruleSet.unindexed('exec');
    const ids = now.map((r) => r.id);
    const added = now.filter((r) => !EVERY_EXEC.includes(r.id));
    const gone = EVERY_EXEC.filter((id) => !ids.includes(id));
    assert.ok(
      added.length === 0 && gone.length === 0,
      'the rules the index evaluates on every exec event changed (the index chooses its sources by a cost model over all the rules, so an edit to one rule can move another):\n' +
        (added.length > 0 ? `  now on every exec: ${added.map(describeRule).join(', ')}\n` : '') +
        (gone.length > 0 ? `  no longer on every exec: ${gone.join(', ')}\n` : '') +
        'Find the edit that moved them (bench/detection-engine.ts measures the cost); if the change is deliberate, update EVERY_EXEC in test/unit/rules-index-cost.test.ts.',
    );
    // Every exec event indeed has them evaluated.
    for (const [label, e] of events.filter(([, e]) => actionOf(e) === 'exec')) {
      const candidates = ruleSet.candidates(e).map((r) => r.id);
      const missing = EVERY_EXEC.filter((id) => !candidates.includes(id));
      assert.deepEqual(missing, [], label);
    }
  });

  it('finds by value on every benign exec only the reviewed rules', () => {
    const every = new Set(ruleSet.unindexed('exec').map((r) => r.id));
    const lists = events.filter(([, e]) => actionOf(e) === 'exec').map(([, e]) => ruleSet.candidates(e));
    const common = lists[0]!.filter((r) => !every.has(r.id) && lists.every((l) => l.some((x) => x.id === r.id)));
    const added = common.filter((r) => !EVERY_BENIGN_EXEC_BY_VALUE.includes(r.id));
    const gone = EVERY_BENIGN_EXEC_BY_VALUE.filter((id) => !common.some((r) => r.id === id));
    assert.ok(
      added.length === 0 && gone.length === 0,
      'the rules found by value on every benign exec event changed (filed under a value, such as a one-character string, that nearly every exec holds):\n' +
        (added.length > 0 ? `  now on every benign exec: ${added.map(describeRule).join(', ')}\n` : '') +
        (gone.length > 0 ? `  no longer on every benign exec: ${gone.join(', ')}\n` : '') +
        'If the change is deliberate, update EVERY_BENIGN_EXEC_BY_VALUE in test/unit/rules-index-cost.test.ts.',
    );
  });

  it('evaluates few rules on benign events of each action', () => {
    const over: string[] = [];
    for (const [label, e, bound] of events) {
      const action = actionOf(e);
      const candidates = ruleSet.candidates(e);
      if (candidates.length <= bound) continue;
      const every = new Set(ruleSet.unindexed(action).map((r) => r.id));
      const found = candidates.filter((r) => !every.has(r.id));
      over.push(
        `${label}: ${candidates.length} rules evaluated, more than ${bound}; on every ${action} event: ${[...every].join(', ') || 'none'}; found by value: ${found.map(describeRule).join(', ') || 'none'}`,
      );
    }
    assert.deepEqual(over, [], 'benign events reach more rules than the bound (see the rules named; raise an event’s bound in benignEvents only on purpose)');
  });

  it('matches no rule on these benign events, and evaluates exactly the candidates', () => {
    for (const [label, e] of events) {
      const before = new Map(ruleSet.stats().map((s) => [s.id, s.evaluations]));
      const candidates = ruleSet.candidates(e).map((r) => r.id);
      assert.deepEqual(ruleSet.match(e).map((m) => m.rule.id), [], label);
      const evaluated = ruleSet.stats().filter((s) => s.evaluations > before.get(s.id)!);
      assert.deepEqual(evaluated.map((s) => s.id).sort(), [...candidates].sort(), label);
    }
  });
});

describe('rule index: candidates() and unindexed() tell what match() evaluates', () => {
  const text = `rules:
  - id: by_name
    title: by name
    severity: low
    condition: event.action = exec and process.name = curl
    output: x
  - id: by_string
    title: by string
    severity: low
    condition: event.action = exec and process.command_line contains "| sh"
    output: x
  - id: no_key
    title: no key
    severity: low
    condition: event.action = exec and process.args_count > 40
    output: x
  - id: any_action
    title: any action
    severity: low
    condition: process.pid = 4242
    output: x
  - id: on_dns
    title: on dns
    severity: low
    condition: event.action = dns_query and dns.question.name endswith ".oast.fun"
    output: x
  - id: burst
    title: burst
    type: threshold
    severity: low
    condition: event.action = exec and process.name = curl
    count: 3
    within: 1m
    by: host.name
    output: x
`;
  const e = (action: string, fields: Record<string, unknown>) => ({ '@timestamp': '2026-11-30T10:00:00.000Z', event: { action }, host: { name: 'h' }, ...fields });
  const ids = (rules: readonly RuleInfo[]) => rules.map((r) => r.id);

  it('lists the rules the indexes select, in definition order, and those on every event of an action', () => {
    const { ruleSet, problems } = loadRules([{ name: 't.yaml', text }]);
    assert.deepEqual(problems.map(formatProblem), []);
    // One string to search for costs more than the one rule it would spare (the cost model
    // leaves by_string and on_dns on every event of their action); any_action is filed by pid.
    assert.deepEqual(ids(ruleSet.unindexed('exec')), ['by_string', 'no_key']);
    assert.deepEqual(ids(ruleSet.unindexed('dns_query')), ['on_dns']);
    assert.deepEqual(ids(ruleSet.unindexed('fork')), []);
    assert.deepEqual(ids(ruleSet.candidates(e('exec', { process: { name: 'curl', command_line: 'curl -s x | sh' } }))), ['by_name', 'by_string', 'no_key', 'burst']);
    assert.deepEqual(ids(ruleSet.candidates(e('exec', { process: { pid: 4242, name: 'ls', command_line: 'ls' } }))), ['by_string', 'no_key', 'any_action']);
    // An action no rule names gets the rules for any action.
    assert.deepEqual(ids(ruleSet.candidates(e('fork', { process: { pid: 4242 } }))), ['any_action']);
    assert.deepEqual(ids(ruleSet.candidates(e('fork', { process: { pid: 7 } }))), []);
    // Without the index, every rule on every event.
    const flat = loadRules([{ name: 't.yaml', text }], { indexByAction: false }).ruleSet;
    assert.equal(flat.unindexed('exec').length, 6);
    assert.equal(flat.candidates(e('fork', {})).length, 6);
  });

  it('evaluates nothing and changes no counter; match() evaluates exactly the candidates', () => {
    const { ruleSet } = loadRules([{ name: 't.yaml', text }]);
    const events = [
      e('exec', { process: { pid: 4242, name: 'curl', args_count: 2, command_line: 'curl -s x | sh' } }),
      e('exec', { process: { name: 'ls', command_line: 'ls -la' } }),
      e('dns_query', { dns: { question: { name: 'x.oast.fun' } } }),
      e('fork', { process: { pid: 7 } }),
    ];
    for (const event of events) {
      const before = new Map(ruleSet.stats().map((s) => [s.id, s.evaluations]));
      const candidates = ids(ruleSet.candidates(event));
      assert.deepEqual(new Map(ruleSet.stats().map((s) => [s.id, s.evaluations])), before);
      ruleSet.match(event);
      const evaluated = ruleSet
        .stats()
        .filter((s) => s.evaluations > before.get(s.id)!)
        .map((s) => s.id);
      assert.deepEqual([...evaluated].sort(), [...candidates].sort(), JSON.stringify(event));
    }
    assert.equal(ruleSet.correlationStats().keys, 1);
  });
});
