/**
 * The watchdog over plugins: once a second it samples each plugin's CPU, memory and open files
 * (from its cgroup where it has one, from /proc otherwise) and its event rate, checks them
 * against the plugin's budget, and restarts a plugin that stays over budget for `sustainS`
 * seconds or stops answering (silent for three health periods, and for two after being asked
 * for its counters; not restarted on a round that comes late, by half a round or more, because
 * the agent itself was held up, unless rounds have come late for a while). Restarts are
 * reported by the plugin's gap event, whose reason says why.
 */
import type { CgroupGroup } from '../cgroup.js';
import type { PluginHealthReport } from '../../common/plugins/protocol.js';
import type { Logger } from '../../runtime/log.js';
import type { PluginProcess, PluginState } from './plugin-process.js';
import { CpuMeter, treeUsage } from './usage.js';

export interface PluginBudget {
  readonly cpuPercent: number;
  readonly memoryBytes: number;
  readonly maxOpenFiles: number;
  /** Events per second; 0 is unlimited. */
  readonly eventsPerSecond: number;
}

export interface Supervised {
  readonly name: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly process: PluginProcess<any, any>;
  budget: PluginBudget;
  readonly group?: CgroupGroup | undefined;
  /** Events the plugin produced since start (for rates). */
  eventsIn(): number;
  /** Events over the plugin's rate limit since the previous call (flood detection). */
  takeOverLimit(): number;
  /** Drops by reason since start. */
  dropped(): Readonly<Record<string, number>>;
  /** The plugin's own counters, from its last STATS frame. */
  stats?(): Readonly<Record<string, unknown>> | undefined;
  /** What the running plugin last said of its health (STATS `health`), if anything. */
  health?(): PluginHealthReport | undefined;
}

export interface PluginStatus {
  readonly name: string;
  readonly version?: string;
  readonly state: PluginState;
  readonly pid?: number;
  readonly restarts: number;
  readonly cpuPercent?: number;
  readonly memoryRssBytes?: number;
  readonly openFds?: number;
  /** The plugin's own counters, from its last STATS frame (the log collector's lines read, untrusted entries, ...). */
  readonly stats?: Readonly<Record<string, unknown>>;
  /**
   * What a running plugin says of its own health, when it says anything (docs/plugins.md):
   * `degraded` while its process runs but does not do all it was configured to do (a honeypot
   * whose decoys could not open watches nothing). `state` stays the supervisor's.
   */
  readonly health?: 'ok' | 'degraded';
  /** The plugin's words on its health: `0 of 2 decoys listening; not listening: tcp/22 (in_use), ...`. */
  readonly healthDetail?: string;
  readonly eventsIn: number;
  readonly eventsPerSecond: number;
  readonly dropped: Readonly<Record<string, number>>;
  readonly budget: PluginBudget;
  readonly lastError?: string;
  readonly overBudgetRestarts: number;
  readonly unresponsiveRestarts: number;
}

interface Watch {
  readonly plugin: Supervised;
  readonly meter: CpuMeter;
  /** CPU percent per second over the sustain window. */
  cpuWindow: number[];
  memoryOverSince?: number;
  floodSince?: number;
  lastPid?: number;
  lastEvents: number;
  eventsPerSecond: number;
  cpuPercent?: number;
  rssBytes?: number;
  openFds?: number;
  askedAt?: number;
  overBudgetRestarts: number;
  unresponsiveRestarts: number;
}

export interface SupervisorOptions {
  readonly log: Logger;
  readonly sustainS: number;
  readonly healthS: number;
  readonly sampleMs?: number;
  readonly now?: () => number;
}

const MB = 1024 * 1024;
/** Late rounds in a row after which plugins are judged anyway (the agent is late on every one). */
const MAX_LATE_ROUNDS = 5;

export class Supervisor {
  private readonly watches = new Map<string, Watch>();
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private lastSampleAt: number | undefined;
  private lateRounds = 0;
  /** limits.sustain_s and plugins.health_s as they are now: a reload changes them (configure). */
  private sustainS: number;
  private healthS: number;

  constructor(private readonly options: SupervisorOptions) {
    this.now = options.now ?? Date.now;
    this.sustainS = options.sustainS;
    this.healthS = options.healthS;
  }

  /** A reload's sustain window and health period, from the next round on. */
  configure(settings: { readonly sustainS: number; readonly healthS: number }): void {
    this.sustainS = settings.sustainS;
    this.healthS = settings.healthS;
  }

  add(plugin: Supervised): void {
    this.watches.set(plugin.name, { plugin, meter: new CpuMeter(), cpuWindow: [], lastEvents: plugin.eventsIn(), eventsPerSecond: 0, overBudgetRestarts: 0, unresponsiveRestarts: 0 });
  }

  remove(name: string): void {
    this.watches.delete(name);
  }

  get(name: string): Supervised | undefined {
    return this.watches.get(name)?.plugin;
  }

  names(): string[] {
    return [...this.watches.keys()];
  }

  start(): void {
    this.timer ??= setInterval(() => this.sample(), this.options.sampleMs ?? 1000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One round of sampling and budget checks (public for tests). */
  sample(): void {
    const seconds = (this.options.sampleMs ?? 1000) / 1000;
    const now = this.now();
    // The agent itself was held up (a long synchronous task, the whole process stopped, a paused
    // VM): what the plugins wrote meanwhile is still unread in their pipes, so their silence says
    // nothing about them. No restart on such a round (a silent plugin is still asked; an answer
    // read after it clears the ask). An agent late on every round still judges after
    // MAX_LATE_ROUNDS of them, so a hung plugin is restarted even then.
    const late = this.lastSampleAt !== undefined && now - this.lastSampleAt > seconds * 1500;
    this.lastSampleAt = now;
    this.lateRounds = late ? this.lateRounds + 1 : 0;
    const judge = !late || this.lateRounds > MAX_LATE_ROUNDS;
    for (const watch of this.watches.values()) {
      const { plugin } = watch;
      const events = plugin.eventsIn();
      watch.eventsPerSecond = Math.max(0, events - watch.lastEvents) / seconds;
      watch.lastEvents = events;
      const pid = plugin.process.pid;
      if (plugin.process.state !== 'running' || pid === undefined) {
        this.forget(watch);
        continue;
      }
      if (pid !== watch.lastPid) {
        // A new process: its counters start over.
        this.forget(watch);
        watch.lastPid = pid;
      }
      this.measure(watch, pid);
      this.checkBudget(watch);
      this.checkLiveness(watch, now, judge);
    }
  }

  private forget(watch: Watch): void {
    watch.meter.reset();
    watch.cpuWindow = [];
    delete watch.memoryOverSince;
    delete watch.floodSince;
    delete watch.askedAt;
    delete watch.lastPid;
    delete watch.cpuPercent;
    delete watch.rssBytes;
    delete watch.openFds;
    watch.plugin.takeOverLimit();
  }

  private measure(watch: Watch, pid: number): void {
    const usage = treeUsage(pid);
    let cpuUsec = usage?.cpuUsec;
    let rss = usage?.rssBytes;
    const group = watch.plugin.group;
    if (group) {
      try {
        const g = group.usage();
        cpuUsec = g.cpuUsageUsec;
        rss = usage ? usage.rssBytes : g.memoryBytes;
      } catch {
        // the cgroup went away: /proc will do
      }
    }
    if (cpuUsec !== undefined) {
      const percent = watch.meter.sample(cpuUsec);
      if (percent !== undefined) {
        watch.cpuPercent = percent;
        watch.cpuWindow.push(percent);
        const keep = Math.max(1, Math.round(this.sustainS / ((this.options.sampleMs ?? 1000) / 1000)));
        // (A reload may have shortened the window by more than one sample.)
        if (watch.cpuWindow.length > keep) watch.cpuWindow.splice(0, watch.cpuWindow.length - keep);
      }
    }
    if (rss !== undefined) watch.rssBytes = rss;
    if (usage) watch.openFds = usage.openFds;
  }

  private checkBudget(watch: Watch): void {
    const { plugin } = watch;
    const { budget } = plugin;
    const now = this.now();
    const sustainMs = this.sustainS * 1000;
    let reason: string | undefined;
    // The hard ceiling: where the plugin has a cgroup, the kernel holds it at twice its budget.
    // Without one nothing would, and a plugin (one SQLite step of the collector can take hundreds
    // of MB a second, and cannot be interrupted) could take the host's memory for the whole
    // sustain window: it is killed at once instead, as the kernel would.
    if (!plugin.group && watch.rssBytes !== undefined && watch.rssBytes > 2 * budget.memoryBytes) {
      reason = `over its memory ceiling: ${(watch.rssBytes / MB).toFixed(0)} MB > twice its budget of ${(budget.memoryBytes / MB).toFixed(0)} MB (no cgroup holds it)`;
      watch.overBudgetRestarts++;
      this.options.log.error('plugin over its memory ceiling; killing it', { plugin: plugin.name, code: 'HADES_ERR_PLUGIN_OVER_BUDGET', reason });
      plugin.process.restart(reason, true);
      this.forget(watch);
      return;
    }
    if (watch.rssBytes !== undefined && watch.rssBytes > budget.memoryBytes) {
      watch.memoryOverSince ??= now;
      if (now - watch.memoryOverSince >= sustainMs) {
        reason = `over its memory budget: ${(watch.rssBytes / MB).toFixed(0)} MB > ${(budget.memoryBytes / MB).toFixed(0)} MB for ${this.sustainS} s`;
      }
    } else {
      delete watch.memoryOverSince;
    }
    const keep = Math.max(1, Math.round(this.sustainS / ((this.options.sampleMs ?? 1000) / 1000)));
    if (!reason && watch.cpuWindow.length >= keep) {
      const average = watch.cpuWindow.reduce((a, b) => a + b, 0) / watch.cpuWindow.length;
      if (average > budget.cpuPercent) reason = `over its CPU budget: ${average.toFixed(1)}% > ${budget.cpuPercent}% of a core over ${this.sustainS} s`;
    }
    const over = plugin.takeOverLimit();
    if (over > 0) {
      watch.floodSince ??= now;
      if (!reason && now - watch.floodSince >= sustainMs) {
        reason = `flooding: over ${budget.eventsPerSecond} events/s for ${this.sustainS} s`;
      }
    } else {
      delete watch.floodSince;
    }
    if (!reason) return;
    watch.overBudgetRestarts++;
    this.options.log.error('plugin over budget; restarting it', { plugin: plugin.name, code: 'HADES_ERR_PLUGIN_OVER_BUDGET', reason });
    plugin.process.restart(reason);
    this.forget(watch);
  }

  private checkLiveness(watch: Watch, now: number, judge: boolean): void {
    const { process } = watch.plugin;
    // Held back by the agent's own back-pressure, a plugin cannot be heard: not silence of its own.
    if (process.readPaused) {
      delete watch.askedAt;
      return;
    }
    const silentMs = now - process.lastFrameAt;
    const healthMs = this.healthS * 1000;
    // Answered since it was asked (or spoke on its own): asked afresh when silent again.
    if (silentMs < healthMs || (watch.askedAt !== undefined && process.lastFrameAt >= watch.askedAt)) delete watch.askedAt;
    if (silentMs < healthMs) return;
    if (watch.askedAt === undefined) {
      watch.askedAt = now;
      process.requestStats();
      return;
    }
    // Unresponsive: silent for three health periods, and still nothing two periods after being
    // asked (a live plugin answers a STATS request at once).
    if (judge && silentMs >= 3 * healthMs && now - watch.askedAt >= 2 * healthMs) {
      watch.unresponsiveRestarts++;
      const reason = `unresponsive: no frame for ${Math.round(silentMs / 1000)} s`;
      this.options.log.error('plugin stopped answering; restarting it', { plugin: watch.plugin.name, code: 'HADES_ERR_PLUGIN_UNRESPONSIVE', reason });
      process.restart(reason, true);
      this.forget(watch);
    }
  }

  status(): PluginStatus[] {
    return [...this.watches.values()].map((watch) => {
      const { plugin } = watch;
      const { process } = plugin;
      const version: unknown = (process.hello as { version?: unknown } | undefined)?.version;
      const stats = plugin.stats?.();
      const health = process.state === 'running' ? plugin.health?.() : undefined;
      return {
        name: plugin.name,
        ...(typeof version === 'string' ? { version } : {}),
        state: process.state,
        ...(process.pid !== undefined ? { pid: process.pid } : {}),
        restarts: process.restarts,
        ...(watch.cpuPercent !== undefined ? { cpuPercent: watch.cpuPercent } : {}),
        ...(watch.rssBytes !== undefined ? { memoryRssBytes: watch.rssBytes } : {}),
        ...(watch.openFds !== undefined ? { openFds: watch.openFds } : {}),
        eventsIn: plugin.eventsIn(),
        eventsPerSecond: watch.eventsPerSecond,
        dropped: plugin.dropped(),
        ...(stats ? { stats } : {}),
        ...(health ? { health: health.status, ...(health.detail !== undefined ? { healthDetail: health.detail } : {}) } : {}),
        budget: plugin.budget,
        ...(process.lastError ? { lastError: process.lastError } : {}),
        overBudgetRestarts: watch.overBudgetRestarts,
        unresponsiveRestarts: watch.unresponsiveRestarts,
      };
    });
  }
}
