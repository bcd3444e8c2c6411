/**
 * The log collector's parsers (pure functions): a syslog file line into its parts, and an sshd or
 * sudo message into the body of an `ssh_login` or `sudo` event (docs/events.md).
 *
 * Attackers choose some of what these messages contain (the user name an SSH client sends), so
 * every pattern is anchored at the end, where sshd writes what it knows itself (the address and
 * port): a user name such as `x from 10.0.0.1 port 22` cannot move the source. Lines are cut to a
 * bound before any pattern runs, and no pattern backtracks more than linearly.
 */
import { isIP } from 'node:net';

/** Programs whose messages are read: sshd (and the processes OpenSSH 9.8+ splits it into), sudo. */
export const LOG_PROGRAMS: readonly string[] = ['sshd', 'sshd-session', 'sshd-auth', 'sudo'];
const SSHD: ReadonlySet<string> = new Set(['sshd', 'sshd-session', 'sshd-auth']);

/** Longest message kept in an event's hades.log.message. */
export const MESSAGE_CHARS = 1024;

export interface SyslogLine {
  /** ms since the epoch. */
  readonly time: number;
  readonly host: string;
  readonly program: string;
  readonly pid?: number;
  readonly message: string;
}

// 2026-11-28T23:20:05.635647+00:00 vm sshd[29266]: Failed password for root from ...
const RFC3339 = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:?\d\d)) (\S{1,255}) ([^\s[:]{1,64})(?:\[(\d{1,10})\])?: ?(.*)$/s;
// Nov 28 23:20:05 vm sshd[29266]: ... (rsyslog's traditional format: local time, no year)
const TRADITIONAL = /^([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d\d):(\d\d):(\d\d) (\S{1,255}) ([^\s[:]{1,64})(?:\[(\d{1,10})\])?: ?(.*)$/s;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * A line of a syslog file in rsyslog's default (RFC 3339 time) or traditional format; undefined
 * for anything else. A traditional time has no year or zone: it is local time in the year that
 * puts it nearest before `now` (a line from 31 December read on 1 January is last year's).
 */
export function parseSyslogLine(line: string, now = Date.now()): SyslogLine | undefined {
  let m = RFC3339.exec(line);
  if (m) {
    const time = Date.parse(m[1] as string);
    if (!Number.isFinite(time)) return undefined;
    return withPid({ time, host: m[2] as string, program: m[3] as string, message: m[5] as string }, m[4]);
  }
  m = TRADITIONAL.exec(line);
  if (!m) return undefined;
  const month = MONTHS.indexOf(m[1] as string);
  if (month < 0) return undefined;
  const [day, hour, minute, second] = [m[2], m[3], m[4], m[5]].map(Number) as [number, number, number, number];
  const year = new Date(now).getFullYear();
  let time = new Date(year, month, day, hour, minute, second).getTime();
  // More than a day ahead of the clock: the line is from last year.
  if (time > now + 86_400_000) time = new Date(year - 1, month, day, hour, minute, second).getTime();
  if (!Number.isFinite(time)) return undefined;
  return withPid({ time, host: m[6] as string, program: m[7] as string, message: m[9] as string }, m[8]);
}

function withPid(line: Omit<SyslogLine, 'pid'>, pid: string | undefined): SyslogLine {
  const n = pid === undefined ? NaN : Number(pid);
  return Number.isSafeInteger(n) && n > 0 ? { ...line, pid: n } : line;
}

/** The body of an ssh_login or sudo event, without the common fields the agent adds. */
export interface AuthEvent {
  readonly action: 'ssh_login' | 'sudo';
  readonly body: Record<string, unknown>;
}

// sshd appends " [preauth]" to what its unprivileged pre-authentication child logs.
const PREAUTH = / \[preauth\]$/;
// Accepted publickey for root from 127.0.0.1 port 43510 ssh2: ED25519 SHA256:T+6U...
// (the user exists, so it has no spaces; a certificate's key id, which its CA chose, follows the address)
const ACCEPTED = /^Accepted ([\w/@.-]{1,32}) for (\S{1,256}) from (\S{1,64}) port (\d{1,5})(?: ssh2)?(?:: (.{1,4096}))?$/s;
// A user name as sshd logs it: `%.100s` of what the client sent, each byte it cannot print then
// escaped as four characters (`\303`), so up to 400; never a colon (sshd cuts the name at the
// first `:`, the rest being a BSD auth style).
const USER = String.raw`[^:]{0,512}`;
// Failed password for invalid user admin from 198.51.100.9 port 50022 ssh2
// Failed publickey for root from 10.0.0.1 port 22 ssh2: ED25519 SHA256:... (LogLevel VERBOSE)
// What follows `: ` is sshd's too but may hold the client's words (a certificate's key id, which
// its CA chose: `ID x from 6.6.6.6 port 22: y`), so the user name, which has no colon, cannot
// reach past it: the address is the last one before the first `: `.
const FAILED = new RegExp(String.raw`^Failed ([\w/@.-]{1,32}) for (invalid user )?(${USER}) from (\S{1,64}) port (\d{1,5})(?: ssh2)?(?:: (.{1,4096}))?$`, 's');
// Invalid user admin from 198.51.100.9 port 50022 (no port before OpenSSH 7.5)
const INVALID = new RegExp(String.raw`^Invalid user (${USER}) from (\S{1,64})(?: port (\d{1,5}))?$`, 's');

/** An sshd message as an ssh_login body; undefined for the messages that are not login attempts. */
export function parseSshd(message: string): Record<string, unknown> | undefined {
  const text = message.replace(PREAUTH, '');
  let m = ACCEPTED.exec(text);
  if (m) {
    const source = endpoint(m[3] as string, m[4]);
    if (!source) return undefined;
    return login('success', m[2] as string, source, { method: m[1], invalid_user: false, ...(m[5] ? { key: m[5].slice(0, 256) } : {}) });
  }
  m = FAILED.exec(text);
  if (m) {
    // `none` is the probe every client sends first to learn the methods: not an attempt.
    if (m[1] === 'none') return undefined;
    const source = endpoint(m[4] as string, m[5]);
    if (!source) return undefined;
    return login('failure', m[3] as string, source, { method: m[1], invalid_user: m[2] !== undefined, ...(m[6] ? { key: m[6].slice(0, 256) } : {}) });
  }
  m = INVALID.exec(text);
  if (m) {
    const source = endpoint(m[2] as string, m[3]);
    if (!source) return undefined;
    return login('failure', m[1] as string, source, { invalid_user: true });
  }
  return undefined;
}

function endpoint(ip: string, port: string | undefined): Record<string, unknown> | undefined {
  if (isIP(ip) === 0) return undefined;
  const n = port === undefined ? NaN : Number(port);
  return n >= 0 && n <= 65_535 ? { ip, port: n } : { ip };
}

function login(outcome: 'success' | 'failure', user: string, source: Record<string, unknown>, ssh: Record<string, unknown>): Record<string, unknown> {
  return { event: { outcome, type: outcome === 'success' ? ['start'] : ['info'] }, source, user: { name: user }, hades: { ssh } };
}

// alice : TTY=pts/1 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/systemctl restart nginx
// bob : user NOT in sudoers ; TTY=pts/0 ; PWD=/home/bob ; USER=root ; COMMAND=/bin/sh
const SUDO = /^\s{0,16}(\S{1,256}) : (.*)$/s;
// What follows PWD: the target user, optional fields, the command. The working directory before
// it and the command after it are both the caller's to choose and sudo escapes neither.
const TARGET = / ; USER=([^ ;]{1,256}) ; (?:GROUP=[^ ;]{0,256} ; )?(?:TSID=[^ ;]{0,64} ; )?(?:ENV=[^;]{0,4096} ; )?COMMAND=/g;
const FIELD = /^(HOST|TTY|PWD|USER|GROUP|TSID|ENV|COMMAND)=/;

/**
 * A sudo message as a sudo body; undefined for its other messages (PAM sessions, errors) and for
 * the `(command continued)` lines syslog splits a long one into (the first line has the start of
 * the command; the exec event has all of it).
 *
 * sudo writes a refusal's reason first, before any KEY= field, so the outcome is read from the
 * first part alone. The working directory and the command may both contain ` ; USER=x ;
 * COMMAND=`: the first such boundary after PWD is taken, and when there is more than one the
 * event says `ambiguous` (its hades.log.message has the whole line).
 */
export function parseSudo(message: string): Record<string, unknown> | undefined {
  const m = SUDO.exec(message);
  if (!m) return undefined;
  let rest = m[2] as string;
  if (rest.startsWith('(command continued)')) return undefined;
  const first = rest.indexOf(' ; ');
  if (first < 0) return undefined;
  let reason: string | undefined;
  if (!FIELD.test(rest.slice(0, first))) {
    reason = rest.slice(0, first).trim().slice(0, 256);
    rest = rest.slice(first + 3);
  }
  let tty: string | undefined;
  let pwd: string | undefined;
  for (const key of ['HOST', 'TTY'] as const) {
    if (!rest.startsWith(`${key}=`)) continue;
    const end = rest.indexOf(' ; ');
    if (end < 0) return undefined;
    if (key === 'TTY') tty = rest.slice(4, end);
    rest = rest.slice(end + 3);
  }
  if (!rest.startsWith('PWD=') && !rest.startsWith('USER=')) return undefined;
  const text = rest.startsWith('USER=') ? ` ; ${rest}` : rest;
  const boundaries = [...text.matchAll(TARGET)];
  const at = boundaries[0];
  if (!at || at.index === undefined) return undefined;
  if (rest.startsWith('PWD=')) pwd = text.slice(4, at.index);
  const command = text.slice(at.index + at[0].length);
  return {
    event: { outcome: reason === undefined ? 'success' : 'failure', type: reason === undefined ? ['start'] : ['info'] },
    user: { name: m[1], target: { name: at[1] } },
    hades: {
      sudo: {
        command: command.slice(0, 65_536),
        ...(tty && tty !== 'unknown' ? { tty: tty.slice(0, 64) } : {}),
        ...(pwd ? { working_directory: pwd.slice(0, 4096) } : {}),
        ...(reason !== undefined ? { reason } : {}),
        ...(boundaries.length > 1 ? { ambiguous: true } : {}),
      },
    },
  };
}

/** The event a program's message makes, if any. */
export function parseAuthMessage(program: string, message: string): AuthEvent | undefined {
  if (SSHD.has(program)) {
    const body = parseSshd(message);
    return body ? { action: 'ssh_login', body } : undefined;
  }
  if (program === 'sudo') {
    const body = parseSudo(message);
    return body ? { action: 'sudo', body } : undefined;
  }
  return undefined;
}
