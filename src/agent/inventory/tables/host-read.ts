/**
 * How the host tables read files: host paths ('/etc/passwd') are joined to `ctx.root` (and /proc
 * paths to `ctx.proc`) only when the file system is touched, reads are synchronous (files under
 * /proc and /etc are small and a sync read costs a fraction of an async one) and bounded by
 * `ctx.maxFileBytes`, and nothing throws: a missing file is simply absent, anything else becomes
 * a warning. Folders are listed with names as bytes (./host-names.ts): a name that is not UTF-8
 * is kept, and opened by its bytes; so is a path read from a file's text (readHostText), such as
 * a sudoers include, and what /proc says of a process: its links (exe, cwd, root) and its files
 * (cmdline, a unix socket's path in /proc/net/unix), so that a process run from a folder whose
 * name is not UTF-8 shows the path the other tables show for that file.
 */
import { closeSync, constants, fstatSync, openSync, readlinkSync, readSync } from 'node:fs';
import path from 'node:path';
import type { ErrorCode } from '../../../common/errors.js';
import type { CollectContext } from '../table.js';
import { decodeText } from '../../driver/bytes.js';
import { diskPath, fileText, readNamesSync, type DiskPath } from './host-names.js';

export const Warn = {
  unreadable: 'HADES_ERR_INVENTORY_UNREADABLE',
  malformed: 'HADES_ERR_INVENTORY_MALFORMED',
  tooBig: 'HADES_ERR_INVENTORY_FILE_TOO_BIG',
  loop: 'HADES_ERR_INVENTORY_LOOP',
  skipped: 'HADES_ERR_INVENTORY_SKIPPED',
} as const satisfies Record<string, ErrorCode>;

/** The path on disk of a host path, as bytes when a name in it is not UTF-8. */
export function onHost(ctx: CollectContext, hostPath: string): DiskPath {
  return diskPath(ctx.root === '/' ? hostPath : path.join(ctx.root, hostPath));
}

export function errnoOf(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error && typeof (error).code === 'string' ? (error as { code: string }).code : undefined;
}

/** A missing file or a process that exited meanwhile is not worth a warning. */
export const isGone = (error: unknown): boolean => {
  const code = errnoOf(error);
  return code === 'ENOENT' || code === 'ESRCH' || code === 'ENOTDIR';
};

export function describeError(error: unknown): string {
  switch (errnoOf(error)) {
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'a folder is where a file is expected';
    case 'ENOTDIR':
      return 'a file is where a folder is expected';
    case 'ELOOP':
      return 'symbolic link loop';
    default:
      return error instanceof Error ? error.message : String(error);
  }
}

/** Reports a file system failure on `shown` (a host path), unless the file is simply absent. */
export function reportError(ctx: CollectContext, error: unknown, shown: string, what: string): void {
  if (isGone(error)) return;
  ctx.warn(errnoOf(error) === 'ELOOP' ? Warn.loop : Warn.unreadable, `${what}: ${describeError(error)}`, shown);
}

export interface ReadOptions {
  /** Read at most this many bytes (default ctx.maxFileBytes). */
  readonly maxBytes?: number;
  /** Over the limit: read only the last maxBytes instead of skipping the file. */
  readonly tail?: boolean;
  /** No warning at all (files that are often unreadable, e.g. /proc files of other users). */
  readonly quiet?: boolean;
}

/**
 * Reads a whole file from a real path (not joined to the root). Files of /proc report size 0, so
 * the size limit is enforced while reading too. Undefined when absent, unreadable or too big.
 */
export function readBytes(ctx: CollectContext, file: DiskPath, shown: string, options: ReadOptions = {}): Buffer | undefined {
  const max = options.maxBytes ?? ctx.maxFileBytes;
  let fd: number;
  try {
    // Without blocking: opening a FIFO for reading waits for a writer, before fstat can tell.
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    if (!options.quiet) reportError(ctx, error, shown, 'not read');
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) {
      if (!options.quiet) ctx.warn(Warn.unreadable, 'not read: a folder is where a file is expected', shown);
      return undefined;
    }
    if (!st.isFile()) {
      // A FIFO or a device would block or never end.
      if (!options.quiet) ctx.warn(Warn.unreadable, 'not read: not a regular file', shown);
      return undefined;
    }
    let position = 0;
    if (st.size > max) {
      if (!options.tail) {
        if (!options.quiet) ctx.warn(Warn.tooBig, `not read: ${st.size} bytes, over the limit of ${max}`, shown);
        return undefined;
      }
      position = st.size - max;
      if (!options.quiet) ctx.warn(Warn.tooBig, `${st.size} bytes: only the last ${max} are read`, shown);
    }
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(64 * 1024, max - total + 1));
      const n = readSync(fd, chunk, 0, chunk.length, position > 0 ? position + total : null);
      if (n === 0) break;
      chunks.push(chunk.subarray(0, n));
      total += n;
      if (total > max) {
        if (!options.quiet) ctx.warn(Warn.tooBig, `not read: over the limit of ${max} bytes`, shown);
        return undefined;
      }
    }
    return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, total);
  } catch (error) {
    if (!options.quiet) reportError(ctx, error, shown, 'not read');
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** A host file as text (see readBytes), a byte that is not UTF-8 kept as in names (./host-names.ts fileText). */
export function readHostText(ctx: CollectContext, hostPath: string, options: ReadOptions = {}): string | undefined {
  const data = readBytes(ctx, onHost(ctx, hostPath), hostPath, options);
  return data && fileText(data);
}

/** One scratch buffer for /proc reads: most files there are tiny and read thousands of times a query. */
let scratch = Buffer.allocUnsafe(64 * 1024);

/**
 * A file under /proc as text, quietly: processes come and go. Files of /proc report size 0 and are
 * read until end of file (at most maxBytes), without a stat.
 */
export function readProcText(ctx: CollectContext, relative: string, maxBytes = 4 * 1024 * 1024): string | undefined {
  let fd: number;
  try {
    fd = openSync(`${ctx.proc}/${relative}`, 'r');
  } catch {
    return undefined;
  }
  try {
    let total = 0;
    for (;;) {
      if (total === scratch.length) {
        if (scratch.length >= maxBytes) return undefined;
        const bigger = Buffer.allocUnsafe(Math.min(maxBytes + 1, scratch.length * 4));
        scratch.copy(bigger, 0, 0, total);
        scratch = bigger;
      }
      const room = scratch.length - total;
      const n = readSync(fd, scratch, total, room, null);
      total += n;
      if (total > maxBytes) return undefined;
      // Only a read of nothing is the end: seq_file files (/proc/net/tcp) give a page or so per
      // read, whatever room is left, and stopping at a short read lost all but their first lines.
      if (n === 0) break;
    }
    // Decoded as names are (./host-names.ts): a path in it (cmdline, /proc/net/unix) keeps its bytes.
    return fileText(scratch.subarray(0, total));
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** Entry names of a folder (decoded byte for byte); undefined (with a warning unless absent) when it cannot be listed. */
export function listFolder(ctx: CollectContext, file: DiskPath, shown: string, quiet = false): string[] | undefined {
  try {
    return readNamesSync(file);
  } catch (error) {
    if (!quiet) reportError(ctx, error, shown, 'folder not listed');
    return undefined;
  }
}

/** Where a link of /proc points (exe, cwd, a descriptor), decoded as names are (./host-names.ts); undefined when unreadable. */
export function readLink(file: DiskPath): string | undefined {
  try {
    return decodeText(readlinkSync(file, { encoding: 'buffer' }));
  } catch {
    return undefined;
  }
}

/** Lines of a text file, with their 1-based numbers, comments (#) and blank lines left out. */
export function* contentLines(text: string): Generator<[line: number, text: string]> {
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '');
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    yield [i + 1, line];
  }
}

/** A decimal integer field, or undefined when it is not one. */
export function int(text: string | undefined): number | undefined {
  if (text === undefined || !/^-?\d+$/.test(text.trim())) return undefined;
  const n = Number(text.trim());
  return Number.isSafeInteger(n) ? n : undefined;
}

/** User and group names by id from the host's /etc/passwd and /etc/group, once per query. */
export function idNames(ctx: CollectContext, file: '/etc/passwd' | '/etc/group'): ReadonlyMap<number, string> {
  const load = () => {
    const names = new Map<number, string>();
    const text = readHostText(ctx, file, { quiet: true });
    for (const [, line] of contentLines(text ?? '')) {
      const fields = line.split(':');
      const id = int(fields[2]);
      if (fields[0] && id !== undefined && !names.has(id)) names.set(id, fields[0]);
    }
    return names;
  };
  return ctx.memo ? ctx.memo(`names:${file}`, load) : load();
}
