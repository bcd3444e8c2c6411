/**
 * Where Sigma rules meet Hades events: for each Sigma log source category Hades produces events
 * for, the actions that stand for it and the Hades (ECS) field each Sigma field name maps to.
 * Sigma names follow Sysmon (and Sysmon for Linux, which SigmaHQ's Linux rules are written
 * for); docs/sigma.md prints this table (a test keeps the two in step) and says why each row
 * is what it is.
 */
import { fieldInfo } from '../fields.js';
import { own } from './document.js';

/** A Sigma field and what it becomes. */
export type FieldMapping =
  /** The same fact under an ECS name. */
  | { readonly kind: 'field'; readonly target: string }
  /**
   * A Sigma field whose few values each stand for a value of a Hades field: `Initiated: 'true'`
   * is `event.action = connect`. `true` in `values` means the value holds for every event of the
   * category (a DNS query is always initiated by the process).
   */
  | { readonly kind: 'values'; readonly target: string; readonly values: Readonly<Record<string, string | true>> };

export interface CategorySpec {
  /** The Sigma `logsource.category`. */
  readonly category: string;
  /** The Hades actions whose events the category's rules are matched against. */
  readonly actions: readonly string[];
  /** Of those events, only the ones whose field has one of these values (what the Sigma category covers). */
  readonly only?: { readonly field: string; readonly values: readonly string[] };
  readonly fields: Readonly<Record<string, FieldMapping>>;
  /** One sentence for docs/sigma.md: what the category is in Hades. */
  readonly about: string;
  /** A template of the alert text, after the title (fields of the category's events). */
  readonly output: string;
}

const field = (target: string): FieldMapping => ({ kind: 'field', target });

/**
 * Fields of the process that caused an event, which the agent fills on every action with a
 * process context (exec events from the record, the others from its process tree).
 */
const PROCESS: Readonly<Record<string, FieldMapping>> = {
  Image: field('process.executable'),
  CommandLine: field('process.command_line'),
  ProcessId: field('process.pid'),
  ProcessGuid: field('process.entity_id'),
  User: field('process.user.name'),
  ParentImage: field('process.parent.executable'),
  ParentCommandLine: field('process.parent.command_line'),
  ParentProcessId: field('process.parent.pid'),
  ParentProcessGuid: field('process.parent.entity_id'),
};

/** Fields only exec events carry (the record of the exec has them; other events do not). */
const EXEC: Readonly<Record<string, FieldMapping>> = {
  CurrentDirectory: field('process.working_directory'),
  // Sysmon for Linux fills LogonId with the audit login uid (/proc/PID/loginuid).
  LogonId: field('hades.process.login_uid'),
  sha256: field('process.hash.sha256'),
};

/** Fields every event has. */
const HOST: Readonly<Record<string, FieldMapping>> = {
  Computer: field('host.name'),
  ComputerName: field('host.name'),
};

const PROCESS_OUTPUT = '{process.executable} ({process.command_line}) as {process.user.name} on {host.name}';

export const CATEGORIES: readonly CategorySpec[] = [
  {
    category: 'process_creation',
    actions: ['exec'],
    fields: { ...HOST, ...PROCESS, ...EXEC },
    about: 'A program was executed: `exec` events (execve and execveat that succeeded).',
    output: PROCESS_OUTPUT,
  },
  {
    category: 'process_termination',
    actions: ['exit'],
    fields: { ...HOST, Image: field('process.executable'), ProcessId: field('process.pid'), ProcessGuid: field('process.entity_id') },
    about: 'A process exited: `exit` events.',
    output: '{process.executable} (pid {process.pid}) on {host.name}',
  },
  {
    category: 'network_connection',
    actions: ['connect', 'accept'],
    // Sysmon's network connections are TCP and UDP over IP; Hades also reports unix-socket
    // connects (driver.unix_sockets), which a rule on the rest of the connection would match.
    only: { field: 'network.type', values: ['ipv4', 'ipv6'] },
    fields: {
      ...HOST,
      ...PROCESS,
      // Sysmon's source is the end that initiated the connection, as in Hades' accept events.
      Initiated: { kind: 'values', target: 'event.action', values: { true: 'connect', false: 'accept' } },
      SourceIp: field('source.ip'),
      SourcePort: field('source.port'),
      DestinationIp: field('destination.ip'),
      DestinationPort: field('destination.port'),
      Protocol: field('network.transport'),
      SourceIsIpv6: { kind: 'values', target: 'network.type', values: { true: 'ipv6', false: 'ipv4' } },
      DestinationIsIpv6: { kind: 'values', target: 'network.type', values: { true: 'ipv6', false: 'ipv4' } },
    },
    about: 'A process connected a socket (`connect`) or accepted a connection (`accept`).',
    output: '{process.executable} {source.ip}:{source.port} -> {destination.ip}:{destination.port} on {host.name}',
  },
  {
    category: 'dns_query',
    actions: ['dns_query'],
    fields: { ...HOST, ...PROCESS, QueryName: field('dns.question.name') },
    about: 'A process sent a DNS question: `dns_query` events.',
    output: '{process.executable} asked for {dns.question.name} on {host.name}',
  },
  {
    category: 'dns',
    actions: ['dns_query'],
    fields: { ...HOST, query: field('dns.question.name'), record_type: field('dns.question.type'), QueryName: field('dns.question.name') },
    about: 'DNS questions (the generic category): `dns_query` events.',
    output: '{process.executable} asked for {dns.question.name} on {host.name}',
  },
  {
    category: 'file_event',
    actions: ['file_create', 'file_rename'],
    fields: { ...HOST, ...PROCESS, TargetFilename: field('file.path') },
    about: 'A file appeared at a path in a watched place: created there (`file_create`, which includes an existing file opened with O_CREAT, as Sysmon\'s FileCreate does) or renamed to it (`file_rename`, where `file.path` is the new path).',
    output: '{file.path} by {process.executable} on {host.name}',
  },
  {
    category: 'file_create',
    actions: ['file_create'],
    fields: { ...HOST, ...PROCESS, TargetFilename: field('file.path') },
    about: 'A file was created in a watched place: `file_create` events.',
    output: '{file.path} by {process.executable} on {host.name}',
  },
  {
    category: 'file_rename',
    actions: ['file_rename'],
    fields: { ...HOST, ...PROCESS, TargetFilename: field('file.path'), SourceFilename: field('hades.file.old_path') },
    about: 'A file was renamed into, out of or within a watched place: `file_rename` events.',
    output: '{hades.file.old_path} -> {file.path} by {process.executable} on {host.name}',
  },
  {
    category: 'file_delete',
    actions: ['file_delete'],
    fields: { ...HOST, ...PROCESS, TargetFilename: field('file.path') },
    about: 'A file was deleted from a watched place: `file_delete` events.',
    output: '{file.path} by {process.executable} on {host.name}',
  },
  {
    category: 'driver_load',
    actions: ['module_load'],
    fields: { ...HOST, ImageLoaded: field('hades.module.path') },
    about: 'A kernel module was loaded: `module_load` events.',
    output: '{hades.module.name} ({hades.module.path}) on {host.name}',
  },
];

/** Argument positions mapped for auditd's EXECVE records (a0 to a63). */
export const AUDITD_MAX_ARG = 63;

/**
 * auditd's EXECVE records (`service: auditd` rules whose every match needs `type: EXECVE`,
 * auditd.ts): the arguments of an executed program, `a0` (argv[0]) onwards, are the elements of
 * `process.args` of the exec event, `argc` their number. `type: EXECVE` holds for every exec event.
 */
export const AUDITD_EXECVE: CategorySpec = {
  category: 'service: auditd (EXECVE records)',
  actions: ['exec'],
  fields: {
    type: { kind: 'values', target: 'event.action', values: { execve: true } },
    argc: field('process.args_count'),
    ...Object.fromEntries(Array.from({ length: AUDITD_MAX_ARG + 1 }, (_, i) => [`a${i}`, field(`process.args[${i}]`)])),
  },
  about: "auditd's EXECVE records, the arguments of a program executed: `exec` events, argument N (`aN`) as `process.args[N]`.",
  output: PROCESS_OUTPUT,
};

/** Categories Hades has no events for, with why: the report says it instead of "unknown". */
export const UNSUPPORTED_CATEGORIES: Readonly<Record<string, string>> = {
  file_change: "Sysmon's file_change is a change of a file's creation time, which Hades does not observe",
  file_access: 'Hades does not report file reads',
  image_load: 'Hades does not report shared libraries being mapped',
  process_access: 'Hades reports ptrace, not the opening of other processes',
  registry_event: 'Linux has no registry',
  registry_add: 'Linux has no registry',
  registry_set: 'Linux has no registry',
  registry_delete: 'Linux has no registry',
  pipe_created: 'Hades does not report named pipes',
};

/**
 * Sigma's DestinationHostname: Hades' connect events carry addresses, not the host name the
 * program resolved. A rule on it (and on the process) is matched on the DNS question for the
 * name instead, which the same program sends before it connects.
 */
export const HOSTNAME_FIELD = 'DestinationHostname';

/** The network_connection rules that only test a host name, matched as DNS questions. */
export const HOSTNAME_AS_DNS: CategorySpec = {
  category: 'network_connection',
  actions: ['dns_query'],
  fields: {
    ...HOST,
    ...PROCESS,
    [HOSTNAME_FIELD]: field('dns.question.name'),
    Initiated: { kind: 'values', target: 'event.action', values: { true: true } },
  },
  about: 'network_connection rules whose only network field is DestinationHostname: `dns_query` events for that name.',
  output: '{process.executable} asked for {dns.question.name} on {host.name}',
};

const byCategory = new Map(CATEGORIES.map((c) => [c.category, c]));

export function categorySpec(category: string): CategorySpec | undefined {
  return byCategory.get(category);
}

/**
 * The Hades field a Sigma field stands for in a category: the mapping, else (case aside) a
 * mapping spelt differently, else an ECS field of the catalogue that the category's events
 * carry (rules written with `taxonomy: ecs`, or for Hades directly).
 */
export function mapField(spec: CategorySpec, name: string): FieldMapping | undefined {
  const direct = own(spec.fields, name);
  if (direct) return direct;
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(spec.fields)) if (k.toLowerCase() === lower) return v;
  if (!name.includes('.')) return undefined;
  const info = fieldInfo(name);
  if (!info || !spec.actions.some((a) => info.actions.has(a))) return undefined;
  return field(name);
}

/**
 * Whether every action of the category carries the field (else the mapping is wrong); for an
 * element of a list (`process.args[2]`), the list.
 */
export function carriedBy(spec: CategorySpec, target: string): boolean {
  const info = fieldInfo(target.replace(/\[\d+\]$/, ''));
  return info !== undefined && spec.actions.every((a) => info.actions.has(a));
}

/** The rows of docs/sigma.md's mapping table for one category: `| Sigma | Hades |`. */
export function mappingRows(spec: CategorySpec): string[] {
  return Object.entries(spec.fields).map(([name, m]) => {
    if (m.kind === 'field') return `| \`${name}\` | \`${m.target}\` |`;
    const values = Object.entries(m.values).map(([v, to]) => (to === true ? `\`${v}\`: every event` : `\`${v}\`: \`${m.target} = ${to}\``));
    return `| \`${name}\` | ${values.join(', ')} |`;
  });
}
