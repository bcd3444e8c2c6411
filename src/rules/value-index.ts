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
import { commandReaders, type CommandReaders, type EventRecord, type Getter } from './accessor.js';
import { ACTION_SOURCE, clauseWidth, isAscii, type KeyClause, type KeyMatch, type KeyTerm } from './compile.js';
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
 * The `contains` sources over one process's command (its arguments, one argument, its command
 * line, as written or lower-cased) served by one scan of its lower-cased command line: the
 * agent writes the command line as the arguments joined by spaces, so a string one of them
 * holds, the command line holds too, and lower-cased (ASCII strings: lower-casing never moves an
 * ASCII character out of place). A string found across two arguments only costs the evaluation
 * of rules that then do not match. Each event is checked: when its command line does not hold
 * its arguments so (an event written by something else than the agent), the sources are read one
 * by one, as without the merge.
 */
interface CommandScan<T> {
  readonly name: string;
  readonly read: CommandReaders;
  readonly scanner: NeedleScanner;
  readonly byNeedle: readonly (readonly T[])[];
  readonly sources: readonly ContainsSource<T>[];
}

/** `contains:<form>:<what is read>` of a process's command: [the process, the part]. */
const COMMAND_SOURCE = /^contains:(?:value|lower):(?:\*(process(?:\.parent)?)\.args|(process(?:\.parent)?)\.(?:args\[\d+\]|command_line))$/;

/** The process whose command a source reads (COMMAND_SOURCE), or undefined. */
function commandOf(source: string): string | undefined {
  const m = COMMAND_SOURCE.exec(source);
  return m === null ? undefined : (m[1] ?? m[2])!;
}

/** The command line holds each argument, in order, separated by one space: the agent's form. */
function holdsArgs(line: string, args: unknown): boolean {
  if (args === undefined || args === null) return true;
  if (!Array.isArray(args)) return false;
  let at = 0;
  for (let i = 0; i < args.length; i++) {
    const arg: unknown = args[i];
    if (typeof arg !== 'string') return false;
    if (i > 0) {
      if (line.charCodeAt(at) !== 32) return false;
      at++;
    }
    if (!line.startsWith(arg, at)) return false;
    at += arg.length;
  }
  return true;
}

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
 * Short fields: the kernel's comm (at most 15 characters), what a copied program is a copy of
 * (an installed program's name and path) and the script an interpreter runs (both absent from
 * nearly every event): scanning one costs about a Map lookup.
 */
const SHORT_FIELDS = /:((process|process\.parent)\.name|hades\.process\.(copy_of\.(name|path)|script))$/;
/** One path or one argument (`process.args[0]`): a few dozen characters, half a command line's scan. */
const PATH_FIELDS = /:((process|process\.parent)\.(executable|args\[\d+\])|file\.(path|name))$/;
const sourceCost = (name: string) =>
  !name.startsWith('contains:') || SHORT_FIELDS.test(name) ? EQUALS_SOURCE_COST : PATH_FIELDS.test(name) ? CONTAINS_SOURCE_COST / 2 : CONTAINS_SOURCE_COST;

/**
 * Chooses the sources that minimise the cost of an event: the rules' widths (each by its
 * narrowest clause whose sources are all chosen, else the rest's) plus the sources' own costs.
 * Greedy: the source that lowers the total most is added while one does, then sources that no
 * longer pay for themselves are dropped.
 */
function chooseSources(keys: readonly (readonly KeyClause[])[]): string[] {
  const rules = keys.filter((clauses) => clauses.length > 0).map((clauses) => clauses.map((c) => ({ sources: [...new Set(c.map((t) => t.source))], width: widthOf(c) })));
  // A move adds one source, or every source of one clause at once (a clause over two sources
  // lowers nothing until both are read, so one source at a time would never take it).
  const moves = new Map<string, readonly string[]>();
  for (const clauses of rules) for (const c of clauses) for (const s of c.sources) moves.set(s, [s]);
  for (const clauses of rules) for (const c of clauses) if (c.sources.length > 1) moves.set([...c.sources].sort().join('\u0000'), c.sources);
  // The cost is kept up to date rather than summed again for each move tried: a move changes
  // the width of the rules with a clause over one of its sources only, and the sources' own
  // cost by theirs (widths are multiples of 1/4: the sums are exact, whatever their order).
  const touching = new Map<string, number[]>();
  rules.forEach((clauses, r) => {
    for (const c of clauses) {
      for (const source of c.sources) {
        const list = touching.get(source) ?? [];
        if (list.at(-1) !== r) list.push(r);
        touching.set(source, list);
      }
    }
  });
  const chosen = new Set<string>();
  const widthOfRule = (r: number): number => {
    let width = REST_WIDTH;
    for (const c of rules[r]!) if (c.width < width && c.sources.every((s) => chosen.has(s))) width = c.width;
    return width;
  };
  const widths = rules.map(() => REST_WIDTH);
  /** The command scans paid for: how many chosen sources read each process's command (CommandScan). */
  const scans = new Map<string, number>();
  /** What adding `added` (none of them chosen yet) to the chosen sources changes in the cost. */
  const costOfAdding = (added: readonly string[]): number => {
    let delta = 0;
    const paid: string[] = [];
    for (const source of added) {
      const process = commandOf(source);
      if (process === undefined) delta += sourceCost(source);
      else if (!scans.has(process) && !paid.includes(process)) {
        delta += CONTAINS_SOURCE_COST;
        paid.push(process);
      }
    }
    for (const source of added) chosen.add(source);
    const seen = new Set<number>();
    for (const source of added) {
      for (const r of touching.get(source) ?? []) {
        if (seen.has(r)) continue;
        seen.add(r);
        delta += widthOfRule(r) - widths[r]!;
      }
    }
    for (const source of added) chosen.delete(source);
    return delta;
  };
  /** Makes the sources' membership of `chosen` (already changed by the caller) count in the widths and scans. */
  const settle = (changed: readonly string[], sign: 1 | -1): void => {
    for (const source of changed) {
      const process = commandOf(source);
      if (process === undefined) continue;
      const n = (scans.get(process) ?? 0) + sign;
      if (n === 0) scans.delete(process);
      else scans.set(process, n);
    }
    for (const source of changed) for (const r of touching.get(source) ?? []) widths[r] = widthOfRule(r);
  };
  let cost = rules.length * REST_WIDTH;
  for (;;) {
    let best: readonly string[] | undefined;
    let bestCost = cost;
    for (const move of moves.values()) {
      const added = move.filter((s) => !chosen.has(s));
      if (added.length === 0) continue;
      const c = cost + costOfAdding(added);
      if (c < bestCost) {
        best = added;
        bestCost = c;
      }
    }
    if (best === undefined) break;
    for (const s of best) chosen.add(s);
    settle(best, 1);
    cost = bestCost;
  }
  // Then the sources that no longer pay for themselves go (one kept is chosen again: it moves
  // last in the order, as the sources are listed).
  for (const s of [...chosen]) {
    chosen.delete(s);
    const process = commandOf(s);
    let delta = process === undefined ? -sourceCost(s) : scans.get(process) === 1 ? -CONTAINS_SOURCE_COST : 0;
    for (const r of touching.get(s) ?? []) delta += widthOfRule(r) - widths[r]!;
    if (cost + delta < cost) {
      cost += delta;
      settle([s], -1);
    } else {
      chosen.add(s);
    }
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
  /** Chosen sources, in the order chosen (the one that saved the most first), but those merged into command scans. */
  readonly sources: readonly IndexSource<T>[];
  /** Sources over a process's command read in one scan (CommandScan). */
  readonly commands: readonly CommandScan<T>[];
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
    const sources = names.filter((n) => filed.has(n)).map((n) => ValueIndex.source(filed.get(n)!.term.match, n, filed.get(n)!.term.read, filed.get(n)!.byValue));
    const commands = ValueIndex.commandScans(sources);
    const merged = new Set(commands.flatMap((c) => c.sources));
    this.sources = sources.filter((s) => !merged.has(s as ContainsSource<T>));
    this.commands = commands;
  }

  /** The command scans of the sources: one per process whose command two sources or more read. */
  private static commandScans<T>(sources: readonly IndexSource<T>[]): CommandScan<T>[] {
    const byProcess = new Map<string, ContainsSource<T>[]>();
    for (const source of sources) {
      const process = commandOf(source.name);
      if (process === undefined || source.match !== 'contains' || !source.scanner.needles.every(isAscii)) continue;
      byProcess.set(process, [...(byProcess.get(process) ?? []), source]);
    }
    const out: CommandScan<T>[] = [];
    for (const [process, list] of byProcess) {
      if (list.length < 2) continue;
      const byNeedle = new Map<string, T[]>();
      for (const source of list) {
        source.scanner.needles.forEach((needle, id) => {
          const key = needle.toLowerCase();
          const rules = byNeedle.get(key) ?? [];
          for (const r of source.byNeedle[id]!) if (!rules.includes(r)) rules.push(r);
          byNeedle.set(key, rules);
        });
      }
      const needles = [...byNeedle.keys()];
      out.push({
        name: `command:${process}`,
        read: commandReaders(process === 'process' ? 'process' : 'process.parent'),
        scanner: new NeedleScanner(needles),
        byNeedle: needles.map((n) => byNeedle.get(n)!),
        sources: list,
      });
    }
    return out;
  }

  private static source<T>(match: KeyMatch, name: string, read: Getter, byValue: Map<unknown, T[]>): IndexSource<T> {
    if (match === 'equals') return { match, name, read, byValue };
    const needles = [...byValue.keys()].map(String);
    return { match, name, read, scanner: new NeedleScanner(needles), byNeedle: needles.map((n) => byValue.get(n)!) };
  }

  /**
   * Writes into `out` from position `n` on the rules filed under a value the event holds, each
   * once, in no particular order, and returns the position after the last (`out` is a buffer
   * reused from event to event: what lies past it is stale).
   */
  collect(event: EventRecord, out: T[], n = 0): number {
    const epoch = ++this.epoch;
    for (let s = 0; s < this.sources.length; s++) {
      const source = this.sources[s]!;
      const value = source.read(event);
      if (value === undefined || value === null) continue;
      if (source.match === 'equals') {
        if (!Array.isArray(value)) n = this.add(source.byValue.get(value), out, n, epoch);
        else for (let i = 0; i < value.length; i++) n = this.add(source.byValue.get(value[i]), out, n, epoch);
        continue;
      }
      n = this.scanned(source.scanner, source.byNeedle, value, out, n, epoch);
    }
    for (let c = 0; c < this.commands.length; c++) {
      const command = this.commands[c]!;
      const line = command.read.commandLine(event);
      if (typeof line === 'string' && holdsArgs(line, command.read.args(event))) {
        n = this.scanned(command.scanner, command.byNeedle, command.read.lowerCommandLine(event), out, n, epoch);
        continue;
      }
      for (let s = 0; s < command.sources.length; s++) {
        const source = command.sources[s]!;
        const value = source.read(event);
        if (value !== undefined && value !== null) n = this.scanned(source.scanner, source.byNeedle, value, out, n, epoch);
      }
    }
    return n;
  }

  /** The rules filed under the needles a text (or each text of an array) holds, written from `n` on. */
  private scanned(scanner: NeedleScanner, byNeedle: readonly (readonly T[])[], value: unknown, out: T[], n: number, epoch: number): number {
    const found = this.needles;
    let count = 0;
    if (typeof value === 'string') count = scanner.scan(value, found, 0);
    else if (Array.isArray(value)) for (let i = 0; i < value.length; i++) if (typeof value[i] === 'string') count = scanner.scan(value[i] as string, found, count);
    for (let i = 0; i < count; i++) n = this.add(byNeedle[found[i]!], out, n, epoch);
    return n;
  }

  private add(list: readonly T[] | undefined, out: T[], n: number, epoch: number): number {
    if (list === undefined) return n;
    for (let i = 0; i < list.length; i++) {
      const r = list[i]!;
      if (this.marks[r.index] === epoch) continue;
      this.marks[r.index] = epoch;
      out[n++] = r;
    }
    return n;
  }
}
