/**
 * The server's certificate authority. On first start it creates, in `<dataDir>/pki/`, a CA (an
 * ECDSA P-256 key and a self-signed certificate valid 10 years) and a server certificate signed
 * by it (P-256, 2 years, SANs for the configured names plus `localhost` and `127.0.0.1`); later
 * starts load them, and reissue the server certificate when it expires within 30 days, lacks a
 * requested name, or no longer matches its key or the CA; a server that keeps running reissues
 * it too when it nears its end (`renewServerCertificate`, which the server calls twice a day). The CA is never replaced silently:
 * every enrolled agent holds a certificate it issued.
 *
 * Agents enroll with a certificate request (PKCS#10); `signAgentCsr` issues them a client
 * certificate whose identity is the agent id (CN and the URI SAN `hades://agent/<id>`), and
 * `agentIdentity` maps the certificate a TLS peer presented back to that id, after checking
 * that this CA issued it. Before their certificate expires, agents renew it with a request for
 * a new key that names their own id (`renewAgentCsr`). Revocation is not done with CRLs: the server is the only party that
 * verifies agent certificates, and the fleet registry refuses revoked agents by fingerprint.
 *
 * Certificates are built with @peculiar/x509 over Node's WebCrypto (creation and signing are
 * asynchronous); the per-connection check uses Node's own X509Certificate, which is synchronous.
 */
// @peculiar/x509 (through tsyringe) needs the Reflect metadata API before it loads.
import 'reflect-metadata';
import { createHash, createPrivateKey, createPublicKey, randomBytes, webcrypto, X509Certificate, type KeyObject } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import type * as X509 from '@peculiar/x509';
import { HadesError, isHadesError } from '../common/errors.js';
import { writePrivateFile } from '../runtime/private-file.js';

// --- @peculiar/x509 loading ----------------------------------------------------------------


/**
 * The @peculiar/x509 module, loaded after reflect-metadata (which its tsyringe dependency
 * needs; imported above). Server code and tests that need the library take it from here.
 */
export const x509: typeof X509 = await import('@peculiar/x509');
x509.cryptoProvider.set(webcrypto);
const subtle = webcrypto.subtle;
type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

// --- constants -------------------------------------------------------------------------------

const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN_P256 = { name: 'ECDSA', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;
const CA_DAYS = 3650;
/** Lifetime of an agent's client certificate, at enrollment and at each renewal. */
export const AGENT_CERT_DAYS = 365;
const SERVER_DAYS = 730;
const RENEW_BEFORE_DAYS = 30;
/** notBefore is set this far in the past so that peers whose clocks lag accept new certificates. */
const BACKDATE_MS = 3_600_000;
const MAX_CSR_BYTES = 16 * 1024;
const AGENT_URI_PREFIX = 'hades://agent/';
const AGENT_ID_RE = /^[A-Za-z0-9_.-]{1,64}$/;
const HOSTNAME_RE = /^(?=.{1,253}$)(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const CLIENT_AUTH_OID = '1.3.6.1.5.5.7.3.2';
const SAN_OID = '2.5.29.17';

// --- public types ----------------------------------------------------------------------------

export interface PkiOptions {
  /** DNS names the server certificate must carry (`localhost` is always added). */
  readonly hostnames: readonly string[];
  /** IP addresses the server certificate must carry (`127.0.0.1` is always added). */
  readonly ips: readonly string[];
  /** Clock in milliseconds since the epoch (tests). */
  readonly now?: () => number;
}

/** A certificate issued to an agent. */
export interface IssuedCertificate {
  readonly certPem: string;
  /** Lower-case hex, without leading zero bytes. */
  readonly serial: string;
  /** SHA-256 of the certificate's DER, lower-case hex. */
  readonly fingerprint: string;
  /** ISO 8601. */
  readonly notAfter: string;
}

/** Who a peer certificate belongs to, when this CA issued it to an agent. */
export interface AgentIdentity {
  readonly agentId: string;
  readonly fingerprint: string;
  readonly serial: string;
  readonly notAfter: string;
}

export interface PkiPaths {
  readonly dir: string;
  readonly caCert: string;
  readonly caKey: string;
  readonly serverCert: string;
  readonly serverKey: string;
}

/** What `open` did, for the server's start-up log. */
export interface PkiState {
  readonly ca: 'created' | 'loaded';
  readonly server: 'created' | 'loaded' | 'renewed';
  /** Why the server certificate was reissued, when it was. */
  readonly renewReason?: string;
}

// --- helpers ---------------------------------------------------------------------------------

const reason = (cause: unknown): string => (cause instanceof Error ? cause.message : typeof cause === 'string' ? cause : 'unknown error');
const pkiError = (message: string, cause?: unknown): HadesError =>
  new HadesError('HADES_ERR_PKI', cause === undefined ? message : `${message}: ${reason(cause)}`, cause === undefined ? {} : { cause });

/** Node 20's X509Certificate gives its dates as OpenSSL text ("Jan  2 03:04:05 2030 GMT"). */
const validTo = (cert: X509Certificate): Date => new Date(cert.validTo);
const validFrom = (cert: X509Certificate): Date => new Date(cert.validFrom);

const sha256Hex = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

/** Serial numbers as lower-case hex without leading zero bytes, whatever printed them. */
export function normalizeSerial(hex: string): string {
  let s = hex.toLowerCase().replace(/[^0-9a-f]/g, '');
  if (s.length % 2 === 1) s = `0${s}`;
  while (s.length > 2 && s.startsWith('00')) s = s.slice(2);
  return s;
}

/** The canonical text of an IP address (IPv6 compressed, lower case), or undefined. */
function canonicalIp(ip: string): string | undefined {
  const version = isIP(ip);
  if (version === 4) return ip;
  if (version === 6) return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  return undefined;
}

/** Writes a key or certificate: mode 0600, atomically, the folder synced (runtime/private-file.ts). */
function writeSecretFile(file: string, text: string): void {
  try {
    writePrivateFile(file, text, { syncFolder: true });
  } catch (error) {
    throw pkiError(`cannot write ${file}`, error);
  }
}

const exists = (file: string): boolean => {
  try {
    statSync(file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw pkiError(`cannot read ${file}`, error);
  }
};

/** Reads a private key file, refusing one that others may read. */
function readKeyFile(file: string): string {
  try {
    const mode = statSync(file).mode & 0o777;
    if ((mode & 0o077) !== 0) {
      throw pkiError(`${file} is readable by others (mode ${mode.toString(8).padStart(4, '0')}); make it private with \`chmod 600 ${file}\` (and consider the key exposed)`);
    }
    return readFileSync(file, 'utf8');
  } catch (error) {
    if (isHadesError(error)) throw error;
    throw pkiError(`cannot read ${file}`, error);
  }
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw pkiError(`cannot read ${file}`, error);
  }
}

async function generateP256(): Promise<CryptoKeyPair> {
  return await subtle.generateKey(EC_P256, true, ['sign', 'verify']);
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await subtle.exportKey('pkcs8', key));
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }).toString();
}

/** Loads a P-256 private key for signing, with its public half as a KeyObject. */
async function loadP256(pem: string, file: string): Promise<{ signing: CryptoKey; publicKey: KeyObject }> {
  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey(pem);
  } catch (error) {
    throw pkiError(`${file} is not a private key`, error);
  }
  if (keyObject.asymmetricKeyType !== 'ec' || keyObject.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw pkiError(`${file} is not an ECDSA P-256 key`);
  }
  const der = keyObject.export({ format: 'der', type: 'pkcs8' });
  const signing = await subtle.importKey('pkcs8', der, EC_P256, false, ['sign']);
  return { signing, publicKey: createPublicKey(keyObject) };
}

const samePublicKey = (a: KeyObject, b: KeyObject): boolean =>
  a.export({ format: 'der', type: 'spki' }).equals(b.export({ format: 'der', type: 'spki' }));

function parseCert(pem: string, file: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (error) {
    throw pkiError(`${file} is not a certificate`, error);
  }
}

/** The DNS and IP SANs of a certificate, canonicalised. */
function sansOf(pem: string): { dns: Set<string>; ips: Set<string> } {
  const cert = new x509.X509Certificate(pem);
  const ext = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const dns = new Set<string>();
  const ips = new Set<string>();
  for (const name of ext?.names.items ?? []) {
    if (name.type === 'dns') dns.add(name.value.toLowerCase());
    else if (name.type === 'ip') {
      const ip = canonicalIp(name.value);
      if (ip !== undefined) ips.add(ip);
    }
  }
  return { dns, ips };
}

function randomSerial(): string {
  // 128 random bits; the library adds a leading zero byte when the top bit is set (DER INTEGERs
  // are signed) and strips leading zero bytes, so the serial stays positive and at most 17 bytes.
  return randomBytes(16).toString('hex');
}

function requestedNames(options: PkiOptions): { hostnames: string[]; ips: string[] } {
  const hostnames = new Set<string>(['localhost']);
  const ips = new Set<string>(['127.0.0.1']);
  for (const raw of [...options.hostnames, ...options.ips]) {
    const name = raw.trim();
    if (name === '') continue;
    const ip = canonicalIp(name.startsWith('[') && name.endsWith(']') ? name.slice(1, -1) : name);
    if (ip !== undefined) ips.add(ip);
    else if (HOSTNAME_RE.test(name)) hostnames.add(name.toLowerCase().replace(/\.$/, ''));
    else throw pkiError(`"${raw}" is neither a host name nor an IP address; it cannot go into the server certificate`);
  }
  return { hostnames: [...hostnames], ips: [...ips] };
}

/** A certificate request whose signature verified, with its key as a KeyObject. */
interface CheckedCsr {
  readonly request: X509.Pkcs10CertificateRequest;
  readonly spki: KeyObject;
}

function checkAgentId(agentId: string): void {
  if (!AGENT_ID_RE.test(agentId)) throw new HadesError('HADES_ERR_INTERNAL', `invalid agent id for a certificate: ${JSON.stringify(agentId)}`);
}

/**
 * Parses a PKCS#10 request and checks its key (EC P-256/P-384 or RSA of 2048 to 8192 bits) and
 * its signature (the requester holds the private key); refuses with `code` otherwise.
 */
async function checkCsr(csrPem: string, code: 'HADES_ERR_ENROLL_REQUEST_INVALID' | 'HADES_ERR_RENEW_REQUEST_INVALID'): Promise<CheckedCsr> {
  const invalid = (why: string, cause?: unknown): HadesError => new HadesError(code, `the certificate request ${why}`, cause === undefined ? {} : { cause });
  if (typeof csrPem !== 'string' || csrPem.length > MAX_CSR_BYTES) throw invalid(`is not a PEM text of at most ${MAX_CSR_BYTES} bytes`);
  let csr: X509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem);
  } catch (error) {
    throw invalid('does not parse as PKCS#10', error);
  }
  let spki: KeyObject;
  try {
    spki = createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: 'der', type: 'spki' });
  } catch (error) {
    throw invalid('carries a public key that does not parse', error);
  }
  const type = spki.asymmetricKeyType;
  const details = spki.asymmetricKeyDetails ?? {};
  if (type === 'ec') {
    if (details.namedCurve !== 'prime256v1' && details.namedCurve !== 'secp384r1') throw invalid(`uses the curve ${details.namedCurve ?? 'unknown'}; use P-256 or P-384`);
  } else if (type === 'rsa') {
    const bits = details.modulusLength ?? 0;
    if (bits < 2048 || bits > 8192) throw invalid(`has an RSA key of ${bits} bits; use 2048 to 8192`);
  } else {
    throw invalid(`has a ${type ?? 'unknown'} key; use EC P-256/P-384 or RSA >= 2048`);
  }
  let verified: boolean;
  try {
    verified = await csr.verify();
  } catch (error) {
    throw invalid('signature cannot be checked', error);
  }
  if (!verified) throw invalid('signature does not verify against its public key');
  return { request: csr, spki };
}

/**
 * The agent ids a certificate request names: its subject's CNs, and the `hades://agent/<id>`
 * URI SANs it asks for (any other SAN counts as a foreign name, "?").
 */
function csrAgentIds(csr: CheckedCsr): string[] {
  const ids = [...csr.request.subjectName.getField('CN')];
  const requested = csr.request.getExtension(SAN_OID);
  if (requested !== null) {
    let names: readonly X509.GeneralName[];
    try {
      names = new x509.SubjectAlternativeNameExtension(requested.rawData).names.items;
    } catch (error) {
      throw new HadesError('HADES_ERR_RENEW_REQUEST_INVALID', `the certificate request's subject alternative names do not parse: ${reason(error)}`, { cause: error });
    }
    for (const name of names) ids.push(name.type === 'url' && name.value.startsWith(AGENT_URI_PREFIX) ? name.value.slice(AGENT_URI_PREFIX.length) : `? (${name.type}: ${name.value})`);
  }
  return ids;
}

// --- the CA ----------------------------------------------------------------------------------

interface CaMaterial {
  readonly pem: string;
  readonly cert: X509Certificate;
  readonly parsed: X509.X509Certificate;
  readonly signing: CryptoKey;
  readonly publicKey: KeyObject;
}

interface ServerMaterial {
  readonly certPem: string;
  readonly keyPem: string;
  readonly notAfter: Date;
}

export class Pki {
  readonly paths: PkiPaths;
  readonly state: PkiState;
  /** The CA certificate (PEM), which agents trust to recognise the server. */
  readonly caPem: string;
  /** SHA-256 of the CA certificate's DER, lower-case hex (what an agent can pin at enrollment). */
  readonly caFingerprint: string;
  /** The names asked for, `localhost` and `127.0.0.1` included (the certificate carries at least these). */
  readonly serverNames: { readonly hostnames: readonly string[]; readonly ips: readonly string[] };

  readonly #ca: CaMaterial;
  readonly #now: () => number;
  readonly #names: { hostnames: string[]; ips: string[] };
  /** The server certificate in use: replaced by renewServerCertificate() while the server runs. */
  #server: ServerMaterial;

  private constructor(paths: PkiPaths, state: PkiState, ca: CaMaterial, server: ServerMaterial, names: { hostnames: string[]; ips: string[] }, now: () => number) {
    this.paths = paths;
    this.state = state;
    this.#ca = ca;
    this.#now = now;
    this.caPem = ca.pem;
    this.caFingerprint = sha256Hex(ca.cert.raw);
    this.#server = server;
    this.#names = names;
    this.serverNames = names;
  }

  get serverCertPem(): string {
    return this.#server.certPem;
  }

  get serverKeyPem(): string {
    return this.#server.keyPem;
  }

  get serverNotAfter(): string {
    return this.#server.notAfter.toISOString();
  }

  /** When the CA ends: every certificate it issued ends by then, and it cannot be rolled over. */
  get caNotAfter(): string {
    return validTo(this.#ca.cert).toISOString();
  }

  /**
   * A warning when the CA ends within a year: agent certificates are cut at its end, so the
   * fleet's renewals come closer and closer, and at its end every agent is refused and must be
   * enrolled again with a new CA. Undefined while it is further away.
   */
  caExpiryWarning(): string | undefined {
    const left = validTo(this.#ca.cert).getTime() - this.#now();
    if (left >= 365 * DAY_MS) return undefined;
    const days = Math.max(0, Math.floor(left / DAY_MS));
    return `the CA ends on ${this.caNotAfter} (in ${days} day${days === 1 ? '' : 's'}): agent certificates end by then, and then every agent must be enrolled again with a new CA; plan a new deployment before it`;
  }

  /**
   * Reissues the server certificate (new key, same names, written as at a start) when it expires
   * within 30 days, as `open` does at a start: a server that keeps running must not serve an
   * expired certificate to its agents. Returns why it was reissued, or undefined when it was not
   * due; the caller hands the new pair to the gateway and the API (new connections get it).
   */
  async renewServerCertificate(): Promise<string | undefined> {
    const now = this.#now();
    if (this.#server.notAfter.getTime() - now >= RENEW_BEFORE_DAYS * DAY_MS) return undefined;
    const why = `the server certificate expires on ${this.serverNotAfter}`;
    this.#server = await issueServer(this.paths, this.#ca, this.#names, now);
    return why;
  }

  /** Loads the CA and server certificate from `<dataDir>/pki`, creating or renewing what is needed. */
  static async open(dataDir: string, options: PkiOptions): Promise<Pki> {
    const now = options.now ?? Date.now;
    const dir = path.join(dataDir, 'pki');
    const paths: PkiPaths = {
      dir,
      caCert: path.join(dir, 'ca.pem'),
      caKey: path.join(dir, 'ca.key'),
      serverCert: path.join(dir, 'server.pem'),
      serverKey: path.join(dir, 'server.key'),
    };
    const names = requestedNames(options);
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      chmodSync(dir, 0o700);
    } catch (error) {
      throw pkiError(`cannot create ${dir}`, error);
    }

    let caState: PkiState['ca'];
    let ca: CaMaterial;
    if (exists(paths.caCert)) {
      if (!exists(paths.caKey)) throw pkiError(`${paths.caCert} exists but its key ${paths.caKey} is missing; restore it from a backup (a new CA would orphan every enrolled agent)`);
      ca = await loadCa(paths, now());
      caState = 'loaded';
    } else {
      // No CA certificate: a first start (a key without a certificate is the trace of a first
      // start that was interrupted, before anything could be issued).
      ca = await createCa(paths, now());
      caState = 'created';
    }

    let server: ServerMaterial;
    let state: PkiState;
    if (caState === 'created' || !exists(paths.serverCert) || !exists(paths.serverKey)) {
      server = await issueServer(paths, ca, names, now());
      state = { ca: caState, server: 'created' };
    } else {
      const loaded = loadServer(paths, ca, names, now());
      if (typeof loaded === 'string') {
        server = await issueServer(paths, ca, names, now());
        state = { ca: caState, server: 'renewed', renewReason: loaded };
      } else {
        server = loaded;
        state = { ca: caState, server: 'loaded' };
      }
    }
    return new Pki(paths, state, ca, server, names, now);
  }

  /**
   * Issues an agent's client certificate for the public key of `csrPem` (its subject and
   * extensions are ignored). Refuses, with HADES_ERR_ENROLL_REQUEST_INVALID, a request that does
   * not parse, whose signature does not verify (the requester must hold the private key), or
   * whose key is not EC P-256/P-384 or RSA of 2048 to 8192 bits.
   */
  async signAgentCsr(csrPem: string, agentId: string, days = AGENT_CERT_DAYS): Promise<IssuedCertificate> {
    checkAgentId(agentId);
    const csr = await checkCsr(csrPem, 'HADES_ERR_ENROLL_REQUEST_INVALID');
    return await this.#issueAgent(csr, agentId, days);
  }

  /**
   * Renews the certificate of an agent that presented `current` (the certificate its stream is
   * authenticated with): the same checks as `signAgentCsr` (HADES_ERR_RENEW_REQUEST_INVALID),
   * and also that the request names this agent and no other (its subject's CN, and the URI
   * SANs it asks for if any), HADES_ERR_RENEW_IDENTITY otherwise, and that the key is a new one
   * (not the key of `current`). The new certificate has the lifetime of an enrollment's.
   */
  async renewAgentCsr(csrPem: string, agentId: string, current: string | Uint8Array, days = AGENT_CERT_DAYS): Promise<IssuedCertificate> {
    checkAgentId(agentId);
    const csr = await checkCsr(csrPem, 'HADES_ERR_RENEW_REQUEST_INVALID');
    const named = csrAgentIds(csr);
    if (named.length === 0 || named.some((id) => id !== agentId)) {
      throw new HadesError('HADES_ERR_RENEW_IDENTITY', `the certificate request names ${named.length === 0 ? 'no agent' : named.map((id) => JSON.stringify(id)).join(', ')}; this stream is agent ${agentId}`);
    }
    let currentKey: KeyObject;
    try {
      currentKey = new X509Certificate(typeof current === 'string' ? current : Buffer.from(current.buffer, current.byteOffset, current.byteLength)).publicKey;
    } catch (error) {
      throw pkiError('the certificate in use does not parse', error);
    }
    if (samePublicKey(currentKey, csr.spki)) {
      throw new HadesError('HADES_ERR_RENEW_REQUEST_INVALID', 'the certificate request reuses the key of the certificate in use; a renewal needs a new key pair');
    }
    return await this.#issueAgent(csr, agentId, days);
  }

  async #issueAgent(csr: CheckedCsr, agentId: string, days: number): Promise<IssuedCertificate> {
    if (!Number.isInteger(days) || days < 1 || days > CA_DAYS) throw new HadesError('HADES_ERR_INTERNAL', `invalid certificate lifetime: ${days} days`);
    const now = this.#now();
    const notAfter = Math.min(now + days * DAY_MS, validTo(this.#ca.cert).getTime());
    let cert: X509.X509Certificate;
    try {
      cert = await x509.X509CertificateGenerator.create({
        serialNumber: randomSerial(),
        subject: `CN=${agentId}`,
        issuer: this.#ca.parsed.subjectName,
        notBefore: new Date(now - BACKDATE_MS),
        notAfter: new Date(notAfter),
        publicKey: csr.request.publicKey,
        signingKey: this.#ca.signing,
        signingAlgorithm: SIGN_P256,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
          new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `${AGENT_URI_PREFIX}${agentId}` }]),
          await x509.SubjectKeyIdentifierExtension.create(csr.request.publicKey),
          await x509.AuthorityKeyIdentifierExtension.create(this.#ca.parsed),
        ],
      });
    } catch (error) {
      throw pkiError('cannot sign the agent certificate', error);
    }
    return {
      certPem: cert.toString('pem'),
      serial: normalizeSerial(cert.serialNumber),
      fingerprint: sha256Hex(new Uint8Array(cert.rawData)),
      notAfter: cert.notAfter.toISOString(),
    };
  }

  /**
   * The agent a certificate (DER or PEM, e.g. a TLS peer's `raw`) was issued to, or undefined
   * when it is not an agent certificate this CA issued and valid at `now`. Synchronous: the
   * gateway calls it on every connection. Whether the agent is still enrolled and not revoked
   * is the registry's question (`FleetRegistry.authorize`).
   */
  agentIdentity(cert: string | Uint8Array, now: number = this.#now()): AgentIdentity | undefined {
    let peer: X509Certificate;
    try {
      peer = new X509Certificate(typeof cert === 'string' ? cert : Buffer.from(cert.buffer, cert.byteOffset, cert.byteLength));
    } catch {
      return undefined;
    }
    try {
      if (!peer.checkIssued(this.#ca.cert) || !peer.verify(this.#ca.publicKey)) return undefined;
    } catch {
      return undefined;
    }
    if (peer.ca) return undefined;
    if (now < validFrom(peer).getTime() || now > validTo(peer).getTime()) return undefined;
    if (!(peer.keyUsage ?? []).includes(CLIENT_AUTH_OID)) return undefined;
    const ids = [...(peer.subjectAltName ?? '').matchAll(/(?:^|, )URI:hades:\/\/agent\/([A-Za-z0-9_.-]{1,64})(?=, |$)/g)].map((m) => m[1]);
    const agentId = ids[0];
    if (ids.length !== 1 || agentId === undefined) return undefined;
    if (peer.subject !== `CN=${agentId}`) return undefined;
    return {
      agentId,
      fingerprint: sha256Hex(peer.raw),
      serial: normalizeSerial(peer.serialNumber),
      notAfter: validTo(peer).toISOString(),
    };
  }
}

// --- creation and loading --------------------------------------------------------------------

async function createCa(paths: PkiPaths, now: number): Promise<CaMaterial> {
  const keys = await generateP256();
  let parsed: X509.X509Certificate;
  try {
    parsed = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: randomSerial(),
      // A random suffix tells CAs of different installations apart in logs and tools.
      name: `CN=Hades CA ${randomBytes(4).toString('hex')}, O=Hades`,
      notBefore: new Date(now - BACKDATE_MS),
      notAfter: new Date(now + CA_DAYS * DAY_MS),
      keys,
      signingAlgorithm: SIGN_P256,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
  } catch (error) {
    throw pkiError('cannot create the CA certificate', error);
  }
  const pem = parsed.toString('pem');
  // Key first: an interrupted start leaves a key without a certificate, which the next start
  // replaces; never a certificate without its key.
  writeSecretFile(paths.caKey, await privateKeyPem(keys.privateKey));
  writeSecretFile(paths.caCert, pem);
  const keyPem = readKeyFile(paths.caKey);
  const { signing, publicKey } = await loadP256(keyPem, paths.caKey);
  return { pem, cert: new X509Certificate(pem), parsed, signing, publicKey };
}

async function loadCa(paths: PkiPaths, now: number): Promise<CaMaterial> {
  const pem = readText(paths.caCert);
  const cert = parseCert(pem, paths.caCert);
  const { signing, publicKey } = await loadP256(readKeyFile(paths.caKey), paths.caKey);
  if (!cert.ca) throw pkiError(`${paths.caCert} is not a CA certificate`);
  if (!samePublicKey(cert.publicKey, publicKey)) throw pkiError(`${paths.caKey} is not the key of ${paths.caCert}`);
  if (validTo(cert).getTime() <= now) throw pkiError(`the CA certificate ${paths.caCert} expired on ${validTo(cert).toISOString()}; agents must be enrolled again under a new CA`);
  return { pem, cert, parsed: new x509.X509Certificate(pem), signing, publicKey };
}

/** The loaded server certificate, or the reason it must be reissued. */
function loadServer(paths: PkiPaths, ca: CaMaterial, names: { hostnames: string[]; ips: string[] }, now: number): ServerMaterial | string {
  const certPem = readText(paths.serverCert);
  const keyPem = readKeyFile(paths.serverKey);
  let cert: X509Certificate;
  let key: KeyObject;
  try {
    cert = new X509Certificate(certPem);
    key = createPrivateKey(keyPem);
  } catch {
    return 'the server certificate or key does not parse';
  }
  if (!samePublicKey(cert.publicKey, createPublicKey(key))) return 'the server key does not match its certificate';
  if (!cert.checkIssued(ca.cert) || !cert.verify(ca.publicKey)) return 'the server certificate was not issued by the CA';
  if (validTo(cert).getTime() - now < RENEW_BEFORE_DAYS * DAY_MS) return `the server certificate expires on ${validTo(cert).toISOString()}`;
  const sans = sansOf(certPem);
  const missing = [...names.hostnames.filter((n) => !sans.dns.has(n)), ...names.ips.filter((ip) => !sans.ips.has(ip))];
  if (missing.length > 0) return `the server certificate lacks ${missing.join(', ')}`;
  return { certPem, keyPem, notAfter: validTo(cert) };
}

async function issueServer(paths: PkiPaths, ca: CaMaterial, names: { hostnames: string[]; ips: string[] }, now: number): Promise<ServerMaterial> {
  const keys = await generateP256();
  const notAfter = new Date(Math.min(now + SERVER_DAYS * DAY_MS, validTo(ca.cert).getTime()));
  let cert: X509.X509Certificate;
  try {
    cert = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      subject: `CN=${names.hostnames.find((n) => n !== 'localhost') ?? 'localhost'}, O=Hades`,
      issuer: ca.parsed.subjectName,
      notBefore: new Date(now - BACKDATE_MS),
      notAfter,
      publicKey: keys.publicKey,
      signingKey: ca.signing,
      signingAlgorithm: SIGN_P256,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension([
          ...names.hostnames.map((value) => ({ type: 'dns' as const, value })),
          ...names.ips.map((value) => ({ type: 'ip' as const, value })),
        ]),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        await x509.AuthorityKeyIdentifierExtension.create(ca.parsed),
      ],
    });
  } catch (error) {
    throw pkiError('cannot issue the server certificate', error);
  }
  const certPem = cert.toString('pem');
  const keyPem = await privateKeyPem(keys.privateKey);
  writeSecretFile(paths.serverKey, keyPem);
  writeSecretFile(paths.serverCert, certPem);
  return { certPem, keyPem, notAfter: cert.notAfter };
}
