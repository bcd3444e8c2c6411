/**
 * Certificate renewal, the agent's side. The client certificate from enrollment expires (a year
 * by default); before it does, the agent makes a new key pair, sends a certificate request for
 * it on its gateway stream (mutually authenticated with the current certificate), checks the
 * certificate it gets back, stores key and certificate together (enroll.ts), and hands the new
 * identity to the transport, which reconnects with it after a random delay: the server switches
 * the agent to the new certificate at that connection and refuses the old one from then on.
 *
 * When: once less than a third of the certificate's lifetime is left, or less than a configured
 * window (capped at half the lifetime, so that a new certificate is never due at once), or soon
 * after the server asks (RenewNow, e.g. an operator who suspects the key leaked), after a random
 * delay that spreads a whole fleet asked at once, or at once when the request says so (`hades
 * agents renew --now`: the key may be in someone else's hands, and every second counts); then
 * the transport reconnects with the new certificate without its delay either. A renewal that
 * fails (no connection, no answer, a refusal, a disk error) is logged with its code and tried
 * again with exponential backoff; the current certificate stays in use meanwhile, and the event stream is not touched.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { HadesError, isErrorCode, toHadesError } from '../../common/errors.js';
import type { Logger } from '../../runtime/log.js';
import { caCertificates, newKeyAndCsr, saveRenewedIdentity, type Identity } from './enroll.js';

const DAY_MS = 86_400_000;
/** Longest single timer: Node's timers overflow beyond 2^31 - 1 ms (about 24.8 days). */
const MAX_TIMER_MS = DAY_MS;

export interface RenewalSettings {
  /** The agent's data folder (its identity is in `identity/`). */
  readonly dataDir: string;
  /** Renew when less than this is left (ms); 0: a third of the certificate's lifetime. */
  readonly renewBeforeMs: number;
  /** Random delay up to this (ms) before acting on the server's request, and before reconnecting with a new certificate. */
  readonly jitterMs: number;
  /** First retry delay after a failure (ms); doubles up to `retryMaxMs`. */
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
}

/** What the renewer needs from the transport. */
export interface RenewalPorts {
  /** Whether a stream is up (welcomed): a request can be sent now. */
  connected(): boolean;
  /** Sends a certificate request on the stream; resolves to the certificate (PEM) or rejects with a coded error. */
  request(csrPem: string): Promise<string>;
  /**
   * The new identity is stored: use it from the next connection. `immediately`: the server asked
   * for the renewal without delay, so reconnect with it without delay too.
   */
  renewed(identity: Identity, immediately: boolean): void;
}

export interface RenewalStats {
  renewals: number;
  failures: number;
  /** The code of the last failure, until a renewal succeeds. */
  lastError?: string;
}

/**
 * When a certificate valid from `notBefore` to `notAfter` (ms) is due for renewal: `renewBeforeMs`
 * before its end (capped at half its lifetime), or with a third of its lifetime left when 0.
 */
export function renewalDue(notBefore: number, notAfter: number, renewBeforeMs: number): number {
  const lifetime = Math.max(0, notAfter - notBefore);
  const window = renewBeforeMs > 0 ? Math.min(renewBeforeMs, lifetime / 2) : lifetime / 3;
  return notAfter - window;
}

/** Validity of a certificate (PEM) in ms since the epoch. */
export function validity(certPem: string): { notBefore: number; notAfter: number } {
  const cert = new X509Certificate(certPem);
  return { notBefore: Date.parse(cert.validFrom), notAfter: Date.parse(cert.validTo) };
}

/**
 * Checks what the server sent back: a certificate for `keyPem`, issued by a CA the agent
 * trusts (during a CA rotation, the new one of the two), naming this agent, not expired. Throws HADES_ERR_RENEW_FAILED otherwise. A start
 * (notBefore) later than `now` is accepted: the server backdates it by an hour only, and it is
 * the server's clock, not this host's, that checks the certificate at each connection; refusing
 * it would strand an agent whose clock lags (every renewal refused until the certificate in use
 * runs out).
 */
export function checkRenewedCertificate(certPem: string, keyPem: string, identity: Pick<Identity, 'agentId' | 'caPem'>, now: number): X509Certificate {
  const bad = (why: string) => new HadesError('HADES_ERR_RENEW_FAILED', `the server's answer is not a usable certificate: ${why}`);
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch {
    throw bad('it does not parse');
  }
  if (!cert.checkPrivateKey(createPrivateKey(keyPem))) throw bad('it is not for the new key');
  if (!caCertificates(identity.caPem).some((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey))) throw bad('it was not issued by the server\'s CA');
  if (cert.subject !== `CN=${identity.agentId}` || !(cert.subjectAltName ?? '').split(', ').includes(`URI:hades://agent/${identity.agentId}`)) throw bad(`it does not name agent ${identity.agentId}`);
  if (now >= Date.parse(cert.validTo)) throw bad(`it is not valid now (${cert.validFrom} to ${cert.validTo})`);
  return cert;
}

export class CertificateRenewer {
  readonly stats: RenewalStats = { renewals: 0, failures: 0 };
  private identity: Identity;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private closed = false;
  /** When the server's request is acted on (its jitter included); undefined when not asked. */
  private askedFor: number | undefined;
  /** The server asked for a renewal without delay, and it is not done yet. */
  private askedImmediately = false;
  private failures = 0;
  private retryAt = 0;
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(
    identity: Identity,
    private readonly settings: RenewalSettings,
    private readonly ports: RenewalPorts,
    private readonly log: Logger,
    clock: { now?: () => number; random?: () => number } = {},
  ) {
    this.identity = identity;
    this.now = clock.now ?? Date.now;
    this.random = clock.random ?? Math.random;
  }

  /** When the certificate now held is due for renewal (ms since the epoch). */
  dueAt(): number {
    const { notBefore, notAfter } = validity(this.identity.certPem);
    return renewalDue(notBefore, notAfter, this.settings.renewBeforeMs);
  }

  /** Starts watching the certificate's age. */
  start(): void {
    this.evaluate();
  }

  /** A stream is up: renew now if due (a renewal never starts without one). */
  connected(): void {
    this.evaluate();
  }

  /**
   * The server asks for a renewal: acted on after a random delay, or at once when `immediately`
   * (which also brings forward a request already waiting for its delay, and a retry waiting for
   * its backoff after a failed try).
   */
  requestedByServer(reason: string, immediately = false): void {
    if (this.closed) return;
    const now = this.now();
    if (immediately) {
      this.askedImmediately = true;
      this.askedFor = now;
      this.retryAt = now;
    } else {
      if (this.askedFor !== undefined) return;
      this.askedFor = now + Math.floor(this.random() * this.settings.jitterMs);
    }
    this.log.info('the server asks for a certificate renewal', { reason, in_ms: this.askedFor - now, immediately });
    this.evaluate();
  }

  /** The CAs trusted changed (a CA rotation): renewed certificates are checked against them. */
  trust(caPem: string): void {
    this.identity = { ...this.identity, caPem };
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private evaluate(): void {
    if (this.closed || this.running) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    const now = this.now();
    let due: number;
    try {
      due = Math.min(this.dueAt(), this.askedFor ?? Infinity);
    } catch (error) {
      this.log.error('the agent certificate does not parse; it is not renewed', { err: toHadesError(error) });
      return;
    }
    if (this.failures > 0) due = Math.max(due, this.retryAt);
    if (due > now) {
      this.timer = setTimeout(() => this.evaluate(), Math.min(due - now, MAX_TIMER_MS));
      this.timer.unref();
      return;
    }
    // Due, but a request needs a stream: connected() calls again when one is up.
    if (this.ports.connected()) void this.renew();
  }

  private async renew(): Promise<void> {
    this.running = true;
    const { agentId } = this.identity;
    const before = this.identity;
    try {
      const { keyPem, csrPem } = await newKeyAndCsr({ agentId });
      const certPem = await this.ports.request(csrPem);
      if (this.closed) return;
      // Against the CAs trusted now: a CA rotation's may have come while the request was out.
      const cert = checkRenewedCertificate(certPem, keyPem, this.identity, this.now());
      const renewed: Identity = { ...this.identity, keyPem, certPem };
      try {
        saveRenewedIdentity(this.settings.dataDir, renewed, cert.serialNumber);
      } catch (error) {
        throw new HadesError('HADES_ERR_RENEW_FAILED', `the new key and certificate cannot be stored: ${toHadesError(error).message}`, { cause: error });
      }
      this.identity = renewed;
      this.failures = 0;
      this.askedFor = undefined;
      const immediately = this.askedImmediately;
      this.askedImmediately = false;
      this.stats.renewals++;
      delete this.stats.lastError;
      this.log.info('agent certificate renewed; the next connection uses it', { agent: agentId, serial: cert.serialNumber.toLowerCase(), not_after: new Date(cert.validTo).toISOString() });
      this.ports.renewed(renewed, immediately);
    } catch (error) {
      const e = toHadesError(error);
      this.failures++;
      this.stats.failures++;
      this.stats.lastError = e.code;
      const minMs = this.settings.retryMinMs ?? 60_000;
      const maxMs = this.settings.retryMaxMs ?? 3_600_000;
      const delay = Math.min(maxMs, minMs * 2 ** Math.min(this.failures - 1, 30)) * (0.5 + this.random() / 2);
      this.retryAt = this.now() + delay;
      const { notAfter } = validity(before.certPem);
      this.log.warn('agent certificate renewal failed; the current certificate stays in use', {
        code: 'HADES_ERR_RENEW_FAILED',
        cause: e.code,
        err: e,
        retry_in_ms: Math.round(delay),
        expires: new Date(notAfter).toISOString(),
      });
    } finally {
      this.running = false;
      this.evaluate();
    }
  }
}

/** The coded error for the server's refusal of a renewal (its code when this agent knows it). */
export function refusal(code: string, message: string): HadesError {
  return new HadesError(isErrorCode(code) ? code : 'HADES_ERR_RENEW_FAILED', `the server refused the certificate renewal: ${message}`);
}
