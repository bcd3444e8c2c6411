import { readdir, readFile, realpath, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { HadesError } from '../../common/errors.js';
import { MAX_RULE_FILE_BYTES } from '../../rules/index.js';
import { convertSigma, summarize, type SigmaFile, type SigmaReportEntry } from '../../rules/sigma/index.js';
import { exitStatus, type CliContext } from '../context.js';
import { notUtf8 } from '../../runtime/regular-file.js';
import { makeFoldersAsync } from '../../runtime/folders.js';

const LICENCE_FILES = /^(licen[cs]e|copying)(\.(md|txt))?$/i;
/** Folders above DIR searched for the licence of the rules (SigmaHQ keeps it at the top). */
const LICENCE_DEPTH = 3;

interface Folder {
  readonly files: SigmaFile[];
  /** Files and folders that could not be read, as report entries. */
  readonly unreadable: SigmaReportEntry[];
}

function rejected(file: string, code: 'HADES_ERR_SIGMA_READ' | 'HADES_ERR_SIGMA_TOO_LARGE', message: string): SigmaReportEntry {
  return { file, document: 1, title: path.basename(file), kind: 'invalid', category: '(none)', status: 'unsupported', reasons: [{ code, detail: 'file', message }], notes: [] };
}

function unreadableEntry(file: string, error: unknown): SigmaReportEntry {
  return rejected(file, 'HADES_ERR_SIGMA_READ', `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
}

/**
 * Every .yml and .yaml file under `root`, read, with paths relative to it (sorted, so that a
 * run is repeatable). Hidden entries are skipped; links to folders are not followed (no loops).
 */
async function readSigmaFolder(root: string): Promise<Folder> {
  let info;
  try {
    info = await stat(root);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new HadesError('HADES_ERR_SIGMA_NOT_FOUND', `${root} does not exist; give a folder of Sigma rules`);
    throw new HadesError('HADES_ERR_SIGMA_READ', `cannot read ${root}: ${code ?? String(error)}`, { cause: error });
  }
  if (!info.isDirectory()) throw new HadesError('HADES_ERR_SIGMA_NOT_FOUND', `${root} is not a folder; give a folder of Sigma rules`);
  const files: SigmaFile[] = [];
  const unreadable: SigmaReportEntry[] = [];
  const walk = async (dir: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      if (dir === root) throw new HadesError('HADES_ERR_SIGMA_READ', `cannot read ${root}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error });
      unreadable.push(unreadableEntry(path.relative(root, dir) || '.', error));
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const full = path.join(dir, e.name);
      if (e.isDirectory()) await walk(full);
      else if (/\.ya?ml$/i.test(e.name)) {
        const rel = path.relative(root, full).split(path.sep).join('/');
        try {
          const s = await stat(full);
          // A link to a folder is not followed (no loops); a pipe, socket or device named like a
          // rule is reported (reading a pipe could wait for ever).
          if (s.isDirectory()) continue;
          if (!s.isFile()) {
            unreadable.push(rejected(rel, 'HADES_ERR_SIGMA_READ', `cannot read ${rel}: not a regular file`));
            continue;
          }
          if (s.size > MAX_RULE_FILE_BYTES) unreadable.push(rejected(rel, 'HADES_ERR_SIGMA_TOO_LARGE', `the file is ${s.size} bytes; a Sigma file may be ${MAX_RULE_FILE_BYTES}`));
          else {
            const bytes = await readFile(full);
            const bad = notUtf8(bytes);
            if (bad === undefined) files.push({ path: rel, text: bytes.toString('utf8') });
            else unreadable.push(rejected(rel, 'HADES_ERR_SIGMA_READ', `cannot read ${rel}: line ${bad.line}, column ${bad.column}: ${bad.message}`));
          }
        } catch (error) {
          unreadable.push(unreadableEntry(rel, error));
        }
      }
    }
  };
  await walk(root);
  return { files, unreadable };
}

/** The licence of the rules, from a licence file in DIR or a folder above it. */
async function licenceOf(root: string): Promise<string | undefined> {
  let dir = path.resolve(root);
  for (let depth = 0; depth <= LICENCE_DEPTH; depth++) {
    let names: string[] = [];
    try {
      names = (await readdir(dir)).filter((n) => LICENCE_FILES.test(n)).sort();
    } catch {
      names = [];
    }
    for (const name of names) {
      try {
        const text = (await readFile(path.join(dir, name), 'utf8')).slice(0, 65_536);
        const drl = /Detection Rule License \(DRL\)\s*([\d.]+)/.exec(text);
        if (drl) return `Detection Rule License (DRL) ${drl[1]} (https://github.com/SigmaHQ/Detection-Rule-License)`;
        const first = text.split('\n').map((l) => l.replace(/^#+\s*/, '').trim()).find((l) => l !== '');
        return `${first ?? 'see'} (${path.join(dir, name)})`;
      } catch {
        // An unreadable licence file: look further up.
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return undefined;
}

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')).join('\n');
}

/**
 * Where a path that may not exist yet leads: its deepest existing folder resolved (links
 * followed), then the rest (`--out /tmp/link-to-sigma/new` is inside the Sigma folder).
 */
async function resolvedPath(p: string): Promise<string> {
  let existing = path.resolve(p);
  const rest: string[] = [];
  for (;;) {
    try {
      return path.join(await realpath(existing), ...rest);
    } catch {
      const parent = path.dirname(existing);
      if (parent === existing) return path.resolve(p);
      rest.unshift(path.basename(existing));
      existing = parent;
    }
  }
}

/** `hades rules import-sigma DIR [--out DIR] [--json]`. */
export async function importSigma(context: CliContext, args: readonly string[], options: Readonly<Record<string, unknown>>): Promise<number> {
  const dir = args[0] ?? '';
  const out = typeof options['out'] === 'string' ? options['out'] : undefined;
  const { files, unreadable } = await readSigmaFolder(dir);
  const licence = await licenceOf(dir);
  const conversion = convertSigma(files, licence ? { licence } : {});
  const report = [...conversion.report, ...unreadable].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.document - b.document));
  const summary = summarize(report);

  const written: string[] = [];
  if (out !== undefined) {
    // Hades rule files are named like their Sigma sources: written into the Sigma folder, they
    // would replace the sources themselves.
    const [realDir, realOut] = await Promise.all([resolvedPath(dir), resolvedPath(out)]);
    if (realOut === realDir || realOut.startsWith(`${realDir}${path.sep}`)) {
      throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', `--out ${out} is ${realOut === realDir ? 'the Sigma folder itself' : 'inside the Sigma folder'}: the converted files would replace or mix with the Sigma rules; give another folder`);
    }
    // a.yml and a.yaml would both become a.yaml: say so before writing anything.
    const targets = new Map<string, { readonly source: string; readonly text: string }>();
    for (const { source, file } of conversion.sources) {
      const target = path.join(out, source.replace(/\.ya?ml$/i, '') + '.yaml');
      const other = targets.get(target);
      if (other !== undefined) throw new HadesError('HADES_ERR_SIGMA_WRITE', `${other.source} and ${source} would both be written to ${target}; rename one of them`);
      targets.set(target, { source, text: file.text });
    }
    for (const [target, { text }] of targets) {
      try {
        await makeFoldersAsync(path.dirname(target), 0o755);
        await writeFile(target, text);
      } catch (error) {
        throw new HadesError('HADES_ERR_SIGMA_WRITE', `cannot write ${target}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error });
      }
      written.push(target);
    }
  }

  if (options['json']) {
    context.stdout.write(`${JSON.stringify({ folder: dir, ...(licence ? { licence } : {}), summary, rules: report, ...(out !== undefined ? { written } : {}) })}\n`);
    return exitStatus.ok;
  }
  const lines: string[] = [];
  for (const e of report) {
    if (e.status !== 'unsupported') continue;
    const where = e.document > 1 ? `${e.file} (document ${e.document})` : e.file;
    for (const r of e.reasons) lines.push(`${where}${r.line === undefined ? '' : `:${r.line}:${r.column ?? 1}`}: unsupported ${r.code}: ${r.message} [${e.title}]`);
  }
  if (lines.length > 0) lines.push('');
  const rows = [['category', 'loaded', 'unsupported'], ...Object.entries(summary.categories).map(([c, n]) => [c, String(n.loaded), String(n.unsupported)]), ['total', String(summary.loaded), String(summary.unsupported)]];
  lines.push(table(rows));
  const reasons = Object.entries(summary.reasons);
  if (reasons.length > 0) {
    lines.push('', 'unsupported, by reason:');
    for (const [key, n] of reasons) lines.push(`  ${String(n).padStart(4)}  ${key}`);
  }
  const notes = report.reduce((n, e) => n + (e.status === 'loaded' ? e.notes.length : 0), 0);
  if (notes > 0) lines.push('', `${notes} note(s) on loaded rules (adaptations, dropped tags): see --json`);
  lines.push('', out !== undefined ? `wrote ${written.length} Hades rule file(s) to ${out}` : `${summary.loaded} of ${summary.total} Sigma rule(s) convert; --out DIR writes them as Hades rule files`);
  context.stdout.write(`${lines.join('\n')}\n`);
  return exitStatus.ok;
}
