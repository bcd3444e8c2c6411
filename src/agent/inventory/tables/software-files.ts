/**
 * How the software tables read the host. Every path here is a host path ('/etc/crontab'), joined
 * to `ctx.root` only when the file system is touched, so rows show host paths whatever the root.
 * Nothing here throws for what it finds on the host: a missing file is silently absent, anything
 * else odd (a file where a folder is expected, a symbolic link loop, a file over the size limit, a
 * FIFO where a file is expected) becomes a warning and the file is skipped. Folders are listed with
 * names as bytes (./host-names.ts): a name that is not UTF-8 is kept, and opened by its bytes; so
 * is a path read from a file's text (readText), such as a home in /etc/passwd.
 */
import type { Stats } from 'node:fs';
import { constants, statSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ErrorCode } from '../../../common/errors.js';
import type { CollectContext } from '../table.js';
import { diskPath, fileText, readFolder, readFolderSync, type DiskPath, type FolderEntry } from './host-names.js';

/** The warning codes of the software tables. */
export const Warn = {
  /** A file or folder exists but could not be read (permissions, a file where a folder is expected, not a regular file). */
  unreadable: 'HADES_ERR_INVENTORY_UNREADABLE',
  /** A file is over ctx.maxFileBytes: skipped, or only its end read. */
  tooBig: 'HADES_ERR_INVENTORY_FILE_TOO_BIG',
  /** A line, record or file is not in the expected format and was skipped. */
  malformed: 'HADES_ERR_INVENTORY_MALFORMED',
  /** A symbolic link or include loop. */
  loop: 'HADES_ERR_INVENTORY_LOOP',
  /** A file in a format the table does not read (e.g. a BerkeleyDB rpm database). */
  unsupported: 'HADES_ERR_INVENTORY_SKIPPED',
  /** A search stopped at its bound (folders visited, files found). */
  limit: 'HADES_ERR_INVENTORY_SKIPPED',
} as const satisfies Record<string, ErrorCode>;

/** Whether the query reads a column (tables skip costly ones it does not: hashing). */
export function wants(ctx: CollectContext, column: string): boolean {
  return ctx.columns === undefined || ctx.columns.has(column);
}

/** The real path of a host path under ctx.root, as bytes when a name in it is not UTF-8. */
export function onDisk(ctx: CollectContext, hostPath: string): DiskPath {
  return diskPath(ctx.root === '/' ? hostPath : path.join(ctx.root, hostPath));
}

function errno(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
}

function reason(error: unknown): string {
  switch (errno(error)) {
    case 'ENOTDIR':
      return 'a file is where a folder is expected';
    case 'EISDIR':
      return 'a folder is where a file is expected';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    default:
      return error instanceof Error ? error.message : String(error);
  }
}

/** Turns a file system failure into a warning; a missing file or folder is not one. */
export function reportFsError(ctx: CollectContext, error: unknown, hostPath: string, what: string): void {
  const code = errno(error);
  if (code === 'ENOENT') return;
  if (code === 'ELOOP') ctx.warn(Warn.loop, `${what}: symbolic link loop`, hostPath);
  else ctx.warn(Warn.unreadable, `${what}: ${reason(error)}`, hostPath);
}

/** Stat following symbolic links; undefined (with a warning unless absent) when that fails. */
export async function statPath(ctx: CollectContext, hostPath: string, what = 'skipped'): Promise<Stats | undefined> {
  try {
    return await stat(onDisk(ctx, hostPath));
  } catch (error) {
    reportFsError(ctx, error, hostPath, what);
    return undefined;
  }
}

/** True when the path is a folder; silent otherwise (for optional places such as a user's home). */
export async function isFolder(ctx: CollectContext, hostPath: string): Promise<boolean> {
  try {
    return (await stat(onDisk(ctx, hostPath))).isDirectory();
  } catch {
    return false;
  }
}

/** A folder's entries sorted by name; undefined when it is absent or unreadable (the latter warned). */
export async function listFolder(ctx: CollectContext, hostDir: string): Promise<FolderEntry[] | undefined> {
  try {
    return await readFolder(onDisk(ctx, hostDir));
  } catch (error) {
    reportFsError(ctx, error, hostDir, 'folder skipped');
    return undefined;
  }
}

export interface FileRead {
  readonly data: Buffer;
  readonly stats: Stats;
  /** Bytes before `data` that were not read (readTail). */
  readonly skipped: number;
}

type ReadMode = { kind: 'whole' } | { kind: 'head'; bytes: number } | { kind: 'tail'; bytes: number };

/**
 * Opens without blocking (a FIFO planted where a file is expected would otherwise hang the
 * collection), checks that it is a regular file, and reads the part asked for.
 */
async function readPart(ctx: CollectContext, hostFile: string, mode: ReadMode): Promise<FileRead | undefined> {
  let handle;
  try {
    handle = await open(onDisk(ctx, hostFile), constants.O_RDONLY | constants.O_NONBLOCK);
    const stats = await handle.stat();
    if (!stats.isFile()) {
      ctx.warn(Warn.unreadable, stats.isDirectory() ? 'skipped: a folder is where a file is expected' : 'skipped: not a regular file', hostFile);
      return undefined;
    }
    let start = 0;
    let length = stats.size;
    if (mode.kind === 'whole' && stats.size > ctx.maxFileBytes) {
      ctx.warn(Warn.tooBig, `skipped: ${stats.size} bytes, over the limit of ${ctx.maxFileBytes}`, hostFile);
      return undefined;
    }
    if (mode.kind === 'head') length = Math.min(length, mode.bytes);
    if (mode.kind === 'tail' && length > mode.bytes) {
      start = length - mode.bytes;
      length = mode.bytes;
    }
    const data = Buffer.alloc(length);
    let got = 0;
    while (got < length) {
      const { bytesRead } = await handle.read(data, got, length - got, start + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return { data: got === length ? data : data.subarray(0, got), stats, skipped: start };
  } catch (error) {
    reportFsError(ctx, error, hostFile, 'file skipped');
    return undefined;
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/** A whole file; over ctx.maxFileBytes it is skipped with a warning. */
export async function readFileBytes(ctx: CollectContext, hostFile: string): Promise<FileRead | undefined> {
  return readPart(ctx, hostFile, { kind: 'whole' });
}

/**
 * A whole text file (UTF-8, a byte that is not UTF-8 kept as in names: ./host-names.ts fileText, so
 * that a path the file names opens that file); over ctx.maxFileBytes it is skipped with a warning.
 */
export async function readText(ctx: CollectContext, hostFile: string): Promise<string | undefined> {
  const read = await readPart(ctx, hostFile, { kind: 'whole' });
  return read && fileText(read.data);
}

/** The first `bytes` of a file, for formats whose interesting part is at the start (package metadata). */
export async function readHead(ctx: CollectContext, hostFile: string, bytes: number): Promise<FileRead | undefined> {
  return readPart(ctx, hostFile, { kind: 'head', bytes });
}

/** The last `bytes` of a file, for logs that grow at the end (shell history). */
export async function readTail(ctx: CollectContext, hostFile: string, bytes: number): Promise<FileRead | undefined> {
  return readPart(ctx, hostFile, { kind: 'tail', bytes });
}

/** Splits text into lines, accepting \n and \r\n. */
export function lines(text: string): string[] {
  const out = text.split('\n');
  if (out.length > 0 && out[out.length - 1] === '') out.pop();
  return out.map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
}

function globSegment(segment: string): RegExp {
  let source = '';
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i] ?? '';
    if (c === '*') source += '[^/]*';
    else if (c === '?') source += '[^/]';
    else if (c === '[') {
      const end = segment.indexOf(']', i + 2);
      if (end === -1) source += '\\[';
      else {
        const body = segment.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\');
        source += `[${body}]`;
        i = end;
      }
    } else source += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

const hasWildcard = (segment: string): boolean => /[*?[]/.test(segment);

/**
 * The existing host paths matching a pattern such as '/home/* /.local/lib/python3* /site-packages'
 * (without the spaces), sorted. Like glob(3), a wildcard does not match a leading dot unless the
 * pattern segment starts with one. Only the last segment may match files.
 */
export async function glob(ctx: CollectContext, pattern: string): Promise<string[]> {
  const segments = pattern.split('/').filter((s) => s !== '');
  let current = ['/'];
  for (const [index, segment] of segments.entries()) {
    const last = index === segments.length - 1;
    if (!hasWildcard(segment)) {
      current = current.map((dir) => path.posix.join(dir, segment));
      continue;
    }
    const regex = globSegment(segment);
    const next: string[] = [];
    for (const dir of current) {
      if (!(await isFolder(ctx, dir))) continue;
      for (const entry of (await listFolder(ctx, dir)) ?? []) {
        if (entry.name.startsWith('.') && !segment.startsWith('.')) continue;
        if (!regex.test(entry.name)) continue;
        const child = path.posix.join(dir, entry.name);
        if (!last && !(entry.isDirectory() || (entry.isSymbolicLink() && (await isFolder(ctx, child))))) continue;
        next.push(child);
      }
    }
    current = next;
  }
  // Literal segments after the last wildcard were joined without looking: keep what exists.
  if (segments.length > 0 && !hasWildcard(segments[segments.length - 1] ?? '')) {
    const existing: string[] = [];
    for (const candidate of current) if (await exists(ctx, candidate)) existing.push(candidate);
    current = existing;
  }
  return current.sort();
}

async function exists(ctx: CollectContext, hostPath: string): Promise<boolean> {
  try {
    await stat(onDisk(ctx, hostPath));
    return true;
  } catch {
    return false;
  }
}

/** A bound on a search shared by all its walks, so that one table cannot wander the whole disk. */
export class WalkBudget {
  private warned = false;

  constructor(private folders: number) {}

  /** Takes one folder from the budget; false (warned once) when it is spent. */
  take(ctx: CollectContext, hostDir: string, what: string): boolean {
    if (this.folders > 0) {
      this.folders--;
      return true;
    }
    if (!this.warned) ctx.warn(Warn.limit, `${what}: stopped after visiting the most folders allowed; later folders were not searched`, hostDir);
    this.warned = true;
    return false;
  }
}

export interface WalkOptions {
  /** Folder levels below the start to descend (0: the start folder's entries only). */
  readonly maxDepth: number;
  readonly budget: WalkBudget;
  /** What is searched, for warnings. */
  readonly what: string;
  /** False to skip a folder (and everything under it). */
  readonly enter?: (name: string, hostDir: string) => boolean;
  /** Called for each regular file `files` accepts (when given: files are not looked at otherwise). */
  readonly onFile?: (hostFile: string, stats: Stats) => Promise<void> | void;
  /** Which file names onFile wants, so that the others cost no stat. */
  readonly files?: (name: string) => boolean;
  /** Called for each folder entered, with its entries; return false to not descend into it. */
  readonly onFolder?: (hostDir: string, entries: readonly FolderEntry[]) => Promise<boolean> | boolean;
}

const identity = (stats: Stats): string => `${stats.dev}:${stats.ino}`;

/**
 * Walks folders depth first, following symbolic links to folders but never into a folder it has
 * already visited: a link back to an ancestor is a loop and warned; a second way to a folder
 * already seen is silently skipped. `visited` may be shared between walks of one table.
 *
 * Folders are listed and stat'ed with synchronous calls, yielding to the event loop every few
 * folders: a walk is thousands of small calls, and the asynchronous ones cost about six times
 * the CPU (an asynchronous call is a promise and a thread pool round trip).
 */
export async function walk(ctx: CollectContext, hostDir: string, options: WalkOptions, visited = new Set<string>()): Promise<void> {
  const start = statSyncPath(ctx, hostDir, `${options.what}: folder skipped`);
  if (!start?.isDirectory()) return;
  await walkFolder(ctx, hostDir, start, 0, options, visited, new Set(), { folders: 0 });
}

/** Folders walked between two yields to the event loop. */
const FOLDERS_PER_YIELD = 32;

function statSyncPath(ctx: CollectContext, hostPath: string, what: string): Stats | undefined {
  try {
    return statSync(onDisk(ctx, hostPath));
  } catch (error) {
    reportFsError(ctx, error, hostPath, what);
    return undefined;
  }
}

function listFolderSync(ctx: CollectContext, hostDir: string): FolderEntry[] | undefined {
  try {
    return readFolderSync(onDisk(ctx, hostDir));
  } catch (error) {
    reportFsError(ctx, error, hostDir, 'folder skipped');
    return undefined;
  }
}

async function walkFolder(
  ctx: CollectContext,
  hostDir: string,
  stats: Stats,
  depth: number,
  options: WalkOptions,
  visited: Set<string>,
  ancestors: Set<string>,
  progress: { folders: number },
): Promise<void> {
  const id = identity(stats);
  if (ancestors.has(id)) {
    ctx.warn(Warn.loop, `${options.what}: a symbolic link leads back to a folder above it; not followed`, hostDir);
    return;
  }
  if (visited.has(id) || ctx.signal?.aborted) return;
  visited.add(id);
  if (!options.budget.take(ctx, hostDir, options.what)) return;
  if (++progress.folders % FOLDERS_PER_YIELD === 0) await new Promise((resolve) => setImmediate(resolve));
  const entries = listFolderSync(ctx, hostDir);
  if (!entries) return;
  if (options.onFolder && !(await options.onFolder(hostDir, entries))) return;
  ancestors.add(id);
  const what = `${options.what}: skipped`;
  for (const entry of entries) {
    if (ctx.signal?.aborted) break;
    const child = path.posix.join(hostDir, entry.name);
    let childStats: Stats | undefined;
    if (entry.isSymbolicLink()) {
      childStats = statSyncPath(ctx, child, what);
      if (!childStats) continue;
    } else if (!entry.isDirectory() && !(entry.isFile() && options.onFile && (options.files?.(entry.name) ?? true))) continue;
    if (entry.isDirectory() || childStats?.isDirectory()) {
      if (depth >= options.maxDepth) continue;
      if (options.enter && !options.enter(entry.name, child)) continue;
      const dirStats = childStats ?? statSyncPath(ctx, child, what);
      if (dirStats) await walkFolder(ctx, child, dirStats, depth + 1, options, visited, ancestors, progress);
      continue;
    }
    if (!options.onFile || !(options.files?.(entry.name) ?? true)) continue;
    const fileStats = childStats ?? statSyncPath(ctx, child, what);
    if (fileStats?.isFile()) await options.onFile(child, fileStats);
  }
  ancestors.delete(id);
}

export interface Account {
  readonly name: string;
  readonly uid: number;
  readonly home: string;
}

/** The accounts of /etc/passwd, in file order; malformed lines are warned and skipped. */
export async function readAccounts(ctx: CollectContext): Promise<Account[]> {
  const text = await readText(ctx, '/etc/passwd');
  if (text === undefined) return [];
  const accounts: Account[] = [];
  for (const [index, line] of lines(text).entries()) {
    if (line.trim() === '' || line.startsWith('#') || line.startsWith('+') || line.startsWith('-')) continue;
    const fields = line.split(':');
    const uid = Number(fields[2]);
    if (fields.length < 7 || !fields[0] || !Number.isInteger(uid)) {
      ctx.warn(Warn.malformed, `line ${index + 1}: not name:password:uid:gid:gecos:home:shell; skipped`, '/etc/passwd');
      continue;
    }
    accounts.push({ name: fields[0], uid, home: fields[5] ?? '' });
  }
  return accounts;
}

/**
 * Accounts whose home is an existing folder, one per home (the first account listed wins: several
 * system accounts share '/' or '/nonexistent'), for tables that read files in homes.
 */
export async function accountHomes(ctx: CollectContext): Promise<Account[]> {
  const seen = new Set<string>();
  const out: Account[] = [];
  for (const account of await readAccounts(ctx)) {
    if (!account.home.startsWith('/') || account.home === '/' || seen.has(account.home)) continue;
    seen.add(account.home);
    if (await isFolder(ctx, account.home)) out.push(account);
  }
  return out;
}

/** Homes of people rather than services: root's, those of uid 1000 and above, and any under /home. */
export function isPersonal(account: Account): boolean {
  return account.uid === 0 || account.uid >= 1000 || account.home.startsWith('/home/');
}
