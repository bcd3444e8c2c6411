/**
 * The detection mark (src/server/alerts/mark.ts): how far the rules have gone through the store,
 * held back by the oldest batch whose matching has not ended, and saved for the next start.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { openDatabase } from '../../src/server/db.js';
import { DetectionMark } from '../../src/server/alerts/mark.js';

describe('detection mark', () => {
  it('starts at the store\'s last rowid, then follows the oldest pending batch', () => {
    const db = openDatabase(':memory:');
    const mark = new DetectionMark(db, () => 10);
    try {
      assert.equal(mark.saved, 10);
      assert.equal(mark.through, 10);
      const a = mark.pending(11, 20);
      const b = mark.pending(21, 25);
      assert.equal(mark.through, 10, 'nothing after 10 is matched yet');
      mark.done(b);
      assert.equal(mark.through, 10, 'a later batch done does not pass an earlier one');
      mark.done(a);
      assert.equal(mark.through, 25);
      const failed = mark.pending(26, 30);
      mark.pending(31, 31);
      assert.equal(mark.through, 25, 'a batch whose matching failed holds the mark back');
      mark.done(failed);
      assert.equal(mark.through, 30);
      mark.save();
      assert.equal(mark.saved, 30);
    } finally {
      mark.close();
    }
    // The next start reads the saved mark; the initial value is only for a new one.
    const again = new DetectionMark(db, () => 999);
    try {
      assert.equal(again.saved, 30);
    } finally {
      again.close();
      db.close();
    }
  });

  it('saves at close, and never moves back', () => {
    const db = openDatabase(':memory:');
    const mark = new DetectionMark(db, () => 0, 60_000);
    mark.done(mark.pending(1, 5));
    mark.close();
    const read = new DetectionMark(db, () => 0);
    try {
      assert.equal(read.saved, 5);
      read.save();
      assert.equal(read.saved, 5);
    } finally {
      read.close();
      db.close();
    }
  });

  it('does not wait for a database another connection holds (the timer runs on the main thread)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hades-mark-'));
    const file = path.join(dir, 'hades.db');
    const db = openDatabase(file);
    const mark = new DetectionMark(db, () => 0, 60_000);
    const other = new Database(file);
    try {
      mark.done(mark.pending(1, 7));
      other.exec('BEGIN IMMEDIATE');
      const start = Date.now();
      mark.save();
      assert.ok(Date.now() - start < 1000, `save waited ${Date.now() - start} ms (busy timeout ${String(db.pragma('busy_timeout', { simple: true }))})`);
      assert.equal(mark.saved, 0, 'not written while the other connection holds the lock');
      assert.equal(db.pragma('busy_timeout', { simple: true }), 5000, 'the busy timeout is restored');
      other.exec('ROLLBACK');
      mark.save();
      assert.equal(mark.saved, 7);
    } finally {
      if (other.inTransaction) other.exec('ROLLBACK');
      other.close();
      mark.close();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
