// hades-test: shares the machine
/**
 * CA rotation end to end: a real server on loopback and the agent's real gRPC transport (with
 * certificate renewal, as `hades agent` runs it). An agent streams events while the CA is
 * rotated: it receives the new CA on its stream, stores it, renews under it and reconnects,
 * without an event lost or stored twice; the old CA is retired (refused while an agent is left
 * on it, then forced), and the agent connects again after a restart, to the server certificate
 * of the new CA. An agent that was offline during the whole overlap is refused with a clear code
 * and told to enroll again; one that holds the new CA but a certificate of the retired one is
 * refused by the server with HADES_ERR_CA_RETIRED.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { linkSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { caCertificates, loadIdentity, type Identity } from '../../src/agent/transport/enroll.js';
import { GrpcTransport } from '../../src/agent/transport/grpc-transport.js';
import type { AnyEvent } from '../helpers/agent.js';
import { AGENT_VERSION, batchOf, cleanupTempDirs, GatewayStream, identityCredentials, LogSink, makeEvents, sinkLogger, tempDir, TestServer, waitUntil, within } from '../helpers/server.js';

let server: TestServer;
before(async () => {
  server = await TestServer.start();
});
after(async () => {
  await server?.stop();
  cleanupTempDirs();
});

const sha256 = (pem: string): string => new X509Certificate(pem).fingerprint256.replace(/:/g, '').toLowerCase();
const issuerOf = (certPem: string, casPem: string): string | undefined => {
  const cert = new X509Certificate(certPem);
  const ca = caCertificates(casPem).find((c) => cert.checkIssued(c) && cert.verify(c.publicKey));
  return ca ? sha256(ca.toString()) : undefined;
};

async function enrolled(): Promise<{ dataDir: string; identity: Identity }> {
  const dataDir = tempDir('hades-agent-');
  const identity = await server.enrollAgent({ dataDir });
  return { dataDir, identity };
}

interface CaStatus {
  rotation: string;
  issuing_sha256: string;
  server_certificate_ca_sha256: string;
  cas: { state: string; sha256: string; agents: number }[];
  agents_on_old?: string[];
}

describe('a CA rotation with an agent streaming events', () => {
  it('moves the agent to the new CA without losing or duplicating events, retires the old CA, and refuses an agent left behind with a clear code', { timeout: 120_000 }, async () => {
    const online = await enrolled();
    const offline = await enrolled();
    const oldCa = server.caPem;
    const oldSha = sha256(oldCa);
    const agentLog = new LogSink();
    const identities: Identity[] = [];
    const start = (identity: Identity) =>
      new GrpcTransport({
        identity,
        addresses: identity.gateways,
        agentVersion: AGENT_VERSION,
        log: sinkLogger(agentLog, 'info'),
        renewal: { dataDir: online.dataDir, renewBeforeMs: 0, jitterMs: 300 },
        onIdentity: (next) => identities.push(next),
      });
    let transport = start(online.identity);
    const signal = new AbortController().signal;
    const duplicatesBefore = server.server!.stats().gateway!.duplicates;
    const agentId = online.identity.agentId;
    let seq = 0;
    const sent: string[] = [];
    const sendOne = async () => {
      const events = makeEvents(10, { prefix: `rotate-${agentId}-${++seq}` });
      // Every send must succeed the first time: a failed one would be sent again from the spool.
      await transport.send(batchOf(events, seq), signal);
      sent.push(...events.map((e) => e['event'].id as string));
    };
    try {
      await sendOne();
      const before = (await server.ok('GET', '/api/v1/pki/ca')) as CaStatus;
      assert.equal(before.rotation, 'none');
      assert.deepEqual(before.cas.map((c) => [c.state, c.sha256, c.agents]), [['current', oldSha, 2]]);

      // Rotate (admin, audited); a second rotation is refused while this one is in progress.
      const rotated = (await server.ok('POST', '/api/v1/pki/ca/rotate')) as { ca: { sha256: string; state: string }; agents_on_old: number; notified: number };
      const newSha = rotated.ca.sha256;
      assert.equal(rotated.ca.state, 'new');
      assert.equal(rotated.agents_on_old, 2);
      assert.equal(rotated.notified, 1);
      const again = await server.api('POST', '/api/v1/pki/ca/rotate');
      assert.equal(again.status, 409);
      assert.equal(again.body.code, 'HADES_ERR_CA_ROTATION_IN_PROGRESS');
      const { token: analystToken } = (await server.ok('POST', '/api/v1/tokens/api', { body: { name: 'analyst', role: 'analyst' } })) as { token: string };
      assert.equal((await server.api('POST', '/api/v1/pki/ca/rotate', { token: analystToken })).status, 403, 'admin only');
      assert.equal((await server.api('GET', '/api/v1/pki/ca', { token: analystToken })).status, 200);
      assert.equal(server.caPem, oldCa, 'the server certificate stays of the old CA during the overlap');

      // The agent stores both CAs, renews under the new one and reconnects, while it streams.
      await waitUntil('the renewal under the new CA', async () => {
        await sendOne();
        return identities.some((i) => issuerOf(i.certPem, i.caPem) === newSha) || undefined;
      }, 30_000, 20);
      const renewed = identities.find((i) => issuerOf(i.certPem, i.caPem) === newSha)!;
      assert.deepEqual(caCertificates(renewed.caPem).map((c) => sha256(c.toString())).sort(), [oldSha, newSha].sort());
      await waitUntil('the new certificate in use', async () => {
        await sendOne();
        const agent = await server.ok('GET', `/api/v1/agents/${agentId}`);
        return agent.cert_fingerprint === sha256(renewed.certPem) || undefined;
      }, 30_000, 20);
      assert.ok(agentLog.lines().some((l) => l['msg'] === 'the server\'s CAs changed; the agent trusts these from its next connection'));
      assert.ok(agentLog.lines().some((l) => l['msg'] === 'reconnecting with the renewed certificate'));
      const dir = path.join(online.dataDir, 'identity');
      const stored = loadIdentity(online.dataDir)!;
      assert.equal(stored.certPem, renewed.certPem);
      assert.equal(stored.caPem, renewed.caPem);
      for (const name of readdirSync(dir)) assert.equal(statSync(path.join(dir, name)).mode & 0o777, 0o600, name);

      // An agent enrolled during the overlap: pinned to the old CA (the server certificate's), its
      // certificate of the new one; it is sent both CAs at its first connection, and has nothing to renew.
      const late = await enrolled();
      assert.equal(issuerOf(late.identity.certPem, `${oldCa.trimEnd()}\n${readFileSync(path.join(server.dataDir, 'pki', 'ca-next.pem'), 'utf8')}`), newSha);
      const lateTransport = new GrpcTransport({ identity: late.identity, addresses: late.identity.gateways, agentVersion: AGENT_VERSION, log: sinkLogger(), renewal: { dataDir: late.dataDir, renewBeforeMs: 0, jitterMs: 300 } });
      try {
        await lateTransport.send(batchOf(makeEvents(1), 1), signal);
        await waitUntil('both CAs stored', () => caCertificates(loadIdentity(late.dataDir)!.caPem).length === 2 || undefined, 10_000, 20);
        assert.equal(loadIdentity(late.dataDir)!.certPem, late.identity.certPem, 'not renewed');
        assert.deepEqual(lateTransport.renewal, { renewals: 0, failures: 0 });
      } finally {
        await lateTransport.close();
      }

      const during = (await server.ok('GET', '/api/v1/pki/ca')) as CaStatus;
      assert.equal(during.rotation, 'in-progress');
      assert.equal(during.issuing_sha256, newSha);
      assert.equal(during.server_certificate_ca_sha256, oldSha);
      assert.deepEqual(during.cas.map((c) => [c.state, c.sha256, c.agents]), [['old', oldSha, 1], ['new', newSha, 2]]);
      assert.deepEqual(during.agents_on_old, [offline.identity.agentId]);
      // Each agent says which CA issued its certificate.
      const { agents } = (await server.ok('GET', '/api/v1/agents')) as { agents: { id: string; cert_ca_sha256?: string }[] };
      assert.equal(agents.find((a) => a.id === offline.identity.agentId)?.cert_ca_sha256, oldSha);
      assert.deepEqual(agents.filter((a) => a.cert_ca_sha256 === newSha).length, 2);

      // A second name for the old key's file: what a rename over it would leave on the disk.
      const witness = path.join(server.dataDir, 'old-ca.key.witness');
      linkSync(path.join(server.dataDir, 'pki', 'ca.key'), witness);
      const oldKeySize = statSync(witness).size;
      // Not retired while an agent is left on the old CA; forced, it is.
      const refused = await server.api('POST', '/api/v1/pki/ca/retire-old');
      assert.equal(refused.status, 409);
      assert.equal(refused.body.code, 'HADES_ERR_CA_AGENTS_REMAIN');
      assert.match(refused.body.message, new RegExp(`1 agent .*${offline.identity.agentId}.*--force`));
      const retired = (await server.ok('POST', '/api/v1/pki/ca/retire-old', { query: { force: 'true' } })) as { retired: { sha256: string }; ca_sha256: string; forced: boolean; agents_left_behind: number; disconnected: number };
      assert.deepEqual({ ...retired, retired: retired.retired.sha256 }, { retired: oldSha, ca_sha256: newSha, forced: true, agents_left_behind: 1, notified: 1, disconnected: 0 });
      // The old key's bytes were overwritten before the new key took its name.
      const left = readFileSync(witness);
      assert.ok(oldKeySize > 0 && left.length === oldKeySize && left.every((b) => b === 0), 'the retired key is wiped, not only unlinked');
      rmSync(witness);
      const nothing = await server.api('POST', '/api/v1/pki/ca/retire-old', { query: { force: 'true' } });
      assert.equal(nothing.status, 409);
      assert.equal(nothing.body.code, 'HADES_ERR_CA_NOTHING_TO_RETIRE');
      assert.equal(sha256(server.caPem), newSha, 'the API presents the new CA\'s certificate (this client trusts the new ca.pem only)');
      const { entries } = (await server.ok('GET', '/api/v1/audit')) as { entries: AnyEvent[] };
      assert.ok(entries.some((e) => e['action'] === 'ca.rotate' && e['target'] === newSha));
      assert.ok(entries.some((e) => e['action'] === 'ca.retire' && e['target'] === oldSha && (e['details'] as { forced?: boolean }).forced === true));

      // The open stream goes on, and the agent is told to trust the new CA only.
      await waitUntil('the new CA alone trusted', async () => {
        await sendOne();
        return loadIdentity(online.dataDir)!.caPem.trim() === server.caPem.trim() || undefined;
      }, 15_000, 20);
      // After a restart, the agent connects to the server certificate of the new CA.
      await transport.close();
      transport = start(loadIdentity(online.dataDir)!);
      for (let i = 0; i < 3; i++) await sendOne();
      const after = (await server.ok('GET', '/api/v1/pki/ca')) as CaStatus;
      assert.deepEqual(after.cas.map((c) => [c.state, c.sha256, c.agents]), [['current', newSha, 2], ['retired', oldSha, 1]]);
      assert.equal(after.agents_on_old, undefined);

      // No event lost, none stored twice, no batch sent twice.
      const events = await server.searchAll({ agent: agentId });
      const ids = events.map((e) => e['event'].id as string);
      assert.equal(new Set(ids).size, ids.length, 'none stored twice');
      assert.deepEqual([...ids].sort(), [...sent].sort(), 'every event sent is stored');
      assert.equal(server.server!.stats().gateway!.duplicates - duplicatesBefore, 0);
      assert.equal(transport.streamStats().resent, 0);
    } finally {
      await transport.close();
    }

    // The agent that was offline all along trusts the retired CA only: it cannot use the server,
    // and says so with its code and what to do.
    const leftLog = new LogSink();
    const left = new GrpcTransport({
      identity: offline.identity,
      addresses: offline.identity.gateways,
      agentVersion: AGENT_VERSION,
      log: sinkLogger(leftLog, 'info'),
      renewal: { dataDir: offline.dataDir, renewBeforeMs: 0, jitterMs: 300 },
    });
    try {
      await assert.rejects(left.send(batchOf(makeEvents(1), 1), new AbortController().signal), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'HADES_ERR_SERVER_CA_UNTRUSTED', error.message);
        assert.match(error.message, /CA was rotated and the old one retired while this agent was offline.*enrolled again.*fresh token/);
        return true;
      });
      assert.ok(leftLog.lines().some((l) => l['level'] === 'error' && (l['err'] as { code?: string } | undefined)?.code === 'HADES_ERR_SERVER_CA_UNTRUSTED'), leftLog.text);
    } finally {
      await left.close();
    }
    // With the new CA trusted but its certificate of the retired one, the server refuses it by name.
    const stream = new GatewayStream(server.addresses.gateway, identityCredentials({ ...offline.identity, caPem: `${server.caPem.trimEnd()}\n${oldCa}` }));
    try {
      stream.hello();
      const end = await within(stream.ended, 5000);
      assert.ok(end, 'the call ends');
      assert.equal(end.code, grpc.status.PERMISSION_DENIED, end.details);
      assert.match(end.details, new RegExp(`HADES_ERR_CA_RETIRED: the certificate of agent ${offline.identity.agentId} .*retired.*enrolled again`));
      assert.ok(!stream.messages.some((m) => m.welcome));
    } finally {
      stream.close();
    }
    // The retired key is nowhere in the server's data folder.
    const pkiDir = path.join(server.dataDir, 'pki');
    assert.deepEqual(readdirSync(pkiDir).sort(), ['ca-retired.pem', 'ca.key', 'ca.pem', 'server.key', 'server.pem']);
    assert.equal(readFileSync(path.join(pkiDir, 'ca-retired.pem'), 'utf8').trim(), oldCa.trim());
  });
});
