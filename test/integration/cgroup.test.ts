/**
 * Cgroups against this machine's kernel, as root (v1 on the machines that run the tests; v2
 * wherever it is mounted with cpu and memory): the ceilings land in the control files, a busy
 * loop is held to its CPU share, a process that outgrows its memory ceiling is OOM-killed, and
 * cleanup leaves neither a folder nor a process behind.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { Cgroups, type CgroupGroup } from '../../src/agent/cgroup.js';
import { exited } from '../helpers/procs.js';

const MiB = 1 << 20;
const name = `hades-test-${process.pid}`;
const isRoot = process.getuid?.() === 0;
const found = isRoot ? Cgroups.detect({ name }) : undefined;
const skip = !isRoot ? 'cgroups need root' : found instanceof Cgroups ? false : `no cgroup support: ${found?.unavailable ?? ''}`;

/** A node child that waits for a line on stdin before running `body`, so that it starts its work only once placed. */
function waitingChild(body: string): ChildProcess {
  return spawn(process.execPath, ['-e', `process.stdin.once('data', () => { ${body} })`], { stdio: ['pipe', 'ignore', 'ignore'] });
}

/** The control file `file` of `leaf` in whichever hierarchy has it. */
function control(cgroups: Cgroups, leaf: string, file: string): string | undefined {
  for (const folder of cgroups.folders) {
    const candidate = path.join(folder, leaf, file);
    if (existsSync(candidate)) return readFileSync(candidate, 'utf8').trim();
  }
  return undefined;
}

describe(`cgroups on this kernel (${found instanceof Cgroups ? `v${found.version}` : 'none'})`, { skip }, () => {
  const cgroups = found as Cgroups;
  const children: ChildProcess[] = [];
  const selfBefore = readFileSync('/proc/self/cgroup', 'utf8');

  before(() => {
    cgroups.setup({ cpuPercent: 50, memoryBytes: 512 * MiB });
    cgroups.moveSelf();
  });

  after(async () => {
    for (const child of children) child.kill('SIGKILL');
    await Promise.all(children.map((child) => exited(child, 5000).catch(() => undefined)));
    cgroups.cleanup();
  });

  it('moves the agent into <base>/agent in every hierarchy', () => {
    const lines = readFileSync('/proc/self/cgroup', 'utf8').split('\n');
    const placed = lines.filter((line) => line.endsWith(`/${name}/agent`));
    assert.ok(placed.length >= (cgroups.version === 2 ? 1 : 3), `expected ${name}/agent in /proc/self/cgroup:\n${lines.join('\n')}`);
  });

  it('writes the ceilings into the control files', () => {
    cgroups.group('limits', { cpuPercent: 5, memoryBytes: 64 * MiB });
    if (cgroups.version === 2) {
      assert.equal(control(cgroups, 'plugin-limits', 'cpu.max'), '5000 100000');
      assert.equal(control(cgroups, 'plugin-limits', 'memory.max'), String(64 * MiB));
      assert.equal(control(cgroups, '', 'cpu.max'), '50000 100000');
    } else {
      assert.equal(control(cgroups, 'plugin-limits', 'cpu.cfs_period_us'), '100000');
      assert.equal(control(cgroups, 'plugin-limits', 'cpu.cfs_quota_us'), '5000');
      assert.equal(control(cgroups, 'plugin-limits', 'memory.limit_in_bytes'), String(64 * MiB));
      const memsw = control(cgroups, 'plugin-limits', 'memory.memsw.limit_in_bytes');
      if (memsw !== undefined) assert.equal(memsw, String(64 * MiB));
      assert.equal(control(cgroups, '', 'cpu.cfs_quota_us'), '50000');
    }
  });

  it('holds a busy loop to its CPU share', async () => {
    const group: CgroupGroup = cgroups.group('busy', { cpuPercent: 5, memoryBytes: 64 * MiB });
    const child = waitingChild('for (;;) {}');
    children.push(child);
    assert.ok(child.pid !== undefined);
    group.add(child.pid);
    assert.match(readFileSync(`/proc/${child.pid}/cgroup`, 'utf8'), new RegExp(`/${name}/plugin-busy$`, 'm'));
    child.stdin?.write('go\n');
    await sleep(300);
    const start = group.usage().cpuUsageUsec;
    const startedAt = process.hrtime.bigint();
    await sleep(2000);
    const used = group.usage().cpuUsageUsec - start;
    const elapsedUsec = Number(process.hrtime.bigint() - startedAt) / 1000;
    const share = used / elapsedUsec;
    assert.ok(share > 0.005, `the loop should run: ${(share * 100).toFixed(1)}% of a core`);
    assert.ok(share < 0.25, `a 5% ceiling let the loop use ${(share * 100).toFixed(1)}% of a core`);
    child.kill('SIGKILL');
    await exited(child, 5000);
    group.remove();
  });

  it('OOM-kills a process that outgrows its memory ceiling', async () => {
    const group = cgroups.group('hog', { memoryBytes: 64 * MiB });
    // Allocates and touches up to 1 GiB, one MiB at a time; exits normally only if nothing stops it.
    const child = waitingChild('const keep = []; for (let i = 0; i < 1024; i++) keep.push(Buffer.alloc(1 << 20, 1)); process.exit(0);');
    children.push(child);
    assert.ok(child.pid !== undefined);
    group.add(child.pid);
    child.stdin?.write('go\n');
    const { code, signal } = await exited(child, 8000);
    assert.equal(signal, 'SIGKILL', `the hog should be OOM-killed, it exited with ${code}`);
    const usage = group.usage();
    if (usage.oomKills !== undefined) assert.ok(usage.oomKills >= 1, `oom kills: ${usage.oomKills}`);
    assert.ok((usage.memoryPeakBytes ?? 64 * MiB) <= 64 * MiB, `peak ${usage.memoryPeakBytes}`);
  });

  it('kills every process left in a group, one that left its process group (setsid) too, and the group can then go', async () => {
    const group = cgroups.group('leftovers', {});
    // A child that starts a grandchild in a session of its own (as a daemonising plugin would) and exits.
    const child = waitingChild(`const g = require('node:child_process').spawn('setsid', ['sleep', '300'], { detached: true, stdio: 'ignore' }); g.unref(); console.error(g.pid); setTimeout(() => process.exit(0), 200);`);
    children.push(child);
    assert.ok(child.pid !== undefined);
    group.add(child.pid);
    child.stdin?.write('go\n');
    await exited(child, 5000);
    let left: number[] = [];
    for (let i = 0; i < 50 && left.length === 0; i++) {
      await sleep(50);
      left = (control(cgroups, 'plugin-leftovers', 'cgroup.procs') ?? '').split('\n').filter(Boolean).map(Number);
    }
    assert.equal(left.length, 1, 'the grandchild outlived its parent, in the group');
    assert.equal(group.killAll(), 1);
    for (let i = 0; i < 50; i++) {
      if ((control(cgroups, 'plugin-leftovers', 'cgroup.procs') ?? '') === '') break;
      await sleep(50);
    }
    assert.equal(control(cgroups, 'plugin-leftovers', 'cgroup.procs') ?? '', '', 'nothing left in the group');
    // Gone, or dead and waiting for whoever adopted it to reap it.
    const state = existsSync(`/proc/${left[0]}/stat`) ? readFileSync(`/proc/${left[0]}/stat`, 'utf8').split(') ')[1]?.[0] : 'gone';
    assert.ok(state === 'gone' || state === 'Z', `the grandchild is dead (state ${state})`);
    assert.equal(group.killAll(), 0, 'nothing more to kill');
    group.remove();
  });

  it('cleans up: every folder removed, the agent back where it was, no process left', async () => {
    for (const child of children) child.kill('SIGKILL');
    await Promise.all(children.map((child) => exited(child, 5000)));
    assert.deepEqual(cgroups.cleanup(), []);
    for (const folder of cgroups.folders) assert.equal(existsSync(folder), false, `${folder} is still there`);
    assert.equal(readFileSync('/proc/self/cgroup', 'utf8'), selfBefore);
    assert.deepEqual(cgroups.cleanup(), [], 'a second cleanup has nothing to do');
  });
});
