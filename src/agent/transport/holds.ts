/**
 * Gateway addresses held down after an Ack timeout. A gateway whose gRPC port answers while its
 * ingest is stuck passes every connection check (TLS, Welcome) and only shows itself when a
 * batch gets no Ack within the deadline: going back to it as soon as it answers again would
 * delay every event by that deadline, over and over. So an address that failed by Ack timeout
 * is not preferred again for a while: `firstMs` after its first timeout, doubled after each
 * further one, up to `maxMs`; an Ack from it ends its hold at once and forgets its timeouts.
 * A held address is still used when the others fail (failover goes through it in turn).
 *
 * Owned by the agent rather than by one transport, so that a reload's new transport does not
 * start again at a stuck address. Keyed by address; the entries are those of the addresses
 * configured (at most 16) that failed since their last Ack.
 */

interface Hold {
  /** When the hold ends (ms, on `now`'s clock). */
  readonly until: number;
  /** How long it was: the next one is twice as long. */
  readonly ms: number;
}

export class AddressHolds {
  readonly #holds = new Map<string, Hold>();

  /**
   * `now`: a monotonic clock by default. The wall clock would make a hold last as long as the
   * host's clock is set back meanwhile (an NTP step, an intruder): days on a less preferred
   * address instead of minutes.
   */
  constructor(private readonly now: () => number = () => performance.now()) {}

  /** `address` failed by Ack timeout: held from now on; returns for how long (ms). */
  ackTimedOut(address: string, firstMs: number, maxMs: number): number {
    const before = this.#holds.get(address);
    const ms = before === undefined ? Math.min(firstMs, maxMs) : Math.min(before.ms * 2, maxMs);
    this.#holds.set(address, { until: this.now() + ms, ms });
    return ms;
  }

  /** `address` acknowledged a batch: its ingest works; no hold, and the next timeout starts over. */
  acknowledged(address: string): void {
    this.#holds.delete(address);
  }

  /** Whether `address` is held down now. */
  held(address: string): boolean {
    const hold = this.#holds.get(address);
    return hold !== undefined && hold.until > this.now();
  }

  /** Forgets the addresses not in `addresses` (a reload changed the list). */
  keepOnly(addresses: readonly string[]): void {
    for (const address of this.#holds.keys()) if (!addresses.includes(address)) this.#holds.delete(address);
  }
}

/**
 * The hold after a first Ack timeout, from the deadline (`outputs.server.ack_timeout_s`): a
 * stuck address then costs one deadline of delay per 5 deadlines at most, and per 30 once its
 * hold has grown (at least 10 minutes and 1 hour: with the default 2-minute deadline, 10, 20,
 * 40, then 60 minutes).
 */
export function holdDownMs(ackTimeoutMs: number): { readonly firstMs: number; readonly maxMs: number } {
  return { firstMs: Math.max(10 * 60_000, 5 * ackTimeoutMs), maxMs: Math.max(60 * 60_000, 30 * ackTimeoutMs) };
}
