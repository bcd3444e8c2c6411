/** Processes of the host, as tests that start hades look for them in /proc. */
import { readdirSync, readFileSync } from 'node:fs';

/** Pids of the processes whose parent is `parent` and that `match` accepts (their stat line and their argv). */
export function childrenOf(parent: number, match: (stat: string, argv: readonly string[]) => boolean): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) !== parent) continue;
      if (match(stat, readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0'))) out.push(Number(p));
    } catch {
      // gone
    }
  }
  return out;
}

/** The process exists (signal 0 reaches it). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
