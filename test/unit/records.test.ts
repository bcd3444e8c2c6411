import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { FrameReader, encodeFrame } from '../../src/common/codec/frames.js';
import { HadesError } from '../../src/common/errors.js';
import { decodeRecords, newDecodeCounters, RecordFlag, type DriverRecord, type ExecRecord } from '../../src/agent/driver/records.js';
import { decodeText, splitArgv } from '../../src/agent/driver/bytes.js';
import { projectRoot } from '../helpers/generated-docs.js';
import { concat, execRecord, exitRecord } from '../helpers/records.js';

function framesOf(file: string) {
  const reader = new FrameReader();
  return reader.push(readFileSync(`${projectRoot}test/fixtures/driver/${file}`));
}

function recordsOf(file: string): { records: DriverRecord[]; counters: ReturnType<typeof newDecodeCounters> } {
  const counters = newDecodeCounters();
  const records: DriverRecord[] = [];
  for (const f of framesOf(file)) if (f.type === 2) decodeRecords(f.payload, counters, records);
  return { records, counters };
}

const execs = (records: DriverRecord[]) => records.filter((r): r is ExecRecord => r.type === 'exec');

describe('driver record decoder, on recorded driver output', () => {
  for (const [file, backend] of [['exec-basic-ebpf.bin', 'ebpf'], ['exec-basic-cnproc.bin', 'cnproc']] as const) {
    it(`decodes every record of ${file} without skipping any`, () => {
      const frames = framesOf(file);
      const hello = JSON.parse(new TextDecoder().decode(frames[0]?.payload)) as { backend: string; protocol: number };
      assert.equal(frames[0]?.type, 1);
      assert.equal(hello.backend, backend);
      assert.equal(hello.protocol, 1);
      const { records, counters } = recordsOf(file);
      assert.deepEqual({ ...counters, records: 0 }, { records: 0, truncated: 0, badSize: 0, badVersion: 0, unknownKind: 0, shed: 0 });
      assert.ok(records.length > 20);
      if (backend === 'cnproc') assert.ok(records.every((r) => (r.flags & RecordFlag.cnproc) !== 0));
    });
  }

  it('finds the recorded commands with their arguments, cwd and sockets (eBPF)', () => {
    const { records } = recordsOf('exec-basic-ebpf.bin');
    const echo = execs(records).find((r) => r.argv[1] === 'hello world');
    assert.ok(echo);
    assert.deepEqual(echo.argv, ['/bin/echo', 'hello world', '\udcff\udcfe', 'x']);
    assert.equal(echo.exePath, '/usr/bin/echo');
    assert.match(echo.cwd, /^\/tmp\/hades-fixture\/d00\/d01\/.*\/d39$/);
    const truncated = execs(records).find((r) => r.argv[0] === '/bin/true' && r.argvBytes === 5011);
    assert.ok(truncated && (truncated.flags & RecordFlag.argvTruncated) !== 0);
    const v4 = execs(records).find((r) => r.fds[1].kind === 'socket' && r.fds[1].remotePort === 47011);
    assert.deepEqual([...(v4?.fds[1].remoteAddr.subarray(0, 4) ?? [])], [127, 0, 0, 1]);
    const v6 = execs(records).find((r) => r.fds[1].kind === 'socket' && r.fds[1].remotePort === 47012);
    assert.equal(v6?.fds[1].family, 10);
    assert.ok(!execs(records).some((r) => r.exePath === '/usr/bin/yes'), 'the denied executable never appears');
    const exits = records.filter((r) => r.type === 'exit').map((r) => r.exitCode);
    assert.ok(exits.includes(0x300) && exits.includes(9));
  });
});

describe('driver record decoder, on damaged input', () => {
  it('round-trips a built record', () => {
    const [r] = decodeRecords(execRecord({ pid: 42, cwd: '/srv', argv: new TextEncoder().encode('a\0b c\0') }), newDecodeCounters()) as ExecRecord[];
    assert.equal(r?.pid, 42);
    assert.equal(r?.cwd, '/srv');
    assert.deepEqual(r?.argv, ['a', 'b c']);
  });

  it('counts and skips a record cut at any byte, never throwing', () => {
    const first = execRecord();
    const whole = concat(first, exitRecord(7, 0x100));
    for (let cut = 0; cut < whole.length; cut++) {
      const counters = newDecodeCounters();
      const out = decodeRecords(whole.subarray(0, cut), counters);
      const atBoundary = cut === 0 || cut === first.length;
      assert.equal(out.length, cut < first.length ? 0 : 1, `cut at ${cut}`);
      assert.equal(counters.truncated + counters.badSize, atBoundary ? 0 : 1, `cut at ${cut}`);
    }
  });

  it('skips an unknown kind and a bad version, and decodes what follows', () => {
    const unknown = execRecord();
    new DataView(unknown.buffer).setUint16(0, 999, true);
    const badVersion = execRecord({ version: 9 });
    const counters = newDecodeCounters();
    const out = decodeRecords(concat(unknown, badVersion, exitRecord(5, 0)), counters);
    assert.deepEqual(out.map((r) => r.type), ['exit']);
    assert.equal(counters.unknownKind, 1);
    assert.equal(counters.badVersion, 1);
  });

  it('rejects impossible sizes and tails longer than the record', () => {
    for (const size of [0, 7, 12, 0xfffffff8]) {
      const bad = execRecord();
      new DataView(bad.buffer).setUint32(4, size, true);
      const counters = newDecodeCounters();
      assert.deepEqual(decodeRecords(bad, counters), []);
      assert.equal(counters.badSize + counters.truncated, 1, `size ${size}`);
    }
    const lying = execRecord();
    new DataView(lying.buffer).setUint32(324, 60000, true); // argv_len beyond the record
    const counters = newDecodeCounters();
    assert.deepEqual(decodeRecords(concat(lying, exitRecord(1, 0)), counters).map((r) => r.type), ['exit']);
    assert.equal(counters.badSize, 1);
  });

  it('survives random bytes', () => {
    let seed = 12345;
    const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
    for (let i = 0; i < 2000; i++) {
      const bytes = new Uint8Array(random() % 700);
      for (let j = 0; j < bytes.length; j++) bytes[j] = random() & 0xff;
      if (i % 2 === 0 && bytes.length >= 8) new DataView(bytes.buffer).setUint32(4, 64, true);
      decodeRecords(bytes, newDecodeCounters());
    }
  });
});

describe('text and argv decoding', () => {
  it('escapes bytes that are not UTF-8 and keeps valid multibyte text', () => {
    assert.equal(decodeText(new Uint8Array([0x61, 0xff, 0xfe, 0x62])), 'a\udcff\udcfeb');
    assert.equal(decodeText(new TextEncoder().encode('grüße 日本')), 'grüße 日本');
    assert.equal(decodeText(new Uint8Array([0xe6, 0x97])), '\udce6\udc97');
    // Unambiguous: a process that passed the text of an escape is not one that passed the byte.
    assert.notEqual(decodeText(new Uint8Array([0xff, 0x41])), decodeText(new TextEncoder().encode('\\xffA')));
    assert.equal(decodeText(new TextEncoder().encode('\\xffA')), '\\xffA');
    // UTF-8 encodings of surrogates are not valid UTF-8: their bytes are raw bytes too.
    assert.equal(decodeText(new Uint8Array([0xed, 0xb3, 0xbf])), '\udced\udcb3\udcbf');
    // JSON writes them as escapes, and they come back the same.
    assert.equal(JSON.stringify(decodeText(new Uint8Array([0xff]))), '"\\udcff"');
  });

  it('keeps every character around a raw byte: a byte order mark, characters of 2 to 4 bytes, overlong and out-of-range forms as raw bytes', () => {
    const text = (...parts: (string | number[])[]) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));
    // A byte order mark after a raw byte is a character like any other (it once vanished, so the bytes did not encode back).
    assert.equal(decodeText(text([0xff], '\ufeffa')), '\udcff\ufeffa');
    assert.equal(decodeText(text([0xff], '\u00e9\u65e5\u{1f600}', [0xfe])), '\udcff\u00e9\u65e5\u{1f600}\udcfe');
    // Overlong (c0 af, e0 80 af, f0 80 80 af), past U+10FFFF (f4 90 80 80), cut short (f0 9f 98): each byte raw.
    assert.equal(decodeText(new Uint8Array([0xc0, 0xaf, 0xe0, 0x80, 0xaf])), '\udcc0\udcaf\udce0\udc80\udcaf');
    assert.equal(decodeText(new Uint8Array([0xf0, 0x80, 0x80, 0xaf, 0xf4, 0x90, 0x80, 0x80])), '\udcf0\udc80\udc80\udcaf\udcf4\udc90\udc80\udc80');
    assert.equal(decodeText(text('a', [0xf0, 0x9f, 0x98])), 'a\udcf0\udc9f\udc98');
    // Long text with stray bytes (a file of megabytes): every character and byte in place.
    const line = text('caf\u00e9 \u{1f600} ', [0xff], ' x\n');
    const many = Buffer.concat(Array.from({ length: 20_000 }, () => line));
    assert.equal(decodeText(many), 'caf\u00e9 \u{1f600} \udcff x\n'.repeat(20_000));
  });

  it('splits the argument area, keeping empty and unterminated arguments', () => {
    assert.deepEqual(splitArgv(new TextEncoder().encode('a\0\0b\0')), ['a', '', 'b']);
    assert.deepEqual(splitArgv(new TextEncoder().encode('a\0bc')), ['a', 'bc']);
    assert.deepEqual(splitArgv(new Uint8Array(0)), []);
  });
});

describe('frame reader', () => {
  it('reassembles frames split at every byte', () => {
    const stream = concat(encodeFrame(1, new TextEncoder().encode('{"a":1}')), encodeFrame(2, new Uint8Array([1, 2, 3])), encodeFrame(3, new Uint8Array(0)));
    for (let cut = 0; cut <= stream.length; cut++) {
      const reader = new FrameReader();
      const frames = [...reader.push(stream.subarray(0, cut)), ...reader.push(stream.subarray(cut))];
      assert.deepEqual(frames.map((f) => [f.type, f.payload.length]), [[1, 7], [2, 3], [3, 0]]);
      assert.equal(reader.buffered, 0);
    }
  });

  it('refuses a header announcing more than the limit with a coded error', () => {
    const header = new Uint8Array(8);
    new DataView(header.buffer).setUint32(0, 2 << 20, true);
    assert.throws(() => new FrameReader().push(header), (e: unknown) => e instanceof HadesError && e.code === 'HADES_ERR_FRAME_TOO_LARGE');
    assert.throws(() => encodeFrame(1, new Uint8Array((1 << 20) + 1)), (e: unknown) => e instanceof HadesError && e.code === 'HADES_ERR_FRAME_TOO_LARGE');
  });

  it('hands over the whole frames that came before a broken header in the same chunk (read)', () => {
    const ack = encodeFrame(5, new TextEncoder().encode('{"request_id":1,"ok":true}'));
    const header = new Uint8Array(8);
    new DataView(header.buffer).setUint32(0, 2 << 20, true);
    const chunk = new Uint8Array(ack.length + header.length);
    chunk.set(ack, 0);
    chunk.set(header, ack.length);
    const { frames, error } = new FrameReader().read(chunk);
    assert.deepEqual(frames.map((f) => f.type), [5]);
    assert.equal(error?.code, 'HADES_ERR_FRAME_TOO_LARGE');
  });
});
