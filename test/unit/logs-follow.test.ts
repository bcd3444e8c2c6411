/**
 * Following a log file on disk: new lines only, a line written in two parts, rotation by rename,
 * copytruncate, overlong lines, and resuming from a kept position (also into `PATH.1` when the
 * file was rotated meanwhile).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { FileFollower, type FilePosition } from '../../src/agent/logs/follow-file.js';

const dir = mkdtempSync(path.join(tmpdir(), 'hades-follow-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function follower(name: string, options: { position?: FilePosition; maxLineBytes?: number } = {}): { f: FileFollower; lines: string[]; file: string } {
  const file = path.join(dir, name);
  const lines: string[] = [];
  const f = new FileFollower(file, { maxLineBytes: options.maxLineBytes ?? 1024, ...(options.position ? { position: options.position } : {}), onLine: (l) => lines.push(l) });
  return { f, lines, file };
}

describe('file follower', () => {
  it('starts at the end of a file there at start, and reads what is appended, whole lines only', () => {
    const file = path.join(dir, 'a.log');
    writeFileSync(file, 'old 1\nold 2\n');
    const { f, lines } = follower('a.log');
    f.poll();
    assert.deepEqual(lines, []);
    appendFileSync(file, 'new 1\nnew 2 part');
    f.poll();
    assert.deepEqual(lines, ['new 1']);
    appendFileSync(file, ' two\r\n');
    f.poll();
    assert.deepEqual(lines, ['new 1', 'new 2 part two']);
    f.close();
  });

  it('does not block on a FIFO under the log\'s name, and says once that it is not a file', () => {
    const file = path.join(dir, 'fifo.log');
    execFileSync('mkfifo', [file]);
    const problems: string[] = [];
    const f = new FileFollower(file, { maxLineBytes: 1024, onLine: () => assert.fail('no line'), onProblem: (m) => problems.push(m) });
    assert.equal(f.poll(), false);
    assert.equal(f.poll(), false);
    assert.deepEqual(problems, [`${file} is not a regular file (a FIFO): not read`]);
    f.close();
  });

  it('reads a file that appears later from its start', () => {
    const { f, lines, file } = follower('later.log');
    f.poll();
    writeFileSync(file, 'first\n');
    f.poll();
    assert.deepEqual(lines, ['first']);
    f.close();
  });

  it('follows a rotation by rename: the old file to its end, then the new one', () => {
    const { f, lines, file } = follower('rot.log');
    writeFileSync(file, '');
    f.poll();
    appendFileSync(file, 'a\n');
    f.poll();
    appendFileSync(file, 'b\n');
    renameSync(file, `${file}.1`);
    writeFileSync(file, 'c\n');
    f.poll();
    assert.deepEqual(lines, ['a', 'b', 'c']);
    assert.equal(f.counters.rotations, 1);
    f.close();
  });

  it('still reads the rotated file for a while: the logger writes there until told to reopen', () => {
    const { f, lines, file } = follower('late.log');
    writeFileSync(file, '');
    const t = Date.now();
    f.poll(t);
    appendFileSync(file, 'one\n');
    renameSync(file, `${file}.1`);
    f.poll(t + 100);
    appendFileSync(`${file}.1`, 'two, before the reopen\n');
    writeFileSync(file, 'three\n');
    f.poll(t + 1000);
    appendFileSync(`${file}.1`, 'too late\n');
    f.poll(t + 7000);
    f.poll(t + 8000);
    assert.deepEqual(lines, ['one', 'two, before the reopen', 'three', 'too late']);
    appendFileSync(`${file}.1`, 'after the grace\n');
    f.poll(t + 9000);
    assert.equal(lines.length, 4);
    f.close();
  });

  it('reads again from the start after copytruncate', () => {
    const { f, lines, file } = follower('trunc.log');
    writeFileSync(file, '');
    f.poll();
    appendFileSync(file, 'one\ntwo\n');
    f.poll();
    truncateSync(file, 0);
    appendFileSync(file, 'x\n');
    f.poll();
    assert.deepEqual(lines, ['one', 'two', 'x']);
    assert.equal(f.counters.truncations, 1);
    f.close();
  });

  it('sees a copytruncate after which more was written than it had read', () => {
    const { f, lines, file } = follower('trunc-grown.log');
    writeFileSync(file, '');
    f.poll();
    appendFileSync(file, '2026-11-30T00:00:01.000001+00:00 h sshd[1]: one\n');
    f.poll();
    // logrotate copies, empties the file, and sshd writes more than was there before the next poll.
    truncateSync(file, 0);
    appendFileSync(file, '2026-11-30T00:00:02.000002+00:00 h sshd[2]: two\n2026-11-30T00:00:03.000003+00:00 h sshd[3]: three\n');
    f.poll();
    assert.deepEqual(lines.map((l) => l.slice(-5)), [': one', ': two', 'three']);
    assert.equal(f.counters.truncations, 1);
    f.close();
  });

  it('resumes after a copytruncate where it was, without reading the file again', () => {
    const { f, lines, file } = follower('trunc-resume.log');
    writeFileSync(file, '');
    f.poll();
    appendFileSync(file, `${'a'.repeat(80)}\n`);
    f.poll();
    truncateSync(file, 0);
    appendFileSync(file, `${'b'.repeat(70)}\n`);
    f.poll();
    assert.equal(lines.length, 2);
    f.close();
    const kept = f.position()!;
    const again = follower('trunc-resume.log', { position: kept });
    appendFileSync(file, 'c\n');
    again.f.poll();
    assert.deepEqual(again.lines, ['c']);
    again.f.close();
  });

  it('cuts an overlong line and skips its rest', () => {
    const { f, lines, file } = follower('long.log', { maxLineBytes: 8 });
    writeFileSync(file, '');
    f.poll();
    appendFileSync(file, `${'x'.repeat(20)}\nshort\n`);
    f.poll();
    assert.deepEqual(lines, ['xxxxxxxx', 'short']);
    assert.equal(f.counters.truncated, 1);
    f.close();
  });

  it('resumes at a kept position, a part-read line included', () => {
    const first = follower('resume.log');
    writeFileSync(first.file, '');
    first.f.poll();
    appendFileSync(first.file, 'seen\nhalf');
    first.f.poll();
    const position = first.f.position() as FilePosition;
    first.f.close();
    appendFileSync(first.file, ' done\nwhile down\n');
    const second = follower('resume.log', { position });
    second.f.poll();
    assert.deepEqual(second.lines, ['half done', 'while down']);
    second.f.close();
  });

  it('takes a file back by inode and first bytes when its device number changed (a reboot), and restarts a cut line at its start', () => {
    const first = follower('dev.log', { maxLineBytes: 4 });
    writeFileSync(first.file, 'header line\n');
    first.f.poll();
    appendFileSync(first.file, 'seen\nlonglonglong');
    first.f.poll();
    const position = first.f.position() as FilePosition;
    first.f.close();
    appendFileSync(first.file, 'tail\nafter\n');
    const second = follower('dev.log', { position: { ...position, dev: position.dev + 1 }, maxLineBytes: 4 });
    second.f.poll();
    assert.deepEqual(second.lines, ['long', 'afte']);
    second.f.close();
    // Same inode number, other content: another file, read from its start.
    const third = follower('dev.log', { position: { ...position, head: Buffer.from('something else').toString('hex') }, maxLineBytes: 64 });
    third.f.poll();
    assert.equal(third.lines[0], 'header line');
    third.f.close();
  });

  for (const [name, rotated] of [['gone.log', 'gone.log.1'], ['secure', 'secure-20261128']] as const) {
    it(`finishes ${rotated} when ${name} was rotated while nobody read it`, () => {
      const first = follower(name);
      writeFileSync(first.file, '');
      first.f.poll();
      appendFileSync(first.file, 'read\n');
      first.f.poll();
      const position = first.f.position() as FilePosition;
      first.f.close();
      appendFileSync(first.file, 'tail of old\n');
      renameSync(first.file, path.join(dir, rotated));
      writeFileSync(first.file, 'in new\n');
      const second = follower(name, { position });
      second.f.poll();
      assert.deepEqual(second.lines, ['tail of old', 'in new']);
      assert.equal(second.f.counters.unread_bytes, 0);
      second.f.close();
    });
  }

  it('counts what a rotation while nobody read left past what is read of the rotated file', () => {
    const first = follower('big.log');
    writeFileSync(first.file, '');
    first.f.poll();
    appendFileSync(first.file, 'read\n');
    first.f.poll();
    const position = first.f.position() as FilePosition;
    first.f.close();
    // 9 MiB of lines logged while the agent was down, then the rotation: 8 MiB are read from the rotated name.
    const line = `${'x'.repeat(1023)}\n`;
    appendFileSync(first.file, line.repeat(9 * 1024));
    renameSync(first.file, path.join(dir, 'big.log.1'));
    writeFileSync(first.file, 'in new\n');
    const second = follower('big.log', { position });
    second.f.poll();
    assert.equal(second.f.counters.unread_bytes, 1024 * 1024, 'the ninth MiB, counted');
    assert.equal(second.lines.at(-1), 'in new');
    second.f.close();
  });
});
