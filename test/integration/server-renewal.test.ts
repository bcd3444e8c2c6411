// hades-test: shares the machine
/**
 * Agent certificate renewal end to end: a real server on loopback and the agent's real gRPC
 * transport. An agent whose certificate is near its end renews on its stream, reconnects with
 * the new certificate while it streams events (none lost, none sent twice), and its old
 * certificate is refused from then on; the server can ask an agent to renew (connected or at
 * its next connection); a request for another agent's id and a revoked agent's request are
 * refused with their codes, and the stream goes on.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { loadIdentity, newKeyAndCsr, saveRenewedIdentity, type Identity } from '../../src/agent/transport/enroll.js';
import { GrpcTransport } from '../../src/agent/transport/grpc-transport.js';
import { openDatabase, type Db } from '../../src/server/db.js';
import { FleetRegistry } from '../../src/server/fleet/registry.js';
import { Pki, type IssuedCertificate } from '../../src/server/pki.js';
import type { AnyEvent } from '../helpers/agent.js';
import { AGENT_VERSION, batchOf, cleanupTempDirs, GatewayStream, identityCredentials, LogSink, makeEvents, ndjson, sinkLogger, tempDir, TestServer, waitUntil, within } from '../helpers/server.js';

const DAY = 86_400_000;

let server: TestServer;
/** A second connection to the server's database: what another server node (or the operator's tooling) would change. */
let otherNode: { db: Db; registry: FleetRegistry };
before(async () => {
  server = await TestServer.start();
  const db = openDatabase(path.join(server.dataDir, 'hades.db'));
  otherNode = { db, registry: new FleetRegistry(db) };
});
after(async () => {
  otherNode?.db.close();
  await server?.stop();
  cleanupTempDirs();
});

const fingerprintOf = (certPem: string): string => new X509Certificate(certPem).fingerprint256.replace(/:/g, '').toLowerCase();

/** Enrolls an agent in a fresh folder; returns its folder and identity. */
async function enrolled(): Promise<{ dataDir: string; identity: Identity }> {
  const dataDir = tempDir('hades-agent-');
  const identity = await server.enrollAgent({ dataDir });
  return { dataDir, identity };
}

/**
 * Gives an enrolled agent a certificate issued `ageDays` ago for a year (by the server's CA,
 * opened with an earlier clock), as if it had been renewed then: recorded as its next
 * certificate, stored as its identity. Its first connection makes it the one in use.
 */
async function ageCertificate(dataDir: string, identity: Identity, ageDays: number): Promise<{ identity: Identity; issued: IssuedCertificate }> {
  const then = await Pki.open(server.dataDir, { hostnames: [], ips: [], now: () => Date.now() - ageDays * DAY });
  const { keyPem, csrPem } = await newKeyAndCsr({ agentId: identity.agentId });
  const issued = await then.renewAgentCsr(csrPem, identity.agentId, identity.certPem);
  otherNode.registry.setNextCertificate(identity.agentId, fingerprintOf(identity.certPem), issued);
  saveRenewedIdentity(dataDir, { ...identity, keyPem, certPem: issued.certPem }, issued.serial);
  const aged = loadIdentity(dataDir);
  assert.ok(aged);
  return { identity: aged, issued };
}

/** A refused connection: PERMISSION_DENIED with `code` in its details, no welcome. */
async function refused(identity: Pick<Identity, 'caPem' | 'keyPem' | 'certPem'>, code: string): Promise<void> {
  const stream = new GatewayStream(server.addresses.gateway, identityCredentials(identity));
  try {
    stream.hello();
    const end = await within(stream.ended, 5000);
    assert.ok(end, 'the call ends');
    assert.equal(end.code, grpc.status.PERMISSION_DENIED, end.details);
    assert.match(end.details, new RegExp(code));
    assert.ok(!stream.messages.some((m) => m.welcome), 'no welcome');
  } finally {
    stream.close();
  }
}

describe('an agent whose certificate nears its end', () => {
  it('renews on its stream, reconnects with the new certificate while streaming (no event lost or sent twice), and the old one is refused', { timeout: 60_000 }, async () => {
    const { dataDir, identity: enrolledIdentity } = await enrolled();
    // 250 days into a 365-day certificate: less than a third left.
    const { identity: aged } = await ageCertificate(dataDir, enrolledIdentity, 250);
    const agentLog = new LogSink();
    const identities: Identity[] = [];
    const transport = new GrpcTransport({
      identity: aged,
      addresses: aged.gateways,
      agentVersion: AGENT_VERSION,
      log: sinkLogger(agentLog, 'info'),
      renewal: { dataDir, renewBeforeMs: 0, jitterMs: 300 },
      onIdentity: (identity) => identities.push(identity),
    });
    const signal = new AbortController().signal;
    const duplicatesBefore = server.server!.stats().gateway!.duplicates;
    const prefix = `renew-${aged.agentId}`;
    let seq = 0;
    const sent: string[] = [];
    const sendOne = async () => {
      const events = makeEvents(20, { prefix: `${prefix}-${++seq}` });
      // Every send must succeed the first time: a rejected send would be sent again from the spool.
      await transport.send(batchOf(events, seq), signal);
      sent.push(...events.map((e) => e['event'].id as string));
    };
    try {
      await sendOne();
      await waitUntil('the renewal', async () => {
        await sendOne();
        return identities.length > 0 || undefined;
      }, 20_000, 20);
      const renewed = identities[0]!;
      const renewedFingerprint = fingerprintOf(renewed.certPem);
      assert.deepEqual(loadIdentity(dataDir), renewed, 'stored before it was handed over');
      // Streaming goes on through the reconnection, until the server sees the new certificate.
      await waitUntil('the new certificate in use', async () => {
        await sendOne();
        const agent = await server.ok('GET', `/api/v1/agents/${aged.agentId}`);
        return agent.cert_fingerprint === renewedFingerprint ? agent : undefined;
      }, 20_000, 20);
      for (let i = 0; i < 5; i++) await sendOne();

      const agent = await server.ok('GET', `/api/v1/agents/${aged.agentId}`);
      assert.equal(agent.next_cert, undefined);
      assert.ok(agent.cert_renewed_at);
      assert.ok(Math.abs(Date.parse(agent.cert_not_after) - Date.now() - 365 * DAY) < 60_000, `a year from now: ${agent.cert_not_after}`);
      assert.equal(agent.online, true);
      assert.equal(identities.length, 1, 'renewed once');
      assert.deepEqual(transport.renewal, { renewals: 1, failures: 0 });

      const stored = await server.searchAll({ agent: aged.agentId });
      const ids = stored.map((e) => e['event'].id as string);
      assert.equal(new Set(ids).size, ids.length, 'none stored twice');
      assert.deepEqual([...ids].sort(), [...sent].sort(), 'every event sent is stored');
      assert.equal(server.server!.stats().gateway!.duplicates - duplicatesBefore, 0, 'no batch was sent twice');
      assert.ok(agentLog.lines().some((l) => l['msg'] === 'reconnecting with the renewed certificate'));
      // Counted as a renewal's reconnection, and no batch was written twice (as the server saw).
      const streams = transport.streamStats();
      assert.equal(streams.lost.renewal_reconnect, 1, JSON.stringify(streams));
      assert.equal(streams.resent, 0);
      assert.ok(streams.opened >= 2);
      assert.ok(server.log.lines().some((l) => l['msg'] === 'agent uses its renewed certificate; the one before is refused from now on' && l['agent'] === aged.agentId && l['serial'] === agent.cert_serial));

      // The identity folder: the new pair only, private.
      const dir = path.join(dataDir, 'identity');
      const files = readdirSync(dir).sort();
      assert.deepEqual(files.filter((f) => f.endsWith('.pem')).length, 3, files.join(', '));
      for (const name of files) assert.equal(statSync(path.join(dir, name)).mode & 0o777, 0o600, name);
    } finally {
      await transport.close();
    }
    // The certificates before are refused: the aged one, and the one from enrollment.
    await refused(aged, 'HADES_ERR_AGENT_UNKNOWN');
    await refused(enrolledIdentity, 'HADES_ERR_AGENT_UNKNOWN');
    // The renewed one connects.
    const stream = new GatewayStream(server.addresses.gateway, identityCredentials(loadIdentity(dataDir)!));
    try {
      stream.hello();
      assert.equal((await stream.welcome()).welcome?.agent_id, aged.agentId);
    } finally {
      stream.close();
    }
  });
});

/** Starts transports that renew when asked (with up to `jitterMs` of delay) and tell each renewed identity; kept in `transports` to close. */
function renewingTransports(transports: GrpcTransport[], jitterMs: number) {
  return (agent: { dataDir: string; identity: Identity }, renewed: Identity[]): GrpcTransport => {
    const transport = new GrpcTransport({
      identity: agent.identity,
      addresses: agent.identity.gateways,
      agentVersion: AGENT_VERSION,
      log: sinkLogger(),
      renewal: { dataDir: agent.dataDir, renewBeforeMs: 0, jitterMs },
      onIdentity: (identity) => renewed.push(identity),
    });
    transports.push(transport);
    return transport;
  };
}

/** Waits for the agent's one renewal (in `renewed`), then for the server to see it connected with the new certificate. */
async function renewedAndReconnected(agentId: string, renewed: readonly Identity[]): Promise<void> {
  await waitUntil('the renewal', () => renewed.length === 1 || undefined, 15_000, 20);
  const fingerprint = fingerprintOf(renewed[0]!.certPem);
  await waitUntil('the reconnection', async () => (await server.ok('GET', `/api/v1/agents/${agentId}`)).cert_fingerprint === fingerprint || undefined, 15_000, 50);
}

describe('renewal asked by the server', () => {
  it('reconnects with the renewed certificate at once at the next address when the first is down', { timeout: 60_000 }, async () => {
    const agent = await enrolled();
    const renewed: Identity[] = [];
    // The first address refuses every connection (nothing listens on port 1).
    const transport = new GrpcTransport({
      identity: agent.identity,
      addresses: ['127.0.0.1:1', ...agent.identity.gateways],
      agentVersion: AGENT_VERSION,
      log: sinkLogger(),
      renewal: { dataDir: agent.dataDir, renewBeforeMs: 0, jitterMs: 3_600_000 },
      onIdentity: (identity) => renewed.push(identity),
    });
    try {
      transport.start();
      await waitUntil('the agent online', async () => (await server.ok('GET', `/api/v1/agents/${agent.identity.agentId}`)).online === true || undefined, 20_000, 50);
      assert.deepEqual(await server.ok('POST', `/api/v1/agents/${agent.identity.agentId}/renew?now=true`), { sent: true, immediately: true });
      await waitUntil('the renewal', () => renewed.length === 1 || undefined, 15_000, 20);
      const at = Date.now();
      const fingerprint = fingerprintOf(renewed[0]!.certPem);
      await waitUntil('the reconnection', async () => (await server.ok('GET', `/api/v1/agents/${agent.identity.agentId}`)).cert_fingerprint === fingerprint || undefined, 15_000, 20);
      // At once: about 30 ms here, where waiting for the backoff the failed attempt scheduled took
      // 500 to 1,000 ms (its 1 s with jitter), and more after earlier failures.
      assert.ok(Date.now() - at < 450, `reconnected ${Date.now() - at} ms after the renewal`);
    } finally {
      await transport.close();
    }
  });

  it('renews a connected agent asked through the API, and an offline one at its next connection', { timeout: 60_000 }, async () => {
    const connected = await enrolled();
    const offline = await enrolled();
    const transports: GrpcTransport[] = [];
    const start = renewingTransports(transports, 100);
    const signal = new AbortController().signal;
    try {
      const renewedA: Identity[] = [];
      const a = start(connected, renewedA);
      await a.send(batchOf(makeEvents(1), 1), signal);
      assert.deepEqual(await server.ok('POST', `/api/v1/agents/${connected.identity.agentId}/renew`), { sent: true, immediately: false });
      await renewedAndReconnected(connected.identity.agentId, renewedA);
      assert.equal((await server.ok('GET', `/api/v1/agents/${connected.identity.agentId}`)).renew_requested_at, undefined);
      await a.send(batchOf(makeEvents(1), 2), signal);
      await refused(connected.identity, 'HADES_ERR_AGENT_UNKNOWN');

      assert.deepEqual(await server.ok('POST', `/api/v1/agents/${offline.identity.agentId}/renew`), { sent: false, immediately: false });
      assert.ok((await server.ok('GET', `/api/v1/agents/${offline.identity.agentId}`)).renew_requested_at);
      const renewedB: Identity[] = [];
      const b = start(offline, renewedB);
      await b.send(batchOf(makeEvents(1), 1), signal);
      await waitUntil('the renewal at the next connection', () => renewedB.length === 1 || undefined, 15_000, 20);
      const { entries } = (await server.ok('GET', '/api/v1/audit')) as { entries: AnyEvent[] };
      assert.ok(entries.some((e) => e['action'] === 'agent.renew' && e['target'] === offline.identity.agentId), 'audited');
    } finally {
      for (const transport of transports) await transport.close();
    }
    assert.equal((await server.api('POST', '/api/v1/agents/ag_0000000000000000/renew')).status, 404);
  });

  it('renews and reconnects at once when asked with now=true, connected or at the next connection, whatever the agent\'s delay', { timeout: 60_000 }, async () => {
    const connected = await enrolled();
    const offline = await enrolled();
    const transports: GrpcTransport[] = [];
    // An hour: a renewal or a reconnection that waited for it would not come within the test.
    const start = renewingTransports(transports, 3_600_000);
    const signal = new AbortController().signal;
    try {
      const renewedA: Identity[] = [];
      const a = start(connected, renewedA);
      await a.send(batchOf(makeEvents(1), 1), signal);
      assert.deepEqual(await server.ok('POST', `/api/v1/agents/${connected.identity.agentId}/renew?now=true`), { sent: true, immediately: true });
      await renewedAndReconnected(connected.identity.agentId, renewedA);
      await refused(connected.identity, 'HADES_ERR_AGENT_UNKNOWN');

      assert.deepEqual(await server.ok('POST', `/api/v1/agents/${offline.identity.agentId}/renew?now=true`), { sent: false, immediately: true });
      // Asked again without --now: still without delay.
      assert.deepEqual(await server.ok('POST', `/api/v1/agents/${offline.identity.agentId}/renew`), { sent: false, immediately: false });
      const pending = await server.ok('GET', `/api/v1/agents/${offline.identity.agentId}`);
      assert.ok(pending.renew_requested_at);
      assert.equal(pending.renew_immediately, true);
      const renewedB: Identity[] = [];
      const b = start(offline, renewedB);
      await b.send(batchOf(makeEvents(1), 1), signal);
      await renewedAndReconnected(offline.identity.agentId, renewedB);
      const after = await server.ok('GET', `/api/v1/agents/${offline.identity.agentId}`);
      assert.equal(after.renew_requested_at, undefined);
      assert.equal(after.renew_immediately, undefined, 'cleared with the request');
      const { entries } = (await server.ok('GET', '/api/v1/audit')) as { entries: AnyEvent[] };
      assert.ok(entries.some((e) => e['action'] === 'agent.renew' && e['target'] === offline.identity.agentId && (e['details'] as AnyEvent | undefined)?.['immediately'] === true), JSON.stringify(entries.filter((e) => e['action'] === 'agent.renew')));
    } finally {
      for (const transport of transports) await transport.close();
    }
    assert.equal((await server.api('POST', `/api/v1/agents/${connected.identity.agentId}/renew?now=maybe`)).status, 400);
  });
});

describe('refused renewals', () => {
  it('refuses a request for another agent\'s id, or that is not a request, with a code; the stream goes on', async () => {
    const a = await enrolled();
    const b = await enrolled();
    const stream = new GatewayStream(server.addresses.gateway, identityCredentials(a.identity));
    try {
      stream.hello();
      await stream.welcome();
      const answer = async (csr: string) => {
        const from = stream.messages.length;
        stream.write({ renew: { csr } });
        return (await stream.next((m) => m.renew !== undefined, 10_000, from)).renew!;
      };
      const forged = await answer((await newKeyAndCsr({ agentId: b.identity.agentId })).csrPem);
      assert.equal(forged.certificate, undefined);
      assert.equal(forged.error?.code, 'HADES_ERR_RENEW_IDENTITY');
      assert.match(forged.error?.message ?? '', new RegExp(b.identity.agentId));
      assert.equal((await server.ok('GET', `/api/v1/agents/${b.identity.agentId}`)).next_cert, undefined, 'nothing issued for b');
      assert.equal((await server.ok('GET', `/api/v1/agents/${a.identity.agentId}`)).next_cert, undefined, 'nor for a');
      assert.equal((await answer('not a certificate request')).error?.code, 'HADES_ERR_RENEW_REQUEST_INVALID');
      assert.equal((await stream.batch(ndjson(makeEvents(2)), 1, 2)).ack?.stored, 2, 'the stream goes on');
      const own = await answer((await newKeyAndCsr({ agentId: a.identity.agentId })).csrPem);
      assert.match(own.certificate ?? '', /BEGIN CERTIFICATE/);
      assert.ok(server.log.lines().some((l) => l['msg'] === 'agent certificate renewal refused' && l['code'] === 'HADES_ERR_RENEW_IDENTITY' && l['agent'] === a.identity.agentId));
    } finally {
      stream.close();
    }
  });

  it('refuses a revoked agent: on a stream still open, through the API, and at its connection', async () => {
    const { dataDir, identity } = await enrolled();
    const stream = new GatewayStream(server.addresses.gateway, identityCredentials(identity));
    try {
      stream.hello();
      await stream.welcome();
      // Revoked by another node: this gateway has not closed the stream yet.
      otherNode.registry.revoke(identity.agentId);
      stream.write({ renew: { csr: (await newKeyAndCsr({ agentId: identity.agentId })).csrPem } });
      const answer = (await stream.next((m) => m.renew !== undefined)).renew!;
      assert.equal(answer.certificate, undefined);
      assert.equal(answer.error?.code, 'HADES_ERR_AGENT_REVOKED');
    } finally {
      stream.close();
    }
    const api = await server.api('POST', `/api/v1/agents/${identity.agentId}/renew`);
    assert.equal(api.status, 403);
    assert.equal(api.body.code, 'HADES_ERR_AGENT_REVOKED');
    assert.equal((await server.ok('GET', `/api/v1/agents/${identity.agentId}`)).next_cert, undefined);
    // Its transport is refused before it can ask; its identity stays as it was.
    const transport = new GrpcTransport({ identity, addresses: identity.gateways, agentVersion: AGENT_VERSION, log: sinkLogger(), connectTimeoutMs: 3000, renewal: { dataDir, renewBeforeMs: 0, jitterMs: 0 } });
    try {
      // The refusal says how to enroll the host again: a new token alone is not used while the identity is kept.
      await assert.rejects(transport.send(batchOf(makeEvents(1), 1), new AbortController().signal), (error: { code?: string; message?: string }) => error.code === 'HADES_ERR_AGENT_REVOKED' && (error.message ?? '').includes(`move ${path.join(dataDir, 'identity')} aside`));
    } finally {
      await transport.close();
    }
    assert.deepEqual(loadIdentity(dataDir), identity);
  });
});
