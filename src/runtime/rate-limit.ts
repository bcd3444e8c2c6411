/**
 * A token bucket for rates the agent keeps to: events and bytes per second towards outputs, and
 * bytes per second written to disk (logs, spool). It holds no timer: tokens are refilled lazily
 * from the clock on each call, so an idle bucket costs nothing and nothing needs closing.
 *
 * A rate of 0 or Infinity means unlimited, as in the configuration. An amount larger than the
 * burst is granted when the bucket is full and leaves it in debt, so a single large item is never
 * refused forever and the average rate still holds.
 */
import { HadesError } from '../common/errors.js';

/** What a caller of a rate limit needs; `unlimited` and TokenBucket both provide it. */
export interface RateLimit {
  /** Takes `amount` tokens (default 1) if they are available; false leaves the bucket as it was. */
  tryTake(amount?: number): boolean;
  /**
   * Takes `amount` tokens and returns 0 when they are available; otherwise takes nothing and
   * returns the milliseconds after which they will be, for callers that delay instead of drop.
   */
  take(amount?: number): number;
  /** Tokens available now (negative while in debt; Infinity when unlimited). */
  available(): number;
}

export class TokenBucket implements RateLimit {
  private rate = 0;
  private burst = 0;
  private tokens = 0;
  private last: number;

  constructor(
    ratePerSecond: number,
    burst?: number,
    /** Milliseconds from a monotonic clock; injectable for tests. */
    private readonly now: () => number = () => performance.now(),
  ) {
    this.last = now();
    this.setRate(ratePerSecond, burst);
  }

  /** True when the bucket lets everything through (rate 0 or Infinity). */
  get unlimited(): boolean {
    return this.rate === Infinity;
  }

  tryTake(amount = 1): boolean {
    return this.take(amount) === 0;
  }

  take(amount = 1): number {
    if (this.rate === Infinity || amount <= 0) return 0;
    this.refill();
    const need = Math.min(amount, this.burst);
    if (this.tokens >= need) {
      this.tokens -= amount;
      return 0;
    }
    return Math.ceil(((need - this.tokens) * 1000) / this.rate);
  }

  available(): number {
    if (this.rate === Infinity) return Infinity;
    this.refill();
    return this.tokens;
  }

  /**
   * Changes the rate and burst (default: one second's worth) on a configuration reload. Tokens
   * earned so far are kept up to the new burst; a bucket that was unlimited starts full.
   */
  setRate(ratePerSecond: number, burst?: number): void {
    if (Number.isNaN(ratePerSecond) || ratePerSecond < 0) {
      throw new HadesError('HADES_ERR_CONFIG_VALUE', `a rate must be 0 (unlimited) or more, not ${ratePerSecond}`);
    }
    const rate = ratePerSecond === 0 ? Infinity : ratePerSecond;
    const size = burst ?? rate;
    if (rate !== Infinity && !(size > 0 && Number.isFinite(size))) {
      throw new HadesError('HADES_ERR_CONFIG_VALUE', `a burst must be a positive finite number, not ${size}`);
    }
    // Unlimited, or not set yet (from the constructor): the bucket starts full.
    const wasUnlimited = this.rate === Infinity || this.burst === 0;
    if (!wasUnlimited) this.refill();
    this.rate = rate;
    this.burst = rate === Infinity ? Infinity : size;
    this.tokens = wasUnlimited ? this.burst : Math.min(this.tokens, this.burst);
    this.last = this.now();
  }

  private refill(): void {
    const now = this.now();
    const elapsed = now - this.last;
    this.last = now;
    // A clock that went backwards (only an injected one can) earns nothing.
    if (elapsed > 0) this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.rate) / 1000);
  }
}

/** A rate limit that lets everything through: rate 0 or Infinity in the configuration. */
export const unlimited: RateLimit = Object.freeze({
  tryTake: () => true,
  take: () => 0,
  available: () => Infinity,
});

/** A bucket for a configured rate, or `unlimited` for 0 and Infinity. */
export function rateLimit(ratePerSecond: number, burst?: number, now?: () => number): RateLimit {
  if (ratePerSecond === 0 || ratePerSecond === Infinity) return unlimited;
  return new TokenBucket(ratePerSecond, burst, now);
}
