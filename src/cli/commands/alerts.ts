/**
 * The alert commands, all through the server's API as a person would use it:
 * - `hades alerts list`: the alerts the server's rule engine raised, newest first, for a person
 * (one line each) or as NDJSON (`--json`): one alert document per line (docs/alerts.md): its rule
 * with severity, `@timestamp`, host, the process of its triggering event with the ancestry, and
 * the triggering events themselves.
 * - `hades alerts show ID`, `hades alerts triage ID --status ... --assignee ... [--revision N]`,
 *   `hades alerts comment ID TEXT`: one alert, its triage and its comments.
 * - `hades alerts suppress`, `hades alerts suppressions`, `hades alerts unsuppress ID`.
 */
import { HadesError } from '../../common/errors.js';
import { apiClient, fixedTimeBounds, limitOption, type ApiClient } from '../api-client.js';
import { exitStatus, type CliContext } from '../context.js';
import { didYouMean, SEVERITIES, suggest } from '../../rules/index.js';
import { ALERT_STATUSES } from '../../server/alerts/types.js';
import { shown } from '../terminal.js';
import { formatEvent } from './remote.js';

/** Refuses a value of a flag that is not one of `allowed` (each of a comma-separated list with `list`), before anything is sent. */
function checkOneOf(flag: string, value: string | undefined, allowed: readonly string[], list = false): void {
  if (value === undefined) return;
  for (const item of list ? value.split(',').map((v) => v.trim()) : [value]) {
    if (!allowed.includes(item)) throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', `${flag} '${shown(item)}' is not one of ${allowed.join(', ')}${didYouMean(suggest(item, allowed))}`);
  }
}

interface AlertLine {
  id: string;
  '@timestamp': string;
  last_seen: string;
  count: number;
  status: string;
  assignee?: string | null;
  /** The triage revision (the API's ETag): what `triage --revision` takes. */
  revision?: number;
  rule: { id: string; title: string; severity: string; tags: string[]; type: string };
  host: { id: string; name: string; reported_name?: string; cmdb?: unknown };
  message: string;
  process?: Record<string, unknown>;
}

const opt = (options: Readonly<Record<string, unknown>>, key: string): string | undefined => (typeof options[key] === 'string' ? options[key] : undefined);

/**
 * One line for a person: the alert's id (what show, triage and comment take), time, severity,
 * status, host, rule, the count when folded and the assignee, then the message, which may be
 * long (a command line): what a person scans a list by comes before it.
 */
export function formatAlert(alert: AlertLine): string {
  const count = alert.count > 1 ? ` x${alert.count}` : '';
  const assignee = alert.assignee ? ` @${alert.assignee}` : '';
  return shown(`${alert.id}  ${alert['@timestamp']}  ${alert.rule.severity.toUpperCase().padEnd(8)}  ${alert.status.padEnd(14)}  ${alert.host.name}  ${alert.rule.id}${count}${assignee}  ${alert.message}`);
}

/**
 * For an empty answer to --rule: a note when no loaded rule has that id (a misspelling, or a
 * rule since removed, whose old alerts would still be listed), with the closest id.
 */
async function unknownRule(client: ApiClient, rule: string | undefined): Promise<string> {
  if (rule === undefined) return '';
  const loaded = (await client.get('/api/v1/rules')) as { list?: { id: string }[] };
  const ids = (loaded.list ?? []).map((r) => r.id);
  return ids.includes(rule) ? '' : `; no loaded rule has the id '${shown(rule)}'${didYouMean(suggest(rule, ids))}`;
}

/**
 * For an empty answer to --host: a note when no agent has that id or enrolled with that name
 * (alerts are listed by the name an agent enrolled with), with the closest name, or the agent
 * that calls itself so now.
 */
async function unknownHost(client: ApiClient, host: string | undefined): Promise<string> {
  if (host === undefined) return '';
  const { agents } = (await client.get('/api/v1/agents')) as { agents?: { id: string; hostname: string; enrolled_hostname?: string }[] };
  const fleet = (agents ?? []).map((a) => ({ id: a.id, hostname: a.hostname, enrolled: a.enrolled_hostname ?? a.hostname }));
  if (fleet.some((a) => a.id === host || a.enrolled === host)) return '';
  const renamed = fleet.find((a) => a.hostname === host);
  if (renamed !== undefined) return `; agent ${renamed.id} calls itself '${shown(host)}' but enrolled as '${shown(renamed.enrolled)}': its alerts are under that name or its id`;
  return `; no agent has the id or enrolled with the name '${shown(host)}'${didYouMean(suggest(host, new Set(fleet.map((a) => a.enrolled))))}`;
}

export async function alertsList(context: CliContext, _args: readonly string[], options: Readonly<Record<string, unknown>>): Promise<number> {
  const limit = limitOption(options, 10_000);
  checkOneOf('--severity', opt(options, 'severity'), SEVERITIES);
  checkOneOf('--status', opt(options, 'status'), ALERT_STATUSES, true);
  const bounds = fixedTimeBounds(options, '24h');
  const client = await apiClient(options);
  const result = (await client.get('/api/v1/alerts', {
    since: bounds.since,
    until: bounds.until,
    severity: opt(options, 'severity'),
    status: opt(options, 'status'),
    rule: opt(options, 'rule'),
    host: opt(options, 'host'),
    cursor: opt(options, 'cursor'),
    limit,
  })) as { alerts: AlertLine[]; next?: string };
  for (const alert of result.alerts) context.stdout.write(options['json'] ? `${JSON.stringify(alert)}\n` : `${formatAlert(alert)}\n`);
  if (!options['json'] && result.alerts.length === 0) context.stderr.write(`hades: no alert in that window${await unknownRule(client, opt(options, 'rule'))}${await unknownHost(client, opt(options, 'host'))}\n`);
  if (result.next) context.stderr.write(`hades: more alerts: the next page is the same command with ${bounds.again ? `${bounds.again} ` : ''}--cursor ${result.next} (or narrow the search, or raise --limit)\n`);
  return exitStatus.ok;
}

/** An alert id as the server gives them (a UUID); checked before any request. */
function alertId(args: readonly string[]): string {
  const id = args[0] ?? '';
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id)) throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', `'${id}' is not an alert id (a UUID, as hades alerts list --json shows)`);
  return id;
}

interface Comment {
  time: string;
  author: string;
  text: string;
}

/** One triage of an alert, as GET /api/v1/alerts/ID gives its `history` (from the audit log). */
interface Triage {
  time: string;
  actor: string;
  status?: string;
  assignee?: string | null;
  from?: { status?: string; assignee?: string | null };
  revision?: number;
}

/** How far around an alert's events `show` suggests to search the host's others. */
const PIVOT_MARGIN_MS = 5 * 60_000;

/** A time of the alert moved by `ms`, as ISO text for --since and --until (undefined when the time is not one). */
function shifted(time: string, ms: number): string | undefined {
  const t = Date.parse(time);
  return Number.isFinite(t) ? new Date(t + ms).toISOString() : undefined;
}

/** What one triage changed, for a person: `new -> acknowledged, assigned to ana`. */
function triageText(t: Triage): string {
  const parts: string[] = [];
  if (t.status !== undefined) parts.push(`${t.from?.status ?? '?'} -> ${t.status}`);
  if (t.assignee !== undefined) parts.push(t.assignee === null ? 'unassigned' : `assigned to ${t.assignee}`);
  return `${t.time} ${t.actor}: ${parts.join(', ') || 'no change'}${t.revision === undefined ? '' : ` (revision ${t.revision})`}`;
}

/**
 * The lines `hades alerts show` prints: the alert, why it fired (rule, process and ancestry, each
 * triggering event on a line of its own, as `hades search` prints them), the host, the commands
 * that search the host's other events around it (all, the process's own, its children's), its
 * triage history and its comments. Every
 * line goes through `shown`: what an event or a comment holds cannot forge a line.
 */
/** An alert about the same process tree, as GET /api/v1/alerts/ID gives it in `related`. */
interface Related {
  id: string;
  '@timestamp': string;
  rule: { id: string; severity: string };
  status: string;
  message: string;
  relation: 'same_process' | 'upstream' | 'downstream';
  process: { entity_id: string; pid?: number; name?: string };
}

const RELATION_TEXT: Readonly<Record<Related['relation'], string>> = {
  upstream: 'its process started this one\'s:',
  same_process: 'about the same process:',
  downstream: 'this one\'s process started its:',
};

export function alertDetail(alert: AlertLine & { events: Record<string, unknown>[]; comments: Comment[]; history?: Triage[]; related?: Related[] }): string[] {
  const ancestors = (alert.process?.['ancestors'] as { pid?: number; name?: string }[] | undefined) ?? [];
  const lines = [
    formatAlert(alert),
    `  rule:     ${alert.rule.id}: ${alert.rule.title} (${alert.rule.type}) [${alert.rule.tags.join(', ')}]`,
    `  status:   ${alert.status}${alert.assignee ? `, assigned to ${alert.assignee}` : ''}; ${alert.count} match(es), last ${alert.last_seen}${alert.revision === undefined ? '' : `; revision ${alert.revision}`}`,
    `  host:     ${alert.host.name} (${alert.host.id})${alert.host.reported_name === undefined ? '' : `, calling itself ${alert.host.reported_name}`}${alert.host.cmdb ? ` ${JSON.stringify(alert.host.cmdb)}` : ''}`,
  ];
  if (alert.process) {
    const p = alert.process;
    const text = (key: string): string | undefined => (typeof p[key] === 'string' || typeof p[key] === 'number' ? String(p[key]) : undefined);
    lines.push(`  process:  ${text('command_line') ?? text('executable') ?? text('name') ?? '?'} (pid ${text('pid') ?? '?'}${text('entity_id') ? `, entity ${text('entity_id')}` : ''})`);
    if (ancestors.length > 0) lines.push(`  ancestry: ${ancestors.map((a) => `${a.name ?? '?'}(${a.pid ?? '?'})`).join(' < ')}`);
  }
  lines.push(`  events:   ${alert.events.length}${alert.count > alert.events.length ? ` of ${alert.count} matches (the first ones kept)` : ''}, oldest first (--json prints them whole)`);
  for (const e of alert.events) lines.push(`    ${formatEvent(e)}`);
  // The pivot: the host's other events around the alert's, by the agent's id (a host cannot claim it).
  const since = shifted(alert['@timestamp'], -PIVOT_MARGIN_MS);
  const until = shifted(alert.last_seen, PIVOT_MARGIN_MS);
  if (since !== undefined && until !== undefined) {
    const search = `hades search --host ${alert.host.id} --since ${since} --until ${until}`;
    lines.push(`  around:   ${search}`);
    // The process's own events (connections, files) and what it started (a reverse shell's commands).
    const entity = alert.process?.['entity_id'];
    if (typeof entity === 'string' && /^[A-Za-z0-9._:-]+$/.test(entity)) lines.push(`  its own:  ${search} process.entity_id=${entity}`, `  children: ${search} process.parent.entity_id=${entity}`);
  }
  // The same intrusion seen by other rules: what led to this process and what it went on to do.
  for (const r of alert.related ?? []) {
    const p = r.process;
    lines.push(`  related:  ${r.id} ${r['@timestamp']} ${r.rule.severity} ${r.rule.id} [${r.status}] ${RELATION_TEXT[r.relation] ?? r.relation} ${p.name ?? '?'}(${p.pid ?? '?'}): ${r.message}`);
  }
  for (const t of alert.history ?? []) lines.push(`  triage:   ${triageText(t)}`);
  for (const c of alert.comments) lines.push(`  comment:  ${c.time} ${c.author}: ${c.text}`);
  // Each entry is one line: whatever a value holds (a comment's newlines) stays on it, escaped.
  return lines.map(shown);
}

/** `hades alerts show ID`: the alert, why it fired, where to look around it, its triage and comments. */
export async function alertsShow(context: CliContext, args: readonly string[], options: Readonly<Record<string, unknown>>): Promise<number> {
  const id = alertId(args);
  const client = await apiClient(options);
  const alert = (await client.get(`/api/v1/alerts/${id}`)) as Parameters<typeof alertDetail>[0];
  if (options['json']) {
    context.stdout.write(`${JSON.stringify(alert)}\n`);
    return exitStatus.ok;
  }
  context.stdout.write(`${alertDetail(alert).join('\n')}\n`);
  return exitStatus.ok;
}

/**
 * `hades alerts triage ID [--status S] [--assignee NAME | --unassign] [--revision N]`.
 *
 * The command does not read the alert first to send If-Match on its own: what a person decided
 * on is what they saw earlier (`show`, `list`), and a revision read here, an instant before the
 * change, would only guard that instant. `--revision` sends the revision they saw (show prints
 * it; `--json` has it): a colleague's triage since then refuses the change
 * (HADES_ERR_ALERT_CHANGED). Without it the last triage wins, as before.
 */
export async function alertsTriage(context: CliContext, args: readonly string[], options: Readonly<Record<string, unknown>>): Promise<number> {
  const id = alertId(args);
  const change: Record<string, unknown> = {};
  const status = opt(options, 'status');
  checkOneOf('--status', status, ALERT_STATUSES);
  if (status !== undefined) change['status'] = status;
  const assignee = opt(options, 'assignee');
  // The server refuses these too; said here in the flag's words, before anything is sent.
  if (assignee !== undefined && (assignee.trim() === '' || /[\p{Cc}\p{Cs}]/u.test(assignee))) throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', '--assignee must be a name: not blank, without control characters (--unassign unassigns)');
  if (assignee !== undefined && options['unassign']) throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', 'give --assignee or --unassign, not both');
  if (assignee !== undefined) change['assignee'] = assignee;
  if (options['unassign']) change['assignee'] = null;
  if (Object.keys(change).length === 0) throw new HadesError('HADES_ERR_CLI_MISSING_ARGUMENT', 'give --status, --assignee or --unassign');
  const revision = opt(options, 'revision');
  if (revision !== undefined && !/^[1-9][0-9]{0,14}$/.test(revision)) throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', `--revision must be the alert's revision, a whole number from 1 (as hades alerts show prints it), not '${revision}'`);
  const client = await apiClient(options);
  const alert = (await client.patch(`/api/v1/alerts/${id}`, change, revision === undefined ? {} : { 'if-match': `"${revision}"` })) as AlertLine;
  context.stdout.write(`${formatAlert(alert)}\n`);
  return exitStatus.ok;
}

/** `hades alerts comment ID TEXT`. */
export async function alertsComment(context: CliContext, args: readonly string[], options: Readonly<Record<string, unknown>>): Promise<number> {
  const id = alertId(args);
  const text = args.slice(1).join(' ');
  if (text.trim() === '') throw new HadesError('HADES_ERR_CLI_MISSING_ARGUMENT', 'give the comment\'s text');
  const client = await apiClient(options);
  const comment = (await client.post(`/api/v1/alerts/${id}/comments`, { text })) as Comment;
  context.stdout.write(`${shown(`${comment.time} ${comment.author}: ${comment.text}`)}\n`);
  return exitStatus.ok;
}

interface SuppressionLine {
  id: string;
  rule_id: string;
  host: string | null;
  field: string | null;
  value: string | null;
  until: string;
  reason: string;
  created_by: string;
  hits: number;
}

const formatSuppression = (s: SuppressionLine): string =>
  shown(`${s.id}  rule ${s.rule_id}${s.host ? ` on ${s.host}` : ''}${s.field ? ` where ${s.field} = ${JSON.stringify(s.value)}` : ''} until ${s.until}; ${s.hits} hit(s); by ${s.created_by}: ${s.reason}`);

/**
 * The event that raised an alert: the one of the process the alert shows (a correlation's
 * completing event), else its first. Not the last of its events: matches folded into the alert
 * later are appended, and a suppression made from one of them would not cover what was shown.
 */
export function raisingEvent(alert: { events: Record<string, unknown>[]; process?: Record<string, unknown> }): unknown {
  const entity = alert.process?.['entity_id'];
  const ofProcess = entity === undefined ? undefined : alert.events.find((e) => (e['process'] as Record<string, unknown> | undefined)?.['entity_id'] === entity);
  return ofProcess ?? alert.events[0];
}

/**
 * The value of a dotted field in the event that raised an alert (raisingEvent), as a
 * suppression compares it: text, or a number or boolean as text; a field missing or holding
 * several values is refused, saying so.
 */
function valueIn(alert: { events: Record<string, unknown>[]; process?: Record<string, unknown> }, field: string): string {
  let v: unknown = raisingEvent(alert);
  for (const key of field.split('.')) v = typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>)[key] : undefined;
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', `${field} holds several values in the alert's event: name one with --value, or suppress by another field (process.command_line for process.args)`);
  throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', `the alert's event has no ${field}${v === undefined ? '' : ' value to compare'}: hades alerts show ID --json shows its fields`);
}

/**
 * `hades alerts suppress --rule R [--host H] [--field F --value V] --for D --reason TEXT`, or
 * `--like ALERT`: its rule, its host (the agent's id), and with --field the value the field has
 * in its event, unless --rule, --host or --value say otherwise.
 */
export async function alertsSuppress(context: CliContext, _args: readonly string[], options: Readonly<Record<string, unknown>>): Promise<number> {
  const like = opt(options, 'like');
  const duration = opt(options, 'for');
  const reason = opt(options, 'reason');
  if ((opt(options, 'rule') === undefined && like === undefined) || duration === undefined || reason === undefined) {
    throw new HadesError('HADES_ERR_CLI_MISSING_ARGUMENT', "give --rule (or '*') or --like ALERT_ID, --for (e.g. 7d) and --reason");
  }
  // The server's own check would answer in its schema's words (body/for must match pattern ...).
  if (!/^[0-9]{1,9}[smhd]$/.test(duration)) throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', `--for must be a duration: a whole number and s, m, h or d (30m, 12h, 7d), not '${duration}'`);
  if (reason.trim() === '') throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', '--reason must say why (it is kept in the audit log)');
  const likeId = like === undefined ? undefined : alertId([like]);
  const field = opt(options, 'field');
  if (opt(options, 'value') !== undefined && field === undefined) throw new HadesError('HADES_ERR_CLI_MISSING_ARGUMENT', '--value goes with --field: the event field that must have it');
  const client = await apiClient(options);
  const alert = likeId === undefined ? undefined : ((await client.get(`/api/v1/alerts/${likeId}`)) as AlertLine & { events: Record<string, unknown>[]; process?: Record<string, unknown> });
  const rule = opt(options, 'rule') ?? alert!.rule.id;
  const host = opt(options, 'host') ?? alert?.host.id;
  const value = opt(options, 'value') ?? (alert !== undefined && field !== undefined ? valueIn(alert, field) : undefined);
  const created = (await client.post('/api/v1/suppressions', { rule, for: duration, reason, ...(host ? { host } : {}), ...(field !== undefined ? { field } : {}), ...(value !== undefined ? { value } : {}) })) as SuppressionLine;
  context.stdout.write(`${formatSuppression(created)}\n`);
  return exitStatus.ok;
}

/** `hades alerts suppressions [--expired] [--json]`. */
export async function alertsSuppressions(context: CliContext, _args: readonly string[], options: Readonly<Record<string, unknown>>): Promise<number> {
  const client = await apiClient(options);
  const { suppressions } = (await client.get('/api/v1/suppressions', { expired: options['expired'] ? 'true' : undefined })) as { suppressions: SuppressionLine[] };
  for (const s of suppressions) context.stdout.write(options['json'] ? `${JSON.stringify(s)}\n` : `${formatSuppression(s)}\n`);
  if (!options['json'] && suppressions.length === 0) context.stderr.write('hades: no suppression in force\n');
  return exitStatus.ok;
}

/** `hades alerts unsuppress ID`. */
export async function alertsUnsuppress(context: CliContext, args: readonly string[], options: Readonly<Record<string, unknown>>): Promise<number> {
  const id = args[0] ?? '';
  if (id === '') throw new HadesError('HADES_ERR_CLI_MISSING_ARGUMENT', 'give the suppression\'s id (hades alerts suppressions lists them)');
  const client = await apiClient(options);
  await client.delete(`/api/v1/suppressions/${encodeURIComponent(id)}`);
  context.stdout.write(`suppression ${id} lifted\n`);
  return exitStatus.ok;
}
