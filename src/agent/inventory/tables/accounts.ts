/** Account tables: users, groups, sudoers rules, logged-in users and the login history. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { CollectContext, Row, TableSpec } from '../table.js';
import { contentLines, int, listFolder, onHost, readBytes, readHostText, Warn } from './host-read.js';
import { parseUtmp, UtmpType, UTMP_RECORD_BYTES } from './utmp.js';

const DAY_S = 86_400;

interface ShadowEntry {
  readonly password: string;
  readonly lastChange?: number;
  readonly min?: number;
  readonly max?: number;
  readonly warn?: number;
  readonly inactive?: number;
  readonly expire?: number;
}

/** What a password field says, without the hash: set, locked, disabled or empty (no password at all). */
export function passwordStatus(field: string): string {
  if (field === '') return 'empty';
  if (field.startsWith('!')) return 'locked';
  if (field.startsWith('$') || /^[./0-9A-Za-z]{13}$/.test(field)) return 'set';
  return 'disabled';
}

const ALGORITHMS: readonly [prefix: string, name: string][] = [
  ['$1$', 'md5'],
  ['$2a$', 'bcrypt'],
  ['$2b$', 'bcrypt'],
  ['$2y$', 'bcrypt'],
  ['$5$', 'sha256'],
  ['$6$', 'sha512'],
  ['$7$', 'scrypt'],
  ['$y$', 'yescrypt'],
  ['$gy$', 'gost-yescrypt'],
];

/** The hashing scheme of a password field (weak ones, md5 and des, are worth a look). */
export function passwordAlgorithm(field: string): string | undefined {
  const hash = field.replace(/^!+/, '');
  if (hash === '') return undefined;
  for (const [prefix, name] of ALGORITHMS) if (hash.startsWith(prefix)) return name;
  if (/^[./0-9A-Za-z]{13}$/.test(hash)) return 'des';
  return hash.startsWith('$') ? 'other' : undefined;
}

function shadowEntries(ctx: CollectContext): Map<string, ShadowEntry> {
  const entries = new Map<string, ShadowEntry>();
  const text = readHostText(ctx, '/etc/shadow');
  let malformed = 0;
  for (const [, line] of contentLines(text ?? '')) {
    const f = line.split(':');
    if (f.length < 8 || !f[0]) {
      malformed++;
      continue;
    }
    const days = (i: number) => int(f[i]);
    entries.set(f[0], { password: f[1] ?? '', ...optional({ lastChange: days(2), min: days(3), max: days(4), warn: days(5), inactive: days(6), expire: days(7) }) });
  }
  if (malformed > 0) ctx.warn(Warn.malformed, `${malformed} line(s) skipped: not name:password:lastchg:min:max:warn:inactive:expire:`, '/etc/shadow');
  return entries;
}

function optional<T extends Record<string, number | undefined>>(values: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(values)) if (v !== undefined) (out as Record<string, number>)[k] = v;
  return out;
}

export const usersTable: TableSpec = {
  name: 'users',
  description: 'Local user accounts from /etc/passwd, with the password state from /etc/shadow (whether a password is set, locked or empty, its hashing scheme and ageing); never the hash itself.',
  columns: [
    { name: 'username', type: 'TEXT', description: 'Login name.' },
    { name: 'uid', type: 'INTEGER', description: 'User id.' },
    { name: 'gid', type: 'INTEGER', description: 'Primary group id.' },
    { name: 'description', type: 'TEXT', description: 'The GECOS field (full name, ...).' },
    { name: 'home', type: 'TEXT', description: 'Home folder.' },
    { name: 'shell', type: 'TEXT', description: 'Login shell.' },
    { name: 'password_status', type: 'TEXT', nullable: true, description: 'set, locked (starts with !), disabled (* or another non-hash: no password login) or empty (no password needed!); NULL when /etc/shadow cannot be read or has no entry.' },
    { name: 'password_algorithm', type: 'TEXT', nullable: true, description: 'Hashing scheme of the password: yescrypt, sha512, sha256, bcrypt, md5, des, ...; NULL without one.' },
    { name: 'password_last_change', type: 'INTEGER', nullable: true, description: 'When the password last changed, unix seconds (day precision); 0 when /etc/shadow says 0: the password must be changed at the next login (not a change in 1970).' },
    { name: 'password_min_days', type: 'INTEGER', nullable: true, description: 'Days before the password may change again.' },
    { name: 'password_max_days', type: 'INTEGER', nullable: true, description: 'Days after which the password must change.' },
    { name: 'password_warn_days', type: 'INTEGER', nullable: true, description: 'Days of warning before it expires.' },
    { name: 'password_inactive_days', type: 'INTEGER', nullable: true, description: 'Days after expiry until the account is disabled.' },
    { name: 'expires', type: 'INTEGER', nullable: true, description: 'When the account expires, unix seconds.' },
  ],
  examples: [
    { description: 'Accounts other than root with user id 0.', sql: "SELECT username FROM users WHERE uid = 0 AND username != 'root'" },
    { description: 'Accounts that need no password.', sql: "SELECT username, shell FROM users WHERE password_status = 'empty'" },
    { description: 'Accounts with a login shell and a password.', sql: "SELECT username, uid, shell FROM users WHERE password_status = 'set' AND shell NOT LIKE '%nologin' AND shell != '/bin/false'" },
  ],
  async generate(ctx) {
    const text = readHostText(ctx, '/etc/passwd');
    if (text === undefined) return [];
    const shadow = shadowEntries(ctx);
    const rows: Row[] = [];
    let malformed = 0;
    for (const [, line] of contentLines(text)) {
      if (line.startsWith('+') || line.startsWith('-')) continue; // NIS compatibility entries
      const f = line.split(':');
      const uid = int(f[2]);
      const gid = int(f[3]);
      if (f.length !== 7 || !f[0] || uid === undefined || gid === undefined) {
        malformed++;
        continue;
      }
      const entry = f[1] === 'x' ? shadow.get(f[0]) : { password: f[1] ?? '' };
      rows.push({
        username: f[0],
        uid,
        gid,
        description: f[4] ?? '',
        home: f[5] ?? '',
        shell: f[6] ?? '',
        password_status: entry ? passwordStatus(entry.password) : null,
        password_algorithm: entry ? (passwordAlgorithm(entry.password) ?? null) : null,
        password_last_change: entry?.lastChange !== undefined ? entry.lastChange * DAY_S : null,
        password_min_days: entry?.min ?? null,
        password_max_days: entry?.max ?? null,
        password_warn_days: entry?.warn ?? null,
        password_inactive_days: entry?.inactive ?? null,
        expires: entry?.expire !== undefined ? entry.expire * DAY_S : null,
      });
    }
    if (malformed > 0) ctx.warn(Warn.malformed, `${malformed} line(s) skipped: not name:password:uid:gid:gecos:home:shell`, '/etc/passwd');
    return rows;
  },
};

export const groupsTable: TableSpec = {
  name: 'groups',
  description: 'Local groups from /etc/group, with their listed members.',
  columns: [
    { name: 'groupname', type: 'TEXT', description: 'Group name.' },
    { name: 'gid', type: 'INTEGER', description: 'Group id.' },
    { name: 'members', type: 'TEXT', description: 'Members listed in /etc/group, comma-separated (users whose primary group it is are not listed there).' },
  ],
  examples: [
    { description: 'Who may use sudo or administer the host.', sql: "SELECT groupname, members FROM groups WHERE groupname IN ('sudo', 'wheel', 'adm', 'docker', 'lxd', 'disk')" },
    { description: 'Users and the groups that list them.', sql: "SELECT u.username, g.groupname FROM users u JOIN groups g ON ',' || g.members || ',' LIKE '%,' || u.username || ',%'" },
  ],
  async generate(ctx) {
    const text = readHostText(ctx, '/etc/group');
    if (text === undefined) return [];
    const rows: Row[] = [];
    let malformed = 0;
    for (const [, line] of contentLines(text)) {
      if (line.startsWith('+') || line.startsWith('-')) continue;
      const f = line.split(':');
      const gid = int(f[2]);
      if (f.length !== 4 || !f[0] || gid === undefined) {
        malformed++;
        continue;
      }
      rows.push({ groupname: f[0], gid, members: (f[3] ?? '').split(',').map((m) => m.trim()).filter(Boolean).join(',') });
    }
    if (malformed > 0) ctx.warn(Warn.malformed, `${malformed} line(s) skipped: not name:password:gid:members`, '/etc/group');
    return rows;
  },
};

// --- sudoers ---

const SUDO_TAGS = new Set(['NOPASSWD', 'PASSWD', 'NOEXEC', 'EXEC', 'SETENV', 'NOSETENV', 'LOG_INPUT', 'NOLOG_INPUT', 'LOG_OUTPUT', 'NOLOG_OUTPUT', 'MAIL', 'NOMAIL', 'FOLLOW', 'NOFOLLOW', 'INTERCEPT', 'NOINTERCEPT']);
const ALIAS = /^(User_Alias|Runas_Alias|Host_Alias|Cmnd_Alias|Cmd_Alias)\s/;
const INCLUDE = /^[#@](include|includedir)\s+(.+)$/;
const MAX_INCLUDE_DEPTH = 16;

/** Removes a comment: # starts one, except in #include(dir) and before a user id (#1000). */
function stripComment(line: string): string {
  for (let i = 0; i < line.length; i++) {
    if (line[i] !== '#') continue;
    if (i > 0 && line[i - 1] === '\\') continue;
    const rest = line.slice(i + 1);
    if (/^\d/.test(rest)) continue;
    if (line.slice(0, i).trim() === '' && /^include(dir)?\s/.test(rest)) return line;
    return line.slice(0, i);
  }
  return line;
}

export interface SudoersEntry {
  readonly line: number;
  readonly type: 'rule' | 'defaults' | 'alias' | 'include';
  readonly content: string;
  readonly principal?: string;
  readonly hosts?: string;
  readonly runas?: string;
  readonly tags?: string;
  readonly commands?: string;
  /** For includes: what is included and whether it is a folder. */
  readonly include?: { readonly target: string; readonly folder: boolean };
}

/** Parses one sudoers file's text into entries (logical lines: continuations joined, comments gone). */
export function parseSudoers(text: string): { entries: SudoersEntry[]; malformed: number[] } {
  const entries: SudoersEntry[] = [];
  const malformed: number[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const first = i + 1;
    let logical = lines[i]!.replace(/\r$/, '');
    while (logical.endsWith('\\') && i + 1 < lines.length) logical = `${logical.slice(0, -1)} ${lines[++i]!.replace(/\r$/, '')}`;
    const content = stripComment(logical).trim().replace(/\s+/g, ' ');
    if (content === '') continue;
    const include = INCLUDE.exec(content);
    if (include) {
      entries.push({ line: first, type: 'include', content, include: { target: include[2]!.trim().replace(/^"(.*)"$/, '$1'), folder: include[1] === 'includedir' } });
      continue;
    }
    if (/^Defaults([@:!>]\S*)?(\s|$)/.test(content)) {
      entries.push({ line: first, type: 'defaults', content });
      continue;
    }
    if (ALIAS.test(content)) {
      entries.push({ line: first, type: 'alias', content });
      continue;
    }
    const eq = content.indexOf('=');
    const left = eq < 0 ? '' : content.slice(0, eq).replace(/\s*,\s*/g, ',').trim();
    const parts = left.split(' ');
    if (eq < 0 || parts.length < 2 || parts[0] === '') {
      malformed.push(first);
      continue;
    }
    let right = content.slice(eq + 1).trim();
    let runas: string | undefined;
    if (right.startsWith('(')) {
      const close = right.indexOf(')');
      if (close < 0) {
        malformed.push(first);
        continue;
      }
      runas = right.slice(1, close).trim();
      right = right.slice(close + 1).trim();
    }
    const tags: string[] = [];
    for (let match = /^([A-Z_]+):\s*/.exec(right); match && SUDO_TAGS.has(match[1]!); match = /^([A-Z_]+):\s*/.exec(right)) {
      tags.push(match[1]!);
      right = right.slice(match[0].length);
    }
    entries.push({ line: first, type: 'rule', content, principal: parts[0]!, hosts: parts.slice(1).join(' '), ...(runas !== undefined ? { runas } : {}), tags: tags.join(','), commands: right });
  }
  return { entries, malformed };
}

/** sudo reads every file of an included folder whose name neither ends in ~ nor holds a dot. */
const includedFile = (name: string) => !name.endsWith('~') && !name.includes('.');

function collectSudoers(ctx: CollectContext, file: string, depth: number, visited: Set<string>, rows: Row[]): void {
  if (visited.has(file)) {
    ctx.warn(Warn.loop, 'included again (an include loop); skipped the second time', file);
    return;
  }
  if (depth > MAX_INCLUDE_DEPTH) {
    ctx.warn(Warn.loop, `includes nested deeper than ${MAX_INCLUDE_DEPTH}; skipped`, file);
    return;
  }
  visited.add(file);
  const text = readHostText(ctx, file);
  if (text === undefined) return;
  const { entries, malformed } = parseSudoers(text);
  if (malformed.length > 0) ctx.warn(Warn.malformed, `line(s) ${malformed.slice(0, 10).join(', ')}: not a Defaults, alias or user specification; skipped`, file);
  for (const entry of entries) {
    rows.push({ file, line: entry.line, type: entry.type, principal: entry.principal ?? null, hosts: entry.hosts ?? null, runas: entry.runas ?? null, tags: entry.tags ?? null, commands: entry.commands ?? null, content: entry.content });
    if (!entry.include) continue;
    const target = path.posix.resolve(path.posix.dirname(file), entry.include.target);
    if (!entry.include.folder) {
      collectSudoers(ctx, target, depth + 1, visited, rows);
      continue;
    }
    const names = listFolder(ctx, onHost(ctx, target), target);
    for (const name of (names ?? []).filter(includedFile).sort()) collectSudoers(ctx, path.posix.join(target, name), depth + 1, visited, rows);
  }
}

export const sudoersTable: TableSpec = {
  name: 'sudoers',
  description: 'Lines of /etc/sudoers and the files it includes (#include, @include, #includedir, @includedir, followed with loop protection), one row per rule, Defaults line, alias or include, with rules split into who, where, as whom, tags and commands.',
  columns: [
    { name: 'file', type: 'TEXT', description: 'File the line is in.' },
    { name: 'line', type: 'INTEGER', description: 'Line number (of the first line, for continued lines).' },
    { name: 'type', type: 'TEXT', description: 'rule, defaults, alias or include.' },
    { name: 'principal', type: 'TEXT', nullable: true, description: 'For rules: the users, %groups or aliases it is for.' },
    { name: 'hosts', type: 'TEXT', nullable: true, description: 'For rules: the hosts it applies on.' },
    { name: 'runas', type: 'TEXT', nullable: true, description: 'For rules: the (user:group) the commands may run as; NULL when not given (root).' },
    { name: 'tags', type: 'TEXT', nullable: true, description: 'For rules: tags such as NOPASSWD, SETENV, comma-separated.' },
    { name: 'commands', type: 'TEXT', nullable: true, description: 'For rules: the commands allowed (ALL for any).' },
    { name: 'content', type: 'TEXT', description: 'The whole logical line, comments removed.' },
  ],
  examples: [
    { description: 'Who may run anything without a password.', sql: "SELECT file, line, principal, commands FROM sudoers WHERE type = 'rule' AND tags LIKE '%NOPASSWD%'" },
    { description: 'Every rule granting ALL.', sql: "SELECT principal, hosts, runas FROM sudoers WHERE type = 'rule' AND commands = 'ALL'" },
  ],
  async generate(ctx) {
    const rows: Row[] = [];
    collectSudoers(ctx, '/etc/sudoers', 0, new Set(), rows);
    return rows;
  },
};

// --- utmp, wtmp, btmp ---

function readUtmpFile(ctx: CollectContext, hostPath: string): ReturnType<typeof parseUtmp> | undefined {
  // A long history is cut to its newest records: the tail, aligned on a record.
  const max = ctx.maxFileBytes - (ctx.maxFileBytes % UTMP_RECORD_BYTES);
  const data = readBytes(ctx, onHost(ctx, hostPath), hostPath, { maxBytes: max, tail: true });
  if (!data) return undefined;
  const parsed = parseUtmp(data);
  if (parsed.malformed > 0) ctx.warn(Warn.malformed, `${parsed.malformed} record(s) are not utmp records (bad type or time); skipped`, hostPath);
  if (parsed.trailing > 0) ctx.warn(Warn.malformed, `${parsed.trailing} trailing byte(s) do not make a whole ${UTMP_RECORD_BYTES}-byte record; ignored`, hostPath);
  return parsed;
}

export const loggedInUsersTable: TableSpec = {
  name: 'logged_in_users',
  description: 'Users logged in now: the USER_PROCESS records of /run/utmp (terminal, remote host, login process).',
  columns: [
    { name: 'user', type: 'TEXT', description: 'User name.' },
    { name: 'tty', type: 'TEXT', description: 'Terminal (pts/0, tty1, ...).' },
    { name: 'host', type: 'TEXT', description: 'Remote host name or address, empty for a local login.' },
    { name: 'address', type: 'TEXT', nullable: true, description: 'Remote IP address, when recorded.' },
    { name: 'pid', type: 'INTEGER', description: 'Login process id.' },
    { name: 'session', type: 'INTEGER', description: 'Session id.' },
    { name: 'login_time', type: 'INTEGER', description: 'When the user logged in, unix seconds.' },
  ],
  examples: [
    { description: 'Remote logins now.', sql: "SELECT user, tty, host, login_time FROM logged_in_users WHERE host != ''" },
    { description: 'Logged-in users whose login process is gone (a stale or forged record).', sql: 'SELECT l.user, l.pid FROM logged_in_users l LEFT JOIN processes p USING (pid) WHERE p.pid IS NULL' },
  ],
  async generate(ctx) {
    // /var/run is a link to /run on current systems; older ones keep utmp there.
    const source = existsSync(onHost(ctx, '/run/utmp')) ? '/run/utmp' : '/var/run/utmp';
    const parsed = readUtmpFile(ctx, source);
    return (parsed?.records ?? [])
      .filter((r) => r.type === UtmpType.userProcess)
      .map((r) => ({ user: r.user, tty: r.line, host: r.host, address: r.address ?? null, pid: r.pid, session: r.session, login_time: r.time }));
  },
};

export const lastLoginsTable: TableSpec = {
  name: 'last_logins',
  description: 'The login history: every record of /var/log/wtmp (logins, logouts, boots, shutdowns, run-level changes) and the failed logins of /var/log/btmp, newest last. A long history is cut to its newest records (the last 16 MiB of each file).',
  columns: [
    { name: 'source', type: 'TEXT', description: 'wtmp or btmp (failed logins).' },
    { name: 'kind', type: 'TEXT', description: 'login, logout, boot, shutdown, run_level, time_change, init, login_process, accounting; failed for btmp.' },
    { name: 'user', type: 'TEXT', description: 'User name (reboot for boots, the run level for run-level changes).' },
    { name: 'tty', type: 'TEXT', description: 'Terminal.' },
    { name: 'host', type: 'TEXT', description: 'Remote host or, for boots, the kernel release.' },
    { name: 'address', type: 'TEXT', nullable: true, description: 'Remote IP address, when recorded.' },
    { name: 'pid', type: 'INTEGER', description: 'Process id of the login.' },
    { name: 'time', type: 'INTEGER', description: 'When, unix seconds.' },
  ],
  examples: [
    { description: 'The last ten logins.', sql: "SELECT user, tty, host, datetime(time, 'unixepoch') AS at FROM last_logins WHERE kind = 'login' ORDER BY time DESC LIMIT 10" },
    { description: 'Failed logins by source address.', sql: "SELECT host, count(*) AS failures FROM last_logins WHERE kind = 'failed' GROUP BY host ORDER BY failures DESC" },
  ],
  async generate(ctx) {
    const rows: Row[] = [];
    for (const [source, hostPath] of [
      ['wtmp', '/var/log/wtmp'],
      ['btmp', '/var/log/btmp'],
    ] as const) {
      for (const r of readUtmpFile(ctx, hostPath)?.records ?? []) {
        rows.push({ source, kind: source === 'btmp' ? 'failed' : r.kind, user: r.user, tty: r.line, host: r.host, address: r.address ?? null, pid: r.pid, time: r.time });
      }
    }
    return rows;
  },
};
