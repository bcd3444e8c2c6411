/**
 * Helpers for the security event tests: small C and Python workloads that make the kernel do
 * one precise thing (a setresuid, a ptrace attach, a memfd exec, ...), a tiny DNS responder on
 * 127.0.0.1:53, DNS message builders, and checks of the process context of an event.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { AnyEvent } from './events-session.js';

/** The system Python (not a version-manager shim, whose wrapper processes would muddle pids). */
export const python3 = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/** Compiles one C file into DIR/NAME (mode 0755) and returns the binary's path. */
export function compileC(dir: string, name: string, source: string): string {
  const src = path.join(dir, `${name}.c`);
  const out = path.join(dir, name);
  writeFileSync(src, source);
  execFileSync('cc', ['-O0', '-Wall', '-o', out, src], { stdio: ['ignore', 'ignore', 'pipe'] });
  chmodSync(out, 0o755);
  return out;
}

export interface ChildRun {
  readonly pid: number;
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to completion, keeping its pid (the actor of the events it causes) and its output. */
export function runChild(command: string, args: readonly string[], options: { cwd?: string; timeoutMs?: number } = {}): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: options.timeoutMs ?? 10_000, ...(options.cwd ? { cwd: options.cwd } : {}) });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ pid: child.pid ?? 0, status, stdout, stderr }));
    // A process it left behind may hold its output open (a forked child, its parent killed by
    // a signal): once it has exited, its output is read for a moment more, not waited for.
    child.on('exit', () => {
      setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
      }, 2000).unref();
    });
  });
}

/** argv[1] "drop": setresuid(65534, 65534, 65534) (run as root); "root": setuid(0), which must fail with EPERM (run as non-root). */
export const PRIV_C = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
  if (argc < 2) return 2;
  if (strcmp(argv[1], "drop") == 0) {
    if (setresuid(65534, 65534, 65534) != 0) { perror("setresuid"); return 1; }
    return 0;
  }
  if (strcmp(argv[1], "root") == 0) {
    if (setuid(0) == 0) { fprintf(stderr, "setuid(0) succeeded\n"); return 1; }
    return errno == EPERM ? 0 : 1;
  }
  return 2;
}
`;

/** Forks a sleeping child, attaches to it, rewrites one word of it with its own value, detaches. Prints the child's pid. */
export const PTRACE_C = String.raw`
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>
static volatile long cell = 0x4858;
int main(void) {
  pid_t child = fork();
  if (child < 0) return 2;
  if (child == 0) { prctl(PR_SET_PDEATHSIG, SIGKILL); for (;;) pause(); }
  printf("%d\n", (int)child);
  fflush(stdout);
  int status = 0;
  int rc = 1;
  if (ptrace(PTRACE_ATTACH, child, 0, 0) != 0) { perror("attach"); goto out; }
  if (waitpid(child, &status, 0) != child) { perror("waitpid"); goto out; }
  errno = 0;
  long word = ptrace(PTRACE_PEEKDATA, child, (void *)&cell, 0);
  if (errno != 0) { perror("peek"); goto out; }
  if (ptrace(PTRACE_POKEDATA, child, (void *)&cell, (void *)word) != 0) { perror("poke"); goto out; }
  if (ptrace(PTRACE_DETACH, child, 0, 0) != 0) { perror("detach"); goto out; }
  rc = 0;
out:
  kill(child, SIGKILL);
  waitpid(child, &status, 0);
  return rc;
}
`;

/** memfd_create("hx-test", 0), copies /bin/true into it and executes it (fexecve: execveat with AT_EMPTY_PATH). */
export const MEMFD_C = String.raw`
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>
int main(int argc, char **argv) {
  int fd = memfd_create("hx-test", 0);
  if (fd < 0) { perror("memfd_create"); return 1; }
  int src = open("/bin/true", O_RDONLY | O_CLOEXEC);
  if (src < 0) { perror("open"); return 1; }
  char buf[65536];
  ssize_t n;
  while ((n = read(src, buf, sizeof buf)) > 0) {
    for (ssize_t done = 0; done < n;) {
      ssize_t w = write(fd, buf + done, (size_t)(n - done));
      if (w <= 0) { perror("write"); return 1; }
      done += w;
    }
  }
  close(src);
  char *args[] = { "memfd-true", argc > 1 ? argv[1] : "x", NULL };
  char *envp[] = { NULL };
  fexecve(fd, args, envp);
  perror("fexecve");
  return 1;
}
`;

/**
 * Whether this kernel runs ia32 system calls (int $0x80) at all: built without IA32 emulation, or
 * with it off (ia32_emulation=0, the default of some builds), the instruction is a SIGSEGV. True,
 * or why not. `ia32`: the IA32_C program, compiled.
 */
export function ia32Calls(ia32: string): true | string {
  const r = spawnSync(ia32, ['probe'], { stdio: 'ignore', timeout: 10_000 });
  if (r.status === 0) return true;
  return `this kernel runs no ia32 system calls (int $0x80 ended in ${r.signal ?? `exit status ${r.status}`}): built without IA32 emulation, or with it off`;
}

/**
 * ia32 system calls made with int $0x80 by a 64-bit program (no 32-bit libraries needed):
 * argv[1] names one action, the rest are its operands. User memory given to the calls is below
 * 4 GiB (MAP_32BIT), since ia32 pointers are 32 bits. Prints the call's result (-errno on
 * failure); exits 0 when the call did what it should.
 */
export const IA32_C = String.raw`
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static long sys32(long nr, long a, long b, long c, long d, long e)
{
  long ret;
  asm volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c), "S"(d), "D"(e) : "memory", "r8", "r9", "r10", "r11");
  return ret;
}

/* Six arguments: the sixth goes in ebp (saved around the call, below the red zone). */
static long sys32_6(long nr, long a, long b, long c, long d, long e, long f)
{
  long ret;
  register long sixth asm("r8") = f;
  asm volatile("sub $128, %%rsp\n\tpush %%rbp\n\tmov %%r8, %%rbp\n\tint $0x80\n\tpop %%rbp\n\tadd $128, %%rsp"
               : "=a"(ret), "+r"(sixth) : "a"(nr), "b"(a), "c"(b), "d"(c), "S"(d), "D"(e) : "memory", "r9", "r10", "r11");
  return ret;
}

static char *low;
static long lowstr(const char *s, int slot) { char *p = low + slot * 1024; strcpy(p, s); return (long)p; }

/* socketcall(call, {args}): the 32-bit words of its array, in low memory. */
static long socketcall32(int call, unsigned int a, unsigned int b, unsigned int c, unsigned int d, unsigned int e, unsigned int f)
{
  unsigned int *args = (void *)(low + 7 * 1024);
  args[0] = a, args[1] = b, args[2] = c, args[3] = d, args[4] = e, args[5] = f;
  return sys32(102, call, (long)args, 0, 0, 0);
}

static struct sockaddr_in *loopback(int slot, int port)
{
  struct sockaddr_in *sa = (void *)(low + slot * 1024);
  memset(sa, 0, sizeof(*sa));
  sa->sin_family = AF_INET;
  sa->sin_port = htons(port);
  sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return sa;
}

int main(int argc, char **argv)
{
  if (argc < 2) return 2;
  low = mmap(NULL, 8 * 1024, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
  if (low == MAP_FAILED) { perror("mmap"); return 2; }
  const char *op = argv[1];
  long r = -1;
  int ok = 0;
  if (!strcmp(op, "create") && argc > 2) {            /* open(path, O_CREAT|O_WRONLY, 0640) */
    r = sys32(5, lowstr(argv[2], 0), O_CREAT | O_WRONLY, 0640, 0, 0);
    ok = r >= 0 && sys32(6, r, 0, 0, 0, 0) == 0;        /* close */
  } else if (!strcmp(op, "rename") && argc > 3) {
    r = sys32(38, lowstr(argv[2], 0), lowstr(argv[3], 1), 0, 0, 0);
    ok = r == 0;
  } else if (!strcmp(op, "unlink") && argc > 2) {
    r = sys32(10, lowstr(argv[2], 0), 0, 0, 0, 0);
    ok = r == 0;
  } else if (!strcmp(op, "times") && argc > 2) {    /* utimensat with 32-bit timespecs, then utimensat_time64 */
    int *t32 = (void *)(low + 6 * 1024);
    t32[0] = 1546300800, t32[1] = 0, t32[2] = 1546300800, t32[3] = 0;
    r = sys32(320, -100, lowstr(argv[2], 0), (long)t32, 0, 0);
    long long *t64 = (void *)(low + 6 * 1024 + 64);
    t64[0] = 4102444800LL, t64[1] = 0, t64[2] = 4102444800LL, t64[3] = 0;
    ok = r == 0 && sys32(412, -100, lowstr(argv[2], 0), (long)t64, 0, 0) == 0;
  } else if (!strcmp(op, "chmod") && argc > 2) {
    r = sys32(15, lowstr(argv[2], 0), 0755, 0, 0, 0);
    ok = r == 0;
  } else if ((!strcmp(op, "connect") || !strcmp(op, "socketcall")) && argc > 2) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in *sa = (void *)low;
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons(atoi(argv[2]));
    sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (!strcmp(op, "connect")) {
      r = sys32(362, fd, (long)sa, sizeof(*sa), 0, 0);
    } else {
      unsigned int *args = (void *)(low + 1024);        /* socketcall(SYS_CONNECT, {fd, addr, len}) */
      args[0] = fd, args[1] = (unsigned int)(long)sa, args[2] = sizeof(*sa);
      r = sys32(102, 3, (long)args, 0, 0, 0);
    }
    struct sockaddr_in me;
    socklen_t len = sizeof(me);
    getsockname(fd, (void *)&me, &len);
    printf("%ld %d\n", r, ntohs(me.sin_port));
    return r == 0 ? 0 : 1;
  } else if (!strcmp(op, "dns") && argc > 3) {        /* a query to 127.0.0.1:53 and its answer; argv[3] in hex */
    const char *way = argv[2], *hex = argv[3];
    unsigned int len = strlen(hex) / 2;
    char *q = low + 2 * 1024, *answer = low + 4 * 1024;
    for (unsigned int i = 0; i < len && i < 1024; i++) sscanf(hex + 2 * i, "%2hhx", &q[i]);
    struct sockaddr_in *sa = loopback(0, 53), *from = loopback(1, 0);
    unsigned int *fromlen = (void *)(low + 6 * 1024);
    *fromlen = sizeof(*from);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct timeval tv = { 3, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    long got;
    if (!strcmp(way, "sendto")) {                        /* sendto (369), recvfrom (371) */
      r = sys32_6(369, fd, (long)q, len, 0, (long)sa, sizeof(*sa));
      got = sys32_6(371, fd, (long)answer, 1024, 0, (long)from, (long)fromlen);
    } else if (!strcmp(way, "socketcall-sendto")) {      /* SYS_SENDTO, SYS_RECVFROM */
      r = socketcall32(11, fd, (unsigned int)(long)q, len, 0, (unsigned int)(long)sa, sizeof(*sa));
      got = socketcall32(12, fd, (unsigned int)(long)answer, 1024, 0, (unsigned int)(long)from, (unsigned int)(long)fromlen);
    } else if (!strcmp(way, "socketcall-send")) {        /* SYS_SEND, SYS_RECV on a connected socket */
      if (connect(fd, (void *)sa, sizeof(*sa))) { perror("connect"); return 2; }
      r = socketcall32(9, fd, (unsigned int)(long)q, len, 0, 0, 0);
      got = socketcall32(10, fd, (unsigned int)(long)answer, 1024, 0, 0, 0);
    } else if (!strcmp(way, "sendmsg") || !strcmp(way, "socketcall-sendmsg") || !strcmp(way, "sendmmsg")) {
      /* struct compat_msghdr (and compat_mmsghdr: the same and a length), compat_iovec: 32-bit words */
      unsigned int *iov = (void *)(low + 6 * 1024 + 64), *riov = iov + 2, *msg = iov + 4, *rmsg = iov + 12;
      iov[0] = (unsigned int)(long)q, iov[1] = len;
      riov[0] = (unsigned int)(long)answer, riov[1] = 1024;
      unsigned int m[8] = { (unsigned int)(long)sa, sizeof(*sa), (unsigned int)(long)iov, 1, 0, 0, 0, 0 };
      unsigned int rm[7] = { (unsigned int)(long)from, sizeof(*from), (unsigned int)(long)riov, 1, 0, 0, 0 };
      memcpy(msg, m, sizeof(m));
      memcpy(rmsg, rm, sizeof(rm));
      if (!strcmp(way, "sendmsg")) {                     /* sendmsg (370), recvmsg (372) */
        r = sys32(370, fd, (long)msg, 0, 0, 0);
        got = sys32(372, fd, (long)rmsg, 0, 0, 0);
      } else if (!strcmp(way, "socketcall-sendmsg")) {   /* SYS_SENDMSG, SYS_RECVMSG */
        r = socketcall32(16, fd, (unsigned int)(long)msg, 0, 0, 0, 0);
        got = socketcall32(17, fd, (unsigned int)(long)rmsg, 0, 0, 0, 0);
      } else {                                           /* sendmmsg (345) of one message, recvmsg (372) */
        r = sys32(345, fd, (long)msg, 1, 0, 0);
        r = r == 1 ? (long)msg[7] : -1;                  /* msg_len: the bytes sent */
        got = sys32(372, fd, (long)rmsg, 0, 0, 0);
      }
    } else {
      return 2;
    }
    printf("%ld %ld\n", r, got);
    return r == (long)len && got > 12 && !memcmp(answer, q, 2) ? 0 : 1;
  } else if (!strcmp(op, "listen") && argc > 2) {     /* listen and accept: direct (363, 364), socketcall (SYS_LISTEN, SYS_ACCEPT or SYS_ACCEPT4) */
    const char *way = argv[2];
    int srv = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in *sa = loopback(0, 0), *peer = loopback(1, 0);
    if (bind(srv, (void *)sa, sizeof(*sa))) { perror("bind"); return 2; }
    socklen_t slen = sizeof(*sa);
    getsockname(srv, (void *)sa, &slen);
    unsigned int *peerlen = (void *)(low + 6 * 1024);
    *peerlen = sizeof(*peer);
    long rl = !strcmp(way, "direct") ? sys32(363, srv, 5, 0, 0, 0) : socketcall32(4, srv, 5, 0, 0, 0, 0);
    int cli = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(cli, (void *)sa, sizeof(*sa))) { perror("connect"); return 2; }
    struct sockaddr_in me;
    socklen_t mlen = sizeof(me);
    getsockname(cli, (void *)&me, &mlen);
    long ra;
    if (!strcmp(way, "direct")) ra = sys32(364, srv, (long)peer, (long)peerlen, 0, 0);
    else if (!strcmp(way, "socketcall")) ra = socketcall32(5, srv, (unsigned int)(long)peer, (unsigned int)(long)peerlen, 0, 0, 0);
    else if (!strcmp(way, "socketcall4")) ra = socketcall32(18, srv, (unsigned int)(long)peer, (unsigned int)(long)peerlen, 0, 0, 0);
    else return 2;
    printf("{\"listen\": %ld, \"accept\": %ld, \"port\": %d, \"client_port\": %d, \"peer_port\": %d}\n", rl, ra, ntohs(sa->sin_port), ntohs(me.sin_port), ntohs(peer->sin_port));
    return rl == 0 && ra >= 0 && peer->sin_port == me.sin_port ? 0 : 1;
  } else if (!strcmp(op, "ptrace")) {                 /* ptrace(PTRACE_ATTACH) of a child */
    pid_t child = fork();
    if (child == 0) { prctl(PR_SET_PDEATHSIG, SIGKILL); for (;;) pause(); }
    int status;
    r = sys32(26, 16, child, 0, 0, 0);
    ok = r == 0 && waitpid(child, &status, 0) == child && sys32(26, 17, child, 0, 0, 0) == 0; /* PTRACE_DETACH */
    kill(child, SIGKILL);
    waitpid(child, &status, 0);
    printf("%ld %d\n", r, (int)child);
    return ok ? 0 : 1;
  } else if (!strcmp(op, "probe")) {                  /* getpid (20): whether the kernel runs ia32 calls at all */
    r = sys32(20, 0, 0, 0, 0, 0);
    ok = r == getpid();
  } else if (!strcmp(op, "setuid32")) {
    r = sys32(213, 65534, 0, 0, 0, 0);
    ok = r == 0 && getuid() == 65534 && geteuid() == 65534;
  } else if (!strcmp(op, "setresuid32")) {
    r = sys32(208, 65534, 65534, 65534, 0, 0);
    uid_t a, b, c;
    ok = r == 0 && getresuid(&a, &b, &c) == 0 && a == 65534 && b == 65534 && c == 65534;
  } else if (!strcmp(op, "memfd") && argc > 2) {
    r = sys32(356, lowstr(argv[2], 0), 0, 0, 0, 0);
    char link[64], target[256] = "";
    snprintf(link, sizeof(link), "/proc/self/fd/%ld", r);
    ok = r >= 0 && readlink(link, target, sizeof(target) - 1) > 0 && !strncmp(target, "/memfd:", 7);
  } else if (!strcmp(op, "kill") && argc > 2) {       /* kill(pid, 0) */
    r = sys32(37, atoi(argv[2]), 0, 0, 0, 0);
    ok = r == 0;
  } else {
    return 2;
  }
  printf("%ld\n", r);
  return ok ? 0 : 1;
}
`;

/** finit_module on /bin/true: refused by any kernel (ENOSYS without module support). Prints the result and errno. */
export const MODULE_C = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void) {
  int fd = open("/bin/true", O_RDONLY | O_CLOEXEC);
  if (fd < 0) { perror("open"); return 2; }
  long r = syscall(SYS_finit_module, fd, "", 0);
  printf("%ld %d\n", r, r < 0 ? errno : 0);
  return 0;
}
`;

/**
 * A DNS responder for the tests: answers every well-formed single question with NOERROR and,
 * for type A, one A record with the address given as argv[1]; ignores anything it cannot read.
 * Its own traffic is neither a query (it never sends to port 53) nor an answer.
 */
const DNS_SERVER_PY = String.raw`
import socket, struct, sys
ip = bytes(int(p) for p in sys.argv[1].split('.'))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.bind(('127.0.0.1', 53))
except OSError as e:
    print('error', e, flush=True)
    sys.exit(1)
print('ready', flush=True)
while True:
    data, addr = s.recvfrom(4096)
    try:
        if len(data) < 12 or struct.unpack('!H', data[4:6])[0] != 1:
            continue
        pos = 12
        while data[pos] != 0:
            if data[pos] & 0xc0:
                raise ValueError('compressed question')
            pos += 1 + data[pos]
        if pos + 5 > len(data):
            continue
        qtype = struct.unpack('!H', data[pos + 1:pos + 3])[0]
        answer = b'\xc0\x0c' + struct.pack('!HHIH', 1, 1, 60, 4) + ip if qtype == 1 else b''
        header = data[0:2] + struct.pack('!HHHHH', 0x8180, 1, 1 if answer else 0, 0, 0)
        s.sendto(header + data[12:pos + 5] + answer, addr)
    except Exception:
        pass
`;

export interface DnsServer {
  readonly pid: number;
  stop(): void;
}

/** Starts the DNS responder; resolves with it, or with the reason it could not start (port 53 taken, ...). */
export function startDnsServer(answerIp: string): Promise<DnsServer | string> {
  return new Promise((resolve) => {
    const child = spawn(python3, ['-c', DNS_SERVER_PY, answerIp], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve(`the DNS responder did not start: ${out}`);
    }, 10_000);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('ready')) {
        clearTimeout(timer);
        resolve({ pid: child.pid ?? 0, stop: () => child.kill('SIGKILL') });
      }
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve(`the DNS responder did not start: ${String(e)}`);
    });
    child.on('close', () => {
      clearTimeout(timer);
      resolve(`the DNS responder could not listen on 127.0.0.1:53: ${out.trim()}`);
    });
  });
}

/** Sends DNS messages over UDP to 127.0.0.1:53. argv: MODE HEX COUNT; MODE sendto|connected (one query, prints the answer) or fire (COUNT sends, reads nothing). */
export const DNS_CLIENT_PY = String.raw`
import socket, sys
mode, q, n = sys.argv[1], bytes.fromhex(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
if mode == 'connected':
    s.connect(('127.0.0.1', 53))
    s.send(q)
    print(s.recv(512).hex())
elif mode == 'sendto':
    s.sendto(q, ('127.0.0.1', 53))
    print(s.recvfrom(512)[0].hex())
else:
    for _ in range(n):
        s.sendto(q, ('127.0.0.1', 53))
`;

function u16(value: number): number[] {
  return [(value >> 8) & 0xff, value & 0xff];
}

function wireName(name: string): number[] {
  const out: number[] = [];
  for (const label of name.split('.')) out.push(label.length, ...Buffer.from(label, 'ascii'));
  out.push(0);
  return out;
}

/** A standard query (RD set) for one name and type; `answer`, when given, is one answer record (ANCOUNT 1). */
export function dnsQuery(id: number, name: string, type = 1, answer: number[] = []): Buffer {
  const header = [...u16(id), ...u16(0x0100), ...u16(1), ...u16(answer.length > 0 ? 1 : 0), ...u16(0), ...u16(0)];
  return Buffer.from([...header, ...wireName(name), ...u16(type), ...u16(1), ...answer]);
}

/** A query whose question name is a compression pointer to itself (offset 12). */
export function pointerLoopQuery(id: number): Buffer {
  return Buffer.from([...u16(id), ...u16(0x0100), ...u16(1), 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, ...u16(1), ...u16(1)]);
}

/** A valid question followed by an answer record whose owner name is a compression pointer to itself. */
export function damagedTailQuery(id: number, name: string): Buffer {
  const questionEnd = 12 + wireName(name).length + 4;
  const loop = [0xc0 | (questionEnd >> 8), questionEnd & 0xff];
  return dnsQuery(id, name, 1, [...loop, ...u16(1), ...u16(1), 0, 0, 0, 60, ...u16(4), 127, 0, 0, 1]);
}

/** The events of one action whose acting process is PID. */
export function actionsOf(events: readonly AnyEvent[], action: string, pid: number): AnyEvent[] {
  return events.filter((e) => e['event']?.action === action && e['process']?.pid === pid);
}

/** The exec event of PID (the last one: a pid may exec several times). */
export function execOf(events: readonly AnyEvent[], pid: number): AnyEvent | undefined {
  return actionsOf(events, 'exec', pid).at(-1);
}

/**
 * Checks the acting process of a security event and its context: pid, the entity id its exec
 * event gave it, its executable, and an ancestry that starts with it and holds the ancestor
 * ANCESTOR_PID (the test runner for processes it spawned itself).
 */
export function assertActor(events: readonly AnyEvent[], e: AnyEvent | undefined, pid: number, expected: { executable?: string; ancestorPid?: number } = {}): asserts e is AnyEvent {
  assert.ok(e, `no event of pid ${pid}`);
  const context = `${e['event'].action} of pid ${pid}: ${JSON.stringify(e).slice(0, 600)}`;
  assert.equal(e['process'].pid, pid, context);
  assert.equal(typeof e['process'].entity_id, 'string', context);
  const exec = events.find((x) => x['event'].action === 'exec' && x['process'].pid === pid && x['process'].entity_id === e['process'].entity_id);
  assert.ok(exec, `the entity id of the ${context} is the one its exec event gave it`);
  if (expected.executable !== undefined) assert.equal(e['process'].executable, expected.executable, context);
  const ancestors = e['hades']?.ancestors as AnyEvent[] | undefined;
  assert.ok(Array.isArray(ancestors) && ancestors.length > 0, `hades.ancestors is not empty: ${context}`);
  assert.equal(typeof e['hades'].ancestry, 'string', context);
  assert.ok((e['hades'].ancestry as string).startsWith(`${e['process'].name as string}(${pid})`) || new RegExp(`^[^<]*\\(${pid}\\)`).test(e['hades'].ancestry as string), `hades.ancestry starts with the actor: ${e['hades'].ancestry}`);
  if (expected.ancestorPid !== undefined) {
    assert.ok(ancestors.some((a) => a['pid'] === expected.ancestorPid), `pid ${expected.ancestorPid} is an ancestor: ${e['hades'].ancestry}`);
    assert.ok((e['hades'].ancestry as string).includes(`(${expected.ancestorPid})`), `hades.ancestry names ${expected.ancestorPid}: ${e['hades'].ancestry}`);
  }
}

/**
 * The ways around the obvious calls (argv[1] names one; prints what the assertions need):
 * - write PATH: opens an existing PATH with O_WRONLY alone (no O_CREAT, no O_TRUNC) and writes it;
 * - mmap PATH: opens it O_RDWR and writes it through a shared mapping;
 * - vm_writev: writes a word into a forked child with process_vm_writev; prints the child's pid;
 * - proc_mem: the same through pwrite on /proc/CHILD/mem; prints the child's pid;
 * - fastopen PORT: a TCP connection to 127.0.0.1:PORT opened by sendto(MSG_FASTOPEN), no connect(2);
 *   prints sendto's result and errno, then the local port.
 */
export const BYPASS_C = String.raw`
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
static volatile long cell = 1;
static pid_t child(void) {
  pid_t c = fork();
  if (c == 0) { prctl(PR_SET_PDEATHSIG, SIGKILL); for (;;) pause(); }
  return c;
}
int main(int argc, char **argv) {
  if (argc < 2) return 2;
  if (strcmp(argv[1], "write") == 0 && argc > 2) {
    int fd = open(argv[2], O_WRONLY);
    if (fd < 0 || write(fd, "x", 1) != 1) { perror("write"); return 1; }
    return close(fd);
  }
  if (strcmp(argv[1], "mmap") == 0 && argc > 2) {
    int fd = open(argv[2], O_RDWR);
    char *m = fd < 0 ? MAP_FAILED : mmap(NULL, 1, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) { perror("mmap"); return 1; }
    m[0] = 'm';
    return munmap(m, 1) || close(fd);
  }
  if (strcmp(argv[1], "vm_writev") == 0 || strcmp(argv[1], "proc_mem") == 0) {
    pid_t c = child();
    long v = 2, n;
    if (argv[1][0] == 'v') {
      struct iovec l = { &v, sizeof v }, r = { (void *)&cell, sizeof v };
      n = process_vm_writev(c, &l, 1, &r, 1, 0);
    } else {
      char p[64];
      snprintf(p, sizeof p, "/proc/%d/mem", (int)c);
      int fd = open(p, O_RDWR);
      n = fd < 0 ? -1 : pwrite(fd, &v, sizeof v, (off_t)(long)&cell);
    }
    if (n != (long)sizeof v) perror(argv[1]);
    printf("%d\n", (int)c);
    kill(c, SIGKILL);
    waitpid(c, NULL, 0);
    return n == (long)sizeof v ? 0 : 1;
  }
  if (strcmp(argv[1], "fastopen") == 0 && argc > 2) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])) };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    long n = sendto(s, "hi", 2, MSG_FASTOPEN, (struct sockaddr *)&a, sizeof a);
    int err = n < 0 ? errno : 0;
    struct sockaddr_in me;
    socklen_t len = sizeof me;
    getsockname(s, (struct sockaddr *)&me, &len);
    printf("%ld %d %d\n", n, err, ntohs(me.sin_port));
    return close(s);
  }
  return 2;
}
`;
