/**
 * Literal prefilters of regular expressions, and their shortest match: the strings of which every match of a pattern
 * contains at least one (`/dev/(tcp|udp)/[0-9]+` needs `/dev/tcp/` or `/dev/udp/`). A text that
 * holds none of them cannot match, which `includes` tells several times faster than running
 * the regular expression (the idea of RE2's prefilter and of trigram indexes of code search).
 *
 * The analysis reads RE2 syntax itself and is conservative: whatever it does not understand
 * (flags, `\Q...\E`, hexadecimal or octal escapes, Unicode classes) gives no prefilter for the
 * whole pattern, never a wrong one. Case-insensitive patterns get none (RE2 folds Unicode in
 * ways `toLowerCase` does not, e.g. the Kelvin sign).
 */

/** What is known of the strings a part of a pattern matches. */
interface Info {
  /** Exactly one of these strings (a small finite set), or undefined when not known. */
  readonly exact?: ReadonlySet<string>;
  /** Every match contains one of these as a substring, or undefined for no such set. */
  readonly any?: ReadonlySet<string>;
  /** The fewest code points a match holds. */
  readonly min: number;
}

/** Largest exact set kept (products of alternations grow fast). */
const MAX_EXACT = 16;
/** Largest class expanded into its characters. */
const MAX_CLASS = 10;

class Unsupported extends Error {}

/** One character of which nothing else is known (`.`, `\d`, a large class). */
const ONE: Info = { min: 1 };
const EMPTY: Info = { exact: new Set(['']), min: 0 };

function product(a: ReadonlySet<string>, b: ReadonlySet<string>): Set<string> | undefined {
  if (a.size * b.size > MAX_EXACT) return undefined;
  const out = new Set<string>();
  for (const x of a) for (const y of b) out.add(x + y);
  return out;
}

const shortest = (set: ReadonlySet<string>) => Math.min(...[...set].map((s) => s.length));

/** The more selective of two requirements: the longer shortest string, then the fewer strings. */
function better(a: ReadonlySet<string> | undefined, b: ReadonlySet<string> | undefined): ReadonlySet<string> | undefined {
  if (a === undefined || shortest(a) === 0) return b !== undefined && shortest(b) > 0 ? b : undefined;
  if (b === undefined || shortest(b) === 0) return a;
  const la = shortest(a);
  const lb = shortest(b);
  return lb > la || (lb === la && b.size < a.size) ? b : a;
}

/** A requirement of an info: its own, or its exact set when every string of it is non-empty. */
function requirement(i: Info): ReadonlySet<string> | undefined {
  return better(i.any, i.exact);
}

function concat(items: readonly Info[]): Info {
  let exact: ReadonlySet<string> | undefined = EMPTY.exact;
  let best: ReadonlySet<string> | undefined;
  // Consecutive exact parts make one exact part: `/dev/` `(tcp|udp)` -> /dev/tcp, /dev/udp.
  let run: ReadonlySet<string> = EMPTY.exact!;
  for (const item of items) {
    best = better(best, requirement(item));
    if (item.exact !== undefined) {
      // Past the size limit, the run starts again at this part (any run of parts is required).
      run = product(run, item.exact) ?? item.exact;
      best = better(best, run);
    } else {
      run = EMPTY.exact!;
    }
    exact = exact !== undefined && item.exact !== undefined ? product(exact, item.exact) : undefined;
  }
  return { exact, any: best, min: items.reduce((n, item) => n + item.min, 0) };
}

function alternate(items: readonly Info[]): Info {
  let exact: Set<string> | undefined = new Set<string>();
  let any: Set<string> | undefined = new Set();
  for (const item of items) {
    if (exact !== undefined && item.exact !== undefined && exact.size + item.exact.size <= MAX_EXACT) for (const s of item.exact) exact.add(s);
    else exact = undefined;
    const req = requirement(item);
    if (any !== undefined && req !== undefined) for (const s of req) any.add(s);
    else any = undefined;
  }
  return { exact, any, min: Math.min(...items.map((item) => item.min)) };
}

const isWordChar = (c: string) => /[A-Za-z0-9_]/.test(c);
const SIMPLE_ESCAPES: Readonly<Record<string, string>> = { a: '\u0007', f: '\f', t: '\t', n: '\n', r: '\r', v: '\v' };

class Parser {
  private i = 0;
  constructor(private readonly p: string) {}

  parse(): Info {
    const info = this.alternation();
    if (this.i < this.p.length) throw new Unsupported();
    return info;
  }

  private alternation(): Info {
    const branches = [this.sequence()];
    while (this.p[this.i] === '|') {
      this.i++;
      branches.push(this.sequence());
    }
    return branches.length === 1 ? branches[0]! : alternate(branches);
  }

  private sequence(): Info {
    const items: Info[] = [];
    while (this.i < this.p.length && this.p[this.i] !== '|' && this.p[this.i] !== ')') items.push(this.repeat(this.atom()));
    return concat(items);
  }

  private repeat(atom: Info): Info {
    let info = atom;
    for (;;) {
      const c = this.p[this.i];
      let min: number;
      if (c === '*' || c === '?') min = 0;
      else if (c === '+') min = 1;
      else if (c === '{') {
        const m = /^\{(\d+)(,\d*)?\}/.exec(this.p.slice(this.i));
        if (!m) return info; // not a repetition: `{` is then a literal, read as an atom next
        min = Number(m[1]);
        this.i += m[0].length - 1;
      } else return info;
      this.i++;
      if (this.p[this.i] === '?') this.i++; // non-greedy: same strings
      // At least once: every match holds the atom's requirement; else nothing is required.
      info = min >= 1 ? { any: requirement(info), min: info.min * min } : { min: 0 };
    }
  }

  private atom(): Info {
    const c = this.p[this.i]!;
    this.i++;
    switch (c) {
      case '(': {
        if (this.p[this.i] === '?') {
          // Non-capturing groups and named groups only: flags change what matches.
          if (this.p[this.i + 1] === ':') this.i += 2;
          else {
            const named = /^\?P?<[A-Za-z0-9_]+>/.exec(this.p.slice(this.i));
            if (!named) throw new Unsupported();
            this.i += named[0].length;
          }
        }
        const inner = this.alternation();
        if (this.p[this.i] !== ')') throw new Unsupported();
        this.i++;
        return inner;
      }
      case '^':
      case '$':
        return EMPTY;
      case '.':
        return ONE;
      case '[':
        return this.charClass();
      case '\\':
        return this.escape();
      case '*':
      case '+':
      case '?':
      case ')':
        throw new Unsupported();
      default: {
        // A whole code point: a repetition after it repeats both halves of a surrogate pair.
        const point = String.fromCodePoint(this.p.codePointAt(this.i - 1)!);
        this.i += point.length - 1;
        return { exact: new Set([point]), min: 1 };
      }
    }
  }

  private escape(): Info {
    const c = this.p[this.i];
    if (c === undefined) throw new Unsupported();
    this.i++;
    if (c === 'b' || c === 'B' || c === 'A' || c === 'z') return EMPTY;
    if (c === 'd' || c === 'D' || c === 'w' || c === 'W' || c === 's' || c === 'S') return ONE;
    const simple = SIMPLE_ESCAPES[c];
    if (simple !== undefined) return { exact: new Set([simple]), min: 1 };
    // Escaped punctuation is the character itself; letters and digits are other things.
    if (c.charCodeAt(0) < 128 && !isWordChar(c)) return { exact: new Set([c]), min: 1 };
    throw new Unsupported();
  }

  /** A class: its characters when few and plain, else one unknown character. */
  private charClass(): Info {
    const chars = new Set<string>();
    let plain = true;
    if (this.p[this.i] === '^') {
      plain = false;
      this.i++;
    }
    let first = true;
    for (;;) {
      const c = this.p[this.i];
      if (c === undefined) throw new Unsupported();
      if (c === ']' && !first) {
        this.i++;
        break;
      }
      first = false;
      if (c === '[' && this.p[this.i + 1] === ':') {
        const end = this.p.indexOf(':]', this.i + 2);
        if (end < 0) throw new Unsupported();
        this.i = end + 2;
        plain = false;
        continue;
      }
      if (c.charCodeAt(0) >= 0xd800 && c.charCodeAt(0) <= 0xdfff) throw new Unsupported();
      let lo: string;
      if (c === '\\') {
        const e = this.p[this.i + 1];
        if (e === undefined) throw new Unsupported();
        this.i += 2;
        if (SIMPLE_ESCAPES[e] !== undefined) lo = SIMPLE_ESCAPES[e];
        else if (e.charCodeAt(0) < 128 && !isWordChar(e)) lo = e;
        else if ('dDwWsS'.includes(e)) {
          plain = false;
          continue;
        } else throw new Unsupported();
      } else {
        lo = c;
        this.i++;
      }
      if (this.p[this.i] === '-' && this.p[this.i + 1] !== ']' && this.p[this.i + 1] !== undefined) {
        let hi = this.p[this.i + 1]!;
        this.i += 2;
        if (hi === '\\') {
          const e = this.p[this.i];
          if (e === undefined || e.charCodeAt(0) >= 128 || isWordChar(e)) throw new Unsupported();
          hi = e;
          this.i++;
        }
        const from = lo.charCodeAt(0);
        const to = hi.charCodeAt(0);
        if (to < from || (to >= 0xd800 && to <= 0xdfff)) throw new Unsupported();
        if (to - from + 1 > MAX_CLASS) plain = false;
        else for (let k = from; k <= to; k++) chars.add(String.fromCharCode(k));
      } else chars.add(lo);
    }
    return plain && chars.size > 0 && chars.size <= MAX_CLASS ? { exact: chars, min: 1 } : ONE;
  }
}

function analyse(pattern: string): Info | undefined {
  try {
    return new Parser(pattern).parse();
  } catch (error) {
    if (error instanceof Unsupported) return undefined;
    throw error;
  }
}

/**
 * What the analysis tells of a pattern in one reading: `literals`, the strings of which every
 * match of it (case-sensitive) contains one, or undefined when it finds none (or does not
 * understand the pattern); `minLength`, the fewest code points any match holds (0 when it does
 * not understand it): a text of fewer UTF-16 units cannot match, whatever the case folding (RE2
 * folds one code point into one). `(^|=)[48][0-9AB][1-9A-HJ-NP-Za-km-z]{93}` needs 95: most
 * arguments are shorter.
 */
export function regexFacts(pattern: string): { readonly literals: readonly string[] | undefined; readonly minLength: number } {
  const info = analyse(pattern);
  const req = info === undefined ? undefined : requirement(info);
  return { literals: req === undefined || shortest(req) === 0 ? undefined : [...req], minLength: info?.min ?? 0 };
}

export const requiredLiterals = (pattern: string): readonly string[] | undefined => regexFacts(pattern).literals;

export const minimumLength = (pattern: string): number => regexFacts(pattern).minLength;
