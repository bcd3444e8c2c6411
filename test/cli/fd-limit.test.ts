// hades-test: shares the machine (its agent loads no driver; every port is ephemeral; each limit is set on its own processes)
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { projectRoot } from '../helpers/generated-docs.js';
import { pluginManifest, waitFor } from '../helpers/agent.js';
import { runHades } from '../helpers/cli.js';
import { childrenOf, startHades, stopHades } from '../helpers/procs.js';
import { waitUntil } from '../helpers/server.js';

const dir = mkdtempSync(path.join(tmpdir(), 'hades-cli-fds-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const hades = `${projectRoot}bin/hades.js`;
const hasPrlimit = spawnSync('prlimit', ['--version']).status === 0;

/** `hades ARGS` started with `n` as its limit of open files (soft and hard). */
function withLimit(n: number, args: readonly string[]): { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string } {
  const r = spawnSync('prlimit', [`--nofile=${n}:${n}`, process.execPath, hades, ...args], { cwd: projectRoot, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

const readText = (file: string): string => (existsSync(file) ? readFileSync(file, 'utf8') : '');
const openFds = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;
/** Sets the soft limit only: raising it back stays within the hard limit, which needs no privilege. */
const setLimit = (pid: number, n: number): void => {
  const r = spawnSync('prlimit', ['--pid', String(pid), `--nofile=${n}:`], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
};

/**
 * Connections that the process at its limit cannot take: each is dropped, none may crash it.
 * Plain TCP with a timer of our own: a fetch() whose connection is accepted and closed at once
 * can stay pending with no handle left to keep the test's event loop alive (seen in CI).
 */
async function knock(url: string, times: number): Promise<void> {
  const { hostname, port } = new URL(url);
  for (let i = 0; i < times; i++) {
    await new Promise<void>((resolve) => {
      const socket = connect({ host: hostname, port: Number(port) });
      const timer = setTimeout(() => socket.destroy(), 2000);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.on('connect', () => socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    });
  }
}

describe('too few file descriptors', { skip: hasPrlimit ? false : 'prlimit(1) is not installed' }, () => {
  // Each command loads its own modules when it runs (src/cli/registry.ts): the one that fails is
  // either the program's first import (bin/hades.js says so, with the limit) or the command's
  // (the CLI says so, HADES_ERR_FD_LIMIT from toHadesError). One coded line either way.
  for (const args of [['config', 'defaults'], ['rules', 'test']]) {
    it(`hades ${args.join(' ')} with a limit too low to load says so in one coded line, no stack trace`, () => {
      for (const n of [24, 64]) {
        const r = withLimit(n, args);
        assert.equal(r.signal, null);
        assert.equal(r.status, 3, r.stderr);
        assert.equal(r.stdout, '');
        const lines = r.stderr.trimEnd().split('\n');
        assert.equal(lines.length, 1, r.stderr);
        assert.match(lines[0]!, /^hades: HADES_ERR_FD_LIMIT: .*(EMFILE|too few file descriptors).*`ulimit -n.*LimitNOFILE/);
      }
      // With room, the same command works.
      assert.equal(withLimit(4096, args).status, 0);
    });
  }

  it('hades --version, which loads no command, answers with a limit of 24', () => {
    const r = withLimit(24, ['--version']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^\d+\.\d+\.\d+/);
  });

  it('a running agent that reaches its limit logs HADES_ERR_FD_LIMIT, drops what it cannot take, and keeps going', { skip: process.getuid?.() === 0 ? false : 'the agent runs as root' }, async () => {
    const data = path.join(dir, 'agent-data');
    const log = path.join(dir, 'agent.log');
    const config = path.join(dir, 'agent.yaml');
    writeFileSync(config, [
      `agent: { data_dir: ${JSON.stringify(data)}, heartbeat_s: 1 }`,
      'plugins: { driver: false, inventory: { enabled: false }, logs: { enabled: false } }',
      // Beside other tests' agents (this file shares the machine): no cgroup tree of its own.
      'limits: { cgroup: { enabled: false } }',
      `outputs: { file: { path: ${JSON.stringify(path.join(dir, 'events.ndjson'))} } }`,
      'metrics: { listen: "127.0.0.1:0" }',
      `log: { file: ${JSON.stringify(log)} }`,
      '',
    ].join('\n'));
    const run = startHades(['agent', '--config', config]);
    try {
      const metrics = await waitFor('the agent\'s run file', () => {
        const text = readText(path.join(data, 'agent.json'));
        return text ? (JSON.parse(text) as { metrics?: string }).metrics : undefined;
      });
      const pid = run.child.pid!;
      setLimit(pid, openFds(pid));
      await knock(`${metrics}/metrics`, 5);
      const said = await waitFor('HADES_ERR_FD_LIMIT in the agent\'s log', () => readText(log).split('\n').find((l) => l.includes('HADES_ERR_FD_LIMIT')));
      assert.match(said, /"level":"error".*file descriptors this process may open .* in use: new connections are dropped/);
      assert.equal(run.child.exitCode, null, `still running: ${run.stderr()}\n${readText(log).slice(-3000)}`);
      setLimit(pid, 1024);
      await waitFor('the agent saying its descriptors are free', () => (readText(log).includes('file descriptors are free again') ? true : undefined));
      const health = await fetch(`${metrics}/healthz`, { signal: AbortSignal.timeout(5000) });
      assert.equal(health.status, 200);
      assert.equal(await stopHades(run), 0, run.stderr());
    } finally {
      await stopHades(run);
    }
  });

  it('a plugin that dies while the agent is at its limit is started again once descriptors are free; the agent lives', { skip: process.getuid?.() === 0 ? false : 'the agent runs as root' }, async () => {
    // Its restart could open no pipes: Node then gives a child without stdio, and reading its
    // stdin threw from the restart timer (the agent died); then five starts that failed for want
    // of descriptors gave the plugin up for good.
    const data = path.join(dir, 'agent-plugin-data');
    const log = path.join(dir, 'agent-plugin.log');
    const config = path.join(dir, 'agent-plugin.yaml');
    const manifest = pluginManifest(dir, 'counter', 'count');
    writeFileSync(config, [
      `agent: { data_dir: ${JSON.stringify(data)}, heartbeat_s: 1 }`,
      'plugins:',
      '  driver: false',
      '  inventory: { enabled: false }',
      '  logs: { enabled: false }',
      `  installed: [{ manifest: ${JSON.stringify(manifest)}, config: { rate: 20 } }]`,
      'limits: { cgroup: { enabled: false } }',
      `outputs: { file: { path: ${JSON.stringify(path.join(dir, 'plugin-events.ndjson'))} } }`,
      'metrics: { listen: "127.0.0.1:0" }',
      `log: { file: ${JSON.stringify(log)} }`,
      '',
    ].join('\n'));
    const run = startHades(['agent', '--config', config]);
    try {
      await waitFor('the agent started', () => readText(log).includes('"agent started"'), 30_000);
      const pid = run.child.pid!;
      const plugin = await waitFor('the plugin', () => childrenOf(pid, (_stat, argv) => argv.some((a) => a.endsWith('test-plugin.mjs')))[0]);
      setLimit(pid, openFds(pid));
      process.kill(plugin, 'SIGKILL');
      // Past the five failed starts that gave a plugin up (100 ms doubling: about 3 s).
      await new Promise((resolve) => setTimeout(resolve, 4000));
      assert.match(readText(log), /HADES_ERR_FD_LIMIT/);
      assert.equal(run.child.exitCode, null, `still running: ${run.stderr()}\n${readText(log).slice(-3000)}`);
      assert.doesNotMatch(readText(log), /plugin given up/);
      setLimit(pid, 1024);
      const state = await waitUntil('the plugin running again', async () => {
        const r = await runHades(['agent', 'status', '--config', config, '--json']);
        const plugins = r.status === 0 ? (JSON.parse(r.stdout) as { plugins: { name: string; state: string; pid?: number }[] }).plugins : [];
        const counter = plugins.find((p) => p.name === 'counter');
        return counter?.state === 'running' && counter.pid !== plugin ? counter : undefined;
      }, 20_000, 500);
      assert.equal(state.state, 'running');
      assert.equal(await stopHades(run), 0, run.stderr());
    } finally {
      await stopHades(run);
    }
  });

  it('a running server that reaches its limit logs HADES_ERR_FD_LIMIT, drops connections, and keeps going', async () => {
    const data = path.join(dir, 'server-data');
    const log = path.join(dir, 'server.log');
    const config = path.join(dir, 'server.yaml');
    writeFileSync(config, `data_dir: ${JSON.stringify(data)}\nlisten: { agents: "127.0.0.1:0", api: "127.0.0.1:0" }\nlog: { file: ${JSON.stringify(log)} }\n`);
    const run = startHades(['server', '--config', config]);
    try {
      const api = await waitFor('the server listening', () => /API (https:\/\/127\.0\.0\.1:\d+)/.exec(run.stderr())?.[1], 60_000);
      const pid = run.child.pid!;
      setLimit(pid, openFds(pid));
      // TLS with a CA of its own: the connection is what matters, not the answer.
      await knock(`${api}/api/v1/health`, 5);
      const said = await waitFor('HADES_ERR_FD_LIMIT in the server\'s log', () => readText(log).split('\n').find((l) => l.includes('HADES_ERR_FD_LIMIT')));
      assert.match(said, /"level":"error".*in use: new connections are dropped/);
      assert.equal(run.child.exitCode, null, `still running: ${run.stderr()}\n${readText(log).slice(-3000)}`);
      setLimit(pid, 1024);
      await waitFor('the server saying its descriptors are free', () => (readText(log).includes('file descriptors are free again') ? true : undefined));
      assert.equal(await stopHades(run), 0, run.stderr());
    } finally {
      await stopHades(run);
    }
  });
});
