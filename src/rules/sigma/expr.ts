/**
 * Hades conditions as the converter builds them, before they become text: a small tree with
 * constants folded away, rendered with the fewest parentheses the precedence of the Hades
 * grammar allows (not, then and, then or) and every value quoted, so a value never reads as a
 * keyword, an operator or the name of a list.
 */

/** A value of a comparison: a literal, or the name of a list of the rule file. */
export type HValue = { readonly kind: 'text'; readonly text: string } | { readonly kind: 'number'; readonly value: number } | { readonly kind: 'bool'; readonly value: boolean } | { readonly kind: 'list'; readonly name: string };

export type HExpr =
  | { readonly kind: 'and' | 'or'; readonly items: readonly HExpr[] }
  | { readonly kind: 'not'; readonly expr: HExpr }
  | { readonly kind: 'cmp'; readonly field: string; readonly op: string; readonly values: readonly HValue[] }
  | { readonly kind: 'exists'; readonly field: string }
  | { readonly kind: 'const'; readonly value: boolean };

export const TRUE: HExpr = { kind: 'const', value: true };
export const FALSE: HExpr = { kind: 'const', value: false };

export const text = (t: string): HValue => ({ kind: 'text', text: t });

export function cmp(field: string, op: string, values: readonly HValue[]): HExpr {
  return { kind: 'cmp', field, op, values };
}

/** `and` of the items, constants folded, nested ands flattened. */
export function and(items: readonly HExpr[]): HExpr {
  const out: HExpr[] = [];
  for (const item of items) {
    if (item.kind === 'const') {
      if (!item.value) return FALSE;
      continue;
    }
    if (item.kind === 'and') out.push(...item.items);
    else out.push(item);
  }
  if (out.length === 0) return TRUE;
  return out.length === 1 ? out[0]! : { kind: 'and', items: out };
}

/** `or` of the items, constants folded, nested ors flattened. */
export function or(items: readonly HExpr[]): HExpr {
  const out: HExpr[] = [];
  for (const item of items) {
    if (item.kind === 'const') {
      if (item.value) return TRUE;
      continue;
    }
    if (item.kind === 'or') out.push(...item.items);
    else out.push(item);
  }
  if (out.length === 0) return FALSE;
  return out.length === 1 ? out[0]! : { kind: 'or', items: out };
}

export function not(expr: HExpr): HExpr {
  if (expr.kind === 'const') return { kind: 'const', value: !expr.value };
  if (expr.kind === 'not') return expr.expr;
  return { kind: 'not', expr };
}

/** Whether the condition holds only for events on which a test of `field` (outside any `not`) holds. */
export function requiresField(e: HExpr, field: string): boolean {
  switch (e.kind) {
    case 'cmp':
    case 'exists':
      return e.field === field;
    case 'and':
      return e.items.some((i) => requiresField(i, field));
    case 'or':
      return e.items.every((i) => requiresField(i, field));
    case 'not':
      return false;
    case 'const':
      return !e.value;
  }
}

/** A string literal of the condition language: `"` and `\` escaped, nothing else. */
export function quote(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

function value(v: HValue): string {
  switch (v.kind) {
    case 'text':
      return quote(v.text);
    case 'number':
      return String(v.value);
    case 'bool':
      return v.value ? 'true' : 'false';
    case 'list':
      return v.name;
  }
}

const PRECEDENCE = { or: 1, and: 2, not: 3, atom: 4 } as const;

function precedence(e: HExpr): number {
  return e.kind === 'or' ? PRECEDENCE.or : e.kind === 'and' ? PRECEDENCE.and : e.kind === 'not' ? PRECEDENCE.not : PRECEDENCE.atom;
}

function render(e: HExpr): string {
  switch (e.kind) {
    case 'cmp': {
      // A list name only expands inside a literal list, whatever the operator.
      const single = e.values.length === 1 && e.values[0]!.kind !== 'list';
      return `${e.field} ${e.op} ${single ? value(e.values[0]!) : `(${e.values.map(value).join(', ')})`}`;
    }
    case 'exists':
      return `${e.field} exists`;
    case 'not':
      return `not ${wrap(e.expr, PRECEDENCE.not)}`;
    case 'and':
    case 'or':
      return e.items.map((i) => wrap(i, precedence(e))).join(` ${e.kind} `);
    case 'const':
      // Folded away before rendering; a condition that is constant is refused by the converter.
      return e.value ? 'true' : 'false';
  }
}

function wrap(e: HExpr, parent: number): string {
  const s = render(e);
  // `not` binds tighter than and/or, so only and/or inside need parentheses.
  return precedence(e) < parent || (parent === PRECEDENCE.not && precedence(e) < PRECEDENCE.atom) ? `(${s})` : s;
}

/** Past this width, an and/or is written one term a line, nested terms indented. */
const WIDTH = 100;

function pretty(e: HExpr, parent: number, indent: number): string {
  const flat = wrap(e, parent);
  if (indent + flat.length <= WIDTH) return flat;
  if (e.kind === 'not') return `not ${pretty(e.expr, PRECEDENCE.not, indent)}`;
  if (e.kind !== 'and' && e.kind !== 'or') return flat;
  const parens = precedence(e) < parent || parent === PRECEDENCE.not;
  const inner = parens ? indent + 2 : indent;
  const body = e.items.map((i) => pretty(i, precedence(e), inner + 2)).join(`\n${' '.repeat(inner)}${e.kind} `);
  return parens ? `(\n${' '.repeat(inner)}${body}\n${' '.repeat(indent)})` : body;
}

/** The condition text: the terms of a long and/or one a line, for people reading --out files. */
export function renderCondition(e: HExpr): string {
  if (e.kind === 'and' || e.kind === 'or') return e.items.map((i) => pretty(i, precedence(e), 2)).join(`\n${e.kind} `);
  return pretty(e, 0, 0);
}
