/**
 * The running audit and security monitoring daemons (src/common/security-daemons.ts), by pid:
 * the pids the agent asks the driver to protect (PROTECTED_PID), so that the signals sent to
 * them become kill records naming the sender, and what a kill record's target was.
 *
 * Kept by the records in their order: exec (by name or executable, two set lookups), fork (a
 * daemon's child, which is how a daemon detaches: auditd forks and its parent exits) and exit.
 * A daemon that exited is remembered a little longer: a kill record is written when the
 * sender's kill(2) returns, which can be after the exit record of a daemon that SIGKILL ended
 * at once on another CPU. A fork or exec under the same pid (reused) forgets it at once: its
 * record comes before any signal to the new process.
 */
import type { DriverRecord } from './driver/records.js';
import { MissingField } from './driver/records.js';
import { ProcessTree, type ProcessNode } from './tree.js';

/** A daemon process: what a signal event names as its target. */
export interface DaemonProcess {
  readonly pid: number;
  readonly startTicks: number;
  readonly entityId: string;
  readonly name: string;
  readonly executable: string | undefined;
  readonly args: readonly string[] | undefined;
  /** When its exit record was handled (ms, the clock `now` gives); undefined while it runs. */
  exitedAt: number | undefined;
}

export interface SecurityDaemonStats {
  /** Daemon processes running now (a gauge). */
  running: number;
  /** Daemon processes seen, from /proc at start and from exec and fork records. */
  seen: number;
  /** Daemon processes whose pid did not fit (the agent's bound or the driver's map): their signals are not seen. */
  notProtected: number;
}

/** How long an exited daemon still names the target of a late kill record. */
export const DAEMON_LINGER_MS = 5000;

export class SecurityDaemons {
  readonly stats: SecurityDaemonStats = { running: 0, seen: 0, notProtected: 0 };
  private readonly names: ReadonlySet<string>;
  private readonly executables: ReadonlySet<string>;
  private readonly byPid = new Map<number, DaemonProcess>();
  /** Running daemons beyond `max`: tracked, not protected (counted once each). */
  private readonly overflow = new Set<number>();

  /**
   * `max`: the most daemon pids protected at once (the driver's map also holds Hades' own).
   * `onChange`: called when the set of pids to protect changed.
   */
  constructor(
    names: Iterable<string>,
    executables: Iterable<string>,
    private readonly tree: ProcessTree,
    private readonly max: number,
    private readonly onChange: () => void,
    private readonly now: () => number = Date.now,
  ) {
    this.names = new Set(names);
    this.executables = new Set(executables);
  }

  isDaemon(name: string, executable: string | undefined): boolean {
    return this.names.has(name) || (executable !== undefined && this.executables.has(executable));
  }

  /** The daemons among the processes the tree read from /proc (at start). */
  seed(nodes: Iterable<ProcessNode>): void {
    let changed = false;
    for (const node of nodes) {
      if (node.exited || !this.isDaemon(node.name, node.executable)) continue;
      const known = this.byPid.get(node.pid);
      if (known && known.exitedAt === undefined && known.startTicks === node.startTicks) continue;
      this.put({ pid: node.pid, startTicks: node.startTicks, entityId: node.entityId, name: node.name, executable: node.executable, args: node.args, exitedAt: undefined });
      changed = true;
    }
    if (changed) this.onChange();
  }

  /** A process record, in order: the cost for a process that is no daemon is a set or map lookup or two. */
  observe(r: DriverRecord): void {
    switch (r.type) {
      case 'exec': {
        const executable = r.exePath || r.filename;
        if (this.isDaemon(r.comm, executable)) {
          const startTicks = ProcessTree.ticksFromNs(r.startNs);
          this.put({ pid: r.pid, startTicks, entityId: this.tree.entityId(r.pid, startTicks), name: r.comm, executable, args: r.argv, exitedAt: undefined });
          this.onChange();
        } else if (this.byPid.size > 0 && this.forget(r.pid)) {
          // A daemon that executed another program (or its pid reused) is no daemon any more.
          this.onChange();
        }
        return;
      }
      case 'fork': {
        if (this.byPid.size === 0) return;
        let changed = this.forget(r.childPid);
        const parent = this.byPid.get(r.pid);
        if (parent && parent.exitedAt === undefined) {
          const startTicks = ProcessTree.ticksFromNs(r.childStartNs);
          this.put({ ...parent, pid: r.childPid, startTicks, entityId: this.tree.entityId(r.childPid, startTicks), exitedAt: undefined });
          changed = true;
        }
        if (changed) this.onChange();
        return;
      }
      case 'exit': {
        const known = this.byPid.get(r.pid);
        if (!known || known.exitedAt !== undefined) return;
        // A process that started after the one that exited (records of two CPUs out of order) lives on.
        if ((r.missing & MissingField.start) === 0 && known.startTicks > ProcessTree.ticksFromNs(r.startNs)) return;
        known.exitedAt = this.now();
        this.overflow.delete(r.pid);
        this.stats.running--;
        this.onChange();
        return;
      }
    }
  }

  /**
   * The daemon a signal to `pid` reached: running, or exited a moment ago (the kill record of
   * the signal that ended it may come after its exit record).
   */
  target(pid: number): DaemonProcess | undefined {
    const known = this.byPid.get(pid);
    if (!known) return undefined;
    if (known.exitedAt !== undefined && this.now() - known.exitedAt > DAEMON_LINGER_MS) return undefined;
    return known;
  }

  /** The pids to protect: the running daemons, at most `max`. */
  pids(): number[] {
    const out: number[] = [];
    for (const d of this.byPid.values()) if (d.exitedAt === undefined && !this.overflow.has(d.pid)) out.push(d.pid);
    return out;
  }

  /** The driver refused to protect a pid (its map is full): counted, and not asked again. */
  refused(pid: number): void {
    const known = this.byPid.get(pid);
    if (!known || known.exitedAt !== undefined || this.overflow.has(pid)) return;
    this.overflow.add(pid);
    this.stats.notProtected++;
  }

  /** Lets go of the daemons that exited longer ago than DAEMON_LINGER_MS. */
  sweep(): void {
    const now = this.now();
    for (const [pid, d] of this.byPid) if (d.exitedAt !== undefined && now - d.exitedAt > DAEMON_LINGER_MS) this.byPid.delete(pid);
  }

  private put(d: DaemonProcess): void {
    this.forget(d.pid);
    this.stats.seen++;
    // Bounded memory whatever runs on the host (thousands of processes called auditd): exited
    // ones waiting for a late record go first, then new ones are counted and not kept.
    if (this.byPid.size >= this.max * 2) this.sweep();
    if (this.byPid.size >= this.max * 2) {
      this.stats.notProtected++;
      return;
    }
    this.byPid.set(d.pid, d);
    this.stats.running++;
    if (this.stats.running - this.overflow.size > this.max) {
      this.overflow.add(d.pid);
      this.stats.notProtected++;
    }
  }

  /** Forgets the process under `pid`; true when it was a running daemon (one fewer to protect). */
  private forget(pid: number): boolean {
    const known = this.byPid.get(pid);
    if (!known) return false;
    this.byPid.delete(pid);
    if (known.exitedAt !== undefined) return false;
    this.overflow.delete(pid);
    this.stats.running--;
    return true;
  }
}
