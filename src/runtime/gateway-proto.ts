/**
 * The agent gateway's service definition, loaded from proto/hades/agent/v1/gateway.proto, and
 * the TypeScript shape of its messages as @grpc/proto-loader hands them over (field names as in
 * the .proto, 64-bit integers as strings). Both ends, the server's gateway and the agent's
 * transport, use this one definition.
 */
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export const PROTO_FILE = fileURLToPath(new URL('../../../proto/hades/agent/v1/gateway.proto', import.meta.url));
/** Largest message either end accepts: 8 MiB after decompression. */
export const MAX_MESSAGE_BYTES = 8 * 1024 * 1024;

export interface HelloMessage {
  agent_version: string;
  hostname: string;
  addresses: string[];
  os: string;
  kernel: string;
  config_version: string | number;
}
export interface BatchMessage {
  first_seq: string | number;
  last_seq: string | number;
  events: number;
  ndjson: Buffer;
  /** The lines gzip-compressed by the agent, instead of `ndjson` (a server announcing NDJSON_GZIP). */
  ndjson_gzip?: Buffer;
  /** With ndjson_gzip: the bytes of the lines it inflates to. */
  ndjson_size?: number;
}
export interface AgentMessage {
  hello?: HelloMessage;
  batch?: BatchMessage;
  heartbeat?: { health_json: string };
  task_result?: { task_id: string; status: string; result_json: string };
  /** A certificate request (PEM PKCS#10) for a new key pair, naming the agent's own id. */
  renew?: { csr: string };
  body?: string;
}
/** The answer to a RenewRequest: the certificate, or a coded refusal. */
export interface RenewResponseMessage {
  certificate?: string;
  error?: { code: string; message: string };
  result?: string;
}
export interface ServerMessage {
  welcome?: { agent_id: string; server_version: string; features?: string[] };
  ack?: { last_seq: string | number; stored: number; duplicates: number; rejected: number };
  nack?: { last_seq: string | number; code: string; message: string; permanent: boolean };
  /** The configuration of the agent's groups. */
  config?: { version: string | number; yaml: string };
  /** None of the agent's groups has a configuration: it runs its own file. */
  own_config?: { reason: string };
  task?: { task_id: string; kind: string; params_json: string };
  renew?: RenewResponseMessage;
  /** The server asks the agent to renew its certificate now. */
  renew_now?: { reason: string; immediately?: boolean };
  /** The CAs to trust from now on (PEM each), and which one issues agent certificates (CA rotation). */
  trust?: { ca: string[]; issuing_sha256: string };
  body?: string;
}

let constructor: grpc.ServiceClientConstructor | undefined;

/** The AgentGateway client constructor (its `.service` is the server's definition). */
export function gatewayService(): grpc.ServiceClientConstructor {
  if (!constructor) {
    // grpc-js writes its own errors to stderr ("E No address added out of total 1 resolved");
    // both ends report every failure with a code of their own, so it stays quiet unless a person
    // debugging asks for its traces with GRPC_VERBOSITY.
    if (process.env['GRPC_VERBOSITY'] === undefined) grpc.setLogVerbosity(grpc.logVerbosity.NONE);
    const definition = protoLoader.loadSync(PROTO_FILE, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
    const pkg = grpc.loadPackageDefinition(definition) as unknown as { hades: { agent: { v1: { AgentGateway: grpc.ServiceClientConstructor } } } };
    constructor = pkg.hades.agent.v1.AgentGateway;
  }
  return constructor;
}

/** The Welcome's feature: this server takes batches the agent compressed (EventBatch.ndjson_gzip). */
export const NDJSON_GZIP = 'ndjson_gzip';

/**
 * grpc-js's write flag for a message it must not compress (WriteFlags.NoCompress, a const enum it
 * does not export), passed where a stream's write() takes its encoding: a batch compressed by the
 * agent would only cost a second compression.
 */
export const NO_COMPRESS = 2 as unknown as BufferEncoding;

/** Channel options both ends share: gzip, keepalive, message size. */
export const channelOptions = {
  'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
  'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
  'grpc.default_compression_algorithm': 2, // gzip
  'grpc.keepalive_time_ms': 30_000,
  'grpc.keepalive_timeout_ms': 20_000,
  'grpc.http2.min_ping_interval_without_data_ms': 10_000,
} as const;
