#!/usr/bin/env node
/**
 * Runs the compiled test suite (dist/test) with Node's test runner, in two phases:
 *
 * 1. files that share the machine: every unit test (but those marked `// hades-test: runs
 *    alone`, which mount a file system), and the files that say so on a line of their own
 *    (`// hades-test: shares the machine`, the reason after it if need be): servers on
 *    ephemeral loopback ports and pure command-line work, nothing machine-wide. Two files at a
 *    time.
 * 2. every other file, one at a time: they load kernel hooks and see every process on the host
 *    (another test's reverse shell would be in their events), bind fixed ports such as 53, or
 *    change what the host runs (sshd, rsyslog, journald, cgroups).
 *
 *   node scripts/test.mjs [--serial] [FILE_OR_DIRECTORY ...]   (default: dist/test)
 *
 * `--serial` runs everything one file at a time (as before the phases). The exit code is the
 * first failing phase's; both phases run, so that a run reports every failure.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MARKER = '// hades-test: shares the machine';
/** A unit test that touches the host (mounts a file system): run alone all the same. */
const ALONE = '// hades-test: runs alone';
const COMMON = ['--test', '--test-reporter=spec', '--test-timeout=300000'];

const argv = process.argv.slice(2);
const serial = argv.includes('--serial');
const targets = argv.filter((a) => a !== '--serial');

/** Every *.test.js under the paths given, sorted (the runner's own order). */
function testFiles(paths) {
  const out = [];
  const walk = (p) => {
    const s = statSync(p);
    if (s.isDirectory()) for (const name of readdirSync(p)) walk(path.join(p, name));
    else if (p.endsWith('.test.js')) out.push(p);
  };
  for (const p of paths) walk(path.resolve(root, p));
  return out.sort();
}

/** The lines of a file's start (its header comment), trimmed. */
function headLines(file) {
  const fd = openSync(file, 'r');
  try {
    const buffer = Buffer.alloc(4096);
    const n = readSync(fd, buffer, 0, buffer.length, 0);
    return buffer.subarray(0, n).toString('utf8').split('\n').map((line) => line.trim());
  } finally {
    closeSync(fd);
  }
}

/** Unit tests share the machine unless marked to run alone; the others when marked so. */
function sharesMachine(file) {
  const head = headLines(file);
  if (file.split(path.sep).includes('unit')) return !head.some((line) => line === ALONE || line.startsWith(`${ALONE} `));
  return head.some((line) => line === MARKER || line.startsWith(`${MARKER} `));
}

function run(label, files, concurrency) {
  if (files.length === 0) return 0;
  process.stdout.write(`\n# ${label}: ${files.length} files, ${concurrency} at a time\n`);
  const r = spawnSync(process.execPath, [...COMMON, `--test-concurrency=${concurrency}`, ...files], { cwd: root, stdio: 'inherit' });
  if (r.error) throw r.error;
  return r.status ?? 1;
}

const files = testFiles(targets.length > 0 ? targets : ['dist/test']);
if (files.length === 0) {
  process.stderr.write(`test: no *.test.js under ${targets.join(' ') || 'dist/test'} (build first: npm run build)\n`);
  process.exit(1);
}
const shared = serial ? [] : files.filter(sharesMachine);
const alone = files.filter((f) => !shared.includes(f));
const first = run('tests that share the machine', shared, 2);
const second = run('tests that run alone', alone, 1);
process.exit(first !== 0 ? first : second);
