/** crontab: scheduled commands of the system crontab, /etc/cron.d, users' crontabs and the cron.* folders. */
import path from 'node:path';
import type { CollectContext, Row, TableSpec } from '../table.js';
import { lines, listFolder, readText, statPath, Warn } from './software-files.js';

const SPECIALS = new Set(['@reboot', '@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly']);
/** Folders run-parts runs on a schedule (the schedule is approximated by its @ name). */
const PERIODIC = [
  { folder: '/etc/cron.hourly', special: '@hourly' },
  { folder: '/etc/cron.daily', special: '@daily' },
  { folder: '/etc/cron.weekly', special: '@weekly' },
  { folder: '/etc/cron.monthly', special: '@monthly' },
];
/** Users' crontabs: Debian, cronie (RHEL: files directly in the folder), SUSE. */
const USER_SPOOLS = ['/var/spool/cron/crontabs', '/var/spool/cron', '/var/spool/cron/tabs'];

/** NAME=value or "NAME" = value: an environment line, not a job. */
const ENV_LINE = /^(?:[A-Za-z_][A-Za-z0-9_]*|"[^"]*"|'[^']*')\s*=/;
/** A time field: numbers, names (jan, mon), *, ranges, steps, lists (and cronie's ~ random). */
const TIME_FIELD = /^[0-9A-Za-z*/,~-]+$/;

export interface CrontabSource {
  readonly path: string;
  /** System crontabs (/etc/crontab, /etc/cron.d) have a user field; users' do not. */
  readonly user?: string;
}

/** Parses one crontab. Comments, blank and environment lines are skipped silently; broken lines with a warning. */
export function parseCrontab(ctx: CollectContext, text: string, source: CrontabSource): Row[] {
  const rows: Row[] = [];
  const system = source.user === undefined;
  for (const [index, raw] of lines(text).entries()) {
    const line = raw.trim();
    const lineNumber = index + 1;
    if (line === '' || line.startsWith('#') || ENV_LINE.test(line)) continue;
    const broken = (why: string): void => ctx.warn(Warn.malformed, `line ${lineNumber}: ${why}; skipped`, source.path);
    const fields = line.split(/\s+/);
    let schedule: (string | null)[];
    let special: string | null = null;
    let rest: string[];
    if (line.startsWith('@')) {
      special = (fields[0] ?? '').toLowerCase();
      if (!SPECIALS.has(special)) {
        broken(`unknown schedule ${fields[0] ?? ''}`);
        continue;
      }
      schedule = [null, null, null, null, null];
      rest = fields.slice(1);
    } else {
      schedule = fields.slice(0, 5);
      if (fields.length < 5 || !schedule.every((f) => f !== null && TIME_FIELD.test(f))) {
        broken('not a schedule of five time fields');
        continue;
      }
      rest = fields.slice(5);
    }
    const user = system ? rest.shift() : source.user;
    if (user === undefined || rest.length === 0) {
      broken(system ? 'too few fields (a system crontab line needs a user and a command)' : 'too few fields (no command)');
      continue;
    }
    rows.push({
      minute: schedule[0],
      hour: schedule[1],
      day_of_month: schedule[2],
      month: schedule[3],
      day_of_week: schedule[4],
      special,
      user,
      // The command keeps its own spacing: it is what follows the fields in the original line.
      command: commandOf(line, fields.length - rest.length),
      path: source.path,
      line: lineNumber,
    });
  }
  return rows;
}

/** The text of a line after its first `skip` whitespace-separated fields, spacing kept. */
function commandOf(line: string, skip: number): string {
  const match = new RegExp(`^(?:\\S+\\s+){${skip}}`).exec(line);
  return match ? line.slice(match[0].length) : '';
}

/** Names every cron implementation ignores in its folders: hidden files and editor backups. */
const ignored = (name: string): boolean => name.startsWith('.') || name.endsWith('~');

async function readCrontabFile(ctx: CollectContext, hostFile: string, user: string | undefined, rows: Row[]): Promise<void> {
  const text = await readText(ctx, hostFile);
  if (text !== undefined) rows.push(...parseCrontab(ctx, text, user === undefined ? { path: hostFile } : { path: hostFile, user }));
}

/** The regular files of a folder (links followed), names cron ignores left out. */
async function filesIn(ctx: CollectContext, folder: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of (await listFolder(ctx, folder)) ?? []) {
    if (ignored(entry.name) || entry.isDirectory()) continue;
    const file = path.posix.join(folder, entry.name);
    if (entry.isFile() || (entry.isSymbolicLink() && (await statPath(ctx, file, 'cron entry skipped'))?.isFile())) out.push(file);
  }
  return out;
}

export async function readCrontabs(ctx: CollectContext): Promise<Row[]> {
  const rows: Row[] = [];
  await readCrontabFile(ctx, '/etc/crontab', undefined, rows);
  for (const file of await filesIn(ctx, '/etc/cron.d')) await readCrontabFile(ctx, file, undefined, rows);
  for (const spool of USER_SPOOLS) {
    for (const file of await filesIn(ctx, spool)) await readCrontabFile(ctx, file, path.posix.basename(file), rows);
  }
  for (const { folder, special } of PERIODIC) {
    for (const file of await filesIn(ctx, folder)) {
      rows.push({ minute: null, hour: null, day_of_month: null, month: null, day_of_week: null, special, user: 'root', command: file, path: file, line: null });
    }
  }
  return rows;
}

export const crontab: TableSpec = {
  name: 'crontab',
  description:
    'Scheduled commands: /etc/crontab, /etc/cron.d/*, users\' crontabs (/var/spool/cron/crontabs, /var/spool/cron, /var/spool/cron/tabs) and the scripts in /etc/cron.{hourly,daily,weekly,monthly}. Environment lines are not rows; broken lines are skipped with a warning.',
  columns: [
    { name: 'minute', type: 'TEXT', description: 'Minute field; NULL for an @ schedule.', nullable: true },
    { name: 'hour', type: 'TEXT', description: 'Hour field; NULL for an @ schedule.', nullable: true },
    { name: 'day_of_month', type: 'TEXT', description: 'Day of month field; NULL for an @ schedule.', nullable: true },
    { name: 'month', type: 'TEXT', description: 'Month field; NULL for an @ schedule.', nullable: true },
    { name: 'day_of_week', type: 'TEXT', description: 'Day of week field; NULL for an @ schedule.', nullable: true },
    { name: 'special', type: 'TEXT', description: '@reboot, @daily and the like (the cron.* folders as @hourly, @daily, @weekly, @monthly); NULL for a five-field schedule.', nullable: true },
    { name: 'user', type: 'TEXT', description: 'Who runs it: the user field of system crontabs, the file name of a user\'s crontab, root for the cron.* folders.' },
    { name: 'command', type: 'TEXT', description: 'The command as written (% and the rest of the line are its standard input); for the cron.* folders the script.' },
    { name: 'path', type: 'TEXT', description: 'The crontab file, or the script in a cron.* folder.' },
    { name: 'line', type: 'INTEGER', description: 'Line number in the crontab; NULL for a cron.* folder script.', nullable: true },
  ],
  examples: [
    { description: 'Jobs that run at boot.', sql: "SELECT user, command, path FROM crontab WHERE special = '@reboot'" },
    { description: 'Jobs that download something.', sql: "SELECT user, command, path, line FROM crontab WHERE command LIKE '%curl%' OR command LIKE '%wget%'" },
  ],
  generate: (ctx) => readCrontabs(ctx),
};
