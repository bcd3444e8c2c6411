/**
 * The executable hashes the agent keeps in its data folder, against the real kernel (root): the
 * driver's identity of an executed file (device, inode, size, mtime, ctime) gives the very key
 * the inventory collector makes from stat(), so the collector finds the agent's hash without
 * reading the file; and the agent takes the collector's hashes at its next start.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { HASH_CACHE_FILES, HashCacheFile, identityKey, identityOf, RACY_MS, readHashFile, writeHashFile } from '../../src/agent/hash-cache-file.js';
import { FileHashCache } from '../../src/agent/inventory/context.js';
import { KernelEvents } from '../../src/agent/kernel-events.js';
import { AgentConfigSchema, parseConfig } from '../../src/common/config/index.js';
import type { HadesEvent } from '../../src/common/events/index.js';
import { run } from '../helpers/events-session.js';

const isRoot = process.getuid?.() === 0;
const dir = mkdtempSync(path.join(tmpdir(), 'hades-hash-cache-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const parsed = parseConfig('', AgentConfigSchema);
const config = () => {
  assert.ok(parsed.ok);
  return parsed.config;
};
const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const keyOf = (file: string) => identityKey(identityOf(statSync(file, { bigint: true })));

describe('executable hashes shared by the agent and the collector (root, real driver)', { skip: !isRoot && 'kernel events need root' }, () => {
  it('the agent keeps the hash of an executed file under the key the collector makes, and takes the collector\'s', async () => {
    const program = path.join(dir, 'hx-true');
    copyFileSync('/bin/true', program);
    // A file younger than the racy window is not kept: wait until this one is settled.
    await new Promise((resolve) => setTimeout(resolve, RACY_MS + 100));
    // An mtime with nanoseconds, which the key carries through the driver's double.
    utimesSync(program, new Date(), new Date('2024-05-06T07:08:09.123456789Z'));
    await new Promise((resolve) => setTimeout(resolve, RACY_MS + 100));
    const folder = mkdtempSync(path.join(dir, 'data-'));
    const events: HadesEvent[] = [];
    const source = new KernelEvents({ config: config(), agentVersion: 'test', emit: (e) => events.push(e) > 0, hashCacheDir: folder, actions: new Set(['exec']) });
    await source.start();
    try {
      await run(program, []);
      await new Promise((resolve) => setTimeout(resolve, 500));
    } finally {
      await source.stop();
    }
    const exec = events.find((e) => e.event.action === 'exec' && (e as { process: { executable?: string } }).process.executable === program) as { process: { hash?: { sha256?: string } } } | undefined;
    assert.equal(exec?.process.hash?.sha256, sha(program), 'the exec event has the hash');
    const kept = readHashFile(path.join(folder, HASH_CACHE_FILES.agent), 4096).entries;
    assert.ok(kept.some(([key, value]) => key === keyOf(program) && value === sha(program)), `the agent's file has the stat() key ${keyOf(program)}`);

    // The collector, from the agent's file: no read of the program.
    const collector = new FileHashCache();
    const file = new HashCacheFile({ file: path.join(folder, HASH_CACHE_FILES.inventory), shared: [path.join(folder, HASH_CACHE_FILES.agent)], cache: collector, maxEntries: 8192 });
    file.load();
    assert.equal(collector.sha256(program), sha(program));
    assert.equal(collector.stats.hashed, 0);

    // The other way: a hash the collector kept is the agent's at its next start (a value no read gives).
    const other = path.join(dir, 'hx-false');
    copyFileSync('/bin/false', other);
    await new Promise((resolve) => setTimeout(resolve, RACY_MS + 100));
    writeHashFile(path.join(folder, HASH_CACHE_FILES.inventory), [[keyOf(other), 'f'.repeat(64)]]);
    const again = new KernelEvents({ config: config(), agentVersion: 'test', emit: (e) => events.push(e) > 0, hashCacheDir: folder, actions: new Set(['exec']) });
    await again.start();
    try {
      await run(other, []).catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 500));
    } finally {
      await again.stop();
    }
    const execOther = events.find((e) => e.event.action === 'exec' && (e as { process: { executable?: string } }).process.executable === other) as { process: { hash?: { sha256?: string } } } | undefined;
    assert.equal(execOther?.process.hash?.sha256, 'f'.repeat(64));
  });
});
