/**
 * Copies of installed shells and interpreters known by their content (src/agent/known-programs.ts)
 * and named on exec events (hades.process.copy_of): which files are the installed programs
 * (/etc/shells, known names in the program folders, links and hard links to them), which are
 * copies (any other path with the same content, the later of two listed files), new versions
 * after an upgrade (seen by watching the folder) with the earlier ones still known, and the first
 * exec of a new copy carrying the field although other hashing used up the read budget.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, linkSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { Accounts } from '../../src/agent/accounts.js';
import { EventBuilder } from '../../src/agent/builder.js';
import { decodeRecords, newDecodeCounters, type DriverRecord, type ExecRecord, type ExitRecord, type ForkRecord } from '../../src/agent/driver/records.js';
import type { SecurityRecord } from '../../src/agent/driver/security-records.js';
import { identityOf, RACY_MS } from '../../src/agent/hash-cache-file.js';
import { ExecutableHasher, type HasherOptions } from '../../src/agent/hasher.js';
import { KnownPrograms, type KnownProgramsOptions } from '../../src/agent/known-programs.js';
import { serializeEvent } from '../../src/agent/serialize.js';
import { ProcessTree } from '../../src/agent/tree.js';
import { checkEvent, type HadesEvent } from '../../src/common/events/index.js';
import { execRecord } from '../helpers/records.js';
import { wire } from '../helpers/builder.js';

const root = mkdtempSync(path.join(tmpdir(), 'hades-known-programs-'));
after(() => rmSync(root, { recursive: true, force: true }));

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** An executable file with this content. */
function program(file: string, content: Buffer): string {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, content);
  chmodSync(file, 0o755);
  return file;
}

/** A fake system: a shells file and a program folder with bash, python3.11 and the link python3. */
function system(name: string) {
  const dir = path.join(root, name);
  const bin = path.join(dir, 'bin');
  const bash = program(path.join(bin, 'bash'), randomBytes(300_000));
  const python = program(path.join(bin, 'python3.11'), randomBytes(200_000));
  symlinkSync('python3.11', path.join(bin, 'python3'));
  // Not executable, and a name no rule cares about: neither is known.
  writeFileSync(path.join(bin, 'perl'), randomBytes(1000));
  program(path.join(bin, 'grep'), randomBytes(1000));
  const shells = path.join(dir, 'shells');
  writeFileSync(shells, `# /etc/shells: valid login shells\n${bash}\n${path.join(dir, 'absent', 'zsh')}\n`);
  return { dir, bin, bash, python, shells };
}

const newHasher = (extra: Partial<HasherOptions> = {}) => new ExecutableHasher({ enabled: true, maxFileBytes: 1 << 24, maxBytesPerSecond: 64 << 20, ...extra });
const known = (s: ReturnType<typeof system>, hasher: ExecutableHasher, extra: Partial<KnownProgramsOptions> = {}) =>
  new KnownPrograms({ hasher, shellsFile: s.shells, folders: [s.bin], ...extra });

describe('known programs (copies of installed shells and interpreters)', () => {
  it('knows the installed files by content and names any other path with that content as a copy', async () => {
    const s = system('basic');
    const problems: string[] = [];
    const programs = known(s, newHasher(), { onProblem: (m) => problems.push(m) });
    await programs.refresh();
    const bashSha = sha(readFileSync(s.bash));
    assert.deepEqual(
      programs.known.map((k) => k.name).sort(),
      ['bash', 'python3.11'],
    );
    // A copy anywhere, under any name; and a hard link outside the listed files.
    const copy = path.join(root, 'basic-www', 'uploads', 'kworker');
    mkdirSync(path.dirname(copy), { recursive: true });
    copyFileSync(s.bash, copy);
    assert.deepEqual(programs.copyOf(copy, bashSha), { path: s.bash, name: 'bash' });
    assert.deepEqual(programs.copyOf('/usr/local/lib/.x/kworker', bashSha), { path: s.bash, name: 'bash' });
    // The installed file itself, and a link to it listed in the folder, are the program.
    assert.equal(programs.copyOf(s.bash, bashSha), undefined);
    const pythonSha = sha(readFileSync(s.python));
    assert.equal(programs.copyOf(s.python, pythonSha), undefined);
    assert.equal(programs.copyOf(path.join(s.bin, 'python3'), pythonSha), undefined);
    assert.deepEqual(programs.copyOf(copy, pythonSha), { path: s.python, name: 'python3.11' });
    // Other content is nothing.
    assert.equal(programs.copyOf(copy, 'e'.repeat(64)), undefined);
    // The sizes of the known files are the pre-check for a new file.
    assert.equal(programs.isCandidate(300_000), true);
    assert.equal(programs.isCandidate(200_000), true);
    assert.equal(programs.isCandidate(300_001), false);
    assert.deepEqual(problems, []);
  });

  it('treats a hard link in the folder as the program, and the later of two listed files with the same content as a copy', async () => {
    const s = system('links');
    await sleep(20);
    // perl and perl5.36.0 are one file (a hard link): both are perl.
    const perl = program(path.join(s.bin, 'perl5.36.0'), randomBytes(5000));
    linkSync(perl, path.join(s.bin, 'perl9'));
    // bash copied later under an interpreter's name, in the very folder: still a copy of bash.
    await sleep(20);
    const disguised = path.join(s.bin, 'lua5.4');
    copyFileSync(s.bash, disguised);
    const programs = known(s, newHasher());
    await programs.refresh();
    const perlSha = sha(readFileSync(perl));
    assert.equal(programs.copyOf(perl, perlSha), undefined);
    assert.equal(programs.copyOf(path.join(s.bin, 'perl9'), perlSha), undefined);
    assert.deepEqual(programs.copyOf(disguised, sha(readFileSync(s.bash))), { path: s.bash, name: 'bash' });
    assert.equal(programs.known.some((k) => k.name === 'lua5.4'), false);
  });

  it('learns a new version when an upgrade replaces the file (watched folder), and keeps knowing copies of the old one', async () => {
    const s = system('upgrade');
    const oldSha = sha(readFileSync(s.bash));
    const programs = known(s, newHasher(), { settleMs: 50 });
    await programs.start();
    try {
      // As dpkg does: the new file beside, renamed over the old one.
      const next = randomBytes(310_000);
      program(`${s.bash}.dpkg-new`, next);
      renameSync(`${s.bash}.dpkg-new`, s.bash);
      const deadline = Date.now() + 5000;
      while (programs.copyOf('/srv/x', sha(next)) === undefined && Date.now() < deadline) await sleep(25);
      assert.deepEqual(programs.copyOf('/srv/x', sha(next)), { path: s.bash, name: 'bash' }, 'the upgraded bash is known');
      assert.deepEqual(programs.copyOf('/srv/x', oldSha), { path: s.bash, name: 'bash' }, 'a copy of the bash before the upgrade still is one');
      assert.equal(programs.isCandidate(310_000), true);
      // A program installed later (python3.12), by name in the folder.
      const newer = randomBytes(4321);
      program(path.join(s.bin, 'python3.12'), newer);
      const until = Date.now() + 5000;
      while (programs.copyOf('/srv/y', sha(newer)) === undefined && Date.now() < until) await sleep(25);
      assert.deepEqual(programs.copyOf('/srv/y', sha(newer)), { path: path.join(s.bin, 'python3.12'), name: 'python3.12' });
    } finally {
      programs.close();
    }
  });

  it('forgets the oldest versions past maxVersions, and reports an installed file it cannot hash once', async () => {
    const s = system('limits');
    const problems: string[] = [];
    const programs = known(s, newHasher({ maxFileBytes: 250_000 }), { maxVersions: 1, onProblem: (m, level) => problems.push(`${level} ${m}`) });
    await programs.refresh();
    await programs.refresh();
    assert.deepEqual(programs.known.map((k) => k.name), ['python3.11']);
    assert.equal(problems.length, 1, problems.join('\n'));
    // Larger than hashing.max_file_mb is the configuration's choice (the node binary Hades runs on is one): said at info, not warned at every start.
    assert.match(problems[0]!, /^info .*bash not hashed \(too_large\)/);
  });
});

describe('exec events of copies (hades.process.copy_of)', () => {
  /** An EXEC v2 record of `exe`, with the identity the kernel would read. */
  function execOf(exe: string, pid: number): ExecRecord {
    const [decoded] = decodeRecords(execRecord({ pid, filename: exe, exe, comm: path.basename(exe).slice(0, 15) }), newDecodeCounters()) as [ExecRecord];
    const v = identityOf(statSync(exe, { bigint: true }));
    return { ...decoded, exeDev: v.dev, exeIno: v.ino, exeSize: v.size, exeMtimeNs: v.mtimeNs, exeCtimeNs: v.ctimeNs };
  }

  function builderWith(programs: KnownPrograms | undefined, hasher: ExecutableHasher): EventBuilder {
    const builder = new EventBuilder(new ProcessTree('test', 65536), new Accounts(), hasher, {
      host: { name: 'test', kernel: '6.18', architecture: 'x64' },
      agentVersion: 'test',
      ancestors: 8,
      ...(programs ? { knownPrograms: programs } : {}),
    });
    builder.bootTimeNs = 1_795_850_000_000_000_000;
    return builder;
  }

  /** A hasher whose read budget a big file has just used up (6 s of it), and the programs. */
  async function busySetup(name: string, urgent: boolean) {
    const s = system(name);
    // The installed files are hashed before the budget is used up (the agent does it at start).
    const programs = known(s, newHasher());
    await programs.refresh();
    const hasher = newHasher({ maxBytesPerSecond: 512 * 1024, ...(urgent ? { urgent: (size: number) => programs.isCandidate(size) } : {}) });
    const big = program(path.join(s.dir, 'other', 'big'), randomBytes(3 * 1024 * 1024));
    void hasher.hash(big);
    await sleep(50);
    const copy = path.join(s.dir, 'srv', 'lib', 'kworker');
    mkdirSync(path.dirname(copy), { recursive: true });
    copyFileSync(s.bash, copy);
    return { s, hasher, programs, copy };
  }

  it('the first exec of a new copy carries copy_of, although other hashing used up the read budget', async () => {
    const { hasher, programs, copy } = await busySetup('first-exec', true);
    try {
      const event = wire(await builderWith(programs, hasher).build(execOf(copy, 4100)));
      assert.equal(event['hades'].process.hash_status, 'ok');
      assert.deepEqual(event['hades'].process.copy_of, { path: path.join(root, 'first-exec', 'bin', 'bash'), name: 'bash' });
      assert.deepEqual(checkEvent(event).ok ? [] : checkEvent(event), []);
      assert.equal(hasher.stats.urgent, 1);
    } finally {
      hasher.close();
    }
  });

  it('without the size pre-check, the same first exec leaves before its hash and says nothing of a copy', async () => {
    const { hasher, programs, copy } = await busySetup('no-precheck', false);
    try {
      const event = wire(await builderWith(programs, hasher).build(execOf(copy, 4101)));
      assert.equal(event['hades'].process.hash_status, 'pending');
      assert.equal(event['hades'].process.copy_of, undefined);
    } finally {
      hasher.close();
    }
  });

  it('names no copy for the installed file, and serialises copy_of as JSON.stringify does', async () => {
    const s = system('serialize');
    const hasher = newHasher();
    const programs = known(s, hasher);
    await programs.refresh();
    const builder = builderWith(programs, hasher);
    const installed = await builder.build(execOf(s.bash, 4200));
    assert.equal(wire(installed)['hades'].process.copy_of, undefined);
    const copy = path.join(s.dir, 'web', 'x');
    mkdirSync(path.dirname(copy), { recursive: true });
    copyFileSync(s.python, copy);
    const event = await builder.build(execOf(copy, 4201));
    assert.equal(wire(event)['hades'].process.copy_of.name, 'python3.11');
    for (const e of [installed, event]) assert.equal(serializeEvent(e), JSON.stringify(e));
  });

  it("names the copy in its children's ancestors (exec, fork, exit and a security event's actor), as long as it runs the copy", async () => {
    const s = system('children');
    const hasher = newHasher();
    const programs = known(s, hasher);
    await programs.refresh();
    const builder = builderWith(programs, hasher);
    const copy = path.join(s.dir, 'srv', 'lib', '.x', 'kworker');
    mkdirSync(path.dirname(copy), { recursive: true });
    copyFileSync(s.bash, copy);
    const grep = path.join(s.bin, 'grep');
    const bash = { path: s.bash, name: 'bash' };
    const at = (record: ExecRecord, pid: number, ppid: number, startNs: number): ExecRecord => ({ ...record, pid, tid: pid, ppid, startNs, parentStartNs: 1e9 });
    const fork = (pid: number, childPid: number, startNs: number, childStartNs: number): ForkRecord => ({ type: 'fork', kind: 2, size: 64, ktimeNs: childStartNs, pid, tid: pid, flags: 0, missing: 0, childStartNs, parentStartNs: startNs, cgroupId: 0, childPid, ppid: 1, uid: 0, gid: 0, comm: 'kworker' });
    const exit = (pid: number, ppid: number, startNs: number): ExitRecord => ({ type: 'exit', kind: 3, size: 64, ktimeNs: startNs + 1e6, pid, tid: pid, flags: 0, missing: 0, startNs, exitCode: 0, ppid, comm: 'grep' });
    const events: HadesEvent[] = [];
    const build = async (record: DriverRecord) => {
      const event = await builder.build(record);
      events.push(event);
      return wire(event);
    };
    const shell = await build(at(execOf(copy, 4500), 4500, 1, 1e9));
    assert.deepEqual(shell['hades'].process.copy_of, bash);
    // A command typed into the copy: fork, exec of an installed program, its exit.
    const forked = await build(fork(4500, 4501, 1e9, 2e9));
    assert.deepEqual(forked['hades'].ancestors[0].copy_of, bash);
    const command = await build(at(execOf(grep, 4501), 4501, 4500, 2e9));
    assert.equal(command['hades'].process.copy_of, undefined);
    assert.equal(command['process'].parent.pid, 4500);
    assert.deepEqual(command['hades'].ancestors[0], { pid: 4500, entity_id: 'test-4500-100', name: 'kworker', executable: copy, args: execOf(copy, 4500).argv, copy_of: bash });
    assert.deepEqual(checkEvent(command).ok ? [] : checkEvent(command), []);
    // The actor of a security event of the command (a file it opens) carries the same ancestors.
    const actor = builder.actor({ pid: 4501, tid: 4501, ppid: 4500, startNs: 2e9, comm: 'grep', missing: 0, uid: 0, gid: 0, euid: 0, egid: 0, cgroupId: 0 } as unknown as SecurityRecord);
    assert.equal((actor.hades as { ancestors?: readonly object[] }).ancestors?.[0], (events.at(-1) as unknown as { hades: { ancestors: object[] } }).hades.ancestors[0], 'the very entry, shared');
    assert.deepEqual(wire({ hades: actor.hades } as never)['hades'].ancestors[0].copy_of, bash);
    // A subshell (a fork that does not execute) runs the copy too: both name it.
    await build(fork(4500, 4502, 1e9, 3e9));
    await build(fork(4502, 4503, 3e9, 4e9));
    const nested = await build(at(execOf(grep, 4503), 4503, 4502, 4e9));
    assert.deepEqual(nested['hades'].ancestors.slice(0, 2).map((a: { pid: number; copy_of: unknown }) => [a.pid, a.copy_of]), [[4502, bash], [4500, bash]]);
    const ended = await build(exit(4503, 4502, 4e9));
    assert.deepEqual(ended['hades'].ancestors[0].copy_of, bash);
    // The copy executes the installed bash (`exec bash`): its children no longer name a copy.
    const again = await build(at(execOf(s.bash, 4500), 4500, 1, 1e9));
    assert.equal(again['hades'].process.copy_of, undefined);
    await build(fork(4500, 4504, 1e9, 5e9));
    const after = await build(at(execOf(grep, 4504), 4504, 4500, 5e9));
    assert.equal(after['hades'].ancestors[0].executable, s.bash);
    assert.equal(after['hades'].ancestors[0].copy_of, undefined);
    // Its pid reused by another process of the same file: named again, by that process's exec.
    await build(exit(4500, 1, 1e9));
    const reused = await build(at(execOf(copy, 4500), 4500, 1, 6e9));
    assert.deepEqual(reused['hades'].process.copy_of, bash);
    await build(fork(4500, 4505, 6e9, 7e9));
    assert.deepEqual((await build(at(execOf(grep, 4505), 4505, 4500, 7e9)))['hades'].ancestors[0], { pid: 4500, entity_id: 'test-4500-600', name: 'kworker', executable: copy, args: execOf(copy, 4500).argv, copy_of: bash });
    // Byte for byte JSON.stringify, by the hand-written path (the ancestor entries' JSON made once).
    for (const e of events) assert.equal(serializeEvent(e), JSON.stringify(e));
    const original = JSON.stringify;
    let calls = 0;
    JSON.stringify = ((...args: Parameters<typeof JSON.stringify>) => (calls++, original(...args))) as typeof JSON.stringify;
    try {
      for (const e of events) serializeEvent(e);
    } finally {
      JSON.stringify = original;
    }
    assert.equal(calls, 0, 'no event of the copy and its children left to JSON.stringify');
  });

  it('asks the size pre-check only for versions not hashed yet: an executable seen before costs the cache lookup alone', async () => {
    const s = system('hot');
    // Versions younger than the racy window are not cached (hash-cache-file.ts): let them settle.
    await sleep(RACY_MS + 100);
    let asked = 0;
    const hasher = newHasher({ urgent: (size) => (asked++, programs.isCandidate(size)) });
    const programs = known(s, hasher);
    await programs.refresh();
    const builder = builderWith(programs, hasher);
    const record = execOf(s.python, 4300);
    await builder.build(record);
    const first = asked;
    for (let i = 0; i < 100; i++) {
      const built = builder.build({ ...record, pid: 4301 + i, tid: 4301 + i });
      assert.ok(!(built instanceof Promise), 'a known version is synchronous');
    }
    assert.equal(asked, first);
  });
});
