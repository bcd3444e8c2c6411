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

/**
 * A getter for a reference without arrays or indices: the keys fixed in code of its own (no
 * path walked per event). Each getter is its own function, so that V8 keeps the property
 * lookups of each field apart: closures of one shared function literal share its inline caches,
 * which the hundreds of fields rules read make megamorphic (a hash lookup per key and event).
 * The keys are written in as JSON string literals, so any key is read as data, never as code.
 */
function plainGetter(keys: readonly string[]): Getter {
  if (keys.length === 0) return (e) => e;
  const steps = keys.map((k) => `[${JSON.stringify(k)}]`);
  let body = 'let v = e;\n';
  for (let i = 0; i < steps.length - 1; i++) body += `v = v${steps[i]!};\nif (typeof v !== 'object' || v === null) return undefined;\n`;
  body += `return v${steps[steps.length - 1]!};`;
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- generated from keys quoted as JSON literals (see above)
  return new Function('e', body) as Getter;
}

export function isPlain(ref: FieldRef): boolean {
  return !ref.multi && ref.segments.every((s) => s.index === undefined) && ref.info.arrays.length === 0;
}

/** What `directGetter` returns when the event holds an array where the schema has none: the visitor decides. */
const WALK: unique symbol = Symbol('walk');

/**
 * A getter for a reference of one value by the schema that goes through indices
 * (`process.args[0]`): its keys and indices fixed in code of its own, as `plainGetter`. An array
 * met anywhere but at an index (an event that breaks the schema, whose values the visitor would
 * walk) gives WALK, and the caller asks the visitor: the direct read only serves the events the
 * schema describes, without a call per segment and value.
 */
function directGetter(segments: readonly FieldSegment[]): (event: EventRecord) => unknown {
  let body = 'let v = e;\n';
  for (const { key, index } of segments) {
    body += `if (typeof v !== 'object' || v === null) return undefined;\nv = v[${JSON.stringify(key)}];\n`;
    if (index !== undefined) body += `if (!isArray(v)) return undefined;\nv = v[${Number(index)}];\n`;
    body += 'if (isArray(v)) return walk;\n';
  }
  body += 'return v === null ? undefined : v;';
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- generated from keys quoted as JSON literals and numeric indices
  return (new Function('isArray', 'walk', `return (e) => {\n${body}\n};`) as (isArray: (v: unknown) => boolean, walk: symbol) => (event: EventRecord) => unknown)(Array.isArray, WALK);
}

/**
 * Calls `visit` on every value the reference yields; stops when it returns true. Generated per
 * reference, like `plainGetter` (same reasons, same quoting): one function per segment, which
 * reads its key (an element when indexed, each element of an array met before the last
 * segment), then the leaf, which visits the value or each element of an array.
 */
function visitor(segments: readonly FieldSegment[], visit: ValueTest): (node: unknown) => boolean {
  let code = `const isArray = Array.isArray;
function leaf(v) {
  if (v === undefined || v === null) return false;
  if (isArray(v)) {
    for (let j = 0; j < v.length; j++) {
      const el = v[j];
      if (el !== undefined && el !== null && visit(el)) return true;
    }
    return false;
  }
  return visit(v);
}
`;
  for (let i = segments.length - 1; i >= 0; i--) {
    const { key, index } = segments[i]!;
    const after = i === segments.length - 1 ? 'leaf' : `s${i + 1}`;
    code += `function s${i}(node) {
  if (typeof node !== 'object' || node === null) return false;
  const v = node[${JSON.stringify(key)}];
`;
    if (index !== undefined) code += `  return isArray(v) ? ${after}(v[${Number(index)}]) : false;\n}\n`;
    else if (i < segments.length - 1) code += `  if (isArray(v)) {\n    for (let j = 0; j < v.length; j++) if (${after}(v[j])) return true;\n    return false;\n  }\n  return ${after}(v);\n}\n`;
    else code += `  return ${after}(v);\n}\n`;
  }
  code += segments.length === 0 ? 'return leaf;' : 'return s0;';
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- generated from keys quoted as JSON literals and numeric indices
  return (new Function('visit', code) as (visit: ValueTest) => (node: unknown) => boolean)(visit);
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
  const walk = visitor(ref.segments, test);
  if (ref.multi) return walk;
  const direct = directGetter(ref.segments);
  return (e) => {
    const v = direct(e);
    if (v === WALK) return walk(e);
    return v !== undefined && test(v);
  };
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
  // One visitor for every event, filling the array of the call in progress (calls do not nest).
  let out: unknown[] = [];
  const walk = visitor(ref.segments, (v) => {
    out.push(v);
    return false;
  });
  return (e) => {
    const values: unknown[] = [];
    out = values;
    walk(e);
    return values;
  };
}

/** A single-valued getter (the first value for multi-valued references). */
export function firstValue(ref: FieldRef): Getter {
  if (isPlain(ref)) return plainGetter(ref.segments.map((s) => s.key));
  let found: unknown;
  const walk = visitor(ref.segments, (v) => {
    found = v;
    return true;
  });
  return (e) => {
    found = undefined;
    walk(e);
    const v = found;
    found = undefined;
    return v;
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
 * The values of a reference that yields one at most by the schema (`process.args[0]`): that
 * value itself (no array made), undefined for none, and an array only when the event holds
 * several (an array where the schema has an object): what the index does with an array of them.
 */
function fewValues(ref: FieldRef): Getter {
  const direct = directGetter(ref.segments);
  let n = 0;
  let first: unknown;
  let more: unknown[] | undefined;
  const walk = visitor(ref.segments, (v) => {
    if (n++ === 0) first = v;
    else (more ??= [first]).push(v);
    return false;
  });
  return (e) => {
    const v = direct(e);
    if (v !== WALK) return v;
    n = 0;
    first = undefined;
    more = undefined;
    walk(e);
    const out = more ?? first;
    first = undefined;
    more = undefined;
    return out;
  };
}

/**
 * What the value index reads of a reference: for a plain one (`process.name`), its value, as
 * `anyValue` reads it; for one of a single value by the schema (`process.args[0]`), that value
 * (fewValues); otherwise the values `anyValue` would test, as an array or, when the reference
 * leads to it through objects only (`process.args`), the array in the event itself.
 */
function indexGetter(ref: FieldRef): Getter {
  if (isPlain(ref)) return plainGetter(ref.segments.map((s) => s.key));
  if (!ref.multi) return fewValues(ref);
  const all = allValues(ref);
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
  return memoisedRead(readId(ref), () => indexGetter(ref), fold);
}

function memoisedRead(id: string, getter: () => Getter, fold: (v: unknown) => unknown): Getter {
  const known = lowered.get(id);
  if (known) return known;
  const get = getter();
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

/**
 * What the value index reads of a process's command (`process` or `process.parent`): its command
 * line, the same lower-cased (the memo the rules that fold it share), and its arguments.
 */
export interface CommandReaders {
  readonly commandLine: Getter;
  readonly lowerCommandLine: Getter;
  readonly args: Getter;
}

export function commandReaders(processPath: 'process' | 'process.parent'): CommandReaders {
  const keys = processPath.split('.');
  const line = [...keys, 'command_line'];
  return {
    commandLine: plainGetter(line),
    // The id and the getter are those of `lowerCased` for the plain reference `<process>.command_line`.
    lowerCommandLine: memoisedRead(line.join('.'), () => plainGetter(line), lowerText),
    args: plainGetter([...keys, 'args']),
  };
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
 * that form; otherwise (`process.args`, `process.args[0]`) the values `anyValue` would test in
 * that form, as indexGetter gives them (one value, or an array). Undefined when the event has no
 * such value.
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
