/**
 * Executable hashes kept across restarts and shared between the agent and its collector
 * (src/agent/hash-cache-file.ts): keys made from stat() agree with the kernel driver's form; the
 * file is written whole and read line by line, damaged lines skipped; a changed file never gets
 * the hash of its old content (key on ctime, version checked before and after reading, racy
 * versions not kept), in the agent's hasher and the collector's cache alike; hashes written by
 * one are used by the other without reading the file again.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, copyFileSync, mkdtempSync, symlinkSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, type BigIntStats } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeText, timeNs } from '../../src/agent/driver/bytes.js';
import { HASH_CACHE_FILES, HashCacheFile, identityKey, identityOf, isRacy, RACY_MS, readHashFile, writeHashFile, type PersistentHashes } from '../../src/agent/hash-cache-file.js';
import { ExecutableHasher } from '../../src/agent/hasher.js';
import { FileHashCache } from '../../src/agent/inventory/context.js';
import { Collector } from '../../src/agent/inventory/collector.js';
import type { TableSpec } from '../../src/agent/inventory/table.js';
import { PluginFrame } from '../../src/common/plugins/protocol.js';

const dir = mkdtempSync(path.join(tmpdir(), 'hades-hashes-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const sha = (text: string) => createHash('sha256').update(text).digest('hex');
const stat = (file: string) => statSync(file, { bigint: true });
const keyOf = (file: string) => identityKey(identityOf(stat(file)));
const SHA_A = 'a'.repeat(64);
const SHA_B = 'b'.repeat(64);

/** A file whose ctime is past the racy window, so that its hash may be cached. */
const settled: Record<string, string> = {};
before(async () => {
  for (const name of ['one', 'two', 'three', 'four']) {
    settled[name] = path.join(dir, name);
    writeFileSync(settled[name], `content of ${name}\n`);
  }
  await new Promise((resolve) => setTimeout(resolve, RACY_MS + 100));
});

/** A fake stat() result: only what identityOf reads. */
const fakeStats = (fields: { dev: bigint; ino?: bigint; size?: bigint; mtimeNs?: bigint; ctimeNs?: bigint }) =>
  ({ ino: 7n, size: 9n, mtimeNs: 0n, ctimeNs: 0n, ...fields }) as unknown as BigIntStats;

/** The driver's timestamp of (seconds, nanoseconds), decoded as records.ts decodes it. */
function driverTime(seconds: bigint, nanoseconds: number): number {
  const view = new DataView(new ArrayBuffer(12));
  view.setBigInt64(0, seconds, true);
  view.setUint32(8, nanoseconds, true);
  return timeNs(view, 0, 8);
}

describe('file version keys', () => {
  it('give the device in the kernel\'s form (major << 20 | minor), as the driver reports it', () => {
    const glibc = (major: bigint, minor: bigint) => (minor & 0xffn) | ((major & 0xfffn) << 8n) | ((minor & ~0xffn) << 12n) | ((major & ~0xfffn) << 32n);
    for (const [major, minor] of [[254n, 1n], [8n, 300n], [0n, 27n], [259n, 0xfffffn]] as const) {
      assert.equal(identityOf(fakeStats({ dev: glibc(major, minor) })).dev, Number((major << 20n) | minor), `${major}:${minor}`);
    }
  });

  it('give times as the very number the driver decodes (seconds * 1e9 + nanoseconds in doubles)', () => {
    for (const [seconds, nanoseconds] of [[1_795_872_955n, 632_888_123], [1_663_687_647n, 0], [1_700_000_000n, 999_999_999], [-5n, 500_000_000], [4_102_444_800n, 1]] as const) {
      const ns = seconds * 1_000_000_000n + BigInt(nanoseconds);
      const version = identityOf(fakeStats({ dev: 0n, mtimeNs: ns, ctimeNs: ns }));
      assert.equal(version.mtimeNs, driverTime(seconds, nanoseconds), `${seconds}.${nanoseconds}`);
      assert.equal(version.ctimeNs, version.mtimeNs);
    }
  });

  it('change when the content changes, even at the same size and inode', () => {
    const file = path.join(dir, 'rewritten');
    writeFileSync(file, 'version 1\n');
    const before = keyOf(file);
    const ino = stat(file).ino;
    writeFileSync(file, 'version 2\n');
    assert.equal(stat(file).ino, ino);
    assert.notEqual(keyOf(file), before);
  });

  it('call a version racy while its ctime is younger than the racy window', () => {
    const now = Date.now();
    assert.equal(isRacy({ dev: 1, ino: 1, size: 1, mtimeNs: 0, ctimeNs: (now - 100) * 1e6 }, now), true);
    assert.equal(isRacy({ dev: 1, ino: 1, size: 1, mtimeNs: 0, ctimeNs: (now - RACY_MS - 1) * 1e6 }, now), false);
  });
});

describe('hash files', () => {
  it('are written whole (owner only) and read back in order', () => {
    const file = path.join(dir, 'round-trip.txt');
    const entries: [string, string][] = [['1:2:3:4:5', SHA_A], ['6:7:8:-9:10', SHA_B]];
    assert.equal(writeHashFile(file, entries), 2);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(readHashFile(file, 100), { entries, skipped: 0 });
    assert.deepEqual(readHashFile(file, 1).entries, [entries[1]], 'the newest are kept when over the limit');
  });

  it('lose damaged lines, never yield a wrong hash', () => {
    const file = path.join(dir, 'damaged.txt');
    writeFileSync(file, `# hades executable hashes 1\n1:2:3:4:5 ${SHA_A}\n1:2:3:4:6 ${SHA_B.slice(0, 40)}\nnot a line\n1:2:x:4:5 ${SHA_A}\n1:2:3:4:7 ${SHA_B.toUpperCase()}\n1:2:3:4:8 ${SHA_B}`);
    assert.deepEqual(readHashFile(file, 100), { entries: [['1:2:3:4:5', SHA_A], ['1:2:3:4:8', SHA_B]], skipped: 4 });
  });

  it('are ignored with a reason when of another format or too large; an absent file is empty', () => {
    const other = path.join(dir, 'other.txt');
    writeFileSync(other, `# something else\n1:2:3:4:5 ${SHA_A}\n`);
    const read = readHashFile(other, 100);
    assert.equal(read.entries.length, 0);
    assert.match(read.problem ?? '', /not a hash file/);
    const huge = path.join(dir, 'huge.txt');
    writeFileSync(huge, Buffer.alloc(4 * 1024 * 1024 + 1, 0x20));
    assert.match(readHashFile(huge, 100).problem ?? '', /over/);
    assert.deepEqual(readHashFile(path.join(dir, 'absent.txt'), 100), { entries: [], skipped: 0 });
  });
});

/** A cache double: a map, with a revision that grows on `learn`. */
class MapCache implements PersistentHashes {
  readonly map = new Map<string, string>();
  revision = 0;
  learn(key: string, value: string): void {
    this.map.set(key, value);
    this.revision++;
  }
  entries(): Iterable<readonly [string, string]> {
    return this.map.entries();
  }
  import(entries: Iterable<readonly [string, string]>): number {
    let added = 0;
    for (const [key, value] of entries) {
      if (this.map.has(key)) continue;
      this.map.set(key, value);
      added++;
    }
    return added;
  }
}

describe('HashCacheFile', () => {
  it('loads the shared files and its own, writes its own when the cache learned something (at most once per interval, and at close)', async () => {
    const folder = mkdtempSync(path.join(dir, 'owner-'));
    const own = path.join(folder, 'own.txt');
    const shared = path.join(folder, 'shared.txt');
    writeHashFile(shared, [['1:1:1:1:1', SHA_A]]);
    writeHashFile(own, [['2:2:2:2:2', SHA_B]]);
    const cache = new MapCache();
    const file = new HashCacheFile({ file: own, shared: [shared], cache, maxEntries: 100, minIntervalMs: 300 });
    file.load();
    assert.deepEqual([...cache.map.keys()], ['1:1:1:1:1', '2:2:2:2:2']);
    file.saveSoon();
    assert.equal(file.stats.writes, 0, 'nothing learned: nothing written');
    cache.learn('3:3:3:3:3', SHA_A);
    file.saveSoon();
    assert.equal(file.stats.writes, 1, 'the first change is written at once');
    cache.learn('4:4:4:4:4', SHA_B);
    file.saveSoon();
    assert.equal(file.stats.writes, 1, 'the next waits for the interval');
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.equal(file.stats.writes, 2);
    assert.equal(readHashFile(own, 100).entries.length, 4);
    cache.learn('5:5:5:5:5', SHA_A);
    file.saveSoon();
    file.close();
    assert.equal(readHashFile(own, 100).entries.length, 5, 'close writes what is pending');
    cache.learn('6:6:6:6:6', SHA_A);
    file.saveSoon();
    file.save();
    assert.equal(readHashFile(own, 100).entries.length, 5, 'nothing after close');
  });

  it('reads a shared file again when it changes, and reports a file it cannot write without throwing', () => {
    const folder = mkdtempSync(path.join(dir, 'refresh-'));
    const shared = path.join(folder, 'shared.txt');
    const problems: string[] = [];
    const cache = new MapCache();
    const file = new HashCacheFile({ file: path.join(folder, 'missing', 'own.txt'), shared: [shared], cache, maxEntries: 100, onProblem: (m) => problems.push(m) });
    file.load();
    assert.equal(cache.map.size, 0);
    writeHashFile(shared, [['1:1:1:1:1', SHA_A], ['7:7:7:7:7', SHA_B]]);
    file.refresh();
    assert.equal(cache.map.size, 2);
    cache.learn('8:8:8:8:8', SHA_A);
    file.save();
    assert.match(problems.join('\n'), /cannot be written: ENOENT/);
    assert.deepEqual(readdirSync(folder), ['shared.txt'], 'no temporary file left behind');
  });
});

describe('the collector\'s hash cache (FileHashCache)', () => {
  it('hashes a settled file once, then answers from the cache at once', async () => {
    const cache = new FileHashCache();
    assert.equal(await cache.sha256(settled['one']!), sha('content of one\n'));
    const again = cache.sha256(settled['one']!);
    assert.equal(again, sha('content of one\n'), 'given at once, not as a promise');
    assert.deepEqual([cache.stats.hashed, cache.stats.cacheHits, cache.revision], [1, 1, 1]);
  });

  it('never gives a changed file the hash of its old content, and keeps no hash of a version younger than the racy window', async () => {
    const cache = new FileHashCache();
    const file = settled['two']!;
    assert.equal(await cache.sha256(file), sha('content of two\n'));
    writeFileSync(file, 'CONTENT OF TWO\n');
    assert.equal(await cache.sha256(file), sha('CONTENT OF TWO\n'));
    assert.equal(await cache.sha256(file), sha('CONTENT OF TWO\n'));
    assert.equal(cache.stats.hashed, 3, 'the racy version was read each time');
    assert.equal(cache.revision, 1, 'and not cached');
  });

  it('uses a hash another process persisted for the same version without reading the file; not after the file changed', async () => {
    const file = settled['three']!;
    const cache = new FileHashCache();
    // A value no read could give: proof that it came from the import.
    cache.import([[keyOf(file), SHA_A]]);
    assert.equal(await cache.sha256(file), SHA_A);
    assert.equal(cache.stats.hashed, 0);
    writeFileSync(file, 'changed\n');
    assert.equal(await cache.sha256(file), sha('changed\n'));
  });
});

describe('the agent\'s hasher (ExecutableHasher)', () => {
  const hasher = () => new ExecutableHasher({ enabled: true, maxFileBytes: 1 << 20, maxBytesPerSecond: 64 << 20 });

  it('caches by the version the kernel saw at exec, and shares it with the collector\'s cache', async () => {
    const file = settled['four']!;
    const agent = hasher();
    const identity = identityOf(stat(file));
    assert.deepEqual(await agent.hash(file, identity), { status: 'ok', sha256: sha('content of four\n') });
    assert.deepEqual(agent.hash(file, identity), { status: 'ok', sha256: sha('content of four\n') }, 'at once from the cache');
    assert.deepEqual([...agent.entries()], [[keyOf(file), sha('content of four\n')]]);
    // The collector finds it under the key it makes from stat().
    const collector = new FileHashCache();
    collector.import(agent.entries());
    assert.equal(collector.sha256(file), sha('content of four\n'));
    assert.equal(collector.stats.hashed, 0);
  });

  it('opens a program whose path holds bytes that are not UTF-8 by those bytes, with or without the exec\'s identity', async () => {
    // The driver's text of such a path keeps each such byte as U+DC80..U+DCFF (driver/bytes.ts).
    const bytes = Buffer.concat([Buffer.from(`${dir}/odd-`), Buffer.of(0xff, 0xc3), Buffer.from('-name')]);
    writeFileSync(bytes, 'odd content\n');
    const text = decodeText(bytes);
    assert.ok(text.includes('\udcff'), text);
    const agent = hasher();
    assert.deepEqual(await agent.hash(text), { status: 'ok', sha256: sha('odd content\n') });
    assert.deepEqual(await agent.hash(text, identityOf(statSync(bytes, { bigint: true }))), { status: 'ok', sha256: sha('odd content\n') });
    rmSync(bytes);
  });

  it('refuses a FIFO or a link swapped in at the program\'s path at once, without holding a thread of the pool', async () => {
    const file = path.join(dir, 'swapped');
    writeFileSync(file, 'program\n');
    const atExec = identityOf(stat(file));
    rmSync(file);
    execFileSync('mkfifo', [file]);
    const agent = hasher();
    const started = Date.now();
    // Five at once: more than libuv's four threads, which blocking opens would all have held.
    const results = await Promise.all([0, 1, 2, 3, 4].map(async (i) => agent.hash(file, { ...atExec, size: atExec.size + i })));
    // Something else than the file executed is at its path: replaced, not unreadable.
    for (const r of results) assert.equal(r.status, 'replaced');
    assert.deepEqual(await agent.hash(file), { status: 'unreadable' }, 'without the exec\'s identity');
    assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
    // A link (to a file the user may not read) is not followed at the program's path.
    rmSync(file);
    symlinkSync(settled['four']!, file);
    assert.deepEqual(await agent.hash(file), { status: 'replaced' });
    rmSync(file);
    // The collector's cache, on a FIFO swapped in after its stat: refused, not waited on.
    const collector = new FileHashCache();
    execFileSync('mkfifo', [file]);
    assert.equal(await collector.sha256(file), undefined);
    rmSync(file);
  });

  it('reports a file changed in place since the exec as replaced, instead of hashing other content under the exec\'s key', async () => {
    const file = path.join(dir, 'in-place');
    writeFileSync(file, 'first\n');
    const atExec = identityOf(stat(file));
    writeFileSync(file, 'other\n');
    assert.equal(stat(file).ino, BigInt(atExec.ino));
    const agent = hasher();
    assert.deepEqual(await agent.hash(file, atExec), { status: 'replaced' });
    // The current version is hashed, but not kept: it is racy.
    assert.deepEqual(await agent.hash(file), { status: 'ok', sha256: sha('other\n') });
    assert.equal(agent.revision, 0);
    assert.deepEqual([...agent.entries()], []);
  });

  it('hashes a program known by another path than the agent\'s (a container\'s) through the process that runs it', async () => {
    // The program the process runs, and another file at the path its event names (as a
    // container's /usr/bin/x names another file, or none, in the agent's mount namespace).
    const program = path.join(dir, 'program');
    copyFileSync('/bin/sleep', program);
    chmodSync(program, 0o755);
    const elsewhere = path.join(dir, 'elsewhere');
    writeFileSync(elsewhere, 'not the program\n');
    const child = spawn(program, ['30'], { stdio: 'ignore' });
    try {
      await once(child, 'spawn');
      const identity = identityOf(stat(program));
      const expected = createHash('sha256').update(readFileSync(program)).digest('hex');
      assert.deepEqual(await hasher().hash(elsewhere, identity, child.pid), { status: 'ok', sha256: expected });
      assert.deepEqual(await hasher().hash(path.join(dir, 'missing'), identity, child.pid), { status: 'ok', sha256: expected });
      // Without the process (or with another one), as before: replaced, or unreadable.
      assert.deepEqual(await hasher().hash(elsewhere, identity), { status: 'replaced' });
      assert.deepEqual(await hasher().hash(elsewhere, identity, process.pid), { status: 'replaced' });
      assert.deepEqual(await hasher().hash(path.join(dir, 'missing'), identity, 0x7ffffff0), { status: 'unreadable' });
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('takes persisted hashes for versions it has not seen', async () => {
    const file = settled['one']!;
    const agent = hasher();
    assert.equal(agent.import([[keyOf(file), SHA_B]]), 1);
    assert.deepEqual(agent.hash(file), { status: 'ok', sha256: SHA_B });
    assert.equal(agent.stats.hashed, 0);
  });
});

describe('the collector\'s hash file (CONFIG hash_cache_dir)', () => {
  /** A table that hashes one file. */
  const hashing = (file: string): TableSpec => ({
    name: 'hashed',
    description: 'For tests.',
    columns: [{ name: 'sha256', type: 'TEXT', nullable: true, description: 'The hash.' }],
    examples: [{ description: 'All.', sql: 'SELECT * FROM hashed' }],
    generate: async (ctx) => [{ sha256: (await ctx.sha256(file)) ?? null }],
  });

  /** One collector run in a data folder: a query, its stats, a stop. */
  async function run(folder: string, file: string): Promise<{ rows: unknown[]; hashes: Record<string, number> }> {
    const sent: { type: number; text: string }[] = [];
    const collector = new Collector({ send: async (type, payload) => void sent.push({ type, text: Buffer.from(payload).toString('utf8') }) }, [hashing(file)], '9.9.9');
    const frame = (type: number, value: unknown) => collector.onFrame(type, new TextEncoder().encode(JSON.stringify(value)));
    frame(PluginFrame.config, { request_id: 1, config: { queries: [], query_timeout_s: 30, max_rows: 100, events_per_s: 0, hash_cache_dir: folder } });
    frame(PluginFrame.query, { request_id: 2, sql: 'SELECT sha256 FROM hashed', timeout_ms: 30_000, max_rows: 10, max_bytes: 1 << 20 });
    const results = () => sent.filter((s) => s.type === PluginFrame.queryResult).map((s) => JSON.parse(s.text) as Record<string, any>);
    for (const deadline = Date.now() + 10_000; !results().some((r) => r['done']) && Date.now() < deadline; ) await new Promise((resolve) => setTimeout(resolve, 10));
    frame(PluginFrame.statsRequest, {});
    await new Promise((resolve) => setTimeout(resolve, 10));
    collector.stop();
    const stats = JSON.parse(sent.filter((s) => s.type === PluginFrame.stats).at(-1)!.text) as { hashes: Record<string, number> };
    return { rows: results().flatMap((r) => (r['rows'] as unknown[]) ?? []), hashes: stats.hashes };
  }

  it('keeps the hashes of one run for the next (its own file) and takes the agent\'s', async () => {
    const file = settled['two']!;
    // Settled again after the test above rewrote it.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, Number(stat(file).ctimeMs) + RACY_MS + 50 - Date.now())));
    const expected = sha(readFileSync(file, 'utf8'));
    const folder = mkdtempSync(path.join(dir, 'data-'));
    const first = await run(folder, file);
    assert.deepEqual(first.rows, [[expected]]);
    assert.equal(first.hashes['hashed'], 1);
    const own = path.join(folder, HASH_CACHE_FILES.inventory);
    assert.deepEqual(readHashFile(own, 100).entries, [[keyOf(file), expected]], 'written to the data folder');

    const second = await run(folder, file);
    assert.deepEqual(second.rows, [[expected]]);
    assert.deepEqual([second.hashes['hashed'], second.hashes['imported']], [0, 1], 'the next run reads no file');

    // A folder with only the agent's file: the same.
    const agentOnly = mkdtempSync(path.join(dir, 'data-'));
    writeHashFile(path.join(agentOnly, HASH_CACHE_FILES.agent), [[keyOf(file), expected]]);
    const third = await run(agentOnly, file);
    assert.deepEqual([third.rows, third.hashes['hashed']], [[[expected]], 0]);
  });
});
