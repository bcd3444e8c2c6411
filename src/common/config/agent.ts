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
          default: 8,
          description: 'Size of the kernel ring buffer in MiB (rounded up to a power of two).',
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
      },
      { additionalProperties: false, default: {}, description: 'The kernel event driver.' },
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
