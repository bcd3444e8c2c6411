/**
 * Renders the reference documents that are generated from code: docs/events.md from the event
 * schema and docs/errors.md from the error catalogue. Tests compare the committed files with
 * these renderings, so the docs cannot drift from the code.
 */
import type { TObject, TSchema } from '@sinclair/typebox';
import { OptionalKind } from '@sinclair/typebox';
import { errorCatalog, type ErrorCode } from './errors.js';
import { ProcessContext, commonFields, eventActions, eventKinds, exampleEvent, type EventKindSpec } from './events/schema.js';

interface FieldRow {
  readonly path: string;
  readonly type: string;
  readonly required: boolean;
  readonly description: string;
}

function typeOf(schema: TSchema): string {
  const anyOf = schema['anyOf'] as TSchema[] | undefined;
  if (anyOf) return anyOf.map((s) => ('const' in s ? JSON.stringify(s['const']) : typeOf(s))).join(' \\| ');
  if ('const' in schema) return JSON.stringify(schema['const']);
  const type = schema['type'] as string | undefined;
  if (type === 'array') return `${typeOf(schema['items'] as TSchema)}[]`;
  if (type === 'object' && schema['patternProperties']) return 'map';
  return type ?? 'any';
}

function flatten(schema: TObject, prefix: string, rows: FieldRow[]): FieldRow[] {
  for (const [name, child] of Object.entries(schema.properties)) {
    const path = prefix ? `${prefix}.${name}` : name;
    const required = child[OptionalKind] !== 'Optional';
    const items = child['items'] as TSchema | undefined;
    if (child['type'] === 'object' && 'properties' in child && !child['patternProperties']) {
      if (child.description) rows.push({ path, type: 'object', required, description: child.description });
      flatten(child as unknown as TObject, path, rows);
    } else if (child['type'] === 'array' && items?.['type'] === 'object' && 'properties' in items) {
      rows.push({ path: `${path}[]`, type: 'object[]', required, description: child.description ?? '' });
      flatten(items as unknown as TObject, `${path}[]`, rows);
    } else {
      rows.push({ path, type: typeOf(child), required, description: child.description ?? '' });
    }
  }
  return rows;
}

function table(rows: readonly FieldRow[]): string {
  const lines = ['| field | type | required | description |', '|---|---|---|---|'];
  for (const r of rows) lines.push(`| \`${r.path}\` | ${r.type} | ${r.required ? 'yes' : ''} | ${r.description.replace(/\|/g, '\\|')} |`);
  return lines.join('\n');
}

export function renderEventsDoc(): string {
  const out: string[] = [];
  out.push('# Events', '');
  out.push('<!-- Generated from src/common/events/schema.ts by `npm run docs`; a test fails when this file is stale. -->', '');
  out.push(
    'Every event Hades produces is one JSON object whose field names follow the',
    '[Elastic Common Schema](https://www.elastic.co/guide/en/ecs/current/index.html) (ECS), written as nested',
    'objects (`{"process": {"pid": 1}}` is the field `process.pid`). Fields ECS does not define live under',
    '`hades.*`. This JSON form is the public contract: `hades events` prints it as NDJSON, the server stores',
    'it and rules match on it. Unknown fields are rejected by the validator, so a field listed here is the',
    'whole truth about what a producer may send.',
    '',
    'Identifiers: `process.entity_id` is stable for one process instance (host, pid and start time, in the',
    'kernel\'s ticks of 10 ms, the unit /proc gives for processes found running at start), so two processes',
    'that reuse a pid share it only when the second starts within the same 10 ms as the first: a pid space',
    'that wraps around in 10 ms, which only root can bring about by writing /proc/sys/kernel/ns_last_pid',
    '(process.start, to the microsecond, tells them apart). User and group ids are strings, as in ECS.',
    '',
    'Text from the kernel (paths, arguments, names) is UTF-8. A byte that is not part of valid UTF-8 is',
    'kept as the code point U+DC00 plus the byte (U+DC80 to U+DCFF), which JSON writes as `\\udcff` for the',
    'byte 0xff: nothing a process passed is lost or replaced, and since valid UTF-8 never decodes to such a',
    'code point, it always means a raw byte (an argument written as the four characters `\\xff` stays those).',
    '',
  );
  out.push(
    'The schema covers every kind of the mission; the "produced" column says which ones this version emits. The',
    'others are specified so that producers and consumers can be built against them.',
    '',
  );
  out.push(
    '## What is not seen',
    '',
    'The kernel security events come from syscall tracepoints (kprobes, fentry and BPF LSM do not load on the',
    'target kernels), so what does not go through a syscall of the acting process is not seen (details in',
    'driver/PROTOCOL.md, sections 1.1 and 2.13):',
    '',
    '- **io_uring**: its operations (IORING_OP_OPENAT, WRITE, RENAMEAT, LINKAT, UNLINKAT, FTRUNCATE, SEND...) run',
    '  in the kernel without a syscall each: file, DNS and privilege events are not produced for them. Its TCP',
    '  connects are seen (`connect` with `hades.socket.connect_call` false, from the socket state change).',
    '- **32-bit syscalls** (ia32 programs, and `int 0x80` from 64-bit ones) are seen on x86_64 as the same calls',
    '  (`hades.*.syscall` names the call, not its ABI: `setuid32` is `setuid`), socketcall(2) included, and',
    '  marked `hades.compat_syscall` (rule compat_syscall_used). On arm64, 32-bit (AArch32) tasks are not told apart.',
    '  A kernel built without IA32 emulation, or with it off (`ia32_emulation=0`), runs no 32-bit call at all.',
    '- **Writes without an open**: a file is reported when it is opened for writing (`file_create` with',
    '  `hades.file.written`), created, emptied, linked or renamed into a watched place; writes through a',
    '  descriptor opened before Hades started or received from another process (SCM_RIGHTS, pidfd_getfd), and',
    '  fallocate(2), are not. Reading another process\' memory (process_vm_readv, PTRACE_PEEKDATA) is not reported.',
    '- **Paths are the process\'s own view**: an executable, a working directory or a file is named as its',
    '  mount namespace sees it. A process in a mount namespace of its own (root, or any user through a user',
    '  namespace: `unshare -Urm`) can bind-mount a program over an installed path, and its events then name the',
    '  installed path; `hades.process.namespaces.mnt` differs from the host\'s, and the SHA-256 (`process.hash`)',
    '  is that of the program that ran. Rules that trust installed paths (a package manager writing cron files) do',
    '  not compare namespaces.',
    '- **Paths deeper than 64 folders**: the driver reads the last 64 components; an exec\'s paths are read whole',
    '  from /proc while the process runs, else marked (`hades.process.paths_cut`). A file event in such a folder',
    '  cannot be matched against the watched paths, and is counted (`truncated`, `ignored`) but not reported.',
    '',
  );
  out.push('## Actions', '', '| `event.action` | produced | `event.kind` | `event.category` | `event.type` | process context | what it means |', '|---|---|---|---|---|---|---|');
  for (const action of eventActions) {
    const spec: EventKindSpec = eventKinds[action];
    out.push(`| [\`${action}\`](#${action}) | ${spec.planned ? `planned (${spec.planned})` : 'yes'} | ${spec.kind} | ${spec.category.join(', ')} | ${spec.type.join(', ')} | ${spec.process} | ${spec.summary} |`);
  }
  out.push('', '## Fields of every event', '');
  // The metadata fields are literals per kind; here they read as the general types.
  const general: Record<string, string> = { 'event.kind': 'string', 'event.category': 'string[]', 'event.type': 'string[]', 'event.action': 'string' };
  const common = flatten(exampleCommonSchema(), '', []).map((r) => ({ ...r, type: general[r.path] ?? r.type }));
  out.push(table(common), '');
  out.push('## Process context', '', 'Events caused by a process (the "process context" column above) carry these fields.', '');
  out.push(
    '`container` is the container the process runs in, from its cgroup v2, whose path holds the container\'s id',
    '(`docker-<id>.scope`, `cri-containerd-<id>.scope`, `crio-<id>.scope`, `libpod-<id>.scope`). It is the same in every',
    'event of the process, not only in its exec: exec records carry the cgroup\'s path, the other kernel records',
    '(network, DNS, file, ptrace, privilege, fork...) only the cgroup\'s id, which the agent maps to the container',
    'its exec records taught it (a cache of 4096 cgroups) or, for a cgroup no exec taught (a process moved into it',
    'after its exec, or there before the agent started), that /proc/PID/cgroup of the process or its parent names,',
    'believed only when that folder\'s inode is the id. exit events, which have no cgroup, take the container the',
    'process was last seen in. It is absent for processes of the host, on hosts without cgroup v2 (cgroup v1',
    'only), and when the cgroup could not be told (no exec in it since the agent started, and the process and',
    'its parent gone before their record was handled): rules that must not miss a container also look at the',
    'ancestry (macro `in_container` of the default rules).',
    '',
  );
  out.push(table(flatten(ProcessContext, '', [])), '');
  for (const action of eventActions) {
    const spec: EventKindSpec = eventKinds[action];
    out.push(`## ${action}`, '', spec.planned ? `${spec.summary} Not produced yet: it comes with ${spec.planned}.` : spec.summary, '');
    for (const note of spec.notes ?? []) out.push(note, '');
    out.push(`\`event.kind\`: ${spec.kind}; \`event.category\`: ${spec.category.join(', ')}; \`event.type\`: ${spec.type.join(', ')}; process context: ${spec.process}.`, '');
    const rows = flatten(spec.fields, '', []);
    if (rows.length > 0) out.push('Fields of this action, besides the common ones:', '', table(rows), '');
    out.push('Example:', '', '```json', JSON.stringify(exampleEvent(action), null, 2), '```', '');
  }
  return out.join('\n');
}

/** The common fields differ between kinds only in their literals; document them once. */
function exampleCommonSchema(): TObject {
  return commonFields(eventKinds.exec);
}


export function renderErrorsDoc(): string {
  const out: string[] = ['# Errors', ''];
  out.push('<!-- Generated from src/common/errors.ts by `npm run docs`; a test fails when this file is stale. -->', '');
  out.push(
    'Every error Hades reports has a stable code. The command line prints it as one line,',
    '`hades: CODE: message`, and exits with a status that tells the kind of error:',
    '',
    '| kind | exit status | meaning |',
    '|---|---|---|',
    '| input | 2 | Something the user gave is wrong: a command, a flag, a config file, a rule, a request. Retrying unchanged fails again. |',
    '| environment | 3 | The machine is not as needed: a privilege, a file, a package, a kernel feature. |',
    '| bug | 70 | Hades broke one of its own invariants. Please report it. |',
    '',
    '| code | kind | what happened | what to do |',
    '|---|---|---|---|',
  );
  for (const code of Object.keys(errorCatalog) as ErrorCode[]) {
    const e = errorCatalog[code];
    out.push(`| \`${code}\` | ${e.kind} | ${e.summary} | ${e.remedy} |`);
  }
  out.push('');
  return out.join('\n');
}
