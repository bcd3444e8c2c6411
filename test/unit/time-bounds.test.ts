/**
 * The time bounds of searches: one reading for the API and the command line, and the command's
 * window fixed once (a relative --since read again at the next page would have moved).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fixedTimeBounds } from '../../src/cli/api-client.js';
import { timeBound } from '../../src/common/time-bound.js';

const NOW = Date.parse('2026-11-29T12:00:00Z');

describe('time bounds', () => {
  it('reads durations back from now and ISO dates or times, and nothing else', () => {
    assert.equal(timeBound('15m', NOW), NOW - 15 * 60_000);
    assert.equal(timeBound('2026-11-28', NOW), Date.parse('2026-11-28'));
    assert.equal(timeBound('2026-11-28T08:00:00Z', NOW), Date.parse('2026-11-28T08:00:00Z'));
    for (const bad of ['5', '15', '1w', '-1h', 'yesterday', `${'9'.repeat(400)}d`]) assert.equal(timeBound(bad, NOW), undefined, bad);
  });

  it('refuses a day or time that does not exist, which Date.parse would roll over into the next day or month', () => {
    for (const bad of ['2026-02-30', '2025-02-29', '2026-02-31T00:00:00Z', '2026-13-01', '2026-00-10', '2026-11-00', '2026-11-28T24:00:00Z', '2026-11-28T08:60', '2026-11-28T08:00:60Z', '2026-11-28T08:00+24:00', '2026-11-28T08', '2026-11-28T08:00:00ZZ']) {
      assert.equal(timeBound(bad, NOW), undefined, bad);
      assert.equal(timeBound(bad, NOW, 'local'), undefined, bad);
    }
    assert.equal(timeBound('2024-02-29', NOW), Date.parse('2024-02-29T00:00:00Z'));
    assert.equal(timeBound('2026-11-28T10:00:00.250+02:00', NOW), Date.parse('2026-11-28T08:00:00.250Z'));
    assert.equal(timeBound('2026-11-28T10:00-0930', NOW), Date.parse('2026-11-28T19:30:00Z'));
    assert.equal(timeBound('0050-01-01', NOW), Date.parse('0050-01-01T00:00:00Z'), 'not 1950');
  });

  it('reads a time without a zone as UTC on the server, whatever the zone it runs in, and as local time for the command line', () => {
    const zone = process.env['TZ'];
    process.env['TZ'] = 'America/New_York';
    try {
      assert.equal(timeBound('2026-11-28T08:00:00', NOW), Date.parse('2026-11-28T08:00:00Z'));
      assert.equal(timeBound('2026-11-28 08:00', NOW), Date.parse('2026-11-28T08:00:00Z'));
      assert.equal(timeBound('2026-11-28T08:00', NOW, 'local'), Date.parse('2026-11-28T13:00:00Z'));
      // A date alone is UTC either way.
      assert.equal(timeBound('2026-11-28', NOW, 'local'), Date.parse('2026-11-28T00:00:00Z'));
    } finally {
      if (zone === undefined) delete process.env['TZ'];
      else process.env['TZ'] = zone;
    }
  });

  it('reads a duration reaching before 1970 as everything stored (the epoch), not a signed six-digit year the server refuses', () => {
    assert.equal(fixedTimeBounds({ since: '800000d' }, '1h', NOW).since, '1970-01-01T00:00:00.000Z');
  });

  it('fixes a relative window once, and says how to ask for the same window again', () => {
    assert.deepEqual(fixedTimeBounds({}, '1h', NOW), { since: '2026-11-29T11:00:00.000Z', again: '--since 2026-11-29T11:00:00.000Z' });
    assert.deepEqual(fixedTimeBounds({ since: '2d', until: '1d' }, '1h', NOW), {
      since: '2026-11-27T12:00:00.000Z',
      until: '2026-11-28T12:00:00.000Z',
      again: '--since 2026-11-27T12:00:00.000Z --until 2026-11-28T12:00:00.000Z',
    });
    // Times given as times are passed as given, and need nothing more.
    assert.deepEqual(fixedTimeBounds({ since: '2026-11-28', until: '2026-11-29T00:00:00Z' }, '1h', NOW), { since: '2026-11-28', until: '2026-11-29T00:00:00Z', again: '' });
    // --until alone: the default span ends there, not at now (a window that would end before it starts).
    assert.deepEqual(fixedTimeBounds({ until: '2d' }, '1h', NOW), {
      since: '2026-11-27T11:00:00.000Z',
      until: '2026-11-27T12:00:00.000Z',
      again: '--since 2026-11-27T11:00:00.000Z --until 2026-11-27T12:00:00.000Z',
    });
    assert.throws(() => fixedTimeBounds({ since: 'soon' }, '1h', NOW), (e: unknown) => (e as { code?: string }).code === 'HADES_ERR_CLI_INVALID_ARGUMENT');
  });

  it('a time without a zone is the person\'s local time, sent as UTC: the server (another zone, or another host) reads the same instant', () => {
    const zone = process.env['TZ'];
    process.env['TZ'] = 'Asia/Tokyo';
    try {
      const bounds = fixedTimeBounds({ since: '2026-11-28T08:00', until: '2026-11-28 09:30:00' }, '1h', NOW);
      assert.equal(bounds.since, '2026-11-27T23:00:00.000Z', '08:00 in Tokyo');
      assert.equal(bounds.until, '2026-11-28T00:30:00.000Z');
      assert.equal(bounds.again, '--since 2026-11-27T23:00:00.000Z --until 2026-11-28T00:30:00.000Z');
      // With a zone (or a date alone, which is UTC), the time goes as given.
      assert.deepEqual(fixedTimeBounds({ since: '2026-11-28T08:00+09:00', until: '2026-11-29' }, '1h', NOW), { since: '2026-11-28T08:00+09:00', until: '2026-11-29', again: '' });
    } finally {
      if (zone === undefined) delete process.env['TZ'];
      else process.env['TZ'] = zone;
    }
  });
});
