import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { HadesError } from '../../src/common/errors.js';
import { exampleEvent } from '../../src/common/events/schema.js';
import { openDatabase } from '../../src/server/db.js';
import { Archive, MARK_FILE, partitionOf, STAGING, type ArchiveOptions } from '../../src/server/store/archive.js';
import { EventStore } from '../../src/server/store/events.js';

const root = mkdtempSync(path.join(tmpdir(), 'hades-archive-'));
after(() => rmSync(root, { recursive: true, force: true }));
let folders = 0;
const folder = (): string => path.join(root, `a${++folders}`);

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 10, 28, 8, 15, 0);
let ids = 0;
const ev = (time: number): Record<string, unknown> => {
  const e: any = structuredClone(exampleEvent('exec'));
  e['@timestamp'] = new Date(time).toISOString();
  e.event.id = `id-${++ids}`;
  return e;
};
const line = (e: Record<string, unknown>): string => JSON.stringify(e);

/** Every file under dir, relative, sorted; but the mark at its root (hidden from the engines, as .staging). */
const filesUnder = (dir: string): string[] =>
  readdirSync(dir, { recursive: true, withFileTypes: true })
    // The mark (and its temporary file, written then renamed) is not an archive file.
    .filter((d) => d.isFile() && !((d.name === MARK_FILE || d.name === `${MARK_FILE}.tmp`) && path.resolve(d.parentPath) === path.resolve(dir)))
    .map((d) => path.relative(dir, path.join(d.parentPath, d.name)))
    .sort();
/** The events of one archive file. */
const read = (file: string): any[] =>
  gunzipSync(readFileSync(file))
    .toString('utf8')
    .split('\n')
    .filter((l, i, all) => {
      if (i === all.length - 1) {
        assert.equal(l, '', 'a file ends with a newline');
        return false;
      }
      return true;
    })
    .map((l) => JSON.parse(l));
const FILE = /^dt=\d{4}-\d{2}-\d{2}\/hour=\d{2}\/\d+-\d+-\d+-[0-9a-f]{8}\.ndjson\.gz$/;

const open = (options: Partial<ArchiveOptions> = {}): Archive => Archive.open({ dir: folder(), timer: false, ...options });

describe('archive: partitions and files', () => {
  it('names partitions dt=YYYY-MM-DD/hour=HH after the UTC @timestamp', () => {
    assert.equal(partitionOf('2026-11-28T08:15:00.000Z'), 'dt=2026-11-28/hour=08');
    assert.equal(partitionOf('2026-12-31T23:59:59.999999Z'), 'dt=2026-12-31/hour=23');
  });

  it('writes one gzip NDJSON file per partition, each event in the hour of its @timestamp', async () => {
    const dir = folder();
    const archive = Archive.open({ dir, timer: false });
    const times = [T0, T0 + 10, T0 + HOUR, T0 + 2 * HOUR + 5, T0 + 16 * HOUR, T0 + 30 * HOUR, T0 + 45 * 60_000]; // the last is 09:00
    const events = times.map(ev);
    // Lines as the agent writes them, a line of another layout, and objects.
    const { '@timestamp': ts, ...rest } = events[6] as any;
    archive.append([line(events[0] as any), line(events[1] as any), line(events[2] as any)]);
    archive.append([events[3] as any, events[4] as any, events[5] as any]);
    archive.append([JSON.stringify({ ...rest, '@timestamp': ts })]);
    assert.deepEqual(archive.stats(), { bufferedEvents: 7, bufferedBytes: archive.stats().bufferedBytes, filesWritten: 0, eventsWritten: 0, bytesWritten: 0, eventsFailed: 0 });
    await archive.close();
    const files = filesUnder(dir);
    assert.deepEqual(
      files.map((f) => path.dirname(f)),
      ['dt=2026-11-28/hour=08', 'dt=2026-11-28/hour=09', 'dt=2026-11-28/hour=10', 'dt=2026-11-29/hour=00', 'dt=2026-11-29/hour=14'],
    );
    let total = 0;
    for (const file of files) {
      assert.match(file, FILE);
      const partition = path.dirname(file);
      const contents = read(path.join(dir, file));
      for (const e of contents) assert.equal(partitionOf(e['@timestamp']), partition, `${e['@timestamp']} is not in ${partition}`);
      total += contents.length;
    }
    assert.equal(total, 7);
    assert.deepEqual(
      read(path.join(dir, files[0] as string)).map((e) => e.event.id),
      [(events[0] as any).event.id, (events[1] as any).event.id],
    );
    const stats = archive.stats();
    assert.equal(stats.filesWritten, 5);
    assert.equal(stats.eventsWritten, 7);
    assert.equal(stats.bufferedEvents, 0);
    assert.ok(stats.bytesWritten > 0);
  });

  it('writes a partition when its buffer reaches flushBytes, keeping the rest buffered', async () => {
    const dir = folder();
    const lines = Array.from({ length: 10 }, (_, i) => line(ev(T0 + i)));
    const flushBytes = lines.reduce((n, l) => n + l.length + 1, 0);
    const archive = Archive.open({ dir, timer: false, flushBytes });
    archive.append(lines.slice(0, 9));
    archive.append([line(ev(T0 + 3 * HOUR))]);
    await archive.settled();
    assert.equal(filesUnder(dir).length, 0);
    archive.append(lines.slice(9));
    await archive.settled();
    const files = filesUnder(dir);
    assert.equal(files.length, 1);
    assert.equal(read(path.join(dir, files[0] as string)).length, 10);
    assert.equal(archive.stats().bufferedEvents, 1); // the 11:00 event waits
    await archive.close();
    assert.equal(filesUnder(dir).length, 2);
  });

  it('writes a partition when its oldest event has waited flushSeconds', async () => {
    const dir = folder();
    let now = 1_000_000;
    const archive = Archive.open({ dir, timer: false, flushSeconds: 60, now: () => now });
    archive.append([line(ev(T0))]);
    now += 30_000;
    archive.append([line(ev(T0 + 1)), line(ev(T0 + HOUR))]);
    now += 29_999;
    archive.flushDue();
    await archive.settled();
    assert.equal(filesUnder(dir).length, 0);
    now += 1;
    archive.flushDue();
    await archive.settled();
    assert.deepEqual(filesUnder(dir).map((f) => path.dirname(f)), ['dt=2026-11-28/hour=08']);
    assert.equal(read(path.join(dir, filesUnder(dir)[0] as string)).length, 2);
    now += 30_000;
    archive.flushDue();
    await archive.settled();
    assert.equal(filesUnder(dir).length, 2);
    await archive.close();
  });

  it('flushes on its own timer', async () => {
    const dir = folder();
    const archive = Archive.open({ dir, flushSeconds: 0.05 });
    archive.append([line(ev(T0))]);
    for (let i = 0; i < 100 && filesUnder(dir).length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(filesUnder(dir).length, 1);
    await archive.close();
  });

  it('writes the largest partitions early when all buffers together pass maxBufferedBytes', async () => {
    const dir = folder();
    const archive = Archive.open({ dir, timer: false, flushBytes: 1 << 20, maxBufferedBytes: 20_000 });
    for (let i = 0; i < 30; i++) archive.append([line(ev(T0 + (i % 3) * HOUR))]);
    await archive.settled();
    assert.ok(filesUnder(dir).length >= 1);
    assert.ok(archive.stats().bufferedBytes <= 20_000);
    await archive.close();
    assert.equal(filesUnder(dir).reduce((n, f) => n + read(path.join(dir, f)).length, 0), 30);
  });
});

describe('archive: input and failures', () => {
  it('refuses a batch with an event without a valid @timestamp, buffering none of it', async () => {
    const archive = open();
    const good = line(ev(T0));
    const bad = [
      '{"@timestamp":"yesterday","event":{}}',
      '{"event":{}}',
      '{"@timestamp":"2026-11-28T08:00:00+02:00"}',
      'not json',
      { '@timestamp': 5 },
      null,
    ];
    for (const event of bad) {
      assert.throws(
        () => archive.append([good, event] as string[]),
        (e: unknown) => e instanceof HadesError && e.code === 'HADES_ERR_EVENT_INVALID' && /event 1 of the batch/.test(e.message),
        JSON.stringify(event),
      );
    }
    assert.equal(archive.stats().bufferedEvents, 0);
    await archive.close();
    assert.throws(() => archive.append([good]), (e: unknown) => e instanceof HadesError && e.code === 'HADES_ERR_INTERNAL');
  });

  it('keeps an event on one line even if it was sent pretty-printed', async () => {
    const dir = folder();
    const archive = Archive.open({ dir, timer: false });
    const e = ev(T0);
    archive.append([JSON.stringify(e, null, 2)]);
    await archive.close();
    assert.deepEqual(read(path.join(dir, filesUnder(dir)[0] as string)), [e]);
  });

  it('reports a file it cannot write, counts its events, and leaves no temporary file', async () => {
    const dir = folder();
    const errors: HadesError[] = [];
    const archive = Archive.open({ dir, timer: false, onError: (e) => errors.push(e) });
    writeFileSync(path.join(dir, 'dt=2026-11-28'), 'a file where the partition folder should be');
    archive.append([line(ev(T0)), line(ev(T0 + 1)), line(ev(T0 + 24 * HOUR))]);
    await archive.close();
    assert.equal(errors.length, 1);
    assert.equal(errors[0]?.code, 'HADES_ERR_STORE_WRITE');
    assert.match(errors[0]?.message ?? '', /cannot write 2 events of dt=2026-11-28\/hour=08/);
    assert.equal(archive.stats().eventsFailed, 2);
    assert.equal(archive.stats().eventsWritten, 1);
    assert.deepEqual(readdirSync(path.join(dir, STAGING)), []);
  });

  it('makes its folder again when it was removed while the server runs (every later file failed, for good)', async () => {
    const dir = folder();
    const errors: HadesError[] = [];
    const archive = Archive.open({ dir, timer: false, onError: (e) => errors.push(e) });
    rmSync(dir, { recursive: true, force: true });
    const events = [ev(T0), ev(T0 + 1), ev(T0 + 24 * HOUR)];
    archive.append(events.map(line));
    await archive.close();
    assert.equal(archive.stats().eventsFailed, 0);
    assert.equal(archive.stats().eventsWritten, 3);
    const files = filesUnder(dir);
    assert.equal(files.length, 2);
    assert.deepEqual(files.flatMap((f) => read(path.join(dir, f))).sort((a, b) => a['@timestamp'].localeCompare(b['@timestamp']) || a.event.id.localeCompare(b.event.id)), events);
    assert.deepEqual(readdirSync(path.join(dir, STAGING)), []);
    assert.ok(errors.length >= 1 && errors.every((e) => e.code === 'HADES_ERR_STORE_WRITE' && /was removed while the server runs; made again/.test(e.message)), errors.map((e) => e.message).join('\n'));
  });

  it('removes what a crash left in the staging folder at open; engines never see it', async () => {
    const dir = folder();
    const first = Archive.open({ dir, timer: false });
    first.append([line(ev(T0))]);
    await first.close();
    // A crash in the middle of a write: a partial gzip under its temporary name.
    const complete = filesUnder(dir)[0] as string;
    const partial = readFileSync(path.join(dir, complete)).subarray(0, 20);
    writeFileSync(path.join(dir, STAGING, '1764316800000-1-1-deadbeef.ndjson.gz.tmp'), partial);
    mkdirSync(path.join(dir, STAGING, 'junk'));
    // What an engine globbing the archive would read: complete files only.
    const visible = filesUnder(dir).filter((f) => !f.split('/').some((part) => part.startsWith('.')) && f.endsWith('.ndjson.gz'));
    assert.deepEqual(visible, [complete]);
    const second = Archive.open({ dir, timer: false });
    assert.deepEqual(readdirSync(path.join(dir, STAGING)), []);
    assert.deepEqual(filesUnder(dir), [complete]);
    assert.equal(read(path.join(dir, complete)).length, 1);
    await second.close();
  });

  it('gives HADES_ERR_STORE_OPEN when the folder cannot be made', () => {
    const file = path.join(root, 'a-file');
    writeFileSync(file, '');
    assert.throws(() => Archive.open({ dir: path.join(file, 'archive') }), (e: unknown) => e instanceof HadesError && e.code === 'HADES_ERR_STORE_OPEN');
  });
});

describe('archive: retention and the event store', () => {
  it('deletes the files written more than maxAgeDays ago, the hour partitions and day folders left empty', async () => {
    const dir = folder();
    let clock = 0;
    const archive = Archive.open({ dir, timer: false, now: () => clock });
    const now = Date.UTC(2026, 10, 28, 12, 30);
    const day = 24 * HOUR;
    // Three days ago 10:30 and 12:30 (right at the cutoff), two days ago, today: each event
    // archived as it happened.
    for (const t of [now - 3 * day - 2 * HOUR, now - 3 * day, now - 3 * day + HOUR, now - 2 * day, now - 5 * day, now]) {
      clock = t;
      archive.append([line(ev(t))]);
      await archive.flush();
    }
    mkdirSync(path.join(dir, 'dt=2020-01-01', 'not-an-hour'), { recursive: true });
    mkdirSync(path.join(dir, 'other'));
    const result = await archive.enforceRetention({ maxAgeDays: 3, now });
    assert.deepEqual(result, { deletedPartitions: 2, deletedFiles: 2 });
    assert.deepEqual(
      filesUnder(dir).map((f) => path.dirname(f)),
      ['dt=2026-11-25/hour=12', 'dt=2026-11-25/hour=13', 'dt=2026-11-26/hour=12', 'dt=2026-11-28/hour=12'],
    );
    assert.ok(!existsSync(path.join(dir, 'dt=2026-11-23')));
    assert.ok(existsSync(path.join(dir, 'dt=2020-01-01', 'not-an-hour')));
    assert.ok(existsSync(path.join(dir, 'other')));
    assert.ok(existsSync(path.join(dir, STAGING)));
    await archive.close();
  });

  it('deletes by when a file was written (the server\'s clock), not by the time an agent gave its events', async () => {
    const dir = folder();
    const now = Date.UTC(2026, 10, 28, 12, 30);
    const day = 24 * HOUR;
    let clock = now;
    const archive = Archive.open({ dir, timer: false, now: () => clock });
    // A host whose clock is set back (by an intruder, or a dead battery) sends events dated two
    // years ago; another's is years ahead. Both arrive today.
    archive.append([line(ev(now - 730 * day)), line(ev(now + 3650 * day))]);
    await archive.flush();
    assert.deepEqual(await archive.enforceRetention({ maxAgeDays: 365, now }), { deletedPartitions: 0, deletedFiles: 0 });
    assert.equal(filesUnder(dir).length, 2, 'events stored today are kept for the archive\'s whole retention');
    // A year on, a file written then of the same old hour: only the old file goes.
    clock = now + 366 * day;
    archive.append([line(ev(now - 730 * day))]);
    await archive.flush();
    assert.deepEqual(await archive.enforceRetention({ maxAgeDays: 365, now: clock }), { deletedPartitions: 1, deletedFiles: 2 });
    const left = filesUnder(dir);
    assert.equal(left.length, 1);
    assert.match(left[0] as string, new RegExp(`^${partitionOf(new Date(now - 730 * day).toISOString())}/${clock}-`));
    await archive.close();
  });

  it('archives what the store stored, duplicates left out, with event.ingested', async () => {
    const dir = folder();
    const archive = Archive.open({ dir, timer: false });
    const store = new EventStore(openDatabase(':memory:'), { now: () => T0 + HOUR, onStored: (lines) => archive.append(lines) });
    const a = ev(T0);
    const b = ev(T0 + 1);
    store.insertBatch('agent-1', [line(a), line(b)]);
    store.insertBatch('agent-1', [line(b), line(a)]);
    await archive.close();
    const files = filesUnder(dir);
    assert.equal(files.length, 1);
    const archived = read(path.join(dir, files[0] as string));
    assert.deepEqual(
      archived.map((e) => [e.event.id, e.event.ingested]),
      [
        [(a as any).event.id, new Date(T0 + HOUR).toISOString()],
        [(b as any).event.id, new Date(T0 + HOUR).toISOString()],
      ],
    );
  });
});

describe('archive: how far its files go (the mark a catch-up starts from)', () => {
  it('keeps the mark below the lowest rowid buffered or being written, saves it after writes and at close, and reads it at open', async () => {
    const dir = folder();
    const archive = Archive.open({ dir, timer: false });
    assert.equal(archive.markAtOpen, undefined, 'a new archive has none');
    archive.startAt(10);
    assert.equal(archive.writtenThrough(), 10);
    // Two partitions: rows 11-12 in one hour, 13 in the next.
    archive.append([line(ev(T0)), line(ev(T0 + 1000)), line(ev(T0 + HOUR))], [11, 12, 13]);
    assert.equal(archive.writtenThrough(), 10, 'buffered: not in a file yet');
    await archive.flush();
    assert.equal(archive.writtenThrough(), 13);
    await archive.close();
    assert.equal(readFileSync(path.join(dir, MARK_FILE), 'utf8'), '13\n');
    const again = Archive.open({ dir, timer: false });
    assert.equal(again.markAtOpen, 13);
    // A catch-up under way holds the mark at what it appended, whatever newer events are written.
    again.hold(13);
    again.append([line(ev(T0 + 2 * HOUR))], [20]);
    await again.flush();
    assert.equal(again.writtenThrough(), 13);
    again.append([line(ev(T0))], [14]);
    again.hold(14);
    assert.equal(again.writtenThrough(), 13, 'row 14 is still buffered');
    await again.flush();
    assert.equal(again.writtenThrough(), 14);
    again.hold(undefined);
    assert.equal(again.writtenThrough(), 20);
    await again.close();
    assert.equal(Archive.open({ dir, timer: false }).markAtOpen, 20);
  });

  it('takes a mark file that says nothing usable as none', async () => {
    const dir = folder();
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, MARK_FILE), 'garbage');
    assert.equal(Archive.open({ dir, timer: false }).markAtOpen, undefined);
  });
});

