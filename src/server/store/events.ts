/**
 * The server's event store: every event agents deliver, in the `events` table of the server's
 * database (db.ts), with the fields analysts hunt on copied into indexed columns.
 *
 * - Ingestion: one transaction per batch, one prepared INSERT per event; duplicates (delivery is
 *   at-least-once) are dropped by `event.id` through a unique index. The stored JSON is the
 *   event plus `event.ingested`.
 * - Search: time range, host, action, agent and field filters, newest first, keyset pagination
 *   (./query.ts builds the SQL).
 * - Retention: by age and by database size, in chunks, each its own short transaction.
 *
 * Schema and index choices, with measurements, are in docs/architecture.md and bench/store.ts.
 */
import { statSync } from 'node:fs';
import type { Statement, Transaction } from 'better-sqlite3';
import { HadesError, isHadesError, sqliteHint, toHadesError } from '../../common/errors.js';
import { liveBytes, migrate, type Db } from '../db.js';
import { toRow, type Row } from './row.js';
import { buildQuery, encodeCursor, PROBE_ROWS, type EventQuery, type SearchPlan } from './query.js';

export type { EventQuery, FieldFilter, FilterOp, TimeBound } from './query.js';

/**
 * Migrations of the `events` module, append-only (see db.ts).
 *
 * The table is a rowid table whose rowid (`id`) orders rows by arrival and breaks ties between
 * events of the same millisecond in the page cursor. The JSON comes last so that the columns
 * before it are read without touching overflow pages. Indexes, each chosen for a hunt:
 * - `(event_id, agent_id)` (unique): deduplication, per agent; also "find this event".
 * - `time`: every search is a time window read newest first.
 * - `(host, time)`, `(action, time)`: the two dimensions the API and console always offer.
 * - `(executable, time)`, `(user_name, time)`, `(destination_ip, time)`: "who ran X", "what did
 *   root do", "who talked to this address": partial (NOT NULL) so events without the field
 *   cost nothing, and ending in time so a search walks the index in the order it returns.
 * The other columns (process name, source ip, destination port, file path, DNS name) are kept
 * unindexed: a filter on them compares a column instead of parsing JSON, and each index more
 * costs ingestion (measured in bench/store.ts); a later step can add one.
 */
export const EVENTS_MIGRATIONS: readonly string[] = [
  `CREATE TABLE events (
     id INTEGER PRIMARY KEY,
     event_id TEXT NOT NULL,
     time INTEGER NOT NULL,
     ingested INTEGER NOT NULL,
     agent_id TEXT NOT NULL,
     host TEXT NOT NULL,
     action TEXT NOT NULL,
     executable TEXT,
     process_name TEXT,
     user_name TEXT,
     destination_ip TEXT,
     destination_port INTEGER,
     source_ip TEXT,
     file_path TEXT,
     dns_name TEXT,
     event TEXT NOT NULL
   );
   CREATE UNIQUE INDEX events_event_id ON events (event_id);
   CREATE INDEX events_time ON events (time);
   CREATE INDEX events_host_time ON events (host, time);
   CREATE INDEX events_action_time ON events (action, time);
   CREATE INDEX events_executable_time ON events (executable, time) WHERE executable IS NOT NULL;
   CREATE INDEX events_user_time ON events (user_name, time) WHERE user_name IS NOT NULL;
   CREATE INDEX events_destination_ip_time ON events (destination_ip, time) WHERE destination_ip IS NOT NULL;`,
  // An event is a duplicate only of the same agent's: one agent that knows another's event ids
  // (they are readable) must not make that agent's events be dropped as already stored.
  `CREATE UNIQUE INDEX events_event_id_agent ON events (event_id, agent_id);
   DROP INDEX events_event_id;`,
];

export interface InsertResult {
  /** Events written by this batch. */
  readonly stored: number;
  /** Events already in the store (same `event.id`), dropped. */
  readonly duplicates: number;
  /** Positions in the batch of the events written (the others were duplicates), in order. */
  readonly storedIndexes: readonly number[];
  /** The rowids (`id`) of the first and last event written; 0 when none was. */
  readonly firstRowid: number;
  readonly lastRowid: number;
}

export interface SearchResult {
  readonly events: Record<string, unknown>[];
  /** The cursor of the next page; absent on the last page. */
  readonly next?: string;
  /**
   * The page ended before its limit: at the search's budget of rows examined (SCAN_BUDGET), or
   * before PAGE_BYTES of events. It may hold fewer events than asked, even none, and `next` goes
   * on from there.
   */
  readonly partial?: true;
}

export interface RetentionOptions {
  /** Delete events stored (`event.ingested`, the server's clock) more than this many days ago. */
  readonly maxAgeDays?: number;
  /** Delete the first events stored while their pages (live pages of the events' table and indexes, plus the WAL; without it while a reader keeps the WAL) take more than this. */
  readonly maxBytes?: number;
  /** Rows per delete transaction; 10,000 by default. */
  readonly chunkRows?: number;
  /** The clock, for tests. */
  readonly now?: number;
}

export interface RetentionResult {
  readonly deletedByAge: number;
  readonly deletedBySize: number;
}

export interface StoreStats {
  readonly events: number;
  /** Bytes the database occupies: live pages (not the free list) plus the WAL file. */
  readonly bytes: number;
  /** The oldest and newest `@timestamp` stored (ms since the epoch), absent when empty. */
  readonly oldest?: number;
  readonly newest?: number;
}

export interface EventStoreOptions {
  /**
   * Called after each commit with the JSON of the events that batch stored (duplicates left
   * out, `event.ingested` included) and the rowid of the last (a batch's rows are consecutive):
   * the hook for the raw archive. It must not throw.
   */
  readonly onStored?: (lines: readonly string[], lastRowid: number) => void;
  /** The clock (ms), for tests. */
  readonly now?: () => number;
  /** (row, filter) pairs a search may examine on fields that are not indexed (default SCAN_BUDGET). */
  readonly scanBudget?: number;
  /** Bytes of stored JSON a search page holds at most, but for its first event (default PAGE_BYTES). */
  readonly pageBytes?: number;
}

/** What a batch's transaction did: rows stored, the first of them, their JSON for onStored. */
interface BatchOutcome {
  stored: number;
  first: Row | undefined;
  firstRowid: number;
  lastRowid: number;
  readonly lines: string[] | undefined;
  readonly indexes: number[];
}

const INSERT_SQL =
  'INSERT INTO events (event_id, time, ingested, agent_id, host, action, executable, process_name, user_name, destination_ip, destination_port, source_ip, file_path, dns_name, event) ' +
  'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id, agent_id) DO NOTHING';

const DAY_MS = 86_400_000;

/**
 * Bytes of stored JSON one search page holds at most: a page stops before the event that would
 * pass it (with at least one event, which ingestion bounds: MAX_EVENT_BYTES in
 * ../ingest/prepare.ts), however many were asked for, and says `partial` with its `next`, as a
 * fleet query's pages do (fleet/queries.ts). Ten thousand events of megabytes would otherwise be
 * read, parsed and serialised as one answer past what a string may hold, on the main thread.
 */
export const PAGE_BYTES = 4 * 1024 * 1024;
const MAX_CACHED_STATEMENTS = 64;
/** SQLite's default max_page_count: no limit but its own. */
const MAX_PAGES = 4_294_967_294;

/** A search SQLite could not run: the database's trouble (HADES_ERR_DATABASE) or else the query's. */
function searchError(error: unknown): HadesError {
  const known = toHadesError(error);
  return known.code === 'HADES_ERR_DATABASE' ? new HadesError('HADES_ERR_DATABASE', `the search failed: ${known.message}`, { cause: error, details: known.details ?? {} }) : new HadesError('HADES_ERR_STORE_QUERY', `the search failed: ${(error as Error).message}`, { cause: error });
}

function writeError(what: string, error: unknown): HadesError {
  const code = (error as { code?: unknown }).code;
  return new HadesError('HADES_ERR_STORE_WRITE', `${what}: ${(error as Error).message}${typeof code === 'string' ? sqliteHint(code) : ''}`, {
    cause: error,
    details: typeof code === 'string' ? { sqlite: code } : {},
  });
}

export class EventStore {
  readonly #db: Db;
  readonly #insert: Statement<[Row]>;
  readonly #insertBatch: (rows: readonly Row[], outcome: BatchOutcome) => void;
  readonly #committed: Statement<[string, number, string], { n: number }>;
  readonly #statements = new Map<string, Statement<(string | number)[], { id: number; time: number; bytes: number }>>();
  readonly #onStored: ((lines: readonly string[], lastRowid: number) => void) | undefined;
  /** The lines of the batches stored in the group under way (grouped()), until it commits. */
  #deferred: [string[], number][] | undefined;
  /** The first row the group under way stored: to tell whether a COMMIT that failed committed. */
  #groupFirst: Row | undefined;
  #group: Transaction<(run: () => unknown) => unknown> | undefined;
  readonly #now: () => number;
  readonly #walFile: string | undefined;
  #byId: Statement<[string, string], { event: string }> | undefined;
  #byRowid: Statement<[number], { event: string }> | undefined;
  #byOwnId: Statement<[string, string], { event: string }> | undefined;
  #after: Statement<[number, number], { id: number; agent_id: string; event: string }> | undefined;
  #others: Statement<[], { name: string }> | undefined;
  #pagesOf: Statement<[string], { bytes: number | null }> | undefined;

  readonly #scanBudget: number | undefined;
  readonly #pageBytes: number;

  constructor(db: Db, options: EventStoreOptions = {}) {
    this.#db = db;
    this.#onStored = options.onStored;
    this.#now = options.now ?? Date.now;
    this.#scanBudget = options.scanBudget;
    this.#pageBytes = options.pageBytes ?? PAGE_BYTES;
    try {
      migrate(db, 'events', EVENTS_MIGRATIONS);
    } catch (error) {
      throw new HadesError('HADES_ERR_STORE_OPEN', `cannot prepare the events table of ${db.name}: ${(error as Error).message}`, { cause: error });
    }
    this.#walFile = db.memory ? undefined : `${db.name}-wal`;
    this.#insert = db.prepare<[Row]>(INSERT_SQL); // an array binds its elements in order
    this.#committed = db.prepare<[string, number, string], { n: number }>('SELECT count(*) AS n FROM events WHERE event_id = ? AND ingested = ? AND agent_id = ?');
    const insert = this.#insert;
    // IMMEDIATE: take the write lock at BEGIN, so a busy database fails before any work. Inside
    // a caller's transaction (the gateway's group commit) the rows go straight into it: a
    // savepoint per batch would cost a statement journal, and the caller rolls the whole
    // transaction back when a write fails.
    const inline = (rows: readonly Row[], outcome: BatchOutcome): void => {
      for (let i = 0; i < rows.length; i++) {
        const row = rows[i] as Row;
        const written = insert.run(row);
        if (written.changes === 1) {
          outcome.lastRowid = Number(written.lastInsertRowid);
          if (outcome.first === undefined) outcome.firstRowid = outcome.lastRowid;
          outcome.first ??= row;
          outcome.stored++;
          outcome.indexes.push(i);
          outcome.lines?.push(row[14]);
        }
      }
    };
    const transaction = db.transaction(inline);
    this.#insertBatch = (rows, outcome) => (db.inTransaction ? inline(rows, outcome) : transaction.immediate(rows, outcome));
  }

  /**
   * Stores a batch from one agent: NDJSON lines (already validated events) or event objects.
   * All or nothing: one transaction. An event whose `event.id` is already stored is dropped and
   * counted in `duplicates`. Throws HADES_ERR_EVENT_INVALID (before writing anything) when an
   * event lacks what the store needs, and HADES_ERR_STORE_WRITE when SQLite cannot write (disk
   * full, locked, I/O error): the batch must then not be acknowledged.
   */
  insertBatch(agentId: string, batch: readonly string[] | readonly Record<string, unknown>[]): InsertResult {
    if (typeof agentId !== 'string' || agentId.length === 0) throw new HadesError('HADES_ERR_INTERNAL', 'insertBatch needs the id of the agent that sent the batch');
    if (batch.length === 0) return { stored: 0, duplicates: 0, storedIndexes: [], firstRowid: 0, lastRowid: 0 };
    const ingestedMs = this.#now();
    const ingestedIso = new Date(ingestedMs).toISOString();
    const rows = new Array<Row>(batch.length);
    for (let i = 0; i < batch.length; i++) rows[i] = toRow(batch[i], i, agentId, ingestedMs, ingestedIso);
    return this.insertRows(agentId, rows);
  }

  /**
   * Stores rows built by toRow (./row.ts), as insertBatch does: the server's ingest worker builds
   * them off the main thread. Each row must name `agentId` as its agent.
   */
  insertRows(agentId: string, rows: readonly Row[]): InsertResult {
    if (rows.length === 0) return { stored: 0, duplicates: 0, storedIndexes: [], firstRowid: 0, lastRowid: 0 };
    const outcome: BatchOutcome = { stored: 0, first: undefined, firstRowid: 0, lastRowid: 0, lines: this.#onStored === undefined ? undefined : [], indexes: [] };
    try {
      this.#insertBatch(rows, outcome);
    } catch (error) {
      // SQLite reports a failed automatic checkpoint as an error of the COMMIT that ran it, although
      // the transaction is committed: look, so as to acknowledge what is stored.
      if (!this.#isCommitted(outcome.first)) throw writeError(`cannot store a batch of ${rows.length} events from agent ${agentId}`, error);
    }
    if (this.#deferred !== undefined) this.#groupFirst ??= outcome.first;
    if (outcome.lines !== undefined && outcome.lines.length > 0) {
      // Inside a group of batches (grouped()), the lines are handed on once the group commits.
      if (this.#deferred !== undefined) this.#deferred.push([outcome.lines, outcome.lastRowid]);
      else this.#onStored?.(outcome.lines, outcome.lastRowid);
    }
    return { stored: outcome.stored, duplicates: rows.length - outcome.stored, storedIndexes: outcome.indexes, firstRowid: outcome.firstRowid, lastRowid: outcome.lastRowid };
  }

  /**
   * Runs `work` (which stores batches) in one IMMEDIATE transaction, a commit for all of them
   * (group commit). What they stored reaches `onStored` (the raw archive) only once that commit
   * has succeeded: a group rolled back is sent again by its agents, and stored once.
   */
  grouped<T>(work: () => T): T {
    if (this.#deferred !== undefined) return work();
    this.#group ??= this.#db.transaction((run: () => unknown) => run());
    this.#deferred = [];
    this.#groupFirst = undefined;
    let stored: [string[], number][];
    let result: T | undefined;
    try {
      this.#group.immediate(() => {
        result = work();
      });
      stored = this.#deferred;
    } catch (error) {
      // SQLite reports a failed automatic checkpoint as an error of the COMMIT that ran it,
      // although the transaction is committed: look, so as to acknowledge (and archive) what is
      // stored. (When `work` itself failed, the group was rolled back and its first row is gone.)
      if (!this.#isCommitted(this.#groupFirst)) throw error;
      stored = this.#deferred;
    } finally {
      this.#deferred = undefined;
      this.#groupFirst = undefined;
    }
    for (const [lines, lastRowid] of stored) this.#onStored?.(lines, lastRowid);
    return result as T;
  }

  #isCommitted(row: Row | undefined): boolean {
    if (row === undefined || this.#db.inTransaction) return false;
    try {
      return (this.#committed.get(row[0], row[2], row[3]) as { n: number }).n === 1;
    } catch {
      return false;
    }
  }

  /** One page of events matching the query (see EventQuery); throws HADES_ERR_STORE_QUERY on bad input. */
  /** The highest rowid (`id`) stored; 0 when the store is empty. */
  lastRowid(): number {
    return (this.#db.prepare('SELECT coalesce(max(id), 0) AS id FROM events').get() as { id: number }).id;
  }

  /** Up to `limit` events stored after rowid `after`, in rowid order: their rowid, agent and stored JSON. */
  eventsAfter(after: number, limit: number): { id: number; agent_id: string; event: string }[] {
    this.#after ??= this.#db.prepare<[number, number], { id: number; agent_id: string; event: string }>('SELECT id, agent_id, event FROM events WHERE id > ? ORDER BY id LIMIT ?');
    return this.#after.all(after, limit);
  }

  /** The stored events with these `event.id`s (unknown ids are skipped), in the order given. */
  byIds(ids: readonly string[], agentId = ''): Record<string, unknown>[] {
    if (ids.length === 0) return [];
    // Ids are unique per agent: where two agents' events share one, `agentId`'s comes first.
    // The agent's own event by the unique index; another agent's of that id only when it has none.
    this.#byOwnId ??= this.#db.prepare<[string, string], { event: string }>('SELECT event FROM events WHERE event_id = ? AND agent_id = ?');
    this.#byId ??= this.#db.prepare<[string, string], { event: string }>('SELECT event FROM events WHERE event_id = ? ORDER BY agent_id = ? DESC LIMIT 1');
    const events: Record<string, unknown>[] = [];
    for (const id of ids) {
      const row = this.#byOwnId.get(id, agentId) ?? this.#byId.get(id, agentId);
      if (row !== undefined) events.push(JSON.parse(row.event) as Record<string, unknown>);
    }
    return events;
  }

  search(query: EventQuery): SearchResult {
    const built = buildQuery(query, this.#scanBudget);
    let rows: { id: number; time: number; bytes: number }[];
    // With terms the walked index does not serve: the last row to examine, when the walk has rows after it.
    let stop: { id: number; time: number } | undefined;
    try {
      // Of several indexes the search could walk, the one with the fewest rows in its window.
      // Each is counted only up to the fewest so far: the cost of the choice is about one walk's.
      let plan: SearchPlan = built;
      let fewest = Math.min(PROBE_ROWS, (built.scan?.rows ?? 0) + 1);
      for (const [i, choice] of (built.choices ?? []).entries()) {
        const probe = choice.probe(fewest);
        const n = (this.#statement(probe.sql).get(...probe.params) as unknown as { n: number }).n;
        if (n < fewest || i === 0) {
          fewest = n;
          plan = i === 0 ? built : choice.plan();
        }
        if (n === 0) break;
      }
      if (plan.scan !== undefined) {
        const edge = this.#statement(plan.scan.sql).all(...plan.scan.params);
        if (edge.length === 2) stop = edge[0];
      }
      rows = this.#statement(plan.sql).all(...plan.paramsUntil(stop));
    } catch (error) {
      if (isHadesError(error)) throw error;
      throw searchError(error);
    }
    let more = rows.length > built.limit;
    if (more) rows.length = built.limit;
    // The page stops before the event that would take it past its bytes, with one at least.
    let bytes = 0;
    let cut = false;
    for (let i = 0; i < rows.length; i++) {
      bytes += (rows[i] as { bytes: number }).bytes;
      if (i > 0 && bytes > this.#pageBytes) {
        rows.length = i;
        cut = true;
        more = true;
        break;
      }
    }
    let events: Record<string, unknown>[];
    try {
      this.#byRowid ??= this.#db.prepare<[number], { event: string }>('SELECT event FROM events WHERE id = ?');
      const byRowid = this.#byRowid;
      // The search and these reads run on one thread without a yield between: no row goes in between.
      events = rows.map((r) => JSON.parse((byRowid.get(r.id) as { event: string }).event) as Record<string, unknown>);
    } catch (error) {
      throw searchError(error);
    }
    const last = rows[rows.length - 1];
    // Fewer matches than asked and the walk stopped at its budget: the next page goes on from
    // the last row it examined.
    if (!more && stop !== undefined) return { events, next: encodeCursor({ time: stop.time, id: stop.id, order: built.order, window: built.window }), partial: true };
    if (!more || last === undefined) return { events };
    return { events, next: encodeCursor({ time: last.time, id: last.id, order: built.order, window: built.window }), ...(cut ? { partial: true as const } : {}) };
  }

  /** Number of events stored (a scan of the smallest index: tens of ms per million events). */
  count(): number {
    return (this.#db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n;
  }

  stats(): StoreStats {
    const range = this.#db.prepare('SELECT min(time) AS oldest, max(time) AS newest FROM events').get() as { oldest: number | null; newest: number | null };
    return {
      events: this.count(),
      bytes: this.#bytes(),
      ...(range.oldest === null ? {} : { oldest: range.oldest }),
      ...(range.newest === null ? {} : { newest: range.newest }),
    };
  }

  /**
   * Deletes events stored more than `maxAgeDays` ago, then the first ones stored while the
   * database is over `maxBytes` (by the server's clock and order, never the agents'); each chunk of `chunkRows` rows is its own transaction. Runs to completion; use
   * `enforceRetentionAsync` to let ingestion run between chunks.
   */
  enforceRetention(options: RetentionOptions): RetentionResult {
    const steps = this.#retention(options);
    for (;;) {
      const step = steps.next();
      if (step.done === true) return step.value;
    }
  }

  /** The same as enforceRetention, yielding to the event loop between chunks. */
  async enforceRetentionAsync(options: RetentionOptions): Promise<RetentionResult> {
    const steps = this.#retention(options);
    for (;;) {
      const step = steps.next();
      if (step.done === true) return step.value;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  *#retention(options: RetentionOptions): Generator<void, RetentionResult, void> {
    const chunk = options.chunkRows ?? 10_000;
    if (!Number.isInteger(chunk) || chunk < 1) throw new HadesError('HADES_ERR_INTERNAL', `retention chunkRows must be a positive integer, not ${chunk}`);
    // By the order of storage (rowid), never by the agents' clocks: a host whose clock is set
    // back (by an intruder, or by mistake) must not have its fresh events deleted as old ones.
    const storedAfter = this.#db.prepare<[number, number], { id: number; ingested: number }>('SELECT id, ingested FROM events WHERE id > ? ORDER BY id LIMIT ?');
    // The newest row is never deleted: rowids are the order of storage (and the detection mark's
    // measure) only while the largest one stays, since SQLite gives a new row the largest plus one.
    const deleteThrough = this.#db.prepare<[number]>('DELETE FROM events WHERE id <= ? AND id < (SELECT max(id) FROM events)');
    const deleteFirst = this.#db.prepare<[number]>('DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY id LIMIT ?) AND id < (SELECT max(id) FROM events)');
    const write = (work: () => number): number => {
      try {
        return work();
      } catch (error) {
        throw writeError('retention could not delete events', error);
      }
    };
    let deletedByAge = 0;
    let deletedBySize = 0;
    if (options.maxAgeDays !== undefined) {
      if (!(options.maxAgeDays > 0)) throw new HadesError('HADES_ERR_INTERNAL', `retention maxAgeDays must be positive, not ${options.maxAgeDays}`);
      const now = options.now ?? this.#now();
      const cutoff = now - options.maxAgeDays * DAY_MS;
      // Walks the rows in the order they were stored, up to the first one stored since the
      // cutoff. A row stamped after `now` was stored while the server's clock was ahead: its
      // stamp says nothing, but it was stored before every later row, so it goes once a row
      // stored after it is old. (Stopping at it would keep everything stored after it until
      // that date; deleting it at once could delete an event only minutes old.)
      let scanned = 0;
      for (;;) {
        const rows = storedAfter.all(scanned, chunk);
        let lastOld = -1;
        let young = false;
        for (let i = 0; i < rows.length; i++) {
          const ingested = rows[i]!.ingested;
          if (ingested < cutoff) lastOld = i;
          else if (ingested <= now) {
            young = true;
            break;
          }
        }
        if (lastOld >= 0) deletedByAge += write(() => deleteThrough.run(rows[lastOld]!.id).changes);
        if (young || rows.length < chunk) break;
        scanned = rows[rows.length - 1]!.id;
        yield;
      }
    }
    if (options.maxBytes !== undefined) {
      const maxBytes = options.maxBytes;
      if (!(maxBytes > 0)) throw new HadesError('HADES_ERR_INTERNAL', `retention maxBytes must be positive, not ${maxBytes}`);
      // The WAL counts only when it can be folded back into the file. One that a reader keeps
      // (a backup, an analyst's sqlite3, Litestream) stays whatever is deleted, and the deletes
      // only add to it: counted, it would have every event but the newest deleted. Then only the
      // live pages, which deleting does free, are held to the limit.
      // Only the events' pages count: deleting events does not change what the other tables hold.
      const others = this.#otherBytes();
      const measure = (): number => (this.#checkpoint() ? this.#bytes() : this.liveBytes()) - others;
      let used = measure();
      if (used > maxBytes) {
        const perRow = Math.max(64, (this.liveBytes() - others) / Math.max(1, this.count()));
        // Rows per delete; smaller once the disk has had no room for one (see below).
        let most = chunk;
        while (used > maxBytes) {
          // As many rows as should free the excess (pages free unevenly), within the chunk size.
          const rows = Math.min(most, Math.max(Math.min(100, most), Math.ceil(((used - maxBytes) / perRow) * 1.1)));
          let deleted: number;
          try {
            deleted = deleteFirst.run(rows).changes;
          } catch (error) {
            // A delete writes the pages it changes to the WAL first: on a disk without room for
            // them, deletes of fewer rows, each folded back into the file (its WAL emptied)
            // before the next, free pages a few at a time until there is room again.
            if ((error as { code?: unknown }).code !== 'SQLITE_FULL' || rows <= 1) throw writeError('retention could not delete events', error);
            most = Math.max(1, Math.floor(rows / 4));
            this.#checkpoint();
            continue;
          }
          if (most < chunk) {
            // Room made: the next delete may be larger again.
            this.#checkpoint();
            most = Math.min(chunk, most * 2);
          }
          deletedBySize += deleted;
          if (deleted === 0) break;
          // Fold the WAL the deletes wrote back into the file so that it counts once.
          used = measure();
          if (used > maxBytes) yield;
        }
      }
    }
    if (deletedByAge + deletedBySize > 0) {
      this.#checkpoint();
      // Refreshes the planner's statistics when they have drifted (bounded work since 3.46).
      this.#db.pragma('optimize');
    }
    return { deletedByAge, deletedBySize };
  }

  /**
   * Bytes of the pages the events hold (their table and its indexes): the live pages but for those
   * of every other table of the database (fleet, tasks, alerts, audit), which SQLite's dbstat
   * reads, btree by btree, without the events'. What the size limit holds down: counting the
   * whole file let anyone who may add rows elsewhere (an analyst's tasks of 64 KiB of SQL, an
   * agent's alert storm) have the fleet's events deleted to make room for them.
   */
  eventBytes(): number {
    return Math.max(0, this.liveBytes() - this.#otherBytes());
  }

  /** Bytes of the pages of every btree that is not the events' (read with dbstat, a few ms for tables of megabytes). */
  #otherBytes(): number {
    this.#others ??= this.#db.prepare<[], { name: string }>("SELECT name FROM sqlite_schema WHERE tbl_name <> 'events' AND rootpage > 0 UNION ALL SELECT 'sqlite_schema'");
    this.#pagesOf ??= this.#db.prepare<[string], { bytes: number | null }>('SELECT sum(pgsize) AS bytes FROM dbstat WHERE name = ? AND aggregate = 1');
    let bytes = 0;
    for (const { name } of this.#others.all()) bytes += this.#pagesOf.get(name)?.bytes ?? 0;
    return bytes;
  }

  /** Bytes of the free pages inside the file (the free list), which new events reuse before the file grows. */
  freeBytes(): number {
    const pageSize = this.#db.pragma('page_size', { simple: true }) as number;
    return (this.#db.pragma('freelist_count', { simple: true }) as number) * pageSize;
  }

  /**
   * Bytes of the disk the database takes without a row more: the pages its WAL holds past the end
   * of the file, which a checkpoint writes there, and the WAL's growth up to its size limit
   * (journal_size_limit, db.ts). Not free for new rows: a disk that lacked them would leave the
   * WAL unable to be folded back, and nothing, not even a delete, written from then on.
   */
  owedBytes(): number {
    if (this.#walFile === undefined) return 0;
    const size = (file: string): number => {
      try {
        return statSync(file).size;
      } catch {
        return 0; // no such file (yet)
      }
    };
    const pages = (this.#db.pragma('page_count', { simple: true }) as number) * (this.#db.pragma('page_size', { simple: true }) as number);
    const walLimit = this.#db.pragma('journal_size_limit', { simple: true }) as number;
    const wal = size(this.#walFile);
    return Math.max(0, pages - size(this.#db.name)) + Math.max(0, walLimit - wal);
  }

  /**
   * Lets the database take at most `bytes` more of the disk in new pages (PRAGMA max_page_count;
   * Infinity: no limit). Past it a write fails as on a full disk (SQLITE_FULL, the batches get a
   * temporary Nack) while the disk still has the room a checkpoint and the deletes of retention
   * need; the free pages deletes leave are reused within it.
   */
  limitGrowth(bytes: number): void {
    const pages = this.#db.pragma('page_count', { simple: true }) as number;
    const pageSize = this.#db.pragma('page_size', { simple: true }) as number;
    this.#db.pragma(`max_page_count = ${Number.isFinite(bytes) ? pages + Math.max(0, Math.floor(bytes / pageSize)) : MAX_PAGES}`);
  }

  /** Bytes of pages in use (the free list is reused by new events, not returned to the OS). */
  liveBytes(): number {
    return liveBytes(this.#db);
  }

  #bytes(): number {
    let wal = 0;
    if (this.#walFile !== undefined) {
      try {
        wal = statSync(this.#walFile).size;
      } catch {
        wal = 0; // no WAL file (yet)
      }
    }
    return this.liveBytes() + wal;
  }

  /**
   * A TRUNCATE checkpoint that never waits: with a reader active, the WAL simply stays. Whether
   * the WAL was folded back into the file and emptied (true without a WAL file).
   */
  #checkpoint(): boolean {
    if (this.#walFile === undefined) return true;
    const timeout = this.#db.pragma('busy_timeout', { simple: true }) as number;
    try {
      this.#db.pragma('busy_timeout = 0');
      const [result] = this.#db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[];
      return result?.busy === 0;
    } catch {
      // Busy or locked: the WAL is counted as it is.
      return false;
    } finally {
      this.#db.pragma(`busy_timeout = ${Math.trunc(timeout)}`);
    }
  }

  #statement(sql: string): Statement<(string | number)[], { id: number; time: number; bytes: number }> {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      if (this.#statements.size >= MAX_CACHED_STATEMENTS) this.#statements.clear();
      statement = this.#db.prepare<(string | number)[], { id: number; time: number; bytes: number }>(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }
}
