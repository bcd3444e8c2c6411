/**
 * The rule loader: rule files in, a RuleSet and every problem out. It runs in stages, each
 * reporting coded problems with file, line and column instead of throwing at the first:
 *
 *   1. read    YAML parse of each file (a file that does not parse is skipped, the others load)
 *   2. collect schema check of each rule, macro, list and override; duplicate names
 *   3. override apply `append:` / `replace:` to the rules they name
 *   4. compile each rule: parse its condition, resolve macros, lists and fields, check types,
 *              compile the predicate, its exceptions and its output; a bad rule is skipped
 *   5. correlate compile correlation rules in dependency order (they may use other rules)
 *   6. report  unused macros and lists (warnings)
 *
 * Within a rule, the parts that do not depend on each other (its schema, tags, each condition,
 * each exception, each output, dedup_by, each step and grouping field of a correlation) are all
 * checked and reported: a rule with a schema error, bad tags or a duplicate id is still compiled,
 * for its own errors, and never loaded. So is a duplicate macro; an override with a schema error
 * is not applied, its other parts checked on a copy of its rule (checkOverride). Only a stage's
 * own dependency stops it (a condition that does not parse is not type-checked). The list is
 * capped at MAX_PROBLEMS (problems.ts).
 *
 * Everything is pure: the caller reads the files and passes their text.
 */
import { yamlDepthProblem } from '../common/yaml-depth.js';
import type { Predicate } from './accessor.js';
import { allValues, firstValue, type EventRecord } from './accessor.js';
import { actionsOf, compilePredicate, disjunctionClauses, equalityKeys, normaliseActions, withoutIndexedActionTests, type ActionSet, type KeyClause } from './compile.js';
import { boundedKey, conditionStep, Correlator, DEFAULT_MAX_ENTRIES, DEFAULT_MAX_KEYS, ruleStep, scopedKey, type CorrelationSpec, type KeyOf, type StepMatcher, type TreeKeysOf } from './correlation.js';
import { resolveField, type FieldRef } from './fields.js';
import { OPERATORS, operatorSuggestion, parseCondition, type Expr, type ScalarItem } from './parser.js';
import { capProblems, compileError, cutMessage, RuleCompileError, type Position, type RuleProblem, type TextSource } from './problems.js';
import { Resolver, type ListDef, type MacroDef, type RExpr, type Scope } from './resolve.js';
import { RuleSet, type CompiledCorrelation, type CompiledRule, type RuleInfo, type RuleType } from './ruleset.js';
import { checkSamples, collectSamples, type RuleSamples } from './samples.js';
import { withoutSamples } from './without-samples.js';
import {
  checkSchema,
  FileSchema,
  OverrideSchema,
  RuleSchema,
  SequenceSchema,
  ThresholdSchema,
  type ExceptionEntry,
  type OverrideEntry,
  type RuleEntry,
  type SequenceEntry,
  type Severity,
  type ThresholdEntry,
} from './schema.js';
import { suggest } from './suggest.js';
import { compileTemplate, type Template } from './template.js';
import { YamlFile, type YamlPath } from './yaml-file.js';
import { yamlToPlain } from '../common/yaml-plain.js';

/** The folder part of a rule file's name ('' for a bare name). */
/** What the YAML parser's terse messages usually mean in a rule file, by its error code. */
const YAML_HINTS: Readonly<Record<string, string>> = {
  BLOCK_AS_IMPLICIT_KEY:
    ": a plain value cannot hold ': ' (quote it, or write a condition as a block after '>'), and a line indented deeper than the key above it continues that key's value",
  MULTILINE_IMPLICIT_KEY: ": a line indented deeper than the key above it continues that key's value; check the indentation",
  MISSING_CHAR: ': check the indentation: the keys of one rule start at the same column, under its first one',
  BAD_INDENT: ': check the indentation: the keys of one rule start at the same column, under its first one',
  UNEXPECTED_TOKEN: ": a value that starts with a quote ends at the closing quote; quote the whole value, or write a condition as a block after '>'",
};

const folderOf = (name: string): string => name.slice(0, Math.max(0, name.lastIndexOf('/')));

/** Whether one of the schema problems `targets` is at `at` or under it (in one of its items). */
const problemAtOrUnder = (targets: readonly YamlPath[], at: YamlPath): boolean => targets.some((t) => at.every((seg, k) => t[k] === seg));

export interface RuleFile {
  /** How problems name the file: its path, usually. */
  readonly name: string;
  readonly text: string;
  /**
   * Why the file's reader could not give its text (too large, not UTF-8): reported as the file's
   * error, and the file skipped like one that does not parse; the other files load.
   */
  readonly unreadable?: RuleFileUnreadable;
}

/** A rule file its reader could not take (RuleFile.unreadable). */
export interface RuleFileUnreadable {
  readonly code: 'HADES_ERR_RULE_TOO_LARGE' | 'HADES_ERR_RULE_YAML';
  readonly message: string;
  readonly line?: number;
  readonly column?: number;
}

/** A compiled step of a correlation rule (or a threshold's condition). */
interface StepCompiled {
  readonly matches: StepMatcher;
  readonly actions: ActionSet;
  /** What every event it matches holds (compile.ts key clauses); undefined for a rule reference. */
  readonly keys: readonly KeyClause[] | undefined;
}

export interface LoadOptions {
  /** Correlation groups kept per rule before the least recently touched is evicted. */
  readonly maxKeysPerRule?: number;
  /** Event times and distinct values a threshold rule keeps over all its groups (DEFAULT_MAX_ENTRIES). */
  readonly maxEntriesPerRule?: number;
  /** Index rules by action (the default); false evaluates every rule on every event (to measure the index). */
  readonly indexByAction?: boolean;
  /**
   * Read the rules' `samples:` (the default), for `runSamples`; false skips them unparsed
   * (without-samples.ts): what matches events never uses them, and they are most of the pack.
   */
  readonly samples?: boolean;
}

export interface LoadResult {
  readonly ruleSet: RuleSet;
  /**
   * Errors (the rule or file concerned is not loaded) and warnings, in file order: the first
   * MAX_PROBLEMS, then one HADES_ERR_RULE_TOO_MANY_PROBLEMS that counts the others.
   */
  readonly problems: readonly RuleProblem[];
  /**
   * `rules`: the entries of `rules:` that are rules (overrides not counted), as written: those
   * with errors and second rules of an id too (`ruleSet.rules` has the loaded ones). `errors`,
   * `warnings`: every problem, the ones past the cap too.
   */
  readonly counts: { readonly rules: number; readonly errors: number; readonly warnings: number };
  /** The `samples:` of the rules, in definition order, for `runSamples` (samples.ts); never used by matching. */
  readonly samples: readonly RuleSamples[];
}

export const MAX_RULE_FILE_BYTES = 8 * 1024 * 1024;

/** `process.tree` in `by`: the process of a sequence's first step and its descendants. */
export const PROCESS_TREE = 'process.tree';

const TACTICS = new Set([
  'reconnaissance',
  'resource_development',
  'initial_access',
  'execution',
  'persistence',
  'privilege_escalation',
  'defense_evasion',
  'stealth',
  'defense_impairment',
  'credential_access',
  'discovery',
  'lateral_movement',
  'collection',
  'command_and_control',
  'exfiltration',
  'impact',
]);

/** Why a tag is refused, or undefined. ATT&CK tags are checked: a typo would hide a rule from a matrix. */
export function checkTag(tag: string): { message: string; suggestion?: string } | undefined {
  if (!/^[a-z0-9][a-z0-9_.-]*$/.test(tag)) return { message: `tag '${tag}' must be lower case letters, digits and _ . -` };
  if (!tag.startsWith('attack.')) return undefined;
  const rest = tag.slice('attack.'.length);
  if (/^t\d{4}(\.\d{3})?$/.test(rest) || /^[gs]\d{4}$/.test(rest) || TACTICS.has(rest.replace(/-/g, '_'))) return undefined;
  const suggestion = suggest(rest.replace(/-/g, '_'), TACTICS);
  return {
    message: `'${tag}' is neither an ATT&CK technique (attack.t1059, attack.t1059.004), group (attack.g0001), software (attack.s0001) nor tactic (attack.execution)${suggestion ? `; did you mean 'attack.${suggestion}'?` : ''}`,
    ...(suggestion ? { suggestion: `attack.${suggestion}` } : {}),
  };
}

const DURATION_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `500ms`, `60s`, `5m`, `1h`, `1d`, or a number of seconds, in milliseconds. */
export function parseDuration(value: string | number): number {
  if (typeof value === 'number') return value * 1000;
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(value);
  return m ? Number(m[1]) * DURATION_UNITS[m[2]!]! : NaN;
}

interface Located {
  readonly file: YamlFile;
  readonly path: YamlPath;
}

interface ExceptionItem extends Located {
  readonly entry: ExceptionEntry;
}

interface Draft extends Located {
  readonly id: string;
  readonly type: RuleType;
  /** As written: when `broken` says a part has schema errors, that part may be of any type. */
  readonly entry: RuleEntry | SequenceEntry | ThresholdEntry;
  readonly line: number;
  readonly column: number;
  /**
   * False for a rule that is checked but never loaded: one with schema errors, bad tags or no
   * usable id, or a second rule of an id. Its other parts are compiled all the same, so that every
   * error of the rule shows in one run.
   */
  readonly loads: boolean;
  /** Whether the schema check found a problem at or under this path of the entry (that part is not compiled). */
  readonly broken: (path: YamlPath) => boolean;
  title: string;
  description: string;
  severity: Severity;
  tags: string[];
  enabled: boolean;
  alert: boolean;
  /** dedup_by and where it was written (the rule, or an override in another file). */
  dedupBy: (Located & { readonly fields: readonly string[] }) | undefined;
  conditions: TextSource[];
  exceptions: ExceptionItem[];
  outputs: TextSource[];
  /** An output was appended to a rule without one: the title comes first, as it was the text. */
  titleFirst?: boolean;
  withinMs: number;
  count: number;
}

/** The parts of one rule compiled so far: whether any failed (each failure is reported where it is). */
interface Check {
  failed: boolean;
}

interface MacroEntry extends MacroDef, Located {}
interface ListEntry extends ListDef, Located {}

/** A source whose offsets are indices into a table of positions (for structured YAML). */
class TableSource implements TextSource {
  readonly text = '';
  private readonly positions: Position[] = [];
  constructor(readonly file: string) {}
  add(p: Position | undefined): number {
    this.positions.push(p ?? this.positions[0] ?? { line: 1, column: 1 });
    return this.positions.length - 1;
  }
  locate(offset: number): Position {
    return this.positions[offset] ?? this.positions[0] ?? { line: 1, column: 1 };
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A grouping value as text: strings as they are, other scalars as JSON would print them. */
function keyText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v) ?? '';
}

function and(items: Expr[], source: TextSource): Expr {
  return items.length === 1 ? items[0]! : { kind: 'and', items, source, offset: 0 };
}

class Loader {
  readonly problems: RuleProblem[] = [];
  private readonly fileOrder = new Map<string, number>();
  private readonly macros = new Map<string, MacroEntry>();
  private readonly lists = new Map<string, ListEntry>();
  /** Second macros of a name: never loaded, checked for their own errors. */
  private readonly duplicateMacros: MacroEntry[] = [];
  private readonly drafts = new Map<string, Draft>();
  /** Rules checked but never loaded and not reachable by id: second rules of an id, rules without a usable id. */
  private readonly unnamed: Draft[] = [];
  /** Entries of `rules:` that are rules (not overrides), as the author wrote them: duplicates and broken ones too. */
  rulesWritten = 0;
  /** Overrides as written, with where their schema problems are (an override with any is not applied). */
  private readonly overrides: (Located & { entry: OverrideEntry; problems: readonly YamlPath[] })[] = [];
  /** The parts of overrides not applied (schema problems), on copies of their rules, to be checked. */
  private readonly overrideChecks: Draft[] = [];
  private readonly compiled = new Map<string, CompiledRule>();
  private readonly correlations = new Map<string, CompiledCorrelation>();
  private readonly failed = new Set<string>();
  readonly samples: RuleSamples[] = [];
  private readonly scope = {
    macros: this.macros,
    lists: this.lists,
    definedLater: (list: ListDef, source: TextSource, offset: number) => this.definedLater(list as ListEntry, source, offset),
    listNameAsValue: (list: ListDef, field: string, op: string, source: TextSource, offset: number) => this.listNameAsValue(list as ListEntry, field, op, source, offset),
  };
  private readonly resolver = new Resolver(this.scope);
  /** Places already told that a bare value stays a value (a condition is resolved more than once). */
  private readonly laterReported = new Set<string>();
  /** Places already told that a list's name is compared as text. */
  private readonly listValueReported = new Set<string>();

  constructor(private readonly options: LoadOptions) {}

  // ----- problems -----

  private report(severity: 'error' | 'warning', code: RuleProblem['code'], file: string, pos: Position | undefined, message: string, extra: { rule?: string; suggestion?: string } = {}): void {
    this.problems.push({
      code,
      severity,
      file,
      ...(pos ? { line: pos.line, column: pos.column } : {}),
      // A message quotes the rule's text; the position says where the rest is.
      message: cutMessage(message),
      ...(extra.rule !== undefined ? { rule: extra.rule } : {}),
      ...(extra.suggestion !== undefined ? { suggestion: extra.suggestion } : {}),
    });
  }

  private reportCompile(error: RuleCompileError, fallback: Located, rule?: string): void {
    const pos = error.source ? error.source.locate(error.offset) : fallback.file.at(fallback.path);
    const file = error.source?.file ?? fallback.file.name;
    const cut = error.code === 'HADES_ERR_RULE_SYNTAX' ? error.source?.cutComment : undefined;
    const message = cut === undefined ? error.message : `${error.message} (YAML read '${cut.length > 40 ? `${cut.slice(0, 40)}…` : cut}' as a comment, which ends a plain value: quote the value, or write a condition as a block after '>')`;
    this.report('error', error.code, file, pos, message, { ...(rule !== undefined ? { rule } : {}), ...(error.suggestion !== undefined ? { suggestion: error.suggestion } : {}) });
  }

  /** Runs one compilation step; a RuleCompileError becomes a problem and `undefined`. */
  private attempt<T>(located: Located, rule: string | undefined, fn: () => T): T | undefined {
    try {
      return fn();
    } catch (error) {
      if (error instanceof RuleCompileError) {
        this.reportCompile(error, located, rule);
        return undefined;
      }
      // A bug of ours (or a stack overflow from absurd input) costs this rule, not the others.
      const message = error instanceof Error ? error.message : String(error);
      this.report('error', 'HADES_ERR_INTERNAL', located.file.name, located.file.at(located.path), `the rule could not be compiled: ${message}`, rule !== undefined ? { rule } : {});
      return undefined;
    }
  }

  /**
   * Runs one part of a rule that does not depend on the others (a condition, an exception, an
   * output, a grouping field...): its error is reported and marks the rule failed, and the next
   * part still runs, so that a rule's independent errors all show at once.
   */
  private part<T>(draft: Draft, check: Check, fn: () => T): T | undefined {
    let done = false;
    const value = this.attempt(draft, draft.id, () => {
      const v = fn();
      done = true;
      return v;
    });
    if (!done) check.failed = true;
    return value;
  }

  /** Reports an error of one part of a rule found without running anything. */
  private fail(draft: Draft, check: Check, error: RuleCompileError): void {
    this.reportCompile(error, draft, draft.id);
    check.failed = true;
  }

  // ----- stage 1 and 2: read and collect -----

  read(input: RuleFile): void {
    this.fileOrder.set(input.name, this.fileOrder.size);
    const unreadable = input.unreadable;
    if (unreadable !== undefined) {
      this.report('error', unreadable.code, input.name, unreadable.line === undefined ? undefined : { line: unreadable.line, column: unreadable.column ?? 1 }, unreadable.message);
      return;
    }
    if (input.text.length > MAX_RULE_FILE_BYTES) {
      this.report('error', 'HADES_ERR_RULE_TOO_LARGE', input.name, undefined, `the file is ${input.text.length} bytes; a rule file may be ${MAX_RULE_FILE_BYTES}`);
      return;
    }
    const text = this.options.samples === false ? withoutSamples(input.text) : input.text;
    // Nested too deep to parse without risking the process (../common/yaml-depth.ts).
    const deep = yamlDepthProblem(text);
    if (deep) {
      this.report('error', 'HADES_ERR_RULE_YAML', input.name, { line: deep.line, column: 1 }, deep.message);
      return;
    }
    const file = new YamlFile(input.name, text);
    if (file.doc.errors.length > 0) {
      // One problem per line: the parser's later errors on a line follow from its first.
      const lines = new Set<number>();
      for (const e of file.doc.errors) {
        const pos = file.position(e.pos[0]);
        if (pos && lines.has(pos.line)) continue;
        if (pos) lines.add(pos.line);
        // The parser's own words name one of its functions: say what it means for a rule file.
        const message = e.code === 'MULTIPLE_DOCS' ? 'a rule file holds one YAML document: remove the --- line, or put the rules after it in a file of their own' : (e.message.split('\n')[0] ?? e.message);
        const hint = e.code === 'UNEXPECTED_TOKEN' && !message.startsWith('Unexpected scalar') ? '' : (YAML_HINTS[e.code] ?? '');
        this.report('error', 'HADES_ERR_RULE_YAML', file.name, pos, `${message}${hint}`);
      }
      return;
    }
    let root: unknown;
    try {
      root = yamlToPlain(file.doc, 'HADES_ERR_RULE_YAML');
    } catch (error) {
      // An alias that names no anchor before it, or too many aliases (a "billion laughs" file):
      // the parser says which, not where; the first alias is where to look.
      this.report('error', 'HADES_ERR_RULE_YAML', file.name, file.firstAlias(), error instanceof Error ? error.message : String(error));
      return;
    }
    if (root === null || root === undefined) return;
    if (!isRecord(root)) {
      this.report('error', 'HADES_ERR_RULE_INVALID', file.name, file.at([]), 'a rule file is a mapping with the keys rules, macros and lists');
      return;
    }
    // Problems of one list or macro drop that one only; a section of the wrong type is dropped whole.
    const bad = new Set<string>();
    for (const issue of checkSchema(FileSchema, root)) {
      this.report('error', 'HADES_ERR_RULE_INVALID', file.name, file.at(issue.path, issue.key), issue.message, issue.suggestion ? { suggestion: issue.suggestion } : {});
      bad.add(issue.path.slice(0, 2).join('\u0000'));
    }
    const section = (key: string) => (bad.has(key) ? undefined : root[key]);
    const lists = section('lists');
    if (isRecord(lists)) {
      for (const [name, items] of Object.entries(lists)) {
        if (bad.has(`lists\u0000${name}`)) continue;
        this.addList(file, name, items as (string | number | boolean)[]);
      }
    }
    const macros = section('macros');
    if (isRecord(macros)) {
      for (const [name, text] of Object.entries(macros)) {
        if (bad.has(`macros\u0000${name}`)) continue;
        this.addMacro(file, name, text as string);
      }
    }
    const rules = section('rules');
    if (Array.isArray(rules)) rules.forEach((entry, i) => this.addRule(file, ['rules', i], entry));
  }

  private duplicate(kind: string, name: string, where: Located, first: Located): void {
    const p = first.file.at(first.path);
    this.report('error', 'HADES_ERR_RULE_DUPLICATE_ID', where.file.name, where.file.at(where.path, true), `${kind} '${name}' is already defined at ${first.file.name}:${p?.line ?? 1}; this one is not loaded`, { rule: name });
  }

  private addList(file: YamlFile, name: string, items: readonly (string | number | boolean)[]): void {
    const located = { file, path: ['lists', name] };
    const first = this.lists.get(name);
    if (first) return this.duplicate('list', name, located, first);
    this.lists.set(name, { ...located, name, items: items.map((v, i) => ({ text: file.written(['lists', name, i], v), quoted: true })), uses: 0 });
  }

  /**
   * True (and reported once) when `list` is defined in another folder than the file of `source`,
   * read after it: the files of one folder (a pack, a site's rules) share their lists in any
   * order, but a site's list does not rewrite the values of a pack read before it.
   */
  private definedLater(list: ListEntry, source: TextSource, offset: number): boolean {
    if (folderOf(list.file.name) === folderOf(source.file)) return false;
    const defined = this.fileOrder.get(list.file.name);
    const used = this.fileOrder.get(source.file);
    if (defined === undefined || used === undefined || defined <= used) return false;
    const where = source.locate(offset);
    const key = `${source.file}:${where.line}:${where.column}`;
    if (!this.laterReported.has(key)) {
      this.laterReported.add(key);
      this.report('warning', 'HADES_ERR_RULE_LIST_LATER', source.file, where, `'${list.name}' stays a value here: the list of that name is defined in ${list.file.name}, in another folder read after this file (rename the list, or quote the value)`);
    }
    return true;
  }

  /**
   * Warns (once per place) of `field = name` where `name` is a list: compared as that text. Not
   * when only a file of another folder read later defines the list (it cannot be what was meant).
   */
  private listNameAsValue(list: ListEntry, field: string, op: string, source: TextSource, offset: number): void {
    if (folderOf(list.file.name) !== folderOf(source.file)) {
      const defined = this.fileOrder.get(list.file.name);
      const used = this.fileOrder.get(source.file);
      if (defined === undefined || used === undefined || defined > used) return;
    }
    const where = source.locate(offset);
    const key = `${source.file}:${where.line}:${where.column}`;
    if (this.listValueReported.has(key)) return;
    this.listValueReported.add(key);
    const equality: Record<string, string> = { '=': 'in', '==': 'in', 'i=': 'iin', '!=': 'in', 'i!=': 'iin' };
    const listOp = equality[op];
    const meant = listOp ? `'${op.endsWith('!=') ? 'not ' : ''}${field} ${listOp} ${list.name}'` : `'${field} ${op} (${list.name})'`;
    this.report(
      'warning',
      'HADES_ERR_RULE_LIST_AS_VALUE',
      source.file,
      where,
      `'${list.name}' is compared as the text '${list.name}', not as the list of that name (${list.file.name}): write ${meant} to test its items, or quote the value to mean the text`,
    );
  }

  private addMacro(file: YamlFile, name: string, text: string): void {
    const located = { file, path: ['macros', name] };
    const first = this.macros.get(name);
    const macro = { ...located, name, source: file.source(located.path, text), offset: 0, uses: 0 };
    if (!first) return void this.macros.set(name, macro);
    this.duplicate('macro', name, located, first);
    // Not loaded, and still checked for its own errors (reportUnused).
    this.duplicateMacros.push(macro);
  }

  private addRule(file: YamlFile, path: YamlPath, entry: unknown): void {
    const located = { file, path };
    // An override's problems name the rule it overrides.
    const named = isRecord(entry) ? entry['id'] ?? entry['override'] : undefined;
    const id = typeof named === 'string' ? named : undefined;
    const invalid = (message: string, at: YamlPath = path, key = false, suggestion?: string) =>
      this.report('error', 'HADES_ERR_RULE_INVALID', file.name, file.at(at, key), message, { ...(id !== undefined ? { rule: id } : {}), ...(suggestion ? { suggestion } : {}) });
    if (isRecord(entry) && 'override' in entry) {
      const issues = checkSchema(OverrideSchema, entry);
      for (const issue of issues) invalid(issue.message, [...path, ...issue.path], issue.key, issue.suggestion);
      // An override with a schema problem is not applied; its other parts are still checked (applyOverrides).
      this.overrides.push({ ...located, entry: entry as OverrideEntry, problems: issues.map((i) => i.target) });
      // Its samples run against the rule it names, with the rule's own (runSamples); not those of an
      // override that is not applied, which would fail for that reason alone.
      const { samples } = entry as OverrideEntry;
      if (samples && id !== undefined && issues.length === 0) this.samples.push(collectSamples(file.name, path, id, samples, (p, key) => file.at(p, key)));
      return;
    }
    this.rulesWritten++;
    if (!isRecord(entry)) return invalid('a rule is a mapping with id, title, severity, condition...');
    const type = entry['type'] ?? 'rule';
    const schema = type === 'rule' ? RuleSchema : type === 'sequence' ? SequenceSchema : type === 'threshold' ? ThresholdSchema : undefined;
    if (!schema) return invalid(`'type' must be one of rule, sequence, threshold (got ${JSON.stringify(type)})`, [...path, 'type']);
    // Every schema issue is reported; the parts they concern are left out and the rest is still
    // compiled, for its own errors (the rule does not load).
    const issues = checkSchema(schema, entry);
    for (const issue of issues) invalid(issue.message, [...path, ...issue.path], issue.key, issue.suggestion);
    const targets = issues.map((i) => i.target);
    const broken = (at: YamlPath) => problemAtOrUnder(targets, at);
    const e = entry as RuleEntry | SequenceEntry | ThresholdEntry;
    const tags = Array.isArray(e.tags) ? e.tags : [];
    const tagsOk = this.checkTags(tags, located, [...path, 'tags'], id ?? '', (i) => broken(['tags', i]));
    const existing = id === undefined ? undefined : this.drafts.get(id);
    if (existing) this.duplicate('rule', id!, { file, path: [...path, 'id'] }, existing);
    const loads = issues.length === 0 && tagsOk && existing === undefined;
    const ok = (key: string) => e[key as keyof typeof e] !== undefined && !broken([key]);
    const text = (key: string) => (ok(key) && typeof e[key as keyof typeof e] === 'string' ? (e[key as keyof typeof e] as string) : undefined);
    const condition = text('condition');
    const output = text('output');
    // Each exception is a part of its own: the good ones are checked beside a broken one.
    const exceptions = Array.isArray(e.exceptions) ? e.exceptions.flatMap((x, i) => (broken(['exceptions', i]) ? [] : [{ file, path: [...path, 'exceptions', i], entry: x }])) : [];
    const draft: Draft = {
      ...located,
      // A rule without a usable id is named by its place, in its problems only.
      id: id ?? path.join('.'),
      type: type as RuleType,
      entry: e,
      line: file.at(path)?.line ?? 1,
      column: file.at(path)?.column ?? 1,
      loads,
      broken: (at) => broken(at),
      title: text('title') ?? '',
      description: text('description') ?? '',
      severity: ok('severity') ? e.severity : 'info',
      tags: tagsOk ? [...tags] : [],
      enabled: ok('enabled') ? e.enabled !== false : true,
      alert: ok('alert') ? e.alert !== false : true,
      dedupBy: ok('dedup_by') ? { file, path: [...path, 'dedup_by'], fields: e.dedup_by! } : undefined,
      conditions: condition !== undefined ? [file.source([...path, 'condition'], condition)] : [],
      exceptions,
      outputs: output !== undefined ? [file.source([...path, 'output'], output)] : [],
      withinMs: 'within' in e && ok('within') ? parseDuration(e.within) : 0,
      count: 'count' in e && ok('count') ? e.count : 0,
    };
    const samples = ok('samples') && !broken(['samples']) ? collectSamples(file.name, path, draft.id, e.samples!, (p, key) => file.at(p, key)) : undefined;
    if (id !== undefined && !existing) {
      this.drafts.set(id, draft);
      if (samples) this.samples.push(samples);
    } else {
      // Checked, never loaded, and no id reaches it: its sample events are checked here.
      this.unnamed.push(draft);
      if (samples) this.problems.push(...checkSamples([samples]));
    }
  }

  /** Checks each tag but those `reported` (by the schema check); false when one is refused. */
  private checkTags(tags: readonly string[], located: Located, path: YamlPath, rule: string, reported: (i: number) => boolean = () => false): boolean {
    let ok = true;
    tags.forEach((tag, i) => {
      if (typeof tag !== 'string' || reported(i)) return;
      const problem = checkTag(tag);
      if (!problem) return;
      ok = false;
      this.report('error', 'HADES_ERR_RULE_INVALID', located.file.name, located.file.at([...path, i]), problem.message, { rule, ...(problem.suggestion ? { suggestion: problem.suggestion } : {}) });
    });
    return ok;
  }

  // ----- stage 3: overrides -----

  applyOverrides(): void {
    for (const o of this.overrides) {
      const { entry, file, path } = o;
      // A schema problem at the name: no rule to check the rest against (reported already).
      if (o.problems.some((t) => t.length === 0 || t[0] === 'override')) continue;
      const draft = this.drafts.get(entry.override);
      if (!draft) {
        const suggestion = suggest(entry.override, this.drafts.keys());
        this.report('error', 'HADES_ERR_RULE_UNKNOWN_RULE', file.name, file.at([...path, 'override']), `override of unknown rule '${entry.override}'${suggestion ? `; did you mean '${suggestion}'?` : ''}`, {
          rule: entry.override,
          ...(suggestion ? { suggestion } : {}),
        });
        continue;
      }
      if (o.problems.length === 0) {
        this.applyOverride(o, draft);
        continue;
      }
      // Not applied: its good parts go to a copy of the rule that holds only them, which is
      // checked for their errors (checkOverride) and never loaded.
      const copy: Draft = { ...draft, file, path, loads: false, conditions: [], exceptions: [], outputs: [], dedupBy: undefined };
      this.applyOverride(o, copy, draft.exceptions);
      this.overrideChecks.push(copy);
    }
  }

  /**
   * Applies an override's `replace:` and `append:` to `draft`, leaving out the parts with schema
   * problems. `merging`: the exceptions an appended exception of the same name joins when they
   * are not `draft`'s own (a copy that checks an override).
   */
  private applyOverride(o: Located & { entry: OverrideEntry; problems: readonly YamlPath[] }, draft: Draft, merging?: readonly ExceptionItem[]): void {
    const { entry, file, path } = o;
    // A problem at or above `at` (the part is unusable), or under it (one of its items is).
    const above = (at: YamlPath) => o.problems.some((t) => t.length <= at.length && t.every((seg, k) => at[k] === seg));
    const under = (at: YamlPath) => problemAtOrUnder(o.problems, at);
    const part = (section: 'append' | 'replace', key: string): unknown => {
      const s: unknown = entry[section];
      return isRecord(s) && !above([section, key]) ? s[key] : undefined;
    };
    /** A part that is a value: unusable when anything in it is wrong. */
    const value = <T>(section: 'append' | 'replace', key: string): T | undefined => (under([section, key]) ? undefined : (part(section, key) as T | undefined));
    const invalid = (key: string, message: string) => this.report('error', 'HADES_ERR_RULE_INVALID', file.name, file.at([...path, key]), message, { rule: draft.id });
    const conditionUse = (which: 'append' | 'replace') => {
      if (draft.type === 'sequence') {
        invalid(which, `rule '${draft.id}' is a sequence: its conditions are in its steps and cannot be overridden`);
        return false;
      }
      if (draft.type === 'threshold' && (draft.entry as ThresholdEntry).rules !== undefined) {
        invalid(which, `rule '${draft.id}' is a threshold over the rules it names: its events are theirs, and its condition cannot be overridden (override those rules)`);
        return false;
      }
      return true;
    };
    const correlationOnly = (key: 'within' | 'count', ok: boolean) => {
      if (!ok) invalid('replace', `'${key}' can only be replaced in a ${key === 'count' ? 'threshold' : 'correlation'} rule, and '${draft.id}' is ${draft.type === 'rule' ? 'a plain rule (type rule)' : `a ${draft.type} rule`}`);
      return ok;
    };
    const tagsOf = (section: 'append' | 'replace'): string[] | undefined => {
      const tags = part(section, 'tags');
      if (!Array.isArray(tags)) return undefined;
      // A refused tag (or a schema problem in the list) leaves the rule's tags as they were.
      const ok = this.checkTags(tags as string[], o, [...path, section, 'tags'], draft.id, (i) => under([section, 'tags', i]));
      return ok && !under([section, 'tags']) ? [...(tags as string[])] : undefined;
    };
    /** The exceptions of a section, each checked on its own: those with schema problems are left out. */
    const exceptionItems = (section: 'append' | 'replace'): ExceptionItem[] => {
      const list = part(section, 'exceptions');
      if (!Array.isArray(list)) return [];
      return (list as ExceptionEntry[]).flatMap((x, i) => (under([section, 'exceptions', i]) ? [] : [{ file, path: [...path, section, 'exceptions', i], entry: x }]));
    };
    // The exceptions an appended one of the same name may join, besides those it joins in `draft`.
    let joined = merging ?? [];
    if (isRecord(entry.replace)) {
      const condition = value<string>('replace', 'condition');
      if (condition !== undefined && conditionUse('replace')) draft.conditions = [file.source([...path, 'replace', 'condition'], condition)];
      if (part('replace', 'exceptions') !== undefined) {
        draft.exceptions = exceptionItems('replace');
        joined = [];
      }
      const output = value<string>('replace', 'output');
      if (output !== undefined) {
        draft.outputs = [file.source([...path, 'replace', 'output'], output)];
        draft.titleFirst = false;
      }
      const enabled = value<boolean>('replace', 'enabled');
      if (enabled !== undefined) draft.enabled = enabled;
      const alert = value<boolean>('replace', 'alert');
      if (alert !== undefined) draft.alert = alert;
      const dedupBy = value<string[]>('replace', 'dedup_by');
      if (dedupBy !== undefined) draft.dedupBy = { file, path: [...path, 'replace', 'dedup_by'], fields: dedupBy };
      const severity = value<Severity>('replace', 'severity');
      if (severity !== undefined) draft.severity = severity;
      const title = value<string>('replace', 'title');
      if (title !== undefined) draft.title = title;
      const description = value<string>('replace', 'description');
      if (description !== undefined) draft.description = description;
      const tags = tagsOf('replace');
      if (tags) draft.tags = tags;
      const within = value<string | number>('replace', 'within');
      if (within !== undefined && correlationOnly('within', draft.type !== 'rule')) draft.withinMs = parseDuration(within);
      const count = value<number>('replace', 'count');
      if (count !== undefined && correlationOnly('count', draft.type === 'threshold')) draft.count = count;
    }
    if (isRecord(entry.append)) {
      const condition = value<string>('append', 'condition');
      if (condition !== undefined && conditionUse('append')) draft.conditions = [...draft.conditions, file.source([...path, 'append', 'condition'], condition)];
      const output = value<string>('append', 'output');
      if (output !== undefined) {
        if (draft.outputs.length === 0) draft.titleFirst = true;
        draft.outputs = [...draft.outputs, file.source([...path, 'append', 'output'], output)];
      }
      const tags = tagsOf('append');
      if (tags) draft.tags = [...new Set([...draft.tags, ...tags])];
      for (const item of exceptionItems('append')) {
        const x = item.entry;
        // Values appended to a named exception with the same fields join it.
        const joins = [...joined, ...draft.exceptions];
        const same = x.name === undefined ? -1 : joins.findIndex((d) => d.entry.name === x.name);
        const target = same >= 0 ? joins[same]! : undefined;
        const fieldsOf = (e: ExceptionEntry) => JSON.stringify([e.fields ?? [e.field], e.operators ?? e.operator ?? null]);
        const keepsShape = x.field === undefined && x.fields === undefined && x.operator === undefined && x.operators === undefined;
        if (target && (keepsShape || fieldsOf(target.entry) === fieldsOf(x))) {
          // Joining it is or-ing the values in its shape: they are kept apart, at their own place.
          const { field, fields, operator, operators } = target.entry;
          const shape = { ...(field !== undefined ? { field } : {}), ...(fields !== undefined ? { fields } : {}), ...(operator !== undefined ? { operator } : {}), ...(operators !== undefined ? { operators } : {}) };
          draft.exceptions = [...draft.exceptions, { ...item, entry: { ...shape, values: x.values } }];
        } else {
          draft.exceptions = [...draft.exceptions, item];
        }
      }
    }
  }

  /**
   * The parts of an override that was not applied (it has schema problems), on a copy of its
   * rule that holds only them: each condition, exception, output and dedup_by field is checked
   * as it would be in the rule, its errors reported.
   */
  private checkOverride(copy: Draft): void {
    const check: Check = { failed: true };
    if (copy.conditions.length > 0) this.conditionOf(copy, check);
    this.exceptionsOf(copy, check);
    this.outputOf(copy, check, copy.type === 'rule' ? [] : ['correlation.count', 'correlation.key']);
    this.checkDedupBy(copy, check);
  }

  // ----- stage 4: stateless rules -----

  /**
   * The condition as overrides left it (appended parts and-ed to it), resolved; undefined when it
   * has an error (reported) or is missing. Each part is parsed on its own, so a syntax error in
   * one does not hide another's.
   */
  private conditionOf(draft: Draft, check: Check): RExpr | undefined {
    if (draft.conditions.length === 0) {
      check.failed = true;
      return undefined;
    }
    const parts = draft.conditions.map((s) => this.part(draft, check, () => parseCondition(s)));
    if (parts.some((p) => p === undefined)) return undefined;
    return this.part(draft, check, () => this.resolver.resolve(and(parts as Expr[], draft.conditions[0]!)));
  }

  /**
   * The exceptions of a rule as one predicate (true: the event is excepted), null when it has
   * none, undefined when one has an error (each exception is checked, and reported, on its own).
   */
  private exceptionsOf(draft: Draft, check: Check): Predicate | null | undefined {
    if (draft.exceptions.length === 0) return null;
    const items = draft.exceptions.map((x) => this.part(draft, check, () => this.resolver.resolve(this.exceptionExpr(x), false)));
    if (items.some((x) => x === undefined)) return undefined;
    const expr: RExpr = items.length === 1 ? items[0]! : { kind: 'or', items: items as RExpr[] };
    return this.part(draft, check, () => compilePredicate(expr));
  }

  /** One structured exception as a condition: any of its value tuples, each field by its operator. */
  private exceptionExpr(item: ExceptionItem): Expr {
    const { entry, file, path } = item;
    const source = new TableSource(file.name);
    const here = source.add(file.at(path));
    if ((entry.field === undefined) === (entry.fields === undefined)) {
      throw compileError('HADES_ERR_RULE_INVALID', "an exception names one field with 'field' or several with 'fields'", source, here);
    }
    const multi = entry.fields !== undefined;
    const fields = entry.fields ?? [entry.field!];
    const fieldAt = fields.map((_, k) => source.add(file.at(multi ? [...path, 'fields', k] : [...path, 'field'])));
    if (entry.operator !== undefined && entry.operators !== undefined) {
      throw compileError('HADES_ERR_RULE_INVALID', "an exception has 'operator' or 'operators', not both", source, here);
    }
    const opTexts = entry.operators ?? fields.map(() => entry.operator ?? '=');
    if (opTexts.length !== fields.length) {
      throw compileError('HADES_ERR_RULE_INVALID', `'operators' has ${opTexts.length} items for ${fields.length} fields`, source, source.add(file.at([...path, 'operators'])));
    }
    const ops = opTexts.map((text, k) => {
      const spec = OPERATORS.get(text);
      const at = source.add(file.at(entry.operators ? [...path, 'operators', k] : [...path, 'operator']));
      if (!spec && text === 'exists') {
        throw compileError('HADES_ERR_RULE_BAD_OPERATOR', "'exists' takes no value, and an exception compares fields with values: append 'and not FIELD exists' to the condition instead", source, at);
      }
      if (!spec) {
        const suggestion = operatorSuggestion(text);
        throw compileError('HADES_ERR_RULE_BAD_OPERATOR', `unknown operator '${text}'${suggestion ? `; did you mean '${suggestion}'?` : ''}`, source, at, suggestion);
      }
      return { spec, at };
    });
    const cmp = (k: number, values: readonly unknown[], at: number[]): Expr => {
      const items: ScalarItem[] = values.map((v, j) => ({ kind: 'scalar', quoted: true, text: String(v), offset: at[j] ?? at[0]! }));
      const value = items.length === 1 ? items[0]! : { kind: 'list' as const, items, offset: items[0]!.offset };
      return { kind: 'cmp', field: fields[k]!, op: ops[k]!.spec, opOffset: ops[k]!.at, value, source, offset: fieldAt[k]! };
    };
    if (entry.values.length === 0) return { kind: 'const', value: false, source, offset: here };
    if (!multi) {
      const flat: unknown[] = [];
      const at: number[] = [];
      entry.values.forEach((v, j) => {
        const list = Array.isArray(v) ? v : [v];
        list.forEach((x, m) => {
          const where = Array.isArray(v) ? [...path, 'values', j, m] : [...path, 'values', j];
          flat.push(file.written(where, x));
          at.push(source.add(file.at(where)));
        });
      });
      const base = ops[0]!.spec.base;
      if (base === 'lt' || base === 'le' || base === 'gt' || base === 'ge') {
        return { kind: 'or', items: flat.map((x, j) => cmp(0, [x], [at[j]!])), source, offset: here };
      }
      return cmp(0, flat, at);
    }
    const tuples = entry.values.map((tuple, j): Expr => {
      const tupleAt = source.add(file.at([...path, 'values', j]));
      if (!Array.isArray(tuple) || tuple.length !== fields.length) {
        throw compileError('HADES_ERR_RULE_INVALID', `each value of an exception on ${fields.length} fields is a list of ${fields.length} values, one per field`, source, tupleAt);
      }
      const parts = tuple.map((x, k) => {
        if (!Array.isArray(x)) return cmp(k, [file.written([...path, 'values', j, k], x)], [source.add(file.at([...path, 'values', j, k]))]);
        return cmp(
          k,
          x.map((y, m) => file.written([...path, 'values', j, k, m], y)),
          x.map((_, m) => source.add(file.at([...path, 'values', j, k, m]))),
        );
      });
      return { kind: 'and', items: parts, source, offset: tupleAt };
    });
    return tuples.length === 1 ? tuples[0]! : { kind: 'or', items: tuples, source, offset: here };
  }

  /** The output: each template (the rule's, appended ones) compiled and reported on its own; undefined on an error. */
  private outputOf(draft: Draft, check: Check, extras: readonly string[] = []): Template | undefined {
    const templates = draft.outputs.map((s) => this.part(draft, check, () => compileTemplate(s, extras)));
    if (templates.some((t) => t === undefined)) return undefined;
    const title: Template = { text: draft.title, render: () => draft.title };
    const ts = draft.titleFirst === true ? [title, ...(templates as Template[])] : (templates as Template[]);
    if (ts.length === 0) return title;
    if (ts.length === 1) return ts[0]!;
    return { text: ts.map((t) => t.text).join(' '), render: (e, x) => ts.map((t) => t.render(e, x)).join(' ') };
  }

  /** Each field of dedup_by must exist and hold one value: an alert's key reads one. Each is checked on its own. */
  private checkDedupBy(draft: Draft, check: Check): void {
    const dedup = draft.dedupBy;
    if (dedup === undefined) return;
    if (draft.type !== 'rule') {
      return this.fail(draft, check, compileError('HADES_ERR_RULE_INVALID', `dedup_by is for rules of type rule: the alerts of a ${draft.type} rule are keyed by its group (by)`, dedup.file.source(dedup.path, ''), 0));
    }
    dedup.fields.forEach((field, i) => {
      this.part(draft, check, () => {
        const source = dedup.file.source([...dedup.path, i], field);
        // The alert's key reads a dotted path: a list position would read nothing, and fold every alert into one.
        if (field.includes('[')) throw compileError('HADES_ERR_RULE_INVALID', `dedup_by takes dotted field names, not list positions ('${field}')`, source, field.indexOf('['));
        this.groupField({ ...draft, file: dedup.file }, field, [...dedup.path, i], false);
      });
    });
  }

  private info(draft: Draft, actions: ActionSet): RuleInfo {
    const dedup = draft.dedupBy;
    return {
      id: draft.id,
      title: draft.title,
      description: draft.description,
      severity: draft.severity,
      tags: Object.freeze([...draft.tags]),
      type: draft.type,
      file: draft.file.name,
      line: draft.line,
      column: draft.column,
      enabled: draft.enabled,
      alert: draft.alert,
      actions: actions === null ? null : Object.freeze([...actions].sort()),
      ...(dedup === undefined ? {} : { dedupBy: Object.freeze([...dedup.fields]) }),
    };
  }

  private neverMatches(draft: Draft, what: string): void {
    const pos = draft.conditions[0]?.locate(0) ?? draft.file.at(draft.path);
    this.report('warning', 'HADES_ERR_RULE_NEVER_MATCHES', draft.conditions[0]?.file ?? draft.file.name, pos, `${what} can match no event: no action has all the fields and values it needs`, { rule: draft.id });
  }

  /**
   * One stateless rule: its condition, each exception, each output and dedup_by are compiled
   * apart, every error reported; undefined when one failed or the rule is only checked.
   */
  private compileRule(draft: Draft): CompiledRule | undefined {
    const check: Check = { failed: !draft.loads };
    const condition = this.conditionOf(draft, check);
    const compiled =
      condition &&
      this.part(draft, check, () => {
        const actions = normaliseActions(actionsOf(condition));
        if (actions !== null && actions.size === 0) this.neverMatches(draft, `rule '${draft.id}'`);
        // The index guarantees the action: its tests go (unless there is no index).
        const indexed = withoutIndexedActionTests(condition, this.options.indexByAction === false ? null : actions);
        return { actions, indexed, predicate: compilePredicate(indexed) };
      });
    const exceptions = this.exceptionsOf(draft, check);
    const output = this.outputOf(draft, check);
    this.checkDedupBy(draft, check);
    if (check.failed || !compiled || exceptions === undefined || !output) return undefined;
    return {
      info: this.info(draft, compiled.actions),
      index: this.compiled.size,
      predicate: compiled.predicate,
      keys: equalityKeys(compiled.indexed),
      exceptions,
      output,
      referenced: false,
      evaluations: 0,
      matches: 0,
      suppressed: 0,
    };
  }

  compileRules(): void {
    for (const draft of this.drafts.values()) {
      if (draft.type !== 'rule') continue;
      const done = this.attempt(draft, draft.id, () => this.compileRule(draft));
      if (done) this.compiled.set(draft.id, done);
      else this.failed.add(draft.id);
    }
    // Second rules of an id and rules without one: checked for their own errors, never loaded.
    for (const draft of this.unnamed) if (draft.type === 'rule') this.attempt(draft, draft.id, () => this.compileRule(draft));
    for (const copy of this.overrideChecks) this.attempt(copy, copy.id, () => this.checkOverride(copy));
  }

  // ----- stage 5: correlation rules -----

  compileCorrelations(): void {
    const state = new Map<string, 'visiting' | 'done'>();
    const visit = (draft: Draft, trail: string[]): void => {
      if (state.get(draft.id) === 'done') return;
      if (state.get(draft.id) === 'visiting') return;
      state.set(draft.id, 'visiting');
      const refs = this.references(draft);
      for (const ref of refs) {
        const dep = this.drafts.get(ref.id);
        if (dep && dep.type !== 'rule') {
          if (state.get(dep.id) === 'visiting') {
            const loop = [...trail.slice(trail.indexOf(dep.id)), draft.id, dep.id].join(' -> ');
            this.report('error', 'HADES_ERR_RULE_CYCLE', draft.file.name, draft.file.at(ref.path), `correlation rules refer to each other in a loop: ${loop}`, { rule: draft.id });
            this.failed.add(draft.id);
          } else visit(dep, [...trail, draft.id]);
        }
      }
      if (!this.failed.has(draft.id)) {
        const done = this.attempt(draft, draft.id, () => this.compileCorrelation(draft));
        if (done) this.correlations.set(draft.id, done);
        else this.failed.add(draft.id);
      }
      state.set(draft.id, 'done');
    };
    for (const draft of this.drafts.values()) if (draft.type !== 'rule') visit(draft, []);
    // Second rules of an id and rules without one: checked for their own errors, never loaded.
    for (const draft of this.unnamed) if (draft.type !== 'rule') this.attempt(draft, draft.id, () => this.compileCorrelation(draft));
  }

  private references(draft: Draft): { id: string; path: YamlPath }[] {
    const e = draft.entry;
    // Only the parts without schema problems: the others may be of any type.
    if (draft.type === 'sequence') {
      const steps = (e as SequenceEntry).steps;
      if (!Array.isArray(steps)) return [];
      return steps.flatMap((s, i) => (!draft.broken(['steps', i]) && s.rule !== undefined ? [{ id: s.rule, path: [...draft.path, 'steps', i, 'rule'] }] : []));
    }
    const rules = (e as ThresholdEntry).rules;
    if (draft.type === 'threshold' && Array.isArray(rules) && !draft.broken(['rules'])) return rules.map((id, i) => ({ id, path: [...draft.path, 'rules', i] }));
    return [];
  }

  /** A rule a step refers to: its index in the epoch table and its actions. */
  private referenced(draft: Draft, id: string, path: YamlPath): { index: number; actions: ActionSet } {
    const source = new TableSource(draft.file.name);
    const at = source.add(draft.file.at(path));
    const rule = this.compiled.get(id);
    // A rule only checked (never loaded) does not make the rules it names run for it.
    if (rule) {
      if (draft.loads) rule.referenced = true;
      return { index: rule.index, actions: rule.info.actions === null ? null : new Set(rule.info.actions) };
    }
    const corr = this.correlations.get(id);
    if (corr) {
      if (draft.loads) corr.referenced = true;
      return { index: corr.index, actions: corr.info.actions === null ? null : new Set(corr.info.actions) };
    }
    if (this.drafts.has(id)) throw compileError('HADES_ERR_RULE_UNKNOWN_RULE', `rule '${id}' did not load (see its own problems), so '${draft.id}' cannot use it`, source, at);
    const suggestion = suggest(id, this.drafts.keys());
    throw compileError('HADES_ERR_RULE_UNKNOWN_RULE', `unknown rule '${id}'${suggestion ? `; did you mean '${suggestion}'?` : ''}`, source, at, suggestion);
  }

  private groupField(draft: Draft, text: string, path: YamlPath, allowTree: boolean, multiOk = false): FieldRef | typeof PROCESS_TREE {
    const source = draft.file.source(path, text);
    if (text === PROCESS_TREE) {
      if (!allowTree) throw compileError('HADES_ERR_RULE_INVALID', `'${PROCESS_TREE}' groups the steps of an ordered sequence only (the first step opens the group of its process)`, source, 0);
      return PROCESS_TREE;
    }
    const r = resolveField(text);
    if (!r.ok) throw compileError('HADES_ERR_RULE_UNKNOWN_FIELD', `${r.message}${r.suggestion ? `; did you mean '${r.suggestion}'?` : ''}`, source, 0, r.suggestion);
    if (r.ref.info.type === 'object') throw compileError('HADES_ERR_RULE_TYPE_MISMATCH', `'${text}' is an object; group by one of its fields`, source, 0);
    if (r.ref.multi && !multiOk) throw compileError('HADES_ERR_RULE_TYPE_MISMATCH', `'${text}' can hold several values; group by a single-valued field`, source, 0);
    return r.ref;
  }

  private byList(value: string | string[] | undefined): string[] {
    return value === undefined ? [] : Array.isArray(value) ? value : [value];
  }

  /**
   * The group key of an event: the values of `refs`. `scoped`: the rule groups by host (a `host.*`
   * field, or the process tree), so the key begins with the event's `agent.id` as well, which the
   * server sets from the agent's certificate: an agent whose events claim another host's name (and
   * its process ids) opens groups of its own, and cannot complete, nor take over, that host's.
   */
  private keyOf(refs: readonly FieldRef[], scoped = false): KeyOf {
    const getters = refs.map(firstValue);
    if (scoped) {
      const inner = this.keyOf(refs);
      return (e) => {
        const rest = inner(e);
        return rest === undefined ? undefined : scopedKey(e, rest);
      };
    }
    if (getters.length === 0) return () => '';
    return (e) => {
      let key = '';
      for (let i = 0; i < getters.length; i++) {
        const v = getters[i]!(e);
        if (v === undefined || v === null) return undefined;
        key += (i === 0 ? '' : '\u0000') + keyText(v);
      }
      return boundedKey(key);
    };
  }

  /**
   * A step's matcher, its actions, and the key clauses every event it matches satisfies
   * (undefined for a rule reference: what that rule requires is not carried over).
   */
  private stepMatcher(draft: Draft, condition: string | undefined, rule: string | undefined, conditionPath: YamlPath, rulePath: YamlPath, exceptions: Predicate | null): StepCompiled {
    if ((condition === undefined) === (rule === undefined)) {
      const source = new TableSource(draft.file.name);
      throw compileError('HADES_ERR_RULE_INVALID', "a step (or a threshold) has either 'condition' or a rule reference ('rule' / 'rules'), not both or neither", source, source.add(draft.file.at(conditionPath.slice(0, -1))));
    }
    if (condition !== undefined) return this.conditionMatcher(this.resolver.resolve(parseCondition(draft.file.source(conditionPath, condition))), exceptions);
    const ref = this.referenced(draft, rule!, rulePath);
    const base = ruleStep(ref.index);
    return { matches: exceptions ? (e, ep, eps) => base(e, ep, eps) && !exceptions(e) : base, actions: ref.actions, keys: undefined };
  }

  private conditionMatcher(rexpr: RExpr, exceptions: Predicate | null): StepCompiled {
    const actions = normaliseActions(actionsOf(rexpr));
    const p = compilePredicate(withoutIndexedActionTests(rexpr, null));
    const matches = exceptions ? conditionStep((e) => p(e) && !exceptions(e)) : conditionStep(p);
    // Its `event.action` terms are kept: the rule set resolves them for each action's events.
    return { matches, actions, keys: equalityKeys(rexpr) };
  }

  /**
   * One correlation rule. Its parts are compiled apart, every error reported: the window, each
   * grouping field, each step (or the threshold's condition or rules), distinct, each exception,
   * the output and dedup_by. Undefined when one failed or the rule is only checked.
   */
  private compileCorrelation(draft: Draft): CompiledCorrelation | undefined {
    const check: Check = { failed: !draft.loads };
    const exceptions = this.exceptionsOf(draft, check);
    // The steps are checked with the exceptions left out when those have an error.
    const except = exceptions ?? null;
    const within = draft.withinMs;
    if (!draft.broken(['within']) && !(within > 0)) {
      const source = new TableSource(draft.file.name);
      this.fail(draft, check, compileError('HADES_ERR_RULE_BAD_VALUE', "'within' must be a duration such as 500ms, 60s, 5m, 1h or 1d", source, source.add(draft.file.at([...draft.path, 'within']))));
    }
    // What each step (or the threshold's condition) requires of an event; undefined: unknown.
    let stepKeys: (readonly KeyClause[] | undefined)[] = [undefined];
    let build: (() => { spec: CorrelationSpec; actions: ActionSet }) | undefined;
    const all = <T>(items: readonly (T | undefined)[]): T[] | undefined => (items.some((x) => x === undefined) ? undefined : (items as T[]));
    if (draft.type === 'threshold') {
      const e = draft.entry as ThresholdEntry;
      const by = all(this.byFields(draft, e.by, [...draft.path, 'by'], (f, at) => this.part(draft, check, () => this.groupField(draft, f, at, false) as FieldRef)));
      let step: { matches: StepMatcher; actions: ActionSet } | undefined;
      if (e.rules !== undefined && e.condition === undefined) {
        const refs = draft.broken(['rules']) ? undefined : all(e.rules.map((id, i) => this.part(draft, check, () => this.stepMatcher(draft, undefined, id, [...draft.path, 'condition'], [...draft.path, 'rules', i], except))));
        if (refs) {
          const ms = refs.map((r) => r.matches);
          const matches: StepMatcher = ms.length === 1 ? ms[0]! : (ev, ep, eps) => ms.some((m) => m(ev, ep, eps));
          const actions = refs.reduce<ActionSet>((acc, r, i) => (i === 0 ? r.actions : acc === null || r.actions === null ? null : new Set([...acc, ...r.actions])), null);
          step = { matches, actions };
          stepKeys = refs.map((r) => r.keys);
        }
      } else if (e.rules === undefined && e.condition !== undefined) {
        // The condition as overrides left it: replaced, or with appended parts and-ed to it.
        const rexpr = this.conditionOf(draft, check);
        const m = rexpr && this.part(draft, check, () => this.conditionMatcher(rexpr, except));
        if (m) {
          step = m;
          stepKeys = [m.keys];
        }
      } else if (!draft.broken(['rules']) && !draft.broken(['condition'])) {
        // Both or neither: refused with its position.
        this.part(draft, check, () => this.stepMatcher(draft, e.condition, e.rules === undefined ? undefined : '', [...draft.path, 'condition'], [...draft.path, 'rules'], except));
      }
      let distinct: ((event: EventRecord) => unknown[]) | undefined;
      if (e.distinct !== undefined && !draft.broken(['distinct'])) {
        const ref = this.part(draft, check, () => this.groupField(draft, e.distinct!, [...draft.path, 'distinct'], false, true) as FieldRef);
        if (ref) distinct = allValues(ref);
      }
      if (by && step) {
        const { matches, actions } = step;
        build = () => ({ spec: { kind: 'threshold', withinMs: within, count: draft.count, matches, key: this.keyOf(by, byHost(by)), ...(distinct ? { distinct } : {}) }, actions });
      }
    } else {
      const e = draft.entry as SequenceEntry;
      const ordered = draft.broken(['ordered']) ? true : e.ordered ?? true;
      const byTexts = draft.broken(['by']) ? [] : this.byList(e.by);
      const by = all(this.byFields(draft, e.by, [...draft.path, 'by'], (f, at) => this.part(draft, check, () => this.groupField(draft, f, at, ordered))));
      const tree = by?.includes(PROCESS_TREE) ?? false;
      const fieldsOnly = (by ?? []).filter((b): b is FieldRef => b !== PROCESS_TREE);
      const scoped = tree || byHost(fieldsOnly);
      const written = Array.isArray(e.steps) ? e.steps : [];
      const steps = all(
        written.map((step, i) => {
          // A step with a schema problem was reported; the others are checked.
          if (draft.broken(['steps', i])) {
            check.failed = true;
            return undefined;
          }
          const stepPath = [...draft.path, 'steps', i];
          const m = this.part(draft, check, () => this.stepMatcher(draft, step.condition, step.rule, [...stepPath, 'condition'], [...stepPath, 'rule'], except));
          let key: KeyOf | undefined = this.keyOf(fieldsOnly, scoped);
          if (step.by !== undefined) {
            const texts = this.part(draft, check, () => {
              const texts = this.byList(step.by);
              const source = draft.file.source([...stepPath, 'by'], '');
              if (tree) throw compileError('HADES_ERR_RULE_INVALID', `a step cannot have its own 'by' when the sequence groups by '${PROCESS_TREE}'`, source, 0);
              if (texts.length !== byTexts.length) {
                throw compileError('HADES_ERR_RULE_INVALID', `a step's 'by' names the fields that stand for the sequence's 'by' in its events: ${byTexts.length} field(s), as many as the sequence's`, source, 0);
              }
              return texts;
            });
            const refs = texts && all(texts.map((f, k) => this.part(draft, check, () => this.groupField(draft, f, Array.isArray(step.by) ? [...stepPath, 'by', k] : [...stepPath, 'by'], false) as FieldRef)));
            key = refs ? this.keyOf(refs, scoped) : undefined;
          }
          return m && key ? { matches: m.matches, key, actions: m.actions, keys: m.keys } : undefined;
        }),
      );
      if (by && steps) {
        stepKeys = steps.map((st) => st.keys);
        build = () => {
          const actions = steps.reduce<ActionSet>((acc, s, i) => (i === 0 ? s.actions : acc === null || s.actions === null ? null : new Set([...acc, ...s.actions])), null);
          let treeKeys: TreeKeysOf | undefined;
          let treeIds: ((ev: EventRecord) => unknown[]) | undefined;
          if (tree) {
            const prefix = this.keyOf(fieldsOnly, true);
            const own = firstValue(this.mustField('process.entity_id'));
            const parent = firstValue(this.mustField('process.parent.entity_id'));
            const ancestors = allValues(this.mustField('hades.ancestors.entity_id'));
            const join = (p: string, id: unknown) => (p === '' ? String(id) : `${p}\u0000${String(id)}`);
            const first: KeyOf = (ev) => {
              const p = prefix(ev);
              const id = own(ev);
              return p === undefined || typeof id !== 'string' ? undefined : join(p, id);
            };
            // The process's own id, its parent's and its ancestors', each once (a handful: a
            // linear check beats a Set); treeKeys puts the grouping prefix in front of each.
            treeIds = (ev) => {
              const ids: unknown[] = [];
              const add = (id: unknown) => {
                if (id !== undefined && !ids.includes(id)) ids.push(id);
              };
              add(own(ev));
              add(parent(ev));
              const up = ancestors(ev);
              for (let i = 0; i < up.length; i++) add(up[i]);
              return ids;
            };
            const idsOf = treeIds;
            treeKeys = (ev) => {
              const p = prefix(ev);
              if (p === undefined) return [];
              return idsOf(ev).map((id) => join(p, id));
            };
            steps[0] = { ...steps[0]!, key: first };
          }
          return { spec: { kind: 'sequence', ordered, withinMs: within, steps: steps.map((s) => ({ matches: s.matches, key: s.key })), ...(treeKeys && treeIds ? { tree: treeKeys, treeIds } : {}) }, actions };
        };
      }
    }
    const output = this.outputOf(draft, check, ['correlation.count', 'correlation.key']);
    this.checkDedupBy(draft, check);
    if (check.failed || !build || !output || exceptions === undefined) return undefined;
    const { spec, actions } = build();
    const normalised = normaliseActions(actions);
    if (normalised !== null && normalised.size === 0) this.neverMatches(draft, `correlation rule '${draft.id}'`);
    return {
      info: this.info(draft, normalised),
      // After every stateless rule, in dependency order: the rules a step uses have theirs already.
      index: this.compiled.size + this.correlations.size,
      // An event that matches none of the steps changes nothing: the rule set's value index may
      // skip the events that hold none of the values every step requires.
      keys: stepKeys.some((k) => k === undefined) ? [] : stepKeys.length === 1 ? stepKeys[0]! : disjunctionClauses(stepKeys as KeyClause[][]),
      correlator: new Correlator(spec, this.options.maxKeysPerRule ?? DEFAULT_MAX_KEYS, this.options.maxEntriesPerRule ?? DEFAULT_MAX_ENTRIES),
      output,
      referenced: false,
      evaluations: 0,
      matches: 0,
    };
  }

  /** Each field of a `by` (one or a list), through `each` with its path; [] when it has schema problems. */
  private byFields<T>(draft: Draft, value: string | string[] | undefined, path: YamlPath, each: (field: string, at: YamlPath) => T): T[] {
    if (draft.broken(path.slice(draft.path.length))) return [];
    return this.byList(value).map((f, i) => each(f, Array.isArray(value) ? [...path, i] : path));
  }

  private mustField(path: string): FieldRef {
    const r = resolveField(path);
    if (!r.ok) throw compileError('HADES_ERR_RULE_UNKNOWN_FIELD', `the event schema lacks '${path}'`, undefined);
    return r.ref;
  }

  // ----- stage 6: warnings -----

  reportUnused(): void {
    // The macros no rule uses, taken before they are checked below (which counts the macros they
    // use): a macro that only an unused macro uses is unused too, whatever the order of definition.
    const unusedMacros = [...this.macros.values()].filter((m) => m.uses === 0);
    const mentioned = new Set(unusedMacros.filter((m) => m.mentioned === true));
    for (const m of unusedMacros) {
      // Named by a rule whose condition failed before reaching it: used, once the rule is fixed.
      if (!mentioned.has(m)) this.report('warning', 'HADES_ERR_RULE_UNUSED_MACRO', m.file.name, m.file.at(m.path, true), `macro '${m.name}' is not used by any rule`, { rule: m.name });
      // Still checked, so its errors show before someone uses it (unless the check of another
      // unused macro already resolved it). Its own errors are kept with it and reported below; a
      // condition too complex is one of the macro's here, as it stands alone.
      if (m.uses > 0) continue;
      this.checkMacro(m, this.scope);
    }
    for (const m of this.macros.values()) {
      if (m.error) this.reportCompile(m.error, m, m.name);
    }
    for (const l of this.lists.values()) {
      if (l.uses === 0 && l.mentioned !== true) this.report('warning', 'HADES_ERR_RULE_UNUSED_LIST', l.file.name, l.file.at(l.path, true), `list '${l.name}' is not used by any rule or macro`, { rule: l.name });
    }
    // A second macro of a name is checked as if it were the one of its name (the macros it
    // uses are the loaded ones), after the unused ones are counted: it uses nothing for real.
    for (const m of this.duplicateMacros) {
      this.checkMacro(m, { ...this.scope, macros: new Map(this.macros).set(m.name, m) });
      if (m.error) this.reportCompile(m.error, m, m.name);
    }
  }

  /**
   * Resolves a macro no rule resolved, alone: its own errors are kept in `m.error` (reported by
   * the caller), but a condition too complex is reported here, as it stands alone.
   */
  private checkMacro(m: MacroEntry, scope: Scope): void {
    const macro: Expr = { kind: 'macro', name: m.name, source: m.source, offset: 0 };
    try {
      new Resolver(scope).resolve(macro);
    } catch (error) {
      if (!(error instanceof RuleCompileError)) throw error;
      if (error.code === 'HADES_ERR_RULE_TOO_COMPLEX') this.reportCompile(error, m, m.name);
      else if (error.code === 'HADES_ERR_RULE_UNKNOWN_FIELD' && this.fitsOneAncestor(macro, scope)) delete m.error;
    }
  }

  /** Whether a macro resolves with the fields of one ancestor: written for use inside `any ancestor (...)`. */
  private fitsOneAncestor(macro: Expr, scope: Scope): boolean {
    try {
      new Resolver(scope).resolve({ kind: 'ancestor', expr: macro, source: macro.source, offset: 0 });
      return true;
    } catch (error) {
      if (!(error instanceof RuleCompileError)) throw error;
      return false;
    }
  }

  build(): RuleSet {
    const all = [...this.drafts.values()]
      .map((d) => this.compiled.get(d.id)?.info ?? this.correlations.get(d.id)?.info)
      .filter((i): i is RuleInfo => i !== undefined);
    return new RuleSet([...this.compiled.values()], [...this.correlations.values()], all, this.options.indexByAction ?? true);
  }

  sortProblems(): void {
    const order = (p: RuleProblem) => this.fileOrder.get(p.file) ?? Infinity;
    this.problems.sort((a, b) => order(a) - order(b) || (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
  }
}

/**
 * Loads rule files: a bad file, rule, macro or list never stops the others from loading.
 * Problems carry codes (src/common/errors.ts), files, lines and columns; warnings do not
 * prevent loading.
 */
export function loadRules(files: readonly RuleFile[], options: LoadOptions = {}): LoadResult {
  const loader = new Loader(options);
  for (const f of files) loader.read(f);
  loader.applyOverrides();
  loader.compileRules();
  loader.compileCorrelations();
  loader.reportUnused();
  const ruleSet = loader.build();
  loader.sortProblems();
  const errors = loader.problems.filter((p) => p.severity === 'error').length;
  const counts = { rules: loader.rulesWritten, errors, warnings: loader.problems.length - errors };
  return { ruleSet, problems: capProblems(loader.problems), counts, samples: loader.samples };
}

/** Whether a rule's grouping fields name a host: its groups are then kept apart per agent (keyOf). */
function byHost(refs: readonly FieldRef[]): boolean {
  return refs.some((r) => r.text.startsWith('host.'));
}
