/**
 * Files only their owner may read (keys, certificates, tokens), written so that a crash leaves
 * either the old file or the new one whole: one implementation for the agent's identity and the
 * server's PKI and admin token.
 */
import { chmodSync, closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';

/**
 * Writes `file` atomically with mode 0600: a fresh temporary file beside it (`FILE.tmp-PID`,
 * opened with 'wx' so that it is created 0600 and never reused with another mode), written and
 * fsynced, then renamed over the file. `syncFolder` also fsyncs the folder, so that the rename
 * itself is durable; callers writing several files sync it once after the last (syncFolder()).
 * On failure the temporary file is removed and the error is thrown as it is: callers give it
 * their own code.
 */
export function writePrivateFile(file: string, text: string, options: { readonly syncFolder?: boolean } = {}): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    rmSync(tmp, { force: true });
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    // The umask may have taken bits off 0600 at creation.
    chmodSync(tmp, 0o600);
    renameSync(tmp, file);
    if (options.syncFolder) syncFolder(path.dirname(file));
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  }
}

/** fsyncs a folder: the renames and creations in it survive a crash. */
export function syncFolder(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
