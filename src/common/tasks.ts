/**
 * What the parameters of a server task must be: checked by the server when the task is made (a
 * task every agent would refuse is refused once) and by the agent that runs it (the server may be
 * older, or the task forged).
 */
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
