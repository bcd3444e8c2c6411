/**
 * `hades events` against the real kernel, as root, on both backends: the arguments of an exec
 * cut at the driver's argv limit (4,096 bytes) are completed from /proc/PID/cmdline while the
 * process runs (hades.process.args_source: proc), and stay cut for a process that exited at once.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { before, describe, it } from 'node:test';
import { captureEvents, type AnyEvent, type Capture } from '../helpers/events-session.js';

const isRoot = process.getuid?.() === 0;
const skip = !isRoot && 'kernel events need root';

/** Runs a command with its own argv[0] to completion: its pid and exit code. */
function runAs(argv0: string, command: string, args: readonly string[]): Promise<{ pid: number; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { argv0, stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', (code) => resolve({ pid: child.pid ?? 0, code }));
  });
}

for (const backend of ['ebpf', 'cnproc'] as const) {
  describe(`hades events --backend ${backend}: arguments completed from /proc`, { skip }, () => {
    const marker = `hx${randomBytes(4).toString('hex')}`;
    const padding = ' '.repeat(5000);
    // `; :` keeps bash from executing sleep in its place (which would be another argv: driver_rewritten).
    const livingScript = `${padding}sleep 3; : # ${marker}-tail`;
    const briefScript = `${padding}exit 0 # ${marker}-tail`;
    let capture: Capture;
    const pids = { living: 0, brief: 0 };
    const execOf = (pid: number): AnyEvent | undefined => capture.events.find((e) => e['event']?.action === 'exec' && e['process']?.pid === pid);

    before(async () => {
      capture = await captureEvents(['--backend', backend, '--action', 'exec'], async () => {
        const living = await runAs(`bash-${marker}-living`, '/bin/bash', ['-c', livingScript]);
        const brief = await runAs(`sh-${marker}-brief`, '/bin/sh', ['-c', briefScript]);
        assert.deepEqual([living.code, brief.code], [0, 0]);
        pids.living = living.pid;
        pids.brief = brief.pid;
      });
    });

    it('gives a long-lived process with a cut argv its whole command', () => {
      assert.deepEqual(capture.invalid, []);
      const e = execOf(pids.living);
      assert.ok(e, 'the exec of the padded bash');
      assert.equal(e['hades'].process.args_truncated, true);
      assert.equal(e['hades'].process.args_source, 'proc');
      assert.deepEqual(e['process'].args, [`bash-${marker}-living`, '-c', livingScript]);
      assert.ok((e['process'].command_line as string).endsWith(`sleep 3; : # ${marker}-tail`));
    });

    it('keeps the cut arguments of a process that exited at once', () => {
      const e = execOf(pids.brief);
      assert.ok(e, 'the exec of the padded sh');
      if (backend === 'cnproc' && e['process'].args === undefined) {
        // cn_proc reads the arguments from /proc too, after the exec: the driver itself can lose them.
        assert.ok((e['hades'].missing as string[]).includes('process.args'));
        assert.equal(e['hades'].process.args_source, undefined);
        return;
      }
      assert.equal(e['hades'].process.args_truncated, true);
      // The record can reach the agent (within a millisecond) before sh is gone: then the
      // arguments are whole, like the living one's. Which one wins is a race.
      if (e['hades'].process.args_source === 'proc') {
        assert.equal(e['process'].args[2], briefScript);
        return;
      }
      assert.equal(e['hades'].process.args_source, undefined);
      assert.ok(!(e['process'].command_line as string).includes(`${marker}-tail`));
      assert.ok((e['process'].args as string[]).join('\0').length <= 4096);
    });
  });
}
