/**
 * The agent daemon: owns every long-lived part of `hades agent` and the order they start and
 * stop in. Start: run file (one agent per data folder), logger, cgroups, outputs and their
 * spools, pipeline, the kernel driver, the installed plugins and the built-in inventory collector
 * under the watchdog, the metrics endpoint, the heartbeat. Stop, in reverse: plugins first (nothing new comes in), then outputs
 * get `agent.drain_s` to deliver (the spools keep the rest), then everything is closed and the
 * cgroups removed. `reload()` applies a new configuration, or keeps the old one when the new
 * one is invalid.
 */
import { readOwnFile } from '../../runtime/regular-file.js';
import { isDeepStrictEqual } from 'node:util';
import { existsSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseRoleConfig, type AgentConfig, type ConfigProblem } from '../../common/config/index.js';
import type { HadesEvent } from '../../common/events/index.js';
import { EXIT_RESTART, HadesError, toHadesError } from '../../common/errors.js';
import { logLevelProblem, parseQueryTask, type TaskLogLevel } from '../../common/tasks.js';
import { Cgroups, type CgroupGroup } from '../cgroup.js';
import { KernelEvents, type KernelEventStats } from '../kernel-events.js';
import { writePrivateFile } from '../../runtime/private-file.js';
import { readConfigText } from '../../runtime/regular-file.js';
import { FdLimitWatch } from '../../runtime/fd-limit.js';
import { memoryNow } from '../../runtime/memory.js';
import { Logger, type LogLevel, type LogStats } from '../../runtime/log.js';
import { SpooledChannel, StreamChannel, type BatchTransport, type EventBatch, type OutputChannel } from '../pipeline/channels.js';
import { DropReporter, type DropCount } from '../pipeline/drops.js';
import { HttpTransport } from '../pipeline/http-transport.js';
import { Pipeline, type PipelineStats } from '../pipeline/pipeline.js';
import { EventStamp } from '../pipeline/stamp.js';
import { EventPlugin } from '../plugins/event-plugin.js';
import { INVENTORY_PLUGIN, InventoryPlugin, taskResult } from '../plugins/inventory-plugin.js';
import { LOGS_PLUGIN, logsPlugin } from '../plugins/logs-plugin.js';
import { HONEYPOT_PLUGIN, honeypotPlugin } from '../plugins/honeypot-plugin.js';
import { loadManifest, verifyExecutable } from '../plugins/manifest.js';
import type { PluginGap } from '../plugins/plugin-process.js';
import { Supervisor, type PluginBudget, type PluginStatus, type Supervised } from '../plugins/supervisor.js';
import { CpuMeter } from '../plugins/usage.js';
import { RotatingFile } from '../../runtime/rotating-file.js';
import { Sequencer } from '../sequencer.js';
import { Spool } from '../spool.js';
// The server transport (gRPC, x509) is loaded only when the server output is on: those modules
// cost the idle agent about 15 MB of memory.
import type { Identity } from '../transport/enroll.js';
import type { GrpcTransport, ServerTask, StreamStats } from '../transport/grpc-transport.js';
import { AddressHolds } from '../transport/holds.js';
import { TaskLedger } from '../transport/tasks.js';
import { hasLockSocket, holdsFilesIn, InstanceLock } from './instance-lock.js';
import { heartbeatOutput, heartbeatPlugin } from './heartbeat.js';
import { MetricsServer } from './metrics.js';
import { makeFolders } from '../../runtime/folders.js';

const MB = 1024 * 1024;
const DROP_REPORT_MS = 10_000;
/** How long the agent's start (or a reload of every plugin) waits for the plugins' HELLOs. */
const PLUGIN_START_WAIT_MS = 5000;
const SELF_SAMPLE_MS = 1000;
/** How often the agent looks that its data folder's lock socket is still there (instance-lock.ts). */
const LOCK_CHECK_MS = 5000;
/** How often a reload's metrics address that could not be bound is tried again. */
const METRICS_RETRY_MS = 10_000;
/** In the data folder: the group configuration that ran last, for the next start. */
const GROUP_CONFIG_FILE = 'group-config.json';
export { EXIT_RESTART };

export const defaultDriverManifest = (): string =>
  process.env['HADES_DRIVER_MANIFEST'] ?? fileURLToPath(new URL('../../../../driver/build/manifest.json', import.meta.url));

export interface AgentOptions {
  readonly config: AgentConfig;
  /** The file the configuration came from; reload() reads it again. */
  readonly configFile?: string;
  readonly version: string;
  /** Where the stdout output writes (tests pass their own stream). */
  readonly stdout?: Writable;
  /** Where logs go when no log file is configured. */
  readonly stderr?: Writable;
  /** Receivers that acknowledge batches, each spooled (the server transport; tests use doubles). */
  readonly transports?: readonly BatchTransport[];
  readonly driverManifest?: string;
  /** The agent cannot go on (memory budget, driver lost): the caller stops it and exits. */
  readonly onFatal?: (error: HadesError, exitCode: number) => void;
}

export interface ReloadResult {
  readonly ok: boolean;
  readonly problems?: readonly ConfigProblem[];
  readonly message?: string;
  /** Not ok, but applied in part: the new configuration is the running one, some part failed. */
  readonly partial?: boolean;
}

export interface AgentStatus {
  readonly version: string;
  readonly pid: number;
  readonly hostname: string;
  readonly started: string;
  readonly uptimeS: number;
  readonly cpuPercent: number;
  readonly memoryRssBytes: number;
  readonly memoryBudgetBytes: number;
  readonly openFds: number;
  readonly configFile?: string;
  readonly lastReload?: { readonly at: string; readonly ok: boolean; readonly message?: string };
  /** The version of the group configuration from the server it runs over its file, if one. */
  readonly groupConfigVersion?: number;
  readonly pipeline: PipelineStats;
  readonly plugins: readonly PluginStatus[];
  readonly kernel?: Pick<KernelEventStats, 'backend' | 'hooks' | 'kernel' | 'decoder'>;
  readonly eventsDropped: number;
  readonly drops: readonly DropCount[];
  readonly log: LogStats;
  /** The level the agent logs at: the configuration's, or a server task's (until `until`, if it gave a duration). */
  readonly logLevel: { readonly level: LogLevel; readonly byTask: boolean; readonly until?: string };
  readonly cgroup: { readonly version: 1 | 2; readonly base: string } | { readonly unavailable: string };
  readonly metrics?: string;
}

interface RunFile {
  readonly pid: number;
  readonly started: string;
  readonly version: string;
  readonly metrics?: string;
  /** Why the configured metrics endpoint does not listen now (a reload found its address taken; the agent tries again). */
  readonly metrics_error?: string;
  readonly config?: string;
}

export const runFilePath = (dataDir: string) => path.join(dataDir, 'agent.json');

/** Another agent holds the data folder (./instance-lock.ts): who, as its run file says. */
function agentRunning(dataDir: string): HadesError {
  const run = runFileOf(dataDir);
  return new HadesError('HADES_ERR_AGENT_RUNNING', `an agent${run ? ` (pid ${run.pid}, started ${run.started})` : ''} already uses ${dataDir}`, { details: { data_dir: dataDir } });
}

/** The run file as written, whoever wrote it (undefined when missing or not one). */
function runFileOf(dataDir: string): RunFile | undefined {
  try {
    const run = JSON.parse(readOwnFile(runFilePath(dataDir))) as RunFile;
    return typeof run === 'object' && run !== null && typeof run.pid === 'number' ? run : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The run file of a live agent using this data folder, if any: while an agent holds the folder's
 * lock (./instance-lock.ts). A run file left by an agent that died (a crash, a reboot) names a
 * process id that may belong to any program now, and is not taken for an agent.
 */
export async function readRunFile(dataDir: string): Promise<RunFile | undefined> {
  const run = runFileOf(dataDir);
  return run !== undefined && (await InstanceLock.held(dataDir)) === true ? run : undefined;
}

const budgetOf = (limits: AgentConfig['plugins']['limits'], override: Partial<AgentConfig['plugins']['limits']> = {}): PluginBudget => {
  const l = { ...limits, ...override };
  return { cpuPercent: l.cpu_percent, memoryBytes: l.memory_mb * MB, maxOpenFiles: l.max_open_files, eventsPerSecond: l.events_per_s };
};

/** A plugin's drop counters (events it sent that were invalid, or over its rate). */
function pluginDrops(name: string, plugin: { readonly counters: { readonly invalid: number; readonly rateLimited: number } }): DropCount[] {
  const drops: DropCount[] = [];
  if (plugin.counters.invalid) drops.push({ component: 'agent', hook: name, reason: 'invalid_event', total: plugin.counters.invalid });
  if (plugin.counters.rateLimited) drops.push({ component: 'agent', hook: name, reason: 'rate_limited', total: plugin.counters.rateLimited });
  return drops;
}

/** Adds drop counts to totals kept by component, hook and reason. */
function addDrops(totals: Map<string, DropCount>, drops: readonly DropCount[]): void {
  for (const d of drops) {
    const key = `${d.component}\u0000${d.hook}\u0000${d.reason}`;
    totals.set(key, { ...d, total: d.total + (totals.get(key)?.total ?? 0) });
  }
}

/** Equal settings, whatever the order of their keys (a section written out or left to its defaults). */
const same = isDeepStrictEqual;

/** The agent's own plugins; each one's name is the key of its settings under `plugins`. */
const BUILTIN_PLUGINS = [INVENTORY_PLUGIN, LOGS_PLUGIN, HONEYPOT_PLUGIN] as const;

/** A group configuration from the server: its text, version and the configuration it parses to. */
interface GroupConfig {
  readonly yaml: string;
  readonly version: number;
  readonly config: AgentConfig;
}

/** The first problems of a configuration refused, each with its code, path and line: what to fix, where. */
function firstProblems(problems: readonly ConfigProblem[]): string {
  return problems
    .slice(0, 3)
    .map((p) => `${p.code} ${p.path}${p.line ? ` (line ${p.line})` : ''}: ${p.message}`)
    .join('; ');
}

export class Agent {
  private config: AgentConfig;
  readonly log: Logger;
  private readonly sequencer = new Sequencer();
  private readonly stamp: EventStamp;
  private readonly pipeline: Pipeline;
  private readonly supervisor: Supervisor;
  private cgroups: Cgroups | undefined;
  private cgroupState: AgentStatus['cgroup'] = { unavailable: 'not set up' };
  private readonly groups = new Map<string, CgroupGroup>();
  private kernel: KernelEvents | undefined;
  private plugins = new Map<string, EventPlugin>();
  /** Installed plugins that could not be set up at the last start or reload (status only). */
  private unstarted: PluginStatus[] = [];
  /** The built-in inventory collector (also in `plugins`, under its name). */
  private inventory: InventoryPlugin | undefined;
  private metrics: MetricsServer | undefined;
  private readonly drops = new DropReporter();
  private readonly cpu = new CpuMeter();
  private cpuPercent = 0;
  private memoryOverSince: number | undefined;
  /** Says in the log when the agent runs out of file descriptors (read each self sample). */
  private fds: FdLimitWatch | undefined;
  private timers: NodeJS.Timeout[] = [];
  private levelOverride: { readonly level: TaskLogLevel; readonly until: number | undefined; readonly timer: NodeJS.Timeout | undefined } | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  /** Set while a reload's metrics address could not be bound: tried again every METRICS_RETRY_MS. */
  private metricsRetry: NodeJS.Timeout | undefined;
  /** Why the metrics endpoint does not listen while it is tried again (for the run file). */
  private metricsError: string | undefined;
  private readonly started = new Date();
  private lastReload: AgentStatus['lastReload'];
  private stopped = false;
  /** The agent's hold on its data folder (./instance-lock.ts), from the start to the end of stop(). */
  private lock: InstanceLock | undefined;
  /** Another agent was found holding the data folder: this one stops (onFatal). */
  private lockLost = false;
  private lockChecking = false;
  /** What the last check of the lock found. */
  private lockState: string | undefined;
  private reloading: Promise<ReloadResult> | undefined;
  private identity: Identity | undefined;
  private transport: GrpcTransport | undefined;
  private transportClass: typeof GrpcTransport | undefined;
  /** Not enrolled yet (the server could not be reached at the start): the server output's stand-in, and the next attempt. */
  private late: LateTransport | undefined;
  private enrollRetry: NodeJS.Timeout | undefined;
  private enrolling = false;
  /** The server's tasks run so far, across reloads (each makes a new transport): each runs once. */
  private readonly tasks = new TaskLedger();
  /** Gateway addresses held down after an Ack timeout: kept across reloads, as the tasks are. */
  private readonly holds = new AddressHolds();
  /** The group configuration from the server the agent runs (over its own file), if any. */
  private serverConfig: GroupConfig | undefined;
  /** The server has sent what configuration runs (or that none of a group does) since the start. */
  private serverSpoke = false;

  constructor(private readonly options: AgentOptions) {
    this.config = options.config;
    this.log = Logger.fromConfig(this.config.log, options.stderr ? { stream: options.stderr } : {});
    this.stamp = new EventStamp(this.sequencer, { name: os.hostname(), hostname: os.hostname(), architecture: os.arch(), os: { type: 'linux', kernel: os.release() } }, options.version);
    // Outputs are made in start(): the server output may need to enroll first.
    this.pipeline = new Pipeline([]);
    this.pipeline.onDrain(() => {
      this.kernel?.drain();
      for (const plugin of this.plugins.values()) plugin.resume();
    });
    this.supervisor = new Supervisor({ log: this.log.child({ component: 'supervisor' }), sustainS: this.config.limits.sustain_s, healthS: this.config.plugins.health_s });
  }

  /**
   * Starts everything; on failure, whatever started is stopped again and the error rethrown.
   * Reloads (a configuration the server pushes as soon as the agent connects, a SIGHUP) wait
   * until the start is done: applied halfway through it, they would start plugins and listeners
   * a second time.
   */
  async start(): Promise<void> {
    let kept: GroupConfig | undefined;
    let started!: () => void;
    this.reloading = new Promise<ReloadResult>((resolve) => (started = () => resolve({ ok: true })));
    try {
      await this.claimDataDir();
      // Only while the agent reports to a server: one taken off it runs its own file.
      kept = this.config.outputs.server.enabled ? this.keptGroupConfig() : undefined;
      if (!this.config.outputs.server.enabled) this.keepGroupConfig(undefined);
      if (this.config.outputs.server.enabled) await this.identityOrLater();
      this.pipeline.replaceChannels(this.buildChannels(this.config));
      this.setupCgroups();
      if (this.config.plugins.driver) await this.startKernel();
      await this.startPlugins();
      await this.startMetrics();
      this.writeRunFile(true);
      this.timers.push(setInterval(() => this.reportDrops(), DROP_REPORT_MS));
      // One timer for everything sampled each second (this process, the kernel source's budget
      // and windows, the plugins' resources): each wakeup of an idle agent costs, one a second
      // instead of three.
      this.timers.push(
        setInterval(() => {
          this.watchSelf();
          this.kernel?.tick();
          this.supervisor.sample();
        }, SELF_SAMPLE_MS),
      );
      this.timers.push(setInterval(() => void this.watchLock(), LOCK_CHECK_MS));
      this.scheduleHeartbeat();
      if (this.pipeline.outputs.length === 0) this.log.warn('no output is enabled: events are counted and discarded');
      this.log.info('agent started', { version: this.options.version, pid: process.pid, outputs: this.pipeline.outputs.map((o) => o.name), plugins: this.supervisor.names(), cgroup: this.cgroupState });
    } catch (error) {
      started();
      await this.stop();
      throw toHadesError(error);
    }
    started();
    // The group configuration the server pushed last runs at once, server or not (a host
    // restarted while the server is away keeps its fleet's policy), applied as a push is: after
    // the start on the file's, so that what it cannot do (a port in use) never stops the agent.
    // Unless the server has already said what runs now (connected during the start): its word
    // is newer than the copy, which would otherwise undo it (a group changed or unset while the
    // agent was down).
    if (kept && !this.serverSpoke) {
      this.log.info('applying the group configuration the server pushed last', { version: kept.version });
      await this.configFromServer(kept.yaml, kept.version, false);
    }
  }

  private async claimDataDir(): Promise<void> {
    const dir = this.config.agent.data_dir;
    try {
      makeFolders(dir, 0o700);
    } catch (error) {
      throw new HadesError('HADES_ERR_SPOOL_IO', `agent data folder ${dir} cannot be created: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
    // An agent of a release before the lock socket holds none: known by the files it has open here
    // (a folder with the socket file is this release's, and the socket decides).
    const previous = runFileOf(dir);
    if (previous !== undefined && !hasLockSocket(dir) && holdsFilesIn(previous.pid, Date.parse(previous.started), dir)) throw agentRunning(dir);
    this.lock = await InstanceLock.acquire(dir, () => agentRunning(dir));
    this.writeRunFile(true);
  }

  /**
   * Writes the run file (`hades agent status` finds the agent by it). At start a failure stops the
   * start; later (a timer, a reload) it is logged and the agent goes on: a data folder removed or
   * a full disk must not take the agent down for it.
   */
  private writeRunFile(strict = false): void {
    try {
      this.writeRunFileNow();
    } catch (error) {
      if (strict) throw error;
      this.log.warn('the run file cannot be written; hades agent status does not find the agent until it is', { code: 'HADES_ERR_SPOOL_IO', file: runFilePath(this.config.agent.data_dir), reason: (error as NodeJS.ErrnoException).code ?? String(error) });
    }
  }

  private writeRunFileNow(): void {
    const run: RunFile = {
      pid: process.pid,
      started: this.started.toISOString(),
      version: this.options.version,
      ...(this.metrics?.url ? { metrics: this.metrics.url } : {}),
      ...(!this.metrics && this.metricsRetry !== undefined && this.metricsError !== undefined ? { metrics_error: this.metricsError } : {}),
      ...(this.options.configFile ? { config: path.resolve(this.options.configFile) } : {}),
    };
    const file = runFilePath(this.config.agent.data_dir);
    writeFileSync(`${file}.tmp`, `${JSON.stringify(run)}\n`, { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
  }

  private setupCgroups(): void {
    const { cgroup } = this.config.limits;
    if (!cgroup.enabled) {
      this.cgroupState = { unavailable: 'turned off (limits.cgroup.enabled: false)' };
      return;
    }
    const detected = Cgroups.detect({ name: cgroup.name });
    if (!(detected instanceof Cgroups)) {
      this.cgroupState = { unavailable: detected.unavailable };
      this.log.warn('no cgroup limits: cgroups are not available', { code: 'HADES_ERR_CGROUP', reason: detected.unavailable });
      return;
    }
    try {
      const { stale, removed } = detected.setup({ cpuPercent: cgroup.cpu_percent, memoryBytes: cgroup.memory_mb * MB });
      // An agent killed without cleaning up (kill -9) leaves its cgroups, and any plugin process
      // that did not exit when its pipes closed: killed and removed, and said.
      if (removed.length > 0) {
        const killed = removed.flatMap((r) => r.killed);
        this.log.warn('removed the cgroups an earlier agent left', { folders: removed.map((r) => r.folder), killed_pids: killed });
      }
      if (stale.length > 0) this.log.warn('cgroups of an earlier run still hold processes that did not end when killed: left as they are', { code: 'HADES_ERR_CGROUP', folders: stale });
      detected.moveSelf();
      this.cgroups = detected;
      this.cgroupState = { version: detected.version, base: detected.base };
    } catch (error) {
      const e = toHadesError(error);
      this.cgroupState = { unavailable: e.message };
      this.log.warn('no cgroup limits', { err: e });
      try {
        detected.cleanup();
      } catch {
        // nothing was created
      }
    }
  }

  private placeInCgroup(name: string, pid: number, budget: PluginBudget): CgroupGroup | undefined {
    if (!this.cgroups) return undefined;
    try {
      // The kernel's ceiling is twice the watchdog's budget: the watchdog restarts first. Set at
      // each start (the leaf is reused), so that a reload's new budget reaches the kernel too.
      const group = this.cgroups.group(name, { memoryBytes: budget.memoryBytes * 2 });
      this.groups.set(name, group);
      group.add(pid);
      return group;
    } catch (error) {
      this.log.warn('plugin left in the agent\'s cgroup', { plugin: name, err: toHadesError(error) });
      return undefined;
    }
  }

  /** Kills what a plugin that exited left in its cgroup (children that called setsid), and says so. */
  private killLeftovers(name: string, group: CgroupGroup | undefined): void {
    const killed = group?.killAll() ?? 0;
    if (killed > 0) this.log.warn('processes a plugin left behind were killed', { plugin: name, code: 'HADES_ERR_PLUGIN_LEFTOVERS', processes: killed });
  }

  /** The agent's identity: stored from an earlier enrollment, or enrolled now with the configured token. */
  private async ensureIdentity(): Promise<Identity> {
    const { agent, outputs } = this.config;
    const { enroll, loadIdentity } = await import('../transport/enroll.js');
    this.transportClass = (await import('../transport/grpc-transport.js')).GrpcTransport;
    const stored = loadIdentity(agent.data_dir);
    if (stored) return stored;
    const { api, token, ca_sha256: caSha256 } = outputs.server;
    if (!api || !token || !caSha256) {
      throw new HadesError('HADES_ERR_CONFIG_VALUE', `outputs.server is enabled but the agent has not enrolled yet (no identity in ${agent.data_dir}/identity): set outputs.server.api, token and ca_sha256 (hades server token create prints them)`);
    }
    const identity = await enroll({ dataDir: agent.data_dir, api, token, caSha256, agentVersion: this.options.version });
    this.log.info('enrolled with the server', { agent: identity.agentId, api });
    return identity;
  }

  /**
   * The identity, or (the server out of reach for a first enrollment) a start without it: the
   * kernel events reach the other outputs at once, and the server output's events wait in its
   * spool while enrollment is tried again in the background (LateTransport). A refusal (a used
   * or expired token, another CA) stops the start, as before: no retry would change it.
   */
  private async identityOrLater(): Promise<void> {
    try {
      this.identity = await this.ensureIdentity();
    } catch (error) {
      const e = toHadesError(error);
      if (e.code !== 'HADES_ERR_SERVER_UNREACHABLE') throw e;
      this.late = new LateTransport(e.message);
      this.log.warn('the server cannot be reached to enroll: the agent runs without it, keeps the server\'s events in its spool, and tries again', { code: e.code, err: e, retry_s: ENROLL_RETRY_MIN_MS / 1000 });
      this.scheduleEnroll(ENROLL_RETRY_MIN_MS);
    }
  }

  private scheduleEnroll(delayMs: number): void {
    clearTimeout(this.enrollRetry);
    // Jittered, so that a fleet installed while the server was down does not come back at once.
    this.enrollRetry = setTimeout(() => void this.enrollNow(delayMs), delayMs * (0.75 + Math.random() * 0.5));
  }

  private async enrollNow(lastDelayMs: number): Promise<void> {
    this.enrollRetry = undefined;
    if (this.stopped || this.identity !== undefined || !this.config.outputs.server.enabled) return;
    let identity: Identity;
    this.enrolling = true;
    try {
      identity = await this.ensureIdentity();
    } catch (error) {
      const e = toHadesError(error);
      // Unreachable: longer and longer waits. Refused: the configuration must change (a reload
      // may give a new token), so it is tried again at the longest wait, and said each time.
      const next = e.code === 'HADES_ERR_SERVER_UNREACHABLE' ? Math.min(lastDelayMs * 2, ENROLL_RETRY_MAX_MS) : ENROLL_RETRY_MAX_MS;
      this.late?.waiting(e.message);
      if (e.code === 'HADES_ERR_SERVER_UNREACHABLE') this.log.warn('enrollment: the server still cannot be reached', { code: e.code, err: e, retry_s: Math.round(next / 1000) });
      else this.log.error('enrollment refused: the server output waits for a configuration that enrolls (a new token)', { code: e.code, err: e, retry_s: Math.round(next / 1000) });
      if (!this.stopped) this.scheduleEnroll(next);
      return;
    } finally {
      this.enrolling = false;
    }
    if (this.stopped) return;
    this.identity = identity;
    // The output made for the wait takes the transport now; a later rebuild (a reload) makes it directly.
    this.late?.attach(this.serverTransport(this.config, identity));
    this.late = undefined;
  }

  private serverTransport(config: AgentConfig, identity: Identity): GrpcTransport {
    const addresses = config.outputs.server.addresses.length > 0 ? config.outputs.server.addresses : identity.gateways;
    if (!this.transportClass) throw new HadesError('HADES_ERR_INTERNAL', 'the server transport was not loaded before the server output was made');
    const transport = new this.transportClass({
      identity,
      addresses,
      agentVersion: this.options.version,
      log: this.log.child({ component: 'server' }),
      onConfig: (yaml, version, local) => {
        // Newer than the copy kept from the last run: that one is not applied after the start.
        this.serverSpoke = true;
        void this.configFromServer(yaml, version, local);
      },
      configVersion: () => this.serverConfig?.version ?? 0,
      onTask: (task) => this.runTask(task),
      tasks: this.tasks,
      holds: this.holds,
      ackTimeoutMs: config.outputs.server.ack_timeout_s * 1000,
      renewal: { dataDir: config.agent.data_dir, renewBeforeMs: config.outputs.server.renew_before_days * 86_400_000, jitterMs: config.outputs.server.renew_jitter_s * 1000 },
      // A transport made later (a reload) starts from the renewed identity.
      onIdentity: (renewed) => {
        this.identity = renewed;
      },
    });
    this.transport = transport;
    // Connected from the start, not from the first batch: an idle agent gets its tasks at once.
    transport.start();
    return transport;
  }

  /**
   * A `log_level` task's level, over the configuration's: it holds across reloads that leave the
   * configured level as it was, until `until` (ms since the epoch) when the task gave a duration,
   * and until the agent stops. Returns `until`.
   */
  private overrideLevel(level: TaskLogLevel, seconds: number | undefined): number | undefined {
    this.clearLevelOverride();
    const until = seconds === undefined ? undefined : Date.now() + seconds * 1000;
    const timer =
      seconds === undefined
        ? undefined
        : setTimeout(() => {
            this.clearLevelOverride();
            this.log.setLevel(this.config.log.level);
            this.log.info('log level back to the configuration', { level: this.config.log.level });
          }, seconds * 1000);
    timer?.unref();
    this.levelOverride = { level, until, timer };
    this.log.info('log level set by a server task', { level, ...(until === undefined ? {} : { until: new Date(until).toISOString() }) });
    this.log.setLevel(level);
    return until;
  }

  private clearLevelOverride(): void {
    clearTimeout(this.levelOverride?.timer);
    this.levelOverride = undefined;
  }

  /** A task from the server; its result goes back on the stream. */
  private runTask(task: ServerTask): void {
    const params = (task.params ?? {}) as Record<string, unknown>;
    const reply = (status: 'done' | 'failed', result: unknown) => this.transport?.taskResult(task.id, status, result);
    switch (task.kind) {
      case 'log_level': {
        const problem = logLevelProblem(params);
        if (problem) return reply('failed', { code: 'HADES_ERR_CONFIG_VALUE', message: problem });
        const until = this.overrideLevel(params['level'] as TaskLogLevel, params['duration_s'] as number | undefined);
        return reply('done', { level: params['level'], ...(until === undefined ? {} : { until: new Date(until).toISOString() }) });
      }
      case 'restart_plugin': {
        const name = typeof params['name'] === 'string' ? params['name'] : '';
        const plugin = this.supervisor.get(name);
        if (!plugin) return reply('failed', { code: 'HADES_ERR_TASK_PARAMS', message: `no plugin '${name}' runs on this agent; its plugins: ${this.supervisor.names().join(', ')}` });
        // Asked for, not the plugin's failure: counted, five in a row gave the plugin up for good.
        plugin.process.excuseExit();
        plugin.process.restart('restarted by the server');
        return reply('done', { plugin: name });
      }
      case 'query':
      case 'inventory':
        return void this.runQueryTask(task, reply);
      default:
        return reply('failed', { code: 'HADES_ERR_NOT_YET_AVAILABLE', message: `task '${task.kind}' is not available in this agent version` });
    }
  }

  /**
   * A `query` or `inventory` task: the SQL runs in the inventory collector with the task's
   * timeout; the answer is the rows (bounded in number and bytes, `truncated` when cut) or a
   * coded error. docs/plugins.md describes the parameters and the result.
   */
  private async runQueryTask(task: ServerTask, reply: (status: 'done' | 'failed', result: unknown) => void): Promise<void> {
    let query;
    try {
      query = parseQueryTask(task.kind, task.params);
    } catch (error) {
      const e = toHadesError(error);
      return reply('failed', { code: e.code, message: e.message });
    }
    // The server sends waiting tasks as soon as the agent connects, which may be before the
    // agent's start (or a reload) has reached the collector: wait for it within the task's time.
    const since = performance.now();
    let inventory = this.inventory;
    while (!inventory && this.config.plugins.inventory.enabled && !this.stopped && performance.now() - since < query.timeoutMs) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      inventory = this.inventory;
    }
    if (!inventory) {
      return reply('failed', { code: 'HADES_ERR_QUERY_UNAVAILABLE', message: this.config.plugins.inventory.enabled ? 'the inventory collector is not running' : 'the inventory collector is turned off (plugins.inventory.enabled: false)' });
    }
    const answer = await inventory.query({ ...query, timeoutMs: Math.max(1000, Math.round(query.timeoutMs - (performance.now() - since))) });
    if (!answer.ok) {
      this.log.info('query task failed', { task: task.id, code: answer.code });
      return reply('failed', { code: answer.code, message: answer.message, ...(answer.details ? { details: answer.details } : {}) });
    }
    const result = taskResult(answer, query.maxBytes);
    this.log.info('query task done', { task: task.id, rows: result['row_count'], truncated: result['truncated'], ms: answer.elapsed_ms });
    return reply('done', result);
  }

  /**
   * A configuration pushed by the server for the agent's group: the whole agent configuration,
   * except what only the host can know (agent.data_dir and outputs.server), which stay local.
   */
  private async configFromServer(yaml: string, version: number, local: boolean): Promise<void> {
    if (local) {
      // No group of the agent's has a configuration (any more): back to its own file.
      const running = this.serverConfig;
      if (running === undefined) {
        // Nothing applied yet (the copy kept from the last run is not, the server's word being newer): not kept either.
        this.keepGroupConfig(undefined);
        return;
      }
      this.serverConfig = undefined;
      this.log.info('no group configuration applies any more: back to the configuration file');
      // An agent made without a file (embedded, tests) goes back to the configuration it was given.
      const result = await this.reload(undefined, this.options.configFile ? undefined : this.options.config);
      // The file refused (invalid, unreadable): the group's configuration still runs, and says so.
      if (!result.ok && !result.partial && this.serverConfig === undefined) this.serverConfig = running;
      if (this.serverConfig === undefined) this.keepGroupConfig(undefined);
      return;
    }
    // Sent again at each connection: the same text changes nothing, and restarts nothing.
    if (this.serverConfig?.yaml === yaml) {
      if (this.serverConfig.version !== version) {
        this.serverConfig = { ...this.serverConfig, version };
        this.keepGroupConfig(this.serverConfig);
      }
      return;
    }
    const parsed = parseRoleConfig(yaml, 'agent');
    if (!parsed.ok) {
      this.rejected(`configuration ${version} from the server: ${parsed.problems.length} problem(s): ${firstProblems(parsed.problems)}`, parsed.problems);
      // The server hears of it now (the heartbeat's last_reload), not only from a version that stays old.
      this.heartbeat();
      return;
    }
    // Noted before the reload (reloads run one at a time, in order), so that a message that
    // comes while it runs (back to the file, another version) is judged against this one.
    const previous = this.serverConfig;
    const mine = { yaml, version, config: parsed.config };
    this.serverConfig = mine;
    // The host's parts are read when the reload's turn comes: a SIGHUP queued before it has
    // changed them by then.
    const result = await this.reload(undefined, () => this.withHostParts(mine.config, this.config));
    // Refused before anything was applied: what ran before still runs. Applied in part: it runs.
    if (!result.ok && !result.partial && this.serverConfig === mine) this.serverConfig = previous;
    else if (this.serverConfig === mine) this.keepGroupConfig(mine);
    // Refused or applied in part: the server hears of it at once (the heartbeat's last_reload).
    if (!result.ok) this.heartbeat();
  }

  private groupConfigFile(): string {
    return path.join(this.config.agent.data_dir, GROUP_CONFIG_FILE);
  }

  /** The group configuration kept in the data folder, checked again; undefined when none or unusable (said). */
  private keptGroupConfig(): GroupConfig | undefined {
    let text: string;
    try {
      // It can run programs (plugins.installed): only the agent's own, unwritable by others.
      const info = statSync(this.groupConfigFile());
      if (info.uid !== (process.getuid?.() ?? info.uid) || (info.mode & 0o022) !== 0) {
        this.log.warn('the kept group configuration is not the agent\'s own file (owner or mode): ignored', { code: 'HADES_ERR_CONFIG_READ', file: this.groupConfigFile() });
        return undefined;
      }
      text = readOwnFile(this.groupConfigFile());
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn('the kept group configuration cannot be read; the file\'s runs until the server sends one', { code: 'HADES_ERR_CONFIG_READ', file: this.groupConfigFile(), reason: (error as NodeJS.ErrnoException).code ?? String(error) });
      return undefined;
    }
    let kept: { yaml?: unknown; version?: unknown };
    try {
      kept = JSON.parse(text) as { yaml?: unknown; version?: unknown };
    } catch {
      kept = {};
    }
    const parsed = typeof kept.yaml === 'string' ? parseRoleConfig(kept.yaml, 'agent') : undefined;
    if (!parsed?.ok || typeof kept.version !== 'number' || typeof kept.yaml !== 'string') {
      this.log.warn('the kept group configuration is not usable; the file\'s runs until the server sends one', { code: 'HADES_ERR_CONFIG_INVALID', file: this.groupConfigFile() });
      return undefined;
    }
    return { yaml: kept.yaml, version: kept.version, config: parsed.config };
  }

  /** Keeps (or, undefined, forgets) the group configuration that runs, for the next start. */
  private keepGroupConfig(running: { yaml: string; version: number } | undefined): void {
    try {
      if (running) writePrivateFile(this.groupConfigFile(), JSON.stringify({ version: running.version, yaml: running.yaml }));
      else rmSync(this.groupConfigFile(), { force: true });
    } catch (error) {
      this.log.warn('the group configuration cannot be kept for the next start', { code: 'HADES_ERR_CONFIG_READ', file: this.groupConfigFile(), reason: (error as NodeJS.ErrnoException).code ?? String(error) });
    }
  }

  /** A group configuration with what only the host knows (agent.data_dir, outputs.server) from `own`. */
  private withHostParts(group: AgentConfig, own: AgentConfig): AgentConfig {
    return { ...group, agent: { ...group.agent, data_dir: own.agent.data_dir }, outputs: { ...group.outputs, server: own.outputs.server } };
  }

  /**
   * The outputs of `config`. With `after`, a spooled output opens its spool, and the file output
   * its file, only once the promise `after(name)` gives has settled (a reload: the output it
   * replaces has closed it).
   */
  private buildChannels(config: AgentConfig, after?: (name: string) => Promise<unknown>): OutputChannel[] {
    const channels: OutputChannel[] = [];
    const rate = (r: { events_per_s: number; kb_per_s: number }) => ({ eventsPerSecond: r.events_per_s, bytesPerSecond: r.kb_per_s * 1024 });
    const { outputs } = config;
    if (outputs.stdout.enabled) channels.push(new StreamChannel('stdout', this.options.stdout ?? process.stdout, rate(outputs.stdout.rate)));
    if (outputs.file.enabled) {
      const file = new RotatingFile({ file: outputs.file.path, maxBytes: outputs.file.max_mb * MB, maxFiles: outputs.file.max_files });
      channels.push(StreamChannel.toFile('file', file, this.log?.child({ component: 'output' }), rate(outputs.file.rate), after?.('file')));
    }
    const spooled = (transport: BatchTransport, batchEvents: number, r?: { events_per_s: number; kb_per_s: number }) =>
      new SpooledChannel(transport.name, after ? after(transport.name).then(() => this.openSpool(config, transport.name)) : this.openSpoolNow(config, transport.name), transport, {
        batchEvents,
        ...(r ? { rate: rate(r) } : {}),
        spoolWriteBytesPerSecond: config.spool.write_kb_per_s * 1024,
        ...(this.log ? { log: this.log.child({ component: 'output' }) } : {}),
      });
    if (outputs.http.enabled) {
      const transport = new HttpTransport({ url: outputs.http.url, headers: outputs.http.headers, timeoutMs: outputs.http.timeout_ms, agentVersion: this.options.version });
      channels.push(spooled(transport, outputs.http.batch_events, outputs.http.rate));
    }
    if (outputs.server.enabled && this.identity) channels.push(spooled(this.serverTransport(config, this.identity), outputs.server.batch_events, outputs.server.rate));
    else if (outputs.server.enabled && (this.late !== undefined || after !== undefined)) {
      // Not enrolled yet: a stand-in of its own for each build (the output it replaces closes
      // its own), the one the next enrollment attaches to. A reload that turns the server output
      // on for an agent never enrolled starts the enrollment.
      this.late = new LateTransport(this.late?.reason ?? 'not enrolled yet');
      channels.push(spooled(this.late, outputs.server.batch_events, outputs.server.rate));
      if (this.enrollRetry === undefined && !this.enrolling) this.scheduleEnroll(ENROLL_RETRY_MIN_MS);
    }
    for (const transport of this.options.transports ?? []) channels.push(spooled(transport, 2000));
    return channels;
  }

  /**
   * The spool at the agent's start. One that cannot be used (its folder unwritable, a folder
   * where its cursor file belongs) does not keep the agent from running: like at a reload, its output
   * drops and counts its events (spool_write_failed), is shown down with the reason, and the
   * kernel events still reach the other outputs.
   */
  private openSpoolNow(config: AgentConfig, name: string): Spool | Promise<Spool> {
    try {
      return this.openSpool(config, name);
    } catch (error) {
      return Promise.reject(toHadesError(error));
    }
  }

  private openSpool(config: AgentConfig, name: string): Spool {
    return Spool.open({
      dir: path.join(config.agent.data_dir, 'spool', name),
      maxBytes: config.spool.max_mb * MB,
      fsync: config.spool.fsync,
      fsyncIntervalMs: config.spool.fsync_interval_ms,
      eventsOf: (data: Uint8Array) => (data.length >= 4 ? new DataView(data.buffer, data.byteOffset, 4).getUint32(0, true) : 0),
      onCorrupt: (error) => this.log.error('spool records lost', { err: error, output: name }),
      onFolderRemade: (error) => this.log.error('spool folder removed while in use; made again', { err: error, output: name }),
    });
  }

  private emit = (event: HadesEvent): boolean => this.pipeline.push(event);

  private async startKernel(): Promise<void> {
    const manifest = loadManifest(this.options.driverManifest ?? defaultDriverManifest());
    const driverBinary = verifyExecutable(manifest);
    const budget = budgetOf(this.config.plugins.limits);
    let group: CgroupGroup | undefined;
    const kernel: KernelEvents = new KernelEvents({
      config: this.config,
      agentVersion: this.options.version,
      externalTick: true,
      sequencer: this.sequencer,
      driverBinary,
      // Again before every restart: a driver swapped while it ran is not started.
      driverVerify: () => verifyExecutable(manifest),
      driverMaxOpenFiles: budget.maxOpenFiles,
      hashCacheDir: this.config.agent.data_dir,
      emit: this.emit,
      onDriverSpawn: (pid) => {
        group = this.placeInCgroup('driver', pid, budget);
      },
      onLog: (entry) => {
        const level = entry['level'] === 'error' ? 'error' : entry['level'] === 'warn' ? 'warn' : 'debug';
        this.log.log(level, typeof entry['msg'] === 'string' ? entry['msg'] : 'driver', { component: 'driver', ...(typeof entry['code'] === 'string' ? { driver_code: entry['code'] } : {}) });
      },
      onFatal: (error) => {
        this.log.error('kernel driver lost', { err: error });
        this.options.onFatal?.(error, EXIT_RESTART);
      },
    });
    const hello = await kernel.start();
    this.kernel = kernel;
    const supervised: Supervised = {
      name: 'driver',
      process: kernel.driverProcess,
      budget,
      get group() {
        return group;
      },
      eventsIn: () => kernel.eventCount,
      takeOverLimit: () => 0,
      dropped: () => {
        const stats = kernel.stats();
        const out: Record<string, number> = {};
        for (const hook of Object.values(stats.kernel ?? {})) {
          for (const reason of ['dropped_ringbuf_full', 'dropped_state_full']) {
            if (hook[reason]) out[reason] = (out[reason] ?? 0) + hook[reason];
          }
        }
        if (stats.decoder.shed) out['shed'] = stats.decoder.shed;
        return out;
      },
    };
    this.supervisor.add(supervised);
    this.log.info('kernel driver started', { backend: hello.backend, hooks: hello.hooks.filter((h) => h.active).map((h) => h.name) });
  }

  /**
   * Starts the installed plugins and the built-in ones the configuration turns on. Returns the
   * errors of the installed plugins that could not even be set up (a manifest that cannot be
   * read, a name used twice): those are shown in the status as `failed` under their manifest's
   * path, since they have no other name, until the next reload.
   */
  private async startPlugins(): Promise<HadesError[]> {
    this.unstarted = [];
    const errors: HadesError[] = [];
    const hellos: Promise<void>[] = [];
    for (const entry of this.config.plugins.installed) {
      if (!entry.enabled) continue;
      try {
        hellos.push(this.startPlugin(entry).hello);
      } catch (error) {
        // One broken plugin does not keep the agent or the others from running.
        const e = toHadesError(error);
        errors.push(e);
        this.log.error('plugin not started', { manifest: entry.manifest, err: e });
        this.unstarted.push({
          name: entry.manifest,
          state: 'failed',
          restarts: 0,
          eventsIn: 0,
          eventsPerSecond: 0,
          dropped: {},
          budget: budgetOf(this.config.plugins.limits, entry.limits),
          lastError: e.toLine(),
          overBudgetRestarts: 0,
          unresponsiveRestarts: 0,
        });
      }
    }
    // The agent's own plugins too (their failures are logged where they start).
    for (const name of BUILTIN_PLUGINS) hellos.push(this.startBuiltinPlugin(name));
    // The plugins come up side by side, and the agent waits for their HELLOs only so long: one
    // that keeps failing before it (tried again with backoff) or never says it goes on under the
    // watchdog without holding the agent's start or a reload.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled(hellos), new Promise<void>((resolve) => (timer = setTimeout(resolve, PLUGIN_START_WAIT_MS)))]);
    clearTimeout(timer);
    return errors;
  }

  /** Starts one of the agent's own plugins, when its configuration turns it on. */
  private async startBuiltinPlugin(name: (typeof BUILTIN_PLUGINS)[number]): Promise<void> {
    const { inventory, logs, honeypot } = this.config.plugins;
    if (name === INVENTORY_PLUGIN && inventory.enabled) await this.startInventory();
    if (name === LOGS_PLUGIN && logs.enabled) await this.startEventBuiltin(LOGS_PLUGIN, logs.limits, (options) => logsPlugin({ ...options, settings: logs }));
    if (name === HONEYPOT_PLUGIN && honeypot.enabled) await this.startEventBuiltin(HONEYPOT_PLUGIN, honeypot.limits, (options) => honeypotPlugin({ ...options, settings: honeypot }));
  }

  /** Stops one of the agent's own plugins, if it runs. */
  private async stopBuiltinPlugin(name: string): Promise<void> {
    const plugin = this.plugins.get(name);
    if (!plugin) return;
    this.retirePlugin(name);
    this.plugins.delete(name);
    this.supervisor.remove(name);
    const inventory = name === INVENTORY_PLUGIN ? this.inventory : undefined;
    if (inventory) this.inventory = undefined;
    await (inventory ? inventory.stop() : plugin.stop());
  }

  /** Sets an installed plugin up and starts it; throws when it cannot be set up, `hello` settles once it runs (or is given up). */
  private startPlugin(entry: AgentConfig['plugins']['installed'][number]): { hello: Promise<void> } {
    const manifest = loadManifest(entry.manifest);
    if (manifest.name === 'driver' || manifest.name === INVENTORY_PLUGIN || manifest.name === LOGS_PLUGIN || manifest.name === HONEYPOT_PLUGIN || this.plugins.has(manifest.name)) {
      throw new HadesError('HADES_ERR_PLUGIN_MANIFEST', `plugin name ${manifest.name} is used twice (driver, ${INVENTORY_PLUGIN}, ${LOGS_PLUGIN} and ${HONEYPOT_PLUGIN} are the agent's own)`);
    }
    const budget = budgetOf(this.config.plugins.limits, entry.limits);
    let group: CgroupGroup | undefined;
    const plugin = new EventPlugin({
      manifest,
      config: entry.config,
      stamp: this.stamp,
      log: this.log.child({ component: 'plugin' }),
      eventsPerSecond: budget.eventsPerSecond,
      maxOpenFiles: budget.maxOpenFiles,
      graceMs: this.config.plugins.grace_ms,
      emit: this.emit,
      onGap: (gap) => this.reportGap(manifest.name, gap),
      onSpawn: (pid) => {
        group = this.placeInCgroup(manifest.name, pid, budget);
      },
      killLeftovers: () => this.killLeftovers(manifest.name, group),
      onFatal: (error) => this.log.error('plugin given up', { plugin: manifest.name, err: error }),
    });
    this.supervise(plugin, budget, () => group);
    return {
      hello: plugin.start().catch((error: unknown) => {
        this.log.error('plugin failed to start', { plugin: manifest.name, err: toHadesError(error) });
      }),
    };
  }

  /** Puts an event plugin under the watchdog. */
  private supervise(plugin: EventPlugin, budget: PluginBudget, group: () => CgroupGroup | undefined): void {
    this.plugins.set(plugin.name, plugin);
    let overLimitSeen = 0;
    this.supervisor.add({
      name: plugin.name,
      process: plugin.process,
      budget,
      get group() {
        return group();
      },
      eventsIn: () => plugin.counters.received,
      takeOverLimit: () => {
        const fresh = plugin.counters.rateLimited - overLimitSeen;
        overLimitSeen = plugin.counters.rateLimited;
        return fresh;
      },
      dropped: () => ({ ...(plugin.counters.invalid ? { invalid: plugin.counters.invalid } : {}), ...(plugin.counters.rateLimited ? { rate_limited: plugin.counters.rateLimited } : {}) }),
      stats: () => plugin.lastStats,
      health: () => plugin.health(),
    });
  }

  /**
   * The options every built-in plugin process shares (the inventory and log collectors, the honeypot): its own
   * cgroup, budget (plugins.NAME.limits over plugins.limits) and restarts, like any plugin.
   */
  private builtinOptions(name: string, limits: Partial<AgentConfig['plugins']['limits']> | undefined) {
    const budget = budgetOf(this.config.plugins.limits, limits);
    let group: CgroupGroup | undefined;
    const options = {
      version: this.options.version,
      dataDir: this.config.agent.data_dir,
      stamp: this.stamp,
      log: this.log.child({ component: 'plugin' }),
      eventsPerSecond: budget.eventsPerSecond,
      maxOpenFiles: budget.maxOpenFiles,
      graceMs: this.config.plugins.grace_ms,
      emit: this.emit,
      onGap: (gap: PluginGap) => this.reportGap(name, gap),
      onSpawn: (pid: number) => {
        group = this.placeInCgroup(name, pid, budget);
      },
      killLeftovers: () => this.killLeftovers(name, group),
      onFatal: (error: HadesError) => this.log.error('plugin given up', { plugin: name, err: error }),
    };
    return { options, supervise: (plugin: EventPlugin) => this.supervise(plugin, budget, () => group) };
  }

  private async startBuiltin(name: string, start: () => Promise<void>): Promise<void> {
    try {
      await start();
    } catch (error) {
      this.log.error('plugin failed to start', { plugin: name, err: toHadesError(error) });
    }
  }

  /** The built-in inventory collector, run by the agent's Node binary. */
  private async startInventory(): Promise<void> {
    const settings = this.config.plugins.inventory;
    const { options, supervise } = this.builtinOptions(INVENTORY_PLUGIN, settings.limits);
    const inventory = new InventoryPlugin({ ...options, settings });
    this.inventory = inventory;
    supervise(inventory.plugin);
    await this.startBuiltin(INVENTORY_PLUGIN, () => inventory.start());
  }

  /**
   * A built-in plugin that is an event plugin as it is (the log collector: ssh_login, sudo; the
   * honeypot: honeypot_touch), run by the agent's Node binary.
   */
  private async startEventBuiltin(name: string, limits: Partial<AgentConfig['plugins']['limits']> | undefined, make: (options: ReturnType<Agent['builtinOptions']>['options']) => EventPlugin): Promise<void> {
    const { options, supervise } = this.builtinOptions(name, limits);
    const plugin = make(options);
    supervise(plugin);
    await this.startBuiltin(name, () => plugin.start());
  }

  private reportGap(component: string, gap: PluginGap): void {
    this.log.warn('plugin restarted', { plugin: component, reason: gap.reason, restarts: gap.restarts });
    this.emit(
      this.stamp.complete('agent_gap', {
        hades: { backend: 'agent', gap: { component, reason: gap.reason.slice(0, 256), start: gap.start.toISOString(), end: gap.end.toISOString(), restarts: gap.restarts } },
      }),
    );
  }

  private async startMetrics(): Promise<void> {
    if (!this.config.metrics.enabled) return;
    this.metrics = await this.openMetrics();
  }

  /** A metrics server listening on the configured address; rejects with HADES_ERR_METRICS_LISTEN. */
  private async openMetrics(): Promise<MetricsServer> {
    const server = new MetricsServer(() => this.status(), this.options.version);
    await server.listen(this.config.metrics.listen);
    return server;
  }

  /** Tries the metrics address again until it is bound, the agent stops or a reload replaces it. */
  private retryMetrics(): void {
    const timer = setTimeout(() => {
      void (async () => {
        let server: MetricsServer;
        try {
          server = await this.openMetrics();
        } catch (error) {
          this.metricsError = error instanceof Error ? error.message : String(error);
          this.log.debug('metrics endpoint still not listening', { code: 'HADES_ERR_METRICS_LISTEN', reason: this.metricsError });
          if (!this.stopped && this.metricsRetry === timer) this.retryMetrics();
          return;
        }
        // Stopped meanwhile, or a reload took the endpoint over: this one is not wanted.
        if (this.stopped || this.metricsRetry !== timer) {
          await server.close();
          return;
        }
        this.metricsRetry = undefined;
        this.metricsError = undefined;
        this.metrics = server;
        this.log.info('metrics endpoint listening', { url: server.url });
        this.writeRunFile();
      })();
    }, METRICS_RETRY_MS);
    this.metricsRetry = timer;
  }

  private scheduleHeartbeat(): void {
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = setInterval(() => this.heartbeat(), this.config.agent.heartbeat_s * 1000);
  }

  /** The agent_health event. */
  heartbeat(): void {
    const status = this.status();
    const outputs = status.pipeline.outputs;
    // `time`: the host's clock, which the server compares with its own (its events carry this clock's time).
    this.transport?.heartbeat({ time: new Date().toISOString(), version: this.options.version, uptime_s: Math.round(status.uptimeS), cpu_percent: status.cpuPercent, memory_rss_bytes: status.memoryRssBytes, events_in: status.pipeline.in, events_dropped: status.eventsDropped, plugins: status.plugins.map(heartbeatPlugin), outputs: outputs.map(heartbeatOutput), certificate: this.transport.certificateHealth(), config_version: status.groupConfigVersion ?? 0, ...(status.lastReload ? { last_reload: { ...status.lastReload, ...(status.lastReload.message ? { message: status.lastReload.message.slice(0, 1024) } : {}) } } : {}) });
    this.emit(
      this.stamp.complete('agent_health', {
        hades: {
          backend: 'agent',
          health: {
            version: this.options.version,
            uptime_s: Math.round(status.uptimeS),
            cpu_percent: Math.round(status.cpuPercent * 100) / 100,
            memory_rss_bytes: status.memoryRssBytes,
            open_fds: status.openFds,
            queue_depth: outputs.reduce((a, o) => a + o.queued, 0),
            spool_bytes: outputs.reduce((a, o) => a + (o.spool?.bytes ?? 0), 0),
            events_in: status.pipeline.in,
            events_out: outputs.reduce((a, o) => a + o.out, 0),
            events_backlog: outputs.reduce((a, o) => a + (o.backlogAtStart ?? 0), 0),
            events_dropped: status.eventsDropped,
            plugins: status.plugins.map((p) => ({
              name: p.name,
              ...(p.version ? { version: p.version.slice(0, 32) } : {}),
              state: p.state,
              ...(p.pid !== undefined ? { pid: p.pid } : {}),
              restarts: p.restarts,
              ...(p.health ? { health: p.health } : {}),
              ...(p.healthDetail ? { health_detail: p.healthDetail } : {}),
              ...(p.cpuPercent !== undefined ? { cpu_percent: Math.round(p.cpuPercent * 100) / 100 } : {}),
              ...(p.memoryRssBytes !== undefined ? { memory_rss_bytes: p.memoryRssBytes } : {}),
            })),
          },
        },
      }),
    );
  }

  /** Every drop counter of the agent, cumulative since its start (the kernel's own are reported by KernelEvents). */
  private dropCounts(): DropCount[] {
    const counts = new Map<string, DropCount>(this.retiredDrops);
    addDrops(counts, this.outputDrops(this.pipeline.outputs));
    for (const [name, plugin] of this.plugins) addDrops(counts, pluginDrops(name, plugin));
    return [...counts.values()];
  }

  private outputDrops(outputs: readonly OutputChannel[]): DropCount[] {
    return outputs.flatMap((output) => Object.entries(output.stats().dropped).map(([reason, total]) => ({ component: reason.startsWith('spool') ? 'spool' : 'output', hook: output.name, reason, total })));
  }

  /** Counters of outputs replaced by a reload, kept in the totals. */
  private readonly retiredDrops = new Map<string, DropCount>();

  /** A plugin about to stop: its drop counters stay in the totals. */
  private retirePlugin(name: string): void {
    const plugin = this.plugins.get(name);
    if (plugin) addDrops(this.retiredDrops, pluginDrops(name, plugin));
  }

  private reportDrops(): void {
    const drops = this.drops.diff(this.dropCounts());
    for (const drop of drops) {
      this.emit(this.stamp.complete('agent_drop', { hades: { backend: 'agent', drops: drop } }));
    }
    // In the log too: while the server is out of reach the events above wait in the very spool
    // that is dropping them.
    if (drops.length > 0) {
      const counts = drops.map((d) => `${d.component}/${d.hook} ${d.reason} ${d.count}`).join(', ');
      this.log.warn('events dropped', { code: 'HADES_ERR_EVENTS_DROPPED', drops: counts, events: drops.reduce((n, d) => n + d.count, 0) });
    }
  }

  /**
   * The data folder's lock socket removed while the agent runs would let a second agent start
   * beside it: it is made again. If another agent started meanwhile and listens there, two agents
   * share the folder's spool and state: this one stops (a fatal error, said loudly), the other
   * keeps the folder, and the service manager's restarts of this one are refused while it runs.
   */
  private async watchLock(): Promise<void> {
    // One check at a time: one that takes over a stale file may wait for another's takeover.
    if (this.lockChecking || this.lockLost) return;
    this.lockChecking = true;
    let state: Awaited<ReturnType<InstanceLock['check']>> | undefined;
    try {
      state = await this.lock?.check();
    } finally {
      this.lockChecking = false;
    }
    // A data folder removed while the agent runs is made again (the spool makes its own part
    // when it next needs it): the lock is taken back at the next check, and the run file with it.
    if (state === 'missing') {
      try {
        makeFolders(this.config.agent.data_dir, 0o700);
      } catch {
        // Said below; tried again at the next check.
      }
    }
    if (state === 'restored') this.writeRunFile();
    // Said when it changes, not every check.
    if (state === this.lockState) return;
    this.lockState = state;
    if (state === 'restored') this.log.warn('the data folder\'s lock socket was removed or replaced; made again', { code: 'HADES_ERR_AGENT_RUNNING', data_dir: this.config.agent.data_dir });
    if (state === 'missing') this.log.warn('the data folder\'s lock socket was removed and cannot be made again now (is the folder gone?); trying again', { code: 'HADES_ERR_SPOOL_IO', data_dir: this.config.agent.data_dir });
    if (state === 'foreign') this.log.warn('the data folder\'s lock socket was replaced by a socket that is no agent\'s lock; left alone, looked at again', { code: 'HADES_ERR_AGENT_RUNNING', data_dir: this.config.agent.data_dir });
    if (state === 'lost') {
      this.lockLost = true;
      const error = new HadesError('HADES_ERR_AGENT_RUNNING', `another agent took the data folder ${this.config.agent.data_dir} while its lock socket was missing; this one stops so that one agent keeps the folder's spool`);
      this.log.error('another agent holds this agent\'s data folder', { err: error, data_dir: this.config.agent.data_dir });
      this.options.onFatal?.(error, EXIT_RESTART);
    }
  }

  /** The agent's own budget: CPU is governed by the kernel source; memory over budget means a restart. */
  private watchSelf(): void {
    this.fds ??= new FdLimitWatch(this.log);
    this.fds.check();
    const usage = process.cpuUsage();
    this.cpuPercent = this.cpu.sample(usage.user + usage.system) ?? this.cpuPercent;
    // It reads /proc (EMFILE when every descriptor is taken, which the check above says): the next sample tries again.
    const { rss, fresh } = memoryNow();
    if (!fresh) return;
    const budget = this.config.limits.memory_mb * MB;
    if (rss <= budget) {
      this.memoryOverSince = undefined;
      return;
    }
    const now = Date.now();
    this.memoryOverSince ??= now;
    if (now - this.memoryOverSince < this.config.limits.sustain_s * 1000) return;
    this.memoryOverSince = undefined;
    const error = new HadesError('HADES_ERR_AGENT_OVER_BUDGET', `agent resident memory ${(rss / MB).toFixed(0)} MB over its budget of ${this.config.limits.memory_mb} MB for ${this.config.limits.sustain_s} s; restarting`);
    this.log.error('agent over its memory budget', { err: error });
    this.options.onFatal?.(error, EXIT_RESTART);
  }

  private openFds(): number {
    try {
      return readdirSync('/proc/self/fd').length;
    } catch {
      return 0;
    }
  }

  status(): AgentStatus {
    const pipeline = this.pipeline.stats();
    const plugins = [...this.supervisor.status(), ...this.unstarted];
    const drops = this.dropCounts();
    const kernel = this.kernel?.stats();
    let eventsDropped = drops.reduce((a, d) => a + d.total, 0);
    for (const plugin of plugins.filter((p) => p.name === 'driver')) eventsDropped += Object.values(plugin.dropped).reduce((a, b) => a + b, 0);
    return {
      version: this.options.version,
      pid: process.pid,
      hostname: os.hostname(),
      started: this.started.toISOString(),
      uptimeS: (Date.now() - this.started.getTime()) / 1000,
      cpuPercent: this.cpuPercent,
      memoryRssBytes: memoryNow().rss,
      memoryBudgetBytes: this.config.limits.memory_mb * MB,
      openFds: this.openFds(),
      ...(this.options.configFile ? { configFile: path.resolve(this.options.configFile) } : {}),
      ...(this.lastReload ? { lastReload: this.lastReload } : {}),
      ...(this.serverConfig ? { groupConfigVersion: this.serverConfig.version } : {}),
      pipeline,
      plugins,
      ...(kernel ? { kernel: { backend: kernel.backend, hooks: kernel.hooks, kernel: kernel.kernel, decoder: kernel.decoder } } : {}),
      eventsDropped,
      drops,
      log: this.log.stats(),
      logLevel: this.levelOverride
        ? { level: this.levelOverride.level, byTask: true, ...(this.levelOverride.until === undefined ? {} : { until: new Date(this.levelOverride.until).toISOString() }) }
        : { level: this.config.log.level, byTask: false },
      cgroup: this.cgroupState,
      ...(this.metrics?.url ? { metrics: this.metrics.url } : {}),
    };
  }

  /**
   * Reads the configuration file again (or takes the given text, e.g. from the server) and
   * applies it. An invalid configuration is rejected with its problems and the running one
   * stays; parts that cannot change in place (driver settings, plugins, outputs) are restarted.
   */
  reload(text?: string, givenConfig?: AgentConfig | (() => AgentConfig)): Promise<ReloadResult> {
    const run = async (): Promise<ReloadResult> => {
      if (this.stopped) return { ok: false, message: 'the agent is stopping' };
      const given = typeof givenConfig === 'function' ? givenConfig() : givenConfig;
      let source = text;
      if (given) source = '';
      else if (source === undefined) {
        if (!this.options.configFile) return { ok: false, message: 'no configuration file to reload' };
        try {
          source = readConfigText(this.options.configFile);
        } catch (error) {
          const e = toHadesError(error);
          return this.rejected(e.message, [{ code: e.code, path: '', message: e.message }]);
        }
      }
      let parsed: ReturnType<typeof parseRoleConfig<'agent'>>;
      try {
        parsed = given ? ({ ok: true, config: given } as const) : parseRoleConfig(source ?? '', 'agent');
      } catch (error) {
        // A check that failed on a text it did not foresee: the running configuration stays, as for any bad reload.
        const e = toHadesError(error);
        return this.rejected(`the configuration could not be checked (${e.code}: ${e.message}); the running configuration stays`, [{ code: 'HADES_ERR_CONFIG_INVALID', path: '', message: e.message }]);
      }
      if (!parsed.ok) {
        // The first problems say what to fix, where: the heartbeat's last_reload carries them, as for a group's configuration.
        const what = this.options.configFile ?? 'the configuration';
        return this.rejected(`${what}: ${parsed.problems.length} problem(s); the running configuration stays: ${firstProblems(parsed.problems)}`, parsed.problems);
      }
      let next = parsed.config;
      // The file read again while a group configuration runs: the file gives the host's parts
      // (its data folder, its server output), the group's configuration the rest.
      if (!given && this.serverConfig !== undefined) next = this.withHostParts(this.serverConfig.config, next);
      if (next.agent.data_dir !== this.config.agent.data_dir) return this.rejected('agent.data_dir cannot change while the agent runs; restart it');
      try {
        await this.apply(next);
      } catch (error) {
        const e = toHadesError(error);
        this.log.error('configuration applied in part', { err: e });
        this.lastReload = { at: new Date().toISOString(), ok: false, message: e.message };
        return { ok: false, message: e.message, partial: true };
      }
      this.lastReload = { at: new Date().toISOString(), ok: true };
      // Where it came from: the file (SIGHUP), or a configuration given (the server's group one).
      this.log.info('configuration reloaded', { from: given ? (this.serverConfig ? `group configuration ${this.serverConfig.version}` : 'given configuration') : (this.options.configFile ?? 'text') });
      return { ok: true };
    };
    // One reload at a time, in order.
    const previous = this.reloading ?? Promise.resolve({ ok: true });
    const current = previous.then(run, run);
    this.reloading = current;
    return current;
  }

  private rejected(message: string, problems?: readonly ConfigProblem[]): ReloadResult {
    this.log.error('configuration rejected', { code: 'HADES_ERR_CONFIG_INVALID', reason: message, ...(problems ? { problems: problems.map((p) => `${p.code} ${p.path}${p.line ? ` (line ${p.line})` : ''}: ${p.message}`) } : {}) });
    this.lastReload = { at: new Date().toISOString(), ok: false, message };
    return { ok: false, message, ...(problems ? { problems } : {}) };
  }

  private async apply(next: AgentConfig): Promise<void> {
    const old = this.config;
    this.config = next;
    let partial: HadesError | undefined;
    this.log.reconfigure(next.log);
    // A server task's log level outlives a reload, unless the reload changed the level itself.
    if (this.levelOverride && old.log.level === next.log.level) this.log.setLevel(this.levelOverride.level);
    else if (this.levelOverride) {
      this.clearLevelOverride();
      this.log.info('log level back to the configuration: the reload changed it', { level: next.log.level });
    }
    // The driver's budget changes in place; other plugins restart below when theirs change.
    const driver = this.supervisor.get('driver');
    if (driver) {
      driver.budget = budgetOf(next.plugins.limits);
      // Its cgroup's ceiling too (twice the budget), which otherwise stays the old one: a raised
      // budget would be cut by the kernel's OOM killer at the old ceiling, before the watchdog.
      if (this.cgroups && this.groups.has('driver') && old.plugins.limits.memory_mb !== next.plugins.limits.memory_mb) {
        try {
          this.groups.set('driver', this.cgroups.group('driver', { memoryBytes: driver.budget.memoryBytes * 2 }));
        } catch (error) {
          this.log.warn('the driver\'s memory ceiling stays as it was', { err: toHadesError(error) });
        }
      }
    }
    // The watchdog's sustain window and health period change in place too.
    this.supervisor.configure({ sustainS: next.limits.sustain_s, healthS: next.plugins.health_s });
    if (!same(old.limits.cgroup, next.limits.cgroup) && this.cgroups) {
      this.log.warn('cgroup settings change at the next start of the agent');
    }
    if (!same(old.agent.heartbeat_s, next.agent.heartbeat_s)) this.scheduleHeartbeat();
    if (!same(old.outputs, next.outputs) || !same(old.spool, next.spool)) await this.replaceOutputs(next);
    const kernelKeys = ['driver', 'process_tree', 'hashing', 'privilege', 'protect'] as const;
    const filtersOnly = (c: AgentConfig) => ({ ...c.driver, deny_executables: [], deny_cgroups: [], allow_cgroups: [] });
    const kernelChanged = kernelKeys.some((k) => !same(old[k], next[k])) || old.limits.cpu_percent !== next.limits.cpu_percent || old.limits.aggregate_ms !== next.limits.aggregate_ms || old.plugins.driver !== next.plugins.driver;
    const onlyFilters = kernelChanged && same(filtersOnly(old), filtersOnly(next)) && kernelKeys.filter((k) => k !== 'driver').every((k) => same(old[k], next[k])) && old.limits.cpu_percent === next.limits.cpu_percent && old.limits.aggregate_ms === next.limits.aggregate_ms && old.plugins.driver === next.plugins.driver;
    if (onlyFilters && this.kernel) {
      await this.kernel.setFilters({ denyExecutables: next.driver.deny_executables, denyCgroups: next.driver.deny_cgroups, allowCgroups: next.driver.allow_cgroups });
    } else if (kernelChanged) {
      // The driver restarts: the time without kernel events is a gap like any other.
      const start = new Date();
      const running = this.kernel !== undefined;
      await this.stopKernel();
      if (next.plugins.driver) {
        await this.startKernel();
        if (running) this.reportGap('driver', { reason: 'restarted for a configuration reload', start, end: new Date(), restarts: 0 });
      }
    }
    if (!same(old.plugins.installed, next.plugins.installed) || !same(old.plugins.limits, next.plugins.limits) || old.plugins.grace_ms !== next.plugins.grace_ms) {
      // What every plugin shares changed: all of them restart.
      await this.stopPlugins();
      const failed = await this.startPlugins();
      if (failed.length > 0) {
        // The rest of the configuration is applied; the reload says which plugins did not start.
        partial = new HadesError(failed[0]!.code, `${failed.length === 1 ? 'a plugin' : `${failed.length} plugins`} not started: ${failed.map((e) => e.message).join('; ')}`);
      }
    } else {
      // Only a built-in plugin whose own settings changed restarts: a new decoy port does not
      // make the inventory collector send its whole snapshot again.
      for (const name of BUILTIN_PLUGINS) {
        if (same(old.plugins[name], next.plugins[name])) continue;
        await this.stopBuiltinPlugin(name);
        await this.startBuiltinPlugin(name);
      }
    }
    if (!same(old.metrics, next.metrics) || this.metricsRetry !== undefined) {
      clearTimeout(this.metricsRetry);
      this.metricsRetry = undefined;
      this.metricsError = undefined;
      await this.metrics?.close();
      this.metrics = undefined;
      try {
        await this.startMetrics();
      } catch (error) {
        // The rest of the reload stands; the endpoint comes back once its address is free.
        partial ??= error instanceof HadesError ? error : new HadesError('HADES_ERR_METRICS_LISTEN', String(error));
        this.metricsError = error instanceof Error ? error.message : String(error);
        this.retryMetrics();
      }
      this.writeRunFile();
    }
    if (partial) throw partial;
  }

  /**
   * New output channels for a reload. A spool folder has one Spool at a time: a new spooled
   * output takes over the spool of the one of its name, which finishes the batch in flight,
   * writes what it holds to the spool and closes it (a handover); only then does the new one
   * open it, and deliver the rest, from the acknowledged position on. Meanwhile the new output
   * holds events in memory. A file has one writer at a time too: the new file output opens
   * its file once the old one has written what it holds and closed it, and holds lines in
   * memory until then. An output the reload removes delivers what it can within drain_s.
   */
  private async replaceOutputs(next: AgentConfig): Promise<void> {
    const closing = new Map<string, Promise<unknown>>();
    let closeStarted!: () => void;
    const started = new Promise<void>((resolve) => (closeStarted = resolve));
    const fresh = this.buildChannels(next, (name) => started.then(() => closing.get(name)));
    const previous = this.pipeline.replaceChannels(fresh);
    const successors = new Set(fresh.filter((c) => c instanceof SpooledChannel).map((c) => c.name));
    const errors: unknown[] = [];
    for (const channel of previous) {
      closing.set(channel.name, channel.close(next.agent.drain_s * 1000, successors.has(channel.name)).catch((error: unknown) => errors.push(error)));
    }
    closeStarted();
    await Promise.all(closing.values());
    for (const channel of fresh) {
      if (channel instanceof SpooledChannel) {
        const error = await channel.ready;
        if (error) errors.push(error);
      }
    }
    // Their drops stay counted: the totals since start do not go back to 0 at a reload.
    try {
      addDrops(this.retiredDrops, this.outputDrops(previous));
    } catch (error) {
      this.log.warn('the drop counters of replaced outputs could not be read', { err: toHadesError(error) });
    }
    if (errors.length > 0) throw errors[0];
  }

  private async stopKernel(): Promise<void> {
    const kernel = this.kernel;
    this.kernel = undefined;
    this.supervisor.remove('driver');
    await kernel?.stop();
  }

  private async stopPlugins(): Promise<void> {
    const plugins = [...this.plugins.values()];
    for (const plugin of plugins) this.retirePlugin(plugin.name);
    const inventory = this.inventory;
    this.plugins.clear();
    this.inventory = undefined;
    for (const plugin of plugins) this.supervisor.remove(plugin.name);
    await Promise.all([...plugins.filter((p) => p !== inventory?.plugin).map((p) => p.stop()), ...(inventory ? [inventory.stop()] : [])]);
  }

  /** Stops everything in order; idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.metricsRetry);
    this.metricsRetry = undefined;
    clearTimeout(this.enrollRetry);
    this.enrollRetry = undefined;
    this.clearLevelOverride();
    this.supervisor.stop();
    await this.reloading?.catch(() => undefined);
    await Promise.allSettled([this.stopKernel(), this.stopPlugins()]);
    // What the sources delivered last is reported before the outputs close.
    this.reportDrops();
    await this.pipeline.close(this.config.agent.drain_s * 1000);
    await this.metrics?.close();
    // What a plugin left behind was killed at its exit; killed processes leave their cgroup
    // within moments, so a folder still busy is tried again for up to a second.
    for (const group of this.groups.values()) {
      for (let attempt = 0; ; attempt++) {
        try {
          group.remove();
          break;
        } catch {
          // cleanup() reports what it could not remove
          if (attempt >= 20) break;
          if (attempt === 0) group.killAll();
          await sleep(50);
        }
      }
    }
    try {
      const left = this.cgroups?.cleanup() ?? [];
      if (left.length > 0) this.log.warn('cgroup folders left behind: processes still in them', { code: 'HADES_ERR_CGROUP', folders: left });
    } catch (error) {
      this.log.warn('cgroup cleanup incomplete', { err: toHadesError(error) });
    }
    const run = runFilePath(this.config.agent.data_dir);
    if (existsSync(run) && runFileOf(this.config.agent.data_dir)?.pid === process.pid) rmSync(run, { force: true });
    this.lock?.release();
    this.lock = undefined;
    this.log.info('agent stopped', { events: this.pipeline.stats().in });
    this.log.close();
  }
}

const ENROLL_RETRY_MIN_MS = 5_000;
const ENROLL_RETRY_MAX_MS = 300_000;

/**
 * The server output of an agent not enrolled yet: every send fails (the spooled channel keeps
 * the events and backs off) until the enrollment that succeeds attaches the real transport.
 */
class LateTransport implements BatchTransport {
  readonly name = 'server';
  closed = false;
  private inner: GrpcTransport | undefined;
  /** The real transport's, once attached (status shows stream counters of a transport over streams). */
  streamStats?: () => StreamStats;

  constructor(public reason: string) {}

  waiting(reason: string): void {
    this.reason = reason;
  }

  attach(transport: GrpcTransport): void {
    if (this.closed) {
      void transport.close();
      return;
    }
    this.inner = transport;
    this.streamStats = () => transport.streamStats();
  }

  async send(batch: EventBatch, signal: AbortSignal): Promise<void> {
    if (this.inner === undefined) throw new HadesError('HADES_ERR_OUTPUT_FAILED', `not enrolled with the server yet (${this.reason}): the events wait in the spool`);
    return this.inner.send(batch, signal);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.inner?.close();
  }

  dropped(): Readonly<Record<string, number>> {
    return this.inner?.dropped() ?? {};
  }
}
