/** Network tables: sockets by process, listening ports, established connections, interfaces. */
import os from 'node:os';
import path from 'node:path';
import { encodeText } from '../../driver/bytes.js';
import type { ColumnSpec, CollectContext, Row, TableSpec } from '../table.js';
import { int, listFolder, onHost, readBytes, readProcText } from './host-read.js';
import { formatIpv6, kernelSockets, processSockets, type KernelSocket, type SocketOwner } from './proc.js';

const socketColumns: readonly ColumnSpec[] = [
  { name: 'pid', type: 'INTEGER', nullable: true, description: 'Process holding the socket; NULL when no process\'s open files show it (not root, or a socket held only by the kernel).' },
  { name: 'fd', type: 'INTEGER', nullable: true, description: 'File descriptor number in that process.' },
  { name: 'socket', type: 'INTEGER', description: 'Socket inode (0 for TCP sockets in TIME_WAIT, which no process holds).' },
  { name: 'family', type: 'TEXT', description: 'ipv4, ipv6, unix, packet (raw link-layer, e.g. a sniffer) or netlink.' },
  { name: 'protocol', type: 'TEXT', description: 'tcp, udp, udplite, raw (ipv4, ipv6, packet); stream, dgram, seqpacket (unix); the netlink protocol (route, audit, ...).' },
];

const endpointColumns: readonly ColumnSpec[] = [
  { name: 'local_address', type: 'TEXT', nullable: true, description: 'Local IP address (IPv6 in RFC 5952 form).' },
  { name: 'local_port', type: 'INTEGER', nullable: true, description: 'Local port.' },
  { name: 'remote_address', type: 'TEXT', nullable: true, description: 'Remote IP address.' },
  { name: 'remote_port', type: 'INTEGER', nullable: true, description: 'Remote port.' },
];

const namespaceColumn: ColumnSpec = { name: 'net_namespace', type: 'INTEGER', nullable: true, description: 'Inode of the network namespace the socket lives in (containers have their own).' };

/** One row per (socket, holder); a socket nobody visibly holds gets one row without a process. */
function* withOwners(sockets: readonly KernelSocket[], owners: ReadonlyMap<number, SocketOwner[]>): Generator<[KernelSocket, SocketOwner | undefined]> {
  for (const socket of sockets) {
    const holders = socket.inode === 0 ? undefined : owners.get(socket.inode);
    if (!holders || holders.length === 0) yield [socket, undefined];
    else for (const owner of holders) yield [socket, owner];
  }
}

const base = (socket: KernelSocket, owner: SocketOwner | undefined): Row => ({
  pid: owner?.pid ?? null,
  fd: owner?.fd ?? null,
  socket: socket.inode,
  family: socket.family,
  protocol: socket.protocol,
});

const endpoints = (socket: KernelSocket): Row => ({
  local_address: socket.localAddress ?? null,
  local_port: socket.localPort ?? null,
  remote_address: socket.remoteAddress ?? null,
  remote_port: socket.remotePort ?? null,
});

export const processOpenSocketsTable: TableSpec = {
  name: 'process_open_sockets',
  description: 'Every socket a process holds open, from /proc/PID/fd and the kernel\'s socket tables of each network namespace its processes and their threads are in (/proc/PID/net/{tcp,tcp6,udp,udp6,raw,raw6,unix,packet,netlink}, /proc/PID/task/TID/net). A socket in no table read (a family /proc/net does not list, or a namespace no process or thread is in any more) is a row of family unknown, with a warning.',
  columns: [
    ...socketColumns.map((c) => {
      if (c.name === 'pid' || c.name === 'fd') return { ...c, nullable: false, description: c.name === 'pid' ? 'Process holding the socket.' : c.description };
      if (c.name === 'family' || c.name === 'protocol') return { ...c, description: `${c.description.slice(0, -1)}; unknown for a socket in no table read (see the description).` };
      return c;
    }),
    ...endpointColumns,
    { name: 'state', type: 'TEXT', nullable: true, description: 'TCP state (LISTEN, ESTABLISHED, SYN_SENT, CLOSE_WAIT, ...); UNCONNECTED or ESTABLISHED for udp and raw; LISTEN, CONNECTED, UNCONNECTED for unix.' },
    { name: 'path', type: 'TEXT', nullable: true, description: 'Unix socket path (abstract names start with @).' },
    namespaceColumn,
  ],
  examples: [
    { description: 'Processes with a raw or packet socket (sniffers, some backdoors).', sql: "SELECT pid, family, protocol FROM process_open_sockets WHERE protocol = 'raw' OR family = 'packet'" },
    { description: 'Open sockets per process.', sql: 'SELECT p.name, s.pid, count(*) AS sockets FROM process_open_sockets s JOIN processes p USING (pid) GROUP BY s.pid ORDER BY sockets DESC LIMIT 10' },
  ],
  async generate(ctx: CollectContext): Promise<Row[]> {
    const { descriptors } = processSockets(ctx);
    const byInode = new Map<number, KernelSocket>();
    for (const s of kernelSockets(ctx)) if (s.inode !== 0) byInode.set(s.inode, s);
    const rows: Row[] = [];
    for (const d of descriptors) {
      const socket = byInode.get(d.inode);
      if (!socket) {
        // In no table read (a family /proc/net does not list, or a namespace no process is in, which
        // would hide a listener): still a socket the process holds, with what is known of it.
        rows.push({ pid: d.pid, fd: d.fd, socket: d.inode, family: 'unknown', protocol: 'unknown', local_address: null, local_port: null, remote_address: null, remote_port: null, state: null, path: null, net_namespace: null });
        continue;
      }
      rows.push({ ...base(socket, d), ...endpoints(socket), state: socket.state ?? null, path: socket.path ?? null, net_namespace: socket.namespace ?? null });
    }
    return rows;
  },
};

export const listeningPortsTable: TableSpec = {
  name: 'listening_ports',
  description: 'Sockets waiting for connections: TCP sockets in LISTEN, bound UDP and raw sockets that are not connected, and listening unix stream sockets, with the process that holds each.',
  columns: [
    ...socketColumns,
    { name: 'address', type: 'TEXT', nullable: true, description: 'Address it listens on (0.0.0.0 or :: for every address); NULL for unix sockets.' },
    { name: 'port', type: 'INTEGER', nullable: true, description: 'Port (the protocol number for raw sockets); NULL for unix sockets.' },
    { name: 'path', type: 'TEXT', nullable: true, description: 'Unix socket path (abstract names start with @).' },
    namespaceColumn,
  ],
  examples: [
    { description: 'What listens on every address, with its program.', sql: "SELECT l.port, l.protocol, p.name, p.path FROM listening_ports l JOIN processes p USING (pid) WHERE l.address IN ('0.0.0.0', '::') ORDER BY l.port" },
    { description: 'TCP ports open to the network.', sql: "SELECT DISTINCT port FROM listening_ports WHERE protocol = 'tcp' AND address NOT IN ('127.0.0.1', '::1')" },
  ],
  async generate(ctx: CollectContext): Promise<Row[]> {
    const { owners } = processSockets(ctx);
    const listening = kernelSockets(ctx).filter((s) => {
      if (s.family === 'unix') return s.state === 'LISTEN';
      if (s.family !== 'ipv4' && s.family !== 'ipv6') return false;
      if (s.protocol === 'tcp') return s.state === 'LISTEN';
      return s.state === 'UNCONNECTED' && (s.localPort !== 0 || s.protocol === 'raw');
    });
    const rows: Row[] = [];
    for (const [socket, owner] of withOwners(listening, owners)) {
      rows.push({ ...base(socket, owner), address: socket.localAddress ?? null, port: socket.family === 'unix' ? null : (socket.localPort ?? null), path: socket.path ?? null, net_namespace: socket.namespace ?? null });
    }
    return rows;
  },
};

export const connectionsTable: TableSpec = {
  name: 'connections',
  description: 'Established network connections: TCP sockets in ESTABLISHED and connected UDP sockets, IPv4 and IPv6, with the process that holds each.',
  columns: [...socketColumns, ...endpointColumns, namespaceColumn],
  examples: [
    { description: 'Programs talking to the outside.', sql: "SELECT p.name, c.remote_address, c.remote_port FROM connections c JOIN processes p USING (pid) WHERE c.remote_address NOT LIKE '127.%' AND c.remote_address != '::1'" },
    { description: 'Connections per remote address.', sql: 'SELECT remote_address, count(*) AS n FROM connections GROUP BY remote_address ORDER BY n DESC' },
  ],
  async generate(ctx: CollectContext): Promise<Row[]> {
    const { owners } = processSockets(ctx);
    const established = kernelSockets(ctx).filter((s) => (s.family === 'ipv4' || s.family === 'ipv6') && s.protocol !== 'raw' && s.state === 'ESTABLISHED');
    const rows: Row[] = [];
    for (const [socket, owner] of withOwners(established, owners)) rows.push({ ...base(socket, owner), ...endpoints(socket), net_namespace: socket.namespace ?? null });
    return rows;
  },
};

/** IFF_* flags of <linux/if.h>. */
const IFF: readonly [bit: number, name: string][] = [
  [0x1, 'UP'],
  [0x2, 'BROADCAST'],
  [0x4, 'DEBUG'],
  [0x8, 'LOOPBACK'],
  [0x10, 'POINTOPOINT'],
  [0x20, 'NOTRAILERS'],
  [0x40, 'RUNNING'],
  [0x80, 'NOARP'],
  [0x100, 'PROMISC'],
  [0x200, 'ALLMULTI'],
  [0x1000, 'MULTICAST'],
];
const ARPHRD: Readonly<Record<number, string>> = { 1: 'ether', 24: 'ieee1394', 32: 'infiniband', 65534: 'none', 772: 'loopback', 776: 'sit', 778: 'gre', 65535: 'void', 768: 'tunnel', 769: 'tunnel6', 823: 'ip6gre', 801: 'ieee80211' };

export const flagNames = (flags: number): string => IFF.filter(([bit]) => flags & bit).map(([, name]) => name).join(',');

/** IPv6 addresses by interface from /proc/net/if_inet6 (for roots other than the host's). */
function inet6Addresses(ctx: CollectContext): Map<string, { address: string; prefix: number }[]> {
  const out = new Map<string, { address: string; prefix: number }[]>();
  for (const line of (readProcText(ctx, 'net/if_inet6') ?? '').split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 6 || !/^[0-9a-f]{32}$/i.test(f[0]!)) continue;
    const bytes = new Uint8Array(16);
    for (let i = 0; i < 16; i++) bytes[i] = Number.parseInt(f[0]!.slice(i * 2, i * 2 + 2), 16);
    // Keyed by the name as UTF-8 text (U+FFFD for a bad byte), as the C library's list gives it: see generate.
    const name = encodeText(f[5]!).toString('utf8');
    const list = out.get(name) ?? [];
    list.push({ address: formatIpv6(bytes), prefix: Number.parseInt(f[2]!, 16) });
    out.set(name, list);
  }
  return out;
}

function sysValue(ctx: CollectContext, name: string, attribute: string): string | undefined {
  const hostFile = path.posix.join('/sys/class/net', name, attribute);
  return readBytes(ctx, onHost(ctx, hostFile), hostFile, { quiet: true, maxBytes: 4096 })?.toString('utf8').trim();
}

export const interfacesTable: TableSpec = {
  name: 'interfaces',
  description: 'Network interfaces and their addresses (one row per address; an interface without one gets a row with NULL address), with MAC, MTU, flags and counters from /sys/class/net. IPv6 addresses are those of /proc/net/if_inet6; IPv4 addresses come from the C library\'s list, which leaves out interfaces that are not up and running: an interface that is down or without carrier shows no IPv4 address even when it has one.',
  columns: [
    { name: 'name', type: 'TEXT', description: 'Interface name.' },
    { name: 'index', type: 'INTEGER', nullable: true, description: 'Interface index.' },
    { name: 'mac', type: 'TEXT', nullable: true, description: 'Hardware address.' },
    { name: 'type', type: 'TEXT', nullable: true, description: 'Link type: ether, loopback, tunnel, none, ... (or the ARPHRD number).' },
    { name: 'mtu', type: 'INTEGER', nullable: true, description: 'MTU, bytes.' },
    { name: 'flags', type: 'INTEGER', nullable: true, description: 'IFF_* flags as a number.' },
    { name: 'flag_names', type: 'TEXT', nullable: true, description: 'The flags by name: UP, BROADCAST, LOOPBACK, PROMISC (a sniffer may have set it), MULTICAST, ... (as /sys/class/net/*/flags holds them, which never says RUNNING: operstate tells whether the link runs).' },
    { name: 'operstate', type: 'TEXT', nullable: true, description: 'Operational state: up, down, unknown, ...' },
    { name: 'family', type: 'TEXT', nullable: true, description: 'ipv4 or ipv6; NULL on the row of an interface without an address.' },
    { name: 'address', type: 'TEXT', nullable: true, description: 'IP address.' },
    { name: 'prefix_length', type: 'INTEGER', nullable: true, description: 'Network prefix length (24 for a /24).' },
    { name: 'rx_bytes', type: 'INTEGER', nullable: true, description: 'Bytes received since the interface came up.' },
    { name: 'tx_bytes', type: 'INTEGER', nullable: true, description: 'Bytes sent since the interface came up.' },
  ],
  examples: [
    { description: 'Interfaces in promiscuous mode.', sql: "SELECT DISTINCT name FROM interfaces WHERE flag_names LIKE '%PROMISC%'" },
    { description: 'Every IPv4 address of the host.', sql: "SELECT name, address, prefix_length FROM interfaces WHERE family = 'ipv4'" },
  ],
  async generate(ctx: CollectContext): Promise<Row[]> {
    const onRealHost = ctx.root === '/' && ctx.proc === '/proc';
    const addresses = new Map<string, { family: string; address: string; prefix: number }[]>();
    // IPv4 from the C library's list, which leaves out interfaces that are not up and running (libuv);
    // IPv6 from /proc/net/if_inet6, which lists every interface's addresses, down ones included.
    if (onRealHost) {
      for (const [name, list] of Object.entries(os.networkInterfaces())) {
        addresses.set(name, (list ?? []).filter((a) => a.family === 'IPv4').map((a) => ({ family: 'ipv4', address: a.address, prefix: Number(a.cidr?.split('/')[1] ?? 0) })));
      }
    }
    for (const [name, list] of inet6Addresses(ctx)) addresses.set(name, [...(addresses.get(name) ?? []), ...list.map((a) => ({ family: 'ipv6', ...a }))]);
    // /sys and /proc keep a name that is not UTF-8 by its bytes (./host-names.ts), the C library gives
    // it as text (U+FFFD for a bad byte): they meet on the text, and /sys is read by the bytes.
    const sysNames = new Map((listFolder(ctx, onHost(ctx, '/sys/class/net'), '/sys/class/net') ?? []).map((n) => [encodeText(n).toString('utf8'), n]));
    const keys = new Set([...sysNames.keys(), ...addresses.keys()]);
    const rows: Row[] = [];
    for (const key of [...keys].sort()) {
      const name = sysNames.get(key) ?? key;
      const flags = sysValue(ctx, name, 'flags');
      const flagsValue = flags && /^0x[0-9a-f]+$/i.test(flags) ? Number.parseInt(flags, 16) : undefined;
      const typeNumber = int(sysValue(ctx, name, 'type'));
      const details: Row = {
        name,
        index: int(sysValue(ctx, name, 'ifindex')) ?? null,
        mac: sysValue(ctx, name, 'address') || null,
        type: typeNumber === undefined ? null : (ARPHRD[typeNumber] ?? String(typeNumber)),
        mtu: int(sysValue(ctx, name, 'mtu')) ?? null,
        flags: flagsValue ?? null,
        flag_names: flagsValue === undefined ? null : flagNames(flagsValue),
        operstate: sysValue(ctx, name, 'operstate') ?? null,
        rx_bytes: int(sysValue(ctx, name, 'statistics/rx_bytes')) ?? null,
        tx_bytes: int(sysValue(ctx, name, 'statistics/tx_bytes')) ?? null,
      };
      const list = addresses.get(key) ?? [];
      if (list.length === 0) rows.push({ ...details, family: null, address: null, prefix_length: null });
      for (const a of list) rows.push({ ...details, family: a.family, address: a.address, prefix_length: a.prefix });
    }
    return rows;
  },
};
