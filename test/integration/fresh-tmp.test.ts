/**
 * `hades events` against the real kernel, as root: a script dropped in a temporary folder and
 * sourced or read by an interpreter starts no program; file_open reports its first read by each
 * process other than its writer (hades.file.fresh). Then `hades rules match` over the captured
 * events: tmp_script_written_then_sourced fires on the shell's read only.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runHades } from '../helpers/cli.js';
import { captureEvents, type AnyEvent, type Capture } from '../helpers/events-session.js';
import { assertActor, python3, runChild, type ChildRun } from '../helpers/security-helpers.js';

const isRoot = process.getuid?.() === 0;
const skip = !isRoot && 'kernel events need root';

describe('a script written to a temporary folder and sourced', { skip }, () => {
  const tag = `hades-fresh-${process.pid}`;
  const shm = `/dev/shm/${tag}`;
  const own = `/dev/shm/${tag}-own`;
  const varTmp = `/var/tmp/${tag}`;
  const deep = `/tmp/${tag}/a/b`;
  let elsewhere = '';
  let capture: Capture;
  let writer: ChildRun;
  let sourced: ChildRun;
  let twice: ChildRun;
  let self: ChildRun;
  let notTmp: ChildRun;
  let deeper: ChildRun;
  let interp: ChildRun;
  let cat: ChildRun;
  let appender: ChildRun;
  let setuidWriter: ChildRun;
  let setuidSourced: ChildRun;
  let scripted: ChildRun;
  let redirected: ChildRun;
  let scriptFed: ChildRun;
  const suid = `/dev/shm/${tag}-suid`;
  let work = '';

  before(async () => {
    // Not a temporary folder (the project's own tree, watched by no FRESH prefix).
    work = mkdtempSync(path.join(process.cwd(), '.hades-fresh-'));
    elsewhere = path.join(work, 'x.sh');
    mkdirSync(deep, { recursive: true });
    capture = await captureEvents(['--action', 'exec,file_create,file_open'], async () => {
      writer = await runChild('/bin/sh', ['-c', 'printf "A=1\\n" > "$1"; printf "B=1\\n" > "$2"; printf "C=1\\n" > "$3"; printf "D=1\\n" > "$4"', 'sh', shm, varTmp, elsewhere, `${deep}/x`]);
      sourced = await runChild('/bin/bash', ['-c', `. ${shm}`]);
      // The same process twice: reported once (the second open is suppressed in the kernel).
      twice = await runChild('/bin/bash', ['-c', `. ${shm}; . ${shm}`]);
      // The writer reading back its own file: not reported.
      self = await runChild('/bin/bash', ['-c', `echo "E=1" > ${own}; . ${own}`]);
      // Written elsewhere, or two folders below a temporary folder: not remembered.
      notTmp = await runChild('/bin/bash', ['-c', `. ${elsewhere}`]);
      deeper = await runChild('/bin/bash', ['-c', `. ${deep}/x`]);
      // An interpreter reading it: reported (and matched by the rule).
      interp = await runChild(python3, ['-c', `exec(open('${varTmp}').read())`]);
      // Not a shell nor an interpreter: reported, not matched.
      cat = await runChild('/bin/cat', [shm]);
      // A reader that opens the file for writing first does not become its writer.
      appender = await runChild('/bin/bash', ['-c', `: >> ${shm}; . ${shm}`]);
      // Created with the setuid bit (reported wherever it is), then made plain and sourced.
      setuidWriter = await runChild(python3, ['-c', `import os; fd = os.open('${suid}', os.O_CREAT | os.O_WRONLY, 0o4700); os.write(fd, b'F=1\\n'); os.close(fd); os.chmod('${suid}', 0o600)`]);
      setuidSourced = await runChild('/bin/bash', ['-c', `. ${suid}`]);
      // A script file (not in a temporary folder) that reads the list another process wrote there:
      // reported by the driver, not matched by the rule (a script's input, not code sourced).
      const script = path.join(work, 'report.sh');
      writeFileSync(script, `while read l; do :; done < ${varTmp}\n`);
      scripted = await runChild('/bin/bash', [script]);
      // A shell fed the dropped file on its standard input: by a `bash -c` (its child opens the
      // redirection, then starts sh; `; true` keeps bash from starting sh in its own place), and
      // by a script.
      redirected = await runChild('/bin/bash', ['-c', `sh < ${shm}; true`]);
      const feeder = path.join(work, 'feed.sh');
      writeFileSync(feeder, `sh < ${varTmp}\n`);
      scriptFed = await runChild('/bin/bash', [feeder]);
    });
  });

  after(() => {
    for (const f of [shm, own, varTmp, suid]) rmSync(f, { force: true });
    rmSync(`/tmp/${tag}`, { recursive: true, force: true });
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const opensOf = (pid: number): AnyEvent[] => capture.events.filter((e) => e['event'].action === 'file_open' && e['process'].pid === pid);

  it('reports the first read of the dropped file by another process, with its writer, its age and the ancestry', () => {
    assert.equal(capture.status, 0, capture.stderr);
    for (const run of [writer, sourced, twice, self, notTmp, deeper, interp, cat]) assert.equal(run.status, 0, run.stderr);
    const [e] = opensOf(sourced.pid);
    assertActor(capture.events, e, sourced.pid, { executable: '/usr/bin/bash' });
    assert.equal(e['file'].path, shm);
    assert.equal(e['hades'].file.access, 'read');
    assert.equal(e['hades'].file.sensitive, undefined);
    assert.equal(e['hades'].file.fresh.writer_pid, writer.pid);
    assert.ok(e['hades'].file.fresh.age_ms >= 0 && e['hades'].file.fresh.age_ms < 60_000, JSON.stringify(e['hades'].file));
    assert.equal(opensOf(twice.pid).length, 1, 'a second read by the same process is not reported');
    const [p] = opensOf(interp.pid);
    assertActor(capture.events, p, interp.pid);
    assert.equal(p['file'].path, varTmp);
    assert.equal(p['hades'].file.fresh.writer_pid, writer.pid);
    assert.equal(opensOf(cat.pid).length, 1);
    assert.equal(opensOf(scripted.pid).length, 1);
  });

  it('keeps the writer of a file that a reader opens for writing first, and remembers a file created setuid', () => {
    for (const run of [appender, setuidWriter, setuidSourced, scripted, redirected, scriptFed]) assert.equal(run.status, 0, run.stderr);
    const [appended] = opensOf(appender.pid).filter((e) => e['hades'].file.fresh !== undefined);
    assert.ok(appended, JSON.stringify(opensOf(appender.pid)));
    assert.equal(appended['hades'].file.fresh.writer_pid, writer.pid);
    const [suidOpen] = opensOf(setuidSourced.pid);
    assert.ok(suidOpen, 'the setuid-created file sourced is reported');
    assert.equal(suidOpen['file'].path, suid);
    assert.equal(suidOpen['hades'].file.fresh.writer_pid, setuidWriter.pid);
  });

  it('does not report the writer reading its own file, nor files written elsewhere or deeper', () => {
    assert.deepEqual(opensOf(self.pid).map((e) => e['file'].path), []);
    assert.deepEqual(opensOf(notTmp.pid).map((e) => e['file'].path), []);
    assert.deepEqual(opensOf(deeper.pid).map((e) => e['file'].path), []);
    // the writer's own opens (for writing) are not reported either
    assert.deepEqual(opensOf(writer.pid).map((e) => e['file'].path), []);
  });

  it('hades rules match: tmp_script_written_then_sourced fires on the shell and the interpreter, not on cat', async () => {
    const file = path.join(work, 'events.ndjson');
    writeFileSync(file, capture.events.map((e) => JSON.stringify(e)).join('\n') + '\n');
    const r = await runHades(['rules', 'match', file, '--json'], { timeoutMs: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    const matches = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { rule: { id: string }; process?: { pid?: number } });
    const pids = matches.filter((m) => m.rule.id === 'tmp_script_written_then_sourced').map((m) => m.process?.pid);
    assert.ok(pids.includes(sourced.pid), JSON.stringify(matches.map((m) => [m.rule.id, m.process?.pid])));
    assert.ok(pids.includes(twice.pid));
    assert.ok(pids.includes(interp.pid));
    assert.ok(pids.includes(appender.pid));
    for (const pid of [cat.pid, self.pid, notTmp.pid, deeper.pid, writer.pid, scripted.pid]) assert.ok(!pids.includes(pid), `pid ${pid}`);
    // One alert for one redirection: the `bash -c` child's open raises the sourced rule and the
    // fed-to-shell rule leaves it alone; a script's redirection is the fed-to-shell rule's.
    const parentOf = new Map(capture.events.filter((e) => e['process']?.parent?.pid !== undefined).map((e) => [e['process'].pid as number, e['process'].parent.pid as number]));
    const under = (pid: number) => matches.filter((m) => m.process?.pid !== undefined && parentOf.get(m.process.pid) === pid).map((m) => m.rule.id);
    assert.deepEqual(under(redirected.pid), ['tmp_script_written_then_sourced'], JSON.stringify(matches.map((m) => [m.rule.id, m.process?.pid])));
    assert.deepEqual(under(scriptFed.pid), ['tmp_script_written_then_fed_to_shell']);
    // not a sensitive file: the sensitive files' rules stay quiet
    assert.deepEqual(matches.filter((m) => m.rule.id.startsWith('sensitive_') || m.rule.id.includes('shadow')).map((m) => m.rule.id), []);
  });
});
