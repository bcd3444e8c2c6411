/**
 * Creating a folder and the missing ones above it, one at a time. Node's own recursive mkdir
 * never returns under /proc (mkdir there says ENOENT, which it takes for a missing parent, and
 * the parent exists: it tries again for ever), so a path from a configuration file under /proc
 * would hang the process that creates it. Here such a path fails with the error the kernel gave.
 */
import { mkdirSync, statSync } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';

const codeOf = (error: unknown): string | undefined => (error as NodeJS.ErrnoException).code;

/** `dir` (absolute) and each folder above it, up to the root. */
function* ancestors(dir: string): Generator<string> {
  for (let at = path.resolve(dir); ; at = path.dirname(at)) {
    yield at;
    if (path.dirname(at) === at) return;
  }
}

/** Whether a stat failed because nothing is there (rather than being refused). */
function missing(error: unknown): boolean {
  if (codeOf(error) === 'ENOENT') return true;
  throw error;
}

/** A folder made, or made meanwhile by someone else. */
function made(error: unknown): void {
  if (codeOf(error) !== 'EEXIST') throw error;
}

/** Creates `dir` and the folders above it that are missing (each with `mode`); throws the system error of one that cannot be. */
export function makeFolders(dir: string, mode: number): void {
  const absent: string[] = [];
  for (const at of ancestors(dir)) {
    try {
      statSync(at);
      break;
    } catch (error) {
      if (missing(error)) absent.push(at);
    }
  }
  for (const folder of absent.reverse()) {
    try {
      mkdirSync(folder, { mode });
    } catch (error) {
      made(error);
    }
  }
}

/** makeFolders without blocking the event loop. */
export async function makeFoldersAsync(dir: string, mode: number): Promise<void> {
  const absent: string[] = [];
  for (const at of ancestors(dir)) {
    try {
      await stat(at);
      break;
    } catch (error) {
      if (missing(error)) absent.push(at);
    }
  }
  for (const folder of absent.reverse()) {
    try {
      await mkdir(folder, { mode });
    } catch (error) {
      made(error);
    }
  }
}
