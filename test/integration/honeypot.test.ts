/**
 * The honeypot mode through the agent: the built-in `honeypot` plugin opens its decoy, a real
 * TCP client touches it, and the agent delivers a complete honeypot_touch event that the
 * default rule pack's honeypot_touched raises. Its counters are in the agent's status. Then
 * fleet-wide: a group configuration pushed by a real server turns the mode on in a connected
 * agent, and a touch becomes an alert in the server's API.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { Agent } from '../../src/agent/daemon/agent.js';
import { agentMetrics, exposition } from '../../src/agent/daemon/metrics.js';
import { formatStatus } from '../../src/cli/commands/agent.js';
import { loadRules } from '../../src/rules/index.js';
import { readDefaultPack } from '../../src/runtime/rule-pack.js';
import { agentConfig, memoryAgent, waitFor, type AnyEvent } from '../helpers/agent.js';
import { AGENT_VERSION, cleanupTempDirs, freePorts, LogSink, TestServer, waitUntil } from '../helpers/server.js';
import { decoyPort } from '../helpers/decoy-port.js';

const dir = mkdtempSync(path.join(tmpdir(), 'hades-honeypot-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
  // The servers' folders (with their CA keys).
  cleanupTempDirs();
});

describe('honeypot mode through the agent', () => {
  it('reports a touch of a decoy, and the default pack raises it', async () => {
    const port = await decoyPort(27_000);
    const { agent, transport } = memoryAgent(`
agent: { data_dir: ${path.join(dir, 'data')}, heartbeat_s: 3600, drain_s: 1 }
limits: { cgroup: { enabled: false } }
plugins: { driver: false, grace_ms: 2000, inventory: { enabled: false }, logs: { enabled: false }, honeypot: { enabled: true, ports: [{ port: ${port}, service: redis }] } }
outputs: { file: { enabled: false } }
metrics: { enabled: false }
`);
    await agent.start();
    try {
      await waitFor(
        'the decoy listening',
        () => {
          const stats = agent.status().plugins.find((p) => p.name === 'honeypot')?.stats;
          return (stats?.['listening'] as string[] | undefined)?.includes(`tcp/${port}`);
        },
        20_000,
      );
      const running = agent.status().plugins.find((p) => p.name === 'honeypot');
      assert.equal(running?.state, 'running');
      assert.equal(running?.health, 'ok');
      assert.equal(running?.healthDetail, '1 of 1 decoy listening');
      // The process that talks to strangers runs as nobody once its decoy listens.
      const pid = agent.status().plugins.find((p) => p.name === 'honeypot')?.pid;
      if (process.getuid?.() === 0) {
        const status = readFileSync(`/proc/${pid}/status`, 'utf8');
        assert.match(status, /^Uid:\t65534\t65534\t65534\t65534$/m);
        assert.match(status, /^Gid:\t65534\t65534\t65534\t65534$/m);
        assert.match(status, /^Groups:\s*$/m);
      }
      const client = net.connect(port, '127.0.0.1');
      await new Promise((resolve) => client.once('connect', resolve));
      client.end('INFO\r\n');
      const touch = await waitFor('the touch', () => transport.events.find((e) => e.event?.action === 'honeypot_touch'), 10_000);
      assert.equal(touch.source.ip, '127.0.0.1');
      assert.equal(touch.destination.port, port);
      assert.deepEqual(touch.hades.honeypot, { service: 'redis', bytes: 6, payload: Buffer.from('INFO\r\n').toString('base64') });
      assert.ok(touch.event.id && touch.host.name && touch.agent.version, 'the agent completed the common fields');
      const { ruleSet } = loadRules(await readDefaultPack(), { samples: false });
      const fired = ruleSet.match(touch).map((m) => [m.rule.id, m.output]);
      assert.deepEqual(fired, [['honeypot_touched', `127.0.0.1 touched the redis decoy on port ${port} (6 bytes)`]]);
    } finally {
      await agent.stop();
    }
    // Stopped with the agent: the decoy is closed.
    await assert.rejects(
      new Promise((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1', () => resolve(s.destroy()));
        s.once('error', reject);
      }),
      /ECONNREFUSED/,
    );
  });

  it('says that it watches nothing when no decoy could open, in the status, the metrics and the heartbeat', { timeout: 60_000 }, async () => {
    const busyPort = await decoyPort(27_500);
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(busyPort, '0.0.0.0', resolve));
    const { agent, transport } = memoryAgent(`
agent: { data_dir: ${path.join(dir, 'data-busy')}, heartbeat_s: 3600, drain_s: 1 }
limits: { cgroup: { enabled: false } }
plugins: { driver: false, grace_ms: 2000, inventory: { enabled: false }, logs: { enabled: false }, honeypot: { enabled: true, ports: [{ port: ${busyPort}, service: redis }] } }
outputs: { file: { enabled: false } }
metrics: { enabled: false }
`);
    try {
      await agent.start();
      // Said by the plugin as soon as its configuration is applied, without waiting for a STATS_REQUEST.
      const honeypot = await waitFor('the honeypot degraded', () => agent.status().plugins.find((p) => p.name === 'honeypot' && p.health === 'degraded'), 20_000);
      assert.equal(honeypot.state, 'running', 'the process runs: the supervisor state keeps its meaning');
      assert.equal(honeypot.healthDetail, `0 of 1 decoy listening: the honeypot watches nothing; not listening: tcp/${busyPort} (in_use)`);
      assert.deepEqual(honeypot.stats?.['refused'], { [`tcp/${busyPort}`]: 'in_use' });
      assert.match(formatStatus(agent.status()), new RegExp(`^ {2}honeypot +running, degraded .*\\n {2}honeypot degraded: 0 of 1 decoy listening: the honeypot watches nothing; not listening: tcp/${busyPort} \\(in_use\\)$`, 'ms'));
      assert.ok(exposition(agentMetrics('test'), agent.status()).includes('hades_plugin_degraded{plugin="honeypot"} 1'));
      agent.heartbeat();
      const health = await waitFor('the agent_health event', () => transport.events.find((e) => e.event?.action === 'agent_health'), 10_000);
      const plugin = (health.hades.health.plugins as { name: string; state: string; health?: string; health_detail?: string }[]).find((p) => p.name === 'honeypot');
      assert.deepEqual({ state: plugin?.state, health: plugin?.health, detail: plugin?.health_detail }, { state: 'running', health: 'degraded', detail: honeypot.healthDetail });
    } finally {
      await agent.stop();
      await new Promise((resolve) => busy.close(resolve));
    }
  });
});

describe('honeypot mode pushed to a group', () => {
  it('turns on in a connected agent of the group, and a touch becomes an alert in the server', { timeout: 90_000 }, async () => {
    // Fixed ports: the server is restarted on the same addresses half way.
    const [agentsPort, apiPort] = await freePorts(2);
    const server = await TestServer.start({ listen: { agents: `127.0.0.1:${agentsPort}`, api: `127.0.0.1:${apiPort}` } });
    const token = await server.enrollmentToken('10m', 'decoys');
    const base = (plugins: string) => `
agent: { data_dir: ${path.join(dir, 'fleet-agent')}, heartbeat_s: 3600, drain_s: 1 }
limits: { cgroup: { enabled: false } }
plugins: { driver: false, grace_ms: 2000, inventory: { enabled: false }, logs: { enabled: false }${plugins} }
outputs:
  file: { enabled: false }
  server: { enabled: true, api: "${server.addresses.api}", token: ${token.token}, ca_sha256: ${token.ca_sha256}, batch_events: 1 }
spool: { fsync: never }
metrics: { enabled: false }
`;
    let agent = new Agent({ config: agentConfig(base('')), version: AGENT_VERSION, stderr: new LogSink() });
    try {
      await agent.start();
      const agentId = await waitUntil('the agent online', async () => {
        const agents = (await server.ok('GET', '/api/v1/agents')).agents as AnyEvent[];
        return agents[0]?.online === true ? (agents[0].id as string) : undefined;
      });
      assert.ok(!agent.status().plugins.some((p) => p.name === 'honeypot'), 'off until the group turns it on');
      const port = await decoyPort(29_100);
      const pushed = await server.ok('PUT', '/api/v1/groups/decoys/config', { body: { yaml: base(`, honeypot: { enabled: true, ports: [{ port: ${port}, service: telnet, banner: "login: " }] }`) } });
      assert.equal(pushed.pushed, 1);
      await waitFor('the decoy open', () => (agent.status().plugins.find((p) => p.name === 'honeypot')?.stats?.['listening'] as string[] | undefined)?.includes(`tcp/${port}`), 30_000, 100);
      const client = net.connect(port, '127.0.0.1');
      await new Promise((resolve) => client.once('data', resolve)); // the banner
      client.end('admin\r\n');
      const alert = await waitUntil(
        'the alert',
        async () => {
          const page = (await server.ok('GET', '/api/v1/alerts', { query: { since: '10m', limit: 100 } })) as { alerts: AnyEvent[] };
          return page.alerts.find((a) => a.rule.id === 'honeypot_touched');
        },
        30_000,
        200,
      );
      assert.equal(alert.host.id, agentId);
      assert.equal(alert.rule.severity, 'high');
      assert.match(alert.message, new RegExp(`^127\\.0\\.0\\.1 touched the telnet decoy on port ${port} \\(7 bytes\\)$`));
      assert.equal(agent.status().groupConfigVersion, 1);
      // The same text again (a new version): nothing restarts.
      const pid = agent.status().plugins.find((p) => p.name === 'honeypot')?.pid;
      assert.equal((await server.ok('PUT', '/api/v1/groups/decoys/config', { body: { yaml: base(`, honeypot: { enabled: true, ports: [{ port: ${port}, service: telnet, banner: "login: " }] }`) } })).version, 2);
      await waitFor('version 2 noted', () => agent.status().groupConfigVersion === 2 || undefined, 10_000, 50);
      assert.equal(agent.status().plugins.find((p) => p.name === 'honeypot')?.pid, pid, 'the honeypot was not restarted');
      // Restarted while the server is away: the group's configuration, kept in the data folder,
      // runs from the start (a host rebooted during an outage keeps its fleet's policy).
      await agent.stop();
      await server.stop();
      agent = new Agent({ config: agentConfig(base('')), version: AGENT_VERSION, stderr: new LogSink() });
      await agent.start();
      assert.equal(agent.status().groupConfigVersion, 2, 'applied as the start ends');
      await waitFor('the decoy open again', () => (agent.status().plugins.find((p) => p.name === 'honeypot')?.stats?.['listening'] as string[] | undefined)?.includes(`tcp/${port}`), 30_000, 100);
      // Taken off the server (its output off), an agent runs its own file, and forgets the group's.
      await agent.stop();
      const offServer = new Agent({ config: agentConfig(base('').replace('server: { enabled: true,', 'server: { enabled: false,')), version: AGENT_VERSION, stderr: new LogSink() });
      await offServer.start();
      try {
        assert.equal(offServer.status().groupConfigVersion, undefined);
        assert.ok(!offServer.status().plugins.some((p) => p.name === 'honeypot'));
      } finally {
        await offServer.stop();
      }
      assert.ok(!existsSync(path.join(dir, 'fleet-agent', 'group-config.json')), 'forgotten');
      agent = new Agent({ config: agentConfig(base('')), version: AGENT_VERSION, stderr: new LogSink() });
      await agent.start();
      await server.start();
      await waitUntil('the agent online again', async () => ((await server.ok('GET', `/api/v1/agents/${agentId}`)) as AnyEvent)['online'] === true || undefined, 20_000, 200);
      // Back online, the server pushes the group's configuration again.
      await waitFor('the group configuration again', () => agent.status().groupConfigVersion === 2 || undefined, 20_000, 100);
      // The group's configuration removed: the agent goes back to its own, without decoys.
      assert.deepEqual(await server.ok('DELETE', '/api/v1/groups/decoys/config'), { pushed: 1 });
      await waitFor('the decoys closed', () => !agent.status().plugins.some((p) => p.name === 'honeypot') || undefined, 30_000, 100);
      assert.equal(agent.status().groupConfigVersion, undefined);
      assert.ok(!existsSync(path.join(dir, 'fleet-agent', 'group-config.json')), 'nothing kept once it is gone');
      // A kept configuration this host cannot fully apply (its metrics port taken) never stops
      // the agent: it starts on its file, then applies the kept one as a push, in part.
      await agent.stop();
      const busy = net.createServer();
      await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
      try {
        const taken = (busy.address() as net.AddressInfo).port;
        writeFileSync(path.join(dir, 'fleet-agent', 'group-config.json'), JSON.stringify({ version: 9, yaml: base('').replace('metrics: { enabled: false }', `metrics: { enabled: true, listen: "127.0.0.1:${taken}" }`) }), { mode: 0o600 });
        agent = new Agent({ config: agentConfig(base('')), version: AGENT_VERSION, stderr: new LogSink() });
        await agent.start();
        assert.equal(agent.status().lastReload?.ok, false, 'applied in part');
      } finally {
        busy.close();
      }
    } finally {
      await agent.stop();
      await server.stop();
    }
  });

  it('a group configuration changed or removed while the agent was down wins over the copy it kept, though it comes during the start', { timeout: 120_000 }, async () => {
    // The kernel driver takes a second or more to start: the agent connects and is pushed the
    // group's configuration meanwhile. The copy kept from the last run, applied after the start,
    // used to undo that push.
    const server = await TestServer.start();
    const token = await server.enrollmentToken('10m', 'later');
    const dataDir = path.join(dir, 'later-agent');
    const base = (heartbeat: number) => `
agent: { data_dir: ${dataDir}, heartbeat_s: ${heartbeat}, drain_s: 1 }
limits: { cgroup: { enabled: false } }
plugins: { driver: true, grace_ms: 2000, inventory: { enabled: false }, logs: { enabled: false } }
outputs:
  file: { enabled: false }
  server: { enabled: true, api: "${server.addresses.api}", token: ${token.token}, ca_sha256: ${token.ca_sha256} }
spool: { fsync: never }
metrics: { enabled: false }
`;
    const kept = path.join(dataDir, 'group-config.json');
    const online = (want: boolean) => waitUntil(`the agent ${want ? 'online' : 'offline'}`, async () => ((await server.ok('GET', '/api/v1/agents')).agents as AnyEvent[])[0]?.online === want || undefined, 30_000, 100);
    let agent = new Agent({ config: agentConfig(base(3600)), version: AGENT_VERSION, stderr: new LogSink() });
    try {
      await agent.start();
      await online(true);
      assert.equal((await server.ok('PUT', '/api/v1/groups/later/config', { body: { yaml: base(3000) } })).version, 1);
      await waitFor('version 1 running', () => agent.status().groupConfigVersion === 1 || undefined, 20_000, 50);
      await agent.stop();
      await online(false);
      // Changed while the agent is down.
      assert.equal((await server.ok('PUT', '/api/v1/groups/later/config', { body: { yaml: base(2400) } })).version, 2);
      agent = new Agent({ config: agentConfig(base(3600)), version: AGENT_VERSION, stderr: new LogSink() });
      await agent.start();
      await waitFor('version 2 running', () => agent.status().groupConfigVersion === 2 || undefined, 20_000, 50);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      assert.equal(agent.status().groupConfigVersion, 2, 'the kept version 1 did not come back over it');
      assert.equal(JSON.parse(readFileSync(kept, 'utf8')).version, 2);
      await agent.stop();
      await online(false);
      // Removed while the agent is down.
      await server.ok('DELETE', '/api/v1/groups/later/config');
      agent = new Agent({ config: agentConfig(base(3600)), version: AGENT_VERSION, stderr: new LogSink() });
      await agent.start();
      await online(true);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      assert.equal(agent.status().groupConfigVersion, undefined, 'its own file runs');
      assert.ok(!existsSync(kept), 'the copy is forgotten');
    } finally {
      await agent.stop();
      await server.stop();
    }
  });

  it('follows a group configuration applied in part, and goes back to its own file from it', { timeout: 90_000 }, async () => {
    const server = await TestServer.start();
    const token = await server.enrollmentToken('10m', 'partial');
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const busyPort = (busy.address() as net.AddressInfo).port;
    const base = (more: string) => `
agent: { data_dir: ${path.join(dir, 'partial-agent')}, heartbeat_s: 3600, drain_s: 1 }
limits: { cgroup: { enabled: false } }
outputs:
  file: { enabled: false }
  server: { enabled: true, api: "${server.addresses.api}", token: ${token.token}, ca_sha256: ${token.ca_sha256} }
spool: { fsync: never }
${more}`;
    const own = base('plugins: { driver: false, grace_ms: 2000, inventory: { enabled: false }, logs: { enabled: false } }\nmetrics: { enabled: false }\n');
    const agent = new Agent({ config: agentConfig(own), version: AGENT_VERSION, stderr: new LogSink() });
    try {
      await agent.start();
      await waitUntil('the agent online', async () => ((await server.ok('GET', '/api/v1/agents')).agents as AnyEvent[])[0]?.online === true || undefined);
      const port = await decoyPort(29_700);
      // The decoys open, then the metrics endpoint cannot listen: applied in part.
      const group = base(`plugins: { driver: false, grace_ms: 2000, inventory: { enabled: false }, logs: { enabled: false }, honeypot: { enabled: true, ports: [{ port: ${port} }] } }\nmetrics: { listen: "127.0.0.1:${busyPort}" }\n`);
      await server.ok('PUT', '/api/v1/groups/partial/config', { body: { yaml: group } });
      await waitFor('the decoy open', () => agent.status().plugins.some((p) => p.name === 'honeypot') || undefined, 30_000, 100);
      await waitFor('the reload done', () => agent.status().lastReload, 30_000, 100);
      assert.equal(agent.status().lastReload?.ok, false, 'the metrics endpoint could not listen');
      assert.equal(agent.status().groupConfigVersion, 1, 'what runs is the group\'s configuration, in part');
      // `hades agent status` reads why there is no endpoint from the run file.
      const run = JSON.parse(readFileSync(path.join(dir, 'partial-agent', 'agent.json'), 'utf8')) as { metrics?: string; metrics_error?: string };
      assert.equal(run.metrics, undefined);
      assert.match(run.metrics_error ?? '', new RegExp(`cannot listen on 127\\.0\\.0\\.1:${busyPort}`));
      // The server hears of it at once, in a heartbeat (not at the next one, a minute later).
      const heard = await waitUntil('the server told', async () => {
        const [listed] = (await server.ok('GET', '/api/v1/agents')).agents as AnyEvent[];
        return listed?.['last_heartbeat']?.last_reload?.ok === false ? listed['last_heartbeat'].last_reload : undefined;
      });
      assert.match(heard.message, /metrics/);
      await server.ok('DELETE', '/api/v1/groups/partial/config');
      await waitFor('back to its own configuration', () => !agent.status().plugins.some((p) => p.name === 'honeypot') || undefined, 30_000, 100);
      assert.equal(agent.status().groupConfigVersion, undefined);
      // Back on its own file (metrics off): no reason is left in the run file.
      await waitFor('the run file without the reason', () => (JSON.parse(readFileSync(path.join(dir, 'partial-agent', 'agent.json'), 'utf8')) as { metrics_error?: string }).metrics_error === undefined || undefined, 10_000, 100);
    } finally {
      await agent.stop();
      await server.stop();
      busy.close();
    }
  });

  it('restarts only the plugin whose settings a reload changes', { timeout: 60_000 }, async () => {
    const authLog = path.join(dir, 'reload-auth.log');
    writeFileSync(authLog, '');
    const [first, second] = [await decoyPort(29_500), await decoyPort(29_600)];
    const text = (port: number) => `
agent: { data_dir: ${path.join(dir, 'reload-agent')}, heartbeat_s: 3600, drain_s: 1 }
limits: { cgroup: { enabled: false } }
plugins: { driver: false, grace_ms: 2000, inventory: { enabled: false }, logs: { source: files, files: [${authLog}] }, honeypot: { enabled: true, ports: [{ port: ${port} }] } }
outputs: { file: { enabled: false } }
spool: { fsync: never }
metrics: { enabled: false }
`;
    const agent = new Agent({ config: agentConfig(text(first)), version: AGENT_VERSION, stderr: new LogSink() });
    const pidOf = (name: string) => agent.status().plugins.find((p) => p.name === name)?.pid;
    try {
      await agent.start();
      const logs = await waitFor('the log collector', () => pidOf('logs'), 30_000, 50);
      const honeypot = await waitFor('the honeypot', () => pidOf('honeypot'), 30_000, 50);
      assert.deepEqual(await agent.reload(text(second)), { ok: true });
      await waitFor('the new decoy open', () => (agent.status().plugins.find((p) => p.name === 'honeypot')?.stats?.['listening'] as string[] | undefined)?.includes(`tcp/${second}`), 30_000, 100);
      assert.notEqual(pidOf('honeypot'), honeypot, 'the honeypot restarted with its new decoy');
      assert.equal(pidOf('logs'), logs, 'the log collector, whose settings did not change, did not restart');
    } finally {
      await agent.stop();
    }
  });

  it('applies a group configuration that is in place when the agent starts once, after the start (no second plugin)', { timeout: 90_000 }, async () => {
    const server = await TestServer.start();
    const token = await server.enrollmentToken('10m', 'early');
    const authLog = path.join(dir, 'early-auth.log');
    writeFileSync(authLog, '');
    // The local configuration starts a plugin (slow enough for the server's push to come during the start).
    const base = (plugins: string) => `
agent: { data_dir: ${path.join(dir, 'early-agent')}, heartbeat_s: 3600, drain_s: 1 }
limits: { cgroup: { enabled: false } }
plugins: { driver: false, grace_ms: 2000, inventory: { enabled: false }, logs: { source: files, files: [${authLog}] }${plugins} }
outputs:
  file: { enabled: false }
  server: { enabled: true, api: "${server.addresses.api}", token: ${token.token}, ca_sha256: ${token.ca_sha256} }
spool: { fsync: never }
metrics: { listen: "127.0.0.1:0" }
`;
    const port = await decoyPort(29_300);
    await server.ok('PUT', '/api/v1/groups/early/config', { body: { yaml: base(`, honeypot: { enabled: true, ports: [{ port: ${port} }] }`) } });
    const agent = new Agent({ config: agentConfig(base('')), version: AGENT_VERSION, stderr: new LogSink() });
    const honeypots = () =>
      readdirSync('/proc')
        .filter((d) => /^\d+$/.test(d))
        .filter((d) => {
          try {
            return readFileSync(`/proc/${d}/cmdline`, 'utf8').includes('honeypot-main.js') && readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1]?.split(' ')[1] === String(process.pid);
          } catch {
            return false;
          }
        });
    try {
      await agent.start();
      const stats = await waitFor('the pushed decoy open', () => {
        const s = agent.status().plugins.find((p) => p.name === 'honeypot')?.stats;
        return (s?.['listening'] as string[] | undefined)?.includes(`tcp/${port}`) ? s : undefined;
      }, 30_000, 100);
      assert.deepEqual(stats['refused'], {}, 'not refused by a second copy of itself');
      await new Promise((resolve) => setTimeout(resolve, 1000));
      assert.equal(honeypots().length, 1, 'one honeypot process');
    } finally {
      await agent.stop();
      await server.stop();
    }
    assert.equal(honeypots().length, 0, 'none left after the stop');
  });
});
