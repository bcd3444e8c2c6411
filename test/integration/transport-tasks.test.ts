// hades-test: shares the machine
/**
 * Tasks over a stream that reconnects: the server sends every unfinished task again at each
 * hello (its answer may have been lost with the stream), so the agent's transport must run a
 * task once and answer it again, not run it a second time.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { GrpcTransport, type GrpcTransportOptions, type ServerTask } from '../../src/agent/transport/grpc-transport.js';
import { TaskLedger } from '../../src/agent/transport/tasks.js';
import type { AnyEvent } from '../helpers/agent.js';
import { MAX_OPEN_TASKS } from '../../src/server/fleet/registry.js';
import { AGENT_VERSION, cleanupTempDirs, freePorts, GatewayStream, identityCredentials, sinkLogger, sleep, TestServer, waitUntil } from '../helpers/server.js';

after(cleanupTempDirs);

async function fixedServer(): Promise<TestServer> {
  const [agentsPort, apiPort] = await freePorts(2);
  return TestServer.start({ listen: { agents: `127.0.0.1:${agentsPort}`, api: `127.0.0.1:${apiPort}` } });
}

const online = async (server: TestServer, agentId: string): Promise<boolean | undefined> => {
  const agent = (await server.ok('GET', `/api/v1/agents/${agentId}`)) as AnyEvent;
  return agent['online'] === true ? true : undefined;
};

async function createTask(server: TestServer, agentId: string): Promise<string> {
  const body = { agents: [agentId], kind: 'log_level', params: { level: 'debug', duration_s: 60 } };
  return ((await server.ok('POST', '/api/v1/tasks', { body })).tasks[0] as AnyEvent)['id'] as string;
}

async function taskDone(server: TestServer, id: string): Promise<AnyEvent> {
  return waitUntil('the task done', async () => {
    const task = (await server.ok('GET', `/api/v1/tasks/${id}`)) as AnyEvent;
    return task['status'] === 'done' ? task : undefined;
  }, 15_000, 100);
}

/** A transport started for a new agent of the server, once the agent is online and has received a task it does not answer. */
async function taskReceived(server: TestServer, tasks?: TaskLedger): Promise<{ id: string; runs: ServerTask[]; options: GrpcTransportOptions; transport: GrpcTransport }> {
  const identity = await server.enrollAgent();
  const runs: ServerTask[] = [];
  const options: GrpcTransportOptions = { identity, addresses: [server.addresses.gateway], agentVersion: AGENT_VERSION, log: sinkLogger(), connectTimeoutMs: 3000, ...(tasks ? { tasks } : {}), onTask: (task) => runs.push(task) };
  const transport = new GrpcTransport(options);
  transport.start();
  await waitUntil('the agent online', () => online(server, identity.agentId), 10_000);
  const id = await createTask(server, identity.agentId);
  await waitUntil('the task received', () => runs.length > 0, 10_000);
  return { id, runs, options, transport };
}

describe('tasks while the stream to the server reconnects', () => {
  it('runs a task once when the server sends it again after a restart, while it still runs', { timeout: 60_000 }, async () => {
    const server = await fixedServer();
    const { id, runs, transport } = await taskReceived(server);
    const identity = { agentId: transport['options'].identity.agentId };
    try {
      // The task still runs (no answer yet) when the server restarts and sends it again.
      await server.stop();
      await server.start();
      await waitUntil('the agent online again', () => online(server, identity.agentId), 20_000, 200);
      await sleep(500);
      assert.equal(runs.length, 1, 'the task sent again while it runs is not run a second time');
      transport.taskResult(id, 'done', { level: 'debug' });
      const done = await taskDone(server, id);
      assert.deepEqual(done['result'], { level: 'debug' });
    } finally {
      await transport.close();
      await server.stop();
    }
  });

  it('sends again the answer lost with the stream instead of running the task again, also from a new transport (a reload)', { timeout: 60_000 }, async () => {
    const server = await fixedServer();
    const received = await taskReceived(server, new TaskLedger());
    const { id, runs, options } = received;
    let transport = received.transport;
    try {
      await server.stop();
      // Answered while no stream is open: the answer has nowhere to go now.
      transport.taskResult(id, 'done', { level: 'debug', run: 1 });
      // A reload makes a new transport, with the agent's same ledger.
      await transport.close();
      transport = new GrpcTransport(options);
      transport.start();
      await server.start();
      const done = await taskDone(server, id);
      assert.deepEqual(done['result'], { level: 'debug', run: 1 });
      assert.equal(runs.length, 1, 'the task was not run again');
    } finally {
      await transport.close();
      await server.stop();
    }
  });

  it('answers a task past the tasks it runs at once as failed (HADES_ERR_TASK_BUSY) without running it', { timeout: 60_000 }, async () => {
    const server = await fixedServer();
    // One task at a time here (MAX_RUNNING_TASKS in the agent): the first still runs.
    const { id, runs, transport, options } = await taskReceived(server, new TaskLedger(16, 1 << 20, 1));
    try {
      const second = await createTask(server, options.identity.agentId);
      const refused = await waitUntil('the second task answered', async () => {
        const task = (await server.ok('GET', `/api/v1/tasks/${second}`)) as AnyEvent;
        return task['status'] === 'failed' ? task : undefined;
      }, 15_000, 100);
      assert.equal((refused['result'] as AnyEvent)['code'], 'HADES_ERR_TASK_BUSY', JSON.stringify(refused));
      assert.deepEqual(runs.map((t) => t.id), [id], 'only the first task ran');
      transport.taskResult(id, 'done', { level: 'debug' });
      await taskDone(server, id);
    } finally {
      await transport.close();
      await server.stop();
    }
  });

  it('keeps the stream of an agent with as many tasks open as it may: a task or fleet query past them is refused (409 HADES_ERR_TASK_TOO_MANY), nothing made', { timeout: 120_000 }, async () => {
    // Every open task goes out at each hello: past the 4,096 messages a stream may leave unread,
    // each connection of the agent was ended at once, for as long as the tasks lasted.
    const server = await fixedServer();
    const offline = await server.enrollAgent();
    const other = await server.enrollAgent();
    const body = (agents: string[], i: number) => ({ agents, kind: 'query', params: { sql: `SELECT ${i}` }, timeout_s: 3600 });
    try {
      for (let i = 0; i < MAX_OPEN_TASKS; i += 64) {
        await Promise.all(Array.from({ length: 64 }, (_, j) => server.ok('POST', '/api/v1/tasks', { body: body([offline.agentId], i + j) })));
      }
      const refused = await server.api('POST', '/api/v1/tasks', { body: body([other.agentId, offline.agentId], -1) });
      assert.deepEqual([refused.status, refused.body.code], [409, 'HADES_ERR_TASK_TOO_MANY'], refused.text);
      assert.match(refused.body.message, new RegExp(`agent ${offline.agentId} has ${MAX_OPEN_TASKS} tasks open`));
      const fleet = await server.api('POST', '/api/v1/queries', { body: { sql: 'SELECT 1' } });
      assert.deepEqual([fleet.status, fleet.body.code], [409, 'HADES_ERR_TASK_TOO_MANY'], fleet.text);
      assert.deepEqual((await server.ok('GET', '/api/v1/tasks', { query: { agent: other.agentId } })).tasks, [], 'all or nothing: no task for the other agent');
      assert.deepEqual((await server.ok('GET', '/api/v1/queries')).queries, []);
      const stream = new GatewayStream(server.addresses.gateway, identityCredentials(offline));
      try {
        stream.hello('offline-host');
        await stream.welcome();
        await waitUntil('every open task received', () => stream.messages.filter((m) => m.task).length === MAX_OPEN_TASKS, 30_000);
        await sleep(1000);
        assert.equal(stream.end, undefined, `the stream ended: ${JSON.stringify(stream.end)}`);
      } finally {
        stream.close();
      }
    } finally {
      await server.stop();
    }
  });
});
