#!/usr/bin/env node
// Idempotent bootstrap for `npm start` and `npm test` on a fresh Debian 12 machine with Node 20:
// system packages, npm dependencies, the C driver and the TypeScript build. Every step checks
// first and is skipped quickly when already done. Plain JavaScript with no dependencies, since
// it runs before `npm ci`. Error codes are those of src/common/errors.ts.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync, lstatSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const started = Date.now();
const done = [];

/**
 * Debian packages the build and the tests need: the driver toolchain, g++ and python3 for the
 * native build of better-sqlite3 (node-gyp), and setpriv (util-linux) that integration tests run.
 */
const APT_PACKAGES = ['make', 'gcc', 'g++', 'clang', 'llvm', 'libbpf-dev', 'bpftool', 'libelf-dev', 'zlib1g-dev', 'pkg-config', 'python3', 'util-linux'];

/**
 * Only for `npm test` (`--test`): the daemons whose logs the log collector's tests read (sshd and
 * its client, sudo, rsyslog; journald comes with systemd). Installed with services kept from
 * starting (policy-rc.d): a test starts its own, on its own ports and files.
 */
const TEST_APT_PACKAGES = ['openssh-server', 'openssh-client', 'sudo', 'rsyslog', 'systemd'];
const forTests = process.argv.includes('--test');

function fail(code, message) {
  process.stderr.write(`bootstrap: ${code}: ${message}\n`);
  process.exit(3);
}

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], ...options });
  if (result.error || result.status !== 0) {
    const why = result.error ? result.error.message : `exit status ${result.status}`;
    fail('HADES_ERR_BOOTSTRAP_STEP_FAILED', `\`${command} ${args.join(' ')}\` failed (${why})`);
  }
}

function checkNode() {
  const [major, minor] = process.versions.node.split('.').map(Number);
  if (major < 20 || (major === 20 && minor < 19)) {
    fail('HADES_ERR_BOOTSTRAP_NODE_VERSION', `Node.js ${process.versions.node} is too old; Hades needs 20.19 or later`);
  }
}

function missingPackages(wanted) {
  const result = spawnSync('dpkg-query', ['-W', '-f=${Package} ${db:Status-Status}\\n', ...wanted], { encoding: 'utf8' });
  if (result.error) fail('HADES_ERR_BOOTSTRAP_STEP_FAILED', `dpkg-query is not available (${result.error.message}); Hades bootstraps on Debian`);
  const installed = new Set(
    result.stdout
      .split('\n')
      .filter((line) => line.endsWith(' installed'))
      .map((line) => line.split(' ')[0].split(':')[0]),
  );
  return wanted.filter((p) => !installed.has(p));
}

function aptPackages() {
  const extra = (process.env.HADES_BOOTSTRAP_EXTRA_PACKAGES ?? '').split(/[\s,]+/).filter(Boolean);
  const missing = missingPackages([...APT_PACKAGES, ...(forTests ? TEST_APT_PACKAGES : []), ...extra]);
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    fail(
      'HADES_ERR_BOOTSTRAP_NOT_ROOT',
      `these Debian packages are missing and installing them needs root: ${missing.join(' ')}; run as root, or run \`apt-get install -y ${missing.join(' ')}\` as root first`,
    );
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  run('apt-get', ['update', '-qq'], { env });
  // Installing a daemon's package starts it on Debian unless policy-rc.d says no: a bootstrap
  // starts no service (the tests start their own). A policy-rc.d already there is left alone.
  const policy = '/usr/sbin/policy-rc.d';
  const ownPolicy = !existsSync(policy);
  if (ownPolicy) writeFileSync(policy, '#!/bin/sh\n# written by the Hades bootstrap while it installs packages\nexit 101\n', { mode: 0o755 });
  const result = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], env });
  if (ownPolicy) rmSync(policy, { force: true });
  if (result.error || result.status !== 0) fail('HADES_ERR_BOOTSTRAP_STEP_FAILED', `\`apt-get install ${missing.join(' ')}\` failed (${result.error ? result.error.message : `exit status ${result.status}`})`);
  done.push(`installed ${missing.join(' ')}`);
}

function npmDependencies() {
  const lock = path.join(root, 'package-lock.json');
  const stamp = path.join(root, 'node_modules', '.hades-lock-sha256');
  const hash = createHash('sha256').update(readFileSync(lock)).digest('hex');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === hash) return;
  // Native modules build from source against the system's Node headers (.npmrc: nodedir):
  // prebuilt downloads are unreachable here, and nothing may download binaries at install time.
  run('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { env: { ...process.env, npm_config_build_from_source: 'true' } });
  writeFileSync(stamp, hash);
  done.push('npm ci');
}

/** The TypeScript sources with their modification times, so that an edit, an added and a deleted file all count. */
function sources(dir, out = []) {
  if (!existsSync(dir)) return out;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name === 'dist' || entry.name.startsWith('.')) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) sources(full, out);
    else if (entry.name.endsWith('.ts')) out.push(`${path.relative(root, full)} ${statSync(full).mtimeMs}`);
  }
  return out;
}

function typescriptBuild() {
  const stamp = path.join(root, 'dist', '.build-stamp');
  const inputs = [
    ...['src', 'test', 'scripts', 'bench'].flatMap((d) => sources(path.join(root, d))).sort(),
    `tsconfig.json ${statSync(path.join(root, 'tsconfig.json')).mtimeMs}`,
    `package-lock.json ${statSync(path.join(root, 'package-lock.json')).mtimeMs}`,
  ];
  const digest = createHash('sha256').update(inputs.join('\n')).digest('hex');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === digest) return;
  run(path.join(root, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json']);
  removeStaleOutputs(path.join(root, 'dist'));
  mkdirSync(path.dirname(stamp), { recursive: true });
  writeFileSync(stamp, digest);
  done.push('TypeScript build');
}

/** Removes compiled files whose source is gone (a deleted test must not keep running). */
function removeStaleOutputs(dir) {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      removeStaleOutputs(full);
      continue;
    }
    const match = /^(.*)\.js(\.map)?$/.exec(entry.name);
    if (!match) continue;
    const source = path.join(root, path.relative(path.join(root, 'dist'), path.dirname(full)), `${match[1]}.ts`);
    if (!existsSync(source)) rmSync(full, { force: true });
  }
}

function driverBuild() {
  if (!existsSync(path.join(root, 'driver', 'Makefile'))) return;
  // `make -q` answers "up to date?" without building; make itself is incremental.
  const upToDate = spawnSync('make', ['-q', '-C', 'driver'], { cwd: root, stdio: 'ignore' }).status === 0;
  if (upToDate) return;
  run('make', ['-s', '-C', 'driver']);
  done.push('driver build');
}

/** Lets `npx hades` find the project's own command in a clone. */
function linkCommand() {
  const bin = path.join(root, 'node_modules', '.bin');
  const link = path.join(bin, 'hades');
  const target = path.relative(bin, path.join(root, 'bin', 'hades.js'));
  try {
    if (lstatSync(link).isSymbolicLink()) return;
    unlinkSync(link);
  } catch {
    // absent: create it below
  }
  mkdirSync(bin, { recursive: true });
  symlinkSync(target, link);
}

checkNode();
aptPackages();
npmDependencies();
driverBuild();
typescriptBuild();
linkCommand();
const seconds = ((Date.now() - started) / 1000).toFixed(1);
process.stderr.write(`bootstrap: ${done.length ? done.join(', ') : 'up to date'} (${seconds} s)\n`);
