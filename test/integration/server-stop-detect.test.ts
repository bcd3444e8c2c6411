// hades-test: shares the machine (servers and agents in this process, on ephemeral loopback ports)
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

/**
 * What a server killed between batches' commits and their matching leaves: `count` stored connect
 * events after the detection mark, in batches of at most 5,000 (the server is stopped).
 */
function leaveUnmatched(dataDir: string, count: number): void {
  const db = openDatabase(path.join(dataDir, 'hades.db'));
  try {
    const store = new EventStore(db);
    for (let i = 0; i * 5000 < count; i++) {
      const n = Math.min(5000, count - i * 5000);
      assert.equal(store.insertBatch('ag_killed', makeEvents(n, { action: 'connect', prefix: `killed${i}` })).stored, n);
    }
  } finally {
    db.close();
  }
}

/** The stored connect events and the alerts, as a stopped server left them. */
function countsOf(dataDir: string): { stored: number; alerts: number } {
  const db = openDatabase(path.join(dataDir, 'hades.db'));
  try {
    return {
      stored: (db.prepare("SELECT count(*) AS n FROM events WHERE action = 'connect'").get() as { n: number }).n,
      alerts: (db.prepare('SELECT count(*) AS n FROM alerts').get() as { n: number }).n,
    };
  } finally {
    db.close();
  }
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
  const { stored, alerts } = countsOf(dataDir);
  assert.ok(stored >= 5 * 50, `the acknowledged batches are stored (${stored})`);
  assert.deepEqual(failed.map((l) => l['err']), [], 'no stored batch left without its detection');
  assert.equal(alerts, stored, `every stored connect raised its alert (${stored} stored)`);
});

it('matches at start the events a killed server stored but never matched, once', { timeout: 120_000 }, async () => {
  const { dataDir, server } = await serverWithConnectRule();
  await server.stop();
  leaveUnmatched(dataDir, 30);
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
  // The log says how many (a field named `events` would be dropped by the log as a payload).
  assert.deepEqual(server.log.lines().filter((l) => l['msg'] === 'events stored before the last stop matched').map((l) => l['event_count']), [30]);
  // The mark was saved at stop: the next start replays nothing.
  await server.start();
  await server.stop();
  assert.equal(server.log.lines().filter((l) => l['msg'] === 'events stored before the last stop matched').length, 1);
});


it('a stop during the replay leaves the rest of it for the next start, even after live batches', { timeout: 180_000 }, async () => {
  const { dataDir, server } = await serverWithConnectRule();
  const identity = await server.enrollAgent();
  await server.stop();
  // A killed server's leftovers: many stored events after the mark, enough for a replay of many chunks.
  const LEFT = 40_000;
  leaveUnmatched(dataDir, LEFT);
  await server.start();
  // A live batch, stored and matched while the replay runs; then a stop before the replay ends.
  const stream = new GatewayStream(server.addresses.gateway, identityCredentials(identity));
  try {
    await stream.welcome();
    stream.hello();
    const ack = await stream.batch(ndjson(makeEvents(10, { action: 'connect', prefix: 'live' })), 1, 10, 60_000);
    assert.ok(ack.ack, 'the live batch is stored');
    await waitUntil('the live batch matched', () => (server.server?.stats().detection?.alerts ?? 0) > 0 && server.log.lines().every((l) => l['msg'] !== 'events stored before the last stop matched'), 60_000, 5);
  } finally {
    stream.close();
  }
  await server.stop();
  const first = countsOf(dataDir).alerts;
  assert.ok(first < LEFT, `the stop came before the replay's end (${first} alerts)`);
  // The next start matches what the stop left: every stored connect ends with its alert.
  await server.start();
  try {
    const lines = (msg: string) => server.log.lines().filter((l) => l['msg'] === msg).length;
    // A replay that begins must end (when the mark skipped the rest, none begins).
    if (lines('matching events stored before the last stop but not matched then') >= 2) await waitUntil('the replay ends', () => lines('events stored before the last stop matched') >= 1, 120_000);
  } finally {
    await server.stop();
  }
  const { stored, alerts } = countsOf(dataDir);
  assert.equal(stored, LEFT + 10);
  assert.equal(alerts, stored, 'every stored connect raised its alert');
});

it('a replay goes on in the thread started again when the ingest worker dies during it', { timeout: 180_000 }, async () => {
  const { dataDir, server } = await serverWithConnectRule();
  await server.stop();
  const LEFT = 20_000;
  leaveUnmatched(dataDir, LEFT);
  await server.start();
  try {
    // The thread dies while the replay runs (the server's own worker, as a crash would end it).
    await (server.server as unknown as { ingest: { crashForTest(): Promise<void> } }).ingest.crashForTest();
    const lines = (msg: string) => server.log.lines().filter((l) => l['msg'] === msg);
    await waitUntil('the replay ends', () => lines('events stored before the last stop matched').length + lines('events stored before the last stop could not all be matched').length > 0, 120_000);
    assert.deepEqual(lines('events stored before the last stop could not all be matched').map((l) => l['err']), [], 'one crash does not give the replay up');
  } finally {
    await server.stop();
  }
  assert.equal(countsOf(dataDir).alerts, LEFT, 'every stored connect raised its alert');
});
