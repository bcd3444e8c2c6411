/**
 * Resolution and type checking: turns a parsed condition into a resolved one, where macros are
 * expanded, lists looked up, fields checked against the event schema (with a suggestion for an
 * unknown one), operators checked against the field's type, literals converted to it, and each
 * comparison's value test compiled. Everything that can be wrong with a rule short of its YAML
 * shape is found here, at load time, with the position of the token at fault.
 */
import type { ValueTest } from './accessor.js';
import { resolveField, type FieldRef } from './fields.js';
import { NUMBER } from './lexer.js';
import { opCost, valueTest, type Literal, type PlacedLiteral } from './operators.js';
import { parseCondition, type CmpExpr, type Expr, type OpSpec, type ScalarItem, type ValueNode } from './parser.js';
import { compileError, RuleCompileError, type TextSource } from './problems.js';
import { suggest } from './suggest.js';

export interface RCmp {
  readonly kind: 'cmp';
  readonly field: FieldRef;
  readonly op: OpSpec;
  readonly values: readonly Literal[];
  readonly test: ValueTest;
  readonly cost: number;
}
export interface RExists {
  readonly kind: 'exists';
  readonly field: FieldRef;
  readonly cost: number;
}
export interface RAnd {
  readonly kind: 'and';
  readonly items: readonly RExpr[];
}
export interface ROr {
  readonly kind: 'or';
  readonly items: readonly RExpr[];
}
export interface RNot {
  readonly kind: 'not';
  readonly expr: RExpr;
}
export interface RConst {
  readonly kind: 'const';
  readonly value: boolean;
}
export type RExpr = RCmp | RExists | RAnd | ROr | RNot | RConst;

export interface MacroDef {
  readonly name: string;
  readonly source: TextSource;
  /** Where the macro is defined, for problems about it as a whole. */
  readonly offset: number;
  parsed?: Expr;
  resolved?: RExpr;
  error?: RuleCompileError;
  uses: number;
}

export interface ListItem {
  readonly text: string;
  /** A quoted YAML string: never taken as the name of another list. */
  readonly quoted: boolean;
}

export interface ListDef {
  readonly name: string;
  readonly items: readonly ListItem[];
  uses: number;
}

export interface Scope {
  readonly macros: ReadonlyMap<string, MacroDef>;
  readonly lists: ReadonlyMap<string, ListDef>;
}

const BOOLEANS: Readonly<Record<string, boolean>> = { true: true, false: false };

export class Resolver {
  /** Macros being resolved, innermost last: a name met twice is a cycle. */
  private readonly stack: string[] = [];

  constructor(private readonly scope: Scope) {}

  resolve(expr: Expr): RExpr {
    switch (expr.kind) {
      case 'and':
      case 'or':
        return { kind: expr.kind, items: expr.items.map((e) => this.resolve(e)) };
      case 'not':
        return { kind: 'not', expr: this.resolve(expr.expr) };
      case 'const':
        return { kind: 'const', value: expr.value };
      case 'macro':
        return this.macro(expr.name, expr.source, expr.offset);
      case 'exists':
        return { kind: 'exists', field: this.field(expr.field, expr.source, expr.offset), cost: 1 };
      case 'cmp':
        return this.comparison(expr);
    }
  }

  private macro(name: string, source: TextSource, offset: number): RExpr {
    const def = this.scope.macros.get(name);
    if (!def) {
      const suggestion = suggest(name, this.scope.macros.keys());
      throw compileError(
        'HADES_ERR_RULE_UNKNOWN_MACRO',
        `unknown macro '${name}'${suggestion ? `; did you mean '${suggestion}'?` : ''}`,
        source,
        offset,
        suggestion,
      );
    }
    def.uses++;
    if (def.resolved) return def.resolved;
    if (this.stack.includes(name)) {
      const loop = [...this.stack.slice(this.stack.indexOf(name)), name].join(' -> ');
      throw compileError('HADES_ERR_RULE_CYCLE', `macros refer to each other in a loop: ${loop}`, source, offset);
    }
    if (def.error) throw this.macroFailed(def, source, offset);
    this.stack.push(name);
    try {
      def.parsed ??= parseCondition(def.source);
      def.resolved = this.resolve(def.parsed);
      return def.resolved;
    } catch (error) {
      if (!(error instanceof RuleCompileError)) throw error;
      // A loop is reported where it closes; other errors belong to the macro itself.
      if (error.code === 'HADES_ERR_RULE_CYCLE' && this.stack.length > 1) throw error;
      def.error = error;
      throw this.macroFailed(def, source, offset);
    } finally {
      this.stack.pop();
    }
  }

  /** The error a rule gets for using a broken macro (the macro's own error is reported apart, once). */
  private macroFailed(def: MacroDef, source: TextSource, offset: number): RuleCompileError {
    const inner = def.error!;
    return new RuleCompileError(inner.code, `macro '${def.name}' cannot be used: ${inner.message}`, source, offset);
  }

  private field(text: string, source: TextSource, offset: number): FieldRef {
    const r = resolveField(text);
    if (!r.ok) {
      throw compileError('HADES_ERR_RULE_UNKNOWN_FIELD', `${r.message}${r.suggestion ? `; did you mean '${r.suggestion}'?` : ''}`, source, offset, r.suggestion);
    }
    return r.ref;
  }

  private items(value: ValueNode, source: TextSource): ScalarItem[] {
    switch (value.kind) {
      case 'scalar':
        return [value];
      case 'listref':
        return this.listItems(value.name, source, value.offset);
      case 'list': {
        const out: ScalarItem[] = [];
        for (const item of value.items) {
          if (!item.quoted && this.scope.lists.has(item.text)) out.push(...this.listItems(item.text, source, item.offset));
          else out.push(item);
        }
        return out;
      }
    }
  }

  private listItems(name: string, source: TextSource, offset: number): ScalarItem[] {
    const list = this.scope.lists.get(name);
    if (!list) {
      const suggestion = suggest(name, this.scope.lists.keys());
      throw compileError('HADES_ERR_RULE_UNKNOWN_LIST', `unknown list '${name}'${suggestion ? `; did you mean '${suggestion}'?` : ''}`, source, offset, suggestion);
    }
    list.uses++;
    return list.items.map((i) => ({ kind: 'scalar', quoted: i.quoted, text: i.text, offset }));
  }

  private comparison(expr: CmpExpr): RExpr {
    const { source, op } = expr;
    const field = this.field(expr.field, source, expr.offset);
    const info = field.info;
    const items = this.items(expr.value, source);
    if (items.length === 0) {
      // An empty named list: `x in empty` is false, `x != ...` true.
      return { kind: 'const', value: op.negate };
    }
    const mismatch = (message: string, offset = expr.opOffset): never => {
      throw compileError('HADES_ERR_RULE_TYPE_MISMATCH', message, source, offset);
    };
    const numeric = op.base === 'lt' || op.base === 'le' || op.base === 'gt' || op.base === 'ge';
    const stringOnly = op.base === 'contains' || op.base === 'startswith' || op.base === 'endswith' || op.base === 'glob' || op.base === 'regex' || op.base === 'cidr';
    if (info.type === 'object') {
      const child = [...(info.path.startsWith('hades.ancestors') ? ['name', 'executable'] : ['name', 'id', 'path', 'ip'])].map((k) => `${expr.field}.${k}`);
      const hint = child.find((c) => resolveField(c).ok);
      mismatch(`'${expr.field}' is an object: compare one of its fields${hint ? `, e.g. '${hint}'` : ''}, or test it with 'exists'`);
    }
    if (numeric && items.length > 1) mismatch(`'${op.text}' compares with one number, not a list`);
    if (info.type === 'number') {
      if (stringOnly) mismatch(`'${op.text}' applies to text, and '${expr.field}' is a number`);
      if (op.ci) mismatch(`'${op.text}' is case-insensitive, and '${expr.field}' is a number: use '${op.text.replace(/^i/, '')}'`);
    } else if (info.type === 'boolean') {
      if (op.base !== 'eq' || op.ci) mismatch(`'${expr.field}' is true or false: use '=', '!=' or 'exists'`);
    } else if (info.type === 'string') {
      if (numeric) mismatch(`'${op.text}' compares numbers, and '${expr.field}' is text`);
      if (op.base === 'cidr' && !info.ip) mismatch(`'in_cidr' applies to address fields (such as destination.ip), and '${expr.field}' is not one`);
    }
    const literals: PlacedLiteral[] = items.map((item) => ({ value: this.literal(item, info.type, expr, numeric), offset: item.offset }));
    if (info.values && op.base === 'eq') {
      const allowed = info.values;
      const folded = op.ci ? new Set([...allowed].map((v) => v.toLowerCase())) : allowed;
      for (const l of literals) {
        const s = String(l.value);
        if (!folded.has(op.ci ? s.toLowerCase() : s)) {
          const suggestion = suggest(s, allowed);
          const shown = allowed.size <= 12 ? `; it is one of ${[...allowed].join(', ')}` : '';
          throw compileError(
            'HADES_ERR_RULE_BAD_VALUE',
            `'${expr.field}' is never '${s}'${suggestion ? `; did you mean '${suggestion}'?` : shown}`,
            source,
            l.offset,
            suggestion,
          );
        }
      }
    }
    const test = valueTest(info.type, op.base, op.ci, literals, source);
    const cost = opCost(op.base, literals.length) * (field.multi ? 3 : 1);
    return { kind: 'cmp', field, op, values: literals.map((l) => l.value), test, cost };
  }

  private literal(item: ScalarItem, type: string, expr: CmpExpr, numeric: boolean): Literal {
    const fail = (message: string): never => {
      throw compileError('HADES_ERR_RULE_TYPE_MISMATCH', message, expr.source, item.offset);
    };
    if (type === 'number' || (type === 'any' && numeric)) {
      if (!NUMBER.test(item.text.trim())) fail(`'${expr.field}' is a number, and '${item.text}' is not`);
      return Number(item.text);
    }
    if (type === 'boolean') {
      const b = BOOLEANS[item.text];
      if (b === undefined) fail(`'${expr.field}' is true or false, and '${item.text}' is neither`);
      return b!;
    }
    return item.text;
  }
}
