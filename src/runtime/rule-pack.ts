/**
 * Reading rule files from disk: the default pack shipped in the package's `rules/` folder, and
 * files or folders a person names. The rule engine (src/rules) is pure and takes `{name, text}`;
 * this is the part that touches the file system, shared by the server and `hades rules test`.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HadesError } from '../common/errors.js';
import { notUtf8 } from './regular-file.js';

/** The default rule pack: `rules/` at the package root (this file is dist/src/runtime/). */
export const DEFAULT_PACK_DIR = fileURLToPath(new URL('../../../rules/', import.meta.url));

/** Largest rule file read; the same limit as the engine's (MAX_RULE_FILE_BYTES). */
const MAX_RULE_FILE_BYTES = 8 * 1024 * 1024;
/** Folders deeper than this are not searched: a symlink loop must not hang a reload. */
const MAX_DEPTH = 8;

/** One rule file: what `loadRules` takes. */
export interface RuleFileText {
  /** How problems and alerts name the file. */
  readonly name: string;
  readonly text: string;
  /** Why its text could not be read (too large, not UTF-8): the loader reports it, the other files load. */
  readonly unreadable?: {
    readonly code: 'HADES_ERR_RULE_TOO_LARGE' | 'HADES_ERR_RULE_YAML';
    readonly message: string;
    readonly line?: number;
    readonly column?: number;
  };
}

const isRuleFile = (name: string) => /\.ya?ml$/i.test(name) && !name.startsWith('.');

function readError(p: string, error: unknown): HadesError {
  if (error instanceof HadesError) return error;
  const reason = (error as NodeJS.ErrnoException).code ?? String(error);
  return new HadesError('HADES_ERR_RULE_PACK_READ', `cannot read ${p}: ${reason}`, { cause: error });
}

/** The *.yaml and *.yml files under a folder, sorted by path, hidden entries skipped. */
async function filesUnder(dir: string, depth = 0, seen = new Set<string>()): Promise<string[]> {
  if (depth > MAX_DEPTH) return [];
  // Each folder once, by device and inode: links back up the tree (`ln -s . again`) or to a folder
  // seen already would read the same files again, a loop of links exponentially many times.
  const self = await stat(dir);
  const id = `${self.dev}:${self.ino}`;
  if (seen.has(id)) return [];
  seen.add(id);
  const entries = await readdir(dir, { withFileTypes: true });
  const out: string[] = [];
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (entry.name.startsWith('.')) continue;
    const full = path.join(dir, entry.name);
    // A symbolic link counts as what it points to (a folder of links to rule files is common).
    const kind = entry.isSymbolicLink() ? await stat(full).catch(() => undefined) : entry;
    if (kind?.isDirectory()) out.push(...(await filesUnder(full, depth + 1, seen)));
    else if (kind?.isFile() && isRuleFile(entry.name)) out.push(full);
  }
  return out;
}

/**
 * A rule file's text. One that is too large or not UTF-8 text (each byte that is not would turn
 * into U+FFFD, and a rule value holding one never match what the agent writes) comes back with
 * the reason, for the loader to report as that file's error while the others load.
 */
async function readRuleFile(file: string, name: string): Promise<RuleFileText> {
  const info = await stat(file);
  // A FIFO would block the read for ever, a device (/dev/zero) fill the memory.
  if (!info.isFile()) throw new HadesError('HADES_ERR_RULE_PACK_READ', `${file} is not a regular file`);
  if (info.size > MAX_RULE_FILE_BYTES) {
    return { name, text: '', unreadable: { code: 'HADES_ERR_RULE_TOO_LARGE', message: `the file is ${info.size} bytes; a rule file may be ${MAX_RULE_FILE_BYTES}` } };
  }
  const bytes = await readFile(file);
  const bad = notUtf8(bytes);
  if (bad !== undefined) return { name, text: '', unreadable: { code: 'HADES_ERR_RULE_YAML', ...bad } };
  return { name, text: bytes.toString('utf8') };
}

/**
 * Reads rule files: each path is a file (read whatever its extension) or a folder (its *.yaml
 * and *.yml files, sub-folders included, in path order). Files are named by their path as
 * given (a folder's files by the folder's path joined with theirs). Throws
 * HADES_ERR_RULE_PACK_READ for a path that cannot be read or a folder without rule files.
 */
export async function readRuleFiles(paths: readonly string[]): Promise<RuleFileText[]> {
  const out: RuleFileText[] = [];
  for (const p of paths) {
    try {
      const info = await stat(p);
      if (!info.isDirectory()) {
        out.push(await readRuleFile(p, p));
        continue;
      }
      const files = await filesUnder(p);
      if (files.length === 0) throw new HadesError('HADES_ERR_RULE_PACK_READ', `${p} holds no .yaml or .yml file`);
      for (const f of files) out.push(await readRuleFile(f, f));
    } catch (error) {
      throw readError(p, error);
    }
  }
  return out;
}

/** A path of `rules.dirs` or `rules.sigma_dirs` that cannot be read, as a configuration problem. */
export interface RulePathProblem {
  readonly code: 'HADES_ERR_RULE_PACK_READ';
  /** The key of the path: `rules.dirs.0`. */
  readonly path: string;
  readonly message: string;
}

/**
 * The rule paths of a server configuration that cannot be read (missing, not a file or folder,
 * not readable by this user), checked when the configuration is (`hades config check`, a start),
 * so that a typo is reported with its key before the server makes anything. What the folders
 * hold is read, and reported, when the rules are loaded.
 */
export function checkRulePaths(rules: { readonly dirs: readonly string[]; readonly sigma_dirs: readonly string[] }): RulePathProblem[] {
  const problems: RulePathProblem[] = [];
  for (const key of ['dirs', 'sigma_dirs'] as const) {
    rules[key].forEach((p, i) => {
      try {
        const info = statSync(p);
        if (!info.isFile() && !info.isDirectory()) throw new HadesError('HADES_ERR_RULE_PACK_READ', `${p} is neither a file nor a folder`);
        accessSync(p, info.isDirectory() ? constants.R_OK | constants.X_OK : constants.R_OK);
      } catch (error) {
        problems.push({ code: 'HADES_ERR_RULE_PACK_READ', path: `rules.${key}.${i}`, message: readError(p, error).message });
      }
    });
  }
  return problems;
}

/**
 * The default pack's files, named `rules/<file>` (relative to the package): the names alerts
 * and problems carry do not depend on where Hades is installed.
 */
export async function readDefaultPack(dir: string = DEFAULT_PACK_DIR): Promise<RuleFileText[]> {
  const files = await readRuleFiles([dir]);
  return files.map((f) => ({ name: path.posix.join('rules', path.relative(dir, f.name).split(path.sep).join('/')), text: f.text }));
}
