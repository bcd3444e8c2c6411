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
 * Who may name a file: below a pattern's first wildcard, users own the folders (their ~/.ssh).
 * A symbolic link there would let any user register a file every process opens (a link to
 * /etc/ld.so.cache named ~/.ssh/id_x) and flood the pipeline with alerts, so below the first
 * wildcard no component may be a symbolic link, and at most MAX_PER_FOLDER files are taken from
 * one folder (a user creating thousands of id_* files cannot push others' keys out).
 *
 * Devices: stat() reports a file's device as its filesystem shows it to user space, which on
 * btrfs subvolumes differs from the device the kernel keeps in the inode's super block. The
 * latter is also the one /proc/self/mountinfo shows for the mount holding the file, so when the
 * two differ the file is registered under both.
 */
import { statSync, type BigIntStats } from 'node:fs';
import { lstat, readFile, readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { kernelDev } from './hash-cache-file.js';

export interface SensitiveFile {
  /** The path the pattern named it by. */
  readonly path: string;
  readonly ino: bigint;
  /** major << 20 | minor. */
  readonly dev: number;
  /** When the inode was made (statx), 0 where the file system does not tell. */
  readonly birthtimeNs?: bigint;
}

/** The driver's limit (HADES_SECRETS_MAX). */
export const SENSITIVE_FILES_MAX = 4096;
/** Files taken from one folder. */
export const MAX_PER_FOLDER = 64;

export const keyOf = (dev: number, ino: bigint | number): string => `${dev}:${ino}`;

/** One path component of a pattern as a test; undefined when it has no wildcard. */
function componentTest(component: string): RegExp | undefined {
  if (!/[*?]/.test(component)) return undefined;
  const body = component.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]');
  return new RegExp(`^${body}$`);
}

/** A component as a test of itself, wildcards included. */
const componentMatcher = (component: string): RegExp => componentTest(component) ?? new RegExp(`^${component.replace(/[.+^${}()|[\]\\*?]/g, '\\$&')}$`);

/**
 * Every existing path a pattern names; unreadable folders name nothing. Below the first
 * wildcard, paths through a symbolic link are left out.
 */
export async function expandPattern(pattern: string): Promise<string[]> {
  const parts = pattern.split('/').filter((p) => p !== '');
  let current = ['/'];
  let wild = false;
  for (const part of parts) {
    const test = componentTest(part);
    wild ||= test !== undefined;
    const next: string[] = [];
    for (const dir of current) {
      const names = test ? await readdir(dir).catch(() => [] as string[]) : [part];
      for (const name of names.sort()) {
        if (test && !test.test(name)) continue;
        const full = path.join(dir, name);
        if (wild && (await lstat(full).catch(() => undefined))?.isSymbolicLink() !== false) continue;
        next.push(full);
      }
    }
    current = next;
  }
  return current;
}

/** The tests of a pattern's folder components (for rescans after file events). */
function folderTests(pattern: string): RegExp[] {
  return path.posix
    .dirname(pattern)
    .split('/')
    .filter((c) => c !== '')
    .map(componentMatcher);
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
  /** Every file the patterns name now, by key (`dev:ino`). */
  readonly files: ReadonlyMap<string, SensitiveFile>;
  /** Files beyond SENSITIVE_FILES_MAX or MAX_PER_FOLDER, not registered. */
  readonly skipped: number;
}

export class SensitiveFiles {
  private current = new Map<string, SensitiveFile>();
  private readonly include: readonly string[];
  private readonly exclude: readonly string[];
  private readonly folders: readonly (readonly RegExp[])[];

  constructor(
    patterns: readonly string[],
    private readonly mountinfo = '/proc/self/mountinfo',
  ) {
    this.include = patterns.filter((p) => !p.startsWith('!'));
    this.exclude = patterns.filter((p) => p.startsWith('!')).map((p) => p.slice(1));
    this.folders = this.include.map(folderTests);
  }

  /**
   * The path a registered file was named by, from the identity in a file_open record of
   * `opened`; undefined when none is, or when the registration is stale: the file at the
   * registered path was replaced or removed since (passwd and groupadd rename a new file over
   * the old one), and the inode opened is not the registered file moved elsewhere but a new
   * file given the freed inode number (its birth time differs). The driver reports opens by
   * identity until the next expansion, so without this an unrelated file created in that moment
   * would be reported as the secret. A file that cannot be looked at, or a file system that
   * tells no birth time, keeps the registration. Nothing is looked at for an open by the
   * registered path itself (nearly every open of a secret): the checks are for the other paths.
   */
  lookup(dev: number, ino: number, opened?: string): string | undefined {
    const file = this.current.get(keyOf(dev, ino));
    if (file === undefined || opened === undefined || opened === file.path) return file?.path;
    const atPath = statOrUndefined(file.path);
    if (atPath?.ino === file.ino) return file.path;
    const now = statOrUndefined(opened);
    if (now === undefined || now.ino !== file.ino) return file.path;
    const born = file.birthtimeNs ?? 0n;
    return born === 0n || now.birthtimeNs === 0n || now.birthtimeNs === born ? file.path : undefined;
  }

  /**
   * True when a file event at `file` may have changed what the patterns name: a change in a
   * pattern's folder, or to that folder or one above it (`mv ~/.ssh.new ~/.ssh`, a new home).
   */
  concerns(file: string): boolean {
    const parts = file.split('/').filter((c) => c !== '');
    return this.folders.some((tests) => parts.length <= tests.length + 1 && parts.every((part, i) => i >= tests.length || tests[i]?.test(part)));
  }

  /** Expands the patterns again: what they name now (also what lookup answers from). */
  async resolve(): Promise<Resolution> {
    const excluded = new Set((await Promise.all(this.exclude.map(expandPattern))).flat());
    let mounts: Mount[] = [];
    try {
      mounts = parseMountinfo(await readFile(this.mountinfo, 'utf8'));
    } catch {
      // without mountinfo, stat's device alone
    }
    const next = new Map<string, SensitiveFile>();
    const perFolder = new Map<string, number>();
    let skipped = 0;
    for (const file of [...new Set((await Promise.all(this.include.map(expandPattern))).flat())]) {
      if (excluded.has(file)) continue;
      const folder = path.dirname(file);
      const taken = perFolder.get(folder) ?? 0;
      if (taken >= MAX_PER_FOLDER) {
        skipped++;
        continue;
      }
      let st;
      let mounted;
      try {
        st = await stat(file, { bigint: true });
        // The mount is found by the file's real path; without mountinfo there is none to find.
        if (mounts.length > 0) mounted = mountDevOf(mounts, await realpath(file));
      } catch {
        continue;
      }
      if (!st.isFile()) continue;
      perFolder.set(folder, taken + 1);
      const devs = new Set([kernelDev(st.dev)]);
      if (mounted !== undefined) devs.add(mounted);
      for (const dev of devs) {
        const key = keyOf(dev, st.ino);
        if (next.has(key)) continue;
        if (next.size >= SENSITIVE_FILES_MAX) {
          skipped++;
          continue;
        }
        next.set(key, { path: file, ino: st.ino, dev, birthtimeNs: st.birthtimeNs });
      }
    }
    this.current = next;
    return { files: next, skipped };
  }
}

function statOrUndefined(file: string): BigIntStats | undefined {
  try {
    return statSync(file, { bigint: true, throwIfNoEntry: false });
  } catch {
    return undefined;
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
