/**
 * The server under fleet load: `hades server` as its own process, a fleet of agents enrolled
 * for real (one enrollment token, key pair and client certificate each), one gRPC stream per
 * agent over mutual TLS, and realistic event batches on every stream.
 *
 *   node dist/bench/server-load.js [STREAMS=1000] [SECONDS=60] [BATCH_EVENTS=500]
 *
 * Environment (all optional):
 * - HADES_BENCH_RATE: events/s offered by the whole fleet. 0 (the default) saturates: every
 *   stream always has a full batch of BATCH_EVENTS ready, so the run measures the most the server
 *   stores, and the acknowledgement time is then the time to work through the queue of every
 *   stream's batch. Above 0, each stream gains events at RATE/STREAMS per second and, as the
 *   agent's spooled channel does, sends what has gathered (at most BATCH_EVENTS) as soon as it
 *   has fewer than INFLIGHT batches waiting for their Ack; what it cannot send yet is its
 *   backlog (the agent's spool), reported at the end.
 * - HADES_BENCH_INFLIGHT: batches in flight per stream (1, as the agent).
 * - HADES_BENCH_WORKERS: load generator threads (2); the streams are shared out between them.
 * - HADES_BENCH_WARMUP: seconds of load before the measured period (10).
 * - HADES_BENCH_TICK_MS: with a rate, how often a stream with nothing in flight looks for new
 *   events (100).
 * - HADES_BENCH_COMPRESS: how batches are compressed. `agent` (the default): as the agent does
 *   with a server that takes it, the batch's NDJSON gzip-compressed by the sender into
 *   `ndjson_gzip` and sent without gRPC's own compression; `grpc`: gRPC's per-message gzip, as
 *   agents did before (and do with an older server); `none`: uncompressed, to price compression.
 * - HADES_BENCH_PRECOMPUTE: 1 (the default, with `agent`) makes every batch before the load
 *   starts: each stream's events rendered and compressed ahead, in pieces of a whole batch
 *   (saturation) or of HADES_BENCH_CHUNK events (with a rate; 5 by default, one gzip member each,
 *   a batch being the pieces gathered so far), so that the load generator's CPU during the run is
 *   the streams' and not the remote agents' work of making their batches. The pool holds what
 *   HADES_BENCH_POOL_RATE events/s (60,000 by default; with a rate, the rate) need for the warm-up
 *   and the measured period, plus a fifth; a stream whose pool runs dry renders on the fly, and the
 *   run says how many events it did so for. 0: every batch is made as it is sent.
 * - HADES_BENCH_SERVER_NODE_ARGS: extra Node.js options for the server process, e.g.
 *   `--cpu-prof --cpu-prof-dir=/tmp/prof` (the profile is written when the server stops).
 * - HADES_BENCH_KEEP=1 keeps the temporary folder (server data, agent identities).
 * - HADES_BENCH_SUSPICIOUS: the share of event templates drawn from the whole mix (1, the
 *   default), whose programs, arguments, users and parents trip the rules often (arguments under
 *   /tmp, a download URL, shells under web servers, service accounts): about 7% of its events
 *   raise an alert, an alert storm. The rest are drawn from administration and deployment work
 *   alone (listing, reading logs, systemctl, git, packages, as deploy, ci or root under cron,
 *   sshd or systemd; connections by curl, git and apt to ports 80 and 443), which the pack leaves
 *   alone; e.g. 0.01 prices detection at a calmer fleet's rate of alerts.
 *
 * Events are exec (75%) and connect (25%) events built from exampleEvent with varied programs,
 * arguments, users, ancestors and addresses, 1 to 2.5 KB each, every one with its own
 * `event.id`, the stream's host name and agent id, and the time it was sent. Templates are
 * serialised once with placeholders, so making a batch is string concatenation (the generator
 * shares the machine's two cores with the server; its CPU is reported with the server's).
 *
 * Reported first: the time to create the tokens, enroll every agent and connect every stream.
 * Then, measured between the end of the warm-up and the end of the run: events stored (the sum
 * of `stored` of the Acks received, cross-checked with the rows of the store whose `ingested`
 * time falls in the period, per second on both sides, and every Ack of the run against the row
 * count at the end), batches/s, the time from writing a batch on its stream to receiving its Ack
 * (p50, p90, p99, max) and the part of it up to the server's taking it for storing (`ingested`,
 * stamped as the ingest worker checks the batch, just ahead of the commit, minus the
 * `@timestamp` the generator gave the batch), CPU of the server and of the generator process
 * (all threads, from /proc/PID/stat) and of everything else on the machine (/proc/stat; the
 * machine may be shared), the server's main thread running, waiting for a CPU and idle
 * (/proc/PID/task/PID/schedstat), and the server's resident memory (peak, and at the end of the
 * period), and the detection stage's counters read from GET /api/v1/rules at the end (events
 * evaluated by the default rule pack, alerts raised, and the time from a batch's arrival at the
 * gateway to each alert it raised: p50, p99, max). Prints a Markdown table and the verdict against the target of the server issue
 * (50,000 events/s stored, p99 Ack under 1 s): throughput from any run, latency only from a run
 * with a rate (under saturation the Ack time is the queue, by construction).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { gzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import Database from 'better-sqlite3';
import { enroll, httpsJson, type Identity } from '../src/agent/transport/enroll.js';
import { checkEvent, exampleEvent } from '../src/common/events/index.js';
import { channelOptions, gatewayService, NO_COMPRESS, type AgentMessage, type ServerMessage } from '../src/runtime/gateway-proto.js';
import { rssKb, ticks } from './proc.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const envNumber = (name: string, fallback: number): number => {
  const text = process.env[name];
  const value = text === undefined || text === '' ? fallback : Number(text);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a number >= 0, not '${text}'`);
  return value;
};

// ----- what the main thread and the workers exchange -----

interface AgentCredentials {
  readonly agentId: string;
  readonly host: string;
  readonly keyPem: string;
  readonly certPem: string;
  readonly caPem: string;
}

interface WorkerInput {
  readonly index: number;
  readonly agents: readonly AgentCredentials[];
  readonly gateway: string;
  readonly batchEvents: number;
  /** Events/s per stream; 0 saturates. */
  readonly ratePerStream: number;
  readonly inflight: number;
  readonly tickMs: number;
  readonly compress: Compress;
  readonly precompute: boolean;
  /** Events each stream's pool holds (precompute), the events of one piece of it, and the rate its stamps assume. */
  readonly poolEvents: number;
  readonly poolRatePerStream: number;
  readonly chunkEvents: number;
  /** The share of templates from the whole mix (HADES_BENCH_SUSPICIOUS); the rest are calm. */
  readonly suspicious: number;
}

type Compress = 'agent' | 'grpc' | 'none';

type Phase = 'idle' | 'warmup' | 'measure' | 'stop';

interface Counters {
  batches: number;
  events: number;
  stored: number;
  duplicates: number;
  rejected: number;
  nacks: number;
}

type ToMain =
  | { readonly type: 'connected'; readonly streams: number; readonly failed: number; readonly ms: number; readonly firstError?: string; readonly pooled: number; readonly pooledBytes: number; readonly poolMs: number }
  | { readonly type: 'second'; readonly stored: number; readonly batches: number }
  | {
      readonly type: 'report';
      readonly warmup: Counters;
      readonly measure: Counters;
      readonly drain: Counters;
      readonly sent: { readonly batches: number; readonly events: number };
      readonly latencies: Float64Array;
      readonly streamErrors: number;
      readonly firstError?: string;
      readonly streamsAtEnd: number;
      readonly backlogEvents: number;
      readonly unacked: number;
      /** Events rendered during the run because the stream's pool had run dry (precompute). */
      readonly renderedLive: number;
    };

type ToWorker = { readonly type: 'phase'; readonly phase: Phase };

// ----- events -----

/** A deterministic generator (mulberry32), so that runs compare. */
function randomFrom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PROGRAMS = ['bash', 'sh', 'curl', 'wget', 'python3', 'perl', 'ls', 'cat', 'grep', 'sed', 'awk', 'ps', 'ss', 'systemctl', 'journalctl', 'sudo', 'ssh', 'scp', 'git', 'node', 'java', 'nginx', 'php-fpm8.2', 'cron', 'logrotate', 'apt-get', 'dpkg', 'tar', 'gzip', 'find', 'xargs', 'sort', 'head', 'tail', 'id', 'uname'];
const ARGUMENTS = ['-s', '-la', '-v', '--verbose', '/var/log/syslog', '/etc/passwd', 'http://203.0.113.7/x.sh', 'status', 'restart', 'nginx.service', '--since', '-1h', '-rf', '/tmp/build', 'origin', 'main', '-c', 'import sys; print(sys.argv)', '/srv/www/index.php', '--format=json', 'deploy@10.0.0.9', '/home/deploy/release.tar.gz', '-o', '/dev/null', '-H', 'Accept: application/json'];
const USERS: readonly [string, string][] = [['0', 'root'], ['33', 'www-data'], ['110', 'postgres'], ['1000', 'deploy'], ['1001', 'alice'], ['1002', 'bob'], ['65534', 'nobody'], ['34', 'backup'], ['1003', 'ci']];
const DIRECTORIES = ['/', '/tmp', '/root', '/home/deploy', '/srv/www', '/var/lib/app', '/opt/app'];
const PORTS = [80, 443, 22, 53, 5432, 6379, 8080, 4444];
/** Everyday administration and deployment (HADES_BENCH_SUSPICIOUS): what a calm fleet mostly runs. */
const CALM_PROGRAMS = ['ls', 'cat', 'grep', 'sed', 'awk', 'ps', 'systemctl', 'journalctl', 'git', 'tar', 'gzip', 'sort', 'head', 'tail', 'logrotate', 'apt-get', 'dpkg', 'df', 'du'];
const CALM_ARGUMENTS = ['-s', '-la', '-v', '--verbose', '/var/log/syslog', 'status', 'restart', 'nginx.service', '--since', '-1h', 'origin', 'main', '--format=json', '/home/deploy/release.tar.gz', '-o', 'release.tar', '-h', '--no-pager', 'pull', 'install', '-y'];
const CALM_USERS: readonly [string, string][] = [['0', 'root'], ['1000', 'deploy'], ['1003', 'ci']];
const CALM_PARENTS = ['bash', 'cron', 'sshd', 'systemd'];
const CALM_CONNECTS = ['curl', 'git', 'apt-get'];
const CALM_DIRECTORIES = ['/', '/root', '/home/deploy', '/var/lib/app', '/opt/app'];

/** Placeholders filled per event; their order in MARKERS is the order of `values` in render. */
const MARKERS = ['@@TS@@', '@@ID@@', '@@HOST@@', '@@AGENT@@'] as const;
const MARKER_RE = /@@(TS|ID|HOST|AGENT)@@/;

interface Template {
  readonly literals: readonly string[];
  readonly slots: readonly number[];
}

function compile(event: Record<string, unknown>): Template {
  const pieces = JSON.stringify(event).split(MARKER_RE);
  const literals: string[] = [];
  const slots: number[] = [];
  pieces.forEach((piece, i) => {
    if (i % 2 === 0) literals.push(piece);
    else slots.push(MARKERS.indexOf(`@@${piece}@@` as (typeof MARKERS)[number]));
  });
  return { literals, slots };
}

function render(template: Template, values: readonly string[]): string {
  const { literals, slots } = template;
  let text = literals[0] as string;
  for (let i = 0; i < slots.length; i++) text += (values[slots[i] as number] as string) + (literals[i + 1] as string);
  return text;
}

/** A pool of event templates: exec (75%) and connect (25%), 1 to 2.5 KB each. */
function makeTemplates(count: number, seed: number, suspicious: number): Template[] {
  const random = randomFrom(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;
  // Calm arguments never name a file under /tmp (and draw no number for it).
  const argv = (program: string, most: number, calm = false): string[] => [program, ...Array.from({ length: 1 + Math.floor(random() * most) }, () => (calm ? pick(CALM_ARGUMENTS) : random() < 0.15 ? `/tmp/${Math.floor(random() * 1e9).toString(36)}` : pick(ARGUMENTS)))];
  const exec = exampleEvent('exec') as any;
  const connect = exampleEvent('connect') as any;
  const templates: Template[] = [];
  for (let n = 0; n < count; n++) {
    const isExec = random() < 0.75;
    // Drawn only when asked for, so that the whole mix is the same templates as before the option.
    const calm = suspicious < 1 && random() >= suspicious;
    const program = calm ? pick(isExec ? CALM_PROGRAMS : CALM_CONNECTS) : pick(PROGRAMS);
    const args = argv(program, isExec ? 14 : 4, calm);
    const pid = 1000 + Math.floor(random() * 4_000_000);
    const ppid = 1000 + Math.floor(random() * 4_000_000);
    const [uid, user] = pick(calm ? CALM_USERS : USERS);
    const ancestors = Array.from({ length: 1 + Math.floor(random() * 3) }, () => {
      const name = pick(calm ? CALM_PARENTS : PROGRAMS);
      return { pid: 1 + Math.floor(random() * 4_000_000), name, executable: `/usr/bin/${name}`, args: calm ? [name] : argv(name, 5) };
    });
    const base = isExec ? exec : connect;
    const process = {
      ...base.process,
      pid,
      entity_id: `@@HOST@@:${pid}:${1_764_316_800_000 + n}`,
      name: program,
      executable: `/usr/bin/${program}`,
      args,
      command_line: args.join(' '),
      working_directory: pick(calm ? CALM_DIRECTORIES : DIRECTORIES),
      user: { id: uid, name: user },
      parent: { pid: ppid, entity_id: `@@HOST@@:${ppid}:${1_764_316_700_000 + n}`, name: ancestors[0]!.name, executable: ancestors[0]!.executable },
      ...(isExec ? { args_count: args.length, start: '@@TS@@', hash: { sha256: Array.from({ length: 64 }, () => pick([...'0123456789abcdef'])).join('') } } : {}),
    };
    const hades = { ancestors, ancestry: `${ancestors.map((a) => `${a.name}(${a.pid})`).join(' < ')} < systemd(1)` };
    const event = {
      ...base,
      '@timestamp': '@@TS@@',
      event: { ...base.event, id: '@@ID@@', sequence: n },
      host: { ...base.host, name: '@@HOST@@' },
      agent: { ...base.agent, id: '@@AGENT@@' },
      process,
      ...(isExec
        ? { hades: { ...hades, process: { ...exec.hades.process, tty: random() < 0.2 ? 'pts/0' : undefined } } }
        : {
            destination: { ip: `203.0.${Math.floor(random() * 256)}.${Math.floor(random() * 256)}`, port: calm ? pick([80, 443]) : pick(PORTS) },
            source: { ip: '10.0.0.5', port: 30_000 + Math.floor(random() * 30_000) },
            hades: { socket: { fd: 3 + Math.floor(random() * 60) }, ...hades },
          }),
    };
    // The key order matters to the server: `@timestamp` first, then `event` (as the agent writes).
    const ordered = { '@timestamp': event['@timestamp'], event: event.event, ...event };
    const template = compile(JSON.parse(JSON.stringify(ordered)) as Record<string, unknown>);
    const sample = JSON.parse(render(template, [new Date().toISOString(), 'sample-id', 'host-1.prod.example.com', 'ag_0123456789abcdef'])) as unknown;
    const check = checkEvent(sample);
    if (!check.ok) throw new Error(`a generated event does not pass the schema: ${JSON.stringify(check.problems)}`);
    templates.push(template);
  }
  return templates;
}

// ----- the load generator (worker threads) -----

/** A batch's bytes as sent: the lines, or (`gzip`) their gzip in ndjson_gzip, inflating to `size` bytes. */
interface Payload {
  readonly ndjson: Buffer;
  readonly gzip?: Buffer;
  readonly size: number;
}

const NO_BYTES = Buffer.alloc(0);
const SENT = { gzip: NO_BYTES, size: 0 };

type Call = grpc.ClientDuplexStream<AgentMessage, ServerMessage>;

/** The agent's resend backoff after a temporary Nack (src/agent/pipeline/channels.ts). */
const RETRY_MIN_MS = 200;
const RETRY_MAX_MS = 30_000;

interface AgentStream {
  readonly agent: AgentCredentials;
  readonly client: grpc.Client;
  readonly call: Call;
  readonly idPrefix: string;
  /** Write times of the batches waiting for their Ack, oldest first (Acks come in order). */
  readonly waiting: { readonly seq: number; readonly events: number; readonly t0: number; readonly payload: Payload }[];
  /** Batches' pieces made ahead (precompute), each chunkEvents events gzip-compressed with the size of its lines, and the next to send. */
  readonly pool: { gzip: Buffer; size: number }[];
  poolNext: number;
  seq: number;
  /** After a temporary Nack the batch is sent again after this long (with jitter), doubling to 30 s, as the agent does. */
  backoffMs: number;
  nextId: number;
  /** Events gathered and not sent yet (rate mode). */
  backlog: number;
  open: boolean;
}

async function runWorker(input: WorkerInput): Promise<void> {
  // grpc-js names the server by its IP address in TLS (DEP0123), as the agent does: not news.
  process.noDeprecation = true;
  const port = parentPort;
  if (!port) throw new Error('not a worker');
  const send = (message: ToMain, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);
  const templates = makeTemplates(2048, 0x5eed + input.index * 7919, input.suspicious);
  const Client = gatewayService();
  // The agent keeps gRPC's gzip for its other messages and sends its own compressed batches as they are.
  const options = { ...channelOptions, 'grpc.default_compression_algorithm': input.compress === 'none' ? 0 : 2 };
  let renderedLive = 0;

  let phase: Phase = 'idle';
  const empty = (): Counters => ({ batches: 0, events: 0, stored: 0, duplicates: 0, rejected: 0, nacks: 0 });
  const counters: Record<'warmup' | 'measure' | 'drain', Counters> = { warmup: empty(), measure: empty(), drain: empty() };
  const sent = { batches: 0, events: 0 };
  let latencies = new Float64Array(1 << 16);
  let latencyCount = 0;
  /** Resends waiting for their backoff after a temporary Nack; cleared when the worker ends. */
  const retries = new Set<NodeJS.Timeout>();
  let streamErrors = 0;
  let firstError: string | undefined;
  let second = { stored: 0, batches: 0 };
  const streams: AgentStream[] = [];
  let finished: (() => void) | undefined;

  const unacked = () => streams.reduce((n, s) => n + s.waiting.length, 0);
  const checkFinished = () => {
    if (phase === 'stop' && finished && unacked() === 0) finished();
  };

  /** The NDJSON of the stream's next `events` events, stamped `ts`, each with its own id. */
  const renderLines = (stream: AgentStream, events: number, ts: string): Buffer => {
    const lines = new Array<string>(events);
    const values = [ts, '', stream.agent.host, stream.agent.agentId];
    // Ids as the agent makes them (src/agent/sequencer.ts): the time first, then the stream's own part.
    const time = `${Date.parse(ts).toString(36).padStart(9, '0')}-${stream.idPrefix}`;
    for (let i = 0; i < events; i++) {
      values[1] = `${time}${(stream.nextId++).toString(36)}`;
      lines[i] = render(templates[(stream.nextId * 7 + i) % templates.length] as Template, values);
    }
    return Buffer.from(`${lines.join('\n')}\n`);
  };

  /** A batch of `events`: from the stream's pool when it has them, made now otherwise. */
  const payloadOf = (stream: AgentStream, events: number): Payload => {
    const pieces = events / input.chunkEvents;
    if (input.precompute && Number.isInteger(pieces) && stream.pool.length - stream.poolNext >= pieces) {
      const taken = stream.pool.slice(stream.poolNext, stream.poolNext + pieces);
      // Sent pieces are let go (a resend keeps its own reference in `waiting`).
      for (let i = 0; i < pieces; i++) stream.pool[stream.poolNext + i] = SENT;
      stream.poolNext += pieces;
      const size = taken.reduce((n, p) => n + p.size, 0);
      return { ndjson: NO_BYTES, gzip: taken.length === 1 ? taken[0]!.gzip : Buffer.concat(taken.map((p) => p.gzip)), size };
    }
    if (input.precompute) renderedLive += events;
    const ndjson = renderLines(stream, events, new Date().toISOString());
    return input.compress === 'agent' ? { ndjson: NO_BYTES, gzip: gzipSync(ndjson), size: ndjson.length } : { ndjson, size: ndjson.length };
  };

  const writePayload = (stream: AgentStream, seq: number, events: number, payload: Payload) => {
    const batch = { first_seq: seq, last_seq: seq, events, ndjson: payload.ndjson };
    if (payload.gzip) stream.call.write({ batch: { ...batch, ndjson_gzip: payload.gzip, ndjson_size: payload.size } }, NO_COMPRESS);
    else stream.call.write({ batch });
  };

  const writeBatch = (stream: AgentStream, events: number) => {
    const payload = payloadOf(stream, events);
    stream.seq++;
    sent.batches++;
    sent.events += events;
    stream.waiting.push({ seq: stream.seq, events, t0: performance.now(), payload });
    writePayload(stream, stream.seq, events, payload);
  };

  /** Sends what the stream may: a full batch (saturation) or what has gathered (rate). */
  const pump = (stream: AgentStream) => {
    while (stream.open && (phase === 'warmup' || phase === 'measure') && stream.waiting.length < input.inflight) {
      if (input.ratePerStream === 0) {
        writeBatch(stream, input.batchEvents);
      } else {
        // Made ahead, a batch is whole pieces: what has gathered, down to a multiple of a piece.
        const step = input.precompute ? input.chunkEvents : 1;
        const ready = Math.floor(Math.min(stream.backlog, input.batchEvents) / step) * step;
        if (ready < 1) return;
        stream.backlog -= ready;
        writeBatch(stream, ready);
      }
    }
  };

  const onAck = (stream: AgentStream, ack: NonNullable<ServerMessage['ack']>) => {
    const now = performance.now();
    const head = stream.waiting[0];
    if (!head || String(head.seq) !== String(ack.last_seq)) {
      streamErrors++;
      firstError ??= `Ack for ${String(ack.last_seq)} while waiting for ${String(head?.seq)}`;
      return;
    }
    stream.waiting.shift();
    stream.backoffMs = RETRY_MIN_MS;
    const bucket = phase === 'measure' ? counters.measure : phase === 'stop' ? counters.drain : counters.warmup;
    bucket.batches++;
    bucket.events += head.events;
    bucket.stored += ack.stored;
    bucket.duplicates += ack.duplicates;
    bucket.rejected += ack.rejected;
    second.stored += ack.stored;
    second.batches++;
    if (phase === 'measure') {
      if (latencyCount === latencies.length) {
        const bigger = new Float64Array(latencies.length * 2);
        bigger.set(latencies);
        latencies = bigger;
      }
      latencies[latencyCount++] = now - head.t0;
    }
    pump(stream);
    checkFinished();
  };

  const connectOne = (agent: AgentCredentials) =>
    new Promise<AgentStream>((resolve, reject) => {
      const credentials = grpc.credentials.createSsl(Buffer.from(agent.caPem), Buffer.from(agent.keyPem), Buffer.from(agent.certPem));
      const client = new Client(input.gateway, credentials, options) as unknown as grpc.Client & { Connect(): Call };
      const call = client.Connect();
      const stream: AgentStream = { agent, client, call, idPrefix: `${agent.agentId}-`, waiting: [], pool: [], poolNext: 0, seq: 0, backoffMs: RETRY_MIN_MS, nextId: 0, backlog: Math.random() * 2 * Math.max(1, input.ratePerStream * (input.tickMs / 1000)), open: false };
      const timer = setTimeout(() => reject(new Error(`${agent.agentId}: no Welcome within 60 s`)), 60_000);
      call.on('data', (message: ServerMessage) => {
        if (message.welcome) {
          clearTimeout(timer);
          stream.open = true;
          resolve(stream);
        } else if (message.ack) {
          onAck(stream, message.ack);
        } else if (message.nack) {
          const bucket = phase === 'measure' ? counters.measure : phase === 'stop' ? counters.drain : counters.warmup;
          bucket.nacks++;
          const head = stream.waiting[0];
          if (!message.nack.permanent && head !== undefined && String(head.seq) === String(message.nack.last_seq)) {
            // Refused for now (the server is busy): the same batch again after a backoff, as the agent does.
            const delay = stream.backoffMs * (0.5 + Math.random() / 2);
            stream.backoffMs = Math.min(RETRY_MAX_MS, stream.backoffMs * 2);
            const retry = setTimeout(() => {
              retries.delete(retry);
              if (stream.open) writePayload(stream, head.seq, head.events, head.payload);
            }, delay);
            retries.add(retry);
            return;
          }
          firstError ??= `Nack ${message.nack.code}: ${message.nack.message}`;
          stream.waiting.shift();
          pump(stream);
          checkFinished();
        }
      });
      const lost = (why: string) => {
        clearTimeout(timer);
        if (stream.open) streamErrors++;
        firstError ??= `${agent.agentId}: ${why}`;
        stream.open = false;
        stream.waiting.length = 0;
        reject(new Error(why));
        checkFinished();
      };
      call.on('error', (error: grpc.ServiceError) => lost(error.details || error.message));
      call.on('end', () => lost('the server ended the stream'));
      call.write({ hello: { agent_version: '0.1.0', hostname: agent.host, addresses: ['10.0.0.5'], os: 'Linux 6.18.0', kernel: '6.18.0', config_version: 0 } });
    });

  // Connect every stream, a few dozen handshakes at a time.
  const t0 = performance.now();
  let failed = 0;
  let nextAgent = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (nextAgent < input.agents.length) {
        const agent = input.agents[nextAgent++] as AgentCredentials;
        try {
          streams.push(await connectOne(agent));
        } catch (error) {
          failed++;
          firstError ??= (error as Error).message;
        }
      }
    }),
  );
  const connectMs = performance.now() - t0;

  // Every stream's batches made ahead (precompute): rendered and compressed now, not during the run.
  const poolStart = performance.now();
  let pooled = 0;
  let pooledBytes = 0;
  if (input.precompute) {
    const perStream = input.poolRatePerStream;
    const base = Date.now();
    for (const stream of streams) {
      for (let made = 0; made < input.poolEvents; made += input.chunkEvents) {
        // Each piece is stamped with about when it will be sent, at the pool's rate.
        const ts = new Date(base + (made / perStream) * 1000).toISOString();
        const lines = renderLines(stream, input.chunkEvents, ts);
        const piece = gzipSync(lines);
        stream.pool.push({ gzip: piece, size: lines.length });
        pooled += input.chunkEvents;
        pooledBytes += piece.length;
      }
      // Let the streams answer their keepalive pings: a minute of making without a turn of the
      // event loop, and the other side drops the connections as dead.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  send({ type: 'connected', streams: streams.length, failed, ms: connectMs, ...(firstError ? { firstError } : {}), pooled, pooledBytes, poolMs: performance.now() - poolStart });

  const done = new Promise<void>((resolve) => (finished = resolve));
  port.on('message', (message: ToWorker) => {
    if (message.type !== 'phase') return;
    phase = message.phase;
    if (phase === 'warmup') {
      for (const stream of streams) pump(stream);
    }
    if (phase === 'stop') {
      setTimeout(() => finished?.(), 60_000).unref();
      checkFinished();
    }
  });
  const perSecond = setInterval(() => {
    send({ type: 'second', ...second });
    second = { stored: 0, batches: 0 };
  }, 1000);
  let tick: NodeJS.Timeout | undefined;
  if (input.ratePerStream > 0) {
    let last = performance.now();
    tick = setInterval(() => {
      const now = performance.now();
      const gained = (input.ratePerStream * (now - last)) / 1000;
      last = now;
      if (phase !== 'warmup' && phase !== 'measure') return;
      for (const stream of streams) {
        if (!stream.open) continue;
        stream.backlog += gained;
        pump(stream);
      }
    }, input.tickMs);
  }

  await done;
  for (const retry of retries) clearTimeout(retry);
  clearInterval(perSecond);
  if (tick) clearInterval(tick);
  send({ type: 'second', ...second });
  const kept = latencies.slice(0, latencyCount);
  send(
    {
      type: 'report',
      ...counters,
      sent,
      latencies: kept,
      streamErrors,
      ...(firstError ? { firstError } : {}),
      streamsAtEnd: streams.filter((s) => s.open).length,
      backlogEvents: Math.round(streams.reduce((n, s) => n + s.backlog, 0)),
      unacked: unacked(),
      renderedLive,
    },
    [kept.buffer],
  );
  for (const stream of streams) {
    stream.open = false;
    stream.call.removeAllListeners('end');
    stream.call.removeAllListeners('error');
    stream.call.on('error', () => undefined);
    stream.call.end();
    stream.client.close();
  }
}

// ----- the main thread: server, enrollment, workers, measurements -----

interface ServerRun {
  readonly child: ChildProcess;
  readonly api: string;
  readonly gateway: string;
  readonly dataDir: string;
}

async function startServer(work: string): Promise<ServerRun> {
  const dataDir = path.join(work, 'server');
  const config = path.join(work, 'server.yaml');
  writeFileSync(config, `data_dir: ${JSON.stringify(dataDir)}\nlisten: { agents: "127.0.0.1:0", api: "127.0.0.1:0" }\nlog: { level: warn }\n`);
  const nodeArgs = (process.env['HADES_BENCH_SERVER_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
  const child = spawn(process.execPath, [...nodeArgs, path.join(root, 'bin/hades.js'), 'server', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const line = await new Promise<string>((resolve, reject) => {
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      stderr = (stderr + d).slice(-65_536);
      const match = /server listening: [^\n]*\n/.exec(stderr);
      if (match) resolve(match[0]);
    });
    child.on('close', (code) => reject(new Error(`the server exited (${String(code)}): ${stderr}`)));
  });
  child.stderr?.removeAllListeners('data');
  child.stderr?.on('data', (d: string) => {
    stderr = (stderr + d).slice(-65_536);
    if (/"level":"(error|fatal)"/.test(d)) process.stderr.write(`server: ${d}`);
  });
  const api = /API (https:\/\/\S+),/.exec(line)?.[1];
  const gateway = /agent gateway (\S+);/.exec(line)?.[1];
  if (!api || !gateway) throw new Error(`cannot read the server's addresses from: ${line}`);
  return { child, api, gateway, dataDir };
}

async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const closed = new Promise((resolve) => child.on('close', resolve));
  child.kill('SIGINT');
  await closed;
}

/** Runs `task` over `items` with at most `width` at a time; results in order. */
async function inParallel<T, R>(items: readonly T[], width: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) {
        const index = next++;
        results[index] = await task(items[index] as T, index);
      }
    }),
  );
  return results;
}

/** Busy and total jiffies of the whole machine. */
function machineTicks(): { busy: number; total: number } {
  const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1, 9).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: total - idle, total };
}

/** Nanoseconds a thread spent on a CPU and waiting for one (runnable, not running); zeros once gone. */
function schedstat(pid: number, tid = pid): { run: number; wait: number } {
  try {
    const [run = 0, wait = 0] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
    return { run, wait };
  } catch {
    return { run: 0, wait: 0 };
  }
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

async function main(): Promise<void> {
  const [streamsText = '1000', secondsText = '60', batchText = '500'] = process.argv.slice(2);
  const STREAMS = Number(streamsText);
  const SECONDS = Number(secondsText);
  const BATCH = Number(batchText);
  if (!Number.isInteger(STREAMS) || STREAMS < 1 || !(SECONDS > 0) || !Number.isInteger(BATCH) || BATCH < 1 || BATCH > 20_000) {
    throw new Error('usage: server-load.js [STREAMS=1000] [SECONDS=60] [BATCH_EVENTS=500] (1..20000)');
  }
  const RATE = envNumber('HADES_BENCH_RATE', 0);
  const INFLIGHT = Math.max(1, Math.floor(envNumber('HADES_BENCH_INFLIGHT', 1)));
  const WORKERS = Math.max(1, Math.min(STREAMS, Math.floor(envNumber('HADES_BENCH_WORKERS', 2))));
  const WARMUP = envNumber('HADES_BENCH_WARMUP', 10);
  const TICK_MS = Math.max(1, envNumber('HADES_BENCH_TICK_MS', 100));
  const COMPRESS = (process.env['HADES_BENCH_COMPRESS'] || 'agent') as Compress;
  if (!['agent', 'grpc', 'none'].includes(COMPRESS)) throw new Error(`HADES_BENCH_COMPRESS must be agent, grpc or none, not '${COMPRESS}'`);
  const PRECOMPUTE = COMPRESS === 'agent' && envNumber('HADES_BENCH_PRECOMPUTE', 1) !== 0;
  const CHUNK = RATE > 0 ? Math.max(1, Math.min(BATCH, Math.floor(envNumber('HADES_BENCH_CHUNK', 5)))) : BATCH;
  const POOL_RATE = RATE > 0 ? RATE : envNumber('HADES_BENCH_POOL_RATE', 60_000);
  const SUSPICIOUS = Math.max(0, Math.min(1, envNumber('HADES_BENCH_SUSPICIOUS', 1)));
  const POOL_EVENTS = PRECOMPUTE ? Math.ceil(((POOL_RATE / STREAMS) * (WARMUP + SECONDS) * 1.2) / CHUNK) * CHUNK : 0;
  const work = mkdtempSync(path.join(tmpdir(), 'hades-bench-server-'));
  const mode = RATE > 0 ? `${fmt(RATE)} events/s offered (${fmt(RATE / STREAMS, 1)} per stream)` : 'saturation (a full batch always ready)';
  console.log(`server load: ${fmt(STREAMS)} streams, batches of at most ${fmt(BATCH)} events, ${mode}, ${INFLIGHT} in flight per stream, ${WORKERS} generator thread${WORKERS === 1 ? '' : 's'}, compression ${COMPRESS === 'agent' ? `by the agent (ndjson_gzip)${PRECOMPUTE ? `, batches made ahead in pieces of ${fmt(CHUNK)} events` : ''}` : COMPRESS === 'grpc' ? "gRPC's" : 'none'}, warm-up ${WARMUP} s, measured ${SECONDS} s, ${SUSPICIOUS === 1 ? 'the whole event mix' : `${fmt(SUSPICIOUS * 100, 1)}% of templates from the whole mix, the rest calm`}; ${work}`);

  const server = await startServer(work);
  const serverPid = server.child.pid ?? 0;
  let workers: Worker[] = [];
  let sampler: NodeJS.Timeout | undefined;
  try {
    const adminToken = readFileSync(path.join(server.dataDir, 'admin.token'), 'utf8').trim();
    const caPem = readFileSync(path.join(server.dataDir, 'pki', 'ca.pem'), 'utf8');
    console.log(`server pid ${serverPid}: API ${server.api}, gateway ${server.gateway}`);

    // Enrollment, for real: a token each through the API, then the agent's own enroll().
    let t = performance.now();
    const tokens = await inParallel(Array.from({ length: STREAMS }), 16, async () => {
      const response = await httpsJson(`${server.api}/api/v1/tokens/enrollment`, { method: 'POST', body: { ttl: '2h' }, ca: caPem, headers: { authorization: `Bearer ${adminToken}` } });
      const body = response.body as { token?: string; ca_sha256?: string };
      if (response.status !== 201 || !body.token || !body.ca_sha256) throw new Error(`token creation failed: HTTP ${response.status} ${JSON.stringify(response.body)}`);
      return { token: body.token, caSha256: body.ca_sha256 };
    });
    const tokenMs = performance.now() - t;
    t = performance.now();
    const serverTicksEnroll = ticks(serverPid);
    mkdirSync(path.join(work, 'agents'));
    const identities = await inParallel(tokens, 16, (token, i) =>
      enroll({ dataDir: path.join(work, 'agents', String(i)), api: server.api, token: token.token, caSha256: token.caSha256, agentVersion: '0.1.0' }),
    );
    const enrollMs = performance.now() - t;
    const enrollCpu = (ticks(serverPid) - serverTicksEnroll) / 100;
    const distinct = new Set(identities.map((id: Identity) => id.certPem)).size;
    console.log(`enrollment: ${fmt(STREAMS)} tokens in ${fmt(tokenMs / 1000, 1)} s, ${fmt(STREAMS)} agents enrolled in ${fmt(enrollMs / 1000, 1)} s (${fmt(STREAMS / (enrollMs / 1000))}/s, server CPU ${fmt(enrollCpu, 1)} s), ${fmt(distinct)} distinct certificates`);
    const agents: AgentCredentials[] = identities.map((id: Identity, i: number) => ({ agentId: id.agentId, host: `host-${String(i).padStart(4, '0')}.prod.example.com`, keyPem: id.keyPem, certPem: id.certPem, caPem: id.caPem }));

    // The generator.
    const reports: Extract<ToMain, { type: 'report' }>[] = [];
    const secondsLog: number[] = [];
    let secondStored = 0;
    let secondBatches = 0;
    const secondsBatches: number[] = [];
    let recording = false;
    const connected: Extract<ToMain, { type: 'connected' }>[] = [];
    let onConnected: (() => void) | undefined;
    let onReports: (() => void) | undefined;
    // A generator thread that fails ends the run (rather than leaving it waiting for the thread).
    let onFailure: ((error: Error) => void) | undefined;
    const failure = new Promise<never>((_, reject) => (onFailure = reject));
    failure.catch(() => undefined);
    const share = Math.ceil(STREAMS / WORKERS);
    t = performance.now();
    workers = Array.from({ length: WORKERS }, (_, index) => {
      const input: WorkerInput = { index, agents: agents.slice(index * share, (index + 1) * share), gateway: server.gateway, batchEvents: BATCH, ratePerStream: RATE / STREAMS, inflight: INFLIGHT, tickMs: TICK_MS, compress: COMPRESS, precompute: PRECOMPUTE, poolEvents: POOL_EVENTS, chunkEvents: CHUNK, poolRatePerStream: POOL_RATE / STREAMS, suspicious: SUSPICIOUS };
      const worker = new Worker(new URL(import.meta.url), { workerData: input });
      worker.on('message', (message: ToMain) => {
        if (message.type === 'connected') {
          connected.push(message);
          if (connected.length === WORKERS) onConnected?.();
        } else if (message.type === 'second') {
          secondStored += message.stored;
          secondBatches += message.batches;
        } else if (message.type === 'report') {
          reports.push(message);
          if (reports.length === WORKERS) onReports?.();
        }
      });
      worker.on('error', (error) => onFailure?.(new Error(`generator thread ${index} failed: ${error.stack ?? String(error)}`)));
      return worker;
    });
    await Promise.race([new Promise<void>((resolve) => (onConnected = resolve)), failure]);
    const streamsUp = connected.reduce((n, c) => n + c.streams, 0);
    const connectFailed = connected.reduce((n, c) => n + c.failed, 0);
    const connectS = Math.max(...connected.map((c) => c.ms)) / 1000;
    console.log(`streams: ${fmt(streamsUp)} connected (mutual TLS, Hello/Welcome) in ${fmt(connectS, 1)} s${connectFailed ? `, ${connectFailed} failed: ${connected.find((c) => c.firstError)?.firstError}` : ''}`);
    if (PRECOMPUTE) {
      const pooled = connected.reduce((n, c) => n + c.pooled, 0);
      const pooledBytes = connected.reduce((n, c) => n + c.pooledBytes, 0);
      console.log(
        `batches made ahead: ${fmt(pooled)} events (${fmt(POOL_EVENTS)} per stream, for ${fmt(POOL_RATE)}/s over ${WARMUP + SECONDS} s and a fifth more), ${fmt(pooledBytes / 2 ** 20, 1)} MiB compressed (${fmt(pooledBytes / Math.max(1, pooled))} bytes per event), in ${fmt(Math.max(...connected.map((c) => c.poolMs)) / 1000, 1)} s`,
      );
    }

    // Once a second: the stored rate, the server's memory.
    let rssPeak = 0;
    sampler = setInterval(() => {
      try {
        rssPeak = Math.max(rssPeak, rssKb(serverPid));
      } catch {
        // the server is gone; reported below
      }
      if (recording) {
        secondsLog.push(secondStored);
        secondsBatches.push(secondBatches);
      }
      secondStored = 0;
      secondBatches = 0;
    }, 1000);
    const post = (phase: Phase) => {
      for (const worker of workers) worker.postMessage({ type: 'phase', phase } satisfies ToWorker);
    };

    post('warmup');
    console.log(`warm-up: ${WARMUP} s`);
    await sleep(WARMUP * 1000);
    const rssBeforeMeasure = rssKb(serverPid);
    post('measure');
    const start = { at: performance.now(), wall: Date.now(), server: ticks(serverPid), generator: ticks(process.pid), machine: machineTicks(), main: schedstat(serverPid) };
    recording = true;
    rssPeak = rssKb(serverPid);
    console.log(`measuring: ${SECONDS} s`);
    await sleep(SECONDS * 1000);
    const end = { at: performance.now(), wall: Date.now(), server: ticks(serverPid), generator: ticks(process.pid), machine: machineTicks(), main: schedstat(serverPid) };
    const rssEnd = rssKb(serverPid);
    rssPeak = Math.max(rssPeak, rssEnd);
    recording = false;
    post('stop');
    await Promise.race([new Promise<void>((resolve) => (onReports = resolve)), failure]);
    clearInterval(sampler);
    await Promise.all(workers.map((w) => w.terminate()));
    workers = [];

    // The detection stage's counters: the time from a batch's arrival at the gateway to each
    // alert it raised (new alerts only; matches folded into an open alert raise none).
    await sleep(500);
    const rulesState = (await httpsJson(`${server.api}/api/v1/rules`, { method: 'GET', ca: caPem, headers: { authorization: `Bearer ${adminToken}` } })).body as {
      rules: number;
      enabled: number;
      detection: { events: number; matches: number; alerts: number; deduplicated: number; suppressed: number; errors: number; latency_ms: { p50: number; p99: number; max: number; count: number } };
    };
    const detection = rulesState.detection;
    // The store's own count.
    const db = new Database(path.join(server.dataDir, 'hades.db'), { readonly: true, fileMustExist: true });
    const rows = (db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n;
    // Rows by the second of their `ingested` time (stamped just ahead of the commit), over the period.
    const bySecond = db.prepare('SELECT CAST((ingested - ?) / 1000 AS INTEGER) AS s, count(*) AS n FROM events WHERE ingested >= ? AND ingested < ? GROUP BY s').all(start.wall, start.wall, end.wall) as { s: number; n: number }[];
    const rowsInWindow = bySecond.reduce((n, r) => n + r.n, 0);
    // Made live, every event of a batch is stamped with the time the batch is written: ingested
    // minus @timestamp is the time from the write to the server's check, just ahead of its commit
    // (same clock). Made ahead, the stamps are planned times, which say nothing of that.
    const toCommit = PRECOMPUTE
      ? new Float64Array(0)
      : Float64Array.from((db.prepare('SELECT ingested - time AS d FROM events WHERE ingested >= ? AND ingested < ?').raw().all(start.wall, end.wall) as [number][]).map((r) => r[0])).sort();
    const serverSeries = Array.from({ length: Math.floor((end.wall - start.wall) / 1000) }, (_, i) => bySecond.find((r) => r.s === i)?.n ?? 0);
    const serverSeconds = [...serverSeries].sort((a, b) => a - b);
    const dbBytes = (db.pragma('page_count', { simple: true }) as number) * (db.pragma('page_size', { simple: true }) as number);
    db.close();

    // Results.
    const seconds = (end.at - start.at) / 1000;
    const sum = (pick: (r: (typeof reports)[number]) => number) => reports.reduce((n, r) => n + pick(r), 0);
    const measured = { stored: sum((r) => r.measure.stored), batches: sum((r) => r.measure.batches), events: sum((r) => r.measure.events), nacks: sum((r) => r.measure.nacks), duplicates: sum((r) => r.measure.duplicates), rejected: sum((r) => r.measure.rejected) };
    const allStored = sum((r) => r.warmup.stored + r.measure.stored + r.drain.stored);
    const sent = { batches: sum((r) => r.sent.batches), events: sum((r) => r.sent.events) };
    const latencies = new Float64Array(reports.reduce((n, r) => n + r.latencies.length, 0));
    let offset = 0;
    for (const r of reports) {
      latencies.set(r.latencies, offset);
      offset += r.latencies.length;
    }
    latencies.sort();
    const serverCpu = (end.server - start.server) / seconds; // ticks of 10 ms per second = % of a core
    const generatorCpu = (end.generator - start.generator) / seconds;
    // /proc/stat counts jiffies of every CPU: busy/total is the share of the whole machine.
    const cpus = availableParallelism();
    const machineCpu = ((end.machine.busy - start.machine.busy) / (end.machine.total - start.machine.total)) * 100 * cpus;
    const otherCpu = Math.max(0, machineCpu - serverCpu - generatorCpu);
    // The server's main thread (JavaScript, SQLite): running, and runnable but waiting for a CPU.
    const mainRun = ((end.main.run - start.main.run) / 1e9 / seconds) * 100;
    const mainWait = ((end.main.wait - start.main.wait) / 1e9 / seconds) * 100;
    const rate = measured.stored / seconds;
    const p = (q: number) => percentile(latencies, q);
    const sortedSeconds = [...secondsLog].sort((a, b) => a - b);
    const streamErrors = sum((r) => r.streamErrors);
    const firstError = reports.find((r) => r.firstError)?.firstError;

    console.log(`\nmeasured ${fmt(seconds, 1)} s:`);
    console.log(`  stored ${fmt(measured.stored)} events (${fmt(rate)}/s) in ${fmt(measured.batches)} Acks (${fmt(measured.batches / seconds, 1)} batches/s, ${fmt(measured.events / Math.max(1, measured.batches), 1)} events per batch); duplicates ${fmt(measured.duplicates)}, rejected ${fmt(measured.rejected)}, Nacks ${fmt(measured.nacks)}`);
    console.log(`  store rows with event.ingested in the period: ${fmt(rowsInWindow)} (${fmt(rowsInWindow / seconds)}/s)`);
    const tenths = (series: readonly number[]): string => {
      const width = Math.max(1, Math.round(series.length / 10));
      const out: string[] = [];
      for (let i = 0; i < series.length; i += width) out.push(fmt(series.slice(i, i + width).reduce((a, b) => a + b, 0) / series.slice(i, i + width).length));
      return `per ${width} s: ${out.join(', ')}`;
    };
    console.log(`  committed by the server (event.ingested), events/s ${tenths(serverSeries)}`);
    console.log(`  acknowledged to the generator, events/s ${tenths(secondsLog)}`);
    console.log(`  rows committed per second by the server (event.ingested): min ${fmt(serverSeconds[0] ?? 0)}, median ${fmt(serverSeconds[Math.floor(serverSeconds.length / 2)] ?? 0)}, max ${fmt(serverSeconds[serverSeconds.length - 1] ?? 0)}`);
    console.log(`  Acks received per second (events): min ${fmt(sortedSeconds[0] ?? 0)}, median ${fmt(sortedSeconds[Math.floor(sortedSeconds.length / 2)] ?? 0)}, max ${fmt(sortedSeconds[sortedSeconds.length - 1] ?? 0)}`);
    console.log(`  Ack time (write to Ack, ${fmt(latencies.length)} batches): p50 ${fmt(p(50), 1)} ms, p90 ${fmt(p(90), 1)} ms, p99 ${fmt(p(99), 1)} ms, max ${fmt(latencies[latencies.length - 1] ?? NaN, 1)} ms`);
    if (!PRECOMPUTE) console.log(`  of which write to the server's check before commit (event.ingested - @timestamp, per event): p50 ${fmt(percentile(toCommit, 50))} ms, p99 ${fmt(percentile(toCommit, 99))} ms`);
    const renderedLive = sum((r) => r.renderedLive);
    if (PRECOMPUTE) console.log(`  batches made during the run (a stream's pool had run dry): ${fmt(renderedLive)} events${renderedLive > 0 ? ' (the generator CPU includes making them)' : ''}`);
    console.log(`  CPU (% of one core): server ${fmt(serverCpu, 1)}%, generator ${fmt(generatorCpu, 1)}%, everything else on the machine ${fmt(otherCpu, 1)}% (machine ${fmt(machineCpu, 1)}% of ${cpus * 100}%)`);
    console.log(`  server main thread: running ${fmt(mainRun, 1)}% of the period, waiting for a CPU ${fmt(mainWait, 1)}%, idle ${fmt(Math.max(0, 100 - mainRun - mainWait), 1)}%`);
    console.log(`  server RSS: ${fmt(rssBeforeMeasure / 1024, 1)} MiB at the start of the period, peak ${fmt(rssPeak / 1024, 1)} MiB, ${fmt(rssEnd / 1024, 1)} MiB at the end`);
    if (RATE > 0) console.log(`  offered ${fmt(RATE)} events/s; generator backlog at the end (gathered, not sent): ${fmt(sum((r) => r.backlogEvents))} events`);
    console.log(`whole run: sent ${fmt(sent.events)} events in ${fmt(sent.batches)} batches, Acks for ${fmt(allStored)} stored; store rows ${fmt(rows)} (${rows === allStored ? 'equal' : `DIFFERENT by ${fmt(rows - allStored)}`}); unacknowledged at the end ${fmt(sum((r) => r.unacked))}; database ${fmt(dbBytes / 1048576, 1)} MiB`);
    console.log(
      `detection (whole run, ${fmt(rulesState.enabled)} rules enabled): ${fmt(detection.events)} events evaluated, ${fmt(detection.matches)} matches, ${fmt(detection.alerts)} alerts raised, ${fmt(detection.deduplicated)} folded into open alerts, ${fmt(detection.errors)} errors; arrival to alert: p50 ${fmt(detection.latency_ms.p50)} ms, p99 ${fmt(detection.latency_ms.p99)} ms, max ${fmt(detection.latency_ms.max)} ms (${fmt(detection.latency_ms.count)} alerts)`,
    );
    console.log(`streams: ${fmt(streamsUp)} connected, ${fmt(sum((r) => r.streamsAtEnd))} still up at the end, ${fmt(streamErrors)} lost${firstError ? ` (first problem: ${firstError})` : ''}`);

    console.log('\n| streams | batch | load | events/s stored (Acks) | store rows in the period | batches/s | Ack p50 / p90 / p99 / max | server CPU (main thread running / waiting for a CPU) | server RSS peak / end | generator CPU | other CPU |');
    console.log('|---|---|---|---|---|---|---|---|---|---|---|');
    console.log(
      `| ${fmt(streamsUp)} | ${fmt(BATCH)} | ${RATE > 0 ? `${fmt(RATE)}/s offered` : 'saturation'}${COMPRESS === 'agent' ? '' : COMPRESS === 'grpc' ? ", gRPC's gzip" : ', no gzip'}${PRECOMPUTE ? '' : ', made live'} | **${fmt(rate)}** | ${fmt(rowsInWindow / seconds)}/s | ${fmt(measured.batches / seconds, 1)} | ${fmt(p(50))} / ${fmt(p(90))} / **${fmt(p(99))}** / ${fmt(latencies[latencies.length - 1] ?? NaN)} ms | ${fmt(serverCpu, 1)}% (${fmt(mainRun)}% / ${fmt(mainWait)}%) | ${fmt(rssPeak / 1024)} / ${fmt(rssEnd / 1024)} MB | ${fmt(generatorCpu, 1)}% | ${fmt(otherCpu, 1)}% |`,
    );
    // The target: at least 50,000 events/s stored with the p99 Ack under 1 s. Under saturation
    // every stream always waits for an Ack, so the Ack time is the queue (streams x batch /
    // rate, Little's law) and says nothing of the latency at a load the server sustains: the
    // latency half of the target is judged on a run with a rate.
    const sustained = RATE > 0 && rate >= 0.98 * RATE;
    console.log(`\ntarget (>= 50,000 events/s stored with p99 Ack < 1 s):`);
    console.log(`  throughput: ${fmt(rate)} events/s stored ${rate >= 50_000 ? '>=' : '<'} 50,000`);
    if (RATE > 0) {
      console.log(`  offered ${fmt(RATE)}/s: ${sustained ? 'sustained' : 'NOT sustained (the server fell behind; batches grew and waited)'}; p99 Ack ${fmt(p(99))} ms ${p(99) < 1000 ? '<' : '>='} 1,000 ms`);
      console.log(`  => ${sustained && RATE >= 50_000 && p(99) < 1000 ? 'met' : 'NOT met'}`);
    } else {
      const queue = (streamsUp * INFLIGHT * BATCH) / Math.max(1, rate);
      console.log(`  saturation: the Ack time is queueing (${fmt(streamsUp)} streams x ${fmt(INFLIGHT * BATCH)} events / ${fmt(rate)} per s = ${fmt(queue, 1)} s); judge the latency with HADES_BENCH_RATE`);
      console.log(`  => throughput ${rate >= 50_000 ? 'met' : 'NOT met'}`);
    }
  } finally {
    clearInterval(sampler);
    for (const worker of workers) await worker.terminate();
    await stopServer(server.child);
    if (process.env['HADES_BENCH_KEEP'] === '1') console.log(`kept ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
}

if (isMainThread) await main();
else await runWorker(workerData as WorkerInput);
