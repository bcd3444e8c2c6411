/** npm_packages: globally installed npm packages and their own dependencies one level down. */
import path from 'node:path';
import type { CollectContext, Row, TableSpec } from '../table.js';
import { accountHomes, glob, isFolder, isPersonal, listFolder, readText, statPath, Warn } from './software-files.js';

/** Global node_modules folders: the distribution's, /usr/local (npm's default prefix), and per-person prefixes. */
const GLOBAL_FOLDERS = ['/usr/lib/node_modules', '/usr/local/lib/node_modules', '/opt/*/lib/node_modules'];
const HOME_GLOBAL_FOLDERS = ['.npm-global/lib/node_modules', '.nvm/versions/node/*/lib/node_modules', '.local/lib/node_modules'];

interface Manifest {
  name?: unknown;
  version?: unknown;
  description?: unknown;
}

const text = (value: unknown): string | null => (typeof value === 'string' ? value : null);

/** The package folders of a node_modules folder, scoped ones (@scope/name) included. */
async function packageFolders(ctx: CollectContext, nodeModules: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of (await listFolder(ctx, nodeModules)) ?? []) {
    if (entry.name.startsWith('.')) continue;
    const full = path.posix.join(nodeModules, entry.name);
    if (!(entry.isDirectory() || (entry.isSymbolicLink() && (await isFolder(ctx, full))))) continue;
    if (!entry.name.startsWith('@')) {
      out.push(full);
      continue;
    }
    for (const scoped of (await listFolder(ctx, full)) ?? []) {
      const child = path.posix.join(full, scoped.name);
      if (scoped.isDirectory() || (scoped.isSymbolicLink() && (await isFolder(ctx, child)))) out.push(child);
    }
  }
  return out;
}

async function readPackage(ctx: CollectContext, folder: string, location: string, parent: string | null): Promise<Row | undefined> {
  const file = `${folder}/package.json`;
  if (!(await statPath(ctx, file, 'package skipped'))) return undefined;
  const source = await readText(ctx, file);
  if (source === undefined) return undefined;
  let manifest: Manifest;
  try {
    manifest = JSON.parse(source) as Manifest;
  } catch (error) {
    ctx.warn(Warn.malformed, `package.json is not JSON (${error instanceof Error ? error.message : String(error)}); skipped`, file);
    return undefined;
  }
  if (typeof manifest !== 'object' || manifest === null) {
    ctx.warn(Warn.malformed, 'package.json is not an object; skipped', file);
    return undefined;
  }
  return {
    name: text(manifest.name) ?? path.posix.relative(location, folder),
    version: text(manifest.version),
    description: text(manifest.description),
    path: folder,
    parent,
    location,
  };
}

export async function readNpmPackages(ctx: CollectContext): Promise<Row[]> {
  const folders = [...GLOBAL_FOLDERS];
  for (const account of (await accountHomes(ctx)).filter(isPersonal)) folders.push(...HOME_GLOBAL_FOLDERS.map((f) => `${account.home}/${f}`));
  const rows: Row[] = [];
  const seen = new Set<string>();
  for (const pattern of folders) {
    for (const location of await glob(ctx, pattern)) {
      const stats = await statPath(ctx, location, 'node_modules skipped');
      if (!stats?.isDirectory() || seen.has(`${stats.dev}:${stats.ino}`)) continue;
      seen.add(`${stats.dev}:${stats.ino}`);
      for (const folder of await packageFolders(ctx, location)) {
        if (ctx.signal?.aborted) return rows;
        const row = await readPackage(ctx, folder, location, null);
        if (!row) continue;
        rows.push(row);
        const parent = typeof row['name'] === 'string' ? row['name'] : null;
        for (const nested of await packageFolders(ctx, `${folder}/node_modules`)) {
          const child = await readPackage(ctx, nested, location, parent);
          if (child) rows.push(child);
        }
      }
    }
  }
  return rows;
}

export const npmPackages: TableSpec = {
  name: 'npm_packages',
  description:
    'Globally installed npm packages (/usr/lib/node_modules, /usr/local/lib/node_modules, /opt/*/lib/node_modules, and ~/.npm-global, nvm and ~/.local prefixes of root and people) and the packages in each one\'s own node_modules, one level down.',
  columns: [
    { name: 'name', type: 'TEXT', description: 'Package name from package.json (@scope/name for scoped packages).' },
    { name: 'version', type: 'TEXT', description: 'Version.', nullable: true },
    { name: 'description', type: 'TEXT', description: 'Description.', nullable: true },
    { name: 'path', type: 'TEXT', description: 'The package folder.' },
    { name: 'parent', type: 'TEXT', description: 'The global package it is a dependency of; NULL for a globally installed package.', nullable: true },
    { name: 'location', type: 'TEXT', description: 'The global node_modules folder.' },
  ],
  examples: [
    { description: 'Globally installed packages.', sql: 'SELECT name, version, path FROM npm_packages WHERE parent IS NULL' },
    { description: 'Which global packages bring a given dependency.', sql: "SELECT parent, version FROM npm_packages WHERE name = 'semver'" },
  ],
  generate: (ctx) => readNpmPackages(ctx),
};
