/**
 * The process's own memory use, read without throwing. Node reads the resident size from /proc,
 * which needs a free file descriptor: at the descriptor limit (EMFILE) `process.memoryUsage()`
 * throws, and a heartbeat or a status answer must not take the process down for it. The heap
 * figure comes from V8 and needs no descriptor.
 */
import { getHeapStatistics } from 'node:v8';

let lastRss = 0;

export interface MemoryNow {
  /** Resident bytes; the last value read when it cannot be read now (0 before the first). */
  readonly rss: number;
  readonly heapUsed: number;
  /** False when `rss` is the last value read rather than the current one. */
  readonly fresh: boolean;
}

export function memoryNow(): MemoryNow {
  const heapUsed = getHeapStatistics().used_heap_size;
  try {
    lastRss = process.memoryUsage.rss();
    return { rss: lastRss, heapUsed, fresh: true };
  } catch {
    return { rss: lastRss, heapUsed, fresh: false };
  }
}
