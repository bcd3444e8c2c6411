/**
 * User and group names from /etc/passwd and /etc/group, re-read when the files change (checked
 * at most every few seconds, on use: no timer to own).
 */
import { readFileSync, statSync } from 'node:fs';
import { fileVersion } from '../runtime/file-version.js';

const RECHECK_MS = 5000;

class NameFile {
  private names = new Map<number, string>();
  /** Increases each time the file is read anew. */
  version = 0;
  /** The file's version when last read (fileVersion). */
  private stamp = '';
  private checkedAt = 0;

  constructor(private readonly path: string) {}

  name(id: number): string | undefined {
    this.check();
    return this.names.get(id);
  }

  /** Re-reads the file when it changed, looking at most every few seconds. */
  check(): void {
    const now = Date.now();
    if (now - this.checkedAt > RECHECK_MS) {
      this.checkedAt = now;
      this.reload();
    }
  }

  private reload(): void {
    try {
      // Not the mtime alone: a file put in place with an old mtime (rename of a copy made with
      // cp -p, touch -r to hide an added user) would keep its old names for good.
      const stamp = fileVersion(statSync(this.path));
      if (stamp === this.stamp) return;
      this.stamp = stamp;
      this.names = parseColonFile(readFileSync(this.path, 'utf8'));
    } catch {
      // Read again at the next check, not only once the file changes (a read that failed for
      // want of file descriptors would keep every name unknown until then).
      this.stamp = '';
      this.names = new Map();
    }
    this.version++;
  }
}

/** Parses passwd/group lines: name:x:id:...; malformed lines are skipped. */
export function parseColonFile(text: string): Map<number, string> {
  const names = new Map<number, string>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const [name, , id] = line.split(':');
    if (!name || id === undefined || !/^\d+$/.test(id)) continue;
    if (!names.has(Number(id))) names.set(Number(id), name);
  }
  return names;
}

export class Accounts {
  private readonly users: NameFile;
  private readonly groups: NameFile;

  constructor(etc = '/etc') {
    this.users = new NameFile(`${etc}/passwd`);
    this.groups = new NameFile(`${etc}/group`);
  }

  /** Changes whenever a name may have changed, so that callers can drop cached names. */
  get version(): number {
    this.users.check();
    this.groups.check();
    return this.users.version + this.groups.version;
  }

  user(uid: number): string | undefined {
    return this.users.name(uid);
  }

  group(gid: number): string | undefined {
    return this.groups.name(gid);
  }
}
