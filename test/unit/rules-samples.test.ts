import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkSamples, formatProblem, loadRules, runSamples, SAMPLE_HOST, type RuleProblem, type SamplesReport } from '../../src/rules/index.js';

/** Loads one file (it must load without errors) and runs its samples. */
function run(text: string, name = 's.yaml'): SamplesReport {
  const { ruleSet, problems, samples } = loadRules([{ name, text }]);
  assert.deepEqual(problems.filter((p) => p.severity === 'error').map(formatProblem), []);
  return runSamples(ruleSet, samples);
}

function only(report: SamplesReport, code: string): RuleProblem[] {
  return report.problems.filter((p) => p.code === code);
}

const threshold = (samples: string) => `
rules:
  - id: two_execs
    title: Two execs of curl
    severity: low
    type: threshold
    condition: event.action = exec and process.name = curl
    count: 2
    within: 60s
    by: host.name
    samples:
${samples}`;

const sequence = (samples: string) => `
rules:
  - id: write_then_run
    title: Written then run
    severity: low
    type: sequence
    within: 60s
    by: [host.name, file.path]
    steps:
      - condition: event.action = file_create
      - condition: event.action = exec
        by: [host.name, process.executable]
    samples:
${samples}`;

describe('rule samples: running', () => {
  it('passes a rule that fires on its match samples and not on its no_match samples', () => {
    const report = run(`
rules:
  - id: curl
    title: curl
    severity: low
    condition: event.action = exec and process.name = curl
    samples:
      match:
        - {event: {action: exec}, process: {name: curl}}
      no_match:
        - {event: {action: exec}, process: {name: wget}}
        - {event: {action: connect}, process: {name: curl}, destination: {port: 80}}
`);
    assert.equal(report.ok, true);
    assert.deepEqual(report.problems, []);
    assert.deepEqual([report.samples, report.passed, report.failed], [3, 3, 0]);
    assert.equal(report.rules[0]?.status, 'passed');
  });

  it('runs each scenario on fresh correlation state', () => {
    // One curl per sample: a threshold of 2 fires only if the first sample's event leaked into the second.
    const thresholdReport = run(
      threshold(`      match:
        - [{event: {action: exec}, process: {name: curl}}, {event: {action: exec}, process: {name: curl}}]
      no_match:
        - {event: {action: exec}, process: {name: curl}}
        - {event: {action: exec}, process: {name: curl}}
        - {event: {action: exec}, process: {name: curl}}
`),
    );
    assert.deepEqual(thresholdReport.problems.map(formatProblem), []);
    // The first step in one sample and the second in the next: no sequence across them.
    const sequenceReport = run(
      sequence(`      match:
        - [{event: {action: file_create}, file: {path: /tmp/x}, process: {name: curl}}, {event: {action: exec}, process: {name: x, executable: /tmp/x}}]
      no_match:
        - [{event: {action: file_create}, file: {path: /tmp/x}, process: {name: curl}}]
        - [{event: {action: exec}, process: {name: x, executable: /tmp/x}}]
`),
    );
    assert.deepEqual(sequenceReport.problems.map(formatProblem), []);
    assert.equal(sequenceReport.ok, true);
  });

  it('gives sample events a time one second apart, an id and a host when they have none', () => {
    const report = run(`
rules:
  - id: fast_pair
    title: Two curls within 1.5 s on one host
    severity: low
    type: threshold
    condition: event.action = exec and process.name = curl
    count: 2
    within: 1500ms
    by: host.name
    output: "{host.name} {correlation.count}"
    samples:
      match:
        - [{event: {action: exec}, process: {name: curl}}, {event: {action: exec}, process: {name: curl}}]
      no_match:
        - [{event: {action: exec}, process: {name: curl}}, {event: {action: exec}, process: {name: wget}}, {event: {action: exec}, process: {name: curl}}]
`);
    assert.deepEqual(report.problems.map(formatProblem), []);
    assert.equal(SAMPLE_HOST, 'sample-host');
  });

  it('reports each failing sample with the rule, the sample, its position and why', () => {
    const report = run(`
rules:
  - id: curl
    title: curl
    severity: low
    condition: event.action = exec and process.name = curl
    samples:
      match:
        - {event: {action: exec}, process: {name: curl}}
        - {event: {action: exec}, process: {name: wget}}
      no_match:
        - [{event: {action: exec}, process: {name: wget}}, {event: {action: exec}, process: {name: curl}}, {event: {action: exec}, process: {name: ls}}]
`);
    assert.equal(report.ok, false);
    assert.deepEqual([report.samples, report.passed, report.failed], [3, 1, 2]);
    const rule = report.rules[0];
    assert.equal(rule?.status, 'failed');
    assert.deepEqual(
      rule?.results.filter((r) => r.outcome === 'failed').map((r) => [r.expect, r.index, r.reason, r.firedAt]),
      [
        ['match', 1, 'expected a match, got none', []],
        ['no_match', 0, 'expected no match, got one at event 2 of 3', [2]],
      ],
    );
    assert.deepEqual(only(report, 'HADES_ERR_RULE_SAMPLE_FAILED').map(formatProblem), [
      "s.yaml:10:11: error HADES_ERR_RULE_SAMPLE_FAILED: rule 'curl', match sample 2: expected a match, got none",
      "s.yaml:12:11: error HADES_ERR_RULE_SAMPLE_FAILED: rule 'curl', no_match sample 1: expected no match, got one at event 2 of 3",
    ]);
  });

  it('tests rules that only feed correlations (alert: false) through their match counts', () => {
    const report = run(`
rules:
  - id: quiet
    title: quiet
    severity: low
    alert: false
    condition: event.action = exec and process.name = curl
    samples:
      match: [{event: {action: exec}, process: {name: curl}}]
      no_match: [{event: {action: exec}, process: {name: wget}}]
`);
    assert.equal(report.ok, true);
    assert.equal(report.passed, 2);
  });

  it('skips the samples of disabled rules and warns about rules without samples', () => {
    const report = run(`
rules:
  - id: off
    title: off
    severity: low
    enabled: false
    condition: event.action = exec and process.name = curl
    samples:
      match: [{event: {action: exec}, process: {name: wget}}]
  - id: bare
    title: bare
    severity: low
    condition: event.action = exec and process.name = curl
  - id: half
    title: half
    severity: low
    condition: event.action = exec and process.name = curl
    samples:
      match: [{event: {action: exec}, process: {name: curl}}]
`);
    assert.deepEqual(
      report.rules.map((r) => [r.rule, r.status]),
      [
        ['off', 'disabled'],
        ['bare', 'untested'],
        ['half', 'passed'],
      ],
    );
    assert.deepEqual([report.samples, report.passed, report.failed], [2, 1, 0]);
    assert.equal(report.ok, true);
    assert.deepEqual(only(report, 'HADES_ERR_RULE_SAMPLE_MISSING').map((p) => [p.rule, p.severity, p.message]), [
      ['off', 'warning', "rule 'off' has no no_match sample"],
      ['bare', 'warning', "rule 'bare' has no match and no no_match sample"],
      ['half', 'warning', "rule 'half' has no no_match sample"],
    ]);
    // At the rule's `samples:` key when it has one, else at the rule.
    assert.deepEqual(only(report, 'HADES_ERR_RULE_SAMPLE_MISSING').map((p) => [p.rule, p.line, p.column]), [
      ['off', 8, 5],
      ['bare', 10, 5],
      ['half', 18, 5],
    ]);
  });

  it('fails the run when a rule with samples did not load', () => {
    const { ruleSet, problems, samples } = loadRules([
      {
        name: 'bad.yaml',
        text: 'rules:\n  - id: broken\n    title: b\n    severity: low\n    condition: process.nme = x\n    samples:\n      match: [{event: {action: exec}, process: {name: x}}]\n',
      },
    ]);
    assert.equal(problems[0]?.code, 'HADES_ERR_RULE_UNKNOWN_FIELD');
    const report = runSamples(ruleSet, samples);
    assert.equal(report.ok, false);
    assert.deepEqual(
      report.rules.map((r) => [r.rule, r.status, r.file, r.line]),
      [['broken', 'not_loaded', 'bad.yaml', 6]],
    );
  });
});

describe('rule samples: of overrides', () => {
  const pack = {
    name: 'pack/exec.yaml',
    text: `rules:
  - id: tmp_exec
    title: Program run from /tmp
    severity: medium
    condition: event.action = exec and process.executable startswith /tmp/
    exceptions:
      - name: build_caches
        field: process.executable
        operator: glob
        values: ["/tmp/go-build*"]
    samples:
      match: [{event: {action: exec}, process: {executable: /tmp/x}}]
      no_match: [{event: {action: exec}, process: {executable: /tmp/go-build1/a}}]
`,
  };
  const site = (samples: string) => ({
    name: 'site/local.yaml',
    text: `rules:
  - override: tmp_exec
    append:
      exceptions:
        - name: build_caches
          values: ["/tmp/acme-ci-*"]
    samples:
${samples}`,
  });

  it("runs an override's samples against the rule as overridden, with the rule's own", () => {
    const { ruleSet, problems, samples } = loadRules([pack, site('      no_match: [{event: {action: exec}, process: {executable: /tmp/acme-ci-7/run}}]\n      match: [{event: {action: exec}, process: {executable: /tmp/acme-ci}}]\n')]);
    assert.deepEqual(problems.map(formatProblem), []);
    const report = runSamples(ruleSet, samples);
    assert.equal(report.ok, true, report.problems.map(formatProblem).join('\n'));
    assert.deepEqual([report.samples, report.passed, report.failed], [4, 4, 0]);
    assert.deepEqual(
      report.rules.map((r) => [r.rule, r.status, r.file, r.samples]),
      [['tmp_exec', 'passed', 'pack/exec.yaml', 4]],
    );
  });

  it("reports a failing or invalid sample of an override at the override's file and line", () => {
    const { ruleSet, samples } = loadRules([pack, site('      no_match:\n        - {event: {action: exec}, process: {executable: /tmp/acme-cd-7/run}}\n        - {event: {action: exec}, process: {exe: /tmp/x}}\n')]);
    const report = runSamples(ruleSet, samples);
    assert.equal(report.ok, false);
    assert.deepEqual(
      report.problems.map((p) => [p.code, p.file, p.line, p.column]),
      [
        ['HADES_ERR_RULE_SAMPLE_INVALID', 'site/local.yaml', 10, 45],
        ['HADES_ERR_RULE_SAMPLE_FAILED', 'site/local.yaml', 9, 11],
      ],
      report.problems.map(formatProblem).join('\n'),
    );
    assert.match(report.problems[1]!.message, /rule 'tmp_exec', no_match sample 1 of the override in site\/local\.yaml: expected no match, got one/);
  });

  it('counts the samples of an override for a rule that has none of its own', () => {
    const bare = { name: 'pack/exec.yaml', text: pack.text.replace(/ {4}samples:[^]*$/, '') };
    const { ruleSet, samples } = loadRules([bare, site('      match: [{event: {action: exec}, process: {executable: /tmp/x}}]\n')]);
    const report = runSamples(ruleSet, samples);
    assert.deepEqual(report.problems.map((p) => [p.code, p.file, p.message]), [['HADES_ERR_RULE_SAMPLE_MISSING', 'pack/exec.yaml', "rule 'tmp_exec' has no no_match sample"]]);
    assert.deepEqual([report.samples, report.passed], [1, 1]);
  });
});

describe('rule samples: checked against the event schema', () => {
  const rule = (samples: string) => `rules:\n  - id: r\n    title: T\n    severity: low\n    condition: event.action = exec and process.name = curl\n    samples:\n${samples}`;

  it('refuses unknown fields at the key, with the action they were checked against', () => {
    const report = run(rule('      match:\n        - {event: {action: exec}, process: {name: curl, nme: x}}\n      no_match:\n        - {event: {action: exec}, process: {name: ls}}\n'));
    const [p] = only(report, 'HADES_ERR_RULE_SAMPLE_INVALID');
    assert.equal(formatProblem(p!), "s.yaml:8:57: error HADES_ERR_RULE_SAMPLE_INVALID: match sample 1: 'process.nme' is not a field of exec events (docs/events.md lists them)");
    assert.equal(p?.rule, 'r');
    // The invalid sample is not run; the valid one is.
    assert.equal(report.ok, false);
    assert.deepEqual(
      report.rules[0]?.results.map((r) => r.outcome),
      ['invalid', 'passed'],
    );
    assert.equal(report.rules[0]?.status, 'invalid');
  });

  it('refuses fields of another action and values of the wrong type', () => {
    const report = run(
      rule(`      match:
        - event: {action: exec}
          process: {name: curl, user: {id: 0}}
      no_match:
        - - {event: {action: exec}, process: {name: ls}}
          - {event: {action: exec}, process: {name: ls}, file: {path: /tmp/x}}
`),
    );
    assert.deepEqual(only(report, 'HADES_ERR_RULE_SAMPLE_INVALID').map(formatProblem), [
      "s.yaml:9:44: error HADES_ERR_RULE_SAMPLE_INVALID: match sample 1: 'process.user.id': expected string, as in exec events",
      "s.yaml:12:58: error HADES_ERR_RULE_SAMPLE_INVALID: no_match sample 1, event 2: 'file' is not a field of exec events (docs/events.md lists them)",
    ]);
  });

  it('needs a known event.action in every event', () => {
    const problems = checkSamples(
      loadRules([{ name: 's.yaml', text: rule('      match:\n        - {process: {name: curl}}\n        - {event: {action: exek}, process: {name: curl}}\n') }]).samples,
    );
    assert.deepEqual(
      problems.map((p) => [p.code, p.line, p.column, p.message.split(';')[0]]),
      [
        ['HADES_ERR_RULE_SAMPLE_INVALID', 8, 11, 'match sample 1: a sample event needs event.action, one of exec, fork, exit, connect, accept, listen, dns_query, ptrace, memfd_create, module_load, privilege_change, process_rename, file_create, file_rename, file_delete, file_chmod, file_times, file_open, ssh_login, sudo, honeypot_touch, scan_match, inventory_change, package_finding, tamper, agent_drop, agent_gap, agent_health'],
        ['HADES_ERR_RULE_SAMPLE_INVALID', 9, 28, 'match sample 2: unknown event.action "exek"'],
      ],
    );
  });

  it('refuses a sample that is neither an event nor a list of events when the rule loads', () => {
    const { problems } = loadRules([{ name: 's.yaml', text: rule('      match:\n        - 42\n      nomatch: []\n') }]);
    assert.deepEqual(
      problems.map((p) => [p.code, p.line, p.column, p.message]),
      [
        ['HADES_ERR_RULE_INVALID', 8, 11, "'samples.match.0' must be an event (a mapping) or a scenario (a list of events) (got number 42)"],
        ['HADES_ERR_RULE_INVALID', 9, 7, "unknown key 'samples.nomatch'; did you mean 'no_match'?"],
      ],
    );
  });

  it('keeps samples out of the rule set: matching is the same with or without them', () => {
    const base = 'rules:\n  - id: r\n    title: T\n    severity: low\n    condition: event.action = exec and process.name = curl\n';
    const withSamples = `${base}    samples:\n      match: [{event: {action: exec}, process: {name: curl}}]\n`;
    const a = loadRules([{ name: 'a.yaml', text: base }]);
    const b = loadRules([{ name: 'b.yaml', text: withSamples }]);
    assert.equal(a.samples.length, 0);
    assert.equal(b.samples.length, 1);
    const event = { event: { action: 'exec' }, process: { name: 'curl' } };
    assert.deepEqual(
      a.ruleSet.match(event).map((m) => m.rule.id),
      b.ruleSet.match(event).map((m) => m.rule.id),
    );
    assert.deepEqual({ ...a.ruleSet.rules[0], file: '' }, { ...b.ruleSet.rules[0], file: '' });
  });
});
