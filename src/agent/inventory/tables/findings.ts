/**
 * package_findings: installed Python packages that look malicious, either because their name is
 * a near miss of a popular one (a typosquat: "reqeusts") or because it is on a list of packages
 * reported as malicious. The lists are data files shipped with Hades (data/python-*.txt).
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { distance } from 'fastest-levenshtein';
import type { CollectContext, Row, TableSpec } from '../table.js';
import { pythonPackagesOnce, type PythonPackage } from './packages-python.js';
import { Warn } from './software-files.js';

/** The project root, from dist/src/agent/inventory/tables or src/agent/inventory/tables alike. */
const projectRoot = new URL(import.meta.url.includes('/dist/') ? '../../../../../' : '../../../../', import.meta.url);
export const POPULAR_FILE = fileURLToPath(new URL('data/python-popular.txt', projectRoot));
export const KNOWN_BAD_FILE = fileURLToPath(new URL('data/python-known-bad.txt', projectRoot));

/**
 * Real, maintained packages whose names are within the allowed distance of a popular one (the
 * popular name they are near in the comment). They are not on the popular list, whose near
 * misses they would then make suspect, but they are not typosquats either.
 */
export const LEGITIMATE_NEAR_NAMES: ReadonlySet<string> = new Set([
  'attr', // attrs
  'futures', // future
  'jinja', // jinja2
  'jsonpath', // jsonpatch
  'markdown2', // markdown
  'motor', // moto
  'pyaml', // pyyaml
  'scapy', // scipy, scrapy
  'unicorn', // uvicorn, gunicorn
  'uri-template', // uritemplate
]);

/** PEP 503: lower case, runs of -, _ and . as one -. */
export function normalizePackageName(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, '-');
}

/** The names of a data file: one per line, # comments, normalised. */
export function parseNameList(text: string): string[] {
  return text
    .split('\n')
    .map((line) => normalizePackageName(line.replace(/#.*$/, '').trim()))
    .filter((name) => name !== '');
}

export interface NameLists {
  /** Popular names, most popular first (a tie in distance goes to the more popular). */
  readonly popular: readonly string[];
  readonly knownBad: ReadonlySet<string>;
}

let cached: Promise<NameLists> | undefined;

/** The shipped lists, read once per process. */
export function loadNameLists(): Promise<NameLists> {
  cached ??= Promise.all([readFile(POPULAR_FILE, 'utf8'), readFile(KNOWN_BAD_FILE, 'utf8')]).then(([popular, bad]) => ({
    popular: [...new Set(parseNameList(popular))],
    knownBad: new Set(parseNameList(bad)),
  }));
  // A failed read is not cached: the next collection tries again.
  cached.catch(() => {
    cached = undefined;
  });
  return cached;
}

/**
 * How far a name may be from a popular one to count as a typosquat of it, by the shorter name's
 * length: under 4 characters names are too short to tell (every short name is near another);
 * up to 7, one edit (two would make gradio a typosquat of grpcio); from 8, two (a swap of two
 * letters, "reqeusts", is two edits).
 */
export function allowedDistance(length: number): number {
  if (length < 4) return 0;
  return length < 8 ? 1 : 2;
}

export type FindingKind = 'typosquat' | 'known_bad';

export interface PackageFinding {
  readonly finding: FindingKind;
  readonly similarTo: string | null;
  readonly distance: number | null;
}

/**
 * The length that decides the allowed distance: that of the shorter name, after the leading
 * words both share ("pytest-env" and "pytest-cov" differ in three letters, not ten).
 */
function comparedLength(a: string, b: string): number {
  const wordsA = a.split('-');
  const wordsB = b.split('-');
  let shared = 0;
  while (shared < wordsA.length - 1 && shared < wordsB.length - 1 && wordsA[shared] === wordsB[shared]) shared++;
  return Math.min(wordsA.slice(shared).join('-').length, wordsB.slice(shared).join('-').length);
}

/** The popular name nearest to `name` within the allowed distance (excluding an exact match). */
function nearestPopular(name: string, popular: readonly string[]): { name: string; distance: number } | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const candidate of popular) {
    if (Math.abs(candidate.length - name.length) > 2) continue;
    const allowed = allowedDistance(comparedLength(name, candidate));
    if (allowed === 0 || Math.abs(candidate.length - name.length) > allowed) continue;
    const d = distance(name, candidate);
    if (d === 0 || d > allowed) continue;
    if (!best || d < best.distance) best = { name: candidate, distance: d };
    if (d === 1) break;
  }
  return best;
}

/** The finding for one installed name, or undefined when it looks fine. */
export function judgePackageName(rawName: string, lists: NameLists): PackageFinding | undefined {
  const name = normalizePackageName(rawName);
  if (lists.knownBad.has(name)) {
    const near = nearestPopular(name, lists.popular);
    return { finding: 'known_bad', similarTo: near?.name ?? null, distance: near?.distance ?? null };
  }
  if (lists.popular.includes(name) || LEGITIMATE_NEAR_NAMES.has(name)) return undefined;
  const near = nearestPopular(name, lists.popular);
  return near ? { finding: 'typosquat', similarTo: near.name, distance: near.distance } : undefined;
}

export async function findPackageFindings(ctx: CollectContext, packages?: readonly PythonPackage[]): Promise<Row[]> {
  let lists: NameLists;
  try {
    lists = await loadNameLists();
  } catch (error) {
    ctx.warn(Warn.unreadable, `the package name lists of this Hades installation could not be read (${error instanceof Error ? error.message : String(error)}); no findings`, POPULAR_FILE);
    return [];
  }
  const rows: Row[] = [];
  for (const pkg of packages ?? (await pythonPackagesOnce(ctx))) {
    const finding = judgePackageName(pkg.name, lists);
    if (!finding) continue;
    rows.push({
      name: pkg.name,
      version: pkg.version,
      ecosystem: 'python',
      path: pkg.path,
      finding: finding.finding,
      similar_to: finding.similarTo,
      distance: finding.distance,
    });
  }
  return rows;
}

export const packageFindings: TableSpec = {
  name: 'package_findings',
  description:
    'Installed Python packages (those of python_packages) that look malicious: a name within edit distance 1 (names of 4 to 7 characters, not counting leading words both share) or 2 (longer) of a popular PyPI package without being it (typosquat), or a name on the list of packages reported as malicious (known_bad). Names are compared as PEP 503 normalises them; the lists are data/python-popular.txt and data/python-known-bad.txt. The collector sends each row as a package_finding event.',
  columns: [
    { name: 'name', type: 'TEXT', description: 'Package name as installed.' },
    { name: 'version', type: 'TEXT', description: 'Version.', nullable: true },
    { name: 'ecosystem', type: 'TEXT', description: 'Package ecosystem: python.' },
    { name: 'path', type: 'TEXT', description: 'Its .dist-info or .egg-info.' },
    { name: 'finding', type: 'TEXT', description: 'typosquat or known_bad.' },
    { name: 'similar_to', type: 'TEXT', description: 'The popular package whose name it imitates (for known_bad, when one is near).', nullable: true },
    { name: 'distance', type: 'INTEGER', description: 'Edit distance (Levenshtein) between the normalised names.', nullable: true },
  ],
  examples: [
    { description: 'Everything found.', sql: 'SELECT name, version, finding, similar_to, path FROM package_findings' },
    { description: 'Findings with where the package lives.', sql: 'SELECT f.name, f.finding, p.kind, p.location FROM package_findings f JOIN python_packages p ON p.path = f.path' },
  ],
  generate: (ctx) => findPackageFindings(ctx),
};
