/**
 * The agent's health endpoint, on loopback only: `/metrics` in the Prometheus text format,
 * `/status` as JSON (what `hades agent status` prints) and `/healthz`. Metrics are computed
 * from one status snapshot per scrape, so a scrape costs nothing between scrapes.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Registry } from 'prom-client';
import { HadesError } from '../../common/errors.js';
import type { AgentStatus } from './agent.js';

type Labels = Record<string, string>;

/** Parses `host:port` and refuses anything but a loopback address. */
export function parseListen(listen: string): { host: string; port: number } {
  const match = /^(\[::1\]|localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}):(\d{1,5})$/.exec(listen);
  const port = Number(match?.[2]);
  if (!match || port > 65535) throw new HadesError('HADES_ERR_METRICS_LISTEN', `metrics.listen must be a loopback address and port, e.g. 127.0.0.1:9479 (got ${JSON.stringify(listen)})`);
  return { host: match[1] === '[::1]' ? '::1' : match[1]!, port };
}

export class MetricsServer {
  private server: Server | undefined;
  private readonly registry = new Registry();
  url: string | undefined;

  constructor(
    private readonly snapshot: () => AgentStatus,
    version: string,
  ) {
    const registry = this.registry;
    const gauge = (name: string, help: string, labelNames: string[], read: (s: AgentStatus) => [Labels, number][]) => {
      const metric = new Gauge({
        name,
        help,
        labelNames,
        registers: [registry],
        collect() {
          metric.reset();
          const current = self.current;
          if (current) for (const [labels, value] of read(current)) metric.set(labels, value);
        },
      });
    };
    const counter = (name: string, help: string, labelNames: string[], read: (s: AgentStatus) => [Labels, number][]) => {
      const metric = new Counter({
        name,
        help,
        labelNames,
        registers: [registry],
        collect() {
          metric.reset();
          const current = self.current;
          if (current) for (const [labels, value] of read(current)) if (value > 0) metric.inc(labels, value);
        },
      });
    };
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    gauge('hades_agent_info', 'The agent; its version is a label.', ['version'], () => [[{ version }, 1]]);
    gauge('hades_agent_uptime_seconds', 'Seconds since the agent started.', [], (s) => [[{}, s.uptimeS]]);
    gauge('hades_agent_cpu_percent', 'CPU use of the agent process over the last second, percent of one core.', [], (s) => [[{}, s.cpuPercent]]);
    gauge('hades_agent_resident_memory_bytes', 'Resident memory of the agent process.', [], (s) => [[{}, s.memoryRssBytes]]);
    gauge('hades_agent_memory_budget_bytes', 'Memory budget of the agent process.', [], (s) => [[{}, s.memoryBudgetBytes]]);
    gauge('hades_agent_open_fds', 'Open file descriptors of the agent process.', [], (s) => [[{}, s.openFds]]);
    counter('hades_events_in_total', 'Events that entered the pipeline, by action.', ['action'], (s) => Object.entries(s.pipeline.byAction).map(([action, n]) => [{ action }, n]));
    counter('hades_output_events_total', 'Events an output delivered (acknowledged, for spooled outputs).', ['output'], (s) => s.pipeline.outputs.map((o) => [{ output: o.name }, o.out]));
    counter('hades_output_bytes_total', 'Bytes an output delivered.', ['output'], (s) => s.pipeline.outputs.map((o) => [{ output: o.name }, o.bytesOut]));
    gauge('hades_output_up', '1 when the output delivers, 0 while it fails.', ['output'], (s) => s.pipeline.outputs.map((o) => [{ output: o.name }, o.up ? 1 : 0]));
    gauge('hades_output_queue_events', 'Events waiting in memory for an output.', ['output'], (s) => s.pipeline.outputs.map((o) => [{ output: o.name }, o.queued]));
    gauge('hades_spool_bytes', 'Bytes in an output\'s disk spool.', ['output'], (s) => s.pipeline.outputs.filter((o) => o.spool).map((o) => [{ output: o.name }, o.spool!.bytes]));
    gauge('hades_spool_events', 'Events in an output\'s disk spool, not yet acknowledged.', ['output'], (s) => s.pipeline.outputs.filter((o) => o.spool).map((o) => [{ output: o.name }, o.spool!.events]));
    counter('hades_events_dropped_total', 'Events dropped by the agent, by place and reason (the kernel\'s own drops are in hades_kernel_hook_records_total).', ['component', 'where', 'reason'], (s) => [
      ...s.drops.map((d): [Labels, number] => [{ component: d.component, where: d.hook, reason: d.reason }, d.total]),
      ...s.plugins.flatMap((p) => Object.entries(p.dropped).map(([reason, n]): [Labels, number] => [{ component: 'plugin', where: p.name, reason }, n])),
    ]);
    gauge('hades_plugin_up', '1 while a plugin runs.', ['plugin', 'state'], (s) => s.plugins.map((p) => [{ plugin: p.name, state: p.state }, p.state === 'running' ? 1 : 0]));
    counter('hades_plugin_restarts_total', 'Restarts of a plugin since the agent started.', ['plugin'], (s) => s.plugins.map((p) => [{ plugin: p.name }, p.restarts]));
    gauge('hades_plugin_cpu_percent', 'CPU use of a plugin, percent of one core.', ['plugin'], (s) => s.plugins.filter((p) => p.cpuPercent !== undefined).map((p) => [{ plugin: p.name }, p.cpuPercent!]));
    gauge('hades_plugin_resident_memory_bytes', 'Resident memory of a plugin\'s processes.', ['plugin'], (s) => s.plugins.filter((p) => p.memoryRssBytes !== undefined).map((p) => [{ plugin: p.name }, p.memoryRssBytes!]));
    gauge('hades_plugin_open_fds', 'Open file descriptors of a plugin\'s processes.', ['plugin'], (s) => s.plugins.filter((p) => p.openFds !== undefined).map((p) => [{ plugin: p.name }, p.openFds!]));
    counter('hades_plugin_events_total', 'Events a plugin produced.', ['plugin'], (s) => s.plugins.map((p) => [{ plugin: p.name }, p.eventsIn]));
    counter('hades_kernel_hook_records_total', 'Kernel hook counters from the driver (seen, sent, filtered, dropped_ringbuf_full, ...).', ['hook', 'counter'], (s) =>
      Object.entries(s.kernel?.kernel ?? {}).flatMap(([hook, counters]) => Object.entries(counters).filter(([, v]) => typeof v === 'number').map(([counter, v]): [Labels, number] => [{ hook, counter }, v])),
    );
    counter('hades_log_lines_total', 'Log lines written.', [], (s) => [[{}, s.log.lines]]);
    counter('hades_log_suppressed_total', 'Log lines dropped by the log rate limit.', [], (s) => [[{}, s.log.suppressed]]);
  }

  private current: AgentStatus | undefined;

  /** Listens on the loopback address; rejects with HADES_ERR_METRICS_LISTEN. */
  async listen(listen: string): Promise<void> {
    const { host, port } = parseListen(listen);
    const server = createServer((request, response) => {
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
    if (pathname === '/metrics') {
      this.current = this.snapshot();
      try {
        return { status: 200, type: this.registry.contentType, body: await this.registry.metrics() };
      } finally {
        this.current = undefined;
      }
    }
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
