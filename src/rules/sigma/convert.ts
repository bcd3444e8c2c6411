/**
 * Sigma rules in, Hades rule files and a report out. In stages, like the rule loader:
 *
 *   1. read      every YAML document of every file (readSigmaFiles)
 *   2. index     ids and names, duplicates refused
 *   3. convert   detection rules against their log source's mapping (mapping.ts, detection.ts)
 *   4. correlate correlation rules onto the rules they name (correlation.ts)
 *   5. check     the Hades files through loadRules: a rule the compiler refuses is reported
 *                unsupported with the compiler's problem and dropped, and so is a correlation
 *                that used it, until the files load without an error
 *
 * Pure: the caller reads the files. The files returned load with `loadRules` alongside other
 * rule files (Sigma ids are UUIDs; list names are prefixed by the rule's id).
 */
import { stringify } from 'yaml';
import type { ErrorCode } from '../../common/errors.js';
import { loadRules, type RuleFile } from '../loader.js';
import { cutMessage } from '../problems.js';
import { convertCorrelation, type CorrelatedRule } from './correlation.js';
import { DetectionContext, detectionExpr, detectionFields, type SigmaIssue } from './detection.js';
import { descriptionOf, hadesIdOf, isRecord, own, readSigmaFiles, severityOf, tagsOf, templateText, type SigmaDocument, type SigmaFile } from './document.js';
import { and, cmp, renderCondition, requiresField, text, type HExpr } from './expr.js';
import { onlyExecveRecords } from './auditd.js';
import { AUDITD_EXECVE, categorySpec, HOSTNAME_AS_DNS, HOSTNAME_FIELD, mapField, UNSUPPORTED_CATEGORIES, type CategorySpec } from './mapping.js';
import { summarize, type SigmaReason, type SigmaReportEntry, type SigmaSummary } from './report.js';

export interface ConvertOptions {
  /** The licence of the Sigma rules, named in each file's header and description (a rule's own `license` wins). */
  readonly licence?: string;
  /** Check the result with loadRules and drop what it refuses (default true). */
  readonly check?: boolean;
}

export interface SigmaConversion {
  /** Hades rule files, one per Sigma file with at least one rule loaded, named `sigma:PATH`. */
  readonly files: RuleFile[];
  /** The same files by the Sigma file they come from (for writing them next to each other). */
  readonly sources: readonly { readonly source: string; readonly file: RuleFile }[];
  readonly report: SigmaReportEntry[];
  readonly summary: SigmaSummary;
}

/** One Sigma document on its way through the stages. */
interface Work {
  readonly doc: SigmaDocument;
  hadesId: string | undefined;
  readonly reasons: SigmaReason[];
  readonly notes: SigmaReason[];
  spec?: CategorySpec;
  /** The Hades rule, without `alert` (decided from the correlations that load). */
  rule?: Record<string, unknown>;
  lists: ReadonlyMap<string, (string | number)[]>;
  /** Hades ids of the rules a correlation uses. */
  references: readonly string[];
  generate: boolean;
  live: boolean;
  /** For a correlation, the documents its `rules` name, whether or not it converts. */
  named: readonly Work[];
  /** For a correlation, whether it says `generate: true`, whether or not it converts. */
  generateAsked: boolean;
}

const ACTION_FIELD = 'event.action';
/** How deep chains of correlations are followed to map a group-by field (deeper: a loop). */
const MAX_CHAIN = 16;

function actionTest(spec: CategorySpec) {
  const action = spec.actions.length === 1 ? cmp(ACTION_FIELD, '=', [text(spec.actions[0]!)]) : cmp(ACTION_FIELD, 'in', spec.actions.map(text));
  if (!spec.only) return action;
  const { field, values } = spec.only;
  return and([action, values.length === 1 ? cmp(field, '=', [text(values[0]!)]) : cmp(field, 'in', values.map(text))]);
}

/** The key of a correlation that a reason is about, by the reason's detail (correlation.ts). */
const CORRELATION_KEYS: Readonly<Record<string, string>> = {
  aliases: 'aliases',
  condition: 'condition',
  count: 'condition',
  field: 'condition',
  'temporal condition': 'condition',
  generate: 'generate',
  'group-by': 'group-by',
  timespan: 'timespan',
  type: 'type',
  rules: 'rules',
  'one rule': 'rules',
  steps: 'rules',
  'unknown rule': 'rules',
  loop: 'rules',
  'unsupported rule': 'rules',
};

const correlationKeyOf = (detail: string): string[] => {
  const key = Object.hasOwn(CORRELATION_KEYS, detail) ? CORRELATION_KEYS[detail] : undefined;
  return key === undefined ? ['correlation'] : ['correlation', key];
};

function fail(w: Work, code: ErrorCode, detail: string, message: string, where?: { line: number; column: number }): void {
  // A message may quote the rule (a whole condition): cut, saying how long it was.
  message = cutMessage(message);
  if (!w.reasons.some((r) => r.code === code && r.detail === detail && r.message === message)) w.reasons.push({ code, detail, message, ...where });
}

function logsourceSpec(w: Work): CategorySpec | undefined {
  const ls = w.doc.data['logsource'];
  if (!isRecord(ls)) {
    fail(w, 'HADES_ERR_SIGMA_INVALID', 'logsource', "a Sigma rule needs a 'logsource' mapping");
    return undefined;
  }
  const lower = (k: string) => (typeof ls[k] === 'string' ? (ls[k]).toLowerCase() : undefined);
  const product = lower('product');
  const service = lower('service');
  const category = lower('category');
  if (product !== undefined && product !== 'linux') {
    fail(w, 'HADES_ERR_SIGMA_LOGSOURCE', `product: ${product}`, `the log source is product '${product}'; Hades watches Linux hosts`);
    return undefined;
  }
  if (service === 'auditd' && category === undefined) {
    if (onlyExecveRecords(w.doc.data['detection'])) return AUDITD_EXECVE;
    fail(
      w,
      'HADES_ERR_SIGMA_LOGSOURCE',
      `service: ${service}`,
      "the log source is the service 'auditd', and the rule can match its records other than EXECVE (every search the rule needs must say 'type: EXECVE'); Hades matches EXECVE records as exec events, and has no events shaped like auditd's other records",
    );
    return undefined;
  }
  if (service !== undefined) {
    fail(w, 'HADES_ERR_SIGMA_LOGSOURCE', `service: ${service}`, `the log source is the service '${service}' (its log lines); Hades matches its own events, listed by category in docs/sigma.md`);
    return undefined;
  }
  if (category === undefined) {
    const message = product === 'linux' ? "the log source is Linux's log lines (product linux, no category or service)" : 'the log source has no category';
    fail(w, 'HADES_ERR_SIGMA_LOGSOURCE', 'no category', `${message}; Hades matches its own events, by the categories listed in docs/sigma.md`);
    return undefined;
  }
  const spec = categorySpec(category);
  if (!spec) {
    const why = own(UNSUPPORTED_CATEGORIES, category);
    fail(w, 'HADES_ERR_SIGMA_LOGSOURCE', `category: ${category}`, `the log source category '${category}' has no Hades events${why ? `: ${why}` : ''}`);
  }
  return spec;
}

/**
 * A network_connection rule on DestinationHostname: matched on the DNS question when every
 * other field it tests is one a DNS question has too (the process, Initiated: true).
 */
function hostnameSpec(w: Work, spec: CategorySpec): CategorySpec {
  if (spec.category !== 'network_connection') return spec;
  const fields = detectionFields(w.doc.data['detection']);
  if (!fields.includes(HOSTNAME_FIELD)) return spec;
  const others = fields.filter((f) => !mapField(HOSTNAME_AS_DNS, f));
  if (others.length > 0) {
    fail(
      w,
      'HADES_ERR_SIGMA_FIELD',
      HOSTNAME_FIELD,
      `connect and accept events carry addresses, not host names, and the rule also tests ${others.join(', ')}, so it cannot be matched on the DNS question for the name instead`,
    );
    return spec;
  }
  return HOSTNAME_AS_DNS;
}

/**
 * Whether a rule matched on DNS questions means what it says: only when every connection it
 * matches has a host name it tests. Under `not` (or `null`), it would match connections to an
 * address, which send no DNS question, so the rule would miss them.
 */
function hostnameHolds(w: Work, expr: HExpr): boolean {
  const name = HOSTNAME_AS_DNS.fields[HOSTNAME_FIELD]!;
  if (name.kind === 'field' && requiresField(expr, name.target)) {
    w.notes.push({ code: 'HADES_ERR_SIGMA_ADAPTED', detail: 'host name as DNS question', message: `${HOSTNAME_FIELD} is matched on the DNS question for the name (dns_query events): connect events carry addresses, not host names` });
    return true;
  }
  fail(
    w,
    'HADES_ERR_SIGMA_FIELD',
    HOSTNAME_FIELD,
    `the rule also matches connections whose ${HOSTNAME_FIELD} it does not test positively (under 'not', or null), such as connections to an address, which send no DNS question; connect and accept events carry addresses, not host names`,
  );
  return false;
}

function listPrefix(hadesId: string): string {
  return `sigma_${hadesId.replace(/[^A-Za-z0-9_]/g, '_')}`;
}

/** The rule's status, lower-cased; `unsupported` fails the rule (detection rules and correlations alike). */
function statusOf(w: Work): string | undefined {
  const status = typeof w.doc.data['status'] === 'string' ? w.doc.data['status'].toLowerCase() : undefined;
  if (status === 'unsupported') fail(w, 'HADES_ERR_SIGMA_STATUS', 'status: unsupported', "the rule's status is 'unsupported': its authors say it cannot be used as it is");
  return status;
}

/** A deprecated rule loads disabled: still evaluated for the correlations that use it, never alerting itself. */
function disableDeprecated(w: Work, status: string | undefined, rule: Record<string, unknown>): void {
  if (status !== 'deprecated') return;
  rule['enabled'] = false;
  w.notes.push({ code: 'HADES_ERR_SIGMA_ADAPTED', detail: 'deprecated', message: "the rule's status is 'deprecated': it loads disabled (enabled: false)" });
}

function convertDetection(w: Work, licence: string | undefined, takenLists: Set<string>): void {
  const status = statusOf(w);
  const base = logsourceSpec(w);
  if (!base || w.reasons.length > 0) return;
  const spec = hostnameSpec(w, base);
  if (w.reasons.length > 0) return;
  w.spec = spec;
  const ctx = new DetectionContext(spec, listPrefix(w.hadesId!), takenLists, (identifier, key) => w.doc.keyAt?.(['detection', identifier, ...(key === undefined ? [] : [key])]));
  const expr = detectionExpr(ctx, w.doc.data['detection']);
  for (const i of ctx.issues) fail(w, i.code, i.detail, i.message, i.line === undefined ? undefined : { line: i.line, column: i.column ?? 1 });
  if (w.reasons.length > 0) return;
  if (expr.kind === 'const' && !expr.value) {
    fail(w, 'HADES_ERR_SIGMA_INVALID', 'never true', 'the condition can never be true');
    return;
  }
  if (spec === HOSTNAME_AS_DNS && !hostnameHolds(w, expr)) return;
  w.lists = ctx.lists;
  const title = w.doc.title.slice(0, 256);
  const severity = severityOf(w.doc, w.notes);
  const tags = tagsOf(w.doc, w.notes);
  const rule: Record<string, unknown> = {
    id: w.hadesId,
    title,
    description: descriptionOf(w.doc, licence),
    severity,
    ...(tags.length > 0 ? { tags } : {}),
    condition: renderCondition(and([actionTest(spec), expr])),
    output: `${templateText(title)}: ${spec.output}`.slice(0, 4096),
  };
  disableDeprecated(w, status, rule);
  w.rule = rule;
}

/** Converts Sigma rule files into Hades rule files, with a report entry for every Sigma document. */
export function convertSigma(files: readonly SigmaFile[], options: ConvertOptions = {}): SigmaConversion {
  const { documents, rejected } = readSigmaFiles(files);
  const works: Work[] = documents.map((doc) => ({ doc, hadesId: undefined, reasons: [], notes: [], lists: new Map(), references: [], generate: false, live: false, named: [], generateAsked: false }));

  // Stage 2: ids and names.
  const byRef = new Map<string, Work>();
  const taken = new Set<string>();
  for (const w of works) {
    for (const [what, ref] of [
      ['id', w.doc.id],
      ['name', w.doc.name],
    ] as const) {
      if (ref === undefined) continue;
      const first = byRef.get(ref);
      if (first && first !== w) fail(w, 'HADES_ERR_SIGMA_DUPLICATE', what, `the ${what} '${ref}' is already used by ${first.doc.file} (document ${first.doc.document})`);
      else byRef.set(ref, w);
    }
    if (w.reasons.length > 0) continue;
    const id = hadesIdOf(w.doc, taken);
    if (taken.has(id)) {
      fail(w, 'HADES_ERR_SIGMA_DUPLICATE', 'id', `the Hades id '${id}' is already used by another Sigma rule`);
      continue;
    }
    taken.add(id);
    w.hadesId = id;
    if (w.doc.id !== undefined && w.doc.id !== id) w.notes.push({ code: 'HADES_ERR_SIGMA_ADAPTED', detail: 'id', message: `the Sigma id '${w.doc.id}' is not a Hades id; the rule is '${id}'` });
  }

  // What each correlation names, for its rules' fate when it does not convert (dropDead).
  for (const w of works) {
    const c = w.doc.data['correlation'];
    if (w.doc.kind !== 'correlation' || !isRecord(c)) continue;
    const refs = typeof c['rules'] === 'string' ? [c['rules']] : Array.isArray(c['rules']) ? c['rules'].filter((r): r is string => typeof r === 'string') : [];
    w.named = refs.map((ref) => byRef.get(ref)).filter((x): x is Work => x !== undefined);
    w.generateAsked = (c['generate'] ?? w.doc.data['generate']) === true;
  }

  // Stage 3: detection rules.
  const takenLists = new Set<string>();
  for (const w of works) {
    if (w.reasons.length > 0) continue;
    if (w.doc.kind === 'rule') convertDetection(w, options.licence, takenLists);
    else if (w.doc.kind === 'filter') fail(w, 'HADES_ERR_SIGMA_FILTER', 'filter', 'Sigma filters are not applied on import; add the exclusion to the Hades rules it names with an override (docs/rules.md, Overrides)');
  }

  // Stage 4: correlations, in dependency order (a correlation may name another).
  const visiting = new Set<Work>();
  const correlate = (w: Work): void => {
    if (w.rule || w.reasons.length > 0 || visiting.has(w)) return;
    const status = statusOf(w);
    if (w.reasons.length > 0) return;
    visiting.add(w);
    const result = convertCorrelation(w.doc, {
      resolve: (ref) => {
        const target = byRef.get(ref);
        if (!target) return { code: 'HADES_ERR_SIGMA_REFERENCE', detail: 'unknown rule', message: `the correlation names '${ref}', which no Sigma rule imported has as id or name` };
        if (target.doc.kind === 'correlation') {
          if (visiting.has(target)) return { code: 'HADES_ERR_SIGMA_REFERENCE', detail: 'loop', message: `correlations name each other in a loop through '${ref}'` };
          correlate(target);
        }
        if (target.reasons.length > 0 || !target.rule) {
          const why = target.reasons[0];
          return { code: 'HADES_ERR_SIGMA_REFERENCE', detail: 'unsupported rule', message: `the correlation names '${ref}', which is unsupported${why ? `: ${why.code}: ${why.message}` : ''}` };
        }
        return correlated(target);
      },
    });
    visiting.delete(w);
    if (Array.isArray(result)) {
      for (const i of result) fail(w, i.code, i.detail, i.message, w.doc.keyAt?.(correlationKeyOf(i.detail)));
      return;
    }
    w.notes.push(...result.notes);
    w.references = result.references;
    w.generate = result.generate;
    const title = w.doc.title.slice(0, 256);
    const tags = tagsOf(w.doc, w.notes);
    const by = result.rule['by'];
    w.rule = {
      id: w.hadesId,
      title,
      description: descriptionOf(w.doc, options.licence),
      severity: severityOf(w.doc, w.notes),
      ...(tags.length > 0 ? { tags } : {}),
      ...result.rule,
      output: `${templateText(title)}${by === undefined ? '' : ' ({correlation.key})'}`.slice(0, 4096),
    };
    disableDeprecated(w, status, w.rule);
  };
  const correlated = (target: Work): CorrelatedRule => ({
    doc: target.doc,
    hadesId: target.hadesId!,
    groupField: (sigmaField) => groupField(target, sigmaField, 0),
  });
  const groupField = (target: Work, sigmaField: string, depth: number): string | SigmaIssue => {
    if (target.spec) {
      const m = mapField(target.spec, sigmaField);
      if (m?.kind === 'field') return m.target;
      return { code: 'HADES_ERR_SIGMA_FIELD', detail: sigmaField, message: `the correlation groups by '${sigmaField}', which has no equivalent in the events of '${target.doc.title}' (${target.spec.category})` };
    }
    // A correlation: the field must mean the same in every rule it uses.
    if (depth > MAX_CHAIN) return { code: 'HADES_ERR_SIGMA_REFERENCE', detail: 'loop', message: 'correlations name each other too deep' };
    const found = new Set<string>();
    for (const id of target.references) {
      const inner = works.find((x) => x.hadesId === id);
      if (!inner) continue;
      const f = groupField(inner, sigmaField, depth + 1);
      if (typeof f !== 'string') return f;
      found.add(f);
    }
    if (found.size !== 1) return { code: 'HADES_ERR_SIGMA_CORRELATION', detail: 'group-by', message: `'${sigmaField}' stands for different fields in the rules of '${target.doc.title}'` };
    return [...found][0]!;
  };
  for (const w of works) if (w.doc.kind === 'correlation') correlate(w);

  // Stage 5: check with the compiler, dropping what it refuses, until the files load clean.
  for (const w of works) w.live = w.rule !== undefined && w.reasons.length === 0;
  dropDead(works);
  let assembled = assemble(works, options);
  if (options.check ?? true) {
    for (let pass = 0; pass < 20; pass++) {
      const { problems } = loadRules(assembled.map((a) => a.file));
      const errors = problems.filter((p) => p.severity === 'error');
      if (errors.length === 0) {
        for (const p of problems) {
          const owner = ownerOf(works, p.rule, p.file);
          owner?.notes.push({ code: p.code, detail: 'compiler', message: p.message });
        }
        break;
      }
      const failed: { work: Work; code: ErrorCode; message: string }[] = [];
      for (const p of errors) {
        const owner = p.rule === undefined ? undefined : ownerOf(works, p.rule, p.file);
        // A problem that names no rule (it should not happen) costs every rule of its file.
        const hit = owner ? [owner] : works.filter((w) => w.live && `sigma:${w.doc.file}` === p.file);
        for (const work of hit) failed.push({ work, code: p.code, message: p.message });
      }
      const dead = new Set(failed.filter((f) => f.work.references.length === 0 || f.code !== 'HADES_ERR_RULE_UNKNOWN_RULE').map((f) => f.work.hadesId));
      for (const f of failed) {
        // A correlation that lost a rule it uses is reported by dropDead, with that rule's reason.
        if (f.code === 'HADES_ERR_RULE_UNKNOWN_RULE' && f.work.references.some((id) => dead.has(id))) continue;
        fail(f.work, f.code, 'compiler', `Hades refuses the converted rule: ${f.message}`);
        f.work.live = false;
      }
      dropDead(works);
      assembled = assemble(works, options);
    }
  }

  const report: SigmaReportEntry[] = [...works.map(entryOf), ...rejected].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.document - b.document));
  return { files: assembled.map((a) => a.file), sources: assembled, report, summary: summarize(report) };
}

/** The work a problem is about: the rule it names, or the rule whose list it names. */
function ownerOf(works: readonly Work[], rule: string | undefined, file: string): Work | undefined {
  if (rule === undefined) return undefined;
  return works.find((w) => w.live && w.hadesId === rule && `sigma:${w.doc.file}` === file) ?? works.find((w) => w.live && w.lists.has(rule));
}

/** Correlations that use a rule that is no longer live follow it, transitively. */
function dropDead(works: readonly Work[]): void {
  for (let changed = true; changed; ) {
    changed = false;
    for (const w of works) {
      if (!w.live || w.references.length === 0) continue;
      const dead = w.references.find((id) => !works.some((x) => x.live && x.hadesId === id));
      if (dead === undefined) continue;
      const why = works.find((x) => x.hadesId === dead)?.reasons[0];
      fail(w, 'HADES_ERR_SIGMA_REFERENCE', 'unsupported rule', `the correlation uses '${dead}', which is unsupported${why ? `: ${why.code}: ${why.message}` : ''}`);
      w.live = false;
      changed = true;
    }
  }
  // A rule that only correlations use, none of them live, none saying `generate: true`: its
  // author wanted no alert of it alone (the correlation's default), and it would raise one for
  // every event it matches. It goes with them.
  for (const w of works) {
    if (!w.live || w.doc.kind === 'correlation') continue;
    const users = works.filter((x) => x.named.includes(w));
    if (users.length === 0 || users.some((x) => x.live || x.generateAsked)) continue;
    fail(w, 'HADES_ERR_SIGMA_REFERENCE', 'unsupported correlation', `only the correlation${users.length > 1 ? 's' : ''} ${users.map((x) => `'${x.doc.title}'`).join(', ')} use${users.length > 1 ? '' : 's'} this rule (generate: false), and ${users.length > 1 ? 'they are' : 'it is'} unsupported: alone it would alert on every event it matches`);
    w.live = false;
  }
}

/** The Hades files of the live rules, one per Sigma file, in the order of the Sigma files. */
function assemble(works: readonly Work[], options: ConvertOptions): { source: string; file: RuleFile }[] {
  // A rule that a live correlation uses is evaluated for it, silently, unless the correlation says generate.
  const silent = new Set<string>();
  const loud = new Set<string>();
  for (const w of works) if (w.live) for (const id of w.references) (w.generate ? loud : silent).add(id);
  const byFile = new Map<string, Work[]>();
  for (const w of works) {
    if (!w.live) continue;
    const list = byFile.get(w.doc.file) ?? [];
    list.push(w);
    byFile.set(w.doc.file, list);
  }
  const out: { source: string; file: RuleFile }[] = [];
  for (const [source, ws] of byFile) {
    const lists: Record<string, (string | number)[]> = {};
    const rules: Record<string, unknown>[] = [];
    for (const w of ws) {
      for (const [name, values] of w.lists) lists[name] = values;
      const alert = !(silent.has(w.hadesId!) && !loud.has(w.hadesId!));
      rules.push(alert ? w.rule! : { ...w.rule!, alert: false });
    }
    const body = stringify({ ...(Object.keys(lists).length > 0 ? { lists } : {}), rules }, { lineWidth: 0, minContentWidth: 0 });
    out.push({ source, file: { name: `sigma:${source}`, text: header(source, ws, options) + body } });
  }
  return out;
}

function header(source: string, ws: readonly Work[], options: ConvertOptions): string {
  const licences = new Set(ws.map((w) => (typeof w.doc.data['license'] === 'string' ? w.doc.data['license'] : options.licence)).filter((l): l is string => l !== undefined));
  const authors = new Set(ws.map((w) => w.doc.data['author']).filter((a): a is string => typeof a === 'string'));
  const lines = [
    `Hades rules converted from the Sigma rule file ${source} by \`hades rules import-sigma\` (docs/sigma.md).`,
    'Convert the Sigma file again rather than editing this one.',
    `Licence of the Sigma rules: ${licences.size > 0 ? [...licences].join('; ') : 'see the Sigma source'}.`,
    ...(authors.size > 0 ? [`Sigma authors: ${[...authors].join('; ')}.`] : []),
  ];
  return `${lines.map((l) => `# ${l.replace(/[\r\n]+/g, ' ')}`).join('\n')}\n`;
}

function entryOf(w: Work): SigmaReportEntry {
  const loaded = w.live && w.reasons.length === 0;
  return {
    file: w.doc.file,
    document: w.doc.document,
    ...(w.doc.id !== undefined ? { id: w.doc.id } : {}),
    ...(w.hadesId !== undefined && loaded ? { hadesId: w.hadesId } : {}),
    title: w.doc.title,
    kind: w.doc.kind,
    category: w.doc.category,
    status: loaded ? 'loaded' : 'unsupported',
    reasons: loaded ? [] : w.reasons.length > 0 ? w.reasons : [{ code: 'HADES_ERR_INTERNAL', detail: 'no reason', message: 'the rule was not converted, and no reason was recorded' }],
    notes: w.notes,
  };
}
