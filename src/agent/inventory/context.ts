/**
 * The collect context tables run in: where the host's root and /proc are, how big a file may be
 * read whole, where warnings go, and a SHA-256 cache that outlives one query (the collector keeps
 * one for its lifetime, and in the agent's data folder across restarts, so each executable
 * version is hashed once).
 */
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { identityKey, identityOf, isRacy, sameContent, type PersistentHashes } from '../hash-cache-file.js';
import type { CollectContext, InventoryWarning } from './table.js';
import { shownText } from './tables/host-names.js';
import { openRegular } from '../../runtime/regular-file.js';

export const DEFAULT_MAX_FILE_BYTES = 16 * 1024 * 1024;
/** Executables are hashed up to this size (node itself is about 100 MB). */
export const DEFAULT_MAX_HASH_BYTES = 256 * 1024 * 1024;
const CHUNK = 1024 * 1024;

export interface FileHashStats {
  hashed: number;
  cacheHits: number;
  bytesRead: number;
  unreadable: number;
  tooLarge: number;
  /** Files written to while they were read: no hash (the content read was neither version). */
  changed: number;
  /** Hashes taken from the persisted files (the agent's and our own, of earlier runs). */
  imported: number;
}

/**
 * SHA-256 per file version, keyed as the agent keys executed files (../hash-cache-file.ts), so
 * that the hashes persisted by the agent and by earlier collectors are found here. Least
 * recently used versions are forgotten first; concurrent requests for one version share one
 * read. A hash is kept only when the file stayed one version while it was read and is not racy.
 */
export class FileHashCache implements PersistentHashes {
  private readonly cache = new Map<string, string | undefined>();
  private readonly inflight = new Map<string, Promise<string | undefined>>();
  private learned = 0;
  readonly stats: FileHashStats = { hashed: 0, cacheHits: 0, bytesRead: 0, unreadable: 0, tooLarge: 0, changed: 0, imported: 0 };

  constructor(
    private readonly maxBytes = DEFAULT_MAX_HASH_BYTES,
    readonly size = 8192,
  ) {}

  get revision(): number {
    return this.learned;
  }

  /** The hash of a file: at once when its version is known, else once it is read. */
  sha256(file: string | Buffer): string | undefined | Promise<string | undefined> {
    let key: string;
    try {
      // A stat per lookup, synchronous: much cheaper than a trip through the thread pool.
      const s = statSync(file, { bigint: true });
      if (!s.isFile()) return undefined;
      if (s.size > this.maxBytes) {
        this.stats.tooLarge++;
        return undefined;
      }
      key = identityKey(identityOf(s));
    } catch {
      this.stats.unreadable++;
      return undefined;
    }
    if (this.cache.has(key)) {
      this.stats.cacheHits++;
      const value = this.cache.get(key);
      this.cache.delete(key);
      this.cache.set(key, value);
      return value;
    }
    let work = this.inflight.get(key);
    if (!work) {
      work = this.compute(file).finally(() => this.inflight.delete(key));
      this.inflight.set(key, work);
    }
    return work;
  }

  private async compute(file: string | Buffer): Promise<string | undefined> {
    let handle: FileHandle;
    try {
      // Stat-checked above, but the file may have been swapped since (for a FIFO, say).
      handle = await openRegular(file, true);
    } catch {
      this.stats.unreadable++;
      return undefined;
    }
    try {
      // The version is the open file's, read before and after its content.
      const version = identityOf(await handle.stat({ bigint: true }));
      const digest = createHash('sha256');
      const buffer = Buffer.allocUnsafe(CHUNK);
      let total = 0;
      for (;;) {
        const { bytesRead } = await handle.read(buffer, 0, CHUNK, null);
        if (bytesRead === 0) break;
        total += bytesRead;
        // The file grew past the limit while being read: give up rather than read forever.
        if (total > this.maxBytes) {
          this.stats.bytesRead += total;
          this.stats.tooLarge++;
          return undefined;
        }
        digest.update(buffer.subarray(0, bytesRead));
      }
      this.stats.bytesRead += total;
      if (!sameContent(identityOf(await handle.stat({ bigint: true })), version)) {
        this.stats.changed++;
        return undefined;
      }
      this.stats.hashed++;
      const sha = digest.digest('hex');
      if (!isRacy(version)) {
        this.learned++;
        this.remember(identityKey(version), sha);
      }
      return sha;
    } catch {
      this.stats.unreadable++;
      return undefined;
    } finally {
      await handle.close().catch(() => undefined);
    }
  }

  private remember(key: string, value: string | undefined): void {
    this.cache.delete(key);
    this.cache.set(key, value);
    if (this.cache.size > this.size) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
  }

  /** Hashes known, least recently used first (for the persisted file). */
  *entries(): Iterable<readonly [string, string]> {
    for (const [key, sha] of this.cache) if (sha !== undefined) yield [key, sha];
  }

  /** Hashes from persisted files; a version known already keeps what it has. */
  import(entries: Iterable<readonly [string, string]>): number {
    let added = 0;
    for (const [key, sha] of entries) {
      if (this.cache.has(key)) continue;
      this.remember(key, sha);
      added++;
    }
    this.stats.imported += added;
    return added;
  }
}

export interface ContextOptions {
  /** The host's root folder (default '/'). */
  readonly root?: string;
  /** Where /proc is (default '/proc' on the host, `${root}/proc` under another root). */
  readonly proc?: string;
  readonly maxFileBytes?: number;
  readonly hashes?: FileHashCache;
  readonly signal?: AbortSignal;
  readonly columns?: ReadonlySet<string>;
  /** Each warning as it comes; they are also kept in `warnings`. */
  readonly onWarning?: (warning: InventoryWarning) => void;
  /** Warnings kept per context (the rest are counted in `warningsDropped`). */
  readonly maxWarnings?: number;
}

/** A context for one table of one query, with the warnings it produced. */
export interface TableContext extends CollectContext {
  readonly warnings: InventoryWarning[];
  warningsDropped: number;
}

/** The default /proc for a root. */
export const procOf = (root: string): string => (root === '/' ? '/proc' : path.join(root, 'proc'));

/**
 * Makes the context tables of one query share: the same root, hash cache and memo. `forTable`
 * gives each table its own view whose warnings name the table.
 */
export class QueryContext {
  readonly root: string;
  readonly proc: string;
  readonly maxFileBytes: number;
  readonly hashes: FileHashCache;
  readonly warnings: InventoryWarning[] = [];
  warningsDropped = 0;
  private readonly memos = new Map<string, unknown>();

  constructor(private readonly options: ContextOptions = {}) {
    this.root = path.resolve(options.root ?? '/');
    this.proc = options.proc ?? procOf(this.root);
    this.maxFileBytes = options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
    this.hashes = options.hashes ?? new FileHashCache();
  }

  private relative(file: string | undefined): string | undefined {
    if (file === undefined || this.root === '/') return file;
    if (file === this.root) return '/';
    return file.startsWith(`${this.root}/`) ? file.slice(this.root.length) : file;
  }

  forTable(table: string): CollectContext {
    const { options } = this;
    return {
      root: this.root,
      proc: this.proc,
      maxFileBytes: this.maxFileBytes,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.columns ? { columns: options.columns } : {}),
      warn: (code, message, file) => {
        // A name that is not UTF-8 (./tables/host-names.ts) shows its raw bytes as U+FFFD, as in rows.
        const relative = this.relative(file);
        const warning: InventoryWarning = { table, code, message: shownText(message), ...(relative !== undefined ? { path: shownText(relative) } : {}) };
        if (this.warnings.length < (options.maxWarnings ?? 1000)) this.warnings.push(warning);
        else this.warningsDropped++;
        options.onWarning?.(warning);
      },
      sha256: (file) => this.hashes.sha256(file),
      memo: <T>(key: string, compute: () => T): T => {
        if (this.memos.has(key)) return this.memos.get(key) as T;
        const value = compute();
        this.memos.set(key, value);
        return value;
      },
    };
  }
}
