/**
 * The value index, under the index by action: the rules that require a value of the event (key
 * clauses, compile.ts: `process.name in shells`, `process.executable iendswith /whoami`,
 * `process.command_line icontains "base64 -d"`) are filed under those values, so that an event
 * is tested only against the rules filed under the values it holds, plus the rules that require
 * none (the rest).
 *
 * A source is a field read in one form (`process.name`, the lower-cased file name of
 * `process.executable`, the lower-cased command line, ...) and matched one way: `equals` sources
 * cost one Map lookup per event, `contains` sources one pass over the text with an automaton
 * that finds all their strings at once (needles.ts). Sources are chosen by a cost model (what
 * reading them costs against the evaluations they save), and each rule is filed by the
 * narrowest of its clauses whose sources are all chosen: under every value of every term of
 * that clause.
 */
import type { EventRecord, Getter } from './accessor.js';
import { ACTION_SOURCE, clauseWidth, type KeyClause, type KeyMatch, type KeyTerm } from './compile.js';
import { NeedleScanner } from './needles.js';

/** What the index needs of a rule. */
export interface Keyed {
  /** Unique among the rules indexed together, from 0 (the rule's definition order). */
  readonly index: number;
  readonly keys: readonly KeyClause[];
}

interface EqualsSource<T> {
  readonly match: 'equals';
  readonly name: string;
  readonly read: Getter;
  readonly byValue: ReadonlyMap<unknown, readonly T[]>;
}

interface ContainsSource<T> {
  readonly match: 'contains';
  readonly name: string;
  readonly read: Getter;
  readonly scanner: NeedleScanner;
  /** The rules filed under each needle, by the scanner's needle id. */
  readonly byNeedle: readonly (readonly T[])[];
}

export type IndexSource<T> = EqualsSource<T> | ContainsSource<T>;

/**
 * The cost model by which sources are chosen and clauses picked, in units of about 1/64 of a
 * rule's evaluation: a rule in the rest is evaluated on every event (64); a rule filed under a
 * value is evaluated on the events that hold one of its values, guessed at 1 in 64 per value
 * for an equality, more for a string searched for, the more so the shorter it is; reading a
 * source costs a fraction of an evaluation for a Map lookup, one or two for a scan of the text.
 */
const REST_WIDTH = 64;
const EQUALS_SOURCE_COST = 16;
const CONTAINS_SOURCE_COST = 96;

/** How many events a clause lets through (compile.ts), at most all of them. */
const widthOf = (clause: KeyClause) => Math.min(clauseWidth(clause), REST_WIDTH);

/**
 * Short fields: the kernel's comm (at most 15 characters) and what a copied program is a copy of
 * (an installed program's name and path, absent from nearly every event): scanning one costs
 * about a Map lookup.
 */
const SHORT_FIELDS = /:((process|process\.parent)\.name|hades\.process\.copy_of\.(name|path))$/;
const sourceCost = (name: string) => (name.startsWith('contains:') && !SHORT_FIELDS.test(name) ? CONTAINS_SOURCE_COST : EQUALS_SOURCE_COST);

/**
 * Chooses the sources that minimise the cost of an event: the rules' widths (each by its
 * narrowest clause whose sources are all chosen, else the rest's) plus the sources' own costs.
 * Greedy: the source that lowers the total most is added while one does, then sources that no
 * longer pay for themselves are dropped.
 */
function chooseSources(keys: readonly (readonly KeyClause[])[]): string[] {
  const rules = keys.filter((clauses) => clauses.length > 0).map((clauses) => clauses.map((c) => ({ sources: [...new Set(c.map((t) => t.source))], width: widthOf(c) })));
  const candidates = [...new Set(rules.flatMap((clauses) => clauses.flatMap((c) => c.sources)))];
  const total = (chosen: ReadonlySet<string>) => {
    let sum = 0;
    for (const s of chosen) sum += sourceCost(s);
    for (const clauses of rules) {
      let width = REST_WIDTH;
      for (const c of clauses) if (c.width < width && c.sources.every((s) => chosen.has(s))) width = c.width;
      sum += width;
    }
    return sum;
  };
  const chosen = new Set<string>();
  let cost = total(chosen);
  for (;;) {
    let best: string | undefined;
    let bestCost = cost;
    for (const s of candidates) {
      if (chosen.has(s)) continue;
      chosen.add(s);
      const c = total(chosen);
      chosen.delete(s);
      if (c < bestCost) {
        best = s;
        bestCost = c;
      }
    }
    if (best === undefined) break;
    chosen.add(best);
    cost = bestCost;
  }
  for (const s of [...chosen]) {
    chosen.delete(s);
    const c = total(chosen);
    if (c < cost) cost = c;
    else chosen.add(s);
  }
  return [...chosen];
}

/**
 * A rule's clauses for the events of one action: a term on `event.action` is then known, true
 * (the clause always holds: dropped) or false (the term goes). Without an action (the index of
 * rules for any action), `event.action` is a field like the others.
 */
function forAction(clauses: readonly KeyClause[], action: string | undefined): KeyClause[] {
  if (action === undefined) return [...clauses];
  const out: KeyClause[] = [];
  for (const clause of clauses) {
    const test = clause.find((t) => t.source === ACTION_SOURCE);
    if (test === undefined) out.push(clause);
    else if (!test.values.includes(action)) {
      const rest = clause.filter((t) => t.source !== ACTION_SOURCE);
      // Empty: the rule cannot match this action at all; the action index already decided, so the rule simply has no key here.
      if (rest.length > 0) out.push(rest);
    }
  }
  return out;
}

export class ValueIndex<T extends Keyed> {
  /** Chosen sources, in the order chosen (the one that saved the most first). */
  readonly sources: readonly IndexSource<T>[];
  /** Rules filed under no value, tested on every event; definition order. */
  readonly rest: readonly T[];
  /** The collection in which each rule was last found, by rule index: a rule is collected once per event. */
  private readonly marks: Float64Array;
  private readonly needles: number[] = [];
  private epoch = 0;

  /**
   * @param rules in definition order; every list of the index keeps that order.
   * @param index false: every rule in the rest (a rule set loaded with `indexByAction: false`).
   * @param action the action of every event the index is used for; undefined: any.
   */
  constructor(rules: readonly T[], index: boolean, action: string | undefined) {
    this.marks = new Float64Array(rules.reduce((n, r) => Math.max(n, r.index + 1), 0));
    const keys = rules.map((r) => forAction(r.keys, action));
    const names = index ? chooseSources(keys) : [];
    const rank = new Map(names.map((n, i) => [n, i]));
    const filed = new Map<string, { term: KeyTerm; byValue: Map<unknown, T[]> }>();
    const rest: T[] = [];
    for (const [i, r] of rules.entries()) {
      const usable = keys[i]!.filter((c) => c.length > 0 && c.every((t) => rank.has(t.source)));
      if (usable.length === 0) {
        rest.push(r);
        continue;
      }
      // The narrowest clause, then the one with fewest sources, then the source chosen first.
      const first = (c: KeyClause) => Math.min(...c.map((t) => rank.get(t.source)!));
      const order = (a: KeyClause, b: KeyClause) => widthOf(a) - widthOf(b) || a.length - b.length || first(a) - first(b);
      const clause = [...usable].sort(order)[0]!;
      for (const term of clause) {
        let source = filed.get(term.source);
        if (!source) {
          source = { term, byValue: new Map() };
          filed.set(term.source, source);
        }
        for (const v of term.values) {
          const list = source.byValue.get(v);
          if (list) list.push(r);
          else source.byValue.set(v, [r]);
        }
      }
    }
    this.rest = rest;
    this.sources = names.filter((n) => filed.has(n)).map((n) => ValueIndex.source(filed.get(n)!.term.match, n, filed.get(n)!.term.read, filed.get(n)!.byValue));
  }

  private static source<T>(match: KeyMatch, name: string, read: Getter, byValue: Map<unknown, T[]>): IndexSource<T> {
    if (match === 'equals') return { match, name, read, byValue };
    const needles = [...byValue.keys()].map(String);
    return { match, name, read, scanner: new NeedleScanner(needles), byNeedle: needles.map((n) => byValue.get(n)!) };
  }

  /** Appends to `out` the rules filed under a value the event holds, each once, in no particular order. */
  collect(event: EventRecord, out: T[]): void {
    const epoch = ++this.epoch;
    for (let s = 0; s < this.sources.length; s++) {
      const source = this.sources[s]!;
      const value = source.read(event);
      if (value === undefined || value === null) continue;
      if (source.match === 'equals') {
        if (!Array.isArray(value)) this.add(source.byValue.get(value), out, epoch);
        else for (let i = 0; i < value.length; i++) this.add(source.byValue.get(value[i]), out, epoch);
        continue;
      }
      const found = this.needles;
      found.length = 0;
      if (typeof value === 'string') source.scanner.scan(value, found);
      else if (Array.isArray(value)) for (let i = 0; i < value.length; i++) if (typeof value[i] === 'string') source.scanner.scan(value[i] as string, found);
      for (let i = 0; i < found.length; i++) this.add(source.byNeedle[found[i]!], out, epoch);
    }
  }

  private add(list: readonly T[] | undefined, out: T[], epoch: number): void {
    if (list === undefined) return;
    for (let i = 0; i < list.length; i++) {
      const r = list[i]!;
      if (this.marks[r.index] === epoch) continue;
      this.marks[r.index] = epoch;
      out.push(r);
    }
  }
}
