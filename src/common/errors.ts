/**
 * Every error Hades reports carries a stable code from this catalogue.
 *
 * Kinds are kept apart because they call for different responses:
 * - `input`: the user gave us something wrong (a command, a config file, a rule, a request);
 *   the message says what and where, and retrying without a change will fail again.
 * - `environment`: the host or a dependency is not as needed (missing privilege, a file
 *   that cannot be read, a kernel feature that is absent); fixing the machine fixes it.
 * - `bug`: Hades broke an invariant of its own; report it.
 *
 * docs/errors.md is generated from this table and a test fails when they disagree, so a code
 * cannot ship undocumented.
 */

export type ErrorKind = 'input' | 'environment' | 'bug';

export interface ErrorSpec {
  readonly kind: ErrorKind;
  /** One sentence: what happened. */
  readonly summary: string;
  /** One sentence: what the person seeing it should do. */
  readonly remedy: string;
}

export const errorCatalog = {
  // Command line
  HADES_ERR_CLI_UNKNOWN_COMMAND: {
    kind: 'input',
    summary: 'The command or subcommand is not one hades knows.',
    remedy: 'Run `hades --help` (or `hades COMMAND --help`) for the list; the message suggests the closest name.',
  },
  HADES_ERR_CLI_UNKNOWN_OPTION: {
    kind: 'input',
    summary: 'A flag was given that the command does not take.',
    remedy: 'Check the spelling against `hades COMMAND --help`.',
  },
  HADES_ERR_CLI_MISSING_ARGUMENT: {
    kind: 'input',
    summary: 'A required argument or an option value is missing.',
    remedy: 'See `hades COMMAND --help` for the expected arguments.',
  },
  HADES_ERR_CLI_TOO_MANY_ARGUMENTS: {
    kind: 'input',
    summary: 'More positional arguments were given than the command takes.',
    remedy: 'Quote arguments that contain spaces; see `hades COMMAND --help`.',
  },
  HADES_ERR_CLI_INVALID_ARGUMENT: {
    kind: 'input',
    summary: 'An argument or option value is not one the command accepts.',
    remedy: 'The message lists the accepted values.',
  },
  HADES_ERR_NOT_YET_AVAILABLE: {
    kind: 'input',
    summary: 'The command is planned but not yet available in this version of Hades.',
    remedy: 'Use a later version; `hades --help` marks every command that is not yet available.',
  },
  // Configuration
  HADES_ERR_CONFIG_READ: {
    kind: 'environment',
    summary: 'The configuration file could not be read.',
    remedy: 'Check that the path exists and is readable by the user running hades.',
  },
  HADES_ERR_CONFIG_NOT_A_FILE: {
    kind: 'input',
    summary: 'The configuration path names a folder or a device, not a file.',
    remedy: 'Give the path of the YAML file itself.',
  },
  HADES_ERR_CONFIG_TOO_LARGE: {
    kind: 'input',
    summary: 'The configuration file is larger than the 1 MiB a configuration may be.',
    remedy: 'Point hades at the configuration file itself, not at a data file.',
  },
  HADES_ERR_CONFIG_EMPTY: {
    kind: 'input',
    summary: 'The configuration file is empty (no bytes, or only white space): what an interrupted write or a full disk leaves. Taken as every default, it would move the data folder and listening addresses elsewhere (a new CA, a new store), so it is refused.',
    remedy: 'Restore the file; for every default on purpose, write it with `hades config defaults --role ROLE`, or a comment line (`# defaults`).',
  },
  HADES_ERR_CONFIG_SYNTAX: {
    kind: 'input',
    summary: 'The configuration file is not valid YAML, or not UTF-8 text (the message gives the line and column).',
    remedy: 'Fix the YAML at the position shown (save the file as UTF-8); duplicate keys count as syntax errors.',
  },
  HADES_ERR_CONFIG_UNKNOWN_KEY: {
    kind: 'input',
    summary: 'The configuration has a key the schema does not define (often a misspelling).',
    remedy: 'Remove the key or use the suggested name; `hades config schema` lists every key.',
  },
  HADES_ERR_CONFIG_TYPE: {
    kind: 'input',
    summary: 'A configuration value has the wrong type (the message gives the line and column).',
    remedy: 'Use the type the schema gives for the key; `hades config schema` shows it.',
  },
  HADES_ERR_CONFIG_VALUE: {
    kind: 'input',
    summary: 'A configuration value has the right type but is outside what the key allows.',
    remedy: 'Use one of the allowed values or a number within the stated range.',
  },
  HADES_ERR_CONFIG_MISSING_KEY: {
    kind: 'input',
    summary: 'A key the configuration requires is absent.',
    remedy: 'Add the key; `hades config defaults` prints a complete configuration.',
  },
  HADES_ERR_CONFIG_INVALID: {
    kind: 'input',
    summary: 'The configuration has one or more problems, each listed with its own code.',
    remedy: 'Fix every listed problem; nothing is started with an invalid configuration.',
  },
  // Events
  HADES_ERR_EVENT_UNKNOWN_ACTION: {
    kind: 'input',
    summary: 'An event has an `event.action` that the event schema does not define.',
    remedy: 'See docs/events.md for the actions Hades knows.',
  },
  HADES_ERR_EVENTS_READ: {
    kind: 'environment',
    summary: 'The events file given to `hades rules match` could not be opened or read.',
    remedy: 'Check the path and that the user running hades can read it; - reads standard input.',
  },
  HADES_ERR_EVENT_INVALID: {
    kind: 'input',
    summary: 'An event does not match the schema of its action, or its JSON is larger than the 4 MiB an event may be (the server refuses it, and the agent counts it as server_rejected_events).',
    remedy: 'The message lists each field that is missing, mistyped or unknown, or the size of the event; see docs/events.md.',
  },
  // Plugin and driver streams
  HADES_ERR_FRAME_TOO_LARGE: {
    kind: 'input',
    summary: 'A frame on a plugin pipe announced a payload larger than the 1 MiB limit; the stream is treated as corrupt.',
    remedy: 'The plugin is stopped and restarted; if it repeats, the plugin is broken or not a Hades plugin.',
  },
  HADES_ERR_FRAME_MALFORMED: {
    kind: 'input',
    summary: 'A frame or record from a plugin or the driver could not be decoded (bad length, unknown version, bad JSON; a STATS, ACK or LOG frame that is no JSON object).',
    remedy: 'The record is counted and skipped (a plugin\'s malformed frames are logged, the first ten and then one in a thousand); if it repeats, check that the driver, the plugin and the agent come from matching versions.',
  },
  HADES_ERR_DRIVER_NOT_FOUND: {
    kind: 'environment',
    summary: 'The kernel driver binary is missing or not executable.',
    remedy: 'Build it with `make -C driver` (the bootstrap of `npm start` does).',
  },
  HADES_ERR_DRIVER_FAILED: {
    kind: 'environment',
    summary: 'The kernel driver could not start or could not load any event source (eBPF or cn_proc).',
    remedy: 'Run as root; the message carries the driver\'s own reason (for example missing BPF support or CAP_NET_ADMIN).',
  },
  HADES_ERR_DRIVER_PROTOCOL: {
    kind: 'environment',
    summary: 'The driver speaks a protocol version this agent does not understand.',
    remedy: 'Rebuild the driver from the same source as the agent.',
  },
  // Agent daemon: plugins, spool, outputs, limits, logs
  HADES_ERR_PLUGIN_MANIFEST: {
    kind: 'input',
    summary: 'A plugin manifest is missing, is not valid JSON or does not match the manifest schema.',
    remedy: 'Fix the manifest at the path shown; docs/plugins.md describes every key.',
  },
  HADES_ERR_PLUGIN_HASH_MISMATCH: {
    kind: 'environment',
    summary: 'A plugin executable does not have the SHA-256 its manifest names; it is not started.',
    remedy: 'Reinstall the plugin, or update the manifest if the executable was changed on purpose.',
  },
  HADES_ERR_PLUGIN_UNSAFE_PATH: {
    kind: 'environment',
    summary: 'A plugin manifest or executable, or a folder above it, could be changed by someone other than root (or the agent\'s own user): owned by another user, or writable by everyone or by a group other than root\'s. The agent runs plugins as itself, so it does not start this one.',
    remedy: 'Install the plugin where only root can write: chown root and chmod go-w the files and every folder above them (a world-writable folder with the sticky bit, such as /tmp, is accepted).',
  },
  HADES_ERR_PLUGIN_START: {
    kind: 'environment',
    summary: 'A plugin could not be started, or failed every restart the supervisor tried.',
    remedy: 'The message carries the plugin\'s last words on stderr; fix their cause and reload the agent.',
  },
  HADES_ERR_PLUGIN_PROTOCOL: {
    kind: 'input',
    summary: 'A plugin broke the plugin protocol (garbage or oversized frames, no HELLO, a wrong protocol version, an invalid event); it is stopped.',
    remedy: 'Fix the plugin against docs/plugins.md; the supervisor restarts it with backoff.',
  },
  HADES_ERR_PLUGIN_UNRESPONSIVE: {
    kind: 'environment',
    summary: 'A plugin stopped answering health requests and was restarted.',
    remedy: 'Look at the plugin\'s logs; a plugin stuck in a loop or blocked on I/O shows this.',
  },
  HADES_ERR_PLUGIN_LEFTOVERS: {
    kind: 'environment',
    summary: 'Warning: processes a plugin started, and that left its process group (setsid, a double fork), were still in its cgroup when it exited; they were killed (SIGKILL), so that nothing it started outlives it.',
    remedy: 'A plugin should stop what it starts; check the plugin named. Without cgroups (docs/plugins.md) such processes are not found.',
  },
  HADES_ERR_PLUGIN_OVER_BUDGET: {
    kind: 'environment',
    summary: 'A plugin used more CPU, memory or open files than its budget for a sustained period and was restarted.',
    remedy: 'Raise the plugin\'s limits in the agent configuration if the load is legitimate; otherwise report the plugin.',
  },
  HADES_ERR_AGENT_OVER_BUDGET: {
    kind: 'environment',
    summary: 'The agent itself stayed above its memory budget and exits so that its service manager restarts it.',
    remedy: 'Raise limits.memory_mb if the host\'s load needs it; the spool keeps events across the restart.',
  },
  HADES_ERR_AGENT_RUNNING: {
    kind: 'environment',
    summary: 'Another agent already runs with the same data folder.',
    remedy: 'Stop the other agent, or give this one its own agent.data_dir.',
  },
  HADES_ERR_LOCAL_AGENT_EXITED: {
    kind: 'environment',
    summary: 'The local agent of `hades start` exited on its own with an error a restart would not mend (a configuration it refuses, another agent holding its folder); hades start stopped the server with it. An agent that asks to be restarted (its kernel driver lost) or is killed is started again after a backoff (1 s, doubling to 30 s), the server staying up.',
    remedy: 'Read the agent\'s log (agent/agent.log in the data folder) for its own error, such as HADES_ERR_AGENT_RUNNING when an agent of an earlier start still runs, fix it and start again.',
  },
  HADES_ERR_AGENT_NOT_RUNNING: {
    kind: 'environment',
    summary: 'No running agent was found for the data folder of this configuration.',
    remedy: 'Start the agent (`hades agent` or its systemd unit), or point --config at the configuration it runs with.',
  },
  HADES_ERR_AGENT_STATUS_UNAVAILABLE: {
    kind: 'environment',
    summary: 'The agent runs, but its status cannot be read: its status endpoint is off (metrics.enabled is false), does not listen now, or did not answer.',
    remedy: 'Turn metrics on in the agent\'s configuration (loopback only by default) and reload it (SIGHUP), or free the address the message names; its logs and heartbeats still say how it is.',
  },
  HADES_ERR_SPOOL_IO: {
    kind: 'environment',
    summary: 'The disk spool could not be written or read (disk full, permissions, I/O error).',
    remedy: 'Check the spool folder\'s disk and permissions; events that could not be spooled are counted as dropped.',
  },
  HADES_ERR_EVENTS_DROPPED: {
    kind: 'environment',
    summary: 'The agent dropped events in the last 10 s: one log line lists by where and why (spool/server spool_full: the server was out of reach long enough to fill the spool; kernel ringbuf full, agent queue, output), with the same counts the agent_drop events carry to the outputs.',
    remedy: 'For spool_full, bring the server back or give the spool more room (outputs.server.spool.max_mb) for the outages to ride out; for kernel and queue drops, see docs/perf.md and the limits; `hades agent status` shows the totals.',
  },
  HADES_ERR_SPOOL_CORRUPT: {
    kind: 'environment',
    summary: 'Part of the disk spool failed its checksum (a torn write after a crash, or damage); the damaged records are skipped, counted (spool_corrupt_records) and logged with this code.',
    remedy: 'Nothing to do after a crash; if it repeats without crashes, check the disk.',
  },
  HADES_ERR_OUTPUT_FAILED: {
    kind: 'environment',
    summary: 'An output could not deliver a batch (unreachable, refused, timed out); the batch stays in the spool and is retried.',
    remedy: 'Check that the output\'s destination is up and reachable; delivery resumes by itself.',
  },
  HADES_ERR_OUTPUT_REFUSED: {
    kind: 'environment',
    summary: 'An output\'s receiver refused a batch as one it will never take (an HTTP collector\'s 400, 413, 415 or 422): sent again it would block every later batch, so its events are dropped, counted (output_refused) and logged with this code.',
    remedy: 'Read the collector\'s log for why it refused the batch (its size limit, its format); raise the limit or lower the output\'s batch size.',
  },
  HADES_ERR_CGROUP: {
    kind: 'environment',
    summary: 'The agent could not create or configure its cgroup, so kernel-enforced CPU and memory limits are not in place.',
    remedy: 'Run as root with cgroup v2 (or v1 cpu and memory controllers) mounted, or turn limits.cgroup.enabled off.',
  },
  HADES_ERR_LOG_IO: {
    kind: 'environment',
    summary: 'The agent\'s log file could not be written or rotated; logs go to stderr meanwhile.',
    remedy: 'Check the log folder\'s disk space and permissions.',
  },
  HADES_ERR_METRICS_LISTEN: {
    kind: 'environment',
    summary: 'The metrics endpoint could not listen on its address (in use, or not a loopback address).',
    remedy: 'Choose a free loopback port in metrics.listen, or turn metrics off. At start the agent does not start; at a reload the rest of the configuration applies and the address is tried again every 10 s.',
  },
  // Server: store, PKI, fleet, API
  HADES_ERR_RENEW_REQUEST_INVALID: {
    kind: 'input',
    summary: 'A certificate renewal request on an agent stream is malformed: not a PKCS#10 request, a signature that does not verify, a weak key, or the key of the certificate in use.',
    remedy: 'The agent makes a new key pair and asks again later; if it repeats, check that agent and server versions match.',
  },
  HADES_ERR_RENEW_IDENTITY: {
    kind: 'input',
    summary: 'A certificate renewal request names another agent than the one its stream is authenticated as; no certificate is issued.',
    remedy: 'An agent renews only its own certificate; unless agent and server versions differ, treat the host as suspect and revoke the agent.',
  },
  HADES_ERR_RENEW_FAILED: {
    kind: 'environment',
    summary: 'The agent could not renew its client certificate (the stream was lost, the server did not answer or refused, or the new key and certificate could not be stored); it keeps using its current certificate.',
    remedy: 'Renewal is retried with backoff and the log gives the cause; if the certificate expires first, enroll the agent again with a fresh token.',
  },
  HADES_ERR_STORE_OPEN: {
    kind: 'environment',
    summary: 'The server\'s database could not be opened or created, or the file at its path is not a SQLite database (damaged, or another file).',
    remedy: 'Check the data folder\'s disk space and permissions; the message names the file. A file that is not a database: move it aside, or restore it from a backup.',
  },
  HADES_ERR_STORE_LOST: {
    kind: 'environment',
    summary: 'A file of the server\'s database (hades.db, its -wal or -shm) was removed, moved or replaced while the server ran, or just before it stopped. SQLite writes to the file it holds open, so what the server stored from then on would have been lost at its next stop: the server copies what it holds back to the path (files put in its place are moved aside as hades.db.replaced-TIME), and restarts its parts on it, writing back the CA and certificate files if they are gone too. Agents send again what was not acknowledged; nothing acknowledged is lost.',
    remedy: 'Find out who or what removed the file (a cleanup job, a person, an intruder erasing evidence). A copy that fails (the file system lacks the room: the lost file keeps its own until the server stops) is tried again every 10 s while agents keep their events; free space in the data folder. To restore a backup, stop the server first.',
  },
  HADES_ERR_AGENT_CLOCK: {
    kind: 'environment',
    summary: 'Warning: an agent\'s clock is more than 5 minutes from the server\'s (from its heartbeat\'s time; said once an hour per agent, with the offset; `hades agents list` shows every agent\'s). Its events carry its clock\'s time in @timestamp, by which searches and the rules\' time windows go: events of a host whose clock was set back are outside a search of the last hour. The store keeps and deletes events by the server\'s clock, so none is lost.',
    remedy: 'Set the host\'s clock right (NTP) and find out why it was off: a clock set back by hand is also a way to hide events from the last hour\'s searches (the rule system_clock_set reports date and hwclock run to set it). Search that host with a wider window meanwhile.',
  },
  HADES_ERR_AGENT_DUPLICATE: {
    kind: 'environment',
    summary: 'One agent identity connects from more than one place: its stream was replaced by a new one of the same identity again and again (5 times in a minute, from more than one address; said at most every ten minutes, with the addresses). Two hosts share the identity (a cloned disk image or a copied data folder): each ends the other\'s stream, and the events of both arrive under one agent.',
    remedy: 'On the hosts named, give each its own identity: stop the agent, remove the identity folder from its data folder, and enroll it with a token of its own (hades server token create).',
  },
  HADES_ERR_DATABASE: {
    kind: 'environment',
    summary: 'The server\'s database could not be read or written: its disk is full, an I/O error, a damaged file, a lock held too long by another process. Said by the API (503), to agents and in the log; nothing about the request is wrong.',
    remedy: 'The message says which (SQLite\'s words): free space on the disk of the data folder (the server keeps store.min_free_mb free from then on), restore a damaged file from a backup, or stop the process holding the lock (a backup tool, an sqlite3 shell).',
  },
  HADES_ERR_STORE_WRITE: {
    kind: 'environment',
    summary: 'Events could not be written to the store (disk full, database locked too long, I/O error); the batch is not acknowledged and the agent sends it again.',
    remedy: 'Check the data folder\'s disk; delivery resumes by itself once the store can write.',
  },
  HADES_ERR_INGEST_WORKER: {
    kind: 'environment',
    summary: 'The server\'s ingest worker (the thread that checks batches and runs the rules) stopped or could not start; the batches it held are not acknowledged and the agents send them again.',
    remedy: 'The server restarts the worker by itself and logs why it stopped (often memory: see the server\'s resident memory); report it if it keeps happening.',
  },
  HADES_ERR_STORE_QUERY: {
    kind: 'input',
    summary: 'An event search could not be run: an unknown field, a filter on an object or on a map rather than one of its keys, a malformed filter, a value the field can never hold, a malformed time range (an `until` before `since`), or a bad page cursor.',
    remedy: 'The message names the part of the query at fault; see the API\'s OpenAPI document (GET /api/v1/openapi.json) for the accepted forms.',
  },
  HADES_ERR_PKI: {
    kind: 'environment',
    summary: 'A certificate authority or certificate could not be created, read or used: the server\'s own (its data folder), or, at enrollment, the CA a server answered with (not a certificate, or not the one the token names).',
    remedy: 'On the server, check the data folder (files readable by the server only; the message names the file). At enrollment, check that the address is the Hades server the token came from.',
  },
  HADES_ERR_CA_FILE_INVALID: {
    kind: 'environment',
    summary: 'A CA file in the server\'s data folder (`pki/ca.pem`, `ca.key`, the new CA of a rotation `ca-next.pem` and `ca-next.key`, or the retired CAs `ca-retired.pem`) is missing its pair, does not parse, is not a CA, or does not match its key; the server does not start.',
    remedy: 'Restore the files named in the message from a backup of the data folder; never replace a CA that enrolled agents hold certificates of with a new one by hand (`hades server ca rotate` does it without losing them).',
  },
  HADES_ERR_CA_ROTATION_IN_PROGRESS: {
    kind: 'input',
    summary: 'A CA rotation was asked while one is in progress: a new CA exists beside the old one and the old one is not retired yet.',
    remedy: 'Watch the fleet move with `hades server ca status`, then `hades server ca retire-old`; a second rotation can start after that.',
  },
  HADES_ERR_CA_NOTHING_TO_RETIRE: {
    kind: 'input',
    summary: 'Retiring the old CA was asked, but no rotation is in progress: the server has one CA.',
    remedy: 'Start a rotation first with `hades server ca rotate`; `hades server ca status` shows the CAs.',
  },
  HADES_ERR_CA_AGENTS_REMAIN: {
    kind: 'input',
    summary: 'The old CA is not retired: enrolled agents (not revoked) still hold a certificate it issued, and would be refused once it is.',
    remedy: 'Wait until `hades server ca status` shows none left (connected agents renew within their renew_jitter_s; offline ones when they next connect), or retire with `--force` and enroll the agents left behind again.',
  },
  HADES_ERR_CA_RETIRED: {
    kind: 'input',
    summary: 'An agent connected with a certificate issued by a CA the server has retired (`hades server ca retire-old`, forced while the agent was still on it): it is refused.',
    remedy: 'Enroll the agent again: stop it, move the `identity` folder out of its data folder (`agent.data_dir`) and start it with a fresh token (`hades server token create`) in `outputs.server.token`.',
  },
  HADES_ERR_SERVER_CA_UNTRUSTED: {
    kind: 'environment',
    summary: 'The agent does not trust the certificate the server presented: it is issued by a CA the agent does not know, most often because the server\'s CA was rotated and the old one retired while this agent was offline.',
    remedy: 'If the server\'s CA was rotated (`hades server ca status` on the server), enroll the agent again: stop it, move the `identity` folder out of its data folder and start it with a fresh token; otherwise check that the address is the Hades server this agent enrolled with.',
  },
  HADES_ERR_ENROLL_TOKEN_INVALID: {
    kind: 'input',
    summary: 'The enrollment token is unknown or malformed.',
    remedy: 'Create a new one with `hades server token create` and use it exactly as printed.',
  },
  HADES_ERR_ENROLL_TOKEN_EXPIRED: {
    kind: 'input',
    summary: 'The enrollment token has expired.',
    remedy: 'Create a new one with `hades server token create --ttl DURATION`.',
  },
  HADES_ERR_ENROLL_TOKEN_USED: {
    kind: 'input',
    summary: 'The enrollment token was already used: each token enrolls one agent.',
    remedy: 'Create a new token for each agent.',
  },
  HADES_ERR_ENROLL_REQUEST_INVALID: {
    kind: 'input',
    summary: 'An enrollment request is malformed (bad certificate request, missing host name).',
    remedy: 'Enroll with the same version of the agent as the server.',
  },
  HADES_ERR_AGENT_UNKNOWN: {
    kind: 'input',
    summary: 'A connection presented a certificate of no enrolled agent, or of another certificate authority.',
    remedy: 'Enroll the agent again: stop it, move the `identity` folder out of its data folder (`agent.data_dir`) and start it with a fresh token in `outputs.server.token` (not used while an identity is there).',
  },
  HADES_ERR_AGENT_REVOKED: {
    kind: 'input',
    summary: 'The agent has been revoked: its connections are refused, and tasks and queries for it are refused (403) with no task made for the others asked at once.',
    remedy: 'If the host is trusted again, enroll it anew: stop its agent, move the `identity` folder out of its data folder (`agent.data_dir`) and start it with a fresh token in `outputs.server.token`; while an identity is there, the token is not used.',
  },
  HADES_ERR_STREAM_MESSAGE_INVALID: {
    kind: 'input',
    summary: 'A message on an agent stream is malformed (for example: it does not decode, fields are missing, events are not valid NDJSON, a compressed batch is not gzip, inflates to another size than it says, or comes with its lines too).',
    remedy: 'The message is refused with this code and the stream goes on; if it repeats, check that agent and server versions match.',
  },
  HADES_ERR_STREAM_MESSAGE_TOO_LARGE: {
    kind: 'input',
    summary: 'A message on an agent stream is larger than the server accepts (for example: a batch of more than 20,000 events, a compressed batch that says it inflates past 8 MiB, a hello or heartbeat over its size, a task result over 8 MiB of JSON, which fails its task), or an agent left more than 4,096 of the server\'s messages unread (its stream is ended; it reconnects). A message over 8 MiB as sent is refused by gRPC before the server reads it: the stream ends with gRPC status 8 (RESOURCE_EXHAUSTED, "Received message larger than max"), not with this code.',
    remedy: 'The agent splits its batches below the limit; for a task result, ask for fewer rows (max_rows, a narrower query); if it repeats, check that agent and server versions match and that the agent reads its stream.',
  },
  HADES_ERR_TASK_PARAMS: {
    kind: 'input',
    summary: 'A task names something the agent does not have (a plugin that is not running there).',
    remedy: 'The task\'s result lists what the agent has (its plugins); create the task again with one of them.',
  },
  HADES_ERR_TASK_BUSY: {
    kind: 'environment',
    summary: 'The agent already runs as many tasks as it takes at once (64; only query and inventory tasks run for long): the task was answered failed with this code and did not run.',
    remedy: 'Create the task again once the agent\'s running tasks have ended (they end within their timeout).',
  },
  HADES_ERR_TASK_TOO_MANY: {
    kind: 'input',
    summary: 'An agent already has as many tasks open as it may (1,024: waiting to be sent, or sent and not answered, before their deadline): no task was made, for any of the agents asked, nor the fleet query (409). An agent is sent all its open tasks at each connection, and more would pass what the server lets wait unread on its stream, which would end every connection of that agent.',
    remedy: 'Wait for the agent\'s tasks to be answered or to expire (`hades tasks list --agent ID`), give new tasks a shorter timeout_s, or leave that agent out of the request.',
  },
  HADES_ERR_TASK_NOT_DONE: {
    kind: 'environment',
    summary: '`hades tasks create --wait`: some of the tasks failed, expired before their agent took them, or were still waiting when the wait ended (their results and errors are listed above the line).',
    remedy: '`hades tasks show ID` gives each task\'s result and error code; create a failed task again once its cause is fixed, or wait longer (--timeout) for agents that are offline.',
  },
  HADES_ERR_NOT_ROOT: {
    kind: 'environment',
    summary: 'The command loads kernel programs (hades events, hades agent, hades start) and is not running as root.',
    remedy: 'Run it as root (sudo), or use the commands that only talk to a running server or agent (hades search, hades alerts, hades agent status).',
  },
  HADES_ERR_SERVER_RUNNING: {
    kind: 'environment',
    summary: 'Another server already runs with the same data folder.',
    remedy: 'Use the server that runs (its API and gateway addresses are in its log), stop it first, or give this one its own data folder (`data_dir`; `hades start --data`).',
  },
  HADES_ERR_SERVER_LISTEN: {
    kind: 'environment',
    summary: 'The server could not listen on an address of its configuration (the port is in use, or the address is not this host\'s).',
    remedy: 'Free the port or choose another (`listen.api`, `listen.agents`; `hades start --api`, `--gateway`); `ss -ltnp` shows what holds it.',
  },
  HADES_ERR_LOCAL_CREDENTIALS: {
    kind: 'environment',
    summary: 'The local deployment\'s admin token or CA (in the server\'s data folder) could not be read: missing, or readable by root only.',
    remedy: 'Start the server first, run the command as root, or pass --server and --token (or HADES_API_TOKEN) with an API token. For a deployment started with `hades start --data DIR`, pass --config DIR/server.yaml (or set HADES_SERVER_CONFIG to it).',
  },
  HADES_ERR_SERVER_UNREACHABLE: {
    kind: 'environment',
    summary: 'The server could not be reached (refused, timed out, TLS handshake failed), or what answered was not a Hades server (a proxy\'s error page, an answer without the expected content).',
    remedy: 'Check the address, that the server runs (and what sits in front of it), and that the CA the client trusts is the server\'s: for a deployment started with `hades start --data DIR`, pass --config DIR/server.yaml (or set HADES_SERVER_CONFIG to it), else --ca.',
  },
  HADES_ERR_SERVER_ACK_TIMEOUT: {
    kind: 'environment',
    summary: 'The server did not acknowledge a batch within `outputs.server.ack_timeout_s` on a live stream (its ingest stuck, or the server frozen behind something that keeps the connection up): the agent ended the stream; the batch stays in the spool and goes again on a new stream, at the next gateway address, and the agent holds that address down (no stream starts or moves back there for 5 deadlines, at least 10 minutes, growing with each further timeout, until it acknowledges a batch).',
    remedy: 'Check the server\'s log and load (a stuck ingest worker, a database lock held by another process); raise `outputs.server.ack_timeout_s` only if the server\'s queue legitimately holds batches that long.',
  },
  HADES_ERR_API_UNAUTHENTICATED: {
    kind: 'input',
    summary: 'An API request carried no token, or a malformed, unknown, revoked or expired one (401). The server logs it as a warning with the remote address and the reason (never the token), at most 10 a minute per address and reason, then a count.',
    remedy: 'Send `Authorization: Bearer TOKEN` with a token the server issued; a run of these in the server log from one address is someone guessing tokens.',
  },
  HADES_ERR_API_FORBIDDEN: {
    kind: 'input',
    summary: 'The API token\'s role does not allow this request (403). Written to the audit log (`api.denied`: the token, its role, the method and route, the remote address) and to the server log as a warning, at most 10 a minute per token, then a count.',
    remedy: 'Use a token with the role the message names (admin, analyst or read-only).',
  },
  HADES_ERR_API_INVALID_REQUEST: {
    kind: 'input',
    summary: 'An API request does not match its schema (a missing or mistyped field, a bad query parameter), its JSON body does not parse, or it asks what cannot be (an `until` before `since` in an alert search, revoking an enrollment token already used); an event search\'s own problems are HADES_ERR_STORE_QUERY.',
    remedy: 'The message lists the problems; the OpenAPI document at /api/v1/openapi.json describes every request.',
  },
  HADES_ERR_API_NOT_FOUND: {
    kind: 'input',
    summary: 'The API has no such route, or no such object (agent, task, token).',
    remedy: 'Check the path and the id; the OpenAPI document (GET /api/v1/openapi.json) lists the routes.',
  },
  HADES_ERR_API_TOO_LARGE: {
    kind: 'input',
    summary: 'The request\'s body is larger than the API takes (1 MiB; 413).',
    remedy: 'Send less at once: a group configuration, for one, is at most 1 MiB of YAML.',
  },
  HADES_ERR_API_LAST_ADMIN: {
    kind: 'input',
    summary: 'The request would revoke the last admin API token, which would leave nobody able to manage the server (409).',
    remedy: 'Create another admin token first (POST /api/v1/tokens/api with role admin), then revoke this one.',
  },
  HADES_ERR_ALERT_CHANGED: {
    kind: 'input',
    summary: 'A triage (PATCH /api/v1/alerts/ID) sent If-Match with a revision the alert no longer has: someone triaged it since it was read; nothing was changed (412).',
    remedy: 'Read the alert again (its ETag, or `revision` in its JSON; `details` of the error give the current state), decide again, and send the triage with the new revision.',
  },
  HADES_ERR_ALERT_TOO_MANY_COMMENTS: {
    kind: 'input',
    summary: 'An alert already has the most comments one alert takes (500); the comment was not added (409).',
    remedy: 'Say it in fewer comments; for a long account of an investigation, write it elsewhere (a ticket) and comment with its link.',
  },
  HADES_ERR_API_METHOD_NOT_ALLOWED: {
    kind: 'input',
    summary: 'The API has this path, but not with this HTTP method; the answer (405) lists the methods it takes in its Allow header.',
    remedy: 'Use one of the methods the Allow header and the OpenAPI document (GET /api/v1/openapi.json) give for the path.',
  },
  HADES_ERR_API_UNSUPPORTED_MEDIA_TYPE: {
    kind: 'input',
    summary: 'An API request has a body that is not JSON (its Content-Type is not application/json); the answer is 415.',
    remedy: 'Send the body as JSON with `Content-Type: application/json`.',
  },
  HADES_ERR_CMDB: {
    kind: 'input',
    summary: 'The CMDB file could not be read (missing, unreadable, a folder, larger than 64 MiB) or parsed (a broken CSV or JSON, text that is not UTF-8, a row without a name or address, an address that is not an IP address, a control character in a name or address, two different rows for one host), or holds no host (empty, a header alone, [], a file caught while being rewritten in place); host metadata stays as it was. As a warning: values whose control characters were replaced by spaces.',
    remedy: 'Fix the file (CSV with a header row, or a JSON array of objects; docs/architecture.md, CMDB) where the message says; it is read again when it changes. Write a new CMDB to another name and rename it into place. To run without one, take cmdb.file out of the configuration.',
  },
  // Rules
  HADES_ERR_RULE_TOO_LARGE: {
    kind: 'input',
    summary: 'A rule file is larger than the 8 MiB a rule file may be; it is not read, and the other files load.',
    remedy: 'Split the rules into several files, or check that the path names a rule file.',
  },
  HADES_ERR_RULE_TOO_COMPLEX: {
    kind: 'input',
    summary: 'A condition is too large or too deep once its macros are expanded (macros that use each other several times grow exponentially); the rule is not loaded.',
    remedy: 'Simplify the macros the message names, or use a list (`in`) instead of chains of or.',
  },
  HADES_ERR_RULE_YAML: {
    kind: 'input',
    summary: 'A rule file is not valid YAML, or not UTF-8 text (the message gives the line and column); none of its rules is loaded.',
    remedy: 'Fix the YAML at the position shown (duplicate keys count as YAML errors, an alias needs its anchor before it), or save the file as UTF-8.',
  },
  HADES_ERR_RULE_INVALID: {
    kind: 'input',
    summary: 'A rule, macro, list or override does not match the rule file schema (an unknown, missing or mistyped key).',
    remedy: 'Fix the key at the position shown; docs/rules.md describes every key.',
  },
  HADES_ERR_RULE_SYNTAX: {
    kind: 'input',
    summary: 'A condition or an output template cannot be parsed (the message gives the line and column).',
    remedy: 'Fix the expression at the position shown; docs/rules.md gives the grammar.',
  },
  HADES_ERR_RULE_UNKNOWN_FIELD: {
    kind: 'input',
    summary: 'A condition, exception, output or grouping names a field that no event has.',
    remedy: 'Use the suggested field, or one listed in docs/events.md (plus the ancestor.* fields of docs/rules.md).',
  },
  HADES_ERR_RULE_BAD_OPERATOR: {
    kind: 'input',
    summary: 'A condition uses an operator the rule language does not have.',
    remedy: 'Use the suggested operator; docs/rules.md lists them all.',
  },
  HADES_ERR_RULE_TYPE_MISMATCH: {
    kind: 'input',
    summary: 'An operator does not apply to the type of its field or value (for example `<` on a string field or `contains` on a number).',
    remedy: 'Use an operator that fits the field type given in docs/events.md, or a value of the right type.',
  },
  HADES_ERR_RULE_BAD_VALUE: {
    kind: 'input',
    summary: 'A value in a rule is not valid for its use (a malformed address range, regular expression or duration, or a value the field never takes).',
    remedy: 'Fix the value at the position shown; the message says what is expected.',
  },
  HADES_ERR_RULE_REGEX_TOO_EXPENSIVE: {
    kind: 'input',
    summary: 'A regular expression needs backtracking (back-references, look-around) or compiles to too large a program to run in linear time.',
    remedy: 'Rewrite it without back-references or look-around, or split it into simpler conditions.',
  },
  HADES_ERR_RULE_UNKNOWN_MACRO: {
    kind: 'input',
    summary: 'A condition refers to a macro that no loaded rule file defines.',
    remedy: 'Define the macro, load the file that defines it, or use the suggested name.',
  },
  HADES_ERR_RULE_UNKNOWN_LIST: {
    kind: 'input',
    summary: 'A condition refers to a list that no loaded rule file defines.',
    remedy: 'Define the list, load the file that defines it, or use the suggested name.',
  },
  HADES_ERR_RULE_UNKNOWN_RULE: {
    kind: 'input',
    summary: 'An override or a correlation step refers to a rule id that no loaded rule file defines.',
    remedy: 'Check the id against the loaded rules; the message suggests the closest one.',
  },
  HADES_ERR_RULE_CYCLE: {
    kind: 'input',
    summary: 'Macros or correlation rules refer to each other in a loop.',
    remedy: 'Break the loop; the message lists the names that form it.',
  },
  HADES_ERR_RULE_DUPLICATE_ID: {
    kind: 'input',
    summary: 'Two rules, macros or lists have the same name; the second one is not loaded (a second rule is still checked, and its own errors reported).',
    remedy: 'Rename one of them, or use `override:` to change a rule defined elsewhere.',
  },
  HADES_ERR_RULE_UNUSED_MACRO: {
    kind: 'input',
    summary: 'Warning: a macro is defined but no rule uses it.',
    remedy: 'Remove the macro, or check the spelling where it was meant to be used.',
  },
  HADES_ERR_RULE_UNUSED_LIST: {
    kind: 'input',
    summary: 'Warning: a list is defined but no rule or macro uses it.',
    remedy: 'Remove the list, or check the spelling where it was meant to be used.',
  },
  HADES_ERR_RULE_LIST_LATER: {
    kind: 'input',
    summary: 'Warning: a bare value in a parenthesised list names a list that only a later rule file defines; it stays a value (a local list does not silently rewrite the values of rules loaded before it).',
    remedy: 'Rename the list (or quote the value, to say it is one); to extend a list of an earlier file, define a new list that names it, and use that in your own rules.',
  },
  HADES_ERR_RULE_LIST_AS_VALUE: {
    kind: 'input',
    summary: 'Warning: an unquoted value after an operator that takes one value (`process.name = shells`, `contains shells`) names a list; it is compared as that text, not with the items of the list.',
    remedy: 'Write `in NAME` (`iin`, `in_cidr`) or put the name in parentheses (`contains (NAME)`) to test the items; quote the value (`= "shells"`) to mean the text.',
  },
  HADES_ERR_RULE_TOO_MANY_PROBLEMS: {
    kind: 'input',
    summary: 'The rules have more problems than are listed (the first 1,000, in file order); this last problem counts the others, errors and warnings.',
    remedy: 'Fix the problems listed and load again: the next ones show then.',
  },
  HADES_ERR_RULE_NEVER_MATCHES: {
    kind: 'input',
    summary: 'Warning: a rule\'s condition can match no event (for example `event.action = exec` together with a field only network events have).',
    remedy: 'Check the actions and fields of the condition against docs/events.md.',
  },
  // Sigma import
  HADES_ERR_SIGMA_NOT_FOUND: {
    kind: 'input',
    summary: 'The folder given to `hades rules import-sigma` does not exist or is not a folder.',
    remedy: 'Give the path of a folder of Sigma rules (.yml or .yaml files, searched recursively).',
  },
  HADES_ERR_SIGMA_READ: {
    kind: 'environment',
    summary: 'A Sigma file or folder could not be read, or a file is not UTF-8 text (the message gives the line and column); the other files are imported.',
    remedy: 'Check that the path is readable by the user running hades; save a file that is not UTF-8 as UTF-8.',
  },
  HADES_ERR_SIGMA_WRITE: {
    kind: 'environment',
    summary: 'The converted rule files could not be written to the folder given with --out.',
    remedy: 'Check that the folder can be created and written by the user running hades.',
  },
  HADES_ERR_SIGMA_TOO_LARGE: {
    kind: 'input',
    summary: 'A Sigma file is larger than the 8 MiB a rule file may be; it is not imported.',
    remedy: 'Check that the folder holds Sigma rules, or split the file.',
  },
  HADES_ERR_SIGMA_YAML: {
    kind: 'input',
    summary: 'A Sigma file is not valid YAML (the message gives the line and column); its rules are not imported.',
    remedy: 'Fix the YAML at the position shown; duplicate keys count as YAML errors.',
  },
  HADES_ERR_SIGMA_NOT_SIGMA: {
    kind: 'input',
    summary: 'A YAML document has neither `detection` nor `correlation`, so it is not a Sigma rule.',
    remedy: 'Import a folder of Sigma rules; other YAML files in it are reported and skipped.',
  },
  HADES_ERR_SIGMA_INVALID: {
    kind: 'input',
    summary: 'A Sigma rule breaks the Sigma specification (no title, a bad condition, an undefined search identifier, a value of the wrong type).',
    remedy: 'Fix the rule as the message says; the Sigma specification describes every part.',
  },
  HADES_ERR_SIGMA_STATUS: {
    kind: 'input',
    summary: 'The Sigma rule\'s (or correlation\'s) status is `unsupported`: its authors say it cannot be used as it is.',
    remedy: 'Use a maintained rule instead, or change the status once the rule has been fixed.',
  },
  HADES_ERR_SIGMA_LOGSOURCE: {
    kind: 'input',
    summary: 'The Sigma rule\'s log source (a product other than Linux, a service\'s log lines, a category) has no Hades events.',
    remedy: 'docs/sigma.md lists the categories Hades matches; rules on other log sources stay with the tool that collects them.',
  },
  HADES_ERR_SIGMA_FIELD: {
    kind: 'input',
    summary: 'The Sigma rule tests a field that Hades events of its category do not have.',
    remedy: 'docs/sigma.md lists the fields of each category; rewrite the test with one of them, or write a Hades rule.',
  },
  HADES_ERR_SIGMA_MODIFIER: {
    kind: 'input',
    summary: 'The Sigma rule uses a value modifier Hades conditions cannot express (fieldref, expand, parts of dates) or one Sigma does not define.',
    remedy: 'Rewrite the test without it; docs/sigma.md lists the modifiers supported.',
  },
  HADES_ERR_SIGMA_VALUE: {
    kind: 'input',
    summary: 'A value of the Sigma rule does not fit its field or modifier (text for a number, a comparison on text, too many windash variants).',
    remedy: 'Fix the value as the message says.',
  },
  HADES_ERR_SIGMA_KEYWORDS: {
    kind: 'input',
    summary: 'The Sigma rule searches keywords anywhere in the event; Hades events are structured and have no raw message to search.',
    remedy: 'Rewrite the keywords as tests of fields (for instance CommandLine|contains).',
  },
  HADES_ERR_SIGMA_CONDITION: {
    kind: 'input',
    summary: 'The Sigma condition uses a form Hades does not convert: an aggregation or near (Sigma 1), or an `N of` quantifier with too many combinations.',
    remedy: 'Write a Sigma correlation rule instead of an aggregation, or split the quantifier.',
  },
  HADES_ERR_SIGMA_CORRELATION: {
    kind: 'input',
    summary: 'The Sigma correlation cannot be expressed by Hades correlation rules: an upper bound (lt, lte, eq, neq), a metric type (value_sum, value_avg, value_percentile), or groups that differ between the rules counted.',
    remedy: 'docs/rules.md (Mapping Sigma correlations) lists what maps; rewrite with a lower bound (gte, gt), or as a Hades threshold or sequence.',
  },
  HADES_ERR_SIGMA_REFERENCE: {
    kind: 'input',
    summary: 'A Sigma correlation names a rule that was not imported, or one that is unsupported (its own reason follows).',
    remedy: 'Import the rules a correlation names together with it, and fix the unsupported one first.',
  },
  HADES_ERR_SIGMA_DUPLICATE: {
    kind: 'input',
    summary: 'Two Sigma rules have the same id or name; the second is not imported.',
    remedy: 'Give one of them a new id (a UUID) or name.',
  },
  HADES_ERR_SIGMA_FILTER: {
    kind: 'input',
    summary: 'A Sigma filter (a meta-rule that excludes events from other rules) is not applied on import.',
    remedy: 'Add the exclusion to the Hades rules it names with an override or an exception (docs/rules.md).',
  },
  HADES_ERR_SIGMA_TAG: {
    kind: 'input',
    summary: 'Warning: a tag of a Sigma rule is not one Hades accepts (a malformed ATT&CK tag); the rule loads without it.',
    remedy: 'Fix the tag in the Sigma rule; docs/rules.md gives the forms of ATT&CK tags.',
  },
  HADES_ERR_SIGMA_ADAPTED: {
    kind: 'input',
    summary: 'Warning: a Sigma rule loads with an adaptation the report describes (a host name matched on DNS questions, a default severity, a deprecated rule disabled).',
    remedy: 'Read the note; docs/sigma.md explains each adaptation.',
  },
  // Rule pack samples (hades rules test)
  HADES_ERR_RULE_SAMPLE_INVALID: {
    kind: 'input',
    summary: 'A rule\'s sample event is not a valid partial event: an unknown field, a value of the wrong type, or no known `event.action`.',
    remedy: 'Fix the sample at the position shown so that it looks like a real event; docs/events.md lists every field and its type.',
  },
  HADES_ERR_RULE_SAMPLE_FAILED: {
    kind: 'input',
    summary: 'A rule did not fire on one of its `match` samples, or fired on one of its `no_match` samples.',
    remedy: 'Fix the rule\'s condition or exceptions, or the sample, until `hades rules test` passes.',
  },
  HADES_ERR_RULE_SAMPLE_MISSING: {
    kind: 'input',
    summary: 'Warning: a rule has no `match` sample or no `no_match` sample, so nothing proves that it fires, or that it stays quiet.',
    remedy: 'Add `samples:` with at least one event it must match and one it must not.',
  },
  HADES_ERR_RULE_PACK_READ: {
    kind: 'input',
    summary: 'A rule file or folder could not be read (it does not exist, is not readable, is not a regular file such as a FIFO or a device, or holds no .yaml file).',
    remedy: 'Check the path given to `hades rules test` or in rules.dirs or rules.sigma_dirs (`hades config check --role server` checks that these can be read); a folder is searched for *.yaml and *.yml files, following symbolic links, each folder once.',
  },
  // Alerts and alert outputs
  HADES_ERR_ALERT_OUTPUT_CONFIG: {
    kind: 'input',
    summary: 'An alert output is configured inconsistently: its type\'s section is missing or another type\'s is present, its name is taken, its URL does not parse, a header value holds a character HTTP cannot carry, or its TLS settings are incomplete.',
    remedy: 'Fix the output at the key the message names; docs/alert-outputs.md describes every key.',
  },
  HADES_ERR_ALERT_OUTPUT_REFUSED: {
    kind: 'environment',
    summary: 'An alert output\'s receiver refused the connection, or (syslog over UDP) its host answered a datagram with ICMP port unreachable (nothing listens on its port); alerts wait in the output\'s queue and are retried with backoff.',
    remedy: 'Start the receiver or fix the host and port of the output; delivery resumes by itself.',
  },
  HADES_ERR_ALERT_OUTPUT_UNREACHABLE: {
    kind: 'environment',
    summary: 'An alert output\'s receiver could not be reached (unknown host, no route, connection reset or closed); alerts are retried with backoff.',
    remedy: 'Check the receiver\'s address, DNS and the network path from the server; delivery resumes by itself.',
  },
  HADES_ERR_ALERT_OUTPUT_TIMEOUT: {
    kind: 'environment',
    summary: 'An alert output\'s receiver did not connect or answer within timeout_ms (for syslog: the resolver did not answer, or the receiver\'s TCP acknowledged nothing more of the alerts written, and the connection is taken as dead and its unacknowledged alerts sent again on a new one); the alert is retried with backoff.',
    remedy: 'Check the receiver\'s load and the network; raise timeout_ms if the receiver is slow but working.',
  },
  HADES_ERR_ALERT_OUTPUT_BAD_STATUS: {
    kind: 'environment',
    summary: 'A webhook answered with a status other than 2xx: 5xx, 408 and 429 are retried, other statuses fail the alert at once.',
    remedy: 'The message gives the status and the start of the answer; fix the URL or the headers (4xx) or the receiver (5xx).',
  },
  HADES_ERR_ALERT_OUTPUT_TLS: {
    kind: 'environment',
    summary: 'TLS towards an alert output\'s receiver failed (its certificate is not trusted or does not name the host, the handshake failed), or a CA, certificate or key file cannot be read or used (no PEM certificate in the CA file, a certificate or key that is not PEM, a key that is not the certificate\'s): such a file is refused at start and by hades config check, at its key.',
    remedy: 'Give the CA that issued the receiver\'s certificate in tls.ca_file and connect with a name the certificate carries; for a file, the message names it and what is wrong: give readable PEM files, the key without a passphrase and matching cert_file.',
  },
  HADES_ERR_ALERT_OUTPUT_WRITE: {
    kind: 'environment',
    summary: 'The file alert output could not open, write or rotate its file (a full disk, permissions, a path that is not a regular file such as a FIFO or a device); the alert keeps its place and is retried with backoff.',
    remedy: 'Check the folder\'s disk space and permissions, and that the path names a regular file (or nothing yet).',
  },
  HADES_ERR_ALERT_OUTPUT_DROPPED: {
    kind: 'environment',
    summary: 'Alerts were dropped by an output: its queue was full (the oldest go first; one warning each time the queue starts dropping), or alerts were still queued when the server stopped.',
    remedy: 'Bring the receiver back, or raise the output\'s queue if outages are expected; the dropped count is in the output\'s counters.',
  },
  HADES_ERR_RULES_RELOAD: {
    kind: 'input',
    summary: 'The rules were loaded again but have errors, so the rules already running stay in force.',
    remedy: 'Fix the problems listed (file, line, column, code) and reload; `hades rules test FILE` checks a file first.',
  },
  // Inventory tables and SQL
  HADES_ERR_HASH_CACHE_FILE: {
    kind: 'environment',
    summary: 'Warning: a file of executable hashes in the agent\'s data folder (exec-hashes.txt, inventory-hashes.txt) could not be read or written, or had lines that did not parse; those hashes are computed again when needed.',
    remedy: 'Check the data folder (agent.data_dir): free space, permissions, and that nothing else writes these files. Deleting them is safe.',
  },
  HADES_ERR_KNOWN_PROGRAMS: {
    kind: 'environment',
    summary: 'Warning: an installed shell or interpreter could not be hashed (unreadable, larger than hashing.max_file_mb), /etc/shells could not be read, or a program folder could not be watched; copies of the programs concerned are not named on exec events (hades.process.copy_of), or only after the next periodic refresh.',
    remedy: 'The message names the file or folder. Raise hashing.max_file_mb for a large interpreter; for a folder that cannot be watched, raise fs.inotify.max_user_watches.',
  },
  HADES_ERR_INVENTORY_UNREADABLE: {
    kind: 'environment',
    summary: 'Warning: a file or folder an inventory table reads could not be read (permissions, vanished, not a file); what it would have given is missing from the table.',
    remedy: 'Run the query as root, or check the path the warning names.',
  },
  HADES_ERR_FILE_NOT_REGULAR: {
    kind: 'environment',
    summary: 'A file the agent reads as root (a program to hash, a history, an archive to inspect, a file of its own data folder) is not a regular file (a FIFO, a device, a folder), or is a link where none is followed: it is not read, and what it would have given is missing (a hash, rows; a file of its own is taken as missing or damaged).',
    remedy: 'Nothing to do for a file swapped by a user; a FIFO or a link planted where a program or a history should be is worth a look.',
  },
  HADES_ERR_FILE_TOO_LARGE: {
    kind: 'environment',
    summary: 'A file of the agent\'s or the server\'s own data folder (a run file, a kept configuration, an identity file, a state file) is larger than such a file can be; it is not read, as when it is missing or damaged.',
    remedy: 'The message names the file and its bound: something other than Hades wrote it. Move it aside; Hades writes it again.',
  },
  HADES_ERR_INVENTORY_MALFORMED: {
    kind: 'environment',
    summary: 'Warning: a line or record of a host file did not parse (an odd line, a truncated record); that row is skipped and the others are kept.',
    remedy: 'Look at the file and line the warning names; fix the file if it is damaged.',
  },
  HADES_ERR_INVENTORY_FILE_TOO_BIG: {
    kind: 'environment',
    summary: 'Warning: a file is larger than an inventory table reads whole; it is skipped (or only its end is read).',
    remedy: 'Check why the file is so large; the limit keeps the collector\'s memory bounded.',
  },
  HADES_ERR_INVENTORY_LOOP: {
    kind: 'environment',
    summary: 'Warning: a symbolic link loop, an include cycle or a walk deeper than the limit was found; the repeated part is skipped.',
    remedy: 'Look at the path the warning names; a loop planted in a system folder deserves a look.',
  },
  HADES_ERR_INVENTORY_SKIPPED: {
    kind: 'environment',
    summary: 'Warning: an inventory table skipped a row or a source for a reason other than the more specific codes.',
    remedy: 'The message says what was skipped and why.',
  },
  HADES_ERR_INVENTORY_TABLE_FAILED: {
    kind: 'bug',
    summary: 'Warning: an inventory table failed unexpectedly while collecting; it is empty for this query, the other tables are not affected.',
    remedy: 'Report it with the message; the query can be run again.',
  },
  HADES_ERR_QUERY_SYNTAX: {
    kind: 'input',
    summary: 'The SQL does not parse, or holds more than one statement.',
    remedy: 'Fix the SQL near the place the message names; run one statement at a time.',
  },
  HADES_ERR_QUERY_UNKNOWN_TABLE: {
    kind: 'input',
    summary: 'The SQL names a table that is not an inventory table.',
    remedy: 'The message suggests the closest table; `hades query --tables` and docs/tables.md list them all.',
  },
  HADES_ERR_QUERY_UNKNOWN_COLUMN: {
    kind: 'input',
    summary: 'The SQL names a column that none of its tables has.',
    remedy: 'docs/tables.md lists each table\'s columns; the message suggests the closest one.',
  },
  HADES_ERR_QUERY_NOT_READ_ONLY: {
    kind: 'input',
    summary: 'The statement is not a read (INSERT, UPDATE, DELETE, CREATE, ATTACH, transactions, or a PRAGMA other than those that describe the tables, such as table_info: SQLite applies the others as it reads them): inventory queries only read.',
    remedy: 'Use a SELECT (or WITH ... SELECT) statement.',
  },
  HADES_ERR_QUERY_TIMEOUT: {
    kind: 'input',
    summary: 'The query did not finish within its timeout; collecting its tables or running the SQL took too long.',
    remedy: 'Narrow the query (fewer tables, a WHERE clause, no large cross joins) or give it a longer timeout.',
  },
  HADES_ERR_QUERY_FAILED: {
    kind: 'input',
    summary: 'SQLite stopped the query while it ran (an error in a function call, an integer overflow, a value it cannot handle), or the result cannot be given (a value too large, column names of more than 256 KiB together).',
    remedy: 'The message carries the reason; fix the SQL accordingly (leave a large value out or take a part of it; give long expressions short names with AS).',
  },
  HADES_ERR_QUERY_MEMORY: {
    kind: 'input',
    summary: 'The query took more memory than it may (`hades query --max-memory`, 1,024 MB by default) and was stopped: one SQLite step of a recursive query or a large sort cannot be interrupted otherwise.',
    remedy: 'Narrow the query (a WHERE clause, a LIMIT inside a recursive CTE, fewer joined tables), or raise --max-memory if the host can spare it.',
  },
  HADES_ERR_QUERY_PARAMS: {
    kind: 'input',
    summary: 'A query or inventory task from the server has missing or out-of-range parameters.',
    remedy: 'Send `sql` (or `table`) and keep timeout_s, max_rows and max_bytes within the ranges docs/plugins.md gives.',
  },
  HADES_ERR_QUERY_UNAVAILABLE: {
    kind: 'environment',
    summary: 'No inventory collector can run the query: it is turned off (plugins.inventory.enabled), failed, restarting, or has too many queries waiting.',
    remedy: 'Check `hades agent status` for the inventory plugin; enable it, or retry when it is running.',
  },
  // The log collector
  HADES_ERR_LOG_SOURCE: {
    kind: 'environment',
    summary: 'The log collector cannot read a source: journalctl could not start or exited (it is started again with backoff), a followed path is not a regular file (a FIFO, a folder), or the positions could not be kept in, or read back from, the agent\'s data folder (a damaged logs-state.json: the logs are then read from their end).',
    remedy: 'Check that journalctl runs (`journalctl -n 1`) or set plugins.logs.source to files; check the data folder\'s permissions and free space.',
  },
  // The honeypot mode
  HADES_ERR_HONEYPOT_PORT: {
    kind: 'input',
    summary: 'A decoy port of the honeypot mode was not opened: a service on the host listens on it (or is bound to it, for UDP), it lies in the kernel\'s ephemeral range (net.ipv4.ip_local_port_range), or it could not be bound. The other decoys still open.',
    remedy: 'Pick a port no service uses or may need, outside the ephemeral range, in plugins.honeypot.ports; `hades agent status --json` lists the refused ports with why (plugins[].stats.refused).',
  },
  // Fleet queries
  HADES_ERR_QUERY_NO_ANSWER: {
    kind: 'environment',
    summary: 'An agent did not answer a fleet query before its deadline (it was offline, or the query ran too long).',
    remedy: 'Check the agent with `hades agents list`; run the query again with a longer timeout, or when the agent is back online.',
  },
  // Bootstrap (scripts/bootstrap.mjs)
  HADES_ERR_FD_LIMIT: {
    kind: 'environment',
    summary: 'The process ran out of file descriptors (EMFILE: its limit of open files, RLIMIT_NOFILE, is reached; ENFILE: the whole system\'s): a command started with a limit too low to load hades stops with this line, and a running agent or server logs it and goes on, while new connections are dropped and files cannot be opened until descriptors are free again.',
    remedy: 'Raise the limit: `ulimit -n 65536` in the shell that starts hades, LimitNOFILE=65536 in its systemd unit (deploy/hades-agent.service sets it), or `prlimit --pid PID --nofile=65536:65536` for a running process; for ENFILE, raise fs.file-max. Node itself cannot start under about 20.',
  },
  HADES_ERR_BOOTSTRAP_NOT_ROOT: {
    kind: 'environment',
    summary: 'The bootstrap must install system packages and is not running as root.',
    remedy: 'Run the command as root, or install the packages the message lists and run it again.',
  },
  HADES_ERR_BOOTSTRAP_NODE_VERSION: {
    kind: 'environment',
    summary: 'The Node.js version is older than Hades supports.',
    remedy: 'Install Node.js 20.19 or later.',
  },
  HADES_ERR_BOOTSTRAP_STEP_FAILED: {
    kind: 'environment',
    summary: 'A bootstrap step (apt-get, npm ci, a native or TypeScript build) failed.',
    remedy: 'The output above the message shows the failing command; fix its cause and run again.',
  },
  // Invariants
  HADES_ERR_INTERNAL: {
    kind: 'bug',
    summary: 'Hades reached a state its code holds to be impossible.',
    remedy: 'Report it with the message and the command that led to it.',
  },
} as const satisfies Record<`HADES_ERR_${string}`, ErrorSpec>;

export type ErrorCode = keyof typeof errorCatalog;

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(errorCatalog, code);
}

export interface HadesErrorOptions {
  readonly cause?: unknown;
  /** Structured context (a path, a position, a list of problems) for programs and logs. */
  readonly details?: Readonly<Record<string, unknown>>;
}

export class HadesError extends Error {
  readonly code: ErrorCode;
  readonly kind: ErrorKind;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message: string, options: HadesErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HadesError';
    this.code = code;
    this.kind = errorCatalog[code].kind;
    this.details = options.details;
  }

  /** The one-line form used by the CLI and in logs: `CODE: message`. */
  toLine(): string {
    return `${this.code}: ${this.message.replace(/\s*\n\s*/g, '; ')}`;
  }
}

export function isHadesError(value: unknown): value is HadesError {
  return value instanceof HadesError;
}

/** Wraps anything thrown into a HadesError; foreign errors are bugs until proven otherwise. */
export function toHadesError(value: unknown): HadesError {
  if (value instanceof HadesError) return value;
  const message = value instanceof Error ? value.message : String(value);
  // SQLite's own failures (a full disk, an I/O error, a damaged file, a lock held too long) are
  // the machine's, not a bug: said as such wherever they surface (the API, the gateway, the log).
  const sqlite = (value as { code?: unknown } | null)?.code;
  if (value instanceof Error && typeof sqlite === 'string' && SQLITE_ENVIRONMENT.test(sqlite)) {
    return new HadesError('HADES_ERR_DATABASE', `${message}${sqliteHint(sqlite)}`, { cause: value, details: { sqlite } });
  }
  // Out of descriptors: the machine's limit, not a bug (a module loaded late, a file, a socket).
  if (value instanceof Error && (sqlite === 'EMFILE' || sqlite === 'ENFILE')) {
    return new HadesError('HADES_ERR_FD_LIMIT', `${message} (${sqlite === 'ENFILE' ? 'the system has no file descriptors left' : 'the limit of open files of this process is reached'}: raise it with \`ulimit -n\` or LimitNOFILE in the systemd unit)`, { cause: value, details: { errno: sqlite } });
  }
  return new HadesError('HADES_ERR_INTERNAL', message, { cause: value });
}

/** What SQLite's error code says that its message does not (it says "database or disk is full" for the disk), to append to the message; '' for the others. */
export function sqliteHint(code: string): string {
  if (code === 'SQLITE_FULL') return ' (the disk holding the database has no room left; SQLite needs room even to delete: free some space on it, and the server keeps store.min_free_mb free from then on)';
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') return ' (the database file is damaged: restore it from a backup)';
  return '';
}

/** better-sqlite3's error codes that say the database's environment failed (disk, file, locks). */
const SQLITE_ENVIRONMENT = /^SQLITE_(FULL|IOERR|CORRUPT|NOTADB|BUSY|LOCKED|READONLY|CANTOPEN|PROTOCOL|NOLFS|PERM)(_|$)/;

/** Exit status of an agent asking its service manager (systemd, `hades start`) for a restart (EX_TEMPFAIL). */
export const EXIT_RESTART = 75;
