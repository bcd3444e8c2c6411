/**
 * A compiled rule set: rules indexed by `event.action`, so that an event is tested only against
 * the rules that can match its action (plus the few that can match any action), and within an
 * action by the values the rules require (value-index.ts), each rule one compiled predicate.
 * `match` also feeds the correlation rules, whose state lives here: a rule set is used by one
 * event stream at a time (the server's pipeline, or the agent).
 */
import { nextEvent, type EventRecord, type Predicate } from './accessor.js';
import type { KeyClause } from './compile.js';
import { shownKey, type CorrelationHit, type CorrelationStats, type Correlator } from './correlation.js';
import type { Severity } from './schema.js';
import type { Template } from './template.js';
import { ValueIndex } from './value-index.js';

/** How late (behind the wall clock) events may come and still find their correlation state. */
export const LATE_EVENTS_MS = 60 * 60 * 1000;

export type RuleType = 'rule' | 'sequence' | 'threshold';

export interface RuleInfo {
  readonly id: string;
  readonly title: string;
  readonly description: string;
  readonly severity: Severity;
  readonly tags: readonly string[];
  readonly type: RuleType;
  /** The file that defines the rule, and where (its mapping's first key). */
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly enabled: boolean;
  /** False for rules that only feed correlation rules (Sigma's `generate: false`). */
  readonly alert: boolean;
  /** The actions the rule is evaluated for; null: every action. */
  readonly actions: readonly string[] | null;
  /** Fields whose values, with the rule and the agent, key its alerts; absent: the default fields. */
  readonly dedupBy?: readonly string[];
}

export interface Match {
  readonly rule: RuleInfo;
  /** The rule's output template rendered for this event. */
  readonly output: string;
  readonly severity: Severity;
  readonly tags: readonly string[];
  /** The event that matched (for correlation rules, the one that completed it). */
  readonly event: EventRecord;
  /** For correlation rules: the group, the count and the events involved. */
  readonly correlation?: CorrelationHit;
}

export interface RuleStats {
  readonly id: string;
  /** Events the rule's condition was evaluated on. */
  readonly evaluations: number;
  readonly matches: number;
  /** Matches cancelled by an exception. */
  readonly suppressed: number;
  readonly correlation?: Readonly<CorrelationStats>;
}

/** A stateless rule ready to run (internal to the engine). */
export interface CompiledRule {
  readonly info: RuleInfo;
  /** Position in the match-epoch table, shared with correlation rules. */
  readonly index: number;
  readonly predicate: Predicate;
  /** Values every match requires, for the value index. */
  readonly keys: readonly KeyClause[];
  readonly exceptions: Predicate | null;
  readonly output: Template;
  /** Some correlation rule uses this rule's matches. */
  referenced: boolean;
  evaluations: number;
  matches: number;
  suppressed: number;
}

export interface CompiledCorrelation {
  readonly info: RuleInfo;
  readonly index: number;
  /** Values one of its steps requires of every event it counts, for the value index ([]: none known). */
  readonly keys: readonly KeyClause[];
  readonly correlator: Correlator;
  readonly output: Template;
  referenced: boolean;
  evaluations: number;
  matches: number;
}

const NO_MATCHES: readonly Match[] = Object.freeze([]);

/**
 * The rules an action's events are tested against: stateless and correlation rules in one value
 * index (the text of an event is scanned once for both), its rest split by kind.
 */
interface Bucket {
  readonly index: ValueIndex<Indexed>;
  readonly rules: readonly CompiledRule[];
  /** In index order, which is dependency order. */
  readonly correlations: readonly CompiledCorrelation[];
}

type Indexed = CompiledRule | CompiledCorrelation;

const isCorrelation = (r: Indexed): r is CompiledCorrelation => 'correlator' in r;

const byIndex = (a: Indexed, b: Indexed) => a.index - b.index;

/** Sorts the first n rules by index, in place: a few per event, where insertion beats Array.sort's call per comparison. */
function sortByIndex(list: Indexed[], n: number): void {
  for (let i = 1; i < n; i++) {
    const r = list[i]!;
    let j = i - 1;
    while (j >= 0 && list[j]!.index > r.index) {
      list[j + 1] = list[j]!;
      j--;
    }
    list[j + 1] = r;
  }
}

function bucket(items: readonly Indexed[], index: boolean, action: string | undefined): Bucket {
  const vi = new ValueIndex(items, index, action);
  return { index: vi, rules: vi.rest.filter((r): r is CompiledRule => !isCorrelation(r)), correlations: vi.rest.filter(isCorrelation) };
}

function bucketed<T extends { info: RuleInfo }>(items: readonly T[], index: boolean): { byAction: Map<string, T[]>; any: T[] } {
  if (!index) return { byAction: new Map(), any: [...items] };
  const any = items.filter((r) => r.info.actions === null);
  const actions = new Set(items.flatMap((r) => r.info.actions ?? []));
  const byAction = new Map<string, T[]>();
  // Each bucket keeps definition order: matches come out in the order rules were written.
  for (const action of actions) byAction.set(action, items.filter((r) => r.info.actions === null || r.info.actions.includes(action)));
  return { byAction, any };
}

export class RuleSet {
  /** Every loaded rule, enabled or not, in definition order. */
  readonly rules: readonly RuleInfo[];
  private readonly stateless: readonly CompiledRule[];
  private readonly correlations: readonly CompiledCorrelation[];
  private readonly byAction: Map<string, Bucket>;
  private readonly anyAction: Bucket;
  private readonly epochs: Float64Array;
  /** The rules the value index finds for the current event (reused: `match` is not re-entered). */
  private readonly found: Indexed[] = [];
  /** ... and the correlation rules among them. */
  private readonly foundCorrelations: CompiledCorrelation[] = [];
  private epoch = 0;

  /** @param correlations in dependency order: a rule comes after the rules its steps use. */
  constructor(stateless: readonly CompiledRule[], correlations: readonly CompiledCorrelation[], all: readonly RuleInfo[], index = true) {
    this.rules = all;
    this.stateless = stateless;
    this.correlations = correlations;
    // A disabled rule that a correlation uses is still evaluated for it (it raises no alert):
    // turning off `ssh_brute_force` must not turn off `ssh_brute_force_then_success` unseen.
    const live: Indexed[] = [...stateless, ...correlations].filter((r) => r.info.enabled || r.referenced);
    const s = bucketed(live, index);
    this.byAction = new Map([...s.byAction].map(([action, rules]) => [action, bucket(rules, index, action)]));
    this.anyAction = bucket(s.any, index, undefined);
    this.epochs = new Float64Array(stateless.length + correlations.length);
  }

  /** The rules that matched the event, exceptions applied; disabled rules raise no match (those a correlation uses are still tested for it). */
  match(event: EventRecord): readonly Match[] {
    nextEvent();
    const meta = event['event'] as { action?: unknown } | undefined;
    const action = typeof meta?.action === 'string' ? meta.action : '';
    const epoch = ++this.epoch;
    const bucket = this.byAction.get(action) ?? this.anyAction;
    // Rules are tested in any order (predicates have no side effects); matches are put back in
    // definition order below.
    let hits: CompiledRule[] | undefined;
    const rest = bucket.rules;
    for (let i = 0; i < rest.length; i++) {
      const r = rest[i]!;
      if (this.test(r, event, epoch)) (hits ??= []).push(r);
    }
    // Buffers reused from event to event, read up to their counts (what lies past is stale).
    const found = this.found;
    const foundCorrelations = this.foundCorrelations;
    const count = bucket.index.collect(event, found, 0);
    let correlationCount = 0;
    for (let i = 0; i < count; i++) {
      const r = found[i]!;
      if (isCorrelation(r)) foundCorrelations[correlationCount++] = r;
      else if (this.test(r, event, epoch)) (hits ??= []).push(r);
    }
    let out: Match[] | undefined;
    if (hits !== undefined) {
      if (hits.length > 1) sortByIndex(hits, hits.length);
      out = hits.map((r) => ({ rule: r.info, output: r.output.render(event), severity: r.info.severity, tags: r.info.tags, event }));
    }
    const corrRest = bucket.correlations;
    if (corrRest.length > 0 || correlationCount > 0) {
      // After every stateless rule, in index order (a correlation's steps may use the rules
      // before it): the rest and those the index found, merged.
      if (correlationCount > 1) sortByIndex(foundCorrelations, correlationCount);
      let a = 0;
      let b = 0;
      while (a < corrRest.length || b < correlationCount) {
        const c = b >= correlationCount || (a < corrRest.length && corrRest[a]!.index < foundCorrelations[b]!.index) ? corrRest[a++]! : foundCorrelations[b++]!;
        c.evaluations++;
        const hit = c.correlator.observe(event, epoch, this.epochs);
        if (!hit) continue;
        c.matches++;
        if (c.referenced) this.epochs[c.index] = epoch;
        if (c.info.alert && c.info.enabled) {
          // The agent a host's groups are kept under (loader.ts keyOf) is not part of the key as shown.
          const key = shownKey(hit.key);
          const shown = key === hit.key ? hit : { ...hit, key };
          const output = c.output.render(event, { 'correlation.count': shown.count, 'correlation.key': shown.key.split('\u0000').join(', ') });
          (out ??= []).push({ rule: c.info, output, severity: c.info.severity, tags: c.info.tags, event, correlation: shown });
        }
      }
    }
    return out ?? NO_MATCHES;
  }

  /** Tests one stateless rule (counters, exceptions, correlation marks); true for a match that alerts. */
  private test(r: CompiledRule, event: EventRecord, epoch: number): boolean {
    r.evaluations++;
    if (!r.predicate(event)) return false;
    if (r.exceptions !== null && r.exceptions(event)) {
      r.suppressed++;
      return false;
    }
    r.matches++;
    if (r.referenced) this.epochs[r.index] = epoch;
    return r.info.alert && r.info.enabled;
  }

  /**
   * What the indexes select for an event: the rules whose condition `match(event)` evaluates
   * (stateless predicates and correlation steps alike, the ones counted by `stats().evaluations`),
   * in definition order. Nothing is evaluated and no counter or state changes; `match` does not
   * call it. For tests and tools that check what the index costs, not for the event path.
   */
  candidates(event: EventRecord): RuleInfo[] {
    nextEvent();
    const meta = event['event'] as { action?: unknown } | undefined;
    const bucket = this.byAction.get(typeof meta?.action === 'string' ? meta.action : '') ?? this.anyAction;
    const found: Indexed[] = [...bucket.rules, ...bucket.correlations];
    bucket.index.collect(event, found, found.length);
    return found.sort(byIndex).map((r) => r.info);
  }

  /**
   * The rules evaluated on every event of an action, whatever its values: those the value index
   * files under no value it reads (an unknown action's events get the rules for any action).
   */
  unindexed(action: string): RuleInfo[] {
    const bucket = this.byAction.get(action) ?? this.anyAction;
    return [...bucket.rules, ...bucket.correlations].sort(byIndex).map((r) => r.info);
  }

  /** Drops correlation state whose window ended before `now` (ms since the epoch, event time). */
  expire(now: number): void {
    for (const c of this.correlations) c.correlator.expire(now);
  }

  /**
   * For a pipeline's timer, which knows only the wall clock: drops the state whose window ended
   * more than LATE_EVENTS_MS before `wallNow`. Windows are in event time, and a host that was
   * cut off delivers its backlog late: its events still correlate with each other across
   * batches for that long after their time (state stays bounded by `maxKeysPerRule`). From then
   * on, an event dated more than AHEAD_MS past `wallNow` is taken as dated that far (Correlator.clock).
   */
  expireIdle(wallNow: number): void {
    this.expire(wallNow - LATE_EVENTS_MS);
    // An event dated past the clock (a compromised agent's, or a clock far ahead) must not hold a
    // group's window in the future: in a group of the fleet (by source.ip), every other host's
    // events would then be too late to count.
    for (const c of this.correlations) c.correlator.clock(wallNow);
  }

  /** Per-rule counters: evaluations, matches, suppressions, correlation state. */
  stats(): RuleStats[] {
    return [
      ...this.stateless.map((r) => ({ id: r.info.id, evaluations: r.evaluations, matches: r.matches, suppressed: r.suppressed })),
      ...this.correlations.map((c) => ({ id: c.info.id, evaluations: c.evaluations, matches: c.matches, suppressed: 0, correlation: { ...c.correlator.stats } })),
    ];
  }

  /** Correlation state over every rule: groups held, evicted, expired. */
  correlationStats(): CorrelationStats {
    const total: CorrelationStats = { keys: 0, evicted: 0, expired: 0, untimed: 0, ahead: 0, fired: 0, limited: 0 };
    for (const c of this.correlations) {
      const s = c.correlator.stats;
      total.keys += s.keys;
      total.evicted += s.evicted;
      total.expired += s.expired;
      total.untimed += s.untimed;
      total.ahead += s.ahead;
      total.limited += s.limited;
      total.fired += s.fired;
    }
    return total;
  }

  rule(id: string): RuleInfo | undefined {
    return this.rules.find((r) => r.id === id);
  }
}
