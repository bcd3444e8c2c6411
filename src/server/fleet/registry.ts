/**
 * The fleet registry: enrolled agents, their groups' configuration, and the tasks the server
 * asks of them. An agent is known by a random id (`ag_` + 16 hex digits), which is also the
 * identity in its client certificate; the registry keeps the fingerprint of the one certificate
 * in use, and `authorize` (called by the gateway on every connection, after
 * `Pki.agentIdentity`) refuses any other certificate, and every certificate of a revoked agent.
 * Revocation therefore needs no CRL: the server is the only party that checks agent
 * certificates.
 *
 * Renewal: a certificate issued on an agent's request is kept as its next certificate
 * (`setNextCertificate`) until the agent first connects with it; `authorize` then makes it the
 * one in use, and the certificate before stops working. Until then both are accepted, so an
 * agent that lost the answer, or has not reconnected yet, is not locked out.
 *
 * Times are stored as milliseconds since the epoch and returned as ISO 8601 strings.
 */
import { isIP } from 'node:net';
import { randomBytes } from 'node:crypto';
import { HadesError, toHadesError } from '../../common/errors.js';
import { nestsDeeperThan } from '../../common/json-depth.js';
import { TASK_KINDS, type TaskKind } from '../../common/tasks.js';
import { migrate, type Db } from '../db.js';
import { NAME_RE, isoOrUndefined, isoTime, type Clock } from './tokens.js';

const MIGRATIONS = [
  `CREATE TABLE agents (
     id TEXT PRIMARY KEY,
     hostname TEXT NOT NULL,
     addresses TEXT NOT NULL,
     os TEXT NOT NULL,
     kernel TEXT NOT NULL,
     version TEXT NOT NULL,
     groups_json TEXT NOT NULL,
     tags TEXT NOT NULL,
     cert_fingerprint TEXT NOT NULL UNIQUE,
     cert_serial TEXT NOT NULL,
     cert_not_after INTEGER,
     token_id TEXT,
     enrolled_at INTEGER NOT NULL,
     last_seen INTEGER,
     heartbeat TEXT,
     online INTEGER NOT NULL DEFAULT 0,
     revoked_at INTEGER
   ) STRICT;
   CREATE INDEX agents_hostname ON agents (hostname);
   CREATE TABLE agent_groups (
     name TEXT PRIMARY KEY,
     yaml TEXT NOT NULL,
     version INTEGER NOT NULL,
     updated_at INTEGER NOT NULL
   ) STRICT;
   CREATE TABLE tasks (
     id TEXT PRIMARY KEY,
     agent_id TEXT NOT NULL REFERENCES agents (id),
     kind TEXT NOT NULL,
     params TEXT NOT NULL,
     status TEXT NOT NULL,
     result TEXT,
     created_by TEXT,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     deadline INTEGER NOT NULL
   ) STRICT;
   CREATE INDEX tasks_agent_status ON tasks (agent_id, status);
   CREATE INDEX tasks_status_deadline ON tasks (status, deadline);`,
  // Certificate renewal: the next certificate, issued but not yet used; when the one in use
  // replaced an earlier one; when the server asked the agent to renew.
  `ALTER TABLE agents ADD COLUMN next_cert_fingerprint TEXT;
   ALTER TABLE agents ADD COLUMN next_cert_serial TEXT;
   ALTER TABLE agents ADD COLUMN next_cert_not_after INTEGER;
   ALTER TABLE agents ADD COLUMN next_cert_issued_at INTEGER;
   ALTER TABLE agents ADD COLUMN cert_renewed_at INTEGER;
   ALTER TABLE agents ADD COLUMN renew_requested_at INTEGER;
   CREATE UNIQUE INDEX agents_next_cert_fingerprint ON agents (next_cert_fingerprint);`,
  // The host name the agent enrolled with, which its hellos do not change (they change
  // `hostname`): what host-scoped suppressions match, so that a host's root cannot take another
  // host's name to be silenced by that host's suppressions. Agents enrolled before: the name
  // they had then, the best known.
  `ALTER TABLE agents ADD COLUMN enrolled_hostname TEXT NOT NULL DEFAULT '';
   UPDATE agents SET enrolled_hostname = hostname;`,
  // CA rotation: the SHA-256 of the CA that issued the certificate in use and the next one.
  // NULL for certificates issued before it was recorded: by the only CA there was then
  // (`assignCa` records it before a rotation starts).
  `ALTER TABLE agents ADD COLUMN cert_ca TEXT;
   ALTER TABLE agents ADD COLUMN next_cert_ca TEXT;
   CREATE INDEX agents_cert_ca ON agents (cert_ca);`,
  // A renewal asked without delay (`hades agents renew --now`): 1 until the agent renews.
  `ALTER TABLE agents ADD COLUMN renew_immediately INTEGER NOT NULL DEFAULT 0;`,
  // The last version of a group configuration that was removed: set again, it goes on from
  // there, so that a version (which agents report in their heartbeats) names one text only.
  `CREATE TABLE agent_group_versions (name TEXT PRIMARY KEY, last_version INTEGER NOT NULL);`,
];

export { TASK_KINDS, type TaskKind };
export const TASK_STATUSES = ['pending', 'sent', 'done', 'failed', 'expired'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** What an agent says about itself when it enrolls. */
export interface AgentEnrollInfo {
  /** The agent's id, unless `AgentCertInfo.agentId` gives it. */
  readonly id?: string;
  readonly hostname: string;
  readonly addresses: readonly string[];
  readonly os: string;
  readonly kernel: string;
  readonly version: string;
  /** The group to join (the gateway gives the enrollment token's, when it names one); `default` otherwise. */
  readonly group?: string;
}

/** The certificate issued to the agent (from `Pki.signAgentCsr`, with the id it was issued to). */
export interface AgentCertInfo {
  /** The id the certificate was issued to, unless `AgentEnrollInfo.id` gives it. */
  readonly agentId?: string;
  readonly fingerprint: string;
  readonly serial: string;
  readonly notAfter?: string;
  /** SHA-256 of the CA that issued it (Pki's IssuedCertificate.caSha256). */
  readonly caSha256?: string;
  /** The enrollment token used, for the record. */
  readonly tokenId?: string;
}

/** A certificate issued to an agent on renewal, not used yet. */
export interface NextCertificate {
  readonly fingerprint: string;
  readonly serial: string;
  readonly notAfter?: string;
  readonly issuedAt: string;
}

/** The last heartbeat: plugin health, resource use, drop counters, as the agent reported them. */
export type AgentHealth = Readonly<Record<string, unknown>>;

/** What hostOf() gives: the name the agent last said, the one it enrolled with, its addresses. */
export interface AgentHost {
  readonly hostname: string;
  readonly enrolledHostname: string;
  readonly addresses: string[];
}

export interface Agent {
  readonly id: string;
  /** As the agent last said (its hello at each connection). */
  readonly hostname: string;
  /** The host name it enrolled with (an admin's enrollment token let it in); hellos do not change it. */
  readonly enrolledHostname: string;
  readonly addresses: readonly string[];
  readonly os: string;
  readonly kernel: string;
  readonly version: string;
  readonly groups: readonly string[];
  readonly tags: Readonly<Record<string, string>>;
  readonly certFingerprint: string;
  readonly certSerial: string;
  readonly certNotAfter?: string;
  /** SHA-256 of the CA that issued the certificate in use, when recorded (see `assignCa`). */
  readonly certCa?: string;
  /** When the certificate in use replaced an earlier one (its first connection after a renewal). */
  readonly certRenewedAt?: string;
  /** Issued on renewal, accepted too; the agent's first connection with it makes it the one in use. */
  readonly nextCert?: NextCertificate;
  /** When the server asked the agent to renew (cleared when it does). */
  readonly renewRequestedAt?: string;
  /** The renewal was asked without delay (`renewRequestedAt` is set too). */
  readonly renewImmediately?: true;
  readonly tokenId?: string;
  readonly enrolledAt: string;
  readonly lastSeen?: string;
  readonly lastHeartbeat?: AgentHealth;
  readonly online: boolean;
  readonly revokedAt?: string;
}

export interface GroupConfig {
  readonly name: string;
  /** The group's agent configuration, YAML text as given. */
  readonly yaml: string;
  /** 1 for the first configuration, then one more at each change: agents report what they run. */
  readonly version: number;
  readonly updatedAt: string;
}

/** A group as listed: its members (revoked agents left out), and its configuration's version when it has one. */
export interface GroupSummary {
  readonly name: string;
  readonly agents: number;
  readonly version?: number;
  readonly updatedAt?: string;
}

/** What an agent may update about itself on each connection (its hello). */
export interface AgentHello {
  readonly hostname?: string;
  readonly addresses?: readonly string[];
  readonly os?: string;
  readonly kernel?: string;
  readonly version?: string;
}

export interface Task {
  readonly id: string;
  readonly agentId: string;
  readonly kind: TaskKind;
  readonly params: Readonly<Record<string, unknown>>;
  readonly status: TaskStatus;
  readonly result?: unknown;
  /** The result was left out of a list whose budget it would pass (getTask has it). */
  readonly resultOmitted?: true;
  readonly createdBy?: string;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly deadline: string;
}

interface AgentRow {
  id: string;
  hostname: string;
  enrolled_hostname: string;
  addresses: string;
  os: string;
  kernel: string;
  version: string;
  groups_json: string;
  tags: string;
  cert_fingerprint: string;
  cert_serial: string;
  cert_not_after: number | null;
  next_cert_fingerprint: string | null;
  next_cert_serial: string | null;
  next_cert_not_after: number | null;
  next_cert_issued_at: number | null;
  cert_ca: string | null;
  next_cert_ca: string | null;
  cert_renewed_at: number | null;
  renew_requested_at: number | null;
  renew_immediately: number;
  token_id: string | null;
  enrolled_at: number;
  last_seen: number | null;
  heartbeat: string | null;
  online: number;
  revoked_at: number | null;
}

interface TaskRow {
  id: string;
  agent_id: string;
  kind: TaskKind;
  params: string;
  status: TaskStatus;
  result: string | null;
  created_by: string | null;
  created_at: number;
  updated_at: number;
  deadline: number;
}

/** An agent id, as the registry makes them: where a host is asked for, one names that host too. */
export const AGENT_ID_RE = /^ag_[0-9a-f]{16}$/;
const FINGERPRINT_RE = /^[0-9a-f]{64}$/;
const TAG_KEY_RE = /^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}$/;
/** The most bytes of JSON a heartbeat may take. */
export const MAX_JSON_BYTES = 64 * 1024;
/**
 * The deepest arrays and objects may nest in what an agent sends to be kept (heartbeats, task
 * results): the API serialises it again on a deeper stack than the gateway, and an agent's own
 * say the depth of its counters, rows or inventory at a few levels.
 */
export const MAX_JSON_DEPTH = 64;
/**
 * A task's result: an agent answers a query with up to its `max_bytes` (6 MiB at most, see
 * TASK_LIMITS) of rows, which JSON with its escapes may make somewhat larger.
 */
export const MAX_RESULT_BYTES = 8 * 1024 * 1024;
const MAX_GROUP_CONFIG_BYTES = 1024 * 1024;
/**
 * Tasks open (pending, or sent and unanswered, before their deadline) an agent may have. All are
 * sent at each of its connections, at once: past the messages the gateway lets wait unread on a
 * stream (4,096) every connection of the agent was ended, until the tasks expired (up to a day).
 * The agent runs 64 at once and keeps the answers of the last 1,024 (transport/tasks.ts).
 */
export const MAX_OPEN_TASKS = 1024;
/** A task not done within this time expires (createTask's default). */
export const DEFAULT_TASK_TTL_MS = 10 * 60_000;
export const DEFAULT_GROUP = 'default';

const internal = (message: string): HadesError => new HadesError('HADES_ERR_INTERNAL', message);
const badRequest = (message: string): HadesError => new HadesError('HADES_ERR_ENROLL_REQUEST_INVALID', message);
const unknownAgent = (id: string): HadesError => new HadesError('HADES_ERR_AGENT_UNKNOWN', `no enrolled agent has the id ${JSON.stringify(id)}`);
const revokedAgent = (id: string, at: number): HadesError => new HadesError('HADES_ERR_AGENT_REVOKED', `agent ${id} was revoked at ${isoTime(at)}`);

/** A certificate's expiry (ISO 8601) as milliseconds, or null when not given. */
function notAfterMs(notAfter: string | undefined): number | null {
  if (notAfter === undefined) return null;
  const ms = Date.parse(notAfter);
  if (Number.isNaN(ms)) throw internal(`invalid certificate expiry ${notAfter}`);
  return ms;
}

/**
 * Why JSON text an agent sent is not kept (larger than `max` bytes, or nested past
 * MAX_JSON_DEPTH), or undefined: found without parsing it, so the gateway checks a message with it
 * before JSON.parse, and the registry what it is given before it is stored.
 */
export function jsonProblem(text: string, what: string, max: number): HadesError | undefined {
  // A UTF-16 unit is at least one byte: the length alone refuses most without counting bytes.
  if (text.length > max || Buffer.byteLength(text) > max) return new HadesError('HADES_ERR_STREAM_MESSAGE_TOO_LARGE', `${what} takes more than ${max} bytes of JSON`);
  if (nestsDeeperThan(text, MAX_JSON_DEPTH)) return new HadesError('HADES_ERR_STREAM_MESSAGE_INVALID', `${what} nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels`);
  return undefined;
}

/** An agent's clock as its heartbeat gives it: UTC, to the millisecond at most. */
const ISO_TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?Z$/;

function jsonText(value: unknown, what: string, max = MAX_JSON_BYTES): string {
  const text = JSON.stringify(value ?? null);
  const problem = jsonProblem(text, what, max);
  if (problem !== undefined) throw problem;
  return text;
}

function shortText(value: unknown, what: string, max = 256): string {
  // Control and format characters (right-to-left overrides, zero-width spaces) would let one host
  // look like another in listings and alerts.
  if (typeof value !== 'string' || value.length > max || /[\p{Cc}\p{Cf}\p{Co}\p{Cs}]/u.test(value)) {
    throw badRequest(`${what} must be a printable text of at most ${max} characters (no control, format or private-use characters)`);
  }
  return value;
}

/** Checks what an agent says about itself; `all` requires every field (enrollment). */
function checkHello(hello: AgentHello, all: true): Required<AgentHello>;
function checkHello(hello: AgentHello, all: false): AgentHello;
function checkHello(hello: AgentHello, all: boolean): AgentHello {
  const out: { -readonly [K in keyof AgentHello]: AgentHello[K] } = {};
  if (all || hello.hostname !== undefined) {
    out.hostname = shortText(hello.hostname, 'the host name').trim();
    if (out.hostname === '') throw badRequest('the host name is missing');
  }
  if (all || hello.addresses !== undefined) {
    if (!Array.isArray(hello.addresses) || hello.addresses.length > 256) throw badRequest('the addresses must be a list of at most 256');
    out.addresses = hello.addresses.map((a) => {
      const address = shortText(a, 'an address', 64);
      // What the CMDB matches hosts by: an address that is not one would match rows it should not.
      if (isIP(address) === 0) throw badRequest(`the address ${JSON.stringify(address)} is not an IP address`);
      return address;
    });
  }
  if (all || hello.os !== undefined) out.os = shortText(hello.os, 'the OS');
  if (all || hello.kernel !== undefined) out.kernel = shortText(hello.kernel, 'the kernel version');
  if (all || hello.version !== undefined) out.version = shortText(hello.version, 'the agent version', 64);
  return out;
}

export class FleetRegistry {
  readonly #db: Db;
  readonly #now: Clock;
  readonly #agentById;
  readonly #hostById;
  /** hostOf()'s answers, read once per agent: only enroll() and hello() change them. */
  readonly #hosts = new Map<string, AgentHost>();
  readonly #agentByFingerprint;
  readonly #taskById;
  readonly #expireTask;
  readonly #openTasks;

  constructor(db: Db, options: { now?: Clock } = {}) {
    migrate(db, 'fleet', MIGRATIONS);
    this.#db = db;
    this.#now = options.now ?? Date.now;
    this.#agentById = db.prepare<[string], AgentRow>('SELECT * FROM agents WHERE id = ?');
    this.#hostById = db.prepare<[string], { hostname: string; enrolled_hostname: string; addresses: string }>('SELECT hostname, enrolled_hostname, addresses FROM agents WHERE id = ?');
    this.#agentByFingerprint = db.prepare<[string], AgentRow>('SELECT * FROM agents WHERE cert_fingerprint = ?');
    this.#taskById = db.prepare<[string], TaskRow>('SELECT * FROM tasks WHERE id = ?');
    this.#openTasks = db.prepare<[string, number], { n: number }>("SELECT count(*) AS n FROM tasks WHERE agent_id = ? AND status IN ('pending', 'sent') AND deadline > ?");
    this.#expireTask = db.prepare<[number, string, number]>("UPDATE tasks SET status = 'expired', updated_at = ? WHERE id = ? AND status IN ('pending', 'sent') AND deadline <= ?");
  }

  /** A fresh agent id, to sign the agent's certificate with before `enroll` records it. */
  newAgentId(): string {
    for (;;) {
      const id = `ag_${randomBytes(8).toString('hex')}`;
      if (this.#agentById.get(id) === undefined) return id;
    }
  }

  /**
   * Records an enrolled agent. The enrollment flow of the gateway:
   * `tokens.check(token)`; `id = registry.newAgentId()`; `cert = await pki.signAgentCsr(csr, id)`;
   * then in one `db.transaction`: `used = tokens.consume(token, id)` and
   * `registry.enroll(info, {...cert, agentId: id, tokenId: used.tokenId})`.
   */
  enroll(info: AgentEnrollInfo, cert: AgentCertInfo): Agent {
    const { hostname, addresses, os, kernel, version } = checkHello(info, true);
    const group = info.group ?? DEFAULT_GROUP;
    if (!NAME_RE.test(group)) throw badRequest(`invalid group name ${JSON.stringify(group)}`);
    const agentId = cert.agentId ?? info.id ?? '';
    if (info.id !== undefined && cert.agentId !== undefined && info.id !== cert.agentId) throw internal(`agent id ${info.id} differs from the certificate's ${cert.agentId}`);
    if (!AGENT_ID_RE.test(agentId)) throw internal(`invalid agent id ${JSON.stringify(agentId)}`);
    if (!FINGERPRINT_RE.test(cert.fingerprint)) throw internal(`invalid certificate fingerprint ${JSON.stringify(cert.fingerprint)}`);
    const notAfter = notAfterMs(cert.notAfter);
    const now = this.#now();
    this.#hosts.delete(agentId);
    try {
      this.#db
        .prepare(
          `INSERT INTO agents (id, hostname, enrolled_hostname, addresses, os, kernel, version, groups_json, tags, cert_fingerprint, cert_serial, cert_not_after, cert_ca, token_id, enrolled_at, last_seen, online)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, '{}', ?, ?, ?, ?, ?, ?, ?, 0)`,
        )
        .run(agentId, hostname, hostname, JSON.stringify(addresses), os, kernel, version, JSON.stringify([group]), cert.fingerprint, cert.serial, notAfter, cert.caSha256 ?? null, cert.tokenId ?? null, now, now);
    } catch (error) {
      throw new HadesError('HADES_ERR_INTERNAL', `cannot record agent ${agentId}: ${(error as Error).message}`, { cause: error });
    }
    return this.#mustGet(agentId);
  }

  /** Updates what an agent reports about itself (at each connection's hello); marks it seen. */
  hello(id: string, hello: AgentHello): Agent {
    const checked = checkHello(hello, false);
    const sets: string[] = ['last_seen = ?'];
    const args: (string | number)[] = [this.#now()];
    for (const column of ['hostname', 'os', 'kernel', 'version'] as const) {
      const value = checked[column];
      if (value !== undefined) {
        sets.push(`${column} = ?`);
        args.push(value);
      }
    }
    if (checked.addresses !== undefined) {
      sets.push('addresses = ?');
      args.push(JSON.stringify(checked.addresses));
    }
    args.push(id);
    this.#hosts.delete(id);
    if (this.#db.prepare(`UPDATE agents SET ${sets.join(', ')} WHERE id = ?`).run(...args).changes === 0) throw unknownAgent(id);
    return this.#mustGet(id);
  }

  get(id: string): Agent | undefined {
    const row = this.#agentById.get(id);
    return row === undefined ? undefined : agentOf(row);
  }

  /**
   * An agent's host names and addresses (what the CMDB is matched by), without the rest of its
   * record: read for every batch the agent sends, where get() would parse its last heartbeat.
   */
  hostOf(id: string): AgentHost | undefined {
    const known = this.#hosts.get(id);
    if (known !== undefined) return known;
    const row = this.#hostById.get(id);
    if (row === undefined) return undefined;
    const host = Object.freeze({ hostname: row.hostname, enrolledHostname: row.enrolled_hostname, addresses: Object.freeze(JSON.parse(row.addresses) as string[]) as string[] });
    this.#hosts.set(id, host);
    return host;
  }

  /**
   * The host name an agent enrolled with (undefined: no such agent): what the server knows of
   * the host behind a certificate, which neither the agent's hellos nor its events change. Read
   * for every alert a suppression might silence (from hostOf's cache).
   */
  enrolledHostOf(id: string): string | undefined {
    return this.hostOf(id)?.enrolledHostname;
  }

  byFingerprint(fingerprint: string): Agent | undefined {
    const row = this.#agentByFingerprint.get(fingerprint.toLowerCase());
    return row === undefined ? undefined : agentOf(row);
  }

  /** Agents by host name, newest enrollment first. */
  list(filter: { group?: string; online?: boolean; revoked?: boolean; hostname?: string } = {}): Agent[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (filter.group !== undefined) {
      where.push('EXISTS (SELECT 1 FROM json_each(agents.groups_json) WHERE value = ?)');
      args.push(filter.group);
    }
    if (filter.online !== undefined) {
      where.push('online = ?');
      args.push(filter.online ? 1 : 0);
    }
    if (filter.revoked !== undefined) where.push(filter.revoked ? 'revoked_at IS NOT NULL' : 'revoked_at IS NULL');
    if (filter.hostname !== undefined) {
      where.push('hostname = ?');
      args.push(filter.hostname);
    }
    const sql = `SELECT * FROM agents ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY hostname, enrolled_at DESC, id`;
    return this.#db.prepare<(string | number)[], AgentRow>(sql).all(...args).map(agentOf);
  }

  /**
   * The agent a connection belongs to, given the id and fingerprint of the certificate it
   * presented (`Pki.agentIdentity`). HADES_ERR_AGENT_UNKNOWN when there is no such agent or the
   * certificate is neither the one in use nor the next one; HADES_ERR_AGENT_REVOKED when it was
   * revoked. The next certificate becomes the one in use here, at its first connection (which
   * ends an operator's renewal request), and the certificate before is refused from then on.
   */
  authorize(agentId: string, fingerprint: string): Agent {
    return this.authorizeConnection(agentId, fingerprint).agent;
  }

  /** `authorize`, also saying whether this connection switched the agent to its next certificate. */
  authorizeConnection(agentId: string, fingerprint: string): { agent: Agent; switched: boolean } {
    const presented = fingerprint.toLowerCase();
    const row = this.#checked(agentId, presented, true);
    if (row.cert_fingerprint === presented) return { agent: agentOf(row), switched: false };
    const promoted = this.#db
      .prepare(
        `UPDATE agents SET cert_fingerprint = next_cert_fingerprint, cert_serial = next_cert_serial, cert_not_after = next_cert_not_after, cert_renewed_at = ?,
           cert_ca = coalesce(next_cert_ca, cert_ca),
           next_cert_fingerprint = NULL, next_cert_serial = NULL, next_cert_not_after = NULL, next_cert_issued_at = NULL, next_cert_ca = NULL,
           renew_requested_at = NULL, renew_immediately = 0
         WHERE id = ? AND next_cert_fingerprint = ? AND revoked_at IS NULL`,
      )
      .run(this.#now(), agentId, presented).changes;
    // Lost to a concurrent change (revoked, renewed again, switched by another connection): what is stored now decides.
    if (promoted === 0) return { agent: agentOf(this.#checked(agentId, presented, false)), switched: false };
    return { agent: this.#mustGet(agentId), switched: true };
  }

  /**
   * Records the certificate issued to an agent on renewal as its next one (replacing an earlier
   * next certificate never used), provided the agent is not revoked and `presented` (the
   * fingerprint its stream is authenticated with) is still the certificate in use. An operator's
   * renewal request stays until the agent connects with the new certificate (authorizeConnection):
   * one that could not store it, or restarted before, is asked again at its next connection.
   * Otherwise HADES_ERR_AGENT_REVOKED or HADES_ERR_AGENT_UNKNOWN, and nothing changes: the
   * certificate issued is then never accepted.
   */
  setNextCertificate(agentId: string, presented: string, cert: Omit<AgentCertInfo, 'agentId' | 'tokenId'>): Agent {
    if (!FINGERPRINT_RE.test(cert.fingerprint)) throw internal(`invalid certificate fingerprint ${JSON.stringify(cert.fingerprint)}`);
    const notAfter = notAfterMs(cert.notAfter);
    const changes = this.#db
      .prepare(
        `UPDATE agents SET next_cert_fingerprint = ?, next_cert_serial = ?, next_cert_not_after = ?, next_cert_issued_at = ?, next_cert_ca = ?
         WHERE id = ? AND cert_fingerprint = ? AND revoked_at IS NULL`,
      )
      .run(cert.fingerprint, cert.serial, notAfter, this.#now(), cert.caSha256 ?? null, agentId, presented.toLowerCase()).changes;
    if (changes === 0) this.#checked(agentId, presented.toLowerCase(), false);
    return this.#mustGet(agentId);
  }

  /**
   * Records `caSha256` as the CA of every certificate whose CA is not recorded (issued before it
   * was): called before a CA rotation starts, when the CA in use is the only one there was.
   */
  assignCa(caSha256: string): number {
    return this.#db.prepare('UPDATE agents SET cert_ca = ? WHERE cert_ca IS NULL').run(caSha256).changes;
  }

  /**
   * Agents not revoked, by the CA of the certificate in use (SHA-256; certificates whose CA is
   * not recorded count as `unrecorded`'s), and up to `sample` ids of those on `sampleCa`.
   */
  agentsByCa(unrecorded: string, sampleCa?: string, sample = 100): { counts: Record<string, number>; onSampleCa: string[] } {
    const counts: Record<string, number> = {};
    for (const row of this.#db.prepare<[string], { ca: string; n: number }>('SELECT coalesce(cert_ca, ?) AS ca, count(*) AS n FROM agents WHERE revoked_at IS NULL GROUP BY 1').all(unrecorded)) counts[row.ca] = row.n;
    const onSampleCa =
      sampleCa === undefined
        ? []
        : this.#db
            .prepare<[string, string, number], { id: string }>('SELECT id FROM agents WHERE revoked_at IS NULL AND coalesce(cert_ca, ?) = ? ORDER BY id LIMIT ?')
            .all(unrecorded, sampleCa, sample)
            .map((r) => r.id);
    return { counts, onSampleCa };
  }

  /**
   * Asks an agent to renew its certificate (an operator's request): kept until the agent
   * renews, so that one offline now is asked at its next connection. `immediately`: without the
   * agent's random delay (kept too, and not undone by a later request without it). Refused for a
   * revoked agent.
   */
  requestRenewal(agentId: string, immediately = false): Agent {
    const row = this.#agentById.get(agentId);
    if (row === undefined) throw unknownAgent(agentId);
    if (row.revoked_at !== null) throw revokedAgent(agentId, row.revoked_at);
    this.#db.prepare('UPDATE agents SET renew_requested_at = coalesce(renew_requested_at, ?), renew_immediately = max(renew_immediately, ?) WHERE id = ?').run(this.#now(), immediately ? 1 : 0, agentId);
    return this.#mustGet(agentId);
  }

  /**
   * The row of an agent that is not revoked and whose certificate in use (or, with
   * `orNext`, its next one) has this fingerprint; throws otherwise (even when the throw is
   * about something that changed between two statements, the answer is what is stored).
   */
  #checked(agentId: string, fingerprint: string, orNext: boolean): AgentRow {
    const row = this.#agentById.get(agentId);
    if (row === undefined) throw unknownAgent(agentId);
    if (row.cert_fingerprint !== fingerprint && !(orNext && row.next_cert_fingerprint === fingerprint)) {
      throw new HadesError('HADES_ERR_AGENT_UNKNOWN', `agent ${agentId} presented a certificate that is not the one issued to it`);
    }
    if (row.revoked_at !== null) throw revokedAgent(agentId, row.revoked_at);
    return row;
  }

  /** Marks an agent connected or not (and seen now). */
  markOnline(id: string, online: boolean): void {
    // A connection is the agent heard from; its end is not: last_seen keeps the last time it was
    // (a frozen host's stream is found dead a minute after it last spoke).
    const changes = online
      ? this.#db.prepare('UPDATE agents SET online = 1, last_seen = ? WHERE id = ?').run(this.#now(), id).changes
      : this.#db.prepare('UPDATE agents SET online = 0 WHERE id = ?').run(id).changes;
    if (changes === 0) throw unknownAgent(id);
  }

  /** Marks every agent offline: at the server's start, before any connection. */
  markAllOffline(): number {
    return this.#db.prepare('UPDATE agents SET online = 0 WHERE online = 1').run().changes;
  }

  /**
   * Stores an agent's latest heartbeat (a JSON object of at most 64 KiB) and marks it seen now.
   * A heartbeat that gives the agent's clock (`time`, ISO 8601) is stored with how far that clock
   * is from the server's (`clock_offset_ms`, the server's own figure: one the agent sent is
   * replaced), which it returns; undefined without a usable `time`.
   */
  heartbeat(id: string, health: unknown): number | undefined {
    if (typeof health !== 'object' || health === null || Array.isArray(health)) {
      throw new HadesError('HADES_ERR_STREAM_MESSAGE_INVALID', 'a heartbeat must be a JSON object');
    }
    const now = this.#now();
    const given = (health as Record<string, unknown>)['time'];
    let at = typeof given === 'string' && ISO_TIME_RE.test(given) ? Date.parse(given) : NaN;
    // Date.parse takes 2026-02-30 (March 2) and 24:00:00 (the next day): only a real time is kept.
    if (Number.isFinite(at) && new Date(at).toISOString().slice(0, 19) !== (given as string).slice(0, 19)) at = NaN;
    const offset = Number.isFinite(at) ? at - now : undefined;
    const stored = { ...(health as Record<string, unknown>) };
    delete stored['clock_offset_ms'];
    if (offset !== undefined) stored['clock_offset_ms'] = offset;
    // The server's own field (at most 35 bytes) does not count against the agent's 64 KiB.
    const text = jsonText(stored, 'the heartbeat', MAX_JSON_BYTES + 64);
    const changes = this.#db.prepare('UPDATE agents SET heartbeat = ?, last_seen = ? WHERE id = ?').run(text, now, id).changes;
    if (changes === 0) throw unknownAgent(id);
    return offset;
  }

  /**
   * Revokes an agent: its connections are refused from now on (the gateway should also close
   * the one open), and its unfinished tasks fail. Revoking twice keeps the first time.
   */
  revoke(id: string): Agent {
    const now = this.#now();
    this.#db.transaction(() => {
      if (this.#agentById.get(id) === undefined) throw unknownAgent(id);
      this.#db.prepare('UPDATE agents SET revoked_at = coalesce(revoked_at, ?), online = 0 WHERE id = ?').run(now, id);
      this.#db
        .prepare(`UPDATE tasks SET status = 'failed', result = ?, updated_at = ? WHERE agent_id = ? AND status IN ('pending', 'sent')`)
        .run(JSON.stringify({ error: 'agent revoked' }), now, id);
    })();
    return this.#mustGet(id);
  }

  /** Replaces an agent's tags: at most 64 `key: value` pairs (`env: prod`, `owner: web-team`). */
  setTags(id: string, tags: Readonly<Record<string, string>>): Agent {
    const entries = Object.entries(tags);
    // The API's input (its schema does not count tags nor refuse control characters).
    const invalid = (message: string) => new HadesError('HADES_ERR_API_INVALID_REQUEST', message);
    if (entries.length > 64) throw invalid(`an agent carries at most 64 tags (got ${entries.length})`);
    for (const [key, value] of entries) {
      if (!TAG_KEY_RE.test(key)) throw invalid(`invalid tag name ${JSON.stringify(key)}`);
      if (typeof value !== 'string' || value.length > 256 || /[\p{Cc}\p{Cs}]/u.test(value)) throw invalid(`the tag ${key} needs a printable value of at most 256 characters`);
    }
    const sorted = Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    if (this.#db.prepare('UPDATE agents SET tags = ? WHERE id = ?').run(JSON.stringify(sorted), id).changes === 0) throw unknownAgent(id);
    return this.#mustGet(id);
  }

  /** Replaces the groups an agent belongs to (at least one). */
  setGroups(id: string, groups: readonly string[]): Agent {
    const clean = [...new Set(groups)];
    if (clean.length === 0 || clean.length > 16) throw internal('an agent belongs to 1 to 16 groups');
    for (const group of clean) if (!NAME_RE.test(group)) throw internal(`invalid group name ${JSON.stringify(group)}`);
    if (this.#db.prepare('UPDATE agents SET groups_json = ? WHERE id = ?').run(JSON.stringify(clean), id).changes === 0) throw unknownAgent(id);
    return this.#mustGet(id);
  }

  /**
   * Stores a group's agent configuration (YAML text, at most 1 MiB). The caller validates it
   * against the agent configuration schema before: the registry keeps text.
   */
  setGroupConfig(name: string, yaml: string): GroupConfig {
    if (!NAME_RE.test(name)) throw internal(`invalid group name ${JSON.stringify(name)}`);
    if (typeof yaml !== 'string' || Buffer.byteLength(yaml) > MAX_GROUP_CONFIG_BYTES) throw internal('a group configuration is a YAML text of at most 1 MiB');
    this.#db
      .prepare(
        `INSERT INTO agent_groups (name, yaml, version, updated_at)
           VALUES (@name, @yaml, coalesce((SELECT last_version FROM agent_group_versions WHERE name = @name), 0) + 1, @now)
         ON CONFLICT (name) DO UPDATE SET yaml = excluded.yaml, version = version + 1, updated_at = excluded.updated_at`,
      )
      .run({ name, yaml, now: this.#now() });
    const stored = this.groupConfig(name);
    if (stored === undefined) throw internal(`group ${name} vanished`);
    return stored;
  }

  /** Removes a group's configuration; false when it had none. */
  deleteGroupConfig(name: string): boolean {
    return this.#db.transaction(() => {
      this.#db
        .prepare(
          `INSERT INTO agent_group_versions (name, last_version) SELECT name, version FROM agent_groups WHERE name = ?
           ON CONFLICT (name) DO UPDATE SET last_version = excluded.last_version`,
        )
        .run(name);
      return this.#db.prepare('DELETE FROM agent_groups WHERE name = ?').run(name).changes === 1;
    })();
  }

  groupConfig(name: string): GroupConfig | undefined {
    const row = this.#db.prepare<[string], { name: string; yaml: string; version: number; updated_at: number }>('SELECT * FROM agent_groups WHERE name = ?').get(name);
    return row === undefined ? undefined : { name: row.name, yaml: row.yaml, version: row.version, updatedAt: isoTime(row.updated_at) };
  }

  /** Every group that has a configuration or members, with its member count. */
  listGroups(): GroupSummary[] {
    const rows = this.#db
      .prepare<[], { name: string; agents: number; version: number | null; updated_at: number | null }>(
        `WITH names AS (
           SELECT name FROM agent_groups
           UNION SELECT j.value FROM agents, json_each(agents.groups_json) AS j WHERE agents.revoked_at IS NULL
         )
         SELECT names.name AS name,
                (SELECT count(*) FROM agents, json_each(agents.groups_json) AS j WHERE j.value = names.name AND agents.revoked_at IS NULL) AS agents,
                (SELECT version FROM agent_groups WHERE agent_groups.name = names.name) AS version,
                (SELECT updated_at FROM agent_groups WHERE agent_groups.name = names.name) AS updated_at
         FROM names ORDER BY name`,
      )
      .all();
    return rows.map((r) => ({ name: r.name, agents: r.agents, ...(r.version === null ? {} : { version: r.version }), ...(r.updated_at === null ? {} : { updatedAt: isoTime(r.updated_at) }) }));
  }

  // --- tasks -------------------------------------------------------------------------------

  /**
   * Queues a task for an agent; it expires at `deadline` (milliseconds since the epoch), or
   * `ttlMs` from now (10 minutes by default).
   */
  createTask(request: { agentId: string; kind: TaskKind; params?: Readonly<Record<string, unknown>>; ttlMs?: number; deadline?: number; createdBy?: string }): Task {
    const { agentId, kind, params = {} } = request;
    if (!(TASK_KINDS as readonly string[]).includes(kind)) throw internal(`unknown task kind ${JSON.stringify(kind)}`);
    const now = this.#now();
    const deadline = request.deadline ?? now + (request.ttlMs ?? DEFAULT_TASK_TTL_MS);
    if (!Number.isFinite(deadline) || deadline <= now) throw internal(`a task's deadline must be in the future, not ${deadline}`);
    const paramsText = jsonText(params, 'the task parameters');
    const agent = this.#agentById.get(agentId);
    if (agent === undefined) throw unknownAgent(agentId);
    if (agent.revoked_at !== null) throw new HadesError('HADES_ERR_AGENT_REVOKED', `agent ${agentId} was revoked; it takes no tasks`);
    const open = this.#openTasks.get(agentId, now)!.n;
    if (open >= MAX_OPEN_TASKS) {
      throw new HadesError('HADES_ERR_TASK_TOO_MANY', `agent ${agentId} has ${open} tasks open (not answered, before their deadline), the most an agent may have; no task was made: wait for them to end or expire`, { details: { agent_id: agentId, open } });
    }
    const id = `tk_${randomBytes(8).toString('hex')}`;
    this.#db
      .prepare(`INSERT INTO tasks (id, agent_id, kind, params, status, created_by, created_at, updated_at, deadline) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?)`)
      .run(id, agentId, kind, paramsText, request.createdBy ?? null, now, now, Math.round(deadline));
    return this.#mustGetTask(id);
  }

  /** A task; one whose deadline has passed unfinished reads as expired (not only after the housekeeping). */
  getTask(id: string): Task | undefined {
    // This task only (by its key): a fleet query reads thousands of them at a time.
    this.#expireTask.run(this.#now(), id, this.#now());
    const row = this.#taskById.get(id);
    return row === undefined ? undefined : taskOf(row);
  }

  /**
   * An agent's tasks not finished, oldest first (overdue ones excluded): those waiting to be sent,
   * and those sent on a stream that broke before their result came back. Sent again when the agent
   * connects; tasks are idempotent (a query runs again, a log level is set again) and only the
   * first result counts.
   */
  unfinishedTasks(agentId: string): Task[] {
    return this.#db
      .prepare<[string, number], TaskRow>(`SELECT * FROM tasks WHERE agent_id = ? AND status IN ('pending', 'sent') AND deadline > ? ORDER BY created_at, rowid`)
      .all(agentId, this.#now())
      .map(taskOf);
  }

  /** pending -> sent; false when the task is not pending (already sent, finished, expired). */
  markSent(id: string): boolean {
    return this.#db.prepare(`UPDATE tasks SET status = 'sent', updated_at = ? WHERE id = ? AND status = 'pending'`).run(this.#now(), id).changes === 1;
  }

  /**
   * Records a task's outcome; only a pending or sent task can finish (false otherwise, e.g. a
   * late answer to an expired task). With `agentId`, only that agent's task: an agent cannot
   * answer for another.
   */
  complete(id: string, status: 'done' | 'failed', result: unknown, agentId?: string): boolean {
    if (status !== 'done' && status !== 'failed') throw internal(`a task completes as done or failed, not ${String(status)}`);
    let text: string;
    try {
      text = jsonText(result, 'the task result', MAX_RESULT_BYTES);
    } catch (error) {
      // Too large to keep: the task fails with the reason, instead of waiting for its deadline.
      const e = toHadesError(error);
      status = 'failed';
      text = JSON.stringify({ code: e.code, message: e.message });
    }
    // A result after the deadline is refused: the task has expired, whoever asked has moved on.
    const now = this.#now();
    const sql = `UPDATE tasks SET status = ?, result = ?, updated_at = ? WHERE id = ? AND status IN ('pending', 'sent') AND deadline > ?${agentId === undefined ? '' : ' AND agent_id = ?'}`;
    const args: (string | number)[] = [status, text, now, id, now];
    if (agentId !== undefined) args.push(agentId);
    return this.#db.prepare(sql).run(...args).changes === 1;
  }

  /** Whether `agentId` has task `id` open (pending or sent, before its deadline): its result would be taken. */
  awaits(id: string, agentId: string): boolean {
    return this.#db.prepare(`SELECT 1 FROM tasks WHERE id = ? AND agent_id = ? AND status IN ('pending', 'sent') AND deadline > ?`).get(id, agentId, this.#now()) !== undefined;
  }

  /**
   * Deletes the tasks that ended (done, failed, expired, cancelled) before `before` (ms): their
   * results are kept as long as events are, and no longer (tasks of 64 KiB of SQL each would
   * otherwise grow the database for good). Returns how many.
   */
  forgetEnded(before: number): number {
    return this.#db.prepare(`DELETE FROM tasks WHERE status NOT IN ('pending', 'sent') AND updated_at < ?`).run(before).changes;
  }

  /** Marks pending and sent tasks whose deadline has passed as expired; returns how many. */
  expireOverdue(now: number = this.#now()): number {
    return this.#db.prepare(`UPDATE tasks SET status = 'expired', updated_at = ? WHERE status IN ('pending', 'sent') AND deadline <= ?`).run(now, now).changes;
  }

  /** Tasks, newest first. */
  /**
   * Tasks, newest first. With `resultChars`, the results of the list hold at most that many
   * characters of JSON together (a result is up to 8 MiB, and a list of 1,000 of them would be
   * gigabytes); a task whose result would pass it comes with `resultOmitted` instead.
   */
  listTasks(filter: { agentId?: string; status?: TaskStatus; limit?: number; resultChars?: number } = {}): Task[] {
    this.expireOverdue();
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (filter.agentId !== undefined) {
      where.push('agent_id = ?');
      args.push(filter.agentId);
    }
    if (filter.status !== undefined) {
      where.push('status = ?');
      args.push(filter.status);
    }
    const limit = Math.max(1, Math.min(10_000, Math.trunc(filter.limit ?? 100)));
    args.push(limit);
    // The results are not read with the list: up to 10,000 of 8 MiB each would be read into
    // memory before any was left out. Their lengths decide, and only those kept are read.
    const sql = `SELECT id, agent_id, kind, params, status, NULL AS result, created_by, created_at, updated_at, deadline, length(result) AS result_chars FROM tasks ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, rowid DESC LIMIT ?`;
    const rows = this.#db.prepare<(string | number)[], TaskRow & { result_chars: number | null }>(sql).all(...args);
    const resultOf = this.#db.prepare<[string], { result: string | null }>('SELECT result FROM tasks WHERE id = ?');
    let left = filter.resultChars ?? Infinity;
    return rows.map(({ result_chars: chars, ...row }) => {
      if (chars === null) return taskOf(row);
      // One left out takes nothing of the budget: a smaller one after it may still fit.
      if (chars > left) return { ...taskOf(row), resultOmitted: true as const };
      left -= chars;
      return taskOf({ ...row, result: resultOf.get(row.id)?.result ?? null });
    });
  }

  #mustGet(id: string): Agent {
    const agent = this.get(id);
    if (agent === undefined) throw unknownAgent(id);
    return agent;
  }

  #mustGetTask(id: string): Task {
    const task = this.getTask(id);
    if (task === undefined) throw internal(`task ${id} vanished`);
    return task;
  }
}

function agentOf(row: AgentRow): Agent {
  const certNotAfter = isoOrUndefined(row.cert_not_after);
  const certRenewedAt = isoOrUndefined(row.cert_renewed_at);
  const renewRequestedAt = isoOrUndefined(row.renew_requested_at);
  const nextNotAfter = isoOrUndefined(row.next_cert_not_after);
  const nextCert: NextCertificate | undefined =
    row.next_cert_fingerprint === null
      ? undefined
      : { fingerprint: row.next_cert_fingerprint, serial: row.next_cert_serial ?? '', ...(nextNotAfter === undefined ? {} : { notAfter: nextNotAfter }), issuedAt: isoTime(row.next_cert_issued_at ?? 0) };
  const lastSeen = isoOrUndefined(row.last_seen);
  const revokedAt = isoOrUndefined(row.revoked_at);
  return {
    id: row.id,
    hostname: row.hostname,
    enrolledHostname: row.enrolled_hostname,
    addresses: JSON.parse(row.addresses) as string[],
    os: row.os,
    kernel: row.kernel,
    version: row.version,
    groups: JSON.parse(row.groups_json) as string[],
    tags: JSON.parse(row.tags) as Record<string, string>,
    certFingerprint: row.cert_fingerprint,
    certSerial: row.cert_serial,
    ...(certNotAfter === undefined ? {} : { certNotAfter }),
    ...(row.cert_ca === null ? {} : { certCa: row.cert_ca }),
    ...(certRenewedAt === undefined ? {} : { certRenewedAt }),
    ...(nextCert === undefined ? {} : { nextCert }),
    ...(renewRequestedAt === undefined ? {} : { renewRequestedAt }),
    ...(renewRequestedAt !== undefined && row.renew_immediately === 1 ? { renewImmediately: true as const } : {}),
    ...(row.token_id === null ? {} : { tokenId: row.token_id }),
    enrolledAt: isoTime(row.enrolled_at),
    ...(lastSeen === undefined ? {} : { lastSeen }),
    ...(row.heartbeat === null ? {} : { lastHeartbeat: keptJson(row.heartbeat, 'the heartbeat') as AgentHealth }),
    online: row.online === 1,
    ...(revokedAt === undefined ? {} : { revokedAt }),
  };
}

/**
 * JSON an agent sent, as kept: parsed, unless it nests deeper than any answer can be serialised
 * again (kept before the gateway refused such nesting): then a coded note in its place, so that
 * one agent's value cannot fail every listing of the fleet or of its tasks.
 */
function keptJson(text: string, what: string): unknown {
  if (nestsDeeperThan(text, MAX_JSON_DEPTH)) {
    return { code: 'HADES_ERR_STREAM_MESSAGE_INVALID', message: `${what} nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels; it was kept before such nesting was refused, and is not shown` };
  }
  return JSON.parse(text) as unknown;
}

function taskOf(row: TaskRow): Task {
  return {
    id: row.id,
    agentId: row.agent_id,
    kind: row.kind,
    params: JSON.parse(row.params) as Record<string, unknown>,
    status: row.status,
    ...(row.result === null ? {} : { result: keptJson(row.result, 'the task result') }),
    ...(row.created_by === null ? {} : { createdBy: row.created_by }),
    createdAt: isoTime(row.created_at),
    updatedAt: isoTime(row.updated_at),
    deadline: isoTime(row.deadline),
  };
}
