// hades-test: shares the machine
/**
 * `hades query` as a person types it: an aligned table, NDJSON with --json, the table list,
 * warnings on standard error, coded errors with their exit statuses, and a timeout that ends a
 * query stuck in SQLite.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { allTables } from '../../src/agent/inventory/tables/index.js';
import { runHades } from '../helpers/cli.js';
import { makeHostFixture } from '../helpers/inventory-fixture.js';

const fixture = makeHostFixture();
after(() => rmSync(fixture.root, { recursive: true, force: true }));

function assertCoded(result: { status: number | null; stderr: string }, status: number, code: string): string {
  assert.equal(result.status, status, result.stderr);
  const last = result.stderr.trimEnd().split('\n').at(-1) ?? '';
  assert.match(last, new RegExp(`^hades: ${code}: `));
  return last;
}

describe('hades query', () => {
  it('prints an aligned table for a person, with the row count on standard error', async () => {
    const r = await runHades(['query', '--root', fixture.root, 'SELECT username, uid, shell FROM users WHERE uid < 1000 ORDER BY uid, username']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      r.stdout,
      ['username  uid  shell', '--------  ---  -----------------', 'root        0  /bin/bash', 'toor        0  /bin/sh', 'daemon      1  /usr/sbin/nologin', ''].join('\n'),
    );
    assert.match(r.stderr, /\(3 rows, \d+\.\d\d s\)/);
    // The fixture's odd lines are warnings, on standard error only.
    assert.match(r.stderr, /^hades: warning: HADES_ERR_INVENTORY_MALFORMED: users: .* \(\/etc\/passwd\)$/m);
  });

  it('prints one JSON object per row with --json, values whole', async () => {
    const r = await runHades(['query', '--json', '--root', fixture.root, 'SELECT pid, name, cmdline, exe_deleted FROM processes ORDER BY pid']);
    assert.equal(r.status, 0, r.stderr);
    const rows = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as unknown);
    assert.deepEqual(rows, [
      { pid: 100, name: 'fixture-daemon', cmdline: '/usr/bin/fixture-daemon --listen :22', exe_deleted: 0 },
      { pid: 200, name: '(evil) x', cmdline: '/tmp/.x/evil -c sh -i', exe_deleted: 1 },
      { pid: 400, name: 'kworker/0:1', cmdline: null, exe_deleted: null },
    ]);
  });

  it('keeps every column of a row with --json, a repeated name as name:2 (as query tasks do)', async () => {
    const r = await runHades(['query', '--json', '--root', fixture.root, 'SELECT p.pid, p.name, parent.name FROM processes p JOIN processes parent ON parent.pid = p.pid ORDER BY p.pid LIMIT 1']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout.trim().split('\n')[0]!), { pid: 100, name: 'fixture-daemon', 'name:2': 'fixture-daemon' });
  });

  it('gives rows of text of several bytes a character whole; a row over a frame is left out and the cut said, in seconds', async () => {
    // Two rows of 600 KB of UTF-8 (200,000 characters) go; a row of 1.2 MB cannot.
    const sql = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3) SELECT x, replace(hex(zeroblob(200000 * (x / 3 + 1))), '00', '€') AS t FROM c";
    const started = Date.now();
    const r = await runHades(['query', '--json', '--root', fixture.root, '--timeout', '30', sql]);
    assert.equal(r.status, 0, r.stderr);
    const rows = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { x: number; t: string });
    assert.deepEqual(rows.map((row) => [row.x, row.t.length]), [[1, 200_000], [2, 200_000]]);
    assert.match(r.stderr, /the result was cut at \d+ bytes, or a row over 1 MiB was left out/);
    assert.ok(Date.now() - started < 15_000, 'answered, not waited out to the timeout');
  });

  it('stops a query whose collector holds more memory than --max-memory, with a coded error', async () => {
    // count(DISTINCT) keeps every value of a 100,000,000-row recursion: hundreds of MB a second.
    const sql = 'WITH RECURSIVE x(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM x WHERE n < 100000000) SELECT count(DISTINCT n) FROM x';
    const started = Date.now();
    const line = assertCoded(await runHades(['query', '--root', fixture.root, '--max-memory', '160', '--timeout', '60', sql]), 2, 'HADES_ERR_QUERY_MEMORY');
    assert.match(line, /over --max-memory 160 MB/);
    assert.ok(Date.now() - started < 30_000, 'stopped when it passed the ceiling, not at the timeout');
    assertCoded(await runHades(['query', '--max-memory', '64', 'SELECT 1']), 2, 'HADES_ERR_CLI_INVALID_ARGUMENT');
  });

  it('shortens long values in the table and says so', async () => {
    const r = await runHades(['query', '--root', fixture.root, "SELECT printf('%.200c', 'x') AS long, 1 AS n"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^x{79}… {2}1$/m);
    assert.match(r.stderr, /long values are shortened; --json prints them whole/);
  });

  it('prints a table of hundreds of thousands of rows (a join, a long shell history)', async () => {
    const r = await runHades(['query', '--root', fixture.root, 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000) SELECT x FROM c']);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.deepEqual([lines.length, lines[0], lines[1], lines[2], lines.at(-1)], [200_002, '     x', '------', '     1', '200000']);
    assert.match(r.stderr, /\(200000 rows, /);
  });

  it('lists the tables, and their specs with --json', async () => {
    const r = await runHades(['query', '--tables']);
    assert.equal(r.status, 0, r.stderr);
    for (const table of allTables) assert.match(r.stdout, new RegExp(`^${table.name} +${table.columns[0]!.name},`, 'm'));
    const specs = (await runHades(['query', '--tables', '--json'])).stdout.trim().split('\n').map((l) => JSON.parse(l) as { name: string; columns: unknown[] });
    assert.deepEqual(specs.map((s) => s.name), allTables.map((t) => t.name));
  });

  it('fails with a coded error and the status of its kind', async () => {
    assertCoded(await runHades(['query', 'SELECT * FROM procesess']), 2, 'HADES_ERR_QUERY_UNKNOWN_TABLE');
    assert.match((await runHades(['query', 'SELECT * FROM procesess'])).stderr, /did you mean processes\?/);
    assertCoded(await runHades(['query', 'UPDATE users SET uid = 0']), 2, 'HADES_ERR_QUERY_NOT_READ_ONLY');
    assertCoded(await runHades(['query', 'SELECT FROM WHERE']), 2, 'HADES_ERR_QUERY_SYNTAX');
    assertCoded(await runHades(['query']), 2, 'HADES_ERR_CLI_MISSING_ARGUMENT');
    assertCoded(await runHades(['query', '--timeout', 'soon', 'SELECT 1']), 2, 'HADES_ERR_CLI_INVALID_ARGUMENT');
    assert.match(assertCoded(await runHades(['query', '--timeout', '0', 'SELECT 1']), 2, 'HADES_ERR_CLI_INVALID_ARGUMENT'), /above 0, at most 3600/);
    // A root that is not there would give empty tables: refused rather than answered with nothing.
    assert.match(assertCoded(await runHades(['query', '--root', '/nonexistent-root', 'SELECT 1']), 2, 'HADES_ERR_CLI_INVALID_ARGUMENT'), /does not exist/);
    assertCoded(await runHades(['query', '--tables', 'SELECT 1']), 2, 'HADES_ERR_CLI_TOO_MANY_ARGUMENTS');
  });

  it('gives up at --timeout even when SQLite is stuck in one step', async () => {
    const started = Date.now();
    const r = await runHades(['query', '--timeout', '1', 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c']);
    assertCoded(r, 2, 'HADES_ERR_QUERY_TIMEOUT');
    assert.ok(Date.now() - started < 10_000, `${Date.now() - started} ms`);
  });
});
