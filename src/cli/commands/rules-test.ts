/**
 * `hades rules test [PATH...] [--default-pack] [--json]`: loads rule files (the default pack when
 * no path is given), prints every load problem with its file:line:column and code, runs every
 * rule's samples and prints each failure, then a summary. Exit 0 when every sample passes and no
 * rule has an error, 1 otherwise, like a test runner.
 */
import { capProblems, formatProblem, loadRules, runSamples, type SamplesReport } from '../../rules/index.js';
import { readDefaultPack, readRuleFiles, type RuleFileText } from '../../runtime/rule-pack.js';
import { exitStatus, type CliContext } from '../context.js';

/** A sample failed or a rule has an error: the status of a failed test run, not of a bad command. */
export const RULES_TEST_FAILED = 1;

async function filesToTest(args: readonly string[], options: Readonly<Record<string, unknown>>): Promise<RuleFileText[]> {
  // The pack's files are named rules/<file>, as the server names them in alerts and problems.
  if (args.length === 0) return readDefaultPack();
  const pack = options['defaultPack'] === true ? await readDefaultPack() : [];
  return [...pack, ...(await readRuleFiles(args))];
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

interface Totals {
  /** Rules as written (overrides not counted, duplicates and broken ones counted), and those that did not load. */
  readonly rules: number;
  readonly notLoaded: number;
  /** Every problem, those past the cap of the list too. */
  readonly errors: number;
  readonly warnings: number;
}

function summaryLine(files: number, report: SamplesReport, totals: Totals): string {
  const skipped = report.samples - report.passed - report.failed - report.invalid;
  const untested = report.rules.filter((r) => r.status === 'untested').length;
  const parts = [
    `${plural(files, 'file')}, ${plural(totals.rules, 'rule')}${totals.notLoaded > 0 ? ` (${totals.notLoaded} not loaded)` : ''}`,
    `${plural(report.samples, 'sample')}: ${report.passed} passed, ${report.failed} failed${report.invalid > 0 ? `, ${report.invalid} invalid (not run)` : ''}${skipped > 0 ? `, ${skipped} skipped (disabled rules)` : ''}`,
    ...(untested > 0 ? [`${plural(untested, 'rule')} without samples`] : []),
    `${plural(totals.errors, 'error')}, ${plural(totals.warnings, 'warning')}`,
  ];
  return parts.join('; ');
}

export async function rulesTest(context: CliContext, args: readonly string[], options: Readonly<Record<string, unknown>>): Promise<number> {
  const files = await filesToTest(args, options);
  const { ruleSet, problems: loadProblems, counts, samples } = loadRules(files);
  const report = runSamples(ruleSet, samples);
  const order = new Map(files.map((f, i) => [f.name, i]));
  // The loader's list is capped already: its count of the others goes last, after every problem shown.
  const more = loadProblems.filter((p) => p.code === 'HADES_ERR_RULE_TOO_MANY_PROBLEMS');
  const sorted = [...loadProblems.filter((p) => p.code !== 'HADES_ERR_RULE_TOO_MANY_PROBLEMS'), ...report.problems].sort(
    (a, b) => (order.get(a.file) ?? Infinity) - (order.get(b.file) ?? Infinity) || (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0),
  );
  // Sample problems are capped too: one line per failed sample of a thousand rules is no report.
  const problems = [...capProblems(sorted), ...more];
  const sampleErrors = report.problems.filter((p) => p.severity === 'error').length;
  const totals: Totals = {
    rules: counts.rules,
    notLoaded: counts.rules - ruleSet.rules.length,
    errors: counts.errors + sampleErrors,
    warnings: counts.warnings + report.problems.length - sampleErrors,
  };
  const ok = report.ok && totals.errors === 0;
  if (options['json'] === true) {
    const rules = report.rules.map((r) => ({ ...r, results: r.results.filter((x) => x.outcome !== 'passed') }));
    const summary = { rules: totals.rules, not_loaded: totals.notLoaded, samples: report.samples, passed: report.passed, failed: report.failed, invalid: report.invalid, errors: totals.errors, warnings: totals.warnings };
    context.stdout.write(`${JSON.stringify({ ok, files: files.map((f) => f.name), summary, problems, rules })}\n`);
  } else {
    for (const p of problems) context.stdout.write(`${formatProblem(p)}\n`);
    context.stdout.write(`${summaryLine(files.length, report, totals)}\n${ok ? 'ok' : 'FAILED'}\n`);
  }
  return ok ? exitStatus.ok : RULES_TEST_FAILED;
}
