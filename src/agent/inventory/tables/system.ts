/** System tables: kernel modules, setuid binaries, OS version, system information, mounts. */
import { lstatSync } from 'node:fs';
import os from 'node:os';
import type { CollectContext, Row, TableSpec } from '../table.js';
import { readFolderSync, type FolderEntry } from './host-names.js';
import { contentLines, idNames, int, onHost, readHostText, readProcText, reportError, Warn } from './host-read.js';
import { bootTime } from './proc.js';

// --- kernel_modules ---

export interface KernelModule {
  readonly name: string;
  readonly size: number;
  readonly refcount: number | undefined;
  readonly usedBy: string;
  readonly state: string;
  readonly address: string;
  readonly taints: string;
}

/** One line of /proc/modules: `name size refcount deps state address [(taints)]`. */
export function parseModuleLine(line: string): KernelModule | undefined {
  const f = line.trim().split(/\s+/);
  const size = int(f[1]);
  if (f.length < 6 || !f[0] || size === undefined || !/^(-|\d+)$/.test(f[2]!) || !/^0x[0-9a-f]+$/i.test(f[5]!)) return undefined;
  const taints = f[6] && /^\([A-Z]+\)$/.test(f[6]) ? f[6].slice(1, -1) : '';
  return { name: f[0], size, refcount: int(f[2]), usedBy: f[3] === '-' ? '' : f[3]!.replace(/,$/, ''), state: f[4]!, address: f[5]!, taints };
}

export const kernelModulesTable: TableSpec = {
  name: 'kernel_modules',
  description: 'Loadable kernel modules currently loaded, from /proc/modules (empty on kernels built without module support).',
  columns: [
    { name: 'name', type: 'TEXT', description: 'Module name.' },
    { name: 'size', type: 'INTEGER', description: 'Memory size, bytes.' },
    { name: 'refcount', type: 'INTEGER', nullable: true, description: 'Reference count; NULL when the module cannot be unloaded (-).' },
    { name: 'used_by', type: 'TEXT', description: 'Modules that use it, comma-separated.' },
    { name: 'state', type: 'TEXT', description: 'Live, Loading or Unloading.' },
    { name: 'address', type: 'TEXT', description: 'Load address (0x0 unless read as root with kptr_restrict allowing it).' },
    { name: 'taints', type: 'TEXT', description: 'Taint letters: O out-of-tree, E unsigned, P proprietary, F force-loaded, C staging, ...; empty when none.' },
  ],
  examples: [
    { description: 'Unsigned or out-of-tree modules (rootkits are often both).', sql: "SELECT name, taints FROM kernel_modules WHERE taints LIKE '%O%' OR taints LIKE '%E%'" },
    { description: 'Modules nothing uses.', sql: "SELECT name, size FROM kernel_modules WHERE refcount = 0 AND used_by = ''" },
  ],
  async generate(ctx) {
    const text = readProcText(ctx, 'modules');
    if (text === undefined) return [];
    const rows: Row[] = [];
    let malformed = 0;
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      const m = parseModuleLine(line);
      if (!m) {
        malformed++;
        continue;
      }
      rows.push({ name: m.name, size: m.size, refcount: m.refcount ?? null, used_by: m.usedBy, state: m.state, address: m.address, taints: m.taints });
    }
    if (malformed > 0) ctx.warn(Warn.malformed, `${malformed} line(s) skipped: not name size refcount deps state address`, '/proc/modules');
    return rows;
  },
};

// --- suid_binaries ---

/** Where setuid and setgid programs live, and where an intruder drops one; with the depth walked. */
export const SUID_FOLDERS: readonly [folder: string, depth: number][] = [
  ['/bin', 2],
  ['/sbin', 2],
  ['/usr/bin', 2],
  ['/usr/sbin', 2],
  ['/usr/local/bin', 3],
  ['/usr/local/sbin', 3],
  ['/usr/lib', 3], // multiarch helpers: /usr/lib/x86_64-linux-gnu/utempter/utempter
  ['/usr/libexec', 3],
  ['/usr/local/lib', 2],
  ['/opt', 4],
  ['/home', 2],
  ['/root', 2],
  // Last: anyone can fill these with entries, and the search stops after MAX_SUID_ENTRIES; a
  // flood there must not keep the folders above from being searched.
  ['/tmp', 4],
  ['/var/tmp', 4],
  ['/dev/shm', 4],
];
const MAX_SUID_ENTRIES = 200_000;

interface SuidFile {
  /** The host path, names decoded byte for byte (./host-names.ts). */
  readonly hostPath: string;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly mtime: number;
}

/**
 * Walks the folders without following links (a link loop cannot trap it), each folder once.
 * Names are listed as bytes and files opened by them (./host-names.ts): decoded to text and
 * back, a name that is not UTF-8 would come out as another name, whose lstat fails as absent, so
 * a setuid file could hide from the table by its name alone. Such a name shows U+FFFD in `path`.
 */
function findSuid(ctx: CollectContext): SuidFile[] {
  const found: SuidFile[] = [];
  const seen = new Set<string>();
  let entries = 0;
  let stopped = false;
  const walk = (hostPath: string, depth: number) => {
    if (stopped || ctx.signal?.aborted) return;
    let listing: FolderEntry[];
    try {
      const st = lstatSync(onHost(ctx, hostPath));
      if (!st.isDirectory()) return;
      const key = `${st.dev}:${st.ino}`;
      if (seen.has(key)) return;
      seen.add(key);
      listing = readFolderSync(onHost(ctx, hostPath));
    } catch (error) {
      reportError(ctx, error, hostPath, 'folder not searched');
      return;
    }
    for (const d of listing) {
      if (++entries > MAX_SUID_ENTRIES) {
        if (!stopped) ctx.warn(Warn.skipped, `search stopped after ${MAX_SUID_ENTRIES} entries; setuid files further on are not listed`, hostPath);
        stopped = true;
        return;
      }
      const child = `${hostPath}/${d.name}`;
      if (d.isDirectory()) {
        if (depth > 1) walk(child, depth - 1);
        continue;
      }
      if (!d.isFile()) continue;
      try {
        const st = lstatSync(onHost(ctx, child));
        if (st.mode & 0o6000) found.push({ hostPath: child, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: st.size, mtime: Math.floor(st.mtimeMs / 1000) });
      } catch (error) {
        reportError(ctx, error, child, 'not examined');
      }
    }
  };
  for (const [folder, depth] of SUID_FOLDERS) walk(folder, depth);
  return found;
}

export const suidBinariesTable: TableSpec = {
  name: 'suid_binaries',
  description: `Files with the setuid or setgid bit in the folders where programs live or intruders drop them (${SUID_FOLDERS.map(([f]) => f).join(', ')}), walked a few levels deep without following links; not the whole disk.`,
  columns: [
    { name: 'path', type: 'TEXT', description: 'File path (a byte of a name that is not UTF-8 shows as U+FFFD).' },
    { name: 'uid', type: 'INTEGER', description: 'Owner user id (the id the program runs as, for setuid).' },
    { name: 'gid', type: 'INTEGER', description: 'Group id.' },
    { name: 'username', type: 'TEXT', nullable: true, description: 'Owner name.' },
    { name: 'groupname', type: 'TEXT', nullable: true, description: 'Group name.' },
    { name: 'setuid', type: 'INTEGER', description: '1 when the setuid bit is set.' },
    { name: 'setgid', type: 'INTEGER', description: '1 when the setgid bit is set.' },
    { name: 'mode', type: 'TEXT', description: 'Permission bits in octal, e.g. 4755.' },
    { name: 'size', type: 'INTEGER', description: 'Size, bytes.' },
    { name: 'mtime', type: 'INTEGER', description: 'Last modification, unix seconds.' },
    { name: 'sha256', type: 'TEXT', nullable: true, description: 'SHA-256 of the file.' },
  ],
  examples: [
    { description: 'Setuid-root files outside the system folders.', sql: "SELECT path, mode FROM suid_binaries WHERE setuid = 1 AND uid = 0 AND path NOT LIKE '/usr/%' AND path NOT LIKE '/bin/%' AND path NOT LIKE '/sbin/%'" },
    { description: 'Setuid files writable by others than their owner.', sql: "SELECT path, mode FROM suid_binaries WHERE substr(mode, -2, 1) IN ('2', '3', '6', '7') OR substr(mode, -1) IN ('2', '3', '6', '7')" },
  ],
  async generate(ctx) {
    const users = idNames(ctx, '/etc/passwd');
    const groups = idNames(ctx, '/etc/group');
    const hash = !ctx.columns || ctx.columns.has('sha256');
    return Promise.all(
      findSuid(ctx).map(async (f) => ({
        path: f.hostPath,
        uid: f.uid,
        gid: f.gid,
        username: users.get(f.uid) ?? null,
        groupname: groups.get(f.gid) ?? null,
        setuid: f.mode & 0o4000 ? 1 : 0,
        setgid: f.mode & 0o2000 ? 1 : 0,
        mode: f.mode.toString(8).padStart(4, '0'),
        size: f.size,
        mtime: f.mtime,
        sha256: hash ? ((await ctx.sha256(onHost(ctx, f.hostPath))) ?? null) : null,
      })),
    );
  },
};

// --- os_version ---

/** KEY=value lines of os-release; values may be quoted, with backslash escapes. */
export function parseOsRelease(text: string): { values: Map<string, string>; malformed: number } {
  const values = new Map<string, string>();
  let malformed = 0;
  for (const [, line] of contentLines(text)) {
    const match = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!match) {
      malformed++;
      continue;
    }
    let value = match[2]!;
    const quote = value[0];
    if ((quote === '"' || quote === "'") && value.endsWith(quote) && value.length >= 2) value = value.slice(1, -1).replace(/\\(.)/g, '$1');
    values.set(match[1]!, value);
  }
  return { values, malformed };
}

export const osVersionTable: TableSpec = {
  name: 'os_version',
  description: 'The distribution, from /etc/os-release (or /usr/lib/os-release): one row.',
  columns: [
    { name: 'name', type: 'TEXT', nullable: true, description: 'Distribution name (NAME).' },
    { name: 'version', type: 'TEXT', nullable: true, description: 'Version with its code name (VERSION).' },
    { name: 'version_id', type: 'TEXT', nullable: true, description: 'Version number (VERSION_ID).' },
    { name: 'major', type: 'INTEGER', nullable: true, description: 'Major version, from VERSION_ID.' },
    { name: 'minor', type: 'INTEGER', nullable: true, description: 'Minor version, from VERSION_ID.' },
    { name: 'id', type: 'TEXT', nullable: true, description: 'Distribution id: debian, ubuntu, rhel, ... (ID).' },
    { name: 'id_like', type: 'TEXT', nullable: true, description: 'Related distributions (ID_LIKE).' },
    { name: 'codename', type: 'TEXT', nullable: true, description: 'Release code name (VERSION_CODENAME).' },
    { name: 'pretty_name', type: 'TEXT', nullable: true, description: 'Name for people (PRETTY_NAME).' },
  ],
  examples: [
    { description: 'The distribution and version.', sql: 'SELECT pretty_name, version_id FROM os_version' },
    { description: 'Debian releases older than 12.', sql: "SELECT name, version_id FROM os_version WHERE id = 'debian' AND major < 12" },
  ],
  async generate(ctx) {
    let source = '/etc/os-release';
    let text = readHostText(ctx, source);
    if (text === undefined) {
      source = '/usr/lib/os-release';
      text = readHostText(ctx, source);
    }
    if (text === undefined) return [];
    const { values, malformed } = parseOsRelease(text);
    if (malformed > 0) ctx.warn(Warn.malformed, `${malformed} line(s) skipped: not KEY=value`, source);
    const v = (key: string) => values.get(key) ?? null;
    const [major, minor] = (values.get('VERSION_ID') ?? '').split('.');
    return [{ name: v('NAME'), version: v('VERSION'), version_id: v('VERSION_ID'), major: int(major) ?? null, minor: int(minor) ?? null, id: v('ID'), id_like: v('ID_LIKE'), codename: v('VERSION_CODENAME'), pretty_name: v('PRETTY_NAME') }];
  },
};

// --- system_info ---

export const systemInfoTable: TableSpec = {
  name: 'system_info',
  description: 'The machine: host name, kernel, CPU, memory, boot time, machine id. One row.',
  columns: [
    { name: 'hostname', type: 'TEXT', nullable: true, description: 'Host name (the kernel\'s).' },
    { name: 'kernel_release', type: 'TEXT', nullable: true, description: 'Kernel release (uname -r).' },
    { name: 'kernel_version', type: 'TEXT', nullable: true, description: 'Kernel build (uname -v).' },
    { name: 'architecture', type: 'TEXT', description: 'Machine architecture (uname -m).' },
    { name: 'cpu_brand', type: 'TEXT', nullable: true, description: 'CPU model name.' },
    { name: 'cpu_logical_cores', type: 'INTEGER', nullable: true, description: 'Logical CPUs.' },
    { name: 'cpu_physical_cores', type: 'INTEGER', nullable: true, description: 'Physical cores, when /proc/cpuinfo says.' },
    { name: 'memory_total_bytes', type: 'INTEGER', nullable: true, description: 'Physical memory, bytes.' },
    { name: 'memory_available_bytes', type: 'INTEGER', nullable: true, description: 'Memory available for new work, bytes (changes all the time).' },
    { name: 'boot_time', type: 'INTEGER', nullable: true, description: 'When the host booted, unix seconds.' },
    { name: 'uptime_s', type: 'INTEGER', nullable: true, description: 'Seconds since boot.' },
    { name: 'machine_id', type: 'TEXT', nullable: true, description: 'The machine id (/etc/machine-id).' },
  ],
  examples: [
    { description: 'Kernel and hardware.', sql: 'SELECT hostname, kernel_release, cpu_brand, cpu_logical_cores, memory_total_bytes FROM system_info' },
    { description: 'Hosts not rebooted for 90 days (missing kernel updates).', sql: 'SELECT hostname, uptime_s / 86400 AS days FROM system_info WHERE uptime_s > 90 * 86400' },
  ],
  async generate(ctx) {
    const proc = (file: string) => readProcText(ctx, file)?.trim();
    const cpuinfo = proc('cpuinfo') ?? '';
    const meminfo = proc('meminfo') ?? '';
    const kb = (key: string) => {
      const match = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(meminfo);
      return match ? Number(match[1]) * 1024 : null;
    };
    const logical = (cpuinfo.match(/^processor\s*:/gm) ?? []).length;
    const cores = new Set<string>();
    let physical: string | undefined;
    for (const line of cpuinfo.split('\n')) {
      if (line.startsWith('physical id')) physical = line.split(':')[1]?.trim();
      else if (line.startsWith('core id')) cores.add(`${physical ?? ''}:${line.split(':')[1]?.trim() ?? ''}`);
    }
    const uptime = Number.parseFloat((proc('uptime') ?? '').split(' ')[0] ?? '');
    const onRealHost = ctx.root === '/' && ctx.proc === '/proc';
    return [
      {
        hostname: proc('sys/kernel/hostname') ?? (onRealHost ? os.hostname() : null),
        kernel_release: proc('sys/kernel/osrelease') ?? null,
        kernel_version: proc('sys/kernel/version') ?? null,
        architecture: os.machine(),
        cpu_brand: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? null,
        cpu_logical_cores: logical > 0 ? logical : null,
        cpu_physical_cores: cores.size > 0 ? cores.size : null,
        memory_total_bytes: kb('MemTotal'),
        memory_available_bytes: kb('MemAvailable'),
        boot_time: bootTime(ctx) ?? null,
        uptime_s: Number.isFinite(uptime) ? Math.floor(uptime) : null,
        machine_id: readHostText(ctx, '/etc/machine-id', { quiet: true, maxBytes: 256 })?.trim() || null,
      },
    ];
  },
};

// --- mounts ---

/** mountinfo escapes space, tab, newline and backslash as octal (\040). */
const unescape = (text: string) => text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));

export interface MountInfo {
  readonly id: number;
  readonly parent: number;
  readonly device: string;
  readonly root: string;
  readonly path: string;
  readonly options: string;
  readonly propagation: string;
  readonly type: string;
  readonly source: string;
  readonly superOptions: string;
}

/** One line of /proc/PID/mountinfo (see proc(5)). */
export function parseMountInfoLine(line: string): MountInfo | undefined {
  const f = line.trim().split(' ');
  const dash = f.indexOf('-', 6);
  const id = int(f[0]);
  const parent = int(f[1]);
  if (dash < 0 || f.length < dash + 3 || id === undefined || parent === undefined || !/^\d+:\d+$/.test(f[2] ?? '')) return undefined;
  return {
    id,
    parent,
    device: f[2]!,
    root: unescape(f[3]!),
    path: unescape(f[4]!),
    options: f[5]!,
    propagation: f.slice(6, dash).join(' '),
    type: f[dash + 1]!,
    source: unescape(f[dash + 2]!),
    superOptions: f[dash + 3] ?? '',
  };
}

export const mountsTable: TableSpec = {
  name: 'mounts',
  description: 'Mounted file systems as the collector sees them (its mount namespace), from /proc/self/mountinfo. Sizes are not read: a dead network mount would hang the query.',
  columns: [
    { name: 'mount_id', type: 'INTEGER', description: 'Mount id.' },
    { name: 'parent_id', type: 'INTEGER', description: 'Id of the parent mount.' },
    { name: 'device', type: 'TEXT', description: 'major:minor of the device.' },
    { name: 'path', type: 'TEXT', description: 'Mount point.' },
    { name: 'root', type: 'TEXT', description: 'Folder of the file system mounted there (not / for bind mounts).' },
    { name: 'type', type: 'TEXT', description: 'File system type: ext4, tmpfs, overlay, nfs4, ...' },
    { name: 'source', type: 'TEXT', description: 'What is mounted: a device, a server:path, or a name such as tmpfs.' },
    { name: 'options', type: 'TEXT', description: 'Per-mount options: rw/ro, nosuid, nodev, noexec, relatime, ...' },
    { name: 'super_options', type: 'TEXT', description: 'Options of the file system itself.' },
    { name: 'propagation', type: 'TEXT', description: 'Propagation: shared:N, master:N, unbindable, or empty for private.' },
  ],
  examples: [
    { description: 'Writable temporary folders mounted without noexec.', sql: "SELECT path, type, options FROM mounts WHERE path IN ('/tmp', '/var/tmp', '/dev/shm') AND options NOT LIKE '%noexec%'" },
    { description: 'Network file systems.', sql: "SELECT path, source, type FROM mounts WHERE type IN ('nfs', 'nfs4', 'cifs', 'smb3', 'sshfs', 'fuse.sshfs')" },
  ],
  async generate(ctx) {
    const text = readProcText(ctx, 'self/mountinfo', ctx.maxFileBytes);
    if (text === undefined) {
      ctx.warn(Warn.unreadable, 'not read', '/proc/self/mountinfo');
      return [];
    }
    const rows: Row[] = [];
    let malformed = 0;
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      const m = parseMountInfoLine(line);
      if (!m) {
        malformed++;
        continue;
      }
      rows.push({ mount_id: m.id, parent_id: m.parent, device: m.device, path: m.path, root: m.root, type: m.type, source: m.source, options: m.options, super_options: m.superOptions, propagation: m.propagation });
    }
    if (malformed > 0) ctx.warn(Warn.malformed, `${malformed} line(s) skipped: not in the mountinfo format`, '/proc/self/mountinfo');
    return rows;
  },
};
