/**
 * The server output's transport: one gRPC stream to the agent gateway over mutual TLS
 * (proto/hades/agent/v1/gateway.proto), used by a SpooledChannel. `send()` writes a batch and
 * resolves when the server's Ack for it arrives (after its database commit); a lost stream
 * rejects it, and the channel retries from its spool with backoff and jitter. Addresses go in
 * order of preference: a new stream starts at the first, and an attempt that fails moves on to
 * the next, so agents fail over between servers; a stream on a later address checks the earlier
 * ones now and then (a TLS connection with the agent's identity, no stream) and moves back, once
 * no batch waits for its Ack, to one that answers. An Ack that does not come within
 * `ackTimeoutMs` (a server whose ingest is stuck, or one frozen behind something that keeps the
 * connection up) ends the stream: the batch is retried on a new stream, from the next address,
 * and that address is held down (holds.ts): streams neither start there nor move back there
 * until its hold ends, however well it answers a connection.
 * Configuration and tasks from the server are handed to the agent; heartbeats go the other way.
 *
 * With `renewal`, the transport also renews the agent's certificate on the stream
 * (renewal.ts). A renewed identity is used from the next connection: after a random delay (up
 * to `renewal.jitterMs`, so that a fleet asked at once does not reconnect at once), once no
 * batch waits for its Ack, the stream is ended cleanly and a new one opened with the new
 * certificate. No batch is in flight at that moment, so nothing is sent twice.
 *
 * A CA rotation on the server: its CaTrust message gives the CAs to trust and the one that
 * issues now. They are stored in the identity folder (enroll.ts, saveTrustedCas) and used from
 * the next connection (the stream goes on); a certificate of another CA is renewed as if the
 * server had asked (after the renewal's random delay). A server whose certificate is of a CA the
 * agent does not trust (its old CA retired while the agent was offline) is reported with
 * HADES_ERR_SERVER_CA_UNTRUSTED and what to do, and one that refuses the agent's certificate as
 * of a retired CA with HADES_ERR_CA_RETIRED.
 */
import { createHash, X509Certificate } from 'node:crypto';
import os from 'node:os';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { HadesError, toHadesError } from '../../common/errors.js';
import { pemCertificates } from '../../common/pem.js';
import { channelOptions, gatewayService, NDJSON_GZIP, NO_COMPRESS, type AgentMessage, type ServerMessage } from '../../runtime/gateway-proto.js';
import type { Logger } from '../../runtime/log.js';
import type { BatchTransport, EventBatch } from '../pipeline/channels.js';
import { identityDir, saveTrustedCas, type Identity } from './enroll.js';
import { AddressHolds, holdDownMs } from './holds.js';
import { CertificateRenewer, refusal, validity, type RenewalSettings, type RenewalStats } from './renewal.js';
import { taskAnswer, TaskLedger, type TaskAnswer } from './tasks.js';
import { hostOs } from './host-os.js';

export interface ServerTask {
  readonly id: string;
  readonly kind: string;
  readonly params: unknown;
}

export interface GrpcTransportOptions {
  readonly identity: Identity;
  /**
   * host:port of the gateways, in order of preference: a new stream tries them from the first
   * on, moving to the next when one fails, and a stream on a later one goes back to an earlier
   * one once that answers again (checked every `preferredCheckMs`).
   */
  readonly addresses: readonly string[];
  /** How often a stream on a less preferred address checks the ones before it (ms, with jitter; default 5 min). */
  readonly preferredCheckMs?: number;
  readonly agentVersion: string;
  readonly log: Logger;
  /** Configuration pushed by the server (YAML of the agent's group). */
  /** A group configuration from the server; `local`: none applies, the agent's own file does. */
  readonly onConfig?: (yaml: string, version: number, local: boolean) => void;
  /** The version of the group configuration the agent runs (0: its own file), said in hello. */
  readonly configVersion?: () => number;
  /** A task; its result goes back with `taskResult`. A task sent again is not run again (`tasks`). */
  readonly onTask?: (task: ServerTask) => void;
  /**
   * The tasks run so far and their answers: the agent's, so that a reload's new transport does
   * not run again what the one before did (a ledger of its own when not given).
   */
  readonly tasks?: TaskLedger;
  readonly connectTimeoutMs?: number;
  /**
   * The addresses held down after an Ack timeout: the agent's, so that a reload's new transport
   * does not start at a stuck one (holds of its own when not given).
   */
  readonly holds?: AddressHolds;
  /** The hold after a first Ack timeout and its longest (ms; default from `ackTimeoutMs`, holdDownMs()). */
  readonly holdDownMs?: { readonly firstMs: number; readonly maxMs: number };
  /**
   * How long a batch may wait for its Ack (ms; default 2 min, `outputs.server.ack_timeout_s`):
   * past it the stream is ended, the send rejects (HADES_ERR_SERVER_ACK_TIMEOUT), and the next
   * stream starts at the address after this one's.
   */
  readonly ackTimeoutMs?: number;
  /** Renew the certificate over the stream; no renewal without. */
  readonly renewal?: RenewalSettings & {
    /** How long the server may take to answer a renewal request (ms). */
    readonly answerTimeoutMs?: number;
  };
  /** A renewed identity, stored already: transports made later (a reload) must start from it. */
  readonly onIdentity?: (identity: Identity) => void;
}

type Stream = grpc.ClientDuplexStream<AgentMessage, ServerMessage>;

/** Why a stream went (see StreamStats.lost); a stream the agent ends itself (a stop) is none of these. */
export type StreamLoss = 'connect_failed' | 'server_ended' | 'ack_timeout' | 'renewal_reconnect' | 'preferred_return';

/**
 * The transport's streams since it started (the agent's start, or the reload that made it),
 * counted as they happen: plain integers, read by the output's stats (heartbeat, `hades agent
 * status`, /metrics).
 */
export interface StreamStats {
  /** Streams that got their Welcome. */
  readonly opened: number;
  /**
   * Streams gone, by reason: `connect_failed`, an attempt that got no Welcome (refused,
   * unreachable, timed out, or the agent refused by the server); `server_ended`, a stream that had its Welcome,
   * ended by the server or lost with its connection; `ack_timeout`, ended by the agent when an
   * Ack did not come in time (HADES_ERR_SERVER_ACK_TIMEOUT); `renewal_reconnect`, ended cleanly to
   * use a renewed certificate; `preferred_return`, ended cleanly to move back to a preferred address.
   */
  readonly lost: Readonly<Record<StreamLoss, number>>;
  /** Batches the server refused with a Nack: `temporary` ones are sent again, `permanent` ones dropped. */
  readonly nacked: { readonly temporary: number; readonly permanent: number };
  /** Batches written again: their records were written on a stream before (after a loss, a timeout or a temporary Nack). */
  readonly resent: number;
  /**
   * Addresses of the list held down now after an Ack timeout (holds.ts): new streams do not
   * start there, nor move back there, until their hold ends or they acknowledge a batch.
   */
  readonly held: number;
  /** The current stream's address and its index in the list of addresses; absent without a stream that had its Welcome. */
  readonly address?: string;
  readonly addressIndex?: number;
}

const gzipAsync = promisify(gzip);
const NO_BYTES = Buffer.alloc(0);

interface Pending {
  readonly lastSeq: string;
  /** Events in the batch: what is lost when the server refuses it whole. */
  readonly events: number;
  readonly resolve: () => void;
  readonly reject: (error: HadesError) => void;
}

/** A renewal request waiting for its answer on `stream`. */
interface RenewWaiter {
  readonly stream: Stream;
  readonly settle: (certificate: string | HadesError) => void;
}

/** How long a stream ended for a reconnection may take to finish before it is cancelled. */
const RETIRE_GRACE_MS = 5000;
let ipServernameWarningDropped = false;

/**
 * grpc-js gives tls.connect the target's host as the SNI server name even when it is an IP
 * address, as most servers' addresses are, and Node then warns once per process (DEP0123) that
 * a later version will not send it. Nothing depends on it: the server's certificate is checked
 * against the address, and the server has a single certificate. That one warning is dropped;
 * every other warning goes through.
 */
export function dropIpServernameWarning(): void {
  if (ipServernameWarningDropped) return;
  ipServernameWarningDropped = true;
  const emit = process.emitWarning.bind(process) as unknown as (...args: unknown[]) => void;
  const filtered = (warning: string | Error, ...rest: unknown[]): void => {
    const [typeOrOptions, code] = rest;
    const given = typeof typeOrOptions === 'object' && typeOrOptions !== null ? (typeOrOptions as { code?: unknown }).code : code;
    if (given === 'DEP0123') return;
    emit(warning, ...rest);
  };
  process.emitWarning = filtered;
}

/** How often a stream on a less preferred address looks at the earlier ones (see checkPreferred). */
const PREFERRED_CHECK_MS = 5 * 60_000;

/** The default of `ackTimeoutMs`: well above the server's queueing at saturation (docs/perf.md: about 25 s). */
const ACK_TIMEOUT_MS = 120_000;

/** Backoff between attempts to keep a stream open (see keepOpen), doubled per failure, with jitter. */
const KEEP_OPEN_MIN_MS = 1000;
const KEEP_OPEN_MAX_MS = 30_000;

/** The most CAs a CaTrust message may name (two during a rotation). */
const MAX_TRUSTED_CAS = 8;

/** What OpenSSL says when the server's certificate does not chain to a CA this end trusts. */
const UNTRUSTED_SERVER_RE = /self[- ]signed certificate in certificate chain|unable to verify the first certificate|unable to get local issuer certificate|unable to get issuer certificate|certificate signature failure/i;

/** How a stream failed (refused, or never up): the code, from the gRPC status and its details. */
export function connectFailureCode(code: grpc.status, details: string): 'HADES_ERR_AGENT_REVOKED' | 'HADES_ERR_AGENT_UNKNOWN' | 'HADES_ERR_CA_RETIRED' | 'HADES_ERR_SERVER_CA_UNTRUSTED' | 'HADES_ERR_SERVER_UNREACHABLE' {
  if (code === grpc.status.PERMISSION_DENIED) return /HADES_ERR_AGENT_REVOKED/.test(details) ? 'HADES_ERR_AGENT_REVOKED' : /HADES_ERR_CA_RETIRED/.test(details) ? 'HADES_ERR_CA_RETIRED' : 'HADES_ERR_AGENT_UNKNOWN';
  return UNTRUSTED_SERVER_RE.test(details) ? 'HADES_ERR_SERVER_CA_UNTRUSTED' : 'HADES_ERR_SERVER_UNREACHABLE';
}

const sha256Of = (cert: X509Certificate): string => createHash('sha256').update(cert.raw).digest('hex');

export class GrpcTransport implements BatchTransport {
  readonly name = 'server';
  private client: grpc.Client | undefined;
  private stream: Stream | undefined;
  private welcomed: Promise<void> | undefined;
  /** The index of the address the next stream tries: the first after a stream that worked. */
  private next = 0;
  /** The index of the current stream's address. */
  private streamAddress = 0;
  /** An earlier address than the current stream's answered: move there once idle. */
  private preferredAnswers = false;
  /** The next look at the earlier addresses, and the connection that looks (see checkPreferred). */
  private preferredTimer: NodeJS.Timeout | undefined;
  private preferredProbe: grpc.Client | undefined;
  private pending: Pending | undefined;
  private closed = false;
  /** The identity new streams use (a renewal replaces it). */
  private identity: Identity;
  /** The identity of the current stream. */
  private streamIdentity: Identity | undefined;
  /** The current stream got its Welcome. */
  private ready = false;
  /** The current stream's server takes batches compressed by the agent (its Welcome says so). */
  private gzipBatches = false;
  private readonly renewer: CertificateRenewer | undefined;
  private readonly tasks: TaskLedger;
  private readonly holds: AddressHolds;
  private renewWaiter: RenewWaiter | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  /** keepOpen(): on after start(), its next attempt, and its backoff. */
  private keepingOpen = false;
  private keepTimer: NodeJS.Timeout | undefined;
  private keepBackoffMs = KEEP_OPEN_MIN_MS;
  /** Streams ended for a reconnection, still finishing: each entry cancels its stream. */
  private readonly retiring = new Set<() => void>();
  /** Aborted at close: streams the transport opens by itself (a reconnection) stop with it. */
  private readonly lifetime = new AbortController();
  /** Batches the server refused for good (invalid): dropped from the spool, counted. */
  rejectedBatches = 0;
  /** Events in those batches. */
  rejectedBatchEvents = 0;
  /** Lines of acknowledged batches the server refused as invalid. */
  rejectedEvents = 0;
  serverVersion: string | undefined;
  /** See StreamStats: counted where each happens, read by streamStats(). */
  private opened = 0;
  private readonly lost: Record<StreamLoss, number> = { connect_failed: 0, server_ended: 0, ack_timeout: 0, renewal_reconnect: 0, preferred_return: 0 };
  private nackedTemporary = 0;
  private nackedPermanent = 0;
  private resent = 0;
  /** The highest spool seq written on any stream so far: a batch that starts at or before it is sent again. */
  private writtenSeq = -Infinity;
  /** The refusal (not unreachable) last logged, until a stream is welcomed: said once, whatever address the next attempt takes. */
  private refusalLogged: string | undefined;

  constructor(private readonly options: GrpcTransportOptions) {
    if (options.addresses.length === 0) throw new HadesError('HADES_ERR_CONFIG_VALUE', 'outputs.server.addresses is empty and the enrollment gave no gateway');
    this.identity = options.identity;
    this.tasks = options.tasks ?? new TaskLedger();
    this.holds = options.holds ?? new AddressHolds();
    this.holds.keepOnly(options.addresses);
    this.next = this.firstAddress();
    if (options.renewal) {
      this.renewer = new CertificateRenewer(options.identity, options.renewal, {
        connected: () => this.ready,
        request: (csrPem) => this.requestCertificate(csrPem),
        renewed: (identity, immediately) => this.useIdentity(identity, immediately),
      }, options.log);
      this.renewer.start();
    }
  }

  get connected(): boolean {
    return this.stream !== undefined;
  }

  /**
   * Keeps a stream open from now on, events or not: configuration and tasks reach an idle agent
   * at once, and a stream the server ended (a restart) is opened again with backoff (1 s doubling
   * to 30 s, with jitter) instead of at the next batch. Sends use the same stream.
   */
  start(): void {
    if (this.closed || this.keepingOpen) return;
    this.keepingOpen = true;
    this.keepOpen();
  }

  private keepOpen(): void {
    this.keepTimer = undefined;
    if (this.closed || this.stream !== undefined) return;
    this.open(this.lifetime.signal).then(
      () => {
        this.keepBackoffMs = KEEP_OPEN_MIN_MS;
      },
      (error: unknown) => {
        if (this.closed) return;
        this.options.log.debug('no stream to the server yet; trying again', { err: toHadesError(error), retry_ms: this.keepBackoffMs });
        this.scheduleKeepOpen();
      },
    );
  }

  /** The next keepOpen() attempt, after the backoff. Drops also call it: the stream comes back by itself. */
  private scheduleKeepOpen(): void {
    if (!this.keepingOpen || this.closed || this.keepTimer !== undefined) return;
    const delay = this.keepBackoffMs * (0.5 + Math.random() / 2);
    this.keepBackoffMs = Math.min(this.keepBackoffMs * 2, KEEP_OPEN_MAX_MS);
    this.keepTimer = setTimeout(() => this.keepOpen(), delay);
    this.keepTimer.unref();
  }

  /** Certificate renewals: done, failed, and the last failure's code; undefined without renewal. */
  get renewal(): Readonly<RenewalStats> | undefined {
    return this.renewer?.stats;
  }

  /**
   * The agent's certificate as the heartbeat reports it: when the one in use expires, and the
   * renewals so far (done, failed, the last failure's code), so that the fleet shows an agent
   * whose renewals fail before its certificate runs out.
   */
  certificateHealth(): { expires: string | undefined; renewals: number; failures: number; last_error?: string } {
    let expires: string | undefined;
    try {
      expires = new Date(validity(this.identity.certPem).notAfter).toISOString();
    } catch {
      expires = undefined; // unreadable: the stream's TLS would fail first; nothing to report
    }
    const stats = this.renewer?.stats;
    return { expires, renewals: stats?.renewals ?? 0, failures: stats?.failures ?? 0, ...(stats?.lastError ? { last_error: stats.lastError } : {}) };
  }

  /** The streams so far, and the current one's address (StreamStats). */
  streamStats(): StreamStats {
    return {
      opened: this.opened,
      lost: { ...this.lost },
      nacked: { temporary: this.nackedTemporary, permanent: this.nackedPermanent },
      resent: this.resent,
      held: this.options.addresses.filter((address) => this.holds.held(address)).length,
      ...(this.ready ? { address: this.options.addresses[this.streamAddress], addressIndex: this.streamAddress } : {}),
    };
  }

  /** Where a stream starts: the most preferred address not held down (the first when all are). */
  private firstAddress(): number {
    const index = this.options.addresses.findIndex((address) => !this.holds.held(address));
    return index < 0 ? 0 : index;
  }

  private open(signal: AbortSignal): Promise<void> {
    if (this.welcomed) return this.welcomed;
    dropIpServernameWarning();
    const index = this.next % this.options.addresses.length;
    const address = this.options.addresses[index]!;
    // Until this stream gets its Welcome: the next attempt goes to the next address.
    this.next = index + 1;
    this.streamAddress = index;
    this.preferredAnswers = false;
    const identity = this.identity;
    this.streamIdentity = identity;
    const credentials = grpc.credentials.createSsl(Buffer.from(identity.caPem), Buffer.from(identity.keyPem), Buffer.from(identity.certPem));
    const Client = gatewayService();
    const client = new Client(address, credentials, { ...channelOptions }) as unknown as grpc.Client & { Connect(): Stream };
    this.client = client;
    const stream = client.Connect();
    this.stream = stream;
    /** This stream got its Welcome: a loss from now on is the server's, not a failed connection. */
    let up = false;
    const welcomed = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(new HadesError('HADES_ERR_SERVER_UNREACHABLE', `${address}: no answer within ${this.options.connectTimeoutMs ?? 10_000} ms`)), this.options.connectTimeoutMs ?? 10_000);
      // `stopped`: the agent ended the attempt itself (a stop), which is no loss.
      const fail = (error: HadesError, stopped = false) => {
        clearTimeout(timer);
        // The signal outlives this attempt (the channel's, or the transport's own): a listener
        // left on it would keep this stream and its client for as long as the server is away.
        signal.removeEventListener('abort', onAbort);
        reject(error);
        this.drop(stream, error, stopped ? undefined : up ? 'server_ended' : 'connect_failed');
      };
      const onAbort = () => fail(new HadesError('HADES_ERR_SERVER_UNREACHABLE', 'stopping'), true);
      signal.addEventListener('abort', onAbort, { once: true });
      stream.on('data', (message: ServerMessage) => {
        if (message.welcome) {
          clearTimeout(timer);
          signal.removeEventListener('abort', onAbort);
          this.serverVersion = message.welcome.server_version;
          this.options.log.info('connected to the server', { address, agent: message.welcome.agent_id, server_version: message.welcome.server_version });
          if (this.stream === stream) {
            up = true;
            this.refusalLogged = undefined;
            this.opened++;
            this.ready = true;
            this.gzipBatches = message.welcome.features?.includes(NDJSON_GZIP) ?? false;
            // It works: the stream after it starts again from the most preferred address (not held down).
            this.next = this.firstAddress();
            if (index > 0) this.schedulePreferredCheck();
          }
          resolve();
          this.renewer?.connected();
          this.reconnectIfIdle();
          return;
        }
        this.onMessage(message, stream);
      });
      stream.on('error', (error: grpc.ServiceError) => {
        const details = error.details || error.message;
        const code = connectFailureCode(error.code, details);
        // Refused for good: the token in the configuration is not used while an identity is kept,
        // so say what enrolling the host again takes.
        const again = code !== 'HADES_ERR_SERVER_UNREACHABLE' && this.options.renewal ? `; to enroll this host again, stop the agent, move ${identityDir(this.options.renewal.dataDir)} aside and start it with a fresh token (hades server token create) in outputs.server.token` : '';
        const untrusted =
          code === 'HADES_ERR_SERVER_CA_UNTRUSTED'
            ? ': the server presents a certificate of a CA this agent does not trust; if the server\'s CA was rotated and the old one retired while this agent was offline (hades server ca status), this agent must be enrolled again, otherwise check that this is the Hades server it enrolled with'
            : '';
        const failure = new HadesError(code, `${address}: ${details}${untrusted}${again}`);
        // A refusal is logged at once, whatever the output later says of its last attempt (with
        // several addresses, that may be another, unreachable one, which would hide it).
        if (code !== 'HADES_ERR_SERVER_UNREACHABLE' && this.refusalLogged !== code) {
          this.refusalLogged = code;
          this.options.log.error(code === 'HADES_ERR_CA_RETIRED' || code === 'HADES_ERR_SERVER_CA_UNTRUSTED' ? 'the server cannot be used with this agent\'s identity' : 'the server refused this agent', { err: failure, address });
        }
        fail(failure);
      });
      stream.on('end', () => fail(new HadesError('HADES_ERR_SERVER_UNREACHABLE', `${address}: the server ended the stream`)));
    });
    this.welcomed = welcomed;
    stream.write({
      hello: { agent_version: this.options.agentVersion, hostname: os.hostname(), addresses: [], os: hostOs(), kernel: os.release(), config_version: this.options.configVersion?.() ?? 0 },
    });
    return welcomed;
  }

  /** Forgets a stream that failed: the next send opens a new one (to the next address). */
  private drop(stream: Stream, error: HadesError, loss?: StreamLoss): void {
    if (this.renewWaiter?.stream === stream) this.renewWaiter.settle(new HadesError('HADES_ERR_RENEW_FAILED', `the stream was lost before the answer: ${error.message}`));
    if (this.stream !== stream) return;
    // Counted once per stream: the cancel below makes it fail again, when it is no longer current.
    if (loss !== undefined && !this.closed) this.lost[loss]++;
    this.stream = undefined;
    this.welcomed = undefined;
    this.ready = false;
    this.gzipBatches = false;
    this.stopPreferredCheck();
    stream.cancel();
    this.client?.close();
    this.client = undefined;
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(error);
    this.scheduleKeepOpen();
  }

  private onMessage(message: ServerMessage, stream: Stream): void {
    if (message.ack) {
      const pending = this.pending;
      if (pending && String(message.ack.last_seq) === pending.lastSeq) {
        this.pending = undefined;
        // This address stores batches: it is held down no more.
        this.holds.acknowledged(this.options.addresses[this.streamAddress]!);
        const rejected = Number(message.ack.rejected ?? 0);
        if (rejected > 0) {
          // The rest of the batch is stored; these lines are lost, and said so here and in the counters.
          this.rejectedEvents += rejected;
          this.options.log.warn('the server refused events of a batch as invalid; the others are stored', { code: 'HADES_ERR_EVENT_INVALID', rejected, rejected_total: this.rejectedEvents, last_seq: pending.lastSeq });
        }
        pending.resolve();
        // Before the channel's next send: a reconnection waits for no Ack then.
        this.reconnectIfIdle();
      }
    } else if (message.nack) {
      const pending = this.pending;
      if (!pending || String(message.nack.last_seq) !== pending.lastSeq) {
        this.options.log.warn('the server refused a message', { code: message.nack.code, reason: message.nack.message });
        return;
      }
      this.pending = undefined;
      queueMicrotask(() => this.reconnectIfIdle());
      if (message.nack.permanent) {
        // Sending it again cannot help: it leaves the spool, counted.
        this.nackedPermanent++;
        this.rejectedBatches++;
        this.rejectedBatchEvents += pending.events;
        this.options.log.error('the server refused a batch for good; dropped', { code: message.nack.code, reason: message.nack.message, events: pending.events, last_seq: pending.lastSeq });
        pending.resolve();
      } else {
        this.nackedTemporary++;
        pending.reject(new HadesError('HADES_ERR_OUTPUT_FAILED', `the server could not store the batch: ${message.nack.code}: ${message.nack.message}`));
      }
    } else if (message.config) {
      this.options.onConfig?.(message.config.yaml, Number(message.config.version), false);
    } else if (message.own_config) {
      this.options.onConfig?.('', 0, true);
    } else if (message.task) {
      // Sent again at each hello until answered: run once, answered again when the answer is known.
      const seen = this.tasks.receive(message.task.task_id);
      if (seen === 'running') {
        this.options.log.debug('a task sent again while it runs; its answer goes when it ends', { task: message.task.task_id });
        return;
      }
      if (seen === 'busy') {
        // Answered, not kept: sent again later (its answer lost), it may run then.
        this.options.log.warn('a task past the tasks the agent runs at once; refused', { code: 'HADES_ERR_TASK_BUSY', task: message.task.task_id, running: this.tasks.running });
        this.writeTaskResult(message.task.task_id, taskAnswer('failed', { code: 'HADES_ERR_TASK_BUSY', message: `the agent runs ${this.tasks.running} tasks already, as many as it takes at once; create the task again later` }));
        return;
      }
      if (seen !== 'run') {
        this.options.log.debug('a task sent again after its answer; the answer goes again', { task: message.task.task_id });
        this.writeTaskResult(message.task.task_id, seen);
        return;
      }
      let params: unknown = {};
      try {
        params = message.task.params_json ? JSON.parse(message.task.params_json) : {};
      } catch {
        params = undefined;
      }
      // Parameters that are no JSON object: the task fails, saying why, rather than running
      // with none (a query task would then fail on a missing SQL, misleadingly).
      if (!params || typeof params !== 'object' || Array.isArray(params)) {
        this.options.log.warn('a task whose parameters are not a JSON object; refused', { code: 'HADES_ERR_STREAM_MESSAGE_INVALID', task: message.task.task_id });
        this.taskResult(message.task.task_id, 'failed', { code: 'HADES_ERR_STREAM_MESSAGE_INVALID', message: 'the task\'s params_json is not a JSON object' });
        return;
      }
      this.options.onTask?.({ id: message.task.task_id, kind: message.task.kind, params });
    } else if (message.renew) {
      const waiter = this.renewWaiter;
      if (!waiter || waiter.stream !== stream) {
        this.options.log.warn('an answer to no renewal request; ignored');
        return;
      }
      const { certificate, error } = message.renew;
      waiter.settle(certificate ? certificate : refusal(error?.code ?? '', error?.message ?? 'no certificate and no reason'));
    } else if (message.renew_now) {
      if (this.renewer) this.renewer.requestedByServer(message.renew_now.reason, message.renew_now.immediately === true);
      else this.options.log.warn('the server asks for a certificate renewal, but renewal is off here');
    } else if (message.trust) {
      this.trustCas(message.trust.ca ?? [], message.trust.issuing_sha256 ?? '');
    }
  }

  /**
   * The CAs the server says to trust (a CA rotation): checked (CA certificates, not expired, the
   * issuing one among them, and one of them the issuer of this agent's certificate), stored in
   * the identity folder when they changed, and used from the next connection. A certificate of
   * another CA than the issuing one is then renewed, as if the server had asked.
   */
  private trustCas(pems: readonly string[], issuing: string): void {
    const { log } = this.options;
    const refuse = (why: string): void => log.warn('the CAs the server sent are not used', { code: 'HADES_ERR_STREAM_MESSAGE_INVALID', reason: why });
    if (pems.length === 0 || pems.length > MAX_TRUSTED_CAS) return refuse(`${pems.length} CAs; from 1 to ${MAX_TRUSTED_CAS} are taken`);
    let cas: X509Certificate[];
    try {
      cas = pems.map((pem) => new X509Certificate(pem));
    } catch {
      return refuse('one does not parse as a certificate');
    }
    if (cas.some((ca) => !ca.ca)) return refuse('one is not a CA certificate');
    const now = Date.now();
    if (cas.some((ca) => Date.parse(ca.validTo) <= now)) return refuse('one has expired');
    const fingerprints = cas.map(sha256Of);
    const issuingSha = issuing.toLowerCase();
    if (!fingerprints.includes(issuingSha)) return refuse('the CA said to issue certificates is not among them');
    let own: X509Certificate;
    try {
      own = new X509Certificate(this.identity.certPem);
    } catch {
      return refuse('this agent\'s own certificate does not parse');
    }
    const ownCa = cas.find((ca) => own.checkIssued(ca) && own.verify(ca.publicKey));
    // Never a set that would not take this agent's own certificate: the server would refuse it
    // anyway (a CA retired before it moved), and these are the only CAs it would know.
    if (!ownCa) return refuse('none of them issued this agent\'s certificate');
    const known = new Set(caFingerprints(this.identity.caPem));
    if (known.size !== fingerprints.length || fingerprints.some((f) => !known.has(f))) {
      const caPem = cas.map((ca) => ca.toString()).join('');
      const dataDir = this.options.renewal?.dataDir;
      try {
        if (dataDir !== undefined) saveTrustedCas(dataDir, this.identity.agentId, caPem);
      } catch (error) {
        log.error('the CAs the server sent cannot be stored; the ones before stay in use', { code: 'HADES_ERR_PKI', err: toHadesError(error) });
        return;
      }
      const previous = this.identity;
      this.identity = { ...previous, caPem };
      // The same key and certificate: the current stream is not replaced for this.
      if (this.streamIdentity === previous) this.streamIdentity = this.identity;
      this.renewer?.trust(caPem);
      this.options.onIdentity?.(this.identity);
      log.info('the server\'s CAs changed; the agent trusts these from its next connection', { cas: fingerprints, issuing: issuingSha, stored: dataDir !== undefined });
    }
    if (sha256Of(ownCa) !== issuingSha) {
      const reason = `the server's CA was rotated: this agent's certificate is of the CA ${sha256Of(ownCa)}, certificates are issued by ${issuingSha} now`;
      if (this.renewer) this.renewer.requestedByServer(reason);
      else log.warn('the server\'s CA was rotated, but certificate renewal is off here: this agent must be enrolled again before the old CA is retired', { reason });
    }
  }

  /** Sends a certificate request on the current stream; resolves to the certificate the server issued. */
  private requestCertificate(csrPem: string): Promise<string> {
    const stream = this.stream;
    if (!stream || !this.ready) return Promise.reject(new HadesError('HADES_ERR_RENEW_FAILED', 'not connected to the server'));
    if (this.renewWaiter) return Promise.reject(new HadesError('HADES_ERR_RENEW_FAILED', 'a renewal request already waits for its answer'));
    const timeoutMs = this.options.renewal?.answerTimeoutMs ?? 60_000;
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => waiter.settle(new HadesError('HADES_ERR_RENEW_FAILED', `no answer to the renewal request within ${timeoutMs} ms`)), timeoutMs);
      const waiter: RenewWaiter = {
        stream,
        settle: (outcome) => {
          if (this.renewWaiter !== waiter) return;
          this.renewWaiter = undefined;
          clearTimeout(timer);
          if (typeof outcome === 'string') resolve(outcome);
          else reject(outcome);
        },
      };
      this.renewWaiter = waiter;
      stream.write({ renew: { csr: csrPem } });
    });
  }

  /**
   * A renewed identity: new streams use it; the current one is replaced after a random delay, or
   * at once when the server asked for the renewal without delay.
   */
  private useIdentity(identity: Identity, immediately: boolean): void {
    this.identity = identity;
    this.options.onIdentity?.(identity);
    clearTimeout(this.reconnectTimer);
    const delay = immediately ? 0 : Math.floor(Math.random() * (this.options.renewal?.jitterMs ?? 0));
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.reconnectIfIdle();
    }, delay);
    this.reconnectTimer.unref();
  }

  /**
   * Looks, after PREFERRED_CHECK_MS (with jitter), whether an address before the current stream's
   * answers: a TLS connection with the agent's identity, which a server of another CA refuses
   * either way. When one does, the stream moves there once idle (reconnectIfIdle); otherwise it
   * looks again later. An address held down after an Ack timeout is not looked at: answering a
   * connection says nothing of a stuck ingest.
   */
  private schedulePreferredCheck(): void {
    this.stopPreferredCheck();
    const every = this.options.preferredCheckMs ?? PREFERRED_CHECK_MS;
    this.preferredTimer = setTimeout(() => void this.checkPreferred(), every * (0.5 + Math.random() / 2));
    this.preferredTimer.unref();
  }

  private stopPreferredCheck(): void {
    clearTimeout(this.preferredTimer);
    this.preferredTimer = undefined;
    this.preferredProbe?.close();
    this.preferredProbe = undefined;
  }

  private async checkPreferred(): Promise<void> {
    this.preferredTimer = undefined;
    const stream = this.stream;
    const identity = this.identity;
    const credentials = grpc.credentials.createSsl(Buffer.from(identity.caPem), Buffer.from(identity.keyPem), Buffer.from(identity.certPem));
    for (let index = 0; index < this.streamAddress; index++) {
      if (this.closed || this.stream !== stream) return;
      if (this.holds.held(this.options.addresses[index]!)) continue;
      const Client = gatewayService();
      const probe = new Client(this.options.addresses[index]!, credentials, { ...channelOptions }) as grpc.Client;
      this.preferredProbe = probe;
      const answers = await new Promise<boolean>((resolve) => probe.waitForReady(Date.now() + (this.options.connectTimeoutMs ?? 10_000), (error) => resolve(error === undefined)));
      probe.close();
      if (this.preferredProbe !== probe) return; // the stream went meanwhile (stopPreferredCheck)
      this.preferredProbe = undefined;
      if (answers) {
        this.options.log.info('a preferred gateway address answers again; the stream moves there', { address: this.options.addresses[index], from: this.options.addresses[this.streamAddress] });
        this.preferredAnswers = true;
        this.reconnectIfIdle();
        return;
      }
    }
    if (!this.closed && this.stream === stream) this.schedulePreferredCheck();
  }

  /**
   * Replaces a stream that uses an older identity (when its reconnection delay has passed), or
   * whose address is less preferred than one that answers again, once no batch waits for its
   * Ack (otherwise called again when it is acknowledged, or at the next Welcome): the stream is
   * ended cleanly and a new one opened, with the current identity, from the first address on.
   */
  private reconnectIfIdle(): void {
    const stream = this.stream;
    const client = this.client;
    if (this.closed || !stream || !client) return;
    const renewed = this.reconnectTimer === undefined && this.streamIdentity !== this.identity;
    if (!renewed && !this.preferredAnswers) return;
    if (!this.ready || this.pending || this.renewWaiter) return;
    this.stopPreferredCheck();
    this.lost[renewed ? 'renewal_reconnect' : 'preferred_return']++;
    this.stream = undefined;
    this.welcomed = undefined;
    this.client = undefined;
    this.ready = false;
    this.gzipBatches = false;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      this.retiring.delete(cancel);
      client.close();
    };
    const cancel = () => {
      stream.cancel();
      finish();
    };
    const timer = setTimeout(cancel, RETIRE_GRACE_MS);
    timer.unref();
    this.retiring.add(cancel);
    stream.on('status', finish);
    stream.on('error', finish);
    stream.end();
    this.next = this.firstAddress();
    this.options.log.info(renewed ? 'reconnecting with the renewed certificate' : 'reconnecting to the preferred gateway address');
    this.open(this.lifetime.signal).catch((error: unknown) => {
      this.options.log.warn(renewed ? 'reconnection with the renewed certificate failed' : 'reconnection to the preferred gateway address failed', { err: toHadesError(error) });
      // The next address at once (open() moved on to it), not after the backoff the failed
      // attempt scheduled: the first being down says nothing of the others. Failing too, the
      // backoff takes over. Without keepOpen, the next send opens a stream.
      if (this.closed || !this.keepingOpen || this.stream !== undefined) return;
      clearTimeout(this.keepTimer);
      this.keepOpen();
    });
  }

  async send(batch: EventBatch, signal: AbortSignal): Promise<void> {
    if (this.closed) throw new HadesError('HADES_ERR_OUTPUT_FAILED', 'transport closed');
    let stream: Stream | undefined;
    let compressed: Buffer | undefined;
    do {
      await this.open(signal);
      stream = this.stream;
      if (!stream) throw new HadesError('HADES_ERR_SERVER_UNREACHABLE', 'stream lost');
      // Compressed once here, off the event loop, and sent as it is: the server inflates it on
      // its ingest thread rather than in gRPC's per-message stream on its main thread. A server
      // that does not list the feature gets the lines, compressed by gRPC as before.
      compressed = this.gzipBatches ? await gzipAsync(batch.data) : undefined;
      if (signal.aborted) throw new HadesError('HADES_ERR_OUTPUT_FAILED', 'stopping');
      // A stream replaced meanwhile (a renewed certificate's reconnection, which waits for no
      // batch in flight): the batch goes on the new one, compressed again if it must be.
    } while (this.stream !== stream && this.stream !== undefined);
    if (this.stream !== stream) throw new HadesError('HADES_ERR_SERVER_UNREACHABLE', 'stream lost');
    const current = stream;
    const ackTimeoutMs = this.options.ackTimeoutMs ?? ACK_TIMEOUT_MS;
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => this.drop(current, new HadesError('HADES_ERR_OUTPUT_FAILED', 'stopping'));
      signal.addEventListener('abort', onAbort, { once: true });
      const timer = setTimeout(() => this.ackTimedOut(current, pending, ackTimeoutMs), ackTimeoutMs);
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
      };
      const pending: Pending = {
        lastSeq: String(batch.lastSeq),
        events: batch.events,
        resolve: () => {
          done();
          resolve();
        },
        reject: (error) => {
          done();
          reject(error);
        },
      };
      this.pending = pending;
      if (batch.firstSeq <= this.writtenSeq) this.resent++;
      this.writtenSeq = Math.max(this.writtenSeq, batch.lastSeq);
      const head = { first_seq: batch.firstSeq, last_seq: batch.lastSeq, events: batch.events };
      if (compressed) current.write({ batch: { ...head, ndjson: NO_BYTES, ndjson_gzip: compressed, ndjson_size: batch.data.length } }, NO_COMPRESS);
      else current.write({ batch: { ...head, ndjson: batch.data } });
    });
  }

  /**
   * The Ack of `pending` did not come in time on `stream`, which may be alive all the same (its
   * server's ingest stuck, or the server frozen behind a middlebox that keeps the connection up):
   * the stream is ended and the send rejected; the channel sends the batch again from its spool,
   * after its backoff, on a new stream that starts at the next address. Sent twice, a batch the
   * server stored after all is dropped there as duplicates (by event id). The address is held
   * down (holds.ts): no stream starts or moves back there until its hold ends.
   */
  private ackTimedOut(stream: Stream, pending: Pending, ackTimeoutMs: number): void {
    if (this.stream !== stream || this.pending !== pending) return;
    const address = this.options.addresses[this.streamAddress]!;
    const { firstMs, maxMs } = this.options.holdDownMs ?? holdDownMs(ackTimeoutMs);
    const heldMs = this.holds.ackTimedOut(address, firstMs, maxMs);
    this.options.log.warn('no Ack from the server in time; the stream is ended and the batch is sent again on a new one', { code: 'HADES_ERR_SERVER_ACK_TIMEOUT', address, ack_timeout_ms: ackTimeoutMs, held_down_s: Math.round(heldMs / 1000), last_seq: pending.lastSeq, events: pending.events });
    // This address takes batches and stores none: the next stream tries the next one first.
    this.next = this.streamAddress + 1;
    this.drop(stream, new HadesError('HADES_ERR_SERVER_ACK_TIMEOUT', `${address}: no Ack for the batch within ${ackTimeoutMs} ms; the stream was ended`), 'ack_timeout');
  }

  /** The agent_health figures, when connected. */
  heartbeat(health: unknown): void {
    this.stream?.write({ heartbeat: { health_json: JSON.stringify(health) } });
  }

  /**
   * A task's answer: sent on the current stream, and kept (TaskLedger). Without a stream now, or
   * lost with it, it goes when the server sends the task again at the next connection.
   */
  taskResult(taskId: string, status: 'done' | 'failed', result: unknown): void {
    const answer = taskAnswer(status, result);
    this.tasks.finish(taskId, answer);
    this.writeTaskResult(taskId, answer);
  }

  private writeTaskResult(taskId: string, answer: TaskAnswer): void {
    this.stream?.write({ task_result: { task_id: taskId, status: answer.status, result_json: answer.resultJson } });
  }

  /**
   * What the server refused, in events as every drop counter is (agent_drop's count): those of
   * the batches refused whole (permanent Nack), and lines of stored batches.
   */
  dropped(): Readonly<Record<string, number>> {
    return { server_rejected_batches: this.rejectedBatchEvents, server_rejected_events: this.rejectedEvents };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.renewer?.close();
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    clearTimeout(this.keepTimer);
    this.keepTimer = undefined;
    this.stopPreferredCheck();
    this.lifetime.abort();
    for (const cancel of [...this.retiring]) cancel();
    const stream = this.stream;
    if (stream) {
      stream.end();
      this.drop(stream, new HadesError('HADES_ERR_OUTPUT_FAILED', 'transport closed'));
    }
  }
}

/** The SHA-256 of each certificate of a PEM bundle (the ones that do not parse are left out). */
function caFingerprints(pem: string): string[] {
  const out: string[] = [];
  for (const block of pemCertificates(pem)) {
    try {
      out.push(sha256Of(new X509Certificate(block)));
    } catch {
      // not a certificate: not one trusted
    }
  }
  return out;
}
