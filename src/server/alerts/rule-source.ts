/**
 * Where the server's rules come from: the default pack shipped in rules/, the folders of the
 * configuration, and Sigma folders converted at load. Files are read in a stable order (pack
 * first, then each folder sorted by path) so that overrides apply the same way every time.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HadesError } from '../../common/errors.js';
import type { RuleFile, RuleProblem } from '../../rules/index.js';
import type { RuleSource } from './detector.js';

/** The default pack, relative to this module in dist/src/server/alerts/. */
export const DEFAULT_PACK_DIR = process.env['HADES_RULES_DIR'] ?? fileURLToPath(new URL('../../../../rules/', import.meta.url));

const RULE_FILE = /\.ya?ml$/i;
const MAX_FILES = 10_000;

/** Every *.yaml / *.yml under a folder (or the file itself), sorted, as {name, text}. */
export async function readRuleFiles(target: string): Promise<RuleFile[]> {
  let info;
  try {
    info = await stat(target);
  } catch (error) {
    throw new HadesError('HADES_ERR_RULES_READ', `cannot read the rules at ${target}: ${(error as Error).message}`, { cause: error });
  }
  if (info.isFile()) return [{ name: target, text: await readFile(target, 'utf8') }];
  const names: string[] = [];
  const walk = async (dir: string, depth: number): Promise<void> => {
    if (depth > 8 || names.length >= MAX_FILES) return;
    const entries = await readdir(dir, { withFileTypes: true });
    for (const entry of entries) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(full, depth + 1);
      else if (entry.isFile() && RULE_FILE.test(entry.name)) names.push(full);
    }
  };
  try {
    await walk(target, 0);
  } catch (error) {
    throw new HadesError('HADES_ERR_RULES_READ', `cannot read the rules under ${target}: ${(error as Error).message}`, { cause: error });
  }
  names.sort();
  return Promise.all(names.map(async (name) => ({ name, text: await readFile(name, 'utf8') })));
}

export interface RuleSourceConfig {
  readonly default_pack: boolean;
  readonly dirs: readonly string[];
  readonly sigma_dirs: readonly string[];
}

/** Converts Sigma rule files into Hades rule files, with a problem for each rule it cannot. */
export type SigmaConverter = (files: readonly RuleFile[]) => { files: RuleFile[]; problems: RuleProblem[] };

/** Reads every configured rule file; the function given to the Detector. */
export function ruleSource(config: RuleSourceConfig, sigma?: SigmaConverter): () => Promise<RuleSource> {
  return async () => {
    const files: RuleFile[] = [];
    const problems: RuleProblem[] = [];
    if (config.default_pack) files.push(...(await readRuleFiles(DEFAULT_PACK_DIR)));
    for (const dir of config.dirs) files.push(...(await readRuleFiles(dir)));
    if (config.sigma_dirs.length > 0) {
      if (sigma === undefined) throw new HadesError('HADES_ERR_INTERNAL', 'Sigma folders are configured but no Sigma converter was given');
      const sigmaFiles: RuleFile[] = [];
      for (const dir of config.sigma_dirs) sigmaFiles.push(...(await readRuleFiles(dir)));
      const converted = sigma(sigmaFiles);
      files.push(...converted.files);
      problems.push(...converted.problems);
    }
    return { files, problems };
  };
}
