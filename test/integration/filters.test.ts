/** In-kernel filters, set at start and changed while running, against the real kernel. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { parseConfig, AgentConfigSchema, type AgentConfig } from '../../src/common/config/index.js';
import type { HadesEvent } from '../../src/common/events/index.js';
import { HadesError } from '../../src/common/errors.js';
import { KernelEvents } from '../../src/agent/kernel-events.js';
import { run } from '../helpers/events-session.js';
import { waitFor } from '../helpers/agent.js';

const isRoot = process.getuid?.() === 0;
const dir = mkdtempSync(path.join(tmpdir(), 'hades-filter-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function config(yaml: string): AgentConfig {
  const result = parseConfig(yaml, AgentConfigSchema);
  assert.ok(result.ok);
  return result.config;
}

/** Events of the exec whose arguments hold `marker`. */
const execWith = (events: readonly HadesEvent[], marker: string) => events.filter((e) => e.event.action === 'exec' && (e as { process?: { args?: string[] } }).process?.args?.includes(marker));

function cgroup2Root(): string | undefined {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .find((f) => f[2] === 'cgroup2')?.[1];
}

describe('in-kernel filters', { skip: !isRoot && 'kernel events need root' }, () => {
  it('drops a denied executable in the kernel, and lets it through once allowed again, without a restart', async () => {
    const marker = `hx${randomBytes(4).toString('hex')}`;
    const denied = path.join(dir, `${marker}-true`);
    copyFileSync('/bin/true', denied);
    const events: HadesEvent[] = [];
    const source = new KernelEvents({ config: config(`driver:\n  deny_executables: [${denied}]\n`), agentVersion: 'test', emit: (e) => events.push(e) > 0 });
    await source.start();
    try {
      const pidBefore = source.driverPid;
      await run(denied, ['first']);
      // An exec after it that is reported: once it is seen, the denied one would have been too.
      await run('/bin/true', [`${marker}-probe`]);
      await waitFor('the probe exec', () => execWith(events, `${marker}-probe`).length > 0 || undefined, 10_000);
      const execsOf = () => events.filter((e) => e.event.action === 'exec' && (e as { process: { executable?: string } }).process.executable === denied);
      assert.equal(execsOf().length, 0, 'denied executable is not reported');
      await source.setFilters({ denyExecutables: [], denyCgroups: [], allowCgroups: [] });
      await run(denied, ['second']);
      await waitFor('the exec once allowed', () => execsOf().length > 0 || undefined, 10_000);
      assert.equal(execsOf().length, 1, 'reported once the filter is removed');
      assert.equal(source.driverPid, pidBefore, 'the driver was not restarted');
    } finally {
      await source.stop();
    }
    const filtered = source.stats().kernel['sched_process_exec']?.['filtered'] ?? 0;
    assert.ok(filtered >= 1, `the kernel counted the filtered exec (${filtered})`);
  });

  it('drops the processes of a denied cgroup', { skip: !cgroup2Root() && 'no cgroup v2 hierarchy' }, async () => {
    const marker = `hx${randomBytes(4).toString('hex')}`;
    const group = path.join(cgroup2Root() ?? '', `hades-filter-${marker}`);
    mkdirSync(group);
    const events: HadesEvent[] = [];
    const source = new KernelEvents({ config: config(`driver:\n  deny_cgroups: [${group}]\n`), agentVersion: 'test', emit: (e) => events.push(e) > 0 });
    await source.start();
    try {
      await run('/bin/sh', ['-c', `echo $$ > ${group}/cgroup.procs && exec /bin/sh -c ':' ${marker}-in`]);
      await run('/bin/sh', ['-c', ':', `${marker}-out`]);
      const seen = (m: string) => events.some((e) => (e as { process?: { args?: string[] } }).process?.args?.includes(m));
      // The other process ran after it: once it is seen, the denied one would have been too.
      await waitFor('the process outside the cgroup', () => seen(`${marker}-out`) || undefined, 10_000);
      assert.equal(seen(`${marker}-in`), false, 'process in the denied cgroup is not reported');
    } finally {
      await source.stop();
      rmdirSync(group);
    }
  });

  it('refuses a cgroup folder that does not exist with a coded error, before starting', async () => {
    const source = new KernelEvents({ config: config('driver:\n  deny_cgroups: [/sys/fs/cgroup/no-such-group]\n'), agentVersion: 'test', emit: () => true });
    await assert.rejects(source.start(), (e: unknown) => e instanceof HadesError && e.code === 'HADES_ERR_CONFIG_VALUE');
    assert.equal(source.driverPid, undefined);
  });

  it('refuses a folder that is not a cgroup v2 folder (a v1 hierarchy, any other folder): its inode number would name another cgroup', async () => {
    // A v1 controller's root has inode 1 like the v2 root: denying it filtered every process.
    const v1 = ['/sys/fs/cgroup/memory', '/sys/fs/cgroup/cpu'].find((f) => existsSync(f) && !f.startsWith(cgroup2Root() ?? '\0'));
    for (const folder of [...(v1 === undefined ? [] : [v1]), '/tmp', '/etc/hostname']) {
      const source = new KernelEvents({ config: config(`driver:\n  allow_cgroups: [${folder}]\n`), agentVersion: 'test', emit: () => true });
      await assert.rejects(source.start(), (e: unknown) => e instanceof HadesError && e.code === 'HADES_ERR_CONFIG_VALUE' && e.message.includes(folder), folder);
      assert.equal(source.driverPid, undefined);
    }
  });
});
