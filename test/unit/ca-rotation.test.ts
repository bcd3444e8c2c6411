/**
 * CA rotation: the server's CA store (pki.ts: rotate, the overlap's dual trust, retire-old, what
 * a crash leaves, damaged files), the registry's record of which CA issued each agent's
 * certificate, and the agent's side (the CAs it trusts stored atomically, a renewal checked
 * against them, the codes of a server it cannot use).
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { caCertificates, loadIdentity, newKeyAndCsr, saveRenewedIdentity, saveTrustedCas } from '../../src/agent/transport/enroll.js';
import { connectFailureCode } from '../../src/agent/transport/grpc-transport.js';
import { checkRenewedCertificate } from '../../src/agent/transport/renewal.js';
import { HadesError } from '../../src/common/errors.js';
import { openDatabase } from '../../src/server/db.js';
import { FleetRegistry } from '../../src/server/fleet/registry.js';
import { CertificateRenewal } from '../../src/server/fleet/renewal.js';
import { Pki } from '../../src/server/pki.js';
import { sinkLogger } from '../helpers/server.js';

const root = mkdtempSync(path.join(tmpdir(), 'hades-ca-rotation-'));
after(() => rmSync(root, { recursive: true, force: true }));
let folders = 0;
const folder = (): string => path.join(root, `d${++folders}`);
const open = (dir: string): Promise<Pki> => Pki.open(dir, { hostnames: [], ips: [] });
const mode = (file: string): number => statSync(file).mode & 0o777;
const sha256 = (pem: string): string => new X509Certificate(pem).fingerprint256.replaceAll(':', '').toLowerCase();

const code = (expected: string, pattern?: RegExp) => (error: unknown) => {
  assert.ok(error instanceof HadesError, `expected a HadesError, got ${String(error)}`);
  assert.equal(error.code, expected, error.message);
  if (pattern) assert.match(error.message, pattern);
  return true;
};

/** A certificate `pki` issues to `agentId` now, with its key. */
async function agentCert(pki: Pki, agentId: string): Promise<{ certPem: string; keyPem: string; caSha256: string; fingerprint: string; serial: string; notAfter: string }> {
  const { keyPem, csrPem } = await newKeyAndCsr({ hostname: 'web-1' });
  return { ...(await pki.signAgentCsr(csrPem, agentId)), keyPem };
}

const issuedBy = (certPem: string, caPem: string): boolean => {
  const cert = new X509Certificate(certPem);
  const ca = new X509Certificate(caPem);
  return cert.checkIssued(ca) && cert.verify(ca.publicKey);
};

describe('Pki: a CA rotation', () => {
  it('keeps a deployment that never rotates as it was: one CA, no rotation files', async () => {
    const pki = await open(folder());
    assert.equal(pki.rotating, false);
    assert.equal(pki.rotated, false);
    assert.equal(pki.trustPem, pki.caPem);
    assert.equal(pki.issuingFingerprint, pki.caFingerprint);
    assert.deepEqual(pki.cas().map((c) => c.state), ['current']);
    assert.deepEqual(readdirSync(pki.paths.dir).sort(), ['ca.key', 'ca.pem', 'server.key', 'server.pem']);
    assert.equal(pki.state.rotation, undefined);
  });

  it('rotates: a new CA beside the old one, both trusted, the new one issuing, the server certificate unchanged', async () => {
    const dir = folder();
    const pki = await open(dir);
    const oldCa = pki.caPem;
    const serverBefore = pki.serverCertPem;
    const onOld = await agentCert(pki, 'ag_old');
    assert.equal(onOld.caSha256, sha256(oldCa));

    const prepared = await pki.prepareRotation();
    assert.equal(pki.rotating, false, 'nothing changes before the commit');
    const made = pki.commitRotation(prepared);
    assert.equal(made.state, 'new');
    assert.equal(made.sha256, prepared.sha256);
    for (const file of [pki.paths.nextCaCert, pki.paths.nextCaKey]) assert.equal(mode(file), 0o600, file);
    assert.equal(pki.rotating, true);
    assert.equal(pki.caPem, oldCa, 'the server certificate still chains to the old CA');
    assert.equal(pki.serverCertPem, serverBefore);
    assert.deepEqual(pki.cas().map((c) => c.state), ['old', 'new']);
    assert.equal(pki.issuingFingerprint, made.sha256);
    assert.deepEqual(caCertificates(pki.trustPem).map((c) => sha256(c.toString())), [sha256(oldCa), made.sha256]);

    // New certificates come from the new CA; both are accepted.
    const onNew = await agentCert(pki, 'ag_new');
    assert.equal(onNew.caSha256, made.sha256);
    assert.ok(issuedBy(onNew.certPem, readFileSync(pki.paths.nextCaCert, 'utf8')));
    assert.equal(pki.agentIdentity(onOld.certPem)?.caSha256, sha256(oldCa));
    assert.equal(pki.agentIdentity(onNew.certPem)?.caSha256, made.sha256);
    assert.equal(pki.retiredIssuer(onOld.certPem), undefined);

    // The next start finds the rotation in progress.
    const again = await open(dir);
    assert.equal(again.state.rotation, 'in-progress');
    assert.equal(again.state.server, 'loaded');
    assert.equal(again.issuingFingerprint, made.sha256);
    assert.equal(again.agentIdentity(onNew.certPem)?.agentId, 'ag_new');
  });

  it('refuses a rotation while one is in progress, and a retirement without one', async () => {
    const pki = await open(folder());
    assert.throws(() => pki.retiring(), code('HADES_ERR_CA_NOTHING_TO_RETIRE', /no CA rotation is in progress/));
    await assert.rejects(pki.prepareRetire(), code('HADES_ERR_CA_NOTHING_TO_RETIRE'));
    const first = await pki.prepareRotation();
    // Two rotations asked at once: both prepared, the second commit is refused.
    const second = await pki.prepareRotation();
    pki.commitRotation(first);
    assert.throws(() => pki.commitRotation(second), code('HADES_ERR_CA_ROTATION_IN_PROGRESS', /retire the old CA first/));
    await assert.rejects(pki.prepareRotation(), code('HADES_ERR_CA_ROTATION_IN_PROGRESS'));
    assert.equal(pki.issuingFingerprint, first.sha256, 'the first one stays');
  });

  it('retires the old CA: the new one is the CA in use, the old key is gone, its certificates are refused as retired', async () => {
    const dir = folder();
    const pki = await open(dir);
    const oldCa = pki.caPem;
    const oldKey = readFileSync(pki.paths.caKey, 'utf8');
    const onOld = await agentCert(pki, 'ag_left');
    const made = pki.commitRotation(await pki.prepareRotation());
    const newKey = readFileSync(pki.paths.nextCaKey, 'utf8');
    const onNew = await agentCert(pki, 'ag_moved');

    assert.deepEqual(pki.retiring().sha256, sha256(oldCa));
    const retired = pki.commitRetire(await pki.prepareRetire());
    assert.equal(retired.state, 'retired');
    assert.equal(retired.sha256, sha256(oldCa));
    assert.equal(pki.rotating, false);
    assert.equal(pki.rotated, true);
    assert.equal(pki.caFingerprint, made.sha256);
    assert.equal(readFileSync(pki.paths.caCert, 'utf8'), pki.caPem);
    assert.equal(readFileSync(pki.paths.caKey, 'utf8'), newKey);
    assert.ok(!readdirSync(dir + '/pki').some((f) => f.startsWith('ca-next')), 'no rotation files left');
    assert.ok(!readdirSync(dir + '/pki').some((f) => readFileSync(path.join(dir, 'pki', f), 'utf8') === oldKey), 'the old key is nowhere');
    assert.equal(readFileSync(pki.paths.retiredCas, 'utf8').trim(), oldCa.trim());
    assert.equal(mode(pki.paths.retiredCas), 0o600);
    assert.ok(issuedBy(pki.serverCertPem, pki.caPem), 'the server certificate is of the new CA');
    assert.equal(readFileSync(pki.paths.serverCert, 'utf8'), pki.serverCertPem);
    assert.equal(pki.trustPem, pki.caPem, 'agents trust the new CA only');
    assert.ok(pki.clientCaPem.includes(oldCa.trim()), 'the TLS layer lets the retired CA through, to refuse it with its code');
    assert.deepEqual(pki.cas().map((c) => c.state), ['current', 'retired']);

    assert.equal(pki.agentIdentity(onOld.certPem), undefined);
    assert.deepEqual(pki.retiredIssuer(onOld.certPem), { ca: retired, agentId: 'ag_left' });
    assert.equal(pki.agentIdentity(onNew.certPem)?.agentId, 'ag_moved');
    assert.equal(pki.retiredIssuer(onNew.certPem), undefined);
    assert.throws(() => pki.retiring(), code('HADES_ERR_CA_NOTHING_TO_RETIRE'));

    // The next start loads the same; a second rotation later adds to the retired CAs.
    const again = await open(dir);
    assert.deepEqual(again.state, { ca: 'loaded', server: 'loaded' });
    assert.equal(again.caFingerprint, made.sha256);
    assert.ok(again.retiredIssuer(onOld.certPem));
    const third = again.commitRotation(await again.prepareRotation());
    again.commitRetire(await again.prepareRetire());
    assert.equal(again.caFingerprint, third.sha256);
    assert.deepEqual(again.cas().map((c) => [c.state, c.sha256]), [['current', third.sha256], ['retired', sha256(oldCa)], ['retired', made.sha256]]);
    assert.ok(again.retiredIssuer(onNew.certPem));
  });

  it('reissues at the next start a server certificate a crash left from the old CA', async () => {
    const dir = folder();
    const pki = await open(dir);
    pki.commitRotation(await pki.prepareRotation());
    const serverOld = readFileSync(pki.paths.serverCert, 'utf8');
    const serverOldKey = readFileSync(pki.paths.serverKey, 'utf8');
    pki.commitRetire(await pki.prepareRetire());
    writeFileSync(pki.paths.serverCert, serverOld, { mode: 0o600 });
    writeFileSync(pki.paths.serverKey, serverOldKey, { mode: 0o600 });
    const again = await open(dir);
    assert.equal(again.state.server, 'renewed');
    assert.match(again.state.renewReason ?? '', /not issued by the CA/);
    assert.ok(issuedBy(again.serverCertPem, again.caPem));
  });
});

describe('Pki: what a crash in a rotation or a retirement leaves', () => {
  it('removes a new CA key whose certificate was never written (the rotation did not happen)', async () => {
    const dir = folder();
    const pki = await open(dir);
    const prepared = await pki.prepareRotation();
    writeFileSync(pki.paths.nextCaKey, prepared.keyPem, { mode: 0o600 });
    const again = await open(dir);
    assert.match(again.state.recovered ?? '', /rotation interrupted .* undone/);
    assert.equal(again.rotating, false);
    assert.ok(!readdirSync(path.join(dir, 'pki')).includes('ca-next.key'));
  });

  it('completes a retirement that listed the old CA as retired', async () => {
    const dir = folder();
    const pki = await open(dir);
    const made = pki.commitRotation(await pki.prepareRotation());
    // The first step of a retirement, then the crash.
    writeFileSync(pki.paths.retiredCas, pki.caPem, { mode: 0o600 });
    const again = await open(dir);
    assert.match(again.state.recovered ?? '', /retirement .* completed/);
    assert.equal(again.caFingerprint, made.sha256);
    assert.equal(again.rotating, false);
    assert.equal(again.state.server, 'renewed', 'the server certificate is reissued under the new CA');
    assert.ok(issuedBy(again.serverCertPem, again.caPem));
  });

  it('completes a retirement that had wiped the old key but not yet replaced it', async () => {
    const dir = folder();
    const pki = await open(dir);
    const made = pki.commitRotation(await pki.prepareRotation());
    writeFileSync(pki.paths.retiredCas, pki.caPem, { mode: 0o600 });
    const size = readFileSync(pki.paths.caKey).length;
    writeFileSync(pki.paths.caKey, Buffer.alloc(size), { mode: 0o600 });
    const again = await open(dir);
    assert.match(again.state.recovered ?? '', /retirement .* completed/);
    assert.equal(again.caFingerprint, made.sha256);
    assert.deepEqual(again.cas().map((c) => c.state), ['current', 'retired']);
    assert.ok(issuedBy(again.serverCertPem, again.caPem), 'the new key signs');
  });

  it('wipes an unused new CA key before removing it, and the old one before the new takes its name', async () => {
    const dir = folder();
    const pki = await open(dir);
    const prepared = await pki.prepareRotation();
    writeFileSync(pki.paths.nextCaKey, prepared.keyPem, { mode: 0o600 });
    const unused = path.join(dir, 'unused.witness');
    linkSync(pki.paths.nextCaKey, unused);
    const again = await open(dir);
    assert.match(again.state.recovered ?? '', /rotation interrupted .* undone/);
    assert.ok(readFileSync(unused).every((b) => b === 0), 'the removed key\'s bytes are zeros');
    again.commitRotation(await again.prepareRotation());
    const old = path.join(dir, 'old.witness');
    linkSync(again.paths.caKey, old);
    again.commitRetire(await again.prepareRetire());
    const left = readFileSync(old);
    assert.ok(left.length > 0 && left.every((b) => b === 0), 'the retired key\'s bytes are zeros');
  });

  it('completes a retirement that had replaced the key but not the certificate', async () => {
    const dir = folder();
    const pki = await open(dir);
    const made = pki.commitRotation(await pki.prepareRotation());
    writeFileSync(pki.paths.retiredCas, pki.caPem, { mode: 0o600 });
    renameSync(pki.paths.nextCaKey, pki.paths.caKey);
    const again = await open(dir);
    assert.match(again.state.recovered ?? '', /retirement .* completed/);
    assert.equal(again.caFingerprint, made.sha256);
    assert.deepEqual(again.cas().map((c) => c.state), ['current', 'retired']);
  });
});

describe('Pki: damaged CA files', () => {
  /** A folder in rotation, and its paths. */
  const rotating = async () => {
    const dir = folder();
    const pki = await open(dir);
    pki.commitRotation(await pki.prepareRotation());
    return { dir, paths: pki.paths };
  };

  it('refuses a new CA certificate that does not parse, is not a CA, or is without its key or with another', async () => {
    let { dir, paths } = await rotating();
    writeFileSync(paths.nextCaCert, 'garbage', { mode: 0o600 });
    await assert.rejects(open(dir), code('HADES_ERR_CA_FILE_INVALID', /ca-next\.pem is not a certificate/));

    ({ dir, paths } = await rotating());
    writeFileSync(paths.nextCaCert, readFileSync(paths.serverCert, 'utf8'), { mode: 0o600 });
    writeFileSync(paths.nextCaKey, readFileSync(paths.serverKey, 'utf8'), { mode: 0o600 });
    await assert.rejects(open(dir), code('HADES_ERR_CA_FILE_INVALID', /not a CA certificate/));

    ({ dir, paths } = await rotating());
    rmSync(paths.nextCaKey);
    await assert.rejects(open(dir), code('HADES_ERR_CA_FILE_INVALID', /its key .*ca-next\.key is missing/));

    ({ dir, paths } = await rotating());
    writeFileSync(paths.nextCaKey, (await newKeyAndCsr({ hostname: 'x' })).keyPem, { mode: 0o600 });
    await assert.rejects(open(dir), code('HADES_ERR_CA_FILE_INVALID', /ca-next\.key is not the key of/));

    ({ dir, paths } = await rotating());
    writeFileSync(paths.nextCaKey, 'not a key', { mode: 0o600 });
    await assert.rejects(open(dir), code('HADES_ERR_CA_FILE_INVALID', /not a private key/));
  });

  it('refuses a damaged list of retired CAs, and a CA in use that is missing or damaged', async () => {
    let { dir, paths } = await rotating();
    writeFileSync(paths.retiredCas, 'garbage', { mode: 0o600 });
    await assert.rejects(open(dir), code('HADES_ERR_CA_FILE_INVALID', /retired CAs/));

    ({ dir, paths } = await rotating());
    writeFileSync(paths.retiredCas, readFileSync(paths.serverCert, 'utf8'), { mode: 0o600 });
    await assert.rejects(open(dir), code('HADES_ERR_CA_FILE_INVALID', /is not a CA certificate/));

    ({ dir, paths } = await rotating());
    rmSync(paths.caCert);
    rmSync(paths.caKey);
    await assert.rejects(open(dir), code('HADES_ERR_CA_FILE_INVALID', /ca\.pem is missing while .*ca-next\.pem exists/));

    const single = folder();
    const pki = await open(single);
    writeFileSync(pki.paths.caCert, 'garbage', { mode: 0o600 });
    await assert.rejects(open(single), code('HADES_ERR_CA_FILE_INVALID', /ca\.pem is not a certificate/));
  });
});

describe('the fleet registry: which CA issued each certificate', () => {
  it('records it at enrollment and renewal, moves it with the next certificate, and counts agents by CA', async () => {
    const db = openDatabase(':memory:');
    try {
      const registry = new FleetRegistry(db);
      const pki = await open(folder());
      const host = { hostname: 'web-1', addresses: [], os: 'Linux', kernel: '6', version: '1' };
      const enroll = async (id: string) => {
        const issued = await agentCert(pki, id);
        registry.enroll({ ...host, id }, issued);
        return issued;
      };
      // One enrolled before CAs were recorded: assignCa gives it the CA in use.
      const legacy = await agentCert(pki, 'ag_00000000000000e1');
      registry.enroll({ ...host, id: 'ag_00000000000000e1' }, { fingerprint: legacy.fingerprint, serial: legacy.serial, notAfter: legacy.notAfter });
      assert.equal(registry.get('ag_00000000000000e1')?.certCa, undefined);
      assert.deepEqual(registry.agentsByCa(pki.caFingerprint).counts, { [pki.caFingerprint]: 1 }, 'unrecorded counts as the CA in use');
      assert.equal(registry.assignCa(pki.caFingerprint), 1);
      assert.equal(registry.get('ag_00000000000000e1')?.certCa, pki.caFingerprint);

      const a = await enroll('ag_00000000000000a1');
      await enroll('ag_00000000000000b1');
      const old = pki.caFingerprint;
      pki.commitRotation(await pki.prepareRotation());
      await enroll('ag_00000000000000c1');
      assert.deepEqual(registry.agentsByCa(old, old), { counts: { [old]: 3, [pki.issuingFingerprint]: 1 }, onSampleCa: ['ag_00000000000000a1', 'ag_00000000000000b1', 'ag_00000000000000e1'] });

      // ag_a renews: its next certificate is of the new CA; the first connection with it moves it.
      const renewal = new CertificateRenewal({ pki, registry, log: sinkLogger() });
      const { keyPem, csrPem } = await newKeyAndCsr({ agentId: 'ag_00000000000000a1' });
      const renewed = await renewal.renew('ag_00000000000000a1', csrPem, new X509Certificate(a.certPem).raw);
      assert.equal(renewed.caSha256, pki.issuingFingerprint);
      assert.equal(registry.agentsByCa(old).counts[old], 3, 'still on the old CA until it connects with the new certificate');
      assert.equal(renewal.authorize(new X509Certificate(renewed.certPem).raw).agentId, 'ag_00000000000000a1');
      assert.equal(registry.get('ag_00000000000000a1')?.certCa, pki.issuingFingerprint);
      assert.ok(keyPem);
      registry.revoke('ag_00000000000000b1');
      assert.deepEqual(registry.agentsByCa(old, old).onSampleCa, ['ag_00000000000000e1'], 'revoked agents do not count');

      // Retired: an agent left on the old CA is refused with HADES_ERR_CA_RETIRED, and what to do.
      pki.commitRetire(await pki.prepareRetire());
      assert.throws(() => renewal.authorize(new X509Certificate(legacy.certPem).raw), code('HADES_ERR_CA_RETIRED', /agent ag_00000000000000e1 .*retired .*enrolled again/));
      assert.equal(renewal.authorize(new X509Certificate(renewed.certPem).raw).agentId, 'ag_00000000000000a1');
    } finally {
      db.close();
    }
  });
});

describe('the agent: the CAs it trusts', () => {
  /** An identity folder as enrollment leaves it. */
  const enrolledFolder = async (pki: Pki, agentId: string) => {
    const dataDir = folder();
    const dir = path.join(dataDir, 'identity');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const issued = await agentCert(pki, agentId);
    writeFileSync(path.join(dir, 'key.pem'), issued.keyPem, { mode: 0o600 });
    writeFileSync(path.join(dir, 'cert.pem'), issued.certPem, { mode: 0o600 });
    writeFileSync(path.join(dir, 'ca.pem'), pki.caPem, { mode: 0o600 });
    writeFileSync(path.join(dir, 'agent.json'), `${JSON.stringify({ agentId, gateways: ['127.0.0.1:1'] })}\n`, { mode: 0o600 });
    return { dataDir, dir, identity: loadIdentity(dataDir)! };
  };

  it('stores them beside the CA before, switches to them in one rename, and keeps them through a renewal', async () => {
    const pki = await open(folder());
    const { dataDir, dir, identity } = await enrolledFolder(pki, 'ag_trust');
    pki.commitRotation(await pki.prepareRotation());
    const bundle = pki.trustPem;
    assert.equal(saveTrustedCas(dataDir, 'ag_trust', bundle), true);
    assert.equal(saveTrustedCas(dataDir, 'ag_trust', bundle), false, 'the same CAs: nothing written');
    const meta = JSON.parse(readFileSync(path.join(dir, 'agent.json'), 'utf8')) as { ca: string };
    assert.match(meta.ca, /^ca-[0-9a-f]{16}\.pem$/);
    const files = readdirSync(dir).sort();
    assert.deepEqual(files, ['agent.json', meta.ca, 'cert.pem', 'key.pem'].sort(), 'the CA file before is gone once the new one is named');
    for (const name of files) assert.equal(mode(path.join(dir, name)), 0o600, name);
    assert.deepEqual(loadIdentity(dataDir), { ...identity, caPem: bundle });
    assert.throws(() => saveTrustedCas(dataDir, 'ag_other', bundle), code('HADES_ERR_PKI'));

    // A renewal under the new CA checks against the bundle, and keeps it.
    const { keyPem, csrPem } = await newKeyAndCsr({ agentId: 'ag_trust' });
    const issued = await pki.renewAgentCsr(csrPem, 'ag_trust', identity.certPem);
    assert.ok(checkRenewedCertificate(issued.certPem, keyPem, { agentId: 'ag_trust', caPem: bundle }, Date.now()));
    assert.throws(() => checkRenewedCertificate(issued.certPem, keyPem, { agentId: 'ag_trust', caPem: identity.caPem }, Date.now()), code('HADES_ERR_RENEW_FAILED', /not issued by the server's CA/));
    saveRenewedIdentity(dataDir, { ...identity, caPem: bundle, keyPem, certPem: issued.certPem }, issued.serial);
    assert.equal(loadIdentity(dataDir)?.caPem, bundle);

    // After the retirement: the new CA only.
    pki.commitRetire(await pki.prepareRetire());
    assert.equal(saveTrustedCas(dataDir, 'ag_trust', pki.trustPem), true);
    assert.equal(loadIdentity(dataDir)?.caPem, pki.caPem);
    assert.equal(readdirSync(dir).filter((f) => f.startsWith('ca')).length, 1);
  });

  it('refuses an agent.json naming an unexpected CA file', async () => {
    const pki = await open(folder());
    const { dataDir, dir } = await enrolledFolder(pki, 'ag_meta');
    writeFileSync(path.join(dir, 'agent.json'), JSON.stringify({ agentId: 'ag_meta', gateways: [], ca: '../../etc/passwd' }), { mode: 0o600 });
    assert.throws(() => loadIdentity(dataDir), code('HADES_ERR_PKI', /unexpected files/));
  });

  it('names the failures of a connection: a server of a CA it does not trust, a certificate of a retired CA', () => {
    assert.equal(connectFailureCode(grpc.status.UNAVAILABLE, 'No connection established. Last error: Error: self-signed certificate in certificate chain.'), 'HADES_ERR_SERVER_CA_UNTRUSTED');
    assert.equal(connectFailureCode(grpc.status.UNAVAILABLE, 'No connection established. Last error: unable to verify the first certificate'), 'HADES_ERR_SERVER_CA_UNTRUSTED');
    assert.equal(connectFailureCode(grpc.status.UNAVAILABLE, 'No connection established. Last error: connect ECONNREFUSED 127.0.0.1:1'), 'HADES_ERR_SERVER_UNREACHABLE');
    assert.equal(connectFailureCode(grpc.status.PERMISSION_DENIED, 'HADES_ERR_CA_RETIRED: the certificate of agent x was issued by the CA ...'), 'HADES_ERR_CA_RETIRED');
    assert.equal(connectFailureCode(grpc.status.PERMISSION_DENIED, 'HADES_ERR_AGENT_REVOKED: agent x is revoked'), 'HADES_ERR_AGENT_REVOKED');
    assert.equal(connectFailureCode(grpc.status.PERMISSION_DENIED, 'HADES_ERR_AGENT_UNKNOWN: ...'), 'HADES_ERR_AGENT_UNKNOWN');
  });
});
