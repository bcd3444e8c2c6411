import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { HadesError } from '../../src/common/errors.js';
import { Cmdb, parseCmdb } from '../../src/server/cmdb.js';
import { Logger } from '../../src/runtime/log.js';
import { LogSink } from '../helpers/server.js';

const refused = (text: string, message: RegExp) =>
  assert.throws(() => parseCmdb(text, 'cmdb'), (e: unknown) => e instanceof HadesError && e.code === 'HADES_ERR_CMDB' && message.test(e.message));

describe('CMDB file', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'hades-cmdb-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads CSV and JSON, with a byte order mark or without', () => {
    const csv = parseCmdb('\ufeffhostname,owner,rack\nweb-1,team-a,r1\n', 'cmdb.csv');
    assert.deepEqual(csv.byName.get('web-1'), { owner: 'team-a', tags: { rack: 'r1' } });
    const json = parseCmdb('\ufeff[{"hostname": "Web-2", "environment": "prod", "tags": {"tier": "gold", "n": 3}}]', 'cmdb.json');
    assert.deepEqual(json.byName.get('web-2'), { environment: 'prod', tags: { tier: 'gold', n: '3' } });
  });

  it('keeps tags as bounded text, and a __proto__ key as a tag', () => {
    const parsed = parseCmdb(`[{"hostname": "h", "tags": {"__proto__": {"polluted": "yes"}, "deep": {"a": [1, 2]}, "long": "${'x'.repeat(300)}"}}]`, 'cmdb.json');
    const tags = parsed.byName.get('h')?.tags as Record<string, string>;
    assert.equal(Object.getPrototypeOf(tags), Object.prototype);
    assert.equal(tags['deep'], '{"a":[1,2]}');
    assert.equal(tags['long']?.length, 256);
    assert.equal(Object.hasOwn(tags, '__proto__'), true);
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  });

  it('refuses one object, rows without a host, and two different rows for one host', () => {
    refused('{"hostname": "h"}', /an array of objects .* not one object/);
    refused('[1, 2]', /an array of objects/);
    refused('[{"owner": "x"}]', /row 1 has neither hostname nor address/);
    refused('hostname,owner\na,x\nA,y\n', /row 2: host 'A' has another row with other values/);
    assert.equal(parseCmdb('hostname,owner\na,x\na,x\n', 'cmdb').byName.size, 1, 'the same row twice is one host');
    assert.equal(parseCmdb('[{"hostname": "a", "owner": "x", "environment": "p"}, {"environment": "p", "owner": "x", "hostname": "a"}]', 'cmdb').byName.size, 1, 'whatever the order of its keys');
  });

  it('refuses a text with no column to match hosts by (it is not a CMDB), and a header that names a column twice', () => {
    refused('just some text without commas\n', /the CSV header \(just some text without commas\) has none of the columns hosts are matched by/);
    refused('null', /has none of the columns hosts are matched by/);
    refused('"x"', /has none of the columns hosts are matched by/);
    refused('hostname,owner,hostname\na,x,b\n', /names the column 'hostname' twice/);
    assert.equal(parseCmdb('', 'cmdb').byName.size, 0, 'an empty file is an empty CMDB');
    assert.equal(parseCmdb('ip,owner\n', 'cmdb').byName.size, 0, 'a header alone is an empty CMDB');
  });

  it('takes blank name or address cells as absent, and matches a shared address to no row', () => {
    const parsed = parseCmdb('hostname,address,owner\na,,x\nb,,y\n,10.0.0.9,z\nc,10.0.0.1,p\nd,10.0.0.1,q\n', 'cmdb');
    assert.deepEqual([...parsed.byName.keys()], ['a', 'b', 'c', 'd']);
    assert.deepEqual([...parsed.byAddress.keys()], ['10.0.0.9'], 'the address two hosts share names neither');
    assert.equal(parsed.byName.get('d')?.owner, 'q', 'those hosts are found by name');
  });

  it('reports a missing file, a folder and a broken file with HADES_ERR_CMDB and keeps the last good content', () => {
    const sink = new LogSink();
    const file = path.join(dir, 'cmdb.csv');
    const cmdb = new Cmdb(file, new Logger({ level: 'info', maxBytes: 1 << 20, maxFiles: 1, stream: sink }));
    cmdb.reload();
    assert.match(cmdb.lastError ?? '', /cannot read .*cmdb\.csv: ENOENT/);
    writeFileSync(file, 'hostname,owner\nweb-1,team-a\n');
    cmdb.reload();
    assert.equal(cmdb.lookup('WEB-1')?.owner, 'team-a');
    writeFileSync(file, 'hostname,owner\n"unclosed,x\n');
    cmdb.reload();
    assert.equal(cmdb.lookup('web-1')?.owner, 'team-a', 'the last good content stays');
    const folder = path.join(dir, 'folder.csv');
    mkdirSync(folder);
    const other = new Cmdb(folder, new Logger({ level: 'info', maxBytes: 1 << 20, maxFiles: 1, stream: sink }));
    other.reload();
    assert.match(other.lastError ?? '', /is not a regular file/);
    const codes = sink.lines().filter((l) => l['level'] === 'error').map((l) => l['code']);
    assert.ok(codes.length >= 3 && codes.every((c) => c === 'HADES_ERR_CMDB'), JSON.stringify(codes));
  });
});
