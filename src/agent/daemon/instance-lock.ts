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
import { existsSync, linkSync, mkdirSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { connect, createServer, Server } from 'node:net';
import path from 'node:path';
import { HadesError } from '../../common/errors.js';
import { parseProcStat } from '../tree.js';

export const LOCK_SOCKET = 'agent.sock';
/** The longest path a Unix socket takes (sun_path's 108 bytes, the last a NUL). */
const MAX_SOCKET_PATH = 107;
/** A takeover folder older than this was left by an agent that died while taking the socket over. */
const STALE_TAKEOVER_MS = 10_000;
const RETRY_MS = 100;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What the lock's server says to each connection: an agent holds the folder (not any socket that happens to be there). */
const BANNER = 'hades-agent-lock\n';

/**
 * A server listening on the socket file (it answers each connection with its banner), or why it
 * could not listen (EADDRINUSE when the file exists; the server then closed).
 *
 * The server is bound at a name of its own in the folder (`.l` and 8 random characters), which is then
 * hard-linked as the socket file (a link fails when the name exists: one process wins) and
 * removed. Node removes the path a server was bound at when it closes it, and when the process
 * exits even if it was not closed: bound at the socket file itself, an agent that lost the file to
 * another (removed by hand, then taken) would remove the other's file as it stops. The lock
 * removes the socket file itself, when it is still its own (release).
 */
async function listenOn(file: string): Promise<Server | NodeJS.ErrnoException> {
  // No longer than the socket file's own name (the socket path's limit), and random: not a pid,
  // which agents in two pid namespaces sharing the folder may have alike, and a process may try
  // more than once at a time (tests do).
  const own = path.join(path.dirname(file), `.l${randomBytes(6).toString('base64url')}`);
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    socket.end(BANNER);
  });
  const error = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
    const listening = () => {
      server.off('error', failed);
      resolve(undefined);
    };
    const failed = (failure: NodeJS.ErrnoException) => {
      server.off('listening', listening);
      resolve(failure);
    };
    server.once('error', failed);
    server.once('listening', listening);
    server.listen({ path: own, exclusive: true });
  });
  if (error !== undefined) {
    server.close();
    return error;
  }
  try {
    linkSync(own, file);
  } catch (linkError) {
    server.close();
    const e = linkError as NodeJS.ErrnoException;
    // The file exists: what binding at it would have said.
    if (e.code === 'EEXIST') e.code = 'EADDRINUSE';
    return e;
  } finally {
    try {
      unlinkSync(own);
    } catch {
      // Removed by the close above.
    }
  }
  // Errors on the listening socket later end nowhere: it only answers probes.
  server.on('error', () => undefined);
  server.unref();
  return server;
}

/** Who listens on a lock socket file: an agent's lock (its banner), some other listener, nobody. */
type Listener = 'agent' | 'other' | 'nobody';

/**
 * Who listens on the socket file now: 'agent' (the lock's banner read), 'other' (a listener that
 * says something else, or nothing within `timeoutMs`), 'nobody' (no file, or the connection
 * refused), or undefined when this user may not look. Any other failure (a full backlog while the
 * agent is busy, no descriptors left) is not proof that nobody listens: 'other'. Only 'agent' is
 * proof that another agent holds the folder.
 */
function probe(file: string, timeoutMs: number): Promise<Listener | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ path: file });
    let connected = false;
    let read = '';
    const done = (who: Listener | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(who);
    };
    // A listener that does not answer in time is still a listener (only root makes the file).
    const timer = setTimeout(() => done('other'), timeoutMs);
    socket.setEncoding('utf8');
    socket.once('connect', () => (connected = true));
    socket.on('data', (chunk: string) => {
      read += chunk;
      if (read.length >= BANNER.length) done(read.startsWith(BANNER) ? 'agent' : 'other');
    });
    socket.once('end', () => done(read === BANNER ? 'agent' : 'other'));
    socket.once('error', (error: NodeJS.ErrnoException) => {
      if (connected) done('other');
      else if (error.code === 'ECONNREFUSED' || error.code === 'ENOENT') done('nobody');
      else done(error.code === 'EACCES' || error.code === 'EPERM' ? undefined : 'other');
    });
  });
}

/** Whether the folder has a lock socket file (of a live agent or not): an agent of this release used it. */
export const hasLockSocket = (dataDir: string): boolean => existsSync(path.join(dataDir, LOCK_SOCKET));

/** The socket file's inode, or undefined when it is gone. */
function inodeOf(file: string): number | undefined {
  try {
    return statSync(file).ino;
  } catch {
    return undefined;
  }
}

/**
 * Listens on the lock socket `file`, taking over a file left by a process that died (nobody
 * answers on it) one starter at a time, through the `.takeover` folder beside it; who listens
 * there when a live process does ('agent' or 'other'). HADES_ERR_SPOOL_IO when the socket cannot
 * be made.
 */
async function takeLock(file: string): Promise<Server | 'agent' | 'other'> {
  const takeover = `${file}.takeover`;
  // Long enough to outlast a takeover folder left by an agent that died in its takeover.
  const deadline = Date.now() + STALE_TAKEOVER_MS + 2000;
  for (;;) {
    const error = await listenOn(file);
    if (!(error instanceof Error)) return error;
    if (error.code !== 'EADDRINUSE') throw new HadesError('HADES_ERR_SPOOL_IO', `cannot make the agent's lock socket ${file}: ${error.code ?? error.message}`, { cause: error });
    const who = await probe(file, 2000);
    if (who !== 'nobody') return who ?? 'other';
    if (Date.now() > deadline) throw new HadesError('HADES_ERR_SPOOL_IO', `cannot take over the agent's lock socket ${file}: ${takeover} stays (remove it if no agent is starting)`);
    // Left by an agent that died: one starting agent at a time removes it and listens.
    try {
      mkdirSync(takeover, { mode: 0o700 });
    } catch (mkdirError) {
      if ((mkdirError as NodeJS.ErrnoException).code !== 'EEXIST') throw new HadesError('HADES_ERR_SPOOL_IO', `cannot take over the agent's lock socket ${file}: ${(mkdirError as Error).message}`, { cause: mkdirError });
      try {
        // Stale when old, or from the future (the clock was set back since).
        const age = Date.now() - statSync(takeover).mtimeMs;
        if (age > STALE_TAKEOVER_MS || age < -1000) rmdirSync(takeover);
      } catch {
        // Gone meanwhile: the other agent finished its takeover.
      }
      await sleep(RETRY_MS);
      continue;
    }
    try {
      // Still no one behind it now that this agent alone may take it over? Only the file probed
      // goes: gone meanwhile, or another file there now (a stopping agent's removal, then a new
      // agent's), it is not touched, and the loop looks again.
      const probed = inodeOf(file);
      if (probed !== undefined && (await probe(file, 2000)) === 'nobody' && inodeOf(file) === probed) unlinkSync(file);
    } catch (unlinkError) {
      if ((unlinkError as NodeJS.ErrnoException).code !== 'ENOENT') throw new HadesError('HADES_ERR_SPOOL_IO', `cannot remove the stale lock socket ${file}: ${(unlinkError as Error).message}`, { cause: unlinkError });
    } finally {
      try {
        rmdirSync(takeover);
      } catch {
        // Taken for stale by another agent meanwhile: nothing left to remove.
      }
    }
  }
}

export class InstanceLock {
  #server: Server | undefined;
  #released = false;
  readonly #file: string;
  #inode: number | undefined;

  private constructor(server: Server, file: string, inode: number | undefined) {
    this.#server = server;
    this.#file = file;
    this.#inode = inode;
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
    const server = await takeLock(file);
    if (!(server instanceof Server)) throw busy();
    return new InstanceLock(server, file, inodeOf(file));
  }

  /**
   * Whether an agent holds the folder's lock now (a connection to its socket is accepted);
   * undefined when this user may not look (the folder is root's).
   */
  static held(dataDir: string, timeoutMs = 2000): Promise<boolean | undefined> {
    const file = path.join(dataDir, LOCK_SOCKET);
    if (Buffer.byteLength(file) > MAX_SOCKET_PATH) return Promise.resolve(false);
    return probe(file, timeoutMs).then((who) => (who === undefined ? undefined : who !== 'nobody'));
  }

  /**
   * Looks whether the socket file is still this agent's (the agent calls it every few seconds):
   * removed (by hand, by a cleanup of the folder), it is made again, so that a second agent cannot
   * start beside this one; another file there that no process listens on (copied back with the
   * folder, say) is taken over as a starting agent would. Returns what it found: 'held',
   * 'restored', 'missing' when it cannot be made again now (the folder itself is gone: tried
   * again at the next check), 'lost' when another agent's lock listens there now (an agent
   * started while the file was missing: the caller stops, so that one agent keeps the folder), or
   * 'foreign' when something else answers there (another program's socket, or a probe that could
   * not tell): left alone, and looked at again at the next check.
   */
  async check(): Promise<'held' | 'restored' | 'missing' | 'lost' | 'foreign'> {
    if (this.#released) return 'held';
    const now = inodeOf(this.#file);
    if (this.#server !== undefined && now !== undefined && now === this.#inode) return 'held';
    if (now !== undefined && now !== this.#inode) {
      const who = await probe(this.#file, 2000);
      if (who === 'agent') return 'lost';
      if (who !== 'nobody') return 'foreign';
    }
    // Gone, or left by nobody: listen there again, taking a file nobody listens on over as
    // acquire does. (The old server's close removes nothing but its own name, gone already.)
    this.#server?.close();
    this.#server = undefined;
    let server: Server | 'agent' | 'other';
    try {
      server = await takeLock(this.#file);
    } catch {
      return 'missing';
    }
    if (server === 'agent') return 'lost';
    if (server === 'other') return 'foreign';
    const inode = inodeOf(this.#file);
    if (this.#released) {
      // Released while this check listened: the new socket goes with it.
      removeIfOurs(this.#file, inode);
      server.close();
      return 'held';
    }
    this.#server = server;
    this.#inode = inode;
    return 'restored';
  }

  /**
   * Lets the folder go (once; later calls do nothing): the socket file is removed unless it is
   * another process's now, and then the server closes (in that order: a file that stayed after
   * the close would refuse connections, and a starting agent would take it over as left by a
   * dead one, racing this removal).
   */
  release(): void {
    this.#released = true;
    if (this.#server === undefined) return;
    removeIfOurs(this.#file, this.#inode);
    this.#server.close();
    this.#server = undefined;
  }
}

/** Removes the socket file when it is still the one of that inode. */
function removeIfOurs(file: string, inode: number | undefined): void {
  if (inode === undefined || inodeOf(file) !== inode) return;
  try {
    unlinkSync(file);
  } catch {
    // Gone meanwhile.
  }
}

/** When process `pid` started (ms since the epoch), from /proc; undefined when it cannot be read. */
export function processStartMs(pid: number): number | undefined {
  try {
    const stat = parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    const boot = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
    if (stat === undefined || boot === null) return undefined;
    // USER_HZ is 100 on every Linux architecture Hades runs on.
    return Number(boot[1]) * 1000 + stat.startTicks * 10;
  } catch {
    return undefined;
  }
}

/** How far apart a run file's `started` and its process's start may be (the agent writes it after loading). */
const START_SKEW_MS = 60_000;

/**
 * Whether the agent a run file names (`pid`, started at `startedMs`) still runs with a file under
 * `dataDir` open: an agent of a release before the lock socket, which holds its spool files open
 * (an http or server output's) but no socket, still uses the folder. The process must be that
 * agent: the same pid, a process and not a thread of one, started when the run file says; not any
 * program that has the pid after a reboot, nor one known by its name.
 */
export function holdsFilesIn(pid: number, startedMs: number, dataDir: string): boolean {
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || !Number.isFinite(startedMs)) return false;
  try {
    // A thread id is a /proc entry too: only a process (thread group leader) counts.
    const tgid = /^Tgid:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    if (tgid === null || Number(tgid[1]) !== pid) return false;
  } catch {
    return false; // gone, or not ours to look at
  }
  const start = processStartMs(pid);
  if (start === undefined || Math.abs(start - startedMs) > START_SKEW_MS) return false;
  let dir: string;
  try {
    dir = `${realpathSync(dataDir)}/`;
  } catch {
    return false;
  }
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return false;
  }
  for (const fd of fds) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith(dir)) return true;
    } catch {
      // closed meanwhile
    }
  }
  return false;
}
