/**
 * Completing cut arguments from /proc/PID/cmdline (src/agent/args-completion.ts): the pure
 * checks on made-up bytes, and the reader and the event builder on real child processes.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, constants, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { after, describe, it } from 'node:test';
import { ArgsReader, beginsWith, completeFrom } from '../../src/agent/args-completion.js';
import { parseProcStat } from '../../src/agent/tree.js';
import { Accounts } from '../../src/agent/accounts.js';
import { EventBuilder } from '../../src/agent/builder.js';
import { decodeRecords, newDecodeCounters, RecordFlag, type ExecRecord } from '../../src/agent/driver/records.js';
import { ExecutableHasher } from '../../src/agent/hasher.js';
import { serializeEvent } from '../../src/agent/serialize.js';
import { ProcessTree } from '../../src/agent/tree.js';
import { execRecord } from '../helpers/records.js';

const isLinux = process.platform === 'linux';
const bytes = (s: string) => Buffer.from(s, 'utf8');

describe('completeFrom', () => {
  const whole = `sh\0-c\0${' '.repeat(50)}bash -i # payload\0`;
  const cut = ['sh', '-c', ' '.repeat(20)];

  it('gives the whole arguments when /proc begins with the capture and is as long as at the exec', () => {
    assert.deepEqual(completeFrom(cut, whole.length, bytes(whole)), { args: ['sh', '-c', `${' '.repeat(50)}bash -i # payload`], source: 'proc' });
  });

  it('keeps the driver\'s arguments when the process rewrote them', () => {
    const other = `sh\0-c\0echo${' '.repeat(46)}bash -i # payload\0`;
    assert.equal(other.length, whole.length);
    assert.deepEqual(completeFrom(cut, whole.length, bytes(other)), { args: cut, source: 'driver_rewritten' });
    // Same beginning, another length: rewritten past the cut.
    assert.deepEqual(completeFrom(cut, whole.length, bytes(`${whole}x\0`)), { args: cut, source: 'driver_rewritten' });
    assert.deepEqual(completeFrom(cut, whole.length, bytes(whole.slice(0, 40))), { args: cut, source: 'driver_rewritten' });
  });

  it('gives nothing for no bytes (the process is gone, or a zombie)', () => {
    assert.equal(completeFrom(cut, whole.length, Buffer.alloc(0)), undefined);
  });

  it('stops at the read limit and says so', () => {
    const huge = `sh\0-c\0${'a'.repeat(200_000)}\0`;
    // The reader reads limit + 1 bytes of a longer area.
    const got = completeFrom(['sh', '-c', 'aaaa'], huge.length, bytes(huge.slice(0, 1025)), 1024);
    assert.equal(got?.source, 'proc_cut');
    assert.deepEqual(got?.args, ['sh', '-c', 'a'.repeat(1024 - 6)]);
  });

  it('matches a capture cut inside a UTF-8 sequence', () => {
    // The driver cut "é" (c3 a9) after its first byte, which the decoder escaped as U+DCC3.
    assert.equal(beginsWith(['echo', 'café'], ['echo', 'caf\udcc3']), true);
    assert.equal(beginsWith(['echo', 'cafe'], ['echo', 'café']), false);
    assert.equal(beginsWith(['echo'], ['echo', 'x']), false);
  });

  it('reads the start time after a command name with spaces and parentheses', () => {
    const fields = ['S', ...Array.from({ length: 18 }, (_, i) => String(i)), '123456', '7'];
    assert.equal(parseProcStat(`42 (a) b (c)) ${fields.join(' ')}`)?.startTicks, 123456);
    assert.equal(parseProcStat('garbage')?.startTicks, undefined);
  });
});

describe('ArgsReader and the exec event on real processes', { skip: !isLinux && 'needs /proc' }, () => {
  const children: ChildProcess[] = [];
  after(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });

  /** A running `sh -c 'sleep 30' <padding> <marker>` and its start time in ticks. */
  async function longLived(marker: string): Promise<{ pid: number; ticks: number; args: string[] }> {
    const args = ['/bin/sh', '-c', 'sleep 30', ' '.repeat(5000), marker];
    const child = spawn(args[0] as string, args.slice(1), { stdio: 'ignore' });
    children.push(child);
    await once(child, 'spawn');
    const pid = child.pid as number;
    // Until sh has exec'd, /proc shows node's arguments.
    for (let i = 0; i < 200 && !readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes(marker); i++) await new Promise((r) => setTimeout(r, 5));
    const ticks = parseProcStat(readFileSync(`/proc/${pid}/stat`, 'latin1'))!.startTicks;
    return { pid, ticks, args };
  }

  /** What the driver would have kept of `args` at a 4,096-byte limit. */
  const cutOf = (args: string[]) => Buffer.from(args.join('\0') + '\0').subarray(0, 4096).toString('latin1').split('\0');
  const lengthOf = (args: string[]) => Buffer.byteLength(args.join('\0') + '\0');

  it('completes the arguments of the same process, and only of it', async () => {
    const { pid, ticks, args } = await longLived('marker-same');
    const reader = new ArgsReader();
    assert.deepEqual(await reader.complete(pid, ticks, cutOf(args), lengthOf(args)), { args, source: 'proc' });
    // Another start time under the pid: another process (a reused pid), never mixed in.
    assert.equal(await reader.complete(pid, ticks + 1, cutOf(args), lengthOf(args)), undefined);
    // At most limit bytes of a long argv.
    const bounded = await new ArgsReader({ limit: 4500 }).complete(pid, ticks, cutOf(args), lengthOf(args));
    assert.equal(bounded?.source, 'proc_cut');
    assert.equal(Buffer.byteLength((bounded?.args ?? []).join('\0')), 4500);
    // Too many reads unfinished: skipped at once.
    const busy = new ArgsReader({ pendingMax: 0 });
    assert.equal(await busy.complete(pid, ticks, cutOf(args), lengthOf(args)), undefined);
    assert.equal(busy.stats.skipped, 1);
    assert.deepEqual(reader.stats, { completed: 1, rewritten: 0, gone: 1, skipped: 0 });
  });

  it('stops waiting for a read that hangs, and skips reads while hung ones are unfinished', async () => {
    // A FIFO for cmdline: opening it blocks (in the thread pool) until a writer comes, like a
    // read of a process stuck in the kernel.
    const root = mkdtempSync(path.join(tmpdir(), 'hades-argsfill-'));
    try {
      mkdirSync(path.join(root, '77'));
      const fifo = path.join(root, '77', 'cmdline');
      execFileSync('mkfifo', [fifo]);
      const reader = new ArgsReader({ procRoot: root, timeoutMs: 50, pendingMax: 1 });
      const started = Date.now();
      assert.equal(await reader.complete(77, 1, ['sh'], 5000), undefined);
      assert.ok(Date.now() - started < 1000);
      assert.deepEqual(reader.stats, { completed: 0, rewritten: 0, gone: 0, skipped: 1 });
      // The hung read still counts: the next one is not tried.
      assert.equal(await reader.complete(77, 1, ['sh'], 5000), undefined);
      assert.equal(reader.stats.skipped, 2);
      // A writer ends the hung open: the thread is free again.
      closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('gives nothing for a process that has exited', async () => {
    const { pid, ticks, args } = await longLived('marker-gone');
    const child = children.at(-1) as ChildProcess;
    child.kill('SIGKILL');
    await once(child, 'exit');
    const reader = new ArgsReader();
    assert.equal(await reader.complete(pid, ticks, cutOf(args), lengthOf(args)), undefined);
    assert.equal(reader.stats.gone, 1);
  });

  it('puts the whole arguments in the exec event, with args_source, and keeps the cut flag', async () => {
    const { pid, ticks, args } = await longLived('marker-event');
    const builder = new EventBuilder(new ProcessTree('test', 65536), new Accounts(), new ExecutableHasher({ enabled: false, maxFileBytes: 1 << 20, maxBytesPerSecond: 1 << 20 }), {
      host: { name: 'test', kernel: '6.18', architecture: 'x64' },
      agentVersion: 'test',
      ancestors: 8,
      argsReader: new ArgsReader(),
    });
    const cut = Buffer.from(args.join('\0') + '\0').subarray(0, 4096);
    const [decoded] = decodeRecords(execRecord({ pid, filename: '/bin/sh', exe: '/usr/bin/dash', argv: cut, argvOrigLen: lengthOf(args), flags: RecordFlag.argvTruncated }), newDecodeCounters()) as [ExecRecord];
    // Between tick boundaries: the record's start in ns floors to the start time /proc gives.
    const record: ExecRecord = { ...decoded, startNs: ticks * 1e7 + 5e6 };
    const built = builder.build(record);
    assert.ok(built instanceof Promise);
    const event = JSON.parse(serializeEvent(await built)) as Record<string, any>;
    assert.deepEqual(event['process'].args, args);
    assert.equal(event['process'].command_line, args.join(' '));
    assert.equal(event['hades'].process.args_source, 'proc');
    assert.equal(event['hades'].process.args_truncated, true);
    assert.deepEqual(event, JSON.parse(JSON.stringify(await built)));
    // Its children's events name it with the whole arguments too.
    assert.deepEqual(builder.parentRef(pid, 0).args, args);

    // A record of another process under the pid (an older start) keeps the driver's arguments.
    const stale = (await builder.build({ ...record, startNs: (ticks - 100) * 1e7 })) as unknown as Record<string, any>;
    assert.equal(stale['process'].args.join('\0').length, 4096);
    assert.equal(stale['hades'].process.args_source, undefined);
  });
});
