/**
 * `hades events` against the real kernel, as root: processes in a container-like cgroup (a
 * cgroup v2 folder named as Docker names a container's, `docker-<64 hex>.scope`) connect, fork
 * and exit, and every one of their events names the container, as their exec events do; a
 * process on the host names none.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { captureEvents, type AnyEvent, type Capture } from '../helpers/events-session.js';
import { actionsOf, execOf, python3, runChild, type ChildRun } from '../helpers/security-helpers.js';

const isRoot = process.getuid?.() === 0;

function cgroup2Root(): string | undefined {
  for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
    const [, mountPoint, type] = line.split(' ');
    if (type === 'cgroup2') return mountPoint;
  }
  return undefined;
}

const cgroupRoot = isRoot ? cgroup2Root() : undefined;
const skip = !isRoot ? 'kernel events need root' : cgroupRoot === undefined ? 'no cgroup v2 hierarchy' : false;

/**
 * argv: a cgroup folder ('' for none), a port. Moves itself into the folder (after its exec, as
 * runc moves a container's first process), connects to 127.0.0.1:PORT, forks a child that
 * exits, and stays a moment: the agent reads /proc for a cgroup no exec told it of.
 */
const CONNECT_PY = String.raw`
import os, socket, sys, time
folder, port = sys.argv[1], int(sys.argv[2])
if folder:
    with open(os.path.join(folder, 'cgroup.procs'), 'w') as f:
        f.write(str(os.getpid()))
s = socket.create_connection(('127.0.0.1', port))
time.sleep(0.8)
child = os.fork()
if child == 0:
    os._exit(0)
os.waitpid(child, 0)
s.close()
print(child)
`;

describe('container context of every event of a process (real driver)', { skip }, () => {
  const marker = `hc${randomBytes(4).toString('hex')}`;
  const hex = randomBytes(32).toString('hex');
  const parent = path.join(cgroupRoot ?? '/nonexistent', `hades-test-${marker}`);
  const leaf = path.join(parent, `docker-${hex}.scope`);
  const container = { id: hex, runtime: 'docker' };
  let capture: Capture;
  let moved: ChildRun;
  let inside: ChildRun;
  let host: ChildRun;

  before(async () => {
    mkdirSync(leaf, { recursive: true });
    const server = net.createServer((socket) => socket.resume());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = String((server.address() as net.AddressInfo).port);
    try {
      capture = await captureEvents(['--action', 'exec,fork,exit,connect'], async () => {
        // Moved into the container's cgroup after its exec: its exec names no container.
        moved = await runChild(python3, ['-c', CONNECT_PY, leaf, port, `${marker}-moved`]);
        // Executed inside it (the exec path).
        inside = await runChild('/bin/sh', ['-c', `echo $$ > '${leaf}/cgroup.procs' && exec ${python3} -c "$1" '' ${port} ${marker}-inside`, 'sh', CONNECT_PY]);
        host = await runChild(python3, ['-c', CONNECT_PY, '', port, `${marker}-host`]);
      });
    } finally {
      server.close();
    }
  });

  after(() => {
    for (const dir of [leaf, parent]) {
      try {
        rmdirSync(dir);
      } catch {
        // still busy for a moment after its last process; left for the next boot
      }
    }
  });

  const connectOf = (run: ChildRun): AnyEvent => {
    assert.equal(run.status, 0, run.stderr);
    const [e] = actionsOf(capture.events, 'connect', run.pid).filter((x) => x['destination']?.ip === '127.0.0.1');
    assert.ok(e, `a connect of pid ${run.pid}; stderr: ${capture.stderr}`);
    return e;
  };

  it('prints only events that match the schema', () => {
    assert.equal(capture.status, 0, capture.stderr);
    assert.deepEqual(capture.invalid, []);
  });

  it('names the container of a process that moved into its cgroup after its exec, in its connect, fork and exit', () => {
    assert.equal(execOf(capture.events, moved.pid)?.['container'], undefined, 'its exec was on the host');
    assert.deepEqual(connectOf(moved)['container'], container);
    const child = Number(moved.stdout.trim());
    const fork = capture.events.find((e) => e['event'].action === 'fork' && e['process'].pid === child);
    assert.deepEqual(fork?.['container'], container, JSON.stringify(fork));
    const exits = actionsOf(capture.events, 'exit', moved.pid);
    assert.deepEqual(exits.at(-1)?.['container'], container, JSON.stringify(exits));
  });

  it('names in a connect the container its exec names', () => {
    const exec = execOf(capture.events, inside.pid);
    assert.deepEqual(exec?.['container'], container, JSON.stringify(exec));
    assert.deepEqual(connectOf(inside)['container'], exec?.['container']);
  });

  it('names no container for a process of the host', () => {
    assert.equal(connectOf(host)['container'], undefined);
  });
});
