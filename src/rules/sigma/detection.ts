/**
 * A Sigma detection (search identifiers and a condition) as one Hades condition, against the
 * fields of one log source category. What cannot be expressed is collected as coded issues,
 * never guessed: an unknown field makes the rule unsupported, it never becomes a test that
 * always holds. Matching follows Sigma: case-insensitive unless `cased` (regular expressions
 * are case-sensitive unless `i`), lists of values are alternatives unless `all`, maps are
 * conjunctions, lists of maps alternatives.
 */
import type { ErrorCode } from '../../common/errors.js';
import { HadesError } from '../../common/errors.js';
import { fieldInfo } from '../fields.js';
import { didYouMean } from '../suggest.js';
import { identifiersOf, parseSigmaCondition, type SigmaCondition } from './condition.js';
import { and, cmp, FALSE, not, or, text, TRUE, type HExpr, type HValue } from './expr.js';
import { own } from './document.js';
import { carriedBy, mapField, type CategorySpec } from './mapping.js';
import { base64, base64Offsets, globOf, hasWildcards, literalOf, normalise, parseValue, STAR, utf16, utf8, windash, type Pattern } from './values.js';

/** Why something cannot be converted: a code, a short key for counting, a sentence. */
export interface SigmaIssue {
  readonly code: ErrorCode;
  /** What is unsupported, briefly (a field, a modifier, a log source): the report counts by it. */
  readonly detail: string;
  readonly message: string;
  /** Where in the file (1-based), when known. */
  readonly line?: number;
  readonly column?: number;
}

/** Where a search identifier, or one of its field keys, is written in the file (1-based). */
export type DetectionLocator = (identifier: string, key?: string) => { line: number; column: number } | undefined;

/** Past this many values, a comparison's values go to a list of the rule file. */
export const LIST_THRESHOLD = 16;
/** Most variants windash may produce for one value. */
export const MAX_WINDASH_VARIANTS = 256;
/** Most and-terms an `N of` quantifier may expand to. */
const MAX_COMBINATIONS = 256;

type Match = 'eq' | 'contains' | 'startswith' | 'endswith' | 're' | 'cidr' | 'gt' | 'gte' | 'lt' | 'lte' | 'exists';
type Transform = 'windash' | 'base64' | 'base64offset' | 'utf16le' | 'utf16be' | 'utf16' | 'wide';

interface Modifiers {
  match: Match;
  transforms: Transform[];
  all: boolean;
  cased: boolean;
  neq: boolean;
  flags: Set<'i' | 'm' | 's'>;
}

const MATCHES = new Set<string>(['contains', 'startswith', 'endswith', 're', 'cidr', 'gt', 'gte', 'lt', 'lte', 'exists']);
const TRANSFORMS = new Set<string>(['windash', 'base64', 'base64offset', 'utf16le', 'utf16be', 'utf16', 'wide']);
const RE_FLAGS: Readonly<Record<string, 'i' | 'm' | 's'>> = { i: 'i', ignorecase: 'i', m: 'm', multiline: 'm', s: 's', dotall: 's' };
const TIME_PARTS = new Set(['minute', 'hour', 'day', 'week', 'month', 'year']);

/** Whether `a` and `b` differ by one typing slip: a character changed, added or left out, or two neighbours swapped. */
function oneSlip(a: string, b: string): boolean {
  if (a === b || Math.abs(a.length - b.length) > 1) return false;
  let i = 0;
  while (a[i] === b[i]) i++;
  if (a.length === b.length) return a.slice(i + 1) === b.slice(i + 1) || (a[i] === b[i + 1] && a[i + 1] === b[i] && a.slice(i + 2) === b.slice(i + 2));
  return a.length > b.length ? a.slice(i + 1) === b.slice(i) : a.slice(i) === b.slice(i + 1);
}

/**
 * The one of `candidates` that `name` is a typing slip of: farther ones are more often other
 * fields (Sysmon's LogonGuid is not LogonId), which a suggestion would mislead.
 */
function slipOf(name: string, candidates: Iterable<string>): string | undefined {
  const lower = name.toLowerCase();
  for (const c of candidates) if (oneSlip(lower, c.toLowerCase())) return c;
  return undefined;
}

/** Collects issues and the lists a rule's conditions spill long value lists into. */
export class DetectionContext {
  readonly issues: SigmaIssue[] = [];
  readonly lists = new Map<string, (string | number)[]>();

  constructor(
    readonly spec: CategorySpec,
    /** Prefix of list names, made of the rule's id. */
    private readonly listPrefix: string,
    /**
     * List names already given, shared by every rule converted together: list names are shared
     * by every loaded file, and ids that differ only in punctuation (`a-b`, `a.b`) make one prefix.
     */
    private readonly takenLists: Set<string> = new Set(),
    private readonly locate: DetectionLocator = () => undefined,
  ) {}

  /** The search identifier, and the field key within it, being converted: what issues point at. */
  private here: [identifier: string, key?: string] | undefined;

  /** Converts with the issues raised pointing at `identifier` (and `key`). */
  at<T>(identifier: string, key: string | undefined, convert: () => T): T {
    const outer = this.here;
    this.here = [identifier, key];
    try {
      return convert();
    } finally {
      this.here = outer;
    }
  }

  issue(code: ErrorCode, detail: string, message: string): HExpr {
    if (!this.issues.some((i) => i.code === code && i.detail === detail)) {
      const where = this.here === undefined ? undefined : (this.locate(this.here[0], this.here[1]) ?? this.locate(this.here[0]));
      this.issues.push({ code, detail, message, ...(where ? { line: where.line, column: where.column } : {}) });
    }
    return FALSE;
  }

  invalid(message: string): HExpr {
    return this.issue('HADES_ERR_SIGMA_INVALID', 'detection', message);
  }

  list(values: readonly (string | number)[]): HValue {
    let n = this.lists.size + 1;
    while (this.takenLists.has(`${this.listPrefix}_${n}`)) n++;
    const name = `${this.listPrefix}_${n}`;
    this.takenLists.add(name);
    this.lists.set(name, [...values]);
    return { kind: 'list', name };
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

type Scalar = string | number | boolean | null;

function isScalar(v: unknown): v is Scalar {
  return v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
}

function parseModifiers(ctx: DetectionContext, field: string, names: readonly string[]): Modifiers | undefined {
  const mods: Modifiers = { match: 'eq', transforms: [], all: false, cased: false, neq: false, flags: new Set() };
  let ok = true;
  for (const raw of names) {
    const m = raw.toLowerCase();
    if (MATCHES.has(m)) {
      if (mods.match !== 'eq' && mods.match !== m) {
        ctx.invalid(`'${field}' has two modifiers that say how to compare ('${mods.match}' and '${m}')`);
        ok = false;
      }
      mods.match = m as Match;
    } else if (TRANSFORMS.has(m)) mods.transforms.push(m as Transform);
    else if (m === 'all') mods.all = true;
    else if (m === 'cased') mods.cased = true;
    else if (m === 'neq') mods.neq = true;
    else if (own(RE_FLAGS, m) && mods.match === 're') mods.flags.add(own(RE_FLAGS, m)!);
    else {
      ok = false;
      if (m === 'fieldref') ctx.issue('HADES_ERR_SIGMA_MODIFIER', 'fieldref', `'${field}|fieldref' compares two fields of the event; Hades conditions compare a field with values only`);
      else if (m === 'expand') ctx.issue('HADES_ERR_SIGMA_MODIFIER', 'expand', `'${field}|expand' needs placeholders (%name%) replaced by a processing pipeline, which Hades does not have`);
      else if (TIME_PARTS.has(m)) ctx.issue('HADES_ERR_SIGMA_MODIFIER', m, `'${field}|${m}' extracts a part of a date; Hades conditions do not compare parts of dates`);
      else {
        const known = [...MATCHES, ...TRANSFORMS, 'all', 'cased', 'neq', 'fieldref', 'expand'];
        const suggestion = own(RE_FLAGS, m) ? undefined : slipOf(m, known);
        ctx.issue('HADES_ERR_SIGMA_MODIFIER', m, `'${field}' has the modifier '${raw}', which Sigma does not define${own(RE_FLAGS, m) ? ` except after 're'` : didYouMean(suggestion)}`);
      }
    }
  }
  if (ok && mods.transforms.length > 0 && mods.match !== 'eq' && mods.match !== 'contains' && mods.match !== 'startswith' && mods.match !== 'endswith') {
    ctx.invalid(`'${field}' transforms its values (${mods.transforms.join(', ')}) and compares them with '${mods.match}', which takes values as written`);
    ok = false;
  }
  return ok ? mods : undefined;
}

/** A Sigma value as text (plain numbers and booleans of a detection arrive as written, document.ts). */
function asText(v: string | number | boolean): string {
  return typeof v === 'string' ? v : String(v);
}

/** The patterns a value stands for once the transformations are applied, or an issue. */
function transformed(ctx: DetectionContext, field: string, value: string, transforms: readonly Transform[]): Pattern[] | undefined {
  let patterns: Pattern[] = [parseValue(value)];
  let bytes: Uint8Array[] | undefined;
  for (const t of transforms) {
    if (t === 'windash') {
      if (bytes) {
        ctx.invalid(`'${field}' applies windash after an encoding`);
        return undefined;
      }
      const out: Pattern[] = [];
      for (const p of patterns) {
        const v = windash(p, MAX_WINDASH_VARIANTS);
        if (!v || out.length + v.length > MAX_WINDASH_VARIANTS) {
          ctx.issue('HADES_ERR_SIGMA_VALUE', 'windash', `'${field}': windash makes more than ${MAX_WINDASH_VARIANTS} variants of '${value}'`);
          return undefined;
        }
        out.push(...v);
      }
      patterns = out;
      continue;
    }
    if (!bytes) {
      if (patterns.some(hasWildcards)) {
        ctx.issue('HADES_ERR_SIGMA_VALUE', t, `'${field}|${t}': '${value}' has wildcards, which an encoding would turn into literal characters`);
        return undefined;
      }
      const texts = patterns.map(literalOf);
      bytes = t === 'base64' || t === 'base64offset' ? texts.map(utf8) : texts.map((s) => (t === 'utf16be' ? utf16(s, 'be', false) : utf16(s, 'le', t === 'utf16')));
      if (t !== 'base64' && t !== 'base64offset') continue;
    } else if (t !== 'base64' && t !== 'base64offset') {
      ctx.invalid(`'${field}' encodes its values twice (${transforms.join(', ')})`);
      return undefined;
    }
    // Encoded text is literal: its characters are never wildcards.
    patterns = t === 'base64' ? bytes.map((b) => [base64(b)]) : bytes.flatMap((b) => base64Offsets(b).map((s) => [s]));
    bytes = undefined;
  }
  if (bytes) {
    ctx.issue('HADES_ERR_SIGMA_VALUE', transforms[transforms.length - 1]!, `'${field}' ends with a UTF-16 encoding without base64; Hades fields are text, never UTF-16 bytes`);
    return undefined;
  }
  return patterns;
}

type Base = 'eq' | 'contains' | 'startswith' | 'endswith' | 'glob' | 'exists';

/** The cheapest Hades comparison for a pattern under a match modifier. */
function classify(pattern: Pattern, match: 'eq' | 'contains' | 'startswith' | 'endswith'): { base: Base; value: string } {
  const p = normalise([...(match === 'contains' || match === 'endswith' ? [STAR] : []), ...pattern, ...(match === 'contains' || match === 'startswith' ? [STAR] : [])]);
  const isStar = (i: number) => typeof p[i] === 'object' && (p[i] as { wildcard: string }).wildcard === '*';
  if (p.length === 0) return { base: 'eq', value: '' };
  if (p.length === 1 && isStar(0)) return { base: 'exists', value: '' };
  if (!hasWildcards(p)) return { base: 'eq', value: p[0] as string };
  if (p.length === 2 && isStar(0) && typeof p[1] === 'string') return { base: 'endswith', value: p[1] };
  if (p.length === 2 && isStar(1) && typeof p[0] === 'string') return { base: 'startswith', value: p[0] };
  if (p.length === 3 && isStar(0) && isStar(2) && typeof p[1] === 'string') return { base: 'contains', value: p[1] };
  return { base: 'glob', value: globOf(p) };
}

function opText(base: Exclude<Base, 'exists'>, ci: boolean, many: boolean): string {
  if (base === 'eq') return many ? (ci ? 'iin' : 'in') : ci ? 'i=' : '=';
  return ci ? `i${base}` : base;
}

/** `field op values`, the values in a list of the file when there are many. */
function comparison(ctx: DetectionContext, field: string, op: string, values: readonly (string | number)[]): HExpr {
  if (values.length > LIST_THRESHOLD) return cmp(field, op, [ctx.list(values)]);
  return cmp(
    field,
    op,
    values.map((v) => (typeof v === 'number' ? { kind: 'number', value: v } : text(v))),
  );
}

function combine(items: readonly HExpr[], all: boolean): HExpr {
  return all ? and(items) : or(items);
}

function booleanOf(v: Scalar): boolean | undefined {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string' && /^(true|false)$/i.test(v)) return v.toLowerCase() === 'true';
  return undefined;
}

/**
 * YAML's numbers (core schema): decimal, 0o octal, 0x hexadecimal, with fractions and exponents.
 * The reader keeps a plain number of a detection as written (document.ts), read here as YAML would.
 */
const YAML_DECIMAL = /^[-+]?(?:\.\d+|\d+(?:\.\d*)?)(?:[eE][-+]?\d+)?$/;

function numberOf(v: Scalar): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const s = v.trim();
  // A quoted value is text: its decimal spelling is the number (ports are often quoted), while
  // '0x115c' is no spelling of 4444 that a text comparison would match. (Unquoted hex and octal
  // are numbers already, read by the YAML parser.)
  const n = YAML_DECIMAL.test(s) ? Number(s) : NaN;
  return Number.isFinite(n) ? n : undefined;
}

/** One `field|modifiers: values` entry of a selection. */
function fieldEntry(ctx: DetectionContext, key: string, raw: unknown): HExpr {
  const [name = '', ...modNames] = key.split('|');
  if (name === '') return ctx.issue('HADES_ERR_SIGMA_KEYWORDS', 'keywords', `'${key}' searches keywords in the whole event; Hades events have no raw message to search`);
  const values: unknown[] = Array.isArray(raw) ? raw : [raw];
  if (values.length === 0) return ctx.invalid(`'${key}' has an empty list of values`);
  if (!values.every(isScalar)) return ctx.invalid(`'${key}' has a value that is a list or a mapping; values are strings, numbers, true, false or null`);
  const mods = parseModifiers(ctx, name, modNames);
  const mapping = mapField(ctx.spec, name);
  if (!mapping) {
    const suggestion = slipOf(name, Object.keys(ctx.spec.fields));
    return ctx.issue(
      'HADES_ERR_SIGMA_FIELD',
      name,
      `the field '${name}' has no equivalent in Hades' ${ctx.spec.actions.join(' and ')} events (docs/sigma.md lists the fields of ${ctx.spec.category})${didYouMean(suggestion)}`,
    );
  }
  if (!carriedBy(ctx.spec, mapping.target)) {
    return ctx.issue('HADES_ERR_SIGMA_FIELD', name, `'${name}' maps to '${mapping.target}', which not every ${ctx.spec.actions.join(' and ')} event carries`);
  }
  if (!mods) return FALSE;
  const scalars = values;
  if (mapping.kind === 'values') {
    if (mods.match !== 'eq' || mods.transforms.length > 0) return ctx.issue('HADES_ERR_SIGMA_VALUE', `${name}|${mods.match}`, `'${name}' takes one of ${Object.keys(mapping.values).join(', ')}, compared as they are`);
    const items = scalars.map((v): HExpr => {
      const to = v === null ? undefined : own(mapping.values, asText(v).toLowerCase());
      if (to === undefined) return ctx.issue('HADES_ERR_SIGMA_VALUE', name, `'${name}: ${String(v)}' has no equivalent: '${name}' is one of ${Object.keys(mapping.values).join(', ')}`);
      return to === true ? TRUE : cmp(mapping.target, '=', [text(to)]);
    });
    const e = combine(items, mods.all);
    return mods.neq ? not(e) : e;
  }
  const target = mapping.target;
  const type = fieldInfo(target)?.type ?? 'any';
  const e = fieldValues(ctx, key, target, type, mods, scalars);
  return mods.neq ? not(e) : e;
}

function fieldValues(ctx: DetectionContext, key: string, target: string, type: string, mods: Modifiers, values: readonly Scalar[]): HExpr {
  const ci = !mods.cased;
  const missing = values.some((v) => v === null) ? [not({ kind: 'exists', field: target })] : [];
  const present = values.filter((v): v is string | number | boolean => v !== null);
  const bad = (why: string) => ctx.issue('HADES_ERR_SIGMA_VALUE', key, `'${key}': ${why}`);

  switch (mods.match) {
    case 'exists': {
      if (values.length !== 1) return bad('exists takes one value, true or false');
      const b = booleanOf(values[0]!);
      if (b === undefined) return bad('exists takes true or false');
      return b ? { kind: 'exists', field: target } : not({ kind: 'exists', field: target });
    }
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte': {
      if (type !== 'number' && type !== 'any') return bad(`'${target}' is ${type}, and ${mods.match} compares numbers`);
      const op = { gt: '>', gte: '>=', lt: '<', lte: '<=' }[mods.match];
      const items = present.map((v) => {
        const n = numberOf(v);
        return n === undefined ? bad(`'${String(v)}' is not a number`) : cmp(target, op, [{ kind: 'number', value: n }]);
      });
      return combine([...missing, ...items], mods.all);
    }
    case 'cidr': {
      const ranges = present.map(asText);
      return combine([...missing, ...(mods.all ? ranges.map((r) => comparison(ctx, target, 'in_cidr', [r])) : [comparison(ctx, target, 'in_cidr', ranges)])], mods.all);
    }
    case 're': {
      const prefix = [...mods.flags].filter((f) => f !== 'i').sort().join('');
      const patterns = present.map((v) => (prefix ? `(?${prefix})${asText(v)}` : asText(v)));
      // Sigma's regular expressions are case-sensitive unless the i flag (or (?i)) says otherwise.
      const op = mods.flags.has('i') ? 'imatches' : 'matches';
      return combine([...missing, ...(mods.all ? patterns.map((p) => comparison(ctx, target, op, [p])) : [comparison(ctx, target, op, patterns)])], mods.all);
    }
    default:
      break;
  }
  const match = mods.match;
  if (type === 'number') {
    if (match !== 'eq' || mods.transforms.length > 0) return bad(`'${target}' is a number, and ${match} compares text`);
    const nums = present.map(numberOf);
    if (nums.some((n) => n === undefined)) return bad(`'${target}' is a number, and '${present.map(String).join("', '")}' ${present.length === 1 ? 'is' : 'are'} not`);
    const ns = nums as number[];
    const items = mods.all ? ns.map((n) => cmp(target, '=', [{ kind: 'number', value: n }])) : [comparison(ctx, target, ns.length > 1 ? 'in' : '=', ns)];
    return combine([...missing, ...items], mods.all);
  }
  if (type === 'boolean') {
    if (match !== 'eq' || mods.transforms.length > 0) return bad(`'${target}' is true or false`);
    const items = present.map((v): HExpr => {
      const b = booleanOf(v);
      return b === undefined ? bad(`'${target}' is true or false, and '${String(v)}' is neither`) : cmp(target, '=', [{ kind: 'bool', value: b }]);
    });
    return combine([...missing, ...items], mods.all);
  }
  if (type === 'object') return ctx.issue('HADES_ERR_SIGMA_FIELD', key, `'${target}' is an object, not a value`);
  // Text: each value becomes patterns, each pattern the cheapest comparison that means it.
  const tests: HExpr[] = [...missing];
  const grouped = new Map<Base, string[]>();
  for (const v of present) {
    const patterns = transformed(ctx, key, asText(v), mods.transforms);
    if (!patterns) return FALSE;
    const forValue = new Map<Base, string[]>();
    for (const p of patterns) {
      const c = classify(p, match);
      const into = mods.all ? forValue : grouped;
      const list = into.get(c.base) ?? [];
      if (!list.includes(c.value)) list.push(c.value);
      into.set(c.base, list);
    }
    // With all, each value must hold, and the variants of one value are its alternatives.
    if (mods.all) tests.push(or(groups(ctx, target, forValue, ci)));
  }
  if (!mods.all) tests.push(...groups(ctx, target, grouped, ci));
  return combine(tests, mods.all);
}

function groups(ctx: DetectionContext, target: string, grouped: ReadonlyMap<Base, string[]>, ci: boolean): HExpr[] {
  const out: HExpr[] = [];
  for (const [base, values] of grouped) {
    if (base === 'exists') out.push({ kind: 'exists', field: target });
    else out.push(comparison(ctx, target, opText(base, ci, values.length > 1), values));
  }
  return out;
}

/** One search identifier: a map (and), a list of maps (or); lists of plain values are keywords. */
export function searchExpr(ctx: DetectionContext, name: string, value: unknown): HExpr {
  const mapExpr = (m: Record<string, unknown>): HExpr => {
    const keys = Object.keys(m);
    if (keys.length === 0) return ctx.invalid(`the search identifier '${name}' is an empty mapping`);
    return and(keys.map((k) => ctx.at(name, k, () => fieldEntry(ctx, k, m[k]))));
  };
  if (isRecord(value)) return mapExpr(value);
  if (Array.isArray(value)) {
    if (value.length === 0) return ctx.invalid(`the search identifier '${name}' is an empty list`);
    if (value.every(isRecord)) return or(value.map(mapExpr));
    if (value.every((v) => !isRecord(v) && !Array.isArray(v))) {
      return ctx.issue('HADES_ERR_SIGMA_KEYWORDS', 'keywords', `the search identifier '${name}' lists keywords to find anywhere in the event; Hades events have no raw message to search`);
    }
    return ctx.invalid(`the search identifier '${name}' mixes mappings and plain values`);
  }
  if (typeof value === 'string' || typeof value === 'number') {
    return ctx.issue('HADES_ERR_SIGMA_KEYWORDS', 'keywords', `the search identifier '${name}' is a keyword to find anywhere in the event; Hades events have no raw message to search`);
  }
  return ctx.invalid(`the search identifier '${name}' is ${value === null ? 'null' : typeof value}; it must be a mapping or a list`);
}

function combinations<T>(items: readonly T[], k: number, limit: number): T[][] | undefined {
  const out: T[][] = [];
  const pick = (start: number, chosen: T[]): boolean => {
    if (chosen.length === k) {
      out.push([...chosen]);
      return out.length <= limit;
    }
    for (let i = start; i <= items.length - (k - chosen.length); i++) {
      chosen.push(items[i]!);
      if (!pick(i + 1, chosen)) return false;
      chosen.pop();
    }
    return true;
  };
  return pick(0, []) ? out : undefined;
}

/** A detection's condition texts: one, or a non-empty list (any of them); undefined when it is neither. */
export function conditionTexts(detection: Record<string, unknown>): readonly string[] | undefined {
  const conditions = detection['condition'];
  if (typeof conditions === 'string') return [conditions];
  return Array.isArray(conditions) && conditions.length > 0 && conditions.every((c): c is string => typeof c === 'string') ? conditions : undefined;
}

/** The detection section of a rule (or a filter) as one Hades condition, without the action test. */
export function detectionExpr(ctx: DetectionContext, detection: unknown): HExpr {
  if (!isRecord(detection)) return ctx.invalid("'detection' must be a mapping of search identifiers and a condition");
  const names = Object.keys(detection).filter((k) => k !== 'condition' && k !== 'timeframe');
  const texts = conditionTexts(detection);
  if (!texts) return ctx.invalid("'detection.condition' must be a condition, or a list of conditions");
  // `timeframe` only ever meant something to the aggregations of Sigma 1, refused with them.
  const cache = new Map<string, HExpr>();
  const search = (id: string): HExpr => {
    let e = cache.get(id);
    if (!e) {
      e = ctx.at(id, undefined, () => searchExpr(ctx, id, detection[id]));
      cache.set(id, e);
    }
    return e;
  };
  const walk = (c: SigmaCondition): HExpr => {
    switch (c.kind) {
      case 'id':
        if (!names.includes(c.name)) return ctx.invalid(`the condition names '${c.name}', which the detection does not define`);
        return search(c.name);
      case 'of': {
        const ids = identifiersOf(c.pattern, names);
        if (ids.length === 0) return ctx.invalid(`'${c.count} of ${c.pattern}' matches no search identifier`);
        const items = ids.map(search);
        if (c.count === 'all') return and(items);
        if (c.count === 1) return or(items);
        if (c.count > items.length) return ctx.invalid(`'${c.count} of ${c.pattern}' asks for more than the ${items.length} identifiers it matches`);
        const combos = combinations(items, c.count, MAX_COMBINATIONS);
        if (!combos) return ctx.issue('HADES_ERR_SIGMA_CONDITION', 'N of', `'${c.count} of ${c.pattern}' expands to more than ${MAX_COMBINATIONS} combinations`);
        return or(combos.map(and));
      }
      case 'and':
        return and(c.items.map(walk));
      case 'or':
        return or(c.items.map(walk));
      case 'not':
        return not(walk(c.expr));
    }
  };
  const parts = texts.map((t) => {
    try {
      return walk(parseSigmaCondition(t));
    } catch (error) {
      if (!(error instanceof HadesError)) throw error;
      const detail = typeof error.details?.['detail'] === 'string' ? error.details['detail'] : 'condition';
      return ctx.issue(error.code, detail, error.message);
    }
  });
  return or(parts);
}

/** The Sigma field names a detection uses (without modifiers), for choosing a mapping. */
export function detectionFields(detection: unknown): string[] {
  const out = new Set<string>();
  if (!isRecord(detection)) return [];
  const visit = (v: unknown) => {
    if (Array.isArray(v)) v.forEach(visit);
    else if (isRecord(v)) for (const k of Object.keys(v)) out.add(k.split('|')[0] ?? '');
  };
  for (const [k, v] of Object.entries(detection)) if (k !== 'condition' && k !== 'timeframe') visit(v);
  out.delete('');
  return [...out];
}
