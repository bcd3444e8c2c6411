/**
 * Enrollment tokens: one-time, expiring secrets with which an agent asks for its certificate.
 * A token reads `hades1_<id>_<secret>`: the id (16 hex digits) finds the row, the secret (32
 * random bytes, base64url) proves possession. Only the SHA-256 of the secret is stored, and it
 * is compared in constant time; a 256-bit random secret needs no salt or slow hash. Consuming a
 * token is one conditional UPDATE in an IMMEDIATE transaction, so of two concurrent uses (even
 * from two connections or processes) exactly one wins.
 *
 * The secret-token helpers are shared with the API tokens (api-tokens.ts).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { HadesError } from '../../common/errors.js';
import { migrate, type Db } from '../db.js';

/** Milliseconds since the epoch; injected by tests. */
export type Clock = () => number;

// --- secret tokens (shared with api-tokens.ts) ------------------------------------------------

const SECRET_BYTES = 32;
const ID_BYTES = 8;

export interface MintedToken {
  readonly token: string;
  readonly id: string;
  /** SHA-256 of the secret part: what is stored. */
  readonly hash: Buffer;
}

export const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/** Makes `<prefix>_<id>_<secret>` with a fresh random id and secret. */
export function mintToken(prefix: string): MintedToken {
  const id = randomBytes(ID_BYTES).toString('hex');
  const secret = randomBytes(SECRET_BYTES).toString('base64url');
  return { token: `${prefix}_${id}_${secret}`, id, hash: sha256(secret) };
}

/** Splits a token into id and secret, or undefined when it is not of the form `mintToken` makes. */
export function parseToken(prefix: string, token: unknown): { id: string; secret: string } | undefined {
  if (typeof token !== 'string' || token.length > 200) return undefined;
  const head = `${prefix}_`;
  if (!token.startsWith(head)) return undefined;
  const match = /^([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/.exec(token.slice(head.length));
  if (match === null) return undefined;
  return { id: match[1] ?? '', secret: match[2] ?? '' };
}

/** Whether `secret` hashes to `hash`, in time independent of where they differ. */
export function secretMatches(secret: string, hash: Uint8Array): boolean {
  const candidate = sha256(secret);
  return hash.length === candidate.length && timingSafeEqual(candidate, hash);
}

/** Hides the secret part of every Hades token in a text (ids stay, for the audit trail). */
export function redactTokens(text: string): string {
  return text.replace(/\b(hades1|hadesapi)_([0-9a-f]{16})_[A-Za-z0-9_-]+/g, '$1_$2_[REDACTED]');
}

export const isoTime = (ms: number): string => new Date(ms).toISOString();
export const isoOrUndefined = (ms: number | null): string | undefined => (ms === null ? undefined : isoTime(ms));

/** Names of groups, tokens and the like: short, printable, safe in paths and logs. */
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

// --- enrollment tokens ------------------------------------------------------------------------

export const ENROLL_TOKEN_PREFIX = 'hades1';
/** The longest life an enrollment token may have: 30 days. */
export const MAX_ENROLL_TTL_MS = 30 * 86_400_000;

const MIGRATIONS = [
  `CREATE TABLE enrollment_tokens (
     id TEXT PRIMARY KEY,
     secret_sha256 BLOB NOT NULL,
     group_name TEXT,
     created_by TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     used_at INTEGER,
     used_by TEXT,
     revoked_at INTEGER
   ) STRICT`,
];

interface TokenRow {
  id: string;
  secret_sha256: Buffer;
  group_name: string | null;
  created_by: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
  used_by: string | null;
  revoked_at: number | null;
}

export type EnrollmentTokenState = 'active' | 'used' | 'expired' | 'revoked';

/** A token as listed: never its secret. */
export interface EnrollmentTokenInfo {
  readonly id: string;
  readonly group?: string;
  readonly createdBy: string;
  readonly createdAt: string;
  readonly expiresAt: string;
  readonly usedAt?: string;
  /** What `consume` was told used it (the agent id). */
  readonly usedBy?: string;
  readonly revokedAt?: string;
  readonly state: EnrollmentTokenState;
}

export interface CreatedEnrollmentToken {
  /** The whole token, shown once: it cannot be recovered later. */
  readonly token: string;
  readonly id: string;
  readonly expiresAt: string;
}

export interface ConsumedToken {
  readonly tokenId: string;
  readonly group?: string;
}

export class EnrollmentTokens {
  readonly #db: Db;
  readonly #now: Clock;
  readonly #byId;
  readonly #insert;
  readonly #use;
  readonly #consume;

  constructor(db: Db, options: { now?: Clock } = {}) {
    migrate(db, 'tokens', MIGRATIONS);
    this.#db = db;
    this.#now = options.now ?? Date.now;
    this.#byId = db.prepare<[string], TokenRow>('SELECT * FROM enrollment_tokens WHERE id = ?');
    this.#insert = db.prepare(
      'INSERT INTO enrollment_tokens (id, secret_sha256, group_name, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)',
    );
    this.#use = db.prepare('UPDATE enrollment_tokens SET used_at = ?, used_by = ? WHERE id = ? AND used_at IS NULL AND revoked_at IS NULL');
    this.#consume = db.transaction((token: string, usedBy: string | null): ConsumedToken => {
      const row = this.#valid(token);
      if (this.#use.run(this.#now(), usedBy, row.id).changes !== 1) throw used(row.id);
      return result(row);
    });
  }

  /** Creates a token that enrolls one agent within `ttlMs`, into `group` when given. */
  create(request: { ttlMs: number; group?: string; createdBy: string }): CreatedEnrollmentToken {
    const { ttlMs, group, createdBy } = request;
    if (!Number.isFinite(ttlMs) || ttlMs < 1000 || ttlMs > MAX_ENROLL_TTL_MS) {
      throw new HadesError('HADES_ERR_INTERNAL', `an enrollment token lives 1 s to 30 days, not ${ttlMs} ms`);
    }
    if (group !== undefined && !NAME_RE.test(group)) throw new HadesError('HADES_ERR_INTERNAL', `invalid group name ${JSON.stringify(group)}`);
    if (createdBy.trim() === '') throw new HadesError('HADES_ERR_INTERNAL', 'an enrollment token needs its creator');
    const minted = mintToken(ENROLL_TOKEN_PREFIX);
    const now = this.#now();
    const expiresAt = now + Math.round(ttlMs);
    this.#insert.run(minted.id, minted.hash, group ?? null, createdBy, now, expiresAt);
    return { token: minted.token, id: minted.id, expiresAt: isoTime(expiresAt) };
  }

  /**
   * Checks a token without using it up: the gateway calls it before the costlier work of an
   * enrollment (checking and signing the certificate request), then `consume`s it.
   */
  check(token: string): ConsumedToken {
    return result(this.#valid(token));
  }

  /**
   * Uses a token up, atomically: a second use fails with HADES_ERR_ENROLL_TOKEN_USED. `usedBy`
   * (the new agent's id) is kept for the listing. Call it inside the transaction that records
   * the agent, so that a failed enrollment does not burn the token.
   */
  consume(token: string, usedBy?: string): ConsumedToken {
    // IMMEDIATE takes the write lock before reading: a concurrent consumer on another
    // connection waits, then sees the token used. Nested in an outer transaction, it is a
    // savepoint of that one (which holds or takes the lock itself).
    return this.#consume.immediate(token, usedBy ?? null);
  }

  list(): EnrollmentTokenInfo[] {
    const now = this.#now();
    return this.#db
      .prepare<[], TokenRow>('SELECT * FROM enrollment_tokens ORDER BY created_at DESC, id')
      .all()
      .map((row) => info(row, now));
  }

  get(id: string): EnrollmentTokenInfo | undefined {
    const row = this.#byId.get(id);
    return row === undefined ? undefined : info(row, this.#now());
  }

  /** Revokes a token that was not used yet; false when there is no such token, or it was used. */
  revoke(id: string): boolean {
    return this.#db.prepare('UPDATE enrollment_tokens SET revoked_at = ? WHERE id = ? AND used_at IS NULL AND revoked_at IS NULL').run(this.#now(), id).changes === 1;
  }

  /** Deletes tokens that expired or were used or revoked more than `olderThanMs` ago. */
  prune(olderThanMs: number): number {
    const before = this.#now() - olderThanMs;
    return this.#db
      .prepare('DELETE FROM enrollment_tokens WHERE expires_at < ? OR used_at < ? OR revoked_at < ?')
      .run(before, before, before).changes;
  }

  #valid(token: string): TokenRow {
    const parsed = parseToken(ENROLL_TOKEN_PREFIX, token);
    if (parsed === undefined) throw new HadesError('HADES_ERR_ENROLL_TOKEN_INVALID', 'the enrollment token is malformed');
    const row = this.#byId.get(parsed.id);
    // The same answer for an unknown id and a wrong secret; the hash compare is constant-time.
    if (row === undefined || !secretMatches(parsed.secret, row.secret_sha256)) {
      throw new HadesError('HADES_ERR_ENROLL_TOKEN_INVALID', `the enrollment token ${parsed.id} is unknown`);
    }
    if (row.revoked_at !== null) throw new HadesError('HADES_ERR_ENROLL_TOKEN_INVALID', `the enrollment token ${row.id} was revoked`);
    if (row.used_at !== null) throw used(row.id);
    if (row.expires_at <= this.#now()) {
      throw new HadesError('HADES_ERR_ENROLL_TOKEN_EXPIRED', `the enrollment token ${row.id} expired at ${isoTime(row.expires_at)}`);
    }
    return row;
  }
}

const used = (id: string): HadesError => new HadesError('HADES_ERR_ENROLL_TOKEN_USED', `the enrollment token ${id} was already used`);

const result = (row: TokenRow): ConsumedToken => (row.group_name === null ? { tokenId: row.id } : { tokenId: row.id, group: row.group_name });

function info(row: TokenRow, now: number): EnrollmentTokenInfo {
  const state: EnrollmentTokenState =
    row.revoked_at !== null ? 'revoked' : row.used_at !== null ? 'used' : row.expires_at <= now ? 'expired' : 'active';
  return {
    id: row.id,
    ...(row.group_name === null ? {} : { group: row.group_name }),
    createdBy: row.created_by,
    createdAt: isoTime(row.created_at),
    expiresAt: isoTime(row.expires_at),
    ...(row.used_at === null ? {} : { usedAt: isoTime(row.used_at) }),
    ...(row.used_by === null ? {} : { usedBy: row.used_by }),
    ...(row.revoked_at === null ? {} : { revokedAt: isoTime(row.revoked_at) }),
    state,
  };
}
