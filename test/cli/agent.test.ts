// hades-test: shares the machine
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import type { AgentStatus } from '../../src/agent/daemon/agent.js';
import { InstanceLock } from '../../src/agent/daemon/instance-lock.js';
import { HadesError } from '../../src/common/errors.js';
import { MetricsServer } from '../../src/agent/daemon/metrics.js';
import { runHades } from '../helpers/cli.js';
import { projectRoot } from '../helpers/generated-docs.js';

const dir = mkdtempSync(path.join(tmpdir(), 'hades-cli-agent-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let dataDirs = 0;

function file(name: string, text: string): string {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
}

/** A configuration whose agent.data_dir is a fresh folder under the test folder. */
function agentConfigFile(name: string, more = ''): { config: string; dataDir: string } {
  const dataDir = path.join(dir, `data-${++dataDirs}`);
  return { config: file(name, `agent:\n  data_dir: ${dataDir}\n${more}`), dataDir };
}

/** Asserts a failure: the status, and a last stderr line carrying the code. */
function assertCodedFailure(result: { status: number | null; stderr: string }, status: number, code: string): string {
  assert.equal(result.status, status, result.stderr);
  const last = result.stderr.trimEnd().split('\n').at(-1) ?? '';
  assert.match(last, new RegExp(`^hades: ${code}: `));
  return last;
}

function status(): AgentStatus {
  return {
    version: '9.8.7',
    pid: process.pid,
    hostname: 'host-a',
    started: '2026-01-01T00:00:00.000Z',
    uptimeS: 75,
    cpuPercent: 1.5,
    memoryRssBytes: 50 * 1024 * 1024,
    memoryBudgetBytes: 128 * 1024 * 1024,
    openFds: 33,
    pipeline: {
      in: 7,
      byAction: { inventory_change: 7 },
      paused: false,
      outputs: [{ name: 'server', in: 7, backlogAtStart: 5, out: 9, bytesOut: 400, dropped: {}, queued: 0, up: false, lastError: 'receiver down', spool: { records: 1, events: 3, bytes: 4096, segments: 1, corruptRecords: 2, corruptEvents: 7, corruptBytes: 300, writeErrors: 1, readErrors: 0, cursorResets: 0 }, stream: { opened: 3, lost: { connect_failed: 4, server_ended: 1, ack_timeout: 1, renewal_reconnect: 0, preferred_return: 1 }, nacked: { temporary: 2, permanent: 0 }, resent: 3, held: 1, address: '10.0.0.2:7443', addressIndex: 1 } }],
    },
    plugins: [
      {
        name: 'acme',
        state: 'running',
        pid: 1234,
        restarts: 2,
        eventsIn: 7,
        eventsPerSecond: 1,
        dropped: { rate_limit: 3 },
        stats: { files: { lines: 120, cut: 0 }, journal: { untrusted: 2 }, version: 'x', listening: ['tcp/2323', 'udp/1161'], refused: { 'tcp/22': 'in_use' } },
        budget: { cpuPercent: 10, memoryBytes: 200 * 1024 * 1024, maxOpenFiles: 1024, eventsPerSecond: 5000 },
        overBudgetRestarts: 0,
        unresponsiveRestarts: 0,
      },
      {
        name: 'honeypot',
        state: 'running',
        pid: 1240,
        restarts: 0,
        eventsIn: 0,
        eventsPerSecond: 0,
        dropped: {},
        stats: { listening: [], refused: { 'tcp/22': 'in_use' }, health: { status: 'degraded', detail: '0 of 1 decoy listening: the honeypot watches nothing; not listening: tcp/22 (in_use)' } },
        health: 'degraded',
        healthDetail: '0 of 1 decoy listening: the honeypot watches nothing; not listening: tcp/22 (in_use)',
        budget: { cpuPercent: 10, memoryBytes: 200 * 1024 * 1024, maxOpenFiles: 1024, eventsPerSecond: 5000 },
        overBudgetRestarts: 0,
        unresponsiveRestarts: 0,
      },
    ],
    eventsDropped: 0,
    drops: [],
    log: { lines: 3, dropped: 0, suppressed: 0, rotations: 0, writeErrors: 0 },
    logLevel: { level: 'debug', byTask: true, until: '2026-11-29T08:00:00.000Z' },
    cgroup: { unavailable: 'test' },
  };
}

describe('hades agent, bad configuration', { concurrency: true }, () => {
  it('fails with HADES_ERR_CONFIG_READ on a missing configuration file', async () => {
    const missing = path.join(dir, 'missing.yaml');
    const r = await runHades(['agent', '--config', missing]);
    // HADES_ERR_CONFIG_READ is an environment error: exit status 3 (docs/errors.md), as for `hades config check`.
    const last = assertCodedFailure(r, 3, 'HADES_ERR_CONFIG_READ');
    assert.ok(last.includes(missing), last);
    assert.equal(r.stdout, '');
  });

  it('fails with HADES_ERR_CONFIG_INVALID listing every problem, and starts nothing', async () => {
    const dataDir = path.join(dir, 'never-created');
    const bad = file('bad.yaml', `agent:\n  data_dir: ${dataDir}\n  heartbeat_ss: 5\nmetrics:\n  enabled: maybe\n`);
    const r = await runHades(['agent', '--config', bad]);
    const last = assertCodedFailure(r, 2, 'HADES_ERR_CONFIG_INVALID');
    assert.match(last, /2 problems/);
    assert.ok(last.includes(`${bad}:3:3: HADES_ERR_CONFIG_UNKNOWN_KEY: unknown key 'agent.heartbeat_ss'`), last);
    assert.ok(last.includes(`${bad}:5:12: HADES_ERR_CONFIG_TYPE:`), last);
    assert.match(last, /did you mean 'agent.heartbeat_s'/);
    assert.equal(existsSync(dataDir), false, 'no data folder was created');
  });

  it('refuses a configuration that is not YAML', async () => {
    const r = await runHades(['agent', '--config', file('syntax.yaml', 'agent: [unclosed\n')]);
    const last = assertCodedFailure(r, 2, 'HADES_ERR_CONFIG_INVALID');
    assert.match(last, /HADES_ERR_CONFIG_SYNTAX/);
  });

  it('refuses a folder given as the configuration', async () => {
    mkdirSync(path.join(dir, 'folder.yaml'));
    assertCodedFailure(await runHades(['agent', '--config', path.join(dir, 'folder.yaml')]), 2, 'HADES_ERR_CONFIG_NOT_A_FILE');
  });
});

describe('hades agent status', { concurrency: true }, () => {
  it('lists its options in --help', async () => {
    const r = await runHades(['agent', 'status', '--help']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Usage: hades agent status/);
    assert.match(r.stdout, /--json\b/);
    assert.match(r.stdout, /--config <file>/);
  });

  it('fails with HADES_ERR_AGENT_NOT_RUNNING when no agent runs with the data folder', async () => {
    const { config, dataDir } = agentConfigFile('none.yaml');
    const r = await runHades(['agent', 'status', '--config', config]);
    const last = assertCodedFailure(r, 3, 'HADES_ERR_AGENT_NOT_RUNNING');
    assert.ok(last.includes(dataDir), last);
    assert.equal(r.stdout, '');
  });

  it('treats a run file whose process is gone as not running', async () => {
    const { config, dataDir } = agentConfigFile('stale.yaml');
    const gone = spawn('true');
    await once(gone, 'exit');
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(path.join(dataDir, 'agent.json'), JSON.stringify({ pid: gone.pid, started: '2026-01-01T00:00:00.000Z', version: '0.1.0', metrics: 'http://127.0.0.1:9' }));
    assertCodedFailure(await runHades(['agent', 'status', '--config', config]), 3, 'HADES_ERR_AGENT_NOT_RUNNING');
    // A pid above any pid_max cannot be running either.
    writeFileSync(path.join(dataDir, 'agent.json'), JSON.stringify({ pid: 2 ** 31 - 1, started: '2026-01-01T00:00:00.000Z', version: '0.1.0', metrics: 'http://127.0.0.1:9' }));
    assertCodedFailure(await runHades(['agent', 'status', '--config', config]), 3, 'HADES_ERR_AGENT_NOT_RUNNING');
  });

  it('treats a run file whose pid now belongs to another program as not running, even one called an agent', async () => {
    const { config, dataDir } = agentConfigFile('reused.yaml');
    // After a reboot the pid an agent wrote may be ssh-agent's: no agent holds the folder's lock.
    const other = spawn('bash', ['-c', 'exec -a ssh-agent sleep 30'], { stdio: 'ignore' });
    try {
      mkdirSync(dataDir, { recursive: true });
      writeFileSync(path.join(dataDir, 'agent.json'), JSON.stringify({ pid: other.pid, started: '2026-01-01T00:00:00.000Z', version: '0.1.0', metrics: 'http://127.0.0.1:9' }));
      assertCodedFailure(await runHades(['agent', 'status', '--config', config]), 3, 'HADES_ERR_AGENT_NOT_RUNNING');
    } finally {
      other.kill('SIGKILL');
    }
  });

  it('treats garbage in the run file as not running', async () => {
    const { config, dataDir } = agentConfigFile('garbage.yaml');
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(path.join(dataDir, 'agent.json'), '{"pid": "12"');
    assertCodedFailure(await runHades(['agent', 'status', '--config', config]), 3, 'HADES_ERR_AGENT_NOT_RUNNING');
  });

  it('prints the running agent\'s status, for a person and as JSON', async () => {
    const server = new MetricsServer(status, '9.8.7');
    await server.listen('127.0.0.1:0');
    // The run file names this test process, which holds the folder's lock as an agent does.
    const { config, dataDir } = agentConfigFile('live.yaml');
    mkdirSync(dataDir, { recursive: true });
    const lock = await InstanceLock.acquire(dataDir, () => new HadesError('HADES_ERR_AGENT_RUNNING', 'held'));
    try {
      writeFileSync(path.join(dataDir, 'agent.json'), JSON.stringify({ pid: process.pid, started: '2026-01-01T00:00:00.000Z', version: '9.8.7', metrics: server.url }));
      const text = await runHades(['agent', 'status', '--config', config]);
      assert.equal(text.status, 0, text.stderr);
      assert.match(text.stdout, new RegExp(`^hades agent 9\\.8\\.7, pid ${process.pid} on host-a, up 1m15s`));
      assert.match(text.stdout, /^ {2}acme +running +1234 .* 7 +1 +3 +2$/m);
      assert.match(text.stdout, /^ {2}acme: dropped\.rate_limit 3, files\.lines 120, journal\.untrusted 2$/m, 'the plugin\'s own counters, zeros left out');
      assert.match(text.stdout, /^ {2}acme listening: tcp\/2323, udp\/1161$/m);
      assert.match(text.stdout, /^ {2}acme refused: tcp\/22 \(in_use\)$/m);
      // A plugin that runs but says it does not do its work: the state column and a line of its own say so.
      assert.match(text.stdout, /^ {2}honeypot +running, degraded +1240 /m);
      assert.match(text.stdout, /^ {2}honeypot degraded: 0 of 1 decoy listening: the honeypot watches nothing; not listening: tcp\/22 \(in_use\)$/m);
      assert.doesNotMatch(text.stdout, /honeypot health:/, 'the health is not shown again as one of its counters');
      assert.match(text.stdout, /^ {2}log level debug, set by a server task until 2026-11-29T08:00:00\.000Z$/m);
      // delivered (9) over in (7): the backlog (5) found in the spool at start says why.
      assert.match(text.stdout, /^ {2}name +state +in +backlog +delivered +queued +spool +dropped +last error$/m);
      assert.match(text.stdout, /^ {2}server +down +7 +5 +9 +0 +3 ev, 0\.0 MB +0 +receiver down/m);
      assert.match(text.stdout, /^ {2}\(backlog: events found in the spool at start/m);
      assert.match(text.stdout, /^ {2}server spool: 2 damaged records skipped \(7 events known, 300 bytes\); 1 write errors$/m);
      // The server output's streams: the gateway in use and the counters that are not zero.
      // (wrapped under 100 columns: the lines are joined here)
      assert.match(text.stdout.replace(/,\n {18}/g, ', '), /^ {2}server streams: gateway 10\.0\.0\.2:7443 \(#1 of the addresses\), opened 3, lost\.connect_failed 4, lost\.server_ended 1, lost\.ack_timeout 1, lost\.preferred_return 1, nacked\.temporary 2, resent 3, held 1$/m);
      const json = await runHades(['agent', 'status', '--json', '--config', config]);
      assert.equal(json.status, 0, json.stderr);
      assert.deepEqual(JSON.parse(json.stdout), status());

      // The file broken by an edit (SIGHUP refused it, the agent runs on): its status still comes.
      writeFileSync(config, `agent: { data_dir: ${dataDir} }\noutputs: { file: { enabled: maybe } }\n`);
      const broken = await runHades(['agent', 'status', '--config', config]);
      assert.equal(broken.status, 0, broken.stderr);
      assert.match(broken.stdout, /^hades agent 9\.8\.7/);
      assert.match(broken.stderr, /does not pass the check now/);

      // An agent that runs without its status endpoint.
      writeFileSync(path.join(dataDir, 'agent.json'), JSON.stringify({ pid: process.pid, started: '2026-01-01T00:00:00.000Z', version: '9.8.7' }));
      const last = assertCodedFailure(await runHades(['agent', 'status', '--config', config]), 3, 'HADES_ERR_AGENT_STATUS_UNAVAILABLE');
      assert.match(last, /without its status endpoint/);
      // Enabled, but its address taken at a reload: the reason, not a setting it does not have.
      writeFileSync(path.join(dataDir, 'agent.json'), JSON.stringify({ pid: process.pid, started: '2026-01-01T00:00:00.000Z', version: '9.8.7', metrics_error: 'metrics cannot listen on 127.0.0.1:9479: EADDRINUSE' }));
      const taken = assertCodedFailure(await runHades(['agent', 'status', '--config', config]), 3, 'HADES_ERR_AGENT_STATUS_UNAVAILABLE');
      assert.match(taken, /status endpoint does not listen now: metrics cannot listen on 127\.0\.0\.1:9479: EADDRINUSE/);
      assert.doesNotMatch(taken, /metrics\.enabled is false/);
    } finally {
      lock.release();
      await server.close();
    }
  });
});

describe('run by a user who is not root', () => {
  const NOBODY = 65534;
  // The project must be readable by that user (a checkout under a private home is not).
  const readable = process.getuid?.() === 0 && spawnSync(process.execPath, ['-e', `require('fs').accessSync(${JSON.stringify(`${projectRoot}bin/hades.js`)})`], { uid: NOBODY, gid: NOBODY }).status === 0;
  const skip = !readable && 'needs root, and a project that user nobody can read';

  it('refuses the commands that load kernel programs with HADES_ERR_NOT_ROOT, not as a driver failure', { skip }, async () => {
    for (const args of [['events', '--duration', '1'], ['agent'], ['start', '--data', path.join(dir, 'never-started')]]) {
      const last = assertCodedFailure(await runHades(args, { uid: NOBODY, gid: NOBODY }), 3, 'HADES_ERR_NOT_ROOT');
      assert.match(last, /root/, args.join(' '));
    }
  });

  it('says that the agent\'s data folder is root\'s, not that no agent runs', { skip }, async () => {
    const { config, dataDir } = agentConfigFile('root-only.yaml');
    mkdirSync(dataDir, { mode: 0o700 });
    writeFileSync(path.join(dataDir, 'agent.json'), JSON.stringify({ pid: process.pid, started: '2026-01-01T00:00:00.000Z', version: '0.1.0', metrics: 'http://127.0.0.1:9' }));
    chmodSync(dir, 0o711);
    chmodSync(config, 0o644);
    const last = assertCodedFailure(await runHades(['agent', 'status', '--config', config], { uid: NOBODY, gid: NOBODY }), 3, 'HADES_ERR_AGENT_NOT_RUNNING');
    assert.match(last, /permission denied .*run hades agent status as root/);
  });

  it('says that the local deployment\'s credentials are root\'s, not that the server is not started', { skip }, async () => {
    const dataDir = path.join(dir, 'server-data');
    mkdirSync(path.join(dataDir, 'pki'), { recursive: true, mode: 0o755 });
    writeFileSync(path.join(dataDir, 'admin.token'), 'hades1_secret\n', { mode: 0o600 });
    writeFileSync(path.join(dataDir, 'pki', 'ca.pem'), 'not read\n', { mode: 0o644 });
    chmodSync(dir, 0o711);
    const config = file('server-root-only.yaml', `data_dir: ${dataDir}\n`);
    chmodSync(config, 0o644);
    const denied = await runHades(['agents', 'list', '--config', config], { uid: NOBODY, gid: NOBODY });
    const last = assertCodedFailure(denied, 3, 'HADES_ERR_LOCAL_CREDENTIALS');
    assert.match(last, /admin\.token: the local deployment's credentials are root's/);
    // Missing (the server never ran): the same code, saying so.
    const empty = file('server-empty.yaml', `data_dir: ${path.join(dir, 'never-ran')}\n`);
    assert.match(assertCodedFailure(await runHades(['agents', 'list', '--config', empty]), 3, 'HADES_ERR_LOCAL_CREDENTIALS'), /is missing\): start the server first/);
  });

  it('tells a user of hades start --data how to name that deployment when no credentials are found', async () => {
    const empty = file('server-never-ran.yaml', `data_dir: ${path.join(dir, 'never-ran-either')}\n`);
    const last = assertCodedFailure(await runHades(['agents', 'list', '--config', empty]), 3, 'HADES_ERR_LOCAL_CREDENTIALS');
    assert.match(last, /hades start --data DIR, pass --config DIR\/server\.yaml \(or set HADES_SERVER_CONFIG to it\)/);
  });
});

describe('hades config check --role agent, metrics', { concurrency: true }, () => {
  it('refuses a metrics.listen that is not loopback', async () => {
    const p = file('metrics-open.yaml', 'metrics: { listen: "0.0.0.0:1" }\n');
    const r = await runHades(['config', 'check', '--role', 'agent', p]);
    assertCodedFailure(r, 2, 'HADES_ERR_CONFIG_INVALID');
    assert.ok(r.stderr.includes(`${p}:1:20: HADES_ERR_CONFIG_VALUE: 'metrics.listen'`), r.stderr);
  });

  it('accepts a loopback metrics.listen', async () => {
    const r = await runHades(['config', 'check', '--role', 'agent', file('metrics-ok.yaml', 'metrics: { listen: "127.0.0.1:0" }\n')]);
    assert.equal(r.status, 0, r.stderr);
  });
});
