/**
 * The operators, each compiled once into a value test: literals are converted, lower-cased,
 * put in sets, and patterns compiled when the rule loads, so that a test costs one or two
 * comparisons per event value. A test never throws: a value of another type fails it.
 */
import type { ValueTest } from './accessor.js';
import { cidrMatcher, parseCidr, type CidrRange } from './cidr.js';
import type { FieldType } from './fields.js';
import { compileGlob } from './glob.js';
import { NUMBER } from './lexer.js';
import type { BaseOp } from './parser.js';
import { compileError, type TextSource } from './problems.js';
import { compileRegex, type Regex } from './regex.js';
import { NeedleScanner } from './needles.js';
import { regexFacts } from './regex-prefilter.js';

export type Literal = string | number | boolean;

/** A literal with where it was written, for errors about one item of a list. */
export interface PlacedLiteral {
  readonly value: Literal;
  readonly offset: number;
}

/** Relative cost of one test, to evaluate cheap conditions first. */
export function opCost(base: BaseOp, count: number): number {
  switch (base) {
    case 'eq':
      return 1;
    case 'lt':
    case 'le':
    case 'gt':
    case 'ge':
      return 1;
    case 'contains':
    case 'startswith':
    case 'endswith':
      return 2 + count / 4;
    case 'cidr':
      return 3 + count / 4;
    case 'glob':
      return 4 + count;
    case 'regex':
      return 10 + 4 * count;
  }
}

/** A string view of a value of an `any` field (inventory rows); undefined for objects. */
function asText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

/**
 * A regular expression's test behind its prefilters (regex-prefilter.ts): a text shorter than any
 * match, or that holds none of the strings every match contains, is refused without running the
 * expression. The length guard holds for case-insensitive expressions too: RE2 folds case one
 * code point to one code point (simple folding: ß never matches ss, the ﬀ ligature never ff), so
 * a match holds at least the pattern's fewest code points, and a string holds at least as many
 * UTF-16 units as code points, whatever their case (K is one unit, the Kelvin sign too; 𐐀 two,
 * 𐐨 too). A pattern without literals, such as a wallet address of 95 characters, would
 * otherwise run over every argument of every exec.
 */
export function prefiltered(re: Regex, ci: boolean): (s: string) => boolean {
  const { literals, minLength: shortest } = regexFacts(re.pattern);
  const test = ci ? foldedPrefilter(re, literals) : literalPrefilter(re, literals);
  return shortest > 1 ? (s) => s.length >= shortest && test(s) : test;
}

function literalPrefilter(re: Regex, literals: readonly string[] | undefined): (s: string) => boolean {
  if (literals === undefined) return (s) => re.test(s);
  if (literals.length === 1) {
    const one = literals[0]!;
    return (s) => s.includes(one) && re.test(s);
  }
  return (s) => {
    for (const l of literals) if (s.includes(l)) return re.test(s);
    return false;
  };
}

/**
 * The literal prefilter of a case-insensitive expression, when the strings its matches hold are
 * ASCII: a text holds one of them in some case when its lower-cased form holds it lower-cased.
 * RE2 folds two other characters into ASCII letters: the Kelvin sign (K, which toLowerCase makes
 * k too) and the long s (ſ, which it keeps: it is replaced by s before the search).
 */
function foldedPrefilter(re: Regex, caseSensitive: readonly string[] | undefined): (s: string) => boolean {
  const literals = caseSensitive?.map((l) => l.toLowerCase());
  if (literals === undefined || !literals.every((l) => [...l].every((c) => c.charCodeAt(0) < 0x80))) return (s) => re.test(s);
  const withS = literals.some((l) => l.includes('s'));
  return (s) => {
    let t = s.toLowerCase();
    if (withS && t.includes('\u017f')) t = t.replaceAll('\u017f', 's');
    for (const l of literals) if (t.includes(l)) return re.test(s);
    return false;
  };
}

/** From this many strings on, `contains` searches them all in one pass (needles.ts) rather than one by one. */
const MANY_NEEDLES = 8;

function stringTest(base: BaseOp, ci: boolean, values: readonly string[], source: TextSource | undefined, offsets: readonly number[]): (s: string) => boolean {
  const vals = ci ? values.map((v) => v.toLowerCase()) : [...values];
  const fold = ci ? (s: string) => s.toLowerCase() : (s: string) => s;
  const one = vals[0]!;
  switch (base) {
    case 'eq': {
      if (vals.length === 1) return ci ? (s) => s.toLowerCase() === one : (s) => s === one;
      const set = new Set(vals);
      return ci ? (s) => set.has(s.toLowerCase()) : (s) => set.has(s);
    }
    case 'contains':
      if (vals.length === 1) return ci ? (s) => s.toLowerCase().includes(one) : (s) => s.includes(one);
      if (vals.length >= MANY_NEEDLES && vals.every((v) => v !== '')) {
        // One pass over the text for all of them (a list of pool domains, of tool names).
        const scanner = new NeedleScanner(vals);
        return ci ? (s) => scanner.holdsAny(s.toLowerCase()) : (s) => scanner.holdsAny(s);
      }
      return (s) => {
        const t = fold(s);
        for (const v of vals) if (t.includes(v)) return true;
        return false;
      };
    case 'startswith':
      if (vals.length === 1) return ci ? (s) => s.toLowerCase().startsWith(one) : (s) => s.startsWith(one);
      return (s) => {
        const t = fold(s);
        for (const v of vals) if (t.startsWith(v)) return true;
        return false;
      };
    case 'endswith':
      if (vals.length === 1) return ci ? (s) => s.toLowerCase().endsWith(one) : (s) => s.endsWith(one);
      return (s) => {
        const t = fold(s);
        for (const v of vals) if (t.endsWith(v)) return true;
        return false;
      };
    case 'glob': {
      // The patterns as written: a glob folds its own characters and sets (glob.ts).
      const globs = values.map((v, i) => compileGlob(v, source, offsets[i] ?? 0, ci));
      if (globs.length === 1) {
        const g = globs[0]!;
        return ci ? (s) => g.test(s.toLowerCase()) : (s) => g.test(s);
      }
      return (s) => {
        const t = fold(s);
        for (const g of globs) if (g.test(t)) return true;
        return false;
      };
    }
    case 'regex': {
      // Case folding is the regular expression's own flag: RE2 folds Unicode properly.
      const res = values.map((v, i) => prefiltered(compileRegex(v, ci, source, offsets[i] ?? 0), ci));
      if (res.length === 1) return res[0]!;
      return (s) => {
        for (const r of res) if (r(s)) return true;
        return false;
      };
    }
    case 'cidr': {
      const ranges: CidrRange[] = values.map((v, i) => {
        const range = parseCidr(v);
        if (!range) throw compileError('HADES_ERR_RULE_BAD_VALUE', `'${v}' is not an address or an address range such as 10.0.0.0/8 or fd00::/8`, source, offsets[i] ?? 0);
        return range;
      });
      return cidrMatcher(ranges);
    }
    default:
      throw compileError('HADES_ERR_RULE_TYPE_MISMATCH', `'${base}' does not apply to strings`, source, offsets[0] ?? 0);
  }
}

/** Whole digit text, with its sign. */
const WHOLE = /^-?\d+$/;

/** An ordering against one value, numbers or whole numbers (exactly); undefined for the other operators. */
function orderingTest<T extends number | bigint>(base: BaseOp, one: T): ((n: T) => boolean) | undefined {
  switch (base) {
    case 'lt':
      return (n) => n < one;
    case 'le':
      return (n) => n <= one;
    case 'gt':
      return (n) => n > one;
    case 'ge':
      return (n) => n >= one;
    default:
      return undefined;
  }
}

function numberTest(base: BaseOp, values: readonly number[]): (n: number) => boolean {
  const one = values[0]!;
  if (base === 'eq') {
    if (values.length === 1) return (n) => n === one;
    const set = new Set(values);
    return (n) => set.has(n);
  }
  return orderingTest(base, one) ?? (() => false);
}

/**
 * A case-insensitive text test for a value already lower-cased (the caller folds the event's
 * value, once per event): what the case-insensitive test does after folding, i.e. the
 * case-sensitive test against the lower-cased literals, or for globs the patterns compiled to
 * match lower-cased texts. Undefined for the operators that fold otherwise (regular expressions
 * fold with their own flag) or do not fold.
 */
export function foldedTest(base: BaseOp, values: readonly string[]): ((s: string) => boolean) | undefined {
  if (values.length === 0) return undefined;
  switch (base) {
    case 'eq':
    case 'contains':
    case 'startswith':
    case 'endswith':
      return stringTest(base, false, values.map((v) => v.toLowerCase()), undefined, []);
    case 'glob': {
      const globs = values.map((v) => compileGlob(v, undefined, 0, true));
      if (globs.length === 1) return (s) => globs[0]!.test(s);
      return (s) => {
        for (const g of globs) if (g.test(s)) return true;
        return false;
      };
    }
    default:
      return undefined;
  }
}

/**
 * The test of one comparison, for a field of the given type with literals already converted
 * to it (the resolver checked that the operator applies to the type).
 */
export function valueTest(type: FieldType, base: BaseOp, ci: boolean, literals: readonly PlacedLiteral[], source: TextSource | undefined): ValueTest {
  const offsets = literals.map((l) => l.offset);
  if (type === 'number') {
    const t = numberTest(base, literals.map((l) => l.value as number));
    return (v) => typeof v === 'number' && t(v);
  }
  if (type === 'boolean') {
    const accepted = new Set(literals.map((l) => l.value));
    return (v) => typeof v === 'boolean' && accepted.has(v);
  }
  if (type === 'any') {
    if (base === 'lt' || base === 'le' || base === 'gt' || base === 'ge') {
      const t = numberTest(base, literals.map((l) => Number(l.value)));
      // Whole numbers past 2^53 (inodes, 64-bit counters), which events carry as digit text to
      // keep them exact, are compared exactly against a whole literal.
      const whole = literals[0] !== undefined && Number.isInteger(Number(literals[0].value)) ? BigInt(Number(literals[0].value)) : undefined;
      const big = whole === undefined ? undefined : orderingTest(base, whole);
      return (v) => {
        if (typeof v === 'number') return t(v);
        if (typeof v !== 'string') return false;
        // A text is a number when written as rules write numbers (around spaces or not): not
        // "0x10", "1e3" or "Infinity".
        const text = v.trim();
        if (!NUMBER.test(text)) return false;
        const n = Number(text);
        return big !== undefined && !Number.isSafeInteger(n) && WHOLE.test(text) ? big(BigInt(text)) : t(n);
      };
    }
    const t = stringTest(base, ci, literals.map((l) => String(l.value)), source, offsets);
    return (v) => {
      const s = asText(v);
      return s !== undefined && t(s);
    };
  }
  const t = stringTest(base, ci, literals.map((l) => String(l.value)), source, offsets);
  return (v) => typeof v === 'string' && t(v);
}
