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
static uint64_t n_kind[16], n_unknown, n_match, n_match_cwd, n_frames, n_drop_flags;
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
					  "exe_tmpfs", "exe_memfd", "start_ticks" };
	static const char *const mn[] = { "filename", "exe", "argv", "cwd", "creds", "parent",
					  "pgid_sid", "tty", "fds", "cgroup", "ns", "comm",
					  "start", "loginuid", "caps" };
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
	struct hades_exec e;
	if (size < sizeof(e))
		return -1;
	memcpy(&e, p, sizeof(e));
	uint64_t tail = (uint64_t)e.filename_len + e.exe_len + e.cwd_len + e.tty_len + e.cgroup_len +
			e.argv_len;
	if (sizeof(e) + tail > size)
		return -1;
	const uint8_t *t = p + sizeof(e);
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
	printf(" cwd=");
	put_bytes(cwd, e.cwd_len);
	printf(" tty=");
	put_bytes(tty, e.tty_len);
	printf(" cgroup=");
	put_bytes(cg, e.cgroup_len);
	for (int i = 0; i < 3; i++)
		put_fd(i, &e.fds[i]);
	printf(" argv_len=%u/%u argv=[", e.argv_len, e.argv_orig_len);
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
		default:
			n_unknown++; /* skippable thanks to the size field */
			if (!quiet)
				printf("UNKNOWN kind=%u size=%u\n", h.kind, h.size);
		}
		if (rc) {
			fprintf(stderr, "dump: record kind %u too short (%u)\n", h.kind, h.size);
			return -1;
		}
		if (h.kind < 16)
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
	if (match_arg)
		fprintf(stderr, " match_arg=%" PRIu64, n_match);
	if (match_cwd)
		fprintf(stderr, " match_cwd=%" PRIu64, n_match_cwd);
	fprintf(stderr, "\nlast_stats: %s\n", last_stats);
	free(buf);
	return status;
}
