/**
 * A flood of SSH log lines over the log collector's rate limit, through the real collector
 * process and the agent, from a syslog file: what is over the limit is dropped and counted, line
 * for line, successes too (any local user can write such a line into the file, so none is kept
 * over the limit from there). Which events are kept over the limit (successful logins from the
 * journal) is tested here as a rule, and on a real journald in logs.test.ts.
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import type { Agent } from '../../src/agent/daemon/agent.js';
import { keepLogEvent } from '../../src/agent/plugins/logs-plugin.js';
import { memoryAgent, waitFor, type MemoryTransport } from '../helpers/agent.js';

const dir = mkdtempSync(path.join(tmpdir(), 'hades-logs-flood-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** An agent whose log collector reads a file of its own, limited to 100 events/s. */
async function startAgent(name: string): Promise<{ agent: Agent; transport: MemoryTransport; authLog: string }> {
  const authLog = path.join(dir, `${name}.log`);
  writeFileSync(authLog, '');
  const { agent, transport } = memoryAgent(`
agent: { data_dir: ${path.join(dir, `data-${name}`)}, heartbeat_s: 3600, drain_s: 1 }
limits: { cgroup: { enabled: false } }
plugins: { driver: false, grace_ms: 2000, health_s: 1, inventory: { enabled: false }, logs: { source: files, files: [${authLog}], poll_ms: 100, limits: { events_per_s: 100 } } }
outputs: { file: { enabled: false } }
metrics: { enabled: false }
`);
  await agent.start();
  await waitFor('the log collector running', () => agent.status().plugins.some((p) => p.name === 'logs' && p.state === 'running'), 20_000);
  await new Promise((resolve) => setTimeout(resolve, 500));
  return { agent, transport, authLog };
}

/** The collector's status once it has made `count` events of what it read. */
const flooded = (agent: Agent, count: number) =>
  waitFor(
    'the flood read',
    () => {
      const logs = agent.status().plugins.find((p) => p.name === 'logs');
      return ((logs?.stats?.['events'] as number | undefined) ?? 0) >= count ? logs : undefined;
    },
    20_000,
  );

const line = (i: number, message: string, program = 'sshd') => `Nov 29 01:00:00 host ${program}[${1000 + i}]: ${message}\n`;

describe('log collector over its rate limit', () => {
  it('keeps successful SSH logins from the journal only', () => {
    const journal = { log: { source: 'journal' } };
    assert.equal(keepLogEvent({ event: { action: 'ssh_login', outcome: 'success' }, hades: journal }), true);
    assert.equal(keepLogEvent({ event: { action: 'ssh_login', outcome: 'success' }, hades: { log: { source: 'file' } } }), false, 'a syslog file line can be forged');
    assert.equal(keepLogEvent({ event: { action: 'sudo', outcome: 'success' }, hades: journal }), false, 'a sudoer can run sudo in a loop');
    assert.equal(keepLogEvent({ event: { action: 'ssh_login', outcome: 'failure' }, hades: journal }), false);
    assert.equal(keepLogEvent({ event: { action: 'exec', outcome: 'success' }, hades: journal }), false);
    assert.equal(keepLogEvent({}), false);
  });

  it('from a syslog file, drops what is over the limit, successes too (a file line can be forged)', async () => {
    const { agent, transport, authLog } = await startAgent('kept');
    try {
      // 3,000 failures with two successes and a sudo run among them, written at once: one read.
      let text = '';
      for (let i = 0; i < 3000; i++) {
        text += line(i, `Failed password for root from 198.51.100.7 port ${10_000 + i} ssh2`);
        if (i === 1500) text += line(i, 'Accepted password for alice from 198.51.100.7 port 9999 ssh2');
        if (i === 2990) text += line(i, 'Accepted publickey for bob from 203.0.113.5 port 7777 ssh2: ED25519 SHA256:abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG');
        if (i === 2995) text += line(i, 'alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id', 'sudo');
      }
      const written = Date.now();
      appendFileSync(authLog, text);
      await flooded(agent, 3003);
      const seconds = Math.ceil((Date.now() - written) / 1000);
      // Every line either kept (delivered) or counted as dropped, once the two have caught up.
      const keptOf = () => transport.events.filter((e) => e.event?.action === 'ssh_login' || e.event?.action === 'sudo').length;
      const kept = await waitFor('every line kept or counted', () => {
        const dropped = agent.status().plugins.find((p) => p.name === 'logs')?.dropped['rate_limited'] ?? 0;
        return dropped + keptOf() === 3003 ? keptOf() : undefined;
      }, 20_000);
      // The burst of 100, and 100 a second refilled while the flood was read (a second on a quiet machine).
      assert.ok(kept <= 100 + 100 * Math.max(1, seconds), `kept ${kept}: the limit, with ${seconds} s of refill`);
    } finally {
      await agent.stop();
    }
  });
});
