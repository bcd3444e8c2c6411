/**
 * Property-based fuzzing of the server's API (src/server/api.ts) with fast-check
 * (test/helpers/fuzz.ts), through fastify's inject on the API of a real test server: every
 * route of the OpenAPI document, with arbitrary path parameters, query strings and bodies (JSON
 * of any shape, text that is not JSON, other content types), with the admin token or none. The
 * answer is never a 500: a refusal carries a catalogued code that is not HADES_ERR_INTERNAL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { assertInputCode, fuzzParams, textLike, wrongValue } from '../helpers/fuzz.js';
import { cleanupTempDirs, TestServer } from '../helpers/server.js';

let server: TestServer;
let api: FastifyInstance;
let routes: { method: string; url: string }[] = [];

before(async () => {
  server = await TestServer.start();
  // The API the server listens with (a private member: the test injects into it instead of connecting).
  api = (server.server as unknown as { api: FastifyInstance }).api;
  const doc = api.swagger() as { paths: Record<string, Record<string, unknown>> };
  routes = Object.entries(doc.paths).flatMap(([url, methods]) => Object.keys(methods).map((m) => ({ method: m.toUpperCase(), url })));
});
after(async () => {
  await server?.stop();
  cleanupTempDirs();
});

const segment = fc.oneof(fc.constantFrom('1', '0', '-1', 'ag_0000', 'x'.repeat(5000), '..', '%00', '%ff', '%2e%2e', 'default', 'null', '99999999999999999999'), fc.stringMatching(/^[A-Za-z0-9_.~-]{0,20}$/));
const query = fc.dictionary(fc.constantFrom('since', 'until', 'limit', 'cursor', 'order', 'q', 'host', 'action', 'status', 'severity', 'rule', 'agent', 'field', 'x'), fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('1h', '-5m', '0', '-1', '1e9', '2026-13-45', '9999999999999', 'asc', '')), { maxKeys: 4 });
const body = fc.oneof(
  fc.constant(undefined),
  fc.jsonValue({ maxDepth: 3 }).map((v) => ({ type: 'application/json', payload: JSON.stringify(v) })),
  fc.dictionary(fc.constantFrom('yaml', 'ttl', 'group', 'name', 'role', 'status', 'comment', 'rule', 'host', 'duration', 'sql', 'agents', 'table', 'reason', 'assignee', '__proto__'), wrongValue, { maxKeys: 4 }).map((v) => ({ type: 'application/json', payload: JSON.stringify(v) })),
  fc.tuple(textLike, fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x')).map(([t, type]) => ({ type, payload: t })),
  fc.integer({ min: 1, max: 2000 }).map((depth) => ({ type: 'application/json', payload: '['.repeat(depth) + ']'.repeat(depth) })),
);

describe('fuzz: API requests', () => {
  it('lists the routes', () => {
    assert.ok(routes.length > 20, `${routes.length} routes`);
  });

  it('arbitrary requests to every route: answered, never a 500, refusals coded', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(), fc.array(segment, { minLength: 3, maxLength: 3 }), query, body, fc.boolean(), async (pick, segments, qs, b, authenticated) => {
        const route = routes[pick % routes.length]!;
        let i = 0;
        const url = route.url.replace(/\{[^}]+\}/g, () => segments[i++ % segments.length] ?? '');
        const response = await api.inject({
          method: route.method as 'GET',
          url,
          query: qs,
          headers: { ...(authenticated ? { authorization: `Bearer ${server.adminToken}` } : {}), ...(b ? { 'content-type': b.type } : {}) },
          ...(b ? { payload: b.payload } : {}),
        });
        assert.ok(response.statusCode < 500, `${route.method} ${url}: HTTP ${response.statusCode} ${response.body.slice(0, 300)}`);
        if (response.statusCode >= 400) {
          const answer = JSON.parse(response.body) as { code?: unknown };
          assertInputCode(answer.code, `${route.method} ${url} (${response.statusCode})`);
        }
      }),
      fuzzParams(250),
    );
  });
});
