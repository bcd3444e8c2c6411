import type { Static } from '@sinclair/typebox';
import { AgentConfigSchema } from './agent.js';
import { checkAlertOutputs } from './alert-outputs.js';
import { ServerConfigSchema } from './server.js';
import { parseConfig, type ConfigProblem, type ConfigResult } from './validate.js';

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

/** What each role's schema cannot check: consistency between keys. */
const configChecks: { readonly [R in ConfigRole]?: (config: Static<(typeof configSchemas)[R]>) => ConfigProblem[] } = {
  server: (config) => checkAlertOutputs(config.alerts.outputs),
};

/** parseConfig with the role's schema and its consistency checks. */
export function parseRoleConfig<R extends ConfigRole>(text: string, role: R): ConfigResult<Static<(typeof configSchemas)[R]>> {
  return parseConfig(text, configSchemas[role], configChecks[role]);
}
