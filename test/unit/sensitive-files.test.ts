/** driver.sensitive_files: pattern expansion, identities as the kernel numbers them, and what changed between two expansions. */
import assert from 'node:assert/strict';
import { linkSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { MAX_PER_FOLDER, SensitiveFiles, expandPattern, mountDevOf, parseMountinfo, secretKey, type SensitiveFile } from '../../src/agent/sensitive-files.js';

const named = async (files: SensitiveFiles): Promise<SensitiveFile[]> => [...(await files.resolve()).files.values()];

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
    const { files: found, skipped } = await files.resolve();
    const added = [...found.values()];
    assert.deepEqual(added.map((f) => f.path).sort(), [`${root}/etc/shadow`, `${root}/home/alice/.ssh/id_ed25519`, `${root}/home/bob/.ssh/id_rsa`]);
    assert.equal(skipped, 0);
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

  it('names the new identity after a rename over a registered file, and forgets the old one', async () => {
    const files = new SensitiveFiles([`${root}/etc/shadow`], '/nonexistent');
    const [first] = await named(files);
    assert.ok(first);
    writeFileSync(`${root}/etc/nshadow`, 'new\n');
    renameSync(`${root}/etc/nshadow`, `${root}/etc/shadow`);
    const [second] = await named(files);
    assert.notEqual(second?.ino, first.ino);
    assert.equal(files.lookup(first.dev, Number(first.ino)), undefined);
    assert.equal(files.lookup(first.dev, Number(second?.ino)), `${root}/etc/shadow`);
  });

  it('before the next expansion, tells a registered file moved elsewhere from a new file given its freed inode number', async (t) => {
    touch('etc/gshadow');
    const files = new SensitiveFiles([`${root}/etc/gshadow`], '/nonexistent');
    const [old] = await named(files);
    assert.ok(old);
    // Still at its path: the registration holds whatever path opened it (a hard link).
    linkSync(`${root}/etc/gshadow`, `${root}/etc/gshadow.link`);
    assert.equal(files.lookup(old.dev, Number(old.ino), `${root}/etc/gshadow.link`), `${root}/etc/gshadow`);
    // Moved away (`mv /etc/gshadow /tmp/g`): the same inode, born when it was.
    renameSync(`${root}/etc/gshadow`, `${root}/etc/moved`);
    assert.equal(files.lookup(old.dev, Number(old.ino), `${root}/etc/moved`), `${root}/etc/gshadow`);
    // Replaced, and its inode freed: a file that cannot be looked at keeps the registration.
    writeFileSync(`${root}/etc/gshadow.new`, 'new\n');
    renameSync(`${root}/etc/gshadow.new`, `${root}/etc/gshadow`);
    rmSync(`${root}/etc/moved`);
    rmSync(`${root}/etc/gshadow.link`);
    assert.equal(files.lookup(old.dev, Number(old.ino), `${root}/etc/gone`), `${root}/etc/gshadow`);
    // A new file given the freed inode number (ext4 hands it out again soon): not the secret.
    let reused: string | undefined;
    for (let i = 0; i < 64 && reused === undefined; i++) {
      const candidate = `${root}/etc/default-${i}`;
      writeFileSync(candidate, 'x\n');
      if (statSync(candidate, { bigint: true }).ino === old.ino) reused = candidate;
    }
    if (reused === undefined || statSync(reused, { bigint: true }).birthtimeNs === 0n) {
      t.diagnostic('this file system gave the inode number to no new file (or tells no birth time): the reuse case is not exercised');
      return;
    }
    assert.equal(files.lookup(old.dev, Number(old.ino), reused), undefined);
  });

  it('leaves out paths through a symbolic link below the first wildcard (a user pointing ~/.ssh/id_x at a file every process opens)', async () => {
    touch('home/mallory/.ssh/id_real');
    symlinkSync('/etc/hostname', path.join(root, 'home/mallory/.ssh/id_link'));
    mkdirSync(path.join(root, 'home/trudy'));
    symlinkSync('/etc', path.join(root, 'home/trudy/.ssh'));
    const files = new SensitiveFiles([`${root}/home/*/.ssh/id_*`, `${root}/home/*/.ssh/hostname`], '/nonexistent');
    const paths = (await named(files)).map((f) => f.path);
    assert.ok(paths.includes(`${root}/home/mallory/.ssh/id_real`));
    assert.deepEqual(paths.filter((p) => p.includes('mallory/.ssh/id_link') || p.includes('trudy')), []);
    // Above the first wildcard the administrator decides: a linked fixed part is followed.
    symlinkSync(path.join(root, 'home'), path.join(root, 'homes'));
    assert.ok((await named(new SensitiveFiles([`${root}/homes/bob/.ssh/id_rsa`], '/nonexistent'))).length === 1);
  });

  it(`takes at most ${MAX_PER_FOLDER} files from one folder, and counts the others`, async () => {
    for (let i = 0; i < MAX_PER_FOLDER + 5; i++) touch(`home/flood/.ssh/id_${String(i).padStart(3, '0')}`);
    const files = new SensitiveFiles([`${root}/home/flood/.ssh/id_*`, `${root}/etc/shadow`], '/nonexistent');
    const { files: found, skipped } = await files.resolve();
    assert.equal(skipped, 5);
    assert.equal(found.size, MAX_PER_FOLDER + 1, 'the other folders are untouched');
  });

  it('keeps one entry for a file named twice (a hard link), under the first name', async () => {
    linkSync(`${root}/home/bob/.ssh/id_rsa`, `${root}/home/bob/.ssh/id_rsa_link`);
    const files = new SensitiveFiles([`${root}/home/bob/.ssh/id_rsa`, `${root}/home/bob/.ssh/id_rsa_link`], '/nonexistent');
    assert.deepEqual((await named(files)).map((f) => f.path), [`${root}/home/bob/.ssh/id_rsa`]);
  });

  it('also registers the device mountinfo shows for the mount holding the file, when it differs (btrfs subvolumes)', async () => {
    const mountinfo = path.join(root, 'mountinfo');
    writeFileSync(mountinfo, `22 1 8:1 / / rw - ext4 /dev/sda1 rw\n40 22 0:45 /@home ${root}/home rw - btrfs /dev/sdb rw\n`);
    const files = new SensitiveFiles([`${root}/home/bob/.ssh/id_rsa`], mountinfo);
    const added = await named(files);
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

  it('says which file events concern a pattern: those in its folders, or to a folder on the way', () => {
    const files = new SensitiveFiles(['/etc/shadow', '/home/*/.ssh/id_*', '!/home/*/.ssh/id_*.pub']);
    assert.equal(files.concerns('/etc/nshadow'), true);
    assert.equal(files.concerns('/home/alice/.ssh/id_new'), true);
    // mv ~/.ssh.new ~/.ssh, and a new home folder
    assert.equal(files.concerns('/home/alice/.ssh'), true);
    assert.equal(files.concerns('/home/carol'), true);
    assert.equal(files.concerns('/home/alice/.ssh/sub/x'), false);
    assert.equal(files.concerns('/home/alice/notes'), false);
    assert.equal(files.concerns('/etc/ssh/sshd_config'), false);
    assert.equal(files.concerns('/tmp/x'), false);
  });
});
