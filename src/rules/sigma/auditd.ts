/**
 * Sigma rules on auditd's EXECVE records (`logsource: {product: linux, service: auditd}`): an
 * EXECVE record holds a program's arguments as `a0`, `a1`, ... (`argc` aside), the same facts
 * as `process.args` of a Hades `exec` event, so a rule that can only ever match EXECVE records
 * converts exactly onto exec events (mapping.ts, AUDITD_EXECVE). auditd writes other records
 * too (SYSCALL, PATH, CWD, USER_*, ...), whose fields Hades events do not have in the same
 * shape; a rule that could match one of them is refused, never narrowed to exec events.
 *
 * Whether a rule can match a record that is not an EXECVE is decided from its condition, in
 * three-valued logic over "a record of another type": a search identifier that requires
 * `type: EXECVE` (every one of its mappings says so) is false there; any other is unknown;
 * `not` of false is true. The rule converts only when the whole condition is false there.
 */
import { identifiersOf, parseSigmaCondition, type SigmaCondition } from './condition.js';
import { conditionTexts } from './detection.js';
import { isRecord } from './document.js';

type Truth = 'true' | 'false' | 'unknown';

/** The record type every match of an audit rule converted to exec events needs. */
export const EXECVE_TYPE = 'execve';

/** Whether one mapping of a search identifier matches only EXECVE records: `type: EXECVE` (any case, no modifier). */
function mappingNeedsExecve(m: Record<string, unknown>): boolean {
  const value = m['type'];
  const values = Array.isArray(value) ? value : [value];
  return values.length > 0 && values.every((v) => typeof v === 'string' && v.toLowerCase() === EXECVE_TYPE);
}

/** Whether a search identifier matches only EXECVE records: a mapping that says so, or a list of mappings that all do. */
function selectionNeedsExecve(selection: unknown): boolean {
  if (isRecord(selection)) return mappingNeedsExecve(selection);
  return Array.isArray(selection) && selection.length > 0 && selection.every((m) => isRecord(m) && mappingNeedsExecve(m));
}

function andOf(items: readonly Truth[]): Truth {
  if (items.includes('false')) return 'false';
  return items.every((t) => t === 'true') ? 'true' : 'unknown';
}

function orOf(items: readonly Truth[]): Truth {
  if (items.includes('true')) return 'true';
  return items.every((t) => t === 'false') ? 'false' : 'unknown';
}

/**
 * Whether a detection's condition is certainly false on every audit record other than EXECVE.
 * A detection or condition that is not valid, or names identifiers the detection lacks, gives
 * true here, so that the conversion goes on to report the real problem.
 */
export function onlyExecveRecords(detection: unknown): boolean {
  if (!isRecord(detection)) return true;
  const names = Object.keys(detection).filter((k) => k !== 'condition' && k !== 'timeframe');
  const texts = conditionTexts(detection);
  if (texts === undefined) return true;
  const search = (name: string): Truth => (!names.includes(name) || selectionNeedsExecve(detection[name]) ? 'false' : 'unknown');
  const walk = (c: SigmaCondition): Truth => {
    switch (c.kind) {
      case 'id':
        return search(c.name);
      case 'of': {
        const items = identifiersOf(c.pattern, names).map(search);
        if (items.length === 0) return 'false';
        if (c.count === 'all') return andOf(items);
        const yes = items.filter((t) => t === 'true').length;
        const maybe = items.filter((t) => t !== 'false').length;
        return yes >= c.count ? 'true' : maybe < c.count ? 'false' : 'unknown';
      }
      case 'and':
        return andOf(c.items.map(walk));
      case 'or':
        return orOf(c.items.map(walk));
      case 'not': {
        const t = walk(c.expr);
        return t === 'unknown' ? t : t === 'true' ? 'false' : 'true';
      }
    }
  };
  try {
    return orOf(texts.map((t) => walk(parseSigmaCondition(t)))) === 'false';
  } catch {
    return true;
  }
}
