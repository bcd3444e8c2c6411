/**
 * The server's certificate authority. On first start it creates, in `<dataDir>/pki/`, a CA (an
 * ECDSA P-256 key and a self-signed certificate valid 10 years) and a server certificate signed
 * by it (P-256, 2 years, SANs for the configured names plus `localhost` and `127.0.0.1`); later
 * starts load them, and reissue the server certificate when it expires within 30 days, lacks a
 * requested name, or no longer matches its key or the CA; a server that keeps running reissues
 * it too when it nears its end (`renewServerCertificate`, which the server calls twice a day). The CA is never replaced silently:
 * every enrolled agent holds a certificate it issued.
 *
 * CA rollover (`hades server ca rotate`, then `retire-old`), for a CA near its end or whose key
 * may have leaked, without enrolling the fleet again. `rotate` creates a new CA beside the old
 * one (`ca-next.pem`, `ca-next.key`). During the overlap both CAs are trusted for client
 * certificates, the new one issues every agent certificate (enrollments and renewals), and the
 * server keeps presenting its certificate from the old CA, which every agent trusts; agents get
 * the trust bundle (both CAs) on their stream, store it, and renew under the new CA. `retire-old`
 * then makes the new CA the one in use: `ca.pem`/`ca.key` are replaced by it (the old key is
 * gone), the server certificate is reissued under it, and the old CA's certificate is kept in
 * `ca-retired.pem` only to refuse, with HADES_ERR_CA_RETIRED, agents still holding a certificate
 * it issued. Each step is ordered so that a crash leaves a state the next start recognises and
 * completes or undoes (see `open`).
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
import { readOwnFile } from '../runtime/regular-file.js';
import 'reflect-metadata';
import { createHash, createPrivateKey, createPublicKey, randomBytes, webcrypto, X509Certificate, type KeyObject } from 'node:crypto';
import { chmodSync, closeSync, fstatSync, fsyncSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import type * as X509 from '@peculiar/x509';
import { HadesError, isHadesError } from '../common/errors.js';
import { pemCertificates, pemLeftover } from '../common/pem.js';
import { syncFolder, writePrivateFile } from '../runtime/private-file.js';
import { makeFolders } from '../runtime/folders.js';

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
  /** SHA-256 of the certificate of the CA that issued it (lower-case hex). */
  readonly caSha256: string;
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
  /** SHA-256 of the certificate of the CA that issued it. */
  readonly caSha256: string;
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
  /** The new CA of a rotation in progress. */
  readonly nextCaCert: string;
  readonly nextCaKey: string;
  /** Certificates (no keys) of the CAs retired so far, one after another. */
  readonly retiredCas: string;
}

/** A CA as `hades server ca status` shows it. */
export interface CaInfo {
  /**
   * `current`: the only CA (no rotation in progress); `old` and `new`: the two CAs of a rotation
   * in progress (the old one's certificate is the server's, the new one issues agent
   * certificates); `retired`: no longer trusted.
   */
  readonly state: 'current' | 'old' | 'new' | 'retired';
  readonly subject: string;
  readonly sha256: string;
  readonly notBefore: string;
  readonly notAfter: string;
}

/** A new CA made by `prepareRotation`, written by `commitRotation`. */
export interface PreparedRotation {
  /** SHA-256 of the new CA's certificate. */
  readonly sha256: string;
  readonly keyPem: string;
  readonly certPem: string;
  readonly signing: webcrypto.CryptoKey;
}

/** The server certificate under the new CA, made by `prepareRetire` for `commitRetire`. */
export interface PreparedRetire {
  readonly next: string;
  readonly server: ServerMaterial;
}

/** What `open` did, for the server's start-up log. */
export interface PkiState {
  readonly ca: 'created' | 'loaded';
  readonly server: 'created' | 'loaded' | 'renewed';
  /** Why the server certificate was reissued, when it was. */
  readonly renewReason?: string;
  /** A CA rotation is in progress (two CAs). */
  readonly rotation?: 'in-progress';
  /** What the start completed or undid of a rotation or a retirement a crash interrupted. */
  readonly recovered?: string;
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

/** PEM texts one after another, each ending its line: a bundle file's text. */
function pemBundle(pems: readonly string[]): string {
  return pems.map((pem) => pem.trimEnd()).join('\n') + '\n';
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
    return readOwnFile(file);
  } catch (error) {
    if (isHadesError(error)) throw error;
    throw pkiError(`cannot read ${file}`, error);
  }
}

function readText(file: string): string {
  try {
    return readOwnFile(file);
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
  /** The key as its file holds it (PEM): written back by restoreFiles when the file is gone. */
  readonly keyPem: string;
  readonly sha256: string;
  readonly cert: X509Certificate;
  readonly parsed: X509.X509Certificate;
  readonly signing: CryptoKey;
  readonly publicKey: KeyObject;
}

export interface ServerMaterial {
  readonly certPem: string;
  readonly keyPem: string;
  readonly notAfter: Date;
}

const daysText = (days: number): string => `${days} day${days === 1 ? '' : 's'}`;

export class Pki {
  readonly paths: PkiPaths;
  readonly state: PkiState;
  /** The names asked for, `localhost` and `127.0.0.1` included (the certificate carries at least these). */
  readonly serverNames: { readonly hostnames: readonly string[]; readonly ips: readonly string[] };

  /** The CA in use: the server certificate chains to it (the old one during a rotation). */
  #ca: CaMaterial;
  /** The new CA of a rotation in progress: it issues agent certificates. */
  #next: CaMaterial | undefined;
  /** CAs retired: never trusted, recognised only to refuse their certificates clearly. */
  #retired: RetiredCa[];
  readonly #now: () => number;
  readonly #names: { hostnames: string[]; ips: string[] };
  /** The server certificate in use: replaced by renewServerCertificate() while the server runs. */
  #server: ServerMaterial;

  private constructor(paths: PkiPaths, state: PkiState, cas: { ca: CaMaterial; next: CaMaterial | undefined; retired: RetiredCa[] }, server: ServerMaterial, names: { hostnames: string[]; ips: string[] }, now: () => number) {
    this.paths = paths;
    this.state = state;
    this.#ca = cas.ca;
    this.#next = cas.next;
    this.#retired = cas.retired;
    this.#now = now;
    this.#server = server;
    this.#names = names;
    this.serverNames = names;
  }

  /**
   * Writes back, owner-only and synced, every file of the CA, a rotation's new CA, the retired
   * CAs' list and the server certificate that is missing from the folder while this server holds
   * them (its data folder removed while it ran: without them the next start would make a new CA
   * and refuse every agent). Returns the files written.
   */
  restoreFiles(): string[] {
    const { paths } = this;
    const wanted: [string, string][] = [
      // Keys before their certificates, as at their first writing.
      [paths.caKey, this.#ca.keyPem],
      [paths.caCert, this.#ca.pem],
      ...(this.#next ? ([[paths.nextCaKey, this.#next.keyPem], [paths.nextCaCert, this.#next.pem]] as [string, string][]) : []),
      ...(this.#retired.length > 0 ? ([[paths.retiredCas, pemBundle(this.#retired.map((r) => r.pem))]] as [string, string][]) : []),
      [paths.serverKey, this.#server.keyPem],
      [paths.serverCert, this.#server.certPem],
    ];
    const missing = wanted.filter(([file]) => !exists(file));
    if (missing.length === 0) return [];
    try {
      makeFolders(paths.dir, 0o700);
    } catch (error) {
      throw pkiError(`cannot create ${paths.dir}`, error);
    }
    for (const [file, text] of missing) writeSecretFile(file, text);
    return missing.map(([file]) => file);
  }

  /** The CA certificate (PEM) the server certificate chains to: what enrollment pins, and API clients trust. */
  get caPem(): string {
    return this.#ca.pem;
  }

  /** SHA-256 of that CA certificate's DER, lower-case hex (what an agent pins at enrollment). */
  get caFingerprint(): string {
    return this.#ca.sha256;
  }

  /** The CAs agents must trust now (PEM, one after another): the one in use, and the new one during a rotation. */
  get trustPem(): string {
    return this.#next ? `${this.#ca.pem.trimEnd()}\n${this.#next.pem}` : this.#ca.pem;
  }

  /**
   * The CAs whose client certificates the gateway's TLS lets through: those agents trust, and the
   * retired ones, so that an agent left on a retired CA hears why it is refused (HADES_ERR_CA_RETIRED,
   * from `agentIdentity` failing and `retiredIssuer`) instead of a bare TLS alert. Trust itself is
   * `agentIdentity`'s, which accepts the current and new CAs only.
   */
  get clientCaPem(): string {
    return pemBundle([this.trustPem, ...this.#retired.map((r) => r.pem)]);
  }

  /** SHA-256 of the CA that issues agent certificates now (the new one during a rotation). */
  get issuingFingerprint(): string {
    return (this.#next ?? this.#ca).sha256;
  }

  /** A rotation is in progress: a new CA beside the one in use. */
  get rotating(): boolean {
    return this.#next !== undefined;
  }

  /** This server ever rotated its CA (one in progress, or one retired): agents are told the trust bundle. */
  get rotated(): boolean {
    return this.#next !== undefined || this.#retired.length > 0;
  }

  /** The CAs, the one in use first. */
  cas(): CaInfo[] {
    const info = (material: { parsed: X509.X509Certificate; sha256: string }, state: CaInfo['state']): CaInfo => ({
      state,
      subject: material.parsed.subject,
      sha256: material.sha256,
      notBefore: material.parsed.notBefore.toISOString(),
      notAfter: material.parsed.notAfter.toISOString(),
    });
    return [info(this.#ca, this.#next ? 'old' : 'current'), ...(this.#next ? [info(this.#next, 'new')] : []), ...this.#retired.map((r) => info(r, 'retired'))];
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

  /** When the CA in use ends: every certificate it issued ends by then. */
  get caNotAfter(): string {
    return validTo(this.#ca.cert).toISOString();
  }

  /**
   * A warning when the CA ends within a year and no rotation is in progress: agent certificates
   * are cut at its end, so the fleet's renewals come closer and closer, and at its end every
   * agent is refused. Undefined while it is further away, or while a rotation is in progress.
   */
  caExpiryWarning(): string | undefined {
    if (this.#next) return undefined;
    const left = validTo(this.#ca.cert).getTime() - this.#now();
    if (left >= 365 * DAY_MS) return undefined;
    const days = Math.max(0, Math.floor(left / DAY_MS));
    return `the CA ends on ${this.caNotAfter} (in ${daysText(days)}): agent certificates end by then; rotate it now with \`hades server ca rotate\` (the fleet moves to the new CA by itself), or at its end every agent must be enrolled again`;
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
    const ca = this.#ca;
    const server = await makeServer(ca, this.#names, now);
    // A retirement that ended meanwhile changed the CA: this certificate is of the one before.
    if (this.#ca !== ca) return undefined;
    writeServer(this.paths, server);
    this.#server = server;
    return why;
  }

  /**
   * Makes a new CA for a rotation (in memory; `commitRotation` writes it). Refuses with
   * HADES_ERR_CA_ROTATION_IN_PROGRESS while one is in progress.
   */
  async prepareRotation(): Promise<PreparedRotation> {
    this.#refuseRotation();
    return await makeCa(this.#now());
  }

  /**
   * Writes the new CA beside the one in use (key first, then certificate: a crash in between
   * leaves a key alone, which the next start removes). From now on both CAs are trusted, and the
   * new one issues agent certificates. Synchronous, so that the caller can do it with its audit
   * record in one database transaction.
   */
  commitRotation(prepared: PreparedRotation): CaInfo {
    this.#refuseRotation();
    writeSecretFile(this.paths.nextCaKey, prepared.keyPem);
    writeSecretFile(this.paths.nextCaCert, prepared.certPem);
    this.#next = caMaterial(prepared.certPem, prepared.keyPem, prepared.signing);
    return this.cas().find((c) => c.state === 'new')!;
  }

  #refuseRotation(): void {
    if (this.#next) {
      throw new HadesError('HADES_ERR_CA_ROTATION_IN_PROGRESS', `a CA rotation is in progress since ${this.#next.parsed.notBefore.toISOString()} (new CA ${this.#next.sha256}): retire the old CA first (hades server ca status shows how many agents are still on it, hades server ca retire-old retires it)`);
    }
  }

  /**
   * Makes the server certificate under the new CA (in memory) for `commitRetire`. Refuses with
   * HADES_ERR_CA_NOTHING_TO_RETIRE when no rotation is in progress.
   */
  async prepareRetire(): Promise<PreparedRetire> {
    const next = this.#nextOrRefuse();
    return { next: next.sha256, server: await makeServer(next, this.#names, this.#now()) };
  }

  #nextOrRefuse(): CaMaterial {
    if (!this.#next) throw new HadesError('HADES_ERR_CA_NOTHING_TO_RETIRE', `no CA rotation is in progress: the server has one CA (${this.#ca.sha256}); start one with hades server ca rotate`);
    return this.#next;
  }

  /** The CA a retirement would retire (the old one of the rotation in progress); HADES_ERR_CA_NOTHING_TO_RETIRE without one. */
  retiring(): CaInfo {
    this.#nextOrRefuse();
    return this.cas()[0]!;
  }

  /**
   * Retires the old CA: its certificate is added to `ca-retired.pem`, the new CA replaces it as
   * `ca.key` (the old key is overwritten) then `ca.pem`, and the server certificate prepared
   * under it is written. A crash after the first step is completed at the next start (see
   * `open`). Synchronous, for the caller's transaction; returns the CA retired.
   */
  commitRetire(prepared: PreparedRetire): CaInfo {
    const next = this.#nextOrRefuse();
    if (next.sha256 !== prepared.next) throw new HadesError('HADES_ERR_INTERNAL', 'the new CA changed since the retirement was prepared');
    const old = this.#ca;
    const retiredInfo: CaInfo = { ...this.cas()[0]!, state: 'retired' };
    const retired = [...this.#retired, { pem: old.pem, cert: old.cert, parsed: old.parsed, sha256: old.sha256 }];
    writeSecretFile(this.paths.retiredCas, pemBundle(retired.map((r) => r.pem)));
    finishRetire(this.paths);
    writeServer(this.paths, prepared.server);
    this.#ca = next;
    this.#next = undefined;
    this.#retired = retired;
    this.#server = prepared.server;
    return retiredInfo;
  }

  /** Loads the CAs and the server certificate from `<dataDir>/pki`, creating or renewing what is needed. */
  static async open(dataDir: string, options: PkiOptions): Promise<Pki> {
    const now = options.now ?? Date.now;
    const dir = path.join(dataDir, 'pki');
    const paths: PkiPaths = {
      dir,
      caCert: path.join(dir, 'ca.pem'),
      caKey: path.join(dir, 'ca.key'),
      serverCert: path.join(dir, 'server.pem'),
      serverKey: path.join(dir, 'server.key'),
      nextCaCert: path.join(dir, 'ca-next.pem'),
      nextCaKey: path.join(dir, 'ca-next.key'),
      retiredCas: path.join(dir, 'ca-retired.pem'),
    };
    const names = requestedNames(options);
    try {
      makeFolders(dir, 0o700);
      chmodSync(dir, 0o700);
    } catch (error) {
      throw pkiError(`cannot create ${dir}`, error);
    }

    const retired = loadRetired(paths.retiredCas);
    const recovered = recoverRotation(paths, retired);

    let caState: PkiState['ca'];
    let ca: CaMaterial;
    if (exists(paths.caCert)) {
      if (!exists(paths.caKey)) throw caFileError(`${paths.caCert} exists but its key ${paths.caKey} is missing; restore it from a backup (a new CA would orphan every enrolled agent)`);
      ca = await loadCa(paths.caCert, paths.caKey, now());
      caState = 'loaded';
    } else {
      // No CA certificate: a first start (a key without a certificate is the trace of a first
      // start that was interrupted, before anything could be issued).
      if (exists(paths.nextCaCert) || retired.length > 0) throw caFileError(`${paths.caCert} is missing while ${exists(paths.nextCaCert) ? paths.nextCaCert : paths.retiredCas} exists: the CA in use is lost; restore it from a backup`);
      const made = await makeCa(now());
      // Key first: an interrupted start leaves a key without a certificate, which the next start
      // replaces; never a certificate without its key.
      writeSecretFile(paths.caKey, made.keyPem);
      writeSecretFile(paths.caCert, made.certPem);
      ca = await loadCa(paths.caCert, paths.caKey, now());
      caState = 'created';
    }
    let next: CaMaterial | undefined;
    if (exists(paths.nextCaCert)) {
      if (!exists(paths.nextCaKey)) throw caFileError(`${paths.nextCaCert} (the new CA of a rotation) exists but its key ${paths.nextCaKey} is missing; restore it from a backup, or remove ${paths.nextCaCert} if no agent renewed under it yet`);
      next = await loadCa(paths.nextCaCert, paths.nextCaKey, now());
      if (next.sha256 === ca.sha256) throw caFileError(`${paths.nextCaCert} is the CA in use (${paths.caCert}) again`);
    }
    if (retired.some((r) => r.sha256 === ca.sha256)) throw caFileError(`${paths.caCert} is a CA retired before (listed in ${paths.retiredCas}); restore the data folder from a backup`);

    let server: ServerMaterial;
    let state: PkiState;
    const extra = { ...(next ? { rotation: 'in-progress' as const } : {}), ...(recovered ? { recovered } : {}) };
    if (caState === 'created' || !exists(paths.serverCert) || !exists(paths.serverKey)) {
      server = await makeServer(ca, names, now());
      writeServer(paths, server);
      state = { ca: caState, server: 'created', ...extra };
    } else {
      const loaded = loadServer(paths, ca, names, now());
      if (typeof loaded === 'string') {
        server = await makeServer(ca, names, now());
        writeServer(paths, server);
        state = { ca: caState, server: 'renewed', renewReason: loaded, ...extra };
      } else {
        server = loaded;
        state = { ca: caState, server: 'loaded', ...extra };
      }
    }
    return new Pki(paths, state, { ca, next, retired }, server, names, now);
  }

  /**
   * Issues an agent's client certificate for the public key of `csrPem` (its subject and
   * extensions are ignored), from the CA that issues now (the new one during a rotation).
   * Refuses, with HADES_ERR_ENROLL_REQUEST_INVALID, a request that does
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
    const issuer = this.#next ?? this.#ca;
    const notAfter = Math.min(now + days * DAY_MS, validTo(issuer.cert).getTime());
    let cert: X509.X509Certificate;
    try {
      cert = await x509.X509CertificateGenerator.create({
        serialNumber: randomSerial(),
        subject: `CN=${agentId}`,
        issuer: issuer.parsed.subjectName,
        notBefore: new Date(now - BACKDATE_MS),
        notAfter: new Date(notAfter),
        publicKey: csr.request.publicKey,
        signingKey: issuer.signing,
        signingAlgorithm: SIGN_P256,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
          new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `${AGENT_URI_PREFIX}${agentId}` }]),
          await x509.SubjectKeyIdentifierExtension.create(csr.request.publicKey),
          await x509.AuthorityKeyIdentifierExtension.create(issuer.parsed),
        ],
      });
    } catch (error) {
      throw pkiError('cannot sign the agent certificate', error);
    }
    return {
      certPem: cert.toString('pem'),
      caSha256: issuer.sha256,
      serial: normalizeSerial(cert.serialNumber),
      fingerprint: sha256Hex(new Uint8Array(cert.rawData)),
      notAfter: cert.notAfter.toISOString(),
    };
  }

  /**
   * The agent a certificate (DER or PEM, e.g. a TLS peer's `raw`) was issued to, or undefined
   * when it is not an agent certificate issued by a CA trusted now (the one in use, or the new
   * one of a rotation) and valid at `now`. Synchronous: the gateway calls it on every
   * connection. Whether the agent is still enrolled and not revoked is the registry's question
   * (`FleetRegistry.authorize`).
   */
  agentIdentity(cert: string | Uint8Array, now: number = this.#now()): AgentIdentity | undefined {
    const peer = parsePeer(cert);
    if (!peer) return undefined;
    const issuer = [this.#ca, ...(this.#next ? [this.#next] : [])].find((ca) => issuedBy(peer, ca));
    if (!issuer) return undefined;
    if (peer.ca) return undefined;
    if (now < validFrom(peer).getTime() || now > validTo(peer).getTime()) return undefined;
    if (!(peer.keyUsage ?? []).includes(CLIENT_AUTH_OID)) return undefined;
    const ids = [...(peer.subjectAltName ?? '').matchAll(/(?:^|, )URI:hades:\/\/agent\/([A-Za-z0-9_.-]{1,64})(?=, |$)/g)].map((m) => m[1]);
    const agentId = ids[0];
    if (ids.length !== 1 || agentId === undefined) return undefined;
    if (peer.subject !== `CN=${agentId}`) return undefined;
    return {
      agentId,
      caSha256: issuer.sha256,
      fingerprint: sha256Hex(peer.raw),
      serial: normalizeSerial(peer.serialNumber),
      notAfter: validTo(peer).toISOString(),
    };
  }

  /**
   * The retired CA that issued a certificate, with the agent id it names, or undefined: what
   * the gateway says to an agent left on a retired CA (HADES_ERR_CA_RETIRED).
   */
  retiredIssuer(cert: string | Uint8Array): { ca: CaInfo; agentId?: string } | undefined {
    const peer = parsePeer(cert);
    if (!peer) return undefined;
    const issuer = this.#retired.find((ca) => issuedBy(peer, ca));
    if (!issuer) return undefined;
    const agentId = /^CN=([A-Za-z0-9_.-]{1,64})$/.exec(peer.subject)?.[1];
    return { ca: this.cas().find((c) => c.sha256 === issuer.sha256)!, ...(agentId ? { agentId } : {}) };
  }
}

/** A CA retired: its certificate only (its key is gone). */
interface RetiredCa {
  readonly pem: string;
  readonly cert: X509Certificate;
  readonly parsed: X509.X509Certificate;
  readonly sha256: string;
}

function parsePeer(cert: string | Uint8Array): X509Certificate | undefined {
  try {
    return new X509Certificate(typeof cert === 'string' ? cert : Buffer.from(cert.buffer, cert.byteOffset, cert.byteLength));
  } catch {
    return undefined;
  }
}

function issuedBy(peer: X509Certificate, ca: { cert: X509Certificate }): boolean {
  try {
    return peer.checkIssued(ca.cert) && peer.verify(ca.cert.publicKey);
  } catch {
    return false;
  }
}

// --- creation and loading --------------------------------------------------------------------

const caFileError = (message: string, cause?: unknown): HadesError =>
  new HadesError('HADES_ERR_CA_FILE_INVALID', cause === undefined ? message : `${message}: ${reason(cause)}`, cause === undefined ? {} : { cause });

/** A new CA (P-256, 10 years), in memory. */
async function makeCa(now: number): Promise<PreparedRotation> {
  const keys = await generateP256();
  let parsed: X509.X509Certificate;
  try {
    parsed = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: randomSerial(),
      // A random suffix tells CAs of different installations (and the CAs of a rotation) apart.
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
  return { sha256: sha256Hex(new Uint8Array(parsed.rawData)), certPem: parsed.toString('pem'), keyPem: await privateKeyPem(keys.privateKey), signing: keys.privateKey };
}

function caMaterial(pem: string, keyPem: string, signing: CryptoKey): CaMaterial {
  const cert = new X509Certificate(pem);
  return { pem, keyPem, sha256: sha256Hex(cert.raw), cert, parsed: new x509.X509Certificate(pem), signing, publicKey: createPublicKey(createPrivateKey(keyPem)) };
}

async function loadCa(certFile: string, keyFile: string, now: number): Promise<CaMaterial> {
  const pem = readText(certFile);
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch (error) {
    throw caFileError(`${certFile} is not a certificate`, error);
  }
  let loaded: { signing: CryptoKey; publicKey: KeyObject };
  let keyPem: string;
  try {
    keyPem = readKeyFile(keyFile);
    loaded = await loadP256(keyPem, keyFile);
  } catch (error) {
    // A key others may read, or one that cannot be read, stays HADES_ERR_PKI (the machine's
    // problem); one that is not a P-256 key is a damaged CA file.
    if (isHadesError(error) && error.code === 'HADES_ERR_PKI' && / is not (a private key|an ECDSA P-256 key)/.test(error.message)) throw caFileError(error.message);
    throw error;
  }
  if (!cert.ca) throw caFileError(`${certFile} is not a CA certificate`);
  if (!samePublicKey(cert.publicKey, loaded.publicKey)) throw caFileError(`${keyFile} is not the key of ${certFile}`);
  if (validTo(cert).getTime() <= now) throw pkiError(`the CA certificate ${certFile} expired on ${validTo(cert).toISOString()}; agents must be enrolled again under a new CA`);
  return { pem, keyPem, sha256: sha256Hex(cert.raw), cert, parsed: new x509.X509Certificate(pem), ...loaded };
}

/** The PEM blocks of a bundle, each ending its line. */
const pemBlocks = (text: string): string[] => pemCertificates(text).map((block) => `${block}\n`);

function loadRetired(file: string): RetiredCa[] {
  if (!exists(file)) return [];
  const text = readText(file);
  const blocks = pemBlocks(text);
  if (blocks.length === 0 || pemLeftover(text) !== '') throw caFileError(`${file} (the retired CAs) holds something else than certificates`);
  return blocks.map((pem, index) => {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(pem);
    } catch (error) {
      throw caFileError(`certificate ${index + 1} of ${file} (the retired CAs) does not parse`, error);
    }
    if (!cert.ca) throw caFileError(`certificate ${index + 1} of ${file} (the retired CAs) is not a CA certificate`);
    return { pem, cert, parsed: new x509.X509Certificate(pem), sha256: sha256Hex(cert.raw) };
  });
}

const publicKeyOfCert = (file: string): KeyObject | undefined => {
  try {
    return new X509Certificate(readText(file)).publicKey;
  } catch {
    return undefined;
  }
};

const publicKeyOfKey = (file: string): KeyObject | undefined => {
  try {
    return createPublicKey(createPrivateKey(readKeyFile(file)));
  } catch {
    return undefined;
  }
};

/**
 * Overwrites a private key file's bytes with zeros, synced, before it is replaced or removed: a
 * rename over it or an unlink drops only its name, and the key's blocks would stay on the disk
 * until reused, readable from the device. On copy-on-write file systems (btrfs, ZFS) and behind
 * a flash translation layer the old blocks may survive anyway: this is what a program can do. A
 * missing file is nothing to wipe.
 */
function wipeKeyFile(file: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r+');
    const size = fstatSync(fd).size;
    if (size > 0) writeSync(fd, Buffer.alloc(size), 0, size, 0);
    fsyncSync(fd);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw pkiError(`cannot wipe ${file} before replacing it`, error);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * The last steps of a retirement, once the old CA is listed in `ca-retired.pem`: the old key is
 * wiped, the new key replaces `ca.key` (the old key is gone from then on), then the new
 * certificate `ca.pem`. A crash between these leaves the old certificate in `ca.pem` with the
 * old CA retired, and `ca.key` wiped or the key of `ca-next.pem`: `recoverRotation` finishes the
 * retirement from either (the retired CA's key is never needed again).
 */
function finishRetire(paths: PkiPaths): void {
  wipeKeyFile(paths.caKey);
  try {
    renameSync(paths.nextCaKey, paths.caKey);
    syncFolder(paths.dir);
    renameSync(paths.nextCaCert, paths.caCert);
    syncFolder(paths.dir);
  } catch (error) {
    throw pkiError(`cannot make ${paths.nextCaCert} the CA in use`, error);
  }
}

/**
 * Completes or undoes what a crash interrupted, before the CAs are loaded; says what it did:
 * - a rotation that wrote the new key but not its certificate: the key is removed (nothing was
 *   issued under it, and the operator was not told it succeeded);
 * - a retirement that listed the old CA as retired: it is finished (the new CA becomes the one
 *   in use), whether or not the new key had replaced the old one yet.
 */
function recoverRotation(paths: PkiPaths, retired: readonly RetiredCa[]): string | undefined {
  const nextCert = exists(paths.nextCaCert);
  const nextKey = exists(paths.nextCaKey);
  if (nextKey && !nextCert) {
    try {
      wipeKeyFile(paths.nextCaKey);
      rmSync(paths.nextCaKey);
    } catch (error) {
      throw pkiError(`cannot remove ${paths.nextCaKey}`, error);
    }
    return `a CA rotation interrupted before its certificate was written was undone (${paths.nextCaKey} removed)`;
  }
  if (!nextCert || !exists(paths.caCert)) return undefined;
  const nextPublic = publicKeyOfCert(paths.nextCaCert);
  if (!nextKey) {
    // The new key is ca.key already: the retirement stopped between its two renames.
    const keyPublic = exists(paths.caKey) ? publicKeyOfKey(paths.caKey) : undefined;
    if (nextPublic && keyPublic && samePublicKey(nextPublic, keyPublic)) {
      try {
        renameSync(paths.nextCaCert, paths.caCert);
        syncFolder(paths.dir);
      } catch (error) {
        throw pkiError(`cannot make ${paths.nextCaCert} the CA in use`, error);
      }
      return 'the retirement of the old CA, interrupted, was completed';
    }
    return undefined;
  }
  let current: string | undefined;
  try {
    current = sha256Hex(new X509Certificate(readText(paths.caCert)).raw);
  } catch {
    return undefined; // loading reports it
  }
  if (!retired.some((r) => r.sha256 === current)) return undefined;
  finishRetire(paths);
  return 'the retirement of the old CA, interrupted, was completed';
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

/** A server certificate from `ca` (in memory; writeServer stores it). */
async function makeServer(ca: CaMaterial, names: { hostnames: string[]; ips: string[] }, now: number): Promise<ServerMaterial> {
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
  return { certPem: cert.toString('pem'), keyPem: await privateKeyPem(keys.privateKey), notAfter: cert.notAfter };
}

function writeServer(paths: PkiPaths, server: ServerMaterial): void {
  writeSecretFile(paths.serverKey, server.keyPem);
  writeSecretFile(paths.serverCert, server.certPem);
}
