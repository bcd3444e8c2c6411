/**
 * Fleet queries: one SQL statement run on a set of agents' inventory tables. A query is a row in
 * `fleet_queries` and one `query` task per agent (the registry's tasks: sent when the agent is
 * connected, sent again after a broken stream, expired at the deadline). Its results are read from
 * the tasks: per host, rows or an error, and the hosts that have not answered yet, so a caller
 * gets partial results at any time and the whole answer once every host has answered or the
 * deadline has passed. One host's answer may be megabytes (the agent's byte limit), so the hosts
 * are read a page at a time (keyset on the task's rowid): a large fleet's answer is never built
 * whole in the server's memory, and the summary comes from an index without reading the answers.
 */
import { randomBytes } from 'node:crypto';
import { HadesError } from '../../common/errors.js';
import { migrate, type Db } from '../db.js';
import type { FleetRegistry, Task } from './registry.js';

/**
 * Rows of a stored answer (NULL for one without rows). Guarded by json_valid: an index expression
 * that fails would fail the write of the answer itself.
 */
const ROWS_SQL = "CASE WHEN json_valid(result) THEN json_array_length(result, '$.rows') END";

export const QUERIES_MIGRATIONS: readonly string[] = [
  `CREATE TABLE fleet_queries (
     id TEXT PRIMARY KEY,
     sql TEXT NOT NULL,
     created_by TEXT,
     created_at INTEGER NOT NULL,
     deadline INTEGER NOT NULL,
     agents INTEGER NOT NULL
   ) STRICT;
   CREATE INDEX fleet_queries_created ON fleet_queries (created_at);`,
  // A query's tasks are found by the query id in their params; without an index every read of a
  // query (the CLI asks several times a second while it waits) scanned every task ever made.
  `CREATE INDEX tasks_fleet_query ON tasks (json_extract(params, '$.query_id')) WHERE kind = 'query';`,
  // The summary (hosts by status, rows answered) from this index alone: the rows of an answer are
  // counted once, when it is stored, instead of parsing every host's answer at each read.
  `CREATE INDEX tasks_fleet_query_summary ON tasks (json_extract(params, '$.query_id'), status, (${ROWS_SQL})) WHERE kind = 'query';`,
];

/** A query's tasks, in the order they were made (the index tasks_fleet_query answers it). */
export const QUERY_TASKS_SQL = "SELECT id FROM tasks WHERE kind = 'query' AND json_extract(params, '$.query_id') = ? ORDER BY rowid";

/** One page of a query's tasks after a rowid, with the size of each answer (read from the record header, not the answer). */
const QUERY_PAGE_SQL = "SELECT rowid AS seq, id, octet_length(result) AS bytes FROM tasks WHERE kind = 'query' AND json_extract(params, '$.query_id') = ? AND rowid > ? ORDER BY rowid LIMIT ?";

/** A query's hosts by status with the rows of their answers: answered by the index tasks_fleet_query_summary alone. */
export const QUERY_SUMMARY_SQL = `SELECT status, COUNT(*) AS hosts, SUM(${ROWS_SQL}) AS rows FROM tasks WHERE kind = 'query' AND json_extract(params, '$.query_id') = ? GROUP BY status`;

/** Hosts of a page when the request does not say. */
export const DEFAULT_HOSTS_PAGE = 100;
/** Hosts of a page at most. */
export const MAX_HOSTS_PAGE = 1000;
/**
 * Stored answers of one page at most, in bytes: a page stops before the host that would pass it
 * (with at least one host, which the agent's own limit bounds), however many hosts were asked for.
 */
export const PAGE_BYTES = 32 * 1024 * 1024;

/** Longest SQL text accepted. */
export const MAX_SQL_CHARS = 64 * 1024;

export interface HostResult {
  readonly agent_id: string;
  readonly hostname: string;
  /** pending (not answered yet), done, failed, or expired (no answer before the deadline). */
  readonly status: 'pending' | 'done' | 'failed' | 'expired';
  readonly rows?: readonly unknown[];
  readonly truncated?: boolean;
  readonly error?: { readonly code: string; readonly message: string };
}

export interface FleetQueryResult {
  readonly id: string;
  readonly sql: string;
  readonly created_by: string | null;
  readonly created_at: string;
  readonly deadline: string;
  /** Every host has answered or the deadline has passed. */
  readonly complete: boolean;
  readonly summary: { readonly agents: number; readonly done: number; readonly failed: number; readonly pending: number; readonly expired: number; readonly rows: number };
  /** This page's hosts, in the order the query's tasks were made. */
  readonly hosts: readonly HostResult[];
  /** The cursor of the next page; absent on the last. */
  readonly next?: string;
}

/** Which hosts: up to `limit` (0: the summary alone) after `cursor` (the `next` of the page before). */
export interface HostsPage {
  readonly limit?: number;
  readonly cursor?: string;
}

interface QueryRow {
  id: string;
  sql: string;
  created_by: string | null;
  created_at: number;
  deadline: number;
  agents: number;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** A page's cursor: the query and the rowid of the page's last task, so that it fits no other query. */
function encodeHostsCursor(queryId: string, seq: number): string {
  return Buffer.from(`q:${queryId}:${seq}`).toString('base64url');
}

function decodeHostsCursor(cursor: string, queryId: string): number {
  const match = /^q:([^:]{1,128}):(\d{1,15})$/.exec(/^[A-Za-z0-9_-]{1,256}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString() : '');
  if (!match) throw new HadesError('HADES_ERR_API_INVALID_REQUEST', 'the cursor is not one this server gave (pass the `next` of the previous page unchanged)');
  if (match[1] !== queryId) throw new HadesError('HADES_ERR_API_INVALID_REQUEST', `the cursor is of another query (${match[1]}), not ${queryId}`);
  return Number(match[2]);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A task's answer as one host's result. */
function hostResult(task: Task, hostname: string): HostResult {
  const base = { agent_id: task.agentId, hostname };
  const result = isRecord(task.result) ? task.result : {};
  switch (task.status) {
    case 'done':
      return { ...base, status: 'done', rows: Array.isArray(result['rows']) ? result['rows'] : [], ...(result['truncated'] === true ? { truncated: true } : {}) };
    case 'failed':
      return {
        ...base,
        status: 'failed',
        error: { code: typeof result['code'] === 'string' ? result['code'] : 'HADES_ERR_INTERNAL', message: typeof result['message'] === 'string' ? result['message'] : 'the agent reported a failure without a message' },
      };
    case 'expired':
      return { ...base, status: 'expired', error: { code: 'HADES_ERR_QUERY_NO_ANSWER', message: 'the agent did not answer before the deadline' } };
    default:
      return { ...base, status: 'pending' };
  }
}

export class FleetQueries {
  readonly #db: Db;
  readonly #registry: FleetRegistry;
  readonly #now: () => number;
  readonly #pageBytes: number;

  constructor(db: Db, registry: FleetRegistry, options: { now?: () => number; pageBytes?: number } = {}) {
    this.#db = db;
    this.#registry = registry;
    this.#now = options.now ?? Date.now;
    this.#pageBytes = options.pageBytes ?? PAGE_BYTES;
    migrate(db, 'queries', QUERIES_MIGRATIONS);
  }

  /** Deletes the fleet queries whose deadline passed before `before` (ms) and none of whose tasks is left; returns how many. */
  forgetEnded(before: number): number {
    return this.#db
      .prepare("DELETE FROM fleet_queries WHERE deadline < ? AND NOT EXISTS (SELECT 1 FROM tasks WHERE kind = 'query' AND json_extract(params, '$.query_id') = fleet_queries.id)")
      .run(before).changes;
  }

  /**
   * Creates a query and its tasks; `send` hands each task to its agent's stream when connected
   * (true when sent). Agents that are revoked are refused; unknown ones are an error before anything
   * is created.
   */
  /**
   * Makes the query and its tasks in one transaction, with `record(id)` (the audit entry), and
   * then sends the tasks: nothing reaches a host that was not recorded first.
   */
  create(request: { sql: string; agentIds: readonly string[]; timeoutMs: number; createdBy: string }, send: (task: Task) => boolean, record?: (id: string) => void): FleetQueryResult {
    const sql = request.sql.trim();
    if (sql.length === 0 || sql.length > MAX_SQL_CHARS) throw new HadesError('HADES_ERR_API_INVALID_REQUEST', `the SQL must be 1 to ${MAX_SQL_CHARS} characters`);
    const ids = [...new Set(request.agentIds)];
    if (ids.length === 0) throw new HadesError('HADES_ERR_API_INVALID_REQUEST', 'no agent matches: name agents, a group, or query the whole fleet');
    const unknown = ids.filter((id) => this.#registry.get(id) === undefined);
    if (unknown.length > 0) throw new HadesError('HADES_ERR_API_NOT_FOUND', `no agent ${unknown.slice(0, 5).join(', ')}${unknown.length > 5 ? ` and ${unknown.length - 5} more` : ''}`);
    const revoked = ids.filter((id) => this.#registry.get(id)?.revokedAt);
    if (revoked.length > 0) throw new HadesError('HADES_ERR_AGENT_REVOKED', `revoked agents take no query: ${revoked.slice(0, 5).join(', ')}`);
    const now = this.#now();
    const deadline = now + request.timeoutMs;
    const id = `fq_${randomBytes(8).toString('hex')}`;
    const tasks = this.#db.transaction(() => {
      this.#db.prepare('INSERT INTO fleet_queries (id, sql, created_by, created_at, deadline, agents) VALUES (?, ?, ?, ?, ?, ?)').run(id, sql, request.createdBy, now, deadline, ids.length);
      const made = ids.map((agentId) => this.#registry.createTask({ agentId, kind: 'query', params: { sql, query_id: id, timeout_ms: request.timeoutMs }, deadline, createdBy: request.createdBy }));
      record?.(id);
      return made;
    })();
    for (const task of tasks) if (send(task)) this.#registry.markSent(task.id);
    return this.get(id) as FleetQueryResult;
  }

  /**
   * The query with a page of its hosts' answers so far (the summary counts every host);
   * undefined when there is no such query. A bad limit or cursor is HADES_ERR_API_INVALID_REQUEST.
   */
  get(id: string, page: HostsPage = {}): FleetQueryResult | undefined {
    const limit = page.limit ?? DEFAULT_HOSTS_PAGE;
    if (!Number.isSafeInteger(limit) || limit < 0 || limit > MAX_HOSTS_PAGE) throw new HadesError('HADES_ERR_API_INVALID_REQUEST', `limit must be a whole number from 0 to ${MAX_HOSTS_PAGE}`);
    const after = page.cursor === undefined ? 0 : decodeHostsCursor(page.cursor, id);
    const row = this.#db.prepare<[string], QueryRow>('SELECT * FROM fleet_queries WHERE id = ?').get(id);
    if (row === undefined) return undefined;
    const now = this.#now();
    const expired = now >= row.deadline;
    const hosts: HostResult[] = [];
    let next: string | undefined;
    if (limit > 0) {
      const candidates = this.#db.prepare<[string, number, number], { seq: number; id: string; bytes: number | null }>(QUERY_PAGE_SQL).all(id, after, limit + 1);
      let bytes = 0;
      for (const [index, candidate] of candidates.entries()) {
        bytes += candidate.bytes ?? 0;
        if (index === limit || (hosts.length > 0 && bytes > this.#pageBytes)) {
          next = encodeHostsCursor(id, candidates[index - 1]!.seq);
          break;
        }
        const task = this.#registry.getTask(candidate.id) as Task;
        // Past the deadline, a task not yet swept by housekeeping is expired all the same.
        const seen = (task.status === 'pending' || task.status === 'sent') && expired ? { ...task, status: 'expired' as const } : task;
        hosts.push(hostResult(seen, this.#registry.get(task.agentId)?.hostname ?? task.agentId));
      }
    }
    const summary = this.#summary(id, expired);
    return {
      id: row.id,
      sql: row.sql,
      created_by: row.created_by,
      created_at: iso(row.created_at),
      deadline: iso(row.deadline),
      complete: summary.pending === 0,
      summary,
      hosts,
      ...(next === undefined ? {} : { next }),
    };
  }

  /** Hosts by status and rows answered, from the index tasks_fleet_query_summary alone. */
  #summary(id: string, expired: boolean): FleetQueryResult['summary'] {
    const counts = { agents: 0, done: 0, failed: 0, pending: 0, expired: 0, rows: 0 };
    const groups = this.#db
      .prepare<[string], { status: string; hosts: number; rows: number | null }>(QUERY_SUMMARY_SQL)
      .all(id);
    for (const group of groups) {
      counts.agents += group.hosts;
      if (group.status === 'done') {
        counts.done += group.hosts;
        counts.rows += group.rows ?? 0;
      } else if (group.status === 'failed') counts.failed += group.hosts;
      else if (group.status === 'expired' || expired) counts.expired += group.hosts;
      else counts.pending += group.hosts;
    }
    return counts;
  }

  /** Queries, newest first, without their results. */
  list(limit: number): Omit<FleetQueryResult, 'hosts' | 'summary' | 'complete'>[] {
    return this.#db
      .prepare<[number], QueryRow>('SELECT * FROM fleet_queries ORDER BY created_at DESC, rowid DESC LIMIT ?')
      .all(Math.max(1, Math.min(1000, Math.trunc(limit))))
      .map((r) => ({ id: r.id, sql: r.sql, created_by: r.created_by, created_at: iso(r.created_at), deadline: iso(r.deadline) }));
  }
}
