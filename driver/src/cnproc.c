// SPDX-License-Identifier: MIT
/*
 * cn_proc backend: process events from the netlink proc connector, enriched
 * from /proc right away and emitted in the same record layout as eBPF.
 *
 * cn_proc only says "pid X exec'd"; everything else is read from /proc and
 * is lost when the process has already exited. Such fields are zero/empty
 * and flagged in header.missing, so the agent never mistakes a gap for data.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>

#include "driver.h"
#include "output.h"

#define RCVBUF_BYTES (8 << 20) /* 212 KB default lost 34% of a storm */
#define CGROUP2_MAGIC 0x63677270
#define TMPFS_MAGIC 0x01021994 /* also the memfd file system (shmem) */
#define RAMFS_MAGIC 0x858458f6
#define REC_CAP (HADES_EXEC_FIXED_SIZE + 4 * HADES_PATH_MAX + HADES_TTY_MAX + \
		 HADES_CGROUP_PATH_MAX + HADES_ARGV_MAX_LIMIT + 8)
#define MAX_CPUS_TRACKED 1024
/* Processes whose leader thread exited while other threads live on, at most (their exit waits
 * for the last thread; the cn_tick sweep reads /proc for each) */
#define DEFER_MAX 1024
#define SWEEP_EVERY_MAX 32

/* What we remember per live process: exit events carry no start time or comm. */
struct proc_entry {
	uint32_t tgid; /* 0 = empty slot */
	bool muted;    /* runs a denied executable */
	uint64_t start_ns;
	uint32_t ppid;
	char comm[16];  /* its name as last seen: exec, fork, the connector's COMM messages */
	/* PROC_RENAME bound, as the eBPF backend's rename_budget (PROTOCOL.md 2.16) */
	uint64_t rename_start_ns;  /* the start_ns the budget belongs to */
	uint64_t rename_window_ns; /* start of the current window */
	uint64_t rename_last_ns;   /* time of the newest rename over the bound */
	uint32_t rename_sent;      /* records in the window */
	uint32_t rename_unreported; /* renames over the bound since the last record */
	char rename_old[16];       /* the name before the first of them */
	char rename_last[16];      /* the name the newest of them gave */
	/* Threads and the process exit (on_exit_ev). cn_proc reports every thread's exit, and a
	 * process outlives its leader thread when that one ends first (pthread_exit() in main) or is
	 * replaced (execve from another thread: de_thread). */
	uint32_t threads;          /* its other threads: FORK messages of threads less their EXITs */
	uint64_t count_losses;     /* c's loss count when counting began: the count holds while equal */
	bool counted;              /* threads counted from its start (its FORK seen) */
	bool exit_deferred;        /* the leader has exited, other threads live on (a deferred exit) */
	uint8_t sweep_wait;        /* cn_tick: ticks until the next /proc check of a deferred exit */
	uint8_t sweep_every;       /* that check's interval in ticks, doubled while threads live */
	uint8_t sweep_ended;       /* checks in a row that found the group ended */
	uint32_t exit_code, exit_tid, exit_ppid; /* the latest exit of its threads */
	uint64_t exit_ktime;
};

struct proc_table {
	struct proc_entry *slots;
	size_t cap; /* power of two */
	size_t used;
};

struct cnproc {
	int sock;
	bool listening;         /* LISTEN sent: IGNORE must balance it, and only it */
	const struct config *cfg;
	struct hades_hook_counters counters[HADES_HOOK_COUNT];
	bool disabled[HADES_HOOK_COUNT];
	uint64_t enobufs;       /* recv reported overflow */
	uint64_t seq_gaps;      /* events lost, from per-CPU sequence gaps */
	uint64_t recv_errors;
	uint64_t rename_dropped_seen; /* task_rename dropped_rate_limit at the last catch-up scan */
	bool rename_pending;          /* that scan left renames whose window had not passed */
	uint64_t rename_catch_ups;    /* catch-up records sent */
	size_t deferred;              /* entries with exit_deferred (at most DEFER_MAX) */
	uint64_t deferred_full;       /* exits reported at the leader's exit since DEFER_MAX were waiting */
	uint64_t deferred_swept;      /* deferred exits the tick sent without their last thread's EXIT */
	uint64_t *last_seq;     /* per CPU: last sequence number + 1, 0 = none */
	struct proc_table procs;
	uint32_t *deny_pids;
	size_t n_deny_pids;
	char **deny_exes;
	size_t n_deny_exes;
	uint64_t *cg_ids;
	uint8_t *cg_vals;
	size_t n_cg;
	bool cg_allow_only;
	const char *cgroot;     /* cgroup2 mount point, NULL if none */
	long clk_tck;
	uint8_t *rec;
	uint8_t *rxbuf;
};

/* ---------- process table (open addressing, linear probing) ---------- */

static size_t slot_of(const struct proc_table *t, uint32_t tgid)
{
	return (tgid * 2654435761u) & (t->cap - 1);
}

static struct proc_entry *proc_find(struct proc_table *t, uint32_t tgid)
{
	for (size_t i = slot_of(t, tgid);; i = (i + 1) & (t->cap - 1)) {
		if (t->slots[i].tgid == tgid)
			return &t->slots[i];
		if (t->slots[i].tgid == 0)
			return NULL;
	}
}

static int proc_grow(struct proc_table *t)
{
	struct proc_table n = { .cap = t->cap * 2 };
	n.slots = calloc(n.cap, sizeof(*n.slots));
	if (!n.slots)
		return -ENOMEM;
	for (size_t i = 0; i < t->cap; i++) {
		if (!t->slots[i].tgid)
			continue;
		size_t j = slot_of(&n, t->slots[i].tgid);
		while (n.slots[j].tgid)
			j = (j + 1) & (n.cap - 1);
		n.slots[j] = t->slots[i];
		n.used++;
	}
	free(t->slots);
	*t = n;
	return 0;
}

/* Returns the entry for tgid, inserting an empty one; NULL when out of memory. */
static struct proc_entry *proc_upsert(struct proc_table *t, uint32_t tgid)
{
	struct proc_entry *e = proc_find(t, tgid);
	if (e)
		return e;
	if ((t->used + 1) * 2 > t->cap && proc_grow(t))
		return NULL;
	size_t i = slot_of(t, tgid);
	while (t->slots[i].tgid)
		i = (i + 1) & (t->cap - 1);
	memset(&t->slots[i], 0, sizeof(t->slots[i]));
	t->slots[i].tgid = tgid;
	t->used++;
	return &t->slots[i];
}

static void proc_remove(struct proc_table *t, uint32_t tgid)
{
	size_t i = slot_of(t, tgid);
	while (t->slots[i].tgid != tgid) {
		if (!t->slots[i].tgid)
			return;
		i = (i + 1) & (t->cap - 1);
	}
	t->slots[i].tgid = 0;
	t->used--;
	/* backward-shift deletion keeps probe chains intact without tombstones */
	for (size_t j = (i + 1) & (t->cap - 1); t->slots[j].tgid; j = (j + 1) & (t->cap - 1)) {
		size_t home = slot_of(t, t->slots[j].tgid);
		bool movable = i <= j ? (home <= i || home > j) : (home <= i && home > j);
		if (movable) {
			t->slots[i] = t->slots[j];
			t->slots[j].tgid = 0;
			i = j;
		}
	}
}

/* ---------- /proc readers ---------- */

/* Reads up to cap bytes of a (proc) file; returns length or -errno. */
static ssize_t read_small(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t len = 0;
	while (len < cap) {
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = -errno;
			close(fd);
			return e;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	return (ssize_t)len;
}

static ssize_t read_link(const char *path, char *buf, size_t cap)
{
	ssize_t n = readlink(path, buf, cap);
	if (n < 0)
		return -errno;
	return n;
}

struct stat_info {
	char comm[16];
	char state; /* R, S, D, Z (zombie), X (dead), ... */
	uint32_t ppid, pgid, sid;
	uint32_t tty_nr;
	uint32_t num_threads;
	uint64_t start_ticks;
};

/* Parses /proc/PID/stat; comm may contain spaces and ')' so split at the last ')'. */
static int read_stat(uint32_t pid, struct stat_info *si)
{
	char path[48], buf[1024];
	snprintf(path, sizeof(path), "/proc/%u/stat", pid);
	ssize_t n = read_small(path, buf, sizeof(buf) - 1);
	if (n < 0)
		return (int)n;
	buf[n] = 0;
	char *lp = strchr(buf, '('), *rp = strrchr(buf, ')');
	if (!lp || !rp || rp < lp)
		return -EINVAL;
	size_t cl = (size_t)(rp - lp - 1);
	memset(si->comm, 0, sizeof(si->comm));
	memcpy(si->comm, lp + 1, cl < 15 ? cl : 15);
	/* fields after comm: 3 state, 4 ppid, 5 pgrp, 6 session, 7 tty_nr, ... 22 starttime */
	char *p = rp + 2;
	si->state = rp[1] == ' ' ? rp[2] : 0;
	unsigned long long v[20];
	int field = 3;
	char *save = NULL;
	for (char *tok = strtok_r(p, " ", &save); tok && field <= 22; tok = strtok_r(NULL, " ", &save), field++) {
		if (field >= 4)
			v[field - 4] = strtoull(tok, NULL, 10);
	}
	if (field <= 22)
		return -EINVAL;
	si->ppid = (uint32_t)v[0];
	si->pgid = (uint32_t)v[1];
	si->sid = (uint32_t)v[2];
	si->tty_nr = (uint32_t)(long)(int)v[3];
	si->num_threads = (uint32_t)v[16]; /* field 20 */
	si->start_ticks = v[18];
	return 0;
}

struct status_info {
	uint32_t uid[4], gid[4];
	uint64_t cap_eff;
	bool have_ids, have_caps;
};

static int read_status(uint32_t pid, struct status_info *st)
{
	char path[48], buf[4096];
	snprintf(path, sizeof(path), "/proc/%u/status", pid);
	ssize_t n = read_small(path, buf, sizeof(buf) - 1);
	if (n < 0)
		return (int)n;
	buf[n] = 0;
	memset(st, 0, sizeof(*st));
	bool u = false, g = false;
	for (char *line = buf; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		if (!strncmp(line, "Uid:", 4))
			u = sscanf(line + 4, "%u %u %u %u", &st->uid[0], &st->uid[1], &st->uid[2], &st->uid[3]) == 4;
		else if (!strncmp(line, "Gid:", 4))
			g = sscanf(line + 4, "%u %u %u %u", &st->gid[0], &st->gid[1], &st->gid[2], &st->gid[3]) == 4;
		else if (!strncmp(line, "CapEff:", 7))
			st->have_caps = sscanf(line + 7, "%llx", (unsigned long long *)&st->cap_eff) == 1;
		line = nl ? nl + 1 : NULL;
	}
	st->have_ids = u && g;
	return st->have_ids ? 0 : -EINVAL;
}

static int read_u32_file(const char *path, uint32_t *out)
{
	char buf[32];
	ssize_t n = read_small(path, buf, sizeof(buf) - 1);
	if (n <= 0)
		return n ? (int)n : -EINVAL;
	buf[n] = 0;
	char *end;
	unsigned long v = strtoul(buf, &end, 10);
	if (end == buf)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

/* "pid:[4026531836]" -> 4026531836 */
static int read_ns(uint32_t pid, const char *ns, uint32_t *out)
{
	char path[64], buf[64];
	snprintf(path, sizeof(path), "/proc/%u/ns/%s", pid, ns);
	ssize_t n = read_link(path, buf, sizeof(buf) - 1);
	if (n < 0)
		return (int)n;
	buf[n] = 0;
	char *lb = strchr(buf, '[');
	if (!lb)
		return -EINVAL;
	*out = (uint32_t)strtoul(lb + 1, NULL, 10);
	return 0;
}

/* Kernel tty names as the eBPF backend reports them (tty->name). */
static int tty_name(uint32_t tty_nr, char *out, size_t cap)
{
	unsigned maj = (tty_nr >> 8) & 0xfff, min = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
	if (tty_nr == 0)
		return 0;
	if (maj >= 136 && maj <= 143)
		return snprintf(out, cap, "pts%u", (maj - 136) * 256 + min);
	if (maj == 4 && min < 64)
		return snprintf(out, cap, "tty%u", min);
	if (maj == 4)
		return snprintf(out, cap, "ttyS%u", min - 64);
	if (maj == 5 && min == 1)
		return snprintf(out, cap, "console");
	return snprintf(out, cap, "tty%u:%u", maj, min);
}

static void parse_hex_addr(const char *s, uint8_t *out, size_t words)
{
	/* /proc/net prints each 32-bit word of the network-order address with %08X
	 * as a host-order integer: storing it back little-endian restores bytes */
	for (size_t w = 0; w < words; w++) {
		char tmp[9];
		memcpy(tmp, s + w * 8, 8);
		tmp[8] = 0;
		uint32_t v = (uint32_t)strtoul(tmp, NULL, 16);
		memcpy(out + w * 4, &v, 4);
	}
}

/* Finds the socket with inode ino in /proc/PID/net/{tcp,tcp6,udp,udp6,unix}. */
static void socket_details(uint32_t pid, uint64_t ino, struct hades_fd_info *fi)
{
	static const struct {
		const char *file;
		uint8_t family;
		uint16_t type, proto;
		size_t words;
	} tabs[] = {
		{ "tcp", 2, 1, 6, 1 },
		{ "tcp6", 10, 1, 6, 4 },
		{ "udp", 2, 2, 17, 1 },
		{ "udp6", 10, 2, 17, 4 },
	};
	char path[64], line[512];

	for (size_t t = 0; t < sizeof(tabs) / sizeof(tabs[0]); t++) {
		snprintf(path, sizeof(path), "/proc/%u/net/%s", pid, tabs[t].file);
		FILE *f = fopen(path, "re");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			char laddr[40], raddr[40];
			unsigned lport, rport;
			unsigned long long inode;
			/* sl local rem st tx:rx tr:when retr uid timeout inode */
			if (sscanf(line, " %*s %39[0-9A-Fa-f]:%x %39[0-9A-Fa-f]:%x %*s %*s %*s %*s %*s %*s %llu",
				   laddr, &lport, raddr, &rport, &inode) != 5 || inode != ino)
				continue;
			if (strlen(laddr) != tabs[t].words * 8 || strlen(raddr) != tabs[t].words * 8)
				continue;
			fi->family = tabs[t].family;
			fi->sock_type = tabs[t].type;
			fi->protocol = tabs[t].proto;
			fi->local_port = (uint16_t)lport;
			fi->remote_port = (uint16_t)rport;
			parse_hex_addr(laddr, fi->local_addr, tabs[t].words);
			parse_hex_addr(raddr, fi->remote_addr, tabs[t].words);
			fclose(f);
			return;
		}
		fclose(f);
	}
	snprintf(path, sizeof(path), "/proc/%u/net/unix", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned type;
		unsigned long long inode;
		/* Num RefCount Protocol Flags Type St Inode Path */
		if (sscanf(line, "%*s %*s %*s %*s %x %*s %llu", &type, &inode) == 2 && inode == ino) {
			fi->family = 1;
			fi->sock_type = (uint16_t)type;
			break;
		}
	}
	fclose(f);
}

/* Whether a process has exited (a zombie, or gone): its /proc/PID/fd is then empty, not its stdio closed. */
static bool proc_exited(uint32_t pid)
{
	struct stat_info si;
	return read_stat(pid, &si) != 0 || si.state == 'Z' || si.state == 'X';
}

static int fd_info(uint32_t pid, int fd, struct hades_fd_info *fi)
{
	char path[64];
	struct stat st;

	memset(fi, 0, sizeof(*fi));
	snprintf(path, sizeof(path), "/proc/%u/fd/%d", pid, fd);
	if (stat(path, &st)) {
		if (errno == ENOENT) {
			/* either fd closed or process gone: tell them apart */
			char dir[48];
			snprintf(dir, sizeof(dir), "/proc/%u/fd", pid);
			if (access(dir, F_OK) == 0 && !proc_exited(pid)) {
				fi->kind = HADES_FD_NONE;
				return 0;
			}
		}
		fi->kind = HADES_FD_UNKNOWN;
		return -1;
	}
	fi->inode = st.st_ino;
	switch (st.st_mode & S_IFMT) {
	case S_IFCHR:
	case S_IFBLK:
		fi->kind = S_ISCHR(st.st_mode) ? HADES_FD_CHAR : HADES_FD_BLOCK;
		fi->rdev = major(st.st_rdev) << 20 | (minor(st.st_rdev) & 0xfffff);
		break;
	case S_IFIFO:
		fi->kind = HADES_FD_PIPE;
		break;
	case S_IFREG:
		fi->kind = HADES_FD_FILE;
		break;
	case S_IFDIR:
		fi->kind = HADES_FD_DIR;
		break;
	case S_IFSOCK:
		fi->kind = HADES_FD_SOCKET;
		socket_details(pid, st.st_ino, fi);
		break;
	default:
		fi->kind = HADES_FD_OTHER;
	}
	return 0;
}

/* Reads "0::/path" from /proc/PID/cgroup into out; returns its length or -errno. */
static ssize_t read_cgroup_path(uint32_t pid, char *out, size_t cap)
{
	char path[48], buf[4096];
	snprintf(path, sizeof(path), "/proc/%u/cgroup", pid);
	ssize_t n = read_small(path, buf, sizeof(buf) - 1);
	if (n < 0)
		return n;
	buf[n] = 0;
	for (char *line = buf; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		if (!strncmp(line, "0::", 3)) {
			size_t l = strlen(line + 3);
			if (l > cap)
				l = cap;
			memcpy(out, line + 3, l);
			return (ssize_t)l;
		}
		line = nl ? nl + 1 : NULL;
	}
	return -ENOENT;
}

/* cgroup v2 ids are the inode numbers of the cgroup directories */
static uint64_t cgroup_id_of(const struct cnproc *c, const char *cgpath, size_t len)
{
	char path[HADES_CGROUP_PATH_MAX + 64];
	struct stat st;
	if (!c->cgroot)
		return 0;
	snprintf(path, sizeof(path), "%s%.*s", c->cgroot, (int)len, cgpath);
	return stat(path, &st) ? 0 : st.st_ino;
}

/* ---------- filters ---------- */

static bool pid_denied(const struct cnproc *c, uint32_t tgid)
{
	for (size_t i = 0; i < c->n_deny_pids; i++)
		if (c->deny_pids[i] == tgid)
			return true;
	return false;
}

static bool exe_denied(const struct cnproc *c, const char *exe, size_t len)
{
	for (size_t i = 0; i < c->n_deny_exes; i++)
		if (strlen(c->deny_exes[i]) == len && !memcmp(c->deny_exes[i], exe, len))
			return true;
	return false;
}

/* cgid 0 = unknown: never dropped by cgroup rules (better noise than a gap) */
static bool cgroup_dropped(const struct cnproc *c, uint64_t cgid)
{
	if (!cgid)
		return false;
	for (size_t i = 0; i < c->n_cg; i++)
		if (c->cg_ids[i] == cgid)
			return c->cg_allow_only ? c->cg_vals[i] != HADES_CGROUP_VAL_ALLOW
						: c->cg_vals[i] == HADES_CGROUP_VAL_DENY;
	return c->cg_allow_only;
}

static bool cgroup_filters_active(const struct cnproc *c)
{
	return c->n_cg || c->cg_allow_only;
}

static uint64_t cgroup_of_pid(const struct cnproc *c, uint32_t pid)
{
	char p[HADES_CGROUP_PATH_MAX];
	ssize_t n = read_cgroup_path(pid, p, sizeof(p));
	return n > 0 ? cgroup_id_of(c, p, (size_t)n) : 0;
}

/* ---------- event handlers ---------- */

static uint64_t ticks_to_ns(const struct cnproc *c, uint64_t ticks)
{
	return ticks * (1000000000ULL / (uint64_t)c->clk_tck);
}

static void init_header(struct hades_record_header *h, uint16_t kind, uint64_t ktime,
			uint32_t pid, uint32_t tid)
{
	h->kind = kind;
	h->version = HADES_RECORD_VERSION;
	h->ktime_ns = ktime;
	h->pid = pid;
	h->tid = tid;
	h->flags = HADES_F_CNPROC | HADES_F_START_TICKS;
	h->missing = 0;
}

/*
 * The look-ahead queue of connector messages (one backend per process). cn_pump reads up to
 * LOOKAHEAD of them before handling the first, and on_exec reads more after its /proc reads:
 * either way a later EXEC of the same process already queued shows that /proc may have shown
 * that later program. Room for LOOKAHEAD more is kept, since a datagram could carry several.
 */
#define RXBUF 65536
#define LOOKAHEAD 64
#define EVENT_BYTES (sizeof(struct cn_msg) + sizeof(struct proc_event))
static uint64_t q_msgs[2 * LOOKAHEAD][(EVENT_BYTES + 7) / 8]; /* u64: aligned for the event's fields */
static size_t q_lens[2 * LOOKAHEAD];
static int q_n, q_cur;

/* Reads what waits on the socket into the queue while it holds fewer than LOOKAHEAD; false
 * when nothing more waits (or the socket failed). */
static bool q_fill(struct cnproc *c)
{
	while (q_n < LOOKAHEAD) {
		ssize_t n = recv(c->sock, c->rxbuf, RXBUF, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS) {
				/* the socket overflowed; the sequence gaps say by how much */
				c->enobufs++;
				continue;
			}
			if (errno != EAGAIN)
				c->recv_errors++;
			return false;
		}
		for (struct nlmsghdr *nh = (void *)c->rxbuf; NLMSG_OK(nh, (size_t)n); nh = NLMSG_NEXT(nh, n)) {
			if (nh->nlmsg_type == NLMSG_NOOP || nh->nlmsg_type == NLMSG_ERROR)
				continue;
			if (q_n == 2 * LOOKAHEAD) {
				/* more messages in one datagram than the connector ever sends: counted lost */
				c->recv_errors++;
				continue;
			}
			/* handle_msg reads no more than an event; a shorter message it skips */
			size_t plen = NLMSG_PAYLOAD(nh, 0), keep = plen < EVENT_BYTES ? plen : EVENT_BYTES;
			memcpy(q_msgs[q_n], NLMSG_DATA(nh), keep);
			q_lens[q_n++] = keep;
		}
	}
	return true;
}

/* The tgid of queued message i when it is an EXEC, else 0. */
static uint32_t q_exec_tgid(int i)
{
	const struct cn_msg *cn = (const void *)q_msgs[i];
	const struct proc_event *ev = (const void *)cn->data;
	return q_lens[i] >= EVENT_BYTES && ev->what == PROC_EVENT_EXEC ? (uint32_t)ev->event_data.exec.process_tgid : 0;
}

/* Whether an EXEC of tgid is queued after the message being handled. */
static bool q_later_exec(uint32_t tgid)
{
	for (int j = q_cur + 1; tgid != 0 && j < q_n; j++)
		if (q_exec_tgid(j) == tgid)
			return true;
	return false;
}

/* Whether a COMM (a rename) of the process tgid itself is queued after the message being handled. */
static bool q_later_comm(uint32_t tgid)
{
	for (int j = q_cur + 1; tgid != 0 && j < q_n; j++) {
		const struct cn_msg *cn = (const void *)q_msgs[j];
		const struct proc_event *ev = (const void *)cn->data;
		if (q_lens[j] >= EVENT_BYTES && ev->what == PROC_EVENT_COMM &&
		    (uint32_t)ev->event_data.comm.process_tgid == tgid &&
		    ev->event_data.comm.process_pid == ev->event_data.comm.process_tgid)
			return true;
	}
	return false;
}

/* Whether an EXIT of a thread of tgid (the leader's included) is queued after the message being handled. */
static bool q_later_exit(uint32_t tgid)
{
	for (int j = q_cur + 1; tgid != 0 && j < q_n; j++) {
		const struct cn_msg *cn = (const void *)q_msgs[j];
		const struct proc_event *ev = (const void *)cn->data;
		if (q_lens[j] >= EVENT_BYTES && ev->what == PROC_EVENT_EXIT && (uint32_t)ev->event_data.exit.process_tgid == tgid)
			return true;
	}
	return false;
}

/* Messages lost so far (sequence gaps, socket overflows): thread counts begun before a loss may miss a thread. */
static uint64_t losses(const struct cnproc *c)
{
	return c->seq_gaps + c->enobufs;
}

/* Whether pe's thread count is exact: counted from its start, no message lost since. */
static bool threads_exact(const struct cnproc *c, const struct proc_entry *pe)
{
	return pe->counted && pe->count_losses == losses(c);
}

/* A process starts single-threaded (a fork child, or an exec, which ends every other thread). */
static void threads_reset(const struct cnproc *c, struct proc_entry *pe, bool counted)
{
	pe->threads = 0;
	pe->counted = counted;
	pe->count_losses = losses(c);
}

static void defer_cancel(struct cnproc *c, struct proc_entry *pe)
{
	if (pe->exit_deferred) {
		pe->exit_deferred = false;
		c->deferred--;
	}
}

/*
 * The length of a /proc link text s (n bytes, a path in process tgid's root) without the
 * " (deleted)" the kernel appends to the path of a removed name, for the file st: cut off when
 * the file has no link left (nlink 0), or when it has but not under the whole text (a name of
 * it removed, another kept); never from a file whose own name ends so.
 */
static size_t without_deleted(uint32_t tgid, const char *s, size_t n, const struct stat *st)
{
	static const char del[] = " (deleted)";
	const size_t dl = sizeof(del) - 1;
	if (n <= dl || memcmp(s + n - dl, del, dl))
		return n;
	if (st->st_nlink == 0)
		return n - dl;
	char whole[HADES_PATH_MAX + 64];
	struct stat ws;
	snprintf(whole, sizeof(whole), "/proc/%u/root%.*s", tgid, (int)n, s);
	if (stat(whole, &ws) || ws.st_ino != st->st_ino || ws.st_dev != st->st_dev)
		return n - dl;
	return n;
}

/*
 * The executable's path from the /proc/PID/exe link text s (n bytes) and its flags, as eBPF reads
 * them from the file (xs: its stat, NULL when it failed): EXE_DELETED when it has no link left
 * (nlink 0); EXE_TMPFS on tmpfs/ramfs (statfs); EXE_MEMFD for a memfd (the two, and the name
 * the kernel gives it, "/memfd:NAME"). The kernel appends " (deleted)" to the path of a name that
 * was removed: cut off only then, never from a file whose own name ends so (the same file is
 * found under the whole text), so a program named "x (deleted)" is neither renamed nor
 * flagged. Returns the path's length.
 */
static size_t exe_path_flags(uint32_t tgid, const char *s, size_t n, const struct stat *xs, uint32_t *flags)
{
	char path[48];
	struct statfs sf;

	if (!xs)
		return n; /* the file is unknown (the process gone): the text as it is, no flag */
	if (xs->st_nlink == 0)
		*flags |= HADES_F_EXE_DELETED;
	n = without_deleted(tgid, s, n, xs);
	snprintf(path, sizeof(path), "/proc/%u/exe", tgid);
	if (statfs(path, &sf) == 0 && ((unsigned long)sf.f_type == TMPFS_MAGIC || (unsigned long)sf.f_type == RAMFS_MAGIC)) {
		*flags |= HADES_F_EXE_TMPFS;
		if (xs->st_nlink == 0 && n >= 7 && !memcmp(s, "/memfd:", 7))
			*flags |= HADES_F_EXE_MEMFD;
	}
	return n;
}

/* What an exec superseded by the next one has marked missing: its program's fields. */
#define PROGRAM_MISSING (HADES_M_EXE_ID | HADES_M_EXE | HADES_M_ARGV | HADES_M_COMM | HADES_M_CREDS | HADES_M_CAPS)

/*
 * superseded: a later exec of the same process is already queued (cn_pump's look-ahead), so
 * what /proc shows now is that later program: the program's fields (executable, its identity,
 * name, arguments, credentials) are marked missing instead of read, never given to this exec.
 */
static int on_exec(struct cnproc *c, uint64_t ktime, uint32_t pid, uint32_t tgid, bool superseded)
{
	struct hades_hook_counters *k = &c->counters[HADES_HOOK_EXEC];
	struct hades_exec *e = (void *)c->rec;
	uint8_t *tail = c->rec + sizeof(*e);
	char path[80];
	size_t off = 0;
	ssize_t n;

	/* The process lives on, single-threaded: an exit deferred at its leader's exit was the old
	 * leader's, ended by an exec from another thread (de_thread), and is never sent. The other
	 * threads' EXIT messages may still follow this one: a count it had is no longer exact. */
	struct proc_entry *tpe = proc_find(&c->procs, tgid);
	if (tpe) {
		bool had_threads = tpe->threads || tpe->exit_deferred || !tpe->counted;
		defer_cancel(c, tpe);
		threads_reset(c, tpe, !had_threads && threads_exact(c, tpe));
	}

	/* not in --hooks: the connector cannot filter by type, so drop here
	 * before any /proc read */
	if (!hook_requested(c->cfg, HADES_HOOK_EXEC))
		return 0;
	k->seen++;
	if (c->disabled[HADES_HOOK_EXEC]) {
		k->disabled++;
		return 0;
	}
	if (pid_denied(c, tgid)) {
		k->filtered++;
		return 0;
	}
	memset(e, 0, sizeof(*e));
	init_header(&e->hdr, HADES_KIND_EXEC, ktime, tgid, pid);
	e->hdr.version = HADES_EXEC_VERSION;
	/* cn_proc does not carry the execve filename */
	e->hdr.missing |= HADES_M_FILENAME;

	snprintf(path, sizeof(path), "/proc/%u/exe", tgid);
	/* stat follows the magic link to the mapped file itself, so deleted
	 * files and memfds resolve too */
	struct stat xs;
	bool have_xs = false;
	if (superseded) {
		e->hdr.missing |= PROGRAM_MISSING;
	} else if (stat(path, &xs) == 0) {
		have_xs = true;
		e->exe_ino = (uint64_t)xs.st_ino;
		e->exe_dev = major(xs.st_dev) << 20 | (minor(xs.st_dev) & 0xfffff);
		e->exe_size = (uint64_t)xs.st_size;
		e->exe_mtime_sec = (uint64_t)xs.st_mtim.tv_sec;
		e->exe_mtime_nsec = (uint32_t)xs.st_mtim.tv_nsec;
		e->exe_ctime_sec = (uint64_t)xs.st_ctim.tv_sec;
		e->exe_ctime_nsec = (uint32_t)xs.st_ctim.tv_nsec;
		if (((xs.st_mode & S_ISUID) && xs.st_uid == 0) || ((xs.st_mode & S_ISGID) && xs.st_gid == 0))
			e->hdr.flags |= HADES_F_EXE_SETUID_ROOT;
	} else {
		e->hdr.missing |= HADES_M_EXE_ID;
	}
	n = superseded ? 0 : read_link(path, (char *)tail + off, HADES_PATH_MAX - 1);
	if (n > 0) {
		char *s = (char *)tail + off;
		n = exe_path_flags(tgid, s, (size_t)n, have_xs ? &xs : NULL, &e->hdr.flags);
		if (exe_denied(c, s, (size_t)n)) {
			struct proc_entry *pe = proc_upsert(&c->procs, tgid);
			if (pe)
				pe->muted = true;
			k->filtered++;
			return 0;
		}
		e->exe_len = (uint16_t)n;
		off += (size_t)n;
	} else {
		e->hdr.missing |= HADES_M_EXE;
	}

	snprintf(path, sizeof(path), "/proc/%u/cwd", tgid);
	n = read_link(path, (char *)tail + off, HADES_PATH_MAX - 1);
	if (n > 0) {
		e->cwd_len = (uint16_t)n;
		off += (size_t)n;
	} else {
		e->hdr.missing |= HADES_M_CWD;
	}

	struct stat_info si;
	if (read_stat(tgid, &si) == 0) {
		if (!superseded)
			memcpy(e->comm, si.comm, sizeof(e->comm));
		e->ppid = si.ppid;
		e->pgid = si.pgid;
		e->sid = si.sid;
		e->start_ns = ticks_to_ns(c, si.start_ticks);
		if (si.tty_nr) {
			unsigned maj = (si.tty_nr >> 8) & 0xfff,
				 min = (si.tty_nr & 0xff) | ((si.tty_nr >> 12) & 0xfff00);
			e->tty_dev = maj << 20 | min;
			int l = tty_name(si.tty_nr, (char *)tail + off, HADES_TTY_MAX);
			if (l > 0 && l < HADES_TTY_MAX) {
				e->tty_len = (uint16_t)l;
				off += (size_t)l;
			}
		}
		struct stat_info ps;
		if (si.ppid && read_stat(si.ppid, &ps) == 0)
			e->parent_start_ns = ticks_to_ns(c, ps.start_ticks);
		else if (si.ppid)
			e->hdr.missing |= HADES_M_PARENT;
	} else {
		e->hdr.missing |= HADES_M_COMM | HADES_M_PARENT | HADES_M_PGID_SID | HADES_M_START |
				  HADES_M_TTY;
	}

	char cg[HADES_CGROUP_PATH_MAX];
	n = read_cgroup_path(tgid, cg, sizeof(cg));
	if (n > 0) {
		memcpy(tail + off, cg, (size_t)n);
		e->cgroup_len = (uint16_t)n;
		off += (size_t)n;
		e->cgroup_id = cgroup_id_of(c, cg, (size_t)n);
		if (!e->cgroup_id)
			e->hdr.missing |= HADES_M_CGROUP;
	} else {
		e->hdr.missing |= HADES_M_CGROUP;
	}
	if (cgroup_dropped(c, e->cgroup_id)) {
		k->filtered++;
		return 0;
	}

	struct status_info st;
	if (superseded) {
		/* marked missing above: a setuid program executed since would give its credentials */
	} else if (read_status(tgid, &st) == 0) {
		e->uid = st.uid[0], e->euid = st.uid[1], e->suid = st.uid[2], e->fsuid = st.uid[3];
		e->gid = st.gid[0], e->egid = st.gid[1], e->sgid = st.gid[2], e->fsgid = st.gid[3];
		e->cap_effective = st.cap_eff;
		if (!st.have_caps)
			e->hdr.missing |= HADES_M_CAPS;
	} else {
		e->hdr.missing |= HADES_M_CREDS | HADES_M_CAPS;
	}
	snprintf(path, sizeof(path), "/proc/%u/loginuid", tgid);
	int r1 = read_u32_file(path, &e->loginuid);
	snprintf(path, sizeof(path), "/proc/%u/sessionid", tgid);
	int r2 = read_u32_file(path, &e->audit_session);
	if (r1 || r2) {
		e->loginuid = e->audit_session = 0xffffffff;
		e->hdr.missing |= HADES_M_LOGINUID;
	}
	if (read_ns(tgid, "pid", &e->pid_ns) || read_ns(tgid, "mnt", &e->mnt_ns))
		e->hdr.missing |= HADES_M_NS;
	for (int fd = 0; fd < 3; fd++)
		if (fd_info(tgid, fd, &e->fds[fd]))
			e->hdr.missing |= HADES_M_FDS;
	/* a regular file on standard input: its path, between cgroup_path and argv; one deleted
	 * since it was opened flagged, without the " (deleted)" of the link (as eBPF) */
	if (e->fds[0].kind == HADES_FD_FILE) {
		char in[HADES_PATH_MAX];
		struct stat is;
		snprintf(path, sizeof(path), "/proc/%u/fd/0", tgid);
		ssize_t l = read_link(path, in, sizeof(in));
		if (l > 0 && l < (ssize_t)sizeof(in) && in[0] == '/' && stat(path, &is) == 0 && is.st_ino == e->fds[0].inode) {
			l = (ssize_t)without_deleted(tgid, in, (size_t)l, &is);
			if (is.st_nlink == 0)
				e->hdr.flags |= HADES_F_STDIN_DELETED;
			memcpy(tail + off, in, (size_t)l);
			e->stdin_path_len = (uint16_t)l;
			off += (size_t)l;
		}
	}

	/* argv last, as in the eBPF layout; read one byte more to detect a cut */
	snprintf(path, sizeof(path), "/proc/%u/cmdline", tgid);
	int fd = superseded ? -1 : open(path, O_RDONLY | O_CLOEXEC);
	uint64_t total = 0;
	size_t got = 0;
	uint32_t argc_cut = 0; /* NULs (argument ends) in the bytes read past argv_max */
	if (fd >= 0) {
		uint8_t *dst = tail + off;
		char discard[4096];
		for (;;) {
			ssize_t r;
			if (got < c->cfg->argv_max)
				r = read(fd, dst + got, c->cfg->argv_max - got);
			else
				r = read(fd, discard, sizeof(discard));
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			if (got < c->cfg->argv_max)
				got += (size_t)r;
			else
				for (const char *z = discard; (z = memchr(z, 0, (size_t)(discard + r - z))); z++)
					argc_cut++;
			total += (uint64_t)r;
		}
		close(fd);
	}
	/* What was queued meanwhile: a later exec of this process means the reads above may have
	 * seen its program. So does an empty argument area of a process still alive: it is in the
	 * middle of its next exec, whose message the kernel sends only once the new program is in
	 * place (exe and name switched already). Nothing of the program is kept then (the tail is
	 * exe, cwd, tty, cgroup, argv: argv is cut off, exe moved out). */
	bool mid_exec = !superseded && fd >= 0 && total == 0 && !proc_exited(tgid);
	if (!superseded && (mid_exec || (q_fill(c), q_later_exec(tgid)))) {
		got = 0;
		total = 0;
		memmove(tail, tail + e->exe_len, off - e->exe_len);
		off -= e->exe_len;
		e->exe_len = 0;
		memset(e->comm, 0, sizeof(e->comm));
		e->uid = e->euid = e->suid = e->fsuid = e->gid = e->egid = e->sgid = e->fsgid = 0;
		e->cap_effective = 0;
		e->exe_ino = e->exe_size = e->exe_mtime_sec = e->exe_ctime_sec = 0;
		e->exe_mtime_nsec = e->exe_ctime_nsec = e->exe_dev = 0;
		e->hdr.flags &= ~(uint32_t)(HADES_F_EXE_DELETED | HADES_F_EXE_MEMFD | HADES_F_EXE_TMPFS | HADES_F_EXE_SETUID_ROOT);
		e->hdr.missing |= PROGRAM_MISSING;
	} else if (!superseded && !(e->hdr.missing & HADES_M_COMM) && q_later_comm(tgid)) {
		/* the process renamed itself since its exec (queued above): the name read from /proc
		 * may already be the new one, which the PROC_RENAME record would then lose */
		memset(e->comm, 0, sizeof(e->comm));
		e->hdr.missing |= HADES_M_COMM;
	}
	if (total == 0) {
		/* zombie or already gone: the kernel returns an empty cmdline */
		e->hdr.missing |= HADES_M_ARGV;
	}
	if (total > got) {
		/* the true count (arguments are NUL-terminated): only for a cut argv, which paid the
		 * reads of the rest already; otherwise the agent counts what it has */
		e->hdr.flags |= HADES_F_ARGV_TRUNCATED;
		e->argc = argc_cut;
		for (const uint8_t *z = tail + off; (z = memchr(z, 0, (size_t)(tail + off + got - z))); z++)
			e->argc++;
	}
	e->argv_len = (uint32_t)got;
	e->argv_orig_len = total > 0xffffffffULL ? 0xffffffffu : (uint32_t)total;
	off += got;

	size_t size = (sizeof(*e) + off + 7) & ~(size_t)7;
	memset(c->rec + sizeof(*e) + off, 0, size - sizeof(*e) - off);
	e->hdr.size = (uint32_t)size;

	/* remember start and comm for the exit record */
	struct proc_entry *pe = proc_upsert(&c->procs, tgid);
	if (pe) {
		pe->muted = false;
		if (!(e->hdr.missing & HADES_M_START))
			pe->start_ns = e->start_ns;
		if (!(e->hdr.missing & HADES_M_COMM))
			memcpy(pe->comm, e->comm, sizeof(pe->comm));
		else
			pe->comm[0] = 0; /* the name before the exec is not this program's: the exit says missing */
		pe->ppid = e->ppid;
	}
	if (e->hdr.flags & HADES_F_ARGV_TRUNCATED)
		k->truncated++;
	if (e->hdr.missing & ~(uint32_t)HADES_M_FILENAME)
		k->read_errors++;
	k->sent++;
	return out_record(e, (uint32_t)size);
}

static int exit_swept(struct cnproc *c, uint32_t tgid, uint64_t ktime);

static int on_fork(struct cnproc *c, uint64_t ktime, const struct fork_proc_event *f)
{
	struct hades_hook_counters *k = &c->counters[HADES_HOOK_FORK];
	struct hades_fork r;
	struct stat_info si;
	struct status_info st;
	uint32_t ptgid = (uint32_t)f->parent_tgid, ctgid = (uint32_t)f->child_tgid;

	if (f->child_pid != f->child_tgid) {
		/* a new thread: counted for its process's exit (on_exit_ev), whether or not fork is requested */
		struct proc_entry *tpe = proc_find(&c->procs, ctgid);
		if (tpe)
			tpe->threads++;
		if (hook_requested(c->cfg, HADES_HOOK_FORK)) {
			k->seen++;
			k->ignored++;
		}
		return 0;
	}
	if (!hook_requested(c->cfg, HADES_HOOK_FORK))
		return 0;
	k->seen++;
	if (c->disabled[HADES_HOOK_FORK]) {
		k->disabled++;
		return 0;
	}
	/* copy the parent's entry: inserting the child may move the table */
	struct proc_entry pcopy = { 0 }, *pe = proc_find(&c->procs, ptgid), *parent = NULL;
	if (pe) {
		pcopy = *pe;
		parent = &pcopy;
	}
	struct proc_entry *child = proc_find(&c->procs, ctgid);
	if (child && child->exit_deferred) {
		/* its pid is a new process's: the one that had it has ended, its last EXIT message lost */
		int err = exit_swept(c, ctgid, ktime);
		if (err)
			return err;
	}
	child = proc_upsert(&c->procs, ctgid);
	if (child) {
		threads_reset(c, child, true);
		child->muted = parent && parent->muted;
		child->ppid = ptgid;
		child->rename_start_ns = child->rename_window_ns = 0;
		child->rename_sent = child->rename_unreported = 0;
		if (parent)
			memcpy(child->comm, parent->comm, sizeof(child->comm));
	}
	if (pid_denied(c, ptgid) || (parent && parent->muted)) {
		k->filtered++;
		return 0;
	}
	memset(&r, 0, sizeof(r));
	init_header(&r.hdr, HADES_KIND_FORK, ktime, ptgid, (uint32_t)f->parent_pid);
	r.hdr.size = sizeof(r);
	r.child_pid = ctgid;
	r.ppid = ptgid;
	if (read_stat(ctgid, &si) == 0) {
		r.child_start_ns = ticks_to_ns(c, si.start_ticks);
		memcpy(r.comm, si.comm, sizeof(r.comm));
		r.ppid = si.ppid;
		if (child) {
			child->start_ns = r.child_start_ns;
			memcpy(child->comm, si.comm, sizeof(child->comm));
		}
	} else {
		r.hdr.missing |= HADES_M_START | HADES_M_COMM;
		if (parent)
			memcpy(r.comm, parent->comm, sizeof(r.comm));
	}
	if (parent && parent->start_ns)
		r.parent_start_ns = parent->start_ns;
	else if (read_stat(ptgid, &si) == 0)
		r.parent_start_ns = ticks_to_ns(c, si.start_ticks);
	else
		r.hdr.missing |= HADES_M_PARENT;
	if (read_status(ctgid, &st) == 0) {
		/* effective ids (Uid:/Gid: lines: real, effective, saved, fs) */
		r.uid = st.uid[1];
		r.gid = st.gid[1];
	} else {
		r.hdr.missing |= HADES_M_CREDS;
	}
	/* the cgroup costs two more syscalls per fork: only when filtering needs it */
	if (cgroup_filters_active(c)) {
		r.cgroup_id = cgroup_of_pid(c, ctgid);
		if (cgroup_dropped(c, r.cgroup_id)) {
			k->filtered++;
			return 0;
		}
	} else {
		r.hdr.missing |= HADES_M_CGROUP;
	}
	/* the cgroup left out on purpose is not a read error */
	if (r.hdr.missing & ~(uint32_t)HADES_M_CGROUP)
		k->read_errors++;
	k->sent++;
	return out_record(&r, sizeof(r));
}

static int send_rename(struct cnproc *c, uint64_t ktime, uint32_t tgid, uint32_t tid,
		       const struct proc_entry *pe, const char oldc[16], const char newc[16],
		       uint32_t unreported, uint32_t flags);
static int64_t clock_ns(clockid_t id);
static int rename_catch_up_one(struct cnproc *c, struct proc_entry *pe, const struct proc_entry *ctx);

/* The EXIT record of process tgid, whose thread tid exited last at ktime with code; its entry is
 * removed. missing: bits to add (HADES_M_EXIT_CODE when that thread's EXIT message never came). */
static int send_exit(struct cnproc *c, uint64_t ktime, uint32_t tgid, uint32_t tid, uint32_t code, uint32_t ppid,
		     uint32_t missing)
{
	struct hades_hook_counters *k = &c->counters[HADES_HOOK_EXIT];
	struct hades_exit r;
	struct proc_entry *pe = proc_find(&c->procs, tgid);
	struct proc_entry copy = { 0 };
	if (pe) {
		copy = *pe;
		defer_cancel(c, pe);
		proc_remove(&c->procs, tgid);
		/* renames over the bound no record carried: their record comes before the exit */
		if (copy.rename_unreported && copy.rename_start_ns == copy.start_ns) {
			int err = rename_catch_up_one(c, &copy, &copy);
			if (err)
				return err;
		}
	}
	/* unrequested: the removal above still runs, it bounds the table that
	 * exec and fork fill */
	if (!hook_requested(c->cfg, HADES_HOOK_EXIT))
		return 0;
	if (c->disabled[HADES_HOOK_EXIT]) {
		k->disabled++;
		return 0;
	}
	if (pid_denied(c, tgid) || copy.muted) {
		k->filtered++;
		return 0;
	}
	if (cgroup_filters_active(c) && c->cg_allow_only) {
		/* the process is gone: its cgroup cannot be checked any more */
		k->filtered++;
		return 0;
	}
	memset(&r, 0, sizeof(r));
	init_header(&r.hdr, HADES_KIND_EXIT, ktime, tgid, tid);
	r.hdr.size = sizeof(r);
	r.hdr.missing = missing;
	r.exit_code = code;
	r.ppid = ppid;
	if (pe) {
		r.start_ns = copy.start_ns;
		memcpy(r.comm, copy.comm, sizeof(r.comm));
	}
	if (!pe || !copy.start_ns)
		r.hdr.missing |= HADES_M_START;
	if (!pe || !copy.comm[0])
		r.hdr.missing |= HADES_M_COMM;
	if (r.hdr.missing)
		k->read_errors++;
	k->sent++;
	return out_record(&r, sizeof(r));
}

/* The exit of a deferred process whose last thread's EXIT message never came (lost, or its pid
 * already another process's): sent at ktime with the latest exit seen, its code marked missing. */
static int exit_swept(struct cnproc *c, uint32_t tgid, uint64_t ktime)
{
	struct proc_entry *pe = proc_find(&c->procs, tgid);
	if (!pe || !pe->exit_deferred)
		return 0;
	c->deferred_swept++;
	return send_exit(c, ktime, tgid, pe->exit_tid ? pe->exit_tid : tgid, 0, pe->exit_ppid, HADES_M_EXIT_CODE);
}

enum group_state { GROUP_ENDED, GROUP_LIVES, GROUP_REPLACED };

/*
 * Whether process tgid (entry pe, may be NULL) has ended, after an EXIT message of its leader or
 * of a thread: ENDED, LIVES (other threads run on), REPLACED (an exec from another thread ended
 * the leader, de_thread: the process lives on under its pid). An exact thread count answers alone
 * when trust_count. Otherwise, inside cn_pump (queued), a later EXEC of tgid queued means
 * REPLACED and a later EXIT of one of its threads LIVES (that one's message decides). Then
 * /proc/TGID/stat: gone, or another process's (start time), is ENDED; a zombie leader with other
 * threads LIVES, alone ENDED; a task that has not exited is the leader's successor after the
 * exec (de_thread gives it the leader's pid and start time), REPLACED.
 */
static enum group_state group_state(struct cnproc *c, const struct proc_entry *pe, uint32_t tgid, bool queued,
				    bool trust_count)
{
	if (trust_count && pe && threads_exact(c, pe))
		return pe->threads ? GROUP_LIVES : GROUP_ENDED;
	if (queued) {
		q_fill(c);
		if (q_later_exec(tgid))
			return GROUP_REPLACED;
		if (q_later_exit(tgid))
			return GROUP_LIVES;
	}
	struct stat_info si;
	if (read_stat(tgid, &si) || (pe && pe->start_ns && ticks_to_ns(c, si.start_ticks) != pe->start_ns))
		return GROUP_ENDED;
	if (si.state != 'Z' && si.state != 'X')
		return GROUP_REPLACED;
	return si.num_threads > 1 ? GROUP_LIVES : GROUP_ENDED;
}

/* Notes an exit of one of pe's threads (the leader's included): the process's, if it is the last. */
static void note_thread_exit(struct proc_entry *pe, uint64_t ktime, const struct exit_proc_event *x)
{
	pe->exit_ktime = ktime;
	pe->exit_code = x->exit_code;
	pe->exit_tid = (uint32_t)x->process_pid;
	pe->exit_ppid = (uint32_t)x->parent_tgid;
}

static void defer_exit(struct cnproc *c, struct proc_entry *pe)
{
	if (!pe->exit_deferred) {
		pe->exit_deferred = true;
		c->deferred++;
	}
	pe->sweep_wait = pe->sweep_every = 1;
	pe->sweep_ended = 0;
}

/*
 * cn_proc reports the exit of every thread: the process's exit is its last thread's (as eBPF's
 * signal->live), with that thread's exit code. The leader's exit usually is it; when other
 * threads live on (pthread_exit() in main; the threads of an exit_group() whose messages come
 * after the leader's) the exit is deferred until the last of them, and when an exec from another
 * thread ended the leader (de_thread) no exit is sent: the process lives on, its EXEC follows.
 * Threads are counted from the FORK and EXIT messages of threads while that count is exact
 * (group_state); at most DEFER_MAX exits wait, the tick (exit_sweep) ends those whose last
 * message was lost.
 */
static int on_exit_ev(struct cnproc *c, uint64_t ktime, const struct exit_proc_event *x)
{
	struct hades_hook_counters *k = &c->counters[HADES_HOOK_EXIT];
	uint32_t tgid = (uint32_t)x->process_tgid, tid = (uint32_t)x->process_pid;
	bool requested = hook_requested(c->cfg, HADES_HOOK_EXIT);

	if (requested)
		k->seen++;
	struct proc_entry *pe = proc_find(&c->procs, tgid);
	if (pe && tid != tgid) {
		if (pe->threads)
			pe->threads--;
		else
			pe->counted = false; /* a thread it never counted */
	}
	enum group_state st;
	if (pe && pe->exit_deferred) {
		/* the leader is gone: this thread may be the last */
		note_thread_exit(pe, ktime, x);
		st = group_state(c, pe, tgid, true, true);
		if (st == GROUP_REPLACED)
			defer_cancel(c, pe);
	} else if (tid != tgid) {
		st = GROUP_LIVES; /* a thread of a process whose leader lives */
	} else {
		st = group_state(c, pe, tgid, true, true);
		if (st == GROUP_LIVES) {
			if (c->deferred < DEFER_MAX && (pe || (pe = proc_upsert(&c->procs, tgid)))) {
				note_thread_exit(pe, ktime, x);
				defer_exit(c, pe);
			} else {
				/* no room: reported now, at the leader's exit, as a process exit */
				c->deferred_full++;
				st = GROUP_ENDED;
			}
		}
	}
	if (st != GROUP_ENDED) {
		if (requested)
			k->ignored++;
		return 0;
	}
	return send_exit(c, ktime, tgid, tid, x->exit_code, (uint32_t)x->parent_tgid, 0);
}

/*
 * On the tick: the deferred exits, checked in /proc (each at most once a tick, less often while
 * its threads live on: 1, 2, 4 .. SWEEP_EVERY_MAX ticks). A process found ended on two checks
 * in a row (a second apart, time for its last EXIT message to come), is sent (exit_swept); one
 * found replaced by an exec's successor lives on, its deferred exit dropped.
 */
static int exit_sweep(struct cnproc *c)
{
	uint32_t ended[64];
	size_t n = 0;
	if (!c->deferred)
		return 0;
	for (size_t i = 0; i < c->procs.cap; i++) {
		struct proc_entry *pe = &c->procs.slots[i];
		if (!pe->tgid || !pe->exit_deferred)
			continue;
		if (pe->sweep_wait > 1) {
			pe->sweep_wait--;
			continue;
		}
		switch (group_state(c, pe, pe->tgid, false, false)) {
		case GROUP_REPLACED:
			defer_cancel(c, pe);
			break;
		case GROUP_LIVES:
			pe->sweep_ended = 0;
			if (pe->sweep_every < SWEEP_EVERY_MAX)
				pe->sweep_every *= 2;
			pe->sweep_wait = pe->sweep_every;
			break;
		case GROUP_ENDED:
			pe->sweep_wait = 1;
			if (++pe->sweep_ended >= 2 && n < sizeof(ended) / sizeof(ended[0]))
				ended[n++] = pe->tgid;
			break;
		}
	}
	uint64_t now = (uint64_t)clock_ns(CLOCK_BOOTTIME);
	for (size_t i = 0; i < n; i++) {
		int err = exit_swept(c, ended[i], now);
		if (err)
			return err;
	}
	return 0;
}

/*
 * PROC_RENAME from the connector's COMM message (prctl(PR_SET_NAME), writes to /proc/PID/comm
 * and /proc/PID/task/TID/comm; exec's own rename sends none), with what the eBPF hook leaves out
 * (PROTOCOL.md 2.16): other threads' names, the same name again, filters, the per-process bound.
 * The message carries the new name only: the old one is the name this backend last saw (exec,
 * fork, the previous COMM), missing when it has none. The message does not say which thread
 * made the change either: tid is the renamed thread (the kernel allows it only within the
 * process). Runs whether or not task_rename is requested, since the name kept here is the one
 * the EXIT record gives.
 */
static int on_comm(struct cnproc *c, uint64_t ktime, const struct comm_proc_event *cm)
{
	struct hades_hook_counters *k = &c->counters[HADES_HOOK_TASK_RENAME];
	bool requested = hook_requested(c->cfg, HADES_HOOK_TASK_RENAME);
	uint32_t tgid = (uint32_t)cm->process_tgid, tid = (uint32_t)cm->process_pid;
	char oldc[16] = { 0 }, newc[16] = { 0 };

	if (requested)
		k->seen++;
	if (tid != tgid) {
		if (requested)
			k->ignored++;
		return 0;
	}
	memcpy(newc, cm->comm, strnlen(cm->comm, 15));
	struct proc_entry *pe = proc_find(&c->procs, tgid);
	if (pe) {
		memcpy(oldc, pe->comm, sizeof(oldc));
		memcpy(pe->comm, newc, sizeof(pe->comm));
	}
	if (!requested)
		return 0;
	if (c->disabled[HADES_HOOK_TASK_RENAME]) {
		k->disabled++;
		return 0;
	}
	if (oldc[0] && !memcmp(oldc, newc, sizeof(oldc))) {
		k->ignored++; /* the same name again */
		return 0;
	}
	if (pid_denied(c, tgid) || (pe && pe->muted)) {
		k->filtered++;
		return 0;
	}
	/* the bound, before any /proc read: a process renaming itself in a loop costs a lookup */
	uint32_t unreported = 0;
	if (pe) {
		if (pe->rename_start_ns != pe->start_ns || ktime - pe->rename_window_ns >= HADES_RENAME_WINDOW_NS) {
			if (pe->rename_start_ns != pe->start_ns)
				pe->rename_unreported = 0;
			pe->rename_start_ns = pe->start_ns;
			pe->rename_window_ns = ktime;
			pe->rename_sent = 0;
		}
		if (pe->rename_sent >= HADES_RENAME_BURST) {
			if (!pe->rename_unreported)
				memcpy(pe->rename_old, oldc, sizeof(oldc));
			pe->rename_unreported++;
			pe->rename_last_ns = ktime;
			memcpy(pe->rename_last, newc, sizeof(newc));
			k->dropped_rate_limit++;
			return 0;
		}
		pe->rename_sent++;
		unreported = pe->rename_unreported;
		pe->rename_unreported = 0;
	}
	return send_rename(c, ktime, tgid, tid, pe, oldc, newc, unreported, 0);
}

/*
 * The PROC_RENAME record of tgid's rename from oldc to newc, with the process's context from pe
 * (may be NULL) and /proc. flags: 0, or HADES_F_RENAME_CATCH_UP (rename_catch_up).
 */
static int send_rename(struct cnproc *c, uint64_t ktime, uint32_t tgid, uint32_t tid,
		       const struct proc_entry *pe, const char oldc[16], const char newc[16],
		       uint32_t unreported, uint32_t flags)
{
	struct hades_hook_counters *k = &c->counters[HADES_HOOK_TASK_RENAME];
	struct hades_rename r;
	memset(&r, 0, sizeof(r));
	init_header(&r.hdr, HADES_KIND_PROC_RENAME, ktime, tgid, tid);
	r.hdr.flags |= flags;
	r.hdr.size = sizeof(r);
	if (cgroup_filters_active(c)) {
		r.proc.cgroup_id = cgroup_of_pid(c, tgid);
		if (cgroup_dropped(c, r.proc.cgroup_id)) {
			k->filtered++;
			return 0;
		}
	} else {
		r.hdr.missing |= HADES_M_CGROUP;
	}
	struct stat_info si;
	if (pe && pe->start_ns) {
		r.proc.start_ns = pe->start_ns;
		r.proc.ppid = pe->ppid;
	} else if (read_stat(tgid, &si) == 0) {
		r.proc.start_ns = ticks_to_ns(c, si.start_ticks);
		r.proc.ppid = si.ppid;
	} else {
		r.hdr.missing |= HADES_M_START | HADES_M_PARENT;
	}
	struct status_info st;
	if (read_status(tgid, &st) == 0) {
		r.proc.uid = st.uid[0], r.proc.euid = st.uid[1];
		r.proc.gid = st.gid[0], r.proc.egid = st.gid[1];
	} else {
		r.hdr.missing |= HADES_M_CREDS;
	}
	char path[48];
	snprintf(path, sizeof(path), "/proc/%u/loginuid", tgid);
	if (read_u32_file(path, &r.proc.loginuid)) {
		r.proc.loginuid = 0xffffffff;
		r.hdr.missing |= HADES_M_LOGINUID;
	}
	if (!oldc[0])
		r.hdr.missing |= HADES_M_COMM;
	memcpy(r.proc.comm, oldc, 16);
	memcpy(r.old_comm, oldc, 16);
	memcpy(r.new_comm, newc, 16);
	r.target_tid = tid;
	r.unreported = unreported;
	if (r.hdr.missing & ~(uint32_t)HADES_M_CGROUP)
		k->read_errors++;
	if (flags & HADES_F_RENAME_CATCH_UP)
		c->rename_catch_ups++;
	else
		k->sent++;
	return out_record(&r, sizeof(r));
}

/* The catch-up record of pe's renames over the bound (PROTOCOL.md 2.16): the newest one's, standing
 * for all of them. */
static int rename_catch_up_one(struct cnproc *c, struct proc_entry *pe, const struct proc_entry *ctx)
{
	uint32_t n = pe->rename_unreported;
	pe->rename_unreported = 0;
	return send_rename(c, pe->rename_last_ns, pe->tgid, pe->tgid, ctx, pe->rename_old, pe->rename_last, n,
			   HADES_F_RENAME_CATCH_UP);
}

/*
 * On the timer, only when the hook's dropped_rate_limit moved since the last scan (or that scan
 * left some whose window had not passed): a process that stopped renaming after renames over
 * the bound gets their catch-up record once its window has passed, as on eBPF. A process that
 * exits first gets it before its EXIT record (on_exit_ev).
 */
static int rename_catch_up(struct cnproc *c)
{
	uint64_t dropped = c->counters[HADES_HOOK_TASK_RENAME].dropped_rate_limit;
	if (dropped == c->rename_dropped_seen && !c->rename_pending)
		return 0;
	c->rename_dropped_seen = dropped;
	c->rename_pending = false;
	uint64_t now = (uint64_t)clock_ns(CLOCK_BOOTTIME);
	for (size_t i = 0; i < c->procs.cap; i++) {
		struct proc_entry *pe = &c->procs.slots[i];
		if (!pe->tgid || !pe->rename_unreported || pe->rename_start_ns != pe->start_ns)
			continue;
		if (now - pe->rename_window_ns < HADES_RENAME_WINDOW_NS) {
			c->rename_pending = true;
			continue;
		}
		int err = rename_catch_up_one(c, pe, pe);
		if (err)
			return err;
	}
	return 0;
}

/* ---------- backend plumbing ---------- */

static int64_t clock_ns(clockid_t id)
{
	struct timespec t;
	clock_gettime(id, &t);
	return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int handle_msg(struct cnproc *c, const struct cn_msg *cn, size_t len, int64_t mono_to_boot, bool superseded)
{
	if (len < sizeof(*cn) + sizeof(struct proc_event) ||
	    cn->id.idx != CN_IDX_PROC || cn->id.val != CN_VAL_PROC)
		return 0;
	const struct proc_event *ev = (const void *)cn->data;
	/* per-CPU sequence numbers count every event, so a jump is a loss */
	if (ev->cpu < MAX_CPUS_TRACKED) {
		uint64_t next = c->last_seq[ev->cpu]; /* last seq + 1; 0 = none yet */
		if (next && cn->seq > next - 1 && cn->seq != (uint32_t)next)
			c->seq_gaps += cn->seq - (uint32_t)next;
		c->last_seq[ev->cpu] = (uint64_t)cn->seq + 1;
	}
	uint64_t ktime = (uint64_t)((int64_t)ev->timestamp_ns + mono_to_boot);
	switch (ev->what) {
	case PROC_EVENT_EXEC:
		return on_exec(c, ktime, (uint32_t)ev->event_data.exec.process_pid,
			       (uint32_t)ev->event_data.exec.process_tgid, superseded);
	case PROC_EVENT_FORK:
		return on_fork(c, ktime, &ev->event_data.fork);
	case PROC_EVENT_EXIT:
		return on_exit_ev(c, ktime, &ev->event_data.exit);
	case PROC_EVENT_COMM:
		return on_comm(c, ktime, &ev->event_data.comm);
	default:
		return 0;
	}
}

static int cn_fd(struct backend *be)
{
	struct cnproc *c = be->ctx;
	return c->sock;
}

/*
 * Reads up to LOOKAHEAD messages, then handles them in order (q_fill, q_later_exec). Messages
 * already waiting are read first, which costs them a recv each (about a microsecond), not a wait.
 */
static int cn_pump(struct backend *be)
{
	struct cnproc *c = be->ctx;
	/* cn_proc stamps events with CLOCK_MONOTONIC; records use CLOCK_BOOTTIME */
	int64_t mono_to_boot = clock_ns(CLOCK_BOOTTIME) - clock_ns(CLOCK_MONOTONIC);

	for (int budget = 0; budget < 4096; budget += LOOKAHEAD) {
		q_n = 0;
		bool more = q_fill(c);
		/* on_exec may queue more while a message is handled: q_n grows */
		for (q_cur = 0; q_cur < q_n; q_cur++) {
			uint32_t exec_tgid = q_exec_tgid(q_cur);
			int err = handle_msg(c, (const void *)q_msgs[q_cur], q_lens[q_cur], mono_to_boot, exec_tgid != 0 && q_later_exec(exec_tgid));
			if (err) {
				q_n = 0;
				return err;
			}
		}
		q_n = 0;
		if (!more)
			return 0;
	}
	return 0;
}

static int cn_counters(struct backend *be, struct hades_hook_counters *out)
{
	struct cnproc *c = be->ctx;
	memcpy(out, c->counters, sizeof(c->counters));
	return 0;
}

static void cn_loader_stats(struct backend *be, struct jbuf *j)
{
	struct cnproc *c = be->ctx;
	jb_printf(j, ",\"lost_netlink\":%llu,\"netlink_enobufs\":%llu,\"netlink_recv_errors\":%llu,\"tracked_processes\":%zu"
		  ",\"rename_catch_ups\":%llu,\"deferred_exits\":%zu,\"deferred_exits_full\":%llu,\"deferred_exits_swept\":%llu",
		  (unsigned long long)c->seq_gaps, (unsigned long long)c->enobufs,
		  (unsigned long long)c->recv_errors, c->procs.used, (unsigned long long)c->rename_catch_ups,
		  c->deferred, (unsigned long long)c->deferred_full, (unsigned long long)c->deferred_swept);
}

static int cn_tick(struct backend *be)
{
	int err = exit_sweep(be->ctx);
	return err ? err : rename_catch_up(be->ctx);
}

static int cn_filter(struct backend *be, uint8_t op, uint8_t target, const uint8_t *val,
		     uint32_t len, const char **why)
{
	struct cnproc *c = be->ctx;

	switch (target) {
	case HADES_FILTER_PID_DENY: {
		if (op == HADES_FILTER_CLEAR) {
			/* the first n_exclude_pids entries are built in and stay */
			c->n_deny_pids = c->cfg->n_exclude_pids;
			return 0;
		}
		uint32_t pid;
		if (len != 4) {
			*why = "pid value must be 4 bytes";
			return -EINVAL;
		}
		memcpy(&pid, val, 4);
		if (op == HADES_FILTER_ADD) {
			if (pid_denied(c, pid))
				return 0;
			uint32_t *p = realloc(c->deny_pids, (c->n_deny_pids + 1) * sizeof(*p));
			if (!p)
				return -ENOMEM;
			c->deny_pids = p;
			p[c->n_deny_pids++] = pid;
			return 0;
		}
		if (op == HADES_FILTER_DEL) {
			for (size_t i = c->cfg->n_exclude_pids; i < c->n_deny_pids; i++)
				if (c->deny_pids[i] == pid)
					c->deny_pids[i] = c->deny_pids[--c->n_deny_pids];
			return 0;
		}
		break;
	}
	case HADES_FILTER_EXE_DENY: {
		if (op == HADES_FILTER_CLEAR) {
			for (size_t i = 0; i < c->n_deny_exes; i++)
				free(c->deny_exes[i]);
			c->n_deny_exes = 0;
			return 0;
		}
		if (len == 0 || len >= HADES_EXE_KEY_LEN || memchr(val, 0, len)) {
			*why = "exe path must be 1..255 bytes without NUL";
			return -EINVAL;
		}
		if (op == HADES_FILTER_ADD) {
			if (exe_denied(c, (const char *)val, len))
				return 0;
			char *s = strndup((const char *)val, len);
			char **p = s ? realloc(c->deny_exes, (c->n_deny_exes + 1) * sizeof(*p)) : NULL;
			if (!p) {
				free(s);
				return -ENOMEM;
			}
			c->deny_exes = p;
			p[c->n_deny_exes++] = s;
			return 0;
		}
		if (op == HADES_FILTER_DEL) {
			for (size_t i = 0; i < c->n_deny_exes; i++) {
				if (strlen(c->deny_exes[i]) == len && !memcmp(c->deny_exes[i], val, len)) {
					free(c->deny_exes[i]);
					c->deny_exes[i] = c->deny_exes[--c->n_deny_exes];
					break;
				}
			}
			return 0;
		}
		break;
	}
	case HADES_FILTER_CGROUP_DENY:
	case HADES_FILTER_CGROUP_ALLOW: {
		uint8_t want = target == HADES_FILTER_CGROUP_DENY ? HADES_CGROUP_VAL_DENY : HADES_CGROUP_VAL_ALLOW;
		if (op == HADES_FILTER_CLEAR) {
			size_t w = 0;
			for (size_t i = 0; i < c->n_cg; i++) {
				if (c->cg_vals[i] != want) {
					c->cg_ids[w] = c->cg_ids[i];
					c->cg_vals[w++] = c->cg_vals[i];
				}
			}
			c->n_cg = w;
			return 0;
		}
		uint64_t id;
		if (len != 8) {
			*why = "cgroup id must be 8 bytes";
			return -EINVAL;
		}
		memcpy(&id, val, 8);
		size_t i;
		for (i = 0; i < c->n_cg && c->cg_ids[i] != id; i++)
			;
		if (op == HADES_FILTER_ADD) {
			if (i == c->n_cg) {
				uint64_t *ids = realloc(c->cg_ids, (c->n_cg + 1) * sizeof(*ids));
				if (!ids)
					return -ENOMEM;
				c->cg_ids = ids;
				uint8_t *vals = realloc(c->cg_vals, c->n_cg + 1);
				if (!vals)
					return -ENOMEM;
				c->cg_vals = vals;
				c->n_cg++;
			}
			c->cg_ids[i] = id;
			c->cg_vals[i] = want;
			return 0;
		}
		if (op == HADES_FILTER_DEL) {
			if (i < c->n_cg && c->cg_vals[i] == want) {
				c->n_cg--;
				c->cg_ids[i] = c->cg_ids[c->n_cg];
				c->cg_vals[i] = c->cg_vals[c->n_cg];
			}
			return 0;
		}
		break;
	}
	case HADES_FILTER_CGROUP_MODE: {
		uint32_t mode;
		if (op != HADES_FILTER_SET)
			break;
		if (len != 4) {
			*why = "cgroup mode must be 4 bytes";
			return -EINVAL;
		}
		memcpy(&mode, val, 4);
		if (mode > 1) {
			*why = "cgroup mode must be 0 or 1";
			return -EINVAL;
		}
		c->cg_allow_only = mode == 1;
		return 0;
	}
	default:
		*why = "unknown filter target";
		return -EINVAL;
	}
	*why = "operation not valid for this target";
	return -EINVAL;
}

static int cn_hook(struct backend *be, uint32_t hook, bool enable)
{
	struct cnproc *c = be->ctx;
	if (hook >= HADES_HOOK_COUNT)
		return -EINVAL;
	if (!hook_requested(c->cfg, (int)hook))
		return -ENOENT;
	c->disabled[hook] = !enable;
	return 0;
}

static int send_listen(int sock, enum proc_cn_mcast_op op)
{
	struct {
		struct nlmsghdr nh;
		struct cn_msg cn;
		enum proc_cn_mcast_op op;
	} __attribute__((packed)) msg;

	memset(&msg, 0, sizeof(msg));
	msg.nh.nlmsg_len = sizeof(msg);
	msg.nh.nlmsg_type = NLMSG_DONE;
	msg.nh.nlmsg_pid = (uint32_t)getpid();
	msg.cn.id.idx = CN_IDX_PROC;
	msg.cn.id.val = CN_VAL_PROC;
	msg.cn.len = sizeof(op);
	msg.op = op;
	/* the plain 4-byte op works on every kernel; newer ones also accept a
	 * filter struct, but older ones silently ignore a message of that size */
	return send(sock, &msg, sizeof(msg), 0) < 0 ? -errno : 0;
}

static void cn_stop(struct backend *be)
{
	struct cnproc *c = be->ctx;
	if (c->sock >= 0 && c->listening)
		send_listen(c->sock, PROC_CN_MCAST_IGNORE);
	c->listening = false;
}

static void cn_destroy(struct backend *be)
{
	struct cnproc *c = be->ctx;
	if (!c)
		return;
	if (c->sock >= 0)
		close(c->sock);
	for (size_t i = 0; i < c->n_deny_exes; i++)
		free(c->deny_exes[i]);
	free(c->deny_exes);
	free(c->deny_pids);
	free(c->cg_ids);
	free(c->cg_vals);
	free(c->procs.slots);
	free(c->last_seq);
	free(c->rec);
	free(c->rxbuf);
	free(c);
	be->ctx = NULL;
}

/* Seeds the process table so exits of processes started before us carry a
 * start time and comm. */
static void seed_procs(struct cnproc *c)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	if (!d)
		return;
	while ((de = readdir(d))) {
		char *end;
		unsigned long pid = strtoul(de->d_name, &end, 10);
		struct stat_info si;
		if (*end || !pid || read_stat((uint32_t)pid, &si))
			continue;
		struct proc_entry *pe = proc_upsert(&c->procs, (uint32_t)pid);
		if (!pe)
			break;
		pe->start_ns = ticks_to_ns(c, si.start_ticks);
		pe->ppid = si.ppid;
		memcpy(pe->comm, si.comm, sizeof(pe->comm));
		/* its leader exited before we started, other threads live on: its exit is the last one's */
		if (si.state == 'Z' && si.num_threads > 1 && c->deferred < DEFER_MAX) {
			pe->exit_ppid = si.ppid;
			defer_exit(c, pe);
		}
	}
	closedir(d);
}

static const char *find_cgroup2(void)
{
	static const char *const cands[] = { "/sys/fs/cgroup", "/sys/fs/cgroup/unified" };
	for (size_t i = 0; i < 2; i++) {
		struct statfs sf;
		if (statfs(cands[i], &sf) == 0 && (unsigned long)sf.f_type == CGROUP2_MAGIC)
			return cands[i];
	}
	return NULL;
}

int cnproc_backend_open(const struct config *cfg, struct backend *be, char *err, size_t errlen)
{
	double t0 = now_ms();
	struct cnproc *c = calloc(1, sizeof(*c));
	int rc;

	if (!c)
		return -ENOMEM;
	c->sock = -1;
	c->cfg = cfg;
	c->clk_tck = sysconf(_SC_CLK_TCK);
	if (c->clk_tck <= 0)
		c->clk_tck = 100;
	c->cgroot = find_cgroup2();
	c->procs.cap = 4096;
	c->procs.slots = calloc(c->procs.cap, sizeof(*c->procs.slots));
	c->last_seq = calloc(MAX_CPUS_TRACKED, sizeof(*c->last_seq));
	c->rec = malloc(REC_CAP);
	c->rxbuf = malloc(RXBUF);
	c->deny_pids = calloc(cfg->n_exclude_pids ? cfg->n_exclude_pids : 1, sizeof(*c->deny_pids));
	if (!c->procs.slots || !c->last_seq || !c->rec || !c->rxbuf || !c->deny_pids) {
		rc = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < cfg->n_exclude_pids; i++)
		c->deny_pids[i] = (uint32_t)cfg->exclude_pids[i];
	c->n_deny_pids = cfg->n_exclude_pids;

	c->sock = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_CONNECTOR);
	if (c->sock < 0) {
		rc = -errno;
		snprintf(err, errlen, "netlink socket: %s", strerror(errno));
		goto fail;
	}
	int sz = RCVBUF_BYTES;
	if (setsockopt(c->sock, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) &&
	    setsockopt(c->sock, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz)))
		LOG_ERR("cannot raise netlink receive buffer: %s\n", strerror(errno));
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = CN_IDX_PROC, .nl_pid = 0 };
	if (bind(c->sock, (struct sockaddr *)&sa, sizeof(sa))) {
		rc = -errno;
		snprintf(err, errlen, "bind netlink connector: %s", strerror(errno));
		goto fail;
	}
	bool any = false;
	for (int h = 0; h <= HADES_HOOK_EXIT; h++)
		any |= hook_requested(cfg, h);
	any |= hook_requested(cfg, HADES_HOOK_TASK_RENAME);
	/* with none of the four requested there is nothing to listen for */
	if (any) {
		seed_procs(c);
		rc = send_listen(c->sock, PROC_CN_MCAST_LISTEN);
		if (rc) {
			snprintf(err, errlen, "PROC_CN_MCAST_LISTEN: %s", strerror(-rc));
			goto fail;
		}
		c->listening = true;
	}
	for (int h = 0; h < HADES_HOOK_COUNT; h++) {
		be->hooks[h].error[0] = 0;
		be->hooks[h].attach[0] = 0;
		be->hooks[h].requested = true;
		if (!hook_requested(cfg, h)) {
			hook_status_unrequested(&be->hooks[h]);
			continue;
		}
		if (h > HADES_HOOK_EXIT && h != HADES_HOOK_TASK_RENAME) {
			/* the proc connector reports process lifecycle events and renames only */
			be->hooks[h].type = "none";
			be->hooks[h].active = false;
			snprintf(be->hooks[h].error, sizeof(be->hooks[h].error),
				 "not available with the cn_proc backend (needs eBPF syscall tracepoints)");
			continue;
		}
		be->hooks[h].type = "netlink";
		be->hooks[h].active = true;
		snprintf(be->hooks[h].attach, sizeof(be->hooks[h].attach), "proc_connector");
	}
	int got = 0;
	socklen_t gl = sizeof(got);
	getsockopt(c->sock, SOL_SOCKET, SO_RCVBUF, &got, &gl);
	be->ringbuf_bytes = (uint64_t)got; /* the socket buffer plays the ring buffer's role */
	be->name = "cnproc";
	be->ctx = c;
	be->fd = cn_fd;
	be->pump = cn_pump;
	be->counters = cn_counters;
	be->loader_stats = cn_loader_stats;
	be->tick = cn_tick;
	be->filter = cn_filter;
	be->hook = cn_hook;
	be->stop = cn_stop;
	be->destroy = cn_destroy;
	be->load_ms = now_ms() - t0;
	return 0;
fail:
	be->ctx = c;
	cn_destroy(be);
	return rc;
}
