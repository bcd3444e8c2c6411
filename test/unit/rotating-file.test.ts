// hades-test: runs alone (it mounts a small tmpfs to fill a disk)
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { RotatingFile } from '../../src/runtime/rotating-file.js';
import { HadesError } from '../../src/common/errors.js';

const root = mkdtempSync(path.join(tmpdir(), 'hades-rotating-'));
after(() => rmSync(root, { recursive: true, force: true }));
let folders = 0;
const folder = (): string => path.join(root, `r${++folders}`);

/** A 10-byte chunk `NNNNNNNNN\n`. */
const chunk = (n: number): Buffer => Buffer.from(`${String(n).padStart(9, '0')}\n`);
const read = (file: string): string => (existsSync(file) ? readFileSync(file, 'utf8') : '');
const numbers = (text: string): number[] => text.split('\n').filter(Boolean).map(Number);

function outputFailed(pattern: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof HadesError, `expected a HadesError, got ${String(error)}`);
    assert.equal(error.code, 'HADES_ERR_OUTPUT_FAILED');
    assert.match(error.message, pattern);
    return true;
  };
}

describe('RotatingFile', () => {
  it('creates its folder and appends', () => {
    const file = path.join(folder(), 'a', 'b', 'events.ndjson');
    const rf = new RotatingFile({ file, maxBytes: 1000, maxFiles: 2 });
    assert.equal(rf.file, file);
    rf.write(chunk(1));
    rf.write(chunk(2));
    assert.deepEqual(numbers(read(file)), [1, 2]);
    assert.equal(statSync(file).mode & 0o777, 0o640);
    assert.equal(rf.rotations, 0);
    rf.close();
    rf.close();
  });

  it('rotates by size, keeping maxFiles rotated files plus the current one, newest data in the base file', () => {
    const dir = folder();
    const file = path.join(dir, 'events.ndjson');
    const rf = new RotatingFile({ file, maxBytes: 30, maxFiles: 2 });
    for (let n = 0; n < 20; n++) rf.write(chunk(n));
    rf.close();
    assert.deepEqual(readdirSync(dir).sort(), ['events.ndjson', 'events.ndjson.1', 'events.ndjson.2']);
    // Three chunks of 10 bytes fill a file: the base holds the last three, .1 the three before, .2 the ones before.
    assert.deepEqual(numbers(read(file)), [18, 19]);
    assert.deepEqual(numbers(read(`${file}.1`)), [15, 16, 17]);
    assert.deepEqual(numbers(read(`${file}.2`)), [12, 13, 14]);
    assert.equal(rf.rotations, 6);
    for (const f of readdirSync(dir)) assert.ok(statSync(path.join(dir, f)).size <= 30, f);
  });

  it('keeps one rotated file with maxFiles 1', () => {
    const dir = folder();
    const file = path.join(dir, 'e');
    const rf = new RotatingFile({ file, maxBytes: 20, maxFiles: 1 });
    for (let n = 0; n < 7; n++) rf.write(chunk(n));
    rf.close();
    assert.deepEqual(readdirSync(dir).sort(), ['e', 'e.1']);
    assert.deepEqual(numbers(read(file)), [6]);
    assert.deepEqual(numbers(read(`${file}.1`)), [4, 5]);
  });

  it('writes a chunk larger than maxBytes whole, to a fresh file', () => {
    const dir = folder();
    const file = path.join(dir, 'events.ndjson');
    const rf = new RotatingFile({ file, maxBytes: 25, maxFiles: 3 });
    rf.write(chunk(1));
    const big = Buffer.from(`${'x'.repeat(99)}\n`);
    rf.write(big);
    assert.equal(read(file), big.toString());
    assert.deepEqual(numbers(read(`${file}.1`)), [1]);
    // The next chunk does not go after the big one.
    rf.write(chunk(2));
    assert.deepEqual(numbers(read(file)), [2]);
    assert.equal(read(`${file}.1`), big.toString());
    rf.close();
  });

  it('writes a chunk larger than maxBytes into an empty file without rotating', () => {
    const file = path.join(folder(), 'events.ndjson');
    const rf = new RotatingFile({ file, maxBytes: 5, maxFiles: 3 });
    rf.write(Buffer.from('0123456789\n'));
    assert.equal(rf.rotations, 0);
    assert.equal(read(file), '0123456789\n');
    assert.equal(existsSync(`${file}.1`), false);
    rf.close();
  });

  it('continues an existing file, counting its size towards the limit', () => {
    const dir = folder();
    mkdirSync(dir);
    const file = path.join(dir, 'events.ndjson');
    writeFileSync(file, Buffer.concat([chunk(0), chunk(1)]));
    const rf = new RotatingFile({ file, maxBytes: 30, maxFiles: 2 });
    rf.write(chunk(2));
    assert.deepEqual(numbers(read(file)), [0, 1, 2]);
    rf.write(chunk(3));
    assert.deepEqual(numbers(read(file)), [3]);
    assert.deepEqual(numbers(read(`${file}.1`)), [0, 1, 2]);
    rf.close();
  });

  it('fails with HADES_ERR_OUTPUT_FAILED when its folder cannot be created', () => {
    const dir = folder();
    mkdirSync(dir);
    const blocker = path.join(dir, 'plain-file');
    writeFileSync(blocker, 'not a folder');
    const rf = new RotatingFile({ file: path.join(blocker, 'sub', 'events.ndjson'), maxBytes: 100, maxFiles: 1 });
    assert.throws(() => rf.open(), outputFailed(/cannot open .*: ENOTDIR/));
    assert.throws(() => rf.write(chunk(1)), outputFailed(/ENOTDIR/));
    // Once the way is clear, it opens.
    rmSync(blocker);
    rf.write(chunk(1));
    assert.deepEqual(numbers(read(path.join(blocker, 'sub', 'events.ndjson'))), [1]);
    rf.close();
  });

  it('fails with HADES_ERR_OUTPUT_FAILED when the disk is full, leaving no part of the chunk in the file', (t) => {
    const dir = folder();
    mkdirSync(dir);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'ignore' });
    } catch {
      t.skip('cannot mount a tmpfs (needs root)');
      return;
    }
    const file = path.join(dir, 'events.ndjson');
    const rf = new RotatingFile({ file, maxBytes: 1 << 20, maxFiles: 1 });
    try {
      writeFileSync(path.join(dir, 'filler'), Buffer.alloc(50 * 1024));
      rf.write(chunk(1));
      // Room for the start of it only.
      const big = Buffer.from(`${'x'.repeat(32 * 1024)}\n`);
      assert.throws(() => rf.write(big), outputFailed(/cannot write .*events\.ndjson: ENOSPC/));
      assert.equal(read(file), chunk(1).toString());
      unlinkSync(path.join(dir, 'filler'));
      rf.write(big);
      rf.close();
      assert.equal(read(file), chunk(1).toString() + big.toString());
    } finally {
      rf.close();
      execFileSync('umount', [dir]);
    }
  });

  it('refuses a path that is not a regular file without blocking: a device, a FIFO with or without a reader', () => {
    const device = new RotatingFile({ file: '/dev/full', maxBytes: 1 << 20, maxFiles: 1 });
    assert.throws(() => device.write(chunk(1)), outputFailed(/cannot open \/dev\/full: not a regular file/));
    const dir = folder();
    mkdirSync(dir);
    const fifo = path.join(dir, 'events.ndjson');
    execFileSync('mkfifo', [fifo]);
    const rf = new RotatingFile({ file: fifo, maxBytes: 1 << 20, maxFiles: 1 });
    // Without O_NONBLOCK, this open waited for a reader: the event loop, for good.
    assert.throws(() => rf.write(chunk(1)), outputFailed(/events\.ndjson: ENXIO: not a regular file/));
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      assert.throws(() => rf.write(chunk(1)), outputFailed(/events\.ndjson: not a regular file/));
    } finally {
      closeSync(reader);
    }
    rf.close();
  });

  it('never writes through a symbolic link at its path: there at the start, or put there while it writes', (t) => {
    const dir = folder();
    mkdirSync(dir);
    const victim = path.join(dir, 'victim.sh');
    writeFileSync(victim, 'ORIGINAL\n');
    const file = path.join(dir, 'alerts.ndjson');
    symlinkSync(victim, file);
    const linked = new RotatingFile({ file, maxBytes: 1 << 20, maxFiles: 1 });
    assert.throws(() => linked.write(chunk(1)), outputFailed(/alerts\.ndjson: ELOOP: a symbolic link/));
    linked.close();
    unlinkSync(file);
    t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    const rf = new RotatingFile({ file, maxBytes: 1 << 20, maxFiles: 1 });
    rf.write(chunk(1));
    // Swapped for a link while open: seen at the next check of the path, and refused.
    rmSync(file);
    symlinkSync(victim, file);
    t.mock.timers.tick(6000);
    assert.throws(() => rf.write(chunk(2)), outputFailed(/ELOOP/));
    rf.close();
    assert.equal(readFileSync(victim, 'utf8'), 'ORIGINAL\n');
  });

  it(
    'rotates, or fails with a coded error, when its file was removed behind its back',

    () => {
      const dir = folder();
      const file = path.join(dir, 'events.ndjson');
      const rf = new RotatingFile({ file, maxBytes: 15, maxFiles: 2 });
      rf.write(chunk(1));
      unlinkSync(file);
      try {
        rf.write(chunk(2));
      } catch (error) {
        outputFailed(/./)(error);
      } finally {
        rf.close();
      }
    },
  );
});
