/** ld_so_preload: libraries forced into every process, by /etc/ld.so.preload or an LD_PRELOAD set for every session. */
import type { CollectContext, Row, TableSpec } from '../table.js';
import { lines, listFolder, onDisk, readText, statPath, wants } from './software-files.js';

const PRELOAD_FILE = '/etc/ld.so.preload';
/** Files that set the environment of every session (pam_env) or every shell. */
const ENVIRONMENT_FILES = ['/etc/environment', '/etc/profile', '/etc/bash.bashrc', '/etc/bashrc', '/etc/zshenv', '/etc/zsh/zshenv', '/etc/zprofile', '/etc/zsh/zprofile'];
const PROFILE_FOLDER = '/etc/profile.d';
/** LD_PRELOAD=value, optionally exported, as pam_env and shells accept it. */
const ASSIGNMENT = /(?:^|[\s;&|])(?:export\s+|declare\s+-x\s+)?LD_PRELOAD=(?:"([^"]*)"|'([^']*)'|([^\s;&|]*))/;

interface Library {
  readonly library: string;
  readonly source: string;
  readonly line: number;
}

/** ld.so.preload: names separated by white space or colons; # starts a comment. */
export function parsePreloadFile(text: string, source: string): Library[] {
  const out: Library[] = [];
  for (const [index, raw] of lines(text).entries()) {
    const line = raw.replace(/#.*$/, '');
    for (const library of line.split(/[\s:]+/)) if (library !== '') out.push({ library, source, line: index + 1 });
  }
  return out;
}

/** LD_PRELOAD assignments in an environment file or shell script (the list separated by colons or spaces). */
export function parseAssignments(text: string, source: string): Library[] {
  const out: Library[] = [];
  for (const [index, raw] of lines(text).entries()) {
    const line = raw.trim();
    if (line.startsWith('#')) continue;
    const match = ASSIGNMENT.exec(line);
    if (!match) continue;
    const value = match[1] ?? match[2] ?? match[3] ?? '';
    for (const library of value.split(/[\s:]+/)) if (library !== '') out.push({ library, source, line: index + 1 });
  }
  return out;
}

export async function readPreloads(ctx: CollectContext): Promise<Row[]> {
  const found: Library[] = [];
  const preload = await readText(ctx, PRELOAD_FILE);
  if (preload !== undefined) found.push(...parsePreloadFile(preload, PRELOAD_FILE));
  const scripts = [...ENVIRONMENT_FILES];
  for (const entry of (await listFolder(ctx, PROFILE_FOLDER)) ?? []) if (!entry.isDirectory()) scripts.push(`${PROFILE_FOLDER}/${entry.name}`);
  for (const file of scripts) {
    if (!(await statPath(ctx, file))) continue;
    const text = await readText(ctx, file);
    if (text !== undefined) found.push(...parseAssignments(text, file));
  }
  const rows: Row[] = [];
  for (const { library, source, line } of found) {
    // $LIB, $PLATFORM and $ORIGIN are expanded by ld.so per process: such a path cannot be checked here.
    const checkable = library.startsWith('/') && !library.includes('$');
    const stats = checkable ? await statPath(ctx, library, 'preloaded library not checked') : undefined;
    rows.push({
      path: library,
      file_exists: checkable ? (stats?.isFile() ? 1 : 0) : null,
      sha256: stats?.isFile() && wants(ctx, 'sha256') ? ((await ctx.sha256(onDisk(ctx, library))) ?? null) : null,
      source,
      line,
    });
  }
  return rows;
}

export const ldSoPreload: TableSpec = {
  name: 'ld_so_preload',
  description:
    'Libraries loaded into every process: the entries of /etc/ld.so.preload, and LD_PRELOAD set in /etc/environment or in the system shell profiles (/etc/profile, /etc/profile.d/*, bash and zsh rc files). Usually empty; a row is worth a look.',
  columns: [
    { name: 'path', type: 'TEXT', description: 'The library as written.' },
    { name: 'file_exists', type: 'INTEGER', description: '1 when the file exists, 0 when it does not (EXISTS is an SQL keyword, hence the name); NULL when the path is relative or uses $LIB, $PLATFORM or $ORIGIN.', nullable: true },
    { name: 'sha256', type: 'TEXT', description: 'SHA-256 of the library, when it exists.', nullable: true },
    { name: 'source', type: 'TEXT', description: 'Where it is set: /etc/ld.so.preload, /etc/environment or a profile script.' },
    { name: 'line', type: 'INTEGER', description: 'Line number in the source.' },
  ],
  examples: [
    { description: 'Everything preloaded, and whether the library is there.', sql: 'SELECT path, file_exists, source, line FROM ld_so_preload' },
    { description: 'Preloads that point at a missing file (a leftover, or a rootkit that hides its file).', sql: 'SELECT path, source FROM ld_so_preload WHERE file_exists = 0' },
  ],
  generate: (ctx) => readPreloads(ctx),
};
