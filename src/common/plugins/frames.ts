/**
 * The plugin protocol's frame types (docs/plugins.md), in a module that loads nothing else: a
 * plugin process that needs only these (the log collector) stays small. ./protocol.ts re-exports
 * them with the schemas.
 */
export const PluginFrame = {
  /** plugin -> agent, JSON, always the first frame. */
  hello: 1,
  /** driver -> agent: binary kernel records (driver/PROTOCOL.md). */
  records: 2,
  /** plugin -> agent, JSON counters; periodically and in answer to STATS_REQUEST. */
  stats: 3,
  /** plugin -> agent, JSON {level, msg, code?}. */
  log: 4,
  /** plugin -> agent, JSON answer to a command: {request_id, ok, code?, msg?}. */
  ack: 5,
  /** plugin -> agent: events, one JSON object per line (NDJSON). */
  events: 6,
  /** plugin -> agent, JSON QueryResultFrame: rows of an ad-hoc query in chunks, then a final frame. */
  queryResult: 7,
  /** agent -> driver: in-kernel filters. */
  filter: 0x81,
  /** agent -> driver: hook on/off. */
  hook: 0x82,
  /** agent -> plugin, empty payload: answer with STATS. */
  statsRequest: 0x83,
  /** agent -> plugin, JSON {request_id, config}: the plugin's configuration; answer with ACK. */
  config: 0x84,
  /** agent -> plugin, JSON QueryRequest: run SQL now (plugins that answer queries: the inventory collector). */
  query: 0x85,
} as const;
