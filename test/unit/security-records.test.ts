/**
 * The security records of the driver (kinds 4..16, driver/PROTOCOL.md sections 2.6-2.15) on
 * recorded driver output: decoding, damaged input, and the ECS events built from them.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import { FrameReader } from '../../src/common/codec/frames.js';
import { checkEvent, type HadesEvent } from '../../src/common/events/index.js';
import { decodeRecords, newDecodeCounters, RecordFlag, type DecodeCounters, type DriverRecord, type ExecRecord } from '../../src/agent/driver/records.js';
import { SecurityKind, type SecurityRecord } from '../../src/agent/driver/security-records.js';
import { OPEN_CALLS, pathWatched, SecurityEvents, Syscall, syscallName } from '../../src/agent/security-events.js';
import { projectRoot } from '../helpers/generated-docs.js';
import { concat } from '../helpers/records.js';
import { newBuilder, wire } from '../helpers/builder.js';

type AnyRecord = DriverRecord | SecurityRecord;
type AnyEvent = Record<string, any>;

function framesOf(file: string) {
  return new FrameReader().push(readFileSync(`${projectRoot}test/fixtures/driver/${file}`));
}

function recordsOf(file: string): { records: AnyRecord[]; counters: DecodeCounters } {
  const counters = newDecodeCounters();
  const records: AnyRecord[] = [];
  for (const f of framesOf(file)) if (f.type === 2) decodeRecords(f.payload, counters, records);
  return { records, counters };
}

/** The raw bytes of every record of a fixture, each its own copy (Buffer#slice would share the frame's memory). */
function rawRecordsOf(file: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const f of framesOf(file)) {
    if (f.type !== 2) continue;
    const view = new DataView(f.payload.buffer, f.payload.byteOffset, f.payload.byteLength);
    for (let o = 0; o < f.payload.length; o += view.getUint32(o + 4, true)) out.push(new Uint8Array(f.payload.subarray(o, o + view.getUint32(o + 4, true))));
  }
  return out;
}

/** The counters of records skipped as damaged or unknown. */
const skips = (c: DecodeCounters) => ({ truncated: c.truncated, badSize: c.badSize, badVersion: c.badVersion, unknownKind: c.unknownKind });
const kindOf = (raw: Uint8Array) => new DataView(raw.buffer, raw.byteOffset).getUint16(0, true);
/** The record interface whose `type` can be T (SocketRecord for 'connect', ...). */
type RecordOf<T extends AnyRecord['type']> = AnyRecord extends infer R ? (R extends { type: infer U } ? (T extends U ? R : never) : never) : never;
const ofType = <T extends AnyRecord['type']>(records: readonly AnyRecord[], type: T) => records.filter((r): r is RecordOf<T> => r.type === type);



/** Every record of the fixture through the builder (exec, fork, exit) or SecurityEvents (the others), in order. */
async function eventsOf(file: string, protectedPaths: readonly string[] = []): Promise<AnyEvent[]> {
  const builder = newBuilder();
  const security = new SecurityEvents(builder, { protectedPaths });
  const events: AnyEvent[] = [];
  for (const r of recordsOf(file).records) {
    if (r.type === 'exec' || r.type === 'fork' || r.type === 'exit') {
      const built = builder.build(r);
      events.push(wire(built instanceof Promise ? await built : built));
    } else {
      for (const e of security.build(r)) events.push(wire(e));
    }
  }
  return events;
}

describe('security records of security-ebpf.bin', () => {
  it('decodes every record without skipping any, one or more of every kind 1..16', () => {
    const { records, counters } = recordsOf('security-ebpf.bin');
    assert.deepEqual(skips(counters), { truncated: 0, badSize: 0, badVersion: 0, unknownKind: 0 });
    assert.equal(counters.records, records.length);
    const kinds = new Set(records.map((r) => r.kind));
    for (let kind = 1; kind <= 16; kind++) assert.ok(kinds.has(kind), `kind ${kind} present`);
    assert.ok(records.every((r) => r.size % 8 === 0 && r.pid > 0));
  });

  it('has the documented HELLO and final STATS', () => {
    const frames = framesOf('security-ebpf.bin');
    const json = (i: number) => JSON.parse(new TextDecoder().decode(frames.at(i)?.payload)) as Record<string, any>;
    assert.equal(frames[0]?.type, 1);
    const hello = json(0);
    assert.equal(hello['backend'], 'ebpf');
    assert.equal(hello['hooks'].length, 16);
    assert.ok((hello['hooks'] as { active: boolean }[]).every((h) => h.active));
    const moduleHook = (hello['hooks'] as { name: string; error: string | null; attach: string[] }[]).find((h) => h.name === 'module_load');
    assert.match(moduleHook?.error ?? '', /module names unavailable/);
    assert.deepEqual(moduleHook?.attach, ['sys_enter', 'sys_exit']);
    assert.equal(frames.at(-1)?.type, 3);
    const stats = json(-1);
    assert.equal(stats['request_id'], undefined);
    for (const [hook, c] of Object.entries(stats['hooks'] as Record<string, Record<string, number>>)) assert.equal(c['dropped_ringbuf_full'], 0, hook);
  });

  it('finds the network records: listen, connect, accept, UDP, refused, non-blocking, unix', () => {
    const { records } = recordsOf('security-ebpf.bin');
    const listens = ofType(records, 'listen');
    const v4 = listens.find((r) => r.localPort === 47100);
    assert.ok(v4);
    assert.deepEqual([v4.family, v4.sockType, v4.protocol, v4.backlog, v4.result, v4.comm], [2, 1, 6, 5, 0, 'python3']);
    assert.deepEqual([...v4.localAddr.subarray(0, 4)], [127, 0, 0, 1]);
    const v6 = listens.find((r) => r.localPort === 47101);
    assert.equal(v6?.family, 10);
    assert.deepEqual([...(v6?.localAddr ?? [])], [...new Array<number>(15).fill(0), 1]);
    const connects = ofType(records, 'connect');
    const tcp = connects.find((r) => r.remotePort === 47100);
    assert.ok(tcp);
    assert.deepEqual([tcp.result, tcp.origin, tcp.sockType, tcp.protocol], [0, 1, 1, 6]);
    const accept = ofType(records, 'accept').find((r) => r.localPort === 47100);
    assert.ok(accept);
    assert.equal(accept.fd, 3);
    assert.equal(accept.result, 5);
    assert.equal(accept.remotePort, tcp.localPort, 'the accepted peer is the connecting socket');
    assert.ok(connects.some((r) => r.remotePort === 9999 && r.sockType === 2 && r.protocol === 17));
    const refused = connects.filter((r) => r.remotePort === 1);
    assert.deepEqual(refused.map((r) => [r.result, r.origin]).slice(0, 2), [[-115, 1], [-111, 3]]);
    const nonBlocking = connects.filter((r) => r.remotePort === 47102);
    assert.deepEqual(nonBlocking.map((r) => [r.result, r.origin]), [[-115, 1], [0, 2]]);
    assert.equal(nonBlocking[0]?.localPort, nonBlocking[1]?.localPort);
    const unix = connects.filter((r) => r.family === 1);
    assert.deepEqual(unix.map((r) => [r.path, r.result]), [['/run/hades-sec-test.sock', 0]], 'the unwatched unix path gave nothing');
  });

  it('finds the DNS, privilege, ptrace, memfd, module, file and kill records', () => {
    const { records } = recordsOf('security-ebpf.bin');
    const dns = ofType(records, 'dns');
    const query = dns.find((r) => r.direction === 1 && r.payload.length === 28);
    assert.ok(query);
    assert.deepEqual([query.syscall, query.remotePort, query.payloadOrigLen, (query.payload[0] ?? 0) * 256 + (query.payload[1] ?? 0)], [5, 53, 28, 0x4844]);
    const answer = dns.find((r) => r.direction === 2 && r.result === 44);
    assert.deepEqual([answer?.syscall, answer?.payload.length], [10, 44]);
    assert.equal(dns.filter((r) => r.syscall === 7).length, 2, 'glibc sends A and AAAA with one sendmmsg');

    const priv = ofType(records, 'privilege_change');
    assert.deepEqual(priv.map((r) => [r.syscall, r.changed, r.result]), [[20, 0x300, 0], [18, 0x140, 0], [18, 0x140, 1234], [17, 0xaa, 0], [16, 0x355, 0], [12, 0, -1]]);
    const setresuid = priv[4];
    assert.deepEqual(setresuid?.oldIds, [0, 65534, 0, 65534, 0, 65534, 0, 65534]);
    assert.deepEqual(setresuid?.newIds, new Array<number>(8).fill(65534));
    assert.deepEqual(setresuid?.newCapEffective, [0, 0]);
    assert.equal(((priv[0]?.oldCapEffective[0] ?? 0) >>> 13) & 1, 1, 'CAP_NET_RAW before the capset');
    assert.equal(((priv[0]?.newCapEffective[0] ?? 0) >>> 13) & 1, 0, 'and not after');

    const ptrace = ofType(records, 'ptrace');
    assert.deepEqual(ptrace.map((r) => r.request), [0x10, 0x5, 0xd, 0]);
    const child = ptrace[0]?.targetTgid;
    assert.ok(child && ptrace.slice(0, 3).every((r) => r.targetTgid === child && r.targetPid === child && r.targetStartNs > 0 && r.targetComm === 'hades-sec-exerc'));
    assert.equal(ptrace[3]?.targetTgid, ptrace[0]?.pid, 'TRACEME targets the parent');

    const memfd = ofType(records, 'memfd_create');
    assert.deepEqual(memfd.map((r) => [r.name, r.result, r.memfdFlags]), [['hades-memfd-test', 3, 0], ['hades-memfd-test', 3, 0]]);
    const memfdExecs = ofType(records, 'exec').filter((r) => r.exePath === '/memfd:hades-memfd-test');
    assert.deepEqual(memfdExecs.map((r) => r.filename), ['/dev/fd/3', '/proc/self/fd/3']);
    for (const r of memfdExecs) {
      assert.equal(r.flags & 0x1c0, RecordFlag.exeDeleted | RecordFlag.exeTmpfs | RecordFlag.exeMemfd);
      assert.deepEqual(r.argv, ['memfd-true', 'memfd-arg']);
    }

    const modules = ofType(records, 'module_load');
    assert.deepEqual(modules.map((r) => [r.syscall, r.result, r.fd, r.name, r.path]), [[24, -38, 3, '', '/usr/bin/true'], [23, -38, -1, '', '']]);

    const files = [...ofType(records, 'file_create'), ...ofType(records, 'file_rename'), ...ofType(records, 'file_delete'), ...ofType(records, 'file_chmod')].sort((a, b) => a.ktimeNs - b.ktimeNs);
    const watched = '/tmp/hades-sec-watched/';
    assert.ok(files.length >= 15);
    assert.ok(files.every((r) => r.path.startsWith(watched)), 'nothing from the unwatched folder');
    const first = files[0];
    assert.deepEqual([first?.type, first?.syscall, first?.opFlags, first?.fileMode, first?.path], ['file_create', 26, 0o301, 0o100755, `${watched}hx-abs`]);
    assert.ok(first && (first.inode > 0));
    const renames = files.filter((r) => r.type === 'file_rename').map((r) => [r.syscall, r.path, r.path2]);
    assert.deepEqual(renames, [[31, `${watched}hx-rel`, `${watched}hx-renamed`], [32, `${watched}hx-dirfd`, `${watched}hx-dirfd2`]]);
    const rmdir = files.find((r) => r.type === 'file_delete' && r.syscall === 36);
    assert.equal(rmdir?.opFlags, 0x200);
    const failed = files.find((r) => r.result < 0);
    assert.deepEqual([failed?.result, failed?.path], [-2, `${watched}no-such-dir/hx`]);
    assert.equal(failed && failed.missing & 0x80000, 0x80000, 'missing MODE');

    const kills = ofType(records, 'kill');
    assert.deepEqual(kills.map((r) => [r.syscall, r.signal, r.result]), [[41, 0, 0], [43, 0, 0], [41, 15, 0], [43, 15, 0]]);
    assert.ok(kills.every((r) => r.targetPid === kills[0]?.targetPid && r.targetTgid === r.targetPid && r.targetPid > 0));
  });
});

describe('EXEC version 2 of exec-v2-ebpf.bin', () => {
  it('decodes the 5 records with the executable identity', () => {
    const { records, counters } = recordsOf('exec-v2-ebpf.bin');
    assert.deepEqual(skips(counters), { truncated: 0, badSize: 0, badVersion: 0, unknownKind: 0 });
    const execs = ofType(records, 'exec');
    assert.equal(execs.length, 5);
    assert.equal(records.length, 5);
    for (const r of execs) {
      assert.equal(r.missing & (1 << 21), 0, 'identity read');
      assert.ok(r.exeIno > 0 && r.exeSize > 0 && r.exeMtimeNs > 0 && r.exeCtimeNs > 0 && r.exeDev > 0, JSON.stringify(r));
    }
    const [one, two, three, exerciser, memfd] = execs as [ExecRecord, ExecRecord, ExecRecord, ExecRecord, ExecRecord];
    const identity = (r: ExecRecord) => [r.exeIno, r.exeDev, r.exeSize, r.exeMtimeNs, r.exeCtimeNs];
    assert.deepEqual(one.argv.slice(1), ['exe-id-1']);
    assert.equal(one.exeDev, 0x0fe00000);
    assert.equal(one.exeSize, 35664);
    assert.ok(Math.abs(one.exeMtimeNs - (1795854246 * 1e9 + 574881468)) <= 512, String(one.exeMtimeNs));
    assert.equal(one.exeMtimeNs, one.exeCtimeNs);
    assert.deepEqual(identity(two), identity(one), 'the same file twice');
    assert.equal(three.exeIno, one.exeIno, 'cp over the file keeps its inode');
    assert.equal(three.exeDev, one.exeDev);
    assert.equal(three.exeSize, 43856);
    assert.ok(three.exeMtimeNs > one.exeMtimeNs && three.exeCtimeNs > one.exeCtimeNs);
    assert.equal(exerciser.exeDev, 0x0fe00000);
    assert.equal(memfd.exePath, '/memfd:hades-memfd-test');
    assert.equal(memfd.exeDev, 1, '0:1, the internal shmem mount');
    assert.equal(memfd.exeSize, 35664);
    assert.equal(memfd.flags & (RecordFlag.exeMemfd | RecordFlag.exeDeleted | RecordFlag.exeTmpfs), RecordFlag.exeMemfd | RecordFlag.exeDeleted | RecordFlag.exeTmpfs);
  });

  it(
    'copies the socket addresses of the fd info out of the frame, as decodeFd says',
    () => {
      for (const frame of framesOf('exec-basic-ebpf.bin')) {
        if (frame.type !== 2) continue;
        const exec = ofType(decodeRecords(frame.payload, newDecodeCounters()), 'exec').find((r) => r.fds[1].kind === 'socket');
        if (!exec) continue;
        assert.notEqual(exec.fds[1].remoteAddr.buffer, frame.payload.buffer, 'the address keeps the whole frame alive');
        return;
      }
      assert.fail('no EXEC with a socket on stdout in exec-basic-ebpf.bin');
    },
  );

  it('builds valid exec events from them', async () => {
    const events = await eventsOf('exec-v2-ebpf.bin');
    assert.equal(events.length, 5);
    for (const e of events) assert.deepEqual(checkEvent(e).ok ? [] : checkEvent(e), []);
    assert.equal(events[4]?.['hades'].process.fileless, true);
    assert.equal(events[0]?.['hades'].process.fileless, false);
  });
});

describe('file_open records of file-open-ebpf.bin', () => {
  it('decodes the opens of the registered file, by its path and through a hard link, and nothing else', () => {
    const { records, counters } = recordsOf('file-open-ebpf.bin');
    assert.deepEqual(skips(counters), { truncated: 0, badSize: 0, badVersion: 0, unknownKind: 0 });
    const opens = ofType(records, 'file_open');
    assert.deepEqual(
      opens.map((r) => [r.path, r.opFlags & 3, r.result >= 0, r.syscall]),
      [
        ['/var/tmp/hades-fixture-secret', 0, true, 26],
        ['/var/tmp/hades-fixture-secret', 1, true, 26],
        ['/var/tmp/hades-fixture-secret-link', 2, true, 26],
      ],
    );
    assert.ok(opens.every((r) => r.inode === opens[0]?.inode && r.dev === opens[0]?.dev && r.dev !== 0 && (r.fileMode & 0o170000) === 0o100000));
  });

  it('builds file_open events: what the open allows, and the name the file was registered under', async () => {
    const builder = newBuilder();
    const records = ofType(recordsOf('file-open-ebpf.bin').records, 'file_open');
    const registered = records[0] as (typeof records)[number];
    const security = new SecurityEvents(builder, { protectedPaths: [], sensitiveOf: (dev, ino) => (dev === registered.dev && ino === registered.inode ? '/etc/registered-name' : undefined) });
    const events = records.flatMap((r) => security.build(r)).map((e) => wire(e) as AnyEvent);
    for (const e of events) assert.deepEqual(checkEvent(e).ok ? [] : checkEvent(e), []);
    assert.deepEqual(
      events.map((e) => [e['event'].action, e['event'].type, e['file'].name, e['file'].mode, e['hades'].file.access, e['hades'].file.sensitive, e['hades'].file.syscall]),
      [
        ['file_open', ['access'], 'hades-fixture-secret', '0644', 'read', '/etc/registered-name', 'openat'],
        ['file_open', ['access'], 'hades-fixture-secret', '0644', 'write', '/etc/registered-name', 'openat'],
        ['file_open', ['access'], 'hades-fixture-secret-link', '0644', 'read_write', '/etc/registered-name', 'openat'],
      ],
    );
    // No longer registered (replaced since): the path opened stands for it.
    const unknown = new SecurityEvents(builder, { protectedPaths: [] }).build(registered).map((e) => wire(e) as AnyEvent);
    assert.equal(unknown[0]?.['hades'].file.sensitive, '/var/tmp/hades-fixture-secret');
  });
});

describe('file_open records of a fresh temporary file (flag OPEN_FRESH)', () => {
  it('decodes the writer and the age, and builds hades.file.fresh instead of hades.file.sensitive', () => {
    // A recorded FILE_OPEN made into a fresh file's: flag OPEN_FRESH, mode = age in ms, writer_pid at 124.
    const raw = rawRecordsOf('file-open-ebpf.bin').find((r) => new DataView(r.buffer, r.byteOffset).getUint16(0, true) === SecurityKind.fileOpen);
    assert.ok(raw);
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const counters = newDecodeCounters();
    const plain = ofType(decodeRecords(raw, counters, []) as AnyRecord[], 'file_open');
    assert.equal(plain[0]?.writerPid, 0, 'reserved before: 0 in a secret file\'s record');
    view.setUint32(24, view.getUint32(24, true) | 0x1000000, true);
    view.setUint32(100, 1234, true);
    view.setUint32(124, 4242, true);
    const records = ofType(decodeRecords(raw, counters, []) as AnyRecord[], 'file_open');
    assert.deepEqual(records.map((r) => [r.writerPid, r.mode]), [[4242, 1234]]);
    const security = new SecurityEvents(newBuilder(), { protectedPaths: [], sensitiveOf: () => '/etc/not-this' });
    const events = records.flatMap((r) => security.build(r)).map((e) => wire(e) as AnyEvent);
    for (const e of events) assert.deepEqual(checkEvent(e).ok ? [] : checkEvent(e), []);
    assert.deepEqual(events.map((e) => [e['file'].path, e['hades'].file.access, e['hades'].file.sensitive, e['hades'].file.fresh]), [
      ['/var/tmp/hades-fixture-secret', 'read', undefined, { age_ms: 1234, writer_pid: 4242 }],
    ]);
  });
});

describe('process_rename records of rename-ebpf.bin', () => {
  it('decodes the renames of the process itself, none of its thread or of the same name, and the count over the bound', () => {
    const { records, counters } = recordsOf('rename-ebpf.bin');
    assert.deepEqual(skips(counters), { truncated: 0, badSize: 0, badVersion: 0, unknownKind: 0 });
    const renames = ofType(records, 'process_rename');
    const exec = ofType(records, 'exec').find((r) => r.argv[0] === 'python3') as ExecRecord;
    assert.ok(exec);
    assert.deepEqual(
      renames.map((r) => [r.oldComm, r.newComm, r.unreported]),
      [
        ['python3', 'kworker/0:1H', 0],
        ['kworker/0:1H', 'ksoftirqd/3', 0],
        ['ksoftirqd/3', 'r0', 0],
        ['r0', 'r1', 0],
        ['r1', 'r2', 0],
        ['r2', 'r3', 0],
        ['r3', 'r4', 0],
        ['r4', 'r5', 0],
        // r6..r11 were over the bound of 8 a second: counted, carried by the next record
        ['r11', 'after', 6],
      ],
    );
    assert.ok(renames.every((r) => r.pid === exec.pid && r.tid === exec.pid && r.targetTid === exec.pid && r.startNs === exec.startNs && r.comm === r.oldComm && r.result === 0 && r.size === 136));
    // The exec's own rename (python3 from bash) is no record: the exec names it.
    assert.equal(renames.filter((r) => r.newComm === 'python3').length, 0);
    const stats = JSON.parse(new TextDecoder().decode(framesOf('rename-ebpf.bin').at(-1)?.payload)) as { hooks: Record<string, Record<string, number>> };
    assert.deepEqual([stats.hooks['task_rename']?.['sent'], stats.hooks['task_rename']?.['dropped_rate_limit'], stats.hooks['task_rename']?.['ignored']], [9, 6, 2]);
  });

  it('builds process_rename events named as the process now is, and the tree names it so from then on', async () => {
    const builder = newBuilder();
    const security = new SecurityEvents(builder, { protectedPaths: [] });
    const events: AnyEvent[] = [];
    let pid = 0;
    for (const r of recordsOf('rename-ebpf.bin').records) {
      if (r.type === 'exit') continue;
      if (r.type === 'exec' || r.type === 'fork') {
        const built = builder.build(r);
        await built;
      } else {
        pid = r.pid;
        events.push(...security.build(r).map((e) => wire(e) as AnyEvent));
      }
    }
    for (const e of events) assert.deepEqual(checkEvent(e).ok ? [] : checkEvent(e), []);
    const first = events[0] as AnyEvent;
    assert.deepEqual([first['event'].action, first['event'].category, first['event'].type, first['process'].name, first['hades'].rename], ['process_rename', ['process'], ['change'], 'kworker/0:1H', { old_name: 'python3' }]);
    assert.match(first['process'].executable, /python3/);
    assert.deepEqual(first['process'].args?.[0], 'python3');
    assert.deepEqual(events.at(-1)?.['hades'].rename, { old_name: 'r11', unreported: 6 });
    // Later events of the process, and its children, name it as it now is.
    assert.equal(builder.parentRef(pid, 0).name, 'after');
  });

  it('decodes a catch-up record (HADES_F_RENAME_CATCH_UP) and says so in the event, with the renames it stands for', async () => {
    const raws = rawRecordsOf('rename-ebpf.bin');
    const last = raws.filter((r) => kindOf(r) === SecurityKind.procRename).at(-1);
    assert.ok(last);
    const plain = decodeRecords(last, newDecodeCounters())[0];
    assert.equal(plain?.type === 'process_rename' && plain.catchUp, false);
    const copy = new Uint8Array(last);
    const view = new DataView(copy.buffer, copy.byteOffset, copy.byteLength);
    view.setUint32(24, view.getUint32(24, true) | 0x800000, true); // header.flags |= HADES_F_RENAME_CATCH_UP
    copy.set(new TextEncoder().encode('kworker/0:1H\0\0\0\0'), 112); // new_comm
    view.setUint32(128, 4, true);
    const r = decodeRecords(copy, newDecodeCounters())[0];
    assert.ok(r?.type === 'process_rename');
    assert.deepEqual([r.catchUp, r.newComm, r.unreported], [true, 'kworker/0:1H', 4]);
    const builder = newBuilder();
    for (const x of recordsOf('rename-ebpf.bin').records) if (x.type === 'exec' || x.type === 'fork') await builder.build(x);
    const e = wire(new SecurityEvents(builder, { protectedPaths: [] }).build(r)[0] as HadesEvent) as AnyEvent;
    assert.deepEqual(checkEvent(e).ok ? [] : checkEvent(e), []);
    assert.deepEqual([e['process'].name, e['hades'].rename], ['kworker/0:1H', { old_name: r.oldComm, unreported: 4, catch_up: true }]);
    assert.equal(builder.parentRef(r.pid, 0).name, 'kworker/0:1H');
  });

  it('cn_proc records without the old name: the tree\'s name, else none and hades.missing says so; unread credentials are not root', async () => {
    const builder = newBuilder();
    const security = new SecurityEvents(builder, { protectedPaths: [] });
    const records = recordsOf('rename-ebpf.bin').records;
    for (const r of records) if (r.type === 'exec' || r.type === 'fork') await builder.build(r);
    const first = ofType(records, 'process_rename')[0];
    assert.ok(first);
    // cnproc flag, COMM | CREDS | CGROUP missing, as the cn_proc driver sends a rename of a process it never saw named
    const cn = { ...first, flags: 1 | 0x200, missing: 0x800 | 0x10 | 0x200, comm: '', oldComm: '', uid: 0, gid: 0, euid: 0, egid: 0, cgroupId: 0 };
    const fromTree = wire(security.build({ ...cn, newComm: 'hx-one' })[0] as HadesEvent) as AnyEvent;
    assert.deepEqual(checkEvent(fromTree).ok ? [] : checkEvent(fromTree), []);
    // The tree had the process under the name its exec gave it.
    assert.deepEqual([fromTree['process'].name, fromTree['hades'].rename, fromTree['hades'].missing], ['hx-one', { old_name: 'python3' }, undefined]);
    // A process the tree does not know either: no old name, and the event says it is missing.
    const unknown = wire(security.build({ ...cn, pid: 4_000_001, tid: 4_000_001, targetTid: 4_000_001, newComm: 'hx-two' })[0] as HadesEvent) as AnyEvent;
    assert.deepEqual(checkEvent(unknown).ok ? [] : checkEvent(unknown), []);
    assert.deepEqual([unknown['process'].name, unknown['hades'].rename, unknown['hades'].missing], ['hx-two', {}, ['hades.rename.old_name']]);
    assert.equal(unknown['process'].user, undefined, 'credentials not read are unknown, not uid 0');
  });
});

describe('file events of path arguments spelled with "//", "." or ".."', () => {
  const base = () => {
    const r = ofType(recordsOf('security-ebpf.bin').records, 'file_create')[0];
    assert.ok(r);
    return r;
  };
  const record = (kind: 13 | 14 | 15, over: Partial<SecurityRecord & { type: 'file_rename' }>): SecurityRecord => {
    const type = ({ 13: 'file_rename', 14: 'file_delete', 15: 'file_chmod' } as const)[kind];
    return { ...base(), kind, type, flags: 0, missing: 0x80000, result: 0, mode: 0, fileMode: 0, inode: 0, opFlags: 0, path2: '', ...over };
  };
  const watch = ['/etc/', '/usr/lib/systemd/system/', '/home/*/.ssh/'];
  const build = (r: SecurityRecord, protectedPaths: readonly string[] = []) =>
    new SecurityEvents(newBuilder(), { protectedPaths, watchedPaths: [...watch, ...protectedPaths] }).build(r).map((e) => wire(e) as AnyEvent);

  it('names the file by the lexical normal form of the path, and keeps the argument', () => {
    const [e] = build(record(13, { syscall: 33, path: '/root/unit', path2: '/usr/lib//systemd/./system/x.service' }));
    assert.deepEqual([e?.['event'].action, e?.['file'].path, e?.['file'].directory, e?.['hades'].file.old_path, e?.['hades'].file.argument], ['file_rename', '/usr/lib/systemd/system/x.service', '/usr/lib/systemd/system', '/root/unit', '/usr/lib//systemd/./system/x.service']);
    assert.deepEqual(checkEvent(e).ok ? [] : checkEvent(e), []);
    const [d] = build(record(14, { syscall: 35, path: '/root/../etc/cron.d/job' }));
    assert.deepEqual([d?.['file'].path, d?.['hades'].file.argument], ['/etc/cron.d/job', '/root/../etc/cron.d/job']);
    const [c] = build(record(15, { syscall: 37, mode: 0o600, path: '/home/ana/./.ssh/authorized_keys' }));
    assert.deepEqual([c?.['file'].path, c?.['hades'].file.argument], ['/home/ana/.ssh/authorized_keys', '/home/ana/./.ssh/authorized_keys']);
  });

  it('drops those whose normal form is not watched either (the driver reports them wherever they point)', () => {
    assert.deepEqual(build(record(14, { syscall: 34, path: '/root//x' })), []);
    assert.deepEqual(build(record(13, { syscall: 31, path: '/var/tmp/a', path2: '/etc/../var/tmp/b' })).map((e) => e['event'].action), ['file_rename'], 'the spelling the driver matched is kept');
    assert.deepEqual(build(record(13, { syscall: 31, path: '/root/./a', path2: '/root/b' })), []);
  });

  it('drops a failed truncate whose odd path is watched in no spelling; one that succeeded is the driver\'s to report', () => {
    const truncate = (path: string, result: number) => ({ ...base(), type: 'file_create' as const, syscall: 50, flags: 0, missing: 0, result, mode: 0, fileMode: 0, inode: 0, opFlags: 0o1000, path, path2: '' });
    assert.deepEqual(build(truncate('/srv/../opt/app/x', -2)), [], 'failed, and watched in no spelling');
    assert.equal(build(truncate('/srv/../etc/x', -2)).length, 1, 'failed, its normal form watched');
    assert.equal(build(truncate('/srv/../opt/app/x', 0)).length, 1, 'done: reported wherever it points');
  });

  it('drops a symbolic link whose absolute target is odd and watched in no spelling, keeps one whose target\'s normal form is', () => {
    const link = (path2: string) => ({ ...base(), type: 'file_create' as const, syscall: 48, flags: 0x200000 | 0x2000, missing: 0, result: 0, mode: 0, fileMode: 0, inode: 0, opFlags: 0, path: '/home/ana/x', path2 });
    assert.deepEqual(build(link('/opt/app/../lib/x')), [], 'neither the link nor its target is watched');
    assert.deepEqual(build(link('/usr/../etc/shadow')).map((e) => [e['event'].action, e['hades'].file.link.resolved]), [['file_create', '/etc/shadow']]);
  });

  it('a rename into one of Hades\' folders spelled with "//" is tampering', () => {
    const events = build(record(13, { syscall: 33, path: '/root/x.js', path2: '/opt/hades//dist/x.js' }), ['/opt/hades/']);
    assert.deepEqual(events.map((e) => [e['event'].action, e['hades'].tamper?.path]), [['file_rename', undefined], ['tamper', '/opt/hades/dist/x.js']]);
  });

  it('pathWatched matches like the driver: prefixes, and one "*" component', () => {
    assert.equal(pathWatched('/etc/cron.d/x', watch), true);
    assert.equal(pathWatched('/etcx', watch), false);
    assert.equal(pathWatched('/home/ana/.ssh/id_rsa', watch), true);
    assert.equal(pathWatched('/home/ana/.ssh', watch), true);
    assert.equal(pathWatched('/home/ana/.sshx/k', watch), false);
    assert.equal(pathWatched('/home//.ssh/k', watch), false);
  });
});

describe('file_create events of links', () => {
  const record = (over: Partial<SecurityRecord & { type: 'file_create' }>): SecurityRecord => {
    const base = ofType(recordsOf('security-ebpf.bin').records, 'file_create')[0];
    assert.ok(base);
    return { ...base, result: 0, mode: 0, fileMode: 0, inode: 0, opFlags: 0, ...over };
  };
  const build = (r: SecurityRecord, protectedPaths: readonly string[] = []) => new SecurityEvents(newBuilder(), { protectedPaths }).build(r).map((e) => wire(e) as AnyEvent);

  it("names the driver's syscall ids as driver/src/wire.h does, and tells an in-place write by the open calls' names", () => {
    // The agent's table is the driver's enum hades_sc: a renumbering on one side fails here.
    const header = readFileSync(`${projectRoot}driver/src/wire.h`, 'utf8');
    const body = /enum hades_sc \{([^}]*)\}/.exec(header)?.[1] ?? '';
    const driver = Object.fromEntries([...body.matchAll(/HADES_SC_([A-Z0-9_]+) = (\d+)/g)].filter(([, name]) => name !== 'NONE' && name !== 'COUNT').map(([, name, id]) => [name!.toLowerCase(), Number(id)]));
    assert.ok(Object.keys(driver).length > 50, 'the enum was read');
    assert.deepEqual({ ...Syscall }, driver);
    for (const [name, id] of Object.entries(Syscall)) assert.equal(syscallName(id), name);
    assert.equal(syscallName(999), 'syscall_999');
    assert.deepEqual([...OPEN_CALLS].map(syscallName).sort(), ['open', 'open_by_handle_at', 'openat', 'openat2']);

    const O_WRONLY = 1;
    const written = (syscall: number, opFlags = O_WRONLY) => build(record({ syscall, flags: 0, opFlags, path: '/etc/passwd', path2: '' }))[0]?.['hades'].file.written;
    for (const call of ['open', 'openat', 'openat2', 'open_by_handle_at'] as const) {
      assert.equal(written(Syscall[call]), true, call);
      assert.equal(written(Syscall[call], O_WRONLY | 0o1000), undefined, `${call} with O_TRUNC empties the file`);
    }
    assert.equal(written(Syscall.creat), undefined, 'creat always creates or empties');
    assert.equal(written(Syscall.truncate, 0o1000), undefined);
  });

  it('carries the target as given and made absolute, and no mode of its own', () => {
    const [e] = build(record({ syscall: 48, flags: 0x200000 | 0x2000, path: '/etc/cron.daily/j', path2: '../../dev/shm/.j' }));
    assert.deepEqual(e?.['hades'].file.link, { type: 'symbolic', target: '../../dev/shm/.j', resolved: '/dev/shm/.j' });
    assert.deepEqual([e?.['hades'].file.created, e?.['file'].mode, e?.['hades'].file.executable], [true, undefined, undefined]);
    assert.deepEqual(checkEvent(e).ok ? [] : checkEvent(e), []);
  });

  it('says when a hard link named an open file (AT_EMPTY_PATH, or /proc/self/fd/N followed)', () => {
    const emptyPath = build(record({ syscall: 47, flags: 0x100000 | 0x2000, opFlags: 0x1000, path: '/etc/cron.daily/j', path2: '/etc/cron.daily/#1234' }))[0];
    assert.equal(emptyPath?.['hades'].file.link.from_fd, true);
    const followed = build(record({ syscall: 47, flags: 0x100000 | 0x2000, opFlags: 0x400, path: '/etc/cron.daily/j', path2: '/proc/self/fd/3' }))[0];
    assert.equal(followed?.['hades'].file.link.from_fd, true);
    const plain = build(record({ syscall: 46, flags: 0x100000 | 0x2000, path: '/etc/cron.daily/j', path2: '/var/tmp/j' }))[0];
    assert.equal(plain?.['hades'].file.link.from_fd, undefined);
  });

  it('truncate(2): the path in its lexical normal form, the argument kept; emptying one of Hades\' files is tampering', () => {
    const [e] = build(record({ syscall: 50, flags: 0, opFlags: 0o1000, path: '/tmp/../var//log/auth.log', path2: '' }));
    assert.deepEqual([e?.['file'].path, e?.['hades'].file.argument, e?.['hades'].file.truncated, e?.['hades'].file.created], ['/var/log/auth.log', '/tmp/../var//log/auth.log', true, false]);
    assert.deepEqual(checkEvent(e).ok ? [] : checkEvent(e), []);
    const plain = build(record({ syscall: 50, flags: 0, opFlags: 0o1000, path: '/var/log/auth.log', path2: '' }))[0];
    assert.equal(plain?.['hades'].file.argument, undefined);
    const own = build(record({ syscall: 51, flags: 0, opFlags: 0o1000, path: '/opt/hades/dist/src/x.js', path2: '' }), ['/opt/hades/dist/src/']);
    assert.deepEqual(own.map((x) => [x['event'].action, x['hades'].tamper?.operation]), [['file_create', undefined], ['tamper', 'truncate']]);
  });

  it('reports a hard link to one of Hades\' files as tampering, not a symbolic one', () => {
    const hard = build(record({ syscall: 46, flags: 0x100000 | 0x2000, path: '/var/tmp/x.js', path2: '/opt/hades/dist/src/x.js' }), ['/opt/hades/dist/src/']);
    assert.deepEqual(hard.map((e) => e['event'].action), ['file_create', 'tamper']);
    assert.deepEqual(hard[1]?.['hades'].tamper, { target: 'file', path: '/opt/hades/dist/src/x.js', operation: 'link' });
    const soft = build(record({ syscall: 48, flags: 0x200000 | 0x2000, path: '/var/tmp/x.js', path2: '/opt/hades/dist/src/x.js' }), ['/opt/hades/dist/src/']);
    assert.deepEqual(soft.map((e) => e['event'].action), ['file_create']);
  });
});

/**
 * A FILE_TIMES record (kind 19) made from a recorded FILE_CHMOD one: its header and process, then
 * the call's fields and the path (driver/src/wire.h, struct hades_file_times).
 */
function fileTimesRecord(fields: { path: string; syscall?: number; given?: number; atime?: bigint; mtime?: bigint; inode?: bigint; result?: number; flags?: number; opFlags?: number }): Uint8Array {
  const chmod = rawRecordsOf('security-ebpf.bin').find((r) => kindOf(r) === SecurityKind.fileChmod) as Uint8Array;
  const path = Buffer.from(fields.path);
  // Records are padded to 8 bytes, as the driver writes them.
  const out = new Uint8Array((136 + path.length + 7) & ~7);
  out.set(chmod.subarray(0, 88));
  out.set(path, 136);
  const v = new DataView(out.buffer);
  v.setUint16(0, SecurityKind.fileTimes, true);
  v.setUint32(4, out.length, true);
  v.setUint32(24, fields.flags ?? 0, true);
  v.setUint32(28, 0, true);
  v.setInt32(88, fields.result ?? 0, true);
  v.setUint16(92, fields.syscall ?? Syscall.utimensat, true);
  v.setUint16(94, fields.given ?? 3, true);
  v.setUint32(96, fields.opFlags ?? 0, true);
  v.setBigInt64(104, fields.atime ?? 1546300800n, true);
  v.setBigInt64(112, fields.mtime ?? 1546300800n, true);
  v.setBigUint64(120, fields.inode ?? 0n, true);
  v.setUint16(128, path.length, true);
  return out;
}

describe('file_times records (FILE_TIMES, kind 19)', () => {
  const decode = (bytes: Uint8Array) => decodeRecords(bytes, newDecodeCounters()) as SecurityRecord[];
  const build = (bytes: Uint8Array) => {
    const security = new SecurityEvents(newBuilder(), { protectedPaths: [], watchedPaths: ['/usr/bin/', '/etc/'] });
    return decode(bytes).flatMap((r) => security.build(r)).map((e) => wire(e) as AnyEvent);
  };

  it('decodes the call, the times given and the path', () => {
    const [r] = decode(fileTimesRecord({ path: '/usr/bin/.helper', syscall: Syscall.utimes, given: 2, atime: 5n, mtime: 1675771200n, inode: 42n }));
    assert.ok(r && r.type === 'file_times');
    assert.deepEqual([r.syscall, r.given, r.atimeSec, r.mtimeSec, r.inode, r.path], [Syscall.utimes, 2, 5, 1675771200, 42, '/usr/bin/.helper']);
  });

  it('builds a valid file_times event: the times set as dates, backdated against the call\u2019s own time', () => {
    const [e] = build(fileTimesRecord({ path: '/usr/bin/.helper', inode: 42n }));
    assert.ok(e);
    assert.deepEqual(checkEvent(e).ok ? [] : checkEvent(e), []);
    assert.deepEqual([e['event'].action, e['event'].outcome, e['file'].path, e['file'].name, e['file'].inode, e['file'].mtime, e['file'].atime], ['file_times', 'success', '/usr/bin/.helper', '.helper', 42, '2019-01-01T00:00:00.000Z', '2019-01-01T00:00:00.000Z']);
    assert.deepEqual(e['hades'].file, { syscall: 'utimensat', mtime_seconds: 1546300800, atime_seconds: 1546300800, backdated: true });
    // Only the access time given (utimensat with UTIME_OMIT for the other): nothing said of the modification time.
    const [a] = build(fileTimesRecord({ path: '/etc/motd', given: 1 | 8 }));
    assert.deepEqual([a?.['file'].mtime, a?.['hades'].file.mtime_seconds, a?.['hades'].file.backdated, a?.['hades'].file.atime_seconds], [undefined, undefined, undefined, 1546300800]);
  });

  it('keeps times outside the years 1 to 9999 in seconds only, and a failed call with its errno', () => {
    const [far] = build(fileTimesRecord({ path: '/etc/x', mtime: 400000000000n, atime: -9223372036854775808n }));
    assert.ok(far);
    assert.deepEqual(checkEvent(far).ok ? [] : checkEvent(far), []);
    assert.deepEqual([far['file'].mtime, far['file'].atime, far['hades'].file.mtime_seconds, far['hades'].file.backdated], [undefined, undefined, 400000000000, false]);
    assert.equal(far['hades'].file.atime_seconds, undefined, 'not a safe integer: not claimed');
    const [denied] = build(fileTimesRecord({ path: '/usr/bin/ls', result: -1 }));
    assert.deepEqual([denied?.['event'].outcome, denied?.['hades'].file.errno], ['failure', 'EPERM']);
  });

  it('names the file by the lexical normal form of an odd path argument, and drops one watched in no spelling', () => {
    const [e] = build(fileTimesRecord({ path: '/usr/bin//../bin/./x' }));
    assert.deepEqual([e?.['file'].path, e?.['hades'].file.argument], ['/usr/bin/x', '/usr/bin//../bin/./x']);
    assert.deepEqual(build(fileTimesRecord({ path: '/srv/../opt/x' })), []);
  });
});

describe('damaged security records', () => {
  const raw = [...rawRecordsOf('security-ebpf.bin'), ...rawRecordsOf('file-open-ebpf.bin'), ...rawRecordsOf('rename-ebpf.bin'), fileTimesRecord({ path: '/etc/cron.d/x' })];
  const sample = new Map<number, Uint8Array>();
  for (const r of raw) if (kindOf(r) >= 4 && !sample.has(kindOf(r))) sample.set(kindOf(r), r);
  const exit = raw.find((r) => kindOf(r) === 3) as Uint8Array;
  const edit = (bytes: Uint8Array, change: (view: DataView) => void): Uint8Array => {
    const copy = new Uint8Array(bytes);
    change(new DataView(copy.buffer, copy.byteOffset, copy.byteLength));
    return copy;
  };
  /** Decodes BAD followed by a valid EXIT record: BAD must be counted and skipped, the EXIT decoded. */
  const skipped = (bad: Uint8Array) => {
    const counters = newDecodeCounters();
    const out = decodeRecords(concat(bad, exit), counters);
    return { types: out.map((r) => r.type), counters };
  };

  it('has a sample of every security kind', () => {
    assert.deepEqual([...sample.keys()].sort((a, b) => a - b), Object.values(SecurityKind));
    assert.ok(exit);
  });

  it('counts and skips a record cut at any byte, never throwing', () => {
    for (const [kind, record] of sample) {
      for (let cut = 1; cut < record.length; cut++) {
        const counters = newDecodeCounters();
        assert.deepEqual(decodeRecords(record.subarray(0, cut), counters), [], `kind ${kind} cut at ${cut}`);
        assert.equal(counters.truncated + counters.badSize, 1, `kind ${kind} cut at ${cut}`);
        assert.equal(counters.records, 0);
      }
      assert.equal(decodeRecords(record, newDecodeCounters()).length, 1, `kind ${kind} whole`);
    }
  });

  it('skips a record whose variable length runs past its end, and decodes the next one', () => {
    const lengths: [kind: number, offset: number][] = [
      [SecurityKind.connect, 116], // path_len
      [SecurityKind.dns, 106], // payload_len
      [SecurityKind.memfd, 96], // name_len
      [SecurityKind.module, 94], // path_len
      [SecurityKind.fileCreate, 120], // path_len
      [SecurityKind.fileRename, 122], // path2_len
      [SecurityKind.fileOpen, 120], // path_len
      [SecurityKind.fileTimes, 128], // path_len
    ];
    for (const [kind, offset] of lengths) {
      const record = sample.get(kind) as Uint8Array;
      for (const lie of [record.length, 0xffff]) {
        const { types, counters } = skipped(edit(record, (v) => v.setUint16(offset, lie, true)));
        assert.deepEqual(types, ['exit'], `kind ${kind} length ${lie}`);
        assert.equal(counters.badSize, 1, `kind ${kind} length ${lie}`);
      }
    }
  });

  it('skips a record whose size is below its fixed part', () => {
    for (const [kind, record] of sample) {
      const { types, counters } = skipped(edit(record.subarray(0, 88), (v) => v.setUint32(4, 88, true)));
      assert.deepEqual(types, ['exit'], `kind ${kind}`);
      assert.equal(counters.badSize, 1, `kind ${kind}`);
    }
  });

  it('skips an unknown kind and an unknown version by their size', () => {
    const unknown = skipped(edit(sample.get(SecurityKind.kill) as Uint8Array, (v) => v.setUint16(0, 99, true)));
    assert.deepEqual(unknown.types, ['exit']);
    assert.equal(unknown.counters.unknownKind, 1);
    const version = skipped(edit(sample.get(SecurityKind.dns) as Uint8Array, (v) => v.setUint16(2, 2, true)));
    assert.deepEqual(version.types, ['exit']);
    assert.equal(version.counters.badVersion, 1);
  });

  it('neither the decoder nor the event builder throws on randomly damaged records', () => {
    let seed = 4242;
    const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
    const builder = newBuilder();
    const security = new SecurityEvents(builder, { protectedPaths: ['/tmp/'] });
    for (let i = 0; i < 3000; i++) {
      const record = raw[random() % raw.length] as Uint8Array;
      const kind = kindOf(record);
      if (kind < 4) continue;
      const damaged = edit(record, (v) => {
        for (let n = 1 + (random() % 6); n > 0; n--) {
          // Keep kind, version and size so that the record reaches its decoder.
          const at = 8 + (random() % (record.length - 8));
          v.setUint8(at, random() & 0xff);
        }
      });
      const out = decodeRecords(damaged, newDecodeCounters());
      for (const r of out) if (r.type !== 'exec' && r.type !== 'fork' && r.type !== 'exit') for (const e of security.build(r)) JSON.stringify(e);
    }
  });
});

describe('events built from security-ebpf.bin', () => {
  let events: AnyEvent[] = [];
  before(async () => {
    events = await eventsOf('security-ebpf.bin');
  });
  const ofAction = (action: string) => events.filter((e) => e['event'].action === action);

  it('are all valid against the schema', () => {
    const invalid = events.map((e) => ({ e, check: checkEvent(e) })).filter((x) => !x.check.ok);
    assert.deepEqual(invalid.map((x) => ({ action: x.e['event'].action, check: x.check })), []);
    assert.ok(events.length >= 100);
  });

  it('carry the acting process known from its exec', () => {
    const listen = ofAction('listen').find((e) => e['source'].port === 47100) as AnyEvent;
    const exec = events.find((e) => e['event'].action === 'exec' && e['process'].pid === listen['process'].pid) as AnyEvent;
    assert.ok(exec);
    assert.equal(listen['process'].entity_id, exec['process'].entity_id);
    assert.equal(listen['process'].executable, exec['process'].executable);
    assert.deepEqual(listen['process'].args, exec['process'].args);
    assert.equal(listen['process'].name, 'python3');
    assert.ok((listen['hades'].ancestry as string).startsWith(`python3(${listen['process'].pid as number})`));
    assert.equal(listen['process'].parent.pid, exec['process'].parent.pid);
  });

  it('network: listen, connect, accept, refused, non-blocking, unix', () => {
    const listen = ofAction('listen').find((e) => e['source'].port === 47100) as AnyEvent;
    assert.deepEqual(listen['source'], { ip: '127.0.0.1', port: 47100 });
    assert.deepEqual(listen['network'], { transport: 'tcp', type: 'ipv4' });
    assert.equal(listen['hades'].socket.backlog, 5);
    assert.deepEqual(ofAction('listen').find((e) => e['source'].port === 47101)?.['source'], { ip: '::1', port: 47101 });
    const connect = ofAction('connect').find((e) => e['destination'].port === 47100) as AnyEvent;
    assert.equal(connect['event'].outcome, 'success');
    assert.deepEqual(connect['network'], { transport: 'tcp', type: 'ipv4', direction: 'egress' });
    const accept = ofAction('accept').find((e) => e['destination'].port === 47100) as AnyEvent;
    assert.deepEqual(accept['source'], connect['source'], 'the client is the source of the accept');
    assert.equal(accept['network'].direction, 'ingress');
    assert.equal(ofAction('connect').find((e) => e['destination'].port === 9999)?.['network'].transport, 'udp');
    const refused = ofAction('connect').filter((e) => e['destination'].port === 1).slice(0, 2);
    assert.deepEqual(refused.map((e) => [e['event'].outcome, e['hades'].socket.state, e['hades'].socket.errno]), [['unknown', 'pending', undefined], ['failure', 'failed', 'ECONNREFUSED']]);
    const nonBlocking = ofAction('connect').filter((e) => e['destination'].port === 47102);
    assert.deepEqual(nonBlocking.map((e) => [e['event'].outcome, e['hades'].socket.state]), [['unknown', 'pending'], ['success', 'established']]);
    const unix = ofAction('connect').find((e) => e['network'].type === 'unix') as AnyEvent;
    assert.deepEqual(unix['destination'], { address: '/run/hades-sec-test.sock' });
    assert.equal(unix['network'].transport, 'unix');
    assert.equal(unix['source'], undefined);
  });

  it('dns_query: the question, the answer with its address, the glibc pair', () => {
    const dns = ofAction('dns_query');
    const query = dns.find((e) => e['dns'].id === 0x4844 && e['dns'].type === 'query') as AnyEvent;
    assert.deepEqual(query['dns'].question, { name: 'hades.test', type: 'A', class: 'IN' });
    assert.deepEqual(query['destination'], { ip: '127.0.0.1', port: 53 });
    assert.deepEqual(query['network'], { transport: 'udp', type: 'ipv4', protocol: 'dns', direction: 'egress' });
    const answer = dns.find((e) => e['dns'].id === 0x4844 && e['dns'].type === 'answer') as AnyEvent;
    assert.equal(answer['dns'].response_code, 'NOERROR');
    assert.deepEqual(answer['dns'].resolved_ip, ['192.0.2.1']);
    const glibc = dns.filter((e) => e['dns'].question?.name === 'hades-fixture.example');
    assert.deepEqual(glibc.filter((e) => e['dns'].type === 'query').map((e) => e['dns'].question.type).sort(), ['A', 'AAAA']);
    assert.deepEqual(glibc.filter((e) => e['dns'].type === 'answer').map((e) => e['dns'].response_code), ['NXDOMAIN', 'NXDOMAIN']);
    assert.ok(glibc.every((e) => e['destination'].ip === '10.255.255.53' && e['destination'].port === 53));
  });

  it('privilege_change: capset, setfsuid, setresuid, and a refused setuid', () => {
    const priv = ofAction('privilege_change').map((e) => e['hades'].privilege);
    assert.deepEqual(priv.map((p) => p.call), ['capset', 'setfsuid', 'setfsuid', 'setresgid', 'setresuid', 'setuid']);
    assert.ok(priv[0].before.capabilities.includes('CAP_NET_RAW') && !priv[0].after.capabilities.includes('CAP_NET_RAW'));
    assert.equal(priv[1].after.fsuid, 1234);
    assert.deepEqual([priv[4].before.euid, priv[4].after.euid, priv[4].after.uid, priv[4].after.capabilities], [0, 65534, 65534, []]);
    assert.equal(priv[5].errno, 'EPERM');
    assert.equal(ofAction('privilege_change')[5]?.['event'].outcome, 'failure');
  });

  it('ptrace: attach, pokedata, setregs on the child, traceme on the parent', () => {
    const ptrace = ofAction('ptrace');
    assert.deepEqual(ptrace.map((e) => [e['hades'].ptrace.request, e['hades'].ptrace.request_code]), [['attach', 16], ['pokedata', 5], ['setregs', 13], ['traceme', 0]]);
    const target = ptrace[0]?.['hades'].ptrace.target;
    assert.equal(target.name, 'hades-sec-exerc');
    assert.equal(typeof target.entity_id, 'string');
    assert.ok(ptrace.slice(0, 3).every((e) => e['hades'].ptrace.target.pid === target.pid && e['hades'].ptrace.target.entity_id === target.entity_id));
    assert.equal(ptrace[3]?.['hades'].ptrace.target.pid, ptrace[0]?.['process'].pid);
  });

  it('names the process, not the calling thread, when another thread calls (a thread may call itself gdb)', async () => {
    const builder = newBuilder();
    const security = new SecurityEvents(builder, { protectedPaths: [] });
    let attach: Extract<AnyRecord, { type: 'ptrace' }> | undefined;
    for (const r of recordsOf('security-ebpf.bin').records) {
      if (r.type === 'exec' || r.type === 'fork' || r.type === 'exit') {
        const built = builder.build(r);
        if (built instanceof Promise) await built;
      } else if (r.type === 'ptrace' && attach === undefined) attach = r;
    }
    assert.ok(attach);
    const own = wire(security.build(attach)[0]!) as AnyEvent;
    const fromThread = wire(security.build({ ...attach, tid: attach.pid + 1, comm: 'gdb' })[0]!) as AnyEvent;
    assert.deepEqual(checkEvent(fromThread).ok, true);
    assert.equal(own['process'].name, 'hades-sec-exerc');
    // The tree's name of the process, or none (this fixture's process is not in the tree): never the thread's.
    assert.notEqual(fromThread['process'].name, 'gdb');
    assert.deepEqual(fromThread['process'].thread, { id: attach.pid + 1, name: 'gdb' });
  });

  it('memfd_create and the fileless exec', () => {
    const memfd = ofAction('memfd_create');
    assert.deepEqual(memfd.map((e) => [e['file'].name, e['hades'].memfd.fd, e['hades'].memfd.flag_names]), [['hades-memfd-test', 3, []], ['hades-memfd-test', 3, []]]);
    const execs = ofAction('exec').filter((e) => e['process'].executable === '/memfd:hades-memfd-test');
    assert.equal(execs.length, 2);
    assert.ok(execs.every((e) => e['hades'].process.fileless === true));
    assert.equal(execs[0]?.['process'].entity_id, memfd[0]?.['process'].entity_id);
  });

  it('module_load: finit_module and init_module refused with ENOSYS', () => {
    const modules = ofAction('module_load');
    assert.deepEqual(modules.map((e) => [e['event'].outcome, e['hades'].module]), [
      ['failure', { name: 'true', path: '/usr/bin/true', syscall: 'finit_module', errno: 'ENOSYS' }],
      ['failure', { name: 'unknown', syscall: 'init_module', errno: 'ENOSYS' }],
    ]);
  });

  it('files: create, chmod, rename, delete, mkdir, rmdir, a failed create', () => {
    const w = '/tmp/hades-sec-watched/';
    const file = (action: string, name: string) => ofAction(action).filter((e) => e['file'].path === `${w}${name}`);
    const [created, reopened] = file('file_create', 'hx-abs') as [AnyEvent, AnyEvent];
    assert.deepEqual([created['file'].mode, created['hades'].file.created, created['hades'].file.executable, created['hades'].file.syscall], ['0755', true, true, 'openat']);
    assert.deepEqual([reopened['hades'].file.created, reopened['file'].mode], [false, '04755']);
    const [fchmod, chmod] = file('file_chmod', 'hx-abs') as [AnyEvent, AnyEvent];
    assert.deepEqual(
      [fchmod['file'].mode, fchmod['hades'].file.old_mode, fchmod['hades'].file.made_executable, fchmod['hades'].file.setuid, fchmod['hades'].file.syscall],
      ['04755', '0755', false, true, 'fchmod'],
    );
    assert.deepEqual([chmod['file'].mode, chmod['hades'].file.old_mode, chmod['hades'].file.made_executable, chmod['hades'].file.setuid], ['0644', undefined, undefined, false]);
    assert.deepEqual(file('file_chmod', 'hx-dirfd').map((e) => [e['file'].mode, e['hades'].file.setuid, e['hades'].file.syscall]), [['02755', true, 'fchmodat']]);
    assert.deepEqual(file('file_rename', 'hx-renamed').map((e) => [e['hades'].file.old_path, e['hades'].file.syscall, e['file'].name, e['file'].directory]), [[`${w}hx-rel`, 'rename', 'hx-renamed', '/tmp/hades-sec-watched']]);
    assert.deepEqual(file('file_rename', 'hx-dirfd2').map((e) => e['hades'].file.old_path), [`${w}hx-dirfd`]);
    assert.deepEqual(ofAction('file_delete').map((e) => [e['file'].name, e['hades'].file.syscall, e['file'].type]), [['hx-renamed', 'unlink', undefined], ['hx-dirfd2', 'unlinkat', undefined], ['hx-abs', 'unlink', undefined], ['hx-dir', 'rmdir', 'dir']]);
    assert.deepEqual(file('file_create', 'hx-dir').map((e) => [e['file'].type, e['hades'].file.syscall]), [['dir', 'mkdir']]);
    assert.deepEqual(file('file_create', 'no-such-dir/hx').map((e) => [e['event'].outcome, e['hades'].file.errno, e['hades'].file.created]), [['failure', 'ENOENT', false]]);
    assert.deepEqual(ofAction('tamper').filter((e) => e['hades'].tamper.target === 'file'), [], 'no protected path');
  });

  it('tamper: the signals to the protected process, and changes under a protected path', async () => {
    const kills = ofAction('tamper');
    assert.deepEqual(kills.map((e) => [e['hades'].tamper.target, e['hades'].tamper.operation, e['hades'].tamper.signal]), [['process', 'kill', 0], ['process', 'tgkill', 0], ['process', 'kill', 15], ['process', 'tgkill', 15]]);
    assert.ok(kills.every((e) => e['hades'].tamper.target_pid === kills[0]?.['hades'].tamper.target_pid && e['event'].outcome === 'success'));
    const guarded = await eventsOf('security-ebpf.bin', ['/tmp/hades-sec-watched']);
    const files = guarded.filter((e) => e['event'].action === 'tamper' && e['hades'].tamper.target === 'file');
    assert.deepEqual(files.map((e) => e['hades'].tamper.operation).sort(), ['file_chmod', 'file_chmod', 'file_chmod', 'file_delete', 'file_delete', 'file_delete', 'file_delete', 'file_rename', 'file_rename']);
    assert.ok(files.every((e) => (e['hades'].tamper.path as string).startsWith('/tmp/hades-sec-watched/') && checkEvent(e).ok));
  });

  it(
    'dns_query: a query whose question parses but whose answer section is damaged carries hades.dns.malformed',
    () => {
      const dnsRecord = ofType(recordsOf('security-ebpf.bin').records, 'dns').find((r) => r.direction === 1);
      assert.ok(dnsRecord);
      // The recorded query for hades.test with one answer record whose owner name points at itself.
      const at = dnsRecord.payload.length;
      const payload = new Uint8Array([...dnsRecord.payload, 0xc0, at, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
      payload[7] = 1; // ANCOUNT
      const event = wire(new SecurityEvents(newBuilder(), { protectedPaths: [] }).build({ ...dnsRecord, payload, payloadOrigLen: payload.length })[0] as HadesEvent);
      assert.deepEqual(event['dns'].question, { name: 'hades.test', type: 'A', class: 'IN' });
      assert.equal(event['hades'].dns?.malformed, 'pointer_loop');
    },
  );
});
