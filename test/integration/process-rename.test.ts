/**
 * `hades events` against the real kernel, as root: a program that renames itself after exec
 * (prctl PR_SET_NAME, a write to /proc/self/comm) to look like a kernel thread is a
 * process_rename event named as it now is, the default pack's rule fires on it, and the process
 * is known by its new name from then on; a thread naming itself and exec's own rename are not
 * events.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { captureEvents, type AnyEvent, type Capture } from '../helpers/events-session.js';
import { actionsOf, assertActor, python3, runChild, type ChildRun } from '../helpers/security-helpers.js';
import { loadRules } from '../../src/rules/index.js';
import { readDefaultPack } from '../../src/runtime/rule-pack.js';
import type { HadesEvent } from '../../src/common/events/index.js';

const isRoot = process.getuid?.() === 0;
const skip = !isRoot && 'kernel events need root';

/** prctl(PR_SET_NAME, argv[1]); a thread names itself; then a child is started and waited for. */
const PRCTL_PY = String.raw`
import ctypes, subprocess, sys, threading
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(15, sys.argv[1].encode(), 0, 0, 0) == 0, ctypes.get_errno()
t = threading.Thread(target=lambda: libc.prctl(15, b"hx-worker", 0, 0, 0))
t.start()
t.join()
subprocess.run(["/bin/true", "child-of-renamed"])
`;

/** Writes argv[1] to /proc/self/comm. */
const PROC_COMM_PY = String.raw`
import sys
with open("/proc/self/comm", "w") as f:
    f.write(sys.argv[1])
`;

describe('hades events: process_rename from the real kernel', { skip }, () => {
  let capture: Capture;
  let prctl: ChildRun;
  let procComm: ChildRun;
  let plain: ChildRun;
  let burst: ChildRun;
  let exitBurst: ChildRun;

  before(async () => {
    capture = await captureEvents([], async () => {
      prctl = await runChild(python3, ['-c', PRCTL_PY, 'kworker/0:1H']);
      procComm = await runChild(python3, ['-c', PROC_COMM_PY, 'ksoftirqd/7']);
      // A rename to an ordinary name: an event, and no alert.
      plain = await runChild(python3, ['-c', PROC_COMM_PY, 'hx-plain-name']);
      exitBurst = await runChild(python3, ['-c', EXIT_BURST_PY]);
      burst = await runChild(python3, ['-c', BURST_PY]);
    });
  });

  const renamesOf = (run: ChildRun) => actionsOf(capture.events, 'process_rename', run.pid);

  it('reports prctl(PR_SET_NAME) with the new name, the old one and the acting process, and nothing for a thread', () => {
    assert.equal(prctl.status, 0, prctl.stderr);
    assert.deepEqual(capture.invalid, []);
    const renames = renamesOf(prctl);
    assert.equal(renames.length, 1, JSON.stringify(renames));
    const e = renames[0] as AnyEvent;
    assertActor(capture.events, e, prctl.pid, { ancestorPid: process.pid });
    assert.equal(e['process'].name, 'kworker/0:1H');
    assert.equal(e['hades'].rename.old_name, 'python3');
    assert.match(e['process'].executable, /python3/);
    assert.equal(e['process'].args[0], python3);
    assert.deepEqual([e['event'].category, e['event'].type], [['process'], ['change']]);
    // exec's own rename (to python3) is no event: the exec names the process.
    assert.equal(capture.events.filter((x) => x['event'].action === 'process_rename' && x['process'].name === 'python3').length, 0);
  });

  it('names the renamed process by its new name from then on: its child\'s parent, its exit', () => {
    assertNamedFromThenOn(capture.events, prctl);
  });

  it('reports a write to /proc/self/comm', () => {
    assert.equal(procComm.status, 0, procComm.stderr);
    const renames = renamesOf(procComm);
    assert.equal(renames.length, 1, JSON.stringify(renames));
    assertActor(capture.events, renames[0], procComm.pid);
    assert.deepEqual([renames[0]?.['process'].name, renames[0]?.['hades'].rename.old_name], ['ksoftirqd/7', 'python3']);
  });

  it('raises process_renamed_as_kernel_thread on both, not on an ordinary name', async () => {
    const { ruleSet } = loadRules(await readDefaultPack(), { samples: false });
    const fired = (run: ChildRun) => renamesOf(run).flatMap((e) => ruleSet.match(e as unknown as HadesEvent).map((m) => m.rule.id));
    assert.ok(fired(prctl).includes('process_renamed_as_kernel_thread'), fired(prctl).join(','));
    assert.ok(fired(procComm).includes('process_renamed_as_kernel_thread'), fired(procComm).join(','));
    assert.equal(renamesOf(plain).length, 1);
    assert.deepEqual(fired(plain), []);
  });
  it('sends at most 8 a second per process, and the newest of the rest in a catch-up event within about 2 s', async () => {
    await assertBurst(capture.events, burst);
  });

  it('sends the catch-up event of a process that exits right after its renames', () => {
    assertExitBurst(capture.events, exitBurst, false);
  });
});

/** Waits, so that the driver has read the exec's name, then renames itself as PRCTL_PY does. */
const CNPROC_PRCTL_PY = String.raw`
import ctypes, subprocess, sys, threading, time
libc = ctypes.CDLL(None, use_errno=True)
time.sleep(0.3)
assert libc.prctl(15, sys.argv[1].encode(), 0, 0, 0) == 0, ctypes.get_errno()
assert libc.prctl(15, sys.argv[1].encode(), 0, 0, 0) == 0, ctypes.get_errno()
t = threading.Thread(target=lambda: libc.prctl(15, b"hx-worker", 0, 0, 0))
t.start()
t.join()
subprocess.run(["/bin/sh", "-c", "sleep 0.3", "child-of-renamed"])
`;

/**
 * 12 renames in a row (over the bound of 8 a second), the last to a kernel thread's name, then
 * nothing for 3.5 s: the marker child's exec comes after that (it lives long enough for the
 * cn_proc driver to read its arguments); then one more rename.
 */
const BURST_PY = String.raw`
import ctypes, subprocess, time
libc = ctypes.CDLL(None, use_errno=True)
time.sleep(0.3)
for i in range(11):
    libc.prctl(15, b"hx-r%d" % i, 0, 0, 0)
libc.prctl(15, b"kworker/0:1H", 0, 0, 0)
time.sleep(3.5)
subprocess.run(["/bin/sh", "-c", "sleep 0.3", "after-burst"])
libc.prctl(15, b"hx-after", 0, 0, 0)
`;

/** 12 renames in a row, the last to a kernel thread's name, then the process exits at once. */
const EXIT_BURST_PY = String.raw`
import ctypes, time
libc = ctypes.CDLL(None, use_errno=True)
time.sleep(0.3)
for i in range(11):
    libc.prctl(15, b"hx-e%d" % i, 0, 0, 0)
libc.prctl(15, b"kworker/1:2H", 0, 0, 0)
`;

/** The child PRCTL_PY (or CNPROC_PRCTL_PY) starts names its parent, and its first ancestor, by the new
 * name; so does the renamed process's exit. */
function assertNamedFromThenOn(events: readonly AnyEvent[], prctl: ChildRun): void {
  const child = events.find((x) => x['event'].action === 'exec' && x['process'].parent?.pid === prctl.pid && x['process'].args?.includes('child-of-renamed'));
  assert.ok(child, 'the exec of the child');
  assert.equal(child['process'].parent.name, 'kworker/0:1H');
  assert.equal(child['hades'].ancestors[0].name, 'kworker/0:1H');
  const exit = actionsOf(events, 'exit', prctl.pid)[0];
  assert.equal(exit?.['process'].name, 'kworker/0:1H');
}

/** EXIT_BURST_PY's newest name is reported all the same, by a catch-up event (cn_proc: before its exit event). */
function assertExitBurst(events: readonly AnyEvent[], run: ChildRun, cnproc: boolean): void {
  assert.equal(run.status, 0, run.stderr);
  const renames = actionsOf(events, 'process_rename', run.pid);
  const last = renames.at(-1) as AnyEvent;
  assert.deepEqual([renames.length, last['process'].name, last['hades'].rename], [9, 'kworker/1:2H', { old_name: 'hx-e7', unreported: 4, catch_up: true }]);
  if (cnproc) assert.ok(events.indexOf(last) < events.indexOf(actionsOf(events, 'exit', run.pid)[0] as AnyEvent), 'the catch-up before the exit');
}

/** The renames of BURST_PY: 8 sent at once, the 4 over the bound in one catch-up event (which names
 * the process as the last one did, and arrives within about 2 s: before the marker child's exec),
 * and the next rename carries nothing again. The rule fires on the catch-up. */
async function assertBurst(events: readonly AnyEvent[], burst: ChildRun): Promise<void> {
  assert.equal(burst.status, 0, burst.stderr);
  const renames = actionsOf(events, 'process_rename', burst.pid);
  assert.deepEqual(renames.map((e) => [e['process'].name, e['hades'].rename.old_name, e['hades'].rename.unreported, e['hades'].rename.catch_up]), [
    ['hx-r0', 'python3', undefined, undefined],
    ...Array.from({ length: 7 }, (_, i) => [`hx-r${i + 1}`, `hx-r${i}`, undefined, undefined]),
    ['kworker/0:1H', 'hx-r7', 4, true],
    ['hx-after', 'kworker/0:1H', undefined, undefined],
  ]);
  const catchUp = renames[8] as AnyEvent;
  const marker = events.findIndex((x) => x['event'].action === 'exec' && x['process'].parent?.pid === burst.pid && x['process'].args?.includes('after-burst'));
  assert.ok(marker >= 0, 'the exec of the marker child');
  assert.ok(events.indexOf(catchUp) < marker, 'the catch-up came within 3.5 s of the rename (it is due in 1 to 2 s)');
  const { ruleSet } = loadRules(await readDefaultPack(), { samples: false });
  assert.ok(ruleSet.match(catchUp).some((m) => m.rule.id === 'process_renamed_as_kernel_thread'));
}

describe('hades events --backend cnproc: process_rename from the proc connector', { skip }, () => {
  let capture: Capture;
  let prctl: ChildRun;
  let burst: ChildRun;
  let exitBurst: ChildRun;

  before(async () => {
    capture = await captureEvents(['--backend', 'cnproc'], async () => {
      prctl = await runChild(python3, ['-c', CNPROC_PRCTL_PY, 'kworker/0:1H']);
      exitBurst = await runChild(python3, ['-c', EXIT_BURST_PY]);
      burst = await runChild(python3, ['-c', BURST_PY]);
    });
  });

  const renamesOf = (run: ChildRun) => actionsOf(capture.events, 'process_rename', run.pid);

  it('reports prctl(PR_SET_NAME) once, with the old name the driver saw at exec, and nothing for a thread, the same name or an exec', () => {
    assert.equal(prctl.status, 0, prctl.stderr);
    assert.deepEqual(capture.invalid, []);
    assert.match(capture.stderr, /cnproc|cn_proc/);
    const renames = renamesOf(prctl);
    assert.equal(renames.length, 1, JSON.stringify(renames));
    const e = renames[0] as AnyEvent;
    assertActor(capture.events, e, prctl.pid, { ancestorPid: process.pid });
    assert.equal(e['process'].name, 'kworker/0:1H');
    assert.equal(e['hades'].rename.old_name, 'python3');
    assert.equal(e['hades'].missing, undefined);
    assert.equal(e['hades'].backend, 'cnproc');
    assert.match(e['process'].executable, /python3/);
    assert.equal(e['process'].user?.id, String(process.getuid?.()));
    // The connector sends no COMM message for exec's own rename (checked on the real kernel here):
    // no event names a process by the name its exec gave it.
    assert.equal(capture.events.filter((x) => x['event'].action === 'process_rename' && (x['process'].name === 'python3' || x['process'].name === 'true')).length, 0);
  });

  it('names the renamed process by its new name from then on: its child\'s parent, its exit', () => {
    assertNamedFromThenOn(capture.events, prctl);
  });

  it('sends at most 8 a second per process, and the newest of the rest in a catch-up event within about 2 s', async () => {
    await assertBurst(capture.events, burst);
  });

  it('sends the catch-up event of a process that exits right after its renames', () => {
    assertExitBurst(capture.events, exitBurst, true);
  });
});
