/**
 * Every `hades` subcommand is registered here, in one list. A command is either available (it
 * has a `run`) or planned: planned commands show in the help marked "not yet available" and
 * exit with HADES_ERR_NOT_YET_AVAILABLE, so the help never promises what does not exist.
 */
import type { Command } from 'commander';
import type { CliContext } from './context.js';
import { KERNEL_ACTIONS } from '../agent/kernel-actions.js';
import { defaultConfigFiles } from './context.js';

type Run = NonNullable<CommandSpec['run']>;
/**
 * Every command's module is loaded only when it runs: the server's modules (gRPC, SQLite,
 * Fastify, x509) are not needed by `hades agent`, and would cost its memory; and `hades
 * --version`, the help or a mistyped option answer without loading any (a third of a second).
 */
const lazy =
  <M>(load: () => Promise<M>, pick: (module: M) => Run): Run =>
  async (context, args, options) =>
    pick(await load())(context, args, options);
const serverCommands = () => import('./commands/server.js');
const remoteCommands = () => import('./commands/remote.js');
const agentCommands = () => import('./commands/agent.js');
const alertCommands = () => import('./commands/alerts.js');
const fleetCommands = () => import('./commands/fleet.js');
const manageCommands = () => import('./commands/manage.js');
const configCommands = () => import('./commands/config.js');
const DEFAULT_AGENT_CONFIG = defaultConfigFiles.agent;

export interface CommandSpec {
  /** Words typed after `hades`, e.g. `config check`. */
  readonly name: string;
  readonly summary: string;
  /** Adds arguments and options. */
  readonly define?: (command: Command) => void;
  /** Runs the command; resolves to the exit status. Absent for planned commands. */
  readonly run?: (context: CliContext, args: readonly string[], options: Readonly<Record<string, unknown>>) => Promise<number>;
  /** For planned commands: what will bring it. */
  readonly planned?: string;
}

/** Names of groups of subcommands and what they hold. */
export const groups: Readonly<Record<string, string>> = {
  config: 'Check configuration files and print their schema',
  agents: 'The fleet of agents known to the server',
  groups: 'Groups of agents and the configuration the server pushes to them',
  tasks: 'Tasks for agents: restart a plugin, change the log level, run a query',
  fleet: 'Questions asked of many agents at once',
  alerts: 'Alerts raised by the rule engine',
  tokens: 'API tokens for people and scripts, each with a role (admin, analyst, read-only)',
  'server token': 'One-time enrollment tokens for agents',
  'server ca': 'The server\'s certificate authority: its rotation (a CA near its end, or a key that may have leaked)',
  rules: 'Rule packs: test them, import Sigma rules, have the server reload its rules',
  yara: 'YARA scanning',
};

/** The options of commands that talk to the server's API. */
/**
 * Agent ids of a repeatable `--agent ID` (or `--agent ID,ID`): one value each time, so that the
 * words after it are the command's arguments (`--agent <id...>` took them all as ids). An id
 * given twice counts once.
 */
const agentIds = (value: string, previous: string[] | undefined): string[] => [...new Set([...(previous ?? []), ...value.split(',').filter((id) => id !== '')])];

const apiOptions = (c: Command) =>
  c
    .option('--config <file>', 'server configuration of the local deployment (default: the file HADES_SERVER_CONFIG names, else /etc/hades/server.yaml when it exists, else the defaults)')
    .option('--server <url>', 'the API to use instead of the local deployment\'s, e.g. https://hades.example:7080 (with --token or HADES_API_TOKEN: the local admin token is never sent to it)')
    .option('--token <token>', 'API token (default: HADES_API_TOKEN, else, without --server, the local deployment\'s admin token)')
    .option('--ca <file>', 'the CA certificate the server\'s must chain to (default: HADES_API_CA, else the local deployment\'s CA)');

const roleOption = (c: Command) =>
  c.option('--role <role>', 'which program the configuration is for: agent or server', 'agent');

export const commands: readonly CommandSpec[] = [
  {
    name: 'config check',
    summary: 'Validate a configuration file; every problem is printed with its line, column and code',
    define: (c) => roleOption(c).argument('<file>', 'YAML file to check').option('--json', 'print the result as JSON'),
    run: lazy(configCommands, (m) => m.configCheck),
  },
  {
    name: 'config schema',
    summary: 'Print the JSON Schema of the agent or server configuration',
    define: roleOption,
    run: lazy(configCommands, (m) => m.configSchema),
  },
  {
    name: 'config defaults',
    summary: 'Print a complete configuration with every default, as YAML',
    define: roleOption,
    run: lazy(configCommands, (m) => m.configDefaults),
  },
  {
    name: 'events',
    summary: 'Stream kernel events as NDJSON, one ECS event per line (root)',
    define: (c) =>
      c
        .option('--backend <backend>', 'event source: auto, ebpf or cnproc')
        .option('--action <actions>', `comma-separated actions to print (default: all): ${KERNEL_ACTIONS.join(', ')}`)
        .option('--duration <seconds>', 'stop after this many seconds (default: until Ctrl-C)')
        .option('--stats', 'print the counters (seen, sent, dropped by hook and reason) to stderr at the end')
        .option('--config <file>', 'agent configuration file (driver, process tree and hashing settings)'),
    run: lazy(() => import('./commands/events.js'), (m) => m.events),
  },
  {
    name: 'start',
    summary: 'Run the single-node deployment on this machine: the server (embedded SQLite, loopback) and a local agent enrolled to it (root)',
    define: (c) =>
      c
        .option('--data <folder>', 'where the server and the local agent keep their state', '/var/lib/hades')
        .option('--api <host:port>', 'where the REST API listens (port 0: any free port)', '127.0.0.1:7080')
        .option('--gateway <host:port>', 'where the agent gateway listens (port 0: any free port)', '127.0.0.1:7443')
        .option('--config <file>', 'a server configuration for the other settings (rules, alert outputs, CMDB, retention); --data, --api and --gateway still say where it keeps its state and listens'),
    run: lazy(serverCommands, (m) => m.start),
  },
  {
    name: 'agent',
    summary: 'Run the agent daemon: kernel driver and plugins under a watchdog, outputs with a disk spool (root; SIGHUP reloads the configuration)',
    define: (c) => c.option('--config <file>', `agent configuration file (default: ${DEFAULT_AGENT_CONFIG} when it exists, else the defaults)`),
    run: lazy(agentCommands, (m) => m.agentRun),
  },
  {
    name: 'agent status',
    summary: 'Show the running agent\'s health for a person: resources, plugins, outputs, spool, drops',
    define: (c) => c.option('--config <file>', 'configuration of the agent to ask (its agent.data_dir locates it)').option('--json', 'print the status as JSON'),
    run: lazy(agentCommands, (m) => m.agentStatus),
  },
  {
    name: 'server',
    summary: 'Run the server: agent gateway (mutual TLS), event store, REST API',
    define: (c) => c.option('--config <file>', 'server configuration file (default: /etc/hades/server.yaml when it exists, else the defaults)'),
    run: lazy(serverCommands, (m) => m.serverRun),
  },
  {
    name: 'server token create',
    summary: 'Create a one-time enrollment token for an agent, with what its configuration needs',
    define: (c) => apiOptions(c).option('--ttl <duration>', 'how long the token is valid: 30m, 1h, 7d', '1h').option('--group <group>', 'the group the agent joins').option('--json', 'print JSON'),
    run: lazy(remoteCommands, (m) => m.tokenCreate),
  },
  {
    name: 'server token list',
    summary: 'The enrollment tokens: group, creator, expiry, which agent used each, revocation (never their secrets; admin role)',
    define: (c) => apiOptions(c).option('--json', 'one JSON object per token'),
    run: lazy(manageCommands, (m) => m.enrollmentTokensList),
  },
  {
    name: 'server token revoke',
    summary: 'Revoke an enrollment token that was not used (admin role; a used one enrolled its agent: revoke the agent)',
    define: (c) => apiOptions(c).argument('<id>', 'the token\'s id, as hades server token list shows it').option('--json', 'print the answer as JSON'),
    run: lazy(manageCommands, (m) => m.enrollmentTokensRevoke),
  },
  {
    name: 'server ca status',
    summary: 'Show the server\'s CAs (in use, new during a rotation, retired) and how many agents hold a certificate of each',
    define: (c) => apiOptions(c).option('--json', 'print the status as JSON'),
    run: lazy(remoteCommands, (m) => m.caStatus),
  },
  {
    name: 'server ca rotate',
    summary: 'Start a CA rotation: a new CA beside the old one; agents are sent both and renew under the new one by themselves (admin role)',
    define: (c) => apiOptions(c).option('--json', 'print the answer as JSON'),
    run: lazy(remoteCommands, (m) => m.caRotate),
  },
  {
    name: 'server ca retire-old',
    summary: 'End a CA rotation: trust the new CA only and present a server certificate of it; refused while agents are still on the old CA, unless --force (admin role)',
    define: (c) => apiOptions(c).option('--force', 'retire even with agents still on the old CA: they are refused from then on and must be enrolled again').option('--json', 'print the answer as JSON'),
    run: lazy(remoteCommands, (m) => m.caRetireOld),
  },
  {
    name: 'agents list',
    summary: 'List the agents of the fleet with their state',
    define: (c) => apiOptions(c).option('--json', 'one JSON object per agent'),
    run: lazy(remoteCommands, (m) => m.agentsList),
  },
  {
    name: 'agents show',
    summary: 'Show one agent: host, versions, groups and tags, state and last heartbeat, configuration, CMDB context, plugin health, resource use and drops',
    define: (c) => apiOptions(c).argument('<id>', 'the agent\'s id, as hades agents list shows it').option('--json', 'print the agent as JSON, as the API has it'),
    run: lazy(remoteCommands, (m) => m.agentsShow),
  },
  {
    name: 'agents renew',
    summary: 'Ask an agent to renew its certificate, with a new key pair, within its renew_jitter_s or at once with --now (at its next connection when it is offline; admin role)',
    define: (c) =>
      apiOptions(c)
        .argument('<id>', 'the agent\'s id, as hades agents list shows it')
        .option('--now', 'without the agent\'s random delay, for a key that may have been copied: it renews and reconnects with the new certificate at once, and the old one is refused from then on (a key known to be in other hands: hades agents revoke, and enroll the host again)')
        .option('--json', 'print the answer as JSON: {"id", "sent", "now"}'),
    run: lazy(remoteCommands, (m) => m.agentsRenew),
  },
  {
    name: 'agents revoke',
    summary: 'Revoke an agent: its connections are refused from now on (admin role)',
    define: (c) => apiOptions(c).argument('<id>', 'the agent\'s id, as hades agents list shows it').option('--json', 'print the answer as JSON'),
    run: lazy(manageCommands, (m) => m.agentsRevoke),
  },
  {
    name: 'agents groups',
    summary: 'Put an agent in these groups, replacing its groups; the configuration of the first of them that has one is pushed to it (admin role)',
    define: (c) => apiOptions(c).argument('<id>', 'the agent\'s id').argument('<groups...>', 'one to 16 group names').option('--json', 'print the agent as JSON'),
    run: lazy(manageCommands, (m) => m.agentsGroups),
  },
  {
    name: 'agents tags',
    summary: 'Replace an agent\'s tags with KEY=VALUE pairs (none: remove them all; admin role)',
    define: (c) => apiOptions(c).argument('<id>', 'the agent\'s id').argument('[tags...]', 'KEY=VALUE, e.g. owner=team-a').option('--json', 'print the tags as JSON'),
    run: lazy(manageCommands, (m) => m.agentsTags),
  },
  {
    name: 'tokens create',
    summary: 'Create an API token with a role for a person or a script (admin role); its secret is printed once',
    define: (c) =>
      apiOptions(c)
        .argument('<name>', 'whom it is for, as the audit log will name it')
        .option('--role <role>', 'admin, analyst or read-only')
        .option('--ttl <duration>', 'accepted for this long only: 30m, 8h, 90d (default: until revoked)')
        .option('--json', 'print the token as JSON'),
    run: lazy(manageCommands, (m) => m.tokensCreate),
  },
  {
    name: 'tokens list',
    summary: 'The API tokens: role, creator, last use, expiry, revocation (never their secrets; admin role)',
    define: (c) => apiOptions(c).option('--json', 'one JSON object per token'),
    run: lazy(manageCommands, (m) => m.tokensList),
  },
  {
    name: 'tokens revoke',
    summary: 'Revoke an API token (admin role; the last admin token cannot be)',
    define: (c) => apiOptions(c).argument('<id>', 'the token\'s id, as hades tokens list shows it').option('--json', 'print the answer as JSON'),
    run: lazy(manageCommands, (m) => m.tokensRevoke),
  },
  {
    name: 'groups list',
    summary: 'The groups: members and the version of the configuration the server pushes to them',
    define: (c) => apiOptions(c).option('--json', 'one JSON object per group'),
    run: lazy(manageCommands, (m) => m.groupsList),
  },
  {
    name: 'groups show',
    summary: 'Print a group\'s agent configuration (YAML; admin role: it may hold output credentials)',
    define: (c) => apiOptions(c).argument('<name>', 'the group').option('--json', 'the configuration with its version, as JSON'),
    run: lazy(manageCommands, (m) => m.groupsShow),
  },
  {
    name: 'groups set',
    summary: 'Check an agent configuration file and make it the group\'s: it replaces the whole configuration of the group\'s agents except agent.data_dir and outputs.server, and is pushed to those connected (admin role)',
    define: (c) => apiOptions(c).argument('<name>', 'the group').argument('<file>', 'agent configuration (YAML; - reads standard input)').option('--json', 'print the answer as JSON: group, version, pushed'),
    run: lazy(manageCommands, (m) => m.groupsSet),
  },
  {
    name: 'groups unset',
    summary: 'Remove a group\'s configuration: its agents go back to their own files (or to the configuration of another of their groups; admin role)',
    define: (c) => apiOptions(c).argument('<name>', 'the group').option('--json', 'print the answer as JSON: group, pushed'),
    run: lazy(manageCommands, (m) => m.groupsUnset),
  },
  {
    name: 'tasks create',
    summary: 'Give agents a task: restart_plugin name=NAME, log_level level=debug|info|warn|error (admin role), query sql=SQL, inventory table=TABLE (analyst role)',
    define: (c) =>
      apiOptions(c)
        .argument('<kind>', 'restart_plugin, log_level, query or inventory')
        .argument('[params...]', 'NAME=TEXT, or NAME:=JSON for numbers (e.g. max_rows:=100)')
        .option('--agent <id>', 'an agent (repeat the option, or give ids separated by commas)', agentIds)
        .option('--group <group>', 'every agent of a group')
        .option('--timeout <seconds>', 'the task expires when not done within this time', '300')
        .option('--wait', 'wait for each task to end and print its result (exit 3 unless all are done)')
        .option('--json', 'one JSON object per task'),
    run: lazy(manageCommands, (m) => m.tasksCreate),
  },
  {
    name: 'tasks list',
    summary: 'Tasks, newest first, with their status and result',
    define: (c) =>
      apiOptions(c)
        .option('--agent <id>', 'one agent\'s tasks')
        .option('--status <status>', 'pending, sent, done, failed or expired')
        .option('--limit <n>', 'most tasks', '100')
        .option('--json', 'one JSON object per task'),
    run: lazy(manageCommands, (m) => m.tasksList),
  },
  {
    name: 'tasks show',
    summary: 'One task with its parameters and result',
    define: (c) => apiOptions(c).argument('<id>', 'the task\'s id').option('--json', 'the task as JSON'),
    run: lazy(manageCommands, (m) => m.tasksShow),
  },
  {
    name: 'search',
    summary: 'Search stored events; FIELD=VALUE arguments filter (FIELD^=PREFIX, FIELD~=TEXT)',
    define: (c) =>
      apiOptions(c)
        .argument('[filters...]', 'FIELD=VALUE filters, e.g. process.executable=/usr/bin/curl user.name=root')
        .option('--since <duration>', 'how far back: 15m, 2h, 7d, or an ISO time (without a zone: local time) (default: 1h before --until, else before now)')
        .option('--until <duration>', 'events before: a duration back from now or an ISO time')
        .option('--action <actions>', 'comma-separated event actions')
        .option('--host <host>', 'host name, or an agent\'s id (ag_...), which a host cannot claim')
        .option('--limit <n>', 'most events', '100')
        .option('--cursor <cursor>', 'the next page: the cursor the previous page ended with')
        .option('--json', 'NDJSON, one event per line'),
    run: lazy(remoteCommands, (m) => m.search),
  },
  {
    name: 'fleet query',
    summary: 'Run SQL over the inventory tables of many agents through the server; prints each host\'s rows (exit 3 when some hosts fail or do not answer in time, 2 when every host refuses the SQL)',
    define: (c) =>
      apiOptions(c)
        .argument('<sql>', 'the SQL, e.g. "SELECT name, version FROM deb_packages WHERE name = \'openssl\'"')
        .option('--agent <id>', 'an agent to ask (repeat the option, or give ids separated by commas; default: every agent, or --group)', agentIds)
        .option('--group <group>', 'the agents of a group')
        .option('--timeout <seconds>', 'how long to wait for the answers', '60')
        .option('--page <hosts>', 'hosts read per request once the answers are in (1 to 1000; the server also ends a page at 32 MiB of answers)', '100')
        .option('--json', 'NDJSON: one line per row with host and agent_id (a column of either name comes as row.host, row.agent_id); hosts without rows give their status and error'),
    run: lazy(fleetCommands, (m) => m.fleetQuery),
  },
  {
    name: 'alerts list',
    summary: 'List the alerts raised by the rule engine, newest first',
    define: (c) =>
      apiOptions(c)
        .option('--since <duration>', 'alerts active since: 15m, 2h, 7d, or an ISO time (without a zone: local time) (default: 24h before --until, else before now)')
        .option('--until <duration>', 'alerts that began before: a duration back from now or an ISO time')
        .option('--severity <severity>', 'least severity: info, low, medium, high, critical')
        .option('--status <statuses>', 'comma-separated: new, acknowledged, resolved, false_positive')
        .option('--rule <id>', 'one rule\'s alerts')
        .option('--host <host>', 'one host\'s alerts')
        .option('--limit <n>', 'most alerts', '100')
        .option('--cursor <cursor>', 'the next page: the cursor the previous page ended with')
        .option('--json', 'NDJSON, one alert document per line: rule, severity, @timestamp, host, the triggering process with its ancestry, the events'),
    run: lazy(alertCommands, (m) => m.alertsList),
  },
  {
    name: 'alerts show',
    summary: 'One alert: rule, host, process and ancestry, each triggering event, the search for the host\'s events around it, the alerts about the same process tree, its triage history and comments (--json: the whole document)',
    define: (c) => apiOptions(c).argument('<id>', 'the alert\'s id').option('--json', 'the alert document as JSON'),
    run: lazy(alertCommands, (m) => m.alertsShow),
  },
  {
    name: 'alerts triage',
    summary: 'Set an alert\'s status and assignee (analyst role)',
    define: (c) =>
      apiOptions(c)
        .argument('<id>', 'the alert\'s id')
        .option('--status <status>', 'new, acknowledged, resolved or false_positive')
        .option('--assignee <name>', 'who works on it')
        .option('--unassign', 'nobody works on it')
        .option('--revision <n>', 'only if the alert is still at this revision (hades alerts show prints it): a colleague\'s triage since is not overwritten'),
    run: lazy(alertCommands, (m) => m.alertsTriage),
  },
  {
    name: 'alerts comment',
    summary: 'Comment on an alert (analyst role)',
    define: (c) => apiOptions(c).argument('<id>', 'the alert\'s id').argument('<text...>', 'the comment'),
    run: lazy(alertCommands, (m) => m.alertsComment),
  },
  {
    name: 'alerts suppress',
    summary: 'Silence a rule (or every rule: \'*\') on a host, or when an event field has a value, for a while, or what an alert was (--like); matches are counted, not stored (analyst role)',
    define: (c) =>
      apiOptions(c)
        .option('--rule <id>', 'the rule\'s id, or \'*\'')
        .option('--like <alert-id>', 'the rule and host of this alert, and with --field the value the field has in its event')
        .requiredOption('--for <duration>', 'how long: 30m, 8h, 30d (at most 365d)')
        .requiredOption('--reason <text>', 'why (kept in the audit log)')
        .option('--host <host>', 'only on this host')
        .option('--field <field>', 'only when this event field (docs/events.md)...')
        .option('--value <value>', '...has this value'),
    run: lazy(alertCommands, (m) => m.alertsSuppress),
  },
  {
    name: 'alerts suppressions',
    summary: 'The suppressions in force, with their hits',
    define: (c) => apiOptions(c).option('--expired', 'also those that have expired').option('--json', 'one JSON object per suppression'),
    run: lazy(alertCommands, (m) => m.alertsSuppressions),
  },
  {
    name: 'alerts unsuppress',
    summary: 'Lift a suppression (analyst role)',
    define: (c) => apiOptions(c).argument('<id>', 'the suppression\'s id'),
    run: lazy(alertCommands, (m) => m.alertsUnsuppress),
  },
  {
    name: 'rules test',
    summary: 'Load rule files (default: the default pack), run every rule against its sample events, print each problem and failure (exit 1 when any)',
    define: (c) =>
      c
        .argument('[paths...]', 'rule files or folders of *.yaml and *.yml files (default: the default pack)')
        .option('--default-pack', 'load the default pack before the given paths (for files that use its macros or override its rules)')
        .option('--json', 'print the result as one JSON object'),
    run: lazy(() => import('./commands/rules-test.js'), (m) => m.rulesTest),
  },
  {
    name: 'rules match',
    summary: 'Run captured events (NDJSON from hades events, hades search --json, a file output or the raw archive\'s .ndjson.gz; - for standard input) through the rules offline, as the server would: one line per match',
    define: (c) =>
      c
        .argument('<events...>', 'NDJSON files of events (.gz inflated), read in this order, or - for standard input')
        .option('--rules <path...>', 'rule files or folders of *.yaml and *.yml files, after the default pack')
        .option('--no-default-pack', 'only the rules given with --rules')
        .option('--json', 'one JSON object per match (NDJSON): rule, message, @timestamp, file, line, event, host, process, and correlation for a correlation\'s match'),
    run: lazy(() => import('./commands/rules-match.js'), (m) => m.rulesMatch),
  },
  {
    name: 'rules reload',
    summary: 'Have the server load its rule files again (as SIGHUP does); new rules with errors are refused whole and the running ones stay (admin role)',
    define: (c) => apiOptions(c).option('--json', 'print the server\'s rule state as JSON'),
    run: lazy(remoteCommands, (m) => m.rulesReload),
  },
  {
    name: 'rules import-sigma',
    summary: 'Convert the Sigma rules of a folder into Hades rules; report what cannot be converted and why',
    define: (c) =>
      c
        .argument('<dir>', 'folder of Sigma rules (.yml and .yaml files, searched recursively)')
        .option('--out <dir>', 'write the converted Hades rule files there, one per Sigma file')
        .option('--json', 'print the report as JSON'),
    run: lazy(() => import('./commands/rules-sigma.js'), (m) => m.importSigma),
  },
  {
    name: 'yara scan',
    summary: 'Scan files and process memory with YARA rules, with bounded IO',
    planned: 'YARA scanning (on demand, on new executables, scheduled)',
  },
  {
    name: 'query',
    summary: 'Run SQL over this host\'s inventory tables (docs/tables.md): an aligned table, or NDJSON with --json',
    define: (c) =>
      c
        .argument('[sql]', 'one read-only SQL statement, e.g. "SELECT port, pid FROM listening_ports"')
        .option('--json', 'one JSON object per row')
        .option('--timeout <seconds>', 'give up after this long (collection and SQL)', '60')
        .option('--max-memory <MB>', 'stop the query when its collector holds more memory than this', '1024')
        .option('--tables', 'list the tables and their columns instead (with --json: each table\'s spec)')
        .option('--root <folder>', 'read another root than / (a mounted disk image; /proc is <folder>/proc)'),
    run: lazy(() => import('./commands/query.js'), (m) => m.query),
  },
];
