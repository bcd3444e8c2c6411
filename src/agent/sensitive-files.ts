/**
 * Sensitive files (driver.sensitive_files): password hashes, private keys. The patterns are
 * expanded to the files they name, and each file is handed to the driver by its identity, the
 * way the kernel sees it (inode, and device as super_block.s_dev), so that the driver reports
 * every open of it (file_open) whatever path, link or bind mount led there.
 *
 * Identity, not path: a file replaced by a rename (passwd writes a new /etc/shadow and renames
 * it over the old one) is a new inode, registered only at the next expansion. The agent expands
 * again every `sensitive_files_rescan_s` and about a second after a file event in a folder of a
 * pattern (KernelEvents); in between, opens of the new file are not reported.
 *
 * Devices: stat() reports a file's device as its filesystem shows it to user space, which on
 * btrfs subvolumes differs from the device the kernel keeps in the inode's super block. The
 * latter is also the one /proc/self/mountinfo shows for the mount holding the file, so when the
 * two differ the file is registered under both.
 */
import { readFile, readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { kernelDev } from './hash-cache-file.js';

export interface SensitiveFile {
  /** The path the pattern named it by. */
  readonly path: string;
  readonly ino: bigint;
  /** major << 20 | minor. */
  readonly dev: number;
}

/** The driver's limit (HADES_SECRETS_MAX). */
export const SENSITIVE_FILES_MAX = 4096;

const keyOf = (dev: number, ino: bigint | number): string => `${dev}:${ino}`;

/** One path component of a pattern as a test; undefined when it has no wildcard. */
function componentTest(component: string): RegExp | undefined {
  if (!/[*?]/.test(component)) return undefined;
  const body = component.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]');
  return new RegExp(`^${body}$`);
}

/** Every existing path a pattern names; unreadable folders name nothing. */
export async function expandPattern(pattern: string): Promise<string[]> {
  const parts = pattern.split('/').filter((p) => p !== '');
  let current = ['/'];
  for (const part of parts) {
    const test = componentTest(part);
    const next: string[] = [];
    for (const dir of current) {
      if (!test) {
        next.push(path.join(dir, part));
        continue;
      }
      let names: string[];
      try {
        names = await readdir(dir);
      } catch {
        continue;
      }
      for (const name of names.sort()) if (test.test(name)) next.push(path.join(dir, name));
    }
    current = next;
  }
  return current;
}

/** A pattern's folder as a test of a path's folder (for rescans after file events). */
function folderTest(pattern: string): RegExp {
  const dir = path.posix.dirname(pattern);
  const body = dir
    .split('/')
    .map((c) => (componentTest(c) ? c.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]') : c.replace(/[.+^${}()|[\]\\*?]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${body}$`);
}

interface Mount {
  readonly point: string;
  readonly dev: number;
}

/** Mount points and their devices from mountinfo text (octal escapes undone). */
export function parseMountinfo(text: string): Mount[] {
  const mounts: Mount[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const [major, minor] = (fields[2] ?? '').split(':').map(Number);
    const point = fields[4];
    if (point === undefined || major === undefined || minor === undefined || !Number.isInteger(major) || !Number.isInteger(minor)) continue;
    mounts.push({ point: point.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))), dev: ((major << 20) | (minor & 0xfffff)) >>> 0 });
  }
  return mounts;
}

/** The device of the mount holding `file` (the last mounted of the longest matching point). */
export function mountDevOf(mounts: readonly Mount[], file: string): number | undefined {
  let best: Mount | undefined;
  for (const m of mounts) {
    const under = m.point === '/' || file === m.point || file.startsWith(`${m.point}/`);
    if (under && (!best || m.point.length >= best.point.length)) best = m;
  }
  return best?.dev;
}

export interface Resolution {
  readonly added: readonly SensitiveFile[];
  readonly removed: readonly SensitiveFile[];
  /** Files beyond SENSITIVE_FILES_MAX, not registered. */
  readonly skipped: number;
}

export class SensitiveFiles {
  private current = new Map<string, SensitiveFile>();
  private readonly include: readonly string[];
  private readonly exclude: readonly string[];
  private readonly folders: readonly RegExp[];

  constructor(
    patterns: readonly string[],
    private readonly mountinfo = '/proc/self/mountinfo',
  ) {
    this.include = patterns.filter((p) => !p.startsWith('!'));
    this.exclude = patterns.filter((p) => p.startsWith('!')).map((p) => p.slice(1));
    this.folders = this.include.map(folderTest);
  }

  get size(): number {
    return this.current.size;
  }

  /** Every registered identity. */
  files(): SensitiveFile[] {
    return [...this.current.values()];
  }

  /** The path a registered file was named by, from the identity in a file_open record. */
  lookup(dev: number, ino: number): string | undefined {
    return this.current.get(keyOf(dev, ino))?.path;
  }

  /** True when a file event at `file` may have changed what the patterns name. */
  concerns(file: string): boolean {
    const dir = path.posix.dirname(file);
    return this.folders.some((f) => f.test(dir));
  }

  /** Expands the patterns again; returns what changed since the last time. */
  async resolve(): Promise<Resolution> {
    const excluded = new Set((await Promise.all(this.exclude.map(expandPattern))).flat());
    let mounts: Mount[] = [];
    try {
      mounts = parseMountinfo(await readFile(this.mountinfo, 'utf8'));
    } catch {
      // without mountinfo, stat's device alone
    }
    const next = new Map<string, SensitiveFile>();
    let skipped = 0;
    for (const file of [...new Set((await Promise.all(this.include.map(expandPattern))).flat())]) {
      if (excluded.has(file)) continue;
      let st;
      let real;
      try {
        st = await stat(file, { bigint: true });
        real = await realpath(file);
      } catch {
        continue;
      }
      if (!st.isFile()) continue;
      const devs = new Set([kernelDev(st.dev)]);
      const mounted = mountDevOf(mounts, real);
      if (mounted !== undefined) devs.add(mounted);
      for (const dev of devs) {
        const key = keyOf(dev, st.ino);
        if (next.has(key)) continue;
        if (next.size >= SENSITIVE_FILES_MAX) {
          skipped++;
          continue;
        }
        next.set(key, { path: file, ino: st.ino, dev });
      }
    }
    const added = [...next].filter(([k]) => !this.current.has(k)).map(([, f]) => f);
    const removed = [...this.current].filter(([k]) => !next.has(k)).map(([, f]) => f);
    this.current = next;
    return { added, removed, skipped };
  }
}

/** The driver's FILE_SECRET value: u64 inode, u32 device, u32 0, little-endian. */
export function secretKey(file: SensitiveFile): Uint8Array {
  const out = new Uint8Array(16);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, file.ino, true);
  view.setUint32(8, file.dev, true);
  return out;
}
