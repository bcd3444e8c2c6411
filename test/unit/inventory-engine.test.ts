/**
 * The SQL engine with tables made for the test: which tables a query collects (and only once,
 * even in a self-join), read-only refusal, coded errors with suggestions, timeouts during
 * collection and while rows are read, row and byte limits, type coercion, failing tables.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HadesError } from '../../src/common/errors.js';
import { InventoryEngine, rowObjects } from '../../src/agent/inventory/engine.js';
import { scanSql } from '../../src/agent/inventory/sql-tokens.js';
import type { CollectContext, Row, TableSpec } from '../../src/agent/inventory/table.js';

interface Counted extends TableSpec {
  calls: number;
  lastColumns: ReadonlySet<string> | undefined | 'unset';
}

function table(name: string, rows: Row[] | ((ctx: CollectContext) => Promise<Row[]>), columns: TableSpec['columns'] = [
  { name: 'id', type: 'INTEGER', description: 'Id.' },
  { name: 'label', type: 'TEXT', description: 'Label.', nullable: true },
]): Counted {
  const spec: Counted = {
    name,
    description: `${name} for tests.`,
    columns,
    examples: [{ description: 'All.', sql: `SELECT * FROM ${name}` }],
    calls: 0,
    lastColumns: 'unset',
    async generate(ctx) {
      spec.calls++;
      spec.lastColumns = ctx.columns;
      return typeof rows === 'function' ? rows(ctx) : rows;
    },
  };
  return spec;
}

const numbers = (n: number): Row[] => Array.from({ length: n }, (_, i) => ({ id: i, label: `row ${i}` }));

async function rejects(promise: Promise<unknown>, code: string, message?: RegExp): Promise<HadesError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof HadesError, String(error));
    assert.equal(error.code, code, error.message);
    if (message) assert.match(error.message, message);
    return error;
  }
  assert.fail(`expected ${code}`);
}

describe('inventory engine', () => {
  it('collects only the tables a query reads, once each, even in a self-join', async () => {
    const a = table('alpha', numbers(300));
    const b = table('beta', numbers(5));
    const engine = new InventoryEngine([a, b]);
    try {
      const result = await engine.query('SELECT count(*) AS n FROM alpha x JOIN alpha y ON x.id = y.id');
      assert.deepEqual(result.rows, [[300]]);
      assert.equal(a.calls, 1, 'a join reads the snapshot, not the table again');
      assert.equal(b.calls, 0);
      assert.deepEqual(result.tables, ['alpha']);
      assert.deepEqual(result.collected, { alpha: 300 });
      // A CTE named like a table shadows it: nothing is collected.
      await engine.query('WITH beta AS (SELECT 1 AS id) SELECT id FROM beta');
      assert.equal(b.calls, 0);
      // Subqueries and both sides of a join count.
      const both = await engine.query('SELECT (SELECT count(*) FROM beta) AS b, count(*) AS a FROM alpha WHERE id IN (SELECT id FROM beta)');
      assert.deepEqual(both.rows, [[5, 5]]);
      assert.deepEqual(both.tables.slice().sort(), ['alpha', 'beta']);
      assert.equal(a.calls, 2);
      assert.equal(b.calls, 1);
    } finally {
      engine.close();
    }
  });

  it('starts every query from fresh rows: the snapshot of one query is not seen by the next', async () => {
    let generation = 0;
    const t = table('gen', async () => [{ id: ++generation }]);
    const engine = new InventoryEngine([t]);
    try {
      assert.deepEqual((await engine.query('SELECT id FROM gen')).rows, [[1]]);
      assert.deepEqual((await engine.query('SELECT id FROM gen')).rows, [[2]]);
      // Concurrent queries run one after the other.
      const [x, y] = await Promise.all([engine.query('SELECT id FROM gen'), engine.query('SELECT count(*) FROM gen')]);
      assert.deepEqual(x.rows, [[3]]);
      assert.deepEqual(y.rows, [[1]]);
    } finally {
      engine.close();
    }
  });

  it('tells tables which columns the query reads, or none when it uses *', async () => {
    const t = table('cols', numbers(1));
    const engine = new InventoryEngine([t]);
    try {
      await engine.query('SELECT label FROM cols');
      assert.ok(t.lastColumns !== 'unset' && t.lastColumns?.has('label') && !t.lastColumns.has('id'));
      await engine.query('SELECT * FROM cols');
      assert.equal(t.lastColumns, undefined);
      await engine.query("SELECT count(*) FROM cols WHERE label = 'id'");
      assert.equal(t.lastColumns, undefined, 'count(*) reads no column, but * is conservative');
    } finally {
      engine.close();
    }
  });

  it('refuses every statement that is not a read', async () => {
    const t = table('things', numbers(3));
    const engine = new InventoryEngine([t]);
    try {
      for (const sql of [
        'INSERT INTO things VALUES (1, 2)',
        'DELETE FROM things',
        'UPDATE things SET id = 0',
        'DELETE FROM things RETURNING *',
        'DROP TABLE things',
        'CREATE TABLE x (a)',
        "ATTACH '/tmp/x.db' AS x",
        'PRAGMA query_only = 0',
        'BEGIN',
        'VACUUM',
      ]) {
        await rejects(engine.query(sql), 'HADES_ERR_QUERY_NOT_READ_ONLY', /only reads/);
      }
      assert.equal(t.calls, 0, 'nothing is collected for a refused statement');
      // Extensions stay off: a read that tries to load one fails at run time.
      await rejects(engine.query("SELECT load_extension('/tmp/nothing')"), 'HADES_ERR_QUERY_FAILED', /not authorized/);
      assert.deepEqual((await engine.query('SELECT count(*) FROM things')).rows, [[3]], 'the table is intact');
    } finally {
      engine.close();
    }
  });

  it('refuses pragmas that change settings before SQLite sees them: a refused or "read-only" pragma leaves later queries as they were', async () => {
    const t = table('things', numbers(3));
    const engine = new InventoryEngine([t]);
    try {
      // SQLite applies most pragmas while it prepares them: refusing them after prepare is too late.
      for (const sql of [
        'PRAGMA query_only = 1',
        '/* x */ pragma "query_only" = 1',
        'PRAGMA case_sensitive_like = 1',
        'PRAGMA full_column_names = 1',
        'PRAGMA temp.max_page_count = 1',
        'PRAGMA hard_heap_limit = 1000',
        'PRAGMA soft_heap_limit(1000)',
        'PRAGMA threads = 0',
        "SELECT * FROM pragma_cache_size(1)",
        'SELECT * FROM "PRAGMA_journal_mode"',
      ]) {
        await rejects(engine.query(sql), 'HADES_ERR_QUERY_NOT_READ_ONLY', /pragma/i);
        // The engine is as it was: tables are collected, LIKE ignores case, names are short.
        const after = await engine.query("SELECT label FROM things WHERE label LIKE 'ROW 1'");
        assert.deepEqual(after.rows, [['row 1']], sql);
        assert.deepEqual(after.columns.map((c) => c.name), ['label'], sql);
      }
      // Pragmas that only describe the tables stay open.
      assert.deepEqual((await engine.query('PRAGMA table_info(things)')).rows.map((r) => r[1]), ['id', 'label']);
      assert.deepEqual((await engine.query("SELECT name FROM pragma_table_info('things')")).rows, [['id'], ['label']]);
      await rejects(engine.query("PRAGMA 'query_only' = 1"), 'HADES_ERR_QUERY_NOT_READ_ONLY', /PRAGMA query_only/);
      assert.equal((await engine.query("SELECT 'pragma query_only = 1' AS x")).rows.length, 1, 'a string is no pragma');
    } finally {
      engine.close();
    }
  });

  it('collects every column for a NATURAL join, which compares columns it does not name', async () => {
    const spec = (name: string) =>
      table(name, async (ctx) => [{ id: 1, label: ctx.columns === undefined || ctx.columns.has('label') ? 'one' : null }]);
    const engine = new InventoryEngine([spec('left_side'), spec('right_side')]);
    try {
      assert.deepEqual((await engine.query('SELECT id FROM left_side NATURAL JOIN right_side')).rows, [[1]]);
      assert.deepEqual((await engine.query('SELECT l.id FROM left_side l NATURAL LEFT JOIN right_side r WHERE r.id IS NOT NULL')).rows, [[1]]);
    } finally {
      engine.close();
    }
  });

  it('gives coded errors for bad SQL, with the closest table or column', async () => {
    const engine = new InventoryEngine([table('processes', numbers(1)), table('listening_ports', numbers(1))]);
    try {
      await rejects(engine.query('SELEC * FROM processes'), 'HADES_ERR_QUERY_SYNTAX', /syntax error/);
      await rejects(engine.query('SELECT 1; SELECT 2'), 'HADES_ERR_QUERY_SYNTAX', /more than one statement/);
      await rejects(engine.query('   '), 'HADES_ERR_QUERY_SYNTAX');
      const table = await rejects(engine.query('SELECT * FROM procesess'), 'HADES_ERR_QUERY_UNKNOWN_TABLE', /did you mean processes\?/);
      assert.equal(table.details?.['suggestion'], 'processes');
      await rejects(engine.query('SELECT * FROM zzz'), 'HADES_ERR_QUERY_UNKNOWN_TABLE', /tables: processes, listening_ports/);
      const column = await rejects(engine.query('SELECT p.lable FROM processes p'), 'HADES_ERR_QUERY_UNKNOWN_COLUMN', /did you mean label\?/);
      assert.equal(column.details?.['suggestion'], 'label');
    } finally {
      engine.close();
    }
  });

  it('suggests a column of the tables the statement names, not a column of that very name in another table', async () => {
    const users = table('users', numbers(1), [
      { name: 'uid', type: 'INTEGER', description: 'Uid.' },
      { name: 'username', type: 'TEXT', description: 'Name.' },
      { name: 'home', type: 'TEXT', description: 'Home.' },
    ]);
    const engine = new InventoryEngine([users, table('processes', numbers(1), [{ name: 'name', type: 'TEXT', description: 'Name.' }])]);
    try {
      const column = await rejects(engine.query('SELECT name FROM users'), 'HADES_ERR_QUERY_UNKNOWN_COLUMN', /no such column: name; did you mean username\?/);
      assert.equal(column.details?.['suggestion'], 'username');
      await rejects(engine.query('SELECT zz FROM users'), 'HADES_ERR_QUERY_UNKNOWN_COLUMN', /no such column: zz; users: uid, username, home$/);
      await rejects(engine.query("SELECT json_extract('not json', '$.a')"), 'HADES_ERR_QUERY_FAILED', /malformed JSON/);
    } finally {
      engine.close();
    }
  });

  it('times out while collecting a slow table, without waiting for it', async () => {
    // Each collection of the table ends when its signal says the query was abandoned.
    const abandoned: Promise<void>[] = [];
    const slow = table('slow', (ctx) => {
      const seen = new Promise<void>((resolve) => ctx.signal?.addEventListener('abort', () => resolve(), { once: true }));
      abandoned.push(seen);
      return seen.then(() => []);
    });
    const engine = new InventoryEngine([slow]);
    try {
      const started = Date.now();
      await rejects(engine.query('SELECT * FROM slow', { timeoutMs: 200 }), 'HADES_ERR_QUERY_TIMEOUT', /timeout of 0\.2 s \(while collecting slow\)/);
      assert.ok(Date.now() - started < 2000);
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 100);
      await rejects(engine.query('SELECT * FROM slow', { timeoutMs: 10_000, signal: controller.signal }), 'HADES_ERR_QUERY_TIMEOUT', /cancelled/);
      // The table saw both queries abandoned (a table that never heard would hang here).
      assert.equal(abandoned.length, 2);
      await Promise.all(abandoned);
    } finally {
      engine.close();
    }
  });

  it('times out between rows of a long result', async () => {
    const engine = new InventoryEngine([]);
    try {
      const started = Date.now();
      await rejects(engine.query('WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c', { timeoutMs: 300 }), 'HADES_ERR_QUERY_TIMEOUT', /running the SQL/);
      assert.ok(Date.now() - started < 3000);
    } finally {
      engine.close();
    }
  });

  it('cuts results at the row limit and at the byte limit, and says so', async () => {
    const engine = new InventoryEngine([table('many', numbers(1000))]);
    try {
      const byRows = await engine.query('SELECT * FROM many', { maxRows: 10 });
      assert.equal(byRows.rows.length, 10);
      assert.equal(byRows.truncated, true);
      assert.equal(byRows.truncatedBy, 'rows');
      const byBytes = await engine.query('SELECT * FROM many', { maxBytes: 1000 });
      assert.equal(byBytes.truncatedBy, 'bytes');
      assert.ok(byBytes.bytes <= 1000 && byBytes.rows.length > 10 && byBytes.rows.length < 100);
      const whole = await engine.query('SELECT * FROM many WHERE id < 10', { maxRows: 10 });
      assert.equal(whole.truncated, false);
    } finally {
      engine.close();
    }
  });

  it('counts the byte limit in UTF-8 bytes, not characters: text of several bytes a character cannot pass it', async () => {
    const wide = table('euros', Array.from({ length: 100 }, (_, i) => ({ id: i, label: '€'.repeat(100) })));
    const engine = new InventoryEngine([wide]);
    try {
      const result = await engine.query('SELECT * FROM euros', { maxBytes: 3000 });
      assert.equal(result.truncatedBy, 'bytes');
      const sent = result.rows.reduce((n, row) => n + Buffer.byteLength(JSON.stringify(row)) + 1, 2);
      assert.ok(sent <= 3000, `${sent} bytes of rows for a limit of 3000`);
      assert.equal(result.bytes, sent);
      assert.ok(result.rows.length >= 5, `${result.rows.length} rows`);
    } finally {
      engine.close();
    }
  });

  it('gives integers beyond 2^53 exactly, as text, and keeps a table\'s 64-bit values', async () => {
    const big = table('big', [{ id: '9007199254740993', label: 'x' }, { id: 2n ** 63n - 1n, label: 'y' }, { id: '18446744073709551615', label: 'z' }, { id: 2n ** 64n, label: 'w' }]);
    const engine = new InventoryEngine([big]);
    try {
      const literal = await engine.query('SELECT 9007199254740993 AS a, -9223372036854775808 AS b, 42 AS c, 9007199254740991 AS d');
      assert.deepEqual(literal.rows, [['9007199254740993', '-9223372036854775808', 42, 9007199254740991]]);
      const rows = await engine.query('SELECT id, typeof(id) FROM big');
      // Past the 64 bits SQLite holds, a value is a REAL, as SQLite itself stores such text.
      assert.deepEqual(rows.rows, [['9007199254740993', 'integer'], ['9223372036854775807', 'integer'], [18446744073709552000, 'real'], [18446744073709552000, 'real']]);
    } finally {
      engine.close();
    }
  });

  it('a value too large to give (a blob of hundreds of MB) is cut at the byte limit or refused with a coded error, never a crash', async () => {
    const engine = new InventoryEngine([]);
    try {
      const cut = await engine.query('SELECT zeroblob(100000) AS b, 1 AS n', { maxBytes: 1000 });
      assert.deepEqual([cut.rows.length, cut.truncatedBy], [0, 'bytes']);
      await rejects(engine.query('SELECT zeroblob(300000000) AS b'), 'HADES_ERR_QUERY_FAILED', /too large/);
    } finally {
      engine.close();
    }
  });

  it('refuses a result whose column names pass 256 KiB with a coded error: they go with every answer and cannot be cut', async () => {
    const engine = new InventoryEngine([]);
    try {
      // 1,000 columns named by one alias of 60,000 characters: 60 MB of names from 62 KB of SQL.
      const sql = `WITH t AS (SELECT 1 AS "${'x'.repeat(60_000)}") SELECT ${Array.from({ length: 1000 }, () => '*').join(',')} FROM t`;
      await rejects(engine.query(sql), 'HADES_ERR_QUERY_FAILED', /names of the result's 1000 columns take 60002000 bytes, more than 262144: give long expressions short names \(AS\)/);
      const wide = await engine.query(`SELECT ${Array.from({ length: 2000 }, (_, i) => `${i} AS column_with_a_long_name_${i}`).join(', ')}`);
      assert.equal(wide.columns.length, 2000, 'as many columns as SQLite gives, with names of a usual length');
    } finally {
      engine.close();
    }
  });

  it('stores values with the declared types and returns plain JSON values', async () => {
    const typed = table('typed', [{ i: '42', r: '1.5', t: 7, b: true as unknown as number, n: undefined, big: 2n ** 40n }, { i: 'x', r: 'y', t: null, b: false as unknown as number, n: null, big: null }], [
      { name: 'i', type: 'INTEGER', description: 'An integer.' },
      { name: 'r', type: 'REAL', description: 'A real.' },
      { name: 't', type: 'TEXT', description: 'Text.', nullable: true },
      { name: 'b', type: 'INTEGER', description: 'A boolean.' },
      { name: 'n', type: 'TEXT', description: 'Nothing.', nullable: true },
      { name: 'big', type: 'INTEGER', description: 'A big integer.', nullable: true },
    ]);
    const engine = new InventoryEngine([typed]);
    try {
      const result = await engine.query('SELECT *, typeof(i) AS ti, x\'00ff\' AS blob FROM typed');
      assert.deepEqual(rowObjects(result), [
        { i: 42, r: 1.5, t: '7', b: 1, n: null, big: 2 ** 40, ti: 'integer', blob: '00ff' },
        { i: null, r: null, t: null, b: 0, n: null, big: null, ti: 'null', blob: '00ff' },
      ]);
      assert.deepEqual(result.columns.slice(0, 3), [
        { name: 'i', type: 'INTEGER' },
        { name: 'r', type: 'REAL' },
        { name: 't', type: 'TEXT' },
      ]);
      assert.equal(result.columns.find((c) => c.name === 'ti')?.type, null);
    } finally {
      engine.close();
    }
  });

  it('keeps going when a table fails: that table is empty, with a warning', async () => {
    const broken = table('broken', async () => {
      throw new TypeError('oops');
    });
    const fine = table('fine', numbers(2));
    const engine = new InventoryEngine([broken, fine]);
    try {
      const result = await engine.query('SELECT (SELECT count(*) FROM broken) AS b, (SELECT count(*) FROM fine) AS f');
      assert.deepEqual(result.rows, [[0, 2]]);
      assert.deepEqual(result.warnings.map((w) => [w.table, w.code]), [['broken', 'HADES_ERR_INVENTORY_TABLE_FAILED']]);
      assert.match(result.warnings[0]!.message, /oops/);
    } finally {
      engine.close();
    }
  });

  it('refuses two tables of one name', () => {
    assert.throws(() => new InventoryEngine([table('twice', []), table('twice', [])]), /two inventory tables are named twice/);
  });
});

describe('SQL scanner', () => {
  it('finds identifiers outside strings and comments, and notices *', () => {
    const names = scanSql(`SELECT "Quoted Name", [br], \`bt\`, a.b -- users\n/* groups */ FROM t WHERE x = 'processes' AND y = 1e5`);
    assert.deepEqual(names.identifiers, ['select', 'quoted name', 'br', 'bt', 'a', 'b', 'from', 't', 'where', 'x', 'and', 'y']);
    assert.equal(names.star, false);
    assert.equal(scanSql('SELECT t.* FROM t').star, true);
    assert.equal(scanSql("SELECT '*' FROM t").star, false);
    assert.equal(scanSql('SELECT a FROM t NATURAL JOIN u').star, true, 'a NATURAL join compares every common column');
    assert.equal(scanSql('SELECT "natural" FROM t').star, false);
    assert.deepEqual(scanSql("PRAGMA temp.\"query_only\" = 1").pragmas, ['query_only']);
    assert.deepEqual(scanSql("PRAGMA 'case_sensitive_like' = 1").pragmas, ['case_sensitive_like']);
    assert.deepEqual(scanSql("SELECT * FROM pragma_table_info('t') WHERE x = 'pragma_x'").pragmas, ['table_info']);
  });
});
