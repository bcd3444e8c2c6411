/**
 * The fleet's resources as the REST API answers them. Every JSON body of the API is snake_case,
 * like events (ECS), alerts and fleet queries; the registry and the token stores keep
 * TypeScript's camelCase, and each resource is written out here, by one mapper of its own, which
 * the API's ports (server.ts) call. What SQLite and the audit log keep does not change.
 */
import type { HostMetadata } from '../cmdb.js';
import type { ApiTokenInfo } from './api-tokens.js';
import type { Agent, AgentHealth, GroupConfig, GroupSummary, NextCertificate, Task, TaskKind, TaskStatus } from './registry.js';
import type { CreatedEnrollmentToken, EnrollmentTokenInfo, EnrollmentTokenState } from './tokens.js';

export interface NextCertificateBody {
  readonly fingerprint: string;
  readonly serial: string;
  readonly not_after?: string;
  readonly issued_at: string;
}

export interface AgentBody {
  readonly id: string;
  readonly hostname: string;
  /** The name it enrolled with: what host-scoped alert suppressions match (docs/alerts.md). */
  readonly enrolled_hostname: string;
  readonly addresses: readonly string[];
  readonly os: string;
  readonly kernel: string;
  readonly version: string;
  readonly groups: readonly string[];
  readonly tags: Readonly<Record<string, string>>;
  readonly cert_fingerprint: string;
  readonly cert_serial: string;
  readonly cert_not_after?: string;
  /** The CA that issued its certificate (its SHA-256), once the server recorded it: which agents a CA rotation still waits for. */
  readonly cert_ca_sha256?: string;
  readonly cert_renewed_at?: string;
  readonly next_cert?: NextCertificateBody;
  readonly renew_requested_at?: string;
  readonly renew_immediately?: true;
  readonly token_id?: string;
  readonly enrolled_at: string;
  readonly last_seen?: string;
  /** As the agent reported it. */
  readonly last_heartbeat?: AgentHealth;
  readonly online: boolean;
  readonly revoked_at?: string;
  /** The host's CMDB entry, when the CMDB has one. */
  readonly cmdb?: HostMetadata;
}

const nextCertificateBody = (next: NextCertificate): NextCertificateBody => ({
  fingerprint: next.fingerprint,
  serial: next.serial,
  ...(next.notAfter === undefined ? {} : { not_after: next.notAfter }),
  issued_at: next.issuedAt,
});

export function agentBody(agent: Agent, cmdb?: HostMetadata): AgentBody {
  return {
    id: agent.id,
    hostname: agent.hostname,
    enrolled_hostname: agent.enrolledHostname,
    addresses: agent.addresses,
    os: agent.os,
    kernel: agent.kernel,
    version: agent.version,
    groups: agent.groups,
    tags: agent.tags,
    cert_fingerprint: agent.certFingerprint,
    cert_serial: agent.certSerial,
    ...(agent.certNotAfter === undefined ? {} : { cert_not_after: agent.certNotAfter }),
    ...(agent.certCa === undefined ? {} : { cert_ca_sha256: agent.certCa }),
    ...(agent.certRenewedAt === undefined ? {} : { cert_renewed_at: agent.certRenewedAt }),
    ...(agent.nextCert === undefined ? {} : { next_cert: nextCertificateBody(agent.nextCert) }),
    ...(agent.renewRequestedAt === undefined ? {} : { renew_requested_at: agent.renewRequestedAt }),
    ...(agent.renewImmediately === true ? { renew_immediately: true as const } : {}),
    ...(agent.tokenId === undefined ? {} : { token_id: agent.tokenId }),
    enrolled_at: agent.enrolledAt,
    ...(agent.lastSeen === undefined ? {} : { last_seen: agent.lastSeen }),
    ...(agent.lastHeartbeat === undefined ? {} : { last_heartbeat: agent.lastHeartbeat }),
    online: agent.online,
    ...(agent.revokedAt === undefined ? {} : { revoked_at: agent.revokedAt }),
    ...(cmdb === undefined ? {} : { cmdb }),
  };
}

export interface TaskBody {
  readonly id: string;
  readonly agent_id: string;
  readonly kind: TaskKind;
  readonly params: Readonly<Record<string, unknown>>;
  readonly status: TaskStatus;
  readonly result?: unknown;
  /** In a list: the result is left out (the list's budget), GET /api/v1/tasks/ID has it. */
  readonly result_omitted?: true;
  readonly created_by?: string;
  readonly created_at: string;
  readonly updated_at: string;
  readonly deadline: string;
}

export function taskBody(task: Task): TaskBody {
  return {
    id: task.id,
    agent_id: task.agentId,
    kind: task.kind,
    params: task.params,
    status: task.status,
    ...(task.result === undefined ? {} : { result: task.result }),
    ...(task.resultOmitted ? { result_omitted: true as const } : {}),
    ...(task.createdBy === undefined ? {} : { created_by: task.createdBy }),
    created_at: task.createdAt,
    updated_at: task.updatedAt,
    deadline: task.deadline,
  };
}

export interface GroupConfigBody {
  readonly name: string;
  readonly yaml: string;
  readonly version: number;
  readonly updated_at: string;
}

export const groupConfigBody = (config: GroupConfig): GroupConfigBody => ({ name: config.name, yaml: config.yaml, version: config.version, updated_at: config.updatedAt });

/** A group as listed: its members, and its configuration's version when it has one. */
export interface GroupBody {
  readonly name: string;
  readonly agents: number;
  readonly version?: number;
  readonly updated_at?: string;
}

export const groupBody = (group: GroupSummary): GroupBody => ({
  name: group.name,
  agents: group.agents,
  ...(group.version === undefined ? {} : { version: group.version }),
  ...(group.updatedAt === undefined ? {} : { updated_at: group.updatedAt }),
});

export interface EnrollmentTokenBody {
  readonly id: string;
  readonly group?: string;
  readonly created_by: string;
  readonly created_at: string;
  readonly expires_at: string;
  readonly used_at?: string;
  /** The agent that used it. */
  readonly used_by?: string;
  readonly revoked_at?: string;
  readonly state: EnrollmentTokenState;
}

export function enrollmentTokenBody(token: EnrollmentTokenInfo): EnrollmentTokenBody {
  return {
    id: token.id,
    ...(token.group === undefined ? {} : { group: token.group }),
    created_by: token.createdBy,
    created_at: token.createdAt,
    expires_at: token.expiresAt,
    ...(token.usedAt === undefined ? {} : { used_at: token.usedAt }),
    ...(token.usedBy === undefined ? {} : { used_by: token.usedBy }),
    ...(token.revokedAt === undefined ? {} : { revoked_at: token.revokedAt }),
    state: token.state,
  };
}

/** A token just made: the whole token is in it, this once. */
export interface CreatedTokenBody {
  readonly id: string;
  readonly token: string;
  readonly expires_at?: string;
}

export const createdTokenBody = (created: CreatedEnrollmentToken | { readonly id: string; readonly token: string; readonly expiresAt?: string }): CreatedTokenBody => ({
  id: created.id,
  token: created.token,
  ...(created.expiresAt === undefined ? {} : { expires_at: created.expiresAt }),
});

export interface ApiTokenBody {
  readonly id: string;
  readonly name: string;
  readonly role: ApiTokenInfo['role'];
  readonly created_by: string;
  readonly created_at: string;
  readonly last_used_at?: string;
  readonly revoked_at?: string;
  readonly expires_at?: string;
}

export function apiTokenBody(token: ApiTokenInfo): ApiTokenBody {
  return {
    id: token.id,
    name: token.name,
    role: token.role,
    created_by: token.createdBy,
    created_at: token.createdAt,
    ...(token.lastUsedAt === undefined ? {} : { last_used_at: token.lastUsedAt }),
    ...(token.revokedAt === undefined ? {} : { revoked_at: token.revokedAt }),
    ...(token.expiresAt === undefined ? {} : { expires_at: token.expiresAt }),
  };
}
