import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey, webcrypto } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { HadesError } from '../../src/common/errors.js';
import { Gateway } from '../../src/server/gateway.js';
import { Pki, normalizeSerial, x509 } from '../../src/server/pki.js';
import { sinkLogger } from '../helpers/server.js';

const root = mkdtempSync(path.join(tmpdir(), 'hades-pki-'));
after(() => rmSync(root, { recursive: true, force: true }));
let folders = 0;
const folder = (): string => path.join(root, `d${++folders}`);
const DAY = 86_400_000;

const P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };

/**
 * What an agent does to enroll: make its own key pair (the private key never leaves the host)
 * and a PKCS#10 request signed with it. The server ignores the subject.
 */
async function agentCsr(algorithm: Record<string, unknown> = P256, subject = 'CN=agent'): Promise<{ csrPem: string; keyPem: string }> {
  const keys = await webcrypto.subtle.generateKey(algorithm as unknown as webcrypto.EcKeyGenParams, true, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: subject, keys, signingAlgorithm: algorithm });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }).toString();
  return { csrPem: csr.toString('pem'), keyPem };
}

const code = (expected: string) => (error: unknown) => {
  assert.ok(error instanceof HadesError, `expected a HadesError, got ${String(error)}`);
  assert.equal(error.code, expected);
  return true;
};

const mode = (file: string): number => statSync(file).mode & 0o777;

/** Connects a TLS client to a server that requires client certificates; resolves what happened. */
async function handshake(
  pki: Pki,
  client: { key: string; cert: string },
): Promise<{ received: string; serverErrors: string[]; peerAgent: string | undefined }> {
  const serverErrors: string[] = [];
  let peerAgent: string | undefined;
  const server = tls.createServer({
    key: pki.serverKeyPem,
    cert: pki.serverCertPem,
    ca: [pki.caPem],
    requestCert: true,
    rejectUnauthorized: true,
  });
  server.on('tlsClientError', (error) => serverErrors.push(error.message));
  server.on('secureConnection', (socket) => {
    peerAgent = pki.agentIdentity(socket.getPeerCertificate().raw)?.agentId;
    socket.end(`hello ${peerAgent ?? '?'}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    const received = await new Promise<string>((resolve) => {
      let data = '';
      const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: [pki.caPem], key: client.key, cert: client.cert });
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => (data += chunk));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(data));
    });
    // The server reports a refused handshake a moment after the client sees the connection close.
    for (let i = 0; i < 50 && received === '' && serverErrors.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    return { received, serverErrors, peerAgent };
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

describe('Pki: creation and reload', () => {
  const dir = folder();
  let first: Pki;
  before(async () => {
    first = await Pki.open(dir, { hostnames: ['hades.example.org'], ips: ['10.1.2.3', '::1'] });
  });

  it('creates the CA and the server certificate, private to the server', () => {
    assert.deepEqual(first.state, { ca: 'created', server: 'created' });
    assert.equal(mode(first.paths.dir), 0o700);
    for (const file of [first.paths.caCert, first.paths.caKey, first.paths.serverCert, first.paths.serverKey]) assert.equal(mode(file), 0o600, file);
    assert.equal(readFileSync(first.paths.caCert, 'utf8'), first.caPem);
    assert.match(first.caFingerprint, /^[0-9a-f]{64}$/);
  });

  it('makes a P-256 CA valid about 10 years', () => {
    const ca = new X509Certificate(first.caPem);
    assert.equal(ca.ca, true);
    assert.equal(ca.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    const years = (new Date(ca.validTo).getTime() - Date.now()) / (365.25 * DAY);
    assert.ok(years > 9.9 && years < 10.1, `${years}`);
    assert.equal(ca.fingerprint256.replaceAll(':', '').toLowerCase(), first.caFingerprint);
  });

  it('signs a server certificate with the requested names, localhost and 127.0.0.1', () => {
    const ca = new X509Certificate(first.caPem);
    const server = new X509Certificate(first.serverCertPem);
    assert.ok(server.checkIssued(ca));
    assert.ok(server.verify(ca.publicKey));
    assert.equal(server.ca, false);
    assert.deepEqual(server.keyUsage, ['1.3.6.1.5.5.7.3.1']);
    const sans = (server.subjectAltName ?? '').split(', ').sort();
    assert.deepEqual(sans, ['DNS:hades.example.org', 'DNS:localhost', 'IP Address:0:0:0:0:0:0:0:1', 'IP Address:10.1.2.3', 'IP Address:127.0.0.1'].sort());
    assert.equal(server.checkHost('hades.example.org'), 'hades.example.org');
    assert.equal(server.checkIP('127.0.0.1'), '127.0.0.1');
    const days = (new Date(server.validTo).getTime() - Date.now()) / DAY;
    assert.ok(days > 725 && days < 735, `${days}`);
    assert.equal(createPrivateKey(first.serverKeyPem).asymmetricKeyDetails?.namedCurve, 'prime256v1');
  });

  it('loads the same files unchanged on the next start', async () => {
    const again = await Pki.open(dir, { hostnames: ['HADES.example.org'], ips: ['10.1.2.3', '0:0:0:0:0:0:0:1'] });
    assert.deepEqual(again.state, { ca: 'loaded', server: 'loaded' });
    assert.equal(again.caPem, first.caPem);
    assert.equal(again.caFingerprint, first.caFingerprint);
    assert.equal(again.serverCertPem, first.serverCertPem);
    assert.equal(again.serverKeyPem, first.serverKeyPem);
  });

  it('renews the server certificate, not the CA, when a requested name is missing', async () => {
    const more = await Pki.open(dir, { hostnames: ['hades.example.org', 'other.example.org'], ips: ['10.1.2.3', '::1'] });
    assert.equal(more.state.server, 'renewed');
    assert.match(more.state.renewReason ?? '', /other\.example\.org/);
    assert.equal(more.caPem, first.caPem);
    assert.notEqual(more.serverCertPem, first.serverCertPem);
    assert.equal(new X509Certificate(more.serverCertPem).checkHost('other.example.org'), 'other.example.org');
    assert.equal(mode(more.paths.serverKey), 0o600);
    // A later start with fewer names keeps it.
    assert.equal((await Pki.open(dir, { hostnames: [], ips: [] })).state.server, 'loaded');
  });

  it('renews the server certificate within 30 days of its expiry', async () => {
    const current = await Pki.open(dir, { hostnames: [], ips: [] });
    const late = new Date(current.serverNotAfter).getTime() - 20 * DAY;
    const renewed = await Pki.open(dir, { hostnames: [], ips: [], now: () => late });
    assert.equal(renewed.state.server, 'renewed');
    assert.match(renewed.state.renewReason ?? '', /expires/);
    assert.ok(new Date(renewed.serverNotAfter).getTime() > late + 700 * DAY);
    assert.equal(renewed.caPem, first.caPem);
  });

  it('warns when its CA ends within a year (agent certificates end by then), pointing at its rotation', async () => {
    const now = await Pki.open(dir, { hostnames: [], ips: [] });
    assert.equal(now.caExpiryWarning(), undefined, 'a new CA has ten years');
    const caEnd = new Date(now.caNotAfter).getTime();
    const late = await Pki.open(dir, { hostnames: [], ips: [], now: () => caEnd - 100 * DAY });
    assert.match(late.caExpiryWarning() ?? '', /^the CA ends on .* \(in 100 days\): .*hades server ca rotate.*enrolled again/);
  });

  it('reissues a server certificate whose key was lost', async () => {
    rmSync(first.paths.serverKey);
    const again = await Pki.open(dir, { hostnames: [], ips: [] });
    assert.equal(again.state.server, 'created');
    assert.equal(again.caPem, first.caPem);
  });

  it('refuses a key file others can read, and a CA certificate without its key', async () => {
    chmodSync(first.paths.caKey, 0o644);
    await assert.rejects(Pki.open(dir, { hostnames: [], ips: [] }), (error: unknown) => code('HADES_ERR_PKI')(error) && /chmod 600/.test((error as Error).message));
    chmodSync(first.paths.caKey, 0o600);
    const other = folder();
    const made = await Pki.open(other, { hostnames: [], ips: [] });
    rmSync(made.paths.caKey);
    await assert.rejects(Pki.open(other, { hostnames: [], ips: [] }), code('HADES_ERR_CA_FILE_INVALID'));
  });

  it('refuses a name that is neither a host name nor an IP address', async () => {
    await assert.rejects(Pki.open(folder(), { hostnames: ['bad name,O=x'], ips: [] }), code('HADES_ERR_PKI'));
  });
});

describe('Pki: the server certificate of a server that keeps running', () => {
  it('is reissued, without a restart, once it nears its end; the gateway presents the new one to new connections', async () => {
    // A server started 20 days before its certificate's last 30 days, then left running: its
    // certificate was only ever renewed at a start, so after 50 days every agent's TLS check
    // of the gateway (and every API client's) failed, until someone restarted the server.
    let clock = Date.now();
    const pki = await Pki.open(folder(), { hostnames: [], ips: [], now: () => clock });
    const first = { cert: pki.serverCertPem, notAfter: Date.parse(pki.serverNotAfter) };
    assert.equal(await pki.renewServerCertificate(), undefined, 'not due: nothing changes');
    assert.equal(pki.serverCertPem, first.cert);

    const gateway = new Gateway({
      caPem: pki.caPem,
      certPem: pki.serverCertPem,
      keyPem: pki.serverKeyPem,
      serverVersion: 'test',
      log: sinkLogger(),
      hooks: { authorize: () => ({ agentId: 'ag_00000000000000aa' }), prepare: () => Promise.resolve({ rejected: 0 }), store: () => ({ stored: 0, duplicates: 0 }) },
    });
    const { csrPem, keyPem } = await agentCsr();
    const issued = await pki.signAgentCsr(csrPem, 'ag_00000000000000aa');
    // The certificate presented, whatever its dates (the test's clock moves, the machine's does not).
    const presented = async (): Promise<string> =>
      await new Promise<string>((resolve, reject) => {
        const socket = tls.connect({ host: '127.0.0.1', port: gateway.port, servername: 'localhost', rejectUnauthorized: false, key: keyPem, cert: issued.certPem, ALPNProtocols: ['h2'] }, () => {
          const pem = new X509Certificate(socket.getPeerCertificate().raw).toString();
          socket.destroy();
          resolve(pem);
        });
        socket.on('error', reject);
      });
    await gateway.listen('127.0.0.1:0');
    try {
      assert.equal(await presented(), new X509Certificate(first.cert).toString());
      clock = first.notAfter - 20 * DAY;
      const reason = await pki.renewServerCertificate();
      assert.match(reason ?? '', /expires/);
      assert.notEqual(pki.serverCertPem, first.cert);
      assert.ok(Date.parse(pki.serverNotAfter) > clock + 700 * DAY);
      assert.ok(createPrivateKey(pki.serverKeyPem), 'with its new key');
      assert.ok(new X509Certificate(pki.serverCertPem).checkPrivateKey(createPrivateKey(pki.serverKeyPem)));
      assert.equal(readFileSync(pki.paths.serverCert, 'utf8'), pki.serverCertPem, 'stored for the next start');
      assert.equal(mode(pki.paths.serverKey), 0o600);
      gateway.useServerCertificate(pki.serverCertPem, pki.serverKeyPem);
      assert.equal(await presented(), new X509Certificate(pki.serverCertPem).toString(), 'new connections get the new certificate');
      assert.equal(await pki.renewServerCertificate(), undefined, 'not due again');
    } finally {
      await gateway.close();
    }
  });
});

describe('Pki: agent certificates', () => {
  let pki: Pki;
  let foreign: Pki;
  before(async () => {
    pki = await Pki.open(folder(), { hostnames: ['hades.test'], ips: [] });
    foreign = await Pki.open(folder(), { hostnames: ['hades.test'], ips: [] });
  });

  it('issues a client certificate for the CSR key, named by the agent id only', async () => {
    const { csrPem } = await agentCsr(P256, 'CN=root, O=Evil Corp');
    const issued = await pki.signAgentCsr(csrPem, 'ag_0123456789abcdef');
    const cert = new X509Certificate(issued.certPem);
    assert.equal(cert.subject, 'CN=ag_0123456789abcdef');
    assert.equal(cert.subjectAltName, 'URI:hades://agent/ag_0123456789abcdef');
    assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.2']);
    assert.equal(cert.ca, false);
    assert.ok(cert.verify(new X509Certificate(pki.caPem).publicKey));
    assert.equal(issued.fingerprint, cert.fingerprint256.replaceAll(':', '').toLowerCase());
    assert.equal(issued.serial, normalizeSerial(cert.serialNumber));
    assert.ok(issued.serial.length >= 28 && issued.serial.length <= 34, issued.serial);
    const days = (new Date(issued.notAfter).getTime() - Date.now()) / DAY;
    assert.ok(days > 364 && days < 366, `${days}`);
    const other = await pki.signAgentCsr(csrPem, 'ag_0123456789abcdef', 30);
    assert.notEqual(other.serial, issued.serial);
    assert.ok((new Date(other.notAfter).getTime() - Date.now()) / DAY < 31);
  });

  it('accepts P-384 and RSA 2048 keys', async () => {
    const p384 = await agentCsr({ name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' });
    assert.equal(pki.agentIdentity((await pki.signAgentCsr(p384.csrPem, 'ag_p384')).certPem)?.agentId, 'ag_p384');
    const rsa = await agentCsr({ name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' });
    assert.equal(pki.agentIdentity((await pki.signAgentCsr(rsa.csrPem, 'ag_rsa')).certPem)?.agentId, 'ag_rsa');
  });

  it('refuses a CSR whose signature does not verify', async () => {
    const { csrPem } = await agentCsr();
    const der = Buffer.from(x509.PemConverter.decodeFirst(csrPem));
    der[der.length - 1] = (der[der.length - 1] ?? 0) ^ 0x01;
    const tampered = x509.PemConverter.encode(der, 'CERTIFICATE REQUEST');
    await assert.rejects(pki.signAgentCsr(tampered, 'ag_x'), code('HADES_ERR_ENROLL_REQUEST_INVALID'));
  });

  it('refuses weak or unsupported keys, and garbage', async () => {
    const rsa1024 = await agentCsr({ name: 'RSASSA-PKCS1-v1_5', modulusLength: 1024, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' });
    await assert.rejects(pki.signAgentCsr(rsa1024.csrPem, 'ag_x'), (error: unknown) => code('HADES_ERR_ENROLL_REQUEST_INVALID')(error) && /1024 bits/.test((error as Error).message));
    const p521 = await agentCsr({ name: 'ECDSA', namedCurve: 'P-521', hash: 'SHA-512' });
    await assert.rejects(pki.signAgentCsr(p521.csrPem, 'ag_x'), code('HADES_ERR_ENROLL_REQUEST_INVALID'));
    await assert.rejects(pki.signAgentCsr('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n', 'ag_x'), code('HADES_ERR_ENROLL_REQUEST_INVALID'));
    await assert.rejects(pki.signAgentCsr('hello', 'ag_x'), code('HADES_ERR_ENROLL_REQUEST_INVALID'));
    await assert.rejects(pki.signAgentCsr('x'.repeat(100_000), 'ag_x'), code('HADES_ERR_ENROLL_REQUEST_INVALID'));
  });

  it('recognises its own agent certificates and nothing else', async () => {
    const { csrPem } = await agentCsr();
    const ours = await pki.signAgentCsr(csrPem, 'ag_ours');
    const theirs = await foreign.signAgentCsr(csrPem, 'ag_ours');
    const id = pki.agentIdentity(ours.certPem);
    assert.deepEqual(id, { agentId: 'ag_ours', caSha256: pki.caFingerprint, fingerprint: ours.fingerprint, serial: ours.serial, notAfter: ours.notAfter });
    assert.equal(ours.caSha256, pki.caFingerprint);
    assert.deepEqual(pki.agentIdentity(new X509Certificate(ours.certPem).raw), id, 'DER works as PEM does');
    assert.equal(pki.agentIdentity(theirs.certPem), undefined, 'another CA');
    assert.equal(pki.agentIdentity(pki.serverCertPem), undefined, 'the server certificate is no agent');
    assert.equal(pki.agentIdentity(pki.caPem), undefined, 'the CA is no agent');
    assert.equal(pki.agentIdentity('not a certificate'), undefined);
    assert.equal(pki.agentIdentity(new Uint8Array([1, 2, 3])), undefined);
    assert.equal(pki.agentIdentity(ours.certPem, new Date(ours.notAfter).getTime() + 1000), undefined, 'expired');
  });

  it('completes a mutual TLS handshake with a certificate it issued', async () => {
    const { csrPem, keyPem } = await agentCsr();
    const issued = await pki.signAgentCsr(csrPem, 'ag_tls');
    const result = await handshake(pki, { key: keyPem, cert: issued.certPem });
    assert.equal(result.received, 'hello ag_tls');
    assert.equal(result.peerAgent, 'ag_tls');
    assert.deepEqual(result.serverErrors, []);
  });

  it('fails the handshake of a client certificate from another CA', async () => {
    const { csrPem, keyPem } = await agentCsr();
    const issued = await foreign.signAgentCsr(csrPem, 'ag_tls');
    const result = await handshake(pki, { key: keyPem, cert: issued.certPem });
    assert.equal(result.received, '');
    assert.equal(result.peerAgent, undefined);
    assert.equal(result.serverErrors.length, 1);
  });
});
