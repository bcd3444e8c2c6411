// hades-test: shares the machine
/** The hades command against an address whose answer never ends: one coded line, not a stack trace. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Pki } from '../../src/server/pki.js';
import { runHades } from '../helpers/cli.js';

describe('an API answer that never ends', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'hades-api-answers-'));
  let server: https.Server;
  let api: string;
  let caFile: string;

  before(async () => {
    const pki = await Pki.open(path.join(dir, 'server'), { hostnames: ['localhost'], ips: ['127.0.0.1'] });
    caFile = path.join(dir, 'ca.pem');
    writeFileSync(caFile, pki.caPem);
    const chunk = Buffer.alloc(1 << 20, 0x61);
    server = https.createServer({ cert: pki.serverCertPem, key: pki.serverKeyPem }, (_request, response) => {
      response.setHeader('content-type', 'application/json');
      const pump = (): void => {
        while (!response.destroyed && response.write(chunk));
      };
      response.on('drain', pump);
      response.on('close', () => response.off('drain', pump));
      pump();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    api = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  it('hades agents list gives it up with HADES_ERR_SERVER_UNREACHABLE (the string it grew ended the command with a RangeError)', async () => {
    const r = await runHades(['agents', 'list', '--server', api, '--token', 'hadesapi_test', '--ca', caFile], { timeoutMs: 60_000 });
    assert.equal(r.status, 3, r.stderr);
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /^hades: HADES_ERR_SERVER_UNREACHABLE: .*the answer is over 256 MiB: what answered is not a Hades API/);
  });
});
