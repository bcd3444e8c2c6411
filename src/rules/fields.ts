/**
 * The fields a rule may name, derived from the event schema (src/common/events/schema.ts), so a
 * field added there is usable in rules at once and a misspelt one is refused at load time. Each
 * field knows its type, whether it holds several values (an array, or a field under an array
 * of objects such as `hades.ancestors[]`), the values it may take (for enumerations such as
 * `event.action`), and the actions whose events can carry it (used to index rules by action).
 */
import type { TSchema } from '@sinclair/typebox';
import { eventActions, eventSchemas } from '../common/events/index.js';
import { suggest } from './suggest.js';

export type FieldType = 'string' | 'number' | 'boolean' | 'object' | 'any';

export interface FieldInfo {
  /** Canonical dotted path, without indices: `hades.ancestors.name`. */
  readonly path: string;
  readonly type: FieldType;
  /** The leaf itself is an array of scalars (`process.args`). */
  readonly leafArray: boolean;
  /** Dotted paths of the array-valued segments along the path (the leaf included). */
  readonly arrays: readonly string[];
  /** The values an enumeration field may take. */
  readonly values?: ReadonlySet<string>;
  /** Actions whose events may carry the field. */
  readonly actions: ReadonlySet<string>;
  /** An address field, for in_cidr. */
  readonly ip: boolean;
  /** A record (`hades.cmdb.tags`): any key under it is a field. */
  readonly map?: boolean;
}

/** One segment of a field reference: a key, with an optional array index (`args[0]`). */
export interface FieldSegment {
  readonly key: string;
  readonly index?: number;
}

/** A field named in a rule, resolved against the catalogue. */
export interface FieldRef {
  /** As written, e.g. `ancestor.name` or `process.args[1]`. */
  readonly text: string;
  readonly info: FieldInfo;
  /** The path actually read from the event (`ancestor.*` becomes `hades.ancestors.*`). */
  readonly segments: readonly FieldSegment[];
  /** True when the reference can yield several values (an array not indexed). */
  readonly multi: boolean;
  /**
   * Set for a field of one ancestor, inside `any ancestor (...)`: `segments` are read from the
   * ancestor's object (`args[1]`), `info` is the field's under `hades.ancestors` with `arrays`
   * relative to the ancestor (`args`).
   */
  readonly within?: 'ancestor';
}

/** Pseudo-fields: `ancestor.X` is `hades.ancestors[].X`, true when ANY ancestor matches. */
export const ANCESTOR_PREFIX = 'ancestor.';

interface MutableField {
  path: string;
  type: FieldType;
  leafArray: boolean;
  arrays: string[];
  values: Set<string> | undefined;
  enumOnly: boolean;
  actions: Set<string>;
  ip: boolean;
  /** A record: any sub-key is a field of type `type`. */
  map: boolean;
}

function literalValues(schema: TSchema): string[] | undefined {
  const only: unknown = schema['const'];
  if (typeof only === 'string') return [only];
  const anyOf = schema['anyOf'] as TSchema[] | undefined;
  if (anyOf && anyOf.length > 0 && anyOf.every((s) => typeof s['const'] === 'string')) return anyOf.map((s) => s['const'] as string);
  return undefined;
}

function scalarType(schema: TSchema): FieldType {
  if (literalValues(schema)) return 'string';
  const anyOf = schema['anyOf'] as TSchema[] | undefined;
  if (anyOf) {
    const types = new Set(anyOf.map(scalarType));
    return types.size === 1 ? [...types][0]! : 'any';
  }
  switch (schema['type']) {
    case 'string':
      return 'string';
    case 'integer':
    case 'number':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'object':
      return 'object';
    default:
      return 'any';
  }
}

class Catalogue {
  readonly fields = new Map<string, MutableField>();

  add(action: string, schema: TSchema, prefix: string, arrays: readonly string[]): void {
    const properties = schema['properties'] as Record<string, TSchema> | undefined;
    if (!properties) return;
    for (const [name, child] of Object.entries(properties)) {
      const path = prefix ? `${prefix}.${name}` : name;
      this.addField(action, child, path, arrays);
    }
  }

  private addField(action: string, schema: TSchema, path: string, arrays: readonly string[]): void {
    if (schema['type'] === 'array') {
      const items = schema['items'] as TSchema;
      const withThis = [...arrays, path];
      if (items['type'] === 'object' && items['properties']) {
        this.record(action, path, 'object', false, withThis, undefined, false);
        this.add(action, items, path, withThis);
      } else {
        this.record(action, path, scalarType(items), true, withThis, literalValues(items), false);
      }
      return;
    }
    if (schema['type'] === 'object' && schema['patternProperties']) {
      const valueSchema = Object.values(schema['patternProperties'] as Record<string, TSchema>)[0];
      this.record(action, path, valueSchema ? scalarType(valueSchema) : 'any', false, [...arrays], undefined, true);
      return;
    }
    if (schema['type'] === 'object') {
      this.record(action, path, 'object', false, [...arrays], undefined, false);
      this.add(action, schema, path, arrays);
      return;
    }
    this.record(action, path, scalarType(schema), false, [...arrays], literalValues(schema), false);
  }

  private record(action: string, path: string, type: FieldType, leafArray: boolean, arrays: string[], values: string[] | undefined, map: boolean): void {
    const existing = this.fields.get(path);
    if (!existing) {
      const last = path.slice(path.lastIndexOf('.') + 1);
      this.fields.set(path, {
        path,
        type,
        leafArray,
        arrays,
        values: values ? new Set(values) : undefined,
        enumOnly: values !== undefined,
        actions: new Set([action]),
        ip: type === 'string' && (last === 'ip' || last.endsWith('_ip')),
        map,
      });
      return;
    }
    existing.actions.add(action);
    if (existing.type !== type) existing.type = 'any';
    // An enumeration stays one only while every action's schema enumerates it.
    if (existing.enumOnly && values) for (const v of values) existing.values!.add(v);
    else {
      existing.enumOnly = false;
      existing.values = undefined;
    }
  }
}

function build(): Map<string, FieldInfo> {
  const catalogue = new Catalogue();
  for (const action of eventActions) catalogue.add(action, eventSchemas[action], '', []);
  const out = new Map<string, FieldInfo>();
  for (const f of catalogue.fields.values()) {
    out.set(f.path, {
      path: f.path,
      type: f.type,
      leafArray: f.leafArray,
      arrays: f.arrays,
      ...(f.values ? { values: f.values } : {}),
      actions: f.actions,
      ip: f.ip,
      ...(f.map ? { map: true } : {}),
    });
  }
  return out;
}

const catalogue = build();
const mapFields = [...catalogue.values()].filter((f) => f.map === true);

/** Every field path rules may name (without the ancestor.* aliases), for docs and suggestions. */
export function fieldPaths(): string[] {
  return [...catalogue.keys()];
}

export function fieldInfo(path: string): FieldInfo | undefined {
  const direct = catalogue.get(path);
  if (direct) return direct;
  // A key under a record (hades.cmdb.tags.owner, hades.inventory.row.port).
  for (const m of mapFields) {
    if (path.startsWith(`${m.path}.`) && path.length > m.path.length + 1) {
      // A key under a record takes any value of the record's type: no enumeration applies.
      return { path, type: m.type, leafArray: false, arrays: m.arrays, actions: m.actions, ip: false, map: true };
    }
  }
  return undefined;
}

/** Names other tools use, and what they are called here: facts, for better suggestions. */
const KNOWN_ALIASES: Readonly<Record<string, string>> = {
  'proc.name': 'process.name',
  'proc.exe': 'process.executable',
  'proc.exepath': 'process.executable',
  'proc.cmdline': 'process.command_line',
  'proc.args': 'process.args',
  'proc.pid': 'process.pid',
  'proc.pname': 'process.parent.name',
  'proc.ppid': 'process.parent.pid',
  'proc.cwd': 'process.working_directory',
  'proc.aname': 'ancestor.name',
  'evt.type': 'event.action',
  'fd.name': 'file.path',
  'fd.sip': 'destination.ip',
  'fd.sport': 'destination.port',
  'user.uid': 'process.user.id',
  image: 'process.executable',
  commandline: 'process.command_line',
  parentimage: 'process.parent.executable',
  parentcommandline: 'process.parent.command_line',
  currentdirectory: 'process.working_directory',
  targetfilename: 'file.path',
  destinationip: 'destination.ip',
  destinationport: 'destination.port',
  destinationhostname: 'dns.question.name',
  queryname: 'dns.question.name',
  user: 'process.user.name',
};

/** The fields of one ancestor, relative to its entry of `hades.ancestors[]`. */
const ANCESTOR_KEYS = ['pid', 'entity_id', 'name', 'executable', 'args', 'args_truncated', 'copy_of.path', 'copy_of.name'];

/** The field nearest to an unknown name: a known alias from another tool, else by spelling. */
export function suggestField(text: string): string | undefined {
  const plain = text.replace(/\[\d+\]/g, '');
  const alias = KNOWN_ALIASES[plain.toLowerCase()];
  if (alias) return alias;
  return suggest(plain, [...catalogue.keys(), ...ANCESTOR_KEYS.map((k) => ANCESTOR_PREFIX + k)]);
}

const SEGMENT = /^([A-Za-z_@][A-Za-z0-9_]*)(?:\[(\d{1,4})\])?$/;

/** Splits `process.args[1]` into segments; undefined when the text is not a field path. */
export function parseFieldPath(text: string): FieldSegment[] | undefined {
  const segments: FieldSegment[] = [];
  for (const part of text.split('.')) {
    const m = SEGMENT.exec(part);
    if (!m) return undefined;
    segments.push(m[2] === undefined ? { key: m[1]! } : { key: m[1]!, index: Number(m[2]) });
  }
  return segments;
}

export type ResolveResult = { ok: true; ref: FieldRef } | { ok: false; message: string; suggestion?: string };

/** Resolves a field as written in a rule against the catalogue. */
export function resolveField(text: string): ResolveResult {
  let segments = parseFieldPath(text);
  if (!segments) return { ok: false, message: `'${text}' is not a field path` };
  if (segments[0]!.key === 'ancestor' && segments.length > 1 && segments[0]!.index === undefined) {
    segments = [{ key: 'hades' }, { key: 'ancestors' }, ...segments.slice(1)];
    // A field of the entry (`ancestor.name`) or under one of its objects (`ancestor.copy_of.name`).
    if (segments.length < 3) return { ok: false, message: `unknown field '${text}'`, suggestion: suggestField(text) };
  }
  const path = segments.map((s) => s.key).join('.');
  // Keys of free-form objects (CMDB tags, inventory rows) may be anything, but not what every
  // object inherits: `tags.constructor` would be found on every event that has tags.
  const inherited = segments.find((s) => s.key in Object.prototype);
  if (inherited) return { ok: false, message: `'${text}': '${inherited.key}' is a name every object has, not a field` };
  const info = fieldInfo(path);
  if (!info) {
    const suggestion = suggestField(text);
    return { ok: false, message: `unknown field '${text}'`, ...(suggestion === undefined ? {} : { suggestion }) };
  }
  // Indices only on array segments; an array not indexed makes the reference multi-valued.
  let prefix = '';
  let multi = false;
  for (const s of segments) {
    prefix = prefix ? `${prefix}.${s.key}` : s.key;
    const isArray = info.arrays.includes(prefix);
    if (s.index !== undefined && !isArray) return { ok: false, message: `'${prefix}' is not an array: '${text}' cannot index it` };
    if (isArray && s.index === undefined) multi = true;
  }
  return { ok: true, ref: { text, info, segments, multi } };
}

/** The prefixes that mean an ancestor's field elsewhere, dropped for a suggestion inside `any ancestor (...)`. */
const ANCESTOR_SPELLINGS = [ANCESTOR_PREFIX, 'hades.ancestors.', 'process.parent.', 'process.'];

/**
 * Resolves a field of one ancestor, as written inside `any ancestor (...)`: `name`, `executable`,
 * `args`, `args[N]`, `pid`, `entity_id`, `args_truncated`, `copy_of.path`, `copy_of.name` (and
 * `copy_of`, the object). An unknown one is suggested the ancestor's field it most likely means
 * (`ancestor.name` and `process.name` are `name` there).
 */
export function resolveAncestorField(text: string): ResolveResult {
  const segments = parseFieldPath(text);
  // Only the last segment may be indexed: the entry's one array is args.
  const key = segments?.every((s, i) => s.index === undefined || i === segments.length - 1) ? segments.map((s) => s.key).join('.') : undefined;
  const info = key !== undefined && ANCESTOR_KEYS.some((k) => k === key || k.startsWith(`${key}.`)) ? catalogue.get(`hades.ancestors.${key}`) : undefined;
  if (!segments || !info) {
    const plain = text.replace(/\[\d+\]/g, '');
    const prefix = ANCESTOR_SPELLINGS.find((p) => plain.startsWith(p) && ANCESTOR_KEYS.includes(plain.slice(p.length)));
    // Measured with the prefix, as `ancestor.nmae` is: a short name allows few edits on its own.
    const suggestion = prefix !== undefined ? text.slice(prefix.length) : suggest(ANCESTOR_PREFIX + plain, ANCESTOR_FIELDS)?.slice(ANCESTOR_PREFIX.length);
    const what = segments ? `unknown field '${text}' of an ancestor` : `'${text}' is not a field path`;
    return { ok: false, message: `${what} (inside 'any ancestor (...)', fields are ${ANCESTOR_KEYS.join(', ')})`, ...(suggestion === undefined ? {} : { suggestion }) };
  }
  const arrays = info.arrays.filter((a) => a !== 'hades.ancestors').map((a) => a.slice('hades.ancestors.'.length));
  const index = segments[segments.length - 1]!.index;
  if (index !== undefined && !info.leafArray) return { ok: false, message: `'${key!}' is not an array: '${text}' cannot index it` };
  return { ok: true, ref: { text, info: { ...info, arrays }, segments, multi: info.leafArray && index === undefined, within: 'ancestor' } };
}

/** The `ancestor.*` pseudo-fields. */
export const ANCESTOR_FIELDS = ANCESTOR_KEYS.map((k) => ANCESTOR_PREFIX + k);
