/**
 * The last stage of a condition: the resolved expression becomes one closure (no tree is
 * walked per event), with conjunctions and disjunctions ordered cheapest first; and the
 * analysis of which `event.action` values a condition can match, by which rules are indexed.
 */
import { eventActions } from '../common/events/index.js';
import { anyValue, firstValue, isPlain, type EventRecord, type Getter, type Predicate } from './accessor.js';
import type { Literal } from './operators.js';
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
 * action", except the negation of an action test.
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

/** Compiles a resolved condition into one predicate. */
export function compilePredicate(e: RExpr): Predicate {
  switch (e.kind) {
    case 'const':
      return e.value ? ALWAYS : NEVER;
    case 'exists':
      return anyValue(e.field, () => true);
    case 'cmp': {
      const positive = equalityPredicate(e) ?? anyValue(e.field, e.test);
      return e.op.negate ? (ev: EventRecord) => !positive(ev) : positive;
    }
    case 'not': {
      const inner = compilePredicate(e.expr);
      if (inner === ALWAYS) return NEVER;
      if (inner === NEVER) return ALWAYS;
      return (ev) => !inner(ev);
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

/** A top-level `field = value` (or `field in (...)`) that any match of the rule must satisfy. */
export interface EqualityKey {
  readonly path: string;
  readonly get: Getter;
  readonly values: readonly Literal[];
}

/**
 * The equality tests a condition's top-level conjunction requires, on single-valued fields of a
 * known type: a rule set can then look the field up once per event and skip the rules whose
 * required values it does not hold (a second index, under the one by action).
 */
export function equalityKeys(e: RExpr): EqualityKey[] {
  const conjuncts: RExpr[] = [];
  const flatten = (x: RExpr) => (x.kind === 'and' ? x.items.forEach(flatten) : conjuncts.push(x));
  flatten(e);
  const keys: EqualityKey[] = [];
  for (const c of conjuncts) {
    if (c.kind !== 'cmp' || c.op.base !== 'eq' || c.op.negate || c.op.ci || c.field.multi) continue;
    const type = c.field.info.type;
    if (type !== 'string' && type !== 'number' && type !== 'boolean') continue;
    if (c.field.segments.some((s) => s.index !== undefined) || c.field.info.arrays.length > 0) continue;
    keys.push({ path: c.field.info.path, get: firstValue(c.field), values: c.values });
  }
  return keys;
}

export { ALWAYS, NEVER };
