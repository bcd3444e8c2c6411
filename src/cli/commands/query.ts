/**
 * `hades query "SQL"`: SQL over this host's inventory tables. The query runs in a collector
 * process of its own (the same program the agent runs as its inventory plugin, spoken to with the
 * same frames), so that a query stuck in one SQLite step past its timeout is ended by killing that
 * process, and the command still exits with a coded error. Rows go to standard output as an
 * aligned table for a person or NDJSON with --json; warnings go to standard error.
 */
import { existsSync, statSync } from 'node:fs';
import { HadesError, isErrorCode } from '../../common/errors.js';
import { PluginFrame } from '../../common/plugins/protocol.js';
import { QueryClient, type QueryAnswer } from '../../agent/inventory/query-client.js';
import { collectorArgs, uniqueNames } from '../../agent/plugins/inventory-plugin.js';
import { PluginProcess } from '../../agent/plugins/plugin-process.js';
import { treeUsage } from '../../agent/plugins/usage.js';
import { version, type CliContext } from '../context.js';
import { shown } from '../terminal.js';

const MAX_TIMEOUT_S = 3600;
const MAX_ROWS = 1_000_000;
const MAX_BYTES = 256 * 1024 * 1024;
/** Widest cell of the table output; --json prints values whole. */
const CELL_WIDTH = 80;
const WARNINGS_SHOWN = 20;

function parseTimeout(value: unknown): number {
  if (value === undefined) return 60;
  const seconds = Number(value);
  if (typeof value !== 'string' || !Number.isFinite(seconds) || seconds <= 0 || seconds > MAX_TIMEOUT_S) {
    throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', `--timeout must be a number of seconds above 0, at most ${MAX_TIMEOUT_S} (got ${JSON.stringify(value)})`);
  }
  return seconds;
}

async function listTables(context: CliContext, json: boolean): Promise<number> {
  const { allTables } = await import('../../agent/inventory/tables/index.js');
  if (json) {
    for (const t of allTables) context.stdout.write(`${JSON.stringify({ name: t.name, description: t.description, columns: t.columns, examples: t.examples })}\n`);
    return 0;
  }
  const width = Math.max(...allTables.map((t) => t.name.length));
  for (const t of allTables) context.stdout.write(`${t.name.padEnd(width)}  ${t.columns.map((c) => c.name).join(', ')}\n`);
  context.stderr.write(`${allTables.length} tables; docs/tables.md describes each column, and --tables --json prints the specs\n`);
  return 0;
}

/** How often the collector's memory is read against --max-memory. */
const MEMORY_CHECK_MS = 250;

/**
 * Runs one query in a fresh collector process. It runs outside the agent's cgroups and watchdog,
 * and one SQLite step (a recursive CTE, a sort of a cross join) can take hundreds of MB a second
 * without a chance to stop it: above `maxMemoryBytes` of resident memory it is killed.
 */
async function runInCollector(context: CliContext, sql: string, timeoutS: number, root: string | undefined, maxMemoryBytes: number): Promise<QueryAnswer | 'cancelled'> {
  const collector = new PluginProcess(
    { name: 'inventory', binary: process.execPath, args: collectorArgs(version), graceMs: 500, maxFailedStarts: 1 },
    {
      onFrame: (type, payload) => {
        if (type === PluginFrame.queryResult) client.onFrame(payload);
      },
      onLog: (entry) => {
        if (entry['level'] === 'error' || entry['level'] === 'warn') context.stderr.write(`hades: collector: ${shown(String(entry['msg']))}\n`);
      },
      onExit: (reason) => client.failAll('HADES_ERR_QUERY_UNAVAILABLE', `the collector stopped (${reason})`),
    },
  );
  const client: QueryClient = new QueryClient({
    send: (type, payload) => {
      collector.send(type, payload);
      return collector.state === 'running';
    },
    graceMs: 1000,
    onHung: () => void collector.stop(),
  });
  await collector.start();
  const stopOnSignal = () => void collector.stop();
  context.signal.addEventListener('abort', stopOnSignal, { once: true });
  let overMemory: number | undefined;
  const memoryCheck = setInterval(() => {
    const pid = collector.pid;
    const rss = pid === undefined ? undefined : treeUsage(pid)?.rssBytes;
    if (rss === undefined || rss <= maxMemoryBytes || overMemory !== undefined) return;
    overMemory = rss;
    client.failAll('HADES_ERR_QUERY_MEMORY', `the query took ${Math.round(rss / MB)} MB of memory, over --max-memory ${Math.round(maxMemoryBytes / MB)} MB; it was stopped`);
    void collector.stop();
  }, MEMORY_CHECK_MS);
  try {
    const ack = await collector.command(PluginFrame.config, (id) => new TextEncoder().encode(JSON.stringify({ request_id: id, config: { queries: [], query_timeout_s: Math.ceil(timeoutS), max_rows: MAX_ROWS, events_per_s: 0, ...(root ? { root } : {}) } })));
    if (!ack.ok) throw new HadesError('HADES_ERR_INTERNAL', `the collector refused its configuration: ${ack.msg ?? ack.code ?? ''}`);
    const answer = await client.query({ sql, timeout_ms: Math.round(timeoutS * 1000), max_rows: MAX_ROWS, max_bytes: MAX_BYTES });
    return context.signal.aborted ? 'cancelled' : answer;
  } finally {
    clearInterval(memoryCheck);
    context.signal.removeEventListener('abort', stopOnSignal);
    await collector.stop();
  }
}

const MB = 1024 * 1024;

/** --max-memory MB: a whole number from 128 (the collector alone holds about 70) to 1,048,576. */
function parseMaxMemory(value: unknown): number {
  const text = typeof value === 'string' ? value : '1024';
  const mb = /^\d{1,7}$/.test(text) ? Number(text) : NaN;
  if (!(mb >= 128 && mb <= 1_048_576)) throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', `--max-memory must be a number of MB from 128 to 1048576 (got ${JSON.stringify(text)})`);
  return mb * MB;
}

/** A value in one table cell: NULL as empty, control characters escaped, long values cut. */
function cell(value: unknown): { text: string; cut: boolean } {
  if (value === null || value === undefined) return { text: '', cut: false };
  const text = shown(typeof value === 'string' ? value : JSON.stringify(value));
  return text.length > CELL_WIDTH ? { text: `${text.slice(0, CELL_WIDTH - 1)}…`, cut: true } : { text, cut: false };
}

function printTable(context: CliContext, answer: Extract<QueryAnswer, { ok: true }>): boolean {
  const header = answer.columns.map((c) => shown(c.name));
  let cut = false;
  const cells = answer.rows.map((row) =>
    header.map((_, i) => {
      const c = cell(row[i]);
      cut ||= c.cut;
      return c.text;
    }),
  );
  // Not Math.max(...cells): spread into arguments, some 100,000 rows overflowed the stack.
  const widths = header.map((h, i) => cells.reduce((width, r) => Math.max(width, r[i]!.length), h.length));
  const numeric = answer.columns.map((c, i) => c.type === 'INTEGER' || c.type === 'REAL' || (cells.length > 0 && answer.rows.every((r) => typeof r[i] === 'number' || r[i] === null)));
  const line = (values: readonly string[], pad = true) =>
    values
      .map((v, i) => (numeric[i] && pad ? v.padStart(widths[i]!) : i === values.length - 1 ? v : v.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const out: string[] = [line(header.map((h, i) => (numeric[i] ? h.padStart(widths[i]!) : h)), false), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const row of cells) out.push(line(row));
  context.stdout.write(`${out.join('\n')}\n`);
  return cut;
}

/** `hades query`: SQL over the inventory tables of this host. */
export async function query(context: CliContext, args: readonly string[], options: Readonly<Record<string, unknown>>): Promise<number> {
  const json = options['json'] === true;
  if (options['tables'] === true) {
    if (args[0] !== undefined) throw new HadesError('HADES_ERR_CLI_TOO_MANY_ARGUMENTS', '--tables takes no SQL');
    return listTables(context, json);
  }
  const sql = args[0];
  if (sql === undefined || sql.trim() === '') throw new HadesError('HADES_ERR_CLI_MISSING_ARGUMENT', 'give one SQL statement, e.g. hades query "SELECT * FROM listening_ports"; hades query --tables lists the tables');
  const timeoutS = parseTimeout(options['timeout']);
  const maxMemoryBytes = parseMaxMemory(options['maxMemory']);
  const root = typeof options['root'] === 'string' ? options['root'] : undefined;
  // A root that is not a folder would give empty tables, which look like a host with nothing on it.
  if (root !== undefined && !statSync(root, { throwIfNoEntry: false })?.isDirectory()) throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', `--root must be a folder holding a system's files (got '${root}', which ${existsSync(root) ? 'is not a folder' : 'does not exist'})`);
  if (process.getuid?.() !== 0 && !root) context.stderr.write('hades: not running as root: some tables will miss what only root can read (warnings below say what)\n');
  const answer = await runInCollector(context, sql, timeoutS, root, maxMemoryBytes);
  if (answer === 'cancelled') return 130;
  if (!answer.ok) {
    const code = isErrorCode(answer.code) ? answer.code : 'HADES_ERR_INTERNAL';
    throw new HadesError(code, answer.message, answer.details ? { details: answer.details } : {});
  }
  for (const w of answer.warnings.slice(0, WARNINGS_SHOWN)) context.stderr.write(`hades: warning: ${shown(`${w.code}: ${w.table}: ${w.message}${w.path ? ` (${w.path})` : ''}`)}\n`);
  if (answer.warnings_total > WARNINGS_SHOWN) context.stderr.write(`hades: ... and ${answer.warnings_total - WARNINGS_SHOWN} more warning(s)\n`);
  if (json) {
    // A name the statement repeats (p.name, parent.name) gets :2, :3, ... as in query tasks:
    // one key per column, none overwritten.
    const names = uniqueNames(answer.columns.map((c) => c.name));
    for (const row of answer.rows) {
      const object: Record<string, unknown> = {};
      names.forEach((n, i) => {
        object[n] = row[i] ?? null;
      });
      context.stdout.write(`${JSON.stringify(object)}\n`);
    }
  } else {
    const cut = printTable(context, answer);
    const seconds = (answer.elapsed_ms / 1000).toFixed(2);
    context.stderr.write(`(${answer.row_count} row${answer.row_count === 1 ? '' : 's'}, ${seconds} s)${cut ? ' long values are shortened; --json prints them whole' : ''}\n`);
  }
  if (answer.truncated) context.stderr.write(`hades: the result was cut at ${answer.truncated_by === 'bytes' ? `${MAX_BYTES} bytes, or a row over 1 MiB was left out` : `${MAX_ROWS} rows`}; narrow the query\n`);
  return 0;
}
