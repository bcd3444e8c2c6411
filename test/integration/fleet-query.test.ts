/**
 * Fleet queries end to end through real components (root): a server, two agents running as
 * `hades agent` processes enrolled to it with their inventory collectors on, and the commands a
 * person types: `hades fleet query "SQL" --json --config server.yaml` (rows per host; each host's
 * coded error for bad SQL, exit status 2 when every host refuses it; a stopped agent reported
 * expired after the timeout while the other's rows or errors come through, exit status 3) and an
 * `inventory` task through POST /api/v1/tasks. The hosts' answers come a page at a time: the CLI
 * walks the pages, and the API's cursor and limit are checked.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadIdentity } from '../../src/agent/transport/enroll.js';
import { type AnyEvent } from '../helpers/agent.js';
import { projectRoot } from '../helpers/generated-docs.js';
import { cleanupTempDirs, tempDir, TestServer, waitUntil } from '../helpers/server.js';

const root = process.getuid?.() === 0;

interface Command {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/** The `hades` command, run as a person would (asynchronously: the server runs in this process). */
function hades(...args: string[]): Promise<Command> {
  const started = Date.now();
  const child = spawn(process.execPath, [`${projectRoot}bin/hades.js`, ...args], { cwd: projectRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve) => child.on('close', (status) => resolve({ status, stdout, stderr, ms: Date.now() - started })));
}

const lines = (text: string): AnyEvent[] => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as AnyEvent);

class AgentProcess {
  readonly child: ChildProcess;
  stderr = '';
  readonly exited: Promise<number | null>;

  constructor(
    readonly dataDir: string,
    readonly configFile: string,
  ) {
    this.child = spawn(process.execPath, [`${projectRoot}bin/hades.js`, 'agent', '--config', configFile], { cwd: projectRoot, stdio: ['ignore', 'ignore', 'pipe'] });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((resolve) => this.child.on('close', (code) => resolve(code)));
  }

  get agentId(): string | undefined {
    return loadIdentity(this.dataDir)?.agentId;
  }

  /** `hades agent status --json`, or undefined while the agent does not answer. */
  async status(): Promise<AnyEvent | undefined> {
    const result = await hades('agent', 'status', '--config', this.configFile, '--json');
    return result.status === 0 ? (JSON.parse(result.stdout) as AnyEvent) : undefined;
  }

  async stop(): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    return this.exited;
  }
}

describe('fleet queries through a server and real agents (root)', { skip: root ? false : 'needs root' }, () => {
  let server: TestServer;
  let serverYaml: string;
  const agents: AgentProcess[] = [];

  before(async () => {
    server = await TestServer.start();
    const dir = tempDir('hades-fleet-query-');
    // What `hades fleet query` reads: the API address, and the data folder with the CA and admin token.
    serverYaml = path.join(dir, 'server.yaml');
    writeFileSync(serverYaml, `data_dir: ${JSON.stringify(server.dataDir)}\nlisten: { api: "${server.addresses.api.replace('https://', '')}" }\n`);
    // The agents open their stream to the server at start; the heartbeat (an agent_health event
    // every 2 s) is the only thing these agents send.
    for (const name of ['a', 'b']) {
      const token = await server.enrollmentToken('10m');
      const dataDir = path.join(dir, `agent-${name}`);
      const configFile = path.join(dir, `agent-${name}.yaml`);
      const text = (driver: boolean) => `
agent: { data_dir: ${dataDir}, heartbeat_s: 2, drain_s: 2 }
limits: { cgroup: { enabled: false } }
plugins:
  driver: ${driver}
  inventory: { enabled: true, queries: [], package_findings_interval_s: 0 }
outputs:
  file: { enabled: false }
  server: { enabled: true, api: "${server.addresses.api}", token: ${token.token}, ca_sha256: ${token.ca_sha256} }
spool: { fsync: never }
metrics: { listen: "127.0.0.1:0" }
`;
      writeFileSync(configFile, text(false));
      // The same agent with the kernel driver: its events open the stream to the server at once.
      writeFileSync(configFile.replace(/\.yaml$/, '-driver.yaml'), text(true));
      agents.push(new AgentProcess(dataDir, configFile));
    }
    for (const agent of agents) {
      try {
        const id = await waitUntil('the agent enrolled', () => agent.agentId, 30_000, 200);
        await waitUntil(`agent ${id} online`, async () => ((await server.ok('GET', `/api/v1/agents/${id}`)) as AnyEvent)['online'] === true, 30_000, 200);
        await waitUntil(`agent ${id}'s collector running`, async () => (await agent.status())?.['plugins']?.find((p: AnyEvent) => p['name'] === 'inventory')?.state === 'running', 30_000, 250);
      } catch (error) {
        assert.fail(`${String(error)}\nagent log:\n${agent.stderr.slice(-4000)}\nserver log:\n${server.log.text.slice(-4000)}`);
      }
    }
  });

  after(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await server?.stop();
    cleanupTempDirs();
  });

  const ids = () => [...new Set(agents.map((a) => a.agentId!))].sort();

  it('shows in the fleet when each agent\'s certificate expires and how its renewals went, from its heartbeats', { timeout: 30_000 }, async () => {
    for (const id of ids()) {
      const agent = await waitUntil<AnyEvent>(`a heartbeat of ${id} with its certificate`, async () => {
        const a = (await server.ok('GET', `/api/v1/agents/${id}`)) as AnyEvent;
        return a['last_heartbeat']?.['certificate'] ? a : undefined;
      }, 20_000, 250);
      const certificate = agent['last_heartbeat']['certificate'] as { expires: string; renewals: number; failures: number; last_error?: string };
      // The agent's own view of the certificate it uses: the one the server issued it.
      assert.equal(Date.parse(certificate.expires), Date.parse(agent['cert_not_after'] as string));
      assert.ok(Date.parse(certificate.expires) > Date.now());
      assert.equal(certificate.renewals, 0);
      assert.equal(certificate.failures, 0);
      assert.equal(certificate.last_error, undefined);
      // Its clock, and how far it is from the server's (one machine here: within a few seconds).
      assert.ok(Number.isFinite(Date.parse(agent['last_heartbeat']['time'] as string)));
      assert.ok(Math.abs(agent['last_heartbeat']['clock_offset_ms'] as number) < 10_000, String(agent['last_heartbeat']['clock_offset_ms']));
      // Its plugins and outputs in snake_case, like the rest of the API's answer.
      const heartbeat = agent['last_heartbeat'] as { plugins: AnyEvent[]; outputs: AnyEvent[] };
      assert.ok(heartbeat.plugins.some((p) => p['name'] === 'inventory' && typeof p['events_in'] === 'number' && typeof p['budget']['memory_bytes'] === 'number'), JSON.stringify(heartbeat.plugins));
      assert.ok(heartbeat.outputs.some((o) => o['name'] === 'server' && typeof o['bytes_out'] === 'number'), JSON.stringify(heartbeat.outputs));
      const camel = JSON.stringify({ plugins: heartbeat.plugins.map(({ stats: _stats, dropped: _dropped, ...p }) => p), outputs: heartbeat.outputs.map(({ dropped: _dropped, ...o }) => o) }).match(/"[a-z]+[A-Z]\w*":/g);
      assert.equal(camel, null);
    }
  });

  it('returns each host\'s rows as NDJSON with the host and agent id, and exits 0', { timeout: 60_000 }, async () => {
    const result = await hades('fleet', 'query', 'SELECT username FROM users WHERE uid = 0', '--json', '--timeout', '30', '--config', serverYaml);
    assert.equal(result.status, 0, result.stderr);
    const rows = lines(result.stdout);
    assert.deepEqual(rows.map((r) => r['agent_id']).sort(), ids(), 'one row per host');
    for (const row of rows) {
      assert.equal(row['username'], 'root');
      assert.equal(typeof row['host'], 'string');
      assert.deepEqual(Object.keys(row).sort(), ['agent_id', 'host', 'username']);
    }
    assert.match(result.stderr, /2 of 2 host\(s\) answered \(2 rows\), 0 failed, 0 without an answer/);
  });

  it('pages the hosts: the CLI walks every page (--page 1), the API\'s cursor walk gives each host once, a bad cursor or limit is a coded 400', { timeout: 60_000 }, async () => {
    const result = await hades('fleet', 'query', 'SELECT username FROM users WHERE uid = 0', '--json', '--page', '1', '--timeout', '30', '--config', serverYaml);
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(lines(result.stdout).map((r) => r['agent_id']).sort(), ids(), 'one row per host, over two pages');
    assert.match(result.stderr, /2 of 2 host\(s\) answered \(2 rows\)/);

    const { queries } = (await server.ok('GET', '/api/v1/queries')) as { queries: AnyEvent[] };
    const id = queries[0]!['id'] as string;
    const first = (await server.ok('GET', `/api/v1/queries/${id}`, { query: { limit: 1 } })) as AnyEvent;
    const second = (await server.ok('GET', `/api/v1/queries/${id}`, { query: { limit: 1, cursor: first['next'] } })) as AnyEvent;
    assert.equal(typeof first['next'], 'string');
    assert.equal(second['next'], undefined, 'the last page has no next');
    assert.deepEqual([...first['hosts'], ...second['hosts']].map((h: AnyEvent) => h['agent_id']).sort(), ids());
    for (const page of [first, second]) assert.deepEqual(page['summary'], { agents: 2, done: 2, failed: 0, pending: 0, expired: 0, rows: 2 });
    // Without limit: the default page (100 hosts), here every host, as before paging.
    assert.equal(((await server.ok('GET', `/api/v1/queries/${id}`)) as AnyEvent)['hosts'].length, 2);
    assert.deepEqual(((await server.ok('GET', `/api/v1/queries/${id}`, { query: { limit: 0 } })) as AnyEvent)['hosts'], []);
    for (const query of [{ cursor: 'not-a-cursor' }, { limit: 1001 }, { limit: -1 }, { limit: 'many' }, { cursor: 'x'.repeat(513) }]) {
      const bad = await server.api('GET', `/api/v1/queries/${id}`, { query });
      assert.equal(bad.status, 400, JSON.stringify(query));
      assert.equal((bad.body as AnyEvent)['code'], 'HADES_ERR_API_INVALID_REQUEST', JSON.stringify(query));
    }
    // The OpenAPI document describes the parameters and the next cursor.
    const openapi = (await server.ok('GET', '/api/v1/openapi.json')) as AnyEvent;
    const operation = openapi['paths']['/api/v1/queries/{id}']['get'];
    assert.deepEqual(operation['parameters'].filter((p: AnyEvent) => p['in'] === 'query').map((p: AnyEvent) => p['name']).sort(), ['cursor', 'limit']);
    assert.ok(operation['responses']['200']['content']['application/json']['schema']['properties']['next'], 'the response schema has next');
  });

  it('returns rows of text of several bytes a character whole and exactly, with integers beyond 2^53 as their digits', { timeout: 60_000 }, async () => {
    // Two rows of 600 KB of UTF-8 each (200,000 characters): over a plugin frame together.
    const sql = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2) SELECT x, replace(hex(zeroblob(200000)), '00', '€') AS t, 9007199254740993 AS big FROM c";
    const result = await hades('fleet', 'query', sql, '--json', '--timeout', '30', '--config', serverYaml);
    assert.equal(result.status, 0, result.stderr);
    const rows = lines(result.stdout);
    assert.equal(rows.length, 4, 'two rows from each host');
    for (const row of rows) {
      assert.equal(row['t'], '€'.repeat(200_000));
      assert.equal(row['big'], '9007199254740993');
    }
  });

  it('gives every host its coded error for SQL that does not parse; exit 2 when every host refuses it', { timeout: 60_000 }, async () => {
    const result = await hades('fleet', 'query', 'SELEKT username FROM users', '--json', '--timeout', '30', '--config', serverYaml);
    // The person's mistake on every host: an input error (2); 3 is for hosts that failed otherwise or did not answer.
    assert.equal(result.status, 2, result.stderr);
    const hosts = lines(result.stdout);
    assert.deepEqual(hosts.map((h) => h['agent_id']).sort(), ids());
    for (const host of hosts) {
      assert.equal(host['status'], 'failed');
      assert.equal(host['error'].code, 'HADES_ERR_QUERY_SYNTAX');
      assert.match(host['error'].message, /syntax error/);
    }
    // An unknown column is its own code, with the close name the table has.
    const column = await hades('fleet', 'query', 'SELECT name FROM users WHERE uid = 0', '--json', '--timeout', '30', '--config', serverYaml);
    assert.equal(column.status, 2, column.stderr);
    for (const host of lines(column.stdout)) {
      assert.equal(host['error'].code, 'HADES_ERR_QUERY_UNKNOWN_COLUMN');
      assert.match(host['error'].message, /did you mean (user)?name\?/);
    }
    // For a person: one block per host with the code.
    const person = await hades('fleet', 'query', 'SELEKT 1', '--timeout', '30', '--config', serverYaml);
    assert.equal(person.status, 2);
    assert.equal(person.stdout.match(/^== .* \(ag_[0-9a-f]{16}\): failed$/gm)?.length, 2, person.stdout);
    assert.equal(person.stdout.match(/^HADES_ERR_QUERY_SYNTAX: /gm)?.length, 2, person.stdout);
  });

  it('runs an inventory task (POST /api/v1/tasks): the table\'s rows; an unknown table is refused by the server (inventory) or the agent (SQL)', { timeout: 60_000 }, async () => {
    const [agentId] = ids();
    const created = (await server.ok('POST', '/api/v1/tasks', { body: { agents: [agentId], kind: 'inventory', params: { table: 'os_version' }, timeout_s: 60 } })).tasks as AnyEvent[];
    assert.equal(created.length, 1);
    const task = await waitUntil('the task done', async () => {
      const current = (await server.ok('GET', `/api/v1/tasks/${created[0]!['id']}`)) as AnyEvent;
      return current['status'] === 'pending' || current['status'] === 'sent' ? undefined : current;
    }, 30_000, 200);
    assert.equal(task['status'], 'done', JSON.stringify(task));
    const result = task['result'] as AnyEvent;
    assert.deepEqual(result['tables'], ['os_version']);
    assert.equal(result['row_count'], 1);
    assert.equal(result['truncated'], false);
    const columns = (result['columns'] as AnyEvent[]).map((c) => c['name']);
    assert.ok(columns.includes('name') && columns.includes('version_id'), columns.join(','));
    const [row] = result['rows'] as AnyEvent[];
    assert.deepEqual(Object.keys(row!), columns, 'rows are objects keyed by column, in order');
    assert.equal(typeof row!['name'], 'string');

    // A table no agent has is refused when the task is made; SQL naming one is refused by each agent.
    const refused = await server.api('POST', '/api/v1/tasks', { body: { agents: [agentId], kind: 'inventory', params: { table: 'proceses' } } });
    assert.equal(refused.status, 400);
    assert.equal((refused.body as AnyEvent)['code'], 'HADES_ERR_API_INVALID_REQUEST');
    assert.equal((refused.body as AnyEvent)['details'].suggestion, 'processes');
    const unknown = (await server.ok('POST', '/api/v1/tasks', { body: { agents: [agentId], kind: 'query', params: { sql: 'SELECT * FROM proceses' } } })).tasks[0] as AnyEvent;
    const failed = await waitUntil('the task failed', async () => {
      const current = (await server.ok('GET', `/api/v1/tasks/${unknown['id']}`)) as AnyEvent;
      return current['status'] === 'failed' ? current : undefined;
    }, 30_000, 200);
    assert.equal(failed['result'].code, 'HADES_ERR_QUERY_UNKNOWN_TABLE');
    assert.equal(failed['result'].details.suggestion, 'processes');
  });

  it('reports a stopped agent expired (HADES_ERR_QUERY_NO_ANSWER) after the timeout, with the other host\'s rows, and exits 3', { timeout: 90_000 }, async () => {
    const [running, stopped] = agents as [AgentProcess, AgentProcess];
    assert.equal(await stopped.stop(), 0, stopped.stderr);
    await waitUntil('the server to see the agent gone', async () => ((await server.ok('GET', `/api/v1/agents/${stopped.agentId!}`)) as AnyEvent)['online'] === false, 30_000, 200);
    const result = await hades('fleet', 'query', 'SELECT username FROM users WHERE uid = 0', '--json', '--timeout', '5', '--config', serverYaml);
    assert.equal(result.status, 3, result.stderr);
    assert.ok(result.ms >= 5000, `waited for the timeout (${result.ms} ms)`);
    const out = lines(result.stdout);
    assert.deepEqual(out.filter((l) => l['agent_id'] === running.agentId).map((l) => l['username']), ['root']);
    const gone = out.filter((l) => l['agent_id'] === stopped.agentId);
    assert.equal(gone.length, 1);
    assert.equal(gone[0]!['status'], 'expired');
    assert.equal(gone[0]!['error'].code, 'HADES_ERR_QUERY_NO_ANSWER');
    assert.match(result.stderr, /1 of 2 host\(s\) answered \(1 rows\), 0 failed, 1 without an answer/);
    // The API says the same, and the query is complete.
    const { queries } = (await server.ok('GET', '/api/v1/queries')) as { queries: AnyEvent[] };
    const query = (await server.ok('GET', `/api/v1/queries/${queries[0]!['id']}`)) as AnyEvent;
    assert.equal(query['complete'], true);
    assert.deepEqual(query['summary'], { agents: 2, done: 1, failed: 0, pending: 0, expired: 1, rows: 1 });

    // Bad SQL with a host that does not answer: the coded error of the one, expired for the other, exit 3.
    const bad = await hades('fleet', 'query', 'SELEKT 1', '--json', '--timeout', '3', '--config', serverYaml);
    assert.equal(bad.status, 3, bad.stderr);
    const byAgent = new Map(lines(bad.stdout).map((l) => [l['agent_id'] as string, l]));
    assert.equal(byAgent.get(running.agentId!)?.['error'].code, 'HADES_ERR_QUERY_SYNTAX');
    assert.equal(byAgent.get(stopped.agentId!)?.['status'], 'expired');
  });

  it('a query asked while an agent is stopped is answered when the agent starts again before the deadline', { timeout: 90_000 }, async () => {
    const stopped = agents[1]!;
    assert.notEqual(stopped.child.exitCode, null, 'stopped by the test before');
    const sql = `SELECT username FROM users WHERE uid = 0 AND ${Date.now()} > 0`;
    const asked = hades('fleet', 'query', sql, '--json', '--timeout', '40', '--config', serverYaml);
    // The query exists, waiting for the stopped agent, before the agent starts again.
    await waitUntil('the query asked', async () => {
      const task = ((await server.ok('GET', '/api/v1/tasks', { query: { agent: stopped.agentId!, limit: 10 } })) as { tasks: AnyEvent[] }).tasks.find((t) => t['params']?.['sql'] === sql);
      return task !== undefined && (task['status'] === 'pending' || task['status'] === 'sent') ? task : undefined;
    }, 20_000, 100);
    // With the driver, kernel events open the agent's stream to the server while it is still starting.
    const again = new AgentProcess(stopped.dataDir, stopped.configFile.replace(/\.yaml$/, '-driver.yaml'));
    agents.push(again);
    const result = await asked;
    assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}\n${again.stderr.slice(-3000)}`);
    assert.deepEqual(lines(result.stdout).map((l) => [l['agent_id'], l['username']]).sort(), ids().map((id) => [id, 'root']));
  });
});
