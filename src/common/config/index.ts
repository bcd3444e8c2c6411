import { AgentConfigSchema } from './agent.js';
import { ServerConfigSchema } from './server.js';

export { AgentConfigSchema, type AgentConfig } from './agent.js';
export { ServerConfigSchema, type ServerConfig } from './server.js';
export { parseConfig, loadConfig, configError, formatProblem, MAX_CONFIG_BYTES, type ConfigProblem, type ConfigResult } from './validate.js';

/** The two programs that read a configuration, each with its own schema. */
export const configSchemas = {
  agent: AgentConfigSchema,
  server: ServerConfigSchema,
} as const;

export type ConfigRole = keyof typeof configSchemas;
export const configRoles = Object.keys(configSchemas) as ConfigRole[];
