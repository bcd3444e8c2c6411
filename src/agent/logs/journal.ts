/**
 * Follows the systemd journal through `journalctl --follow --output=json`, limited to the
 * programs the collector reads (LOG_PROGRAMS). The collector keeps the cursor of the last entry it
 * took, so a restarted journalctl (or collector) starts right after it: nothing is read twice or
 * skipped. journalctl is this follower's child: it is restarted with backoff when it exits, and
 * killed by close().
 *
 * Entries are trusted by what journald itself records about their sender, not by the name they
 * claim: an entry is taken only when it was sent by root (`_UID` 0: sshd, and sudo, which is
 * setuid root) or by one of the programs' executables (`_EXE`). Any local user can run
 * `logger -t sshd 'Failed password for root from ...'`; such lines are counted and skipped.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
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
  /** Entries whose sender was neither root nor one of the programs' executables. */
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
  /** The journalctl to run (tests and unusual installs). */
  readonly journalctl?: string;
  /** Extra journalctl arguments, e.g. `--directory=DIR` (tests). */
  readonly extraArgs?: readonly string[];
}

const TRUSTED_EXE: ReadonlySet<string> = new Set(['/usr/sbin/sshd', '/usr/lib/openssh/sshd-session', '/usr/lib/openssh/sshd-auth', '/usr/libexec/openssh/sshd-session', '/usr/libexec/openssh/sshd-auth', '/usr/bin/sudo']);
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

/** One line of journalctl's JSON output as an entry; `untrusted` when its sender is not trusted. */
export function parseJournalLine(line: string): { entry: JournalEntry; cursor: string } | 'untrusted' | undefined {
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
  if (text(e['_UID']) !== '0' && !TRUSTED_EXE.has(text(e['_EXE']) ?? '')) return 'untrusted';
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
  private pending = '';

  constructor(private readonly options: JournalFollowerOptions) {
    this.cursorValue = options.cursor;
  }

  /** The cursor of the last entry taken. */
  get cursor(): string | undefined {
    return this.cursorValue;
  }

  start(): void {
    if (this.closed || this.child) return;
    const args = ['--follow', '--output=json', '--all', '--no-pager', '--quiet', ...(this.options.extraArgs ?? [])];
    args.push(...(this.cursorValue ? [`--after-cursor=${this.cursorValue}`] : ['--lines=0']));
    args.push(...LOG_PROGRAMS.map((p) => `SYSLOG_IDENTIFIER=${p}`));
    const child = spawn(this.options.journalctl ?? 'journalctl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let stderr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      if (stderr.length < 2048) stderr += chunk;
    });
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      this.backoffMs = BACKOFF_MIN_MS;
      this.onData(chunk);
    });
    child.on('error', (error) => this.exited(`cannot run journalctl: ${error.message}`));
    child.on('close', (code, signal) => this.exited(`journalctl exited (${signal ?? `code ${code}`})${stderr ? `: ${stderr.trim().slice(0, 512)}` : ''}`));
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
    this.options.onProblem(reason);
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
    const parsed = parseJournalLine(line);
    if (parsed === undefined) {
      this.counters.malformed++;
      return;
    }
    if (parsed === 'untrusted') {
      this.counters.untrusted++;
      return;
    }
    this.cursorValue = parsed.cursor;
    this.counters.entries++;
    this.options.onEntry(parsed.entry);
  }
}

/** Whether journald runs here and journalctl can read it. */
export function journalAvailable(): boolean {
  return existsSync(JOURNAL_SOCKET);
}
