/** deb_packages: the packages dpkg knows, from its status database. */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { CollectContext, Row, TableSpec } from '../table.js';
import { onDisk, reportFsError, statPath, Warn } from './software-files.js';

const STATUS = '/var/lib/dpkg/status';

/** A field line ("Package: bash") or a continuation line (starting with a space or tab). */
const FIELD = /^([A-Za-z0-9][A-Za-z0-9_-]*):(?:[ \t]*)(.*)$/;

interface Stanza {
  readonly fields: Map<string, string>;
  readonly line: number;
  /** Why the stanza is skipped, when it is broken. */
  broken?: string;
}

function toRow(stanza: Stanza): Row | string {
  const f = stanza.fields;
  const name = f.get('package');
  if (!name) return 'no Package field';
  const version = f.get('version');
  const status = f.get('status');
  if (status === undefined) return `package ${name}: no Status field`;
  const size = f.get('installed-size');
  const sizeKiB = size !== undefined && /^\d+$/.test(size.trim()) ? Number(size.trim()) : null;
  // dpkg's rule: without a Source field the source package has the binary package's name.
  const source = (f.get('source') ?? name).split(' ')[0] ?? name;
  return {
    name,
    version: version ?? null,
    arch: f.get('architecture') ?? null,
    status,
    source,
    size: sizeKiB,
    maintainer: f.get('maintainer') ?? null,
    section: f.get('section') ?? null,
  };
}

/**
 * Parses a dpkg status file (RFC 822-like stanzas separated by blank lines). A stanza with a line
 * that is neither a field nor a continuation, or without Package or Status, is skipped with a
 * warning; the others are kept. The file is streamed: its size is not limited.
 */
export async function readDpkgStatus(ctx: CollectContext, hostFile = STATUS): Promise<Row[]> {
  const stats = await statPath(ctx, hostFile, 'dpkg status skipped');
  if (!stats) return [];
  if (!stats.isFile()) {
    ctx.warn(Warn.unreadable, 'dpkg status skipped: not a regular file', hostFile);
    return [];
  }
  const rows: Row[] = [];
  let stanza: Stanza | undefined;
  let lastKey: string | undefined;
  const finish = (): void => {
    if (!stanza) return;
    const row = stanza.broken ?? toRow(stanza);
    if (typeof row === 'string') ctx.warn(Warn.malformed, `stanza at line ${stanza.line} skipped: ${row}`, hostFile);
    else rows.push(row);
    stanza = undefined;
    lastKey = undefined;
  };
  let lineNumber = 0;
  try {
    const input = createReadStream(onDisk(ctx, hostFile), { encoding: 'utf8', highWaterMark: 64 * 1024 });
    const reader = createInterface({ input, crlfDelay: Infinity });
    for await (const line of reader) {
      lineNumber++;
      if (line.trim() === '') {
        finish();
        continue;
      }
      stanza ??= { fields: new Map(), line: lineNumber };
      if (stanza.broken) continue;
      if (line.startsWith(' ') || line.startsWith('\t')) {
        if (lastKey === undefined) stanza.broken = `line ${lineNumber}: a continuation line with no field before it`;
        // Continuation lines (long descriptions, conffiles) are not columns: only their presence is checked.
        continue;
      }
      const match = FIELD.exec(line);
      if (!match) {
        stanza.broken = `line ${lineNumber} is not "Field: value"`;
        continue;
      }
      lastKey = (match[1] ?? '').toLowerCase();
      stanza.fields.set(lastKey, (match[2] ?? '').trim());
      if (ctx.signal?.aborted) break;
    }
    finish();
  } catch (error) {
    reportFsError(ctx, error, hostFile, `dpkg status read stopped at line ${lineNumber}`);
  }
  return rows;
}

export const debPackages: TableSpec = {
  name: 'deb_packages',
  description: 'Debian packages known to dpkg (/var/lib/dpkg/status), installed or in another state (removed with configuration files kept, half-installed).',
  columns: [
    { name: 'name', type: 'TEXT', description: 'Package name.' },
    { name: 'version', type: 'TEXT', description: 'Version, with epoch and Debian revision (e.g. 1:9.2p1-2+deb12u3).', nullable: true },
    { name: 'arch', type: 'TEXT', description: 'Architecture (amd64, arm64, all).', nullable: true },
    { name: 'status', type: 'TEXT', description: 'dpkg status: want, error flag and state, e.g. "install ok installed" or "deinstall ok config-files".' },
    { name: 'source', type: 'TEXT', description: 'Source package (the package name when the Source field is absent).' },
    { name: 'size', type: 'INTEGER', description: 'Installed size in KiB (Installed-Size).', nullable: true },
    { name: 'maintainer', type: 'TEXT', description: 'Maintainer, name and address.', nullable: true },
    { name: 'section', type: 'TEXT', description: 'Archive section (admin, net, libs...).', nullable: true },
  ],
  examples: [
    { description: 'Installed packages, largest first.', sql: "SELECT name, version, size FROM deb_packages WHERE status LIKE '% installed' ORDER BY size DESC LIMIT 10" },
    { description: 'Packages removed but whose configuration files remain.', sql: "SELECT name, version FROM deb_packages WHERE status LIKE '% config-files'" },
  ],
  generate: (ctx) => readDpkgStatus(ctx),
};
