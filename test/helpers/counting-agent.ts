/**
 * An agent (in this process, without the driver or built-in collectors) whose only events are a
 * counting plugin's, 200 a second, numbered from 0 in one run, streamed to a test server: what
 * the tests of delivery through a server's restarts use to tell that every event arrived once.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { Agent } from '../../src/agent/daemon/agent.js';
import { agentConfig, pluginManifest, type AnyEvent } from './agent.js';
import { AGENT_VERSION, LogSink, tempDir, waitUntil, type TestServer } from './server.js';

/**
 * The configuration text of an agent without the driver or built-in collectors whose only events
 * are a counting plugin's (`manifest`, 200 events/s, when `plugins`), sent to a server in batches
 * of 50 (`token` and `ca_sha256` from an enrollment token), its spool never synced.
 */
function countingAgentText(options: { dir: string; manifest: string; api: string; token: { token: string; ca_sha256: string }; plugins: boolean }): string {
  const { dir, manifest, api, token, plugins } = options;
  return `
agent: { data_dir: ${path.join(dir, 'agent')}, heartbeat_s: 3600, drain_s: 5 }
limits: { cgroup: { enabled: false } }
plugins:
  driver: false
  inventory: { enabled: false }
  logs: { enabled: false }
  installed: [${plugins ? `{ manifest: ${manifest}, config: { rate: 200 } }` : ''}]
outputs:
  file: { enabled: false }
  server: { enabled: true, api: "${api}", token: ${token.token}, ca_sha256: ${token.ca_sha256}, batch_events: 50 }
spool: { fsync: never }
metrics: { listen: "127.0.0.1:0" }
`;
}

export class CountingAgent {
  private constructor(
    readonly agent: Agent,
    /** The agent's log. */
    readonly log: LogSink,
    private readonly text: (plugins: boolean) => string,
    readonly agentId: string,
    /** The plugin's run, which its events carry (hades.inventory.row.run). */
    readonly run: string,
    /** Its first events stored (at least 100). */
    readonly first: readonly AnyEvent[],
  ) {}

  /** Enrolls and starts the agent with `server` (as it is addressed now), and waits for its first 100 events there. */
  static async start(server: TestServer): Promise<CountingAgent> {
    const dir = tempDir('hades-counting-');
    const manifest = pluginManifest(dir, 'numbers', 'count');
    const token = await server.enrollmentToken('10m');
    const api = server.addresses.api;
    const text = (plugins: boolean) => countingAgentText({ dir, manifest, api, token, plugins });
    const log = new LogSink();
    const agent = new Agent({ config: agentConfig(text(true)), version: AGENT_VERSION, stderr: log });
    await agent.start();
    try {
      const agentId = await waitUntil('the agent in the fleet', async () => ((await server.ok('GET', '/api/v1/agents')).agents as AnyEvent[])[0]?.id as string | undefined);
      const first = await waitUntil('the first events', async () => {
        const events = await server.searchAll({ agent: agentId, action: 'inventory_change' });
        return events.length >= 100 ? events : undefined;
      });
      return new CountingAgent(agent, log, text, agentId, first[0]!['hades'].inventory.row.run as string, first);
    } catch (error) {
      await agent.stop();
      throw error;
    }
  }

  /** Stops the plugin (a reload without it) and waits for the spool to drain; nothing may be dropped. Returns the server output's counters. */
  async drain(timeoutMs: number): Promise<{ readonly in: number; readonly out: number }> {
    const reloaded = await this.agent.reload(this.text(false));
    assert.equal(reloaded.ok, true, reloaded.message);
    const output = await waitUntil('the spool to drain', () => {
      const out = this.agent.status().pipeline.outputs.find((o) => o.name === 'server');
      return out && out.queued === 0 && out.spool?.events === 0 && out.out === out.in ? out : undefined;
    }, timeoutMs, 100);
    assert.deepEqual(output.dropped, {}, 'nothing dropped');
    return output;
  }
}
