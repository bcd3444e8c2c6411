/**
 * The plugin watchdog's liveness verdict on a clock it does not own: a plugin that stops
 * answering is restarted, one that answers when asked is not, and none is judged on a round that
 * comes late because the agent itself was held up (its frames were still unread in the pipe).
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { MAX_HEALTH_DETAIL, readPluginHealth } from '../../src/common/plugins/protocol.js';
import { Supervisor, type Supervised } from '../../src/agent/plugins/supervisor.js';
import { Logger } from '../../src/runtime/log.js';

class FakeProcess {
  state = 'running';
  readonly pid = process.pid;
  lastFrameAt = 0;
  /** The agent stopped reading its output (back-pressure). */
  readPaused = false;
  asked = 0;
  readonly restarts: string[] = [];
  /** Whether a STATS_REQUEST is answered (at once, as a live plugin does). */
  answers = true;
  constructor(private readonly clock: { now: number }) {}
  requestStats(): void {
    this.asked++;
    if (this.answers) this.lastFrameAt = this.clock.now;
  }
  restart(reason: string): void {
    this.restarts.push(reason);
  }
}

function setup(): { clock: { now: number }; proc: FakeProcess; supervisor: Supervisor } {
  const clock = { now: 1_000_000 };
  const proc = new FakeProcess(clock);
  proc.lastFrameAt = clock.now;
  const plugin: Supervised = {
    name: 'fake',
    process: proc as unknown as Supervised['process'],
    // Budgets out of reach: the fake's pid is this test's process, whose real CPU over the fake
    // clock's seconds would read as anything (843% once, under a loaded suite); liveness is the point.
    budget: { cpuPercent: 1e9, memoryBytes: 2 ** 40, maxOpenFiles: 2 ** 20, eventsPerSecond: 0 },
    eventsIn: () => 0,
    takeOverLimit: () => 0,
    dropped: () => ({}),
  };
  const log = new Logger({ level: 'error', maxBytes: 1 << 20, maxFiles: 1, stream: new PassThrough() });
  const supervisor = new Supervisor({ log, sustainS: 10, healthS: 1, sampleMs: 1000, now: () => clock.now });
  supervisor.add(plugin);
  return { clock, proc, supervisor };
}

/** One watchdog round every second for `seconds`. */
function rounds(s: ReturnType<typeof setup>, seconds: number): void {
  for (let i = 0; i < seconds; i++) {
    s.clock.now += 1000;
    s.supervisor.sample();
  }
}

describe('plugin watchdog liveness', () => {
  it('asks a silent plugin for its counters and leaves it running when it answers', () => {
    const s = setup();
    rounds(s, 10);
    assert.ok(s.proc.asked >= 3);
    assert.deepEqual(s.proc.restarts, []);
  });

  it('restarts a plugin still silent two health periods after being asked', () => {
    const s = setup();
    s.proc.answers = false;
    rounds(s, 2);
    assert.equal(s.proc.asked, 1);
    assert.deepEqual(s.proc.restarts, []);
    rounds(s, 1);
    assert.deepEqual(s.proc.restarts, ['unresponsive: no frame for 3 s']);
  });

  it('never judges a plugin the agent stopped reading (its own back-pressure), and judges it again once it reads', () => {
    const s = setup();
    s.proc.answers = false;
    s.proc.readPaused = true;
    rounds(s, 10);
    assert.deepEqual(s.proc.restarts, [], 'held back, not silent');
    s.proc.readPaused = false;
    s.proc.lastFrameAt = s.clock.now; // what resume() does
    rounds(s, 3);
    assert.deepEqual(s.proc.restarts, ['unresponsive: no frame for 3 s']);
  });

  it('judges no plugin on a round that comes late because the agent was held up', () => {
    const s = setup();
    s.proc.answers = false;
    rounds(s, 1); // asked; its answer will sit unread in the pipe
    assert.equal(s.proc.asked, 1);
    s.clock.now += 5000; // the agent's event loop blocked for 5 s
    s.supervisor.sample();
    assert.deepEqual(s.proc.restarts, [], 'no verdict on the late round');
    // The answer is read once the agent runs again: the plugin is live.
    s.proc.lastFrameAt = s.clock.now + 1;
    s.proc.answers = true;
    rounds(s, 5);
    assert.deepEqual(s.proc.restarts, []);
  });

  it('still restarts a plugin that stays silent after the agent was held up', () => {
    const s = setup();
    s.proc.answers = false;
    s.clock.now += 5000;
    s.supervisor.sample(); // first round: nothing to compare with, asks
    s.clock.now += 5000;
    s.supervisor.sample(); // late: no verdict, and asked afresh next round
    assert.deepEqual(s.proc.restarts, []);
    rounds(s, 3);
    assert.equal(s.proc.restarts.length, 1);
    assert.match(s.proc.restarts[0]!, /^unresponsive: no frame for \d+ s$/);
  });

  it('restarts a silent plugin although some rounds come late (the ask is kept across them)', () => {
    const s = setup();
    s.proc.answers = false;
    for (let i = 0; i < 6 && s.proc.restarts.length === 0; i++) {
      rounds(s, 2);
      s.clock.now += 3000; // one late round every three
      s.supervisor.sample();
    }
    assert.equal(s.proc.restarts.length, 1);
  });

  it('restarts a silent plugin when every round comes late, after a few of them', () => {
    const s = setup();
    s.proc.answers = false;
    for (let i = 0; i < 12 && s.proc.restarts.length === 0; i++) {
      s.clock.now += 2000;
      s.supervisor.sample();
    }
    assert.equal(s.proc.restarts.length, 1);
    assert.ok(s.proc.asked >= 1, 'asked although late');
  });
});

describe('plugin health in the status', () => {
  it('shows what a running plugin says of its health, checked, beside the supervisor state', () => {
    const s = setup();
    let said: Readonly<Record<string, unknown>> | undefined;
    const plugin = s.supervisor.get('fake') as { health?: Supervised['health'] };
    plugin.health = () => readPluginHealth(said);
    assert.equal(s.supervisor.status()[0]!.health, undefined, 'nothing said: nothing shown');
    said = { listening: [], health: { status: 'degraded', detail: '0 of 1 decoy listening: the honeypot watches nothing' } };
    const [status] = s.supervisor.status();
    assert.equal(status!.state, 'running');
    assert.equal(status!.health, 'degraded');
    assert.equal(status!.healthDetail, '0 of 1 decoy listening: the honeypot watches nothing');
    said = { health: { status: 'ok' } };
    assert.equal(s.supervisor.status()[0]!.health, 'ok');
    assert.equal(s.supervisor.status()[0]!.healthDetail, undefined);
    // Not what the protocol says: ignored; a detail is cut to its limit.
    for (const bad of [{ health: 'degraded' }, { health: { status: 'broken' } }, { health: ['ok'] }]) {
      said = bad;
      assert.equal(s.supervisor.status()[0]!.health, undefined, JSON.stringify(bad));
    }
    said = { health: { status: 'degraded', detail: 'x'.repeat(5000) } };
    assert.equal(s.supervisor.status()[0]!.healthDetail!.length, MAX_HEALTH_DETAIL);
    // A plugin that does not run says nothing: its state speaks.
    s.proc.state = 'backoff';
    assert.equal(s.supervisor.status()[0]!.health, undefined);
  });
});

describe('plugin watchdog memory', () => {
  /** A plugin whose budget is a tenth of this test process's resident memory (the fake's pid is ours). */
  function overCeiling(group?: Supervised['group']): { proc: FakeProcess; supervisor: Supervisor; clock: { now: number } } {
    const clock = { now: 1_000_000 };
    const proc = new FakeProcess(clock);
    proc.lastFrameAt = clock.now;
    const rss = process.memoryUsage().rss;
    const plugin: Supervised = {
      name: 'hog',
      process: proc as unknown as Supervised['process'],
      budget: { cpuPercent: 1e9, memoryBytes: Math.floor(rss / 10), maxOpenFiles: 2 ** 20, eventsPerSecond: 0 },
      group,
      eventsIn: () => 0,
      takeOverLimit: () => 0,
      dropped: () => ({}),
    };
    const log = new Logger({ level: 'error', maxBytes: 1 << 20, maxFiles: 1, stream: new PassThrough() });
    const supervisor = new Supervisor({ log, sustainS: 60, healthS: 3600, sampleMs: 1000, now: () => clock.now });
    supervisor.add(plugin);
    return { proc, supervisor, clock };
  }

  it('without a cgroup to hold it, kills a plugin over twice its memory budget (the ceiling a cgroup would set) at once', () => {
    const s = overCeiling();
    s.clock.now += 1000;
    s.supervisor.sample();
    assert.equal(s.proc.restarts.length, 1, 'a query eating memory by the hundred MB a second must not have 60 s');
    assert.match(s.proc.restarts[0]!, /over its memory ceiling: \d+ MB > twice its budget/);
  });

  it('leaves the ceiling to the kernel where the plugin has a cgroup, and restarts it only after the sustain window', () => {
    const rss = process.memoryUsage().rss;
    const group = { name: 'hog', add: () => undefined, setLimits: () => undefined, killAll: () => 0, remove: () => undefined, usage: () => ({ cpuUsageUsec: 0, memoryBytes: rss }) };
    const s = overCeiling(group);
    for (let i = 0; i < 60; i++) {
      s.clock.now += 1000;
      s.supervisor.sample();
    }
    assert.deepEqual(s.proc.restarts, []);
    s.clock.now += 1000;
    s.supervisor.sample();
    assert.match(s.proc.restarts[0] ?? '', /over its memory budget/);
  });
});
