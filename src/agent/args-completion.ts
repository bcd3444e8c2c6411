/**
 * Completes the arguments of an exec whose argv the driver cut at `driver.argv_max`: the
 * process usually still runs when its record arrives (a reverse shell runs for minutes), and
 * /proc/PID/cmdline has no such limit. The result is used only when it is the same process
 * (its start time) and the bytes begin with what the driver captured (the process may have
 * rewritten its argument area since). Only exec records flagged as cut come here: never the
 * exec storm's hot path.
 */
import { open } from 'node:fs/promises';
import { splitRange } from './driver/bytes.js';
import { parseProcStat } from './tree.js';

/** Bytes of /proc/PID/cmdline read at most: a hostile 2 MiB argv costs no more than this. */
export const ARGS_READ_MAX = 64 * 1024;
/** How long an exec event waits for the read (a process stuck in the kernel can hold it). */
export const ARGS_READ_TIMEOUT_MS = 250;
/** Reads that may be unfinished at once; past that, events keep the driver's arguments. */
export const ARGS_READS_PENDING_MAX = 2;

/**
 * hades.process.args_source: where process.args and process.command_line of a cut exec come from.
 * - `proc`: the whole arguments, from /proc/PID/cmdline;
 * - `proc_cut`: from /proc/PID/cmdline, more than the driver's but still cut at ARGS_READ_MAX;
 * - `driver_rewritten`: the driver's cut arguments, kept because /proc/PID/cmdline no longer
 *   begins with them or is no longer as long (the process rewrote its argument area).
 */
export type ArgsSource = 'proc' | 'proc_cut' | 'driver_rewritten';

export interface ArgsCompletion {
  readonly args: readonly string[];
  readonly source: ArgsSource;
}

/** Trailing bytes of a UTF-8 sequence the cut split: the decoder wrote each as U+DC80..U+DCFF. */
function withoutSplitSequence(arg: string): string {
  let end = arg.length;
  while (end > 0 && arg.length - end < 3) {
    const unit = arg.charCodeAt(end - 1);
    if (unit < 0xdc80 || unit > 0xdcff) break;
    end--;
  }
  return arg.slice(0, end);
}

/** True when `whole` begins with the driver's `cut` arguments (the last of which may be partial). */
export function beginsWith(whole: readonly string[], cut: readonly string[]): boolean {
  if (cut.length > whole.length) return false;
  for (let i = 0; i < cut.length - 1; i++) if (whole[i] !== cut[i]) return false;
  if (cut.length === 0) return true;
  const last = cut[cut.length - 1] as string;
  return (whole[cut.length - 1] as string).startsWith(withoutSplitSequence(last));
}

/**
 * The completion from bytes read from /proc/PID/cmdline (at most `limit + 1` of them, so
 * that an area longer than the exec's shows), or undefined when there is nothing to use (no
 * bytes: the process is gone, or a zombie).
 * @param cut the driver's arguments
 * @param argvBytes the length of the whole argv at the exec (hades.process.args_bytes)
 */
export function completeFrom(cut: readonly string[], argvBytes: number, bytes: Buffer, limit = ARGS_READ_MAX): ArgsCompletion | undefined {
  if (bytes.length === 0) return undefined;
  const bounded = argvBytes > limit;
  const used = bounded ? Math.min(bytes.length, limit) : bytes.length;
  // Whole: as long as at the exec. Bounded: at least the limit.
  const sameLength = bounded ? bytes.length >= limit : bytes.length === argvBytes;
  const whole = splitRange(bytes, 0, used);
  if (!sameLength || !beginsWith(whole, cut)) return { args: cut, source: 'driver_rewritten' };
  return { args: whole, source: bounded ? 'proc_cut' : 'proc' };
}

async function readAt(path: string, max: number): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(max);
    let got = 0;
    while (got < max) {
      const { bytesRead } = await handle.read(buf, got, max - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return buf.subarray(0, got);
  } finally {
    await handle.close();
  }
}

/** Counters of the reader's work (each read counts once), for tests and the agent's statistics. */
export interface ArgsReaderStats {
  /** Arguments completed (proc or proc_cut). */
  completed: number;
  /** Rewritten since the exec: the driver's kept. */
  rewritten: number;
  /** The process was gone, another had its pid, or the read failed. */
  gone: number;
  /** Not read (too many reads unfinished) or not read in time. */
  skipped: number;
}

export interface ArgsReaderOptions {
  /** Folder of the process files; /proc by default. */
  readonly procRoot?: string;
  readonly limit?: number;
  readonly timeoutMs?: number;
  readonly pendingMax?: number;
}

/** Reads /proc/PID/cmdline for cut execs, a bounded number at a time. */
export class ArgsReader {
  readonly stats: ArgsReaderStats = { completed: 0, rewritten: 0, gone: 0, skipped: 0 };
  private pending = 0;
  private readonly procRoot: string;
  private readonly limit: number;
  private readonly timeoutMs: number;
  private readonly pendingMax: number;

  constructor(options: ArgsReaderOptions = {}) {
    this.procRoot = options.procRoot ?? '/proc';
    this.limit = options.limit ?? ARGS_READ_MAX;
    this.timeoutMs = options.timeoutMs ?? ARGS_READ_TIMEOUT_MS;
    this.pendingMax = options.pendingMax ?? ARGS_READS_PENDING_MAX;
  }

  /**
   * The completion of a cut exec's arguments; undefined when the process is gone, another
   * process has its pid (start time), the read failed or took longer than the timeout, or too
   * many reads are unfinished. Never rejects.
   */
  complete(pid: number, startTicks: number, cut: readonly string[], argvBytes: number): Promise<ArgsCompletion | undefined> {
    if (this.pending >= this.pendingMax) {
      this.stats.skipped++;
      return Promise.resolve(undefined);
    }
    this.pending++;
    let late = false;
    const read = this.read(pid, startTicks, cut, argvBytes).then((outcome) => {
      this.pending--;
      if (late) return undefined;
      this.stats[outcome.counter]++;
      return outcome.completion;
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => {
        // The read goes on (it cannot be cancelled) and still counts as pending until it ends.
        late = true;
        this.stats.skipped++;
        resolve(undefined);
      }, this.timeoutMs);
      timer.unref();
    });
    return Promise.race([read, timeout]).finally(() => clearTimeout(timer));
  }

  /** Never rejects. */
  private async read(pid: number, startTicks: number, cut: readonly string[], argvBytes: number): Promise<{ completion?: ArgsCompletion; counter: keyof ArgsReaderStats }> {
    try {
      // cmdline first, then stat: a process with the exec's start time under the pid after the
      // read held it during the read too (a pid is never handed to another while its process lives).
      const bytes = await readAt(`${this.procRoot}/${pid}/cmdline`, Math.min(argvBytes, this.limit) + 1);
      const stat = (await readAt(`${this.procRoot}/${pid}/stat`, 1024)).toString('latin1');
      if (parseProcStat(stat)?.startTicks !== startTicks) return { counter: 'gone' };
      const completion = completeFrom(cut, argvBytes, bytes, this.limit);
      if (completion === undefined) return { counter: 'gone' };
      return { completion, counter: completion.source === 'driver_rewritten' ? 'rewritten' : 'completed' };
    } catch {
      // gone (ENOENT, ESRCH) or not readable: the event keeps the driver's arguments
      return { counter: 'gone' };
    }
  }
}
