/**
 * Property-based fuzzing of what the driver pipe delivers (fast-check; test/helpers/fuzz.ts):
 * the frame reader (src/common/codec/frames.ts) and the record decoder
 * (src/agent/driver/records.ts, security-records.ts). The promise: any bytes, arbitrary or a
 * mutation of recorded driver output, give whole frames or HADES_ERR_FRAME_TOO_LARGE, and
 * records decoded or counted and skipped; never another exception, and quickly.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeRecords, newDecodeCounters, RECORD_HEADER_SIZE, type DecodeCounters, type DriverRecord } from '../../src/agent/driver/records.js';
import type { SecurityRecord } from '../../src/agent/driver/security-records.js';
import { parseJson } from '../../src/agent/plugins/plugin-process.js';
import { encodeFrame, FRAME_HEADER_SIZE, FrameReader, type Frame } from '../../src/common/codec/frames.js';
import { codedOutcome, concatBytes, fuzzParams, mutatedBytes, nonUtf8Bytes } from '../helpers/fuzz.js';
import { projectRoot } from '../helpers/generated-docs.js';
import { execRecord, exitRecord, recordHeader } from '../helpers/records.js';

const FIXTURES = ['exec-basic-ebpf.bin', 'exec-basic-cnproc.bin', 'exec-v2-ebpf.bin', 'file-open-ebpf.bin', 'rename-ebpf.bin', 'security-ebpf.bin'];

/** The RECORDS payloads of the recorded driver output. */
const recordedPayloads: Uint8Array[] = FIXTURES.flatMap((file) =>
  new FrameReader()
    .push(readFileSync(`${projectRoot}test/fixtures/driver/${file}`))
    .filter((f) => f.type === 2)
    .map((f) => Uint8Array.from(f.payload)),
);

/** One record of each kind the decoder knows (1..18), at its smallest valid size, plus exec v1 with argv. */
function recordOfKind(kind: number, size: number, version = 1): Uint8Array {
  const out = new Uint8Array(size);
  recordHeader(new DataView(out.buffer), kind, size, { version });
  return out;
}
const SMALLEST: Record<number, number> = { 2: 88, 3: 64, 4: 152, 5: 152, 6: 152, 7: 144, 8: 144, 9: 104, 10: 160, 11: 224, 12: 128, 13: 128, 14: 128, 15: 128, 16: 112, 17: 128, 18: 136 };
const builtRecords: Uint8Array[] = [
  execRecord({ argv: new TextEncoder().encode('sh\0-c\0echo hi') }),
  execRecord({ version: 1, filename: '/tmp/\u00e9', argv: Uint8Array.of(0xff, 0, 0xc3) }),
  recordOfKind(1, 384, 2),
  exitRecord(42, 256),
  ...Object.entries(SMALLEST).map(([kind, size]) => recordOfKind(Number(kind), size)),
];

/** A decode that must not throw, with its counters and how many records it gave. */
function decodeChecked(payload: Uint8Array, shed?: ReadonlySet<number>): { records: (DriverRecord | SecurityRecord)[]; counters: DecodeCounters } {
  const counters = newDecodeCounters();
  const outcome = codedOutcome(() => decodeRecords(payload, counters, [], shed), 250, 'decodeRecords');
  assert.ok('value' in outcome, 'decodeRecords never throws: a bad record is counted and skipped');
  const records = outcome.value;
  assert.equal(records.length, counters.records, 'every record returned is counted');
  // Each record of the payload is decoded or counted once; at most one more count ends the frame.
  const skipped = counters.truncated + counters.badSize + counters.badVersion + counters.unknownKind + counters.shed;
  assert.ok(counters.records + skipped <= Math.floor(payload.length / RECORD_HEADER_SIZE) + 1, 'no more outcomes than records could fit');
  for (const r of records) {
    assert.equal(typeof r.type, 'string', 'a decoded record has a type');
    assert.ok(r.size >= RECORD_HEADER_SIZE && r.size % 8 === 0, 'a decoded record has a valid size');
    for (const [key, value] of Object.entries(r)) {
      if (typeof value === 'number') assert.ok(Number.isFinite(value), `${r.type}.${key} is a finite number`);
    }
    // What the pipeline does next with a record: it serialises its fields; none may throw.
    JSON.stringify(r);
  }
  return { records, counters };
}

describe('fuzz: driver RECORDS payloads', () => {
  it('decodes the recorded payloads cleanly (the seeds of the mutations)', () => {
    assert.ok(recordedPayloads.length >= 6);
    for (const payload of recordedPayloads) {
      const { counters } = decodeChecked(payload);
      assert.deepEqual({ ...counters, records: 0 }, { records: 0, truncated: 0, badSize: 0, badVersion: 0, unknownKind: 0, shed: 0 });
    }
    const { counters } = decodeChecked(concatBytes(...builtRecords));
    assert.equal(counters.records, builtRecords.length);
  });

  it('arbitrary bytes: records decoded or counted and skipped, never thrown', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), (bytes) => {
        decodeChecked(bytes);
      }),
      fuzzParams(1000),
    );
  });

  it('arbitrary records: a valid header (kind 0..20, version 0..3, any size) over arbitrary bytes', () => {
    const record = fc
      .record({ kind: fc.integer({ min: 0, max: 20 }), version: fc.integer({ min: 0, max: 3 }), words: fc.integer({ min: 4, max: 64 }), body: fc.uint8Array({ maxLength: 512 }) })
      .map(({ kind, version, words, body }) => {
        const out = new Uint8Array(words * 8);
        out.set(body.subarray(0, out.length));
        const view = new DataView(out.buffer);
        view.setUint16(0, kind, true);
        view.setUint16(2, version, true);
        view.setUint32(4, out.length, true);
        return out;
      });
    fc.assert(
      fc.property(fc.array(record, { maxLength: 8 }), fc.option(fc.constantFrom(1, 2, 4, 7), { nil: undefined }), (records, shedKind) => {
        const { counters } = decodeChecked(concatBytes(...records), shedKind === undefined ? undefined : new Set([shedKind]));
        assert.equal(counters.truncated + counters.badSize + counters.badVersion + counters.unknownKind + counters.shed + counters.records, records.length, 'each whole record has one outcome');
      }),
      fuzzParams(1000),
    );
  });

  it('mutations of recorded driver output (flips, cuts, splices, huge lengths, bytes that are not UTF-8)', () => {
    fc.assert(
      fc.property(mutatedBytes(fc.constantFrom(...recordedPayloads), 6, 2), (payload) => {
        decodeChecked(payload);
      }),
      fuzzParams(600),
    );
  });

  it('mutations of built records of every kind (length fields aligned on their u16/u32 slots)', () => {
    fc.assert(
      fc.property(mutatedBytes(fc.subarray(builtRecords, { minLength: 1 }).map((rs) => concatBytes(...rs)), 5, 2), (payload) => {
        decodeChecked(payload);
      }),
      fuzzParams(800),
    );
  });

  it('text fields with bytes that are not UTF-8 decode to strings that serialise', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(nonUtf8Bytes, fc.uint8Array({ maxLength: 8 })), { maxLength: 12 }), (parts) => {
        const raw = concatBytes(...parts);
        const { records } = decodeChecked(execRecord({ filename: '/x', argv: raw }));
        assert.equal(records.length, 1);
        const exec = records[0] as DriverRecord & { argv: string[] };
        assert.ok(Array.isArray(exec.argv));
      }),
      fuzzParams(300),
    );
  });
});

describe('fuzz: driver pipe frames', () => {
  const frame = fc.record({ type: fc.integer({ min: 0, max: 0xffff }), flags: fc.integer({ min: 0, max: 0xffff }), payload: fc.uint8Array({ maxLength: 300 }) });

  /** Splits bytes at the given cut points (fractions). */
  const chunked = (bytes: Uint8Array, cuts: number[]): Uint8Array[] => {
    const at = [...new Set(cuts.map((c) => Math.floor(c * bytes.length)))].sort((a, b) => a - b);
    const out: Uint8Array[] = [];
    let start = 0;
    for (const cut of at) {
      out.push(bytes.slice(start, cut));
      start = cut;
    }
    out.push(bytes.slice(start));
    return out;
  };

  it('gives the same frames however the stream is cut into chunks', () => {
    fc.assert(
      fc.property(fc.array(frame, { maxLength: 10 }), fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 12 }), (frames, cuts) => {
        const stream = concatBytes(...frames.map((f) => encodeFrame(f.type, f.payload, f.flags)));
        const reader = new FrameReader();
        const got: Frame[] = [];
        for (const chunk of chunked(stream, cuts)) got.push(...reader.push(chunk));
        assert.equal(reader.buffered, 0);
        assert.deepEqual(
          got.map((f) => ({ type: f.type, flags: f.flags, payload: Uint8Array.from(f.payload) })),
          frames.map((f) => ({ type: f.type, flags: f.flags, payload: f.payload })),
        );
      }),
      fuzzParams(500),
    );
  });

  it('arbitrary and mutated streams: whole frames, or HADES_ERR_FRAME_TOO_LARGE, never another exception', () => {
    const valid = fc.array(frame, { minLength: 1, maxLength: 6 }).map((fs) => concatBytes(...fs.map((f) => encodeFrame(f.type, f.payload, f.flags))));
    const stream = fc.oneof(fc.uint8Array({ maxLength: 2048 }), mutatedBytes(valid, 4, 4), mutatedBytes(fc.constantFrom(...FIXTURES.map((f) => Uint8Array.from(readFileSync(`${projectRoot}test/fixtures/driver/${f}`)).subarray(0, 4096))), 4, 4));
    fc.assert(
      fc.property(stream, fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 }), fc.integer({ min: 0, max: 4096 }), (bytes, cuts, max) => {
        const reader = new FrameReader(max);
        let total = 0;
        for (const chunk of chunked(bytes, cuts)) {
          const outcome = codedOutcome(() => reader.read(chunk), 100, 'FrameReader.read');
          assert.ok('value' in outcome, 'read() reports a broken stream, it does not throw');
          const { frames, error } = outcome.value;
          for (const f of frames) {
            assert.ok(f.payload.length <= max);
            total += FRAME_HEADER_SIZE + f.payload.length;
            // What the agent does with a control frame: JSON, or nothing; never a throw.
            parseJson(f.payload);
          }
          if (error) {
            assert.equal(error.code, 'HADES_ERR_FRAME_TOO_LARGE');
            break;
          }
          const pushed = codedOutcome(() => new FrameReader(max).push(chunk), 100, 'FrameReader.push');
          if ('error' in pushed) assert.equal(pushed.error.code, 'HADES_ERR_FRAME_TOO_LARGE');
        }
        assert.ok(total <= bytes.length);
      }),
      fuzzParams(800),
    );
  });

  it('JSON control frames (HELLO, STATS, ACK, LOG): parseJson gives a value or undefined for any bytes, deep nesting too', () => {
    const json = fc.oneof(
      fc.uint8Array({ maxLength: 200 }),
      fc.json().map((t) => new TextEncoder().encode(t)),
      fc.integer({ min: 1, max: 200_000 }).map((depth) => new TextEncoder().encode('['.repeat(depth) + ']'.repeat(depth))),
      mutatedBytes(fc.constantFrom('{"protocol":1,"driver":"hades","hooks":[]}', '{"request_id":3,"ok":true}').map((t) => new TextEncoder().encode(t))),
    );
    fc.assert(
      fc.property(json, (bytes) => {
        codedOutcome(() => parseJson(bytes), 500, 'parseJson');
      }),
      fuzzParams(300),
    );
  });
});
