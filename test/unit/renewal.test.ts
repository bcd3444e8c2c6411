/**
 * Certificate renewal in parts: the CA's checks of a renewal request (Pki.renewAgentCsr), the
 * registry's current and next certificates (the switch at the first connection with the new
 * one), the server's renewal flow (CertificateRenewal), and the agent's side: when a
 * certificate is due, the check of what the server sent back, the atomic storage of the new
 * key and certificate, and the renewer's retries.
 */
import assert from 'node:assert/strict';
import { createPrivateKey, webcrypto, X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, beforeEach, describe, it } from 'node:test';
import { loadIdentity, newKeyAndCsr, saveRenewedIdentity, type Identity } from '../../src/agent/transport/enroll.js';
import { CertificateRenewer, checkRenewedCertificate, renewalDue, type RenewalPorts } from '../../src/agent/transport/renewal.js';
import { HadesError } from '../../src/common/errors.js';
import { openDatabase, type Db } from '../../src/server/db.js';
import { FleetRegistry } from '../../src/server/fleet/registry.js';
import { CertificateRenewal } from '../../src/server/fleet/renewal.js';
import { AGENT_CERT_DAYS, Pki, x509, type IssuedCertificate } from '../../src/server/pki.js';
import { LogSink, sinkLogger, waitUntil } from '../helpers/server.js';

const root = mkdtempSync(path.join(tmpdir(), 'hades-renewal-'));
after(() => rmSync(root, { recursive: true, force: true }));
let folders = 0;
const folder = (): string => path.join(root, `d${++folders}`);
const DAY = 86_400_000;
const MINUTE = 60_000;

const code = (expected: string, pattern?: RegExp) => (error: unknown) => {
  assert.ok(error instanceof HadesError, `expected a HadesError, got ${String(error)}`);
  assert.equal(error.code, expected, error.message);
  if (pattern !== undefined) assert.match(error.message, pattern);
  return true;
};

/** A CSR with any subject and SANs (what a forger would send). */
async function csrWith(subject: string, sans: { type: 'url' | 'dns'; value: string }[] = []): Promise<{ csrPem: string; keyPem: string }> {
  const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: subject,
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    ...(sans.length > 0 ? { extensions: [new x509.SubjectAlternativeNameExtension(sans)] } : {}),
  });
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  return { csrPem: csr.toString('pem'), keyPem: createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }).toString() };
}

const host = (hostname: string) => ({ hostname, addresses: ['10.0.0.1'], os: 'Debian 12', kernel: '6.1.0', version: '0.1.0' });

describe('Pki: renewal requests', () => {
  let pki: Pki;
  let current: IssuedCertificate;
  const agentId = 'ag_00000000000000a1';
  beforeEach(async () => {
    pki ??= await Pki.open(folder(), { hostnames: [], ips: [] });
    current = await pki.signAgentCsr((await newKeyAndCsr({ hostname: 'web-1' })).csrPem, agentId);
  });

  it('issues a certificate for the new key, naming the agent, with the lifetime of an enrollment', async () => {
    const { csrPem, keyPem } = await newKeyAndCsr({ agentId });
    const before = Date.now();
    const issued = await pki.renewAgentCsr(csrPem, agentId, current.certPem);
    const cert = new X509Certificate(issued.certPem);
    assert.ok(cert.checkPrivateKey(createPrivateKey(keyPem)), 'for the key of the request');
    assert.equal(cert.subject, `CN=${agentId}`);
    assert.equal(cert.subjectAltName, `URI:hades://agent/${agentId}`);
    const lifetime = Date.parse(issued.notAfter) - before;
    assert.ok(Math.abs(lifetime - AGENT_CERT_DAYS * DAY) < MINUTE, `lifetime ${lifetime / DAY} days`);
    assert.equal(Math.round((Date.parse(issued.notAfter) - Date.parse(current.notAfter)) / MINUTE), 0, 'as long as the enrollment certificate');
    assert.notEqual(issued.fingerprint, current.fingerprint);
    assert.equal(pki.agentIdentity(issued.certPem)?.agentId, agentId);
  });

  it('refuses a request that names another agent, by CN or by SAN, or names none', async () => {
    const other = 'ag_00000000000000b2';
    const cases = [
      await csrWith(`CN=${other}`),
      await csrWith(`CN=${agentId}`, [{ type: 'url', value: `hades://agent/${other}` }]),
      await csrWith(`CN=${agentId}`, [{ type: 'url', value: `hades://agent/${agentId}` }, { type: 'dns', value: 'evil.example' }]),
      await csrWith(`CN=${agentId}, CN=${other}`),
      await csrWith('CN=web-1'),
      await csrWith('O=Hades'),
    ];
    for (const { csrPem } of cases) await assert.rejects(pki.renewAgentCsr(csrPem, agentId, current.certPem), code('HADES_ERR_RENEW_IDENTITY'));
    // The agent's own request, with or without the SAN, passes.
    await pki.renewAgentCsr((await csrWith(`CN=${agentId}`)).csrPem, agentId, current.certPem);
  });

  it('refuses the key in use, garbage, and a request whose signature does not verify', async () => {
    const mine = await newKeyAndCsr({ agentId });
    const issued = await pki.renewAgentCsr(mine.csrPem, agentId, current.certPem);
    // The same key again, now that it is the one in use.
    await assert.rejects(pki.renewAgentCsr(mine.csrPem, agentId, issued.certPem), code('HADES_ERR_RENEW_REQUEST_INVALID', /new key pair/));
    await assert.rejects(pki.renewAgentCsr('not a csr', agentId, current.certPem), code('HADES_ERR_RENEW_REQUEST_INVALID'));
    await assert.rejects(pki.renewAgentCsr('x'.repeat(20_000), agentId, current.certPem), code('HADES_ERR_RENEW_REQUEST_INVALID'));
    const der = Buffer.from(mine.csrPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
    der[der.length - 5] = der[der.length - 5]! ^ 0xff;
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    await assert.rejects(pki.renewAgentCsr(tampered, agentId, current.certPem), code('HADES_ERR_RENEW_REQUEST_INVALID'));
  });

  it('keeps enrollment refusals under their own code', async () => {
    await assert.rejects(pki.signAgentCsr('not a csr', agentId), code('HADES_ERR_ENROLL_REQUEST_INVALID'));
  });
});

describe('fleet registry: current and next certificates', () => {
  let db: Db;
  let t: number;
  let fleet: FleetRegistry;
  let n = 0;
  const fp = () => (++n).toString(16).padStart(64, '0');
  const cert = () => ({ fingerprint: fp(), serial: n.toString(16), notAfter: new Date(t + 365 * DAY).toISOString() });
  beforeEach(() => {
    db = openDatabase(':memory:');
    t = Date.parse('2030-01-01T00:00:00.000Z');
    fleet = new FleetRegistry(db, { now: () => t });
  });

  it('accepts the current and the next certificate; the first connection with the next one retires the old', () => {
    const id = fleet.newAgentId();
    const first = cert();
    fleet.enroll(host('web-1'), { ...first, agentId: id });
    const next = cert();
    t += MINUTE;
    const recorded = fleet.setNextCertificate(id, first.fingerprint, next);
    assert.deepEqual(recorded.nextCert, { fingerprint: next.fingerprint, serial: next.serial, notAfter: next.notAfter, issuedAt: new Date(t).toISOString() });
    assert.equal(recorded.certFingerprint, first.fingerprint, 'the old one is still in use');
    // Until the agent reconnects, both work.
    assert.deepEqual(fleet.authorizeConnection(id, first.fingerprint), { agent: recorded, switched: false });
    t += MINUTE;
    const switched = fleet.authorizeConnection(id, next.fingerprint.toUpperCase());
    assert.equal(switched.switched, true);
    assert.equal(switched.agent.certFingerprint, next.fingerprint);
    assert.equal(switched.agent.certSerial, next.serial);
    assert.equal(switched.agent.certNotAfter, next.notAfter);
    assert.equal(switched.agent.certRenewedAt, new Date(t).toISOString());
    assert.equal(switched.agent.nextCert, undefined);
    assert.throws(() => fleet.authorize(id, first.fingerprint), code('HADES_ERR_AGENT_UNKNOWN', /not the one issued/));
    assert.equal(fleet.authorizeConnection(id, next.fingerprint).switched, false, 'later connections switch nothing');
    assert.equal(fleet.byFingerprint(next.fingerprint)?.id, id);
  });

  it('replaces a next certificate never used; the one it replaced is refused', () => {
    const id = fleet.newAgentId();
    const first = cert();
    fleet.enroll(host('web-1'), { ...first, agentId: id });
    const lost = cert();
    fleet.setNextCertificate(id, first.fingerprint, lost);
    const again = cert();
    fleet.setNextCertificate(id, first.fingerprint, again);
    assert.throws(() => fleet.authorize(id, lost.fingerprint), code('HADES_ERR_AGENT_UNKNOWN'));
    assert.equal(fleet.authorizeConnection(id, again.fingerprint).switched, true);
  });

  it('records a next certificate only for the certificate in use of an agent not revoked', () => {
    const id = fleet.newAgentId();
    const first = cert();
    fleet.enroll(host('web-1'), { ...first, agentId: id });
    const next = cert();
    fleet.setNextCertificate(id, first.fingerprint, next);
    fleet.authorize(id, next.fingerprint);
    // The old stream (old certificate) asks again after the switch: refused, nothing recorded.
    assert.throws(() => fleet.setNextCertificate(id, first.fingerprint, cert()), code('HADES_ERR_AGENT_UNKNOWN'));
    assert.equal(fleet.get(id)?.nextCert, undefined);
    assert.throws(() => fleet.setNextCertificate('ag_ffffffffffffffff', first.fingerprint, cert()), code('HADES_ERR_AGENT_UNKNOWN'));
    const pending = cert();
    fleet.setNextCertificate(id, next.fingerprint, pending);
    fleet.revoke(id);
    assert.throws(() => fleet.setNextCertificate(id, next.fingerprint, cert()), code('HADES_ERR_AGENT_REVOKED'));
    assert.throws(() => fleet.authorize(id, pending.fingerprint), code('HADES_ERR_AGENT_REVOKED'), 'a revoked agent does not switch');
    assert.equal(fleet.get(id)?.certFingerprint, next.fingerprint);
  });

  it('keeps an operator\'s renewal request until the agent renews; none for a revoked agent', () => {
    const id = fleet.newAgentId();
    const first = cert();
    fleet.enroll(host('web-1'), { ...first, agentId: id });
    assert.equal(fleet.get(id)?.renewRequestedAt, undefined);
    const asked = fleet.requestRenewal(id).renewRequestedAt;
    assert.equal(asked, new Date(t).toISOString());
    t += MINUTE;
    assert.equal(fleet.requestRenewal(id).renewRequestedAt, asked, 'asking twice keeps the first time');
    assert.equal(fleet.requestRenewal(id, true).renewImmediately, true, 'without delay, asked again');
    assert.equal(fleet.requestRenewal(id).renewImmediately, true, 'not undone by a request with delay');
    // Issued: still asked, until the agent connects with the new certificate (it may fail to store it).
    const issued = cert();
    assert.equal(fleet.setNextCertificate(id, first.fingerprint, issued).renewRequestedAt, asked);
    assert.equal(fleet.authorize(id, first.fingerprint).renewRequestedAt, asked, 'a connection with the old certificate is asked again');
    const renewed = fleet.authorize(id, issued.fingerprint);
    assert.equal(renewed.renewRequestedAt, undefined);
    assert.equal(renewed.renewImmediately, undefined);
    assert.throws(() => fleet.requestRenewal('ag_ffffffffffffffff'), code('HADES_ERR_AGENT_UNKNOWN'));
    fleet.revoke(id);
    assert.throws(() => fleet.requestRenewal(id), code('HADES_ERR_AGENT_REVOKED'));
  });

  it('adds the renewal columns to a database made before them', () => {
    const file = path.join(folder(), 'old.db');
    mkdirSync(path.dirname(file), { recursive: true });
    const old = openDatabase(file);
    const id = new FleetRegistry(old).enroll(host('web-1'), { ...cert(), agentId: 'ag_00000000000000c3' }).id;
    // As the first version left it: without the second migration and its columns.
    old.exec(`DELETE FROM schema_migrations WHERE module = 'fleet' AND step = 1;
      DROP INDEX agents_next_cert_fingerprint;
      ALTER TABLE agents DROP COLUMN next_cert_fingerprint; ALTER TABLE agents DROP COLUMN next_cert_serial;
      ALTER TABLE agents DROP COLUMN next_cert_not_after; ALTER TABLE agents DROP COLUMN next_cert_issued_at;
      ALTER TABLE agents DROP COLUMN cert_renewed_at; ALTER TABLE agents DROP COLUMN renew_requested_at;`);
    old.close();
    const reopened = openDatabase(file);
    const registry = new FleetRegistry(reopened);
    const agent = registry.get(id);
    assert.ok(agent);
    const next = cert();
    assert.equal(registry.setNextCertificate(id, agent.certFingerprint, next).nextCert?.fingerprint, next.fingerprint);
    reopened.close();
  });
});

describe('CertificateRenewal (the server)', () => {
  let pki: Pki;
  let fleet: FleetRegistry;
  let renewal: CertificateRenewal;
  let log: LogSink;
  beforeEach(async () => {
    pki ??= await Pki.open(folder(), { hostnames: [], ips: [] });
    fleet = new FleetRegistry(openDatabase(':memory:'));
    log = new LogSink();
    renewal = new CertificateRenewal({ pki, registry: fleet, log: sinkLogger(log, 'info') });
  });

  async function enrolled(): Promise<{ id: string; issued: IssuedCertificate; der: Uint8Array }> {
    const id = fleet.newAgentId();
    const issued = await pki.signAgentCsr((await newKeyAndCsr({ hostname: 'web-1' })).csrPem, id);
    fleet.enroll(host('web-1'), { ...issued, agentId: id });
    return { id, issued, der: new Uint8Array(new X509Certificate(issued.certPem).raw) };
  }

  it('renews, records the next certificate, and switches to it at its first connection', async () => {
    const { id, issued, der } = await enrolled();
    assert.deepEqual(renewal.authorize(der), { agentId: id, fingerprint: issued.fingerprint });
    const renewed = await renewal.renew(id, (await newKeyAndCsr({ agentId: id })).csrPem, der);
    assert.equal(fleet.get(id)?.nextCert?.fingerprint, renewed.fingerprint);
    assert.equal(renewal.authorize(new X509Certificate(renewed.certPem).raw).agentId, id);
    assert.throws(() => renewal.authorize(der), code('HADES_ERR_AGENT_UNKNOWN'), 'the old certificate is retired');
    const lines = log.lines().map((l) => l['msg']);
    assert.ok(lines.includes('agent certificate renewed'));
    assert.ok(lines.includes('agent uses its renewed certificate; the one before is refused from now on'));
  });

  it('refuses a request for another agent, a revoked agent, and a certificate no longer in use', async () => {
    const a = await enrolled();
    const b = await enrolled();
    await assert.rejects(renewal.renew(a.id, (await newKeyAndCsr({ agentId: b.id })).csrPem, a.der), code('HADES_ERR_RENEW_IDENTITY'));
    // Another agent's stream cannot act for a: the certificate presented names b.
    await assert.rejects(renewal.renew(a.id, (await newKeyAndCsr({ agentId: a.id })).csrPem, b.der), code('HADES_ERR_AGENT_UNKNOWN'));
    assert.equal(fleet.get(a.id)?.nextCert, undefined, 'nothing recorded');
    assert.equal(fleet.get(b.id)?.nextCert, undefined, 'nothing recorded');

    const renewed = await renewal.renew(a.id, (await newKeyAndCsr({ agentId: a.id })).csrPem, a.der);
    renewal.authorize(new X509Certificate(renewed.certPem).raw);
    await assert.rejects(renewal.renew(a.id, (await newKeyAndCsr({ agentId: a.id })).csrPem, a.der), code('HADES_ERR_AGENT_UNKNOWN', /no longer in use/));

    fleet.revoke(b.id);
    await assert.rejects(renewal.renew(b.id, (await newKeyAndCsr({ agentId: b.id })).csrPem, b.der), code('HADES_ERR_AGENT_REVOKED'));
    assert.ok(log.lines().some((l) => l['msg'] === 'agent certificate renewal refused' && l['code'] === 'HADES_ERR_AGENT_REVOKED'));
  });

  it('refuses an agent revoked while its certificate was being signed', async () => {
    const { id, der } = await enrolled();
    const signing = renewal.renew(id, (await newKeyAndCsr({ agentId: id })).csrPem, der);
    fleet.revoke(id);
    await assert.rejects(signing, code('HADES_ERR_AGENT_REVOKED'));
    assert.equal(fleet.get(id)?.nextCert, undefined);
  });
});

describe('the agent: when to renew, and what it accepts', () => {
  it('is due with a third of the lifetime left, or the configured window capped at half the lifetime', () => {
    const start = Date.parse('2030-01-01T00:00:00Z');
    const end = start + 360 * DAY;
    assert.equal(renewalDue(start, end, 0), start + 240 * DAY);
    assert.equal(renewalDue(start, end, 30 * DAY), end - 30 * DAY);
    assert.equal(renewalDue(start, end, 3650 * DAY), start + 180 * DAY, 'never due at once');
    assert.equal(renewalDue(start, start, 0), start);
  });

  it('accepts only a certificate for its new key, from its CA, naming itself, valid now', async () => {
    const pki = await Pki.open(folder(), { hostnames: [], ips: [] });
    const other = await Pki.open(folder(), { hostnames: [], ips: [] });
    const id = 'ag_00000000000000d4';
    const { keyPem, csrPem } = await newKeyAndCsr({ agentId: id });
    const good = await pki.signAgentCsr(csrPem, id);
    const now = Date.now();
    assert.ok(checkRenewedCertificate(good.certPem, keyPem, { agentId: id, caPem: pki.caPem }, now));
    const failed = (pattern: RegExp) => code('HADES_ERR_RENEW_FAILED', pattern);
    assert.throws(() => checkRenewedCertificate('garbage', keyPem, { agentId: id, caPem: pki.caPem }, now), failed(/does not parse/));
    const otherKey = (await newKeyAndCsr({ agentId: id })).keyPem;
    assert.throws(() => checkRenewedCertificate(good.certPem, otherKey, { agentId: id, caPem: pki.caPem }, now), failed(/new key/));
    const foreign = (await other.signAgentCsr(csrPem, id)).certPem;
    assert.throws(() => checkRenewedCertificate(foreign, keyPem, { agentId: id, caPem: pki.caPem }, now), failed(/CA/));
    const someoneElse = (await pki.signAgentCsr(csrPem, 'ag_00000000000000e5')).certPem;
    assert.throws(() => checkRenewedCertificate(someoneElse, keyPem, { agentId: id, caPem: pki.caPem }, now), failed(/does not name/));
    assert.throws(() => checkRenewedCertificate(good.certPem, keyPem, { agentId: id, caPem: pki.caPem }, now + 400 * DAY), failed(/not valid now/));
  });

  it('accepts a certificate that starts later by its own clock than by the server\'s (a host whose clock lags)', async () => {
    // The server backdates notBefore by an hour only; it, not the agent, checks the client
    // certificate's dates at each connection. An agent whose clock lags by more than that and
    // refused the certificate would fail every renewal until its current certificate ran out.
    const pki = await Pki.open(folder(), { hostnames: [], ips: [] });
    const id = 'ag_00000000000000d5';
    const { keyPem, csrPem } = await newKeyAndCsr({ agentId: id });
    const issued = await pki.signAgentCsr(csrPem, id);
    const lagging = Date.now() - 3 * 60 * MINUTE;
    assert.ok(checkRenewedCertificate(issued.certPem, keyPem, { agentId: id, caPem: pki.caPem }, lagging));
  });
});

/** An enrolled agent's identity folder, as enroll() leaves it, with a certificate from `pki`. */
async function enrolledFolder(pki: Pki, agentId: string, days = AGENT_CERT_DAYS): Promise<{ dataDir: string; identity: Identity }> {
  const dataDir = folder();
  const dir = path.join(dataDir, 'identity');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const { keyPem, csrPem } = await newKeyAndCsr({ hostname: 'web-1' });
  const { certPem } = await pki.signAgentCsr(csrPem, agentId, days);
  writeFileSync(path.join(dir, 'key.pem'), keyPem, { mode: 0o600 });
  writeFileSync(path.join(dir, 'cert.pem'), certPem, { mode: 0o600 });
  writeFileSync(path.join(dir, 'ca.pem'), pki.caPem, { mode: 0o600 });
  writeFileSync(path.join(dir, 'agent.json'), `${JSON.stringify({ agentId, gateways: ['127.0.0.1:1'] })}\n`, { mode: 0o600 });
  const identity = loadIdentity(dataDir);
  assert.ok(identity);
  return { dataDir, identity };
}

describe('the agent: storing a renewed identity', () => {
  it('replaces key and certificate together (0600), removes the old pair, and loads the new one', async () => {
    const pki = await Pki.open(folder(), { hostnames: [], ips: [] });
    const id = 'ag_00000000000000f6';
    const { dataDir, identity } = await enrolledFolder(pki, id);
    const dir = path.join(dataDir, 'identity');
    const { keyPem, csrPem } = await newKeyAndCsr({ agentId: id });
    const issued = await pki.renewAgentCsr(csrPem, id, identity.certPem);
    saveRenewedIdentity(dataDir, { ...identity, keyPem, certPem: issued.certPem }, issued.serial);
    const files = readdirSync(dir).sort();
    assert.deepEqual(files, ['agent.json', 'ca.pem', `cert-${issued.serial}.pem`, `key-${issued.serial}.pem`]);
    for (const name of files) assert.equal(statSync(path.join(dir, name)).mode & 0o777, 0o600, name);
    const loaded = loadIdentity(dataDir);
    assert.deepEqual(loaded, { ...identity, keyPem, certPem: issued.certPem });
    assert.deepEqual(JSON.parse(readFileSync(path.join(dir, 'agent.json'), 'utf8')), { agentId: id, gateways: ['127.0.0.1:1'], key: `key-${issued.serial}.pem`, cert: `cert-${issued.serial}.pem` });

    // A renewal interrupted before its commit leaves the pair in use untouched (and its files
    // are removed by the next renewal).
    writeFileSync(path.join(dir, 'key-0badc0de.pem'), 'half-written', { mode: 0o600 });
    assert.deepEqual(loadIdentity(dataDir), loaded);
    const again = await newKeyAndCsr({ agentId: id });
    const second = await pki.renewAgentCsr(again.csrPem, id, issued.certPem);
    saveRenewedIdentity(dataDir, { ...identity, keyPem: again.keyPem, certPem: second.certPem }, second.serial);
    assert.deepEqual(readdirSync(dir).sort(), ['agent.json', 'ca.pem', `cert-${second.serial}.pem`, `key-${second.serial}.pem`]);
    assert.equal(loadIdentity(dataDir)?.certPem, second.certPem);
  });

  it('refuses to load a key that is not the certificate\'s', async () => {
    const pki = await Pki.open(folder(), { hostnames: [], ips: [] });
    const { dataDir } = await enrolledFolder(pki, 'ag_00000000000000a7');
    writeFileSync(path.join(dataDir, 'identity', 'key.pem'), (await newKeyAndCsr({ hostname: 'x' })).keyPem, { mode: 0o600 });
    assert.throws(() => loadIdentity(dataDir), code('HADES_ERR_PKI', /not the key of its certificate/));
  });
});

describe('the agent: CertificateRenewer', () => {
  /**
   * Ports whose server is `pki`'s CA (opened again with the real clock when `pki` was opened
   * with an earlier one); `failures` requests fail first.
   */
  function ports(backdated: Pki, options: { connected?: boolean; failures?: number; refuse?: HadesError } = {}) {
    const server = Pki.open(path.dirname(backdated.paths.dir), { hostnames: [], ips: [] });
    const state = { connected: options.connected ?? true, requests: 0, failures: options.failures ?? 0, renewed: [] as Identity[], immediately: [] as boolean[], current: '' };
    const p: RenewalPorts = {
      connected: () => state.connected,
      request: async (csrPem) => {
        state.requests++;
        if (options.refuse) throw options.refuse;
        if (state.failures > 0) {
          state.failures--;
          throw new HadesError('HADES_ERR_RENEW_FAILED', 'no answer');
        }
        const id = new x509.Pkcs10CertificateRequest(csrPem).subjectName.getField('CN')[0]!;
        return (await (await server).renewAgentCsr(csrPem, id, state.current)).certPem;
      },
      renewed: (identity, immediately) => {
        state.renewed.push(identity);
        state.immediately.push(immediately);
        state.current = identity.certPem;
      },
    };
    return { p, state };
  }

  it('renews a certificate that is due once a stream is up, stores it, and is not due again', async () => {
    // Issued 250 days ago for a year: 115 days left, less than a third.
    const pki = await Pki.open(folder(), { hostnames: [], ips: [], now: () => Date.now() - 250 * DAY });
    const id = 'ag_00000000000000b8';
    const { dataDir, identity } = await enrolledFolder(pki, id);
    const { p, state } = ports(pki, { connected: false });
    state.current = identity.certPem;
    const log = new LogSink();
    const renewer = new CertificateRenewer(identity, { dataDir, renewBeforeMs: 0, jitterMs: 0, retryMinMs: 10, retryMaxMs: 20 }, p, sinkLogger(log, 'info'));
    try {
      assert.ok(renewer.dueAt() < Date.now());
      renewer.start();
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(state.requests, 0, 'no request without a stream');
      state.connected = true;
      renewer.connected();
      await waitUntil('the renewal', () => state.renewed.length === 1 || undefined, 10_000, 10);
      const renewed = state.renewed[0]!;
      assert.equal(renewed.agentId, id);
      assert.notEqual(renewed.keyPem, identity.keyPem);
      assert.deepEqual(loadIdentity(dataDir), renewed, 'stored before it is handed over');
      assert.ok(renewer.dueAt() > Date.now() + 200 * DAY, 'the new certificate is not due');
      assert.deepEqual(renewer.stats, { renewals: 1, failures: 0 });
      renewer.connected();
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(state.requests, 1, 'not renewed again');
      assert.ok(log.lines().some((l) => l['msg'] === 'agent certificate renewed; the next connection uses it'));
    } finally {
      renewer.close();
    }
  });

  it('retries a failed renewal with backoff, logging a coded warning', async () => {
    const pki = await Pki.open(folder(), { hostnames: [], ips: [], now: () => Date.now() - 300 * DAY });
    const { dataDir, identity } = await enrolledFolder(pki, 'ag_00000000000000c9');
    const { p, state } = ports(pki, { failures: 2 });
    state.current = identity.certPem;
    const log = new LogSink();
    const renewer = new CertificateRenewer(identity, { dataDir, renewBeforeMs: 0, jitterMs: 0, retryMinMs: 20, retryMaxMs: 40 }, p, sinkLogger(log, 'info'));
    try {
      renewer.start();
      await waitUntil('the renewal', () => state.renewed.length === 1 || undefined, 10_000, 10);
      assert.equal(state.requests, 3);
      assert.deepEqual(renewer.stats, { renewals: 1, failures: 2 });
      const warnings = log.lines().filter((l) => l['msg'] === 'agent certificate renewal failed; the current certificate stays in use');
      assert.equal(warnings.length, 2);
      for (const w of warnings) {
        assert.equal(w['code'], 'HADES_ERR_RENEW_FAILED');
        assert.equal(typeof w['retry_in_ms'], 'number');
        assert.match(String(w['expires']), /^\d{4}-/);
      }
    } finally {
      renewer.close();
    }
  });

  it('renews a certificate that is not due when the server asks, and keeps asking after a refusal', async () => {
    const pki = await Pki.open(folder(), { hostnames: [], ips: [] });
    const { dataDir, identity } = await enrolledFolder(pki, 'ag_00000000000000da');
    const refused = ports(pki, { refuse: new HadesError('HADES_ERR_AGENT_REVOKED', 'revoked') });
    const log = new LogSink();
    const first = new CertificateRenewer(identity, { dataDir, renewBeforeMs: 0, jitterMs: 0, retryMinMs: 30_000 }, refused.p, sinkLogger(log, 'info'));
    try {
      first.start();
      await new Promise((resolve) => setTimeout(resolve, 30));
      assert.equal(refused.state.requests, 0, 'not due');
      first.requestedByServer('asked by an operator');
      await waitUntil('the refusal', () => first.stats.failures === 1 || undefined, 10_000, 10);
      assert.equal(first.stats.lastError, 'HADES_ERR_AGENT_REVOKED');
      assert.deepEqual(loadIdentity(dataDir), identity, 'nothing changed');
      assert.ok(log.lines().some((l) => l['msg'] === 'agent certificate renewal failed; the current certificate stays in use' && l['cause'] === 'HADES_ERR_AGENT_REVOKED'));
    } finally {
      first.close();
    }
    const { p, state } = ports(pki);
    state.current = identity.certPem;
    const second = new CertificateRenewer(identity, { dataDir, renewBeforeMs: 0, jitterMs: 0 }, p, sinkLogger());
    try {
      second.start();
      second.requestedByServer('asked by an operator');
      await waitUntil('the renewal', () => state.renewed.length === 1 || undefined, 10_000, 10);
    } finally {
      second.close();
    }
  });

  it('renews at once when the server asks without delay (--now) after a failed try, instead of waiting for its backoff', async () => {
    const pki = await Pki.open(folder(), { hostnames: [], ips: [] });
    const { dataDir, identity } = await enrolledFolder(pki, 'ag_00000000000000dc');
    const { p, state } = ports(pki, { failures: 1 });
    state.current = identity.certPem;
    const renewer = new CertificateRenewer(identity, { dataDir, renewBeforeMs: 0, jitterMs: 0, retryMinMs: 3_600_000 }, p, sinkLogger());
    try {
      renewer.start();
      renewer.requestedByServer('asked by an operator');
      await waitUntil('the failed try', () => renewer.stats.failures === 1 || undefined, 10_000, 10);
      renewer.requestedByServer('asked by an operator', true);
      await waitUntil('the renewal', () => state.renewed.length === 1 || undefined, 10_000, 10);
      assert.deepEqual(state.immediately, [true]);
    } finally {
      renewer.close();
    }
  });

  it('renews at once when the server asks without delay (--now), also when a request waits for its delay, and says so to the transport', async () => {
    const pki = await Pki.open(folder(), { hostnames: [], ips: [] });
    const { dataDir, identity } = await enrolledFolder(pki, 'ag_00000000000000db');
    const { p, state } = ports(pki);
    state.current = identity.certPem;
    const log = new LogSink();
    // An hour of jitter: a request with it would not be acted on within the test.
    const renewer = new CertificateRenewer(identity, { dataDir, renewBeforeMs: 0, jitterMs: 3_600_000 }, p, sinkLogger(log, 'info'), { random: () => 0.999 });
    try {
      renewer.start();
      renewer.requestedByServer('asked by an operator');
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(state.requests, 0, 'waits for its delay');
      renewer.requestedByServer('asked by an operator', true);
      await waitUntil('the renewal', () => state.renewed.length === 1 || undefined, 10_000, 10);
      assert.deepEqual(state.immediately, [true], 'the transport reconnects at once');
      assert.ok(log.lines().some((l) => l['msg'] === 'the server asks for a certificate renewal' && l['immediately'] === true && l['in_ms'] === 0));
      // The next request with delay is one with delay again once the first was done.
      renewer.requestedByServer('asked by an operator');
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(state.renewed.length, 1, 'a later ordinary request waits for its delay');
    } finally {
      renewer.close();
    }
  });
});
