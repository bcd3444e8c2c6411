/**
 * Rule samples: events a rule must match and events it must not, written next to the rule
 * (`samples: { match: [...], no_match: [...] }`) and run by `hades rules test`. A sample is one
 * event, or a scenario (a list of events replayed in order) for correlation rules.
 *
 * Samples are partial events: only the fields the rule reads, plus `event.action`. They are
 * checked against the event schema (src/common/events) with every field made optional, so a
 * misspelt or invented field is an error (HADES_ERR_RULE_SAMPLE_INVALID) instead of a sample that
 * proves nothing about real events. Then each sample runs through the whole rule set, on fresh
 * correlation state, and the rule under test must fire (or not) on it.
 *
 * Pure: the loader collects the samples with their file positions, the caller reads the files.
 */
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import type { TSchema } from '@sinclair/typebox';
import { eventActions, eventSchemas, isEventAction, type EventAction } from '../common/events/index.js';
import type { EventRecord } from './accessor.js';
import type { Position, RuleProblem } from './problems.js';
import type { RuleSet } from './ruleset.js';
import type { SamplesEntry } from './schema.js';

export type SampleExpectation = 'match' | 'no_match';

/** One sample of a rule, as written. */
export interface Sample {
  readonly expect: SampleExpectation;
  /** Position in its list (`match` or `no_match`), from 0. */
  readonly index: number;
  /** True when written as a list of events (a scenario). */
  readonly scenario: boolean;
  /** The events as written (unchecked until checkSamples). */
  readonly events: readonly unknown[];
  readonly line: number;
  readonly column: number;
}

/** Where a path inside a sample event sits in its file (`key`: the key rather than the value). */
export type SampleLocator = (sample: Sample, event: number, path: readonly (string | number)[], key: boolean) => Position | undefined;

/** The samples of one rule, with what is needed to report problems at their positions. */
export interface RuleSamples {
  readonly rule: string;
  readonly file: string;
  /** Where its `samples:` key is written (else the rule). */
  readonly line: number;
  readonly column: number;
  readonly samples: readonly Sample[];
  readonly locate: SampleLocator;
}

/** Builds a rule's samples from its `samples:` entry; `at` gives file positions of YAML paths. */
export function collectSamples(
  file: string,
  rulePath: readonly (string | number)[],
  rule: string,
  entry: SamplesEntry,
  at: (path: readonly (string | number)[], key?: boolean) => Position | undefined,
): RuleSamples {
  const samples: Sample[] = [];
  const pathOf = (s: Sample) => [...rulePath, 'samples', s.expect, s.index];
  for (const expect of ['match', 'no_match'] as const) {
    (entry[expect] ?? []).forEach((value, index) => {
      const scenario = Array.isArray(value);
      const p = at([...rulePath, 'samples', expect, index]) ?? { line: 1, column: 1 };
      samples.push({ expect, index, scenario, events: scenario ? value : [value], line: p.line, column: p.column });
    });
  }
  const where = at([...rulePath, 'samples'], true) ?? at(rulePath) ?? { line: 1, column: 1 };
  return {
    rule,
    file,
    line: where.line,
    column: where.column,
    samples,
    locate: (sample, event, path, key) => at([...pathOf(sample), ...(sample.scenario ? [event] : []), ...path], key),
  };
}

// ----- checking sample events against the event schema -----

/** The schema with no required field, at any depth: samples carry only what their rule reads. */
function deepPartial(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(deepPartial);
  if (typeof schema !== 'object' || schema === null) return schema;
  const out: Record<string | symbol, unknown> = {};
  // Reflect.ownKeys: TypeBox marks its schemas with symbol keys, which must survive the copy.
  for (const key of Reflect.ownKeys(schema)) {
    if (key === 'required') continue;
    out[key] = deepPartial((schema as Record<string | symbol, unknown>)[key]);
  }
  return out;
}

let partialCheckers: Map<EventAction, TypeCheck<TSchema>> | undefined;

function partialChecker(action: EventAction): TypeCheck<TSchema> {
  partialCheckers ??= new Map();
  let checker = partialCheckers.get(action);
  if (!checker) {
    checker = TypeCompiler.Compile(deepPartial(eventSchemas[action]) as TSchema);
    partialCheckers.set(action, checker);
  }
  return checker;
}

const MAX_PROBLEMS_PER_EVENT = 10;

/** The problems of one sample event: an unknown or missing action, unknown fields, wrong types. */
function eventProblems(value: unknown): { path: (string | number)[]; key: boolean; message: string }[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return [{ path: [], key: false, message: 'a sample event is a mapping of event fields' }];
  const meta = (value as { event?: unknown }).event;
  const action = typeof meta === 'object' && meta !== null ? (meta as { action?: unknown }).action : undefined;
  if (typeof action !== 'string' || !isEventAction(action)) {
    const message =
      action === undefined
        ? `a sample event needs event.action, one of ${eventActions.join(', ')}`
        : `unknown event.action ${JSON.stringify(action)}; known: ${eventActions.join(', ')}`;
    return [{ path: action === undefined ? [] : ['event', 'action'], key: false, message }];
  }
  const checker = partialChecker(action);
  if (checker.Check(value)) return [];
  const out: { path: (string | number)[]; key: boolean; message: string }[] = [];
  const seen = new Set<string>();
  for (const error of checker.Errors(value)) {
    if (seen.has(error.path)) continue;
    seen.add(error.path);
    const path = error.path
      .split('/')
      .slice(1)
      .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
      .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
    const dotted = path.map((s) => (typeof s === 'number' ? `[${s}]` : `.${s}`)).join('').replace(/^\./, '').replace(/\.\[/g, '[');
    const unknown = error.message === 'Unexpected property';
    const message = unknown
      ? `'${dotted}' is not a field of ${action} events (docs/events.md lists them)`
      : `'${dotted}': ${error.message.charAt(0).toLowerCase()}${error.message.slice(1)}, as in ${action} events`;
    out.push({ path, key: unknown, message });
    if (out.length >= MAX_PROBLEMS_PER_EVENT) break;
  }
  return out;
}

function invalid(rs: RuleSamples, sample: Sample, event: number, p: { path: (string | number)[]; key: boolean; message: string }): RuleProblem {
  const pos = rs.locate(sample, event, p.path, p.key) ?? { line: sample.line, column: sample.column };
  const which = `${sample.expect} sample ${sample.index + 1}${sample.scenario ? `, event ${event + 1}` : ''}`;
  return { code: 'HADES_ERR_RULE_SAMPLE_INVALID', severity: 'error', file: rs.file, line: pos.line, column: pos.column, message: `${which}: ${p.message}`, rule: rs.rule };
}

function sampleProblems(rs: RuleSamples, sample: Sample): RuleProblem[] {
  return sample.events.flatMap((value, i) => eventProblems(value).map((p) => invalid(rs, sample, i, p)));
}

/** Checks every sample event against the event schema; a problem per fault, at its position. */
export function checkSamples(samples: readonly RuleSamples[]): RuleProblem[] {
  return samples.flatMap((rs) => rs.samples.flatMap((sample) => sampleProblems(rs, sample)));
}

// ----- running samples -----

/** Time of the first event of a scenario whose events give no `@timestamp`; one second apart. */
export const SAMPLE_BASE_TIME = Date.parse('2026-01-01T00:00:00.000Z');
/** `host.name` of sample events that give none: real events always have one, and rules group by it. */
export const SAMPLE_HOST = 'sample-host';

/** A sample event as the engine sees it: what real events always carry is filled in when absent. */
function complete(value: unknown, sample: Sample, rule: string, i: number): EventRecord {
  const e = structuredClone(value) as Record<string, unknown>;
  e['@timestamp'] ??= new Date(SAMPLE_BASE_TIME + i * 1000).toISOString();
  const meta = e['event'] as Record<string, unknown>;
  meta['id'] ??= `${rule}/${sample.expect}/${sample.index + 1}/${i + 1}`;
  const host = (e['host'] ??= {}) as Record<string, unknown>;
  host['name'] ??= SAMPLE_HOST;
  return e;
}

/** invalid: a sample event is not a valid partial event, so the sample was not run. */
export type SampleOutcome = 'passed' | 'failed' | 'invalid';

export interface SampleResult {
  readonly rule: string;
  readonly expect: SampleExpectation;
  readonly index: number;
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly outcome: SampleOutcome;
  /** For failures: what happened, e.g. "expected a match, got none". */
  readonly reason?: string;
  /** 1-based positions of the events of the scenario on which the rule fired. */
  readonly firedAt: readonly number[];
}

/**
 * - passed: every sample gave the expected result;
 * - failed: some sample did not;
 * - invalid: some sample event is not a valid partial event (that sample is not run);
 * - not_loaded: the rule has samples but did not load (its own problems say why);
 * - disabled: the rule is disabled (`enabled: false`): its samples are not run;
 * - untested: the rule has no samples.
 */
export type RuleSampleStatus = 'passed' | 'failed' | 'invalid' | 'not_loaded' | 'disabled' | 'untested';

export interface RuleSampleReport {
  readonly rule: string;
  readonly file: string;
  readonly line: number;
  readonly status: RuleSampleStatus;
  readonly samples: number;
  readonly passed: number;
  readonly failed: number;
  /** Samples whose event is not a valid event (not run). */
  readonly invalid: number;
  readonly results: readonly SampleResult[];
}

export interface SamplesReport {
  /** Every rule of the set and every rule that has samples, in definition order. */
  readonly rules: readonly RuleSampleReport[];
  /** Invalid sample events and failed samples (errors), rules without samples (warnings). */
  readonly problems: readonly RuleProblem[];
  readonly samples: number;
  readonly passed: number;
  readonly failed: number;
  /** Samples whose event is not a valid event: not run, neither passed nor failed. */
  readonly invalid: number;
  /** True when every sample ran and passed. */
  readonly ok: boolean;
}

/** Matches of each rule so far, by id (alert: false rules included, which `match` does not return). */
function matchCounts(ruleSet: RuleSet): Map<string, number> {
  return new Map(ruleSet.stats().map((s) => [s.id, s.matches]));
}

/** Empties every correlation group: each sample starts from the state of a fresh rule set. */
function resetState(ruleSet: RuleSet): void {
  ruleSet.expire(Number.POSITIVE_INFINITY);
}

function runSample(ruleSet: RuleSet, rs: RuleSamples, sample: Sample): SampleResult {
  resetState(ruleSet);
  const firedAt: number[] = [];
  let before = matchCounts(ruleSet).get(rs.rule) ?? 0;
  sample.events.forEach((value, i) => {
    ruleSet.match(complete(value, sample, rs.rule, i));
    const after = matchCounts(ruleSet).get(rs.rule) ?? 0;
    if (after > before) firedAt.push(i + 1);
    before = after;
  });
  resetState(ruleSet);
  const fired = firedAt.length > 0;
  const passed = sample.expect === 'match' ? fired : !fired;
  const base = { rule: rs.rule, expect: sample.expect, index: sample.index, file: rs.file, line: sample.line, column: sample.column, firedAt };
  if (passed) return { ...base, outcome: 'passed' };
  const n = sample.events.length;
  const reason =
    sample.expect === 'match'
      ? `expected a match, got none${n > 1 ? ` over its ${n} events` : ''}`
      : `expected no match, got one${n > 1 ? ` at event ${firedAt.join(', ')} of ${n}` : ''}`;
  return { ...base, outcome: 'failed', reason };
}

/**
 * Runs every sample against the rule set, each from fresh correlation state, and reports per
 * rule. The rule set's counters (`stats()`) include the sample events afterwards; give it a rule
 * set of its own (one `loadRules` result) rather than one that processes real events.
 */
export function runSamples(ruleSet: RuleSet, samples: readonly RuleSamples[]): SamplesReport {
  const problems: RuleProblem[] = [];
  // A rule's own samples, then those of the overrides that name it (each group with its file).
  const byRule = new Map<string, RuleSamples[]>();
  for (const s of samples) byRule.set(s.rule, [...(byRule.get(s.rule) ?? []), s]);
  const reports: RuleSampleReport[] = [];
  const ids = [...ruleSet.rules.map((r) => r.id), ...samples.map((s) => s.rule).filter((id) => !ruleSet.rule(id))];
  let total = 0;
  let passed = 0;
  let failed = 0;
  let invalid = 0;
  for (const id of new Set(ids)) {
    const info = ruleSet.rule(id);
    const groups = byRule.get(id) ?? [];
    const pairs = groups.flatMap((rs) => rs.samples.map((s) => [rs, s] as const));
    const own = groups.find((rs) => rs.file === info?.file) ?? groups[0];
    const file = info?.file ?? own?.file ?? '';
    const line = (own?.file === file ? own.line : undefined) ?? info?.line ?? 1;
    const column = (own?.file === file ? own.column : undefined) ?? info?.column ?? 1;
    const counts = { samples: pairs.length, passed: 0, failed: 0, invalid: 0 };
    const report = (status: RuleSampleStatus, results: readonly SampleResult[] = []) => reports.push({ rule: id, file, line, status, ...counts, results });
    if (!info) {
      // Its sample events are still checked: their faults are the rule's own, to fix in the same run.
      problems.push(...pairs.flatMap(([rs, s]) => sampleProblems(rs, s)));
      report('not_loaded');
      continue;
    }
    const missing = (['match', 'no_match'] as const).filter((k) => !pairs.some(([, s]) => s.expect === k));
    if (missing.length > 0) {
      problems.push({
        code: 'HADES_ERR_RULE_SAMPLE_MISSING',
        severity: 'warning',
        file,
        line,
        column,
        message: `rule '${id}' has no ${missing.join(' and no ')} sample`,
        rule: id,
      });
    }
    if (pairs.length === 0) {
      report('untested');
      continue;
    }
    total += pairs.length;
    const results = pairs.map(([rs, s]): SampleResult | undefined => {
      const faults = sampleProblems(rs, s);
      if (faults.length === 0) return info.enabled ? runSample(ruleSet, rs, s) : undefined;
      problems.push(...faults);
      return { rule: id, expect: s.expect, index: s.index, file: rs.file, line: s.line, column: s.column, outcome: 'invalid', reason: faults[0]!.message, firedAt: [] };
    });
    const ran = results.filter((r): r is SampleResult => r !== undefined);
    for (const r of ran) {
      if (r.outcome === 'passed') counts.passed++;
      else if (r.outcome === 'invalid') counts.invalid++;
      else {
        counts.failed++;
        problems.push({
          code: 'HADES_ERR_RULE_SAMPLE_FAILED',
          severity: 'error',
          file: r.file,
          line: r.line,
          column: r.column,
          message: `rule '${id}', ${r.expect} sample ${r.index + 1}${r.file === file ? '' : ` of the override in ${r.file}`}: ${r.reason ?? 'failed'}`,
          rule: id,
        });
      }
    }
    passed += counts.passed;
    failed += counts.failed;
    invalid += counts.invalid;
    const status: RuleSampleStatus = ran.some((r) => r.outcome === 'invalid') ? 'invalid' : counts.failed > 0 ? 'failed' : info.enabled ? 'passed' : 'disabled';
    report(status, ran);
  }
  return { rules: reports, problems, samples: total, passed, failed, invalid, ok: failed === 0 && invalid === 0 && !reports.some((r) => r.status === 'not_loaded') };
}
