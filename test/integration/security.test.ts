/**
 * `hades events` against the real kernel, as root: security events (network, DNS, privilege
 * changes, ptrace, memfd, module loads, files, tampering). Each workload is a separate process
 * whose pid is the actor the events must name, with its entity id and ancestry.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { captureEvents, type AnyEvent, type Capture } from '../helpers/events-session.js';
import {
  BYPASS_C,
  DNS_CLIENT_PY,
  IA32_C,
  MEMFD_C,
  MODULE_C,
  PRIV_C,
  PTRACE_C,
  actionsOf,
  assertActor,
  compileC,
  damagedTailQuery,
  dnsQuery,
  execOf,
  ia32Calls,
  pointerLoopQuery,
  python3,
  runChild,
  startDnsServer,
  type ChildRun,
  type DnsServer,
} from '../helpers/security-helpers.js';

const isRoot = process.getuid?.() === 0;
const skip = !isRoot && 'kernel events need root';
const hasTool = (tool: string) => ['/usr/bin', '/bin', '/usr/sbin', '/sbin'].some((d) => existsSync(path.join(d, tool)));

/** listen, connect, accept, a refused connect and a UDP connect, on the address family of argv[1]. Prints the ports. */
const NET_PY = String.raw`
import json, socket, sys
host = sys.argv[1]
fam = socket.AF_INET6 if ':' in host else socket.AF_INET
srv = socket.socket(fam, socket.SOCK_STREAM)
srv.bind((host, 0))
srv.listen(7)
port = srv.getsockname()[1]
cli = socket.socket(fam, socket.SOCK_STREAM)
cli.connect((host, port))
conn, peer = srv.accept()
t = socket.socket(fam, socket.SOCK_STREAM)
t.bind((host, 0))
closed = t.getsockname()[1]
t.close()
r = socket.socket(fam, socket.SOCK_STREAM)
refused = r.connect_ex((host, closed))
u = socket.socket(fam, socket.SOCK_DGRAM)
u.connect((host, 9))
print(json.dumps({'port': port, 'client_port': cli.getsockname()[1], 'closed': closed, 'refused': refused, 'udp_port': u.getsockname()[1]}))
`;

/** A non-blocking TCP connect to 127.0.0.1:argv[1], waited for with select. */
const NONBLOCKING_PY = String.raw`
import json, select, socket, sys
s = socket.socket()
s.setblocking(False)
first = s.connect_ex(('127.0.0.1', int(sys.argv[1])))
select.select([], [s], [], 3)
print(json.dumps({'first': first, 'error': s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR), 'local_port': s.getsockname()[1]}))
`;

/** Listens on the unix socket argv[1], connects to it, removes it. */
const UNIX_PY = String.raw`
import os, socket, sys
p = sys.argv[1]
srv = socket.socket(socket.AF_UNIX)
srv.bind(p)
srv.listen(1)
c = socket.socket(socket.AF_UNIX)
c.connect(p)
c.close()
srv.close()
os.unlink(p)
`;

/**
 * Listens on the unix socket argv[1] and connects to it spelled four other ways: relative to the
 * working folder, with "//", through /proc/self/root, and through a symbolic link argv[2].
 */
const UNIX_SPELLED_PY = String.raw`
import os, socket, sys
p, link = sys.argv[1], sys.argv[2]
d, name = os.path.split(p)
srv = socket.socket(socket.AF_UNIX)
srv.bind(p)
srv.listen(8)
os.symlink(p, link)
os.chdir(d)
for spelled in [name, d + '//' + name, '/proc/self/root' + p, link]:
    c = socket.socket(socket.AF_UNIX)
    c.connect(spelled)
    c.close()
    a, _ = srv.accept()
    a.close()
os.unlink(link)
srv.close()
os.unlink(p)
`;

/**
 * DNS queries sent the ways the kernel accepts besides sendto(AF_INET)/send: a TCP sendto whose
 * address the kernel ignores (the socket is connected), a UDP sendto with an AF_UNSPEC address
 * (IPv4 takes it as given, IPv6 sends to the connected peer), a sendmsg whose name has length 0
 * (the connected peer), and an IPv6 socket sending to an AF_INET address. argv: the name prefix.
 * Also a UDP IPv6 socket connected to an AF_INET address. Prints that socket's local port.
 */
const DNS_WAYS_PY = String.raw`
import ctypes, json, socket, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
prefix = sys.argv[1]
RESOLVER = '127.83.0.53'
def query(way, tid):
    name = prefix + '-' + way + '.hades-test.example'
    head = struct.pack('>HHHHHH', tid, 0x0100, 1, 0, 0, 0)
    return head + b''.join(bytes([len(l)]) + l.encode() for l in name.split('.')) + b'\x00' + struct.pack('>HH', 1, 1)
def sin(family, host, port):
    return struct.pack('<H', family) + struct.pack('>H', port) + socket.inet_aton(host) + b'\0' * 8
def sendto(s, m, addr):
    assert libc.sendto(s.fileno(), m, len(m), 0, addr, len(addr)) == len(m), ctypes.get_errno()
srv = socket.socket()
srv.bind((RESOLVER, 53))
srv.listen(1)
t = socket.socket()
t.connect((RESOLVER, 53))
m = query('tcp', 0x1b01)
sendto(t, struct.pack('>H', len(m)) + m, sin(socket.AF_INET, '192.0.2.1', 80))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sendto(u, query('unspec', 0x1b02), sin(socket.AF_UNSPEC, RESOLVER, 53))
u6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
u6.connect(('::1', 53))
sendto(u6, query('unspec6', 0x1b03), sin(socket.AF_UNSPEC, '192.0.2.1', 80))
m6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
sendto(m6, query('mapped', 0x1b04), sin(socket.AF_INET, RESOLVER, 53))
class Iovec(ctypes.Structure):
    _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]
class Msghdr(ctypes.Structure):
    _fields_ = [('name', ctypes.c_void_p), ('namelen', ctypes.c_uint32), ('iov', ctypes.c_void_p), ('iovlen', ctypes.c_size_t), ('control', ctypes.c_void_p), ('controllen', ctypes.c_size_t), ('flags', ctypes.c_int)]
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
c.connect((RESOLVER, 53))
m = query('namelen0', 0x1b05)
buf = ctypes.create_string_buffer(m, len(m))
fake = ctypes.create_string_buffer(sin(socket.AF_INET, '192.0.2.1', 80), 16)
iov = Iovec(ctypes.cast(buf, ctypes.c_void_p), len(m))
msg = Msghdr(ctypes.cast(fake, ctypes.c_void_p), 0, ctypes.cast(ctypes.pointer(iov), ctypes.c_void_p), 1, None, 0, 0)
assert libc.sendmsg(c.fileno(), ctypes.byref(msg), 0) == len(m), ctypes.get_errno()
v = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
addr = sin(socket.AF_INET, '127.0.0.1', 9)
assert libc.connect(v.fileno(), addr, len(addr)) == 0, ctypes.get_errno()
print(json.dumps({'mapped_connect_port': v.getsockname()[1]}))
`;

/** Renames into, chmod and rm in dir/watched (argv[1] = dir), by paths spelled with "//", "." and "..". */
const ODD_PATHS_SH = [
  'cd "$1" && echo a > unwatched/o1 && echo b > unwatched/o2 && echo c > unwatched/o3',
  'mv unwatched/o1 "$1//watched/odd-renamed"',
  'mv unwatched/o2 "$1/unwatched/../watched/odd-dotdot"',
  'chmod 700 "$1/watched/./odd-renamed"',
  'rm "$1//watched/odd-dotdot"',
  'mv unwatched/o3 "$1/unwatched//odd-unwatched" && rm "$1/unwatched/./odd-unwatched"',
].join(' && ');

/** Create (and write), make executable, rename, delete, in the folder argv[1]. */
const FILES_SH = 'cd "$1" && echo data > f && chmod 755 f && mv f g && rm g';
/** Times set to a given time (touch -d, -r), to now (touch: not reported), and outside the watch. */
const TIMES_SH = 'cd "$1" && echo x > t && touch -d 2019-01-01T00:00:00Z t && touch t && touch -r t t2 && touch -d 2019-01-01T00:00:00Z "$2/t3"';
/** os.utime by path and by descriptor (futimens: utimensat with no path), the access time left out. */
const TIMES_PY = `import os, sys
os.utime(sys.argv[1] + "/p", (1000000000, 1000000000))
fd = os.open(sys.argv[1] + "/p", os.O_RDONLY)
os.utime(fd, ns=(0, 2000000000 * 10**9))
print(os.stat(sys.argv[1] + "/p").st_ino)`;

const ANSWER_IP = '127.53.0.1';
const DNS_REPEATS = 6;
const DEFAULT_UNIX_SOCKETS = ['/var/run/docker.sock', '/run/docker.sock', '/run/containerd/containerd.sock', '/run/podman/podman.sock', '/var/run/crio/crio.sock'];

/** Whether the kernel runs ia32 calls (false: it does), probed with the program built in a folder of its own. */
const ia32Skip: false | string = (() => {
  if (!isRoot) return false; // every test is skipped anyway
  const probeDir = mkdtempSync('/tmp/hades-ia32-');
  try {
    const calls = ia32Calls(compileC(probeDir, 'hx-ia32', IA32_C));
    return calls === true ? false : calls;
  } finally {
    rmSync(probeDir, { recursive: true, force: true });
  }
})();

describe('hades events: security events from the real kernel', { skip }, () => {
  const marker = `hx${randomBytes(4).toString('hex')}`;
  const dnsName = (what: string) => `${marker}-${what}.hades-test.example`;
  let dir = '';
  let varDir = '';
  let watched = '';
  let capture: Capture;
  let hadesPid = 0;
  let pythonExe = '';
  let dns: DnsServer | string = 'not started';
  let nodePort = 0;
  const bin: Record<string, string> = {};
  const runs: Record<string, ChildRun> = {};
  const dnsIds = { sendto: 0x1a01, connected: 0x1a02, repeat: 0x1a03, loop: 0x1a04, tail: 0x1a05 };
  /** The 32-bit ways of sending a DNS query (the ia32 program's `dns` ways), each with its query id. */
  const IA32_DNS = { sendto: 0x1a11, 'socketcall-sendto': 0x1a12, 'socketcall-send': 0x1a13, sendmsg: 0x1a14, 'socketcall-sendmsg': 0x1a15, sendmmsg: 0x1a16 } as const;
  const IA32_DNS_CALLS: Readonly<Record<keyof typeof IA32_DNS, string>> = {
    sendto: 'sendto (369), its answer by recvfrom (371)',
    'socketcall-sendto': 'socketcall(SYS_SENDTO), its answer by socketcall(SYS_RECVFROM)',
    'socketcall-send': 'socketcall(SYS_SEND) on a connected socket, its answer by socketcall(SYS_RECV)',
    sendmsg: 'sendmsg (370), its answer by recvmsg (372): compat_msghdr',
    'socketcall-sendmsg': 'socketcall(SYS_SENDMSG), its answer by socketcall(SYS_RECVMSG)',
    sendmmsg: 'sendmmsg (345) of one compat_mmsghdr, its answer by recvmsg (372)',
  };
  /** The 32-bit ways of listening and accepting (the ia32 program's `listen` ways). */
  const IA32_LISTEN = { direct: ['listen (363)', 'accept4 (364)'], socketcall: ['socketcall(SYS_LISTEN)', 'socketcall(SYS_ACCEPT)'], socketcall4: ['socketcall(SYS_LISTEN)', 'socketcall(SYS_ACCEPT4)'] } as const;
  const noModules = !existsSync('/proc/modules');
  const canHide = hasTool('unshare') && hasTool('mount');

  before(async () => {
    dir = realpathSync(mkdtempSync('/tmp/hades-sec-'));
    varDir = realpathSync(mkdtempSync('/var/tmp/hades-sec-'));
    // Programs run as uid 65534 must reach their binaries.
    chmodSync(dir, 0o755);
    watched = path.join(dir, 'watched');
    for (const d of [watched, path.join(dir, 'unwatched'), path.join(dir, 'bin')]) mkdirSync(d, { mode: 0o755 });
    const binDir = path.join(dir, 'bin');
    bin['priv'] = compileC(binDir, 'hx-priv', PRIV_C);
    bin['ptrace'] = compileC(binDir, 'hx-ptrace', PTRACE_C);
    bin['memfd'] = compileC(binDir, 'hx-memfd', MEMFD_C);
    bin['module'] = compileC(binDir, 'hx-module', MODULE_C);
    bin['bypass'] = compileC(binDir, 'hx-bypass', BYPASS_C);
    bin['ia32'] = compileC(binDir, 'hx-ia32', IA32_C);
    // Renamed by an ia32 call from an unwatched folder into the watched one.
    writeFileSync(path.join(dir, 'unwatched', 'ia32-moved'), 'x\n');
    // Existing files in a watched folder, written in place later (made before the capture).
    for (const name of ['in-place', 'mapped']) writeFileSync(path.join(watched, name), 'original\n');
    // A setuid-root copy of /bin/true, and a plain one the agent will see at the path used.
    bin['suid'] = path.join(binDir, 'suid-true');
    bin['plain'] = path.join(binDir, 'plain-true');
    copyFileSync('/bin/true', bin['suid']);
    chmodSync(bin['suid'], 0o4755);
    copyFileSync('/bin/true', bin['plain']);
    chmodSync(bin['plain'], 0o755);
    pythonExe = execFileSync(python3, ['-c', 'import os, sys; print(os.path.realpath(sys.executable))'], { encoding: 'utf8' }).trim();

    const config = path.join(dir, 'hades.yaml');
    writeFileSync(
      config,
      [
        'driver:',
        `  file_watch: [${JSON.stringify(`${watched}/`)}]`,
        `  unix_sockets: [${[...DEFAULT_UNIX_SOCKETS, `${dir}/`].map((p) => JSON.stringify(p)).join(', ')}]`,
        // What is checked here is the content of the events, not load shedding: a CPU budget the
        // agent cannot exceed keeps it from aggregating or shedding connect and DNS events.
        'limits:',
        '  cpu_percent: 100',
        '',
      ].join('\n'),
    );

    dns = await startDnsServer(ANSWER_IP);
    const server = net.createServer((socket) => socket.resume());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    nodePort = (server.address() as net.AddressInfo).port;
    const py = (key: string, script: string, ...args: string[]) => runChild(python3, ['-c', script, ...args]).then((r) => (runs[key] = r));
    const setpriv = ['--reuid=65534', '--regid=65534', '--clear-groups', '--'];
    try {
      capture = await captureEvents(['--config', config], async (pid) => {
        hadesPid = pid;
        await py('net4', NET_PY, '127.0.0.1');
        await py('net6', NET_PY, '::1');
        await py('nonblocking', NONBLOCKING_PY, String(nodePort));
        await py('unixWatched', UNIX_PY, path.join(dir, `${marker}.sock`));
        await py('unixUnwatched', UNIX_PY, path.join(varDir, `${marker}.sock`));
        await py('unixSpelled', UNIX_SPELLED_PY, path.join(dir, `${marker}-spelled.sock`), path.join(varDir, `${marker}-link.sock`));
        if (typeof dns !== 'string') {
          await py('dnsSendto', DNS_CLIENT_PY, 'sendto', dnsQuery(dnsIds.sendto, dnsName('sendto')).toString('hex'), '1');
          await py('dnsConnected', DNS_CLIENT_PY, 'connected', dnsQuery(dnsIds.connected, dnsName('connected')).toString('hex'), '1');
          await py('dnsRepeat', DNS_CLIENT_PY, 'fire', dnsQuery(dnsIds.repeat, dnsName('repeat')).toString('hex'), String(DNS_REPEATS));
          await py('dnsJunk', DNS_CLIENT_PY, 'fire', randomBytes(7).toString('hex'), '1');
          await py('dnsLoop', DNS_CLIENT_PY, 'fire', pointerLoopQuery(dnsIds.loop).toString('hex'), '1');
          await py('dnsTail', DNS_CLIENT_PY, 'fire', damagedTailQuery(dnsIds.tail, dnsName('tail')).toString('hex'), '1');
        }
        await py('dnsWays', DNS_WAYS_PY, marker);
        runs['privDrop'] = await runChild(bin['priv'] ?? '', ['drop', marker]);
        runs['privRoot'] = await runChild('setpriv', [...setpriv, bin['priv'] ?? '', 'root', marker]);
        if (canHide) {
          // A setuid-root file bind-mounted, in a private mount namespace, over a plain file: the
          // process becomes root at exec through a setuid-root executable, while the same path in
          // the agent's mount namespace is the plain file.
          const script = 'mount --bind "$1" "$2" && exec setpriv --reuid=65534 --regid=65534 --clear-groups -- "$2" "$3"';
          runs['hidden'] = await runChild('unshare', ['-m', '--propagation', 'private', '/bin/sh', '-c', script, 'sh', bin['suid'] ?? '', bin['plain'] ?? '', marker]);
        }
        runs['setuidRoot'] = await runChild('setpriv', [...setpriv, bin['suid'] ?? '', marker]);
        runs['ptrace'] = await runChild(bin['ptrace'] ?? '', []);
        runs['vmWritev'] = await runChild(bin['bypass'] ?? '', ['vm_writev']);
        runs['procMem'] = await runChild(bin['bypass'] ?? '', ['proc_mem']);
        runs['writeInPlace'] = await runChild(bin['bypass'] ?? '', ['write', path.join(watched, 'in-place')]);
        runs['mmapInPlace'] = await runChild(bin['bypass'] ?? '', ['mmap', path.join(watched, 'mapped')]);
        runs['fastopen'] = await runChild(bin['bypass'] ?? '', ['fastopen', String(nodePort)]);
        runs['memfd'] = await runChild(bin['memfd'] ?? '', [marker]);
        if (noModules) runs['module'] = await runChild(bin['module'] ?? '', []);
        runs['filesWatched'] = await runChild('/bin/sh', ['-c', FILES_SH, 'sh', watched]);
        runs['times'] = await runChild('/bin/sh', ['-c', TIMES_SH, 'sh', watched, path.join(dir, 'unwatched')]);
        writeFileSync(path.join(watched, 'p'), 'p\n');
        await py('timesPy', TIMES_PY, watched);
        runs['filesTmp'] = await runChild('/bin/sh', ['-c', FILES_SH, 'sh', path.join(dir, 'unwatched')]);
        runs['filesVar'] = await runChild('/bin/sh', ['-c', FILES_SH, 'sh', varDir]);
        // The setuid bit given outside the watched folders (by path, and by install's fchmod), and a plain chmod there.
        mkdirSync(path.join(dir, 'elsewhere'), { mode: 0o755 });
        runs['setuidElsewhere'] = await runChild('/bin/sh', ['-c', 'cd "$1" && cp /bin/true s && chmod 4755 s && install -m 4755 /bin/true i && cp /bin/true r && chmod u+s ./r && "$2" -c "import os; os.close(os.open(\'c\', os.O_CREAT | os.O_WRONLY, 0o4755))" && cp /bin/true p && chmod 755 p', 'sh', path.join(dir, 'elsewhere'), python3]);
        // A hard link made in a watched folder to a file from an unwatched one, and a symbolic link.
        // And, from an unwatched folder, symbolic links to a watched file: absolute (seen) and relative (not).
        runs['links'] = await runChild('/bin/sh', ['-c', 'echo d > "$2/t" && ln "$2/t" "$1/hard" && ln -s ../elsewhere/unit.service "$1/soft" && ln -s "$1/hard" "$3/toward-watched" && ln -s ../watched/hard "$3/relative-toward-watched"', 'sh', watched, path.join(dir, 'unwatched'), path.join(dir, 'bin')]);
        // Watched files named with "//", "." and ".." (seen, in their normal form), and an
        // unwatched one (not reported).
        runs['oddPaths'] = await runChild('/bin/sh', ['-c', ODD_PATHS_SH, 'sh', dir]);
        // ia32 calls (int $0x80) from a 64-bit program: one process per call, each the actor.
        if (ia32Skip === false) {
          const ia32 = (key: string, ...args: string[]) => runChild(bin['ia32'] ?? '', args).then((r) => (runs[key] = r));
          await ia32('ia32Create', 'create', path.join(watched, 'ia32-created'));
          await ia32('ia32Chmod', 'chmod', path.join(watched, 'ia32-created'));
          await ia32('ia32Times', 'times', path.join(watched, 'ia32-created'));
          await ia32('ia32Rename', 'rename', path.join(dir, 'unwatched', 'ia32-moved'), path.join(watched, 'ia32-renamed'));
          await ia32('ia32Unlink', 'unlink', path.join(watched, 'ia32-renamed'));
          await ia32('ia32Connect', 'connect', String(nodePort));
          await ia32('ia32Socketcall', 'socketcall', String(nodePort));
          await ia32('ia32Ptrace', 'ptrace');
          await ia32('ia32Setuid', 'setuid32');
          await ia32('ia32Setresuid', 'setresuid32');
          await ia32('ia32Memfd', 'memfd', 'hx-ia32');
          await ia32('ia32Kill', 'kill', String(pid));
          if (typeof dns !== 'string') {
            for (const [way, id] of Object.entries(IA32_DNS)) await ia32(`ia32Dns:${way}`, 'dns', way, dnsQuery(id, dnsName(`ia32-${way}`)).toString('hex'));
          }
          for (const way of Object.keys(IA32_LISTEN)) await ia32(`ia32Listen:${way}`, 'listen', way);
        }
        runs['tamper'] = await runChild('/bin/sh', ['-c', 'kill -0 "$1"', 'sh', String(pid)]);
        // The same probe from the process that started hades events: its parent.
        process.kill(pid, 0);
        // And a probe of this test process, which hades events protects as its supervisor.
        runs['tamperSupervisor'] = await runChild('/bin/sh', ['-c', 'kill -0 "$1"', 'sh', String(process.pid)]);
        await new Promise((resolve) => setTimeout(resolve, 200));
        // As `hades start` does for its agent: this process names itself the supervisor.
      }, { env: { ...process.env, HADES_START_PID: String(process.pid) } });
    } finally {
      server.close();
      if (typeof dns !== 'string') dns.stop();
    }
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (varDir) rmSync(varDir, { recursive: true, force: true });
  });

  const run = (key: string): ChildRun => {
    const r = runs[key];
    assert.ok(r, `workload ${key} did not run`);
    return r;
  };
  const ok = (key: string): ChildRun => {
    const r = run(key);
    assert.equal(r.status, 0, `workload ${key} failed: ${r.stderr}`);
    return r;
  };
  const info = (key: string) => JSON.parse(ok(key).stdout) as Record<string, number>;
  const of = (action: string, key: string) => actionsOf(capture.events, action, run(key).pid);

  it('prints only events that match the schema, stops cleanly, and reports the security hooks', () => {
    assert.equal(capture.status, 0, capture.stderr);
    assert.deepEqual(capture.invalid, []);
    const line = /hades: capturing from (\w+) \(([^)]*)\)/.exec(capture.stderr);
    assert.equal(line?.[1], 'ebpf', capture.stderr);
    const hooks = line?.[2]?.split(', ') ?? [];
    for (const hook of ['connect', 'accept', 'listen', 'dns', 'ptrace', 'memfd_create', 'module_load', 'priv_change', 'file_create', 'file_rename', 'file_delete', 'file_chmod', 'kill']) {
      assert.ok(hooks.includes(hook), `hook ${hook} is active: ${line?.[0]}`);
    }
  });

  describe('network', () => {
    for (const [key, host, type] of [['net4', '127.0.0.1', 'ipv4'], ['net6', '::1', 'ipv6']] as const) {
      it(`connect over ${type} to a local listener, with both ends`, () => {
        const ports = info(key);
        const e = of('connect', key).find((c) => c['destination']?.port === ports['port']);
        assertActor(capture.events, e, run(key).pid, { executable: pythonExe, ancestorPid: process.pid });
        assert.equal(e['event'].outcome, 'success');
        assert.deepEqual(e['source'], { ip: host, port: ports['client_port'] });
        assert.deepEqual(e['destination'], { ip: host, port: ports['port'] });
        assert.deepEqual(e['network'], { transport: 'tcp', type, direction: 'egress' });
        assert.equal(e['hades'].socket.errno, undefined);
        assert.equal(e['hades'].socket.state, undefined, 'a blocking connect has no async state');
      });

      it(`listen over ${type}: bound address, port and backlog`, () => {
        const ports = info(key);
        const e = of('listen', key).find((l) => l['source']?.port === ports['port']);
        assertActor(capture.events, e, run(key).pid, { executable: pythonExe, ancestorPid: process.pid });
        assert.equal(e['event'].outcome, 'success');
        assert.deepEqual(e['source'], { ip: host, port: ports['port'] });
        assert.equal(e['network'].transport, 'tcp');
        assert.equal(e['network'].type, type);
        assert.equal(e['hades'].socket.backlog, 7);
      });

      it(`accept over ${type}: the source is the client`, () => {
        const ports = info(key);
        const e = of('accept', key).find((a) => a['destination']?.port === ports['port']);
        assertActor(capture.events, e, run(key).pid, { executable: pythonExe, ancestorPid: process.pid });
        assert.equal(e['event'].outcome, 'success');
        assert.deepEqual(e['source'], { ip: host, port: ports['client_port'] });
        assert.deepEqual(e['destination'], { ip: host, port: ports['port'] });
        assert.deepEqual(e['network'], { transport: 'tcp', type, direction: 'ingress' });
      });

      it(`a refused connect over ${type} is a failure with ECONNREFUSED`, () => {
        const ports = info(key);
        assert.equal(ports['refused'], 111, 'the port was closed');
        const e = of('connect', key).find((c) => c['destination']?.port === ports['closed']);
        assertActor(capture.events, e, run(key).pid, { executable: pythonExe, ancestorPid: process.pid });
        assert.equal(e['event'].outcome, 'failure');
        assert.equal(e['hades'].socket.errno, 'ECONNREFUSED');
        assert.deepEqual(e['destination'], { ip: host, port: ports['closed'] });
        assert.equal(e['network'].transport, 'tcp');
      });

      it(`a UDP connect over ${type}`, () => {
        const ports = info(key);
        const e = of('connect', key).find((c) => c['destination']?.port === 9);
        assertActor(capture.events, e, run(key).pid, { executable: pythonExe, ancestorPid: process.pid });
        assert.equal(e['event'].outcome, 'success');
        assert.deepEqual(e['source'], { ip: host, port: ports['udp_port'] });
        assert.deepEqual(e['network'], { transport: 'udp', type, direction: 'egress' });
      });
    }

    it('a non-blocking connect gives a pending event, then an established one', () => {
      const result = info('nonblocking');
      assert.equal(result['first'], 115, 'connect returned EINPROGRESS');
      assert.equal(result['error'], 0);
      const events = of('connect', 'nonblocking').filter((c) => c['destination']?.port === nodePort);
      assert.deepEqual(events.map((c) => c['hades'].socket.state), ['pending', 'established'], JSON.stringify(events.map((c) => c['hades'])));
      const [pending, established] = events as [AnyEvent, AnyEvent];
      assertActor(capture.events, pending, run('nonblocking').pid, { executable: pythonExe, ancestorPid: process.pid });
      assertActor(capture.events, established, run('nonblocking').pid, { executable: pythonExe, ancestorPid: process.pid });
      assert.equal(pending['event'].outcome, 'unknown');
      assert.equal(pending['hades'].socket.errno, undefined, 'EINPROGRESS is no error');
      assert.equal(established['event'].outcome, 'success');
      assert.deepEqual(established['source'], { ip: '127.0.0.1', port: result['local_port'] });
      assert.deepEqual(established['destination'], { ip: '127.0.0.1', port: nodePort });
      assert.ok(pending['event'].sequence < established['event'].sequence);
    });

    it('a connect to a watched unix socket path names the path', () => {
      ok('unixWatched');
      const socketPath = path.join(dir, `${marker}.sock`);
      const e = of('connect', 'unixWatched').find((c) => c['destination']?.address === socketPath);
      assertActor(capture.events, e, run('unixWatched').pid, { executable: pythonExe, ancestorPid: process.pid });
      assert.equal(e['event'].outcome, 'success');
      assert.deepEqual(e['destination'], { address: socketPath });
      assert.equal(e['source'], undefined);
      assert.deepEqual(e['network'], { transport: 'unix', type: 'unix', direction: 'egress' });
    });

    it('a connect to a watched unix socket spelled another way (relative, //, /proc/self/root, a symbolic link) names the path its server bound', () => {
      ok('unixSpelled');
      const socketPath = path.join(dir, `${marker}-spelled.sock`);
      const connects = of('connect', 'unixSpelled');
      // "//" still starts with the watched folder, and is reported as spelled; the others
      // (relative, /proc/self/root, a link elsewhere) by the path the server bound.
      assert.deepEqual(
        connects.map((e) => e['destination']?.address).sort(),
        [socketPath, socketPath, socketPath, path.join(dir, `/${marker}-spelled.sock`).replace(`${dir}/`, `${dir}//`)].sort(),
      );
      for (const e of connects) assert.equal(e['event'].outcome, 'success');
    });

    it('a connect to a unix socket outside the watched paths gives no event', () => {
      ok('unixUnwatched');
      const socketPath = path.join(varDir, `${marker}.sock`);
      assert.deepEqual(capture.events.filter((e) => e['destination']?.address === socketPath), []);
      assert.deepEqual(of('connect', 'unixUnwatched'), []);
    });
  });

  describe('dns_query', () => {
    const needDns = (t: { skip: (reason: string) => void }): boolean => {
      if (typeof dns === 'string') t.skip(dns);
      return typeof dns !== 'string';
    };
    const queriesOf = (key: string, name: string) => of('dns_query', key).filter((e) => e['dns']?.question?.name === name);

    for (const [key, mode] of [['dnsSendto', 'sendto'], ['dnsConnected', 'connected']] as const) {
      it(`a query over ${mode === 'sendto' ? 'an unconnected socket (sendto/recvfrom)' : 'a connected socket (send/recv)'} and its answer`, (t) => {
        if (!needDns(t)) return;
        ok(key);
        const name = dnsName(mode);
        const events = queriesOf(key, name);
        const query = events.find((e) => e['dns'].type === 'query');
        const answer = events.find((e) => e['dns'].type === 'answer');
        assertActor(capture.events, query, run(key).pid, { executable: pythonExe, ancestorPid: process.pid });
        assertActor(capture.events, answer, run(key).pid, { executable: pythonExe, ancestorPid: process.pid });
        assert.deepEqual(query['dns'].question, { name, type: 'A', class: 'IN' });
        assert.equal(query['dns'].id, dnsIds[mode]);
        assert.deepEqual(query['destination'], { ip: '127.0.0.1', port: 53 });
        assert.deepEqual(query['network'], { transport: 'udp', type: 'ipv4', protocol: 'dns', direction: 'egress' });
        assert.equal(query['hades'].dns, undefined, 'a well-formed query has no details');
        assert.equal(answer['dns'].id, dnsIds[mode]);
        assert.equal(answer['dns'].response_code, 'NOERROR');
        assert.deepEqual(answer['dns'].resolved_ip, [ANSWER_IP]);
        assert.deepEqual(answer['dns'].answers, [{ name, type: 'A', ttl: 60, data: ANSWER_IP }]);
        assert.deepEqual(answer['destination'], { ip: '127.0.0.1', port: 53 });
        if (mode === 'connected') {
          const connect = of('connect', key).find((c) => c['destination']?.port === 53);
          assertActor(capture.events, connect, run(key).pid);
          assert.equal(connect['network'].transport, 'udp');
        }
      });
    }

    it(`aggregates ${DNS_REPEATS} identical queries: fewer events, whose counts add up`, (t) => {
      if (!needDns(t)) return;
      ok('dnsRepeat');
      const events = queriesOf('dnsRepeat', dnsName('repeat'));
      assert.ok(events.length >= 1 && events.length < DNS_REPEATS, `${events.length} events for ${DNS_REPEATS} queries`);
      const total = events.reduce((sum, e) => sum + ((e['event'].count as number | undefined) ?? 1), 0);
      assert.equal(total, DNS_REPEATS, JSON.stringify(events.map((e) => e['event'])));
      for (const e of events) {
        assertActor(capture.events, e, run('dnsRepeat').pid, { executable: pythonExe, ancestorPid: process.pid });
        assert.equal(e['dns'].type, 'query');
      }
    });

    it('keeps a malformed message (random bytes, a pointer loop) as an event with hades.dns.malformed, and the agent goes on', (t) => {
      if (!needDns(t)) return;
      const junk = of('dns_query', 'dnsJunk');
      assert.equal(junk.length, 1, JSON.stringify(junk));
      assertActor(capture.events, junk[0], run('dnsJunk').pid, { executable: pythonExe, ancestorPid: process.pid });
      assert.equal(junk[0]?.['hades'].dns.malformed, 'short_header');
      assert.equal(junk[0]?.['hades'].dns.bytes, 7);
      assert.equal(junk[0]?.['dns'].question, undefined);
      const loop = of('dns_query', 'dnsLoop');
      assert.equal(loop.length, 1, JSON.stringify(loop));
      assertActor(capture.events, loop[0], run('dnsLoop').pid, { executable: pythonExe, ancestorPid: process.pid });
      assert.equal(loop[0]?.['hades'].dns.malformed, 'pointer_loop');
      assert.equal(loop[0]?.['dns'].type, 'query');
      // The agent survived: it stopped cleanly and reported what ran after.
      assert.equal(capture.status, 0);
      assert.ok(of('tamper', 'tamper').length > 0, 'events of later workloads were reported');
    });

    it(
      'flags a query whose question is fine but whose answer section is damaged',
      (t) => {
        if (!needDns(t)) return;
        const e = queriesOf('dnsTail', dnsName('tail'))[0];
        assertActor(capture.events, e, run('dnsTail').pid);
        assert.deepEqual(e['dns'].question, { name: dnsName('tail'), type: 'A', class: 'IN' });
        assert.equal(e['hades'].dns?.malformed, 'pointer_loop');
      },
    );
  });

  describe('dns_query: the other ways of sending a query', () => {
    const wayOf = (way: string) => of('dns_query', 'dnsWays').find((e) => e['dns']?.question?.name === `${marker}-${way}.hades-test.example`);
    for (const [way, id, destination, transport, type] of [
      ['tcp', 0x1b01, '127.83.0.53', 'tcp', 'ipv4'],
      ['unspec', 0x1b02, '127.83.0.53', 'udp', 'ipv4'],
      ['unspec6', 0x1b03, '::1', 'udp', 'ipv6'],
      ['mapped', 0x1b04, '::ffff:127.83.0.53', 'udp', 'ipv6'],
      ['namelen0', 0x1b05, '127.83.0.53', 'udp', 'ipv4'],
    ] as const) {
      it(`a query sent ${way === 'tcp' ? 'by sendto on a connected TCP socket, with an address TCP ignores' : way === 'unspec' ? 'to an AF_UNSPEC address (IPv4: taken as given)' : way === 'unspec6' ? 'to an AF_UNSPEC address by a connected IPv6 socket (the peer)' : way === 'mapped' ? 'to an AF_INET address by an IPv6 socket' : 'by sendmsg with a name of length 0 (the peer)'}: seen, with the resolver the kernel sent it to`, () => {
        ok('dnsWays');
        const e = wayOf(way);
        assertActor(capture.events, e, run('dnsWays').pid, { executable: pythonExe, ancestorPid: process.pid });
        assert.equal(e['dns'].type, 'query');
        assert.equal(e['dns'].id, id);
        assert.deepEqual(e['destination'], { ip: destination, port: 53 });
        assert.deepEqual(e['network'], { transport, type, protocol: 'dns', direction: 'egress' });
      });
    }

    it('a UDP IPv6 socket connected to an AF_INET address: connect with the IPv4 source', () => {
      const { mapped_connect_port: port } = info('dnsWays');
      const e = of('connect', 'dnsWays').find((c) => c['destination']?.port === 9);
      assertActor(capture.events, e, run('dnsWays').pid, { executable: pythonExe, ancestorPid: process.pid });
      assert.deepEqual(e['source'], { ip: '127.0.0.1', port });
      assert.deepEqual(e['destination'], { ip: '127.0.0.1', port: 9 });
      assert.deepEqual(e['network'], { transport: 'udp', type: 'ipv4', direction: 'egress' });
    });
  });

  describe('privilege_change', () => {
    it('setresuid(65534, 65534, 65534) as root: before and after', () => {
      const r = ok('privDrop');
      const e = of('privilege_change', 'privDrop').find((p) => p['hades'].privilege.call === 'setresuid');
      assertActor(capture.events, e, r.pid, { executable: bin['priv'] ?? '', ancestorPid: process.pid });
      assert.deepEqual(e['process'].args, [bin['priv'], 'drop', marker]);
      assert.equal(e['event'].outcome, 'success');
      const { before: was, after: now, errno } = e['hades'].privilege;
      assert.equal(errno, undefined);
      assert.deepEqual([was.uid, was.euid, was.suid, was.fsuid], [0, 0, 0, 0]);
      assert.deepEqual([now.uid, now.euid, now.suid, now.fsuid], [65534, 65534, 65534, 65534]);
      assert.ok((was.capabilities as string[]).includes('CAP_SETUID'));
      assert.deepEqual(now.capabilities, [], 'a root process that gives up uid 0 loses its capabilities');
      assert.equal(e['process'].user.id, '65534', 'the actor context shows the credentials after the call');
    });

    it('setuid(0) by a non-root process fails with EPERM', () => {
      const r = ok('privRoot');
      const e = of('privilege_change', 'privRoot').find((p) => p['hades'].privilege.call === 'setuid');
      assertActor(capture.events, e, r.pid, { executable: bin['priv'] ?? '', ancestorPid: process.pid });
      assert.equal(e['event'].outcome, 'failure');
      assert.equal(e['hades'].privilege.errno, 'EPERM');
      assert.equal(e['hades'].privilege.before.euid, 65534);
      assert.equal(e['hades'].privilege.after.euid, 65534);
      assert.equal(e['hades'].privilege.after.uid, 65534);
    });

    it(
      'an exec of a setuid-root executable reached through a bind mount of another mount namespace is no escalation',
      {},
      (t) => {
        if (!canHide) return t.skip('needs unshare and mount');
        const r = ok('hidden');
        const exec = execOf(capture.events, r.pid);
        assert.equal(exec?.['process'].executable, bin['plain']);
        assert.deepEqual(exec?.['process'].args, [bin['plain'], marker]);
        assert.equal(exec?.['hades'].process.credentials.euid, 0, 'the setuid-root file made the process root');
        assert.equal(exec?.['hades'].process.credentials.uid, 65534);
        const reported = of('privilege_change', 'hidden').filter((p) => p['hades'].privilege.call === 'exec');
        assert.deepEqual(reported.map((p) => p['hades'].privilege), []);
      },
    );

    it('an exec of a real setuid-root executable is not reported as an escalation', () => {
      const r = ok('setuidRoot');
      const exec = execOf(capture.events, r.pid);
      assert.equal(exec?.['process'].executable, bin['suid']);
      assert.equal(exec?.['hades'].process.credentials.euid, 0, 'the process did become root');
      assert.equal(exec?.['hades'].process.credentials.uid, 65534);
      assert.deepEqual(of('privilege_change', 'setuidRoot').filter((p) => p['hades'].privilege.call === 'exec'), []);
    });
  });

  it('ptrace: attach and pokedata name the traced child', () => {
    const r = ok('ptrace');
    const child = Number(r.stdout.trim());
    assert.ok(child > 0, r.stdout);
    const events = of('ptrace', 'ptrace');
    const fork = capture.events.find((e) => e['event'].action === 'fork' && e['process'].pid === child);
    assert.ok(fork, 'the traced child was forked');
    for (const [request, code] of [['attach', 16], ['pokedata', 5]] as const) {
      const e = events.find((p) => p['hades'].ptrace.request === request);
      assertActor(capture.events, e, r.pid, { executable: bin['ptrace'] ?? '', ancestorPid: process.pid });
      assert.equal(e['event'].outcome, 'success');
      assert.equal(e['hades'].ptrace.request_code, code);
      assert.equal(e['hades'].ptrace.target.pid, child);
      assert.equal(e['hades'].ptrace.target.name, 'hx-ptrace');
      assert.equal(e['hades'].ptrace.target.entity_id, fork['process'].entity_id);
      assert.equal(e['hades'].ptrace.errno, undefined);
    }
  });

  for (const [key, request, code] of [['vmWritev', 'process_vm_writev', 0x10000], ['procMem', 'proc_mem_write', 0x10001]] as const) {
    it(`${request}: a write into another process without ptrace is a ptrace event naming the target`, () => {
      const r = ok(key);
      const child = Number(r.stdout.trim());
      const fork = capture.events.find((e) => e['event'].action === 'fork' && e['process'].pid === child);
      assert.ok(fork, 'the child was forked');
      const e = of('ptrace', key).find((p) => p['hades'].ptrace.request === request);
      assertActor(capture.events, e, r.pid, { executable: bin['bypass'] ?? '', ancestorPid: process.pid });
      assert.equal(e['event'].outcome, 'success');
      assert.equal(e['hades'].ptrace.request_code, code);
      assert.equal(e['hades'].ptrace.target.pid, child);
      assert.equal(e['hades'].ptrace.target.entity_id, fork['process'].entity_id);
    });
  }

  it('a TCP connection opened by sendto(MSG_FASTOPEN), without connect(2): a connect event, pending then established', (t) => {
    const [sent, err, localPort] = ok('fastopen').stdout.trim().split(' ').map(Number);
    if (sent !== 2) return t.skip(`sendto(MSG_FASTOPEN) did not send (errno ${err}): net.ipv4.tcp_fastopen lacks the client bit`);
    const events = of('connect', 'fastopen');
    assert.deepEqual(events.map((e) => [e['hades'].socket.state, e['hades'].socket.connect_call, e['destination'].ip, e['destination'].port]), [['pending', false, '127.0.0.1', nodePort], ['established', undefined, '127.0.0.1', nodePort]], JSON.stringify(events));
    assertActor(capture.events, events[0], run('fastopen').pid, { executable: bin['bypass'] ?? '' });
    assert.equal(events[1]?.['source'].port, localPort);
  });

  it('memfd_create, then an exec of the memfd marked fileless', () => {
    const r = ok('memfd');
    const created = of('memfd_create', 'memfd')[0];
    assertActor(capture.events, created, r.pid, { executable: bin['memfd'] ?? '', ancestorPid: process.pid });
    assert.equal(created['event'].outcome, 'success');
    assert.deepEqual(created['file'], { name: 'hx-test' });
    assert.equal(created['hades'].memfd.flags, 0);
    assert.deepEqual(created['hades'].memfd.flag_names, []);
    assert.ok((created['hades'].memfd.fd as number) >= 3);
    const exec = execOf(capture.events, r.pid);
    assert.ok(exec);
    assert.deepEqual(exec['process'].args, ['memfd-true', marker]);
    assert.match(exec['process'].executable as string, /^\/memfd:hx-test/);
    assert.equal(exec['hades'].process.fileless, true);
    assert.equal(exec['process'].entity_id, created['process'].entity_id, 'the same process instance');
    assert.ok(created['event'].sequence < exec['event'].sequence);
  });

  it('module_load: a finit_module attempt fails with ENOSYS on a kernel without modules', { skip: !noModules && '/proc/modules exists: this kernel loads modules, and the test loads none' }, () => {
    assert.match(capture.stderr, /capturing from ebpf \([^)]*\bmodule_load\b/, 'the hook is active');
    const r = ok('module');
    assert.equal(r.stdout.trim(), '-1 38', 'the kernel refused with ENOSYS');
    const e = of('module_load', 'module')[0];
    assertActor(capture.events, e, r.pid, { executable: bin['module'] ?? '', ancestorPid: process.pid });
    assert.equal(e['event'].outcome, 'failure');
    assert.deepEqual(e['hades'].module, { name: 'true', path: realpathSync('/bin/true'), syscall: 'finit_module', errno: 'ENOSYS' });
  });

  describe('files', () => {
    const inWatched = (name: string) => path.join(watched, name);
    const fileEvent = (action: string, file: string) => capture.events.find((e) => e['event'].action === action && e['file']?.path === file);

    it('creating a file in a watched folder: file_create by the shell, created', () => {
      const sh = ok('filesWatched');
      const e = fileEvent('file_create', inWatched('f'));
      assertActor(capture.events, e, sh.pid, { executable: realpathSync('/bin/sh'), ancestorPid: process.pid });
      assert.equal(e['event'].outcome, 'success');
      assert.equal(e['file'].name, 'f');
      assert.equal(e['file'].directory, watched);
      assert.equal(e['file'].mode, '0644');
      assert.ok((e['file'].inode as number) > 0);
      assert.equal(e['hades'].file.created, true);
      assert.equal(e['hades'].file.executable, false);
    });

    it('chmod 755: file_chmod, made executable', () => {
      const sh = ok('filesWatched');
      const e = fileEvent('file_chmod', inWatched('f'));
      assert.ok(e);
      assertActor(capture.events, e, e['process'].pid as number, { executable: realpathSync('/bin/chmod'), ancestorPid: sh.pid });
      assert.equal(e['event'].outcome, 'success');
      assert.equal(e['file'].mode, '0755');
      // A chmod by path does not tell the old mode: whether the bit is new is not claimed.
      assert.equal(e['hades'].file.made_executable, undefined);
      assert.equal(e['hades'].file.setuid, false);
    });

    it('touch -d and touch -r: file_times with the times set, backdated; touch alone (now) and unwatched folders: nothing', () => {
      const sh = ok('times');
      const set = capture.events.filter((e) => e['event'].action === 'file_times' && e['process'].pid !== undefined);
      const d = set.find((e) => e['file'].path === inWatched('t'));
      assert.ok(d, JSON.stringify(set.map((e) => e['file'])));
      assertActor(capture.events, d, d['process'].pid as number, { executable: realpathSync('/usr/bin/touch'), ancestorPid: sh.pid });
      assert.equal(d['event'].outcome, 'success');
      assert.equal(d['file'].mtime, '2019-01-01T00:00:00.000Z');
      assert.equal(d['file'].atime, '2019-01-01T00:00:00.000Z');
      assert.deepEqual([d['hades'].file.syscall, d['hades'].file.mtime_seconds, d['hades'].file.backdated], ['utimensat', 1546300800, true]);
      // `touch t` sets now: not reported, so t has one event; t2 takes t's times (-r: now, since `touch t`).
      assert.equal(set.filter((e) => e['file'].path === inWatched('t')).length, 1);
      const r = set.find((e) => e['file'].path === inWatched('t2'));
      assert.ok(r);
      assert.equal(r['hades'].file.backdated, false);
      assert.ok(!set.some((e) => (e['file'].path as string).endsWith('/t3')), 'outside the watched folders');
    });

    it('os.utime by path and by descriptor (futimens): file_times, the descriptor\u2019s file named by the driver', () => {
      const py = ok('timesPy');
      const inode = Number(py.stdout.trim());
      const set = capture.events.filter((e) => e['event'].action === 'file_times' && e['file'].path === inWatched('p'));
      assert.equal(set.length, 2, JSON.stringify(set.map((e) => [e['file'], e['hades'].file])));
      const [byPath, byFd] = set;
      assert.deepEqual([byPath?.['file'].mtime, byPath?.['hades'].file.atime_seconds, byPath?.['hades'].file.backdated], ['2001-09-09T01:46:40.000Z', 1000000000, true]);
      // By descriptor: the driver names the file from the descriptor, with its inode.
      assert.equal(byFd?.['file'].inode, inode);
      assert.equal(byFd?.['file'].atime, '1970-01-01T00:00:00.000Z', 'ns=(0, ...): an access time of 0 is a time given');
      assert.equal(byFd?.['hades'].file.atime_seconds, 0);
      assert.deepEqual([byFd?.['hades'].file.mtime_seconds, byFd?.['file'].mtime, byFd?.['hades'].file.backdated], [2000000000, '2033-05-18T03:33:20.000Z', false]);
    });

    it('mv: file_rename with the old path', () => {
      const sh = ok('filesWatched');
      const e = fileEvent('file_rename', inWatched('g'));
      assert.ok(e);
      assertActor(capture.events, e, e['process'].pid as number, { executable: realpathSync('/bin/mv'), ancestorPid: sh.pid });
      assert.equal(e['event'].outcome, 'success');
      assert.equal(e['hades'].file.old_path, inWatched('f'));
      assert.equal(e['file'].name, 'g');
    });

    it('rm: file_delete', () => {
      const sh = ok('filesWatched');
      const e = fileEvent('file_delete', inWatched('g'));
      assert.ok(e);
      assertActor(capture.events, e, e['process'].pid as number, { executable: realpathSync('/bin/rm'), ancestorPid: sh.pid });
      assert.equal(e['event'].outcome, 'success');
    });

    it('ln and ln -s in a watched folder: file_create with the link and its target', () => {
      const sh = ok('links');
      const hard = fileEvent('file_create', inWatched('hard'));
      assert.ok(hard, 'hard link');
      assertActor(capture.events, hard, hard['process'].pid as number, { executable: realpathSync('/bin/ln'), ancestorPid: sh.pid });
      const original = path.join(dir, 'unwatched', 't');
      assert.deepEqual([hard['event'].outcome, hard['hades'].file.created, hard['hades'].file.link], ['success', true, { type: 'hard', target: original, resolved: original }]);
      assert.equal(hard['file'].mode, undefined);
      const toward = capture.events.filter((e) => e['event'].action === 'file_create' && (e['file']?.path as string).startsWith(path.join(dir, 'bin', '')) && e['hades'].file.link);
      assert.deepEqual(toward.map((e) => [e['file'].name, e['hades'].file.link.resolved]), [['toward-watched', inWatched('hard')]], 'an absolute target in a watched place is seen, a relative one is not');
      const soft = fileEvent('file_create', inWatched('soft'));
      assert.ok(soft, 'symbolic link');
      assert.deepEqual(
        [soft['hades'].file.syscall, soft['hades'].file.created, soft['hades'].file.link],
        ['symlinkat', true, { type: 'symbolic', target: '../elsewhere/unit.service', resolved: path.join(dir, 'elsewhere', 'unit.service') }],
      );
    });

    it('paths spelled with "//", "." or "..": the watched ones seen, named in their normal form, the argument kept', () => {
      const pid = ok('oddPaths').pid;
      const files = capture.events.filter((e) => e['process']?.pid !== undefined && String(e['event'].action).startsWith('file_') && (JSON.stringify(e['file']).includes('odd-') || JSON.stringify(e['hades']?.file ?? {}).includes('odd-')));
      const summary = files.map((e) => [e['event'].action, e['file'].path, e['hades'].file.argument, e['hades'].file.old_path]);
      assert.deepEqual(summary, [
        ['file_rename', `${watched}/odd-renamed`, `${dir}//watched/odd-renamed`, `${dir}/unwatched/o1`],
        ['file_rename', `${watched}/odd-dotdot`, `${dir}/unwatched/../watched/odd-dotdot`, `${dir}/unwatched/o2`],
        ['file_chmod', `${watched}/odd-renamed`, `${dir}/watched/./odd-renamed`, undefined],
        ['file_delete', `${watched}/odd-dotdot`, `${dir}//watched/odd-dotdot`, undefined],
      ], JSON.stringify(summary));
      for (const e of files) assert.ok(e['process'].pid !== pid, 'the actor is the command the shell ran');
      for (const e of files) assertActor(capture.events, e, e['process'].pid, { ancestorPid: pid });
    });

    for (const [key, name] of [['writeInPlace', 'in-place'], ['mmapInPlace', 'mapped']] as const) {
      it(`an existing watched file opened for writing without O_CREAT or O_TRUNC (${key === 'writeInPlace' ? 'write' : 'mmap'}): file_create, written, not created`, () => {
        const r = ok(key);
        const e = fileEvent('file_create', inWatched(name));
        assertActor(capture.events, e, r.pid, { executable: bin['bypass'] ?? '', ancestorPid: process.pid });
        assert.deepEqual([e['event'].type, e['event'].outcome, e['hades'].file.created, e['hades'].file.written, e['hades'].file.truncated], [['creation'], 'success', false, true, undefined]);
      });
    }

    it('a setuid bit given outside the watched folders is reported there, a plain chmod is not', () => {
      ok('setuidElsewhere');
      const elsewhere = path.join(dir, 'elsewhere');
      const chmods = capture.events.filter((e) => e['event'].action === 'file_chmod' && (e['file']?.path as string | undefined)?.startsWith(`${elsewhere}/`));
      const of = (name: string) => chmods.filter((e) => e['file'].name === name);
      // By path, by install's fchmod, and by a relative path (./r: an odd spelling, kept for its bit).
      for (const name of ['s', 'i', 'r']) {
        const e = of(name)[0];
        assert.ok(e, `${name}: ${JSON.stringify(chmods.map((x) => x['file']))}`);
        assert.deepEqual([e['file'].mode, e['hades'].file.setuid, e['event'].outcome], ['04755', true, 'success']);
      }
      assert.deepEqual(of('p'), []);
      // Made with the bit by open(2).
      const created = capture.events.find((e) => e['event'].action === 'file_create' && e['file']?.path === path.join(elsewhere, 'c'));
      assert.ok(created, 'the file created setuid');
      assert.deepEqual([created['file'].mode, created['hades'].file.setuid, created['hades'].file.created], ['04755', true, true]);
    });

    it('the same operations outside the watched folders give no file event', () => {
      ok('filesTmp');
      ok('filesVar');
      const unwatched = [path.join(dir, 'unwatched'), varDir];
      const leaked = capture.events.filter((e) => e['event'].action.startsWith('file_') && unwatched.some((u) => (e['file']?.path as string | undefined)?.startsWith(`${u}/`)));
      assert.deepEqual(leaked, []);
    });
  });

  describe('ia32 system calls (int $0x80) from a 64-bit program: seen as the same calls', { skip: ia32Skip }, () => {
    const actor: (e: AnyEvent | undefined, key: string) => asserts e is AnyEvent = (e, key) => {
      assertActor(capture.events, e, ok(key).pid, { executable: bin['ia32'] ?? '', ancestorPid: process.pid });
      assert.equal(e['hades'].compat_syscall, true, 'said to be a 32-bit call');
    };
    const fileOf = (action: string, key: string) => {
      const e = of(action, key)[0];
      actor(e, key);
      assert.equal(e['event'].outcome, 'success');
      return e;
    };

    it('open(O_CREAT) in a watched folder: file_create, created', () => {
      const e = fileOf('file_create', 'ia32Create');
      assert.equal(e['file'].path, path.join(watched, 'ia32-created'));
      assert.equal(e['file'].mode, '0640');
      assert.deepEqual([e['hades'].file.syscall, e['hades'].file.created], ['open', true]);
    });

    it('chmod: file_chmod with the new mode', () => {
      const e = fileOf('file_chmod', 'ia32Chmod');
      assert.deepEqual([e['file'].path, e['file'].mode, e['hades'].file.syscall], [path.join(watched, 'ia32-created'), '0755', 'chmod']);
    });

    it('utimensat with 32-bit and with 64-bit times (utimensat_time64): file_times with the times set', () => {
      const events = capture.events.filter((e) => e['event'].action === 'file_times' && e['process'].pid === run('ia32Times').pid);
      assert.deepEqual(
        events.map((e) => [e['file'].path, e['hades'].file.syscall, e['hades'].file.mtime_seconds, e['hades'].file.backdated, e['hades'].compat_syscall]),
        [
          [path.join(watched, 'ia32-created'), 'utimensat', 1546300800, true, true],
          [path.join(watched, 'ia32-created'), 'utimensat', 4102444800, false, true],
        ],
      );
    });

    it('rename into a watched folder: file_rename with the old path', () => {
      const e = fileOf('file_rename', 'ia32Rename');
      assert.deepEqual([e['file'].path, e['hades'].file.old_path, e['hades'].file.syscall], [path.join(watched, 'ia32-renamed'), path.join(dir, 'unwatched', 'ia32-moved'), 'rename']);
    });

    it('unlink: file_delete', () => {
      const e = fileOf('file_delete', 'ia32Unlink');
      assert.deepEqual([e['file'].path, e['hades'].file.syscall], [path.join(watched, 'ia32-renamed'), 'unlink']);
    });

    for (const [key, call] of [['ia32Connect', 'connect (362)'], ['ia32Socketcall', 'socketcall(SYS_CONNECT) (102)']] as const) {
      it(`${call}: one connect event from the call, with both ends`, () => {
        const [result, localPort] = ok(key).stdout.trim().split(' ').map(Number);
        assert.equal(result, 0);
        const events = of('connect', key);
        assert.equal(events.length, 1, JSON.stringify(events));
        const e = events[0];
        actor(e, key);
        assert.equal(e['event'].outcome, 'success');
        assert.deepEqual(e['destination'], { ip: '127.0.0.1', port: nodePort });
        assert.deepEqual(e['source'], { ip: '127.0.0.1', port: localPort });
        assert.equal(e['hades'].socket.connect_call, undefined, 'seen at the call, not only at the TCP state change');
      });
    }

    it('ptrace(PTRACE_ATTACH) of a child: ptrace naming the child', () => {
      const r = ok('ia32Ptrace');
      const child = Number(r.stdout.trim().split(' ')[1]);
      const e = of('ptrace', 'ia32Ptrace').find((p) => p['hades'].ptrace.request === 'attach');
      actor(e, 'ia32Ptrace');
      assert.equal(e['event'].outcome, 'success');
      assert.equal(e['hades'].ptrace.target.pid, child);
      assert.equal(e['hades'].ptrace.target.name, 'hx-ia32');
    });

    for (const [key, call] of [['ia32Setuid', 'setuid'], ['ia32Setresuid', 'setresuid']] as const) {
      it(`${call}32(65534...) as root: privilege_change, call ${call}`, () => {
        const e = of('privilege_change', key).find((p) => p['hades'].privilege.call === call);
        actor(e, key);
        assert.equal(e['event'].outcome, 'success');
        const { before: was, after: now } = e['hades'].privilege;
        assert.deepEqual([was.uid, was.euid, was.suid], [0, 0, 0]);
        assert.deepEqual([now.uid, now.euid, now.suid], [65534, 65534, 65534]);
      });
    }

    it('memfd_create: memfd_create with its name', () => {
      const e = fileOf('memfd_create', 'ia32Memfd');
      assert.deepEqual(e['file'], { name: 'hx-ia32' });
      assert.equal(e['hades'].memfd.fd, Number(ok('ia32Memfd').stdout.trim()));
    });

    for (const [way, id] of Object.entries(IA32_DNS) as [keyof typeof IA32_DNS, number][]) {
      it(`a DNS query to port 53 by ${IA32_DNS_CALLS[way]}: dns_query, query and answer`, (t) => {
        if (typeof dns === 'string') return t.skip(dns);
        const key = `ia32Dns:${way}`;
        const [sent, got] = ok(key).stdout.trim().split(' ').map(Number);
        assert.ok(sent !== undefined && sent > 12 && got !== undefined && got > 12, ok(key).stdout);
        const name = dnsName(`ia32-${way}`);
        const events = of('dns_query', key).filter((e) => e['dns']?.question?.name === name);
        const query = events.filter((e) => e['dns'].type === 'query');
        const answer = events.filter((e) => e['dns'].type === 'answer');
        assert.equal(query.length, 1, JSON.stringify(events));
        assert.equal(answer.length, 1, JSON.stringify(events));
        actor(query[0], key);
        actor(answer[0], key);
        assert.deepEqual([query[0]?.['dns'].id, query[0]?.['dns'].question], [id, { name, type: 'A', class: 'IN' }]);
        assert.deepEqual(query[0]?.['destination'], { ip: '127.0.0.1', port: 53 });
        assert.deepEqual(query[0]?.['network'], { transport: 'udp', type: 'ipv4', protocol: 'dns', direction: 'egress' });
        assert.deepEqual([answer[0]?.['dns'].id, answer[0]?.['dns'].response_code, answer[0]?.['dns'].resolved_ip], [id, 'NOERROR', [ANSWER_IP]]);
        assert.deepEqual(answer[0]?.['destination'], { ip: '127.0.0.1', port: 53 });
      });
    }

    for (const [way, [listenCall, acceptCall]] of Object.entries(IA32_LISTEN)) {
      it(`${listenCall} and ${acceptCall}: listen with port and backlog, accept with both ends`, () => {
        const key = `ia32Listen:${way}`;
        const ports = info(key);
        assert.deepEqual([ports['listen'], ports['peer_port']], [0, ports['client_port']]);
        const listens = of('listen', key);
        assert.equal(listens.length, 1, JSON.stringify(listens));
        const l = listens[0];
        actor(l, key);
        assert.equal(l['event'].outcome, 'success');
        assert.deepEqual(l['source'], { ip: '127.0.0.1', port: ports['port'] });
        assert.deepEqual([l['network'].transport, l['network'].type, l['hades'].socket.backlog], ['tcp', 'ipv4', 5]);
        const accepts = of('accept', key);
        assert.equal(accepts.length, 1, JSON.stringify(accepts));
        const a = accepts[0];
        actor(a, key);
        assert.equal(a['event'].outcome, 'success');
        assert.deepEqual(a['source'], { ip: '127.0.0.1', port: ports['client_port'] });
        assert.deepEqual(a['destination'], { ip: '127.0.0.1', port: ports['port'] });
        assert.deepEqual(a['network'], { transport: 'tcp', type: 'ipv4', direction: 'ingress' });
      });
    }

    it('kill(hades, 0): tamper', () => {
      const e = of('tamper', 'ia32Kill')[0];
      actor(e, 'ia32Kill');
      assert.deepEqual(e['hades'].tamper, { target: 'process', signal: 0, target_pid: hadesPid, operation: 'kill' });
    });
  });

  it('tamper: a signal 0 probe of the hades process', () => {
    const sh = ok('tamper');
    const e = of('tamper', 'tamper')[0];
    assertActor(capture.events, e, sh.pid, { executable: realpathSync('/bin/sh'), ancestorPid: process.pid });
    assert.equal(e['event'].outcome, 'success');
    assert.deepEqual(e['hades'].tamper, { target: 'process', signal: 0, target_pid: hadesPid, operation: 'kill' });
    assert.equal(e['hades'].compat_syscall, undefined, 'a 64-bit call says nothing of it');
  });

  it('tamper: a signal to the supervisor that started it (hades start) is tampering too', () => {
    const toSupervisor = of('tamper', 'tamperSupervisor');
    assert.deepEqual(toSupervisor.map((e) => e['hades'].tamper), [{ target: 'process', signal: 0, target_pid: process.pid, operation: 'kill' }]);
  });

  it('tamper: signals from the supervisor that started it (the probe, then the SIGINT that stops it) are marked by_parent', () => {
    const fromParent = capture.events.filter((e) => e['event'].action === 'tamper' && e['process']?.pid === process.pid);
    const probe = { target: 'process', target_pid: hadesPid, operation: 'kill', by_parent: true };
    assert.deepEqual(fromParent[0]?.['hades'].tamper, { ...probe, signal: 0 });
    // The SIGINT is reported when its record arrives before the stop (it did in every run so far).
    assert.deepEqual(fromParent.slice(1).map((e) => e['hades'].tamper), fromParent.length > 1 ? [{ ...probe, signal: 2 }] : []);
  });
});

describe('hades events --action connect', { skip }, () => {
  it('prints only connect events (and agent_* ones)', async () => {
    const server = net.createServer((socket) => socket.resume());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    let client: ChildRun | undefined;
    let capture: Capture;
    const dir = mkdtempSync('/tmp/hades-sec-action-');
    const config = path.join(dir, 'hades.yaml');
    writeFileSync(config, 'limits:\n  cpu_percent: 100\n');
    try {
      capture = await captureEvents(['--action', 'connect', '--config', config], async () => {
        client = await runChild(python3, ['-c', 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1]))).close()', String(port)]);
        // Other kinds that must not show up.
        await runChild('/bin/sh', ['-c', 'sleep 0.1; exit 3']);
      });
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
    assert.equal(capture.status, 0, capture.stderr);
    assert.deepEqual(capture.invalid, []);
    assert.match(capture.stderr, /capturing from ebpf \(sched_process_exec, sched_process_fork, sched_process_exit, connect\)/, 'only the hooks connect needs, plus the process tree');
    const others = capture.events.filter((e) => e['event'].action !== 'connect' && !(e['event'].action as string).startsWith('agent_'));
    assert.deepEqual(others.map((e) => e['event'].action), []);
    assert.equal(client?.status, 0, client?.stderr);
    const mine = capture.events.filter((e) => e['process']?.pid === client?.pid && e['destination']?.port === port);
    assert.equal(mine.length, 1, JSON.stringify(mine));
    assert.equal(mine[0]?.['event'].outcome, 'success');
    // exec events were not printed, but the process tree still knows the actor.
    assert.ok((mine[0]?.['hades'].ancestors as AnyEvent[]).some((a) => a['pid'] === process.pid), mine[0]?.['hades'].ancestry);
  });
});

describe('the default file_watch', { skip }, () => {
  it('sees a file dropped in /var/tmp and a user\'s .bashrc and .zshrc written', async () => {
    const varTmp = realpathSync(mkdtempSync('/var/tmp/hades-default-watch-'));
    // A home folder of a user that does not exist: /home/*/.bashrc matches any name.
    const home = mkdtempSync('/home/hades-test-');
    const dropped = path.join(varTmp, 'payload');
    const bashrc = path.join(home, '.bashrc');
    const zshrc = path.join(home, '.zshrc');
    let capture: Capture;
    try {
      capture = await captureEvents(['--action', 'file_create'], async () => {
        await runChild('/bin/sh', ['-c', 'echo x > "$1"; echo "alias ls=x" >> "$2"; echo "alias ls=x" >> "$3"', 'sh', dropped, bashrc, zshrc]);
      });
    } finally {
      rmSync(varTmp, { recursive: true, force: true });
      rmSync(home, { recursive: true, force: true });
    }
    assert.equal(capture.status, 0, capture.stderr);
    const paths = capture.events.filter((e) => e['event'].action === 'file_create').map((e) => e['file']?.path as string);
    assert.ok(paths.includes(dropped), JSON.stringify(paths));
    assert.ok(paths.includes(bashrc), JSON.stringify(paths));
    assert.ok(paths.includes(zshrc), JSON.stringify(paths));
  });

  it('watches driver.file_watch_extra besides the defaults', async () => {
    const extra = realpathSync(mkdtempSync('/var/lib/hades-extra-watch-'));
    const varTmp = realpathSync(mkdtempSync('/var/tmp/hades-default-watch-'));
    const config = path.join(extra, 'hades.yaml');
    writeFileSync(config, `driver:\n  file_watch_extra: [${JSON.stringify(`${extra}/bin/`)}]\n`);
    mkdirSync(path.join(extra, 'bin'));
    const added = path.join(extra, 'bin', 'tool');
    const unwatched = path.join(extra, 'other');
    const dropped = path.join(varTmp, 'payload');
    let capture: Capture;
    try {
      capture = await captureEvents(['--config', config, '--action', 'file_create'], async () => {
        await runChild('/bin/sh', ['-c', 'echo x > "$1"; echo x > "$2"; echo x > "$3"', 'sh', added, unwatched, dropped]);
      });
    } finally {
      rmSync(extra, { recursive: true, force: true });
      rmSync(varTmp, { recursive: true, force: true });
    }
    assert.equal(capture.status, 0, capture.stderr);
    const paths = capture.events.filter((e) => e['event'].action === 'file_create').map((e) => e['file']?.path as string);
    assert.ok(paths.includes(added), JSON.stringify(paths));
    assert.ok(paths.includes(dropped), `a default prefix still watched: ${JSON.stringify(paths)}`);
    assert.ok(!paths.includes(unwatched), JSON.stringify(paths));
  });

  it('sees a log in /var/log emptied or created, and not the appends to it', async () => {
    const logs = realpathSync(mkdtempSync('/var/log/hades-default-watch-'));
    const appended = path.join(logs, 'appended.log');
    const emptied = path.join(logs, 'emptied.log');
    const created = path.join(logs, 'created.log');
    const copied = path.join(logs, 'copied.log');
    const truncated = path.join(logs, 'truncated.log');
    const ftruncated = path.join(logs, 'ftruncated.log');
    for (const file of [appended, emptied, copied, truncated, ftruncated]) writeFileSync(file, 'line\n');
    let capture: Capture;
    try {
      capture = await captureEvents(['--action', 'file_create'], async () => {
        await runChild('/bin/sh', ['-c', 'echo x >> "$1"; : > "$2"; echo y > "$3"; cp /dev/null "$4"', 'sh', appended, emptied, created, copied]);
        // O_PATH makes the kernel ignore O_CREAT and O_TRUNC: nothing is emptied, nothing is reported.
        await runChild(python3, ['-c', 'import os, sys; os.close(os.open(sys.argv[1], os.O_PATH | os.O_CREAT | os.O_TRUNC))', appended]);
        // truncate(2) and ftruncate(2) to 0 empty a log too; to another length they are not reported.
        await runChild(python3, ['-c', 'import os, sys; os.truncate(sys.argv[1], 0); fd = os.open(sys.argv[2], os.O_WRONLY); os.ftruncate(fd, 0); os.truncate(sys.argv[3], 2)', truncated, ftruncated, appended]);
      });
    } finally {
      rmSync(logs, { recursive: true, force: true });
    }
    assert.equal(capture.status, 0, capture.stderr);
    const mine = capture.events.filter((e) => e['event'].action === 'file_create' && (e['file']?.path as string).startsWith(`${logs}/`));
    const byPath = new Map(mine.map((e) => [e['file']?.path as string, e['hades'].file as AnyEvent]));
    assert.deepEqual([...byPath.keys()].sort(), [copied, created, emptied, ftruncated, truncated].sort(), 'the append, the O_PATH open and the truncate to 2 bytes are left out in the kernel');
    assert.deepEqual([byPath.get(truncated)?.['syscall'], byPath.get(truncated)?.['truncated']], ['truncate', true]);
    assert.deepEqual([byPath.get(ftruncated)?.['syscall'], byPath.get(ftruncated)?.['truncated']], ['ftruncate', true]);
    assert.equal(byPath.get(emptied)?.['truncated'], true);
    assert.equal(byPath.get(emptied)?.['created'], false);
    // cp onto an existing file opens it with O_TRUNC and no O_CREAT.
    assert.equal(byPath.get(copied)?.['truncated'], true);
    assert.equal(byPath.get(created)?.['created'], true);
    assert.equal(byPath.get(created)?.['truncated'], undefined, 'a new file is not reported as emptied');
  });
});

/** Opens argv[1] through a file handle (name_to_handle_at, then open_by_handle_at), as root. */
const OPEN_BY_HANDLE_C = String.raw`
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
  struct file_handle *h = malloc(sizeof(*h) + MAX_HANDLE_SZ);
  int mount_id;
  h->handle_bytes = MAX_HANDLE_SZ;
  if (argc < 2 || name_to_handle_at(AT_FDCWD, argv[1], h, &mount_id, 0) != 0) { perror("name_to_handle_at"); return 2; }
  int mfd = open("/", O_RDONLY | O_DIRECTORY);
  int fd = open_by_handle_at(mfd, h, O_RDONLY);
  if (fd < 0) { perror("open_by_handle_at"); return 3; }
  char c;
  return read(fd, &c, 1) == 1 ? 0 : 4;
}
`;

describe('the default sensitive_files', { skip }, () => {
  it('sees /etc/shadow and /etc/gshadow opened, through a hard link too, and a key that appeared or was replaced after the start', async () => {
    // A home folder of a user that does not exist: /home/*/.ssh/id_* matches any name.
    const home = mkdtempSync('/home/hades-test-');
    const ssh = path.join(home, '.ssh');
    mkdirSync(ssh, { mode: 0o700 });
    const replaced = path.join(ssh, 'id_ed25519');
    const appeared = path.join(ssh, 'id_rsa');
    writeFileSync(replaced, 'old key\n', { mode: 0o600 });
    writeFileSync(`${replaced}.pub`, 'public\n');
    // Same filesystem as /etc where possible (a hard link cannot cross filesystems).
    const link = path.join('/etc', `.hades-test-link-${randomBytes(3).toString('hex')}`);
    let linked = false;
    let byHandle: ChildRun | undefined;
    let capture: Capture;
    try {
      try {
        execFileSync('ln', ['/etc/shadow', link]);
        linked = true;
      } catch {
        // protected_hardlinks or another filesystem: this part is skipped
      }
      capture = await captureEvents(['--action', 'file_open,file_create,file_rename'], async (_pid, output) => {
        await runChild(python3, ['-c', 'import sys; [open(p).read() for p in sys.argv[1:]]', '/etc/shadow', ...(linked ? [link] : [])]);
        await runChild('/bin/cat', ['/etc/gshadow', '/etc/passwd', `${replaced}.pub`]);
        // O_PATH gives no access to the content: not reported.
        await runChild(python3, ['-c', 'import os; os.close(os.open("/etc/shadow", os.O_PATH))']);
        // Created and replaced (a new inode) after the start: watched again once the agent has seen the change.
        await runChild('/bin/sh', ['-c', 'echo new > "$1"; echo new > "$2.tmp" && mv "$2.tmp" "$2"', 'sh', appeared, replaced]);
        // Read until both reads are seen: how soon the agent watches them depends on the machine's load.
        const read = (file: string) => output().split('\n').some((l) => l.includes('"file_open"') && l.includes(JSON.stringify(file)));
        await new Promise((resolve) => setTimeout(resolve, 2500));
        for (const deadline = Date.now() + 15_000; ; ) {
          await runChild('/bin/cat', [appeared, replaced]);
          await new Promise((resolve) => setTimeout(resolve, 500));
          if ((read(appeared) && read(replaced)) || Date.now() > deadline) break;
        }
        // a file handle instead of a path ("shocker")
        byHandle = await runChild(compileC(home, 'hx-open-by-handle', OPEN_BY_HANDLE_C), ['/etc/gshadow']);
      });
    } finally {
      rmSync(home, { recursive: true, force: true });
      if (linked) rmSync(link, { force: true });
    }
    assert.equal(capture.status, 0, capture.stderr);
    const opens = capture.events.filter((e) => e['event'].action === 'file_open');
    const seen = (sensitive: string, name: string) => opens.filter((e) => e['hades'].file.sensitive === sensitive && e['process'].name === name);
    const shadow = seen('/etc/shadow', path.basename(python3).slice(0, 15));
    assert.deepEqual(
      shadow.map((e) => [e['file'].path, e['hades'].file.access, e['event'].outcome]),
      [['/etc/shadow', 'read', 'success'], ...(linked ? [[link, 'read', 'success']] : [])],
      JSON.stringify(opens.map((e) => [e['process'].name, e['file'].path])),
    );
    assert.equal(shadow.filter((e) => e['file'].path === '/etc/shadow').length, 1, 'the O_PATH open is not reported');
    assert.equal(seen('/etc/gshadow', 'cat').length, 1);
    assert.equal(byHandle?.status, 0, byHandle?.stdout);
    assert.deepEqual(seen('/etc/gshadow', 'hx-open-by-hand').map((e) => e['hades'].file.syscall), ['open_by_handle_at']);
    assert.ok(!opens.some((e) => ['/etc/passwd', `${replaced}.pub`].includes(e['file'].path)), 'files not in sensitive_files, and excluded public keys, are not reported');
    // Once watched, each read of them is seen (one or more: the reads before the agent watched them are not).
    for (const file of [appeared, replaced]) {
      const reads = seen(file, 'cat').map((e) => e['file'].path);
      assert.ok(reads.length >= 1 && reads.every((p) => p === file), `${file}: ${JSON.stringify(reads)}`);
    }
    for (const e of opens) assert.ok(e['process'].entity_id && e['hades'].ancestry, 'each open carries its process context');
  });
});
