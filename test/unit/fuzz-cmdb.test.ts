/**
 * Property-based fuzzing of the CMDB loader (src/server/cmdb.ts: loadCmdbFile, parseCmdb) with
 * fast-check (test/helpers/fuzz.ts): any file, arbitrary bytes or a mutation of a valid CSV or
 * JSON CMDB, loads or fails with HADES_ERR_CMDB, never another exception, in bounded time.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { isUtf8 } from 'node:buffer';
import { loadCmdbFile, PackedTable, parseCmdb } from '../../src/server/cmdb.js';
import { codedOutcome, fieldLines, fuzzParams, mutatedBytes, mutatedTree, textLike, utf8, wrongValue, type Json } from '../helpers/fuzz.js';

const dir = mkdtempSync(path.join(tmpdir(), 'hades-fuzz-cmdb-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = path.join(dir, 'cmdb');

const CSV = 'hostname,address,owner,business_unit,environment,rack\nweb-01.example.com,10.0.0.1,team-a,shop,prod,r1\ndb-01,2001:db8::1,team-b,data,prod,r2\n,10.0.0.9,team-c,,dev,\nWEB-02.example.net.,::ffff:10.0.0.2,team-a,shop,staging,"r3, left"\n';
const JSON_ROWS: Json = [
  { hostname: 'web-01.example.com', address: '10.0.0.1', owner: 'team-a', environment: 'prod', tags: { tier: 'gold', n: 3 } },
  { host: 'db-01', ip: '2001:db8::1', business_unit: 'data' },
  { address: '192.0.2.7', rack: 'r9' },
];

/**
 * Loads bytes as the server loads its CMDB file: tables, or HADES_ERR_CMDB. The file itself is read
 * (loadCmdbFile) only for bytes that are not UTF-8: reading allocates the 64 MiB bound each time,
 * which would make the runs slow; the text goes to parseCmdb and the packing as loadCmdbFile does.
 */
function checkCmdb(bytes: Uint8Array): void {
  if (!isUtf8(bytes)) {
    writeFileSync(file, bytes);
    const outcome = codedOutcome(() => loadCmdbFile(file), 2000, 'loadCmdbFile');
    assert.ok('error' in outcome && outcome.error.code === 'HADES_ERR_CMDB', 'a file that is not UTF-8 is refused');
    return;
  }
  const outcome = codedOutcome(() => parseCmdb(Buffer.from(bytes).toString('utf8'), 'cmdb'), 2000, 'parseCmdb');
  if ('error' in outcome) {
    assert.equal(outcome.error.code, 'HADES_ERR_CMDB');
    return;
  }
  // What the server does with the tables: packs them, and looks hosts up in them.
  for (const map of [outcome.value.byName, outcome.value.byShort, outcome.value.byAddress]) {
    const packed = codedOutcome(() => PackedTable.pack(map), 500, 'PackedTable.pack');
    assert.ok('value' in packed);
    const table = new PackedTable(packed.value);
    for (const key of [...[...map.keys()].slice(0, 3), 'web-01', '', '__proto__']) {
      const found = codedOutcome(() => table.get(key), 100, 'PackedTable.get');
      if (map.has(key)) assert.deepEqual('value' in found && found.value, map.get(key), 'a packed host is found');
    }
  }
}

describe('fuzz: CMDB files', () => {
  it('the seeds load', () => {
    for (const text of [CSV, JSON.stringify(JSON_ROWS)]) {
      writeFileSync(file, text);
      assert.ok(loadCmdbFile(file).hosts >= 3);
    }
  });

  it('arbitrary bytes and text', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), textLike.map(utf8), fieldLines(',', { min: 1, max: 6 }).map((t) => utf8(`hostname,address,owner\n${t}`))), (bytes) => checkCmdb(bytes)),
      fuzzParams(300),
    );
  });

  it('mutations of a CSV and a JSON CMDB (bytes)', () => {
    fc.assert(
      fc.property(mutatedBytes(fc.constantFrom(utf8(CSV), utf8(JSON.stringify(JSON_ROWS))), 5), (bytes) => checkCmdb(bytes)),
      fuzzParams(300),
    );
  });

  it('mutations of a JSON CMDB (rows and fields removed, duplicated, of the wrong type, nested deep, huge)', () => {
    fc.assert(
      fc.property(mutatedTree(JSON_ROWS, 3), (rows) => checkCmdb(utf8(JSON.stringify(rows)))),
      fuzzParams(300),
    );
  });

  it('JSON rows with values of any type in every column', () => {
    const row = fc.dictionary(fc.constantFrom('hostname', 'host', 'address', 'ip', 'owner', 'business_unit', 'environment', 'tags', '__proto__', 'constructor', 'x'), wrongValue, { maxKeys: 5 });
    fc.assert(
      fc.property(fc.array(row, { maxLength: 5 }), (rows) => checkCmdb(utf8(JSON.stringify(rows)))),
      fuzzParams(300),
    );
  });
});
