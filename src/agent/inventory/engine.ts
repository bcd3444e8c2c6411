/**
 * SQL over the inventory tables with SQLite (better-sqlite3, loaded on the first query).
 *
 * Every table has an empty TEMP table of its columns from the start. A query is prepared against
 * them (so bad SQL and unknown tables are refused before anything is collected), must be a read
 * (`stmt.reader && stmt.readonly`: no writes, no ATTACH, no transactions; pragmas other than those
 * that describe the tables are refused before SQLite prepares them, as it applies them then),
 * and its EXPLAIN program says which tables it opens. Each of those is collected once into its
 * temp table, then the query runs with `query_only` on, and the tables are emptied again.
 *
 * Why not virtual tables: SQLite rescans a virtual table for every row of the other side of a
 * join, so a table would be collected once per row (a self-join of 567 processes took 20 s);
 * a temp table is collected once (36 ms). See ../shared/DESIGN.md.
 *
 * Limits: a timeout (collection stops at the next table or when a table looks at ctx.signal, and
 * the SQL is checked between rows; a single SQLite step cannot be interrupted from JavaScript,
 * which is why the collector runs in its own process that the agent or the CLI can kill), a row
 * limit and a byte limit (the result is cut and marked truncated; bytes of the rows as UTF-8 JSON),
 * and a bound on the column names (refused past it: they cannot be cut).
 */
import { closest, distance } from 'fastest-levenshtein';
import type BetterSqlite3 from 'better-sqlite3';
import { HadesError, type ErrorCode } from '../../common/errors.js';
import { FileHashCache, QueryContext } from './context.js';
import { scanSql } from './sql-tokens.js';
import { shownText } from './tables/host-names.js';
import type { ColumnSpec, InventoryWarning, Row, TableSpec } from './table.js';

export interface EngineOptions {
  readonly root?: string;
  readonly proc?: string;
  readonly maxFileBytes?: number;
  /** Shared across queries, so each executable version is hashed once. */
  readonly hashes?: FileHashCache;
}

export interface QueryLimits {
  /** Whole query: collection and SQL. Default 60 s. */
  readonly timeoutMs?: number;
  /** Rows returned at most; more are cut (truncated: rows). Default unlimited. */
  readonly maxRows?: number;
  /** Bytes of the rows as JSON (UTF-8) at most; more are cut (truncated: bytes). Default unlimited. */
  readonly maxBytes?: number;
  readonly signal?: AbortSignal;
}

export type Value = string | number | null;

export interface ResultColumn {
  readonly name: string;
  /** The declared type for a column of a table; null for an expression. */
  readonly type: string | null;
}

export interface QueryResult {
  readonly columns: readonly ResultColumn[];
  readonly rows: Value[][];
  readonly truncated: boolean;
  readonly truncatedBy?: 'rows' | 'bytes';
  /** Tables the query read, each collected once. */
  readonly tables: readonly string[];
  /** Rows each table produced. */
  readonly collected: Readonly<Record<string, number>>;
  readonly warnings: readonly InventoryWarning[];
  readonly warningsDropped: number;
  /** JSON size of the rows returned, UTF-8 bytes. */
  readonly bytes: number;
  readonly collectMs: number;
  readonly sqlMs: number;
}

const DEFAULT_TIMEOUT_MS = 60_000;
/**
 * Pragmas a query may run (as PRAGMA or as pragma_NAME table-valued functions): they only describe
 * the schema and SQLite itself, with or without an argument. Every other pragma sets something or
 * does work (query_only, case_sensitive_like, max_page_count, hard_heap_limit, optimize, ...).
 */
const READ_ONLY_PRAGMAS: ReadonlySet<string> = new Set([
  'table_info',
  'table_xinfo',
  'table_list',
  'index_list',
  'index_info',
  'index_xinfo',
  'foreign_key_list',
  'function_list',
  'module_list',
  'pragma_list',
  'collation_list',
  'compile_options',
  'database_list',
]);
const CHECK_EVERY_ROWS = 256;
/**
 * Bytes (as JSON) the names of a result's columns may take together. They go once with every
 * answer, in its final frame, which must fit a frame (1 MiB): SQL of 64 KiB names up to 2,000
 * columns of an expression or alias of 60 KB each (`SELECT *, *, ...` from a CTE), and such a
 * frame failed to go, leaving the query unanswered until its timeout killed the collector.
 */
const MAX_COLUMN_NAME_BYTES = 256 * 1024;

type Database = BetterSqlite3.Database;
type Statement = BetterSqlite3.Statement<unknown[], unknown>;

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;

export function queryError(code: ErrorCode, message: string, details?: Record<string, unknown>): HadesError {
  return new HadesError(code, message, details ? { details } : {});
}

/** The closest name within a distance that makes sense for its length. */
function suggest(name: string, candidates: readonly string[]): string | undefined {
  if (candidates.length === 0) return undefined;
  // A name that is part of one candidate (name -> username) says more than a near spelling.
  const lower = name.toLowerCase();
  const containing = lower.length >= 3 ? candidates.filter((c) => c.includes(lower)) : [];
  if (containing.length === 1) return containing[0];
  const best = closest(lower, candidates);
  return distance(lower, best) <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

function coerce(value: Row[string], column: ColumnSpec): string | number | bigint | null {
  if (value === undefined || value === null) return null;
  switch (column.type) {
    case 'INTEGER':
      if (typeof value === 'number') return Number.isFinite(value) ? Math.trunc(value) : null;
      if (typeof value === 'bigint') return int64(value);
      if (typeof value === 'boolean') return value ? 1 : 0;
      return /^-?\d+$/.test(value) ? int64(BigInt(value)) : null;
    case 'REAL':
      if (typeof value === 'number') return Number.isFinite(value) ? value : null;
      if (typeof value === 'bigint') return Number(value);
      if (typeof value === 'boolean') return value ? 1 : 0;
      return Number.isFinite(Number(value)) && value.trim() !== '' ? Number(value) : null;
    default:
      // A name that is not UTF-8 holds raw bytes (U+DC80..U+DCFF, ./tables/host-names.ts): U+FFFD in SQLite.
      return typeof value === 'string' ? shownText(value) : String(value);
  }
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * An integer as SQLite takes it: a number when exact, a bigint within 64 bits, a REAL (number)
 * beyond, as SQLite itself stores such text (a bigint past 64 bits would make the insert throw).
 */
function int64(value: bigint): number | bigint {
  if (value >= INT64_MIN && value <= INT64_MAX) return Number.isSafeInteger(Number(value)) ? Number(value) : value;
  return Number(value);
}

/**
 * UTF-8 bytes of a row as JSON: what the byte limits count, since rows travel as UTF-8 (frames,
 * task results); counting characters let text of 3 bytes a character past them threefold.
 */
export const jsonBytes = (value: unknown): number => Buffer.byteLength(JSON.stringify(value));

/**
 * SQLite values as JSON-friendly ones: blobs as hex, integers as numbers when exact and as text
 * beyond 2^53 (the statement reads them as bigints: as numbers they would be rounded).
 */
function plain(value: unknown): Value {
  if (value === null || value === undefined) return null;
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value === 'string') return value;
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (Buffer.isBuffer(value)) return value.toString('hex');
  return typeof value === 'boolean' ? Number(value) : null;
}

export class InventoryEngine {
  private readonly specs = new Map<string, TableSpec>();
  private db: Database | undefined;
  private readonly rootPages = new Map<number, string>();
  private readonly inserts = new Map<string, Statement>();
  private readonly hashes: FileHashCache;
  private chain: Promise<unknown> = Promise.resolve();
  private allColumns: string[] = [];

  constructor(
    tables: readonly TableSpec[],
    private readonly options: EngineOptions = {},
  ) {
    for (const table of tables) {
      // Two tables of one name would shadow each other silently: fail loudly instead.
      if (this.specs.has(table.name)) throw new HadesError('HADES_ERR_INTERNAL', `two inventory tables are named ${table.name}`);
      this.specs.set(table.name, table);
    }
    this.hashes = options.hashes ?? new FileHashCache();
    this.allColumns = [...new Set(tables.flatMap((t) => t.columns.map((c) => c.name)))];
  }

  get tableNames(): string[] {
    return [...this.specs.keys()];
  }

  get hashStats(): FileHashCache['stats'] {
    return this.hashes.stats;
  }

  /** Opens SQLite and creates the empty temp tables; the first query does it. */
  private async open(): Promise<Database> {
    if (this.db) return this.db;
    const { default: Sqlite } = (await import('better-sqlite3')) as { default: typeof BetterSqlite3 };
    const db = new Sqlite(':memory:');
    db.pragma('temp_store = MEMORY');
    for (const spec of this.specs.values()) {
      db.exec(`CREATE TEMP TABLE ${quote(spec.name)} (${spec.columns.map((c) => `${quote(c.name)} ${c.type}`).join(', ')})`);
    }
    for (const row of db.prepare("SELECT name, rootpage FROM sqlite_temp_master WHERE type = 'table'").all() as { name: string; rootpage: number }[]) {
      this.rootPages.set(row.rootpage, row.name);
    }
    for (const spec of this.specs.values()) {
      this.inserts.set(spec.name, db.prepare(`INSERT INTO temp.${quote(spec.name)} VALUES (${spec.columns.map(() => '?').join(', ')})`));
    }
    this.db = db;
    return db;
  }

  close(): void {
    this.db?.close();
    this.db = undefined;
  }

  /** Runs one read-only statement; queries run one at a time, in the order they were asked. */
  query(sql: string, limits: QueryLimits = {}): Promise<QueryResult> {
    const run = this.chain.then(
      () => this.run(sql, limits),
      () => this.run(sql, limits),
    );
    this.chain = run.catch(() => undefined);
    return run;
  }

  private prepare(db: Database, sql: string): Statement {
    let stmt: Statement;
    try {
      stmt = db.prepare(sql);
    } catch (error) {
      throw this.translate(error, 'prepare', sql);
    }
    if (!stmt.reader || !stmt.readonly) {
      throw queryError('HADES_ERR_QUERY_NOT_READ_ONLY', 'only reads are allowed: the statement would change something or returns no rows (use SELECT or WITH ... SELECT)');
    }
    return stmt;
  }

  /** Turns a SQLite error into a coded one, with a suggestion for unknown names. */
  private translate(error: unknown, phase: 'prepare' | 'run', sql = ''): HadesError {
    if (error instanceof HadesError) return error;
    const message = error instanceof Error ? error.message : String(error);
    const table = /^no such table: (?:\w+\.)?(.+)$/.exec(message);
    if (table) {
      const hint = suggest(table[1]!, this.tableNames);
      return queryError('HADES_ERR_QUERY_UNKNOWN_TABLE', `no inventory table named ${table[1]}${hint ? `; did you mean ${hint}?` : `; tables: ${this.tableNames.join(', ')}`}`, { table: table[1], ...(hint ? { suggestion: hint } : {}) });
    }
    const column = /^no such column: (.+)$/.exec(message);
    if (column) {
      const name = column[1]!.split('.').pop()!;
      // Suggested from the tables the statement names: a column of that name in another table
      // is no answer ("no such column: name; did you mean name?").
      const named = [...sql.matchAll(/\b(?:from|join)\s+["`]?(\w+)/gi)].map((m) => this.specs.get(m[1]!.toLowerCase())).filter((t) => t !== undefined);
      const columns = named.length > 0 ? [...new Set(named.flatMap((t) => t.columns.map((c) => c.name)))] : this.allColumns;
      const hint = suggest(name, columns.filter((c) => c !== name));
      const listed = named.length > 0 && !hint ? `; ${named.map((t) => `${t.name}: ${t.columns.map((c) => c.name).join(', ')}`).join('; ')}` : '';
      return queryError('HADES_ERR_QUERY_UNKNOWN_COLUMN', `no such column: ${column[1]}${hint ? `; did you mean ${hint}?` : listed}`, { column: column[1], ...(hint ? { suggestion: hint } : {}) });
    }
    if (phase === 'prepare') return queryError('HADES_ERR_QUERY_SYNTAX', message.replace(/^The supplied SQL string contains/, 'the SQL contains'));
    return queryError('HADES_ERR_QUERY_FAILED', message);
  }

  /** Tables the statement opens, from its EXPLAIN program; by name when EXPLAIN is not possible. */
  private touched(db: Database, sql: string): string[] {
    try {
      const program = db.prepare(`EXPLAIN ${sql}`).all() as { opcode: string; p2: number; p3: number }[];
      const names: string[] = [];
      for (const op of program) {
        if (op.opcode !== 'OpenRead' || op.p3 !== 1) continue;
        const name = this.rootPages.get(op.p2);
        if (name && !names.includes(name)) names.push(name);
      }
      return names;
    } catch {
      return scanSql(sql).identifiers.filter((name) => this.specs.has(name));
    }
  }

  private async run(sql: string, limits: QueryLimits): Promise<QueryResult> {
    const started = performance.now();
    const timeoutMs = limits.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const deadline = started + timeoutMs;
    const names = scanSql(sql);
    // Before SQLite sees it: SQLite applies most pragmas while it prepares them, so a pragma
    // refused after prepare (or one that returns a row, and passes for a read) would already
    // have changed the engine for every later query (query_only, case_sensitive_like, ...).
    const pragma = names.pragmas.find((name) => !READ_ONLY_PRAGMAS.has(name));
    if (pragma !== undefined) {
      throw queryError('HADES_ERR_QUERY_NOT_READ_ONLY', `only reads are allowed: PRAGMA ${pragma} may change a setting; the pragmas allowed are those that describe the tables (${[...READ_ONLY_PRAGMAS].join(', ')})`, { pragma });
    }
    const db = await this.open();
    const stmt = this.prepare(db, sql.trim());
    const tables = this.touched(db, sql.trim());
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), timeoutMs);
    const onAbort = () => abort.abort();
    limits.signal?.addEventListener('abort', onAbort, { once: true });
    const context = new QueryContext({
      ...(this.options.root ? { root: this.options.root } : {}),
      ...(this.options.proc ? { proc: this.options.proc } : {}),
      ...(this.options.maxFileBytes ? { maxFileBytes: this.options.maxFileBytes } : {}),
      hashes: this.hashes,
      signal: abort.signal,
      ...(names.star ? {} : { columns: new Set(names.identifiers) }),
    });
    const collected: Record<string, number> = {};
    try {
      for (const name of tables) {
        if (abort.signal.aborted || performance.now() > deadline) throw this.timeout(timeoutMs, limits.signal, `collecting ${name}`);
        const rows = await this.collect(name, context, abort.signal, timeoutMs, limits.signal);
        collected[name] = rows.length;
        this.fill(db, name, rows);
      }
      const collectMs = performance.now() - started;
      const result = this.execute(db, stmt, limits, deadline, timeoutMs);
      return {
        ...result,
        tables,
        collected,
        warnings: context.warnings,
        warningsDropped: context.warningsDropped,
        collectMs: Math.round(collectMs),
        sqlMs: Math.round(performance.now() - started - collectMs),
      };
    } finally {
      clearTimeout(timer);
      limits.signal?.removeEventListener('abort', onAbort);
      for (const name of tables) db.prepare(`DELETE FROM temp.${quote(name)}`).run();
    }
  }

  private timeout(timeoutMs: number, external: AbortSignal | undefined, what: string): HadesError {
    if (external?.aborted) return queryError('HADES_ERR_QUERY_TIMEOUT', `the query was cancelled while ${what}`);
    return queryError('HADES_ERR_QUERY_TIMEOUT', `the query took longer than its timeout of ${(timeoutMs / 1000).toFixed(1)} s (while ${what})`);
  }

  /** One table's rows; a table that throws is empty, with a warning (a bug in the table, not the query). */
  private async collect(name: string, context: QueryContext, signal: AbortSignal, timeoutMs: number, external: AbortSignal | undefined): Promise<Row[]> {
    const spec = this.specs.get(name)!;
    const ctx = context.forTable(name);
    let stop: (() => void) | undefined;
    const aborted = new Promise<'aborted'>((resolve) => {
      stop = () => resolve('aborted');
      signal.addEventListener('abort', stop, { once: true });
    });
    try {
      const rows = await Promise.race([spec.generate(ctx), aborted]);
      if (rows === 'aborted' || signal.aborted) throw this.timeout(timeoutMs, external, `collecting ${name}`);
      return rows;
    } catch (error) {
      if (error instanceof HadesError && error.code === 'HADES_ERR_QUERY_TIMEOUT') throw error;
      ctx.warn('HADES_ERR_INVENTORY_TABLE_FAILED', `the table failed and is empty for this query: ${error instanceof Error ? error.message : String(error)}`);
      return [];
    } finally {
      if (stop) signal.removeEventListener('abort', stop);
    }
  }

  private fill(db: Database, name: string, rows: readonly Row[]): void {
    const spec = this.specs.get(name)!;
    const insert = this.inserts.get(name)!;
    const columns = spec.columns;
    db.transaction(() => {
      for (const row of rows) insert.run(columns.map((c) => coerce(row[c.name], c)));
    })();
  }

  private execute(db: Database, stmt: Statement, limits: QueryLimits, deadline: number, timeoutMs: number): Pick<QueryResult, 'columns' | 'rows' | 'truncated' | 'truncatedBy' | 'bytes'> {
    const columns = stmt.columns().map((c) => ({ name: c.name, type: c.type }));
    const nameBytes = columns.reduce((sum, c) => sum + jsonBytes(c.name), 0);
    if (nameBytes > MAX_COLUMN_NAME_BYTES) {
      throw queryError('HADES_ERR_QUERY_FAILED', `the names of the result's ${columns.length} columns take ${nameBytes} bytes, more than ${MAX_COLUMN_NAME_BYTES}: give long expressions short names (AS), and select fewer columns`);
    }
    const rows: Value[][] = [];
    const maxRows = limits.maxRows ?? Number.POSITIVE_INFINITY;
    const maxBytes = limits.maxBytes ?? Number.POSITIVE_INFINITY;
    let bytes = 2;
    let truncatedBy: 'rows' | 'bytes' | undefined;
    db.pragma('query_only = ON');
    const iterator = (stmt.raw(true).safeIntegers(true) as BetterSqlite3.Statement<unknown[], unknown[]>).iterate();
    try {
      for (;;) {
        let next: IteratorResult<unknown[]>;
        try {
          next = iterator.next();
        } catch (error) {
          throw this.translate(error, 'run');
        }
        if (next.done) break;
        if (rows.length >= maxRows) {
          truncatedBy = 'rows';
          break;
        }
        // A blob is twice its size as hex: one past the bytes left is not made into text at all
        // (hundreds of MB of hex would pass what a string may hold).
        if (next.value.some((v) => Buffer.isBuffer(v) && 2 * v.length + 3 > maxBytes - bytes)) {
          truncatedBy = 'bytes';
          break;
        }
        let row: Value[];
        let size: number;
        try {
          row = next.value.map(plain);
          size = jsonBytes(row) + 1;
        } catch (error) {
          throw queryError('HADES_ERR_QUERY_FAILED', `a value of the row is too large to give (${error instanceof Error ? error.message : String(error)}); leave it out or take a part of it (substr, length)`);
        }
        if (bytes + size > maxBytes) {
          truncatedBy = 'bytes';
          break;
        }
        bytes += size;
        rows.push(row);
        if (rows.length % CHECK_EVERY_ROWS === 0 && performance.now() > deadline) throw this.timeout(timeoutMs, limits.signal, 'running the SQL');
      }
    } finally {
      iterator.return?.();
      db.pragma('query_only = OFF');
    }
    return { columns, rows, truncated: truncatedBy !== undefined, ...(truncatedBy ? { truncatedBy } : {}), bytes };
  }
}

/** Rows as objects keyed by column name (the form tasks and --json use). */
export function rowObjects(result: Pick<QueryResult, 'columns' | 'rows'>): Record<string, Value>[] {
  return result.rows.map((row) => {
    const out: Record<string, Value> = {};
    result.columns.forEach((c, i) => {
      out[c.name] = row[i] ?? null;
    });
    return out;
  });
}
