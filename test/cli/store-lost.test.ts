// hades-test: shares the machine (a server on ephemeral loopback ports)
/**
 * `hades server` whose database is lost while it runs, and whose restart on the copy put back
 * cannot start (a TLS file of an alert output removed meanwhile): the command ends with the
 * restart's coded error instead of running on without a server, and the database is at its path.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { Pki } from '../../src/server/pki.js';
import { projectRoot } from '../helpers/generated-docs.js';
import { cleanupTempDirs, tempDir, waitUntil } from '../helpers/server.js';

after(cleanupTempDirs);

describe('hades server when its database is lost', () => {
  it('ends with the coded error of a restart that cannot start, the database put back at its path', { timeout: 60_000 }, async () => {
    const dir = tempDir('hades-store-lost-cli-');
    // Any CA file will do for the output (it is only read at start).
    const caFile = path.join(dir, 'ca.pem');
    writeFileSync(caFile, (await Pki.open(path.join(dir, 'other-pki'), { hostnames: ['localhost'], ips: [] })).caPem);
    const dataDir = path.join(dir, 'data');
    const config = path.join(dir, 'server.yaml');
    writeFileSync(config, `data_dir: ${dataDir}\nlisten: { api: "127.0.0.1:0", agents: "127.0.0.1:0" }\nalerts:\n  outputs:\n    - { name: d, type: syslog, syslog: { host: localhost, tls: { ca_file: ${caFile} } } }\n`);
    const child = spawn(process.execPath, [`${projectRoot}bin/hades.js`, 'server', '--config', config], { cwd: projectRoot, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (status) => resolve(status)));
    try {
      await waitUntil('the server to listen', () => stderr.includes('hades: server listening'), 30_000, 100);
      const file = path.join(dataDir, 'hades.db');
      rmSync(caFile);
      rmSync(file);
      const status = await exited;
      assert.equal(status, 3, stderr);
      assert.match(stderr, /HADES_ERR_STORE_LOST/);
      assert.match(stderr, /^hades: HADES_ERR_ALERT_OUTPUT_TLS: /m);
      assert.ok(existsSync(file), 'the database is back at its path');
      const db = new Database(file, { readonly: true });
      try {
        assert.ok((db.prepare('SELECT count(*) AS n FROM schema_migrations').get() as { n: number }).n > 0, 'with its content');
      } finally {
        db.close();
      }
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
});
