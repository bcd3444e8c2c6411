// hades-test: shares the machine (a server on ephemeral loopback ports and an agent without the driver)
/**
 * The server's database removed or replaced while an agent streams to it: the server puts its
 * content back at the path and restarts its parts on it, on the ports it had, and every event
 * the agent sent is stored exactly once, in the file at the path (src/server/store-files.ts).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { CountingAgent } from '../helpers/counting-agent.js';
import { cleanupTempDirs, TestServer, waitUntil } from '../helpers/server.js';

after(cleanupTempDirs);

/** The numbers plugin's events in the file at `file`, read as another process would after the server stopped. */
function storedNumbers(file: string, run: string): number[] {
  const db = new Database(file, { readonly: true });
  try {
    const rows = db.prepare("SELECT json_extract(event, '$.hades.inventory.row.n') AS n FROM events WHERE json_extract(event, '$.hades.inventory.row.run') = ? ORDER BY id").all(run) as { n: number }[];
    return rows.map((r) => r.n);
  } finally {
    db.close();
  }
}

/**
 * Starts a server (ports left to the system) and an agent whose plugin counts at 200 events/s,
 * calls `lose` with the database's path once events are stored, and checks that the server
 * comes back on the same ports and that every event is stored once, in order.
 */
async function streamThrough(
  lose: (file: string, server: TestServer) => Promise<void> | void,
  check?: (server: TestServer, file: string) => Promise<void> | void,
  afterStop?: (server: TestServer) => Promise<void>,
): Promise<void> {
  const server = await TestServer.start();
  const file = path.join(server.dataDir, 'hades.db');
  const counting = await CountingAgent.start(server).catch(async (error: unknown) => {
    await server.stop();
    throw error;
  });
  const { agent, agentId, run, first } = counting;
  let agentStopped = false;
  let serverStopped = false;
  try {
    const restarts = () => server.log.lines().filter((l) => l['msg'] === 'the server runs again on its database put back at its path').length;

    await lose(file, server);
    await waitUntil('the restart on the database put back', () => restarts() >= 1, 30_000, 100);
    const lost = server.log.lines().find((l) => l['code'] === 'HADES_ERR_STORE_LOST');
    assert.ok(lost, 'the loss is logged with its code');
    await check?.(server, file);
    // The same API address (its port was left to the system) and the same admin token: the database came back whole.
    const before = first.length;
    await waitUntil('events after the restart', async () => {
      try {
        return (await server.searchAll({ agent: agentId, action: 'inventory_change' })).length > before + 300 || undefined;
      } catch {
        return undefined;
      }
    }, 30_000, 200);
    const output = await counting.drain(30_000);
    await agent.stop();
    agentStopped = true;
    await server.stop();
    serverStopped = true;

    // What a later start (or anyone) finds at the path: every event, once, in order.
    const numbers = storedNumbers(file, run);
    assert.equal(numbers.length, output.in, 'every event the agent took is in the file at the path');
    assert.deepEqual(numbers, numbers.map((_, i) => i), 'none missing, none twice, in order');
    assert.equal(restarts(), 1, 'one restart');
    await afterStop?.(server);
  } finally {
    if (!agentStopped) await agent.stop();
    if (!serverStopped) await server.stop();
  }
}

describe('the server\'s database lost while an agent streams', () => {
  it('removed: put back at its path with everything acknowledged; the server runs on, on the same ports', { timeout: 120_000 }, async () => {
    await streamThrough((file) => rmSync(file));
  });

  it('removed with its folder\'s other database files (-wal, -shm): the same', { timeout: 120_000 }, async () => {
    await streamThrough((file) => {
      for (const suffix of ['', '-wal', '-shm']) rmSync(`${file}${suffix}`, { force: true });
    });
  });

  it('its -wal removed: checkpointed, reopened, nothing lost', { timeout: 120_000 }, async () => {
    await streamThrough((file) => rmSync(`${file}-wal`));
  });

  it('replaced by another file: the server\'s content wins, the other is moved aside and kept', { timeout: 120_000 }, async () => {
    await streamThrough(
      (file) => {
        renameSync(file, `${file}.moved`);
        writeFileSync(file, 'not a database');
      },
      (_server, file) => {
        const aside = readdirSync(path.dirname(file)).filter((f) => f.startsWith('hades.db.replaced-') && !f.endsWith('-wal') && !f.endsWith('-shm'));
        assert.equal(aside.length, 1);
      },
    );
  });

  it('a copy that cannot be written is tried again (the agents keep their events) until it can', { timeout: 120_000 }, async () => {
    await streamThrough(async (file, server) => {
      // Something the copy cannot replace at its name, for a while.
      mkdirSync(`${file}.restoring`);
      writeFileSync(path.join(`${file}.restoring`, 'x'), '');
      rmSync(file);
      await waitUntil('the failed copy, said', () => server.log.lines().some((l) => typeof l['msg'] === 'string' && l['msg'].startsWith('the event database lost from its path could not be copied back; tried again')), 15_000, 100);
      assert.equal(existsSync(file), false);
      rmSync(`${file}.restoring`, { recursive: true });
    });
  });

  it('removed with the whole data folder: the CA, server certificate and database are written back, and the next start keeps the CA', { timeout: 120_000 }, async () => {
    let ca = '';
    await streamThrough(
      (file) => {
        ca = readFileSync(path.join(path.dirname(file), 'pki', 'ca.pem'), 'utf8');
        rmSync(path.dirname(file), { recursive: true });
      },
      (server, file) => {
        const dir = path.dirname(file);
        for (const name of ['ca.pem', 'ca.key', 'server.pem', 'server.key']) assert.equal(statSync(path.join(dir, 'pki', name)).mode & 0o777, 0o600, name);
        assert.equal(readFileSync(path.join(dir, 'pki', 'ca.pem'), 'utf8'), ca);
        assert.ok(server.log.lines().some((l) => l['msg'] === 'files of the CA and server certificate were gone: written back from the ones this server holds'));
      },
      async (server) => {
        // A later start of its own: the same CA (a new one would refuse every agent).
        await server.start();
        try {
          assert.equal(server.caPem, ca);
        } finally {
          await server.stop();
        }
      },
    );
  });
});

describe('the server\'s database removed just before the server stops', () => {
  it('is put back at the stop: every acknowledged write is in the file at the path', { timeout: 60_000 }, async () => {
    const server = await TestServer.start();
    const file = path.join(server.dataDir, 'hades.db');
    try {
      for (let i = 0; i < 10; i++) await server.enrollmentToken('10m');
      rmSync(file);
    } finally {
      await server.stop();
    }
    assert.ok(server.log.lines().some((l) => l['code'] === 'HADES_ERR_STORE_LOST'), 'said');
    const db = new Database(file, { readonly: true });
    try {
      assert.equal((db.prepare('SELECT count(*) AS n FROM enrollment_tokens').get() as { n: number }).n, 10);
    } finally {
      db.close();
    }
  });
});
