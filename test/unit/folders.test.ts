/**
 * Folders created one at a time (src/runtime/folders.ts): Node's recursive mkdir never returns
 * for a path under /proc, which a configuration may name.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { makeFolders, makeFoldersAsync } from '../../src/runtime/folders.js';
import { RotatingFile } from '../../src/runtime/rotating-file.js';

const dir = mkdtempSync(path.join(tmpdir(), 'hades-folders-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('makeFolders', () => {
  it('creates the missing folders with the mode asked, and leaves those that exist', async () => {
    const deep = path.join(dir, 'a', 'b', 'c');
    makeFolders(deep, 0o750);
    assert.ok(statSync(deep).isDirectory());
    assert.equal(statSync(path.join(dir, 'a')).mode & 0o777, 0o750 & ~process.umask());
    makeFolders(deep, 0o700);
    await makeFoldersAsync(path.join(deep, 'd', 'e'), 0o700);
    assert.ok(statSync(path.join(deep, 'd', 'e')).isDirectory());
    await makeFoldersAsync(deep, 0o700);
  });

  it('fails with the system error for a path it cannot create: under /proc at once (Node\'s recursive mkdir never returns there), under a file', async () => {
    const started = Date.now();
    assert.throws(() => makeFolders('/proc/hades-test/alerts', 0o750), (e: NodeJS.ErrnoException) => e.code === 'ENOENT');
    await assert.rejects(makeFoldersAsync('/proc/hades-test/alerts', 0o750), (e: NodeJS.ErrnoException) => e.code === 'ENOENT');
    assert.ok(Date.now() - started < 2000);
    const file = path.join(dir, 'a-file');
    writeFileSync(file, 'x');
    assert.throws(() => makeFolders(path.join(file, 'sub'), 0o750), (e: NodeJS.ErrnoException) => e.code === 'ENOTDIR');
  });

  it('a file output under /proc fails to open with a coded error instead of hanging', () => {
    const output = new RotatingFile({ file: '/proc/hades-test/alerts.ndjson', maxBytes: 1 << 20, maxFiles: 1 });
    assert.throws(() => output.open(), /HADES_ERR_OUTPUT_FAILED|cannot open \/proc\/hades-test\/alerts\.ndjson: ENOENT/);
  });
});
