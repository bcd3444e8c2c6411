// SPDX-License-Identifier: MIT
/*
 * hades-driver-dump: decodes a hades-driver output stream (PROTOCOL.md) from
 * stdin and prints one text line per frame or record. A reference decoder and
 * a debugging tool; every length is validated like an untrusted input.
 *
 *   hades-driver | hades-driver-dump [-q] [--match-arg STR] [--match-cwd DIR]
 *   -q              print nothing but the summary (on stderr at EOF)
 *   --match-arg S   count EXEC records whose argv contains the argument S
 *   --match-cwd D   of those, count the ones whose cwd equals D
 * Exit status: 0 on a clean stream, 1 on a malformed one.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/types.h>

#include "wire.h"

static bool quiet;
static const char *match_arg, *match_cwd;
static uint64_t n_kind[32], n_unknown, n_match, n_match_cwd, n_frames, n_drop_flags;
static char last_stats[8192];

static int read_full(void *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(STDIN_FILENO, (char *)buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return got == 0 ? 0 : -1; /* 0: clean EOF at a boundary */
		got += (size_t)n;
	}
	return 1;
}

static void put_bytes(const uint8_t *p, size_t n)
{
	putchar('"');
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c >= 0x20 && c < 0x7f)
			putchar(c);
		else
			printf("\\x%02x", c);
	}
	putchar('"');
}

static void put_flags(uint32_t f, uint32_t m)
{
	static const char *const fn[] = { "cnproc", "argv_trunc", "cwd_trunc", "exe_trunc",
					  "filename_trunc", "cgroup_trunc", "exe_deleted",
					  "exe_tmpfs", "exe_memfd", "start_ticks", "mode_exec",
					  "mode_setuid", "mode_setgid", "file_created", "path_trunc",
					  "path_from_fd", "payload_trunc", "kill_broadcast", "kill_group",
					  "exe_setuid_root", "link_hard", "link_symbolic", "ia32",
					  "rename_catch_up", "open_fresh", "stdin_deleted" };
	static const char *const mn[] = { "filename", "exe", "argv", "cwd", "creds", "parent",
					  "pgid_sid", "tty", "fds", "cgroup", "ns", "comm",
					  "start", "loginuid", "caps", "target", "path", "addr", "payload",
					  "mode", "name", "exe_id", "exit_code" };
	printf(" flags=[");
	bool first = true;
	for (unsigned i = 0; i < 32; i++)
		if (f & (1u << i)) {
			if (i < sizeof(fn) / sizeof(fn[0]))
				printf("%s%s", first ? "" : ",", fn[i]);
			else
				printf("%sbit%u", first ? "" : ",", i);
			first = false;
		}
	printf("] missing=[");
	first = true;
	for (unsigned i = 0; i < 32; i++)
		if (m & (1u << i)) {
			if (i < sizeof(mn) / sizeof(mn[0]))
				printf("%s%s", first ? "" : ",", mn[i]);
			else
				printf("%sbit%u", first ? "" : ",", i);
			first = false;
		}
	printf("]");
}

static void put_addr(uint8_t family, const uint8_t *a, uint16_t port)
{
	if (family == 2) {
		printf("%u.%u.%u.%u:%u", a[0], a[1], a[2], a[3], port);
	} else {
		printf("[");
		for (int i = 0; i < 16; i += 2)
			printf("%s%x", i ? ":" : "", a[i] << 8 | a[i + 1]);
		printf("]:%u", port);
	}
}

static void put_fd(int n, const struct hades_fd_info *f)
{
	static const char *const kinds[] = { "none", "char", "pipe", "socket", "file",
					     "dir", "block", "other", "unknown" };
	printf(" fd%d=%s", n, f->kind < 9 ? kinds[f->kind] : "?");
	if (f->kind == HADES_FD_NONE)
		return;
	printf("(ino=%" PRIu64, (uint64_t)f->inode);
	if (f->kind == HADES_FD_CHAR || f->kind == HADES_FD_BLOCK)
		printf(" dev=%u:%u", f->rdev >> 20, f->rdev & 0xfffff);
	if (f->kind == HADES_FD_SOCKET) {
		printf(" family=%u type=%u proto=%u", f->family, f->sock_type, f->protocol);
		if (f->family == 2 || f->family == 10) {
			printf(" ");
			put_addr(f->family, f->local_addr, f->local_port);
			printf("->");
			put_addr(f->family, f->remote_addr, f->remote_port);
		}
	}
	printf(")");
}

static bool argv_has(const uint8_t *argv, uint32_t len, const char *want)
{
	size_t wl = strlen(want);
	for (uint32_t i = 0; i < len;) {
		const uint8_t *nul = memchr(argv + i, 0, len - i);
		size_t al = nul ? (size_t)(nul - (argv + i)) : len - i;
		if (al == wl && memcmp(argv + i, want, wl) == 0)
			return true;
		i += (uint32_t)al + 1;
	}
	return false;
}

static int exec_rec(const uint8_t *p, uint32_t size)
{
	struct hades_exec e = { 0 };
	uint16_t version;
	memcpy(&version, p + 2, sizeof(version));
	/* v1 is v2 without the exe identity: the tail starts earlier */
	size_t fixed = version == 1 ? HADES_EXEC_V1_FIXED_SIZE
		       : version == HADES_EXEC_VERSION ? HADES_EXEC_FIXED_SIZE : 0;
	if (!fixed) {
		if (!quiet)
			printf("EXEC version %u (unknown, skipped)\n", version);
		return 0;
	}
	if (size < fixed)
		return -1;
	memcpy(&e, p, fixed);
	uint64_t tail = (uint64_t)e.filename_len + e.exe_len + e.cwd_len + e.tty_len + e.cgroup_len +
			e.argv_len;
	if (fixed + tail > size)
		return -1;
	const uint8_t *t = p + fixed;
	const uint8_t *fname = t, *exe = fname + e.filename_len, *cwd = exe + e.exe_len,
		      *tty = cwd + e.cwd_len, *cg = tty + e.tty_len, *argv = cg + e.cgroup_len;
	if (match_arg && argv_has(argv, e.argv_len, match_arg)) {
		n_match++;
		if (match_cwd && strlen(match_cwd) == e.cwd_len && !memcmp(cwd, match_cwd, e.cwd_len))
			n_match_cwd++;
	}
	if (quiet)
		return 0;
	printf("EXEC t=%" PRIu64 " pid=%u tid=%u ppid=%u pgid=%u sid=%u start=%" PRIu64
	       " pstart=%" PRIu64 " uid=%u gid=%u euid=%u egid=%u suid=%u sgid=%u fsuid=%u fsgid=%u"
	       " loginuid=%d ses=%d caps=%#" PRIx64 " cgid=%" PRIu64 " pidns=%u mntns=%u ttydev=%u:%u comm=",
	       (uint64_t)e.hdr.ktime_ns, e.hdr.pid, e.hdr.tid, e.ppid, e.pgid, e.sid,
	       (uint64_t)e.start_ns, (uint64_t)e.parent_start_ns, e.uid, e.gid, e.euid, e.egid,
	       e.suid, e.sgid, e.fsuid, e.fsgid, (int)e.loginuid, (int)e.audit_session,
	       (uint64_t)e.cap_effective, (uint64_t)e.cgroup_id, e.pid_ns, e.mnt_ns,
	       e.tty_dev >> 20, e.tty_dev & 0xfffff);
	put_bytes((const uint8_t *)e.comm, strnlen(e.comm, sizeof(e.comm)));
	put_flags(e.hdr.flags, e.hdr.missing);
	printf(" filename=");
	put_bytes(fname, e.filename_len);
	printf(" exe=");
	put_bytes(exe, e.exe_len);
	if (version >= 2)
		printf(" exe_id=(ino=%" PRIu64 " dev=%u:%u size=%" PRIu64 " mtime=%" PRId64 ".%09u"
		       " ctime=%" PRId64 ".%09u)",
		       (uint64_t)e.exe_ino, e.exe_dev >> 20, e.exe_dev & 0xfffff, (uint64_t)e.exe_size,
		       (int64_t)e.exe_mtime_sec, e.exe_mtime_nsec, (int64_t)e.exe_ctime_sec,
		       e.exe_ctime_nsec);
	printf(" cwd=");
	put_bytes(cwd, e.cwd_len);
	printf(" tty=");
	put_bytes(tty, e.tty_len);
	printf(" cgroup=");
	put_bytes(cg, e.cgroup_len);
	for (int i = 0; i < 3; i++)
		put_fd(i, &e.fds[i]);
	printf(" argv_len=%u/%u argc=%u argv=[", e.argv_len, e.argv_orig_len, e.argc);
	for (uint32_t i = 0, k = 0; i < e.argv_len; k++) {
		const uint8_t *nul = memchr(argv + i, 0, e.argv_len - i);
		size_t al = nul ? (size_t)(nul - (argv + i)) : e.argv_len - i;
		printf("%s", k ? "," : "");
		put_bytes(argv + i, al);
		i += (uint32_t)al + 1;
	}
	printf("]\n");
	return 0;
}

static int fork_rec(const uint8_t *p, uint32_t size)
{
	struct hades_fork r;
	if (size < sizeof(r))
		return -1;
	if (quiet)
		return 0;
	memcpy(&r, p, sizeof(r));
	printf("FORK t=%" PRIu64 " pid=%u tid=%u child=%u ppid=%u cstart=%" PRIu64 " pstart=%" PRIu64
	       " uid=%u gid=%u cgid=%" PRIu64 " comm=",
	       (uint64_t)r.hdr.ktime_ns, r.hdr.pid, r.hdr.tid, r.child_pid, r.ppid,
	       (uint64_t)r.child_start_ns, (uint64_t)r.parent_start_ns, r.uid, r.gid,
	       (uint64_t)r.cgroup_id);
	put_bytes((const uint8_t *)r.comm, strnlen(r.comm, sizeof(r.comm)));
	put_flags(r.hdr.flags, r.hdr.missing);
	printf("\n");
	return 0;
}

static int exit_rec(const uint8_t *p, uint32_t size)
{
	struct hades_exit r;
	if (size < sizeof(r))
		return -1;
	if (quiet)
		return 0;
	memcpy(&r, p, sizeof(r));
	printf("EXIT t=%" PRIu64 " pid=%u tid=%u ppid=%u start=%" PRIu64 " code=%#x",
	       (uint64_t)r.hdr.ktime_ns, r.hdr.pid, r.hdr.tid, r.ppid, (uint64_t)r.start_ns,
	       r.exit_code);
	if (r.exit_code & 0x7f)
		printf("(signal %u%s)", r.exit_code & 0x7f, r.exit_code & 0x80 ? ",core" : "");
	else
		printf("(status %u)", (r.exit_code >> 8) & 0xff);
	printf(" comm=");
	put_bytes((const uint8_t *)r.comm, strnlen(r.comm, sizeof(r.comm)));
	put_flags(r.hdr.flags, r.hdr.missing);
	printf("\n");
	return 0;
}

/* ---- security kinds (4..18) ---- */

static const char *sc_name(unsigned sc)
{
	static const char *const n[HADES_SC_COUNT] = {
		"none", "connect", "accept", "accept4", "listen", "sendto", "sendmsg", "sendmmsg",
		"write", "writev", "recvfrom", "recvmsg", "setuid", "setgid", "setreuid", "setregid",
		"setresuid", "setresgid", "setfsuid", "setfsgid", "capset", "ptrace", "memfd_create",
		"init_module", "finit_module", "open", "openat", "openat2", "creat", "mkdir", "mkdirat",
		"rename", "renameat", "renameat2", "unlink", "unlinkat", "rmdir", "chmod", "fchmod",
		"fchmodat", "fchmodat2", "kill", "tkill", "tgkill", "pidfd_send_signal", "open_by_handle_at", "link", "linkat", "symlink", "symlinkat", "truncate", "ftruncate",
		"process_vm_writev", "utime", "utimes", "futimesat", "utimensat",
	};
	return sc < HADES_SC_COUNT ? n[sc] : "?";
}

static void put_proc(const struct hades_record_header *h, const struct hades_proc *p)
{
	printf(" t=%" PRIu64 " pid=%u tid=%u start=%" PRIu64 " ppid=%u uid=%u gid=%u euid=%u egid=%u"
	       " auid=%d cgid=%" PRIu64 " comm=",
	       (uint64_t)h->ktime_ns, h->pid, h->tid, (uint64_t)p->start_ns, p->ppid, p->uid, p->gid,
	       p->euid, p->egid, (int)p->loginuid, (uint64_t)p->cgroup_id);
	put_bytes((const uint8_t *)p->comm, strnlen(p->comm, sizeof(p->comm)));
}

static int net_rec(const uint8_t *p, uint32_t size, const char *name)
{
	struct hades_net r;
	if (size < sizeof(r))
		return -1;
	memcpy(&r, p, sizeof(r));
	if (sizeof(r) + r.path_len > size)
		return -1;
	if (quiet)
		return 0;
	static const char *const origins[] = { "?", "syscall", "tcp_established", "tcp_failed" };
	printf("%s", name);
	put_proc(&r.hdr, &r.proc);
	printf(" result=%d fd=%u family=%u type=%u proto=%u origin=%s repeat=%u", r.result, r.fd,
	       r.family, r.sock_type, r.protocol, r.origin < 4 ? origins[r.origin] : "?",
	       r.repeat_count);
	if (r.family == 2 || r.family == 10) {
		printf(" local=");
		put_addr((uint8_t)r.family, r.local_addr, r.local_port);
		printf(" remote=");
		put_addr((uint8_t)r.family, r.remote_addr, r.remote_port);
	}
	if (r.hdr.kind == HADES_KIND_LISTEN)
		printf(" backlog=%u", r.backlog);
	if (r.family == 1) {
		printf(" path=");
		put_bytes(p + sizeof(r), r.path_len);
	}
	put_flags(r.hdr.flags, r.hdr.missing);
	printf("\n");
	return 0;
}

static int dns_rec(const uint8_t *p, uint32_t size)
{
	struct hades_dns r;
	if (size < sizeof(r))
		return -1;
	memcpy(&r, p, sizeof(r));
	if (sizeof(r) + r.payload_len > size)
		return -1;
	if (quiet)
		return 0;
	const uint8_t *pl = p + sizeof(r);
	printf("DNS");
	put_proc(&r.hdr, &r.proc);
	printf(" dir=%s sc=%s result=%d fd=%u proto=%u local=", r.direction == 1 ? "query" : "answer",
	       sc_name(r.syscall), r.result, r.fd, r.protocol);
	put_addr((uint8_t)r.family, r.local_addr, r.local_port);
	printf(" server=");
	put_addr((uint8_t)r.family, r.remote_addr, r.remote_port);
	printf(" len=%u/%u", r.payload_len, r.payload_orig_len);
	/* a light look at the message: id and the first question name */
	uint32_t o = r.protocol == 6 ? 2 : 0;
	if (r.payload_len >= o + 12) {
		printf(" id=%#x qd=%u an=%u qname=", pl[o] << 8 | pl[o + 1], pl[o + 4] << 8 | pl[o + 5],
		       pl[o + 6] << 8 | pl[o + 7]);
		for (uint32_t i = o + 12; i < r.payload_len && pl[i] && pl[i] < 64;) {
			uint32_t l = pl[i];
			if (i + 1 + l > r.payload_len)
				break;
			fwrite(pl + i + 1, 1, l, stdout);
			putchar('.');
			i += 1 + l;
		}
	}
	put_flags(r.hdr.flags, r.hdr.missing);
	printf("\n");
	return 0;
}

static int ptrace_rec(const uint8_t *p, uint32_t size)
{
	struct hades_ptrace r;
	if (size < sizeof(r))
		return -1;
	if (quiet)
		return 0;
	memcpy(&r, p, sizeof(r));
	printf("PTRACE");
	put_proc(&r.hdr, &r.proc);
	printf(" request=%#x result=%d target_pid=%u target_tgid=%u target_start=%" PRIu64
	       " addr=%#" PRIx64 " data=%#" PRIx64 " target_comm=",
	       r.request, r.result, r.target_pid, r.target_tgid, (uint64_t)r.target_start_ns,
	       (uint64_t)r.addr, (uint64_t)r.data);
	put_bytes((const uint8_t *)r.target_comm, strnlen(r.target_comm, sizeof(r.target_comm)));
	put_flags(r.hdr.flags, r.hdr.missing);
	printf("\n");
	return 0;
}

static int memfd_rec(const uint8_t *p, uint32_t size)
{
	struct hades_memfd r;
	if (size < sizeof(r))
		return -1;
	memcpy(&r, p, sizeof(r));
	if (sizeof(r) + r.name_len > size)
		return -1;
	if (quiet)
		return 0;
	printf("MEMFD_CREATE");
	put_proc(&r.hdr, &r.proc);
	printf(" result=%d flags=%#x name=", r.result, r.flags);
	put_bytes(p + sizeof(r), r.name_len);
	put_flags(r.hdr.flags, r.hdr.missing);
	printf("\n");
	return 0;
}

static int module_rec(const uint8_t *p, uint32_t size)
{
	struct hades_module r;
	if (size < sizeof(r))
		return -1;
	memcpy(&r, p, sizeof(r));
	if (sizeof(r) + r.path_len > size)
		return -1;
	if (quiet)
		return 0;
	printf("MODULE_LOAD");
	put_proc(&r.hdr, &r.proc);
	printf(" sc=%s result=%d fd=%d flags=%#x name=", sc_name(r.syscall), r.result, r.fd, r.flags);
	put_bytes((const uint8_t *)r.name, strnlen(r.name, sizeof(r.name)));
	printf(" path=");
	put_bytes(p + sizeof(r), r.path_len);
	put_flags(r.hdr.flags, r.hdr.missing);
	printf("\n");
	return 0;
}

static int priv_rec(const uint8_t *p, uint32_t size)
{
	struct hades_priv r;
	if (size < sizeof(r))
		return -1;
	if (quiet)
		return 0;
	memcpy(&r, p, sizeof(r));
	printf("PRIV_CHANGE");
	put_proc(&r.hdr, &r.proc);
	printf(" sc=%s args=[%d,%d,%d] result=%d changed=%#x old=[", sc_name(r.syscall),
	       (int)r.args[0], (int)r.args[1], (int)r.args[2], r.result, r.changed);
	for (int i = 0; i < 8; i++)
		printf("%s%u", i ? "," : "", r.old_ids[i]);
	printf("] new=[");
	for (int i = 0; i < 8; i++)
		printf("%s%u", i ? "," : "", r.new_ids[i]);
	printf("] cap_eff=%#" PRIx64 "->%#" PRIx64 " cap_prm=%#" PRIx64 "->%#" PRIx64
	       " cap_inh=%#" PRIx64 "->%#" PRIx64,
	       (uint64_t)r.old_cap_effective, (uint64_t)r.new_cap_effective,
	       (uint64_t)r.old_cap_permitted, (uint64_t)r.new_cap_permitted,
	       (uint64_t)r.old_cap_inheritable, (uint64_t)r.new_cap_inheritable);
	put_flags(r.hdr.flags, r.hdr.missing);
	printf("\n");
	return 0;
}

static int file_rec(const uint8_t *p, uint32_t size)
{
	static const char *const names[] = { "FILE_CREATE", "FILE_RENAME", "FILE_DELETE",
					     "FILE_CHMOD", "KILL", "FILE_OPEN" };
	struct hades_file r;
	if (size < sizeof(r))
		return -1;
	memcpy(&r, p, sizeof(r));
	if (sizeof(r) + (uint32_t)r.path_len + r.path2_len > size)
		return -1;
	if (quiet)
		return 0;
	printf("%s", names[r.hdr.kind - HADES_KIND_FILE_CREATE]);
	put_proc(&r.hdr, &r.proc);
	printf(" sc=%s result=%d op_flags=%#o mode=%#o file_mode=%#o ino=%" PRIu64 " dev=%#x path=",
	       sc_name(r.syscall), r.result, r.op_flags, r.mode, r.file_mode, (uint64_t)r.inode, r.dev);
	put_bytes(p + sizeof(r), r.path_len);
	if (r.path2_len) {
		printf(" path2=");
		put_bytes(p + sizeof(r) + r.path_len, r.path2_len);
	}
	if (r.hdr.flags & HADES_F_OPEN_FRESH)
		printf(" fresh age_ms=%u writer_pid=%u", r.mode, r.writer_pid);
	put_flags(r.hdr.flags, r.hdr.missing);
	printf("\n");
	return 0;
}

static int kill_rec(const uint8_t *p, uint32_t size)
{
	struct hades_kill r;
	if (size < sizeof(r))
		return -1;
	if (quiet)
		return 0;
	memcpy(&r, p, sizeof(r));
	printf("KILL");
	put_proc(&r.hdr, &r.proc);
	printf(" sc=%s result=%d target_pid=%d target_tgid=%d signal=%u", sc_name(r.syscall),
	       r.result, r.target_pid, r.target_tgid, r.signal);
	put_flags(r.hdr.flags, r.hdr.missing);
	printf("\n");
	return 0;
}

static int rename_rec(const uint8_t *p, uint32_t size)
{
	struct hades_rename r;
	if (size < sizeof(r))
		return -1;
	if (quiet)
		return 0;
	memcpy(&r, p, sizeof(r));
	printf("PROC_RENAME");
	put_proc(&r.hdr, &r.proc);
	printf(" target_tid=%u old=\"%.16s\" new=\"%.16s\" unreported=%u", r.target_tid, r.old_comm,
	       r.new_comm, r.unreported);
	put_flags(r.hdr.flags, r.hdr.missing);
	printf("\n");
	return 0;
}

static int times_rec(const uint8_t *p, uint32_t size)
{
	struct hades_file_times r;
	if (size < sizeof(r) || size < sizeof(r) + 0ull + ((const struct hades_file_times *)p)->path_len)
		return -1;
	if (quiet)
		return 0;
	memcpy(&r, p, sizeof(r));
	printf("FILE_TIMES");
	put_proc(&r.hdr, &r.proc);
	printf(" sc=%s result=%d given=0x%x atime=%" PRId64 " mtime=%" PRId64 " inode=%" PRIu64 " path=\"%.*s\"",
	       sc_name(r.syscall), r.result, r.given, (int64_t)r.atime_sec, (int64_t)r.mtime_sec,
	       (uint64_t)r.inode, (int)r.path_len, (const char *)p + sizeof(r));
	put_flags(r.hdr.flags, r.hdr.missing);
	printf("\n");
	return 0;
}

static int records(const uint8_t *p, uint32_t len)
{
	uint32_t off = 0;
	while (off < len) {
		struct hades_record_header h;
		if (len - off < sizeof(h)) {
			fprintf(stderr, "dump: truncated record header\n");
			return -1;
		}
		memcpy(&h, p + off, sizeof(h));
		if (h.size < sizeof(h) || h.size > len - off || (h.size & 7)) {
			fprintf(stderr, "dump: bad record size %u at offset %u\n", h.size, off);
			return -1;
		}
		int rc = 0;
		if (h.flags & (HADES_F_ARGV_TRUNCATED | HADES_F_CWD_TRUNCATED))
			n_drop_flags++;
		switch (h.kind) {
		case HADES_KIND_EXEC:
			rc = exec_rec(p + off, h.size);
			break;
		case HADES_KIND_FORK:
			rc = fork_rec(p + off, h.size);
			break;
		case HADES_KIND_EXIT:
			rc = exit_rec(p + off, h.size);
			break;
		case HADES_KIND_CONNECT:
			rc = net_rec(p + off, h.size, "CONNECT");
			break;
		case HADES_KIND_ACCEPT:
			rc = net_rec(p + off, h.size, "ACCEPT");
			break;
		case HADES_KIND_LISTEN:
			rc = net_rec(p + off, h.size, "LISTEN");
			break;
		case HADES_KIND_DNS:
			rc = dns_rec(p + off, h.size);
			break;
		case HADES_KIND_PTRACE:
			rc = ptrace_rec(p + off, h.size);
			break;
		case HADES_KIND_MEMFD_CREATE:
			rc = memfd_rec(p + off, h.size);
			break;
		case HADES_KIND_MODULE_LOAD:
			rc = module_rec(p + off, h.size);
			break;
		case HADES_KIND_PRIV_CHANGE:
			rc = priv_rec(p + off, h.size);
			break;
		case HADES_KIND_FILE_CREATE:
		case HADES_KIND_FILE_RENAME:
		case HADES_KIND_FILE_DELETE:
		case HADES_KIND_FILE_CHMOD:
		case HADES_KIND_FILE_OPEN:
			rc = file_rec(p + off, h.size);
			break;
		case HADES_KIND_KILL:
			rc = kill_rec(p + off, h.size);
			break;
		case HADES_KIND_PROC_RENAME:
			rc = rename_rec(p + off, h.size);
			break;
		case HADES_KIND_FILE_TIMES:
			rc = times_rec(p + off, h.size);
			break;
		default:
			n_unknown++; /* skippable thanks to the size field */
			if (!quiet)
				printf("UNKNOWN kind=%u size=%u\n", h.kind, h.size);
		}
		if (rc) {
			fprintf(stderr, "dump: record kind %u too short (%u)\n", h.kind, h.size);
			return -1;
		}
		if (h.kind < 32)
			n_kind[h.kind]++;
		off += h.size;
	}
	return 0;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-q"))
			quiet = true;
		else if (!strcmp(argv[i], "--match-arg") && i + 1 < argc)
			match_arg = argv[++i];
		else if (!strcmp(argv[i], "--match-cwd") && i + 1 < argc)
			match_cwd = argv[++i];
		else {
			fprintf(stderr, "usage: hades-driver-dump [-q] [--match-arg S] [--match-cwd D]\n");
			return 2;
		}
	}
	uint8_t *buf = malloc(HADES_FRAME_MAX_PAYLOAD + 1);
	int status = 0;
	if (!buf)
		return 1;
	for (;;) {
		struct hades_frame_header fh;
		int r = read_full(&fh, sizeof(fh));
		if (r == 0)
			break;
		if (r < 0 || fh.payload_len > HADES_FRAME_MAX_PAYLOAD) {
			fprintf(stderr, "dump: bad frame header\n");
			status = 1;
			break;
		}
		if (fh.payload_len && read_full(buf, fh.payload_len) != 1) {
			fprintf(stderr, "dump: truncated frame payload\n");
			status = 1;
			break;
		}
		n_frames++;
		buf[fh.payload_len] = 0;
		switch (fh.type) {
		case HADES_FRAME_RECORDS:
			if (records(buf, fh.payload_len))
				status = 1;
			break;
		case HADES_FRAME_HELLO:
		case HADES_FRAME_STATS:
		case HADES_FRAME_LOG:
		case HADES_FRAME_ACK: {
			static const char *const names[] = { "", "HELLO", "RECORDS", "STATS", "LOG", "ACK" };
			if (fh.type == HADES_FRAME_STATS)
				snprintf(last_stats, sizeof(last_stats), "%s", (char *)buf);
			if (!quiet || fh.type == HADES_FRAME_LOG)
				printf("%s %s\n", names[fh.type], (char *)buf);
			break;
		}
		default:
			printf("FRAME type=%u len=%u (unknown)\n", fh.type, fh.payload_len);
		}
		if (status)
			break;
	}
	fflush(stdout);
	fprintf(stderr, "summary: frames=%" PRIu64 " exec=%" PRIu64 " fork=%" PRIu64 " exit=%" PRIu64
		" unknown=%" PRIu64 " truncated=%" PRIu64,
		n_frames, n_kind[1], n_kind[2], n_kind[3], n_unknown, n_drop_flags);
	static const char *const sec[] = { "connect", "accept", "listen", "dns", "ptrace",
					   "memfd_create", "module_load", "priv_change",
					   "file_create", "file_rename", "file_delete", "file_chmod",
					   "kill", "file_open" };
	for (int k = HADES_KIND_CONNECT; k <= HADES_KIND_FILE_OPEN; k++)
		if (n_kind[k])
			fprintf(stderr, " %s=%" PRIu64, sec[k - HADES_KIND_CONNECT], n_kind[k]);
	if (match_arg)
		fprintf(stderr, " match_arg=%" PRIu64, n_match);
	if (match_cwd)
		fprintf(stderr, " match_cwd=%" PRIu64, n_match_cwd);
	fprintf(stderr, "\nlast_stats: %s\n", last_stats);
	free(buf);
	return status;
}
