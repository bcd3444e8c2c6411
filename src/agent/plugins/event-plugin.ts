/**
 * A plugin that sends events (every plugin but the kernel driver): its manifest is checked and
 * its executable's SHA-256 verified before each start, its configuration is sent after HELLO,
 * and each EVENTS frame is parsed, completed with the agent's common fields, checked against the
 * event schema and rate limited before it enters the pipeline. A frame that is not NDJSON of
 * objects is a protocol error (the plugin is stopped with a coded error and restarted); an
 * object that fails the schema is dropped and counted, with the reason logged.
 */
import { checkEvent, eventActions, type EventAction, type HadesEvent } from '../../common/events/index.js';
import { HadesError } from '../../common/errors.js';
import { PluginFrame, readPluginHealth, type PluginHealthReport } from '../../common/plugins/protocol.js';
import type { Logger } from '../../runtime/log.js';
import type { EventStamp } from '../pipeline/stamp.js';
import { TokenBucket } from '../../runtime/rate-limit.js';
import { checkPluginConfig, verifyExecutable, type LoadedManifest } from './manifest.js';
import { PluginProcess, type PluginGap, type PluginHello } from './plugin-process.js';

const knownActions: ReadonlySet<string> = new Set(eventActions);
/** A plugin's STATS beyond this (JSON) are not kept, only their size. */
const MAX_STATS_BYTES = 4096;
/**
 * Events per second kept over a plugin's rate limit by keepOverLimit, at most: beyond it they are
 * dropped like the rest, so that lines forged to look like kept events (possible where their
 * source records no sender, as syslog files) cannot lift the limit.
 */
export const KEPT_OVER_LIMIT_PER_SECOND = 200;
/** Plugins may not forge the agent's own reports. */
const AGENT_ONLY: ReadonlySet<string> = new Set(['agent_drop', 'agent_gap', 'agent_health']);

export interface EventPluginOptions {
  readonly manifest: LoadedManifest;
  readonly config: Readonly<Record<string, unknown>>;
  readonly stamp: EventStamp;
  readonly log: Logger;
  /** Events per second; 0 is unlimited. */
  readonly eventsPerSecond: number;
  readonly maxOpenFiles: number;
  readonly graceMs: number;
  /** Returns false when the pipeline wants the plugin paused until `resume()`. */
  readonly emit: (event: HadesEvent) => boolean;
  readonly onGap: (gap: PluginGap) => void;
  readonly onSpawn?: (pid: number) => void;
  readonly onFatal?: (error: HadesError) => void;
  /**
   * A built-in plugin: the agent's own code run by the agent's own Node binary, so there is no
   * manifest on disk and no executable hash to check (the node binary is the agent's).
   */
  readonly builtin?: boolean;
  /** Frames other than EVENTS (the inventory collector's QUERY_RESULT). */
  readonly onFrame?: (type: number, payload: Uint8Array) => void;
  /** The process exited or was killed (it is restarted unless stopping). */
  readonly onExit?: (reason: string) => void;
  /** After each exit: kills what the plugin started that left its process group (its cgroup's rest). */
  readonly killLeftovers?: () => void;
  /**
   * Built-in plugins only (the agent decides, never the plugin): events kept when the plugin is
   * over its rate limit, because a flood of other events must not hide them (the log collector's
   * successful logins among a flood of failures). They still count as over the limit for the
   * watchdog's flood check, and at most KEPT_OVER_LIMIT_PER_SECOND of them pass. Only events
   * that an unprivileged user cannot produce at will belong here.
   */
  readonly keepOverLimit?: (event: Readonly<Record<string, unknown>>) => boolean;
}

export interface EventPluginCounters {
  received: number;
  emitted: number;
  invalid: number;
  rateLimited: number;
  /** STATS, ACK and LOG frames that were not JSON objects (ignored). */
  malformed: number;
  /** LOG frames over the plugin's log rate, not written to the agent's log. */
  logSuppressed: number;
}

/** LOG frames a plugin may have written per second, and in a burst: one plugin must not fill the agent's log budget. */
const PLUGIN_LOG_PER_SECOND = 20;
const PLUGIN_LOG_BURST = 200;

/** The n-th of something a plugin keeps doing wrong is logged: the first ten, then one in a thousand (a broken plugin must not flood the log). */
const worthLogging = (n: number): boolean => n <= 10 || n % 1000 === 0;

export class EventPlugin {
  readonly process: PluginProcess;
  readonly counters: EventPluginCounters = { received: 0, emitted: 0, invalid: 0, rateLimited: 0, malformed: 0, logSuppressed: 0 };
  private readonly logBucket = new TokenBucket(PLUGIN_LOG_PER_SECOND, PLUGIN_LOG_BURST);
  /** LOG frames suppressed since the last one written: said with the next one written. */
  private logSuppressedSince = 0;
  private readonly bucket: TokenBucket | undefined;
  private readonly keptBucket: TokenBucket | undefined;
  private readonly decoder = new TextDecoder();
  /** Events over the rate limit in the current second (the supervisor's flood check reads it). */
  overLimitSinceSample = 0;

  constructor(private readonly options: EventPluginOptions) {
    const { manifest } = options;
    checkPluginConfig(manifest, options.config);
    this.bucket = options.eventsPerSecond > 0 ? new TokenBucket(options.eventsPerSecond) : undefined;
    this.keptBucket = this.bucket && options.keepOverLimit ? new TokenBucket(KEPT_OVER_LIMIT_PER_SECOND) : undefined;
    this.process = new PluginProcess(
      {
        name: manifest.name,
        binary: manifest.binary,
        args: manifest.args ?? [],
        graceMs: options.graceMs,
        maxOpenFiles: options.maxOpenFiles,
        protocol: manifest.protocol,
        backoffMaxMs: 60_000,
        // Checked before every start, restarts included: a binary swapped while the plugin ran
        // is never started (checked after the spawn, it ran as root before it was killed).
        ...(options.builtin ? {} : { verify: () => verifyExecutable(manifest) }),
        ...(options.killLeftovers ? { killLeftovers: options.killLeftovers } : {}),
        checkHello: (hello) => (hello['plugin'] !== undefined && hello['plugin'] !== manifest.name ? `HELLO names plugin ${JSON.stringify(hello['plugin'])}, the manifest ${manifest.name}` : undefined),
      },
      {
        onHello: (hello) => this.onHello(hello),
        onFrame: (type, payload) => {
          if (type === PluginFrame.events) this.onEvents(payload);
          else options.onFrame?.(type, payload);
        },
        ...(options.onExit ? { onExit: options.onExit } : {}),
        onLog: (entry) => this.onPluginLog(entry),
        onMalformed: (frame) => {
          this.counters.malformed++;
          if (worthLogging(this.counters.malformed)) {
            this.options.log.warn(`plugin sent a ${frame} frame that is not a JSON object; ignored`, { plugin: this.name, code: 'HADES_ERR_FRAME_MALFORMED', malformed_total: this.counters.malformed });
          }
        },
        onStats: (stats) => this.onStats(stats),
        onGap: options.onGap,
        onSpawn: (pid) => options.onSpawn?.(pid),
        onProtocolError: (error) => options.log.error('plugin broke the protocol; restarting it', { plugin: manifest.name, err: error }),
        onFatal: (error) => options.onFatal?.(error),
      },
    );
  }

  get name(): string {
    return this.options.manifest.name;
  }

  /** The plugin's last STATS frame, as `hades agent status` and the heartbeat show it. */
  lastStats: Readonly<Record<string, unknown>> | undefined;
  /** The process that sent lastStats: its health says nothing of a later one. */
  private statsPid: number | undefined;

  /** Kept small: the heartbeat that carries every plugin's counters has a size limit. */
  private onStats(stats: unknown): void {
    if (!stats || typeof stats !== 'object' || Array.isArray(stats)) return;
    const bytes = JSON.stringify(stats).length;
    this.lastStats = bytes <= MAX_STATS_BYTES ? (stats as Record<string, unknown>) : { too_large: true, bytes };
    this.statsPid = this.process.pid;
  }

  /**
   * What the plugin said of its health in its last STATS frame (docs/plugins.md), while the
   * process that said it runs; undefined when it said nothing, or a restart made it stale.
   */
  health(): PluginHealthReport | undefined {
    if (this.process.state !== 'running' || this.statsPid === undefined || this.statsPid !== this.process.pid) return undefined;
    return readPluginHealth(this.lastStats);
  }

  async start(): Promise<void> {
    try {
      if (!this.options.builtin) verifyExecutable(this.options.manifest);
    } catch (error) {
      this.process.state = 'failed';
      this.process.lastError = (error as HadesError).toLine();
      throw error;
    }
    await this.process.start();
  }

  stop(): Promise<void> {
    return this.process.stop();
  }

  private onHello(hello: PluginHello): void {
    const { manifest, log } = this.options;
    if (hello.version !== undefined && hello.version !== manifest.version) {
      log.warn('plugin reports another version than its manifest', { plugin: manifest.name, hello: hello.version, manifest: manifest.version });
    }
    void this.process
      .command(PluginFrame.config, (id) => new TextEncoder().encode(JSON.stringify({ request_id: id, config: this.options.config })))
      .then((ack) => {
        if (!ack.ok) log.warn('plugin did not accept its configuration', { plugin: manifest.name, code: ack.code, detail: ack.msg });
      });
  }

  private onPluginLog(entry: Readonly<Record<string, unknown>>): void {
    const level = entry['level'] === 'error' || entry['level'] === 'warn' || entry['level'] === 'debug' ? entry['level'] : 'info';
    // Lines below the agent's level cost nothing and take nothing from the plugin's rate.
    if (!this.options.log.enabled(level)) return;
    if (!this.logBucket.tryTake()) {
      this.counters.logSuppressed++;
      this.logSuppressedSince++;
      return;
    }
    const msg = typeof entry['msg'] === 'string' ? entry['msg'].slice(0, 1024) : 'plugin log';
    const suppressed = this.logSuppressedSince;
    this.logSuppressedSince = 0;
    this.options.log.log(level, msg, {
      plugin: this.name,
      ...(typeof entry['code'] === 'string' ? { plugin_code: entry['code'].slice(0, 64) } : {}),
      ...(suppressed > 0 ? { suppressed_before: suppressed } : {}),
    });
  }

  private onEvents(payload: Uint8Array): void {
    const text = this.decoder.decode(payload);
    let paused = false;
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        this.protocolError(`EVENTS frame holds a line that is not JSON: ${JSON.stringify(line.slice(0, 80))}`);
        return;
      }
      if (!value || typeof value !== 'object' || Array.isArray(value)) {
        this.protocolError('EVENTS frame holds a line that is not a JSON object');
        return;
      }
      this.counters.received++;
      if (this.bucket && !this.bucket.tryTake(1)) {
        this.overLimitSinceSample++;
        if (!this.options.keepOverLimit?.(value as Record<string, unknown>) || !this.keptBucket?.tryTake(1)) {
          this.counters.rateLimited++;
          continue;
        }
      }
      const event = this.complete(value as Record<string, unknown>);
      if (!event) continue;
      this.counters.emitted++;
      if (!this.options.emit(event)) paused = true;
    }
    if (paused) this.process.pause();
  }

  /** The pipeline drained: read the plugin's pipe again. */
  resume(): void {
    this.process.resume();
  }

  private complete(body: Record<string, unknown>): HadesEvent | undefined {
    const action = (body['event'] as Record<string, unknown> | undefined)?.['action'];
    // The agent's own reports are not a plugin's to make, but for the agent's built-in collectors'
    // drops (the inventory's runs not compared), which its manifest lists.
    const own = action === 'agent_drop' && this.options.builtin === true && (this.options.manifest.events?.includes(action) ?? false);
    if (typeof action !== 'string' || !knownActions.has(action) || (AGENT_ONLY.has(action) && !own)) {
      this.invalid(`event.action ${JSON.stringify(action)} is not an action plugins may send`);
      return undefined;
    }
    const event = this.options.stamp.complete(action as EventAction, body);
    const result = checkEvent(event);
    if (!result.ok) {
      this.invalid(result.problems.slice(0, 5).map((p) => `${p.path}: ${p.message}`).join('; '));
      return undefined;
    }
    return event;
  }

  private invalid(reason: string): void {
    this.counters.invalid++;
    if (worthLogging(this.counters.invalid)) {
      this.options.log.warn('plugin sent an invalid event; dropped', { plugin: this.name, code: 'HADES_ERR_EVENT_INVALID', reason: reason.slice(0, 512), invalid_total: this.counters.invalid });
    }
  }

  private protocolError(message: string): void {
    const error = new HadesError('HADES_ERR_PLUGIN_PROTOCOL', `${this.name}: ${message}`);
    this.options.log.error('plugin broke the protocol; restarting it', { plugin: this.name, err: error });
    this.process.restart(`protocol error: ${error.code}`, true);
  }
}
