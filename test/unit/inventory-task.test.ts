/**
 * Query and inventory tasks from the server: their parameters checked with coded errors, the
 * server's deadline turned into a query timeout, and the result as the server shows it (rows as
 * objects with unique names, cut again at max_bytes).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HadesError } from '../../src/common/errors.js';
import { taskResult, uniqueNames } from '../../src/agent/plugins/inventory-plugin.js';
import { parseQueryTask } from '../../src/common/tasks.js';

const refused = (kind: string, params: unknown, message: RegExp) =>
  assert.throws(
    () => parseQueryTask(kind, params),
    (e: unknown) => e instanceof HadesError && e.code === 'HADES_ERR_QUERY_PARAMS' && message.test(e.message),
  );

/** A whole query answer of these columns and rows, as the engine gives it. */
function queryAnswer(columns: { name: string; type: string | null }[], rows: unknown[][]) {
  return { ok: true as const, columns, rows, row_count: rows.length, truncated: false, tables: ['t'], warnings: [], warnings_total: 0, collect_ms: 1, sql_ms: 2, elapsed_ms: 3 };
}

describe('query tasks', () => {
  it('takes sql or a table with bounded limits and defaults', () => {
    assert.deepEqual(parseQueryTask('query', { sql: 'SELECT 1' }), { sql: 'SELECT 1', timeoutMs: 60_000, maxRows: 10_000, maxBytes: 4 * 1024 * 1024 });
    assert.deepEqual(parseQueryTask('inventory', { table: 'listening_ports', timeout_s: 5, max_rows: 7, max_bytes: 2048 }), { sql: 'SELECT * FROM "listening_ports"', timeoutMs: 5000, maxRows: 7, maxBytes: 2048 });
    refused('query', {}, /params.sql/);
    refused('query', null, /params.sql/);
    refused('query', { sql: '  ' }, /params.sql/);
    refused('query', { sql: 'x'.repeat(70_000) }, /params.sql/);
    refused('inventory', { table: 'users; DROP TABLE x' }, /params.table/);
    refused('query', { sql: 'SELECT 1', timeout_s: 601 }, /timeout_s must be an integer from 1 to 600/);
    refused('query', { sql: 'SELECT 1', max_rows: 0 }, /max_rows/);
    refused('query', { sql: 'SELECT 1', max_rows: 1.5 }, /max_rows/);
    refused('query', { sql: 'SELECT 1', max_bytes: 100 }, /max_bytes must be an integer from 1024/);
    refused('query', { sql: 'SELECT 1', max_bytes: 7 * 1024 * 1024 }, /max_bytes/);
  });

  it('answers before the server\'s deadline when it sends timeout_ms', () => {
    assert.equal(parseQueryTask('query', { sql: 'SELECT 1', timeout_ms: 60_000 }).timeoutMs, 54_000);
    assert.equal(parseQueryTask('query', { sql: 'SELECT 1', timeout_ms: 10_000 }).timeoutMs, 8000);
    assert.equal(parseQueryTask('query', { sql: 'SELECT 1', timeout_ms: 500 }).timeoutMs, 1000);
    assert.equal(parseQueryTask('query', { sql: 'SELECT 1', timeout_ms: 3_600_000 }).timeoutMs, 600_000);
    assert.equal(parseQueryTask('query', { sql: 'SELECT 1', timeout_ms: 60_000, timeout_s: 5 }).timeoutMs, 5000, 'timeout_s wins');
    refused('query', { sql: 'SELECT 1', timeout_ms: 'soon' }, /timeout_ms/);
  });

  it('gives rows as objects with unique names, cut at max_bytes', () => {
    assert.deepEqual(uniqueNames(['a', 'b', 'a', 'a']), ['a', 'b', 'a:2', 'a:3']);
    const answer = queryAnswer([{ name: 'n', type: 'INTEGER' }, { name: 'n', type: null }], Array.from({ length: 100 }, (_, i) => [i, `v${i}`]));
    const whole = taskResult(answer, 1 << 20);
    assert.deepEqual((whole['rows'] as unknown[]).slice(0, 2), [{ n: 0, 'n:2': 'v0' }, { n: 1, 'n:2': 'v1' }]);
    assert.deepEqual(whole['columns'], [{ name: 'n', type: 'INTEGER' }, { name: 'n:2', type: null }]);
    assert.equal(whole['truncated'], false);
    assert.ok(!('truncated_by' in whole));
    const cut = taskResult(answer, 500);
    assert.deepEqual([cut['truncated'], cut['truncated_by']], [true, 'bytes']);
    assert.ok(JSON.stringify(cut['rows']).length <= 500);
    assert.equal(cut['row_count'], (cut['rows'] as unknown[]).length);
  });

  it('cuts rows at max_bytes counted in UTF-8 bytes: the result always fits the gateway\'s message', () => {
    const answer = queryAnswer([{ name: 'text', type: 'TEXT' }], Array.from({ length: 100 }, () => ['€'.repeat(1000)]));
    const cut = taskResult(answer, 30_000);
    assert.equal(cut['truncated_by'], 'bytes');
    assert.ok(Buffer.byteLength(JSON.stringify(cut['rows'])) <= 30_000, `${Buffer.byteLength(JSON.stringify(cut['rows']))} bytes`);
  });
});
