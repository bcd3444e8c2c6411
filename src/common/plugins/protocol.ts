/**
 * The plugin protocol (docs/plugins.md): frame types and the manifest every plugin ships. The
 * kernel driver speaks the same frames (driver/PROTOCOL.md) and adds its own RECORDS and
 * FILTER/HOOK frames; other plugins send EVENTS.
 */
import { Type, type Static } from '@sinclair/typebox';

export const PLUGIN_PROTOCOL = 1;

// The frame types live in a module of their own, without TypeBox, for plugins that load little.
export { PluginFrame } from './frames.js';

/**
 * What a plugin may say of its own health in its STATS frame, under the reserved key `health`
 * (docs/plugins.md, "Health and budgets"): `degraded` when it runs but does not do all it was
 * configured to do (the honeypot with decoys that could not open), with a short `detail` for a
 * person. The supervisor's state (running, backoff, ...) says whether the process runs; this says
 * whether what runs works.
 */
export interface PluginHealthReport {
  readonly status: 'ok' | 'degraded';
  readonly detail?: string;
}

/** The longest `health.detail` the agent keeps (the heartbeat carries it for every plugin). */
export const MAX_HEALTH_DETAIL = 512;

/** A STATS frame's `health`, checked; undefined when absent or not of the documented shape. */
export function readPluginHealth(stats: Readonly<Record<string, unknown>> | undefined): PluginHealthReport | undefined {
  const health = stats?.['health'];
  if (!health || typeof health !== 'object' || Array.isArray(health)) return undefined;
  const { status, detail } = health as Record<string, unknown>;
  if (status !== 'ok' && status !== 'degraded') return undefined;
  return { status, ...(typeof detail === 'string' && detail !== '' ? { detail: detail.slice(0, MAX_HEALTH_DETAIL) } : {}) };
}

/** The QUERY frame: run one read-only SQL statement over the plugin's tables. */
export interface QueryRequest {
  readonly request_id: number;
  readonly sql: string;
  /** The plugin answers HADES_ERR_QUERY_TIMEOUT when the query (collection and SQL) takes longer. */
  readonly timeout_ms: number;
  /** Rows at most; the result is cut beyond and marked truncated. */
  readonly max_rows: number;
  /** Bytes of the rows (as JSON arrays) at most; the result is cut beyond and marked truncated. */
  readonly max_bytes: number;
}

export interface QueryColumn {
  readonly name: string;
  /** Declared type of a table column (TEXT, INTEGER, REAL); null for an expression. */
  readonly type: string | null;
}

export interface QueryWarning {
  readonly table: string;
  readonly code: string;
  readonly message: string;
  readonly path?: string;
}

/**
 * The QUERY_RESULT frames answering one QUERY: any number of row chunks (each frame at most
 * 1 MiB), then one final frame, ok or not.
 */
export type QueryResultFrame =
  | { readonly request_id: number; readonly done: false; readonly rows: readonly (readonly unknown[])[] }
  | {
      readonly request_id: number;
      readonly done: true;
      readonly ok: true;
      readonly columns: readonly QueryColumn[];
      readonly row_count: number;
      readonly truncated: boolean;
      readonly truncated_by?: 'rows' | 'bytes';
      readonly tables: readonly string[];
      readonly warnings: readonly QueryWarning[];
      readonly warnings_total: number;
      readonly collect_ms: number;
      readonly sql_ms: number;
    }
  | { readonly request_id: number; readonly done: true; readonly ok: false; readonly code: string; readonly message: string; readonly details?: Readonly<Record<string, unknown>> };

export const PluginManifestSchema = Type.Object(
  {
    name: Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,63}$', description: 'Plugin name: lower case letters, digits, - and _.' }),
    version: Type.String({ minLength: 1, maxLength: 32, description: 'Plugin version.' }),
    protocol: Type.Integer({ minimum: 1, description: 'Plugin protocol version it speaks.' }),
    executable: Type.String({ minLength: 1, maxLength: 4096, description: 'The executable, absolute or relative to the manifest\'s folder.' }),
    args: Type.Optional(Type.Array(Type.String({ maxLength: 4096 }), { maxItems: 64, description: 'Arguments.' })),
    sha256: Type.String({ pattern: '^[0-9a-f]{64}$', description: 'SHA-256 of the executable, checked before every start.' }),
    description: Type.Optional(Type.String({ maxLength: 1024, description: 'What it does.' })),
    events: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 64, description: 'Event actions it produces.' })),
    config_schema: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'JSON Schema of its configuration.' })),
  },
  { additionalProperties: false, description: 'A plugin manifest (manifest.json).' },
);

export type PluginManifest = Static<typeof PluginManifestSchema>;
