/**
 * `hades events` against the real kernel, as root: a program run from a folder nested deeper than
 * the eBPF driver reads a path (64 components; it keeps the last 64) gets its whole executable and
 * working directory from /proc while it runs, and a cut one says so (hades.process.paths_cut)
 * instead of passing the end of a path for all of it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { captureEvents, type AnyEvent, type Capture } from '../helpers/events-session.js';

const isRoot = process.getuid?.() === 0;
const skip = !isRoot && 'kernel events need root';

function run(command: string, args: readonly string[], cwd: string): Promise<{ pid: number; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', (code) => resolve({ pid: child.pid ?? 0, code }));
  });
}

describe('hades events --backend ebpf: paths nested deeper than the driver reads', { skip }, () => {
  const base = mkdtempSync(path.join(tmpdir(), 'hades-deep-'));
  const deep = path.join(base, ...Array.from({ length: 70 }, (_, i) => `d${i}`));
  let capture: Capture;
  const pids = { living: 0, brief: 0 };
  const execOf = (pid: number): AnyEvent | undefined => capture.events.find((e) => e['event']?.action === 'exec' && e['process']?.pid === pid);

  before(async () => {
    mkdirSync(deep, { recursive: true });
    copyFileSync('/bin/sleep', path.join(deep, 'deep-sleep'));
    copyFileSync('/bin/true', path.join(deep, 'deep-true'));
    capture = await captureEvents(['--backend', 'ebpf', '--action', 'exec'], async () => {
      const living = await run(path.join(deep, 'deep-sleep'), ['1'], deep);
      const brief = await run(path.join(deep, 'deep-true'), [], deep);
      assert.deepEqual([living.code, brief.code], [0, 0]);
      pids.living = living.pid;
      pids.brief = brief.pid;
    });
  });
  after(() => rmSync(base, { recursive: true, force: true }));

  it('reads the whole executable and working directory from /proc for a process that runs', () => {
    assert.deepEqual(capture.invalid, []);
    const e = execOf(pids.living);
    assert.ok(e, 'the exec of deep-sleep');
    assert.equal(e['process'].executable, path.join(deep, 'deep-sleep'));
    assert.equal(e['process'].working_directory, deep);
    assert.equal(e['hades'].process.paths_cut, undefined);
    assert.match(e['process'].hash?.sha256 ?? '', /^[0-9a-f]{64}$/, 'hashed from its whole path');
  });

  it('says which path is cut when the process was gone before it could be read whole', () => {
    const e = execOf(pids.brief);
    assert.ok(e, 'the exec of deep-true');
    const executable = e['process'].executable as string;
    if (executable === path.join(deep, 'deep-true')) {
      assert.equal(e['hades'].process.paths_cut, undefined, 'read whole in time');
      return;
    }
    assert.ok(path.join(deep, 'deep-true').endsWith(executable) && executable.length < path.join(deep, 'deep-true').length, executable);
    assert.ok((e['hades'].process.paths_cut as string[]).includes('executable'));
  });
});
