/**
 * API tokens: bearer secrets for the REST API and the CLI, each with a role. A token reads
 * `hadesapi_<id>_<secret>` (16 hex digits, then 32 random bytes in base64url); only the
 * SHA-256 of the secret is stored, compared in constant time. Roles are ordered:
 * admin > analyst > read-only, and a request needing a role accepts any higher one.
 *
 * On the first start `ensureBootstrapAdmin` creates an admin token and writes it, mode 0600, to
 * a file of the data folder: the local deployment's credentials, which the CLI reads.
 */
import { readOwnFile } from '../../runtime/regular-file.js';
import { statSync } from 'node:fs';
import path from 'node:path';
import { HadesError } from '../../common/errors.js';
import { writePrivateFile } from '../../runtime/private-file.js';
import { migrate, type Db } from '../db.js';
import { isoOrUndefined, isoTime, mintToken, parseToken, secretMatches, type Clock } from './tokens.js';
import { makeFolders } from '../../runtime/folders.js';

export const ROLES = ['read-only', 'analyst', 'admin'] as const;
export type Role = (typeof ROLES)[number];
const RANK: Readonly<Record<Role, number>> = { 'read-only': 0, analyst: 1, admin: 2 };

export const API_TOKEN_PREFIX = 'hadesapi';
/** last_used_at is written at most this often per token, not on every request. */
const LAST_USED_EVERY_MS = 60_000;

const MIGRATIONS = [
  `CREATE TABLE api_tokens (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     role TEXT NOT NULL CHECK (role IN ('admin', 'analyst', 'read-only')),
     secret_sha256 BLOB NOT NULL,
     created_by TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     last_used_at INTEGER,
     revoked_at INTEGER
   ) STRICT`,
  // A token may be made for a while only (a contractor's, a script's for one job).
  `ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER`,
];

interface ApiTokenRow {
  id: string;
  name: string;
  role: Role;
  secret_sha256: Buffer;
  created_by: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
  expires_at: number | null;
}

/** Who an authenticated request comes from. */
export interface Principal {
  readonly id: string;
  readonly name: string;
  readonly role: Role;
}

/** A token as listed: never its secret. */
export interface ApiTokenInfo extends Principal {
  readonly createdBy: string;
  readonly createdAt: string;
  readonly lastUsedAt?: string;
  readonly revokedAt?: string;
  /** When it stops being accepted, for a token made with a lifetime. */
  readonly expiresAt?: string;
}

export interface BootstrapAdmin {
  readonly token: string;
  readonly id: string;
  /** True when this start made the token (first start, or the file's token was unusable). */
  readonly created: boolean;
  /** Why a new token replaced the file's, when one did. */
  readonly reason?: string;
}

export const isRole = (value: unknown): value is Role => typeof value === 'string' && Object.hasOwn(RANK, value);

/** Whether `principal`'s role is `needed` or higher. */
export const hasRole = (principal: Principal, needed: Role): boolean => RANK[principal.role] >= RANK[needed];

/** Throws HADES_ERR_API_FORBIDDEN, naming the role needed, unless `principal` has it or higher. */
export function authorize(principal: Principal, needed: Role): void {
  if (!hasRole(principal, needed)) {
    throw new HadesError('HADES_ERR_API_FORBIDDEN', `this request needs the role ${needed}; the token ${principal.id} has ${principal.role}`, {
      details: { needed, role: principal.role },
    });
  }
}

/**
 * Why a token was refused, for the server's log (the answer says it in its message): no token,
 * not of the form of an API token, an id no token has, a known id with another secret, revoked,
 * expired. `not_bearer` is the API's own: an Authorization header of another scheme.
 */
export const AUTH_FAILURES = ['missing', 'not_bearer', 'malformed', 'unknown', 'bad_secret', 'revoked', 'expired'] as const;
export type AuthFailure = (typeof AUTH_FAILURES)[number];

/** HADES_ERR_API_UNAUTHENTICATED with why, and the id the token claimed (its public part) when it had the form of one. */
export class Unauthenticated extends HadesError {
  constructor(
    message: string,
    readonly reason: AuthFailure,
    readonly claimedId?: string,
  ) {
    super('HADES_ERR_API_UNAUTHENTICATED', message);
  }
}

const unauthenticated = (message: string, reason: AuthFailure, claimedId?: string): HadesError => new Unauthenticated(message, reason, claimedId);

export class ApiTokens {
  readonly #db: Db;
  readonly #now: Clock;
  readonly #byId;

  constructor(db: Db, options: { now?: Clock } = {}) {
    migrate(db, 'api_tokens', MIGRATIONS);
    this.#db = db;
    this.#now = options.now ?? Date.now;
    this.#byId = db.prepare<[string], ApiTokenRow>('SELECT * FROM api_tokens WHERE id = ?');
  }

  /** Creates a token; the returned `token` is shown once and cannot be recovered later. */
  create(request: { name: string; role: Role; createdBy: string; ttlMs?: number }): { token: string; id: string; expiresAt?: string } {
    const name = request.name.trim();
    // Checked here as well as by the route's schema, which counts characters differently (code
    // points, not UTF-16 units) and lets control characters through.
    if (name === '' || name.length > 128 || /[\p{Cc}\p{Cs}]/u.test(name)) throw new HadesError('HADES_ERR_API_INVALID_REQUEST', 'a token name is 1 to 128 printable characters');
    if (!isRole(request.role)) throw new HadesError('HADES_ERR_INTERNAL', `unknown role ${JSON.stringify(request.role)}`);
    if (request.createdBy.trim() === '') throw new HadesError('HADES_ERR_INTERNAL', 'a token needs its creator');
    if (request.ttlMs !== undefined && !(Number.isFinite(request.ttlMs) && request.ttlMs > 0)) throw new HadesError('HADES_ERR_INTERNAL', 'a token lifetime is a positive number of milliseconds');
    const minted = mintToken(API_TOKEN_PREFIX);
    const now = this.#now();
    const expiresAt = request.ttlMs === undefined ? null : now + request.ttlMs;
    this.#db
      .prepare('INSERT INTO api_tokens (id, name, role, secret_sha256, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(minted.id, name, request.role, minted.hash, request.createdBy, now, expiresAt);
    return { token: minted.token, id: minted.id, ...(expiresAt === null ? {} : { expiresAt: isoTime(expiresAt) }) };
  }

  /**
   * The principal of a request, from its `Authorization` header value (`Bearer <token>`) or the
   * bare token. HADES_ERR_API_UNAUTHENTICATED (an `Unauthenticated`, with its reason) when it is missing, malformed, unknown, revoked or expired.
   */
  authenticate(bearer: string | undefined): Principal {
    if (bearer === undefined || bearer.trim() === '') throw unauthenticated('the request carries no API token', 'missing');
    const token = bearer.trim().replace(/^Bearer\s+/i, '');
    const parsed = parseToken(API_TOKEN_PREFIX, token);
    if (parsed === undefined) throw unauthenticated('the API token is malformed', 'malformed');
    const row = this.#byId.get(parsed.id);
    // One message for both: whether the id exists is not told to the caller (the log says it).
    if (row === undefined || !secretMatches(parsed.secret, row.secret_sha256)) throw unauthenticated(`the API token ${parsed.id} is unknown`, row === undefined ? 'unknown' : 'bad_secret', parsed.id);
    if (row.revoked_at !== null) throw unauthenticated(`the API token ${row.id} was revoked`, 'revoked', row.id);
    const now = this.#now();
    if (row.expires_at !== null && now >= row.expires_at) throw unauthenticated(`the API token ${row.id} expired at ${isoTime(row.expires_at)}`, 'expired', row.id);
    if (row.last_used_at === null || now - row.last_used_at >= LAST_USED_EVERY_MS) {
      this.#db.prepare('UPDATE api_tokens SET last_used_at = ? WHERE id = ?').run(now, row.id);
    }
    return { id: row.id, name: row.name, role: row.role };
  }

  /** See the module function `authorize`. */
  authorize(principal: Principal, needed: Role): void {
    authorize(principal, needed);
  }

  list(): ApiTokenInfo[] {
    return this.#db.prepare<[], ApiTokenRow>('SELECT * FROM api_tokens ORDER BY created_at, id').all().map(infoOf);
  }

  get(id: string): ApiTokenInfo | undefined {
    const row = this.#byId.get(id);
    return row === undefined ? undefined : infoOf(row);
  }

  /** Revokes a token; false when there is no such token or it was revoked already. */
  revoke(id: string): boolean {
    return this.#db.prepare('UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(this.#now(), id).changes === 1;
  }

  /**
   * The local admin token kept in `file` (mode 0600): read back when it still authenticates as
   * an admin, otherwise (first start, a reset database, a revoked token) a new one is created and
   * written. A file that others could read is treated as leaked: its token is revoked and
   * replaced. Returns the token, its id, whether it was made now, and why.
   */
  bootstrapAdmin(file: string): BootstrapAdmin {
    let reason: string | undefined;
    const existing = readTokenFile(file);
    if (existing !== undefined) {
      const parsed = parseToken(API_TOKEN_PREFIX, existing.token);
      if (existing.exposed) {
        if (parsed !== undefined) this.revoke(parsed.id);
        reason = `${file} was readable by others (mode ${existing.mode.toString(8).padStart(4, '0')}); its token was revoked`;
      } else {
        try {
          const principal = this.authenticate(existing.token);
          if (principal.role === 'admin') return { token: existing.token, id: principal.id, created: false };
          reason = `the token in ${file} is not an admin token`;
        } catch (error) {
          reason = (error as Error).message;
        }
      }
    }
    const made = this.create({ name: 'bootstrap-admin', role: 'admin', createdBy: 'system' });
    writeTokenFile(file, made.token);
    return reason === undefined ? { ...made, created: true } : { ...made, created: true, reason };
  }
}

function infoOf(row: ApiTokenRow): ApiTokenInfo {
  const lastUsedAt = isoOrUndefined(row.last_used_at);
  const revokedAt = isoOrUndefined(row.revoked_at);
  const expiresAt = isoOrUndefined(row.expires_at);
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    createdBy: row.created_by,
    createdAt: isoTime(row.created_at),
    ...(lastUsedAt === undefined ? {} : { lastUsedAt }),
    ...(revokedAt === undefined ? {} : { revokedAt }),
    ...(expiresAt === undefined ? {} : { expiresAt }),
  };
}

const fileError = (file: string, error: unknown): HadesError =>
  new HadesError('HADES_ERR_STORE_OPEN', `cannot use the admin token file ${file}: ${(error as Error).message}`, { cause: error });

function readTokenFile(file: string): { token: string; mode: number; exposed: boolean } | undefined {
  try {
    const mode = statSync(file).mode & 0o777;
    return { token: readOwnFile(file).trim(), mode, exposed: (mode & 0o077) !== 0 };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fileError(file, error);
  }
}

/** Writes the token atomically, mode 0600 from the start (never readable by others, even briefly). */
function writeTokenFile(file: string, token: string): void {
  try {
    makeFolders(path.dirname(file), 0o700);
    writePrivateFile(file, `${token}\n`);
  } catch (error) {
    throw fileError(file, error);
  }
}
