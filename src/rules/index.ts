/**
 * The rule engine's public surface: load rule files into a RuleSet, match events against it.
 * Pure code (no Node APIs): the server's pipeline and the agent embed it alike.
 */
export { loadRules, parseDuration, checkTag, MAX_RULE_FILE_BYTES, PROCESS_TREE, type RuleFile, type RuleFileUnreadable, type LoadOptions, type LoadResult } from './loader.js';
export { RuleSet, LATE_EVENTS_MS, type Match, type RuleInfo, type RuleStats, type RuleType } from './ruleset.js';
export { capProblems, formatProblem, MAX_PROBLEMS, rulesError, type RuleProblem, type ProblemSeverity } from './problems.js';
export type { CorrelationHit, CorrelationStats } from './correlation.js';
export { AHEAD_MS, DEFAULT_MAX_KEYS } from './correlation.js';
export { SEVERITIES, type Severity } from './schema.js';
export { MISSING } from './template.js';
export { fieldInfo, fieldPaths, ANCESTOR_FIELDS } from './fields.js';
export { didYouMean, suggest } from './suggest.js';
export type { EventRecord } from './accessor.js';
export {
  checkSamples,
  collectSamples,
  runSamples,
  SAMPLE_BASE_TIME,
  SAMPLE_HOST,
  type RuleSampleReport,
  type RuleSampleStatus,
  type RuleSamples,
  type Sample,
  type SampleExpectation,
  type SampleOutcome,
  type SampleResult,
  type SamplesReport,
} from './samples.js';
