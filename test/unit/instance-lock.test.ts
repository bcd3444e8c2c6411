/**
 * The agent's lock on its data folder (src/agent/daemon/instance-lock.ts): a socket file in the
 * folder, held for the agent's life, taken over when the agent that made it died.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { holdsFilesIn, InstanceLock, LOCK_SOCKET, processStartMs } from '../../src/agent/daemon/instance-lock.js';
import { HadesError } from '../../src/common/errors.js';

const root = mkdtempSync(path.join(tmpdir(), 'hades-lock-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const folder = () => {
  const dir = path.join(root, `d${++n}`);
  mkdirSync(dir, { mode: 0o700 });
  return dir;
};
const busy = () => new HadesError('HADES_ERR_AGENT_RUNNING', 'held');
const isBusy = (e: unknown) => e instanceof HadesError && e.code === 'HADES_ERR_AGENT_RUNNING';

/** A process that listens on the folder's socket, then is killed with SIGKILL: its socket file stays. */
async function leftByDeadAgent(dir: string): Promise<void> {
  const file = path.join(dir, LOCK_SOCKET);
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(file)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await once(child.stdout, 'data');
  child.kill('SIGKILL');
  await once(child, 'exit');
  assert.ok(existsSync(file), 'the socket file is left behind');
}

describe('the agent\'s lock on its data folder', () => {
  it('is held by one at a time, and free again once released (its socket file removed)', async () => {
    const dir = folder();
    assert.equal(await InstanceLock.held(dir), false);
    const first = await InstanceLock.acquire(dir, busy);
    assert.equal(await InstanceLock.held(dir), true);
    await assert.rejects(InstanceLock.acquire(dir, busy), isBusy);
    first.release();
    first.release();
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(existsSync(path.join(dir, LOCK_SOCKET)), false);
    const second = await InstanceLock.acquire(dir, busy);
    second.release();
  });

  it('takes over the socket file of an agent killed with SIGKILL, and a takeover left half done', async () => {
    const dir = folder();
    await leftByDeadAgent(dir);
    assert.equal(await InstanceLock.held(dir), false, 'nobody answers on it');
    const lock = await InstanceLock.acquire(dir, busy);
    assert.equal(await InstanceLock.held(dir), true);
    lock.release();

    // An agent that died during its takeover left the takeover folder: once stale, it is ignored.
    const other = folder();
    await leftByDeadAgent(other);
    const takeover = path.join(other, `${LOCK_SOCKET}.takeover`);
    mkdirSync(takeover);
    const old = (Date.now() - 60_000) / 1000;
    utimesSync(takeover, old, old);
    const again = await InstanceLock.acquire(other, busy);
    again.release();
  });

  it('lets one of several agents starting at once on a folder left by a dead one take it', async () => {
    const dir = folder();
    await leftByDeadAgent(dir);
    const results = await Promise.allSettled([0, 1, 2, 3].map(() => InstanceLock.acquire(dir, busy)));
    const won = results.filter((r): r is PromiseFulfilledResult<InstanceLock> => r.status === 'fulfilled');
    assert.equal(won.length, 1, results.map((r) => r.status).join(', '));
    assert.ok(results.every((r) => r.status === 'fulfilled' || isBusy(r.reason)));
    won[0]!.value.release();
  });

  it('makes its socket file again when it is removed, so no second agent starts beside it; says when another has it', async () => {
    const dir = folder();
    const file = path.join(dir, LOCK_SOCKET);
    const lock = await InstanceLock.acquire(dir, busy);
    assert.equal(await lock.check(), 'held');
    unlinkSync(file);
    assert.equal(await InstanceLock.held(dir), false, 'nobody answers on a removed file');
    assert.equal(await lock.check(), 'restored');
    assert.equal(await InstanceLock.held(dir), true);
    await assert.rejects(InstanceLock.acquire(dir, busy), isBusy);
    // Removed, and taken by another agent before the check: lost, and its release leaves the other's file.
    unlinkSync(file);
    const other = await InstanceLock.acquire(dir, busy);
    assert.equal(await lock.check(), 'lost');
    lock.release();
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(await InstanceLock.held(dir), true, 'the other agent\'s socket is still there');
    other.release();
  });

  it('takes its path back from a socket file nobody listens on (copied back with the folder, say), as a starting agent would', async () => {
    const dir = folder();
    const file = path.join(dir, LOCK_SOCKET);
    const lock = await InstanceLock.acquire(dir, busy);
    try {
      unlinkSync(file);
      await leftByDeadAgent(dir);
      assert.equal(await InstanceLock.held(dir), false, 'nobody answers on the file left');
      assert.equal(await lock.check(), 'restored');
      assert.equal(await InstanceLock.held(dir), true);
      assert.equal(await lock.check(), 'held');
      await assert.rejects(InstanceLock.acquire(dir, busy), isBusy);
    } finally {
      lock.release();
    }
  });

  it('says \'foreign\', not \'lost\', when another program\'s socket answers there: only another agent\'s lock makes the agent stop', async () => {
    const dir = folder();
    const file = path.join(dir, LOCK_SOCKET);
    const lock = await InstanceLock.acquire(dir, busy);
    unlinkSync(file);
    const other = spawn(process.execPath, ['-e', `require('net').createServer((s) => { s.on('error', () => {}); s.end('hello\\n'); }).listen(${JSON.stringify(file)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await once(other.stdout, 'data');
      assert.equal(await lock.check(), 'foreign');
      assert.equal(await lock.check(), 'foreign', 'left alone');
    } finally {
      other.kill('SIGKILL');
      await once(other, 'exit');
    }
    // Its program gone, the file is left by nobody: taken back.
    assert.equal(await lock.check(), 'restored');
    lock.release();
    assert.equal(existsSync(file), false, 'removed with the release');
  });

  it('says \'missing\' while its folder is gone and takes the lock back once it is there again; a release during a check leaves nothing listening', async () => {
    const dir = folder();
    const lock = await InstanceLock.acquire(dir, busy);
    rmSync(dir, { recursive: true, force: true });
    assert.equal(await lock.check(), 'missing');
    assert.equal(await lock.check(), 'missing', 'again at the next check, not given up');
    mkdirSync(dir, { mode: 0o700 });
    assert.equal(await lock.check(), 'restored');
    assert.equal(await InstanceLock.held(dir), true);
    // A check under way when the agent stops.
    unlinkSync(path.join(dir, LOCK_SOCKET));
    const checking = lock.check();
    lock.release();
    await checking;
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(await InstanceLock.held(dir), false, 'nothing listens after the release');
    const next = await InstanceLock.acquire(dir, busy);
    next.release();
  });

  it('gives a coded error, not a wrong \'agent running\', when the stale socket cannot be removed or a takeover never ends', async () => {
    // A folder where the socket should be: nobody listens, and it cannot be unlinked.
    const dir = folder();
    mkdirSync(path.join(dir, LOCK_SOCKET));
    await assert.rejects(InstanceLock.acquire(dir, busy), (e: unknown) => e instanceof HadesError && e.code === 'HADES_ERR_SPOOL_IO');
  });

  it('knows an agent of an older release by the files it has open in the folder, not by its name', async () => {
    const dir = folder();
    const spool = path.join(dir, 'spool.log');
    writeFileSync(spool, 'x');
    // A process that holds a file of the folder open, as an older agent holds its spool.
    const holder = spawn('bash', ['-c', `exec 3<${JSON.stringify(spool)}; echo up; exec sleep 30`], { stdio: ['ignore', 'pipe', 'inherit'] });
    // And one called ssh-agent with nothing of the folder open.
    const stranger = spawn('bash', ['-c', 'echo up; exec -a ssh-agent sleep 30'], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await Promise.all([once(holder.stdout, 'data'), once(stranger.stdout, 'data')]);
      const started = (pid: number) => processStartMs(pid) ?? NaN;
      assert.equal(holdsFilesIn(holder.pid!, started(holder.pid!), dir), true);
      assert.equal(holdsFilesIn(holder.pid!, started(holder.pid!) - 3_600_000, dir), false, 'a run file from another start of that pid');
      assert.equal(holdsFilesIn(stranger.pid!, started(stranger.pid!), dir), false);
      assert.equal(holdsFilesIn(2 ** 31 - 1, Date.now(), dir), false, 'nor one that is gone');
      // This process, and one of its threads, with a file of the folder open: never taken for another agent.
      const fd = openSync(spool, 'r');
      try {
        assert.equal(holdsFilesIn(process.pid, started(process.pid), dir), false, 'never this process');
        const thread = readdirSync('/proc/self/task').map(Number).find((tid) => tid !== process.pid);
        assert.ok(thread !== undefined);
        assert.equal(holdsFilesIn(thread, started(process.pid), dir), false, 'a thread id is no process');
      } finally {
        closeSync(fd);
      }
    } finally {
      holder.kill('SIGKILL');
      stranger.kill('SIGKILL');
    }
  });

  it('says why a socket cannot be made there: a path too long for a Unix socket', async () => {
    const deep = path.join(root, 'x'.repeat(120));
    mkdirSync(deep);
    await assert.rejects(InstanceLock.acquire(deep, busy), (e: unknown) => e instanceof HadesError && e.code === 'HADES_ERR_SPOOL_IO' && /at most 107 bytes/.test(e.message));
  });
});
