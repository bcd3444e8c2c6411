/**
 * Whether a path still names the file a process holds open. A file deleted, or moved away by an
 * external logrotate (or its folder removed), takes every later write with it, unseen: a writer
 * that appends to a path asks this before writing and opens the path anew when it moved. Checked
 * at most every `everyMs` (one lstat), so that appends stay cheap. A symbolic link put at the
 * path counts as moved (the link itself is looked at, not what it points to): the writer's next
 * open refuses it, where following it would append to whatever file the link names.
 */
import { lstatSync } from 'node:fs';

export class PathWatch {
  private dev = 0;
  private ino = 0;
  private checkedAt = 0;

  constructor(
    private readonly path: string,
    private readonly everyMs: number,
    private readonly clock: () => number = () => Date.now(),
  ) {}

  /** The file just opened at the path (its device and inode, from fstat). */
  opened(dev: number, ino: number): void {
    this.dev = dev;
    this.ino = ino;
    this.checkedAt = this.clock();
  }

  /** True when the path no longer names the file opened (deleted, moved, replaced); at most one stat every `everyMs`. */
  moved(): boolean {
    if (this.clock() - this.checkedAt < this.everyMs) return false;
    this.checkedAt = this.clock();
    try {
      const stat = lstatSync(this.path);
      return stat.ino !== this.ino || stat.dev !== this.dev;
    } catch {
      return true; // gone
    }
  }
}
