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
export type ValueTest = (value: unknown) => boolean;
export type Predicate = (event: EventRecord) => boolean;

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
