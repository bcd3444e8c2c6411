/**
 * One agent per data folder: a second would read the same spool and deliver its batches twice,
 * and compete for the driver's cgroup and the run file.
 *
 * The lock is a Unix socket in Linux's abstract namespace, named after the data folder's real
 * path, listened on for the agent's life: the kernel gives a name to one socket at a time and
 * frees it when the socket closes, however the process ends (kill -9 included), so an agent that
 * died leaves nothing stale, and nothing depends on a process id written in a file, which after a
 * reboot may be any program's. (A kernel lock on a file would do as well, but Node has no flock
 * and the agent keeps SQLite, the server's way, out of its own process.) `hades agent status`
 * connects to the name to learn whether an agent holds the folder. Abstract names are per network
 * namespace: agents in two network namespaces (two containers) sharing one data folder are not
 * kept apart.
 */
import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import path from 'node:path';
import { HadesError } from '../../common/errors.js';

/** The abstract socket name of a data folder (its real path when it exists). */
export function lockName(dataDir: string): string {
  let real: string;
  try {
    real = realpathSync(dataDir);
  } catch {
    real = path.resolve(dataDir);
  }
  return `\0hades-agent-${createHash('sha256').update(real).digest('hex').slice(0, 32)}`;
}

export class InstanceLock {
  #server: Server | undefined;

  private constructor(server: Server) {
    this.#server = server;
  }

  /**
   * Takes the folder's lock. `busy` makes the error when another agent holds it; any other
   * failure to listen is HADES_ERR_INTERNAL (the abstract namespace is always there on Linux).
   */
  static async acquire(dataDir: string, busy: () => HadesError): Promise<InstanceLock> {
    const server = createServer((socket) => socket.destroy());
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ path: lockName(dataDir), exclusive: true }, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      server.close();
      if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') throw busy();
      throw new HadesError('HADES_ERR_INTERNAL', `cannot take the data folder's lock for ${dataDir}: ${(error as Error).message}`, { cause: error });
    }
    // Connections (a status probe) are closed at once; errors on the socket after listening end nowhere.
    server.on('error', () => undefined);
    server.unref();
    return new InstanceLock(server);
  }

  /** Whether an agent holds the folder's lock now (a connection to its name is accepted). */
  static held(dataDir: string, timeoutMs = 2000): Promise<boolean> {
    return new Promise((resolve) => {
      const socket = connect({ path: lockName(dataDir) });
      const done = (held: boolean) => {
        clearTimeout(timer);
        socket.destroy();
        resolve(held);
      };
      // A listener that does not answer in time is still a listener: the name is taken.
      const timer = setTimeout(() => done(true), timeoutMs);
      socket.once('connect', () => done(true));
      socket.once('error', () => done(false));
    });
  }

  /** Lets the folder go (once; later calls do nothing). */
  release(): void {
    this.#server?.close();
    this.#server = undefined;
  }
}
