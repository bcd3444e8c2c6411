import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { alertDetail, raisingEvent } from '../../src/cli/commands/alerts.js';
import { formatRows } from '../../src/cli/commands/fleet.js';
import { formatAlert } from '../../src/cli/commands/alerts.js';
import { formatEvent } from '../../src/cli/commands/remote.js';
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
    assert.equal(shown('ro\u200bot \u00adx\ufeff'), 'ro\\u200bot \\xadx\\ufeff', 'characters that show as nothing');
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
    // A datagram to a UDP decoy bound to every address has no destination address: the client's still shows.
    const udp = exampleEvent('honeypot_touch') as any;
    delete udp.destination.ip;
    udp.network = { ...udp.network, transport: 'udp' };
    assert.match(formatEvent(udp), /honeypot_touch +10\.0\.0\.77:40000 -> \*:2323\/udp$/);
    assert.match(line('agent_gap'), /agent_gap +driver: killed by SIGKILL \(/);
    assert.match(line('agent_drop'), /kernel\/sched_process_exec: ringbuf_full 12$/);
    assert.match(line('inventory_change'), /listening_ports added$/);
    assert.match(line('tamper'), /signal 9 to pid 900$/);
    assert.match(line('ptrace'), /attach sshd\(790\)$/);
    assert.match(line('dns_query'), /dns_query +curl\(4242\) +query x1y2\.oast\.fun A$/);
    assert.match(line('connect'), /-> 203\.0\.113\.7:80$/);
  });

  /** The example event of `action`, changed by `change`. */
  const variant = (action: EventAction, change: (e: any) => void): string => {
    const e = exampleEvent(action) as any;
    change(e);
    return formatEvent(e);
  };

  it('tells apart the two reports of one connection, lookup or file change (state, outcome, answer)', () => {
    // A non-blocking connect: reported when made (pending), then established or failed.
    const pending = variant('connect', (e) => ((e.hades = { ...e.hades, socket: { fd: 3, state: 'pending' } }), (e.event.outcome = 'unknown')));
    const established = variant('connect', (e) => (e.hades = { ...e.hades, socket: { fd: 3, state: 'established' } }));
    const failed = variant('connect', (e) => ((e.hades = { ...e.hades, socket: { fd: 3, state: 'failed', errno: 'ECONNREFUSED' } }), (e.event.outcome = 'failure')));
    assert.match(pending, /-> 203\.0\.113\.7:80 pending$/);
    assert.match(established, /-> 203\.0\.113\.7:80 established$/);
    assert.match(failed, /-> 203\.0\.113\.7:80 failed ECONNREFUSED$/);
    // A blocking connect that failed, and one opened by its SYN (no connect call).
    assert.match(variant('connect', (e) => ((e.hades = { ...e.hades, socket: { fd: 3, errno: 'ENETUNREACH' } }), (e.event.outcome = 'failure'))), /:80 failed ENETUNREACH$/);
    assert.match(variant('connect', (e) => (e.hades = { ...e.hades, socket: { state: 'pending', connect_call: false } })), /:80 pending without connect\(2\)$/);
    assert.match(variant('connect', (e) => ((e.destination = { address: '/run/docker.sock' }), (e.network = { transport: 'unix' }))), /-> \/run\/docker\.sock$/);
    assert.match(variant('accept', (e) => ((e.hades = { ...e.hades, socket: { fd: 5, errno: 'EMFILE' } }), (e.event.outcome = 'failure'))), /198\.51\.100\.9:50022 -> 10\.0\.0\.5:22 failed EMFILE$/);
    // A DNS lookup: the question, then its answer.
    const answer = variant('dns_query', (e) => (e.dns = { ...e.dns, type: 'answer', response_code: 'NOERROR', resolved_ip: ['203.0.113.9', '203.0.113.10'] }));
    assert.match(answer, /dns_query +curl\(4242\) +answer x1y2\.oast\.fun A NOERROR -> 203\.0\.113\.9,203\.0\.113\.10$/);
    assert.match(variant('dns_query', (e) => (e.dns = { ...e.dns, type: 'answer', response_code: 'NXDOMAIN' })), /answer x1y2\.oast\.fun A NXDOMAIN$/);
    // Files: created or emptied, renamed from, mode before and after, opened for what, failed.
    const file = (action: EventAction, change: (e: any) => void) => variant(action, (e) => ((e.hades = { ...e.hades, file: {} }), change(e)));
    const created = file('file_create', (e) => ((e.file = { path: '/etc/cron.d/x' }), (e.hades.file = { created: true })));
    const emptied = file('file_create', (e) => ((e.file = { path: '/etc/cron.d/x' }), (e.hades.file = { created: false, truncated: true })));
    assert.match(created, /file_create .* \/etc\/cron\.d\/x created$/);
    assert.match(emptied, /file_create .* \/etc\/cron\.d\/x emptied$/);
    assert.match(file('file_create', (e) => ((e.file = { path: '/etc/cron.d/x' }), (e.hades.file = { created: false, written: true }))), /\/etc\/cron\.d\/x opened for writing$/);
    assert.match(file('file_create', (e) => ((e.file = { path: '/etc/cron.d/x' }), (e.hades.file = { created: true, link: { type: 'symbolic', target: '/tmp/x' } }))), /\/etc\/cron\.d\/x symbolic link to \/tmp\/x$/);
    assert.match(file('file_create', (e) => ((e.file = { path: '/etc/cron.d/x' }), (e.hades.file = { errno: 'EACCES' }), (e.event.outcome = 'failure'))), /\/etc\/cron\.d\/x failed EACCES$/);
    assert.match(file('file_rename', (e) => ((e.file = { path: '/etc/passwd' }), (e.hades.file = { old_path: '/etc/passwd+' }))), /file_rename .* \/etc\/passwd\+ -> \/etc\/passwd$/);
    assert.match(file('file_chmod', (e) => ((e.file = { path: '/tmp/x', mode: '04755' }), (e.hades.file = { old_mode: '0755' }))), /\/tmp\/x mode 0755 -> 04755$/);
    assert.match(file('file_open', (e) => ((e.file = { path: '/etc/shadow' }), (e.hades.file = { access: 'read' }))), /\/etc\/shadow read$/);
    assert.match(formatEvent(exampleEvent('file_times')), /file_times .* \/usr\/bin\/ps modified time set to 2019-01-01T00:00:00\.000Z \(backdated\)$/);
    assert.match(file('file_times', (e) => ((e.file = { path: '/etc/x' }), (e.hades.file = { mtime_seconds: 400000000000, backdated: false }))), /\/etc\/x modified time set to 400000000000$/);
    // An aggregated event says how many it stands for.
    assert.match(variant('connect', (e) => (e.event.count = 12)), /:80 \(x12\)$/);
  });

  it('says when a command line was cut at the agent\'s argv limit', () => {
    const cut = variant('exec', (e) => ((e.process.command_line = 'bash -c ' + 'A'.repeat(20)), (e.hades = { ...e.hades, ancestry: 'bash(1)', process: { ...e.hades?.process, args_truncated: true, args_bytes: 5061 } })));
    assert.match(cut, /bash -c A{20} … \(cut: 5061 bytes in all\) {2}\[bash\(1\)\]$/);
    assert.doesNotMatch(variant('exec', () => undefined), /cut:/);
    // Completed from /proc: whole, though the kernel's capture was cut.
    const whole = variant('exec', (e) => ((e.process.command_line = 'bash -c ' + 'A'.repeat(20)), (e.hades = { ...e.hades, process: { ...e.hades?.process, args_truncated: true, args_bytes: 29, args_source: 'proc' } })));
    assert.doesNotMatch(whole, /cut:/);
    const partly = variant('exec', (e) => (e.hades = { ...e.hades, process: { ...e.hades?.process, args_truncated: true, args_bytes: 99999, args_source: 'proc_cut' } }));
    assert.match(partly, /cut: 99999 bytes in all/);
  });
});

describe('hades alerts show', () => {
  const alert = (change: (a: any) => void = () => undefined) => {
    const exec = exampleEvent('exec') as any;
    const a: any = {
      id: '2f4418cd-acd1-4a28-ab10-85e9f6d4b795',
      '@timestamp': '2026-11-30T11:12:13.993Z',
      last_seen: '2026-11-30T11:12:14.508Z',
      count: 3,
      rule: { id: 'reverse_shell_command', title: 'Command run from a shell whose terminal is a network socket', severity: 'low', tags: ['attack.t1059.004'], type: 'rule' },
      message: 'id run through a socket',
      host: { id: 'ag_8f109ca5d985caba', name: 'web-1' },
      events: [
        { ...exec, process: { ...exec.process, pid: 9138, name: 'id', command_line: 'id' } },
        { ...exec, process: { ...exec.process, pid: 9141, name: 'uname', command_line: 'uname -a\x1b[2J' } },
      ],
      process: { pid: 9138, entity_id: 'e-9138', command_line: 'id', ancestors: [{ pid: 8974, name: 'bash' }] },
      status: 'acknowledged',
      assignee: 'bo',
      revision: 3,
      comments: [{ id: 1, time: '2026-11-30T11:20:00.000Z', author: 'ana', text: 'looking' }],
      history: [
        { time: '2026-11-30T11:15:00.000Z', actor: 'ana', status: 'acknowledged', assignee: 'ana', from: { status: 'new', assignee: null }, revision: 2 },
        { time: '2026-11-30T11:16:00.000Z', actor: 'bo', assignee: 'bo', from: { status: 'acknowledged', assignee: 'ana' }, revision: 3 },
      ],
    };
    change(a);
    return a;
  };

  it('prints why the alert fired: the rule, each triggering event on its line, and how to search the host around it', () => {
    const lines = alertDetail(alert());
    assert.ok(lines.some((l) => /^ {2}rule: +reverse_shell_command: Command run from a shell/.test(l)), lines.join('\n'));
    assert.ok(lines.some((l) => /^ {2}events: +2 of 3 matches/.test(l)), lines.join('\n'));
    const events = lines.filter((l) => /^ {4}\S/.test(l));
    assert.equal(events.length, 2);
    assert.match(events[0]!, /exec +id\(9138\) +id/);
    assert.match(events[1]!, /exec +uname\(9141\) +uname -a\\x1b\[2J/, 'escaped like a search line');
    // The pivot: by the agent's id, from 5 minutes before the first event to 5 after the last.
    assert.ok(lines.includes('  around:   hades search --host ag_8f109ca5d985caba --since 2026-11-30T11:07:13.993Z --until 2026-11-30T11:17:14.508Z'), lines.join('\n'));
    assert.ok(lines.some((l) => /^ {2}process: +id \(pid 9138, entity e-9138\)$/.test(l)), lines.join('\n'));
    // And the alert's process: its own events, and those of what it started.
    assert.ok(lines.includes('  its own:  hades search --host ag_8f109ca5d985caba --since 2026-11-30T11:07:13.993Z --until 2026-11-30T11:17:14.508Z process.entity_id=e-9138'), lines.join('\n'));
    assert.ok(lines.includes('  children: hades search --host ag_8f109ca5d985caba --since 2026-11-30T11:07:13.993Z --until 2026-11-30T11:17:14.508Z process.parent.entity_id=e-9138'), lines.join('\n'));
    // An entity id a shell would read otherwise is not offered as a command.
    assert.ok(!alertDetail(alert((a) => (a.process.entity_id = 'x; rm -rf /'))).some((l) => l.startsWith('  children:')));
  });

  it('prints who triaged it, when and to what, before its comments', () => {
    const lines = alertDetail(alert());
    const triage = lines.filter((l) => l.startsWith('  triage:'));
    assert.deepEqual(triage, ['  triage:   2026-11-30T11:15:00.000Z ana: new -> acknowledged, assigned to ana (revision 2)', '  triage:   2026-11-30T11:16:00.000Z bo: assigned to bo (revision 3)']);
    assert.ok(lines.findIndex((l) => l.startsWith('  comment:')) > lines.findIndex((l) => l.startsWith('  triage:')));
    // An answer without history (an older server) prints none.
    assert.ok(!alertDetail(alert((a) => delete a.history)).some((l) => l.startsWith('  triage:')));
  });

  it('prints the alerts about the same process tree, each on its line with how it is related, before the triage', () => {
    const related = [
      { id: 'a-up', '@timestamp': '2026-11-30T11:12:10.000Z', rule: { id: 'web_server_shell', severity: 'high' }, status: 'new', message: 'nginx started sh', relation: 'upstream', process: { entity_id: 'e-8974', pid: 8974, name: 'bash' } },
      { id: 'a-down', '@timestamp': '2026-11-30T11:12:20.000Z', rule: { id: 'x', severity: 'low' }, status: 'resolved', message: 'line\nbreak', relation: 'downstream', process: { entity_id: 'e-9138' } },
    ];
    const lines = alertDetail(alert((a) => (a.related = related)));
    const shownRelated = lines.filter((l) => l.startsWith('  related:'));
    assert.deepEqual(shownRelated, [
      "  related:  a-up 2026-11-30T11:12:10.000Z high web_server_shell [new] its process started this one's: bash(8974): nginx started sh",
      "  related:  a-down 2026-11-30T11:12:20.000Z low x [resolved] this one's process started its: ?(?): line\\nbreak",
    ]);
    assert.ok(lines.findIndex((l) => l.startsWith('  related:')) < lines.findIndex((l) => l.startsWith('  triage:')));
    assert.ok(!alertDetail(alert()).some((l) => l.startsWith('  related:')), 'none given, none printed');
  });
});

describe('hades alerts list, one line per alert', () => {
  const alert = {
    id: 'a1b2',
    '@timestamp': '2026-11-30T10:00:00.000Z',
    last_seen: '2026-11-30T10:05:00.000Z',
    count: 3,
    status: 'acknowledged',
    assignee: 'alice',
    rule: { id: 'reverse_shell_dev_tcp', title: 'T', severity: 'critical', tags: [], type: 'rule' },
    host: { id: 'agent-1', name: 'web-1' },
    message: `bash -c ${'x'.repeat(300)}`,
  };

  it('puts the count and the assignee before the message, which may be long', () => {
    assert.match(formatAlert(alert), /^a1b2 {2}2026-11-30T10:00:00\.000Z {2}CRITICAL {2}acknowledged {4}web-1 {2}reverse_shell_dev_tcp x3 @alice {2}bash -c x{300}$/);
    assert.match(formatAlert({ ...alert, count: 1, assignee: null }), /web-1 {2}reverse_shell_dev_tcp {2}bash -c /);
  });
});

describe('alerts suppress --like', () => {
  it('takes its value from the event that raised the alert, not from a match folded into it later', () => {
    const ev = (entity: string, line: string) => ({ event: { id: line }, process: { entity_id: entity, command_line: line } });
    const alert = { process: { entity_id: 'p1' }, events: [ev('p1', '/tmp/x a'), ev('p2', '/tmp/x b')] };
    assert.deepEqual(raisingEvent(alert), ev('p1', '/tmp/x a'));
    // A correlation: the completing event is the one whose process the alert shows, not the first step.
    const sequence = { process: { entity_id: 'p2' }, events: [ev('p1', 'curl'), ev('p2', 'sh'), ev('p3', 'sh again, folded')] };
    assert.deepEqual(raisingEvent(sequence), ev('p2', 'sh'));
    // No process shown (an ssh_login): the first event.
    assert.deepEqual(raisingEvent({ events: [ev('p1', 'first'), ev('p2', 'folded')] }), ev('p1', 'first'));
  });
});
