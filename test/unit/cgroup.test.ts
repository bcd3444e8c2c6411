/**
 * Cgroups against a simulated kernel: detection from mountinfo and /proc/self/cgroup texts, and
 * the tree's life under cgroup v2 (the machines that run the tests have v1, which the
 * integration test covers for real) and under v1. The simulation keeps the rules the code must
 * respect: v2's no-internal-process rule, controllers reaching a child only through its parent's
 * cgroup.subtree_control, EBUSY on removing a populated cgroup, v1's child quota ceiling and
 * memsw ordering.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Cgroups, cpuQuota, type CgroupFs } from '../../src/agent/cgroup.js';
import { HadesError } from '../../src/common/errors.js';

const UNLIMITED = '9223372036854771712';

function fail(code: string, what: string): never {
  throw Object.assign(new Error(`${code}: ${what}`), { code });
}

interface Node {
  readonly parent: Node | undefined;
  readonly children: Map<string, Node>;
  readonly procs: Set<number>;
  readonly subtree: Set<string>;
  readonly values: Map<string, string>;
  readonly h: Hierarchy;
}

interface Hierarchy {
  readonly mount: string;
  readonly version: 1 | 2;
  readonly controllers: readonly string[];
  readonly root: Node;
}

const v2Files: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  cpu: { 'cpu.max': 'max 100000' },
  memory: {
    'memory.max': 'max',
    'memory.swap.max': 'max',
    'memory.current': '0',
    'memory.peak': '0',
    'memory.events': 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n',
    'memory.oom.group': '0',
  },
};
const v1Files: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  cpu: { 'cpu.cfs_period_us': '100000', 'cpu.cfs_quota_us': '-1' },
  cpuacct: { 'cpuacct.usage': '0' },
  memory: {
    'memory.limit_in_bytes': UNLIMITED,
    'memory.memsw.limit_in_bytes': UNLIMITED,
    'memory.usage_in_bytes': '0',
    'memory.max_usage_in_bytes': '0',
    'memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 0\n',
  },
};

/** A kernel's cgroup file systems, in memory. */
class FakeKernel implements CgroupFs {
  readonly hierarchies: Hierarchy[] = [];
  readonly writes: string[] = [];

  mount(mount: string, version: 1 | 2, controllers: readonly string[]): this {
    const h: Hierarchy = { mount, version, controllers, root: undefined as unknown as Node };
    (h as { root: Node }).root = this.node(undefined, h);
    this.hierarchies.push(h);
    return this;
  }

  /** Makes the cgroups of `folder` (absolute) and puts `pids` in it. */
  place(folder: string, ...pids: number[]): this {
    const { h, parts } = this.split(folder);
    let node = h.root;
    for (const part of parts) {
      let child = node.children.get(part);
      if (child === undefined) {
        child = this.node(node, h);
        node.children.set(part, child);
      }
      node = child;
    }
    for (const pid of pids) this.move(node, pid);
    return this;
  }

  /** A process ends: it leaves every cgroup. */
  exit(pid: number): void {
    const visit = (node: Node): void => {
      node.procs.delete(pid);
      for (const child of node.children.values()) visit(child);
    };
    for (const h of this.hierarchies) visit(h.root);
  }

  /** The pids in the cgroup at `folder`. */
  procs(folder: string): number[] {
    const found = this.locate(folder);
    if (found?.file !== undefined || found === undefined) return fail('ENOENT', folder);
    return [...found.node.procs].sort((a, b) => a - b);
  }

  has(folder: string): boolean {
    const found = this.locate(folder);
    return found !== undefined && found.file === undefined;
  }

  set(file: string, value: string): void {
    const found = this.locate(file);
    if (found?.file === undefined) return fail('ENOENT', file);
    found.node.values.set(found.file, value);
  }

  read(file: string): string {
    const found = this.locate(file);
    if (found?.file === undefined || !this.files(found.node).has(found.file)) return fail('ENOENT', file);
    const { node, file: name } = found;
    if (name === 'cgroup.procs') return [...node.procs].map((p) => `${p}\n`).join('');
    if (name === 'cgroup.controllers') return `${[...this.controllers(node)].join(' ')}\n`;
    if (name === 'cgroup.subtree_control') return `${[...node.subtree].join(' ')}\n`;
    return node.values.get(name) ?? this.files(node).get(name) ?? '';
  }

  write(file: string, value: string): void {
    const found = this.locate(file);
    if (found?.file === undefined || !this.files(found.node).has(found.file)) return fail('ENOENT', file);
    const { node, file: name } = found;
    this.writes.push(`${file}=${value}`);
    if (name === 'cgroup.procs') {
      if (node.h.version === 2 && node.parent !== undefined && node.subtree.size > 0) fail('EBUSY', file);
      this.move(node, Number(value));
    } else if (name === 'cgroup.subtree_control') {
      this.subtreeControl(node, value, file);
    } else if (name === 'cpu.cfs_quota_us') {
      const quota = Number(value);
      const parentQuota = node.parent === undefined ? -1 : Number(this.read(path.join(this.folderOf(node.parent), 'cpu.cfs_quota_us')));
      if (quota !== -1 && (quota < 1000 || (parentQuota !== -1 && quota > parentQuota))) fail('EINVAL', file);
      node.values.set(name, value);
    } else if (name === 'memory.limit_in_bytes' || name === 'memory.memsw.limit_in_bytes') {
      const bytes = value === '-1' ? UNLIMITED : value;
      const limit = BigInt(name === 'memory.limit_in_bytes' ? bytes : this.read(path.join(this.folderOf(node), 'memory.limit_in_bytes')));
      const memsw = BigInt(name === 'memory.memsw.limit_in_bytes' ? bytes : this.read(path.join(this.folderOf(node), 'memory.memsw.limit_in_bytes')));
      if (memsw < limit) fail('EINVAL', file);
      node.values.set(name, bytes);
    } else if (name === 'cpu.max') {
      if (!/^(max|\d+) \d+$/.test(value)) fail('EINVAL', file);
      node.values.set(name, value);
    } else {
      node.values.set(name, value);
    }
  }

  exists(file: string): boolean {
    const found = this.locate(file);
    return found !== undefined && (found.file === undefined || this.files(found.node).has(found.file));
  }

  mkdir(dir: string): boolean {
    const parent = this.locate(path.dirname(dir));
    if (parent === undefined || parent.file !== undefined) return fail('ENOENT', dir);
    const name = path.basename(dir);
    if (parent.node.children.has(name)) return false;
    parent.node.children.set(name, this.node(parent.node, parent.node.h));
    return true;
  }

  rmdir(dir: string): void {
    const found = this.locate(dir);
    if (found === undefined || found.file !== undefined) return fail('ENOENT', dir);
    const { node } = found;
    if (node.parent === undefined || node.children.size > 0 || node.procs.size > 0) return fail('EBUSY', dir);
    for (const [name, child] of node.parent.children) if (child === node) node.parent.children.delete(name);
  }

  list(dir: string): string[] {
    const found = this.locate(dir);
    if (found === undefined || found.file !== undefined) return fail('ENOENT', dir);
    return [...found.node.children.keys()];
  }

  private node(parent: Node | undefined, h: Hierarchy): Node {
    return { parent, children: new Map(), procs: new Set(), subtree: new Set(), values: new Map(), h };
  }

  private controllers(node: Node): Set<string> {
    return node.parent === undefined ? new Set(node.h.controllers) : node.parent.subtree;
  }

  /** Control files of a cgroup with their defaults. */
  private files(node: Node): Map<string, string> {
    const files = new Map<string, string>([['cgroup.procs', '']]);
    if (node.h.version === 2) {
      for (const f of ['cgroup.controllers', 'cgroup.subtree_control']) files.set(f, '');
      files.set('cpu.stat', 'usage_usec 0\nuser_usec 0\nsystem_usec 0\n');
      if (node.parent !== undefined) {
        for (const c of node.parent.subtree) for (const [f, v] of Object.entries(v2Files[c] ?? {})) files.set(f, v);
      }
    } else {
      for (const c of node.h.controllers) for (const [f, v] of Object.entries(v1Files[c] ?? {})) files.set(f, v);
    }
    return files;
  }

  private subtreeControl(node: Node, value: string, file: string): void {
    for (const token of value.split(' ')) {
      const controller = token.slice(1);
      if (token.startsWith('+')) {
        if (!this.controllers(node).has(controller)) fail('ENOENT', file);
        if (node.parent !== undefined && node.procs.size > 0) fail('EBUSY', file);
        node.subtree.add(controller);
      } else {
        if ([...node.children.values()].some((child) => child.subtree.has(controller))) fail('EBUSY', file);
        node.subtree.delete(controller);
      }
    }
  }

  private move(target: Node, pid: number): void {
    const visit = (node: Node): void => {
      node.procs.delete(pid);
      for (const child of node.children.values()) visit(child);
    };
    visit(target.h.root);
    target.procs.add(pid);
  }

  private split(file: string): { h: Hierarchy; parts: string[] } {
    const h = this.hierarchies
      .filter((each) => file === each.mount || file.startsWith(`${each.mount}/`))
      .sort((a, b) => b.mount.length - a.mount.length)[0];
    if (h === undefined) return fail('ENOENT', file);
    return { h, parts: file.slice(h.mount.length).split('/').filter((p) => p !== '') };
  }

  private locate(file: string): { node: Node; file?: string } | undefined {
    let split: { h: Hierarchy; parts: string[] };
    try {
      split = this.split(file);
    } catch {
      return undefined;
    }
    let node = split.h.root;
    for (const [i, part] of split.parts.entries()) {
      const child = node.children.get(part);
      if (child !== undefined) node = child;
      else if (i === split.parts.length - 1) return { node, file: part };
      else return undefined;
    }
    return { node };
  }

  private folderOf(node: Node): string {
    const parts: string[] = [];
    for (let n = node; n.parent !== undefined; n = n.parent) {
      for (const [name, child] of n.parent.children) if (child === n) parts.unshift(name);
    }
    return path.join(node.h.mount, ...parts);
  }
}

const ROOT = '/fake/cgroup';
const SERVICE = '/system.slice/hades-agent.service';
const AGENT = 4242;
const MiB = 1 << 20;

/** A v2 host like systemd's with Delegate=yes: the service's cgroup is offered cpu and memory and holds the agent. */
function v2Host(): FakeKernel {
  const kernel = new FakeKernel().mount(ROOT, 2, ['cpu', 'memory', 'io', 'pids']).place(`${ROOT}${SERVICE}`, AGENT);
  kernel.write(`${ROOT}/cgroup.subtree_control`, '+cpu +memory +io +pids');
  kernel.write(`${ROOT}/system.slice/cgroup.subtree_control`, '+cpu +memory +pids');
  kernel.writes.length = 0;
  return kernel;
}

function detectV2(kernel: FakeKernel, self = `0::${SERVICE}\n`): Cgroups {
  const found = Cgroups.detect({ root: ROOT, procSelfCgroup: self, fs: kernel, pid: AGENT });
  assert.ok(found instanceof Cgroups, found instanceof Cgroups ? '' : found.unavailable);
  return found;
}

function cgroupError(code: 'HADES_ERR_CGROUP' | 'HADES_ERR_INTERNAL', pattern: RegExp): (error: unknown) => boolean {
  return (error) => error instanceof HadesError && error.code === code && pattern.test(error.message);
}

/** This kind of machine: v1 controllers on a tmpfs, and an empty cgroup2 at unified. */
const hybridMountinfo = [
  '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
  '32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
  '33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct',
  '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
  '39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids',
  '40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd',
  '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
  '',
].join('\n');
const hybridSelf = ['9:name=systemd:/', '8:pids:/', '4:memory:/process_api/abc', '2:cpuacct:/', '1:cpu:/', '0::/', ''].join('\n');

function hybridHost(): FakeKernel {
  return new FakeKernel()
    .mount('/sys/fs/cgroup/cpu', 1, ['cpu'])
    .mount('/sys/fs/cgroup/cpuacct', 1, ['cpuacct'])
    .mount('/sys/fs/cgroup/memory', 1, ['memory'])
    .mount('/sys/fs/cgroup/unified', 2, ['hugetlb'])
    .place('/sys/fs/cgroup/cpu', AGENT)
    .place('/sys/fs/cgroup/cpuacct', AGENT)
    .place('/sys/fs/cgroup/memory/process_api/abc', AGENT, 77);
}

function detectV1(kernel: FakeKernel): Cgroups {
  const found = Cgroups.detect({ mountinfo: hybridMountinfo, procSelfCgroup: hybridSelf, fs: kernel, pid: AGENT, name: 'hx' });
  assert.ok(found instanceof Cgroups, found instanceof Cgroups ? '' : found.unavailable);
  return found;
}

describe('Cgroups.detect', () => {
  it('takes cgroup v2 when its root offers cpu and memory, under the agent\'s own cgroup', () => {
    const cgroups = detectV2(v2Host());
    assert.equal(cgroups.version, 2);
    assert.equal(cgroups.base, `${ROOT}${SERVICE}/hades`);
    assert.deepEqual(cgroups.folders, [`${ROOT}${SERVICE}/hades`]);
  });

  it('gives a second agent started from the same cgroup a tree of its own, and takes over a dead agent\'s', () => {
    const kernel = v2Host();
    detectV2(kernel).setup({});
    assert.deepEqual(kernel.procs(`${ROOT}${SERVICE}/hades/agent`), [AGENT]);
    const second = 4343;
    kernel.place(`${ROOT}${SERVICE}`, second);
    const other = Cgroups.detect({ root: ROOT, procSelfCgroup: `0::${SERVICE}\n`, fs: kernel, pid: second });
    assert.ok(other instanceof Cgroups);
    assert.equal(other.base, `${ROOT}${SERVICE}/hades-${second}`);
    // The agent itself, started again (its tree holds only its own pid), keeps the plain name.
    const again = detectV2(kernel);
    assert.equal(again.base, `${ROOT}${SERVICE}/hades`);
  });

  it('finds v2 through mountinfo, and maps a container\'s mount root onto the cgroup path', () => {
    const kernel = new FakeKernel().mount('/sys/fs/cgroup', 2, ['cpu', 'memory']).place('/sys/fs/cgroup/inner', AGENT);
    const mountinfo = '29 23 0:26 /docker/abc /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n';
    const found = Cgroups.detect({ mountinfo, procSelfCgroup: '0::/docker/abc/inner\n', fs: kernel, pid: AGENT, name: 'h' });
    assert.ok(found instanceof Cgroups);
    assert.equal(found.base, '/sys/fs/cgroup/inner/h');
    const outside = Cgroups.detect({ mountinfo, procSelfCgroup: '0::/elsewhere\n', fs: kernel, pid: AGENT });
    assert.ok(!(outside instanceof Cgroups));
    assert.match(outside.unavailable, /not visible under \/sys\/fs\/cgroup/);
  });

  it('falls back to v1 on a hybrid host whose cgroup2 has no cpu or memory, with cpu and cpuacct apart', () => {
    const cgroups = detectV1(hybridHost());
    assert.equal(cgroups.version, 1);
    assert.deepEqual(cgroups.folders, ['/sys/fs/cgroup/cpu/hx', '/sys/fs/cgroup/cpuacct/hx', '/sys/fs/cgroup/memory/process_api/abc/hx']);
    assert.match(cgroups.base, /^cpu:\/sys\/fs\/cgroup\/cpu\/hx cpuacct:.* memory:\/sys\/fs\/cgroup\/memory\/process_api\/abc\/hx$/);
  });

  it('uses one hierarchy for cpu and cpuacct mounted together', () => {
    const kernel = new FakeKernel().mount('/cg/cpu,cpuacct', 1, ['cpu', 'cpuacct']).mount('/cg/memory', 1, ['memory']);
    const mountinfo = [
      '32 31 0:29 / /cg/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct',
      '35 31 0:32 / /cg/memory rw - cgroup cgroup rw,memory',
    ].join('\n');
    const found = Cgroups.detect({ mountinfo, procSelfCgroup: '3:cpu,cpuacct:/a\n2:memory:/a\n', fs: kernel });
    assert.ok(found instanceof Cgroups);
    assert.deepEqual(found.folders, ['/cg/cpu,cpuacct/a/hades', '/cg/memory/a/hades']);
  });

  it('says why when neither version is usable', () => {
    const kernel = new FakeKernel().mount('/sys/fs/cgroup/unified', 2, ['hugetlb']).mount('/sys/fs/cgroup/cpu', 1, ['cpu']);
    const mountinfo = hybridMountinfo.split('\n').filter((l) => !/memory|cpuacct/.test(l)).join('\n');
    const found = Cgroups.detect({ mountinfo, procSelfCgroup: hybridSelf, fs: kernel });
    assert.ok(!(found instanceof Cgroups));
    assert.match(found.unavailable, /unified offers hugetlb, not cpu and memory/);
    assert.match(found.unavailable, /no cgroup v1 cpuacct controller is mounted; no cgroup v1 memory controller is mounted/);
    const none = Cgroups.detect({ mountinfo: '', procSelfCgroup: '' });
    assert.ok(!(none instanceof Cgroups));
    assert.equal(none.unavailable, 'no cgroup file system is mounted');
  });

  it('refuses read-only mounts', () => {
    const kernel = new FakeKernel().mount('/sys/fs/cgroup', 2, ['cpu', 'memory']);
    const found = Cgroups.detect({ mountinfo: '29 23 0:26 / /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 rw\n', procSelfCgroup: '0::/\n', fs: kernel });
    assert.ok(!(found instanceof Cgroups));
    assert.match(found.unavailable, /read-only/);
  });

  it('rejects a base name that is not a plain folder name', () => {
    for (const name of ['', '../x', 'A', 'a/b', 'x'.repeat(65)]) {
      assert.throws(() => Cgroups.detect({ root: ROOT, procSelfCgroup: '0::/\n', fs: v2Host(), name }), cgroupError('HADES_ERR_CGROUP', /not a valid cgroup name/));
    }
  });
});

describe('Cgroups under v2', () => {
  it('moves the agent out of its service cgroup, hands cpu and memory down and sets the totals', () => {
    const kernel = v2Host();
    const cgroups = detectV2(kernel);
    cgroups.setup({ cpuPercent: 50, memoryBytes: 1024 * MiB });
    const base = `${ROOT}${SERVICE}/hades`;
    assert.deepEqual(kernel.procs(`${ROOT}${SERVICE}`), []);
    assert.deepEqual(kernel.procs(`${base}/agent`), [AGENT]);
    assert.equal(kernel.read(`${ROOT}${SERVICE}/cgroup.subtree_control`).trim(), 'cpu memory');
    assert.equal(kernel.read(`${base}/cgroup.subtree_control`).trim(), 'cpu memory');
    assert.equal(kernel.read(`${base}/cpu.max`), '50000 100000');
    assert.equal(kernel.read(`${base}/memory.max`), String(1024 * MiB));
    assert.equal(kernel.read(`${base}/memory.swap.max`), '0');
    assert.equal(cgroups.moveSelf().name, 'agent');
    assert.deepEqual(kernel.procs(`${base}/agent`), [AGENT]);
  });

  it('creates plugin leaves with their own ceilings, one OOM group each, and reads their usage', () => {
    const kernel = v2Host();
    const cgroups = detectV2(kernel);
    cgroups.setup({});
    const leaf = `${ROOT}${SERVICE}/hades/plugin-driver`;
    const driver = cgroups.group('driver', { cpuPercent: 10, memoryBytes: 400 * MiB });
    assert.equal(kernel.read(`${leaf}/cpu.max`), '10000 100000');
    assert.equal(kernel.read(`${leaf}/memory.max`), String(400 * MiB));
    assert.equal(kernel.read(`${leaf}/memory.swap.max`), '0');
    assert.equal(kernel.read(`${leaf}/memory.oom.group`), '1');
    assert.equal(kernel.read(`${ROOT}${SERVICE}/hades/cpu.max`), 'max 100000');
    kernel.place('/fake/cgroup/elsewhere', 5000);
    driver.add(5000);
    assert.deepEqual(kernel.procs(leaf), [5000]);
    kernel.set(`${leaf}/cpu.stat`, 'usage_usec 1234\nuser_usec 1000\nsystem_usec 234\n');
    kernel.set(`${leaf}/memory.current`, '2048');
    kernel.set(`${leaf}/memory.peak`, '4096');
    kernel.set(`${leaf}/memory.events`, 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n');
    assert.deepEqual(driver.usage(), { cpuUsageUsec: 1234, memoryBytes: 2048, memoryPeakBytes: 4096, oomKills: 1 });
    assert.equal(cgroups.group('driver', { cpuPercent: 20 }), driver, 'a second call reuses the leaf');
    assert.equal(kernel.read(`${leaf}/cpu.max`), '20000 100000');
    assert.equal(kernel.read(`${leaf}/memory.max`), 'max', 'an absent ceiling is lifted');
    assert.equal(kernel.read(`${leaf}/memory.swap.max`), 'max');
  });

  it('keeps the CPU ratio exact below 1% by stretching the period', () => {
    assert.deepEqual(cpuQuota(5), { quota: 5000, period: 100_000 });
    assert.deepEqual(cpuQuota(250), { quota: 250_000, period: 100_000 });
    assert.deepEqual(cpuQuota(0.5), { quota: 5000, period: 1_000_000 });
    assert.deepEqual(cpuQuota(0.01), { quota: 1000, period: 1_000_000 });
    const kernel = v2Host();
    const cgroups = detectV2(kernel);
    cgroups.setup({});
    cgroups.group('slow', { cpuPercent: 0.5 });
    assert.equal(kernel.read(`${ROOT}${SERVICE}/hades/plugin-slow/cpu.max`), '5000 1000000');
  });

  it('validates names and limits before touching the tree', () => {
    const kernel = v2Host();
    const cgroups = detectV2(kernel);
    assert.throws(() => cgroups.group('x', {}), cgroupError('HADES_ERR_INTERNAL', /setup\(\) must come first/));
    cgroups.setup({});
    for (const name of ['', 'Driver', '../../etc', 'a b']) assert.throws(() => cgroups.group(name, {}), cgroupError('HADES_ERR_CGROUP', /not a valid cgroup name/));
    for (const limits of [{ cpuPercent: 0 }, { cpuPercent: Number.NaN }, { memoryBytes: 1000 }, { memoryBytes: MiB + 0.5 }]) {
      assert.throws(() => cgroups.group('x', limits), cgroupError('HADES_ERR_CGROUP', /must be/));
    }
    assert.equal(kernel.has(`${ROOT}${SERVICE}/hades/plugin-x`), false);
    assert.throws(() => cgroups.group('x', {}).add(-1), cgroupError('HADES_ERR_CGROUP', /not a process id/));
  });

  it('does not move processes that are not its own: it reports them', () => {
    const kernel = v2Host().place(`${ROOT}${SERVICE}`, 31337);
    const cgroups = detectV2(kernel);
    assert.throws(() => cgroups.setup({ cpuPercent: 50 }), cgroupError('HADES_ERR_CGROUP', /also holds 1 other process \(31337\).*Delegate=yes/));
    assert.deepEqual(kernel.procs(`${ROOT}${SERVICE}`), [AGENT, 31337]);
    assert.deepEqual(cgroups.cleanup(), []);
    assert.equal(kernel.has(`${ROOT}${SERVICE}/hades`), false);
  });

  it('says when its cgroup was not given the controllers (no delegation)', () => {
    const kernel = v2Host();
    kernel.write(`${ROOT}/system.slice/cgroup.subtree_control`, '-memory');
    const cgroups = detectV2(kernel);
    assert.throws(() => cgroups.setup({}), cgroupError('HADES_ERR_CGROUP', /memory is not available in .*hades-agent\.service.*Delegate=yes/));
  });

  it('needs no move when the agent runs in the root cgroup', () => {
    const kernel = new FakeKernel().mount(ROOT, 2, ['cpu', 'memory']).place(ROOT, AGENT, 1);
    const cgroups = detectV2(kernel, '0::/\n');
    cgroups.setup({ memoryBytes: 64 * MiB });
    assert.deepEqual(kernel.procs(ROOT), [1, AGENT]);
    cgroups.moveSelf();
    assert.deepEqual(kernel.procs(ROOT), [1]);
    assert.deepEqual(cgroups.cleanup(), []);
    assert.deepEqual(kernel.procs(ROOT), [1, AGENT]);
    assert.equal(kernel.read(`${ROOT}/cgroup.subtree_control`).trim(), '', 'what it enabled is disabled again');
  });

  it('cleans up: leaves with processes stay and are reported; a later call finishes and the agent goes home', () => {
    const kernel = v2Host().place(`${ROOT}/elsewhere`, 6000);
    const cgroups = detectV2(kernel);
    cgroups.setup({ cpuPercent: 50 });
    cgroups.moveSelf();
    cgroups.group('busy', {}).add(6000);
    const idle = cgroups.group('idle', {});
    idle.remove();
    assert.throws(() => cgroups.group('busy', {}).remove(), cgroupError('HADES_ERR_CGROUP', /processes are still in it/));
    const base = `${ROOT}${SERVICE}/hades`;
    assert.deepEqual(cgroups.cleanup(), [`${base}/plugin-busy`, `${base}/agent`, base]);
    assert.deepEqual(kernel.procs(`${base}/agent`), [AGENT], 'cannot go home while its old cgroup hands controllers down');
    kernel.place(`${ROOT}/elsewhere`, 6000);
    assert.deepEqual(cgroups.cleanup(), [], 'once the plugin is gone, a second call finishes');
    assert.equal(kernel.has(base), false);
    assert.deepEqual(kernel.procs(`${ROOT}${SERVICE}`), [AGENT]);
  });

  it('removes what an agent killed without cleaning up left in its tree: processes in plugin leaves are killed, never this agent', () => {
    const kernel = v2Host();
    const base = `${ROOT}${SERVICE}/hades`;
    // What a killed agent leaves: its tree, an empty plugin leaf, and one whose plugin lives on.
    kernel.place(`${base}/agent`).place(`${base}/plugin-logs`).place(`${base}/plugin-honeypot`, 6100, 6101).place(`${base}/other`);
    const killed: number[] = [];
    const found = Cgroups.detect({ root: ROOT, procSelfCgroup: `0::${SERVICE}\n`, fs: kernel, pid: AGENT, pause: () => undefined, kill: (pid) => {
      killed.push(pid);
      kernel.exit(pid);
    } });
    assert.ok(found instanceof Cgroups);
    assert.equal(found.base, base, 'the dead agent\'s tree is taken over');
    const { stale, removed } = found.setup({});
    assert.deepEqual(stale, []);
    assert.deepEqual(removed, [{ folder: `${base}/plugin-logs`, killed: [] }, { folder: `${base}/plugin-honeypot`, killed: [6100, 6101] }]);
    assert.deepEqual(killed, [6100, 6101]);
    assert.equal(kernel.has(`${base}/plugin-honeypot`), false);
    assert.equal(kernel.has(`${base}/other`), true, 'a folder that is not a plugin leaf is not touched');
    // The same run setting up again after a cleanup keeps its own leaves out of it.
    found.moveSelf();
    found.group('inventory', {}).add(6200);
    assert.deepEqual(found.cleanup(), [`${base}/plugin-inventory`, `${base}/agent`, base]);
    assert.deepEqual(found.setup({}).removed, []);
    assert.equal(kernel.has(`${base}/plugin-inventory`), true);
    assert.deepEqual(kernel.procs(`${base}/plugin-inventory`), [6200]);
  });

  it('removes the trees of dead agents beside its own (<name>-<pid>), and leaves a live agent\'s tree and other software\'s cgroups alone', () => {
    const kernel = v2Host();
    const parent = `${ROOT}${SERVICE}`;
    // A live agent holds `hades`: this one takes hades-<pid>. A dead second agent left hades-4000
    // with a plugin still running; other software has hadesx and hades-db-1.
    kernel.place(`${parent}/hades/agent`, 5000).place(`${parent}/hades/plugin-logs`, 5001);
    kernel.place(`${parent}/hades-4000/agent`).place(`${parent}/hades-4000/plugin-driver`, 4001);
    kernel.place(`${parent}/hadesx`, 7000).place(`${parent}/hades-db-1`, 7001);
    const killed: number[] = [];
    const found = Cgroups.detect({ root: ROOT, procSelfCgroup: `0::${SERVICE}\n`, fs: kernel, pid: AGENT, pause: () => undefined, kill: (pid) => {
      killed.push(pid);
      kernel.exit(pid);
    } });
    assert.ok(found instanceof Cgroups);
    assert.equal(found.base, `${parent}/hades-${AGENT}`);
    const { stale, removed } = found.setup({});
    assert.deepEqual(stale, []);
    assert.deepEqual(removed.map((r) => r.folder).sort(), [`${parent}/hades-4000`, `${parent}/hades-4000/agent`, `${parent}/hades-4000/plugin-driver`]);
    assert.deepEqual(killed, [4001]);
    assert.equal(kernel.has(`${parent}/hades-4000`), false);
    assert.deepEqual([kernel.procs(`${parent}/hades/agent`), kernel.procs(`${parent}/hades/plugin-logs`)], [[5000], [5001]], 'the live agent\'s tree is left alone');
    assert.deepEqual([kernel.procs(`${parent}/hadesx`), kernel.procs(`${parent}/hades-db-1`)], [[7000], [7001]], 'other software\'s cgroups are left alone');
  });

  it('with a simulated kernel and no kill given, kills nothing and reports the leaves that hold processes', () => {
    const kernel = v2Host();
    const base = `${ROOT}${SERVICE}/hades`;
    kernel.place(`${base}/agent`).place(`${base}/plugin-honeypot`, 6100);
    const cgroups = detectV2(kernel);
    assert.deepEqual(cgroups.setup({}).stale, [`${base}/plugin-honeypot`]);
    assert.deepEqual(kernel.procs(`${base}/plugin-honeypot`), [6100]);
  });

  it('cleans up completely when nothing is left running, and twice is harmless', () => {
    const kernel = v2Host().place(`${ROOT}/elsewhere`, 6000);
    const cgroups = detectV2(kernel);
    cgroups.setup({ cpuPercent: 50, memoryBytes: 256 * MiB });
    cgroups.moveSelf();
    cgroups.group('a', { cpuPercent: 5 }).add(6000);
    cgroups.group('b', { memoryBytes: 64 * MiB });
    kernel.place(`${ROOT}/elsewhere`, 6000);
    assert.deepEqual(cgroups.cleanup(), []);
    assert.equal(kernel.has(`${ROOT}${SERVICE}/hades`), false);
    assert.deepEqual(kernel.procs(`${ROOT}${SERVICE}`), [AGENT]);
    assert.equal(kernel.read(`${ROOT}${SERVICE}/cgroup.subtree_control`).trim(), '');
    assert.deepEqual(cgroups.cleanup(), []);
    cgroups.setup({}); // and it can start over
    assert.equal(kernel.has(`${ROOT}${SERVICE}/hades/agent`), true);
    assert.deepEqual(cgroups.cleanup(), []);
  });
});

describe('Cgroups under v1', () => {
  it('builds the same tree in the cpu, cpuacct and memory hierarchies, without swap', () => {
    const kernel = hybridHost();
    const cgroups = detectV1(kernel);
    cgroups.setup({ cpuPercent: 50, memoryBytes: 512 * MiB });
    for (const folder of cgroups.folders) assert.equal(kernel.has(`${folder}/agent`), true);
    assert.equal(kernel.read('/sys/fs/cgroup/cpu/hx/cpu.cfs_quota_us'), '50000');
    assert.equal(kernel.read('/sys/fs/cgroup/cpu/hx/cpu.cfs_period_us'), '100000');
    const memory = '/sys/fs/cgroup/memory/process_api/abc/hx';
    assert.equal(kernel.read(`${memory}/memory.limit_in_bytes`), String(512 * MiB));
    assert.equal(kernel.read(`${memory}/memory.memsw.limit_in_bytes`), String(512 * MiB));
    cgroups.moveSelf();
    for (const folder of cgroups.folders) assert.deepEqual(kernel.procs(`${folder}/agent`), [AGENT]);
    assert.deepEqual(kernel.procs('/sys/fs/cgroup/memory/process_api/abc'), [77], 'the other process stays where it is');
  });

  it('orders memory and memsw writes both ways, clamps a leaf\'s CPU to the total, and reads usage', () => {
    const kernel = hybridHost().place('/sys/fs/cgroup/cpu/x', 9000);
    const cgroups = detectV1(kernel);
    cgroups.setup({ cpuPercent: 50 });
    const leaf = cgroups.group('p', { cpuPercent: 80, memoryBytes: 64 * MiB });
    assert.equal(kernel.read('/sys/fs/cgroup/cpu/hx/plugin-p/cpu.cfs_quota_us'), '50000', 'v1 refuses a child above its parent');
    const memory = '/sys/fs/cgroup/memory/process_api/abc/hx/plugin-p';
    leaf.setLimits({ memoryBytes: 128 * MiB });
    assert.equal(kernel.read(`${memory}/memory.limit_in_bytes`), String(128 * MiB));
    leaf.setLimits({ memoryBytes: 32 * MiB });
    assert.equal(kernel.read(`${memory}/memory.memsw.limit_in_bytes`), String(32 * MiB));
    leaf.setLimits({});
    assert.equal(kernel.read(`${memory}/memory.limit_in_bytes`), UNLIMITED);
    assert.equal(kernel.read('/sys/fs/cgroup/cpu/hx/plugin-p/cpu.cfs_quota_us'), '-1');
    kernel.set('/sys/fs/cgroup/cpuacct/hx/plugin-p/cpuacct.usage', '5000999');
    kernel.set(`${memory}/memory.usage_in_bytes`, '1000');
    kernel.set(`${memory}/memory.max_usage_in_bytes`, '3000');
    kernel.set(`${memory}/memory.oom_control`, 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n');
    assert.deepEqual(leaf.usage(), { cpuUsageUsec: 5000, memoryBytes: 1000, memoryPeakBytes: 3000, oomKills: 2 });
    leaf.add(9000);
    for (const folder of cgroups.folders) assert.deepEqual(kernel.procs(`${folder}/plugin-p`), [9000]);
  });

  it('puts the agent back in each hierarchy and removes every folder', () => {
    const kernel = hybridHost();
    const cgroups = detectV1(kernel);
    cgroups.setup({ memoryBytes: 256 * MiB });
    cgroups.moveSelf();
    cgroups.group('a', {});
    assert.deepEqual(cgroups.cleanup(), []);
    for (const folder of cgroups.folders) assert.equal(kernel.has(folder), false);
    assert.deepEqual(kernel.procs('/sys/fs/cgroup/cpu'), [AGENT]);
    assert.deepEqual(kernel.procs('/sys/fs/cgroup/memory/process_api/abc'), [77, AGENT]);
  });
});
