import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { projectRoot } from '../helpers/generated-docs.js';

const isRoot = process.getuid?.() === 0;

function bootstrap(options: { uid?: number; gid?: number; env?: NodeJS.ProcessEnv } = {}) {
  return spawnSync(process.execPath, ['scripts/bootstrap.mjs'], { cwd: projectRoot, encoding: 'utf8', timeout: 120_000, ...options });
}

describe('bootstrap', () => {
  it('is idempotent and quick once everything is in place', () => {
    const started = Date.now();
    const r = bootstrap();
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /bootstrap: up to date/);
    assert.ok(Date.now() - started < 10_000, 'a bootstrap with nothing to do takes seconds at most');
  });

  it('says what it needs when a system package is missing and it is not root', { skip: !isRoot && 'needs root to switch to an unprivileged user' }, () => {
    const r = bootstrap({ uid: 65534, gid: 65534, env: { ...process.env, HOME: '/tmp', HADES_BOOTSTRAP_EXTRA_PACKAGES: 'hades-test-no-such-package' } });
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stderr, /^bootstrap: HADES_ERR_BOOTSTRAP_NOT_ROOT: .*needs root: hades-test-no-such-package/m);
  });
});
