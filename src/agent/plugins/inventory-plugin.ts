/**
 * The agent's side of its built-in inventory collector (src/agent/inventory/collector.ts): the
 * collector runs as a supervised plugin process, started with the agent's own Node binary, so
 * SQLite and the tables never load into the agent (whose idle memory target is 80 MB). Its events
 * go through the usual plugin path; `query` and `inventory` tasks from the server become QUERY
 * frames, answered with bounded rows or a coded error.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AgentConfig } from '../../common/config/index.js';
import type { QueryTask } from '../../common/tasks.js';
import { PluginFrame } from '../../common/plugins/protocol.js';
import { QueryClient, type QueryAnswer } from '../inventory/query-client.js';
import { EventPlugin, type EventPluginOptions } from './event-plugin.js';
import type { LoadedManifest } from './manifest.js';

export const INVENTORY_PLUGIN = 'inventory';

/** The collector's entry point, next to this file in dist/. */
export const collectorMain = (): string => fileURLToPath(new URL('../inventory/collector-main.js', import.meta.url));

/**
 * V8 flags of the collector process. A query spends its time in system calls (/proc, files),
 * and the code around them runs some thousands of times per query: optimising it at V8's usual
 * threshold cost more CPU (compiler threads count too) than it saved, about 0.2 CPU-s in a new
 * collector's first full snapshot (docs/perf.md). With a 16 times larger interrupt budget only
 * code that stays hot (a long edit-distance loop, a large file's parser) is optimised.
 */
export const COLLECTOR_NODE_FLAGS: readonly string[] = ['--interrupt-budget=1081344'];

/** Node's arguments for a collector process (the agent's, `hades query`'s, the benchmark's). */
export const collectorArgs = (version: string): string[] => [...COLLECTOR_NODE_FLAGS, collectorMain(), version];

/** The manifest of the built-in collector: the agent's Node running the agent's own module. */
export function inventoryManifest(version: string): LoadedManifest {
  return {
    name: INVENTORY_PLUGIN,
    version,
    protocol: 1,
    executable: process.execPath,
    args: collectorArgs(version),
    // Not checked for a built-in (EventPlugin's `builtin`): there is no file to pin.
    sha256: '0'.repeat(64),
    description: 'Built-in inventory collector: SQL over the host\'s tables, scheduled queries with differences.',
    events: ['inventory_change', 'package_finding', 'agent_drop'],
    file: '(built-in)',
    binary: process.execPath,
  };
}

export type InventoryPluginOptions = Omit<EventPluginOptions, 'manifest' | 'config' | 'builtin' | 'onFrame' | 'onExit'> & {
  readonly settings: AgentConfig['plugins']['inventory'];
  readonly version: string;
  /** The agent's data folder, where the collector keeps and shares executable hashes (hash-cache-file.ts). */
  readonly dataDir?: string;
};

export class InventoryPlugin {
  readonly plugin: EventPlugin;
  private readonly client: QueryClient;
  /** Queries waiting for the collector to be running; ended at stop. */
  private readonly waits = new Set<{ readonly timer: NodeJS.Timeout; readonly resolve: () => void }>();
  private stopping = false;

  constructor(options: InventoryPluginOptions) {
    const { settings, version, dataDir, ...rest } = options;
    this.client = new QueryClient({
      send: (type, payload) => {
        if (this.plugin.process.state !== 'running') return false;
        this.plugin.process.send(type, payload);
        return true;
      },
      graceMs: 5000,
      // A collector stuck in one SQLite step cannot answer anything: start a fresh one. The
      // query's doing, not the collector's: however often it happens, the collector is not given up.
      onHung: (reason) => {
        this.plugin.process.excuseExit();
        this.plugin.process.restart(`query timeout: ${reason}`, true);
      },
    });
    this.plugin = new EventPlugin({
      ...rest,
      manifest: inventoryManifest(version),
      builtin: true,
      config: {
        queries: settings.queries,
        query_timeout_s: settings.query_timeout_s,
        max_rows: settings.max_rows,
        package_findings_interval_s: settings.package_findings_interval_s,
        events_per_s: options.eventsPerSecond,
        ...(dataDir ? { hash_cache_dir: path.resolve(dataDir) } : {}),
      },
      onFrame: (type, payload) => {
        if (type === PluginFrame.queryResult) this.client.onFrame(payload);
      },
      onExit: (reason) => {
        // Killed while it ran the agent's queries (over its memory, most likely because of one):
        // not a collector that cannot run.
        if (this.client.waiting > 0) this.plugin.process.excuseExit();
        this.client.failAll('HADES_ERR_QUERY_UNAVAILABLE', `the inventory collector stopped (${reason}) before answering`);
      },
    });
  }

  start(): Promise<void> {
    return this.plugin.start();
  }

  stop(): Promise<void> {
    this.stopping = true;
    for (const wait of this.waits) {
      clearTimeout(wait.timer);
      wait.resolve();
    }
    this.waits.clear();
    this.client.failAll('HADES_ERR_QUERY_UNAVAILABLE', 'the inventory collector is stopping');
    return this.plugin.stop();
  }

  /**
   * Runs a query in the collector; never rejects. Rows are arrays in the order of `columns`. A
   * collector that is starting or restarting (the agent's start, a restart by the watchdog) is
   * waited for within the query's time: a task the server sends as soon as the agent connects
   * must not fail only because the collector was not up yet.
   */
  async query(task: QueryTask): Promise<QueryAnswer> {
    const started = performance.now();
    const state = await this.running(task.timeoutMs);
    if (state !== 'running') return { ok: false, code: 'HADES_ERR_QUERY_UNAVAILABLE', message: `the inventory collector is not running (${state})` };
    const left = Math.max(1000, Math.round(task.timeoutMs - (performance.now() - started)));
    return this.client.query({ sql: task.sql, timeout_ms: left, max_rows: task.maxRows, max_bytes: task.maxBytes });
  }

  /** The collector's state once it is running, or once it cannot be in time (stopped, failed, too slow). */
  private async running(withinMs: number): Promise<string> {
    const deadline = performance.now() + withinMs;
    for (;;) {
      const { state } = this.plugin.process;
      if (state === 'running' || (state !== 'starting' && state !== 'backoff') || this.stopping) return state;
      const left = deadline - performance.now();
      if (left <= 0) return state;
      await new Promise<void>((resolve) => {
        const wait = { timer: setTimeout(() => (this.waits.delete(wait), resolve()), Math.min(STATE_POLL_MS, left)), resolve };
        this.waits.add(wait);
      });
    }
  }
}

/** How often a query waiting for its collector looks at its state. */
const STATE_POLL_MS = 50;

/** Column names made unique for row objects: a repeated name gets `:2`, `:3`, ... */
export function uniqueNames(names: readonly string[]): string[] {
  const seen = new Map<string, number>();
  return names.map((name) => {
    const n = (seen.get(name) ?? 0) + 1;
    seen.set(name, n);
    return n === 1 ? name : `${name}:${n}`;
  });
}

/**
 * The result of a query task: rows as objects keyed by column name (what the server shows per
 * host), cut again at `maxBytes` of JSON (UTF-8 bytes, as it travels) since objects repeat the names.
 */
export function taskResult(answer: Extract<QueryAnswer, { ok: true }>, maxBytes: number): Record<string, unknown> {
  const names = uniqueNames(answer.columns.map((c) => c.name));
  const rows: Record<string, unknown>[] = [];
  let bytes = 2;
  let truncatedBy = answer.truncated_by;
  for (const values of answer.rows) {
    const row: Record<string, unknown> = {};
    names.forEach((name, i) => {
      row[name] = values[i] ?? null;
    });
    const size = Buffer.byteLength(JSON.stringify(row)) + 1;
    if (bytes + size > maxBytes) {
      truncatedBy = 'bytes';
      break;
    }
    bytes += size;
    rows.push(row);
  }
  return {
    columns: answer.columns.map((c, i) => ({ name: names[i], type: c.type })),
    rows,
    row_count: rows.length,
    truncated: truncatedBy !== undefined,
    ...(truncatedBy ? { truncated_by: truncatedBy } : {}),
    tables: answer.tables,
    warnings: answer.warnings,
    warnings_total: answer.warnings_total,
    collect_ms: answer.collect_ms,
    sql_ms: answer.sql_ms,
    elapsed_ms: answer.elapsed_ms,
  };
}
