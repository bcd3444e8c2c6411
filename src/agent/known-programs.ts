/**
 * Shells and interpreters recognised by their content, wherever they live and under any name:
 * `cp /bin/bash /usr/local/lib/.x/kworker` makes a file whose name, path and arguments say
 * nothing, but whose SHA-256 is bash's. The agent keeps the hashes of the installed programs the
 * rules care about (the files of /etc/shells, and the interpreters and network tools of
 * KNOWN_PROGRAM_NAMES in the usual program folders) and names, on the exec event of any other
 * file with one of those hashes, the installed program it is a copy of (hades.process.copy_of).
 *
 * When this is known: the hash of an executed file is computed once per version (hasher.ts), and
 * a new file's event waits for it only a short while. A copy is a new file, so its first exec
 * would go out without its hash; the sizes of the known programs make the cheap pre-check that
 * avoids it: a file of one of those sizes is hashed first in line (its own read budget) and its
 * event waits longer (hasher.ts, `urgent`). Files of other sizes, and every version already
 * hashed, cost nothing more than the one Map lookup of `copyOf`.
 *
 * The installed files change with package upgrades: their folders are watched (and /etc/shells),
 * and a change makes a refresh, which stats the listed files and hashes those that changed;
 * a refresh also runs every `refreshMs` in case a watch was missed. Earlier versions are kept
 * (up to `maxVersions`): a copy made before an upgrade is still a copy of that program.
 */
import { readdirSync, readFileSync, realpathSync, statSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { identityKey, identityOf, type FileIdentity } from './hash-cache-file.js';
import type { HashResult } from './hasher.js';

/** What an exec event says of a copy (hades.process.copy_of). Shared, read-only. */
export interface CopyOf {
  /** The installed program's file (its real path, links resolved). */
  readonly path: string;
  /** Its file name, e.g. bash, dash, python3.11: what the rule pack's lists hold. */
  readonly name: string;
}

/**
 * Names looked for in the program folders, besides the files of /etc/shells: shells, BusyBox,
 * script interpreters, and the network tools that relay a shell.
 */
export const KNOWN_PROGRAM_NAMES =
  /^(sh|bash|rbash|dash|zsh[0-9.]*|ksh|ksh93|mksh|mksh-static|pdksh|ash|csh|bsd-csh|tcsh|fish|yash|busybox|python[0-9.]*|perl[0-9.]*|php[0-9.]*|ruby[0-9.]*|node|nodejs|lua[0-9.]*|luajit|tclsh[0-9.]*|expect|gawk|mawk|nawk|socat|nc|ncat|netcat|nc\.traditional|nc\.openbsd|telnet)$/;

export const DEFAULT_PROGRAM_FOLDERS: readonly string[] = ['/usr/bin', '/bin', '/usr/sbin', '/sbin', '/usr/local/bin'];

export interface KnownProgramsOptions {
  /** The agent's hasher: the hashes of the installed files are its, and kept with its others. */
  readonly hasher: { digest(path: string, version: FileIdentity): HashResult | Promise<HashResult> };
  readonly shellsFile?: string;
  readonly folders?: readonly string[];
  readonly names?: RegExp;
  /** A refresh at least this often (watches can miss changes). */
  readonly refreshMs?: number;
  /** A watched change is followed by a refresh this much later (an upgrade touches many files). */
  readonly settleMs?: number;
  /** Program versions remembered, the current ones and earlier ones; the oldest go first. */
  readonly maxVersions?: number;
  /** A problem, said once: `warn` for what keeps the list from being complete by accident, `info` for what the configuration chose (a program larger than hashing.max_file_mb). */
  readonly onProblem?: (message: string, level: 'warn' | 'info') => void;
}

/** One content of a known program. */
interface Version {
  readonly copyOf: CopyOf;
  /** Where this content is (or was) installed: an exec of one of these paths is the program itself. */
  readonly paths: string[];
  readonly size: number;
}

/** One installed file, as the last refresh found it. */
interface Installed {
  readonly key: string;
  readonly sha256: string | undefined;
}

export class KnownPrograms {
  /** By SHA-256, least recently confirmed first. */
  private readonly versions = new Map<string, Version>();
  private sizes = new Set<number>();
  /** The installed files by real path: their version key, to hash again only what changed. */
  private installed = new Map<string, Installed>();
  private watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;
  private settleTimer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private closed = false;
  private readonly told = new Set<string>();
  readonly stats = { refreshes: 0, hashed: 0, versions: 0 };

  constructor(private readonly options: KnownProgramsOptions) {}

  /**
   * The installed program whose content the file at `executable` has, when it is not that
   * program's installed file itself (nor a link to it): a copy, under any name, anywhere.
   */
  copyOf(executable: string, sha256: string): CopyOf | undefined {
    const version = this.versions.get(sha256);
    if (version === undefined || version.paths.includes(executable)) return undefined;
    return version.copyOf;
  }

  /** A file of this size may be a copy: its hash is wanted before its event leaves. */
  isCandidate(size: number): boolean {
    return this.sizes.has(size);
  }

  /** The contents known, for tests and stats. */
  get known(): readonly CopyOf[] {
    return [...this.versions.values()].map((v) => v.copyOf);
  }

  /** Watches the folders and starts the periodic refresh; then refreshes now (awaited). */
  async start(): Promise<void> {
    const folders = new Set<string>();
    for (const folder of [...(this.options.folders ?? DEFAULT_PROGRAM_FOLDERS), path.dirname(this.shellsFile)]) {
      try {
        folders.add(realpathSync(folder));
      } catch {
        // absent here
      }
    }
    const names = this.options.names ?? KNOWN_PROGRAM_NAMES;
    const shells = path.basename(this.shellsFile);
    for (const folder of folders) {
      try {
        const watcher = watch(folder, { persistent: false }, (_kind, name) => {
          // dpkg writes NAME.dpkg-new and renames it over NAME: either name tells.
          const base = typeof name === 'string' ? name.replace(/\.dpkg-(new|tmp)$/, '') : undefined;
          if (base === undefined || names.test(base) || base === shells) this.refreshSoon();
        });
        watcher.on('error', (error) => this.problem(`${folder} is no longer watched: ${(error as NodeJS.ErrnoException).code ?? String(error)}`));
        this.watchers.push(watcher);
      } catch (error) {
        this.problem(`${folder} cannot be watched (${(error as NodeJS.ErrnoException).code ?? String(error)}): refreshed every ${Math.round((this.options.refreshMs ?? 300_000) / 1000)} s only`);
      }
    }
    this.timer = setInterval(() => void this.refresh(), this.options.refreshMs ?? 300_000);
    this.timer.unref();
    await this.refresh();
  }

  /** Stops watching; a refresh under way ends without effect. */
  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    clearTimeout(this.settleTimer);
    this.timer = undefined;
    this.settleTimer = undefined;
    for (const watcher of this.watchers) watcher.close();
    this.watchers = [];
  }

  private get shellsFile(): string {
    return this.options.shellsFile ?? '/etc/shells';
  }

  private refreshSoon(): void {
    if (this.closed || this.settleTimer) return;
    this.settleTimer = setTimeout(() => {
      this.settleTimer = undefined;
      void this.refresh();
    }, this.options.settleMs ?? 1000);
    this.settleTimer.unref();
  }

  /** Finds the installed files again and hashes those that changed. One at a time; never throws. */
  refresh(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.refreshOnce();
        } while (this.again && !this.closed);
      } catch (error) {
        this.problem(`known programs not refreshed: ${String(error)}`);
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  /** The paths to look at: the lines of /etc/shells, then the folders' files with a known name. */
  private listed(): string[] {
    const out: string[] = [];
    try {
      for (const line of readFileSync(this.shellsFile, 'utf8').split('\n')) {
        const entry = line.trim();
        if (entry.startsWith('/')) out.push(entry);
      }
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') this.problem(`${this.shellsFile} cannot be read: ${code ?? String(error)}`);
    }
    const names = this.options.names ?? KNOWN_PROGRAM_NAMES;
    for (const folder of this.options.folders ?? DEFAULT_PROGRAM_FOLDERS) {
      let entries: string[];
      try {
        entries = readdirSync(folder);
      } catch {
        continue;
      }
      for (const name of entries.sort()) if (names.test(name)) out.push(path.join(folder, name));
    }
    return out;
  }

  private async refreshOnce(): Promise<void> {
    this.stats.refreshes++;
    // Real path -> the listed paths that lead to it, and the file's identity.
    const files = new Map<string, { paths: Set<string>; version: FileIdentity }>();
    for (const listed of this.listed()) {
      let real: string;
      let version: FileIdentity;
      try {
        real = realpathSync(listed);
        const s = statSync(real, { bigint: true });
        if (!s.isFile() || (Number(s.mode) & 0o111) === 0) continue;
        version = identityOf(s);
      } catch {
        continue;
      }
      const file = files.get(real);
      if (file) file.paths.add(listed);
      else files.set(real, { paths: new Set([real, listed]), version });
    }
    const installed = new Map<string, Installed>();
    // Inode -> the first real path with it: a hard link (perl and perl5.36.0) is the same program.
    const inodes = new Map<string, string>();
    // The oldest change first: of two files with the same content, the later one is the copy
    // (a ctime cannot be set back from user space), whatever their names or folders.
    const ordered = [...files].sort(([, a], [, b]) => a.version.ctimeNs - b.version.ctimeNs);
    for (const [real, { paths, version }] of ordered) {
      if (this.closed) return;
      const key = identityKey(version);
      let sha256 = this.installed.get(real)?.key === key ? this.installed.get(real)?.sha256 : undefined;
      if (sha256 === undefined) {
        const result = await this.options.hasher.digest(real, version);
        if (result.status === 'ok' && result.sha256) {
          sha256 = result.sha256;
          this.stats.hashed++;
        } else if (result.status !== 'disabled') {
          // Too large is the configuration's choice (hashing.max_file_mb; the node binary Hades runs on is one): said, not warned.
          this.problem(`${real} not hashed (${result.status}): copies of it are not recognised`, result.status === 'too_large' ? 'info' : 'warn');
        }
      }
      installed.set(real, { key, sha256 });
      if (sha256 === undefined) continue;
      const inode = `${version.dev}:${version.ino}`;
      const sameFile = inodes.get(inode);
      if (sameFile === undefined) inodes.set(inode, real);
      const known = this.versions.get(sha256);
      if (known === undefined) {
        this.versions.set(sha256, { copyOf: Object.freeze({ path: real, name: path.basename(real) }), paths: [...paths], size: version.size });
        continue;
      }
      // Known content: the same program (another link or folder of it, or its hard link), or a
      // copy of it under another name among the listed files (`cp /bin/bash /usr/local/bin/perl`),
      // which stays a copy.
      if (sameFile !== undefined || path.basename(real) === known.copyOf.name) {
        for (const p of paths) if (!known.paths.includes(p)) known.paths.push(p);
      }
      // Confirmed: the most recently seen are kept longest.
      this.versions.delete(sha256);
      this.versions.set(sha256, known);
    }
    if (this.closed) return;
    this.installed = installed;
    const max = this.options.maxVersions ?? 256;
    for (const sha256 of this.versions.keys()) {
      if (this.versions.size <= max) break;
      this.versions.delete(sha256);
    }
    const sizes = new Set<number>();
    for (const version of this.versions.values()) sizes.add(version.size);
    this.sizes = sizes;
    this.stats.versions = this.versions.size;
  }

  /** Each problem is told once: a refresh finds the same ones again. */
  private problem(message: string, level: 'warn' | 'info' = 'warn'): void {
    if (this.told.has(message)) return;
    if (this.told.size < 256) this.told.add(message);
    this.options.onProblem?.(message, level);
  }
}
