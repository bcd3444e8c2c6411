/**
 * The server's detection stage: every event an agent delivers (once: duplicates are dropped by
 * the store first) goes through the rule set; each match becomes an alert, unless an analyst's
 * suppression silences it or an open alert with the same key absorbs it (deduplication). New
 * alerts go to the store and to the alert outputs.
 *
 * Rules come from a loader function (the default pack, rule folders, Sigma folders); `reload`
 * swaps the rule set only when the new one loads, so a bad edit never leaves the server without
 * rules. Correlation state belongs to a rule set and starts empty after a reload. A timer owned
 * here expires correlation groups whose window has passed.
 */
import { randomUUID } from 'node:crypto';
import { HadesError, toHadesError } from '../../common/errors.js';
import { formatProblem, loadRules, type Match, type RuleFile, type RuleInfo, type RuleProblem, type RuleSet, type RuleStats } from '../../rules/index.js';
import type { Logger } from '../../runtime/log.js';
import type { AlertStore } from './store.js';
import type { Alert } from './types.js';

export interface RuleSource {
  /** Every rule file to load, Sigma rules already converted. */
  readonly files: readonly RuleFile[];
  /** Problems found before the engine saw the files (e.g. Sigma rules that cannot be converted). */
  readonly problems?: readonly RuleProblem[];
}

/**
 * Rules that run elsewhere (the server's ingest worker, ../ingest/client.ts): the detector loads
 * them there and raises the alerts of the matches it is handed (`raise`).
 */
export interface RemoteRules {
  /** Compiles the files; they replace the running rules unless they have errors and rules run. */
  load(files: readonly RuleFile[]): Promise<{ readonly applied: boolean; readonly rules: readonly RuleInfo[]; readonly problems: readonly RuleProblem[] }>;
  ruleStats(): Promise<RuleStats[]>;
}

export interface DetectorOptions {
  /** Reads the rule files; called at start and at each reload. */
  readonly rules: () => Promise<RuleSource>;
  /** Where the rules run; absent: here, through `process`. */
  readonly remote?: RemoteRules;
  readonly store: AlertStore;
  /**
   * The host name an agent enrolled with (the fleet's record; undefined for an agent the fleet
   * does not have): the host a suppression names is matched against it and the agent id, never
   * against the `host.name` an event claims.
   */
  readonly enrolledHost: (agentId: string) => string | undefined;
  /** Finds stored events by id: the earlier steps of a correlation. */
  readonly events: { byIds(ids: readonly string[], agentId?: string): Record<string, unknown>[] };
  /** New alerts and alerts' updates go here (the outputs). */
  readonly publish?: (alert: Alert) => void;
  /** Matches of the same key within this window fold into one alert. */
  readonly dedupWindowMs: number;
  /** Most events kept in one alert. */
  readonly maxEvents: number;
  readonly log: Logger;
  readonly now?: () => number;
}

export interface RulesState {
  readonly loaded: string;
  readonly rules: number;
  readonly enabled: number;
  readonly problems: readonly RuleProblem[];
  /** The last reload, when it failed: the running rules stayed. Cleared by a reload that works. */
  readonly failed_reload?: { readonly at: string; readonly problems: readonly RuleProblem[] };
}

export interface DetectorStats {
  readonly events: number;
  readonly matches: number;
  readonly alerts: number;
  readonly deduplicated: number;
  readonly suppressed: number;
  readonly errors: number;
  /** Time from an event's arrival at the server to its alert, in ms. */
  readonly latency_ms: { readonly p50: number; readonly p99: number; readonly max: number; readonly count: number };
}

const EXPIRE_EVERY_MS = 5_000;

/** Problems of a load written one per line to the log; the others are counted (#logProblems). */
export const LOGGED_PROBLEMS = 20;
/** Where an operator reading the log finds every problem of the last load. */
const PROBLEMS_LISTED_BY = 'GET /api/v1/rules (field problems); hades rules test PATH and hades rules import-sigma DIR check files offline';

/** How many problems have each code, most frequent first: the reasons at a glance. */
function countByCode(problems: readonly RuleProblem[]): Record<string, number> {
  const counts = new Map<string, number>();
  for (const p of problems) counts.set(p.code, (counts.get(p.code) ?? 0) + 1);
  return Object.fromEntries([...counts].sort((a, b) => b[1] - a[1]));
}

/** One agent's batch of matches, arrived at the gateway at `arrived`. */
interface RaisedBatch {
  readonly agentId: string;
  readonly matches: readonly Match[];
  readonly arrived: number;
  /** Events stored before the last stop and matched again (alerts/mark.ts): some of them raised their alerts then. */
  readonly replayed?: boolean;
}

/** Reads a dotted field (`process.parent.name`) of an event. */
export function readField(event: Readonly<Record<string, unknown>>, field: string): unknown {
  let value: unknown = event;
  for (const key of field.split('.')) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

/** A field's value as text when it is a string, number or boolean; undefined otherwise. */
export function readText(event: Readonly<Record<string, unknown>>, field: string): string | undefined {
  const value = readField(event, field);
  return typeof value === 'string' ? value : typeof value === 'number' || typeof value === 'boolean' ? String(value) : undefined;
}

/** Fields that say what an event was about; with the rule and host they make the dedup key. */
const DEDUP_FIELDS = ['process.executable', 'process.command_line', 'file.path', 'destination.ip', 'destination.port', 'dns.question.name'] as const;

export function dedupKey(match: Pick<Match, 'rule' | 'event' | 'correlation'> & { readonly output?: string }, agentId: string): string {
  const parts: string[] = [match.rule.id, agentId];
  if (match.correlation !== undefined) parts.push(`corr:${match.correlation.key}`);
  else {
    const values = (match.rule.dedupBy ?? DEDUP_FIELDS).map((field) => readText(match.event, field) ?? '');
    parts.push(...values);
    // An event none of the default fields describe (an inventory change, a package finding, a
    // sudo refusal) is keyed by what its rule says of it: else every such match on a host is one
    // thing, and an intruder's key added after the admin's folds into the admin's alert unseen.
    if (match.rule.dedupBy === undefined && values.every((value) => value === '') && match.output !== undefined) parts.push(`output:${match.output}`);
  }
  return parts.join('\u0000');
}

/**
 * Latencies in ms, in buckets of about 5% width (1 ms .. ~10 min), so that p99 over millions of
 * alerts costs a fixed 300 numbers.
 */
class LatencyHistogram {
  readonly #buckets = new Float64Array(300);
  #count = 0;
  #max = 0;

  add(ms: number): void {
    const index = ms <= 1 ? 0 : Math.min(this.#buckets.length - 1, Math.ceil(Math.log(ms) / Math.log(1.05)));
    this.#buckets[index] = (this.#buckets[index] ?? 0) + 1;
    this.#count++;
    if (ms > this.#max) this.#max = ms;
  }

  quantile(q: number): number {
    if (this.#count === 0) return 0;
    const target = q * this.#count;
    let seen = 0;
    for (let i = 0; i < this.#buckets.length; i++) {
      seen += this.#buckets[i] ?? 0;
      if (seen >= target) return Math.min(this.#max, i === 0 ? 1 : Math.round(1.05 ** i));
    }
    return this.#max;
  }

  summary(): DetectorStats['latency_ms'] {
    return { p50: this.quantile(0.5), p99: this.quantile(0.99), max: Math.round(this.#max), count: this.#count };
  }
}

export class Detector {
  readonly #options: DetectorOptions;
  readonly #now: () => number;
  #ruleSet: RuleSet | undefined;
  /** The running rules (also when they run remotely); undefined until the first load. */
  #info: readonly RuleInfo[] | undefined;
  #state: RulesState = { loaded: new Date(0).toISOString(), rules: 0, enabled: 0, problems: [] };
  #timer: NodeJS.Timeout | undefined;
  #reloading: Promise<RulesState> | undefined;
  readonly #latency = new LatencyHistogram();
  #events = 0;
  #matches = 0;
  #alerts = 0;
  #deduplicated = 0;
  #suppressed = 0;
  #errors = 0;

  constructor(options: DetectorOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** Loads the rules and starts the expiry timer (remote rules expire their state themselves). */
  async start(): Promise<RulesState> {
    const state = await this.reload();
    if (this.#options.remote === undefined) {
      this.#timer = setInterval(() => this.#ruleSet?.expireIdle(this.#now()), EXPIRE_EVERY_MS);
      this.#timer.unref();
    }
    return state;
  }

  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /**
   * Loads the rules again. The new set replaces the running one only when it has no error; else
   * the running set stays and HADES_ERR_RULES_RELOAD says why (with every problem in details).
   */
  reload(): Promise<RulesState> {
    // One reload at a time: a second request waits for the first's result.
    this.#reloading ??= this.#load().finally(() => {
      this.#reloading = undefined;
    });
    return this.#reloading;
  }

  async #load(): Promise<RulesState> {
    const source = await this.#options.rules();
    const { remote } = this.#options;
    let rules: readonly RuleInfo[];
    let problems: readonly RuleProblem[];
    let applied: boolean;
    let local: RuleSet | undefined;
    if (remote !== undefined) {
      ({ rules, problems, applied } = await remote.load(source.files));
    } else {
      const loaded = loadRules(source.files, { samples: false });
      problems = loaded.problems;
      rules = loaded.ruleSet.rules;
      applied = this.#info === undefined || !problems.some((p) => p.severity === 'error');
      if (applied) local = loaded.ruleSet;
    }
    const all = [...(source.problems ?? []), ...problems];
    const errors = problems.filter((p) => p.severity === 'error');
    if (!applied) {
      this.#state = { ...this.#state, failed_reload: { at: new Date(this.#now()).toISOString(), problems: all } };
      throw new HadesError('HADES_ERR_RULES_RELOAD', `the rules have ${errors.length} error(s); the running rules stay: ${errors.slice(0, 3).map(formatProblem).join('; ')}`, {
        details: { problems: errors },
      });
    }
    this.#logProblems(source.problems ?? [], problems);
    this.#ruleSet = local;
    this.#info = rules;
    this.#state = {
      loaded: new Date(this.#now()).toISOString(),
      rules: rules.length,
      enabled: rules.filter((r) => r.enabled).length,
      problems: all,
    };
    this.#options.log.info('rules loaded', {
      rules: this.#state.rules,
      enabled: this.#state.enabled,
      problems: all.length,
      ...(all.length > 0 ? { problems_by_code: countByCode(all), problems_listed_by: PROBLEMS_LISTED_BY } : {}),
    });
    return this.#state;
  }

  /**
   * One line per problem, at most LOGGED_PROBLEMS of them: first the rules that were refused
   * (an error of the engine, which skips the rule; a Sigma rule that cannot be converted) at
   * warn, then warnings about rules that did load (an unused macro) at info. A Sigma folder
   * may refuse hundreds: the rest are counted in one line that says where the whole list is.
   */
  #logProblems(source: readonly RuleProblem[], engine: readonly RuleProblem[]): void {
    const refused = [...engine.filter((p) => p.severity === 'error'), ...source];
    const warnings = engine.filter((p) => p.severity !== 'error');
    const { log } = this.#options;
    const line = (problem: RuleProblem) => ({ code: problem.code, ...(problem.rule === undefined ? {} : { rule: problem.rule }), problem: formatProblem(problem) });
    let logged = 0;
    for (const problem of refused) if (logged++ < LOGGED_PROBLEMS) log.warn('rule not loaded', line(problem));
    for (const problem of warnings) if (logged++ < LOGGED_PROBLEMS) log.info('rule warning', line(problem));
    const more = refused.length + warnings.length - LOGGED_PROBLEMS;
    if (more > 0) {
      log.warn(`${more} more rule problem(s) not logged one by one`, {
        refused: refused.length,
        warnings: warnings.length,
        problems_by_code: countByCode([...refused, ...warnings]),
        problems_listed_by: PROBLEMS_LISTED_BY,
      });
    }
  }

  get rules(): RulesState {
    return this.#state;
  }

  /** The running rules. */
  get ruleInfo(): readonly RuleInfo[] {
    return this.#info ?? [];
  }

  /** The running rules' counters (from where they run). */
  async ruleStats(): Promise<RuleStats[]> {
    const { remote } = this.#options;
    return remote === undefined ? (this.#ruleSet?.stats() ?? []) : remote.ruleStats();
  }

  /**
   * Runs the events of one agent's batch (already stored) through the rules, here (without
   * `remote`). Never throws: a failure on one event is logged and counted, and the others still
   * run.
   */
  process(agentId: string, events: readonly Readonly<Record<string, unknown>>[], arrived: number, replayed = false): void {
    const ruleSet = this.#ruleSet;
    if (ruleSet === undefined) return;
    const matches: Match[] = [];
    const errors: string[] = [];
    for (const event of events) {
      try {
        matches.push(...ruleSet.match(event));
      } catch (error) {
        errors.push(toHadesError(error).message);
      }
    }
    this.raise(agentId, matches, arrived, { evaluated: events.length, errors }, replayed);
  }

  /**
   * Raises the alerts of one batch's matches (found here or where the rules run remotely):
   * `evaluated` events were run through the rules, and the engine failed on `errors`. Never
   * throws.
   */
  raise(agentId: string, matches: readonly Match[], arrived: number, counts: { readonly evaluated: number; readonly errors: readonly string[] }, replayed = false): void {
    this.#count(counts);
    if (matches.length > 0) this.#write([{ agentId, matches, arrived, replayed }]);
  }

  /**
   * raise() for the server's stream of batches: the alerts of every batch whose matches come in
   * the same turn of the event loop are written in one transaction (in an alert storm a commit
   * per batch was most of what an alert cost the thread that serves the agents). Resolves once
   * they are written, or given up (logged and counted); never rejects.
   */
  raiseSoon(agentId: string, matches: readonly Match[], arrived: number, counts: { readonly evaluated: number; readonly errors: readonly string[] }): Promise<void> {
    this.#count(counts);
    if (matches.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#soon.push({ agentId, matches, arrived, resolve });
      if (this.#soon.length === 1) setImmediate(this.#flushSoon);
    });
  }

  /** Batches' matches waiting for raiseSoon's write; written, and their promises settled, in the next check phase. */
  readonly #soon: (RaisedBatch & { readonly resolve: () => void })[] = [];
  readonly #flushSoon = (): void => {
    const waiting = this.#soon.splice(0);
    this.#write(waiting);
    for (const w of waiting) w.resolve();
  };

  #count(counts: { readonly evaluated: number; readonly errors: readonly string[] }): void {
    this.#events += counts.evaluated;
    for (const message of counts.errors) this.#fail('rule evaluation failed', new HadesError('HADES_ERR_INTERNAL', message));
  }

  /** Writes the alerts of some batches' matches in one transaction, then publishes them. Never throws. */
  #write(batches: readonly RaisedBatch[]): void {
    const published: Alert[] = [];
    try {
      this.#options.store.batch(() => {
        for (const { agentId, matches, arrived, replayed = false } of batches) {
          for (const match of matches) {
            this.#matches++;
            try {
              const alert = this.#raise(agentId, match, arrived, replayed);
              if (alert !== undefined) published.push(alert);
            } catch (error) {
              this.#fail('alert creation failed', error);
            }
          }
        }
      });
    } catch (error) {
      // The alerts could not be written (the database is full or locked): they are lost,
      // counted and logged; the events themselves are stored.
      this.#fail(batches.length === 1 ? 'alerts of a batch could not be stored' : `alerts of ${batches.length} batches could not be stored`, error);
      return;
    }
    // Sent once they are committed: an output never announces an alert the store does not have.
    for (const alert of published) this.#options.publish?.(alert);
  }

  #fail(what: string, error: unknown): void {
    this.#errors++;
    this.#options.log.error(what, { err: toHadesError(error) });
  }

  /** The new alert, or undefined when the match was suppressed or folded into an open alert. */
  #raise(agentId: string, match: Match, arrived: number, replayed: boolean): Alert | undefined {
    const { store } = this.#options;
    const event = match.event;
    // Who the server knows sent it (the agent of the certificate, the name it enrolled with), not
    // the name the event gives its host: root on one host could write another's name there. The
    // alert is filed, listed and suppressed under the former; the latter stays in its events.
    const enrolled = this.#options.enrolledHost(agentId);
    const claimed = readText(event, 'host.name');
    const host = { name: enrolled ?? claimed ?? agentId, reported: claimed };
    if (store.suppressedBy(match.rule.id, enrolled, agentId, (field) => readText(event, field), this.#now()) !== undefined) {
      this.#suppressed++;
      return undefined;
    }
    const key = dedupKey(match, agentId);
    const eventTime = Date.parse(readText(event, '@timestamp') ?? '') || this.#now();
    // Within the window on either side of the event's time (a late event does not fold into an
    // alert of any age); a window of 0 folds nothing.
    const window = this.#options.dedupWindowMs;
    const now = this.#now();
    // An event matched again after a restart whose alert was raised before it (the detection mark
    // lags by up to a second): nothing new, whatever the window (with a window of 0, or an alert
    // whose own window has closed, fold would raise it a second time and send it out again).
    if (replayed && store.holds(key, eventTime, event)) {
      this.#deduplicated++;
      return undefined;
    }
    if (window > 0 && store.fold(key, eventTime - window, eventTime, event, this.#options.maxEvents, eventTime + window, now)) {
      this.#deduplicated++;
      return undefined;
    }
    const alert = this.#build(agentId, host, match, eventTime);
    store.insert({ alert, dedupKey: key, matched: now });
    this.#alerts++;
    this.#latency.add(Math.max(0, this.#now() - arrived));
    return alert;
  }

  #build(agentId: string, host: { readonly name: string; readonly reported: string | undefined }, match: Match, eventTime: number): Alert {
    const event = match.event;
    let events: readonly Readonly<Record<string, unknown>>[] = [event];
    if (match.correlation !== undefined) {
      const ids = match.correlation.events.slice(-this.#options.maxEvents);
      const found = this.#options.events.byIds(ids, agentId);
      if (found.length > 0) events = found;
    }
    const process = readField(event, 'process') as Record<string, unknown> | undefined;
    const ancestors = readField(event, 'hades.ancestors');
    const cmdb = readField(event, 'hades.cmdb') as Record<string, unknown> | undefined;
    const first = match.correlation === undefined ? eventTime : match.correlation.first;
    return {
      id: randomUUID(),
      '@timestamp': new Date(Number.isFinite(first) ? first : eventTime).toISOString(),
      last_seen: new Date(eventTime).toISOString(),
      count: 1,
      rule: { id: match.rule.id, title: match.rule.title, severity: match.severity, tags: match.tags, type: match.rule.type },
      message: match.output,
      host: {
        id: agentId,
        name: host.name,
        // A host that calls itself by another name than it enrolled with: worth seeing.
        ...(host.reported !== undefined && host.reported !== host.name ? { reported_name: host.reported } : {}),
        ...(cmdb === undefined ? {} : { cmdb }),
      },
      events,
      ...(process === undefined ? {} : { process: ancestors === undefined ? process : { ...process, ancestors } }),
      status: 'new',
      assignee: null,
    };
  }

  stats(): DetectorStats {
    return {
      events: this.#events,
      matches: this.#matches,
      alerts: this.#alerts,
      deduplicated: this.#deduplicated,
      suppressed: this.#suppressed,
      errors: this.#errors,
      latency_ms: this.#latency.summary(),
    };
  }
}
