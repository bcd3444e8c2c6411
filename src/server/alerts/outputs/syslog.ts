/**
 * The syslog output: one RFC 5424 message per alert, over UDP (RFC 5426: one datagram each), TCP
 * (RFC 6587) or TLS (RFC 5425), the stream transports framed by octet counting
 * (`MSG-LEN SP SYSLOG-MSG`). The connection is opened at the first alert, kept, and opened again
 * after it fails (the queue's backoff paces the attempts).
 *
 *     <PRI>1 TIMESTAMP HOSTNAME APP-NAME - MSGID [hades@32473 alert_id=".." rule=".." severity=".." host=".." host_id=".." count=".."] MSG
 *
 * PRI is facility * 8 + severity (critical 2, high 3, medium 4, low 5, info 6); TIMESTAMP is when
 * the alert was raised; MSGID is the rule id; MSG is the alert document as JSON, written in ASCII
 * (characters beyond it as \u escapes), so it parses as JSON and needs no byte order mark. Syslog
 * has no acknowledgement: a message is delivered once the kernel took it, so what a receiver
 * loses as it goes down cannot be known here.
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
/** Characters kept of each structured data value. */
const SD_VALUE_CHARS = 255;

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
  const pri = SYSLOG_FACILITIES.indexOf(format.facility) * 8 + (SYSLOG_SEVERITY[alert.rule.severity] ?? 6);
  const time = new Date(alert['@timestamp']);
  const timestamp = Number.isNaN(time.getTime()) ? new Date().toISOString() : time.toISOString();
  const sd =
    `[${SD_ID}` +
    param('alert_id', alert.id) +
    param('rule', alert.rule.id) +
    param('severity', alert.rule.severity) +
    param('host', alert.host.name) +
    param('host_id', alert.host.id) +
    param('count', String(alert.count)) +
    ']';
  const header = `<${pri}>1 ${timestamp} ${headerField(format.hostname, 255)} ${headerField(format.appName, 48)} - ${headerField(alert.rule.id, 32)} ${sd} `;
  const headerBytes = Buffer.byteLength(header);
  let msg = asciiJson(json);
  if (headerBytes + msg.length <= format.maxBytes) return { bytes: Buffer.from(header + msg), truncated: false };
  // The triggering events are most of a large alert, and the alert is still valid JSON without them.
  msg = asciiJson(JSON.stringify({ ...alert, events: [] }));
  const whole = Buffer.from(header + msg);
  return { bytes: whole.length <= format.maxBytes ? whole : cutUtf8(whole, format.maxBytes), truncated: true };
}

/** An SD-PARAM with its value escaped (`"`, `\` and `]` take a backslash) and control characters blanked. */
function param(name: string, value: string): string {
  const cut = value.length > SD_VALUE_CHARS ? value.slice(0, SD_VALUE_CHARS) : value;
  return ` ${name}="${cut.replace(/\p{Cc}/gu, ' ').replace(/["\\\]]/g, '\\$&')}"`;
}

/** A header field: printable ASCII without spaces (PRINTUSASCII), bounded, or the NILVALUE. */
function headerField(value: string, max: number): string {
  return value.replace(/[^!-~]/g, '_').slice(0, max) || '-';
}

/** JSON text with every character beyond ASCII as a \u escape: the same value, in plain ASCII. */
export function asciiJson(json: string): string {
  return json.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The longest prefix of at most `max` bytes that does not split a UTF-8 character. */
function cutUtf8(bytes: Buffer, max: number): Buffer {
  let end = max;
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
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
      const socket =
        this.config.transport === 'tls'
          ? tls.connect({ host: this.host, port: this.port, ...(net.isIP(this.host) ? {} : { servername: this.host }), ...this.tls })
          : net.connect({ host: this.host, port: this.port });
      let settled = false;
      const settle = (error?: unknown): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
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
      const timer = setTimeout(() => settle(failure('HADES_ERR_ALERT_OUTPUT_TIMEOUT', `${this.target}: no connection within ${this.config.timeout_ms} ms`, 'receiver')), this.config.timeout_ms);
      socket.once(this.config.transport === 'tls' ? 'secureConnect' : 'connect', () => {
        socket.setNoDelay(true);
        socket.setKeepAlive(true, 60_000);
        // A receiver sends nothing, but what it might send (a TLS close_notify) must be read.
        socket.resume();
        settle();
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

  private async sendDatagram(bytes: Buffer): Promise<void> {
    const socket = this.datagrams ?? (await this.openDatagrams());
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (error?: unknown): void => {
        if (settled) return;
        settled = true;
        forget();
        if (error === undefined) {
          resolve();
          return;
        }
        // A connected UDP socket reports an earlier datagram's ICMP "port unreachable" here.
        this.dropDatagrams();
        reject(networkFailure(this.target, error, false));
      };
      const forget = this.inFlight.add((error) => settle(error));
      try {
        socket.send(bytes, (error) => settle(error ?? undefined));
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
    socket.on('error', () => {
      if (this.datagrams === socket) this.dropDatagrams();
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
