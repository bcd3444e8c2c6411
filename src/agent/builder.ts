/**
 * Turns decoded driver records into ECS events (docs/events.md), keeping the process tree
 * current on the way: the one place where kernel facts become the public event form.
 */
import { randomBytes } from 'node:crypto';
import type { EventOf, HadesEvent } from '../common/events/index.js';
import type { Accounts } from './accounts.js';
import type { ExecRecord, ExitRecord, FdInfo, ForkRecord, DriverRecord, MissingFieldName } from './driver/records.js';
import { MissingField, RecordFlag } from './driver/records.js';
import type { ExecutableHasher } from './hasher.js';
import { AF_INET, AF_INET6, AF_UNIX, IPPROTO_TCP, IPPROTO_UDP, formatIp } from './net.js';
import { ProcessTree, type ProcessNode } from './tree.js';

export interface HostIdentity {
  readonly name: string;
  readonly kernel: string;
  readonly architecture: string;
}

export interface BuilderOptions {
  readonly host: HostIdentity;
  readonly agentVersion: string;
  readonly ancestors: number;
}

const CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK',
  'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE',
  'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

export function capabilityNames([low, high]: readonly [number, number]): string[] {
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
};

export function missingPaths(mask: number): string[] {
  const out = new Set<string>();
  for (const [name, bit] of Object.entries(MissingField)) {
    const field = MISSING_PATHS[name as MissingFieldName];
    if (mask & bit && field) out.add(field);
  }
  return [...out];
}

/** Wall-clock ISO 8601 with microseconds from nanoseconds since the epoch. */
export function isoFromNs(ns: number): string {
  const ms = Math.floor(ns / 1e6);
  const micros = Math.floor(ns / 1e3) % 1000;
  return `${new Date(ms).toISOString().slice(0, -1)}${String(micros).padStart(3, '0')}Z`;
}

/** Container id and runtime from a cgroup path (docker, containerd, CRI-O, podman). */
export function containerFromCgroup(cgroupPath: string): { id: string; runtime?: string } | undefined {
  const match = /(docker|cri-containerd|crio|libpod|containerd)?[-/]?([0-9a-f]{64})(?:\.scope)?(?:\/|$)/.exec(cgroupPath);
  if (!match?.[2]) return undefined;
  const runtime = { docker: 'docker', 'cri-containerd': 'containerd', containerd: 'containerd', crio: 'cri-o', libpod: 'podman' }[match[1] ?? ''];
  return runtime ? { id: match[2], runtime } : { id: match[2] };
}

const TTY_MAJORS = new Set([4, 5, 136, 137, 138, 139, 140, 141, 142, 143]);

function stdioStream(fd: FdInfo) {
  switch (fd.kind) {
    case 'none':
      return { type: 'none' as const };
    case 'pipe':
      return { type: 'pipe' as const, inode: fd.inode };
    case 'file':
      return { type: 'file' as const, inode: fd.inode };
    case 'char':
      return { type: TTY_MAJORS.has(fd.rdev >>> 20) ? ('tty' as const) : ('char_device' as const) };
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
      return { type: 'unknown' as const };
    default:
      return { type: 'other' as const };
  }
}

/** The decoded exit status: the code, or 128 + signal for a process killed by a signal. */
export function exitCodeOf(waitStatus: number): number {
  const signal = waitStatus & 0x7f;
  return signal !== 0 ? 128 + signal : (waitStatus >>> 8) & 0xff;
}

export class EventBuilder {
  private sequence = 0;
  private readonly idPrefix = randomBytes(6).toString('hex');
  /** CLOCK_REALTIME - CLOCK_BOOTTIME in ns, from the driver's HELLO. */
  bootTimeNs = 0;
  backend = 'ebpf';

  constructor(
    private readonly tree: ProcessTree,
    private readonly accounts: Accounts,
    private readonly hasher: ExecutableHasher,
    private readonly options: BuilderOptions,
  ) {}

  /** Applies a record to the process tree and returns its event. */
  async build(record: DriverRecord): Promise<HadesEvent> {
    switch (record.type) {
      case 'exec':
        return this.exec(record);
      case 'fork':
        return this.fork(record);
      case 'exit':
        return this.exit(record);
    }
  }

  /** Keeps the process tree current for a record whose event nobody wants. */
  track(record: DriverRecord): void {
    switch (record.type) {
      case 'exec':
        this.tree.exec(record.pid, record.ppid, record.startNs, record.comm, record.exePath || record.filename, record.argv);
        break;
      case 'fork':
        this.tree.fork(record.pid, record.childPid, record.childStartNs, record.comm);
        break;
      case 'exit':
        this.tree.exit(record.pid);
        break;
    }
  }

  /** Common fields, with the next sequence number. */
  common(action: string, kind: string, category: string[], type: string[], ktimeNs: number) {
    const sequence = this.sequence++;
    return {
      '@timestamp': isoFromNs(this.bootTimeNs + ktimeNs),
      event: { id: `${this.idPrefix}-${sequence.toString(36)}`, kind, category, type, action, sequence },
      host: { name: this.options.host.name, hostname: this.options.host.name, architecture: this.options.host.architecture, os: { type: 'linux', kernel: this.options.host.kernel } },
      agent: { version: this.options.agentVersion, type: 'hades' as const },
    };
  }

  private ancestry(node: ProcessNode) {
    const ancestors = this.tree.ancestors(node.pid, this.options.ancestors);
    return {
      ancestors: ancestors.map((a) => ({ pid: a.pid, entity_id: a.entityId, name: a.name, ...(a.executable ? { executable: a.executable } : {}), ...(a.args ? { args: [...a.args] } : {}) })),
      ancestry: [node, ...ancestors].map((n) => `${n.name}(${n.pid})`).join(' < '),
    };
  }

  private parentRef(ppid: number, parentStartNs: number) {
    const parent = this.tree.get(ppid);
    const entityId = parent && !parent.exited ? parent.entityId : this.tree.entityId(ppid, ProcessTree.ticksFromNs(parentStartNs));
    return {
      pid: ppid,
      entity_id: entityId,
      ...(parent?.name ? { name: parent.name } : {}),
      ...(parent?.executable ? { executable: parent.executable } : {}),
      ...(parent?.args ? { args: [...parent.args] } : {}),
      ...(parentStartNs ? { start: isoFromNs(this.bootTimeNs + parentStartNs) } : {}),
    };
  }

  private user(id: number) {
    const name = this.accounts.user(id);
    return name === undefined ? { id: String(id) } : { id: String(id), name };
  }

  private group(id: number) {
    const name = this.accounts.group(id);
    return name === undefined ? { id: String(id) } : { id: String(id), name };
  }

  private async exec(r: ExecRecord): Promise<EventOf<'exec'>> {
    const missing = r.missing;
    const has = (bit: number) => (missing & bit) === 0;
    const executable = r.exePath || r.filename;
    const node = this.tree.exec(r.pid, r.ppid, r.startNs, r.comm, executable, r.argv);
    const hash = executable ? await this.hasher.hash(executable) : undefined;
    const truncated = (r.flags & RecordFlag.argvTruncated) !== 0;
    const process: Record<string, unknown> = {
      pid: r.pid,
      entity_id: node.entityId,
      name: r.comm,
      thread: { id: r.tid, ...(has(MissingField.caps) && has(MissingField.creds) ? { capabilities: { effective: capabilityNames(r.capEffective) } } : {}) },
    };
    if (executable) process['executable'] = executable;
    if (has(MissingField.argv)) {
      process['args'] = [...r.argv];
      process['args_count'] = r.argv.length;
      process['command_line'] = r.argv.join(' ');
    }
    if (has(MissingField.cwd) && r.cwd) process['working_directory'] = r.cwd;
    if (has(MissingField.start)) process['start'] = isoFromNs(this.bootTimeNs + r.startNs);
    if (has(MissingField.pgidSid)) {
      process['group_leader'] = { pid: r.pgid };
      process['session_leader'] = { pid: r.sid };
    }
    if (has(MissingField.parent)) process['parent'] = this.parentRef(r.ppid, r.parentStartNs);
    if (has(MissingField.creds)) {
      process['user'] = this.user(r.euid);
      process['group'] = this.group(r.egid);
      process['real_user'] = this.user(r.uid);
      process['real_group'] = this.group(r.gid);
      process['saved_user'] = this.user(r.suid);
      process['saved_group'] = this.group(r.sgid);
    }
    if (has(MissingField.tty)) {
      process['interactive'] = r.ttyDev !== 0;
      if (r.ttyDev !== 0) process['tty'] = { char_device: { major: r.ttyDev >>> 20, minor: r.ttyDev & 0xfffff } };
    }
    if (hash?.sha256) process['hash'] = { sha256: hash.sha256 };

    const hadesProcess: Record<string, unknown> = {
      args_truncated: truncated,
      args_bytes: r.argvBytes,
      fileless: (r.flags & (RecordFlag.exeMemfd | RecordFlag.exeDeleted)) !== 0,
    };
    if (has(MissingField.tty) && r.tty) hadesProcess['tty'] = r.tty;
    if (has(MissingField.fds)) hadesProcess['stdio'] = { stdin: stdioStream(r.fds[0]), stdout: stdioStream(r.fds[1]), stderr: stdioStream(r.fds[2]) };
    if (has(MissingField.cgroup)) hadesProcess['cgroup'] = { id: r.cgroupId, ...(r.cgroupPath ? { path: r.cgroupPath } : {}) };
    if (has(MissingField.ns)) hadesProcess['namespaces'] = { pid: r.pidNs, mnt: r.mntNs };
    if (has(MissingField.loginuid) && r.loginuid !== 0xffffffff) hadesProcess['login_uid'] = r.loginuid;
    if (has(MissingField.creds)) {
      hadesProcess['credentials'] = { uid: r.uid, gid: r.gid, euid: r.euid, egid: r.egid, suid: r.suid, sgid: r.sgid, fsuid: r.fsuid, fsgid: r.fsgid };
    }
    if (hash) hadesProcess['hash_status'] = hash.status;

    const container = r.cgroupPath ? containerFromCgroup(r.cgroupPath) : undefined;
    const missingList = missingPaths(missing);
    return {
      ...this.common('exec', 'event', ['process'], ['start'], r.ktimeNs),
      process,
      ...(container ? { container } : {}),
      hades: { backend: this.backend, process: hadesProcess, ...this.ancestry(node), ...(missingList.length ? { missing: missingList } : {}) },
    } as unknown as EventOf<'exec'>;
  }

  private fork(r: ForkRecord): EventOf<'fork'> {
    const node = this.tree.fork(r.pid, r.childPid, r.childStartNs, r.comm);
    const process: Record<string, unknown> = {
      pid: r.childPid,
      entity_id: node.entityId,
      name: r.comm,
      start: isoFromNs(this.bootTimeNs + r.childStartNs),
      parent: this.parentRef(r.pid, r.parentStartNs),
      user: this.user(r.uid),
      group: this.group(r.gid),
    };
    if (node.executable) process['executable'] = node.executable;
    if (node.args) {
      process['args'] = [...node.args];
      process['command_line'] = node.args.join(' ');
    }
    const missingList = missingPaths(r.missing);
    return {
      ...this.common('fork', 'event', ['process'], ['start'], r.ktimeNs),
      process,
      hades: { backend: this.backend, ...this.ancestry(node), ...(missingList.length ? { missing: missingList } : {}) },
    } as unknown as EventOf<'fork'>;
  }

  private exit(r: ExitRecord): EventOf<'exit'> {
    const startTicks = ProcessTree.ticksFromNs(r.startNs);
    const known = this.tree.get(r.pid);
    const node = known && known.startTicks === startTicks ? known : undefined;
    const process: Record<string, unknown> = {
      pid: r.pid,
      entity_id: node?.entityId ?? this.tree.entityId(r.pid, startTicks),
      name: r.comm,
      exit_code: exitCodeOf(r.exitCode),
      end: isoFromNs(this.bootTimeNs + r.ktimeNs),
    };
    if (r.startNs) process['start'] = isoFromNs(this.bootTimeNs + r.startNs);
    if (node?.executable) process['executable'] = node.executable;
    if (node?.args) process['args'] = [...node.args];
    if (r.ppid) process['parent'] = { pid: r.ppid, ...(this.tree.get(r.ppid) ? { entity_id: this.tree.get(r.ppid)?.entityId } : {}) };
    const lineage = node ? this.ancestry(node) : {};
    this.tree.exit(r.pid);
    return {
      ...this.common('exit', 'event', ['process'], ['end'], r.ktimeNs),
      process,
      hades: { backend: this.backend, ...lineage },
    } as unknown as EventOf<'exit'>;
  }
}
