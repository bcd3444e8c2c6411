/**
 * `hades alerts list`: the alerts the server's rule engine raised, newest first, for a person
 * (one line each) or as NDJSON (`--json`): one alert document per line (docs/alerts.md): its rule
 * with severity, `@timestamp`, host, the process of its triggering event with the ancestry, and
 * the triggering events themselves.
 */
import { HadesError } from '../../common/errors.js';
import { apiClient } from '../api-client.js';
import { exitStatus, type CliContext } from '../context.js';

interface AlertLine {
  id: string;
  '@timestamp': string;
  last_seen: string;
  count: number;
  status: string;
  assignee?: string | null;
  rule: { id: string; title: string; severity: string; tags: string[]; type: string };
  host: { id: string; name: string; cmdb?: unknown };
  message: string;
  process?: Record<string, unknown>;
}

const opt = (options: Readonly<Record<string, unknown>>, key: string): string | undefined => (typeof options[key] === 'string' ? options[key] : undefined);

/** One line for a person: time, severity, host, rule, message, and the count when folded. */
export function formatAlert(alert: AlertLine): string {
  const count = alert.count > 1 ? ` (x${alert.count})` : '';
  const status = alert.status === 'new' ? '' : ` [${alert.status}]`;
  return `${alert['@timestamp']}  ${alert.rule.severity.toUpperCase().padEnd(8)}  ${alert.host.name}  ${alert.rule.id}  ${alert.message}${count}${status}`;
}

export async function alertsList(context: CliContext, _args: readonly string[], options: Readonly<Record<string, unknown>>): Promise<number> {
  const limit = opt(options, 'limit') ?? '100';
  if (!/^\d{1,5}$/.test(limit) || Number(limit) < 1 || Number(limit) > 10_000) throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', `--limit must be a number from 1 to 10000 (got '${limit}')`);
  const client = await apiClient(options);
  const result = (await client.get('/api/v1/alerts', {
    since: opt(options, 'since') ?? '24h',
    severity: opt(options, 'severity'),
    status: opt(options, 'status'),
    rule: opt(options, 'rule'),
    host: opt(options, 'host'),
    limit,
  })) as { alerts: AlertLine[]; next?: string };
  for (const alert of result.alerts) context.stdout.write(options['json'] ? `${JSON.stringify(alert)}\n` : `${formatAlert(alert)}\n`);
  if (!options['json'] && result.alerts.length === 0) context.stderr.write('hades: no alert in that window\n');
  if (!options['json'] && result.next) context.stderr.write('hades: more alerts: narrow the search or raise --limit\n');
  return exitStatus.ok;
}
