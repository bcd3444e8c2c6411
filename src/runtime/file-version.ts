/** Telling whether a file read before has changed since, from its stat alone. */
import type { Stats } from 'node:fs';

/**
 * A file's version, for "read it again when it changed": another file put in place (device,
 * inode), or the same one written (size, times: the ctime cannot be set back from user space,
 * so a file given its old mtime with `touch -r`, `cp -p` or `rsync -t` still shows).
 */
export function fileVersion(stats: Stats): string {
  return `${stats.dev}:${stats.ino}:${stats.size}:${stats.mtimeMs}:${stats.ctimeMs}`;
}
