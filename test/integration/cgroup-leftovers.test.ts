/**
 * An agent killed with SIGKILL leaves its cgroups (and any plugin process that outlived it) on
 * this machine's kernel, as root: the next agent kills what is left in them, removes them and
 * says so, and touches nothing that is not an agent's tree. The agents are real processes (the
 * `hades agent` command), with a cgroup name of this test's own so that no other agent is near.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { Cgroups } from '../../src/agent/cgroup.js';
import { projectRoot } from '../helpers/generated-docs.js';
import { waitFor } from '../helpers/agent.js';
import { exited } from '../helpers/procs.js';

const name = `hadesleft${process.pid}`;
const isRoot = process.getuid?.() === 0;
const found = isRoot ? Cgroups.detect({ name }) : undefined;
const skip = !isRoot ? 'cgroups need root' : found instanceof Cgroups ? false : `no cgroup support: ${found?.unavailable ?? ''}`;
const dir = mkdtempSync(path.join(tmpdir(), 'hades-cgroup-left-'));
const children: ChildProcess[] = [];
const made: string[] = [];

after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await sleep(200);
  // Deepest first: whatever a failed run left.
  for (const folder of made.sort((a, b) => b.length - a.length)) {
    try {
      rmdirSync(folder);
    } catch {
      // Gone already, or still busy: nothing more to do.
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

const logFile = path.join(dir, 'agent.log');
const logLines = (): Record<string, unknown>[] =>
  (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

function startAgent(config: string): ChildProcess {
  const child = spawn(process.execPath, [`${projectRoot}bin/hades.js`, 'agent', '--config', config], { cwd: projectRoot, stdio: 'ignore' });
  children.push(child);
  return child;
}

/** A process that stands for a plugin (or its helper) left running: moved into `folders`. */
function leftProcess(folders: readonly string[]): ChildProcess {
  const child = spawn('sleep', ['300'], { stdio: 'ignore', detached: true });
  children.push(child);
  for (const folder of folders) {
    mkdirSync(folder, { recursive: true });
    made.push(folder);
    writeFileSync(path.join(folder, 'cgroup.procs'), String(child.pid));
  }
  return child;
}

describe(`cgroups a killed agent left (${found instanceof Cgroups ? `v${found.version}` : 'none'})`, { skip }, () => {
  it('are removed at the next start: what is left in them killed, what was removed logged, other cgroups untouched', async () => {
    const config = path.join(dir, 'agent.yaml');
    writeFileSync(config, [
      `agent: { data_dir: ${JSON.stringify(path.join(dir, 'data'))} }`,
      'plugins: { driver: false, inventory: { enabled: false }, logs: { enabled: false } }',
      `outputs: { file: { path: ${JSON.stringify(path.join(dir, 'events.ndjson'))} } }`,
      'metrics: { enabled: false }',
      `limits: { cgroup: { name: ${name} } }`,
      `log: { file: ${JSON.stringify(logFile)} }`,
      '',
    ].join('\n'));

    const first = startAgent(config);
    const started = await waitFor('the first agent started', () => logLines().find((l) => l['msg'] === 'agent started' && l['pid'] === first.pid));
    const cgroup = started['cgroup'] as { version?: number; base?: string };
    assert.ok(cgroup.base, `the agent has cgroups: ${JSON.stringify(cgroup)}`);
    // v2: the base folder; v1: `controllers:folder` for each hierarchy.
    const bases = cgroup.version === 2 ? [cgroup.base] : cgroup.base.split(' ').map((each) => each.slice(each.indexOf(':') + 1));
    made.push(...bases, ...bases.map((b) => path.join(b, 'agent')));
    assert.ok(bases.every((b) => path.basename(b) === name && existsSync(path.join(b, 'agent'))));

    // A plugin's helper that outlived it in the agent's tree; the tree of a second agent that
    // died long ago beside it, with its plugin still running; and a cgroup that is no agent's.
    const stuck = leftProcess(bases.map((b) => path.join(b, 'plugin-stuck')));
    const sibling = bases.map((b) => path.join(path.dirname(b), `${name}-999999`));
    for (const s of sibling) {
      mkdirSync(path.join(s, 'agent'), { recursive: true });
      made.push(s, path.join(s, 'agent'));
    }
    const old = leftProcess(sibling.map((s) => path.join(s, 'plugin-driver')));
    const foreign = leftProcess(bases.map((b) => path.join(path.dirname(b), `${name}x`)));

    first.kill('SIGKILL');
    assert.equal((await exited(first)).signal, 'SIGKILL');
    assert.ok(bases.every((b) => existsSync(path.join(b, 'plugin-stuck'))), 'kill -9 leaves the cgroups');

    const second = startAgent(config);
    const said = await waitFor('the second agent saying what it removed', () => logLines().find((l) => l['msg'] === 'removed the cgroups an earlier agent left'));
    const folders = said['folders'] as string[];
    const expected = [...bases.map((b) => path.join(b, 'plugin-stuck')), ...sibling.flatMap((s) => [path.join(s, 'agent'), path.join(s, 'plugin-driver'), s])];
    assert.deepEqual([...folders].sort(), [...expected].sort());
    assert.deepEqual([...(said['killed_pids'] as number[])].sort((a, b) => a - b), [stuck.pid, old.pid].sort((a, b) => (a ?? 0) - (b ?? 0)));
    assert.equal((await exited(stuck, 5000)).signal, 'SIGKILL');
    assert.equal((await exited(old, 5000)).signal, 'SIGKILL');
    assert.equal(foreign.exitCode === null && foreign.signalCode === null, true, 'a cgroup that is no agent\'s tree is left alone, with its process');
    for (const gone of expected) assert.equal(existsSync(gone), false, `${gone} removed`);
    await waitFor('the second agent started', () => logLines().find((l) => l['msg'] === 'agent started' && l['pid'] === second.pid));
    assert.ok(bases.every((b) => existsSync(path.join(b, 'agent'))), 'the second agent took over the tree');

    second.kill('SIGTERM');
    assert.equal((await exited(second)).code, 0);
    assert.ok(bases.every((b) => !existsSync(b)), 'its own tree goes at its stop');
    foreign.kill('SIGKILL');
    await exited(foreign);
  });
});
