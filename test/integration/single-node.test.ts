/**
 * End to end, as a person runs it: `hades start` brings up the server and a local agent with the
 * kernel driver enrolled to it; a command run on the host is found through the API (with
 * `hades search`) with its ancestry; `hades agents list` shows the agent online; Ctrl-C stops
 * everything and leaves no process behind.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { waitFor } from '../helpers/agent.js';
import { projectRoot } from '../helpers/generated-docs.js';
import { alive, childrenOf } from '../helpers/procs.js';

const root = process.getuid?.() === 0;
const dir = mkdtempSync(path.join(tmpdir(), 'hades-start-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const hades = (...args: string[]) => spawnSync(process.execPath, [`${projectRoot}bin/hades.js`, ...args], { cwd: projectRoot, encoding: 'utf8' });

/** `hades start` on this test's data folder and free ports, its output gathered as it comes. */
function startHades(...more: string[]) {
  const child = spawn(process.execPath, [`${projectRoot}bin/hades.js`, 'start', '--data', dir, '--api', '127.0.0.1:0', '--gateway', '127.0.0.1:0', ...more], { cwd: projectRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (d: string) => (output.stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (output.stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, output, exited };
}

describe('hades start (single node, root, real driver)', { skip: root ? false : 'needs root' }, () => {
  it('killed with SIGKILL, takes its local agent with it, so the next start runs; a local agent that fails makes the start fail with a code', async () => {
    const serverConfig = path.join(dir, 'server.yaml');
    const first = startHades();
    await waitFor('the start banner', () => /API:\s+(https:\/\/\S+)/.exec(first.output.stdout)?.[1], 60_000, 100);
    await waitFor('the local agent online', () => {
      const listed = hades('agents', 'list', '--json', '--config', serverConfig);
      return listed.status === 0 && listed.stdout.includes('"online":true') ? true : undefined;
    }, 60_000, 250);
    const [agentPid] = childrenOf(first.child.pid ?? 0, (_stat, argv) => argv.includes('agent'));
    assert.ok(agentPid !== undefined, 'the local agent is a child of hades start');
    first.child.kill('SIGKILL');
    await first.exited;
    await waitFor('the orphaned agent stopping', () => !alive(agentPid) || undefined, 30_000, 100);
    // An agent of this data folder run by hand holds it: the start's own agent cannot run.
    const squatter = spawn(process.execPath, [`${projectRoot}bin/hades.js`, 'agent', '--config', path.join(dir, 'agent', 'agent.yaml')], { cwd: projectRoot, stdio: 'ignore' });
    try {
      const runFile = path.join(dir, 'agent', 'agent.json');
      await waitFor('the other agent holding the folder', () => (existsSync(runFile) && readFileSync(runFile, 'utf8').includes(`"pid":${squatter.pid}`)) || undefined, 30_000, 100);
      const second = startHades();
      const timer = setTimeout(() => second.child.kill('SIGINT'), 90_000);
      const status = await second.exited;
      clearTimeout(timer);
      assert.equal(status, 3, second.output.stderr);
      assert.match(second.output.stderr, /HADES_ERR_LOCAL_AGENT_EXITED: the local agent exited \(status 3\)/);
    } finally {
      squatter.kill('SIGINT');
      await new Promise((resolve) => squatter.once('exit', resolve));
    }
  });


  it('finds a command run on the host through the API, with its ancestry, and stops clean', async () => {
    const { child, output, exited } = startHades();
    try {
      const api = await waitFor('the start banner', () => /API:\s+(https:\/\/\S+)/.exec(output.stdout)?.[1], 60_000, 100);
      assert.match(output.stdout, /admin token:\s+hadesapi_/);
      const serverConfig = path.join(dir, 'server.yaml');
      writeFileSync(serverConfig, `data_dir: ${path.join(dir, 'server')}\nlisten: { api: "${api.replace('https://', '')}" }\n`);
      const online = () => {
        const listed = hades('agents', 'list', '--json', '--config', serverConfig);
        return listed.status === 0 && listed.stdout.includes('"online":true') ? listed.stdout : undefined;
      };
      await waitFor('the local agent online', online, 60_000, 250);
      const marker = `hades-e2e-${process.pid}`;
      // The agent is online as soon as its stream is open, before its driver has attached: hades
      // start says when it watches, and a command run after that line is seen, the first time.
      await waitFor('the local agent watching', () => output.stdout.includes('The local agent watches this machine now') || undefined, 60_000, 100);
      // Run through a shell, so that the event has an ancestry of several processes.
      spawnSync('/bin/sh', ['-c', `/bin/echo ${marker}`]);
      const found = await waitFor(
        'the exec event through the API',
        () => {
          const result = hades('search', '--json', '--since', '10m', '--action', 'exec', '--config', serverConfig, `process.args=${marker}`);
          if (result.status !== 0) return undefined;
          const events = result.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>);
          return events.find((e) => (e['process'].executable === '/bin/echo' || e['process'].executable === '/usr/bin/echo') && e['hades'].ancestors?.length >= 1);
        },
        30_000,
        250,
      );
      assert.ok(found['hades'].ancestors.length >= 1, 'the event carries its ancestors');
      assert.equal(found['hades'].ancestors[0].name, 'sh');
      assert.match(found['hades'].ancestry as string, /^echo\(\d+\) < sh\(\d+\)/);
      assert.match(found['agent'].id as string, /^ag_/);
      assert.ok(found['event'].ingested, 'the server stamped event.ingested');
      const person = hades('search', '--since', '10m', '--action', 'exec', '--config', serverConfig, `process.args=${marker}`);
      assert.match(person.stdout, new RegExp(`exec\\s+echo\\(\\d+\\)\\s+/bin/echo ${marker}`));
      // The local agent killed: started again after a backoff, while the server and its API stay up.
      const isAgent = (_stat: string, argv: readonly string[]) => argv.includes('agent');
      const [killed] = childrenOf(child.pid ?? 0, isAgent);
      assert.ok(killed !== undefined);
      process.kill(killed, 'SIGKILL');
      await waitFor('the restart said', () => /the local agent exited \(signal SIGKILL\).*; starting it again in 1 s/.exec(output.stderr) ?? undefined, 30_000, 100);
      const restarted = await waitFor('another local agent', () => childrenOf(child.pid ?? 0, isAgent).find((pid) => pid !== killed), 30_000, 100);
      assert.equal(child.exitCode, null, 'hades start goes on');
      assert.ok(hades('agents', 'list', '--json', '--config', serverConfig).status === 0, 'the API answers');
      // hades start at its limit of open files when its agent ends: the agent cannot be started
      // (no descriptor for its pipe), which is tried again, not the end of everything.
      const soft = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync(`/proc/${child.pid ?? 0}/limits`, 'utf8'))?.[1] ?? '1024';
      const setLimit = (n: string) => assert.equal(spawnSync('prlimit', ['--pid', String(child.pid ?? 0), `--nofile=${n}:`]).status, 0);
      setLimit('3');
      try {
        process.kill(restarted, 'SIGKILL');
        await waitFor('the failed start said', () => /the local agent could not be started: .*HADES_ERR_FD_LIMIT\); starting it again in \d+ s/.exec(output.stderr) ?? undefined, 30_000, 100);
      } finally {
        setLimit(soft);
      }
      await waitFor('a local agent once descriptors are free', () => childrenOf(child.pid ?? 0, isAgent).find((pid) => pid !== killed && pid !== restarted), 60_000, 100);
      assert.equal(child.exitCode, null, 'hades start goes on');
      await waitFor('the API answering', () => hades('agents', 'list', '--json', '--config', serverConfig).status === 0 || undefined, 30_000, 250);
    } finally {
      child.kill('SIGINT');
    }
    assert.equal(await exited, 0, output.stderr);
    const left = spawnSync('pgrep', ['-f', `hades.js agent --config ${path.join(dir, 'agent')}`], { encoding: 'utf8' });
    assert.equal(left.stdout.trim(), '', 'the local agent is gone');
  });

  it('refuses a --config that is not a valid server configuration, before starting anything', () => {
    const bad = path.join(dir, 'bad-server.yaml');
    writeFileSync(bad, 'store: { retention_days: soon }\n');
    const result = hades('start', '--data', dir, '--api', '127.0.0.1:0', '--gateway', '127.0.0.1:0', '--config', bad);
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, /^hades: HADES_ERR_CONFIG_INVALID: .*bad-server\.yaml:1:\d+: HADES_ERR_CONFIG_TYPE/m);
  });

  it('refuses, as --config, the server.yaml it writes in the data folder at each start (it would replace the settings with its own), and leaves the file alone', () => {
    const own = path.join(dir, 'server.yaml');
    const settings = 'cmdb: { file: /etc/hades/cmdb.csv }\n';
    writeFileSync(own, settings);
    // Through a relative path too: it is the same file.
    const result = spawnSync(process.execPath, [`${projectRoot}bin/hades.js`, 'start', '--data', dir, '--api', '127.0.0.1:0', '--gateway', '127.0.0.1:0', '--config', 'server.yaml'], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, /^hades: HADES_ERR_CLI_INVALID_ARGUMENT: --config server\.yaml is the file hades start writes .*\(such as .*settings\.yaml/m);
    assert.equal(readFileSync(own, 'utf8'), settings);
  });

  it('started again (with a server configuration for its other settings), the enrolled agent comes back with its identity, and no enrollment token is made for it', async () => {
    const cmdb = path.join(dir, 'cmdb.csv');
    writeFileSync(cmdb, `hostname,owner\n${hostname()},team-start\n`);
    const settings = path.join(dir, 'start-server.yaml');
    writeFileSync(settings, `cmdb: { file: ${JSON.stringify(cmdb)} }\nlisten: { api: "127.0.0.1:1" }\n`);
    const { child, output, exited } = startHades('--config', settings);
    try {
      const api = await waitFor('the start banner', () => /API:\s+(https:\/\/\S+)/.exec(output.stdout)?.[1], 60_000, 100);
      const serverConfig = path.join(dir, 'server.yaml');
      writeFileSync(serverConfig, `data_dir: ${path.join(dir, 'server')}\nlisten: { api: "${api.replace('https://', '')}" }\n`);
      const agents = await waitFor(
        'the local agent online again',
        () => {
          const listed = hades('agents', 'list', '--json', '--config', serverConfig);
          return listed.status === 0 && listed.stdout.includes('"online":true') ? listed.stdout.split('\n').filter(Boolean) : undefined;
        },
        60_000,
        250,
      );
      assert.equal(agents.length, 1, 'the same agent, not a second enrollment');
      assert.equal((JSON.parse(agents[0]!) as { cmdb?: { owner?: string } }).cmdb?.owner, 'team-start', 'the CMDB of --config');
      assert.match(api, /^https:\/\/127\.0\.0\.1:(?!1$)\d+$/, '--api, not the file\'s listen.api');
      assert.doesNotMatch(readFileSync(path.join(dir, 'agent', 'agent.yaml'), 'utf8'), /token:/, 'no token written for an enrolled agent');
    } finally {
      child.kill('SIGINT');
    }
    assert.equal(await exited, 0, output.stderr);
  });

  it('started again after its local agent was revoked, enrolls the agent anew and says so', async () => {
    const serverConfig = path.join(dir, 'server.yaml');
    const first = startHades();
    let revokedId = '';
    try {
      await waitFor('the start banner', () => /API:\s+(https:\/\/\S+)/.exec(first.output.stdout)?.[1], 60_000, 100);
      const online = await waitFor('the local agent online', () => {
        const listed = hades('agents', 'list', '--json', '--config', serverConfig);
        return listed.status === 0 && listed.stdout.includes('"online":true') ? (JSON.parse(listed.stdout.split('\n')[0]!) as { id: string }) : undefined;
      }, 60_000, 250);
      revokedId = online.id;
      const revoked = hades('agents', 'revoke', revokedId, '--config', serverConfig);
      assert.equal(revoked.status, 0, revoked.stderr);
    } finally {
      first.child.kill('SIGINT');
    }
    assert.equal(await first.exited, 0, first.output.stderr);
    const again = startHades();
    try {
      await waitFor('the start banner', () => /API:\s+(https:\/\/\S+)/.exec(again.output.stdout)?.[1], 60_000, 100);
      assert.match(again.output.stderr, new RegExp(`the local agent ${revokedId} was revoked .*enrolls anew`));
      const fresh = await waitFor('another agent online', () => {
        const listed = hades('agents', 'list', '--json', '--config', serverConfig);
        const agents = listed.status === 0 ? listed.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { id: string; online: boolean }) : [];
        return agents.find((a) => a.online && a.id !== revokedId);
      }, 60_000, 250);
      assert.notEqual(fresh.id, revokedId);
      assert.ok(readFileSync(path.join(dir, 'agent', `identity.revoked-${revokedId}`, 'agent.json'), 'utf8').includes(revokedId), 'the old identity kept aside');
    } finally {
      again.child.kill('SIGINT');
    }
    assert.equal(await again.exited, 0, again.output.stderr);
  });
});
