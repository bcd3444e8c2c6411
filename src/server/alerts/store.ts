/**
 * The alert store: alerts, their triage (status, assignee, comments) and suppressions, in the
 * server's database (db.ts).
 *
 * - Deduplication: an alert has a key (rule, host, and what the triggering event was about, see
 *   `dedupKey` in detector.ts). A match whose key has an alert whose last event is within the
 *   window is folded into it: `count` grows, `last_seen` moves, its event is appended (up to a
 *   bound) and no new alert is raised. An alert already resolved or marked false positive is not
 *   reopened by folding: a new one is raised.
 * - Suppression: an analyst silences a rule (or every rule, `*`) on one host or all, optionally
 *   only when a field of the event has a value, until a time. Suppressed matches are counted,
 *   not stored. The host is the agent the server knows sent the event (its certificate's id, the
 *   name it enrolled with), not the event's own `host.name`.
 * - Triage: each change bumps the alert's revision (the API's ETag) and is written in one
 *   transaction with its audit record; a triage made against a revision that is no longer the
 *   alert's is refused (HADES_ERR_ALERT_CHANGED).
 * - Search: newest raised first; by activity in a time window (an alert whose events keep coming
 *   stays in view, and one raised or folded into now about events dated long before too),
 *   status, severity, rule, host; keyset pages.
 */
import { randomUUID } from 'node:crypto';
import type { Statement } from 'better-sqlite3';
import { hasUnsafe } from '../../common/safe-text.js';
import { HadesError } from '../../common/errors.js';
import { SEVERITIES, type Severity } from '../../rules/index.js';
import { migrate, type Db } from '../db.js';
import { ALERT_STATUSES, type Alert, type AlertStatus } from './types.js';
import { AGENT_ID_RE } from '../fleet/registry.js';
import type { AuditEntry } from '../fleet/audit.js';

export const ALERTS_MIGRATIONS: readonly string[] = [
  `CREATE TABLE alerts (
     seq INTEGER PRIMARY KEY,
     id TEXT NOT NULL UNIQUE,
     time INTEGER NOT NULL,
     last_seen INTEGER NOT NULL,
     rule_id TEXT NOT NULL,
     severity INTEGER NOT NULL,
     agent_id TEXT NOT NULL,
     host TEXT NOT NULL,
     status TEXT NOT NULL DEFAULT 'new',
     assignee TEXT,
     dedup_key TEXT NOT NULL,
     count INTEGER NOT NULL DEFAULT 1,
     updated INTEGER NOT NULL,
     doc TEXT NOT NULL
   );
   CREATE INDEX alerts_time ON alerts (time);
   CREATE INDEX alerts_status_time ON alerts (status, time);
   CREATE INDEX alerts_rule_time ON alerts (rule_id, time);
   CREATE INDEX alerts_host_time ON alerts (host, time);
   CREATE INDEX alerts_dedup ON alerts (dedup_key, last_seen);
   CREATE TABLE alert_comments (
     id INTEGER PRIMARY KEY,
     alert_id TEXT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
     time INTEGER NOT NULL,
     author TEXT NOT NULL,
     text TEXT NOT NULL
   );
   CREATE INDEX alert_comments_alert ON alert_comments (alert_id, id);
   CREATE TABLE alert_suppressions (
     id TEXT PRIMARY KEY,
     rule_id TEXT NOT NULL,
     host TEXT,
     field TEXT,
     value TEXT,
     until INTEGER NOT NULL,
     reason TEXT NOT NULL,
     created_by TEXT NOT NULL,
     created INTEGER NOT NULL,
     hits INTEGER NOT NULL DEFAULT 0
   );`,
  // `since` selects alerts by their last event: an attack that keeps firing stays in view.
  'CREATE INDEX alerts_last_seen ON alerts (last_seen);',
  // Retention deletes by the last change (the server's clock), every minute.
  'CREATE INDEX alerts_updated ON alerts (updated);',
  // When the server last raised or folded a match into it (its clock): `since` also selects by
  // it, so an alert raised now about events dated days back (a host that was offline, or whose
  // clock was set back) is among the last hour's. Alerts from before: their last change.
  `ALTER TABLE alerts ADD COLUMN matched INTEGER NOT NULL DEFAULT 0;
   UPDATE alerts SET matched = updated;
   CREATE INDEX alerts_matched ON alerts (matched);`,
  // The triage revision: 1 when raised, one more at each triage. The API gives it as the ETag
  // and takes it back in If-Match, so a triage made on a stale read is refused (412) rather than
  // overwriting a colleague's.
  'ALTER TABLE alerts ADD COLUMN revision INTEGER NOT NULL DEFAULT 1;',
  // Who the events the document keeps are (keptIdentities: a JSON array, one entry per event), so
  // that a match folded into an alert is checked against them, and counted, without parsing and
  // writing back the whole document (its events are up to 2 KB each): in an alert storm most
  // folds find the document full. NULL for alerts from before: read from the document once.
  'ALTER TABLE alerts ADD COLUMN kept TEXT;',
  // The processes the kept events are about and their parents and ancestors (packProcesses: a
  // small JSON document), read by `related` for each alert of the agent in its window instead of
  // parsing the whole document; and the agent's alerts by time, with their last time in the index
  // so that the window is found there. NULL for alerts from before: read from the document.
  `ALTER TABLE alerts ADD COLUMN procs TEXT;
   CREATE INDEX alerts_agent_time ON alerts (agent_id, time, last_seen);`,
];

/**
 * Most comments one alert takes: each is up to 16 KiB (api.ts), and an alert is read whole with
 * its comments; a script (or a stolen analyst token) commenting in a loop would otherwise make
 * one alert, and every read of it, grow without end (and keep it from retention).
 */
export const MAX_ALERT_COMMENTS = 500;

/** Severity order: info 0 ... critical 4. */
export const severityRank = (severity: Severity): number => SEVERITIES.indexOf(severity);

export interface NewAlert {
  readonly alert: Alert;
  readonly dedupKey: string;
  /** When the server raised it (ms, its clock); now by default. */
  readonly matched?: number;
}

export interface FoldResult {
  /** The alert the match was folded into, or undefined when a new one must be raised. */
  readonly folded: Alert | undefined;
}

export interface AlertQuery {
  /**
   * Alerts whose last event is at or after this time (ms), or that the server raised or folded a
   * match into at or after it: still active in the window.
   */
  readonly since?: number;
  /** Alerts that began at or before this time (ms). */
  readonly until?: number;
  readonly status?: readonly AlertStatus[];
  /** Least severity. */
  readonly minSeverity?: Severity;
  readonly ruleId?: string;
  readonly host?: string;
  readonly limit?: number;
  readonly cursor?: string;
}

export interface AlertComment {
  readonly id: number;
  readonly time: string;
  readonly author: string;
  readonly text: string;
}

/**
 * One triage of an alert as GET /api/v1/alerts/ID gives it in `history`, read back from its
 * audit record (`alert.triage`): who, when, what it set, what the alert was before, and the
 * revision it made.
 */
export interface AlertTriageRecord {
  readonly time: string;
  readonly actor: string;
  readonly status?: AlertStatus;
  readonly assignee?: string | null;
  readonly from?: { readonly status: AlertStatus; readonly assignee: string | null };
  readonly revision?: number;
}

/** The most triages `history` gives (the latest ones): the audit log keeps them all. */
export const MAX_ALERT_HISTORY = 500;

/**
 * An alert's triage history from its `alert.triage` audit records (as AuditLog.list gives them,
 * newest first): oldest first, each with what it set, what the alert was before and the
 * revision it made.
 */
export function triageHistory(entries: readonly AuditEntry[]): AlertTriageRecord[] {
  return entries
    .filter((e) => e.action === 'alert.triage')
    .map((e) => {
      const d = e.details ?? {};
      const from = d['from'] as { status?: unknown; assignee?: unknown } | undefined;
      return {
        time: e.at,
        actor: e.actor,
        ...(typeof d['status'] === 'string' ? { status: d['status'] as AlertStatus } : {}),
        ...(typeof d['assignee'] === 'string' || d['assignee'] === null ? { assignee: d['assignee'] } : {}),
        ...(from !== undefined && typeof from.status === 'string' ? { from: { status: from.status as AlertStatus, assignee: typeof from.assignee === 'string' ? from.assignee : null } } : {}),
        ...(typeof d['revision'] === 'number' ? { revision: d['revision'] } : {}),
      };
    })
    .reverse();
}

export interface Suppression {
  readonly id: string;
  readonly rule_id: string;
  readonly host: string | null;
  readonly field: string | null;
  readonly value: string | null;
  readonly until: string;
  readonly reason: string;
  readonly created_by: string;
  readonly created: string;
  readonly hits: number;
}

interface AlertRow {
  seq: number;
  doc: string;
  status: string;
  assignee: string | null;
  count: number;
  last_seen: number;
  revision: number;
}

/** An alert's triage state: what a triage changes, and the revision it had. */
export interface TriageState {
  readonly status: AlertStatus;
  readonly assignee: string | null;
  readonly revision: number;
}

export interface TriageOptions {
  /**
   * The revisions the caller read (If-Match): the triage is refused with HADES_ERR_ALERT_CHANGED
   * when the alert has none of them now. Absent: whatever it has (the last writer wins).
   */
  readonly expected?: readonly number[];
  /**
   * Called with the state before and the alert after, in the triage's transaction (its audit
   * record): when it throws, the triage is undone.
   */
  readonly record?: (from: TriageState, to: Alert) => void;
}

interface FoldRow {
  seq: number;
  kept: string | null;
  procs: string | null;
}

interface SuppressionRow {
  id: string;
  rule_id: string;
  host: string | null;
  field: string | null;
  value: string | null;
  until: number;
  reason: string;
  created_by: string;
  created: number;
  hits: number;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** An alert row back to its document, with its current triage state and count. */
function toAlert(row: AlertRow): Alert {
  const doc = JSON.parse(row.doc) as Alert;
  return { ...doc, status: row.status as AlertStatus, assignee: row.assignee, count: row.count, last_seen: iso(row.last_seen), revision: row.revision };
}

/** The entity tag of an alert revision, as the API sends it in ETag (a strong validator). */
export const alertEtag = (revision: number): string => `"${revision}"`;

/**
 * A page's cursor: the last alert's seq and the window of the search (ms; empty: unbounded),
 * which the next pages keep: `since=24h` read again at each page would move, and alerts of the
 * first page's window would fall out of the next. A cursor of an earlier version (`a:SEQ`)
 * carries no window: its pages read the query's again.
 */
interface AlertCursor {
  readonly seq: number;
  readonly window?: { readonly since: number | undefined; readonly until: number | undefined };
}

function encodeCursor(cursor: AlertCursor): string {
  const window = cursor.window === undefined ? '' : `:${cursor.window.since ?? ''}:${cursor.window.until ?? ''}`;
  return Buffer.from(`a:${cursor.seq}${window}`).toString('base64url');
}

function decodeCursor(cursor: string): AlertCursor {
  const text = Buffer.from(cursor, 'base64url').toString();
  const match = /^a:(\d{1,15})(:(-?\d{1,16})?:(-?\d{1,16})?)?$/.exec(text);
  if (!match) throw new HadesError('HADES_ERR_API_INVALID_REQUEST', 'the cursor is not one this server gave');
  const bound = (b: string | undefined) => (b === undefined ? undefined : Number(b));
  return { seq: Number(match[1]), ...(match[2] !== undefined ? { window: { since: bound(match[3]), until: bound(match[4]) } } : {}) };
}

export class AlertStore {
  readonly #db: Db;
  readonly #insert: Statement;
  readonly #findFold: Statement<[string, number, number], FoldRow>;
  readonly #foldDoc: Statement<[number], { doc: string }>;
  readonly #append: Statement<[number, number, string, string, string, number, number, number]>;
  readonly #count: Statement<[number, number, number, number, number]>;
  /** The counters of an alert from before the kept column, with its kept events' identities and processes written once. */
  readonly #countLegacy: Statement<[number, number, number, number, string, string, number]>;
  readonly #get: Statement<[string], AlertRow>;
  #related: Statement<[string, number, number, number, number], { seq: number; id: string; time: number; status: string; procs: string | null }> | undefined;
  #relatedDoc: Statement<[number]> | undefined;
  #holds: Statement<[string, number, number, string]> | undefined;
  readonly #suppressions: Statement<[number], SuppressionRow>;
  readonly #hit: Statement<[string]>;
  /** Active suppressions, refreshed when they change and when one expires. */
  #active: SuppressionRow[] | undefined;
  #transaction: ((run: () => void) => void) | undefined;
  #activeUntil = 0;

  constructor(db: Db) {
    this.#db = db;
    try {
      migrate(db, 'alerts', ALERTS_MIGRATIONS);
    } catch (error) {
      throw new HadesError('HADES_ERR_STORE_OPEN', `cannot prepare the alerts tables of ${db.name}: ${(error as Error).message}`, { cause: error });
    }
    this.#insert = db.prepare(
      'INSERT INTO alerts (id, time, last_seen, rule_id, severity, agent_id, host, status, dedup_key, count, updated, matched, doc, kept, procs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.#findFold = db.prepare("SELECT seq, kept, procs FROM alerts WHERE dedup_key = ? AND last_seen >= ? AND time <= ? AND status IN ('new', 'acknowledged') ORDER BY last_seen DESC LIMIT 1");
    this.#foldDoc = db.prepare('SELECT doc FROM alerts WHERE seq = ?');
    this.#append = db.prepare("UPDATE alerts SET count = count + ?, last_seen = max(last_seen, ?), doc = json_insert(doc, '$.events[#]', json(?)), kept = ?, procs = ?, updated = ?, matched = ? WHERE seq = ?");
    this.#count = db.prepare('UPDATE alerts SET count = count + ?, last_seen = max(last_seen, ?), updated = ?, matched = ? WHERE seq = ?');
    this.#countLegacy = db.prepare('UPDATE alerts SET count = count + ?, last_seen = max(last_seen, ?), updated = ?, matched = ?, kept = ?, procs = ? WHERE seq = ?');
    this.#get = db.prepare('SELECT seq, doc, status, assignee, count, last_seen, revision FROM alerts WHERE id = ?');
    this.#suppressions = db.prepare('SELECT * FROM alert_suppressions WHERE until > ? ORDER BY created');
    this.#hit = db.prepare('UPDATE alert_suppressions SET hits = hits + 1 WHERE id = ?');
  }

  /**
   * Runs `work` in one transaction: the alerts of one batch of events commit together (one WAL
   * commit instead of one per alert, which an alert storm would otherwise pay for).
   */
  batch(work: () => void): void {
    // Inside a caller's transaction (the gateway's group commit), the alerts go straight into it.
    if (this.#db.inTransaction) return work();
    this.#transaction ??= this.#db.transaction((run: () => void) => run());
    this.#transaction(work);
  }

  /** Inserts a new alert. */
  insert({ alert, dedupKey, matched = Date.now() }: NewAlert): void {
    const time = Date.parse(alert['@timestamp']);
    this.#insert.run(
      alert.id,
      time,
      Date.parse(alert.last_seen),
      alert.rule.id,
      severityRank(alert.rule.severity),
      alert.host.id,
      alert.host.name,
      alert.status,
      dedupKey,
      alert.count,
      Date.now(),
      matched,
      JSON.stringify(alert),
      JSON.stringify(alert.events.map(identity)),
      packProcesses(processesOf(alert.events)),
    );
  }

  /**
   * Whether an alert of this key, open or not, already keeps this very event (its agent and
   * event id) among its events: an event stored before a stop and matched again after it.
   * An alert that kept `max_events` events already counted later ones without keeping them:
   * such a replayed event adds one to its count.
   */
  holds(dedupKey: string, eventTime: number, event: Readonly<Record<string, unknown>>): boolean {
    const id = identity(event);
    if (id === null) return false;
    this.#holds ??= this.#db.prepare('SELECT 1 FROM alerts WHERE dedup_key = ? AND last_seen >= ? AND time <= ? AND instr(kept, ?) > 0 LIMIT 1');
    return this.#holds.get(dedupKey, eventTime, eventTime, JSON.stringify(id)) !== undefined;
  }

  /**
   * Folds a match into the open alert with the same key whose last event is at or after
   * `notBefore` and whose first is at or before `notAfter`: one more in its count, and its event
   * kept while the alert keeps fewer than `maxEvents`. False when there is no such alert.
   * `now`: the server's clock.
   */
  fold(dedupKey: string, notBefore: number, eventTime: number, event: Readonly<Record<string, unknown>>, maxEvents: number, notAfter = eventTime, now = Date.now()): boolean {
    const row = this.#findFold.get(dedupKey, notBefore, notAfter);
    if (row === undefined) return false;
    let doc: Alert | undefined;
    const readDoc = (): Alert => (doc ??= JSON.parse((this.#foldDoc.get(row.seq) as { doc: string }).doc) as Alert);
    const kept: (string | null)[] = row.kept === null ? readDoc().events.map(identity) : (JSON.parse(row.kept) as (string | null)[]);
    // The same event again (matched again after a restart: the detection mark is saved once a
    // second, so the last events before a kill go through the rules twice) changes nothing.
    const id = identity(event);
    if (id !== null && kept.includes(id)) return true;
    if (kept.length >= maxEvents) {
      if (row.kept === null) this.#countLegacy.run(1, eventTime, Date.now(), now, JSON.stringify(kept), packProcesses(processesOf(readDoc().events)), row.seq);
      else this.#count.run(1, eventTime, Date.now(), now, row.seq);
      return true;
    }
    kept.push(id);
    // The event is appended to the document's list by SQLite, without the document going through
    // JSON.parse and JSON.stringify here: their cost grew with every event the alert keeps (up
    // to alerts.max_events). The document's last_seen is not kept current: the column's is
    // what an alert is read with (toAlert).
    const processes = row.procs === null ? processesOf(readDoc().events) : unpackProcesses(row.procs);
    this.#append.run(1, eventTime, JSON.stringify(event), JSON.stringify(kept), packProcesses(processesOf([event], processes)), Date.now(), now, row.seq);
    return true;
  }

  /**
   * The alerts of the same agent that share a process with this one, within RELATED_WINDOW_MS of
   * it (either side): an alert about the same process instance, one about a process that started
   * this one's (its parent or an ancestor up to 8 generations: upstream) and one about a process
   * this one's started (downstream). A web shell's shell, the download it ran and the reverse
   * shell that followed are three alerts an analyst reads as one intrusion: this links them by
   * `process.entity_id` and the ancestry the agent put in each event, not by name or time alone.
   * The newest RELATED_SCAN alerts of the agent in the window are looked at; undefined when the
   * alert does not exist.
   */
  related(id: string): RelatedAlert[] | undefined {
    const row = this.#db.prepare<[string], { seq: number; agent_id: string; time: number; last_seen: number; procs: string | null }>('SELECT seq, agent_id, time, last_seen, procs FROM alerts WHERE id = ?').get(id);
    if (row === undefined) return undefined;
    const own = this.#processesOf(row);
    if (own.acting.size === 0 && own.lineage.size === 0) return [];
    // The agent's own alerts (the one the certificate named), through their index; only the small
    // `procs` document of each, the whole alert document only for those related.
    this.#related ??= this.#db.prepare('SELECT seq, id, time, status, procs FROM alerts WHERE agent_id = ? AND time <= ? AND last_seen >= ? AND seq != ? ORDER BY time DESC LIMIT ?');
    this.#relatedDoc ??= this.#db.prepare("SELECT json_extract(doc, '$.rule.id') AS rule_id, json_extract(doc, '$.rule.title') AS title, json_extract(doc, '$.rule.severity') AS severity, json_extract(doc, '$.message') AS message FROM alerts WHERE seq = ?");
    const candidates = this.#related.all(row.agent_id, row.last_seen + RELATED_WINDOW_MS, row.time - RELATED_WINDOW_MS, row.seq, RELATED_SCAN);
    const related: RelatedAlert[] = [];
    for (const candidate of candidates) {
      const link = linkOf(own, this.#processesOf(candidate));
      if (link === undefined) continue;
      const doc = this.#relatedDoc.get(candidate.seq) as { rule_id: string; title: string; severity: Severity; message: string };
      related.push({ id: candidate.id, '@timestamp': iso(candidate.time), rule: { id: doc.rule_id, title: doc.title, severity: doc.severity }, status: candidate.status as AlertStatus, message: doc.message, relation: link.relation, process: link.process });
      if (related.length >= MAX_RELATED) break;
    }
    // Oldest first: the order the intrusion happened in.
    return related.reverse();
  }

  /** An alert's processes: from its `procs` column, or (an alert from before it) its document. */
  #processesOf(row: { seq: number; procs: string | null }): AlertProcesses {
    if (row.procs !== null) return unpackProcesses(row.procs);
    const doc = this.#foldDoc.get(row.seq) as { doc: string };
    return processesOf((JSON.parse(doc.doc) as Alert).events);
  }

  get(id: string): (Alert & { comments: AlertComment[] }) | undefined {
    const row = this.#get.get(id);
    if (row === undefined) return undefined;
    const comments = this.#db.prepare<[string], { id: number; time: number; author: string; text: string }>('SELECT id, time, author, text FROM alert_comments WHERE alert_id = ? ORDER BY id').all(id);
    return { ...toAlert(row), comments: comments.map((c) => ({ id: c.id, time: iso(c.time), author: c.author, text: c.text })) };
  }

  search(query: AlertQuery): { alerts: Alert[]; next?: string } {
    const where: string[] = [];
    const params: (string | number)[] = [];
    const cursor = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
    // A cursor's next pages keep the window of its first (AlertCursor).
    const { since, until } = cursor?.window ?? query;
    if (since !== undefined && until !== undefined && until < since) {
      throw new HadesError('HADES_ERR_API_INVALID_REQUEST', `until (${iso(until)}) is before since (${iso(since)})`);
    }
    if (since !== undefined) {
      where.push('(last_seen >= ? OR matched >= ?)');
      params.push(since, since);
    }
    if (until !== undefined) {
      where.push('time <= ?');
      params.push(until);
    }
    if (query.status !== undefined && query.status.length > 0) {
      where.push(`status IN (${query.status.map(() => '?').join(', ')})`);
      params.push(...query.status);
    }
    if (query.minSeverity !== undefined) {
      where.push('severity >= ?');
      params.push(severityRank(query.minSeverity));
    }
    if (query.ruleId !== undefined) {
      where.push('rule_id = ?');
      params.push(query.ruleId);
    }
    if (query.host !== undefined) {
      // A host is named by its name, or by its agent's id.
      where.push(AGENT_ID_RE.test(query.host) ? 'agent_id = ?' : 'host = ?');
      params.push(query.host);
    }
    if (cursor !== undefined) {
      where.push('seq < ?');
      params.push(cursor.seq);
    }
    const limit = Math.min(Math.max(query.limit ?? 100, 1), 10_000);
    const sql = `SELECT seq, doc, status, assignee, count, last_seen, revision FROM alerts${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ${limit + 1}`;
    const rows = this.#db.prepare<(string | number)[], AlertRow>(sql).all(...params);
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return rows.length > limit && last !== undefined ? { alerts: page.map(toAlert), next: encodeCursor({ seq: last.seq, window: { since, until } }) } : { alerts: page.map(toAlert) };
  }

  /**
   * Sets the triage state; returns the updated alert or undefined when there is no such alert.
   * One transaction: the check of `expected`, the change (with its next revision) and `record`
   * (the audit entry) are written together or not at all.
   */
  triage(id: string, change: { status?: AlertStatus; assignee?: string | null }, options: TriageOptions = {}): Alert | undefined {
    if (change.status !== undefined && !ALERT_STATUSES.includes(change.status)) {
      throw new HadesError('HADES_ERR_API_INVALID_REQUEST', `status must be one of ${ALERT_STATUSES.join(', ')}`);
    }
    // A name a person reads in lists of alerts, on one line: a blank one would look assigned to
    // nobody while taking the alert out of the unassigned ones.
    if (typeof change.assignee === 'string' && (change.assignee.trim() === '' || hasUnsafe(change.assignee, { invisible: true }))) {
      throw new HadesError('HADES_ERR_API_INVALID_REQUEST', 'assignee must be a name: not blank, without control, line, direction or invisible characters (null unassigns)');
    }
    const sets: string[] = [];
    const params: (string | number | null)[] = [];
    if (change.status !== undefined) {
      sets.push('status = ?');
      params.push(change.status);
    }
    if (change.assignee !== undefined) {
      sets.push('assignee = ?');
      params.push(change.assignee);
    }
    return this.#atomically(() => {
      const row = this.#get.get(id);
      if (row === undefined) return undefined;
      const from: TriageState = { status: row.status as AlertStatus, assignee: row.assignee, revision: row.revision };
      if (options.expected !== undefined && !options.expected.includes(row.revision)) {
        throw new HadesError(
          'HADES_ERR_ALERT_CHANGED',
          `alert ${id} changed since it was read: it is at revision ${row.revision} (${row.status}, ${row.assignee === null ? 'unassigned' : `assigned to ${row.assignee}`}), not ${options.expected.length === 0 ? 'the revision given' : options.expected.join(' or ')}; read it again and triage that`,
          { details: { revision: row.revision, etag: alertEtag(row.revision), status: row.status, assignee: row.assignee } },
        );
      }
      if (sets.length > 0) {
        // Only the row read above, at the revision read (nothing else writes between in this
        // transaction; the condition keeps it so if that ever changes).
        this.#db.prepare(`UPDATE alerts SET ${sets.join(', ')}, revision = revision + 1, updated = ? WHERE id = ? AND revision = ?`).run(...params, Date.now(), id, row.revision);
      }
      const to = this.get(id)!;
      options.record?.(from, to);
      return to;
    });
  }

  /** Adds a comment; `record` (its audit entry) runs in the same transaction. Undefined: no such alert. */
  comment(id: string, author: string, text: string, record?: (comment: AlertComment) => void): AlertComment | undefined {
    return this.#atomically(() => {
      if (this.#get.get(id) === undefined) return undefined;
      const { comments } = this.#db.prepare<[string], { comments: number }>('SELECT count(*) AS comments FROM alert_comments WHERE alert_id = ?').get(id)!;
      if (comments >= MAX_ALERT_COMMENTS) {
        throw new HadesError('HADES_ERR_ALERT_TOO_MANY_COMMENTS', `alert ${id} has ${comments} comments, the most an alert takes (${MAX_ALERT_COMMENTS})`);
      }
      const time = Date.now();
      const result = this.#db.prepare('INSERT INTO alert_comments (alert_id, time, author, text) VALUES (?, ?, ?, ?)').run(id, time, author, text);
      // A comment is a change: the alert is kept for its retention from now.
      this.#db.prepare('UPDATE alerts SET updated = ? WHERE id = ?').run(time, id);
      const comment: AlertComment = { id: Number(result.lastInsertRowid), time: iso(time), author, text };
      record?.(comment);
      return comment;
    });
  }

  // Suppressions

  /** Adds a suppression; `record` (its audit entry) runs in the same transaction. */
  addSuppression(input: { ruleId: string; host?: string | null; field?: string | null; value?: string | null; until: number; reason: string; createdBy: string }, record?: (created: Suppression) => void): Suppression {
    if ((input.field == null) !== (input.value == null)) throw new HadesError('HADES_ERR_API_INVALID_REQUEST', 'a suppression needs both field and value, or neither');
    const row: SuppressionRow = {
      id: randomUUID(),
      rule_id: input.ruleId,
      host: input.host ?? null,
      field: input.field ?? null,
      value: input.value ?? null,
      until: input.until,
      reason: input.reason,
      created_by: input.createdBy,
      created: Date.now(),
      hits: 0,
    };
    const created = this.#atomically(() => {
      this.#db
        .prepare('INSERT INTO alert_suppressions (id, rule_id, host, field, value, until, reason, created_by, created, hits) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)')
        .run(row.id, row.rule_id, row.host, row.field, row.value, row.until, row.reason, row.created_by, row.created);
      const suppression = toSuppression(row);
      record?.(suppression);
      return suppression;
    });
    this.#active = undefined;
    return created;
  }

  listSuppressions(includeExpired = false): Suppression[] {
    return this.#db
      .prepare<[number], SuppressionRow>('SELECT * FROM alert_suppressions WHERE until > ? ORDER BY created')
      .all(includeExpired ? 0 : Date.now())
      .map(toSuppression);
  }

  /**
   * Deletes a suppression; `record` is told what it was, in the same transaction (its audit
   * entry: the store keeps nothing of it). False: there was none.
   */
  deleteSuppression(id: string, record?: (lifted: Suppression) => void): boolean {
    const deleted = this.#atomically(() => {
      const row = this.#db.prepare<[string], SuppressionRow>('SELECT * FROM alert_suppressions WHERE id = ?').get(id);
      if (row === undefined) return false;
      this.#db.prepare('DELETE FROM alert_suppressions WHERE id = ?').run(id);
      record?.(toSuppression(row));
      return true;
    });
    this.#active = undefined;
    return deleted;
  }

  /** Runs `work` in a transaction (a savepoint inside a caller's): all of it is written, or none. */
  #atomically<T>(work: () => T): T {
    return this.#db.transaction(work)();
  }

  /**
   * The suppression that silences this match, if any (and counts the hit). The host is who the
   * server knows sent the event: `agentId`, from its certificate, and `enrolledHost`, the name
   * that agent enrolled with (undefined when the fleet has no such agent), never the `host.name`
   * the event claims, which a host's root can set to another host's name. `read` gives a dotted
   * field of the event as text.
   */
  suppressedBy(ruleId: string, enrolledHost: string | undefined, agentId: string, read: (field: string) => string | undefined, now: number): string | undefined {
    if (this.#active === undefined || now >= this.#activeUntil) {
      this.#active = this.#suppressions.all(now);
      this.#activeUntil = this.#active.reduce((soonest, s) => Math.min(soonest, s.until), now + 60_000);
    }
    for (const s of this.#active) {
      if (s.rule_id !== '*' && s.rule_id !== ruleId) continue;
      // A suppression names its host by its enrolled name or by its agent id.
      if (s.host !== null && s.host !== agentId && (enrolledHost === undefined || s.host !== enrolledHost)) continue;
      if (s.field !== null) {
        if (read(s.field) !== s.value) continue;
      }
      this.#hit.run(s.id);
      return s.id;
    }
    return undefined;
  }

  /** Deletes alerts first raised before `before` (ms); returns how many. */
  /**
   * Deletes the alerts neither raised again nor changed since `before` (the server's clock: an
   * alert's own time is its event's, which a host whose clock was set back would make look old).
   */
  deleteOlderThan(before: number): number {
    return this.#db.prepare('DELETE FROM alerts WHERE updated < ?').run(before).changes;
  }
}

function toSuppression(row: SuppressionRow): Suppression {
  return { ...row, until: iso(row.until), created: iso(row.created) };
}

/** The same stored event: one event id from one agent. */
/** How far either side of an alert's first and last event `related` looks: six hours. */
export const RELATED_WINDOW_MS = 6 * 3_600_000;
/** The most alerts of the host `related` reads, newest first. */
export const RELATED_SCAN = 1_000;
/** The most related alerts given. */
export const MAX_RELATED = 50;

/** How another alert is related to one (see AlertStore.related). */
export type Relation = 'same_process' | 'upstream' | 'downstream';

export interface RelatedAlert {
  readonly id: string;
  readonly '@timestamp': string;
  readonly rule: { readonly id: string; readonly title: string; readonly severity: Severity };
  readonly status: AlertStatus;
  readonly message: string;
  /**
   * `same_process`: its event's process is this one's; `upstream`: its process started this
   * one's (the parent or an ancestor); `downstream`: this one's process started its.
   */
  readonly relation: Relation;
  /** The process the two share: the one both are about, or the ancestor (pid, entity id, name). */
  readonly process: { readonly entity_id: string; readonly pid?: number; readonly name?: string };
}

interface ProcessRef {
  readonly entity_id: string;
  readonly pid?: number;
  readonly name?: string;
}

/** The processes of an alert's events: those they are about, and their parents and ancestors. */
interface AlertProcesses {
  readonly acting: Map<string, ProcessRef>;
  readonly lineage: Map<string, ProcessRef>;
}

function processRef(value: unknown): ProcessRef | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const p = value as Record<string, unknown>;
  const id = p['entity_id'];
  if (typeof id !== 'string' || id.length === 0) return undefined;
  return { entity_id: id, ...(typeof p['pid'] === 'number' ? { pid: p['pid'] } : {}), ...(typeof p['name'] === 'string' ? { name: p['name'] } : {}) };
}

/** `into`: the processes of the alert's earlier events, which these add to (changed in place). */
function processesOf(events: readonly Readonly<Record<string, unknown>>[], into?: AlertProcesses): AlertProcesses {
  const acting = into?.acting ?? new Map<string, ProcessRef>();
  const lineage = into?.lineage ?? new Map<string, ProcessRef>();
  const add = (into: Map<string, ProcessRef>, ref: ProcessRef | undefined) => {
    if (ref !== undefined && !into.has(ref.entity_id)) into.set(ref.entity_id, ref);
  };
  for (const event of events) {
    const process = event['process'] as Record<string, unknown> | undefined;
    add(acting, processRef(process));
    if (typeof process === 'object' && process !== null) add(lineage, processRef(process['parent']));
    const ancestors = (event['hades'] as { ancestors?: unknown } | undefined)?.ancestors;
    if (Array.isArray(ancestors)) for (const ancestor of ancestors) add(lineage, processRef(ancestor));
  }
  return { acting, lineage };
}

/** An alert's processes as its `procs` column keeps them: `[entity id, pid, name]` each. */
function packProcesses(processes: AlertProcesses): string {
  const pack = (refs: Map<string, ProcessRef>) => [...refs.values()].map((r) => [r.entity_id, r.pid ?? null, r.name ?? null]);
  return JSON.stringify({ acting: pack(processes.acting), lineage: pack(processes.lineage) });
}

function unpackProcesses(text: string): AlertProcesses {
  const packed = JSON.parse(text) as { acting: [string, number | null, string | null][]; lineage: [string, number | null, string | null][] };
  const unpack = (list: [string, number | null, string | null][]) =>
    new Map(list.map(([entity, pid, name]): [string, ProcessRef] => [entity, { entity_id: entity, ...(pid === null ? {} : { pid }), ...(name === null ? {} : { name }) }]));
  return { acting: unpack(packed.acting), lineage: unpack(packed.lineage) };
}

/** How `theirs` is related to `own`, through which process, or undefined. */
function linkOf(own: AlertProcesses, theirs: AlertProcesses): { relation: Relation; process: ProcessRef } | undefined {
  for (const [id, ref] of theirs.acting) if (own.acting.has(id)) return { relation: 'same_process', process: ref };
  for (const [id, ref] of theirs.acting) if (own.lineage.has(id)) return { relation: 'upstream', process: ref };
  for (const [id, ref] of own.acting) if (theirs.lineage.has(id)) return { relation: 'downstream', process: ref };
  return undefined;
}

/**
 * Who an event is, as an alert's `kept` column lists it: its agent and its id, or null for an
 * event without an id (never the same as another).
 */
function identity(event: Readonly<Record<string, unknown>>): string | null {
  const id = (event['event'] as { id?: unknown } | undefined)?.id;
  const agent = (event['agent'] as { id?: unknown } | undefined)?.id;
  return typeof id === 'string' ? `${typeof agent === 'string' ? agent : ''}\u0000${id}` : null;
}
