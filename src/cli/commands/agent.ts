/**
 * `hades agent`: runs the agent daemon until SIGINT/SIGTERM, reloading its configuration on
 * SIGHUP. `hades agent status`: asks the running agent (found through the run file in its data
 * folder) for its health and prints it for a person, or as JSON.
 */
import { accessSync, constants, existsSync, fstatSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { yamlDepthProblem } from '../../common/yaml-depth.js';
import { parseRoleConfig, type AgentConfig } from '../../common/config/index.js';
import { HadesError } from '../../common/errors.js';
import { Agent, readRunFile, runFilePath, type AgentStatus } from '../../agent/daemon/agent.js';
import { exitStatus, version, type CliContext } from '../context.js';
import { shown } from '../terminal.js';
import { defaultConfigFiles, loadRoleConfig, readConfigFile } from './config.js';
import { yamlToPlain } from '../../common/yaml-plain.js';

export const DEFAULT_AGENT_CONFIG = defaultConfigFiles.agent;

const loadAgentConfig = (options: Readonly<Record<string, unknown>>): Promise<{ config: AgentConfig; file: string | undefined }> => loadRoleConfig('agent', options);

export async function agentRun(context: CliContext, _args: readonly string[], options: Readonly<Record<string, unknown>>): Promise<number> {
  const { config, file } = await loadAgentConfig(options);
  if (process.getuid?.() !== 0) throw new HadesError('HADES_ERR_NOT_ROOT', 'hades agent loads kernel programs and must run as root');
  let fatal: { error: HadesError; code: number } | undefined;
  const done = new AbortController();
  const agent = new Agent({
    config,
    ...(file ? { configFile: file } : {}),
    version,
    stdout: context.stdout,
    stderr: context.stderr,
    onFatal: (error, code) => {
      fatal ??= { error, code };
      done.abort();
    },
  });
  const onHup = () => {
    void agent.reload();
  };
  process.on('SIGHUP', onHup);
  const unwatch = watchSupervisor(context, () => done.abort());
  try {
    await agent.start();
    await new Promise<void>((resolve) => {
      if (context.signal.aborted || done.signal.aborted) return resolve();
      context.signal.addEventListener('abort', () => resolve(), { once: true });
      done.signal.addEventListener('abort', () => resolve(), { once: true });
    });
  } finally {
    // A SIGHUP while it stops (the drain may take drain_s) is ignored, not the end of the
    // process: with no handler at all, Node's default for it would kill the agent mid-drain.
    const duringStop = () => undefined;
    process.on('SIGHUP', duringStop);
    process.off('SIGHUP', onHup);
    unwatch();
    try {
      await agent.stop();
    } finally {
      process.off('SIGHUP', duringStop);
    }
  }
  if (fatal) {
    context.stderr.write(`hades: ${shown(fatal.error.toLine())}\n`);
    return fatal.code;
  }
  return exitStatus.ok;
}

/**
 * The local agent of `hades start` (HADES_START_PID names its parent) gets a pipe from it as
 * standard input, which that process never writes: its end means `hades start` is gone, even
 * killed with SIGKILL, and the agent stops as at Ctrl-C instead of running on, adopted by init,
 * with the data folder the next `hades start` needs. Returns what stops the watch.
 */
function watchSupervisor(context: CliContext, gone: () => void): () => void {
  const started = process.env['HADES_START_PID'];
  // Node makes the pipe a socket pair; a FIFO does as well.
  let piped = false;
  try {
    const st = fstatSync(0);
    piped = st.isFIFO() || st.isSocket();
  } catch {
    // no standard input
  }
  if (started === undefined || Number(started) !== process.ppid || !piped) return () => undefined;
  const onEnd = () => {
    context.stderr.write('hades: the hades start that runs this agent is gone; stopping\n');
    gone();
  };
  process.stdin.once('end', onEnd);
  process.stdin.once('error', onEnd);
  process.stdin.resume();
  return () => {
    process.stdin.off('end', onEnd);
    process.stdin.off('error', onEnd);
    process.stdin.destroy();
  };
}

const mb = (bytes: number | undefined) => (bytes === undefined ? '-' : `${(bytes / 1024 / 1024).toFixed(1)} MB`);
const pct = (value: number | undefined) => (value === undefined ? '-' : `${value.toFixed(1)}%`);

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

/** The status for a person: the agent, then plugins, outputs and drops. */
export function formatStatus(s: AgentStatus): string {
  const lines: string[] = [];
  lines.push(`hades agent ${s.version}, pid ${s.pid} on ${s.hostname}, up ${formatDuration(s.uptimeS)}`);
  lines.push(`  cpu ${pct(s.cpuPercent)}   memory ${mb(s.memoryRssBytes)} of ${mb(s.memoryBudgetBytes)} budget   open files ${s.openFds}`);
  lines.push(`  events in ${s.pipeline.in}   dropped ${s.eventsDropped}${s.pipeline.paused ? '   (outputs pushing back)' : ''}`);
  lines.push(`  cgroup ${'unavailable' in s.cgroup ? `none (${s.cgroup.unavailable})` : `v${s.cgroup.version} ${s.cgroup.base}`}`);
  if (s.configFile) lines.push(`  config ${s.configFile}${s.groupConfigVersion !== undefined ? ` under the server's group configuration (version ${s.groupConfigVersion})` : ''}${s.lastReload ? `, last reload ${s.lastReload.at} ${s.lastReload.ok ? 'ok' : `rejected: ${s.lastReload.message ?? ''}`}` : ''}`);
  if (s.logLevel?.byTask) lines.push(`  log level ${s.logLevel.level}, set by a server task${s.logLevel.until ? ` until ${s.logLevel.until}` : ' until the agent restarts or the configured level changes'}`);
  if (s.kernel) lines.push(`  kernel ${s.kernel.backend ?? '?'}: ${s.kernel.hooks.filter((h) => h.active).length} hooks active`);
  lines.push('');
  lines.push('plugins');
  lines.push(
    table([
      ['name', 'state', 'pid', 'cpu', 'memory', 'fds', 'events', 'ev/s', 'dropped', 'restarts', 'last error'],
      ...s.plugins.map((p) => [
        p.name,
        // The supervisor's state, and what the running plugin says of its work when it is not all done.
        p.health === 'degraded' ? `${p.state}, degraded` : p.state,
        p.pid === undefined ? '-' : String(p.pid),
        pct(p.cpuPercent),
        mb(p.memoryRssBytes),
        p.openFds === undefined ? '-' : String(p.openFds),
        String(p.eventsIn),
        p.eventsPerSecond.toFixed(0),
        String(Object.values(p.dropped).reduce((a, b) => a + b, 0)),
        String(p.restarts),
        // A plugin's last error holds the tail of its own stderr.
        shown((p.lastError ?? '').slice(0, 60)),
      ]),
    ])
      .split('\n')
      .map((l) => `  ${l}`)
      .join('\n'),
  );
  for (const p of s.plugins) {
    if (p.health === 'degraded') lines.push(wrap(`  ${p.name} degraded: `, [p.healthDetail ?? 'the plugin says so without a reason']));
    const counters = [...Object.entries(p.dropped).map(([reason, n]) => [`dropped.${reason}`, n] as const), ...leaves(p.stats ?? {})].filter(([, n]) => n !== 0);
    if (counters.length > 0) lines.push(wrap(`  ${p.name}: `, counters.map(([k, n]) => `${k} ${n}`)));
    // Lists and reasons a plugin reports (the honeypot's decoys listening, and those it refused).
    for (const [key, value] of Object.entries(p.stats ?? {})) {
      if (key === 'health') continue; // shown above, from the status's own reading of it
      if (Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === 'string')) lines.push(wrap(`  ${p.name} ${key}: `, value));
      else if (value && typeof value === 'object' && !Array.isArray(value)) {
        const reasons = Object.entries(value as Record<string, unknown>).filter(([, v]) => typeof v === 'string');
        if (reasons.length > 0) lines.push(wrap(`  ${p.name} ${key}: `, reasons.map(([k, v]) => `${k} (${String(v as string)})`)));
      }
    }
  }
  lines.push('');
  lines.push('outputs');
  lines.push(
    table([
      // backlog: what a spooled output found in its spool at start, delivered with the rest but never in `in`.
      ['name', 'state', 'in', 'backlog', 'delivered', 'queued', 'spool', 'dropped', 'last error'],
      ...s.pipeline.outputs.map((o) => [
        o.name,
        o.up ? 'up' : 'down',
        String(o.in),
        o.backlogAtStart === undefined ? '-' : String(o.backlogAtStart),
        String(o.out),
        String(o.queued),
        o.spool ? `${o.spool.events} ev, ${mb(o.spool.bytes)}` : '-',
        String(Object.values(o.dropped).reduce((a, b) => a + b, 0)),
        shown((o.lastError ?? '').slice(0, 60)),
      ]),
    ])
      .split('\n')
      .map((l) => `  ${l}`)
      .join('\n'),
  );
  if (s.pipeline.outputs.some((o) => (o.backlogAtStart ?? 0) > 0)) lines.push('  (backlog: events found in the spool at start, written before it; delivered with the rest, never counted in in)');
  for (const o of s.pipeline.outputs) {
    const sp = o.spool;
    // Older agents' status has no spool health.
    if (!sp || sp.corruptRecords === undefined) continue;
    const troubles = [
      sp.corruptRecords > 0 ? `${sp.corruptRecords} damaged records skipped (${sp.corruptEvents} events known, ${sp.corruptBytes} bytes)` : '',
      sp.writeErrors > 0 ? `${sp.writeErrors} write errors` : '',
      sp.readErrors > 0 ? `${sp.readErrors} unreadable segments` : '',
      sp.cursorResets > 0 ? 'cursor unreadable at start: replayed from the oldest record' : '',
    ].filter(Boolean);
    if (troubles.length > 0) lines.push(`  ${o.name} spool: ${troubles.join('; ')}`);
  }
  for (const o of s.pipeline.outputs) {
    const st = o.stream;
    // Older agents' status has no stream counters; the counters are shown when not zero.
    if (!st?.lost || !st.nacked) continue;
    const counters = [
      ['opened', st.opened],
      ...Object.entries(st.lost).map(([reason, n]) => [`lost.${reason}`, n] as const),
      ['nacked.temporary', st.nacked.temporary],
      ['nacked.permanent', st.nacked.permanent],
      ['resent', st.resent],
      // Older agents' status has no holds.
      ['held', st.held ?? 0],
    ] as const;
    const gateway = st.address === undefined ? 'no stream' : `gateway ${st.address} (#${st.addressIndex ?? 0} of the addresses)`;
    lines.push(wrap(`  ${o.name} streams: `, [gateway, ...counters.filter(([, n]) => n !== 0).map(([k, n]) => `${k} ${n}`)]));
  }
  const drops = s.drops.filter((d) => d.total > 0);
  if (drops.length > 0) {
    lines.push('');
    lines.push('drops (since start)');
    for (const d of drops) lines.push(`  ${d.component}/${d.hook}: ${d.reason} ${d.total}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The numeric counters of a plugin's STATS frame, by dotted path (`journal.untrusted`). */
function leaves(value: Readonly<Record<string, unknown>>, prefix = ''): (readonly [string, number])[] {
  const out: (readonly [string, number])[] = [];
  for (const [key, v] of Object.entries(value)) {
    if (typeof v === 'number' && Number.isFinite(v)) out.push([`${prefix}${key}`, v]);
    else if (v && typeof v === 'object' && !Array.isArray(v)) out.push(...leaves(v as Record<string, unknown>, `${prefix}${key}.`));
  }
  return out;
}

/** `head` then the items, comma-separated, lines kept under 100 columns. */
function wrap(head: string, items: readonly string[]): string {
  // What a plugin reports (its counters' names, lists and reasons) is its to choose.
  head = shown(head);
  items = items.map(shown);
  const lines: string[] = [];
  let line = head;
  for (const [i, item] of items.entries()) {
    const piece = `${item}${i < items.length - 1 ? ',' : ''}`;
    if (line.length > head.length && line.length + 1 + piece.length > 100) {
      lines.push(line);
      line = `${' '.repeat(head.length)}${piece}`;
    } else line = line.length > head.length ? `${line} ${piece}` : `${line}${piece}`;
  }
  lines.push(line);
  return lines.join('\n');
}

function formatDuration(seconds: number): string {
  const s = Math.floor(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
}

/**
 * The data folder of the agent whose status is asked: from its configuration file, even when the
 * file does not pass the check any more (just after an edit SIGHUP refused, when the status is
 * most wanted: the agent runs on with what it loaded before).
 */
async function statusDataDir(context: CliContext, options: Readonly<Record<string, unknown>>): Promise<string> {
  try {
    return (await loadAgentConfig(options)).config.agent.data_dir;
  } catch (error) {
    // The file loadRoleConfig read: --config, or the default one when it exists.
    const file = typeof options['config'] === 'string' ? options['config'] : existsSync(defaultConfigFiles.agent) ? defaultConfigFiles.agent : undefined;
    if (!(error instanceof HadesError) || error.code !== 'HADES_ERR_CONFIG_INVALID' || file === undefined) throw error;
    const text = await readConfigFile(file);
    if (yamlDepthProblem(text) !== undefined) throw error;
    let raw: unknown;
    try {
      raw = yamlToPlain(parseDocument(text, { logLevel: 'silent' }));
    } catch {
      throw error; // an alias bomb: the check's own error says so
    }
    const given = (raw as { agent?: { data_dir?: unknown } } | null)?.agent?.data_dir;
    const defaults = parseRoleConfig('', 'agent');
    const dataDir = typeof given === 'string' && given.startsWith('/') ? given : defaults.ok ? defaults.config.agent.data_dir : '/var/lib/hades/agent';
    context.stderr.write(`hades: ${file} does not pass the check now (hades config check ${file} says why); the running agent keeps what it loaded before. Its status:\n`);
    return dataDir;
  }
}

export async function agentStatus(context: CliContext, _args: readonly string[], options: Readonly<Record<string, unknown>>): Promise<number> {
  const dataDir = await statusDataDir(context, options);
  const config = { agent: { data_dir: dataDir } };
  const run = await readRunFile(config.agent.data_dir);
  if (!run) {
    // The data folder is root's: without the right to read it, say so rather than "no agent".
    try {
      accessSync(runFilePath(config.agent.data_dir), constants.R_OK);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EACCES' || code === 'EPERM') throw new HadesError('HADES_ERR_AGENT_NOT_RUNNING', `cannot read ${runFilePath(config.agent.data_dir)}: permission denied (the agent's data folder is root's: run hades agent status as root)`);
    }
    throw new HadesError('HADES_ERR_AGENT_NOT_RUNNING', `no agent runs with the data folder ${config.agent.data_dir}`);
  }
  if (!run.metrics) {
    // Enabled, but its address was taken at a reload: say why rather than blame the setting.
    if (typeof run.metrics_error === 'string') throw new HadesError('HADES_ERR_AGENT_STATUS_UNAVAILABLE', `the agent (pid ${run.pid}) runs, but its status endpoint does not listen now: ${run.metrics_error} (it tries again every 10 s; free the address or change metrics.listen)`);
    throw new HadesError('HADES_ERR_AGENT_STATUS_UNAVAILABLE', `the agent (pid ${run.pid}) runs without its status endpoint (metrics.enabled is false)`);
  }
  let status: AgentStatus;
  try {
    const response = await fetch(`${run.metrics}/status`, { signal: AbortSignal.timeout(5000) });
    if (!response.ok) throw new HadesError('HADES_ERR_AGENT_STATUS_UNAVAILABLE', `the agent (pid ${run.pid}) answered HTTP ${response.status} on ${run.metrics}/status`);
    status = (await response.json()) as AgentStatus;
  } catch (error) {
    if (error instanceof HadesError) throw error;
    throw new HadesError('HADES_ERR_AGENT_STATUS_UNAVAILABLE', `the agent (pid ${run.pid}) did not answer on ${run.metrics}: ${(error as Error).message}`);
  }
  context.stdout.write(options['json'] ? `${JSON.stringify(status)}\n` : formatStatus(status));
  return exitStatus.ok;
}
