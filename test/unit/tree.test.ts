import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ProcessTree, parseProcStat } from '../../src/agent/tree.js';
import { capabilityNames, containerFromCgroup, exitCodeOf, isoFromNs, missingPaths, ttyName, usualCapabilities } from '../../src/agent/builder.js';
import { formatIpv6 } from '../../src/agent/net.js';
import { Accounts, parseColonFile } from '../../src/agent/accounts.js';
import { MissingField, RecordFlag, decodeRecords, newDecodeCounters, type ExecRecord } from '../../src/agent/driver/records.js';
import { newBuilder, wire } from '../helpers/builder.js';
import { checkEvent } from '../../src/common/events/index.js';
import { execRecord } from '../helpers/records.js';

/** A process folder of a fake /proc: stat, cmdline (the executable and a NUL unless given) and exe. */
function fakeProc(proc: string, pid: number, comm: string, ppid: number, start: number, exe: string, cmdline = `${exe}\0`): void {
  const dir = path.join(proc, String(pid));
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  const rest = Array.from({ length: 19 }, (_, i) => (i === 19 - 1 ? start : i === 0 ? ppid : 0));
  writeFileSync(path.join(dir, 'stat'), `${pid} (${comm}) S ${rest.join(' ')} 0 0\n`);
  writeFileSync(path.join(dir, 'cmdline'), cmdline);
  symlinkSync(exe, path.join(dir, 'exe'));
}

describe('process tree', () => {
  it('follows fork and exec and gives ancestors parent first', () => {
    const tree = new ProcessTree('h', 1024);
    tree.exec(1, 0, 1e7, 'init', '/sbin/init', ['init']);
    tree.fork(1, 10, 2e7, 'init');
    tree.exec(10, 1, 2e7, 'bash', '/bin/bash', ['bash']);
    tree.fork(10, 11, 3e7, 'bash');
    tree.exec(11, 10, 3e7, 'cat', '/bin/cat', ['cat', 'x']);
    assert.deepEqual(tree.ancestors(11, 8).map((n) => n.name), ['bash', 'init']);
    assert.equal(tree.get(11)?.entityId, 'h-11-3');
    assert.deepEqual(tree.ancestors(11, 1).map((n) => n.pid), [10]);
  });

  it('names a process that renamed itself by its new name, in its descendants\' ancestry too, but not another process under its pid', () => {
    const builder = newBuilder();
    const tree = (builder as unknown as { tree: ProcessTree }).tree;
    tree.exec(5, 1, 1e7, 'python3', '/usr/bin/python3.11', ['python3', 'm.py']);
    tree.fork(5, 6, 2e7, 'python3');
    tree.exec(6, 5, 2e7, 'sh', '/bin/sh', ['sh']);
    const exec = (pid: number) => wire(builder.build(decodeRecords(execRecord({ pid, ppid: 6 }), newDecodeCounters())[0] as ExecRecord) as never);
    const before = exec(7);
    assert.deepEqual(before['hades'].ancestors.map((a: { name: string }) => a.name), ['sh', 'python3']);
    assert.equal(tree.rename(5, 1e7, 'kworker/0:1H'), 'python3');
    const after = exec(8);
    assert.deepEqual(after['hades'].ancestors.map((a: { name: string }) => a.name), ['sh', 'kworker/0:1H']);
    assert.equal(tree.get(5)?.executable, '/usr/bin/python3.11');
    // Another start time: another process under that pid; an empty name: nothing learnt.
    assert.equal(tree.rename(5, 9e7, 'x'), undefined);
    assert.equal(tree.rename(5, 1e7, ''), 'kworker/0:1H');
    assert.equal(tree.get(5)?.name, 'kworker/0:1H');
  });

  it("keeps a forked child on its parent's program until it executes", () => {
    const tree = new ProcessTree('h', 1024);
    tree.exec(5, 1, 1e7, 'sh', '/bin/sh', ['sh', '-c', 'x']);
    const child = tree.fork(5, 6, 2e7, 'sh');
    assert.equal(child.executable, '/bin/sh');
    assert.deepEqual(child.args, ['sh', '-c', 'x']);
  });

  it('says which program of its own a process replaced by executing again, and none after a fork', () => {
    const tree = new ProcessTree('h', 1024);
    tree.exec(5, 1, 1e7, 'bash', '/bin/bash', ['bash']);
    tree.fork(5, 6, 2e7, 'bash');
    tree.exec(6, 5, 2e7, 'sh', '/bin/sh', ['sh', '-c', 'bash < /tmp/q']);
    assert.equal(tree.replaced, undefined, 'the program a forked child replaced was its parent\'s');
    tree.exec(6, 5, 2e7, 'bash', '/bin/bash', ['bash']);
    assert.deepEqual(tree.replaced, { executable: '/bin/sh', args: ['sh', '-c', 'bash < /tmp/q'] });
    tree.exec(6, 5, 2e7, 'cat', '/bin/cat', ['cat']);
    assert.deepEqual(tree.replaced, { executable: '/bin/bash', args: ['bash'] }, 'the last one only');
    // A new process under a reused pid replaced nothing of its own.
    tree.exit(6, 2e7);
    tree.exec(6, 5, 9e7, 'ls', '/bin/ls', ['ls']);
    assert.equal(tree.replaced, undefined);
  });

  it('keeps the process of an exec whose start time and parent could not be read (cn_proc), and replaces its program', () => {
    const tree = new ProcessTree('h', 1024);
    tree.exec(5, 1, 1e7, 'bash', '/bin/bash', ['bash']);
    const forked = tree.fork(5, 6, 2e7, 'bash');
    // The process was gone before /proc could be read: start 0 and parent 0 are unknown.
    const execd = tree.exec(6, 0, 0, '', '', []);
    assert.equal(execd, forked, 'the same process');
    assert.equal(execd.entityId, 'h-6-2');
    assert.equal(execd.ppid, 5);
    assert.deepEqual(tree.ancestors(6, 8).map((n) => n.pid), [5]);
    // The program before the exec is not this one: not kept.
    assert.equal(execd.name, '');
    assert.equal(execd.executable, '');
    assert.deepEqual(execd.args, []);
    // A start time that is known and differs is another process (the pid was reused).
    assert.notEqual(tree.exec(6, 5, 9e7, 'true', '/bin/true', ['true']), forked);
    // No live process under that pid: a new node, started at 0.
    assert.equal(tree.exec(77, 0, 0, 'x', '/x', ['x']).entityId, 'h-77-0');
  });

  it('stays within its bound, dropping exited processes first', () => {
    // No /proc to look at: every process counts as live.
    const tree = new ProcessTree('h', 1024, '/nonexistent-proc');
    for (let pid = 1; pid <= 1024; pid++) tree.exec(pid, 1, pid * 1e7, 'p', '/p', []);
    tree.exit(3);
    tree.exec(5000, 1, 1e9, 'new', '/new', []);
    assert.equal(tree.stats.size, 1024);
    assert.equal(tree.get(3), undefined, 'the exited process went first');
    assert.ok(tree.get(4));
    for (let pid = 6000; pid < 8000; pid++) tree.exec(pid, 1, pid * 1e7, 'p', '/p', []);
    assert.equal(tree.stats.size, 1024);
    assert.ok(tree.stats.evictedLive > 0);
  });

  it('keeps an exited process while a descendant lives, so that its ancestry still names it', () => {
    const tree = new ProcessTree('h', 1024);
    tree.exec(100, 1, 1e7, 'dropper', '/tmp/dropper', ['dropper']);
    tree.fork(100, 101, 2e7, 'dropper');
    tree.exec(101, 100, 2e7, 'miner', '/tmp/miner', ['miner']);
    tree.exit(100);
    assert.deepEqual(tree.ancestors(101, 8).map((n) => n.name), ['dropper']);
    tree.exit(101);
    assert.equal(tree.get(101), undefined, 'a leaf goes at once');
    assert.equal(tree.get(100), undefined, 'and takes its exited parent with it');
    assert.equal(tree.stats.size, 0);
  });

  it('keeps the process that made a child in its ancestry when the child executes after being reparented', () => {
    const tree = new ProcessTree('h', 1024);
    tree.exec(1, 0, 1e7, 'init', '/sbin/init', ['init']);
    tree.fork(1, 50, 2e7, 'tmux');
    tree.exec(50, 1, 2e7, 'tmux', '/usr/bin/tmux', ['tmux']);
    tree.fork(50, 100, 3e7, 'php-fpm');
    tree.exec(100, 50, 3e7, 'php-fpm', '/usr/sbin/php-fpm', ['php-fpm']);
    // php-fpm runs a dropper that forks twice and exits: the payload is adopted by init, the
    // other child by the subreaper tmux.
    tree.fork(100, 200, 4e7, 'sh');
    tree.fork(200, 201, 5e7, 'sh');
    tree.fork(200, 202, 5e7, 'sh');
    tree.exit(200);
    tree.exec(201, 1, 5e7, 'miner', '/tmp/miner', ['miner']);
    tree.exec(202, 50, 5e7, 'nc', '/usr/bin/nc', ['nc']);
    assert.deepEqual(tree.ancestors(201, 8).map((n) => n.pid), [200, 100, 50, 1]);
    assert.deepEqual(tree.ancestors(202, 8).map((n) => n.pid), [200, 100, 50, 1]);
    // The exited dropper stays while they live, and goes with the last of them.
    tree.exit(201);
    assert.equal(tree.get(200)?.exited, true);
    tree.exit(202);
    assert.equal(tree.get(200), undefined);
    // A process whose parent the tree did not know takes the one its exec reports, and keeps it
    // in the tree after it exits.
    tree.fork(999, 300, 6e7, 'x');
    tree.exec(300, 100, 6e7, 'y', '/y', ['y']);
    tree.exit(100);
    assert.deepEqual(tree.ancestors(300, 8).map((n) => n.pid), [100, 50, 1]);
  });

  it('keeps the whole ancestry of a payload whose exited parent\'s pid was reused before it executed', () => {
    const tree = new ProcessTree('h', 1024);
    tree.exec(1, 0, 1e7, 'init', '/sbin/init', ['init']);
    tree.fork(1, 10, 2e7, 'init');
    tree.exec(10, 1, 2e7, 'python3', '/usr/bin/python3', ['python3', 'dropper.py']);
    tree.fork(10, 11, 3e7, 'python3');
    tree.exec(11, 10, 3e7, 'true', '/bin/true', ['true']);
    tree.fork(11, 12, 4e7, 'true');
    tree.exit(11, 3e7);
    tree.exit(10, 2e7);
    // Pid 11 is reused by another process before the payload (12) executes.
    tree.fork(1, 11, 5e7, 'init');
    tree.exec(11, 1, 5e7, 'cron', '/usr/sbin/cron', ['cron']);
    tree.exec(12, 1, 4e7, 'sleep', '/bin/sleep', ['sleep', '9']);
    assert.deepEqual(tree.ancestors(12, 8).map((n) => `${n.name}(${n.pid})`), ['true(11)', 'python3(10)', 'init(1)']);
    assert.equal(tree.get(11)?.name, 'cron');
    // The payload's exit lets the chain go.
    tree.exit(12, 4e7);
    assert.equal(tree.get(10), undefined);
    assert.deepEqual(tree.ancestors(11, 8).map((n) => n.pid), [1]);
  });

  it('names the parent a process had, not a later process its pid was reused by', () => {
    const tree = new ProcessTree('h', 1024);
    tree.exec(1, 0, 1e7, 'init', '/sbin/init', ['init']);
    tree.fork(1, 100, 2e7, 'dropper');
    tree.exec(100, 1, 2e7, 'dropper', '/tmp/dropper', ['dropper']);
    tree.fork(100, 101, 3e7, 'dropper');
    tree.exec(101, 1, 3e7, 'miner', '/tmp/miner', ['miner']);
    tree.exit(100);
    // Pids wrapped: 100 is now a cron job.
    tree.fork(1, 100, 9e7, 'cron');
    tree.exec(100, 1, 9e7, 'cron', '/usr/sbin/cron', ['cron']);
    assert.deepEqual(tree.ancestors(101, 8).map((n) => n.entityId), ['h-100-2', 'h-1-1']);
    tree.fork(101, 102, 9.5e7, 'miner');
    assert.deepEqual(tree.ancestors(102, 8).map((n) => n.name), ['miner', 'dropper', 'init']);
    // A parent pid that names only a process started after the child is not its parent.
    tree.exec(500, 100, 5e7, 'orphan', '/orphan', ['orphan']);
    assert.deepEqual(tree.ancestors(500, 8), []);
  });

  it('lets the exit of a process not end a later one under the same pid', () => {
    const tree = new ProcessTree('h', 1024);
    tree.exec(1, 0, 1e7, 'init', '/sbin/init', ['init']);
    tree.fork(1, 100, 9e7, 'cron');
    // The exit of the previous process 100, handled after the fork of the new one.
    tree.exit(100, 2e7);
    assert.equal(tree.get(100)?.exited, false);
    tree.exit(100, 9e7);
    assert.equal(tree.get(100), undefined);
  });

  it("lets go of processes whose exit never came once the tree is full, before the long-lived ones it was seeded with", () => {
    const proc = mkdtempSync(path.join(tmpdir(), 'hades-proc-'));
    try {
      fakeProc(proc, 1, 'init', 0, 1, '/sbin/init');
      fakeProc(proc, 2, 'sshd', 1, 2, '/usr/sbin/sshd');
      const tree = new ProcessTree('h', 1024, proc);
      tree.seedFromProc();
      // Children of init whose exits the kernel filtered (they executed a denied program).
      for (let pid = 1000; pid < 3000; pid++) tree.fork(1, pid, pid * 1e7, 'backup');
      assert.ok(tree.stats.size <= 1024);
      assert.ok(tree.stats.gone > 0);
      assert.equal(tree.get(2)?.name, 'sshd');
      tree.fork(2, 5000, 5e10, 'sshd');
      tree.exec(5000, 2, 5e10, 'bash', '/bin/bash', ['bash']);
      assert.deepEqual(tree.ancestors(5000, 8).map((n) => n.name), ['sshd', 'init']);
    } finally {
      rmSync(proc, { recursive: true, force: true });
    }
  });

  it('keeps the empty last argument of a process read from /proc', () => {
    const proc = mkdtempSync(path.join(tmpdir(), 'hades-proc-'));
    try {
      fakeProc(proc, 7, 'sh', 1, 10, '/bin/sh', 'sh\0-c\0\0');
      fakeProc(proc, 8, 'nginx', 1, 11, '/usr/sbin/nginx', 'nginx: worker process');
      const tree = new ProcessTree('h', 1024, proc);
      tree.seedFromProc();
      assert.deepEqual(tree.get(7)?.args, ['sh', '-c', '']);
      assert.deepEqual(tree.get(8)?.args, ['nginx: worker process']);
    } finally {
      rmSync(proc, { recursive: true, force: true });
    }
  });

  it('stops on parent loops', () => {
    const tree = new ProcessTree('h', 1024);
    tree.exec(7, 8, 1e7, 'a', '/a', []);
    tree.exec(8, 7, 1e7, 'b', '/b', []);
    assert.deepEqual(tree.ancestors(7, 8).map((n) => n.pid), [8]);
  });

  it('parses /proc/PID/stat with hostile process names', () => {
    const stat = '4242 (evil) 1 2 (x) S 100 4242 4242 34816 4242 4194304 0 0 0 0 0 0 0 0 20 0 1 0 98765 1 1 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0';
    const parsed = parseProcStat(stat);
    assert.equal(parsed?.comm, 'evil) 1 2 (x');
    assert.equal(parsed?.ppid, 100);
    assert.equal(parsed?.startTicks, 98765);
    assert.equal(parseProcStat('garbage'), undefined);
    assert.equal(parseProcStat('1 (x) S 1'), undefined);
  });

  it('reads the real /proc', () => {
    const tree = new ProcessTree('h', 65536);
    tree.seedFromProc();
    const self = tree.get(process.pid);
    assert.ok(self);
    assert.equal(self.executable, process.execPath);
    assert.ok(tree.stats.seeded > 1);
  });

  it('seeded again: adds new processes, replaces a reused pid, lets exited ones go, and keeps what events told of the rest', () => {
    const proc = mkdtempSync(path.join(tmpdir(), 'hades-proc-'));
    const put = (pid: number, comm: string, ppid: number, start: number, exe: string) => {
      const dir = path.join(proc, String(pid));
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir);
      const rest = Array.from({ length: 19 }, (_, i) => (i === 19 - 1 ? start : i === 0 ? ppid : 0));
      writeFileSync(path.join(dir, 'stat'), `${pid} (${comm}) S ${rest.join(' ')} 0 0\n`);
      writeFileSync(path.join(dir, 'cmdline'), `${exe}\0`);
      symlinkSync(exe, path.join(dir, 'exe'));
    };
    try {
      put(1, 'init', 0, 1, '/sbin/init');
      put(100, 'sshd', 1, 1000, '/usr/sbin/sshd');
      put(200, 'cron', 1, 1100, '/usr/sbin/cron');
      const tree = new ProcessTree('h', 1024);
      tree.seedFromProc(proc);
      assert.equal(tree.get(100)?.startTicks, 1000);
      // An event tells more of 200 than /proc did.
      tree.exec(200, 1, 1100 * 1e7, 'cron', '/usr/sbin/cron', ['cron', '-f']);
      // While the driver loads: sshd exits and its pid is reused, cron exits, a new process starts.
      put(100, 'evil', 1, 5000, '/tmp/evil');
      rmSync(path.join(proc, '200'), { recursive: true });
      put(300, 'new', 1, 5100, '/usr/bin/new');
      tree.seedFromProc(proc);
      assert.equal(tree.get(100)?.executable, '/tmp/evil', 'the reused pid is the new process');
      assert.equal(tree.get(100)?.entityId, 'h-100-5000');
      assert.ok(!tree.get(200) || tree.get(200)?.exited, 'the exited process is let go');
      assert.equal(tree.get(300)?.executable, '/usr/bin/new');
      assert.equal(tree.get(1)?.executable, '/sbin/init');
      // Same pid and start: what events said stays.
      tree.exec(300, 1, 5100 * 1e7, 'new', '/usr/bin/new', ['new', '--from-event']);
      tree.seedFromProc(proc);
      assert.deepEqual(tree.get(300)?.args, ['new', '--from-event']);
      // A deleted executable (a memfd) without the kernel's mark; bytes that are not UTF-8 escaped as the driver's are.
      put(400, 'sealed', 1, 5200, '/memfd:sealed-91173221a7ea (deleted)');
      const odd = path.join(proc, '401');
      mkdirSync(odd);
      writeFileSync(path.join(odd, 'stat'), '401 (odd) S 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 5300 0 0\n');
      symlinkSync(Buffer.from([0x2f, 0x74, 0x6d, 0x70, 0x2f, 0xff, 0x41]), path.join(odd, 'exe'));
      tree.seedFromProc(proc);
      assert.equal(tree.get(400)?.executable, '/memfd:sealed-91173221a7ea');
      assert.equal(tree.get(401)?.executable, '/tmp/\udcffA');
      // A program whose own name ends in " (deleted)" (seen from the process's root): kept whole.
      const named = path.join(proc, 'evil (deleted)');
      writeFileSync(named, '');
      put(402, 'evil', 1, 5400, named);
      symlinkSync('/', path.join(proc, '402', 'root'));
      tree.seedFromProc(proc);
      assert.equal(tree.get(402)?.executable, named);
    } finally {
      rmSync(proc, { recursive: true, force: true });
    }
  });

  it('makes every node with the same fields in the same order, however it came', () => {
    // One hidden class for all nodes keeps the hot paths monomorphic (see processNode).
    const tree = new ProcessTree('h', 65536);
    tree.seedFromProc();
    const seeded = tree.get(process.pid);
    const forked = tree.fork(process.pid, 900001, 5e9, 'x');
    const exec = tree.exec(900002, process.pid, 6e9, 'y', '/y', ['y']);
    const execOfForked = tree.exec(900001, process.pid, 5e9, 'z', '/z', ['z']);
    tree.exit(900001);
    assert.ok(seeded);
    const keys = Object.keys(seeded);
    for (const node of [forked, exec, execOfForked]) assert.deepEqual(Object.keys(node), keys);
    // Setting what a program is a copy of adds no field.
    const copy = tree.exec(900003, process.pid, 7e9, 'k', '/k', ['k']);
    tree.setCopyOf(copy, Object.freeze({ path: '/usr/bin/bash', name: 'bash' }));
    assert.deepEqual(Object.keys(copy), keys);
    assert.deepEqual(Object.keys(tree.fork(900003, 900004, 8e9, 'k')), keys);
  });

  it('remembers what a program is a copy of until the process executes again, gives it to forked children, and not to a reused pid', () => {
    const bash = Object.freeze({ path: '/usr/bin/bash', name: 'bash' });
    const tree = new ProcessTree('h', 1024);
    tree.exec(10, 1, 1e7, 'kworker', '/usr/local/lib/.x/kworker', ['/usr/local/lib/.x/kworker', '-i']);
    const shell = tree.get(10)!;
    assert.equal(shell.copyOf, undefined, 'unknown until the exec event says it');
    shell.asAncestor = Object.freeze({ pid: 10 });
    tree.setCopyOf(shell, bash);
    assert.equal(shell.copyOf, bash, 'the shared object itself');
    assert.equal(shell.asAncestor, undefined, 'its ancestor entry is made again');
    // A subshell runs the copy too; the command it executes does not.
    const subshell = tree.fork(10, 11, 2e7, 'kworker');
    assert.equal(subshell.copyOf, bash);
    tree.fork(11, 12, 3e7, 'kworker');
    assert.equal(tree.exec(12, 11, 3e7, 'cat', '/usr/bin/cat', ['cat', '/etc/shadow']).copyOf, undefined);
    assert.deepEqual(tree.ancestors(12, 8).map((n) => n.copyOf), [bash, bash]);
    // The copy executes another program (same process): no longer a copy, until its exec event says so.
    tree.exec(10, 1, 1e7, 'bash', '/usr/bin/bash', ['bash']);
    assert.equal(tree.get(10), shell);
    assert.equal(shell.copyOf, undefined);
    assert.equal(tree.fork(10, 13, 4e7, 'bash').copyOf, undefined);
    // Its pid reused by another process: a node of its own, not a copy.
    tree.setCopyOf(shell, bash);
    tree.exit(10, 1e7);
    const other = tree.exec(10, 1, 9e7, 'sleep', '/usr/bin/sleep', ['sleep', '1']);
    assert.notEqual(other, shell);
    assert.equal(other.copyOf, undefined);
    assert.equal(tree.fork(10, 14, 9.5e7, 'sleep').copyOf, undefined);
  });
});

describe('event building helpers', () => {
  it('decodes wait statuses', () => {
    assert.equal(exitCodeOf(0x300), 3);
    assert.equal(exitCodeOf(9), 137);
    assert.equal(exitCodeOf(0x8b), 139); // SIGSEGV with core dump
    assert.equal(exitCodeOf(0), 0);
  });

  it('leaves out an exit code the driver could not learn (cn_proc: the last thread\'s exit message lost), and says so', async () => {
    const builder = newBuilder();
    const base = { type: 'exit', kind: 3, size: 64, ktimeNs: 2e9, pid: 4600, tid: 4601, flags: 1, startNs: 1e9, ppid: 1, comm: 'thr' } as const;
    const lost = wire(await builder.build({ ...base, missing: MissingField.exitCode, exitCode: 0 }));
    assert.equal('exit_code' in lost['process'], false, JSON.stringify(lost));
    assert.deepEqual(lost['hades'].missing, ['process.exit_code']);
    assert.deepEqual(missingPaths(MissingField.exitCode | MissingField.comm), ['process.name', 'process.exit_code']);
    const known = wire(await builder.build({ ...base, pid: 4700, missing: 0, exitCode: 0x700 }));
    assert.equal(known['process'].exit_code, 7);
  });

  it('finds container ids of the common runtimes, and none elsewhere', () => {
    const id = 'a'.repeat(64);
    assert.deepEqual(containerFromCgroup(`/system.slice/docker-${id}.scope`), { id, runtime: 'docker' });
    assert.deepEqual(containerFromCgroup(`/kubepods/burstable/pod1/cri-containerd-${id}.scope`), { id, runtime: 'containerd' });
    assert.deepEqual(containerFromCgroup(`/machine.slice/libpod-${id}.scope/container`), { id, runtime: 'podman' });
    assert.equal(containerFromCgroup('/user.slice/user-0.slice/session-1.scope'), undefined);
  });

  it('names capabilities and formats times and addresses', () => {
    assert.deepEqual(capabilityNames([1 | (1 << 21), 0]), ['CAP_CHOWN', 'CAP_SYS_ADMIN']);
    assert.deepEqual(capabilityNames([0, 1 << 7]), ['CAP_BPF']);
    assert.equal(isoFromNs(1764316800123456 * 1000), '2025-11-28T08:00:00.123456Z');
    assert.equal(formatIpv6(new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])), '::1');
    assert.equal(formatIpv6(new Uint8Array([0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1])), '2001:db8::1:0:0:1');
    assert.equal(formatIpv6(new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1])), '::ffff:10.0.0.1');
  });

  it('lists capabilities only when they differ from what the user id implies', () => {
    const last = Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8'));
    const full: [number, number] = [0xffffffff, 2 ** (last + 1 - 32) - 1];
    assert.equal(usualCapabilities(0, full, full), true);
    assert.equal(usualCapabilities(0, [full[0] & ~(1 << 21), full[1]], full), false, 'root without CAP_SYS_ADMIN (a container)');
    // A host whose init dropped CAP_SYS_RESOURCE for everyone: that set is root's usual one.
    const dropped: [number, number] = [full[0] & ~(1 << 24), full[1]];
    assert.equal(usualCapabilities(0, dropped, dropped), true);
    assert.equal(usualCapabilities(0, full, dropped), false);
    // By default, root's usual set is the bounding set of PID 1.
    const bnd = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/1/status', 'utf8'))?.[1]?.padStart(16, '0') ?? '';
    assert.equal(usualCapabilities(0, [Number.parseInt(bnd.slice(8), 16), Number.parseInt(bnd.slice(0, 8), 16)]), true);
    assert.equal(usualCapabilities(1000, [0, 0]), true);
    assert.equal(usualCapabilities(1000, [1 << 13, 0]), false, 'a user with CAP_NET_RAW (file capabilities)');
  });

  it('lists missing fields by their event paths', () => {
    assert.deepEqual(missingPaths(0), []);
    assert.deepEqual(missingPaths(1 | 2 | 4), ['process.executable', 'process.args']);
  });

  it('reads user names again when /etc/passwd is replaced by a file with the old mtime', (t) => {
    const etc = mkdtempSync(path.join(tmpdir(), 'hades-etc-'));
    t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    try {
      const passwd = path.join(etc, 'passwd');
      writeFileSync(passwd, 'root:x:0:0::/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n');
      utimesSync(passwd, 1_700_000_000, 1_700_000_000);
      const accounts = new Accounts(etc);
      assert.equal(accounts.user(1000), 'alice');
      // Put in place with its mtime set back (touch -r): the same size and mtime, another file.
      writeFileSync(`${passwd}.new`, 'root:x:0:0::/root:/bin/bash\nmallo:x:1000:1000::/home/alice:/bin/sh\n');
      utimesSync(`${passwd}.new`, 1_700_000_000, 1_700_000_000);
      assert.equal(statSync(`${passwd}.new`).mtimeMs, statSync(passwd).mtimeMs);
      renameSync(`${passwd}.new`, passwd);
      t.mock.timers.tick(6000);
      assert.equal(accounts.user(1000), 'mallo');
    } finally {
      rmSync(etc, { recursive: true, force: true });
    }
  });

  it('parses passwd lines and skips malformed ones', () => {
    const names = parseColonFile('root:x:0:0::/root:/bin/bash\n# c\nbroken\nbad:x:notanumber:\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\n');
    assert.deepEqual([...names], [[0, 'root'], [33, 'www-data']]);
  });
});

describe('ancestor entries', () => {
  it('cut long argument lists and flag it, keeping the process own args whole', async () => {
    const builder = newBuilder();
    const long = `sh\0-c\0${'x'.repeat(2000)}\0`;
    const [parent] = decodeRecords(execRecord({ pid: 10, ppid: 1, argv: new TextEncoder().encode(long) }), newDecodeCounters());
    const [child] = decodeRecords(execRecord({ pid: 11, ppid: 10, argv: new TextEncoder().encode(long) }), newDecodeCounters());
    await builder.build(parent as ExecRecord);
    const event = wire(await builder.build(child as ExecRecord));
    assert.equal((event['process'].args as string[])[2]?.length, 2000);
    const [ancestor] = event['hades'].ancestors as { args: string[]; args_truncated?: boolean }[];
    assert.equal(ancestor?.args_truncated, true);
    assert.ok((ancestor?.args.join(' ').length ?? 0) <= 512);
  });
});

describe('events of processes gone before they could be read (cn_proc)', () => {
  const header = { kind: 0, size: 0, ktimeNs: 5e9, tid: 0, flags: 0 };
  it('leave out what is listed missing, and an exec keeps the process its fork made', async () => {
    const builder = newBuilder();
    await builder.build(decodeRecords(execRecord({ pid: 40, ppid: 1, comm: 'bash', exe: '/usr/bin/bash', argv: new TextEncoder().encode('bash\0') }), newDecodeCounters())[0] as ExecRecord);
    const gone = MissingField.creds | MissingField.comm | MissingField.start;
    const fork = wire(
      (await builder.build({ ...header, type: 'fork', pid: 40, missing: gone, childStartNs: 0, parentStartNs: 0, cgroupId: 0, childPid: 41, ppid: 1, uid: 0, gid: 0, comm: '' })),
    );
    assert.equal(fork['process'].user, undefined, 'no user read, none made up');
    assert.equal(fork['process'].start, undefined);
    assert.equal(fork['process'].name, undefined);
    assert.deepEqual(fork['hades'].missing, ['process.user', 'process.name', 'process.start']);
    // Its exec: the start time, parent and program could not be read either.
    const execMissing = MissingField.start | MissingField.parent | MissingField.exe | MissingField.argv | MissingField.cwd;
    const [exec] = decodeRecords(execRecord({ pid: 41, ppid: 0, comm: 'true', exe: '', filename: '', missing: execMissing }), newDecodeCounters());
    const event = wire((await builder.build(exec as ExecRecord)));
    assert.equal(event['process'].entity_id, fork['process'].entity_id, 'the same process as its fork');
    assert.equal(event['process'].parent.pid, 40, 'the parent the fork told of');
    assert.equal(event['hades'].ancestors[0]?.pid, 40);
    assert.ok(!(event['hades'].missing as string[]).includes('process.parent'));
    assert.ok((event['hades'].missing as string[]).includes('process.start'));
    // Its exit: no program known, none given as empty.
    const exit = wire(
      (await builder.build({ ...header, type: 'exit', pid: 41, missing: MissingField.comm, startNs: 0, exitCode: 0, ppid: 40, comm: '' })),
    );
    assert.equal(exit['process'].executable, undefined);
    assert.equal(exit['process'].args, undefined);
    assert.equal(exit['process'].name, undefined);
    assert.deepEqual(exit['hades'].missing, ['process.name']);
  });

  it('end the process the tree has under that pid when the exit could not read its start', async () => {
    const builder = newBuilder();
    const [parent] = decodeRecords(execRecord({ pid: 60, ppid: 1, comm: 'bash' }), newDecodeCounters());
    const [child] = decodeRecords(execRecord({ pid: 61, ppid: 60, comm: 'sleep' }), newDecodeCounters());
    await builder.build({ ...(parent as ExecRecord), startNs: 2e9 });
    const exec = wire(await builder.build({ ...(child as ExecRecord), startNs: 3e9 }));
    // cn_proc: a process whose start the driver never saw.
    const exit = wire(await builder.build({ ...header, type: 'exit', pid: 61, missing: MissingField.start, startNs: 0, exitCode: 0, ppid: 60, comm: 'sleep' }));
    assert.equal(exit['process'].entity_id, exec['process'].entity_id);
    assert.equal(exit['hades'].ancestry, exec['hades'].ancestry);
    assert.equal(exit['process'].start, undefined, 'no start made up');
  });

  it('leave out a name that could not be read (not an empty one), show it as ? in the ancestry, and list in a fork only what a fork carries', async () => {
    const builder = newBuilder();
    await builder.build(decodeRecords(execRecord({ pid: 70, ppid: 1, comm: 'storm', exe: '/tmp/storm' }), newDecodeCounters())[0] as ExecRecord);
    // cn_proc: the fork's cgroup is not read (no filter needs it), and the fork event has none.
    const fork = wire(await builder.build({ ...header, type: 'fork', pid: 70, missing: MissingField.cgroup, childStartNs: 6e9, parentStartNs: 0, cgroupId: 0, childPid: 71, ppid: 70, uid: 0, gid: 0, comm: 'storm' }));
    assert.equal(fork['hades'].missing, undefined);
    const [gone] = decodeRecords(execRecord({ pid: 71, ppid: 70, comm: '', exe: '', filename: '', missing: MissingField.comm | MissingField.exe | MissingField.argv }), newDecodeCounters());
    const exec = wire(await builder.build(gone as ExecRecord));
    assert.equal(exec['process'].name, undefined);
    assert.equal(exec['hades'].ancestry, '?(71) < storm(70)');
    assert.ok((exec['hades'].missing as string[]).includes('process.name'));
  });

  it('give the path of a file redirected into standard input, and keep the other descriptors as they were', async () => {
    const builder = newBuilder();
    const [withFile] = decodeRecords(execRecord({ pid: 90, ppid: 1, comm: 'tr', stdin: '/proc/2231/environ' }), newDecodeCounters());
    assert.equal((withFile as ExecRecord).stdinPath, '/proc/2231/environ');
    const event = wire(await builder.build(withFile as ExecRecord));
    assert.deepEqual(event['hades'].process.stdio.stdin, { type: 'file', inode: 0, path: '/proc/2231/environ' });
    assert.equal(event['process'].args.join(' '), 'true x', 'argv after the path, where it was');
    // A driver from before (the field reserved, 0): no path, the rest unchanged.
    const [without] = decodeRecords(execRecord({ pid: 91, ppid: 1 }), newDecodeCounters());
    assert.equal((without as ExecRecord).stdinPath, '');
    assert.equal(wire(await builder.build(without as ExecRecord))['hades'].process.stdio.stdin.path, undefined);
  });

  it('mark a file on standard input deleted since it was opened (flag STDIN_DELETED), and no other', async () => {
    const builder = newBuilder();
    const [deleted] = decodeRecords(execRecord({ pid: 92, ppid: 1, flags: RecordFlag.stdinDeleted, stdin: '/tmp/x/delin' }), newDecodeCounters());
    const event = wire(await builder.build(deleted as ExecRecord));
    assert.deepEqual(event['hades'].process.stdio.stdin, { type: 'file', inode: 0, path: '/tmp/x/delin', deleted: true });
    assert.deepEqual(checkEvent(event).ok, true);
    // The flag without a path (none read): no path, so nothing to mark.
    const [pathless] = decodeRecords(execRecord({ pid: 93, ppid: 1, flags: RecordFlag.stdinDeleted }), newDecodeCounters());
    assert.equal(wire(await builder.build(pathless as ExecRecord))['hades'].process.stdio.stdin.deleted, undefined);
  });

  it('name pseudo-terminals as ps and who do (pts/3), other terminals as the kernel does', async () => {
    assert.equal(ttyName('pts3'), 'pts/3');
    assert.equal(ttyName('pts12'), 'pts/12');
    assert.equal(ttyName('tty1'), 'tty1');
    assert.equal(ttyName('ttyS0'), 'ttyS0');
    assert.equal(ttyName('ptsx'), 'ptsx');
    const builder = newBuilder();
    const [exec] = decodeRecords(execRecord({ pid: 80, ppid: 1, tty: 'pts3' }), newDecodeCounters());
    assert.equal(wire(await builder.build(exec as ExecRecord))['hades'].process.tty, 'pts/3');
  });

  it('leave out a group or session id no pid can be, and list it missing', async () => {
    const builder = newBuilder();
    const [exec] = decodeRecords(execRecord({ pid: 50, ppid: 1 }), newDecodeCounters());
    const event = wire(await builder.build({ ...(exec as ExecRecord), pgid: 0xffffffff, sid: 0xffffffff }));
    assert.equal(event['process'].group_leader, undefined);
    assert.equal(event['process'].session_leader, undefined);
    assert.deepEqual(event['hades'].missing, ['process.group_leader']);
  });
});
