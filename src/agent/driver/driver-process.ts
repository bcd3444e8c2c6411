/**
 * Owns the driver process: starts it in its own process group, reads its frames, writes
 * control frames, restarts it with backoff when it dies (reporting the gap) and stops it with a
 * grace period before killing the group. A driver crash never takes the agent down.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { encodeFrame, FrameReader, type Frame } from '../../common/codec/frames.js';
import { HadesError } from '../../common/errors.js';

export const FrameType = {
  hello: 1,
  records: 2,
  stats: 3,
  log: 4,
  ack: 5,
  filter: 0x81,
  hook: 0x82,
  statsRequest: 0x83,
} as const;

export const DRIVER_PROTOCOL = 1;

export interface DriverHook {
  readonly name: string;
  readonly type: string;
  readonly active: boolean;
  readonly error: string | null;
}

export interface DriverHello {
  readonly protocol: number;
  readonly driver: string;
  readonly version: string;
  readonly backend: 'ebpf' | 'cnproc';
  readonly hooks: readonly DriverHook[];
  readonly argv_max: number;
  readonly boot_time_ns: number;
  readonly [extra: string]: unknown;
}

export interface DriverStats {
  readonly hooks: Readonly<Record<string, Readonly<Record<string, number>>>>;
  readonly loader?: Readonly<Record<string, number>>;
}

/** The driver's answer to a FILTER or HOOK command. */
export interface DriverAck {
  readonly request_id: number;
  readonly ok: boolean;
  readonly code?: string;
  readonly msg?: string;
}

export const FilterOp = { add: 1, del: 2, clear: 3, set: 4 } as const;
export const FilterTarget = { pidDeny: 1, exeDeny: 2, cgroupDeny: 3, cgroupAllow: 4, cgroupMode: 5, filePrefix: 6, protectedPid: 7, unixPath: 8, connectDedupMs: 9 } as const;

/** FILTER payload: request id, op, target, value (driver/PROTOCOL.md). */
export function encodeFilter(requestId: number, op: number, target: number, value: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + value.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, requestId, true);
  view.setUint8(4, op);
  view.setUint8(5, target);
  view.setUint32(8, value.length, true);
  out.set(value, 12);
  return out;
}

/** HOOK payload: request id, enable flag, hook addressed by name. */
export function encodeHook(requestId: number, enable: boolean, name: string): Uint8Array {
  const nameBytes = new TextEncoder().encode(name);
  const out = new Uint8Array(8 + nameBytes.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, requestId, true);
  view.setUint8(4, enable ? 1 : 0);
  view.setUint16(6, 0xffff, true);
  out.set(nameBytes, 8);
  return out;
}

const COMMAND_TIMEOUT_MS = 5000;

export interface DriverGap {
  readonly reason: string;
  readonly start: Date;
  readonly end: Date;
  readonly restarts: number;
}

export interface DriverHandlers {
  onHello?(hello: DriverHello): void;
  onRecords(payload: Uint8Array): void;
  onStats?(stats: DriverStats): void;
  onLog?(entry: Readonly<Record<string, unknown>>): void;
  onGap?(gap: DriverGap): void;
  /** A frame that could not be decoded; the driver is killed and restarted. */
  onProtocolError?(error: HadesError): void;
  /** The driver cannot be kept running (repeated start failures); the agent decides what next. */
  onFatal?(error: HadesError): void;
}

export interface DriverOptions {
  readonly binary: string;
  readonly args: readonly string[];
  readonly graceMs?: number;
  readonly maxFailedStarts?: number;
}

type DriverChild = ChildProcessByStdio<Writable, Readable, Readable>;

const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 5000;
/** A driver that ran this long before dying is considered healthy: backoff starts over. */
const HEALTHY_MS = 30_000;

export class DriverProcess {
  private child: DriverChild | undefined;
  private reader = new FrameReader();
  private stopping = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private backoffMs = BACKOFF_MIN_MS;
  private failedStarts = 0;
  private startedAt = 0;
  private gapStart: Date | undefined;
  private gapReason = '';
  private stderrTail = '';
  private paused = false;
  private firstHello: { resolve: (h: DriverHello) => void; reject: (e: HadesError) => void } | undefined;
  private nextRequestId = 1;
  private readonly pendingAcks = new Map<number, { resolve: (ack: DriverAck) => void; timer: NodeJS.Timeout }>();
  restarts = 0;
  hello: DriverHello | undefined;

  constructor(
    private readonly options: DriverOptions,
    private readonly handlers: DriverHandlers,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the driver; resolves with its HELLO, rejects with its own reason if it fails. */
  start(): Promise<DriverHello> {
    try {
      accessSync(this.options.binary, constants.X_OK);
    } catch {
      return Promise.reject(new HadesError('HADES_ERR_DRIVER_NOT_FOUND', `driver binary ${this.options.binary} is missing or not executable; build it with \`make -C driver\``));
    }
    return new Promise((resolve, reject) => {
      this.firstHello = { resolve, reject };
      this.spawnChild();
    });
  }

  /** Stops reading the driver's output (back-pressure: the pipe fills, then the kernel counts drops). */
  pause(): void {
    this.paused = true;
    this.child?.stdout.pause();
  }

  resume(): void {
    this.paused = false;
    this.child?.stdout.resume();
  }

  send(type: number, payload: Uint8Array = new Uint8Array(0)): void {
    const child = this.child;
    if (!child || child.stdin.destroyed) return;
    child.stdin.write(encodeFrame(type, payload));
  }

  requestStats(): void {
    this.send(FrameType.statsRequest);
  }

  /**
   * Sends a FILTER or HOOK command built for a fresh request id and resolves with the driver's
   * answer; a driver that is gone or silent answers `ok: false`.
   */
  command(type: number, build: (requestId: number) => Uint8Array): Promise<DriverAck> {
    const requestId = this.nextRequestId++;
    if (!this.child) return Promise.resolve({ request_id: requestId, ok: false, code: 'ENOTCONN', msg: 'driver not running' });
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pendingAcks.delete(requestId);
        resolve({ request_id: requestId, ok: false, code: 'ETIMEDOUT', msg: 'no answer from the driver' });
      }, COMMAND_TIMEOUT_MS);
      this.pendingAcks.set(requestId, { resolve, timer });
      this.send(type, build(requestId));
    });
  }

  private settleAcks(reason: string): void {
    for (const [id, pending] of this.pendingAcks) {
      clearTimeout(pending.timer);
      pending.resolve({ request_id: id, ok: false, code: 'ECONNRESET', msg: reason });
    }
    this.pendingAcks.clear();
  }

  /** Closes the driver's stdin (its signal to detach and exit), then kills the group after the grace period. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
    child.stdin.end();
    child.stdout.resume();
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.options.graceMs ?? 3000);
    });
    const outcome = await Promise.race([exited.then(() => 'exited' as const), grace]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      killGroup(child, 'SIGKILL');
      await exited;
    }
  }

  private spawnChild(): void {
    this.reader = new FrameReader();
    this.stderrTail = '';
    this.startedAt = Date.now();
    const child = spawn(this.options.binary, [...this.options.args], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    this.child = child;
    child.stdin.on('error', () => undefined); // EPIPE when it dies; the exit handler reports
    child.stdout.on('data', (chunk: Buffer) => this.onData(child, chunk));
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      this.stderrTail = (this.stderrTail + text).slice(-2000);
    });
    child.on('error', (error) => this.onExit(child, `could not start: ${error.message}`));
    // 'close' comes after stdout is drained, so no record written before a crash is lost.
    child.on('close', (code, signal) => this.onExit(child, signal ? `killed by ${signal}` : `exit status ${code ?? '?'}`));
    if (this.paused) child.stdout.pause();
  }

  private onData(child: DriverChild, chunk: Buffer): void {
    if (child !== this.child) return;
    let frames: Frame[];
    try {
      frames = this.reader.push(chunk);
    } catch (error) {
      this.protocolError(child, error instanceof HadesError ? error : new HadesError('HADES_ERR_FRAME_MALFORMED', String(error)));
      return;
    }
    for (const frame of frames) {
      switch (frame.type) {
        case FrameType.records:
          this.handlers.onRecords(frame.payload);
          break;
        case FrameType.hello:
          this.onHello(child, frame.payload);
          break;
        case FrameType.stats: {
          const stats = parseJson(frame.payload) as DriverStats | undefined;
          if (stats?.hooks) this.handlers.onStats?.(stats);
          break;
        }
        case FrameType.ack: {
          const ack = parseJson(frame.payload) as DriverAck | undefined;
          const pending = ack ? this.pendingAcks.get(ack.request_id) : undefined;
          if (ack && pending) {
            clearTimeout(pending.timer);
            this.pendingAcks.delete(ack.request_id);
            pending.resolve(ack);
          }
          break;
        }
        case FrameType.log: {
          const entry = parseJson(frame.payload);
          if (entry && typeof entry === 'object') this.handlers.onLog?.(entry as Record<string, unknown>);
          break;
        }
        default:
          // Unknown frame types are skipped: a newer driver may send more.
          break;
      }
    }
  }

  private onHello(child: DriverChild, payload: Uint8Array): void {
    const hello = parseJson(payload) as DriverHello | undefined;
    if (!hello || typeof hello.protocol !== 'number' || !Array.isArray(hello.hooks)) {
      this.protocolError(child, new HadesError('HADES_ERR_FRAME_MALFORMED', 'driver HELLO is not the expected JSON object'));
      return;
    }
    if (hello.protocol !== DRIVER_PROTOCOL) {
      const error = new HadesError('HADES_ERR_DRIVER_PROTOCOL', `driver speaks protocol ${hello.protocol}; this agent speaks ${DRIVER_PROTOCOL}`);
      this.fatal(error);
      killGroup(child, 'SIGKILL');
      return;
    }
    this.hello = hello;
    this.handlers.onHello?.(hello);
    if (this.gapStart) {
      this.handlers.onGap?.({ reason: this.gapReason, start: this.gapStart, end: new Date(), restarts: this.restarts });
      this.gapStart = undefined;
    }
    const first = this.firstHello;
    this.firstHello = undefined;
    first?.resolve(hello);
  }

  private protocolError(child: DriverChild, error: HadesError): void {
    this.handlers.onProtocolError?.(error);
    killGroup(child, 'SIGKILL');
  }

  private onExit(child: DriverChild, reason: string): void {
    if (child !== this.child) return;
    this.child = undefined;
    this.settleAcks(`driver ${reason}`);
    if (this.stopping) return;
    const detail = this.stderrTail.trim().split('\n').slice(-3).join('; ');
    if (this.firstHello) {
      // It never came up: report its own words, do not loop.
      const first = this.firstHello;
      this.firstHello = undefined;
      first.reject(new HadesError('HADES_ERR_DRIVER_FAILED', `driver ${reason}${detail ? `: ${detail}` : ''}`));
      return;
    }
    if (!this.gapStart) {
      this.gapStart = new Date();
      this.gapReason = reason;
    }
    // A driver that ran for a while before dying starts a fresh count; one that dies young adds
    // to the count of consecutive failures.
    if (Date.now() - this.startedAt > HEALTHY_MS) {
      this.backoffMs = BACKOFF_MIN_MS;
      this.failedStarts = 0;
    }
    this.failedStarts++;
    if (this.failedStarts >= (this.options.maxFailedStarts ?? 5)) {
      this.fatal(new HadesError('HADES_ERR_DRIVER_FAILED', `driver failed ${this.failedStarts} times in a row (${reason}${detail ? `: ${detail}` : ''})`));
      return;
    }
    this.restarts++;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (!this.stopping) this.spawnChild();
    }, this.backoffMs);
    this.backoffMs = Math.min(BACKOFF_MAX_MS, this.backoffMs * 2);
  }

  private fatal(error: HadesError): void {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    const first = this.firstHello;
    this.firstHello = undefined;
    // Before the first HELLO the caller of start() hears of it; afterwards the handler does.
    if (first) first.reject(error);
    else this.handlers.onFatal?.(error);
  }
}

function killGroup(child: DriverChild, signal: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal);
  } catch {
    child.kill(signal);
  }
}

function parseJson(payload: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}
