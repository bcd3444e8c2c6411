/**
 * ECS events from the driver's security records: connect, accept, listen, dns_query, ptrace,
 * memfd_create, module_load, privilege_change, file_* (file_open: sensitive files), process_rename, and tamper
 * (signals to Hades' own processes and to audit and security daemons, changes to Hades' files).
 * The acting process and its ancestry come from the process tree (via EventBuilder.actor), so
 * these events carry the same context as exec events.
 */
import path from 'node:path';
import type { HadesEvent } from '../common/events/index.js';
import { capabilityNames, commandLineOf, type EventBuilder } from './builder.js';
import { parseDns } from './dns.js';
import type { DnsRecord, FileRecord, FileTimesRecord, KillRecord, MemfdRecord, ModuleRecord, PrivilegeRecord, PtraceRecord, RenameRecord, SecurityRecord, SocketRecord } from './driver/security-records.js';
import { SecurityFlag, SecurityMissing, TimesGiven } from './driver/security-records.js';
import { AF_INET, AF_INET6, AF_UNIX, IPPROTO_TCP, IPPROTO_UDP, formatIp } from './net.js';
import type { DaemonProcess } from './security-daemons.js';

const ERRNO: Readonly<Record<number, string>> = {
  1: 'EPERM', 2: 'ENOENT', 3: 'ESRCH', 4: 'EINTR', 5: 'EIO', 9: 'EBADF', 11: 'EAGAIN', 12: 'ENOMEM', 13: 'EACCES', 14: 'EFAULT',
  16: 'EBUSY', 17: 'EEXIST', 20: 'ENOTDIR', 21: 'EISDIR', 22: 'EINVAL', 24: 'EMFILE', 28: 'ENOSPC', 30: 'EROFS', 38: 'ENOSYS',
  39: 'ENOTEMPTY', 95: 'EOPNOTSUPP', 97: 'EAFNOSUPPORT', 98: 'EADDRINUSE', 99: 'EADDRNOTAVAIL', 101: 'ENETUNREACH',
  104: 'ECONNRESET', 110: 'ETIMEDOUT', 111: 'ECONNREFUSED', 113: 'EHOSTUNREACH', 114: 'EALREADY', 115: 'EINPROGRESS',
};

export const errnoName = (result: number): string | undefined => (result < 0 ? (ERRNO[-result] ?? `E${-result}`) : undefined);

/**
 * The driver's syscall ids, by name: `enum hades_sc` of driver/src/wire.h (HADES_SC_OPENAT is
 * `Syscall.openat`), the same on every architecture. Code names calls by these constants, never
 * by number; a unit test holds this table equal to the enum.
 */
export const Syscall = {
  connect: 1, accept: 2, accept4: 3, listen: 4, sendto: 5, sendmsg: 6, sendmmsg: 7, write: 8, writev: 9, recvfrom: 10,
  recvmsg: 11, setuid: 12, setgid: 13, setreuid: 14, setregid: 15, setresuid: 16, setresgid: 17, setfsuid: 18,
  setfsgid: 19, capset: 20, ptrace: 21, memfd_create: 22, init_module: 23, finit_module: 24, open: 25, openat: 26,
  openat2: 27, creat: 28, mkdir: 29, mkdirat: 30, rename: 31, renameat: 32, renameat2: 33, unlink: 34,
  unlinkat: 35, rmdir: 36, chmod: 37, fchmod: 38, fchmodat: 39, fchmodat2: 40, kill: 41, tkill: 42, tgkill: 43,
  pidfd_send_signal: 44, open_by_handle_at: 45, link: 46, linkat: 47, symlink: 48, symlinkat: 49, truncate: 50,
  ftruncate: 51, process_vm_writev: 52, utime: 53, utimes: 54, futimesat: 55, utimensat: 56,
} as const;

const SYSCALL_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(Syscall).map(([name, id]) => [id, name]));

export const syscallName = (id: number): string => SYSCALL_NAMES.get(id) ?? `syscall_${id}`;

const PTRACE_REQUESTS: Readonly<Record<number, string>> = {
  0: 'traceme', 4: 'poketext', 5: 'pokedata', 6: 'pokeuser', 13: 'setregs', 15: 'setfpregs', 16: 'attach', 0x4205: 'setregset', 0x4206: 'seize',
  // not ptrace(2): the driver's codes for the other ways to write into a process
  0x10000: 'process_vm_writev', 0x10001: 'proc_mem_write',
};

const MFD_FLAGS: readonly [number, string][] = [
  [1, 'MFD_CLOEXEC'],
  [2, 'MFD_ALLOW_SEALING'],
  [4, 'MFD_HUGETLB'],
  [8, 'MFD_NOEXEC_SEAL'],
  [16, 'MFD_EXEC'],
];

/** A modification time set this long before the call makes a file look older than it is. */
const BACKDATED_MS = 24 * 60 * 60 * 1000;

/** Seconds since the epoch as a date of years 1 to 9999 (the schema's form), else undefined. */
function isoSeconds(seconds: number | undefined): string | undefined {
  if (seconds === undefined || !Number.isSafeInteger(seconds)) return undefined;
  const ms = seconds * 1000;
  return ms >= -62135596800000 && ms <= 253402300799000 ? new Date(ms).toISOString() : undefined;
}

/** linkat(2): the old name is the file descriptor's file (""), or a link to follow (/proc/self/fd/N). */
const AT_EMPTY_PATH = 0x1000;
const AT_SYMLINK_FOLLOW = 0x400;
const FD_PATH = /^\/(proc\/(self|thread-self|[0-9]+)\/fd|dev\/fd)\/[0-9]+$/;
/** open(2): truncate an existing file to length 0; ignored with O_PATH. */
const O_TRUNC = 0o1000;
const O_CREAT = 0o100;
/** The calls that open a file without always creating or emptying it (creat always does). */
export const OPEN_CALLS: ReadonlySet<number> = new Set([Syscall.open, Syscall.openat, Syscall.openat2, Syscall.open_by_handle_at]);
const O_PATH = 0o10000000;
const outcome = (result: number): 'success' | 'failure' => (result < 0 ? 'failure' : 'success');
const octal = (mode: number): string => `0${(mode & 0o7777).toString(8).padStart(3, '0')}`;

function networkOf(family: number, protocol: number, sockType: number) {
  const transport = family === AF_UNIX ? 'unix' : protocol === IPPROTO_TCP || sockType === 1 ? 'tcp' : protocol === IPPROTO_UDP || sockType === 2 ? 'udp' : 'other';
  const type = family === AF_INET ? 'ipv4' : family === AF_INET6 ? 'ipv6' : family === AF_UNIX ? 'unix' : undefined;
  return { transport, type } as const;
}

function endpoint(family: number, addr: Uint8Array, port: number) {
  return { ip: formatIp(family, addr), port };
}

export interface SecurityOptions {
  /** Paths whose change by anyone is reported as tampering (Hades' own files). */
  readonly protectedPaths: readonly string[];
  /** file_open: the driver.sensitive_files path a file (device, inode) was registered under. */
  readonly sensitiveOf?: (dev: number, ino: number, opened: string) => string | undefined;
  /** The Hades process that started this one and stops it (`hades start`), when there is one. */
  readonly supervisorPid?: number;
  /**
   * The driver's FILE_PREFIX list (driver.file_watch and protectedPaths). The driver reports a
   * path argument with a "//", "." or ".." component wherever it points; its lexical normal form
   * is compared with these here. Without them, every such record is kept.
   */
  readonly watchedPaths?: readonly string[];
  /**
   * Whom a signal to this pid reached: one of Hades' own processes, an audit or security daemon
   * (security-daemons.ts), or neither (a pid the driver still watched while it was reused: the
   * record is dropped and counted in staleSignals). Without it, every signal reached Hades.
   */
  readonly signalTarget?: (pid: number) => 'own' | DaemonProcess | undefined;
}

/** A path argument with an empty, "." or ".." component: the driver's prefix match reads it as text. */
const ODD_PATH = /\/\/|\/\.\.?(\/|$)/;

/** A path argument (not an opened file's own path) in its lexical normal form when it is spelled oddly. */
const normalArgument = (p: string, fromArgument: boolean) => (fromArgument && p.startsWith('/') && ODD_PATH.test(p) ? path.posix.normalize(p) : p);

/** Is `p` below a FILE_PREFIX entry, as the driver matches them (one `*` component: P*S)? */
export function pathWatched(p: string, prefixes: readonly string[]): boolean {
  return prefixes.some((prefix) => {
    const star = prefix.indexOf('*');
    if (star < 0) return p.startsWith(prefix);
    if (!p.startsWith(prefix.slice(0, star))) return false;
    const slash = p.indexOf('/', star);
    if (slash <= star) return false;
    const rest = p.slice(slash);
    const suffix = prefix.slice(star + 1);
    // the folder itself too: "/home/u/.ssh" for "/home/*/.ssh/"
    return rest.startsWith(suffix) || (suffix.endsWith('/') && `${rest}/` === suffix);
  });
}

/** Builds the events of one security record; most records give one event, some none or two. */
export class SecurityEvents {
  /** DNS payloads that could not be parsed, by reason. */
  readonly malformedDns = new Map<string, number>();
  /** Kill records whose target was neither Hades nor a security daemon any more (signalTarget). */
  staleSignals = 0;

  constructor(
    private readonly builder: EventBuilder,
    private readonly options: SecurityOptions,
  ) {}

  build(r: SecurityRecord): HadesEvent[] {
    switch (r.type) {
      case 'connect':
      case 'accept':
      case 'listen':
        return [this.socket(r)];
      case 'dns':
        return [this.dns(r)];
      case 'ptrace':
        return [this.ptrace(r)];
      case 'memfd_create':
        return [this.memfd(r)];
      case 'module_load':
        return [this.module(r)];
      case 'privilege_change':
        return [this.privilege(r)];
      case 'file_create':
      case 'file_rename':
      case 'file_delete':
      case 'file_chmod':
        return this.file(r);
      case 'file_open':
        return [this.open(r)];
      case 'file_times':
        return this.times(r);
      case 'kill':
        return this.kill(r);
      case 'process_rename':
        return [this.rename(r)];
    }
  }

  private event(r: SecurityRecord, action: string, category: string[], type: string[], extra: Record<string, unknown>, hades: Record<string, unknown> = {}): HadesEvent {
    const actor = this.builder.actor(r);
    const event = this.builder.common(action, 'event', category, type, r.ktimeNs) as Record<string, unknown>;
    const meta = event['event'] as Record<string, unknown>;
    meta['outcome'] = extra['outcome'];
    meta['count'] = extra['count'];
    event['process'] = actor.process;
    event['container'] = actor.container;
    for (const [key, value] of Object.entries(extra)) if (key !== 'outcome' && key !== 'count') event[key] = value;
    event['hades'] = { ...actor.hades, ...hades, ...((r.flags & SecurityFlag.ia32) !== 0 ? { compat_syscall: true } : {}) };
    return event as unknown as HadesEvent;
  }

  private socket(r: SocketRecord): HadesEvent {
    const net = networkOf(r.family, r.protocol, r.sockType);
    const local = r.family === AF_UNIX ? undefined : endpoint(r.family, r.localAddr, r.localPort);
    const remote = r.family === AF_UNIX ? { address: r.path } : endpoint(r.family, r.remoteAddr, r.remotePort);
    // origin 4: a TCP connection opened without connect(2) (sendto with MSG_FASTOPEN, io_uring),
    // seen when its SYN left: no call to name, no fd
    const pending = r.type === 'connect' && r.result === -115 && (r.origin === 1 || r.origin === 4);
    const socket = {
      fd: r.fd === 0xffffffff ? undefined : r.fd,
      connect_call: r.origin === 4 ? false : undefined,
      errno: pending ? undefined : errnoName(r.result),
      state: r.origin === 2 ? 'established' : r.origin === 3 ? 'failed' : pending ? 'pending' : undefined,
      backlog: r.type === 'listen' ? r.backlog : undefined,
    };
    const common = { outcome: pending ? 'unknown' : outcome(r.result), count: r.repeatCount > 0 ? r.repeatCount + 1 : undefined };
    if (r.type === 'connect') {
      return this.event(r, 'connect', ['network'], ['connection', 'start'], { ...common, source: local, destination: remote, network: { ...net, direction: 'egress' } }, { socket });
    }
    if (r.type === 'accept') {
      return this.event(r, 'accept', ['network'], ['connection', 'start'], { ...common, source: remote, destination: local, network: { ...net, direction: 'ingress' } }, { socket });
    }
    return this.event(r, 'listen', ['network'], ['start'], { outcome: outcome(r.result), source: local, network: net }, { socket });
  }

  private dns(r: DnsRecord): HadesEvent {
    const transport = r.protocol === IPPROTO_TCP ? 'tcp' : 'udp';
    const parsed = (r.missing & SecurityMissing.payload) === 0 ? parseDns(r.payload, transport) : { ok: false as const, reason: 'unreadable' };
    const resolver = endpoint(r.family, r.remoteAddr, r.remotePort);
    const network = { transport, type: r.family === AF_INET6 ? 'ipv6' : 'ipv4', protocol: 'dns', direction: 'egress' };
    const answer = r.direction === 2;
    let dns: Record<string, unknown>;
    let detail: Record<string, unknown> | undefined;
    if (parsed.ok) {
      const m = parsed.message;
      const resolved = m.answers.filter((a) => a.type === 'A' || a.type === 'AAAA').map((a) => a.data);
      dns = {
        id: m.id,
        type: answer ? 'answer' : 'query',
        question: m.questions[0],
        response_code: m.response ? m.rcode : undefined,
        answers: answer && m.answers.length > 0 ? m.answers : undefined,
        resolved_ip: resolved.length > 0 ? resolved : undefined,
      };
      if (m.malformed) this.malformedDns.set(m.malformed, (this.malformedDns.get(m.malformed) ?? 0) + 1);
      if (m.questions.length > 1 || m.truncated || m.malformed || (r.flags & SecurityFlag.payloadTruncated) !== 0) {
        detail = { questions: m.questions.length, truncated: m.truncated || (r.flags & SecurityFlag.payloadTruncated) !== 0, malformed: m.malformed };
      }
    } else {
      this.malformedDns.set(parsed.reason, (this.malformedDns.get(parsed.reason) ?? 0) + 1);
      dns = { type: answer ? 'answer' : 'query' };
      detail = { malformed: parsed.reason };
    }
    if (detail) detail['bytes'] = r.payloadOrigLen;
    return this.event(r, 'dns_query', ['network'], ['protocol', 'info'], { destination: resolver, network, dns }, { dns: detail });
  }

  private ptrace(r: PtraceRecord): HadesEvent {
    const resolved = (r.missing & SecurityMissing.target) === 0 && r.targetTgid !== 0;
    const target = this.builder.processRef(resolved ? r.targetTgid : r.targetPid, resolved ? r.targetStartNs : 0, resolved ? r.targetComm : undefined);
    return this.event(r, 'ptrace', ['process'], ['access'], { outcome: outcome(r.result) }, {
      ptrace: { request: PTRACE_REQUESTS[r.request] ?? `request_${r.request}`, request_code: r.request, target, errno: errnoName(r.result) },
    });
  }

  private memfd(r: MemfdRecord): HadesEvent {
    return this.event(r, 'memfd_create', ['file'], ['creation'], { outcome: outcome(r.result), file: { name: r.name } }, {
      memfd: { flags: r.memfdFlags, flag_names: MFD_FLAGS.filter(([bit]) => (r.memfdFlags & bit) !== 0).map(([, name]) => name), fd: r.result >= 0 ? r.result : undefined },
    });
  }

  private module(r: ModuleRecord): HadesEvent {
    const fromPath = r.path ? path.basename(r.path).replace(/\.ko(\.[a-z]+)?$/, '') : '';
    return this.event(r, 'module_load', ['driver'], ['start'], { outcome: outcome(r.result) }, {
      module: { name: r.name || fromPath || 'unknown', path: r.path || undefined, syscall: r.syscall ? syscallName(r.syscall) : undefined, errno: errnoName(r.result) },
    });
  }

  private privilege(r: PrivilegeRecord): HadesEvent {
    const creds = (ids: readonly number[], caps: readonly [number, number]) => ({
      uid: ids[0] ?? 0,
      gid: ids[1] ?? 0,
      euid: ids[2] ?? 0,
      egid: ids[3] ?? 0,
      suid: ids[4],
      sgid: ids[5],
      fsuid: ids[6],
      fsgid: ids[7],
      capabilities: capabilityNames(caps),
    });
    return this.event(r, 'privilege_change', ['process'], ['change'], { outcome: outcome(r.result) }, {
      privilege: { call: syscallName(r.syscall), before: creds(r.oldIds, r.oldCapEffective), after: creds(r.newIds, r.newCapEffective), errno: errnoName(r.result) },
    });
  }

  private file(r: FileRecord): HadesEvent[] {
    const rename = r.type === 'file_rename';
    // truncate(2) takes a path the kernel does not resolve (`/var//log/x`, `/tmp/../var/log/x`):
    // rules compare its lexical normal form; the argument stays in hades.file.argument.
    const truncateArg = r.syscall === Syscall.truncate && r.path.startsWith('/') ? r.path : undefined;
    // The other calls' path arguments (not an opened file's own path): `/usr/lib//systemd/system/x`
    // and `/root/../etc/cron.d/x` reach the driver's prefixes only in their lexical normal form.
    const fromArgument = (r.flags & SecurityFlag.pathFromFd) === 0;
    const symbolic = (r.flags & SecurityFlag.linkSymbolic) !== 0;
    const normal = (p: string) => normalArgument(p, fromArgument);
    const newPath = normal(r.path);
    const otherPath = symbolic ? r.path2 : normal(r.path2);
    // A symbolic link's absolute target is reported by the driver for its odd spelling too (it is
    // kept as written in hades.file.link.target, so otherPath does not show it).
    const oddTarget = symbolic && r.path2.startsWith('/') && ODD_PATH.test(r.path2);
    // (A truncate that succeeded is the driver's to report wherever it points; one that failed is
    // reported for its odd spelling like the other calls.)
    // A setuid bit given is reported by the driver wherever the file is, whatever its spelling.
    const setuidGiven = (r.type === 'file_chmod' || (r.type === 'file_create' && (r.opFlags & O_CREAT) !== 0)) && (r.mode & 0o4000) !== 0;
    if (this.options.watchedPaths && !setuidGiven && (truncateArg === undefined || r.result < 0) && (newPath !== r.path || otherPath !== r.path2 || oddTarget)) {
      // Reported by the driver for its odd spelling: kept when a spelling is watched.
      const watched = this.options.watchedPaths;
      const candidates = [r.path, newPath, ...(r.path2 !== '' && (!symbolic || r.path2.startsWith('/')) ? [r.path2, symbolic ? path.posix.normalize(r.path2) : otherPath] : [])];
      if (!candidates.some((p) => pathWatched(p, watched))) return [];
    }
    const argument = truncateArg ?? (rename ? (otherPath !== r.path2 ? r.path2 : undefined) : newPath !== r.path ? r.path : undefined);
    const target = rename ? otherPath : truncateArg ? path.posix.normalize(truncateArg) : newPath;
    const modeKnown = (r.missing & SecurityMissing.mode) === 0;
    const newMode = r.type === 'file_chmod' ? r.mode : modeKnown ? r.fileMode : r.mode;
    const executable = (r.flags & SecurityFlag.modeExec) !== 0;
    const link = (r.flags & SecurityFlag.linkHard) !== 0 ? 'hard' : (r.flags & SecurityFlag.linkSymbolic) !== 0 ? 'symbolic' : undefined;
    const truncation = r.syscall === Syscall.truncate || r.syscall === Syscall.ftruncate;
    const setuid = (r.flags & (SecurityFlag.modeSetuid | SecurityFlag.modeSetgid)) !== 0;
    const file = {
      path: target,
      name: path.basename(target),
      directory: path.dirname(target),
      inode: r.inode || undefined,
      mode: r.type === 'file_delete' || r.type === 'file_rename' || link !== undefined || (truncation && !modeKnown) ? undefined : octal(newMode),
      type: r.syscall === Syscall.mkdir || r.syscall === Syscall.mkdirat || (r.type === 'file_delete' && (r.opFlags & 0x200) !== 0) ? 'dir' : undefined,
    };
    const hadesFile: Record<string, unknown> = {
      syscall: syscallName(r.syscall),
      errno: errnoName(r.result),
      old_path: rename ? newPath : undefined,
      argument: argument !== undefined && argument !== target ? argument : undefined,
    };
    if (r.type === 'file_create' && link) {
      // A new name for a file (hard) or a pointer to a path (symbolic): no mode of its own here.
      hadesFile['created'] = (r.flags & SecurityFlag.fileCreated) !== 0;
      // The target lexically resolved (`ln -rs` writes ../../tmp/x), for rules to compare.
      const resolved = path.posix.resolve(path.posix.dirname(target), r.path2);
      // A name given to an open file (an O_TMPFILE one has no other): path2 is the descriptor's
      // name then (`#<inode>` for an O_TMPFILE file) or the /proc path that was followed.
      const fromFd = link === 'hard' && (((r.opFlags & AT_EMPTY_PATH) !== 0 && r.syscall === Syscall.linkat) || ((r.opFlags & AT_SYMLINK_FOLLOW) !== 0 && FD_PATH.test(r.path2)));
      hadesFile['link'] = { type: link, target: r.path2, resolved: r.path2 === '' ? undefined : resolved, from_fd: fromFd || undefined };
    } else if (r.type === 'file_create' && truncation) {
      // truncate(2) / ftruncate(2) to length 0 (the only ones the driver reports): emptied.
      hadesFile['created'] = false;
      if (r.result >= 0) hadesFile['truncated'] = true;
    } else if (r.type === 'file_create') {
      hadesFile['executable'] = executable;
      // Created with the setuid or setgid bit (os.open(path, O_CREAT, 0o4755)).
      if (setuid) hadesFile['setuid'] = true;
      const created = (r.flags & SecurityFlag.fileCreated) !== 0;
      hadesFile['created'] = created;
      // O_TRUNC on a file that existed: the open emptied it (a log wiped with `> file`).
      if (!created && r.result >= 0 && (r.opFlags & O_TRUNC) !== 0 && (r.opFlags & O_PATH) === 0) hadesFile['truncated'] = true;
      // Neither O_CREAT nor O_TRUNC: an existing file opened for writing (the driver sends only
      // those that succeeded, on regular files): written in place by write, pwrite, mmap, splice...
      if (OPEN_CALLS.has(r.syscall) && (r.opFlags & (O_CREAT | O_TRUNC)) === 0 && r.result >= 0) hadesFile['written'] = true;
    }
    if (r.type === 'file_chmod') {
      const oldMode = modeKnown ? r.fileMode : undefined;
      hadesFile['old_mode'] = oldMode === undefined ? undefined : octal(oldMode);
      // Without the old mode (path-based chmod) it cannot be told whether the bit is new.
      hadesFile['made_executable'] = oldMode === undefined ? undefined : executable && (oldMode & 0o111) === 0;
      hadesFile['setuid'] = setuid;
    }
    const written = hadesFile['written'] === true;
    const type = r.type === 'file_create' ? ['creation'] : r.type === 'file_delete' ? ['deletion'] : ['change'];
    const events = [this.event(r, r.type, ['file'], type, { outcome: outcome(r.result), file }, { file: hadesFile })];
    // A hard link to one of Hades' files is a second name outside the watch: tampering too.
    const hardLinked = link === 'hard' ? [otherPath] : [];
    const touched = [target, ...(rename ? [newPath] : []), ...hardLinked];
    const protectedPath = touched.find((p) => this.options.protectedPaths.some((prefix) => p === prefix || p.startsWith(prefix.endsWith('/') ? prefix : `${prefix}/`)));
    // Created files are not tampering; a second name for one of Hades' files, or emptying one, is.
    const emptiedOwn = hadesFile['truncated'] === true;
    if (protectedPath && r.result >= 0 && (r.type !== 'file_create' || link === 'hard' || emptiedOwn || written)) {
      events.push(this.event(r, 'tamper', ['intrusion_detection'], ['info'], {}, { tamper: { target: 'file', path: protectedPath, operation: link === 'hard' ? 'link' : emptiedOwn ? 'truncate' : written ? 'write' : r.type } }));
    }
    return events;
  }

  /** A file's times set to a given time: the times as set, and whether the file was made to look older. */
  private times(r: FileTimesRecord): HadesEvent[] {
    // A path argument in its lexical normal form, as for the other file calls; reported by the
    // driver for an odd spelling, it is kept when one of its spellings is watched.
    const target = normalArgument(r.path, (r.flags & SecurityFlag.pathFromFd) === 0);
    if (this.options.watchedPaths && target !== r.path && ![r.path, target].some((p) => pathWatched(p, this.options.watchedPaths!))) return [];
    // Seconds past 2^53 (a forged time) are not claimed exactly; backdating is still told.
    const mtime = (r.given & TimesGiven.mtime) !== 0 ? r.mtimeSec : undefined;
    const atime = (r.given & TimesGiven.atime) !== 0 ? r.atimeSec : undefined;
    const exact = (n: number | undefined) => (n !== undefined && Number.isSafeInteger(n) ? n : undefined);
    const event = this.event(r, 'file_times', ['file'], ['change'], {
      outcome: outcome(r.result),
      file: { path: target, name: path.basename(target), directory: path.dirname(target), inode: r.inode || undefined, mtime: isoSeconds(mtime), atime: isoSeconds(atime) },
    }, {
      file: {
        syscall: syscallName(r.syscall),
        errno: errnoName(r.result),
        argument: target !== r.path ? r.path : undefined,
        mtime_seconds: exact(mtime),
        atime_seconds: exact(atime),
      },
    });
    // Against the call's own time (the event's), not the clock of whoever reads it later.
    const at = Date.parse((event as unknown as { '@timestamp': string })['@timestamp']);
    if (mtime !== undefined) ((event as unknown as { hades: { file: Record<string, unknown> } }).hades.file)['backdated'] = mtime * 1000 < at - BACKDATED_MS;
    return [event];
  }

  private open(r: FileRecord): HadesEvent {
    const file = { path: r.path, name: path.basename(r.path), directory: path.dirname(r.path), inode: r.inode || undefined, mode: octal(r.fileMode) };
    const access = (r.opFlags & 3) === 0 ? 'read' : (r.opFlags & 3) === 1 ? 'write' : 'read_write';
    // A file freshly written in a temporary folder, opened by another process than its writer.
    if ((r.flags & SecurityFlag.openFresh) !== 0) {
      return this.event(r, 'file_open', ['file'], ['access'], { outcome: outcome(r.result), file }, { file: { syscall: syscallName(r.syscall), access, fresh: { age_ms: r.mode, writer_pid: r.writerPid } } });
    }
    // Registered since, and replaced before this record was read: the path opened is what is known.
    // A stale registration (the file replaced, its inode number given to a new file) is not it.
    const sensitive = this.options.sensitiveOf?.(r.dev, r.inode, r.path) ?? r.path;
    return this.event(r, 'file_open', ['file'], ['access'], { outcome: outcome(r.result), file }, { file: { syscall: syscallName(r.syscall), sensitive, access } });
  }

  /**
   * The process (its thread group leader) changed its name other than by exec: the event names it
   * as it now is (process.name), with the name it had before; the tree is updated first, so the
   * events after this one name it so too.
   */
  private rename(r: RenameRecord): HadesEvent {
    // cn_proc does not give the old name: the driver's last sight of it, else the tree's, else unknown (said so).
    const before = this.builder.renamed(r.pid, r.startNs, r.newComm);
    const oldName = r.oldComm || before || undefined;
    const event = this.event(r, 'process_rename', ['process'], ['change'], {}, {
      rename: { old_name: oldName, unreported: r.unreported > 0 ? r.unreported : undefined, catch_up: r.catchUp ? true : undefined },
      ...(oldName === undefined ? { missing: ['hades.rename.old_name'] } : {}),
    });
    (event as unknown as { process: { name?: string } }).process.name = r.newComm;
    return event;
  }

  private kill(r: KillRecord): HadesEvent[] {
    const broadcast = (r.flags & SecurityFlag.killBroadcast) !== 0;
    // The pid the driver looked up: tgkill's thread group, the others' pid (kill(-pgid): the group's).
    const reached = broadcast || !this.options.signalTarget ? 'own' : this.options.signalTarget(r.syscall === Syscall.tgkill ? r.targetTgid : Math.abs(r.targetPid));
    if (reached === undefined) {
      this.staleSignals++;
      return [];
    }
    if (reached !== 'own') {
      return [
        this.event(r, 'tamper', ['intrusion_detection'], ['info'], { outcome: outcome(r.result) }, {
          tamper: {
            target: 'security_daemon',
            signal: r.signal,
            target_pid: r.targetTgid > 0 ? r.targetTgid : undefined,
            target_process: { pid: reached.pid, entity_id: reached.entityId, name: reached.name, executable: reached.executable, args: reached.args, command_line: commandLineOf(reached.args) },
            operation: syscallName(r.syscall),
            group: (r.flags & SecurityFlag.killGroup) !== 0 || undefined,
          },
        }),
      ];
    }
    return [this.event(r, 'tamper', ['intrusion_detection'], ['info'], { outcome: outcome(r.result) }, {
      tamper: {
        target: 'process',
        signal: r.signal,
        // kill(-1) and kill(-pgid) name no single process: the flags say what was targeted.
        target_pid: r.targetTgid > 0 ? r.targetTgid : undefined,
        operation: syscallName(r.syscall),
        broadcast: (r.flags & SecurityFlag.killBroadcast) !== 0 || undefined,
        group: (r.flags & SecurityFlag.killGroup) !== 0 || undefined,
        // `hades start` stopping its agent: its parent, itself a protected Hades process (so
        // that signalling it to stop the agent is tampering too).
        by_parent: (this.options.supervisorPid !== undefined && r.pid === this.options.supervisorPid) || undefined,
      },
    })];
  }
}
