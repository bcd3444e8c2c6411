/**
 * One output's queue: a bounded ring of alerts in front of its transport, one delivery in flight
 * at a time (alerts reach the receiver in the order they were raised), exponential backoff with
 * jitter after failures, and the counters of docs/alert-outputs.md.
 *
 * Memory is bounded by `capacity` alerts, and `maxBytes` of their JSON (as it sits in memory, the
 * one form of the alert a queue keeps: QueuedAlert), waiting plus the one being delivered (plus
 * what a transport holds until its receiver acknowledges it, bounded there); a push into a full
 * ring drops the oldest waiting alerts. An alert the receiver failed uses up one attempt and is
 * given up after `max_attempts`; while the receiver cannot be reached at all, the alert keeps
 * its place without using attempts, so an outage costs only what overflows the queue.
 */
import type { AlertOutputRetryConfig } from '../../../common/config/alert-outputs.js';
import { toHadesError, type ErrorCode, type HadesError } from '../../../common/errors.js';
import type { Logger } from '../../../runtime/log.js';
import { scopeOf, type AlertRef, type AlertTransport, type QueuedAlert } from './transport.js';

export interface OutputCounters {
  /** Alerts the receiver accepted (for a transport that holds alerts, once it acknowledged them). */
  sent: number;
  /** Alerts given up: a final failure, or max_attempts failed attempts. */
  failed: number;
  /** Delivery attempts that failed, whatever their cause. */
  failed_attempts: number;
  /** Attempts made after a failure. */
  retries: number;
  /** Alerts dropped unsent: the queue was full (the oldest went), or still queued at close (written but unacknowledged ones too). */
  dropped: number;
  /** Alerts below the output's min_severity, not queued. */
  filtered: number;
}

export interface LastError {
  readonly code: ErrorCode;
  readonly message: string;
  /** ISO 8601. */
  readonly at: string;
}

export interface QueueOptions {
  /** The output's name, for logs. */
  readonly name: string;
  readonly capacity: number;
  /** Most bytes of JSON waiting (`queue_mb`, QueuedAlert.bytes); the oldest go past it. Unbounded when absent. */
  readonly maxBytes?: number;
  readonly maxAttempts: number;
  readonly backoffMs: number;
  readonly backoffMaxMs: number;
  readonly log: Logger;
  /** Source of the jitter, in [0, 1); injectable for tests. */
  readonly random?: () => number;
}

export function queueOptions(name: string, capacity: number, retry: AlertOutputRetryConfig, log: Logger, queueMb?: number): QueueOptions {
  return { name, capacity, ...(queueMb === undefined ? {} : { maxBytes: queueMb * 1024 * 1024 }), maxAttempts: retry.max_attempts, backoffMs: retry.backoff_ms, backoffMaxMs: retry.backoff_max_ms, log };
}

/** The wait before the next attempt after `failures` failures in a row: doubling, capped, half of it jittered. */
export function backoffDelay(failures: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const full = Math.min(maxMs, initialMs * 2 ** Math.min(failures - 1, 40));
  return Math.round(full / 2 + (full / 2) * random());
}

interface Current {
  readonly item: QueuedAlert;
  attempts: number;
}

export class OutputQueue {
  readonly counters: OutputCounters = { sent: 0, failed: 0, failed_attempts: 0, retries: 0, dropped: 0, filtered: 0 };
  lastError: LastError | null = null;
  lastSentAt: string | null = null;

  private readonly ring: (QueuedAlert | undefined)[];
  private head = 0;
  private size = 0;
  /** Bytes of JSON of the alerts waiting in the ring (QueuedAlert.bytes). */
  private bytes = 0;
  private current: Current | undefined;
  /** Alerts the transport wrote and holds until the receiver acknowledges them (HoldListener). */
  private held = 0;
  private inFlight: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private failuresInRow = 0;
  /** Alerts dropped since the queue was last empty or delivering again; the first one is warned of. */
  private droppedUnreported = 0;
  private closed = false;
  private readonly idleWaiters = new Set<() => void>();
  private readonly random: () => number;

  constructor(
    private readonly transport: AlertTransport,
    private readonly options: QueueOptions,
  ) {
    this.ring = new Array<QueuedAlert | undefined>(options.capacity);
    this.random = options.random ?? Math.random;
    transport.hold?.({
      acknowledged: (count) => this.acknowledged(count),
      givenUp: (alert, error, attempts) => this.heldGivenUp(alert, error, attempts),
      connectionLost: (error) => this.connectionLost(error),
    });
  }

  /** Alerts not yet delivered: waiting, the one being delivered or waiting for its retry, and those written but not acknowledged. */
  get queued(): number {
    return this.size + (this.current ? 1 : 0) + this.held;
  }

  /** Alerts written to the receiver and not acknowledged yet (included in `queued`). */
  get unacknowledged(): number {
    return this.held;
  }

  /** Queues an alert; never throws, never waits. */
  push(item: QueuedAlert): void {
    if (this.closed) {
      this.counters.dropped++;
      return;
    }
    const maxBytes = this.options.maxBytes ?? Infinity;
    while (this.size > 0 && (this.size === this.options.capacity || this.bytes + item.bytes > maxBytes)) {
      this.shift();
      this.counters.dropped++;
      if (this.droppedUnreported++ === 0) {
        this.options.log.warn(`alert output '${this.options.name}': queue full, dropping the oldest alerts`, {
          code: 'HADES_ERR_ALERT_OUTPUT_DROPPED',
          capacity: this.options.capacity,
          ...(this.options.maxBytes === undefined ? {} : { capacity_mb: Math.round(this.options.maxBytes / 1024 / 1024) }),
          last_error: this.lastError?.code,
        });
      }
    }
    this.ring[(this.head + this.size) % this.options.capacity] = item;
    this.size++;
    this.bytes += item.bytes;
    this.pump();
  }

  /**
   * Resolves once everything queued is delivered or given up, or after `ms`, whichever comes
   * first. A retry waiting for its backoff is tried at once: this is the last chance.
   */
  async drain(ms: number): Promise<void> {
    this.transport.hurry?.();
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
      this.retry();
    }
    if (this.queued === 0) return;
    let timer: NodeJS.Timeout | undefined;
    let waiter: (() => void) | undefined;
    try {
      await new Promise<void>((resolve) => {
        waiter = resolve;
        this.idleWaiters.add(resolve);
        timer = setTimeout(resolve, ms);
      });
    } finally {
      clearTimeout(timer);
      if (waiter) this.idleWaiters.delete(waiter);
    }
  }

  /**
   * Stops: cancels the retry timer, closes the transport (a delivery in flight fails), and
   * counts what is left as dropped.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    await this.transport.close();
    await this.inFlight;
    const unacknowledged = this.held;
    const left = this.queued - unacknowledged;
    this.ring.fill(undefined);
    this.size = 0;
    this.bytes = 0;
    this.current = undefined;
    this.held = 0;
    if (left > 0) {
      this.counters.dropped += left;
      this.options.log.warn(`alert output '${this.options.name}': ${left} alerts were still queued at close and are dropped`, {
        code: 'HADES_ERR_ALERT_OUTPUT_DROPPED',
        dropped: left,
        last_error: this.lastError?.code,
      });
    }
    if (unacknowledged > 0) {
      // Written, perhaps received: counted with the dropped, since nothing says they arrived.
      this.counters.dropped += unacknowledged;
      this.options.log.warn(`alert output '${this.options.name}': ${unacknowledged} alerts written to the receiver were not acknowledged at close and may be lost`, {
        code: 'HADES_ERR_ALERT_OUTPUT_DROPPED',
        unacknowledged,
        last_error: this.lastError?.code,
      });
    }
    this.notifyIdle();
  }

  private pump(): void {
    if (this.closed || this.inFlight || this.retryTimer) return;
    if (!this.current) {
      const next = this.shift();
      if (!next && this.transport.resendPending) {
        // Alerts of a dead connection, and nothing new to carry them: sent again on their own.
        this.inFlight = this.resend().finally(() => {
          this.inFlight = undefined;
          this.pump();
        });
        return;
      }
      if (!next) {
        // The queue emptied: an episode of dropping is over, and the next one gets its warning;
        // unless an outage goes on (written alerts not acknowledged yet), whose end reports them.
        if (this.failuresInRow === 0) this.droppedUnreported = 0;
        this.notifyIdle();
        return;
      }
      this.current = { item: next, attempts: 0 };
    }
    const current = this.current;
    this.inFlight = this.attempt(current).finally(() => {
      this.inFlight = undefined;
      this.pump();
    });
  }

  private async attempt(current: Current): Promise<void> {
    let error: HadesError;
    try {
      const held = await this.transport.deliver(current.item);
      if (this.closed) return;
      this.current = undefined;
      // A held alert is only written: the outage is over when the receiver acknowledges something
      // (acknowledged()), not when a new connection takes bytes it may never read.
      if (held === 'held') this.held++;
      else {
        this.sent(1);
        this.deliveringAgain();
      }
      return;
    } catch (e) {
      error = toHadesError(e);
    }
    if (this.closed) return;
    this.failed(current, error);
  }

  private async resend(): Promise<void> {
    try {
      // Written again, not yet acknowledged: acknowledged() ends the outage.
      await this.transport.resend?.();
    } catch (e) {
      if (!this.closed) this.failed(undefined, toHadesError(e));
    }
  }

  private sent(count: number): void {
    this.counters.sent += count;
    this.lastSentAt = new Date().toISOString();
  }

  private acknowledged(count: number): void {
    if (this.closed) return;
    this.held -= count;
    this.sent(count);
    if (count > 0) this.deliveringAgain();
    this.notifyIdle();
  }

  private heldGivenUp(alert: AlertRef, error: HadesError, attempts: number): void {
    if (this.closed) return;
    this.held--;
    this.counters.failed++;
    this.options.log.error(`alert output '${this.options.name}': alert given up`, { code: error.code, error, alert_id: alert.id, rule: alert.rule, attempts });
    this.notifyIdle();
  }

  /** A failure that no delivery in flight reports: counted, and the held alerts are sent again after the backoff. */
  private connectionLost(error: HadesError): void {
    if (this.closed) return;
    this.failed(undefined, error);
  }

  private deliveringAgain(): void {
    if (this.failuresInRow > 0) {
      this.options.log.info(`alert output '${this.options.name}': delivering again`, {
        failed_attempts_in_row: this.failuresInRow,
        dropped: this.droppedUnreported,
      });
      this.failuresInRow = 0;
      this.droppedUnreported = 0;
    }
  }

  /** A failed attempt; `current` is undefined for a failure about held alerts only (resend, connectionLost). */
  private failed(current: Current | undefined, error: HadesError): void {
    this.counters.failed_attempts++;
    this.failuresInRow++;
    this.lastError = { code: error.code, message: error.message, at: new Date().toISOString() };
    const scope = scopeOf(error);
    if (current && scope !== 'receiver') current.attempts++;
    if (current && (scope === 'final' || (this.options.maxAttempts > 0 && current.attempts >= this.options.maxAttempts))) {
      this.counters.failed++;
      this.current = undefined;
      this.options.log.error(`alert output '${this.options.name}': alert given up`, {
        code: error.code,
        error,
        alert_id: current.item.head.id,
        rule: current.item.head.rule.id,
        attempts: current.attempts,
      });
    } else if (this.failuresInRow === 1) {
      // One line per outage; the counters and last_error tell the rest.
      this.options.log.warn(`alert output '${this.options.name}': delivery failed, retrying with backoff`, { code: error.code, error });
    }
    // A final failure says nothing about the next alert; any other one slows down the next attempt.
    if (scope === 'final' && current) {
      this.failuresInRow = 0;
      return;
    }
    // A connection lost while the backoff runs: the attempt after it sends the held alerts first.
    if (this.retryTimer) return;
    const delay = backoffDelay(this.failuresInRow, this.options.backoffMs, this.options.backoffMaxMs, this.random);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.retry();
    }, delay);
  }

  /** The attempt after a backoff: a retry when the alert that failed is still there, else a new alert's first attempt. */
  private retry(): void {
    if (this.current) this.counters.retries++;
    this.pump();
  }

  private shift(): QueuedAlert | undefined {
    if (this.size === 0) return undefined;
    const item = this.ring[this.head];
    this.ring[this.head] = undefined;
    this.head = (this.head + 1) % this.options.capacity;
    this.size--;
    this.bytes -= item?.bytes ?? 0;
    return item;
  }

  private notifyIdle(): void {
    if (this.queued > 0 && !this.closed) return;
    for (const resolve of [...this.idleWaiters]) resolve();
    this.idleWaiters.clear();
  }
}
