/**
 * serializeEvent must give exactly JSON.stringify(event), byte for byte, whatever path it takes:
 * over the driver fixtures, over records with every optional field and odd strings, after
 * enrichment, and whatever its memos hold from earlier events.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { FrameReader } from '../../src/common/codec/frames.js';
import type { HadesEvent } from '../../src/common/events/index.js';
import { Accounts } from '../../src/agent/accounts.js';
import { EventBuilder } from '../../src/agent/builder.js';
import { decodeRecords, MissingField, newDecodeCounters, RecordFlag, type DriverRecord, type ExecRecord, type FdInfo } from '../../src/agent/driver/records.js';
import type { SecurityRecord } from '../../src/agent/driver/security-records.js';
import { ExecutableHasher } from '../../src/agent/hasher.js';
import { serializeEvent } from '../../src/agent/serialize.js';
import { ProcessTree } from '../../src/agent/tree.js';
import { newBuilder } from '../helpers/builder.js';
import { projectRoot } from '../helpers/generated-docs.js';
import { execRecord } from '../helpers/records.js';

const FIXTURES = ['exec-basic-ebpf.bin', 'exec-basic-cnproc.bin', 'security-ebpf.bin', 'exec-v2-ebpf.bin'];

function recordsOf(file: string): DriverRecord[] {
  const records: (DriverRecord | SecurityRecord)[] = [];
  const counters = newDecodeCounters();
  for (const frame of new FrameReader().push(readFileSync(`${projectRoot}test/fixtures/driver/${file}`))) if (frame.type === 2) decodeRecords(frame.payload, counters, records);
  return processRecords(records);
}

function processRecords(records: readonly (DriverRecord | SecurityRecord)[]): DriverRecord[] {
  return records.filter((r): r is DriverRecord => r.type === 'exec' || r.type === 'fork' || r.type === 'exit');
}

function hashingBuilder(hostName = 'test'): EventBuilder {
  const builder = new EventBuilder(new ProcessTree(hostName, 65536), new Accounts(), new ExecutableHasher({ enabled: true, maxFileBytes: 1 << 20, maxBytesPerSecond: 64 << 20 }), {
    host: { name: hostName, kernel: '6.18', architecture: 'x64' },
    agentVersion: 'test',
    ancestors: 8,
  });
  builder.bootTimeNs = 1_795_850_000_000_000_000;
  return builder;
}

async function buildAll(builder: EventBuilder, records: readonly DriverRecord[]): Promise<HadesEvent[]> {
  const events: HadesEvent[] = [];
  for (const r of records) events.push(await builder.build(r));
  return events;
}

/** Asserts that each event serialises to JSON.stringify's bytes, and says which differs. */
function assertSame(events: readonly HadesEvent[], label: string): void {
  for (const [i, e] of events.entries()) {
    const expected = JSON.stringify(e);
    const actual = serializeEvent(e);
    if (actual !== expected) {
      let at = 0;
      while (at < expected.length && actual[at] === expected[at]) at++;
      assert.fail(`${label}: event ${i} (${e.event.action}) differs at ${at}:\n  got      ${actual.slice(Math.max(0, at - 80), at + 80)}\n  expected ${expected.slice(Math.max(0, at - 80), at + 80)}`);
    }
  }
}

/** How many times JSON.stringify is called while fn runs. */
function stringifyCalls(fn: () => void): number {
  const original = JSON.stringify;
  let calls = 0;
  JSON.stringify = ((...args: Parameters<typeof JSON.stringify>) => {
    calls++;
    return original(...args);
  }) as typeof JSON.stringify;
  try {
    fn();
  } finally {
    JSON.stringify = original;
  }
  return calls;
}

/**
 * Copies of an event, each with one primitive value changed (a number + 1, a string with a
 * letter more, a boolean flipped) or one array shortened by its last item. The objects on the way to the value are copied, never
 * changed: shared objects stay as they are, as the builder's are.
 */
function* singleChanges(event: HadesEvent): Generator<HadesEvent> {
  function* walk(value: unknown): Generator<unknown> {
    if (typeof value === 'number') yield value + 1;
    else if (typeof value === 'string') yield `${value}z`;
    else if (typeof value === 'boolean') yield !value;
    else if (Array.isArray(value)) {
      if (value.length > 0) yield value.slice(0, -1);
      for (let i = 0; i < value.length; i++) {
        for (const changed of walk(value[i])) {
          const copy = value.slice();
          copy[i] = changed;
          yield copy;
        }
      }
    } else if (value !== null && typeof value === 'object') {
      for (const key of Object.keys(value)) {
        for (const changed of walk((value as Record<string, unknown>)[key])) yield { ...value, [key]: changed };
      }
    }
  }
  for (const changed of walk(event)) yield changed as HadesEvent;
}

const ODD = ['', 'plain', 'quote " in', 'back\\slash', 'new\nline', 'tab\there', 'bell\u0007', 'nul\u0000', 'del\u007f', 'é ü', '€', 'emoji 😀', 'lone \ud800', 'lone \udc00 low', '\udc00\ud800', 'sep \u2028 \u2029', '</script>', 'x'.repeat(600)];

const ipv4 = (a: number, b: number, c: number, d: number) => Uint8Array.of(a, b, c, d, ...new Array<number>(12).fill(0));
const ipv6Loopback = Uint8Array.of(...new Array<number>(15).fill(0), 1);

function fd(kind: FdInfo['kind'], extra: Partial<FdInfo> = {}): FdInfo {
  return { kind, family: 0, sockType: 0, protocol: 0, inode: 0, localPort: 0, remotePort: 0, rdev: 0, localAddr: new Uint8Array(0), remoteAddr: new Uint8Array(0), ...extra };
}

const FD_SETS: (readonly [FdInfo, FdInfo, FdInfo])[] = [
  [fd('char', { rdev: (136 << 20) | 3 }), fd('pipe', { inode: 77 }), fd('file', { inode: 2 ** 40 + 5 })],
  [fd('none'), fd('socket', { family: 2, sockType: 1, protocol: 6, inode: 9, localPort: 40000, remotePort: 80, localAddr: ipv4(127, 0, 0, 1), remoteAddr: ipv4(10, 1, 2, 3) }), fd('unknown')],
  [fd('socket', { family: 10, sockType: 2, protocol: 17, inode: 10, localPort: 53, localAddr: ipv6Loopback, remoteAddr: ipv6Loopback }), fd('socket', { family: 1, sockType: 1, inode: 11 }), fd('dir')],
];

/** Exec records derived from a real one, each exercising other optional fields and strings. */
function execVariants(base: ExecRecord): ExecRecord[] {
  const out: ExecRecord[] = [];
  let pid = 50_000;
  const v = (changes: Partial<ExecRecord>): void => {
    pid++;
    out.push({ ...base, pid, tid: pid, ...changes });
  };
  v({});
  for (const bit of Object.values(MissingField)) v({ missing: bit });
  v({ missing: 0x7fff });
  v({ ttyDev: (136 << 20) | 3, tty: 'pts/3', loginuid: 1000 });
  v({ euid: 0, capEffective: [0x3000, 0] });
  v({ euid: 1000, uid: 1000, capEffective: [0, 0] });
  v({ euid: 1000, capEffective: [1 << 13, 0] });
  v({ cgroupPath: `/system.slice/docker-${'ab'.repeat(32)}.scope` });
  v({ cgroupPath: `/kubepods/besteffort/pod1/${'cd'.repeat(32)}` });
  v({ cgroupPath: '' });
  v({ flags: RecordFlag.argvTruncated | RecordFlag.exeMemfd | RecordFlag.exeDeleted, exePath: '/memfd:x (deleted)' });
  v({ argv: [], argvBytes: 0 });
  v({ exePath: '', filename: '', cwd: '' });
  for (const fds of FD_SETS) v({ fds });
  for (const s of ODD) {
    v({ comm: s, exePath: s || '/x', cwd: s, tty: s, ttyDev: s ? 5 << 20 : 0, cgroupPath: s, argv: [s, `${s}${s}`, 'arg'] });
    v({ argv: [s] });
  }
  return out;
}

describe('serializeEvent', () => {
  it('gives JSON.stringify bytes for every event built from the driver fixtures', async () => {
    for (const file of FIXTURES) {
      const records = recordsOf(file);
      assert.ok(records.length > 0, file);
      for (const builder of [newBuilder(), hashingBuilder()]) {
        const events = await buildAll(builder, records);
        assertSame(events, file);
        // Again, in another order: the memos now hold other events' parts.
        assertSame([...events].reverse(), `${file}, reversed`);
        assertSame(
          events.filter((_, i) => i % 3 === 0),
          `${file}, every third`,
        );
      }
    }
  });

  it('gives JSON.stringify bytes for every optional field, fd kind and odd string', async () => {
    const records = recordsOf('exec-basic-ebpf.bin');
    const bases = records.filter((r): r is ExecRecord => r.type === 'exec').slice(0, 6);
    assert.ok(bases.length > 0);
    for (const builder of [newBuilder(), hashingBuilder()]) {
      // The fixture first, so that the variants have ancestors.
      const events = await buildAll(builder, records);
      for (const base of bases) events.push(...(await buildAll(builder, execVariants(base))));
      assertSame(events, 'variants');
    }
  });

  it('gives JSON.stringify bytes for fork and exit events with odd names and unknown processes', async () => {
    const builder = newBuilder();
    const records = recordsOf('exec-basic-ebpf.bin');
    const events = await buildAll(builder, records);
    for (const r of records) {
      if (r.type === 'fork') for (const s of ODD) events.push(await builder.build({ ...r, comm: s, childPid: r.childPid + 100_000 }));
      if (r.type === 'exit') for (const s of ODD) events.push(await builder.build({ ...r, comm: s, pid: r.pid + 200_000 }), await builder.build({ ...r, comm: s, ppid: 0 }));
      // An exit whose code the driver does not know (cn_proc: the last thread's message lost).
      if (r.type === 'exit') events.push(await builder.build({ ...r, pid: r.pid + 300_000, missing: r.missing | MissingField.exitCode }));
    }
    assertSame(events, 'fork/exit');
  });

  it('gives JSON.stringify bytes for records built byte by byte (odd argv bytes, deep cwd, a file on standard input, deleted or not)', async () => {
    const builder = newBuilder();
    const enc = new TextEncoder();
    const argvs = [enc.encode('sh\0-c\0echo "hi"\0'), Uint8Array.of(0x2f, 0x62, 0xff, 0xfe, 0, 0x41, 0xc3, 0x28, 0), enc.encode('a\0\0b\0'), new Uint8Array(0), enc.encode('\u0001\u001f\\"\0')];
    const decoded: (DriverRecord | SecurityRecord)[] = [];
    for (const [i, argv] of argvs.entries()) {
      decodeRecords(execRecord({ pid: 300 + i, ppid: 1, comm: 'we"ird\\', exe: '/usr/bin/é', cwd: `/tmp/${'d/'.repeat(100)}"`, tty: 'pts/\u0001', cgroup: '/a"b', argv }), newDecodeCounters(), decoded);
    }
    // A file on standard input, and one deleted since it was opened.
    decodeRecords(execRecord({ pid: 320, ppid: 1, stdin: '/tmp/in "x"' }), newDecodeCounters(), decoded);
    decodeRecords(execRecord({ pid: 321, ppid: 1, stdin: '/tmp/in', flags: RecordFlag.stdinDeleted }), newDecodeCounters(), decoded);
    const records = processRecords(decoded);
    assert.equal(records.length, argvs.length + 2);
    assertSame(await buildAll(builder, records), 'byte-built');
  });

  it('writes numbers as JSON does (null for NaN and the infinities, no -0, exponents)', async () => {
    const builder = newBuilder();
    const records = recordsOf('exec-basic-ebpf.bin');
    const events = await buildAll(builder, records);
    const odd = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, 1e21, 0.1, 2 ** 53 + 2, -1];
    const changed: HadesEvent[] = [];
    for (const [i, value] of odd.entries()) {
      for (const e of events) {
        // Replaces values in the event's own objects (never the shared ones, which are read-only).
        const x = e as unknown as { event: { sequence: number }; process: Record<string, unknown> & { pid: number; parent?: { pid: number } }; hades: { process?: { args_bytes: number } } };
        if (i % 2 === 0) x.process.pid = value;
        else x.event.sequence = value;
        if (x.process.parent) x.process.parent = { ...x.process.parent, pid: value };
        if (x.hades.process) x.hades.process = { ...x.hades.process, args_bytes: value };
        changed.push(e);
      }
      assertSame(changed, `number ${value}`);
      changed.length = 0;
    }
  });

  it('leaves events with members it does not know to JSON.stringify (enrichers, other shapes)', async () => {
    const builder = newBuilder();
    const events = await buildAll(builder, recordsOf('exec-basic-ebpf.bin'));
    const enriched: HadesEvent[] = [];
    for (const e of events) {
      // Each on its own: a member more at the top, in process, in hades (copies keep the builder's shape).
      const x = e as unknown as Record<string, Record<string, unknown>>;
      enriched.push({ ...x, labels: { site: 'a' } } as unknown as HadesEvent);
      enriched.push({ ...x, process: { ...x['process'], extra: 'added by an enricher' } } as unknown as HadesEvent);
      enriched.push({ ...x, hades: { ...x['hades'], rule: { id: 'r1' } } } as unknown as HadesEvent);
      // Nested objects an enricher might extend.
      const process = x['process'] as Record<string, unknown>;
      const hades = x['hades'] as Record<string, unknown>;
      if (process['parent']) enriched.push({ ...x, process: { ...process, parent: { ...(process['parent']), labels: ['x'] } } } as unknown as HadesEvent);
      if (hades['process']) enriched.push({ ...x, hades: { ...hades, process: { ...(hades['process']), image: 'x' } } } as unknown as HadesEvent);
      // Values of other types than the builder's.
      enriched.push({ ...x, '@timestamp': new Date(0) } as unknown as HadesEvent);
      enriched.push({ ...x, process: { ...process, pid: '12', name: 7 } } as unknown as HadesEvent);
      if (hades['process']) enriched.push({ ...x, hades: { ...hades, process: { ...(hades['process']), fileless: 'no', args_truncated: 1 } } } as unknown as HadesEvent);
      if (process['args']) enriched.push({ ...x, process: { ...process, args: 'not a list' } } as unknown as HadesEvent);
      if (process['interactive'] !== undefined) enriched.push({ ...x, process: { ...process, interactive: 0 } } as unknown as HadesEvent);
      // Arguments that are not all strings.
      if (x['process']?.['args']) {
        for (const args of [['a', { b: 1 }], ['a', 3, true], ['a', undefined, null]]) enriched.push({ ...x, process: { ...x['process'], args } } as unknown as HadesEvent);
      }
    }
    assertSame(enriched, 'enriched');
    // An exec event made by hand, in another key order, and not by the builder.
    const byHand = { process: { name: 'x', pid: 1 }, '@timestamp': 't', event: { action: 'exec', category: ['process'], type: ['start'], kind: 'event', id: 'i', sequence: 1 } };
    assert.equal(serializeEvent(byHand as unknown as HadesEvent), JSON.stringify(byHand));
    // The builder's aggregated summary copy of an exec event (a copy, not the builder's shape).
    const summary = builder.summary(events[5] as HadesEvent, 3, 1_795_850_000_000);
    assert.equal(serializeEvent(summary), JSON.stringify(summary));
  });

  it('gets read-only shared parts from the builder, so that their JSON, made once, stays true', async () => {
    const [exec] = (await buildAll(hashingBuilder(), recordsOf('exec-v2-ebpf.bin'))) as unknown as Record<string, Record<string, unknown>>[];
    const process = exec?.['process'] as Record<string, Record<string, unknown>>;
    for (const sharedPart of [exec?.['host'], exec?.['host']?.['os'], exec?.['agent'], process['user'], process['group'], process['real_user']]) {
      assert.ok(Object.isFrozen(sharedPart), JSON.stringify(sharedPart));
    }
    const ancestors = (exec?.['hades'] as { ancestors: object[] }).ancestors;
    assert.ok(Object.isFrozen(ancestors) && ancestors.every((a) => Object.isFrozen(a)));
  });

  it('keeps memos apart: builders with other hosts, parents with the same pid, a process that executes again', async () => {
    const a = newBuilder();
    const b = hashingBuilder('other');
    const records = recordsOf('exec-basic-ebpf.bin');
    const fromA = await buildAll(a, records);
    const fromB = await buildAll(b, records);
    const mixed: HadesEvent[] = [];
    for (let i = 0; i < fromA.length; i++) mixed.push(fromA[i] as HadesEvent, fromB[i] as HadesEvent);
    assertSame(mixed, 'two builders');
    // The same pids again after exits, with other start times and programs.
    const again = records.map((r) => (r.type === 'exec' ? { ...r, startNs: r.startNs + 1e9, parentStartNs: r.parentStartNs + 1e9, comm: `${r.comm}2`, argv: [...r.argv, 'again'] } : r));
    const second = await buildAll(a, again);
    assertSame([...fromA, ...second, ...fromA], 'pids reused');
  });

  it('gives JSON.stringify bytes for a process that executes again in its own place (process.previous)', async () => {
    const builder = newBuilder();
    const records = recordsOf('exec-basic-ebpf.bin');
    await buildAll(builder, records);
    const exec = records.find((r): r is ExecRecord => r.type === 'exec') as ExecRecord;
    const long = Array.from({ length: 40 }, (_, i) => `argument-${i}-${'x'.repeat(10)}`);
    const again = await buildAll(builder, [
      { ...exec, argv: ['sh', '-c', 'bash < /tmp/q'] },
      { ...exec, argv: long, comm: 'long' },
      { ...exec, argv: ['bash'], comm: 'bash' },
      { ...exec, argv: ['odd "quoted" \\ arg'], comm: 'odd' },
      { ...exec, argv: ['after-odd'], comm: 'after' },
    ]);
    const previous = again.map((e) => (e as unknown as { process: { previous?: { executable?: string; args?: string[]; args_truncated?: boolean }[] } }).process.previous?.[0]);
    assert.deepEqual(previous[1]?.args, ['sh', '-c', 'bash < /tmp/q']);
    assert.equal(previous[2]?.args_truncated, true, 'a long list is cut as an ancestor\'s');
    assert.ok((previous[2]?.args ?? []).join(' ').length <= 512);
    assert.equal(previous[4]?.args?.[0], 'odd "quoted" \\ arg');
    assertSame(again, 'executed again');
  });

  it('notices a change of any single value between two events (no memo ignores a field)', async () => {
    const builder = newBuilder();
    const records = recordsOf('exec-basic-ebpf.bin');
    const events = await buildAll(builder, records);
    // Samples whose strings need no escape, so that they take the hand-written path.
    const plain = (e: HadesEvent) => !JSON.stringify(e).includes('\\');
    const base = records.find((r, i): r is ExecRecord => r.type === 'exec' && plain(events[i] as HadesEvent) && (events[i] as unknown as { hades: { ancestors: unknown[] } }).hades.ancestors.length > 1) as ExecRecord;
    assert.ok(base);
    const file = (inode: number) => ({ ...fd('file'), inode });
    // A parent with a program and arguments, and children of it with the optional fields.
    const fork = records.find((r) => r.type === 'fork') as DriverRecord & { type: 'fork' };
    const exit = records.find((r) => r.type === 'exit') as DriverRecord & { type: 'exit' };
    const child = (pid: number, changes: Partial<ExecRecord>): ExecRecord => ({ ...base, pid, tid: pid, ppid: 60_000, parentStartNs: base.startNs, ...changes });
    const samples = await buildAll(builder, [
      { ...base, pid: 60_000, tid: 60_000, argv: ['parent', '--flag'] },
      child(60_001, { ttyDev: (136 << 20) | 3, tty: 'pts/3', loginuid: 1000, capEffective: [0x3000, 0] }),
      child(60_002, { fds: [file(5), fd('pipe', { inode: 6 }), file(7)], cgroupPath: `/docker/${'ef'.repeat(32)}` }),
      child(60_004, { fds: FD_SETS[1] }),
      // Paths the driver cut, which /proc cannot complete (no such process): hades.process.paths_cut.
      child(60_005, { flags: base.flags | RecordFlag.exeTruncated | RecordFlag.cwdTruncated }),
      // A shell given a script: hades.process.script.
      child(60_006, { exePath: '/usr/bin/dash', argv: ['sh', 's.sh'], cwd: '/tmp' }),
      { ...fork, pid: 60_000, tid: 60_000, childPid: 60_003, parentStartNs: base.startNs, childStartNs: base.startNs + 1e6 },
      { ...exit, pid: 60_001, tid: 60_001, ppid: 60_000, startNs: base.startNs },
    ]);
    samples.push(...['exec', 'fork', 'exit'].map((action) => events.filter((e) => e.event.action === action && plain(e)).at(-1) as HadesEvent));
    assert.deepEqual(
      samples.map((e) => e.event.action),
      ['exec', 'exec', 'exec', 'exec', 'exec', 'exec', 'fork', 'exit', 'exec', 'fork', 'exit'],
    );
    assert.deepEqual((samples[4] as unknown as { hades: { process: { paths_cut: string[] } } }).hades.process.paths_cut, ['executable', 'working_directory']);
    assert.equal((samples[5] as unknown as { hades: { process: { script: string } } }).hades.process.script, '/tmp/s.sh');
    for (const sample of samples) serializeEvent(sample);
    assert.equal(
      stringifyCalls(() => samples.forEach((e) => serializeEvent(e))),
      0,
      'the samples take the hand-written path',
    );
    let paths = 0;
    for (const sample of samples) {
      for (const changed of singleChanges(sample)) {
        paths++;
        assertSame([sample, changed, sample, changed], `${sample.event.action}, one value changed`);
      }
    }
    assert.ok(paths > 200, `${paths} values changed`);
  });

  it('gives JSON.stringify bytes for ancestors that are copies of a shell (copy_of), with odd paths, and after the copy executes again', async () => {
    const builder = newBuilder();
    const tree = (builder as unknown as { tree: ProcessTree }).tree;
    const base = recordsOf('exec-basic-ebpf.bin').find((r): r is ExecRecord => r.type === 'exec') as ExecRecord;
    const events: HadesEvent[] = [];
    let pid = 70_000;
    for (const odd of ODD) {
      const shell = ++pid;
      tree.exec(shell, 1, 1e9, 'kworker', `/srv/${odd}/kworker`, [`/srv/${odd}/kworker`, '-i']);
      tree.setCopyOf(tree.get(shell)!, Object.freeze({ path: `/usr/bin/${odd}bash`, name: `${odd}bash` }));
      tree.fork(shell, ++pid, 2e9, 'kworker');
      events.push(await builder.build({ ...base, pid, tid: pid, ppid: shell, parentStartNs: 1e9, startNs: 2e9 }));
      events.push(await builder.build({ ...base, pid: ++pid, tid: pid, ppid: shell, parentStartNs: 1e9, startNs: 3e9 }));
      // The copy executes again: its next child's ancestor entry has no copy_of.
      tree.exec(shell, 1, 1e9, 'bash', '/usr/bin/bash', ['bash']);
      events.push(await builder.build({ ...base, pid: ++pid, tid: pid, ppid: shell, parentStartNs: 1e9, startNs: 4e9 }));
    }
    const ancestorsOf = (e: HadesEvent) => (e as unknown as { hades: { ancestors: { copy_of?: unknown }[] } }).hades.ancestors;
    assert.ok(ancestorsOf(events[0] as HadesEvent)[0]?.copy_of !== undefined);
    assert.equal(ancestorsOf(events[2] as HadesEvent)[0]?.copy_of, undefined);
    assertSame(events, 'copies among the ancestors');
    const plain = events.filter((e) => !JSON.stringify(e).includes('\\'));
    assert.ok(plain.length > 0);
    assert.equal(stringifyCalls(() => plain.forEach((e) => serializeEvent(e))), 0, 'the hand-written path, the entries made once');
  });

  it('gives an exact line when the very first event has no ancestors (fresh memos)', async () => {
    // A module instance of its own, with its memos as they are at start.
    const url = new URL(`../../src/agent/serialize.js?fresh=${Date.now()}`, import.meta.url).href;
    const fresh = (await import(url)) as { serializeEvent: typeof serializeEvent };
    const builder = newBuilder();
    const [first] = await buildAll(builder, [recordsOf('exec-basic-ebpf.bin').find((r) => r.type === 'exec') as DriverRecord]);
    const e = first as HadesEvent;
    assert.deepEqual((e as unknown as { hades: { ancestors: unknown[] } }).hades.ancestors, []);
    assert.equal(fresh.serializeEvent(e), JSON.stringify(e));
  });

  it('writes the builder’s process events without JSON.stringify once their shared parts are known', async () => {
    // Not a matter of bytes but of cost: a field added to builder.ts and not to serialize.ts
    // sends every exec event to JSON.stringify. Keep the two in step when this fails.
    for (const file of FIXTURES) {
      const events = await buildAll(hashingBuilder(), recordsOf(file));
      // Events with a string to escape go to JSON.stringify by design: leave them out.
      const plain = events.filter((e) => !JSON.stringify(e).includes('\\'));
      for (const e of plain) serializeEvent(e);
      const calls = stringifyCalls(() => {
        for (const e of plain) serializeEvent(e);
      });
      assert.ok(plain.length > 0, file);
      assert.ok(calls <= plain.length / 10, `${file}: ${calls} JSON.stringify calls for ${plain.length} events`);
    }
  });
});
