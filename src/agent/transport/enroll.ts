/**
 * Enrollment and the agent's identity. With a one-time token and the fingerprint of the
 * server's CA (both printed by `hades server token create`), the agent fetches the CA
 * certificate, checks its fingerprint (so no one in the middle can stand in for the server),
 * makes a key pair and a certificate request, and receives its client certificate. Key,
 * certificate and CA stay in `<data_dir>/identity/` (0600); every later connection is mutual
 * TLS with them.
 *
 * A renewal (renewal.ts) replaces key and certificate together: the new pair is written under
 * new names, then `agent.json`, which names the pair in use, is replaced in one rename. A crash
 * at any point leaves either the old pair or the new one in use, never a key without its
 * certificate.
 *
 * A CA rotation on the server (its stream's CaTrust message) gives the CAs to trust: they are
 * written beside the CA before (`ca-<hash>.pem`, all of them in one file), then `agent.json` is
 * made to name that file, in one rename, as for a renewed pair; the file no longer named goes.
 */
import { readOwnFile } from '../../runtime/regular-file.js';
import { createHash, createPrivateKey, webcrypto, X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, readdirSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import os from 'node:os';
import path from 'node:path';
// @peculiar/x509 needs the Reflect metadata API, which must exist before it loads.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { HadesError, isErrorCode } from '../../common/errors.js';
import { pemCertificates } from '../../common/pem.js';
import { syncFolder, writePrivateFile } from '../../runtime/private-file.js';
import { makeFolders } from '../../runtime/folders.js';
import { gatherAnswer } from '../../runtime/bounded-answer.js';
import { hostOs } from './host-os.js';

export interface Identity {
  readonly agentId: string;
  readonly keyPem: string;
  readonly certPem: string;
  readonly caPem: string;
  /** Gateway addresses (host:port) the server gave at enrollment. */
  readonly gateways: readonly string[];
}

export const identityDir = (dataDir: string) => path.join(dataDir, 'identity');

/** agent.json: who the agent is, and which key and certificate files are in use. */
interface IdentityMeta {
  readonly agentId: string;
  readonly gateways: string[];
  /** File names in the identity folder; key.pem and cert.pem when absent (as enrolled). */
  readonly key?: string;
  readonly cert?: string;
  /** The CAs trusted (PEM, one after another); ca.pem when absent (as enrolled). */
  readonly ca?: string;
}

const PAIR_FILE_RE = /^(key|cert)(-[0-9a-f]{1,40})?\.pem$/;
const CA_FILE_RE = /^ca(-[0-9a-f]{16})?\.pem$/;

/** The certificates of a PEM bundle, each parsed (a bundle of one: the CA of enrollment). */
export function caCertificates(pem: string): X509Certificate[] {
  return pemCertificates(pem).map((block) => new X509Certificate(block));
}

/** The stored identity, if the agent has enrolled. */
export function loadIdentity(dataDir: string): Identity | undefined {
  const dir = identityDir(dataDir);
  if (!existsSync(path.join(dir, 'agent.json'))) return undefined;
  let identity: Identity;
  try {
    const meta = JSON.parse(readOwnFile(path.join(dir, 'agent.json'))) as IdentityMeta;
    const key = meta.key ?? 'key.pem';
    const cert = meta.cert ?? 'cert.pem';
    const ca = meta.ca ?? 'ca.pem';
    if (!PAIR_FILE_RE.test(key) || !PAIR_FILE_RE.test(cert) || !CA_FILE_RE.test(ca)) throw new HadesError('HADES_ERR_PKI', `agent.json names unexpected files ${key}, ${cert} and ${ca}`);
    identity = {
      agentId: meta.agentId,
      gateways: meta.gateways,
      keyPem: readOwnFile(path.join(dir, key)),
      certPem: readOwnFile(path.join(dir, cert)),
      caPem: readOwnFile(path.join(dir, ca)),
    };
  } catch (error) {
    throw new HadesError('HADES_ERR_PKI', `the agent's identity in ${dir} cannot be read: ${(error as Error).message}`);
  }
  let matches: boolean;
  try {
    matches = new X509Certificate(identity.certPem).checkPrivateKey(createPrivateKey(identity.keyPem));
  } catch (error) {
    throw new HadesError('HADES_ERR_PKI', `the agent's key or certificate in ${dir} does not parse: ${(error as Error).message}`);
  }
  if (!matches) throw new HadesError('HADES_ERR_PKI', `the agent's key in ${dir} is not the key of its certificate`);
  return identity;
}

function saveIdentity(dataDir: string, identity: Identity): void {
  const dir = identityDir(dataDir);
  makeFolders(dir, 0o700);
  chmodSync(dir, 0o700);
  writePrivateFile(path.join(dir, 'key.pem'), identity.keyPem);
  writePrivateFile(path.join(dir, 'cert.pem'), identity.certPem);
  writePrivateFile(path.join(dir, 'ca.pem'), identity.caPem);
  // Last: its presence means the identity is complete.
  writePrivateFile(path.join(dir, 'agent.json'), `${JSON.stringify({ agentId: identity.agentId, gateways: identity.gateways })}\n`);
  syncFolder(dir);
}

/**
 * Stores a renewed key and certificate as the pair in use, atomically (see the top of this
 * file); then removes the pairs no longer named. `serial` tells the new files apart.
 */
export function saveRenewedIdentity(dataDir: string, identity: Identity, serial: string): void {
  const dir = identityDir(dataDir);
  const meta = JSON.parse(readOwnFile(path.join(dir, 'agent.json'))) as IdentityMeta;
  if (meta.agentId !== identity.agentId) throw new HadesError('HADES_ERR_PKI', `${dir} holds agent ${meta.agentId}, not ${identity.agentId}`);
  const suffix = serial.toLowerCase().replace(/[^0-9a-f]/g, '').slice(0, 40) || 'next';
  const key = `key-${suffix}.pem`;
  const cert = `cert-${suffix}.pem`;
  if (key === meta.key) throw new HadesError('HADES_ERR_PKI', `the certificate with serial ${serial} is already in use`);
  writePrivateFile(path.join(dir, key), identity.keyPem);
  writePrivateFile(path.join(dir, cert), identity.certPem);
  syncFolder(dir);
  // The commit: from here on the new pair is the identity.
  writePrivateFile(path.join(dir, 'agent.json'), `${JSON.stringify({ ...meta, key, cert } satisfies IdentityMeta)}\n`);
  syncFolder(dir);
  for (const name of readdirSync(dir)) {
    if ((PAIR_FILE_RE.test(name) || /^(key|cert)[-.].*\.tmp-\d+$/.test(name)) && name !== key && name !== cert) rmSync(path.join(dir, name), { force: true });
  }
}

/**
 * Stores the CAs to trust (PEM, one after another) beside the ones before, atomically (see the
 * top of this file), then removes the CA file no longer named. Returns false when they are the
 * ones stored already.
 */
export function saveTrustedCas(dataDir: string, agentId: string, caPem: string): boolean {
  const dir = identityDir(dataDir);
  const meta = JSON.parse(readOwnFile(path.join(dir, 'agent.json'))) as IdentityMeta;
  if (meta.agentId !== agentId) throw new HadesError('HADES_ERR_PKI', `${dir} holds agent ${meta.agentId}, not ${agentId}`);
  const name = `ca-${createHash('sha256').update(caPem).digest('hex').slice(0, 16)}.pem`;
  if (name === meta.ca) return false;
  writePrivateFile(path.join(dir, name), caPem);
  syncFolder(dir);
  // The commit: from here on these CAs are trusted.
  writePrivateFile(path.join(dir, 'agent.json'), `${JSON.stringify({ ...meta, ca: name } satisfies IdentityMeta)}\n`);
  syncFolder(dir);
  for (const file of readdirSync(dir)) {
    if ((CA_FILE_RE.test(file) || /^ca[-.].*\.tmp-\d+$/.test(file)) && file !== name) rmSync(path.join(dir, file), { force: true });
  }
  return true;
}

/** A new P-256 key pair and a PKCS#10 request for it, naming `agentId` when given (renewal). */
export async function newKeyAndCsr(subject: { hostname: string } | { agentId: string }): Promise<{ keyPem: string; csrPem: string }> {
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256' } as const;
  const keys = await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    {
      name: `CN=${'agentId' in subject ? subject.agentId : subject.hostname}`,
      keys,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      ...('agentId' in subject ? { extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `hades://agent/${subject.agentId}` }])] } : {}),
    },
    webcrypto,
  );
  const keyPem = pemOf(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
  return { keyPem, csrPem: csr.toString('pem') };
}

export const caFingerprint = (caPem: string) => createHash('sha256').update(new X509Certificate(caPem).raw).digest('hex');

interface JsonResponse {
  readonly status: number;
  readonly body: unknown;
}

/** The largest answer httpsJson takes: the server's CA and enrollment answers are a few KB. */
const MAX_ANSWER_BYTES = 1024 * 1024;

/** An HTTPS JSON request; `ca` undefined means the server's certificate is not checked (the caller pins instead). */
export function httpsJson(url: string, options: { method?: string; body?: unknown; ca?: string; headers?: Record<string, string>; timeoutMs?: number }): Promise<JsonResponse> {
  return new Promise((resolve, reject) => {
    const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
    const req = request(
      url,
      {
        method: options.method ?? 'GET',
        ...(options.ca ? { ca: options.ca } : { rejectUnauthorized: false }),
        headers: { accept: 'application/json', ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}), ...options.headers },
        timeout: options.timeoutMs ?? 10_000,
      },
      (response) =>
        // A Hades server answers in a few KB.
        gatherAnswer(req, response, MAX_ANSWER_BYTES, () => new HadesError('HADES_ERR_SERVER_UNREACHABLE', `the answer is over ${MAX_ANSWER_BYTES} bytes: what answered is not a Hades server`), (text) => {
          let body: unknown = text;
          try {
            body = text ? JSON.parse(text) : null;
          } catch {
            // not JSON: kept as text
          }
          resolve({ status: response.statusCode ?? 0, body });
        }),
    );
    req.on('timeout', () => req.destroy(new HadesError('HADES_ERR_SERVER_UNREACHABLE', `no answer within ${options.timeoutMs ?? 10_000} ms`)));
    req.on('error', (error) => {
      // A server that asks for a client certificate before anything is the agent gateway (mutual TLS), not the API.
      const hint = /certificate required|alert number 116/i.test(error.message) ? ' (this address asks for a client certificate: it is probably the agent gateway; enrollment goes to the API address, outputs.server.api)' : '';
      reject(new HadesError('HADES_ERR_SERVER_UNREACHABLE', `${options.method ?? 'GET'} ${url}: ${error.message}${hint}`));
    });
    req.end(payload);
  });
}

function pemOf(der: ArrayBuffer, label: string): string {
  const base64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${base64}\n-----END ${label}-----\n`;
}

/** The most addresses an enrollment may give (the server's API refuses more). */
export const MAX_ENROLL_ADDRESSES = 64;

/** Link-local addresses (fe80::/10, 169.254.0.0/16): a host has one per interface, and no CMDB names them. */
const LINK_LOCAL = /^(fe[89ab][0-9a-f]:|169\.254\.)/i;

/**
 * The addresses an enrollment gives for the host (what the server's CMDB matches it by): its
 * interfaces' addresses other than loopback, each once, at most MAX_ENROLL_ADDRESSES, link-local
 * ones last. A container host has an interface per container (each with its own link-local
 * address), far more than the server takes: all of them would have it refuse the enrollment.
 */
export function hostAddresses(interfaces: NodeJS.Dict<os.NetworkInterfaceInfo[]>): string[] {
  const all = [...new Set(Object.values(interfaces).flatMap((list) => (list ?? []).filter((i) => !i.internal).map((i) => i.address)))];
  const ordered = [...all.filter((a) => !LINK_LOCAL.test(a)), ...all.filter((a) => LINK_LOCAL.test(a))];
  return ordered.slice(0, MAX_ENROLL_ADDRESSES);
}

export interface EnrollOptions {
  readonly dataDir: string;
  /** The server's API, e.g. https://hades.example:7080 */
  readonly api: string;
  readonly token: string;
  /** SHA-256 of the server's CA certificate (hex), printed with the token. */
  readonly caSha256: string;
  readonly agentVersion: string;
}

/** Enrolls this host and stores its identity; returns it. */
export async function enroll(options: EnrollOptions): Promise<Identity> {
  const api = options.api.replace(/\/+$/, '');
  const ca = await httpsJson(`${api}/api/v1/enroll/ca`, {});
  const caPem = (ca.body as { ca?: unknown } | null)?.ca;
  if (ca.status !== 200 || typeof caPem !== 'string') throw new HadesError('HADES_ERR_SERVER_UNREACHABLE', `${api} did not give its CA certificate (HTTP ${ca.status})`);
  let fingerprint: string;
  try {
    fingerprint = caFingerprint(caPem);
  } catch (error) {
    throw new HadesError('HADES_ERR_PKI', `${api} answered with a CA that is not a PEM certificate (${(error as Error).message}): not enrolling`, { cause: error });
  }
  if (fingerprint !== options.caSha256.toLowerCase().replace(/:/g, '')) {
    throw new HadesError('HADES_ERR_PKI', `the server's CA has SHA-256 ${fingerprint}, not the ${options.caSha256} given with the token: not enrolling`);
  }
  const { keyPem, csrPem } = await newKeyAndCsr({ hostname: os.hostname() });
  const interfaces = hostAddresses(os.networkInterfaces());
  const response = await httpsJson(`${api}/api/v1/enroll`, {
    method: 'POST',
    ca: caPem,
    body: { token: options.token, csr: csrPem, hostname: os.hostname(), addresses: interfaces, os: hostOs(), kernel: os.release(), version: options.agentVersion },
  });
  const body = response.body as { agent_id?: string; agentId?: string; certificate?: string; gateways?: string[]; code?: string; message?: string } | null;
  // Servers before 2026-11-29 name the id agentId (those since write both).
  const agentId = body?.agent_id ?? body?.agentId;
  // Any 2xx: servers answer 200 today and may answer 201 (an agent is created) later.
  if (response.status < 200 || response.status > 299 || !agentId || !body?.certificate) {
    // The server's own coded answer; anything else (a proxy's 502, a 2xx without a certificate)
    // says nothing about the token: it is the server that could not be used.
    const code = body?.code && isErrorCode(body.code) ? body.code : 'HADES_ERR_SERVER_UNREACHABLE';
    throw new HadesError(code, `enrollment ${code === 'HADES_ERR_SERVER_UNREACHABLE' ? `failed at ${api}: no answer from a Hades server` : `refused by ${api}`}: ${body?.message ?? `HTTP ${response.status}`}`);
  }
  const identity: Identity = { agentId, keyPem, certPem: body.certificate, caPem, gateways: body.gateways ?? [] };
  saveIdentity(options.dataDir, identity);
  return identity;
}
