/**
 * The shape of rule files, as TypeBox schemas: `rules:` (stateless rules, correlation rules and
 * overrides), `macros:` and `lists:`. Every object rejects unknown keys, so a misspelt key is
 * reported (with the closest known one) instead of silently ignored. docs/rules.md describes
 * each key.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value, ValueErrorType } from '@sinclair/typebox/value';
import { suggest } from './suggest.js';

const closed = { additionalProperties: false } as const;

export const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

const Text = (maxLength: number) => Type.String({ minLength: 1, maxLength });
const Id = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]*$', description: 'letters, digits and _ . : -, starting with a letter or digit' });
const Severity = Type.Union(SEVERITIES.map((s) => Type.Literal(s)));
const Scalar = Type.Union([Type.String({ maxLength: 4096 }), Type.Number(), Type.Boolean()], { description: 'a string, a number or true/false' });
const Values = Type.Array(Scalar, { maxItems: 10_000, description: 'a list of values' });
const Fields = Type.Union([Text(256), Type.Array(Text(256), { minItems: 1, maxItems: 8 })], { description: 'a field or a list of fields' });
const Duration = Type.Union([Type.String({ pattern: '^\\d+(ms|s|m|h|d)$' }), Type.Number({ exclusiveMinimum: 0 })], { description: 'a duration such as 500ms, 60s, 5m, 1h or 1d (or a number of seconds)' });

export const ExceptionSchema = Type.Object(
  {
    name: Type.Optional(Text(128)),
    field: Type.Optional(Text(256)),
    fields: Type.Optional(Type.Array(Text(256), { minItems: 1, maxItems: 8 })),
    operator: Type.Optional(Text(16)),
    operators: Type.Optional(Type.Array(Text(16), { minItems: 1, maxItems: 8 })),
    values: Type.Array(Type.Union([Scalar, Type.Array(Type.Union([Scalar, Values]), { maxItems: 10_000 })], { description: 'a value, or a list with one value (or list of values) per field' }), { maxItems: 100_000 }),
  },
  closed,
);
export type ExceptionEntry = Static<typeof ExceptionSchema>;

const Exceptions = Type.Array(ExceptionSchema, { maxItems: 1000 });

/** One sample event: a mapping, checked against the event schema by samples.ts, not here. */
const SampleEvent = Type.Object({}, { description: 'an event (a mapping of its fields)' });
export const MAX_SAMPLE_EVENTS = 1000;
/** A sample is one event, or a scenario: events replayed in order (correlation rules). */
const Sample = Type.Union([SampleEvent, Type.Array(SampleEvent, { minItems: 1, maxItems: MAX_SAMPLE_EVENTS })], {
  description: 'an event (a mapping) or a scenario (a list of events)',
});
export const SamplesSchema = Type.Object(
  {
    match: Type.Optional(Type.Array(Sample, { maxItems: 1000 })),
    no_match: Type.Optional(Type.Array(Sample, { maxItems: 1000 })),
  },
  closed,
);
export type SamplesEntry = Static<typeof SamplesSchema>;

const Tags = Type.Array(Text(128), { maxItems: 64 });

const DedupBy = Type.Array(Text(128), { minItems: 1, maxItems: 8 });

const common = {
  id: Id,
  title: Text(256),
  description: Type.Optional(Type.String({ maxLength: 65_536 })),
  severity: Severity,
  tags: Type.Optional(Tags),
  exceptions: Type.Optional(Exceptions),
  output: Type.Optional(Text(4096)),
  enabled: Type.Optional(Type.Boolean()),
  alert: Type.Optional(Type.Boolean()),
  /** The event fields that tell one alert of the rule from another on a host (see docs/alerts.md). */
  dedup_by: Type.Optional(DedupBy),
  /** Events the rule must match and must not match: `hades rules test` runs them. */
  samples: Type.Optional(SamplesSchema),
};

export const RuleSchema = Type.Object({ ...common, type: Type.Optional(Type.Literal('rule')), condition: Text(65_536) }, closed);
export type RuleEntry = Static<typeof RuleSchema>;

export const StepSchema = Type.Object(
  {
    name: Type.Optional(Text(128)),
    condition: Type.Optional(Text(65_536)),
    rule: Type.Optional(Id),
    by: Type.Optional(Fields),
  },
  closed,
);
export type StepEntry = Static<typeof StepSchema>;

export const SequenceSchema = Type.Object(
  {
    ...common,
    type: Type.Literal('sequence'),
    steps: Type.Array(StepSchema, { minItems: 2, maxItems: 16 }),
    ordered: Type.Optional(Type.Boolean()),
    within: Duration,
    by: Type.Optional(Fields),
  },
  closed,
);
export type SequenceEntry = Static<typeof SequenceSchema>;

export const ThresholdSchema = Type.Object(
  {
    ...common,
    type: Type.Literal('threshold'),
    condition: Type.Optional(Text(65_536)),
    rules: Type.Optional(Type.Array(Id, { minItems: 1, maxItems: 64 })),
    count: Type.Integer({ minimum: 1, maximum: 100_000 }),
    distinct: Type.Optional(Text(256)),
    within: Duration,
    by: Type.Optional(Fields),
  },
  closed,
);
export type ThresholdEntry = Static<typeof ThresholdSchema>;

export const OverrideSchema = Type.Object(
  {
    override: Id,
    /** Events the overridden rule must match and must not, as it stands after the overrides (a site's exceptions proved). */
    samples: Type.Optional(SamplesSchema),
    append: Type.Optional(
      Type.Object({ condition: Type.Optional(Text(65_536)), exceptions: Type.Optional(Exceptions), output: Type.Optional(Text(4096)), tags: Type.Optional(Tags) }, closed),
    ),
    replace: Type.Optional(
      Type.Object(
        {
          condition: Type.Optional(Text(65_536)),
          exceptions: Type.Optional(Exceptions),
          output: Type.Optional(Text(4096)),
          enabled: Type.Optional(Type.Boolean()),
          alert: Type.Optional(Type.Boolean()),
          dedup_by: Type.Optional(DedupBy),
          severity: Type.Optional(Severity),
          tags: Type.Optional(Tags),
          title: Type.Optional(Text(256)),
          description: Type.Optional(Type.String({ maxLength: 65_536 })),
          within: Type.Optional(Duration),
          count: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
        },
        closed,
      ),
    ),
  },
  closed,
);
export type OverrideEntry = Static<typeof OverrideSchema>;

/** The names of macros and lists: they are words of conditions. */
const NAME_PATTERN = '^[A-Za-z_][A-Za-z0-9_]*$';

export const FileSchema = Type.Object(
  {
    rules: Type.Optional(Type.Array(Type.Unknown(), { maxItems: 100_000 })),
    // A name that does not match the pattern is refused, not let through unchecked (its value with it).
    macros: Type.Optional(Type.Record(Type.String({ pattern: NAME_PATTERN }), Text(65_536), { additionalProperties: false })),
    lists: Type.Optional(Type.Record(Type.String({ pattern: NAME_PATTERN }), Type.Array(Scalar, { maxItems: 100_000 }), { additionalProperties: false })),
  },
  closed,
);

export interface SchemaIssue {
  /** Path from the validated value, e.g. ['steps', 0, 'condition']. */
  readonly path: readonly (string | number)[];
  /** The value at fault: `path`, or for a missing key the path it would have. */
  readonly target: readonly (string | number)[];
  /** The issue is about a key (unknown key) rather than a value. */
  readonly key: boolean;
  readonly message: string;
  readonly suggestion?: string;
}

function literals(schema: TSchema): unknown[] | undefined {
  const anyOf = schema['anyOf'] as TSchema[] | undefined;
  if (anyOf && anyOf.every((s) => 'const' in s)) return anyOf.map((s) => s['const'] as unknown);
  if ('const' in schema) return [schema['const'] as unknown];
  return undefined;
}

function schemaAt(schema: TSchema, path: readonly string[]): TSchema | undefined {
  let s: TSchema | undefined = schema;
  for (const seg of path) {
    if (!s) return undefined;
    if (s['type'] === 'array') s = s['items'] as TSchema;
    else if (s['properties']) s = (s['properties'] as Record<string, TSchema>)[seg];
    else if (s['anyOf']) s = (s['anyOf'] as TSchema[]).map((a) => schemaAt(a, [seg])).find((x) => x !== undefined);
    else return undefined;
  }
  return s;
}

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** Every problem of a value against a schema, one per path, in a person's words. */
export function checkSchema(schema: TSchema, value: unknown): SchemaIssue[] {
  const issues: SchemaIssue[] = [];
  const seen = new Set<string>();
  for (const error of Value.Errors(schema, value)) {
    if (seen.has(error.path)) continue;
    seen.add(error.path);
    const raw = error.path.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
    const path = raw.map((s) => (/^\d+$/.test(s) ? Number(s) : s));
    const dotted = raw.join('.') || 'the entry';
    switch (error.type) {
      case ValueErrorType.ObjectAdditionalProperties: {
        const key = raw[raw.length - 1] ?? '';
        const parent = schemaAt(schema, raw.slice(0, -1));
        if (parent?.['patternProperties']) {
          // A mapping of names (macros, lists): the key is a name that cannot be one.
          issues.push({ path, target: path, key: true, message: `'${dotted}' is not a valid name: a name is letters, digits and _, and does not start with a digit` });
          break;
        }
        const known = Object.keys((parent?.['properties'] as Record<string, unknown> | undefined) ?? {});
        const suggestion = suggest(key, known);
        issues.push({
          path,
          target: path,
          key: true,
          message: `unknown key '${dotted}'${suggestion ? `; did you mean '${suggestion}'?` : known.length ? `; known keys here: ${known.join(', ')}` : ''}`,
          ...(suggestion ? { suggestion } : {}),
        });
        break;
      }
      case ValueErrorType.StringMinLength:
        issues.push({ path, target: path, key: false, message: `'${dotted}' must not be empty` });
        break;
      // The library's own words ("integer to be greater or equal to 1"), said as a rule author reads them.
      case ValueErrorType.NumberMinimum:
      case ValueErrorType.IntegerMinimum:
        issues.push({ path, target: path, key: false, message: `'${dotted}' must be at least ${String(error.schema['minimum'])} (got ${describeValue(error.value)})` });
        break;
      case ValueErrorType.NumberMaximum:
      case ValueErrorType.IntegerMaximum:
        issues.push({ path, target: path, key: false, message: `'${dotted}' must be at most ${String(error.schema['maximum'])} (got ${describeValue(error.value)})` });
        break;
      case ValueErrorType.ArrayMinItems:
        issues.push({ path, target: path, key: false, message: `'${dotted}' must be a list of at least ${String(error.schema['minItems'])} items (got ${describeValue(error.value)})` });
        break;
      case ValueErrorType.ObjectRequiredProperty:
        issues.push({ path: path.slice(0, -1), target: path, key: false, message: `missing required key '${dotted}'` });
        break;
      default: {
        const options = literals(error.schema);
        const description = error.schema.description;
        const expected = options
          ? `one of ${options.map((o) => String(o)).join(', ')}`
          : description ?? error.message.replace(/^Expected /, '').toLowerCase();
        issues.push({ path, target: path, key: false, message: `'${dotted}' must be ${expected} (got ${describeValue(error.value)})` });
      }
    }
  }
  return issues;
}
