/**
 * Commands that talk to the server's REST API as a person would: `hades server token create`,
 * `hades server ca status|rotate|retire-old`, `hades agents list|show|renew`, `hades search`
 * and `hades rules reload`. They load none of the server's own modules (gRPC, SQLite, Fastify):
 * the API client and the local deployment's credentials are all they need.
 */
import { HadesError } from '../../common/errors.js';
import { apiClient, checkTtl, fixedTimeBounds, limitOption, named } from '../api-client.js';
import { exitStatus, type CliContext } from '../context.js';
import { formatOffset } from '../../common/clock-offset.js';
import { shown } from '../terminal.js';

/** What POST /api/v1/tokens/enrollment answers. */
export interface TokenCreated {
  id: string;
  token: string;
  expires_at: string;
  ca_sha256: string;
  gateways?: string[];
}

/** A host:port only this host can reach (a loopback address or localhost). */
const loopbackOnly = (hostPort: string): boolean => /^(127\.\d+\.\d+\.\d+|\[::1\]|localhost):\d+$/i.test(hostPort);

export async function tokenCreate(context: CliContext, _args: readonly string[], options: Readonly<Record<string, unknown>>): Promise<number> {
  const client = await apiClient(options);
  const ttl = checkTtl(typeof options['ttl'] === 'string' ? options['ttl'] : '1h');
  const body = { ttl, ...(typeof options['group'] === 'string' ? { group: options['group'] } : {}) };
  const created = (await client.post('/api/v1/tokens/enrollment', body)) as TokenCreated;
  if (options['json']) {
    context.stdout.write(`${JSON.stringify({ ...created, api: client.base })}\n`);
  } else {
    context.stdout.write(
      [
        `token:      ${created.token}`,
        `expires:    ${created.expires_at}`,
        `ca sha256:  ${created.ca_sha256}`,
        '',
        'On the host to enroll, in its agent configuration:',
        'outputs:',
        '  server:',
        '    enabled: true',
        `    api: ${client.base}`,
        `    token: ${created.token}`,
        `    ca_sha256: ${created.ca_sha256}`,
        '',
      ].join('\n'),
    );
    const gateways = created.gateways ?? [];
    if (gateways.length > 0) context.stdout.write(`The agent is then given the gateway ${gateways.join(', ')}.\n`);
    if (gateways.length > 0 && gateways.every(loopbackOnly)) {
      context.stderr.write('hades: only an agent on this host can reach that gateway: for hosts elsewhere, set advertise.gateways (and advertise.hostnames, which the server certificate names) in the server configuration\n');
    }
  }
  return exitStatus.ok;
}

interface AgentRow {
  id: string;
  hostname: string;
  online: boolean;
  version?: string;
  groups?: string[];
  last_seen?: string;
  revoked_at?: string | null;
  addresses?: string[];
  os?: string;
  last_heartbeat?: { clock_offset_ms?: unknown };
}

/** The agent's clock against the server's at its last heartbeat, or nothing before one that says. */
function clockOf(agent: AgentRow): string {
  const offset = agent.last_heartbeat?.clock_offset_ms;
  return typeof offset === 'number' && Number.isFinite(offset) ? formatOffset(offset) : '';
}

export async function agentsList(context: CliContext, _args: readonly string[], options: Readonly<Record<string, unknown>>): Promise<number> {
  const client = await apiClient(options);
  const { agents } = (await client.get('/api/v1/agents')) as { agents: AgentRow[] };
  if (options['json']) {
    for (const agent of agents) context.stdout.write(`${JSON.stringify(agent)}\n`);
    return exitStatus.ok;
  }
  // Host names and versions are what each agent said in its hello; the clock, how far the
  // agent's is from the server's at its last heartbeat (its events carry its clock's time).
  const rows = [['id', 'hostname', 'state', 'version', 'groups', 'last seen', 'clock'], ...agents.map((a) => [a.id, shown(a.hostname), a.revoked_at ? 'revoked' : a.online ? 'online' : 'offline', shown(a.version ?? ''), (a.groups ?? []).join(','), a.last_seen ?? '', clockOf(a)])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  for (const row of rows) context.stdout.write(`${row.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()}\n`);
  if (agents.length === 0) context.stdout.write('(no agent has enrolled yet: hades server token create)\n');
  return exitStatus.ok;
}

/**
 * `hades agents show ID [--json]`: one agent as the API has it (GET /api/v1/agents/ID): its
 * host, versions, groups and tags, state and last heartbeat, configuration, CMDB context, plugin
 * health, resource use and drop counters. A line per member; objects on one line as JSON.
 */
export async function agentsShow(context: CliContext, args: readonly string[], options: Readonly<Record<string, unknown>>): Promise<number> {
  const id = args[0] ?? '';
  if (id.trim() === '') throw new HadesError('HADES_ERR_CLI_MISSING_ARGUMENT', 'give the id of the agent to show, as hades agents list shows it');
  const client = await apiClient(options);
  const agent = (await named(client.get(`/api/v1/agents/${encodeURIComponent(id)}`), `agent '${id}' in the fleet of ${client.base}`, 'hades agents list shows the agents and their ids')) as Record<string, unknown>;
  if (options['json']) {
    context.stdout.write(`${JSON.stringify(agent)}\n`);
    return exitStatus.ok;
  }
  const width = Math.max(...Object.keys(agent).map((k) => k.length));
  for (const [key, value] of Object.entries(agent)) {
    if (value === undefined || value === null) continue;
    const text = Array.isArray(value) && value.every((v) => typeof v !== 'object') ? value.join(', ') : typeof value === 'string' ? value : JSON.stringify(value);
    context.stdout.write(`${key.padEnd(width)}  ${shown(text)}\n`);
  }
  return exitStatus.ok;
}

/**
 * `hades agents renew ID [--now]`: asks the agent to renew its certificate (POST
 * /api/v1/agents/ID/renew), which it does within its renewal jitter, or at once with --now.
 */
export async function agentsRenew(context: CliContext, args: readonly string[], options: Readonly<Record<string, unknown>>): Promise<number> {
  const id = args[0] ?? '';
  if (id.trim() === '') throw new HadesError('HADES_ERR_CLI_MISSING_ARGUMENT', 'give the id of the agent to renew, as hades agents list shows it');
  const now = options['now'] === true;
  const client = await apiClient(options);
  const answer = (await named(client.post(`/api/v1/agents/${encodeURIComponent(id)}/renew${now ? '?now=true' : ''}`, undefined), `agent '${id}' in the fleet of ${client.base}`, 'hades agents list shows the agents and their ids')) as { sent: boolean; immediately?: boolean };
  // A server of an earlier release ignores now=true, and says nothing of it.
  if (now && answer.immediately !== true) context.stderr.write(`hades: the server at ${client.base} does not know --now (an earlier release): the agent renews within its renew_jitter_s\n`);
  const when = now ? 'at once, and reconnects with the new certificate at once (the old one is refused from then on)' : 'within its outputs.server.renew_jitter_s (300 s by default; a delay that spreads a fleet asked at once; --now for none)';
  if (options['json']) context.stdout.write(`${JSON.stringify({ id, sent: answer.sent, now })}\n`);
  else if (answer.sent) context.stdout.write(`agent ${id} is connected and was asked to renew its certificate: it does so ${when}\n`);
  else context.stdout.write(`agent ${id} is not connected: it will be asked to renew its certificate${now ? ' at once' : ''} when it next connects\n`);
  return exitStatus.ok;
}

interface CaRow {
  state: string;
  subject: string;
  sha256: string;
  not_before: string;
  not_after: string;
  agents: number;
}

const caLines = (cas: readonly CaRow[]): string[] => {
  const rows = [['state', 'sha256', 'not after', 'agents', 'subject'], ...cas.map((ca) => [ca.state, ca.sha256, ca.not_after, String(ca.agents), shown(ca.subject)])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((row) => row.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
};

/** `hades server ca status`: the CAs and the agents on each (GET /api/v1/pki/ca). */
export async function caStatus(context: CliContext, _args: readonly string[], options: Readonly<Record<string, unknown>>): Promise<number> {
  const client = await apiClient(options);
  const status = (await client.get('/api/v1/pki/ca')) as { rotation: string; issuing_sha256: string; server_certificate_ca_sha256: string; cas: CaRow[]; agents_on_old?: string[] };
  if (options['json']) {
    context.stdout.write(`${JSON.stringify(status)}\n`);
    return exitStatus.ok;
  }
  const out = [...caLines(status.cas), ''];
  if (status.rotation === 'in-progress') {
    const old = status.cas.find((ca) => ca.state === 'old');
    const left = old?.agents ?? 0;
    out.push(`rotation in progress: new certificates are issued by the new CA; the server certificate is still the old CA's.`);
    if (left > 0) out.push(`${left} agent${left === 1 ? ' is' : 's are'} still on the old CA${status.agents_on_old && status.agents_on_old.length > 0 ? ` (${status.agents_on_old.slice(0, 20).join(', ')}${left > 20 ? ', ...' : ''})` : ''}: connected agents renew within their renew_jitter_s, offline ones when they next connect.`);
    else out.push('no agent is on the old CA any more: retire it with hades server ca retire-old.');
  } else {
    out.push('no rotation in progress (hades server ca rotate starts one).');
  }
  context.stdout.write(`${out.join('\n')}\n`);
  return exitStatus.ok;
}

/** `hades server ca rotate` (POST /api/v1/pki/ca/rotate). */
export async function caRotate(context: CliContext, _args: readonly string[], options: Readonly<Record<string, unknown>>): Promise<number> {
  const client = await apiClient(options);
  const answer = (await client.post('/api/v1/pki/ca/rotate', undefined)) as { ca: CaRow; agents_on_old: number; notified: number };
  if (options['json']) {
    context.stdout.write(`${JSON.stringify(answer)}\n`);
    return exitStatus.ok;
  }
  context.stdout.write(
    [
      `new CA:     ${answer.ca.sha256} (${shown(answer.ca.subject)}, until ${answer.ca.not_after})`,
      `agents on the old CA: ${answer.agents_on_old} (${answer.notified} connected, told now; the others when they next connect)`,
      '',
      'Both CAs are trusted until the old one is retired. Agents store the new CA and renew under it',
      'within their renew_jitter_s. Follow them with hades server ca status; then hades server ca retire-old.',
      'New enrollment tokens still carry the old CA\'s fingerprint until then.',
      '',
    ].join('\n'),
  );
  return exitStatus.ok;
}

/** `hades server ca retire-old [--force]` (POST /api/v1/pki/ca/retire-old). */
export async function caRetireOld(context: CliContext, _args: readonly string[], options: Readonly<Record<string, unknown>>): Promise<number> {
  const client = await apiClient(options);
  const force = options['force'] === true;
  const answer = (await client.post(`/api/v1/pki/ca/retire-old${force ? '?force=true' : ''}`, undefined)) as { retired: CaRow; ca_sha256: string; forced: boolean; agents_left_behind: number; notified: number; disconnected: number };
  if (options['json']) {
    context.stdout.write(`${JSON.stringify(answer)}\n`);
    return exitStatus.ok;
  }
  const lines = [`retired CA: ${answer.retired.sha256}`, `CA in use:  ${answer.ca_sha256} (the server certificate is of it from now on; new enrollment tokens carry its fingerprint)`];
  if (answer.agents_left_behind > 0) lines.push(`${answer.agents_left_behind} agent${answer.agents_left_behind === 1 ? ' was' : 's were'} still on the retired CA: refused from now on (HADES_ERR_CA_RETIRED); enroll each again with a fresh token.`);
  lines.push('API clients given a CA certificate (--ca, HADES_API_CA) need the new one from now on: GET /api/v1/enroll/ca gives it.');
  context.stdout.write(`${lines.join('\n')}\n`);
  return exitStatus.ok;
}

/** Reads a dotted path of a JSON value as a string, or undefined. */
function text(value: unknown, ...keys: string[]): string | undefined {
  let current: unknown = value;
  for (const key of keys) {
    if (!current || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return typeof current === 'string' || typeof current === 'number' ? String(current) : undefined;
}

/** Reads a dotted path of a JSON value as a boolean (the flags of exec, file and socket events), or undefined. */
function flag(value: unknown, ...keys: string[]): boolean | undefined {
  let current: unknown = value;
  for (const key of keys) {
    if (!current || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return typeof current === 'boolean' ? current : undefined;
}

/** The words that tell apart events of one kind about the same thing (a socket's state, a failure). */
function outcomeWords(e: Record<string, unknown>, errno: string | undefined): string[] {
  const outcome = text(e, 'event', 'outcome');
  return [outcome === 'failure' ? 'failed' : undefined, errno].filter((x): x is string => x !== undefined);
}

/**
 * Socket events: the addresses, then what differs between the reports of one connection (a
 * non-blocking connect is reported when it is made, pending, then established or failed).
 */
function socketText(e: Record<string, unknown>, action: string): string {
  const source = text(e, 'source', 'ip') && action !== 'connect' ? `${text(e, 'source', 'ip')}:${text(e, 'source', 'port') ?? ''} ` : '';
  const state = text(e, 'hades', 'socket', 'state');
  const words = state !== undefined ? [state, text(e, 'hades', 'socket', 'errno')].filter((x) => x !== undefined) : outcomeWords(e, text(e, 'hades', 'socket', 'errno'));
  if (flag(e, 'hades', 'socket', 'connect_call') === false) words.push('without connect(2)');
  const ip = text(e, 'destination', 'ip');
  // A unix socket has a path, not an address and port.
  const to = ip !== undefined ? `${ip}:${text(e, 'destination', 'port') ?? ''}` : (text(e, 'destination', 'address') ?? '?');
  return [`${source}-> ${to}`, ...words].join(' ');
}

/** DNS: the question, and for an answer its code and addresses; the two events of a lookup differ. */
function dnsText(e: Record<string, unknown>): string {
  const type = text(e, 'dns', 'type') ?? 'query';
  const name = text(e, 'dns', 'question', 'name');
  const words = [type, name ?? '?', text(e, 'dns', 'question', 'type')];
  if (type === 'answer') {
    words.push(text(e, 'dns', 'response_code'));
    const resolved = (e['dns'] as { resolved_ip?: unknown } | undefined)?.resolved_ip;
    if (Array.isArray(resolved) && resolved.length > 0) words.push(`-> ${resolved.map(String).join(',')}`);
  }
  const malformed = text(e, 'hades', 'dns', 'malformed');
  if (malformed !== undefined) words.push(`malformed (${malformed})`);
  return words.filter((x) => x !== undefined).join(' ');
}

/** File events: the path and what was done to it (created, emptied, written, linked, renamed, its mode, its times). */
function fileText(e: Record<string, unknown>, action: string): string {
  const path = text(e, 'file', 'path') ?? '';
  const words: (string | undefined)[] = [];
  if (action === 'file_create') {
    const linkType = text(e, 'hades', 'file', 'link', 'type');
    if (linkType !== undefined) words.push(`${linkType} link to ${text(e, 'hades', 'file', 'link', 'target') ?? '?'}`);
    else if (flag(e, 'hades', 'file', 'truncated')) words.push('emptied');
    else if (flag(e, 'hades', 'file', 'written')) words.push('opened for writing');
    else if (flag(e, 'hades', 'file', 'created') === true) words.push('created');
    else if (flag(e, 'hades', 'file', 'created') === false) words.push('opened, not created');
  } else if (action === 'file_chmod') {
    const old = text(e, 'hades', 'file', 'old_mode');
    const mode = text(e, 'file', 'mode');
    if (mode !== undefined) words.push(old !== undefined ? `mode ${old} -> ${mode}` : `mode ${mode}`);
  } else if (action === 'file_times') {
    const mtime = text(e, 'file', 'mtime') ?? text(e, 'hades', 'file', 'mtime_seconds');
    if (mtime !== undefined) words.push(`modified time set to ${mtime}`);
    if (flag(e, 'hades', 'file', 'backdated')) words.push('(backdated)');
  } else if (action === 'file_open') words.push(text(e, 'hades', 'file', 'access'));
  words.push(...outcomeWords(e, text(e, 'hades', 'file', 'errno')));
  const old = action === 'file_rename' ? text(e, 'hades', 'file', 'old_path') : undefined;
  return [old !== undefined ? `${old} -> ${path}` : path, ...words].filter((x) => x !== undefined).join(' ');
}

/** One line per event for a person: time, host, action, process, and what matters for the action. */
export function formatEvent(e: Record<string, unknown>): string {
  const action = text(e, 'event', 'action') ?? '?';
  const who = text(e, 'process', 'pid') ? `${text(e, 'process', 'name') ?? '?'}(${text(e, 'process', 'pid')})` : '';
  const args = (e['process'] as { args?: unknown } | undefined)?.args;
  let what = '';
  if (action === 'exec') {
    const line = text(e, 'process', 'command_line') ?? (Array.isArray(args) ? args.join(' ') : text(e, 'process', 'executable')) ?? '';
    const ancestry = text(e, 'hades', 'ancestry');
    // A command line cut at the agent's argv limit says so: what follows it was not seen. One
    // the agent completed from /proc (hades.process.args_source: proc) is whole.
    const cut = flag(e, 'hades', 'process', 'args_truncated') && text(e, 'hades', 'process', 'args_source') !== 'proc' ? ` … (cut: ${text(e, 'hades', 'process', 'args_bytes') ?? '?'} bytes in all)` : '';
    what = ancestry ? `${line}${cut}  [${ancestry}]` : `${line}${cut}`;
  } else if (action === 'ssh_login' || action === 'sudo') {
    // Who, from where or as whom, and how it went.
    const target = text(e, 'user', 'target', 'name');
    what = [text(e, 'event', 'outcome'), text(e, 'user', 'name'), text(e, 'source', 'ip') ? `from ${text(e, 'source', 'ip')}` : undefined, target ? `as ${target}` : undefined, text(e, 'hades', 'sudo', 'command')].filter((x) => x !== undefined).join(' ');
  } else if (action === 'agent_gap') what = `${text(e, 'hades', 'gap', 'component') ?? '?'}: ${text(e, 'hades', 'gap', 'reason') ?? ''} (${text(e, 'hades', 'gap', 'start') ?? '?'} to ${text(e, 'hades', 'gap', 'end') ?? '?'})`;
  else if (action === 'agent_drop') what = `${text(e, 'hades', 'drops', 'component') ?? '?'}/${text(e, 'hades', 'drops', 'hook') ?? '?'}: ${text(e, 'hades', 'drops', 'reason') ?? '?'} ${text(e, 'hades', 'drops', 'count') ?? ''}`;
  else if (action === 'inventory_change') what = `${text(e, 'hades', 'inventory', 'table') ?? '?'} ${text(e, 'hades', 'inventory', 'change') ?? ''}`;
  else if (action === 'tamper') what = text(e, 'hades', 'tamper', 'path') ?? `signal ${text(e, 'hades', 'tamper', 'signal') ?? '?'} to pid ${text(e, 'hades', 'tamper', 'target_pid') ?? '?'}`;
  else if (action === 'ptrace') what = `${text(e, 'hades', 'ptrace', 'request') ?? '?'} ${text(e, 'hades', 'ptrace', 'target', 'name') ?? '?'}(${text(e, 'hades', 'ptrace', 'target', 'pid') ?? '?'})`;
  else if (action === 'module_load') what = text(e, 'hades', 'module', 'name') ?? '';
  else if (action === 'dns_query') what = dnsText(e);
  else if ((action === 'connect' || action === 'accept') && (text(e, 'destination', 'ip') ?? text(e, 'destination', 'address'))) what = socketText(e, action);
  else if (action === 'listen' && text(e, 'source', 'port')) what = [`${text(e, 'source', 'ip') ?? ''}:${text(e, 'source', 'port') ?? ''}`, ...outcomeWords(e, text(e, 'hades', 'socket', 'errno'))].join(' ');
  // A UDP decoy bound to every address does not learn which one a datagram was sent to: the port alone.
  else if (action === 'honeypot_touch' && !text(e, 'destination', 'ip')) what = `${text(e, 'source', 'ip') ?? '?'}:${text(e, 'source', 'port') ?? ''} -> *:${text(e, 'destination', 'port') ?? '?'}${text(e, 'network', 'transport') ? `/${text(e, 'network', 'transport') ?? ''}` : ''}`;
  else if (text(e, 'destination', 'ip')) what = `${text(e, 'source', 'ip') && action !== 'connect' ? `${text(e, 'source', 'ip')}:${text(e, 'source', 'port') ?? ''} ` : ''}-> ${text(e, 'destination', 'ip')}:${text(e, 'destination', 'port') ?? ''}`;
  else if (action.startsWith('file_') && text(e, 'file', 'path')) what = fileText(e, action);
  else if (text(e, 'file', 'path')) what = text(e, 'file', 'path') ?? '';
  // An event that stands for several (aggregated) says how many.
  const count = text(e, 'event', 'count');
  if (count !== undefined && Number(count) > 1) what = `${what} (x${count})`;
  return shown(`${text(e, '@timestamp') ?? ''}  ${text(e, 'host', 'name') ?? ''}  ${action}  ${who}  ${what}`.trimEnd());
}

/** How long `hades search` follows the pages of a search that stopped at the server's budget of examined events. */
const SEARCH_FOLLOW_MS = 30_000;

export async function search(context: CliContext, args: readonly string[], options: Readonly<Record<string, unknown>>): Promise<number> {
  for (const filter of args) {
    if (!/^[A-Za-z@_][^=^~"\\\p{Cc}]*(\^=|~=|=)/u.test(filter)) throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', `'${filter}' is not FIELD=VALUE (or FIELD^=PREFIX, FIELD~=TEXT)`);
  }
  const bounds = fixedTimeBounds(options, '1h');
  const limit = Number(limitOption(options, 10_000));
  const client = await apiClient(options);
  let cursor = typeof options['cursor'] === 'string' ? options['cursor'] : undefined;
  let shown = 0;
  let result: { events: Record<string, unknown>[]; next?: string; partial?: true };
  const started = Date.now();
  for (;;) {
    result = (await client.get('/api/v1/events', {
      since: bounds.since,
      until: bounds.until,
      action: typeof options['action'] === 'string' ? options['action'] : undefined,
      host: typeof options['host'] === 'string' ? options['host'] : undefined,
      cursor,
      limit: String(limit - shown),
      filter: args.length > 0 ? [...args] : undefined,
    })) as { events: Record<string, unknown>[]; next?: string; partial?: true };
    for (const event of result.events) context.stdout.write(options['json'] ? `${JSON.stringify(event)}\n` : `${formatEvent(event)}\n`);
    shown += result.events.length;
    // A page that stopped at the server's budget of examined events
    // is followed, for up to SEARCH_FOLLOW_MS, until the limit is reached.
    if (!result.partial || result.next === undefined || shown >= limit || Date.now() - started > SEARCH_FOLLOW_MS) break;
    cursor = result.next;
  }
  // On stderr, so that the events (or NDJSON) on stdout stay clean to pipe.
  // The next page keeps this window: a relative --since read again later would have moved.
  const next = result.next ? `${bounds.again ? `${bounds.again} ` : ''}--cursor ${result.next}` : '';
  if (result.next && result.partial) context.stderr.write(`hades: the search has not reached the start of the window yet (each request examines a bounded number of events and answers a few MiB at most): go on with the same command and ${next}, or narrow it with --since, --host, --action or an equality on an indexed field\n`);
  else if (result.next) context.stderr.write(`hades: more events: the next page is the same command with ${next} (or narrow the search, or raise --limit)\n`);
  if (!options['json'] && shown === 0 && !result.next) context.stderr.write('hades: no event matches in that window\n');
  return exitStatus.ok;
}

interface RulesState {
  loaded: string;
  rules: number;
  enabled: number;
  problems: { code: string; severity: string; file: string; line?: number; column?: number; message: string }[];
}

/**
 * `hades rules reload` (POST /api/v1/rules/reload, admin): the server loads its rule files
 * again, as SIGHUP does. New rules with errors are refused as a whole (HADES_ERR_RULES_RELOAD,
 * every problem with its file and line) and the running rules stay.
 */
export async function rulesReload(context: CliContext, _args: readonly string[], options: Readonly<Record<string, unknown>>): Promise<number> {
  const client = await apiClient(options);
  const state = (await client.post('/api/v1/rules/reload', undefined)) as RulesState;
  if (options['json']) {
    context.stdout.write(`${JSON.stringify(state)}\n`);
    return exitStatus.ok;
  }
  const lines = [`rules reloaded: ${state.rules} rules (${state.enabled} enabled), loaded ${state.loaded}`];
  for (const p of state.problems) lines.push(`  ${p.severity} ${p.code}: ${shown(p.file)}${p.line === undefined ? '' : `:${p.line}${p.column === undefined ? '' : `:${p.column}`}`}: ${shown(p.message)}`);
  context.stdout.write(`${lines.join('\n')}\n`);
  return exitStatus.ok;
}
