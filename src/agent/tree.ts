/**
 * The process tree: every live process (and recently exited ones) with its parent link,
 * executable and arguments, so that each event can carry its ancestors. Seeded from /proc at
 * start and kept current by fork, exec and exit records. Bounded: when full, exited processes
 * go first, then the least recently seen.
 */
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Container } from './containers.js';
import { decodeText, splitArgv } from './driver/bytes.js';
import type { CopyOf } from './known-programs.js';

/** USER_HZ: /proc reports start times in these ticks on every Linux ABI. */
export const TICKS_PER_SECOND = 100;
const NS_PER_TICK = 1e9 / TICKS_PER_SECOND;

export interface ProcessNode {
  pid: number;
  ppid: number;
  /** Start time in ticks since boot: with the pid, it names one process instance. */
  startTicks: number;
  entityId: string;
  name: string;
  executable: string | undefined;
  args: readonly string[] | undefined;
  exited: boolean;
  /** Credentials as last seen (exec, privilege change, /proc), to notice a process becoming root. */
  creds: Creds | undefined;
  /**
   * The installed shell or interpreter its program is a copy of, as its exec event named it
   * (hades.process.copy_of): a shared frozen object, put in its entry of its descendants'
   * ancestor lists. Cleared by the next exec; a fork's child starts with its parent's.
   */
  copyOf: CopyOf | undefined;
  /** This process as an entry of its descendants' ancestor lists, made once (see EventBuilder). */
  asAncestor: Readonly<Record<string, unknown>> | undefined;
  /**
   * The container it runs in, as its last exec, fork or security record told (undefined: none,
   * or not known): what its exit event names, which has no cgroup of its own.
   */
  container: Container | undefined;
  /** The parent's node this one is counted in, and how many children count in this one. */
  parentNode: ProcessNode | undefined;
  children: number;
  /**
   * Its program is its own: it executed it, or it was found running it in /proc. False for a
   * forked child, which runs its parent's until it executes one (ProcessTree.replaced).
   */
  ownProgram: boolean;
}

/** The program a process ran before it executed another in its own place (process.previous). */
export interface ReplacedProgram {
  readonly executable: string | undefined;
  readonly args: readonly string[] | undefined;
}

/**
 * Every node is made here, with all its fields in one order: V8 then gives all nodes one hidden
 * class, and the hot paths that read them (ancestry, exit) stay monomorphic. Nodes that gained
 * fields later, in the order events came, had half a dozen classes: the code optimised in one
 * storm was thrown away when a node of another class came by, and compiled again.
 */
export function processNode(
  pid: number,
  ppid: number,
  startTicks: number,
  entityId: string,
  name: string,
  executable: string | undefined,
  args: readonly string[] | undefined,
  creds: Creds | undefined,
  container: Container | undefined,
  copyOf: CopyOf | undefined,
  ownProgram: boolean,
): ProcessNode {
  return { pid, ppid, startTicks, entityId, name, executable, args, exited: false, creds, copyOf, asAncestor: undefined, container, parentNode: undefined, children: 0, ownProgram };
}

export interface Creds {
  readonly uid: number;
  readonly gid: number;
  readonly euid: number;
  readonly egid: number;
}

export interface ProcessTreeStats {
  size: number;
  seeded: number;
  evictedExited: number;
  evictedLive: number;
  /** Processes no exit record told of, let go when /proc no longer had them. */
  gone: number;
}

export class ProcessTree {
  private readonly nodes = new Map<number, ProcessNode>();
  readonly stats: ProcessTreeStats = { size: 0, seeded: 0, evictedExited: 0, evictedLive: 0, gone: 0 };
  /**
   * What the process of the last exec() ran before, when it had executed a program of its own
   * (or was found running one in /proc) and now executed another in its place; undefined after
   * a fork and exec, where the program replaced was the parent's. Read right after exec().
   */
  replaced: ReplacedProgram | undefined = undefined;
  /** Nodes added over the bound since /proc was last looked at (dropGone). */
  private overBound = Infinity;

  constructor(
    private readonly hostKey: string,
    private readonly maxProcesses: number,
    private readonly procRoot = '/proc',
  ) {}

  entityId(pid: number, startTicks: number): string {
    return `${this.hostKey}-${pid}-${startTicks}`;
  }

  static ticksFromNs(ns: number): number {
    return Math.floor(ns / NS_PER_TICK);
  }

  get(pid: number): ProcessNode | undefined {
    return this.nodes.get(pid);
  }

  /** The processes held that have not exited. */
  *live(): IterableIterator<ProcessNode> {
    for (const node of this.nodes.values()) if (!node.exited) yield node;
  }

  /**
   * Reads every process of /proc the tree does not know yet. Processes that vanish while being
   * read are skipped. Called again once the driver's hooks are attached, it adds the processes
   * started while they were being loaded, which no fork or exec record will describe, replaces
   * one whose pid was reused meanwhile (another start time), and lets go of the known ones that
   * exited meanwhile; a process it knows (same pid and start) keeps what events told of it.
   */
  seedFromProc(procRoot = this.procRoot): void {
    const present = new Set<number>();
    for (const entry of readdirSync(procRoot)) {
      if (!/^\d+$/.test(entry)) continue;
      const pid = Number(entry);
      present.add(pid);
      const known = this.nodes.get(pid);
      if (known && !known.exited && known.startTicks === procStartTicks(procRoot, pid)) continue;
      const node = readProcNode(procRoot, pid, this);
      if (node) {
        this.put(node);
        this.stats.seeded++;
      }
    }
    for (const [pid, node] of [...this.nodes]) if (!present.has(pid) && !node.exited) this.exit(pid);
    // /proc lists a child before its parent when pids wrapped: link those now.
    for (const node of this.nodes.values()) if (!node.parentNode) this.link(node);
  }

  /**
   * A new process: it starts with its parent's program (and what that is a copy of: a subshell
   * of a copied shell is one too) until it executes its own, and in its parent's cgroup:
   * `container` is that cgroup's (null: no container), undefined to take the parent's as the
   * tree knows it.
   */
  fork(parentPid: number, childPid: number, childStartNs: number, comm: string, container?: Container | null): ProcessNode {
    const parent = this.nodes.get(parentPid);
    const startTicks = ProcessTree.ticksFromNs(childStartNs);
    const inContainer = container === undefined ? parent?.container : (container ?? undefined);
    return this.put(processNode(childPid, parentPid, startTicks, this.entityId(childPid, startTicks), comm || parent?.name || '', parent?.executable, parent?.args, parent?.creds, inContainer, parent?.copyOf, false));
  }

  /**
   * exec keeps the process (pid and start time) and replaces its program. A start time of 0 or
   * a parent pid of 0 is unknown (the cn_proc backend, for a process already gone): the live
   * process the tree has under that pid keeps its own, so the exec stays the same process (its
   * entity id, its parent and ancestry). The program is replaced whatever was read: the one before
   * the exec is not this one, nor is what it was a copy of (the exec event says it anew).
   *
   * A process whose parent the tree knows keeps it: the parent the exec reports differs only
   * when the process was reparented (to init or a subreaper) because its parent exited, and the
   * ancestry names the process that made it (a dropper that forks, exits and lets its child
   * execute the payload), not the one that adopted it.
   */
  exec(pid: number, ppid: number, startNs: number, name: string, executable: string, args: readonly string[], creds?: Creds): ProcessNode {
    const existing = this.nodes.get(pid);
    const live = existing !== undefined && !existing.exited ? existing : undefined;
    const startTicks = startNs === 0 && live !== undefined ? live.startTicks : ProcessTree.ticksFromNs(startNs);
    if (live && live.startTicks === startTicks) {
      if (ppid !== 0 && live.parentNode === undefined) {
        live.ppid = ppid;
        this.link(live);
      }
      // A program of its own that it replaces (`sh -c 'exec x'`, a shell's last command, `sudo
      // perl -e 'exec "/bin/sh"'`); a forked child's was its parent's, which the event names.
      this.replaced = live.ownProgram ? { executable: live.executable, args: live.args } : undefined;
      live.ownProgram = true;
      live.name = name;
      live.executable = executable;
      live.args = args;
      live.copyOf = undefined;
      live.asAncestor = undefined;
      if (creds) live.creds = creds;
      this.touch(pid, live);
      return live;
    }
    this.replaced = undefined;
    return this.put(processNode(pid, ppid, startTicks, this.entityId(pid, startTicks), name, executable, args, creds, undefined, undefined, true));
  }

  /**
   * The process renamed itself other than by exec (prctl PR_SET_NAME, a write to /proc/PID/comm):
   * from now on its events, its exit and its descendants' ancestry name it as it now is, the name
   * ps and /proc show; its executable and arguments stay, and its exec event keeps the name it
   * started with. Another process under that pid (another start time) is left alone, and an
   * empty name teaches nothing. Returns the name the tree had for the process before (undefined
   * when it knows no live process of that pid and start).
   */
  rename(pid: number, startNs: number, name: string): string | undefined {
    const node = this.nodes.get(pid);
    if (!node || node.exited || node.startTicks !== ProcessTree.ticksFromNs(startNs)) return undefined;
    const before = node.name;
    if (name !== '') {
      node.name = name;
      node.asAncestor = undefined;
    }
    return before;
  }

  /**
   * What the program a process runs is a copy of, as its exec event found (see ProcessNode.copyOf);
   * its descendants' ancestor entries name it from then on.
   */
  setCopyOf(node: ProcessNode, copyOf: CopyOf | undefined): void {
    if (node.copyOf === copyOf) return;
    node.copyOf = copyOf;
    node.asAncestor = undefined;
  }

  /** The credentials a live process had before the event now being handled. */
  credsOf(pid: number, startNs: number): Creds | undefined {
    const node = this.nodes.get(pid);
    return node && !node.exited && node.startTicks === ProcessTree.ticksFromNs(startNs) ? node.creds : undefined;
  }

  /** A privilege change seen by the kernel: the process now has these credentials. */
  setCreds(pid: number, startNs: number, creds: Creds): void {
    const node = this.nodes.get(pid);
    if (node && node.startTicks === ProcessTree.ticksFromNs(startNs)) node.creds = creds;
  }

  /**
   * An exited process stays only while it has live descendants, whose ancestry still names it
   * (a dropper that forks and exits); a leaf goes at once. In an exec storm the nodes of the
   * short-lived processes thus die young, which keeps them out of the old generation of the heap.
   * `startNs` is the exited process's start, 0 when unknown.
   */
  exit(pid: number, startNs = 0): ProcessNode | undefined {
    const node = this.nodes.get(pid);
    if (!node || node.exited) return node;
    // A start time of 0 is unknown (cn_proc): the live process under that pid. A process that
    // started after the one that exited (its pid reused, records of two CPUs out of order) lives on.
    if (startNs !== 0 && node.startTicks > ProcessTree.ticksFromNs(startNs)) return undefined;
    node.exited = true;
    if (!node.children) this.remove(node);
    return node;
  }

  /**
   * Ancestors of a process, parent first, at most `max`; stops at pid 0 and on loops. Each step
   * follows the parent a node was linked to, the very process even once its pid was reused by
   * another; a node linked to none (its parent came later) takes the process now under its parent
   * pid, unless that one started after it (a reused pid).
   */
  ancestors(pid: number, max: number): ProcessNode[] {
    const out: ProcessNode[] = [];
    const self = this.nodes.get(pid);
    let child = self;
    while (child !== undefined && out.length < max) {
      let parent = child.parentNode;
      if (parent === undefined) {
        const byPid = child.ppid > 0 ? this.nodes.get(child.ppid) : undefined;
        parent = byPid !== undefined && (byPid.startTicks <= child.startTicks || child.startTicks === 0) ? byPid : undefined;
      }
      // A loop (corrupt links) would revisit a node already listed: stop there.
      if (parent === undefined || parent === self || out.includes(parent)) break;
      out.push(parent);
      child = parent;
    }
    return out;
  }

  private touch(pid: number, node: ProcessNode): void {
    // Map keeps insertion order: re-inserting marks the node as most recently seen.
    this.nodes.delete(pid);
    this.nodes.set(pid, node);
  }

  private put(node: ProcessNode): ProcessNode {
    const previous = this.nodes.get(node.pid);
    if (previous) {
      // Its pid is another process's now: the one it named is gone, whatever exit was missed.
      previous.exited = true;
      if (previous.children > 0) {
        // Descendants still name it in their ancestry (a dropper's child, which forked the
        // payload and exited): it leaves the map but keeps its link up, and goes with its last
        // descendant. Removed whole, it would cut every ancestry below it at itself.
        this.nodes.delete(node.pid);
      } else {
        this.remove(previous);
      }
    }
    this.nodes.set(node.pid, node);
    this.link(node);
    // Full: /proc is looked at again once a quarter of the tree was replaced.
    if (this.nodes.size > this.maxProcesses && ++this.overBound > this.maxProcesses >>> 2) this.dropGone();
    while (this.nodes.size > this.maxProcesses) {
      // The least recently seen goes first (Map order); exited ones leave on their own.
      const oldest = this.nodes.values().next().value;
      if (!oldest) break;
      if (oldest.exited) this.stats.evictedExited++;
      else this.stats.evictedLive++;
      this.remove(oldest);
    }
    this.stats.size = this.nodes.size;
    return node;
  }

  /**
   * In the older half of the full tree, lets go of the processes /proc no longer has and marks
   * those it has as recently seen. The exits of the first never came: the kernel filtered them (a
   * child that executed a denied program or moved to a denied cgroup after its fork was reported,
   * every exit of cn_proc in allow-only mode) or they were lost. Such nodes would stay for good
   * and, newer than the long-lived processes seeded at start, outlast them: a tree full of them
   * evicted sshd and systemd from every ancestry. The newer half is left alone: the exits of its
   * processes may still be queued behind the record being handled.
   */
  private dropGone(): void {
    this.overBound = 0;
    let present: Set<number>;
    try {
      present = new Set(readdirSync(this.procRoot).filter((entry) => /^\d+$/.test(entry)).map(Number));
    } catch {
      return;
    }
    const older = [...this.nodes.values()].slice(0, this.nodes.size >>> 1);
    for (const node of older) {
      if (node.exited || this.nodes.get(node.pid) !== node) continue;
      if (present.has(node.pid)) {
        this.touch(node.pid, node);
      } else {
        this.exit(node.pid);
        this.stats.gone++;
      }
    }
  }

  /** Counts a node in its parent's children; not in a process that started after it (its parent pid reused). */
  private link(node: ProcessNode): void {
    const parent = node.ppid > 0 && node.ppid !== node.pid ? this.nodes.get(node.ppid) : undefined;
    if (!parent || node.parentNode === parent || (parent.startTicks > node.startTicks && node.startTicks !== 0)) return;
    node.parentNode = parent;
    parent.children++;
  }

  /** Drops a node; an exited parent left without children goes with it. */
  private remove(node: ProcessNode): void {
    if (this.nodes.get(node.pid) === node) this.nodes.delete(node.pid);
    const parent = node.parentNode;
    node.parentNode = undefined;
    if (parent) {
      parent.children--;
      if (parent.exited && parent.children <= 0) this.remove(parent);
    }
    this.stats.size = this.nodes.size;
  }
}

/** A process's start time in ticks since boot, from /proc/PID/stat; undefined when it is gone. */
function procStartTicks(procRoot: string, pid: number): number | undefined {
  try {
    return parseProcStat(readFileSync(path.join(procRoot, String(pid), 'stat'), 'latin1'))?.startTicks;
  } catch {
    return undefined;
  }
}

const DELETED = Buffer.from(' (deleted)');

/**
 * Whether the text of a process's exe link, seen from its root, names the very file it runs: a
 * file whose own name ends in " (deleted)", not one the kernel marked so.
 */
function namesRunningFile(dir: string, link: Buffer): boolean {
  try {
    const running = statSync(path.join(dir, 'exe'), { bigint: true });
    const named = statSync(Buffer.concat([Buffer.from(path.join(dir, 'root')), link]), { bigint: true });
    return running.dev === named.dev && running.ino === named.ino;
  } catch {
    return false;
  }
}

/** One process from /proc, or undefined when it is gone or unreadable. */
export function readProcNode(procRoot: string, pid: number, tree: ProcessTree): ProcessNode | undefined {
  const dir = path.join(procRoot, String(pid));
  let stat: string;
  try {
    stat = readFileSync(path.join(dir, 'stat'), 'latin1');
  } catch {
    return undefined;
  }
  const parsed = parseProcStat(stat);
  if (!parsed) return undefined;
  let executable: string | undefined;
  let args: string[] | undefined;
  try {
    // As the driver gives it: bytes decoded with invalid UTF-8 escaped, without the kernel's
    // " (deleted)" mark (the exec event says fileless instead), but not cut from a name that
    // ends so.
    const link = readlinkSync(path.join(dir, 'exe'), { encoding: 'buffer' });
    const deleted = link.length > DELETED.length && link.subarray(link.length - DELETED.length).equals(DELETED) && !namesRunningFile(dir, link);
    executable = decodeText(deleted ? link.subarray(0, link.length - DELETED.length) : link);
  } catch {
    // kernel threads have no executable; a process may also be gone by now
  }
  try {
    const raw = readFileSync(path.join(dir, 'cmdline'));
    // Each argument ends with a NUL, so the last NUL ends the last argument (an empty one too).
    if (raw.length > 0) args = splitArgv(raw);
  } catch {
    // gone
  }
  let creds: Creds | undefined;
  try {
    creds = parseStatusCreds(readFileSync(path.join(dir, 'status'), 'latin1'));
  } catch {
    // gone
  }
  return processNode(pid, parsed.ppid, parsed.startTicks, tree.entityId(pid, parsed.startTicks), parsed.comm, executable, args, creds, undefined, undefined, true);
}

/** Real and effective ids from the Uid: and Gid: lines of /proc/PID/status. */
export function parseStatusCreds(text: string): Creds | undefined {
  const uid = /^Uid:\s+(\d+)\s+(\d+)/m.exec(text);
  const gid = /^Gid:\s+(\d+)\s+(\d+)/m.exec(text);
  if (!uid || !gid) return undefined;
  return { uid: Number(uid[1]), euid: Number(uid[2]), gid: Number(gid[1]), egid: Number(gid[2]) };
}

export interface ProcStat {
  readonly comm: string;
  readonly state: string;
  readonly ppid: number;
  readonly pgid: number;
  readonly sid: number;
  readonly ttyNr: number;
  readonly startTicks: number;
}

/** Parses /proc/PID/stat; the name is in parentheses and may itself contain ") ". */
export function parseProcStat(text: string): ProcStat | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const fields = text.slice(close + 2).trim().split(' ');
  // fields[0] is field 3 (state); starttime is field 22.
  const num = (i: number) => Number(fields[i - 3]);
  const startTicks = num(22);
  if (!Number.isFinite(startTicks) || fields.length < 20) return undefined;
  return {
    comm: decodeText(Buffer.from(text.slice(open + 1, close), 'latin1')),
    state: fields[0] ?? '?',
    ppid: num(4),
    pgid: num(5),
    sid: num(6),
    ttyNr: num(7),
    startTicks,
  };
}
