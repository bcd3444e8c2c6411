/**
 * The kernel event source: driver -> decoder -> process tree -> ECS events, in order, with a
 * bounded queue. Under load, high-rate kinds (connect, accept, DNS) are shed undecoded first;
 * when the consumer is still too slow the queue fills, the driver's pipe is paused, the driver
 * blocks and the kernel ring buffer counts what it cannot hold. Memory stays bounded and every
 * loss is counted where it happens, then reported as an `agent_drop` event.
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync, statfsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AgentConfig } from '../common/config/index.js';
import type { EventOf, HadesEvent } from '../common/events/index.js';
import { HadesError } from '../common/errors.js';
import { Accounts } from './accounts.js';
import { EventBuilder, isoFromNs } from './builder.js';
import { ArgsReader } from './args-completion.js';
import { DriverProcess, FilterOp, FilterTarget, FrameType, encodeFilter, type DriverAck, type DriverGap, type DriverHello, type DriverStats } from './driver/driver-process.js';
import { decodeRecords, newDecodeCounters, type DecodeCounters, type DriverRecord } from './driver/records.js';
import type { SecurityRecord } from './driver/security-records.js';
import { CpuGovernor, RateAggregator, type Aggregated } from './aggregator.js';
import { HASH_CACHE_FILES, HashCacheFile } from './hash-cache-file.js';
import { ExecutableHasher } from './hasher.js';
import { KnownPrograms } from './known-programs.js';
import { SecurityEvents } from './security-events.js';
import { SecurityDaemons, type SecurityDaemonStats } from './security-daemons.js';
import { SECURITY_DAEMON_EXECUTABLES, SECURITY_DAEMON_NAMES } from '../common/security-daemons.js';
import { MAX_PER_FOLDER, SENSITIVE_FILES_MAX, SensitiveFiles, secretKey, type SensitiveFile } from './sensitive-files.js';
import type { Sequencer } from './sequencer.js';
import { ProcessTree } from './tree.js';
import { hooksFor } from './kernel-actions.js';
import { DropReporter, type DropCount } from './pipeline/drops.js';

export { KERNEL_ACTIONS, hooksFor, unseenActions } from './kernel-actions.js';

/** Records waiting for the consumer before the driver is paused, and when it is resumed. */
const QUEUE_HIGH = 16_384;
const QUEUE_LOW = 4_096;
/** Above this backlog, high-rate kinds are shed; process records never are. */
const QUEUE_SHED = 2_048;
/** Record kinds that may be shed under overload: connect, accept, dns. */
const SHEDDABLE: ReadonlySet<number> = new Set([4, 5, 7]);
/** Fewer high-rate records than this per second: shedding would not help, whatever the CPU. */
const HIGH_RATE_PER_SECOND = 200;
const DROP_REPORT_MS = 10_000;
const TICK_MS = 1000;
/** After a file event in a folder of a sensitive_files pattern, expand the patterns again this soon. */
const SENSITIVE_RESCAN_DELAY_MS = 1000;
/** Executable versions whose hashes the agent remembers (and keeps in its data folder). */
const HASH_CACHE_SIZE = 4096;
/**
 * Security daemon processes protected at once: the driver's PROTECTED_PID map holds 1,024 pids
 * (HADES_PROTECTED_MAX), a few of them Hades' own.
 */
export const SECURITY_DAEMON_PIDS_MAX = 1000;

/** Folders of the running Hades that must not change under it (tamper protection). */
export function ownPaths(): string[] {
  const root = fileURLToPath(new URL('../../../', import.meta.url));
  return [`${root}bin/`, `${root}dist/src/`, `${root}driver/build/`];
}

export const defaultDriverBinary = (): string =>
  process.env['HADES_DRIVER'] ?? fileURLToPath(new URL('../../../driver/build/hades-driver', import.meta.url));

export interface KernelEventsOptions {
  readonly config: AgentConfig;
  readonly agentVersion: string;
  /**
   * The owner calls tick() once a second (the agent daemon, from the one timer of its own
   * sampling and its plugins': each timer of its own would wake the process once more a second,
   * which costs, idle); otherwise the source keeps a timer of its own.
   */
  readonly externalTick?: boolean;
  /** Receives each event in order; returns false when it wants the source to wait for `drain()`. */
  readonly emit: (event: HadesEvent) => boolean;
  /** Actions wanted; others are not built. All when undefined. */
  readonly actions?: ReadonlySet<string>;
  readonly driverBinary?: string;
  /** Checks the driver's executable before every start, restarts included; returns the path to start. */
  readonly driverVerify?: () => string | void;
  readonly onFatal?: (error: HadesError) => void;
  readonly onLog?: (entry: Readonly<Record<string, unknown>>) => void;
  /** Shared with the agent's other sources (event ids and sequence numbers). */
  readonly sequencer?: Sequencer;
  /** Right after each start of the driver (cgroup placement). */
  readonly onDriverSpawn?: (pid: number) => void;
  /** RLIMIT_NOFILE of the driver. */
  readonly driverMaxOpenFiles?: number;
  /**
   * The agent's data folder: executable hashes are kept there across restarts and shared with
   * the inventory collector (hash-cache-file.ts). Not kept when undefined (`hades events`).
   */
  readonly hashCacheDir?: string;
}

export interface KernelEventStats {
  readonly backend: string | undefined;
  readonly hooks: readonly { name: string; type: string; active: boolean; error: string | null }[];
  readonly kernel: DriverStats['hooks'];
  readonly loader: DriverStats['loader'];
  readonly decoder: DecodeCounters;
  readonly agent: {
    readonly events: number;
    readonly queueHighWater: number;
    readonly driverRestarts: number;
    readonly tree: ProcessTree['stats'];
    readonly hasher: ExecutableHasher['stats'];
    readonly knownPrograms: KnownPrograms['stats'];
    /** Cut arguments completed from /proc/PID/cmdline (args-completion.ts). */
    readonly argsReader: ArgsReader['stats'];
    readonly dns: { readonly emitted: number; readonly aggregated: number; readonly malformed: Readonly<Record<string, number>> };
    /** Audit and security daemons whose signals are reported (absent when tamper events are not wanted). */
    /** `stale`: kill records for a pid no longer protected (it exited and was reused before the driver let it go), dropped (SecurityEvents.staleSignals). */
    readonly securityDaemons?: SecurityDaemonStats & { readonly stale: number; readonly protected: number };
    readonly cpu: { readonly average: number; readonly budget: number; readonly level: number };
  };
}

function hostKey(): string {
  let seed = os.hostname();
  try {
    seed = readFileSync('/etc/machine-id', 'utf8').trim() || seed;
  } catch {
    // no machine id: the host name will do
  }
  return createHash('sha256').update(seed).digest('hex').slice(0, 12);
}

/** In-kernel filters, as the configuration names them. */
export interface KernelFilters {
  readonly denyExecutables: readonly string[];
  readonly denyCgroups: readonly string[];
  readonly allowCgroups: readonly string[];
}

/** statfs magic of the cgroup v2 filesystem (linux/magic.h). */
const CGROUP2_SUPER_MAGIC = 0x63677270;

/**
 * cgroup v2 id of a cgroup folder: the inode number of the folder. Only a folder of a cgroup v2
 * mount has one: a cgroup v1 folder's inode number (often 1) would name the v2 root, and filter
 * every process on the host.
 */
export function cgroupId(folder: string): bigint {
  let type: number;
  let ino: bigint;
  try {
    const st = statSync(folder, { bigint: true });
    if (!st.isDirectory()) throw new HadesError('HADES_ERR_CONFIG_VALUE', `cgroup folder ${folder} is not a folder`);
    ino = st.ino;
    type = Number(statfsSync(folder).type);
  } catch (error) {
    if (error instanceof HadesError) throw error;
    throw new HadesError('HADES_ERR_CONFIG_VALUE', `cgroup folder ${folder} cannot be read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  if (type !== CGROUP2_SUPER_MAGIC) {
    throw new HadesError('HADES_ERR_CONFIG_VALUE', `${folder} is not a cgroup v2 folder (its filesystem is 0x${type.toString(16)}, not cgroup2): only cgroup v2 folders can be filtered`);
  }
  return ino;
}

/** Driver counters that say how things are now, not how many so far: never added up across drivers. */
const GAUGES: ReadonlySet<string> = new Set(['tracked_processes', 'deferred_exits']);

/** Counters of one set added to another's (numbers; anything else, and gauges, from `now`). */
function addCounters(before: Readonly<Record<string, unknown>> | undefined, now: Readonly<Record<string, unknown>> | undefined): Record<string, number> {
  const sum: Record<string, unknown> = { ...before, ...now };
  if (before !== undefined && now !== undefined) {
    for (const [key, value] of Object.entries(now)) {
      const earlier = before[key];
      if (typeof value === 'number' && typeof earlier === 'number' && !GAUGES.has(key)) sum[key] = earlier + value;
    }
  }
  return sum as Record<string, number>;
}

/**
 * The counters of every driver since the agent started: a restarted driver counts from 0, so its
 * own are added to what the drivers before it had reported. (What a killed driver counted after its
 * last STATS frame is gone with it; the restart is reported as an agent_gap.)
 */
export function addDriverStats(before: DriverStats | undefined, now: DriverStats): DriverStats {
  if (before === undefined) return now;
  const hooks: Record<string, Record<string, number>> = {};
  for (const hook of new Set([...Object.keys(before.hooks), ...Object.keys(now.hooks)])) hooks[hook] = addCounters(before.hooks[hook], now.hooks[hook]);
  const loader = before.loader === undefined && now.loader === undefined ? undefined : addCounters(before.loader, now.loader);
  return loader === undefined ? { hooks } : { hooks, loader };
}

/** How long start() waits for the installed shells and interpreters to be hashed. */
const KNOWN_PROGRAMS_WAIT_MS = 5000;

/** Resolves when `work` does or after `ms`, whichever comes first; the timer does not outlive it. */
async function waitAtMost(work: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([work, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** A refusal's code and message, as the driver answered it. */
const refusal = (ack: DriverAck): string => `${ack.code ?? '?'} ${ack.msg ?? ''}`.trim();

const u64Bytes = (value: bigint) => {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, value, true);
  return out;
};

const u32Bytes = (value: number) => {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value, true);
  return out;
};

/**
 * The `hades start` process that started this agent and will stop it, when it is the parent:
 * it says so in HADES_START_PID. Signals to it are tampering (stopping it stops the agent), and
 * its own signals to the agent are marked `by_parent`.
 */
const supervisorPid: number | undefined = process.env['HADES_START_PID'] !== undefined && Number(process.env['HADES_START_PID']) === process.ppid && process.ppid > 1 ? process.ppid : undefined;

export class KernelEvents {
  private readonly tree: ProcessTree;
  private readonly hasher: ExecutableHasher;
  /** Completes cut arguments from /proc/PID/cmdline (rare: an argv over driver.argv_max). */
  private readonly argsReader = new ArgsReader();
  private readonly hashFile: HashCacheFile | undefined;
  /** Installed shells and interpreters by hash: their copies are named on exec events. */
  private readonly knownPrograms: KnownPrograms | undefined;
  private readonly builder: EventBuilder;
  private readonly driver: DriverProcess;
  private readonly decoder = newDecodeCounters();
  private readonly queue: (DriverRecord | SecurityRecord)[] = [];
  private readonly security: SecurityEvents;
  private readonly dnsAggregator: RateAggregator<HadesEvent>;
  private readonly governor: CpuGovernor;
  private readonly allowedRoot: ReadonlySet<string>;
  private readonly protectedPaths: readonly string[];
  private tickTimer: NodeJS.Timeout | undefined;
  /** driver.sensitive_files, when file_open is wanted. */
  private readonly sensitive: SensitiveFiles | undefined;
  private rescanTimer: NodeJS.Timeout | undefined;
  private rescanSoonTimer: NodeJS.Timeout | undefined;
  /** The sensitive files the driver has acknowledged, by key; what a sync changes from. */
  private registered = new Map<string, SensitiveFile>();
  /** Every sync of the sensitive files runs on this chain, one after the other. */
  private secretSync: Promise<void> = Promise.resolve();
  /** A sync is waiting on the chain (another asked meanwhile joins it); with a CLEAR first. */
  private syncQueued = false;
  private syncFresh = false;
  /** The audit and security daemons running, whose pids the driver protects (tamper wanted, eBPF). */
  private readonly daemons: SecurityDaemons | undefined;
  /** The daemon pids the driver acknowledged; what a sync changes from. */
  private protectedDaemons = new Set<number>();
  /** Daemon syncs run one after the other on this chain, like the sensitive files' (syncSecrets). */
  private daemonSync: Promise<void> = Promise.resolve();
  private daemonSyncQueued = false;
  private daemonSyncFresh = false;
  /** The driver's PROTECTED_PID list was given (applyFilters): daemon pids may be sent. */
  private daemonsLive = false;
  private stopping = false;
  /** This process in the tree (seeded from /proc): its start tells it from a later one with its pid. */
  private ownStartTicks: number | undefined;
  /** High-rate records (connect, accept, dns) decoded or shed since the last tick. */
  private highRate = 0;
  private shedSeen = 0;
  private queueHead = 0;
  private pumping = false;
  private waitingForDrain = false;
  private idleWaiters: (() => void)[] = [];
  private statsWaiters: (() => void)[] = [];
  private dropTimer: NodeJS.Timeout | undefined;
  /** Every driver's counters since the agent started (addDriverStats). */
  private lastStats: DriverStats | undefined;
  /** The counters of the drivers before the running one, which counts from 0 again. */
  private earlierStats: DriverStats | undefined;
  private lastHello: DriverHello | undefined;
  /** agent_drop reports from the counters (the kernel's read from the driver's, as old as those). */
  private readonly drops = new DropReporter();
  private lastStatsAt = Date.now();
  private events = 0;
  private queueHighWater = 0;
  private filters: KernelFilters;

  constructor(private readonly options: KernelEventsOptions) {
    const { config } = options;
    this.filters = { denyExecutables: config.driver.deny_executables, denyCgroups: config.driver.deny_cgroups, allowCgroups: config.driver.allow_cgroups };
    this.tree = new ProcessTree(hostKey(), config.process_tree.max_processes);
    this.hasher = new ExecutableHasher({
      enabled: config.hashing.enabled,
      maxFileBytes: config.hashing.max_file_mb * 1024 * 1024,
      maxBytesPerSecond: config.hashing.max_read_mb_per_s * 1024 * 1024,
      cacheSize: HASH_CACHE_SIZE,
      // A new file the size of a known shell or interpreter may be a copy of it: its first exec
      // must carry its hash (known-programs.ts).
      urgent: (size) => this.knownPrograms?.isCandidate(size) === true,
    });
    if (config.hashing.enabled) {
      this.knownPrograms = new KnownPrograms({
        hasher: this.hasher,
        onProblem: (msg, level) => options.onLog?.({ level, code: 'HADES_ERR_KNOWN_PROGRAMS', msg }),
      });
    }
    if (config.hashing.enabled && options.hashCacheDir) {
      this.hashFile = new HashCacheFile({
        file: path.join(options.hashCacheDir, HASH_CACHE_FILES.agent),
        shared: [path.join(options.hashCacheDir, HASH_CACHE_FILES.inventory)],
        cache: this.hasher,
        maxEntries: HASH_CACHE_SIZE,
        onProblem: (msg) => options.onLog?.({ level: 'warn', code: 'HADES_ERR_HASH_CACHE_FILE', msg }),
      });
    }
    this.builder = new EventBuilder(this.tree, new Accounts(), this.hasher, {
      host: { name: os.hostname(), kernel: os.release(), architecture: os.arch() },
      agentVersion: options.agentVersion,
      ancestors: config.process_tree.ancestors,
      ...(options.sequencer ? { sequencer: options.sequencer } : {}),
      ...(this.knownPrograms ? { knownPrograms: this.knownPrograms } : {}),
      argsReader: this.argsReader,
    });
    this.protectedPaths = [...ownPaths(), ...config.protect.paths];
    if (this.wants('file_open') && config.driver.sensitive_files.length > 0) this.sensitive = new SensitiveFiles(config.driver.sensitive_files);
    const sensitive = this.sensitive;
    if (this.wants('tamper')) this.daemons = new SecurityDaemons(SECURITY_DAEMON_NAMES, SECURITY_DAEMON_EXECUTABLES, this.tree, SECURITY_DAEMON_PIDS_MAX, () => void this.syncDaemons(false));
    const daemons = this.daemons;
    const signalTarget = daemons ? (pid: number) => (this.ownPids().includes(pid) ? 'own' : daemons.target(pid)) : undefined;
    this.security = new SecurityEvents(this.builder, {
      protectedPaths: this.protectedPaths,
      watchedPaths: [...config.driver.file_watch, ...config.driver.file_watch_extra, ...this.protectedPaths],
      ...(sensitive ? { sensitiveOf: (dev, ino, opened) => sensitive.lookup(dev, ino, opened) } : {}),
      ...(supervisorPid === undefined ? {} : { supervisorPid }),
      ...(signalTarget ? { signalTarget } : {}),
    });
    this.dnsAggregator = new RateAggregator<HadesEvent>(config.limits.aggregate_ms);
    this.governor = new CpuGovernor(config.limits.cpu_percent);
    this.allowedRoot = new Set(config.privilege.allowed_root_executables);
    const args = [
      '--backend', config.driver.backend,
      '--argv-max', String(config.driver.argv_max),
      '--ringbuf-mb', String(config.driver.ringbuf_mb),
      '--batch-ms', String(config.driver.batch_ms),
      // Hooks nobody asked for are not even attached: they would cost every syscall of the host.
      '--hooks', hooksFor(options.actions).join(','),
    ];
    this.driver = new DriverProcess(
      {
        binary: options.driverBinary ?? defaultDriverBinary(),
        args,
        ...(options.driverMaxOpenFiles ? { maxOpenFiles: options.driverMaxOpenFiles } : {}),
        ...(options.driverVerify ? { verify: options.driverVerify } : {}),
      },
      {
        ...(options.onDriverSpawn ? { onSpawn: options.onDriverSpawn } : {}),
        onHello: (hello) => this.onHello(hello),
        onRecords: (payload) => this.onRecords(payload),
        onStats: (stats) => this.onStats(stats),
        onGap: (gap) => this.onGap(gap),
        onLog: (entry) => options.onLog?.(entry),
        onProtocolError: (error) => options.onLog?.({ level: 'error', code: error.code, msg: error.message }),
        onFatal: (error) => options.onFatal?.(error),
      },
    );
  }

  get hello(): DriverHello | undefined {
    return this.driver.hello;
  }

  get driverPid(): number | undefined {
    return this.driver.pid;
  }

  /** The driver's supervised process (the agent's watchdog samples and restarts it). */
  get driverProcess(): DriverProcess {
    return this.driver;
  }

  /** Events emitted since start. */
  get eventCount(): number {
    return this.events;
  }

  /** Seeds the process tree from /proc, then starts the driver. */
  async start(): Promise<DriverHello> {
    this.tree.seedFromProc();
    this.ownStartTicks = this.tree.get(process.pid)?.startTicks;
    this.hashFile?.load();
    // Read the cgroup folders before starting anything: a bad folder is a config error.
    const deny = this.filters.denyCgroups.map(cgroupId);
    const allow = this.filters.allowCgroups.map(cgroupId);
    // The installed shells' hashes while the driver loads (read once, then from the hash files).
    const known = this.knownPrograms?.start();
    let hello: DriverHello;
    try {
      hello = await this.driver.start();
      // The hooks are attached: what started while they loaded (the agent's own plugins among
      // them, whose reads of sensitive files must be recognised as its own) is read from /proc.
      this.tree.seedFromProc();
      // The daemons running already; the later ones come with their exec and fork records.
      if (hello.backend === 'ebpf') this.daemons?.seed(this.tree.live());
      try {
        await this.applyFilters(true, deny, allow);
      } catch (error) {
        await this.driver.stop();
        throw error;
      }
      // Copies are recognised from the first events on, unless hashing the installed programs
      // for the first time takes long (a low hashing.max_read_mb_per_s): it then goes on.
      if (known) await waitAtMost(known, KNOWN_PROGRAMS_WAIT_MS);
    } catch (error) {
      this.knownPrograms?.close();
      throw error;
    }
    this.dropTimer = setInterval(() => this.reportDrops(), DROP_REPORT_MS);
    if (this.sensitive && hello.backend === 'ebpf') {
      this.rescanTimer = setInterval(() => this.rescanSensitive(), this.options.config.driver.sensitive_files_rescan_s * 1000);
    }
    // Start-up work (seeding the tree, loading the driver) is not load: measure from here.
    this.governor.reset();
    if (!this.options.externalTick) this.tickTimer = setInterval(() => this.tick(), TICK_MS);
    return hello;
  }

  /**
   * Replaces the in-kernel filters without restarting the driver. Rejects with a coded error,
   * leaving the driver's filters unchanged, when a cgroup folder cannot be read; a filter the
   * driver refuses is reported with the driver's reason.
   */
  async setFilters(filters: KernelFilters): Promise<void> {
    const deny = filters.denyCgroups.map(cgroupId);
    const allow = filters.allowCgroups.map(cgroupId);
    this.filters = filters;
    await this.applyFilters(false, deny, allow);
  }

  /** `fresh`: the driver was just started and holds no filters. */
  private async applyFilters(fresh: boolean, deny = this.filters.denyCgroups.map(cgroupId), allow = this.filters.allowCgroups.map(cgroupId)): Promise<void> {
    const enc = new TextEncoder();
    const mode = u32Bytes(allow.length > 0 ? 1 : 0);
    const { driver } = this.options.config;
    const security = this.driver.hello?.backend === 'ebpf';
    const list = (target: number, values: readonly Uint8Array[]): [number, number, Uint8Array][] => [
      [FilterOp.clear, target, new Uint8Array(0)],
      ...values.map((v): [number, number, Uint8Array] => [FilterOp.add, target, v]),
    ];
    // Own processes: signals to them are tampering (the driver excludes their own events itself).
    const ownPids = this.ownPids();
    const securitySteps: [number, number, Uint8Array][] = security
      ? [
          ...list(FilterTarget.filePrefix, [...new Set([...driver.file_watch, ...driver.file_watch_extra, ...this.protectedPaths])].map((p) => enc.encode(p))),
          ...list(FilterTarget.fileQuiet, driver.file_watch_quiet.map((p) => enc.encode(p))),
          ...list(FilterTarget.unixPath, driver.unix_sockets.map((p) => enc.encode(p))),
          ...list(FilterTarget.protectedPid, ownPids.map(u32Bytes)),
          [FilterOp.set, FilterTarget.connectDedupMs, u32Bytes(this.connectDedupMs())],
        ]
      : [];
    const steps: [op: number, target: number, value: Uint8Array][] = [
      ...securitySteps,
      [FilterOp.clear, FilterTarget.exeDeny, new Uint8Array(0)],
      ...this.filters.denyExecutables.map((p): [number, number, Uint8Array] => [FilterOp.add, FilterTarget.exeDeny, enc.encode(p)]),
      [FilterOp.clear, FilterTarget.cgroupDeny, new Uint8Array(0)],
      [FilterOp.clear, FilterTarget.cgroupAllow, new Uint8Array(0)],
      ...deny.map((id): [number, number, Uint8Array] => [FilterOp.add, FilterTarget.cgroupDeny, u64Bytes(id)]),
      ...allow.map((id): [number, number, Uint8Array] => [FilterOp.add, FilterTarget.cgroupAllow, u64Bytes(id)]),
      [FilterOp.set, FilterTarget.cgroupMode, mode],
    ];
    const refused: string[] = [];
    let invalid = false;
    for (const [op, target, value] of steps) {
      const ack = await this.driver.command(FrameType.filter, (id) => encodeFilter(id, op, target, value));
      if (ack.ok) continue;
      // EINVAL and ENOSPC mean the value itself was refused: a configuration problem.
      invalid ||= ack.code === 'EINVAL' || ack.code === 'ENOSPC';
      const textual = target === FilterTarget.exeDeny || target === FilterTarget.filePrefix || target === FilterTarget.fileQuiet || target === FilterTarget.unixPath;
      const shown = textual ? JSON.stringify(new TextDecoder().decode(value)) : `0x${Buffer.from(value).toString('hex')}`;
      refused.push(`${shown}: ${refusal(ack)}`);
    }
    if (refused.length > 0) {
      throw new HadesError(invalid ? 'HADES_ERR_CONFIG_VALUE' : 'HADES_ERR_DRIVER_FAILED', `the driver refused ${refused.length === 1 ? 'a filter' : `${refused.length} filters`}: ${refused.join('; ')}`);
    }
    if (security && this.sensitive) await this.syncSecrets(fresh);
    // The PROTECTED_PID list now holds Hades' own pids only: the daemons' again.
    if (security && this.daemons) {
      this.daemonsLive = true;
      await this.syncDaemons(true);
    }
  }

  /** Hades' own processes: the agent, its driver, and `hades start` when it started the agent. */
  private ownPids(): number[] {
    return [process.pid, ...(this.driver.pid === undefined ? [] : [this.driver.pid]), ...(supervisorPid === undefined ? [] : [supervisorPid])];
  }

  /**
   * Brings the driver's daemon pids (PROTECTED_PID, besides Hades' own) to the daemons running,
   * sending only the difference from what it acknowledged (all of them when `fresh`: the list
   * was just cleared). One sync at a time, on one chain; one asked for meanwhile joins the next.
   * A pid the driver refuses (its map full) is counted and not asked again.
   */
  private syncDaemons(fresh: boolean): Promise<void> {
    const daemons = this.daemons;
    if (!daemons || !this.daemonsLive) return Promise.resolve();
    this.daemonSyncFresh ||= fresh;
    if (this.daemonSyncQueued) return this.daemonSync;
    this.daemonSyncQueued = true;
    const send = (op: number, pid: number): Promise<DriverAck> => this.driver.command(FrameType.filter, (id) => encodeFilter(id, op, FilterTarget.protectedPid, u32Bytes(pid)));
    this.daemonSync = this.daemonSync
      .then(async () => {
        this.daemonSyncQueued = false;
        if (this.daemonSyncFresh) this.protectedDaemons.clear();
        this.daemonSyncFresh = false;
        const wanted = new Set(daemons.pids());
        for (const pid of [...this.protectedDaemons]) {
          if (wanted.has(pid)) continue;
          if (this.stopping) return;
          // Refused only when the driver is gone: the next driver starts without it.
          if ((await send(FilterOp.del, pid)).ok) this.protectedDaemons.delete(pid);
        }
        for (const pid of wanted) {
          if (this.protectedDaemons.has(pid)) continue;
          if (this.stopping) return;
          const ack = await send(FilterOp.add, pid);
          if (ack.ok) this.protectedDaemons.add(pid);
          else if (ack.code === 'E2BIG') daemons.refused(pid);
          else if (this.driver.pid !== undefined) this.options.onLog?.({ level: 'warn', code: 'HADES_ERR_DRIVER_FAILED', msg: `security daemon pid ${pid}: the driver refused to watch its signals: ${refusal(ack)}` });
        }
      })
      .catch((error: unknown) => this.options.onLog?.({ level: 'error', code: 'HADES_ERR_DRIVER_FAILED', msg: `security daemons: ${String(error)}` }));
    return this.daemonSync;
  }

  /**
   * Expands driver.sensitive_files and brings the driver's FILE_SECRET set to what they name,
   * sending only the difference from what it acknowledged (after a CLEAR when `fresh`). Syncs
   * run one at a time on one chain; one asked for while another waits joins it. Refusals are
   * logged, not thrown: one unreadable or refused file must not stop the others.
   */
  private syncSecrets(fresh: boolean): Promise<void> {
    const sensitive = this.sensitive;
    if (!sensitive) return Promise.resolve();
    this.syncFresh ||= fresh;
    if (this.syncQueued) return this.secretSync;
    this.syncQueued = true;
    const log = (msg: string) => this.options.onLog?.({ level: 'warn', code: 'HADES_ERR_DRIVER_FAILED', msg });
    const send = (op: number, value: Uint8Array): Promise<DriverAck> => this.driver.command(FrameType.filter, (id) => encodeFilter(id, op, FilterTarget.fileSecret, value));
    this.secretSync = this.secretSync
      .then(async () => {
        this.syncQueued = false;
        const clear = this.syncFresh;
        this.syncFresh = false;
        const { files, skipped } = await sensitive.resolve();
        if (clear) {
          const ack = await send(FilterOp.clear, new Uint8Array(0));
          if (!ack.ok) return log(`sensitive files: the driver refused to clear them: ${refusal(ack)}`);
          this.registered.clear();
        }
        for (const [key, file] of [...this.registered]) {
          if (files.has(key)) continue;
          if (this.stopping) return;
          const ack = await send(FilterOp.del, secretKey(file));
          if (ack.ok) this.registered.delete(key);
          else log(`sensitive file ${file.path}: the driver refused to drop it: ${refusal(ack)}`);
        }
        for (const [key, file] of files) {
          if (this.registered.has(key)) continue;
          if (this.stopping) return;
          const ack = await send(FilterOp.add, secretKey(file));
          if (ack.ok) this.registered.set(key, file);
          else log(`sensitive file ${file.path}: the driver refused it: ${refusal(ack)}`);
        }
        if (skipped > 0) this.options.onLog?.({ level: 'warn', code: 'HADES_ERR_CONFIG_VALUE', msg: `driver.sensitive_files names more files than are watched (${MAX_PER_FOLDER} per folder, ${SENSITIVE_FILES_MAX} in all): ${skipped} left out` });
      })
      .catch((error: unknown) => this.options.onLog?.({ level: 'error', code: 'HADES_ERR_DRIVER_FAILED', msg: `sensitive files: ${String(error)}` }));
    return this.secretSync;
  }

  /** Expands driver.sensitive_files again (periodically, and after file events in their folders). */
  private rescanSensitive(): void {
    // Not before start has registered the first set, nor after stop.
    if (!this.sensitive || this.stopping || !this.dropTimer || this.driver.hello?.backend !== 'ebpf') return;
    void this.syncSecrets(false);
  }

  /** A file event in a folder of a sensitive_files pattern: expand again shortly. */
  private sensitiveFolderChanged(record: SecurityRecord): void {
    if (!this.sensitive || this.rescanSoonTimer || !this.dropTimer) return;
    if (record.type !== 'file_create' && record.type !== 'file_rename' && record.type !== 'file_delete') return;
    if (record.result < 0 || !(this.sensitive.concerns(record.path) || (record.type === 'file_rename' && this.sensitive.concerns(record.path2)))) return;
    this.rescanSoonTimer = setTimeout(() => {
      this.rescanSoonTimer = undefined;
      this.rescanSensitive();
    }, SENSITIVE_RESCAN_DELAY_MS);
  }

  /** The consumer can take more events again. */
  drain(): void {
    if (!this.waitingForDrain) return;
    this.waitingForDrain = false;
    void this.pump();
  }

  /**
   * Stops cleanly: asks the driver for its final counters (which arrive after every record it
   * sent before), stops it, and delivers every record already received.
   */
  async stop(): Promise<void> {
    clearInterval(this.dropTimer);
    this.dropTimer = undefined;
    clearInterval(this.tickTimer);
    this.tickTimer = undefined;
    this.stopping = true;
    clearInterval(this.rescanTimer);
    this.rescanTimer = undefined;
    clearTimeout(this.rescanSoonTimer);
    this.rescanSoonTimer = undefined;
    if (this.driver.pid !== undefined) {
      const stats = new Promise<void>((resolve) => this.statsWaiters.push(resolve));
      this.driver.requestStats();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([stats, new Promise<void>((resolve) => (timer = setTimeout(resolve, 1000)))]);
      clearTimeout(timer);
    }
    await this.driver.stop();
    // Commands still waiting were answered when the driver stopped; a sync ends at its next step.
    await this.secretSync;
    await this.daemonSync;
    this.knownPrograms?.close();
    this.hasher.close();
    this.hashFile?.close();
    this.driver.resume();
    await this.idle();
    for (const closed of this.dnsAggregator.sweep(Date.now(), true)) this.deliverSummary(closed);
    this.reportDrops();
  }

  stats(): KernelEventStats {
    return {
      // The driver's hello as last seen, which outlives its stop (hades events --stats).
      backend: this.lastHello?.backend,
      hooks: this.lastHello?.hooks ?? [],
      kernel: this.lastStats?.hooks ?? {},
      loader: this.lastStats?.loader,
      decoder: { ...this.decoder },
      agent: {
        events: this.events,
        queueHighWater: this.queueHighWater,
        driverRestarts: this.driver.restarts,
        tree: { ...this.tree.stats },
        hasher: { ...this.hasher.stats },
        knownPrograms: { ...(this.knownPrograms?.stats ?? { refreshes: 0, hashed: 0, versions: 0 }) },
        argsReader: { ...this.argsReader.stats },
        dns: { emitted: this.dnsAggregator.emitted, aggregated: this.dnsAggregator.aggregated, malformed: Object.fromEntries(this.security.malformedDns) },
        ...(this.daemons ? { securityDaemons: { ...this.daemons.stats, stale: this.security.staleSignals, protected: this.protectedDaemons.size } } : {}),
        cpu: { average: this.governor.average, budget: this.options.config.limits.cpu_percent, level: this.governor.level },
      },
    };
  }

  private idle(): Promise<void> {
    if (!this.pumping && this.queue.length - this.queueHead === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private onHello(hello: DriverHello): void {
    this.lastHello = hello;
    this.builder.bootTimeNs = hello.boot_time_ns;
    this.builder.backend = hello.backend;
    if (this.driver.restarts > 0) {
      // A restarted driver counts from 0: what the drivers before it counted is kept apart.
      this.earlierStats = this.lastStats;
      // It starts without filters: give them again.
      this.daemonsLive = false;
      this.applyFilters(true).catch((error: unknown) => this.options.onLog?.({ level: 'error', code: 'HADES_ERR_DRIVER_FAILED', msg: String(error) }));
    }
  }

  private onRecords(payload: Uint8Array): void {
    const before = this.queue.length;
    // Over the CPU budget or backlogged, high-rate kinds are skipped undecoded (and counted)
    // rather than pausing the pipe: that keeps the driver writing, and reading our commands.
    const overloaded = this.governor.level > 0 || this.queue.length - this.queueHead > QUEUE_SHED;
    decodeRecords(payload, this.decoder, this.queue, overloaded ? SHEDDABLE : undefined);
    const depth = this.queue.length - this.queueHead;
    if (depth > this.queueHighWater) this.queueHighWater = depth;
    if (depth > QUEUE_HIGH) this.driver.pause();
    if (this.queue.length > before) void this.pump();
  }

  private onStats(stats: DriverStats): void {
    this.lastStats = addDriverStats(this.earlierStats, stats);
    this.lastStatsAt = Date.now();
    const waiters = this.statsWaiters;
    this.statsWaiters = [];
    for (const w of waiters) w();
  }

  private onGap(gap: DriverGap): void {
    // In the agent's log as a plugin's restart is: the event alone reaches only the outputs.
    this.options.onLog?.({ level: 'warn', code: 'HADES_ERR_DRIVER_FAILED', msg: `driver restarted: not running from ${gap.start.toISOString()} to ${gap.end.toISOString()}: ${gap.reason} (${gap.restarts} restarts)` });
    const event = {
      ...this.builder.common('agent_gap', 'event', ['host'], ['info'], 0),
      '@timestamp': gap.end.toISOString(),
      hades: { backend: 'agent', gap: { component: 'driver', reason: gap.reason, start: gap.start.toISOString(), end: gap.end.toISOString(), restarts: gap.restarts } },
    } as unknown as EventOf<'agent_gap'>;
    this.deliver(event);
  }

  /** Delivers an event; agent_drop and agent_gap always go out, whatever actions were asked for. */
  private deliver(event: HadesEvent): void {
    this.events++;
    if (!this.options.emit(event)) this.waitingForDrain = true;
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queueHead < this.queue.length && !this.waitingForDrain) {
        const record = this.queue[this.queueHead++] as DriverRecord | SecurityRecord;
        if (this.queueHead > 4096 && this.queueHead * 2 > this.queue.length) {
          this.queue.splice(0, this.queueHead);
          this.queueHead = 0;
        }
        if (this.queue.length - this.queueHead < QUEUE_LOW) this.driver.resume();
        if (record.type === 'exec' || record.type === 'fork' || record.type === 'exit') {
          this.daemons?.observe(record);
          // Synchronous unless a hash is being computed: no microtask per record in a storm.
          const pending = this.process(record);
          if (pending) await pending;
        } else {
          this.secure(record);
        }
      }
    } finally {
      this.pumping = false;
    }
    if (this.queueHead >= this.queue.length) {
      this.queue.length = 0;
      this.queueHead = 0;
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  private wants(action: string): boolean {
    return this.options.actions === undefined || this.options.actions.has(action);
  }

  /** exec, fork, exit: records of unwanted kinds still keep the process tree current. */
  private process(record: DriverRecord): Promise<void> | undefined {
    const escalation = record.type === 'exec' && this.wants('privilege_change');
    if (!this.wants(record.type) && !escalation) {
      this.builder.track(record);
      return undefined;
    }
    const before = record.type === 'exec' ? this.tree.credsOf(record.pid, record.startNs) : undefined;
    const finish = (event: HadesEvent) => {
      if (this.wants(record.type)) this.deliver(event);
      if (escalation && record.type === 'exec') {
        const change = this.builder.escalation(record, before, event, this.allowedRoot);
        if (change) this.deliver(change);
      }
    };
    const built = this.builder.build(record);
    if (built instanceof Promise) return built.then(finish);
    finish(built);
    return undefined;
  }

  private secure(record: SecurityRecord): void {
    if (record.type === 'connect' || record.type === 'accept' || record.type === 'dns') this.highRate++;
    if (record.type === 'privilege_change' && record.result >= 0) {
      const [uid = 0, gid = 0, euid = 0, egid = 0] = record.newIds;
      this.tree.setCreds(record.pid, record.startNs, { uid, gid, euid, egid });
    }
    if (this.sensitive) this.sensitiveFolderChanged(record);
    // Hades' own work: the inventory collector reads /etc/shadow for the users table. The agent
    // itself is excluded in the kernel; its plugins (its descendants) are excluded here.
    if (record.type === 'file_open' && this.isOwnDescendant(record.pid)) return;
    const now = Date.now();
    const closed: Aggregated<HadesEvent>[] = [];
    for (const event of this.security.build(record)) {
      if (!this.wants(event.event.action)) continue;
      if (event.event.action === 'dns_query') {
        if (!this.dnsAggregator.offer(dnsRepeatKey(record.pid, event), event, now, closed)) continue;
      }
      this.deliver(event);
    }
    for (const c of closed) this.deliverSummary(c);
  }

  private isOwnDescendant(pid: number): boolean {
    return this.tree.ancestors(pid, 64).some((node) => node.pid === process.pid && node.startTicks === this.ownStartTicks && !node.exited);
  }

  private deliverSummary(closed: Aggregated<HadesEvent>): void {
    this.deliver(this.builder.summary(closed.last, closed.count, Date.now()));
  }

  /**
   * The connect/accept dedup window for the current CPU level. Over budget, deduplication is
   * imposed even where the configuration turned it off (from 250 ms, times 4 per level).
   */
  private connectDedupMs(): number {
    const configured = this.options.config.driver.connect_dedup_ms;
    if (this.governor.level === 0) return configured;
    return Math.min(3_600_000, Math.max(configured, 250) * this.governor.factor);
  }

  /** Once a second, once started: the CPU budget, and aggregation windows that ended. */
  tick(): void {
    if (this.stopping) return;
    const sheddable = this.highRate + (this.decoder.shed - this.shedSeen) > HIGH_RATE_PER_SECOND;
    this.highRate = 0;
    this.shedSeen = this.decoder.shed;
    if (this.governor.tick(sheddable)) {
      const { config } = this.options;
      this.dnsAggregator.windowMs = this.governor.level === 0 ? config.limits.aggregate_ms : Math.max(config.limits.aggregate_ms, 250) * this.governor.factor;
      this.options.onLog?.({ level: 'warn', code: 'cpu_budget', msg: `CPU ${this.governor.average.toFixed(1)}% against a budget of ${config.limits.cpu_percent}%: aggregation level ${this.governor.level}` });
      const ms = new Uint8Array(4);
      new DataView(ms.buffer).setUint32(0, this.connectDedupMs(), true);
      void this.driver.command(FrameType.filter, (id) => encodeFilter(id, FilterOp.set, FilterTarget.connectDedupMs, ms));
    }
    for (const closed of this.dnsAggregator.sweep(Date.now())) this.deliverSummary(closed);
    this.daemons?.sweep();
    this.hashFile?.saveSoon();
  }

  /** Emits one agent_drop event per place and reason whose count grew since the last report. */
  private reportDrops(): void {
    const now = new Date();
    const statsAt = new Date(this.lastStatsAt);
    const counts: DropCount[] = [];
    const kernel = (hook: string, reason: string, total: number) => counts.push({ component: 'kernel', hook, reason, total, asOf: statsAt });
    const agent = (hook: string, reason: string, total: number) => counts.push({ component: 'agent', hook, reason, total });
    for (const [hook, c] of Object.entries(this.lastStats?.hooks ?? {})) {
      for (const reason of ['dropped_ringbuf_full', 'dropped_state_full', 'dropped_rate_limit']) kernel(hook, reason.replace(/^dropped_/, ''), c[reason] ?? 0);
      // file_open: fresh temporary files forgotten for newer ones (their later opens are not seen)
      kernel(hook, 'evicted', c['evicted'] ?? 0);
      // Deduplicated in the kernel and counted: a connect's carried by a later event's
      // event.count; file_open's, a fresh temporary file read again by the same process.
      kernel(hook, 'aggregated', c['suppressed'] ?? 0);
    }
    const loader = this.lastStats?.loader ?? {};
    for (const [key, value] of Object.entries(loader)) if (key.startsWith('lost')) kernel('cn_proc', key, value);
    for (const reason of ['truncated', 'badSize', 'badVersion', 'unknownKind'] as const) agent('decoder', reason, this.decoder[reason]);
    agent('connect,accept,dns', 'shed', this.decoder.shed);
    agent('dns_query', 'aggregated', this.dnsAggregator.aggregated);
    // Security daemons beyond what the driver holds: signals to them are not seen.
    if (this.daemons) agent('kill', 'daemon_not_protected', this.daemons.stats.notProtected);
    for (const drop of this.drops.diff(counts, now)) {
      const event = {
        ...this.builder.common('agent_drop', 'metric', ['host'], ['info'], 0),
        '@timestamp': isoFromNs(now.getTime() * 1e6),
        hades: { backend: 'agent', drops: drop },
      } as unknown as EventOf<'agent_drop'>;
      this.deliver(event);
    }
  }
}

/**
 * What makes two dns_query events repeats of each other (counted into one within aggregate_ms):
 * the process, the question, and the resolver and answer too, so the same name asked of another
 * resolver (one an attacker runs) or answered otherwise (rebinding) is an event of its own. The
 * addresses as a set: a round-robin resolver rotates their order at every answer.
 */
export function dnsRepeatKey(pid: number, event: HadesEvent): string {
  const e = event as unknown as { destination?: { ip?: string; port?: number }; dns?: { type?: string; question?: { name?: string; type?: string }; response_code?: string; resolved_ip?: string[] }; hades?: { dns?: { malformed?: string } } };
  return `${pid}|${e.dns?.type ?? ''}|${e.dns?.question?.name ?? ''}|${e.dns?.question?.type ?? ''}|${e.hades?.dns?.malformed ?? ''}|${e.destination?.ip ?? ''}|${e.destination?.port ?? ''}|${e.dns?.response_code ?? ''}|${e.dns?.resolved_ip ? [...e.dns.resolved_ip].sort().join(',') : ''}`;
}
