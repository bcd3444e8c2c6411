// hades-test: runs alone (it mounts a small tmpfs to fill a disk)
/**
 * The NDJSON file output on a disk that fills up, on a real tmpfs: apart from the other outputs'
 * tests (alert-outputs.test.ts) so that they share the machine while this one runs alone.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { closeAll, create, makeAlert, retryYaml, statsOf, tempDir, waitFor } from '../helpers/alert-outputs.js';

after(closeAll);

describe('alert outputs: file on a full disk', () => {
  it('on a full disk, takes back the part of a line it wrote, so that the retried line is whole', async (t) => {
    const dir = tempDir();
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'ignore' });
    } catch {
      t.skip('cannot mount a tmpfs (needs root)');
      return;
    }
    const file = path.join(dir, 'alerts.ndjson');
    const outputs = create(`alerts: { outputs: [ { name: f, type: file, ${retryYaml}, file: { path: ${file} } } ] }`);
    try {
      const filler = path.join(dir, 'filler');
      writeFileSync(filler, Buffer.alloc(40 * 1024));
      // 10 kB each: the third finds about 4 kB left, takes the start of it and refuses the rest.
      const alerts = Array.from({ length: 4 }, () => makeAlert({ message: 'x'.repeat(10_000) }));
      for (const alert of alerts) outputs.send(alert);
      await waitFor('a full disk', () => statsOf(outputs, 'f').last_error?.message.includes('ENOSPC'));
      assert.equal(statsOf(outputs, 'f').sent, 2);
      assert.equal(readFileSync(file, 'utf8'), alerts.slice(0, 2).map((a) => `${JSON.stringify(a)}\n`).join(''), 'half a line left in the file');
      rmSync(filler);
      await waitFor('every line', () => statsOf(outputs, 'f').sent === 4);
      await outputs.close();
      assert.equal(readFileSync(file, 'utf8'), alerts.map((a) => `${JSON.stringify(a)}\n`).join(''));
      assert.equal(statsOf(outputs, 'f').failed, 0);
    } finally {
      await outputs.close(0);
      execFileSync('umount', [dir]);
    }
  });

});
