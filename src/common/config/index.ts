import type { Static } from '@sinclair/typebox';
import { parseDocument } from 'yaml';
import { AgentConfigSchema, FILE_WATCH_MAX, FILE_WATCH_STARS_MAX } from './agent.js';
import { checkAlertOutputs } from './alert-outputs.js';
import { ServerConfigSchema } from './server.js';
import { yamlDepthProblem } from '../yaml-depth.js';
import { complexKeys, parseConfig, type ConfigCheck, type ConfigProblem, type ConfigResult } from './validate.js';
import { yamlToPlain } from '../yaml-plain.js';

export { AgentConfigSchema, type AgentConfig } from './agent.js';
export { ServerConfigSchema, type ServerConfig } from './server.js';
export { parseConfig, loadConfig, configError, formatProblem, MAX_CONFIG_BYTES, type ConfigCheck, type ConfigProblem, type ConfigResult } from './validate.js';

/**
 * Whether a configuration text sets nothing: empty, only comments, or a YAML document that is
 * empty (`---`, `~`, `{}`). Valid, since every key has a default, but as a group's configuration
 * it would put every agent of the group on the defaults: what a truncated upload looks like.
 * A text that does not parse is not "empty": the validator says what is wrong with it.
 */
export function setsNothing(text: string): boolean {
  // Too deep to parse safely, or not YAML: not "empty" (parseConfig says what is wrong).
  if (yamlDepthProblem(text) !== undefined) return false;
  const doc = parseDocument(text, { logLevel: 'error' });
  if (doc.errors.length > 0 || complexKeys(doc).length > 0) return false;
  let value: unknown;
  try {
    value = yamlToPlain(doc);
  } catch {
    return false; // an alias bomb: parseConfig refuses it with HADES_ERR_CONFIG_SYNTAX
  }
  return value === null || value === undefined || (typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 0);
}

/** The two programs that read a configuration, each with its own schema. */
export const configSchemas = {
  agent: AgentConfigSchema,
  server: ServerConfigSchema,
} as const;

export type ConfigRole = keyof typeof configSchemas;
export const configRoles = Object.keys(configSchemas) as ConfigRole[];

/** The checks of one role's configuration. */
export type RoleChecks<R extends ConfigRole> = readonly ConfigCheck<Static<(typeof configSchemas)[R]>>[];

/**
 * What each role's schema cannot check: consistency between keys. Each names the keys it reads
 * (and reads no other): it runs whenever those passed the schema, whatever is wrong elsewhere.
 */
const configChecks: { readonly [R in ConfigRole]: RoleChecks<R> } = {
  agent: [
    { reads: ['plugins.honeypot.ports'], check: (config) => checkHoneypotPorts(config.plugins.honeypot.ports) },
    { reads: ['plugins.honeypot.bind'], check: (config) => checkHoneypotBind(config.plugins.honeypot.bind) },
    { reads: ['outputs.server.api'], check: (config) => checkServerApi(config.outputs.server.api) },
    { reads: ['plugins.driver', 'driver.ringbuf_mb', 'plugins.limits.memory_mb'], check: checkRingBuffer },
    { reads: ['driver.file_watch', 'driver.file_watch_extra'], check: (config) => checkFileWatch(config.driver.file_watch, config.driver.file_watch_extra) },
  ],
  server: [{ reads: ['alerts.outputs'], check: (config) => checkAlertOutputs(config.alerts.outputs) }],
};

/** What the driver holds besides its ring buffer, in MiB (its code, libbpf, its buffers): about 12 measured. */
const DRIVER_BASE_MB = 32;

/**
 * The ring buffer counts twice in the driver's resident memory (the kernel maps it twice): with
 * the driver's memory budget (plugins.limits.memory_mb) below that, the watchdog would restart the
 * driver for good, or, without cgroups, kill it at twice its budget as soon as the buffer fills.
 */
function checkRingBuffer(config: Static<typeof AgentConfigSchema>): ConfigProblem[] {
  if (!config.plugins.driver) return [];
  const ring = 2 ** Math.ceil(Math.log2(config.driver.ringbuf_mb));
  const needed = 2 * ring + DRIVER_BASE_MB;
  if (config.plugins.limits.memory_mb >= needed) return [];
  return [{ code: 'HADES_ERR_CONFIG_VALUE', path: 'driver.ringbuf_mb', message: `a ring buffer of ${ring} MiB counts twice in the driver's resident memory: with the rest, about ${needed} MB, over its memory budget of ${config.plugins.limits.memory_mb} MB (plugins.limits.memory_mb); raise that, or take a smaller ring buffer` }];
}

/**
 * file_watch and file_watch_extra together fit the driver's table (FILE_WATCH_MAX, after
 * duplicates), and its FILE_WATCH_STARS_MAX `*` entries per folder before the star.
 */
function checkFileWatch(watch: readonly string[], extra: readonly string[]): ConfigProblem[] {
  const path = extra.length > 0 ? 'driver.file_watch_extra' : 'driver.file_watch';
  const all = new Set([...watch, ...extra]);
  if (all.size > FILE_WATCH_MAX) {
    return [{ code: 'HADES_ERR_CONFIG_VALUE', path, message: `driver.file_watch and driver.file_watch_extra name ${all.size} prefixes together; the driver watches at most ${FILE_WATCH_MAX} (watch a common parent folder instead of several of its children)` }];
  }
  const stars = new Map<string, number>();
  for (const entry of all) {
    const star = entry.indexOf('*');
    if (star < 0) continue;
    const folder = entry.slice(0, star);
    stars.set(folder, (stars.get(folder) ?? 0) + 1);
  }
  return [...stars]
    .filter(([, count]) => count > FILE_WATCH_STARS_MAX)
    .map(([folder, count]) => ({ code: 'HADES_ERR_CONFIG_VALUE' as const, path, message: `driver.file_watch and driver.file_watch_extra have ${count} entries of the form ${folder}*/...; the driver takes at most ${FILE_WATCH_STARS_MAX} per folder (the defaults use 15 under /home/: see rules/README.md, What the agent must watch)` }));
}

/** The server's API address: the schema checks its scheme; enrollment needs a URL that parses. */
function checkServerApi(api: string): ConfigProblem[] {
  if (api === '' || URL.canParse(api)) return [];
  return [{ code: 'HADES_ERR_CONFIG_VALUE', path: 'outputs.server.api', message: `'outputs.server.api' is not a valid URL (got ${JSON.stringify(api)}): give https://host:port` }];
}

/**
 * The honeypot's decoys: each protocol and port once, and no banner on a UDP decoy (it never
 * answers). Said here rather than only by the plugin, which would refuse the whole list.
 */
function checkHoneypotPorts(ports: Static<typeof AgentConfigSchema>['plugins']['honeypot']['ports']): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const seen = new Set<string>();
  ports.forEach((decoy, i) => {
    const name = `${decoy.protocol}/${decoy.port}`;
    if (seen.has(name)) problems.push({ code: 'HADES_ERR_CONFIG_VALUE', path: `plugins.honeypot.ports.${i}.port`, message: `${decoy.protocol} port ${decoy.port} is named twice` });
    seen.add(name);
    if (decoy.protocol === 'udp' && decoy.banner !== undefined) {
      problems.push({ code: 'HADES_ERR_CONFIG_VALUE', path: `plugins.honeypot.ports.${i}.banner`, message: `udp port ${decoy.port} cannot have a banner: a UDP decoy never answers (an answer to a forged source would reflect traffic onto it)` });
    }
  });
  return problems;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** An IPv4 or IPv6 address (with a zone id: fe80::1%eth0), as the plugin's net.isIP takes it. */
export function isIpAddress(text: string): boolean {
  if (IPV4.test(text)) return true;
  const [address, zone, ...rest] = text.split('%');
  if (rest.length > 0 || zone === '' || address === undefined || !address.includes(':')) return false;
  try {
    // The URL parser checks an IPv6 address fully (groups, ::, an embedded IPv4).
    new URL(`http://[${address}]/`);
    return true;
  } catch {
    return false;
  }
}

/** The decoys' address, checked as the honeypot plugin checks it (an IP address; zone ids too). */
function checkHoneypotBind(bind: string): ConfigProblem[] {
  return !isIpAddress(bind) ? [{ code: 'HADES_ERR_CONFIG_VALUE', path: 'plugins.honeypot.bind', message: `'plugins.honeypot.bind' must be an IP address, such as :: or 0.0.0.0 or 192.0.2.10 (got ${JSON.stringify(bind)})` }] : [];
}

/**
 * parseConfig with the role's schema and its consistency checks; `more` checks what needs I/O,
 * which this layer has not (the files the configuration names), with positions all the same.
 */
export function parseRoleConfig<R extends ConfigRole>(text: string, role: R, more: RoleChecks<R> = []): ConfigResult<Static<(typeof configSchemas)[R]>> {
  const checks: RoleChecks<R> = [...configChecks[role], ...more];
  return parseConfig(text, configSchemas[role], checks);
}
