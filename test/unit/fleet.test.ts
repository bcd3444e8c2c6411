import assert from 'node:assert/strict';
import { webcrypto } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, beforeEach, describe, it } from 'node:test';
import { HadesError } from '../../src/common/errors.js';
import { openDatabase, type Db } from '../../src/server/db.js';
import { ApiTokens, authorize, hasRole, type Principal } from '../../src/server/fleet/api-tokens.js';
import { AuditLog, REDACTED, redactSecrets } from '../../src/server/fleet/audit.js';
import { FleetRegistry, type AgentCertInfo } from '../../src/server/fleet/registry.js';
import { EnrollmentTokens, sha256 } from '../../src/server/fleet/tokens.js';
import { Pki, x509 } from '../../src/server/pki.js';

const root = mkdtempSync(path.join(tmpdir(), 'hades-fleet-'));
after(() => rmSync(root, { recursive: true, force: true }));
let folders = 0;
const folder = (): string => path.join(root, `d${++folders}`);

const T0 = Date.parse('2030-01-01T00:00:00.000Z');
const MINUTE = 60_000;

/** A clock the test moves by hand. */
function clock(start = T0): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

const code = (expected: string, pattern?: RegExp) => (error: unknown) => {
  assert.ok(error instanceof HadesError, `expected a HadesError, got ${String(error)}`);
  assert.equal(error.code, expected, error.message);
  if (pattern !== undefined) assert.match(error.message, pattern);
  return true;
};

const secretOf = (token: string): string => token.split('_').slice(2).join('_');
/** A table's whole content as text, blobs in hex. */
const dump = (db: Db, table: string): string =>
  JSON.stringify(
    (db.prepare(`SELECT * FROM ${table}`).all() as Record<string, unknown>[]).map((row) =>
      Object.fromEntries(Object.entries(row).map(([k, v]) => [k, Buffer.isBuffer(v) ? v.toString('hex') : v])),
    ),
  );

describe('enrollment tokens', () => {
  let db: Db;
  let time: ReturnType<typeof clock>;
  let tokens: EnrollmentTokens;
  beforeEach(() => {
    db = openDatabase(':memory:');
    time = clock();
    tokens = new EnrollmentTokens(db, { now: time.now });
  });

  it('creates hades1_<id>_<secret> tokens and stores only the SHA-256 of the secret', () => {
    const made = tokens.create({ ttlMs: 60 * MINUTE, group: 'web', createdBy: 'admin' });
    assert.match(made.token, /^hades1_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    assert.equal(made.token.split('_')[1], made.id);
    assert.equal(made.expiresAt, new Date(T0 + 60 * MINUTE).toISOString());
    const stored = dump(db, 'enrollment_tokens');
    assert.ok(!stored.includes(secretOf(made.token)), 'the secret is not stored');
    assert.ok(stored.includes(sha256(secretOf(made.token)).toString('hex')));
    assert.notEqual(tokens.create({ ttlMs: MINUTE, createdBy: 'admin' }).token, made.token);
  });

  it('is consumed once; a second use is refused', () => {
    const made = tokens.create({ ttlMs: MINUTE, group: 'db', createdBy: 'admin' });
    assert.deepEqual(tokens.check(made.token), { tokenId: made.id, group: 'db' });
    assert.deepEqual(tokens.consume(made.token, 'ag_0000000000000001'), { tokenId: made.id, group: 'db' });
    assert.throws(() => tokens.consume(made.token), code('HADES_ERR_ENROLL_TOKEN_USED'));
    assert.throws(() => tokens.check(made.token), code('HADES_ERR_ENROLL_TOKEN_USED'));
    const listed = tokens.get(made.id);
    assert.equal(listed?.state, 'used');
    assert.equal(listed?.usedBy, 'ag_0000000000000001');
    const plain = tokens.create({ ttlMs: MINUTE, createdBy: 'admin' });
    assert.deepEqual(tokens.consume(plain.token), { tokenId: plain.id });
  });

  it('expires', () => {
    const made = tokens.create({ ttlMs: 10 * MINUTE, createdBy: 'admin' });
    time.advance(10 * MINUTE - 1);
    assert.doesNotThrow(() => tokens.check(made.token));
    time.advance(1);
    assert.throws(() => tokens.consume(made.token), code('HADES_ERR_ENROLL_TOKEN_EXPIRED'));
    assert.equal(tokens.get(made.id)?.state, 'expired');
  });

  it('lets only one of two concurrent consumers win', async () => {
    const made = tokens.create({ ttlMs: MINUTE, createdBy: 'admin' });
    const results = await Promise.allSettled([
      Promise.resolve().then(() => tokens.consume(made.token, 'ag_a')),
      Promise.resolve().then(() => tokens.consume(made.token, 'ag_b')),
    ]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    const refused = results.find((r) => r.status === 'rejected');
    assert.ok(refused !== undefined && code('HADES_ERR_ENROLL_TOKEN_USED')(refused.reason));
  });

  it('lets only one of two database connections win', () => {
    const file = path.join(folder(), 'hades.db');
    const one = openDatabase(file);
    const two = openDatabase(file);
    try {
      const a = new EnrollmentTokens(one);
      const b = new EnrollmentTokens(two);
      const made = a.create({ ttlMs: MINUTE, createdBy: 'admin' });
      // b checks first (both see it unused), then both consume.
      assert.doesNotThrow(() => b.check(made.token));
      assert.doesNotThrow(() => a.consume(made.token));
      assert.throws(() => b.consume(made.token), code('HADES_ERR_ENROLL_TOKEN_USED'));
    } finally {
      one.close();
      two.close();
    }
  });

  it('is not burned by an enrollment that fails after consuming it', () => {
    const made = tokens.create({ ttlMs: MINUTE, createdBy: 'admin' });
    assert.throws(
      () =>
        db.transaction(() => {
          tokens.consume(made.token);
          throw new HadesError('HADES_ERR_ENROLL_REQUEST_INVALID', 'the rest of the enrollment failed');
        })(),
      code('HADES_ERR_ENROLL_REQUEST_INVALID'),
    );
    assert.doesNotThrow(() => tokens.consume(made.token));
  });

  it('refuses malformed, unknown, forged and revoked tokens as invalid', () => {
    const made = tokens.create({ ttlMs: MINUTE, createdBy: 'admin' });
    const forged = `hades1_${made.id}_${'A'.repeat(43)}`;
    const unknown = `hades1_0123456789abcdef_${secretOf(made.token)}`;
    for (const bad of ['', 'hades1_', 'hades1__', made.token.replace('hades1', 'hades2'), `${made.token}x`, made.token.slice(0, -1), made.token.toUpperCase(), ` ${made.token}`, undefined as unknown as string, 42 as unknown as string]) {
      assert.throws(() => tokens.consume(bad), code('HADES_ERR_ENROLL_TOKEN_INVALID', /malformed/), String(bad));
    }
    assert.throws(() => tokens.consume(forged), code('HADES_ERR_ENROLL_TOKEN_INVALID', /unknown/));
    assert.throws(() => tokens.consume(unknown), code('HADES_ERR_ENROLL_TOKEN_INVALID', /unknown/));
    assert.equal(tokens.revoke(made.id), true);
    assert.equal(tokens.revoke(made.id), false);
    assert.throws(() => tokens.consume(made.token), code('HADES_ERR_ENROLL_TOKEN_INVALID', /revoked/));
    assert.equal(tokens.get(made.id)?.state, 'revoked');
  });

  it('lists tokens without their secrets, and refuses bad lifetimes', () => {
    const a = tokens.create({ ttlMs: MINUTE, group: 'web', createdBy: 'alice' });
    time.advance(1000);
    const b = tokens.create({ ttlMs: MINUTE, createdBy: 'bob' });
    const listed = tokens.list();
    assert.deepEqual(
      listed.map((t) => [t.id, t.group, t.createdBy, t.state]),
      [
        [b.id, undefined, 'bob', 'active'],
        [a.id, 'web', 'alice', 'active'],
      ],
    );
    assert.ok(!JSON.stringify(listed).includes(secretOf(a.token)));
    assert.throws(() => tokens.create({ ttlMs: 0, createdBy: 'x' }), code('HADES_ERR_INTERNAL'));
    assert.throws(() => tokens.create({ ttlMs: 365 * 86_400_000, createdBy: 'x' }), code('HADES_ERR_INTERNAL'));
    assert.throws(() => tokens.create({ ttlMs: MINUTE, group: 'bad group', createdBy: 'x' }), code('HADES_ERR_INTERNAL'));
  });
});

const fp = (n: number): string => n.toString(16).padStart(64, '0');
const host = (hostname: string, group?: string) => ({ hostname, addresses: ['10.0.0.1', 'fe80::1'], os: 'Debian 12', kernel: '6.1.0-18-amd64', version: '0.1.0', ...(group === undefined ? {} : { group }) });

describe('fleet registry', () => {
  let db: Db;
  let time: ReturnType<typeof clock>;
  let fleet: FleetRegistry;
  let n = 0;
  const cert = (agentId: string): AgentCertInfo => ({ agentId, fingerprint: fp(++n), serial: n.toString(16), notAfter: new Date(T0 + 365 * 86_400_000).toISOString() });
  beforeEach(() => {
    db = openDatabase(':memory:');
    time = clock();
    fleet = new FleetRegistry(db, { now: time.now });
  });

  it('enrolls agents with what they report and their certificate', () => {
    const id = fleet.newAgentId();
    assert.match(id, /^ag_[0-9a-f]{16}$/);
    const c = cert(id);
    const agent = fleet.enroll(host('web-1', 'web'), { ...c, tokenId: '0123456789abcdef' });
    assert.deepEqual(agent, {
      id,
      hostname: 'web-1',
      enrolledHostname: 'web-1',
      addresses: ['10.0.0.1', 'fe80::1'],
      os: 'Debian 12',
      kernel: '6.1.0-18-amd64',
      version: '0.1.0',
      groups: ['web'],
      tags: {},
      certFingerprint: c.fingerprint,
      certSerial: c.serial,
      certNotAfter: c.notAfter,
      tokenId: '0123456789abcdef',
      enrolledAt: new Date(T0).toISOString(),
      lastSeen: new Date(T0).toISOString(),
      online: false,
    });
    assert.deepEqual(fleet.hostOf(id), { hostname: 'web-1', enrolledHostname: 'web-1', addresses: ['10.0.0.1', 'fe80::1'] }, 'what the CMDB is matched by, for every batch');
    assert.equal(fleet.hostOf('ag_0000000000000000'), undefined);
    assert.deepEqual(fleet.get(id), agent);
    // Read once and remembered; a hello that changes the host's name or addresses is seen at once.
    fleet.hello(id, { hostname: 'web-1b', addresses: ['10.0.0.2'] });
    assert.deepEqual(fleet.hostOf(id), { hostname: 'web-1b', enrolledHostname: 'web-1', addresses: ['10.0.0.2'] });
    // The name it enrolled with stays: a hello (what the host's root may say) does not change it.
    assert.equal(fleet.enrolledHostOf(id), 'web-1');
    assert.equal(fleet.get(id)?.enrolledHostname, 'web-1');
    assert.equal(fleet.enrolledHostOf('ag_0000000000000000'), undefined);
    fleet.hello(id, { hostname: 'web-1', addresses: ['10.0.0.1', 'fe80::1'] });
    assert.deepEqual(fleet.hostOf(id), { hostname: 'web-1', enrolledHostname: 'web-1', addresses: ['10.0.0.1', 'fe80::1'] });
    assert.deepEqual(fleet.byFingerprint(c.fingerprint), agent);
    assert.equal(fleet.get('ag_ffffffffffffffff'), undefined);
    assert.equal(fleet.byFingerprint(fp(999)), undefined);
    assert.deepEqual(fleet.enroll(host('db-1'), cert(fleet.newAgentId())).groups, ['default']);
  });

  it('refuses an enrollment without a host name', () => {
    assert.throws(() => fleet.enroll(host(' '), cert(fleet.newAgentId())), code('HADES_ERR_ENROLL_REQUEST_INVALID'));
    assert.throws(() => fleet.enroll({ ...host('a'), hostname: undefined as unknown as string }, cert(fleet.newAgentId())), code('HADES_ERR_ENROLL_REQUEST_INVALID'));
    assert.throws(() => fleet.enroll(host('a\nb'), cert(fleet.newAgentId())), code('HADES_ERR_ENROLL_REQUEST_INVALID'));
    assert.throws(() => fleet.enroll(host('a', '../etc'), cert(fleet.newAgentId())), code('HADES_ERR_ENROLL_REQUEST_INVALID'));
  });

  it('authorizes the issued certificate only, and no revoked agent', () => {
    const id = fleet.newAgentId();
    const c = cert(id);
    fleet.enroll(host('web-1'), c);
    assert.equal(fleet.authorize(id, c.fingerprint).id, id);
    assert.equal(fleet.authorize(id, c.fingerprint.toUpperCase()).id, id);
    assert.throws(() => fleet.authorize(id, fp(12345)), code('HADES_ERR_AGENT_UNKNOWN', /not the one issued/));
    assert.throws(() => fleet.authorize('ag_ffffffffffffffff', c.fingerprint), code('HADES_ERR_AGENT_UNKNOWN'));
    fleet.markOnline(id, true);
    time.advance(MINUTE);
    const revoked = fleet.revoke(id);
    assert.equal(revoked.revokedAt, new Date(T0 + MINUTE).toISOString());
    assert.equal(revoked.online, false);
    assert.throws(() => fleet.authorize(id, c.fingerprint), code('HADES_ERR_AGENT_REVOKED'));
    time.advance(MINUTE);
    assert.equal(fleet.revoke(id).revokedAt, revoked.revokedAt, 'revoking again keeps the first time');
    assert.throws(() => fleet.revoke('ag_ffffffffffffffff'), code('HADES_ERR_AGENT_UNKNOWN'));
  });

  it('takes the agent id from the enrollment info or the certificate, and updates what a hello reports', () => {
    const id = fleet.newAgentId();
    const noId: AgentCertInfo = { ...cert(id), agentId: undefined };
    assert.equal(fleet.enroll({ ...host('x'), id }, noId).id, id);
    assert.throws(() => fleet.enroll({ ...host('y'), id: fleet.newAgentId() }, cert(fleet.newAgentId())), code('HADES_ERR_INTERNAL'));
    assert.throws(() => fleet.enroll(host('z'), noId), code('HADES_ERR_INTERNAL'));
    time.advance(MINUTE);
    const updated = fleet.hello(id, { hostname: 'x2', kernel: '6.12.0', version: '0.2.0' });
    assert.deepEqual([updated.hostname, updated.os, updated.kernel, updated.version, updated.lastSeen], ['x2', 'Debian 12', '6.12.0', '0.2.0', new Date(T0 + MINUTE).toISOString()]);
    assert.deepEqual(fleet.hello(id, { addresses: ['192.0.2.7'] }).addresses, ['192.0.2.7']);
    assert.throws(() => fleet.hello(id, { hostname: '' }), code('HADES_ERR_ENROLL_REQUEST_INVALID'));
    for (const addresses of [['not-an-ip'], ['999.1.1.1'], ['10.0.0.1', 'host.example']]) assert.throws(() => fleet.hello(id, { addresses }), code('HADES_ERR_ENROLL_REQUEST_INVALID'), addresses.join(','));
    assert.throws(() => fleet.hello('ag_ffffffffffffffff', {}), code('HADES_ERR_AGENT_UNKNOWN'));
  });

  it('keeps how far an agent\'s clock is from the server\'s, from its heartbeat\'s time (the server\'s figure, not one the agent sends)', () => {
    const a = fleet.enroll(host('a', 'web'), cert(fleet.newAgentId())).id;
    time.advance(MINUTE);
    const now = T0 + MINUTE;
    assert.equal(fleet.heartbeat(a, { time: new Date(now - 86_400_000).toISOString(), cpu: 1 }), -86_400_000);
    assert.deepEqual(fleet.get(a)?.lastHeartbeat, { time: new Date(now - 86_400_000).toISOString(), cpu: 1, clock_offset_ms: -86_400_000 });
    assert.equal(fleet.heartbeat(a, { time: new Date(now + 1500).toISOString(), clock_offset_ms: 0 }), 1500, 'its own figure replaced');
    assert.equal((fleet.get(a)?.lastHeartbeat as Record<string, unknown>)['clock_offset_ms'], 1500);
    // No time, or one that is not an ISO 8601 UTC time: no figure, and none the agent gave.
    // A heartbeat as large as an agent may send, with its time: the server's figure does not count against it.
    const full = { time: new Date(now).toISOString(), pad: '' };
    full.pad = 'x'.repeat(64 * 1024 - JSON.stringify(full).length);
    assert.equal(fleet.heartbeat(a, full), 0);
    // Dates that Date.parse would roll over (February 30th, 24:00) are no time.
    for (const given of [undefined, 'yesterday', 1_700_000_000_000, '2026-12-02 10:00:00', '2026-12-02T10:00:00+01:00', '2030-02-30T10:00:00Z', '2026-12-02T24:00:00Z']) {
      assert.equal(fleet.heartbeat(a, { time: given, clock_offset_ms: 5 }), undefined, String(given));
      assert.equal((fleet.get(a)?.lastHeartbeat as Record<string, unknown>)['clock_offset_ms'], undefined);
    }
  });

  it('keeps online flags and the last heartbeat', () => {
    const a = fleet.enroll(host('a', 'web'), cert(fleet.newAgentId())).id;
    const b = fleet.enroll(host('b', 'db'), cert(fleet.newAgentId())).id;
    time.advance(MINUTE);
    fleet.markOnline(a, true);
    assert.deepEqual(fleet.list({ online: true }).map((x) => x.id), [a]);
    assert.deepEqual(fleet.list({ online: false }).map((x) => x.id), [b]);
    assert.equal(fleet.get(a)?.lastSeen, new Date(T0 + MINUTE).toISOString());
    const health = { plugins: [{ name: 'driver', state: 'running', cpu: 0.4, rss_mb: 12 }], drops: { ring_full: 3 }, cpu: 1.5 };
    time.advance(MINUTE);
    fleet.heartbeat(a, health);
    assert.deepEqual(fleet.get(a)?.lastHeartbeat, health);
    assert.equal(fleet.get(a)?.lastSeen, new Date(T0 + 2 * MINUTE).toISOString());
    assert.throws(() => fleet.heartbeat(a, { blob: 'x'.repeat(70_000) }), code('HADES_ERR_STREAM_MESSAGE_TOO_LARGE'));
    assert.throws(() => fleet.heartbeat(a, []), code('HADES_ERR_STREAM_MESSAGE_INVALID'));
    assert.throws(() => fleet.heartbeat(a, 'up'), code('HADES_ERR_STREAM_MESSAGE_INVALID'));
    assert.throws(() => fleet.heartbeat('ag_ffffffffffffffff', health), code('HADES_ERR_AGENT_UNKNOWN'));
    assert.throws(() => fleet.markOnline('ag_ffffffffffffffff', true), code('HADES_ERR_AGENT_UNKNOWN'));
    // Nesting no answer could serialise again is refused; one kept before that was (an older
    // server's) is shown as a coded note, so that it fails no listing.
    const deep = (n: number): unknown => (n === 0 ? 1 : [deep(n - 1)]);
    assert.throws(() => fleet.heartbeat(a, { deep: deep(100) }), code('HADES_ERR_STREAM_MESSAGE_INVALID'));
    db.prepare('UPDATE agents SET heartbeat = ? WHERE id = ?').run(`{"a":${'['.repeat(4000)}${']'.repeat(4000)}}`, b);
    assert.equal((fleet.get(b)?.lastHeartbeat as unknown as { code: string }).code, 'HADES_ERR_STREAM_MESSAGE_INVALID');
    assert.equal(fleet.list({}).length, 2);
    db.prepare('UPDATE agents SET heartbeat = NULL WHERE id = ?').run(b);
    // Going offline is not being heard from: last_seen stays the last heartbeat's time.
    time.advance(MINUTE);
    fleet.markOnline(a, false);
    assert.equal(fleet.get(a)?.online, false);
    assert.equal(fleet.get(a)?.lastSeen, new Date(T0 + 2 * MINUTE).toISOString());
    fleet.markOnline(a, true);
    fleet.markOnline(b, true);
    assert.equal(fleet.markAllOffline(), 2);
    assert.deepEqual(fleet.list({ online: true }), []);
  });

  it('lists by group, tags agents and keeps group configurations', () => {
    const a = fleet.enroll(host('a', 'web'), cert(fleet.newAgentId())).id;
    const b = fleet.enroll(host('b', 'db'), cert(fleet.newAgentId())).id;
    assert.deepEqual(fleet.list({ group: 'web' }).map((x) => x.id), [a]);
    assert.deepEqual(fleet.list().map((x) => x.hostname), ['a', 'b']);
    assert.deepEqual(fleet.setGroups(b, ['db', 'web']).groups, ['db', 'web']);
    assert.deepEqual(fleet.list({ group: 'web' }).map((x) => x.id), [a, b]);
    const tagged = fleet.setTags(a, { owner: 'web-team', env: 'prod' });
    assert.deepEqual(tagged.tags, { env: 'prod', owner: 'web-team' });
    assert.deepEqual(Object.keys(tagged.tags), ['env', 'owner']);
    assert.throws(() => fleet.setTags(a, { 'bad tag': 'x' }), code('HADES_ERR_API_INVALID_REQUEST'));
    assert.throws(() => fleet.setTags(a, { ok: 'line\nbreak' }), code('HADES_ERR_API_INVALID_REQUEST'));
    assert.throws(() => fleet.setTags('ag_ffffffffffffffff', { x: 'y' }), code('HADES_ERR_AGENT_UNKNOWN'));
    assert.throws(() => fleet.setGroups(a, []), code('HADES_ERR_INTERNAL'));

    assert.equal(fleet.groupConfig('web'), undefined);
    const yaml = 'agent:\n  heartbeat_s: 30\n';
    assert.deepEqual(fleet.setGroupConfig('web', yaml), { name: 'web', yaml, version: 1, updatedAt: new Date(T0).toISOString() });
    time.advance(MINUTE);
    assert.equal(fleet.setGroupConfig('web', 'agent: {}\n').version, 2);
    assert.deepEqual(fleet.groupConfig('web'), { name: 'web', yaml: 'agent: {}\n', version: 2, updatedAt: new Date(T0 + MINUTE).toISOString() });
    fleet.setGroupConfig('empty', '');
    assert.deepEqual(fleet.listGroups(), [
      { name: 'db', agents: 1 },
      { name: 'empty', agents: 0, version: 1, updatedAt: new Date(T0 + MINUTE).toISOString() },
      { name: 'web', agents: 2, version: 2, updatedAt: new Date(T0 + MINUTE).toISOString() },
    ]);
    fleet.revoke(b);
    assert.deepEqual(fleet.list({ revoked: false }).map((x) => x.id), [a]);
    assert.deepEqual(fleet.list({ revoked: true }).map((x) => x.id), [b]);
    assert.throws(() => fleet.setGroupConfig('no/slash', ''), code('HADES_ERR_INTERNAL'));
    // Removed and set again: the version goes on, so that one version names one text.
    assert.equal(fleet.deleteGroupConfig('web'), true);
    assert.equal(fleet.deleteGroupConfig('web'), false);
    assert.equal(fleet.setGroupConfig('web', 'agent: { heartbeat_s: 20 }\n').version, 3);
  });

  it('keeps a query result of several MiB, and fails a task whose result is too large to keep instead of leaving it to expire', () => {
    const a = fleet.enroll(host('big'), cert(fleet.newAgentId())).id;
    const big = fleet.createTask({ agentId: a, kind: 'query', params: { sql: 'SELECT * FROM processes' } });
    const rows = Array.from({ length: 20_000 }, (_, i) => ({ pid: i, cmdline: 'x'.repeat(100) }));
    assert.equal(fleet.complete(big.id, 'done', { rows, truncated: false }, a), true);
    assert.equal((fleet.getTask(big.id)?.result as { rows: unknown[] }).rows.length, 20_000, 'about 2.4 MB of rows, kept');
    const huge = fleet.createTask({ agentId: a, kind: 'query', params: { sql: 'SELECT * FROM processes' } });
    assert.equal(fleet.complete(huge.id, 'done', { rows: ['y'.repeat(9 * 1024 * 1024)] }, a), true);
    const failed = fleet.getTask(huge.id);
    assert.equal(failed?.status, 'failed');
    assert.equal((failed?.result as { code: string }).code, 'HADES_ERR_STREAM_MESSAGE_TOO_LARGE');
  });

  it('runs tasks through pending, sent and done, and expires the overdue', () => {
    const a = fleet.enroll(host('a'), cert(fleet.newAgentId())).id;
    const b = fleet.enroll(host('b'), cert(fleet.newAgentId())).id;
    const query = fleet.createTask({ agentId: a, kind: 'query', params: { sql: 'SELECT * FROM processes' }, createdBy: 'analyst' });
    assert.match(query.id, /^tk_[0-9a-f]{16}$/);
    assert.equal(query.status, 'pending');
    assert.equal(query.deadline, new Date(T0 + 10 * MINUTE).toISOString());
    time.advance(1);
    const inventory = fleet.createTask({ agentId: a, kind: 'inventory', ttlMs: MINUTE });
    assert.deepEqual(fleet.unfinishedTasks(a).map((t) => t.id), [query.id, inventory.id]);
    assert.deepEqual(fleet.unfinishedTasks(b), []);

    assert.equal(fleet.markSent(query.id), true);
    assert.equal(fleet.markSent(query.id), false);
    assert.equal(fleet.getTask(query.id)?.status, 'sent');
    assert.deepEqual(fleet.unfinishedTasks(a).map((t) => t.id), [query.id, inventory.id], 'a sent task without a result is sent again at the next connection');
    assert.equal(fleet.complete(query.id, 'done', { rows: [{ pid: 1 }] }, b), false, 'another agent cannot answer');
    assert.equal(fleet.complete(query.id, 'done', { rows: [{ pid: 1 }] }, a), true);
    assert.equal(fleet.complete(query.id, 'failed', { error: 'late' }), false, 'finished tasks stay finished');
    assert.deepEqual(fleet.getTask(query.id)?.result, { rows: [{ pid: 1 }] });
    assert.deepEqual(fleet.unfinishedTasks(a).map((t) => t.id), [inventory.id], 'finished tasks are not sent again');
    assert.equal(fleet.getTask(query.id)?.status, 'done');

    time.advance(MINUTE);
    assert.deepEqual(fleet.unfinishedTasks(a), [], 'overdue tasks are not sent');
    const restart = fleet.createTask({ agentId: a, kind: 'restart_plugin', params: { name: 'driver' }, deadline: T0 + 30 * MINUTE });
    assert.equal(restart.deadline, new Date(T0 + 30 * MINUTE).toISOString());
    assert.throws(() => fleet.createTask({ agentId: a, kind: 'inventory', deadline: T0 }), code('HADES_ERR_INTERNAL'));
    // Read after its deadline, a task is expired already (no wait for the housekeeping).
    assert.equal(fleet.getTask(inventory.id)?.status, 'expired');
    assert.equal(fleet.expireOverdue(), 0);
    assert.equal(fleet.complete(inventory.id, 'done', {}), false, 'a late answer to an expired task is dropped');
    assert.equal(fleet.expireOverdue(), 0);
    assert.equal(fleet.expireOverdue(T0 + 60 * MINUTE), 1);
    assert.equal(fleet.getTask(restart.id)?.status, 'expired');

    const level = fleet.createTask({ agentId: b, kind: 'log_level', params: { level: 'debug' } });
    assert.deepEqual(fleet.listTasks({ agentId: a }).map((t) => t.id), [restart.id, inventory.id, query.id]);
    assert.deepEqual(fleet.listTasks({ status: 'expired' }).map((t) => t.id), [restart.id, inventory.id]);
    assert.equal(fleet.listTasks({ limit: 2 }).length, 2);
    // A list's results are bounded together: the one that would pass the budget is left out, and named so.
    const budget = JSON.stringify({ rows: [{ pid: 1 }] }).length;
    const listed = fleet.listTasks({ agentId: a, resultChars: budget });
    assert.deepEqual(listed.find((t) => t.id === query.id)?.result, { rows: [{ pid: 1 }] });
    assert.equal(listed.find((t) => t.id === query.id)?.resultOmitted, undefined);
    const omitted = fleet.listTasks({ agentId: a, resultChars: budget - 1 }).find((t) => t.id === query.id);
    assert.equal(omitted?.result, undefined);
    assert.equal(omitted?.resultOmitted, true);
    assert.deepEqual(fleet.getTask(query.id)?.result, { rows: [{ pid: 1 }] }, 'one task alone has its result');
    // One left out takes none of the budget: a smaller result after it is still listed.
    const small = fleet.createTask({ agentId: a, kind: 'inventory' });
    const big = fleet.createTask({ agentId: a, kind: 'query', params: { sql: 'SELECT 1' } });
    fleet.complete(small.id, 'done', { rows: [] });
    fleet.complete(big.id, 'done', { rows: [{ text: 'x'.repeat(200) }] });
    const mixed = fleet.listTasks({ agentId: a, resultChars: budget });
    assert.equal(mixed.find((t) => t.id === big.id)?.resultOmitted, true);
    assert.deepEqual(mixed.find((t) => t.id === small.id)?.result, { rows: [] });
    fleet.revoke(b);
    assert.deepEqual(fleet.getTask(level.id)?.result, { error: 'agent revoked' });
    assert.equal(fleet.getTask(level.id)?.status, 'failed');
    // A result that comes after the deadline, before anything marked the task expired, is refused too.
    const late = fleet.createTask({ agentId: a, kind: 'inventory', ttlMs: MINUTE });
    time.advance(MINUTE + 1);
    assert.equal(fleet.complete(late.id, 'done', {}), false, 'past its deadline');
    assert.equal(fleet.getTask(late.id)?.status, 'expired');
    assert.throws(() => fleet.createTask({ agentId: b, kind: 'inventory' }), code('HADES_ERR_AGENT_REVOKED'));
    assert.throws(() => fleet.createTask({ agentId: 'ag_ffffffffffffffff', kind: 'inventory' }), code('HADES_ERR_AGENT_UNKNOWN'));
    assert.throws(() => fleet.createTask({ agentId: a, kind: 'shell' as 'query' }), code('HADES_ERR_INTERNAL'));
    // Tasks that ended go with the events' retention (their SQL and results would otherwise grow
    // the database for good); open ones stay whatever their age.
    const open = fleet.createTask({ agentId: a, kind: 'inventory', ttlMs: 60 * MINUTE });
    fleet.expireOverdue();
    const ended = fleet.listTasks({}).filter((t) => t.status !== 'pending' && t.status !== 'sent').length;
    assert.ok(ended >= 4);
    assert.equal(fleet.forgetEnded(T0 + 120 * MINUTE), ended);
    const left = fleet.listTasks({ agentId: a });
    assert.ok(left.some((t) => t.id === open.id));
    assert.deepEqual(left.filter((t) => t.status !== 'pending' && t.status !== 'sent'), []);
  });

  it('enrolls end to end: token, CSR, certificate, registry, then mutual TLS identity', async () => {
    const pki = await Pki.open(folder(), { hostnames: [], ips: [] });
    const tokens = new EnrollmentTokens(db, { now: time.now });
    const made = tokens.create({ ttlMs: MINUTE, group: 'web', createdBy: 'admin' });
    // The agent: its key pair and request.
    const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=web-1', keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } });
    // The gateway: check the token, sign, then consume and record in one transaction.
    const { group } = tokens.check(made.token);
    const id = fleet.newAgentId();
    const issued = await pki.signAgentCsr(csr.toString('pem'), id);
    const agent = db.transaction(() => {
      const used = tokens.consume(made.token, id);
      return fleet.enroll(host('web-1', group), { ...issued, agentId: id, tokenId: used.tokenId });
    })();
    assert.deepEqual(agent.groups, ['web']);
    // Each later connection: the peer certificate names the agent, the registry authorizes it.
    const identity = pki.agentIdentity(issued.certPem);
    assert.ok(identity !== undefined);
    assert.equal(fleet.authorize(identity.agentId, identity.fingerprint).id, id);
    fleet.revoke(id);
    assert.throws(() => fleet.authorize(identity.agentId, identity.fingerprint), code('HADES_ERR_AGENT_REVOKED'));
  });
});

describe('API tokens', () => {
  let db: Db;
  let time: ReturnType<typeof clock>;
  let api: ApiTokens;
  beforeEach(() => {
    db = openDatabase(':memory:');
    time = clock();
    api = new ApiTokens(db, { now: time.now });
  });

  it('creates hadesapi_<id>_<secret> tokens, stores only hashes, and authenticates them', () => {
    const made = api.create({ name: 'ci', role: 'analyst', createdBy: 'admin' });
    assert.match(made.token, /^hadesapi_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    assert.ok(!dump(db, 'api_tokens').includes(secretOf(made.token)));
    const principal = { id: made.id, name: 'ci', role: 'analyst' };
    assert.deepEqual(api.authenticate(`Bearer ${made.token}`), principal);
    assert.deepEqual(api.authenticate(`bearer  ${made.token}`), principal);
    assert.deepEqual(api.authenticate(made.token), principal);
    assert.equal(api.get(made.id)?.lastUsedAt, new Date(T0).toISOString());
  });

  it('refuses a token made with a lifetime once it has passed, and lists when it expires', () => {
    const made = api.create({ name: 'contractor', role: 'read-only', createdBy: 'admin', ttlMs: 3_600_000 });
    assert.equal(made.expiresAt, new Date(T0 + 3_600_000).toISOString());
    assert.equal(api.authenticate(made.token).id, made.id);
    assert.equal(api.get(made.id)?.expiresAt, made.expiresAt);
    time.advance(3_600_000);
    assert.throws(() => api.authenticate(made.token), code('HADES_ERR_API_UNAUTHENTICATED', /expired at/));
    assert.equal(api.create({ name: 'forever', role: 'admin', createdBy: 'admin' }).expiresAt, undefined);
  });

  it('orders roles admin > analyst > read-only', () => {
    const as = (role: Principal['role']): Principal => ({ id: 'x', name: 'x', role });
    assert.doesNotThrow(() => api.authorize(as('admin'), 'admin'));
    assert.doesNotThrow(() => api.authorize(as('admin'), 'read-only'));
    assert.doesNotThrow(() => api.authorize(as('analyst'), 'analyst'));
    assert.doesNotThrow(() => authorize(as('analyst'), 'read-only'));
    assert.throws(() => authorize(as('analyst'), 'admin'), code('HADES_ERR_API_FORBIDDEN', /needs the role admin/));
    assert.throws(() => authorize(as('read-only'), 'analyst'), code('HADES_ERR_API_FORBIDDEN', /needs the role analyst/));
    assert.equal(hasRole(as('read-only'), 'read-only'), true);
    assert.equal(hasRole(as('read-only'), 'admin'), false);
  });

  it('refuses missing, malformed, unknown, forged and revoked tokens', () => {
    const made = api.create({ name: 'ops', role: 'admin', createdBy: 'admin' });
    for (const bad of [undefined, '', 'Bearer ', 'Basic abc', 'hadesapi_x', `hades1_${made.id}_${secretOf(made.token)}`]) {
      assert.throws(() => api.authenticate(bad), code('HADES_ERR_API_UNAUTHENTICATED'), String(bad));
    }
    assert.throws(() => api.authenticate(`hadesapi_${made.id}_${'B'.repeat(43)}`), code('HADES_ERR_API_UNAUTHENTICATED', /unknown/));
    assert.throws(() => api.authenticate(`hadesapi_0000000000000000_${secretOf(made.token)}`), code('HADES_ERR_API_UNAUTHENTICATED', /unknown/));
    assert.equal(api.revoke(made.id), true);
    assert.equal(api.revoke(made.id), false);
    assert.throws(() => api.authenticate(made.token), code('HADES_ERR_API_UNAUTHENTICATED', /revoked/));
    assert.deepEqual(
      api.list().map((t) => [t.name, t.role, t.revokedAt]),
      [['ops', 'admin', new Date(T0).toISOString()]],
    );
    assert.throws(() => api.create({ name: 'x', role: 'root' as 'admin', createdBy: 'admin' }), code('HADES_ERR_INTERNAL'));
  });

  it('bootstraps a local admin token in a 0600 file and reuses it', () => {
    const file = path.join(folder(), 'credentials', 'admin.token');
    const first = api.bootstrapAdmin(file);
    assert.equal(first.created, true);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(readFileSync(file, 'utf8'), `${first.token}\n`);
    assert.equal(api.authenticate(first.token).role, 'admin');

    assert.equal(new ApiTokens(db).bootstrapAdmin(file).token, first.token);
    assert.deepEqual(api.bootstrapAdmin(file), { token: first.token, id: first.id, created: false });

    // A revoked token, or a database that no longer knows it, is replaced.
    api.revoke(first.id);
    const replaced = api.bootstrapAdmin(file);
    assert.equal(replaced.created, true);
    assert.match(replaced.reason ?? '', /revoked/);
    assert.equal(readFileSync(file, 'utf8').trim(), replaced.token);
    const fresh = new ApiTokens(openDatabase(':memory:')).bootstrapAdmin(file);
    assert.equal(fresh.created, true);
    assert.match(fresh.reason ?? '', /unknown/);
  });

  it('treats a token file others can read as leaked: revoked and replaced', () => {
    const file = path.join(folder(), 'admin.token');
    const first = api.bootstrapAdmin(file);
    chmodSync(file, 0o644);
    const next = api.bootstrapAdmin(file);
    assert.equal(next.created, true);
    assert.match(next.reason ?? '', /readable by others/);
    assert.notEqual(next.token, first.token);
    assert.throws(() => api.authenticate(first.token), code('HADES_ERR_API_UNAUTHENTICATED', /revoked/));
    assert.equal(statSync(file).mode & 0o777, 0o600);
    writeFileSync(file, 'garbage\n', { mode: 0o600 });
    assert.equal(api.bootstrapAdmin(file).created, true);
  });
});

describe('audit log', () => {
  it('records actions, newest first, with filters', () => {
    const db = openDatabase(':memory:');
    const time = clock();
    const audit = new AuditLog(db, { now: time.now });
    const first = audit.record({ actor: 'admin', action: 'enroll_token.create', target: '0123456789abcdef', details: { group: 'web', ttl_s: 3600 } });
    assert.deepEqual(first, { id: 1, at: new Date(T0).toISOString(), actor: 'admin', action: 'enroll_token.create', target: '0123456789abcdef', details: { group: 'web', ttl_s: 3600 } });
    time.advance(MINUTE);
    audit.record({ actor: 'admin', action: 'agent.revoke', target: 'ag_0123456789abcdef' });
    time.advance(MINUTE);
    audit.record({ actor: 'ci', action: 'group.config', target: 'web' });
    assert.deepEqual(audit.list({ limit: 10 }).map((e) => e.action), ['group.config', 'agent.revoke', 'enroll_token.create']);
    assert.deepEqual(audit.list({ limit: 10, since: new Date(T0 + MINUTE) }).map((e) => e.action), ['group.config', 'agent.revoke']);
    assert.deepEqual(audit.list({ limit: 10, since: new Date(T0 + MINUTE).toISOString() }).length, 2);
    assert.deepEqual(audit.list({ limit: 1 }).map((e) => e.action), ['group.config']);
    assert.deepEqual(audit.list({ limit: 10, beforeId: 3 }).map((e) => e.id), [2, 1]);
    assert.deepEqual(audit.list({ limit: 10, actor: 'ci' }).map((e) => e.id), [3]);
    assert.deepEqual(audit.list({ limit: 10, action: 'agent.revoke' }).map((e) => e.id), [2]);
    assert.throws(() => audit.list({ limit: 10, since: 'yesterday' }), code('HADES_ERR_STORE_QUERY'));
    assert.throws(() => audit.record({ actor: '', action: 'x' }), code('HADES_ERR_INTERNAL'));
  });

  it('never stores secrets', () => {
    const db = openDatabase(':memory:');
    const audit = new AuditLog(db);
    const tokens = new EnrollmentTokens(db);
    const api = new ApiTokens(db);
    const enroll = tokens.create({ ttlMs: MINUTE, createdBy: 'admin' });
    const key = api.create({ name: 'ci', role: 'admin', createdBy: 'admin' });
    const pem = '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n';
    const entry = audit.record({
      actor: 'admin',
      action: 'token.create',
      target: enroll.token,
      details: {
        token: enroll.token,
        tokenId: enroll.id,
        response: { apiToken: key.token, id: key.id },
        note: `made ${key.token} for ci`,
        list: [{ password: 'hunter2' }, { Authorization: `Bearer ${key.token}` }],
        key: pem,
        pem_text: pem,
        count: 2,
      },
    });
    assert.equal(entry.target, `hades1_${enroll.id}_${REDACTED}`);
    assert.deepEqual(entry.details, {
      token: REDACTED,
      tokenId: enroll.id,
      response: { apiToken: REDACTED, id: key.id },
      note: `made hadesapi_${key.id}_${REDACTED} for ci`,
      list: [{ password: REDACTED }, { Authorization: REDACTED }],
      key: REDACTED,
      pem_text: `${REDACTED}\n`,
      count: 2,
    });
    const stored = dump(db, 'audit_log');
    for (const secret of [secretOf(enroll.token), secretOf(key.token), 'hunter2', 'MIGHAgEAMBMG']) assert.ok(!stored.includes(secret), secret);
    assert.deepEqual(redactSecrets({ a: [1, null, true, 'x'] }), { a: [1, null, true, 'x'] });
    const big = audit.record({ actor: 'admin', action: 'x', details: { blob: 'y'.repeat(20_000) } });
    assert.equal(big.details?.truncated, true);
  });
});
