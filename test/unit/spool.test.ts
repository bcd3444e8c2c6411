import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { Spool, type SpoolOptions, type SpoolRecord } from '../../src/agent/spool.js';
import { HadesError } from '../../src/common/errors.js';
import { projectRoot } from '../helpers/generated-docs.js';

const root = mkdtempSync(path.join(tmpdir(), 'hades-spool-'));
after(() => rmSync(root, { recursive: true, force: true }));
let folders = 0;
const folder = (): string => path.join(root, `s${++folders}`);

const HEADER = 24;
const MAGIC = 8;
const rec = (text: string): Buffer => Buffer.from(text);
const texts = (records: readonly SpoolRecord[]): string[] => records.map((r) => Buffer.from(r.data).toString());
const seqs = (records: readonly SpoolRecord[]): number[] => records.map((r) => r.seq);
const segmentFiles = (dir: string): string[] =>
  readdirSync(dir)
    .filter((f) => f.endsWith('.seg'))
    .sort()
    .map((f) => path.join(dir, f));
const open = (dir: string, more: Partial<SpoolOptions> = {}): Spool => Spool.open({ dir, maxBytes: 1 << 20, segmentBytes: 4096, fsync: 'never', ...more });
/** Appends `count` records `r<n>` one batch at a time. */
const fill = (spool: Spool, from: number, count: number, pad = 0): void => {
  for (let n = from; n < from + count; n++) assert.equal(spool.append([rec(`r${n}`.padEnd(pad, '.'))]), spool.lastSeq);
};
/** Everything left to read, in reads of `batch`. */
const drain = (spool: Spool, batch = 1000): SpoolRecord[] => {
  const out: SpoolRecord[] = [];
  for (;;) {
    const got = spool.read(batch, 1 << 30);
    if (got.length === 0) return out;
    out.push(...got);
  }
};
/** Flips bits (`mask`) of the byte at `offset` of a file: damage the checksums must catch. */
const flipBits = (file: string, offset: number, mask: number): void => {
  const bytes = readFileSync(file);
  bytes[offset]! ^= mask;
  writeFileSync(file, bytes);
};
const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);
/** The content of record n written by test/fixtures/spool-writer.mjs. */
const spoolPayload = (n: number): string => `{"n":${n},"pad":"${String.fromCharCode(97 + (n % 26)).repeat(40 + ((n * 7919) % 3000))}"}`;
const isCode = (code: string) => (e: unknown) => e instanceof HadesError && e.code === code;

describe('spool: append, read, commit', () => {
  it('returns records in order, within the read limits, and commits advance and delete segments', () => {
    const dir = folder();
    const spool = open(dir);
    assert.equal(spool.append([rec('a'), rec('bb'), rec('ccc')]), 3);
    assert.equal(spool.append([rec('dddd')]), 4);
    assert.equal(spool.append([]), 4);
    assert.deepEqual(texts(spool.read(2, 1 << 20)), ['a', 'bb']);
    assert.deepEqual(texts(spool.read(10, 3)), ['ccc'], 'maxBytes stops before the next record');
    assert.deepEqual(texts(spool.read(10, 1)), ['dddd'], 'a record larger than maxBytes comes alone');
    assert.deepEqual(spool.read(10, 1 << 20), []);
    assert.equal(spool.pending, 4);
    spool.commit(2);
    assert.equal(spool.pending, 2);
    assert.equal(spool.committedSeq, 2);
    spool.commit(1);
    assert.equal(spool.committedSeq, 2, 'a commit never goes back');
    spool.commit(99);
    assert.equal(spool.committedSeq, 4, 'a commit stops at the last record');
    // Many records over many small segments: fully committed segments are deleted.
    fill(spool, 5, 200, 100);
    const before = segmentFiles(dir).length;
    assert.ok(before > 5);
    const all = drain(spool, 7);
    assert.deepEqual(seqs(all), range(5, 204));
    assert.equal(texts(all)[0], 'r5'.padEnd(100, '.'));
    spool.commit(150);
    assert.ok(segmentFiles(dir).length < before / 2, 'committed segments deleted');
    const stats = spool.stats();
    assert.equal(stats.records, 54);
    assert.equal(stats.events, 54);
    assert.equal(stats.appended, 204);
    assert.equal(stats.segments, segmentFiles(dir).length);
    assert.equal(stats.bytes, segmentFiles(dir).reduce((a, f) => a + statSync(f).size, 0));
    spool.close();
  });

  it('counts its bytes right when it opens on committed segments a crash left behind', () => {
    const dir = folder();
    const spool = open(dir);
    fill(spool, 1, 200, 100);
    drain(spool, 200);
    const kept = segmentFiles(dir).map((f) => [f, readFileSync(f)] as const);
    spool.commit(150);
    spool.close();
    // The cursor says 150, but the segments it covers are still there (killed before deleting).
    for (const [f, data] of kept) if (!existsSync(f)) writeFileSync(f, data);
    const again = open(dir);
    const stats = again.stats();
    assert.equal(stats.bytes, segmentFiles(dir).reduce((a, f) => a + statSync(f).size, 0));
    assert.ok(stats.bytes > 0);
    again.close();
  });

  it('rewinds to the first uncommitted record after a failed send, also from disk', () => {
    const spool = open(folder(), { memoryCacheBytes: 0 });
    fill(spool, 1, 100, 200);
    assert.deepEqual(seqs(spool.read(10, 1 << 20)), range(1, 10));
    spool.rewind();
    assert.deepEqual(seqs(spool.read(10, 1 << 20)), range(1, 10), 'the same records again');
    spool.commit(4);
    assert.deepEqual(seqs(spool.read(30, 1 << 20)), range(11, 40));
    spool.rewind();
    const again = spool.read(100, 1 << 20);
    assert.deepEqual(seqs(again), range(5, 100));
    assert.deepEqual(texts(again).slice(0, 2), ['r5'.padEnd(200, '.'), 'r6'.padEnd(200, '.')]);
    assert.ok(spool.stats().diskReads > 0);
    spool.close();
  });

  it('serves a reader that keeps up from memory, and one that falls behind from disk', () => {
    const spool = open(folder(), { memoryCacheBytes: 8 * 1024 });
    for (let n = 1; n <= 50; n++) {
      spool.append([rec(`m${n}`)]);
      assert.deepEqual(texts(spool.read(10, 1 << 20)), [`m${n}`]);
      spool.commit(n);
    }
    assert.equal(spool.stats().diskReads, 0);
    fill(spool, 51, 200, 300);
    assert.ok(spool.stats().cacheBytes <= 8 * 1024);
    assert.deepEqual(seqs(drain(spool, 16)), range(51, 250));
    assert.ok(spool.stats().diskReads > 0);
    spool.close();
  });

  it('keeps the data of returned records intact while later batches are appended', () => {
    const spool = open(folder(), { memoryCacheBytes: 1024 });
    fill(spool, 1, 5, 100);
    const first = spool.read(5, 1 << 20);
    fill(spool, 6, 100, 100);
    drain(spool);
    assert.deepEqual(texts(first), range(1, 5).map((n) => `r${n}`.padEnd(100, '.')));
    spool.close();
  });

  it('reports durability per fsync policy', async () => {
    const always = open(folder(), { fsync: 'always' });
    const seen: number[] = [];
    always.onDurable = (seq) => seen.push(seq);
    always.append([rec('a'), rec('b')]);
    assert.equal(always.durableSeq, 0, 'not durable before its fsync ended');
    always.append([rec('c')]);
    assert.equal(await always.sync(), 3);
    assert.equal(always.durableSeq, 3);
    assert.equal(seen.at(-1), 3);
    assert.deepEqual(
      seen,
      [...seen].sort((a, b) => a - b),
      'in order',
    );
    always.close();

    const interval = open(folder(), { fsync: 'interval', fsyncIntervalMs: 20 });
    const durable = new Promise<number>((resolve) => (interval.onDurable = resolve));
    interval.append([rec('a')]);
    assert.equal(interval.durableSeq, 0);
    // The spool's timer does not keep the process alive; this test's own timer does.
    const alive = setTimeout(() => undefined, 5000);
    assert.equal(await durable, 1, 'the interval timer syncs');
    clearTimeout(alive);
    interval.close();

    const never = open(folder(), { fsync: 'never' });
    never.append([rec('a')]);
    assert.equal(never.durableSeq, 1, 'in the page cache is durable enough');
    assert.equal(await never.sync(), 1);
    never.close();
  });

  it('counts events with eventsOf, across commits, drops and restarts', () => {
    const dir = folder();
    // Each record: one byte giving its number of events.
    const options = { maxBytes: 64 * 1024, segmentBytes: 4096, eventsOf: (d: Uint8Array) => d[0] ?? 0 };
    let spool = open(dir, options);
    const batch = (events: number) => Buffer.alloc(500, events);
    for (let i = 0; i < 10; i++) spool.append([batch(3), batch(2)]);
    assert.equal(spool.stats().events, 50);
    spool.read(3, 1 << 20);
    spool.commit(3);
    assert.equal(spool.stats().events, 50 - 8);
    spool.close();
    spool = open(dir, options);
    assert.equal(spool.stats().events, 42, 'restored from the cursor and the tail');
    assert.equal(spool.stats().records, 17);
    spool.commit(6);
    assert.equal(spool.stats().events, 42 - 7, 'a commit of records not read');
    // Overflow: everything old is dropped; dropped events are exact.
    for (let i = 0; i < 200; i++) spool.append([batch(1)]);
    const s = spool.stats();
    assert.ok(s.droppedRecords > 0);
    assert.equal(s.records + s.droppedRecords, 14 + 200);
    assert.equal(s.events + s.droppedEvents, 35 + 200);
    spool.close();
  });

  it('refuses appends after close, and close is idempotent', () => {
    const spool = open(folder(), { fsync: 'always' });
    spool.append([rec('a')]);
    spool.close();
    spool.close();
    assert.equal(spool.append([rec('b'), rec('c')]), -1);
    assert.equal(spool.stats().refusedRecords, 2);
    assert.deepEqual(spool.read(10, 100), []);
    spool.commit(1);
  });
});

describe('spool: restarts', () => {
  it('continues the sequence and replays uncommitted records in order', () => {
    const dir = folder();
    let spool = open(dir);
    fill(spool, 1, 60, 150);
    assert.deepEqual(seqs(spool.read(25, 1 << 20)), range(1, 25));
    spool.commit(20);
    spool.close();
    spool = open(dir);
    assert.equal(spool.committedSeq, 20);
    assert.equal(spool.lastSeq, 60);
    assert.equal(spool.pending, 40);
    const replay = drain(spool, 9);
    assert.deepEqual(seqs(replay), range(21, 60));
    assert.equal(texts(replay)[0], 'r21'.padEnd(150, '.'));
    assert.equal(spool.append([rec('new')]), 61);
    spool.commit(61);
    spool.close();
    spool = open(dir);
    assert.equal(spool.pending, 0);
    assert.equal(spool.append([rec('next')]), 62, 'sequence continues even with nothing left');
    spool.close();
  });

  it('drops the oldest segments at the size limit and counts them exactly', () => {
    const dir = folder();
    const maxBytes = 32 * 1024;
    const spool = open(dir, { maxBytes, segmentBytes: 4096 });
    const record = 300;
    for (let n = 1; n <= 500; n++) spool.append([rec(`r${n}`.padEnd(record, '.'))]);
    const onDisk = segmentFiles(dir).reduce((a, f) => a + statSync(f).size, 0);
    const s = spool.stats();
    assert.ok(onDisk <= maxBytes, `${onDisk} bytes on disk`);
    assert.equal(s.bytes, onDisk);
    const left = drain(spool);
    assert.equal(left.length + s.droppedRecords, 500, 'every record is either kept or counted');
    assert.deepEqual(seqs(left), range(s.droppedRecords + 1, 500), 'the oldest went');
    assert.equal(texts(left).at(-1), 'r500'.padEnd(record, '.'));
    const firstKept = Number(path.basename(segmentFiles(dir)[0]!, '.seg'));
    assert.equal(firstKept, s.droppedRecords + 1, 'whole segments are dropped');
    // A batch larger than the whole spool is dropped and counted, and nothing else is lost.
    assert.equal(spool.append([Buffer.alloc(maxBytes)]), -1);
    assert.equal(spool.stats().droppedRecords, s.droppedRecords + 1);
    assert.equal(spool.stats().bytes, onDisk);
    spool.rewind();
    assert.equal(drain(spool).length, left.length);
    spool.close();
  });

  it('cuts a torn tail off, counts it, and appends after it', () => {
    const dir = folder();
    let spool = open(dir);
    fill(spool, 1, 30, 100);
    spool.close();
    const last = segmentFiles(dir).at(-1)!;
    const size = statSync(last).size;
    truncateSync(last, size - 10);
    const told: HadesError[] = [];
    spool = open(dir, { onCorrupt: (e) => told.push(e) });
    let s = spool.stats();
    assert.equal(s.corruptRecords, 1);
    assert.deepEqual(told.map((e) => e.code), ['HADES_ERR_SPOOL_CORRUPT'], 'reported with its code');
    assert.match(told[0]!.message, /torn or damaged record at byte \d+ .* cut off/);
    assert.equal(s.corruptBytes, HEADER + 100 - 10);
    assert.equal(spool.lastSeq, 29);
    assert.equal(statSync(last).size, size - HEADER - 100, 'the torn record is cut off');
    assert.equal(spool.append([rec('after')]), 30);
    spool.close();
    spool = open(dir);
    s = spool.stats();
    assert.equal(s.corruptRecords, 0, 'nothing left to find');
    const all = drain(spool);
    assert.deepEqual(seqs(all), range(1, 30));
    assert.equal(texts(all).at(-1), 'after');
    spool.close();
  });

  it('deletes a newest segment whose first write was torn, and its predecessor stays whole', () => {
    const dir = folder();
    let spool = open(dir);
    fill(spool, 1, 40, 200);
    spool.close();
    const files = segmentFiles(dir);
    const last = files.at(-1)!;
    const firstSeq = Number(path.basename(last, '.seg'));
    truncateSync(last, 5);
    spool = open(dir);
    assert.deepEqual(segmentFiles(dir), files.slice(0, -1));
    assert.equal(spool.lastSeq, firstSeq - 1);
    assert.deepEqual(seqs(drain(spool)), range(1, firstSeq - 1));
    assert.equal(spool.append([rec('x')]), firstSeq);
    spool.close();
  });

  it('survives a corrupt cursor file by replaying from the oldest record', () => {
    const dir = folder();
    let spool = open(dir);
    fill(spool, 1, 50, 100);
    spool.read(50, 1 << 20);
    spool.commit(10);
    spool.commit(30);
    spool.close();
    const cursor = path.join(dir, 'cursor');
    // A torn slot: the other slot's older value is used.
    const bytes = readFileSync(cursor);
    const newer = bytes.readUInt32LE(8) === 30 ? 0 : 512;
    bytes[newer + 9]! ^= 0xff;
    writeFileSync(cursor, bytes);
    spool = open(dir);
    assert.equal(spool.committedSeq, 10);
    assert.equal(spool.stats().cursorResets, 0);
    spool.close();
    // Both slots gone: everything left on disk is replayed (duplicates, never loss).
    writeFileSync(cursor, 'garbage');
    spool = open(dir);
    assert.equal(spool.stats().cursorResets, 1);
    const oldest = Number(path.basename(segmentFiles(dir)[0]!, '.seg'));
    assert.equal(spool.committedSeq, oldest - 1);
    assert.deepEqual(seqs(drain(spool)), range(oldest, 50));
    spool.close();
    spool = open(dir);
    assert.equal(spool.stats().cursorResets, 0, 'the cursor was rewritten');
    spool.close();
  });
});

/** Record n (`r<n>` padded to 100 bytes) holds n % 3 + 1 events, so that lost events are exact. */
const eventsOfR = (d: Uint8Array): number => (Number(/^r(\d+)/.exec(Buffer.from(d).toString())?.[1]) % 3) + 1;
const eventsIn = (seqList: readonly number[]): number => seqList.reduce((sum, n) => sum + (n % 3) + 1, 0);
const without = (all: readonly number[], lost: readonly number[]): number[] => all.filter((n) => !lost.includes(n));
/** Record k of a segment (0 first) of records padded to `pad` bytes starts at this byte. */
const at = (k: number, pad = 100): number => MAGIC + k * (HEADER + pad);
/** What to do to a record that starts at `offset` of `file` (records of 100 bytes). */
const damages: Record<string, (file: string, offset: number) => void> = {
  payload: (file, offset) => flipBits(file, offset + HEADER + 40, 0x20),
  crc: (file, offset) => flipBits(file, offset + 1, 0x80),
  length: (file, offset) => flipBits(file, offset + 4, 0x01),
  'length, to 4 GiB': (file, offset) => {
    const bytes = readFileSync(file);
    bytes.writeUInt32LE(0xffff_fff0, offset + 4);
    writeFileSync(file, bytes);
  },
  'length, to just under 16 MiB': (file, offset) => {
    const bytes = readFileSync(file);
    bytes.writeUInt32LE(16 * 1024 * 1024 - 1, offset + 4);
    writeFileSync(file, bytes);
  },
  seq: (file, offset) => flipBits(file, offset + 8, 0x04),
  'events before': (file, offset) => flipBits(file, offset + 16, 0x02),
};
/** Writes `count` zero bytes at `offset` of `file`: the hole a power loss can leave. */
const zeros = (file: string, offset: number, count: number): void => {
  const bytes = readFileSync(file);
  bytes.fill(0, offset, offset + count);
  writeFileSync(file, bytes);
};

describe('spool: damage is stepped over, and only the damaged records are lost', () => {
  /** 30 records of 124 bytes, 8 per segment: segments 1, 9, 17 and 25. */
  const fourSegments = (): { dir: string; files: string[] } => {
    const dir = folder();
    const spool = open(dir, { segmentBytes: 1000, eventsOf: eventsOfR });
    fill(spool, 1, 30, 100);
    spool.close();
    const files = segmentFiles(dir);
    assert.deepEqual(files.map((f) => path.basename(f)), ['0000000000000001.seg', '0000000000000009.seg', '0000000000000017.seg', '0000000000000025.seg']);
    return { dir, files };
  };
  const reopen = (dir: string, told: HadesError[] = []): Spool => open(dir, { segmentBytes: 1000, eventsOf: eventsOfR, onCorrupt: (e) => told.push(e) });

  for (const [name, damage] of Object.entries(damages)) {
    it(`in an older segment, a damaged ${name} loses that record only, counted once`, () => {
      const { dir, files } = fourSegments();
      damage(files[1]!, at(3)); // record 12
      const told: HadesError[] = [];
      const spool = reopen(dir, told);
      assert.equal(spool.stats().corruptRecords, 0, 'older segments are checked when read');
      const all = drain(spool, 5);
      assert.deepEqual(seqs(all), without(range(1, 30), [12]));
      assert.deepEqual(texts(all).slice(10, 12), ['r11'.padEnd(100, '.'), 'r13'.padEnd(100, '.')]);
      let s = spool.stats();
      assert.deepEqual([s.corruptRecords, s.corruptEvents, s.corruptBytes], [1, eventsIn([12]), HEADER + 100]);
      assert.deepEqual(told.map((e) => e.code), ['HADES_ERR_SPOOL_CORRUPT']);
      assert.match(told[0]!.message, /0000000000000009\.seg: damage at byte 380: record 12 is lost \(124 bytes\), skipped; reading goes on at the next good record/);
      // A rewind reads the same records, and the damage is not counted again.
      spool.rewind();
      assert.deepEqual(seqs(drain(spool, 3)), without(range(1, 30), [12]));
      s = spool.stats();
      assert.deepEqual([s.corruptRecords, s.corruptEvents, told.length], [1, eventsIn([12]), 1]);
      // The acknowledged cursor moves over the damage like over any record.
      spool.commit(14);
      spool.close();
      const again = reopen(dir);
      assert.deepEqual(seqs(drain(again)), range(15, 30));
      assert.equal(again.stats().corruptRecords, 0);
      again.close();
    });

    it(`in the newest segment at open, a damaged ${name} in the middle loses that record only; appends go on after the last good one`, () => {
      const dir = folder();
      let spool = open(dir, { segmentBytes: 1 << 20, eventsOf: eventsOfR });
      fill(spool, 1, 200, 100);
      spool.close();
      const file = segmentFiles(dir)[0]!;
      const size = statSync(file).size;
      damage(file, at(49)); // record 50
      const told: HadesError[] = [];
      spool = open(dir, { segmentBytes: 1 << 20, eventsOf: eventsOfR, onCorrupt: (e) => told.push(e) });
      let s = spool.stats();
      assert.deepEqual([s.corruptRecords, s.corruptEvents, s.corruptBytes], [1, eventsIn([50]), HEADER + 100], 'counted at open');
      assert.match(told.map((e) => e.message).join('\n'), /damage at byte 6084: record 50 is lost \(124 bytes\), skipped when the spool was opened; the good records after it are kept/);
      assert.equal(statSync(file).size, size, 'nothing cut off');
      assert.equal(spool.lastSeq, 200);
      assert.deepEqual(seqs(drain(spool, 30)), without(range(1, 200), [50]));
      assert.equal(spool.stats().corruptRecords, 1, 'read over without counting it again');
      assert.equal(spool.stats().events, eventsIn(range(1, 200)), 'held until acknowledged, like the rest');
      assert.equal(spool.append([rec('r201'.padEnd(100, '.'))]), 201);
      spool.close();
      // A later open finds everything in order: the damaged segment is now an older one.
      spool = open(dir, { segmentBytes: 1 << 20, eventsOf: eventsOfR });
      assert.equal(spool.stats().corruptRecords, 0);
      const all = drain(spool, 64);
      assert.deepEqual(seqs(all), without(range(1, 201), [50]));
      assert.equal(texts(all).at(-1), 'r201'.padEnd(100, '.'));
      s = spool.stats();
      assert.deepEqual([s.corruptRecords, s.corruptEvents], [1, eventsIn([50])], 'this run counts the damage it read over');
      spool.commit(201);
      assert.equal(spool.stats().events, 0);
      spool.close();
    });
  }

  it('a run of zeros (a power-loss hole) across records of an older segment loses the records it touches', () => {
    const { dir, files } = fourSegments();
    zeros(files[2]!, at(1) + 50, 3 * (HEADER + 100)); // from inside record 18 to inside record 21
    const spool = reopen(dir);
    assert.deepEqual(seqs(drain(spool, 4)), without(range(1, 30), [18, 19, 20, 21]));
    const s = spool.stats();
    assert.deepEqual([s.corruptRecords, s.corruptEvents, s.corruptBytes], [4, eventsIn([18, 19, 20, 21]), 4 * (HEADER + 100)]);
    spool.close();
  });

  it('damage in the first and the last record of an older segment (and its magic) loses those records only', () => {
    const { dir, files } = fourSegments();
    flipBits(files[1]!, 2, 0xff); // the magic: no record lost for it
    damages.payload!(files[1]!, at(0)); // record 9
    damages.seq!(files[1]!, at(7)); // record 16, the segment's last
    damages.crc!(files[2]!, at(7)); // record 24
    const told: HadesError[] = [];
    const spool = reopen(dir, told);
    assert.deepEqual(seqs(drain(spool, 7)), without(range(1, 30), [9, 16, 24]));
    const s = spool.stats();
    assert.deepEqual([s.corruptRecords, s.corruptEvents, s.corruptBytes], [3, eventsIn([9, 16, 24]), 3 * (HEADER + 100)]);
    assert.match(told.map((e) => e.message).join('\n'), /record 16 is lost \(124 bytes\), skipped, to the end of the segment/);
    spool.close();
  });

  it('several damages in one segment, each stepped over; the next segment is never read twice', () => {
    const { dir, files } = fourSegments();
    damages.payload!(files[0]!, at(1)); // record 2
    damages.length!(files[0]!, at(4)); // record 5
    damages.seq!(files[0]!, at(5)); // record 6, right after
    const spool = reopen(dir);
    const all = drain(spool, 1);
    assert.deepEqual(seqs(all), without(range(1, 30), [2, 5, 6]));
    assert.deepEqual([spool.stats().corruptRecords, spool.stats().corruptEvents], [3, eventsIn([2, 5, 6])]);
    spool.close();
  });

  it('a whole older segment unreadable as records loses its records up to the next segment, and no more', () => {
    const { dir, files } = fourSegments();
    zeros(files[1]!, 0, statSync(files[1]!).size);
    const spool = reopen(dir);
    assert.deepEqual(seqs(drain(spool)), without(range(1, 30), range(9, 16)));
    assert.equal(spool.stats().corruptRecords, 8);
    spool.close();
  });

  it('in the newest segment at open, a run of zeros in the middle and a torn tail: the records between are kept', () => {
    const dir = folder();
    let spool = open(dir, { segmentBytes: 1 << 20, eventsOf: eventsOfR });
    fill(spool, 1, 100, 100);
    spool.close();
    const file = segmentFiles(dir)[0]!;
    const size = statSync(file).size;
    zeros(file, at(40) + 10, 2 * (HEADER + 100)); // inside records 41 to 43
    truncateSync(file, size - 30); // record 100 torn
    const told: HadesError[] = [];
    spool = open(dir, { eventsOf: eventsOfR, onCorrupt: (e) => told.push(e) });
    const s = spool.stats();
    assert.deepEqual([s.corruptRecords, s.corruptBytes], [3 + 1, 3 * (HEADER + 100) + HEADER + 100 - 30]);
    assert.equal(s.corruptEvents, eventsIn([41, 42, 43]), 'the torn record\'s events are unknown');
    assert.equal(told.length, 2);
    assert.equal(spool.lastSeq, 99);
    assert.equal(statSync(file).size, at(99), 'cut after the last good record');
    assert.deepEqual(seqs(drain(spool)), without(range(1, 99), [41, 42, 43]));
    assert.equal(spool.append([rec('r100')]), 100, 'the next seq follows the last good record');
    spool.close();
    spool = open(dir, { eventsOf: eventsOfR });
    assert.deepEqual(seqs(drain(spool)), without(range(1, 100), [41, 42, 43]));
    spool.close();
  });

  it('resumes from the acknowledged cursor when it lies inside the damage', () => {
    const dir = folder();
    let spool = open(dir, { segmentBytes: 1000, eventsOf: eventsOfR });
    fill(spool, 1, 30, 100);
    drain(spool);
    spool.commit(11);
    spool.close();
    const files = segmentFiles(dir);
    assert.equal(path.basename(files[0]!), '0000000000000009.seg');
    zeros(files[0]!, at(3), 3 * (HEADER + 100)); // records 12 to 14: the first ones not acknowledged
    spool = open(dir, { segmentBytes: 1000, eventsOf: eventsOfR });
    assert.deepEqual(seqs(drain(spool, 2)), range(15, 30));
    assert.deepEqual([spool.stats().corruptRecords, spool.stats().corruptEvents], [3, eventsIn([12, 13, 14])]);
    spool.close();
  });

  it('damage found while the newest segment is still appended to: later records are read after it', () => {
    const dir = folder();
    const spool = open(dir, { segmentBytes: 1 << 20, memoryCacheBytes: 0, eventsOf: eventsOfR });
    fill(spool, 1, 10, 100);
    const file = segmentFiles(dir)[0]!;
    damages.payload!(file, at(9)); // record 10, the last one so far
    assert.deepEqual(seqs(drain(spool)), range(1, 9));
    assert.equal(spool.stats().corruptRecords, 1);
    fill(spool, 11, 5, 100);
    assert.deepEqual(seqs(drain(spool)), range(11, 15), 'appended after the damage, and read');
    spool.rewind();
    assert.deepEqual(seqs(drain(spool)), without(range(1, 15), [10]));
    assert.equal(spool.stats().corruptRecords, 1);
    spool.close();
  });
});

/** Runs `body` in a folder on a 256 KiB tmpfs (a disk that fills), unmounted after; skipped without root. */
function onFullDisk(t: { skip: (message: string) => void }, body: (dir: string) => void): void {
  const dir = folder();
  mkdirSync(dir);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', dir], { stdio: 'ignore' });
  } catch {
    t.skip('cannot mount a tmpfs (needs root)');
    return;
  }
  try {
    body(dir);
  } finally {
    execFileSync('umount', [dir]);
  }
}

describe('spool: files that are not its own', () => {
  it('leaves alone a segment named past any sequence (it used to keep the reader from moving on), and says so', () => {
    const dir = folder();
    let spool = open(dir);
    fill(spool, 1, 5);
    spool.close();
    writeFileSync(path.join(dir, '9999999999999999.seg'), 'HADESSP1');
    const problems: HadesError[] = [];
    spool = open(dir, { onCorrupt: (e) => problems.push(e) });
    assert.deepEqual(seqs(drain(spool)), range(1, 5));
    assert.equal(spool.append([rec('next')]), 6);
    assert.deepEqual(problems.map((p) => p.code), ['HADES_ERR_SPOOL_CORRUPT']);
    assert.match(problems[0]?.message ?? '', /9999999999999999\.seg: not a segment of this spool/);
    spool.close();
  });

  it('leaves alone what is named like a segment but is no regular file (a FIFO used to hang the open for good), and says so', () => {
    const dir = folder();
    let spool = open(dir);
    fill(spool, 1, 5);
    spool.close();
    spool = open(dir);
    fill(spool, 6, 3);
    spool.close();
    // A FIFO among the segments (opening it to read waits for a writer that never comes), a
    // folder past them, and a link to a file outside the spool.
    execFileSync('mkfifo', [path.join(dir, '0000000000000003.seg')]);
    mkdirSync(path.join(dir, '0000000000000100.seg'));
    const outside = path.join(root, 'not-a-segment');
    writeFileSync(outside, 'HADESSP1 not spool records');
    symlinkSync(outside, path.join(dir, '0000000000000200.seg'));
    const problems: HadesError[] = [];
    const opened = spawnSync(process.execPath, ['--input-type=module', '-e', `
      import { Spool } from ${JSON.stringify(`${projectRoot}dist/src/agent/spool.js`)};
      const spool = Spool.open({ dir: ${JSON.stringify(dir)}, maxBytes: 1 << 20, segmentBytes: 4096, fsync: 'always' });
      spool.close();
    `], { timeout: 10_000 });
    assert.equal(opened.signal, null, 'the open returned (it waited on the FIFO for good)');
    spool = open(dir, { onCorrupt: (e) => problems.push(e) });
    assert.deepEqual(seqs(drain(spool)), range(1, 8));
    assert.equal(spool.append([rec('next')]), 9);
    assert.deepEqual(problems.map((p) => p.code), ['HADES_ERR_SPOOL_CORRUPT', 'HADES_ERR_SPOOL_CORRUPT', 'HADES_ERR_SPOOL_CORRUPT']);
    assert.match(problems.map((p) => p.message).join('\n'), /0000000000000003\.seg: not a segment of this spool \(not a regular file\); left alone/);
    spool.commit(9);
    spool.close();
    assert.ok(existsSync(path.join(dir, '0000000000000100.seg')) && existsSync(path.join(dir, '0000000000000200.seg')), 'left alone');
    assert.equal(readFileSync(outside, 'utf8'), 'HADESSP1 not spool records');
  });

  it('says so when the cursor marks more delivered than the spool ever wrote, and keeps its sequence', () => {
    const dir = folder();
    let spool = open(dir);
    fill(spool, 1, 5);
    spool.commit(5);
    fill(spool, 6, 3);
    spool.close();
    // A cursor from elsewhere: valid, but far past the newest record.
    const other = folder();
    const far = open(other);
    fill(far, 1, 40);
    far.commit(40);
    far.close();
    writeFileSync(path.join(dir, 'cursor'), readFileSync(path.join(other, 'cursor')));
    const problems: HadesError[] = [];
    spool = open(dir, { onCorrupt: (e) => problems.push(e) });
    assert.match(problems.map((p) => p.message).join('\n'), /records up to 40 are marked delivered, past the newest record written \(8\)/);
    assert.equal(spool.append([rec('next')]), 41, 'sequences never go back');
    spool.close();
  });
});

describe('spool: failures', () => {
  it('gives HADES_ERR_SPOOL_IO for a folder it cannot use', () => {
    const file = path.join(root, 'a-file');
    writeFileSync(file, 'x');
    assert.throws(() => open(path.join(file, 'spool')), isCode('HADES_ERR_SPOOL_IO'));
    assert.throws(() => open(file), isCode('HADES_ERR_SPOOL_IO'));
    assert.throws(() => Spool.open({ dir: folder(), maxBytes: 0, fsync: 'never' }), isCode('HADES_ERR_INTERNAL'));
  });

  it('gives HADES_ERR_SPOOL_IO for a read-only folder', (t) => {
    const dir = folder();
    mkdirSync(dir);
    if (process.getuid?.() !== 0) {
      execFileSync('chmod', ['0500', dir]);
    } else {
      try {
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=64k', 'tmpfs', dir], { stdio: 'ignore' });
      } catch {
        t.skip('cannot mount a tmpfs');
        return;
      }
    }
    try {
      assert.throws(() => open(dir), isCode('HADES_ERR_SPOOL_IO'));
    } finally {
      if (process.getuid?.() === 0) execFileSync('umount', [dir]);
    }
  });

  it('counts a full disk as write errors, never throws, and resumes when space is back', (t) => {
    onFullDisk(t, (dir) => {
      const spool = open(dir, { maxBytes: 16 << 20, segmentBytes: 32 * 1024 });
      let accepted = 0;
      let refused = 0;
      for (let n = 0; n < 200; n++) {
        const seq = spool.append([Buffer.alloc(3000, 65), Buffer.alloc(3000, 66)]);
        if (seq < 0) refused += 2;
        else accepted += 2;
      }
      const s = spool.stats();
      assert.ok(refused > 0 && accepted > 0, `${accepted} accepted, ${refused} refused`);
      assert.equal(s.refusedRecords, refused);
      assert.ok(s.writeErrors > 0);
      assert.equal(s.lastSeq, accepted);
      const all = drain(spool, 64);
      assert.deepEqual(seqs(all), range(1, accepted), 'everything accepted is readable and whole');
      assert.ok(all.every((r, i) => r.data.length === 3000 && r.data[0] === (i % 2 === 0 ? 65 : 66)));
      spool.commit(accepted);
      assert.ok(spool.append([Buffer.alloc(3000)]) > accepted, 'space freed by the commit is used');
      spool.close();
      const again = open(dir);
      assert.equal(again.stats().corruptRecords, 0, 'no partial batch was left behind');
      again.close();
    });
  });

  it('makes its folder again when it was removed while in use, and appends go on (they were refused for good)', () => {
    const dir = folder();
    const told: HadesError[] = [];
    const spool = open(dir, { memoryCacheBytes: 0, onFolderRemade: (e) => told.push(e), onCorrupt: () => undefined });
    fill(spool, 1, 40, 200);
    assert.deepEqual(seqs(spool.read(5, 1 << 30)), range(1, 5));
    spool.commit(5);
    rmSync(dir, { recursive: true, force: true });
    // The segment being written stays open (unlinked) until it is full; the next one needs the folder.
    fill(spool, 41, 60, 200);
    assert.equal(told.length, 1);
    assert.ok(isCode('HADES_ERR_SPOOL_IO')(told[0]), String(told[0]));
    assert.match(told[0]!.message, /removed while in use and is made again/);
    assert.ok(segmentFiles(dir).length > 0 && existsSync(path.join(dir, 'cursor')));
    const first = Number(path.basename(segmentFiles(dir)[0]!, '.seg'));
    assert.ok(first > 41 && first < 100, `the new folder's first record: ${first}`);
    const got = drain(spool);
    const lost = spool.stats().corruptRecords;
    assert.ok(lost > 0, 'the records of the removed segments that are not open any more are counted');
    assert.equal(got.length + lost, 100 - 5, 'each record is read or counted lost');
    assert.deepEqual(seqs(got.filter((r) => r.seq >= first)), range(first, 100), 'the records written into the new folder, in order');
    assert.deepEqual(texts(got).map((x) => x.replace(/\.+$/, '')), seqs(got).map((n) => `r${n}`));
    spool.commit(first + 1);
    spool.close();
    // The new folder is a spool of its own: its cursor and the records not acknowledged.
    const again = open(dir);
    assert.deepEqual(seqs(drain(again)), range(first + 2, 100));
    assert.equal(again.stats().corruptRecords, 0);
    again.close();
  });

  it('frees a full disk once everything is delivered, even when one segment holds it all', (t) => {
    onFullDisk(t, (dir) => {
      // Segments larger than the disk: the one being written fills it.
      const spool = open(dir, { maxBytes: 16 << 20, segmentBytes: 1 << 20 });
      let accepted = 0;
      for (let n = 0; n < 200; n++) if (spool.append([Buffer.alloc(3000, 65)]) > 0) accepted++;
      assert.ok(accepted > 0 && spool.stats().writeErrors > 0, `${accepted} accepted`);
      assert.equal(drain(spool, 64).length, accepted);
      spool.commit(accepted);
      // Everything is delivered: the next append must find room (it used to be refused for good).
      let seq = -1;
      for (let n = 0; n < 3 && seq < 0; n++) seq = spool.append([Buffer.alloc(3000, 66)]);
      assert.equal(seq, accepted + 1, 'appends go on once the delivered segment is gone');
      for (let n = 0; n < 20; n++) assert.ok(spool.append([Buffer.alloc(3000, 67)]) > 0, `append ${n} after the recovery`);
      spool.close();
    });
  });

  it('keeps every record reported durable, in order and intact, across kill -9', async () => {
    const dir = folder();
    const writer = `${projectRoot}test/fixtures/spool-writer.mjs`;
    let expected = 0;
    for (let round = 0; round < 2; round++) {
      const child = spawn(process.execPath, [writer, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.setEncoding('utf8');
      const enough = new Promise<void>((resolve) => {
        child.stdout.on('data', (chunk: string) => {
          out += chunk;
          if ((out.match(/^D /gm)?.length ?? 0) >= 30) resolve();
        });
      });
      await Promise.race([enough, once(child, 'exit')]);
      child.kill('SIGKILL');
      await once(child, 'exit');
      const lines = out.slice(0, out.lastIndexOf('\n')).split('\n');
      const last = (kind: string) => Math.max(0, ...lines.filter((l) => l.startsWith(kind)).map((l) => Number(l.slice(2))));
      const appended = last('A ');
      const durable = last('D ');
      assert.ok(durable > expected, `round ${round}: the writer reported durable records (${durable})`);
      const spool = open(dir);
      const all = drain(spool, 500);
      spool.close();
      assert.ok(all.length >= appended, `round ${round}: ${all.length} read back, ${appended} appended, ${durable} durable`);
      assert.deepEqual(seqs(all), range(1, all.length));
      for (const r of all) if (Buffer.from(r.data).toString() !== spoolPayload(r.seq)) assert.fail(`record ${r.seq} differs`);
      expected = all.length;
    }
  });
});
