/**
 * Whether a path still names the file a process holds open. A file deleted, or moved away by an
 * external logrotate (or its folder removed), takes every later write with it, unseen: a writer
 * that appends to a path asks this before writing and opens the path anew when it moved. Checked
 * at most every `everyMs` (one stat), so that appends stay cheap.
 */
import { statSync } from 'node:fs';

export class PathWatch {
  private ino = 0;
  private checkedAt = 0;

  constructor(
    private readonly path: string,
    private readonly everyMs: number,
    private readonly clock: () => number = () => Date.now(),
  ) {}

  /** The file just opened at the path (its inode, from fstat). */
  opened(ino: number): void {
    this.ino = ino;
    this.checkedAt = this.clock();
  }

  /** True when the path no longer names the file opened (deleted, moved, replaced); at most one stat every `everyMs`. */
  moved(): boolean {
    if (this.clock() - this.checkedAt < this.everyMs) return false;
    this.checkedAt = this.clock();
    let ino = 0;
    try {
      ino = statSync(this.path).ino;
    } catch {
      // gone
    }
    return ino !== this.ino;
  }
}
