/**
 * The import report: one entry per Sigma document (rule, correlation, or something that is not
 * a Sigma rule), loaded or unsupported with coded reasons, and the counts a person reads first.
 */
import type { ErrorCode } from '../../common/errors.js';

export type SigmaStatus = 'loaded' | 'unsupported';
export type SigmaKind = 'rule' | 'correlation' | 'filter' | 'invalid';

/** A reason (unsupported) or a note (loaded, with an adaptation or a warning). */
export interface SigmaReason {
  readonly code: ErrorCode;
  /** What, briefly: the field, modifier, log source... The summary counts by code and detail. */
  readonly detail: string;
  readonly message: string;
  /** Where in the file, when known (1-based): the search identifier or the field key concerned. */
  readonly line?: number;
  readonly column?: number;
}

export interface SigmaReportEntry {
  /** The Sigma file, as given. */
  readonly file: string;
  /** 1-based position of the YAML document in the file (correlation files hold several). */
  readonly document: number;
  /** The Sigma `id`, when it has one. */
  readonly id?: string;
  /** The Hades rule id it was converted to (the Sigma id when it fits). */
  readonly hadesId?: string;
  readonly title: string;
  readonly kind: SigmaKind;
  /** `logsource.category`, else `service:NAME` or `product:NAME`; `correlation` for correlations. */
  readonly category: string;
  readonly status: SigmaStatus;
  /** Why the rule is unsupported (empty when loaded). */
  readonly reasons: readonly SigmaReason[];
  /** Adaptations and warnings of a loaded rule. */
  readonly notes: readonly SigmaReason[];
}

export interface CategoryCount {
  loaded: number;
  unsupported: number;
}

export interface SigmaSummary {
  readonly total: number;
  readonly loaded: number;
  readonly unsupported: number;
  /** Per category, sorted by name. */
  readonly categories: Readonly<Record<string, CategoryCount>>;
  /** Unsupported rules per first reason, `CODE (detail)`, most frequent first. */
  readonly reasons: Readonly<Record<string, number>>;
}

export function reasonKey(r: SigmaReason): string {
  return `${r.code} (${r.detail})`;
}

export function summarize(entries: readonly SigmaReportEntry[]): SigmaSummary {
  const categories: Record<string, CategoryCount> = {};
  const reasons = new Map<string, number>();
  let loaded = 0;
  for (const e of entries) {
    const c = (categories[e.category] ??= { loaded: 0, unsupported: 0 });
    if (e.status === 'loaded') {
      loaded++;
      c.loaded++;
    } else {
      c.unsupported++;
      const first = e.reasons[0];
      if (first) reasons.set(reasonKey(first), (reasons.get(reasonKey(first)) ?? 0) + 1);
    }
  }
  const sortedCategories = Object.fromEntries(Object.keys(categories).sort().map((k) => [k, categories[k]!]));
  const sortedReasons = Object.fromEntries([...reasons].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
  return { total: entries.length, loaded, unsupported: entries.length - loaded, categories: sortedCategories, reasons: sortedReasons };
}

/** The share of entries of the given categories that loaded, 0..1 (1 when there are none). */
export function loadRatio(entries: readonly SigmaReportEntry[], categories: readonly string[]): number {
  const of = entries.filter((e) => categories.includes(e.category));
  return of.length === 0 ? 1 : of.filter((e) => e.status === 'loaded').length / of.length;
}
