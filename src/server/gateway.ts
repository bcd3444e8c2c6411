/**
 * The agent gateway: a gRPC server over mutual TLS with one bidirectional stream per agent
 * (proto/hades/agent/v1/gateway.proto). TLS checks that the client certificate comes from the
 * server's CA; then each stream is authorised against the fleet registry (unknown or revoked
 * agents are refused), batches are checked line by line (by the `prepare` hook, off the main
 * thread), stored, and acknowledged once the store committed them. Configuration and tasks go back on the same stream, and so do the
 * answers to the agent's certificate renewal requests.
 *
 * Nothing an agent sends can crash the server: a message that does not decode ends that call
 * with a gRPC error, a batch that is malformed or too large is refused with a coded Nack, and
 * the stream goes on.
 */
import * as http2 from 'node:http2';
import { performance } from 'node:perf_hooks';
import type { PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { HadesError, toHadesError } from '../common/errors.js';
import { channelOptions, gatewayService, NDJSON_GZIP, type AgentMessage, type BatchMessage, type HelloMessage, type ServerMessage } from '../runtime/gateway-proto.js';
import type { Logger } from '../runtime/log.js';
import type { BatchSeq } from './ingest/protocol.js';
import { jsonProblem, MAX_JSON_BYTES, MAX_RESULT_BYTES } from './fleet/registry.js';

export interface IngestResult {
  readonly stored: number;
  readonly duplicates: number;
}

/** A batch after its check: how many lines were left out, or why the whole batch is refused. */
export interface PreparedBatch {
  readonly rejected: number;
  readonly refused?: HadesError;
}

/** What the gateway needs from the rest of the server. */
export interface GatewayHooks<P extends PreparedBatch = PreparedBatch, R extends IngestResult = IngestResult> {
  /** Maps a verified peer certificate to an agent; throws HADES_ERR_AGENT_UNKNOWN / _REVOKED. */
  authorize(peer: PeerCertificate): { agentId: string };
  /**
   * Checks a batch (its NDJSON) line by line and makes it ready for the store, off the main
   * thread: the valid events, how many lines were not, or why the whole batch is refused (a
   * permanent Nack). Rejects (HADES_ERR_INGEST_WORKER) when it cannot check it now: no Ack, the
   * agent sends the batch again. `inflated`: `ndjson` is the gzip the agent made of it
   * (EventBatch.ndjson_gzip), which inflates to that many bytes (its ndjson_size). `arrived`:
   * when the batch was received (ms). `seq`: the agent's spool sequence numbers of the batch's
   * first and last events, when they are whole numbers in order (batchSeq).
   */
  prepare(agentId: string, ndjson: Uint8Array, inflated: number | undefined, arrived: number, seq: BatchSeq | undefined): Promise<P>;
  /**
   * Stores a prepared batch, inside the turn's transaction when there is one (see `group`);
   * throws HADES_ERR_STORE_WRITE when it cannot (no Ack is sent).
   */
  store(agentId: string, prepared: P): R;
  /**
   * Every prepared batch ends here once: after its commit with what was stored, or undefined when
   * it was refused or not stored. Detection starts from here.
   */
  settled?(agentId: string, prepared: P, result: R | undefined, arrived: number): void;
  onHello?(agentId: string, hello: HelloMessage): void;
  onHeartbeat?(agentId: string, health: unknown): void;
  onTaskResult?(agentId: string, taskId: string, status: string, result: unknown): void;
  /** Whether the agent has that task open: a result for any other is dropped before it is read. */
  awaitsTaskResult?(agentId: string, taskId: string): boolean;
  onOnline?(agentId: string, online: boolean): void;
  /**
   * A certificate request from the agent, for a new key; `peer` is the certificate (DER) the
   * stream is authenticated with. Resolves to the new certificate (PEM); throws a coded error.
   */
  renew?(agentId: string, csrPem: string, peer: Uint8Array): Promise<string>;
  /**
   * Group commit: the batches handled in one turn of the event loop are stored in one transaction
   * (`run` begins it, runs the work, commits). Each batch is acknowledged only after that commit;
   * when it fails, every batch of the turn is answered with a temporary Nack and sent again.
   */
  group?(work: () => void): void;
}

export interface GatewayOptions<P extends PreparedBatch = PreparedBatch, R extends IngestResult = IngestResult> {
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
  readonly serverVersion: string;
  readonly log: Logger;
  readonly hooks: GatewayHooks<P, R>;
}

export interface GatewayStats {
  connected: number;
  batches: number;
  events: number;
  duplicates: number;
  rejected: number;
  nacks: number;
  refusedConnections: number;
  renewals: number;
  renewalsRefused: number;
  /** Batches stored that the agent had compressed itself (EventBatch.ndjson_gzip). */
  compressedBatches: number;
}

type Stream = grpc.ServerDuplexStream<AgentMessage, ServerMessage>;

/** A job's outcome, held until its turn's commit: settle (resolve or reject as it ran), or fail. */
interface Settled {
  readonly settle: () => void;
  readonly fail: (error: HadesError) => void;
  /** A store write failed: the turn's transaction must be rolled back. */
  readonly abort?: HadesError;
}

/** A batch's sequence numbers, when they are whole numbers from 1, in order (as an agent numbers them). */
export function batchSeq(batch: Pick<BatchMessage, 'first_seq' | 'last_seq'>): BatchSeq | undefined {
  const first = Number(batch.first_seq);
  const last = Number(batch.last_seq);
  return Number.isSafeInteger(first) && Number.isSafeInteger(last) && first >= 1 && first <= last ? { first, last } : undefined;
}

/**
 * Longest stretch (ms) of storing batches before the event loop serves sockets again, and so the
 * most work one commit holds. Each commit writes every page it dirtied whole to the WAL, and the
 * indexes on executable, user and destination take a page per distinct value in it: commits of
 * 2,000 events cost 30 us of CPU an event against 36 us for commits of 500 in
 * bench/group-commit.ts (docs/perf.md, "The session of 2026-12-02 06:40 UTC"). 50 ms is far below
 * anything a socket times out on.
 */
const SLICE_MS = 50;

/** gRPC says only "No address added out of total 1 resolved errors": say what it usually means. */
function listenError(address: string, error: Error): HadesError {
  const cause = /EADDRINUSE/.test(error.message) ? 'the port is in use' : /EADDRNOTAVAIL/.test(error.message) ? 'the address is not one of this host\'s' : 'the port is in use, or the address is not this host\'s';
  return new HadesError('HADES_ERR_SERVER_LISTEN', `the agent gateway cannot listen on ${address}: ${cause} (${error.message})`, { cause: error });
}

/** Ends a call with a gRPC status (grpc-js sends the status of an 'error' whose code is a number). */
/**
 * Messages the server may have written to an agent's stream that the agent has not read yet
 * (the stream counts messages, not bytes): Acks, configurations and tasks. An agent reading its
 * stream leaves none waiting for long.
 */
const MAX_UNREAD_MESSAGES = 4096;

/**
 * Messages of one stream the gateway takes in before it has handled them: past this, it stops
 * reading the stream (HTTP/2 flow control then holds the agent's writes back) until it catches
 * up. An agent sends one batch at a time and waits for its Ack; one that sends faster than the
 * server stores is not let to fill the server's memory. With what the stream itself reads ahead
 * (its readable buffer of 16 messages), a stream holds at most 20 messages of at most 8 MiB.
 */
const MAX_QUEUED_MESSAGES = 4;
/** The gateway's and the API's TLS handshake must end within this (Node's default: two minutes). */
export const TLS_HANDSHAKE_TIMEOUT_MS = 20_000;
/** The address of a gRPC peer (`10.0.0.5:51234`, `[2001:db8::5]:51234`), without its port. */
const hostOf = (peer: string): string => peer.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
/** An agent's stream replaced this many times within the window, from more than one address, is said (noteReplaced), at most every ten minutes. */
const REPLACED_WARN_COUNT = 5;
const REPLACED_WINDOW_MS = 60_000;
const REPLACED_WARN_EVERY_MS = 600_000;
const MAX_REPLACED_TRACKED = 10_000;

/**
 * How long (ms) a stream the server ended may take to send its status: it goes after what was
 * written before it, which an agent that does not read holds back for ever.
 */
const END_GRACE_MS = 2000;

function endWithStatus(stream: Stream, code: grpc.status, details: string): void {
  stream.emit('error', { code, details, metadata: new grpc.Metadata() });
}

/**
 * Closes a call's HTTP/2 stream at once (RST_STREAM, CANCEL), without the status. grpc-js has no
 * public way to do it on the server's side: this reaches its call object, and does nothing where
 * a later version put it elsewhere (the gateway has stopped handling the stream's messages anyway).
 */
function cancelCall(stream: Stream): void {
  let call = (stream as unknown as { call?: unknown }).call;
  for (let depth = 0; depth < 8 && call !== null && typeof call === 'object'; depth++) {
    const h2 = (call as { stream?: { close?: unknown; closed?: boolean; destroyed?: boolean } }).stream;
    if (h2 !== undefined && typeof h2.close === 'function') {
      if (h2.closed !== true && h2.destroyed !== true) (h2.close as (code: number) => void).call(h2, http2.constants.NGHTTP2_CANCEL);
      return;
    }
    call = (call as { nextCall?: unknown }).nextCall;
  }
}

/**
 * The gateway's TLS credentials (the CA that issues agent certificates, which every client must
 * present, and the server's certificate and key), with a certificate that can be replaced while
 * the gateway listens: a renewed server certificate goes to new connections, streams open stay
 * as they are. grpc-js's own createSsl cannot change its certificate; its ServerCredentials
 * base class tells the HTTP/2 servers it made of each update (setSecureContext).
 */
class RenewableServerCredentials extends grpc.ServerCredentials {
  #ca: Buffer;

  constructor(caPem: string, certPem: string, keyPem: string) {
    // As createSsl(ca, [pair], true) makes them: a client certificate from this CA is required.
    // A connection that has not finished its TLS handshake in time is closed: idle sockets
    // opened by anyone who can reach the gateway would otherwise hold descriptors for Node's
    // two minutes each.
    super({ requestCert: true, rejectUnauthorized: true, handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS }, { ca: Buffer.from(caPem), cert: [Buffer.from(certPem)], key: [Buffer.from(keyPem)] });
    this.#ca = Buffer.from(caPem);
  }

  /** New connections present this certificate from now on (and, given, take client certificates of these CAs). */
  use(certPem: string, keyPem: string, caPem?: string): void {
    if (caPem !== undefined) this.#ca = Buffer.from(caPem);
    this.updateSecureContextOptions({ ca: this.#ca, cert: [Buffer.from(certPem)], key: [Buffer.from(keyPem)] });
  }

  _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}

export class Gateway<P extends PreparedBatch = PreparedBatch, R extends IngestResult = IngestResult> {
  private readonly server = new grpc.Server({ ...channelOptions });
  private readonly streams = new Map<string, Stream>();
  /** Agents whose stream was replaced lately (noteReplaced). */
  private readonly replaced = new Map<string, { since: number; count: number; warnedAt: number; peers: Set<string> }>();
  /** Streams that said hello (once per stream: each hello sends the configuration and tasks again). */
  private readonly greeted = new WeakSet<Stream>();
  /**
   * Streams the server has ended (their agent revoked, another stream of the same agent opened,
   * or the agent not reading): nothing more they send is read or handled, even while their
   * status waits behind what they have not read.
   */
  private readonly ended = new WeakSet<Stream>();
  /** The messages of every stream being handled or waiting their turn. */
  private readonly inFlight = new Set<Promise<void>>();
  private closing = false;
  readonly stats: GatewayStats = { connected: 0, batches: 0, events: 0, duplicates: 0, rejected: 0, nacks: 0, refusedConnections: 0, renewals: 0, renewalsRefused: 0, compressedBatches: 0 };
  /** The protocol features the Welcome announces (a test takes them away to play an older server). */
  features: readonly string[] = [NDJSON_GZIP];
  port = 0;

  constructor(private readonly options: GatewayOptions<P, R>) {
    this.credentials = new RenewableServerCredentials(options.caPem, options.certPem, options.keyPem);
    this.server.addService(gatewayService().service, { Connect: (stream: Stream) => this.connect(stream) });
  }

  private readonly credentials: RenewableServerCredentials;

  async listen(address: string): Promise<number> {
    const credentials = this.credentials;
    this.port = await new Promise<number>((resolve, reject) => {
      this.server.bindAsync(address, credentials, (error, port) => (error ? reject(listenError(address, error)) : resolve(port)));
    });
    return this.port;
  }

  /** A renewed server certificate: presented to every connection from now on (open streams go on). */
  useServerCertificate(certPem: string, keyPem: string): void {
    this.credentials.use(certPem, keyPem);
  }

  /**
   * New TLS settings after a CA rotation step: the CAs whose client certificates the TLS layer
   * lets through (PEM, one after another), and the server certificate. New connections get them;
   * open streams go on.
   */
  useTls(caPem: string, certPem: string, keyPem: string): void {
    this.credentials.use(certPem, keyPem, caPem);
  }

  /** The agents with a stream now. */
  connectedAgents(): string[] {
    return [...this.streams.keys()];
  }

  /** Sends a message to a connected agent; false when it is not connected. */
  send(agentId: string, message: ServerMessage): boolean {
    const stream = this.streams.get(agentId);
    if (!stream) return false;
    return this.write(stream, message);
  }

  /**
   * Every message to an agent goes through here: an agent that does not read what it is sent
   * (Acks, Nacks, configurations, tasks) is not let to pile it up in the server's memory.
   */
  private write(stream: Stream, message: ServerMessage): boolean {
    // Ended (revoked, replaced): the Ack of a batch begun before has nowhere to go.
    if (stream.writableEnded) return false;
    if (stream.writableLength > MAX_UNREAD_MESSAGES) {
      if (!stream.destroyed && !this.ended.has(stream)) {
        this.options.log.warn('agent stream closed: it does not read what the server sends', { code: 'HADES_ERR_STREAM_MESSAGE_TOO_LARGE', peer: stream.getPeer(), unread_messages: stream.writableLength });
        this.end(stream, { code: grpc.status.RESOURCE_EXHAUSTED, details: new HadesError('HADES_ERR_STREAM_MESSAGE_TOO_LARGE', `more than ${MAX_UNREAD_MESSAGES} messages sent to the agent are unread`).toLine() });
      }
      return false;
    }
    stream.write(message);
    return true;
  }

  isConnected(agentId: string): boolean {
    return this.streams.has(agentId);
  }

  /** Ends one agent's stream (it was revoked) with PERMISSION_DENIED and the coded reason. */
  disconnect(agentId: string, error: HadesError): void {
    const stream = this.streams.get(agentId);
    if (!stream) return;
    this.end(stream, { code: grpc.status.PERMISSION_DENIED, details: error.toLine() });
  }

  /**
   * Ends a stream the server is done with: with `status` (an error), or OK. What the agent sends
   * from now on is neither read nor handled (a revoked agent stores nothing more, whatever it
   * does), and a call whose status cannot go out (the agent reads nothing, so what was written
   * before it never leaves) is closed after END_GRACE_MS without it.
   */
  private end(stream: Stream, status?: { code: grpc.status; details: string }): void {
    if (this.ended.has(stream)) return;
    this.ended.add(stream);
    stream.pause();
    if (status) endWithStatus(stream, status.code, status.details);
    else stream.end();
    if (stream.writableFinished) return;
    const timer = setTimeout(() => cancelCall(stream), END_GRACE_MS);
    timer.unref();
    const done = () => clearTimeout(timer);
    stream.once('finish', done);
    stream.once('close', done);
  }

  /**
   * Streams of one agent replacing each other again and again are two hosts with one identity
   * (a cloned disk image, a copied data folder): each ends the other's stream, both reconnect,
   * and the events of both arrive under one agent. Said once every ten minutes per agent.
   */
  private noteReplaced(agentId: string, before: string, now: string): void {
    const at = Date.now();
    let seen = this.replaced.get(agentId);
    if (seen === undefined || at - seen.since > REPLACED_WINDOW_MS) {
      if (this.replaced.size >= MAX_REPLACED_TRACKED) this.replaced.clear();
      seen = { since: at, count: 0, warnedAt: seen?.warnedAt ?? 0, peers: new Set() };
      this.replaced.set(agentId, seen);
    }
    seen.count++;
    // By address, not port: one host whose connection flaps reconnects from new ports.
    if (seen.peers.size < 8) seen.peers.add(hostOf(before)).add(hostOf(now));
    if (seen.count >= REPLACED_WARN_COUNT && seen.peers.size > 1 && at - seen.warnedAt > REPLACED_WARN_EVERY_MS) {
      seen.warnedAt = at;
      this.options.log.warn('one agent identity connects from more than one place: two hosts may share it (a cloned image or data folder); give each its own with hades server token create and a fresh agent data folder', {
        code: 'HADES_ERR_AGENT_DUPLICATE',
        agent: agentId,
        replaced: seen.count,
        peers: [...seen.peers].join(' '),
      });
    }
  }

  private connect(stream: Stream): void {
    const { log, hooks } = this.options;
    let agentId: string;
    let peerDer: Uint8Array;
    try {
      const peer = stream.getAuthContext().sslPeerCertificate;
      if (!peer || !peer.raw) throw new HadesError('HADES_ERR_AGENT_UNKNOWN', 'no client certificate');
      agentId = hooks.authorize(peer).agentId;
      peerDer = new Uint8Array(peer.raw);
    } catch (error) {
      const e = toHadesError(error);
      this.stats.refusedConnections++;
      log.warn('agent connection refused', { err: e, peer: stream.getPeer() });
      endWithStatus(stream, grpc.status.PERMISSION_DENIED, e.toLine());
      return;
    }
    // A second stream of the same agent replaces the first (it reconnected before the old one timed out).
    const previous = this.streams.get(agentId);
    if (previous) {
      this.noteReplaced(agentId, previous.getPeer(), stream.getPeer());
      this.end(previous);
    }
    this.streams.set(agentId, stream);
    this.stats.connected = this.streams.size;
    // The welcome goes first: what being online sends (configuration, tasks) comes after it.
    stream.write({ welcome: { agent_id: agentId, server_version: this.options.serverVersion, features: [...this.features] } });
    this.online(agentId, true);
    // Batches are handled in order: an Ack must never overtake the Ack of an earlier batch.
    let chain: Promise<void> = Promise.resolve();
    // Messages taken in and not yet handled: past MAX_QUEUED_MESSAGES the stream is not read.
    let queued = 0;
    stream.on('data', (message: AgentMessage) => {
      if (this.ended.has(stream)) return;
      if (++queued >= MAX_QUEUED_MESSAGES) stream.pause();
      const next = chain
        // Once the gateway closes, a batch not begun is left for the agent to send again; once
        // the stream is ended (its agent revoked), nothing of it is.
        .then(() => (this.ended.has(stream) || (this.closing && message.batch) ? undefined : this.handle(agentId, stream, message, peerDer)))
        .catch((error: unknown) => {
          log.error('agent message not handled', { agent: agentId, err: toHadesError(error) });
        })
        .finally(() => {
          if (--queued < MAX_QUEUED_MESSAGES && !this.ended.has(stream) && stream.isPaused()) stream.resume();
        });
      chain = next;
      this.inFlight.add(next);
      void next.finally(() => this.inFlight.delete(next));
    });
    const gone = () => {
      if (this.streams.get(agentId) !== stream) return;
      this.streams.delete(agentId);
      this.stats.connected = this.streams.size;
      this.online(agentId, false);
    };
    stream.on('end', () => {
      gone();
      stream.end();
    });
    stream.on('error', gone);
    stream.on('close', gone);
  }

  /**
   * Tells the fleet an agent came or went. Called from stream events, where a throw (the
   * database full or locked) would end the whole server: it is logged, and the next heartbeat
   * or connection tells again.
   */
  private online(agentId: string, online: boolean): void {
    try {
      this.options.hooks.onOnline?.(agentId, online);
    } catch (error) {
      this.options.log.error('agent state not recorded', { agent: agentId, online, err: toHadesError(error) });
    }
  }

  private async handle(agentId: string, stream: Stream, message: AgentMessage, peer: Uint8Array): Promise<void> {
    const { hooks } = this.options;
    if (message.hello) {
      if (this.greeted.has(stream)) {
        this.nack(stream, 0, new HadesError('HADES_ERR_STREAM_MESSAGE_INVALID', 'a stream says hello once'), true);
        return;
      }
      try {
        hooks.onHello?.(agentId, message.hello);
        this.greeted.add(stream);
      } catch (error) {
        // A hello the registry refuses (an empty host name): the agent is told, with the reason;
        // a database that cannot record it is the server's trouble, said as such.
        const refused = toHadesError(error);
        if (refused.kind !== 'input') this.options.log.error('agent hello not recorded', { agent: agentId, err: refused });
        this.nack(stream, 0, refused.kind === 'input' ? new HadesError('HADES_ERR_STREAM_MESSAGE_INVALID', `hello refused: ${refused.message}`) : refused, true);
      }
    } else if (message.batch) {
      await this.batch(agentId, stream, message.batch);
    } else if (message.heartbeat) {
      // Checked before it is parsed here, on the main thread: a few KB of gzip may inflate to
      // megabytes of nesting that take JSON.parse seconds.
      const text = message.heartbeat.health_json;
      const refused = jsonProblem(text, 'health_json', MAX_JSON_BYTES);
      if (refused !== undefined) {
        this.nack(stream, 0, new HadesError(refused.code, `heartbeat refused: ${refused.message}`), true);
        return;
      }
      let health: unknown;
      try {
        health = JSON.parse(text);
      } catch {
        this.nack(stream, 0, new HadesError('HADES_ERR_STREAM_MESSAGE_INVALID', 'heartbeat health_json is not JSON'), true);
        return;
      }
      try {
        hooks.onHeartbeat?.(agentId, health);
      } catch (error) {
        // A heartbeat the registry refuses (not an object, over 64 KiB) is the agent's to hear
        // of, like one that is not JSON, not a line of the server's error log at each beat.
        const e = toHadesError(error);
        if (e.code !== 'HADES_ERR_STREAM_MESSAGE_INVALID' && e.code !== 'HADES_ERR_STREAM_MESSAGE_TOO_LARGE') throw error;
        this.nack(stream, 0, new HadesError(e.code, `heartbeat refused: ${e.message}`), true);
      }
    } else if (message.task_result) {
      const { task_id, status, result_json } = message.task_result;
      // A result for a task the agent does not have open is dropped unread.
      if (hooks.awaitsTaskResult?.(agentId, task_id) === false) return;
      const refused = jsonProblem(result_json, 'the task result', MAX_RESULT_BYTES);
      if (refused !== undefined) {
        // The task fails with the reason, instead of waiting for its deadline.
        hooks.onTaskResult?.(agentId, task_id, 'failed', { code: refused.code, message: refused.message });
        return;
      }
      let result: unknown = null;
      try {
        result = result_json ? JSON.parse(result_json) : null;
      } catch {
        result = { raw: result_json.slice(0, 4096) };
      }
      hooks.onTaskResult?.(agentId, task_id, status, result);
    } else if (message.renew) {
      await this.renew(agentId, stream, message.renew.csr, peer);
    } else {
      this.nack(stream, 0, new HadesError('HADES_ERR_STREAM_MESSAGE_INVALID', 'empty message'), true);
    }
  }

  /** Answers a renewal request on its stream: the certificate, or the coded refusal. */
  private async renew(agentId: string, stream: Stream, csrPem: string, peer: Uint8Array): Promise<void> {
    const { hooks } = this.options;
    try {
      if (!hooks.renew) throw new HadesError('HADES_ERR_NOT_YET_AVAILABLE', 'this server does not renew certificates');
      const certificate = await hooks.renew(agentId, csrPem, peer);
      this.stats.renewals++;
      this.write(stream, { renew: { certificate } });
    } catch (error) {
      const e = toHadesError(error);
      this.stats.renewalsRefused++;
      this.write(stream, { renew: { error: { code: e.code, message: e.message } } });
    }
  }

  private nack(stream: Stream, lastSeq: string | number, error: HadesError, permanent: boolean): void {
    this.stats.nacks++;
    this.write(stream, { nack: { last_seq: lastSeq, code: error.code, message: error.message, permanent } });
  }

  /**
   * Runs `job` (synchronous work) in its turn: jobs of every stream run one after another, and
   * after SLICE_MS of them the event loop gets its turn before the next. Without it, a burst of
   * batches (gRPC hands over the batches of many streams in one go, as their decompression ends)
   * is stored back to back for seconds: no socket is read or written meanwhile, Acks
   * leave in bursts, and agents give up on their keepalive pings and drop the connection.
   */
  private inTurn<T>(job: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      // A job gives back how to settle its promise: settling waits for the turn's commit.
      const run = (): Settled => {
        try {
          const value = job();
          return { settle: () => resolve(value), fail: (error: HadesError) => reject(error) };
        } catch (error) {
          const e = toHadesError(error);
          // A write that failed half way leaves part of a batch in the turn's transaction: the
          // whole turn is rolled back, so no batch is stored in part.
          return { settle: () => reject(e), fail: () => reject(e), ...(e.code === 'HADES_ERR_STORE_WRITE' ? { abort: e } : {}) };
        }
      };
      this.jobs.push({ run, reject });
      if (!this.draining) {
        this.draining = true;
        setImmediate(this.drain);
      }
    });
  }

  private readonly jobs: { readonly run: () => Settled; readonly reject: (error: HadesError) => void }[] = [];
  private draining = false;
  private readonly drain = (): void => {
    const start = performance.now();
    const done: Settled[] = [];
    let started = false;
    const slice = (): void => {
      started = true;
      let next: (typeof this.jobs)[number] | undefined;
      while ((next = this.jobs.shift()) !== undefined) {
        const outcome = next.run();
        done.push(outcome);
        if (outcome.abort && this.options.hooks.group) throw outcome.abort;
        if (performance.now() - start >= SLICE_MS) break;
      }
    };
    try {
      const { hooks } = this.options;
      if (hooks.group) hooks.group(slice);
      else slice();
      for (const d of done) d.settle();
    } catch (error) {
      // The turn's commit failed: nothing of it is stored, and its batches will come again.
      const e = new HadesError('HADES_ERR_STORE_WRITE', `the batches of this turn could not be committed: ${toHadesError(error).message}`, { cause: error });
      this.options.log.error('group commit failed', { err: e, batches: done.length });
      for (const d of done) d.fail(e);
      // The transaction could not even begin (the database stays locked): every waiting batch is
      // answered now, rather than held while each new attempt blocks for the busy timeout.
      if (!started) for (const job of this.jobs.splice(0)) job.reject(e);
    }
    if (this.jobs.length > 0) setImmediate(this.drain);
    else this.draining = false;
  };

  private async batch(agentId: string, stream: Stream, batch: BatchMessage): Promise<void> {
    const { hooks } = this.options;
    const { last_seq: lastSeq } = batch;
    const arrived = Date.now();
    const gzip = batch.ndjson_gzip;
    const compressed = gzip !== undefined && gzip.length > 0;
    if (compressed && batch.ndjson.length > 0) {
      this.nack(stream, lastSeq, new HadesError('HADES_ERR_STREAM_MESSAGE_INVALID', 'a batch has both ndjson and ndjson_gzip'), true);
      return;
    }
    let prepared: P;
    try {
      const seq = batchSeq(batch);
      prepared = compressed ? await hooks.prepare(agentId, gzip, batch.ndjson_size ?? 0, arrived, seq) : await hooks.prepare(agentId, batch.ndjson, undefined, arrived, seq);
    } catch (error) {
      // Not checked now (the ingest worker is starting again): the agent sends the batch again.
      this.nack(stream, lastSeq, toHadesError(error), false);
      return;
    }
    const { rejected } = prepared;
    if (prepared.refused) {
      this.nack(stream, lastSeq, prepared.refused, true);
      this.stats.rejected += rejected;
      hooks.settled?.(agentId, prepared, undefined, arrived);
      return;
    }
    let result: R;
    try {
      result = await this.inTurn(() => hooks.store(agentId, prepared));
    } catch (error) {
      // Not stored: no Ack, the agent keeps the batch and sends it again; unless the store found
      // an event it can never take (the lines' check should have left it out): sent again, it
      // would hold up everything behind it for ever.
      const e = toHadesError(error);
      hooks.settled?.(agentId, prepared, undefined, arrived);
      this.nack(stream, lastSeq, e, e.code === 'HADES_ERR_EVENT_INVALID');
      return;
    }
    this.stats.batches++;
    if (compressed) this.stats.compressedBatches++;
    this.stats.events += result.stored;
    this.stats.duplicates += result.duplicates;
    this.stats.rejected += rejected;
    this.write(stream, { ack: { last_seq: lastSeq, stored: result.stored, duplicates: result.duplicates, rejected } });
    hooks.settled?.(agentId, prepared, result, arrived);
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const stream of this.streams.values()) stream.end();
    this.streams.clear();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, 2000);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    // A batch begun before is finished (stored and settled, or refused): the server closes its
    // ingest worker and database only after.
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }
}
