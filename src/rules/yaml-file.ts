/**
 * One rule file as YAML: parsed once with positions kept (yaml's LineCounter), so that every
 * problem, down to a token inside a condition, is reported at its line and column in the file.
 */
import { isMap, isPair, isScalar, LineCounter, parseDocument, Scalar, visit, type Document, type Node } from 'yaml';
import type { Position, TextSource } from './problems.js';

export type YamlPath = readonly (string | number)[];

function isSpace(c: string | undefined): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\r';
}

/** What YAML's double-quoted escapes stand for, besides `\\xXX`, `\\uXXXX`, `\\UXXXXXXXX` and an escaped line break. */
const QUOTED_ESCAPES: Readonly<Record<string, string>> = {
  '0': '\0',
  a: '\u0007',
  b: '\b',
  t: '\t',
  '\t': '\t',
  n: '\n',
  v: '\v',
  f: '\f',
  r: '\r',
  e: '\u001b',
  ' ': ' ',
  '"': '"',
  '/': '/',
  '\\': '\\',
  N: '\u0085',
  _: '\u00a0',
  L: '\u2028',
  P: '\u2029',
};

const HEX_DIGITS: Readonly<Record<string, number>> = { x: 2, u: 4, U: 8 };

/**
 * The characters of a scalar's source between `from` and `end`, each with the offset where it is
 * written: a double-quoted scalar's escapes (`\\"`, `\\u00e9`) stand for the characters they make,
 * so that the value lines up with them instead of skipping past them.
 */
function sourceChars(text: string, from: number, end: number, doubleQuoted: boolean): { chars: string[]; at: number[] } {
  const chars: string[] = [];
  const at: number[] = [];
  for (let j = from; j < end; j++) {
    const c = text[j]!;
    if (!doubleQuoted || c !== '\\' || j + 1 >= end) {
      chars.push(c);
      at.push(j);
      continue;
    }
    const e = text[j + 1]!;
    const digits = HEX_DIGITS[e];
    let made: string | undefined = QUOTED_ESCAPES[e];
    let length = 2;
    const hex = digits === undefined ? '' : text.slice(j + 2, Math.min(j + 2 + digits, end));
    if (digits !== undefined && hex.length === digits && /^[0-9a-fA-F]+$/.test(hex)) {
      const code = parseInt(hex, 16);
      made = code <= 0x10ffff ? String.fromCodePoint(code) : undefined;
      length += digits;
    } else if (e === '\n' || e === '\r') made = ''; // a line continued: no character
    // Every UTF-16 unit of what the escape makes (two for `\\U0001F600`) sits at the escape.
    const units = made ?? text.slice(j, j + length);
    for (let k = 0; k < units.length; k++) {
      chars.push(units[k]!);
      at.push(j);
    }
    j += length - 1;
  }
  return { chars, at };
}

/**
 * The offset of a document's first alias (`*name`), if it has one: where to look when resolving
 * aliases fails (one without its anchor, or too many), which the parser says without a place.
 */
export function firstAliasOffset(doc: Document): number | undefined {
  let offset: number | undefined;
  visit(doc, {
    Alias: (_key, node) => {
      offset = node.range?.[0];
      return visit.BREAK;
    },
  });
  return offset;
}

export class YamlFile {
  readonly lines = new LineCounter();
  readonly doc: Document;

  constructor(
    readonly name: string,
    readonly text: string,
  ) {
    this.doc = parseDocument(text, { lineCounter: this.lines, prettyErrors: false, uniqueKeys: true, keepSourceTokens: false, logLevel: 'error' });
  }

  position(offset: number): Position {
    const p = this.lines.linePos(offset);
    return { line: p.line, column: p.col };
  }

  node(path: YamlPath): Node | undefined {
    if (path.length === 0) return this.doc.contents ?? undefined;
    const n: unknown = this.doc.getIn(path, true);
    return n && typeof n === 'object' && 'range' in n ? (n as Node) : undefined;
  }

  /**
   * A list item or exception value as the file writes it: a number or boolean keeps its own text
   * (`04755`, which YAML reads as the number 4755), as the same value written in a condition does.
   */
  written(path: YamlPath, value: unknown): string {
    if (typeof value === 'string') return value;
    const node = this.node(path);
    if (node && isScalar(node) && node.range && (typeof node.value === 'number' || typeof node.value === 'boolean')) return this.text.slice(node.range[0], node.range[1]);
    return String(value);
  }

  /** The key node of the last segment of `path` (for unknown keys), else the value node. */
  keyNode(path: YamlPath): Node | undefined {
    const parent = this.node(path.slice(0, -1));
    const key = path[path.length - 1];
    if (parent && isMap(parent)) {
      for (const pair of parent.items) {
        if (isPair(pair) && isScalar(pair.key) && pair.key.value === key) return pair.key;
      }
    }
    return this.node(path);
  }

  /** Where the first alias (`*name`) of the file is written, if it has one. */
  firstAlias(): Position | undefined {
    const offset = firstAliasOffset(this.doc);
    return offset === undefined ? undefined : this.position(offset);
  }

  /** Position of the node at `path` (or of its closest existing parent). */
  at(path: YamlPath, key = false): Position | undefined {
    for (let n = path.length; n >= 0; n--) {
      const node = key && n === path.length ? this.keyNode(path) : this.node(path.slice(0, n));
      const offset = node?.range?.[0];
      if (offset !== undefined) return this.position(offset);
    }
    return undefined;
  }

  /**
   * The text of a string scalar with a locator from offsets in its value to file positions.
   * Quoting, escapes, folding and indentation make the value differ from the source, so the
   * value is aligned with the source character by character (whitespace runs match any
   * whitespace), computed only when a position is asked for.
   */
  source(path: YamlPath, value: string): TextSource {
    const node = this.node(path);
    const file = this.name;
    if (!node || !isScalar(node) || !node.range) {
      const where = this.at(path) ?? { line: 1, column: 1 };
      return { file, text: value, locate: () => where };
    }
    const [start, end] = node.range;
    let from = start;
    const type = node.type;
    if (type === Scalar.QUOTE_DOUBLE || type === Scalar.QUOTE_SINGLE) from++;
    else if (type === Scalar.BLOCK_FOLDED || type === Scalar.BLOCK_LITERAL) {
      const newline = this.text.indexOf('\n', start);
      from = newline < 0 ? end : newline + 1;
    }
    let map: number[] | undefined;
    const align = (): number[] => {
      const { chars, at } = sourceChars(this.text, from, end, type === Scalar.QUOTE_DOUBLE);
      const out: number[] = [];
      let j = 0;
      for (let i = 0; i < value.length; i++) {
        const c = value[i]!;
        while (j < chars.length && chars[j] !== c && !(isSpace(c) && isSpace(chars[j]))) j++;
        out.push(at[j] ?? end);
        if (j < chars.length) j++;
      }
      out.push(at[j] ?? end);
      return out;
    };
    // A plain value ends where ' #' starts a comment on its line: keep the comment for problems.
    const comment = type === Scalar.PLAIN ? /^[ \t]+(#[^\n]*)/.exec(this.text.slice(end, this.text.indexOf('\n', end) < 0 ? undefined : this.text.indexOf('\n', end)))?.[1] : undefined;
    return {
      file,
      text: value,
      ...(comment !== undefined ? { cutComment: comment } : {}),
      locate: (offset) => {
        map ??= align();
        return this.position(map[Math.max(0, Math.min(offset, map.length - 1))]!);
      },
    };
  }
}
