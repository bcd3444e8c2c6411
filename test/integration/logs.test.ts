/**
 * The log collector on real daemons (root): a real sshd refuses and accepts real SSH clients and
 * sudo runs and refuses commands; they log through a real rsyslogd into a syslog file, then
 * through a real journald, and the agent's built-in `logs` plugin turns what they logged into
 * `ssh_login` and `sudo` events. The default rule pack then finds the password guessing and the
 * login that followed it. Lines a user forges in the journal are not taken, and what is logged
 * while the agent is down is read when it comes back, once.
 *
 * The test owns /dev/log while it runs: on a machine where a syslog daemon or journald already
 * has it, it is skipped (the CI machines have none).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Agent } from '../../src/agent/daemon/agent.js';
import { loadRules } from '../../src/rules/index.js';
import { readDefaultPack } from '../../src/runtime/rule-pack.js';
import { memoryAgent, waitFor, type AnyEvent } from '../helpers/agent.js';
import { daemon, logDaemonsUnavailable, startJournald, startSshd, stopAll, stopDaemon, type Sshd } from '../helpers/log-daemons.js';

const dir = mkdtempSync(path.join(tmpdir(), 'hades-logs-'));
const skip = logDaemonsUnavailable();
after(() => {
  stopAll();
  rmSync(dir, { recursive: true, force: true });
});

const asNobody = (args: readonly string[], input?: string) => spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', ...args], { input: input ?? '', stdio: ['pipe', 'ignore', 'ignore'], timeout: 20_000 });


async function logsRunning(agent: Agent): Promise<void> {
  await waitFor('the log collector running', () => agent.status().plugins.some((p) => p.name === 'logs' && p.state === 'running'), 20_000);
}

const config = (data: string, logs: string) => `
agent: { data_dir: ${data}, heartbeat_s: 3600, drain_s: 1 }
limits: { cgroup: { enabled: false } }
plugins: { driver: false, grace_ms: 2000, health_s: 1, inventory: { enabled: false }, logs: ${logs} }
outputs: { file: { enabled: false } }
metrics: { enabled: false }
`;

const of = (events: readonly AnyEvent[], action: string) => events.filter((e) => e.event?.action === action);

describe('log collector on real sshd, sudo, rsyslog and journald', { skip }, () => {
  let sshd: Sshd;

  before(async () => {
    sshd = await startSshd(dir);
  });
  after(async () => {
    await stopDaemon(sshd.child);
  });

  it('reads logins and sudo from a syslog file written by rsyslog, and the rule pack finds the guessing and the login after it', async () => {
    const authLog = path.join(dir, 'auth.log');
    const rsyslogConf = path.join(dir, 'rsyslog.conf');
    writeFileSync(rsyslogConf, `module(load="imuxsock")\nauth,authpriv.* ${authLog}\n`);
    const rsyslog = daemon('/usr/sbin/rsyslogd', ['-n', '-f', rsyslogConf, '-i', path.join(dir, 'rsyslog.pid')]);
    try {
      await waitFor('/dev/log from rsyslogd', () => existsSync('/dev/log'), 10_000);
      // Something in the file before the agent starts: it begins at the end and skips it.
      execFileSync('logger', ['-p', 'auth.info', '-t', 'sudo', 'root : PWD=/ ; USER=root ; COMMAND=/bin/before-start']);
      await waitFor('auth.log', () => existsSync(authLog), 10_000);
      const { agent, transport } = memoryAgent(config(path.join(dir, 'data-files'), `{ source: files, files: [${authLog}], poll_ms: 100 }`));
      await agent.start();
      try {
        await logsRunning(agent);
        await new Promise((resolve) => setTimeout(resolve, 500));
        sshd.wrongPassword('root', 5);
        sshd.wrongPassword('root', 5);
        sshd.wrongPassword('no-such-user-7', 1);
        sshd.loginWithKey();
        const sudoRun = spawnSync('sudo', ['-u', 'nobody', '/usr/bin/true']);
        assert.equal(sudoRun.status, 0);
        asNobody(['sudo', '-S', '-u', 'root', '/usr/bin/id'], 'wrong\n');
        const events = await waitFor('the logins and sudo events', () => {
          const logins = of(transport.events, 'ssh_login');
          const sudo = of(transport.events, 'sudo');
          return logins.some((e) => e.event.outcome === 'success') && sudo.length >= 2 && logins.filter((e) => e.event.outcome === 'failure').length >= 12 ? transport.events : undefined;
        }, 30_000);
        const logins = of(events, 'ssh_login');
        const failures = logins.filter((e) => e.event.outcome === 'failure');
        const rootFailures = failures.filter((e) => e.user.name === 'root');
        assert.equal(rootFailures.length, 10, JSON.stringify(failures.map((e) => e.hades.log.message)));
        for (const e of rootFailures) {
          assert.equal(e.source.ip, '127.0.0.1');
          assert.ok(e.source.port > 0);
          assert.deepEqual(e.hades.ssh, { method: 'password', invalid_user: false });
          assert.equal(e.hades.log.source, 'file');
          assert.equal(e.hades.log.file, authLog);
          assert.equal(e.hades.log.program, 'sshd');
          assert.ok(e.hades.log.pid > 0);
          assert.ok(e.event.id && e.host.name && e.agent.version, 'the agent completed the common fields');
        }
        // `Invalid user` (before any attempt) and the attempt itself.
        const invalid = failures.filter((e) => e.user.name === 'no-such-user-7');
        assert.deepEqual(invalid.map((e) => e.hades.ssh), [{ invalid_user: true }, { method: 'password', invalid_user: true }]);
        const success = logins.find((e) => e.event.outcome === 'success') as AnyEvent;
        assert.equal(success.user.name, 'root');
        assert.equal(success.hades.ssh.method, 'publickey');
        assert.match(success.hades.ssh.key, /^ED25519 SHA256:/);
        const sudo = of(events, 'sudo');
        assert.ok(!sudo.some((e) => e.hades.sudo.command === '/bin/before-start'), 'lines before the start are not replayed');
        const ran = sudo.find((e) => e.event.outcome === 'success') as AnyEvent;
        assert.deepEqual({ user: ran.user, command: ran.hades.sudo.command }, { user: { name: 'root', target: { name: 'nobody' } }, command: '/usr/bin/true' });
        const refused = sudo.find((e) => e.event.outcome === 'failure') as AnyEvent;
        assert.deepEqual({ user: refused.user, command: refused.hades.sudo.command, reason: refused.hades.sudo.reason }, { user: { name: 'nobody', target: { name: 'root' } }, command: '/usr/bin/id', reason: 'user NOT in sudoers' });

        // The default pack: ten failures from one address, then a success from it.
        const { ruleSet } = loadRules(await readDefaultPack(), { samples: false });
        const fired = new Set<string>();
        for (const e of logins) for (const m of ruleSet.match(e)) fired.add(m.rule.id);
        assert.ok(fired.has('ssh_brute_force'), [...fired].join(', '));
        assert.ok(fired.has('ssh_brute_force_then_success'), [...fired].join(', '));
      } finally {
        await agent.stop();
      }
    } finally {
      await stopDaemon(rsyslog);
    }
  });

  it('reads them from journald, refuses lines a user forged, and reads what was logged while the agent was down', async () => {
    const journald = await startJournald();
    try {
      const data = path.join(dir, 'data-journal');
      const yaml = config(data, '{ source: auto }');
      let { agent, transport } = memoryAgent(yaml);
      await agent.start();
      try {
        await logsRunning(agent);
        await new Promise((resolve) => setTimeout(resolve, 1500)); // journalctl starts following
        asNobody(['logger', '-p', 'auth.info', '-t', 'sshd', 'Failed password for root from 203.0.113.66 port 4444 ssh2']);
        asNobody(['logger', '-p', 'auth.info', '-t', 'sudo', 'root : PWD=/ ; USER=root ; COMMAND=/bin/forged']);
        sshd.wrongPassword('root', 1);
        assert.equal(spawnSync('sudo', ['-u', 'nobody', '/bin/echo', 'first']).status, 0);
        // A refusal is logged by sudo as root (setuid) although a user ran it: taken.
        asNobody(['sudo', '-S', '-u', 'root', '/usr/bin/id'], 'wrong\n');
        await waitFor('events from the journal', () => of(transport.events, 'sudo').length >= 2 && of(transport.events, 'ssh_login').length >= 1, 30_000);
        await new Promise((resolve) => setTimeout(resolve, 1000));
        const logins = of(transport.events, 'ssh_login');
        assert.deepEqual(logins.map((e) => [e.source.ip, e.event.outcome, e.hades.log.source]), [['127.0.0.1', 'failure', 'journal']], 'the forged sshd line is not taken');
        assert.deepEqual(of(transport.events, 'sudo').map((e) => [e.user.name, e.event.outcome, e.hades.sudo.command]), [['root', 'success', '/bin/echo first'], ['nobody', 'failure', '/usr/bin/id']]);
        // The forged lines are counted, and the count is in the agent's status.
        const stats = await waitFor('the collector\'s counters', () => agent.status().plugins.find((p) => p.name === 'logs' && ((p.stats?.['journal'] as { untrusted?: number } | undefined)?.untrusted ?? 0) >= 2)?.stats, 10_000);
        assert.equal(stats['source'], 'journal');
      } finally {
        await agent.stop();
      }
      // Logged while no agent runs: read by the next one, and nothing read before comes again.
      assert.equal(spawnSync('sudo', ['-u', 'nobody', '/bin/echo', 'while-down']).status, 0);
      ({ agent, transport } = memoryAgent(yaml));
      await agent.start();
      try {
        await waitFor('the sudo logged while down', () => of(transport.events, 'sudo').find((e) => e.hades.sudo.command === '/bin/echo while-down'), 30_000);
        await new Promise((resolve) => setTimeout(resolve, 1000));
        assert.deepEqual(of(transport.events, 'sudo').map((e) => e.hades.sudo.command), ['/bin/echo while-down']);
        assert.deepEqual(of(transport.events, 'ssh_login'), []);
      } finally {
        await agent.stop();
      }
    } finally {
      await journald.stop();
    }
  });

  it('keeps a login that succeeded among failures over the rate limit, from the journal', async () => {
    const journald = await startJournald();
    try {
      const { agent, transport } = memoryAgent(config(path.join(dir, 'data-limit'), '{ source: journal, limits: { events_per_s: 2 } }'));
      await agent.start();
      try {
        await logsRunning(agent);
        await new Promise((resolve) => setTimeout(resolve, 1500)); // journalctl starts following
        sshd.wrongPassword('root', 5);
        sshd.wrongPassword('root', 5);
        sshd.loginWithKey();
        const success = await waitFor('the login', () => of(transport.events, 'ssh_login').find((e) => e.event.outcome === 'success'), 30_000);
        assert.equal(success.hades.log.source, 'journal');
        const dropped = await waitFor('failures over the limit counted', () => agent.status().plugins.find((p) => p.name === 'logs' && (p.dropped['rate_limited'] ?? 0) > 0)?.dropped['rate_limited'], 10_000);
        assert.ok(of(transport.events, 'ssh_login').filter((e) => e.event.outcome === 'failure').length + dropped === 10, 'every failure kept or counted');
      } finally {
        await agent.stop();
      }
    } finally {
      await journald.stop();
    }
  });
});
