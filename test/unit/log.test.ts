import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { HadesError } from '../../src/common/errors.js';
import { Logger, PATH_CHECK_MS, REOPEN_DELAY_MS, type LoggerOptions } from '../../src/runtime/log.js';

const root = mkdtempSync(join(tmpdir(), 'hades-log-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = (): string => {
  const dir = join(root, String(dirs++));
  mkdirSync(dir);
  return dir;
};

/** A stream that keeps what is written, synchronously. */
class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
  lines(): any[] {
    return this.text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  }
}

const readLines = (path: string): any[] =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));

const fixedTime = new Date('2024-05-01T12:00:00.000Z');

function streamLogger(options: Partial<LoggerOptions> = {}): { log: Logger; out: Capture } {
  const out = new Capture();
  const log = new Logger({ level: 'info', maxBytes: 1 << 20, maxFiles: 2, stream: out, now: () => fixedTime, ...options });
  return { log, out };
}

describe('logger: lines', () => {
  it('filters by level, and setLevel changes the whole family', () => {
    const { log, out } = streamLogger({ level: 'warn' });
    const child = log.child({ component: 'driver' });
    log.debug('d');
    log.info('i');
    log.warn('w');
    child.error('e');
    assert.deepEqual(out.lines().map((l) => l.msg), ['w', 'e']);
    assert.equal(log.enabled('info'), false);
    child.setLevel('debug');
    log.debug('d2');
    assert.equal(log.level, 'debug');
    assert.deepEqual(out.lines().map((l) => l.msg), ['w', 'e', 'd2']);
  });

  it('writes one JSON object per line: time, level, msg, code, bindings, fields', () => {
    const { log, out } = streamLogger();
    log.child({ component: 'spool' }).child({ queue: 'main' }).warn('spool slow', { code: 'HADES_ERR_SPOOL_IO', pending: 3, big: 12n, when: fixedTime, skip: undefined });
    assert.equal(out.text.endsWith('\n'), true);
    assert.equal(out.text.split('\n').length, 2);
    const [line] = out.lines();
    assert.deepEqual(Object.keys(line), ['time', 'level', 'msg', 'code', 'component', 'queue', 'pending', 'big', 'when']);
    assert.deepEqual(line, {
      time: '2024-05-01T12:00:00.000Z',
      level: 'warn',
      msg: 'spool slow',
      code: 'HADES_ERR_SPOOL_IO',
      component: 'spool',
      queue: 'main',
      pending: 3,
      big: '12',
      when: '2024-05-01T12:00:00.000Z',
    });
  });

  it('fields cannot overwrite time, level or msg', () => {
    const { log, out } = streamLogger();
    log.info('real', { time: 'fake', level: 'error', msg: 'fake' });
    assert.deepEqual(out.lines()[0], { time: '2024-05-01T12:00:00.000Z', level: 'info', msg: 'real' });
  });

  it('logs a HadesError as {code, msg, kind} and lifts its code; other errors keep their stack at debug only', () => {
    const { log, out } = streamLogger({ level: 'debug' });
    log.error('spool failed', { err: new HadesError('HADES_ERR_SPOOL_IO', 'disk full') });
    log.info('plain', { err: new TypeError('bad') });
    log.debug('plain', { err: new TypeError('bad') });
    const [hades, info, debug] = out.lines();
    assert.equal(hades.code, 'HADES_ERR_SPOOL_IO');
    assert.deepEqual(hades.err, { code: 'HADES_ERR_SPOOL_IO', msg: 'disk full', kind: 'environment' });
    assert.deepEqual(info.err, { msg: 'bad' });
    assert.equal(info.code, undefined);
    assert.equal(debug.err.msg, 'bad');
    assert.match(debug.err.stack, /TypeError: bad\n\s+at /);
  });

  it('redacts secret-looking names at any depth and in any case', () => {
    const { log, out } = streamLogger({ level: 'debug' });
    const secrets = {
      Token: 's1',
      api_KEY: 's2',
      nested: { PassWord: 's3', deeper: { AUTHORIZATION: 's4', list: [{ Cookie: 's5', passwd: 's6' }], private_data: { x: 's7' } } },
      headers: new Map([['x-auth-token', 's8']]),
      client_secret: 's9',
      keyboard: 'kept',
      count: 1,
      token_id: 'ad6ba5cf557a2fd7',
    };
    log.info('request', secrets);
    log.debug('request', secrets);
    for (const line of out.text.trim().split('\n')) assert.doesNotMatch(line, /"s\d"/);
    const [info] = out.lines();
    assert.equal(info.Token, '[redacted]');
    assert.equal(info.nested.PassWord, '[redacted]');
    assert.equal(info.nested.deeper.AUTHORIZATION, '[redacted]');
    assert.deepEqual(info.nested.deeper.list, [{ Cookie: '[redacted]', passwd: '[redacted]' }]);
    assert.equal(info.nested.deeper.private_data, '[redacted]');
    assert.deepEqual(info.headers, { 'x-auth-token': '[redacted]' });
    assert.equal(info.keyboard, 'kept');
    assert.equal(info.count, 1);
    assert.equal(info.token_id, 'ad6ba5cf557a2fd7', "a token's id is its public part, logged as docs/architecture.md says");
  });

  it('drops event payloads except at debug level', () => {
    const { log, out } = streamLogger({ level: 'debug' });
    const fields = { event: { process: { args: ['curl', 'x'] } }, batch: { events: [{ a: 1 }], size: 1 }, kind: 'exec' };
    log.info('delivered', fields);
    log.warn('delivered', fields);
    log.debug('delivered', fields);
    const [info, warn, debug] = out.lines();
    assert.deepEqual(info, { time: info.time, level: 'info', msg: 'delivered', batch: { size: 1 }, kind: 'exec' });
    assert.equal('event' in warn, false);
    assert.deepEqual(debug.event, { process: { args: ['curl', 'x'] } });
    assert.deepEqual(debug.batch.events, [{ a: 1 }]);
  });

  it('cuts long strings and bounds depth, lists and binary data', () => {
    const { log, out } = streamLogger();
    let deep: any = { leaf: 1 };
    for (let i = 0; i < 10; i++) deep = { down: deep };
    log.info('x'.repeat(5000), { long: 'y'.repeat(3000), deep, list: Array.from({ length: 150 }, (_, i) => i), bytes: Buffer.alloc(4096) });
    const [line] = out.lines();
    assert.equal(line.msg, `${'x'.repeat(2048)}...[cut 2952 characters]`);
    assert.equal(line.long.length, 2048 + '...[cut 952 characters]'.length);
    assert.match(JSON.stringify(line.deep), /"\[too deep\]"/);
    assert.equal(line.list.length, 101);
    assert.equal(line.list[100], '[50 more items]');
    assert.equal(line.bytes, '[4096 bytes]');
  });

  it('survives circular fields', () => {
    const { log, out } = streamLogger();
    const a: any = { name: 'a' };
    a.self = a;
    log.info('circular', { a });
    assert.equal(out.lines()[0].a.self.self.name, 'a');
  });
});

describe('logger: file', () => {
  it('rotates into exactly maxFiles files, newest in the base file, each within the size bound', () => {
    const dir = freshDir();
    const file = join(dir, 'hades-agent.log');
    const out = new Capture();
    const log = new Logger({ level: 'info', file, maxBytes: 1000, maxFiles: 3, stream: out, bytesPerSecond: 0 });
    for (let i = 0; i < 200; i++) log.info('line', { i, pad: 'p'.repeat(40) });
    log.close();
    log.close();
    assert.deepEqual(readdirSync(dir).sort(), ['hades-agent.log', 'hades-agent.log.1', 'hades-agent.log.2']);
    const seq: number[] = [];
    for (const name of ['hades-agent.log.2', 'hades-agent.log.1', 'hades-agent.log']) {
      assert.ok(statSync(join(dir, name)).size <= 1000, `${name} within the bound`);
      seq.push(...readLines(join(dir, name)).map((l) => l.i as number));
    }
    assert.equal(seq.at(-1), 199, 'the newest line is in the base file');
    seq.forEach((n, k) => assert.equal(n, seq[0]! + k, 'the kept lines are contiguous and in order'));
    const stats = log.stats();
    assert.ok(stats.rotations >= 2);
    assert.equal(stats.lines, 200);
    assert.equal(out.text, '', 'nothing went to the stream');
  });

  it('keeps one file with maxFiles 1 and removes files over a lowered bound', () => {
    const dir = freshDir();
    const file = join(dir, 'a.log');
    const log = new Logger({ level: 'info', file, maxBytes: 500, maxFiles: 4, stream: new Capture(), bytesPerSecond: 0 });
    for (let i = 0; i < 60; i++) log.info('line', { i });
    assert.equal(readdirSync(dir).length, 4);
    log.reconfigure({ level: 'info', file, max_mb: 1, max_files: 1 }, { maxBytes: 500 });
    for (let i = 0; i < 30; i++) log.info('line', { i });
    log.close();
    assert.deepEqual(readdirSync(dir), ['a.log']);
    assert.ok(statSync(file).size <= 500);
  });

  it('appends to an existing file and ends a torn last line first', () => {
    const dir = freshDir();
    const file = join(dir, 'a.log');
    writeFileSync(file, '{"msg":"before"}\n{"msg":"torn');
    const log = new Logger({ level: 'info', file, maxBytes: 1 << 20, maxFiles: 2, stream: new Capture() });
    log.info('after');
    log.close();
    const lines = readFileSync(file, 'utf8').split('\n');
    assert.deepEqual(lines.slice(0, 2), ['{"msg":"before"}', '{"msg":"torn']);
    assert.equal(JSON.parse(lines[2]!).msg, 'after');
  });

  it('reconfigure switches the file, the level and back to the stream', () => {
    const dir = freshDir();
    const a = join(dir, 'a.log');
    const b = join(dir, 'sub', 'b.log');
    const out = new Capture();
    const log = Logger.fromConfig({ level: 'info', file: a, max_mb: 1, max_files: 2 }, { stream: out });
    log.info('one');
    log.reconfigure({ level: 'debug', file: b, max_mb: 1, max_files: 2 });
    log.debug('two');
    log.reconfigure({ level: 'info', file: null, max_mb: 1, max_files: 2 });
    log.info('three');
    log.close();
    assert.deepEqual(readLines(a).map((l) => l.msg), ['one']);
    assert.deepEqual(readLines(b).map((l) => l.msg), ['two']);
    assert.deepEqual(out.lines().map((l) => l.msg), ['three']);
  });
});

describe('logger: rate limit and failures', () => {
  it('drops lines over the rate, then writes how many before the next line', () => {
    let t = 0;
    const { log, out } = streamLogger({ bytesPerSecond: 1000, burstBytes: 1000, clock: () => t });
    for (let i = 0; i < 30; i++) log.info('line', { i, pad: 'p'.repeat(40) });
    const written = out.lines().length;
    const stats = log.stats();
    assert.ok(written > 5 && written < 30, `${written} lines passed`);
    assert.equal(stats.suppressed, 30 - written);
    t += 2000;
    log.info('after');
    const lines = out.lines();
    const notice = lines[written];
    assert.equal(notice.level, 'warn');
    assert.equal(notice.msg, `${30 - written} log lines suppressed by the log rate limit`);
    assert.equal(notice.component, 'log');
    assert.equal(notice.suppressed, 30 - written);
    assert.equal(notice.bytes_per_second, 1000);
    assert.equal(lines[written + 1].msg, 'after');
    assert.equal(lines.length, written + 2);
    log.info('again');
    assert.equal(out.lines().at(-1).msg, 'again', 'the notice comes once');
  });

  it('falls back to the stream with one HADES_ERR_LOG_IO line, retries later and recovers', () => {
    const dir = freshDir();
    const blocker = join(dir, 'not-a-folder');
    writeFileSync(blocker, '');
    const file = join(blocker, 'hades-agent.log'); // its folder is a file: fails even for root
    let t = 0;
    const { log, out } = streamLogger({ file, clock: () => t });
    for (let i = 0; i < 5; i++) log.info('line', { i });
    t += REOPEN_DELAY_MS + 1;
    log.info('still failing');
    let lines = out.lines();
    assert.equal(lines.filter((l) => l.code === 'HADES_ERR_LOG_IO').length, 1);
    assert.equal(lines[0].code, 'HADES_ERR_LOG_IO');
    assert.equal(lines[0].level, 'error');
    assert.equal(lines[0].err.code, 'HADES_ERR_LOG_IO');
    assert.match(lines[0].err.msg, /EEXIST|ENOTDIR/);
    assert.deepEqual(lines.slice(1).map((l) => l.msg), ['line', 'line', 'line', 'line', 'line', 'still failing']);
    assert.equal(log.stats().writeErrors, 2, 'the open at start and the retry after the delay');

    rmSync(blocker);
    log.info('not retried before the delay');
    assert.equal(existsSync(blocker), false);
    t += REOPEN_DELAY_MS + 1;
    log.info('back in the file');
    log.close();
    lines = out.lines();
    assert.equal(lines.at(-1).msg, 'not retried before the delay');
    const inFile = readLines(file);
    assert.match(inFile[0].msg, /writable again/);
    assert.equal(inFile[1].msg, 'back in the file');
  });

  it('starts a new file when its file is moved away (an external logrotate) or its folder removed (the lines went to the unlinked file, unseen)', () => {
    const dir = freshDir();
    const folder = join(dir, 'logs');
    const file = join(folder, 'agent.log');
    let t = 0;
    const { log, out } = streamLogger({ file, clock: () => t });
    log.info('first');
    renameSync(file, `${file}.moved`);
    log.info('within the check interval: still the moved file');
    t += PATH_CHECK_MS + 1;
    log.info('in a new file');
    assert.deepEqual(readLines(`${file}.moved`).map((l) => l.msg), ['first', 'within the check interval: still the moved file']);
    assert.deepEqual(readLines(file).map((l) => l.msg), ['in a new file']);
    rmSync(folder, { recursive: true, force: true });
    t += PATH_CHECK_MS + 1;
    log.info('in the folder made again');
    log.close();
    assert.deepEqual(readLines(file).map((l) => l.msg), ['in the folder made again']);
    assert.equal(out.lines().length, 0, 'nothing fell back to the stream');
    assert.equal(log.stats().writeErrors, 0);
  });

  it('never writes through a symbolic link at its path, and falls back to the stream', () => {
    const dir = freshDir();
    const victim = join(dir, 'victim.sh');
    writeFileSync(victim, 'ORIGINAL\n');
    const file = join(dir, 'agent.log');
    symlinkSync(victim, file);
    const { log, out } = streamLogger({ file });
    log.info('a line');
    log.close();
    assert.equal(readFileSync(victim, 'utf8'), 'ORIGINAL\n');
    const lines = out.lines();
    assert.match(lines[0].err.msg, /ELOOP/);
    assert.equal(lines.at(-1).msg, 'a line');
  });

  it('falls back when writes fail (ENOSPC on /dev/full) and reports it once', { skip: !existsSync('/dev/full') }, () => {
    const { log, out } = streamLogger({ file: '/dev/full' });
    log.info('a');
    log.info('b');
    log.close();
    const lines = out.lines();
    assert.equal(lines.filter((l) => l.code === 'HADES_ERR_LOG_IO').length, 1);
    assert.match(lines[0].err.msg, /ENOSPC/);
    assert.deepEqual(lines.slice(1).map((l) => l.msg), ['a', 'b']);
    assert.equal(log.stats().writeErrors, 1);
  });

  it('drops lines larger than the file size bound and counts them', () => {
    const dir = freshDir();
    const { log } = streamLogger({ file: join(dir, 'a.log'), maxBytes: 200 });
    log.info('x'.repeat(300));
    log.info('small');
    log.close();
    assert.deepEqual(readLines(join(dir, 'a.log')).map((l) => l.msg), ['small']);
    assert.equal(log.stats().dropped, 1);
  });
});
