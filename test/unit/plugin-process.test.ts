import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { PluginProcess, type PluginGap, type PluginHandlers, type PluginProcessOptions } from '../../src/agent/plugins/plugin-process.js';
import { PluginFrame } from '../../src/common/plugins/protocol.js';
import { HadesError } from '../../src/common/errors.js';
import { testPlugin, waitFor } from '../helpers/agent.js';

const root = mkdtempSync(path.join(tmpdir(), 'hades-plugin-process-'));
const running: PluginProcess[] = [];
after(async () => {
  for (const p of running) await p.stop();
  rmSync(root, { recursive: true, force: true });
});

/** What a plugin's handlers saw. */
interface Seen {
  frames: number;
  gaps: PluginGap[];
  exits: string[];
  protocolErrors: HadesError[];
  stats: unknown[];
}

function plugin(mode: string, options: Partial<PluginProcessOptions> = {}, handlers: Partial<PluginHandlers> = {}): { p: PluginProcess; seen: Seen } {
  const seen: Seen = { frames: 0, gaps: [], exits: [], protocolErrors: [], stats: [] };
  const p = new PluginProcess(
    { name: 'test', binary: testPlugin, args: [mode, 'test'], graceMs: 1000, ...options },
    {
      onFrame: () => seen.frames++,
      onGap: (gap) => seen.gaps.push(gap),
      onExit: (reason) => seen.exits.push(reason),
      onProtocolError: (error) => seen.protocolErrors.push(error),
      onStats: (stats) => seen.stats.push(stats),
      ...handlers,
    },
  );
  running.push(p);
  return { p, seen };
}

/** A plugin written for one test: a node script in the temp folder. */
function script(name: string, body: string, mode = 0o755): string {
  const file = path.join(root, name);
  writeFileSync(file, `#!/usr/bin/env node\n${body}\n`);
  chmodSync(file, mode);
  return file;
}

const FRAME = `const frame = (type, text) => { const body = Buffer.from(text); const h = Buffer.alloc(8); h.writeUInt32LE(body.length, 0); h.writeUInt16LE(type, 4); return Buffer.concat([h, body]); };`;

const sendConfig = (p: PluginProcess, config: Record<string, unknown>) =>
  p.command(PluginFrame.config, (id) => Buffer.from(JSON.stringify({ request_id: id, config })));

function coded(code: string, pattern?: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof HadesError, `expected a HadesError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (pattern) assert.match(error.message, pattern);
    return true;
  };
}

describe('PluginProcess', () => {
  it('resolves start() with the HELLO and answers commands', async () => {
    const { p } = plugin('idle');
    const hello = await p.start();
    assert.deepEqual(hello, { protocol: 1, plugin: 'test', version: '1.0.0' });
    assert.equal(p.state, 'running');
    assert.equal(p.hello, hello);
    assert.ok(p.pid !== undefined && p.pid > 0);
    const ack = await sendConfig(p, { rate: 1 });
    assert.equal(ack.ok, true);
    assert.equal(typeof ack.request_id, 'number');
    const second = await sendConfig(p, {});
    assert.equal(second.request_id, ack.request_id + 1);
    await p.stop();
    assert.equal(p.state, 'stopped');
    assert.equal(p.pid, undefined);
  });

  it('passes STATS to its handler', async () => {
    const { p, seen } = plugin('idle');
    await p.start();
    p.requestStats();
    await waitFor('stats', () => seen.stats.length > 0, 3000, 10);
    assert.equal(typeof (seen.stats[0] as { run?: unknown }).run, 'string');
    await p.stop();
  });

  it('refuses a plugin that is not executable with HADES_ERR_PLUGIN_START', async () => {
    const file = script('not-executable.mjs', 'process.exit(0);', 0o644);
    const { p } = plugin('idle', { binary: file });
    await assert.rejects(p.start(), coded('HADES_ERR_PLUGIN_START', /missing or not executable/));
    assert.equal(p.state, 'failed');
    const { p: missing } = plugin('idle', { binary: path.join(root, 'absent') });
    await assert.rejects(missing.start(), coded('HADES_ERR_PLUGIN_START', /missing or not executable/));
  });

  it('tries a plugin that dies before its HELLO again with backoff, then rejects start() with its last words', async () => {
    const file = script('dies.mjs', 'process.stderr.write("cannot open /etc/acme.conf\\n"); process.exit(4);');
    const { p, seen } = plugin('idle', { binary: file, args: [] });
    await assert.rejects(p.start(), coded('HADES_ERR_PLUGIN_START', /failed 5 times in a row \(exit status 4: cannot open \/etc\/acme\.conf\)/));
    assert.equal(p.state, 'failed');
    assert.equal(p.restarts, 4);
    assert.equal(seen.exits.length, 5);
    assert.deepEqual(seen.gaps, [], 'never up: no gap to close (the caller of start() hears of it)');
  });

  it('without retries (the driver), rejects start() at the first death before the HELLO', async () => {
    const file = script('dies-once.mjs', 'process.stderr.write("no BTF\\n"); process.exit(2);');
    const { p, seen } = plugin('idle', { binary: file, args: [], retryBeforeFirstHello: false });
    await assert.rejects(p.start(), coded('HADES_ERR_PLUGIN_START', /^test exit status 2: no BTF$/));
    assert.equal(seen.exits.length, 1);
    assert.equal(p.state, 'failed');
  });

  it('resolves start() once a plugin that failed at first says HELLO, and reports the gap', async () => {
    const marker = path.join(root, 'second-try');
    // Dies at its first run, works at its second.
    const file = script('second-time-lucky.mjs', `import { existsSync, writeFileSync } from 'node:fs';
if (!existsSync(${JSON.stringify(marker)})) { writeFileSync(${JSON.stringify(marker)}, ''); process.exit(5); }
await import(${JSON.stringify(testPlugin)});`);
    const { p, seen } = plugin('idle', { binary: file, args: ['idle', 'test'] });
    const hello = await p.start();
    assert.equal(hello.plugin, 'test');
    assert.equal(p.state, 'running');
    assert.equal(p.restarts, 1);
    assert.equal(seen.gaps.length, 1);
    assert.equal(seen.gaps[0]?.reason, 'exit status 5');
    await p.stop();
  });

  it('kills a plugin that sends no HELLO in time, and gives up after its failed runs', async () => {
    const file = script('mute.mjs', 'process.stdin.resume(); process.stdin.on("end", () => process.exit(0));');
    const { p, seen } = plugin('idle', { binary: file, args: [], helloTimeoutMs: 300, maxFailedStarts: 2 });
    const started = Date.now();
    await assert.rejects(p.start(), coded('HADES_ERR_PLUGIN_START', /failed 2 times in a row \(no HELLO within 0\.3 s\)/));
    assert.ok(Date.now() - started < 5000);
    assert.deepEqual(seen.exits, ['no HELLO within 0.3 s', 'no HELLO within 0.3 s']);
    assert.equal(p.pid, undefined);
  });

  it('does not hold a HELLO it has not read (back-pressure) against the plugin', async () => {
    const { p, seen } = plugin('idle', { helloTimeoutMs: 300 });
    p.pause();
    const started = p.start();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.deepEqual(seen.exits, [], 'not killed while its output was not read');
    assert.equal(p.state, 'starting');
    p.resume();
    assert.equal((await started).plugin, 'test');
    assert.equal(p.restarts, 0);
    await p.stop();
  });

  it('rejects start() when stopped while it waits to try again before any HELLO', async () => {
    const file = script('dies-slowly.mjs', 'process.exit(6);');
    const { p } = plugin('idle', { binary: file, args: [] });
    const starting = p.start();
    await waitFor('the first death', () => (p.state === 'backoff' ? true : undefined), 5000, 5);
    await p.stop();
    await assert.rejects(starting, coded('HADES_ERR_PLUGIN_START', /stopped before its HELLO \(exit status 6\)/));
  });

  it('applies maxOpenFiles to the plugin process', async () => {
    const { p } = plugin('idle', { maxOpenFiles: 64 });
    await p.start();
    const limits = readFileSync(`/proc/${p.pid}/limits`, 'utf8');
    assert.match(limits, /^Max open files\s+64\s+64\s+files/m);
    // It is the plugin itself (prlimit execs it), not a wrapper, that runs under that pid.
    assert.match(readFileSync(`/proc/${p.pid}/cmdline`, 'utf8'), /test-plugin\.mjs/);
    await p.stop();
  });

  it('starts the plugin in its own process group', async () => {
    const { p } = plugin('idle');
    await p.start();
    const stat = readFileSync(`/proc/${p.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    assert.equal(Number(fields[2]), p.pid, 'pgid is its own pid');
    await p.stop();
  });

  it('kills what the plugin left outside its process group after each exit (killLeftovers), before its exit is reported', async () => {
    const calls: number[] = [];
    const { p, seen } = plugin('idle', { killLeftovers: () => void calls.push(seen.exits.length) });
    await p.start();
    p.restart('test restart');
    await waitFor('the restart', () => seen.gaps.length > 0, 4000, 10);
    await p.stop();
    assert.deepEqual(calls, [0, 1], 'after each exit, before the exit handler');
  });

  it('restart(reason) restarts it and reports a gap with that reason', async () => {
    const { p, seen } = plugin('idle');
    await p.start();
    const firstPid = p.pid;
    const before = new Date();
    p.restart('over budget: memory (test)');
    await waitFor('gap', () => seen.gaps.length > 0, 4000, 10);
    const gap = seen.gaps[0]!;
    assert.equal(gap.reason, 'over budget: memory (test)');
    assert.equal(gap.restarts, 1);
    assert.ok(gap.start.getTime() >= before.getTime() - 1);
    assert.ok(gap.end.getTime() >= gap.start.getTime());
    assert.deepEqual(seen.exits, ['over budget: memory (test)']);
    assert.equal(p.state, 'running');
    assert.notEqual(p.pid, firstPid);
    assert.equal(p.restarts, 1);
    await p.stop();
  });

  it('does not give up a plugin for exits its owner excused (the collector killed for a query), however many in a row; it still does for the others', async () => {
    const { p } = plugin('idle', { maxFailedStarts: 2, backoffMaxMs: 60_000 });
    await p.start();
    const started = Date.now();
    for (let i = 1; i <= 8; i++) {
      const pid = p.pid;
      p.excuseExit();
      p.restart(`query timeout ${i}`, true);
      await waitFor(`restart ${i}`, () => p.state === 'running' && p.pid !== pid, 4000, 10);
    }
    assert.equal(p.restarts, 8);
    // Started again at once each time: a doubling backoff would have waited 25 s by now.
    assert.ok(Date.now() - started < 15_000, `${Date.now() - started} ms`);
    // Unexcused, the short runs count again: two in a row give the plugin up.
    for (let i = 1; i <= 2; i++) {
      const pid = p.pid;
      p.restart(`crash ${i}`, true);
      await waitFor(`exit ${i}`, () => p.pid !== pid && (p.state === 'running' || p.state === 'failed'), 4000, 10);
    }
    assert.equal(p.state, 'failed');
    assert.match(p.lastError ?? '', /failed 2 times in a row \(crash 2\)/);
  });

  it('pause() stops reading the plugin and resume() reads again', async () => {
    const { p, seen } = plugin('count');
    await p.start();
    assert.equal((await sendConfig(p, { rate: 200 })).ok, true);
    await waitFor('events', () => seen.frames >= 3, 3000, 10);
    p.pause();
    const atPause = seen.frames;
    await sleep(250);
    assert.equal(seen.frames, atPause, 'no frame is read while paused');
    p.resume();
    await waitFor('events after resume', () => seen.frames > atPause, 3000, 10);
    await p.stop();
  });

  it('answers a command to a plugin that is not running with ok:false ENOTCONN', async () => {
    const { p } = plugin('idle');
    const ack = await sendConfig(p, {});
    assert.equal(ack.ok, false);
    assert.equal(ack.code, 'ENOTCONN');
    await p.start();
    await p.stop();
    const later = await sendConfig(p, {});
    assert.deepEqual([later.ok, later.code], [false, 'ENOTCONN']);
  });

  it('answers a pending command with ok:false when the plugin dies', async () => {
    const { p } = plugin('hang');
    await p.start();
    const pending = sendConfig(p, {});
    p.restart('test', true);
    const ack = await pending;
    assert.equal(ack.ok, false);
    assert.equal(ack.code, 'ECONNRESET');
    await p.stop();
  });

  it('treats a frame other than HELLO, STATS, LOG or ACK before the HELLO as a protocol error', async () => {
    const file = script('events-first.mjs', `${FRAME}
process.stdout.write(frame(6, '{"event":{"action":"inventory_change"}}\\n'));
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));`);
    const { p, seen } = plugin('idle', { binary: file, args: [], retryBeforeFirstHello: false });
    await assert.rejects(p.start(), coded('HADES_ERR_PLUGIN_START', /protocol error: HADES_ERR_PLUGIN_PROTOCOL/));
    assert.equal(seen.protocolErrors.length, 1);
    assert.equal(seen.protocolErrors[0]?.code, 'HADES_ERR_PLUGIN_PROTOCOL');
    assert.match(seen.protocolErrors[0]?.message ?? '', /frame type 6 before its HELLO/);
    assert.equal(seen.frames, 0, 'the frame is not handed on');
    assert.equal(p.state, 'failed');
    assert.equal(p.pid, undefined);
  });

  it(
    'ignores what a plugin sends after its protocol error, even a HELLO',

    async () => {
      // A helper in its own session keeps the pipe open after the plugin is killed, and sends a HELLO then.
      const file = script('events-then-hello.mjs', `import { spawn } from 'node:child_process';
${FRAME}
const hello = frame(1, JSON.stringify({ protocol: 1, plugin: 'test', version: '1.0.0' })).toString('hex');
spawn(process.execPath, ['-e', \`setTimeout(() => { process.stdout.write(Buffer.from('\${hello}', 'hex')); setTimeout(() => process.exit(0), 50); }, 100)\`], { detached: true, stdio: ['ignore', 'inherit', 'ignore'] });
process.stdout.write(frame(6, '{"event":{"action":"inventory_change"}}\\n'));
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));`);
      const { p, seen } = plugin('idle', { binary: file, args: [], retryBeforeFirstHello: false });
      try {
        await assert.rejects(p.start(), coded('HADES_ERR_PLUGIN_START', /protocol error/));
        assert.equal(seen.protocolErrors.length, 1);
      } finally {
        await p.stop();
      }
    },
  );

  it('accepts STATS and LOG before the HELLO', async () => {
    const logs: unknown[] = [];
    const file = script('log-first.mjs', `${FRAME}
process.stdout.write(frame(4, JSON.stringify({ level: 'info', msg: 'warming up' })));
process.stdout.write(frame(3, JSON.stringify({ warm: 1 })));
process.stdout.write(frame(1, JSON.stringify({ protocol: 1, plugin: 'test', version: '1.0.0' })));
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));`);
    const { p, seen } = plugin('idle', { binary: file, args: [] }, { onLog: (entry) => logs.push(entry) });
    await p.start();
    assert.deepEqual(logs, [{ level: 'info', msg: 'warming up' }]);
    assert.deepEqual(seen.stats, [{ warm: 1 }]);
    await p.stop();
  });

  it('tells its owner of STATS, ACK and LOG frames that are not JSON objects, and goes on', async () => {
    const malformed: string[] = [];
    const logs: unknown[] = [];
    const file = script('malformed-frames.mjs', `${FRAME}
process.stdout.write(frame(1, JSON.stringify({ protocol: 1, plugin: 'test', version: '1.0.0' })));
process.stdout.write(frame(3, 'not json'));
process.stdout.write(frame(5, '42'));
process.stdout.write(frame(4, '"just text"'));
process.stdout.write(frame(4, JSON.stringify({ level: 'info', msg: 'still here' })));
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));`);
    const { p, seen } = plugin('idle', { binary: file, args: [] }, { onMalformed: (frame) => malformed.push(frame), onLog: (entry) => logs.push(entry) });
    await p.start();
    await waitFor('the last log', () => logs.length > 0, 3000, 10);
    assert.deepEqual(malformed, ['STATS', 'ACK', 'LOG']);
    assert.deepEqual(logs, [{ level: 'info', msg: 'still here' }]);
    assert.deepEqual(seen.protocolErrors, [], 'not a reason to restart it');
    await p.stop();
  });

  it('stops for good on a HELLO with another protocol version', async () => {
    const file = script('protocol-2.mjs', `${FRAME}
process.stdout.write(frame(1, JSON.stringify({ protocol: 2, plugin: 'test' })));
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));`);
    const { p } = plugin('idle', { binary: file, args: [] });
    await assert.rejects(p.start(), coded('HADES_ERR_PLUGIN_PROTOCOL', /speaks protocol 2/));
    assert.equal(p.state, 'failed');
  });

  it('restarts a plugin that breaks the stream after its HELLO', async () => {
    const { p, seen } = plugin('garbage');
    await p.start();
    assert.equal((await sendConfig(p, {})).ok, true);
    await waitFor('gap', () => seen.gaps.length > 0, 4000, 10);
    assert.equal(seen.protocolErrors[0]?.code, 'HADES_ERR_FRAME_TOO_LARGE');
    assert.equal(seen.gaps[0]?.reason, 'protocol error: HADES_ERR_FRAME_TOO_LARGE');
    await p.stop();
  });
});
