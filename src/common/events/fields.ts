/**
 * Field groups shared by several event kinds. Names follow the Elastic Common Schema; what ECS
 * does not define lives under `hades.*`. Every field carries its description, from which
 * docs/events.md is generated.
 */
import { Type, Optional as Opt, type TSchema, type TProperties, type TObject } from '@sinclair/typebox';

const closed = { additionalProperties: false } as const;

/** An object schema that rejects unknown fields: a misspelt field is a bug in the producer. */
export function Obj<P extends TProperties>(properties: P, description?: string): TObject<P> {
  return Type.Object(properties, description === undefined ? closed : { ...closed, description });
}

/** An event time's shape, its parts captured: UTC, to the second, with up to 9 decimals. */
const TIME_PARTS = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?Z$/;

export const Timestamp = (description: string) => Type.String({ pattern: TIME_PARTS.source, description });

/** The value of the decimal digits of `text` from `start` (inclusive) to `end`, or -1 if one is not a digit. */
function digits(text: string, start: number, end: number): number {
  let value = 0;
  for (let i = start; i < end; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    value = value * 10 + d;
  }
  return value;
}

/** Days from 1970-01-01 to a day of the proleptic Gregorian calendar (any year, month 1-12). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}

const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * The milliseconds since the epoch of a Timestamp that names a real instant, or NaN. The pattern
 * alone lets through month 13, 30 February and 24:00, which Date.parse refuses or moves to
 * another day, and which a store would then hold under a time the event did not say. Decimals
 * past the millisecond are dropped, as Date.parse drops them. Read character by character: the
 * server reads two of these per event (the check, the store's column).
 */
export function timestampMs(text: string): number {
  const n = text.length;
  // YYYY-MM-DDTHH:MM:SSZ, or with a dot and 1 to 9 decimals before the Z.
  if (n < 20 || n === 21 || n > 30 || text.charCodeAt(n - 1) !== 90) return NaN;
  if (text.charCodeAt(4) !== 45 || text.charCodeAt(7) !== 45 || text.charCodeAt(10) !== 84 || text.charCodeAt(13) !== 58 || text.charCodeAt(16) !== 58) return NaN;
  const year = digits(text, 0, 4);
  const month = digits(text, 5, 7);
  const day = digits(text, 8, 10);
  const hour = digits(text, 11, 13);
  const minute = digits(text, 14, 16);
  const second = digits(text, 17, 19);
  let ms = 0;
  if (n > 20) {
    if (text.charCodeAt(19) !== 46 || digits(text, 20, n - 1) < 0) return NaN;
    ms = digits(text, 20, Math.min(23, n - 1));
    for (let i = n - 1; i < 23; i++) ms *= 10;
  }
  if (year < 0 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59) return NaN;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (day > (month === 2 && leap ? 29 : (MONTH_DAYS[month - 1] as number))) return NaN;
  return daysFromCivil(year, month, day) * 86_400_000 + hour * 3_600_000 + minute * 60_000 + second * 1000 + ms;
}

/** The largest pid Linux hands out (PID_MAX_LIMIT on 64-bit kernels). */
export const PID_MAX = 4_194_304;

export const Pid = (description = 'Process id (thread group id) in the host\'s pid namespace.') =>
  Type.Integer({ minimum: 0, maximum: PID_MAX, description });

export const Port = (description: string) => Type.Integer({ minimum: 0, maximum: 65535, description });

export const Ip = (description: string) => Type.String({ minLength: 2, maxLength: 45, description });

export const Str = (description: string, maxLength = 4096) => Type.String({ maxLength, description });

export const Int = (description: string) => Type.Integer({ description });

export const Count = (description: string) => Type.Integer({ minimum: 0, description });

export const Words = <T extends string>(values: readonly T[], description: string) =>
  Type.Union(
    values.map((v) => Type.Literal(v)),
    { description },
  );


/** ECS ids of users and groups are strings. */
export const UserRef = (description: string) =>
  Obj({ id: Str('Numeric user id, as a string (ECS).', 16), name: Opt(Str('User name, when it resolves.', 256)) }, description);

export const GroupRef = (description: string) =>
  Obj({ id: Str('Numeric group id, as a string (ECS).', 16), name: Opt(Str('Group name, when it resolves.', 256)) }, description);

/** A short reference to a process: enough to find it and show it. */
export const ProcessRef = (description: string) =>
  Obj(
    {
      pid: Pid(),
      entity_id: Opt(Str('Stable id of this process instance (host, pid and start time).', 64)),
      name: Opt(Str('Short name (the kernel\'s comm).', 64)),
      executable: Opt(Str('Absolute path of the executable.')),
      args: Opt(Type.Array(Str('One argument.', 65536), { description: 'Arguments, argv[0] first.' })),
      command_line: Opt(Str('Arguments joined by spaces.', 65536)),
      start: Opt(Timestamp('When the process started.')),
    },
    description,
  );

/** What names an installed program a file is a copy of: hades.process.copy_of and the ancestors' copy_of. */
const CopyOf = (description: string) =>
  Obj(
    {
      path: Str('The installed program\'s file, links resolved, e.g. /usr/bin/bash.'),
      name: Str('Its file name, e.g. bash, dash, python3.11, busybox: the names the rule pack\'s lists hold.', 255),
    },
    description,
  );

export const Ancestor = Obj(
  {
    pid: Pid(),
    entity_id: Opt(Str('Stable id of the ancestor process instance.', 64)),
    name: Opt(Str('Short name.', 64)),
    executable: Opt(Str('Executable path.')),
    args: Opt(Type.Array(Str('One argument.'), { description: 'Arguments, cut after 512 characters in all (the whole list is in the exec event of that process, found by its entity_id).' })),
    args_truncated: Opt(Type.Boolean({ description: 'True when args was cut.' })),
    copy_of: Opt(
      CopyOf(
        'The ancestor\'s executable is byte for byte an installed shell, interpreter or network tool under another path, as its own exec event said (hades.process.copy_of there): the commands run from a copied shell (`cp /bin/bash /usr/local/lib/.x/kworker`) name it here, their parent first, so that rules know their parent or ancestor is a shell. Kept from that exec event until the process executes another program, and carried to its forked children (subshells) until they do. Absent when its exec event did not name it (its hash not known in time, hashing off, a process started before the agent) or was not made (`hades events --action` naming neither exec nor privilege_change).',
      ),
    ),
  },
  'One ancestor process.',
);

/** Credentials; `capabilities` only where the producer reads them (privilege changes: exec events have process.thread.capabilities). */
export const Credentials = (description: string, withCapabilities = true) =>
  Obj(
    {
      uid: Count('Real user id.'),
      gid: Count('Real group id.'),
      euid: Count('Effective user id.'),
      egid: Count('Effective group id.'),
      suid: Opt(Count('Saved user id.')),
      sgid: Opt(Count('Saved group id.')),
      fsuid: Opt(Count('File-system user id.')),
      fsgid: Opt(Count('File-system group id.')),
      ...(withCapabilities ? { capabilities: Opt(Type.Array(Str('Capability name such as CAP_SYS_ADMIN.', 32), { description: 'Effective capabilities.' })) } : {}),
    },
    description,
  );

/** The full process context every process-related event carries. */
export const Process = Obj(
  {
    pid: Pid(),
    entity_id: Str('Stable id of this process instance (host, pid and start time); the same for every event of the process.', 64),
    name: Opt(Str('Short name (the kernel\'s comm, 15 bytes at most).', 64)),
    executable: Opt(Str('Absolute path of the executable.')),
    args: Opt(Type.Array(Str('One argument; bytes that are not UTF-8 are escaped as \\xHH.', 65536), { description: 'Arguments, argv[0] first.' })),
    args_count: Opt(Count('Number of arguments, those cut off by truncation (hades.process.args_truncated) included: the kernel\'s count at the exec on the eBPF backend; on cn_proc, counted from the whole /proc/PID/cmdline when it was cut. Without a cut (or from an older driver) the number of process.args.')),
    command_line: Opt(Str('Arguments joined by spaces.', 65536)),
    working_directory: Opt(Str('Current working directory.')),
    start: Opt(Timestamp('When the process started.')),
    end: Opt(Timestamp('When the process exited (exit events).')),
    exit_code: Opt(Int('Exit status (0-255), or 128 plus the signal number when killed by a signal: the status of the process\'s last thread to end (a process outlives a main thread that ended first). Absent, and listed in hades.missing, when the cn_proc backend lost that thread\'s exit message and saw the end in /proc instead.')),
    interactive: Opt(Type.Boolean({ description: 'True when the process has a controlling terminal.' })),
    thread: Opt(
      Obj(
        {
          id: Opt(Pid('Thread id.')),
          name: Opt(Str('The name of the thread that made the call, when another thread than the process\'s own (its leader) did and its name differs from the process\'s (pthread_setname_np, prctl(PR_SET_NAME) in that thread): process.name stays the process\'s name, which a thread cannot borrow.', 16)),
          capabilities: Opt(
            Obj(
              { effective: Type.Array(Str('Capability name.', 32), { description: 'Effective capabilities.' }) },
              'Capabilities, present only when they differ from what the user id implies (for root the capability bounding set of PID 1, which is every capability on most hosts; none for other users): a root process with a reduced set (a hardened service, a container) or a non-root process with capabilities (file or ambient capabilities).',
            ),
          ),
        },
        'The thread that produced the event.',
      ),
    ),
    group_leader: Opt(Obj({ pid: Pid('Process group id.') }, 'Process group leader.')),
    session_leader: Opt(Obj({ pid: Pid('Session id.') }, 'Session leader.')),
    parent: Opt(ProcessRef('The parent process.')),
    previous: Opt(
      Type.Array(
        Obj(
          {
            executable: Opt(Str('Executable path of the program replaced.')),
            args: Opt(Type.Array(Str('One argument.'), { description: 'Its arguments, cut after 512 characters in all (the whole list is in the exec event that started it, found by process.entity_id).' })),
            args_truncated: Opt(Type.Boolean({ description: 'True when args was cut.' })),
          },
          'A program the process ran before.',
        ),
        {
          maxItems: 1,
          description:
            'Exec events: the program this process ran before it executed this one in its own place, when that program was its own (it had executed it, or was running it when the agent started): a `sh -c` whose last command replaces it, `exec` in a shell, `sudo perl -e \'exec "/bin/sh"\'`, a wrapper such as env, nice or timeout. Absent after a fork, where the program replaced was the parent\'s (process.parent). One entry, the last; the agent must have seen the earlier exec (or started after it).',
        },
      ),
    ),
    user: Opt(UserRef('Effective user.')),
    group: Opt(GroupRef('Effective group.')),
    real_user: Opt(UserRef('Real user.')),
    real_group: Opt(GroupRef('Real group.')),
    saved_user: Opt(UserRef('Saved user.')),
    saved_group: Opt(GroupRef('Saved group.')),
    hash: Opt(Obj({ sha256: Str('SHA-256 of the executable, hex.', 64) }, 'Hashes of the executable.')),
    tty: Opt(Obj({ char_device: Obj({ major: Count('Major number.'), minor: Count('Minor number.') }, 'Terminal device.') }, 'Controlling terminal.')),
  },
  'The process that caused the event.',
);

export const StdioStream = Obj(
  {
    type: Words(['tty', 'pipe', 'socket', 'file', 'char_device', 'none', 'other', 'unknown'], 'What the descriptor refers to.'),
    inode: Opt(Count('Inode number: of the file, or of the pipe or socket (the object the two ends share).')),
    path: Opt(Str('Standard input only: the path of the file on it (`tr < /proc/1/environ`, `nc HOST PORT < /etc/shadow`), which no argument names; read when the process executed (cn_proc: from /proc, when it is still there). A file deleted since it was opened has the path it had (and deleted).')),
    deleted: Opt(Type.Boolean({ description: 'Standard input only, with path: true when the file had been deleted (no name left) when the process executed: path is the one it had.' })),
    socket: Opt(
      Obj(
        {
          family: Words(['ipv4', 'ipv6', 'unix', 'other'], 'Address family.'),
          transport: Opt(Words(['tcp', 'udp', 'other'], 'Transport.')),
          local_ip: Opt(Ip('Local address.')),
          local_port: Opt(Port('Local port.')),
          remote_ip: Opt(Ip('Remote address.')),
          remote_port: Opt(Port('Remote port.')),
        },
        'Socket addresses.',
      ),
    ),
  },
  'One standard descriptor.',
);

/** Process details that ECS has no names for. */
export const HadesProcess = Obj(
  {
    tty: Opt(Str('Name of the controlling terminal as ps and who write it, e.g. pts/0 or tty1.', 64)),
    stdio: Opt(Obj({ stdin: Opt(StdioStream), stdout: Opt(StdioStream), stderr: Opt(StdioStream) }, 'What descriptors 0, 1 and 2 refer to.')),
    cgroup: Opt(Obj({ id: Opt(Count('cgroup v2 id.')), path: Opt(Str('cgroup path.')) }, 'The process\'s cgroup.')),
    namespaces: Opt(Obj({ pid: Opt(Count('pid namespace inode.')), mnt: Opt(Count('Mount namespace inode.')) }, 'Namespaces.')),
    paths_cut: Opt(
      Type.Array(Type.Union([Type.Literal('executable'), Type.Literal('working_directory')]), {
        description:
          'The paths the driver could read only in part (a folder nested more than 64 levels deep; it keeps the last 64 components) and the agent could not read whole from /proc either (the process was gone): process.executable or process.working_directory is then the end of the path, not all of it. Absent when every path is whole (completed from /proc when the driver cut it).',
      }),
    ),
    script: Opt(
      Str(
        'Exec events of a shell or script interpreter (sh, bash, python, perl, ruby, php, node, lua...) given a file to run: that file, as an absolute path resolved against process.working_directory (`sh s.sh` in /tmp gives /tmp/s.sh). The command line is read as the interpreter reads it: options that take a value skip it, and code given on the command line (`-c`, `-e`, `-m`...) or on standard input means no script. A `#!` script run directly appears this way too (its interpreter executed with the script\'s path). Absent for other programs, and for a relative script whose working directory could not be read.',
      ),
    ),
    args_truncated: Opt(Type.Boolean({ description: 'True when argv was longer than the driver\'s capture limit (driver.argv_max) and the kernel capture was cut; stays true when the agent completed the arguments (args_source). The arguments in the event are whole when this is false or args_source is proc.' })),
    args_bytes: Opt(Count('Length of the whole argv in bytes, before truncation.')),
    args_source: Opt(
      Words(
        ['proc', 'proc_cut', 'driver_rewritten'],
        'Exec events whose argv was cut (args_truncated) and whose process was still running when the agent read /proc/PID/cmdline: where process.args and process.command_line come from. proc: the whole arguments, read from /proc/PID/cmdline (the same process by its start time, beginning with the driver\'s capture and as long as args_bytes); proc_cut: from /proc/PID/cmdline, longer than the driver\'s capture but cut at the agent\'s 64 KiB read limit; driver_rewritten: the driver\'s cut arguments, kept because the process had since rewritten its argument area or executed another program. Absent: the driver\'s capture (nothing was cut, or the process had exited, or the read took over 250 ms).',
      ),
    ),
    fileless: Opt(Type.Boolean({ description: 'True when the executable lives in memory (memfd) or was deleted.' })),
    login_uid: Opt(Count('Audit login uid (the user who logged in, kept across su and sudo).')),
    credentials: Opt(Credentials('All credentials, including file-system ids (the capabilities are in process.thread.capabilities).', false)),
    hash_status: Opt(Words(['ok', 'too_large', 'unreadable', 'replaced', 'pending', 'disabled'], 'Why process.hash is absent (pending: still being computed when the event left, later events of the same file carry it; replaced: the file at the path is no longer the one executed), or ok.')),
    copy_of: Opt(
      CopyOf(
        'Exec events: the executable is byte for byte an installed shell, interpreter or network tool (the files of /etc/shells; python, perl, php, ruby, node, lua, busybox, socat, nc... in the program folders), under another path: a copy or a hard link, under any name and in any folder. Absent for the installed file itself and links to it (process.executable is then its path), and when the hash is not known (hades.process.hash_status). Carried from a copy\'s first exec on: a new file of the size of a known program is hashed first in line, its event waiting up to a second; the installed programs are hashed again when a package upgrade changes them, and copies of earlier versions stay recognised. The copy\'s children name it too, in their events\' ancestors (hades.ancestors[].copy_of).',
      ),
    ),
  },
  'Hades-specific process details.',
);

export const Endpoint = (description: string) =>
  Obj(
    {
      ip: Opt(Ip('IP address.')),
      port: Opt(Port('Port.')),
      address: Opt(Str('Address as seen (IP, or a path for unix sockets).')),
    },
    description,
  );

export const Network = Obj(
  {
    transport: Opt(Words(['tcp', 'udp', 'unix', 'other'], 'Transport protocol.')),
    type: Opt(Words(['ipv4', 'ipv6', 'unix'], 'Network layer.')),
    direction: Opt(Words(['egress', 'ingress', 'internal', 'unknown'], 'Direction from the host\'s point of view.')),
    protocol: Opt(Str('Application protocol, e.g. dns.', 32)),
  },
  'Network details.',
);

export const FileFields = Obj(
  {
    path: Str('Full path.'),
    name: Opt(Str('File name.', 255)),
    directory: Opt(Str('Folder holding the file.')),
    inode: Opt(Count('Inode number.')),
    mode: Opt(Str('Permission bits in octal, e.g. 0755.', 8)),
    uid: Opt(Str('Owner user id.', 16)),
    gid: Opt(Str('Owner group id.', 16)),
    size: Opt(Count('Size in bytes.')),
    type: Opt(Words(['file', 'dir', 'symlink', 'other'], 'File type.')),
    hash: Opt(Obj({ sha256: Str('SHA-256, hex.', 64) }, 'Hashes.')),
    mtime: Opt(Timestamp('file_times: the modification time the call set (years 1 to 9999; hades.file.mtime_seconds has any).')),
    atime: Opt(Timestamp('file_times: the access time the call set (years 1 to 9999).')),
  },
  'The file the event is about.',
);

export type Schema = TSchema;
