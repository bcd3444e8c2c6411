/** crontab: scheduled commands of the system crontab, /etc/cron.d, users' crontabs and the cron.* folders, each with whether cron runs it. */
import path from 'node:path';
import type { CollectContext, Row, TableSpec } from '../table.js';
import type { Stats } from 'node:fs';
import { lstat, stat } from 'node:fs/promises';
import { lines, listFolder, onDisk, readAccounts, readText, reportFsError, Warn } from './software-files.js';

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

/**
 * Whether cron runs what a file holds. `active` is 1 (it runs), 0 (it does not: `reason` says why)
 * or null (not judged: the host is not Debian-family, whose cron and run-parts rules are the ones
 * known here, and no rule common to every cron applies).
 */
export interface CronVerdict {
  readonly active: 0 | 1 | null;
  readonly reason: string | null;
}

/** Where a file is, which decides the rules it is judged by. */
export type CronPlace = 'system' | 'cron.d' | 'spool' | 'periodic';

/** Names Debian's cron accepts in /etc/cron.d and run-parts in the cron.* folders (without -l / --lsbsysinit). */
const DEBIAN_NAME = /^[A-Za-z0-9_-]+$/;

/**
 * Names Debian's cron accepts in /etc/cron.d when started with -l (LSB names), as its name check
 * has them (Debian 12's cron 3.0pl1-162): a hierarchical name (`vendor.tool-job`, `_x-y`), unless
 * it ends in dpkg-old or dpkg-dist; else a name of lower-case letters, digits and - that does not
 * start with -. Unlike the rule without -l: no upper-case letter, and _ only in a hierarchical name
 * (`Backup` and `my_job` run only without -l; `vendor.tool-job` only with it). The cron.* folders
 * keep their rule (run-parts, not cron, reads them).
 */
const LSB_HIERARCHICAL = /^_?(?:[a-z0-9_.]+-)+[a-z0-9]+$/;
const LSB_DPKG_LEFTOVER = /^[a-z0-9-].*dpkg-(?:old|dist)$/;
const LSB_TRADITIONAL = /^[a-z0-9][a-z0-9-]*$/;

/** Which names Debian's cron runs in /etc/cron.d: `classic` by default, `lsb` when started with -l. */
export type CronNames = 'classic' | 'lsb';

/** Why cron -l skips a name in /etc/cron.d; undefined when it takes it. */
function lsbNameProblem(name: string): string | undefined {
  if (LSB_HIERARCHICAL.test(name)) return LSB_DPKG_LEFTOVER.test(name) ? 'name ends in dpkg-old or dpkg-dist (a package manager leftover)' : undefined;
  if (LSB_TRADITIONAL.test(name)) return undefined;
  return 'name is in none of the LSB namespaces (lower-case letters, digits and -; or a hierarchical name with a -, such as vendor.tool-job)';
}

/** Where the -l of a `classic`/`lsb` verdict comes from, said in the reason. */
export const CRON_DEFAULTS = '/etc/default/cron';

/** The shell-style words of a value as systemd's EnvironmentFile and sh both read a simple one: quotes around it removed. */
function unquote(value: string): string {
  const v = value.trim();
  const quote = v[0];
  if ((quote === '"' || quote === "'") && v.length >= 2 && v.endsWith(quote)) return v.slice(1, -1);
  return v;
}

/**
 * Whether Debian's cron runs with -l, from /etc/default/cron: its systemd unit starts
 * `cron -f $EXTRA_OPTS` with that file as environment (the init script sources it). The last
 * uncommented EXTRA_OPTS counts; the options are read as cron's getopt does (`flL:n`: -L takes a
 * value, so `-L l` and `-Ll` are not -l, `-fl` is; `--` ends them). No file, or no EXTRA_OPTS
 * (Debian ships it commented out), is `classic`.
 */
export function cronNamesOf(defaults: string | undefined): CronNames {
  let options: string | undefined;
  for (const line of lines(defaults ?? '')) {
    const match = /^\s*(?:export\s+)?EXTRA_OPTS=(.*)$/.exec(line);
    if (match) options = unquote(match[1]!);
  }
  const args = (options ?? '').split(/\s+/).filter(Boolean);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') break;
    if (!arg.startsWith('-') || arg === '-') continue; // GNU getopt reads on past an operand
    for (let c = 1; c < arg.length; c++) {
      if (arg[c] === 'l') return 'lsb';
      if (arg[c] === 'L') {
        if (c === arg.length - 1) i++; // its value is the next word
        break;
      }
    }
  }
  return 'classic';
}

const skipped = (reason: string): CronVerdict => ({ active: 0, reason });

/**
 * The verdict on a file's name alone. Every cron skips hidden names and editor backups (~) in its
 * folders; on Debian, cron (in /etc/cron.d) and run-parts (in the cron.* folders) also skip any name
 * with a character other than a letter, a digit, _ or - (so every name with a dot: backup.sh,
 * job.dpkg-dist); a cron started with -l (`names` lsb) judges /etc/cron.d by the LSB names instead.
 */
export function nameVerdict(name: string, place: CronPlace, debian: boolean, names: CronNames = 'classic'): CronVerdict | undefined {
  if (place === 'system') return undefined;
  const who = place === 'periodic' ? 'run-parts' : 'cron';
  if (name.startsWith('.')) return skipped(`hidden name (starts with a dot): ${who} skips it`);
  if (name.endsWith('~')) return skipped(`editor backup name (ends with ~): ${who} skips it`);
  if (debian && place === 'cron.d' && names === 'lsb') {
    const problem = lsbNameProblem(name);
    return problem === undefined ? undefined : skipped(`${problem}: cron -l (LSB names, EXTRA_OPTS of ${CRON_DEFAULTS}) skips it`);
  }
  if (debian && place !== 'spool' && !DEBIAN_NAME.test(name)) {
    return skipped(`name has characters other than letters, digits, _ and - (a dot, for one): ${who} skips it`);
  }
  return undefined;
}

/** What cron looks at besides the name: the link itself (lstat) and what it points to (stat). */
export interface CronFileFacts {
  readonly link: Pick<Stats, 'uid'> & { isSymbolicLink(): boolean };
  readonly target: Pick<Stats, 'uid' | 'mode' | 'nlink'>;
}

/**
 * The verdict on a file's owner and mode, in the order Debian's cron checks them: a system crontab
 * (/etc/crontab, /etc/cron.d) and a link to one must be owned by root, not writable by group or
 * others, with one hard link; a user's crontab owned by its user (or root), mode 0600, one hard
 * link, and named after an account. run-parts runs only executables (any cron's run-parts does).
 * `accounts` maps user names to uids; undefined when /etc/passwd could not be read.
 */
export function fileVerdict(facts: CronFileFacts, place: CronPlace, name: string, debian: boolean, accounts: ReadonlyMap<string, number> | undefined): CronVerdict | undefined {
  const { link, target } = facts;
  if (place === 'periodic') return (target.mode & 0o111) === 0 ? skipped('not executable: run-parts skips it') : undefined;
  if (!debian) return undefined;
  if (place === 'spool') {
    const uid = accounts?.get(name);
    if (accounts !== undefined && uid === undefined) return skipped(`no account named ${name}: cron skips it`);
    if (uid !== undefined && target.uid !== uid && target.uid !== 0) return skipped(`owned by uid ${target.uid}, neither ${name} nor root: cron skips it`);
    if ((target.mode & 0o7777) !== 0o600) return skipped(`mode ${modeText(target.mode)}, not 0600: cron skips it`);
  } else {
    if (link.isSymbolicLink() && link.uid !== 0) return skipped(`symbolic link owned by uid ${link.uid}, not root: cron skips it`);
    if (target.uid !== 0) return skipped(`owned by uid ${target.uid}, not root: cron skips it`);
    if ((target.mode & 0o022) !== 0) return skipped(`mode ${modeText(target.mode)}, writable by group or others: cron skips it`);
  }
  if (target.nlink !== 1) return skipped(`${target.nlink} hard links, not 1: cron skips it`);
  return undefined;
}

const modeText = (mode: number): string => (mode & 0o7777).toString(8).padStart(4, '0');

/** Debian's cron reads users' crontabs in this folder only (the others are cronie's and SUSE's). */
const DEBIAN_SPOOL = '/var/spool/cron/crontabs';

/** The verdict on a file: its name first, then its folder and its owner and mode; active (or unjudged) when nothing stops it. */
function verdictOf(file: CronFile, place: CronPlace, host: CronHost): CronVerdict {
  const name = path.posix.basename(file.path);
  const foreignSpool = place === 'spool' && host.debian && path.posix.dirname(file.path) !== DEBIAN_SPOOL;
  return (
    nameVerdict(name, place, host.debian, host.names) ??
    (foreignSpool ? skipped(`Debian's cron reads users' crontabs in ${DEBIAN_SPOOL} only: cron skips it`) : undefined) ??
    (file.facts ? fileVerdict(file.facts, place, name, host.debian, host.accounts) : undefined) ?? { active: host.debian ? 1 : null, reason: null }
  );
}

/** What the verdicts need to know of the host. */
interface CronHost {
  /** Debian-family (Debian, Ubuntu...): /etc/debian_version exists. */
  readonly debian: boolean;
  readonly accounts: ReadonlyMap<string, number> | undefined;
  /** The names cron runs in /etc/cron.d, from /etc/default/cron (Debian only). */
  readonly names: CronNames;
}

async function cronHost(ctx: CollectContext): Promise<CronHost> {
  const debian = await exists(ctx, '/etc/debian_version');
  const accounts = debian ? await readAccounts(ctx) : [];
  const names = debian && (await exists(ctx, CRON_DEFAULTS)) ? cronNamesOf(await readText(ctx, CRON_DEFAULTS)) : 'classic';
  return { debian, accounts: accounts.length > 0 ? new Map(accounts.map((a) => [a.name, a.uid])) : undefined, names };
}

async function exists(ctx: CollectContext, hostPath: string): Promise<boolean> {
  try {
    await lstat(onDisk(ctx, hostPath));
    return true;
  } catch {
    return false;
  }
}

interface CronFile {
  readonly path: string;
  /** Undefined when the file could not be stat'ed (its rows are still listed, unjudged by owner and mode). */
  readonly facts: { readonly link: Stats; readonly target: Stats } | undefined;
}

async function factsOf(ctx: CollectContext, hostFile: string): Promise<CronFile['facts']> {
  try {
    const file = onDisk(ctx, hostFile);
    return { link: await lstat(file), target: await stat(file) };
  } catch (error) {
    reportFsError(ctx, error, hostFile, 'cron entry skipped');
    return undefined;
  }
}

async function readCrontabFile(ctx: CollectContext, file: CronFile, place: CronPlace, host: CronHost, rows: Row[]): Promise<void> {
  const text = await readText(ctx, file.path);
  if (text === undefined) return;
  const user = place === 'spool' ? path.posix.basename(file.path) : undefined;
  const { active, reason } = verdictOf(file, place, host);
  for (const row of parseCrontab(ctx, text, user === undefined ? { path: file.path } : { path: file.path, user })) {
    rows.push({ ...row, active, inactive_reason: reason });
  }
}

/** The regular files of a folder (links followed), hidden and backup names included: the rows say cron skips them. */
async function filesIn(ctx: CollectContext, folder: string): Promise<CronFile[]> {
  const out: CronFile[] = [];
  for (const entry of (await listFolder(ctx, folder)) ?? []) {
    if (!entry.isFile() && !entry.isSymbolicLink()) continue;
    const file = path.posix.join(folder, entry.name);
    const facts = await factsOf(ctx, file);
    if (facts?.target.isFile()) out.push({ path: file, facts });
  }
  return out;
}

export async function readCrontabs(ctx: CollectContext): Promise<Row[]> {
  const rows: Row[] = [];
  const host = await cronHost(ctx);
  const system = '/etc/crontab';
  if (await exists(ctx, system)) await readCrontabFile(ctx, { path: system, facts: await factsOf(ctx, system) }, 'system', host, rows);
  for (const file of await filesIn(ctx, '/etc/cron.d')) await readCrontabFile(ctx, file, 'cron.d', host, rows);
  for (const spool of USER_SPOOLS) {
    for (const file of await filesIn(ctx, spool)) await readCrontabFile(ctx, file, 'spool', host, rows);
  }
  for (const { folder, special } of PERIODIC) {
    for (const file of await filesIn(ctx, folder)) {
      const { active, reason } = verdictOf(file, 'periodic', host);
      rows.push({ minute: null, hour: null, day_of_month: null, month: null, day_of_week: null, special, user: 'root', command: file.path, path: file.path, line: null, active, inactive_reason: reason });
    }
  }
  return rows;
}

export const crontab: TableSpec = {
  name: 'crontab',
  description:
    'Scheduled commands: /etc/crontab, /etc/cron.d/*, users\' crontabs (/var/spool/cron/crontabs, /var/spool/cron, /var/spool/cron/tabs) and the scripts in /etc/cron.{hourly,daily,weekly,monthly}. Environment lines are not rows; broken lines are skipped with a warning. Files cron skips (a name its rules refuse, a wrong owner or mode) are listed too, with active = 0 and the reason.',
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
    {
      name: 'active',
      type: 'INTEGER',
      description:
        "1 when cron runs it, 0 when cron skips the file (see inactive_reason), NULL when not judged (whether a cron daemon runs at all is not checked). Every cron skips hidden names and backups (~), and run-parts scripts that are not executable. On Debian-family hosts (/etc/debian_version) the rules of Debian's cron and run-parts apply too: names in /etc/cron.d and the cron.* folders only of letters, digits, _ and - (no dots), except that when /etc/default/cron starts cron with -l (EXTRA_OPTS, the last uncommented one; Debian ships it commented out) /etc/cron.d takes the LSB names instead: lower-case letters, digits and - (not first), or a hierarchical name such as vendor.tool-job (dots and _ allowed, a - before the last part of lower-case letters and digits) not ending in dpkg-old or dpkg-dist (unless it starts with _), so Backup and my_job no longer run and vendor.tool-job does (a cron started with other options than /etc/default/cron gives, by a systemd drop-in say, is not seen); /etc/crontab and /etc/cron.d files (and links to them) owned by root, not writable by group or others, one hard link; users' crontabs in /var/spool/cron/crontabs, named after an account, owned by it or root, mode 0600. Elsewhere what those rules leave is NULL. Not judged: the contents (Debian's cron also skips a whole file with a broken line, here only warned).",
      nullable: true,
    },
    { name: 'inactive_reason', type: 'TEXT', description: 'Why cron skips the file when active is 0; NULL otherwise.', nullable: true },
  ],
  examples: [
    { description: 'Jobs that run at boot.', sql: "SELECT user, command, path FROM crontab WHERE special = '@reboot'" },
    { description: 'Jobs that download something.', sql: "SELECT user, command, path, line FROM crontab WHERE command LIKE '%curl%' OR command LIKE '%wget%'" },
    { description: 'Files cron skips, and why (a job an attacker meant to run, or one an admin thinks runs).', sql: 'SELECT path, inactive_reason FROM crontab WHERE active = 0 GROUP BY path' },
  ],
  generate: (ctx) => readCrontabs(ctx),
};
