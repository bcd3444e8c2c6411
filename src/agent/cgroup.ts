/**
 * cgroup placement and kernel-enforced CPU and memory ceilings for the agent and its plugins.
 *
 * The tree is made under the agent's own cgroup of each hierarchy, so that whatever limits the
 * agent from outside (systemd's CPUQuota/MemoryMax, a container) still holds for everything in
 * it:
 *
 *   <current>/<name>              the total for Hades (never holds a process itself)
 *   <current>/<name>/agent        the agent's own pid
 *   <current>/<name>/plugin-<x>   one leaf per plugin, with its own ceilings
 *
 * cgroup v2 is used where its cpu and memory controllers are available, v1 (cpu, cpuacct and
 * memory hierarchies) otherwise. v2 lets a cgroup either hold processes or hand controllers to
 * its children, which is why the base holds only leaves; when the agent is the only process of
 * its current cgroup (systemd with Delegate=yes), it moves itself into `agent` first, but it
 * never moves processes that are not its own.
 *
 * Memory ceilings include swap (swap is held at zero) so that a leak ends in an OOM kill the
 * supervisor sees and restarts, rather than in a process thrashing in swap. All file access goes
 * through `CgroupFs` so that the unit tests can run the same code against a simulated kernel.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { HadesError } from '../common/errors.js';

export interface CgroupLimits {
  /** Percent of one core (150 is one and a half cores); absent means no ceiling. */
  readonly cpuPercent?: number;
  /** Bytes of memory, swap excluded (held at zero); absent means no ceiling. */
  readonly memoryBytes?: number;
}

export interface CgroupUsage {
  /** CPU time used by every process that ever ran in the group, microseconds. */
  readonly cpuUsageUsec: number;
  /** Memory charged to the group now, page cache included. */
  readonly memoryBytes: number;
  /** The highest memoryBytes seen, where the kernel keeps it (v1, v2 from Linux 5.19). */
  readonly memoryPeakBytes?: number;
  /** Processes the kernel's OOM killer killed in the group, where the kernel counts them. */
  readonly oomKills?: number;
}

export interface CgroupGroup {
  readonly name: string;
  /** Moves a process (all its threads) into the group. */
  add(pid: number): void;
  /** Sets both ceilings: an absent one is lifted. */
  setLimits(limits: CgroupLimits): void;
  usage(): CgroupUsage;
  /**
   * Kills (SIGKILL) every process still in the group: what a plugin started and that left its
   * process group (setsid) outlives the plugin otherwise. Returns how many were found.
   */
  killAll(): number;
  /** Removes the group's folders; throws when processes are still in it. */
  remove(): void;
}

/** The few file operations cgroups need; tests stand in a simulated kernel. */
export interface CgroupFs {
  read(file: string): string;
  /** Writes into an existing control file (never creates one). */
  write(file: string, value: string): void;
  exists(file: string): boolean;
  /** Creates a folder; false when it already existed. */
  mkdir(dir: string): boolean;
  rmdir(dir: string): void;
  /** The names of the folders (child cgroups) in a folder. */
  list(dir: string): string[];
}

export const realCgroupFs: CgroupFs = {
  read: (file) => readFileSync(file, 'utf8'),
  // r+: no O_CREAT, so a control file that is absent is ENOENT rather than a new plain file.
  write: (file, value) => writeFileSync(file, value, { flag: 'r+' }),
  exists: (file) => existsSync(file),
  mkdir: (dir) => {
    try {
      mkdirSync(dir);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw error;
    }
  },
  rmdir: (dir) => rmdirSync(dir),
  list: (dir) => readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name),
};

export interface CgroupDetectOptions {
  /** A cgroup v2 mount to use instead of looking in mountinfo (tests). */
  readonly root?: string;
  /** The text of /proc/self/cgroup (tests); read when absent. */
  readonly procSelfCgroup?: string;
  /** The text of /proc/self/mountinfo (tests); read when absent. */
  readonly mountinfo?: string;
  /** Name of the base cgroup, [a-z0-9_-]{1,64}; "hades" by default. */
  readonly name?: string;
  readonly fs?: CgroupFs;
  /** The agent's pid; process.pid by default. */
  readonly pid?: number;
  /**
   * Kills a process left in an earlier agent's cgroup: SIGKILL by default on the real kernel;
   * with a simulated `fs` none is killed (its pids are no real processes) unless this is given.
   */
  readonly kill?: (pid: number) => void;
  /** Waits between tries to remove a cgroup whose killed processes are leaving (tests); a short sleep by default. */
  readonly pause?: (ms: number) => void;
}

/** A cgroup folder an earlier agent left that setup() removed, with the processes it killed there. */
export interface LeftoverCgroup {
  readonly folder: string;
  readonly killed: readonly number[];
}

const sleepSync = (ms: number): void => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
};
/** How long setup() waits for killed processes to leave a cgroup before it gives up on removing it. */
const LEFTOVER_WAIT_MS = 2000;

/** One hierarchy the tree lives in: v2's single one, or a v1 mount. */
interface Hierarchy {
  /** The controllers used from it: cpu and memory (v2); some of cpu, cpuacct, memory (v1). */
  readonly controllers: readonly string[];
  /** The agent's cgroup when detected, absolute folder. */
  readonly current: string;
  readonly base: string;
}

interface Membership {
  readonly controllers: readonly string[];
  readonly path: string;
}

interface Mount {
  readonly root: string;
  readonly mountPoint: string;
  readonly readOnly: boolean;
  readonly fsType: string;
  readonly superOptions: readonly string[];
}

const NAME = /^[a-z0-9_-]{1,64}$/;
const V2_CONTROLLERS = ['cpu', 'memory'] as const;
const V1_CONTROLLERS = ['cpu', 'cpuacct', 'memory'] as const;
const PERIOD_USEC = 100_000;
/** The kernel's smallest quota; below 1% the period is stretched to keep the ratio exact. */
const MIN_QUOTA_USEC = 1000;
const MAX_PERIOD_USEC = 1_000_000;
const AGENT_LEAF = 'agent';

const hints: Readonly<Record<string, string>> = {
  EACCES: 'permission denied: run as root, or in a cgroup delegated to this user',
  EPERM: 'not permitted: run as root, or in a cgroup delegated to this user',
  EROFS: 'the cgroup file system is mounted read-only (a container without cgroup delegation?)',
  ENOENT: 'no such file: the controller is not enabled there',
  ESRCH: 'no such process: it has exited',
  EBUSY: 'the cgroup holds processes, or a child still uses the controller',
  EINVAL: 'the kernel refused the value',
  ENOSPC: 'the kernel refused: too many cgroups, or no controller to hand down',
};

function problem(action: string, error: unknown, file: string): HadesError {
  const code = (error as NodeJS.ErrnoException).code ?? String(error);
  const hint = hints[code];
  return new HadesError('HADES_ERR_CGROUP', `${action}: ${code}${hint ? ` (${hint})` : ''}`, { cause: error, details: { file } });
}

function errno(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException).code;
}

function words(text: string): string[] {
  return text.split(/\s+/).filter((w) => w !== '');
}

/**
 * The name of this agent's tree: `name`, unless another live agent already runs in
 * `<current>/<name>/agent` (a second agent started from the same cgroup, as tests and side by
 * side runs do), in which case `<name>-<pid>`, so that neither moves, limits or removes the
 * other's plugins. A tree whose agent is gone is taken over. Any live process in the `agent`
 * leaf counts: a child of a crashed agent left there by a supervisor that does not stop the whole
 * group (systemd's default does) makes the next agent take `<name>-<pid>`; the tree a crashed
 * agent of that name leaves is removed by the next agent's setup() (its `agent` leaf is empty).
 */
function ownName(fs: CgroupFs, currents: readonly string[], name: string, pid: number): string {
  for (const current of currents) {
    const procs = path.join(current, name, AGENT_LEAF, 'cgroup.procs');
    let text: string;
    try {
      if (!fs.exists(procs)) continue;
      text = fs.read(procs);
    } catch {
      continue;
    }
    if (words(text).some((p) => p !== String(pid))) return `${name}-${pid}`;
  }
  return name;
}

function checkName(name: string, what: string): void {
  if (!NAME.test(name)) throw new HadesError('HADES_ERR_CGROUP', `${what} '${name}' is not a valid cgroup name: use 1 to 64 of a-z, 0-9, _ and -`);
}

function checkLimits(limits: CgroupLimits): void {
  const { cpuPercent, memoryBytes } = limits;
  if (cpuPercent !== undefined && !(Number.isFinite(cpuPercent) && cpuPercent > 0 && cpuPercent <= 100_000)) {
    throw new HadesError('HADES_ERR_CGROUP', `cpuPercent must be above 0 and at most 100000 (got ${cpuPercent})`);
  }
  if (memoryBytes !== undefined && !(Number.isSafeInteger(memoryBytes) && memoryBytes >= 1 << 20)) {
    throw new HadesError('HADES_ERR_CGROUP', `memoryBytes must be a whole number of at least 1 MiB (got ${memoryBytes})`);
  }
}

/** Quota and period for a percent of one core, exact down to 0.1%. */
export function cpuQuota(cpuPercent: number): { quota: number; period: number } {
  const quota = Math.round((cpuPercent / 100) * PERIOD_USEC);
  if (quota >= MIN_QUOTA_USEC) return { quota, period: PERIOD_USEC };
  return { quota: Math.max(MIN_QUOTA_USEC, Math.round((cpuPercent / 100) * MAX_PERIOD_USEC)), period: MAX_PERIOD_USEC };
}

/** `id:controllers:path` lines of /proc/self/cgroup. */
function parseProcCgroup(text: string): Membership[] {
  const result: Membership[] = [];
  for (const line of text.split('\n')) {
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    result.push({ controllers: line.slice(first + 1, second).split(',').filter((c) => c !== ''), path: line.slice(second + 1) });
  }
  return result;
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
function unescapeMount(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

function parseMountinfo(text: string): Mount[] {
  const result: Mount[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    if (dash < 6 || fields.length < dash + 4) continue;
    result.push({
      root: unescapeMount(fields[3] ?? ''),
      mountPoint: unescapeMount(fields[4] ?? ''),
      readOnly: (fields[5] ?? '').split(',').includes('ro'),
      fsType: fields[dash + 1] ?? '',
      superOptions: (fields[dash + 3] ?? '').split(','),
    });
  }
  return result;
}

/** The folder of cgroup `cgroupPath` under `mount` (whose own root may be deeper than /), if it is visible there. */
export function folderOf(mount: { root: string; mountPoint: string }, cgroupPath: string): string | undefined {
  const root = mount.root.replace(/\/+$/, '');
  if (root !== '' && cgroupPath !== root && !cgroupPath.startsWith(`${root}/`)) return undefined;
  return path.join(mount.mountPoint, cgroupPath.slice(root.length));
}

/** The cgroup v2 mount of a mountinfo text (the first, as the kernel lists them), if any. */
export function cgroupV2Mount(mountinfo: string): { readonly root: string; readonly mountPoint: string } | undefined {
  return parseMountinfo(mountinfo).find((m) => m.fsType === 'cgroup2');
}

function readProcFile(file: string, given: string | undefined): string | { unavailable: string } {
  if (given !== undefined) return given;
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    return { unavailable: `cannot read ${file}: ${errno(error) ?? String(error)}` };
  }
}

/** The tree's folders and the control-file writes and reads; no lifecycle state but the total CPU ceiling. */
class Tree {
  /** The total CPU ceiling, which v1 needs to clamp the leaves' (see writeLimitsV1). */
  totalCpuPercent: number | undefined;

  constructor(
    readonly version: 1 | 2,
    readonly hierarchies: readonly Hierarchy[],
    readonly fs: CgroupFs,
  ) {}

  /** `dir` (relative to the base; '' is the base) in every hierarchy. */
  folders(dir: string): string[] {
    return this.hierarchies.map((h) => path.join(h.base, dir));
  }

  mkdir(dir: string): void {
    for (const folder of this.folders(dir)) {
      try {
        this.fs.mkdir(folder);
      } catch (error) {
        throw problem(`cannot create the cgroup ${folder}`, error, folder);
      }
    }
  }

  /** Folders of `dir` that could not be removed (still populated); absent ones count as removed. */
  rmdir(dir: string): string[] {
    const left: string[] = [];
    for (const folder of this.folders(dir)) {
      try {
        this.fs.rmdir(folder);
      } catch (error) {
        if (errno(error) !== 'ENOENT') left.push(folder);
      }
    }
    return left;
  }

  read(file: string): string {
    try {
      return this.fs.read(file);
    } catch (error) {
      throw problem(`cannot read ${file}`, error, file);
    }
  }

  write(file: string, value: string, action: string): void {
    try {
      this.fs.write(file, value);
    } catch (error) {
      throw problem(action, error, file);
    }
  }

  tryWrite(file: string, value: string): boolean {
    try {
      this.fs.write(file, value);
      return true;
    } catch {
      return false;
    }
  }

  /** The processes in `dir`, from every hierarchy, each once. */
  pids(dir: string): number[] {
    const found = new Set<number>();
    for (const folder of this.folders(dir)) {
      let text = '';
      try {
        text = this.fs.read(path.join(folder, 'cgroup.procs'));
      } catch {
        continue;
      }
      for (const line of text.split('\n')) if (/^\d+$/.test(line.trim())) found.add(Number(line.trim()));
    }
    return [...found];
  }

  /**
   * Kills every process in `dir`: cgroup v2's cgroup.kill where the kernel has it (5.14 and
   * later: no process can fork away while it runs), else each pid it lists.
   */
  killPids(dir: string, kill: (pid: number) => void): number {
    const pids = this.pids(dir);
    if (pids.length === 0) return 0;
    if (this.version === 2 && this.folders(dir).every((folder) => this.tryWrite(path.join(folder, 'cgroup.kill'), '1'))) return pids.length;
    for (const pid of pids) {
      try {
        kill(pid);
      } catch {
        // gone already
      }
    }
    return pids.length;
  }

  /** Moves a process (all its threads) into `dir` of every hierarchy. */
  addPid(dir: string, pid: number, who = `process ${pid}`): void {
    if (!Number.isSafeInteger(pid) || pid <= 0) throw new HadesError('HADES_ERR_CGROUP', `cannot add pid ${pid}: not a process id`);
    for (const folder of this.folders(dir)) this.write(path.join(folder, 'cgroup.procs'), String(pid), `cannot move ${who} into ${folder}`);
  }

  writeLimits(dir: string, limits: CgroupLimits): void {
    checkLimits(limits);
    for (const h of this.hierarchies) {
      const folder = path.join(h.base, dir);
      if (this.version === 2) this.writeLimitsV2(folder, limits);
      else this.writeLimitsV1(h, folder, dir === '', limits);
    }
  }

  usage(dir: string): CgroupUsage {
    try {
      return this.version === 2 ? this.usageV2(path.join(this.hierarchies[0]?.base ?? '', dir)) : this.usageV1(dir);
    } catch (error) {
      if (error instanceof HadesError) throw error;
      throw problem(`cannot read the usage of ${this.folders(dir).join(', ')}`, error, dir);
    }
  }

  private writeLimitsV2(folder: string, limits: CgroupLimits): void {
    const q = limits.cpuPercent === undefined ? undefined : cpuQuota(limits.cpuPercent);
    this.write(path.join(folder, 'cpu.max'), q === undefined ? `max ${PERIOD_USEC}` : `${q.quota} ${q.period}`, `cannot set the CPU ceiling of ${folder}`);
    const memory = limits.memoryBytes === undefined ? 'max' : String(limits.memoryBytes);
    this.write(path.join(folder, 'memory.max'), memory, `cannot set the memory ceiling of ${folder}`);
    const swap = path.join(folder, 'memory.swap.max');
    if (this.fs.exists(swap)) this.write(swap, limits.memoryBytes === undefined ? 'max' : '0', `cannot set the swap ceiling of ${folder}`);
  }

  private writeLimitsV1(h: Hierarchy, folder: string, isBase: boolean, limits: CgroupLimits): void {
    if (h.controllers.includes('cpu')) {
      // v1 refuses a child's quota above its parent's (v2 takes the smaller); the effect is the same.
      let percent = limits.cpuPercent;
      if (!isBase && percent !== undefined && this.totalCpuPercent !== undefined) percent = Math.min(percent, this.totalCpuPercent);
      const q = percent === undefined ? { quota: -1, period: PERIOD_USEC } : cpuQuota(percent);
      this.write(path.join(folder, 'cpu.cfs_period_us'), String(q.period), `cannot set the CPU period of ${folder}`);
      this.write(path.join(folder, 'cpu.cfs_quota_us'), String(q.quota), `cannot set the CPU ceiling of ${folder}`);
    }
    if (h.controllers.includes('memory')) this.writeMemoryV1(folder, limits.memoryBytes);
  }

  /** memory.memsw (memory + swap) may never be below memory.limit: the order depends on the direction. */
  private writeMemoryV1(folder: string, bytes: number | undefined): void {
    const limit = path.join(folder, 'memory.limit_in_bytes');
    const memsw = path.join(folder, 'memory.memsw.limit_in_bytes');
    const value = bytes === undefined ? '-1' : String(bytes);
    const action = `cannot set the memory ceiling of ${folder}`;
    if (!this.fs.exists(memsw)) {
      this.write(limit, value, action);
      return;
    }
    const raising = bytes === undefined || bytes > Number(this.read(memsw).trim());
    for (const file of raising ? [memsw, limit] : [limit, memsw]) this.write(file, value, action);
  }

  private usageV2(folder: string): CgroupUsage {
    const peakFile = path.join(folder, 'memory.peak');
    const eventsFile = path.join(folder, 'memory.events');
    const memoryPeakBytes = this.fs.exists(peakFile) ? Number(this.fs.read(peakFile).trim()) : undefined;
    const oomKills = this.fs.exists(eventsFile) ? keyed(this.fs.read(eventsFile)).get('oom_kill') : undefined;
    return {
      cpuUsageUsec: keyed(this.fs.read(path.join(folder, 'cpu.stat'))).get('usage_usec') ?? 0,
      memoryBytes: Number(this.fs.read(path.join(folder, 'memory.current')).trim()),
      ...(memoryPeakBytes === undefined ? {} : { memoryPeakBytes }),
      ...(oomKills === undefined ? {} : { oomKills }),
    };
  }

  private usageV1(dir: string): CgroupUsage {
    let cpuUsageUsec = 0;
    let memoryBytes = 0;
    let memoryPeakBytes: number | undefined;
    let oomKills: number | undefined;
    for (const h of this.hierarchies) {
      const folder = path.join(h.base, dir);
      if (h.controllers.includes('cpuacct')) cpuUsageUsec = Math.floor(Number(this.fs.read(path.join(folder, 'cpuacct.usage')).trim()) / 1000);
      if (h.controllers.includes('memory')) {
        memoryBytes = Number(this.fs.read(path.join(folder, 'memory.usage_in_bytes')).trim());
        memoryPeakBytes = Number(this.fs.read(path.join(folder, 'memory.max_usage_in_bytes')).trim());
        const oom = path.join(folder, 'memory.oom_control');
        if (this.fs.exists(oom)) oomKills = keyed(this.fs.read(oom)).get('oom_kill');
      }
    }
    return { cpuUsageUsec, memoryBytes, ...(memoryPeakBytes === undefined ? {} : { memoryPeakBytes }), ...(oomKills === undefined ? {} : { oomKills }) };
  }
}

/** `key value` lines (cpu.stat, memory.events, memory.oom_control). */
function keyed(text: string): Map<string, number> {
  const result = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [key, value] = words(line);
    if (key !== undefined && value !== undefined) result.set(key, Number(value));
  }
  return result;
}

/** One leaf of the tree: the agent's, or a plugin's. */
class Leaf implements CgroupGroup {
  constructor(
    readonly name: string,
    readonly dir: string,
    private readonly tree: Tree,
    private readonly onRemove: (leaf: Leaf) => void,
  ) {}

  add(pid: number): void {
    this.tree.addPid(this.dir, pid);
  }

  killAll(): number {
    return this.tree.killPids(this.dir, (pid) => process.kill(pid, 'SIGKILL'));
  }

  setLimits(limits: CgroupLimits): void {
    this.tree.writeLimits(this.dir, limits);
  }

  usage(): CgroupUsage {
    return this.tree.usage(this.dir);
  }

  remove(): void {
    const left = this.tree.rmdir(this.dir);
    if (left.length > 0) throw new HadesError('HADES_ERR_CGROUP', `cannot remove ${left.join(', ')}: processes are still in it`, { details: { folders: left } });
    this.onRemove(this);
  }
}

export class Cgroups {
  readonly version: 1 | 2;
  /** Where the tree is: the base folder (v2), or `controllers:folder` of each hierarchy (v1). */
  readonly base: string;
  /** The base folder in every hierarchy. */
  readonly folders: readonly string[];
  private readonly tree: Tree;
  private readonly groups = new Map<string, Leaf>();
  private agentLeaf: Leaf | undefined;
  private ready = false;
  private moved = false;
  /** Controllers this code turned on in the current cgroup (v2), turned off again at cleanup. */
  private enabledInCurrent: string[] = [];

  private constructor(
    version: 1 | 2,
    private readonly hierarchies: readonly Hierarchy[],
    fs: CgroupFs,
    private readonly pid: number,
    /** The base's name without a pid: `<name>` and `<name>-<pid>` beside it are trees of agents. */
    private readonly name: string,
    /** Undefined: processes left in earlier agents' cgroups are not killed (a simulated kernel). */
    private readonly kill: ((pid: number) => void) | undefined,
    private readonly pause: (ms: number) => void,
  ) {
    this.version = version;
    this.tree = new Tree(version, hierarchies, fs);
    this.folders = hierarchies.map((h) => h.base);
    this.base = version === 2 ? (this.folders[0] ?? '') : hierarchies.map((h) => `${h.controllers.join(',')}:${h.base}`).join(' ');
  }

  /** Finds cgroup v2 (preferred) or v1 with the cpu and memory controllers, or says why neither is usable. */
  static detect(options: CgroupDetectOptions = {}): Cgroups | { unavailable: string } {
    const name = options.name ?? 'hades';
    checkName(name, 'the cgroup name');
    const fs = options.fs ?? realCgroupFs;
    const pid = options.pid ?? process.pid;
    const kill = options.kill ?? (fs === realCgroupFs ? (p: number) => process.kill(p, 'SIGKILL') : undefined);
    const pause = options.pause ?? sleepSync;
    const selfText = readProcFile('/proc/self/cgroup', options.procSelfCgroup);
    if (typeof selfText !== 'string') return selfText;
    // With `root`, the caller describes the whole world: no v1 from this machine's mounts.
    const mountText = readProcFile('/proc/self/mountinfo', options.mountinfo ?? (options.root === undefined ? undefined : ''));
    if (typeof mountText !== 'string') return mountText;
    const memberships = parseProcCgroup(selfText);
    const mounts = parseMountinfo(mountText);
    if (options.root === undefined && !mounts.some((m) => m.fsType === 'cgroup' || m.fsType === 'cgroup2')) return { unavailable: 'no cgroup file system is mounted' };
    const reasons: string[] = [];

    const unified = memberships.find((m) => m.controllers.length === 0);
    const v2Mounts = options.root !== undefined ? [{ root: '/', mountPoint: options.root, readOnly: false }] : mounts.filter((m) => m.fsType === 'cgroup2');
    for (const mount of v2Mounts) {
      let offered: string[];
      try {
        offered = words(fs.read(path.join(mount.mountPoint, 'cgroup.controllers')));
      } catch (error) {
        reasons.push(`cgroup v2 at ${mount.mountPoint} cannot be read (${errno(error) ?? String(error)})`);
        continue;
      }
      const missing = V2_CONTROLLERS.filter((c) => !offered.includes(c));
      if (missing.length > 0) {
        reasons.push(`cgroup v2 at ${mount.mountPoint} offers ${offered.length > 0 ? offered.join(' ') : 'no controller'}, not ${missing.join(' and ')}`);
        continue;
      }
      const current = unified === undefined ? undefined : folderOf(mount, unified.path);
      if (current === undefined) {
        reasons.push(`the agent's cgroup v2 path is not visible under ${mount.mountPoint}`);
        continue;
      }
      if (mount.readOnly) return { unavailable: `cgroup v2 at ${mount.mountPoint} is mounted read-only` };
      return new Cgroups(2, [{ controllers: V2_CONTROLLERS, current, base: path.join(current, ownName(fs, [current], name, pid)) }], fs, pid, name, kill, pause);
    }

    const hierarchies: Hierarchy[] = [];
    for (const controller of V1_CONTROLLERS) {
      if (hierarchies.some((h) => h.controllers.includes(controller))) continue;
      const mount = mounts.find((m) => m.fsType === 'cgroup' && m.superOptions.includes(controller));
      const membership = memberships.find((m) => m.controllers.includes(controller));
      if (mount === undefined || membership === undefined) {
        reasons.push(`no cgroup v1 ${controller} controller is mounted`);
        continue;
      }
      const current = folderOf(mount, membership.path);
      if (current === undefined) {
        reasons.push(`the agent's cgroup v1 ${controller} path is not visible under ${mount.mountPoint}`);
        continue;
      }
      if (mount.readOnly) {
        reasons.push(`cgroup v1 ${controller} at ${mount.mountPoint} is mounted read-only`);
        continue;
      }
      const controllers = V1_CONTROLLERS.filter((c) => membership.controllers.includes(c) && mount.superOptions.includes(c));
      hierarchies.push({ controllers, current, base: '' });
    }
    if (V1_CONTROLLERS.every((c) => hierarchies.some((h) => h.controllers.includes(c)))) {
      const own = ownName(fs, hierarchies.map((h) => h.current), name, pid);
      return new Cgroups(1, hierarchies.map((h) => ({ ...h, base: path.join(h.current, own) })), fs, pid, name, kill, pause);
    }
    return { unavailable: reasons.join('; ') };
  }

  /**
   * Creates the base and its `agent` leaf and applies the total ceilings. Call it before spawning
   * plugins. What an agent that died without cleaning up (kill -9, a crash) left is removed
   * first, and only that: in this base, the `plugin-*` leaves no group of this run made (this base
   * is taken only when its `agent` leaf is empty); beside it, in the agent's own cgroup, the trees
   * named as agents name theirs (`<name>`, `<name>-<pid>`) whose `agent` leaf holds no process
   * (a live agent is always in its own). Every process still in them but this agent is killed
   * (SIGKILL) and the folders removed: returned as `removed`. Those that cannot be removed (a
   * process that does not go within 2 s) stay and are returned as `stale`, so the caller can say so.
   */
  setup(total: CgroupLimits): { readonly stale: readonly string[]; readonly removed: readonly LeftoverCgroup[] } {
    checkLimits(total);
    this.tree.mkdir('');
    const leftovers = this.ready ? { stale: [], removed: [] } : this.removeLeftovers();
    this.tree.mkdir(AGENT_LEAF);
    if (this.version === 2) this.delegateV2();
    this.tree.totalCpuPercent = total.cpuPercent;
    this.tree.writeLimits('', total);
    this.ready = true;
    return leftovers;
  }

  /** Removes what earlier agents left (see setup); returns what was removed and what could not be. */
  private removeLeftovers(): { stale: string[]; removed: LeftoverCgroup[] } {
    const stale: string[] = [];
    const removed: LeftoverCgroup[] = [];
    const ours = new Set([...this.groups.values()].map((leaf) => leaf.dir));
    const trees = new RegExp(`^${this.name}(-\\d+)?$`);
    const fs = this.tree.fs;
    const list = (dir: string): string[] => {
      try {
        return fs.list(dir);
      } catch {
        return [];
      }
    };
    const clear = (folder: string): void => {
      const outcome = this.clearFolder(folder);
      if (outcome === undefined) stale.push(folder);
      else if (outcome !== 'absent') removed.push(outcome);
    };
    for (const h of this.hierarchies) {
      for (const name of list(h.base)) if (name.startsWith('plugin-') && !ours.has(name)) clear(path.join(h.base, name));
      for (const name of list(h.current)) {
        const tree = path.join(h.current, name);
        if (!trees.test(name) || tree === h.base) continue;
        if (this.procsIn(path.join(tree, AGENT_LEAF)).some((p) => p !== this.pid)) continue;
        for (const leaf of list(tree)) clear(path.join(tree, leaf));
        clear(tree);
      }
    }
    return { stale, removed };
  }

  /** The processes listed in a folder's cgroup.procs (none when it cannot be read). */
  private procsIn(folder: string): number[] {
    let text: string;
    try {
      text = this.tree.fs.read(path.join(folder, 'cgroup.procs'));
    } catch {
      return [];
    }
    return words(text).filter((w) => /^\d+$/.test(w)).map(Number);
  }

  /**
   * Kills every process in a leftover folder but this agent and removes the folder, trying again
   * while the killed processes leave; undefined when it stays, 'absent' when it was already gone.
   */
  private clearFolder(folder: string): LeftoverCgroup | 'absent' | undefined {
    const killed: number[] = [];
    const deadline = Date.now() + LEFTOVER_WAIT_MS;
    for (;;) {
      for (const pid of this.procsIn(folder)) {
        if (pid === this.pid || killed.includes(pid) || this.kill === undefined) continue;
        try {
          this.kill(pid);
          killed.push(pid);
        } catch {
          // Gone already.
        }
      }
      try {
        this.tree.fs.rmdir(folder);
        return { folder, killed };
      } catch (error) {
        if (errno(error) === 'ENOENT') return killed.length > 0 ? { folder, killed } : 'absent';
        if (this.kill === undefined || Date.now() >= deadline) return undefined;
      }
      this.pause(20);
    }
  }

  /** Creates (or reuses) the leaf `plugin-<name>` and sets its ceilings. */
  group(name: string, limits: CgroupLimits): CgroupGroup {
    checkName(name, 'the plugin name');
    checkLimits(limits);
    this.checkReady();
    let leaf = this.groups.get(name);
    if (leaf === undefined) {
      leaf = new Leaf(name, `plugin-${name}`, this.tree, (gone) => {
        if (this.groups.get(gone.name) === gone) this.groups.delete(gone.name);
      });
      this.tree.mkdir(leaf.dir);
      this.groups.set(name, leaf);
      // One OOM kill takes the whole plugin (its helpers too), which the supervisor then restarts.
      for (const folder of this.version === 2 ? this.tree.folders(leaf.dir) : []) {
        const file = path.join(folder, 'memory.oom.group');
        if (this.tree.fs.exists(file)) this.tree.write(file, '1', `cannot set ${file}`);
      }
    }
    leaf.setLimits(limits);
    return leaf;
  }

  /** Moves the agent's own process into `<base>/agent`; returns that leaf. */
  moveSelf(): CgroupGroup {
    this.checkReady();
    this.agentLeaf ??= new Leaf(AGENT_LEAF, AGENT_LEAF, this.tree, () => undefined);
    if (!this.moved) this.moveSelfNow();
    return this.agentLeaf;
  }

  /** Usage of everything Hades runs: the base's totals. */
  usage(): CgroupUsage {
    return this.tree.usage('');
  }

  /**
   * Moves the agent back to its original cgroups and removes the tree. Leaves that still hold
   * processes (and so the base) stay and their folders are returned; calling again once those
   * processes are gone finishes the job. Safe to call any number of times.
   */
  cleanup(): readonly string[] {
    const left: string[] = [];
    for (const leaf of [...this.groups.values()]) {
      const busy = this.tree.rmdir(leaf.dir);
      if (busy.length === 0) this.groups.delete(leaf.name);
      left.push(...busy);
    }
    const h = this.hierarchies[0];
    if (this.version === 2 && h !== undefined && this.enabledInCurrent.length > 0 && left.length === 0) {
      // The current cgroup takes the agent back only once it hands no controller down.
      this.tree.tryWrite(path.join(h.base, 'cgroup.subtree_control'), V2_CONTROLLERS.map((c) => `-${c}`).join(' '));
      if (this.tree.tryWrite(path.join(h.current, 'cgroup.subtree_control'), this.enabledInCurrent.map((c) => `-${c}`).join(' '))) this.enabledInCurrent = [];
    }
    if (this.moved) {
      let back = true;
      for (const each of this.hierarchies) back = this.tree.tryWrite(path.join(each.current, 'cgroup.procs'), String(this.pid)) && back;
      this.moved = !back;
    }
    left.push(...this.tree.rmdir(AGENT_LEAF), ...this.tree.rmdir(''));
    this.agentLeaf = undefined;
    this.ready = false;
    return left;
  }

  private checkReady(): void {
    if (!this.ready) throw new HadesError('HADES_ERR_INTERNAL', 'cgroups: setup() must come first (and again after cleanup())');
  }

  private moveSelfNow(): void {
    this.tree.addPid(AGENT_LEAF, this.pid, `the agent (pid ${this.pid})`);
    this.moved = true;
  }

  /** v2: makes cpu and memory reach the leaves, moving the agent first when the rule requires it. */
  private delegateV2(): void {
    const h = this.hierarchies[0];
    if (h === undefined) return;
    const offered = words(this.tree.read(path.join(h.current, 'cgroup.controllers')));
    const absent = V2_CONTROLLERS.filter((c) => !offered.includes(c));
    if (absent.length > 0) {
      throw new HadesError(
        'HADES_ERR_CGROUP',
        `${absent.join(' and ')} ${absent.length > 1 ? 'are' : 'is'} not available in ${h.current}: its parent does not hand ${absent.length > 1 ? 'them' : 'it'} down (under systemd, give the unit Delegate=yes)`,
      );
    }
    const controlFile = path.join(h.current, 'cgroup.subtree_control');
    const needed = V2_CONTROLLERS.filter((c) => !words(this.tree.read(controlFile)).includes(c));
    if (needed.length > 0) {
      const value = needed.map((c) => `+${c}`).join(' ');
      const action = `cannot enable ${needed.join(' and ')} for the children of ${h.current}`;
      try {
        this.tree.fs.write(controlFile, value);
      } catch (error) {
        if (errno(error) !== 'EBUSY') throw problem(action, error, controlFile);
        // Busy: the current cgroup holds processes. Only the agent's own may move.
        const others = words(this.tree.read(path.join(h.current, 'cgroup.procs'))).filter((p) => p !== String(this.pid));
        if (others.length > 0) {
          const list = `${others.slice(0, 5).join(', ')}${others.length > 5 ? ', ...' : ''}`;
          throw new HadesError(
            'HADES_ERR_CGROUP',
            `${action}: it also holds ${others.length} other process${others.length > 1 ? 'es' : ''} (${list}), and cgroup v2 lets a cgroup either hold processes or hand controllers down; run the agent in a cgroup of its own (systemd: Delegate=yes)`,
            { details: { cgroup: h.current, pids: others } },
          );
        }
        this.moveSelfNow();
        this.tree.write(controlFile, value, action);
      }
      this.enabledInCurrent = needed;
    }
    this.tree.write(path.join(h.base, 'cgroup.subtree_control'), V2_CONTROLLERS.map((c) => `+${c}`).join(' '), `cannot enable cpu and memory in ${h.base}`);
  }
}
