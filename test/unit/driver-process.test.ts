import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { DriverProcess, type DriverGap, type DriverHandlers } from '../../src/agent/driver/driver-process.js';
import { decodeRecords, newDecodeCounters } from '../../src/agent/driver/records.js';
import { addDriverStats } from '../../src/agent/kernel-events.js';
import { HadesError } from '../../src/common/errors.js';
import { projectRoot } from '../helpers/generated-docs.js';

const fake = `${projectRoot}test/fixtures/fake-driver.mjs`;
const dir = mkdtempSync(path.join(tmpdir(), 'hades-fake-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function driver(mode: string, handlers: Partial<DriverHandlers> = {}, graceMs = 500): DriverProcess {
  return new DriverProcess({ binary: process.execPath, args: [fake, mode, path.join(dir, `${mode}-${Math.random()}`)], graceMs }, { onRecords: () => undefined, ...handlers });
}

const isCode = (code: string) => (e: unknown) => e instanceof HadesError && e.code === code;

describe('driver supervision (with a stand-in driver)', () => {
  it('reports the driver\'s own words when it cannot start', async () => {
    await assert.rejects(driver('exit-at-once').start(), (e: unknown) => isCode('HADES_ERR_DRIVER_FAILED')(e) && /Operation not permitted/.test((e as Error).message));
  });

  it('refuses a driver speaking another protocol version', async () => {
    await assert.rejects(driver('wrong-protocol').start(), isCode('HADES_ERR_DRIVER_PROTOCOL'));
  });

  it('refuses a missing binary with a coded error', async () => {
    const d = new DriverProcess({ binary: path.join(dir, 'nope'), args: [] }, { onRecords: () => undefined });
    await assert.rejects(d.start(), isCode('HADES_ERR_DRIVER_NOT_FOUND'));
  });

  it('kills a driver that sends a garbage frame, restarts it and reports the gap', async () => {
    const errors: HadesError[] = [];
    const gaps: DriverGap[] = [];
    const counters = newDecodeCounters();
    let gotRecord!: () => void;
    const recordSeen = new Promise<void>((resolve) => (gotRecord = resolve));
    const d = driver('garbage-after-hello', {
      onProtocolError: (e) => errors.push(e),
      onGap: (g) => gaps.push(g),
      onRecords: (payload) => {
        if (decodeRecords(payload, counters).length > 0) gotRecord();
      },
    });
    await d.start();
    await recordSeen;
    await d.stop();
    assert.equal(errors[0]?.code, 'HADES_ERR_FRAME_TOO_LARGE');
    assert.equal(gaps.length, 1);
    assert.equal(gaps[0]?.reason, 'protocol error: HADES_ERR_FRAME_TOO_LARGE');
    assert.equal(d.restarts, 1);
  });

  it('gives up on a driver that keeps crashing, with a coded error', async () => {
    let fatal!: (e: HadesError) => void;
    const gaveUp = new Promise<HadesError>((resolve) => (fatal = resolve));
    const d = driver('crash-loop', { onFatal: fatal });
    await d.start();
    const error = await gaveUp;
    assert.equal(error.code, 'HADES_ERR_DRIVER_FAILED');
    assert.match(error.message, /failed 5 times in a row \(exit status 7/);
    await d.stop();
  });

  it('stops a driver that ignores the end of its input by killing its process group', async () => {
    const d = driver('ignore-eof', {}, 300);
    await d.start();
    const pid = d.pid ?? 0;
    const started = Date.now();
    await d.stop();
    assert.ok(Date.now() - started >= 250, 'waited for the grace period');
    assert.throws(() => process.kill(pid, 0), 'the driver is gone');
  });

  it('answers commands with ok: false when the driver is not running', async () => {
    const d = driver('normal');
    const ack = await d.command(0x81, (id) => new Uint8Array([id, 0, 0, 0]));
    assert.deepEqual([ack.ok, ack.code], [false, 'ENOTCONN']);
  });
});

describe('addDriverStats', () => {
  it('adds a restarted driver\'s counters to those of the drivers before it, keeping gauges and states as they are now', () => {
    const first = { hooks: { sched_process_exec: { seen: 10, sent: 9, dropped_ringbuf_full: 1, active: true } as Record<string, number | boolean>, sys_enter_connect: { seen: 5, suppressed: 199 } }, loader: { records: 3776, lost_netlink: 2, tracked_processes: 300 } };
    const second = { hooks: { sched_process_exec: { seen: 4, sent: 4, dropped_ringbuf_full: 0, active: false } as Record<string, number | boolean>, sys_enter_connect: { seen: 1, suppressed: 52 } }, loader: { records: 239, lost_netlink: 0, tracked_processes: 120 } };
    const sum = addDriverStats(first as never, second as never);
    assert.deepEqual(sum, {
      hooks: { sched_process_exec: { seen: 14, sent: 13, dropped_ringbuf_full: 1, active: false }, sys_enter_connect: { seen: 6, suppressed: 251 } },
      loader: { records: 4015, lost_netlink: 2, tracked_processes: 120 },
    });
    // The first driver: its own counters, as they are.
    assert.equal(addDriverStats(undefined, second as never), second);
    // A hook only one of them reported is kept; no loader object in either: none in the sum.
    assert.deepEqual(addDriverStats({ hooks: { a: { seen: 1 } } }, { hooks: { b: { seen: 2 } } }), { hooks: { a: { seen: 1 }, b: { seen: 2 } } });
  });
});
