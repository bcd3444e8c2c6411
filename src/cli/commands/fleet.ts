/**
 * `hades fleet query "SQL"`: runs SQL over the inventory tables of a set of agents through the
 * server, waits for the answers until the timeout, and prints them per host: a table per host for
 * a person, or NDJSON (`--json`: one line per row with `host` and `agent_id`, then one line per
 * host that failed or did not answer, with its error). While it waits it asks for the summary
 * alone; then it reads the answers a page of hosts at a time (`next`), printing each page as it
 * comes, so that neither the server nor this process holds a large fleet's answer whole.
 */
import { errorCatalog, HadesError } from '../../common/errors.js';
import { apiClient } from '../api-client.js';
import { exitStatus, type CliContext } from '../context.js';
import { shown } from '../terminal.js';

interface HostResult {
  agent_id: string;
  hostname: string;
  status: 'pending' | 'done' | 'failed' | 'expired';
  rows?: Record<string, unknown>[];
  truncated?: boolean;
  error?: { code: string; message: string };
}
interface QueryResult {
  id: string;
  complete: boolean;
  summary: { agents: number; done: number; failed: number; pending: number; expired: number; rows: number };
  hosts: HostResult[];
  next?: string;
}

const POLL_MS = 250;


const isInputCode = (code: string): boolean => (errorCatalog as Record<string, { kind: string } | undefined>)[code]?.kind === 'input';

/** Rows as aligned columns. */
export function formatRows(rows: readonly Record<string, unknown>[]): string[] {
  if (rows.length === 0) return ['(no rows)'];
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  // Cells and column names hold what hosts report (process names, command lines): shown
  // escaped, one line each; JSON too, which leaves C1 and direction characters as they are.
  const cell = (v: unknown): string => (v === null || v === undefined ? '' : typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint' ? String(v) : shown(typeof v === 'string' ? v : JSON.stringify(v)));
  const names = columns.map(shown);
  const cells = rows.map((r) => columns.map((c) => cell(r[c])));
  const widths = columns.map((_, i) => Math.min(60, Math.max(names[i]!.length, ...cells.map((r) => r[i]!.length))));
  const line = (values: string[]) => values.map((v, i) => (v.length > widths[i]! ? `${v.slice(0, widths[i]! - 1)}…` : v.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(names), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)];
}

/**
 * A row of `--json` with the host that answered it: `host` and `agent_id` say who answered,
 * whatever the row holds. A column of the same name (logged_in_users.host, the remote end of a
 * login; or anything a host puts in its answer) is kept as `row.host`, `row.agent_id`.
 */
function attributed(host: { hostname: string; agent_id: string }, row: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = { host: host.hostname, agent_id: host.agent_id };
  for (const [column, value] of Object.entries(row)) {
    let name = column;
    while (Object.hasOwn(out, name)) name = `row.${name}`;
    // Defined, not assigned: a column named __proto__ stays a column.
    Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

export async function fleetQuery(context: CliContext, args: readonly string[], options: Readonly<Record<string, unknown>>): Promise<number> {
  const sql = args[0];
  if (sql === undefined || sql.trim() === '') throw new HadesError('HADES_ERR_CLI_MISSING_ARGUMENT', 'give the SQL to run, e.g. hades fleet query "SELECT * FROM listening_ports"');
  const timeoutText = typeof options['timeout'] === 'string' ? options['timeout'] : '60';
  const timeoutS = Number(timeoutText);
  if (!Number.isInteger(timeoutS) || timeoutS < 1 || timeoutS > 3600) throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', `--timeout must be whole seconds from 1 to 3600 (got '${timeoutText}')`);
  const pageText = typeof options['page'] === 'string' ? options['page'] : '100';
  const page = Number(pageText);
  // Hosts per page (the server also ends a page at its byte bound).
  if (!Number.isInteger(page) || page < 1 || page > 1000) throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', `--page must be a whole number of hosts from 1 to 1000 (got '${pageText}')`);
  const agents = Array.isArray(options['agent']) && options['agent'].length > 0 ? (options['agent'] as string[]) : undefined;
  const group = typeof options['group'] === 'string' ? options['group'] : undefined;
  const client = await apiClient(options);
  const created = (await client.post('/api/v1/queries', { sql, timeout_s: timeoutS, ...(agents ? { agents } : {}), ...(group ? { group } : {}) })) as QueryResult;
  let result = created;
  const until = Date.now() + timeoutS * 1000 + 2000;
  const base = `/api/v1/queries/${encodeURIComponent(created.id)}`;
  while (!result.complete && Date.now() < until && !context.signal.aborted) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    result = (await client.get(`${base}?limit=0`)) as QueryResult;
  }
  let refused = true;
  let cursor: string | undefined;
  do {
    result = (await client.get(`${base}?limit=${page}${cursor === undefined ? '' : `&cursor=${encodeURIComponent(cursor)}`}`)) as QueryResult;
    printHosts(context, result.hosts, Boolean(options['json']));
    // Every host refused the query itself (bad SQL, a write, an unknown table): the person's mistake.
    refused &&= result.hosts.every((h) => h.status === 'failed' && h.error !== undefined && isInputCode(h.error.code));
    cursor = result.next;
  } while (cursor !== undefined && !context.signal.aborted);
  const s = result.summary;
  context.stderr.write(`hades: query ${result.id}: ${s.done} of ${s.agents} host(s) answered (${s.rows} rows), ${s.failed} failed, ${s.expired + s.pending} without an answer\n`);
  if (s.failed + s.expired + s.pending === 0) return exitStatus.ok;
  // Otherwise partial results are still results: printed, with status 3 so that scripts notice the gap.
  return refused ? exitStatus.input : exitStatus.environment;
}

function printHosts(context: CliContext, hosts: readonly HostResult[], json: boolean): void {
  for (const host of hosts) {
    if (json) {
      if (host.status === 'done') for (const row of host.rows ?? []) context.stdout.write(`${JSON.stringify(attributed(host, row))}\n`);
      else context.stdout.write(`${JSON.stringify({ host: host.hostname, agent_id: host.agent_id, status: host.status, error: host.error ?? null })}\n`);
      continue;
    }
    const head = shown(`== ${host.hostname} (${host.agent_id}): ${host.status}${host.truncated ? ', truncated' : ''}`);
    const body = host.status === 'done' ? formatRows(host.rows ?? []) : [host.error ? shown(`${host.error.code}: ${host.error.message}`) : 'no answer yet'];
    context.stdout.write(`${[head, ...body, ''].join('\n')}\n`);
  }
}
