/**
 * Sigma correlation rules onto Hades correlation rules (docs/rules.md, "Mapping Sigma
 * correlations"): event_count and value_count become thresholds, temporal and
 * temporal_ordered sequences. What the engine cannot honour is refused, as the Sigma
 * specification asks of backends: upper bounds (lt, lte, eq, neq, ranges), the metric types
 * (value_sum, value_avg, value_percentile), and temporal conditions on fewer rules than named.
 */
import { isRecord, own, type SigmaDocument } from './document.js';
import type { SigmaIssue } from './detection.js';

/** What the converter knows of a rule a correlation names. */
export interface CorrelatedRule {
  readonly doc: SigmaDocument;
  readonly hadesId: string;
  /** The Hades field a Sigma field of group-by stands for in this rule's events, or why not. */
  groupField(sigmaField: string): string | SigmaIssue;
}

export interface CorrelationScope {
  /** The rule a reference (id or name) names, or why it cannot be used. */
  resolve(reference: string): CorrelatedRule | SigmaIssue;
}

export interface HadesCorrelation {
  /** The Hades rule, without id, title, description, severity, tags and output. */
  readonly rule: Record<string, unknown>;
  /** Hades ids of the rules it uses. */
  readonly references: readonly string[];
  readonly generate: boolean;
  readonly notes: readonly SigmaIssue[];
}

const TYPES = ['event_count', 'value_count', 'temporal', 'temporal_ordered'] as const;
const METRICS = ['value_sum', 'value_avg', 'value_percentile'];
const BOUNDS = ['gt', 'gte', 'lt', 'lte', 'eq', 'neq'];
const MAX_COUNT = 100_000;

function isIssue(v: unknown): v is SigmaIssue {
  return isRecord(v) && typeof v['code'] === 'string' && typeof v['message'] === 'string';
}

const invalid = (detail: string, message: string): SigmaIssue => ({ code: 'HADES_ERR_SIGMA_INVALID', detail, message });
const refused = (detail: string, message: string): SigmaIssue => ({ code: 'HADES_ERR_SIGMA_CORRELATION', detail, message });

function strings(v: unknown): string[] | undefined {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v;
  return undefined;
}

/** The `count` of a threshold from a condition of gte or gt, or why not. */
function countOf(condition: Record<string, unknown>, notes: SigmaIssue[]): number | SigmaIssue {
  const bounds = Object.keys(condition).filter((k) => k !== 'field');
  const unknown = bounds.filter((k) => !BOUNDS.includes(k));
  if (unknown.length > 0) return invalid('condition', `the correlation condition has '${unknown.join("', '")}'; it takes gt, gte, lt, lte, eq or neq`);
  const upper = bounds.filter((k) => k === 'lt' || k === 'lte' || k === 'eq' || k === 'neq');
  if (upper.length > 0) {
    return refused(
      upper[0]!,
      `the correlation condition uses '${upper.join("', '")}': an upper bound needs the count taken when a window closes, and Hades correlation rules fire when an event arrives`,
    );
  }
  if (bounds.length === 0) return invalid('condition', 'the correlation condition needs one of gt or gte');
  if (bounds.length > 1) return invalid('condition', `the correlation condition has both '${bounds.join("' and '")}'; give one of them`);
  const key = bounds[0]!;
  const n = condition[key];
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) return invalid('condition', `'${key}' takes a whole number (got ${JSON.stringify(n)})`);
  let count = key === 'gt' ? n + 1 : n;
  if (count < 1) {
    notes.push({ code: 'HADES_ERR_SIGMA_ADAPTED', detail: 'count 0', message: `'${key}: ${n}' holds with no event at all; it fires on the first event` });
    count = 1;
  }
  if (count > MAX_COUNT) return refused('count', `a count of ${count} is over the ${MAX_COUNT} a threshold may count`);
  return count;
}

function sameFields(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export function convertCorrelation(doc: SigmaDocument, scope: CorrelationScope): HadesCorrelation | SigmaIssue[] {
  const c = doc.data['correlation'];
  if (!isRecord(c)) return [invalid('correlation', "'correlation' must be a mapping with type, rules, group-by, timespan and condition")];
  const type = c['type'];
  if (typeof type === 'string' && METRICS.includes(type)) {
    return [refused(type, `the correlation type '${type}' aggregates a numeric field; Hades thresholds count events or distinct values`)];
  }
  if (typeof type !== 'string' || !(TYPES as readonly string[]).includes(type)) return [invalid('type', `the correlation type ${JSON.stringify(type)} is not one of ${[...TYPES, ...METRICS].join(', ')}`)];
  const issues: SigmaIssue[] = [];
  const notes: SigmaIssue[] = [];
  const refs = strings(c['rules']);
  if (!refs || refs.length === 0) return [invalid('rules', "'correlation.rules' must name one or more rules (ids or names)")];
  const rules: CorrelatedRule[] = [];
  for (const ref of refs) {
    const r = scope.resolve(ref);
    if (isIssue(r)) issues.push(r);
    else rules.push(r);
  }
  const timespan = c['timespan'];
  const span = typeof timespan === 'string' ? /^(\d+)([smhd])$/.exec(timespan) : null;
  if (timespan === undefined) issues.push(invalid('timespan', `'correlation.timespan' is missing: a correlation needs its window, a number and a unit s, m, h or d, such as 90m`));
  else if (!span || Number(span[1]) === 0) issues.push(invalid('timespan', `'correlation.timespan' must be a number and a unit s, m, h or d, such as 90m (got ${JSON.stringify(timespan)})`));
  const groupBy = c['group-by'] === undefined ? [] : strings(c['group-by']);
  if (!groupBy) issues.push(invalid('group-by', "'correlation.group-by' must be a field or a list of fields"));
  const aliases = c['aliases'] === undefined ? {} : c['aliases'];
  if (!isRecord(aliases) || !Object.values(aliases).every(isRecord)) issues.push(invalid('aliases', "'correlation.aliases' maps each alias to a mapping of rule names to fields"));
  const generate = c['generate'] ?? doc.data['generate'] ?? false;
  if (typeof generate !== 'boolean') issues.push(invalid('generate', "'generate' is true or false"));
  if (issues.length > 0) return issues;

  // The Hades fields of group-by, per rule named (aliases give per-rule fields).
  const fieldsOf = (rule: CorrelatedRule, ref: string): string[] | SigmaIssue => {
    const out: string[] = [];
    for (const g of groupBy!) {
      const alias = own(aliases as Record<string, Record<string, unknown>>, g);
      let sigmaField = g;
      if (alias) {
        const f = own(alias, ref) ?? (rule.doc.name ? own(alias, rule.doc.name) : undefined) ?? (rule.doc.id ? own(alias, rule.doc.id) : undefined);
        if (typeof f !== 'string') return invalid('aliases', `the alias '${g}' gives no field for the rule '${ref}'`);
        sigmaField = f;
      }
      const target = rule.groupField(sigmaField);
      if (typeof target !== 'string') return target;
      out.push(target);
    }
    return out;
  };
  const perRule: string[][] = [];
  for (let i = 0; i < rules.length; i++) {
    const f = fieldsOf(rules[i]!, refs[i]!);
    if (isIssue(f)) issues.push(f);
    else perRule.push(f);
  }
  if (issues.length > 0) return issues;
  const by = perRule[0]!;
  const byValue = by.length === 0 ? {} : { by: by.length === 1 ? by[0]! : by };
  const within = timespan as string;
  const references = rules.map((r) => r.hadesId);

  if (type === 'event_count' || type === 'value_count') {
    if (!perRule.every((f) => sameFields(f, by))) {
      return [refused('group-by', `group-by stands for different fields in the rules counted (${perRule.map((f) => f.join(', ')).join(' / ')}); a Hades threshold groups all its events by the same fields`)];
    }
    const condition = c['condition'];
    if (!isRecord(condition)) return [invalid('condition', `an ${type} correlation needs a condition such as {gte: 10}`)];
    const count = countOf(condition, notes);
    if (isIssue(count)) return [count];
    const rule: Record<string, unknown> = { type: 'threshold', rules: [...new Set(references)], count, within, ...byValue };
    if (type === 'value_count') {
      const field = condition['field'];
      if (Array.isArray(field)) return [refused('field', 'a value_count over several fields counts distinct combinations; a Hades threshold counts the distinct values of one field')];
      if (typeof field !== 'string') return [invalid('condition', "a value_count condition names the counted 'field'")];
      const distinct = rules.map((r) => r.groupField(field));
      const bad = distinct.find(isIssue);
      if (bad) return [bad];
      if (new Set(distinct).size !== 1) return [refused('field', `'${field}' stands for different fields in the rules counted (${[...new Set(distinct as string[])].join(', ')})`)];
      rule['distinct'] = distinct[0];
    } else if (condition['field'] !== undefined) {
      notes.push({ code: 'HADES_ERR_SIGMA_ADAPTED', detail: 'field', message: "an event_count condition counts events: its 'field' is ignored" });
    }
    return { rule, references, generate: generate as boolean, notes };
  }

  // temporal, temporal_ordered: a sequence with one step per rule.
  if (rules.length < 2) return [refused('one rule', `a ${type} correlation over one rule is an event_count of 1; Hades sequences have 2 to 16 steps`)];
  if (rules.length > 16) return [refused('steps', `a ${type} correlation over ${rules.length} rules is over the 16 steps of a Hades sequence`)];
  const condition = c['condition'];
  if (condition !== undefined) {
    // Every rule: gte N, or gt N-1 (the same count said another way).
    const keys = isRecord(condition) ? Object.keys(condition) : [];
    const gte = isRecord(condition) ? condition['gte'] : undefined;
    const gt = isRecord(condition) ? condition['gt'] : undefined;
    const every = keys.length === 1 && (gte === rules.length || gt === rules.length - 1);
    if (!every) {
      return [refused('temporal condition', `the condition ${JSON.stringify(condition)} asks for some of the ${rules.length} rules; Hades sequences need every step`)];
    }
  }
  const steps = rules.map((r, i) => {
    const step: Record<string, unknown> = { name: refs[i]!.slice(0, 128), rule: r.hadesId };
    const own = perRule[i]!;
    if (!sameFields(own, by)) step['by'] = own.length === 1 ? own[0]! : own;
    return step;
  });
  const rule: Record<string, unknown> = { type: 'sequence', ordered: type === 'temporal_ordered', within, ...byValue, steps };
  return { rule, references, generate: generate as boolean, notes };
}
