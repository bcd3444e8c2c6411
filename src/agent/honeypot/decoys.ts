/**
 * The honeypot mode (docs/plugins.md, "The honeypot"): decoy TCP and UDP ports that no real
 * service uses, opened by a built-in plugin process. Nothing legitimate connects to them, so
 * every connection (every datagram) is worth an event (`honeypot_touch`): who, to which decoy,
 * how many bytes and the first of them. Across a fleet, every agent that opens decoys makes the
 * fleet a distributed honeypot. A UDP decoy never answers: an answer to a forged source address
 * would reflect traffic onto it (and a datagram's source can be forged, which its event says by
 * its transport).
 *
 * A decoy never takes a port a real service uses or may need: a port something listens on or is
 * bound to (any address, from /proc/net/tcp, tcp6, udp and udp6) or one in the kernel's
 * ephemeral range (from which outgoing connections take their local port) is refused, logged
 * with HADES_ERR_HONEYPOT_PORT, and the other decoys still open. A port taken between the check
 * and the bind is refused the same way (EADDRINUSE).
 *
 * What an attacker sends is held only up to `max_bytes` per connection (one buffer), a
 * connection lasts at most `idle_ms` without data and MAX_CONNECTION_MS in all, and at most
 * `max_connections` are open at once (fewer where the open-files limit is lower; more are closed
 * at once and still reported), so a flood of connections costs bounded memory. Each source
 * address (an IPv6 address's /64) has SOURCE_BURST touches a minute reported one by one, and
 * all of them together EVENTS_PER_SECOND; more are folded into one event per source every
 * FOLD_WINDOW_MS (`hades.honeypot.folded`), so scanners cannot flood the agent and get the
 * plugin restarted for it.
 */
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { PluginFrame } from '../../common/plugins/frames.js';
import type { PluginHealthReport } from '../../common/plugins/protocol.js';
import { readConfig, type PluginBody, type PluginIo } from '../plugins/plugin-main.js';

export const HONEYPOT_PLUGIN = 'honeypot';
/** The uid and gid of `nobody` on Linux distributions. */
const NOBODY = 65_534;
/** The longest a decoy keeps a connection open, whatever arrives. */
export const MAX_CONNECTION_MS = 30_000;
/** Events written that the agent has not taken yet, at most; more touches are counted as dropped. */
export const MAX_PENDING = 1024;
/** Touches one source address may have reported one by one, refilled over a minute; more are folded. */
export const SOURCE_BURST = 30;
/** How often folded touches are reported, one event per source. */
export const FOLD_WINDOW_MS = 10_000;
/** Touches reported one by one per second, all sources together; more are folded by source. */
export const EVENTS_PER_SECOND = 200;
/** Source addresses remembered (allowances, folded touches); touches of more are dropped and counted. */
export const MAX_SOURCES = 4096;
/** The payload is sent base64, at most 8,192 characters (docs/events.md). */
export const MAX_PAYLOAD_BYTES = 6144;

export type DecoyProtocol = 'tcp' | 'udp';

export interface DecoyPort {
  readonly port: number;
  readonly protocol: DecoyProtocol;
  /** The service the decoy imitates, reported with each touch (telnet, redis, ...; `generic` when not named). */
  readonly service: string;
  /** Sent to each connection as it opens, as a real service would greet (`login: `); TCP only. */
  readonly banner?: string;
}

export interface HoneypotConfig {
  readonly ports: readonly DecoyPort[];
  /** Address the decoys listen on; `::` takes IPv4 too where IPv6 is on. */
  readonly bind: string;
  readonly max_bytes: number;
  readonly idle_ms: number;
  readonly max_connections: number;
}

export interface HoneypotStats {
  /** Decoys open, as `tcp/2323`, `udp/161`. */
  listening: string[];
  /** Decoys refused (`tcp/22`), with a short reason (in_use, ephemeral, bind_failed: CODE, privilege_drop_failed). */
  refused: Record<string, string>;
  connections: number;
  datagrams: number;
  /** Connections closed at once because max_connections were open. */
  over_capacity: number;
  bytes: number;
  events: number;
  /** Touches over their source's allowance, reported in one event per source (`folded`). */
  folded: number;
  /** Touches not reported: MAX_PENDING events were waiting for the agent already, or MAX_SOURCES sources were folded. */
  dropped: number;
  /**
   * Connections whose address the kernel no longer had when the decoy took them (the client
   * reset them before: Node reads the peer's address only when asked). Reported without
   * `source`, and all of them share one allowance.
   */
  source_unknown: number;
}

/** Decoys named in `health.detail` at most; the rest are counted (all of them are under `refused`). */
const HEALTH_NAMED = 8;

/**
 * The honeypot's health (the STATS `health`, docs/plugins.md): `ok` while every configured decoy
 * listens, `degraded` otherwise (some decoys closed, all of them, or none configured: a honeypot
 * that watches nothing must not look like one that works), with the count and the reasons.
 */
export function honeypotHealth(configured: number, stats: Pick<HoneypotStats, 'listening' | 'refused'>): PluginHealthReport {
  const listening = stats.listening.length;
  if (configured === 0) return { status: 'degraded', detail: 'no decoy configured (plugins.honeypot.ports is empty): the honeypot watches nothing' };
  const count = `${listening} of ${configured} decoy${configured === 1 ? '' : 's'} listening`;
  const closed = Object.entries(stats.refused).sort(([a], [b]) => a.localeCompare(b));
  if (listening >= configured && closed.length === 0) return { status: 'ok', detail: count };
  const named = closed.slice(0, HEALTH_NAMED).map(([decoy, reason]) => `${decoy} (${reason})`);
  const more = closed.length > HEALTH_NAMED ? `, and ${closed.length - HEALTH_NAMED} more` : '';
  const none = listening === 0 ? ': the honeypot watches nothing' : '';
  return { status: 'degraded', detail: `${count}${none}${named.length > 0 ? `; not listening: ${named.join(', ')}${more}` : ''}` };
}

/** The configuration as the agent sends it, checked; or what is wrong with it. */
export function validHoneypotConfig(raw: unknown): HoneypotConfig | string {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return 'the configuration must be an object';
  const c = raw as Record<string, unknown>;
  const ports = c['ports'] ?? [];
  if (!Array.isArray(ports) || ports.length > 64) return 'ports must be a list of at most 64 decoys';
  const decoys: DecoyPort[] = [];
  const seen = new Set<string>();
  for (const p of ports as unknown[]) {
    const d = (p && typeof p === 'object' ? p : {}) as Record<string, unknown>;
    const port = d['port'];
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65_535) return 'each decoy needs a port from 1 to 65535';
    const protocol = d['protocol'] ?? 'tcp';
    if (protocol !== 'tcp' && protocol !== 'udp') return `the protocol of port ${port} must be tcp or udp`;
    if (seen.has(`${protocol}/${port}`)) return `${protocol} port ${port} is named twice`;
    seen.add(`${protocol}/${port}`);
    const service = d['service'];
    if (service !== undefined && (typeof service !== 'string' || !/^[a-z0-9_-]{1,32}$/i.test(service))) return `the service of port ${port} must be a name of 1 to 32 letters, digits, - or _`;
    const banner = d['banner'];
    if (banner !== undefined && (typeof banner !== 'string' || banner.length > 512)) return `the banner of port ${port} must be text of at most 512 characters`;
    if (banner !== undefined && protocol === 'udp') return `udp port ${port} cannot have a banner: a UDP decoy never answers (an answer to a forged source would reflect traffic onto it)`;
    decoys.push({ port, protocol, service: typeof service === 'string' ? service : 'generic', ...(typeof banner === 'string' ? { banner } : {}) });
  }
  const bind = c['bind'] ?? '::';
  if (typeof bind !== 'string' || net.isIP(bind) === 0) return 'bind must be an IP address';
  const int = (key: string, fallback: number, min: number, max: number): number | string => {
    const v = c[key] ?? fallback;
    return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? v : `${key} must be an integer from ${min} to ${max}`;
  };
  const maxBytes = int('max_bytes', 1024, 0, MAX_PAYLOAD_BYTES);
  const idle = int('idle_ms', 5000, 100, MAX_CONNECTION_MS);
  const maxConnections = int('max_connections', 256, 1, 4096);
  for (const v of [maxBytes, idle, maxConnections]) if (typeof v === 'string') return v;
  return { ports: decoys, bind, max_bytes: maxBytes as number, idle_ms: idle as number, max_connections: maxConnections as number };
}

/** The kernel's ephemeral port range, from the text of ip_local_port_range. */
export function parseEphemeralRange(text: string): [number, number] | undefined {
  const m = /^\s*(\d+)\s+(\d+)\s*$/.exec(text);
  if (!m) return undefined;
  const low = Number(m[1]);
  const high = Number(m[2]);
  return low >= 1 && high <= 65_535 && low <= high ? [low, high] : undefined;
}

/** Ports in the LISTEN state in the text of /proc/net/tcp or tcp6. */
export function parseListeningPorts(text: string): Set<number> {
  const ports = new Set<number>();
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 4 || fields[3] !== '0A') continue;
    const port = Number.parseInt(fields[1]?.split(':')[1] ?? '', 16);
    if (Number.isInteger(port) && port > 0) ports.add(port);
  }
  return ports;
}

/** Local ports of every socket in the text of /proc/net/udp or udp6 (a bound UDP port is in use). */
export function parseBoundPorts(text: string): Set<number> {
  const ports = new Set<number>();
  for (const line of text.split('\n').slice(1)) {
    const port = Number.parseInt(line.trim().split(/\s+/)[1]?.split(':')[1] ?? '', 16);
    if (Number.isInteger(port) && port > 0) ports.add(port);
  }
  return ports;
}

/** What the host uses now: TCP ports listened on, UDP ports bound, the ephemeral range (empty where unreadable). */
export interface PortUse {
  readonly listening: ReadonlySet<number>;
  readonly udp?: ReadonlySet<number>;
  readonly ephemeral?: readonly [number, number] | undefined;
}

export function readPortUse(): PortUse {
  const listening = new Set([...parseListeningPorts(readText('/proc/net/tcp')), ...parseListeningPorts(readText('/proc/net/tcp6'))]);
  const udp = new Set([...parseBoundPorts(readText('/proc/net/udp')), ...parseBoundPorts(readText('/proc/net/udp6'))]);
  return { listening, udp, ephemeral: parseEphemeralRange(readText('/proc/sys/net/ipv4/ip_local_port_range')) };
}

/** Why a decoy may not take `port`, or undefined. */
export function portRefusal(port: number, use: PortUse, protocol: DecoyProtocol = 'tcp'): string | undefined {
  if ((protocol === 'tcp' ? use.listening : use.udp)?.has(port)) return `${protocol} port ${port} is in use by a service on this host`;
  if (use.ephemeral && port >= use.ephemeral[0] && port <= use.ephemeral[1]) return `port ${port} is in the ephemeral range ${use.ephemeral[0]}-${use.ephemeral[1]}, from which outgoing connections take their ports`;
  return undefined;
}

/** An address as events carry it: IPv4 mapped into IPv6 (`::ffff:10.0.0.7`) as plain IPv4. */
export function plainAddress(address: string | undefined): string | undefined {
  if (address === undefined) return undefined;
  return address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
}

/** A decoy as counters name it: `tcp/2323`. */
const decoyName = (decoy: DecoyPort): string => `${decoy.protocol}/${decoy.port}`;

/** Open files the process may hold (its soft RLIMIT_NOFILE), from /proc/self/limits. */
export function openFilesLimit(text: string = readText('/proc/self/limits')): number | undefined {
  const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(text);
  if (!m) return undefined;
  return m[1] === 'unlimited' ? undefined : Number(m[1]);
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** Descriptors kept aside for the process itself (pipes, listening sockets, /proc reads). */
const FD_HEADROOM = 64;

export interface HoneypotOptions {
  /** What the host uses, read at each configuration. */
  readonly portUse?: () => PortUse;
  /** Become `nobody` once the decoys listen: the plugin process, not a test's own process. */
  readonly dropToNobody?: boolean;
  /** Milliseconds, for the allowances. */
  readonly now?: () => number;
  /** Touches reported one by one per second, all sources together (EVENTS_PER_SECOND). */
  readonly eventsPerSecond?: number;
}

/**
 * The address a source's allowance and folding go by: an IPv4 address, or an IPv6 address's
 * /64 (one host or site holds a whole /64, so single addresses would not bound anyone).
 */
export function sourceKey(ip: string | undefined): string {
  if (ip === undefined || !net.isIPv6(ip)) return ip ?? '';
  const [head = '', tail] = ip.split('::') as [string, string | undefined];
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

interface Folded {
  readonly first: Date;
  /** The first address seen of the source (for IPv6, one of its /64). */
  readonly ip: string | undefined;
  readonly destination: { ip?: string | undefined; port: number };
  readonly service: string;
  readonly transport: DecoyProtocol;
  count: number;
  bytes: number;
}

export class Honeypot implements PluginBody {
  readonly stats: HoneypotStats = { listening: [], refused: {}, connections: 0, datagrams: 0, over_capacity: 0, bytes: 0, events: 0, folded: 0, dropped: 0, source_unknown: 0 };
  private pending = 0;
  private sent: Promise<void> = Promise.resolve();
  private servers = new Map<number, net.Server>();
  private udpSockets = new Map<number, dgram.Socket>();
  /** Connections held open (they count against max_connections). */
  private readonly sockets = new Set<net.Socket>();
  /** Every connection not yet reported, held or not, with the promise of its report. */
  private readonly unreported = new Map<net.Socket, Promise<void>>();
  /** Per source address: touches it may still have reported one by one (a token bucket). */
  private readonly allowance = new Map<string, { tokens: number; at: number }>();
  /** Per source address: touches over its allowance, reported together every FOLD_WINDOW_MS. */
  private folded = new Map<string, Folded>();
  private foldTimer: NodeJS.Timeout | undefined;
  private maxConnections = 0;
  /** Decoys the configuration in force names; undefined until one is applied. */
  private configured: number | undefined;
  private reconfigured: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly encoder = new TextEncoder();

  private readonly portUse: () => PortUse;
  private readonly dropToNobody: boolean;
  private readonly now: () => number;
  /** Touches reported one by one per second, all sources together. */
  private readonly overall: { tokens: number; at: number; rate: number };

  constructor(
    private readonly io: PluginIo,
    private readonly version: string,
    options: HoneypotOptions = {},
  ) {
    this.portUse = options.portUse ?? readPortUse;
    this.dropToNobody = options.dropToNobody ?? false;
    this.now = options.now ?? (() => performance.now());
    const rate = options.eventsPerSecond ?? EVENTS_PER_SECOND;
    this.overall = { tokens: rate, at: this.now(), rate };
  }

  hello(): Promise<void> {
    return this.json(PluginFrame.hello, { protocol: 1, plugin: HONEYPOT_PLUGIN, version: this.version });
  }

  onFrame(type: number, payload: Uint8Array): void {
    if (type === PluginFrame.config) {
      const accepted = readConfig(this.io, payload, validHoneypotConfig);
      if (!accepted) return;
      this.reconfigured = this.reconfigured.then(() => this.apply(accepted.config, accepted.requestId));
    } else if (type === PluginFrame.statsRequest) void this.sendStats();
  }

  /** The STATS frame: the counters, and once configured, the health the decoys make. */
  private sendStats(): Promise<void> {
    const health = this.configured === undefined ? undefined : honeypotHealth(this.configured, this.stats);
    return this.json(PluginFrame.stats, { ...this.stats, open: this.sockets.size, max_connections: this.maxConnections, ...(health ? { health } : {}) });
  }

  /**
   * Closes every decoy and connection; resolves once each connection and each folded source is
   * reported and the reports are written.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.reconfigured;
    await this.closeAll();
    clearInterval(this.foldTimer);
    this.foldTimer = undefined;
    this.flushFolded();
    await this.sent;
  }

  private async apply(config: HoneypotConfig, requestId: number): Promise<void> {
    if (this.stopped) return;
    this.configured = undefined;
    await this.closeAll();
    this.stats.listening = [];
    this.stats.refused = {};
    // Never more connections than descriptors: past its limit Node closes new ones unseen.
    const files = openFilesLimit();
    this.maxConnections = files === undefined ? config.max_connections : Math.max(1, Math.min(config.max_connections, files - FD_HEADROOM - config.ports.length));
    if (this.maxConnections < config.max_connections) this.log('warn', `max_connections lowered to ${this.maxConnections}: the process may open ${files} files (plugins.honeypot.limits.max_open_files)`);
    const use = this.portUse();
    for (const decoy of config.ports) {
      const refused = portRefusal(decoy.port, use, decoy.protocol);
      if (refused) this.refuse(decoy, /in use/.test(refused) ? 'in_use' : 'ephemeral', refused);
      else if (decoy.protocol === 'udp') await this.openUdp(decoy, config);
      else await this.open(decoy, config);
    }
    this.stats.listening.sort();
    if (!this.dropPrivileges()) {
      // Fail closed: no decoy stays open in a process that talks to strangers as root.
      await this.closeAll();
      for (const name of this.stats.listening) this.stats.refused[name] = 'privilege_drop_failed';
      this.stats.listening = [];
    }
    this.foldTimer ??= setInterval(() => this.flushFolded(), FOLD_WINDOW_MS);
    this.configured = config.ports.length;
    await this.json(PluginFrame.ack, { request_id: requestId, ok: true });
    // Said at once rather than at the agent's next STATS_REQUEST: decoys that did not open make the honeypot degraded.
    await this.sendStats();
  }

  /**
   * Once its decoys listen, the process that talks to strangers needs no privilege: as root it
   * becomes `nobody` (no supplementary groups). A later configuration can then open no port
   * below 1024 (refused); the agent starts the plugin afresh when plugins.honeypot changes.
   * False when it should have and could not.
   */
  private dropPrivileges(): boolean {
    if (!this.dropToNobody || process.getuid?.() !== 0) return true;
    try {
      process.setgroups?.([]);
      process.setgid?.(NOBODY);
      process.setuid?.(NOBODY);
      return true;
    } catch (error) {
      this.log('error', `cannot give up root (${(error as Error).message}): every decoy is closed`);
      return false;
    }
  }

  /** A decoy not opened: a short reason in the counters, the whole one in the log. */
  private refuse(decoy: DecoyPort, reason: string, why: string): void {
    this.stats.listening = this.stats.listening.filter((n) => n !== decoyName(decoy));
    this.stats.refused[decoyName(decoy)] = reason;
    this.log('warn', `decoy not opened: ${why}`);
  }

  /**
   * A decoy that could not be bound: on `::` where IPv6 is off (ipv6.disable=1) it is tried again
   * on every IPv4 address (`retry`); otherwise it is refused.
   */
  private bindFailed(decoy: DecoyPort, host: string, error: NodeJS.ErrnoException, retry: () => Promise<void>): Promise<void> {
    if (host === '::' && (error.code === 'EAFNOSUPPORT' || error.code === 'EADDRNOTAVAIL')) return retry();
    const inUse = error.code === 'EADDRINUSE';
    const name = `${decoy.protocol} port ${decoy.port}`;
    this.refuse(decoy, inUse ? 'in_use' : `bind_failed: ${error.code ?? 'error'}`, inUse ? `${name} is in use by a service on this host` : `${name}: ${error.message}`);
    return Promise.resolve();
  }

  /** A UDP decoy: each datagram a touch; it never answers. */
  private openUdp(decoy: DecoyPort, config: HoneypotConfig, host = config.bind): Promise<void> {
    return new Promise((resolve) => {
      const socket = dgram.createSocket({ type: net.isIPv6(host) ? 'udp6' : 'udp4' });
      socket.once('error', (error: NodeJS.ErrnoException) => {
        socket.close();
        void this.bindFailed(decoy, host, error, () => this.openUdp(decoy, config, '0.0.0.0')).then(resolve);
      });
      socket.bind({ port: decoy.port, address: host, exclusive: true }, () => {
        socket.removeAllListeners('error');
        socket.on('error', (error: NodeJS.ErrnoException) => {
          socket.close();
          this.udpSockets.delete(decoy.port);
          this.refuse(decoy, `failed: ${error.code ?? 'error'}`, `udp port ${decoy.port}: ${error.message}`);
          void this.sendStats();
        });
        socket.on('message', (message: Buffer, remote: dgram.RemoteInfo) => {
          this.stats.datagrams++;
          this.stats.bytes += message.length;
          this.touch(new Date(), { ip: plainAddress(remote.address), port: remote.port }, { port: decoy.port }, decoy, message.length, message.subarray(0, config.max_bytes));
        });
        this.udpSockets.set(decoy.port, socket);
        this.stats.listening.push(decoyName(decoy));
        resolve();
      });
    });
  }

  private log(level: 'warn' | 'error', msg: string): void {
    void this.json(PluginFrame.log, { level, code: 'HADES_ERR_HONEYPOT_PORT', msg });
  }

  private open(decoy: DecoyPort, config: HoneypotConfig, host = config.bind): Promise<void> {
    return new Promise((resolve) => {
      const server = net.createServer((socket) => this.touched(socket, decoy, config));
      server.once('error', (error: NodeJS.ErrnoException) => {
        server.close();
        void this.bindFailed(decoy, host, error, () => this.open(decoy, config, '0.0.0.0')).then(resolve);
      });
      server.listen({ port: decoy.port, host }, () => {
        server.removeAllListeners('error');
        // A decoy that fails later (it should not) is closed and said so; the others stay.
        server.on('error', (error: NodeJS.ErrnoException) => {
          server.close();
          this.servers.delete(decoy.port);
          this.refuse(decoy, `failed: ${error.code ?? 'error'}`, `tcp port ${decoy.port}: ${error.message}`);
          void this.sendStats();
        });
        this.servers.set(decoy.port, server);
        this.stats.listening.push(decoyName(decoy));
        resolve();
      });
    });
  }

  private touched(socket: net.Socket, decoy: DecoyPort, config: HoneypotConfig): void {
    this.stats.connections++;
    const start = new Date();
    const source = { ip: plainAddress(socket.remoteAddress), port: socket.remotePort };
    if (source.ip === undefined) this.stats.source_unknown++;
    const destination = { ip: plainAddress(socket.localAddress), port: socket.localPort ?? decoy.port };
    // What the client sends is copied into one buffer of max_bytes: many small writes cost no more.
    let kept: Buffer | undefined;
    let keptBytes = 0;
    let bytes = 0;
    const over = this.sockets.size >= this.maxConnections || this.stopped;
    const lifetime = setTimeout(() => socket.destroy(), MAX_CONNECTION_MS);
    this.unreported.set(
      socket,
      new Promise((resolve) =>
        socket.once('close', () => {
          clearTimeout(lifetime);
          this.sockets.delete(socket);
          this.unreported.delete(socket);
          this.stats.bytes += bytes;
          this.touch(start, source, destination, decoy, bytes, kept?.subarray(0, keptBytes));
          resolve();
        }),
      ),
    );
    socket.on('error', () => socket.destroy());
    if (over) {
      this.stats.over_capacity++;
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.setTimeout(config.idle_ms, () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (keptBytes < config.max_bytes) {
        kept ??= Buffer.alloc(config.max_bytes);
        keptBytes += chunk.copy(kept, keptBytes, 0, Math.min(chunk.length, config.max_bytes - keptBytes));
      }
      // Enough seen: what more would come is not kept, and holding the connection costs.
      if (keptBytes >= config.max_bytes) socket.destroy();
    });
    socket.on('end', () => socket.destroy());
    if (decoy.banner) socket.write(decoy.banner);
  }

  /** One touch: its own event while its source is within its allowance, else folded. */
  private touch(start: Date, source: { ip?: string | undefined; port?: number | undefined }, destination: { ip?: string | undefined; port: number }, decoy: DecoyPort, bytes: number, payload: Buffer | undefined): void {
    const key = sourceKey(source.ip);
    if (this.allowed(key) && this.overallAllows()) {
      this.emit(start, source, destination, decoy.protocol, { service: decoy.service, bytes, ...(payload && payload.length > 0 ? { payload: payload.toString('base64') } : {}) });
      return;
    }
    const folded = this.folded.get(key);
    if (folded) {
      folded.count++;
      folded.bytes += bytes;
    } else if (this.folded.size < MAX_SOURCES) this.folded.set(key, { first: start, ip: source.ip, destination, service: decoy.service, transport: decoy.protocol, count: 1, bytes });
    else {
      this.stats.dropped++;
      return;
    }
    this.stats.folded++;
  }

  /** Takes one of the source's SOURCE_BURST touches, refilled over a minute. */
  private allowed(key: string): boolean {
    const now = this.now();
    let a = this.allowance.get(key);
    if (a) this.allowance.delete(key); // re-inserted below: the Map's order is least recent first
    else {
      if (this.allowance.size >= MAX_SOURCES) this.allowance.delete(this.allowance.keys().next().value as string);
      a = { tokens: SOURCE_BURST, at: now };
    }
    a.tokens = Math.min(SOURCE_BURST, a.tokens + ((now - a.at) / 60_000) * SOURCE_BURST);
    a.at = now;
    this.allowance.set(key, a);
    if (a.tokens < 1) return false;
    a.tokens--;
    return true;
  }

  /** Takes one of the touches all sources together may report one by one this second. */
  private overallAllows(): boolean {
    const o = this.overall;
    const now = this.now();
    o.tokens = Math.min(o.rate, o.tokens + ((now - o.at) / 1000) * o.rate);
    o.at = now;
    if (o.tokens < 1) return false;
    o.tokens--;
    return true;
  }

  /** One event per source whose touches were folded since the last flush. */
  private flushFolded(): void {
    const folded = this.folded;
    this.folded = new Map();
    for (const f of folded.values()) this.emit(f.first, { ip: f.ip }, f.destination, f.transport, { service: f.service, bytes: f.bytes, folded: f.count });
  }

  private emit(start: Date, source: { ip?: string | undefined; port?: number | undefined }, destination: { ip?: string | undefined; port: number }, transport: DecoyProtocol, honeypot: Record<string, unknown>): void {
    const type = source.ip !== undefined && net.isIPv6(source.ip) ? 'ipv6' : 'ipv4';
    const event = {
      '@timestamp': start.toISOString(),
      event: { action: 'honeypot_touch' },
      source: source.port === undefined ? { ip: source.ip } : source,
      destination,
      network: { transport, type, direction: 'ingress' },
      hades: { backend: 'honeypot', honeypot },
    };
    if (this.pending >= MAX_PENDING) {
      this.stats.dropped++;
      return;
    }
    this.stats.events++;
    this.pending++;
    const sent = this.io.send(PluginFrame.events, this.encoder.encode(`${JSON.stringify(event)}\n`)).then(() => {
      this.pending--;
    });
    this.sent = this.sent.then(() => sent);
  }

  /** Closes the decoys and every connection, and waits until each connection is reported. */
  private async closeAll(): Promise<void> {
    const servers = [...this.servers.values()];
    this.servers = new Map();
    const udp = [...this.udpSockets.values()];
    this.udpSockets = new Map();
    for (const socket of udp) socket.close();
    const reports = [...this.unreported.values()];
    for (const socket of this.unreported.keys()) socket.destroy();
    await Promise.all([...servers.map((s) => new Promise((resolve) => s.close(resolve))), ...reports]);
  }

  private json(type: number, value: unknown): Promise<void> {
    return this.io.send(type, this.encoder.encode(JSON.stringify(value)));
  }
}
