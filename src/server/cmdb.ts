/**
 * CMDB enrichment: host metadata (owner, business unit, environment, other columns as tags)
 * from a CSV file with a header row or a JSON array of objects, matched by host name or by one
 * of the host's addresses. The file is read again when it changes (checked every 2 s); a file
 * that fails to parse is reported (HADES_ERR_CMDB) and the last good content stays in use.
 */
import { isUtf8 } from 'node:buffer';
import { statSync } from 'node:fs';
import { isIP, SocketAddress } from 'node:net';
import { parse, type InfoRecord } from 'csv-parse/sync';
import { HadesError, toHadesError } from '../common/errors.js';
import type { Logger } from '../runtime/log.js';
import { fileVersion } from '../runtime/file-version.js';
import { readRegularBytes } from '../runtime/regular-file.js';

export interface HostMetadata {
  readonly owner?: string;
  readonly business_unit?: string;
  readonly environment?: string;
  readonly tags?: Readonly<Record<string, string>>;
}

const KEY_COLUMNS = new Set(['hostname', 'host', 'address', 'ip']);
const KNOWN = new Set(['owner', 'business_unit', 'environment']);
const MAX_BYTES = 64 * 1024 * 1024;
const CHECK_MS = 2000;

/** Parses CMDB text; throws HADES_ERR_CMDB with the position of the problem. */
export function parseCmdb(text: string, file: string): { byName: Map<string, HostMetadata>; byAddress: Map<string, HostMetadata> } {
  let rows: Record<string, unknown>[];
  /** Where each row is, as a message says it: its line in a CSV file, its place in a JSON array. */
  let where = (index: number) => `entry ${index + 1}`;
  // A byte order mark (editors on Windows write one) is not part of the content.
  const content = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const trimmed = content.trimStart();
  if (trimmed.startsWith('{')) throw new HadesError('HADES_ERR_CMDB', `${file}: a JSON CMDB is an array of objects ([{"hostname": ...}, ...]), not one object`);
  if (trimmed.startsWith('[')) {
    try {
      rows = JSON.parse(content) as Record<string, unknown>[];
    } catch (error) {
      throw new HadesError('HADES_ERR_CMDB', `${file}: not valid JSON: ${(error as Error).message}`);
    }
    if (!Array.isArray(rows) || rows.some((r) => !r || typeof r !== 'object' || Array.isArray(r))) throw new HadesError('HADES_ERR_CMDB', `${file}: a JSON CMDB is an array of objects`);
  } else {
    let columns: string[] | undefined;
    let records: { record: Record<string, unknown>; info: InfoRecord }[];
    try {
      records = parse<{ record: Record<string, unknown>; info: InfoRecord }>(content, { columns: (header: string[]) => (columns = header.map((h) => h.trim().toLowerCase())), skip_empty_lines: true, trim: true, bom: true, info: true });
    } catch (error) {
      throw new HadesError('HADES_ERR_CMDB', `${file}: ${(error as Error).message}`);
    }
    rows = records.map((r) => r.record);
    // The line of the file (as the parser's own errors count them), not the rank among rows.
    where = (index: number) => `line ${records[index]?.info.lines ?? index + 2}`;
    // A header without a column to match hosts by (a file that is not a CMDB at all) would
    // load as zero hosts and quietly take the place of the last good one.
    if (columns !== undefined) {
      if (!columns.some((c) => KEY_COLUMNS.has(c))) throw new HadesError('HADES_ERR_CMDB', `${file}: the CSV header (${columns.join(',').slice(0, 200)}) has none of the columns hosts are matched by: hostname, host, address, ip`);
      const twice = columns.find((c, i) => columns?.indexOf(c) !== i);
      if (twice !== undefined) throw new HadesError('HADES_ERR_CMDB', `${file}: the CSV header names the column '${twice}' twice`);
    }
  }
  const byName = new Map<string, HostMetadata>();
  const byAddress = new Map<string, HostMetadata>();
  const shared = new Set<string>();
  rows.forEach((row, index) => {
    // A blank cell is no value (a CSV row with a name and no address).
    const cell = (key: string) => (typeof row[key] === 'string' && (row[key]).trim() !== '' ? (row[key]).trim() : undefined);
    const name = cell('hostname') ?? cell('host');
    const given = cell('address') ?? cell('ip');
    if (!name && !given) throw new HadesError('HADES_ERR_CMDB', `${file}: ${where(index)} has neither hostname nor address`);
    const address = given === undefined ? undefined : canonicalAddress(given);
    // Kept as it is written, an address would match no host: not one (a network, a typo), or
    // written otherwise than agents give it (2001:DB8::1, ::ffff:10.0.0.1).
    if (given !== undefined && address === undefined) throw new HadesError('HADES_ERR_CMDB', `${file}: ${where(index)}: ${JSON.stringify(given.slice(0, 64))} is not an IP address (a network such as 10.0.0.0/24 matches no host: give each host's address, or its name)`);
    // Tags are text of bounded size, in an object without a prototype: a `__proto__` key is a
    // tag like any other, not a way to replace the object's prototype.
    const tags: Record<string, string> = Object.create(null) as Record<string, string>;
    const meta: Record<string, unknown> = {};
    const tag = (key: string, value: unknown) => {
      if (value === undefined || value === null || value === '') return;
      tags[key.slice(0, 64)] = (typeof value === 'string' ? value : JSON.stringify(value)).slice(0, 256);
    };
    for (const [key, value] of Object.entries(row)) {
      if (KEY_COLUMNS.has(key) || value === undefined || value === null || value === '') continue;
      if (KNOWN.has(key)) meta[key] = (typeof value === 'string' ? value : JSON.stringify(value)).slice(0, 256);
      else if (key === 'tags' && typeof value === 'object' && !Array.isArray(value)) for (const [k, v] of Object.entries(value as Record<string, unknown>)) tag(k, v);
      else tag(key, value);
    }
    const entry: HostMetadata = { ...meta, ...(Object.keys(tags).length > 0 ? { tags: { ...tags } } : {}) };
    const key = name?.toLowerCase();
    // Two different rows for one host name: which one applies would depend on the order of the
    // file. An address may be shared (NAT, overlapping networks): it then matches no row, and
    // those hosts are found by name.
    const clash = (other: HostMetadata | undefined) => other !== undefined && canonical(other) !== canonical(entry);
    if (key !== undefined && clash(byName.get(key))) throw new HadesError('HADES_ERR_CMDB', `${file}: ${where(index)}: host ${JSON.stringify(name)} has another row with other values (host names match without regard to case)`);
    if (key !== undefined) byName.set(key, entry);
    if (address !== undefined) {
      if (clash(byAddress.get(address)) || shared.has(address)) shared.add(address);
      else byAddress.set(address, entry);
    }
  });
  for (const address of shared) byAddress.delete(address);
  return { byName, byAddress };
}

/**
 * An IP address as agents give it (RFC 5952: lower case, zeros compressed; an IPv4 address mapped
 * into IPv6 as IPv4), or undefined when the text is none.
 */
export function canonicalAddress(text: string): string | undefined {
  const family = isIP(text);
  if (family === 0) return undefined;
  const address = new SocketAddress({ address: text, family: family === 6 ? 'ipv6' : 'ipv4' }).address;
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/.exec(address) ? address.slice(7) : address;
}

/** The same metadata gives the same text, whatever the order of its keys. */
function canonical(meta: HostMetadata): string {
  const sorted = (value: Readonly<Record<string, unknown>>) => Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return JSON.stringify(sorted({ ...meta, ...(meta.tags ? { tags: sorted(meta.tags) } : {}) }));
}

export class Cmdb {
  private byName = new Map<string, HostMetadata>();
  private byAddress = new Map<string, HostMetadata>();
  /** What the file was when last read (or refused): it is read again when that changes. */
  private seen = '';
  private timer: NodeJS.Timeout | undefined;
  loadedAt: Date | undefined;
  lastError: string | undefined;

  constructor(
    private readonly file: string | null,
    private readonly log: Logger,
  ) {}

  /** Loads the file (when there is one) and checks it for changes from then on. */
  start(): void {
    if (!this.file) return;
    this.reload();
    this.timer = setInterval(() => this.reload(), CHECK_MS);
    this.timer.unref();
  }

  /** Reads the file if it changed; keeps the last good content on errors. */
  reload(): void {
    if (!this.file) return;
    let seen: string | undefined;
    try {
      const file = this.file;
      // What the file system refuses (missing, unreadable) is the CMDB's error, coded.
      const read = <T>(call: () => T): T => {
        try {
          return call();
        } catch (error) {
          throw new HadesError('HADES_ERR_CMDB', `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error });
        }
      };
      const stat = read(() => statSync(file));
      if (!stat.isFile()) throw new HadesError('HADES_ERR_CMDB', `${this.file} is not a regular file`);
      // Taken before the read: a file written while it is read has changed since, and is read
      // again at the next check.
      seen = fileVersion(stat);
      if (seen === this.seen) return;
      const bytes = readRegularBytes(file, MAX_BYTES, (why) => {
        switch (why.kind) {
          case 'unreadable':
            return new HadesError('HADES_ERR_CMDB', `cannot read ${file}: ${why.code}`, { cause: why.cause });
          case 'folder':
          case 'not_a_file':
            return new HadesError('HADES_ERR_CMDB', `${file} is not a regular file`);
          case 'too_large':
            return new HadesError('HADES_ERR_CMDB', `${file} is larger than ${MAX_BYTES} bytes`);
        }
      });
      // Decoded as it comes, a file saved in another encoding (Latin-1) would turn names into U+FFFD.
      if (!isUtf8(bytes)) throw new HadesError('HADES_ERR_CMDB', `${file} is not UTF-8 text: save it as UTF-8`);
      const parsed = parseCmdb(bytes.toString('utf8'), file);
      this.seen = seen;
      this.byName = parsed.byName;
      this.byAddress = parsed.byAddress;
      this.loadedAt = new Date();
      this.lastError = undefined;
      this.log.info('CMDB loaded', { file: this.file, hosts: parsed.byName.size + parsed.byAddress.size });
    } catch (error) {
      const e = toHadesError(error);
      if (e.message !== this.lastError) this.log.error('CMDB not loaded; the previous content stays', { err: e });
      this.lastError = e.message;
      // Try again only when the file changes again: from what it was before the read (a second
      // look now could see the end of a write and wait on it for good); gone, whatever comes.
      this.seen = seen ?? '';
    }
  }

  /** The metadata of a host, by name first, then by any of its addresses. */
  lookup(hostname: string | undefined, addresses: readonly string[] = []): HostMetadata | undefined {
    if (hostname) {
      const byName = this.byName.get(hostname.toLowerCase());
      if (byName) return byName;
    }
    for (const address of addresses) {
      const byAddress = this.byAddress.get(canonicalAddress(address) ?? address);
      if (byAddress) return byAddress;
    }
    return undefined;
  }

  get size(): number {
    return this.byName.size + this.byAddress.size;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
