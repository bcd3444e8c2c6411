import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import type { AgentStatus } from '../../src/agent/daemon/agent.js';
import { agentMetrics, exposition, MetricsServer, parseListen } from '../../src/agent/daemon/metrics.js';
import { AgentConfigSchema, parseConfig } from '../../src/common/config/index.js';
import { HadesError } from '../../src/common/errors.js';

type Family = Parameters<typeof exposition>[0][number];

/** A status as the agent would report it: one spooled and one stream output, two plugins, a kernel. */
function status(): AgentStatus {
  return {
    version: '9.8.7',
    pid: 4242,
    hostname: 'host-a',
    started: '2026-01-01T00:00:00.000Z',
    uptimeS: 12.5,
    cpuPercent: 1.25,
    memoryRssBytes: 50_000_000,
    memoryBudgetBytes: 134_217_728,
    openFds: 33,
    pipeline: {
      in: 7,
      byAction: { exec: 5, inventory_change: 2 },
      paused: false,
      outputs: [
        { name: 'stdout', in: 7, out: 7, bytesOut: 700, dropped: {}, queued: 0, up: true },
        { name: 'server', in: 7, backlogAtStart: 3, out: 4, bytesOut: 400, dropped: { spool_full: 1 }, queued: 2, up: false, lastError: 'down', spool: { records: 1, events: 3, bytes: 4096, segments: 1, corruptRecords: 2, corruptEvents: 5, corruptBytes: 300, writeErrors: 1, readErrors: 0, cursorResets: 0 }, stream: { opened: 3, lost: { connect_failed: 4, server_ended: 1, ack_timeout: 1, renewal_reconnect: 0, preferred_return: 1 }, nacked: { temporary: 2, permanent: 1 }, resent: 3, held: 1, address: '10.0.0.2:7443', addressIndex: 1 } },
      ],
    },
    plugins: [
      {
        name: 'driver',
        version: '1.0.0',
        state: 'running',
        pid: 100,
        restarts: 0,
        cpuPercent: 2.5,
        memoryRssBytes: 1_000_000,
        openFds: 12,
        eventsIn: 5,
        eventsPerSecond: 0.5,
        dropped: { ringbuf: 3 },
        budget: { cpuPercent: 10, memoryBytes: 200 * 1024 * 1024, maxOpenFiles: 1024, eventsPerSecond: 5000 },
        overBudgetRestarts: 0,
        unresponsiveRestarts: 0,
      },
      {
        name: 'honeypot',
        state: 'running',
        pid: 101,
        restarts: 0,
        eventsIn: 0,
        eventsPerSecond: 0,
        dropped: {},
        health: 'degraded',
        healthDetail: '0 of 1 decoy listening: the honeypot watches nothing; not listening: tcp/22 (in_use)',
        budget: { cpuPercent: 10, memoryBytes: 200 * 1024 * 1024, maxOpenFiles: 1024, eventsPerSecond: 5000 },
        overBudgetRestarts: 0,
        unresponsiveRestarts: 0,
      },
      {
        name: 'acme',
        state: 'backoff',
        restarts: 2,
        eventsIn: 2,
        eventsPerSecond: 0,
        dropped: {},
        budget: { cpuPercent: 10, memoryBytes: 200 * 1024 * 1024, maxOpenFiles: 1024, eventsPerSecond: 5000 },
        lastError: 'exit status 3',
        overBudgetRestarts: 1,
        unresponsiveRestarts: 0,
      },
    ],
    kernel: {
      backend: 'ebpf',
      hooks: [{ name: 'exec', type: 'tracepoint', active: true, error: null }],
      kernel: { exec: { seen: 10, sent: 9, filtered: 1 } },
      decoder: { records: 9, truncated: 0, badSize: 0, badVersion: 0, unknownKind: 0, shed: 0 },
    },
    eventsDropped: 4,
    drops: [{ component: 'kernel', hook: 'exec', reason: 'ringbuf_full', total: 4 }],
    log: { lines: 20, dropped: 0, suppressed: 2, rotations: 0, writeErrors: 0 },
    logLevel: { level: 'info', byTask: false },
    cgroup: { unavailable: 'test' },
  };
}

function listenError(listen: string) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof HadesError);
    assert.equal(error.code, 'HADES_ERR_METRICS_LISTEN');
    assert.ok(error.message.includes(listen), error.message);
    return true;
  };
}

describe('metrics: parseListen', () => {
  for (const bad of ['0.0.0.0:9479', '10.0.0.1:9479', 'example.com:9479', 'host-a:9479', '127.0.0.1:70000', '127.0.0.1:99999', '127.0.0.1', 'localhost', '[::]:9479', '[::1]', ':9479', '127.0.0.1:', '127.0.0.1:9479 ', '']) {
    it(`refuses ${JSON.stringify(bad)}`, () => {
      assert.throws(() => parseListen(bad), listenError(JSON.stringify(bad)));
    });
  }

  it('accepts loopback addresses', () => {
    assert.deepEqual(parseListen('127.0.0.1:0'), { host: '127.0.0.1', port: 0 });
    assert.deepEqual(parseListen('127.1.2.3:9479'), { host: '127.1.2.3', port: 9479 });
    assert.deepEqual(parseListen('[::1]:9479'), { host: '::1', port: 9479 });
    assert.deepEqual(parseListen('localhost:1'), { host: 'localhost', port: 1 });
    assert.deepEqual(parseListen('127.0.0.1:65535'), { host: '127.0.0.1', port: 65535 });
  });
});

describe('metrics: agent configuration', () => {
  it('refuses a metrics.listen that is not loopback, with a coded problem', () => {
    const result = parseConfig('metrics: { listen: "0.0.0.0:9479" }', AgentConfigSchema);
    assert.equal(result.ok, false);
    const problems = result.ok ? [] : result.problems;
    assert.equal(problems.length, 1);
    assert.equal(problems[0]?.code, 'HADES_ERR_CONFIG_VALUE');
    assert.equal(problems[0]?.path, 'metrics.listen');
    assert.equal(problems[0]?.line, 1);
  });

  it('accepts the loopback forms parseListen accepts', () => {
    for (const listen of ['127.0.0.1:0', '127.1.2.3:9479', '[::1]:9479', 'localhost:1']) {
      const result = parseConfig(`metrics: { listen: "${listen}" }`, AgentConfigSchema);
      assert.ok(result.ok, listen);
      assert.equal(result.config.metrics.listen, listen);
    }
  });

  it('refuses a port above 65535 like parseListen does', () => {
    const result = parseConfig('metrics: { listen: "127.0.0.1:70000" }', AgentConfigSchema);
    assert.equal(result.ok, false);
  });
});

describe('metrics: exposition', () => {
  it('escapes label values and HELP text per the text format 0.0.4', () => {
    const families: Family[] = [
      { name: 'm_test', help: 'Line one\nback\\slash and "quotes"', type: 'gauge', read: () => [[{ path: 'C:\\dir "x"\nnext' }, 1]] },
    ];
    assert.equal(
      exposition(families, status()),
      ['# HELP m_test Line one\\nback\\\\slash and "quotes"', '# TYPE m_test gauge', 'm_test{path="C:\\\\dir \\"x\\"\\nnext"} 1', ''].join('\n'),
    );
  });

  it('writes NaN, +Inf, -Inf, fractions and label-less series', () => {
    const families: Family[] = [
      {
        name: 'm_values',
        help: 'Values.',
        type: 'counter',
        read: () => [
          [{ k: 'nan' }, NaN],
          [{ k: 'inf' }, Infinity],
          [{ k: 'ninf' }, -Infinity],
          [{ k: 'frac' }, 0.5],
          [{}, 3],
          [{ a: '1', b: '2' }, -2],
        ],
      },
      { name: 'm_empty', help: 'No series.', type: 'gauge', read: () => [] },
    ];
    assert.deepEqual(exposition(families, status()).split('\n'), [
      '# HELP m_values Values.',
      '# TYPE m_values counter',
      'm_values{k="nan"} NaN',
      'm_values{k="inf"} +Inf',
      'm_values{k="ninf"} -Inf',
      'm_values{k="frac"} 0.5',
      'm_values 3',
      'm_values{a="1",b="2"} -2',
      '# HELP m_empty No series.',
      '# TYPE m_empty gauge',
      '',
    ]);
  });

  it('reads every agent metric from one status', () => {
    const text = exposition(agentMetrics('9.8.7'), status());
    const lines = new Set(text.split('\n'));
    for (const expected of [
      'hades_agent_info{version="9.8.7"} 1',
      'hades_agent_uptime_seconds 12.5',
      'hades_agent_cpu_percent 1.25',
      'hades_agent_resident_memory_bytes 50000000',
      'hades_agent_memory_budget_bytes 134217728',
      'hades_agent_open_fds 33',
      'hades_events_in_total{action="exec"} 5',
      'hades_events_in_total{action="inventory_change"} 2',
      'hades_output_events_total{output="stdout"} 7',
      'hades_output_events_total{output="server"} 4',
      'hades_output_bytes_total{output="server"} 400',
      'hades_output_up{output="stdout"} 1',
      'hades_output_up{output="server"} 0',
      'hades_output_queue_events{output="server"} 2',
      'hades_spool_bytes{output="server"} 4096',
      'hades_spool_events{output="server"} 3',
      'hades_spool_corrupt_records_total{output="server"} 2',
      'hades_spool_corrupt_events_total{output="server"} 5',
      'hades_spool_errors_total{output="server",kind="write"} 1',
      'hades_spool_errors_total{output="server",kind="read"} 0',
      'hades_spool_errors_total{output="server",kind="cursor_reset"} 0',
      'hades_output_backlog_at_start_events{output="server"} 3',
      'hades_output_streams_opened_total{output="server"} 3',
      'hades_output_streams_lost_total{output="server",reason="connect_failed"} 4',
      'hades_output_streams_lost_total{output="server",reason="server_ended"} 1',
      'hades_output_streams_lost_total{output="server",reason="ack_timeout"} 1',
      'hades_output_streams_lost_total{output="server",reason="renewal_reconnect"} 0',
      'hades_output_streams_lost_total{output="server",reason="preferred_return"} 1',
      'hades_output_batches_nacked_total{output="server",kind="temporary"} 2',
      'hades_output_batches_nacked_total{output="server",kind="permanent"} 1',
      'hades_output_batches_resent_total{output="server"} 3',
      'hades_output_gateways_held{output="server"} 1',
      'hades_output_gateway_index{output="server",address="10.0.0.2:7443"} 1',
      '# TYPE hades_output_streams_lost_total counter',
      '# TYPE hades_output_gateway_index gauge',
      'hades_events_dropped_total{component="kernel",where="exec",reason="ringbuf_full"} 4',
      'hades_events_dropped_total{component="plugin",where="driver",reason="ringbuf"} 3',
      'hades_plugin_up{plugin="driver",state="running"} 1',
      'hades_plugin_up{plugin="acme",state="backoff"} 0',
      'hades_plugin_restarts_total{plugin="acme"} 2',
      'hades_plugin_up{plugin="honeypot",state="running"} 1',
      'hades_plugin_degraded{plugin="honeypot"} 1',
      'hades_plugin_cpu_percent{plugin="driver"} 2.5',
      'hades_plugin_resident_memory_bytes{plugin="driver"} 1000000',
      'hades_plugin_open_fds{plugin="driver"} 12',
      'hades_plugin_events_total{plugin="driver"} 5',
      'hades_plugin_events_total{plugin="acme"} 2',
      'hades_kernel_hook_records_total{hook="exec",counter="seen"} 10',
      'hades_kernel_hook_records_total{hook="exec",counter="filtered"} 1',
      'hades_log_lines_total 20',
      'hades_log_suppressed_total 2',
      '# TYPE hades_events_in_total counter',
      '# TYPE hades_output_up gauge',
    ]) {
      assert.ok(lines.has(expected), `missing: ${expected}\n${text}`);
    }
    // Only outputs with a spool have spool series; only sampled plugins have resource series.
    assert.doesNotMatch(text, /hades_(spool_bytes|spool_events|output_backlog_at_start_events)\{output="stdout"\}/);
    // Only an output over streams (the server's) has stream series.
    assert.doesNotMatch(text, /hades_output_(streams_opened_total|streams_lost_total|batches_nacked_total|batches_resent_total|gateway_index)\{output="stdout"/);
    assert.doesNotMatch(text, /hades_plugin_(cpu_percent|resident_memory_bytes|open_fds)\{plugin="acme"\}/);
    // Only plugins that say something of their health have a degraded series.
    assert.doesNotMatch(text, /hades_plugin_degraded\{plugin="(driver|acme)"\}/);
    assert.ok(text.endsWith('\n'));
  });

  it('gives every family one HELP and one TYPE line and a unique name', () => {
    const families = agentMetrics('1');
    assert.equal(new Set(families.map((f) => f.name)).size, families.length);
    const text = exposition(families, status());
    for (const f of families) {
      assert.equal(text.split('\n').filter((l) => l.startsWith(`# HELP ${f.name} `)).length, 1, f.name);
      assert.equal(text.split('\n').filter((l) => l === `# TYPE ${f.name} ${f.type}`).length, 1, f.name);
      assert.match(f.name, /^[a-zA-Z_:][a-zA-Z0-9_:]*$/);
      if (f.type === 'counter') assert.match(f.name, /_total$/);
    }
    // Every sample line is NAME{labels} VALUE or NAME VALUE.
    for (const line of text.split('\n').filter((l) => l && !l.startsWith('#'))) assert.match(line, /^[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? -?[0-9.e+]+$/, line);
  });

  it('exposes no kernel series without a kernel', () => {
    const s = { ...status() };
    delete (s as { kernel?: unknown }).kernel;
    assert.doesNotMatch(exposition(agentMetrics('1'), s), /^hades_kernel_hook_records_total\{/m);
  });
});

interface Reply {
  readonly status: number;
  readonly type: string | undefined;
  readonly body: string;
}

function get(url: string, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Listening sockets still held, once closed handles have been released (libuv closes them on the next turn). */
async function serverHandles(): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, 5));
  return process.getActiveResourcesInfo().filter((r) => r === 'TCPServerWrap').length;
}

describe('metrics: MetricsServer', () => {
  const servers: MetricsServer[] = [];
  after(async () => {
    for (const s of servers) await s.close();
  });

  it('serves /metrics, /status and /healthz on loopback', async () => {
    let scrapes = 0;
    const server = new MetricsServer(() => {
      scrapes++;
      return status();
    }, '9.8.7');
    servers.push(server);
    await server.listen('127.0.0.1:0');
    assert.match(server.url ?? '', /^http:\/\/127\.0\.0\.1:\d+$/);

    const metrics = await get(`${server.url}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(metrics.type ?? '', /^text\/plain; version=0\.0\.4/);
    assert.ok(metrics.body.includes('hades_agent_info{version="9.8.7"} 1\n'));
    assert.equal(scrapes, 1);

    const withQuery = await get(`${server.url}/metrics?name[]=x`);
    assert.equal(withQuery.status, 200);

    const st = await get(`${server.url}/status`);
    assert.equal(st.status, 200);
    assert.match(st.type ?? '', /^application\/json/);
    assert.deepEqual(JSON.parse(st.body), status());

    const health = await get(`${server.url}/healthz`);
    assert.deepEqual([health.status, health.body], [200, 'ok\n']);

    assert.equal((await get(`${server.url}/`)).status, 404);
    assert.equal((await get(`${server.url}/metricsx`)).status, 404);
    assert.equal((await get(`${server.url}/metrics`, 'POST')).status, 405);
    assert.equal((await get(`${server.url}/healthz`, 'DELETE')).status, 405);
  });

  it('answers only requests that name a loopback host (DNS rebinding), and holds a bounded number of connections', async () => {
    const server = new MetricsServer(status, '1');
    servers.push(server);
    await server.listen('127.0.0.1:0');
    const port = Number(new URL(server.url ?? '').port);
    const withHost = (host: string) =>
      new Promise<number>((resolve, reject) => {
        request({ host: '127.0.0.1', port, path: '/status', headers: { host } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        }).on('error', reject).end();
      });
    assert.equal(await withHost('attacker.example'), 403);
    assert.equal(await withHost(`attacker.example:${port}`), 403);
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, '127.0.0.1']) assert.equal(await withHost(host), 200, host);
    // Idle connections past the cap are closed at once; the agent keeps its descriptors.
    const sockets = await Promise.all(Array.from({ length: 40 }, () => new Promise<Socket>((resolve) => {
      const s = connect(port, '127.0.0.1', () => resolve(s));
      s.on('error', () => undefined);
    })));
    const closed = await Promise.all(sockets.map((s) => new Promise<boolean>((resolve) => {
      s.once('close', () => resolve(true));
      setTimeout(() => resolve(false), 500).unref();
    })));
    assert.ok(closed.filter(Boolean).length >= 8, `${closed.filter(Boolean).length} of 40 closed`);
    for (const s of sockets) s.destroy();
    // Once the server has seen them go (a moment after they close here), it serves again.
    let after = 0;
    for (let i = 0; i < 40 && after !== 200; i++) {
      await new Promise((r) => setTimeout(r, 50));
      after = await withHost('127.0.0.1').catch(() => 0);
    }
    assert.equal(after, 200, 'and it still serves');
  });

  it('serves on [::1] when IPv6 loopback is there', async (t) => {
    const server = new MetricsServer(status, '1');
    try {
      await server.listen('[::1]:0');
    } catch {
      t.skip('no IPv6 loopback');
      return;
    }
    servers.push(server);
    assert.match(server.url ?? '', /^http:\/\/\[::1\]:\d+$/);
    assert.equal((await get(`${server.url}/healthz`)).status, 200);
    await server.close();
  });

  it('fails with HADES_ERR_METRICS_LISTEN when the port is taken or the address is not loopback', async () => {
    const first = new MetricsServer(status, '1');
    servers.push(first);
    await first.listen('127.0.0.1:0');
    const port = Number(new URL(first.url!).port);
    const before = await serverHandles();
    const second = new MetricsServer(status, '1');
    await assert.rejects(second.listen(`127.0.0.1:${port}`), (error: unknown) => {
      assert.ok(error instanceof HadesError);
      assert.equal(error.code, 'HADES_ERR_METRICS_LISTEN');
      assert.match(error.message, /EADDRINUSE/);
      return true;
    });
    await assert.rejects(new MetricsServer(status, '1').listen('0.0.0.0:0'), listenError('0.0.0.0:0'));
    assert.equal(await serverHandles(), before, 'a failed listen leaves no server handle');
    await second.close();
    await first.close();
  });

  it('close() leaves no handle behind, also with a connection open, and can be called twice', async () => {
    const before = await serverHandles();
    const server = new MetricsServer(status, '1');
    await server.listen('127.0.0.1:0');
    assert.equal(await serverHandles(), before + 1);
    // A keep-alive connection must not hold close() up.
    const { Agent } = await import('node:http');
    const keepAlive = new Agent({ keepAlive: true });
    await new Promise<void>((resolve, reject) => {
      request(`${server.url}/healthz`, { agent: keepAlive }, (res) => {
        res.resume();
        res.on('end', resolve);
      })
        .on('error', reject)
        .end();
    });
    await server.close();
    await server.close();
    keepAlive.destroy();
    assert.equal(await serverHandles(), before);
  });
});
