import assert from 'node:assert/strict';
import fs, { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it, mock } from 'node:test';
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
    refused('[{"owner": "x"}]', /entry 1 has neither hostname nor address/);
    refused('hostname,owner\na,x\nA,y\n', /line 3: host "A" has another row with other values/);
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

  it('names the line of the file a CSV problem is on, as the parser\'s own errors do', () => {
    refused('hostname,owner,notes\n\na,x,"two\nlines"\n,,\n', /cmdb: line 5 has neither hostname nor address/);
    refused('hostname,owner\na,x\nb,y,z\n', /on line 3/);
  });

  it('matches an address however it is written (case, zeros, IPv4 mapped into IPv6) and refuses one that is no address', () => {
    const parsed = parseCmdb('address,owner\n2001:DB8:0:0::A,a\n::ffff:192.0.2.7,b\n', 'cmdb');
    assert.deepEqual([...parsed.byAddress.keys()], ['2001:db8::a', '192.0.2.7']);
    const sink = new LogSink();
    const file = path.join(dir, 'addresses.csv');
    writeFileSync(file, 'ip,owner\n2001:DB8::A,team-6\n10.0.0.5,team-4\n');
    const cmdb = new Cmdb(file, new Logger({ level: 'info', maxBytes: 1 << 20, maxFiles: 1, stream: sink }));
    cmdb.reload();
    assert.equal(cmdb.lookup('unknown', ['fe80::1', '2001:db8::a'])?.owner, 'team-6', 'as agents give it (lower case)');
    assert.equal(cmdb.lookup(undefined, ['::ffff:10.0.0.5'])?.owner, 'team-4');
    // A network (or a typo) matched no host, without a word.
    refused('hostname,address\na,10.0.0.0/24\n', /line 2: "10\.0\.0\.0\/24" is not an IP address/);
    refused('[{"ip": "web-1"}]', /entry 1: "web-1" is not an IP address/);
  });

  it('reads the file again when it changes, even with its time set back, and refuses one that is not UTF-8', () => {
    const sink = new LogSink();
    const file = path.join(dir, 'times.csv');
    writeFileSync(file, 'hostname,owner\nweb-1,team-a\n');
    const then = new Date('2024-01-01T00:00:00Z');
    utimesSync(file, then, then);
    const cmdb = new Cmdb(file, new Logger({ level: 'info', maxBytes: 1 << 20, maxFiles: 1, stream: sink }));
    cmdb.reload();
    assert.equal(cmdb.lookup('web-1')?.owner, 'team-a');
    // cp -p, rsync -t, tar: the new content comes with the time of its source; or written twice within one tick of the clock.
    writeFileSync(file, 'hostname,owner\nweb-1,team-b\n');
    utimesSync(file, then, then);
    cmdb.reload();
    assert.equal(cmdb.lookup('web-1')?.owner, 'team-b');
    writeFileSync(file, Buffer.concat([Buffer.from('hostname,owner\nweb-1,M'), Buffer.from([0xfc]), Buffer.from('ller\n')]));
    cmdb.reload();
    assert.match(cmdb.lastError ?? '', /is not UTF-8 text/);
    assert.equal(cmdb.lookup('web-1')?.owner, 'team-b', 'the last good content stays');
  });

  it('reads again a file that was caught half written, once the writer is done', () => {
    const sink = new LogSink();
    const file = path.join(dir, 'half.json');
    const whole = '[{"hostname": "web-1", "owner": "team-a"}]';
    writeFileSync(file, whole.slice(0, 20));
    const cmdb = new Cmdb(file, new Logger({ level: 'info', maxBytes: 1 << 20, maxFiles: 1, stream: sink }));
    // The writer finishes right after the half was read: before the CMDB looks at the file again.
    const statSync = fs.statSync;
    let calls = 0;
    const stat = mock.method(fs, 'statSync', (...args: Parameters<typeof statSync>) => {
      if (++calls === 2) writeFileSync(file, whole);
      return statSync(...args);
    });
    syncBuiltinESMExports();
    try {
      cmdb.reload();
      assert.match(cmdb.lastError ?? '', /not valid JSON/);
      cmdb.reload();
    } finally {
      stat.mock.restore();
      syncBuiltinESMExports();
    }
    assert.equal(cmdb.lookup('web-1')?.owner, 'team-a', 'the whole file was read');
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
