/** The processes table: every process of /proc, with what the query reads of it. */
import { statSync } from 'node:fs';
import type { CollectContext, Row, TableSpec } from '../table.js';
import { diskPath } from './host-names.js';
import { idNames, readLink, readProcText, Warn } from './host-read.js';
import { bootTime, CLOCK_TICKS, linkInode, parseStat, pids } from './proc.js';

const DELETED = ' (deleted)';

/**
 * Whether the executable is a file whose name itself ends in " (deleted)": the kernel adds the
 * suffix only to unlinked files, so a file of that name, seen from the process's root, that is
 * the one it runs is a decoy, not a deleted executable.
 */
function namedDeleted(base: string, exe: string): boolean {
  try {
    const running = statSync(`${base}/exe`, { bigint: true });
    // By its bytes: the link's target was decoded as names are (a name that is not UTF-8 kept).
    const named = statSync(diskPath(`${base}/root${exe}`), { bigint: true });
    return running.dev === named.dev && running.ino === named.ino;
  } catch {
    return false;
  }
}

/** Which /proc files a query needs, from the columns it reads. */
function needs(ctx: CollectContext) {
  const wants = (...columns: string[]) => !ctx.columns || columns.some((c) => ctx.columns!.has(c));
  return {
    status: wants('uid', 'gid', 'euid', 'egid', 'suid', 'user', 'rss_bytes'),
    cmdline: wants('cmdline'),
    exe: wants('path', 'exe_deleted', 'sha256'),
    sha256: wants('sha256'),
    cwd: wants('cwd'),
    root: wants('root'),
    cgroup: wants('cgroup'),
    namespaces: wants('net_namespace', 'pid_namespace', 'mnt_namespace'),
  };
}

const ID_LINES = { Uid: /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/m, Gid: /^Gid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/m } as const;

/** Real, effective, saved and file-system ids from a `Uid:` or `Gid:` line of /proc/PID/status. */
function ids(status: string, key: 'Uid' | 'Gid'): number[] | undefined {
  const match = ID_LINES[key].exec(status);
  return match ? match.slice(1, 5).map(Number) : undefined;
}

function cgroupOf(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const lines = text.split('\n').filter(Boolean);
  // cgroup v2: one line `0::/path`; v1: one line per hierarchy, kept whole.
  const unified = lines.find((l) => l.startsWith('0::'));
  if (unified && lines.length === 1) return unified.slice(3);
  return lines.join(';') || undefined;
}

async function generate(ctx: CollectContext): Promise<Row[]> {
  const need = needs(ctx);
  const boot = bootTime(ctx);
  const users = need.status ? idNames(ctx, '/etc/passwd') : undefined;
  const rows: Row[] = [];
  const hashes: Promise<void>[] = [];
  let malformed = 0;
  for (const pid of pids(ctx)) {
    if (ctx.signal?.aborted) break;
    const statText = readProcText(ctx, `${pid}/stat`);
    if (statText === undefined) continue; // exited meanwhile
    const stat = parseStat(statText);
    if (!stat || stat.pid !== pid) {
      malformed++;
      continue;
    }
    const base = `${ctx.proc}/${pid}`;
    const row: Row = {
      pid,
      ppid: stat.ppid,
      name: stat.name,
      state: stat.state,
      pgid: stat.pgid,
      session: stat.session,
      nice: stat.nice,
      threads: stat.threads,
      start_time: boot === undefined ? null : boot + Math.floor(stat.startTicks / CLOCK_TICKS),
      user_time_ms: Math.round((stat.utimeTicks * 1000) / CLOCK_TICKS),
      system_time_ms: Math.round((stat.stimeTicks * 1000) / CLOCK_TICKS),
    };
    if (need.status) {
      const status = readProcText(ctx, `${pid}/status`) ?? '';
      const uids = ids(status, 'Uid');
      const gids = ids(status, 'Gid');
      row['uid'] = uids?.[0] ?? null;
      row['euid'] = uids?.[1] ?? null;
      row['suid'] = uids?.[2] ?? null;
      row['gid'] = gids?.[0] ?? null;
      row['egid'] = gids?.[1] ?? null;
      row['user'] = uids ? (users?.get(uids[0]!) ?? null) : null;
      const rss = /^VmRSS:\s+(\d+) kB/m.exec(status);
      row['rss_bytes'] = rss ? Number(rss[1]) * 1024 : 0;
    }
    if (need.cmdline) {
      const cmdline = readProcText(ctx, `${pid}/cmdline`, 1024 * 1024);
      row['cmdline'] = cmdline ? cmdline.replace(/\0+$/, '').split('\0').join(' ') : null;
    }
    if (need.exe) {
      const exe = readLink(`${base}/exe`);
      const deleted = exe !== undefined && exe.endsWith(DELETED) && !namedDeleted(base, exe);
      row['path'] = exe === undefined ? null : deleted ? exe.slice(0, -DELETED.length) : exe;
      row['exe_deleted'] = exe === undefined ? null : deleted ? 1 : 0;
      if (need.sha256 && exe !== undefined) {
        // Through the link: the file the process runs, even when deleted or in another mount namespace.
        const sha = ctx.sha256(`${base}/exe`);
        if (sha instanceof Promise) hashes.push(sha.then((value) => void (row['sha256'] = value ?? null)));
        else row['sha256'] = sha ?? null;
      } else row['sha256'] = null;
    }
    if (need.cwd) row['cwd'] = readLink(`${base}/cwd`) ?? null;
    if (need.root) row['root'] = readLink(`${base}/root`) ?? null;
    if (need.cgroup) row['cgroup'] = cgroupOf(readProcText(ctx, `${pid}/cgroup`)) ?? null;
    if (need.namespaces) {
      row['net_namespace'] = linkInode(readLink(`${base}/ns/net`), 'net') ?? null;
      row['pid_namespace'] = linkInode(readLink(`${base}/ns/pid`), 'pid') ?? null;
      row['mnt_namespace'] = linkInode(readLink(`${base}/ns/mnt`), 'mnt') ?? null;
    }
    rows.push(row);
  }
  await Promise.all(hashes);
  if (malformed > 0) ctx.warn(Warn.malformed, `${malformed} /proc/PID/stat file(s) did not parse; those processes are skipped`, '/proc');
  return rows;
}

export const processesTable: TableSpec = {
  name: 'processes',
  description: 'Every process running on the host (one row per process, threads excluded), from /proc: identity, credentials, executable and its SHA-256, working folder, cgroup and namespaces.',
  columns: [
    { name: 'pid', type: 'INTEGER', description: 'Process id.' },
    { name: 'ppid', type: 'INTEGER', description: 'Parent process id (0 for init and kernel threads\' parent).' },
    { name: 'name', type: 'TEXT', description: 'Command name (comm, at most 15 characters), from /proc/PID/stat.' },
    { name: 'state', type: 'TEXT', description: 'Scheduler state: R running, S sleeping, D disk wait, Z zombie, T stopped, I idle kernel thread.' },
    { name: 'cmdline', type: 'TEXT', nullable: true, description: 'Arguments joined by spaces; NULL for kernel threads and zombies.' },
    { name: 'path', type: 'TEXT', nullable: true, description: 'Executable (the /proc/PID/exe link, without " (deleted)"; a byte of a name that is not UTF-8 shows as U+FFFD, as in the other tables\' paths); NULL for kernel threads or when not readable (not root).' },
    { name: 'exe_deleted', type: 'INTEGER', nullable: true, description: '1 when the executable was deleted or replaced since the process started (a classic sign of a dropper), else 0.' },
    { name: 'sha256', type: 'TEXT', nullable: true, description: 'SHA-256 of the executable, read through /proc/PID/exe (so a deleted file is hashed too); cached per file version, and shared with the agent\'s hashes of executed files (docs/plugins.md).' },
    { name: 'uid', type: 'INTEGER', nullable: true, description: 'Real user id.' },
    { name: 'euid', type: 'INTEGER', nullable: true, description: 'Effective user id.' },
    { name: 'suid', type: 'INTEGER', nullable: true, description: 'Saved user id.' },
    { name: 'gid', type: 'INTEGER', nullable: true, description: 'Real group id.' },
    { name: 'egid', type: 'INTEGER', nullable: true, description: 'Effective group id.' },
    { name: 'user', type: 'TEXT', nullable: true, description: 'Name of the real user id in /etc/passwd, when it has one.' },
    { name: 'pgid', type: 'INTEGER', description: 'Process group id.' },
    { name: 'session', type: 'INTEGER', description: 'Session id.' },
    { name: 'nice', type: 'INTEGER', description: 'Nice value (-20 to 19).' },
    { name: 'threads', type: 'INTEGER', description: 'Number of threads.' },
    { name: 'start_time', type: 'INTEGER', nullable: true, description: 'When the process started, unix seconds.' },
    { name: 'user_time_ms', type: 'INTEGER', description: 'CPU time spent in user mode, milliseconds.' },
    { name: 'system_time_ms', type: 'INTEGER', description: 'CPU time spent in the kernel, milliseconds.' },
    { name: 'rss_bytes', type: 'INTEGER', nullable: true, description: 'Resident memory, bytes (0 for kernel threads).' },
    { name: 'cwd', type: 'TEXT', nullable: true, description: 'Current working folder; NULL when not readable.' },
    { name: 'root', type: 'TEXT', nullable: true, description: 'Root folder (not / for processes in a chroot or container).' },
    { name: 'cgroup', type: 'TEXT', nullable: true, description: 'Control group: the cgroup v2 path, or the v1 lines joined by ";".' },
    { name: 'net_namespace', type: 'INTEGER', nullable: true, description: 'Inode of its network namespace.' },
    { name: 'pid_namespace', type: 'INTEGER', nullable: true, description: 'Inode of its pid namespace.' },
    { name: 'mnt_namespace', type: 'INTEGER', nullable: true, description: 'Inode of its mount namespace (differs from init\'s in containers).' },
  ],
  examples: [
    { description: 'Processes whose executable was deleted after they started.', sql: 'SELECT pid, name, path, cmdline FROM processes WHERE exe_deleted = 1' },
    { description: 'The ten processes using the most memory.', sql: 'SELECT pid, name, user, rss_bytes FROM processes ORDER BY rss_bytes DESC LIMIT 10' },
    { description: 'Processes running as root from a temporary folder.', sql: "SELECT pid, name, path FROM processes WHERE euid = 0 AND (path LIKE '/tmp/%' OR path LIKE '/dev/shm/%' OR path LIKE '/var/tmp/%')" },
    { description: 'Each process with its parent\'s name.', sql: 'SELECT p.pid, p.name, parent.name AS parent FROM processes p LEFT JOIN processes parent ON parent.pid = p.ppid LIMIT 20' },
  ],
  generate,
};
