/**
 * What several host tables read from /proc: the process list, /proc/PID/stat, the socket inodes
 * of every process's open files, and the kernel's socket tables (/proc/net/*), read once per
 * network namespace so that sockets of containers are seen too. The parsers are pure and take
 * the file's text, so tests feed them odd input directly.
 */
import { readdirSync } from 'node:fs';
import type { CollectContext } from '../table.js';
import { errnoOf, int, listFolder, readLink, readProcText, Warn } from './host-read.js';
import { formatIpv6 } from '../../net.js';

/** USER_HZ: clock ticks per second in /proc/PID/stat (100 on every Linux architecture Hades runs on). */
export const CLOCK_TICKS = 100;

export function pids(ctx: CollectContext): number[] {
  const names = listFolder(ctx, ctx.proc, '/proc') ?? [];
  const out: number[] = [];
  for (const name of names) if (/^\d+$/.test(name)) out.push(Number(name));
  return out.sort((a, b) => a - b);
}

export interface ProcStat {
  readonly pid: number;
  readonly name: string;
  readonly state: string;
  readonly ppid: number;
  readonly pgid: number;
  readonly session: number;
  readonly ttyNr: number;
  readonly utimeTicks: number;
  readonly stimeTicks: number;
  readonly nice: number;
  readonly threads: number;
  readonly startTicks: number;
  readonly rssPages: number;
}

/** Parses /proc/PID/stat; the name may hold spaces and parentheses, so it ends at the last ')'. */
export function parseStat(text: string): ProcStat | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 1 || close < open) return undefined;
  const pid = int(text.slice(0, open));
  const f = text.slice(close + 2).trim().split(' ');
  if (pid === undefined || f.length < 22) return undefined;
  const n = (i: number) => int(f[i]);
  const values = [n(1), n(2), n(3), n(4), n(11), n(12), n(16), n(17), n(19), n(21)];
  if (values.some((v) => v === undefined) || !/^[A-Za-z]$/.test(f[0] ?? '')) return undefined;
  const [ppid, pgid, session, ttyNr, utime, stime, nice, threads, start, rss] = values as number[];
  return { pid, name: text.slice(open + 1, close), state: f[0]!, ppid: ppid!, pgid: pgid!, session: session!, ttyNr: ttyNr!, utimeTicks: utime!, stimeTicks: stime!, nice: nice!, threads: threads!, startTicks: start!, rssPages: rss! };
}

/** Boot time (unix seconds) from /proc/stat, once per query. */
export function bootTime(ctx: CollectContext): number | undefined {
  const load = () => {
    const match = /^btime (\d+)$/m.exec(readProcText(ctx, 'stat') ?? '');
    return match ? Number(match[1]) : undefined;
  };
  return ctx.memo ? ctx.memo('boot_time', load) : load();
}

/** The inode in a namespace or socket link such as `net:[4026531840]` or `socket:[1234]`. */
export function linkInode(link: string | undefined, kind: string): number | undefined {
  if (!link?.startsWith(`${kind}:[`) || !link.endsWith(']')) return undefined;
  return int(link.slice(kind.length + 2, -1));
}

export interface SocketOwner {
  readonly pid: number;
  readonly fd: number;
}

export interface ProcessSockets {
  /** Socket inode to the processes (and descriptors) that hold it. */
  readonly owners: ReadonlyMap<number, SocketOwner[]>;
  /** Every socket descriptor, in process order. */
  readonly descriptors: readonly (SocketOwner & { readonly inode: number })[];
  /**
   * Each network namespace seen, to where its socket tables are read: `PID/net` of a process in it,
   * or `PID/task/TID/net` of a thread in it (a thread may unshare or enter a namespace on its own).
   */
  readonly namespaces: ReadonlyMap<number, string>;
  /** Network namespace of each process whose link could be read. */
  readonly namespaceOf: ReadonlyMap<number, number>;
}

/** Walks /proc/PID/fd of every process once per query: which process holds which socket. */
export function processSockets(ctx: CollectContext): ProcessSockets {
  const load = (): ProcessSockets => {
    const owners = new Map<number, SocketOwner[]>();
    const descriptors: (SocketOwner & { inode: number })[] = [];
    const namespaces = new Map<number, string>();
    const namespaceOf = new Map<number, number>();
    let denied = 0;
    for (const pid of pids(ctx)) {
      // Plain concatenation: path.join costs more than the system call in a loop this hot.
      const base = `${ctx.proc}/${pid}`;
      let fds: string[];
      try {
        fds = readdirSync(`${base}/fd`);
      } catch (error) {
        // Gone meanwhile is normal; not allowed (not root) is worth one warning for all.
        const code = errnoOf(error);
        if (code === 'EACCES' || code === 'EPERM') denied++;
        continue;
      }
      let sockets = 0;
      for (const name of fds) {
        const inode = linkInode(readLink(`${base}/fd/${name}`), 'socket');
        if (inode === undefined) continue;
        sockets++;
        const fd = Number(name);
        const owner = { pid, fd };
        descriptors.push({ ...owner, inode });
        const list = owners.get(inode);
        if (list) list.push(owner);
        else owners.set(inode, [owner]);
      }
      // The namespace matters only for processes that hold a socket.
      if (sockets === 0) continue;
      const ns = linkInode(readLink(`${base}/ns/net`), 'net');
      if (ns !== undefined) {
        namespaceOf.set(pid, ns);
        if (!namespaces.has(ns)) namespaces.set(ns, `${pid}/net`);
      }
      // Threads share the descriptors but not always the namespace: a socket a thread made in a
      // namespace of its own is listed only in that namespace's tables.
      let tasks: string[] = [];
      try {
        tasks = readdirSync(`${base}/task`);
      } catch {
        // gone meanwhile
      }
      for (const tid of tasks) {
        if (tid === String(pid)) continue;
        const threadNs = linkInode(readLink(`${base}/task/${tid}/ns/net`), 'net');
        if (threadNs !== undefined && !namespaces.has(threadNs)) namespaces.set(threadNs, `${pid}/task/${tid}/net`);
      }
    }
    if (denied > 0) ctx.warn(Warn.unreadable, `the open files of ${denied} process(es) could not be read (run as root to see every socket's process)`, '/proc');
    return { owners, descriptors, namespaces, namespaceOf };
  };
  return ctx.memo ? ctx.memo('process_sockets', load) : load();
}

export type SocketFamily = 'ipv4' | 'ipv6' | 'unix' | 'packet' | 'netlink';

export interface KernelSocket {
  readonly inode: number;
  readonly family: SocketFamily;
  /** tcp, udp, udplite, raw; stream, dgram, seqpacket (unix, packet); the netlink protocol. */
  readonly protocol: string;
  readonly localAddress?: string;
  readonly localPort?: number;
  readonly remoteAddress?: string;
  readonly remotePort?: number;
  /** LISTEN, ESTABLISHED, ... for tcp; UNCONNECTED or ESTABLISHED for udp and raw; for unix LISTEN, CONNECTED, UNCONNECTED, ... */
  readonly state?: string;
  readonly path?: string;
  readonly uid?: number;
  readonly namespace?: number;
}

const TCP_STATES: Readonly<Record<string, string>> = {
  '01': 'ESTABLISHED',
  '02': 'SYN_SENT',
  '03': 'SYN_RECV',
  '04': 'FIN_WAIT1',
  '05': 'FIN_WAIT2',
  '06': 'TIME_WAIT',
  '07': 'CLOSE',
  '08': 'CLOSE_WAIT',
  '09': 'LAST_ACK',
  '0A': 'LISTEN',
  '0B': 'CLOSING',
  '0C': 'NEW_SYN_RECV',
};

/** `0100007F` (a 32-bit word in host order, little-endian here) -> 127.0.0.1. */
function ipv4(hex: string): string | undefined {
  if (!/^[0-9A-Fa-f]{8}$/.test(hex)) return undefined;
  const n = Number.parseInt(hex, 16);
  return `${n & 0xff}.${(n >>> 8) & 0xff}.${(n >>> 16) & 0xff}.${n >>> 24}`;
}

/** The agent's own formatting of addresses (RFC 5952), shared with the kernel events. */
export { formatIpv6 };

/** 32 hex digits, four 32-bit words each in host (little-endian) order, as /proc/net/tcp6 writes them. */
function ipv6(hex: string): string | undefined {
  if (!/^[0-9A-Fa-f]{32}$/.test(hex)) return undefined;
  const bytes = new Uint8Array(16);
  for (let word = 0; word < 4; word++) {
    for (let b = 0; b < 4; b++) bytes[word * 4 + b] = Number.parseInt(hex.slice(word * 8 + (3 - b) * 2, word * 8 + (3 - b) * 2 + 2), 16);
  }
  return formatIpv6(bytes);
}

function endpoint(text: string | undefined, family: 'ipv4' | 'ipv6'): [string, number] | undefined {
  const colon = text?.lastIndexOf(':') ?? -1;
  if (!text || colon < 0) return undefined;
  const address = family === 'ipv4' ? ipv4(text.slice(0, colon)) : ipv6(text.slice(0, colon));
  const portHex = text.slice(colon + 1);
  if (!address || !/^[0-9A-Fa-f]{1,4}$/.test(portHex)) return undefined;
  return [address, Number.parseInt(portHex, 16)];
}

export interface ParseProblems {
  malformed: number;
}

/** /proc/net/{tcp,tcp6,udp,udp6,udplite,udplite6,raw,raw6}. */
export function parseInetTable(text: string, protocol: string, family: 'ipv4' | 'ipv6', problems: ParseProblems): KernelSocket[] {
  const out: KernelSocket[] = [];
  const lines = text.split('\n');
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const f = line.split(/\s+/);
    const local = endpoint(f[1], family);
    const remote = endpoint(f[2], family);
    const inode = int(f[9]);
    const uid = int(f[7]);
    if (!local || !remote || inode === undefined || !f[3]) {
      problems.malformed++;
      continue;
    }
    let state: string;
    if (protocol === 'tcp') state = TCP_STATES[f[3].toUpperCase()] ?? `UNKNOWN_${f[3]}`;
    else state = f[3] === '01' ? 'ESTABLISHED' : 'UNCONNECTED';
    out.push({ inode, family, protocol, localAddress: local[0], localPort: local[1], remoteAddress: remote[0], remotePort: remote[1], state, ...(uid !== undefined ? { uid } : {}) });
  }
  return out;
}

const UNIX_TYPES: Readonly<Record<string, string>> = { '0001': 'stream', '0002': 'dgram', '0005': 'seqpacket' };
const UNIX_STATES: Readonly<Record<string, string>> = { '01': 'UNCONNECTED', '02': 'CONNECTING', '03': 'CONNECTED', '04': 'DISCONNECTING' };
/** __SO_ACCEPTCON: the socket listens. */
const ACCEPTCON = 0x10000;

/** The start of a row of /proc/net/unix: the socket's kernel address (zeros when hidden). */
const UNIX_ROW = /^[0-9A-Fa-f]+: /;

/** /proc/net/unix: `Num RefCount Protocol Flags Type St Inode [Path]`. */
export function parseUnixTable(text: string, problems: ParseProblems): KernelSocket[] {
  const out: KernelSocket[] = [];
  // The kernel prints a path byte for byte: a newline in it continues the row on the next line.
  const lines: string[] = [];
  for (const line of text.replace(/\n$/, '').split('\n').slice(1)) {
    if (UNIX_ROW.test(line) || lines.length === 0) lines.push(line);
    else lines[lines.length - 1] += `\n${line}`;
  }
  for (const line of lines) {
    if (line.trim() === '') continue;
    const f = line.trim().split(/\s+/);
    const inode = int(f[6]);
    const flags = /^[0-9A-Fa-f]+$/.test(f[3] ?? '') ? Number.parseInt(f[3]!, 16) : undefined;
    if (inode === undefined || flags === undefined || !f[4] || !f[5]) {
      problems.malformed++;
      continue;
    }
    // The path is the rest of the line after the inode: it may hold spaces. '@' starts an abstract name.
    const pathMatch = /^\S+\s+\S+\s+\S+\s+\S+\s+\S+\s+\S+\s+\S+ (.*)$/s.exec(line.trimStart());
    const socketPath = pathMatch?.[1];
    const state = flags & ACCEPTCON ? 'LISTEN' : (UNIX_STATES[f[5]] ?? `UNKNOWN_${f[5]}`);
    out.push({ inode, family: 'unix', protocol: UNIX_TYPES[f[4]] ?? `type_${f[4]}`, state, ...(socketPath ? { path: socketPath } : {}) });
  }
  return out;
}

/** /proc/net/packet: `sk RefCnt Type Proto Iface R Rmem User Inode`. */
export function parsePacketTable(text: string, problems: ParseProblems): KernelSocket[] {
  const out: KernelSocket[] = [];
  const lines = text.split('\n');
  for (let i = 1; i < lines.length; i++) {
    const f = lines[i]!.trim().split(/\s+/);
    if (f.length === 1 && f[0] === '') continue;
    const inode = int(f[8]);
    const uid = int(f[7]);
    if (inode === undefined || !f[2]) {
      problems.malformed++;
      continue;
    }
    out.push({ inode, family: 'packet', protocol: f[2] === '3' ? 'raw' : f[2] === '2' ? 'dgram' : `type_${f[2]}`, ...(uid !== undefined ? { uid } : {}) });
  }
  return out;
}

const NETLINK_PROTOCOLS: Readonly<Record<string, string>> = { '0': 'route', '4': 'sock_diag', '6': 'xfrm', '9': 'audit', '10': 'fib_lookup', '11': 'connector', '12': 'netfilter', '15': 'kobject_uevent', '16': 'generic' };

/** /proc/net/netlink: `sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode`. */
export function parseNetlinkTable(text: string, problems: ParseProblems): KernelSocket[] {
  const out: KernelSocket[] = [];
  const lines = text.split('\n');
  for (let i = 1; i < lines.length; i++) {
    const f = lines[i]!.trim().split(/\s+/);
    if (f.length === 1 && f[0] === '') continue;
    const inode = int(f[9]);
    if (inode === undefined || !f[1]) {
      problems.malformed++;
      continue;
    }
    out.push({ inode, family: 'netlink', protocol: NETLINK_PROTOCOLS[f[1]] ?? f[1] });
  }
  return out;
}

const INET_FILES: readonly [file: string, protocol: string, family: 'ipv4' | 'ipv6'][] = [
  ['tcp', 'tcp', 'ipv4'],
  ['tcp6', 'tcp', 'ipv6'],
  ['udp', 'udp', 'ipv4'],
  ['udp6', 'udp', 'ipv6'],
  ['udplite', 'udplite', 'ipv4'],
  ['udplite6', 'udplite', 'ipv6'],
  ['raw', 'raw', 'ipv4'],
  ['raw6', 'raw', 'ipv6'],
];

/** Every socket of one network namespace, from a net folder (/proc/PID/net or /proc/net). */
function namespaceSockets(ctx: CollectContext, relative: string, namespace: number | undefined, problems: ParseProblems): KernelSocket[] {
  const out: KernelSocket[] = [];
  const add = (sockets: KernelSocket[]) => {
    for (const s of sockets) out.push(namespace === undefined ? s : { ...s, namespace });
  };
  for (const [file, protocol, family] of INET_FILES) {
    const text = readProcText(ctx, `${relative}/${file}`, 64 * 1024 * 1024);
    if (text !== undefined) add(parseInetTable(text, protocol, family, problems));
  }
  const unix = readProcText(ctx, `${relative}/unix`, 64 * 1024 * 1024);
  if (unix !== undefined) add(parseUnixTable(unix, problems));
  const packet = readProcText(ctx, `${relative}/packet`);
  if (packet !== undefined) add(parsePacketTable(packet, problems));
  const netlink = readProcText(ctx, `${relative}/netlink`);
  if (netlink !== undefined) add(parseNetlinkTable(netlink, problems));
  return out;
}

/**
 * Every socket the kernel lists, in every network namespace a process is in (read through one of
 * its processes), or from /proc/net when no namespace link can be read. Once per query.
 */
export function kernelSockets(ctx: CollectContext): readonly KernelSocket[] {
  const load = () => {
    const { namespaces, descriptors } = processSockets(ctx);
    const problems: ParseProblems = { malformed: 0 };
    const out: KernelSocket[] = [];
    const seen = new Set<number>();
    const sources: [relative: string, namespace: number | undefined][] = [...namespaces].map(([ns, relative]) => [relative, ns]);
    if (sources.length === 0) sources.push(['net', undefined]);
    for (const [relative, namespace] of sources) {
      for (const socket of namespaceSockets(ctx, relative, namespace, problems)) {
        // A socket shows once, in its own namespace's files.
        if (seen.has(socket.inode) && socket.inode !== 0) continue;
        if (socket.inode !== 0) seen.add(socket.inode);
        out.push(socket);
      }
    }
    if (problems.malformed > 0) ctx.warn(Warn.malformed, `${problems.malformed} line(s) of the kernel's socket tables did not parse; skipped`, '/proc/net');
    // Sockets held open but in no table read: their namespace has no process or thread left in it
    // (a way to hide a listener), or their family is not listed in /proc/net (vsock, bluetooth, ...).
    const unlisted = new Set(descriptors.filter((d) => !seen.has(d.inode)).map((d) => d.inode));
    if (unlisted.size > 0) {
      ctx.warn(Warn.skipped, `${unlisted.size} socket(s) held open are in no socket table read (a network namespace no process or thread is in, or a family /proc/net does not list): their addresses and state are unknown (process_open_sockets lists them as family unknown)`, '/proc');
    }
    return out;
  };
  return ctx.memo ? ctx.memo('kernel_sockets', load) : load();
}
