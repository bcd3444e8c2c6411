/** rpm_packages: the packages of the rpm database (Fedora, RHEL and derivatives, SUSE). */
import type { CollectContext, Row, TableSpec } from '../table.js';
import { RpmHeader, RpmTag } from './packages-rpm-header.js';
import { onDisk, statPath, Warn } from './software-files.js';

/** Where rpm keeps its database: /var/lib/rpm, or /usr/lib/sysimage/rpm since rpm 4.16 on some distributions. */
const DB_FOLDERS = ['/var/lib/rpm', '/usr/lib/sysimage/rpm'];
/** The older formats, which this table does not read: BerkeleyDB (rpm < 4.16) and SUSE's NDB. */
const OTHER_FORMATS = [
  { file: 'Packages', format: 'BerkeleyDB' },
  { file: 'Packages.db', format: 'NDB' },
];

interface SqliteRow {
  hnum: number;
  blob: Uint8Array;
}

async function readSqliteDb(ctx: CollectContext, hostFile: string): Promise<Row[]> {
  const { default: Database } = await import('better-sqlite3');
  const file = onDisk(ctx, hostFile);
  // A Buffer would be taken for a database's content: the rpm database paths are all UTF-8 names.
  if (typeof file !== 'string') return [];
  let db;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch (error) {
    ctx.warn(Warn.unreadable, `rpm database not opened: ${error instanceof Error ? error.message : String(error)}`, hostFile);
    return [];
  }
  const rows: Row[] = [];
  try {
    const packages = db.prepare('SELECT hnum, blob FROM Packages ORDER BY hnum').iterate() as IterableIterator<SqliteRow>;
    for (const { hnum, blob } of packages) {
      if (ctx.signal?.aborted) break;
      const header = blob instanceof Uint8Array ? RpmHeader.parse(blob) : 'not a blob';
      if (typeof header === 'string') {
        ctx.warn(Warn.malformed, `package ${hnum} skipped: damaged header (${header})`, hostFile);
        continue;
      }
      const name = header.string(RpmTag.NAME);
      if (name === undefined) {
        ctx.warn(Warn.malformed, `package ${hnum} skipped: its header has no name`, hostFile);
        continue;
      }
      rows.push({
        name,
        version: header.string(RpmTag.VERSION) ?? null,
        release: header.string(RpmTag.RELEASE) ?? null,
        epoch: header.integer(RpmTag.EPOCH) ?? null,
        arch: header.string(RpmTag.ARCH) ?? null,
        install_time: header.integer(RpmTag.INSTALLTIME) ?? null,
        size: header.integer(RpmTag.LONGSIZE) ?? header.integer(RpmTag.SIZE) ?? null,
        vendor: header.string(RpmTag.VENDOR) ?? null,
        summary: header.string(RpmTag.SUMMARY) ?? null,
      });
    }
  } catch (error) {
    ctx.warn(Warn.malformed, `rpm database not read: ${error instanceof Error ? error.message : String(error)}`, hostFile);
  } finally {
    db.close();
  }
  return rows;
}

export async function readRpmDatabases(ctx: CollectContext): Promise<Row[]> {
  const rows: Row[] = [];
  const seen = new Set<string>();
  let found = false;
  for (const folder of DB_FOLDERS) {
    const sqlite = `${folder}/rpmdb.sqlite`;
    const stats = await statPath(ctx, sqlite, 'rpm database skipped');
    if (stats) {
      found = true;
      // /var/lib/rpm is often a link to /usr/lib/sysimage/rpm: read each database once.
      const id = `${stats.dev}:${stats.ino}`;
      if (seen.has(id)) continue;
      seen.add(id);
      if (!stats.isFile()) ctx.warn(Warn.unreadable, 'rpm database skipped: not a regular file', sqlite);
      else rows.push(...(await readSqliteDb(ctx, sqlite)));
    }
  }
  if (found) return rows;
  for (const folder of DB_FOLDERS) {
    for (const { file, format } of OTHER_FORMATS) {
      const stats = await statPath(ctx, `${folder}/${file}`, 'rpm database skipped');
      if (stats?.isFile()) {
        ctx.warn(Warn.unsupported, `rpm database in the ${format} format, which this table does not read (rpm 4.16 and later use rpmdb.sqlite; \`rpmdb --rebuilddb\` converts where the distribution supports it)`, `${folder}/${file}`);
        return rows;
      }
    }
  }
  return rows;
}

export const rpmPackages: TableSpec = {
  name: 'rpm_packages',
  description: 'Packages of the rpm database (rpmdb.sqlite in /var/lib/rpm or /usr/lib/sysimage/rpm), read directly from its package headers. Older BerkeleyDB and NDB databases are reported with a warning, not read.',
  columns: [
    { name: 'name', type: 'TEXT', description: 'Package name (gpg-pubkey rows are the imported signing keys).' },
    { name: 'version', type: 'TEXT', description: 'Version.', nullable: true },
    { name: 'release', type: 'TEXT', description: 'Release, e.g. 1.el9.', nullable: true },
    { name: 'epoch', type: 'INTEGER', description: 'Epoch; NULL when the package has none.', nullable: true },
    { name: 'arch', type: 'TEXT', description: 'Architecture (x86_64, noarch).', nullable: true },
    { name: 'install_time', type: 'INTEGER', description: 'When it was installed (Unix seconds).', nullable: true },
    { name: 'size', type: 'INTEGER', description: 'Installed size in bytes.', nullable: true },
    { name: 'vendor', type: 'TEXT', description: 'Vendor.', nullable: true },
    { name: 'summary', type: 'TEXT', description: 'One-line summary.', nullable: true },
  ],
  examples: [
    { description: 'The most recently installed packages.', sql: 'SELECT name, version, release, datetime(install_time, \'unixepoch\') AS installed FROM rpm_packages ORDER BY install_time DESC LIMIT 10' },
    { description: 'Packages from a vendor other than the distribution.', sql: "SELECT name, version, vendor FROM rpm_packages WHERE vendor NOT LIKE 'Red Hat%' AND name != 'gpg-pubkey'" },
  ],
  generate: (ctx) => readRpmDatabases(ctx),
};
