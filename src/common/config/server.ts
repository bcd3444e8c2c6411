import { Type, type Static } from '@sinclair/typebox';
import { AlertOutputsConfig } from './alert-outputs.js';
import { ADVERTISED_HOST_PORT, CERT_HOST, LISTEN_HOST_PORT, LogConfig } from './shared.js';

/** The server's configuration; separate from the agent's so neither accepts the other's keys. */
export const ServerConfigSchema = Type.Object(
  {
    data_dir: Type.String({
      minLength: 1,
      pattern: '^/',
      default: '/var/lib/hades/server',
      description: 'An absolute path: the folder for the CA, certificates, the embedded database and the raw archive.',
    }),
    listen: Type.Object(
      {
        agents: Type.String({
          pattern: LISTEN_HOST_PORT,
          default: '127.0.0.1:7443',
          description: 'host:port of the agent gateway (mutual TLS); port 0 to 65535 (0: any free port), an empty host: every address.',
        }),
        api: Type.String({
          pattern: LISTEN_HOST_PORT,
          default: '127.0.0.1:7080',
          description: 'host:port of the REST API (no web console yet: see the README); port 0 to 65535 (0: any free port), an empty host: every address.',
        }),
      },
      { additionalProperties: false, default: {}, description: 'Addresses the server listens on.' },
    ),
    advertise: Type.Object(
      {
        gateways: Type.Array(Type.String({ pattern: ADVERTISED_HOST_PORT, description: 'host:port (a name, an IPv4 address or [an IPv6 address] in brackets; port 1 to 65535).' }), {
          default: [],
          maxItems: 16,
          description: 'host:port of the agent gateway as agents should reach it, given to them at enrollment (the first is tried first). Empty: listen.agents.',
        }),
        hostnames: Type.Array(Type.String({ minLength: 1, maxLength: 253, pattern: CERT_HOST, description: 'A DNS name (a leading * for a wildcard) or an IP address.' }), {
          default: [],
          maxItems: 32,
          description: 'Host names and addresses the server certificate is valid for, besides localhost and 127.0.0.1.',
        }),
      },
      { additionalProperties: false, default: {}, description: 'How agents reach the server.' },
    ),
    store: Type.Object(
      {
        retention_days: Type.Integer({
          minimum: 1,
          maximum: 3650,
          default: 30,
          description: 'Events stored longer ago than this are deleted (by the server\'s clock, not the time the agent gave them).',
        }),
        max_mb: Type.Integer({ minimum: 16, maximum: 16_777_216, default: 10_240, description: 'Largest size of the stored events (the pages of their table and indexes in use, with the WAL; checked every 5 s); the first events stored are deleted beyond it. The other tables (fleet, tasks, alerts, audit) are not counted. The file keeps the largest size it reached: freed pages are reused by new events.' }),
        min_free_mb: Type.Integer({ minimum: 0, maximum: 16_777_216, default: 1024, description: 'Room kept for the database (the free space of the data folder\'s file system, with the free pages inside the file, which new events reuse first, less what its WAL takes and owes the file), at most a tenth of the file system: below it, the first events stored are deleted as beyond max_mb (checked every 5 s), and until the next check the file grows only until half of it is left (batches past that get temporary Nacks). SQLite needs room to write even a delete: a disk filled to the last byte leaves the store unable to make room again until space is freed by hand. 0: not checked.' }),
        archive: Type.Object(
          {
            enabled: Type.Boolean({ default: false, description: 'Also write every event to compressed NDJSON files in Hive-style partitions (dt=YYYY-MM-DD/hour=HH/) that external engines can read.' }),
            dir: Type.Union([Type.String({ minLength: 1, pattern: '^/' }), Type.Null()], { default: null, description: 'Folder of the archive; null: <data_dir>/archive.' }),
            retention_days: Type.Integer({ minimum: 1, maximum: 36_500, default: 365, description: 'Files written longer ago than this are deleted (by the server\'s clock, not the time the agent gave their events, which names their partition).' }),
          },
          { additionalProperties: false, default: {}, description: 'The raw archive.' },
        ),
      },
      { additionalProperties: false, default: {}, description: 'The event store.' },
    ),
    cmdb: Type.Object(
      {
        file: Type.Union([Type.String({ minLength: 1, pattern: '^/' }), Type.Null()], {
          default: null,
          description: 'CSV (with a header row) or JSON array of host metadata (hostname or address, owner, business_unit, environment, tags); reloaded when it changes.',
        }),
      },
      { additionalProperties: false, default: {}, description: 'Host metadata attached to events and hosts.' },
    ),
    rules: Type.Object(
      {
        default_pack: Type.Boolean({ default: true, description: 'Load the default rule pack shipped with Hades (rules/).' }),
        dirs: Type.Array(Type.String({ minLength: 1, pattern: '^/' }), {
          default: [],
          maxItems: 64,
          description: 'Folders (or files) of Hades rule files (*.yaml, *.yml), loaded after the default pack: their lists and macros can use the pack\'s, and their overrides can change its rules.',
        }),
        sigma_dirs: Type.Array(Type.String({ minLength: 1, pattern: '^/' }), {
          default: [],
          maxItems: 64,
          description: 'Folders of Sigma rules, converted at load (docs/sigma.md); rules that cannot be supported are reported and skipped.',
        }),
      },
      { additionalProperties: false, default: {}, description: 'The rules of the detection engine. SIGHUP or POST /api/v1/rules/reload loads them again.' },
    ),
    alerts: Type.Object(
      {
        dedup_window_s: Type.Integer({
          minimum: 0,
          maximum: 604_800,
          default: 600,
          description: 'A match of the same rule on the same host about the same thing (executable, command line, file, destination, DNS name) within this many seconds of the alert\'s last event is folded into it (0: never).',
        }),
        max_events: Type.Integer({ minimum: 1, maximum: 1000, default: 20, description: 'Most triggering events kept in one alert.' }),
        retention_days: Type.Integer({ minimum: 1, maximum: 36_500, default: 365, description: 'Alerts neither raised again nor changed (triage, comments) for this long are deleted (by the server\'s clock).' }),
        outputs: AlertOutputsConfig,
      },
      { additionalProperties: false, default: {}, description: 'Alerts: deduplication, retention, and where new alerts are sent (docs/alert-outputs.md).' },
    ),
    log: LogConfig,
  },
  { additionalProperties: false, description: 'Configuration of the Hades server.' },
);

export type ServerConfig = Static<typeof ServerConfigSchema>;
