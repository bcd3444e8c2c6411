/**
 * The commands that run the server: `hades server`, and `hades start`, the single-node
 * deployment (server, and a local agent with the kernel driver enrolled to it) until Ctrl-C.
 * The commands that talk to its REST API are in remote.ts, which loads none of the server.
 */
import { spawn } from 'node:child_process';
import { closeSync, fstatSync, openSync, readSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { configError, parseRoleConfig } from '../../common/config/index.js';
import { EXIT_RESTART, HadesError, toHadesError } from '../../common/errors.js';
import { HadesServer } from '../../server/server.js';
import { adminTokenFile } from '../../server/local-files.js';
import { identityDir, loadIdentity } from '../../agent/transport/enroll.js';
import { clientOf, loadServerConfig } from '../api-client.js';
import { exitStatus, version, type CliContext } from '../context.js';
import { shown } from '../terminal.js';
import { parseWithFiles, readConfigFile } from './config.js';
import { makeFolders } from '../../runtime/folders.js';
import { isOutOfFds } from '../../runtime/fd-limit.js';
import type { TokenCreated } from './remote.js';
import { AGENT_NODE_FLAGS } from '../../common/agent-node-flags.js';

const waitForSignal = (context: CliContext, ...also: AbortSignal[]) =>
  new Promise<void>((resolve) => {
    const signals = [context.signal, ...also];
    if (signals.some((signal) => signal.aborted)) return resolve();
    for (const signal of signals) signal.addEventListener('abort', () => resolve(), { once: true });
  });

/** The error a server that stopped on its own (HadesServer.failed) ended with, thrown after stop(). */
function throwIfFailed(server: HadesServer): void {
  if (server.failed.aborted) throw toHadesError(server.failed.reason);
}

/** SIGHUP loads the rules again; returns what removes the handler. */
function reloadOnHangup(context: CliContext, server: HadesServer): () => void {
  const onHangup = (): void => {
    server.reloadRules().then(
      (state) => context.stderr.write(`hades: rules reloaded: ${state.enabled} enabled of ${state.rules}\n`),
      (error: unknown) => context.stderr.write(`hades: ${shown(toHadesError(error).toLine())}\n`),
    );
  };
  process.on('SIGHUP', onHangup);
  return () => process.off('SIGHUP', onHangup);
}

export async function serverRun(context: CliContext, _args: readonly string[], options: Readonly<Record<string, unknown>>): Promise<number> {
  // The TLS files of the alert outputs too: a bad one is refused with its position, before the data folder is made.
  const { config } = await loadServerConfig(options, { files: true });
  const server = new HadesServer({ config, version, stderr: context.stderr });
  const addresses = await server.start();
  context.stderr.write(`hades: server listening: API ${addresses.api}, agent gateway ${addresses.gateway}; admin token in ${path.join(config.data_dir, 'admin.token')}\n`);
  const stopReloading = reloadOnHangup(context, server);
  try {
    await waitForSignal(context, server.failed);
  } finally {
    stopReloading();
    await server.stop();
  }
  throwIfFailed(server);
  return exitStatus.ok;
}

/** Whether two paths name one file (through links too, once it exists). */
function sameFile(a: string, b: string): boolean {
  const real = (file: string): string => {
    try {
      return realpathSync(file);
    } catch {
      return path.resolve(file);
    }
  };
  return real(a) === real(b);
}

/** How long `hades start` looks for the local agent's "agent started" line before giving up saying it. */
const WATCHING_WAIT_MS = 5 * 60_000;
const WATCHING_POLL_MS = 250;

/**
 * Calls `found` once when a line holding `needle` is appended to `file` (what it held before is
 * not read), polling every 250 ms for at most `waitMs`. A file missing or unreadable for a
 * moment is tried again. `stop` ends the polling.
 */
function watchForLine(file: string, needle: string, waitMs: number, found: () => void): { stop(): void } {
  let offset = 0;
  try {
    offset = statSync(file).size;
  } catch {
    // not written yet: everything it will hold is new
  }
  let pending = '';
  const deadline = Date.now() + waitMs;
  const timer = setInterval(() => {
    if (Date.now() > deadline) return clearInterval(timer);
    let fd: number | undefined;
    try {
      fd = openSync(file, 'r');
      const size = fstatSync(fd).size;
      if (size < offset) offset = 0; // rotated or truncated: read it anew
      while (offset < size) {
        const chunk = Buffer.alloc(Math.min(size - offset, 1 << 20));
        const n = readSync(fd, chunk, 0, chunk.length, offset);
        if (n === 0) break;
        offset += n;
        pending += chunk.subarray(0, n).toString('utf8');
        const lines = pending.split('\n');
        pending = lines.pop() ?? '';
        if (lines.some((line) => line.includes(needle))) {
          clearInterval(timer);
          found();
          return;
        }
      }
    } catch {
      // missing or unreadable for now: the next tick tries again
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }, WATCHING_POLL_MS);
  return { stop: () => clearInterval(timer) };
}

/** The local agent's restarts under `hades start`: the first after a second, doubling to half a minute; a run of a minute starts the count again. */
const AGENT_RESTART_MIN_MS = 1000;
const AGENT_RESTART_MAX_MS = 30_000;
const AGENT_HEALTHY_MS = 60_000;

/** `hades start`: the single-node deployment on this machine. */
export async function start(context: CliContext, _args: readonly string[], options: Readonly<Record<string, unknown>>): Promise<number> {
  if (process.getuid?.() !== 0) throw new HadesError('HADES_ERR_NOT_ROOT', 'hades start runs the local agent, which loads kernel programs: run it as root');
  // Absolute: the configurations written below are read from other folders later.
  const root = path.resolve(typeof options['data'] === 'string' ? options['data'] : '/var/lib/hades');
  const api = typeof options['api'] === 'string' ? options['api'] : '127.0.0.1:7080';
  const gateway = typeof options['gateway'] === 'string' ? options['gateway'] : '127.0.0.1:7443';
  const parsed = parseRoleConfig(`data_dir: ${JSON.stringify(path.join(root, 'server'))}\nlisten: { api: ${JSON.stringify(api)}, agents: ${JSON.stringify(gateway)} }\n`, 'server');
  if (!parsed.ok) throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', parsed.problems.map((p) => p.message).join('; '));
  let config = parsed.config;
  // What the `hades` command needs to find this deployment, written at each start.
  const cliConfigFile = path.join(root, 'server.yaml');
  // --config: the server's other settings (rules, alert outputs, CMDB, retention) from a file;
  // where it keeps its state and listens stays what --data, --api and --gateway say.
  if (typeof options['config'] === 'string') {
    const file = options['config'];
    // That file written at this start would replace the settings just read, for good.
    if (sameFile(file, cliConfigFile)) throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', `--config ${file} is the file hades start writes at each start for the other hades commands, which would replace your settings: keep them in a file of another name (such as ${path.join(root, 'settings.yaml')}) and pass that`);
    const given = parseWithFiles(await readConfigFile(file), 'server');
    if (!given.ok) throw configError(given.problems, file);
    config = { ...given.config, data_dir: config.data_dir, listen: { ...given.config.listen, api: config.listen.api, agents: config.listen.agents } };
  }
  const server = new HadesServer({ config, version, stderr: context.stderr });
  const addresses = await server.start();
  const stopReloading = reloadOnHangup(context, server);
  const agentDir = path.join(root, 'agent');
  makeFolders(agentDir, 0o700);
  const agentConfigFile = path.join(agentDir, 'agent.yaml');
  const client = clientOf({ base: addresses.api, token: addresses.adminToken, caPem: server.caPem });
  let child: ReturnType<typeof spawn> | undefined;
  let restartTimer: NodeJS.Timeout | undefined;
  /** Set when the agent ended on its own (not at Ctrl-C) for good: why, for the error this command then ends with. */
  let agentExit: string | undefined;
  const stopped = new AbortController();
  let watching: { stop(): void } | undefined;
  try {
    // A token only for an agent that is not enrolled with this server yet (a token left unused
    // stays valid for its ten minutes: none is made when the agent would not use it).
    const identity = loadIdentity(agentDir);
    const known = identity === undefined ? undefined : ((await client.get(`/api/v1/agents/${encodeURIComponent(identity.agentId)}`).catch(() => undefined)) as { revoked_at?: string } | undefined);
    // A revoked local agent would be refused for ever while this says Hades runs: it enrolls
    // anew, and its old identity is kept aside (a revoked certificate is of no use to anyone).
    let revoked: string | undefined;
    if (identity !== undefined && known?.revoked_at !== undefined) {
      revoked = `${identityDir(agentDir)}.revoked-${identity.agentId}`;
      rmSync(revoked, { recursive: true, force: true });
      renameSync(identityDir(agentDir), revoked);
      context.stderr.write(`hades: the local agent ${identity.agentId} was revoked (${known.revoked_at}): it enrolls anew as another agent; its old identity is in ${revoked}\n`);
    }
    const enrolled = known !== undefined && revoked === undefined;
    const token = enrolled ? undefined : ((await client.post('/api/v1/tokens/enrollment', { ttl: '10m' })) as TokenCreated);
    writeFileSync(
      agentConfigFile,
      [
        '# Written by `hades start`: the local agent of the single-node deployment.',
        `agent: { data_dir: ${JSON.stringify(agentDir)} }`,
        'outputs:',
        '  file: { enabled: false }',
        // The gateway's address of this start: with port 0 it changes at each start, and an agent
        // enrolled earlier must not keep trying the address its enrollment gave.
        `  server: { enabled: true, api: ${JSON.stringify(addresses.api)},${token ? ` token: ${token.token},` : ''} ca_sha256: ${addresses.caSha256}, addresses: [${JSON.stringify(addresses.gateway)}] }`,
        `log: { file: ${JSON.stringify(path.join(agentDir, 'agent.log'))} }`,
        'metrics: { listen: "127.0.0.1:0" }',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    writeFileSync(
      cliConfigFile,
      `# Written by \`hades start\`: pass it to hades commands with --config.\ndata_dir: ${JSON.stringify(parsed.config.data_dir)}\nlisten: { api: ${JSON.stringify(addresses.api.replace(/^https:\/\//, ''))} }\n`,
      { mode: 0o600 },
    );
    const atDefaults = root === '/var/lib/hades' && addresses.api === 'https://127.0.0.1:7080';
    const configHint = atDefaults ? '' : ` --config ${cliConfigFile}`;
    const bin = fileURLToPath(new URL('../../../../bin/hades.js', import.meta.url));
    // The agent protects this process as its own (stopping it stops the agent), and marks the
    // SIGTERM it gets from it at Ctrl-C as its supervisor's.
    // Its standard input is a pipe this process never writes: when this process is gone, even
    // killed with SIGKILL, the pipe ends and the agent stops (agent.ts, watchSupervisor).
    // An agent that asks to be restarted (its driver lost: EXIT_RESTART), was killed, or could not
    // be started for want of descriptors or memory is started again, after a backoff, as its
    // service manager would: the server and the API stay up. Any other end (a configuration it
    // refuses, another agent holding its folder) stops everything.
    let backoffMs = AGENT_RESTART_MIN_MS;
    const agentLog = path.join(agentDir, 'agent.log');
    // The agent connects to the server before its kernel driver is loaded (seconds with every
    // hook): what runs before that is not seen. Its log's "agent started" line says when it
    // watches; this says so once, so that a person trying it knows when to.
    watching = watchForLine(agentLog, '"msg":"agent started"', WATCHING_WAIT_MS, () => {
      context.stdout.write('The local agent watches this machine now (its kernel driver is loaded): what runs from here on is in hades search.\n');
    });
    /** The agent started again after the backoff, which doubles up to AGENT_RESTART_MAX_MS; `why` said first. */
    const startAgain = (why: string): void => {
      context.stderr.write(`hades: ${why}; starting it again in ${backoffMs / 1000} s\n`);
      restartTimer = setTimeout(() => {
        restartTimer = undefined;
        if (!stopped.signal.aborted) spawnAgent();
      }, backoffMs);
      backoffMs = Math.min(AGENT_RESTART_MAX_MS, backoffMs * 2);
    };
    /**
     * A process that could not be made: out of descriptors or memory for a while (this process at
     * its limit of open files, the host out of processes) is tried again as a killed agent is; any
     * other cause (the program gone) ends hades start, said.
     */
    const notStarted = (error: unknown): void => {
      if (context.signal.aborted || stopped.signal.aborted) return;
      const code = (error as NodeJS.ErrnoException).code;
      const message = error instanceof Error ? error.message : String(error);
      if (isOutOfFds(error) || code === 'EAGAIN' || code === 'ENOMEM') {
        child = undefined;
        return startAgain(`the local agent could not be started: ${message}${isOutOfFds(error) ? ' (this process is at its limit of open files: HADES_ERR_FD_LIMIT)' : ''}`);
      }
      agentExit = `the local agent could not be started: ${message}`;
      stopped.abort();
    };
    const spawnAgent = (): void => {
      const startedAt = Date.now();
      let agent: ReturnType<typeof spawn>;
      try {
        agent = spawn(process.execPath, [...AGENT_NODE_FLAGS, bin, 'agent', '--config', agentConfigFile], { stdio: ['pipe', 'ignore', 'inherit'], env: { ...process.env, HADES_START_PID: String(process.pid) } });
      } catch (error) {
        return notStarted(error);
      }
      child = agent;
      agent.on('error', notStarted);
      agent.on('exit', (code, signal) => {
        if (context.signal.aborted || stopped.signal.aborted) return stopped.abort();
        const how = `the local agent exited (${code === null ? `signal ${signal ?? '?'}` : `status ${code}`}); see ${path.join(agentDir, 'agent.log')}`;
        if (code !== EXIT_RESTART && code !== null) {
          agentExit = how;
          return stopped.abort();
        }
        if (Date.now() - startedAt > AGENT_HEALTHY_MS) backoffMs = AGENT_RESTART_MIN_MS;
        startAgain(how);
      });
    };
    spawnAgent();
    context.stdout.write(
      [
        'Hades is running on this machine.',
        `  API:            ${addresses.api}   (CA: ${path.join(parsed.config.data_dir, 'pki', 'ca.pem')})`,
        `  agent gateway:  ${addresses.gateway}`,
        `  admin token:    ${addresses.adminToken}   (a secret: kept in ${adminTokenFile(parsed.config.data_dir)}, mode 0600, where the hades command finds it)`,
        `  local agent:    ${agentConfigFile} (log ${path.join(agentDir, 'agent.log')})`,
        '',
        `Try, in another terminal:  npx hades agents list${configHint}   |   npx hades search --since 5m --action exec${configHint}   |   npx hades alerts list${configHint}`,
        ...(atDefaults ? [] : [`(or once per shell: export HADES_SERVER_CONFIG='${cliConfigFile.replace(/'/g, "'\\''")}')`]),
        `The local agent's health:  npx hades agent status --config ${agentConfigFile}`,
        'Ctrl-C stops everything.',
        '',
      ].join('\n'),
    );
    await waitForSignal(context, stopped.signal, server.failed);
  } finally {
    stopped.abort();
    clearTimeout(restartTimer);
    watching?.stop();
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child!.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    stopReloading();
    await server.stop();
  }
  // The agent's end stopped everything: not a success.
  throwIfFailed(server);
  if (agentExit !== undefined) throw new HadesError('HADES_ERR_LOCAL_AGENT_EXITED', `${agentExit}; the server was stopped with it`);
  return exitStatus.ok;
}
