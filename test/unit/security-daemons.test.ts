/**
 * The audit and security daemons the agent protects: the shared list against the rule pack's,
 * the tracker fed by process records (exec, fork, exit, pid reuse, the bound), and the tamper
 * events built from kill records that reached one of them.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { checkEvent, type HadesEvent } from '../../src/common/events/index.js';
import { SECURITY_DAEMON_EXECUTABLES, SECURITY_DAEMON_NAMES } from '../../src/common/security-daemons.js';
import type { ExecRecord, ExitRecord, ForkRecord } from '../../src/agent/driver/records.js';
import { MissingField } from '../../src/agent/driver/records.js';
import { SecurityFlag, type KillRecord } from '../../src/agent/driver/security-records.js';
import { DAEMON_LINGER_MS, SecurityDaemons } from '../../src/agent/security-daemons.js';
import { SecurityEvents, Syscall } from '../../src/agent/security-events.js';
import { ProcessTree } from '../../src/agent/tree.js';
import { newBuilder, wire } from '../helpers/builder.js';
import { projectRoot } from '../helpers/generated-docs.js';

const TICK_NS = 1e7;

/** Process records as the decoder gives them, with the fields the tracker reads. */
const exec = (pid: number, comm: string, exe: string, start = pid): ExecRecord =>
  ({ type: 'exec', kind: 1, pid, tid: pid, ppid: 1, comm, exePath: exe, filename: exe, argv: [exe, '-n'], startNs: start * TICK_NS, missing: 0, flags: 0 }) as unknown as ExecRecord;
const fork = (parent: number, child: number, start = child): ForkRecord =>
  ({ type: 'fork', kind: 2, pid: parent, tid: parent, childPid: child, childStartNs: start * TICK_NS, comm: 'x', missing: 0, flags: 0 }) as unknown as ForkRecord;
const exit = (pid: number, start = pid, missing = 0): ExitRecord =>
  ({ type: 'exit', kind: 3, pid, tid: pid, startNs: start * TICK_NS, exitCode: 9, comm: 'x', missing, flags: 0 }) as unknown as ExitRecord;

function tracker(max = 8) {
  let now = 1_000_000;
  let changes = 0;
  const tree = new ProcessTree('h', 1024);
  const daemons = new SecurityDaemons(SECURITY_DAEMON_NAMES, SECURITY_DAEMON_EXECUTABLES, tree, max, () => changes++, () => now);
  return { daemons, tree, changes: () => changes, advance: (ms: number) => (now += ms) };
}

describe('security daemons: the shared list', () => {
  it('is the rule pack\'s security_daemons and security_daemon_executables lists', () => {
    const pack = parse(readFileSync(`${projectRoot}rules/evasion.yaml`, 'utf8')) as { lists: Record<string, string[]> };
    assert.deepEqual(pack.lists['security_daemons'], [...SECURITY_DAEMON_NAMES]);
    assert.deepEqual(pack.lists['security_daemon_executables'], [...SECURITY_DAEMON_EXECUTABLES]);
    // comm is cut at 15 characters: a longer name could never match.
    assert.deepEqual(SECURITY_DAEMON_NAMES.filter((n) => n.length > 15), []);
  });
});

describe('security daemons: the pids to protect', () => {
  it('takes a daemon by comm or by executable, not other programs', () => {
    const { daemons, changes } = tracker();
    daemons.observe(exec(812, 'auditd', '/tmp/x/auditd'));
    daemons.observe(exec(813, 'renamed', '/usr/sbin/auditd'));
    daemons.observe(exec(814, 'sleep', '/usr/bin/sleep'));
    daemons.observe(exec(815, 'wazuh-logcollec', '/var/ossec/bin/wazuh-logcollector'));
    assert.deepEqual(daemons.pids(), [812, 813, 815]);
    assert.equal(changes(), 3, 'no change for the sleep');
    assert.deepEqual({ name: daemons.target(813)?.name, executable: daemons.target(813)?.executable, entity: daemons.target(813)?.entityId }, { name: 'renamed', executable: '/usr/sbin/auditd', entity: 'h-813-813' });
    assert.equal(daemons.target(814), undefined);
  });

  it('takes the daemons the tree read from /proc, and not again when they are known', () => {
    const { daemons, tree, changes } = tracker();
    tree.exec(700, 1, 700 * TICK_NS, 'osqueryd', '/opt/osquery/bin/osqueryd', ['osqueryd']);
    tree.exec(701, 1, 701 * TICK_NS, 'bash', '/bin/bash', ['bash']);
    tree.exec(702, 1, 702 * TICK_NS, 'falco', '/usr/bin/falco', ['falco']);
    tree.exit(702);
    daemons.seed(tree.live());
    assert.deepEqual(daemons.pids(), [700]);
    daemons.seed(tree.live());
    assert.equal(changes(), 1);
  });

  it('follows a daemon that detaches by forking, and forgets a child that executes something else', () => {
    const { daemons } = tracker();
    daemons.observe(exec(900, 'auditd', '/usr/sbin/auditd'));
    daemons.observe(fork(900, 901));
    daemons.observe(exit(900));
    assert.deepEqual(daemons.pids(), [901]);
    assert.equal(daemons.target(901)?.name, 'auditd');
    daemons.observe(fork(901, 902));
    daemons.observe(exec(902, 'sedispatch', '/usr/sbin/sedispatch'));
    assert.deepEqual(daemons.pids(), [901]);
    assert.equal(daemons.target(902), undefined);
    // A fork by a process that is no daemon costs nothing and protects nothing.
    daemons.observe(fork(500, 501));
    assert.deepEqual(daemons.pids(), [901]);
  });

  it('lets an exited daemon go from the driver at once, and names it for a late kill record a while', () => {
    const { daemons, advance } = tracker();
    daemons.observe(exec(812, 'auditd', '/usr/sbin/auditd'));
    daemons.observe(exit(812));
    assert.deepEqual(daemons.pids(), []);
    assert.equal(daemons.target(812)?.name, 'auditd', 'SIGKILL: the exit record came first');
    advance(DAEMON_LINGER_MS + 1);
    assert.equal(daemons.target(812), undefined);
    daemons.sweep();
    assert.equal(daemons.stats.running, 0);
  });

  it('forgets an exited daemon as soon as its pid is reused', () => {
    const { daemons } = tracker();
    daemons.observe(exec(812, 'auditd', '/usr/sbin/auditd'));
    daemons.observe(exit(812));
    daemons.observe(fork(300, 812, 5000));
    assert.equal(daemons.target(812), undefined, 'a fork under the pid');
    daemons.observe(exec(813, 'auditd', '/usr/sbin/auditd'));
    daemons.observe(exit(813));
    daemons.observe(exec(813, 'sleep', '/usr/bin/sleep', 6000));
    assert.equal(daemons.target(813), undefined, 'an exec under the pid');
  });

  it('keeps a daemon whose pid an earlier process exited under (records out of order), and one whose exit gives no start', () => {
    const { daemons } = tracker();
    daemons.observe(exec(812, 'auditd', '/usr/sbin/auditd', 5000));
    daemons.observe(exit(812, 4000));
    assert.deepEqual(daemons.pids(), [812]);
    daemons.observe(exit(812, 0, MissingField.start));
    assert.deepEqual(daemons.pids(), []);
  });

  it('protects at most `max` at once, counts the others, and counts what the driver refused', () => {
    const { daemons } = tracker(2);
    for (const pid of [10, 11, 12]) daemons.observe(exec(pid, 'falco', '/usr/bin/falco'));
    assert.deepEqual(daemons.pids(), [10, 11]);
    assert.equal(daemons.stats.notProtected, 1);
    daemons.refused(11);
    daemons.refused(11);
    assert.deepEqual(daemons.pids(), [10]);
    assert.equal(daemons.stats.notProtected, 2);
    // The place 11 did not take goes to the next one; memory stays bounded whatever runs: at most 2 * max kept.
    for (let pid = 20; pid < 40; pid++) daemons.observe(exec(pid, 'falco', '/usr/bin/falco'));
    assert.deepEqual(daemons.pids(), [10, 20]);
    assert.equal(daemons.stats.running, 4);
    assert.equal(daemons.stats.notProtected, 2 + 19);
  });
});

describe('security daemons: tamper events of the signals they receive', () => {
  const kill = (spec: { syscall?: number; targetPid: number; targetTgid?: number; signal?: number; flags?: number; result?: number }): KillRecord =>
    ({
      type: 'kill',
      kind: 16,
      size: 112,
      ktimeNs: 5e9,
      pid: 4100,
      tid: 4100,
      flags: spec.flags ?? 0,
      missing: 0,
      startNs: 4100 * TICK_NS,
      cgroupId: 0,
      ppid: 4090,
      uid: 0,
      gid: 0,
      euid: 0,
      egid: 0,
      loginuid: 1000,
      comm: 'bash',
      result: spec.result ?? 0,
      syscall: spec.syscall ?? Syscall.kill,
      targetPid: spec.targetPid,
      targetTgid: spec.targetTgid ?? spec.targetPid,
      signal: spec.signal ?? 9,
    });

  function setup() {
    const builder = newBuilder();
    const { daemons } = tracker();
    daemons.observe(exec(812, 'auditd', '/usr/sbin/auditd'));
    const security = new SecurityEvents(builder, { protectedPaths: [], signalTarget: (pid) => (pid === 900 ? 'own' : daemons.target(pid)) });
    const tamper = (r: KillRecord) => security.build(r).map((e: HadesEvent) => {
      assert.equal(checkEvent(e).ok, true);
      return wire(e)['hades'].tamper as Record<string, unknown>;
    });
    return { security, tamper };
  }

  it('names the daemon as the target, and the sender as the process', () => {
    const { security } = setup();
    const [event] = security.build(kill({ targetPid: 812 })).map(wire);
    assert.equal(event?.['process'].pid, 4100);
    assert.equal(event?.['process'].name, 'bash');
    assert.deepEqual(event?.['hades'].tamper, {
      target: 'security_daemon',
      signal: 9,
      target_pid: 812,
      operation: 'kill',
      target_process: { pid: 812, entity_id: 'h-812-812', name: 'auditd', executable: '/usr/sbin/auditd', args: ['/usr/sbin/auditd', '-n'], command_line: '/usr/sbin/auditd -n' },
    });
    assert.equal(event?.['event'].outcome, 'success');
  });

  it('finds the daemon by tgkill\'s thread group and by kill(-pgid)\'s group', () => {
    const { tamper } = setup();
    assert.deepEqual(tamper(kill({ syscall: Syscall.tgkill, targetPid: 815, targetTgid: 812, signal: 19 })).map((t) => [t['target'], (t['target_process'] as { pid: number }).pid, t['signal']]), [['security_daemon', 812, 19]]);
    const group = tamper(kill({ targetPid: -812, flags: SecurityFlag.killGroup }));
    assert.deepEqual(group.map((t) => [t['target'], t['group'], t['target_pid'], (t['target_process'] as { pid: number }).pid]), [['security_daemon', true, undefined, 812]]);
  });

  it('keeps Hades\' own targets and kill(-1) as before, and drops a signal to a pid no longer watched', () => {
    const { security, tamper } = setup();
    assert.deepEqual(tamper(kill({ targetPid: 900, signal: 15 })), [{ target: 'process', signal: 15, target_pid: 900, operation: 'kill' }]);
    assert.deepEqual(tamper(kill({ targetPid: -1, flags: SecurityFlag.killBroadcast })), [{ target: 'process', signal: 9, operation: 'kill', broadcast: true }]);
    assert.deepEqual(security.build(kill({ targetPid: 4242 })), []);
    assert.equal(security.staleSignals, 1);
  });
});
