/**
 * CMDB enrichment: host metadata (owner, business unit, environment, other columns as tags)
 * from a CSV file with a header row or a JSON array of objects, matched by host name (exactly,
 * else by short name against FQDN) or by one of the host's addresses. The file is read again
 * when it changes (checked every 2 s); a file that fails to parse is reported (HADES_ERR_CMDB)
 * and the last good content stays in use.
 *
 * Parsing takes about 4 s per 8 MiB of CSV (and ~1 GiB of heap at the 64 MiB bound): it runs on
 * a thread of its own (cmdb-worker.ts), which hands the result over as packed tables (one
 * buffer each, moved, not copied: PackedTable), so that the main thread, which serves the
 * gateway and the API, never waits for it.
 */
import { isUtf8 } from 'node:buffer';
import { statSync } from 'node:fs';
import { isIP } from 'node:net';
import { Worker } from 'node:worker_threads';
import { parse, type InfoRecord } from 'csv-parse/sync';
import { HadesError, toHadesError } from '../common/errors.js';
import { blankUnsafe, escapeUnsafe, hasUnsafe } from '../common/safe-text.js';
import { canonicalAddress } from '../runtime/ip-address.js';
import type { Logger } from '../runtime/log.js';
import { fileVersion } from '../runtime/file-version.js';
import { readRegularBytes } from '../runtime/regular-file.js';
import { nestsDeeperThan } from '../common/json-depth.js';

/** How deep a JSON CMDB may nest: an array of objects, whose values may be a list or an object of their own. */
const MAX_CMDB_DEPTH = 16;

export interface HostMetadata {
  readonly owner?: string;
  readonly business_unit?: string;
  readonly environment?: string;
  readonly tags?: Readonly<Record<string, string>>;
}

const KEY_COLUMNS = new Set(['hostname', 'host', 'address', 'ip']);
const KNOWN = new Set(['owner', 'business_unit', 'environment']);
export const CMDB_MAX_BYTES = 64 * 1024 * 1024;
const CHECK_MS = 2000;
/** Heap the parsing thread may use: twice what the largest file takes. */
const WORKER_HEAP_MB = 2048;

/** The tables of a parsed CMDB. */
export interface ParsedCmdb {
  /** By host name, lower case, without a final dot. */
  readonly byName: Map<string, HostMetadata>;
  /** By the first label of the FQDNs among the names, when only one FQDN has that label. */
  readonly byShort: Map<string, HostMetadata>;
  /** By address (canonicalAddress), when only one row has it. */
  readonly byAddress: Map<string, HostMetadata>;
  /** Values whose control or bidirectional characters were replaced by spaces, and where the first was. */
  readonly cleaned: { readonly count: number; readonly first?: string };
}

/** A host name as the CMDB and agents are matched by: lower case, without the final dot of an absolute FQDN. */
export function hostKey(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/** The first label of an FQDN, or undefined for a name without a dot and for an IP address. */
export function shortName(key: string): string | undefined {
  const dot = key.indexOf('.');
  return dot > 0 && isIP(key) === 0 ? key.slice(0, dot) : undefined;
}

/** Parses CMDB text; throws HADES_ERR_CMDB with the position of the problem. */
export function parseCmdb(text: string, file: string): ParsedCmdb {
  let rows: Record<string, unknown>[];
  /** Where each row is, as a message says it: its line in a CSV file, its place in a JSON array. */
  let where = (index: number) => `entry ${index + 1}`;
  // A byte order mark (editors on Windows write one) is not part of the content.
  const content = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const trimmed = content.trimStart();
  if (trimmed.startsWith('{')) throw new HadesError('HADES_ERR_CMDB', `${file}: a JSON CMDB is an array of objects ([{"hostname": ...}, ...]), not one object`);
  if (trimmed.startsWith('[')) {
    // A host's entry is an object of scalars: two levels; a text nested far deeper is refused before it is parsed.
    if (nestsDeeperThan(content, MAX_CMDB_DEPTH)) throw new HadesError('HADES_ERR_CMDB', `${file}: nests more than ${MAX_CMDB_DEPTH} levels deep: a JSON CMDB is an array of objects of text values`);
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
  // No host at all: an empty file, one holding only a byte order mark or blank lines, a header,
  // `[]`, or a file caught while it is being written again in place (`>`, cp, an export job),
  // which the poll sees for a moment. Loaded, it would take the place of the last good one and
  // the events stored meanwhile would lose their hades.cmdb for good.
  if (rows.length === 0) throw new HadesError('HADES_ERR_CMDB', `${file}: holds no host (empty, or caught while being written: write a CMDB to another name and rename it into place); the previous content stays. To run without a CMDB, take cmdb.file out of the configuration`);
  const byName = new Map<string, HostMetadata>();
  const byAddress = new Map<string, HostMetadata>();
  const shared = new Set<string>();
  const byShort = new Map<string, HostMetadata>();
  const sharedShort = new Set<string>();
  let cleaned = 0;
  let first: string | undefined;
  rows.forEach((row, index) => {
    // A blank cell is no value (a CSV row with a name and no address).
    const cell = (key: string) => (typeof row[key] === 'string' && (row[key]).trim() !== '' ? (row[key]).trim() : undefined);
    const name = cell('hostname') ?? cell('host');
    const given = cell('address') ?? cell('ip');
    if (!name && !given) throw new HadesError('HADES_ERR_CMDB', `${file}: ${where(index)} has neither hostname nor address`);
    // A name or an address with a control character matches no host: a broken export.
    for (const [what, value] of [['host name', name], ['address', given]] as const) {
      if (value !== undefined && hasUnsafe(value)) throw new HadesError('HADES_ERR_CMDB', `${file}: ${where(index)}: the ${what} "${escapeUnsafe(value.slice(0, 64))}" holds a control or bidirectional formatting character`);
    }
    const address = given === undefined ? undefined : canonicalAddress(given);
    // Kept as it is written, an address would match no host: not one (a network, a typo), or
    // written otherwise than agents give it (2001:DB8::1, ::ffff:10.0.0.1).
    if (given !== undefined && address === undefined) throw new HadesError('HADES_ERR_CMDB', `${file}: ${where(index)}: ${JSON.stringify(given.slice(0, 64))} is not an IP address (a network such as 10.0.0.0/24 matches no host: give each host's address, or its name)`);
    // Tags are text of bounded size, in an object without a prototype: a `__proto__` key is a
    // tag like any other, not a way to replace the object's prototype.
    const tags: Record<string, string> = Object.create(null) as Record<string, string>;
    const meta: Record<string, unknown> = {};
    // Control and bidirectional characters become spaces: a value (a multi-line note, a tab)
    // is still worth having, and events, alerts, syslog and terminals get it safe.
    const safe = (text: string): string => {
      if (!hasUnsafe(text)) return text;
      cleaned++;
      first ??= where(index);
      return blankUnsafe(text).trim();
    };
    const text = (value: unknown, max: number) => safe(typeof value === 'string' ? value : JSON.stringify(value)).slice(0, max);
    const tag = (key: string, value: unknown) => {
      if (value === undefined || value === null || value === '') return;
      tags[text(key, 64)] = text(value, 256);
    };
    for (const [key, value] of Object.entries(row)) {
      if (KEY_COLUMNS.has(key) || value === undefined || value === null || value === '') continue;
      if (KNOWN.has(key)) meta[key] = text(value, 256);
      else if (key === 'tags' && typeof value === 'object' && !Array.isArray(value)) for (const [k, v] of Object.entries(value as Record<string, unknown>)) tag(k, v);
      else tag(key, value);
    }
    const entry: HostMetadata = { ...meta, ...(Object.keys(tags).length > 0 ? { tags: { ...tags } } : {}) };
    const key = name === undefined ? undefined : hostKey(name);
    // Two different rows for one host name: which one applies would depend on the order of the
    // file. An address may be shared (NAT, overlapping networks): it then matches no row, and
    // those hosts are found by name.
    const clash = (other: HostMetadata | undefined) => other !== undefined && canonical(other) !== canonical(entry);
    if (key !== undefined && clash(byName.get(key))) throw new HadesError('HADES_ERR_CMDB', `${file}: ${where(index)}: host ${JSON.stringify(name)} has another row with other values (host names match without regard to case)`);
    if (key !== undefined) byName.set(key, entry);
    // web01.example.com is found as web01 too, unless web01.example.net (with other values) is in the file as well.
    const short = key === undefined ? undefined : shortName(key);
    if (short !== undefined) {
      if (clash(byShort.get(short)) || sharedShort.has(short)) sharedShort.add(short);
      else byShort.set(short, entry);
    }
    if (address !== undefined) {
      if (clash(byAddress.get(address)) || shared.has(address)) shared.add(address);
      else byAddress.set(address, entry);
    }
  });
  for (const address of shared) byAddress.delete(address);
  for (const short of sharedShort) byShort.delete(short);
  return { byName, byShort, byAddress, cleaned: { count: cleaned, ...(first === undefined ? {} : { first }) } };
}

/** The same metadata gives the same text, whatever the order of its keys. */
function canonical(meta: HostMetadata): string {
  const sorted = (value: Readonly<Record<string, unknown>>) => Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return JSON.stringify(sorted({ ...meta, ...(meta.tags ? { tags: sorted(meta.tags) } : {}) }));
}

/** Parsed entries a packed table keeps (about 200 bytes each). */
const PARSED_MAX = 16_384;

/**
 * A table of host metadata by key in one buffer, which a thread hands to another without a copy
 * and which is used as it is, with nothing to rebuild: the keys sorted (by their UTF-8 bytes),
 * found by binary search, and each entry's metadata as JSON, parsed when it is first looked up.
 *
 *     u32 count | u32 key offsets [count + 1] | u32 value offsets [count + 1] | keys | values
 */
export class PackedTable {
  private readonly bytes: Buffer;
  private readonly count: number;
  /** Entries parsed so far, by position (frozen: callers share them), at most PARSED_MAX. */
  private readonly parsed = new Map<number, HostMetadata>();

  constructor(readonly buffer: ArrayBuffer) {
    this.bytes = Buffer.from(buffer);
    this.count = buffer.byteLength >= 4 ? this.bytes.readUInt32LE(0) : 0;
  }

  static pack(entries: ReadonlyMap<string, HostMetadata>): ArrayBuffer {
    const keys = [...entries.keys()].map((key) => ({ key, bytes: Buffer.from(key, 'utf8') })).sort((a, b) => Buffer.compare(a.bytes, b.bytes));
    const values = keys.map(({ key }) => Buffer.from(JSON.stringify(entries.get(key)), 'utf8'));
    const header = 4 + 8 * (keys.length + 1);
    const size = header + keys.reduce((n, k) => n + k.bytes.length, 0) + values.reduce((n, v) => n + v.length, 0);
    const buffer = new ArrayBuffer(size);
    const out = Buffer.from(buffer);
    out.writeUInt32LE(keys.length, 0);
    let at = header;
    const place = (list: readonly Buffer[], table: number) => {
      list.forEach((bytes, i) => {
        out.writeUInt32LE(at, table + 4 * i);
        bytes.copy(out, at);
        at += bytes.length;
      });
      out.writeUInt32LE(at, table + 4 * list.length);
    };
    place(keys.map((k) => k.bytes), 4);
    place(values, 4 + 4 * (keys.length + 1));
    return buffer;
  }

  get size(): number {
    return this.count;
  }

  get(key: string): HostMetadata | undefined {
    const wanted = Buffer.from(key, 'utf8');
    const keyAt = (i: number) => this.bytes.readUInt32LE(4 + 4 * i);
    for (let low = 0, high = this.count - 1; low <= high; ) {
      const mid = (low + high) >>> 1;
      const order = this.bytes.compare(wanted, 0, wanted.length, keyAt(mid), keyAt(mid + 1));
      if (order < 0) low = mid + 1;
      else if (order > 0) high = mid - 1;
      else {
        const known = this.parsed.get(mid);
        if (known !== undefined) return known;
        const valueAt = (j: number) => this.bytes.readUInt32LE(4 + 4 * (this.count + 1) + 4 * j);
        const meta = JSON.parse(this.bytes.toString('utf8', valueAt(mid), valueAt(mid + 1))) as HostMetadata;
        if (meta.tags) Object.freeze(meta.tags);
        Object.freeze(meta);
        // A fleet's hosts come back batch after batch: each parsed once, within a bound.
        if (this.parsed.size >= PARSED_MAX) this.parsed.clear();
        this.parsed.set(mid, meta);
        return meta;
      }
    }
    return undefined;
  }
}

/** What the parsing thread hands back: the packed tables, or the problem (a HADES_ERR_CMDB message). */
export type CmdbLoad =
  | { readonly ok: true; readonly byName: ArrayBuffer; readonly byShort: ArrayBuffer; readonly byAddress: ArrayBuffer; readonly hosts: number; readonly cleaned: ParsedCmdb['cleaned'] }
  | { readonly ok: false; readonly message: string };

/** Reads, checks and parses a CMDB file into packed tables (on the parsing thread); throws HADES_ERR_CMDB. */
export function loadCmdbFile(file: string): Extract<CmdbLoad, { ok: true }> {
  const bytes = readRegularBytes(file, CMDB_MAX_BYTES, (why) => {
    switch (why.kind) {
      case 'unreadable':
        return new HadesError('HADES_ERR_CMDB', `cannot read ${file}: ${why.code}`, { cause: why.cause });
      case 'folder':
      case 'not_a_file':
        return new HadesError('HADES_ERR_CMDB', `${file} is not a regular file`);
      case 'too_large':
        return new HadesError('HADES_ERR_CMDB', `${file} is larger than ${CMDB_MAX_BYTES} bytes (64 MiB)`);
    }
  });
  // Decoded as it comes, a file saved in another encoding (Latin-1) would turn names into U+FFFD.
  if (!isUtf8(bytes)) throw new HadesError('HADES_ERR_CMDB', `${file} is not UTF-8 text: save it as UTF-8`);
  const parsed = parseCmdb(bytes.toString('utf8'), file);
  return {
    ok: true,
    byName: PackedTable.pack(parsed.byName),
    byShort: PackedTable.pack(parsed.byShort),
    byAddress: PackedTable.pack(parsed.byAddress),
    hosts: parsed.byName.size + parsed.byAddress.size,
    cleaned: parsed.cleaned,
  };
}

const EMPTY = new PackedTable(PackedTable.pack(new Map()));

export class Cmdb {
  private byName = EMPTY;
  private byShort = EMPTY;
  private byAddress = EMPTY;
  /** What the file was when last read (or refused): it is read again when that changes. */
  private seen = '';
  private timer: NodeJS.Timeout | undefined;
  /** The load in progress, and its parsing thread. */
  private loading: Promise<void> | undefined;
  private worker: Worker | undefined;
  private stopped = false;
  loadedAt: Date | undefined;
  lastError: string | undefined;

  constructor(
    private readonly file: string | null,
    private readonly log: Logger,
    private readonly workerUrl: URL = new URL('./cmdb-worker.js', import.meta.url),
  ) {}

  /** Loads the file (when there is one), and checks it for changes from then on. */
  async start(): Promise<void> {
    if (!this.file) return;
    this.timer = setInterval(() => void this.reload(), CHECK_MS);
    this.timer.unref();
    await this.reload();
  }

  /** Reads the file if it changed (on the parsing thread); keeps the last good content on errors. */
  reload(): Promise<void> {
    this.loading ??= this.load().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  private async load(): Promise<void> {
    if (!this.file || this.stopped) return;
    let seen: string | undefined;
    try {
      const file = this.file;
      let stat;
      try {
        stat = statSync(file);
      } catch (error) {
        // What the file system refuses (missing, unreadable) is the CMDB's error, coded.
        throw new HadesError('HADES_ERR_CMDB', `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error });
      }
      if (!stat.isFile()) throw new HadesError('HADES_ERR_CMDB', `${file} is not a regular file`);
      // What it says is shown with every event and alert of a host (owner, environment): not a
      // file any user of this machine may rewrite.
      if ((stat.mode & 0o002) !== 0) throw new HadesError('HADES_ERR_CMDB', `${file} can be written by any user of this machine (mode ${(stat.mode & 0o777).toString(8).padStart(4, '0')}): run chmod o-w on it`);
      // Taken before the read: a file written while it is read has changed since, and is read
      // again at the next check.
      seen = fileVersion(stat);
      if (seen === this.seen) return;
      const loaded = await this.parseAside(file);
      if (this.stopped) return;
      this.seen = seen;
      this.byName = new PackedTable(loaded.byName);
      this.byShort = new PackedTable(loaded.byShort);
      this.byAddress = new PackedTable(loaded.byAddress);
      this.loadedAt = new Date();
      this.lastError = undefined;
      this.log.info('CMDB loaded', { file, hosts: loaded.hosts });
      if (loaded.cleaned.count > 0) this.log.warn('CMDB values with control or bidirectional formatting characters: replaced by spaces', { code: 'HADES_ERR_CMDB', file, values: loaded.cleaned.count, first: loaded.cleaned.first });
    } catch (error) {
      if (this.stopped) return;
      const e = toHadesError(error);
      if (e.message !== this.lastError) this.log.error('CMDB not loaded; the previous content stays', { err: e });
      this.lastError = e.message;
      // Try again only when the file changes again: from what it was before the read (a second
      // look now could see the end of a write and wait on it for good); gone, whatever comes.
      this.seen = seen ?? '';
    }
  }

  /** Runs loadCmdbFile on a thread of its own, which ends with it. */
  private parseAside(file: string): Promise<Extract<CmdbLoad, { ok: true }>> {
    return new Promise((resolve, reject) => {
      const worker = new Worker(this.workerUrl, { workerData: { file }, resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB } });
      this.worker = worker;
      let answer: CmdbLoad | undefined;
      let failure: Error | undefined;
      worker.once('message', (message: CmdbLoad) => (answer = message));
      worker.once('error', (error: Error & { code?: string }) => {
        failure =
          error.code === 'ERR_WORKER_OUT_OF_MEMORY'
            ? new HadesError('HADES_ERR_CMDB', `${file} needs more than ${WORKER_HEAP_MB} MiB of memory to parse`, { cause: error })
            : new HadesError('HADES_ERR_CMDB', `${file}: the parsing thread failed: ${error.message}`, { cause: error });
      });
      worker.once('exit', (code) => {
        if (this.worker === worker) this.worker = undefined;
        if (answer?.ok === true) resolve(answer);
        else if (answer?.ok === false) reject(new HadesError('HADES_ERR_CMDB', answer.message));
        else reject(failure ?? new HadesError('HADES_ERR_CMDB', `${file}: the parsing thread stopped (exit code ${code})`));
      });
    });
  }

  /**
   * The metadata of a host: by its name (without regard to case, nor to the final dot of an
   * absolute FQDN); else, for an FQDN, by its first label among the rows written as short
   * names; else, for a short name, by the one FQDN row that has it as first label; else by the
   * first of its addresses that one row has.
   */
  lookup(hostname: string | undefined, addresses: readonly string[] = []): HostMetadata | undefined {
    if (hostname) {
      const key = hostKey(hostname);
      const exact = this.byName.get(key);
      if (exact) return exact;
      const short = shortName(key);
      const found = short === undefined ? (key.includes('.') ? undefined : this.byShort.get(key)) : this.byName.get(short);
      if (found) return found;
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

  /** Stops checking the file; a parse in progress is abandoned (its thread ends). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.timer = undefined;
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
    await this.loading;
  }
}
