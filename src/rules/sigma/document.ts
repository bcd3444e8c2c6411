/**
 * Reading Sigma files: every YAML document of every file becomes a SigmaDocument (a rule, a
 * correlation, a filter) or a report entry saying why it is not one. Also the parts of a rule
 * that do not depend on its detection: its Hades id, severity, tags and description.
 */
import { yamlDepthProblem } from '../../common/yaml-depth.js';
import { isMap, isScalar, isSeq, LineCounter, parseAllDocuments, Scalar, visit, type Document } from 'yaml';
import { checkTag, MAX_RULE_FILE_BYTES } from '../loader.js';
import type { Severity } from '../schema.js';
import { firstAliasOffset } from '../yaml-file.js';
import type { SigmaReason, SigmaReportEntry } from './report.js';
import { yamlToPlain } from '../../common/yaml-plain.js';

export interface SigmaFile {
  /** How the report names the file: its path, usually relative to the folder imported. */
  readonly path: string;
  readonly text: string;
}

export interface SigmaDocument {
  readonly file: string;
  /** 1-based position in the file. */
  readonly document: number;
  readonly kind: 'rule' | 'correlation' | 'filter';
  readonly data: Readonly<Record<string, unknown>>;
  readonly title: string;
  readonly id: string | undefined;
  readonly name: string | undefined;
  readonly category: string;
  /** Where a key is written, by its path of mapping keys (`['correlation', 'timespan']`). */
  readonly keyAt?: (path: readonly string[]) => { line: number; column: number } | undefined;
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `record[key]` when the record has that key itself: rule text never reaches Object.prototype. */
export function own<T>(record: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() !== '' ? v : undefined);

/** The report's category of a document: the log source's category, else its service or product. */
function categoryOf(data: Readonly<Record<string, unknown>>, kind: SigmaDocument['kind']): string {
  if (kind === 'correlation') return 'correlation';
  const ls = isRecord(data['logsource']) ? data['logsource'] : {};
  const category = str(ls['category']);
  if (category) return category.toLowerCase();
  const service = str(ls['service']);
  if (service) return `service:${service.toLowerCase()}`;
  const product = str(ls['product']);
  return product ? `product:${product.toLowerCase()}` : '(none)';
}

function unsupported(file: string, document: number, title: string, reason: SigmaReason, extra: Partial<SigmaReportEntry> = {}): SigmaReportEntry {
  return { file, document, title, kind: 'invalid', category: '(none)', status: 'unsupported', reasons: [reason], notes: [], ...extra };
}

/**
 * Plain numbers and booleans of a detection as the rule writes them: YAML reads `1.10` as 1.1,
 * `0x10` as 16 and `0777` as 777, and a value compared with text (`CommandLine|endswith: 1.10`)
 * means the text written. The detection reads them as numbers where a field is a number
 * (detection.ts, numberOf) and as true or false where it takes those.
 */
function writtenDetectionScalars(doc: Document.Parsed, text: string): void {
  if (!isMap(doc.contents)) return;
  const detection = doc.contents.get('detection', true);
  if (detection === undefined || isScalar(detection)) return;
  visit(detection, {
    Scalar(key, node) {
      if (key === 'key' || node.type !== Scalar.PLAIN || node.range === undefined || node.range === null) return;
      if (typeof node.value === 'number' || typeof node.value === 'boolean') node.value = text.slice(node.range[0], node.range[1]);
    },
  });
}

/** Reads the files: the documents that are Sigma rules, and entries for what is not. */
export function readSigmaFiles(files: readonly SigmaFile[]): { documents: SigmaDocument[]; rejected: SigmaReportEntry[] } {
  const documents: SigmaDocument[] = [];
  const rejected: SigmaReportEntry[] = [];
  for (const f of files) {
    const fallbackTitle = f.path.split('/').pop() ?? f.path;
    if (f.text.length > MAX_RULE_FILE_BYTES) {
      rejected.push(unsupported(f.path, 1, fallbackTitle, { code: 'HADES_ERR_SIGMA_TOO_LARGE', detail: 'file', message: `the file is ${f.text.length} bytes; a Sigma file may be ${MAX_RULE_FILE_BYTES}` }));
      continue;
    }
    const deep = yamlDepthProblem(f.text);
    if (deep) {
      rejected.push(unsupported(f.path, 1, fallbackTitle, { code: 'HADES_ERR_SIGMA_YAML', detail: 'yaml', message: deep.message }));
      continue;
    }
    let parsed;
    const lines = new LineCounter();
    try {
      parsed = parseAllDocuments(f.text, { prettyErrors: false, lineCounter: lines, logLevel: 'error' });
    } catch (error) {
      rejected.push(unsupported(f.path, 1, fallbackTitle, { code: 'HADES_ERR_SIGMA_YAML', detail: 'yaml', message: error instanceof Error ? error.message : String(error) }));
      continue;
    }
    let n = 0;
    for (const doc of parsed) {
      n++;
      if (doc.errors.length > 0) {
        const e = doc.errors[0]!;
        const at = lines.linePos(e.pos[0]);
        const where = at.line > 0 ? ` at line ${at.line}, column ${at.col}` : '';
        rejected.push(unsupported(f.path, n, fallbackTitle, { code: 'HADES_ERR_SIGMA_YAML', detail: 'yaml', message: `not valid YAML${where}: ${e.message.split('\n')[0] ?? e.message}` }));
        continue;
      }
      let data: unknown;
      try {
        writtenDetectionScalars(doc, f.text);
        data = yamlToPlain(doc, 'HADES_ERR_SIGMA_YAML');
      } catch (error) {
        // An alias without its anchor, or too many aliases: the parser says which, not where.
        const alias = firstAliasOffset(doc);
        const at = alias === undefined ? undefined : lines.linePos(alias);
        const where = at === undefined ? '' : ` (the first alias is at line ${at.line}, column ${at.col})`;
        rejected.push(unsupported(f.path, n, fallbackTitle, { code: 'HADES_ERR_SIGMA_YAML', detail: 'yaml', message: `${error instanceof Error ? error.message : String(error)}${where}` }));
        continue;
      }
      if (data === null || data === undefined) continue;
      if (!isRecord(data)) {
        rejected.push(unsupported(f.path, n, fallbackTitle, { code: 'HADES_ERR_SIGMA_NOT_SIGMA', detail: 'not a mapping', message: 'the document is not a mapping, so not a Sigma rule' }));
        continue;
      }
      const title = str(data['title']);
      const id = str(data['id']);
      const name = str(data['name']);
      const kind = 'correlation' in data ? 'correlation' : 'filter' in data ? 'filter' : 'detection' in data ? 'rule' : undefined;
      if (!kind) {
        const legacy = 'action' in data ? "; 'action:' collections of Sigma 1 are not supported" : '';
        rejected.push(
          unsupported(f.path, n, title ?? fallbackTitle, { code: 'HADES_ERR_SIGMA_NOT_SIGMA', detail: 'no detection', message: `the document has neither 'detection' nor 'correlation', so it is not a Sigma rule${legacy}` }, id ? { id } : {}),
        );
        continue;
      }
      if (!title) {
        rejected.push(unsupported(f.path, n, fallbackTitle, { code: 'HADES_ERR_SIGMA_INVALID', detail: 'title', message: "a Sigma rule needs a 'title'" }, { kind, ...(id ? { id } : {}) }));
        continue;
      }
      documents.push({ file: f.path, document: n, kind, data, title, id, name, category: categoryOf(data, kind), keyAt: keyLocator(doc, lines) });
    }
  }
  return { documents, rejected };
}

/**
 * Where a key is written, by its path of mapping keys (`['correlation', 'timespan']`,
 * `['detection', 'selection', 'Image|endswith']`): the last key's first character, as the YAML
 * parser saw it. Through a list of mappings, the first mapping that has the key.
 */
function keyLocator(doc: Document, lines: LineCounter): (path: readonly string[]) => { line: number; column: number } | undefined {
  const pairIn = (map: unknown, key: string) => (isMap(map) ? map.items.find((p) => isScalar(p.key) && String(p.key.value) === key) : undefined);
  return (path) => {
    let node: unknown = doc.contents;
    let offset: number | undefined;
    for (const key of path) {
      const pair = isSeq(node) ? node.items.map((m) => pairIn(m, key)).find((p) => p !== undefined) : pairIn(node, key);
      if (!pair || !isScalar(pair.key)) return undefined;
      offset = pair.key.range?.[0];
      node = pair.value;
    }
    if (offset === undefined) return undefined;
    const at = lines.linePos(offset);
    return at.line > 0 ? { line: at.line, column: at.col } : undefined;
  };
}

const ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]*$/;

/** A Hades rule id for a document: its Sigma id, else its name, else one made of the file name. */
export function hadesIdOf(doc: SigmaDocument, taken: ReadonlySet<string>): string {
  for (const candidate of [doc.id, doc.name]) if (candidate && candidate.length <= 128 && ID.test(candidate)) return candidate;
  const stem = (doc.file.split('/').pop() ?? 'rule').replace(/\.ya?ml$/i, '');
  const base = `sigma-${stem.replace(/[^A-Za-z0-9_.:-]+/g, '_')}`.slice(0, 100) + (doc.document > 1 ? `-${doc.document}` : '');
  let id = base;
  for (let i = 2; taken.has(id); i++) id = `${base}-${i}`;
  return id;
}

const LEVELS: Readonly<Record<string, Severity>> = { informational: 'info', low: 'low', medium: 'medium', high: 'high', critical: 'critical' };

export function severityOf(doc: SigmaDocument, notes: SigmaReason[]): Severity {
  const level = str(doc.data['level'])?.toLowerCase();
  const severity = level === undefined ? undefined : own(LEVELS, level);
  if (severity) return severity;
  notes.push({ code: 'HADES_ERR_SIGMA_ADAPTED', detail: 'level', message: level === undefined ? 'the rule has no level: severity medium' : `the level '${level}' is not one of Sigma's: severity medium` });
  return 'medium';
}

/** Sigma tags that Hades accepts; the others are dropped with a note each. */
export function tagsOf(doc: SigmaDocument, notes: SigmaReason[]): string[] {
  const raw = doc.data['tags'];
  const tags = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
  const out: string[] = [];
  for (const t of tags) {
    const tag = typeof t === 'string' ? t.trim().toLowerCase() : undefined;
    const problem = tag === undefined ? { message: `the tag ${JSON.stringify(t)} is not text` } : checkTag(tag);
    if (problem || tag === undefined) notes.push({ code: 'HADES_ERR_SIGMA_TAG', detail: String(t), message: `tag dropped: ${problem?.message ?? ''}` });
    else if (!out.includes(tag) && out.length < 64) out.push(tag);
  }
  return out;
}

function list(v: unknown): string[] {
  const items = Array.isArray(v) ? v : v === undefined || v === null ? [] : [v];
  return items.filter((x): x is string | number => typeof x === 'string' || typeof x === 'number').map(String);
}

/** Description, false positives, and where the rule comes from, as one text. */
export function descriptionOf(doc: SigmaDocument, licence: string | undefined): string {
  const d = doc.data;
  const parts: string[] = [];
  const description = str(d['description'])?.trim();
  if (description) parts.push(description);
  const fps = list(d['falsepositives']);
  if (fps.length > 0) parts.push(`False positives: ${fps.map((f) => f.trim().replace(/\.+$/, '')).join('; ')}.`);
  const origin = [`Sigma ${doc.kind === 'correlation' ? 'correlation' : 'rule'} ${doc.id ?? doc.name ?? doc.title}`];
  const status = str(d['status']);
  if (status) origin.push(`status ${status}`);
  const author = str(d['author']);
  if (author) origin.push(`by ${author}`);
  const ruleLicence = str(d['license']) ?? licence;
  if (ruleLicence) origin.push(`licence ${ruleLicence}`);
  parts.push(`${origin.join(', ')} (${doc.file}).`);
  const refs = list(d['references']);
  if (refs.length > 0) parts.push(`References: ${refs.join(' ')}`);
  return parts.join('\n\n').slice(0, 65_536);
}

/** An output template's literal text: braces doubled. */
export function templateText(s: string): string {
  return s.replace(/[{}]/g, (c) => c + c);
}
