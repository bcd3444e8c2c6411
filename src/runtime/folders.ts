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

/** The folders of `dir` and above that do not exist, deepest first. */
function missingFrom(dir: string, exists: (p: string) => boolean): string[] {
  const missing: string[] = [];
  for (let at = path.resolve(dir); !exists(at); ) {
    missing.push(at);
    const parent = path.dirname(at);
    if (parent === at) break;
    at = parent;
  }
  return missing;
}

function existsSync(p: string): boolean {
  try {
    statSync(p);
    return true;
  } catch (error) {
    if (codeOf(error) === 'ENOENT') return false;
    throw error;
  }
}

/** Creates `dir` and the folders above it that are missing (each with `mode`); throws the system error of one that cannot be. */
export function makeFolders(dir: string, mode: number): void {
  for (const folder of missingFrom(dir, existsSync).reverse()) {
    try {
      mkdirSync(folder, { mode });
    } catch (error) {
      if (codeOf(error) !== 'EEXIST') throw error;
    }
  }
}

/** makeFolders without blocking the event loop. */
export async function makeFoldersAsync(dir: string, mode: number): Promise<void> {
  const missing: string[] = [];
  for (let at = path.resolve(dir); ; ) {
    try {
      await stat(at);
      break;
    } catch (error) {
      if (codeOf(error) !== 'ENOENT') throw error;
    }
    missing.push(at);
    const parent = path.dirname(at);
    if (parent === at) break;
    at = parent;
  }
  for (const folder of missing.reverse()) {
    try {
      await mkdir(folder, { mode });
    } catch (error) {
      if (codeOf(error) !== 'EEXIST') throw error;
    }
  }
}
