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

/** One SQL statement's text: not blank, at most MAX_TASK_SQL_CHARS characters. */
export const isTaskSql = (value: unknown): value is string => typeof value === 'string' && value.trim() !== '' && value.length <= MAX_TASK_SQL_CHARS;

/** An inventory table's name (docs/tables.md): `[a-z][a-z0-9_]{0,63}`, safe to quote into SQL. */
export const isTableName = (value: unknown): value is string => typeof value === 'string' && /^[a-z][a-z0-9_]{0,63}$/.test(value);
