/** python_packages: Python distributions installed system-wide, per user and in virtual environments. */
import path from 'node:path';
import type { CollectContext, Row, TableSpec } from '../table.js';
import { accountHomes, glob, isPersonal, isFolder, listFolder, readHead, statPath, walk, WalkBudget, Warn } from './software-files.js';

export type PythonLocationKind = 'system' | 'user' | 'venv';

export interface PythonPackage {
  readonly name: string;
  readonly version: string | null;
  readonly summary: string | null;
  /** The .dist-info or .egg-info folder (or file). */
  readonly path: string;
  /** The site-packages folder. */
  readonly location: string;
  readonly kind: PythonLocationKind;
}

/** Where system-wide packages live: Debian's dist-packages, and site-packages elsewhere. */
const SYSTEM_SITES = [
  '/usr/lib/python*/dist-packages',
  '/usr/lib/python*/site-packages',
  '/usr/lib64/python*/site-packages',
  '/usr/local/lib/python*/dist-packages',
  '/usr/local/lib/python*/site-packages',
  '/usr/local/lib64/python*/site-packages',
];

/** Folders searched for virtual environments (a folder holding pyvenv.cfg), and how deep. */
const VENV_ROOTS = ['/opt', '/srv', '/var/www', '/app', '/usr/local/venvs', '/var/lib'];
const VENV_DEPTH = 3;
/** Places where tools keep their environments, relative to a home (pipenv, poetry, virtualenvwrapper, pipx). */
const HOME_VENV_FOLDERS = ['.virtualenvs/*', '.local/share/virtualenvs/*', '.cache/pypoetry/virtualenvs/*', '.local/pipx/venvs/*', '.local/share/pipx/venvs/*'];
/** Folders a venv search does not enter: they are large and never hold one. */
const NOT_ENTERED = new Set(['node_modules', '__pycache__', 'site-packages', 'dist-packages', 'proc', 'sys', 'docker', 'containerd', 'dpkg', 'apt', 'mysql', 'postgresql']);
/** Hidden folders that do commonly hold a project's environment. */
const HIDDEN_ENTERED = new Set(['.venv', '.virtualenv', '.env']);
/** Folders visited by the whole venv search at most. */
const VENV_SEARCH_FOLDERS = 20_000;
/** The metadata headers are at the start; the long description after them is not read. */
const METADATA_HEAD = 64 * 1024;

interface Site {
  readonly folder: string;
  readonly kind: PythonLocationKind;
}

/** The headers of a METADATA or PKG-INFO file (RFC 822 style, until the first blank line). */
export function parseMetadataHeaders(text: string): Map<string, string> {
  const headers = new Map<string, string>();
  let last: string | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '') break;
    if ((line.startsWith(' ') || line.startsWith('\t')) && last) {
      headers.set(last, `${headers.get(last) ?? ''} ${line.trim()}`);
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const key = line.slice(0, colon).trim().toLowerCase();
    last = key;
    if (!headers.has(key)) headers.set(key, line.slice(colon + 1).trim());
  }
  return headers;
}

/** Name and version from a folder name: name-1.2.dist-info, Name-1.2-py3.11.egg-info, name.egg-info. */
function fromFolderName(entry: string): { name: string; version: string | null } {
  const stem = entry.replace(/\.(dist|egg)-info$/, '');
  const dash = stem.indexOf('-');
  if (dash === -1) return { name: stem, version: null };
  const version = stem.slice(dash + 1).replace(/-py\d+(\.\d+)*$/, '');
  return { name: stem.slice(0, dash), version: version || null };
}

async function readSite(ctx: CollectContext, site: Site, out: PythonPackage[]): Promise<void> {
  for (const entry of (await listFolder(ctx, site.folder)) ?? []) {
    const isDist = entry.name.endsWith('.dist-info');
    const isEgg = entry.name.endsWith('.egg-info');
    if (!isDist && !isEgg) continue;
    const infoPath = path.posix.join(site.folder, entry.name);
    let metadataFile: string;
    if (entry.isDirectory() || (entry.isSymbolicLink() && (await isFolder(ctx, infoPath)))) {
      metadataFile = path.posix.join(infoPath, isDist ? 'METADATA' : 'PKG-INFO');
    } else if (isEgg) {
      // An .egg-info file (distutils installs, Debian's python3-* packages) is itself the PKG-INFO.
      metadataFile = infoPath;
    } else continue;
    const head = await readHead(ctx, metadataFile, METADATA_HEAD);
    const headers = head ? parseMetadataHeaders(head.data.toString('utf8')) : new Map<string, string>();
    const fallback = fromFolderName(entry.name);
    const name = headers.get('name') || fallback.name;
    if (head && !headers.get('name')) ctx.warn(Warn.malformed, `no Name header; the name is taken from the folder name`, metadataFile);
    out.push({
      name,
      version: headers.get('version') || fallback.version,
      summary: headers.get('summary') || null,
      path: infoPath,
      location: site.folder,
      kind: site.kind,
    });
  }
}

async function venvSites(ctx: CollectContext, venv: string): Promise<string[]> {
  return [...(await glob(ctx, `${venv}/lib/python*/site-packages`)), ...(await glob(ctx, `${venv}/lib64/python*/site-packages`))];
}

async function findVenvs(ctx: CollectContext, homes: readonly string[]): Promise<string[]> {
  const venvs: string[] = [];
  const budget = new WalkBudget(VENV_SEARCH_FOLDERS);
  const visited = new Set<string>();
  const isVenv = async (dir: string): Promise<boolean> => (await statPath(ctx, `${dir}/pyvenv.cfg`))?.isFile() === true;
  for (const root of [...VENV_ROOTS, ...homes]) {
    await walk(
      ctx,
      root,
      {
        maxDepth: VENV_DEPTH,
        budget,
        what: 'virtual environment search',
        enter: (name) => !NOT_ENTERED.has(name) && (!name.startsWith('.') || HIDDEN_ENTERED.has(name)),
        onFolder: (dir, entries) => {
          if (!entries.some((e) => e.name === 'pyvenv.cfg' && !e.isDirectory())) return true;
          venvs.push(dir);
          return false;
        },
      },
      visited,
    );
  }
  for (const home of homes) {
    for (const pattern of HOME_VENV_FOLDERS) {
      for (const dir of await glob(ctx, `${home}/${pattern}`)) if (await isVenv(dir)) venvs.push(dir);
    }
  }
  return venvs;
}

/** Every Python distribution in the places listed above, each site-packages folder read once. */
export async function readPythonPackages(ctx: CollectContext): Promise<PythonPackage[]> {
  const accounts = await accountHomes(ctx);
  const homes = accounts.map((a) => a.home);
  const sites: Site[] = [];
  for (const pattern of SYSTEM_SITES) for (const folder of await glob(ctx, pattern)) sites.push({ folder, kind: 'system' });
  for (const home of homes) for (const folder of await glob(ctx, `${home}/.local/lib/python*/site-packages`)) sites.push({ folder, kind: 'user' });
  for (const venv of await findVenvs(ctx, accounts.filter(isPersonal).map((a) => a.home))) for (const folder of await venvSites(ctx, venv)) sites.push({ folder, kind: 'venv' });

  const out: PythonPackage[] = [];
  const seen = new Set<string>();
  for (const site of sites) {
    if (ctx.signal?.aborted) break;
    const stats = await statPath(ctx, site.folder, 'site-packages skipped');
    if (!stats?.isDirectory()) continue;
    // lib64 is often a link to lib, and /usr/lib/python3 may be reached twice.
    const id = `${stats.dev}:${stats.ino}`;
    if (seen.has(id)) continue;
    seen.add(id);
    await readSite(ctx, site, out);
  }
  return out;
}

/** The packages, read once per query when both python_packages and package_findings are queried. */
export function pythonPackagesOnce(ctx: CollectContext): Promise<PythonPackage[]> {
  return ctx.memo ? ctx.memo('software:python_packages', () => readPythonPackages(ctx)) : readPythonPackages(ctx);
}

export const pythonPackages: TableSpec = {
  name: 'python_packages',
  description:
    'Python distributions (*.dist-info and *.egg-info) in the system dist-packages and site-packages folders, in users\' ~/.local, and in virtual environments found under /opt, /srv, /var/www, /app, /var/lib and the homes of root and of people (3 levels deep) and in the folders of pipenv, poetry, virtualenvwrapper and pipx.',
  columns: [
    { name: 'name', type: 'TEXT', description: 'Distribution name as its metadata spells it (from the folder name when the metadata has none).' },
    { name: 'version', type: 'TEXT', description: 'Version.', nullable: true },
    { name: 'summary', type: 'TEXT', description: 'One-line summary.', nullable: true },
    { name: 'path', type: 'TEXT', description: 'The .dist-info or .egg-info folder or file.' },
    { name: 'location', type: 'TEXT', description: 'The site-packages or dist-packages folder it is installed in.' },
    { name: 'kind', type: 'TEXT', description: 'Where: system, user (~/.local) or venv (a virtual environment).' },
  ],
  examples: [
    { description: 'Packages installed outside the distribution\'s own folders.', sql: "SELECT name, version, location FROM python_packages WHERE kind != 'system' OR location LIKE '/usr/local/%'" },
    { description: 'Distributions installed more than once with different versions.', sql: 'SELECT lower(name) AS name, group_concat(DISTINCT version) AS versions FROM python_packages GROUP BY lower(name) HAVING count(DISTINCT version) > 1' },
  ],
  generate: async (ctx): Promise<Row[]> => (await pythonPackagesOnce(ctx)).map((p) => ({ ...p })),
};
