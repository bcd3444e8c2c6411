/**
 * The last stage of a condition: the resolved expression becomes one closure (no tree is
 * walked per event), with conjunctions and disjunctions ordered cheapest first; and the
 * analyses by which rules are indexed: which `event.action` values a condition can match, and
 * which values of other fields (key clauses) it requires.
 */
import { eventActions } from '../common/events/index.js';
import { anyElement, anyValue, firstValue, isPlain, keyReader, lowerCased, readId, type EventRecord, type Getter, type KeyForm, type Predicate } from './accessor.js';
import { foldedTest, type Literal } from './operators.js';
import { requiredLiterals } from './regex-prefilter.js';
import type { RExpr } from './resolve.js';

const ALWAYS: Predicate = () => true;
const NEVER: Predicate = () => false;

/** Actions a condition can match: a set, or null for "any action". */
export type ActionSet = ReadonlySet<string> | null;

const ALL_ACTIONS: ReadonlySet<string> = new Set(eventActions);

type Cmp = Extract<RExpr, { kind: 'cmp' }>;

function actionTest(e: RExpr): Cmp | undefined {
  return e.kind === 'cmp' && e.field.info.path === 'event.action' ? e : undefined;
}

/** The actions for which an `event.action` comparison is true, found by running its test. */
function actionTestSet(e: Cmp): Set<string> {
  const out = new Set<string>();
  for (const a of eventActions) if (e.test(a) !== e.op.negate) out.add(a);
  return out;
}

function intersect(a: ActionSet, b: ActionSet): ActionSet {
  if (a === null) return b;
  if (b === null) return a;
  return new Set([...a].filter((x) => b.has(x)));
}

function union(a: ActionSet, b: ActionSet): ActionSet {
  if (a === null || b === null) return null;
  return new Set([...a, ...b]);
}

/**
 * The actions whose events can satisfy the condition. Sound because events follow the schema:
 * a positive comparison on a field can only hold for actions whose events carry the field, and
 * an `event.action` test holds for exactly the actions its test accepts. A negation is "any
 * action", except the negation of an action test. `any ancestor (...)` needs an ancestor, which
 * only the actions whose events carry `hades.ancestors` have, satisfying its condition: the
 * fields inside are those under `hades.ancestors`, with the actions that carry them, and none
 * is `event.action`.
 */
export function actionsOf(e: RExpr): ActionSet {
  switch (e.kind) {
    case 'const':
      return e.value ? null : new Set();
    case 'exists':
      return e.field.info.actions;
    case 'cmp': {
      const test = actionTest(e);
      if (test) return actionTestSet(test);
      return e.op.negate ? null : e.field.info.actions;
    }
    case 'and':
      return e.items.reduce<ActionSet>((acc, item) => intersect(acc, actionsOf(item)), null);
    case 'or': {
      let acc: ActionSet = new Set();
      for (const item of e.items) acc = union(acc, actionsOf(item));
      return acc;
    }
    case 'not': {
      const test = actionTest(e.expr);
      if (test) {
        const inner = actionTestSet(test);
        return new Set(eventActions.filter((a) => !inner.has(a)));
      }
      return null;
    }
    case 'ancestor':
      return intersect(e.ancestors.info.actions, actionsOf(e.expr));
  }
}

/** Normalises "every action" to null, the cheapest index entry. */
export function normaliseActions(set: ActionSet): ActionSet {
  if (set === null) return null;
  for (const a of ALL_ACTIONS) if (!set.has(a)) return set;
  return null;
}

export function costOf(e: RExpr): number {
  switch (e.kind) {
    case 'const':
      return 0;
    case 'cmp':
    case 'exists':
      return e.cost;
    case 'not':
      return costOf(e.expr);
    case 'ancestor':
      // Up to 8 ancestors, most events having a few.
      return 4 * costOf(e.expr);
    case 'and':
    case 'or':
      return e.items.reduce((n, i) => n + costOf(i), 0);
  }
}

/**
 * Drops, from a top-level conjunction, the `event.action` tests that the index already
 * guarantees: a rule indexed on exec is only ever given exec events.
 */
export function withoutIndexedActionTests(e: RExpr, actions: ActionSet): RExpr {
  if (actions === null) return e;
  const implied = (x: RExpr) => {
    const test = actionTest(x);
    if (!test) return false;
    const set = actionTestSet(test);
    return [...actions].every((a) => set.has(a));
  };
  if (implied(e)) return { kind: 'const', value: true };
  if (e.kind !== 'and') return e;
  const items = e.items.filter((x) => !implied(x));
  if (items.length === 0) return { kind: 'const', value: true };
  return items.length === 1 ? items[0]! : { kind: 'and', items };
}

function combine(kind: 'and' | 'or', preds: Predicate[]): Predicate {
  if (kind === 'and') {
    switch (preds.length) {
      case 0:
        return ALWAYS;
      case 1:
        return preds[0]!;
      case 2: {
        const [a, b] = preds as [Predicate, Predicate];
        return (e) => a(e) && b(e);
      }
      case 3: {
        const [a, b, c] = preds as [Predicate, Predicate, Predicate];
        return (e) => a(e) && b(e) && c(e);
      }
      default:
        return (e) => {
          for (const p of preds) if (!p(e)) return false;
          return true;
        };
    }
  }
  switch (preds.length) {
    case 0:
      return NEVER;
    case 1:
      return preds[0]!;
    case 2: {
      const [a, b] = preds as [Predicate, Predicate];
      return (e) => a(e) || b(e);
    }
    case 3: {
      const [a, b, c] = preds as [Predicate, Predicate, Predicate];
      return (e) => a(e) || b(e) || c(e);
    }
    default:
      return (e) => {
        for (const p of preds) if (p(e)) return true;
        return false;
      };
  }
}

/**
 * The commonest comparison, `field = value` or `field in (...)` on a single-valued field, as one
 * closure that reads the field and compares: no value test behind a shared call site.
 */
function equalityPredicate(e: Cmp): Predicate | undefined {
  const type = e.field.info.type;
  if (e.op.base !== 'eq' || e.op.ci || !isPlain(e.field) || (type !== 'string' && type !== 'number' && type !== 'boolean')) return undefined;
  const get = firstValue(e.field);
  if (e.values.length === 1) {
    const one = e.values[0];
    return (ev) => get(ev) === one;
  }
  const set = new Set<unknown>(e.values);
  return (ev) => set.has(get(ev));
}

/**
 * A case-insensitive comparison on a single-valued text field, against the field lower-cased
 * once per event (shared by every rule that folds the field) instead of once per rule.
 */
function foldedPredicate(e: Cmp): Predicate | undefined {
  // An ancestor's field is read from each ancestor in turn: nothing to share per event.
  if (e.field.within !== undefined || !e.op.ci || !isPlain(e.field) || e.field.info.type !== 'string') return undefined;
  const test = foldedTest(e.op.base, e.values.map(String));
  if (test === undefined) return undefined;
  const get = lowerCased(e.field);
  return (ev) => {
    const s = get(ev);
    return s !== undefined && test(s);
  };
}

/** Compiles a resolved condition into one predicate. */
export function compilePredicate(e: RExpr): Predicate {
  switch (e.kind) {
    case 'const':
      return e.value ? ALWAYS : NEVER;
    case 'exists':
      return anyValue(e.field, () => true);
    case 'cmp': {
      const positive = equalityPredicate(e) ?? foldedPredicate(e) ?? anyValue(e.field, e.test);
      return e.op.negate ? (ev: EventRecord) => !positive(ev) : positive;
    }
    case 'not': {
      const inner = compilePredicate(e.expr);
      if (inner === ALWAYS) return NEVER;
      if (inner === NEVER) return ALWAYS;
      return (ev) => !inner(ev);
    }
    case 'ancestor': {
      // The inner predicate is given one ancestor's object at a time: its fields are relative to it.
      const inner = compilePredicate(e.expr);
      return inner === NEVER ? NEVER : anyElement(e.ancestors, inner);
    }
    case 'and':
    case 'or': {
      // Cheapest first: predicates have no side effects, so order changes only the cost.
      const ordered = [...e.items].sort((a, b) => costOf(a) - costOf(b));
      const preds: Predicate[] = [];
      for (const item of ordered) {
        const p = compilePredicate(item);
        if (e.kind === 'and' && p === NEVER) return NEVER;
        if (e.kind === 'or' && p === ALWAYS) return ALWAYS;
        if ((e.kind === 'and' && p === ALWAYS) || (e.kind === 'or' && p === NEVER)) continue;
        preds.push(p);
      }
      return combine(e.kind, preds);
    }
  }
}

/**
 * How a key term holds: the event's value (in the term's form) is one of the term's values
 * (`equals`), or contains one of them (`contains`).
 */
export type KeyMatch = 'equals' | 'contains';

/** `form(field) equals (contains) one of values`: one term of a key clause. */
export interface KeyTerm {
  /** What is read and how it is matched, `match:form:read` (accessor.ts, readId): terms of one source are looked up together. */
  readonly source: string;
  readonly match: KeyMatch;
  /** The field's value in the term's form; for a field that holds several values, an array of them. */
  readonly read: Getter;
  readonly values: readonly Literal[];
}

/**
 * A disjunction of terms that every match of the rule satisfies: an event for which no term
 * holds cannot match, so a rule set may file the rule under the values of the clause's terms
 * and test it only on events that hold one of them.
 */
export type KeyClause = readonly KeyTerm[];

const afterLastSlash = (s: string) => s.slice(s.lastIndexOf('/') + 1);

function keyTerm(field: Cmp['field'], match: KeyMatch, form: KeyForm, values: readonly Literal[]): KeyTerm {
  return { source: `${match}:${form}:${readId(field)}`, match, read: keyReader(field, form), values: [...new Set(values)] };
}

/** The source of `event.action` terms: a rule set resolves them by the action of each index. */
export const ACTION_SOURCE = 'equals:value:event.action';

/** A field the index can read: one value (`process.name`, `process.args[0]`), or an array of values at the leaf (`process.args`). */
function indexable(ref: Cmp['field']): boolean {
  if (!ref.multi) return true;
  const { info } = ref;
  return info.leafArray && info.arrays.length === 1 && info.arrays[0] === info.path && ref.segments.every((s) => s.index === undefined);
}

// eslint-disable-next-line no-control-regex
export const isAscii = (s: string) => /^[\x00-\x7f]*$/.test(s);

/**
 * The key terms a comparison implies, each on its own (so each makes a clause). On a text field,
 * every positive operator but `glob` and `in_cidr` implies that the value contains a string: the
 * value compared (`=`, `startswith`, `endswith`, `contains`, lower-cased for the case-insensitive
 * ones) or, for a case-sensitive regular expression, one of the literals every match holds
 * (regex-prefilter.ts). On a field of one value, `=` and `in` also give the values; `i=` and
 * `iin` the lower-cased values; `endswith` (`iendswith`) with suffixes that all hold a '/', the
 * text after the suffix's last '/' (lower-cased), which is then the whole file name of any path
 * that ends with it (`endswith /bin/bash` needs the file name `bash`; `endswith bash` gives no
 * file name, as `/usr/bin/rbash` ends with it).
 *
 * A case-sensitive term also gives its lower-cased twin, so that one lower-cased source can
 * serve both kinds of rules: a value equal to `x` lower-cases to `x` lower-cased; and a value
 * that contains (ends with) an ASCII string contains (ends with) it lower-cased once lower-cased,
 * as ASCII letters lower-case the same whatever surrounds them (only the Greek capital sigma
 * depends on its neighbours) and lower-casing neither makes nor removes a '/'.
 */
function keyTermsOf(c: Cmp): KeyTerm[] {
  if (c.op.negate || !indexable(c.field)) return [];
  const type = c.field.info.type;
  const single = !c.field.multi;
  const terms: KeyTerm[] = [];
  const { base, ci } = c.op;
  if (base === 'eq' && !ci && (type === 'string' || type === 'number' || type === 'boolean')) terms.push(keyTerm(c.field, 'equals', 'value', c.values));
  if (type !== 'string' || c.field.info.path === 'event.action') return terms;
  const texts = c.values.map(String);
  const folded = texts.map((v) => v.toLowerCase());
  const ascii = texts.every(isAscii);
  if (base === 'eq') terms.push(keyTerm(c.field, 'equals', 'lower', folded));
  if (base === 'endswith' && single && folded.length > 0 && folded.every((v) => v.includes('/'))) {
    if (!ci) terms.push(keyTerm(c.field, 'equals', 'basename', texts.map(afterLastSlash)));
    if (ci || ascii) terms.push(keyTerm(c.field, 'equals', 'lower_basename', folded.map(afterLastSlash)));
  }
  if ((base === 'eq' || base === 'contains' || base === 'startswith' || base === 'endswith') && texts.length > 0 && texts.every((v) => v.length > 0)) {
    if (!ci) terms.push(keyTerm(c.field, 'contains', 'value', texts));
    if (ci || ascii) terms.push(keyTerm(c.field, 'contains', 'lower', folded));
  }
  if (base === 'regex' && !ci) {
    const literals = texts.map(requiredLiterals);
    if (literals.length > 0 && literals.every((l) => l !== undefined)) {
      const flat = literals.flat();
      terms.push(keyTerm(c.field, 'contains', 'value', flat));
      if (flat.every(isAscii)) terms.push(keyTerm(c.field, 'contains', 'lower', flat.map((l) => l.toLowerCase())));
    }
  }
  return terms;
}

/** Terms on the same source become one term with the union of their values. */
function mergeTerms(terms: readonly KeyTerm[]): KeyClause {
  const bySource = new Map<string, KeyTerm>();
  for (const t of terms) {
    const seen = bySource.get(t.source);
    bySource.set(t.source, seen ? { ...seen, values: [...new Set([...seen.values, ...t.values])] } : t);
  }
  return [...bySource.values()];
}

/**
 * How many events a clause lets through, roughly, in 1/64 of all events: one per value compared
 * for equality (16 for a field of a handful of values, such as the kind of standard input); for
 * a string searched for, the more the shorter it is: a string of eight characters or more (a
 * domain, a tool's name with its path) is in few events, one character common in paths and
 * options (the `-` of an option) in nearly every command line, as wide as all events. For
 * choosing between clauses (value-index.ts has the rest of the cost model).
 */
export function clauseWidth(clause: KeyClause): number {
  let width = 0;
  for (const t of clause) {
    if (RARE_SOURCE.test(t.source)) width += 1;
    else if (FEW_VALUES_SOURCE.test(t.source)) width += 16 * t.values.length;
    else if (t.match === 'equals') width += t.values.length;
    else for (const v of t.values) width += needleWidth(String(v));
  }
  return width;
}

function needleWidth(text: string): number {
  const n = text.length;
  if (n >= 8) return 0.25;
  if (n >= 5) return 1;
  if (n === 4) return 2;
  if (n === 3) return 4;
  if (n === 2) return 16;
  return COMMON_CHARACTER.test(text) ? 64 : 8;
}

/** Characters of nearly every path or command line; others (`[`, `|`, `$`) are in few. */
const COMMON_CHARACTER = /^[A-Za-z0-9 ./_=:,-]$/;

/**
 * Fields absent from nearly every event, whatever value a rule asks of them: what a copied
 * program is a copy of (only the exec of a copy of an installed shell or interpreter has it).
 */
const RARE_SOURCE = /:hades\.process\.copy_of\.(name|path)$/;

/**
 * Fields with a handful of values, each held by a large share of events (a pipe on standard
 * input, TCP, an A query, a success, exit code 0, root after a change of credentials): a value
 * of one lets through about a quarter of the events, not one in 64.
 */
const FEW_VALUES_SOURCE =
  /:(hades\.process\.stdio\.(stdin|stdout|stderr)\.type|network\.(transport|type|direction|protocol)|dns\.type|event\.outcome|process\.exit_code|hades\.file\.link\.type|hades\.privilege\.(before|after)\.\w+|process\.(user|group)\.(id|name))$/;

const narrowest = (clauses: readonly KeyClause[]) => clauses.reduce((a, b) => (clauseWidth(b) < clauseWidth(a) ? b : a));

/**
 * The clauses of a disjunction: one clause per choice of one clause in every branch (every
 * match satisfies a branch). Of the many choices, those that read few sources: for each source,
 * every branch's narrowest clause on it (or its narrowest at all), and every branch's narrowest.
 */
/**
 * The key clauses of "one of these holds" (a disjunction, or the steps of a correlation rule,
 * one of which an event must match to count): clauses that take one clause of each branch, none
 * if a branch has none.
 */
export function disjunctionClauses(branches: readonly (readonly KeyClause[])[]): KeyClause[] {
  if (branches.some((b) => b.length === 0)) return [];
  const choices: KeyClause[][] = [branches.map(narrowest)];
  // And every branch's narrowest clause that does not test the action, where it has one: a step
  // `event.action = exec and stdin.type = pipe` is as narrow by `event.action` as by the pipe,
  // but within the index of its own action only the pipe narrows it.
  const onValues = branches.map((b) => b.filter((c) => !c.some((t) => t.source === ACTION_SOURCE)));
  if (onValues.every((b) => b.length > 0)) choices.push(onValues.map(narrowest));
  for (const source of new Set(branches.flatMap((b) => b.flatMap((c) => c.map((t) => t.source))))) {
    choices.push(branches.map((b) => {
      const on = b.filter((c) => c.some((t) => t.source === source));
      return narrowest(on.length > 0 ? on : b);
    }));
  }
  const out = new Map<string, KeyClause>();
  for (const choice of choices) {
    const clause = mergeTerms(choice.flat());
    out.set(clause.map((t) => `${t.source}=${t.values.join('\u0000')}`).sort().join('\u0001'), clause);
  }
  return [...out.values()];
}

/**
 * The key clauses a condition requires, for the rule set's value index: a comparison gives one
 * clause per term it implies; a conjunction every clause of its items; a disjunction clauses
 * that take one clause of each branch (none if a branch has none); a negation none; `any
 * ancestor (...)` none (the `ancestor.*` fields, read through an array of objects, are not
 * indexed either, see `indexable`). Sound
 * whatever is left out: a missing clause only means a rule is tested on more events. Terms on
 * `event.action` (tests inside disjunctions: the loader drops the top-level ones) are kept for
 * the rule set to resolve per action. (The name is the loader's, from when keys were equalities.)
 */
export function equalityKeys(e: RExpr): KeyClause[] {
  switch (e.kind) {
    case 'cmp':
      return keyTermsOf(e).map((term) => [term]);
    case 'and':
      return e.items.flatMap(equalityKeys);
    case 'or':
      return disjunctionClauses(e.items.map(equalityKeys));
    default:
      return [];
  }
}

export { ALWAYS, NEVER };
