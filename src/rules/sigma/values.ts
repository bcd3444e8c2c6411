/**
 * Sigma values: the wildcards and escapes of plain strings, and the modifiers that transform
 * values before they are compared (windash, base64, base64offset, utf16*). A value becomes a
 * pattern: literal text and wildcards (`*` any run, `?` one character), which the detection
 * turns into the cheapest Hades operator that means the same (=, contains, startswith,
 * endswith, else glob).
 */

/** `*` or `?` of a Sigma value, kept apart from literal text. */
export type Wildcard = { readonly wildcard: '*' | '?' };
export type Piece = string | Wildcard;
export type Pattern = readonly Piece[];

export const STAR: Wildcard = { wildcard: '*' };
const ONE: Wildcard = { wildcard: '?' };

/**
 * Sigma's escapes: `\*` and `\?` are literal wildcards, `\\` a backslash; a backslash before
 * anything else is itself (`C:\Windows`, `\node`).
 */
export function parseValue(s: string): Pattern {
  const out: Piece[] = [];
  let lit = '';
  const flush = () => {
    if (lit !== '') out.push(lit);
    lit = '';
  };
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\') {
      const next = s[i + 1];
      if (next === '*' || next === '?' || next === '\\') {
        lit += next;
        i++;
      } else lit += c;
    } else if (c === '*' || c === '?') {
      flush();
      out.push(c === '*' ? STAR : ONE);
    } else lit += c;
  }
  flush();
  return out;
}

export function hasWildcards(p: Pattern): boolean {
  return p.some((x) => typeof x !== 'string');
}

export function literalOf(p: Pattern): string {
  return p.map((x) => (typeof x === 'string' ? x : x.wildcard)).join('');
}

/** Adjacent literals joined, runs of `*` made one. */
export function normalise(p: Pattern): Pattern {
  const out: Piece[] = [];
  for (const x of p) {
    const last = out[out.length - 1];
    if (typeof x === 'string') {
      if (x === '') continue;
      if (typeof last === 'string') out[out.length - 1] = last + x;
      else out.push(x);
    } else if (!(x.wildcard === '*' && typeof last === 'object' && last.wildcard === '*')) out.push(x);
  }
  return out;
}

/** The pattern as a Hades glob: literal `* ? [ \` escaped. */
export function globOf(p: Pattern): string {
  return p.map((x) => (typeof x === 'string' ? x.replace(/[*?[\\]/g, (c) => `\\${c}`) : x.wildcard)).join('');
}

// ----- transformations -----

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Base64 of bytes, with `=` padding. */
export function base64(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const a = bytes[i]!;
    const b = bytes[i + 1];
    const c = bytes[i + 2];
    const n = (a << 16) | ((b ?? 0) << 8) | (c ?? 0);
    out += BASE64[(n >> 18) & 63]! + BASE64[(n >> 12) & 63]!;
    out += b === undefined ? '=' : BASE64[(n >> 6) & 63]!;
    out += c === undefined ? '=' : BASE64[n & 63]!;
  }
  return out;
}

/**
 * The three forms `bytes` takes inside a longer base64 text, one per position of its first
 * byte within a 3-byte group: only the characters that depend on these bytes alone are kept
 * (a character carries 6 bits: with `shift` bytes before, the first ceil(8*shift/6) characters
 * mix in the unknown bytes before, and the last partial one the unknown bytes after).
 */
export function base64Offsets(bytes: Uint8Array): string[] {
  const out: string[] = [];
  for (let shift = 0; shift < 3; shift++) {
    const padded = new Uint8Array(shift + bytes.length);
    padded.set(bytes, shift);
    const start = Math.ceil((8 * shift) / 6);
    const end = Math.floor((8 * (shift + bytes.length)) / 6);
    const s = base64(padded).slice(start, end);
    if (s !== '' && !out.includes(s)) out.push(s);
  }
  return out;
}

export function utf8(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

export function utf16(s: string, order: 'le' | 'be', bom: boolean): Uint8Array {
  const out: number[] = bom ? (order === 'le' ? [0xff, 0xfe] : [0xfe, 0xff]) : [];
  for (let i = 0; i < s.length; i++) {
    const u = s.charCodeAt(i);
    if (order === 'le') out.push(u & 0xff, u >> 8);
    else out.push(u >> 8, u & 0xff);
  }
  return Uint8Array.from(out);
}

/** Dash-like characters windash swaps for one another. */
export const WINDASH = ['-', '/', '\u2013', '\u2014', '\u2015'] as const;

/** Variants of a pattern, every dash-like character replaced by each of WINDASH; undefined past `limit`. */
export function windash(p: Pattern, limit: number): Pattern[] | undefined {
  let variants: Piece[][] = [[]];
  for (const piece of p) {
    if (typeof piece !== 'string') {
      for (const v of variants) v.push(piece);
      continue;
    }
    for (const ch of piece) {
      if ((WINDASH as readonly string[]).includes(ch)) {
        const next: Piece[][] = [];
        for (const v of variants) for (const d of WINDASH) next.push([...v, d]);
        if (next.length > limit) return undefined;
        variants = next;
      } else for (const v of variants) v.push(ch);
    }
  }
  return variants.map(normalise);
}
