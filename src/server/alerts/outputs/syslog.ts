/**
 * The syslog output: one RFC 5424 message per alert, over UDP (RFC 5426: one datagram each), TCP
 * (RFC 6587) or TLS (RFC 5425), the stream transports framed by octet counting
 * (`MSG-LEN SP SYSLOG-MSG`). The connection is opened at the first alert, used once the receiver
 * had the time to refuse it (STREAM_CONFIRM_WAIT_MS), kept, and opened again after it fails (the
 * queue's backoff paces the attempts).
 *
 *     <PRI>1 TIMESTAMP HOSTNAME APP-NAME - MSGID [hades@32473 alert_id=".." rule=".." severity=".." host=".." host_id=".." count=".."] MSG
 *
 * PRI is facility * 8 + severity (critical 2, high 3, medium 4, low 5, info 6); TIMESTAMP is when
 * the alert was raised; MSGID is the rule id; MSG is the alert document as JSON, written in ASCII
 * (characters beyond it as \u escapes), so it parses as JSON and needs no byte order mark. Syslog
 * has no acknowledgement: a message is delivered once the kernel took it (a datagram, once its
 * host had the time to refuse it), so what a receiver loses as it goes down cannot be known here.
 */
import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import { hostname as osHostname } from 'node:os';
import tls from 'node:tls';
import { SYSLOG_FACILITIES, type SyslogFacility, type SyslogOutputConfig } from '../../../common/config/alert-outputs.js';
import type { Alert } from '../types.js';
import { failure, InFlight, networkFailure, readTlsMaterial, type AlertTransport, type QueuedAlert, type TlsMaterial } from './transport.js';

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

/** The RFC 5424 message of an alert; `json` is the alert as JSON. */
export function formatSyslog(alert: Alert, json: string, format: SyslogFormat): SyslogMessage {
  let header = headerOf(alert, format, SD_VALUE_CHARS);
  let msg = asciiJson(json);
  if (Buffer.byteLength(header) + msg.length <= format.maxBytes) return { bytes: Buffer.from(header + msg), truncated: false };
  // The triggering events are most of a large alert, and the alert is still valid JSON without them.
  msg = asciiJson(JSON.stringify({ ...alert, events: [] }));
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
function headerOf(alert: Alert, format: SyslogFormat, valueChars: number): string {
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

/** Octet-counting framing of RFC 6587 and RFC 5425. */
export function octetFrame(message: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${message.length} `), message]);
}

export class SyslogTransport implements AlertTransport {
  readonly target: string;
  truncated = 0;
  private readonly host: string;
  private readonly port: number;
  private readonly format: SyslogFormat;
  private readonly tls: TlsMaterial | undefined;
  private readonly inFlight = new InFlight();
  private stream: net.Socket | undefined;
  private datagrams: dgram.Socket | undefined;
  /** How long a datagram waits for a refusal before it counts as sent (UDP_REFUSAL_WAIT_MS, or twice the delay a probe measured). */
  private refusalWaitMs = UDP_REFUSAL_WAIT_MS;
  /** Since a refusal: the next datagram is a probe (UDP_PROBE_WAIT_MS), until one is not refused. */
  private probing = false;
  /** Settles the datagram waiting for a refusal. */
  private waiting: ((error: unknown) => void) | undefined;
  /** A refusal that came when no datagram was waiting; the next alert fails with it. */
  private lateRefusal: unknown;
  private closed = false;

  constructor(
    name: string,
    private readonly config: SyslogOutputConfig,
    hostname: string = osHostname(),
  ) {
    this.host = config.host;
    this.port = config.port ?? DEFAULT_PORT[config.transport];
    this.target = `${config.transport}://${net.isIPv6(this.host) ? `[${this.host}]` : this.host}:${this.port}`;
    this.format = { facility: config.facility, appName: config.app_name, hostname: config.hostname ?? hostname, maxBytes: config.max_message_bytes };
    this.tls = config.transport === 'tls' ? readTlsMaterial(name, config.tls) : undefined;
  }

  async deliver(item: QueuedAlert): Promise<void> {
    if (this.closed) throw failure('HADES_ERR_ALERT_OUTPUT_UNREACHABLE', `${this.target}: the output is closed`, 'receiver');
    const message = formatSyslog(item.alert, item.json, this.format);
    if (this.config.transport === 'udp') await this.sendDatagram(message.bytes);
    else await this.write(await this.connection(), octetFrame(message.bytes));
    if (message.truncated) this.truncated++;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.inFlight.abortAll(failure('HADES_ERR_ALERT_OUTPUT_UNREACHABLE', `${this.target}: the output was closed`, 'receiver'));
    this.dropStream();
    this.dropDatagrams();
  }

  // --- stream transports (tcp, tls) ---------------------------------------------------------

  /** The open connection, or a new one. */
  private connection(): Promise<net.Socket> {
    const open = this.stream;
    if (open && !open.destroyed && open.writable && !open.readableEnded) return Promise.resolve(open);
    this.dropStream();
    return new Promise<net.Socket>((resolve, reject) => {
      let socket: net.Socket;
      try {
        socket =
          this.config.transport === 'tls'
            ? tls.connect({ host: this.host, port: this.port, ...(net.isIP(this.host) ? {} : { servername: this.host }), ...this.tls })
            : net.connect({ host: this.host, port: this.port });
      } catch (error) {
        // tls.connect throws, rather than failing the socket, when OpenSSL refuses the material
        // it is given (checked at creation): the output's fault, not the alert's, which keeps its place.
        const code = this.config.transport === 'tls' ? 'HADES_ERR_ALERT_OUTPUT_TLS' : 'HADES_ERR_ALERT_OUTPUT_UNREACHABLE';
        reject(failure(code, `${this.target}: cannot open a connection: ${error instanceof Error ? error.message : String(error)}`, 'receiver', error));
        return;
      }
      let settled = false;
      let confirm: NodeJS.Timeout | undefined;
      const settle = (error?: unknown): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        clearTimeout(confirm);
        forget();
        if (error === undefined) {
          this.stream = socket;
          resolve(socket);
        } else {
          socket.destroy();
          reject(networkFailure(this.target, error, false));
        }
      };
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
          settle();
        }, wait);
      });
      // Kept for the socket's life: an idle connection that fails is only forgotten.
      socket.on('error', (error) => {
        settle(error);
        socket.destroy();
      });
      socket.on('close', () => {
        if (this.stream === socket) this.stream = undefined;
      });
    });
  }

  private write(socket: net.Socket, frame: Buffer): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (error?: unknown): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        forget();
        if (error === undefined) {
          resolve();
          return;
        }
        // The stream's state after a failed write is unknown: the next alert starts a new one.
        socket.destroy();
        if (this.stream === socket) this.stream = undefined;
        reject(networkFailure(this.target, error, false));
      };
      const forget = this.inFlight.add((error) => settle(error));
      const timer = setTimeout(() => settle(failure('HADES_ERR_ALERT_OUTPUT_TIMEOUT', `${this.target}: the receiver took nothing for ${this.config.timeout_ms} ms`, 'receiver')), this.config.timeout_ms);
      socket.write(frame, (error) => settle(error ?? undefined));
    });
  }

  private dropStream(): void {
    this.stream?.destroy();
    this.stream = undefined;
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
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      let immediate: NodeJS.Immediate | undefined;
      let sentAt: number | undefined;
      const settle = (error?: unknown): void => {
        if (settled) return;
        settled = true;
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
      };
      const forget = this.inFlight.add((error) => settle(error));
      this.waiting = settle;
      try {
        socket.send(bytes, (error) => {
          if (error || settled) {
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
    let address: { address: string; family: number };
    try {
      address = await lookup(this.host);
    } catch (error) {
      throw networkFailure(this.target, error, false);
    }
    if (this.closed) throw failure('HADES_ERR_ALERT_OUTPUT_UNREACHABLE', `${this.target}: the output was closed`, 'receiver');
    const socket = dgram.createSocket(address.family === 6 ? 'udp6' : 'udp4');
    this.datagrams = socket;
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (error?: unknown): void => {
        if (settled) return;
        settled = true;
        forget();
        socket.off('error', settle);
        if (error === undefined) {
          resolve();
          return;
        }
        this.dropDatagrams();
        reject(networkFailure(this.target, error, false));
      };
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
