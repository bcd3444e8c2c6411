/** Processes of the host, as tests that start hades look for them in /proc. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { projectRoot } from './generated-docs.js';

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

/** Resolves when the child exits (at once when it has), rejects when it still runs after `timeoutMs`. */
export function exited(child: ChildProcess, timeoutMs = 20_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`pid ${child.pid} still runs after ${timeoutMs} ms`)), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

/** A `hades ARGS` process started by a test: its stderr gathered, and a promise of its exit status. */
export interface HadesRun {
  readonly child: ChildProcess;
  readonly exit: Promise<number | null>;
  readonly stderr: () => string;
}

/** Starts `hades ARGS` from the project's root, its stdout ignored. */
export function startHades(args: readonly string[]): HadesRun {
  const child = spawn(process.execPath, [`${projectRoot}bin/hades.js`, ...args], { cwd: projectRoot, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exit = once(child, 'exit').then(([code]) => code as number | null);
  return { child, exit, stderr: () => stderr };
}

/** Stops it with SIGTERM (SIGKILL after 20 s) unless it has exited; its exit status. */
export async function stopHades(run: HadesRun): Promise<number | null> {
  if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGTERM');
  const timer = setTimeout(() => run.child.kill('SIGKILL'), 20_000);
  try {
    return await run.exit;
  } finally {
    clearTimeout(timer);
  }
}
