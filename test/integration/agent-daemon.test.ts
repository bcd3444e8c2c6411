/**
 * `hades agent` as a process, as root, with the real kernel driver: events reach a file and an
 * HTTP collector, `hades agent status` reports, the driver runs in its own cgroup, SIGHUP
 * reloads (a bad file is refused and the old configuration stays), SIGTERM leaves nothing
 * behind, and `kill -9` loses nothing the spool had taken.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { groupMembers, pluginManifest, waitFor, type AnyEvent } from '../helpers/agent.js';
import { projectRoot } from '../helpers/generated-docs.js';

const root = process.getuid?.() === 0;
const dir = mkdtempSync(path.join(tmpdir(), 'hades-daemon-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** An HTTP collector that can refuse batches (503) while `down`. */
class Collector {
  readonly events: AnyEvent[] = [];
  down = false;
  private server: Server | undefined;
  port = 0;

  async start(port = 0): Promise<void> {
    this.server = createServer((request, response) => {
      let body = '';
      request.setEncoding('utf8').on('data', (d: string) => (body += d));
      request.on('end', () => {
        if (this.down) return void response.writeHead(503).end();
        for (const line of body.split('\n')) if (line) this.events.push(JSON.parse(line) as AnyEvent);
        response.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

interface Running {
  readonly child: ChildProcess;
  stderr: string;
  readonly exited: Promise<number | null>;
}

function startAgent(configFile: string, stdout: 'ignore' | 'pipe' = 'ignore'): Running {
  const child = spawn(process.execPath, [`${projectRoot}bin/hades.js`, 'agent', '--config', configFile], { cwd: projectRoot, stdio: ['ignore', stdout, 'pipe'] });
  const running: Running = { child, stderr: '', exited: new Promise((resolve) => child.on('close', (code) => resolve(code))) };
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (running.stderr += d));
  return running;
}

const hades = (...args: string[]) => spawnSync(process.execPath, [`${projectRoot}bin/hades.js`, ...args], { cwd: projectRoot, encoding: 'utf8' });

function status(configFile: string): Record<string, any> | undefined {
  const result = hades('agent', 'status', '--config', configFile, '--json');
  return result.status === 0 ? (JSON.parse(result.stdout) as Record<string, any>) : undefined;
}

const logLines = (running: Running) => running.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as AnyEvent);

/**
 * An agent configuration without the driver: a counting plugin at `rate` events/s, delivered to
 * the test's HTTP collector through the spool (and to stdout with `stdout`). Its file's path.
 */
function pluginAgentConfig(name: string, options: { port: number; rate: number; fsync: 'interval' | 'never'; stdout?: boolean }): string {
  const configFile = path.join(dir, `agent-${name}.yaml`);
  writeFileSync(
    configFile,
    `
agent: { data_dir: ${path.join(dir, `data-${name}`)}, heartbeat_s: 3600, drain_s: 2 }
limits: { cgroup: { enabled: false } }
plugins:
  driver: false
  inventory: { enabled: false }
  logs: { enabled: false }
  installed:
    - { manifest: ${pluginManifest(dir, `numbers-${name}`, 'count')}, config: { rate: ${options.rate} } }
outputs:
${options.stdout ? '  stdout: { enabled: true }\n' : ''}  file: { enabled: false }
  http: { enabled: true, url: "http://127.0.0.1:${options.port}/events" }
spool: { fsync: ${options.fsync} }
metrics: { listen: "127.0.0.1:0" }
`,
  );
  return configFile;
}

describe('hades agent (process, root, real driver)', { skip: root ? false : 'needs root' }, () => {
  const collector = new Collector();
  before(() => collector.start());
  after(() => collector.stop());

  it('delivers kernel events to a file and an HTTP collector, reports its status, reloads on SIGHUP, and stops clean', async () => {
    const data = path.join(dir, 'data-a');
    const eventsFile = path.join(dir, 'events-a.ndjson');
    const cgroupName = `hades-test-${process.pid}`;
    const config = (deny: string, driverExtra = '') => `
agent: { data_dir: ${data}, heartbeat_s: 2, drain_s: 2 }
limits: { cgroup: { enabled: true, name: ${cgroupName} } }
driver: { deny_executables: [${deny}]${driverExtra} }
outputs:
  file: { enabled: true, path: ${eventsFile} }
  http: { enabled: true, url: "http://127.0.0.1:${collector.port}/events", batch_events: 500 }
spool: { fsync: always }
metrics: { listen: "127.0.0.1:0" }
`;
    const configFile = path.join(dir, 'agent-a.yaml');
    writeFileSync(configFile, config(''));
    // `agent status` reads a configuration too (for the data folder): give it one that stays valid.
    const statusConfig = path.join(dir, 'status-a.yaml');
    writeFileSync(statusConfig, `agent: { data_dir: ${data} }\n`);
    const agent = startAgent(configFile);
    try {
      const first = await waitFor('the agent to answer', () => status(configFile), 30_000, 200);
      const driver = first['plugins'].find((p: AnyEvent) => p['name'] === 'driver');
      assert.equal(driver?.state, 'running');
      assert.equal(first['cgroup'].version, 1);
      assert.match(readFileSync(`/proc/${driver.pid}/cgroup`, 'utf8'), new RegExp(`memory:.*/${cgroupName}/plugin-driver`), 'the driver runs in its own cgroup');

      spawnSync('/bin/echo', ['hades-daemon-marker']);
      const isMarker = (e: AnyEvent) => e['event'].action === 'exec' && (e['process'].args as string[]).includes('hades-daemon-marker');
      await waitFor('the exec event at the collector', () => collector.events.some(isMarker) || undefined);
      const fromFile = () => readFileSync(eventsFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as AnyEvent);
      await waitFor('the exec event in the file', () => fromFile().some(isMarker) || undefined);
      await waitFor('a heartbeat', () => collector.events.some((e) => e['event'].action === 'agent_health') || undefined, 10_000);

      const person = hades('agent', 'status', '--config', configFile);
      assert.equal(person.status, 0, person.stderr);
      assert.match(person.stdout, /^hades agent .* pid \d+/);
      assert.match(person.stdout, /driver\s+running/);
      assert.match(person.stdout, /http\s+up/);

      // A bad file: refused, logged with its problems, the agent runs on.
      writeFileSync(configFile, 'outputs: { file: { enabled: maybe } }\n');
      agent.child.kill('SIGHUP');
      await waitFor('the rejected reload', () => status(statusConfig)?.['lastReload']?.ok === false || undefined);
      // (status() blocks this process's event loop: the agent's log lines arrive after it)
      await waitFor('the coded log line', () => logLines(agent).some((l) => l['code'] === 'HADES_ERR_CONFIG_INVALID') || undefined, 5000);
      // A good one: applied in place (a new in-kernel filter).
      writeFileSync(configFile, config('/bin/echo'));
      agent.child.kill('SIGHUP');
      await waitFor('the accepted reload', () => status(statusConfig)?.['lastReload']?.ok === true || undefined);
      const before = collector.events.length;
      spawnSync('/bin/echo', ['hades-daemon-filtered']);
      spawnSync('/bin/true', ['hades-daemon-after']);
      await waitFor('the exec after the reload', () => collector.events.slice(before).some((e) => e['event'].action === 'exec' && (e['process'].args as string[]).includes('hades-daemon-after')) || undefined);
      assert.ok(!collector.events.some((e) => e['event'].action === 'exec' && (e['process'].args as string[]).includes('hades-daemon-filtered')), 'the new filter applies');
      assert.equal(status(statusConfig)?.['plugins'].find((p: AnyEvent) => p['name'] === 'driver')?.pid, driver.pid, 'a filter is changed in place: the same driver');
      // Another driver setting restarts the driver: a gap, reported.
      writeFileSync(configFile, config('/bin/echo', ', batch_ms: 30'));
      agent.child.kill('SIGHUP');
      const gap = await waitFor('the driver\'s gap', () => collector.events.find((e) => e['event'].action === 'agent_gap' && e['hades'].gap.component === 'driver'), 20_000);
      assert.equal(gap['hades'].gap.reason, 'restarted for a configuration reload');
      const restarted = status(statusConfig)?.['plugins'].find((p: AnyEvent) => p['name'] === 'driver');
      assert.notEqual(restarted?.pid, driver.pid);
      driver.pid = restarted?.pid;

      agent.child.kill('SIGTERM');
      assert.equal(await agent.exited, 0, agent.stderr);
      assert.deepEqual(groupMembers(driver.pid as number), [], 'the driver is gone');
      assert.ok(!existsSync(path.join(data, 'agent.json')), 'the run file is removed');
      for (const hierarchy of ['cpu', 'memory']) {
        const line = readFileSync('/proc/self/cgroup', 'utf8').split('\n').find((l) => l.split(':')[1]?.split(',').includes(hierarchy));
        const base = path.join('/sys/fs/cgroup', hierarchy, line?.split(':')[2] ?? '/', cgroupName);
        assert.ok(!existsSync(base), `${base} is removed`);
      }
      const hades_status = hades('agent', 'status', '--config', configFile);
      assert.equal(hades_status.status, 3);
      assert.match(hades_status.stderr, /HADES_ERR_AGENT_NOT_RUNNING/);
    } finally {
      agent.child.kill('SIGKILL');
    }
  });

  it('gives the driver\'s cgroup the new memory ceiling when a reload changes plugins.limits.memory_mb (the driver is not restarted)', async () => {
    const data = path.join(dir, 'data-d');
    const cgroupName = `hades-test-d-${process.pid}`;
    const config = (mb: number) => `
agent: { data_dir: ${data}, heartbeat_s: 3600, drain_s: 1 }
limits: { cgroup: { enabled: true, name: ${cgroupName} } }
plugins: { limits: { memory_mb: ${mb} }, inventory: { enabled: false }, logs: { enabled: false } }
outputs: { file: { enabled: false } }
metrics: { listen: "127.0.0.1:0" }
`;
    const configFile = path.join(dir, 'agent-d.yaml');
    writeFileSync(configFile, config(100));
    const agent = startAgent(configFile);
    try {
      const first = await waitFor('the agent to answer', () => status(configFile), 30_000, 200);
      const driver = first['plugins'].find((p: AnyEvent) => p['name'] === 'driver');
      const memoryLine = readFileSync(`/proc/${driver.pid}/cgroup`, 'utf8').split('\n').find((l) => l.split(':')[1]?.split(',').includes('memory'));
      const ceiling = () => Number(readFileSync(path.join('/sys/fs/cgroup/memory', memoryLine!.split(':')[2]!, 'memory.limit_in_bytes'), 'utf8'));
      assert.equal(ceiling(), 200 * 1024 * 1024, 'twice the budget');
      writeFileSync(configFile, config(300));
      agent.child.kill('SIGHUP');
      await waitFor('the accepted reload', () => status(configFile)?.['lastReload']?.ok === true || undefined);
      const after = status(configFile)!['plugins'].find((p: AnyEvent) => p['name'] === 'driver');
      assert.equal(after.pid, driver.pid, 'the same driver');
      assert.equal(after.budget.memoryBytes, 300 * 1024 * 1024, 'the watchdog\'s budget');
      assert.equal(ceiling(), 600 * 1024 * 1024, 'the kernel\'s ceiling follows the budget');
    } finally {
      agent.child.kill('SIGTERM');
      await agent.exited;
    }
  });

  it('loses nothing the spool took when the agent is killed with SIGKILL while its receiver is down', async () => {
    const configFile = pluginAgentConfig('b', { port: collector.port, rate: 1000, fsync: 'interval' });
    collector.down = true;
    collector.events.length = 0;
    const first = startAgent(configFile);
    let spooled = 0;
    let pluginPid = 0;
    try {
      const s = await waitFor(
        'the spool to fill',
        () => {
          const now = status(configFile);
          return (now?.['pipeline'].outputs[0].spool.events ?? 0) >= 1500 ? now : undefined;
        },
        30_000,
        200,
      );
      spooled = s['pipeline'].outputs[0].spool.events as number;
      pluginPid = s['plugins'][0].pid as number;
    } finally {
      first.child.kill('SIGKILL');
    }
    await first.exited;
    await waitFor('the orphaned plugin to exit', () => groupMembers(pluginPid).length === 0 || undefined, 5000);
    collector.down = false;
    const second = startAgent(configFile);
    try {
      const runA = await waitFor('the first run\'s events', () => collector.events[0]?.['hades'].inventory.row.run as string | undefined);
      const fromA = () => collector.events.filter((e) => e['hades']?.inventory?.row.run === runA).map((e) => e['hades'].inventory.row.n as number);
      // The spool delivers in order: once the second run's events arrive, the first run's are all in.
      await waitFor('the backlog', () => collector.events.some((e) => e['hades']?.inventory?.row.run !== runA) || undefined, 20_000, 100);
      const numbers = fromA();
      assert.ok(numbers.length >= spooled, `${numbers.length} delivered, ${spooled} were in the spool`);
      assert.deepEqual(numbers, numbers.map((_, i) => i), 'in order, none missing, none twice');
      // The counters: what the first run left in the spool is the second's backlog, delivered
      // (out) but never counted as in, so out exceeds in by at most the backlog.
      const output = (await waitFor('the status', () => status(configFile)))['pipeline'].outputs[0];
      assert.ok(output.backlogAtStart >= spooled, `backlog ${output.backlogAtStart}, ${spooled} were in the spool`);
      assert.ok(output.out >= output.backlogAtStart, `out ${output.out}: the backlog ${output.backlogAtStart} was delivered`);
      assert.ok(output.in + output.backlogAtStart >= output.out, JSON.stringify(output));
      const text = hades('agent', 'status', '--config', configFile);
      assert.equal(text.status, 0, text.stderr);
      assert.match(text.stdout, new RegExp(`^ {2}http +up +\\d+ +${output.backlogAtStart} +\\d+ `, 'm'));
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
  });
  it('runs one agent per data folder: a second is refused, coded, naming the first; one that took the folder while the lock socket was removed makes the first stop; a run file of a dead agent whose pid an ssh-agent has now stops nothing', async () => {
    const configFile = pluginAgentConfig('d', { port: collector.port, rate: 10, fsync: 'never' });
    const first = startAgent(configFile);
    try {
      await waitFor('the first agent', () => status(configFile), 30_000, 200);
      const second = startAgent(configFile);
      assert.notEqual(await second.exited, 0);
      assert.match(second.stderr, new RegExp(`HADES_ERR_AGENT_RUNNING.*an agent \\(pid ${first.child.pid}, started [^)]+\\) already uses`));
      assert.equal(status(configFile)?.['pid'] ?? first.child.pid, first.child.pid, 'the first agent runs on, its run file kept');
      // Its lock socket and run file removed by hand (a cleanup of the folder) and a second agent
      // started before the first made the socket again: the first finds the other's lock listening
      // there at its next check and stops, coded; the second keeps the folder. (The first's check
      // every 5 s may make the socket again before the second gets to it: then the second is
      // refused, and the removal is done again.)
      let taker: Running | undefined;
      for (let attempt = 0; attempt < 6 && taker === undefined; attempt++) {
        rmSync(path.join(dir, 'data-d', 'agent.sock'), { force: true });
        rmSync(path.join(dir, 'data-d', 'agent.json'), { force: true });
        const next = startAgent(configFile);
        let exited = false;
        void next.exited.then(() => (exited = true));
        for (const deadline = Date.now() + 30_000; !exited && Date.now() < deadline; await new Promise((resolve) => setTimeout(resolve, 100))) {
          if (status(configFile)?.['pid'] === next.child.pid) {
            taker = next;
            break;
          }
        }
        if (taker === undefined) {
          next.child.kill('SIGTERM');
          await next.exited;
          assert.match(next.stderr, /HADES_ERR_AGENT_RUNNING/);
        }
      }
      assert.ok(taker, 'a second agent started on the folder');
      try {
        assert.equal(await first.exited, 75, 'the first agent stops, asking its service manager for a restart');
        assert.match(first.stderr, /HADES_ERR_AGENT_RUNNING.*another agent took the data folder/);
        assert.equal(status(configFile)?.['pid'], taker.child.pid, 'the second agent runs on, its lock socket left in place by the first as it stopped');
      } finally {
        taker.child.kill('SIGTERM');
        await taker.exited;
      }
    } finally {
      first.child.kill('SIGTERM');
      await first.exited;
    }
    // After a reboot, the pid in the run file of an agent that did not stop cleanly may be any
    // program's, one called an agent too: the lock, not the pid, says whether an agent runs.
    const other = spawn('bash', ['-c', 'exec -a ssh-agent sleep 60'], { stdio: 'ignore' });
    try {
      await waitFor('ssh-agent', () => (other.pid !== undefined && readFileSync(`/proc/${other.pid}/cmdline`, 'utf8').startsWith('ssh-agent') ? true : undefined), 5000, 20);
      writeFileSync(path.join(dir, 'data-d', 'agent.json'), JSON.stringify({ pid: other.pid, started: '2026-01-01T00:00:00.000Z', version: '0.1.0' }));
      assert.notEqual(hades('agent', 'status', '--config', configFile).status, 0, 'no agent runs');
      const third = startAgent(configFile);
      try {
        await waitFor('the agent to start', () => status(configFile), 30_000, 200);
      } finally {
        third.child.kill('SIGTERM');
        assert.equal(await third.exited, 0, third.stderr);
      }
    } finally {
      other.kill('SIGKILL');
    }
  });
  it('goes on when the reader of its stdout output goes away: the output counts what it cannot write, the others deliver', async () => {
    const configFile = pluginAgentConfig('c', { port: collector.port, rate: 200, fsync: 'never', stdout: true });
    collector.down = false;
    const agent = startAgent(configFile, 'pipe');
    try {
      // Read a little, then go away as `| head` does.
      await new Promise<void>((resolve) => agent.child.stdout?.once('data', () => resolve()));
      agent.child.stdout?.destroy();
      const before = collector.events.length;
      await waitFor('events still delivered to the collector', () => (collector.events.length > before + 200 ? true : undefined), 20_000, 200);
      const s = status(configFile);
      assert.ok(s, 'the agent still answers its status');
      const stdout = (s['pipeline'].outputs as { name: string; up?: boolean; lastError?: string; dropped?: Record<string, number> }[]).find((o) => o.name === 'stdout');
      assert.equal(stdout?.up, false);
      assert.match(stdout?.lastError ?? '', /EPIPE/);
      assert.ok((stdout?.dropped?.['write_failed'] ?? 0) > 0, 'what it could not write is counted');
      assert.equal(s['pipeline'].paused, false, 'the dead output holds nothing back');
    } finally {
      agent.child.kill('SIGTERM');
    }
    assert.equal(await agent.exited, 0);
  });
});
