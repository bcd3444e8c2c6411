/**
 * Reading a small file that someone else may have put in place (a configuration, a plugin
 * manifest): only a regular file, and no more than a bound. It is opened without blocking and
 * checked on what was opened (fstat), so that a FIFO nobody writes cannot hold the event loop at
 * open, a device such as /dev/zero is not read until memory runs out, and a file swapped between
 * a check and the read is the one checked.
 */
import { isUtf8 } from 'node:buffer';
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { configError, MAX_CONFIG_BYTES } from '../common/config/index.js';
import { HadesError } from '../common/errors.js';

/** Why a file was not read. `size` is absent when the file grew past the bound while it was read. */
export type FileRefusal =
  | { readonly kind: 'unreadable'; readonly code: string; readonly cause: unknown }
  | { readonly kind: 'folder' }
  | { readonly kind: 'not_a_file' }
  | { readonly kind: 'too_large'; readonly size?: number };

/** The text of `file`, a regular file of at most `maxBytes`; throws what `refuse` makes of a problem. */
export function readRegularFile(file: string, maxBytes: number, refuse: (why: FileRefusal) => Error): string {
  return readRegularBytes(file, maxBytes, refuse).toString('utf8');
}

/** The bytes of `file`, a regular file of at most `maxBytes`; throws what `refuse` makes of a problem. */
export function readRegularBytes(file: string, maxBytes: number, refuse: (why: FileRefusal) => Error): Buffer {
  const unreadable = (error: unknown) => refuse({ kind: 'unreadable', code: (error as NodeJS.ErrnoException).code ?? String(error), cause: error });
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (error) {
    throw unreadable(error);
  }
  try {
    let stats;
    try {
      stats = fstatSync(fd);
    } catch (error) {
      throw unreadable(error);
    }
    if (stats.isDirectory()) throw refuse({ kind: 'folder' });
    if (!stats.isFile()) throw refuse({ kind: 'not_a_file' });
    if (stats.size > maxBytes) throw refuse({ kind: 'too_large', size: stats.size });
    // The size fstat gave and one byte more, so that the end is seen; a file that grows while it
    // is read gets room up to one byte more than allowed, which is caught.
    let buffer = Buffer.allocUnsafe(stats.size + 1);
    let length = 0;
    for (;;) {
      if (length === buffer.length) {
        const grown = Buffer.allocUnsafe(Math.min(maxBytes + 1, buffer.length * 2));
        buffer.copy(grown, 0, 0, length);
        buffer = grown;
      }
      let n: number;
      try {
        n = readSync(fd, buffer, length, buffer.length - length, null);
      } catch (error) {
        throw unreadable(error);
      }
      if (n === 0) break;
      length += n;
      if (length > maxBytes) throw refuse({ kind: 'too_large' });
    }
    return buffer.subarray(0, length);
  } finally {
    closeSync(fd);
  }
}

/** The most a file of a data folder read by readOwnFile may hold unless its reader says less. */
export const OWN_FILE_MAX_BYTES = 16 * 1024 * 1024;

/**
 * A file of the program's own data folder (a run file, a kept configuration, an identity, a state
 * file), read as readFileSync reads it but only when it is a regular file of at most `maxBytes`:
 * a FIFO put there would otherwise hold the read, and the agent with it, for good. Throws what
 * open(2) or read(2) said (ENOENT for a file not there, as readFileSync), and
 * HADES_ERR_FILE_NOT_REGULAR (a FIFO, a device, a folder) or HADES_ERR_FILE_TOO_LARGE.
 */
export function readOwnFile(file: string, maxBytes = OWN_FILE_MAX_BYTES, encoding: BufferEncoding = 'utf8'): string {
  return readRegularBytes(file, maxBytes, (why) => {
    switch (why.kind) {
      case 'unreadable':
        return why.cause as Error;
      case 'folder':
      case 'not_a_file':
        return new HadesError('HADES_ERR_FILE_NOT_REGULAR', `${file} is not a regular file${why.kind === 'folder' ? ' but a folder' : ''}: not read`);
      case 'too_large':
        return new HadesError('HADES_ERR_FILE_TOO_LARGE', `${file} is ${why.size === undefined ? `over ${maxBytes}` : why.size} bytes, over the ${maxBytes} such a file may have: not read`);
    }
  }).toString(encoding);
}

/**
 * Opens `file` for reading as the thread pool does, but only when it is a regular file: without
 * blocking (a FIFO swapped in where a program or a history file was holds an open without
 * O_NONBLOCK for ever, and with it one of libuv's four threads), without taking a terminal as the
 * controlling one, and, unless `follow`, without following a symbolic link in the last place (a
 * link to a device whose open does something, such as a watchdog). What was opened is checked
 * (fstat), so a file swapped in after a check is refused too. Throws
 * HADES_ERR_FILE_NOT_REGULAR for anything but a regular file, or what open(2) said (ELOOP for a link).
 */
export async function openRegular(file: string | Buffer, follow = false): Promise<FileHandle> {
  const handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY | (follow ? 0 : constants.O_NOFOLLOW));
  let regular = false;
  try {
    regular = (await handle.stat()).isFile();
  } finally {
    if (!regular) await handle.close();
  }
  if (!regular) throw new HadesError('HADES_ERR_FILE_NOT_REGULAR', `${String(file)} is not a regular file`);
  return handle;
}

/**
 * A configuration file's text (`hades agent`, `hades server`, `hades config check`, and the
 * agent's reloads): HADES_ERR_CONFIG_READ, _NOT_A_FILE or _TOO_LARGE otherwise.
 */
export function readConfigText(file: string): string {
  const bytes = readRegularBytes(file, MAX_CONFIG_BYTES, (why) => {
    switch (why.kind) {
      case 'unreadable':
        return new HadesError('HADES_ERR_CONFIG_READ', `cannot read ${file}: ${why.code}`, { cause: why.cause });
      case 'folder':
      case 'not_a_file':
        return new HadesError('HADES_ERR_CONFIG_NOT_A_FILE', `${file} is not a regular file${why.kind === 'folder' ? ' but a folder' : ''}; give the path of a YAML file`);
      case 'too_large':
        return new HadesError('HADES_ERR_CONFIG_TOO_LARGE', `${file} is ${why.size === undefined ? `over ${MAX_CONFIG_BYTES}` : why.size} bytes; a configuration may be at most ${MAX_CONFIG_BYTES}`);
    }
  });
  const text = configText(bytes, file);
  if (text.trim() === '') throw configError([{ code: 'HADES_ERR_CONFIG_EMPTY', path: '', line: 1, column: 1, message: `${file} is empty (${bytes.length} bytes of white space at most): an interrupted write leaves such a file, and its defaults would put the data and the addresses elsewhere; restore it, or write \`# defaults\` in it to mean every default` }], file);
  return text;
}

/**
 * The text of a configuration's bytes. Bytes that are not UTF-8 (a file saved as Latin-1) are
 * refused with their line and column (HADES_ERR_CONFIG_INVALID, the problem HADES_ERR_CONFIG_SYNTAX):
 * decoded as they come, each would turn into U+FFFD and a path holding one name another file.
 */
export function configText(bytes: Buffer, source: string): string {
  const bad = notUtf8(bytes);
  if (bad === undefined) return bytes.toString('utf8');
  throw configError([{ code: 'HADES_ERR_CONFIG_SYNTAX', path: '', line: bad.line, column: bad.column, message: bad.message }], source);
}

/** Where a file's bytes stop being UTF-8 text: the first byte that is not, and a message naming it. */
export interface NotUtf8 {
  readonly line: number;
  readonly column: number;
  readonly message: string;
}

/** The first place where `bytes` is not UTF-8 text (line and column from 1), or undefined when all of it is. */
export function notUtf8(bytes: Buffer): NotUtf8 | undefined {
  if (isUtf8(bytes)) return undefined;
  const bad = firstInvalidUtf8(bytes);
  const lineStart = bytes.lastIndexOf(0x0a, bad - 1) + 1;
  const line = bytes.subarray(0, lineStart).filter((b) => b === 0x0a).length + 1;
  const column = bytes.toString('utf8', lineStart, bad).length + 1;
  const byte = `0x${(bytes[bad] ?? 0).toString(16).toUpperCase().padStart(2, '0')}`;
  return { line, column, message: `byte ${byte} is not UTF-8 text: save the file as UTF-8` };
}

/** Offset of the first byte that does not begin a valid UTF-8 character (the text is not all UTF-8). */
function firstInvalidUtf8(bytes: Buffer): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i] ?? 0;
    const size = b < 0x80 ? 1 : b >= 0xc2 && b < 0xe0 ? 2 : b >= 0xe0 && b < 0xf0 ? 3 : b >= 0xf0 && b < 0xf5 ? 4 : 0;
    // isUtf8 of the one character refuses what the lead byte alone does not say: overlong forms, surrogates, a cut sequence.
    if (size === 0 || !isUtf8(bytes.subarray(i, i + size))) return i;
    i += size;
  }
  return bytes.length;
}
