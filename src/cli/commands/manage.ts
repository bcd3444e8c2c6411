/**
 * Managing the fleet from the command line, through the REST API as a person would: groups and
 * their configuration (`hades groups`), an agent's groups, tags and revocation (`hades agents`),
 * and tasks (`hades tasks`: restart a plugin, change the log level, run a query or collect a
 * table on chosen agents).
 */
import { parseDocument } from 'yaml';
import { formatProblem, parseRoleConfig, setsNothing, type AgentConfig, type ConfigProblem } from '../../common/config/index.js';
import { HadesError } from '../../common/errors.js';
import { isRole, ROLES } from '../../server/fleet/api-tokens.js';
import { TASK_KINDS } from '../../server/fleet/registry.js';
import { apiClient, checkTtl, limitOption, named, type ApiClient } from '../api-client.js';
import { exitStatus, type CliContext } from '../context.js';
import { configText } from '../../runtime/regular-file.js';
import { shown } from '../terminal.js';
import { readConfigFile } from './config.js';
import { formatRows } from './fleet.js';
import { yamlToPlain } from '../../common/yaml-plain.js';

type Options = Readonly<Record<string, unknown>>;

const FINISHED = new Set(['done', 'failed', 'expired']);
const POLL_MS = 250;

const json = (context: CliContext, value: unknown): void => void context.stdout.write(`${JSON.stringify(value)}\n`);
const table = (context: CliContext, rows: readonly Record<string, unknown>[]): void => void context.stdout.write(`${formatRows(rows).join('\n')}\n`);

function required(args: readonly string[], index: number, what: string): string {
  const value = args[index];
  if (value === undefined || value.trim() === '') throw new HadesError('HADES_ERR_CLI_MISSING_ARGUMENT', what);
  return value;
}

interface GroupRow {
  name: string;
  agents: number;
  version?: number;
  updated_at?: string;
}

/** `hades groups list`: every group with its members and its configuration's version. */
export async function groupsList(context: CliContext, _args: readonly string[], options: Options): Promise<number> {
  const client = await apiClient(options);
  const { groups } = (await client.get('/api/v1/groups')) as { groups: GroupRow[] };
  if (options['json']) {
    for (const group of groups) json(context, group);
    return exitStatus.ok;
  }
  if (groups.length === 0) {
    context.stdout.write('(no group yet: agents join one with their enrollment token, hades server token create --group NAME)\n');
    return exitStatus.ok;
  }
  table(
    context,
    groups.map((g) => ({ group: g.name, agents: g.agents, configuration: g.version === undefined ? '(none: agents keep their own file)' : `version ${g.version}`, updated: g.updated_at ?? '' })),
  );
  return exitStatus.ok;
}

/** `hades groups show NAME`: the group's agent configuration, as YAML (or JSON with its version). */
export async function groupsShow(context: CliContext, args: readonly string[], options: Options): Promise<number> {
  const name = required(args, 0, 'give the name of the group, as hades groups list shows it');
  const client = await apiClient(options);
  let config: { yaml: string };
  try {
    config = (await client.get(`/api/v1/groups/${encodeURIComponent(name)}/config`)) as { yaml: string };
  } catch (error) {
    if (!(error instanceof HadesError && error.code === 'HADES_ERR_API_NOT_FOUND')) throw error;
    // A group with members but no configuration is not an error: its agents run their own files.
    const { groups } = (await client.get('/api/v1/groups')) as { groups: GroupRow[] };
    if (!groups.some((g) => g.name === name)) throw new HadesError('HADES_ERR_API_NOT_FOUND', `no group '${name}'; hades groups list shows the groups`, { cause: error });
    if (options['json']) json(context, { name, yaml: null });
    else context.stderr.write(`hades: group ${name} has no configuration: its agents run their own files (hades groups set ${name} FILE gives it one)\n`);
    return exitStatus.ok;
  }
  if (options['json']) json(context, config);
  else context.stdout.write(config.yaml.endsWith('\n') || config.yaml === '' ? config.yaml : `${config.yaml}\n`);
  return exitStatus.ok;
}

async function readInput(file: string): Promise<string> {
  if (file !== '-') return readConfigFile(file);
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return configText(Buffer.concat(chunks), '(standard input)');
}

/**
 * `hades groups set NAME FILE`: checks the file as an agent configuration here (every problem
 * with its line), then stores it as the group's and the server pushes it to the connected members.
 */
export async function groupsSet(context: CliContext, args: readonly string[], options: Options): Promise<number> {
  const name = required(args, 0, 'give the name of the group and the configuration file: hades groups set NAME FILE (- reads standard input)');
  const file = required(args, 1, 'give the agent configuration file to store for the group (- reads standard input)');
  const text = await readInput(file);
  const shown = file === '-' ? '(standard input)' : file;
  if (setsNothing(text)) throw new HadesError('HADES_ERR_CONFIG_INVALID', `${shown} sets nothing (empty, only comments, or an empty YAML document): it would put every agent of the group on the defaults; nothing was stored (hades groups unset ${name} sends them back to their own files)`);
  const checked = parseRoleConfig(text, 'agent');
  if (!checked.ok) return refuse(context, checked.problems, shown);
  const client = await apiClient(options);
  let answer: { version: number; pushed: number };
  try {
    answer = (await client.put(`/api/v1/groups/${encodeURIComponent(name)}/config`, { yaml: text })) as typeof answer;
  } catch (error) {
    // The server checks again (its version may know other keys): show its problems the same way.
    const problems = error instanceof HadesError ? (error.details?.['problems'] as ConfigProblem[] | undefined) : undefined;
    if (Array.isArray(problems) && problems.every((p) => p && typeof p === 'object' && 'code' in p)) return refuse(context, problems, shown);
    throw error;
  }
  if (options['json']) json(context, { group: name, ...answer });
  else context.stdout.write(`group ${name}: configuration version ${answer.version} stored, pushed to ${answer.pushed} connected agent${answer.pushed === 1 ? '' : 's'}\n`);
  const own = agentsOwnKeys(text);
  if (own.length > 0) context.stderr.write(`hades: ${shown} sets ${own.join(' and ')}, which each agent keeps from its own file: the group's agents do not apply ${own.length === 1 ? 'it' : 'them'}\n`);
  // The file replaces each agent's own configuration (but for those keys): what it turns on, its
  // defaults included, is said, since a key left out is a default, not the agent's own setting.
  if (!options['json']) context.stderr.write(`hades: the group's agents now run this file with the defaults for what it leaves out: ${effectSummary(checked.config)}\n`);
  return exitStatus.ok;
}

/** What a group configuration makes its agents write and open: outputs, log, metrics, decoys. */
function effectSummary(config: AgentConfig): string {
  const { outputs, log, metrics, plugins } = config;
  const parts = [
    outputs.file.enabled ? `events to the file ${outputs.file.path}` : undefined,
    outputs.http.enabled ? `events to ${outputs.http.url}` : undefined,
    outputs.stdout.enabled ? 'events to standard output' : undefined,
    `its log to ${log.file ?? 'standard error'}`,
    metrics.enabled ? `metrics on ${metrics.listen}` : 'no metrics endpoint',
    plugins.honeypot.enabled ? 'honeypot decoys open' : undefined,
  ];
  return parts.filter((p): p is string => p !== undefined).join('; ');
}

/** The keys of a group configuration that its agents leave aside (agent.data_dir, outputs.server): their own, from their files. */
function agentsOwnKeys(text: string): string[] {
  let raw: unknown;
  try {
    raw = yamlToPlain(parseDocument(text, { logLevel: 'silent' }));
  } catch {
    return [];
  }
  const section = (key: string): Record<string, unknown> | undefined => {
    const value = raw !== null && typeof raw === 'object' ? (raw as Record<string, unknown>)[key] : undefined;
    return value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : undefined;
  };
  return [section('agent') && 'data_dir' in section('agent')! ? 'agent.data_dir' : undefined, section('outputs') && 'server' in section('outputs')! ? 'outputs.server' : undefined].filter((k): k is string => k !== undefined);
}

/** `hades groups unset NAME`: removes the group's configuration; its agents go back to their own files. */
export async function groupsUnset(context: CliContext, args: readonly string[], options: Options): Promise<number> {
  const name = required(args, 0, 'give the name of the group whose configuration to remove');
  const client = await apiClient(options);
  const answer = (await named(client.delete(`/api/v1/groups/${encodeURIComponent(name)}/config`), `configuration for group '${name}'`, 'hades groups list shows which groups have one')) as { pushed: number };
  if (options['json']) json(context, { group: name, ...answer });
  else context.stdout.write(`group ${name}: configuration removed; ${answer.pushed} connected agent${answer.pushed === 1 ? '' : 's'} went back to ${answer.pushed === 1 ? 'its' : 'their'} own file (or another group's configuration)\n`);
  return exitStatus.ok;
}

function refuse(context: CliContext, problems: readonly ConfigProblem[], file: string): never {
  for (const problem of problems) context.stderr.write(`${formatProblem(problem, file)}\n`);
  throw new HadesError('HADES_ERR_CONFIG_INVALID', `${file} is not a valid agent configuration: ${problems.length === 1 ? 'a problem' : `${problems.length} problems`}, listed above; nothing was stored`);
}

const agentHint = 'hades agents list shows the agents and their ids';

/** `hades agents revoke ID`: the agent's connections are refused from now on. */
export async function agentsRevoke(context: CliContext, args: readonly string[], options: Options): Promise<number> {
  const id = required(args, 0, 'give the id of the agent to revoke, as hades agents list shows it');
  const client = await apiClient(options);
  const answer = (await named(client.post(`/api/v1/agents/${encodeURIComponent(id)}/revoke`, undefined), `agent '${id}' in the fleet of ${client.base}`, agentHint)) as { already?: boolean };
  if (options['json']) json(context, { id, revoked: true, ...(answer.already === true ? { already: true } : {}) });
  else if (answer.already === true) context.stdout.write(`agent ${id} was revoked already: nothing changed\n`);
  else context.stdout.write(`agent ${id} is revoked: its connections are refused from now on (to bring it back, enroll the host again: stop its agent, move identity/ out of its data folder and start it with a new token)\n`);
  return exitStatus.ok;
}

/** `hades agents groups ID GROUP...`: replaces the agent's groups; their configuration is pushed. */
export async function agentsGroups(context: CliContext, args: readonly string[], options: Options): Promise<number> {
  const id = required(args, 0, 'give the id of the agent and its groups: hades agents groups ID GROUP...');
  const groups = args.slice(1);
  if (groups.length === 0) throw new HadesError('HADES_ERR_CLI_MISSING_ARGUMENT', 'give at least one group: an agent is always in one');
  const client = await apiClient(options);
  const agent = (await named(client.put(`/api/v1/agents/${encodeURIComponent(id)}/groups`, { groups }), `agent '${id}' in the fleet of ${client.base}`, agentHint)) as {
    groups: string[];
    configuration: { group: string; version: number } | null;
    pushed: boolean;
    revoked_at?: string | null;
  };
  if (options['json']) {
    json(context, agent);
    return exitStatus.ok;
  }
  const runs = agent.configuration ? `the configuration of group ${agent.configuration.group} (version ${agent.configuration.version})` : 'its own configuration file (none of its groups has a configuration)';
  const when = agent.pushed ? '' : agent.revoked_at ? ' (it is revoked: it will not connect again)' : ', from when it next connects';
  context.stdout.write(`agent ${id} is in ${agent.groups.join(', ')}; it ${agent.revoked_at ? 'would run' : 'runs'} ${runs}${when}\n`);
  return exitStatus.ok;
}

/** `hades agents tags ID [KEY=VALUE...]`: replaces the agent's tags (none given: removes them all). */
export async function agentsTags(context: CliContext, args: readonly string[], options: Options): Promise<number> {
  const id = required(args, 0, 'give the id of the agent and its tags: hades agents tags ID KEY=VALUE...');
  const tags: Record<string, string> = {};
  for (const pair of args.slice(1)) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', `a tag is KEY=VALUE (got '${pair}')`);
    tags[pair.slice(0, at)] = pair.slice(at + 1);
  }
  const client = await apiClient(options);
  await named(client.put(`/api/v1/agents/${encodeURIComponent(id)}/tags`, tags), `agent '${id}' in the fleet of ${client.base}`, agentHint);
  if (options['json']) json(context, { id, tags });
  else context.stdout.write(`${shown(`agent ${id}: ${Object.keys(tags).length === 0 ? 'no tags' : Object.entries(tags).map(([k, v]) => `${k}=${v}`).join(' ')}`)}\n`);
  return exitStatus.ok;
}

interface TaskRow {
  id: string;
  agent_id: string;
  kind: string;
  params: Record<string, unknown>;
  status: string;
  result?: unknown;
  result_omitted?: boolean;
  created_at: string;
  updated_at: string;
  deadline: string;
}

/** The task parameters that are numbers (src/common/tasks.ts): given as NAME=TEXT, they would be text. */
const NUMBER_PARAMS = new Set(['timeout_s', 'timeout_ms', 'max_rows', 'max_bytes', 'duration_s']);

/** PARAM=VALUE gives a string; PARAM:=JSON a number, boolean or any JSON value. */
export function taskParams(pairs: readonly string[]): Record<string, unknown> {
  const params: Record<string, unknown> = {};
  for (const pair of pairs) {
    const raw = /^([A-Za-z_][A-Za-z0-9_]*):=([\s\S]*)$/.exec(pair);
    if (raw) {
      try {
        params[raw[1]!] = JSON.parse(raw[2]!) as unknown;
      } catch {
        throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', `${raw[1]}:= takes a JSON value, e.g. max_rows:=100 (got '${raw[2]}')`);
      }
      continue;
    }
    const text = /^([A-Za-z_][A-Za-z0-9_]*)=([\s\S]*)$/.exec(pair);
    if (!text) throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', `a task parameter is NAME=TEXT or NAME:=JSON (got '${pair}')`);
    // NAME=60 sends the text "60", which the server refuses for a number without saying how to write one.
    if (NUMBER_PARAMS.has(text[1]!)) {
      const number = /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(text[2]!.trim()) ? text[2]!.trim() : 'NUMBER';
      throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', `${text[1]} is a number: write ${text[1]}:=${number} (NAME=VALUE gives text; got '${pair}')`);
    }
    params[text[1]!] = text[2]!;
  }
  return params;
}

async function targets(client: ApiClient, options: Options): Promise<string[]> {
  const agents = Array.isArray(options['agent']) ? (options['agent'] as string[]) : [];
  const group = typeof options['group'] === 'string' ? options['group'] : undefined;
  if (agents.length > 0 && group !== undefined) throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', 'give --agent or --group, not both');
  if (agents.length > 0) return agents;
  if (group === undefined) throw new HadesError('HADES_ERR_CLI_MISSING_ARGUMENT', 'name the agents the task is for: --agent ID (repeated, or ID,ID) or --group NAME');
  const { agents: members } = (await client.get('/api/v1/agents', { group })) as { agents: { id: string; revoked_at?: string | null }[] };
  const live = members.filter((a) => !a.revoked_at).map((a) => a.id);
  if (live.length === 0) throw new HadesError('HADES_ERR_API_NOT_FOUND', `group '${group}' has no agent; hades groups list shows the groups`);
  return live;
}

/** The rows of a query or inventory task that is done, or undefined. */
function rowsOf(task: TaskRow): Record<string, unknown>[] | undefined {
  if ((task.kind !== 'query' && task.kind !== 'inventory') || task.status !== 'done') return undefined;
  const rows = (task.result as { rows?: unknown } | null | undefined)?.rows;
  return Array.isArray(rows) ? (rows as Record<string, unknown>[]) : undefined;
}

function printTasks(context: CliContext, tasks: readonly TaskRow[], options: Options): void {
  if (options['json']) {
    for (const task of tasks) json(context, task);
    return;
  }
  // Query answers read as tables, one per agent, rather than as JSON cut to a column's width.
  if (tasks.length > 0 && tasks.every((t) => rowsOf(t) !== undefined)) {
    for (const task of tasks) {
      const rows = rowsOf(task)!;
      const truncated = (task.result as { truncated?: unknown }).truncated === true;
      // Every task here is done (rowsOf): its kind and time say which of an agent's answers it is.
      context.stdout.write(`${shown(`agent ${task.agent_id}, task ${task.id} (${task.kind}, ${task.status}, created ${task.created_at}): ${rows.length} row${rows.length === 1 ? '' : 's'}${truncated ? ' (cut: max_rows or max_bytes)' : ''}`)}\n`);
      table(context, rows);
    }
    return;
  }
  table(
    context,
    tasks.map((t) => ({ id: t.id, agent: t.agent_id, kind: t.kind, status: t.status, created: t.created_at, result: t.result_omitted ? `(left out of the list: hades tasks show ${t.id})` : t.result === undefined || t.result === null ? '' : JSON.stringify(t.result) })),
  );
}

/**
 * `hades tasks create KIND [PARAM=VALUE...] --agent ID [--agent ID...] | --group NAME [--wait]`: one task per
 * agent; with --wait, waits until each is done, failed or expired and exits 3 unless all are done.
 */
export async function tasksCreate(context: CliContext, args: readonly string[], options: Options): Promise<number> {
  const kind = required(args, 0, `give the kind of task: ${TASK_KINDS.join(', ')}`);
  if (!(TASK_KINDS as readonly string[]).includes(kind)) throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', `the kind of task is one of ${TASK_KINDS.join(', ')} (got '${kind}')`);
  const params = taskParams(args.slice(1));
  const timeoutText = typeof options['timeout'] === 'string' ? options['timeout'] : '300';
  const timeoutS = Number(timeoutText);
  if (!Number.isInteger(timeoutS) || timeoutS < 1 || timeoutS > 86_400) throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', `--timeout must be whole seconds from 1 to 86400 (got '${timeoutText}')`);
  const client = await apiClient(options);
  const agents = await targets(client, options);
  let { tasks } = (await client.post('/api/v1/tasks', { agents, kind, params, timeout_s: timeoutS })) as { tasks: TaskRow[] };
  if (options['wait']) {
    const until = Date.now() + timeoutS * 1000 + 2000;
    while (tasks.some((t) => !FINISHED.has(t.status)) && Date.now() < until && !context.signal.aborted) {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      tasks = await Promise.all(tasks.map(async (t) => (FINISHED.has(t.status) ? t : ((await client.get(`/api/v1/tasks/${t.id}`)) as TaskRow))));
    }
  }
  printTasks(context, tasks, options);
  if (!options['wait']) return exitStatus.ok;
  const count = (status: string) => tasks.filter((t) => t.status === status).length;
  const done = count('done');
  if (done === tasks.length) return exitStatus.ok;
  const waiting = count('pending') + count('sent');
  context.stderr.write(`hades: HADES_ERR_TASK_NOT_DONE: ${done} of ${tasks.length} task(s) done, ${count('failed')} failed, ${count('expired')} expired, ${waiting} still waiting for ${waiting === 1 ? 'its agent' : 'their agents'} (hades tasks show ID has each result)\n`);
  return exitStatus.environment;
}

/** `hades tasks list [--agent ID] [--status S]`: tasks, newest first. */
export async function tasksList(context: CliContext, _args: readonly string[], options: Options): Promise<number> {
  const limit = limitOption(options, 1000);
  const client = await apiClient(options);
  const { tasks } = (await client.get('/api/v1/tasks', {
    limit,
    agent: typeof options['agent'] === 'string' ? options['agent'] : undefined,
    status: typeof options['status'] === 'string' ? options['status'] : undefined,
  })) as { tasks: TaskRow[] };
  if (tasks.length === 0 && !options['json']) context.stdout.write('(no task)\n');
  else printTasks(context, tasks, options);
  return exitStatus.ok;
}

/** `hades tasks show ID`: one task with its parameters and result. */
export async function tasksShow(context: CliContext, args: readonly string[], options: Options): Promise<number> {
  const id = required(args, 0, 'give the id of the task, as hades tasks list shows it');
  const client = await apiClient(options);
  const task = (await named(client.get(`/api/v1/tasks/${encodeURIComponent(id)}`), `task '${id}'`, 'hades tasks list shows the tasks')) as TaskRow;
  if (options['json']) {
    json(context, task);
    return exitStatus.ok;
  }
  const lines = [
    `task:     ${task.id} (${task.kind})`,
    `agent:    ${task.agent_id}`,
    `status:   ${task.status}`,
    `params:   ${shown(JSON.stringify(task.params))}`,
    `created:  ${task.created_at}`,
    `updated:  ${task.updated_at}`,
    `deadline: ${task.deadline}`,
    // JSON leaves C1 and direction characters as they are: each line is shown escaped.
    `result:   ${task.result === undefined || task.result === null ? '(none yet)' : JSON.stringify(task.result, null, 2).split('\n').map(shown).join('\n          ')}`,
  ];
  context.stdout.write(`${lines.join('\n')}\n`);
  return exitStatus.ok;
}

interface ApiTokenRow {
  id: string;
  name: string;
  role: string;
  created_by: string;
  created_at: string;
  last_used_at?: string;
  revoked_at?: string;
  expires_at?: string;
}


/** `hades tokens create NAME --role R [--ttl D]`: the secret is printed once, never again. */
export async function tokensCreate(context: CliContext, args: readonly string[], options: Options): Promise<number> {
  const name = required(args, 0, 'give the token a name: whom it is for');
  const role = typeof options['role'] === 'string' ? options['role'] : undefined;
  if (role === undefined) throw new HadesError('HADES_ERR_CLI_MISSING_ARGUMENT', `give --role: ${ROLES.join(', ')}`);
  if (!isRole(role)) throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', `--role is one of ${ROLES.join(', ')} (got '${role}')`);
  const ttl = typeof options['ttl'] === 'string' ? checkTtl(options['ttl']) : undefined;
  const client = await apiClient(options);
  const created = (await client.post('/api/v1/tokens/api', { name, role, ...(ttl === undefined ? {} : { ttl }) })) as { id: string; token: string; expires_at?: string };
  if (options['json']) json(context, created);
  else context.stdout.write(`${shown(`API token ${created.id} (${role}) for ${name}${created.expires_at ? `, until ${created.expires_at}` : ''}:`)}\n${created.token}\n(shown once: give it to its user now; hades tokens revoke ${created.id} ends it)\n`);
  return exitStatus.ok;
}

/** `hades tokens list`. */
export async function tokensList(context: CliContext, _args: readonly string[], options: Options): Promise<number> {
  const client = await apiClient(options);
  const { tokens } = (await client.get('/api/v1/tokens/api')) as { tokens: ApiTokenRow[] };
  if (options['json']) for (const token of tokens) json(context, token);
  else table(context, tokens.map((t) => ({ id: t.id, name: t.name, role: t.role, created: `${t.created_at} by ${t.created_by}`, last_used: t.last_used_at ?? '', expires: t.expires_at ?? '', revoked: t.revoked_at ?? '' })));
  return exitStatus.ok;
}

interface EnrollmentTokenRow {
  id: string;
  group?: string;
  created_by: string;
  created_at: string;
  expires_at: string;
  used_at?: string;
  used_by?: string;
  revoked_at?: string;
}

/** `hades server token list`: enrollment tokens (`hades tokens list` shows the API tokens). */
export async function enrollmentTokensList(context: CliContext, _args: readonly string[], options: Options): Promise<number> {
  const client = await apiClient(options);
  const { tokens } = (await client.get('/api/v1/tokens/enrollment')) as { tokens: EnrollmentTokenRow[] };
  if (options['json']) for (const token of tokens) json(context, token);
  else if (tokens.length === 0) context.stdout.write('(no enrollment token: hades server token create)\n');
  else table(context, tokens.map((t) => ({ id: t.id, group: t.group ?? '', created: `${t.created_at} by ${t.created_by}`, expires: t.expires_at, used: t.used_at === undefined ? '' : `${t.used_at} by ${t.used_by ?? '?'}`, revoked: t.revoked_at ?? '' })));
  return exitStatus.ok;
}

/** What revoking a token of each kind says: its route, its name for a person, where to find ids, what the revocation does. */
const TOKEN_KINDS = {
  enrollment: { route: '/api/v1/tokens/enrollment', name: 'enrollment token', list: 'hades server token list shows the enrollment tokens', effect: 'no agent can enroll with it' },
  api: { route: '/api/v1/tokens/api', name: 'API token', list: 'hades tokens list shows the API tokens; enrollment tokens are hades server token list and revoke', effect: 'requests with it are refused from now on' },
} as const;

async function revokeToken(kind: keyof typeof TOKEN_KINDS, context: CliContext, args: readonly string[], options: Options): Promise<number> {
  const k = TOKEN_KINDS[kind];
  const id = required(args, 0, `give the id of the ${k.name}: ${k.list}`);
  const client = await apiClient(options);
  const answer = (await named(client.delete(`${k.route}/${encodeURIComponent(id)}`), `${k.name} '${id}'`, k.list)) as { already?: boolean };
  if (options['json']) json(context, { id, revoked: true, ...(answer?.already ? { already: true } : {}) });
  else context.stdout.write(answer?.already ? `${k.name} ${id} was revoked already\n` : `${k.name} ${id} is revoked: ${k.effect}\n`);
  return exitStatus.ok;
}

/** `hades server token revoke ID`. */
export const enrollmentTokensRevoke = (context: CliContext, args: readonly string[], options: Options): Promise<number> => revokeToken('enrollment', context, args, options);

/** `hades tokens revoke ID`. */
export const tokensRevoke = (context: CliContext, args: readonly string[], options: Options): Promise<number> => revokeToken('api', context, args, options);
