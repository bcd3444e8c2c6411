// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Hades kernel side: process lifecycle records from the sched tracepoints.
 *
 * Each hook exists twice: a tp_btf program (preferred, BTF-typed args) and a
 * raw_tp program with the same body, used when the kernel refuses tp_btf. The
 * tp_btf one follows pointers with typed loads, the raw_tp one with CO-RE probe
 * reads (the RD macro), so one body serves both.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "wire.h"
#include "bpf_shared.h"

/* The probe-read helpers are GPL-only; MIT stays available for the rest. */
char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define S_IFMT 0170000
#define S_IFSOCK 0140000
#define S_IFLNK 0120000
#define S_IFREG 0100000
#define S_IFBLK 0060000
#define S_IFDIR 0040000
#define S_IFCHR 0020000
#define S_IFIFO 0010000
#define AF_INET 2
#define AF_INET6 10
#define TMPFS_MAGIC 0x01021994
#define RAMFS_MAGIC 0x858458f6
#define PIDTYPE_PGID 2
#define PIDTYPE_SID 3

/* Set by the loader before load. */
const volatile __u32 cfg_argv_max = 4096;

/* Runtime switches written by the loader through the mmapped .bss. */
volatile __u32 hook_disabled[HADES_HOOK_SLOTS];
volatile __u32 cgroup_allow_only;
/* sched_process_exit left out of --hooks while syscall hooks are on: the exit
 * program then only drops the in-flight syscall state of exiting threads */
volatile __u32 exit_cleanup_only;

/*
 * Scratch layout. The tail is appended at a running offset. To give the
 * verifier a provable bound, every offset is masked to TAIL_OFF_MASK before
 * use; the fixed part plus all strings before argv always fit below it
 * (384 + 3 * 4096 + 64 + 1024 < 16384), and argv (<= 32768) is written last,
 * so the record area needs 16384 + 32768 bytes plus 8 bytes of padding room.
 */
#define TAIL_OFF_MASK 16383
#define REC_AREA (16384 + HADES_ARGV_MAX_LIMIT + 8)
#define PATH_AREA_LEN 4096 /* paths are built backwards from here */
#define PATH_AREA (PATH_AREA_LEN + 256)
#define PATH_MAX_DEPTH 64
#define CGROUP_MAX_DEPTH 16

struct scratch {
	__u8 rec[REC_AREA] __attribute__((aligned(8)));
	__u8 path[PATH_AREA];
	__u8 key[HADES_EXE_KEY_LEN] __attribute__((aligned(8)));
	struct hades_lpm_key lpm; /* FILE_PREFIX / UNIX_PATH lookups */
	__u64 chain[CGROUP_MAX_DEPTH]; /* kernfs nodes, leaf first */
	/* Cursors live in map memory, not registers: values loaded from a map
	 * are unknown to the verifier, so loop states with different offsets
	 * compare equal and get pruned instead of being explored one by one. */
	__u32 off;   /* next free byte of the record tail */
	__u32 pos;   /* start of the path being built in path[] */
	__u32 len;   /* bytes of the cgroup path so far */
	__u32 depth; /* entries in chain[] */
	__u64 note_file; /* hx_file -> hx_fresh_note: the file an open gave, its path in lpm */
	/* build_path -> build_path_at: the dentry and mount, as plain numbers (a typed pointer
	 * cannot be given to a global function) */
	__u64 walk_dentry;
	__u64 walk_mnt;
};

/* Per-CPU arrays cap values at 32 KiB, so this is a plain array indexed by
 * CPU id; the loader sizes it to the number of possible CPUs. Tracepoints run
 * with preemption disabled, so one slot per CPU is never shared. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20); /* resized by the loader */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HADES_HOOK_SLOTS);
	__type(key, __u32);
	__type(value, struct hades_hook_counters);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} deny_pid SEC(".maps");

struct exe_key {
	char path[HADES_EXE_KEY_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct exe_key);
	__type(value, __u8);
} deny_exe SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u8);
} cgroup_filter SEC(".maps");

/* Processes running a denied executable. fork/exit records of these are
 * dropped too without resolving the exe path on every event. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
} muted_tgid SEC(".maps");

/* inode timestamps: timespec64 i_mtime/i_ctime until 6.5, __i_ctime in 6.6,
 * __i_mtime/__i_ctime in 6.7-6.10, i_*_sec + i_*_nsec since 6.11. */
struct inode___ts_old {
	struct timespec64 i_mtime;
	struct timespec64 i_ctime;
} __attribute__((preserve_access_index));

struct inode___ts_priv {
	struct timespec64 __i_mtime;
	struct timespec64 __i_ctime;
} __attribute__((preserve_access_index));

/* multigrain timestamps (6.13+) keep a "queried" flag in bit 31 of
 * i_ctime_nsec; nanoseconds never reach it, so masking is safe everywhere */
#define CTIME_NSEC_MASK 0x7fffffffu

/* kernfs_node.parent was renamed to __parent in 6.15. */
struct kernfs_node___old {
	struct kernfs_node___old *parent;
} __attribute__((preserve_access_index));

/*
 * A read through a chain of kernel pointers: plain loads from a typed (BTF) pointer in the
 * tp_btf programs, which the kernel guards like probe reads at a fraction of their cost (no
 * helper call per hop), probe reads elsewhere. `btf` is a constant at every call site, so each
 * program keeps one of the two. Variable offsets from a typed pointer are refused by the
 * verifier: arrays indexed at run time are read with probe reads in both.
 */
#define RD(btf, src, ...) ((btf) ? ___arrow(src, __VA_ARGS__) : BPF_CORE_READ(src, __VA_ARGS__))

#define LOAD(x) (*(volatile typeof(x) *)&(x))
#define STORE(x, v) (*(volatile typeof(x) *)&(x) = (v))

static __always_inline struct hades_hook_counters *hook_counters(__u32 hook)
{
	return bpf_map_lookup_elem(&counters, &hook);
}

static __always_inline void bump(__u64 *c)
{
	/* per-CPU value and preemption disabled: a plain add is enough */
	*c += 1;
}

/* Returns true when the event must be dropped by pid/cgroup filters. */
static __always_inline bool filtered_out(__u32 tgid)
{
	if (bpf_map_lookup_elem(&deny_pid, &tgid))
		return true;
	if (bpf_map_lookup_elem(&muted_tgid, &tgid))
		return true;
	__u64 cg = bpf_get_current_cgroup_id();
	__u8 *v = bpf_map_lookup_elem(&cgroup_filter, &cg);
	if (cgroup_allow_only)
		return !v || *v != HADES_CGROUP_VAL_ALLOW;
	return v && *v == HADES_CGROUP_VAL_DENY;
}

static __always_inline void fill_header_t(struct hades_record_header *h, __u16 kind, __u32 size,
					  struct task_struct *task, bool btf)
{
	h->kind = kind;
	h->version = HADES_RECORD_VERSION;
	h->size = size;
	h->ktime_ns = bpf_ktime_get_boot_ns();
	h->pid = RD(btf, task, tgid);
	h->tid = RD(btf, task, pid);
	h->flags = 0;
	h->missing = 0;
}

static __always_inline void fill_header(struct hades_record_header *h, __u16 kind, __u32 size,
					struct task_struct *task)
{
	fill_header_t(h, kind, size, task, false);
}

static __always_inline __u64 process_start_t(struct task_struct *task, bool btf)
{
	/* start_boottime of the group leader: what /proc/PID/stat reports */
	return RD(btf, task, group_leader, start_boottime);
}

static __always_inline __u64 process_start(struct task_struct *task)
{
	return process_start_t(task, false);
}

/*
 * Builds the path of (dentry, vfsmnt) backwards into s->path, crossing mount
 * points; on return the path is s->path[s->pos .. 4096). Returns true when the
 * walk stopped before reaching the root (depth or size limit).
 * bpf_d_path is not available to tracepoint programs, hence the walk.
 */
__noinline int build_path_at(struct scratch *s, __u64 dentry_addr, __u64 vfsmnt_addr)
{
	struct dentry *dentry = (void *)dentry_addr;
	struct vfsmount *vfsmnt = (void *)vfsmnt_addr;
	if (!s)
		return 0;
	__u64 mnt_off = bpf_core_field_offset(struct mount, mnt);
	struct mount *mnt = (void *)vfsmnt - mnt_off;
	bool done = false;

	STORE(s->pos, PATH_AREA_LEN);
	for (int i = 0; i < PATH_MAX_DEPTH; i++) {
		struct dentry *mnt_root = BPF_CORE_READ(vfsmnt, mnt_root);
		struct dentry *parent = BPF_CORE_READ(dentry, d_parent);

		if (!dentry) {
			done = true;
			break;
		}
		/* a dentry that is its own parent but not a mount root is a pseudo
		 * file (memfd, anon inode): its name is the whole path, as d_path
		 * shows it ("/memfd:NAME"); fall through to write it, then stop */
		bool pseudo = dentry == parent && dentry != mnt_root;
		if (!pseudo && (dentry == mnt_root || dentry == parent)) {
			struct mount *mp = BPF_CORE_READ(mnt, mnt_parent);

			/* a mount that is its own parent is the namespace root */
			if (dentry != mnt_root || !mp || mp == mnt) {
				done = true;
				break;
			}
			dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = mp;
			vfsmnt = (void *)mp + mnt_off;
			continue;
		}
		struct qstr q;
		if (bpf_core_read(&q, sizeof(q), &dentry->d_name))
			break;
		__u32 len = q.len;
		if (len > 255)
			len = 255;
		__u32 pos = LOAD(s->pos);
		/* keep pos >= 1 so a full path is at most 4095 bytes */
		if (pos > PATH_AREA_LEN || pos < len + 2)
			break;
		pos -= len;
		bpf_probe_read_kernel(s->path + (pos & (PATH_AREA_LEN - 1)), len & 255, q.name);
		pos -= 1;
		s->path[pos & (PATH_AREA_LEN - 1)] = '/';
		STORE(s->pos, pos);
		if (pseudo) {
			done = true;
			break;
		}
		dentry = parent;
	}
	if (LOAD(s->pos) == PATH_AREA_LEN) {
		s->path[PATH_AREA_LEN - 1] = '/';
		STORE(s->pos, PATH_AREA_LEN - 1);
	}
	return !done;
}

/*
 * build_path_at for typed pointers. The walk is a global function, verified once for each
 * program instead of once for each place a path is built (an exec builds three: its file, its
 * working directory, its standard input's): inlined, it took most of a second of the verifier
 * at each load.
 */
static __always_inline bool build_path(struct scratch *s, struct dentry *dentry,
				       struct vfsmount *vfsmnt)
{
	STORE(s->walk_dentry, (__u64)dentry);
	STORE(s->walk_mnt, (__u64)vfsmnt);
	return build_path_at(s, LOAD(s->walk_dentry), LOAD(s->walk_mnt)) != 0;
}

/* Copies the built path to the record tail at s->off; returns its length. */
static __always_inline __u16 append_path(struct scratch *s)
{
	__u32 pos = LOAD(s->pos);
	__u32 len = PATH_AREA_LEN - pos;
	__u32 off = LOAD(s->off);

	if (pos > PATH_AREA_LEN || len > PATH_AREA_LEN - 1)
		return 0;
	if (bpf_probe_read_kernel(s->rec + (off & TAIL_OFF_MASK), len & (PATH_AREA_LEN - 1),
				  s->path + (pos & (PATH_AREA_LEN - 1))))
		return 0;
	STORE(s->off, off + len);
	return len;
}

/* Looks up rec[start..start+len) in the exe deny map. */
static __always_inline bool exe_denied(struct scratch *s, __u32 start, __u32 len)
{
	if (len == 0 || len >= HADES_EXE_KEY_LEN)
		return false;
	/* keys are NUL-padded to the full width, so clear the staging key first */
	for (int i = 0; i < HADES_EXE_KEY_LEN / 8; i++)
		((__u64 *)s->key)[i] = 0;
	bpf_probe_read_kernel(s->key, len & (HADES_EXE_KEY_LEN - 1),
			      s->rec + (start & TAIL_OFF_MASK));
	return bpf_map_lookup_elem(&deny_exe, s->key) != NULL;
}

static __always_inline void fill_fd(struct hades_fd_info *fi, struct file **fdarr, __u32 max_fds,
				    int fd)
{
	struct file *f = NULL;

	if ((__u32)fd >= max_fds || bpf_probe_read_kernel(&f, sizeof(f), fdarr + fd) || !f) {
		fi->kind = HADES_FD_NONE;
		return;
	}
	struct inode *ino = BPF_CORE_READ(f, f_inode);
	if (!ino) {
		fi->kind = HADES_FD_UNKNOWN;
		return;
	}
	__u16 mode = BPF_CORE_READ(ino, i_mode);
	fi->inode = BPF_CORE_READ(ino, i_ino);
	switch (mode & S_IFMT) {
	case S_IFCHR:
	case S_IFBLK: {
		__u32 rdev = BPF_CORE_READ(ino, i_rdev);
		fi->kind = (mode & S_IFMT) == S_IFCHR ? HADES_FD_CHAR : HADES_FD_BLOCK;
		fi->rdev = rdev; /* kernel dev_t is already major << 20 | minor */
		return;
	}
	case S_IFIFO:
		fi->kind = HADES_FD_PIPE;
		return;
	case S_IFREG:
		fi->kind = HADES_FD_FILE;
		return;
	case S_IFDIR:
		fi->kind = HADES_FD_DIR;
		return;
	case S_IFSOCK:
		break;
	default:
		fi->kind = HADES_FD_OTHER;
		return;
	}
	fi->kind = HADES_FD_SOCKET;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	fi->family = family;
	fi->sock_type = BPF_CORE_READ(sk, sk_type);
	fi->protocol = BPF_CORE_READ(sk, sk_protocol);
	if (family == AF_INET || family == AF_INET6) {
		fi->local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
		fi->remote_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	}
	if (family == AF_INET) {
		__u32 la = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__u32 ra = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(fi->local_addr, &la, 4);
		__builtin_memcpy(fi->remote_addr, &ra, 4);
	} else if (family == AF_INET6) {
		bpf_core_read(fi->local_addr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(fi->remote_addr, 16, &sk->__sk_common.skc_v6_daddr);
	}
}

/* Identity of the executed file, for the agent's hash cache key: inode,
 * device, size, mtime, ctime. s_dev is already major << 20 | minor. */
static __always_inline void fill_exe_id(struct hades_exec *e, struct inode *ino, bool btf)
{
	e->exe_ino = RD(btf, ino, i_ino);
	e->exe_dev = RD(btf, ino, i_sb, s_dev);
	e->exe_size = RD(btf, ino, i_size);
	if (bpf_core_field_exists(ino->i_mtime_sec)) {
		e->exe_mtime_sec = RD(btf, ino, i_mtime_sec);
		e->exe_mtime_nsec = RD(btf, ino, i_mtime_nsec);
	} else {
		struct inode___ts_priv *p = (void *)ino;
		struct inode___ts_old *o = (void *)ino;
		struct timespec64 ts = {};
		if (bpf_core_field_exists(p->__i_mtime))
			ts = RD(btf, p, __i_mtime);
		else
			ts = RD(btf, o, i_mtime);
		e->exe_mtime_sec = ts.tv_sec;
		e->exe_mtime_nsec = ts.tv_nsec;
	}
	if (bpf_core_field_exists(ino->i_ctime_sec)) {
		e->exe_ctime_sec = RD(btf, ino, i_ctime_sec);
		e->exe_ctime_nsec = RD(btf, ino, i_ctime_nsec) & CTIME_NSEC_MASK;
	} else {
		struct inode___ts_priv *p = (void *)ino;
		struct inode___ts_old *o = (void *)ino;
		struct timespec64 ts = {};
		if (bpf_core_field_exists(p->__i_ctime))
			ts = RD(btf, p, __i_ctime);
		else
			ts = RD(btf, o, i_ctime);
		e->exe_ctime_sec = ts.tv_sec;
		e->exe_ctime_nsec = ts.tv_nsec;
	}
}

static __always_inline __u32 pid_ns_inum(struct task_struct *task)
{
	struct pid *p = BPF_CORE_READ(task, thread_pid);
	__u32 level = BPF_CORE_READ(p, level);
	struct upid up = {};

	if (!p || level > 32)
		return 0;
	/* numbers[] is a flexible array indexed by the namespace level */
	void *addr = (void *)p + bpf_core_field_offset(struct pid, numbers) +
		     level * bpf_core_type_size(struct upid);
	if (bpf_probe_read_kernel(&up, sizeof(up), addr))
		return 0;
	return BPF_CORE_READ(up.ns, ns.inum);
}

static __always_inline struct kernfs_node *kn_parent(struct kernfs_node *kn)
{
	if (bpf_core_field_exists(kn->__parent))
		return BPF_CORE_READ(kn, __parent);
	return (struct kernfs_node *)BPF_CORE_READ((struct kernfs_node___old *)kn, parent);
}

/* Appends the cgroup v2 path ("/a/b") of task at s->off; returns its length. */
static __always_inline __u16 append_cgroup(struct scratch *s, struct task_struct *task,
					   bool *truncated)
{
	struct kernfs_node *kn = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn);
	__u32 off = LOAD(s->off);

	*truncated = false;
	STORE(s->depth, 0);
	/* collect leaf..root, then write root-first so each name is read once */
	for (int i = 0; i < CGROUP_MAX_DEPTH; i++) {
		if (!kn)
			break;
		struct kernfs_node *parent = kn_parent(kn);
		if (!parent)
			break; /* the root node's name is not part of the path */
		s->chain[i] = (__u64)kn;
		STORE(s->depth, i + 1);
		kn = parent;
	}
	if (kn && kn_parent(kn))
		*truncated = true;
	__u32 depth = LOAD(s->depth);
	if (depth == 0 || depth > CGROUP_MAX_DEPTH) {
		s->rec[off & TAIL_OFF_MASK] = '/';
		STORE(s->off, off + 1);
		return 1;
	}
	STORE(s->len, 0);
	for (int i = CGROUP_MAX_DEPTH - 1; i >= 0; i--) {
		if (i >= LOAD(s->depth))
			continue;
		__u32 len = LOAD(s->len);
		if (len + 257 > HADES_CGROUP_PATH_MAX) {
			*truncated = true;
			break;
		}
		s->rec[(off + len) & TAIL_OFF_MASK] = '/';
		len++;
		struct kernfs_node *node = (void *)s->chain[i & (CGROUP_MAX_DEPTH - 1)];
		const char *name = BPF_CORE_READ(node, name);
		long n = bpf_probe_read_kernel_str(s->rec + ((off + len) & TAIL_OFF_MASK), 256, name);
		if (n > 1)
			len += n - 1; /* drop the NUL; the next byte overwrites it */
		STORE(s->len, len);
	}
	__u32 len = LOAD(s->len);
	STORE(s->off, off + len);
	return len;
}

/* kinds 4..18: syscall, socket, module and rename hooks */
#include "security.bpf.h"

static __always_inline void emit_exec(struct task_struct *task, struct linux_binprm *bprm, bool btf)
{
	struct hades_hook_counters *c = hook_counters(HADES_HOOK_EXEC);
	if (!c)
		return;
	bump(&c->seen);
	if (hook_disabled[HADES_HOOK_EXEC]) {
		bump(&c->disabled);
		return;
	}
	__u32 tgid = RD(btf, task, tgid);
	if (bpf_map_lookup_elem(&deny_pid, &tgid)) {
		bump(&c->filtered);
		return;
	}
	/* an exec replaces the image: a muted process may now run something else */
	bpf_map_delete_elem(&muted_tgid, &tgid);
	if (filtered_out(tgid)) {
		bump(&c->filtered);
		return;
	}

	__u32 zero_cpu = bpf_get_smp_processor_id();
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero_cpu);
	if (!s)
		return;
	struct hades_exec *e = (void *)s->rec;
	bool trunc;
	long n;

	/* the fixed part is rewritten field by field; clear the reused slot */
	__builtin_memset(e, 0, sizeof(*e));
	fill_header_t(&e->hdr, HADES_KIND_EXEC, 0, task, btf);
	e->hdr.version = HADES_EXEC_VERSION;
	STORE(s->off, sizeof(*e));

	/* filename as passed to execve (may be relative) */
	const char *fname = RD(btf, bprm, filename);
	n = bpf_probe_read_kernel_str(s->rec + sizeof(*e), HADES_PATH_MAX, fname);
	if (n > 0) {
		e->filename_len = n - 1;
		STORE(s->off, sizeof(*e) + ((n - 1) & (HADES_PATH_MAX - 1)));
	} else {
		e->hdr.missing |= HADES_M_FILENAME;
	}
	__u32 fname_start = sizeof(*e);
	__u32 fname_len = e->filename_len;

	/* resolved executable via mm->exe_file */
	struct file *exe = RD(btf, task, mm, exe_file);
	__u32 exe_start = LOAD(s->off);
	if (exe) {
		struct dentry *d = RD(btf, exe, f_path.dentry);
		trunc = build_path(s, d, RD(btf, exe, f_path.mnt));
		e->exe_len = append_path(s);
		if (trunc)
			e->hdr.flags |= HADES_F_EXE_TRUNCATED;
		struct inode *ino = RD(btf, exe, f_inode);
		__u64 magic = 0;
		if (ino) {
			fill_exe_id(e, ino, btf);
			if (RD(btf, ino, __i_nlink) == 0)
				e->hdr.flags |= HADES_F_EXE_DELETED;
			/* Read here, from the file that was executed: the agent cannot stat it
			 * reliably (the process may be gone, or live in another mount namespace). */
			__u16 imode = RD(btf, ino, i_mode);
			if (((imode & 04000) && RD(btf, ino, i_uid.val) == 0) ||
			    ((imode & 02000) && RD(btf, ino, i_gid.val) == 0))
				e->hdr.flags |= HADES_F_EXE_SETUID_ROOT;
			magic = RD(btf, ino, i_sb, s_magic);
		} else {
			e->hdr.missing |= HADES_M_EXE_ID;
		}
		if (magic == TMPFS_MAGIC || magic == RAMFS_MAGIC) {
			char pfx[6] = {};
			e->hdr.flags |= HADES_F_EXE_TMPFS;
			bpf_probe_read_kernel(pfx, sizeof(pfx), RD(btf, d, d_name.name));
			if (pfx[0] == 'm' && pfx[1] == 'e' && pfx[2] == 'm' && pfx[3] == 'f' &&
			    pfx[4] == 'd' && pfx[5] == ':')
				e->hdr.flags |= HADES_F_EXE_MEMFD;
		}
	} else {
		e->hdr.missing |= HADES_M_EXE | HADES_M_EXE_ID;
	}
	if (exe_denied(s, fname_start, fname_len) || exe_denied(s, exe_start, e->exe_len)) {
		__u8 one = 1;
		bpf_map_update_elem(&muted_tgid, &tgid, &one, BPF_ANY);
		bump(&c->filtered);
		return;
	}

	/* cwd */
	struct fs_struct *fs = RD(btf, task, fs);
	if (fs) {
		trunc = build_path(s, RD(btf, fs, pwd.dentry), RD(btf, fs, pwd.mnt));
		e->cwd_len = append_path(s);
		if (trunc)
			e->hdr.flags |= HADES_F_CWD_TRUNCATED;
	} else {
		e->hdr.missing |= HADES_M_CWD;
	}

	/* controlling tty */
	struct signal_struct *sig = RD(btf, task, signal);
	struct tty_struct *tty = RD(btf, sig, tty);
	if (tty) {
		__u32 off = LOAD(s->off);
		n = bpf_probe_read_kernel_str(s->rec + (off & TAIL_OFF_MASK), HADES_TTY_MAX, &tty->name);
		if (n > 1) {
			e->tty_len = n - 1;
			STORE(s->off, off + ((n - 1) & (HADES_TTY_MAX - 1)));
		}
		__u32 major = RD(btf, tty, driver, major);
		__u32 minor = RD(btf, tty, driver, minor_start) + RD(btf, tty, index);
		e->tty_dev = major << 20 | (minor & 0xfffff);
	}

	/* cgroup */
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->cgroup_len = append_cgroup(s, task, &trunc);
	if (trunc)
		e->hdr.flags |= HADES_F_CGROUP_TRUNCATED;

	/* identity and lineage */
	struct task_struct *parent = RD(btf, task, real_parent);
	e->start_ns = process_start_t(task, btf);
	e->parent_start_ns = process_start_t(parent, btf);
	e->ppid = RD(btf, parent, tgid);
	e->pgid = RD(btf, sig, pids[PIDTYPE_PGID], numbers[0].nr);
	e->sid = RD(btf, sig, pids[PIDTYPE_SID], numbers[0].nr);

	const struct cred *cr = RD(btf, task, cred);
	if (cr) {
		e->uid = RD(btf, cr, uid.val);
		e->gid = RD(btf, cr, gid.val);
		e->euid = RD(btf, cr, euid.val);
		e->egid = RD(btf, cr, egid.val);
		e->suid = RD(btf, cr, suid.val);
		e->sgid = RD(btf, cr, sgid.val);
		e->fsuid = RD(btf, cr, fsuid.val);
		e->fsgid = RD(btf, cr, fsgid.val);
		/* 8 bytes whether kernel_cap_t is u64 or u32[2] (little-endian) */
		bpf_core_read(&e->cap_effective, 8, &cr->cap_effective);
	} else {
		e->hdr.missing |= HADES_M_CREDS | HADES_M_CAPS;
	}
	if (bpf_core_field_exists(task->loginuid)) {
		e->loginuid = RD(btf, task, loginuid.val);
		e->audit_session = RD(btf, task, sessionid);
	} else {
		e->loginuid = 0xffffffff;
		e->audit_session = 0xffffffff;
		e->hdr.missing |= HADES_M_LOGINUID;
	}
	e->pid_ns = pid_ns_inum(task);
	e->mnt_ns = RD(btf, task, nsproxy, mnt_ns, ns.inum);
	bpf_get_current_comm(e->comm, sizeof(e->comm));

	/* stdin/stdout/stderr */
	struct fdtable *fdt = RD(btf, task, files, fdt);
	if (fdt) {
		struct file **fdarr = BPF_CORE_READ(fdt, fd); /* indexed below: probe reads */
		__u32 max_fds = RD(btf, fdt, max_fds);
		fill_fd(&e->fds[0], fdarr, max_fds, 0);
		fill_fd(&e->fds[1], fdarr, max_fds, 1);
		fill_fd(&e->fds[2], fdarr, max_fds, 2);
		/* a file redirected into the process (`tr < /proc/1/environ`, `nc h p < /etc/shadow`):
		 * its path, which no argument names */
		struct file *in = NULL;
		/* (only while the tail before argv keeps its bound: paths that long are left out) */
		if (e->fds[0].kind == HADES_FD_FILE && max_fds > 0 && LOAD(s->off) <= TAIL_OFF_MASK - PATH_AREA_LEN &&
		    !bpf_probe_read_kernel(&in, sizeof(in), fdarr) && in) {
			build_path(s, BPF_CORE_READ(in, f_path.dentry), BPF_CORE_READ(in, f_path.mnt));
			e->stdin_path_len = append_path(s);
			/* a file deleted since it was opened: its old path, flagged (cn_proc's /proc link
			 * says " (deleted)"; the driver reports both alike) */
			if (BPF_CORE_READ(in, f_inode, __i_nlink) == 0)
				e->hdr.flags |= HADES_F_STDIN_DELETED;
		}
	} else {
		e->hdr.missing |= HADES_M_FDS;
	}

	/* argv last: it is the only part allowed to reach past TAIL_OFF_MASK */
	__u64 arg_start = RD(btf, task, mm, arg_start);
	__u64 arg_end = RD(btf, task, mm, arg_end);
	__u32 alen = 0;
	__u32 off = LOAD(s->off) & TAIL_OFF_MASK;
	if (arg_end > arg_start) {
		__u64 full = arg_end - arg_start;
		e->argv_orig_len = full > 0xffffffffULL ? 0xffffffff : (__u32)full;
		alen = full > cfg_argv_max ? cfg_argv_max : (__u32)full;
		if (alen > HADES_ARGV_MAX_LIMIT)
			alen = HADES_ARGV_MAX_LIMIT;
		if (alen < full)
			e->hdr.flags |= HADES_F_ARGV_TRUNCATED;
		/* the new image's stack was just written by execve: it is resident */
		if (bpf_probe_read_user(s->rec + off, alen, (void *)arg_start)) {
			alen = 0;
			e->hdr.missing |= HADES_M_ARGV;
		}
	} else {
		e->hdr.missing |= HADES_M_ARGV;
	}
	e->argv_len = alen;
	/* the true count, arguments cut off included: one load of a field of the exec's own bprm */
	e->argc = (__u32)RD(btf, bprm, argc);
	off += alen;

	/* zero padding to a multiple of 8 */
	__u32 total = (off + 7) & ~7u;
	if (total > REC_AREA)
		return;
	if (off > REC_AREA - 8)
		return;
	*(__u64 *)(s->rec + off) = 0;
	e->hdr.size = total;

	if (e->hdr.flags & (HADES_F_ARGV_TRUNCATED | HADES_F_CWD_TRUNCATED | HADES_F_EXE_TRUNCATED |
			    HADES_F_CGROUP_TRUNCATED))
		bump(&c->truncated);
	if (e->hdr.missing)
		bump(&c->read_errors);
	if (bpf_ringbuf_output(&events, s->rec, total, 0))
		bump(&c->dropped_ringbuf_full);
	else
		bump(&c->sent);
}

static __always_inline void emit_fork(struct task_struct *parent, struct task_struct *child, bool btf)
{
	struct hades_hook_counters *c = hook_counters(HADES_HOOK_FORK);
	if (!c)
		return;
	bump(&c->seen);
	if (RD(btf, child, pid) != RD(btf, child, tgid)) {
		bump(&c->ignored); /* a new thread, not a new process */
		return;
	}
	if (hook_disabled[HADES_HOOK_FORK]) {
		bump(&c->disabled);
		return;
	}
	__u32 ptgid = RD(btf, parent, tgid);
	__u32 ctgid = RD(btf, child, tgid);
	if (bpf_map_lookup_elem(&muted_tgid, &ptgid)) {
		/* the child runs the same denied image until it execs */
		__u8 one = 1;
		bpf_map_update_elem(&muted_tgid, &ctgid, &one, BPF_ANY);
	}
	if (filtered_out(ptgid)) {
		bump(&c->filtered);
		return;
	}
	struct hades_fork *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		bump(&c->dropped_ringbuf_full);
		return;
	}
	fill_header_t(&r->hdr, HADES_KIND_FORK, sizeof(*r), parent, btf);
	r->child_start_ns = RD(btf, child, start_boottime);
	r->parent_start_ns = process_start_t(parent, btf);
	r->cgroup_id = bpf_get_current_cgroup_id();
	r->child_pid = ctgid;
	r->ppid = RD(btf, child, real_parent, tgid);
	/* an RCU pointer the verifier may take for possibly NULL: checked before use */
	const struct cred *cc = RD(btf, child, cred);
	if (cc) {
		/* effective ids: what the child acts as (process.user) */
		r->uid = RD(btf, cc, euid.val);
		r->gid = RD(btf, cc, egid.val);
	}
	BPF_CORE_READ_STR_INTO(&r->comm, child, comm);
	bpf_ringbuf_submit(r, 0);
	bump(&c->sent);
}

static __always_inline void emit_exit(struct task_struct *task, bool btf)
{
	/* a thread killed inside a watched syscall never reaches sys_exit:
	 * drop its in-flight state so the bounded map does not fill up */
	__u32 tid = RD(btf, task, pid);
	bpf_map_delete_elem(&inflight, &tid);
	if (exit_cleanup_only)
		return;

	struct hades_hook_counters *c = hook_counters(HADES_HOOK_EXIT);
	if (!c)
		return;
	bump(&c->seen);
	/* signal->live drops to 0 before this tracepoint when the last thread
	 * of the group exits: that is the process exit */
	if (RD(btf, task, signal, live.counter) != 0) {
		bump(&c->ignored);
		return;
	}
	if (hook_disabled[HADES_HOOK_EXIT]) {
		bump(&c->disabled);
		return;
	}
	__u32 tgid = RD(btf, task, tgid);
	bool muted = bpf_map_lookup_elem(&muted_tgid, &tgid) != NULL;
	if (muted)
		bpf_map_delete_elem(&muted_tgid, &tgid);
	if (muted || filtered_out(tgid)) {
		bump(&c->filtered);
		return;
	}
	struct hades_exit *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		bump(&c->dropped_ringbuf_full);
		return;
	}
	fill_header_t(&r->hdr, HADES_KIND_EXIT, sizeof(*r), task, btf);
	r->start_ns = process_start_t(task, btf);
	r->exit_code = RD(btf, task, exit_code);
	r->ppid = RD(btf, task, real_parent, tgid);
	BPF_CORE_READ_STR_INTO(&r->comm, task, comm);
	bpf_ringbuf_submit(r, 0);
	bump(&c->sent);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(tpbtf_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	emit_exec(p, bprm, true);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(tpbtf_fork, struct task_struct *parent, struct task_struct *child)
{
	emit_fork(parent, child, true);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(tpbtf_exit, struct task_struct *p)
{
	emit_exit(p, true);
	return 0;
}

SEC("raw_tp/sched_process_exec")
int raw_exec(struct bpf_raw_tracepoint_args *ctx)
{
	emit_exec((struct task_struct *)ctx->args[0], (struct linux_binprm *)ctx->args[2], false);
	return 0;
}

SEC("raw_tp/sched_process_fork")
int raw_fork(struct bpf_raw_tracepoint_args *ctx)
{
	emit_fork((struct task_struct *)ctx->args[0], (struct task_struct *)ctx->args[1], false);
	return 0;
}

SEC("raw_tp/sched_process_exit")
int raw_exit(struct bpf_raw_tracepoint_args *ctx)
{
	emit_exit((struct task_struct *)ctx->args[0], false);
	return 0;
}
