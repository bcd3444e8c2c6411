/**
 * One agent per data folder: a second would read the same spool and deliver its batches twice,
 * and compete for the driver's cgroup and the run file.
 *
 * The lock is a Unix socket, `<data_dir>/agent.sock`, listened on for the agent's life: the folder
 * is root's (0700), so no other user can take the name first and keep the agent from starting,
 * as one could with a name in Linux's abstract namespace, which has no permissions. Whether an
 * agent holds it is a question the kernel answers: a connection to the socket is accepted while
 * its agent lives, and refused once the process is gone, however it ended (kill -9 included): a
 * file left by an agent that died is taken over, and nothing depends on a process id written in
 * a file, which after a reboot may be any program's. Two agents starting at once on one folder
 * take the file over one at a time (an exclusive `agent.sock.takeover` folder). (A kernel lock on
 * a file would do as well, but Node has no flock and the agent keeps SQLite, the server's way,
 * out of its own process.) `hades agent status` connects to the socket to learn whether an agent
 * holds the folder.
 */
import { mkdirSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import path from 'node:path';
import { HadesError } from '../../common/errors.js';

export const LOCK_SOCKET = 'agent.sock';
/** The longest path a Unix socket takes (sun_path's 108 bytes, the last a NUL). */
const MAX_SOCKET_PATH = 107;
/** A takeover folder older than this was left by an agent that died while taking the socket over. */
const STALE_TAKEOVER_MS = 10_000;
const ATTEMPTS = 20;
const RETRY_MS = 100;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function listen(server: Server, file: string): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((resolve) => {
    const failed = (error: NodeJS.ErrnoException) => resolve(error);
    server.once('error', failed);
    server.listen({ path: file, exclusive: true }, () => {
      server.off('error', failed);
      resolve(undefined);
    });
  });
}

/** Whether a process listens on the socket file now: true, false, or undefined when it cannot be told (no permission). */
function answers(file: string, timeoutMs: number): Promise<boolean | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ path: file });
    const done = (held: boolean | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(held);
    };
    // A listener that does not answer in time is still a listener (only root makes the file).
    const timer = setTimeout(() => done(true), timeoutMs);
    socket.once('connect', () => done(true));
    socket.once('error', (error: NodeJS.ErrnoException) => done(error.code === 'EACCES' || error.code === 'EPERM' ? undefined : false));
  });
}

export class InstanceLock {
  #server: Server | undefined;

  private constructor(server: Server) {
    this.#server = server;
  }

  /**
   * Takes the folder's lock (the folder must exist). `busy` makes the error when another agent
   * holds it; a socket that cannot be made (a path longer than a Unix socket's 107 bytes, a
   * folder that cannot be written) is HADES_ERR_SPOOL_IO.
   */
  static async acquire(dataDir: string, busy: () => HadesError): Promise<InstanceLock> {
    const file = path.join(dataDir, LOCK_SOCKET);
    // Node would bind a longer path cut short, somewhere else: refuse it.
    if (Buffer.byteLength(file) > MAX_SOCKET_PATH) {
      throw new HadesError('HADES_ERR_SPOOL_IO', `cannot make the agent's lock socket ${file}: a Unix socket path has at most ${MAX_SOCKET_PATH} bytes; give agent.data_dir a shorter path`);
    }
    const takeover = `${file}.takeover`;
    const server = createServer((socket) => socket.destroy());
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const error = await listen(server, file);
      if (error === undefined) {
        // Errors on the listening socket later end nowhere: it only answers probes.
        server.on('error', () => undefined);
        server.unref();
        return new InstanceLock(server);
      }
      if (error.code !== 'EADDRINUSE') {
        server.close();
        throw new HadesError('HADES_ERR_SPOOL_IO', `cannot make the agent's lock socket ${file}: ${error.code ?? error.message}`, { cause: error });
      }
      if ((await answers(file, 2000)) !== false) {
        server.close();
        throw busy();
      }
      // Left by an agent that died: one starting agent at a time removes it and listens.
      try {
        mkdirSync(takeover, { mode: 0o700 });
      } catch (mkdirError) {
        if ((mkdirError as NodeJS.ErrnoException).code !== 'EEXIST') {
          server.close();
          throw new HadesError('HADES_ERR_SPOOL_IO', `cannot take over the agent's lock socket ${file}: ${(mkdirError as Error).message}`, { cause: mkdirError });
        }
        try {
          if (Date.now() - statSync(takeover).mtimeMs > STALE_TAKEOVER_MS) rmdirSync(takeover);
        } catch {
          // Gone meanwhile: the other agent finished its takeover.
        }
        await sleep(RETRY_MS);
        continue;
      }
      try {
        // Still no one behind it now that this agent alone may take it over?
        if ((await answers(file, 2000)) === false) unlinkSync(file);
      } catch {
        // Removed meanwhile.
      } finally {
        try {
          rmdirSync(takeover);
        } catch {
          // Taken for stale by another agent meanwhile: nothing left to remove.
        }
      }
    }
    server.close();
    throw busy();
  }

  /**
   * Whether an agent holds the folder's lock now (a connection to its socket is accepted);
   * undefined when this user may not look (the folder is root's).
   */
  static held(dataDir: string, timeoutMs = 2000): Promise<boolean | undefined> {
    const file = path.join(dataDir, LOCK_SOCKET);
    return Buffer.byteLength(file) > MAX_SOCKET_PATH ? Promise.resolve(false) : answers(file, timeoutMs);
  }

  /** Lets the folder go (once; later calls do nothing); the socket file goes with it. */
  release(): void {
    this.#server?.close();
    this.#server = undefined;
  }
}
