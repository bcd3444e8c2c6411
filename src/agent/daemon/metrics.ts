/**
 * The agent's health endpoint, on loopback only: `/metrics` in the Prometheus text format,
 * `/status` as JSON (what `hades agent status` prints) and `/healthz`. Metrics are computed
 * from one status snapshot per scrape, so a scrape costs nothing between scrapes.
 *
 * The text format is written here rather than with prom-client: every metric is read from the
 * snapshot at scrape time (no registry of live counters is needed), and loading prom-client
 * cost the idle agent about 5 MB of heap, a sixteenth of its memory target.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HadesError } from '../../common/errors.js';
import type { AgentStatus } from './agent.js';

type Labels = Readonly<Record<string, string>>;

interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: 'gauge' | 'counter';
  readonly read: (s: AgentStatus) => readonly (readonly [Labels, number])[];
}

/** Connections served at once; more are closed as they come. */
const MAX_CONNECTIONS = 32;

/** A Host header that names this machine's loopback (or none: only browsers must send one). */
function loopbackHost(host: string | undefined): boolean {
  if (host === undefined) return true;
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.split(':')[0];
  return name === 'localhost' || name === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name ?? '');
}

const escapeLabel = (value: string) => value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const escapeHelp = (value: string) => value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
const formatValue = (value: number) => (Number.isNaN(value) ? 'NaN' : value === Infinity ? '+Inf' : value === -Infinity ? '-Inf' : String(value));

/** The Prometheus text exposition (format 0.0.4) of the families, read from one snapshot. */
export function exposition(families: readonly Family[], status: AgentStatus): string {
  const out: string[] = [];
  for (const family of families) {
    out.push(`# HELP ${family.name} ${escapeHelp(family.help)}`, `# TYPE ${family.name} ${family.type}`);
    for (const [labels, value] of family.read(status)) {
      const pairs = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
      out.push(`${family.name}${pairs.length > 0 ? `{${pairs.join(',')}}` : ''} ${formatValue(value)}`);
    }
  }
  return `${out.join('\n')}\n`;
}

/** Parses `host:port` and refuses anything but a loopback address. */
export function parseListen(listen: string): { host: string; port: number } {
  const match = /^(\[::1\]|localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}):(\d{1,5})$/.exec(listen);
  const port = Number(match?.[2]);
  if (!match || port > 65535) throw new HadesError('HADES_ERR_METRICS_LISTEN', `metrics.listen must be a loopback address and port, e.g. 127.0.0.1:9479 (got ${JSON.stringify(listen)})`);
  return { host: match[1] === '[::1]' ? '::1' : match[1]!, port };
}

export function agentMetrics(version: string): Family[] {
  const gauge = (name: string, help: string, read: Family['read']): Family => ({ name, help, type: 'gauge', read });
  const counter = (name: string, help: string, read: Family['read']): Family => ({ name, help, type: 'counter', read });
  return [
    gauge('hades_agent_info', 'The agent; its version is a label.', () => [[{ version }, 1]]),
    gauge('hades_agent_uptime_seconds', 'Seconds since the agent started.', (s) => [[{}, s.uptimeS]]),
    gauge('hades_agent_cpu_percent', 'CPU use of the agent process over the last second, percent of one core.', (s) => [[{}, s.cpuPercent]]),
    gauge('hades_agent_resident_memory_bytes', 'Resident memory of the agent process.', (s) => [[{}, s.memoryRssBytes]]),
    gauge('hades_agent_memory_budget_bytes', 'Memory budget of the agent process.', (s) => [[{}, s.memoryBudgetBytes]]),
    gauge('hades_agent_open_fds', 'Open file descriptors of the agent process.', (s) => [[{}, s.openFds]]),
    counter('hades_events_in_total', 'Events that entered the pipeline, by action.', (s) => Object.entries(s.pipeline.byAction).map(([action, n]) => [{ action }, n] as const)),
    counter('hades_output_events_total', 'Events an output delivered (acknowledged, for spooled outputs).', (s) => s.pipeline.outputs.map((o) => [{ output: o.name }, o.out] as const)),
    gauge('hades_output_backlog_at_start_events', "Events a spooled output found in its spool when it started (written by the agent's previous run): delivered with the rest, never counted as in.", (s) => s.pipeline.outputs.flatMap((o) => (o.backlogAtStart !== undefined ? [[{ output: o.name }, o.backlogAtStart] as const] : []))),
    counter('hades_output_bytes_total', 'Bytes an output delivered.', (s) => s.pipeline.outputs.map((o) => [{ output: o.name }, o.bytesOut] as const)),
    gauge('hades_output_up', '1 when the output delivers, 0 while it fails.', (s) => s.pipeline.outputs.map((o) => [{ output: o.name }, o.up ? 1 : 0] as const)),
    counter('hades_output_streams_opened_total', "Streams of the server output to the gateway that got their Welcome.", (s) => s.pipeline.outputs.flatMap((o) => (o.stream ? [[{ output: o.name }, o.stream.opened] as const] : []))),
    counter('hades_output_streams_lost_total', "Streams of the server output that went, by reason: connect_failed (no Welcome), server_ended (ended by the server or lost with the connection after the Welcome), ack_timeout (no Ack in time: HADES_ERR_SERVER_ACK_TIMEOUT), renewal_reconnect (ended to use a renewed certificate), preferred_return (ended to move back to a preferred address).", (s) =>
      s.pipeline.outputs.flatMap((o) => (o.stream ? Object.entries(o.stream.lost).map(([reason, n]) => [{ output: o.name, reason }, n] as const) : [])),
    ),
    counter('hades_output_batches_nacked_total', 'Batches the server refused with a Nack, by kind: temporary (sent again) or permanent (dropped).', (s) =>
      s.pipeline.outputs.flatMap((o) => (o.stream ? ([['temporary', o.stream.nacked.temporary], ['permanent', o.stream.nacked.permanent]] as const).map(([kind, n]) => [{ output: o.name, kind }, n] as const) : [])),
    ),
    counter('hades_output_batches_resent_total', 'Batches the server output wrote again after a lost stream, an Ack timeout or a temporary Nack.', (s) => s.pipeline.outputs.flatMap((o) => (o.stream ? [[{ output: o.name }, o.stream.resent] as const] : []))),
    gauge('hades_output_gateways_held', "Gateway addresses of the server output held down now after an Ack timeout (HADES_ERR_SERVER_ACK_TIMEOUT): streams do not start or move back there until the hold ends or the address acknowledges a batch.", (s) => s.pipeline.outputs.flatMap((o) => (o.stream ? [[{ output: o.name }, o.stream.held] as const] : []))),
    gauge('hades_output_gateway_index', "The server output's gateway address in use (a label) and its index in the list of addresses, 0 the most preferred; absent while no stream is up.", (s) =>
      s.pipeline.outputs.flatMap((o) => (o.stream?.address !== undefined && o.stream.addressIndex !== undefined ? [[{ output: o.name, address: o.stream.address }, o.stream.addressIndex] as const] : [])),
    ),
    gauge('hades_output_queue_events', 'Events waiting in memory for an output.', (s) => s.pipeline.outputs.map((o) => [{ output: o.name }, o.queued] as const)),
    gauge('hades_spool_bytes', "Bytes in an output's disk spool.", (s) => s.pipeline.outputs.flatMap((o) => (o.spool ? [[{ output: o.name }, o.spool.bytes] as const] : []))),
    gauge('hades_spool_events', "Events in an output's disk spool, not yet acknowledged.", (s) => s.pipeline.outputs.flatMap((o) => (o.spool ? [[{ output: o.name }, o.spool.events] as const] : []))),
    counter('hades_spool_corrupt_records_total', "Records of an output's spool found damaged on disk and skipped (since the spool was opened); their events are in hades_spool_corrupt_events_total when known.", (s) => s.pipeline.outputs.flatMap((o) => (o.spool ? [[{ output: o.name }, o.spool.corruptRecords] as const] : []))),
    counter('hades_spool_corrupt_events_total', "Events known to be in the damaged records of an output's spool.", (s) => s.pipeline.outputs.flatMap((o) => (o.spool ? [[{ output: o.name }, o.spool.corruptEvents] as const] : []))),
    counter('hades_spool_errors_total', "Failures of an output's spool since it was opened: write (writes, truncations, deletions, fsyncs), read (segments that could not be read), cursor_reset (an unreadable cursor: delivery replayed from the oldest record).", (s) =>
      s.pipeline.outputs.flatMap((o) => (o.spool ? ([['write', o.spool.writeErrors], ['read', o.spool.readErrors], ['cursor_reset', o.spool.cursorResets]] as const).map(([kind, n]) => [{ output: o.name, kind }, n] as const) : [])),
    ),
    counter("hades_events_dropped_total", "Events dropped by the agent, by place and reason (the kernel's own drops are in hades_kernel_hook_records_total).", (s) => [
      ...s.drops.map((d) => [{ component: d.component, where: d.hook, reason: d.reason }, d.total] as const),
      // The driver's (ring buffer, shedding) are in no drop of the agent's; every other plugin's
      // (invalid, rate_limited) are in s.drops already, as the agent's, and would count twice.
      ...s.plugins.filter((p) => p.name === 'driver').flatMap((p) => Object.entries(p.dropped).map(([reason, n]) => [{ component: 'plugin', where: p.name, reason }, n] as const)),
    ]),
    gauge('hades_plugin_up', '1 while a plugin runs.', (s) => s.plugins.map((p) => [{ plugin: p.name, state: p.state }, p.state === 'running' ? 1 : 0] as const)),
    gauge('hades_plugin_degraded', '1 while a running plugin says it is degraded (does not do all it was configured to do: a honeypot whose decoys are closed), 0 while it says ok; absent when it says nothing.', (s) => s.plugins.flatMap((p) => (p.health !== undefined ? [[{ plugin: p.name }, p.health === 'degraded' ? 1 : 0] as const] : []))),
    counter('hades_plugin_restarts_total', 'Restarts of a plugin since the agent started.', (s) => s.plugins.map((p) => [{ plugin: p.name }, p.restarts] as const)),
    gauge('hades_plugin_cpu_percent', 'CPU use of a plugin, percent of one core.', (s) => s.plugins.flatMap((p) => (p.cpuPercent !== undefined ? [[{ plugin: p.name }, p.cpuPercent] as const] : []))),
    gauge('hades_plugin_resident_memory_bytes', "Resident memory of a plugin's processes.", (s) => s.plugins.flatMap((p) => (p.memoryRssBytes !== undefined ? [[{ plugin: p.name }, p.memoryRssBytes] as const] : []))),
    gauge('hades_plugin_open_fds', "Open file descriptors of a plugin's processes.", (s) => s.plugins.flatMap((p) => (p.openFds !== undefined ? [[{ plugin: p.name }, p.openFds] as const] : []))),
    counter('hades_plugin_events_total', 'Events a plugin produced.', (s) => s.plugins.map((p) => [{ plugin: p.name }, p.eventsIn] as const)),
    counter('hades_kernel_hook_records_total', 'Kernel hook counters from the driver (seen, sent, filtered, dropped_ringbuf_full, ...).', (s) =>
      Object.entries(s.kernel?.kernel ?? {}).flatMap(([hook, counters]) => Object.entries(counters).filter(([, v]) => typeof v === 'number').map(([c, v]) => [{ hook, counter: c }, v] as const)),
    ),
    counter('hades_log_lines_total', 'Log lines written.', (s) => [[{}, s.log.lines]]),
    counter('hades_log_suppressed_total', 'Log lines dropped by the log rate limit.', (s) => [[{}, s.log.suppressed]]),
  ];
}

export class MetricsServer {
  private server: Server | undefined;
  private readonly families: Family[];
  url: string | undefined;

  constructor(
    private readonly snapshot: () => AgentStatus,
    version: string,
  ) {
    this.families = agentMetrics(version);
  }

  /** Listens on the loopback address; rejects with HADES_ERR_METRICS_LISTEN. */
  async listen(listen: string): Promise<void> {
    const { host, port } = parseListen(listen);
    const server = createServer({ connectionsCheckingInterval: 1000 }, (request, response) => {
      // Only a loopback name: a page of a web site whose name now resolves to 127.0.0.1 (DNS
      // rebinding) must not read the agent's status from a browser on the host.
      if (!loopbackHost(request.headers.host)) {
        response.writeHead(403, { 'content-type': 'text/plain' }).end('Host must be a loopback address\n');
        return;
      }
      void this.handle(request.url ?? '/', request.method ?? 'GET').then(
        ({ status, type, body }) => {
          response.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
          response.end(body);
        },
        () => {
          response.writeHead(500).end();
        },
      );
    });
    // Scrapes are short: no idle connection keeps the agent from stopping.
    server.keepAliveTimeout = 1000;
    server.headersTimeout = 5000;
    server.requestTimeout = 10_000;
    // Any local user can connect: a few scrapers at a time, and slow ones cut within a second of
    // their deadline, so that connections cannot use up the agent's file descriptors.
    server.maxConnections = MAX_CONNECTIONS;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => reject(new HadesError('HADES_ERR_METRICS_LISTEN', `metrics cannot listen on ${listen}: ${error.code ?? error.message}`)));
      server.listen(port, host, () => resolve());
    });
    this.server = server;
    const address = server.address() as AddressInfo;
    this.url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  }

  private async handle(url: string, method: string): Promise<{ status: number; type: string; body: string }> {
    if (method !== 'GET') return { status: 405, type: 'text/plain', body: 'GET only\n' };
    const pathname = url.split('?')[0];
    if (pathname === '/healthz') return { status: 200, type: 'text/plain', body: 'ok\n' };
    if (pathname === '/status') return { status: 200, type: 'application/json', body: `${JSON.stringify(this.snapshot())}\n` };
    if (pathname === '/metrics') return { status: 200, type: 'text/plain; version=0.0.4; charset=utf-8', body: exposition(this.families, this.snapshot()) };
    return { status: 404, type: 'text/plain', body: 'not found: /metrics, /status, /healthz\n' };
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
