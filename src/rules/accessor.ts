/**
 * Reading fields out of events, compiled once per field reference. A reference through no array
 * becomes a getter with its keys fixed (no path walking per event); one through arrays
 * (`process.args`, `hades.ancestors[].name`) becomes a visitor that stops at the first value
 * the test accepts, without building intermediate arrays.
 */
import type { FieldRef, FieldSegment } from './fields.js';

/** An event as rules see it: parsed JSON. */
export type EventRecord = Readonly<Record<string, unknown>>;

export type Getter = (event: EventRecord) => unknown;
export type TextGetter = (event: EventRecord) => string | undefined;
export type ValueTest = (value: unknown) => boolean;
export type Predicate = (event: EventRecord) => boolean;

/**
 * How the value index reads a field: as it is, lower-cased, or the text after its last '/' (the
 * file name of a path), as it is or lower-cased.
 */
export type KeyForm = 'value' | 'lower' | 'basename' | 'lower_basename';

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null;
}

/** A getter for a reference without arrays or indices: fixed keys, one closure per depth, no path walked per event. */
function plainGetter(keys: readonly string[]): Getter {
  const [k0, k1, k2, k3] = keys as [string, string?, string?, string?];
  switch (keys.length) {
    case 1:
      return (e) => e[k0];
    case 2:
      return (e) => {
        const a = e[k0];
        return isObject(a) ? a[k1!] : undefined;
      };
    case 3:
      return (e) => {
        const a = e[k0];
        if (!isObject(a)) return undefined;
        const b = a[k1!];
        return isObject(b) ? b[k2!] : undefined;
      };
    case 4:
      return (e) => {
        const a = e[k0];
        if (!isObject(a)) return undefined;
        const b = a[k1!];
        if (!isObject(b)) return undefined;
        const c = b[k2!];
        return isObject(c) ? c[k3!] : undefined;
      };
    default:
      return (e) => {
        let v: unknown = e;
        for (const k of keys) {
          if (!isObject(v)) return undefined;
          v = v[k];
        }
        return v;
      };
  }
}

export function isPlain(ref: FieldRef): boolean {
  return !ref.multi && ref.segments.every((s) => s.index === undefined) && ref.info.arrays.length === 0;
}

/** Calls `visit` on every value the reference yields; stops when it returns true. */
function visitor(segments: readonly FieldSegment[], visit: ValueTest): (node: unknown) => boolean {
  const leaf: (v: unknown) => boolean = (v) => {
    if (v === undefined || v === null) return false;
    if (Array.isArray(v)) {
      for (const el of v) if (el !== undefined && el !== null && visit(el)) return true;
      return false;
    }
    return visit(v);
  };
  let next = leaf;
  for (let i = segments.length - 1; i >= 0; i--) {
    const { key, index } = segments[i]!;
    const after = next;
    const last = i === segments.length - 1;
    next = (node) => {
      if (!isObject(node)) return false;
      let v = node[key];
      if (index !== undefined) {
        if (!Array.isArray(v)) return false;
        v = v[index];
        return after(v);
      }
      if (!last && Array.isArray(v)) {
        for (const el of v) if (after(el)) return true;
        return false;
      }
      return after(v);
    };
  }
  return next;
}

/**
 * A predicate true when ANY value of the field passes the test (a missing field passes
 * nothing). `process.args contains "-e"` is true when one argument contains it.
 */
export function anyValue(ref: FieldRef, test: ValueTest): Predicate {
  if (isPlain(ref)) {
    const get = plainGetter(ref.segments.map((s) => s.key));
    return (e) => {
      const v = get(e);
      return v !== undefined && v !== null && test(v);
    };
  }
  const visit = visitor(ref.segments, test);
  return (e) => visit(e);
}

/**
 * A predicate true when ANY object of the array the reference reads (`hades.ancestors`, reached
 * through objects only) satisfies `test`, given that object: `any ancestor (...)`. A missing or
 * empty array satisfies nothing; an element that is not an object is skipped.
 */
export function anyElement(ref: FieldRef, test: Predicate): Predicate {
  if (ref.info.arrays.length !== 1 || ref.info.arrays[0] !== ref.info.path || ref.segments.some((s) => s.index !== undefined)) {
    throw new RangeError(`${ref.text} is not an array of objects reached through objects`);
  }
  const get = plainGetter(ref.segments.map((s) => s.key));
  return (e) => {
    const list = get(e);
    if (!Array.isArray(list)) return false;
    for (let i = 0; i < list.length; i++) {
      const el: unknown = list[i];
      if (isObject(el) && !Array.isArray(el) && test(el)) return true;
    }
    return false;
  };
}

/** Every value of the field (flattened), for templates, grouping and distinct counts. */
export function allValues(ref: FieldRef): (event: EventRecord) => unknown[] {
  if (isPlain(ref)) {
    const get = plainGetter(ref.segments.map((s) => s.key));
    return (e) => {
      const v = get(e);
      return v === undefined || v === null ? [] : [v];
    };
  }
  return (e) => {
    const out: unknown[] = [];
    visitor(ref.segments, (v) => {
      out.push(v);
      return false;
    })(e);
    return out;
  };
}

/** A single-valued getter (the first value for multi-valued references). */
export function firstValue(ref: FieldRef): Getter {
  if (isPlain(ref)) return plainGetter(ref.segments.map((s) => s.key));
  return (e) => {
    let found: unknown;
    visitor(ref.segments, (v) => {
      found = v;
      return true;
    })(e);
    return found;
  };
}

/**
 * Per-event memos: a value derived from an event (a field lower-cased) is computed once for all
 * the rules that ask for it. A memo is valid for one event object within one generation;
 * `nextEvent` starts a new generation, and RuleSet.match calls it for every event, so an event
 * object changed and matched again is read afresh. Predicates run only inside match (one event
 * at a time, synchronously), so memos shared by every rule set of the thread stay correct.
 */
let generation = 0;

/** Invalidates every per-event memo: the next read of any event computes its values again. */
export function nextEvent(): void {
  generation++;
}

/**
 * What the value index reads of a reference: for a plain one (`process.name`), its value, as
 * `anyValue` reads it; otherwise the values `anyValue` would test, as an array or, when the
 * reference leads to it through objects only (`process.args`), the array in the event itself.
 */
function indexGetter(ref: FieldRef): Getter {
  if (isPlain(ref)) return plainGetter(ref.segments.map((s) => s.key));
  const all = allValues(ref);
  if (!ref.multi) return all;
  const get = plainGetter(ref.segments.map((s) => s.key));
  // Undefined: the field is missing, or an array stands where the schema has an object.
  return (e) => get(e) ?? all(e);
}

/**
 * Lower-cased getters by what they read (readId), shared by every rule that folds the same
 * field; as many as the fields rules fold, a few dozen.
 */
const lowered = new Map<string, Getter>();

/**
 * What a reference reads, as text: the path read with its indices (`process.args[0]`,
 * `hades.ancestors.name` for `ancestor.name`), marked `*` when it yields several values and
 * `ancestor:` when it is read from one ancestor (inside `any ancestor (...)`).
 */
export function readId(ref: FieldRef): string {
  return `${ref.within === undefined ? '' : `${ref.within}:`}${ref.multi ? '*' : ''}${ref.segments.map((s) => (s.index === undefined ? s.key : `${s.key}[${s.index}]`)).join('.')}`;
}

/** `fold` of the reference's value, memoised per event (see `nextEvent`) and shared by reference. */
function memoised(ref: FieldRef, fold: (v: unknown) => unknown): Getter {
  const id = readId(ref);
  const known = lowered.get(id);
  if (known) return known;
  const get = indexGetter(ref);
  let seenGeneration = -1;
  let seenEvent: EventRecord | undefined;
  let value: unknown;
  const memo: Getter = (e) => {
    if (seenGeneration !== generation || seenEvent !== e) {
      seenGeneration = generation;
      seenEvent = e;
      value = fold(get(e));
    }
    return value;
  };
  lowered.set(id, memo);
  return memo;
}

const lowerText = (v: unknown) => (typeof v === 'string' ? v.toLowerCase() : undefined);
const lowerTexts = (v: unknown) => (Array.isArray(v) ? v.map(lowerText) : lowerText(v));

/**
 * The value of a plain text field (`process.command_line`) lower-cased (undefined when not a
 * string), computed at most once per event whatever the number of rules asking.
 */
export function lowerCased(ref: FieldRef): TextGetter {
  if (!isPlain(ref)) throw new RangeError(`${ref.text} is read through an array`);
  return memoised(ref, lowerText) as TextGetter;
}

const afterLastSlash = (s: string) => s.slice(s.lastIndexOf('/') + 1);

/** `f` of a text, or of each text of an array. */
function mapTexts(get: Getter, f: (s: string) => string): Getter {
  return (e) => {
    const v = get(e);
    if (typeof v === 'string') return f(v);
    return Array.isArray(v) ? v.map((x: unknown) => (typeof x === 'string' ? f(x) : undefined)) : undefined;
  };
}

/**
 * Reads a field in one of the value index's forms (KeyForm): for a plain field, its value in
 * that form; otherwise (`process.args`, `process.args[0]`) the values `anyValue` would test, as
 * an array in that form. Undefined when the event has no such value.
 */
export function keyReader(ref: FieldRef, form: KeyForm): Getter {
  const lower = () => (isPlain(ref) ? lowerCased(ref) : memoised(ref, lowerTexts));
  switch (form) {
    case 'value':
      return indexGetter(ref);
    case 'lower':
      return lower();
    case 'basename':
      return mapTexts(indexGetter(ref), afterLastSlash);
    case 'lower_basename':
      return mapTexts(lower(), afterLastSlash);
  }
}
