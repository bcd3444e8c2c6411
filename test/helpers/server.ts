/**
 * Helpers for server integration tests: a real HadesServer on loopback (port 0 unless told
 * otherwise) with its logs kept, an HTTPS client of its API that trusts its CA, enrollment of
 * agent identities, valid events with unique ids, and a raw client of the agent gateway that
 * records every message the server sends.
 */
import { randomBytes, webcrypto } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { request } from 'node:https';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { parseConfig, ServerConfigSchema, type ServerConfig } from '../../src/common/config/index.js';
import { exampleEvent, type EventAction } from '../../src/common/events/index.js';
import { HadesError } from '../../src/common/errors.js';
import { enroll, type Identity } from '../../src/agent/transport/enroll.js';
import { gatewayService, NO_COMPRESS, type AgentMessage, type ServerMessage } from '../../src/runtime/gateway-proto.js';
import { Logger } from '../../src/runtime/log.js';
import { x509 } from '../../src/server/pki.js';
import { HadesServer, type ServerAddresses } from '../../src/server/server.js';
import type { AnyEvent } from './agent.js';

export const AGENT_VERSION = '0.1.0-test';

/** A fresh temporary folder; `cleanup` removes every folder made so far. */
const made: string[] = [];
export function tempDir(prefix = 'hades-server-'): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}
export function cleanupTempDirs(): void {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** A stream that keeps what is written, for logs (JSON lines). */
export class LogSink extends Writable {
  text = '';

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.text += chunk.toString('utf8');
    callback();
  }

  lines(): AnyEvent[] {
    return this.text
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => {
        try {
          return JSON.parse(l) as AnyEvent;
        } catch {
          return { unparsed: l };
        }
      });
  }
}

/** A logger that writes only to a sink (warnings and errors by default). */
export function sinkLogger(sink = new LogSink(), level: 'debug' | 'info' | 'warn' | 'error' = 'warn'): Logger {
  return Logger.fromConfig({ level, file: null, max_mb: 16, max_files: 1 }, { stream: sink });
}

/** Free loopback ports below the ephemeral range (all held until every one is known). */
export async function freePorts(count: number): Promise<number[]> {
  // Below the ephemeral range: a port released here (to be bound again after a restart) cannot
  // meanwhile become the source port of some outgoing connection.
  let ephemeral = 32768;
  try {
    ephemeral = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || ephemeral;
  } catch {
    // Not Linux, or no procfs: the usual lower bound.
  }
  const low = 10_000;
  const span = Math.max(1000, ephemeral - low - count);
  const servers: Server[] = [];
  try {
    for (let port = low + Math.floor(Math.random() * span), tries = 0; servers.length < count && tries < 5000; port = low + ((port - low + 1) % span), tries++) {
      const server = createServer();
      const bound = await new Promise<boolean>((resolve) => server.once('error', () => resolve(false)).listen(port, '127.0.0.1', () => resolve(true)));
      if (bound) servers.push(server);
    }
    if (servers.length < count) throw new Error(`no ${count} free ports below ${ephemeral}`);
    return servers.map((s) => (s.address() as AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  }
}

/** Waits for an asynchronous condition to give a value (not undefined/false). */
export async function waitUntil<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 15_000, stepMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new HadesError('HADES_ERR_INTERNAL', `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, stepMs));
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The value of `promise`, or undefined when it takes longer than `ms` (the timer is cleared either way). */
export async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export interface ApiResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: any;
  readonly text: string;
}

export interface ApiCall {
  /** Bearer token; the admin token by default, null for none. */
  readonly token?: string | null;
  /** JSON body. */
  readonly body?: unknown;
  /** A body sent as is (with content-type application/json unless headers say otherwise). */
  readonly raw?: string | Buffer;
  readonly headers?: Record<string, string>;
  readonly query?: Record<string, string | number | readonly string[] | undefined>;
}

/** Server configuration text for a data folder and listen addresses, plus extra YAML. */
export function serverConfigText(dataDir: string, listen: { agents: string; api: string }, extra = ''): string {
  return `data_dir: ${JSON.stringify(dataDir)}\nlisten: { agents: ${JSON.stringify(listen.agents)}, api: ${JSON.stringify(listen.api)} }\n${extra}`;
}

/** A HadesServer in this process, with its logs kept in `log`. */
export class TestServer {
  server: HadesServer | undefined;
  private addressesValue: ServerAddresses | undefined;
  readonly log = new LogSink();
  readonly config: ServerConfig;

  constructor(
    readonly dataDir: string = tempDir(),
    readonly listen: { agents: string; api: string } = { agents: '127.0.0.1:0', api: '127.0.0.1:0' },
    readonly extra = '',
  ) {
    const parsed = parseConfig(serverConfigText(dataDir, listen, extra), ServerConfigSchema);
    if (!parsed.ok) throw new HadesError('HADES_ERR_CONFIG_INVALID', JSON.stringify(parsed.problems));
    this.config = parsed.config;
  }

  static async start(options: { dataDir?: string; listen?: { agents: string; api: string }; extra?: string } = {}): Promise<TestServer> {
    const server = new TestServer(options.dataDir ?? tempDir(), options.listen, options.extra ?? '');
    await server.start();
    return server;
  }

  async start(): Promise<ServerAddresses> {
    if (this.server) throw new HadesError('HADES_ERR_INTERNAL', 'the test server is running already');
    const server = new HadesServer({ config: this.config, version: AGENT_VERSION, stderr: this.log });
    this.server = server;
    try {
      this.addressesValue = await server.start();
    } catch (error) {
      this.server = undefined;
      throw error;
    }
    return this.addressesValue;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    await server?.stop();
  }

  get addresses(): ServerAddresses {
    if (!this.addressesValue) throw new HadesError('HADES_ERR_INTERNAL', 'the test server was not started');
    return this.addressesValue;
  }

  /**
   * Writes a configuration file naming this running server (its data folder and addresses), as
   * `hades search`, `hades alerts` and the other API commands read one with --config; `extra`
   * is appended (a `cmdb:` section). Returns the file's path.
   */
  writeCliConfig(file: string, extra = ''): string {
    writeFileSync(file, serverConfigText(this.dataDir, { agents: this.addresses.gateway, api: this.addresses.api.replace(/^https:\/\//, '') }, extra));
    return file;
  }

  get caPem(): string {
    return readFileSync(path.join(this.dataDir, 'pki', 'ca.pem'), 'utf8');
  }

  get adminToken(): string {
    return this.addresses.adminToken;
  }

  /** A request to the API over HTTPS, trusting the server's CA. */
  api(method: string, route: string, call: ApiCall = {}): Promise<ApiResponse> {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(call.query ?? {})) {
      if (value === undefined) continue;
      for (const v of Array.isArray(value) ? value : [value]) params.append(key, String(v));
    }
    const qs = params.toString();
    const url = `${this.addresses.api}${route}${qs ? `?${qs}` : ''}`;
    const token = call.token === undefined ? this.adminToken : call.token;
    const payload = call.raw !== undefined ? Buffer.from(call.raw) : call.body === undefined ? undefined : Buffer.from(JSON.stringify(call.body));
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method,
          ca: this.caPem,
          headers: {
            accept: 'application/json',
            ...(token !== null ? { authorization: `Bearer ${token}` } : {}),
            ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
            ...call.headers,
          },
          timeout: 10_000,
        },
        (response) => {
          let text = '';
          response.setEncoding('utf8').on('data', (d: string) => (text += d));
          response.on('end', () => {
            let body: unknown = text;
            try {
              body = text ? JSON.parse(text) : null;
            } catch {
              // kept as text
            }
            resolve({ status: response.statusCode ?? 0, headers: response.headers, body, text });
          });
        },
      );
      req.on('timeout', () => req.destroy(new HadesError('HADES_ERR_SERVER_UNREACHABLE', `${method} ${url}: no answer`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** An API call that must succeed (200, or 201 for a POST or PUT that creates); returns the body. */
  async ok(method: string, route: string, call: ApiCall = {}): Promise<any> {
    const response = await this.api(method, route, call);
    if (response.status !== 200 && !(response.status === 201 && (method === 'POST' || method === 'PUT'))) throw new HadesError('HADES_ERR_INTERNAL', `${method} ${route}: HTTP ${response.status} ${response.text}`);
    return response.body;
  }

  /** A one-time enrollment token (admin API). */
  async enrollmentToken(ttl = '1h', group?: string): Promise<{ id: string; token: string; expires_at: string; ca_sha256: string }> {
    return (await this.ok('POST', '/api/v1/tokens/enrollment', { body: { ttl, ...(group ? { group } : {}) } })) as { id: string; token: string; expires_at: string; ca_sha256: string };
  }

  /** Enrolls an agent identity (as the agent does) in a fresh folder, with a fresh token unless given. */
  async enrollAgent(options: { token?: string; group?: string; dataDir?: string } = {}): Promise<Identity> {
    const token = options.token ?? (await this.enrollmentToken('1h', options.group)).token;
    return enroll({ dataDir: options.dataDir ?? tempDir('hades-agent-'), api: this.addresses.api, token, caSha256: this.addresses.caSha256, agentVersion: AGENT_VERSION });
  }

  /** Every event the search returns (following `next`), oldest first. */
  async searchAll(query: Record<string, string | number | readonly string[] | undefined>): Promise<AnyEvent[]> {
    const out: AnyEvent[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 100; page++) {
      const body = (await this.ok('GET', '/api/v1/events', { query: { since: '1h', limit: 10_000, order: 'asc', ...query, ...(cursor ? { cursor } : {}) } })) as { events: AnyEvent[]; next?: string };
      out.push(...body.events);
      if (!body.next) return out;
      cursor = body.next;
    }
    throw new HadesError('HADES_ERR_INTERNAL', 'too many pages');
  }
}

/**
 * Valid events of one kind, each with its own `event.id` (`<prefix>-<i>`) and a `@timestamp`
 * a second ago (inside the API's default search window).
 */
export function makeEvents(count: number, options: { action?: EventAction; prefix?: string; host?: string; extra?: (event: AnyEvent, index: number) => void } = {}): AnyEvent[] {
  const prefix = options.prefix ?? `t${randomBytes(6).toString('hex')}`;
  const timestamp = new Date(Date.now() - 1000).toISOString();
  return Array.from({ length: count }, (_, i) => {
    const event = structuredClone(exampleEvent(options.action ?? 'inventory_change')) as AnyEvent;
    event['@timestamp'] = timestamp;
    event['event'].id = `${prefix}-${i}`;
    event['event'].sequence = i;
    if (options.host) event['host'].name = options.host;
    options.extra?.(event, i);
    return event;
  });
}

export const ndjson = (lines: readonly (AnyEvent | string)[]): Buffer => Buffer.from(lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n');

/** One batch of events (or raw lines) as a transport sends it, numbered `seq`. */
export const batchOf = (events: readonly (AnyEvent | string)[], seq: number) => ({ firstSeq: seq, lastSeq: seq, events: events.length, data: ndjson(events) });

/** gRPC channel credentials of an agent identity (mutual TLS). */
export const identityCredentials = (identity: Pick<Identity, 'caPem' | 'keyPem' | 'certPem'>): grpc.ChannelCredentials =>
  grpc.credentials.createSsl(Buffer.from(identity.caPem), Buffer.from(identity.keyPem), Buffer.from(identity.certPem));

/** A CSR and its private key (P-256), as an agent makes them. */
export async function makeCsr(name = 'test-host'): Promise<{ csrPem: string; keyPem: string }> {
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256' } as const;
  const keys = await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: `CN=${name}`, keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } }, webcrypto);
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END PRIVATE KEY-----\n`;
  return { csrPem: csr.toString('pem'), keyPem };
}

/** How a gateway call ended. */
export interface CallEnd {
  readonly code: number;
  readonly details: string;
}

/**
 * A raw client of the agent gateway's Connect stream: writes AgentMessages, records every
 * ServerMessage, and how the call ended.
 */
export class GatewayStream {
  readonly messages: ServerMessage[] = [];
  readonly client: grpc.Client;
  readonly call: grpc.ClientDuplexStream<AgentMessage, ServerMessage>;
  end: CallEnd | undefined;
  /** Resolves when the call ends (an error status, or OK). */
  readonly ended: Promise<CallEnd>;
  private waiters: (() => void)[] = [];

  constructor(address: string, credentials: grpc.ChannelCredentials, options: grpc.ChannelOptions = {}) {
    const Client = gatewayService();
    this.client = new Client(address, credentials, options);
    this.call = (this.client as unknown as { Connect(): grpc.ClientDuplexStream<AgentMessage, ServerMessage> }).Connect();
    this.call.on('data', (message: ServerMessage) => {
      this.messages.push(message);
      this.notify();
    });
    this.ended = new Promise<CallEnd>((resolve) => {
      const finish = (end: CallEnd) => {
        if (this.end) return;
        this.end = end;
        resolve(end);
        this.notify();
      };
      this.call.on('error', (error: grpc.ServiceError) => finish({ code: error.code, details: error.details || error.message }));
      this.call.on('status', (status: grpc.StatusObject) => {
        // An OK status arrives without an error event.
        if (status.code === grpc.status.OK) finish({ code: status.code, details: status.details });
      });
    });
  }

  private notify(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  write(message: AgentMessage): void {
    this.call.write(message);
  }

  hello(hostname = 'raw-client'): void {
    this.write({ hello: { agent_version: AGENT_VERSION, hostname, addresses: [], os: 'Linux test', kernel: 'test', config_version: 0 } });
  }

  /** Sends a batch and waits for its Ack or Nack; `gzip`: in ndjson_gzip with its ndjson_size (and `data` in ndjson unless empty). */
  async batch(data: Buffer, lastSeq: number, events = 0, timeoutMs = 10_000, gzip?: { readonly data: Buffer; readonly size: number }): Promise<ServerMessage> {
    if (gzip) this.call.write({ batch: { first_seq: lastSeq, last_seq: lastSeq, events, ndjson: data, ndjson_gzip: gzip.data, ndjson_size: gzip.size } }, NO_COMPRESS);
    else this.write({ batch: { first_seq: lastSeq, last_seq: lastSeq, events, ndjson: data } });
    return this.next((m) => (m.ack !== undefined && String(m.ack.last_seq) === String(lastSeq)) || (m.nack !== undefined && String(m.nack.last_seq) === String(lastSeq)), timeoutMs);
  }

  /** The first message (received so far or later) that matches; rejects when the call ends first. */
  async next(match: (message: ServerMessage) => boolean, timeoutMs = 10_000, from = 0): Promise<ServerMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.slice(from).find(match);
      if (found) return found;
      if (this.end) throw new HadesError('HADES_ERR_SERVER_UNREACHABLE', `the call ended (${this.end.code}: ${this.end.details}) before the message came`);
      const left = deadline - Date.now();
      if (left <= 0) throw new HadesError('HADES_ERR_INTERNAL', 'timed out waiting for a message from the gateway');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  welcome(timeoutMs = 10_000): Promise<ServerMessage> {
    return this.next((m) => m.welcome !== undefined, timeoutMs);
  }

  /** Ends the call (if still open) and closes the channel. */
  close(): void {
    if (!this.end) this.call.cancel();
    this.client.close();
  }
}
