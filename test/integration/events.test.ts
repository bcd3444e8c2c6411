/**
 * `hades events` against the real kernel, as root: real processes run and the events they
 * cause are checked, for the eBPF backend and the cn_proc fallback alike.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { spawn, spawnSync } from 'node:child_process';
import { FrameReader } from '../../src/common/codec/frames.js';
import { PluginFrame } from '../../src/common/plugins/protocol.js';
import { defaultDriverBinary } from '../../src/agent/kernel-events.js';
import { captureEvents, run, withMarker, type AnyEvent, type Capture } from '../helpers/events-session.js';
import { projectRoot } from '../helpers/generated-docs.js';
import { alive, childrenOf } from '../helpers/procs.js';

const isRoot = process.getuid?.() === 0;
const skip = !isRoot && 'kernel events need root';

function cgroup2Root(): string | undefined {
  for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
    const [, mountPoint, type] = line.split(' ');
    if (type === 'cgroup2') return mountPoint;
  }
  return undefined;
}

/** Marks whether a field is present, or declared missing by the cn_proc backend. */
function presentOrMissing(event: AnyEvent, field: string, backend: string, check: () => void): void {
  const missing = (event['hades']?.missing as string[] | undefined) ?? [];
  if (backend === 'cnproc' && missing.includes(field)) return;
  check();
}

for (const backend of ['ebpf', 'cnproc'] as const) {
  describe(`hades events --backend ${backend}`, { skip }, () => {
    const marker = `hx${randomBytes(4).toString('hex')}`;
    const deep = mkdtempSync(path.join(tmpdir(), 'hades-it-'));
    const cwd = path.join(deep, 'a b', 'c', 'd');
    const hex = randomBytes(32).toString('hex');
    const cgroupRoot = cgroup2Root();
    const cgroupParent = cgroupRoot ? path.join(cgroupRoot, `hades-test-${marker}`) : undefined;
    const cgroupLeaf = cgroupParent ? path.join(cgroupParent, `docker-${hex}.scope`) : undefined;
    let capture: Capture;
    let port = 0;
    let hadesPid = 0;

    before(async () => {
      mkdirSync(cwd, { recursive: true });
      if (cgroupLeaf) mkdirSync(cgroupLeaf, { recursive: true });
      const server = net.createServer((socket) => socket.resume());
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      port = (server.address() as net.AddressInfo).port;
      try {
        capture = await captureEvents(['--backend', backend], async (pid) => {
          hadesPid = pid;
          const linger = 'sleep 0.3; :';
          await run('/bin/bash', ['-c', `exec /bin/bash -c '${linger}' ${marker}-argv 'with space' "$(printf '\\xff\\xfe')"`]);
          await run('/bin/sh', ['-c', linger, `${marker}-long`, 'a'.repeat(6000)]);
          await run('/bin/sh', ['-c', linger, `${marker}-cwd`], { cwd });
          // Scripts given by a relative path: to a shell, and run through their #! line.
          writeFileSync(path.join(cwd, 's.sh'), `#!/bin/sh\n${linger}\n`, { mode: 0o755 });
          await run('/bin/sh', ['-e', 's.sh', `${marker}-script`], { cwd });
          await run('./s.sh', [`${marker}-shebang`], { cwd });
          await run('/usr/bin/setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', '/bin/sh', '-c', linger, `${marker}-setuid`]);
          await run('/bin/bash', ['-c', `exec 1>/dev/tcp/127.0.0.1/${port}; exec /bin/sh -c '${linger}' ${marker}-sock`]);
          await run('/bin/sh', ['-c', `/bin/sh -c '/bin/sh -c "${linger}" ${marker}-chain; :'; :`]);
          // A file redirected into standard input, which no argument names (lingers: cn_proc reads it from /proc).
          writeFileSync(path.join(deep, 'secret'), 'x\n');
          await run('/bin/sh', ['-c', `exec /bin/sh -c '${linger}' ${marker}-stdin < '${path.join(deep, 'secret')}'`]);
          // A dropper: its child forks the payload and exits, the payload (adopted by init) executes later.
          // The dropper lingers 0.2 s (cn_proc reads its arguments from /proc after its exec: a
          // loaded machine could otherwise see it gone) and is gone well before the payload's exec.
          await run('/bin/sh', ['-c', `(/bin/sh -c 'sleep 0.6; exec /bin/sh -c "sleep 0.2" ${marker}-orphan' &); sleep 0.2`, `${marker}-dropper`]);
          await new Promise((resolve) => setTimeout(resolve, 1000));
          await run('/bin/sh', ['-c', 'sleep 0.2; exit 3', `${marker}-exit3`]);
          await run('/bin/sh', ['-c', 'sleep 0.2; kill -9 $$', `${marker}-kill`]);
          if (cgroupLeaf) await run('/bin/sh', ['-c', `echo $$ > '${cgroupLeaf}/cgroup.procs' && exec /bin/sh -c '${linger}' ${marker}-cg`]);
          // Processes that execute twice at once (env executing true): cn_proc reads /proc late.
          await run('/bin/sh', ['-c', `i=0; while [ $i -lt 200 ]; do i=$((i+1)); /usr/bin/env /bin/true ${marker}-twice-$i; done`]);
        });
      } finally {
        server.close();
      }
    });

    after(() => {
      rmSync(deep, { recursive: true, force: true });
      for (const dir of [cgroupLeaf, cgroupParent]) {
        try {
          if (dir) rmdirSync(dir);
        } catch {
          // still busy for a moment after its last process; left for the next boot
        }
      }
    });

    const execOf = (suffix: string): AnyEvent => {
      const found = withMarker(capture.events, 'exec', `${marker}-${suffix}`);
      assert.ok(found.length > 0, `no exec event with ${marker}-${suffix}; ${capture.events.length} events; stderr: ${capture.stderr}`);
      return found.at(-1) as AnyEvent;
    };

    it('prints only events that match the schema, and stops cleanly on Ctrl-C', () => {
      assert.equal(capture.status, 0, capture.stderr);
      assert.deepEqual(capture.invalid, []);
      assert.match(capture.stderr, new RegExp(`capturing from ${backend}`));
    });

    it('keeps arguments with spaces and bytes that are not UTF-8', () => {
      const e = execOf('argv');
      presentOrMissing(e, 'process.args', backend, () => {
        assert.deepEqual(e['process'].args, ['/bin/bash', '-c', 'sleep 0.3; :', `${marker}-argv`, 'with space', '\udcff\udcfe']);
        assert.equal(e['process'].executable, '/usr/bin/bash');
      });
    });

    it('cuts a long argv at the limit and flags it', () => {
      const e = execOf('long');
      presentOrMissing(e, 'process.args', backend, () => {
        assert.equal(e['hades'].process.args_truncated, true);
        assert.ok(e['hades'].process.args_bytes > 6000, String(e['hades'].process.args_bytes));
        // The process lives 0.3 s: the agent completes its arguments from /proc (args-completion.test.ts).
        if (e['hades'].process.args_source === 'proc') assert.equal((e['process'].args as string[]).at(-1), 'a'.repeat(6000));
        else assert.ok((e['process'].args as string[]).join('\0').length <= 4096);
      });
    });

    it('reports the working directory', () => {
      const e = execOf('cwd');
      presentOrMissing(e, 'process.working_directory', backend, () => assert.equal(e['process'].working_directory, realpathSync(cwd)));
    });

    it('names the script a shell runs, resolved against its working directory', () => {
      for (const suffix of ['script', 'shebang']) {
        const e = execOf(suffix);
        presentOrMissing(e, 'process.working_directory', backend, () => {
          presentOrMissing(e, 'process.args', backend, () => assert.equal(e['hades'].process.script, path.join(realpathSync(cwd), 's.sh'), suffix));
        });
      }
    });

    it('shows a setuid change in the credentials', () => {
      const e = execOf('setuid');
      presentOrMissing(e, 'process.user', backend, () => {
        assert.equal(e['process'].user.id, '65534');
        assert.equal(e['process'].real_user.id, '65534');
        assert.equal(e['hades'].process.credentials.euid, 65534);
      });
    });

    it('describes a stdout that is a TCP socket (the reverse-shell shape)', () => {
      const e = execOf('sock');
      presentOrMissing(e, 'hades.process.stdio', backend, () => {
        const stdout = e['hades'].process.stdio.stdout;
        assert.equal(stdout.type, 'socket');
        assert.equal(stdout.socket.transport, 'tcp');
        assert.equal(stdout.socket.remote_ip, '127.0.0.1');
        assert.equal(stdout.socket.remote_port, port);
        assert.notEqual(e['hades'].process.stdio.stdin.type, 'socket');
      });
    });

    it('gives the path of a file redirected into standard input', () => {
      const e = execOf('stdin');
      presentOrMissing(e, 'hades.process.stdio', backend, () => {
        const stdin = e['hades'].process.stdio.stdin;
        assert.equal(stdin.type, 'file');
        // cn_proc reads it from /proc after the exec: a process gone by then has none.
        if (backend === 'ebpf' || stdin.path !== undefined) assert.equal(stdin.path, realpathSync(path.join(deep, 'secret')));
        assert.equal(e['hades'].process.stdio.stdout.path, undefined, 'only standard input has a path');
      });
    });

    it('carries the ancestry of a three-level chain', () => {
      const e = execOf('chain');
      const ancestors = e['hades'].ancestors as AnyEvent[];
      assert.ok(ancestors.length >= 3, JSON.stringify(ancestors));
      assert.equal(ancestors[0]?.['pid'], e['process'].parent.pid);
      assert.ok((ancestors[0]?.['args'] as string[]).some((a) => a.includes(`${marker}-chain`)), JSON.stringify(ancestors[0]));
      // The parent's command line (what Sigma's ParentCommandLine tests): its arguments joined.
      if (e['process'].parent.args) assert.equal(e['process'].parent.command_line, (e['process'].parent.args as string[]).join(' '));
      assert.equal(ancestors[1]?.['name'], 'sh');
      assert.equal(ancestors[2]?.['pid'], process.pid);
      assert.match(e['hades'].ancestry as string, new RegExp(`^sh\\(${e['process'].pid}\\) < sh\\(\\d+\\) < sh\\(\\d+\\) < node\\(${process.pid}\\)`));
    });

    it('names the program a process replaced by executing another in its place, and none after a fork', () => {
      // bash -c 'exec /bin/bash -c ...': the inner bash replaced the outer one.
      const previous = execOf('argv')['process'].previous as { executable?: string; args?: string[] }[] | undefined;
      // cn_proc reads the outer one from /proc, where it can be gone already: then missing, never wrong.
      if (backend === 'ebpf' || previous !== undefined) {
        assert.equal(previous?.length, 1, JSON.stringify(previous));
        assert.match(previous?.[0]?.executable ?? '', /\/bash$/);
        if (previous?.[0]?.args !== undefined) assert.match(previous[0].args[2] ?? '', /^exec \/bin\/bash -c /, JSON.stringify(previous));
      }
      assert.equal(execOf('chain')['process'].previous, undefined, 'a forked child replaced its parent\'s program, not one of its own');
    });

    it('names the process that started a payload in its ancestry after that one exited and the payload was adopted', () => {
      const e = execOf('orphan');
      const ancestors = e['hades'].ancestors as AnyEvent[];
      assert.ok(ancestors.some((a) => (a['args'] as string[] | undefined)?.includes(`${marker}-dropper`)), JSON.stringify(ancestors));
      assert.ok(ancestors.some((a) => a['pid'] === process.pid), e['hades'].ancestry as string);
    });

    it('reports exit codes, and 128 + signal for a killed process', () => {
      const exit3 = withMarker(capture.events, 'exit', `${marker}-exit3`);
      assert.equal(exit3.length, 1, 'one exit event for the process');
      assert.equal(exit3[0]?.['process'].exit_code, 3);
      const killed = withMarker(capture.events, 'exit', `${marker}-kill`);
      assert.equal(killed[0]?.['process'].exit_code, 137);
      assert.equal(killed[0]?.['process'].entity_id, execOf('kill')['process'].entity_id, 'exec and exit share the entity id');
    });

    it('sees fork events with the parent', () => {
      const exec = execOf('exit3');
      const forks = capture.events.filter((e) => e['event'].action === 'fork' && e['process'].pid === exec['process'].pid);
      assert.equal(forks.length, 1);
      assert.equal(forks[0]?.['process'].parent.pid, process.pid);
      assert.equal(forks[0]?.['process'].entity_id, exec['process'].entity_id);
    });

    it('finds the container id of a container-like cgroup', { skip: !cgroupLeaf && 'no cgroup v2 hierarchy' }, () => {
      const e = execOf('cg');
      presentOrMissing(e, 'hades.process.cgroup', backend, () => {
        assert.deepEqual(e['container'], { id: hex, runtime: 'docker' });
        assert.match(e['hades'].process.cgroup.path as string, new RegExp(`docker-${hex}\\.scope$`));
      });
    });

    it('never gives an exec the program a later exec of the same process ran', () => {
      const execs = capture.events.filter((e) => e['event'].action === 'exec');
      const seconds = execs.filter((e) => (e['process'].args as string[] | undefined)?.[0] === '/bin/true' && String(e['process'].args?.[1]).startsWith(`${marker}-twice-`));
      assert.ok(seconds.length > 0, 'the execs of true, with their arguments');
      let checked = 0;
      for (const second of seconds) {
        const first = execs.find((e) => e['process'].entity_id === second['process'].entity_id && e !== second);
        if (first === undefined) continue;
        checked++;
        const args = first['process'].args as string[] | undefined;
        // Its own program, or marked missing: never true's.
        if (args !== undefined) assert.deepEqual(args, ['/usr/bin/env', ...(second['process'].args as string[])], JSON.stringify(first));
        else assert.ok((first['hades'].missing as string[]).includes('process.args'), JSON.stringify(first));
        if (first['process'].executable !== undefined) assert.equal(first['process'].executable, '/usr/bin/env');
      }
      assert.ok(checked > 0, 'exec events of env');
    });

    it('does not report its own processes', () => {
      const own = capture.events.filter((e) => e['process']?.pid === hadesPid || e['process']?.parent?.pid === hadesPid);
      assert.deepEqual(own.map((e) => e['event'].action), []);
    });
  });
}

/** Children of a process named hades-driver. */
const driversOf = (parent: number): number[] => childrenOf(parent, (stat) => stat.includes('(hades-driver)'));

describe('driver crash', { skip }, () => {
  it('restarts a driver killed with SIGKILL and reports the gap, and leaves no driver behind on exit', async () => {
    const marker = `hx${randomBytes(4).toString('hex')}`;
    const drivers: number[] = [];
    const capture = await captureEvents(['--action', 'exec'], async (hadesPid) => {
      const [driver] = driversOf(hadesPid);
      assert.ok(driver, 'the driver runs as a child of hades');
      process.kill(driver, 'SIGKILL');
      // The restarted driver: another pid (the first restart comes after 100 ms of backoff).
      for (let waited = 0; waited < 15_000; waited += 100) {
        const now = driversOf(hadesPid);
        if (now.length > 0 && !now.includes(driver)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      // Time to load and attach its hooks (its HELLO) before the marker runs.
      await new Promise((r) => setTimeout(r, 1500));
      drivers.push(...driversOf(hadesPid));
      await run('/bin/sh', ['-c', ':', `${marker}-after`]);
    });
    assert.equal(drivers.length, 1, 'one restarted driver');
    assert.equal(alive(drivers[0] ?? 0), false, 'the driver is gone once hades has exited');
    assert.deepEqual(capture.invalid, []);
    const gaps = capture.events.filter((e) => e['event'].action === 'agent_gap');
    assert.equal(gaps.length, 1, capture.stderr);
    assert.equal(gaps[0]?.['hades'].gap.reason, 'killed by SIGKILL');
    assert.equal(gaps[0]?.['hades'].gap.component, 'driver');
    assert.match(capture.stderr, /driver restarted: not running from .* killed by SIGKILL \(1 restarts\)/, 'said in the log too');
    assert.equal(withMarker(capture.events, 'exec', `${marker}-after`).length, 1, 'events flow again after the restart');
  });
});

describe('hades events --stats', { skip }, () => {
  it('ends with the counters: the hooks and their state, seen and sent by hook, the decoder and the agent', async () => {
    const marker = `stats-${randomBytes(4).toString('hex')}`;
    // Something to see once it captures (its own processes are not).
    const capture = await captureEvents(['--action', 'exec', '--stats'], async () => {
      await run('/bin/true', [marker]);
    });
    assert.equal(capture.status, 0, capture.stderr);
    assert.equal(withMarker(capture.events, 'exec', marker).length, 1, 'the workload\'s exec');
    const last = capture.stderr.trimEnd().split('\n').at(-1) ?? '';
    const { stats } = JSON.parse(last) as { stats: { backend: string; hooks: { name: string; active: boolean }[]; kernel: Record<string, { seen: number; sent: number }>; decoder: { records: number }; agent: { events: number } } };
    assert.equal(stats.backend, 'ebpf');
    assert.ok(stats.hooks.some((h) => h.name === 'sched_process_exec' && h.active), `the hooks, after the stop too: ${JSON.stringify(stats.hooks)}`);
    assert.ok((stats.kernel['sched_process_exec']?.sent ?? 0) >= 1, 'the workload\'s exec, sent');
    assert.ok(stats.decoder.records > 0);
    assert.ok(stats.agent.events >= 1);
  });

  it('stops after --duration', () => {
    const started = Date.now();
    const result = spawnSync(process.execPath, ['bin/hades.js', 'events', '--action', 'exec', '--duration', '2'], { cwd: projectRoot, encoding: 'utf8', timeout: 60_000, maxBuffer: 64 * 1024 * 1024 });
    assert.equal(result.status, 0, result.stderr);
    assert.ok(Date.now() - started >= 2000);
  });

  it('says which actions asked for the backend cannot see (cn_proc: processes only)', () => {
    const result = spawnSync(process.execPath, ['bin/hades.js', 'events', '--backend', 'cnproc', '--action', 'exec,connect,dns_query', '--duration', '1'], { cwd: projectRoot, encoding: 'utf8', timeout: 60_000, maxBuffer: 64 * 1024 * 1024 });
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stderr, /^hades: no connect, dns_query events: the cn_proc backend sees only processes \(exec, fork, exit\)$/m);
  });

  it('counts no read error for a chmod by path, which never has a file mode to read (its events are complete)', async () => {
    const dir = mkdtempSync('/tmp/hades-chmod-stats-');
    try {
      const file = path.join(dir, 'f');
      writeFileSync(file, 'x');
      const capture = await captureEvents(['--action', 'file_chmod', '--stats'], async () => {
        await run('/bin/chmod', ['600', file]);
        await run('/bin/chmod', ['644', file]);
      });
      assert.equal(capture.status, 0, capture.stderr);
      const { stats } = JSON.parse(capture.stderr.trimEnd().split('\n').at(-1) ?? '') as { stats: { kernel: Record<string, { seen: number; sent: number; read_errors: number }> } };
      const chmod = stats.kernel['file_chmod'];
      assert.ok((chmod?.sent ?? 0) >= 2, JSON.stringify(chmod));
      assert.equal(chmod?.read_errors, 0, JSON.stringify(chmod));
      assert.equal(capture.events.filter((e) => e['event'].action === 'file_chmod' && e['file']?.path === file).length, 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('driver batching', { skip }, () => {
  it('refuses a batch window out of range with exit code 2', () => {
    const result = spawnSync(defaultDriverBinary(), ['--batch-ms', '1001'], { encoding: 'utf8' });
    assert.equal(result.status, 2);
    assert.match(result.stderr, /--batch-ms must be 0\.\.1000/);
  });

  it('says its batch window in HELLO (eBPF waits, cn_proc never does)', async () => {
    const hello = async (backend: string): Promise<Record<string, unknown>> => {
      const child = spawn(defaultDriverBinary(), ['--backend', backend, '--batch-ms', '20', '--hooks', 'sched_process_exec'], { stdio: ['pipe', 'pipe', 'ignore'] });
      const reader = new FrameReader();
      try {
        return await new Promise((resolve, reject) => {
          child.on('error', reject);
          child.on('exit', (code) => reject(new Error(`driver exited with ${code}`)));
          child.stdout.on('data', (chunk: Buffer) => {
            const frame = reader.push(chunk).find((f) => f.type === PluginFrame.hello);
            if (frame) resolve(JSON.parse(Buffer.from(frame.payload).toString('utf8')) as Record<string, unknown>);
          });
        });
      } finally {
        child.stdin.end();
        await new Promise((r) => child.once('close', r));
      }
    };
    assert.equal((await hello('ebpf'))['batch_ms'], 20);
    assert.equal((await hello('cnproc'))['batch_ms'], 0);
  });
});
