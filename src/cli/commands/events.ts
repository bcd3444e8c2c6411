import { parseRoleConfig, configError, type AgentConfig } from '../../common/config/index.js';
import { eventActions, eventKinds, type EventAction } from '../../common/events/index.js';
import { HadesError } from '../../common/errors.js';
import { KERNEL_ACTIONS, KernelEvents, unseenActions } from '../../agent/kernel-events.js';
import { NdjsonWriter } from '../../agent/ndjson-writer.js';
import { exitStatus, version, type CliContext } from '../context.js';
import { readConfigFile } from './config.js';

export { KERNEL_ACTIONS };

const MAX_TIMER_MS = 2 ** 31 - 1;

async function agentConfig(options: Readonly<Record<string, unknown>>): Promise<AgentConfig> {
  const file = typeof options['config'] === 'string' ? options['config'] : undefined;
  const text = file ? await readConfigFile(file) : '';
  const backend = options['backend'];
  const result = parseRoleConfig(text, 'agent');
  if (!result.ok) throw configError(result.problems, file ?? '(defaults)');
  if (backend === undefined) return result.config;
  if (backend !== 'auto' && backend !== 'ebpf' && backend !== 'cnproc') {
    throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', `--backend must be one of auto, ebpf, cnproc (got ${JSON.stringify(backend)})`);
  }
  return { ...result.config, driver: { ...result.config.driver, backend } };
}

function parseActions(value: unknown): Set<string> | undefined {
  if (typeof value !== 'string') return undefined;
  const actions = value.split(',').map((a) => a.trim()).filter(Boolean);
  for (const action of actions) {
    if (!KERNEL_ACTIONS.includes(action)) {
      const known = (eventActions as readonly string[]).includes(action);
      const planned = known ? eventKinds[action as EventAction].planned : undefined;
      const why = !known
        ? `unknown --action '${action}'`
        : planned !== undefined
          ? `--action ${action} is not produced yet (it comes with ${planned})`
          : `--action ${action} comes from the agent's plugins or the agent itself, not the kernel: \`hades events\` shows kernel events only (run \`hades agent\`)`;
      throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', `${why}; available: ${KERNEL_ACTIONS.join(', ')}`);
    }
  }
  if (actions.length === 0) throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', '--action needs at least one action');
  return new Set(actions);
}

function parseDuration(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  // Decimal only: Number() would also take '0x10', '1e3' or ' 5 '.
  const seconds = /^\d+(\.\d+)?$/.test(value) ? Number(value) : NaN;
  if (!Number.isFinite(seconds) || seconds <= 0) throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', `--duration must be a positive number of seconds (got '${value}')`);
  // Timers hold at most 2^31 - 1 ms; a longer run is one without --duration.
  if (seconds * 1000 > MAX_TIMER_MS) throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', `--duration may be at most ${Math.floor(MAX_TIMER_MS / 1000)} seconds (24 days); leave it out to run until Ctrl-C`);
  return seconds;
}

/** `hades events`: kernel events as NDJSON on stdout until Ctrl-C or --duration. */
export async function events(context: CliContext, _args: readonly string[], options: Readonly<Record<string, unknown>>): Promise<number> {
  const actions = parseActions(options['action']);
  const duration = parseDuration(options['duration']);
  const config = await agentConfig(options);
  if (process.getuid?.() !== 0) {
    throw new HadesError('HADES_ERR_NOT_ROOT', 'hades events reads kernel events and must run as root');
  }
  let fatal: HadesError | undefined;
  const stopped = new AbortController();
  const writer = new NdjsonWriter(context.stdout, () => source.drain());
  const source: KernelEvents = new KernelEvents({
    config,
    agentVersion: version,
    ...(actions ? { actions } : {}),
    emit: (event) => writer.write(event),
    onFatal: (error) => {
      fatal = error;
      stopped.abort();
    },
    onLog: (entry) => {
      if (entry['level'] === 'error' || entry['level'] === 'warn') context.stderr.write(`hades: driver: ${JSON.stringify(entry)}\n`);
    },
  });
  const hello = await source.start();
  const active = hello.hooks.filter((h) => h.active).map((h) => h.name);
  // One line for the person (and for scripts that wait until capture has begun).
  context.stderr.write(`hades: capturing from ${hello.backend} (${active.join(', ')})${hello.backend === 'cnproc' ? '; cn_proc cannot see the arguments of processes that exit before they are read: such fields are listed in hades.missing' : ''}\n`);
  // Asked for, and not to be seen with these hooks (cn_proc sees processes only; a hook that did not load): said, not silently absent.
  const unseen = unseenActions(actions, active);
  if (unseen.length > 0 && actions !== undefined) context.stderr.write(`hades: no ${unseen.join(', ')} events: ${hello.backend === 'cnproc' ? 'the cn_proc backend sees only processes (exec, fork, exit)' : 'their hooks are not active on this kernel'}\n`);
  let timer: NodeJS.Timeout | undefined;
  await new Promise<void>((resolve) => {
    const done = () => resolve();
    if (context.signal.aborted) return done();
    context.signal.addEventListener('abort', done, { once: true });
    stopped.signal.addEventListener('abort', done, { once: true });
    if (duration !== undefined) timer = setTimeout(done, duration * 1000);
  });
  clearTimeout(timer);
  await source.stop();
  writer.close();
  if (options['stats']) context.stderr.write(`${JSON.stringify({ stats: source.stats() })}\n`);
  if (fatal) throw fatal;
  return exitStatus.ok;
}
