/**
 * CA rotation with a real `hades agent` process (root) and the commands an operator types:
 * `hades server ca rotate`, `status` and `retire-old` (refused while an agent is left on the old
 * CA, then `--force`). The running agent receives the new CA on its stream, stores it, renews
 * under it and goes on sending its heartbeats (none stored twice, none missing); restarted after
 * the retirement, it connects to the server certificate of the new CA. An agent enrolled before
 * the rotation and started only after the forced retirement says, with its code, that it must be
 * enrolled again.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { caCertificates, loadIdentity } from '../../src/agent/transport/enroll.js';
import { type AnyEvent } from '../helpers/agent.js';
import { projectRoot } from '../helpers/generated-docs.js';
import { cleanupTempDirs, tempDir, TestServer, waitUntil } from '../helpers/server.js';

const root = process.getuid?.() === 0;

/** The `hades` command, run as a person would (asynchronously: the server runs in this process). */
function hades(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [`${projectRoot}bin/hades.js`, ...args], { cwd: projectRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve) => child.on('close', (status) => resolve({ status, stdout, stderr })));
}

class AgentProcess {
  readonly child: ChildProcess;
  stderr = '';
  readonly exited: Promise<number | null>;

  constructor(configFile: string) {
    this.child = spawn(process.execPath, [`${projectRoot}bin/hades.js`, 'agent', '--config', configFile], { cwd: projectRoot, stdio: ['ignore', 'ignore', 'pipe'] });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((resolve) => this.child.on('close', (code) => resolve(code)));
  }

  async stop(): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    return this.exited;
  }
}

const sha256 = (pem: string): string => new X509Certificate(pem).fingerprint256.replace(/:/g, '').toLowerCase();

describe('a CA rotation with a real agent process and the operator\'s commands (root)', { skip: root ? false : 'needs root' }, () => {
  let server: TestServer | undefined;
  const running: AgentProcess[] = [];
  after(async () => {
    await Promise.all(running.map((a) => a.stop()));
    await server?.stop();
    cleanupTempDirs();
  });

  it('rotates, moves the agent, retires the old CA, and tells an agent left behind to enroll again', { timeout: 120_000 }, async () => {
    server = await TestServer.start();
    const s = server;
    const dir = tempDir('hades-ca-rotation-');
    const serverYaml = path.join(dir, 'server.yaml');
    writeFileSync(serverYaml, `data_dir: ${JSON.stringify(s.dataDir)}\nlisten: { api: "${s.addresses.api.replace('https://', '')}" }\n`);
    const agentConfig = async (name: string): Promise<{ dataDir: string; configFile: string }> => {
      const token = await s.enrollmentToken('10m');
      const dataDir = path.join(dir, `agent-${name}`);
      const configFile = path.join(dir, `agent-${name}.yaml`);
      writeFileSync(
        configFile,
        `
agent: { data_dir: ${dataDir}, heartbeat_s: 1, drain_s: 2 }
limits: { cgroup: { enabled: false } }
plugins:
  driver: false
outputs:
  file: { enabled: false }
  server: { enabled: true, api: "${s.addresses.api}", token: ${token.token}, ca_sha256: ${token.ca_sha256}, renew_jitter_s: 1 }
spool: { fsync: never }
metrics: { listen: "127.0.0.1:0" }
`,
      );
      return { dataDir, configFile };
    };
    const start = (configFile: string): AgentProcess => {
      const agent = new AgentProcess(configFile);
      running.push(agent);
      return agent;
    };
    const ca = async (...args: string[]) => await hades('server', 'ca', ...args, '--config', serverYaml);
    const status = async () => JSON.parse((await ca('status', '--json')).stdout) as { rotation: string; cas: { state: string; sha256: string; agents: number }[]; agents_on_old?: string[] };

    // The agent left behind: enrolled now (its process started once, until it has an identity), offline during the rotation.
    const behind = await agentConfig('behind');
    let agent = start(behind.configFile);
    const behindId = await waitUntil('the agent left behind enrolled', () => loadIdentity(behind.dataDir)?.agentId, 30_000, 200);
    await agent.stop();

    const moving = await agentConfig('moving');
    agent = start(moving.configFile);
    let agentId = '';
    try {
      agentId = await waitUntil('the agent enrolled', () => loadIdentity(moving.dataDir)?.agentId, 30_000, 200);
      await waitUntil('the agent online', async () => ((await s.ok('GET', `/api/v1/agents/${agentId}`)) as AnyEvent)['online'] === true, 30_000, 200);
    } catch (error) {
      assert.fail(`${String(error)}\nagent log:\n${agent.stderr.slice(-4000)}`);
    }
    const oldSha = s.addresses.caSha256;
    assert.deepEqual((await status()).cas.map((c) => [c.state, c.sha256, c.agents]), [['current', oldSha, 2]]);

    const rotated = await ca('rotate', '--json');
    assert.equal(rotated.status, 0, rotated.stderr);
    const newSha = (JSON.parse(rotated.stdout) as { ca: { sha256: string } }).ca.sha256;
    const twice = await ca('rotate');
    assert.notEqual(twice.status, 0);
    assert.match(twice.stderr, /HADES_ERR_CA_ROTATION_IN_PROGRESS/);
    const text = await ca('status');
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /rotation in progress/);

    // The agent renews under the new CA by itself (renew_jitter_s: 1) and reconnects with it.
    try {
      await waitUntil('the agent on the new CA', async () => (await status()).cas.find((c) => c.state === 'new')?.agents === 1 || undefined, 45_000, 500);
    } catch (error) {
      assert.fail(`${String(error)}\nagent log:\n${agent.stderr.slice(-6000)}\nserver log:\n${s.log.text.slice(-4000)}`);
    }
    const identity = loadIdentity(moving.dataDir)!;
    assert.deepEqual(caCertificates(identity.caPem).map((c) => sha256(c.toString())).sort(), [oldSha, newSha].sort());
    assert.deepEqual((await status()).agents_on_old, [behindId]);

    const refused = await ca('retire-old');
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, new RegExp(`HADES_ERR_CA_AGENTS_REMAIN.*${behindId}`));
    const forced = await ca('retire-old', '--force');
    assert.equal(forced.status, 0, forced.stderr);
    assert.match(forced.stdout, /1 agent was still on the retired CA: refused from now on/);
    const nothing = await ca('retire-old');
    assert.match(nothing.stderr, /HADES_ERR_CA_NOTHING_TO_RETIRE/);

    // The agent stores the new CA alone, and after a restart connects to the new server certificate.
    await waitUntil('the new CA alone trusted', () => caCertificates(loadIdentity(moving.dataDir)!.caPem).length === 1 || undefined, 15_000, 200);
    await agent.stop();
    const restartedAt = Date.now();
    agent = start(moving.configFile);
    try {
      await waitUntil('a heartbeat after the restart', async () => {
        const { events } = (await s.ok('GET', '/api/v1/events', { query: { since: '10m', agent: agentId, action: 'agent_health', limit: 1, order: 'desc' } })) as { events: AnyEvent[] };
        return events.some((e) => Date.parse(e['@timestamp'] as string) > restartedAt) || undefined;
      }, 30_000, 250);
    } catch (error) {
      assert.fail(`${String(error)}\nagent log:\n${agent.stderr.slice(-6000)}`);
    }
    await agent.stop();
    const after = await status();
    assert.deepEqual(after.cas.map((c) => [c.state, c.sha256, c.agents]), [['current', newSha, 1], ['retired', oldSha, 1]]);

    // Every event stored once; each of the agent's two runs numbers its events from 0, and none
    // is missing: the numbers 0..m come twice (both runs), m+1..max once (the longer run).
    const events = await s.searchAll({ agent: agentId, since: '10m' });
    const ids = events.map((e) => e['event'].id as string);
    assert.ok(ids.length > 3);
    assert.equal(new Set(ids).size, ids.length, 'none stored twice');
    assert.equal(s.server!.stats().gateway!.duplicates, 0, 'no batch sent twice');
    const counts = new Map<number, number>();
    for (const e of events) counts.set(Number(e['event'].sequence), (counts.get(Number(e['event'].sequence)) ?? 0) + 1);
    const max = Math.max(...counts.keys());
    let shorter = -1;
    while (counts.get(shorter + 1) === 2) shorter++;
    const missing = Array.from({ length: max + 1 }, (_, n) => n).filter((n) => counts.get(n) !== (n <= shorter ? 2 : 1));
    assert.ok(shorter >= 0, 'both runs stored events');
    assert.deepEqual(missing, [], `sequence numbers missing or repeated (runs of ${shorter + 1} and ${max + 1} events)`);

    // The agent left behind, started now: it trusts the retired CA only, and says what to do.
    const left = start(behind.configFile);
    await waitUntil('the refusal in the agent\'s log', () => /HADES_ERR_SERVER_CA_UNTRUSTED/.test(left.stderr) || undefined, 30_000, 200);
    assert.match(left.stderr, /retired while this agent was offline.*enrolled again/);
    await left.stop();
  });
});
