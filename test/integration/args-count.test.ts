/**
 * `hades events` against the real kernel, as root, on both backends: an exec with more arguments
 * than fit the driver's argv limit (4,096 bytes) is cut, and process.args_count still says how
 * many it had (the driver's count: linux_binprm's argc on eBPF, the whole /proc/PID/cmdline on
 * cn_proc), while an exec that fits counts what it has.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { captureEvents, run, withMarker, type Capture } from '../helpers/events-session.js';

const isRoot = process.getuid?.() === 0;
const skip = !isRoot && 'kernel events need root';

for (const backend of ['ebpf', 'cnproc'] as const) {
  describe(`hades events --backend ${backend}: process.args_count`, { skip }, () => {
    const marker = `hx${randomBytes(4).toString('hex')}`;
    // 3,000 arguments of 12 bytes: about 36 KiB, nine times the limit.
    const many = Array.from({ length: 3000 }, (_, i) => `${marker}${String(i).padStart(4, '0')}`.slice(0, 11));
    // sh runs the sleep and ignores the rest ($0, $1, ...): alive long enough for cn_proc's reads.
    const long = ['-c', 'sleep 0.3', ...many];
    const short = ['-c', 'sleep 0.3', marker, '', 'x y'];
    let capture: Capture;

    before(async () => {
      capture = await captureEvents(['--backend', backend, '--action', 'exec'], async () => {
        assert.equal(await run('/bin/sh', long), 0);
        assert.equal(await run('/bin/sh', short), 0);
      });
    });

    it('counts the arguments cut off by the argv limit', () => {
      assert.deepEqual(capture.invalid, []);
      const e = withMarker(capture.events, 'exec', marker).find((x) => x['hades'].process.args_truncated === true);
      assert.ok(e, 'the exec with 3,002 arguments');
      // Completed from /proc while sh sleeps (args-completion.test.ts), else the driver's cut list.
      if (e['hades'].process.args_source === 'proc') assert.equal(e['process'].args.length, 1 + long.length);
      else assert.ok(e['process'].args.length < 1000, `${e['process'].args.length} arguments kept`);
      assert.equal(e['process'].args_count, 1 + long.length);
    });

    it('counts the arguments of an exec that fits, empty ones included', () => {
      const e = withMarker(capture.events, 'exec', marker).find((x) => x['process'].args.length === 1 + short.length);
      assert.ok(e, 'the exec with 6 arguments');
      assert.equal(e['hades'].process.args_truncated, false);
      assert.equal(e['process'].args_count, 1 + short.length);
    });
  });
}
