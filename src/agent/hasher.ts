/**
 * SHA-256 of executables, computed once per file version (device, inode, size, mtime), with a
 * size cap and a read-rate limit so that hashing never competes with the host for disk.
 */
import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { statSync } from 'node:fs';

export type HashStatus = 'ok' | 'too_large' | 'unreadable' | 'replaced' | 'pending' | 'disabled';

/** The executed file's identity as the kernel saw it at exec (EXEC v2), or undefined. */
export interface FileIdentity {
  readonly dev: number;
  readonly ino: number;
  readonly size: number;
  readonly mtimeNs: number;
  readonly ctimeNs: number;
}

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
}

export interface HasherStats {
  hashed: number;
  cacheHits: number;
  bytesRead: number;
  tooLarge: number;
  unreadable: number;
  replaced: number;
  pending: number;
}

const CHUNK = 256 * 1024;

export class ExecutableHasher {
  private readonly cache = new Map<string, HashResult>();
  private readonly inflight = new Map<string, Promise<HashResult>>();
  private budget: number;
  private budgetAt = Date.now();
  private closed = false;
  readonly stats: HasherStats = { hashed: 0, cacheHits: 0, bytesRead: 0, tooLarge: 0, unreadable: 0, replaced: 0, pending: 0 };

  constructor(private readonly options: HasherOptions) {
    this.budget = options.maxBytesPerSecond;
  }

  /**
   * The hash of the file at `path`: at once when known, else after a short wait for the
   * computation. With the identity the kernel saw at exec, no stat is needed and a file replaced
   * since the exec is noticed (status `replaced`) instead of hashing the wrong content.
   */
  hash(path: string, identity?: FileIdentity): HashResult | Promise<HashResult> {
    if (!this.options.enabled) return { status: 'disabled' };
    let key: string;
    let size: number;
    if (identity && identity.ino !== 0) {
      key = `${identity.dev}:${identity.ino}:${identity.size}:${identity.mtimeNs}:${identity.ctimeNs}`;
      size = identity.size;
    } else {
      try {
        const s = statSync(path, { bigint: false });
        if (!s.isFile()) return { status: 'unreadable' };
        key = `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
        size = s.size;
      } catch {
        this.stats.unreadable++;
        return { status: 'unreadable' };
      }
    }
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
    let work = this.inflight.get(key);
    if (!work) {
      work = this.compute(path, key, identity).finally(() => this.inflight.delete(key));
      this.inflight.set(key, work);
    }
    return this.waitFor(work);
  }

  private async waitFor(work: Promise<HashResult>): Promise<HashResult> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<HashResult>((resolve) => {
      timer = setTimeout(() => resolve({ status: 'pending' }), this.options.waitMs ?? 250);
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

  private async compute(path: string, key: string, identity: FileIdentity | undefined): Promise<HashResult> {
    let handle: FileHandle | undefined;
    try {
      handle = await open(path, 'r');
      if (identity && identity.ino !== 0) {
        // The path may name another file by now: hash only the one that was executed.
        const now = await handle.stat();
        if (now.ino !== identity.ino || now.size !== identity.size) {
          this.stats.replaced++;
          return { status: 'replaced' };
        }
      }
      const digest = createHash('sha256');
      const buffer = Buffer.allocUnsafe(CHUNK);
      for (;;) {
        if (this.closed) return { status: 'unreadable' };
        await this.throttle(CHUNK);
        const { bytesRead } = await handle.read(buffer, 0, CHUNK, null);
        if (bytesRead === 0) break;
        this.stats.bytesRead += bytesRead;
        digest.update(buffer.subarray(0, bytesRead));
      }
      this.stats.hashed++;
      return this.remember(key, { status: 'ok', sha256: digest.digest('hex') });
    } catch {
      this.stats.unreadable++;
      return this.remember(key, { status: 'unreadable' });
    } finally {
      await handle?.close();
    }
  }

  /** Token bucket over bytes read: waits until `bytes` may be read. */
  private async throttle(bytes: number): Promise<void> {
    for (;;) {
      const now = Date.now();
      this.budget = Math.min(this.options.maxBytesPerSecond, this.budget + ((now - this.budgetAt) / 1000) * this.options.maxBytesPerSecond);
      this.budgetAt = now;
      if (this.budget >= Math.min(bytes, this.options.maxBytesPerSecond)) {
        this.budget -= bytes;
        return;
      }
      const waitMs = Math.ceil(((bytes - this.budget) / this.options.maxBytesPerSecond) * 1000);
      await new Promise((resolve) => setTimeout(resolve, Math.min(waitMs, 1000)));
    }
  }
}
