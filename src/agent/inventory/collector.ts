/**
 * The inventory collector: a plugin process (docs/plugins.md) that runs SQL over the inventory
 * tables. It answers QUERY frames (the agent's `query` tasks, `hades query`) and runs the
 * scheduled queries of its configuration: the first result of each is sent as `snapshot` rows,
 * later results as the rows `added` and `removed` since the run before (compared by content), all
 * as `inventory_change` events. One query runs at a time; ad-hoc queries go before scheduled ones.
 */
import path from 'node:path';
import { HadesError } from '../../common/errors.js';
import { FRAME_MAX_PAYLOAD } from '../../common/codec/frames.js';
import { PluginFrame, type QueryRequest, type QueryResultFrame, type QueryWarning } from '../../common/plugins/protocol.js';
import { InventoryEngine, jsonBytes, type QueryResult, type Value } from './engine.js';
import { FileHashCache } from './context.js';
import { HASH_CACHE_FILES, HashCacheFile } from '../hash-cache-file.js';
import type { TableSpec } from './table.js';
import { readConfig } from '../plugins/plugin-main.js';
import { memoryNow } from '../../runtime/memory.js';

export interface ScheduledQuery {
  readonly name: string;
  readonly sql: string;
  readonly interval_s: number;
}

/** The configuration the agent sends in CONFIG (plugins.inventory, plus what the agent knows). */
export interface CollectorConfig {
  readonly queries: readonly ScheduledQuery[];
  readonly query_timeout_s: number;
  readonly max_rows: number;
  /** How often package_findings runs, each new row a package_finding event; 0: never. */
  readonly package_findings_interval_s: number;
  /** The agent's event rate limit for this plugin; the collector paces itself below it. 0 is none. */
  readonly events_per_s: number;
  /** Another root than / (tests, a mounted image). */
  readonly root?: string;
  readonly proc?: string;
  readonly max_file_mb?: number;
  /**
   * The agent's data folder: the collector keeps its executable hashes there across restarts
   * and reads the agent's (../hash-cache-file.ts). None when absent.
   */
  readonly hash_cache_dir?: string;
}

export interface CollectorIo {
  /** Writes one frame; resolves when the pipe has taken it. */
  send(type: number, payload: Uint8Array): Promise<void>;
}

export interface CollectorStats {
  scheduled_runs: number;
  scheduled_failed: number;
  adhoc_runs: number;
  adhoc_failed: number;
  events_sent: number;
  queue: number;
}

const MAX_ADHOC_WAITING = 8;
/** Row chunks stay well under the frame limit. */
const CHUNK_BYTES = 512 * 1024;
const WARNINGS_IN_RESULT = 100;
const STAGGER_MS = 500;

interface AdhocJob {
  readonly request: QueryRequest;
  readonly received: number;
}

/** The query behind package_finding events (src/agent/inventory/tables/findings.ts). */
export const FINDINGS_QUERY: ScheduledQuery = { name: 'package_findings', sql: 'SELECT name, version, ecosystem, path, finding, similar_to, distance FROM package_findings', interval_s: 3600 };

interface ScheduleState {
  readonly query: ScheduledQuery;
  /** changes: inventory_change events (snapshot, added, removed); findings: a package_finding event per new row. */
  readonly mode: 'changes' | 'findings';
  timer?: NodeJS.Timeout;
  /** Row key (JSON of the values) to its count and row, from the last successful run. */
  previous?: Map<string, { count: number; row: Record<string, Value> }>;
  /** Warnings and errors already logged, so that each is logged once, not every run. */
  readonly logged: Set<string>;
  /** Since when the query has returned more than max_rows (its changes unreported), until a run returns fewer. */
  overSince?: string;
}

function validConfig(raw: unknown): CollectorConfig | string {
  if (!raw || typeof raw !== 'object') return 'config must be an object';
  const c = raw as Record<string, unknown>;
  const queries = c['queries'] ?? [];
  if (!Array.isArray(queries)) return 'queries must be a list';
  const names = new Set<string>();
  for (const [i, q] of queries.entries()) {
    const query = q as Record<string, unknown> | null;
    if (!query || typeof query['name'] !== 'string' || typeof query['sql'] !== 'string' || typeof query['interval_s'] !== 'number' || !(query['interval_s'] > 0)) {
      return `queries[${i}] must have a name, sql and a positive interval_s`;
    }
    if (names.has(query['name'])) return `queries[${i}]: the name ${query['name']} is used twice`;
    names.add(query['name']);
  }
  const num = (key: string, fallback: number) => (typeof c[key] === 'number' && (c[key]) >= 0 ? (c[key]) : fallback);
  return {
    queries: queries as ScheduledQuery[],
    query_timeout_s: num('query_timeout_s', 60) || 60,
    max_rows: num('max_rows', 50_000) || 50_000,
    package_findings_interval_s: num('package_findings_interval_s', 0),
    events_per_s: num('events_per_s', 5000),
    ...(typeof c['root'] === 'string' ? { root: c['root'] } : {}),
    ...(typeof c['proc'] === 'string' ? { proc: c['proc'] } : {}),
    ...(typeof c['max_file_mb'] === 'number' ? { max_file_mb: c['max_file_mb'] } : {}),
    ...(typeof c['hash_cache_dir'] === 'string' && path.isAbsolute(c['hash_cache_dir']) ? { hash_cache_dir: c['hash_cache_dir'] } : {}),
  };
}

export class Collector {
  private config: CollectorConfig | undefined;
  private engine: InventoryEngine | undefined;
  private readonly hashes = new FileHashCache();
  private hashFile: HashCacheFile | undefined;
  private readonly adhoc: AdhocJob[] = [];
  private readonly due: ScheduleState[] = [];
  private readonly schedules = new Map<string, ScheduleState>();
  private running = false;
  private stopped = false;
  private readonly encoder = new TextEncoder();
  private tokens = 0;
  private tokensAt = Date.now();
  readonly stats: CollectorStats = { scheduled_runs: 0, scheduled_failed: 0, adhoc_runs: 0, adhoc_failed: 0, events_sent: 0, queue: 0 };

  constructor(
    private readonly io: CollectorIo,
    private readonly tables: readonly TableSpec[],
    private readonly version: string,
  ) {}

  hello(): Promise<void> {
    return this.json(PluginFrame.hello, { protocol: 1, plugin: 'inventory', version: this.version, tables: this.tables.map((t) => t.name) });
  }

  /** A frame from the agent. */
  onFrame(type: number, payload: Uint8Array): void {
    switch (type) {
      case PluginFrame.config:
        this.onConfig(payload);
        break;
      case PluginFrame.query:
        this.onQuery(payload);
        break;
      case PluginFrame.statsRequest:
        void this.sendStats();
        break;
      default:
        break; // unknown frames are skipped (docs/plugins.md)
    }
  }

  stop(): void {
    this.stopped = true;
    for (const s of this.schedules.values()) clearTimeout(s.timer);
    this.schedules.clear();
    this.engine?.close();
    this.hashFile?.close();
  }

  private parse(payload: Uint8Array): Record<string, unknown> | undefined {
    try {
      const value = JSON.parse(Buffer.from(payload).toString('utf8')) as unknown;
      return value && typeof value === 'object' ? (value as Record<string, unknown>) : undefined;
    } catch {
      return undefined;
    }
  }

  private onConfig(payload: Uint8Array): void {
    const accepted = readConfig(this.io, payload, validConfig);
    if (!accepted) return;
    const { requestId, config } = accepted;
    // A new configuration replaces the schedule; the agent restarts the plugin for most changes anyway.
    for (const s of this.schedules.values()) clearTimeout(s.timer);
    this.schedules.clear();
    this.due.length = 0;
    this.engine?.close();
    this.config = config;
    this.engine = new InventoryEngine(this.tables, {
      ...(config.root ? { root: config.root } : {}),
      ...(config.proc ? { proc: config.proc } : {}),
      ...(config.max_file_mb ? { maxFileBytes: config.max_file_mb * 1024 * 1024 } : {}),
      hashes: this.hashes,
    });
    this.useHashFiles(config.hash_cache_dir);
    this.tokens = this.rate();
    void this.json(PluginFrame.ack, { request_id: requestId, ok: true });
    const schedule: ScheduleState[] = config.queries.map((query) => ({ query, mode: 'changes', logged: new Set() }));
    if (config.package_findings_interval_s > 0) schedule.push({ query: { ...FINDINGS_QUERY, interval_s: config.package_findings_interval_s }, mode: 'findings', logged: new Set() });
    schedule.forEach((state, i) => {
      this.schedules.set(`${state.mode}:${state.query.name}`, state);
      // Staggered, so that the first snapshot of every query does not land at once.
      state.timer = setTimeout(() => this.makeDue(state), i * STAGGER_MS);
    });
  }

  /** Loads the persisted hashes once per folder; later queries read the agent's file again when it changes. */
  private useHashFiles(dir: string | undefined): void {
    const file = dir ? path.join(dir, HASH_CACHE_FILES.inventory) : undefined;
    if (this.hashFile?.file === file) return;
    this.hashFile?.close();
    this.hashFile = undefined;
    if (!dir || !file) return;
    this.hashFile = new HashCacheFile({
      file,
      shared: [path.join(dir, HASH_CACHE_FILES.agent)],
      cache: this.hashes,
      maxEntries: this.hashes.size,
      onProblem: (msg) => this.log('warn', msg, 'HADES_ERR_HASH_CACHE_FILE'),
    });
    this.hashFile.load();
  }

  private makeDue(state: ScheduleState): void {
    if (this.stopped || this.schedules.get(`${state.mode}:${state.query.name}`) !== state) return;
    state.timer = setTimeout(() => this.makeDue(state), state.query.interval_s * 1000);
    // A query still waiting from its last turn is not queued twice.
    if (!this.due.includes(state)) this.due.push(state);
    this.pump();
  }

  private onQuery(payload: Uint8Array): void {
    const message = this.parse(payload);
    const id = typeof message?.['request_id'] === 'number' ? message['request_id'] : undefined;
    if (id === undefined) return;
    const sql = message?.['sql'];
    if (typeof sql !== 'string') {
      void this.fail(id, new HadesError('HADES_ERR_QUERY_PARAMS', 'the query has no sql'));
      return;
    }
    if (!this.engine) {
      void this.fail(id, new HadesError('HADES_ERR_QUERY_UNAVAILABLE', 'the collector has no configuration yet'));
      return;
    }
    if (this.adhoc.length >= MAX_ADHOC_WAITING) {
      void this.fail(id, new HadesError('HADES_ERR_QUERY_UNAVAILABLE', `${this.adhoc.length} queries are waiting already; try again later`));
      return;
    }
    const num = (key: string, fallback: number) => (typeof message?.[key] === 'number' && (message[key]) > 0 ? (message[key]) : fallback);
    this.adhoc.push({ request: { request_id: id, sql, timeout_ms: num('timeout_ms', 60_000), max_rows: num('max_rows', 10_000), max_bytes: num('max_bytes', 4 << 20) }, received: Date.now() });
    this.pump();
  }

  /** Runs the next job unless one is running; ad-hoc queries first. */
  private pump(): void {
    if (this.running || this.stopped) return;
    const adhoc = this.adhoc.shift();
    const scheduled = adhoc ? undefined : this.due.shift();
    this.stats.queue = this.adhoc.length + this.due.length;
    if (!adhoc && !scheduled) return;
    this.running = true;
    this.hashFile?.refresh();
    const work = adhoc ? this.runAdhoc(adhoc) : this.runScheduled(scheduled!);
    void work
      .catch((error: unknown) => this.log('error', `collector job failed: ${String(error)}`, 'HADES_ERR_INTERNAL'))
      .finally(() => {
        this.running = false;
        this.hashFile?.saveSoon();
        this.pump();
      });
  }

  private async runAdhoc(job: AdhocJob): Promise<void> {
    const { request } = job;
    this.stats.adhoc_runs++;
    const left = request.timeout_ms - (Date.now() - job.received);
    if (left <= 0) {
      this.stats.adhoc_failed++;
      await this.fail(request.request_id, new HadesError('HADES_ERR_QUERY_TIMEOUT', 'the query waited for other queries past its timeout'));
      return;
    }
    let result: QueryResult;
    try {
      result = await this.engine!.query(request.sql, { timeoutMs: left, maxRows: request.max_rows, maxBytes: request.max_bytes });
    } catch (error) {
      this.stats.adhoc_failed++;
      await this.fail(request.request_id, error);
      return;
    }
    // Rows in chunks that fit a frame (in UTF-8 bytes, as frames are sent), then the final frame.
    let chunk: unknown[][] = [];
    let bytes = 0;
    let sent = 0;
    let tooLarge = false;
    for (const row of result.rows) {
      const size = jsonBytes(row) + 1;
      // A single row over a frame cannot be sent: it is left out, and the answer is cut.
      if (size > FRAME_MAX_PAYLOAD - 1024) {
        tooLarge = true;
        continue;
      }
      if (chunk.length > 0 && bytes + size > CHUNK_BYTES) {
        await this.json(PluginFrame.queryResult, { request_id: request.request_id, done: false, rows: chunk });
        chunk = [];
        bytes = 0;
      }
      chunk.push(row);
      bytes += size;
      sent++;
    }
    if (chunk.length > 0) await this.json(PluginFrame.queryResult, { request_id: request.request_id, done: false, rows: chunk });
    const truncatedBy = result.truncatedBy ?? (tooLarge ? 'bytes' : undefined);
    const final: QueryResultFrame = {
      request_id: request.request_id,
      done: true,
      ok: true,
      columns: result.columns,
      row_count: sent,
      truncated: truncatedBy !== undefined,
      ...(truncatedBy ? { truncated_by: truncatedBy } : {}),
      tables: result.tables,
      warnings: result.warnings.slice(0, WARNINGS_IN_RESULT).map((w): QueryWarning => ({ table: w.table, code: w.code, message: w.message.slice(0, 512), ...(w.path ? { path: w.path.slice(0, 1024) } : {}) })),
      warnings_total: result.warnings.length + result.warningsDropped,
      collect_ms: result.collectMs,
      sql_ms: result.sqlMs,
    };
    await this.json(PluginFrame.queryResult, final);
  }

  private async runScheduled(state: ScheduleState): Promise<void> {
    const { query } = state;
    const config = this.config!;
    this.stats.scheduled_runs++;
    let result: QueryResult;
    try {
      result = await this.engine!.query(query.sql, { timeoutMs: config.query_timeout_s * 1000, maxRows: config.max_rows });
    } catch (error) {
      this.stats.scheduled_failed++;
      const e = error instanceof HadesError ? error : new HadesError('HADES_ERR_INTERNAL', String(error));
      this.logOnce(state, `${e.code}`, 'error', `scheduled query ${query.name} failed: ${e.message}`, e.code);
      return;
    }
    for (const w of result.warnings) this.logOnce(state, `${w.code}:${w.path ?? ''}:${w.message}`, 'warn', `scheduled query ${query.name}: ${w.table}: ${w.message}${w.path ? ` (${w.path})` : ''}`, w.code);
    if (result.truncated) {
      this.stats.scheduled_failed++;
      this.logOnce(state, 'truncated', 'warn', `scheduled query ${query.name} returned more than max_rows (${config.max_rows}) rows; its changes are not reported until it returns fewer (narrow it or raise plugins.inventory.max_rows)`, 'HADES_ERR_QUERY_FAILED');
      // Not the local log alone: a table a user can fill (units, keys, sockets of one's own) would
      // otherwise hide every change of it, the system's included, and nobody at the server would
      // know. Each run not compared is an agent_drop the server keeps.
      const now = new Date().toISOString();
      state.overSince ??= now;
      const drops = { component: 'agent', hook: `inventory ${query.name}`.slice(0, 64), reason: 'max_rows', count: 1, since: state.overSince };
      await this.sendEvents([JSON.stringify({ '@timestamp': now, event: { action: 'agent_drop' }, hades: { backend: 'inventory', drops } })]);
      return;
    }
    state.overSince = undefined;
    const current = new Map<string, { count: number; row: Record<string, Value> }>();
    for (const values of result.rows) {
      const key = JSON.stringify(values);
      const entry = current.get(key);
      if (entry) entry.count++;
      else {
        const row: Record<string, Value> = {};
        result.columns.forEach((c, i) => {
          row[c.name] = values[i] ?? null;
        });
        current.set(key, { count: 1, row });
      }
    }
    const at = new Date().toISOString();
    if (state.mode === 'findings') {
      await this.sendFindings(state, current, at);
      return;
    }
    const table = (result.tables[0] ?? query.name).slice(0, 64);
    const event = (change: 'snapshot' | 'added' | 'removed', row: Record<string, Value>) =>
      JSON.stringify({ '@timestamp': at, event: { action: 'inventory_change' }, hades: { backend: 'inventory', inventory: { table, query: query.name.slice(0, 128), change, row } } });
    const lines: string[] = [];
    const previous = state.previous;
    if (!previous) {
      for (const { count, row } of current.values()) for (let i = 0; i < count; i++) lines.push(event('snapshot', row));
    } else {
      for (const [key, { count, row }] of current) for (let i = previous.get(key)?.count ?? 0; i < count; i++) lines.push(event('added', row));
      for (const [key, { count, row }] of previous) for (let i = current.get(key)?.count ?? 0; i < count; i++) lines.push(event('removed', row));
    }
    state.previous = current;
    await this.sendEvents(lines);
  }

  /** A package_finding event for each finding not reported before (by this collector process). */
  private async sendFindings(state: ScheduleState, current: ReadonlyMap<string, { row: Record<string, Value> }>, at: string): Promise<void> {
    const reported = state.previous ?? new Map<string, { count: number; row: Record<string, Value> }>();
    const text = (value: Value | undefined, max: number) => (typeof value === 'string' && value !== '' ? value.slice(0, max) : undefined);
    const lines: string[] = [];
    for (const [key, { row }] of current) {
      if (reported.has(key)) continue;
      reported.set(key, { count: 1, row });
      const reason = row['finding'];
      const name = text(row['name'], 256);
      if (!name || (reason !== 'typosquat' && reason !== 'known_bad' && reason !== 'vulnerable')) continue;
      const version = text(row['version'], 128);
      const path = text(row['path'], 4096);
      const similar = text(row['similar_to'], 256);
      const distance = typeof row['distance'] === 'number' && row['distance'] >= 0 ? row['distance'] : undefined;
      lines.push(
        JSON.stringify({
          '@timestamp': at,
          event: { action: 'package_finding' },
          package: { name, ...(version ? { version } : {}), type: text(row['ecosystem'], 16) ?? 'python', ...(path ? { path } : {}) },
          hades: { backend: 'inventory', finding: { reason, ...(similar ? { similar_to: similar } : {}), ...(distance !== undefined ? { distance } : {}) } },
        }),
      );
    }
    state.previous = reported;
    await this.sendEvents(lines);
  }

  private rate(): number {
    const limit = this.config?.events_per_s ?? 0;
    // Below the agent's limit, so that bursts never reach it.
    return limit > 0 ? Math.max(1, Math.floor(limit * 0.8)) : Number.POSITIVE_INFINITY;
  }

  private async sendEvents(lines: readonly string[]): Promise<void> {
    const rate = this.rate();
    let batch: string[] = [];
    let bytes = 0;
    const flush = async () => {
      if (batch.length === 0) return;
      await this.take(batch.length, rate);
      await this.io.send(PluginFrame.events, this.encoder.encode(`${batch.join('\n')}\n`));
      this.stats.events_sent += batch.length;
      batch = [];
      bytes = 0;
    };
    const perBatch = Number.isFinite(rate) ? Math.max(1, Math.min(500, Math.floor(rate / 4))) : 500;
    for (const line of lines) {
      const size = Buffer.byteLength(line) + 1;
      if (size > FRAME_MAX_PAYLOAD - 1024) {
        this.log('warn', 'an inventory row is too large for one event frame; skipped', 'HADES_ERR_INVENTORY_SKIPPED');
        continue;
      }
      if (batch.length >= perBatch || bytes + size > CHUNK_BYTES) await flush();
      batch.push(line);
      bytes += size;
    }
    await flush();
  }

  /** Waits until `n` events fit under the pace. */
  private async take(n: number, rate: number): Promise<void> {
    if (!Number.isFinite(rate)) return;
    for (;;) {
      const now = Date.now();
      this.tokens = Math.min(rate, this.tokens + ((now - this.tokensAt) / 1000) * rate);
      this.tokensAt = now;
      if (this.tokens >= Math.min(n, rate)) {
        this.tokens -= n;
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(1000, Math.ceil(((n - this.tokens) / rate) * 1000))));
    }
  }

  private logOnce(state: ScheduleState, key: string, level: 'warn' | 'error', msg: string, code: string): void {
    if (state.logged.has(key)) return;
    if (state.logged.size >= 1000) state.logged.clear();
    state.logged.add(key);
    this.log(level, msg, code);
  }

  private log(level: 'error' | 'warn' | 'info' | 'debug', msg: string, code?: string): void {
    void this.json(PluginFrame.log, { level, msg: msg.slice(0, 1024), ...(code ? { code } : {}) });
  }

  private fail(requestId: number, error: unknown): Promise<void> {
    const e = error instanceof HadesError ? error : new HadesError('HADES_ERR_INTERNAL', error instanceof Error ? error.message : String(error));
    const frame: QueryResultFrame = { request_id: requestId, done: true, ok: false, code: e.code, message: e.message.slice(0, 4096), ...(e.details ? { details: e.details } : {}) };
    return this.json(PluginFrame.queryResult, frame);
  }

  private sendStats(): Promise<void> {
    const memory = memoryNow();
    return this.json(PluginFrame.stats, { ...this.stats, hashes: { ...(this.engine?.hashStats ?? this.hashes.stats) }, ...(this.hashFile ? { hash_file: { ...this.hashFile.stats } } : {}), rss_bytes: memory.rss, heap_used_bytes: memory.heapUsed, scheduled: this.schedules.size });
  }

  private json(type: number, value: unknown): Promise<void> {
    return this.io.send(type, this.encoder.encode(JSON.stringify(value)));
  }
}
