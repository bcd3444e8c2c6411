/**
 * One declarative spec per inventory table: its columns (name, SQLite type, description), its
 * examples (which run as tests and appear in docs/tables.md), and the function that produces its
 * rows. Tables read the host through `CollectContext.root`, so that tests can point a table at a
 * fixture tree (an rpm database, jar files, a corrupt dpkg status) instead of the real host.
 *
 * A table never throws for bad input on the host: an unreadable folder, an odd line, a huge or
 * looping file becomes a warning (`ctx.warn`) and the row or file is skipped.
 */

/** SQLite column types. Booleans are INTEGER 0/1. */
export type ColumnType = 'TEXT' | 'INTEGER' | 'REAL';

export interface ColumnSpec {
  readonly name: string;
  readonly type: ColumnType;
  readonly description: string;
  /** The column may be NULL (a value the host does not have). Default false. */
  readonly nullable?: boolean;
}

export interface TableExample {
  readonly description: string;
  readonly sql: string;
}

/** A row: column name to value; undefined and null are stored as NULL. */
export type Row = Record<string, string | number | bigint | null | undefined>;

export interface InventoryWarning {
  readonly table: string;
  /** A code from src/common/errors.ts, e.g. HADES_ERR_INVENTORY_SKIPPED. */
  readonly code: string;
  readonly message: string;
  /** The file or folder concerned, relative to the context's root when under it. */
  readonly path?: string;
}

export interface CollectContext {
  /** The host's root folder: '/' on a host, a fixture folder in tests. Paths are joined to it. */
  readonly root: string;
  /** Where /proc is mounted: normally `${root}/proc`, '/proc' on a host. */
  readonly proc: string;
  /** Reports a skipped row or file; never throws. */
  warn(code: string, message: string, path?: string): void;
  /** Cancels a long collection (a query's timeout). */
  readonly signal?: AbortSignal;
  /** Largest file a table reads whole, in bytes; bigger files are skipped with a warning. */
  readonly maxFileBytes: number;
  /**
   * SHA-256 of a file (hex), cached by version (device, inode, size, mtime, ctime) and given at
   * once when cached; undefined when unreadable. The path is opened as given: join a host path to
   * `root` first (a /proc/PID/exe link works).
   */
  sha256(path: string | Buffer): string | undefined | Promise<string | undefined>;
  /**
   * The columns the query may read; absent means all of them. A table may leave a costly column
   * it does not list NULL (the processes table skips hashing when `sha256` is not read). Only a
   * hint: a table that ignores it is correct.
   */
  readonly columns?: ReadonlySet<string>;
  /**
   * One value per query for a key, computed on first use: tables that need the same host data
   * (the socket inode of every process's open files) read it once per query.
   */
  memo?<T>(key: string, compute: () => T): T;
}

export interface TableSpec {
  /** snake_case, unique. */
  readonly name: string;
  /** One or two sentences for docs/tables.md. */
  readonly description: string;
  readonly columns: readonly ColumnSpec[];
  /** At least one; each runs as a test against the real host and must succeed. */
  readonly examples: readonly TableExample[];
  /** The rows as they are now. */
  generate(ctx: CollectContext): Promise<Row[]>;
}
