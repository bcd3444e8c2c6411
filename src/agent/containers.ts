/**
 * The container a process runs in, from its cgroup v2 (docs/events.md, Process context).
 *
 * Exec records carry the cgroup's path, where runtimes write the container's id; every other
 * record carries only the cgroup's id, which is the inode of its folder in the cgroup v2 file
 * system. A cgroup v2 folder cannot be renamed and its id is not given to another cgroup while
 * the system runs, so what an id maps to never changes: it is learnt once and kept in a bounded
 * cache. Exec records teach it (their path is at hand, at no cost); for an id no exec taught (a
 * process that moved into its cgroup after its exec, or was there before the agent started),
 * /proc/PID/cgroup of the acting process is read, else of its parent (of the child, for a
 * fork), and believed only when the folder it names has that id as its inode: a process that
 * moved since its record was made names another folder, which is not taken for its cgroup.
 */
import { readFileSync, statSync } from 'node:fs';
import { cgroupV2Mount, folderOf } from './cgroup.js';

export interface Container {
  readonly id: string;
  readonly runtime?: string;
}

const RUNTIMES: Readonly<Record<string, string>> = { docker: 'docker', 'cri-containerd': 'containerd', containerd: 'containerd', crio: 'cri-o', libpod: 'podman' };

/** Container id and runtime from a cgroup path (docker, containerd, CRI-O, podman). */
export function containerFromCgroup(cgroupPath: string): Container | undefined {
  const match = /(docker|cri-containerd|crio|libpod|containerd)?[-/]?([0-9a-f]{64})(?:\.scope)?(?:\/|$)/.exec(cgroupPath);
  if (!match?.[2]) return undefined;
  const runtime = RUNTIMES[match[1] ?? ''];
  return runtime ? { id: match[2], runtime } : { id: match[2] };
}

/** The cgroup v2 path of a /proc/PID/cgroup text (its `0::/path` line). */
export function cgroupV2PathOf(text: string): string | undefined {
  for (const line of text.split('\n')) if (line.startsWith('0::')) return line.slice(3);
  return undefined;
}

/** Where ids the exec records did not teach are looked up; tests stand in a simulated system. */
export interface CgroupLookup {
  /** The text of /proc/PID/cgroup; undefined when it cannot be read (the process is gone). */
  procCgroup(pid: number): string | undefined;
  /** The inode (the cgroup id) of the folder of a cgroup v2 path as /proc shows it; undefined when not found. */
  cgroupInode(cgroupPath: string): number | undefined;
}

/** This system's /proc and cgroup v2 mount (looked up at the first use). */
export function procCgroupLookup(procRoot = '/proc'): CgroupLookup {
  let mount: { readonly root: string; readonly mountPoint: string } | null | undefined;
  return {
    procCgroup(pid) {
      try {
        return readFileSync(`${procRoot}/${pid}/cgroup`, 'utf8');
      } catch {
        return undefined;
      }
    },
    cgroupInode(cgroupPath) {
      if (mount === undefined) {
        try {
          mount = cgroupV2Mount(readFileSync(`${procRoot}/self/mountinfo`, 'utf8')) ?? null;
        } catch {
          mount = null;
        }
      }
      const folder = mount === null ? undefined : folderOf(mount, cgroupPath);
      if (folder === undefined) return undefined;
      try {
        return statSync(folder, { throwIfNoEntry: false })?.ino;
      } catch {
        return undefined;
      }
    },
  };
}

export interface ContainerCacheStats {
  /** Cgroups known (with a container or without). */
  size: number;
  /** Ids learnt from /proc (not from an exec record). */
  fromProc: number;
  /** Lookups in /proc that found nothing to believe (the processes gone, or moved). */
  unresolved: number;
  evicted: number;
}

/** Cgroups known, by default: far more than a host runs containers and services. */
export const CONTAINER_CACHE_SIZE = 4096;
/** After a failed lookup in /proc, an id is not looked up again for this long. */
const RETRY_MS = 1000;
const RETRY_MAX = 256;

/**
 * Cgroup id -> container (null: a cgroup of no container), at most `max` ids, the oldest learnt
 * going first. Containers are frozen and shared by the events of a cgroup.
 */
export class ContainerCache {
  private readonly byId = new Map<number, Container | null>();
  /** Ids whose lookup in /proc failed, until when they are not looked up again (ms). */
  private readonly retryAt = new Map<number, number>();
  readonly stats: ContainerCacheStats = { size: 0, fromProc: 0, unresolved: 0, evicted: 0 };

  constructor(
    private readonly max = CONTAINER_CACHE_SIZE,
    private readonly lookup: CgroupLookup = procCgroupLookup(),
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * The container of an exec record's cgroup (id 0: unknown), whose path it carries. A path the
   * driver cut (`truncated`) that shows no container is not remembered: /proc has it whole.
   */
  ofPath(cgroupId: number, cgroupPath: string, truncated = false): Container | undefined {
    if (cgroupId === 0) return cgroupPath ? freeze(containerFromCgroup(cgroupPath)) : undefined;
    const known = this.byId.get(cgroupId);
    if (known !== undefined) return known ?? undefined;
    if (!cgroupPath) return undefined;
    const container = freeze(containerFromCgroup(cgroupPath));
    if (container !== undefined || !truncated) this.remember(cgroupId, container ?? null);
    return container;
  }

  /** What the cache knows of an id: a container, null for none, undefined when it does not know. */
  known(cgroupId: number): Container | null | undefined {
    return cgroupId === 0 ? undefined : this.byId.get(cgroupId);
  }

  /**
   * The container of a record that carries only the cgroup id: the cache, else /proc/PID/cgroup
   * of `pid`, then of `otherPid` (its parent or child: 0 for none), believed when the folder it
   * names has the id. Null: a cgroup of no container; undefined: not known.
   */
  ofId(cgroupId: number, pid: number, otherPid: number): Container | null | undefined {
    if (cgroupId === 0) return undefined;
    const known = this.byId.get(cgroupId);
    if (known !== undefined) return known;
    const retry = this.retryAt.get(cgroupId);
    if (retry !== undefined) {
      if (this.now() < retry) return undefined;
      this.retryAt.delete(cgroupId);
    }
    const found = this.fromProc(cgroupId, pid) ?? (otherPid > 0 && otherPid !== pid ? this.fromProc(cgroupId, otherPid) : undefined);
    if (found === undefined) {
      this.stats.unresolved++;
      if (this.retryAt.size >= RETRY_MAX) this.retryAt.clear();
      this.retryAt.set(cgroupId, this.now() + RETRY_MS);
      return undefined;
    }
    this.stats.fromProc++;
    this.remember(cgroupId, found);
    return found;
  }

  private fromProc(cgroupId: number, pid: number): Container | null | undefined {
    if (pid <= 0) return undefined;
    const text = this.lookup.procCgroup(pid);
    const cgroupPath = text === undefined ? undefined : cgroupV2PathOf(text);
    if (cgroupPath === undefined || this.lookup.cgroupInode(cgroupPath) !== cgroupId) return undefined;
    return freeze(containerFromCgroup(cgroupPath)) ?? null;
  }

  private remember(cgroupId: number, container: Container | null): void {
    if (this.byId.size >= this.max) {
      // Map keeps insertion order: the oldest learnt goes.
      const oldest = this.byId.keys().next();
      if (!oldest.done) {
        this.byId.delete(oldest.value);
        this.stats.evicted++;
      }
    }
    this.byId.set(cgroupId, container);
    this.stats.size = this.byId.size;
  }
}

function freeze(container: Container | undefined): Container | undefined {
  return container === undefined ? undefined : Object.freeze(container);
}
