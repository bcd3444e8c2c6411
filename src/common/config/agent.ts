import { Type, type Static } from '@sinclair/typebox';
import { LogConfig } from './shared.js';

/**
 * The agent's configuration. Every key has a default, so an empty file is a valid
 * configuration; unknown keys are rejected (see ./validate.ts).
 */
export const AgentConfigSchema = Type.Object(
  {
    driver: Type.Object(
      {
        backend: Type.Union([Type.Literal('auto'), Type.Literal('ebpf'), Type.Literal('cnproc')], {
          default: 'auto',
          description: 'Kernel event source: eBPF where it loads, the netlink proc connector otherwise (auto).',
        }),
        argv_max: Type.Integer({
          minimum: 256,
          maximum: 32768,
          default: 4096,
          description: 'Bytes of argv captured per exec; longer argv is cut and flagged as truncated.',
        }),
        ringbuf_mb: Type.Integer({
          minimum: 1,
          maximum: 256,
          default: 4,
          description: 'Size of the kernel ring buffer in MiB (rounded up to a power of two). 4 MiB hold about a second of a 3,000 exec/s storm; it counts twice in the resident memory of the driver (the kernel maps it twice).',
        }),
        deny_executables: Type.Array(Type.String({ minLength: 1, maxLength: 255 }), {
          default: [],
          maxItems: 1024,
          description: 'Executable paths whose events are dropped in the kernel (counted as filtered), with those of the children they fork.',
        }),
        deny_cgroups: Type.Array(Type.String({ minLength: 1, maxLength: 4096 }), {
          default: [],
          maxItems: 1024,
          description: 'cgroup v2 folders (e.g. /sys/fs/cgroup/system.slice/backup.service) whose processes are not reported.',
        }),
        allow_cgroups: Type.Array(Type.String({ minLength: 1, maxLength: 4096 }), {
          default: [],
          maxItems: 1024,
          description: 'When not empty, only processes in these cgroup v2 folders are reported.',
        }),
        file_watch: Type.Array(
          Type.String({
            minLength: 1,
            maxLength: 255,
            // What the driver accepts: an absolute prefix, with at most one `*` that is a whole
            // component followed by 1 to 31 more bytes (/home/*/.ssh/).
            pattern: '^/(?:[^*]*|(?:[^*]*/)?\\*/[^*]{1,31})$',
            description: 'an absolute path prefix; one component may be *, followed by 1 to 31 more characters (e.g. /home/*/.ssh/)',
          }),
          {
          default: [
            '/etc/',
            '/root/.ssh/',
            '/home/*/.ssh/',
            '/var/spool/cron/',
            '/etc/cron',
            '/etc/systemd/system/',
            '/usr/lib/systemd/system/',
            '/etc/ld.so.preload',
            '/usr/bin/',
            '/usr/sbin/',
            '/bin/',
            '/sbin/',
            '/tmp/',
            '/dev/shm/',
          ],
            maxItems: 256,
            description: 'Path prefixes where file_create, file_rename, file_delete and file_chmod are reported, matched in the kernel; a whole component may be `*` (/home/*/.ssh/).',
          },
        ),
        unix_sockets: Type.Array(Type.String({ minLength: 1, maxLength: 107, pattern: '^/', description: 'an absolute path' }), {
          default: ['/var/run/docker.sock', '/run/docker.sock', '/run/containerd/containerd.sock', '/run/podman/podman.sock', '/var/run/crio/crio.sock'],
          maxItems: 64,
          description: 'Unix socket path prefixes whose connects are reported (container runtimes by default).',
        }),
        connect_dedup_ms: Type.Integer({
          minimum: 0,
          maximum: 3_600_000,
          default: 1000,
          description: 'A connect or accept repeating the same process, destination and result within this window is counted, not sent; the next event carries the count (event.count). 0 sends every one.',
        }),
      },
      { additionalProperties: false, default: {}, description: 'The kernel event driver.' },
    ),
    privilege: Type.Object(
      {
        allowed_root_executables: Type.Array(Type.String({ minLength: 1, pattern: '^/', description: 'an absolute path' }), {
          default: ['/usr/bin/sudo', '/usr/bin/su', '/bin/su', '/usr/bin/pkexec', '/usr/bin/doas', '/usr/bin/newgrp', '/usr/bin/sg'],
          maxItems: 256,
          description: 'Programs that may turn a non-root process into root at exec; any other exec that does so without a setuid executable is reported as privilege_change.',
        }),
      },
      { additionalProperties: false, default: {}, description: 'Privilege escalation checks.' },
    ),
    protect: Type.Object(
      {
        paths: Type.Array(Type.String({ minLength: 1, pattern: '^/', description: 'an absolute path' }), {
          default: [],
          maxItems: 64,
          description: 'Folders whose files, when changed or removed, are reported as tamper events, besides the folder Hades runs from (always protected).',
        }),
      },
      { additionalProperties: false, default: {}, description: 'Tamper protection of Hades itself.' },
    ),
    limits: Type.Object(
      {
        cpu_percent: Type.Number({
          exclusiveMinimum: 0,
          maximum: 100,
          default: 10,
          description: 'CPU budget of the agent, percent of one core averaged over 10 s. Above it, high-rate kinds (connect, dns_query) are aggregated over longer windows; exec never is.',
        }),
        aggregate_ms: Type.Integer({
          minimum: 0,
          maximum: 3_600_000,
          default: 1000,
          description: 'dns_query events repeating the same process, name and type within this window are counted into one event (event.count); 0 sends every one.',
        }),
      },
      { additionalProperties: false, default: {}, description: 'Resource limits.' },
    ),
    process_tree: Type.Object(
      {
        max_processes: Type.Integer({
          minimum: 1024,
          maximum: 4_194_304,
          default: 65536,
          description: 'Most processes the in-memory process tree holds; exited ones are evicted first.',
        }),
        ancestors: Type.Integer({
          minimum: 0,
          maximum: 8,
          default: 8,
          description: 'Ancestors attached to each event.',
        }),
      },
      { additionalProperties: false, default: {}, description: 'The process tree kept by the agent.' },
    ),
    hashing: Type.Object(
      {
        enabled: Type.Boolean({ default: true, description: 'Compute the SHA-256 of executables.' }),
        max_file_mb: Type.Integer({
          minimum: 1,
          maximum: 4096,
          default: 64,
          description: 'Executables larger than this are not hashed (the event says so).',
        }),
        max_read_mb_per_s: Type.Integer({
          minimum: 1,
          maximum: 1024,
          default: 32,
          description: 'Read rate limit for hashing, in MiB/s.',
        }),
      },
      { additionalProperties: false, default: {}, description: 'Hashing of executables.' },
    ),
    log: LogConfig,
  },
  { additionalProperties: false, description: 'Configuration of the Hades agent.' },
);

export type AgentConfig = Static<typeof AgentConfigSchema>;
