/**
 * `hades events` against the real kernel, as root: signals sent to audit and security daemons
 * become tamper events naming the sender. The daemons are copies of and links to sh and sleep
 * under a daemon's name in a temporary folder (the agent knows daemons by comm, which exec takes
 * from the file name): one running before the agent started (found in /proc), one started after
 * (its exec), and the forked child of one (how auditd detaches). Each sender is a child of this
 * test, so the events must name it, with this process in its ancestry.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { captureEvents, type AnyEvent, type Capture } from '../helpers/events-session.js';
import { runChild, type ChildRun } from '../helpers/security-helpers.js';

const skip = process.getuid?.() !== 0 && 'kernel events need root';

/** A daemon's process: spawned, with its exit awaited when the test is done with it. */
interface Daemon {
  readonly child: ChildProcess;
  readonly closed: Promise<unknown>;
}

function start(program: string, args: readonly string[]): Daemon {
  // fd 3 a pipe the test holds: the forked subshell blocks reading it, and ends at its end. Not
  // stdin: Node closes a child's stdin when the child exits, which would end the forked
  // subshell as soon as its parent is killed, before the signal meant for it.
  const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'ignore', 'pipe'] });
  return { child, closed: new Promise((resolve) => child.on('exit', resolve)) };
}

/** The first line the process writes (the pid of its forked child). */
function firstLine(d: Daemon): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    d.child.stdout?.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      if (out.includes('\n')) resolve(out.split('\n')[0] ?? '');
    });
    d.child.on('exit', () => reject(new Error('the daemon exited before it wrote its child\'s pid')));
  });
}

/**
 * The daemon started under the agent: a subshell forked and left running, its pid printed. It
 * reads the test's pipe, fd 3 (a background job's own stdin is /dev/null).
 */
const LATE_SCRIPT = '( read line <&3; : ) & echo $!; wait';

const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('hades events: signals to audit and security daemons', { skip }, () => {
  let dir = '';
  let capture: Capture;
  const daemons: Daemon[] = [];
  const pids: Record<string, number> = {};
  const pid = (key: string): number => {
    const value = pids[key];
    assert.ok(value, `no pid for ${key}`);
    return value;
  };
  const runs: Record<string, ChildRun> = {};
  let auditd = '';

  before(async () => {
    dir = realpathSync(mkdtempSync('/tmp/hades-daemons-'));
    // A copy of sh called auditd, and sleep linked under the name falco (exec takes the comm from the link's name).
    auditd = path.join(dir, 'auditd');
    copyFileSync('/bin/sh', auditd);
    chmodSync(auditd, 0o755);
    const falco = path.join(dir, 'falco');
    symlinkSync('/bin/sleep', falco);
    const plain = path.join(dir, 'plain');
    symlinkSync('/bin/sleep', plain);

    // Running before the agent starts: found in /proc.
    const early = start(falco, ['60']);
    daemons.push(early);
    pids['early'] = early.child.pid ?? 0;
    await settle(100);

    capture = await captureEvents(['--action', 'exec,exit,tamper', '--stats'], async (_hades, output) => {
      // Started under the agent: its exec. It forks a subshell that stays sh, as a daemon
      // detaching does (read is built in: nothing is executed), and prints its pid.
      const late = start(auditd, ['-c', LATE_SCRIPT]);
      daemons.push(late);
      pids['late'] = late.child.pid ?? 0;
      pids['forked'] = Number(await firstLine(late));
      const other = start(plain, ['60']);
      daemons.push(other);
      pids['plain'] = other.child.pid ?? 0;
      // The agent registers a daemon when it has handled its exec record, and the forked child
      // at its fork record; the driver's map of protected pids is updated after that, later on a
      // loaded machine. A SIGCONT to the forked child (running: it changes nothing) until one is
      // reported says the update is in, for it and for the daemons registered before it.
      const probed = (line: string) => line.includes('"action":"tamper"') && line.includes(`"target_pid":${pids['forked']},`);
      for (let waited = 0; !output().split('\n').some(probed) && waited < 20_000; waited += 100) {
        await runChild('/bin/sh', ['-c', 'kill -s CONT "$1"', 'sh', String(pids['forked'])]);
        await settle(100);
      }
      const send = (key: string, signal: string, target: number) => runChild('/bin/sh', ['-c', 'kill -s "$1" "$2"', 'sh', signal, String(target)]).then((r) => (runs[key] = r));
      await send('stopEarly', 'STOP', pid('early'));
      await send('contEarly', 'CONT', pid('early'));
      await send('killLate', 'KILL', pid('late'));
      // Its parent gone, the forked child is still a daemon.
      await send('termForked', 'TERM', pid('forked'));
      await send('killPlain', 'KILL', pid('plain'));
      await send('killEarly', 'KILL', pid('early'));
      await Promise.all(daemons.map((d) => d.closed));
      await settle(200);
    });
  });

  after(async () => {
    for (const d of daemons) {
      (d.child.stdio[3] as Writable | null | undefined)?.end();
      if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGKILL');
    }
    await Promise.all(daemons.map((d) => d.closed));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const tampers = (key: string): AnyEvent[] => {
    const r = runs[key];
    assert.ok(r, `${key} did not run`);
    assert.equal(r.status, 0, `${key}: ${r.stderr}`);
    return capture.events.filter((e) => e['event'].action === 'tamper' && e['process']?.pid === r.pid);
  };

  it('prints only events that match the schema and stops cleanly', () => {
    assert.deepEqual(capture.invalid, []);
    assert.equal(capture.status, 0, capture.stderr);
  });

  it('SIGKILL to a daemon started under the agent: the sender, its ancestry and the daemon', () => {
    const [event, ...more] = tampers('killLate');
    assert.equal(more.length, 0);
    assert.ok(event);
    assert.deepEqual(event['hades'].tamper, {
      target: 'security_daemon',
      signal: 9,
      target_pid: pid('late'),
      operation: 'kill',
      target_process: {
        pid: pid('late'),
        entity_id: event['hades'].tamper.target_process.entity_id,
        name: 'auditd',
        executable: auditd,
        args: [auditd, '-c', LATE_SCRIPT],
        command_line: `${auditd} -c ${LATE_SCRIPT}`,
      },
    });
    // The sender: the shell this test started, under this test's process.
    assert.equal(event['process'].name, 'sh');
    assert.equal(event['process'].parent.pid, process.pid);
    assert.equal(event['hades'].ancestors[0].pid, process.pid);
    assert.equal(event['event'].outcome, 'success');
    // The same process as the daemon's exec event.
    const exec = capture.events.find((e) => e['event'].action === 'exec' && e['process'].pid === pid('late'));
    assert.equal(event['hades'].tamper.target_process.entity_id, exec?.['process'].entity_id);
  });

  it('SIGTERM to the forked child of a daemon, which never executed anything', () => {
    assert.deepEqual(
      tampers('termForked').map((e) => [e['hades'].tamper.target, e['hades'].tamper.signal, e['hades'].tamper.target_process.pid, e['hades'].tamper.target_process.name]),
      [['security_daemon', 15, pid('forked'), 'auditd']],
    );
  });

  it('SIGSTOP, SIGCONT and SIGKILL to a daemon that was running before the agent started', () => {
    const targets = [...tampers('stopEarly'), ...tampers('contEarly'), ...tampers('killEarly')];
    assert.deepEqual(
      targets.map((e) => [e['hades'].tamper.signal, e['hades'].tamper.target_process.pid, e['hades'].tamper.target_process.name, e['hades'].tamper.target_process.executable]),
      [19, 18, 9].map((signal) => [signal, pid('early'), 'falco', realpathSync('/bin/sleep')]),
    );
  });

  it('no event for a signal to a process that is no daemon', () => {
    assert.deepEqual(tampers('killPlain'), []);
  });

  it('counts the daemons in --stats, none left out', () => {
    const stats = JSON.parse(capture.stderr.split('\n').find((l) => l.startsWith('{"stats"')) ?? '{}') as { stats?: { agent?: { securityDaemons?: Record<string, number> } } };
    const counted = stats.stats?.agent?.securityDaemons;
    assert.ok(counted, capture.stderr);
    assert.ok((counted['seen'] ?? 0) >= 3, JSON.stringify(counted));
    assert.equal(counted['notProtected'], 0);
    assert.equal(counted['running'], 0, 'every daemon exited');
  });
});
