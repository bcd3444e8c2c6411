/**
 * What the parameters of a server task must be: checked by the server when the task is made (a
 * task every agent would refuse is refused once) and by the agent that runs it (the server may be
 * older, or the task forged).
 */
import { HadesError } from './errors.js';

/** The kinds of task the server sends and agents run (docs/plugins.md). */
export const TASK_KINDS = ['query', 'inventory', 'restart_plugin', 'log_level'] as const;
export type TaskKind = (typeof TASK_KINDS)[number];

/**
 * The parameters each kind takes, and no others: the server refuses any other key (an agent
 * ignores them), since a key no agent reads would still be stored and audited with the task.
 */
export const TASK_PARAMS: Readonly<Record<TaskKind, readonly string[]>> = {
  query: ['sql', 'timeout_s', 'timeout_ms', 'max_rows', 'max_bytes'],
  inventory: ['table', 'timeout_s', 'timeout_ms', 'max_rows', 'max_bytes'],
  restart_plugin: ['name'],
  log_level: ['level', 'duration_s'],
};

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type TaskLogLevel = (typeof LOG_LEVELS)[number];

/** The longest SQL a query task may carry. */
export const MAX_TASK_SQL_CHARS = 65_536;

export const isLogLevel = (value: unknown): value is TaskLogLevel => (LOG_LEVELS as readonly unknown[]).includes(value);

/** The longest a `log_level` task's level may hold before the configuration's comes back (a day). */
export const MAX_LOG_LEVEL_SECONDS = 86_400;

/**
 * What is wrong with a `log_level` task's parameters, or undefined: `level` (required) and
 * `duration_s` (optional: seconds until the configuration's level comes back, 1 to a day).
 */
export function logLevelProblem(params: Readonly<Record<string, unknown>>): string | undefined {
  if (!isLogLevel(params['level'])) return `params.level must be debug, info, warn or error (got ${JSON.stringify(params['level'] ?? null)})`;
  const duration = params['duration_s'];
  if (duration !== undefined && !(Number.isInteger(duration) && (duration as number) >= 1 && (duration as number) <= MAX_LOG_LEVEL_SECONDS)) {
    return `params.duration_s must be a whole number of seconds from 1 to ${MAX_LOG_LEVEL_SECONDS} (got ${JSON.stringify(duration)})`;
  }
  return undefined;
}

/** One SQL statement's text: not blank, at most MAX_TASK_SQL_CHARS characters. */
export const isTaskSql = (value: unknown): value is string => typeof value === 'string' && value.trim() !== '' && value.length <= MAX_TASK_SQL_CHARS;

/** An inventory table's name (docs/tables.md): `[a-z][a-z0-9_]{0,63}`, safe to quote into SQL. */
export const isTableName = (value: unknown): value is string => typeof value === 'string' && /^[a-z][a-z0-9_]{0,63}$/.test(value);

/** Limits of the query and inventory tasks (docs/plugins.md). */
export const TASK_LIMITS = {
  timeoutS: { default: 60, max: 600 },
  maxRows: { default: 10_000, max: 100_000 },
  /** The gateway takes messages of at most 8 MiB: results stay well under. */
  maxBytes: { default: 4 * 1024 * 1024, max: 6 * 1024 * 1024, min: 1024 },
} as const;

export interface QueryTask {
  readonly sql: string;
  readonly timeoutMs: number;
  readonly maxRows: number;
  readonly maxBytes: number;
}

function bounded(params: Record<string, unknown>, key: string, limit: { default: number; max: number; min?: number }): number {
  const value = params[key];
  if (value === undefined || value === null) return limit.default;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < (limit.min ?? 1) || value > limit.max) {
    throw new HadesError('HADES_ERR_QUERY_PARAMS', `params.${key} must be an integer from ${limit.min ?? 1} to ${limit.max} (got ${JSON.stringify(value)})`);
  }
  return value;
}

/** Time kept back from a server deadline (`timeout_ms`) for the answer to travel. */
const deadlineMargin = (ms: number) => Math.max(2000, Math.round(ms / 10));

/**
 * The parameters of a `query` task ({sql, timeout_s?, max_rows?, max_bytes?}) or an `inventory`
 * task ({table, ...the same limits}), checked; throws HADES_ERR_QUERY_PARAMS. Instead of
 * timeout_s, the server may send its own deadline as `timeout_ms` (fleet queries do): the query
 * then gets that less a margin, between 1 s and the 600 s maximum. Other keys are ignored.
 */
export function parseQueryTask(kind: string, raw: unknown): QueryTask {
  const params = raw && typeof raw === 'object' && !Array.isArray(raw) ? (raw as Record<string, unknown>) : {};
  let sql: string;
  if (kind === 'inventory') {
    const table = params['table'];
    if (!isTableName(table)) throw new HadesError('HADES_ERR_QUERY_PARAMS', 'params.table must name an inventory table (docs/tables.md)');
    sql = `SELECT * FROM "${table}"`;
  } else {
    const text = params['sql'];
    if (!isTaskSql(text)) throw new HadesError('HADES_ERR_QUERY_PARAMS', `params.sql must be one SQL statement of at most ${MAX_TASK_SQL_CHARS} characters`);
    sql = text;
  }
  let timeoutMs = bounded(params, 'timeout_s', TASK_LIMITS.timeoutS) * 1000;
  const deadline = params['timeout_ms'];
  if (params['timeout_s'] === undefined && deadline !== undefined && deadline !== null) {
    if (typeof deadline !== 'number' || !Number.isFinite(deadline) || deadline <= 0) throw new HadesError('HADES_ERR_QUERY_PARAMS', `params.timeout_ms must be a positive number (got ${JSON.stringify(deadline)})`);
    timeoutMs = Math.round(Math.min(TASK_LIMITS.timeoutS.max * 1000, Math.max(1000, deadline - deadlineMargin(deadline))));
  }
  return {
    sql,
    timeoutMs,
    maxRows: bounded(params, 'max_rows', TASK_LIMITS.maxRows),
    maxBytes: bounded(params, 'max_bytes', TASK_LIMITS.maxBytes),
  };
}
