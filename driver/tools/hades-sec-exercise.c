// SPDX-License-Identifier: MIT
/*
 * hades-sec-exercise: performs the actions the security hooks report, one
 * scenario per subcommand, so the driver can be verified (and fixtures
 * recorded) against the real kernel. Run as root.
 *
 *   memfd-exec execveat|procfd   memfd_create + copy /bin/true + exec it
 *   ptrace                       fork a child; ATTACH, POKEDATA, SETREGS, DETACH; TRACEME child
 *   priv                         setresgid/setresuid to 65534 in a child, then a denied setuid(0),
 *                                a no-op setuid, setfsuid, capset dropping CAP_NET_RAW
 *   connect-nb HOST PORT         non-blocking TCP connect (EINPROGRESS, then the async result)
 *   connect-unix PATH            AF_UNIX connect
 *   module FILE                  finit_module(FILE) and init_module(FILE contents)
 *   files DIR                    create/chmod/fchmod/rename/unlink/mkdir/rmdir in DIR, with
 *                                relative paths (cwd and dirfd)
 *   kill PID SIG                 kill(PID, SIG), then tgkill(PID, PID, SIG)
 *   dns-udp SERVER               connected UDP socket to SERVER:53: send a query, read the answer
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <poll.h>
#include <unistd.h>

static volatile long poke_target = 0x1111;

static int copy_file(int to, const char *from)
{
	char buf[65536];
	int in = open(from, O_RDONLY);
	ssize_t n;
	if (in < 0)
		return -1;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(to, buf, (size_t)n) != n)
			return -1;
	close(in);
	return 0;
}

static int memfd_exec(const char *how)
{
	int fd = (int)syscall(SYS_memfd_create, "hades-memfd-test", 0);
	if (fd < 0 || copy_file(fd, "/bin/true"))
		return perror("memfd"), 1;
	char *argv[] = { "memfd-true", "memfd-arg", NULL }, *envp[] = { NULL };
	if (!strcmp(how, "execveat")) {
		syscall(SYS_execveat, fd, "", argv, envp, AT_EMPTY_PATH);
	} else {
		char p[64];
		snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
		execve(p, argv, envp);
	}
	perror("exec");
	return 1;
}

static int do_ptrace(void)
{
	pid_t child = fork();
	if (child == 0) {
		for (;;)
			pause();
	}
	usleep(50000);
	if (ptrace(PTRACE_ATTACH, child, 0, 0))
		perror("PTRACE_ATTACH");
	waitpid(child, NULL, 0);
	if (ptrace(PTRACE_POKEDATA, child, (void *)&poke_target, (void *)0x2222))
		perror("PTRACE_POKEDATA");
	struct user_regs_struct regs;
	if (ptrace(PTRACE_GETREGS, child, 0, &regs) == 0 && ptrace(PTRACE_SETREGS, child, 0, &regs))
		perror("PTRACE_SETREGS");
	ptrace(PTRACE_DETACH, child, 0, 0);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);

	pid_t c2 = fork();
	if (c2 == 0) {
		ptrace(PTRACE_TRACEME, 0, 0, 0);
		_exit(0);
	}
	waitpid(c2, NULL, 0);
	printf("ptrace: attached to %d, traceme child %d\n", child, c2);
	return 0;
}

static int priv(void)
{
	pid_t c = fork();
	if (c == 0) {
		/* unchanged call first: must not be reported */
		if (setuid(0))
			perror("setuid(0) as root");
		/* permitted caps drop: CAP_NET_RAW out of every set */
		struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
		struct __user_cap_data_struct d[2];
		if (syscall(SYS_capget, &h, d) == 0) {
			d[0].effective &= ~(1u << CAP_NET_RAW);
			d[0].permitted &= ~(1u << CAP_NET_RAW);
			d[0].inheritable &= ~(1u << CAP_NET_RAW);
			if (syscall(SYS_capset, &h, d))
				perror("capset");
		}
		setfsuid(1234);
		setfsuid(0);
		if (syscall(SYS_setresgid, 65534, 65534, 65534) || syscall(SYS_setresuid, 65534, 65534, 65534))
			perror("setres*id");
		/* raw syscalls: glibc's wrappers would broadcast to all threads */
		if (syscall(SYS_setuid, 0) == 0)
			fprintf(stderr, "setuid(0) unexpectedly worked\n");
		_exit(0);
	}
	waitpid(c, NULL, 0);
	printf("priv: child %d\n", c);
	return 0;
}

static int connect_nb(const char *host, int port)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	struct sockaddr_in *a4 = (void *)&ss;
	struct sockaddr_in6 *a6 = (void *)&ss;
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		len = sizeof(*a4);
	} else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		len = sizeof(*a6);
	} else {
		return fprintf(stderr, "bad host\n"), 2;
	}
	int s = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	int rc = connect(s, (void *)&ss, len);
	printf("connect-nb: rc=%d errno=%d\n", rc, rc ? errno : 0);
	struct pollfd p = { .fd = s, .events = POLLOUT };
	poll(&p, 1, 2000);
	int err = 0;
	socklen_t el = sizeof(err);
	getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &el);
	printf("connect-nb: final so_error=%d\n", err);
	close(s);
	return 0;
}

static int connect_unix(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	int rc = connect(s, (void *)&a, sizeof(a));
	printf("connect-unix: rc=%d errno=%d\n", rc, rc ? errno : 0);
	close(s);
	return 0;
}

static int module(const char *file)
{
	int fd = open(file, O_RDONLY);
	long rc = syscall(SYS_finit_module, fd, "", 0);
	printf("finit_module: rc=%ld errno=%d\n", rc, rc ? errno : 0);
	struct stat st;
	fstat(fd, &st);
	void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	rc = syscall(SYS_init_module, m, (unsigned long)st.st_size, "");
	printf("init_module: rc=%ld errno=%d\n", rc, rc ? errno : 0);
	return 0;
}

static int files(const char *dir)
{
	char p[4096], q[4096];
	if (chdir(dir))
		return perror("chdir"), 1;
	/* absolute create with exec bits, then setuid via fchmod and chmod */
	snprintf(p, sizeof(p), "%s/hx-abs", dir);
	int fd = open(p, O_CREAT | O_EXCL | O_WRONLY, 0755);
	if (fd < 0)
		perror("open abs");
	if (fchmod(fd, 04755))
		perror("fchmod");
	close(fd);
	/* existing file opened with O_CREAT|O_APPEND: reported without "created" */
	fd = open(p, O_CREAT | O_WRONLY | O_APPEND, 0644);
	close(fd);
	if (chmod(p, 0644))
		perror("chmod");
	/* relative to the cwd, and relative to a dirfd */
	fd = open("hx-rel", O_CREAT | O_WRONLY | O_TRUNC, 0600);
	close(fd);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	fd = openat(dfd, "hx-dirfd", O_CREAT | O_WRONLY, 0700);
	close(fd);
	if (fchmodat(dfd, "hx-dirfd", 02755, 0))
		perror("fchmodat");
	/* rename, relative old name, absolute new name */
	snprintf(q, sizeof(q), "%s/hx-renamed", dir);
	if (rename("hx-rel", q))
		perror("rename");
	if (renameat(dfd, "hx-dirfd", dfd, "hx-dirfd2"))
		perror("renameat");
	if (unlink(q) || unlinkat(dfd, "hx-dirfd2", 0) || unlink(p))
		perror("unlink");
	if (mkdir("hx-dir", 0700) || rmdir("hx-dir"))
		perror("mkdir/rmdir");
	/* a failed create: missing parent directory */
	fd = open("no-such-dir/hx", O_CREAT | O_WRONLY, 0644);
	printf("files: done in %s (failed create: fd=%d errno=%d)\n", dir, fd, errno);
	close(dfd);
	return 0;
}

static int dns_udp(const char *server)
{
	/* query for "hades.test" A, id 0x4844 */
	static const uint8_t q[] = { 0x48, 0x44, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
				     0x00, 0x00, 0x05, 'h',  'a',  'd',  'e',  's',  0x04, 't',
				     'e',  's',  't',  0x00, 0x00, 0x01, 0x00, 0x01 };
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(53) };
	inet_pton(AF_INET, server, &a.sin_addr);
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	if (connect(s, (void *)&a, sizeof(a)))
		return perror("connect"), 1;
	if (send(s, q, sizeof(q), 0) < 0)
		return perror("send"), 1;
	uint8_t buf[512];
	struct pollfd p = { .fd = s, .events = POLLIN };
	ssize_t n = -1;
	if (poll(&p, 1, 2000) == 1)
		n = recvfrom(s, buf, sizeof(buf), 0, NULL, NULL);
	printf("dns-udp: answer %zd bytes\n", n);
	close(s);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		goto usage;
	const char *cmd = argv[1];
	if (!strcmp(cmd, "memfd-exec") && argc == 3)
		return memfd_exec(argv[2]);
	if (!strcmp(cmd, "ptrace"))
		return do_ptrace();
	if (!strcmp(cmd, "priv"))
		return priv();
	if (!strcmp(cmd, "connect-nb") && argc == 4)
		return connect_nb(argv[2], atoi(argv[3]));
	if (!strcmp(cmd, "connect-unix") && argc == 3)
		return connect_unix(argv[2]);
	if (!strcmp(cmd, "module") && argc == 3)
		return module(argv[2]);
	if (!strcmp(cmd, "files") && argc == 3)
		return files(argv[2]);
	if (!strcmp(cmd, "kill") && argc == 4) {
		pid_t pid = atoi(argv[2]);
		int sig = atoi(argv[3]);
		printf("kill: %d\n", kill(pid, sig));
		printf("tgkill: %ld\n", syscall(SYS_tgkill, pid, pid, sig));
		return 0;
	}
	if (!strcmp(cmd, "dns-udp") && argc == 3)
		return dns_udp(argv[2]);
usage:
	fprintf(stderr, "usage: see the comment at the top of hades-sec-exercise.c\n");
	return 2;
}
