/** systemd_units: unit files of the system and user managers, with their drop-ins merged. */
import path from 'node:path';
import type { CollectContext, Row, TableSpec } from '../table.js';
import { readLinkText } from './host-names.js';
import { accountHomes, isPersonal, lines, listFolder, onDisk, readText, statPath } from './software-files.js';

type Scope = 'system' | 'user';

/** Unit folders, highest precedence first (a unit in an earlier folder overrides one of the same name later). */
const SYSTEM_FOLDERS = ['/etc/systemd/system', '/run/systemd/system', '/usr/local/lib/systemd/system', '/lib/systemd/system', '/usr/lib/systemd/system'];
const USER_FOLDERS = ['/etc/systemd/user', '/usr/local/lib/systemd/user', '/usr/lib/systemd/user'];
/** Folders whose *.wants links mean `systemctl enable` (links in vendor folders are static dependencies). */
const SYSTEM_ENABLE_FOLDERS = ['/etc/systemd/system', '/run/systemd/system'];
const UNIT_SUFFIX = /\.(service|socket|timer|target|path|mount|automount|swap|slice|scope|device)$/;
const LINK_FOLDER = /\.(wants|requires|upholds)$/;

/** Keys whose values form a list: an empty assignment empties it. */
const LIST_KEYS = new Set(['ExecStart', 'WantedBy', 'RequiredBy', 'Also', 'Alias']);

export type UnitSections = Map<string, Map<string, string[]>>;

/** Parses a unit file: [Section] headers, Key=Value lines (repeats kept in order), # and ; comments, trailing-backslash continuations. */
export function parseUnitFile(text: string, into: UnitSections = new Map()): UnitSections {
  let section: Map<string, string[]> | undefined;
  let pending = '';
  for (const raw of lines(text)) {
    const joined = pending + raw;
    if (joined.endsWith('\\')) {
      pending = `${joined.slice(0, -1)} `;
      continue;
    }
    pending = '';
    const line = joined.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    if (line.startsWith('[') && line.endsWith(']')) {
      const name = line.slice(1, -1);
      section = into.get(name) ?? new Map<string, string[]>();
      into.set(name, section);
      continue;
    }
    const eq = line.indexOf('=');
    if (eq <= 0 || !section) continue;
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    const values = section.get(key) ?? [];
    // Later assignments of single-valued keys win; list keys accumulate until an empty assignment resets them.
    if (LIST_KEYS.has(key)) {
      if (value === '') values.length = 0;
      else values.push(value);
    } else values.splice(0, values.length, value);
    section.set(key, values);
  }
  return into;
}

const last = (sections: UnitSections, section: string, key: string): string | null => sections.get(section)?.get(key)?.at(-1) ?? null;
const all = (sections: UnitSections, section: string, key: string): string[] => sections.get(section)?.get(key) ?? [];

interface UnitFile {
  readonly name: string;
  readonly hostPath: string;
  /** The link target as a host path, when the unit file is a symbolic link. */
  readonly target: string | null;
}

/** Where a link points, as a host path (absolute links are taken relative to ctx.root, as systemd would see them). */
async function linkTarget(ctx: CollectContext, hostPath: string): Promise<string | null> {
  try {
    const target = await readLinkText(onDisk(ctx, hostPath));
    return path.posix.resolve(path.posix.dirname(hostPath), target);
  } catch {
    return null;
  }
}

interface Folder {
  readonly hostPath: string;
  readonly scope: Scope;
  /** For a user's own folder (~/.config/systemd/user): the user. */
  readonly owner?: string;
}

interface FolderListing {
  readonly units: UnitFile[];
  /** Names of the units with a drop-in folder (NAME.d) here. */
  readonly dropInFolders: Set<string>;
}

async function listUnitFolder(ctx: CollectContext, folder: string): Promise<FolderListing> {
  const units: UnitFile[] = [];
  const dropInFolders = new Set<string>();
  for (const entry of (await listFolder(ctx, folder)) ?? []) {
    if (entry.name.endsWith('.d') && (entry.isDirectory() || entry.isSymbolicLink())) dropInFolders.add(entry.name.slice(0, -2));
    if (!UNIT_SUFFIX.test(entry.name)) continue;
    const hostPath = `${folder}/${entry.name}`;
    if (entry.isSymbolicLink()) units.push({ name: entry.name, hostPath, target: await linkTarget(ctx, hostPath) });
    else if (entry.isFile()) units.push({ name: entry.name, hostPath, target: null });
  }
  return { units, dropInFolders };
}

/** Units with a link in a *.wants, *.requires or *.upholds folder, or aliased by a link, in the given folders. */
async function enabledUnits(ctx: CollectContext, folders: readonly string[]): Promise<Set<string>> {
  const enabled = new Set<string>();
  const add = (name: string): void => {
    enabled.add(name);
    // An enabled instance (getty@tty1.service) enables its template (getty@.service).
    const instance = /^(.+@)[^.]+(\.[a-z]+)$/.exec(name);
    if (instance) enabled.add(`${instance[1]}${instance[2]}`);
  };
  for (const folder of folders) {
    for (const entry of (await listFolder(ctx, folder)) ?? []) {
      if (entry.isDirectory() && LINK_FOLDER.test(entry.name)) {
        for (const link of (await listFolder(ctx, `${folder}/${entry.name}`)) ?? []) if (UNIT_SUFFIX.test(link.name)) add(link.name);
      } else if (entry.isSymbolicLink() && UNIT_SUFFIX.test(entry.name)) {
        const target = await linkTarget(ctx, `${folder}/${entry.name}`);
        if (target && target !== '/dev/null' && path.posix.basename(target) !== entry.name) add(path.posix.basename(target));
      }
    }
  }
  return enabled;
}

/** The drop-in files (NAME.d/*.conf) of a unit across the folders, by file name: the highest-precedence one of each name, sorted. */
async function dropIns(ctx: CollectContext, folders: readonly Folder[], listings: readonly FolderListing[], name: string): Promise<string[]> {
  const byName = new Map<string, string>();
  for (const [index, folder] of folders.entries()) {
    if (!listings[index]?.dropInFolders.has(name)) continue;
    const dir = `${folder.hostPath}/${name}.d`;
    for (const entry of (await listFolder(ctx, dir)) ?? []) {
      if (entry.name.endsWith('.conf') && !byName.has(entry.name)) byName.set(entry.name, `${dir}/${entry.name}`);
    }
  }
  return [...byName.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, file]) => file);
}

async function readScope(ctx: CollectContext, folders: readonly Folder[], enabled: ReadonlySet<string>, rows: Row[]): Promise<void> {
  const winner = new Map<string, string>();
  const listings: FolderListing[] = [];
  for (const folder of folders) listings.push(await listUnitFolder(ctx, folder.hostPath));
  for (const [index, folder] of folders.entries()) {
    for (const unit of listings[index]?.units ?? []) {
      if (ctx.signal?.aborted) return;
      const overriddenBy = winner.get(unit.name);
      if (overriddenBy === undefined) winner.set(unit.name, unit.hostPath);
      const text = unit.target === '/dev/null' ? '' : await readText(ctx, unit.target ?? unit.hostPath);
      if (text === undefined) continue;
      // systemd masks a unit whose file links to /dev/null or is empty.
      const masked = text.length === 0;
      let sections: UnitSections = new Map();
      let drops: string[] = [];
      if (!masked) {
        sections = parseUnitFile(text);
        drops = await dropIns(ctx, folders, listings, unit.name);
        for (const file of drops) {
          const drop = await readText(ctx, file);
          if (drop !== undefined) parseUnitFile(drop, sections);
        }
      }
      const execStart = all(sections, 'Service', 'ExecStart');
      const wantedBy = all(sections, 'Install', 'WantedBy').flatMap((v) => v.split(/\s+/));
      rows.push({
        name: unit.name,
        scope: folder.scope,
        owner: folder.owner ?? null,
        type: UNIT_SUFFIX.exec(unit.name)?.[1] ?? null,
        path: unit.hostPath,
        description: last(sections, 'Unit', 'Description'),
        exec_start: execStart.length > 0 ? execStart.join('; ') : null,
        user: last(sections, 'Service', 'User'),
        wanted_by: wantedBy.length > 0 ? wantedBy.join(' ') : null,
        enabled: enabled.has(unit.name) ? 1 : 0,
        overridden: overriddenBy === undefined ? 0 : 1,
        masked: masked ? 1 : 0,
        symlink_target: unit.target,
        drop_ins: drops.length > 0 ? drops.join(' ') : null,
      });
    }
  }
}

/** The folders of a list that exist, each real folder once (/lib is /usr/lib on merged-/usr systems). */
async function distinctFolders(ctx: CollectContext, paths: readonly string[], scope: Scope, seen: Set<string>, owner?: string): Promise<Folder[]> {
  const out: Folder[] = [];
  for (const hostPath of paths) {
    const stats = await statPath(ctx, hostPath, 'unit folder skipped');
    if (!stats?.isDirectory()) continue;
    const id = `${stats.dev}:${stats.ino}`;
    if (seen.has(id)) continue;
    seen.add(id);
    out.push(owner === undefined ? { hostPath, scope } : { hostPath, scope, owner });
  }
  return out;
}

export async function readSystemdUnits(ctx: CollectContext): Promise<Row[]> {
  const rows: Row[] = [];
  const seen = new Set<string>();
  const system = await distinctFolders(ctx, SYSTEM_FOLDERS, 'system', seen);
  await readScope(ctx, system, await enabledUnits(ctx, SYSTEM_ENABLE_FOLDERS), rows);
  const user = await distinctFolders(ctx, USER_FOLDERS, 'user', seen);
  await readScope(ctx, user, await enabledUnits(ctx, ['/etc/systemd/user']), rows);
  for (const account of (await accountHomes(ctx)).filter(isPersonal)) {
    const own = await distinctFolders(ctx, [`${account.home}/.config/systemd/user`], 'user', seen, account.name);
    if (own.length === 0) continue;
    // A user's own units are enabled by links in their own folder; they override nothing for other users.
    await readScope(ctx, own, await enabledUnits(ctx, own.map((f) => f.hostPath)), rows);
  }
  return rows;
}

export const systemdUnits: TableSpec = {
  name: 'systemd_units',
  description:
    'systemd unit files: system units (/etc/systemd/system, /run/systemd/system, /usr/local/lib/systemd/system, /lib and /usr/lib/systemd/system), global user units (/etc/systemd/user, /usr/local/lib and /usr/lib/systemd/user) and the user units of root and people (~/.config/systemd/user), with drop-ins (NAME.d/*.conf) merged into the values shown.',
  columns: [
    { name: 'name', type: 'TEXT', description: 'Unit name, e.g. ssh.service (templates end in @.service).' },
    { name: 'scope', type: 'TEXT', description: 'system (the system manager) or user (user managers).' },
    { name: 'owner', type: 'TEXT', description: 'For a unit in a user\'s ~/.config/systemd/user: that user; otherwise NULL.', nullable: true },
    { name: 'type', type: 'TEXT', description: 'Unit type: service, socket, timer, target, path, mount, automount, swap, slice, scope, device.' },
    { name: 'path', type: 'TEXT', description: 'The unit file (a link\'s own path when the unit file is a link).' },
    { name: 'description', type: 'TEXT', description: 'Description= of [Unit].', nullable: true },
    { name: 'exec_start', type: 'TEXT', description: 'ExecStart= of [Service], several separated by "; ".', nullable: true },
    { name: 'user', type: 'TEXT', description: 'User= of [Service]; NULL means root for system units.', nullable: true },
    { name: 'wanted_by', type: 'TEXT', description: 'WantedBy= of [Install], space separated.', nullable: true },
    { name: 'enabled', type: 'INTEGER', description: '1 when enabled: linked from a *.wants, *.requires or *.upholds folder or aliased in /etc/systemd/system or /run/systemd/system (for user units, /etc/systemd/user or the user\'s folder).' },
    { name: 'overridden', type: 'INTEGER', description: '1 when a unit file of the same name in a folder of higher precedence is used instead of this one.' },
    { name: 'masked', type: 'INTEGER', description: '1 when the unit file is a link to /dev/null or empty.' },
    { name: 'symlink_target', type: 'TEXT', description: 'Where the unit file links to, when it is a link (an alias or a mask).', nullable: true },
    { name: 'drop_ins', type: 'TEXT', description: 'The drop-in files merged, space separated.', nullable: true },
  ],
  examples: [
    { description: 'Enabled services and what they run.', sql: "SELECT name, exec_start, user FROM systemd_units WHERE type = 'service' AND enabled = 1 AND overridden = 0" },
    { description: 'Units added by the administrator or a program rather than by packages.', sql: "SELECT name, path, exec_start FROM systemd_units WHERE path LIKE '/etc/%' AND symlink_target IS NULL" },
  ],
  generate: (ctx) => readSystemdUnits(ctx),
};
