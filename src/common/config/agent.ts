import { Type, type Static, type TOptional, type TSchema } from '@sinclair/typebox';
import { DISGUISED_PROCESSES_SQL } from '../kernel-threads.js';
import { HOST_PORT, LogConfig } from './shared.js';

/**
 * Prefixes of file_watch and file_watch_extra together: the driver's trie holds 256, and the
 * agent adds its own folders (protect.paths and its data folders) to them.
 */
export const FILE_WATCH_MAX = 224;

/** Entries with a `*` component that share the folder before it (/home/ for .ssh/ and .bashrc under every home): the driver's HADES_SUFFIXES. */
export const FILE_WATCH_STARS_MAX = 16;


const RateLimit = Type.Object(
  {
    events_per_s: Type.Integer({ minimum: 0, maximum: 10_000_000, default: 0, description: 'Events per second towards the output (bursts of one second pass); 0 is unlimited.' }),
    kb_per_s: Type.Integer({ minimum: 0, maximum: 10_000_000, default: 0, description: 'KiB per second towards the output; 0 is unlimited.' }),
  },
  { additionalProperties: false, default: {}, description: 'Rate limit towards the output. A spooled output sends slower and its spool grows; another output drops what is over the limit and counts it.' },
);

const LIMIT_FIELDS = {
  cpu_percent: Type.Number({ exclusiveMinimum: 0, maximum: 6400, default: 10, description: 'CPU budget, percent of one core averaged over limits.sustain_s.' }),
  memory_mb: Type.Integer({ minimum: 8, maximum: 65_536, default: 200, description: 'Memory budget (resident set of the plugin\'s processes); the plugin\'s cgroup gets twice this as a hard ceiling.' }),
  max_open_files: Type.Integer({ minimum: 16, maximum: 1_048_576, default: 1024, description: 'Files the plugin may have open at once (RLIMIT_NOFILE).' }),
  events_per_s: Type.Integer({ minimum: 0, maximum: 10_000_000, default: 5000, description: 'Events per second a plugin may send; more is dropped and counted, and a plugin over it for limits.sustain_s is restarted. 0 is unlimited (the kernel driver is governed by limits.cpu_percent instead).' }),
};

const PluginLimits = Type.Object(LIMIT_FIELDS, { additionalProperties: false, default: {}, description: 'Budget of one plugin.' });

/** A field of an override: optional, and without the default, which would override plugins.limits. */
function overrideOf<T extends TSchema>(schema: T): TOptional<T> {
  const rest = { ...(schema as unknown as Record<string | symbol, unknown>) };
  delete rest['default'];
  return Type.Optional(rest as unknown as T) as unknown as TOptional<T>;
}

/** One plugin's overrides of plugins.limits: only the fields given. */
const limitsOverride = (description: string) =>
  Type.Optional(
    Type.Object(
      { cpu_percent: overrideOf(LIMIT_FIELDS.cpu_percent), memory_mb: overrideOf(LIMIT_FIELDS.memory_mb), max_open_files: overrideOf(LIMIT_FIELDS.max_open_files), events_per_s: overrideOf(LIMIT_FIELDS.events_per_s) },
      { additionalProperties: false, description },
    ),
  );

const PluginEntry = Type.Object(
  {
    manifest: Type.String({ minLength: 1, pattern: '^/', description: 'Absolute path of the plugin\'s manifest.json.' }),
    enabled: Type.Boolean({ default: true, description: 'Start this plugin.' }),
    config: Type.Record(Type.String(), Type.Unknown(), { default: {}, description: 'Sent to the plugin; checked against the config schema of its manifest.' }),
    limits: limitsOverride('Overrides of plugins.limits for this plugin.'),
  },
  { additionalProperties: false },
);

const InventoryQuery = Type.Object(
  {
    name: Type.String({ pattern: '^[a-z0-9][a-z0-9_.-]{0,127}$', description: 'Name of the query, in its events (hades.inventory.query).' }),
    sql: Type.String({ minLength: 1, maxLength: 65_536, description: 'One read-only SQL statement over the inventory tables (docs/tables.md).' }),
    interval_s: Type.Integer({ minimum: 1, maximum: 604_800, description: 'Seconds between runs.' }),
  },
  { additionalProperties: false },
);

/** The scheduled queries of a default agent: what changes on a host that an intruder changes. */
/** Shell startup files in a home folder: what a user's shell runs at login (shell_profile_modified). */
const SHELL_STARTUP_FILES = ['.bashrc', '.profile', '.bash_profile', '.bash_login', '.bash_logout', '.zshrc', '.zprofile', '.zshenv', '.zlogin', '.cshrc', '.tcshrc', '.kshrc'];

export const DEFAULT_INVENTORY_QUERIES = [
  { name: 'listening_ports', sql: 'SELECT pid, family, protocol, address, port, path FROM listening_ports', interval_s: 120 },
  { name: 'users', sql: 'SELECT username, uid, gid, home, shell, password_status, password_algorithm FROM users', interval_s: 600 },
  { name: 'groups', sql: 'SELECT groupname, gid, members FROM groups', interval_s: 600 },
  { name: 'sudoers', sql: 'SELECT file, type, content FROM sudoers', interval_s: 600 },
  { name: 'kernel_modules', sql: 'SELECT name, size, taints FROM kernel_modules', interval_s: 300 },
  { name: 'suid_binaries', sql: 'SELECT path, uid, gid, mode, sha256 FROM suid_binaries', interval_s: 1800 },
  { name: 'crontab', sql: 'SELECT * FROM crontab', interval_s: 600 },
  { name: 'authorized_keys', sql: 'SELECT * FROM authorized_keys', interval_s: 600 },
  { name: 'systemd_units', sql: 'SELECT * FROM systemd_units', interval_s: 900 },
  { name: 'ld_so_preload', sql: 'SELECT * FROM ld_so_preload', interval_s: 600 },
  { name: 'deb_packages', sql: 'SELECT * FROM deb_packages', interval_s: 1800 },
  // Programs named like kernel threads, however they came to be (before the agent started, or a
  // rename event lost): one cheap walk of /proc that returns nothing on a clean host.
  { name: 'disguised_processes', sql: DISGUISED_PROCESSES_SQL, interval_s: 300 },
];

/**
 * The agent's configuration. Every key has a default, so an empty file is a valid
 * configuration; unknown keys are rejected (see ./validate.ts).
 */
export const AgentConfigSchema = Type.Object(
  {
    agent: Type.Object(
      {
        data_dir: Type.String({
          minLength: 1,
          maxLength: 96,
          pattern: '^/',
          default: '/var/lib/hades/agent',
          description: 'Folder of the agent\'s state: spool, run file, and the socket that keeps it to one agent (agent.sock: a Unix socket path has at most 107 bytes, hence at most 96 characters here). One agent per folder.',
        }),
        heartbeat_s: Type.Integer({ minimum: 1, maximum: 86_400, default: 60, description: 'Period of the agent_health event.' }),
        drain_s: Type.Integer({ minimum: 0, maximum: 600, default: 5, description: 'At shutdown, how long outputs may take to deliver what is queued (the spool keeps the rest).' }),
      },
      { additionalProperties: false, default: {}, description: 'The agent daemon.' },
    ),
    plugins: Type.Object(
      {
        driver: Type.Boolean({ default: true, description: 'Run the kernel event driver (configured under driver).' }),
        limits: PluginLimits,
        health_s: Type.Integer({ minimum: 1, maximum: 3600, default: 10, description: 'A plugin silent this long is asked for its counters; one silent three times as long, and for two of these periods after being asked, is restarted.' }),
        grace_ms: Type.Integer({ minimum: 100, maximum: 120_000, default: 3000, description: 'How long a stopping plugin has to exit before its process group is killed.' }),
        installed: Type.Array(PluginEntry, { default: [], maxItems: 64, description: 'Further plugins, each described by its manifest.' }),
        inventory: Type.Object(
          {
            enabled: Type.Boolean({ default: true, description: 'Run the inventory collector, the built-in plugin named inventory: it answers the server\'s query tasks and runs the scheduled queries below.' }),
            queries: Type.Array(InventoryQuery, {
              default: DEFAULT_INVENTORY_QUERIES,
              maxItems: 256,
              description: 'Scheduled queries. The first result of each is sent as snapshot rows, later ones as the rows added and removed since the run before (inventory_change events). A query over a table this agent lacks logs an error and is skipped.',
            }),
            query_timeout_s: Type.Integer({ minimum: 1, maximum: 3600, default: 60, description: 'Timeout of each scheduled query.' }),
            max_rows: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 50_000, description: 'Rows a scheduled query may return; a larger result is not reported (a warning says so).' }),
            package_findings_interval_s: Type.Integer({ minimum: 0, maximum: 604_800, default: 3600, description: 'How often installed packages are checked for malicious-looking ones (the package_findings table); each new finding is a package_finding event. 0 turns it off.' }),
            limits: limitsOverride('Overrides of plugins.limits for the collector.'),
          },
          { additionalProperties: false, default: {}, description: 'The asset inventory: SQL over the host\'s tables (docs/tables.md).' },
        ),
        logs: Type.Object(
          {
            enabled: Type.Boolean({ default: true, description: 'Run the log collector, the built-in plugin named logs: SSH logins (ssh_login) and sudo use (sudo) from the system\'s logs.' }),
            source: Type.Union([Type.Literal('auto'), Type.Literal('journal'), Type.Literal('files')], {
              default: 'auto',
              description: 'Where to read: `journal` (journald, through journalctl; each entry\'s sender is checked), `files` (the syslog files below), or `auto`: the journal when journald runs, else the files. Never both, since rsyslog often copies the journal into auth.log.',
            }),
            files: Type.Array(Type.String({ minLength: 2, maxLength: 1024, pattern: '^/' }), {
              default: ['/var/log/auth.log', '/var/log/secure'],
              maxItems: 64,
              description: 'Syslog files to follow (those that exist), across rotation: Debian and Ubuntu write sshd and sudo to auth.log, Red Hat to secure.',
            }),
            poll_ms: Type.Integer({ minimum: 50, maximum: 60_000, default: 1000, description: 'How often the files are read for new lines.' }),
            max_line_bytes: Type.Integer({ minimum: 256, maximum: 1_048_576, default: 16_384, description: 'Longer lines are cut (and counted).' }),
            limits: limitsOverride('Overrides of plugins.limits for the collector.'),
          },
          { additionalProperties: false, default: {}, description: 'The log collector: sshd and sudo messages from journald or syslog files (docs/events.md: ssh_login, sudo).' },
        ),
        honeypot: Type.Object(
          {
            enabled: Type.Boolean({ default: false, description: 'Run the honeypot mode, the built-in plugin named honeypot: decoy TCP ports, each connection to them reported (honeypot_touch). Off by default: it opens ports.' }),
            ports: Type.Array(
              Type.Object(
                {
                  port: Type.Integer({ minimum: 1, maximum: 65_535, description: 'The decoy port. Refused (HADES_ERR_HONEYPOT_PORT) when a service listens on it (is bound to it, for UDP) or it lies in the ephemeral range.' }),
                  protocol: Type.Union([Type.Literal('tcp'), Type.Literal('udp')], { default: 'tcp', description: 'tcp: each connection is a touch; udp: each datagram is (a UDP decoy never answers, and a datagram\'s source address can be forged).' }),
                  service: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{1,32}$', description: 'The service the decoy imitates, reported with each touch (telnet, redis, ...); `generic` when not named.' })),
                  banner: Type.Optional(Type.String({ maxLength: 512, description: 'Sent to each connection as it opens, as the real service would greet; TCP decoys only.' })),
                },
                { additionalProperties: false },
              ),
              { default: [], maxItems: 64, description: 'The decoys.' },
            ),
            bind: Type.String({ default: '::', minLength: 2, maxLength: 64, description: 'Address the decoys listen on; `::` takes IPv4 too where IPv6 is on.' }),
            max_bytes: Type.Integer({ minimum: 0, maximum: 6144, default: 1024, description: 'Bytes of each connection kept (sent base64 in hades.honeypot.payload); the connection is closed once they arrived.' }),
            idle_ms: Type.Integer({ minimum: 100, maximum: 30_000, default: 5000, description: 'A connection silent this long is closed (and reported); none lasts over 30 s.' }),
            max_connections: Type.Integer({ minimum: 1, maximum: 4096, default: 256, description: 'Connections open at once; more are closed at once, and still reported.' }),
            limits: limitsOverride('Overrides of plugins.limits for the honeypot.'),
          },
          { additionalProperties: false, default: {}, description: 'The honeypot mode: decoy ports that nothing legitimate connects to (docs/plugins.md, "The honeypot").' },
        ),
      },
      { additionalProperties: false, default: {}, description: 'Plugins: supervised processes that produce events.' },
    ),
    outputs: Type.Object(
      {
        stdout: Type.Object(
          {
            enabled: Type.Boolean({ default: false, description: 'Write events as NDJSON to standard output.' }),
            rate: RateLimit,
          },
          { additionalProperties: false, default: {}, description: 'NDJSON on standard output.' },
        ),
        file: Type.Object(
          {
            enabled: Type.Boolean({ default: true, description: 'Write events as NDJSON to a file (on by default, so that an agent without a server still keeps its events: with no output it would only count them).' }),
            path: Type.String({ minLength: 1, pattern: '^/', default: '/var/log/hades/events.ndjson', description: 'Path of the file; rotated files get .1, .2, ...' }),
            max_mb: Type.Integer({ minimum: 1, maximum: 1_048_576, default: 100, description: 'Size at which the file rotates.' }),
            max_files: Type.Integer({ minimum: 1, maximum: 1000, default: 5, description: 'Rotated files kept.' }),
            rate: RateLimit,
          },
          { additionalProperties: false, default: {}, description: 'Rotated NDJSON files.' },
        ),
        server: Type.Object(
          {
            enabled: Type.Boolean({ default: false, description: 'Send events to the Hades server over mutual TLS (gRPC), through the disk spool.' }),
            api: Type.String({ default: '', pattern: '^(https://.+)?$', description: 'The server\'s API (https://host:port), used once, to enroll.' }),
            token: Type.String({ default: '', maxLength: 256, description: 'One-time enrollment token (hades server token create); used only while the agent has no identity in agent.data_dir.' }),
            ca_sha256: Type.String({ default: '', pattern: '^([0-9a-fA-F:]{64,95})?$', description: 'SHA-256 of the server\'s CA certificate, printed with the token: the agent refuses to enroll with a server whose CA differs.' }),
            addresses: Type.Array(Type.String({ pattern: HOST_PORT, description: 'host:port (a name, an IPv4 address or [an IPv6 address]; port 1 to 65535).' }), { default: [], maxItems: 16, description: 'Gateway addresses (host:port) to connect to, in order of preference; empty: those the server gave at enrollment.' }),
            batch_events: Type.Integer({ minimum: 1, maximum: 20_000, default: 2000, description: 'Most events per batch.' }),
            ack_timeout_s: Type.Integer({
              minimum: 10,
              maximum: 3600,
              default: 120,
              description: 'How long the agent waits for the server to acknowledge a batch (the server stores it first) before it ends the stream (warning HADES_ERR_SERVER_ACK_TIMEOUT) and sends the batch again on a new stream, at the next gateway address (that address is then held down: no stream goes back there for 5 times this long, at least 10 minutes, doubling with each further timeout up to 30 times, at least 1 hour, until it acknowledges a batch). Well above the server\'s queueing at saturation (about 25 s in docs/perf.md): a deadline that is too short only makes a busy server receive batches twice (it drops the duplicates).',
            }),
            renew_before_days: Type.Integer({
              minimum: 0,
              maximum: 3650,
              default: 0,
              description: 'Renew the agent\'s client certificate (a new key pair, over the server stream) when it has less than this many days left; 0: when a third of its lifetime is left (about 4 months for the 1-year certificates of enrollment). Capped at half the lifetime, so that a new certificate is never due at once. A failed renewal is retried with backoff while the current certificate stays in use.',
            }),
            renew_jitter_s: Type.Integer({
              minimum: 0,
              maximum: 86_400,
              default: 300,
              description: 'After a renewal, the agent reconnects with its new certificate after a random delay up to this long (and waits as long before acting on a renewal the server asks for), so that a fleet asked at once does not reconnect at once. Until then the current connection goes on; the old certificate is refused once the new one has connected.',
            }),
            rate: RateLimit,
          },
          { additionalProperties: false, default: {}, description: 'The Hades server. Always spooled: a batch leaves the spool only once the server stored it.' },
        ),
        http: Type.Object(
          {
            enabled: Type.Boolean({ default: false, description: 'POST batches of NDJSON events to a URL (a collector such as Vector or Logstash); a 2xx answer acknowledges the batch.' }),
            url: Type.String({ pattern: '^https?://[^/?#\\s@]+(/\\S*)?$', default: 'http://127.0.0.1:8080/events', description: 'Where batches are posted. It may hold a secret (an API key in the query string): errors, and so the output\'s last_error in heartbeats and the server\'s API, name only its origin.' }),
            headers: Type.Record(Type.String({ pattern: '^[A-Za-z0-9-]+$' }), Type.String({ pattern: '^[\\t\\x20-\\x7e\\x80-\\xff]*$', description: 'A header value: one line of printable characters (Latin-1 at most).' }), { default: {}, description: 'Extra request headers (e.g. an authorization token; never logged).' }),
            batch_events: Type.Integer({ minimum: 1, maximum: 100_000, default: 2000, description: 'Most events per request.' }),
            timeout_ms: Type.Integer({ minimum: 100, maximum: 600_000, default: 10_000, description: 'A request without an answer after this long counts as failed and is retried.' }),
            rate: RateLimit,
          },
          { additionalProperties: false, default: {}, description: 'HTTP collector. Always spooled: a batch leaves the spool only once acknowledged.' },
        ),
      },
      { additionalProperties: false, default: {}, description: 'Where events go: usually the server (`server`), with a file or an HTTP collector besides or instead; with none enabled events are only counted.' },
    ),
    spool: Type.Object(
      {
        max_mb: Type.Integer({ minimum: 1, maximum: 1_048_576, default: 256, description: 'Disk spool size per spooled output; when full, the oldest events are dropped and counted.' }),
        fsync: Type.Union([Type.Literal('always'), Type.Literal('interval'), Type.Literal('never')], {
          default: 'interval',
          description: 'always: a batch counts as spooled once on disk (survives power loss); interval: data reaches the disk every fsync_interval_ms (a crash of the agent loses nothing, a power loss at most that interval); never: left to the kernel.',
        }),
        fsync_interval_ms: Type.Integer({ minimum: 10, maximum: 60_000, default: 1000, description: 'Period of fsync with fsync: interval.' }),
        write_kb_per_s: Type.Integer({ minimum: 0, maximum: 10_000_000, default: 0, description: 'Disk write rate limit of the spool in KiB/s; batches over it wait in memory (bounded) and are dropped and counted when that is full. 0 is unlimited.' }),
      },
      { additionalProperties: false, default: {}, description: 'The crash-safe disk spool in front of network outputs.' },
    ),
    metrics: Type.Object(
      {
        enabled: Type.Boolean({ default: true, description: 'Serve Prometheus metrics (/metrics) and the status (/status) over HTTP.' }),
        listen: Type.String({ pattern: '^(127\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}|\\[::1\\]|localhost):(6553[0-5]|655[0-2]\\d|65[0-4]\\d\\d|6[0-4]\\d{3}|[1-5]\\d{4}|\\d{1,4})$', default: '127.0.0.1:9479', description: 'Loopback address and port (port 0 picks a free one; the run file in agent.data_dir says which).' }),
      },
      { additionalProperties: false, default: {}, description: 'Health and metrics endpoint, on loopback only.' },
    ),
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
          description: 'Bytes of argv captured per exec; longer argv is cut and flagged as truncated (hades.process.args_truncated). The agent completes the arguments from /proc/PID/cmdline (up to 64 KiB) when the process still runs (hades.process.args_source).',
        }),
        ringbuf_mb: Type.Integer({
          minimum: 1,
          maximum: 256,
          default: 4,
          description: 'Size of the kernel ring buffer in MiB (rounded up to a power of two). 4 MiB hold about a second of a 3,000 exec/s storm; it counts twice in the resident memory of the driver (the kernel maps it twice), so plugins.limits.memory_mb must be at least twice it plus 32 (checked).',
        }),
        batch_ms: Type.Integer({
          minimum: 0,
          maximum: 1000,
          default: 50,
          description: 'Longest time the eBPF driver lets records gather after a busy wakeup, so that the agent reads them in a few large batches instead of hundreds of small ones (less than half the agent CPU in an exec storm). Shortened automatically so that the ring buffer stays at most a quarter full; 0 = read as soon as records arrive. Events are delayed by up to this much. cn_proc never waits.',
        }),
        deny_executables: Type.Array(Type.String({ minLength: 1, maxLength: 255, pattern: '^/', description: 'an absolute path' }), {
          default: [],
          maxItems: 1024,
          description:
            'Executable paths whose events are dropped in the kernel (counted as filtered), with those of the children they fork. A blind spot for whoever can run the program, with code of their own in it (LD_PRELOAD): to quiet a daemon, prefer deny_cgroups with its service\'s cgroup.',
        }),
        deny_cgroups: Type.Array(Type.String({ minLength: 1, maxLength: 4096, pattern: '^/', description: 'an absolute path' }), {
          default: [],
          maxItems: 1024,
          description: 'cgroup v2 folders (e.g. /sys/fs/cgroup/system.slice/backup.service) whose processes are not reported.',
        }),
        allow_cgroups: Type.Array(Type.String({ minLength: 1, maxLength: 4096, pattern: '^/', description: 'an absolute path' }), {
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
            // Users' own units (systemctl --user, lingering accounts), at jobs on Red Hat systems.
            '/root/.config/systemd/',
            '/home/*/.config/systemd/',
            '/root/.local/share/systemd/',
            '/home/*/.local/share/systemd/',
            '/var/spool/at/',
            // Kernel modules loaded at boot, and modprobe's install hooks (module_autoload_config_modified).
            '/usr/lib/modules-load.d/',
            '/usr/lib/modprobe.d/',
            '/run/modules-load.d/',
            '/run/modprobe.d/',
            '/etc/ld.so.preload',
            '/usr/bin/',
            '/usr/sbin/',
            '/bin/',
            '/sbin/',
            // First in PATH: a copy there under a system command's name runs instead of it.
            '/usr/local/bin/',
            '/usr/local/sbin/',
            // Programs systemd runs at shutdown and suspend, D-Bus services run as root, the hooks
            // every new git repository gets, root's git configuration (event_hook_modified,
            // systemd_unit_modified).
            '/usr/lib/systemd/system-shutdown/',
            '/usr/lib/systemd/system-sleep/',
            '/usr/share/dbus-1/system-services/',
            '/usr/share/git-core/templates/',
            '/root/.gitconfig',
            // PAM modules (pam_module_written).
            '/usr/lib/*/security/',
            '/usr/lib64/security/',
            '/tmp/',
            '/var/tmp/',
            '/dev/shm/',
            // Logs: deletions, renames and truncations (system_log_deleted, system_log_truncated);
            // appends are left out in the kernel by file_watch_quiet.
            '/var/log/',
            // Users' shell startup files (shell_profile_modified). Sixteen `*` rules at most share a
            // prefix (/home/): .ssh/, the two systemd folders above and these twelve.
            ...SHELL_STARTUP_FILES.flatMap((name) => [`/root/${name}`, `/home/*/${name}`]),
          ],
            maxItems: 256,
            description: 'Path prefixes where file_create, file_rename, file_delete, file_chmod and file_times are reported, matched in the kernel; a whole component may be `*` (/home/*/.ssh/).',
          },
        ),
        file_watch_extra: Type.Array(
          Type.String({
            minLength: 1,
            maxLength: 255,
            pattern: '^/(?:[^*]*|(?:[^*]*/)?\\*/[^*]{1,31})$',
            description: 'an absolute path prefix; one component may be *, followed by 1 to 31 more characters (e.g. /home/*/.ssh/)',
          }),
          {
            default: [],
            maxItems: 256,
            description:
              'Path prefixes watched besides file_watch: a site adds its own folders here (/opt/app/bin/, /srv/www/) and keeps the default list, which setting file_watch itself replaces whole. Together with file_watch at most ' +
              String(FILE_WATCH_MAX) +
              ' prefixes.',
          },
        ),
        file_watch_quiet: Type.Array(
          Type.String({ minLength: 1, maxLength: 255, pattern: '^/[^*]*$', description: 'an absolute path prefix, without *' }),
          {
            default: ['/var/log/'],
            maxItems: 64,
            description:
              'Prefixes (also under file_watch) where opening an existing file is reported only when the open empties it (O_TRUNC): files appended to all day, such as logs, whose creation, truncation, renaming, deletion and mode changes are still reported.',
          },
        ),
        sensitive_files: Type.Array(
          Type.String({ minLength: 2, maxLength: 4095, pattern: '^!?/', description: 'an absolute path; a component may hold `*` and `?`; a leading `!` excludes what it matches' }),
          {
            default: [
              // Password hashes (shadow_read_by_unexpected_program).
              '/etc/shadow',
              '/etc/gshadow',
              '/etc/shadow-',
              '/etc/gshadow-',
              '/etc/security/opasswd',
              '/var/backups/shadow.bak',
              '/var/backups/gshadow.bak',
              // SSH private keys of the host and of users (ssh_private_key_read_by_unexpected_program).
              '/etc/ssh/ssh_host_*_key',
              '/root/.ssh/id_*',
              '/home/*/.ssh/id_*',
              '!/root/.ssh/id_*.pub',
              '!/home/*/.ssh/id_*.pub',
            ],
            maxItems: 256,
            description:
              'Files whose opens are reported (file_open), by any process but Hades, through any path or hard link: the kernel matches the file itself (inode and device). Patterns are expanded when the agent starts, every sensitive_files_rescan_s, and about a second after a file event in their folders (when file_create, file_rename or file_delete events are collected too). Below the first wildcard, symbolic links are not followed and at most 64 files are taken per folder. What is not seen: driver/PROTOCOL.md, FILE_OPEN.',
          },
        ),
        sensitive_files_rescan_s: Type.Integer({
          minimum: 5,
          maximum: 86_400,
          default: 300,
          description: 'How often sensitive_files patterns are expanded again, in seconds, besides after file events in their folders.',
        }),
        unix_sockets: Type.Array(Type.String({ minLength: 1, maxLength: 107, pattern: '^/', description: 'an absolute path' }), {
          default: [
            '/var/run/docker.sock',
            '/run/docker.sock',
            '/run/containerd/containerd.sock',
            '/run/podman/podman.sock',
            '/var/run/crio/crio.sock',
            '/run/k3s/containerd/containerd.sock',
            '/var/snap/microk8s/common/run/containerd.sock',
          ],
          maxItems: 64,
          description: 'Unix socket path prefixes whose connects are reported (container runtimes by default), as the client spells the path or, when it spells it another way (relative, a symbolic link), as the server bound it.',
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
          description: 'dns_query events repeating the same process, name, type, resolver and (for answers) response code and addresses within this window are counted into one event (event.count); 0 sends every one.',
        }),
        memory_mb: Type.Integer({
          minimum: 32,
          maximum: 65_536,
          default: 200,
          description: 'Memory budget of the agent process (resident set). Above it for sustain_s, the agent flushes its spool and exits so that its service manager restarts it.',
        }),
        sustain_s: Type.Integer({
          minimum: 5,
          maximum: 3600,
          default: 60,
          description: 'How long the agent or a plugin may stay over a budget before it is restarted.',
        }),
        cgroup: Type.Object(
          {
            enabled: Type.Boolean({ default: true, description: 'Place the agent and each plugin in their own cgroup (v2 where mounted, v1 otherwise) with kernel-enforced limits.' }),
            name: Type.String({ pattern: '^[a-z0-9_-]{1,64}$', default: 'hades', description: 'Name of the cgroup created under the agent\'s own.' }),
            cpu_percent: Type.Number({ exclusiveMinimum: 0, maximum: 6400, default: 50, description: 'Hard CPU ceiling for the agent and all its plugins together, percent of one core.' }),
            memory_mb: Type.Integer({ minimum: 64, maximum: 1_048_576, default: 1024, description: 'Hard memory ceiling for the agent and all its plugins together.' }),
          },
          { additionalProperties: false, default: {}, description: 'Kernel-enforced ceilings, above the budgets the watchdog applies.' },
        ),
      },
      { additionalProperties: false, default: {}, description: 'Resource limits of the agent itself.' },
    ),
    process_tree: Type.Object(
      {
        max_processes: Type.Integer({
          minimum: 1024,
          maximum: 4_194_304,
          default: 65536,
          description: 'Most processes the in-memory process tree holds; past it, the least recently seen node (live or exited) is evicted.',
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
          description: 'Read rate limit for hashing, in MiB/s. Files the size of an installed shell or interpreter (possible copies, whose first exec must carry their hash) have a budget of their own at the same rate, so hashing reads at most twice this.',
        }),
      },
      { additionalProperties: false, default: {}, description: 'Hashing of executables.' },
    ),
    log: LogConfig,
  },
  { additionalProperties: false, description: 'Configuration of the Hades agent.' },
);

export type AgentConfig = Static<typeof AgentConfigSchema>;
