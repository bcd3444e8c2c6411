/**
 * The answers of the REST API, as TypeBox schemas: the OpenAPI document gives them, and Fastify
 * writes each answer with them (fast-json-stringify), which leaves out any property a schema does
 * not name. So what is open stays open: an event is an ECS document with any fields
 * (`additionalProperties: true`), and so are an alert (with its events, its process and the host's
 * CMDB entry), a task's parameters and result, an agent's last heartbeat, and the rules' state.
 * The fleet's resources are closed: fleet/bodies.ts makes each, and the checks at the end of this
 * file fail the build when a body there and its schema here stop naming the same fields.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { SEVERITIES } from '../rules/index.js';
import type { AlertComment, AlertTriageRecord, Suppression } from './alerts/store.js';
import { ALERT_STATUSES } from './alerts/types.js';
import type { AgentBody, ApiTokenBody, CreatedTokenBody, EnrollmentTokenBody, GroupBody, GroupConfigBody, TaskBody } from './fleet/bodies.js';
import type { AuditEntry } from './fleet/audit.js';
import { TASK_KINDS, TASK_STATUSES } from './fleet/registry.js';

const literals = <T extends string>(values: readonly T[]) => Type.Union(values.map((v) => Type.Literal(v)));
/** An object with any properties, each written as it is. */
export const OpenObject = (description?: string): TSchema => Type.Object({}, { additionalProperties: true, ...(description ? { description } : {}) });
const Next = Type.Optional(Type.String({ description: 'The cursor of the next page (pass it as `cursor`); absent on the last page.' }));
const Time = (description?: string) => Type.String(description ? { description } : {});

/** `{ok: true}` of an action; `already: true` when there was nothing left to do. */
export const OkBody = Type.Object({ ok: Type.Boolean(), already: Type.Optional(Type.Boolean({ description: 'It was done before (a token or an agent revoked already); nothing was recorded.' })) });

const NextCertificate = Type.Object({ fingerprint: Type.String(), serial: Type.String(), not_after: Type.Optional(Time()), issued_at: Time() });
export const AgentSchema = Type.Object({
  id: Type.String(),
  hostname: Type.String(),
  enrolled_hostname: Type.String({ description: 'The name it enrolled with: what host-scoped alert suppressions match.' }),
  addresses: Type.Array(Type.String()),
  os: Type.String(),
  kernel: Type.String(),
  version: Type.String(),
  groups: Type.Array(Type.String()),
  tags: Type.Record(Type.String(), Type.String()),
  cert_fingerprint: Type.String(),
  cert_serial: Type.String(),
  cert_not_after: Type.Optional(Time()),
  cert_ca_sha256: Type.Optional(Type.String({ description: 'The SHA-256 of the CA that issued its certificate, once recorded (hades server ca status counts the agents on each).' })),
  cert_renewed_at: Type.Optional(Time()),
  next_cert: Type.Optional(NextCertificate),
  renew_requested_at: Type.Optional(Time()),
  renew_immediately: Type.Optional(Type.Literal(true, { description: 'The renewal was asked without the agent\'s random delay (hades agents renew --now).' })),
  token_id: Type.Optional(Type.String({ description: 'The enrollment token it enrolled with.' })),
  enrolled_at: Time(),
  last_seen: Type.Optional(Time('When the agent was last heard from: its last connection or heartbeat (not when its stream was found closed).')),
  last_heartbeat: Type.Optional(OpenObject('The last heartbeat, as the agent reported it.')),
  online: Type.Boolean(),
  revoked_at: Type.Optional(Time()),
  cmdb: Type.Optional(OpenObject("The host's CMDB entry, when the CMDB has one.")),
});
export const AgentsBody = Type.Object({ agents: Type.Array(AgentSchema) });
export const AgentGroupsBody = Type.Composite([
  AgentSchema,
  Type.Object({
    configuration: Type.Union([Type.Object({ group: Type.String(), version: Type.Integer() }), Type.Null()], { description: "The group configuration the agent now takes (null: none, its own file's)." }),
    pushed: Type.Boolean({ description: 'The agent is connected and was sent it now.' }),
  }),
]);

export const GroupSchema = Type.Object({ name: Type.String(), agents: Type.Integer({ description: 'Members, revoked agents left out.' }), version: Type.Optional(Type.Integer()), updated_at: Type.Optional(Time()) });
export const GroupsBody = Type.Object({ groups: Type.Array(GroupSchema) });
export const GroupConfigSchema = Type.Object({ name: Type.String(), yaml: Type.String(), version: Type.Integer(), updated_at: Time() });
export const GroupConfigSetBody = Type.Object({ version: Type.Integer(), pushed: Type.Integer({ description: 'Connected agents it was sent to.' }) });
export const GroupConfigDeleteBody = Type.Object({ pushed: Type.Integer({ description: 'Connected agents sent back to their own files (or another group\'s configuration).' }) });

export const TaskSchema = Type.Object({
  id: Type.String(),
  agent_id: Type.String(),
  kind: literals(TASK_KINDS),
  params: OpenObject(),
  status: literals(TASK_STATUSES),
  result: Type.Optional(Type.Unknown({ description: 'What the agent answered (rows of a query, an error), as it answered it.' })),
  result_omitted: Type.Optional(Type.Literal(true, { description: 'In a list: the result is left out (the list\'s budget); GET /api/v1/tasks/ID has it.' })),
  created_by: Type.Optional(Type.String()),
  created_at: Time(),
  updated_at: Time(),
  deadline: Time(),
});
export const TasksBody = Type.Object({ tasks: Type.Array(TaskSchema) });

export const EventsBody = Type.Object({
  events: Type.Array(OpenObject('A stored event: an ECS document with every field it was stored with (docs/events.md).')),
  next: Next,
  partial: Type.Optional(Type.Literal(true, { description: 'The page stopped before its limit: at the search\'s budget of examined events before the end of its window, or before 4 MiB of events. It may hold fewer events than asked (even none, at the budget); `next` goes on.' })),
});

export const FleetQueriesBody = Type.Object({
  queries: Type.Array(Type.Object({ id: Type.String(), sql: Type.String(), created_by: Type.Union([Type.String(), Type.Null()]), created_at: Time(), deadline: Time() })),
});

export const AlertSchema = Type.Object(
  {
    id: Type.String(),
    '@timestamp': Time('When it was first raised.'),
    last_seen: Time('The time of the last event folded into it.'),
    count: Type.Integer({ description: 'Matches folded into it (1 when none were).' }),
    rule: Type.Object({ id: Type.String(), title: Type.String(), severity: literals(SEVERITIES), tags: Type.Array(Type.String()), type: Type.String() }, { additionalProperties: true }),
    message: Type.String(),
    host: Type.Object({ id: Type.String(), name: Type.String(), reported_name: Type.Optional(Type.String()), cmdb: Type.Optional(OpenObject()) }, { additionalProperties: true }),
    events: Type.Array(OpenObject('An event of the alert, whole (docs/events.md).'), { description: 'The triggering events (every step of a correlation), oldest first.' }),
    process: Type.Optional(OpenObject('The process of the event that raised it, with its ancestry.')),
    status: literals(ALERT_STATUSES),
    assignee: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    revision: Type.Optional(Type.Integer({ description: 'The triage revision (the ETag).' })),
  },
  { additionalProperties: true, description: 'An alert (docs/alerts.md).' },
);
export const CommentSchema = Type.Object({ id: Type.Integer(), time: Time(), author: Type.String(), text: Type.String() });
export const AlertsBody = Type.Object({ alerts: Type.Array(AlertSchema), next: Next });
export const TriageRecordSchema = Type.Object({
  time: Time(),
  actor: Type.String({ description: 'The name of the API token that triaged it.' }),
  status: Type.Optional(literals(ALERT_STATUSES)),
  assignee: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  from: Type.Optional(Type.Object({ status: literals(ALERT_STATUSES), assignee: Type.Union([Type.String(), Type.Null()]) }, { description: 'The alert before this triage.' })),
  revision: Type.Optional(Type.Integer({ description: 'The revision this triage made.' })),
});
export const RelatedAlertSchema = Type.Object({
  id: Type.String(),
  '@timestamp': Time('When it was first raised.'),
  rule: Type.Object({ id: Type.String(), title: Type.String(), severity: literals(SEVERITIES) }),
  status: literals(ALERT_STATUSES),
  message: Type.String(),
  relation: Type.Union([Type.Literal('same_process'), Type.Literal('upstream'), Type.Literal('downstream')], {
    description: '`same_process`: about the same process instance; `upstream`: about a process that started this alert\'s (its parent or an ancestor); `downstream`: about a process this alert\'s process started.',
  }),
  process: Type.Object({ entity_id: Type.String(), pid: Type.Optional(Type.Integer()), name: Type.Optional(Type.String()) }, { description: 'The process the two alerts share.' }),
});
export const AlertWithCommentsBody = Type.Composite(
  [
    AlertSchema,
    Type.Object({
      comments: Type.Array(CommentSchema),
      history: Type.Array(TriageRecordSchema, { description: 'Its triages, oldest first (the latest 500), from the audit log.' }),
      related: Type.Array(RelatedAlertSchema, {
        description: 'The alerts of the same agent about the same process tree (by process.entity_id and the ancestry in the events), raised within 6 hours of it, oldest first; the newest 1,000 of the agent in that window are looked at, 50 given at most.',
      }),
    }),
  ],
  { additionalProperties: true },
);

export const SuppressionSchema = Type.Object({
  id: Type.String(),
  rule_id: Type.String(),
  host: Type.Union([Type.String(), Type.Null()]),
  field: Type.Union([Type.String(), Type.Null()]),
  value: Type.Union([Type.String(), Type.Null()]),
  until: Time(),
  reason: Type.String(),
  created_by: Type.String(),
  created: Time(),
  hits: Type.Integer({ description: 'Matches it suppressed.' }),
});
export const SuppressionsBody = Type.Object({ suppressions: Type.Array(SuppressionSchema) });

export const RulesBody = Type.Object(
  {
    loaded: Type.String(),
    rules: Type.Integer(),
    enabled: Type.Integer(),
    problems: Type.Array(OpenObject()),
    failed_reload: Type.Optional(OpenObject('The last reload, when it failed: the running rules stayed.')),
    detection: Type.Optional(OpenObject('The detection counters.')),
    outputs: Type.Optional(Type.Array(OpenObject(), { description: 'The alert outputs with their counters.' })),
    list: Type.Optional(Type.Array(OpenObject(), { description: 'Every loaded rule with its counters.' })),
  },
  { additionalProperties: true },
);

export const CreatedTokenSchema = Type.Object({ id: Type.String(), token: Type.String({ description: 'The whole token: shown this once.' }), expires_at: Type.Optional(Time()) });
export const CreatedEnrollmentTokenBody = Type.Composite([
  CreatedTokenSchema,
  Type.Object({ ca_sha256: Type.String({ description: 'The fingerprint of the CA agents check.' }), gateways: Type.Array(Type.String(), { description: 'The gateway addresses agents are given.' }) }),
]);
export const EnrollmentTokenSchema = Type.Object({
  id: Type.String(),
  group: Type.Optional(Type.String()),
  created_by: Type.String(),
  created_at: Time(),
  expires_at: Time(),
  used_at: Type.Optional(Time()),
  used_by: Type.Optional(Type.String({ description: 'The agent that used it.' })),
  revoked_at: Type.Optional(Time()),
  state: literals(['active', 'used', 'expired', 'revoked'] as const),
});
export const EnrollmentTokensBody = Type.Object({ tokens: Type.Array(EnrollmentTokenSchema) });
export const ApiTokenSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  role: literals(['admin', 'analyst', 'read-only'] as const),
  created_by: Type.String(),
  created_at: Time(),
  last_used_at: Type.Optional(Time()),
  revoked_at: Type.Optional(Time()),
  expires_at: Type.Optional(Time()),
});
export const ApiTokensBody = Type.Object({ tokens: Type.Array(ApiTokenSchema) });

export const AuditEntrySchema = Type.Object({
  id: Type.Integer(),
  at: Time(),
  actor: Type.String({ description: 'An API token\'s name, `system`, `enrollment`.' }),
  actor_id: Type.Optional(Type.String({ description: 'The id of the token that acted.' })),
  action: Type.String({ description: '`object.verb`: `token.api.create`, `agent.revoke`, `api.denied`.' }),
  target: Type.Optional(Type.String()),
  details: Type.Optional(OpenObject()),
});
export const AuditBody = Type.Object({ entries: Type.Array(AuditEntrySchema) });

// The build fails when a body and its schema stop naming the same fields (either way): a field
// a schema leaves out would be dropped from every answer without a word.
type Mutable<T> = T extends readonly (infer I)[] ? Mutable<I>[] : T extends object ? { -readonly [K in keyof T]: Mutable<T[K]> } : T;
type Same<A, B> = [Mutable<A>] extends [Mutable<B>] ? ([Mutable<B>] extends [Mutable<A>] ? true : false) : false;
type Keys<A, B> = [keyof A] extends [keyof B] ? ([keyof B] extends [keyof A] ? true : false) : false;
type Holds<T extends true> = T;
export type BodiesMatchSchemas = [
  Holds<Keys<Static<typeof AgentSchema>, AgentBody>>,
  Holds<Same<Static<typeof GroupSchema>, GroupBody>>,
  Holds<Same<Static<typeof GroupConfigSchema>, GroupConfigBody>>,
  Holds<Keys<Static<typeof TaskSchema>, TaskBody>>,
  Holds<Same<Static<typeof CreatedTokenSchema>, CreatedTokenBody>>,
  Holds<Same<Static<typeof EnrollmentTokenSchema>, EnrollmentTokenBody>>,
  Holds<Same<Static<typeof ApiTokenSchema>, ApiTokenBody>>,
  Holds<Keys<Static<typeof AuditEntrySchema>, AuditEntry>>,
  Holds<Same<Static<typeof CommentSchema>, AlertComment>>,
  Holds<Same<Static<typeof TriageRecordSchema>, AlertTriageRecord>>,
  Holds<Same<Static<typeof SuppressionSchema>, Suppression>>,
];

// --- the CA (rotation) ---------------------------------------------------------------------

export const CaSchema = Type.Object({
  state: literals(['current', 'old', 'new', 'retired'] as const),
  subject: Type.String(),
  sha256: Type.String({ description: 'SHA-256 of the CA certificate (hex): what enrollment pins.' }),
  not_before: Time(),
  not_after: Time(),
  agents: Type.Integer({ description: 'Agents (not revoked) whose certificate in use this CA issued.' }),
});
export const CaStatusBody = Type.Object({
  rotation: literals(['none', 'in-progress'] as const),
  issuing_sha256: Type.String({ description: 'The CA that issues agent certificates (enrollments and renewals): the new one during a rotation.' }),
  server_certificate_ca_sha256: Type.String({ description: 'The CA the server certificate chains to (the old one until it is retired).' }),
  cas: Type.Array(CaSchema, { description: 'The CA in use first (`current`, or `old` during a rotation), then the new one, then those retired.' }),
  agents_on_old: Type.Optional(Type.Array(Type.String(), { description: 'During a rotation: up to 100 ids of agents still on the old CA.' })),
});
export const CaRotateBody = Type.Object({
  ca: CaSchema,
  agents_on_old: Type.Integer({ description: 'Agents (not revoked) on the old CA, which move as they renew.' }),
  notified: Type.Integer({ description: 'Connected agents sent the CAs to trust now (the others when they next connect).' }),
});
export const CaRetireBody = Type.Object({
  retired: CaSchema,
  ca_sha256: Type.String({ description: 'The CA in use from now on (the server certificate chains to it).' }),
  forced: Type.Boolean(),
  agents_left_behind: Type.Integer({ description: 'Agents (not revoked) still on the retired CA: refused from now on (HADES_ERR_CA_RETIRED), to be enrolled again.' }),
  notified: Type.Integer(),
  disconnected: Type.Integer({ description: 'Connected agents on the retired CA whose streams were ended.' }),
});
