/**
 * The recursive-descent parser of conditions (grammar in docs/rules.md):
 *
 *   expr       := or
 *   or         := and ('or' and)*
 *   and        := unary ('and' unary)*
 *   unary      := 'not' unary | primary
 *   primary    := '(' expr ')' | 'any' 'ancestor' '(' expr ')' | FIELD 'exists' | FIELD OPERATOR value | MACRO
 *   value      := STRING | WORD | list | LIST_NAME        (a list name only after in / iin / in_cidr)
 *   list       := '(' item (',' item)* ','? ')'           (an item naming a list expands to its items)
 *
 * Inside `any ancestor (...)`, fields are those of one ancestor (`name`, `args[1]`); the resolver
 * checks them. `any` and `ancestor` are keywords only there: `any` alone is still a macro name.
 *
 * Every node keeps its source and offset so later stages (resolution, type checks) report the
 * line and column of the very token that is wrong.
 */
import { closest } from 'fastest-levenshtein';
import { tokenize, type Token } from './lexer.js';
import { compileError, type TextSource } from './problems.js';

export type BaseOp = 'eq' | 'lt' | 'le' | 'gt' | 'ge' | 'contains' | 'startswith' | 'endswith' | 'glob' | 'regex' | 'cidr';

export interface OpSpec {
  readonly base: BaseOp;
  /** Case-insensitive. */
  readonly ci: boolean;
  /** `!=`: the negation of `=`. */
  readonly negate: boolean;
  /** The operator takes a list (`in`), or a list name after it. */
  readonly list: boolean;
  readonly text: string;
}

const op = (text: string, base: BaseOp, ci = false, negate = false, list = false): [string, OpSpec] => [text, { base, ci, negate, list, text }];

/** Every operator, by its spelling. */
export const OPERATORS: ReadonlyMap<string, OpSpec> = new Map([
  op('=', 'eq'),
  op('==', 'eq'),
  op('!=', 'eq', false, true),
  op('i=', 'eq', true),
  op('i!=', 'eq', true, true),
  op('<', 'lt'),
  op('<=', 'le'),
  op('>', 'gt'),
  op('>=', 'ge'),
  op('in', 'eq', false, false, true),
  op('iin', 'eq', true, false, true),
  op('contains', 'contains'),
  op('icontains', 'contains', true),
  op('startswith', 'startswith'),
  op('istartswith', 'startswith', true),
  op('endswith', 'endswith'),
  op('iendswith', 'endswith', true),
  op('glob', 'glob'),
  op('iglob', 'glob', true),
  op('~=', 'regex'),
  op('i~=', 'regex', true),
  op('matches', 'regex'),
  op('imatches', 'regex', true),
  op('in_cidr', 'cidr', false, false, true),
]);

/** Spellings other languages use for our operators, to suggest the right one. */
const OPERATOR_HINTS: Readonly<Record<string, string>> = {
  '=~': '~=',
  '!~': 'not ... ~=',
  '<>': '!=',
  like: 'glob',
  ilike: 'iglob',
  regex: 'matches',
  re: 'matches',
  pmatch: 'startswith',
  cidr: 'in_cidr',
  eq: '=',
  ne: '!=',
  neq: '!=',
  gt: '>',
  gte: '>=',
  lt: '<',
  lte: '<=',
  has: 'contains',
  startsWith: 'startswith',
  endsWith: 'endswith',
  begins_with: 'startswith',
  ends_with: 'endswith',
  exist: 'exists',
};

/** The operator someone writing `text` most likely meant. */
export function operatorSuggestion(text: string): string | undefined {
  // Own keys only: `constructor` or `toString` is no operator, and hints none of Object's functions.
  const hint = [text, text.toLowerCase()].map((t) => (Object.hasOwn(OPERATOR_HINTS, t) ? OPERATOR_HINTS[t] : undefined)).find((h) => h !== undefined);
  if (hint) return hint;
  if (!/^[A-Za-z_]+$/.test(text)) return undefined;
  return closest(text.toLowerCase(), [...OPERATORS.keys()].filter((n) => /^[a-z_]+$/.test(n)));
}

const KEYWORDS = new Set(['and', 'or', 'not', 'exists']);

export interface Node {
  readonly source: TextSource;
  readonly offset: number;
}

export interface AndExpr extends Node {
  readonly kind: 'and';
  readonly items: readonly Expr[];
}
export interface OrExpr extends Node {
  readonly kind: 'or';
  readonly items: readonly Expr[];
}
export interface NotExpr extends Node {
  readonly kind: 'not';
  readonly expr: Expr;
}
export interface CmpExpr extends Node {
  readonly kind: 'cmp';
  readonly field: string;
  readonly op: OpSpec;
  readonly opOffset: number;
  readonly value: ValueNode;
}
export interface ExistsExpr extends Node {
  readonly kind: 'exists';
  readonly field: string;
}
export interface MacroRef extends Node {
  readonly kind: 'macro';
  readonly name: string;
}
/** `any ancestor (expr)`: true when one ancestor satisfies `expr`, whose fields are that ancestor's. */
export interface AncestorExpr extends Node {
  readonly kind: 'ancestor';
  readonly expr: Expr;
}
/** A constant, made by the compiler (an empty list, an exception set with no values). */
export interface ConstExpr extends Node {
  readonly kind: 'const';
  readonly value: boolean;
}

export type Expr = AndExpr | OrExpr | NotExpr | AncestorExpr | CmpExpr | ExistsExpr | MacroRef | ConstExpr;

export interface ScalarItem {
  readonly kind: 'scalar';
  /** A string token was quoted: never a list name, never a number. */
  readonly quoted: boolean;
  readonly text: string;
  readonly offset: number;
}
export interface ListValue {
  readonly kind: 'list';
  readonly items: readonly ScalarItem[];
  readonly offset: number;
}
export interface ListRef {
  readonly kind: 'listref';
  readonly name: string;
  readonly offset: number;
}
export type ValueNode = ScalarItem | ListValue | ListRef;

const MAX_DEPTH = 64;
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

class Parser {
  private pos = 0;
  private depth = 0;
  constructor(
    private readonly tokens: readonly Token[],
    private readonly source: TextSource,
  ) {}

  private peek(): Token {
    return this.tokens[this.pos]!;
  }
  private next(): Token {
    const t = this.tokens[this.pos]!;
    if (t.kind !== 'eof') this.pos++;
    return t;
  }
  private isWord(t: Token, word: string): boolean {
    return t.kind === 'word' && t.text === word;
  }
  private fail(message: string, t: Token): never {
    throw compileError('HADES_ERR_RULE_SYNTAX', message, this.source, t.offset);
  }
  private describe(t: Token): string {
    return t.kind === 'eof' ? 'the end of the condition' : `'${t.kind === 'string' ? JSON.stringify(t.text) : t.text}'`;
  }

  parse(): Expr {
    if (this.peek().kind === 'eof') this.fail('the condition is empty', this.peek());
    const expr = this.or();
    const t = this.peek();
    if (t.kind !== 'eof') {
      if (t.kind === 'rparen') this.fail("unbalanced ')': no '(' opens it", t);
      this.fail(`expected 'and', 'or' or the end of the condition, found ${this.describe(t)}`, t);
    }
    return expr;
  }

  private or(): Expr {
    const first = this.and();
    const items = [first];
    while (this.isWord(this.peek(), 'or')) {
      this.next();
      items.push(this.and());
    }
    return items.length === 1 ? first : { kind: 'or', items, source: this.source, offset: first.offset };
  }

  private and(): Expr {
    const first = this.unary();
    const items = [first];
    while (this.isWord(this.peek(), 'and')) {
      this.next();
      items.push(this.unary());
    }
    return items.length === 1 ? first : { kind: 'and', items, source: this.source, offset: first.offset };
  }

  private unary(): Expr {
    const t = this.peek();
    if (this.isWord(t, 'not')) {
      this.next();
      this.enter(t);
      const expr = this.unary();
      this.depth--;
      return { kind: 'not', expr, source: this.source, offset: t.offset };
    }
    return this.primary();
  }

  private enter(t: Token): void {
    if (++this.depth > MAX_DEPTH) this.fail(`the condition nests deeper than ${MAX_DEPTH} levels`, t);
  }

  private primary(): Expr {
    const t = this.next();
    if (t.kind === 'lparen') {
      this.enter(t);
      const expr = this.or();
      this.depth--;
      const close = this.next();
      if (close.kind !== 'rparen') {
        const open = this.source.locate(t.offset);
        this.fail(`expected ')' to close the '(' of line ${open.line}, column ${open.column}, found ${this.describe(close)}`, close);
      }
      return expr;
    }
    if (this.isWord(t, 'any') && this.peek().kind === 'word' && (this.peek().text === 'ancestor' || this.peek().text === 'ancestors')) return this.anyAncestor(t);
    if (t.kind !== 'word' || KEYWORDS.has(t.text) || t.text === 'or') {
      this.fail(`expected a field, a macro or '(', found ${this.describe(t)}`, t);
    }
    const after = this.peek();
    if (this.isWord(after, 'exists')) {
      this.next();
      return { kind: 'exists', field: t.text, source: this.source, offset: t.offset };
    }
    const spec = this.operatorAt(after);
    if (spec) {
      this.next();
      const value = this.value(spec, after);
      return { kind: 'cmp', field: t.text, op: spec, opOffset: after.offset, value, source: this.source, offset: t.offset };
    }
    // Not followed by an operator: a macro, if it can be one.
    if (after.kind === 'op' || (after.kind === 'word' && !this.isWord(after, 'and') && !this.isWord(after, 'or'))) {
      this.badOperator(after);
    }
    if (!NAME.test(t.text)) {
      if (after.kind === 'eof' || after.kind === 'rparen' || this.isWord(after, 'and') || this.isWord(after, 'or')) {
        this.fail(`expected an operator after the field '${t.text}', found ${this.describe(after)}`, after);
      }
      this.fail(`'${t.text}' is neither a macro name nor followed by an operator`, t);
    }
    return { kind: 'macro', name: t.text, source: this.source, offset: t.offset };
  }

  /** `any ancestor (expr)`, after `any`. */
  private anyAncestor(any: Token): Expr {
    const word = this.next();
    if (word.text !== 'ancestor') this.fail("expected 'any ancestor (', found 'any ancestors'", word);
    const open = this.next();
    if (open.kind !== 'lparen') this.fail(`expected '(' after 'any ancestor', found ${this.describe(open)}`, open);
    this.enter(open);
    const expr = this.or();
    this.depth--;
    const close = this.next();
    if (close.kind !== 'rparen') {
      const at = this.source.locate(open.offset);
      this.fail(`expected ')' to close the 'any ancestor (' of line ${at.line}, column ${at.column}, found ${this.describe(close)}`, close);
    }
    return { kind: 'ancestor', expr, source: this.source, offset: any.offset };
  }

  private operatorAt(t: Token): OpSpec | undefined {
    if (t.kind !== 'op' && t.kind !== 'word') return undefined;
    return OPERATORS.get(t.text);
  }

  private badOperator(t: Token): never {
    const near = operatorSuggestion(t.text);
    throw compileError(
      'HADES_ERR_RULE_BAD_OPERATOR',
      `unknown operator '${t.text}'${near ? `; did you mean '${near}'?` : ''}`,
      this.source,
      t.offset,
      near,
    );
  }

  private value(spec: OpSpec, opToken: Token): ValueNode {
    const t = this.peek();
    if (t.kind === 'lparen') return this.list();
    if (t.kind === 'string' || t.kind === 'word') {
      this.next();
      if (spec.list && t.kind === 'word' && spec.base !== 'cidr') {
        if (!NAME.test(t.text)) this.fail(`'${opToken.text}' takes a list: '(a, b)' or the name of a list, found '${t.text}'`, t);
        return { kind: 'listref', name: t.text, offset: t.offset };
      }
      if (spec.base === 'cidr' && t.kind === 'word' && NAME.test(t.text)) return { kind: 'listref', name: t.text, offset: t.offset };
      if (spec.list && t.kind === 'string' && spec.base !== 'cidr') this.fail(`'${opToken.text}' takes a list: '(a, b)' or the name of a list`, t);
      return { kind: 'scalar', quoted: t.kind === 'string', text: t.text, offset: t.offset };
    }
    this.fail(`expected a value after '${opToken.text}', found ${this.describe(t)}`, t);
  }

  private list(): ListValue {
    const open = this.next();
    const items: ScalarItem[] = [];
    for (;;) {
      const t = this.next();
      if (t.kind === 'rparen' && items.length === 0) this.fail('a list needs at least one item', t);
      if (t.kind !== 'string' && t.kind !== 'word') this.fail(`expected a list item, found ${this.describe(t)}`, t);
      items.push({ kind: 'scalar', quoted: t.kind === 'string', text: t.text, offset: t.offset });
      const sep = this.next();
      if (sep.kind === 'rparen') break;
      if (sep.kind !== 'comma') this.fail(`expected ',' or ')' in the list, found ${this.describe(sep)}`, sep);
      if (this.peek().kind === 'rparen') {
        this.next();
        break;
      }
    }
    return { kind: 'list', items, offset: open.offset };
  }
}

/** Parses a condition; throws a RuleCompileError (HADES_ERR_RULE_SYNTAX or _BAD_OPERATOR). */
export function parseCondition(source: TextSource): Expr {
  return new Parser(tokenize(source), source).parse();
}
