/**
 * Follows the systemd journal through `journalctl --follow --output=json`, limited to the
 * programs the collector reads (LOG_PROGRAMS). The collector keeps the cursor of the last entry it
 * took, so a restarted journalctl (or collector) starts right after it: nothing is read twice or
 * skipped. journalctl is this follower's child: it is restarted with backoff when it exits, and
 * killed by close().
 *
 * Entries are trusted by what journald itself records about their sender (the socket's
 * credentials, `_UID`), not by the name they claim:
 * - sshd logs as root (its pre-authentication child through the root monitor): an sshd entry is
 *   taken only from root. `logger -t sshd 'Failed password for root from ...'` run by a user, or
 *   a user's own copy of sshd run with a library preloaded, sends as that user and is skipped.
 * - sudo logs as the user who ran it (its real uid: a refusal, and the command before it runs):
 *   a sudo entry is taken from root, or from the very user the message names, sent by sudo's
 *   executable (setuid programs take no preloaded library). So a user can at most make up sudo
 *   lines about themselves, which running sudo does for real anyway.
 * Skipped entries are counted (`untrusted`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { Accounts } from '../accounts.js';
import { LOG_PROGRAMS } from './parse.js';

/** The journal is there when journald's socket is (it runs). */
export const JOURNAL_SOCKET = '/run/systemd/journal/socket';

export interface JournalEntry {
  /** ms since the epoch. */
  readonly time: number;
  readonly program: string;
  readonly pid?: number;
  readonly message: string;
}

export interface JournalCounters {
  entries: number;
  /** Entries whose sender is not trusted for what they say. */
  untrusted: number;
  /** Lines journalctl wrote that were not a journal entry (or were too long). */
  malformed: number;
  /** journalctl restarts. */
  restarts: number;
}

export interface JournalFollowerOptions {
  /** Start after this entry; absent: with new entries only. */
  readonly cursor?: string;
  readonly onEntry: (entry: JournalEntry) => void;
  /** journalctl could not start or exited; it is started again after a backoff. */
  readonly onProblem: (message: string) => void;
}

/** A journal entry as JSON is well under this; a longer line is dropped. */
const MAX_LINE_BYTES = 256 * 1024;
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 60_000;

/** A field of an entry as a string: journalctl writes binary values as arrays of bytes. */
function text(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && value.length <= 65_536 && value.every((b) => Number.isInteger(b) && b >= 0 && b <= 255)) return Buffer.from(value as number[]).toString('utf8');
  return undefined;
}

const SUDO_EXE: ReadonlySet<string> = new Set(['/usr/bin/sudo', '/bin/sudo']);
const SUDO_USER = /^\s{0,16}(\S{1,256}) : /;

/**
 * One line of journalctl's JSON output as an entry, or the cursor of an entry whose sender is not
 * trusted for what it says (see above). `userName` maps a uid to its name (/etc/passwd).
 */
export function parseJournalLine(line: string, userName: (uid: number) => string | undefined = () => undefined): { entry: JournalEntry; cursor: string } | { untrusted: string } | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const e = value as Record<string, unknown>;
  const cursor = text(e['__CURSOR']);
  const program = text(e['SYSLOG_IDENTIFIER']);
  const message = text(e['MESSAGE']);
  const micros = Number(text(e['__REALTIME_TIMESTAMP']));
  if (!cursor || !program || message === undefined || !Number.isFinite(micros)) return undefined;
  const uid = text(e['_UID']);
  if (uid !== '0') {
    const named = program === 'sudo' ? SUDO_USER.exec(message)?.[1] : undefined;
    const sender = uid !== undefined && /^\d{1,10}$/.test(uid) ? userName(Number(uid)) : undefined;
    if (named === undefined || sender !== named || !SUDO_EXE.has(text(e['_EXE']) ?? '')) return { untrusted: cursor };
  }
  const pid = Number(text(e['_PID']) ?? text(e['SYSLOG_PID']));
  return { entry: { time: Math.floor(micros / 1000), program, ...(Number.isSafeInteger(pid) && pid > 0 ? { pid } : {}), message }, cursor };
}

export class JournalFollower {
  readonly counters: JournalCounters = { entries: 0, untrusted: 0, malformed: 0, restarts: 0 };
  private child: ChildProcess | undefined;
  private timer: NodeJS.Timeout | undefined;
  private backoffMs = BACKOFF_MIN_MS;
  private closed = false;
  private cursorValue: string | undefined;
  /** The cursor journalctl was started at: its entry, when it comes first, was read before. */
  private skipCursor: string | undefined;
  private pending = '';
  private readonly accounts = new Accounts();

  constructor(private readonly options: JournalFollowerOptions) {
    this.cursorValue = options.cursor;
  }

  /** The cursor of the last entry taken. */
  get cursor(): string | undefined {
    return this.cursorValue;
  }

  /** Stops reading journalctl's output (the agent is behind); journalctl then waits on its pipe. */
  pause(): void {
    this.child?.stdout?.pause();
  }

  resume(): void {
    this.child?.stdout?.resume();
  }

  start(): void {
    if (this.closed || this.child) return;
    if (this.cursorValue === undefined) this.findEnd();
    else this.follow({ after: this.cursorValue });
  }

  /**
   * Without a kept cursor, reading starts after the journal's last entry, whatever its program:
   * its cursor is asked for first. (Not `--lines=0` with the programs' matches: journalctl then
   * misses the first entries of a burst when no entry of those programs was in the journal yet,
   * as on a fresh host.) An empty journal is followed from its start (`--no-tail`), which is now.
   */
  private findEnd(): void {
    let out = '';
    const child = this.spawnJournalctl(['--lines=1', '--output=json', '--no-pager', '--quiet'], () => {
      if (out.trim() === '') return this.follow('start');
      let cursor: unknown;
      try {
        cursor = (JSON.parse(out.split('\n', 1)[0]!) as { __CURSOR?: unknown }).__CURSOR;
      } catch {
        // not JSON: said below
      }
      if (typeof cursor === 'string' && cursor.length > 0) {
        this.cursorValue = cursor;
        this.follow({ after: cursor });
      } else {
        this.options.onProblem('journalctl did not give the cursor of the journal\'s last entry: following with --lines=0 (the first entries of a burst may be missed)');
        this.follow('end');
      }
    });
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      if (out.length < MAX_LINE_BYTES) out += chunk;
    });
  }

  /**
   * journalctl as this follower's child. A clean exit goes to `done` when given; any other exit
   * (or a failure to start) is a problem, and journalctl is started again after a backoff.
   */
  private spawnJournalctl(args: readonly string[], done?: () => void): ChildProcess {
    const child = spawn('journalctl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let stderr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      if (stderr.length < 2048) stderr += chunk;
    });
    child.on('error', (error) => this.exited(`cannot run journalctl: ${error.message}`));
    child.on('close', (code, signal) => {
      if (this.child !== child) return; // closed, or its failure to start already handled
      if (code === 0 && done) {
        this.child = undefined;
        if (!this.closed) done();
        return;
      }
      this.exited(`journalctl exited (${signal ?? `code ${code}`})${stderr ? `: ${stderr.trim().slice(0, 512)}` : ''}`);
    });
    return child;
  }

  /**
   * Follows the programs' entries after a cursor, from the journal's start, or from its end.
   * After a cursor: from the cursor's entry itself (`--cursor`), dropped when it comes first,
   * rather than `--after-cursor`, which with matches also skips the first matching entry when
   * the cursor's own entry does not match (systemd before 255), as the end's cursor often does.
   */
  private follow(from: { after: string } | 'start' | 'end'): void {
    const args = ['--follow', '--output=json', '--all', '--no-pager', '--quiet'];
    this.skipCursor = undefined;
    if (from === 'end') args.push('--lines=0');
    else if (from === 'start') args.push('--no-tail');
    else {
      args.push(`--cursor=${from.after}`);
      this.skipCursor = from.after;
    }
    args.push(...LOG_PROGRAMS.map((p) => `SYSLOG_IDENTIFIER=${p}`));
    const child = this.spawnJournalctl(args);
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      // After close() nothing more is taken: the kept cursor covers exactly what was.
      if (this.closed || this.child !== child) return;
      this.backoffMs = BACKOFF_MIN_MS;
      this.onData(chunk);
    });
  }

  /** Stops journalctl and resolves once it has exited (killed after a second), so it is never left behind. */
  close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const kill = setTimeout(() => child.kill('SIGKILL'), 1000);
      child.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      child.kill('SIGTERM');
    });
  }

  private exited(reason: string): void {
    if (!this.child) return; // already handled (error then close), or closed
    this.child = undefined;
    this.pending = '';
    if (this.closed) return;
    // A kept cursor the journal no longer has (rotated away, another machine's, damaged): from
    // now on, new entries only; what was logged in between is a gap, and said so.
    if (this.cursorValue !== undefined && /cursor/i.test(reason)) {
      this.options.onProblem(`${reason}; the kept journal cursor is not usable: reading new entries only (entries logged since it may be missed)`);
      this.cursorValue = undefined;
    } else this.options.onProblem(reason);
    this.counters.restarts++;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.start();
    }, this.backoffMs);
    this.backoffMs = Math.min(BACKOFF_MAX_MS, this.backoffMs * 2);
  }

  private onData(chunk: string): void {
    let buffered = this.pending + chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      this.onLine(buffered.slice(0, nl));
      buffered = buffered.slice(nl + 1);
    }
    if (buffered.length > MAX_LINE_BYTES) {
      this.counters.malformed++;
      // The rest of the overlong line up to its newline is not an entry either.
      this.pending = '\u0000';
      return;
    }
    this.pending = buffered;
  }

  private onLine(line: string): void {
    if (line.startsWith('\u0000')) return; // the tail of an overlong line
    if (line.trim() === '') return;
    const skip = this.skipCursor;
    this.skipCursor = undefined;
    if (skip !== undefined && cursorOf(line) === skip) return;
    const parsed = parseJournalLine(line, (uid) => this.accounts.user(uid));
    if (parsed === undefined) {
      this.counters.malformed++;
      return;
    }
    if ('untrusted' in parsed) {
      this.cursorValue = parsed.untrusted;
      this.counters.untrusted++;
      return;
    }
    this.cursorValue = parsed.cursor;
    this.counters.entries++;
    this.options.onEntry(parsed.entry);
  }
}

/** The `__CURSOR` of one line of journalctl's JSON output, if it has one. */
function cursorOf(line: string): string | undefined {
  try {
    const value = (JSON.parse(line) as { __CURSOR?: unknown }).__CURSOR;
    return typeof value === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Whether journald runs here and journalctl can read it. */
/**
 * Whether journald runs: its socket is there and a systemd-journald process is (the socket
 * outlives a stopped journald, and `auto` would then read a journal nobody writes).
 */
export function journalAvailable(socket = JOURNAL_SOCKET, proc = '/proc'): boolean {
  if (!existsSync(socket)) return false;
  let pids: string[];
  try {
    pids = readdirSync(proc).filter((name) => /^\d+$/.test(name));
  } catch {
    return true; // no /proc to look in: trust the socket
  }
  for (const pid of pids) {
    try {
      if (readFileSync(`${proc}/${pid}/comm`, 'utf8') === 'systemd-journal\n') return true;
    } catch {
      // gone meanwhile
    }
  }
  return false;
}
