import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Row, TableSpec } from '../../src/agent/inventory/table.js';
import {
  judgePackageName,
  KNOWN_BAD_FILE,
  loadNameLists,
  normalizePackageName,
  packageFindings,
  parseNameList,
  POPULAR_FILE,
} from '../../src/agent/inventory/tables/findings.js';
import { fromFileName, jarPackages, log4jVerdict, parseManifest } from '../../src/agent/inventory/tables/packages-jar.js';
import { bufferSource, readCentralDirectory, readEntry, ZipError } from '../../src/agent/inventory/tables/packages-jar-zip.js';
import { npmPackages } from '../../src/agent/inventory/tables/packages-npm.js';
import { parseMetadataHeaders, pythonPackages } from '../../src/agent/inventory/tables/packages-python.js';
import { rpmPackages } from '../../src/agent/inventory/tables/packages-rpm.js';
import { RpmHeader, RpmTag } from '../../src/agent/inventory/tables/packages-rpm-header.js';
import { glob } from '../../src/agent/inventory/tables/software-files.js';
import {
  assertRowsMatchSpec,
  buildRoot,
  log4jCore,
  removeRoot,
  rpmHeader,
  rpmPackage,
  testContext,
  warningFor,
  writeRpmDatabase,
  zip,
  type TestContext,
} from '../fixtures/inventory/software/fixture.js';

let root: string;
before(() => {
  root = buildRoot();
});
after(() => removeRoot(root));

async function run(spec: TableSpec, at = root): Promise<{ rows: Row[]; ctx: TestContext }> {
  const ctx = testContext(at);
  const rows = await spec.generate(ctx);
  assertRowsMatchSpec(spec, rows);
  return { rows, ctx };
}

function scratchRoot(): string {
  return mkdtempSync(path.join(tmpdir(), 'hades-inv-packages-'));
}

describe('rpm_packages', () => {
  it('reads package headers from rpmdb.sqlite, skipping a damaged one with a warning', async () => {
    const { rows, ctx } = await run(rpmPackages);
    assert.deepEqual(rows, [
      {
        name: 'openssh-server',
        version: '8.7p1',
        release: '38.el9',
        epoch: 0,
        arch: 'x86_64',
        install_time: 1_700_000_000,
        size: 1_234_567,
        vendor: 'Red Hat, Inc.',
        summary: 'An open source SSH server daemon',
      },
      {
        name: 'gpg-pubkey',
        version: 'fd431d51',
        release: '4ae0493b',
        epoch: null,
        arch: null,
        install_time: 1_700_000_100,
        size: 0,
        vendor: 'Red Hat, Inc.',
        summary: 'gpg(Red Hat, Inc. (release key 2) <security@redhat.com>)',
      },
    ]);
    const damaged = warningFor(ctx, 'HADES_ERR_INVENTORY_MALFORMED', '/var/lib/rpm/rpmdb.sqlite');
    assert.match(damaged?.message ?? '', /package 3 skipped: damaged header/);
  });

  it('reads a database under /usr/lib/sysimage/rpm once even when /var/lib/rpm links to it', async () => {
    const at = scratchRoot();
    try {
      writeRpmDatabase(path.join(at, 'usr/lib/sysimage/rpm/rpmdb.sqlite'), [rpmPackage({ name: 'bash', version: '5.1.8', release: '9.el9', arch: 'x86_64', installTime: 1, size: 2, vendor: 'Rocky', summary: 'The GNU Bourne Again shell' })]);
      mkdirSync(path.join(at, 'var/lib'), { recursive: true });
      symlinkSync('../../usr/lib/sysimage/rpm', path.join(at, 'var/lib/rpm'));
      const { rows, ctx } = await run(rpmPackages, at);
      assert.deepEqual(
        rows.map((r) => r['name']),
        ['bash'],
      );
      assert.deepEqual(ctx.warnings, []);
    } finally {
      rmSync(at, { recursive: true, force: true });
    }
  });

  it('warns that a BerkeleyDB database is not read', async () => {
    const at = scratchRoot();
    try {
      mkdirSync(path.join(at, 'var/lib/rpm'), { recursive: true });
      writeFileSync(path.join(at, 'var/lib/rpm/Packages'), Buffer.alloc(4096));
      const { rows, ctx } = await run(rpmPackages, at);
      assert.deepEqual(rows, []);
      assert.match(warningFor(ctx, 'HADES_ERR_INVENTORY_SKIPPED', '/var/lib/rpm/Packages')?.message ?? '', /BerkeleyDB/);
    } finally {
      rmSync(at, { recursive: true, force: true });
    }
  });

  it('refuses headers whose counts or offsets point outside the blob', () => {
    const good = rpmHeader([{ tag: RpmTag.NAME, string: 'x' }]);
    assert.ok(RpmHeader.parse(good) instanceof RpmHeader);
    assert.equal(typeof RpmHeader.parse(good.subarray(0, good.length - 1)), 'string', 'truncated store');
    assert.equal(typeof RpmHeader.parse(Buffer.alloc(4)), 'string', 'too short');
    const badOffset = Buffer.from(good);
    badOffset.writeUInt32BE(1000, 8 + 8);
    assert.match(RpmHeader.parse(badOffset) as string, /offset 1000 outside/);
    const badType = Buffer.from(good);
    badType.writeUInt32BE(42, 8 + 4);
    assert.match(RpmHeader.parse(badType) as string, /unknown type 42/);
    // A string without its terminating NUL is absent, not read past the store.
    const unterminated = Buffer.from(good);
    unterminated[unterminated.length - 1] = 0x41;
    const header = RpmHeader.parse(unterminated);
    assert.ok(header instanceof RpmHeader);
    assert.equal(header.string(RpmTag.NAME), undefined);
    // The magic of package files is accepted too.
    const magic = Buffer.concat([Buffer.from([0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0]), good]);
    assert.equal((RpmHeader.parse(magic) as RpmHeader).string(RpmTag.NAME), 'x');
  });

  it('survives random bytes (a small fuzz)', () => {
    let seed = 7;
    const random = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const base = rpmPackage({ name: 'n', version: '1', release: '1', installTime: 1, size: 1, vendor: 'v', summary: 's' });
    for (let i = 0; i < 2000; i++) {
      const blob = Buffer.from(base);
      for (let j = 0; j < 4; j++) blob[Math.floor(random() * blob.length)] = Math.floor(random() * 256);
      const header = RpmHeader.parse(blob.subarray(0, Math.floor(random() * blob.length) + 1));
      if (!(header instanceof RpmHeader)) continue;
      for (const tag of Object.values(RpmTag)) {
        header.string(tag);
        header.integer(tag);
      }
    }
  });
});

describe('python_packages', () => {
  it('finds system, user and virtualenv distributions from dist-info and egg-info', async () => {
    const { rows, ctx } = await run(pythonPackages);
    assert.deepEqual(
      rows.map((r) => [r['name'], r['version'], r['kind'], r['location']]),
      [
        ['PyYAML', '6.0', 'system', '/usr/lib/python3/dist-packages'],
        ['requests', '2.31.0', 'system', '/usr/lib/python3/dist-packages'],
        ['reqeusts', '2.31.0', 'system', '/usr/local/lib/python3.11/dist-packages'],
        ['colourama', '0.1.1', 'user', '/home/alice/.local/lib/python3.11/site-packages'],
        ['jeIlyfish', '0.6.1', 'venv', '/opt/app/venv/lib/python3.11/site-packages'],
        ['nameless', '1.0', 'venv', '/opt/app/venv/lib/python3.11/site-packages'],
      ],
    );
    const requests = rows.find((r) => r['name'] === 'requests');
    assert.deepEqual([requests?.['summary'], requests?.['path']], ['Python HTTP for Humans.', '/usr/lib/python3/dist-packages/requests-2.31.0.dist-info']);
    assert.equal(rows.find((r) => r['name'] === 'PyYAML')?.['path'], '/usr/lib/python3/dist-packages/PyYAML-6.0.egg-info', 'an egg-info file is its own PKG-INFO');
    assert.ok(!rows.some((r) => r['name'] === 'hidden'), 'a venv deeper than the search bound is not found');
    assert.ok(warningFor(ctx, 'HADES_ERR_INVENTORY_MALFORMED', 'nameless-1.0.dist-info/METADATA'));
    assert.ok(warningFor(ctx, 'HADES_ERR_INVENTORY_LOOP', '/opt/loop/self'), 'the folder linking to itself is a loop, warned once and not followed');
  });

  it('reads only the headers of METADATA', () => {
    const headers = parseMetadataHeaders('Name: a\nVersion: 1\nSummary: one\n  two\n\nName: body\n');
    assert.deepEqual([...headers], [
      ['name', 'a'],
      ['version', '1'],
      ['summary', 'one two'],
    ]);
  });
});

describe('npm_packages', () => {
  it('lists global packages, scoped ones, and their dependencies one level down', async () => {
    const { rows, ctx } = await run(npmPackages);
    assert.deepEqual(
      rows.map((r) => [r['name'], r['version'], r['parent'], r['path']]),
      [
        ['@acme/tool', '2.0.0', null, '/usr/lib/node_modules/@acme/tool'],
        ['dep', '0.1.0', '@acme/tool', '/usr/lib/node_modules/@acme/tool/node_modules/dep'],
        ['left-pad', '1.3.0', null, '/usr/lib/node_modules/left-pad'],
      ],
    );
    assert.ok(warningFor(ctx, 'HADES_ERR_INVENTORY_MALFORMED', '/usr/lib/node_modules/broken/package.json'));
  });
});

describe('jar_packages', () => {
  let rows: Row[];
  let ctx: TestContext;
  before(async () => {
    ({ rows, ctx } = await run(jarPackages));
  });
  const at = (p: string): Row | undefined => rows.find((r) => r['path'] === p);

  it('identifies archives by pom.properties, manifest or file name', () => {
    assert.deepEqual(at('/opt/app/lib/log4j-core-2.14.1.jar'), {
      name: 'log4j-core',
      version: '2.14.1',
      group_id: 'org.apache.logging.log4j',
      path: '/opt/app/lib/log4j-core-2.14.1.jar',
      file: '/opt/app/lib/log4j-core-2.14.1.jar',
      source: 'pom.properties',
      size: readFileSync(path.join(root, 'opt/app/lib/log4j-core-2.14.1.jar')).length,
      sha256: createHash('sha256').update(readFileSync(path.join(root, 'opt/app/lib/log4j-core-2.14.1.jar'))).digest('hex'),
      vulnerable: 1,
      reason: 'log4j-core 2.14.1: CVE-2021-44228 (Log4Shell, remote code execution through JNDI lookups) and CVE-2021-45046',
    });
    const thing = at('/opt/app/lib/thing.jar');
    assert.deepEqual([thing?.['name'], thing?.['version'], thing?.['source']], ['org.example.thing', '4.5.6', 'manifest']);
    const shop = at('/srv/web/shop.war');
    assert.deepEqual([shop?.['name'], shop?.['version'], shop?.['source']], ['shop', '3.1', 'manifest']);
    const beta = at('/opt/app/lib/log4j-core-2.0-beta9.jar');
    assert.deepEqual([beta?.['name'], beta?.['version'], beta?.['source'], beta?.['vulnerable']], ['log4j-core', '2.0-beta9', 'file name', 1]);
  });

  it('flags the vulnerable log4j-core range, and says when the JNDI lookup class was removed', () => {
    const flag = (p: string): [unknown, unknown] => [at(p)?.['vulnerable'], at(p)?.['reason']];
    assert.deepEqual(flag('/opt/app/lib/log4j-core-2.17.1.jar'), [0, null]);
    assert.deepEqual(flag('/opt/app/lib/log4j-core-2.12.2.jar'), [0, null]);
    assert.deepEqual(flag('/opt/app/lib/log4j-core-2.0-beta8.jar'), [0, null]);
    const mitigated = flag('/opt/app/lib/log4j-core-2.15.0.jar');
    assert.equal(mitigated[0], 0);
    assert.match(String(mitigated[1]), /CVE-2021-45046.*mitigated: JndiLookup.class was removed/);
  });

  it('looks inside wars (nested jars) and fat jars (shaded artifacts, a launch script before the zip)', () => {
    const nested = at('/srv/web/shop.war!/WEB-INF/lib/log4j-core-2.16.0.jar');
    assert.deepEqual([nested?.['file'], nested?.['vulnerable']], ['/srv/web/shop.war', 1]);
    assert.match(String(nested?.['reason']), /CVE-2021-45105/);
    assert.match(String(nested?.['sha256']), /^[0-9a-f]{64}$/);
    assert.equal(nested?.['sha256'], createHash('sha256').update(log4jCore('2.16.0')).digest('hex'), 'the nested jar\'s own hash');
    const text = at('/srv/web/shop.war!/WEB-INF/lib/commons-text-1.9.jar');
    assert.deepEqual([text?.['group_id'], text?.['name'], text?.['version']], ['org.apache.commons', 'commons-text', '1.9']);
    assert.match(warningFor(ctx, 'HADES_ERR_INVENTORY_FILE_TOO_BIG', '/srv/web/shop.war')?.message ?? '', /huge-1\.0\.jar/);

    const fat = at('/opt/app/lib/fat.jar');
    assert.deepEqual([fat?.['group_id'], fat?.['name'], fat?.['version'], fat?.['vulnerable']], ['com.acme', 'fat', '1.0.0', 0]);
    const shaded = at('/opt/app/lib/fat.jar!/META-INF/maven/org.apache.logging.log4j/log4j-core/pom.properties');
    assert.deepEqual([shaded?.['name'], shaded?.['version'], shaded?.['vulnerable'], shaded?.['file']], ['log4j-core', '2.10.0', 1, '/opt/app/lib/fat.jar']);
  });

  it('reads a linked archive once, and warns about a damaged one and a link loop', () => {
    assert.equal(rows.filter((r) => String(r['path']).startsWith('/usr/share/java/commons-io')).length, 1);
    assert.match(warningFor(ctx, 'HADES_ERR_INVENTORY_MALFORMED', '/opt/app/lib/corrupt.jar')?.message ?? '', /end of central directory/);
    assert.ok(warningFor(ctx, 'HADES_ERR_INVENTORY_LOOP', '/opt/loop/a.jar'));
    assert.ok(warningFor(ctx, 'HADES_ERR_INVENTORY_LOOP', '/opt/loop/self'));
  });

  it('flags exactly the documented log4j-core versions', () => {
    const flagged = (v: string): boolean => log4jVerdict(v) !== undefined;
    for (const v of ['2.0-beta9', '2.0-rc1', '2.0', '2.3', '2.3.0', '2.11.2', '2.12.0', '2.12.1', '2.14.1', '2.15.0', '2.16.0']) assert.ok(flagged(v), v);
    for (const v of ['2.0-alpha1', '2.0-beta8', '2.3.1', '2.3.2', '2.12.2', '2.12.4', '2.17.0', '2.17.1', '2.24.3', '1.2.17', 'garbage']) assert.ok(!flagged(v), v);
  });

  it('reads names from file names and manifests', () => {
    assert.deepEqual(fromFileName('commons-lang3-3.12.0.jar'), { name: 'commons-lang3', version: '3.12.0', group: null, source: 'file name' });
    assert.deepEqual(fromFileName('app-1.0-SNAPSHOT.war'), { name: 'app', version: '1.0-SNAPSHOT', group: null, source: 'file name' });
    assert.deepEqual(fromFileName('gettext.jar'), { name: 'gettext', version: null, group: null, source: 'file name' });
    assert.equal(parseManifest('Manifest-Version: 1.0\r\nImplementation-Title: a very long title that wra\r\n ps\r\n\r\nName: x\r\nImplementation-Title: no\r\n').get('Implementation-Title'), 'a very long title that wraps');
  });
});

describe('the zip reader', () => {
  it('refuses what is not a zip, and entries over the limit', async () => {
    assert.ok((await readCentralDirectory(bufferSource(Buffer.from('nope')), 1 << 20)) instanceof ZipError);
    assert.ok((await readCentralDirectory(bufferSource(Buffer.alloc(100)), 1 << 20)) instanceof ZipError);
    const archive = zip([{ name: 'a.txt', data: 'x'.repeat(1000), deflate: true }]);
    const entries = await readCentralDirectory(bufferSource(archive), 1 << 20);
    assert.ok(Array.isArray(entries));
    const [entry] = entries;
    assert.ok(entry);
    const data = await readEntry(bufferSource(archive), entry, 2000);
    assert.ok(Buffer.isBuffer(data));
    assert.equal(data.toString(), 'x'.repeat(1000));
    assert.ok((await readEntry(bufferSource(archive), entry, 999)) instanceof ZipError);
    assert.ok((await readCentralDirectory(bufferSource(archive), 10)) instanceof ZipError, 'a directory over the limit');
  });

  it('survives damaged archives (a small fuzz)', async () => {
    let seed = 11;
    const random = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const base = log4jCore('2.14.1');
    for (let i = 0; i < 500; i++) {
      const bytes = Buffer.from(base);
      for (let j = 0; j < 6; j++) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
      const source = bufferSource(bytes);
      const entries = await readCentralDirectory(source, 1 << 20);
      if (entries instanceof ZipError) continue;
      for (const entry of entries) await readEntry(source, entry, 1 << 20);
    }
  });
});

describe('package_findings', () => {
  it('reports typosquats and known-bad packages among the installed Python packages', async () => {
    const { rows } = await run(packageFindings);
    assert.deepEqual(rows, [
      { name: 'reqeusts', version: '2.31.0', ecosystem: 'python', path: '/usr/local/lib/python3.11/dist-packages/reqeusts-2.31.0.dist-info', finding: 'typosquat', similar_to: 'requests', distance: 2 },
      { name: 'colourama', version: '0.1.1', ecosystem: 'python', path: '/home/alice/.local/lib/python3.11/site-packages/colourama-0.1.1.dist-info', finding: 'known_bad', similar_to: 'colorama', distance: 1 },
      { name: 'jeIlyfish', version: '0.6.1', ecosystem: 'python', path: '/opt/app/venv/lib/python3.11/site-packages/jeIlyfish-0.6.1.dist-info', finding: 'known_bad', similar_to: null, distance: null },
    ]);
  });

  it('judges names as PEP 503 normalises them, and leaves popular and legitimate near names alone', async () => {
    const lists = await loadNameLists();
    assert.equal(normalizePackageName('Foo__Bar.baz-Qux'), 'foo-bar-baz-qux');
    assert.equal(judgePackageName('Requests', lists), undefined);
    assert.equal(judgePackageName('python_dateutil', lists), undefined);
    assert.equal(judgePackageName('scapy', lists), undefined, 'a known legitimate near name of scipy');
    assert.equal(judgePackageName('pytest-env', lists), undefined, 'pytest plugins differ only after the shared pytest- prefix');
    assert.equal(judgePackageName('six', lists), undefined);
    assert.equal(judgePackageName('gradio', lists), undefined, 'two edits are too many for a six-letter name');
    assert.deepEqual(judgePackageName('python3-dateutil', lists), { finding: 'known_bad', similarTo: 'python-dateutil', distance: 1 });
    assert.deepEqual(judgePackageName('crytography', lists), { finding: 'typosquat', similarTo: 'cryptography', distance: 1 });
    assert.deepEqual(judgePackageName('numpi', lists), { finding: 'typosquat', similarTo: 'numpy', distance: 1 });
    assert.deepEqual(judgePackageName('python-dateutils', lists), { finding: 'typosquat', similarTo: 'python-dateutil', distance: 1 });
  });

  it('ships its lists as data files, commented, normalised, without duplicates, found from the module', async () => {
    for (const file of [POPULAR_FILE, KNOWN_BAD_FILE]) {
      const text = readFileSync(file, 'utf8');
      assert.match(text, /^# .+\n#/, `${file} starts with a comment saying what it is`);
      const raw = text.split('\n').map((l) => l.replace(/#.*$/, '').trim()).filter(Boolean);
      assert.deepEqual(raw, parseNameList(text), `${file}: names are written normalised`);
      assert.equal(new Set(raw).size, raw.length, `${file}: no duplicates`);
    }
    const lists = await loadNameLists();
    assert.ok(lists.popular.length >= 300);
    for (const name of ['requests', 'numpy', 'boto3', 'urllib3']) assert.ok(lists.popular.includes(name), name);
    for (const name of ['colourama', 'jeilyfish', 'python3-dateutil', 'request']) assert.ok(lists.knownBad.has(name), name);
    for (const bad of lists.knownBad) assert.ok(!lists.popular.includes(bad), `${bad} is both popular and known bad`);
  });
});

describe('glob', () => {
  it('expands wildcards segment by segment, hidden names only when asked', async () => {
    const ctx = testContext(root);
    assert.deepEqual(await glob(ctx, '/home/*/.bashrc'), ['/home/alice/.bashrc']);
    assert.deepEqual(await glob(ctx, '/usr/lib/python3*/dist-packages'), ['/usr/lib/python3/dist-packages']);
    assert.deepEqual(await glob(ctx, '/etc/cron.d/*'), ['/etc/cron.d/backup', '/etc/cron.d/backup~', '/etc/cron.d/huge']);
    assert.deepEqual(await glob(ctx, '/etc/cron.d/.h*'), ['/etc/cron.d/.hidden']);
    assert.deepEqual(await glob(ctx, '/etc/ssh/sshd_config.d/[12]0-*.conf'), ['/etc/ssh/sshd_config.d/10-first.conf', '/etc/ssh/sshd_config.d/20-loop.conf']);
  });
});
