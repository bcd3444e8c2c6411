import type { TSchema, Static } from '@sinclair/typebox';
import { Value, ValueErrorType, type ValueError } from '@sinclair/typebox/value';
import { closest, distance } from 'fastest-levenshtein';
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node } from 'yaml';
import { HadesError, type ErrorCode } from '../errors.js';
import { yamlDepthProblem } from '../yaml-depth.js';
import { yamlToPlain } from '../yaml-plain.js';

/** Largest configuration file accepted: configs are small, so anything bigger is a mistake. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

export interface ConfigProblem {
  readonly code: ErrorCode;
  /** Dotted key path, e.g. `driver.argv_max`; empty for the document itself. */
  readonly path: string;
  /** 1-based position in the source, when the problem maps to one. */
  readonly line?: number;
  readonly column?: number;
  readonly message: string;
  /** For unknown keys: the closest key the schema defines, when one is close. */
  readonly suggestion?: string;
}

export type ConfigResult<T> =
  | { readonly ok: true; readonly config: T }
  | { readonly ok: false; readonly problems: readonly ConfigProblem[] };

/**
 * A check of what a schema cannot say (consistency between keys, the files a configuration
 * names). `reads` lists the dotted paths it reads: it runs when none of them, nor what they hold
 * nor what holds them, has a schema problem, so that a mistake in another section does not hide
 * its problems, and a section that failed its schema is not checked again (one problem per
 * mistake). Its problems name a dotted `path`, which gets the line and column of that key.
 */
export interface ConfigCheck<T> {
  readonly reads: readonly string[];
  readonly check: (config: T) => ConfigProblem[];
}

/** Whether a check reading `read` must be left out because of a schema problem at `failed`. */
function touches(read: string, failed: string): boolean {
  return failed === '' || read === '' || read === failed || read.startsWith(`${failed}.`) || failed.startsWith(`${read}.`);
}

/**
 * Parses YAML text and validates it against a schema: defaults are filled in from the schema,
 * every problem is reported (not only the first) with its position, and the result is frozen.
 * The schema's problems and those of the `checks` that can run (see ConfigCheck) come together,
 * in the order of the file.
 */
export function parseConfig<S extends TSchema>(text: string, schema: S, checks: readonly ConfigCheck<Static<S>>[] = []): ConfigResult<Static<S>> {
  if (text.length > MAX_CONFIG_BYTES) {
    return {
      ok: false,
      problems: [
        { code: 'HADES_ERR_CONFIG_TOO_LARGE', path: '', message: `configuration is ${text.length} bytes; the limit is ${MAX_CONFIG_BYTES}` },
      ],
    };
  }
  const deep = yamlDepthProblem(text);
  if (deep) return { ok: false, problems: [{ code: 'HADES_ERR_CONFIG_SYNTAX', path: '', line: deep.line, column: 1, message: deep.message }] };
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, logLevel: 'error' });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      problems: doc.errors.map((e) => {
        const pos = lines.linePos(e.pos[0]);
        return { code: 'HADES_ERR_CONFIG_SYNTAX' as const, path: '', line: pos.line, column: pos.col, message: e.message.split('\n')[0] ?? e.message };
      }),
    };
  }
  // Converted, a key that is a list or a mapping becomes its YAML text, indented at every level:
  // 500 bytes of `[[[...]]]: 1` made a key of 400 KB, and a file of them minutes of work and
  // gigabytes of messages. No setting is named by one: refused before the conversion.
  const complex = complexKeys(doc);
  if (complex.length > 0) {
    return {
      ok: false,
      problems: complex.map(({ key, parent }) => {
        const path = parent.join('.');
        return { code: 'HADES_ERR_CONFIG_UNKNOWN_KEY' as const, path, ...positionOf(key, lines), message: `${path === '' ? 'the configuration' : `'${path}'`} has a key that is a list or a mapping: no setting is named by one` };
      }),
    };
  }
  let raw: unknown;
  try {
    raw = yamlToPlain(doc) ?? {};
  } catch (error) {
    // The yaml library refuses alias expansions that would blow up memory.
    const message = error instanceof Error ? error.message : String(error);
    return { ok: false, problems: [{ code: 'HADES_ERR_CONFIG_SYNTAX', path: '', message }] };
  }
  // The yaml library keeps a `__proto__` key as an own property; copied by the defaults below,
  // it would become the section's prototype: its keys unchecked, and read as the section's own
  // (`plugins: {__proto__: {driver: false}}` turned the driver off and passed as valid).
  const protos: string[][] = [];
  protoKeys(raw, [], protos);
  if (protos.length > 0) {
    return {
      ok: false,
      problems: protos.map((segments) => {
        const path = segments.join('.');
        return { code: 'HADES_ERR_CONFIG_UNKNOWN_KEY' as const, path, ...positionOf(keyNode(doc, segments), lines), message: `unknown key '${path}': __proto__ names no setting anywhere` };
      }),
    };
  }
  // A mapping where a list belongs, or a list where a mapping belongs, would be replaced by the
  // default below, and the mistake (a rule folder or an alert output given as a mapping, a
  // section given as `[]`) lost without a word.
  const shapes: { segments: string[]; want: 'list' | 'mapping' }[] = [];
  wrongShapes(schema, raw, [], shapes);
  // No setting holds a NUL: a path with one would be cut short by the system calls that take it.
  const nuls: string[][] = [];
  stringsWithNul(raw, [], nuls);
  const problems: ConfigProblem[] = [
    ...shapes.map(({ segments, want }) => valueProblemAt(doc, lines, segments, 'HADES_ERR_CONFIG_TYPE', `must be a ${want} (got ${want === 'list' ? 'a mapping' : 'a list'})`)),
    ...nuls.map((segments) => valueProblemAt(doc, lines, segments, 'HADES_ERR_CONFIG_VALUE', 'holds a NUL character, which no setting may')),
  ];
  // Said once: the schema is not asked again about what these hold.
  const said = problems.map((p) => p.path);
  const value = Value.Default(schema, structuredClone(raw));
  const seen = new Set<string>();
  for (const error of Value.Errors(schema, value)) {
    // TypeBox reports a missing property twice (required, then wrong type): keep the first.
    if (seen.has(error.path)) continue;
    seen.add(error.path);
    const problem = describe(error, schema, doc, lines);
    const at = problem.path.replaceAll('\0', '\\0');
    if (said.some((path) => at === path || at.startsWith(`${path}.`))) continue;
    problems.push(problem);
  }
  // The checks whose keys all passed the schema: the value holds those keys valid (or defaulted).
  const failed = problems.map((p) => p.path);
  for (const { reads, check } of checks) {
    if (reads.some((read) => failed.some((path) => touches(read, path)))) continue;
    for (const p of check(value)) {
      if (p.line !== undefined || p.path === '') {
        problems.push(p);
        continue;
      }
      const node = doc.getIn(p.path.split('.').map(indexOrKey), true) as RangedNode | undefined;
      problems.push({ ...p, ...positionOf(node, lines) });
    }
  }
  // In the order of the file, as a person reads it (the schema's and the checks' merged).
  problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, config: deepFreeze(value as Static<S>) };
}

/** Like parseConfig, but throws one HadesError listing every problem. */
export function loadConfig<S extends TSchema>(text: string, schema: S, source: string): Static<S> {
  const result = parseConfig(text, schema);
  if (result.ok) return result.config;
  throw configError(result.problems, source);
}

export function configError(problems: readonly ConfigProblem[], source: string): HadesError {
  const lines = problems.map((p) => formatProblem(p, source));
  const count = problems.length === 1 ? 'a problem' : `${problems.length} problems`;
  return new HadesError('HADES_ERR_CONFIG_INVALID', `${source} has ${count}: ${lines.join('; ')}`, {
    details: { source, problems },
  });
}

export function formatProblem(p: ConfigProblem, source: string): string {
  const where = p.line === undefined ? source : `${source}:${p.line}:${p.column ?? 1}`;
  return `${where}: ${p.code}: ${p.message}`;
}

function describe(error: ValueError, schema: TSchema, doc: Document, lines: LineCounter): ConfigProblem {
  const segments = error.path.split('/').slice(1).map(unescapePointer);
  const dotted = segments.join('.');
  const at = (node: RangedNode | null | undefined) => positionOf(node, lines);
  switch (error.type) {
    case ValueErrorType.ObjectAdditionalProperties: {
      const key = segments.at(-1) ?? '';
      const parentPath = segments.slice(0, -1);
      const parent = schemaAt(schema, parentPath);
      // A map of names to values (webhook headers): the name is not of the form they take.
      const names = Object.keys((parent?.['patternProperties'] as Record<string, unknown> | undefined) ?? {});
      if (names.length === 1 && Object.keys(parent?.['properties'] ?? {}).length === 0) {
        return { code: 'HADES_ERR_CONFIG_VALUE', path: dotted, ...at(keyNode(doc, segments)), message: `'${key}' is not a valid name under '${parentPath.join('.')}': a name here matches ${names[0]}` };
      }
      const known = Object.keys(parent?.['properties'] ?? {});
      const suggestion = suggest(key, known);
      const message =
        `unknown key '${dotted}'` +
        (suggestion ? `; did you mean '${[...parentPath, suggestion].join('.')}'?` : known.length ? `; known keys here: ${known.join(', ')}` : '');
      return { code: 'HADES_ERR_CONFIG_UNKNOWN_KEY', path: dotted, ...at(keyNode(doc, segments)), message, ...(suggestion ? { suggestion } : {}) };
    }
    case ValueErrorType.ObjectRequiredProperty:
      return {
        code: 'HADES_ERR_CONFIG_MISSING_KEY',
        path: dotted,
        ...at(valueNode(doc, segments.slice(0, -1))),
        message: `missing required key '${dotted}'`,
      };
    default: {
      // `port: 0` against "an integer from 1 to 65535, or null": the value has the type of one
      // branch and breaks its bounds, which is what to say (not "must be an integer or null").
      if (error.type === ValueErrorType.Union) {
        for (const branch of (error.schema as { anyOf?: TSchema[] }).anyOf ?? []) {
          if (!sameKind(branch, error.value)) continue;
          const inner = Value.Errors(branch, error.value).First();
          if (inner && valueProblem(inner)) return describe({ ...inner, path: error.path }, schema, doc, lines);
        }
      }
      const expected = expectedOf(error.schema);
      const isValueProblem = valueProblem(error);
      const name = dotted === '' ? 'the configuration' : `'${dotted}'`;
      // A setting marked secret (a webhook URL, a header value) is not repeated, not even in part.
      const secret = (error.schema as { secret?: unknown }).secret === true;
      const message = isValueProblem
        ? `${name} ${constraintText(error)} (got ${secret ? 'a value not repeated here: it may hold a secret' : show(error.value)})`
        : `${name} must be ${expected} (got ${error.value === null ? 'null' : secret ? typeName(error.value) : `${typeName(error.value)} ${show(error.value)}`})`;
      return {
        code: isValueProblem ? 'HADES_ERR_CONFIG_VALUE' : 'HADES_ERR_CONFIG_TYPE',
        path: dotted,
        ...at(valueNode(doc, segments)),
        message,
      };
    }
  }
}

const VALUE_ERRORS = new Set<ValueErrorType>([
  ValueErrorType.NumberMinimum,
  ValueErrorType.NumberMaximum,
  ValueErrorType.NumberExclusiveMinimum,
  ValueErrorType.NumberExclusiveMaximum,
  ValueErrorType.IntegerMinimum,
  ValueErrorType.IntegerMaximum,
  ValueErrorType.IntegerExclusiveMinimum,
  ValueErrorType.IntegerExclusiveMaximum,
  ValueErrorType.StringMinLength,
  ValueErrorType.StringMaxLength,
  ValueErrorType.StringPattern,
  ValueErrorType.StringFormat,
  ValueErrorType.ArrayMaxItems,
  ValueErrorType.ArrayMinItems,
  ValueErrorType.ArrayUniqueItems,
]);

function valueProblem(error: ValueError): boolean {
  if (VALUE_ERRORS.has(error.type)) return true;
  // A string that is not one of the allowed words is a bad value, not a bad type.
  const options = literalOptions(error.schema);
  return options !== undefined && options.some((o) => typeof o === typeof error.value);
}

function constraintText(error: ValueError): string {
  const s = error.schema as Record<string, unknown>;
  const options = literalOptions(error.schema);
  if (options) return `must be one of ${options.map((o) => JSON.stringify(o)).join(', ')}`;
  switch (error.type) {
    case ValueErrorType.IntegerMinimum:
    case ValueErrorType.NumberMinimum:
      return `must be at least ${String(s['minimum'])}`;
    case ValueErrorType.IntegerMaximum:
    case ValueErrorType.NumberMaximum:
      return `must be at most ${String(s['maximum'])}`;
    case ValueErrorType.StringMinLength:
      return `must be at least ${String(s['minLength'])} character(s) long`;
    case ValueErrorType.StringMaxLength:
      return `must be at most ${String(s['maxLength'])} characters long`;
    case ValueErrorType.StringPattern:
      // The schema's own words say what the pattern means; the regular expression does not.
      return `is not a valid value: ${typeof s['description'] === 'string' ? s['description'] : `it must match ${String(s['pattern'])}`}`;
    case ValueErrorType.ArrayMaxItems:
      return `may hold at most ${String(s['maxItems'])} items`;
    default:
      return error.message.toLowerCase();
  }
}

function literalOptions(schema: TSchema): unknown[] | undefined {
  const anyOf = (schema as { anyOf?: TSchema[] }).anyOf;
  if (!anyOf || !anyOf.every((s) => 'const' in s)) return undefined;
  return anyOf.map((s) => (s as unknown as { const: unknown }).const);
}

function expectedOf(schema: TSchema): string {
  const options = literalOptions(schema);
  if (options) return `one of ${options.map((o) => JSON.stringify(o)).join(', ')}`;
  const anyOf = (schema as { anyOf?: TSchema[] }).anyOf;
  if (anyOf) return anyOf.map(expectedOf).join(' or ');
  const type = (schema as { type?: string }).type;
  switch (type) {
    case 'integer':
      return 'an integer';
    case 'object':
      return 'a mapping';
    case 'array':
      return 'a list';
    case 'null':
      return 'null';
    case undefined:
      return 'a value';
    default:
      return `a ${type}`;
  }
}

/** Whether a value is of the JSON type a schema branch takes (numbers for integer branches). */
function sameKind(branch: TSchema, value: unknown): boolean {
  const type = (branch as { type?: string }).type;
  if (type === 'integer' || type === 'number') return typeof value === 'number';
  if (type === 'string' || type === 'boolean') return typeof value === type;
  return false;
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `a ${typeof value}`;
}

function show(value: unknown): string {
  // JSON has no NaN nor Infinity (YAML's .nan, .inf): it would show them as null.
  const text = typeof value === 'number' && !Number.isFinite(value) ? String(value) : (JSON.stringify(value) ?? String(value));
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

function suggest(key: string, known: readonly string[]): string | undefined {
  if (known.length === 0) return undefined;
  const best = closest(key.toLowerCase(), [...known]);
  // Close enough to be a typo: at most a third of the longer name differs.
  return distance(key.toLowerCase(), best) <= Math.max(2, Math.floor(Math.max(key.length, best.length) / 3)) ? best : undefined;
}

/** A problem of the value at `segments` ('a.b' and what is wrong with it), at its position in the file. */
function valueProblemAt(doc: Document, lines: LineCounter, segments: readonly string[], code: 'HADES_ERR_CONFIG_TYPE' | 'HADES_ERR_CONFIG_VALUE', what: string): ConfigProblem {
  const path = segments.join('.');
  return { code, path, ...positionOf(valueNode(doc, segments), lines), message: `'${path}' ${what}` };
}

type RangedNode = { range?: [number, number, number] | null };

/** Where a node starts in the file (line and column), or nothing when it has no position. */
function positionOf(node: RangedNode | null | undefined, lines: LineCounter): { line?: number; column?: number } {
  const offset = node?.range?.[0];
  if (offset === undefined) return {};
  const pos = lines.linePos(offset);
  return { line: pos.line, column: pos.col };
}

/** Paths of the keys and string values that hold a NUL character. */
function stringsWithNul(value: unknown, path: readonly string[], out: string[][]): void {
  if (typeof value === 'string') {
    if (value.includes('\0')) out.push([...path]);
    return;
  }
  if (typeof value !== 'object' || value === null) return;
  for (const [key, item] of Object.entries(value)) {
    const at = [...path, key.replaceAll('\0', '\\0')];
    if (key.includes('\0')) out.push(at);
    else stringsWithNul(item, at, out);
  }
}

/** The keys that are not text (a list, a mapping, an alias of one), each with the path of its mapping. */
export function complexKeys(doc: Document): { readonly key: Node; readonly parent: readonly string[] }[] {
  const found: { key: Node; parent: string[] }[] = [];
  visit(doc, {
    Pair(_, pair, ancestors) {
      const key = isAlias(pair.key) ? pair.key.resolve(doc) : pair.key;
      if (key === null || key === undefined || isScalar(key)) return undefined;
      const parent: string[] = [];
      ancestors.forEach((node, i) => {
        if (isPair(node) && isScalar(node.key)) parent.push(String(node.key.value));
        else if (isSeq(node)) parent.push(String(node.items.indexOf(ancestors[i + 1])));
      });
      found.push({ key: pair.key as Node, parent });
      // What the key holds is not looked at: it is refused whole.
      return visit.SKIP;
    },
  });
  return found;
}

/** Paths of the keys named `__proto__`, at any depth. */
function protoKeys(value: unknown, path: readonly string[], out: string[][]): void {
  if (typeof value !== 'object' || value === null) return;
  for (const [key, item] of Object.entries(value)) {
    if (key === '__proto__') out.push([...path, key]);
    else protoKeys(item, [...path, key], out);
  }
}

/**
 * Where the schema wants a list and the file has a mapping (the only kind Value.Default turns into
 * a list), or wants a mapping and the file has a list (which TypeBox takes as a mapping).
 */
function wrongShapes(schema: TSchema, value: unknown, path: readonly string[], out: { segments: string[]; want: 'list' | 'mapping' }[]): void {
  if (typeof value !== 'object' || value === null) return;
  const s = schema as { type?: unknown; items?: TSchema; properties?: Record<string, TSchema>; patternProperties?: Record<string, TSchema>; additionalProperties?: unknown };
  if (s.type === 'array') {
    if (!Array.isArray(value)) out.push({ segments: [...path], want: 'list' });
    else if (s.items) value.forEach((item, i) => wrongShapes(s.items as TSchema, item, [...path, String(i)], out));
    return;
  }
  if (s.type !== 'object') return;
  if (Array.isArray(value)) {
    // The document itself: the schema says so (it has no default to put instead).
    if (path.length > 0) out.push({ segments: [...path], want: 'mapping' });
    return;
  }
  for (const [key, item] of Object.entries(value)) {
    const sub = s.properties?.[key] ?? Object.values(s.patternProperties ?? {})[0] ?? (typeof s.additionalProperties === 'object' ? (s.additionalProperties as TSchema) : undefined);
    if (sub) wrongShapes(sub, item, [...path, key], out);
  }
}

function schemaAt(schema: TSchema, segments: readonly string[]): Record<string, Record<string, TSchema>> | undefined {
  let current: TSchema | undefined = schema;
  for (const segment of segments) {
    if (!current) return undefined;
    const props: Record<string, TSchema> | undefined = (current as { properties?: Record<string, TSchema> }).properties;
    const items: TSchema | undefined = (current as { items?: TSchema }).items;
    current = props?.[segment] ?? (/^\d+$/.test(segment) ? items : undefined);
  }
  return current;
}

function valueNode(doc: Document, segments: readonly string[]): Node | null {
  if (segments.length === 0) return doc.contents;
  const node: unknown = doc.getIn(segments.map(indexOrKey), true);
  return isScalar(node) || isMap(node) || isSeq(node) ? node : valueNode(doc, segments.slice(0, -1));
}

function keyNode(doc: Document, segments: readonly string[]): Node | null {
  const parent = valueNode(doc, segments.slice(0, -1));
  const key = segments.at(-1);
  if (isMap(parent)) {
    for (const pair of parent.items) {
      if (isScalar(pair.key) && String(pair.key.value) === key) return pair.key;
    }
  }
  return parent;
}

function indexOrKey(segment: string): string | number {
  return /^\d+$/.test(segment) ? Number(segment) : segment;
}

function unescapePointer(segment: string): string {
  return segment.replace(/~1/g, '/').replace(/~0/g, '~');
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
