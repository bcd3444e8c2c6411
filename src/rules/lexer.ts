/**
 * The tokenizer of conditions. Tokens keep their offset in the condition text, which the
 * TextSource turns into a line and column of the rule file when something is wrong.
 *
 * Words are runs of letters, digits and the characters `_ . / : * ? - + @ % $ [ ]`: field paths
 * (`process.args[1]`), keywords (`and`, `contains`), unquoted values (`/usr/bin/curl`,
 * `10.0.0.0/8`, `-e`, `/tmp/*`) and numbers (`22`, `-1`, `0.5`) are all words, told apart by the
 * parser from where they stand. `i=`, `i!=` and `i~=` are the case-insensitive comparisons.
 */
import { compileError, type TextSource } from './problems.js';

export type TokenKind = 'word' | 'string' | 'op' | 'lparen' | 'rparen' | 'comma' | 'eof';

export interface Token {
  readonly kind: TokenKind;
  /** For strings, the unescaped value; for others, the text as written. */
  readonly text: string;
  readonly offset: number;
  readonly end: number;
}

const WORD_CHAR = /[A-Za-z0-9_./:*?\-+@%$[\]]/;
const OP_CHAR = /[=!<>~]/;

export const NUMBER = /^-?(?:\d+(?:\.\d+)?|\.\d+)$/;

export function tokenize(source: TextSource): Token[] {
  const text = source.text;
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
      continue;
    }
    const start = i;
    if (c === '(') {
      tokens.push({ kind: 'lparen', text: c, offset: start, end: ++i });
    } else if (c === ')') {
      tokens.push({ kind: 'rparen', text: c, offset: start, end: ++i });
    } else if (c === ',') {
      tokens.push({ kind: 'comma', text: c, offset: start, end: ++i });
    } else if (c === '"' || c === "'") {
      let value = '';
      i++;
      for (;;) {
        if (i >= text.length) throw compileError('HADES_ERR_RULE_SYNTAX', `unterminated string: missing the closing ${c}`, source, start);
        const ch = text[i]!;
        if (ch === c) {
          i++;
          break;
        }
        if (ch === '\\' && i + 1 < text.length) {
          const next = text[i + 1]!;
          // Only quotes (either kind, in either kind of string), backslashes and the usual control
          // escapes are unescaped; anything else keeps its backslash, so regular expressions read
          // as written ("\d+", "\.sh$").
          if (next === '"' || next === "'" || next === '\\') value += next;
          else if (next === 'n') value += '\n';
          else if (next === 't') value += '\t';
          else value += ch + next;
          i += 2;
          continue;
        }
        value += ch;
        i++;
      }
      tokens.push({ kind: 'string', text: value, offset: start, end: i });
    } else if (OP_CHAR.test(c)) {
      while (i < text.length && OP_CHAR.test(text[i]!)) i++;
      tokens.push({ kind: 'op', text: text.slice(start, i), offset: start, end: i });
    } else if (WORD_CHAR.test(c)) {
      while (i < text.length && WORD_CHAR.test(text[i]!)) i++;
      const word = text.slice(start, i);
      // `i=`, `i!=`, `i~=`: the case-insensitive forms of the symbolic comparisons.
      if (word === 'i' && i < text.length && OP_CHAR.test(text[i]!)) {
        while (i < text.length && OP_CHAR.test(text[i]!)) i++;
        tokens.push({ kind: 'op', text: text.slice(start, i), offset: start, end: i });
      } else {
        tokens.push({ kind: 'word', text: word, offset: start, end: i });
      }
    } else {
      throw compileError('HADES_ERR_RULE_SYNTAX', `unexpected character '${c}'`, source, start);
    }
  }
  tokens.push({ kind: 'eof', text: '', offset: text.length, end: text.length });
  return tokens;
}
