/**
 * Turns decoded driver records into ECS events (docs/events.md), keeping the process tree
 * current on the way: the one place where kernel facts become the public event form.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import type { EventOf, HadesEvent } from '../common/events/index.js';
import { PID_MAX } from '../common/events/fields.js';
import type { Accounts } from './accounts.js';
import type { ArgsCompletion, ArgsReader } from './args-completion.js';
import type { ExecRecord, ExitRecord, FdInfo, ForkRecord, DriverRecord, MissingFieldName } from './driver/records.js';
import { MissingField, RecordFlag } from './driver/records.js';
import type { SecurityRecord } from './driver/security-records.js';
import { ContainerCache, type Container } from './containers.js';
import type { ExecutableHasher, HashResult } from './hasher.js';
import type { CopyOf } from './known-programs.js';
import { AF_INET, AF_INET6, AF_UNIX, IPPROTO_TCP, IPPROTO_UDP, formatIp } from './net.js';
import { ProcessTree, type Creds, type ProcessNode, type ReplacedProgram } from './tree.js';
import { Sequencer } from './sequencer.js';
import { scriptOf } from './script.js';

export interface HostIdentity {
  readonly name: string;
  readonly kernel: string;
  readonly architecture: string;
}

export interface BuilderOptions {
  readonly host: HostIdentity;
  readonly agentVersion: string;
  readonly ancestors: number;
  /** Shared with the agent's other sources, so sequence numbers order the whole stream. */
  readonly sequencer?: Sequencer;
  /** Cgroup id -> container; one reading this system's /proc by default. */
  readonly containers?: ContainerCache;
  /** Installed shells and interpreters by hash (known-programs.ts): copies of them are named on exec events. */
  readonly knownPrograms?: { copyOf(executable: string, sha256: string): CopyOf | undefined };
  /** Completes the arguments of execs the driver cut from /proc/PID/cmdline (args-completion.ts); none by default. */
  readonly argsReader?: ArgsReader;
}

const CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK',
  'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE',
  'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

const capabilityCache = new Map<number, readonly string[]>();

/** Capability names of a mask; the same array for the same mask (events share it, read-only). */
export function capabilityNames([low, high]: readonly [number, number]): readonly string[] {
  // One number for both words (exact while the high word stays under 2^21: 40 capabilities today).
  if (high >>> 0 >= 2 ** 21) return computeCapabilityNames(low, high);
  const key = (high >>> 0) * 2 ** 32 + (low >>> 0);
  let names = capabilityCache.get(key);
  if (!names) {
    names = Object.freeze(computeCapabilityNames(low, high));
    if (capabilityCache.size < 256) capabilityCache.set(key, names);
  }
  return names;
}

/** The kernel's full capability set as [low, high] words, from cap_last_cap (40 on 6.x kernels). */
const fullCapabilities = ((): readonly [number, number] => {
  let last = CAPABILITIES.length - 1;
  try {
    last = Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim()) || last;
  } catch {
    // not Linux, or /proc not mounted: the table above is the kernel's set as far as we know
  }
  const bits = last + 1;
  return [bits >= 32 ? 0xffffffff : 2 ** bits - 1, bits > 32 ? 2 ** (bits - 32) - 1 : 0];
})();

/**
 * What root's processes have on this host: the capability bounding set of PID 1, which every
 * process inherits (a host or sandbox that drops a capability for everyone, a container's init);
 * the kernel's full set where it cannot be read.
 */
const rootCapabilities = ((): readonly [number, number] => {
  try {
    const hex = /^CapBnd:\s*([0-9a-f]{1,16})$/m.exec(readFileSync('/proc/1/status', 'utf8'))?.[1];
    if (hex !== undefined) {
      const padded = hex.padStart(16, '0');
      return [Number.parseInt(padded.slice(8), 16), Number.parseInt(padded.slice(0, 8), 16)];
    }
  } catch {
    // /proc/1 unreadable: assume nothing was dropped
  }
  return fullCapabilities;
})();

/**
 * True when a process has the capabilities its user id implies: root's usual set (`root`, by
 * default the bounding set of PID 1) for root, none otherwise. Events list capabilities only
 * when they differ (a root process with a reduced set, such as a hardened service or a
 * container's, a non-root process with file or ambient capabilities): the usual case is 800
 * bytes that say nothing the user id does not.
 */
export function usualCapabilities(euid: number, [low, high]: readonly [number, number], root: readonly [number, number] = rootCapabilities): boolean {
  if (euid === 0) return low >>> 0 === root[0] >>> 0 && high >>> 0 === root[1] >>> 0;
  return low === 0 && high === 0;
}

function computeCapabilityNames(low: number, high: number): string[] {
  const names: string[] = [];
  for (let bit = 0; bit < CAPABILITIES.length; bit++) {
    const set = bit < 32 ? (low >>> bit) & 1 : (high >>> (bit - 32)) & 1;
    if (set) names.push(CAPABILITIES[bit] ?? `CAP_${bit}`);
  }
  return names;
}

/**
 * Names in hades.missing for each missing-field bit, as ECS paths. The path the exec call
 * passed (filename) is not reported: only the eBPF backend can see it, and process.executable
 * comes from the executable itself.
 */
const MISSING_PATHS: Readonly<Record<MissingFieldName, string | undefined>> = {
  filename: undefined,
  exe: 'process.executable',
  argv: 'process.args',
  cwd: 'process.working_directory',
  creds: 'process.user',
  parent: 'process.parent',
  pgidSid: 'process.group_leader',
  tty: 'hades.process.tty',
  fds: 'hades.process.stdio',
  cgroup: 'hades.process.cgroup',
  ns: 'hades.process.namespaces',
  comm: 'process.name',
  start: 'process.start',
  loginuid: 'hades.process.login_uid',
  caps: 'process.thread.capabilities',
  exitCode: 'process.exit_code',
};

/** The missing-field bits a fork event can have: what it carries of the child. */
const FORK_FIELDS = MissingField.creds | MissingField.comm | MissingField.start | MissingField.parent;

export function missingPaths(mask: number): string[] {
  const out = new Set<string>();
  for (const [name, bit] of Object.entries(MissingField)) {
    const field = MISSING_PATHS[name as MissingFieldName];
    if (mask & bit && field) out.add(field);
  }
  return [...out];
}

let isoSecond = -1;
let isoPrefix = '';
const isoPrefixes = new Map<number, string>();

/** "000" to "999", and the same with the final "Z": timestamps are put together from these without number formatting. */
const DIGITS3 = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));
const DIGITS3Z = DIGITS3.map((d) => `${d}Z`);

/** Wall-clock ISO 8601 with microseconds from nanoseconds since the epoch. */
export function isoFromNs(ns: number): string {
  // The date and time up to the second is formatted once per second: events come in bursts.
  let second = Math.floor(ns / 1e9);
  let micros = Math.floor((ns - second * 1e9) / 1e3);
  // A double near a second's boundary may round into the next second or back: carry.
  if (micros < 0) {
    second--;
    micros += 1e6;
  } else if (micros >= 1e6) {
    second++;
    micros -= 1e6;
  }
  if (second !== isoSecond) {
    // An event's own time and its parent's start time alternate: remember more than one second.
    let prefix = isoPrefixes.get(second);
    if (prefix === undefined) {
      prefix = `${new Date(second * 1000).toISOString().slice(0, 19)}.`;
      if (isoPrefixes.size >= 1024) isoPrefixes.clear();
      isoPrefixes.set(second, prefix);
    }
    isoSecond = second;
    isoPrefix = prefix;
  }
  return isoPrefix + DIGITS3[Math.floor(micros / 1000)] + DIGITS3Z[micros % 1000];
}

/** Characters of arguments kept per ancestor: the full list is in that process's own exec event. */
export const ANCESTOR_ARGS_MAX = 512;

/** Arguments cut after ANCESTOR_ARGS_MAX characters in all; `truncated` when cut. */
function cutArgs(all: readonly string[] | undefined): { args: readonly string[] | undefined; truncated: true | undefined } {
  if (all) {
    let total = 0;
    for (let i = 0; i < all.length; i++) {
      const arg = all[i] ?? '';
      if (total + arg.length > ANCESTOR_ARGS_MAX) return { args: [...all.slice(0, i), arg.slice(0, Math.max(0, ANCESTOR_ARGS_MAX - total))], truncated: true };
      total += arg.length + 1;
    }
  }
  return { args: all, truncated: undefined };
}

function asAncestor(node: ProcessNode): Readonly<Record<string, unknown>> {
  const { args, truncated } = cutArgs(node.args);
  // copy_of: the frozen object the exec event named, shared by every entry and event that names it.
  return Object.freeze({ pid: node.pid, entity_id: node.entityId, name: node.name, executable: node.executable, args, args_truncated: truncated, copy_of: node.copyOf });
}

/**
 * process.previous: the program a process replaced, its arguments cut as an ancestor's; none
 * when neither its path nor its arguments were read (cn_proc, a process gone at once).
 */
function previousPrograms(replaced: ReplacedProgram | undefined): [{ executable: string | undefined; args: readonly string[] | undefined; args_truncated: true | undefined }] | undefined {
  if (replaced === undefined) return undefined;
  const executable = replaced.executable || undefined;
  const { args, truncated } = cutArgs(replaced.args?.length ? replaced.args : undefined);
  return executable === undefined && args === undefined ? undefined : [{ executable, args, args_truncated: truncated }];
}

/**
 * event.category of the process events made here: one array shared by all of them, by which
 * serialize.ts recognises the fixed shapes below (it writes those without JSON.stringify).
 */
const commandLines = new WeakMap<readonly string[], string>();

/** The arguments joined by spaces, made once per list: a process's, which its forks and its children's events share. */
export function commandLineOf(args: readonly string[] | undefined): string | undefined {
  if (args === undefined) return undefined;
  let line = commandLines.get(args);
  if (line === undefined) {
    line = args.join(' ');
    commandLines.set(args, line);
  }
  return line;
}

export const EXEC_CATEGORY = ['process'];
const START_TYPE = ['start'];
const END_TYPE = ['end'];
const CHANGE_TYPE = ['change'];

export { containerFromCgroup } from './containers.js';

const TTY_MAJORS = new Set([4, 5, 136, 137, 138, 139, 140, 141, 142, 143]);

// The streams without an inode are the same object in every event (read-only, like the rest).
const STDIO_NONE = Object.freeze({ type: 'none' as const });
const STDIO_TTY = Object.freeze({ type: 'tty' as const });

/** Pseudo-terminal names as ps, who and sudo's log write them (`pts/0`); the kernel's tty name is `pts0`. Others (`tty1`, `ttyS0`) as they are. */
const PTS = /^pts(\d+)$/;
export function ttyName(kernelName: string): string {
  const m = PTS.exec(kernelName);
  return m === null ? kernelName : `pts/${m[1]!}`;
}
const STDIO_CHAR = Object.freeze({ type: 'char_device' as const });
const STDIO_UNKNOWN = Object.freeze({ type: 'unknown' as const });
const STDIO_OTHER = Object.freeze({ type: 'other' as const });

/** Standard input: a file redirected into the process comes with its path (`tr < /proc/1/environ`). */
function stdinStream(r: ExecRecord) {
  const fd = r.fds[0];
  if (fd.kind !== 'file' || r.stdinPath === '') return stdioStream(fd);
  return (r.flags & RecordFlag.stdinDeleted) !== 0 ? { type: 'file' as const, inode: fd.inode, path: r.stdinPath, deleted: true } : { type: 'file' as const, inode: fd.inode, path: r.stdinPath };
}

function stdioStream(fd: FdInfo) {
  switch (fd.kind) {
    case 'none':
      return STDIO_NONE;
    case 'pipe':
      return { type: 'pipe' as const, inode: fd.inode };
    case 'file':
      return { type: 'file' as const, inode: fd.inode };
    case 'char':
      return TTY_MAJORS.has(fd.rdev >>> 20) ? STDIO_TTY : STDIO_CHAR;
    case 'socket': {
      const family = fd.family === AF_INET ? 'ipv4' : fd.family === AF_INET6 ? 'ipv6' : fd.family === AF_UNIX ? 'unix' : 'other';
      const transport = fd.protocol === IPPROTO_TCP || (fd.sockType === 1 && family !== 'unix') ? 'tcp' : fd.protocol === IPPROTO_UDP || (fd.sockType === 2 && family !== 'unix') ? 'udp' : 'other';
      const socket: Record<string, unknown> = { family };
      if (family === 'ipv4' || family === 'ipv6') {
        socket['transport'] = transport;
        socket['local_ip'] = formatIp(fd.family, fd.localAddr);
        socket['local_port'] = fd.localPort;
        if (fd.remotePort !== 0) {
          socket['remote_ip'] = formatIp(fd.family, fd.remoteAddr);
          socket['remote_port'] = fd.remotePort;
        }
      }
      return { type: 'socket' as const, inode: fd.inode, socket };
    }
    case 'unknown':
      return STDIO_UNKNOWN;
    default:
      return STDIO_OTHER;
  }
}

/** The decoded exit status: the code, or 128 + signal for a process killed by a signal. */
export function exitCodeOf(waitStatus: number): number {
  const signal = waitStatus & 0x7f;
  return signal !== 0 ? 128 + signal : (waitStatus >>> 8) & 0xff;
}

/** Ancestors shared by the events of siblings (read-only, like the entries in it). */
interface Lineage {
  readonly list: readonly Readonly<Record<string, unknown>>[];
  /** " < parent(pid) < grandparent(pid) ...". */
  readonly above: string;
}

const NO_ANCESTORS: Lineage['list'] = Object.freeze([]);

export class EventBuilder {
  private readonly sequencer: Sequencer;
  private readonly host: Record<string, unknown>;
  private readonly agent: { version: string; type: 'hades' };
  /** Shared {id, name} objects per uid and gid; rebuilt when the account files change. */
  private users = new Map<number, { id: string; name?: string }>();
  private groups = new Map<number, { id: string; name?: string }>();
  private accountsVersion = -1;
  /** Per parent's ancestor entry: its children's ancestor list and the ancestry line above them. */
  private readonly lineages = new WeakMap<object, Lineage>();
  /** The container of each cgroup: every event of a process names the one its exec does. */
  readonly containers: ContainerCache;
  /** CLOCK_REALTIME - CLOCK_BOOTTIME in ns, from the driver's HELLO. */
  bootTimeNs = 0;
  backend = 'ebpf';

  constructor(
    private readonly tree: ProcessTree,
    private readonly accounts: Accounts,
    private readonly hasher: ExecutableHasher,
    private readonly options: BuilderOptions,
  ) {
    const { host } = options;
    // Shared by every event and serialised once (serialize.ts): frozen, like the users and groups.
    this.agent = Object.freeze({ version: options.agentVersion, type: 'hades' as const });
    this.sequencer = options.sequencer ?? new Sequencer();
    this.containers = options.containers ?? new ContainerCache();
    this.host = Object.freeze({ name: host.name, hostname: host.name, architecture: host.architecture, os: Object.freeze({ type: 'linux', kernel: host.kernel }) });
  }

  /** Applies a record to the process tree and returns its event (a promise only while a hash is computed). */
  build(record: DriverRecord): HadesEvent | Promise<HadesEvent> {
    this.refreshAccounts();
    switch (record.type) {
      case 'exec':
        return this.exec(record);
      case 'fork':
        return this.fork(record);
      case 'exit':
        return this.exit(record);
    }
  }

  /**
   * The acting process of a security record, from the process tree when it knows the process
   * (same pid and start time), else from what the record itself carries.
   */
  actor(r: SecurityRecord) {
    const ticks = ProcessTree.ticksFromNs(r.startNs);
    const known = this.tree.get(r.pid);
    const node = known && known.startTicks === ticks ? known : undefined;
    // Credentials the driver could not read (cn_proc: the process had exited) are the tree's, else unknown.
    const creds = (r.missing & MissingField.creds) === 0 ? r : node?.creds;
    // A thread other than the leader names the process by the process's name (the tree's), not
    // its own: a thread may call itself anything (prctl(PR_SET_NAME) renames the calling thread
    // only), and rules that allow programs by name must not be fooled by it. Its own name goes
    // with the thread; a process the tree does not know goes unnamed rather than by it.
    const otherThread = r.tid !== r.pid;
    const name = otherThread ? node?.name || undefined : r.comm || node?.name || undefined;
    const threadName = otherThread && r.comm && r.comm !== name ? r.comm : undefined;
    const process = {
      pid: r.pid,
      entity_id: node?.entityId ?? this.tree.entityId(r.pid, ticks),
      name,
      executable: node?.executable,
      args: node?.args,
      command_line: commandLineOf(node?.args),
      start: r.startNs ? isoFromNs(this.bootTimeNs + r.startNs) : undefined,
      thread: otherThread ? { id: r.tid, ...(threadName === undefined ? {} : { name: threadName }) } : undefined,
      parent: r.ppid ? this.parentRef(r.ppid, 0) : undefined,
      user: creds ? this.user(creds.euid) : undefined,
      group: creds ? this.group(creds.egid) : undefined,
      real_user: creds ? this.user(creds.uid) : undefined,
      real_group: creds ? this.group(creds.gid) : undefined,
    };
    const hades = node ? this.lineage(node, undefined, 0) : { backend: this.backend };
    // The record's cgroup, else (not known, nothing to believe in /proc) the one the tree has.
    const inCgroup = this.containers.ofId(r.cgroupId, r.pid, r.ppid);
    const container = inCgroup === undefined ? node?.container : (inCgroup ?? undefined);
    if (node && inCgroup !== undefined) node.container = container;
    return { process, container, hades };
  }

  /**
   * A process renamed itself: the tree names it as it now is (ProcessTree.rename). Returns the
   * name the tree had for it before ('' when it knows none): the old name when the driver did
   * not give it (cn_proc, for a process whose name it never read).
   */
  renamed(pid: number, startNs: number, name: string): string {
    return this.tree.rename(pid, startNs, name) ?? '';
  }

  /** A reference to another process (a ptrace target), from the tree when it knows it. */
  processRef(pid: number, startNs: number, comm: string | undefined) {
    const known = this.tree.get(pid);
    const node = known && (startNs === 0 || known.startTicks === ProcessTree.ticksFromNs(startNs)) ? known : undefined;
    return {
      pid,
      entity_id: node?.entityId ?? (startNs ? this.tree.entityId(pid, ProcessTree.ticksFromNs(startNs)) : undefined),
      name: comm || node?.name || undefined,
      executable: node?.executable,
      args: node?.args,
      start: startNs ? isoFromNs(this.bootTimeNs + startNs) : undefined,
    };
  }

  /**
   * A privilege_change event when an exec turned a non-root process into root without a
   * setuid-root executable or an allowed program (sudo, su, ...): the shape of a kernel exploit
   * or a backdoored binary.
   */
  escalation(r: ExecRecord, before: Creds | undefined, exec: HadesEvent, allowed: ReadonlySet<string>): EventOf<'privilege_change'> | undefined {
    if (!before || before.euid === 0 || r.euid !== 0 || (r.missing & MissingField.creds) !== 0) return undefined;
    const executable = r.exePath || r.filename;
    if (allowed.has(executable)) return undefined;
    // The driver read the executed inode's mode and owner at exec: no stat here, which could see
    // another file (the process gone, or living in another mount namespace).
    if ((r.flags & RecordFlag.exeSetuidRoot) !== 0) return undefined;
    const event = this.common('privilege_change', 'event', EXEC_CATEGORY, CHANGE_TYPE, r.ktimeNs) as Record<string, unknown>;
    const source = exec as unknown as Record<string, unknown>;
    event['process'] = source['process'];
    event['container'] = source['container'];
    const lineage = source['hades'] as Record<string, unknown>;
    event['hades'] = {
      backend: this.backend,
      ancestors: lineage['ancestors'],
      ancestry: lineage['ancestry'],
      privilege: {
        call: 'exec',
        reason: 'root_without_setuid',
        before: { uid: before.uid, gid: before.gid, euid: before.euid, egid: before.egid },
        after: { uid: r.uid, gid: r.gid, euid: r.euid, egid: r.egid, suid: r.suid, sgid: r.sgid, fsuid: r.fsuid, fsgid: r.fsgid },
      },
    };
    return event as unknown as EventOf<'privilege_change'>;
  }

  /** A copy of an aggregated event that stands for `count` more occurrences. */
  summary(event: HadesEvent, count: number, at: number): HadesEvent {
    const copy = { ...(event as unknown as Record<string, unknown>) };
    const common = this.common(event.event.action, event.event.kind, [...event.event.category], [...event.event.type], 0);
    copy['@timestamp'] = isoFromNs(at * 1e6);
    copy['event'] = { ...common.event, outcome: event.event.outcome, count };
    return copy as unknown as HadesEvent;
  }

  /** Keeps the process tree current for a record whose event nobody wants. */
  track(record: DriverRecord): void {
    switch (record.type) {
      case 'exec':
        this.tree.exec(record.pid, record.ppid, record.startNs, record.comm, record.exePath || record.filename, record.argv, (record.missing & MissingField.creds) === 0 ? { uid: record.uid, gid: record.gid, euid: record.euid, egid: record.egid } : undefined);
        break;
      case 'fork':
        this.tree.fork(record.pid, record.childPid, record.childStartNs, record.comm);
        break;
      case 'exit':
        this.tree.exit(record.pid, (record.missing & MissingField.start) === 0 ? record.startNs : 0);
        break;
    }
  }

  /** Common fields, with the next sequence number. */
  common(action: string, kind: string, category: string[], type: string[], ktimeNs: number) {
    const sequence = this.sequencer.next();
    return {
      '@timestamp': isoFromNs(this.bootTimeNs + ktimeNs),
      event: { id: this.sequencer.id(sequence), kind, category, type, action, sequence },
      host: this.host,
      agent: this.agent,
    };
  }

  // Events are built as object literals of fixed shape; absent optional fields are undefined,
  // which JSON leaves out. Argument arrays are shared with the process tree, never copied:
  // nothing mutates them after decoding.

  /** The `hades` part every process event carries: ancestors (parent first) and the one-line ancestry. */
  lineage(node: ProcessNode, process: Record<string, unknown> | undefined, missing: number) {
    const ancestors = this.tree.ancestors(node.pid, this.options.ancestors);
    let list = NO_ANCESTORS;
    let above = '';
    if (ancestors.length > 0) {
      const parent = ancestors[0] as ProcessNode;
      // The same entry serves every descendant's events until the process executes again.
      const first = (parent.asAncestor ??= asAncestor(parent));
      // Siblings share their list and its part of the ancestry line, while the chain is the same.
      const known = this.lineages.get(first);
      let same = known !== undefined && known.list.length === ancestors.length;
      for (let i = 1; same && i < ancestors.length; i++) {
        const a = ancestors[i] as ProcessNode;
        same = (known as Lineage).list[i] === (a.asAncestor ??= asAncestor(a));
      }
      if (same) {
        ({ list, above } = known as Lineage);
      } else {
        const entries = new Array<Readonly<Record<string, unknown>>>(ancestors.length);
        for (let i = 0; i < ancestors.length; i++) {
          const a = ancestors[i] as ProcessNode;
          entries[i] = a.asAncestor ??= asAncestor(a);
          above += ` < ${a.name || '?'}(${a.pid})`;
        }
        list = Object.freeze(entries);
        this.lineages.set(first, { list, above });
      }
    }
    return { backend: this.backend, process, ancestors: list, ancestry: `${node.name || '?'}(${node.pid})${above}`, missing: missing === 0 ? undefined : missingPaths(missing) };
  }

  parentRef(ppid: number, parentStartNs: number) {
    const parent = this.tree.get(ppid);
    const live = parent !== undefined && !parent.exited;
    return {
      pid: ppid,
      entity_id: live ? parent.entityId : this.tree.entityId(ppid, ProcessTree.ticksFromNs(parentStartNs)),
      name: parent?.name || undefined,
      executable: parent?.executable,
      args: parent?.args,
      command_line: commandLineOf(parent?.args),
      start: parentStartNs ? isoFromNs(this.bootTimeNs + parentStartNs) : undefined,
    };
  }

  private user(id: number) {
    let entry = this.users.get(id);
    if (!entry) {
      const name = this.accounts.user(id);
      entry = Object.freeze(name === undefined ? { id: String(id) } : { id: String(id), name });
      if (this.users.size < 4096) this.users.set(id, entry);
    }
    return entry;
  }

  private group(id: number) {
    let entry = this.groups.get(id);
    if (!entry) {
      const name = this.accounts.group(id);
      entry = Object.freeze(name === undefined ? { id: String(id) } : { id: String(id), name });
      if (this.groups.size < 4096) this.groups.set(id, entry);
    }
    return entry;
  }

  /** Drops cached names when /etc/passwd or /etc/group changed (checked at most every few seconds). */
  private refreshAccounts(): void {
    const version = this.accounts.version;
    if (version !== this.accountsVersion) {
      this.accountsVersion = version;
      this.users = new Map();
      this.groups = new Map();
    }
  }

  private exec(r: ExecRecord): EventOf<'exec'> | Promise<EventOf<'exec'>> {
    // A path nested deeper than the driver reads (rare: 64 folders) is read whole from /proc.
    if ((r.flags & (RecordFlag.exeTruncated | RecordFlag.cwdTruncated)) !== 0) r = wholePaths(r);
    const executable = r.exePath || r.filename;
    const creds = (r.missing & MissingField.creds) === 0 ? { uid: r.uid, gid: r.gid, euid: r.euid, egid: r.egid } : undefined;
    // What could not be read is unknown to the tree (0): it keeps the process's own start and parent.
    const startNs = (r.missing & MissingField.start) === 0 ? r.startNs : 0;
    const ppid = (r.missing & MissingField.parent) === 0 ? r.ppid : 0;
    const node = this.tree.exec(r.pid, ppid, startNs, r.comm, executable, r.argv, creds);
    const replaced = this.tree.replaced;
    // A cache hit in place of reading the path: the exec path costs no more than it did.
    const container = this.containers.ofPath(r.cgroupId, r.cgroupPath, (r.flags & RecordFlag.cgroupTruncated) !== 0);
    node.container = container;
    const identity = r.exeIno !== 0 ? { dev: r.exeDev, ino: r.exeIno, size: r.exeSize, mtimeNs: r.exeMtimeNs, ctimeNs: r.exeCtimeNs } : undefined;
    const hash = executable ? this.hasher.hash(executable, identity, r.pid) : undefined;
    // Rare (an argv over driver.argv_max): the hot path only tests the flag.
    const reader = this.options.argsReader;
    if ((r.flags & RecordFlag.argvTruncated) !== 0 && reader !== undefined && (r.missing & (MissingField.argv | MissingField.start)) === 0) {
      const completion = reader.complete(r.pid, ProcessTree.ticksFromNs(r.startNs), r.argv, r.argvBytes);
      return Promise.all([completion, hash]).then(([c, h]) => {
        if (c !== undefined && c.source !== 'driver_rewritten' && node.args === r.argv) {
          // Its children's events name the process with the arguments it has.
          node.args = c.args;
          node.asAncestor = undefined;
        }
        return this.execEvent(r, node, executable, h, container, replaced, c);
      });
    }
    return hash instanceof Promise ? hash.then((h) => this.execEvent(r, node, executable, h, container, replaced)) : this.execEvent(r, node, executable, hash, container, replaced);
  }

  private execEvent(r: ExecRecord, node: ProcessNode, executable: string, hash: HashResult | undefined, container: Container | undefined, replaced: ReplacedProgram | undefined, completion?: ArgsCompletion): EventOf<'exec'> {
    // A parent the driver could not read (the process had exited) is the one the tree knows from its fork.
    const treeParent = (r.missing & MissingField.parent) !== 0 && node.ppid > 0;
    // A group or session id no pid can be was not read right (seen once from cn_proc under load): missing, not made up.
    const badGroup = r.pgid > PID_MAX || r.sid > PID_MAX ? MissingField.pgidSid : 0;
    const missing = (treeParent ? r.missing & ~MissingField.parent : r.missing) | badGroup;
    const creds = (missing & MissingField.creds) === 0;
    const argv = (missing & MissingField.argv) === 0;
    const pgid = (missing & MissingField.pgidSid) === 0;
    const tty = (missing & MissingField.tty) === 0;
    const args = completion?.args ?? r.argv;
    // One Map lookup for a hashed executable; nothing more for the others.
    const copyOf = hash?.sha256 !== undefined && this.options.knownPrograms !== undefined ? this.options.knownPrograms.copyOf(executable, hash.sha256) : undefined;
    // The commands a copied shell runs name it in their ancestors (unless it executed again meanwhile).
    if (node.executable === executable) this.tree.setCopyOf(node, copyOf);
    const process = {
      pid: r.pid,
      entity_id: node.entityId,
      // A name the driver could not read (cn_proc, the process already gone) is left out, not empty.
      name: (missing & MissingField.comm) === 0 && r.comm ? r.comm : undefined,
      executable: executable || undefined,
      args: argv ? args : undefined,
      // The driver's count when it has one (it includes arguments cut off), else those kept.
      args_count: r.argc > 0 ? r.argc : argv ? args.length : undefined,
      command_line: argv ? args.join(' ') : undefined,
      working_directory: (missing & MissingField.cwd) === 0 && r.cwd ? r.cwd : undefined,
      start: (missing & MissingField.start) === 0 ? isoFromNs(this.bootTimeNs + r.startNs) : undefined,
      interactive: tty ? r.ttyDev !== 0 : undefined,
      thread: { id: r.tid, capabilities: creds && (missing & MissingField.caps) === 0 && !usualCapabilities(r.euid, r.capEffective) ? { effective: capabilityNames(r.capEffective) } : undefined },
      group_leader: pgid ? { pid: r.pgid } : undefined,
      session_leader: pgid ? { pid: r.sid } : undefined,
      parent: treeParent ? this.parentRef(node.ppid, 0) : (missing & MissingField.parent) === 0 ? this.parentRef(r.ppid, r.parentStartNs) : undefined,
      previous: previousPrograms(replaced),
      user: creds ? this.user(r.euid) : undefined,
      group: creds ? this.group(r.egid) : undefined,
      real_user: creds ? this.user(r.uid) : undefined,
      real_group: creds ? this.group(r.gid) : undefined,
      saved_user: creds ? this.user(r.suid) : undefined,
      saved_group: creds ? this.group(r.sgid) : undefined,
      hash: hash?.sha256 ? { sha256: hash.sha256 } : undefined,
      tty: tty && r.ttyDev !== 0 ? { char_device: { major: r.ttyDev >>> 20, minor: r.ttyDev & 0xfffff } } : undefined,
    };
    const hadesProcess = {
      tty: tty && r.tty ? ttyName(r.tty) : undefined,
      stdio: (missing & MissingField.fds) === 0 ? { stdin: stdinStream(r), stdout: stdioStream(r.fds[1]), stderr: stdioStream(r.fds[2]) } : undefined,
      cgroup: (missing & MissingField.cgroup) === 0 ? { id: r.cgroupId, path: r.cgroupPath || undefined } : undefined,
      namespaces: (missing & MissingField.ns) === 0 ? { pid: r.pidNs, mnt: r.mntNs } : undefined,
      paths_cut: (r.flags & (RecordFlag.exeTruncated | RecordFlag.cwdTruncated)) !== 0 ? cutPaths(r) : undefined,
      script: argv ? scriptOf(copyOf?.name ?? executable, args, (missing & MissingField.cwd) === 0 ? r.cwd : undefined) : undefined,
      args_truncated: (r.flags & RecordFlag.argvTruncated) !== 0,
      args_bytes: r.argvBytes,
      args_source: completion?.source,
      fileless: (r.flags & (RecordFlag.exeMemfd | RecordFlag.exeDeleted)) !== 0,
      login_uid: (missing & MissingField.loginuid) === 0 && r.loginuid !== 0xffffffff ? r.loginuid : undefined,
      credentials: creds ? { uid: r.uid, gid: r.gid, euid: r.euid, egid: r.egid, suid: r.suid, sgid: r.sgid, fsuid: r.fsuid, fsgid: r.fsgid } : undefined,
      hash_status: hash?.status,
      copy_of: copyOf,
    };
    const event = this.common('exec', 'event', EXEC_CATEGORY, START_TYPE, r.ktimeNs) as Record<string, unknown>;
    event['process'] = process;
    event['container'] = container;
    event['hades'] = this.lineage(node, hadesProcess, missing);
    return event as unknown as EventOf<'exec'>;
  }

  private fork(r: ForkRecord): EventOf<'fork'> {
    // The child is in the forking process's cgroup (the record's); the tree's when not known.
    const node = this.tree.fork(r.pid, r.childPid, r.childStartNs, r.comm, this.containers.ofId(r.cgroupId, r.pid, r.childPid));
    const event = this.common('fork', 'event', EXEC_CATEGORY, START_TYPE, r.ktimeNs) as Record<string, unknown>;
    const creds = (r.missing & MissingField.creds) === 0;
    event['process'] = {
      pid: r.childPid,
      entity_id: node.entityId,
      name: (r.missing & MissingField.comm) === 0 ? r.comm : undefined,
      executable: node.executable || undefined,
      args: node.executable ? node.args : undefined,
      command_line: node.executable ? commandLineOf(node.args) : undefined,
      start: (r.missing & MissingField.start) === 0 ? isoFromNs(this.bootTimeNs + r.childStartNs) : undefined,
      parent: this.parentRef(r.pid, r.parentStartNs),
      // The child's effective ids (the driver's FORK record carries them, driver/PROTOCOL.md).
      user: creds ? this.user(r.uid) : undefined,
      group: creds ? this.group(r.gid) : undefined,
    };
    event['container'] = node.container;
    // Only what a fork event carries can be missing from it (cn_proc reads no cgroup for a fork).
    event['hades'] = this.lineage(node, undefined, r.missing & FORK_FIELDS);
    return event as unknown as EventOf<'fork'>;
  }

  private exit(r: ExitRecord): EventOf<'exit'> {
    // A start the driver could not read (cn_proc, a process it never saw start) is unknown: the
    // exit is then the live process the tree has under that pid, with its entity id and ancestry.
    const startNs = (r.missing & MissingField.start) === 0 ? r.startNs : 0;
    const startTicks = ProcessTree.ticksFromNs(startNs);
    const known = this.tree.get(r.pid);
    const node = known && (startNs !== 0 ? known.startTicks === startTicks : !known.exited) ? known : undefined;
    const parent = r.ppid ? this.tree.get(r.ppid) : undefined;
    const event = this.common('exit', 'event', EXEC_CATEGORY, END_TYPE, r.ktimeNs) as Record<string, unknown>;
    event['process'] = {
      pid: r.pid,
      entity_id: node?.entityId ?? this.tree.entityId(r.pid, startTicks),
      name: (r.missing & MissingField.comm) === 0 ? r.comm : undefined,
      // The program as the tree knows it; left out when it never learnt it (not an empty one).
      executable: node?.executable || undefined,
      args: node?.executable ? node.args : undefined,
      start: r.startNs ? isoFromNs(this.bootTimeNs + r.startNs) : undefined,
      end: isoFromNs(this.bootTimeNs + r.ktimeNs),
      exit_code: (r.missing & MissingField.exitCode) === 0 ? exitCodeOf(r.exitCode) : undefined,
      parent: r.ppid ? { pid: r.ppid, entity_id: parent?.entityId } : undefined,
    };
    // Exit records carry no cgroup: the container the tree knows the process in.
    event['container'] = node?.container;
    event['hades'] = node ? this.lineage(node, undefined, r.missing) : { backend: this.backend, missing: r.missing === 0 ? undefined : missingPaths(r.missing) };
    this.tree.exit(r.pid, startNs);
    return event as unknown as EventOf<'exit'>;
  }
}

/**
 * The record with the paths the driver cut (the last 64 components of a deeper path) read whole
 * from /proc, when the process is still there and its path ends as the driver's does; a path
 * still cut keeps its flag (cutPaths, hades.process.paths_cut).
 */
function wholePaths(r: ExecRecord): ExecRecord {
  let { exePath, cwd, flags } = r;
  const whole = (link: string, cut: string): string | undefined => {
    try {
      const path = readlinkSync(`/proc/${r.pid}/${link}`);
      return path.endsWith(cut) && path.length > cut.length ? path : undefined;
    } catch {
      return undefined;
    }
  };
  if ((flags & RecordFlag.exeTruncated) !== 0 && exePath) {
    const path = whole('exe', exePath);
    if (path !== undefined) {
      exePath = path;
      flags &= ~RecordFlag.exeTruncated;
    }
  }
  if ((flags & RecordFlag.cwdTruncated) !== 0 && cwd) {
    const path = whole('cwd', cwd);
    if (path !== undefined) {
      cwd = path;
      flags &= ~RecordFlag.cwdTruncated;
    }
  }
  return { ...r, exePath, cwd, flags };
}

function cutPaths(r: ExecRecord): ('executable' | 'working_directory')[] | undefined {
  const cut: ('executable' | 'working_directory')[] = [];
  if ((r.flags & RecordFlag.exeTruncated) !== 0) cut.push('executable');
  if ((r.flags & RecordFlag.cwdTruncated) !== 0) cut.push('working_directory');
  return cut.length > 0 ? cut : undefined;
}
