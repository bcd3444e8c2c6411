// hades-test: shares the machine
/**
 * The agent's data folder taken away while the agent runs (a clean-up of /var/lib, a folder under
 * /tmp aged out): the agent goes on, says so with a code, and takes the folder back. No driver, no
 * cgroups, metrics on loopback ports of the test's own.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { waitFor } from '../helpers/agent.js';
import { runHades } from '../helpers/cli.js';
import { startHades, stopHades, type HadesRun } from '../helpers/procs.js';

const dir = mkdtempSync(path.join(tmpdir(), 'hades-cli-agent-data-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const readText = (file: string): string => (existsSync(file) ? readFileSync(file, 'utf8') : '');

function configText(data: string, log: string, metrics: string): string {
  return [
    `agent: { data_dir: ${JSON.stringify(data)} }`,
    'plugins: { driver: false, inventory: { enabled: false }, logs: { enabled: false } }',
    'limits: { cgroup: { enabled: false } }',
    `outputs: { file: { path: ${JSON.stringify(path.join(dir, 'events.ndjson'))} } }`,
    `metrics: { listen: ${JSON.stringify(metrics)} }`,
    `log: { file: ${JSON.stringify(log)} }`,
    '',
  ].join('\n');
}

/** A loopback port held by the test, so that the agent cannot listen there until it is closed. */
async function holdPort(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port };
}

const alive = (run: HadesRun, log: string): void =>
  assert.equal(run.child.exitCode, null, `the agent died: ${run.stderr()}\n${readText(log).slice(-3000)}`);

describe('the agent\'s data folder removed while it runs', { concurrency: true, skip: process.getuid?.() === 0 ? false : 'the agent runs as root' }, () => {
  it('makes the folder again: its lock, its run file and hades agent status come back', async () => {
    const data = path.join(dir, 'data-removed');
    const log = path.join(dir, 'removed.log');
    const config = path.join(dir, 'removed.yaml');
    writeFileSync(config, configText(data, log, '127.0.0.1:0'));
    const run = startHades(['agent', '--config', config]);
    try {
      await waitFor('the agent started', () => readText(log).includes('"agent started"'), 30_000);
      rmSync(data, { recursive: true, force: true });
      await waitFor('the lock made again', () => {
        alive(run, log);
        return readText(log).includes('lock socket was removed or replaced; made again');
      }, 15_000);
      await waitFor('the run file written again', () => existsSync(path.join(data, 'agent.json')));
      alive(run, log);
      const status = await runHades(['agent', 'status', '--config', config, '--json']);
      assert.equal(status.status, 0, status.stderr);
      assert.equal((JSON.parse(status.stdout) as { pid: number }).pid, run.child.pid);
      assert.equal(await stopHades(run), 0, run.stderr());
    } finally {
      await stopHades(run);
    }
  });

  it('a metrics endpoint that listens at last while the run file cannot be written is logged, not fatal', async () => {
    // The retry of a metrics address (taken at a reload) writes the run file from a timer: an
    // exception there (ENOENT, ENOTDIR, ENOSPC) used to end the process.
    const data = path.join(dir, 'data-retry');
    const log = path.join(dir, 'retry.log');
    const config = path.join(dir, 'retry.yaml');
    writeFileSync(config, configText(data, log, '127.0.0.1:0'));
    const run = startHades(['agent', '--config', config]);
    const held = await holdPort();
    try {
      await waitFor('the agent started', () => readText(log).includes('"agent started"'), 30_000);
      writeFileSync(config, configText(data, log, `127.0.0.1:${held.port}`));
      run.child.kill('SIGHUP');
      await waitFor('the reload said the address is taken', () => readText(log).split('\n').find((l) => l.includes('configuration applied in part') && l.includes('HADES_ERR_METRICS_LISTEN')));
      // A file where the folder was: nothing can be written there, nor the folder made again.
      renameSync(data, `${data}.away`);
      writeFileSync(data, 'not a folder\n');
      held.server.close();
      const said = await waitFor('the run file failure logged', () => {
        alive(run, log);
        return readText(log).split('\n').find((l) => l.includes('the run file cannot be written'));
      }, 25_000);
      assert.match(said, /"level":"warn".*"code":"HADES_ERR_SPOOL_IO".*ENOTDIR/);
      assert.match(readText(log), /metrics endpoint listening/);
      await new Promise((resolve) => setTimeout(resolve, 300));
      alive(run, log);
      rmSync(data);
      renameSync(`${data}.away`, data);
      assert.equal(await stopHades(run), 0, run.stderr());
    } finally {
      held.server.close();
      await stopHades(run);
    }
  });
});
