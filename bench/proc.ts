/** What the benchmarks share: starting `hades events`, and what they read about processes from /proc. */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AGENT_NODE_FLAGS } from '../src/common/agent-node-flags.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

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

export interface HadesRun {
  readonly child: ChildProcess;
  readonly driver: number;
  /** Everything hades wrote to stderr so far (the --stats line comes at the end). */
  readonly stderr: () => string;
}

/** Starts `hades events ARGS` with its events going to the file `out`; resolves once it captures. */
export async function startHades(args: readonly string[], out: string): Promise<HadesRun> {
  const fd = openSync(out, 'w');
  // With the V8 flags the agent daemon is deployed with: what is measured is the agent's cost.
  const child = spawn(process.execPath, [...AGENT_NODE_FLAGS, path.join(root, 'bin/hades.js'), 'events', ...args], { stdio: ['ignore', fd, 'pipe'] });
  closeSync(fd);
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (stderr.includes('capturing from')) resolve();
    });
    child.on('close', () => reject(new Error(`hades exited: ${stderr}`)));
  });
  const driver = childOf(child.pid ?? 0, 'hades-driver');
  if (!driver) throw new Error('driver not found');
  return { child, driver, stderr: () => stderr };
}

/** Stops it as Ctrl-C would, and waits until it has exited. */
export async function stopHades(child: ChildProcess): Promise<void> {
  const closed = new Promise((r) => child.on('close', r));
  child.kill('SIGINT');
  await closed;
}
