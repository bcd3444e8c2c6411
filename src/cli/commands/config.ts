import { Value } from '@sinclair/typebox/value';
import { stringify } from 'yaml';
import { existsSync } from 'node:fs';
import { configError, configRoles, configSchemas, formatProblem, parseRoleConfig, type ConfigProblem, type ConfigRole, type RoleChecks } from '../../common/config/index.js';
import { HadesError } from '../../common/errors.js';
import { readConfigText } from '../../runtime/regular-file.js';
import { checkRulePaths } from '../../runtime/rule-pack.js';
import { checkAlertOutputFiles } from '../../server/alerts/outputs/transport.js';
import { defaultConfigFiles, exitStatus, type CliContext } from '../context.js';

function roleOf(options: Readonly<Record<string, unknown>>): ConfigRole {
  const role = typeof options['role'] === 'string' ? options['role'] : 'agent';
  if (!(configRoles as string[]).includes(role)) {
    throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', `--role must be one of ${configRoles.join(', ')} (got '${role}')`);
  }
  return role as ConfigRole;
}

export { defaultConfigFiles } from '../context.js';

/**
 * What only the machine that runs the program can check: the files its configuration names,
 * read as the user who runs the command. For the program's start and `hades config check`, not
 * for a command that reads the configuration for an address (its user may not read a TLS key).
 */
const fileChecks: { readonly [R in ConfigRole]?: RoleChecks<R> } = {
  server: [
    { reads: ['alerts.outputs'], check: (config) => checkAlertOutputFiles(config.alerts.outputs) },
    { reads: ['rules.dirs', 'rules.sigma_dirs'], check: (config) => checkRulePaths(config.rules) },
  ],
};

/** parseRoleConfig with the role's file checks. */
export function parseWithFiles<R extends ConfigRole>(text: string, role: R) {
  return parseRoleConfig(text, role, fileChecks[role]);
}

/**
 * The configuration of a program: the file named by --config, else its default file when it
 * exists, else the defaults. Throws HADES_ERR_CONFIG_INVALID with every problem; `files`: the
 * files it names are checked too (for the program that will use them).
 */
export async function loadRoleConfig<R extends ConfigRole>(role: R, options: Readonly<Record<string, unknown>>, checks: { readonly files?: boolean } = {}) {
  const given = typeof options['config'] === 'string' ? options['config'] : undefined;
  const file = given ?? (existsSync(defaultConfigFiles[role]) ? defaultConfigFiles[role] : undefined);
  const text = file ? await readConfigFile(file) : '';
  const result = checks.files ? parseWithFiles(text, role) : parseRoleConfig(text, role);
  if (!result.ok) throw configError(result.problems, file ?? '(defaults)');
  return { config: result.config, file };
}

/** Reads a config file, refusing what is not a regular file or is too large before reading it. */
export async function readConfigFile(path: string): Promise<string> {
  return readConfigText(path);
}

export async function configCheck(context: CliContext, args: readonly string[], options: Readonly<Record<string, unknown>>): Promise<number> {
  const role = roleOf(options);
  const file = args[0] ?? '';
  const result = parseWithFiles(await readConfigFile(file), role);
  if (options['json']) {
    const problems: readonly ConfigProblem[] = result.ok ? [] : result.problems;
    context.stdout.write(`${JSON.stringify({ file, role, ok: result.ok, problems })}\n`);
    return result.ok ? exitStatus.ok : exitStatus.input;
  }
  if (result.ok) {
    context.stdout.write(`${file}: ok (${role} configuration)\n`);
    return exitStatus.ok;
  }
  for (const problem of result.problems) context.stderr.write(`${formatProblem(problem, file)}\n`);
  throw new HadesError('HADES_ERR_CONFIG_INVALID', `${file} is not a valid ${role} configuration: ${result.problems.length === 1 ? 'a problem' : `${result.problems.length} problems`}, listed above`);
}

export async function configSchema(context: CliContext, _args: readonly string[], options: Readonly<Record<string, unknown>>): Promise<number> {
  const role = roleOf(options);
  const schema = { $schema: 'http://json-schema.org/draft-07/schema#', title: `Hades ${role} configuration`, ...configSchemas[role] };
  context.stdout.write(`${JSON.stringify(schema, null, 2)}\n`);
  return Promise.resolve(exitStatus.ok);
}

export async function configDefaults(context: CliContext, _args: readonly string[], options: Readonly<Record<string, unknown>>): Promise<number> {
  const role = roleOf(options);
  const defaults: unknown = Value.Default(configSchemas[role], {});
  context.stdout.write(`# Hades ${role} configuration: every key with its default.\n${stringify(defaults)}`);
  return Promise.resolve(exitStatus.ok);
}
