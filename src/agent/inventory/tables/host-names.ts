/**
 * File names as the tables keep them. Linux names are bytes, not text: a name that is not UTF-8
 * read as text and written back is another name (each bad byte becomes U+FFFD), which opens
 * nothing, so the file would be silently missing from the table (and an intruder could hide a
 * file by its name alone). Folders are therefore listed as bytes and each name decoded as the
 * agent decodes event text (src/agent/driver/bytes.ts): a byte that is not UTF-8 becomes
 * U+DC00 + the byte. Tables join, match and compare these names as ordinary strings; `diskPath`
 * turns one back into the exact bytes when the file system is touched, and the engine shows
 * such a byte as U+FFFD in a row (`shownText`), as SQLite text must be UTF-8. The text of files is
 * decoded the same way (`fileText`): a path written in a file (a home in /etc/passwd, a library in
 * /etc/ld.so.preload, an include of sudoers or sshd_config) names the file by its bytes too.
 */
import { isUtf8 } from 'node:buffer';
import type { Dirent } from 'node:fs';
import { readdirSync } from 'node:fs';
import { readdir, readlink } from 'node:fs/promises';
import { decodeText, type DiskPath } from '../../driver/bytes.js';

export { diskPath, type DiskPath } from '../../driver/bytes.js';

/**
 * A file's content as text, decoded as names are: each byte that is not UTF-8 becomes U+DC00 +
 * the byte instead of U+FFFD, so that a path read from the file and given to `diskPath` is the
 * file it names. Checked as a whole first: most files are UTF-8, and that check is native.
 */
export const fileText = (data: Buffer): string => (isUtf8(data) ? data.toString('utf8') : decodeText(data));

/** One entry of a folder: its name decoded byte for byte, and its type as readdir gave it. */
export class FolderEntry {
  readonly name: string;

  constructor(private readonly dirent: Dirent<Buffer>) {
    this.name = decodeText(dirent.name);
  }

  isFile(): boolean {
    return this.dirent.isFile();
  }

  isDirectory(): boolean {
    return this.dirent.isDirectory();
  }

  isSymbolicLink(): boolean {
    return this.dirent.isSymbolicLink();
  }
}

const byName = (a: { name: string }, b: { name: string }): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** A folder's entries sorted by name; throws as readdir does. */
export async function readFolder(folder: DiskPath): Promise<FolderEntry[]> {
  const entries = await readdir(folder, { withFileTypes: true, encoding: 'buffer' });
  return entries.map((d) => new FolderEntry(d)).sort(byName);
}

/** readFolder, synchronously (for walks: see software-files.ts). */
export function readFolderSync(folder: DiskPath): FolderEntry[] {
  return readdirSync(folder, { withFileTypes: true, encoding: 'buffer' })
    .map((d) => new FolderEntry(d))
    .sort(byName);
}

/** A folder's entry names, unsorted; throws as readdir does. */
export function readNamesSync(folder: DiskPath): string[] {
  return readdirSync(folder, { encoding: 'buffer' }).map((name) => decodeText(name));
}

/** Where a symbolic link points, decoded as names are; throws as readlink does. */
export async function readLinkText(link: DiskPath): Promise<string> {
  return decodeText(await readlink(link, { encoding: 'buffer' }));
}

interface WellFormed {
  isWellFormed(): boolean;
  toWellFormed(): string;
}

/**
 * Text fit for a row or a warning: each lone surrogate (a raw byte of a name) as U+FFFD. SQLite
 * text is UTF-8, and a lone surrogate given to it as is would be stored as invalid UTF-8.
 */
export function shownText(text: string): string {
  const s = text as unknown as WellFormed;
  return s.isWellFormed() ? text : s.toWellFormed();
}
