/** The Sigma rule files of third_party/sigma (SigmaHQ's Linux rules), as `convertSigma` takes them, sorted by path. */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { SigmaFile } from '../../src/rules/sigma/index.js';
import { projectRoot } from './generated-docs.js';

export const SIGMA_DIR = path.join(projectRoot, 'third_party/sigma');

export function sigmaFiles(dir: string = SIGMA_DIR): SigmaFile[] {
  const out: SigmaFile[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const full = path.join(d, name);
      if (statSync(full).isDirectory()) walk(full);
      else if (/\.ya?ml$/.test(name)) out.push({ path: path.relative(dir, full), text: readFileSync(full, 'utf8') });
    }
  };
  walk(dir);
  return out;
}
