/**
 * The plugins and outputs as the heartbeat reports them to the server, which shows the last
 * heartbeat with the agent in its API (`last_heartbeat`): snake_case, like every body of that
 * API, where the agent's own status (`hades agent status`) keeps its TypeScript names. (Agents
 * before 2026-11-29 sent those names; the server shows a heartbeat as it came.)
 */
import type { ChannelStats } from '../pipeline/channels.js';
import type { PluginStatus } from '../plugins/supervisor.js';
import type { StreamStats } from '../transport/grpc-transport.js';

export function heartbeatPlugin(plugin: PluginStatus): Record<string, unknown> {
  return {
    name: plugin.name,
    ...(plugin.version === undefined ? {} : { version: plugin.version }),
    state: plugin.state,
    ...(plugin.health === undefined ? {} : { health: plugin.health }),
    ...(plugin.healthDetail === undefined ? {} : { health_detail: plugin.healthDetail }),
    ...(plugin.pid === undefined ? {} : { pid: plugin.pid }),
    restarts: plugin.restarts,
    ...(plugin.cpuPercent === undefined ? {} : { cpu_percent: plugin.cpuPercent }),
    ...(plugin.memoryRssBytes === undefined ? {} : { memory_rss_bytes: plugin.memoryRssBytes }),
    ...(plugin.openFds === undefined ? {} : { open_fds: plugin.openFds }),
    ...(plugin.stats === undefined ? {} : { stats: plugin.stats }),
    events_in: plugin.eventsIn,
    events_per_second: plugin.eventsPerSecond,
    dropped: plugin.dropped,
    budget: { cpu_percent: plugin.budget.cpuPercent, memory_bytes: plugin.budget.memoryBytes, max_open_files: plugin.budget.maxOpenFiles, events_per_second: plugin.budget.eventsPerSecond },
    ...(plugin.lastError === undefined ? {} : { last_error: plugin.lastError }),
    over_budget_restarts: plugin.overBudgetRestarts,
    unresponsive_restarts: plugin.unresponsiveRestarts,
  };
}

export function heartbeatOutput(output: ChannelStats): Record<string, unknown> {
  return {
    name: output.name,
    in: output.in,
    out: output.out,
    bytes_out: output.bytesOut,
    dropped: output.dropped,
    queued: output.queued,
    ...(output.spool === undefined
      ? {}
      : {
          spool: {
            records: output.spool.records,
            events: output.spool.events,
            bytes: output.spool.bytes,
            segments: output.spool.segments,
            corrupt_records: output.spool.corruptRecords,
            corrupt_events: output.spool.corruptEvents,
            corrupt_bytes: output.spool.corruptBytes,
            write_errors: output.spool.writeErrors,
            read_errors: output.spool.readErrors,
            cursor_resets: output.spool.cursorResets,
          },
        }),
    ...(output.backlogAtStart === undefined ? {} : { backlog_at_start: output.backlogAtStart }),
    ...(output.stream === undefined ? {} : { stream: heartbeatStream(output.stream) }),
    up: output.up,
    ...(output.lastError === undefined ? {} : { last_error: output.lastError }),
  };
}

/** An address said in the heartbeat is cut to this length: the heartbeat stays bounded (the server takes 64 KiB) whatever the configuration says. */
const MAX_ADDRESS_CHARS = 256;

/** The server output's streams: a fixed set of integers and one address, so the heartbeat stays small. */
function heartbeatStream(stream: StreamStats): Record<string, unknown> {
  return {
    opened: stream.opened,
    lost: { ...stream.lost },
    nacked: { temporary: stream.nacked.temporary, permanent: stream.nacked.permanent },
    resent: stream.resent,
    held: stream.held,
    ...(stream.address === undefined ? {} : { address: stream.address.slice(0, MAX_ADDRESS_CHARS), address_index: stream.addressIndex }),
  };
}
