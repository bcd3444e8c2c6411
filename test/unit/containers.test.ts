/**
 * The container of every event of a process (src/agent/containers.ts): cgroup id -> container,
 * learnt from exec records and, for ids no exec taught, from /proc/PID/cgroup checked against the
 * id; and the builder's events (security, fork, exit) carrying what the process's exec carries.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { FrameReader } from '../../src/common/codec/frames.js';
import { checkEvent, type HadesEvent } from '../../src/common/events/index.js';
import { Accounts } from '../../src/agent/accounts.js';
import { EventBuilder } from '../../src/agent/builder.js';
import { cgroupV2PathOf, ContainerCache, containerFromCgroup, procCgroupLookup, type CgroupLookup } from '../../src/agent/containers.js';
import { decodeRecords, newDecodeCounters, RecordFlag, type DriverRecord, type ExecRecord, type ExitRecord, type ForkRecord } from '../../src/agent/driver/records.js';
import type { SecurityRecord, SocketRecord } from '../../src/agent/driver/security-records.js';
import { ExecutableHasher } from '../../src/agent/hasher.js';
import { SecurityEvents } from '../../src/agent/security-events.js';
import { serializeEvent } from '../../src/agent/serialize.js';
import { ProcessTree } from '../../src/agent/tree.js';
import { projectRoot } from '../helpers/generated-docs.js';
import { wire } from '../helpers/builder.js';

const ID_A = 'a1'.repeat(32);
const ID_B = 'b2'.repeat(32);
const PATH_A = `/system.slice/docker-${ID_A}.scope`;
const PATH_B = `/kubepods.slice/kubepods-pod1.slice/cri-containerd-${ID_B}.scope`;
const HOST_PATH = '/system.slice/ssh.service';

/**
 * A simulated system: the /proc/PID/cgroup text of each pid, the inode of each cgroup folder,
 * and how many times each was read.
 */
function simulated(procs: Record<number, string>, inodes: Record<string, number>) {
  const reads = { proc: 0, stat: 0 };
  const lookup: CgroupLookup = {
    procCgroup(pid) {
      reads.proc++;
      const p = procs[pid];
      return p === undefined ? undefined : `12:memory:/x\n1:name=systemd:${p}\n0::${p}\n`;
    },
    cgroupInode(cgroupPath) {
      reads.stat++;
      return inodes[cgroupPath];
    },
  };
  return { lookup, reads, procs };
}

describe('ContainerCache', () => {
  it('learns a cgroup from an exec record, and gives the same frozen container for its id', () => {
    const sim = simulated({}, {});
    const cache = new ContainerCache(16, sim.lookup);
    const first = cache.ofPath(4001, PATH_A);
    assert.deepEqual(first, { id: ID_A, runtime: 'docker' });
    assert.ok(Object.isFrozen(first));
    // The path is not read again: the id is enough (it never names another cgroup).
    assert.equal(cache.ofPath(4001, ''), first);
    assert.equal(cache.ofId(4001, 77, 1), first);
    assert.equal(cache.known(4001), first);
    // A cgroup of no container is known too, as null.
    assert.equal(cache.ofPath(4002, HOST_PATH), undefined);
    assert.equal(cache.known(4002), null);
    assert.equal(cache.ofId(4002, 77, 1), null);
    assert.deepEqual(sim.reads, { proc: 0, stat: 0 }, 'nothing read from /proc for ids an exec taught');
  });

  it('reads the path of an id no exec taught from /proc once, believed when the folder has that id', () => {
    const sim = simulated({ 500: PATH_B, 501: PATH_B }, { [PATH_B]: 4100 });
    const cache = new ContainerCache(16, sim.lookup);
    assert.deepEqual(cache.ofId(4100, 500, 1), { id: ID_B, runtime: 'containerd' });
    assert.deepEqual(sim.reads, { proc: 1, stat: 1 });
    for (let i = 0; i < 100; i++) cache.ofId(4100, 501, 1);
    assert.deepEqual(sim.reads, { proc: 1, stat: 1 }, 'then from the cache');
    assert.equal(cache.stats.fromProc, 1);
  });

  it('does not take the cgroup a process moved to for the one its record was made in', () => {
    // pid 600 made its record in cgroup 4200, then moved to container B's (another inode).
    const sim = simulated({ 600: PATH_B, 601: PATH_A }, { [PATH_B]: 4100, [PATH_A]: 4200 });
    const cache = new ContainerCache(16, sim.lookup, () => 0);
    // Its parent is still there: believed.
    assert.deepEqual(cache.ofId(4200, 600, 601), { id: ID_A, runtime: 'docker' });
    assert.equal(cache.known(4100), undefined, 'nothing learnt about the cgroup the process moved to');
    // Neither in the cgroup any more: not known, and not remembered as no container.
    const lone = new ContainerCache(16, sim.lookup, () => 0);
    assert.equal(lone.ofId(4300, 600, 0), undefined);
    assert.equal(lone.known(4300), undefined);
    assert.equal(lone.stats.unresolved, 1);
  });

  it('waits a second before looking again for an id /proc could not tell', () => {
    let now = 10_000;
    const sim = simulated({}, { [PATH_A]: 4400 });
    const cache = new ContainerCache(16, sim.lookup, () => now);
    assert.equal(cache.ofId(4400, 700, 701), undefined);
    assert.equal(sim.reads.proc, 2, 'the process and its parent');
    for (let i = 0; i < 50; i++) assert.equal(cache.ofId(4400, 700, 701), undefined);
    assert.equal(sim.reads.proc, 2, 'not again within the second');
    now += 1000;
    sim.procs[700] = PATH_A;
    assert.deepEqual(cache.ofId(4400, 700, 701), { id: ID_A, runtime: 'docker' });
    assert.equal(sim.reads.proc, 3);
  });

  it('keeps at most its bound of cgroups, the oldest learnt going first', () => {
    const cache = new ContainerCache(3, simulated({}, {}).lookup);
    for (let id = 1; id <= 5; id++) cache.ofPath(5000 + id, `/docker/${String(id).repeat(64)}`);
    assert.deepEqual(cache.stats, { size: 3, fromProc: 0, unresolved: 0, evicted: 2 });
    assert.equal(cache.known(5001), undefined);
    assert.equal(cache.known(5002), undefined);
    assert.deepEqual(cache.known(5005), { id: '5'.repeat(64), runtime: 'docker' });
  });

  it('does not remember a cut path as no container, and never caches id 0 (unknown)', () => {
    const sim = simulated({ 800: PATH_A }, { [PATH_A]: 4500 });
    const cache = new ContainerCache(16, sim.lookup);
    assert.equal(cache.ofPath(4500, '/system.slice/docker-a1a1a1', true), undefined);
    assert.equal(cache.known(4500), undefined);
    assert.deepEqual(cache.ofId(4500, 800, 0), { id: ID_A, runtime: 'docker' }, '/proc has the path whole');
    assert.deepEqual(cache.ofPath(0, PATH_A), { id: ID_A, runtime: 'docker' });
    assert.equal(cache.ofId(0, 800, 0), undefined);
    assert.equal(cache.stats.size, 1);
  });

  it('parses the cgroup v2 line of /proc/PID/cgroup, on hybrid systems too', () => {
    assert.equal(cgroupV2PathOf('0::/user.slice/user-0.slice/session-1.scope\n'), '/user.slice/user-0.slice/session-1.scope');
    assert.equal(cgroupV2PathOf(`4:memory:/docker/${ID_A}\n1:name=systemd:/x\n0::/docker/${ID_A}\n`), `/docker/${ID_A}`);
    assert.equal(cgroupV2PathOf('4:memory:/x\n3:cpu:/\n'), undefined, 'cgroup v1 only');
    assert.deepEqual(containerFromCgroup(`/machine.slice/libpod-${ID_B}.scope/container`), { id: ID_B, runtime: 'podman' });
  });
});

describe('procCgroupLookup (a /proc and a cgroup v2 mount laid out in a folder)', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'hades-containers-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  it('reads /proc/PID/cgroup and the inode of the folder under the cgroup v2 mount that mountinfo names', () => {
    const mountPoint = path.join(root, 'cgroup2');
    const folder = path.join(mountPoint, `system.slice/docker-${ID_A}.scope`);
    mkdirSync(folder, { recursive: true });
    mkdirSync(path.join(root, 'self'));
    mkdirSync(path.join(root, '4242'));
    writeFileSync(path.join(root, 'self', 'mountinfo'), `22 1 0:21 / /proc rw,nosuid - proc proc rw\n30 22 0:26 / ${mountPoint} rw,nosuid,nodev - cgroup2 cgroup2 rw\n`);
    writeFileSync(path.join(root, '4242', 'cgroup'), `0::${PATH_A}\n`);
    const lookup = procCgroupLookup(root);
    assert.equal(lookup.procCgroup(4242), `0::${PATH_A}\n`);
    assert.equal(lookup.procCgroup(4243), undefined, 'a process that is gone');
    assert.equal(lookup.cgroupInode(PATH_A), statSync(folder).ino);
    assert.equal(lookup.cgroupInode('/no/such/cgroup'), undefined);
    const cache = new ContainerCache(16, lookup);
    assert.deepEqual(cache.ofId(statSync(folder).ino, 4242, 0), { id: ID_A, runtime: 'docker' });
  });
});

// ----- the builder's events -----

function fixtureRecords(): (DriverRecord | SecurityRecord)[] {
  const records: (DriverRecord | SecurityRecord)[] = [];
  const counters = newDecodeCounters();
  for (const f of new FrameReader().push(readFileSync(`${projectRoot}test/fixtures/driver/security-ebpf.bin`))) if (f.type === 2) decodeRecords(f.payload, counters, records);
  return records;
}

function builderWith(lookup: CgroupLookup): EventBuilder {
  const builder = new EventBuilder(new ProcessTree('test', 65536), new Accounts(), new ExecutableHasher({ enabled: false, maxFileBytes: 1 << 20, maxBytesPerSecond: 1 << 20 }), {
    host: { name: 'test', kernel: '6.18', architecture: 'x64' },
    agentVersion: 'test',
    ancestors: 8,
    containers: new ContainerCache(64, lookup),
  });
  builder.bootTimeNs = 1_795_850_000_000_000_000;
  return builder;
}

describe('EventBuilder: every event of a process names its container', () => {
  const records = fixtureRecords();
  const exec = records.find((r): r is ExecRecord => r.type === 'exec') as ExecRecord;
  const connect = records.find((r): r is SocketRecord => r.type === 'connect') as SocketRecord;
  const fork = records.find((r): r is ForkRecord => r.type === 'fork') as ForkRecord;
  const exit = records.find((r): r is ExitRecord => r.type === 'exit') as ExitRecord;
  const PID = 31_000;

  async function built(builder: EventBuilder, r: DriverRecord): Promise<HadesEvent> {
    const e = builder.build(r);
    return e instanceof Promise ? await e : e;
  }

  function assertValid(e: HadesEvent): Record<string, any> {
    const check = checkEvent(wire(e));
    assert.ok(check.ok, JSON.stringify(check.ok ? [] : check.problems));
    assert.equal(serializeEvent(e), JSON.stringify(e));
    return wire(e);
  }

  it('a connect, the child it forks and its exit carry the container of its exec', async () => {
    const sim = simulated({}, {});
    const builder = builderWith(sim.lookup);
    const security = new SecurityEvents(builder, { protectedPaths: [] });
    const started = assertValid(await built(builder, { ...exec, pid: PID, tid: PID, cgroupId: 9001, cgroupPath: PATH_A }));
    assert.deepEqual(started['container'], { id: ID_A, runtime: 'docker' });
    const [net] = security.build({ ...connect, pid: PID, tid: PID, startNs: exec.startNs, cgroupId: 9001 });
    assert.deepEqual(assertValid(net as HadesEvent)['container'], started['container']);
    const child = assertValid(await built(builder, { ...fork, pid: PID, tid: PID, childPid: PID + 1, cgroupId: 9001 }));
    assert.deepEqual(child['container'], started['container']);
    const ended = assertValid(await built(builder, { ...exit, pid: PID + 1, tid: PID + 1, startNs: fork.childStartNs, ppid: PID }));
    assert.deepEqual(ended['container'], started['container']);
    assert.deepEqual(sim.reads, { proc: 0, stat: 0 });
  });

  it('a process whose exec was not seen in its cgroup: the record\'s cgroup from /proc, then its exit', async () => {
    // The process moved into the container's cgroup after its exec (runc does), or was there
    // before the agent started: its exec named no container.
    const sim = simulated({ [PID + 10]: PATH_B }, { [PATH_B]: 9100 });
    const builder = builderWith(sim.lookup);
    const security = new SecurityEvents(builder, { protectedPaths: [] });
    const started = assertValid(await built(builder, { ...exec, pid: PID + 10, tid: PID + 10, cgroupId: 9002, cgroupPath: HOST_PATH }));
    assert.equal(started['container'], undefined);
    const [net] = security.build({ ...connect, pid: PID + 10, tid: PID + 10, startNs: exec.startNs, cgroupId: 9100 });
    assert.deepEqual(assertValid(net as HadesEvent)['container'], { id: ID_B, runtime: 'containerd' });
    const ended = assertValid(await built(builder, { ...exit, pid: PID + 10, tid: PID + 10, startNs: exec.startNs, ppid: exec.ppid }));
    assert.deepEqual(ended['container'], { id: ID_B, runtime: 'containerd' }, 'the tree learnt it from the connect');
  });

  it('a host process (a cgroup of no container) carries none, even when the tree thought otherwise', async () => {
    const sim = simulated({}, {});
    const builder = builderWith(sim.lookup);
    const security = new SecurityEvents(builder, { protectedPaths: [] });
    await built(builder, { ...exec, pid: PID + 20, tid: PID + 20, cgroupId: 9003, cgroupPath: PATH_A });
    await built(builder, { ...exec, pid: PID + 21, tid: PID + 21, cgroupId: 9004, cgroupPath: HOST_PATH });
    // PID + 20 left the container for the host's cgroup 9004 (known as no container's).
    const [net] = security.build({ ...connect, pid: PID + 20, tid: PID + 20, startNs: exec.startNs, cgroupId: 9004 });
    assert.equal(assertValid(net as HadesEvent)['container'], undefined);
    // A record whose cgroup cannot be told: the container the tree knows.
    const [unknown] = security.build({ ...connect, pid: PID + 21, tid: PID + 21, startNs: exec.startNs, cgroupId: 9999 });
    assert.equal(assertValid(unknown as HadesEvent)['container'], undefined);
  });

  it('keeps an exec event as it was: a cut path shows what it shows, and no /proc read', async () => {
    const sim = simulated({}, {});
    const builder = builderWith(sim.lookup);
    const cut = assertValid(await built(builder, { ...exec, pid: PID + 30, tid: PID + 30, cgroupId: 9005, cgroupPath: PATH_A, flags: exec.flags | RecordFlag.cgroupTruncated }));
    assert.deepEqual(cut['container'], { id: ID_A, runtime: 'docker' });
    assert.deepEqual(sim.reads, { proc: 0, stat: 0 });
  });
});
