/** driver.sensitive_files: pattern expansion, identities as the kernel numbers them, and what changed between two expansions. */
import assert from 'node:assert/strict';
import { linkSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { SensitiveFiles, expandPattern, mountDevOf, parseMountinfo, secretKey } from '../../src/agent/sensitive-files.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'hades-sensitive-'));
const touch = (rel: string) => {
  mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
  writeFileSync(path.join(root, rel), 'k\n');
};
touch('home/alice/.ssh/id_ed25519');
touch('home/alice/.ssh/id_ed25519.pub');
touch('home/bob/.ssh/id_rsa');
touch('home/bob/.ssh/authorized_keys');
touch('home/carol/notes');
touch('etc/shadow');
mkdirSync(path.join(root, 'etc/ssh_host_dir_key'), { recursive: true });

after(() => rmSync(root, { recursive: true, force: true }));

describe('sensitive files', () => {
  it('expands * and ? within one component, in name order, and names nothing under a missing folder', async () => {
    assert.deepEqual(await expandPattern(`${root}/home/*/.ssh/id_*`), [`${root}/home/alice/.ssh/id_ed25519`, `${root}/home/alice/.ssh/id_ed25519.pub`, `${root}/home/bob/.ssh/id_rsa`]);
    assert.deepEqual(await expandPattern(`${root}/home/b?b/.ssh/*`), [`${root}/home/bob/.ssh/authorized_keys`, `${root}/home/bob/.ssh/id_rsa`]);
    assert.deepEqual(await expandPattern(`${root}/nowhere/*/x`), []);
    // regular-expression characters in names are literal
    assert.deepEqual(await expandPattern(`${root}/home/alice/.ssh/id_ed25519.p*`), [`${root}/home/alice/.ssh/id_ed25519.pub`]);
  });

  it('registers regular files only, drops the ! exclusions, and gives the kernel form of the device', async () => {
    const files = new SensitiveFiles([`${root}/home/*/.ssh/id_*`, `!${root}/home/*/.ssh/id_*.pub`, `${root}/etc/shadow`, `${root}/etc/ssh_host_*_key`, `${root}/etc/missing`], '/nonexistent');
    const { added, removed, skipped } = await files.resolve();
    assert.deepEqual(added.map((f) => f.path).sort(), [`${root}/etc/shadow`, `${root}/home/alice/.ssh/id_ed25519`, `${root}/home/bob/.ssh/id_rsa`]);
    assert.deepEqual([removed, skipped], [[], 0]);
    const st = statSync(`${root}/etc/shadow`, { bigint: true });
    const shadow = added.find((f) => f.path.endsWith('/etc/shadow'));
    assert.ok(shadow);
    assert.equal(shadow.ino, st.ino);
    // glibc's encoding (major bits 8-19, minor bits 0-7 and 20-31) to major << 20 | minor
    const major = Number((st.dev >> 8n) & 0xfffn);
    const minor = Number((st.dev & 0xffn) | ((st.dev >> 12n) & 0xfff00n));
    assert.equal(shadow.dev, ((major << 20) | minor) >>> 0);
    assert.equal(files.lookup(shadow.dev, Number(shadow.ino)), `${root}/etc/shadow`);
    assert.equal(files.lookup(shadow.dev + 1, Number(shadow.ino)), undefined);
    const key = new DataView(secretKey(shadow).buffer);
    assert.deepEqual([key.getBigUint64(0, true), key.getUint32(8, true), key.getUint32(12, true)], [st.ino, shadow.dev, 0]);
  });

  it('tells what a rename over a registered file changed: the old identity goes, the new one comes', async () => {
    const files = new SensitiveFiles([`${root}/etc/shadow`], '/nonexistent');
    const [first] = (await files.resolve()).added;
    assert.deepEqual((await files.resolve()).added, [], 'nothing new the second time');
    writeFileSync(`${root}/etc/nshadow`, 'new\n');
    renameSync(`${root}/etc/nshadow`, `${root}/etc/shadow`);
    const { added, removed } = await files.resolve();
    assert.deepEqual(removed, [first]);
    assert.equal(added.length, 1);
    assert.notEqual(added[0]?.ino, first?.ino);
  });

  it('keeps one entry for a file named twice (a hard link), under the first name', async () => {
    linkSync(`${root}/home/bob/.ssh/id_rsa`, `${root}/home/bob/.ssh/id_rsa_link`);
    const files = new SensitiveFiles([`${root}/home/bob/.ssh/id_rsa`, `${root}/home/bob/.ssh/id_rsa_link`], '/nonexistent');
    assert.deepEqual((await files.resolve()).added.map((f) => f.path), [`${root}/home/bob/.ssh/id_rsa`]);
  });

  it('also registers the device mountinfo shows for the mount holding the file, when it differs (btrfs subvolumes)', async () => {
    const mountinfo = path.join(root, 'mountinfo');
    writeFileSync(mountinfo, `22 1 8:1 / / rw - ext4 /dev/sda1 rw\n40 22 0:45 /@home ${root}/home rw - btrfs /dev/sdb rw\n`);
    const files = new SensitiveFiles([`${root}/home/bob/.ssh/id_rsa`], mountinfo);
    const { added } = await files.resolve();
    // stat()'s device and the mount's 0:45, one inode
    assert.equal(added.length, 2);
    assert.ok(added.some((f) => f.dev === 45) && added.some((f) => f.dev !== 45));
    assert.equal(new Set(added.map((f) => f.ino)).size, 1);
  });

  it('reads mountinfo mount points with their escapes, and picks the deepest mount holding a path', () => {
    const mounts = parseMountinfo('22 1 8:1 / / rw - ext4 /dev/sda1 rw\n30 22 259:3 / /srv/my\\040data rw - xfs /dev/nvme0n1p3 rw\n31 22 0:50 / /srv rw - tmpfs tmpfs rw\nbroken line\n');
    assert.deepEqual(mounts.map((m) => m.point), ['/', '/srv/my data', '/srv']);
    assert.equal(mountDevOf(mounts, '/srv/my data/key'), ((259 << 20) | 3) >>> 0);
    assert.equal(mountDevOf(mounts, '/srv/other'), 50);
    assert.equal(mountDevOf(mounts, '/srvx/file'), (8 << 20) | 1);
  });

  it('says which file events concern a pattern: those in the folders it can name', () => {
    const files = new SensitiveFiles(['/etc/shadow', '/home/*/.ssh/id_*', '!/home/*/.ssh/id_*.pub']);
    assert.equal(files.concerns('/etc/nshadow'), true);
    assert.equal(files.concerns('/home/alice/.ssh/id_new'), true);
    assert.equal(files.concerns('/home/alice/.ssh/sub/x'), false);
    assert.equal(files.concerns('/etc/ssh/sshd_config'), false);
    assert.equal(files.concerns('/tmp/x'), false);
  });
});
