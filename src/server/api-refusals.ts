/**
 * Refused API requests, recorded: a 403 (a token asking for what its role does not allow, a task
 * for a revoked agent) goes to the audit log (`api.denied`: the token's name and id, its role,
 * the method and route, the remote address) and to the server's log (warn,
 * HADES_ERR_API_FORBIDDEN or the refusal's own code); a 401 (no token, a malformed, unknown,
 * revoked or expired one) and a 403 without a token behind it (an enrollment token refused) go
 * to the server's log only (warn: the remote address and the reason, the token's id when it had
 * the form of a token, never the token's text). 401s stay out of the audit log: anyone who
 * reaches the port can send them, from as many addresses as they have, and the audit log keeps
 * every entry for good (no retention): it would be theirs to fill.
 *
 * Both are rate-limited, so that a client hammering the API floods neither: per key (a token's
 * id for a 403, the remote address and the reason for a 401) the first `perKey` refusals of a
 * minute are recorded one by one, and at most `total` of all keys together; the rest are
 * counted, and when the minute is over one summary per key says how many more there were (an
 * `api.denied` entry with `more` in the audit log; a warning in the log). At most `maxKeys` keys
 * are followed in a minute: those past it are counted together under the address `*`.
 */
import type { ErrorCode } from '../common/errors.js';
import type { Logger } from '../runtime/log.js';

/** One refused request. */
export interface Refusal {
  readonly status: 401 | 403;
  readonly code: ErrorCode;
  readonly method: string;
  /** The route's pattern (`/api/v1/tokens/api/:id`), not the path asked: no ids or junk of the caller's. */
  readonly route: string;
  readonly address: string;
  /** The token behind a 403, when there is one. */
  readonly principal?: { readonly id: string; readonly name: string; readonly role: string };
  /** The role the request needed (a 403 for the role). */
  readonly needed?: string;
  /** Why a 401 (missing, malformed, unknown, bad_secret, revoked, expired, not_bearer). */
  readonly reason?: string;
  /** The id a refused token claimed (its public part), when it had the form of a token. */
  readonly claimedId?: string;
}

export interface RefusalSinks {
  readonly log: Logger;
  /** Writes an `api.denied` entry to the audit log (as the token that was refused). */
  readonly audit: (actor: { readonly id: string; readonly name: string; readonly role: string }, target: string, details: Record<string, unknown>) => void;
}

export interface RefusalLimits {
  /** Refusals of one key recorded one by one in a minute. Default 10. */
  readonly perKey?: number;
  /** Refusals of all keys recorded one by one in a minute. Default 200. */
  readonly total?: number;
  /** Keys followed in a minute. Default 1,000. */
  readonly maxKeys?: number;
  /** The window, ms. Default one minute. */
  readonly windowMs?: number;
  /** Milliseconds, for tests. Default Date.now. */
  readonly now?: () => number;
}

interface Counter {
  recorded: number;
  /** Refusals past the limit, this window. */
  more: number;
  /** The last refusal counted, for the summary. */
  last: Refusal;
}

export class RefusalRecorder {
  readonly #sinks: RefusalSinks;
  readonly #perKey: number;
  readonly #total: number;
  readonly #maxKeys: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  #windowStart: number | undefined;
  #recorded = 0;
  #counters = new Map<string, Counter>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(sinks: RefusalSinks, limits: RefusalLimits = {}) {
    this.#sinks = sinks;
    this.#perKey = limits.perKey ?? 10;
    this.#total = limits.total ?? 200;
    this.#maxKeys = limits.maxKeys ?? 1000;
    this.#windowMs = limits.windowMs ?? 60_000;
    this.#now = limits.now ?? Date.now;
  }

  /** Records a refusal (or counts it, past the limits). Never throws: a refusal is answered whatever becomes of its record. */
  refused(refusal: Refusal): void {
    if (this.#closed) return;
    const now = this.#now();
    if (this.#windowStart === undefined || now - this.#windowStart >= this.#windowMs) {
      this.flush();
      this.#windowStart = now;
    }
    let key = refusal.status === 403 && refusal.principal ? `token ${refusal.principal.id}` : `${refusal.status} ${refusal.address} ${refusal.reason ?? refusal.code}`;
    if (!this.#counters.has(key) && this.#counters.size >= this.#maxKeys) key = `${refusal.status} *`;
    let counter = this.#counters.get(key);
    if (counter === undefined) {
      counter = { recorded: 0, more: 0, last: refusal };
      this.#counters.set(key, counter);
    }
    counter.last = key.endsWith(' *') ? { ...refusal, address: '*' } : refusal;
    if (counter.recorded < this.#perKey && this.#recorded < this.#total) {
      counter.recorded++;
      this.#recorded++;
      this.#write(refusal, 0);
      return;
    }
    counter.more++;
    // The summary is written when the window ends, even if no request comes then.
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      this.flush();
    }, Math.max(0, (this.#windowStart ?? now) + this.#windowMs - now));
  }

  /** Writes the summaries of the window (what was counted, not recorded) and starts afresh. */
  flush(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const counters = this.#counters;
    this.#counters = new Map();
    this.#recorded = 0;
    this.#windowStart = undefined;
    for (const counter of counters.values()) {
      if (counter.more > 0) this.#write(counter.last, counter.more);
    }
  }

  /** Writes what is pending, then records nothing more (the API is closing). */
  close(): void {
    this.flush();
    this.#closed = true;
  }

  #write(refusal: Refusal, more: number): void {
    const windowS = Math.round(this.#windowMs / 1000);
    const window = more > 0 ? { more, window_s: windowS } : {};
    const fields = {
      code: refusal.code,
      status: refusal.status,
      method: refusal.method,
      route: refusal.route,
      address: refusal.address,
      ...(refusal.reason === undefined ? {} : { reason: refusal.reason }),
      ...(refusal.claimedId === undefined ? {} : { claimed_id: refusal.claimedId }),
      ...(refusal.principal === undefined ? {} : { actor: refusal.principal.name, actor_id: refusal.principal.id, role: refusal.principal.role }),
      ...(refusal.needed === undefined ? {} : { needed: refusal.needed }),
      ...window,
    };
    const what = refusal.status === 401 ? 'API request refused: not authenticated' : 'API request denied';
    this.#sinks.log.warn(more > 0 ? `${what}: ${more} more like the last in the last ${windowS} s, not logged one by one` : what, fields);
    if (refusal.status !== 403 || refusal.principal === undefined) return;
    try {
      this.#sinks.audit(refusal.principal, `${refusal.method} ${refusal.route}`, {
        outcome: 'denied',
        code: refusal.code,
        method: refusal.method,
        route: refusal.route,
        role: refusal.principal.role,
        ...(refusal.needed === undefined ? {} : { needed: refusal.needed }),
        address: refusal.address,
        ...window,
      });
    } catch (error) {
      // The refusal stands; its log line above says what the audit log could not keep.
      this.#sinks.log.error('a denied API request could not be written to the audit log', { err: error, actor_id: refusal.principal.id, route: refusal.route });
    }
  }
}
