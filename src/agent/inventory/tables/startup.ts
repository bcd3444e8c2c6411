/** startup_items: what runs at boot, at login or with every shell: init scripts, rc.local, profile scripts, XDG autostart. */
import type { Stats } from 'node:fs';
import path from 'node:path';
import type { CollectContext, Row, TableSpec } from '../table.js';
import { accountHomes, listFolder, onDisk, readText, statPath, wants } from './software-files.js';
import { parseUnitFile } from './systemd.js';

type ItemType = 'init.d' | 'rc.local' | 'shell_profile' | 'user_profile' | 'xdg_autostart';

/** Scripts every login or interactive shell of bash, sh or zsh reads, and the environment pam_env applies. */
const SYSTEM_PROFILES = [
  '/etc/profile',
  '/etc/bash.bashrc',
  '/etc/bashrc',
  '/etc/environment',
  '/etc/zshenv',
  '/etc/zprofile',
  '/etc/zshrc',
  '/etc/zlogin',
  '/etc/zsh/zshenv',
  '/etc/zsh/zprofile',
  '/etc/zsh/zshrc',
  '/etc/zsh/zlogin',
];
/** The same in a home. */
const USER_PROFILES = ['.profile', '.bashrc', '.bash_profile', '.bash_login', '.bash_logout', '.zshenv', '.zprofile', '.zshrc', '.zlogin'];

interface Item {
  readonly path: string;
  readonly type: ItemType;
  readonly user: string | null;
}

/** Regular files of a folder (links followed), hidden ones left out, optionally only with a suffix. */
async function folderItems(ctx: CollectContext, folder: string, type: ItemType, user: string | null, suffix = ''): Promise<Item[]> {
  const out: Item[] = [];
  for (const entry of (await listFolder(ctx, folder)) ?? []) {
    if (entry.name.startsWith('.') || !entry.name.endsWith(suffix) || entry.isDirectory()) continue;
    out.push({ path: path.posix.join(folder, entry.name), type, user });
  }
  return out;
}

/** Exec= of a .desktop file's [Desktop Entry], or undefined. */
async function desktopExec(ctx: CollectContext, hostFile: string): Promise<string | null> {
  const text = await readText(ctx, hostFile);
  if (text === undefined) return null;
  return parseUnitFile(text).get('Desktop Entry')?.get('Exec')?.at(-1) ?? null;
}

const octal = (stats: Stats): string => (stats.mode & 0o7777).toString(8).padStart(4, '0');

export async function readStartupItems(ctx: CollectContext): Promise<Row[]> {
  const items: Item[] = [];
  items.push(...(await folderItems(ctx, '/etc/init.d', 'init.d', null)));
  items.push({ path: '/etc/rc.local', type: 'rc.local', user: null });
  items.push(...SYSTEM_PROFILES.map((p) => ({ path: p, type: 'shell_profile' as const, user: null })));
  items.push(...(await folderItems(ctx, '/etc/profile.d', 'shell_profile', null)));
  items.push(...(await folderItems(ctx, '/etc/xdg/autostart', 'xdg_autostart', null, '.desktop')));
  for (const account of await accountHomes(ctx)) {
    items.push(...USER_PROFILES.map((p) => ({ path: `${account.home}/${p}`, type: 'user_profile' as const, user: account.name })));
    items.push(...(await folderItems(ctx, `${account.home}/.config/autostart`, 'xdg_autostart', account.name, '.desktop')));
  }
  const rows: Row[] = [];
  const hash = wants(ctx, 'sha256');
  for (const item of items) {
    if (ctx.signal?.aborted) break;
    const stats = await statPath(ctx, item.path, 'startup item skipped');
    if (!stats?.isFile()) continue;
    rows.push({
      name: path.posix.basename(item.path),
      path: item.path,
      type: item.type,
      user: item.user,
      command: item.type === 'xdg_autostart' ? await desktopExec(ctx, item.path) : null,
      sha256: hash ? ((await ctx.sha256(onDisk(ctx, item.path))) ?? null) : null,
      size: stats.size,
      mtime: Math.floor(stats.mtimeMs / 1000),
      mode: octal(stats),
    });
  }
  return rows;
}

export const startupItems: TableSpec = {
  name: 'startup_items',
  description:
    'What runs at boot, at login or with every shell: /etc/init.d scripts, /etc/rc.local, system shell profiles (/etc/profile, /etc/profile.d/*, bash and zsh rc files, /etc/environment), the profiles in every home (.profile, .bashrc, .zshrc...) and XDG autostart entries (/etc/xdg/autostart, ~/.config/autostart).',
  columns: [
    { name: 'name', type: 'TEXT', description: 'File name.' },
    { name: 'path', type: 'TEXT', description: 'The file.' },
    { name: 'type', type: 'TEXT', description: 'init.d, rc.local, shell_profile (system-wide), user_profile (in a home) or xdg_autostart.' },
    { name: 'user', type: 'TEXT', description: 'The account whose home holds it; NULL for system-wide items.', nullable: true },
    { name: 'command', type: 'TEXT', description: 'For an XDG autostart entry: its Exec= command.', nullable: true },
    { name: 'sha256', type: 'TEXT', description: 'SHA-256 of the file; NULL when it could not be read.', nullable: true },
    { name: 'size', type: 'INTEGER', description: 'Size in bytes.' },
    { name: 'mtime', type: 'INTEGER', description: 'Last modification (Unix seconds).' },
    { name: 'mode', type: 'TEXT', description: 'Permission bits, octal (e.g. 0755).' },
  ],
  examples: [
    { description: 'Startup items changed in the last week.', sql: "SELECT path, type, datetime(mtime, 'unixepoch') AS modified FROM startup_items WHERE mtime > strftime('%s', 'now') - 7 * 86400" },
    { description: 'Startup files that group or others can write.', sql: "SELECT path, mode FROM startup_items WHERE substr(mode, 4, 1) IN ('2', '3', '6', '7') OR substr(mode, 3, 1) IN ('2', '3', '6', '7')" },
  ],
  generate: (ctx) => readStartupItems(ctx),
};
