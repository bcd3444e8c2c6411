/**
 * Processes whose threads and files make the cn_proc backend work harder than eBPF, run for real
 * as root on both backends: a process outlives its main thread (pthread_exit() in main) and an
 * exec from another thread replaces the main thread (de_thread) without ending the process; and
 * files whose /proc links end in " (deleted)" (the kernel's mark of a removed name, or a name
 * that ends so), as the executable and on standard input.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, linkSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { captureEvents, run, withMarker, type AnyEvent, type Capture } from '../helpers/events-session.js';

const isRoot = process.getuid?.() === 0;
const hasCc = spawnSync('cc', ['--version'], { stdio: 'ignore' }).status === 0;
const skip = (!isRoot && 'kernel events need root') || (!hasCc && 'no C compiler (cc)');

/**
 * thr MODE MARKER: the main thread starts a worker and ends with pthread_exit() (mode "live": it
 * waits for the worker instead, alongside three idle threads; "late": once its standard input is
 * closed), and the worker, after 0.6 s (mode "stdin": once its standard input is closed; "late":
 * its descriptor 3), ends (late: exit(6)) or:
 * exit: exit(7); exec, live: executes a shell that sleeps 0.4 s and exits with 4 (its $0
 * MARKER-sleep); fork: runs a shell that sleeps 0.3 s ($0 MARKER-child) and waits for it, then
 * exit(5); stdin: exit(9).
 */
const THR_C = String.raw`
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
static const char *mode, *marker;
static void *idle(void *a) { (void)a; sleep(30); return NULL; }
static void *worker(void *a)
{
	char tag[128];
	(void)a;
	if (!strcmp(mode, "stdin") || !strcmp(mode, "late")) {
		char b[16];
		int fd = !strcmp(mode, "late") ? 3 : 0;
		while (read(fd, b, sizeof(b)) > 0)
			;
		exit(fd ? 6 : 9);
	}
	usleep(600000);
	if (!strcmp(mode, "exec") || !strcmp(mode, "live")) {
		snprintf(tag, sizeof(tag), "%s-sleep", marker);
		execl("/bin/sh", "sh", "-c", "sleep 0.4; exit 4", tag, (char *)NULL);
		_exit(100);
	}
	if (!strcmp(mode, "fork")) {
		pid_t p = fork();
		if (p == 0) {
			snprintf(tag, sizeof(tag), "%s-child", marker);
			execl("/bin/sh", "sh", "-c", "sleep 0.3; exit 0", tag, (char *)NULL);
			_exit(100);
		}
		waitpid(p, NULL, 0);
		exit(5);
	}
	exit(7);
}
int main(int argc, char **argv)
{
	pthread_t t;
	if (argc < 3)
		return 2;
	mode = argv[1];
	marker = argv[2];
	pthread_create(&t, NULL, worker, NULL);
	if (!strcmp(mode, "late")) {
		char b[16];
		while (read(0, b, sizeof(b)) > 0)
			;
	}
	if (!strcmp(mode, "live")) {
		pthread_t i[3];
		for (int n = 0; n < 3; n++)
			pthread_create(&i[n], NULL, idle, NULL);
		pthread_join(t, NULL);
		return 0;
	}
	pthread_exit(NULL);
}
`;

interface Ran {
  pid: number;
  code: number | null;
}

/** Runs a command to completion, with its pid. */
function runPid(command: string, args: readonly string[]): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', (code) => resolve({ pid: child.pid ?? 0, code }));
  });
}

const ofPid = (events: readonly AnyEvent[], action: string, pid: number): AnyEvent[] => events.filter((e) => e['event']?.action === action && e['process']?.pid === pid);
const ms = (e: AnyEvent | undefined): number => Date.parse(String(e?.['@timestamp']));

for (const backend of ['ebpf', 'cnproc'] as const) {
  describe(`threads and the process exit, --backend ${backend}`, { skip }, () => {
    const marker = `thr${randomBytes(4).toString('hex')}`;
    const dir = mkdtempSync(path.join(tmpdir(), 'hades-thr-'));
    const thr = path.join(dir, 'thr');
    const ran: Record<string, Ran> = {};
    let seeded = 0;
    let capture: Capture;

    before(async () => {
      writeFileSync(path.join(dir, 'thr.c'), THR_C);
      const cc = spawnSync('cc', ['-O1', '-pthread', '-o', thr, path.join(dir, 'thr.c')], { encoding: 'utf8' });
      assert.equal(cc.status, 0, cc.stderr);
      // Started before hades: its main thread has ended by the time the driver starts.
      const early = spawn(thr, ['stdin', `${marker}-stdin`], { stdio: ['pipe', 'ignore', 'ignore'] });
      seeded = early.pid ?? 0;
      const earlyDone = new Promise<number | null>((resolve) => early.on('close', resolve));
      // Started before hades too, its main thread ending while hades watches (the driver has no
      // count of its threads: cn_proc reads /proc), and its worker later.
      const late = spawn(thr, ['late', `${marker}-late`], { stdio: ['pipe', 'ignore', 'ignore', 'pipe'] });
      const lateDone = new Promise<number | null>((resolve) => late.on('close', resolve));
      await new Promise((r) => setTimeout(r, 300));
      capture = await captureEvents(['--backend', backend, '--action', 'exec,fork,exit'], async () => {
        for (const mode of ['exit', 'exec', 'fork', 'live']) ran[mode] = await runPid(thr, [mode, `${marker}-${mode}`]);
        early.stdin?.end();
        ran['stdin'] = { pid: seeded, code: await earlyDone };
        late.stdin?.end();
        await new Promise((r) => setTimeout(r, 500));
        (late.stdio[3] as NodeJS.WritableStream).end();
        ran['late'] = { pid: late.pid ?? 0, code: await lateDone };
        await new Promise((r) => setTimeout(r, 300));
      });
    });

    after(() => rmSync(dir, { recursive: true, force: true }));

    it('ran the programs as written', () => {
      assert.equal(capture.status, 0, capture.stderr);
      assert.deepEqual(capture.invalid, []);
      assert.deepEqual(Object.fromEntries(Object.entries(ran).map(([k, v]) => [k, v.code])), { exit: 7, exec: 4, fork: 5, live: 4, stdin: 9, late: 6 });
    });

    it('reports a process whose main thread ended first once, at its last thread\'s exit, with that exit code', () => {
      const { pid } = ran['exit'] as Ran;
      const exits = ofPid(capture.events, 'exit', pid);
      assert.equal(exits.length, 1, JSON.stringify(exits));
      assert.equal(exits[0]?.['process'].exit_code, 7);
      const exec = ofPid(capture.events, 'exec', pid)[0];
      assert.ok(exec, 'its exec');
      assert.ok(ms(exits[0]) - ms(exec) >= 500, `the exit came when the worker ended, 0.6 s after the start: ${ms(exits[0]) - ms(exec)} ms`);
      assert.equal(exits[0]?.['process'].entity_id, exec['process'].entity_id);
    });

    it('reports no exit when a thread executes a program (the process lives on), and one when that ends', () => {
      for (const mode of ['exec', 'live']) {
        const { pid } = ran[mode] as Ran;
        const exits = ofPid(capture.events, 'exit', pid);
        assert.equal(exits.length, 1, `${mode}: ${JSON.stringify(exits)}`);
        const shell = ofPid(capture.events, 'exec', pid).find((e) => (e['process'].args as string[] | undefined)?.includes(`${marker}-${mode}-sleep`) ?? e['process'].name === 'sh');
        assert.ok(shell, `${mode}: the exec of the shell`);
        assert.ok(ms(exits[0]) - ms(shell) >= 300, `${mode}: the exit when the shell ended, not before its exec`);
        assert.equal(exits[0]?.['process'].exit_code, 4, mode);
        assert.equal(exits[0]?.['process'].entity_id, shell['process'].entity_id, mode);
      }
    });

    it('keeps the ancestry of a child forked after the main thread ended', () => {
      const { pid } = ran['fork'] as Ran;
      const child = capture.events.find((e) => e['event'].action === 'exec' && (e['process'].args as string[] | undefined)?.includes(`${marker}-fork-child`));
      assert.ok(child, 'the child\'s exec');
      assert.equal(child['process'].parent.pid, pid);
      const ancestors = child['hades'].ancestors as AnyEvent[];
      assert.equal(ancestors[0]?.['pid'], pid, JSON.stringify(ancestors));
      assert.ok(ancestors.some((a) => a['pid'] === process.pid), child['hades'].ancestry as string);
      const exits = ofPid(capture.events, 'exit', pid);
      assert.equal(exits.length, 1, JSON.stringify(exits));
      assert.equal(exits[0]?.['process'].exit_code, 5);
      const childExit = ofPid(capture.events, 'exit', child['process'].pid as number)[0];
      assert.ok(childExit && ms(exits[0]) >= ms(childExit), 'the parent ended after its child');
    });

    it('reports the exit of a process whose main thread had ended before the driver started', () => {
      const exits = ofPid(capture.events, 'exit', seeded);
      assert.equal(exits.length, 1, JSON.stringify(exits));
      assert.equal(exits[0]?.['process'].exit_code, 9);
    });

    it('reports the exit of a process older than the driver at its last thread\'s, not at its main thread\'s', () => {
      const exits = ofPid(capture.events, 'exit', (ran['late'] as Ran).pid);
      assert.equal(exits.length, 1, JSON.stringify(exits));
      assert.equal(exits[0]?.['process'].exit_code, 6);
    });
  });
}

for (const backend of ['ebpf', 'cnproc'] as const) {
  describe(`deleted files and names ending in " (deleted)", --backend ${backend}`, { skip: !isRoot && 'kernel events need root' }, () => {
    const marker = `del${randomBytes(4).toString('hex')}`;
    const dir = realpathSync(mkdtempSync(path.join(tmpdir(), 'hades-del-')));
    const linger = 'sleep 0.4; :';
    let capture: Capture;

    before(async () => {
      copyFileSync('/bin/sh', path.join(dir, 'evil (deleted)'));
      copyFileSync('/bin/sh', path.join(dir, 'gone'));
      copyFileSync('/bin/sh', path.join(dir, 'hl'));
      linkSync(path.join(dir, 'hl'), path.join(dir, 'hl2'));
      writeFileSync(path.join(dir, 'delin'), 'x\n');
      writeFileSync(path.join(dir, 'in (deleted)'), 'x\n');
      capture = await captureEvents(['--backend', backend, '--action', 'exec'], async () => {
        // A program whose very name ends in " (deleted)".
        await run(path.join(dir, 'evil (deleted)'), ['-c', linger, `${marker}-named`]);
        // Programs executed through a descriptor once their name is removed: the last one, and one of two.
        await run('/bin/sh', ['-c', `exec 3<gone; rm gone; exec /proc/self/fd/3 -c '${linger}' ${marker}-gone`], { cwd: dir });
        await run('/bin/sh', ['-c', `exec 3<hl; rm hl; exec /proc/self/fd/3 -c '${linger}' ${marker}-unlinked`], { cwd: dir });
        // Standard input: a file deleted once open, and one whose name ends in " (deleted)".
        await run('/bin/sh', ['-c', `exec 7<delin; rm delin; exec /bin/sh -c '${linger}' ${marker}-delin <&7`], { cwd: dir });
        await run('/bin/sh', ['-c', `exec /bin/sh -c '${linger}' ${marker}-stdin-named < 'in (deleted)'`], { cwd: dir });
      });
    });

    after(() => rmSync(dir, { recursive: true, force: true }));

    const execOf = (suffix: string): AnyEvent => {
      const found = withMarker(capture.events, 'exec', `${marker}-${suffix}`);
      assert.ok(found.length > 0, `no exec event with ${marker}-${suffix}; stderr: ${capture.stderr}`);
      return found.at(-1) as AnyEvent;
    };

    it('prints only events that match the schema', () => {
      assert.equal(capture.status, 0, capture.stderr);
      assert.deepEqual(capture.invalid, []);
    });

    it('names a program whose name ends in " (deleted)" as it is, and not as fileless', () => {
      const e = execOf('named');
      assert.equal(e['process'].executable, path.join(dir, 'evil (deleted)'));
      assert.notEqual(e['hades'].process.fileless, true);
    });

    it('names a deleted program by the path it had, and marks it fileless; one name of two removed is not', () => {
      const gone = execOf('gone');
      assert.equal(gone['process'].executable, path.join(dir, 'gone'));
      assert.equal(gone['hades'].process.fileless, true);
      const unlinked = execOf('unlinked');
      assert.equal(unlinked['process'].executable, path.join(dir, 'hl'));
      assert.notEqual(unlinked['hades'].process.fileless, true, 'its file still has a name');
    });

    it('marks a file on standard input deleted since it was opened, with the path it had', () => {
      const stdin = execOf('delin')['hades'].process.stdio.stdin;
      assert.deepEqual({ type: stdin.type, path: stdin.path, deleted: stdin.deleted }, { type: 'file', path: path.join(dir, 'delin'), deleted: true });
      const named = execOf('stdin-named')['hades'].process.stdio.stdin;
      assert.deepEqual({ type: named.type, path: named.path, deleted: named.deleted }, { type: 'file', path: path.join(dir, 'in (deleted)'), deleted: undefined });
    });
  });
}
