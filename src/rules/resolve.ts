/**
 * Resolution and type checking: turns a parsed condition into a resolved one, where macros are
 * expanded, lists looked up, fields checked against the event schema (with a suggestion for an
 * unknown one), operators checked against the field's type, literals converted to it, and each
 * comparison's value test compiled. Everything that can be wrong with a rule short of its YAML
 * shape is found here, at load time, with the position of the token at fault.
 *
 * A macro is resolved once and its result shared by every use, but what comes after (compilation,
 * the index's analyses, matching) walks a condition as a tree, where each use is a copy: a macro
 * that uses another twice, which uses another twice, and so on, doubles the tree at each step
 * (forty such macros make 2^40 nodes), and a long chain of macros nests as deep as it is long.
 * The resolver therefore measures the condition as expanded while it resolves it, and refuses it
 * (HADES_ERR_RULE_TOO_COMPLEX) as soon as the measure passes a limit below. The measure of a
 * macro is kept with its result, so a macro's text is walked once however often it is used, and
 * the walk stops at the limit: the check costs no more than resolving the text itself.
 *
 * Inside `any ancestor (...)`, fields are those of one ancestor (fields.ts, resolveAncestorField),
 * so a macro used there is resolved again in that scope, its result kept apart from the other.
 */
import type { ValueTest } from './accessor.js';
import { resolveAncestorField, resolveField, type FieldRef, type ResolveResult } from './fields.js';
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
/** `any ancestor (expr)`: `expr` reads the fields of one element of `ancestors` at a time. */
export interface RAncestor {
  readonly kind: 'ancestor';
  /** `hades.ancestors`, the array walked. */
  readonly ancestors: FieldRef;
  readonly expr: RExpr;
}
export interface RConst {
  readonly kind: 'const';
  readonly value: boolean;
}
export type RExpr = RCmp | RExists | RAnd | ROr | RNot | RAncestor | RConst;

/**
 * Levels of and, or, not and macro uses one inside another, in a condition with its macros
 * expanded. One condition's text nests at most 64 levels of parentheses and `not` (parser.ts),
 * which make at most 130 levels here (each parenthesis may hold an `or` holding an `and`); 256
 * lets any such text through with room for an override's appended condition, and stops a chain
 * of macros long before the passes that recurse over a condition (resolution, compilation, the
 * predicate's closures) come near the call stack's limit, some thousands of frames.
 */
export const MAX_EXPANDED_DEPTH = 256;

/**
 * Nodes (and, or, not, comparison, exists) of a condition with its macros expanded, each use of
 * a macro counted again. About as many comparisons as one condition's text (at most 64 KiB) can
 * hold, and some two hundred times the largest rule of the default pack or of the converted Sigma
 * rules (a few dozen). Compiling costs about 75 microseconds and 7 KB a node (the index's analyses
 * included), so a rule at the limit loads in under a second and 100 MB. A long `or` of equalities
 * is better written as one comparison with a list (`in`).
 */
export const MAX_EXPANDED_NODES = 10_000;

/**
 * Values compared (literals and list items) in a condition with its macros expanded. A list is
 * copied into every comparison that names it, and compilation builds a set of each comparison's
 * values, so a big list used through a doubling macro would be copied as often as the macro's
 * nodes. Ten times the largest list (the schema allows 100,000 items), some thousand times the
 * largest Sigma rule; a rule at the limit loads in about 1.5 s and 200 MB.
 */
export const MAX_EXPANDED_VALUES = 1_000_000;

/** The size of a macro's expansion, kept with its result for the macro's later uses. */
interface Expansion {
  readonly nodes: number;
  readonly values: number;
  /** Levels below the macro's own. */
  readonly depth: number;
}

/** A macro resolved in one scope: its result, or what is wrong with it there. */
interface MacroResolution {
  resolved?: RExpr;
  /** Set with `resolved`. */
  expansion?: Expansion;
  error?: RuleCompileError;
}

/** Where fields are read: from the event, or from one ancestor (inside `any ancestor (...)`). */
type FieldScope = 'event' | 'ancestor';

export interface MacroDef extends MacroResolution {
  readonly name: string;
  readonly source: TextSource;
  /** Where the macro is defined, for problems about it as a whole. */
  readonly offset: number;
  parsed?: Expr;
  /**
   * The macro used inside `any ancestor (...)`. Only its syntax errors are also the macro's own
   * (`error`): a field that an ancestor lacks is the fault of the use.
   */
  withinAncestor?: MacroResolution;
  uses: number;
  /**
   * Named by a condition that failed before resolving it (or by a macro such a condition names):
   * not reported unused, as the rule does use it once it is corrected.
   */
  mentioned?: boolean;
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
  /** Named by a condition that failed before resolving it (see MacroDef.mentioned). */
  mentioned?: boolean;
}

export interface Scope {
  readonly macros: ReadonlyMap<string, MacroDef>;
  readonly lists: ReadonlyMap<string, ListDef>;
  /**
   * Whether a bare value of a parenthesised list in `source` that names `list` stays a value:
   * true when only a later file defines the list (the scope reports it). Absent: it never does.
   */
  readonly definedLater?: (list: ListDef, source: TextSource, offset: number) => boolean;
  /**
   * Told of an unquoted value that names a list, after an operator that takes it as one value
   * (`process.name = shells`): it is compared as that text, which is seldom what was meant.
   */
  readonly listNameAsValue?: (list: ListDef, field: string, op: string, source: TextSource, offset: number) => void;
}

const BOOLEANS: Readonly<Record<string, boolean>> = { true: true, false: false };

export class Resolver {
  /** Macros being resolved, innermost last: a name met twice is a cycle. */
  private readonly stack: string[] = [];
  /** The measure of the condition being resolved, its macros expanded, so far. */
  private depth = 0;
  private deepest = 0;
  private nodes = 0;
  private values = 0;
  private maxNodes = MAX_EXPANDED_NODES;
  private maxValues = MAX_EXPANDED_VALUES;
  private fieldScope: FieldScope = 'event';

  constructor(private readonly scope: Scope) {}

  /**
   * Resolves one condition. A RuleCompileError says what is wrong with it; one with the code
   * HADES_ERR_RULE_TOO_COMPLEX is about the condition as a whole (its expansion passes a limit),
   * is placed at the use of the outermost macro concerned, and is never held against a macro.
   * `sized` false lifts the limits on nodes and values (not on depth), for structured exceptions:
   * they use no macro, the schema bounds their size, and an allow-list may be long.
   */
  resolve(expr: Expr, sized = true): RExpr {
    this.depth = this.deepest = this.nodes = this.values = 0;
    this.maxNodes = sized ? MAX_EXPANDED_NODES : Infinity;
    this.maxValues = sized ? MAX_EXPANDED_VALUES : Infinity;
    this.fieldScope = 'event';
    try {
      return this.walk(expr);
    } catch (error) {
      // The walk stopped at the first problem: the macros and lists named after it (or inside
      // the macros it names) were never reached, yet the condition uses them.
      if (error instanceof RuleCompileError) this.mention(expr, new Set());
      throw error;
    }
  }

  /** Marks every macro and list `expr` names, through the macros it names, as mentioned. */
  private mention(expr: Expr, seen: Set<string>): void {
    switch (expr.kind) {
      case 'and':
      case 'or':
        for (const e of expr.items) this.mention(e, seen);
        return;
      case 'not':
      case 'ancestor':
        this.mention(expr.expr, seen);
        return;
      case 'macro': {
        const def = this.scope.macros.get(expr.name);
        if (!def || seen.has(expr.name)) return;
        seen.add(expr.name);
        def.mentioned = true;
        try {
          def.parsed ??= parseCondition(def.source);
        } catch {
          return; // its syntax error is reported with the macro
        }
        this.mention(def.parsed, seen);
        return;
      }
      case 'cmp': {
        const v = expr.value;
        const names = v.kind === 'listref' ? [v.name] : v.kind === 'list' ? v.items.filter((i) => !i.quoted).map((i) => i.text) : [];
        for (const name of names) {
          const list = this.scope.lists.get(name);
          if (list) list.mentioned = true;
        }
        return;
      }
      case 'exists':
      case 'const':
        return;
    }
  }

  private walk(expr: Expr): RExpr {
    switch (expr.kind) {
      case 'and':
      case 'or': {
        this.count(1, 0, expr.source, expr.offset);
        this.enter(1, expr.source, expr.offset);
        const items = expr.items.map((e) => this.walk(e));
        this.depth--;
        return { kind: expr.kind, items };
      }
      case 'not': {
        this.count(1, 0, expr.source, expr.offset);
        this.enter(1, expr.source, expr.offset);
        const inner = this.walk(expr.expr);
        this.depth--;
        return { kind: 'not', expr: inner };
      }
      case 'ancestor': {
        if (this.fieldScope === 'ancestor') {
          throw compileError('HADES_ERR_RULE_SYNTAX', "'any ancestor (...)' cannot be used inside another: its fields are already those of one ancestor", expr.source, expr.offset);
        }
        this.count(1, 0, expr.source, expr.offset);
        this.enter(1, expr.source, expr.offset);
        const ancestors = this.field('hades.ancestors', expr.source, expr.offset);
        this.fieldScope = 'ancestor';
        let inner: RExpr;
        try {
          inner = this.walk(expr.expr);
        } finally {
          this.fieldScope = 'event';
        }
        this.depth--;
        return { kind: 'ancestor', ancestors, expr: inner };
      }
      case 'const':
        this.count(1, 0, expr.source, expr.offset);
        return { kind: 'const', value: expr.value };
      case 'macro':
        return this.macro(expr.name, expr.source, expr.offset);
      case 'exists':
        this.count(1, 0, expr.source, expr.offset);
        return { kind: 'exists', field: this.field(expr.field, expr.source, expr.offset), cost: 1 };
      case 'cmp':
        this.count(1, 0, expr.source, expr.offset);
        return this.comparison(expr);
    }
  }

  /** Opens `levels` levels (checked before anything below is walked, so a chain of macros stops at the limit). */
  private enter(levels: number, source: TextSource, offset: number): void {
    if (this.depth + levels > MAX_EXPANDED_DEPTH) {
      throw this.tooComplex(`nests more than ${MAX_EXPANDED_DEPTH} levels deep (each and, or, not and use of a macro is a level)`, source, offset);
    }
    this.depth += levels;
    if (this.depth > this.deepest) this.deepest = this.depth;
  }

  private count(nodes: number, values: number, source: TextSource, offset: number): void {
    this.nodes += nodes;
    this.values += values;
    if (this.nodes > this.maxNodes) {
      throw this.tooComplex(`has more than ${MAX_EXPANDED_NODES} nodes (and, or, not, comparison, exists; a macro counts at each use)`, source, offset);
    }
    if (this.values > this.maxValues) {
      throw this.tooComplex(`compares with more than ${MAX_EXPANDED_VALUES} values (a list counts at each use)`, source, offset);
    }
  }

  private tooComplex(what: string, source: TextSource, offset: number): RuleCompileError {
    const names = this.stack.length <= 8 ? this.stack : [...this.stack.slice(0, 3), '…', ...this.stack.slice(-3)];
    const where = this.stack.length === 0 ? '' : `; the limit is passed in macro '${this.stack[this.stack.length - 1]!}', reached by ${names.join(' -> ')}`;
    return compileError('HADES_ERR_RULE_TOO_COMPLEX', `the condition, its macros expanded, ${what}${where}`, source, offset);
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
    const slot: MacroResolution = this.fieldScope === 'ancestor' ? (def.withinAncestor ??= {}) : def;
    if (slot.resolved && slot.expansion) {
      // Used again: counted again, as later passes copy it, but not walked again.
      const { nodes, values, depth } = slot.expansion;
      this.stack.push(name);
      try {
        this.enter(1 + depth, source, offset);
        this.count(nodes, values, source, offset);
      } finally {
        this.stack.pop();
      }
      this.depth -= 1 + depth;
      return slot.resolved;
    }
    if (this.stack.includes(name)) {
      const loop = [...this.stack.slice(this.stack.indexOf(name)), name].join(' -> ');
      throw compileError('HADES_ERR_RULE_CYCLE', `macros refer to each other in a loop: ${loop}`, source, offset);
    }
    if (slot.error) throw this.macroFailed(def, slot.error, source, offset);
    this.stack.push(name);
    const outer = { depth: this.depth, deepest: this.deepest, nodes: this.nodes, values: this.values };
    try {
      this.enter(1, source, offset);
      this.deepest = this.depth;
      def.parsed ??= parseCondition(def.source);
      const resolved = this.walk(def.parsed);
      slot.expansion = { nodes: this.nodes - outer.nodes, values: this.values - outer.values, depth: this.deepest - this.depth };
      slot.resolved = resolved;
      return resolved;
    } catch (error) {
      if (!(error instanceof RuleCompileError)) throw error;
      // The condition as a whole is too complex, not the macro: reported at the use, never kept.
      if (error.code === 'HADES_ERR_RULE_TOO_COMPLEX') throw new RuleCompileError(error.code, error.message, source, offset);
      // A loop is reported where it closes; other errors belong to the macro itself.
      if (error.code === 'HADES_ERR_RULE_CYCLE' && this.stack.length > 1) throw error;
      slot.error = error;
      // Text that does not parse is wrong wherever the macro is used.
      if (def.parsed === undefined) def.error = error;
      throw this.macroFailed(def, error, source, offset);
    } finally {
      this.stack.pop();
      this.depth = outer.depth;
      this.deepest = Math.max(outer.deepest, this.deepest);
    }
  }

  /** The error a rule gets for using a broken macro (the macro's own error is reported apart, once). */
  private macroFailed(def: MacroDef, inner: RuleCompileError, source: TextSource, offset: number): RuleCompileError {
    const where = this.fieldScope === 'ancestor' && def.parsed !== undefined ? " inside 'any ancestor (...)'" : '';
    return new RuleCompileError(inner.code, `macro '${def.name}' cannot be used${where}: ${inner.message}`, source, offset);
  }

  private field(text: string, source: TextSource, offset: number): FieldRef {
    const r: ResolveResult = this.fieldScope === 'ancestor' ? resolveAncestorField(text) : resolveField(text);
    if (!r.ok) {
      throw compileError('HADES_ERR_RULE_UNKNOWN_FIELD', `${r.message}${r.suggestion ? `; did you mean '${r.suggestion}'?` : ''}`, source, offset, r.suggestion);
    }
    return r.ref;
  }

  /** The values of a comparison, counted before any list is copied. */
  private items(value: ValueNode, source: TextSource): ScalarItem[] {
    switch (value.kind) {
      case 'scalar':
        this.count(0, 1, source, value.offset);
        return [value];
      case 'listref':
        return this.listItems(value.name, source, value.offset);
      case 'list': {
        const out: ScalarItem[] = [];
        for (const item of value.items) {
          const list = item.quoted ? undefined : this.scope.lists.get(item.text);
          if (list && this.scope.definedLater?.(list, source, item.offset) !== true) out.push(...this.listItems(item.text, source, item.offset));
          else {
            this.count(0, 1, source, item.offset);
            out.push(item);
          }
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
    this.count(0, list.items.length, source, offset);
    return list.items.map((i) => ({ kind: 'scalar', quoted: i.quoted, text: i.text, offset }));
  }

  private comparison(expr: CmpExpr): RExpr {
    const { source, op } = expr;
    const field = this.field(expr.field, source, expr.offset);
    const info = field.info;
    const items = this.items(expr.value, source);
    if (expr.value.kind === 'scalar' && !expr.value.quoted) {
      const list = this.scope.lists.get(expr.value.text);
      if (list) this.scope.listNameAsValue?.(list, expr.field, op.text, source, expr.value.offset);
    }
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
      const b = Object.hasOwn(BOOLEANS, item.text) ? BOOLEANS[item.text] : undefined;
      if (b === undefined) fail(`'${expr.field}' is true or false, and '${item.text}' is neither`);
      return b!;
    }
    return item.text;
  }
}
