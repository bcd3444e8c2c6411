/**
 * The log collector's frames (with an in-memory pipe): a bad configuration is refused with a
 * coded ACK, a flood of lines arrives as events in frames that never pass the protocol's 1 MiB,
 * and the positions are kept in the state folder.
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { PluginFrame } from '../../src/common/plugins/frames.js';
import { LogCollector, loadState, validLogsConfig } from '../../src/agent/logs/collector.js';
import { journalAvailable } from '../../src/agent/logs/journal.js';
import { waitFor } from '../helpers/agent.js';

const dir = mkdtempSync(path.join(tmpdir(), 'hades-logs-unit-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function collector(): { c: LogCollector; frames: { type: number; text: string }[] } {
  const frames: { type: number; text: string }[] = [];
  const c = new LogCollector({ send: async (type, payload) => void frames.push({ type, text: Buffer.from(payload).toString('utf8') }) }, 'test');
  return { c, frames };
}

const config = (request: number, value: unknown) => Buffer.from(JSON.stringify({ request_id: request, config: value }));

describe('log collector', () => {
  it('refuses a bad configuration with a coded ACK', () => {
    for (const bad of [null, [], { source: 'syslog' }, { files: ['relative/auth.log'] }, { poll_ms: 1 }, { max_line_bytes: 'big' }, { state_dir: 'x' }]) {
      assert.equal(typeof validLogsConfig(bad), 'string', JSON.stringify(bad));
    }
    const { c, frames } = collector();
    c.onFrame(PluginFrame.config, config(7, { source: 'nope' }));
    c.onFrame(PluginFrame.config, Buffer.from('not json'));
    const acks = frames.filter((f) => f.type === PluginFrame.ack).map((f) => JSON.parse(f.text));
    assert.deepEqual(acks.map((a) => [a.request_id, a.ok, a.code]), [[7, false, 'HADES_ERR_CONFIG_VALUE'], [0, false, 'HADES_ERR_CONFIG_VALUE']]);
  });

  it('sends a flood as events in frames of at most 1 MiB, and keeps where it stopped', async () => {
    const file = path.join(dir, 'auth.log');
    const { c, frames } = collector();
    c.onFrame(PluginFrame.config, config(1, { source: 'files', files: [file], poll_ms: 50, state_dir: dir }));
    const lines: string[] = [];
    for (let i = 0; i < 30_000; i++) lines.push(`2026-11-28T23:20:05.${String(i % 1000).padStart(3, '0')}+00:00 h sshd[${i + 2}]: Failed password for root from 203.0.113.${i % 250} port ${1000 + i} ssh2`);
    await new Promise((resolve) => setTimeout(resolve, 200)); // a first poll: no file yet
    appendFileSync(file, `${lines.join('\n')}\n`); // appeared after the start: read from its beginning
    const events = () => frames.filter((f) => f.type === PluginFrame.events).flatMap((f) => f.text.split('\n').filter(Boolean));
    await waitFor('every event', () => events().length === 30_000 || undefined, 20_000);
    assert.ok(frames.every((f) => f.text.length <= 1024 * 1024), `largest frame ${Math.max(...frames.map((f) => f.text.length))} bytes`);
    const last = JSON.parse(events().at(-1) as string);
    assert.deepEqual([last.event.action, last.source.port, last.hades.log.pid], ['ssh_login', 30_999, 30_001]);
    await c.stop();
    const state = JSON.parse(readFileSync(path.join(dir, 'logs-state.json'), 'utf8'));
    assert.equal(state.files[file].offset, lines.join('\n').length + 1);
  });

  it('keeps only the well-formed parts of a damaged state file', () => {
    const folder = path.join(dir, 'damaged');
    mkdirSync(folder);
    const file = path.join(folder, 'logs-state.json');
    for (const text of ['not json', '[]', 'null', '"x"']) {
      writeFileSync(file, text);
      const told: string[] = [];
      assert.deepEqual(loadState(folder, (m) => told.push(m)), {}, text);
      assert.match(told.join(), /(is not JSON|does not hold an object): every log is read from its end/, 'said, not silent');
    }
    const none: string[] = [];
    loadState(path.join(dir, 'no-such-folder'), (m) => none.push(m));
    assert.deepEqual(none, [], 'no state yet is no problem');
    writeFileSync(
      file,
      JSON.stringify({
        files: {
          '/var/log/auth.log': { dev: 1, ino: 2, offset: 3, head: 'abcd' },
          '/var/log/neg': { dev: 1, ino: 2, offset: -1 },
          '/var/log/float': { dev: 1, ino: 2.5, offset: 0 },
          '/var/log/head': { dev: 1, ino: 2, offset: 0, head: 'not hex' },
          'relative.log': { dev: 1, ino: 2, offset: 0 },
          '/var/log/null': null,
        },
        journal: 'x\ny',
      }),
    );
    const told: string[] = [];
    assert.deepEqual(loadState(folder, (m) => told.push(m)), { files: { '/var/log/auth.log': { dev: 1, ino: 2, offset: 3, head: 'abcd' } } });
    assert.equal(told.filter((m) => /the position kept for \/var\/log\/(neg|float|head) is malformed/.test(m)).length, 3);
    writeFileSync(file, JSON.stringify({ files: 'all', journal: 's=1;i=2' }));
    assert.deepEqual(loadState(folder), { files: {}, journal: 's=1;i=2' });
    assert.deepEqual(loadState(undefined), {});
  });
});

describe('the journal, for source auto', () => {
  it('is taken only when its socket is there and a journald process runs (the socket outlives a stopped journald)', () => {
    const root = mkdtempSync(path.join(tmpdir(), 'hades-journal-'));
    try {
      const socket = path.join(root, 'socket');
      const proc = path.join(root, 'proc');
      mkdirSync(path.join(proc, '1'), { recursive: true });
      writeFileSync(path.join(proc, '1', 'comm'), 'init\n');
      assert.equal(journalAvailable(socket, proc), false, 'no socket');
      writeFileSync(socket, '');
      assert.equal(journalAvailable(socket, proc), false, 'a socket, and no journald');
      mkdirSync(path.join(proc, '77'));
      writeFileSync(path.join(proc, '77', 'comm'), 'systemd-journal\n');
      assert.equal(journalAvailable(socket, proc), true);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
