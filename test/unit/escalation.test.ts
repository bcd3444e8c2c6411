/**
 * EventBuilder.escalation: the privilege_change event of an exec that turns a non-root process
 * into root without a setuid-root executable or an allowed program. The kernel cannot be made to
 * do that without an exploit, so the records are built here; the integration test
 * (test/integration/security.test.ts) checks the negative case for real.
 */
import assert from 'node:assert/strict';
import { chmodSync, chownSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { checkEvent, type HadesEvent } from '../../src/common/events/index.js';
import { decodeRecords, newDecodeCounters, MissingField, RecordFlag, type ExecRecord } from '../../src/agent/driver/records.js';
import { execRecord } from '../helpers/records.js';
import { newBuilder, wire } from '../helpers/builder.js';




describe('EventBuilder.escalation (exec that gains root)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'hades-escalation-'));
  const plain = path.join(dir, 'plain');
  const setuidRoot = path.join(dir, 'setuid-root');
  const setuidOther = path.join(dir, 'setuid-other');
  const isRoot = process.getuid?.() === 0;
  before(() => {
    copyFileSync('/bin/true', plain);
    chmodSync(plain, 0o755);
    if (isRoot) {
      copyFileSync('/bin/true', setuidRoot);
      chmodSync(setuidRoot, 0o4755);
      copyFileSync('/bin/true', setuidOther);
      chownSync(setuidOther, 65534, 65534);
      chmodSync(setuidOther, 0o4755);
    }
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** An exec record of EXE by pid 700 after which the process is root (euid 0, uid 1000). */
  function rootExec(exe: string, extra: Partial<ExecRecord> = {}): ExecRecord {
    const [decoded] = decodeRecords(execRecord({ pid: 700, filename: exe, exe }), newDecodeCounters()) as [ExecRecord];
    return { ...decoded, uid: 1000, euid: 0, suid: 0, fsuid: 0, gid: 1000, egid: 1000, ...extra };
  }
  const user = { uid: 1000, gid: 1000, euid: 1000, egid: 1000 };
  const escalate = (exe: string, credsBefore: typeof user | undefined, extra: Partial<ExecRecord> = {}, allowed: readonly string[] = []) => {
    const builder = newBuilder();
    const r = rootExec(exe, extra);
    const exec = builder.build(r) as HadesEvent;
    const event = builder.escalation(r, credsBefore, exec, new Set(allowed));
    return { event: event && wire(event), exec: wire(exec) };
  };

  it('reports a non-root process that is root after exec of a plain file', () => {
    const { event, exec } = escalate(plain, user);
    assert.ok(event);
    assert.deepEqual(checkEvent(event).ok ? [] : checkEvent(event), []);
    assert.equal(event['event'].action, 'privilege_change');
    assert.deepEqual(event['hades'].privilege, {
      call: 'exec',
      reason: 'root_without_setuid',
      before: user,
      after: { uid: 1000, gid: 1000, euid: 0, egid: 1000, suid: 0, sgid: 0, fsuid: 0, fsgid: 0 },
    });
    assert.deepEqual(event['process'], exec['process']);
    assert.equal(event['hades'].ancestry, exec['hades'].ancestry);
  });

  it('reports an executable that cannot be checked (gone)', () => {
    assert.ok(escalate(path.join(dir, 'gone'), user).event);
  });

  it('does not report what is no escalation', () => {
    assert.equal(escalate(plain, undefined).event, undefined, 'credentials before unknown');
    assert.equal(escalate(plain, { ...user, euid: 0 }).event, undefined, 'already root');
    assert.equal(escalate(plain, user, { euid: 1000 }).event, undefined, 'not root after');
    assert.equal(escalate(plain, user, { missing: MissingField.creds }).event, undefined, 'credentials after unknown');
    assert.equal(escalate(plain, user, {}, [plain]).event, undefined, 'an allowed program');
  });

  it('does not report an exec the driver saw as setuid-root, but does one of a setuid executable of another owner', () => {
    // The driver reads the executed inode's mode and owner in the kernel and sets the flag.
    assert.equal(escalate(setuidRoot, user, { flags: RecordFlag.exeSetuidRoot }).event, undefined);
    assert.ok(escalate(setuidOther, user, { flags: 0 }).event);
  });
});
