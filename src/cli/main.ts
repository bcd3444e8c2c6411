import { exitStatus } from './context.js';
import { shown } from './terminal.js';
import { runCli } from './program.js';

/** Process entry point: owns the process-wide signal handlers and the exit status. */
async function main(): Promise<void> {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // A closed stdout (e.g. `hades events | head`) ends the command quietly instead of crashing.
  // Not the agent daemon: its stdout is one output among others, which counts what it cannot
  // write and lets the rest go on.
  const args = process.argv.slice(2);
  const daemon = args[0] === 'agent' && (args[1] === undefined || args[1].startsWith('-'));
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE' && !daemon) controller.abort();
  });
  try {
    process.exitCode = await runCli(args, { stdout: process.stdout, stderr: process.stderr, signal: controller.signal });
  } catch (error) {
    process.stderr.write(`hades: HADES_ERR_INTERNAL: ${shown(String(error))}\n`);
    process.exitCode = exitStatus.bug;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

await main();
