/**
 * Fleet queries: one SQL statement run on a set of agents' inventory tables. A query is a row in
 * `fleet_queries` and one `query` task per agent (the registry's tasks: sent when the agent is
 * connected, sent again after a broken stream, expired at the deadline). Its results are read from
 * the tasks: per host, rows or an error, and the hosts that have not answered yet, so a caller
 * gets partial results at any time and the whole answer once every host has answered or the
 * deadline has passed.
 */
import { randomBytes } from 'node:crypto';
import { HadesError } from '../../common/errors.js';
import { migrate, type Db } from '../db.js';
import type { FleetRegistry, Task } from './registry.js';

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
];

/** A query's tasks, in the order they were made (the index tasks_fleet_query answers it). */
export const QUERY_TASKS_SQL = "SELECT id FROM tasks WHERE kind = 'query' AND json_extract(params, '$.query_id') = ? ORDER BY rowid";

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
  readonly hosts: readonly HostResult[];
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

  constructor(db: Db, registry: FleetRegistry, options: { now?: () => number } = {}) {
    this.#db = db;
    this.#registry = registry;
    this.#now = options.now ?? Date.now;
    migrate(db, 'queries', QUERIES_MIGRATIONS);
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

  /** The query with every host's answer so far; undefined when there is no such query. */
  get(id: string): FleetQueryResult | undefined {
    const row = this.#db.prepare<[string], QueryRow>('SELECT * FROM fleet_queries WHERE id = ?').get(id);
    if (row === undefined) return undefined;
    const taskIds = this.#db.prepare<[string], { id: string }>(QUERY_TASKS_SQL).all(id);
    const now = this.#now();
    const hosts = taskIds.map(({ id: taskId }) => {
      const task = this.#registry.getTask(taskId) as Task;
      // Past the deadline, a task not yet swept by housekeeping is expired all the same.
      const seen = (task.status === 'pending' || task.status === 'sent') && now >= row.deadline ? { ...task, status: 'expired' as const } : task;
      return hostResult(seen, this.#registry.get(task.agentId)?.hostname ?? task.agentId);
    });
    const count = (status: HostResult['status']) => hosts.filter((h) => h.status === status).length;
    const pending = count('pending');
    return {
      id: row.id,
      sql: row.sql,
      created_by: row.created_by,
      created_at: iso(row.created_at),
      deadline: iso(row.deadline),
      complete: pending === 0,
      summary: { agents: hosts.length, done: count('done'), failed: count('failed'), pending, expired: count('expired'), rows: hosts.reduce((n, h) => n + (h.rows?.length ?? 0), 0) },
      hosts,
    };
  }

  /** Queries, newest first, without their results. */
  list(limit: number): Omit<FleetQueryResult, 'hosts' | 'summary' | 'complete'>[] {
    return this.#db
      .prepare<[number], QueryRow>('SELECT * FROM fleet_queries ORDER BY created_at DESC, rowid DESC LIMIT ?')
      .all(Math.max(1, Math.min(1000, Math.trunc(limit))))
      .map((r) => ({ id: r.id, sql: r.sql, created_by: r.created_by, created_at: iso(r.created_at), deadline: iso(r.deadline) }));
  }
}
