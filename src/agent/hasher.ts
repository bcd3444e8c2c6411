/**
 * SHA-256 of executables, computed once per file version (device, inode, size, mtime, ctime),
 * with a size cap and a read-rate limit so that hashing never competes with the host for disk.
 * The versions and their hashes persist in the agent's data folder and are shared with the
 * inventory collector (hash-cache-file.ts).
 */
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { statSync } from 'node:fs';
import { identityKey, identityOf, isRacy, sameContent, type FileIdentity, type PersistentHashes } from './hash-cache-file.js';
import { TokenBucket } from '../runtime/rate-limit.js';
import { diskPath } from './driver/bytes.js';
import { openRegular } from '../runtime/regular-file.js';

export type { FileIdentity } from './hash-cache-file.js';

export type HashStatus = 'ok' | 'too_large' | 'unreadable' | 'replaced' | 'pending' | 'disabled';

export interface HashResult {
  readonly status: HashStatus;
  readonly sha256?: string;
}

export interface HasherOptions {
  readonly enabled: boolean;
  readonly maxFileBytes: number;
  readonly maxBytesPerSecond: number;
  /** Versions remembered; the least recently used is forgotten first. */
  readonly cacheSize?: number;
  /** How long an event waits for a hash that is being computed. */
  readonly waitMs?: number;
  /**
   * Files of these sizes are hashed first in line (a read budget of their own, so that a backlog
   * of other hashing cannot hold them back) and their event waits up to `urgentWaitMs`: copies of
   * known programs (known-programs.ts), whose first exec must carry their hash. Asked only when a
   * version is not known yet, never on a cache hit.
   */
  readonly urgent?: (size: number) => boolean;
  readonly urgentWaitMs?: number;
}

export interface HasherStats {
  hashed: number;
  cacheHits: number;
  bytesRead: number;
  tooLarge: number;
  unreadable: number;
  replaced: number;
  pending: number;
  /** Hashes computed first in line (`urgent`). */
  urgent: number;
}

const CHUNK = 256 * 1024;

/** Waits until `bytes` may be read from `budget` (bytes per second, a second's worth at most in hand). */
async function readAllowed(budget: TokenBucket, bytes: number): Promise<void> {
  for (let waitMs = budget.take(bytes); waitMs > 0; waitMs = budget.take(bytes)) {
    await new Promise((resolve) => setTimeout(resolve, Math.min(waitMs, 1000)));
  }
}

export class ExecutableHasher implements PersistentHashes {
  private readonly cache = new Map<string, HashResult>();
  private readonly inflight = new Map<string, Promise<HashResult>>();
  private readonly budget: TokenBucket;
  /** The budget of urgent hashes: the same rate, apart from the others'. */
  private readonly urgentBudget: TokenBucket;
  private closed = false;
  private learned = 0;
  readonly stats: HasherStats = { hashed: 0, cacheHits: 0, bytesRead: 0, tooLarge: 0, unreadable: 0, replaced: 0, pending: 0, urgent: 0 };

  constructor(private readonly options: HasherOptions) {
    this.budget = new TokenBucket(options.maxBytesPerSecond);
    this.urgentBudget = new TokenBucket(options.maxBytesPerSecond);
  }

  /**
   * The hash of the file at `path`: at once when known, else after a short wait for the
   * computation. With the identity the kernel saw at exec, no stat is needed and a file replaced
   * since the exec is noticed (status `replaced`) instead of hashing the wrong content.
   */
  hash(path: string, identity?: FileIdentity, pid?: number): HashResult | Promise<HashResult> {
    if (!this.options.enabled) return { status: 'disabled' };
    let version: FileIdentity;
    if (identity && identity.ino !== 0) version = identity;
    else {
      try {
        const s = statSync(diskPath(path), { bigint: true });
        if (!s.isFile()) return { status: 'unreadable' };
        version = identityOf(s);
      } catch {
        this.stats.unreadable++;
        return { status: 'unreadable' };
      }
    }
    const key = identityKey(version);
    const size = version.size;
    const cached = this.cache.get(key);
    if (cached) {
      this.stats.cacheHits++;
      this.cache.delete(key);
      this.cache.set(key, cached);
      return cached;
    }
    if (size > this.options.maxFileBytes) {
      this.stats.tooLarge++;
      return this.remember(key, { status: 'too_large' });
    }
    const urgent = this.options.urgent?.(size) === true;
    let work = this.inflight.get(key);
    if (!work) {
      if (urgent) this.stats.urgent++;
      work = this.compute(path, key, version, identity && identity.ino !== 0 ? pid : undefined, urgent ? this.urgentBudget : this.budget).finally(() => this.inflight.delete(key));
      this.inflight.set(key, work);
    }
    return this.waitFor(work, urgent ? (this.options.urgentWaitMs ?? 1000) : (this.options.waitMs ?? 250));
  }

  /**
   * The hash of a file version, waiting as long as it takes (no `pending`): for the agent's own
   * reference files (known-programs.ts), not for events.
   */
  digest(path: string, version: FileIdentity): HashResult | Promise<HashResult> {
    if (!this.options.enabled) return { status: 'disabled' };
    const key = identityKey(version);
    const cached = this.cache.get(key);
    if (cached) return cached;
    if (version.size > this.options.maxFileBytes) return this.remember(key, { status: 'too_large' });
    let work = this.inflight.get(key);
    if (!work) {
      work = this.compute(path, key, version, undefined, this.budget).finally(() => this.inflight.delete(key));
      this.inflight.set(key, work);
    }
    return work;
  }

  private async waitFor(work: Promise<HashResult>, waitMs: number): Promise<HashResult> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<HashResult>((resolve) => {
      timer = setTimeout(() => resolve({ status: 'pending' }), waitMs);
    });
    try {
      const result = await Promise.race([work, timeout]);
      if (result.status === 'pending') this.stats.pending++;
      return result;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops reading: hashes under way end as unreadable. */
  close(): void {
    this.closed = true;
  }

  private remember(key: string, result: HashResult): HashResult {
    this.cache.set(key, result);
    if (this.cache.size > (this.options.cacheSize ?? 4096)) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    return result;
  }

  /**
   * Hashes the file at `path` if it still is `version` (the one executed), and remembers the
   * hash only when the file stayed that version while it was read and is not racy
   * (hash-cache-file.ts): a cached hash never describes other content than its key's.
   */
  private async compute(path: string, key: string, version: FileIdentity, pid: number | undefined, budget: TokenBucket): Promise<HashResult> {
    let handle: FileHandle | undefined;
    try {
      const found = await this.openVersion(path, version, pid);
      if (found === 'unreadable') {
        this.stats.unreadable++;
        return this.remember(key, { status: 'unreadable' });
      }
      if (found === 'replaced') {
        this.stats.replaced++;
        return { status: 'replaced' };
      }
      handle = found;
      const digest = createHash('sha256');
      const buffer = Buffer.allocUnsafe(CHUNK);
      let total = 0;
      for (;;) {
        if (this.closed) return { status: 'unreadable' };
        // What the file holds is what is charged: the read that finds its end costs nothing.
        const expected = Math.min(CHUNK, version.size - total);
        if (expected > 0) await readAllowed(budget, expected);
        const { bytesRead } = await handle.read(buffer, 0, CHUNK, null);
        if (bytesRead === 0) break;
        total += bytesRead;
        this.stats.bytesRead += bytesRead;
        if (total > version.size) {
          // Grown since the exec: not the version executed, and not read on without a budget.
          this.stats.replaced++;
          return { status: 'replaced' };
        }
        digest.update(buffer.subarray(0, bytesRead));
      }
      if (!sameContent(identityOf(await handle.stat({ bigint: true })), version)) {
        // Written to while we read: what we read is neither the old content nor the new.
        this.stats.replaced++;
        return { status: 'replaced' };
      }
      this.stats.hashed++;
      const result: HashResult = { status: 'ok', sha256: digest.digest('hex') };
      if (isRacy(version)) return result;
      this.learned++;
      return this.remember(key, result);
    } catch {
      this.stats.unreadable++;
      return this.remember(key, { status: 'unreadable' });
    } finally {
      await handle?.close();
    }
  }

  /**
   * The file at `path` if it is `version`; else, with the pid of a process that executed it, the
   * program that process runs (/proc/PID/exe), if that is `version`: a program in a container
   * is known by its path in the container's mount namespace, where the agent's path names
   * another file or none. `replaced` when what was opened is not that version (changed since the
   * exec), `unreadable` when nothing could be opened.
   */
  private async openVersion(path: string, version: FileIdentity, pid: number | undefined): Promise<FileHandle | 'replaced' | 'unreadable'> {
    let opened = false;
    for (const candidate of pid === undefined ? [path] : [path, `/proc/${pid}/exe`]) {
      let handle: FileHandle | undefined;
      try {
        // A name with bytes that are not UTF-8 is opened by those bytes (driver/bytes.ts), not by
        // its text. Only a regular file, opened without blocking: the path is the user's to swap
        // (a FIFO there would hold a thread of the pool for good). /proc/PID/exe is a link to follow.
        handle = await openRegular(diskPath(candidate), candidate !== path);
        opened = true;
        // The path may name another file by now, or the file may have changed since the exec.
        if (sameContent(identityOf(await handle.stat({ bigint: true })), version)) return handle;
      } catch (error) {
        // Something other than a regular file at the path (a FIFO, a link: the driver's path has
        // none) is another file than the one executed; not there (or gone): the next candidate.
        const code = (error as { code?: string }).code;
        if (code === 'HADES_ERR_FILE_NOT_REGULAR' || code === 'ELOOP') opened = true;
      }
      await handle?.close();
    }
    return opened ? 'replaced' : 'unreadable';
  }

  get revision(): number {
    return this.learned;
  }

  /** Hashes of file versions (not the failures), least recently used first. */
  *entries(): Iterable<readonly [string, string]> {
    for (const [key, result] of this.cache) if (result.status === 'ok' && result.sha256) yield [key, result.sha256];
  }

  /** Hashes from the persisted files; a version known already keeps what it has. */
  import(entries: Iterable<readonly [string, string]>): number {
    let added = 0;
    for (const [key, sha256] of entries) {
      if (this.cache.has(key)) continue;
      this.remember(key, { status: 'ok', sha256 });
      added++;
    }
    return added;
  }
}
