/**
 * "At most once per interval, per key", for what the server logs about one agent (its clock, its
 * refused events). Bounded without forgetting recent keys: a table cleared whole when full would
 * let every key through again at once, so that a fleet larger than the bound (or a server whose
 * own clock is off, which makes every agent look off) would have each line logged at every
 * heartbeat instead of once per interval.
 */
export interface Admitted<S> {
  /** When the key was let through. */
  at: number;
  state: S;
}

export class LogThrottle<S> {
  private readonly last = new Map<string, Admitted<S>>();

  constructor(
    private readonly intervalMs: number,
    private readonly maxKeys = 10_000,
  ) {}

  /** The key's entry when it was let through less than the interval ago (a clock set back since counts as long ago). */
  recent(key: string, now: number): Admitted<S> | undefined {
    const entry = this.last.get(key);
    return entry !== undefined && this.fresh(entry, now) ? entry : undefined;
  }

  /**
   * Lets the key through at `now` with a new state and returns what it held before (null when
   * nothing), or undefined when the table is full of keys let through within the interval: the
   * line is then not logged, which is what the bound is for.
   */
  admit(key: string, now: number, state: S): { previous: Admitted<S> | null } | undefined {
    const previous = this.last.get(key) ?? null;
    if (previous === null && this.last.size >= this.maxKeys) {
      for (const [k, entry] of this.last) if (!this.fresh(entry, now)) this.last.delete(k);
      if (this.last.size >= this.maxKeys) return undefined;
    }
    this.last.set(key, { at: now, state });
    return { previous };
  }

  get size(): number {
    return this.last.size;
  }

  private fresh(entry: Admitted<S>, now: number): boolean {
    return now >= entry.at && now - entry.at < this.intervalMs;
  }
}
