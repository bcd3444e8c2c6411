/**
 * Aggregation of high-rate event kinds (dns_query): the first event of a key in a window goes
 * out at once; repeats within the window are only counted, and when the window ends with
 * repeats, one more event carries their count in `event.count`. Bounded: when too many keys
 * are open, the oldest window is closed early (its count still goes out).
 */
export interface Aggregated<T> {
  readonly last: T;
  readonly count: number;
}

interface Window<T> {
  opened: number;
  last: T;
  count: number;
}

export class RateAggregator<T> {
  private readonly windows = new Map<string, Window<T>>();
  /** Events that went out at once, and repeats counted into a later event. */
  emitted = 0;
  aggregated = 0;

  constructor(
    /** Window length in ms; 0 lets every event through. Adjustable while running. */
    public windowMs: number,
    private readonly maxKeys = 16_384,
  ) {}

  get open(): number {
    return this.windows.size;
  }

  /** True when the event should go out now; false when it was counted into its key's window. */
  offer(key: string, event: T, now: number, closed: Aggregated<T>[]): boolean {
    if (this.windowMs <= 0) {
      this.emitted++;
      return true;
    }
    const window = this.windows.get(key);
    if (window && now - window.opened < this.windowMs) {
      window.count++;
      window.last = event;
      this.aggregated++;
      return false;
    }
    if (window) {
      this.windows.delete(key);
      if (window.count > 0) closed.push({ last: window.last, count: window.count });
    }
    this.windows.set(key, { opened: now, last: event, count: 0 });
    while (this.windows.size > this.maxKeys) {
      const [oldestKey, oldest] = this.windows.entries().next().value as [string, Window<T>];
      this.windows.delete(oldestKey);
      if (oldest.count > 0) closed.push({ last: oldest.last, count: oldest.count });
    }
    this.emitted++;
    return true;
  }

  /** Closes the windows that ended (all of them with `all`), returning those with repeats. */
  sweep(now: number, all = false): Aggregated<T>[] {
    const closed: Aggregated<T>[] = [];
    for (const [key, window] of this.windows) {
      // Insertion order is opening order: the first window still open ends the sweep.
      if (!all && now - window.opened < this.windowMs) break;
      this.windows.delete(key);
      if (window.count > 0) closed.push({ last: window.last, count: window.count });
    }
    return closed;
  }
}

/**
 * Keeps the agent inside its CPU budget: samples its own CPU use every second. It raises the
 * shedding level (each level makes aggregation windows 4 times longer) at once when a second
 * used more than twice the budget, or when the average over the last 10 s is above it; it lowers
 * the level after a calm period (below half the budget), and doubles that period each time a
 * lowering had to be undone within a minute, so that a lasting flood does not make it oscillate.
 */
export class CpuGovernor {
  private readonly samples: number[] = [];
  private last = process.cpuUsage();
  private lastAt = process.hrtime.bigint();
  private calmSeconds = 0;
  private calmNeeded: number;
  private secondsSinceLower = Number.POSITIVE_INFINITY;
  level = 0;
  /** Average CPU over the window, percent of one core. */
  average = 0;

  constructor(
    private readonly budgetPercent: number,
    private readonly maxLevel = 4,
    private readonly windowSeconds = 10,
    private readonly maxCalmSeconds = 600,
  ) {
    this.calmNeeded = windowSeconds;
  }

  /** Forgets what was measured so far (after start-up work). */
  reset(): void {
    this.last = process.cpuUsage();
    this.lastAt = process.hrtime.bigint();
    this.samples.length = 0;
    this.calmSeconds = 0;
  }

  /**
   * Call once a second, saying whether high-rate records (the ones shedding can reduce) came
   * in: CPU spent on exec storms is not a reason to coarsen DNS and connect reporting.
   * Returns true when the level changed.
   */
  tick(sheddable = true): boolean {
    const now = process.hrtime.bigint();
    const usage = process.cpuUsage(this.last);
    this.last = process.cpuUsage();
    const elapsedUs = Number(now - this.lastAt) / 1000;
    this.lastAt = now;
    if (elapsedUs <= 0) return false;
    const sample = ((usage.user + usage.system) / elapsedUs) * 100;
    return this.observe(sample, sheddable);
  }

  /** One second's CPU sample, in percent of one core (tick() measures it; tests give it). */
  observe(sample: number, sheddable = true): boolean {
    this.secondsSinceLower++;
    this.samples.push(sample);
    if (this.samples.length > this.windowSeconds) this.samples.shift();
    this.average = this.samples.reduce((a, b) => a + b, 0) / this.samples.length;
    const before = this.level;
    if (sheddable && (sample > 2 * this.budgetPercent || this.average > this.budgetPercent) && this.level < this.maxLevel) {
      this.level++;
      if (this.secondsSinceLower < 60) this.calmNeeded = Math.min(this.maxCalmSeconds, this.calmNeeded * 2);
      // Judge the new level on fresh samples.
      this.samples.length = 0;
      this.calmSeconds = 0;
    } else if (this.level > 0 && this.average < this.budgetPercent / 2) {
      if (++this.calmSeconds >= this.calmNeeded) {
        this.level--;
        this.calmSeconds = 0;
        this.secondsSinceLower = 0;
      }
    } else {
      this.calmSeconds = 0;
    }
    if (this.level === 0 && this.secondsSinceLower > this.maxCalmSeconds) this.calmNeeded = this.windowSeconds;
    return this.level !== before;
  }

  /** The factor windows are stretched by at the current level. */
  get factor(): number {
    return 4 ** this.level;
  }
}
