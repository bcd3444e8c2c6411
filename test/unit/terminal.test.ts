import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatRows } from '../../src/cli/commands/fleet.js';
import { formatEvent } from '../../src/cli/commands/server.js';
import { shown } from '../../src/cli/terminal.js';
import { exampleEvent, type EventAction } from '../../src/common/events/index.js';

describe('text for a terminal', () => {
  it('escapes control, line-breaking and direction characters, and leaves the rest as it is', () => {
    assert.equal(shown('plain text, ünïcode, 日本'), 'plain text, ünïcode, 日本');
    assert.equal(shown('a\nb\rc\td'), 'a\\nb\\rc\\td');
    assert.equal(shown('\x1b[2J\x00\x07\x7f\x9b'), '\\x1b[2J\\x00\\x07\\x7f\\x9b');
    // Bytes that are not UTF-8, as the agent keeps them (U+DC80..U+DCFF), are shown as the bytes;
    // other lone surrogates as code points; a valid pair (an emoji) as it is.
    assert.equal(shown('/tmp/a\udcffb \udcfe'), '/tmp/a\\xffb \\xfe');
    assert.equal(shown('lone \ud800 high'), 'lone \\ud800 high');
    assert.equal(shown('emoji \u{1f600} ok'), 'emoji \u{1f600} ok');
    assert.equal(shown('evil\u202etxt.exe\u2028\u2066'), 'evil\\u202etxt.exe\\u2028\\u2066');
    assert.equal(shown(42), '42');
  });

  it('keeps a host\'s process name and command line on its line in search output and tables', () => {
    const event = {
      '@timestamp': '2026-11-29T07:00:00.000Z',
      host: { name: 'web-1' },
      event: { action: 'exec' },
      process: { pid: 42, name: 'x\x1b[2J', command_line: 'x\x1b[2J\r\n2026-11-29T07:00:00.000Z  web-1  exec  sshd(1)  all clear' },
    };
    const line = formatEvent(event);
    assert.equal(line.split('\n').length, 1);
    assert.ok(!line.includes('\x1b') && !line.includes('\r'));
    assert.match(line, /x\\x1b\[2J\\r\\n2026/);
    const rows = formatRows([{ name: 'a\nb', pid: 1 }]);
    assert.deepEqual(rows.at(-1), 'a\\nb  1');
    // Column names, and JSON cells (JSON leaves C1 and direction characters as they are).
    const odd = formatRows([{ 'col\x1b[2J': 'a', obj: { x: 'evil\u202eexe\u009b31m' } }]);
    assert.ok(odd.every((l) => !['\x1b', '\u202e', '\u009b'].some((c) => l.includes(c))), odd.join('\n'));
    assert.match(odd[0]!, /^col\\x1b\[2J/);
  });
});

describe('hades search, one line per event', () => {
  it('says what matters for each kind, not only the time, host and action', () => {
    const line = (action: EventAction) => formatEvent(exampleEvent(action));
    assert.match(line('ssh_login'), /ssh_login +failure root from 198\.51\.100\.9$/);
    assert.match(line('sudo'), /sudo +success alice as root \/usr\/bin\/systemctl restart nginx$/);
    assert.match(line('honeypot_touch'), /10\.0\.0\.77:40000 -> 10\.0\.0\.5:2323$/);
    assert.match(line('agent_gap'), /agent_gap +driver: killed by SIGKILL \(/);
    assert.match(line('agent_drop'), /kernel\/sched_process_exec: ringbuf_full 12$/);
    assert.match(line('inventory_change'), /listening_ports added$/);
    assert.match(line('tamper'), /signal 9 to pid 900$/);
    assert.match(line('ptrace'), /attach sshd\(790\)$/);
    assert.match(line('dns_query'), /dns_query +curl\(4242\) +x1y2\.oast\.fun$/);
    assert.match(line('connect'), /-> 203\.0\.113\.7:80$/);
  });
});
