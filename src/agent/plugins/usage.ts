/**
 * Resource use of a process and its descendants, read from /proc: CPU time, resident memory
 * and open file descriptors. The supervisor samples every plugin (and the agent itself) with
 * it; where a plugin has its own cgroup, the cgroup's counters are used for CPU and memory
 * instead, since they also cover processes that left the tree.
 */
import { readdirSync, readFileSync } from 'node:fs';

export const CLOCK_TICKS_PER_SECOND = 100;
const PAGE_SIZE = 4096;
const MAX_TREE = 256;

export interface ProcessUsage {
  /** CPU time, user + system, in microseconds. */
  readonly cpuUsec: number;
  readonly rssBytes: number;
  readonly openFds: number;
  readonly processes: number;
}

function children(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    try {
      for (const child of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ')) {
        if (child) out.push(Number(child));
      }
    } catch {
      // the thread is gone
    }
  }
  return out;
}

function one(pid: number): { cpuUsec: number; rssBytes: number; openFds: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which may contain spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    const rssPages = Number(fields[21]);
    let openFds = 0;
    try {
      openFds = readdirSync(`/proc/${pid}/fd`).length;
    } catch {
      // not ours to read, or gone
    }
    return { cpuUsec: (ticks * 1_000_000) / CLOCK_TICKS_PER_SECOND, rssBytes: rssPages * PAGE_SIZE, openFds };
  } catch {
    return undefined;
  }
}

/** Sums the use of a process and its descendants (at most 256 processes); undefined when it is gone. */
export function treeUsage(pid: number): ProcessUsage | undefined {
  const root = one(pid);
  if (!root) return undefined;
  let { cpuUsec, rssBytes, openFds } = root;
  let processes = 1;
  const queue = children(pid);
  while (queue.length > 0 && processes < MAX_TREE) {
    const next = queue.shift()!;
    const usage = one(next);
    if (!usage) continue;
    cpuUsec += usage.cpuUsec;
    rssBytes += usage.rssBytes;
    openFds += usage.openFds;
    processes++;
    queue.push(...children(next));
  }
  return { cpuUsec, rssBytes, openFds, processes };
}

/** Turns successive CPU-time samples into percent of one core. */
export class CpuMeter {
  private last: { cpuUsec: number; at: number } | undefined;

  /** Percent of one core since the previous sample; undefined for the first. */
  sample(cpuUsec: number, atMs = performance.now()): number | undefined {
    const last = this.last;
    this.last = { cpuUsec, at: atMs };
    if (!last || atMs <= last.at) return undefined;
    return Math.max(0, ((cpuUsec - last.cpuUsec) / 1000 / (atMs - last.at)) * 100);
  }

  reset(): void {
    this.last = undefined;
  }
}
