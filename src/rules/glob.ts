/**
 * Glob patterns, matched without regular expressions so that no pattern can make matching
 * slower than O(pattern x text): `*` matches any run of characters (`/` included), `?` one
 * character, `[abc]`, `[a-z]` and `[!abc]` one character of (or not of) a set; `\` makes the
 * next character literal. The whole text must match, as with shell globs. A character is a
 * UTF-16 unit (segments have a fixed length): one beyond U+FFFF takes `??` (docs/rules.md).
 *
 * The pattern is cut at its stars into segments. The first segment must match at the start,
 * the last at the end, and each one between at its leftmost place after the previous one:
 * taking the leftmost place never loses a match, because a star can absorb whatever it skips.
 */
import { compileError, type TextSource } from './problems.js';

type Atom = { kind: 'char'; c: string } | { kind: 'any' } | { kind: 'set'; negated: boolean; caseless: boolean; ranges: readonly (readonly [number, number])[] };

interface Segment {
  readonly atoms: readonly Atom[];
  /** The segment as plain text when it has no ? or [..], for indexOf. */
  readonly literal: string | undefined;
}

export interface Glob {
  readonly pattern: string;
  test(text: string): boolean;
}

const SIGMAS: readonly (readonly [number, number])[] = [[0x3c2, 0x3c3]];
const DOTTED_I = '\u0130';
const COMBINING_DOT = '\u0307';

/**
 * A lower-cased text as a caseless glob reads it: the one character whose lower case is two
 * units (İ, U+0130, to i and U+0307) put back as one, so that `?` and a set take it whole.
 */
function composed(text: string): string {
  return text.includes(COMBINING_DOT) ? text.replaceAll(`i${COMBINING_DOT}`, DOTTED_I) : text;
}

function parse(pattern: string, source: TextSource | undefined, offset: number, caseless: boolean): Segment[] {
  const segments: Segment[] = [];
  let atoms: Atom[] = [];
  // A character of the pattern against a lower-cased text: its lower case (one or two units);
  // a sigma, either of the two a text's capital sigma lower-cases to, by its place in a word.
  const char = (c: string) => {
    // İ (U+0130) lower-cases to two units, i and a combining dot: kept whole, as the text's are (composed).
    const folded = caseless && c !== DOTTED_I ? c.toLowerCase() : c;
    if (caseless && (folded === 'σ' || folded === 'ς')) atoms.push({ kind: 'set', negated: false, caseless: false, ranges: SIGMAS });
    else for (let k = 0; k < folded.length; k++) atoms.push({ kind: 'char', c: folded[k]! });
  };
  const flush = () => {
    const literal = atoms.every((a) => a.kind === 'char') ? atoms.map((a) => (a as { c: string }).c).join('') : undefined;
    segments.push({ atoms, literal });
    atoms = [];
  };
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i]!;
    if (c === '*') {
      flush();
      while (pattern[i] === '*') i++;
      continue;
    }
    if (c === '?') atoms.push({ kind: 'any' });
    else if (c === '\\' && i + 1 < pattern.length) char(pattern[++i]!);
    else if (c === '[') {
      const negated = pattern[i + 1] === '!' || pattern[i + 1] === '^';
      // The set's first character is never its end, after a negation too: `[]a]`, `[!]a]`.
      const from = i + (negated ? 2 : 1);
      const close = pattern.indexOf(']', from + 1);
      if (close < 0) throw compileError('HADES_ERR_RULE_BAD_VALUE', `glob '${pattern}': '[' has no closing ']'`, source, offset);
      const body = pattern.slice(from, close);
      const ranges: [number, number][] = [];
      for (let j = 0; j < body.length; j++) {
        const lo = body.charCodeAt(j);
        if (body[j + 1] === '-' && j + 2 < body.length) {
          const hi = body.charCodeAt(j + 2);
          if (hi < lo) throw compileError('HADES_ERR_RULE_BAD_VALUE', `glob '${pattern}': range '${body.slice(j, j + 3)}' is reversed`, source, offset);
          ranges.push([lo, hi]);
          j += 2;
        } else ranges.push([lo, lo]);
      }
      atoms.push({ kind: 'set', negated, caseless, ranges });
      i = close;
    } else char(c);
    i++;
  }
  flush();
  return segments;
}

function inRanges(ranges: readonly (readonly [number, number])[], code: number): boolean {
  for (const [lo, hi] of ranges) if (code >= lo && code <= hi) return true;
  return false;
}

function atomMatches(a: Atom, code: number): boolean {
  if (a.kind === 'any') return true;
  if (a.kind === 'char') return a.c.charCodeAt(0) === code;
  let inSet = inRanges(a.ranges, code);
  // A caseless set keeps its ranges as written (`[0-Z]` lower-cased would be `[0-z]`, which
  // holds `[` and `_`): a lower-cased character is in it when it, or its upper case, is.
  if (!inSet && a.caseless) {
    const upper = String.fromCharCode(code).toUpperCase();
    inSet = upper.length === 1 && inRanges(a.ranges, upper.charCodeAt(0));
  }
  return inSet !== a.negated;
}

function matchAt(seg: Segment, text: string, at: number): boolean {
  if (at < 0 || at + seg.atoms.length > text.length) return false;
  for (let k = 0; k < seg.atoms.length; k++) if (!atomMatches(seg.atoms[k]!, text.charCodeAt(at + k))) return false;
  return true;
}

function findFrom(seg: Segment, text: string, from: number): number {
  if (seg.literal !== undefined) return text.indexOf(seg.literal, from);
  for (let at = from; at + seg.atoms.length <= text.length; at++) if (matchAt(seg, text, at)) return at;
  return -1;
}

/**
 * @param caseless the texts tested are lower-cased by the caller (`iglob`): the pattern's
 * characters are lower-cased here, and its sets hold a character when they hold its upper case.
 */
export function compileGlob(pattern: string, source?: TextSource, offset = 0, caseless = false): Glob {
  const glob = compileCased(pattern, parse(pattern, source, offset, caseless));
  return caseless ? { pattern, test: (text) => glob.test(composed(text)) } : glob;
}

function compileCased(pattern: string, segments: Segment[]): Glob {
  // segments.length === 1: no star at all, the whole text must match the one segment.
  if (segments.length === 1) {
    const only = segments[0]!;
    if (only.literal !== undefined) {
      const literal = only.literal;
      return { pattern, test: (text) => text === literal };
    }
    return { pattern, test: (text) => text.length === only.atoms.length && matchAt(only, text, 0) };
  }
  const first = segments[0]!;
  const last = segments[segments.length - 1]!;
  const middle = segments.slice(1, -1).filter((s) => s.atoms.length > 0);
  const minLength = segments.reduce((n, s) => n + s.atoms.length, 0);
  return {
    pattern,
    test(text) {
      if (text.length < minLength) return false;
      if (!matchAt(first, text, 0)) return false;
      const end = text.length - last.atoms.length;
      if (!matchAt(last, text, end)) return false;
      let at = first.atoms.length;
      for (const seg of middle) {
        const found = findFrom(seg, text, at);
        if (found < 0 || found + seg.atoms.length > end) return false;
        at = found + seg.atoms.length;
      }
      return true;
    },
  };
}
