// hades-test: shares the machine
/**
 * deploy/install.sh into a temporary root, from this built tree: what lands where with which
 * mode, a unit with every placeholder filled that systemd-analyze accepts without a warning, a
 * configuration the installed hades accepts, a second run that keeps the configuration and drops
 * stale files, and a clear refusal where the tree is not built. Nothing is started.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { projectRoot } from '../helpers/generated-docs.js';
import { AGENT_NODE_FLAGS } from '../../src/common/agent-node-flags.js';

const script = path.join(projectRoot, 'deploy', 'install.sh');
const built = existsSync(path.join(projectRoot, 'dist/src/cli/main.js')) && existsSync(path.join(projectRoot, 'driver/build/hades-driver'));
const systemdAnalyze = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((file) => existsSync(file));

interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function run(command: string, args: readonly string[]): Run {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 60_000 });
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function install(root: string, ...args: string[]): Run {
  return run('/bin/sh', [script, '--root', root, '--no-enable', ...args]);
}

function mode(file: string): string {
  return (statSync(file).mode & 0o7777).toString(8);
}

describe('deploy/install.sh', { skip: !built && 'the project is not built (dist/ or driver/build/hades-driver is missing)' }, () => {
  const root = mkdtempSync(path.join(tmpdir(), 'hades-install-'));
  const prefix = path.join(root, 'opt/hades');
  const unitFile = path.join(root, 'etc/systemd/system/hades-agent.service');
  const config = path.join(root, 'etc/hades/agent.yaml');
  let first: Run;

  before(() => {
    first = install(root);
  });

  after(() => rmSync(root, { recursive: true, force: true }));

  it('installs the program, the unit, the configuration and the folders, with their modes', () => {
    assert.equal(first.status, 0, first.stderr);
    assert.equal(first.stderr, '');
    for (const file of ['bin/hades.js', 'dist/src/cli/main.js', 'package.json', 'deploy/README.md', 'node_modules/yaml/package.json', 'node_modules/commander/package.json']) {
      assert.ok(existsSync(path.join(prefix, file)), `${file} is missing`);
    }
    assert.equal(mode(path.join(prefix, 'driver/build/hades-driver')), '755');
    if (existsSync(path.join(projectRoot, 'driver/build/manifest.json'))) assert.ok(existsSync(path.join(prefix, 'driver/build/manifest.json')));
    assert.equal(existsSync(path.join(prefix, 'node_modules/typescript')), false, 'development dependencies stay behind');
    assert.equal(existsSync(path.join(prefix, 'dist/test')), false, 'compiled tests stay behind');
    assert.equal(mode(unitFile), '644');
    assert.equal(mode(config), '600');
    assert.equal(mode(path.join(root, 'var/lib/hades')), '700');
    assert.equal(mode(path.join(root, 'var/log/hades')), '750');
    assert.match(first.stdout, /wrote .*agent\.yaml/);
  });

  it('fills every placeholder of the unit', () => {
    const unit = readFileSync(unitFile, 'utf8');
    assert.doesNotMatch(unit, /@[A-Z_]+@/);
    // With the agent's V8 flags, the same as `hades start` and the benchmarks give it.
    const flags = AGENT_NODE_FLAGS.join(' ');
    assert.match(unit, new RegExp(`^ExecStart=/\\S*node ${flags} /opt/hades/bin/hades\\.js agent --config /etc/hades/agent\\.yaml$`, 'm'));
    assert.doesNotMatch(unit, new RegExp(root), 'the unit names paths on the target, not in the staging root');
  });

  it('writes a configuration the installed hades accepts', () => {
    const check = run(process.execPath, [path.join(prefix, 'bin/hades.js'), 'config', 'check', config]);
    assert.equal(check.status, 0, check.stderr);
    assert.match(check.stdout, /ok \(agent configuration\)/);
  });

  it('installs a unit that systemd-analyze verify accepts without a warning', { skip: !systemdAnalyze && 'systemd-analyze is not installed' }, () => {
    // The unit's path is given directly: --root would need the whole of systemd in the root.
    const verify = run(systemdAnalyze ?? '', ['verify', unitFile]);
    const aboutUnit = verify.stderr.split('\n').filter((line) => line.includes('hades-agent'));
    assert.deepEqual(aboutUnit, []);
    assert.equal(verify.status, 0, verify.stderr);
  });

  it('runs again without harm: keeps the configuration, drops stale program files', () => {
    appendFileSync(config, '# edited by the operator\n');
    writeFileSync(path.join(prefix, 'dist/src/stale.js'), '');
    const again = install(root);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /kept the existing .*agent\.yaml/);
    assert.match(readFileSync(config, 'utf8'), /# edited by the operator\n$/);
    assert.equal(mode(config), '600');
    assert.equal(existsSync(path.join(prefix, 'dist/src/stale.js')), false);
    assert.deepEqual(readdirSync(path.join(root, 'opt')), ['hades'], 'no staging folder left behind');
  });

  it('refuses an upgrade that the existing configuration does not pass, and changes nothing', () => {
    const before = readFileSync(config, 'utf8');
    writeFileSync(path.join(prefix, 'dist/src/marker.js'), '');
    appendFileSync(config, 'no_such_key: 1\n');
    try {
      const refused = install(root);
      assert.equal(refused.status, 2, refused.stderr);
      assert.match(refused.stderr, /agent\.yaml is not valid for this version .*nothing was changed/);
      assert.ok(existsSync(path.join(prefix, 'dist/src/marker.js')), 'the installed program is the one before');
      assert.deepEqual(readdirSync(path.join(root, 'opt')), ['hades'], 'no staging folder left behind');
    } finally {
      writeFileSync(config, before);
      rmSync(path.join(prefix, 'dist/src/marker.js'), { force: true });
    }
  });

  it('installs into another prefix', () => {
    const other = mkdtempSync(path.join(tmpdir(), 'hades-install-'));
    try {
      const result = install(other, '--prefix', '/usr/local/lib/hades/');
      assert.equal(result.status, 0, result.stderr);
      assert.ok(existsSync(path.join(other, 'usr/local/lib/hades/bin/hades.js')));
      assert.match(readFileSync(path.join(other, 'etc/systemd/system/hades-agent.service'), 'utf8'), /^ExecStart=\S+ (--\S+ )*\/usr\/local\/lib\/hades\/bin\/hades\.js /m);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });
});

describe('deploy/install.sh refusals', () => {
  it('refuses a tree that is not built, before writing anything', () => {
    const tree = mkdtempSync(path.join(tmpdir(), 'hades-unbuilt-'));
    try {
      for (const file of ['deploy/install.sh', 'deploy/hades-agent.service', 'package.json', 'bin/hades.js']) {
        mkdirSync(path.dirname(path.join(tree, file)), { recursive: true });
        copyFileSync(path.join(projectRoot, file), path.join(tree, file));
      }
      const target = path.join(tree, 'target');
      const result = run('/bin/sh', [path.join(tree, 'deploy/install.sh'), '--root', target, '--no-enable']);
      assert.equal(result.status, 3);
      assert.match(result.stderr, /is not built \(missing: dist\/src\/cli\/main\.js driver\/build\/hades-driver\); run `npm run bootstrap`/);
      assert.equal(existsSync(target), false);
    } finally {
      rmSync(tree, { recursive: true, force: true });
    }
  });

  it('refuses a bad command line with status 2', () => {
    for (const args of [['--prefix', 'opt/hades'], ['--prefix', '/usr'], ['--prefix', '/opt/../etc'], ['--prefix', '/opt/ha des'], ['--root', 'relative'], ['--frobnicate'], ['--root']]) {
      const result = run('/bin/sh', [script, ...args]);
      assert.equal(result.status, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, /^install\.sh: /);
    }
  });
});
