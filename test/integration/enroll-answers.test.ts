// hades-test: shares the machine
/** The agent's side of enrollment against a server that answers with another 2xx or refuses. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { caFingerprint, enroll, loadIdentity } from '../../src/agent/transport/enroll.js';
import { HadesError } from '../../src/common/errors.js';
import { Pki } from '../../src/server/pki.js';

describe('enrollment answers', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'hades-enroll-answers-'));
  let pki: Pki;
  let server: https.Server;
  let api: string;
  /** The status the fake server answers enrollment with. */
  let status = 201;
  /** The CA answer is not a certificate. */
  let junkCa = false;
  /** The server is one before 2026-11-29, which names the agent's id agentId. */
  let camelCase = false;
  /** What answers is no Hades server: its answer never ends. */
  let endless = false;

  before(async () => {
    pki = await Pki.open(path.join(dir, 'server'), { hostnames: ['localhost'], ips: ['127.0.0.1'] });
    server = https.createServer({ cert: pki.serverCertPem, key: pki.serverKeyPem }, (request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        void (async () => {
          response.setHeader('content-type', 'application/json');
          if (endless) {
            const chunk = Buffer.alloc(1 << 20, 0x61);
            const pump = (): void => {
              while (!response.destroyed && response.write(chunk));
            };
            response.on('drain', pump);
            response.on('close', () => response.off('drain', pump));
            pump();
            return;
          }
          if (request.url === '/api/v1/enroll/ca') {
            response.end(JSON.stringify({ ca: junkCa ? 'junk' : pki.caPem }));
            return;
          }
          if (status === 502) {
            // A proxy in front of the server: no Hades answer at all.
            response.setHeader('content-type', 'text/html');
            response.statusCode = 502;
            response.end('<html>Bad Gateway</html>');
            return;
          }
          const { csr } = JSON.parse(body) as { csr: string };
          const agentId = `agent-${status}`;
          const issued = await pki.signAgentCsr(csr, agentId);
          response.statusCode = status;
          const id = camelCase ? { agentId } : { agent_id: agentId };
          response.end(status < 300 ? JSON.stringify({ ...id, certificate: issued.certPem, gateways: ['127.0.0.1:7443'] }) : JSON.stringify({ code: 'HADES_ERR_ENROLL_TOKEN_INVALID', message: 'token already used' }));
        })();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    api = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  it('takes a 201 as a 200', async () => {
    status = 201;
    const dataDir = path.join(dir, 'agent-201');
    const identity = await enroll({ dataDir, api, token: 'hadesenr_x', caSha256: caFingerprint(pki.caPem), agentVersion: '0.1.0' });
    assert.equal(identity.agentId, 'agent-201');
    assert.equal(loadIdentity(dataDir)?.agentId, 'agent-201');
  });

  it('enrolls with a server before 2026-11-29, whose answer names the id agentId', async () => {
    status = 200;
    camelCase = true;
    try {
      const dataDir = path.join(dir, 'agent-camel');
      const identity = await enroll({ dataDir, api, token: 'hadesenr_x', caSha256: caFingerprint(pki.caPem), agentVersion: '0.1.0' });
      assert.equal(identity.agentId, 'agent-200');
      assert.equal(loadIdentity(dataDir)?.agentId, 'agent-200');
    } finally {
      camelCase = false;
    }
  });

  it('gives up an answer that never ends with HADES_ERR_SERVER_UNREACHABLE (the string it grew ended the agent with a RangeError)', async () => {
    endless = true;
    try {
      const dataDir = path.join(dir, 'agent-endless');
      const started = Date.now();
      await assert.rejects(enroll({ dataDir, api, token: 'hadesenr_x', caSha256: caFingerprint(pki.caPem), agentVersion: '0.1.0' }), (error: unknown) => {
        assert.ok(error instanceof HadesError, String(error));
        assert.equal(error.code, 'HADES_ERR_SERVER_UNREACHABLE');
        assert.match(error.message, /enroll\/ca: the answer is over 1048576 bytes: what answered is not a Hades server/);
        return true;
      });
      assert.ok(Date.now() - started < 5000, 'given up after the first MiB, not after hundreds');
      assert.equal(loadIdentity(dataDir), undefined);
    } finally {
      endless = false;
    }
  });

  it('refuses anything else with the server\'s code and stores nothing', async () => {
    status = 409;
    const dataDir = path.join(dir, 'agent-409');
    await assert.rejects(enroll({ dataDir, api, token: 'hadesenr_x', caSha256: caFingerprint(pki.caPem), agentVersion: '0.1.0' }), (error: Error & { code?: string }) => error.code === 'HADES_ERR_ENROLL_TOKEN_INVALID' && /token already used/.test(error.message));
    assert.equal(loadIdentity(dataDir), undefined);
  });

  it('blames the server, not the token, for an answer that is no Hades answer, and a CA that is no certificate', async () => {
    status = 502;
    const dataDir = path.join(dir, 'agent-502');
    const options = { dataDir, api, token: 'hadesenr_x', caSha256: caFingerprint(pki.caPem), agentVersion: '0.1.0' };
    await assert.rejects(enroll(options), (error: Error & { code?: string }) => error.code === 'HADES_ERR_SERVER_UNREACHABLE' && /HTTP 502/.test(error.message));
    junkCa = true;
    try {
      await assert.rejects(enroll(options), (error: Error & { code?: string }) => error.code === 'HADES_ERR_PKI' && /not a PEM certificate/.test(error.message));
    } finally {
      junkCa = false;
    }
    assert.equal(loadIdentity(dataDir), undefined);
  });
});
