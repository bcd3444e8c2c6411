/**
 * Owns one plugin process (the kernel driver is the first plugin): starts it in its own process
 * group with a limit on open files, reads its frames, writes control frames, restarts it with
 * exponential backoff when it dies or is restarted on purpose (reporting the gap), and stops it
 * with a grace period before killing the whole group. A plugin crash never takes the agent down.
 *
 * The frame layer and the common frames (HELLO, STATS, LOG, ACK, STATS_REQUEST) are the plugin
 * protocol of docs/plugins.md; what a plugin's other frames mean (kernel records, events) is
 * left to its owner through `onFrame`.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { encodeFrame, FrameReader, type Frame } from '../../common/codec/frames.js';
import { HadesError, type ErrorCode } from '../../common/errors.js';
import { PluginFrame, PLUGIN_PROTOCOL } from '../../common/plugins/protocol.js';
import { isOutOfFds } from '../../runtime/fd-limit.js';

export type PluginState = 'starting' | 'running' | 'backoff' | 'stopping' | 'stopped' | 'failed';

/** What every HELLO carries; plugins add their own keys. */
export interface PluginHello {
  readonly protocol: number;
  readonly version?: string;
  readonly [extra: string]: unknown;
}

export interface PluginAck {
  readonly request_id: number;
  readonly ok: boolean;
  readonly code?: string;
  readonly msg?: string;
}

export interface PluginGap {
  readonly reason: string;
  readonly start: Date;
  readonly end: Date;
  readonly restarts: number;
}

export interface PluginHandlers<H extends PluginHello = PluginHello, S = unknown> {
  onHello?(hello: H): void;
  /** Frames other than the common ones (RECORDS from the driver, EVENTS from other plugins). */
  onFrame(type: number, payload: Uint8Array): void;
  onStats?(stats: S): void;
  onLog?(entry: Readonly<Record<string, unknown>>): void;
  /** A STATS, ACK or LOG frame whose payload is not a JSON object: ignored, and told here. */
  onMalformed?(frame: 'STATS' | 'ACK' | 'LOG'): void;
  onGap?(gap: PluginGap): void;
  /** The process exited or was killed; it will be restarted unless stopping or failed. */
  onExit?(reason: string): void;
  /** A frame that could not be decoded; the plugin is killed and restarted. */
  onProtocolError?(error: HadesError): void;
  /** The plugin cannot be kept running (repeated start failures); the agent decides what next. */
  onFatal?(error: HadesError): void;
  /** Right after each spawn, with the new process id (cgroup placement). */
  onSpawn?(pid: number): void;
}

/** The error codes a plugin's failures are reported with (the driver keeps its own). */
export interface PluginErrorCodes {
  readonly notFound: ErrorCode;
  readonly failed: ErrorCode;
  readonly protocol: ErrorCode;
}

export const pluginErrorCodes: PluginErrorCodes = {
  notFound: 'HADES_ERR_PLUGIN_START',
  failed: 'HADES_ERR_PLUGIN_START',
  protocol: 'HADES_ERR_PLUGIN_PROTOCOL',
};

export interface PluginProcessOptions {
  /** Name in messages: `driver`, or the manifest's name. */
  readonly name: string;
  readonly binary: string;
  readonly args: readonly string[];
  readonly graceMs?: number;
  /** Consecutive short runs before the supervisor gives up. */
  readonly maxFailedStarts?: number;
  readonly backoffMaxMs?: number;
  /** RLIMIT_NOFILE for the plugin, set with prlimit(1) when it is installed. */
  readonly maxOpenFiles?: number;
  readonly protocol?: number;
  readonly codes?: PluginErrorCodes;
  /** Checks a HELLO beyond its protocol version; returns why it is not acceptable. */
  readonly checkHello?: (hello: PluginHello) => string | undefined;
  readonly env?: NodeJS.ProcessEnv;
  /** A process that has not sent its HELLO this long after it was started is killed as failed (default 10 s). */
  readonly helloTimeoutMs?: number;
  /**
   * Whether a process that fails before its first HELLO is tried again with the usual backoff,
   * start() settling only once one says HELLO or maxFailedStarts runs in a row have failed
   * (default). Without, start() rejects at the first failure with its own words: the kernel
   * driver's, as without it the agent cannot run and its service manager restarts the whole.
   */
  readonly retryBeforeFirstHello?: boolean;
  /**
   * Checked right before every spawn, restarts included (a plugin's executable against its
   * manifest's SHA-256); a HadesError thrown here keeps the plugin stopped (`failed`) without
   * starting anything. A path returned is the one started (the checked file, links resolved).
   */
  readonly verify?: () => string | void;
  /**
   * Called after the process exits, once its process group is killed: kills what it started that
   * left the group (setsid), which the group's kill cannot reach (the plugin's cgroup holds them).
   */
  readonly killLeftovers?: () => void;
}

type Child = ChildProcessByStdio<Writable, Readable, Readable>;

const BACKOFF_MIN_MS = 100;
/** A plugin that ran this long before dying is considered healthy: backoff starts over. */
const HEALTHY_MS = 30_000;
const COMMAND_TIMEOUT_MS = 5000;
const HELLO_TIMEOUT_MS = 10_000;
const PRLIMIT = '/usr/bin/prlimit';

let prlimitAvailable: boolean | undefined;
function hasPrlimit(): boolean {
  if (prlimitAvailable === undefined) {
    try {
      accessSync(PRLIMIT, constants.X_OK);
      prlimitAvailable = true;
    } catch {
      prlimitAvailable = false;
    }
  }
  return prlimitAvailable;
}

export class PluginProcess<H extends PluginHello = PluginHello, S = unknown> {
  private child: Child | undefined;
  private reader = new FrameReader();
  private stopping = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private killTimer: NodeJS.Timeout | undefined;
  private helloTimer: NodeJS.Timeout | undefined;
  private backoffMs = BACKOFF_MIN_MS;
  /** The last start failed for want of file descriptors (EMFILE, ENFILE): it does not count as the plugin's failure. */
  private fdStarved = false;
  /** The exit under way was caused by work the owner gave the plugin (excuseExit): not the plugin's failure. */
  private exitExcused = false;
  private failedStarts = 0;
  private startedAt = 0;
  private gapStart: Date | undefined;
  private gapReason = '';
  /** Set by restart(): the reason the next exit is reported with. */
  private restartReason: string | undefined;
  private stderrTail = '';
  private paused = false;
  /** A child killed for a protocol error: its remaining frames are ignored. */
  private condemned: Child | undefined;
  private firstHello: { resolve: (h: H) => void; reject: (e: HadesError) => void } | undefined;
  private nextRequestId = 1;
  private readonly pendingAcks = new Map<number, { resolve: (ack: PluginAck) => void; timer: NodeJS.Timeout }>();
  private readonly codes: PluginErrorCodes;
  restarts = 0;
  hello: H | undefined;
  state: PluginState = 'stopped';
  /** When the last frame arrived (ms, Date.now()); the supervisor's liveness check. */
  lastFrameAt = 0;
  /** Why the plugin last stopped or failed. */
  lastError: string | undefined;

  constructor(
    readonly options: PluginProcessOptions,
    private readonly handlers: PluginHandlers<H, S>,
  ) {
    this.codes = options.codes ?? pluginErrorCodes;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get name(): string {
    return this.options.name;
  }

  /** Starts the plugin; resolves with its HELLO, rejects with its own reason if it fails. */
  start(): Promise<H> {
    try {
      accessSync(this.options.binary, constants.X_OK);
    } catch {
      this.state = 'failed';
      return Promise.reject(new HadesError(this.codes.notFound, `${this.name}: ${this.options.binary} is missing or not executable`));
    }
    this.stopping = false;
    this.failedStarts = 0;
    this.backoffMs = BACKOFF_MIN_MS;
    return new Promise((resolve, reject) => {
      this.firstHello = { resolve, reject };
      this.spawnChild();
    });
  }

  /** Stops reading the plugin's output (back-pressure: its pipe fills and it blocks). */
  pause(): void {
    this.paused = true;
    this.child?.stdout.pause();
  }

  resume(): void {
    // Silence while the agent did not read says nothing of the plugin: it is counted from now.
    if (this.paused) this.lastFrameAt = Math.max(this.lastFrameAt, Date.now());
    this.paused = false;
    this.child?.stdout.resume();
  }

  /** The agent is not reading the plugin's output (back-pressure). */
  get readPaused(): boolean {
    return this.paused;
  }

  send(type: number, payload: Uint8Array = new Uint8Array(0)): void {
    const child = this.child;
    if (!child || child.stdin.destroyed) return;
    child.stdin.write(encodeFrame(type, payload));
  }

  requestStats(): void {
    this.send(PluginFrame.statsRequest);
  }

  /**
   * Sends a command built for a fresh request id and resolves with the plugin's ACK; a plugin
   * that is gone or silent answers `ok: false`.
   */
  command(type: number, build: (requestId: number) => Uint8Array): Promise<PluginAck> {
    const requestId = this.nextRequestId++;
    if (!this.child) return Promise.resolve({ request_id: requestId, ok: false, code: 'ENOTCONN', msg: `${this.name} not running` });
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pendingAcks.delete(requestId);
        resolve({ request_id: requestId, ok: false, code: 'ETIMEDOUT', msg: `no answer from ${this.name}` });
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

  /**
   * Restarts a running plugin on purpose (over budget, unresponsive, protocol error): closes
   * its stdin, kills the group after the grace period (at once with `now`), and the usual
   * backoff restart follows; the gap is reported with this reason.
   */
  restart(reason: string, now = false): void {
    const child = this.child;
    if (!child || this.stopping) return;
    this.restartReason ??= reason;
    this.lastError = reason;
    if (now) {
      this.condemned = child;
      killGroup(child, 'SIGKILL');
      return;
    }
    child.stdin.end();
    child.stdout.resume();
    clearTimeout(this.killTimer);
    this.killTimer = setTimeout(() => killGroup(child, 'SIGKILL'), this.options.graceMs ?? 3000);
  }

  /**
   * The process's exit (under way, or the next before a new start) comes from work its owner
   * gave it, or was asked for, not from the plugin: it does not count toward maxFailedStarts, nor
   * grow the backoff (the plugin starts again at once). The inventory collector killed while it
   * ran a query (stuck past its timeout, over its memory) is not a collector that cannot run:
   * counted, a few such queries gave it up until the agent restarted.
   */
  excuseExit(): void {
    this.exitExcused = true;
  }

  /** Closes the plugin's stdin (its signal to exit), then kills the group after the grace period. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    clearTimeout(this.helloTimer);
    const first = this.firstHello;
    this.firstHello = undefined;
    first?.reject(new HadesError(this.codes.failed, `${this.name} was stopped before its HELLO${this.lastError ? ` (${this.lastError})` : ''}`));
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) {
      this.state = this.state === 'failed' ? 'failed' : 'stopped';
      return;
    }
    this.state = 'stopping';
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
    // The leader is gone; anything it left behind in its group goes too.
    killGroup(child, 'SIGKILL');
    this.state = 'stopped';
  }

  private spawnChild(): void {
    let binary = this.options.binary;
    try {
      // The path it checked (symbolic links resolved), so that what starts is what was checked.
      binary = this.options.verify?.() ?? binary;
    } catch (error) {
      // Never started: a swapped executable must not run even once (it would run as root).
      this.fatal(error instanceof HadesError ? error : new HadesError(this.codes.failed, `${this.name}: ${String(error)}`));
      return;
    }
    this.reader = new FrameReader();
    this.fdStarved = false;
    this.exitExcused = false;
    this.stderrTail = '';
    this.startedAt = Date.now();
    this.lastFrameAt = this.startedAt;
    this.state = 'starting';
    const { args, maxOpenFiles } = this.options;
    // prlimit(1) sets the limit and then execs the plugin: the pid stays the plugin's.
    const [command, argv] =
      maxOpenFiles !== undefined && hasPrlimit() ? [PRLIMIT, [`--nofile=${maxOpenFiles}:${maxOpenFiles}`, '--', binary, ...args]] : [binary, [...args]];
    const child = spawn(command, argv, { stdio: ['pipe', 'pipe', 'pipe'], detached: true, ...(this.options.env ? { env: this.options.env } : {}) });
    this.child = child;
    child.on('error', (error) => {
      // Not the plugin's fault: tried again with backoff until descriptors are free, never given up for it.
      if (isOutOfFds(error)) this.fdStarved = true;
      this.onExit(child, `could not start: ${error.message}${isOutOfFds(error) ? ' (the agent is at its limit of open files: HADES_ERR_FD_LIMIT)' : ''}`);
    });
    // At the descriptor limit (EMFILE, ENFILE) Node opens no pipes and starts nothing: the child
    // has no stdio, and its 'error' event (next tick) restarts it with backoff. Reading its
    // stdin here threw from the restart timer, and the agent died.
    const { stdin, stdout, stderr } = child as Partial<Pick<typeof child, 'stdin' | 'stdout' | 'stderr'>>;
    if (!stdin || !stdout || !stderr) return;
    stdin.on('error', () => undefined); // EPIPE when it dies; the exit handler reports
    stdout.on('data', (chunk: Buffer) => this.onData(child, chunk));
    stderr.setEncoding('utf8').on('data', (text: string) => {
      this.stderrTail = (this.stderrTail + text).slice(-2000);
    });
    // 'close' comes after stdout is drained, so nothing written before a crash is lost.
    child.on('close', (code, signal) => this.onExit(child, signal ? `killed by ${signal}` : `exit status ${code ?? '?'}`));
    const helloMs = this.options.helloTimeoutMs ?? HELLO_TIMEOUT_MS;
    const noHello = (): void => {
      if (child !== this.child || this.hello) return;
      // Not read (back-pressure): its HELLO may be waiting in the pipe; the time starts again.
      if (this.paused) {
        this.helloTimer = setTimeout(noHello, helloMs);
        return;
      }
      this.restartReason ??= `no HELLO within ${helloMs / 1000} s`;
      this.condemned = child;
      killGroup(child, 'SIGKILL');
    };
    clearTimeout(this.helloTimer);
    this.helloTimer = setTimeout(noHello, helloMs);
    if (this.paused) child.stdout.pause();
    if (child.pid !== undefined) this.handlers.onSpawn?.(child.pid);
  }

  private onData(child: Child, chunk: Buffer): void {
    if (child !== this.child || this.condemned === child) return;
    this.lastFrameAt = Date.now();
    const { frames, error: broken } = this.reader.read(chunk);
    // The whole frames before a broken one count (an ACK just before it is an answer); then the
    // stream is not read any further.
    this.dispatch(child, frames);
    if (broken && child === this.child && this.condemned !== child) this.protocolError(child, broken);
  }

  private dispatch(child: Child, frames: readonly Frame[]): void {
    for (const frame of frames) {
      if (child !== this.child || this.condemned === child) return;
      switch (frame.type) {
        case PluginFrame.hello:
          this.onHello(child, frame.payload);
          break;
        case PluginFrame.stats: {
          const stats = parseJson(frame.payload);
          if (stats && typeof stats === 'object') this.handlers.onStats?.(stats as S);
          else this.handlers.onMalformed?.('STATS');
          break;
        }
        case PluginFrame.ack: {
          const ack = parseJson(frame.payload) as PluginAck | undefined;
          if (!ack || typeof ack !== 'object') this.handlers.onMalformed?.('ACK');
          const pending = ack ? this.pendingAcks.get(ack.request_id) : undefined;
          if (ack && pending) {
            clearTimeout(pending.timer);
            this.pendingAcks.delete(ack.request_id);
            pending.resolve(ack);
          }
          break;
        }
        case PluginFrame.log: {
          const entry = parseJson(frame.payload);
          if (entry && typeof entry === 'object') this.handlers.onLog?.(entry as Record<string, unknown>);
          else this.handlers.onMalformed?.('LOG');
          break;
        }
        default:
          if (!this.hello) {
            this.protocolError(child, new HadesError(this.codes.protocol, `${this.name} sent frame type ${frame.type} before its HELLO`));
            return;
          }
          this.handlers.onFrame(frame.type, frame.payload);
          break;
      }
    }
  }

  private onHello(child: Child, payload: Uint8Array): void {
    const hello = parseJson(payload) as H | undefined;
    if (!hello || typeof hello !== 'object' || typeof hello.protocol !== 'number') {
      this.protocolError(child, new HadesError('HADES_ERR_FRAME_MALFORMED', `${this.name}: HELLO is not the expected JSON object`));
      return;
    }
    const protocol = this.options.protocol ?? PLUGIN_PROTOCOL;
    if (hello.protocol !== protocol) {
      const error = new HadesError(this.codes.protocol, `${this.name} speaks protocol ${hello.protocol}; this agent speaks ${protocol}`);
      this.fatal(error);
      killGroup(child, 'SIGKILL');
      return;
    }
    const problem = this.options.checkHello?.(hello);
    if (problem) {
      this.protocolError(child, new HadesError(this.codes.protocol, `${this.name}: ${problem}`));
      return;
    }
    clearTimeout(this.helloTimer);
    this.hello = hello;
    this.state = 'running';
    this.handlers.onHello?.(hello);
    this.closeGap(this.gapReason);
    const first = this.firstHello;
    this.firstHello = undefined;
    first?.resolve(hello);
  }

  private protocolError(child: Child, error: HadesError): void {
    // Nothing more it sent counts: frames still in the pipe may not be read as valid.
    this.condemned = child;
    this.handlers.onProtocolError?.(error);
    this.restartReason ??= `protocol error: ${error.code}`;
    this.lastError = error.toLine();
    killGroup(child, 'SIGKILL');
  }

  private onExit(child: Child, exitReason: string): void {
    if (child !== this.child) return;
    this.child = undefined;
    this.hello = undefined;
    clearTimeout(this.killTimer);
    clearTimeout(this.helloTimer);
    const reason = this.restartReason ?? exitReason;
    this.restartReason = undefined;
    this.settleAcks(`${this.name} ${reason}`);
    // Whatever the leader left behind in its group goes with it, and in its cgroup too (a child
    // that called setsid left the group, and would outlive every restart).
    killGroup(child, 'SIGKILL');
    try {
      this.options.killLeftovers?.();
    } catch {
      // the cgroup is gone, or could not be read: nothing more to kill
    }
    this.handlers.onExit?.(reason);
    if (this.stopping) {
      if (this.state !== 'failed') this.state = 'stopped';
      return;
    }
    // What it last wrote explains an exit of its own, not a signal from outside (a SIGKILL after
    // a warning it wrote at its start is not about that warning).
    const detail = reason.startsWith('killed by SIGKILL') || reason.startsWith('killed by SIGTERM') ? '' : this.stderrTail.trim().split('\n').slice(-3).join('; ');
    this.lastError = `${reason}${detail ? `: ${detail}` : ''}`;
    if (this.firstHello && this.options.retryBeforeFirstHello === false) {
      // It never came up: report its own words, do not loop.
      const first = this.firstHello;
      this.firstHello = undefined;
      this.state = 'failed';
      first.reject(new HadesError(this.codes.failed, `${this.name} ${this.lastError}`));
      return;
    }
    if (!this.gapStart) {
      this.gapStart = new Date();
      this.gapReason = reason;
    }
    // A plugin that ran for a while before dying starts a fresh count; one that dies young adds
    // to the count of consecutive failures.
    if (Date.now() - this.startedAt > HEALTHY_MS) {
      this.backoffMs = BACKOFF_MIN_MS;
      this.failedStarts = 0;
    }
    const starved = this.fdStarved;
    this.fdStarved = false;
    const excused = this.exitExcused;
    this.exitExcused = false;
    if (!starved && !excused) this.failedStarts++;
    if (this.failedStarts >= (this.options.maxFailedStarts ?? 5)) {
      this.fatal(new HadesError(this.codes.failed, `${this.name} failed ${this.failedStarts} times in a row (${this.lastError})`));
      return;
    }
    this.restarts++;
    this.state = 'backoff';
    // An excused exit is started again at once and grows no backoff: what caused it (a query, a
    // restart asked for) comes at its own pace, and a plugin restarted that way is not failing.
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (!this.stopping) this.spawnChild();
    }, excused ? BACKOFF_MIN_MS : this.backoffMs);
    if (!excused) this.backoffMs = Math.min(this.options.backoffMaxMs ?? 5000, this.backoffMs * 2);
  }

  /** Reports the open gap, if there is one, as ended now. */
  private closeGap(reason: string): void {
    if (!this.gapStart) return;
    this.handlers.onGap?.({ reason, start: this.gapStart, end: new Date(), restarts: this.restarts });
    this.gapStart = undefined;
  }

  private fatal(error: HadesError): void {
    this.stopping = true;
    this.state = 'failed';
    this.lastError = error.toLine();
    clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    const first = this.firstHello;
    this.firstHello = undefined;
    // The gap a restart would have closed is reported now, open-ended no more: given up, it
    // would otherwise never be (the driver's loss then stops the agent).
    if (!first) this.closeGap(`${this.gapReason}; given up: ${error.message}`);
    // Before the first HELLO the caller of start() hears of it; afterwards the handler does.
    if (first) first.reject(error);
    else this.handlers.onFatal?.(error);
  }
}

function killGroup(child: Child, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // The group is gone already.
  }
}

export function parseJson(payload: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}
