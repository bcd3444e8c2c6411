/**
 * The alert document: what the rule engine raises, what the store keeps, what the API returns and
 * what every alert output (webhook, syslog, file) sends.
 */
import type { Severity } from '../../rules/index.js';

export const ALERT_STATUSES = ['new', 'acknowledged', 'resolved', 'false_positive'] as const;
export type AlertStatus = (typeof ALERT_STATUSES)[number];

export interface AlertRule {
  readonly id: string;
  readonly title: string;
  readonly severity: Severity;
  /** Lower-case tags, MITRE ATT&CK ones as `attack.t1059.004`. */
  readonly tags: readonly string[];
  /** rule, sequence or threshold. */
  readonly type: string;
}

export interface AlertHost {
  /** The agent's id. */
  readonly id: string;
  /**
   * The name the agent enrolled with (the fleet's record), or, for an agent the fleet does not
   * know, the event's `host.name`: what alerts are listed and suppressed by.
   */
  readonly name: string;
  /** The event's `host.name` when it is another name than `name` (the host calls itself so now, or claims to). */
  readonly reported_name?: string;
  /** CMDB metadata of the host where known (owner, business_unit, environment, tags). */
  readonly cmdb?: Readonly<Record<string, unknown>>;
}

export interface Alert {
  /** Unique id (UUID). */
  readonly id: string;
  /** When the alert was first raised (ISO 8601). */
  readonly '@timestamp': string;
  /** Time of the last event folded into it by deduplication (ISO 8601). */
  readonly last_seen: string;
  /** How many matches were folded into this alert (1 when none were deduplicated). */
  readonly count: number;
  readonly rule: AlertRule;
  /** The rule's output template, rendered on the event that raised the alert (a correlation's completing event). */
  readonly message: string;
  readonly host: AlertHost;
  /** The triggering events (for correlation rules, every step's event), oldest first, bounded. */
  readonly events: readonly Readonly<Record<string, unknown>>[];
  /** The process of the event that raised the alert (a correlation's completing event), with its ancestry (from `hades.ancestors`), if any. */
  readonly process?: Readonly<Record<string, unknown>>;
  readonly status: AlertStatus;
  readonly assignee?: string | null;
  /**
   * The triage revision, in what the store gives back (API answers): 1 when raised, one more at
   * each triage. The API sends it as the ETag and takes it in If-Match.
   */
  readonly revision?: number;
}
