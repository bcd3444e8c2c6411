/** File outputs' paths that would fail every write, refused by the configuration check (src/common/config/alert-outputs.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkAlertOutputs } from '../../src/common/config/alert-outputs.js';
import { outputsConfig } from '../helpers/alert-outputs.js';

const problemsOf = (paths: readonly string[]) =>
  checkAlertOutputs(outputsConfig(`alerts:\n  outputs:\n${paths.map((p, i) => `    - { name: o${i}, type: file, file: { path: "${p}" } }`).join('\n')}\n`));

describe('file outputs\' paths', () => {
  it('refuses a folder, and places where no file can be appended to and rotated', () => {
    for (const [path, message] of [
      ['/var/log/hades/', /names a folder; give the file's path, such as \/var\/log\/hades\/alerts\.ndjson/],
      ['/var/log/hades/.', /names a folder/],
      ['/', /names a folder/],
      ['/proc/self/status', /is in \/proc, where no file can be appended to and rotated/],
      ['/sys/kernel/x', /is in \/sys/],
      ['/dev/shm/../null', /is in \/dev/],
    ] as const) {
      const problems = problemsOf([path]);
      assert.equal(problems.length, 1, path);
      assert.equal(problems[0]?.code, 'HADES_ERR_ALERT_OUTPUT_CONFIG');
      assert.equal(problems[0]?.path, 'alerts.outputs.0.file.path');
      assert.match(problems[0]?.message ?? '', message);
    }
    assert.deepEqual(problemsOf(['/var/log/hades/alerts.ndjson', '/srv/devices/x', '/var/log/procs.ndjson']), []);
  });

  it('refuses two outputs of which one writes the other\'s rotated file, either way round', () => {
    for (const pair of [
      ['/var/log/a.ndjson', '/var/log/a.ndjson.1'],
      ['/var/log/a.ndjson.12', '/var/log/./a.ndjson'],
    ]) {
      const problems = problemsOf(pair);
      assert.equal(problems.length, 1, pair.join(' '));
      assert.match(problems[0]?.message ?? '', /are one the other's rotated file: their rotations would move and delete each other's alerts/);
    }
    assert.deepEqual(problemsOf(['/var/log/a.ndjson', '/var/log/a.ndjson.old', '/var/log/a.ndjson-1']), []);
    assert.match(problemsOf(['/var/log/a', '/var/log/a'])[0]?.message ?? '', /written by output 'o0' already/);
  });
});
