/**
 * The syslog output: one RFC 5424 message per alert, over UDP (RFC 5426: one datagram each), TCP
 * (RFC 6587) or TLS (RFC 5425), the stream transports framed by octet counting
 * (`MSG-LEN SP SYSLOG-MSG`). The connection is opened at the first alert, used once the receiver
 * had the time to refuse it (STREAM_CONFIRM_WAIT_MS), kept, and opened again after it fails (the
 * queue's backoff paces the attempts).
 *
 * Syslog has no acknowledgement. Over TCP and TLS an alert is handed over once written, and then
 * held (ResendBuffer) until the receiver's TCP has acknowledged its last byte, which a reading of
 * the kernel's table says (tcp-acks.ts, a reading every 2 s while alerts are held): a
 * connection that dies, or acknowledges nothing for timeout_ms, is closed and its held alerts are
 * written again, first, on the next one (at least once); one the receiver ends cleanly (FIN) is
 * read once more first (ended). A datagram counts once its host had the
 * time to refuse it. What a receiver loses after its TCP acknowledged it cannot be known here.
 *
 *     <PRI>1 TIMESTAMP HOSTNAME APP-NAME - MSGID [hades@32473 alert_id=".." rule=".." severity=".." host=".." host_id=".." count=".."] MSG
 *
 * PRI is facility * 8 + severity (critical 2, high 3, medium 4, low 5, info 6); TIMESTAMP is when
 * the alert was raised; MSGID is the rule id; MSG is the alert document as JSON, written in ASCII
 * (characters beyond it as \u escapes), so it parses as JSON and needs no byte order mark.
 */
import dgram from 'node:dgram';
import type { LookupAddress } from 'node:dns';
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import { hostname as osHostname } from 'node:os';
import tls from 'node:tls';
import { SYSLOG_FACILITIES, type SyslogFacility, type SyslogOutputConfig } from '../../../common/config/alert-outputs.js';
import type { HadesError } from '../../../common/errors.js';
import { ResendBuffer } from './resend.js';
import { unacknowledgedBytes, type Unacknowledged } from './tcp-acks.js';
import { failure, InFlight, networkFailure, once, readTlsMaterial, type AlertHead, type AlertRef, type AlertTransport, type DeliveryErrorCode, type HoldListener, type QueuedAlert, type TlsMaterial } from './transport.js';

/** Syslog severities of alert severities. */
export const SYSLOG_SEVERITY: Readonly<Record<string, number>> = { critical: 2, high: 3, medium: 4, low: 5, info: 6 };
/** The SD-ID of Hades' structured data. Hades has no Private Enterprise Number; 32473 is the one RFC 5612 reserves for documentation. */
export const SD_ID = 'hades@32473';
const DEFAULT_PORT = { udp: 514, tcp: 514, tls: 6514 } as const;
/**
 * How long a datagram waits for its receiver's host to refuse it before it counts as sent: an
 * ICMP "port unreachable" comes back within a round trip, below a millisecond on a LAN. Short,
 * because datagrams go one after another (about 400 a second at most with it); a receiver
 * further away lengthens it at its first late refusal (sendDatagram).
 */
export const UDP_REFUSAL_WAIT_MS = 2;
/**
 * The wait of the first datagram after a refusal (a probe): the receiver is known to refuse, and
 * this datagram alone is out, so a refusal that comes within it is its own and says how far the
 * receiver is; without one, the receiver is back. At most timeout_ms.
 */
const UDP_PROBE_WAIT_MS = 1000;
/**
 * Least wait of a new TCP or TLS connection before it is used: a receiver that refuses the client
 * does so just after the handshake, and the bytes written before that count as sent and are
 * lost. Under TLS 1.3 the client's handshake ends before the server has checked its certificate
 * (a missing, expired or unknown client certificate is refused one round trip later), and
 * rsyslog closes a connection past MaxSessions or from a peer it does not permit right after
 * accepting it. The wait is twice the time the connection took to open, and at least this.
 */
export const STREAM_CONFIRM_WAIT_MS = 100;
/**
 * Alerts, and bytes of their frames, held written and unacknowledged (ResendBuffer); past
 * either, a delivery waits for acknowledgements. A held alert keeps its frame and its ids
 * (AlertRef), never the alert nor its JSON, so these bound the memory held alerts take. With
 * a reading every ACK_POLL_URGENT_MS while it waits, an output passes up to about 2,000 alerts
 * (8 MiB) a second to a receiver that keeps up.
 */
export const HELD_MAX_ALERTS = 1024;
export const HELD_MAX_BYTES = 4 * 1024 * 1024;
/**
 * Wait between two readings of the kernel's table (tcp-acks.ts) while alerts are held. A reading
 * costs about 4 µs of kernel time per socket of the host, on a thread of libuv's pool, as it
 * stops at the connection's line: 5 ms with 2,000 sockets (measured), of which under 0.3 ms of
 * the main thread. Every 2 s that is 0.25% of a core for a busy output.
 */
const ACK_POLL_MS = 2000;
/** The wait while a delivery waits for room in the buffer, or the output closes (1% of a core with 2,000 sockets). */
const ACK_POLL_URGENT_MS = 500;
/** A reading that took t ms is followed by at least this many times t: at most 0.25% of a core, 1% while urgent, however many sockets. */
const ACK_POLL_COST_RATIO = 400;
const ACK_POLL_URGENT_COST_RATIO = 100;
/** Longest wait between two readings, whatever they cost (at most a quarter of timeout_ms anyway). */
const ACK_POLL_MAX_MS = 5000;
/** Characters kept of each structured data value. */
const SD_VALUE_CHARS = 255;
/**
 * Bytes of MSG that the structured data values make room for when a message must be cut: the
 * start of the alert's JSON, with its id. The header with empty values takes at most 446
 * bytes (a 255-character HOSTNAME), so it always fits the smallest max_message_bytes, 480.
 */
const MSG_ROOM = 64;

export interface SyslogFormat {
  readonly facility: SyslogFacility;
  readonly appName: string;
  readonly hostname: string;
  /** Largest message in bytes, header included. */
  readonly maxBytes: number;
}

export interface SyslogMessage {
  readonly bytes: Buffer;
  /** The alert's events were left out, or the message was cut, to fit maxBytes. */
  readonly truncated: boolean;
}

/** The RFC 5424 message of an alert; `json` is the alert as JSON, `alert` (the alert or its head) gives the header. */
export function formatSyslog(alert: AlertHead, json: string, format: SyslogFormat): SyslogMessage {
  let header = headerOf(alert, format, SD_VALUE_CHARS);
  let msg = asciiJson(json);
  if (Buffer.byteLength(header) + msg.length <= format.maxBytes) return { bytes: Buffer.from(header + msg), truncated: false };
  // The triggering events are most of a large alert, and the alert is still valid JSON without them.
  msg = asciiJson(JSON.stringify({ ...(JSON.parse(json) as Record<string, unknown>), events: [] }));
  if (Buffer.byteLength(header) + msg.length > format.maxBytes) {
    // Only the MSG is cut, so that the structured data stays whole; its values are shortened
    // only as far as needed to leave the MSG room for the start of the alert (its id).
    const room = format.maxBytes - MSG_ROOM;
    if (Buffer.byteLength(header) > room) {
      let fits = 0;
      for (let low = 1, high = SD_VALUE_CHARS - 1; low <= high; ) {
        const mid = (low + high) >> 1;
        if (Buffer.byteLength(headerOf(alert, format, mid)) <= room) [fits, low] = [mid, mid + 1];
        else high = mid - 1;
      }
      header = headerOf(alert, format, fits);
    }
    // The MSG is ASCII: one byte a character, and no character to split.
    msg = msg.slice(0, Math.max(0, format.maxBytes - Buffer.byteLength(header)));
  }
  return { bytes: Buffer.from(header + msg), truncated: true };
}

/** HEADER, STRUCTURED-DATA and the space before MSG, each structured data value cut to `valueChars` characters. */
function headerOf(alert: AlertHead, format: SyslogFormat, valueChars: number): string {
  const pri = SYSLOG_FACILITIES.indexOf(format.facility) * 8 + (SYSLOG_SEVERITY[alert.rule.severity] ?? 6);
  const time = new Date(alert['@timestamp']);
  const timestamp = Number.isNaN(time.getTime()) ? new Date().toISOString() : time.toISOString();
  const param = (name: string, value: string): string => ` ${name}="${sdValue(value, valueChars)}"`;
  const sd =
    `[${SD_ID}` +
    param('alert_id', alert.id) +
    param('rule', alert.rule.id) +
    param('severity', alert.rule.severity) +
    param('host', alert.host.name) +
    param('host_id', alert.host.id) +
    param('count', String(alert.count)) +
    ']';
  return `<${pri}>1 ${timestamp} ${headerField(format.hostname, 255)} ${headerField(format.appName, 48)} - ${headerField(alert.rule.id, 32)} ${sd} `;
}

/** A PARAM-VALUE: at most `chars` characters (never half of one), escaped (`"`, `\` and `]` take a backslash), control characters blanked. */
function sdValue(value: string, chars: number): string {
  const cut = value.length > chars ? Array.from(value).slice(0, chars).join('') : value;
  return cut.replace(/\p{Cc}/gu, ' ').replace(/["\\\]]/g, '\\$&');
}

/** A header field: printable ASCII without spaces (PRINTUSASCII), bounded, or the NILVALUE. */
function headerField(value: string, max: number): string {
  return value.replace(/[^!-~]/g, '_').slice(0, max) || '-';
}

/** JSON text with every character beyond ASCII as a \u escape: the same value, in plain ASCII. */
export function asciiJson(json: string): string {
  return json.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * Octet-counting framing of RFC 6587 and RFC 5425. The frame has memory of its own, not a slice
 * of Node's shared pool (where buffers under 4 KiB go): a frame held until acknowledged would
 * keep a whole 8 KiB slab alive, and the bound of held bytes would not be what they take.
 */
export function octetFrame(message: Buffer): Buffer {
  const prefix = `${message.length} `;
  const frame = Buffer.allocUnsafeSlow(prefix.length + message.length);
  frame.write(prefix, 0, 'latin1');
  message.copy(frame, prefix.length);
  return frame;
}

/** Test seams and the output's retry setting. */
export interface SyslogTransportOptions {
  /** Resolves the receiver's host name (UDP). */
  readonly resolve?: (host: string) => Promise<LookupAddress>;
  /** Connections a held alert may see die as their oldest unacknowledged alert before it is given up (retry.max_attempts; 0: no limit). */
  readonly maxAttempts?: number;
  readonly maxHeldAlerts?: number;
  readonly maxHeldBytes?: number;
  /** Reads the bytes of a connection its receiver has not acknowledged (tcp-acks.ts). */
  readonly unacknowledged?: (socket: net.Socket) => Promise<Unacknowledged>;
}

/** A connection of a stream transport and the following of its acknowledgements. */
interface Link {
  readonly socket: net.Socket;
  /** The TCP connection under it (the same socket without TLS): what a reset is sent on. */
  readonly tcp: net.Socket;
  /** Whether the kernel's table has the connection: undefined until the first reading; false: it cannot be read, written counts as delivered. */
  readable: boolean | undefined;
  /** When the receiver last acknowledged more (or the connection opened, or the buffer stopped being empty). */
  lastProgressAt: number;
  timer: NodeJS.Timeout | undefined;
  dueAt: number;
  reading: boolean;
  /** Deliveries writing on it, or waiting for room: they fail with its loss themselves. */
  inUse: number;
  /** The socket's first error. */
  error: unknown;
  /** Why it was given up (lost). */
  lostError: HadesError | undefined;
  /** The receiver ended it (FIN): the last reading of its acknowledgements, after which it is given up (ended). */
  ending: Promise<void> | undefined;
}

/** Drops a connection with a reset (its unsent bytes discarded), or closes it when it cannot be reset. */
function resetAndDestroy(link: Link): void {
  if (!link.tcp.destroyed && !link.tcp.connecting) {
    try {
      link.tcp.resetAndDestroy();
    } catch {
      // Its handle is gone already: the destroy below closes what is left.
    }
  }
  link.tcp.destroy();
  link.socket.destroy();
}

export class SyslogTransport implements AlertTransport {
  readonly target: string;
  truncated = 0;
  resent = 0;
  private readonly host: string;
  private readonly port: number;
  private readonly format: SyslogFormat;
  private readonly tls: TlsMaterial | undefined;
  private readonly inFlight = new InFlight();
  private link: Link | undefined;
  /** The frames written and not acknowledged, each with its alert's ids only (AlertRef): what HELD_MAX_BYTES bounds is all they take. */
  private readonly held: ResendBuffer<AlertRef>;
  private listener: HoldListener | undefined;
  /** Settles the delivery waiting for room in `held`. */
  private roomWaiter: ((error?: HadesError) => void) | undefined;
  /** How long the last reading of the kernel's table took. */
  private lastReadMs = 0;
  /** The output closes soon: readings come faster. */
  private hurried = false;
  private readonly maxAttempts: number;
  private readonly resolve: (host: string) => Promise<LookupAddress>;
  private readonly readUnacknowledged: (socket: net.Socket) => Promise<Unacknowledged>;
  private datagrams: dgram.Socket | undefined;
  /** How long a datagram waits for a refusal before it counts as sent (UDP_REFUSAL_WAIT_MS, or twice the delay a probe measured). */
  private refusalWaitMs = UDP_REFUSAL_WAIT_MS;
  /** Since a refusal: the next datagram is a probe (UDP_PROBE_WAIT_MS), until one is not refused. */
  private probing = false;
  /** Settles the datagram waiting for a refusal. */
  private waiting: ((error: unknown) => void) | undefined;
  /** A refusal that came when no datagram was waiting; the next alert fails with it. */
  private lateRefusal: unknown;
  /** The host name lookup in progress (UDP): one at a time, shared by the attempts that wait on it (resolveHost). */
  private resolving: Promise<LookupAddress> | undefined;
  private closed = false;

  constructor(
    name: string,
    private readonly config: SyslogOutputConfig,
    hostname: string = osHostname(),
    options: SyslogTransportOptions = {},
  ) {
    this.resolve = options.resolve ?? ((host) => lookup(host));
    this.readUnacknowledged = options.unacknowledged ?? ((socket) => unacknowledgedBytes(socket));
    this.maxAttempts = options.maxAttempts ?? 0;
    this.held = new ResendBuffer(options.maxHeldAlerts ?? HELD_MAX_ALERTS, options.maxHeldBytes ?? HELD_MAX_BYTES);
    this.host = config.host;
    this.port = config.port ?? DEFAULT_PORT[config.transport];
    this.target = `${config.transport}://${net.isIPv6(this.host) ? `[${this.host}]` : this.host}:${this.port}`;
    this.format = { facility: config.facility, appName: config.app_name, hostname: config.hostname ?? hostname, maxBytes: config.max_message_bytes };
    this.tls = config.transport === 'tls' ? readTlsMaterial(name, config.tls) : undefined;
  }

  async deliver(item: QueuedAlert): Promise<void | 'held'> {
    if (this.closed) throw failure('HADES_ERR_ALERT_OUTPUT_UNREACHABLE', `${this.target}: the output is closed`, 'receiver');
    const message = formatSyslog(item.head, item.json, this.format);
    if (this.config.transport === 'udp') {
      await this.sendDatagram(message.bytes);
      if (message.truncated) this.truncated++;
      return;
    }
    const frame = octetFrame(message.bytes);
    const link = await this.connection();
    link.inUse++;
    try {
      // What a dead connection left goes first: the receiver gets the alerts in order.
      await this.sendHeld(link);
      await this.room(link, frame.length);
      const end = this.held.reserve(frame.length);
      await this.writeFrames(link, [{ frame, end }]);
      if (message.truncated) this.truncated++;
      // The acknowledgements of this connection cannot be read: written is all that can be known.
      if (link.readable === false) return;
      const wasEmpty = this.held.size === 0;
      if (!this.held.hold({ id: item.head.id, rule: item.head.rule.id }, frame, end)) return;
      if (wasEmpty) link.lastProgressAt = performance.now();
      this.schedule(link);
      return 'held';
    } finally {
      link.inUse--;
    }
  }

  get resendPending(): boolean {
    return this.held.pending > 0;
  }

  async resend(): Promise<void> {
    if (this.closed) throw failure('HADES_ERR_ALERT_OUTPUT_UNREACHABLE', `${this.target}: the output is closed`, 'receiver');
    if (this.held.pending === 0) return;
    const link = await this.connection();
    link.inUse++;
    try {
      await this.sendHeld(link);
    } finally {
      link.inUse--;
    }
  }

  hold(listener: HoldListener): void {
    this.listener = listener;
  }

  hurry(): void {
    this.hurried = true;
    if (this.link) this.schedule(this.link);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.inFlight.abortAll(failure('HADES_ERR_ALERT_OUTPUT_UNREACHABLE', `${this.target}: the output was closed`, 'receiver'));
    const link = this.link;
    this.link = undefined;
    if (link) {
      clearTimeout(link.timer);
      link.socket.destroy();
    }
    // The queue says how many were held: they may be lost.
    this.held.clear();
    this.dropDatagrams();
  }

  // --- stream transports (tcp, tls) ---------------------------------------------------------

  /** The open connection, or a new one. */
  private async connection(): Promise<Link> {
    const ending = this.link?.ending;
    if (ending) {
      // Ended by the receiver, its last reading under way: the delivery asking for a new one
      // sends what is left held, so the queue need not hear of it.
      this.link!.inUse++;
      await ending;
      if (this.closed) throw failure('HADES_ERR_ALERT_OUTPUT_UNREACHABLE', `${this.target}: the output was closed`, 'receiver');
    }
    const open = this.link;
    if (open && !open.socket.destroyed && open.socket.writable && !open.socket.readableEnded) return open;
    if (open) {
      // Ended by the receiver, its 'close' not come yet: the delivery asking for a new one sends
      // what it held, so the queue need not hear of it.
      open.inUse++;
      this.lost(open, this.closedError(open));
    }
    return new Promise<Link>((resolve, reject) => {
      let socket: net.Socket;
      // TLS over a TCP socket of its own making, which a reset can be sent on (lost): a TLS
      // socket's own cannot.
      const tcp = net.connect({ host: this.host, port: this.port, allowHalfOpen: true });
      // Half-open (see ended): tls.connect passes allowHalfOpen to its socket, though its type omits it.
      const tlsOptions: tls.ConnectionOptions & { allowHalfOpen: boolean } = { host: this.host, port: this.port, socket: tcp, allowHalfOpen: true, ...(net.isIP(this.host) ? {} : { servername: this.host }), ...this.tls };
      try {
        socket = this.config.transport === 'tls' ? tls.connect(tlsOptions) : tcp;
      } catch (error) {
        tcp.destroy();
        // tls.connect throws, rather than failing the socket, when OpenSSL refuses the material
        // it is given (checked at creation): the output's fault, not the alert's, which keeps its place.
        const code = this.config.transport === 'tls' ? 'HADES_ERR_ALERT_OUTPUT_TLS' : 'HADES_ERR_ALERT_OUTPUT_UNREACHABLE';
        reject(failure(code, `${this.target}: cannot open a connection: ${error instanceof Error ? error.message : String(error)}`, 'receiver', error));
        return;
      }
      const link: Link = { socket, tcp, readable: undefined, lastProgressAt: 0, timer: undefined, dueAt: 0, reading: false, inUse: 0, error: undefined, lostError: undefined, ending: undefined };
      let confirm: NodeJS.Timeout | undefined;
      const settle = once((error?: unknown): void => {
        clearTimeout(timer);
        clearTimeout(confirm);
        forget();
        if (error === undefined) {
          link.lastProgressAt = performance.now();
          this.link = link;
          resolve(link);
        } else {
          socket.destroy();
          reject(networkFailure(this.target, error, false));
        }
      });
      const forget = this.inFlight.add((error) => settle(error));
      const started = performance.now();
      const timer = setTimeout(() => settle(failure('HADES_ERR_ALERT_OUTPUT_TIMEOUT', `${this.target}: no connection within ${this.config.timeout_ms} ms`, 'receiver')), this.config.timeout_ms);
      const dropped = (): void => settle(failure('HADES_ERR_ALERT_OUTPUT_UNREACHABLE', `${this.target}: the receiver closed the connection as soon as it was open`, 'receiver'));
      socket.once('end', dropped);
      socket.once('close', dropped);
      socket.once(this.config.transport === 'tls' ? 'secureConnect' : 'connect', () => {
        socket.setNoDelay(true);
        socket.setKeepAlive(true, 60_000);
        // A receiver sends nothing, but what it might send (a TLS close_notify) must be read.
        socket.resume();
        // Not used before the receiver had the time to refuse it (STREAM_CONFIRM_WAIT_MS).
        clearTimeout(timer);
        const wait = Math.min(this.config.timeout_ms, Math.max(STREAM_CONFIRM_WAIT_MS, Math.ceil(2 * (performance.now() - started))));
        confirm = setTimeout(() => {
          socket.off('end', dropped);
          socket.off('close', dropped);
          socket.on('end', () => this.ended(link));
          settle();
        }, wait);
      });
      // Kept for the socket's life: a connection that fails later sends its held alerts again.
      socket.on('error', (error) => {
        link.error ??= error;
        settle(error);
        socket.destroy();
      });
      socket.on('close', () => this.lost(link, this.closedError(link)));
    });
  }

  /**
   * The receiver ended the connection (FIN). A receiver that closes cleanly after reading
   * everything has had it acknowledged by its TCP: the kernel's table is read once more, so that
   * what was acknowledged is released rather than sent again. The socket is half-open
   * (allowHalfOpen: Node would otherwise end and close it at once, and the connection's line
   * could leave the table before the reading): the line stays, in CLOSE_WAIT, until the reading
   * is done or timeout_ms passed. A connection not in the table then, or a table that cannot be
   * read, releases nothing: its held alerts are all sent again. Then the connection is given up.
   */
  private ended(link: Link): void {
    if (link.ending !== undefined) return;
    if (this.link !== link) {
      link.socket.destroy();
      return;
    }
    if (this.held.size === 0 || link.readable === false) {
      this.lost(link, this.closedError(link));
      return;
    }
    const generation = this.held.generation;
    const base = this.held.base;
    link.ending = (async () => {
      // Bounded by timeout_ms, and by the output's close.
      let timer: NodeJS.Timeout | undefined;
      let forget = (): void => undefined;
      const left = await Promise.race([
        this.readUnacknowledged(link.socket).catch((): Unacknowledged => 'unknown'),
        new Promise<Unacknowledged>((resolve) => {
          timer = setTimeout(() => resolve('unknown'), this.config.timeout_ms);
          forget = this.inFlight.add(() => resolve('unknown'));
        }),
      ]);
      clearTimeout(timer);
      forget();
      if (this.link === link && !this.closed && typeof left === 'number') this.released(this.held.acknowledge(generation, base, left).released);
      this.lost(link, this.closedError(link));
    })();
  }

  /** The failure of a connection that closed: its error, or the receiver closed it. */
  private closedError(link: Link): HadesError {
    const held = this.held.size;
    const resent = held > 0 ? `; the ${held} alerts it had not acknowledged are sent again` : '';
    if (link.error !== undefined) {
      const cause = networkFailure(this.target, link.error, false);
      return failure(cause.code as DeliveryErrorCode, `${cause.message}${resent}`, 'receiver', link.error);
    }
    return failure('HADES_ERR_ALERT_OUTPUT_UNREACHABLE', `${this.target}: the receiver closed the connection${resent}`, 'receiver');
  }

  /**
   * The connection is dead (closed, reset, failed, or acknowledging nothing for timeout_ms): it
   * is closed, and the alerts it held are written again, first, on the next one (ResendBuffer).
   * A delivery using it fails with `error`; without one, the queue hears of it (connectionLost)
   * and sends them after its backoff.
   */
  private lost(link: Link, error: HadesError): void {
    // Destroyed whether or not it is still the current one: a half-open socket (ended) stays
    // open until it is, and would keep the process alive. Reset, not closed: after a FIN the
    // kernel would go on sending what the receiver has not read (the held alerts, written again on
    // the next connection), a stalled receiver then getting them once per connection given up,
    // and each such connection lingering with its buffer.
    if (this.link !== link) {
      resetAndDestroy(link);
      return;
    }
    this.link = undefined;
    // Set first: what fails on the socket as it is reset fails with why it was given up.
    link.lostError = error;
    resetAndDestroy(link);
    clearTimeout(link.timer);
    link.timer = undefined;
    const givenUp = this.held.restart(this.maxAttempts);
    if (givenUp) this.listener?.givenUp(givenUp.item, error, givenUp.failures);
    this.roomWaiter?.(error);
    if (this.held.size > 0 && link.inUse === 0 && !this.closed) this.listener?.connectionLost(error);
  }

  /** Writes again the alerts a dead connection left, before anything else on this one. */
  private async sendHeld(link: Link): Promise<void> {
    const entries = this.held.unwritten();
    if (entries.length === 0) return;
    link.lastProgressAt = performance.now();
    // Counted in `resent` one by one as their write completes: a connection that dies before
    // taking them (a receiver that reads nothing, a reset) leaves the rest unwritten, uncounted.
    await this.writeFrames(
      link,
      entries.map((entry) => ({ frame: entry.frame, end: this.held.rewrite(entry), again: true })),
    );
    if (link.readable === false) this.released(this.held.releaseWritten());
    else this.schedule(link);
  }

  /** Waits while the buffer of held alerts is full: for acknowledgements, or for the connection to be found dead. */
  private async room(link: Link, bytes: number): Promise<void> {
    while (!this.held.hasRoom(bytes)) {
      if (link.lostError) throw link.lostError;
      await new Promise<void>((resolve, reject) => {
        const settle = once((error?: HadesError): void => {
          forget();
          if (this.roomWaiter === settle) this.roomWaiter = undefined;
          if (error === undefined) resolve();
          else reject(error);
        });
        const forget = this.inFlight.add(settle);
        this.roomWaiter = settle;
        this.schedule(link);
      });
    }
    // Room made by the last reading of a connection the receiver ended, which is then given up.
    if (link.lostError) throw link.lostError;
  }

  /**
   * Writes frames at their end offsets (ResendBuffer.reserve, rewrite), and resolves once the
   * last one reached the kernel. A write that fails, or takes more than timeout_ms (a receiver
   * that reads nothing, where its acknowledgements cannot be read), ends the connection. A frame
   * written `again` (sendHeld) counts in `resent` once its write completed: in the kernel.
   */
  private writeFrames(link: Link, frames: readonly { readonly frame: Buffer; readonly end: number; readonly again?: boolean }[]): Promise<void> {
    const generation = this.held.generation;
    return new Promise<void>((resolve, reject) => {
      const settle = once((error?: unknown): void => {
        clearTimeout(timer);
        forget();
        if (error === undefined && link.lostError === undefined) {
          resolve();
          return;
        }
        // The stream's state after a failed write is unknown: the next alert starts a new one.
        this.lost(link, networkFailure(this.target, error ?? link.lostError, false));
        reject(link.lostError ?? networkFailure(this.target, error, false));
      });
      const forget = this.inFlight.add((error) => settle(error));
      const timer = setTimeout(() => settle(failure('HADES_ERR_ALERT_OUTPUT_TIMEOUT', `${this.target}: the receiver took nothing for ${this.config.timeout_ms} ms`, 'receiver')), this.config.timeout_ms);
      frames.forEach(({ frame, end, again }, i) => {
        const last = i === frames.length - 1;
        link.socket.write(frame, (error) => {
          if (error) {
            settle(error);
            return;
          }
          if (again) this.resent++;
          this.held.completed(end, generation);
          if (last) settle();
        });
      });
    });
  }

  // --- acknowledgements (tcp, tls) ----------------------------------------------------------

  /** Reads the kernel's table at the next turn (pollDelay) while alerts are held; one timer, one reading at a time. */
  private schedule(link: Link): void {
    if (link !== this.link || link.readable === false || this.held.size === 0 || this.closed) return;
    const delay = this.pollDelay();
    const due = performance.now() + delay;
    if (link.timer !== undefined && link.dueAt <= due) return;
    clearTimeout(link.timer);
    link.dueAt = due;
    link.timer = setTimeout(() => {
      link.timer = undefined;
      this.poll(link);
    }, delay);
  }

  /**
   * The wait before the next reading: ACK_POLL_MS, or ACK_POLL_URGENT_MS while a delivery waits
   * for room or the output closes, each lengthened when a reading takes long (many sockets), and
   * at most a quarter of timeout_ms so that a dead connection is found within about 1.25 times it.
   */
  private pollDelay(): number {
    const steady = Math.min(ACK_POLL_MAX_MS, Math.max(ACK_POLL_MS, ACK_POLL_COST_RATIO * this.lastReadMs));
    const urgent = this.hurried || this.roomWaiter !== undefined;
    const delay = urgent ? Math.min(steady, Math.max(ACK_POLL_URGENT_MS, ACK_POLL_URGENT_COST_RATIO * this.lastReadMs)) : steady;
    return Math.max(1, Math.min(delay, Math.floor(this.config.timeout_ms / 4)));
  }

  private poll(link: Link): void {
    if (link !== this.link || this.held.size === 0) return;
    if (performance.now() - link.lastProgressAt > this.config.timeout_ms) {
      const held = this.held.size;
      this.lost(
        link,
        failure(
          'HADES_ERR_ALERT_OUTPUT_TIMEOUT',
          `${this.target}: the receiver acknowledged nothing for ${this.config.timeout_ms} ms, with ${held} alerts written and not acknowledged; the connection is taken as dead and closed, and they are sent again on a new one`,
          'receiver',
        ),
      );
      return;
    }
    if (!link.reading) {
      link.reading = true;
      const generation = this.held.generation;
      const base = this.held.base;
      const started = performance.now();
      // A reader that fails (rejects) says the table cannot be read, as its 'unknown' does: the
      // reading ends either way, or none would follow it and the connection would be found dead.
      void this.readUnacknowledged(link.socket)
        .catch((): Unacknowledged => 'unknown')
        .then((left) => {
          link.reading = false;
          this.lastReadMs = performance.now() - started;
          if (link !== this.link || generation !== this.held.generation || this.closed) return;
          if (link.readable === undefined && (left === 'unknown' || (left === 'gone' && !link.socket.destroyed))) {
            // Found at the first reading of a connection, not at every alert: written is all that
            // can be known of this one (an open connection missing from the table would otherwise
            // be found dead after timeout_ms, again and again).
            link.readable = false;
            clearTimeout(link.timer);
            link.timer = undefined;
            this.released(this.held.releaseWritten());
            return;
          }
          // Not in the table: a reading that raced with other sockets, or a connection closing (its
          // 'close' says so). Neither is news; no progress is.
          if (typeof left !== 'number') return;
          link.readable = true;
          const { released, progress } = this.held.acknowledge(generation, base, left);
          if (progress) link.lastProgressAt = performance.now();
          this.released(released);
        });
    }
    this.schedule(link);
  }

  /** `count` held alerts were acknowledged (or cannot be followed). */
  private released(count: number): void {
    if (count === 0) return;
    this.listener?.acknowledged(count);
    this.roomWaiter?.();
  }

  // --- udp -----------------------------------------------------------------------------------

  /**
   * Sends one datagram and waits `refusalWaitMs` for the receiver's host to refuse it: the
   * ICMP "port unreachable" comes back as an 'error' of the connected socket (or of its next
   * send), not as the result of this one. A refused datagram was not received: its alert
   * fails like any alert that did not reach the receiver, and keeps its place.
   */
  private async sendDatagram(bytes: Buffer): Promise<void> {
    const late = this.lateRefusal;
    if (late !== undefined) {
      this.lateRefusal = undefined;
      // Which datagram it was about is unknown, and that alert was counted as sent; this one is
      // not sent, and waits as after any refusal.
      throw networkFailure(`${this.target} (refused an earlier datagram after its wait)`, late, false);
    }
    const socket = this.datagrams ?? (await this.openDatagrams());
    const probe = this.probing;
    await new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      let immediate: NodeJS.Immediate | undefined;
      let sentAt: number | undefined;
      const settle = once((error?: unknown): void => {
        clearTimeout(timer);
        clearImmediate(immediate);
        forget();
        if (this.waiting === settle) this.waiting = undefined;
        if (error === undefined) {
          // Not refused: a probe says the receiver is back.
          this.probing = false;
          resolve();
          return;
        }
        // A probe's own refusal says how far the receiver is: wait twice that from now on.
        if (probe && sentAt !== undefined) this.refusalWaitMs = Math.min(this.config.timeout_ms, Math.max(UDP_REFUSAL_WAIT_MS, Math.ceil(2 * (performance.now() - sentAt))));
        this.probing = true;
        // A send also fails with a refusal of an earlier datagram, left pending in the socket.
        this.dropDatagrams();
        reject(networkFailure(this.target, error, false));
      });
      const forget = this.inFlight.add((error) => settle(error));
      this.waiting = settle;
      try {
        socket.send(bytes, (error) => {
          if (error || settle.done) {
            settle(error);
            return;
          }
          sentAt = performance.now();
          // After the wait, one more turn of the event loop: a refusal that arrived during a
          // busy loop is read (polled) before the datagram counts as sent.
          const wait = probe ? Math.min(this.config.timeout_ms, UDP_PROBE_WAIT_MS) : this.refusalWaitMs;
          timer = setTimeout(() => (immediate = setImmediate(() => settle())), wait);
        });
      } catch (error) {
        settle(error);
      }
    });
  }

  /** A UDP socket connected to the receiver, so that the kernel reports it unreachable. */
  private async openDatagrams(): Promise<dgram.Socket> {
    const address = await this.resolveHost();
    if (this.closed) throw failure('HADES_ERR_ALERT_OUTPUT_UNREACHABLE', `${this.target}: the output was closed`, 'receiver');
    const socket = dgram.createSocket(address.family === 6 ? 'udp6' : 'udp4');
    this.datagrams = socket;
    await new Promise<void>((resolve, reject) => {
      const settle = once((error?: unknown): void => {
        forget();
        socket.off('error', settle);
        if (error === undefined) {
          resolve();
          return;
        }
        this.dropDatagrams();
        reject(networkFailure(this.target, error, false));
      });
      const forget = this.inFlight.add((error) => settle(error));
      socket.once('error', settle);
      socket.connect(this.port, address.address, () => settle());
    });
    // Kept for the socket's life: a refusal fails the datagram waiting for it, else the next one.
    socket.on('error', (error) => {
      // A socket already let go: about one of its datagrams, not the one waiting now.
      if (this.datagrams !== socket) {
        this.probing = true;
        return;
      }
      this.dropDatagrams();
      if (this.waiting) {
        this.waiting(error);
        return;
      }
      // The receiver is further than the wait: the next datagram fails with it, and the one
      // after, a probe, measures how far.
      this.lateRefusal = error;
      this.probing = true;
    });
    return socket;
  }

  /**
   * The receiver's address, looked up within `timeout_ms` (HADES_ERR_ALERT_OUTPUT_TIMEOUT, the
   * alert keeps its place). A lookup runs on a thread of libuv's pool (four by default, shared
   * with file system calls) until the C library gives up on the resolver, which is
   * resolv.conf's timeout × attempts × name servers (10 s by default, minutes with other
   * settings) and cannot be cancelled: the next attempt waits on the same lookup rather than
   * taking another thread.
   */
  private resolveHost(): Promise<LookupAddress> {
    const pending = (this.resolving ??= this.resolve(this.host).finally(() => {
      this.resolving = undefined;
    }));
    return new Promise<LookupAddress>((resolve, reject) => {
      const settle = once((error: unknown, address?: LookupAddress): void => {
        clearTimeout(timer);
        forget();
        if (address) resolve(address);
        else reject(networkFailure(this.target, error, false));
      });
      const forget = this.inFlight.add((error) => settle(error));
      const timer = setTimeout(() => settle(failure('HADES_ERR_ALERT_OUTPUT_TIMEOUT', `${this.target}: no answer from the resolver for ${this.host} within ${this.config.timeout_ms} ms`, 'receiver')), this.config.timeout_ms);
      pending.then(
        (address) => settle(undefined, address),
        (error: unknown) => settle(error),
      );
    });
  }

  private dropDatagrams(): void {
    const socket = this.datagrams;
    this.datagrams = undefined;
    if (!socket) return;
    try {
      socket.close();
    } catch {
      // Already closed.
    }
  }
}
