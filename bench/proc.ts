/** What the benchmarks read about processes from /proc. */
import { readdirSync, readFileSync } from 'node:fs';

/** utime + stime of a process in clock ticks (100 per second); 0 once it is gone. */
export function ticks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return 0;
  }
}

/** Resident memory in KiB. */
export function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0);
}

/** The pid of a child of `parent` with the given name (comm). */
export function childOf(parent: number, comm: string): number | undefined {
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      if (stat.includes(`(${comm})`) && stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1] === String(parent)) return Number(p);
    } catch {
      // gone
    }
  }
  return undefined;
}
