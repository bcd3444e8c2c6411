/**
 * A server stopped with batches in flight: every batch it stores (and acknowledges) must have
 * gone through the rules, since sent again it is a duplicate and is never matched.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, it } from 'node:test';
import { cleanupTempDirs, GatewayStream, identityCredentials, makeEvents, ndjson, sleep, tempDir, TestServer } from '../helpers/server.js';

after(() => cleanupTempDirs());

it('stores no batch at stop that the rules never saw', { timeout: 120_000 }, async () => {
  const rules = tempDir('hades-rules-');
  writeFileSync(
    path.join(rules, 'every-connect.yaml'),
    'rules:\n  - id: every_connect\n    title: A connection\n    severity: low\n    condition: event.action = connect\n    dedup_by: [event.id]\n',
  );
  const dataDir = tempDir();
  const server = await TestServer.start({ dataDir, extra: `rules: { default_pack: false, dirs: [${JSON.stringify(rules)}] }\n` });
  const identity = await server.enrollAgent();
  const stream = new GatewayStream(server.addresses.gateway, identityCredentials(identity));
  await stream.welcome();
  stream.hello();
  // Many batches in flight, then a stop; the agent hangs up when the server ends its call, as agents do.
  void stream.ended.then(() => stream.close());
  const BATCHES = 100;
  for (let b = 1; b <= BATCHES; b++) stream.write({ batch: { first_seq: b, last_seq: b, events: 50, ndjson: ndjson(makeEvents(50, { action: 'connect', prefix: `b${b}` })) } });
  await stream.next((m) => m.ack !== undefined && Number(m.ack.last_seq) >= 5, 30_000);
  await server.stop();
  const failed = server.log.lines().filter((l) => l['msg'] === 'the events of a batch could not go through the rules');

  // The store and the alerts, as the restarted server has them.
  await server.start();
  let stored: number;
  let alerts: { alerts: unknown[] };
  try {
    stored = (await server.searchAll({ action: 'connect' })).length;
    alerts = (await server.ok('GET', '/api/v1/alerts', { query: { limit: 10_000, since: '1h' } })) as { alerts: unknown[] };
  } finally {
    await server.stop();
  }
  await sleep(10);
  assert.deepEqual(failed.map((l) => l['err']), [], 'no stored batch left without its detection');
  assert.equal(alerts.alerts.length, stored, `every stored connect raised its alert (${stored} stored)`);
});
