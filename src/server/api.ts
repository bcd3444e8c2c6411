/**
 * The REST API (Fastify over HTTPS with the server's certificate): agents, groups and their
 * configuration, tasks, event search, enrollment and API tokens, the audit log, and the
 * enrollment endpoints agents use. Every route declares its request and response schemas
 * (TypeBox, so they are JSON Schema), from which the OpenAPI document at
 * /api/v1/openapi.json is made. Requests carry `Authorization: Bearer TOKEN`; each route names
 * the least role it needs (read-only < analyst < admin), which the OpenAPI document says; admin
 * actions go to the audit log, each with its change in one transaction; refused requests (401,
 * 403) go to the log, and 403s to the audit log too, rate-limited (api-refusals.ts). Answers are
 * written with their schemas (api-schemas.ts), which name every property they keep. Answers are never cached.
 * Every error is JSON `{code, message}` with a HADES_ERR_* code.
 *
 * Statuses: 200, and 201 for a request that creates something (a token, a task, a fleet query, a
 * suppression, a comment, a group's first configuration); 400 for a request that does not match
 * its schema or a body that is not valid JSON; 401, 403; 404 for an unknown path or object; 405
 * with an `Allow` header for a known path with another method; 415 for a body that is not JSON;
 * 503 when the server cannot do it now. Enrollment answers 200 although it records an agent:
 * agents before 2026-11-28 check for exactly 200, and those already installed must keep
 * enrolling; agents since take any 2xx (src/agent/transport/enroll.ts), so a later server can
 * answer 201 once the older agents are gone.
 *
 * JSON bodies, asked and answered, are snake_case (`last_seen`, `created_by`, `timeout_s`), as
 * events (ECS) are; fleet/bodies.ts writes the fleet's resources so. The one exception is the
 * enrollment answer's `agentId`, the same as its `agent_id`, for agents before 2026-11-29.
 */
import { createHash } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { createRequire } from 'node:module';
import type { Ajv, Options as AjvOptions } from 'ajv';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import fastifySwagger from '@fastify/swagger';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { parseRoleConfig, setsNothing } from '../common/config/index.js';
import { eventActions } from '../common/events/index.js';
import { errorCatalog, HadesError, toHadesError, type ErrorCode } from '../common/errors.js';
import { TIME_BOUND_FORMS, timeBound } from '../common/time-bound.js';
import { INVENTORY_TABLES, isInventoryTable } from '../common/inventory-tables.js';
import { logLevelProblem, MAX_TASK_SQL_CHARS, parseQueryTask, TASK_PARAMS } from '../common/tasks.js';
import type { Logger } from '../runtime/log.js';
import { didYouMean, SEVERITIES, suggest } from '../rules/index.js';
import * as Answers from './api-schemas.js';
import { RefusalRecorder, type RefusalLimits } from './api-refusals.js';
import { alertEtag, type AlertComment, type AlertQuery, type AlertTriageRecord, type RelatedAlert, type Suppression, type TriageState } from './alerts/store.js';
import { ALERT_STATUSES, type Alert, type AlertStatus } from './alerts/types.js';
import type { AgentBody, ApiTokenBody, CreatedTokenBody, EnrollmentTokenBody, GroupBody, GroupConfigBody, TaskBody } from './fleet/bodies.js';
import { DEFAULT_HOSTS_PAGE, MAX_HOSTS_PAGE, PAGE_BYTES } from './fleet/queries.js';
import { PAGE_BYTES as PAGE_BYTES_EVENTS } from './store/events.js';
import { PROBE_ROWS, ROW_SCAN_COST, SCAN_BUDGET } from './store/query.js';
import { Unauthenticated } from './fleet/api-tokens.js';
import { AGENT_ID_RE, TASK_KINDS, TASK_STATUSES } from './fleet/registry.js';
import { TLS_HANDSHAKE_TIMEOUT_MS } from './gateway.js';

/** Most bytes (UTF-8) of one comment on an alert. */
const MAX_COMMENT_BYTES = 16_384;

export type Role = 'admin' | 'analyst' | 'read-only';
export type CaStatusBody = Static<typeof Answers.CaStatusBody>;
export type CaRotateBody = Static<typeof Answers.CaRotateBody>;
export type CaRetireBody = Static<typeof Answers.CaRetireBody>;
/** The longest suppression an analyst may create (an admin's: 365 days). */
export const ANALYST_SUPPRESSION_MAX_DAYS = 30;

/**
 * Fields of every event that sort events into kinds, platforms or parts of the fleet rather than
 * say what one was about (docs/events.md, "Fields of every event"): `event.kind = event` or
 * `agent.type = hades` holds for every event, `hades.cmdb.environment = production` for a
 * whole environment. Without a host they do not narrow a suppression.
 */
const CLASSIFYING_FIELD = /^(event\.(kind|category|type|action|outcome|module|dataset)|agent\.(type|version)|host\.(architecture|os\..+)|hades\.(backend|cmdb\..+))$/;

/** What makes a suppression an admin's to create (see the POST /api/v1/suppressions role note), or undefined. */
export function suppressionBreadth(rule: string, host: string | undefined, field: string | undefined, durationMs: number): string | undefined {
  if (rule === '*') return 'every rule (*)';
  if (host === undefined && field === undefined) return `the whole rule ${rule} on every host`;
  if (host === undefined && field !== undefined && CLASSIFYING_FIELD.test(field)) return `the whole rule ${rule} on every host (${field} is a field of every event that sorts them, not one that narrows to a program, file or address)`;
  if (durationMs > ANALYST_SUPPRESSION_MAX_DAYS * 86_400_000) return `more than ${ANALYST_SUPPRESSION_MAX_DAYS} days`;
  return undefined;
}

export interface Principal {
  readonly id: string;
  readonly name: string;
  readonly role: Role;
}

export interface EventQuery {
  since?: number;
  until?: number;
  host?: string;
  action?: string[];
  agentId?: string;
  filters?: { field: string; op: 'eq' | 'prefix' | 'contains'; value: string }[];
  limit?: number;
  cursor?: string;
  order?: 'asc' | 'desc';
}

/**
 * What the API needs from the rest of the server (wired in server.ts). What the ports return is
 * answered as it is: JSON bodies in snake_case (fleet/bodies.ts maps the fleet's resources).
 */
export interface ApiPorts {
  authenticate(bearer: string | undefined): Principal;
  authorize(principal: Principal, needed: Role): void;
  audit(actor: Principal, action: string, target?: string, details?: Record<string, unknown>): void;
  listAudit(options: { since?: number; beforeId?: number; actor?: string; action?: string; target?: string; limit: number }): unknown[];
  caPem(): string;
  caFingerprint(): string;
  /** The CAs and the agents on each. */
  caStatus(): CaStatusBody;
  /** Starts a CA rotation; `record` (its audit entry) is written with it. HADES_ERR_CA_ROTATION_IN_PROGRESS when one is. */
  rotateCa(record: (ca: { sha256: string; old: string; agents: number }) => void): Promise<CaRotateBody>;
  /** Retires the old CA; `record` is written with it. HADES_ERR_CA_NOTHING_TO_RETIRE, HADES_ERR_CA_AGENTS_REMAIN (without `force`). */
  retireOldCa(force: boolean, record: (retired: { sha256: string; forced: boolean; left_behind: number }) => void): Promise<CaRetireBody>;
  gateways(): string[];
  enroll(request: { token: string; csr: string; hostname: string; addresses: string[]; os: string; kernel: string; version: string }): Promise<{ agent_id: string; certificate: string }>;
  listAgents(filter: { group?: string; online?: boolean }): AgentBody[];
  getAgent(id: string): AgentBody | undefined;
  // An admin's change and `record` (its audit entry) are written in one transaction, before
  // anything is sent to an agent: a change whose record cannot be written is not made.
  revokeAgent(id: string, record: () => void): void;
  /** Asks an agent to renew its certificate now (at its next connection when offline). */
  renewAgent(id: string, immediately: boolean, record: () => void): { sent: boolean; immediately: boolean };
  setAgentTags(id: string, tags: Record<string, string>, record: () => void): void;
  /** Puts an agent in these groups (replacing its groups) and pushes their configuration to it. */
  setAgentGroups(id: string, groups: string[], record: () => void): AgentBody & { configuration: { group: string; version: number } | null; pushed: boolean };
  /** Removes a group's configuration; its agents go back to their own files (or another group's). Undefined: it had none (nothing recorded). */
  deleteGroupConfig(name: string, record: () => void): { pushed: number } | undefined;
  listGroups(): GroupBody[];
  getGroupConfig(name: string): GroupConfigBody | undefined;
  setGroupConfig(name: string, yaml: string, record: (version: number) => void): { version: number; pushed: number };
  /** `created` is told the agents (each once) once their tasks are stored, before any is sent (the audit record). */
  createTask(request: { agentIds: string[]; kind: string; params: unknown; timeoutS: number; createdBy: string; created: (agentIds: readonly string[]) => void }): TaskBody[];
  listTasks(filter: { agentId?: string; status?: string; limit: number; resultChars?: number }): TaskBody[];
  getTask(id: string): TaskBody | undefined;
  searchEvents(query: EventQuery): { events: unknown[]; next?: string | undefined; partial?: true };
  /** `record` (its audit entry) runs in the same transaction. */
  createEnrollmentToken(request: { ttlMs: number; group?: string; createdBy: string }, record: (created: CreatedTokenBody) => void): CreatedTokenBody;
  listEnrollmentTokens(): EnrollmentTokenBody[];
  /** True when revoked now (`record` run in the same transaction), false when it was already; throws for a token used already. */
  revokeEnrollmentToken(id: string, record: () => void): boolean;
  /** `record` (its audit entry) runs in the same transaction. */
  createApiToken(request: { name: string; role: Role; createdBy: string; ttlMs?: number }, record: (created: CreatedTokenBody) => void): CreatedTokenBody;
  listApiTokens(): ApiTokenBody[];
  /** True when revoked now (`record` run in the same transaction), false when it was already. */
  revokeApiToken(id: string, record: () => void): boolean;
  searchAlerts(query: AlertQuery): { alerts: Alert[]; next?: string | undefined };
  /** One alert with its comments and its triage history (oldest first, from the audit log). */
  getAlert(id: string): (Alert & { comments: AlertComment[]; history: AlertTriageRecord[]; related: RelatedAlert[] }) | undefined;
  /**
   * Triages an alert (undefined: no such alert). `expected`: the revisions the caller read
   * (If-Match), else the last writer wins; `record(from, to)` (its audit entry) runs in the
   * triage's transaction, before it is committed.
   */
  triageAlert(id: string, change: { status?: AlertStatus; assignee?: string | null }, options: { expected?: readonly number[]; record: (from: TriageState, to: Alert) => void }): Alert | undefined;
  /** Comments on an alert; `record` (its audit entry) runs in the same transaction. */
  commentAlert(id: string, author: string, text: string, record: (comment: AlertComment) => void): AlertComment | undefined;
  listRules(): unknown;
  reloadRules(): Promise<unknown>;
  listSuppressions(includeExpired: boolean): Suppression[];
  /** `record` (its audit entry) runs in the same transaction. */
  addSuppression(input: { ruleId: string; host?: string | null; field?: string | null; value?: string | null; until: number; reason: string; createdBy: string }, record: (created: Suppression) => void): Suppression;
  /** `record` is told what is lifted, in the same transaction; false: no such suppression. */
  deleteSuppression(id: string, record: (lifted: Suppression) => void): boolean;
  /** Agents targeted by a fleet query: named ones, a group's, or (neither) every agent not revoked. */
  queryTargets(request: { agents?: string[]; group?: string }): string[];
  /** Makes a fleet query; `record(id)` (its audit entry) runs in the same transaction, before any task is sent. */
  createFleetQuery(request: { sql: string; agentIds: string[]; timeoutMs: number; createdBy: string }, record: (id: string) => void): unknown;
  /** A fleet query with one page of its hosts (`limit` 0: the summary alone); undefined when there is no such query. */
  getFleetQuery(id: string, page?: { limit?: number; cursor?: string }): unknown;
  listFleetQueries(limit: number): unknown[];
}

export interface ApiOptions {
  readonly ports: ApiPorts;
  readonly version: string;
  readonly log: Logger;
  readonly tls: { readonly certPem: string; readonly keyPem: string };
  /** How refused requests (401, 403) are rate-limited in the logs (api-refusals.ts); the defaults otherwise. */
  readonly refusals?: RefusalLimits;
}

const statusOfCode = (code: ErrorCode): number => {
  switch (code) {
    case 'HADES_ERR_API_UNAUTHENTICATED':
      return 401;
    case 'HADES_ERR_API_FORBIDDEN':
    case 'HADES_ERR_AGENT_REVOKED':
      return 403;
    case 'HADES_ERR_API_NOT_FOUND':
      return 404;
    case 'HADES_ERR_API_METHOD_NOT_ALLOWED':
      return 405;
    case 'HADES_ERR_API_LAST_ADMIN':
    case 'HADES_ERR_ALERT_TOO_MANY_COMMENTS':
    case 'HADES_ERR_TASK_TOO_MANY':
    case 'HADES_ERR_CA_ROTATION_IN_PROGRESS':
    case 'HADES_ERR_CA_NOTHING_TO_RETIRE':
    case 'HADES_ERR_CA_AGENTS_REMAIN':
      return 409;
    case 'HADES_ERR_ALERT_CHANGED':
      return 412;
    case 'HADES_ERR_API_TOO_LARGE':
      return 413;
    case 'HADES_ERR_API_UNSUPPORTED_MEDIA_TYPE':
      return 415;
    case 'HADES_ERR_ENROLL_TOKEN_USED':
    case 'HADES_ERR_ENROLL_TOKEN_EXPIRED':
    case 'HADES_ERR_ENROLL_TOKEN_INVALID':
      return 403;
    case 'HADES_ERR_STORE_WRITE':
      return 503;
    default:
      return errorCatalog[code].kind === 'input' ? 400 : errorCatalog[code].kind === 'environment' ? 503 : 500;
  }
};

const ErrorBody = Type.Object({ code: Type.String(), message: Type.String(), details: Type.Optional(Type.Unknown()) }, { description: 'An error: a HADES_ERR_* code (docs/errors.md) and a message.' });
const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 503: ErrorBody };
/** Methods that may carry a body: a body that is not JSON gets 415 on any of them. */
const BODY_METHODS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** The methods the API's routes use (HEAD comes with every GET); 405 lists those a path takes. */
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
const Id = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) });

/** A fleet query with a page of its hosts (src/server/fleet/queries.ts). */
const FleetQueryBody = Type.Object({
  id: Type.String(),
  sql: Type.String(),
  created_by: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String(),
  deadline: Type.String(),
  complete: Type.Boolean({ description: 'Every host has answered, or the deadline has passed.' }),
  summary: Type.Object(
    { agents: Type.Integer(), done: Type.Integer(), failed: Type.Integer(), pending: Type.Integer(), expired: Type.Integer(), rows: Type.Integer() },
    { description: 'Every host of the query, whatever the page.' },
  ),
  hosts: Type.Array(
    Type.Object({
      agent_id: Type.String(),
      hostname: Type.String(),
      status: Type.Union(['pending', 'done', 'failed', 'expired'].map((s) => Type.Literal(s))),
      rows: Type.Optional(Type.Array(Type.Unknown())),
      truncated: Type.Optional(Type.Boolean()),
      error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
    }),
    { description: "This page's hosts, in the order the query's tasks were made." },
  ),
  next: Type.Optional(Type.String({ description: 'The cursor of the next page; absent on the last.' })),
});

/** `15m`, `2h`, `7d` or ISO time (without a zone: UTC) -> ms since epoch (../common/time-bound.ts). */
export function parseSince(value: string, now = Date.now()): number {
  const time = timeBound(value, now);
  if (time === undefined) throw new HadesError('HADES_ERR_API_INVALID_REQUEST', `'${value}' is not ${TIME_BOUND_FORMS}`);
  return time;
}

const DAY_MS = 86_400_000;

/** A search's window: `since` by default the day before `until`, else the last day; no `until` unless asked. */
function searchWindow(q: { since?: string | undefined; until?: string | undefined }, now: number): { since: number; until?: number } {
  const until = q.until ? parseSince(q.until, now) : undefined;
  const since = q.since ? parseSince(q.since, now) : (until ?? now) - DAY_MS;
  return until === undefined ? { since } : { since, until };
}

const SearchQuery = Type.Object(
  {
    since: Type.Optional(Type.String({ description: 'Start: a duration back from now (15m, 2h, 7d) or an ISO time (without a zone: UTC; a day that does not exist is refused). Default: 24 hours before `until`, else before now. The pages after the first keep its window (their cursor carries it).' })),
    until: Type.Optional(Type.String({ description: 'End: a duration back from now or an ISO time. Default: none (events dated ahead of the server clock are found too).' })),
    host: Type.Optional(Type.String({ maxLength: 256 })),
    action: Type.Optional(Type.String({ maxLength: 1024, description: 'Comma-separated event actions.' })),
    agent: Type.Optional(Type.String({ maxLength: 128 })),
    filter: Type.Optional(Type.Union([Type.String({ maxLength: 4096 }), Type.Array(Type.String({ maxLength: 4096 }), { maxItems: 32 })], { description: 'FIELD=VALUE (equals), FIELD^=VALUE (starts with) or FIELD~=VALUE (contains); repeat for more: at most 32, 8 of them on fields that are not indexed; an empty prefix or text is refused, and so is a field that is an object. user.name is the event\'s user.name or, when it has none, process.user.name (the user an event is about). An address field (destination.ip, source.ip, host.ip...) with = finds the address however it is written (2001:DB8::1 and 2001:0db8:0:0:0:0:0:1 find 2001:db8::1), an IPv4 address both plain and mapped into IPv6 (203.0.113.9 and ::ffff:203.0.113.9 each find both: an agent writes the IPv4 peer of a dual-stack socket mapped); ^= and ~= compare the text as stored.' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, default: 100 })),
    cursor: Type.Optional(Type.String({ maxLength: 512 })),
    order: Type.Optional(Type.Union([Type.Literal('desc'), Type.Literal('asc')])),
  },
  { additionalProperties: false },
);

function parseFilter(text: string): { field: string; op: 'eq' | 'prefix' | 'contains'; value: string } {
  // The field up to the first operator: the store checks it (a CMDB tag keeps its name, spaces and all: `hades.cmdb.tags.cost center`).
  const match = /^([A-Za-z@_][^=^~"\\\p{Cc}]*)(\^=|~=|=)(.*)$/su.exec(text);
  if (!match) throw new HadesError('HADES_ERR_API_INVALID_REQUEST', `filter '${text}' is not FIELD=VALUE, FIELD^=VALUE or FIELD~=VALUE`);
  // `process.name!=bash`, `destination.port>=1024`: operators of other query languages, which
  // would otherwise be read as a field named `process.name!` (a CMDB tag's name may hold anything).
  const other = /^([a-z@_][a-z0-9_.@]*)(!|<|>|\*|\$)$/.exec(match[1]!);
  if (match[2] === '=' && other !== null && !other[1]!.startsWith('hades.cmdb.')) {
    throw new HadesError('HADES_ERR_API_INVALID_REQUEST', `filter '${text}': ${other[2]}= is not an operator of the search, which has FIELD=VALUE (equals), FIELD^=VALUE (starts with) and FIELD~=VALUE (contains), and no negation or comparison`);
  }
  return { field: match[1]!, op: match[2] === '^=' ? 'prefix' : match[2] === '~=' ? 'contains' : 'eq', value: match[3]! };
}

interface ValidationProblem {
  readonly instancePath?: string;
  readonly keyword?: string;
  readonly message?: string;
  readonly params?: Record<string, unknown>;
  /** The schema of the value (the validator's verbose mode), for its description. */
  readonly parentSchema?: { readonly description?: unknown; readonly properties?: Readonly<Record<string, unknown>> };
}

/** Keywords whose message ("must match pattern ...") a value's description explains. */
const EXPLAINED = new Set(['pattern', 'format', 'minLength', 'maxLength', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'minItems', 'maxItems']);

const snakeCase = (name: string): string => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const snakeKeys = (value: object): Record<string, unknown> => Object.fromEntries(Object.entries(value).map(([key, item]) => [snakeCase(key), item]));

/** The validator's problems as an error's details give them: snake_case like every body (`instance_path`, `params.missing_property`). */
function problemBodies(validation: unknown): unknown {
  if (!Array.isArray(validation)) return validation;
  return validation.map((problem: unknown) => {
    if (problem === null || typeof problem !== 'object') return problem;
    // The verbose mode's schema and data stay out of the answer (the message uses the description).
    const rest: Record<string, unknown> = { ...problem };
    for (const key of ['schema', 'parentSchema', 'data']) delete rest[key];
    const { params } = rest;
    return snakeKeys(params !== null && typeof params === 'object' ? { ...rest, params: snakeKeys(params) } : rest);
  });
}

/**
 * One line for a person from the schema validator's problems: a value that must be one of a
 * list (a union of constants, which the validator reports once per constant and once more for
 * the union) becomes "querystring/status must be one of: new, acknowledged, ..."; otherwise the
 * first problem. undefined when there is nothing to say better than the validator's message.
 */
function validationMessage(validation: unknown, context: string | undefined): string | undefined {
  if (!Array.isArray(validation) || validation.length === 0) return undefined;
  const problems = validation as ValidationProblem[];
  const where = (p: ValidationProblem) => `${context ?? 'request'}${p.instancePath ?? ''}`;
  // An unknown key first: it is often the misspelling of the required one also reported missing.
  const first = problems.find((p) => p.keyword === 'additionalProperties') ?? problems[0]!;
  const sameSpot = problems.filter((p) => p.instancePath === first.instancePath);
  const allowed = sameSpot.filter((p) => p.keyword === 'const').map((p) => p.params?.['allowedValue']);
  if (allowed.length > 0 && sameSpot.every((p) => p.keyword === 'const' || p.keyword === 'anyOf')) {
    return `${where(first)} must be one of: ${allowed.map((v) => String(v as string)).join(', ')}`;
  }
  // One of several shapes (a value or a list of them): a bound the value broke says more than
  // "must be string" from the shape it did not take.
  const bound = sameSpot.some((p) => p.keyword === 'anyOf') ? sameSpot.find((p) => p.keyword !== 'type' && p.keyword !== 'anyOf' && p.keyword !== 'const') : undefined;
  const chosen = bound ?? first;
  // "must NOT have additional properties" names no key: the key is what the person needs.
  const extra = chosen.keyword === 'additionalProperties' ? chosen.params?.['additionalProperty'] : undefined;
  if (typeof extra === 'string') {
    const known = Object.keys(chosen.parentSchema?.properties ?? {});
    return `${where(chosen)} has no field '${extra}'${didYouMean(suggest(extra, known))}${known.length > 0 ? ` (its fields: ${known.join(', ')})` : ''}`;
  }
  if (chosen.keyword === 'minLength' && chosen.params?.['limit'] === 1) return `${where(chosen)} must not be empty`;
  const description = chosen.parentSchema?.description;
  const hint = EXPLAINED.has(chosen.keyword ?? '') && typeof description === 'string' && description !== '' ? ` (${description.replace(/\.$/, '')})` : '';
  return chosen.message === undefined ? undefined : `${where(chosen)} ${chosen.message}${hint}`;
}

/**
 * Validators by part of the request: the query string and path parameters arrive as text, so
 * there numbers and booleans are read from it ('100', 'true') and a single value may stand for a
 * list; a JSON body has types of its own, and a value of the wrong type there is refused rather
 * than converted (a `null` YAML text must not become an empty configuration).
 */
function validatorCompiler(): (route: { schema: object; httpPart?: string }) => (data: unknown) => boolean {
  const { Ajv: AjvClass } = createRequire(import.meta.url)('ajv') as { Ajv: new (options: AjvOptions) => Ajv };
  // verbose: each problem carries the value's schema, whose description explains a pattern or a bound.
  const common: AjvOptions = { removeAdditional: false, useDefaults: true, allErrors: true, strict: false, verbose: true };
  const text = new AjvClass({ ...common, coerceTypes: 'array' });
  const json = new AjvClass({ ...common, coerceTypes: false });
  return ({ schema, httpPart }) => (httpPart === 'body' ? json : text).compile(schema);
}

/** The id (public part) of the enrollment token a refused enrollment gave, when it has a token's form. */
function enrollmentTokenId(body: unknown): string | undefined {
  const token = body !== null && typeof body === 'object' ? (body as { token?: unknown }).token : undefined;
  return typeof token === 'string' ? /^hades1_([0-9a-f]{16})_/.exec(token)?.[1] : undefined;
}

/** A task's parameters as the audit log keeps them: long texts (SQL) cut to 1 KiB. */
function auditedParams(params: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(params).map(([key, value]) => [key, typeof value === 'string' && value.length > 1024 ? `${value.slice(0, 1024)}…` : value]));
}

/** One entity tag of a list (RFC 9110): `"..."`, or weak `W/"..."`. */
const ENTITY_TAG = /^(W\/)?"([\x21\x23-\x7e\x80-\xff]*)"$/;

/**
 * The alert revisions an If-Match header accepts: undefined when there is none or it is `*` (any
 * revision of an alert that exists). Weak tags never match (If-Match compares strongly), nor
 * does a tag that is not one this server gives; so a list of only such tags is an empty list,
 * which no revision matches. A header that is not a list of entity tags is a 400.
 */
export function ifMatchRevisions(header: string | string[] | undefined): number[] | undefined {
  if (header === undefined) return undefined;
  const text = (Array.isArray(header) ? header.join(',') : header).trim();
  if (text === '*') return undefined;
  const revisions: number[] = [];
  for (const item of text.split(',').map((t) => t.trim())) {
    const match = ENTITY_TAG.exec(item);
    if (!match) throw new HadesError('HADES_ERR_API_INVALID_REQUEST', `the If-Match value sent, ${text.slice(0, 200).replace(/[^\x20-\x7e]/g, '?')}, is not a list of entity tags: send the ETag that GET /api/v1/alerts/ID gave, quotes included (e.g. If-Match: "3"), or * (any revision)`);
    if (match[1] === undefined && /^[1-9][0-9]{0,14}$/.test(match[2]!)) revisions.push(Number(match[2]));
  }
  return revisions;
}

/**
 * What each kind of task needs, checked before anything is sent: a task the agents would refuse
 * is refused here, once, rather than failing on every agent of a group.
 */
function checkTaskParams(kind: (typeof TASK_KINDS)[number], params: Record<string, unknown>): void {
  const bad = (message: string) => new HadesError('HADES_ERR_API_INVALID_REQUEST', `${aTask(kind)}: ${message}`);
  // Only the keys the kind takes: a key the agents ignore would still be stored and audited, so
  // `query_id` would put the task among another fleet query's hosts, and padding would push the
  // task (its kind and SQL) out of its audit record, which keeps at most 16 KiB of details.
  const accepted = TASK_PARAMS[kind];
  const unknown = Object.keys(params).filter((key) => !accepted.includes(key));
  if (unknown.length > 0) {
    throw bad(`params ${unknown.slice(0, 5).map((key) => JSON.stringify(key.slice(0, 64))).join(', ')}${unknown.length > 5 ? ` and ${unknown.length - 5} more` : ''} ${unknown.length === 1 ? 'is' : 'are'} not taken (${kind} takes ${accepted.join(', ')}; docs/plugins.md)`);
  }
  switch (kind) {
    case 'log_level': {
      const problem = logLevelProblem(params);
      if (problem) throw bad(problem);
      return;
    }
    case 'restart_plugin':
      if (typeof params['name'] !== 'string' || !/^[a-z0-9][a-z0-9_-]{0,63}$/.test(params['name'])) throw bad(`params.name must name a plugin, e.g. inventory, logs, honeypot, driver (got ${JSON.stringify(params['name'] ?? null)})`);
      return;
    case 'query':
    case 'inventory':
      // The agent's own check: the SQL or table, and the limits (timeout_s, max_rows, max_bytes).
      try {
        parseQueryTask(kind, params);
      } catch (error) {
        throw bad(toHadesError(error).message);
      }
      // A well-formed name of no table: each agent would answer HADES_ERR_QUERY_UNKNOWN_TABLE.
      // (The SQL of a query is left to the agents: which of its names are tables only SQLite
      // can tell, with the tables' columns, as the agent's engine does.)
      if (kind === 'inventory' && !isInventoryTable(params['table'])) throw unknownTable(kind, String(params['table']));
      return;
  }
}

/** The results a list of tasks holds at most, in characters of JSON (one result is up to 8 MiB). */
const LIST_RESULT_CHARS = 16 * 1024 * 1024;

/** `a query task`, `an inventory task`. */
const aTask = (kind: string): string => `${/^[aeiou]/.test(kind) ? 'an' : 'a'} ${kind} task`;

/** An inventory task naming a table the agents do not have, with the closest name if one is close. */
function unknownTable(kind: string, table: string): HadesError {
  const close = suggest(table, INVENTORY_TABLES);
  return new HadesError('HADES_ERR_API_INVALID_REQUEST', `${aTask(kind)}: params.table: no inventory table named ${table}${close ? `; did you mean ${close}?` : `; tables: ${INVENTORY_TABLES.join(', ')}`} (docs/tables.md)`, {
    details: { table, ...(close ? { suggestion: close } : {}) },
  });
}

/**
 * A query parameter with a default may be left out (the validator fills it in): it is not
 * required, which the OpenAPI document then says too. TypeBox lists such properties as required
 * because the handlers' types see them always present.
 */
function optionalDefaults<S extends TSchema>(schema: S): S {
  const object = schema as TSchema & { required?: string[]; properties?: Record<string, { default?: unknown }> };
  if (!Array.isArray(object.required) || object.properties === undefined) return schema;
  const required = object.required.filter((key) => object.properties?.[key]?.default === undefined);
  const copy = { ...object, required } as typeof object;
  if (required.length === 0) delete copy.required;
  return copy as unknown as S;
}

export async function buildApi(options: ApiOptions): Promise<FastifyInstance> {
  const { ports } = options;
  const app = Fastify({
    // As the gateway's: a connection idle before its handshake ends is closed (not after two minutes).
    https: { key: options.tls.keyPem, cert: options.tls.certPem, handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS },
    logger: false,
    bodyLimit: 1024 * 1024,
    // Ids in paths may be 128 characters (the schemas say so): the router's own limit is 100.
    routerOptions: { maxParamLength: 256 },
    // A path that does not decode (`%ZZ`): a coded answer like every other.
    frameworkErrors: (error, _request, reply) => {
      void (reply as FastifyReply).status(400).send({ code: 'HADES_ERR_API_INVALID_REQUEST', message: `the request's path or query is malformed: ${error.message}` });
    },
    // What the HTTP parser refuses before any route sees it (an unknown method, headers over
    // 16 KiB, a broken request line) also gets one coded JSON answer, then the connection closes.
    clientErrorHandler: (error: Error & { code?: string }, socket) => {
      // A reset connection has nothing left to answer.
      if (error.code === 'ECONNRESET' || socket.destroyed) return;
      const [status, answer] =
        error.code === 'HPE_HEADER_OVERFLOW'
          ? (['431 Request Header Fields Too Large', { code: 'HADES_ERR_API_TOO_LARGE', message: 'the request\'s headers (with its query string) are larger than the API takes (16 KiB)' }] as const)
          : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
            ? (['408 Request Timeout', { code: 'HADES_ERR_API_INVALID_REQUEST', message: 'the request did not arrive whole in time' }] as const)
            : (['400 Bad Request', { code: 'HADES_ERR_API_INVALID_REQUEST', message: `the request is not HTTP the API takes (${error.code ?? error.message})` }] as const);
      const body = JSON.stringify(answer);
      // Not over a response already on its way (a pipelined request before this one).
      const busy = (socket as { _httpMessage?: unknown })._httpMessage !== undefined && (socket as { _httpMessage?: unknown })._httpMessage !== null;
      if (socket.writable && !busy) socket.write(`HTTP/1.1 ${status}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\ncache-control: no-store\r\nx-content-type-options: nosniff\r\nconnection: close\r\n\r\n${body}`);
      socket.destroy();
    },
  });
  app.setValidatorCompiler(validatorCompiler());
  // JSON bodies are UTF-8 (RFC 8259): another charset said, or bytes that are not UTF-8, are
  // refused rather than read as U+FFFD (a token's name, a comment stored other than as sent).
  const json = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(request.headers['content-type'] ?? '')?.[1];
    if (charset !== undefined && !/^utf-?8$/i.test(charset)) {
      done(new HadesError('HADES_ERR_API_UNSUPPORTED_MEDIA_TYPE', `a JSON body in ${charset} is not supported: send UTF-8 (Content-Type: application/json)`), undefined);
      return;
    }
    if (!isUtf8(body as Buffer)) {
      done(new HadesError('HADES_ERR_API_INVALID_REQUEST', 'the body is not UTF-8: JSON is sent in UTF-8'), undefined);
      return;
    }
    void json(request, (body as Buffer).toString('utf8'), done);
  });
  await app.register(fastifySwagger, {
    openapi: {
      info: {
        title: 'Hades server API',
        version: options.version,
        description:
          'Fleet, events, tasks and tokens of a Hades deployment. Authenticate with `Authorization: Bearer TOKEN`. Bodies are JSON (`Content-Type: application/json`; another media type answers 415) with snake_case names, as events (ECS) have. Requests that create something answer 201. Every error is `{code, message}` with a HADES_ERR_* code; an unknown path answers 404, a known path with a method it does not take 405 with an `Allow` header.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });

  // The API takes JSON only: without Fastify's text/plain parser, a text body answers 415 like
  // any other media type instead of failing the schema with 400.
  app.removeContentTypeParser('text/plain');

  // Every answer is about this deployment now (and one carries a new token's secret, shown once):
  // no cache keeps any. Nor is a body taken for another type than it says.
  app.addHook('onSend', (_request, reply, payload, done) => {
    void reply.header('cache-control', 'no-store').header('x-content-type-options', 'nosniff');
    done(null, payload);
  });

  // Refused requests go to the log (and a 403 of a token to the audit log), rate-limited.
  const refusals = new RefusalRecorder(
    { log: options.log, audit: (actor, target, details) => ports.audit({ id: actor.id, name: actor.name, role: actor.role as Role }, 'api.denied', target, details) },
    options.refusals,
  );
  app.addHook('onClose', (_instance, done) => {
    refusals.close();
    done();
  });
  // Who a request was authenticated as, once (see who() below); the record of a 403 names it.
  const principals = new WeakMap<FastifyRequest, Principal>();
  /** The least role a request was refused for (403 HADES_ERR_API_FORBIDDEN), for its record. */
  const refusedRole = new WeakMap<FastifyRequest, Role>();

  app.setErrorHandler((error: Error & { validation?: unknown; statusCode?: number; code?: string }, request, reply) => {
    let e: HadesError;
    if (error.validation) e = new HadesError('HADES_ERR_API_INVALID_REQUEST', validationMessage(error.validation, (error as { validationContext?: string }).validationContext) ?? error.message, { details: { problems: problemBodies(error.validation) } });
    else if (error instanceof HadesError) e = error;
    else if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || error.statusCode === 415) {
      const type = request.headers['content-type'];
      e = new HadesError('HADES_ERR_API_UNSUPPORTED_MEDIA_TYPE', `${type ? `content type '${type}'` : 'a body without a content type'} is not supported: send JSON with Content-Type: application/json`);
    } else if (error.code === 'FST_ERR_CTP_INVALID_JSON_BODY') e = new HadesError('HADES_ERR_API_INVALID_REQUEST', 'the body is not valid JSON (its Content-Type says application/json), or it has a __proto__ or constructor.prototype key, which the API refuses');
    else if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') e = new HadesError('HADES_ERR_API_TOO_LARGE', 'the body is larger than the API takes (1 MiB)');
    else if (error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') e = new HadesError('HADES_ERR_API_INVALID_REQUEST', 'the body is empty but its Content-Type says application/json: send a JSON body, or no Content-Type with no body');
    else if (error.statusCode && error.statusCode < 500) e = new HadesError('HADES_ERR_API_INVALID_REQUEST', error.message);
    else e = toHadesError(error);
    // A bug, and the database's own trouble (a full disk, a damaged file), which the operator must hear of.
    if (e.kind === 'bug' || e.code === 'HADES_ERR_DATABASE') options.log.error('API request failed', { err: e, url: request.url });
    const status = statusOfCode(e.code);
    if (status === 401 || status === 403) {
      const principal = principals.get(request);
      const needed = refusedRole.get(request);
      const header = request.headers.authorization;
      const notBearer = typeof header === 'string' && header.trim() !== '' && !/^Bearer\s+/i.test(header);
      // The id (public part) the refused token claimed: a bearer token's, or an enrollment token's.
      const claimedId = error instanceof Unauthenticated && error.claimedId !== undefined ? error.claimedId : enrollmentTokenId(request.body);
      refusals.refused({
        status,
        code: e.code,
        method: request.method,
        route: request.routeOptions.url ?? 'unknown',
        address: request.ip,
        ...(status === 403 && principal ? { principal } : {}),
        ...(needed === undefined ? {} : { needed }),
        ...(status === 401 ? { reason: notBearer ? 'not_bearer' : error instanceof Unauthenticated ? error.reason : 'refused' } : {}),
        ...(claimedId === undefined ? {} : { claimedId }),
      });
    }
    // A 401 says how to authenticate (RFC 9110, 11.6.1; the scheme of RFC 6750).
    if (e.code === 'HADES_ERR_API_UNAUTHENTICATED') void reply.header('www-authenticate', `Bearer realm="hades"${request.headers.authorization === undefined ? '' : ', error="invalid_token"'}`);
    void reply.status(status).send({ code: e.code, message: e.message, ...(e.details ? { details: e.details } : {}) });
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '/';
    // A path some route takes with another method: 405 with the methods it does take.
    const allowed = METHODS.filter((method) => app.findRoute({ method, url: path }) !== null);
    if (allowed.length > 0) {
      void reply
        .status(405)
        .header('allow', allowed.join(', '))
        .send({ code: 'HADES_ERR_API_METHOD_NOT_ALLOWED', message: `${path} does not take ${request.method}; it takes ${allowed.join(', ')}` });
      return;
    }
    void reply.status(404).send({ code: 'HADES_ERR_API_NOT_FOUND', message: `no route ${request.method} ${path}` });
  });

  /** Authenticates and authorises; returns the principal. */
  // A request is authenticated once: by its route's role check before validation, and the
  // handler's own who() (which may ask for more) reads the same principal.
  const who = (request: FastifyRequest, needed: Role): Principal => {
    let principal = principals.get(request);
    if (principal === undefined) {
      const header = request.headers.authorization;
      const bearer = typeof header === 'string' && /^Bearer\s+/i.test(header) ? header.replace(/^Bearer\s+/i, '').trim() : undefined;
      // Another scheme (Basic, a bare token) is not read as a token: say so, not that none came.
      if (bearer === undefined && typeof header === 'string' && header.trim() !== '') {
        throw new Unauthenticated(`the Authorization header is not a Bearer token (${JSON.stringify(header.trim().split(/\s+/)[0]!.slice(0, 20))} scheme): send Authorization: Bearer <token>`, 'not_bearer');
      }
      principal = ports.authenticate(bearer);
      principals.set(request, principal);
    }
    try {
      ports.authorize(principal, needed);
    } catch (error) {
      refusedRole.set(request, needed);
      throw error;
    }
    return principal;
  };
  const checkRole = (role: Role) => (request: FastifyRequest, _reply: FastifyReply, done: (error?: Error) => void): void => {
    try {
      who(request, role);
      done();
    } catch (error) {
      done(error as Error);
    }
  };
  const found = <T>(value: T | undefined, what: string): T => {
    if (value === undefined || value === null) throw new HadesError('HADES_ERR_API_NOT_FOUND', `no ${what}`);
    return value;
  };
  const route = <Q extends TSchema, B extends TSchema, P extends TSchema>(
    method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
    url: string,
    spec: {
      summary: string;
      tags: string[];
      querystring?: Q;
      body?: B;
      params?: P;
      /** What success answers (its JSON Schema): every property the answer keeps must be named, or the object open (api-schemas.ts). */
      response: TSchema;
      public?: boolean;
      /**
       * The least role the route takes, checked before the request is validated: a token that
       * may not use the route is told so (401, 403) before anything about its body or query.
       * The handler may ask for more (a task kind for admins).
       */
      role?: Role;
      /** What the OpenAPI document says of the role besides `role` (a handler that asks for more). */
      roleNote?: string;
      /**
       * What success answers: 200 (the default); 201, set here, for a route that creates
       * something; both for a PUT that creates or replaces (its handler sets 201 when it creates).
       */
      success?: readonly (200 | 201)[];
      /** Error statuses besides the usual ones (400, 401, 403, 404, 503) that the route answers. */
      errors?: readonly (409 | 412)[];
    },
    handler: (request: FastifyRequest<{ Querystring: Static<Q>; Body: Static<B>; Params: Static<P> }>, reply: FastifyReply) => unknown,
  ) => {
    const success = spec.success ?? [200];
    const answer = spec.response;
    const responses: Record<number, TSchema> = {};
    for (const status of success) responses[status] = status === 201 && answer.description === undefined ? { ...answer, description: 'Created.' } : answer;
    const alwaysCreates = success.length === 1 && success[0] === 201;
    app.route({
      method,
      url,
      schema: {
        summary: spec.summary,
        // The role, for a client reading the document (403 HADES_ERR_API_FORBIDDEN below it).
        ...(spec.role ? { description: `Needs the role ${spec.role} or higher (read-only < analyst < admin)${spec.roleNote ? `; ${spec.roleNote}` : ''}.` } : {}),
        tags: spec.tags,
        ...(spec.querystring ? { querystring: optionalDefaults(spec.querystring) } : {}),
        ...(spec.body ? { body: spec.body } : {}),
        ...(spec.params ? { params: spec.params } : {}),
        ...(spec.public ? { security: [] } : {}),
        response: { ...responses, ...errors, ...Object.fromEntries((spec.errors ?? []).map((status) => [status, ErrorBody])), ...(BODY_METHODS.has(method) ? { 415: ErrorBody } : {}) },
      },
      // onRequest: refused for who they are before anything of the body is read (401/403 before 400, 413, 415).
      ...(spec.role ? { onRequest: checkRole(spec.role) } : {}),
      handler: (alwaysCreates ? (request: never, reply: FastifyReply) => handler(request, reply.code(201)) : handler) as never,
    });
  };

  route('GET', '/api/v1/health', { summary: 'Liveness of the server (no authentication).', tags: ['server'], public: true, response: Type.Object({ ok: Type.Boolean(), version: Type.String() }) }, () => ({ ok: true, version: options.version }));

  // Enrollment: the only routes agents use, authenticated by the one-time token.
  route('GET', '/api/v1/enroll/ca', { summary: 'The CA certificate, for agents to check against the fingerprint given with their token.', tags: ['enrollment'], public: true, response: Type.Object({ ca: Type.String(), sha256: Type.String() }) }, () => ({ ca: ports.caPem(), sha256: ports.caFingerprint() }));
  route(
    'POST',
    '/api/v1/enroll',
    {
      summary: 'Enroll an agent with a one-time token and a certificate request; returns its client certificate.',
      tags: ['enrollment'],
      public: true,
      body: Type.Object(
        {
          token: Type.String({ minLength: 1, maxLength: 256 }),
          csr: Type.String({ minLength: 1, maxLength: 16_384 }),
          hostname: Type.String({ minLength: 1, maxLength: 256 }),
          addresses: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 64, default: [] }),
          os: Type.String({ maxLength: 256, default: '' }),
          kernel: Type.String({ maxLength: 128, default: '' }),
          version: Type.String({ maxLength: 32, default: '' }),
        },
        { additionalProperties: false },
      ),
      response: Type.Object({
        agent_id: Type.String(),
        certificate: Type.String(),
        gateways: Type.Array(Type.String()),
        agentId: Type.String({ deprecated: true, description: 'agent_id again, for agents before 2026-11-29, which read this name.' }),
      }),
    },
    async (request) => {
      const enrolled = await ports.enroll(request.body);
      // The one camelCase name the API still writes: agents already installed read it, and
      // must keep enrolling (as with the 200 above). It goes with them.
      return { ...enrolled, gateways: ports.gateways(), agentId: enrolled.agent_id };
    },
  );

  // Fleet.
  route(
    'GET',
    '/api/v1/agents',
    { role: 'read-only', summary: 'The fleet: every agent with its state.', tags: ['fleet'], response: Answers.AgentsBody, querystring: Type.Object({ group: Type.Optional(Type.String({ maxLength: 128 })), online: Type.Optional(Type.Boolean()) }, { additionalProperties: false }) },
    (request) => {
      who(request, 'read-only');
      return { agents: ports.listAgents({ ...(request.query.group ? { group: request.query.group } : {}), ...(request.query.online !== undefined ? { online: request.query.online } : {}) }) };
    },
  );
  route('GET', '/api/v1/agents/:id', { role: 'read-only', summary: 'One agent.', tags: ['fleet'], params: Id, response: Answers.AgentSchema }, (request) => {
    who(request, 'read-only');
    return found(ports.getAgent(request.params.id), `agent ${request.params.id}`);
  });
  route('POST', '/api/v1/agents/:id/revoke', { role: 'admin', summary: 'Revoke an agent: its connections are refused from now on. An agent revoked already answers `already: true`, and nothing is recorded again.', tags: ['fleet'], params: Id, response: Answers.OkBody }, (request) => {
    const principal = who(request, 'admin');
    const agent = found(ports.getAgent(request.params.id), `agent ${request.params.id}`);
    // As for tokens: once is what the audit log says.
    if (agent.revoked_at !== undefined) return { ok: true, already: true };
    ports.revokeAgent(request.params.id, () => ports.audit(principal, 'agent.revoke', request.params.id));
    return { ok: true };
  });
  route(
    'POST',
    '/api/v1/agents/:id/renew',
    {
      role: 'admin',
      summary: 'Ask an agent to renew its certificate (a new key pair), e.g. when its key may have leaked; it does so within its outputs.server.renew_jitter_s (300 s by default: a delay that spreads a fleet asked at once), or at once with `now=true` (and reconnects with the new certificate at once: the old one is refused from then on); an agent offline is asked when it next connects.',
      tags: ['fleet'],
      params: Id,
      querystring: Type.Object({ now: Type.Boolean({ default: false, description: 'Renew without the agent\'s random delay (a key that may be in other hands): `now=true`.' }) }, { additionalProperties: false }),
      response: Type.Object({
        sent: Type.Boolean({ description: 'true: the agent is connected and was asked now; false: it is asked at its next connection.' }),
        immediately: Type.Boolean({ description: 'Asked without the agent\'s random delay (now=true). An agent of an earlier release takes its delay all the same.' }),
      }),
    },
    (request) => {
      const principal = who(request, 'admin');
      const agent = found(ports.getAgent(request.params.id), `agent ${request.params.id}`);
      // Recorded before the agent is asked: whether it was connected then (asked now, or at its next connection).
      const immediately = request.query.now;
      return ports.renewAgent(request.params.id, immediately, () => ports.audit(principal, 'agent.renew', request.params.id, { online: agent.online, immediately }));
    },
  );
  // The CA and its rotation (docs/architecture.md, "Trust and identity").
  route('GET', '/api/v1/pki/ca', { role: 'read-only', summary: 'The server\'s CAs (the one in use, the new one during a rotation, those retired) and how many agents hold a certificate of each.', tags: ['pki'], response: Answers.CaStatusBody }, (request) => {
    who(request, 'read-only');
    return ports.caStatus();
  });
  route(
    'POST',
    '/api/v1/pki/ca/rotate',
    {
      role: 'admin',
      summary: 'Start a CA rotation (the CA nears its end, or its key may have leaked): a new CA beside the old one. Both are trusted during the overlap, the new one issues every agent certificate, agents are sent both and renew under the new one by themselves (within their renew_jitter_s). 409 HADES_ERR_CA_ROTATION_IN_PROGRESS while one is in progress.',
      tags: ['pki'],
      success: [201],
      errors: [409],
      response: Answers.CaRotateBody,
    },
    async (request) => {
      const principal = who(request, 'admin');
      return await ports.rotateCa((ca) => ports.audit(principal, 'ca.rotate', ca.sha256, { old: ca.old, agents_on_old: ca.agents }));
    },
  );
  route(
    'POST',
    '/api/v1/pki/ca/retire-old',
    {
      role: 'admin',
      summary: 'Retire the old CA of the rotation in progress: the server certificate is reissued under the new CA and the old one is trusted no more. Refused (409 HADES_ERR_CA_AGENTS_REMAIN) while agents not revoked still hold a certificate of the old CA, unless `force=true`: those are then refused (HADES_ERR_CA_RETIRED) and must be enrolled again. 409 HADES_ERR_CA_NOTHING_TO_RETIRE without a rotation.',
      tags: ['pki'],
      errors: [409],
      querystring: Type.Object({ force: Type.Boolean({ default: false, description: 'Retire even with agents still on the old CA (they must be enrolled again): `force=true`.' }) }, { additionalProperties: false }),
      response: Answers.CaRetireBody,
    },
    async (request) => {
      const principal = who(request, 'admin');
      const force = request.query.force;
      return await ports.retireOldCa(force, (retired) => ports.audit(principal, 'ca.retire', retired.sha256, { forced: retired.forced, agents_left_behind: retired.left_behind }));
    },
  );
  route(
    'PUT',
    '/api/v1/agents/:id/tags',
    { role: 'admin', summary: 'Replace an agent\'s tags.', tags: ['fleet'], params: Id, response: Answers.OkBody, body: Type.Record(Type.String(), Type.String({ maxLength: 256 }), { description: 'Tag names: a letter or digit, then up to 63 of letters, digits and _ . : / -.' }) },
    (request) => {
      const principal = who(request, 'admin');
      const bad = Object.keys(request.body).filter((key) => !/^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}$/.test(key));
      if (bad.length > 0) throw new HadesError('HADES_ERR_API_INVALID_REQUEST', `invalid tag name ${bad.map((k) => JSON.stringify(k)).join(', ')}`);
      found(ports.getAgent(request.params.id), `agent ${request.params.id}`);
      ports.setAgentTags(request.params.id, request.body, () => ports.audit(principal, 'agent.tags', request.params.id, { tags: request.body }));
      return { ok: true };
    },
  );
  const GROUP_PATTERN = '^[A-Za-z0-9_.-]{1,64}$';
  route(
    'PUT',
    '/api/v1/agents/:id/groups',
    {
      role: 'admin',
      summary: 'Put an agent in these groups (replacing its groups); the configuration of its groups is pushed to it when it is connected.',
      tags: ['fleet'],
      params: Id,
      response: Answers.AgentGroupsBody,
      body: Type.Object({ groups: Type.Array(Type.String({ pattern: GROUP_PATTERN }), { minItems: 1, maxItems: 16, uniqueItems: true }) }, { additionalProperties: false }),
    },
    (request) => {
      const principal = who(request, 'admin');
      found(ports.getAgent(request.params.id), `agent ${request.params.id}`);
      return ports.setAgentGroups(request.params.id, request.body.groups, () => ports.audit(principal, 'agent.groups', request.params.id, { groups: request.body.groups }));
    },
  );
  const GroupName = Type.Object({ name: Type.String({ pattern: GROUP_PATTERN }) });
  route('GET', '/api/v1/groups', { role: 'read-only', summary: 'Every group that has a configuration or members: its member count (revoked agents left out) and its configuration\'s version.', tags: ['fleet'], response: Answers.GroupsBody }, (request) => {
    who(request, 'read-only');
    return { groups: ports.listGroups() };
  });
  route('GET', '/api/v1/groups/:name/config', { role: 'admin', summary: 'The agent configuration of a group (YAML; admin role: it may hold the credentials of outputs, such as an HTTP output\'s authorization header).', tags: ['fleet'], params: GroupName, response: Answers.GroupConfigSchema }, (request) => {
    who(request, 'admin');
    return found(ports.getGroupConfig(request.params.name), `configuration for group ${request.params.name}`);
  });
  route(
    'PUT',
    '/api/v1/groups/:name/config',
    {
      role: 'admin',
      summary: 'Set the agent configuration of a group; it is checked, stored and pushed to the group\'s connected agents. 201 when the group had none yet, 200 when it replaces one.',
      tags: ['fleet'],
      params: GroupName,
      response: Answers.GroupConfigSetBody,
      body: Type.Object({ yaml: Type.String({ maxLength: 1024 * 1024 }) }, { additionalProperties: false }),
      success: [200, 201],
    },
    (request, reply) => {
      const principal = who(request, 'admin');
      // A text that sets nothing would put every agent of the group on the defaults (file output,
      // metrics on their default port, no decoys...): a truncated upload must not do that.
      if (setsNothing(request.body.yaml)) throw new HadesError('HADES_ERR_API_INVALID_REQUEST', 'the configuration sets nothing (empty, only comments, or an empty YAML document): give a complete agent configuration (hades config defaults --role agent); DELETE the group\'s configuration to send its agents back to their own files');
      const parsed = parseRoleConfig(request.body.yaml, 'agent');
      if (!parsed.ok) throw new HadesError('HADES_ERR_API_INVALID_REQUEST', `the configuration has ${parsed.problems.length} problem(s)`, { details: { problems: parsed.problems } });
      const result = ports.setGroupConfig(request.params.name, request.body.yaml, (version) =>
        // What ran is on record: the text's digest and size, to match a copy against (the text itself may hold secrets, as outputs' headers).
        ports.audit(principal, 'group.config', request.params.name, { version, sha256: createHash('sha256').update(request.body.yaml).digest('hex'), bytes: Buffer.byteLength(request.body.yaml) }),
      );
      // Version 1 is the group's first configuration: created.
      if (result.version === 1) void reply.code(201);
      return result;
    },
  );

  route(
    'DELETE',
    '/api/v1/groups/:name/config',
    { role: 'admin', summary: 'Remove the agent configuration of a group: its connected agents go back to their own files (or to the configuration of another of their groups).', tags: ['fleet'], params: GroupName, response: Answers.GroupConfigDeleteBody },
    (request) => {
      const principal = who(request, 'admin');
      return found(
        ports.deleteGroupConfig(request.params.name, () => ports.audit(principal, 'group.config.delete', request.params.name)),
        `configuration for group ${request.params.name}`,
      );
    },
  );

  // Tasks.
  route(
    'POST',
    '/api/v1/tasks',
    {
      role: 'analyst',
      roleNote: 'restart_plugin and log_level tasks need admin',
      summary: 'Create a task for one or more agents (query, inventory, restart_plugin, log_level). All or nothing: each agent once; an unknown agent is a 404, a revoked one a 403, and one with 1,024 tasks open already a 409 (HADES_ERR_TASK_TOO_MANY), and then no task is made. Tasks are audited before they are sent.',
      tags: ['tasks'],
      success: [201],
      errors: [409],
      response: Answers.TasksBody,
      body: Type.Object(
        {
          agents: Type.Array(Type.String({ maxLength: 128 }), { minItems: 1, maxItems: 10_000 }),
          kind: Type.Union(TASK_KINDS.map((k) => Type.Literal(k))),
          params: Type.Record(Type.String(), Type.Unknown(), { default: {}, description: `The parameters of the kind, and no others: ${Object.entries(TASK_PARAMS).map(([kind, keys]) => `${kind}: ${keys.join(', ')}`).join('; ')} (docs/plugins.md).` }),
          timeout_s: Type.Integer({ minimum: 1, maximum: 86_400, default: 300 }),
        },
        { additionalProperties: false },
      ),
    },
    (request) => {
      const { kind } = request.body;
      const principal = who(request, kind === 'restart_plugin' || kind === 'log_level' ? 'admin' : 'analyst');
      checkTaskParams(kind, request.body.params);
      // Every task is recorded before it is sent, whoever made it: a query task reads the hosts
      // it runs on. The target names one agent, or how many (a group of thousands is no audit
      // target): the details list the first hundred.
      const tasks = ports.createTask({
        agentIds: request.body.agents,
        kind,
        params: request.body.params,
        timeoutS: request.body.timeout_s,
        createdBy: principal.name,
        created: (agents) => ports.audit(principal, 'task.create', agents.length === 1 ? agents[0]! : `${agents.length} agents`, { kind, params: auditedParams(request.body.params), tasks: agents.length, agents: agents.slice(0, 100) }),
      });
      return { tasks };
    },
  );
  route(
    'GET',
    '/api/v1/tasks',
    { role: 'read-only', summary: `Tasks, newest first. Their results together hold at most ${LIST_RESULT_CHARS / 1024 / 1024} MiB of JSON: a task whose result would pass that comes with \`result_omitted: true\` (GET /api/v1/tasks/ID has it).`, tags: ['tasks'], response: Answers.TasksBody, querystring: Type.Object({ agent: Type.Optional(Type.String({ maxLength: 128 })), status: Type.Optional(Type.Union(TASK_STATUSES.map((s) => Type.Literal(s)))), limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }) }, { additionalProperties: false }) },
    (request) => {
      who(request, 'read-only');
      return { tasks: ports.listTasks({ ...(request.query.agent ? { agentId: request.query.agent } : {}), ...(request.query.status ? { status: request.query.status } : {}), limit: request.query.limit, resultChars: LIST_RESULT_CHARS }) };
    },
  );
  route('GET', '/api/v1/tasks/:id', { role: 'read-only', summary: 'One task with its result.', tags: ['tasks'], params: Id, response: Answers.TaskSchema }, (request) => {
    who(request, 'read-only');
    return found(ports.getTask(request.params.id), `task ${request.params.id}`);
  });

  // Events.
  route('GET', '/api/v1/events', { role: 'read-only', summary: `Search stored events, newest first, with keyset pagination (\`next\` is the cursor of the following page). A request walks one index in time order (an equality on event.id, destination.ip, process.executable, host, user.name or up to 8 actions: of those it has, the one with the fewest events in the window, counted up to ${PROBE_ROWS.toLocaleString('en-US')}, else the first in that order; with none, time alone) and tests its other terms on at most ${SCAN_BUDGET.toLocaleString('en-US')} / (its filters on fields that are not indexed) of the events walked, ${(SCAN_BUDGET / ROW_SCAN_COST).toLocaleString('en-US')} when every other term is on a column (such as host, action, user.name, process.name, or any prefix or contains): a page that stopped there says \`partial: true\` and may hold fewer events than asked (even none); its \`next\` goes on, and the pages together hold every match once. A page also stops before ${PAGE_BYTES_EVENTS / (1024 * 1024)} MiB of events (with one at least), however many were asked for, and says \`partial: true\` too.`, tags: ['events'], querystring: SearchQuery, response: Answers.EventsBody }, (request) => {
    who(request, 'read-only');
    const q = request.query;
    const now = Date.now();
    const actions = q.action ? q.action.split(',').map((a) => a.trim()).filter(Boolean) : undefined;
    for (const action of actions ?? []) {
      if (!(eventActions as readonly string[]).includes(action)) {
        throw new HadesError('HADES_ERR_API_INVALID_REQUEST', `unknown action '${action}'${didYouMean(suggest(action, eventActions))} (actions: ${eventActions.join(', ')})`);
      }
    }
    const filters = q.filter === undefined ? [] : (Array.isArray(q.filter) ? q.filter : [q.filter]).map(parseFilter);
    // `host` given as an agent's id is that agent: with `agent` naming another, no event is both.
    if (q.agent && q.host && AGENT_ID_RE.test(q.host) && q.host !== q.agent) throw new HadesError('HADES_ERR_API_INVALID_REQUEST', `host ${q.host} is an agent's id and agent names another (${q.agent}): give one of them`);
    const query: EventQuery = {
      // No upper bound unless asked: an event from a host whose clock is ahead is not hidden.
      ...searchWindow(q, now),
      // A host named by its agent's id (as `hades agents list` shows it) is that agent's events.
      ...(q.host && !AGENT_ID_RE.test(q.host) ? { host: q.host } : {}),
      ...(actions ? { action: actions } : {}),
      ...(q.agent || (q.host && AGENT_ID_RE.test(q.host)) ? { agentId: q.agent ?? q.host } : {}),
      filters,
      limit: q.limit ?? 100,
      ...(q.cursor ? { cursor: q.cursor } : {}),
      ...(q.order ? { order: q.order } : {}),
    };
    return ports.searchEvents(query);
  });

  // Fleet queries.
  route(
    'POST',
    '/api/v1/queries',
    {
      role: 'analyst',
      summary: 'Run SQL over the inventory tables of a set of agents (named agents, a group, or, with neither, the whole fleet). Returns at once; GET /api/v1/queries/ID gives the results per host as they come, partial until every host has answered or the timeout has passed. An agent with 1,024 tasks open already refuses the whole query (409 HADES_ERR_TASK_TOO_MANY).',
      tags: ['queries'],
      success: [201],
      errors: [409],
      response: FleetQueryBody,
      body: Type.Object(
        {
          sql: Type.String({ minLength: 1, maxLength: MAX_TASK_SQL_CHARS }),
          agents: Type.Optional(Type.Array(Type.String({ maxLength: 128 }), { minItems: 1, maxItems: 10_000 })),
          group: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$' })),
          timeout_s: Type.Integer({ minimum: 1, maximum: 3600, default: 60 }),
        },
        { additionalProperties: false },
      ),
    },
    (request) => {
      const principal = who(request, 'analyst');
      if (request.body.agents && request.body.group) throw new HadesError('HADES_ERR_API_INVALID_REQUEST', 'give agents or a group, not both');
      const agentIds = ports.queryTargets({ ...(request.body.agents ? { agents: request.body.agents } : {}), ...(request.body.group ? { group: request.body.group } : {}) });
      // Audited before any host gets the SQL (in the query's transaction), like tasks.
      return ports.createFleetQuery({ sql: request.body.sql, agentIds, timeoutMs: request.body.timeout_s * 1000, createdBy: principal.name }, (id) =>
        ports.audit(principal, 'query.create', id, { sql: request.body.sql.slice(0, 1024), agents: agentIds.length }),
      );
    },
  );
  route('GET', '/api/v1/queries', { role: 'read-only', summary: 'Fleet queries, newest first (without results).', tags: ['queries'], response: Answers.FleetQueriesBody, querystring: Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }) }, { additionalProperties: false }) }, (request) => {
    who(request, 'read-only');
    return { queries: ports.listFleetQueries(request.query.limit) };
  });
  route(
    'GET',
    '/api/v1/queries/:id',
    {
      role: 'read-only',
      summary: `A fleet query with its hosts' answers so far (rows, an error, or pending), a page of hosts at a time with keyset pagination: \`next\` is the cursor of the following page, absent on the last. A page holds at most \`limit\` hosts and stops early before ${PAGE_BYTES / (1024 * 1024)} MiB of answers (each host's answer is bounded by the agent); \`limit=0\` gives the summary alone (to wait for \`complete\`). \`summary\` and \`complete\` (every host has answered or the deadline has passed) always count every host.`,
      tags: ['queries'],
      params: Id,
      querystring: Type.Object(
        {
          limit: Type.Integer({ minimum: 0, maximum: MAX_HOSTS_PAGE, default: DEFAULT_HOSTS_PAGE, description: 'Hosts of the page at most; 0 for the summary alone.' }),
          cursor: Type.Optional(Type.String({ maxLength: 512, description: 'The `next` of the previous page, unchanged.' })),
        },
        { additionalProperties: false },
      ),
      response: FleetQueryBody,
    },
    (request) => {
      who(request, 'read-only');
      const { limit, cursor } = request.query;
      return found(ports.getFleetQuery(request.params.id, { limit, ...(cursor === undefined ? {} : { cursor }) }), `query ${request.params.id}`);
    },
  );

  // Alerts.
  const Statuses = Type.Union(ALERT_STATUSES.map((s) => Type.Literal(s)));
  const Severities = Type.Union(SEVERITIES.map((s) => Type.Literal(s)));
  route(
    'GET',
    '/api/v1/alerts',
    {
      role: 'read-only',
      summary: 'Alerts, newest first, with keyset pagination (`next` is the cursor of the following page).',
      tags: ['alerts'],
      response: Answers.AlertsBody,
      querystring: Type.Object(
        {
          since: Type.Optional(Type.String({ description: 'Alerts whose last event is at or after this (one that keeps firing stays in view), or that the server raised or folded a match into at or after it (its clock: an alert about events dated days back, raised now, is shown): a duration back from now (15m, 2h, 7d) or an ISO time. Without a zone an ISO time is UTC. Default: 24 hours before `until`, else before now. The pages after the first keep its window (their cursor carries it).' })),
          until: Type.Optional(Type.String({ description: 'Alerts that began at or before this: a duration back from now or an ISO time. Default: none (alerts dated ahead of the server clock are found too).' })),
          status: Type.Optional(Type.String({ maxLength: 128, description: `Comma-separated statuses: ${ALERT_STATUSES.join(', ')}.` })),
          severity: Type.Optional(Severities),
          rule: Type.Optional(Type.String({ maxLength: 256 })),
          host: Type.Optional(Type.String({ maxLength: 256 })),
          limit: Type.Integer({ minimum: 1, maximum: 10_000, default: 100 }),
          cursor: Type.Optional(Type.String({ maxLength: 512 })),
        },
        { additionalProperties: false },
      ),
    },
    (request) => {
      who(request, 'read-only');
      const q = request.query;
      const now = Date.now();
      const status = q.status?.split(',').map((s) => s.trim()).filter(Boolean);
      for (const s of status ?? []) {
        if (!(ALERT_STATUSES as readonly string[]).includes(s)) throw new HadesError('HADES_ERR_API_INVALID_REQUEST', `unknown status '${s}' (${ALERT_STATUSES.join(', ')})`);
      }
      return ports.searchAlerts({
        // No upper bound unless asked: an alert from a host whose clock is ahead is not hidden.
        ...searchWindow(q, now),
        ...(status ? { status: status as AlertStatus[] } : {}),
        ...(q.severity ? { minSeverity: q.severity } : {}),
        ...(q.rule ? { ruleId: q.rule } : {}),
        ...(q.host ? { host: q.host } : {}),
        limit: q.limit,
        ...(q.cursor ? { cursor: q.cursor } : {}),
      });
    },
  );
  route('GET', '/api/v1/alerts/:id', { role: 'read-only', summary: 'One alert with its events, process ancestry, host context, comments, triage history (`history`: who set what when, oldest first, the latest 500) and the alerts about the same process tree (`related`: the same process, one that started its process, or one its process started; within 6 hours, oldest first). The ETag header is its triage revision (`revision`), for If-Match on PATCH.', tags: ['alerts'], params: Id, response: Answers.AlertWithCommentsBody }, (request, reply) => {
    who(request, 'read-only');
    const alert = found(ports.getAlert(request.params.id), `alert ${request.params.id}`);
    if (alert.revision !== undefined) void reply.header('etag', alertEtag(alert.revision));
    return alert;
  });
  route(
    'PATCH',
    '/api/v1/alerts/:id',
    {
      role: 'analyst',
      summary:
        'Triage an alert: its status and assignee. With If-Match (the ETag of GET /api/v1/alerts/ID), an alert triaged since by someone else is not changed: 412 HADES_ERR_ALERT_CHANGED with its current state in `details`. Without If-Match the last triage wins. The answer\'s ETag is the new revision.',
      tags: ['alerts'],
      params: Id,
      errors: [412],
      response: Answers.AlertSchema,
      body: Type.Object({ status: Type.Optional(Statuses), assignee: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 128 }), Type.Null()])) }, { additionalProperties: false, minProperties: 1 }),
    },
    (request, reply) => {
      const principal = who(request, 'analyst');
      const expected = ifMatchRevisions(request.headers['if-match']);
      const alert = found(
        ports.triageAlert(request.params.id, request.body, {
          ...(expected === undefined ? {} : { expected }),
          // What it was, as well as what it became; written with the change or not at all.
          record: (from, to) => ports.audit(principal, 'alert.triage', request.params.id, { ...request.body, from: { status: from.status, assignee: from.assignee }, revision: to.revision }),
        }),
        `alert ${request.params.id}`,
      );
      if (alert.revision !== undefined) void reply.header('etag', alertEtag(alert.revision));
      return alert;
    },
  );
  route(
    'POST',
    '/api/v1/alerts/:id/comments',
    { role: 'analyst', summary: 'Comment on an alert (at most 16 KiB of UTF-8, 16,384 bytes; at most 500 comments an alert: 409 HADES_ERR_ALERT_TOO_MANY_COMMENTS past them).', tags: ['alerts'], params: Id, success: [201], errors: [409], response: Answers.CommentSchema, body: Type.Object({ text: Type.String({ minLength: 1, maxLength: MAX_COMMENT_BYTES, pattern: '\\S' }) }, { additionalProperties: false }) },
    (request) => {
      const principal = who(request, 'analyst');
      // The schema counts characters; an alert's comments are kept and read whole, in bytes.
      const bytes = Buffer.byteLength(request.body.text, 'utf8');
      if (bytes > MAX_COMMENT_BYTES) throw new HadesError('HADES_ERR_API_INVALID_REQUEST', `the comment is ${bytes} bytes of UTF-8; at most ${MAX_COMMENT_BYTES} (16 KiB)`);
      return found(
        ports.commentAlert(request.params.id, principal.name, request.body.text, () => ports.audit(principal, 'alert.comment', request.params.id, { text: request.body.text.slice(0, 1024) })),
        `alert ${request.params.id}`,
      );
    },
  );
  route(
    'GET',
    '/api/v1/suppressions',
    { role: 'read-only', summary: 'Alert suppressions in force (the expired ones too, with `expired=true`; lifted ones are deleted).', tags: ['alerts'], response: Answers.SuppressionsBody, querystring: Type.Object({ expired: Type.Boolean({ default: false }) }, { additionalProperties: false }) },
    (request) => {
      who(request, 'read-only');
      return { suppressions: ports.listSuppressions(request.query.expired) };
    },
  );
  route(
    'POST',
    '/api/v1/suppressions',
    {
      role: 'analyst',
      roleNote: `an analyst's suppression names one rule, narrows it to a host or to a field's value (without a host, not a field of every event such as event.kind or agent.type), and lasts at most ${ANALYST_SUPPRESSION_MAX_DAYS}d; every rule (\`*\`), a whole rule on every host, or longer, needs admin`,
      summary: 'Suppress a rule (or `*`, every rule) on one host or all, optionally only when an event field has a value, for a duration. Suppressed matches are counted, not stored.',
      tags: ['alerts'],
      success: [201],
      response: Answers.SuppressionSchema,
      body: Type.Object(
        {
          rule: Type.String({ minLength: 1, maxLength: 256 }),
          host: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
          field: Type.Optional(Type.String({ pattern: '^[A-Za-z@_][A-Za-z0-9_.@]{0,127}$' })),
          value: Type.Optional(Type.String({ maxLength: 4096 })),
          for: Type.String({ pattern: '^\\d+(s|m|h|d)$', description: 'How long: 30m, 8h, 30d (at most 365d).' }),
          reason: Type.String({ minLength: 1, maxLength: 1024, pattern: '\\S' }),
        },
        { additionalProperties: false },
      ),
    },
    (request) => {
      const now = Date.now();
      const duration = now - parseSince(request.body.for, now);
      if (duration < 1000 || duration > 365 * 86_400_000) throw new HadesError('HADES_ERR_API_INVALID_REQUEST', `for must be between 1s and 365d (got ${request.body.for})`);
      // A suppression blinds the fleet to what it covers: the broad ones are an admin's (as
      // turning a rule off in the rule files is), the narrow and short ones an analyst's.
      const broad = suppressionBreadth(request.body.rule, request.body.host, request.body.field, duration);
      const principal = who(request, 'analyst');
      if (broad !== undefined && principal.role !== 'admin') {
        refusedRole.set(request, 'admin');
        throw new HadesError('HADES_ERR_API_FORBIDDEN', `a suppression of ${broad} needs an admin token; an analyst's names one rule, narrows it to a host or to a field's value, and lasts at most ${ANALYST_SUPPRESSION_MAX_DAYS}d`);
      }
      return ports.addSuppression(
        {
          ruleId: request.body.rule,
          host: request.body.host ?? null,
          field: request.body.field ?? null,
          value: request.body.value ?? null,
          until: now + duration,
          reason: request.body.reason,
          createdBy: principal.name,
        },
        (created) => ports.audit(principal, 'suppression.create', created.id, { rule: created.rule_id, host: created.host, field: created.field, value: created.value, until: created.until, reason: created.reason }),
      );
    },
  );
  route('DELETE', '/api/v1/suppressions/:id', { role: 'analyst', summary: 'Lift a suppression.', tags: ['alerts'], params: Id, response: Answers.OkBody }, (request) => {
    const principal = who(request, 'analyst');
    // What is lifted is gone from the store: the audit log keeps what it was (in the same transaction).
    const lifted = ports.deleteSuppression(request.params.id, (was) =>
      ports.audit(principal, 'suppression.delete', request.params.id, { rule: was.rule_id, host: was.host, field: was.field, value: was.value, until: was.until, reason: was.reason, hits: was.hits }),
    );
    if (!lifted) throw new HadesError('HADES_ERR_API_NOT_FOUND', `no suppression ${request.params.id}`);
    return { ok: true };
  });

  // Rules.
  route('GET', '/api/v1/rules', { role: 'read-only', summary: 'The loaded rules with their counters, and the problems of the last load.', tags: ['rules'], response: Answers.RulesBody }, (request) => {
    who(request, 'read-only');
    return ports.listRules();
  });
  route('POST', '/api/v1/rules/reload', { role: 'admin', summary: 'Load the rules again; when the new rules have errors the running ones stay (HADES_ERR_RULES_RELOAD lists the problems).', tags: ['rules'], response: Answers.RulesBody }, async (request) => {
    const principal = who(request, 'admin');
    let state: Awaited<ReturnType<ApiPorts['reloadRules']>>;
    try {
      state = await ports.reloadRules();
    } catch (error) {
      // A refused reload is audited too: someone with admin rights tried to change the rules.
      const refusal = toHadesError(error);
      ports.audit(principal, 'rules.reload', undefined, { refused: refusal.code });
      throw error;
    }
    ports.audit(principal, 'rules.reload');
    return state;
  });

  // Tokens.
  route(
    'POST',
    '/api/v1/tokens/enrollment',
    { role: 'admin', summary: 'Create a one-time enrollment token.', tags: ['tokens'], success: [201], response: Answers.CreatedEnrollmentTokenBody, body: Type.Object({ ttl: Type.String({ pattern: '^\\d+(s|m|h|d)$', default: '1h', description: 'How long the token can be used: 30m, 1h, 7d (1 second to 30 days).' }), group: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$' })) }, { additionalProperties: false }) },
    (request) => {
      const principal = who(request, 'admin');
      const now = Date.now();
      const ttlMs = now - parseSince(request.body.ttl, now);
      if (ttlMs < 1000 || ttlMs > 30 * 86_400_000) throw new HadesError('HADES_ERR_API_INVALID_REQUEST', `ttl must be between 1s and 30d (got ${request.body.ttl})`);
      const created = ports.createEnrollmentToken({ ttlMs, ...(request.body.group ? { group: request.body.group } : {}), createdBy: principal.name }, (made) =>
        ports.audit(principal, 'token.enrollment.create', made.id, { group: request.body.group, ttl: request.body.ttl }),
      );
      // The gateway addresses agents will be given at enrollment: who creates the token can see
      // whether hosts elsewhere can reach them (a server listening on 0.0.0.0 gives 127.0.0.1).
      return { ...created, ca_sha256: ports.caFingerprint(), gateways: ports.gateways() };
    },
  );
  route('GET', '/api/v1/tokens/enrollment', { role: 'admin', summary: 'Enrollment tokens (never their secrets).', tags: ['tokens'], response: Answers.EnrollmentTokensBody }, (request) => {
    who(request, 'admin');
    return { tokens: ports.listEnrollmentTokens() };
  });
  route('DELETE', '/api/v1/tokens/enrollment/:id', { role: 'admin', summary: 'Revoke an enrollment token that was not used (`already: true` when it was revoked before; a used token is a 400: revoke its agent).', tags: ['tokens'], params: Id, response: Answers.OkBody }, (request) => {
    const principal = who(request, 'admin');
    if (!ports.revokeEnrollmentToken(request.params.id, () => ports.audit(principal, 'token.enrollment.revoke', request.params.id))) return { ok: true, already: true };
    return { ok: true };
  });
  route(
    'POST',
    '/api/v1/tokens/api',
    {
      role: 'admin',
      summary: 'Create an API token with a role; with `ttl`, it is refused once that time has passed.',
      tags: ['tokens'],
      success: [201],
      response: Answers.CreatedTokenSchema,
      body: Type.Object(
        {
          name: Type.String({ minLength: 1, maxLength: 128, pattern: '\\S' }),
          role: Type.Union([Type.Literal('admin'), Type.Literal('analyst'), Type.Literal('read-only')]),
          ttl: Type.Optional(Type.String({ pattern: '^\\d+(s|m|h|d)$', description: 'How long the token is accepted: 30m, 8h, 90d (1 minute to 3650 days); without it, until revoked.' })),
        },
        { additionalProperties: false },
      ),
    },
    (request) => {
      const principal = who(request, 'admin');
      const now = Date.now();
      const ttlMs = request.body.ttl === undefined ? undefined : now - parseSince(request.body.ttl, now);
      if (ttlMs !== undefined && (ttlMs < 60_000 || ttlMs > 3650 * 86_400_000)) throw new HadesError('HADES_ERR_API_INVALID_REQUEST', `ttl must be between 1m and 3650d (got ${request.body.ttl})`);
      return ports.createApiToken({ name: request.body.name, role: request.body.role, createdBy: principal.name, ...(ttlMs === undefined ? {} : { ttlMs }) }, (made) =>
        ports.audit(principal, 'token.api.create', made.id, { name: request.body.name, role: request.body.role, ...(made.expires_at ? { expires: made.expires_at } : {}) }),
      );
    },
  );
  route('GET', '/api/v1/tokens/api', { role: 'admin', summary: 'API tokens (never their secrets).', tags: ['tokens'], response: Answers.ApiTokensBody }, (request) => {
    who(request, 'admin');
    return { tokens: ports.listApiTokens() };
  });
  route('DELETE', '/api/v1/tokens/api/:id', { role: 'admin', summary: 'Revoke an API token (`already: true` when it was revoked before); the last admin token is not revoked (409 HADES_ERR_API_LAST_ADMIN).', tags: ['tokens'], params: Id, errors: [409], response: Answers.OkBody }, (request) => {
    const principal = who(request, 'admin');
    if (!ports.revokeApiToken(request.params.id, () => ports.audit(principal, 'token.api.revoke', request.params.id))) return { ok: true, already: true };
    return { ok: true };
  });
  route(
    'GET',
    '/api/v1/audit',
    {
      role: 'admin',
      summary: 'The audit log (admin actions, tasks, fleet queries, triage, comments, suppressions), newest first; `before_id` (the id of the last entry of a page) gives the page after it; `actor` (the name of a token), `action` (such as alert.triage) and `target` (such as an alert or agent id) keep the entries that have it.',
      tags: ['server'],
      response: Answers.AuditBody,
      querystring: Type.Object(
        {
          since: Type.Optional(Type.String()),
          before_id: Type.Optional(Type.Integer({ minimum: 1 })),
          actor: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
          action: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
          target: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
          limit: Type.Integer({ minimum: 1, maximum: 10_000, default: 100 }),
        },
        { additionalProperties: false },
      ),
    },
    (request) => {
      who(request, 'admin');
      const { since, before_id: beforeId, actor, action, target, limit } = request.query;
      return {
        entries: ports.listAudit({ ...(since ? { since: parseSince(since) } : {}), ...(beforeId === undefined ? {} : { beforeId }), ...(actor ? { actor } : {}), ...(action ? { action } : {}), ...(target ? { target } : {}), limit }),
      };
    },
  );

  route('GET', '/api/v1/openapi.json', { summary: 'This API\'s OpenAPI document.', tags: ['server'], public: true, response: Answers.OpenObject('An OpenAPI 3 document.') }, () => app.swagger());
  await app.ready();
  return app;
}
