/**
 * The host tables against the fixture host (test/fixtures/inventory/host): every table's rows,
 * and for malformed input (odd lines, a corrupt stat file, a torn utmp record, include loops, a
 * symbolic link loop, a folder where a file belongs, a huge file) skipped rows with warnings,
 * never an exception. The parsers are also fed odd text directly.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { QueryContext } from '../../src/agent/inventory/context.js';
import { InventoryEngine, rowObjects } from '../../src/agent/inventory/engine.js';
import type { InventoryWarning, Row, TableSpec } from '../../src/agent/inventory/table.js';
import { parseSudoers, passwordAlgorithm, passwordStatus } from '../../src/agent/inventory/tables/accounts.js';
import { hostTables } from '../../src/agent/inventory/tables/host.js';
import { flagNames } from '../../src/agent/inventory/tables/net.js';
import { formatIpv6, parseInetTable, parseStat, parseUnixTable } from '../../src/agent/inventory/tables/proc.js';
import { parseModuleLine, parseMountInfoLine, parseOsRelease, SUID_FOLDERS } from '../../src/agent/inventory/tables/system.js';
import { encodeUtmpRecord, parseUtmp, UTMP_RECORD_BYTES, UtmpType } from '../../src/agent/inventory/tables/utmp.js';
import { makeHostFixture } from '../helpers/inventory-fixture.js';

const fixture = makeHostFixture();
after(() => rmSync(fixture.root, { recursive: true, force: true }));

const table = (name: string): TableSpec => {
  const spec = hostTables.find((t) => t.name === name);
  assert.ok(spec, name);
  return spec;
};

/** Rows and warnings of one table on the fixture host. */
async function collect(name: string, options: { maxFileBytes?: number } = {}): Promise<{ rows: Row[]; warnings: InventoryWarning[] }> {
  const context = new QueryContext({ root: fixture.root, maxFileBytes: options.maxFileBytes ?? 64 * 1024 });
  const rows = await table(name).generate(context.forTable(name));
  return { rows, warnings: context.warnings };
}

const codes = (warnings: readonly InventoryWarning[]) => warnings.map((w) => `${w.code} ${w.path ?? ''}`);

describe('host tables on the fixture host', () => {
  it('processes: identity, credentials, executable with its hash, deleted executables, odd names; a corrupt stat is skipped with a warning', async () => {
    const { rows, warnings } = await collect('processes');
    assert.deepEqual(rows.map((r) => r['pid']), [100, 200, 400]);
    const [daemon, evil, kthread] = rows;
    assert.equal(daemon!['name'], 'fixture-daemon');
    assert.equal(daemon!['cmdline'], '/usr/bin/fixture-daemon --listen :22');
    assert.equal(daemon!['path'], fixture.daemon);
    assert.equal(daemon!['exe_deleted'], 0);
    assert.match(String(daemon!['sha256']), /^[0-9a-f]{64}$/);
    assert.equal(daemon!['user'], 'root');
    assert.equal(daemon!['rss_bytes'], 2048 * 1024);
    assert.equal(daemon!['threads'], 3);
    assert.equal(daemon!['start_time'], 1_700_000_000 + 50); // btime + 5000 ticks
    assert.equal(daemon!['user_time_ms'], 2500);
    assert.equal(daemon!['cgroup'], '/system.slice/fixture.service');
    assert.equal(daemon!['net_namespace'], 4026531840);
    // A name with spaces and parentheses ends at the last ')'.
    assert.equal(evil!['name'], '(evil) x');
    assert.equal(evil!['ppid'], 100);
    assert.equal(evil!['nice'], 5);
    assert.equal(evil!['uid'], 1000);
    assert.equal(evil!['euid'], 0);
    assert.equal(evil!['user'], 'alice');
    assert.equal(evil!['path'], '/tmp/.x/evil');
    assert.equal(evil!['exe_deleted'], 1);
    assert.equal(evil!['sha256'], null);
    assert.equal(evil!['cgroup'], '12:pids:/user.slice;1:name=systemd:/user.slice;0::/user.slice');
    assert.equal(kthread!['cmdline'], null);
    assert.equal(kthread!['path'], null);
    assert.equal(kthread!['rss_bytes'], 0);
    assert.deepEqual(codes(warnings), ['HADES_ERR_INVENTORY_MALFORMED /proc']);
  });

  it('processes: reads only what the query asks for (no hashing without sha256)', async () => {
    const context = new QueryContext({ root: fixture.root, columns: new Set(['pid', 'name']) });
    const rows = await table('processes').generate(context.forTable('processes'));
    assert.equal(rows.length, 3);
    assert.ok(!('sha256' in rows[0]!) && !('cmdline' in rows[0]!));
    assert.equal(context.hashes.stats.hashed, 0);
  });

  it('process_open_sockets, listening_ports, connections: sockets joined to their processes by inode, in the namespace they live in', async () => {
    const sockets = (await collect('process_open_sockets')).rows;
    const byInode = (inode: number) => sockets.filter((s) => s['socket'] === inode);
    assert.deepEqual(byInode(5001).map((s) => [s['pid'], s['fd']]), [[100, 3], [200, 9]]);
    assert.deepEqual(byInode(5005)[0], { pid: 200, fd: 7, socket: 5005, family: 'unix', protocol: 'stream', local_address: null, local_port: null, remote_address: null, remote_port: null, state: 'LISTEN', path: '/run/fixture socket.sock', net_namespace: 4026531840 });
    assert.equal(byInode(5009)[0]?.['protocol'], 'raw');
    assert.equal(byInode(5010)[0]?.['family'], 'packet');
    // A listening socket created by a thread in another network namespace is in that namespace's tables.
    assert.deepEqual(byInode(5011).map((s) => [s['pid'], s['fd'], s['protocol'], s['local_port'], s['state'], s['net_namespace']]), [[100, 7, 'tcp', 4444, 'LISTEN', 4026532999]]);
    // A socket in no table read (its namespace has no process left in it, or a family /proc/net does
    // not list) is still a socket the process holds: a row with what is known, not silence.
    assert.deepEqual(byInode(5012), [{ pid: 100, fd: 8, socket: 5012, family: 'unknown', protocol: 'unknown', local_address: null, local_port: null, remote_address: null, remote_port: null, state: null, path: null, net_namespace: null }]);

    const { rows: listening, warnings } = await collect('listening_ports');
    const ports = listening.map((l) => [l['protocol'], l['address'], l['port'], l['pid'], l['path']]);
    assert.deepEqual(ports, [
      ['tcp', '0.0.0.0', 22, 100, null],
      ['tcp', '0.0.0.0', 22, 200, null],
      ['tcp', '::', 8080, 200, null],
      ['udp', '0.0.0.0', 53, 200, null],
      ['raw', '0.0.0.0', 1, 100, null],
      ['stream', null, null, 200, '/run/fixture socket.sock'],
      ['stream', null, null, null, '@abstract-name'],
      ['tcp', '0.0.0.0', 4444, 100, null], // in the namespace of one of its threads
    ]);
    assert.equal(listening.at(-1)!['net_namespace'], 4026532999);
    assert.deepEqual(codes(warnings), ['HADES_ERR_INVENTORY_MALFORMED /proc/net', 'HADES_ERR_INVENTORY_SKIPPED /proc'], 'the malformed line of tcp is skipped and reported, and so is the socket in no table');

    const connections = (await collect('connections')).rows;
    assert.deepEqual(
      connections.map((c) => [c['pid'], c['local_address'], c['local_port'], c['remote_address'], c['remote_port']]),
      [
        [100, '10.0.0.5', 22, '10.0.0.9', 51000],
        [200, '::ffff:127.0.0.1', 80, '::ffff:127.0.0.1', 54321],
      ],
    );
  });

  it('users: password state without the hash, ageing in unix seconds, odd lines skipped', async () => {
    const { rows, warnings } = await collect('users');
    const by = new Map(rows.map((r) => [r['username'], r]));
    assert.deepEqual([...by.keys()], ['root', 'daemon', 'alice', 'toor', 'bob', 'legacy']);
    assert.equal(by.get('root')!['password_status'], 'disabled');
    assert.equal(by.get('alice')!['password_status'], 'set');
    assert.equal(by.get('alice')!['password_algorithm'], 'yescrypt');
    assert.equal(by.get('alice')!['password_last_change'], 19500 * 86400);
    assert.equal(by.get('toor')!['password_algorithm'], 'md5');
    assert.equal(by.get('toor')!['uid'], 0);
    assert.equal(by.get('bob')!['password_status'], 'locked');
    assert.equal(by.get('bob')!['password_max_days'], 90);
    assert.equal(by.get('bob')!['expires'], 20000 * 86400);
    assert.equal(by.get('legacy')!['password_status'], 'empty');
    for (const row of rows) for (const value of Object.values(row)) assert.ok(typeof value !== 'string' || !value.includes('$y$') && !value.includes('hash'), 'no hash leaks');
    assert.deepEqual(codes(warnings).sort(), ['HADES_ERR_INVENTORY_MALFORMED /etc/passwd', 'HADES_ERR_INVENTORY_MALFORMED /etc/shadow']);
  });

  it('groups: members as a list, odd lines skipped', async () => {
    const { rows, warnings } = await collect('groups');
    assert.deepEqual(rows.map((r) => [r['groupname'], r['gid'], r['members']]), [
      ['root', 0, ''],
      ['sudo', 27, 'alice,bob'],
      ['docker', 999, 'alice'],
      ['users', 100, ''],
    ]);
    assert.deepEqual(codes(warnings), ['HADES_ERR_INVENTORY_MALFORMED /etc/group']);
  });

  it('sudoers: rules split into parts, includes followed once, loops, folders and huge files reported', async () => {
    const { rows, warnings } = await collect('sudoers');
    const rules = rows.filter((r) => r['type'] === 'rule');
    assert.deepEqual(rules.map((r) => [r['file'], r['principal'], r['hosts'], r['runas'], r['tags'], r['commands']]), [
      ['/etc/sudoers', 'root', 'ALL', 'ALL:ALL', '', 'ALL'],
      ['/etc/sudoers', '%sudo', 'ALL', 'ALL:ALL', '', 'ALL'],
      ['/etc/sudoers', 'alice,bob', 'web1', 'root', 'NOPASSWD,SETENV', '/usr/bin/systemctl restart nginx, /usr/bin/journalctl'],
      ['/etc/sudoers', '#1001', 'ALL', 'ALL', '', 'ALL'],
      ['/etc/sudoers.d/10-deploy', 'deploy', 'ALL', 'ALL', 'NOPASSWD', 'ALL'],
      ['/etc/sudoers.extra', 'carol', 'ALL', null, '', '/usr/bin/id'],
    ]);
    assert.equal(rows.find((r) => r['principal'] === 'alice,bob')!['line'], 7);
    assert.deepEqual(rows.filter((r) => r['type'] === 'defaults').map((r) => r['content']), ['Defaults env_reset', 'Defaults:alice !requiretty']);
    assert.equal(rows.filter((r) => r['type'] === 'alias').length, 1);
    assert.ok(!rows.some((r) => String(r['content']).startsWith('ignored')), 'files with a dot or ending in ~ are not read');
    assert.deepEqual(codes(warnings).sort(), [
      'HADES_ERR_INVENTORY_FILE_TOO_BIG /etc/sudoers.d/50-huge',
      'HADES_ERR_INVENTORY_LOOP /etc/sudoers',
      'HADES_ERR_INVENTORY_LOOP /etc/sudoers.loop',
      'HADES_ERR_INVENTORY_MALFORMED /etc/sudoers',
      'HADES_ERR_INVENTORY_UNREADABLE /etc/sudoers.d/40-folder',
    ]);
  });

  it('logged_in_users and last_logins: utmp records of 384 bytes, a bad record and a torn tail skipped with warnings', async () => {
    const now = await collect('logged_in_users');
    assert.deepEqual(now.rows, [
      { user: 'alice', tty: 'pts/0', host: '203.0.113.7', address: '203.0.113.7', pid: 100, session: 7, login_time: 1_700_000_100 },
      { user: 'root', tty: 'tty1', host: '', address: null, pid: 4242, session: 1, login_time: 1_700_000_200 },
    ]);
    assert.deepEqual(codes(now.warnings), ['HADES_ERR_INVENTORY_MALFORMED /run/utmp', 'HADES_ERR_INVENTORY_MALFORMED /run/utmp']);
    const history = await collect('last_logins');
    assert.deepEqual(history.rows.map((r) => [r['source'], r['kind'], r['user'], r['address'], r['time']]), [
      ['wtmp', 'boot', 'reboot', null, 1_699_000_000],
      ['wtmp', 'login', 'alice', '203.0.113.7', 1_699_000_100],
      ['wtmp', 'logout', '', null, 1_699_000_900],
      ['wtmp', 'login', 'bob', '2001:db8::1', 1_699_001_000],
      ['wtmp', 'shutdown', 'shutdown', null, 1_699_002_000],
      ['btmp', 'failed', 'admin', '198.51.100.9', 1_699_003_000],
    ]);
    assert.deepEqual(history.warnings, []);
  });

  it('last_logins: a history longer than the size limit is read from its newest records', async () => {
    const { rows, warnings } = await collect('last_logins', { maxFileBytes: 2 * UTMP_RECORD_BYTES + 10 });
    assert.deepEqual(rows.filter((r) => r['source'] === 'wtmp').map((r) => r['kind']), ['login', 'shutdown']);
    assert.deepEqual(codes(warnings), ['HADES_ERR_INVENTORY_FILE_TOO_BIG /var/log/wtmp']);
  });

  it('kernel_modules: taints, holders, modules that cannot be unloaded; a garbage line skipped', async () => {
    const { rows, warnings } = await collect('kernel_modules');
    assert.deepEqual(rows, [
      { name: 'nf_tables', size: 311296, refcount: 3, used_by: 'nft_chain_nat,nft_compat', state: 'Live', address: '0xffffffffc0a00000', taints: '' },
      { name: 'rootkit', size: 16384, refcount: 0, used_by: '', state: 'Live', address: '0x0000000000000000', taints: 'OE' },
      { name: 'ext4', size: 1000000, refcount: null, used_by: '', state: 'Live', address: '0xffffffffc0000000', taints: '' },
    ]);
    assert.deepEqual(codes(warnings), ['HADES_ERR_INVENTORY_MALFORMED /proc/modules']);
  });

  it('suid_binaries: setuid and setgid files, including one dropped in /tmp; link loops are not followed', async () => {
    const { rows, warnings } = await collect('suid_binaries');
    assert.deepEqual(rows.map((r) => [r['path'], r['setuid'], r['setgid'], r['mode'], r['username']]).sort(), [
      ['/tmp/.hidden/rootshell', 1, 0, '4777', 'root'],
      ['/usr/bin/fixture-sgid', 0, 1, '2755', 'root'],
      ['/usr/bin/fixture-suid', 1, 0, '4755', 'root'],
      ['/usr/lib/x86_64-linux-gnu/utempter/utempter', 0, 1, '2755', 'root'],
    ]);
    assert.ok(rows.every((r) => /^[0-9a-f]{64}$/.test(String(r['sha256']))));
    assert.deepEqual(warnings, []);
  });

  it('suid_binaries lists a setuid file whose name is not UTF-8 (it cannot hide by its name)', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'hades-suid-bytes-'));
    try {
      mkdirSync(path.join(root, 'tmp', 'x'), { recursive: true });
      const name = Buffer.concat([Buffer.from(path.join(root, 'tmp', 'x', 'bad')), Buffer.from([0xff, 0xfe]), Buffer.from('name')]);
      writeFileSync(name, '#!/bin/sh\n');
      chmodSync(name, 0o4755);
      const context = new QueryContext({ root });
      const rows = await table('suid_binaries').generate(context.forTable('suid_binaries'));
      // The table keeps each raw byte as U+DC00 + the byte; a query shows it as U+FFFD (inventory-byte-names.test.ts).
      assert.deepEqual(rows.map((r) => [r['path'], r['mode'], r['setuid']]), [['/tmp/x/bad\udcff\udcfename', '4755', 1]]);
      assert.match(String(rows[0]!['sha256']), /^[0-9a-f]{64}$/);
      assert.deepEqual(context.warnings, []);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('suid_binaries searches the world-writable folders last: a flood of entries there cannot use up the search before /home and /root', () => {
    const order = SUID_FOLDERS.map(([folder]) => folder);
    const writable = ['/tmp', '/var/tmp', '/dev/shm'];
    assert.deepEqual(order.slice(-writable.length), writable);
  });

  it('os_version, system_info, mounts, interfaces', async () => {
    const os = await collect('os_version');
    assert.deepEqual(os.rows, [{ name: 'Debian GNU/Linux', version: '12 (bookworm)', version_id: '12', major: 12, minor: null, id: 'debian', id_like: null, codename: 'bookworm', pretty_name: 'Debian GNU/Linux 12 (bookworm)' }]);
    assert.deepEqual(codes(os.warnings), ['HADES_ERR_INVENTORY_MALFORMED /etc/os-release']);
    const info = (await collect('system_info')).rows[0]!;
    assert.equal(info['hostname'], 'fixture-host');
    assert.equal(info['kernel_release'], '6.1.0-fixture');
    assert.equal(info['cpu_brand'], 'Fixture CPU @ 2.0GHz');
    assert.equal(info['cpu_logical_cores'], 2);
    assert.equal(info['cpu_physical_cores'], 2);
    assert.equal(info['memory_total_bytes'], 2048000 * 1024);
    assert.equal(info['boot_time'], 1_700_000_000);
    assert.equal(info['uptime_s'], 12345);
    assert.equal(info['machine_id'], '0123456789abcdef0123456789abcdef');
    const mounts = await collect('mounts');
    assert.deepEqual(mounts.rows.map((m) => [m['path'], m['type'], m['propagation']]), [
      ['/proc', 'proc', 'shared:5'],
      ['/', 'ext4', 'shared:1'],
      ['/tmp', 'tmpfs', ''],
      ['/mnt/my disk', 'ext4', 'master:3'],
    ]);
    assert.equal(mounts.rows[3]!['root'], '/data');
    assert.deepEqual(codes(mounts.warnings), ['HADES_ERR_INVENTORY_MALFORMED /proc/self/mountinfo']);
    const interfaces = (await collect('interfaces')).rows;
    assert.deepEqual(interfaces.map((i) => [i['name'], i['mac'], i['type'], i['mtu'], i['flag_names'], i['address'], i['prefix_length']]), [
      ['eth0', '02:42:ac:11:00:02', 'ether', 1500, 'UP,BROADCAST,MULTICAST', 'fe80::ff:fe00:1', 64],
      ['lo', '00:00:00:00:00:00', 'loopback', 65536, 'UP,LOOPBACK,RUNNING', '::1', 128],
    ]);
  });

  it('joins through the engine: the processes that listen, each table collected once', async () => {
    const engine = new InventoryEngine(hostTables, { root: fixture.root });
    try {
      const result = await engine.query('SELECT DISTINCT p.name, l.port FROM listening_ports l JOIN processes p USING (pid) WHERE l.port IS NOT NULL ORDER BY l.port, p.name');
      assert.deepEqual(rowObjects(result), [
        { name: 'fixture-daemon', port: 1 },
        { name: '(evil) x', port: 22 },
        { name: 'fixture-daemon', port: 22 },
        { name: '(evil) x', port: 53 },
        { name: 'fixture-daemon', port: 4444 },
        { name: '(evil) x', port: 8080 },
      ]);
      assert.deepEqual(result.tables.slice().sort(), ['listening_ports', 'processes']);
    } finally {
      engine.close();
    }
  });
});

describe('host table parsers', () => {
  it('parses /proc/PID/stat with hostile names, and refuses what is not a stat line', () => {
    const stat = parseStat('42 (a) b) (c) S 1 42 42 0 -1 0 0 0 0 0 10 20 0 0 20 0 1 0 99 0 7 0');
    assert.equal(stat?.name, 'a) b) (c');
    assert.equal(stat?.startTicks, 99);
    for (const bad of ['', 'x', '42 (a S 1', '42 (a) S one 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21', 'abc (a) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22']) assert.equal(parseStat(bad), undefined, bad);
  });

  it('formats IPv6 addresses as RFC 5952 asks', () => {
    const bytes = (hex: string) => Uint8Array.from(hex.match(/../g)!.map((h) => Number.parseInt(h, 16)));
    assert.equal(formatIpv6(bytes('00000000000000000000000000000000')), '::');
    assert.equal(formatIpv6(bytes('00000000000000000000000000000001')), '::1');
    assert.equal(formatIpv6(bytes('20010db8000000000001000000000001')), '2001:db8::1:0:0:1');
    assert.equal(formatIpv6(bytes('20010db8000100000000000000000000')), '2001:db8:1::');
    assert.equal(formatIpv6(bytes('20010db8000100010001000100010001')), '2001:db8:1:1:1:1:1:1');
    assert.equal(formatIpv6(bytes('00000000000000000000ffffc0000201')), '::ffff:192.0.2.1');
  });

  it('skips and counts socket table lines that do not parse', () => {
    const problems = { malformed: 0 };
    const rows = parseInetTable('header\n 0: 0100007F:0035 00000000:0000 0A 0:0 0:0 0 0 0 77\n 1: ZZ:0035 00000000:0000 0A 0 0 0 0 0 78\n 2:\n', 'tcp', 'ipv4', problems);
    assert.equal(rows.length, 1);
    assert.equal(rows[0]?.localAddress, '127.0.0.1');
    assert.equal(rows[0]?.localPort, 53);
    assert.equal(problems.malformed, 2);
    assert.equal(parseUnixTable('Num RefCount Protocol Flags Type St Inode Path\nnot a line\n', problems).length, 0);
    assert.equal(problems.malformed, 3);
  });

  it('keeps a unix socket path whole when it holds a newline or ends with a space', () => {
    const problems = { malformed: 0 };
    const table = [
      'Num       RefCount Protocol Flags    Type St Inode Path',
      '0000000000000000: 00000002 00000000 00010000 0001 01 3487261 /tmp/rev sock',
      'x',
      '0000000000000000: 00000002 00000000 00000000 0002 01 3487263 /tmp/trailing ',
      '0000000000000000: 00000002 00000000 00010000 0001 01 3487262 @abs',
      '',
    ].join('\n');
    const rows = parseUnixTable(table, problems);
    assert.deepEqual(rows.map((r) => r.path), ['/tmp/rev sock\nx', '/tmp/trailing ', '@abs']);
    assert.equal(rows[0]?.state, 'LISTEN');
    assert.equal(problems.malformed, 0);
  });

  it('tells password states and schemes apart without keeping the hash', () => {
    assert.deepEqual(['', '!', '!!', '*', '!*', '$6$s$h', '!$6$s$h', 'abcdefghijklm', 'x'].map(passwordStatus), ['empty', 'locked', 'locked', 'disabled', 'locked', 'set', 'locked', 'set', 'disabled']);
    assert.deepEqual(['$2b$10$x', '$5$x', 'abcdefghijklm', '*', ''].map(passwordAlgorithm), ['bcrypt', 'sha256', 'des', undefined, undefined]);
  });

  it('parses sudoers continuations, comments and user ids, and reports what is not a rule', () => {
    const { entries, malformed } = parseSudoers('a ALL=(b) NOPASSWD: /x \\\n  /y # c\n#2000 h = (ALL) ALL\n#just a comment\n@include other\nnonsense\nDefaults>root !set_logname\n');
    assert.deepEqual(entries.map((e) => [e.line, e.type, e.principal, e.commands]), [
      [1, 'rule', 'a', '/x /y'],
      [3, 'rule', '#2000', 'ALL'],
      [5, 'include', undefined, undefined],
      [7, 'defaults', undefined, undefined],
    ]);
    assert.deepEqual(malformed, [6]);
  });

  it('parses modules, mountinfo and os-release lines, refusing odd ones', () => {
    assert.equal(parseModuleLine('a 1 0 - Live 0x0 (P)')?.taints, 'P');
    assert.equal(parseModuleLine('a one 0 - Live 0x0'), undefined);
    assert.equal(parseMountInfoLine('1 2 3:4 / /x rw - ext4 /dev/x rw')?.path, '/x');
    assert.equal(parseMountInfoLine('1 2 3:4 / /x rw ext4 /dev/x rw'), undefined, 'no separator');
    const { values, malformed } = parseOsRelease('A="x \\"y\\""\nB=\'z\'\nbad\n');
    assert.equal(values.get('A'), 'x "y"');
    assert.equal(values.get('B'), 'z');
    assert.equal(malformed, 1);
  });

  it('round-trips utmp records and rejects ones that are not', () => {
    const record = encodeUtmpRecord({ type: UtmpType.userProcess, pid: 7, line: 'pts/9', user: 'u', host: 'h', time: 5, address: '10.1.2.3' });
    assert.equal(record.length, 384);
    const parsed = parseUtmp(Buffer.concat([record, Buffer.alloc(384), Buffer.alloc(5)]));
    assert.equal(parsed.records.length, 1, 'empty records are not rows');
    assert.deepEqual({ ...parsed.records[0] }, { type: 7, kind: 'login', pid: 7, line: 'pts/9', id: '', user: 'u', host: 'h', session: 0, time: 5, address: '10.1.2.3' });
    assert.equal(parsed.trailing, 5);
    const bad = Buffer.from(record);
    bad.writeInt32LE(2_000_000, 344); // microseconds out of range
    assert.equal(parseUtmp(bad).malformed, 1);
  });

  it('names interface flags', () => {
    assert.equal(flagNames(0x1143), 'UP,BROADCAST,RUNNING,PROMISC,MULTICAST');
  });
});

describe('host tables on this host', () => {
  it('reads every line of /proc/net/tcp, which the kernel gives a page at a time: 60 connections, all found', async () => {
    const server = net.createServer((socket) => socket.on('error', () => undefined));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    const clients = await Promise.all(
      Array.from({ length: 60 }, () => new Promise<net.Socket>((resolve, reject) => {
        const socket = net.connect(port, '127.0.0.1', () => resolve(socket));
        socket.on('error', reject);
      })),
    );
    try {
      const context = new QueryContext({ root: '/', maxFileBytes: 64 * 1024 });
      const rows = await table('connections').generate(context.forTable('connections'));
      const clientSide = rows.filter((r) => r['remote_port'] === port);
      const serverSide = rows.filter((r) => r['local_port'] === port && r['remote_port'] !== 0);
      assert.equal(clientSide.length, 60, `${rows.length} connections in all`);
      assert.equal(serverSide.length, 60, 'the accepted ends too');
      assert.ok(clientSide.every((r) => r['pid'] === process.pid), 'joined to this process');
    } finally {
      for (const c of clients) c.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
