import assert from 'node:assert/strict';
import fs, { chmodSync, mkdirSync, mkdtempSync, rmSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it, mock } from 'node:test';
import { HadesError } from '../../src/common/errors.js';
import { Cmdb, CMDB_MAX_BYTES, PackedTable, parseCmdb } from '../../src/server/cmdb.js';
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

  it('reads a CSV header in lower case and keeps the case of JSON tag keys (docs/architecture.md, CMDB)', () => {
    const csv = parseCmdb('HostName,Owner,Cost Center\nweb-1,team-a,CC-42\n', 'cmdb.csv');
    assert.deepEqual(csv.byName.get('web-1'), { owner: 'team-a', tags: { 'cost center': 'CC-42' } });
    const json = parseCmdb('[{"hostname": "web-2", "tags": {"Cost Center": "CC-9"}}]', 'cmdb.json');
    assert.deepEqual(json.byName.get('web-2'), { tags: { 'Cost Center': 'CC-9' } });
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
    refused(`[${'['.repeat(200_000)}${']'.repeat(200_000)}]`, /nests more than 16 levels deep/);
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
    // No host at all, as a file rewritten in place is for a moment: refused, so that the last good content stays.
    for (const empty of ['', '\ufeff', '\n \n', 'ip,owner\n', 'hostname,own', '[]', ' [ ] ']) refused(empty, /holds no host/);
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

  it('matches an address however it is written (case, zeros, IPv4 mapped into IPv6) and refuses one that is no address', async () => {
    const parsed = parseCmdb('address,owner\n2001:DB8:0:0::A,a\n::ffff:192.0.2.7,b\n', 'cmdb');
    assert.deepEqual([...parsed.byAddress.keys()], ['2001:db8::a', '192.0.2.7']);
    const sink = new LogSink();
    const file = path.join(dir, 'addresses.csv');
    writeFileSync(file, 'ip,owner\n2001:DB8::A,team-6\n10.0.0.5,team-4\n');
    const cmdb = new Cmdb(file, new Logger({ level: 'info', maxBytes: 1 << 20, maxFiles: 1, stream: sink }));
    await cmdb.reload();
    assert.equal(cmdb.lookup('unknown', ['fe80::1', '2001:db8::a'])?.owner, 'team-6', 'as agents give it (lower case)');
    assert.equal(cmdb.lookup(undefined, ['::ffff:10.0.0.5'])?.owner, 'team-4');
    // A network (or a typo) matched no host, without a word.
    refused('hostname,address\na,10.0.0.0/24\n', /line 2: "10\.0\.0\.0\/24" is not an IP address/);
    refused('[{"ip": "web-1"}]', /entry 1: "web-1" is not an IP address/);
  });

  it('reads the file again when it changes, even with its time set back, and refuses one that is not UTF-8', async () => {
    const sink = new LogSink();
    const file = path.join(dir, 'times.csv');
    writeFileSync(file, 'hostname,owner\nweb-1,team-a\n');
    const then = new Date('2024-01-01T00:00:00Z');
    utimesSync(file, then, then);
    const cmdb = new Cmdb(file, new Logger({ level: 'info', maxBytes: 1 << 20, maxFiles: 1, stream: sink }));
    await cmdb.reload();
    assert.equal(cmdb.lookup('web-1')?.owner, 'team-a');
    // cp -p, rsync -t, tar: the new content comes with the time of its source; or written twice within one tick of the clock.
    writeFileSync(file, 'hostname,owner\nweb-1,team-b\n');
    utimesSync(file, then, then);
    await cmdb.reload();
    assert.equal(cmdb.lookup('web-1')?.owner, 'team-b');
    writeFileSync(file, Buffer.concat([Buffer.from('hostname,owner\nweb-1,M'), Buffer.from([0xfc]), Buffer.from('ller\n')]));
    await cmdb.reload();
    assert.match(cmdb.lastError ?? '', /is not UTF-8 text/);
    assert.equal(cmdb.lookup('web-1')?.owner, 'team-b', 'the last good content stays');
  });

  it('reads again a file that was caught half written, once the writer is done', async () => {
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
      await cmdb.reload();
      assert.match(cmdb.lastError ?? '', /not valid JSON/);
      await cmdb.reload();
    } finally {
      stat.mock.restore();
      syncBuiltinESMExports();
    }
    assert.equal(cmdb.lookup('web-1')?.owner, 'team-a', 'the whole file was read');
  });

  it('reports a missing file, a folder and a broken file with HADES_ERR_CMDB and keeps the last good content', async () => {
    const sink = new LogSink();
    const file = path.join(dir, 'cmdb.csv');
    const cmdb = new Cmdb(file, new Logger({ level: 'info', maxBytes: 1 << 20, maxFiles: 1, stream: sink }));
    await cmdb.reload();
    assert.match(cmdb.lastError ?? '', /cannot read .*cmdb\.csv: ENOENT/);
    writeFileSync(file, 'hostname,owner\nweb-1,team-a\n');
    await cmdb.reload();
    assert.equal(cmdb.lookup('WEB-1')?.owner, 'team-a');
    writeFileSync(file, 'hostname,owner\n"unclosed,x\n');
    await cmdb.reload();
    assert.equal(cmdb.lookup('web-1')?.owner, 'team-a', 'the last good content stays');
    writeFileSync(file, '');
    await cmdb.reload();
    assert.match(cmdb.lastError ?? '', /holds no host/);
    assert.equal(cmdb.lookup('web-1')?.owner, 'team-a', 'an empty file (one being written again) leaves it too');
    // A file any user may rewrite is refused: its owners and environments go with every alert.
    writeFileSync(file, 'hostname,owner\nweb-1,mallory\n');
    chmodSync(file, 0o666);
    await cmdb.reload();
    assert.match(cmdb.lastError ?? '', /can be written by any user of this machine \(mode 0666\): run chmod o-w on it/);
    assert.equal(cmdb.lookup('web-1')?.owner, 'team-a');
    chmodSync(file, 0o644);
    await cmdb.reload();
    assert.equal(cmdb.lookup('web-1')?.owner, 'mallory', 'read once it is not writable by all');
    const folder = path.join(dir, 'folder.csv');
    mkdirSync(folder);
    const other = new Cmdb(folder, new Logger({ level: 'info', maxBytes: 1 << 20, maxFiles: 1, stream: sink }));
    await other.reload();
    assert.match(other.lastError ?? '', /is not a regular file/);
    const codes = sink.lines().filter((l) => l['level'] === 'error').map((l) => l['code']);
    assert.ok(codes.length >= 3 && codes.every((c) => c === 'HADES_ERR_CMDB'), JSON.stringify(codes));
  });

  const quiet = (sink = new LogSink()) => new Logger({ level: 'info', maxBytes: 1 << 20, maxFiles: 1, stream: sink });

  it('parses a large file on a thread of its own: the main thread keeps running meanwhile', async () => {
    // 4 MiB of CSV took about 1.5 s of the main thread to parse, stalling the gateway and the API.
    const file = path.join(dir, 'large.csv');
    const rows = ['hostname,address,owner,environment,rack'];
    for (let i = 0; rows.length * 60 < 4 * 1024 * 1024; i++) rows.push(`host-${i}.dc${i % 7}.example.com,10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255},team-${i % 300},prod,rack-${i % 1000}`);
    writeFileSync(file, rows.join('\n') + '\n');
    const cmdb = new Cmdb(file, quiet());
    let longest = 0;
    let last = performance.now();
    const probe = setInterval(() => {
      const now = performance.now();
      longest = Math.max(longest, now - last);
      last = now;
    }, 5);
    try {
      await cmdb.reload();
    } finally {
      clearInterval(probe);
    }
    assert.equal(cmdb.lastError, undefined);
    assert.equal(cmdb.size, 2 * (rows.length - 1));
    assert.equal(cmdb.lookup('host-0.dc0.example.com')?.owner, 'team-0');
    assert.equal(cmdb.lookup('HOST-12345.dc4.example.com')?.tags?.['rack'], 'rack-345');
    assert.equal(cmdb.lookup('nope', ['10.0.48.57'])?.owner, `team-${12345 % 300}`);
    assert.ok(longest < 400, `the main thread stalled ${Math.round(longest)} ms`);
    await cmdb.stop();
  });

  it('refuses a file larger than 64 MiB with HADES_ERR_CMDB, before reading it', async () => {
    const file = path.join(dir, 'huge.csv');
    writeFileSync(file, 'hostname,owner\n');
    truncateSync(file, CMDB_MAX_BYTES + 1);
    const sink = new LogSink();
    const cmdb = new Cmdb(file, quiet(sink));
    await cmdb.reload();
    assert.match(cmdb.lastError ?? '', /huge\.csv is larger than 67108864 bytes \(64 MiB\)/);
    assert.ok(sink.lines().some((l) => l['code'] === 'HADES_ERR_CMDB'));
    await cmdb.stop();
  });

  it('packs tables that find every key, whatever its characters, and no other', () => {
    const entries = new Map<string, { owner: string }>();
    for (let i = 0; i < 1000; i++) entries.set(`${['web', 'Ünïcode', 'db', '数据', 'a'][i % 5]}-${(i * 7919) % 1000}`, { owner: `o${i}` });
    const table = new PackedTable(PackedTable.pack(entries));
    assert.equal(table.size, 1000);
    for (const [key, value] of entries) assert.deepEqual(table.get(key), value, key);
    for (const absent of ['', 'web', 'web-1000', 'zzz', '数据-']) assert.equal(table.get(absent), undefined, absent);
    assert.equal(new PackedTable(PackedTable.pack(new Map())).get('x'), undefined);
  });

  it('parses an entry once, and hands out one frozen copy that no caller can change for the others', () => {
    const table = new PackedTable(PackedTable.pack(new Map([['web-1', { owner: 'ops', tags: { tier: 'front' } }]])));
    const first = table.get('web-1')!;
    assert.equal(table.get('web-1'), first);
    assert.ok(Object.isFrozen(first) && Object.isFrozen(first.tags));
    assert.throws(() => {
      (first as { owner: string }).owner = 'attacker';
    }, TypeError);
    assert.deepEqual(table.get('web-1'), { owner: 'ops', tags: { tier: 'front' } });
  });

  it('replaces control and bidirectional characters in values by spaces, said once, and refuses them in names and addresses', async () => {
    // They reach events, alerts, syslog and terminals: ESC and CSI (C1) start terminal
    // sequences, U+202E reorders what is shown. A multi-line note is still worth having.
    const parsed = parseCmdb('hostname,owner,notes,"bad\x1bkey"\nweb-1,"team\x1b[31ma","two\nlines\u202e",x\nweb-2,"ok\x9b2J",,\n', 'cmdb');
    assert.deepEqual(parsed.byName.get('web-1'), { owner: 'team [31ma', tags: { notes: 'two lines', 'bad key': 'x' } });
    assert.equal(parsed.byName.get('web-2')?.owner, 'ok 2J');
    // The line a record ends on, as the parser counts (its cell spans lines 2 and 3).
    assert.deepEqual(parsed.cleaned, { count: 4, first: 'line 3' });
    const json = parseCmdb('[{"hostname": "h", "tags": {"t": {"x": "\\u0007"}}}]', 'cmdb');
    assert.equal(json.byName.get('h')?.tags?.['t'], '{"x":"\\u0007"}', 'JSON text of a nested value keeps its escapes');
    refused('hostname,owner\n"web\x1b-1",x\n', /line 2: the host name "web\\x1b-1" holds a control or bidirectional formatting character/);
    refused('[{"ip": "10.0.0.1\\u202e"}]', /entry 1: the address .* holds a control/);
    // A line separator breaks a line as a new line does; a lone surrogate shows as nothing meant.
    const lines = parseCmdb('[{"hostname": "h", "owner": "a\\u2028b\\ud800c"}]', 'cmdb');
    assert.equal(lines.byName.get('h')?.owner, 'a b c');
    refused('[{"hostname": "h\\u2029x"}]', /entry 1: the host name "h\\u2029x" holds a control/);
    const sink = new LogSink();
    const file = path.join(dir, 'controls.csv');
    writeFileSync(file, 'hostname,owner\nweb-1,"a\tb"\n');
    const cmdb = new Cmdb(file, quiet(sink));
    await cmdb.reload();
    assert.equal(cmdb.lookup('web-1')?.owner, 'a b');
    const warned = sink.lines().filter((l) => l['level'] === 'warn');
    assert.equal(warned.length, 1);
    assert.equal(warned[0]?.['values'], 1);
    await cmdb.stop();
  });

  it('matches short host names and FQDNs both ways, exact names first, an ambiguous short name to no row', async () => {
    const file = path.join(dir, 'names.csv');
    writeFileSync(
      file,
      'hostname,address,owner\nweb01,,short-row\ndb01.example.com,,fqdn-row\nweb02.example.com,,exact\nweb02,,short-2\n' +
        'app.prod.example.com,,prod\napp.dev.example.com,,dev\nmail.example.org.,,absolute\n10.0.0.7,,by-name-ip\n,10.0.0.9,by-address\n',
    );
    const cmdb = new Cmdb(file, quiet());
    await cmdb.reload();
    const owner = (name: string, addresses: string[] = []) => cmdb.lookup(name, addresses)?.owner;
    assert.equal(owner('web01'), 'short-row');
    assert.equal(owner('web01.example.com'), 'short-row', 'an FQDN agent, a short row: by its first label');
    assert.equal(owner('WEB01.other.example.net.'), 'short-row');
    assert.equal(owner('db01'), 'fqdn-row', 'a short agent, an FQDN row: the one FQDN with that first label');
    assert.equal(owner('db01.example.com'), 'fqdn-row');
    assert.equal(owner('db01.example.net'), undefined, 'an FQDN is matched by its short name only against short rows');
    assert.equal(owner('web02.example.com'), 'exact', 'the exact name first');
    assert.equal(owner('web02'), 'short-2');
    assert.equal(owner('web02.other.example.com'), 'short-2');
    assert.equal(owner('app'), undefined, 'two FQDNs with that first label: which host is meant is unknown');
    assert.equal(owner('app', ['10.0.0.9']), 'by-address', 'then the addresses decide');
    assert.equal(owner('app.dev.example.com'), 'dev');
    assert.equal(owner('mail.example.org'), 'absolute', 'the final dot of an absolute name does not count');
    assert.equal(owner('mail'), 'absolute');
    assert.equal(owner('10.0.0.7'), 'by-name-ip');
    assert.equal(owner('10'), undefined, 'an address is no FQDN');
    await cmdb.stop();
  });
});
