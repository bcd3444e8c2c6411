/**
 * The audit log: one row per administrative action (token created, agent revoked, group
 * configuration changed, ...), append-only. Secrets never reach it: detail fields named like
 * secrets are replaced by `[REDACTED]` at any depth, and the secret part of any Hades token or
 * PEM private key found in a text is cut out, so that a caller passing a whole request does not
 * leak the token it created.
 */
import { HadesError } from '../../common/errors.js';
import { migrate, type Db } from '../db.js';
import { isoTime, redactTokens, type Clock } from './tokens.js';

const MIGRATIONS = [
  `CREATE TABLE audit_log (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     at INTEGER NOT NULL,
     actor TEXT NOT NULL,
     action TEXT NOT NULL,
     target TEXT,
     details TEXT
   ) STRICT;
   CREATE INDEX audit_log_at ON audit_log (at);`,
  // Two API tokens may share a name: the id of the one that acted tells them apart.
  `ALTER TABLE audit_log ADD COLUMN actor_id TEXT;`,
  // An alert's triage history is read by its target (GET /api/v1/alerts/ID).
  'CREATE INDEX audit_log_target ON audit_log (target, id);',
];

export interface AuditRecord {
  /** Who: an API token's name, `cli`, `system`. */
  readonly actor: string;
  /** The acting API token's id, when a token acted (names may repeat). */
  readonly actor_id?: string;
  /** What, as `object.verb`: `enroll_token.create`, `agent.revoke`, `group.config`. */
  readonly action: string;
  /** On what: an agent id, a token id, a group name. */
  readonly target?: string;
  readonly details?: Readonly<Record<string, unknown>>;
}

export interface AuditEntry extends AuditRecord {
  readonly id: number;
  readonly at: string;
}

interface AuditRow {
  id: number;
  at: number;
  actor: string;
  actor_id: string | null;
  action: string;
  target: string | null;
  details: string | null;
}

export const REDACTED = '[REDACTED]';
const MAX_DETAILS_BYTES = 16 * 1024;
const MAX_DEPTH = 8;

/** Field names whose values are secrets whatever they hold. */
const SECRET_KEY = /(secret|password|passphrase|authorization|cookie|credential|private_?key|api_?key)|^(token|bearer|key|csr_?key)$|[a-z0-9_](token|Token)$/i;
/** Names that end in "token" but hold no secret. */
const NOT_SECRET_KEY = /^(token_?id|token_?ids|token_?name)$/i;
const PEM_PRIVATE_KEY = /-----BEGIN ([A-Z ]*)PRIVATE KEY-----[\s\S]*?(-----END \1PRIVATE KEY-----|$)/g;

const scrubText = (text: string): string => redactTokens(text).replace(PEM_PRIVATE_KEY, REDACTED);

/** A copy of `value` with secrets replaced (see the module comment). */
export function redactSecrets(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return scrubText(value);
  if (value === null || typeof value !== 'object') return typeof value === 'bigint' ? value.toString() : value;
  if (depth >= MAX_DEPTH) return '[too deep]';
  if (Array.isArray(value)) return value.map((item) => redactSecrets(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    out[key] = SECRET_KEY.test(key) && !NOT_SECRET_KEY.test(key) ? REDACTED : redactSecrets(item, depth + 1);
  }
  return out;
}

const checkText = (value: unknown, what: string, max: number): string => {
  if (typeof value !== 'string' || value.trim() === '' || value.length > max) throw new HadesError('HADES_ERR_INTERNAL', `an audit record needs ${what} (1 to ${max} characters)`);
  return value;
};

export class AuditLog {
  readonly #db: Db;
  readonly #now: Clock;
  readonly #insert;

  constructor(db: Db, options: { now?: Clock } = {}) {
    migrate(db, 'audit', MIGRATIONS);
    this.#db = db;
    this.#now = options.now ?? Date.now;
    this.#insert = db.prepare('INSERT INTO audit_log (at, actor, actor_id, action, target, details) VALUES (?, ?, ?, ?, ?, ?)');
  }

  /** Appends a record (secrets redacted; details over 16 KiB of JSON are replaced by a note). */
  record(entry: AuditRecord): AuditEntry {
    const actor = scrubText(checkText(entry.actor, 'an actor', 256));
    const actorId = entry.actor_id === undefined ? null : checkText(entry.actor_id, 'an actor id', 128);
    const action = checkText(entry.action, 'an action', 128);
    const target = entry.target === undefined ? undefined : scrubText(checkText(entry.target, 'a target', 1024));
    let details: Record<string, unknown> | undefined;
    if (entry.details !== undefined) {
      details = redactSecrets(entry.details) as Record<string, unknown>;
      const size = Buffer.byteLength(JSON.stringify(details));
      if (size > MAX_DETAILS_BYTES) details = { truncated: true, bytes: size };
    }
    const at = this.#now();
    const id = Number(this.#insert.run(at, actor, actorId, action, target ?? null, details === undefined ? null : JSON.stringify(details)).lastInsertRowid);
    return entryOf({ id, at, actor, actor_id: actorId, action, target: target ?? null, details: details === undefined ? null : JSON.stringify(details) });
  }

  /**
   * Records, newest first: those at or after `since` (a Date, ISO text or milliseconds), before
   * the entry `beforeId` (to page back), by `actor`, `action` and `target` when given; at most
   * `limit` (1 to 10 000).
   */
  list(query: { since?: Date | string | number; beforeId?: number; actor?: string; action?: string; target?: string; limit: number }): AuditEntry[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (query.since !== undefined) {
      const since = query.since instanceof Date ? query.since.getTime() : typeof query.since === 'number' ? query.since : Date.parse(query.since);
      if (!Number.isFinite(since)) throw new HadesError('HADES_ERR_STORE_QUERY', `invalid time ${String(query.since)} for the audit log`);
      where.push('at >= ?');
      args.push(since);
    }
    if (query.beforeId !== undefined) {
      where.push('id < ?');
      args.push(query.beforeId);
    }
    if (query.actor !== undefined) {
      where.push('actor = ?');
      args.push(query.actor);
    }
    if (query.action !== undefined) {
      where.push('action = ?');
      args.push(query.action);
    }
    if (query.target !== undefined) {
      where.push('target = ?');
      args.push(query.target);
    }
    const limit = Math.max(1, Math.min(10_000, Math.trunc(query.limit)));
    args.push(limit);
    const sql = `SELECT * FROM audit_log ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
    return this.#db.prepare<(string | number)[], AuditRow>(sql).all(...args).map(entryOf);
  }
}

function entryOf(row: AuditRow): AuditEntry {
  return {
    id: row.id,
    at: isoTime(row.at),
    actor: row.actor,
    ...(row.actor_id === null ? {} : { actor_id: row.actor_id }),
    action: row.action,
    ...(row.target === null ? {} : { target: row.target }),
    ...(row.details === null ? {} : { details: JSON.parse(row.details) as Record<string, unknown> }),
  };
}
