/**
 * Correlation: rules over several events, with state that is bounded and expires.
 *
 * Two shapes cover what Hades and Sigma correlations need (docs/rules.md maps Sigma's
 * event_count, value_count, temporal and temporal_ordered onto them):
 * - a sequence: steps that must all match, in order or not, within a window, for one group key
 *   (the same host, the same source address, the same process tree...);
 * - a threshold: at least N matching events, or N distinct values of a field, within a window,
 *   for one group key.
 * A step is either a condition or "rule X matched this event", which lets a correlation build
 * on other rules, correlation rules included (Sigma's chained correlations).
 *
 * Time is the events' `@timestamp`, never the wall clock, so replaying a capture gives the
 * same alerts and tests need no clock. Windows slide: a sequence fires when its last step comes
 * within `within` of its first; a threshold when the events (or values) seen in the last
 * `within` reach the count. After firing, the group's state is cleared, so one burst gives one
 * alert. State is kept per rule in a map bounded by `maxKeys`, least recently touched first out
 * (counted as evicted), and groups whose window has passed are removed as time advances
 * (counted as expired).
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { timestampMs } from '../common/events/fields.js';
import type { EventRecord, Predicate } from './accessor.js';

/** Decides whether an event counts for a step: a condition, or a rule that matched it. */
export interface StepMatcher {
  /** `epochs[i] === epoch` when rule i matched the current event. */
  (event: EventRecord, epoch: number, epochs: Float64Array): boolean;
}

export function conditionStep(p: Predicate): StepMatcher {
  return (e) => p(e);
}

export function ruleStep(index: number): StepMatcher {
  return (_e, epoch, epochs) => epochs[index] === epoch;
}

/** The group key of an event, or undefined when it lacks a grouping field. */
export type KeyOf = (event: EventRecord) => string | undefined;

/**
 * Keys under which a later step finds the group of a process tree: the event's own process and
 * each of its ancestors (with the other grouping values in front).
 */
export type TreeKeysOf = (event: EventRecord) => string[];

export interface CorrelationStats {
  /** Groups with state now. */
  keys: number;
  /** Groups dropped because the rule had maxKeys groups (least recently touched first). */
  evicted: number;
  /** Groups dropped because the agent whose event opened them held its share of the rule's groups (its own least recently touched first). */
  limited: number;
  /** Groups dropped because their window had passed. */
  expired: number;
  /** Events that matched a step but had no usable @timestamp. */
  untimed: number;
  /** Events dated more than AHEAD_MS past the clock a pipeline gives (`Correlator.clock`): taken at that bound. */
  ahead: number;
  /** Times the rule fired. */
  fired: number;
}

export interface CorrelationHit {
  readonly key: string;
  readonly count: number;
  /** Ids of the events that made the hit, oldest first (sequences: one per step; thresholds: the last 16). */
  readonly events: readonly string[];
  /** Distinct values counted (thresholds with `distinct`). */
  readonly values?: readonly string[];
  readonly first: number;
  readonly last: number;
}

export interface SequenceSpec {
  readonly kind: 'sequence';
  readonly ordered: boolean;
  readonly withinMs: number;
  readonly steps: readonly { readonly matches: StepMatcher; readonly key: KeyOf }[];
  /** Grouping by process tree: step 1 opens the group of its process; later steps find it by lineage. */
  readonly tree?: TreeKeysOf;
  /**
   * With `tree`: the ids of the processes behind the keys, as the event holds them (its own id
   * first, then its parent's and its ancestors'), read without building a key, so that an event
   * under no process with a group is passed over at the cost of a few lookups.
   */
  readonly treeIds?: (event: EventRecord) => readonly unknown[];
}

export interface ThresholdSpec {
  readonly kind: 'threshold';
  readonly withinMs: number;
  readonly count: number;
  readonly matches: StepMatcher;
  readonly key: KeyOf;
  readonly distinct?: (event: EventRecord) => unknown[];
}

export type CorrelationSpec = SequenceSpec | ThresholdSpec;

export const DEFAULT_MAX_KEYS = 10_000;
/** The share of a rule's groups one agent (`agent.id`) may hold, and its floor. */
export const AGENT_SHARE = 0.1;
export const AGENT_SHARE_MIN = 100;
/**
 * Event times and distinct values a threshold rule keeps over all its groups: a group keeps up
 * to `count` of them (up to 100,000), so maxKeys alone would let one rule hold a billion. Past it
 * the least recently touched groups go, counted as evicted.
 */
export const DEFAULT_MAX_ENTRIES = 250_000;
/**
 * A distinct value counts as one entry per VALUE_CHARS characters (one at least): the values are
 * the events' own text (a command line is up to 64 KiB), and 250,000 of them counted one each
 * would let one rule hold gigabytes.
 */
export const VALUE_CHARS = 256;
/** Expired groups removed per event at most: the cost of expiry stays small and steady. */
const SWEEP_PER_EVENT = 4;
/**
 * How far past the wall clock (as a pipeline's timer last gave it, every few seconds) an event's
 * time is taken as it is: nothing happens in the future, and one event dated years ahead would
 * otherwise hold a group's window there, every later event of it too late to count.
 */
export const AHEAD_MS = 10_000;
const MAX_EVENT_IDS = 16;

interface Group {
  /** When the group's newest partial state stops mattering. */
  expiresAt: number;
  /** The `agent.id` of the event that opened it ('' for none), whose share of the groups it counts against. */
  agent: string;
  /** Bumped each time the group moves to the most recently touched end (Correlator.touch). */
  touched: number;
}

interface SequenceGroup extends Group {
  /** Grouped by process tree: the id of the process whose first step opened the group (Correlator.openIds). */
  owner?: unknown;
  /** Ordered: the latest start of a partial run that has reached step i (NaN: none). Unordered: when step i last matched. */
  readonly starts: Float64Array;
  /** Ordered: when the run at step i reached it. */
  readonly times: Float64Array;
  readonly ids: (readonly string[])[];
  /** Unordered: the steps that the event holding step i matched (it may move to another of them to make room). */
  readonly could?: (readonly number[] | undefined)[];
}

interface ThresholdGroup extends Group {
  /**
   * Counts: the timestamps in the window, oldest first, from `head` on (at most `count`; those
   * before `head` are dropped, and compacted away once they are half the array), and the ids of
   * the newest MAX_EVENT_IDS of them (`recent`, oldest first), which is all a hit reports.
   */
  times: number[];
  head: number;
  readonly recent: { t: number; id: string }[];
  /** Distinct counts: value -> when and in which event it was last seen, oldest first. */
  readonly values: Map<string, { t: number; id: string }> | undefined;
  /** Distinct counts: the entries the values count for (valueEntries of each). */
  held: number;
}

/** The entries a distinct value counts for: one per VALUE_CHARS characters, one at least. */
function valueEntries(value: string): number {
  return value.length <= VALUE_CHARS ? 1 : Math.ceil(value.length / VALUE_CHARS);
}

function eventTime(e: EventRecord): number {
  const t = e['@timestamp'];
  if (typeof t !== 'string') return NaN;
  // The events' own form (UTC, Z) read by hand, a tenth of Date.parse's cost; any other form
  // (an offset, fewer fields) as Date.parse reads it.
  const ms = timestampMs(t);
  return Number.isNaN(ms) ? Date.parse(t) : ms;
}

/** The agent an event came from (`agent.id`, set by the server from the certificate); '' for none: one host's events, offline or on the agent. */
export function agentOf(e: EventRecord): string {
  const agent = (e['agent'] as { id?: unknown } | undefined)?.id;
  return typeof agent === 'string' ? agent : '';
}

/** Between the agent a host-scoped group is kept under and the grouping values, in its key. */
const SCOPE = '\u0001';

/**
 * The longest group key kept as it is: a rule may group by a field of the event's own text (a
 * command line, up to 64 KiB), and 10,000 such keys would hold 640 MiB for one rule.
 */
export const MAX_KEY_CHARS = 1024;
/** What a longer key keeps of its start, to be read in an alert's `correlation.key`. */
const KEY_HEAD_CHARS = 256;

/** A group key at most about MAX_KEY_CHARS long: a longer one is its start and the SHA-256 of its UTF-16 code units (distinct keys stay distinct). */
export function boundedKey(key: string): string {
  if (key.length <= MAX_KEY_CHARS) return key;
  // Hashed as UTF-16 code units: a byte that is not UTF-8 (kept as a lone surrogate) stays itself,
  // where UTF-8 would make every such byte U+FFFD, alike.
  const units = new Uint16Array(key.length);
  for (let i = 0; i < key.length; i++) units[i] = key.charCodeAt(i);
  return `${key.slice(0, KEY_HEAD_CHARS)}\u2026sha256:${bytesToHex(sha256(new Uint8Array(units.buffer)))}`;
}

/** The key of a group kept apart per agent (a rule grouped by host): the event's agent, then the grouping values. */
export function scopedKey(event: EventRecord, values: string): string {
  return `${agentOf(event)}${SCOPE}${values}`;
}

/** A group's key as shown (an alert's `correlation.key`): without the agent it is kept under, if any. */
export function shownKey(key: string): string {
  const scope = key.indexOf(SCOPE);
  // A \u0001 after the first value's separator is within a value, not the scope's.
  return scope === -1 || key.lastIndexOf('\u0000', scope) !== -1 ? key : key.slice(scope + 1);
}

function eventId(e: EventRecord): string {
  const ev = e['event'] as { id?: unknown } | undefined;
  return typeof ev?.id === 'string' ? ev.id : '';
}

/** One correlation rule's state and logic. */
export class Correlator {
  private readonly groups = new Map<string, Group>();
  readonly stats: CorrelationStats = { keys: 0, evicted: 0, expired: 0, untimed: 0, ahead: 0, fired: 0, limited: 0 };
  /**
   * The groups each agent (`agent.id`) opened, least recently touched first: one agent holds at
   * most agentShare of them, so that its flood of groups (10,000 values in one batch) drops its
   * own oldest, not the partial detections of every other host.
   */
  private readonly byAgent = new Map<string, Map<string, Group>>();
  private readonly agentShare: number;

  /** Times and distinct values held by the threshold groups (entriesOf), bounded by maxEntries. */
  private entries = 0;

  /**
   * The least recently touched group, found by a live iterator that goes on from where it
   * stopped (see `oldest`): the groups before it have been dropped, or touched since and moved
   * behind it. Iterating from the start of the Map at each event would step over every entry
   * deleted since the Map last rehashed, hundreds when groups come and go at each event.
   */
  private cursor: Iterator<[string, Group]> | undefined;
  private oldestKey = '';
  private oldestGroup: Group | undefined;
  private oldestTouched = 0;
  private touches = 0;
  /** Grouped by process tree: how many groups each process opened (their owner), to pass over an event under none. */
  private readonly openIds = new Map<unknown, number>();
  /** The match epoch whose event's process tree keys treeKeys holds (stepKeys), and whose process ids treeIds holds (idsOf). */
  private keysEpoch = -1;
  private treeKeys: readonly (string | undefined)[] = [];
  private idsEpoch = -1;
  private treeIds: readonly unknown[] = [];
  /** The latest event time taken as it is (`clock`); Infinity without a clock (a replay, a test). */
  private horizon = Infinity;

  constructor(
    readonly spec: CorrelationSpec,
    private readonly maxKeys = DEFAULT_MAX_KEYS,
    private readonly maxEntries = DEFAULT_MAX_ENTRIES,
  ) {
    this.agentShare = Math.max(AGENT_SHARE_MIN, Math.floor(maxKeys * AGENT_SHARE));
  }

  /** What a group holds that grows with its rule's count (a sequence group holds a fixed few). */
  private static entriesOf(group: Group): number {
    if (!('recent' in group)) return 0;
    const g = group as ThresholdGroup;
    return g.values ? g.held : g.times.length;
  }

  /** Removes a group, keeping the count of entries right. */
  private drop(key: string, group: Group): void {
    this.groups.delete(key);
    this.entries -= Correlator.entriesOf(group);
    this.closed(key, group);
  }

  /** A group is gone: its agent and its process tree's owner have one group fewer. */
  private closed(key: string, group: Group): void {
    if (group.agent !== '') {
      const own = this.byAgent.get(group.agent);
      if (own?.get(key) === group) own.delete(key);
      if (own?.size === 0) this.byAgent.delete(group.agent);
    }
    const owner = (group as SequenceGroup).owner;
    if (owner === undefined) return;
    const n = this.openIds.get(owner) ?? 0;
    if (n <= 1) this.openIds.delete(owner);
    else this.openIds.set(owner, n - 1);
  }

  /**
   * Feeds one event; returns a hit when the correlation completes with it. `epoch` is the rule
   * set's match counter: it differs from one event to the next (what is computed for an event is
   * kept under it), and `epochs` holds the epoch at which each rule last matched.
   */
  observe(event: EventRecord, epoch: number, epochs: Float64Array): CorrelationHit | undefined {
    const spec = this.spec;
    let hit: CorrelationHit | undefined;
    if (spec.kind === 'threshold') {
      if (!spec.matches(event, epoch, epochs)) return undefined;
      const t = this.time(event);
      if (t === undefined) return undefined;
      const key = spec.key(event);
      if (key !== undefined) hit = this.threshold(spec, event, key, t);
      this.sweep(t);
    } else {
      let matched: number[] | undefined;
      for (let i = 0; i < spec.steps.length; i++) {
        // A later step of an ordered sequence only advances a group that has reached the step
        // before it: with none waiting under this event's keys, its condition (often the
        // costlier, a shell and its arguments) is not evaluated at all.
        if (i > 0 && spec.ordered && !this.waiting(spec, event, epoch, i)) continue;
        if (spec.steps[i]!.matches(event, epoch, epochs)) (matched ??= []).push(i);
      }
      if (!matched) return undefined;
      const t = this.time(event);
      if (t === undefined) return undefined;
      hit = spec.ordered ? this.ordered(spec, event, epoch, matched, t) : this.unordered(spec, event, matched, t);
      this.sweep(t);
    }
    this.stats.keys = this.groups.size;
    if (hit) this.stats.fired++;
    return hit;
  }

  /** Removes every group whose window ended before `now` (ms), e.g. from a periodic timer. */
  expire(now: number): void {
    for (const [key, group] of this.groups) {
      if (group.expiresAt >= now) continue;
      this.drop(key, group);
      this.stats.expired++;
    }
    this.stats.keys = this.groups.size;
  }

  /**
   * Gives the wall clock (ms): from then on an event dated more than AHEAD_MS past it is taken at
   * that bound (counted as `ahead`), and the groups whose window lies wholly past it (opened before
   * the correlator knew the clock) are dropped, counted as expired.
   */
  clock(wallNow: number): void {
    this.horizon = wallNow + AHEAD_MS;
    for (const [key, group] of this.groups) {
      if (group.expiresAt - this.spec.withinMs <= this.horizon) continue;
      this.drop(key, group);
      this.stats.expired++;
    }
    this.stats.keys = this.groups.size;
  }

  private time(event: EventRecord): number | undefined {
    const t = eventTime(event);
    if (Number.isNaN(t)) {
      this.stats.untimed++;
      return undefined;
    }
    if (t > this.horizon) {
      this.stats.ahead++;
      return this.horizon;
    }
    return t;
  }

  /**
   * Drops a few groups whose window ended before `now` (the current event's time), from the
   * least recently touched end of the map. Relative to each event rather than to the newest
   * time ever seen: one event from a host whose clock is years ahead then costs a few groups,
   * instead of blinding the rule for good.
   */
  private sweep(now: number): void {
    for (let n = 0; n < SWEEP_PER_EVENT; n++) {
      const group = this.oldest();
      if (group === undefined || group.expiresAt >= now) break;
      this.drop(this.oldestKey, group);
      this.stats.expired++;
    }
  }

  /**
   * The least recently touched group (its key in `oldestKey`), or undefined when there is none.
   * The group the cursor last stopped at is still the oldest unless it was dropped or touched
   * since (then it is further on, where the cursor will meet it again).
   */
  private oldest(): Group | undefined {
    for (;;) {
      const held = this.oldestGroup;
      if (held !== undefined && held.touched === this.oldestTouched && this.groups.get(this.oldestKey) === held) return held;
      this.oldestGroup = undefined;
      this.cursor ??= this.groups.entries();
      const next = this.cursor.next();
      if (next.done === true) {
        // Every group was met: the Map is empty (a group touched is met again at the end).
        this.cursor = undefined;
        return undefined;
      }
      [this.oldestKey, this.oldestGroup] = next.value;
      this.oldestTouched = next.value[1].touched;
    }
  }

  /** Marks a group most recently used (Map order is the LRU order), evicting when full. */
  private touch(key: string, group: Group, isNew: boolean): void {
    let own: Map<string, Group> | undefined;
    if (group.agent !== '') {
      own = this.byAgent.get(group.agent);
      if (own === undefined) this.byAgent.set(group.agent, (own = new Map<string, Group>()));
    }
    if (isNew) {
      while (own !== undefined && own.size >= this.agentShare) {
        const [oldKey, oldGroup] = own.entries().next().value as [string, Group];
        this.drop(oldKey, oldGroup);
        this.stats.limited++;
      }
      while (this.groups.size >= this.maxKeys) {
        const oldest = this.oldest();
        if (oldest === undefined) break;
        this.drop(this.oldestKey, oldest);
        this.stats.evicted++;
      }
    } else {
      this.groups.delete(key);
      own?.delete(key);
    }
    own?.set(key, group);
    group.touched = ++this.touches;
    this.groups.set(key, group);
    // Over the budget of entries: the least recently touched groups go (never this one).
    while (this.entries > this.maxEntries && this.groups.size > 1) {
      const oldest = this.oldest();
      if (oldest === undefined || oldest === group) break;
      this.drop(this.oldestKey, oldest);
      this.stats.evicted++;
    }
  }

  private threshold(spec: ThresholdSpec, event: EventRecord, key: string, t: number): CorrelationHit | undefined {
    const found = this.groups.get(key) as ThresholdGroup | undefined;
    const isNew = found === undefined;
    const before = found ? Correlator.entriesOf(found) : 0;
    const g: ThresholdGroup = found ?? { expiresAt: t, agent: agentOf(event), touched: 0, times: [], head: 0, recent: [], values: spec.distinct ? new Map() : undefined, held: 0 };
    // Streams merged from many hosts arrive slightly out of order: the window ends at the newest
    // time the group has seen, and an event older than the window is too late to count.
    const newest = Math.max(t, g.expiresAt - spec.withinMs);
    const since = newest - spec.withinMs;
    if (t < since) return undefined;
    const id = eventId(event);
    let size: number;
    if (g.values) {
      let moved = false;
      for (const v of spec.distinct!(event)) {
        const s = typeof v === 'string' ? v : JSON.stringify(v);
        const seen = g.values.get(s);
        if (seen && seen.t >= t) continue;
        if (!seen) g.held += valueEntries(s);
        g.values.delete(s); // re-inserted: the Map's order is then oldest-seen first
        g.values.set(s, { t, id });
        moved = true;
      }
      // A late event's values went in after newer ones: put the Map back in order of time, or
      // the sweep below would stop at a newer value and keep them past the window.
      if (moved && t < newest) {
        const sorted = [...g.values].sort((a, b) => a[1].t - b[1].t);
        g.values.clear();
        for (const [v, seen] of sorted) g.values.set(v, seen);
      }
      for (const [v, seen] of g.values) {
        if (seen.t >= since) break;
        g.values.delete(v);
        g.held -= valueEntries(v);
      }
      size = g.values.size;
    } else {
      // Sorted insertion, from the end: in order, it is a push.
      let at = g.times.length;
      while (at > g.head && g.times[at - 1]! > t) at--;
      if (at === g.times.length) g.times.push(t);
      else g.times.splice(at, 0, t);
      // Dropped from the front by moving `head` (a splice would move up to `count` times per event).
      while (g.head < g.times.length && g.times[g.head]! < since) g.head++;
      // Only the newest `count` events can ever matter.
      g.head = Math.max(g.head, g.times.length - spec.count);
      if (g.head > 64 && g.head * 2 > g.times.length) {
        g.times = g.times.slice(g.head);
        g.head = 0;
      }
      size = g.times.length - g.head;
      // The ids of the newest events, in the same order (after equal times, like the insertion above).
      const keep = Math.min(MAX_EVENT_IDS, spec.count);
      let r = g.recent.length;
      while (r > 0 && g.recent[r - 1]!.t > t) r--;
      if (r > 0 || g.recent.length < keep) g.recent.splice(r, 0, { t, id });
      while (g.recent.length > keep || (g.recent.length > 0 && g.recent[0]!.t < since)) g.recent.shift();
    }
    g.expiresAt = newest + spec.withinMs;
    this.entries += Correlator.entriesOf(g) - before;
    if (size >= spec.count) {
      this.drop(key, g);
      if (g.values) {
        const seen = [...g.values.values()];
        // An event that brought several values (a field of several, such as process.args) is named once.
        const events = [...new Set(seen.map((x) => x.id))];
        return { key, count: size, events: events.slice(-MAX_EVENT_IDS), values: [...g.values.keys()], first: seen[0]!.t, last: newest };
      }
      return { key, count: size, events: g.recent.map((x) => x.id), first: g.times[g.head]!, last: newest };
    }
    // A group that alone holds more than the rule may (long distinct values) goes too: the
    // budget bounds the rule's memory, which evicting only the other groups would not.
    if (Correlator.entriesOf(g) > this.maxEntries) {
      this.drop(key, g);
      this.stats.evicted++;
      return undefined;
    }
    this.touch(key, g, isNew);
    return undefined;
  }

  /** The event's keys for a later step (every key of its process tree, or the step's own); a tree's computed once per event (match epoch). */
  private stepKeys(spec: SequenceSpec, event: EventRecord, epoch: number, i: number): readonly (string | undefined)[] {
    if (spec.tree === undefined) return [spec.steps[i]!.key(event)];
    if (this.keysEpoch !== epoch) {
      this.keysEpoch = epoch;
      this.treeKeys = spec.tree(event);
    }
    return this.treeKeys;
  }

  /** The ids of the event's process and its ancestors (spec.treeIds), read once per event (match epoch). */
  private idsOf(treeIds: (event: EventRecord) => readonly unknown[], event: EventRecord, epoch: number): readonly unknown[] {
    if (this.idsEpoch !== epoch) {
      this.idsEpoch = epoch;
      this.treeIds = treeIds(event);
    }
    return this.treeIds;
  }

  /** Some group under the event's keys has reached step i - 1 (its window is checked later, with the event's time). */
  private waiting(spec: SequenceSpec, event: EventRecord, epoch: number, i: number): boolean {
    if (this.groups.size === 0) return false;
    if (spec.treeIds !== undefined && !this.idsOf(spec.treeIds, event, epoch).some((id) => this.openIds.has(id))) return false;
    for (const key of this.stepKeys(spec, event, epoch, i)) {
      if (key === undefined) continue;
      const g = this.groups.get(key) as SequenceGroup | undefined;
      if (g !== undefined && !Number.isNaN(g.starts[i - 1]!)) return true;
    }
    return false;
  }

  private newSequenceGroup(n: number, agent: string): SequenceGroup {
    return { expiresAt: -Infinity, agent, touched: 0, starts: new Float64Array(n).fill(NaN), times: new Float64Array(n).fill(NaN), ids: new Array<readonly string[]>(n).fill([]) };
  }

  private ordered(spec: SequenceSpec, event: EventRecord, epoch: number, matched: number[], t: number): CorrelationHit | undefined {
    const n = spec.steps.length;
    const id = eventId(event);
    // Latest step first, so that one event never advances a run by two steps.
    for (let m = matched.length - 1; m >= 0; m--) {
      const i = matched[m]!;
      if (i === 0) {
        const key = spec.steps[0]!.key(event);
        if (key === undefined) continue;
        let g = this.groups.get(key) as SequenceGroup | undefined;
        const isNew = g === undefined;
        if (g === undefined) {
          g = this.newSequenceGroup(n, agentOf(event));
          if (spec.treeIds !== undefined) {
            const owner = this.idsOf(spec.treeIds, event, epoch)[0];
            g.owner = owner;
            this.openIds.set(owner, (this.openIds.get(owner) ?? 0) + 1);
          }
        }
        // The latest start: a first step older than the one held (arriving late) would only shorten the time left.
        if (!(g.starts[0]! > t)) {
          g.starts[0] = t;
          g.times[0] = t;
          g.ids[0] = [id];
        }
        g.expiresAt = Math.max(g.expiresAt, t + spec.withinMs);
        this.touch(key, g, isNew);
        continue;
      }
      for (const key of this.stepKeys(spec, event, epoch, i)) {
        if (key === undefined) continue;
        const g = this.groups.get(key) as SequenceGroup | undefined;
        if (!g) continue;
        const start = g.starts[i - 1]!;
        // The previous step must have been reached, not later than this event, within the window.
        if (Number.isNaN(start) || t < g.times[i - 1]! || t - start > spec.withinMs) continue;
        const ids = [...g.ids[i - 1]!, id];
        if (i === n - 1) {
          this.groups.delete(key);
          this.closed(key, g);
          return { key, count: n, events: ids, first: start, last: t };
        }
        g.starts[i] = start;
        g.times[i] = t;
        g.ids[i] = ids;
        this.touch(key, g, false);
      }
    }
    return undefined;
  }

  private unordered(spec: SequenceSpec, event: EventRecord, matched: number[], t: number): CorrelationHit | undefined {
    const n = spec.steps.length;
    const id = eventId(event);
    // The steps matched, by group (steps may group by fields of their own): one event holds one
    // step of a group, as in Sigma's temporal correlation, so that a command line that matches
    // two rules does not complete a sequence alone.
    const byKey = new Map<string, number[]>();
    for (const i of matched) {
      const key = spec.steps[i]!.key(event);
      if (key === undefined) continue;
      const steps = byKey.get(key);
      if (steps === undefined) byKey.set(key, [i]);
      else steps.push(i);
    }
    for (const [key, steps] of byKey) {
      let g = this.groups.get(key) as SequenceGroup | undefined;
      const isNew = g === undefined;
      g ??= { ...this.newSequenceGroup(n, agentOf(event)), could: new Array<readonly number[] | undefined>(n).fill(undefined) };
      holdStep(g, steps, t, id);
      g.expiresAt = Math.max(g.expiresAt, t + spec.withinMs);
      // Complete when every step has a time and all of them fit in one window (events that
      // arrive out of order may lie on both sides of the current one).
      let complete = true;
      let first = Infinity;
      let last = -Infinity;
      for (let k = 0; k < n; k++) {
        const s = g.starts[k]!;
        if (Number.isNaN(s)) {
          complete = false;
          break;
        }
        if (s < first) first = s;
        if (s > last) last = s;
      }
      if (complete && last - first <= spec.withinMs) {
        this.groups.delete(key);
        this.closed(key, g);
        const held = g;
        const order = [...held.starts.keys()].sort((a, b) => held.starts[a]! - held.starts[b]!);
        return { key, count: n, events: order.map((k) => held.ids[k]![0] ?? ''), first, last };
      }
      this.touch(key, g, isNew);
    }
    return undefined;
  }
}

/**
 * Gives one of `steps` (those an event matched) to the event: a free one, or one freed by moving
 * the event that holds it to another step it matched (an augmenting path, as in bipartite
 * matching: steps are at most 16); when every one is held for good, the one held longest is
 * taken over, unless the event is older than its holder (a late event changes nothing then).
 */
function holdStep(g: SequenceGroup, steps: readonly number[], t: number, id: string): void {
  const could = g.could!;
  const set = (i: number, time: number, ids: readonly string[], matched: readonly number[]) => {
    g.starts[i] = time;
    g.ids[i] = ids;
    could[i] = matched;
  };
  const visited = new Set<number>();
  const free = (wanted: readonly number[]): number | undefined => {
    for (const i of wanted) if (Number.isNaN(g.starts[i]!)) return i;
    for (const i of wanted) {
      if (visited.has(i)) continue;
      visited.add(i);
      const holder = could[i];
      if (holder === undefined) continue;
      const to = free(holder.filter((k) => k !== i));
      if (to !== undefined) {
        set(to, g.starts[i]!, g.ids[i]!, holder);
        return i;
      }
    }
    return undefined;
  };
  const step = free(steps);
  if (step !== undefined) {
    set(step, t, [id], steps);
    return;
  }
  let oldest = steps[0]!;
  for (const i of steps) if (g.starts[i]! < g.starts[oldest]!) oldest = i;
  if (!(g.starts[oldest]! > t)) set(oldest, t, [id], steps);
}
