/**
 * jar_packages: Java archives (.jar, .war, .ear) in the usual places, what they are (Maven
 * coordinates or manifest), what they embed, and whether they are a log4j-core vulnerable to
 * Log4Shell and its follow-ups.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { CollectContext, Row, TableSpec } from '../table.js';
import { bufferSource, fileSource, readCentralDirectory, readEntry, ZipError, type ZipEntry, type ZipSource } from './packages-jar-zip.js';
import { glob, onDisk, reportFsError, walk, WalkBudget, wants, Warn } from './software-files.js';
import { openRegular } from '../../../runtime/regular-file.js';

/** Where Java applications are usually deployed, searched JAR_DEPTH levels deep. */
const JAR_ROOTS = ['/opt', '/srv', '/app', '/usr/share/java', '/usr/local', '/var/lib/tomcat*', '/var/lib/jetty*', '/var/lib/jenkins', '/usr/share/tomcat*', '/usr/share/jetty*', '/var/www'];
const JAR_DEPTH = 6;
const SEARCH_FOLDERS = 20_000;
const MAX_ARCHIVES = 10_000;
/** Archives on disk above this size are skipped (their hash alone would take seconds). */
export const MAX_ARCHIVE_BYTES = 512 * 1024 * 1024;
/** A jar inside a war inside an ear: two levels of nesting are read, no more. */
const MAX_NESTING = 2;
/** Manifests and pom.properties are small; anything bigger is not one. */
const MAX_METADATA_BYTES = 1024 * 1024;
const ARCHIVE = /\.(jar|war|ear)$/i;
const NOT_ENTERED = new Set(['node_modules', 'proc', 'sys', '__pycache__', 'site-packages', 'dist-packages']);
const POM_PROPERTIES = /^META-INF\/maven\/([^/]+)\/([^/]+)\/pom\.properties$/;
/** log4j-core's JNDI lookup class, also where shading relocated its package. */
const JNDI_LOOKUP = /(^|\/)JndiLookup\.class$/;

type Source = 'pom.properties' | 'manifest' | 'file name';

export interface JarArtifact {
  readonly name: string;
  readonly version: string | null;
  readonly group: string | null;
  readonly source: Source;
}

/** The main section of a MANIFEST.MF: "Key: value" lines, continued by lines starting with one space. */
export function parseManifest(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let last: string | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line === '') break;
    if (line.startsWith(' ') && last) {
      out.set(last, (out.get(last) ?? '') + line.slice(1));
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    last = line.slice(0, colon).trim();
    out.set(last, line.slice(colon + 1).trim());
  }
  return out;
}

/** Java properties, the simple form pom.properties uses: key=value, # comments. */
export function parseProperties(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith('!')) continue;
    const match = /^([^=:\s]+)\s*[=:\s]\s*(.*)$/.exec(line);
    if (match?.[1]) out.set(match[1], match[2] ?? '');
  }
  return out;
}

/** name-1.2.3.jar, name-2.0-beta9.jar, name-1.0-SNAPSHOT.jar; a name alone when no version follows. */
export function fromFileName(file: string): JarArtifact {
  const stem = file.replace(ARCHIVE, '');
  const match = /^(.+?)-(\d+(?:\.\d+)*(?:[-._][A-Za-z0-9]+)*)$/.exec(stem);
  return { name: match?.[1] ?? stem, version: match?.[2] ?? null, group: null, source: 'file name' };
}

/** Names compared loosely: geronimo-annotation_1.3_spec is in geronimo-annotation-1.3-spec-1.3.jar. */
const normalizeName = (name: string): string => name.toLowerCase().replace(/[-_.]+/g, '-');

interface Log4jVersion {
  readonly minor: number;
  readonly patch: number;
  /** alpha 0, beta 1, rc 2, release 3. */
  readonly stage: number;
  readonly stageNumber: number;
}

function parseLog4jVersion(version: string): Log4jVersion | undefined {
  const match = /^2\.(\d+)(?:\.(\d+))?(?:[-.]?(alpha|beta|rc)(\d*))?/i.exec(version.trim());
  if (!match) return undefined;
  const stage = match[3] ? ['alpha', 'beta', 'rc'].indexOf(match[3].toLowerCase()) : 3;
  return { minor: Number(match[1]), patch: Number(match[2] ?? 0), stage, stageNumber: Number(match[4] || 0) };
}

/**
 * Whether a log4j-core version is flagged, and why. The flagged range is 2.0-beta9 to 2.16.x
 * inclusive, except 2.12.2 and later 2.12.x and 2.3.1 and later 2.3.x (the Java 7 and Java 6
 * backports of the fix):
 * - up to 2.14.x (and 2.12.0-2.12.1, 2.3.0): CVE-2021-44228 and CVE-2021-45046;
 * - 2.15.x: CVE-2021-45046 (its fix for 44228 was incomplete);
 * - 2.16.x: CVE-2021-45105 (denial of service through recursive lookups, fixed in 2.17.0).
 * 1.x (log4j:log4j) is a different artifact and is not flagged here.
 */
export function log4jVerdict(version: string | null): string | undefined {
  if (version === null) return undefined;
  const v = parseLog4jVersion(version);
  if (!v) return undefined;
  if (v.minor === 0 && v.patch === 0 && (v.stage < 1 || (v.stage === 1 && v.stageNumber < 9))) return undefined;
  if ((v.minor === 3 && v.patch >= 1) || (v.minor === 12 && v.patch >= 2) || v.minor >= 17) return undefined;
  if (v.minor <= 14) return `log4j-core ${version}: CVE-2021-44228 (Log4Shell, remote code execution through JNDI lookups) and CVE-2021-45046`;
  if (v.minor === 15) return `log4j-core ${version}: CVE-2021-45046 (JNDI lookups through context lookups, fixed in 2.16.0)`;
  return `log4j-core ${version}: CVE-2021-45105 (denial of service through recursive lookups, fixed in 2.17.0)`;
}

const isLog4jCore = (a: JarArtifact): boolean =>
  (a.group === null || a.group === 'org.apache' || a.group === 'org.apache.logging.log4j') && ['log4j-core', 'org.apache.logging.log4j.core', 'Apache Log4j Core'].includes(a.name);

/** vulnerable and reason for an artifact; `hasJndiLookup` is whether its archive holds the class. */
function judge(artifact: JarArtifact, hasJndiLookup: boolean): { vulnerable: number; reason: string | null } {
  if (!isLog4jCore(artifact)) return { vulnerable: 0, reason: null };
  const verdict = log4jVerdict(artifact.version);
  if (!verdict) return { vulnerable: 0, reason: null };
  const v = parseLog4jVersion(artifact.version ?? '');
  // Deleting JndiLookup.class was the published mitigation for the JNDI issues (not for the 2.16 denial of service).
  if (!hasJndiLookup && v && v.minor < 16) return { vulnerable: 0, reason: `${verdict}; mitigated: JndiLookup.class was removed` };
  return { vulnerable: 1, reason: verdict };
}

interface ArchiveInput {
  readonly source: ZipSource;
  /** The path shown: a file, or outer.war!/WEB-INF/lib/inner.jar. */
  readonly path: string;
  /** The archive file on disk. */
  readonly file: string;
  readonly size: number;
  readonly sha256: string | null;
  readonly depth: number;
}

async function readSmallEntry(ctx: CollectContext, input: ArchiveInput, entry: ZipEntry): Promise<string | undefined> {
  const data = await readEntry(input.source, entry, MAX_METADATA_BYTES);
  if (data instanceof ZipError) {
    ctx.warn(Warn.malformed, `${input.path}: ${data.reason}; entry skipped`, input.file);
    return undefined;
  }
  return data.toString('utf8');
}

async function readArchive(ctx: CollectContext, input: ArchiveInput, rows: Row[]): Promise<void> {
  const entries = await readCentralDirectory(input.source, ctx.maxFileBytes);
  if (entries instanceof ZipError) {
    ctx.warn(Warn.malformed, `${input.path}: ${entries.reason}; skipped`, input.file);
    return;
  }
  const hasJndiLookup = entries.some((e) => JNDI_LOOKUP.test(e.name));
  const poms: { artifact: JarArtifact; entry: string }[] = [];
  let manifest: Map<string, string> | undefined;
  for (const entry of entries) {
    const pom = POM_PROPERTIES.exec(entry.name);
    if (pom) {
      const text = await readSmallEntry(ctx, input, entry);
      if (text === undefined) continue;
      const props = parseProperties(text);
      poms.push({
        artifact: { name: props.get('artifactId') ?? pom[2] ?? '', version: props.get('version') ?? null, group: props.get('groupId') ?? pom[1] ?? null, source: 'pom.properties' },
        entry: entry.name,
      });
    } else if (entry.name.toUpperCase() === 'META-INF/MANIFEST.MF' && !manifest) {
      const text = await readSmallEntry(ctx, input, entry);
      if (text !== undefined) manifest = parseManifest(text);
    }
  }

  // The archive's own identity: the pom.properties named like the file, else the only one (a
  // renamed jar), else the manifest, else the file name. Other pom.properties are artifacts
  // shaded into it.
  const base = path.posix.basename(input.path);
  const stem = base.replace(ARCHIVE, '');
  const fromManifest = (): JarArtifact | undefined => {
    const title = manifest?.get('Implementation-Title');
    if (title) return { name: title, version: manifest?.get('Implementation-Version') ?? null, group: manifest?.get('Implementation-Vendor-Id') ?? null, source: 'manifest' };
    const symbolic = manifest?.get('Bundle-SymbolicName')?.split(';')[0]?.trim();
    if (symbolic) return { name: symbolic, version: manifest?.get('Bundle-Version') ?? null, group: null, source: 'manifest' };
    return undefined;
  };
  const fileStem = normalizeName(stem);
  const named = poms
    .filter((p) => fileStem === normalizeName(p.artifact.name) || fileStem.startsWith(`${normalizeName(p.artifact.name)}-`))
    .sort((a, b) => b.artifact.name.length - a.artifact.name.length)[0];
  const own = named ?? (poms.length === 1 ? poms[0] : undefined);
  const artifact = own?.artifact ?? fromManifest() ?? fromFileName(base);
  rows.push(row(input, input.path, artifact, hasJndiLookup));
  for (const pom of poms) {
    if (pom === own) continue;
    rows.push(row(input, `${input.path}!/${pom.entry}`, pom.artifact, hasJndiLookup));
  }

  if (input.depth >= MAX_NESTING) return;
  for (const entry of entries) {
    if (!ARCHIVE.test(entry.name) || entry.name.endsWith('/')) continue;
    if (ctx.signal?.aborted) return;
    const nestedPath = `${input.path}!/${entry.name}`;
    if (entry.size > ctx.maxFileBytes) {
      ctx.warn(Warn.tooBig, `${nestedPath}: ${entry.size} bytes, over the limit of ${ctx.maxFileBytes}; not read`, input.file);
      continue;
    }
    const data = await readEntry(input.source, entry, ctx.maxFileBytes);
    if (data instanceof ZipError) {
      ctx.warn(Warn.malformed, `${input.path}: ${data.reason}; skipped`, input.file);
      continue;
    }
    const sha256 = wants(ctx, 'sha256') ? createHash('sha256').update(data).digest('hex') : null;
    await readArchive(ctx, { source: bufferSource(data), path: nestedPath, file: input.file, size: data.length, sha256, depth: input.depth + 1 }, rows);
  }
}

function row(input: ArchiveInput, shownPath: string, artifact: JarArtifact, hasJndiLookup: boolean): Row {
  return {
    name: artifact.name,
    version: artifact.version,
    group_id: artifact.group,
    path: shownPath,
    file: input.file,
    source: artifact.source,
    size: input.size,
    sha256: input.sha256,
    ...judge(artifact, hasJndiLookup),
  };
}

async function readArchiveFile(ctx: CollectContext, hostFile: string, size: number, rows: Row[]): Promise<void> {
  if (size > MAX_ARCHIVE_BYTES) {
    ctx.warn(Warn.tooBig, `${size} bytes, over the limit of ${MAX_ARCHIVE_BYTES} for an archive; skipped`, hostFile);
    return;
  }
  let handle;
  try {
    handle = await openRegular(onDisk(ctx, hostFile), true);
    const sha256 = wants(ctx, 'sha256') ? ((await ctx.sha256(onDisk(ctx, hostFile))) ?? null) : null;
    await readArchive(ctx, { source: fileSource(handle, size), path: hostFile, file: hostFile, size, sha256, depth: 0 }, rows);
  } catch (error) {
    reportFsError(ctx, error, hostFile, 'archive skipped');
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

export async function readJarPackages(ctx: CollectContext): Promise<Row[]> {
  const rows: Row[] = [];
  const budget = new WalkBudget(SEARCH_FOLDERS);
  const visited = new Set<string>();
  const seenFiles = new Set<string>();
  let archives = 0;
  let warned = false;
  const roots: string[] = [];
  for (const pattern of JAR_ROOTS) roots.push(...(await glob(ctx, pattern)));
  for (const root of roots) {
    await walk(
      ctx,
      root,
      {
        maxDepth: JAR_DEPTH,
        budget,
        what: 'Java archive search',
        enter: (name) => !NOT_ENTERED.has(name) && !name.startsWith('.'),
        files: (name) => ARCHIVE.test(name),
        onFile: async (file, stats) => {
          // Debian's /usr/share/java links unversioned names to the versioned files: read each file once.
          const id = `${stats.dev}:${stats.ino}`;
          if (seenFiles.has(id)) return;
          seenFiles.add(id);
          if (++archives > MAX_ARCHIVES) {
            if (!warned) ctx.warn(Warn.limit, `stopped after ${MAX_ARCHIVES} archives`, file);
            warned = true;
            return;
          }
          await readArchiveFile(ctx, file, stats.size, rows);
        },
      },
      visited,
    );
  }
  return rows;
}

export const jarPackages: TableSpec = {
  name: 'jar_packages',
  description:
    'Java archives (.jar, .war, .ear) under /opt, /srv, /app, /usr/share/java, /usr/local, /var/www and Tomcat, Jetty and Jenkins folders (6 levels deep), the archives nested in them (WEB-INF/lib, BOOT-INF/lib; two levels) and the artifacts shaded into them, with log4j-core versions vulnerable to Log4Shell (CVE-2021-44228, CVE-2021-45046) and CVE-2021-45105 flagged.',
  columns: [
    { name: 'name', type: 'TEXT', description: 'Artifact name: Maven artifactId, else the manifest\'s Implementation-Title or Bundle-SymbolicName, else from the file name.' },
    { name: 'version', type: 'TEXT', description: 'Version, from the same place as the name.', nullable: true },
    { name: 'group_id', type: 'TEXT', description: 'Maven groupId (or the manifest\'s Implementation-Vendor-Id).', nullable: true },
    { name: 'path', type: 'TEXT', description: 'The archive; a nested archive as outer.war!/WEB-INF/lib/inner.jar; a shaded artifact as its pom.properties inside the archive.' },
    { name: 'file', type: 'TEXT', description: 'The archive file on disk that holds it.' },
    { name: 'source', type: 'TEXT', description: 'Where name and version come from: pom.properties, manifest or file name.' },
    { name: 'size', type: 'INTEGER', description: 'Size of the archive in bytes (of the containing archive for a shaded artifact).' },
    { name: 'sha256', type: 'TEXT', description: 'SHA-256 of the archive (of the containing archive for a shaded artifact); NULL when it could not be read.', nullable: true },
    { name: 'vulnerable', type: 'INTEGER', description: '1 for log4j-core 2.0-beta9 to 2.16.x, except 2.12.2+ and 2.3.1+ (the backported fixes), whose JNDI lookup class is present (for 2.16.x: always).' },
    { name: 'reason', type: 'TEXT', description: 'For a flagged log4j-core: the CVEs; for one in range whose JndiLookup.class was removed: that it is mitigated.', nullable: true },
  ],
  examples: [
    { description: 'Vulnerable log4j-core, wherever it hides.', sql: 'SELECT path, version, reason FROM jar_packages WHERE vulnerable = 1' },
    { description: 'Every Maven artifact deployed, by group.', sql: "SELECT group_id, name, version, path FROM jar_packages WHERE source = 'pom.properties' ORDER BY 1, 2" },
  ],
  generate: (ctx) => readJarPackages(ctx),
};
