/**
 * The agent daemon in-process with real plugin processes (test/fixtures/plugins/test-plugin.mjs)
 * and the receiver double: supervision, budgets, protocol errors, the spool, reload, metrics,
 * and a clean shutdown. The kernel driver is off here (see agent-daemon.test.ts for it).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { Agent } from '../../src/agent/daemon/agent.js';
import type { Pipeline } from '../../src/agent/pipeline/pipeline.js';
import { Spool } from '../../src/agent/spool.js';
import type { HadesEvent } from '../../src/common/events/index.js';
import { agentConfig, EventSink, groupMembers, MemoryTransport, pluginManifest, waitFor, type AnyEvent } from '../helpers/agent.js';

const dir = mkdtempSync(path.join(tmpdir(), 'hades-agent-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

interface YamlOptions {
  /** Lines under `plugins:` after the common ones. */
  readonly plugins?: string;
  readonly heartbeatS?: number;
  readonly logLevel?: string;
  readonly dataDir?: string;
}

function baseYaml(options: YamlOptions = {}): string {
  const data = options.dataDir ?? path.join(dir, `data-${n++}`);
  return `
agent: { data_dir: ${data}, heartbeat_s: ${options.heartbeatS ?? 3600}, drain_s: 2 }
limits: { sustain_s: 5, cgroup: { enabled: false } }
plugins:
  driver: false
  inventory: { enabled: false }
  logs: { enabled: false }
  health_s: 1
  grace_ms: 500
${options.plugins ?? ''}
outputs: { file: { enabled: false } }
metrics: { listen: "127.0.0.1:0" }
log: { level: ${options.logLevel ?? 'debug'} }
`;
}

interface Harness {
  readonly agent: Agent;
  readonly server: MemoryTransport;
  readonly logs: EventSink;
  readonly configFile: string;
}

async function startAgent(yaml: string): Promise<Harness> {
  const configFile = path.join(dir, `agent-${n++}.yaml`);
  writeFileSync(configFile, yaml);
  const server = new MemoryTransport();
  const logs = new EventSink();
  const agent = new Agent({ config: agentConfig(yaml), configFile, version: '0.0.0-test', transports: [server], stderr: logs });
  await agent.start();
  return { agent, server, logs, configFile };
}

const plugins = (entries: [name: string, mode: string, extra?: string][]) =>
  `  installed:\n${entries.map(([name, mode, extra]) => `    - { manifest: ${pluginManifest(dir, name, mode)}${extra ? `, ${extra}` : ''} }`).join('\n')}`;

/** The test plugin's numbered events, from the plugin of that name (its mode is in each row). */
const rows = (events: readonly AnyEvent[], plugin: string) =>
  events.filter((e) => e['event'].action === 'inventory_change' && e['hades'].inventory.table === 'test' && e['hades'].inventory.row.plugin === plugin);
const gapsOf = (events: readonly AnyEvent[], component: string) => events.filter((e) => e['event'].action === 'agent_gap' && e['hades'].gap.component === component);

describe('agent daemon: plugin supervision', () => {
  it('restarts a crashing plugin with growing backoff, reports each gap, and gives up after five short runs', async () => {
    const h = await startAgent(baseYaml({ plugins: plugins([['crasher', 'crash']]) }));
    try {
      const status = await waitFor('the plugin to be given up', () => h.agent.status().plugins.find((p) => p.name === 'crasher' && p.state === 'failed'), 30_000);
      assert.equal(status.restarts, 4);
      assert.match(status.lastError ?? '', /HADES_ERR_PLUGIN_START.*failed 5 times in a row.*exit status 3/);
      const gaps = gapsOf(h.server.events, 'crasher');
      assert.equal(gaps.length, 5, 'one agent_gap per restart, and the last one, given up');
      assert.ok(gaps.slice(0, 4).every((g) => g['hades'].gap.reason === 'exit status 3'));
      assert.match(gaps[4]!['hades'].gap.reason, /^exit status 3; given up: .*failed 5 times in a row/);
      // Backoff doubles from 100 ms: each gap lasts at least its own backoff (100, 200, 400, 800 ms),
      // and the plugin's start (until its hello) on top, which a loaded machine may make longer for
      // one restart than for the next: so no strict growth from one gap to the next is asked.
      const lengths = gaps.slice(0, 4).map((g) => Date.parse(g['hades'].gap.end) - Date.parse(g['hades'].gap.start));
      for (let i = 0; i < lengths.length; i++) assert.ok(lengths[i]! >= 100 * 2 ** i, `gap ${i} lasts at least ${100 * 2 ** i} ms: ${lengths.join(', ')}`);
      assert.ok(lengths[3]! > lengths[0]!, `the last gap is longer than the first: ${lengths.join(', ')}`);
    } finally {
      await h.agent.stop();
    }
  });

  it('keeps its drop totals since start across a reload that replaces the outputs', { timeout: 60_000 }, async () => {
    // An HTTP output nobody answers, with the smallest spool: a flood fills it, and drops start.
    const base = baseYaml({ plugins: plugins([['flooder', 'flood', 'limits: { events_per_s: 100000, cpu_percent: 400 }']]) });
    const yaml = (extra: string) =>
      base.replace(
        'outputs: { file: { enabled: false } }',
        `outputs: { file: { enabled: false }, http: { enabled: true, url: "http://127.0.0.1:9/events"${extra} } }\nspool: { max_mb: 1, fsync: never }`,
      );
    const h = await startAgent(yaml(''));
    try {
      const spoolFull = () => h.agent.status().drops.find((d) => d.hook === 'http' && d.reason === 'spool_full')?.total ?? 0;
      const before = await waitFor('spool_full drops', () => (spoolFull() > 0 ? spoolFull() : undefined), 30_000);
      // Said in the agent's log within the report period (10 s), by output and reason.
      const said = await waitFor('the drops in the log', () => h.logs.events.find((l) => l['code'] === 'HADES_ERR_EVENTS_DROPPED'), 15_000, 100);
      assert.match(String(said['drops']), /spool\/http spool_full \d+/);
      writeFileSync(h.configFile, yaml(', batch_events: 100'));
      const reloaded = await h.agent.reload();
      assert.equal(reloaded.ok, true, reloaded.message);
      // One status: the new output's own count, and the total, which keeps the old output's.
      const now = h.agent.status();
      const live = now.pipeline.outputs.find((o) => o.name === 'http')?.dropped['spool_full'] ?? 0;
      const total = now.drops.find((d) => d.hook === 'http' && d.reason === 'spool_full')?.total ?? 0;
      assert.ok(total >= before + live, `total ${total}, before the reload ${before}, the new output's own ${live}`);
    } finally {
      await h.agent.stop();
    }
  });

  it('stops and restarts a plugin that floods, one over its memory budget, one writing garbage frames and one that stops answering', async () => {
    const yaml = baseYaml({
      plugins: plugins([
        ['flooder', 'flood', 'limits: { events_per_s: 500, cpu_percent: 400 }'],
        ['hog', 'memory', 'config: { mb: 60 }, limits: { memory_mb: 80 }'], // over its budget, under twice it (killed at once, without a cgroup)
        ['garbler', 'garbage'],
        ['sleeper', 'hang'],
      ]),
    });
    const h = await startAgent(yaml);
    try {
      const done = await waitFor(
        'every misbehaving plugin to be restarted',
        () => {
          const s = h.agent.status().plugins;
          const restarted = (name: string) => (s.find((p) => p.name === name)?.restarts ?? 0) >= 1;
          return ['flooder', 'hog', 'garbler', 'sleeper'].every(restarted) ? s : undefined;
        },
        40_000,
        200,
      );
      const by = (name: string) => done.find((p) => p.name === name)!;
      assert.ok(by('flooder').overBudgetRestarts >= 1);
      assert.ok((by('flooder').dropped['rate_limited'] ?? 0) > 0, 'events over the rate limit are counted');
      assert.ok(by('hog').overBudgetRestarts >= 1);
      assert.ok(by('sleeper').unresponsiveRestarts >= 1);
      await waitFor('the gap events', () => ['flooder', 'hog', 'garbler', 'sleeper'].every((c) => gapsOf(h.server.events, c).length >= 1) || undefined, 15_000);
      assert.match(gapsOf(h.server.events, 'flooder')[0]!['hades'].gap.reason, /^flooding: over 500 events\/s for 5 s$/);
      assert.match(gapsOf(h.server.events, 'hog')[0]!['hades'].gap.reason, /^over its memory budget: \d+ MB > 80 MB for 5 s$/);
      assert.equal(gapsOf(h.server.events, 'garbler')[0]!['hades'].gap.reason, 'protocol error: HADES_ERR_FRAME_TOO_LARGE');
      assert.match(gapsOf(h.server.events, 'sleeper')[0]!['hades'].gap.reason, /^unresponsive: no frame for \d+ s$/);
      const codes = new Set(h.logs.events.map((l) => l['code'] ?? l['err']?.code));
      for (const code of ['HADES_ERR_PLUGIN_OVER_BUDGET', 'HADES_ERR_PLUGIN_UNRESPONSIVE', 'HADES_ERR_FRAME_TOO_LARGE']) assert.ok(codes.has(code), `${code} logged`);
    } finally {
      await h.agent.stop();
    }
  });

  it('drops and counts events that break the schema, and lets the good ones through', async () => {
    const h = await startAgent(baseYaml({ plugins: plugins([['liar', 'invalid']]) }));
    try {
      await waitFor('good and bad events', () => (h.agent.status().plugins[0]?.dropped['invalid'] ?? 0) >= 10 && rows(h.server.events, 'liar').length >= 5);
      assert.ok(!h.server.events.some((e) => e['event'].action === 'agent_health' && !e['hades'].health), 'a plugin cannot forge agent events');
      assert.ok(h.logs.events.some((l) => l['code'] === 'HADES_ERR_EVENT_INVALID' && l['plugin'] === 'liar'));
      assert.equal(h.agent.status().plugins[0]?.restarts, 0, 'invalid events do not restart the plugin');
    } finally {
      await h.agent.stop();
    }
  });

  it('writes at most its rate of a plugin\'s LOG frames, and says how many it left out', async () => {
    const h = await startAgent(baseYaml({ plugins: plugins([['talker', 'chatter']]) }));
    try {
      const last = await waitFor('the last line', () => h.logs.events.find((l) => l['plugin'] === 'talker' && l['msg'] === 'last line'), 10_000);
      const lines = h.logs.events.filter((l) => l['plugin'] === 'talker' && /^line \d+$/.test(String(l['msg'])));
      // A burst of 200, and 20 a second refilled while the frames came in: on a loaded machine the
      // agent may take seconds over the 1,000 frames, so the bound is taken from the times of the
      // first and last lines written.
      const span = (Date.parse(String(lines.at(-1)?.['time'])) - Date.parse(String(lines[0]?.['time']))) / 1000;
      assert.ok(lines.length >= 200 && lines.length <= 200 + Math.ceil(20 * span) + 1, `a burst of 200 and what the rate refilled in ${span} s, got ${lines.length}`);
      assert.equal(lines[0]?.['plugin_code'], 'ACME_CHATTY');
      // Each line written counts the ones left out since the line before it (a line the rate let
      // through mid-flood, on a slow machine, takes its share): together, all that were left out.
      const counted = [...lines, last].reduce((n, l) => n + (typeof l['suppressed_before'] === 'number' ? l['suppressed_before'] : 0), 0);
      assert.equal(counted, 1000 - lines.length, 'the lines written count the ones left out');
      assert.equal(h.agent.status().plugins.find((p) => p.name === 'talker')?.state, 'running');
    } finally {
      await h.agent.stop();
    }
  });

  it('does not start a plugin whose executable does not match its manifest, and runs the others', async () => {
    const bad = pluginManifest(dir, 'swapped', 'count', { sha256: '0'.repeat(64) });
    const yaml = baseYaml({ plugins: `  installed:\n    - { manifest: ${bad} }\n    - { manifest: ${pluginManifest(dir, 'good', 'count')}, config: { rate: 50 } }` });
    const h = await startAgent(yaml);
    try {
      assert.ok(h.logs.events.some((l) => l['err']?.code === 'HADES_ERR_PLUGIN_HASH_MISMATCH'));
      assert.deepEqual(h.agent.status().plugins.map((p) => [p.name, p.state]).sort(), [['good', 'running'], ['swapped', 'failed']]);
    } finally {
      await h.agent.stop();
    }
  });

  it('shows a plugin whose manifest cannot be read as failed, and a reload that brings one says it did not start', async () => {
    const good = `    - { manifest: ${pluginManifest(dir, 'steady', 'count')}, config: { rate: 20 } }`;
    const missing = path.join(dir, 'no-such-plugin', 'manifest.json');
    const dataDir = path.join(dir, `data-${n++}`);
    const h = await startAgent(baseYaml({ dataDir, plugins: `  installed:\n${good}` }));
    try {
      writeFileSync(h.configFile, baseYaml({ dataDir, plugins: `  installed:\n${good}\n    - { manifest: ${missing} }` }));
      const reloaded = await h.agent.reload();
      assert.equal(reloaded.ok, false, 'not ok: a plugin it names does not run');
      assert.equal(reloaded.partial, true, 'the rest is applied');
      assert.match(reloaded.message ?? '', new RegExp(`a plugin not started: .*${missing.replaceAll('/', '\\/')}`));
      assert.equal(h.agent.status().lastReload?.ok, false);
      const shown = h.agent.status().plugins.map((p) => [p.name, p.state, /HADES_ERR_PLUGIN_MANIFEST/.test(p.lastError ?? '')]);
      assert.deepEqual(shown, [['steady', 'running', false], [missing, 'failed', true]]);
      writeFileSync(h.configFile, baseYaml({ dataDir, plugins: `  installed:\n${good}` }));
      assert.equal((await h.agent.reload()).ok, true);
      assert.deepEqual(h.agent.status().plugins.map((p) => p.name), ['steady'], 'gone once the configuration no longer names it');
      // A file refused says which file and what in it, as the heartbeat's last_reload carries it.
      writeFileSync(h.configFile, `${baseYaml({ dataDir, plugins: `  installed:\n${good}` })}\nno_such_section: 1\n`);
      const refused = await h.agent.reload();
      assert.equal(refused.ok, false);
      assert.equal(refused.partial, undefined, 'nothing applied');
      assert.match(h.agent.status().lastReload?.message ?? '', new RegExp(`^${h.configFile.replaceAll('/', '\\/')}: 1 problem\\(s\\); the running configuration stays: HADES_ERR_CONFIG_UNKNOWN_KEY .*no_such_section`));
      // A value that contains itself (an alias inside its anchor's node) is refused the same way; the agent runs on.
      writeFileSync(h.configFile, `${baseYaml({ dataDir, plugins: `  installed:\n${good}` })}\nx_loop: &a [*a]\n`);
      const looped = await h.agent.reload();
      assert.equal(looped.ok, false);
      assert.match(h.agent.status().lastReload?.message ?? '', /HADES_ERR_CONFIG_SYNTAX .*would contain itself/);
      assert.deepEqual(h.agent.status().plugins.map((p) => [p.name, p.state]), [['steady', 'running']]);
    } finally {
      await h.agent.stop();
    }
  });

  it('does not let a plugin that never says HELLO hold the agent\'s start: it goes on under the watchdog', async () => {
    const began = Date.now();
    const h = await startAgent(baseYaml({ plugins: plugins([['mum', 'mute'], ['chatty', 'count']]) }));
    try {
      const took = Date.now() - began;
      assert.ok(took >= 4000 && took < 9000, `started after the wait for HELLOs (5 s), in ${took} ms`);
      const states = new Map(h.agent.status().plugins.map((p) => [p.name, p.state]));
      assert.equal(states.get('chatty'), 'running');
      assert.equal(states.get('mum'), 'starting');
      await waitFor('chatty\'s events', () => rows(h.server.events, 'chatty').length > 0 || undefined);
      // Killed at 10 s without a HELLO, and tried again.
      const mum = await waitFor('mum to be tried again', () => h.agent.status().plugins.find((p) => p.name === 'mum' && p.restarts >= 1), 15_000);
      assert.match(mum.lastError ?? '', /no HELLO within 10 s/);
    } finally {
      await h.agent.stop();
    }
  });

  it('kills the whole process group of a plugin that ignores the request to stop, leaving no process behind', async () => {
    const h = await startAgent(baseYaml({ plugins: plugins([['mule', 'stubborn']]) }));
    const pid = h.agent.status().plugins[0]!.pid!;
    await waitFor('the plugin\'s child', () => groupMembers(pid).length >= 2 || undefined);
    const started = Date.now();
    await h.agent.stop();
    assert.ok(Date.now() - started < 5000);
    await waitFor('the plugin\'s group to be gone', () => groupMembers(pid).length === 0 || undefined, 2000);
  });
});

describe('agent daemon: outputs and spool', () => {
  it('spools while the receiver is down and, once it is back, delivers every event in order, none lost or twice', async () => {
    const yaml = baseYaml({ plugins: plugins([['counter', 'count', 'config: { rate: 400 }']]) });
    const configFile = path.join(dir, `agent-${n++}.yaml`);
    writeFileSync(configFile, yaml);
    const server = new MemoryTransport();
    server.up = false;
    const agent = new Agent({ config: agentConfig(yaml), configFile, version: '0.0.0-test', transports: [server], stderr: new EventSink() });
    await agent.start();
    try {
      await waitFor('the spool to fill', () => (agent.status().pipeline.outputs[0]?.spool?.events ?? 0) >= 600 || undefined);
      const down = agent.status().pipeline.outputs[0]!;
      assert.equal(down.up, false);
      assert.equal(down.out, 0);
      assert.ok(server.refused > 0);
      server.up = true;
      await waitFor('the backlog to drain', () => agent.status().pipeline.outputs[0]?.spool?.events === 0 || undefined, 20_000);
    } finally {
      await agent.stop();
    }
    const numbers = rows(server.events, 'counter').map((e) => e['hades'].inventory.row.n as number);
    assert.ok(numbers.length >= 600);
    assert.deepEqual(numbers, numbers.map((_, i) => i), 'every event, in order, once');
    const sequences = server.events.map((e) => e['event'].sequence as number);
    assert.deepEqual(sequences, [...sequences].sort((a, b) => a - b), 'event.sequence increases across the whole stream');
  });

  it('hands a spooled output\'s spool over at a reload: the new output opens it once the old one has closed, and nothing is lost or sent again', { timeout: 60_000 }, async () => {
    // The spool's write rate holds the events back in memory, and the receiver is down: at the
    // reload, the old output writes what it holds to the spool as it closes.
    const dataDir = path.join(dir, `data-${n++}`);
    const yaml = (spool: string) => `${baseYaml({ dataDir, plugins: plugins([['handed', 'count', 'config: { rate: 400 }']]) })}spool: { fsync: never, ${spool} }\n`;
    const h = await startAgent(yaml('write_kb_per_s: 1'));
    h.server.up = false;
    try {
      await waitFor('events held back by the spool write rate', () => (h.agent.status().pipeline.outputs[0]?.queued ?? 0) >= 300 || undefined);
      writeFileSync(h.configFile, yaml('write_kb_per_s: 0'));
      const first = await h.agent.reload();
      assert.equal(first.ok, true, first.message);
      const handed = h.agent.status().pipeline.outputs[0]!;
      assert.ok((handed.backlogAtStart ?? 0) >= 300, `the new output found what the old one held in the spool (backlog ${handed.backlogAtStart})`);
      h.server.up = true;
      await waitFor('the backlog to drain', () => h.agent.status().pipeline.outputs[0]?.spool?.events === 0 || undefined, 20_000);
      // Again with the receiver up but slow: a batch is in flight when the reload comes.
      h.server.delayMs = 300;
      await waitFor('a slow batch', () => h.server.batches > 3 || undefined);
      writeFileSync(h.configFile, yaml('write_kb_per_s: 0, fsync_interval_ms: 500'));
      const second = await h.agent.reload();
      assert.equal(second.ok, true, second.message);
      h.server.delayMs = 0;
      await waitFor('the backlog to drain again', () => h.agent.status().pipeline.outputs[0]?.spool?.events === 0 || undefined, 20_000);
      assert.equal(h.agent.status().drops.filter((d) => d.hook === 'server').length, 0, 'nothing dropped');
    } finally {
      await h.agent.stop();
    }
    const numbers = rows(h.server.events, 'handed').map((e) => e['hades'].inventory.row.n as number);
    const max = Math.max(...numbers);
    assert.ok(max >= 600, `events delivered (${numbers.length})`);
    const missing = Array.from({ length: max + 1 }, (_, i) => i).filter((i) => !numbers.includes(i));
    assert.deepEqual(missing, [], 'no event lost');
    // The batch in flight at the second reload was acknowledged before the handover: the new
    // output starts after it, and sends nothing again.
    assert.equal(numbers.length - new Set(numbers).size, 0, 'no event sent twice');
    // Everything acknowledged stays acknowledged: the next start finds an empty spool.
    const spool = Spool.open({ dir: path.join(dataDir, 'spool', 'server'), maxBytes: 1 << 20, fsync: 'never' });
    try {
      const stats = spool.stats();
      assert.deepEqual({ records: stats.records, corrupt: stats.corruptRecords, resets: stats.cursorResets }, { records: 0, corrupt: 0, resets: 0 });
    } finally {
      spool.close();
    }
  });

  it('hands the file output\'s path over at a reload under load: every line once, whole and in order, across rotations', { timeout: 60_000 }, async () => {
    // A file that rotates every few hundred milliseconds, reloaded again and again while events
    // flow: the old output and the new one never have the path open, or rotate it, at once.
    const folder = path.join(dir, `file-${n++}`);
    const file = path.join(folder, 'events.ndjson');
    const base = baseYaml({ plugins: plugins([['writer', 'count', 'config: { rate: 4000 }']]), logLevel: 'info' });
    const yaml = (keep: number) => base.replace('outputs: { file: { enabled: false } }', `outputs: { file: { enabled: true, path: ${file}, max_mb: 1, max_files: ${keep} } }`);
    const h = await startAgent(yaml(1000));
    try {
      await waitFor('the file to rotate', () => (existsSync(`${file}.1`) ? true : undefined), 20_000);
      for (let i = 0; i < 12; i++) {
        writeFileSync(h.configFile, yaml(i % 2 === 0 ? 999 : 1000));
        const reloaded = await h.agent.reload();
        assert.equal(reloaded.ok, true, reloaded.message);
        await sleep(50 + 40 * i);
      }
      await waitFor('more events after the reloads', () => (h.server.events.length > 20_000 ? true : undefined), 20_000);
      assert.deepEqual(h.agent.status().drops.filter((d) => d.hook === 'file'), [], 'nothing dropped by the file output');
    } finally {
      await h.agent.stop();
    }
    // The file's lines, oldest rotated file first.
    const rotated = readdirSync(folder).filter((f) => /^events\.ndjson\.\d+$/.test(f)).map((f) => Number(f.slice(f.lastIndexOf('.') + 1)));
    rotated.sort((a, b) => b - a);
    assert.deepEqual(rotated, Array.from({ length: rotated.length }, (_, i) => rotated.length - i), 'rotated files .1 to .N, none skipped or overwritten');
    assert.ok(rotated.length >= 4, `rotations (${rotated.length})`);
    const lines: string[] = [];
    for (const name of [...rotated.map((g) => `${file}.${g}`), file]) {
      const text = readFileSync(name, 'utf8');
      assert.ok(text.endsWith('\n'), `${name} ends with a whole line`);
      lines.push(...text.slice(0, -1).split('\n'));
    }
    const events = lines.map((line, i) => {
      try {
        return JSON.parse(line) as AnyEvent;
      } catch {
        assert.fail(`line ${i} is cut or mixed with another: ${line.slice(0, 120)}`);
      }
    });
    const numbers = rows(events, 'writer').map((e) => e['hades'].inventory.row.n as number);
    const expected = rows(h.server.events, 'writer').map((e) => e['hades'].inventory.row.n as number);
    assert.ok(expected.length > 20_000);
    assert.equal(numbers.length - new Set(numbers).size, 0, 'no line written twice');
    assert.deepEqual(expected.filter((x) => !numbers.includes(x)), [], 'no line lost');
    assert.deepEqual(numbers, [...numbers].sort((a, b) => a - b), 'in order across the files');
    const sequences = events.map((e) => e['event'].sequence as number);
    assert.deepEqual(sequences, [...sequences].sort((a, b) => a - b), 'event.sequence increases across the files');
  });

  it('keeps a file output\'s lines in order when a reload comes while a paused source waits: the new output writes after the old one has closed', { timeout: 60_000 }, async () => {
    // A slow stdout pauses the pipeline, and a source waits for the drain with a backlog, as
    // the kernel driver's does: when a reload swaps the outputs, the drain hands the backlog to
    // the new outputs at once, in the same turn, while the old file output still holds the
    // lines of that turn.
    const folder = path.join(dir, `file-${n++}`);
    const file = path.join(folder, 'events.ndjson');
    const dataDir = path.join(dir, `data-${n++}`);
    const yaml = (keep: number) =>
      baseYaml({ dataDir, logLevel: 'info' }).replace('outputs: { file: { enabled: false } }', `outputs: { stdout: { enabled: true }, file: { enabled: true, path: ${file}, max_mb: 1, max_files: ${keep} } }`);
    let blocked = true;
    const held: (() => void)[] = [];
    const stdout = new Writable({
      write(_chunk, _encoding, callback) {
        if (blocked) held.push(callback);
        else callback();
      },
    });
    // Every stdout output of the agent writes to this one stream: a closing one does not end it.
    stdout.end = ((callback?: () => void) => {
      callback?.();
      return stdout;
    }) as typeof stdout.end;
    const configFile = path.join(dir, `agent-${n++}.yaml`);
    writeFileSync(configFile, yaml(100));
    const agent = new Agent({ config: agentConfig(yaml(100)), configFile, version: '0.0.0-test', stdout, transports: [], stderr: new EventSink() });
    await agent.start();
    const pipeline = (agent as unknown as { pipeline: Pipeline }).pipeline;
    const pad = 'x'.repeat(300);
    let next = 0;
    const total = 6000;
    let waiting = false;
    const pump = () => {
      while (next < total && !waiting) {
        const event = { '@timestamp': new Date().toISOString(), event: { action: 'inventory_change', sequence: next }, hades: { inventory: { table: 'test', change: 'added', row: { n: next, plugin: 'backlog', pad } } } };
        next++;
        if (!pipeline.push(event as unknown as HadesEvent)) waiting = true;
      }
    };
    const unsubscribe = pipeline.onDrain(() => {
      waiting = false;
      pump();
    });
    try {
      pump();
      assert.ok(waiting && next < 2000, `the slow stdout paused the pipeline (${next} events in)`);
      // The reload comes in the same turn (a SIGHUP or the server's configuration next to the
      // driver's records).
      writeFileSync(configFile, yaml(99));
      const reloaded = await agent.reload();
      assert.equal(reloaded.ok, true, reloaded.message);
      blocked = false;
      for (const callback of held.splice(0)) callback();
      await waitFor('the backlog', () => (next === total && agent.status().pipeline.outputs.every((o) => o.queued === 0) ? true : undefined), 20_000);
      await sleep(50);
      assert.deepEqual(agent.status().drops.filter((d) => d.hook === 'file'), [], 'nothing dropped by the file output');
    } finally {
      unsubscribe();
      await agent.stop();
    }
    const rotated = readdirSync(folder).filter((f) => /^events\.ndjson\.\d+$/.test(f)).length;
    const names = [...Array.from({ length: rotated }, (_, i) => `${file}.${rotated - i}`), file];
    const numbers = names.flatMap((name) => readFileSync(name, 'utf8').split('\n').filter(Boolean)).map((line) => (JSON.parse(line) as AnyEvent)['hades'].inventory.row.n as number);
    assert.equal(numbers.length, total, 'every line, once');
    const outOfOrder = numbers.flatMap((x, i) => (i > 0 && x < numbers[i - 1]! ? [`${numbers[i - 1]} then ${x} (line ${i})`] : []));
    assert.deepEqual(outOfOrder, [], 'the lines in the order of the events');
  });

  it('runs on when a spool cannot be used at its start: that output drops and counts, says why, and the others deliver', async () => {
    const dataDir = path.join(dir, `data-${n++}`);
    // A folder where the spool's cursor file belongs.
    mkdirSync(path.join(dataDir, 'spool', 'server', 'cursor'), { recursive: true });
    const yaml = baseYaml({ dataDir, plugins: plugins([['spooler', 'count', 'config: { rate: 200 }']]) });
    const configFile = path.join(dir, `agent-${n++}.yaml`);
    writeFileSync(configFile, yaml);
    const broken = new MemoryTransport('server');
    const fine = new MemoryTransport('second');
    const logs = new EventSink();
    const agent = new Agent({ config: agentConfig(yaml), configFile, version: '0.0.0-test', transports: [broken, fine], stderr: logs });
    await agent.start();
    try {
      const down = await waitFor('drops on the broken output', () => agent.status().pipeline.outputs.find((o) => o.name === 'server' && (o.dropped['spool_write_failed'] ?? 0) > 0));
      assert.equal(down.up, false);
      assert.match(down.lastError ?? '', /spool folder .* cannot be used/);
      assert.ok(logs.events.some((l) => l['err']?.code === 'HADES_ERR_SPOOL_IO' && l['output'] === 'server'), 'logged with its code');
      await waitFor('the other output to deliver', () => rows(fine.events, 'spooler').length >= 20 || undefined);
      assert.equal(broken.events.length, 0);
      assert.ok((agent.status().drops.find((d) => d.hook === 'server' && d.reason === 'spool_write_failed')?.total ?? 0) > 0, 'in the drop totals');
    } finally {
      await agent.stop();
    }
  });

  it('keeps the running configuration when a reload brings a bad file, and applies a good one', async () => {
    const dataDir = path.join(dir, `data-${n++}`);
    const h = await startAgent(baseYaml({ dataDir }));
    try {
      writeFileSync(h.configFile, 'agent: { heartbeat_s: "often" }\nnonsense_key: 1\n');
      const bad = await h.agent.reload();
      assert.equal(bad.ok, false);
      assert.deepEqual(bad.problems?.map((p) => p.code).sort(), ['HADES_ERR_CONFIG_TYPE', 'HADES_ERR_CONFIG_UNKNOWN_KEY']);
      assert.equal(h.agent.status().lastReload?.ok, false);
      assert.ok(h.logs.events.some((l) => l['code'] === 'HADES_ERR_CONFIG_INVALID'));
      assert.equal(h.agent.log.level, 'debug', 'the old configuration stays');
      writeFileSync(h.configFile, baseYaml({ dataDir, logLevel: 'warn' }));
      const good = await h.agent.reload();
      assert.equal(good.ok, true, good.message);
      assert.equal(h.agent.log.level, 'warn');
      assert.equal(h.agent.status().lastReload?.ok, true);
    } finally {
      await h.agent.stop();
    }
  });

  it('applies a reload of plugins.health_s and limits.sustain_s to the watchdog, not only to the agent itself', async () => {
    const dataDir = path.join(dir, `data-${n++}`);
    const slow = (yaml: string) => yaml.replace('health_s: 1', 'health_s: 3600');
    const yaml = baseYaml({ dataDir, plugins: plugins([['dozer', 'hang']]) });
    const h = await startAgent(slow(yaml));
    try {
      await sleep(3000);
      assert.equal(h.agent.status().plugins[0]?.unresponsiveRestarts, 0, 'a health period of an hour: not judged yet');
      // The same file with a health period of 1 s: the silent plugin is judged within seconds.
      writeFileSync(h.configFile, yaml);
      const reloaded = await h.agent.reload();
      assert.equal(reloaded.ok, true, reloaded.message);
      const restarted = await waitFor('the silent plugin restarted under the new health period', () => ((h.agent.status().plugins[0]?.unresponsiveRestarts ?? 0) >= 1 ? true : undefined), 15_000, 200);
      assert.equal(restarted, true);
    } finally {
      await h.agent.stop();
    }
  });

  it('refuses at a reload a configuration path that is not a regular file, at once and with its code', async () => {
    const dataDir = path.join(dir, `data-${n++}`);
    const h = await startAgent(baseYaml({ dataDir }));
    // A FIFO where the file was: read as a file it would hold the agent (its whole event loop)
    // until someone writes to it. A writer comes after 4 s, so that the test ends either way.
    rmSync(h.configFile);
    assert.equal(spawnSync('mkfifo', [h.configFile]).status, 0);
    const writer = spawn('timeout', ['8', 'sh', '-c', `sleep 4; echo 'log: { level: warn }' > '${h.configFile}'`], { stdio: 'ignore' });
    try {
      const since = Date.now();
      const result = await h.agent.reload();
      const elapsed = Date.now() - since;
      assert.equal(result.ok, false);
      assert.ok(elapsed < 2000, `the reload took ${elapsed} ms`);
      assert.deepEqual(result.problems?.map((p) => p.code), ['HADES_ERR_CONFIG_NOT_A_FILE']);
      assert.equal(h.agent.log.level, 'debug', 'the old configuration stays');
      // A folder, and a file over the size limit, are refused with their codes too (not read whole).
      rmSync(h.configFile);
      mkdirSync(h.configFile);
      assert.deepEqual((await h.agent.reload()).problems?.map((p) => p.code), ['HADES_ERR_CONFIG_NOT_A_FILE']);
      rmSync(h.configFile, { recursive: true });
      writeFileSync(h.configFile, `# ${'x'.repeat(2 * 1024 * 1024)}\n`);
      assert.deepEqual((await h.agent.reload()).problems?.map((p) => p.code), ['HADES_ERR_CONFIG_TOO_LARGE']);
      rmSync(h.configFile);
      assert.deepEqual((await h.agent.reload()).problems?.map((p) => p.code), ['HADES_ERR_CONFIG_READ']);
      assert.equal(h.agent.status().lastReload?.ok, false);
    } finally {
      writer.kill();
      await h.agent.stop();
    }
  });

  it('takes the metrics address a reload gives once it is free, when another program held it at the reload', { timeout: 60_000 }, async () => {
    const dataDir = path.join(dir, `data-${n++}`);
    const h = await startAgent(baseYaml({ dataDir }));
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const port = (holder.address() as AddressInfo).port;
    try {
      writeFileSync(h.configFile, baseYaml({ dataDir }).replace('127.0.0.1:0', `127.0.0.1:${port}`));
      const result = await h.agent.reload();
      assert.equal(result.ok, false);
      assert.equal(result.partial, true);
      assert.match(result.message ?? '', /metrics cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE/);
      assert.equal(h.agent.status().metrics, undefined);
      await new Promise<void>((resolve) => holder.close(() => resolve()));
      // Tried again every 10 s: before, the endpoint stayed down until the next reload that changed it.
      const url = await waitFor('the metrics endpoint on its new port', () => h.agent.status().metrics, 25_000, 200);
      assert.equal(url, `http://127.0.0.1:${port}`);
      assert.equal(await (await fetch(`${url}/healthz`)).text(), 'ok\n');
    } finally {
      holder.close();
      await h.agent.stop();
    }
  });

  it('counts each drop of a plugin once in hades_events_dropped_total', async () => {
    const h = await startAgent(baseYaml({ plugins: plugins([['fibber', 'invalid']]) }));
    try {
      await waitFor('invalid events', () => (h.agent.status().plugins[0]?.dropped['invalid'] ?? 0) >= 5 || undefined);
      const metrics = await (await fetch(`${h.agent.status().metrics!}/metrics`)).text();
      const series = metrics.split('\n').filter((l) => l.startsWith('hades_events_dropped_total{') && l.includes('where="fibber"'));
      assert.equal(series.length, 1, `one series for the plugin's invalid events, not one per place it is read from:\n${series.join('\n')}`);
      assert.match(series[0]!, /^hades_events_dropped_total\{component="agent",where="fibber",reason="invalid_event"\} \d+$/);
    } finally {
      await h.agent.stop();
    }
  });

  it('serves Prometheus metrics and its status on loopback, and sends a heartbeat', async () => {
    const yaml = baseYaml({ heartbeatS: 1, plugins: plugins([['ticker', 'count', 'config: { rate: 40 }']]) });
    const h = await startAgent(yaml);
    try {
      const url = h.agent.status().metrics!;
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
      await waitFor('a heartbeat', () => h.server.events.some((e) => e['event'].action === 'agent_health') || undefined, 10_000);
      const metrics = await (await fetch(`${url}/metrics`)).text();
      for (const name of ['hades_agent_resident_memory_bytes', 'hades_plugin_up{plugin="ticker",state="running"} 1', 'hades_events_in_total{action="inventory_change"}', 'hades_spool_bytes{output="server"}', 'hades_output_up{output="server"} 1']) {
        assert.ok(metrics.includes(name), `${name} in /metrics`);
      }
      const status = (await (await fetch(`${url}/status`)).json()) as { plugins: { name: string }[] };
      assert.equal(status.plugins[0]?.name, 'ticker');
      assert.equal((await fetch(`${url}/nope`)).status, 404);
      assert.equal((await fetch(`${url}/metrics`, { method: 'POST' })).status, 405);
      const health = h.server.events.find((e) => e['event'].action === 'agent_health')!;
      assert.equal(health['hades'].health.plugins[0].name, 'ticker');
    } finally {
      await h.agent.stop();
    }
  });

  it('asks to be restarted (status 75) when the agent itself stays over its memory budget', async () => {
    const yaml = baseYaml().replace('limits: { sustain_s: 5,', 'limits: { sustain_s: 5, memory_mb: 32,');
    let fatal: { code: string; status: number } | undefined;
    const agent = new Agent({
      config: agentConfig(yaml),
      version: '0.0.0-test',
      stderr: new EventSink(),
      onFatal: (error, status) => {
        fatal ??= { code: error.code, status };
      },
    });
    await agent.start();
    try {
      // This test process is the agent here, and it is well over 32 MB.
      const reported = await waitFor('the over-budget report', () => fatal, 15_000, 200);
      assert.deepEqual(reported, { code: 'HADES_ERR_AGENT_OVER_BUDGET', status: 75 });
    } finally {
      await agent.stop();
    }
  });

  it('leaves no timer, socket or child process behind after stop', async () => {
    const countOf = (list: string[]) => list.reduce<Record<string, number>>((acc, r) => ({ ...acc, [r]: (acc[r] ?? 0) + 1 }), {});
    const baseline = countOf(process.getActiveResourcesInfo());
    const h = await startAgent(baseYaml({ plugins: plugins([['brief', 'count']]) }));
    await waitFor('events', () => h.server.events.length > 0 || undefined);
    await h.agent.stop();
    // (This wait's own timer has fired when the count is taken: timers are counted too.)
    await new Promise((resolve) => setTimeout(resolve, 200));
    const now = countOf(process.getActiveResourcesInfo());
    for (const kind of new Set([...Object.keys(now), ...Object.keys(baseline)])) {
      assert.ok((now[kind] ?? 0) <= (baseline[kind] ?? 0), `${kind}: ${now[kind]} after stop, ${baseline[kind] ?? 0} before start`);
    }
  });
});
