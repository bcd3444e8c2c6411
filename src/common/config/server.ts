import { Type, type Static } from '@sinclair/typebox';
import { LogConfig } from './shared.js';

/** The server's configuration; separate from the agent's so neither accepts the other's keys. */
export const ServerConfigSchema = Type.Object(
  {
    data_dir: Type.String({
      minLength: 1,
      default: '/var/lib/hades/server',
      description: 'Folder for the CA, certificates, the embedded database and the raw archive.',
    }),
    listen: Type.Object(
      {
        agents: Type.String({
          minLength: 1,
          default: '127.0.0.1:7443',
          description: 'host:port of the agent gateway (mutual TLS).',
        }),
        api: Type.String({
          minLength: 1,
          default: '127.0.0.1:7080',
          description: 'host:port of the REST API and web console.',
        }),
      },
      { additionalProperties: false, default: {}, description: 'Addresses the server listens on.' },
    ),
    store: Type.Object(
      {
        retention_days: Type.Integer({
          minimum: 1,
          maximum: 3650,
          default: 30,
          description: 'Events older than this are deleted.',
        }),
      },
      { additionalProperties: false, default: {}, description: 'The event store.' },
    ),
    log: LogConfig,
  },
  { additionalProperties: false, description: 'Configuration of the Hades server.' },
);

export type ServerConfig = Static<typeof ServerConfigSchema>;
