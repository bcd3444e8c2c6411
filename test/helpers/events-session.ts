import { spawn } from 'node:child_process';
import { checkEvent } from '../../src/common/events/index.js';
import { projectRoot } from './generated-docs.js';

export type AnyEvent = Record<string, any>;

export interface Capture {
  readonly events: AnyEvent[];
  readonly stderr: string;
  readonly status: number | null;
  /** Every line that was not a valid event, with the schema's problems. */
  readonly invalid: string[];
}

/**
 * Runs `hades events ARGS` as a person would, waits until it captures, runs the workload with
 * the pid of the hades process, stops it with SIGINT and returns every event it printed.
 */
export async function captureEvents(args: readonly string[], workload: (hadesPid: number, output: () => string) => Promise<void>, options: { env?: NodeJS.ProcessEnv } = {}): Promise<Capture> {
  const child = spawn(process.execPath, [`${projectRoot}bin/hades.js`, 'events', ...args], { cwd: projectRoot, stdio: ['ignore', 'pipe', 'pipe'], ...(options.env ? { env: options.env } : {}) });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`hades events did not start: ${stderr}`)), 30_000);
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (stderr.includes('hades: capturing from')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('close', () => {
      clearTimeout(timer);
      reject(new Error(`hades events exited early: ${stderr}`));
    });
  });
  try {
    // `output`: what hades events printed so far, for a workload that waits for an event.
    await workload(child.pid ?? 0, () => stdout);
    await new Promise((r) => setTimeout(r, 500));
  } finally {
    child.kill('SIGINT');
  }
  const status = await closed;
  const events: AnyEvent[] = [];
  const invalid: string[] = [];
  for (const line of stdout.split('\n')) {
    if (line === '') continue;
    const event = JSON.parse(line) as AnyEvent;
    const check = checkEvent(event);
    if (!check.ok) invalid.push(`${JSON.stringify(check.problems)} in ${line.slice(0, 4000)}`);
    events.push(event);
  }
  return { events, stderr, status, invalid };
}

/** Runs a command to completion. */
export function run(command: string, args: readonly string[], options: { cwd?: string } = {}): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: 'ignore', ...options });
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
  });
}

/** Events of an action whose arguments contain the marker. */
export function withMarker(events: readonly AnyEvent[], action: string, marker: string): AnyEvent[] {
  return events.filter((e) => e['event']?.action === action && (e['process']?.args as string[] | undefined)?.some((a) => a.includes(marker)));
}
