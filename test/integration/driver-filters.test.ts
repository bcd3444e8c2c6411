/** The driver's FILTER frame against the real driver: values it must refuse, and the ones it takes. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DriverProcess, FilterOp, FilterTarget, FrameType, encodeFilter } from '../../src/agent/driver/driver-process.js';
import { defaultDriverBinary } from '../../src/agent/kernel-events.js';

const skip = process.getuid?.() !== 0 && 'the eBPF driver needs root';

describe('driver FILTER values', { skip }, () => {
  let driver: DriverProcess;
  before(async () => {
    driver = new DriverProcess({ binary: defaultDriverBinary(), args: ['--backend', 'ebpf', '--hooks', 'file_create'] }, { onRecords: () => {} });
    await driver.start();
  });
  after(() => driver.stop());

  const filter = (op: number, target: number, value: string) => driver.command(FrameType.filter, (id) => encodeFilter(id, op, target, new TextEncoder().encode(value)));

  it('takes 16 * rules under one prefix and refuses a seventeenth', async () => {
    for (let i = 0; i < 16; i++) assert.equal((await filter(FilterOp.add, FilterTarget.filePrefix, `/srv/*/.rc${i}`)).ok, true, String(i));
    const ack = await filter(FilterOp.add, FilterTarget.filePrefix, '/srv/*/.rc16');
    assert.equal(ack.code, 'ENOSPC');
    assert.match(ack.msg ?? '', /at most 16 '\*' rules per prefix/);
    assert.equal((await filter(FilterOp.clear, FilterTarget.filePrefix, '')).ok, true);
  });

  it('takes secret file keys, and refuses a key of the wrong size, with a zero inode or a non-zero pad', async () => {
    const key = (ino: bigint, dev: number, pad = 0, size = 16) => {
      const out = new Uint8Array(size);
      const view = new DataView(out.buffer);
      if (size >= 16) {
        view.setBigUint64(0, ino, true);
        view.setUint32(8, dev, true);
        view.setUint32(12, pad, true);
      }
      return out;
    };
    const secret = (op: number, value: Uint8Array) => driver.command(FrameType.filter, (id) => encodeFilter(id, op, FilterTarget.fileSecret, value));
    assert.equal((await secret(FilterOp.add, key(1234n, (8 << 20) | 1))).ok, true);
    assert.equal((await secret(FilterOp.add, key(1234n, (8 << 20) | 1))).ok, true, 'adding twice is harmless');
    assert.equal((await secret(FilterOp.del, key(1234n, (8 << 20) | 1))).ok, true);
    assert.equal((await secret(FilterOp.del, key(1234n, (8 << 20) | 1))).ok, true, 'deleting what is not there is harmless');
    assert.equal((await secret(FilterOp.clear, new Uint8Array(0))).ok, true);
    for (const [bad, why] of [
      [key(1n, 1, 0, 12), /16 bytes/],
      [key(1n, 1, 0, 24), /16 bytes/],
      [key(0n, 1), /non-zero inode and a zero pad/],
      [key(1n, 1, 7), /non-zero inode and a zero pad/],
    ] as const) {
      const ack = await secret(FilterOp.add, bad);
      assert.equal(ack.code, 'EINVAL', why.source);
      assert.match(ack.msg ?? '', why);
    }
    assert.equal((await secret(FilterOp.set, key(1n, 1))).code, 'EINVAL');
  });

  it('protects 1,024 pids and refuses one more with E2BIG, until one is let go', async () => {
    const pid = (op: number, value: number) => {
      const out = new Uint8Array(4);
      new DataView(out.buffer).setUint32(0, value, true);
      return driver.command(FrameType.filter, (id) => encodeFilter(id, op, FilterTarget.protectedPid, out));
    };
    assert.equal((await pid(FilterOp.clear, 0)).ok, true);
    const acks = await Promise.all(Array.from({ length: 1024 }, (_, i) => pid(FilterOp.add, 4_000_000 + i)));
    assert.deepEqual(acks.filter((a) => !a.ok), []);
    const full = await pid(FilterOp.add, 4_100_000);
    assert.equal(full.code, 'E2BIG');
    assert.match(full.msg ?? '', /at most 1024 protected pids/);
    assert.equal((await pid(FilterOp.add, 4_000_000)).ok, true, 'a pid already there is taken when full');
    assert.equal((await pid(FilterOp.del, 4_000_000)).ok, true);
    assert.equal((await pid(FilterOp.add, 4_100_000)).ok, true, 'room again once one is let go');
    assert.equal((await pid(FilterOp.clear, 0)).ok, true);
    assert.equal((await pid(FilterOp.add, 4_100_001)).ok, true, 'room again after CLEAR');
    assert.equal((await pid(FilterOp.clear, 0)).ok, true);
  });

  it('takes quiet prefixes, and refuses an empty one or one with a *', async () => {
    assert.equal((await filter(FilterOp.add, FilterTarget.fileQuiet, '/var/log/')).ok, true);
    assert.equal((await filter(FilterOp.del, FilterTarget.fileQuiet, '/var/log/')).ok, true);
    assert.equal((await filter(FilterOp.clear, FilterTarget.fileQuiet, '')).ok, true);
    for (const bad of ['', '/home/*/logs/', 'x'.repeat(256)]) {
      const ack = await filter(FilterOp.add, FilterTarget.fileQuiet, bad);
      assert.equal(ack.ok, false, JSON.stringify(bad));
      assert.equal(ack.code, 'EINVAL');
      assert.match(ack.msg ?? '', /quiet prefix must be 1\.\.255 bytes without NUL or '\*'/);
    }
  });
});
