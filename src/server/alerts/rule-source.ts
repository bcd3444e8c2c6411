/**
 * Where the server's rules come from: the default pack shipped in rules/, the folders of the
 * configuration, and Sigma folders converted at load (src/rules/sigma). Files are read in a
 * stable order (the pack first, then each configured path in order, each folder sorted by path)
 * so that overrides apply the same way every time. Sigma rules that cannot be supported become
 * warnings of the load, with the reason's code: GET /api/v1/rules lists them.
 */
import type { RuleFile, RuleProblem } from '../../rules/index.js';
import { convertSigma } from '../../rules/sigma/index.js';
import { readDefaultPack, readRuleFiles } from '../../runtime/rule-pack.js';
import type { RuleSource } from './detector.js';

export interface RuleSourceConfig {
  readonly default_pack: boolean;
  readonly dirs: readonly string[];
  readonly sigma_dirs: readonly string[];
}

/** Converts Sigma files; each Sigma rule that cannot be supported is a warning naming why. */
export function sigmaRules(files: readonly RuleFile[]): { files: RuleFile[]; problems: RuleProblem[] } {
  const problems: RuleProblem[] = [];
  for (const f of files) {
    const why = f.unreadable;
    if (why === undefined) continue;
    problems.push({
      code: why.code === 'HADES_ERR_RULE_TOO_LARGE' ? 'HADES_ERR_SIGMA_TOO_LARGE' : 'HADES_ERR_SIGMA_READ',
      severity: 'warning',
      file: f.name,
      ...(why.line === undefined ? {} : { line: why.line, column: why.column ?? 1 }),
      message: `the Sigma file is not loaded: ${why.message}`,
    });
  }
  const converted = convertSigma(files.filter((f) => f.unreadable === undefined).map((f) => ({ path: f.name, text: f.text })));
  for (const entry of converted.report) {
    if (entry.status === 'loaded') continue;
    const reason = entry.reasons[0];
    problems.push({
      code: reason?.code ?? 'HADES_ERR_SIGMA_INVALID',
      severity: 'warning',
      file: entry.file,
      message: `Sigma rule ${entry.id ?? `#${entry.document}`} (${entry.title}) is not loaded: ${entry.reasons.map((r) => r.message).join('; ') || 'unsupported'}`,
      ...(entry.id ? { rule: entry.id } : {}),
    });
  }
  return { files: converted.files, problems };
}

/** Reads every configured rule file; the function given to the Detector. */
export function ruleSource(config: RuleSourceConfig): () => Promise<RuleSource> {
  return async () => {
    const files: RuleFile[] = [];
    const problems: RuleProblem[] = [];
    if (config.default_pack) files.push(...(await readDefaultPack()));
    if (config.dirs.length > 0) files.push(...(await readRuleFiles(config.dirs)));
    if (config.sigma_dirs.length > 0) {
      const sigma = sigmaRules(await readRuleFiles(config.sigma_dirs));
      files.push(...sigma.files);
      problems.push(...sigma.problems);
    }
    return { files, problems };
  };
}
