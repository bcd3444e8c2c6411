/**
 * A server stopped with batches in flight: every batch it stores (and acknowledges) must have
 * gone through the rules, since sent again it is a duplicate and is never matched.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, it } from 'node:test';
import { openDatabase } from '../../src/server/db.js';
import { EventStore } from '../../src/server/store/events.js';
import { cleanupTempDirs, GatewayStream, identityCredentials, makeEvents, ndjson, tempDir, TestServer, waitUntil } from '../helpers/server.js';

after(() => cleanupTempDirs());

/** A server whose only rule raises an alert for every connect event (one per event id). */
async function serverWithConnectRule(): Promise<{ dataDir: string; server: TestServer }> {
  const rules = tempDir('hades-rules-');
  writeFileSync(
    path.join(rules, 'every-connect.yaml'),
    'rules:\n  - id: every_connect\n    title: A connection\n    severity: low\n    condition: event.action = connect\n    dedup_by: [event.id]\n',
  );
  const dataDir = tempDir();
  return { dataDir, server: await TestServer.start({ dataDir, extra: `rules: { default_pack: false, dirs: [${JSON.stringify(rules)}] }\n` }) };
}

it('stores no batch at stop that the rules never saw', { timeout: 120_000 }, async () => {
  const { dataDir, server } = await serverWithConnectRule();
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

  // The store and the alerts as the stopped server left them (a restart would match what was
  // left unmatched, and hide the fault this test is about).
  const db = openDatabase(path.join(dataDir, 'hades.db'));
  let stored: number;
  let alerts: number;
  try {
    stored = (db.prepare("SELECT count(*) AS n FROM events WHERE action = 'connect'").get() as { n: number }).n;
    alerts = (db.prepare('SELECT count(*) AS n FROM alerts').get() as { n: number }).n;
  } finally {
    db.close();
  }
  assert.ok(stored >= 5 * 50, `the acknowledged batches are stored (${stored})`);
  assert.deepEqual(failed.map((l) => l['err']), [], 'no stored batch left without its detection');
  assert.equal(alerts, stored, `every stored connect raised its alert (${stored} stored)`);
});

it('matches at start the events a killed server stored but never matched, once', { timeout: 120_000 }, async () => {
  const { dataDir, server } = await serverWithConnectRule();
  await server.stop();
  // What a server killed between a batch's commit and its matching leaves: stored events after the mark.
  const db = openDatabase(path.join(dataDir, 'hades.db'));
  try {
    assert.equal(new EventStore(db).insertBatch('ag_killed', makeEvents(30, { action: 'connect', prefix: 'killed' })).stored, 30);
  } finally {
    db.close();
  }
  await server.start();
  try {
    const alerts = await waitUntil('30 alerts', async () => {
      const found = ((await server.ok('GET', '/api/v1/alerts', { query: { limit: 1000, since: '1h' } })) as { alerts: { host: { id: string } }[] }).alerts;
      return found.length >= 30 ? found : undefined;
    }, 30_000);
    assert.equal(alerts.length, 30);
    assert.ok(alerts.every((a) => a.host.id === 'ag_killed'), 'each alert names the agent that sent the event');
  } finally {
    await server.stop();
  }
  assert.equal(server.log.lines().filter((l) => l['msg'] === 'events stored before the last stop matched').length, 1);
  // The mark was saved at stop: the next start replays nothing.
  await server.start();
  await server.stop();
  assert.equal(server.log.lines().filter((l) => l['msg'] === 'events stored before the last stop matched').length, 1);
});

