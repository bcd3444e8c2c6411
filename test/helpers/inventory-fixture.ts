/**
 * The host fixture of the inventory tests: a copy of test/fixtures/inventory/host/root with what
 * git cannot keep added (symbolic links of /proc, setuid bits, binary utmp records, loops, a huge
 * file). See test/fixtures/inventory/host/README.md.
 */
import { chmodSync, cpSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { encodeUtmpRecord, UtmpType } from '../../src/agent/inventory/tables/utmp.js';
import { projectRoot } from './generated-docs.js';

export const FIXTURE_SOURCE = `${projectRoot}test/fixtures/inventory/host/root`;

export interface HostFixture {
  readonly root: string;
  /** The fixture daemon's executable (pid 100 runs it). */
  readonly daemon: string;
}

export function makeHostFixture(): HostFixture {
  const root = mkdtempSync(path.join(tmpdir(), 'hades-inventory-host-'));
  cpSync(FIXTURE_SOURCE, root, { recursive: true });
  const at = (p: string) => path.join(root, p);
  const link = (target: string, p: string) => {
    mkdirSync(path.dirname(at(p)), { recursive: true });
    symlinkSync(target, at(p));
  };
  const daemon = at('usr/bin/fixture-daemon');
  chmodSync(daemon, 0o755);

  // Processes: executables, working folders, open sockets and namespaces as /proc shows them.
  link(daemon, 'proc/100/exe');
  link('/', 'proc/100/cwd');
  link('/', 'proc/100/root');
  link('/dev/null', 'proc/100/fd/0');
  link('socket:[5001]', 'proc/100/fd/3');
  link('socket:[5002]', 'proc/100/fd/4');
  link('socket:[5009]', 'proc/100/fd/5');
  link('socket:[5010]', 'proc/100/fd/6');
  link('net:[4026531840]', 'proc/100/ns/net');
  link('pid:[4026531836]', 'proc/100/ns/pid');
  link('mnt:[4026531841]', 'proc/100/ns/mnt');
  // A thread of the daemon in a network namespace of its own (unshare(CLONE_NEWNET) in one thread):
  // the socket it listens on is in that namespace's tables only. And a socket that is in no table read.
  link('net:[4026531840]', 'proc/100/task/100/ns/net');
  link('net:[4026532999]', 'proc/100/task/101/ns/net');
  mkdirSync(at('proc/100/task/101/net'), { recursive: true });
  writeFileSync(
    at('proc/100/task/101/net/tcp'),
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n' +
      '   0: 00000000:115C 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5011 1 0000000000000000 100 0 0 10 0\n',
  );
  link('socket:[5011]', 'proc/100/fd/7');
  link('socket:[5012]', 'proc/100/fd/8');
  link('/tmp/.x/evil (deleted)', 'proc/200/exe');
  link('/tmp/.x', 'proc/200/cwd');
  link('socket:[5003]', 'proc/200/fd/5');
  link('socket:[5004]', 'proc/200/fd/6');
  link('socket:[5005]', 'proc/200/fd/7');
  link('socket:[5006]', 'proc/200/fd/8');
  link('socket:[5001]', 'proc/200/fd/9'); // inherited from its parent: two holders of one socket
  link('net:[4026531840]', 'proc/200/ns/net');
  mkdirSync(at('proc/400/fd'), { recursive: true });

  // Setuid and setgid files, one dropped in /tmp, and loops that must not trap the walk.
  mkdirSync(at('tmp/.hidden'), { recursive: true });
  mkdirSync(at('usr/lib/x86_64-linux-gnu/utempter'), { recursive: true });
  for (const [file, mode] of [
    ['usr/bin/fixture-suid', 0o4755],
    ['usr/bin/fixture-sgid', 0o2755],
    ['usr/bin/plain', 0o755],
    ['tmp/.hidden/rootshell', 0o4777],
    ['usr/lib/x86_64-linux-gnu/utempter/utempter', 0o2755], // Debian's, three levels under /usr/lib
  ] as const) {
    writeFileSync(at(file), `#!/bin/sh\n# ${file}\n`);
    chmodSync(at(file), mode);
  }
  link('.', 'usr/bin/self-loop');
  link('loop-b', 'usr/bin/loop-a');
  link('loop-a', 'usr/bin/loop-b');
  link('sudoers.loop', 'etc/sudoers.loop'); // #include sudoers.loop: a symbolic link to itself

  // A sudoers.d entry that is a folder, and one that is huge (over the test's maxFileBytes).
  mkdirSync(at('etc/sudoers.d/40-folder'), { recursive: true });
  writeFileSync(at('etc/sudoers.d/50-huge'), `# huge\n${'x'.repeat(200 * 1024)}\n`);

  // utmp: two users logged in, a dead entry, one record that is not utmp, and trailing bytes.
  mkdirSync(at('run'), { recursive: true });
  writeFileSync(
    at('run/utmp'),
    Buffer.concat([
      encodeUtmpRecord({ type: UtmpType.bootTime, user: 'reboot', line: '~', host: '6.1.0-fixture', time: 1_700_000_000 }),
      encodeUtmpRecord({ type: UtmpType.userProcess, pid: 100, line: 'pts/0', id: 'ts/0', user: 'alice', host: '203.0.113.7', session: 7, time: 1_700_000_100, address: '203.0.113.7' }),
      encodeUtmpRecord({ type: UtmpType.userProcess, pid: 4242, line: 'tty1', id: 'tty1', user: 'root', host: '', session: 1, time: 1_700_000_200 }),
      encodeUtmpRecord({ type: UtmpType.deadProcess, pid: 4000, line: 'pts/1', time: 1_700_000_050 }),
      Buffer.concat([Buffer.from([99, 0]), Buffer.alloc(382)]), // type 99: not a utmp record
      Buffer.alloc(100), // a torn last record
    ]),
  );
  // wtmp: boot, a login and its logout, a v6 login, a shutdown; btmp: one failed login.
  mkdirSync(at('var/log'), { recursive: true });
  const v6 = new Uint8Array(16);
  v6.set([0x20, 0x01, 0x0d, 0xb8], 0);
  v6[15] = 1;
  writeFileSync(
    at('var/log/wtmp'),
    Buffer.concat([
      encodeUtmpRecord({ type: UtmpType.bootTime, user: 'reboot', line: '~', host: '6.1.0-fixture', time: 1_699_000_000 }),
      encodeUtmpRecord({ type: UtmpType.userProcess, pid: 500, line: 'pts/0', user: 'alice', host: '203.0.113.7', time: 1_699_000_100, address: '203.0.113.7' }),
      encodeUtmpRecord({ type: UtmpType.deadProcess, pid: 500, line: 'pts/0', time: 1_699_000_900 }),
      encodeUtmpRecord({ type: UtmpType.userProcess, pid: 600, line: 'pts/1', user: 'bob', host: '2001:db8::1', time: 1_699_001_000, address: v6 }),
      encodeUtmpRecord({ type: UtmpType.runLevel, pid: 0, line: '~', user: 'shutdown', time: 1_699_002_000 }),
    ]),
  );
  writeFileSync(at('var/log/btmp'), encodeUtmpRecord({ type: UtmpType.loginProcess, pid: 700, line: 'ssh:notty', user: 'admin', host: '198.51.100.9', time: 1_699_003_000, address: '198.51.100.9' }));
  return { root, daemon };
}
