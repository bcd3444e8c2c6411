/**
 * Watches the process's file descriptors against its limit (RLIMIT_NOFILE). At the limit, libuv
 * drops new connections without telling anyone (it accepts and closes them with a descriptor it
 * keeps aside) and opens fail with EMFILE: the agent and the server keep going, and this says so
 * in their log (HADES_ERR_FD_LIMIT) instead of leaving it to be guessed.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { HadesError } from '../common/errors.js';
import type { Logger } from './log.js';

/** Descriptors kept free below the limit: fewer left than this counts as reached. */
const MARGIN = 4;
/** While the limit stays reached, it is said again at most this often. */
const REPEAT_MS = 60_000;

export interface FdLimit {
  readonly soft: number;
  readonly hard: number;
}

/** The process's limit of open files from /proc/self/limits, or undefined when it cannot be read (or is unlimited). */
export function readFdLimit(): FdLimit | undefined {
  try {
    const line = /^Max open files\s+(\d+)\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (!line) return undefined;
    return { soft: Number(line[1]), hard: line[2] === 'unlimited' ? Infinity : Number(line[2]) };
  } catch {
    return undefined;
  }
}

/** An error for want of file descriptors: this process's limit (EMFILE) or the system's (ENFILE). */
export function isOutOfFds(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'EMFILE' || code === 'ENFILE';
}

export class FdLimitWatch {
  private limit: FdLimit | undefined = readFdLimit();
  private reachedSince: number | undefined;
  private saidAt = 0;

  constructor(
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** One look (cheap: one readdir); logs when the limit is reached, again each minute it lasts, and when it is not any more. */
  check(): void {
    let open: number | undefined;
    try {
      open = readdirSync('/proc/self/fd').length;
    } catch (error) {
      if (!isOutOfFds(error)) return;
    }
    // The limit may have been changed from outside (prlimit): read again while a descriptor is free.
    if (open !== undefined) this.limit = readFdLimit() ?? this.limit;
    const soft = this.limit?.soft;
    const reached = open === undefined || (soft !== undefined && open + MARGIN > soft);
    const now = this.now();
    if (!reached) {
      if (this.reachedSince !== undefined) {
        this.log.info('file descriptors are free again', { open_fds: open, limit: soft });
        this.reachedSince = undefined;
      }
      return;
    }
    this.reachedSince ??= now;
    if (now - this.saidAt < REPEAT_MS && this.saidAt >= this.reachedSince) return;
    this.saidAt = now;
    const count = open === undefined ? 'every one' : `${open}`;
    const error = new HadesError('HADES_ERR_FD_LIMIT', `${count} of the ${soft ?? 'allowed'} file descriptors this process may open ${open === undefined ? 'is' : 'are'} in use: new connections are dropped and files cannot be opened until some are free; raise the limit (LimitNOFILE in the systemd unit, ulimit -n, or prlimit --nofile for the running process)`, { details: { open_fds: open, limit: soft } });
    this.log.error('out of file descriptors', { err: error });
  }
}
