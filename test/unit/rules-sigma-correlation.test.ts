import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkEvent, type EventAction } from '../../src/common/events/index.js';
import { timedEvent } from '../helpers/rule-events.js';
import { formatProblem, loadRules, type Match, type RuleSet } from '../../src/rules/index.js';
import { convertSigma, type SigmaConversion, type SigmaReportEntry } from '../../src/rules/sigma/index.js';

function ev(action: EventAction, seconds: number, set: Record<string, unknown> = {}): Record<string, unknown> {
  const e = timedEvent(action, seconds, set);
  assert.ok(checkEvent(e).ok);
  return e;
}

const exec = (seconds: number, executable: string, user = 'www-data', host = 'web-01') =>
  ev('exec', seconds, { 'process.executable': executable, 'process.name': executable.split('/').pop(), 'process.command_line': executable, 'process.args': [executable], 'process.user': { id: '33', name: user }, 'host.name': host });

/** A process_creation rule on an executable's name, with a name for correlations. */
const base = (name: string, image: string, n: number, extra = '') => `title: Runs ${image}
id: 00000000-0000-4000-8000-${String(n).padStart(12, '0')}
name: ${name}
logsource:
    product: linux
    category: process_creation
detection:
    selection:
        Image|endswith: '/${image}'
    condition: selection
level: low
${extra}`;

const correlation = (body: string, id = 'c0000000-0000-4000-8000-000000000001') => `title: The correlation
id: ${id}
correlation:
${body.replace(/^/gm, '    ')}
level: high
`;

const RULES = [base('recon_whoami', 'whoami', 1), base('download_curl', 'curl', 2), base('recon_id', 'id', 3)].join('---\n');

interface Loaded extends SigmaConversion {
  readonly ruleSet: RuleSet;
  entry(id: string): SigmaReportEntry;
}

function convert(...texts: string[]): Loaded {
  const result = convertSigma(texts.map((text, i) => ({ path: `c${i}.yml`, text })));
  const { ruleSet, problems } = loadRules(result.files);
  assert.deepEqual(problems.filter((p) => p.severity === 'error').map(formatProblem), []);
  return { ...result, ruleSet, entry: (id) => result.report.find((e) => e.id === id)! };
}

const CORR = 'c0000000-0000-4000-8000-000000000001';

/** Ids of the rules that matched each event, in order. */
function feed(set: RuleSet, events: Record<string, unknown>[]): string[][] {
  return events.map((e) => set.match(e).map((m: Match) => m.rule.id));
}

function refused(body: string, extra = ''): SigmaReportEntry {
  const c = convert(RULES + extra, correlation(body));
  const e = c.entry(CORR);
  assert.equal(e.status, 'unsupported');
  return e;
}

describe('sigma correlations: thresholds', () => {
  it('event_count with gte is a threshold per group; the rules it counts stay silent', () => {
    const c = convert(RULES, correlation('type: event_count\nrules:\n    - recon_whoami\ngroup-by:\n    - User\ntimespan: 1m\ncondition:\n    gte: 3'));
    assert.equal(c.entry(CORR).status, 'loaded');
    const info = c.ruleSet.rules.find((r) => r.id === CORR)!;
    assert.equal(info.type, 'threshold');
    assert.equal(info.severity, 'high');
    const hits = feed(c.ruleSet, [exec(0, '/usr/bin/whoami'), exec(10, '/usr/bin/whoami', 'root'), exec(20, '/usr/bin/whoami'), exec(30, '/usr/bin/whoami')]);
    assert.deepEqual(hits, [[], [], [], [CORR]], 'the third whoami of www-data within a minute; root counts apart');
    assert.equal(c.ruleSet.rules.find((r) => r.id === '00000000-0000-4000-8000-000000000001')!.alert, false);
  });

  it('gt N counts N+1; generate keeps the counted rules alerting; the window slides', () => {
    const c = convert(RULES, correlation('type: event_count\nrules: recon_whoami\ngroup-by: User\ntimespan: 1m\ncondition:\n    gt: 1').replace('level: high', 'generate: true\nlevel: high'));
    const whoami = '00000000-0000-4000-8000-000000000001';
    const hits = feed(c.ruleSet, [exec(0, '/usr/bin/whoami'), exec(61, '/usr/bin/whoami'), exec(70, '/usr/bin/whoami')]);
    assert.deepEqual(hits, [[whoami], [whoami], [whoami, CORR]]);
  });

  it('value_count counts distinct values of a field', () => {
    const conn = `title: Outbound
id: 00000000-0000-4000-8000-000000000010
name: outbound
logsource:
    product: linux
    category: network_connection
detection:
    selection:
        Initiated: 'true'
    condition: selection
`;
    const c = convert(conn, correlation('type: value_count\nrules: outbound\ngroup-by: DestinationIp\ntimespan: 10s\ncondition:\n    field: DestinationPort\n    gte: 3'));
    const connect = (s: number, port: number) => ev('connect', s, { 'destination.ip': '203.0.113.7', 'destination.port': port });
    assert.deepEqual(feed(c.ruleSet, [connect(0, 22), connect(1, 22), connect(2, 80), connect(3, 443)]), [[], [], [], [CORR]]);
  });
});

describe('sigma correlations: sequences', () => {
  it('temporal: every rule within the timespan, in any order, per group', () => {
    const c = convert(RULES, correlation('type: temporal\nrules:\n    - recon_whoami\n    - download_curl\ngroup-by:\n    - ComputerName\ntimespan: 5m'));
    assert.equal(c.ruleSet.rules.find((r) => r.id === CORR)!.type, 'sequence');
    assert.deepEqual(feed(c.ruleSet, [exec(0, '/usr/bin/curl'), exec(5, '/usr/bin/whoami', 'x', 'db-01'), exec(10, '/usr/bin/whoami')]), [[], [], [CORR]]);
  });

  it('temporal: a condition of gt N-1 asks for every rule too', () => {
    const c = convert(RULES, correlation('type: temporal\nrules:\n    - recon_whoami\n    - download_curl\ngroup-by: ComputerName\ntimespan: 5m\ncondition:\n    gt: 1'));
    assert.deepEqual(feed(c.ruleSet, [exec(0, '/usr/bin/curl'), exec(10, '/usr/bin/whoami')]), [[], [CORR]]);
    const both = refused('type: event_count\nrules: recon_whoami\ngroup-by: User\ntimespan: 1m\ncondition:\n    gte: 2\n    gt: 5');
    assert.deepEqual(both.reasons.map((r) => [r.code, r.message]), [['HADES_ERR_SIGMA_INVALID', "the correlation condition has both 'gte' and 'gt'; give one of them"]]);
  });

  it('temporal_ordered: only in the order given', () => {
    const c = convert(RULES, correlation('type: temporal_ordered\nrules:\n    - recon_whoami\n    - download_curl\ngroup-by: ComputerName\ntimespan: 5m'));
    assert.deepEqual(feed(c.ruleSet, [exec(0, '/usr/bin/curl'), exec(10, '/usr/bin/whoami')]), [[], []]);
    assert.deepEqual(feed(c.ruleSet, [exec(20, '/usr/bin/curl')]), [[CORR]]);
    assert.deepEqual(feed(c.ruleSet, [exec(400, '/usr/bin/whoami'), exec(800, '/usr/bin/curl')]), [[], []], 'outside the timespan');
  });

  it('aliases give each rule its own fields (the client of an accept, then a connect back to it)', () => {
    const net = (name: string, n: number, initiated: string) => `title: ${name}
id: 00000000-0000-4000-8000-00000000002${n}
name: ${name}
logsource:
    product: linux
    category: network_connection
detection:
    selection:
        Initiated: '${initiated}'
    condition: selection
`;
    const rules = [net('inbound', 1, 'false'), net('outbound', 2, 'true')].join('---\n');
    const c = convert(rules, correlation('type: temporal_ordered\nrules:\n    - inbound\n    - outbound\ngroup-by:\n    - peer\ntimespan: 1m\naliases:\n    peer:\n        inbound: SourceIp\n        outbound: DestinationIp'));
    assert.equal(c.entry(CORR).status, 'loaded');
    const accept = ev('accept', 0, { 'source.ip': '198.51.100.9' });
    assert.deepEqual(feed(c.ruleSet, [accept, ev('connect', 5, { 'destination.ip': '203.0.113.7' })]), [[], []]);
    assert.deepEqual(feed(c.ruleSet, [ev('connect', 6, { 'destination.ip': '198.51.100.9' })]), [[CORR]]);
  });

  it('a correlation may use another, from another file, by name', () => {
    const inner = correlation('type: event_count\nrules: recon_whoami\ngroup-by: ComputerName\ntimespan: 1m\ncondition:\n    gte: 2', 'c0000000-0000-4000-8000-000000000002').replace('id: c0000000', 'name: many_whoami\nid: c0000000');
    const outer = correlation('type: temporal_ordered\nrules:\n    - many_whoami\n    - download_curl\ngroup-by: ComputerName\ntimespan: 5m');
    const c = convert(outer, RULES, inner);
    assert.equal(c.entry(CORR).status, 'loaded');
    const hits = feed(c.ruleSet, [exec(0, '/usr/bin/whoami'), exec(1, '/usr/bin/whoami'), exec(2, '/usr/bin/curl')]);
    assert.deepEqual(hits, [[], [], [CORR]], 'the inner threshold is silent: it feeds the outer sequence');
  });
});

describe('sigma correlations: what Hades refuses, and why', () => {
  const count = (condition: string) => `type: event_count\nrules: recon_whoami\ngroup-by: User\ntimespan: 1m\ncondition:\n${condition.replace(/^/gm, '    ')}`;

  it('upper bounds: lt, lte, eq, neq, and ranges with them', () => {
    const cases: [string, string][] = [
      ['lt: 5', 'lt'],
      ['lte: 5', 'lte'],
      ['eq: 5', 'eq'],
      ['neq: 5', 'neq'],
      ['gt: 10\nlte: 20', 'lte'],
    ];
    for (const [condition, detail] of cases) {
      const e = refused(count(condition));
      assert.deepEqual(e.reasons.map((r) => [r.code, r.detail]), [['HADES_ERR_SIGMA_CORRELATION', detail]], condition);
      assert.match(e.reasons[0]!.message, /upper bound/);
    }
  });

  it('the metric types value_sum, value_avg, value_percentile', () => {
    for (const type of ['value_sum', 'value_avg', 'value_percentile']) {
      const e = refused(`type: ${type}\nrules: recon_whoami\ngroup-by: User\ntimespan: 1h\ncondition:\n    field: ProcessId\n    gt: 100`);
      assert.deepEqual(e.reasons.map((r) => [r.code, r.detail]), [['HADES_ERR_SIGMA_CORRELATION', type]]);
    }
  });

  it('temporal over one rule, or on fewer rules than it names', () => {
    assert.deepEqual(refused('type: temporal\nrules: recon_whoami\ngroup-by: User\ntimespan: 1m').reasons[0]!.code, 'HADES_ERR_SIGMA_CORRELATION');
    const some = refused('type: temporal\nrules:\n    - recon_whoami\n    - recon_id\n    - download_curl\ngroup-by: User\ntimespan: 1m\ncondition:\n    gte: 2');
    assert.deepEqual(some.reasons.map((r) => [r.code, r.detail]), [['HADES_ERR_SIGMA_CORRELATION', 'temporal condition']]);
  });

  it('unknown and unsupported rules, with the rule\'s own reason', () => {
    assert.deepEqual(refused(count('gte: 2').replace('recon_whoami', 'no_such_rule')).reasons.map((r) => [r.code, r.detail]), [['HADES_ERR_SIGMA_REFERENCE', 'unknown rule']]);
    const auditd = `---\ntitle: Auditd\nname: auditd_rule\nlogsource:\n    product: linux\n    service: auditd\ndetection:\n    selection:\n        type: SYSCALL\n    condition: selection\n`;
    const e = refused(count('gte: 2').replace('recon_whoami', 'auditd_rule'), auditd);
    assert.equal(e.reasons[0]!.code, 'HADES_ERR_SIGMA_REFERENCE');
    assert.match(e.reasons[0]!.message, /HADES_ERR_SIGMA_LOGSOURCE/);
  });

  it('a rule the compiler drops takes its correlation with it', () => {
    const broken = `---\ntitle: Broken\nname: broken\nid: 00000000-0000-4000-8000-000000000099\nlogsource:\n    product: linux\n    category: process_creation\ndetection:\n    selection:\n        CommandLine|re: 'a(?!b)'\n    condition: selection\n`;
    const e = refused(count('gte: 2').replace('recon_whoami', 'broken'), broken);
    assert.deepEqual(e.reasons.map((r) => r.code), ['HADES_ERR_SIGMA_REFERENCE']);
    assert.match(e.reasons[0]!.message, /HADES_ERR_RULE_REGEX_TOO_EXPENSIVE/);
  });

  it('group-by fields without an equivalent, or standing for different fields in the rules counted', () => {
    assert.deepEqual(refused(count('gte: 2').replace('group-by: User', 'group-by: TargetUserName')).reasons.map((r) => [r.code, r.detail]), [['HADES_ERR_SIGMA_FIELD', 'TargetUserName']]);
    const differing = refused('type: event_count\nrules:\n    - recon_whoami\n    - recon_id\ngroup-by: who\naliases:\n    who:\n        recon_whoami: User\n        recon_id: ParentImage\ntimespan: 1m\ncondition:\n    gte: 2');
    assert.deepEqual(differing.reasons.map((r) => [r.code, r.detail]), [['HADES_ERR_SIGMA_CORRELATION', 'group-by']]);
  });

  it("a correlation's status counts as a rule's: unsupported is refused, deprecated loads disabled", () => {
    const unsupported = convert(RULES, correlation(count('gte: 2')).replace('level: high', 'status: unsupported\nlevel: high'));
    assert.deepEqual(unsupported.entry(CORR).reasons.map((r) => r.code), ['HADES_ERR_SIGMA_STATUS']);
    assert.equal(unsupported.ruleSet.rules.find((r) => r.id === CORR), undefined);
    assert.equal(unsupported.ruleSet.rules.find((r) => r.id === '00000000-0000-4000-8000-000000000001'), undefined, 'the rule only it uses (generate: false) goes with it');
    const deprecated = convert(RULES, correlation(count('gte: 2')).replace('level: high', 'status: deprecated\nlevel: high'));
    assert.equal(deprecated.entry(CORR).status, 'loaded');
    assert.equal(deprecated.ruleSet.rules.find((r) => r.id === CORR)!.enabled, false);
    assert.ok(deprecated.entry(CORR).notes.some((n) => n.detail === 'deprecated'));
    const hits = feed(deprecated.ruleSet, [exec(0, '/usr/bin/whoami'), exec(1, '/usr/bin/whoami')]);
    assert.deepEqual(hits, [[], []], 'a disabled correlation does not alert');
  });

  it('a rule only unsupported correlations use goes with them, unless one of them says generate: true', () => {
    // An upper bound Hades refuses: the correlation is unsupported.
    const c = convert(RULES, correlation(count('lt: 5')));
    assert.equal(c.entry(CORR).status, 'unsupported');
    const whoami = c.entry('00000000-0000-4000-8000-000000000001');
    assert.equal(whoami.status, 'unsupported');
    assert.deepEqual(whoami.reasons.map((r) => [r.code, r.detail]), [['HADES_ERR_SIGMA_REFERENCE', 'unsupported correlation']]);
    assert.match(whoami.reasons[0]!.message, /only the correlation 'The correlation' uses this rule \(generate: false\)/);
    // Before, it was loaded alerting: an alert for every whoami, which its author did not want.
    assert.deepEqual(feed(c.ruleSet, [exec(0, '/usr/bin/whoami'), exec(1, '/usr/bin/id')]), [[], ['00000000-0000-4000-8000-000000000003']]);
    const asked = convert(RULES, correlation(`${count('lt: 5')}\ngenerate: true`));
    assert.equal(asked.entry(CORR).status, 'unsupported');
    assert.deepEqual(feed(asked.ruleSet, [exec(0, '/usr/bin/whoami')]), [['00000000-0000-4000-8000-000000000001']], 'generate: true: it alerts on its own');
  });

  it('malformed correlations: type, timespan, condition', () => {
    assert.equal(refused('type: sometimes\nrules: recon_whoami\ntimespan: 1m').reasons[0]!.code, 'HADES_ERR_SIGMA_INVALID');
    assert.equal(refused('type: event_count\nrules: recon_whoami\ntimespan: 1 hour\ncondition:\n    gte: 2').reasons[0]!.detail, 'timespan');
    // A correlation without a window says so, rather than showing 'got undefined'.
    const missing = refused('type: event_count\nrules: recon_whoami\ncondition:\n    gte: 2').reasons.find((r) => r.detail === 'timespan');
    assert.match(missing?.message ?? '', /^'correlation.timespan' is missing: a correlation needs its window/);
    assert.equal(refused('type: event_count\nrules: recon_whoami\ntimespan: 1m').reasons[0]!.detail, 'condition');
    assert.equal(refused('type: event_count\nrules: []\ntimespan: 1m').reasons[0]!.detail, 'rules');
  });

  it('the example of the specification: Windows rules, so unsupported, each with its reason', () => {
    const spec = `title: Correlation - Multiple Failed Logins Followed by Successful Login
id: b180ead8-d58f-40b2-ae54-c8940995b9b6
correlation:
    type: temporal_ordered
    rules:
        - multiple_failed_login
        - successful_login
    group-by:
        - User
    timespan: 10m
level: high
---
title: Multiple failed logons
id: a8418a5a-5fc4-46b5-b23b-6c73beb19d41
name: multiple_failed_login
correlation:
    type: event_count
    rules:
        - failed_login
    group-by:
        - User
    timespan: 10m
    condition:
        gte: 10
---
title: Single failed login
id: 53ba33fd-3a50-4468-a5ef-c583635cfa92
name: failed_login
logsource:
    product: windows
    service: security
detection:
    selection:
        EventID:
            - 529
            - 4625
    condition: selection
---
title: Successful login
id: 4d0a2c83-c62c-4ed4-b475-c7e23a9269b8
name: successful_login
logsource:
    product: windows
    service: security
detection:
    selection:
        EventID:
            - 528
            - 4624
    condition: selection
`;
    const c = convert(spec);
    assert.deepEqual(
      c.report.map((e) => [e.document, e.kind, e.status, e.reasons[0]?.code]),
      [
        [1, 'correlation', 'unsupported', 'HADES_ERR_SIGMA_REFERENCE'],
        [2, 'correlation', 'unsupported', 'HADES_ERR_SIGMA_REFERENCE'],
        [3, 'rule', 'unsupported', 'HADES_ERR_SIGMA_LOGSOURCE'],
        [4, 'rule', 'unsupported', 'HADES_ERR_SIGMA_LOGSOURCE'],
      ],
    );
    assert.deepEqual(c.files, []);
  });
});
