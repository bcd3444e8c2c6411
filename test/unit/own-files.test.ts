/**
 * Files of the agent's and the server's own data folders read only when they are regular files
 * (runtime/regular-file.ts, readOwnFile): a FIFO, a folder or an oversized file put where one of
 * them should be is refused with a code at once, never read (a FIFO nobody writes would hold the
 * read for good), and each reader goes on as with a missing or damaged file.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { isHadesError } from '../../src/common/errors.js';
import { readHashFile } from '../../src/agent/hash-cache-file.js';
import { loadState } from '../../src/agent/logs/collector.js';
import { loadIdentity } from '../../src/agent/transport/enroll.js';
import { readOwnFile } from '../../src/runtime/regular-file.js';
import { localCredentials } from '../../src/server/local-files.js';
import { Archive, MARK_FILE } from '../../src/server/store/archive.js';

const root = mkdtempSync(path.join(tmpdir(), 'hades-own-files-'));
after(() => rmSync(root, { recursive: true, force: true }));
let serial = 0;
const folder = () => {
  const dir = path.join(root, `case-${serial++}`);
  mkdirSync(dir, { recursive: true });
  return dir;
};
/** A FIFO nobody writes, owner-only. */
const fifo = (file: string) => {
  mkdirSync(path.dirname(file), { recursive: true });
  execFileSync('mkfifo', ['-m', '600', file]);
  return file;
};
const coded = (code: string) => (error: unknown) => isHadesError(error) && error.code === code;

describe('readOwnFile', () => {
  it('reads a regular file whole, empty or larger than one read', () => {
    const dir = folder();
    writeFileSync(path.join(dir, 'empty'), '');
    assert.equal(readOwnFile(path.join(dir, 'empty')), '');
    const big = 'x'.repeat(3 * 1024 * 1024 + 7);
    writeFileSync(path.join(dir, 'big'), big);
    assert.equal(readOwnFile(path.join(dir, 'big')), big);
    writeFileSync(path.join(dir, 'latin1'), Buffer.from([0x61, 0xe9]));
    assert.equal(readOwnFile(path.join(dir, 'latin1'), 10, 'latin1'), 'a\u00e9');
  });

  it('throws what open(2) said for a file not there, as readFileSync does', () => {
    assert.throws(() => readOwnFile(path.join(root, 'nothing-here')), (error: unknown) => (error as NodeJS.ErrnoException).code === 'ENOENT');
  });

  it('refuses a FIFO at once (HADES_ERR_FILE_NOT_REGULAR), and a folder', () => {
    const dir = folder();
    assert.throws(() => readOwnFile(fifo(path.join(dir, 'pipe'))), coded('HADES_ERR_FILE_NOT_REGULAR'));
    assert.throws(() => readOwnFile(dir), coded('HADES_ERR_FILE_NOT_REGULAR'));
  });

  it('refuses a file over its bound (HADES_ERR_FILE_TOO_LARGE)', () => {
    const dir = folder();
    writeFileSync(path.join(dir, 'f'), '12345');
    assert.equal(readOwnFile(path.join(dir, 'f'), 5), '12345');
    assert.throws(() => readOwnFile(path.join(dir, 'f'), 4), coded('HADES_ERR_FILE_TOO_LARGE'));
  });
});

describe('a FIFO in a data folder', () => {
  it('in place of the exec hash cache: read as nothing, with the problem said', () => {
    const read = readHashFile(fifo(path.join(folder(), 'exec-hashes.txt')), 100);
    assert.deepEqual(read.entries, []);
    assert.match(read.problem ?? '', /HADES_ERR_FILE_NOT_REGULAR/);
  });

  it('in place of the log collector\'s positions: every log read from its end, said', () => {
    const dir = folder();
    fifo(path.join(dir, 'logs-state.json'));
    const problems: string[] = [];
    assert.deepEqual(loadState(dir, (message) => problems.push(message)), {});
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /cannot be read \(HADES_ERR_FILE_NOT_REGULAR\)/);
  });

  it('in place of the agent\'s identity: HADES_ERR_PKI naming the file', () => {
    const dataDir = folder();
    const dir = path.join(dataDir, 'identity');
    fifo(path.join(dir, 'agent.json'));
    assert.throws(() => loadIdentity(dataDir), (error: unknown) => isHadesError(error) && error.code === 'HADES_ERR_PKI' && /not a regular file/.test(error.message));
  });

  it('in place of the raw archive\'s mark: the archive opens, as with no mark', async () => {
    const dir = folder();
    fifo(path.join(dir, MARK_FILE));
    const archive = Archive.open({ dir });
    assert.equal(archive.markAtOpen, undefined);
    await archive.close();
  });

  it('in place of a local deployment\'s admin token: HADES_ERR_LOCAL_CREDENTIALS', () => {
    const dataDir = folder();
    fifo(path.join(dataDir, 'admin.token'));
    assert.throws(() => localCredentials(dataDir), coded('HADES_ERR_LOCAL_CREDENTIALS'));
  });
});
