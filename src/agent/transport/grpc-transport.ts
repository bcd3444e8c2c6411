/**
 * The server output's transport: one gRPC stream to the agent gateway over mutual TLS
 * (proto/hades/agent/v1/gateway.proto), used by a SpooledChannel. `send()` writes a batch and
 * resolves when the server's Ack for it arrives (after its database commit); a lost stream
 * rejects it, and the channel retries from its spool with backoff and jitter. Each new stream
 * goes to the next address of the list, so agents fail over between servers. Configuration and
 * tasks from the server are handed to the agent; heartbeats go the other way.
 */
import os from 'node:os';
import * as grpc from '@grpc/grpc-js';
import { HadesError } from '../../common/errors.js';
import { channelOptions, gatewayService, type AgentMessage, type ServerMessage } from '../../runtime/gateway-proto.js';
import type { Logger } from '../../runtime/log.js';
import type { BatchTransport, EventBatch } from '../pipeline/channels.js';
import type { Identity } from './enroll.js';

export interface ServerTask {
  readonly id: string;
  readonly kind: string;
  readonly params: unknown;
}

export interface GrpcTransportOptions {
  readonly identity: Identity;
  /** host:port of the gateways, tried in turn. */
  readonly addresses: readonly string[];
  readonly agentVersion: string;
  readonly log: Logger;
  /** Configuration pushed by the server (YAML of the agent's group). */
  readonly onConfig?: (yaml: string, version: number) => void;
  /** A task; its result goes back with `taskResult`. */
  readonly onTask?: (task: ServerTask) => void;
  readonly connectTimeoutMs?: number;
}

type Stream = grpc.ClientDuplexStream<AgentMessage, ServerMessage>;

interface Pending {
  readonly lastSeq: string;
  readonly resolve: () => void;
  readonly reject: (error: HadesError) => void;
}

export class GrpcTransport implements BatchTransport {
  readonly name = 'server';
  private client: grpc.Client | undefined;
  private stream: Stream | undefined;
  private welcomed: Promise<void> | undefined;
  private next = 0;
  private pending: Pending | undefined;
  private closed = false;
  /** Batches the server refused for good (invalid): dropped from the spool, counted. */
  rejectedBatches = 0;
  rejectedEvents = 0;
  serverVersion: string | undefined;

  constructor(private readonly options: GrpcTransportOptions) {
    if (options.addresses.length === 0) throw new HadesError('HADES_ERR_CONFIG_VALUE', 'outputs.server.addresses is empty and the enrollment gave no gateway');
  }

  get connected(): boolean {
    return this.stream !== undefined;
  }

  private open(signal: AbortSignal): Promise<void> {
    if (this.welcomed) return this.welcomed;
    const address = this.options.addresses[this.next++ % this.options.addresses.length]!;
    const { identity } = this.options;
    const credentials = grpc.credentials.createSsl(Buffer.from(identity.caPem), Buffer.from(identity.keyPem), Buffer.from(identity.certPem));
    const Client = gatewayService();
    const client = new Client(address, credentials, { ...channelOptions }) as unknown as grpc.Client & { Connect(): Stream };
    this.client = client;
    const stream = client.Connect();
    this.stream = stream;
    const welcomed = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(new HadesError('HADES_ERR_SERVER_UNREACHABLE', `${address}: no answer within ${this.options.connectTimeoutMs ?? 10_000} ms`)), this.options.connectTimeoutMs ?? 10_000);
      const fail = (error: HadesError) => {
        clearTimeout(timer);
        reject(error);
        this.drop(stream, error);
      };
      const onAbort = () => fail(new HadesError('HADES_ERR_SERVER_UNREACHABLE', 'stopping'));
      signal.addEventListener('abort', onAbort, { once: true });
      stream.on('data', (message: ServerMessage) => {
        if (message.welcome) {
          clearTimeout(timer);
          signal.removeEventListener('abort', onAbort);
          this.serverVersion = message.welcome.server_version;
          this.options.log.info('connected to the server', { address, agent: message.welcome.agent_id, server_version: message.welcome.server_version });
          resolve();
          return;
        }
        this.onMessage(message);
      });
      stream.on('error', (error: grpc.ServiceError) => {
        const code = error.code === grpc.status.PERMISSION_DENIED && /HADES_ERR_AGENT_REVOKED/.test(error.details) ? 'HADES_ERR_AGENT_REVOKED' : error.code === grpc.status.PERMISSION_DENIED ? 'HADES_ERR_AGENT_UNKNOWN' : 'HADES_ERR_SERVER_UNREACHABLE';
        fail(new HadesError(code, `${address}: ${error.details || error.message}`));
      });
      stream.on('end', () => fail(new HadesError('HADES_ERR_SERVER_UNREACHABLE', `${address}: the server ended the stream`)));
    });
    this.welcomed = welcomed;
    stream.write({
      hello: { agent_version: this.options.agentVersion, hostname: os.hostname(), addresses: [], os: `${os.type()} ${os.release()}`, kernel: os.release(), config_version: 0 },
    });
    return welcomed;
  }

  /** Forgets a stream that failed: the next send opens a new one (to the next address). */
  private drop(stream: Stream, error: HadesError): void {
    if (this.stream !== stream) return;
    this.stream = undefined;
    this.welcomed = undefined;
    stream.cancel();
    this.client?.close();
    this.client = undefined;
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(error);
  }

  private onMessage(message: ServerMessage): void {
    if (message.ack) {
      const pending = this.pending;
      if (pending && String(message.ack.last_seq) === pending.lastSeq) {
        this.pending = undefined;
        pending.resolve();
      }
    } else if (message.nack) {
      const pending = this.pending;
      if (!pending || String(message.nack.last_seq) !== pending.lastSeq) {
        this.options.log.warn('the server refused a message', { code: message.nack.code, reason: message.nack.message });
        return;
      }
      this.pending = undefined;
      if (message.nack.permanent) {
        // Sending it again cannot help: it leaves the spool, counted.
        this.rejectedBatches++;
        this.options.log.error('the server refused a batch for good; dropped', { code: message.nack.code, reason: message.nack.message });
        pending.resolve();
      } else {
        pending.reject(new HadesError('HADES_ERR_OUTPUT_FAILED', `the server could not store the batch: ${message.nack.code}: ${message.nack.message}`));
      }
    } else if (message.config) {
      this.options.onConfig?.(message.config.yaml, Number(message.config.version));
    } else if (message.task) {
      let params: unknown = {};
      try {
        params = message.task.params_json ? JSON.parse(message.task.params_json) : {};
      } catch {
        params = {};
      }
      this.options.onTask?.({ id: message.task.task_id, kind: message.task.kind, params });
    }
  }

  async send(batch: EventBatch, signal: AbortSignal): Promise<void> {
    if (this.closed) throw new HadesError('HADES_ERR_OUTPUT_FAILED', 'transport closed');
    await this.open(signal);
    const stream = this.stream;
    if (!stream) throw new HadesError('HADES_ERR_SERVER_UNREACHABLE', 'stream lost');
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => this.drop(stream, new HadesError('HADES_ERR_OUTPUT_FAILED', 'stopping'));
      signal.addEventListener('abort', onAbort, { once: true });
      const done = () => signal.removeEventListener('abort', onAbort);
      this.pending = {
        lastSeq: String(batch.lastSeq),
        resolve: () => {
          done();
          resolve();
        },
        reject: (error) => {
          done();
          reject(error);
        },
      };
      stream.write({ batch: { first_seq: batch.firstSeq, last_seq: batch.lastSeq, events: batch.events, ndjson: batch.data } });
    });
  }

  /** The agent_health figures, when connected. */
  heartbeat(health: unknown): void {
    this.stream?.write({ heartbeat: { health_json: JSON.stringify(health) } });
  }

  taskResult(taskId: string, status: 'done' | 'failed', result: unknown): void {
    this.stream?.write({ task_result: { task_id: taskId, status, result_json: JSON.stringify(result) } });
  }

  async close(): Promise<void> {
    this.closed = true;
    const stream = this.stream;
    if (stream) {
      stream.end();
      this.drop(stream, new HadesError('HADES_ERR_OUTPUT_FAILED', 'transport closed'));
    }
  }
}
