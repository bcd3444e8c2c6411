/**
 * Agent certificate renewal, the server's side. An agent renews over its gateway stream, which
 * mutual TLS already authenticated: it sends a certificate request for a new key pair, naming
 * its own id. The server checks that the certificate the stream presented is still the agent's
 * (not revoked, not replaced since), that the request names that agent and no other, and that
 * the key is new; it signs with the lifetime of an enrollment's certificate and records the
 * result as the agent's next certificate (registry.ts), then answers on the stream. The agent's
 * first connection with the new certificate makes it the one in use and retires the old one.
 *
 * `authorize` is the gateway's check of every new connection; it lives here because that is
 * where a next certificate turns into the current one.
 */
import { HadesError } from '../../common/errors.js';
import type { Logger } from '../../runtime/log.js';
import type { IssuedCertificate, Pki } from '../pki.js';
import type { FleetRegistry } from './registry.js';

export interface CertificateRenewalOptions {
  readonly pki: Pki;
  readonly registry: FleetRegistry;
  readonly log: Logger;
}

export class CertificateRenewal {
  constructor(private readonly options: CertificateRenewalOptions) {}

  /**
   * The agent a TLS peer certificate (DER) belongs to; HADES_ERR_AGENT_UNKNOWN or _REVOKED
   * otherwise. The first connection with a renewed certificate makes it the one in use.
   */
  authorize(peer: Uint8Array): { agentId: string; fingerprint: string } {
    const { pki, registry, log } = this.options;
    const identity = pki.agentIdentity(peer);
    if (!identity) {
      // Left on a CA retired (a forced retire-old): said so, with what to do.
      const retired = pki.retiredIssuer(peer);
      if (retired) {
        throw new HadesError(
          'HADES_ERR_CA_RETIRED',
          `the certificate of ${retired.agentId ? `agent ${retired.agentId}` : 'this client'} was issued by the CA ${retired.ca.sha256}, which this server retired (hades server ca retire-old) before the agent moved to the new CA; the agent must be enrolled again: stop it, move its identity folder aside and start it with a fresh token (hades server token create)`,
        );
      }
      throw new HadesError('HADES_ERR_AGENT_UNKNOWN', 'the client certificate was not issued by this server');
    }
    const { agent, switched } = registry.authorizeConnection(identity.agentId, identity.fingerprint);
    if (switched) log.info('agent uses its renewed certificate; the one before is refused from now on', { agent: agent.id, serial: agent.certSerial, not_after: agent.certNotAfter });
    return { agentId: identity.agentId, fingerprint: identity.fingerprint };
  }

  /**
   * Issues a new certificate for `csrPem` to the agent whose stream presented `peer` (DER), and
   * records it as the agent's next certificate. Refusals: HADES_ERR_AGENT_REVOKED,
   * HADES_ERR_AGENT_UNKNOWN (the certificate presented is no longer the agent's),
   * HADES_ERR_RENEW_IDENTITY (the request names another agent), HADES_ERR_RENEW_REQUEST_INVALID.
   */
  async renew(agentId: string, csrPem: string, peer: Uint8Array): Promise<IssuedCertificate> {
    const { pki, registry, log } = this.options;
    try {
      const presented = pki.agentIdentity(peer);
      if (!presented || presented.agentId !== agentId) throw new HadesError('HADES_ERR_AGENT_UNKNOWN', `the certificate of agent ${agentId}'s stream is no longer valid`);
      // Revoked or replaced since the stream opened: refused before anything is signed.
      const agent = registry.get(agentId);
      if (!agent) throw new HadesError('HADES_ERR_AGENT_UNKNOWN', `no enrolled agent has the id ${agentId}`);
      if (agent.revokedAt !== undefined) throw new HadesError('HADES_ERR_AGENT_REVOKED', `agent ${agentId} was revoked at ${agent.revokedAt}; it cannot renew`);
      if (agent.certFingerprint !== presented.fingerprint) throw new HadesError('HADES_ERR_AGENT_UNKNOWN', `agent ${agentId} renews with a certificate that is no longer in use`);
      const issued = await pki.renewAgentCsr(csrPem, agentId, peer);
      // Checked again in the same statement that records it: signing took a while.
      registry.setNextCertificate(agentId, presented.fingerprint, issued);
      log.info('agent certificate renewed', { agent: agentId, serial: issued.serial, not_after: issued.notAfter, replaces: presented.serial });
      return issued;
    } catch (error) {
      log.warn('agent certificate renewal refused', { agent: agentId, err: error });
      throw error;
    }
  }
}
