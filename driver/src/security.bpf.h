/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Security hooks (record kinds 4..18), included by hades.bpf.c after its
 * helpers (scratch, build_path, filters, counters).
 *
 * kprobes, fentry and LSM are unavailable on the target kernels, so these
 * are syscall-level: one raw_tp program on sys_enter and one on sys_exit,
 * each attached once for the whole machine. They look the syscall number up
 * in an array (filled by the loader) and tail-call a handler only for the ~50
 * syscalls of interest; every other syscall costs one array lookup. On x86_64
 * the same entry also holds the route of the number as an ia32 syscall (int
 * 0x80, sysenter, 32-bit programs), chosen when the task is in a compat call.
 * State between sys_enter and sys_exit lives in a bounded hash keyed by tid.
 * Plus tp_btf (or raw_tp) on sock/inet_sock_set_state (async TCP connect
 * results), module/module_load (module name) and task/task_rename (PROC_RENAME).
 */
#include "bpf_shared.h"

#define AF_UNSPEC 0
#define AF_UNIX 1
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define O_ACCMODE 3
#define O_CREAT 0100
#define O_TRUNC 01000
#define O_PATH 010000000 /* the kernel ignores O_CREAT and O_TRUNC with it */
#define AT_FDCWD -100
#define AT_REMOVEDIR 0x200
#define AT_EMPTY_PATH_FLAG 0x1000
#define UTIME_NOW_NS ((1l << 30) - 1l)
#define UTIME_OMIT_NS ((1l << 30) - 2l)
#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_CLOSE 7
#define EPERM 1
#define EINPROGRESS 115
#define ERESTARTSYS 512
#define ERESTART_RESTARTBLOCK 516
/* include/linux/fs.h: set by the open path when O_CREAT created the file */
#define FMODE_CREATED (1u << 20)
#define FMODE_READ (1u << 0)
#define FMODE_WRITE (1u << 1)
#define PROC_SUPER_MAGIC 0x9fa0
#define PF_KTHREAD 0x00200000
#define PIDTYPE_PID 0
#define PTRACE_TRACEME 0
#define PTRACE_POKETEXT 4
#define PTRACE_POKEDATA 5
#define PTRACE_POKEUSR 6
#define PTRACE_SETREGS 13
#define PTRACE_SETFPREGS 15
#define PTRACE_ATTACH 16
#define PTRACE_SETREGSET 0x4205
#define PTRACE_SEIZE 0x4206
#define DNS_PORT 53
#define UNIX_PATH_MAX 108
#define MEMFD_NAME_MAX 250 /* 249 bytes + NUL */
#define PTRACED_SCAN 16    /* tracees scanned to resolve a PTRACE target */
#define DNS_IOV_MAX 4

/* connect/accept dedup window; the loader sets the default, FILTER changes it */
volatile __u64 connect_dedup_ns;

/* In-flight syscall state, sys_enter -> sys_exit. */
struct inflight {
	__u8 sc;
	__u8 hook;
	__u16 sa_len;
	__u32 extra;   /* fchmod: old mode; module: 1 when name set */
	__u64 args[6];
	union {
		struct {
			__u32 ids[8];
			__u64 caps[3];
		} cred;
		__u8 sa[128]; /* connect sockaddr (unix: 110 bytes); 128 for a mask bound */
		char modname[56];
		struct {
			__s64 sec[2]; /* atime, mtime given */
			__u32 given;  /* HADES_TIMES_* */
		} times;
	};
};

/* Bounded: a full map drops the event and counts dropped_state_full. Entries
 * are removed at sys_exit, and at thread exit for threads killed in a call. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct inflight);
} inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct inflight);
} inflight_tmp SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HADES_SC_ROUTE_MAX);
	__type(key, __u32);
	__type(value, struct hades_routes);
} sc_route SEC(".maps");

/* ia32 socketcall(2): the route of each call number (SYS_CONNECT = 3, ...) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HADES_SOCKETCALL_MAX);
	__type(key, __u32);
	__type(value, struct hades_route);
} socketcall_route SEC(".maps");

/* the arguments of the socketcall being handled, read from its array by he_socketcall */
struct sc_args {
	__u64 a[6];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sc_args);
} socketcall_args SEC(".maps");

/* route of the syscall being handled: [0] enter, [1] exit (set by the dispatcher) */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct hades_route);
} cur_route SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, HADES_HE_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} enter_progs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, HADES_HX_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} exit_progs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 256);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct hades_lpm_key);
	__type(value, struct hades_prefix_val);
} file_prefix SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct hades_lpm_key);
	__type(value, __u8);
} unix_prefix SEC(".maps");

/* FILE_QUIET prefixes: an existing file opened below one is reported only
 * when the open truncates it (logs appended to all day, emptied by an intruder) */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct hades_lpm_key);
	__type(value, __u8);
} file_quiet SEC(".maps");

/* The files whose opens are looked at, by (inode, device), in one map so that an open costs one
 * lookup: FILE_SECRET files (every open reported; at most HADES_SECRETS_MAX, the loader counts
 * them in file_secret_count) and files freshly written in a temporary folder (their first open
 * for reading by each other process reported; at most HADES_FRESH_MAX, the oldest forgotten
 * first through fresh_ring). With neither, an open costs two loads. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HADES_SECRETS_MAX + HADES_FRESH_MAX + 256);
	__type(key, struct hades_secret_key);
	__type(value, struct hades_watch_val);
} file_watch SEC(".maps");
volatile __u32 file_secret_count;
/* set by the loader when the file_open hook is on: writes in the temporary folders are noted */
volatile __u32 fresh_on;
/* set at the first fresh file noted: from then on every open is looked up */
volatile __u32 fresh_used;
/* fresh files noted since the start (the next fresh_ring slot, modulo its size) */
__u64 fresh_next;

/* The keys of the fresh files in the order they were noted: noting one more forgets the file
 * of its slot, HADES_FRESH_MAX notes ago, if it is still there (counted: `evicted`). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HADES_FRESH_MAX);
	__type(key, __u32);
	__type(value, struct hades_secret_key);
} fresh_ring SEC(".maps");

/* The temporary folders (FRESH_PREFIX, set by the loader): value = the prefix length */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, HADES_FRESH_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct hades_lpm_key);
	__type(value, __u32);
} fresh_prefix SEC(".maps");

/* The (fresh file, process) pairs reported, with the write they saw: a second open by the same
 * process of the same write is `suppressed`. An LRU: a pair pushed out is reported again. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct hades_fresh_seen_key);
	__type(value, __u64);
} fresh_seen SEC(".maps");
/* weak: absent before 6.2, where hx_file_open_btf is not loaded */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;

/* PROTECTED_PID: signals to these tgids are reported (KILL records) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HADES_PROTECTED_MAX);
	__type(key, __u32);
	__type(value, __u8);
} protected_pid SEC(".maps");

struct dedup_key {
	__u32 tgid;
	__s32 result;
	__u16 family;
	__u16 port;
	__u8 proto;
	__u8 hook;
	__u16 pad;
	__u8 addr[16];
};

struct dedup_val {
	__u64 last_ns;
	__u64 suppressed;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct dedup_key);
	__type(value, struct dedup_val);
} net_dedup SEC(".maps");

/* Non-blocking TCP connects that returned EINPROGRESS, by sock: the record to
 * re-emit (with the final result) when the handshake completes or fails. That
 * happens in softirq context, where "current" is unrelated, hence the copy. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, struct hades_net);
} pending_conn SEC(".maps");

struct u_msghdr {
	__u64 name;
	__u32 namelen;
	__u32 pad;
	__u64 iov;
	__u64 iovlen;
	__u64 control;
	__u64 controllen;
	__u32 flags;
	__u32 pad2;
};

struct u_iovec {
	__u64 base;
	__u64 len;
};

#define U_MMSGHDR_SIZE 64 /* struct mmsghdr: user_msghdr + u32 msg_len + pad */

/* the same for ia32 tasks (include/net/compat.h: compat_msghdr, compat_iovec, compat_mmsghdr) */
struct u_msghdr32 {
	__u32 name;
	__u32 namelen;
	__u32 iov;
	__u32 iovlen;
	__u32 control;
	__u32 controllen;
	__u32 flags;
};

struct u_iovec32 {
	__u32 base;
	__u32 len;
};

#define U_MMSGHDR32_SIZE 32

#if defined(__TARGET_ARCH_x86)
#define SYSCALL_NR(regs) BPF_CORE_READ((regs), orig_ax)
#elif defined(__TARGET_ARCH_arm64)
#define SYSCALL_NR(regs) BPF_CORE_READ((struct pt_regs___arm64 *)(regs), syscallno)
struct pt_regs___arm64 {
	__s32 syscallno;
} __attribute__((preserve_access_index));
#else
#error "unsupported architecture"
#endif

#define HADES_F_ANY_TRUNC                                                                     \
	(HADES_F_ARGV_TRUNCATED | HADES_F_CWD_TRUNCATED | HADES_F_EXE_TRUNCATED |             \
	 HADES_F_CGROUP_TRUNCATED | HADES_F_PATH_TRUNCATED | HADES_F_PAYLOAD_TRUNCATED)

static __always_inline struct task_struct *cur_task(void)
{
	return (struct task_struct *)bpf_get_current_task();
}

/* In an ia32 syscall (a 32-bit program, or int 0x80 from a 64-bit one): its number is one of
 * the ia32 table, its arguments are in other registers and its user structs are 32-bit. */
static __always_inline bool compat_task(struct task_struct *t)
{
#if defined(__TARGET_ARCH_x86)
	if (bpf_core_field_exists(t->thread_info.status))
		return BPF_CORE_READ(t, thread_info.status) & 0x0002; /* TS_COMPAT */
#endif
	return false;
}

/* The header of a security record, made in the context of the task's call: says whether that
 * call was an ia32 one (HADES_F_IA32), which a 64-bit program has no reason to make. */
static __always_inline void sec_header(struct hades_record_header *h, __u16 kind, __u32 size,
				       struct task_struct *t)
{
	fill_header(h, kind, size, t);
	if (compat_task(t))
		h->flags |= HADES_F_IA32;
}

/* compat_task() of the current task for the dispatchers, where every routed number pays it:
 * a plain load from the task's BTF type instead of a probe-read helper call */
static __always_inline bool compat_syscall(void)
{
#if defined(__TARGET_ARCH_x86)
	struct task_struct *t = bpf_get_current_task_btf();
	if (bpf_core_field_exists(t->thread_info.status))
		return t->thread_info.status & 0x0002; /* TS_COMPAT */
#endif
	return false;
}

static __always_inline void fill_proc(struct hades_proc *p, struct task_struct *t)
{
	const struct cred *cr = BPF_CORE_READ(t, cred);

	p->start_ns = process_start(t);
	p->cgroup_id = bpf_get_current_cgroup_id();
	p->ppid = BPF_CORE_READ(t, real_parent, tgid);
	p->uid = BPF_CORE_READ(cr, uid.val);
	p->gid = BPF_CORE_READ(cr, gid.val);
	p->euid = BPF_CORE_READ(cr, euid.val);
	p->egid = BPF_CORE_READ(cr, egid.val);
	if (bpf_core_field_exists(t->loginuid))
		p->loginuid = BPF_CORE_READ(t, loginuid.val);
	else
		p->loginuid = 0xffffffff;
	bpf_get_current_comm(p->comm, sizeof(p->comm));
}

/* Counts an invocation and applies the disable switch and pid/cgroup
 * filters; NULL means "do not report". */
static __always_inline struct hades_hook_counters *hook_begin(__u32 hook, __u32 tgid)
{
	struct hades_hook_counters *c = hook_counters(hook);
	if (!c)
		return NULL;
	bump(&c->seen);
	if (hook_disabled[hook & (HADES_HOOK_SLOTS - 1)]) {
		bump(&c->disabled);
		return NULL;
	}
	if (filtered_out(tgid)) {
		bump(&c->filtered);
		return NULL;
	}
	return c;
}

static __always_inline void count_quality(struct hades_hook_counters *c,
					  const struct hades_record_header *h)
{
	if (h->flags & HADES_F_ANY_TRUNC)
		bump(&c->truncated);
	/* A path-based chmod, mkdir or truncate never has a file mode to read: HADES_M_MODE says
	 * so in the record, and is no read error (counted, it made read_errors equal seen). */
	if (h->missing & ~HADES_M_MODE)
		bump(&c->read_errors);
}

/* Sends s->rec[0..end) padded to 8 bytes. */
static __always_inline void submit_scratch(struct hades_hook_counters *c, struct scratch *s,
					   __u32 end)
{
	struct hades_record_header *h = (void *)s->rec;

	if (end > REC_AREA - 8)
		return;
	*(__u64 *)(s->rec + end) = 0;
	__u32 total = (end + 7) & ~7u;
	h->size = total;
	count_quality(c, h);
	if (bpf_ringbuf_output(&events, s->rec, total, 0))
		bump(&c->dropped_ringbuf_full);
	else
		bump(&c->sent);
}

static __always_inline struct scratch *get_scratch(void)
{
	__u32 cpu = bpf_get_smp_processor_id();
	return bpf_map_lookup_elem(&scratch, &cpu);
}

static __always_inline struct file *fd_file(struct task_struct *t, long fd)
{
	struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
	struct file *f = NULL;

	if (!fdt || fd < 0 || (__u64)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	struct file **arr = BPF_CORE_READ(fdt, fd);
	bpf_probe_read_kernel(&f, sizeof(f), arr + fd);
	return f;
}

static __always_inline struct sock *file_sock(struct file *f)
{
	if (!f)
		return NULL;
	__u16 mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return NULL;
	struct socket *so = BPF_CORE_READ(f, private_data);
	return BPF_CORE_READ(so, sk);
}

struct sk_addrs {
	__u16 family, type, proto, lport, rport;
	__u8 laddr[16], raddr[16];
};

static __always_inline void read_sk(struct sock *sk, struct sk_addrs *a)
{
	a->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	a->type = BPF_CORE_READ(sk, sk_type);
	a->proto = BPF_CORE_READ(sk, sk_protocol);
	if (a->family == AF_INET || a->family == AF_INET6) {
		a->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
		a->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	}
	if (a->family == AF_INET) {
		__u32 la = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__u32 ra = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(a->laddr, &la, 4);
		__builtin_memcpy(a->raddr, &ra, 4);
	} else if (a->family == AF_INET6) {
		bpf_core_read(a->laddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(a->raddr, 16, &sk->__sk_common.skc_v6_daddr);
	}
}

/* Parses an inet sockaddr (user memory) into port + address; false if not inet. */
static __always_inline bool user_inet_addr(__u64 uaddr, __u16 *port, __u8 addr[16], __u16 *fam)
{
	__u8 sa[24] = {};

	if (!uaddr || bpf_probe_read_user(sa, sizeof(sa), (void *)uaddr))
		return false;
	__u16 f = sa[0] | sa[1] << 8;
	*fam = f;
	*port = sa[2] << 8 | sa[3];
	if (f == AF_INET) {
		__builtin_memcpy(addr, sa + 4, 4);
		return true;
	}
	if (f == AF_INET6) {
		__builtin_memcpy(addr, sa + 8, 16);
		return true;
	}
	return false;
}

static __always_inline bool is_restart(long ret)
{
	return ret <= -ERESTARTSYS && ret >= -ERESTART_RESTARTBLOCK;
}

/* Stores the staged state for tid; false (and counted) when the map is full. */
static __always_inline bool state_put(struct hades_hook_counters *c, __u32 tid,
				      struct inflight *st)
{
	if (bpf_map_update_elem(&inflight, &tid, st, BPF_ANY)) {
		bump(&c->dropped_state_full);
		return false;
	}
	return true;
}

static __always_inline struct inflight *state_tmp(void)
{
	__u32 zero = 0;
	struct inflight *st = bpf_map_lookup_elem(&inflight_tmp, &zero);
	if (st)
		__builtin_memset(st, 0, sizeof(*st));
	return st;
}

static __always_inline struct hades_route *route_get(__u32 which)
{
	return bpf_map_lookup_elem(&cur_route, &which);
}

/* ------------------------------------------------------------------ */
/* dispatchers                                                          */

/*
 * One lookup by number; a number routed in neither ABI costs what it did before ia32
 * support. The compat flag is read only for numbers routed in some ABI: `btf` reads it with
 * a plain load (bpf_get_current_task_btf, Linux 5.11), else by a probe read (the fallback
 * programs, which the loader takes when the first ones do not load).
 */
static __always_inline int enter_dispatch(struct bpf_raw_tracepoint_args *ctx, bool btf)
{
	__u32 id = (__u32)ctx->args[1];
	if (id >= HADES_SC_ROUTE_MAX)
		return 0;
	struct hades_routes *rs = bpf_map_lookup_elem(&sc_route, &id);
	if (!rs || !(rs->native.enter | rs->ia32.enter))
		return 0;
	bool compat = btf ? compat_syscall() : compat_task(cur_task());
	struct hades_route *r = compat ? &rs->ia32 : &rs->native;
	if (!r->enter)
		return 0;
	struct hades_route *cur = route_get(0);
	if (!cur)
		return 0;
	*cur = *r;
	bpf_tail_call(ctx, &enter_progs, r->enter);
	return 0;
}

static __always_inline int exit_dispatch(struct bpf_raw_tracepoint_args *ctx, bool btf)
{
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	__u32 id = (__u32)SYSCALL_NR(regs);
	if (id >= HADES_SC_ROUTE_MAX)
		return 0;
	struct hades_routes *rs = bpf_map_lookup_elem(&sc_route, &id);
	if (!rs || !(rs->native.exit | rs->ia32.exit))
		return 0;
	bool compat = btf ? compat_syscall() : compat_task(cur_task());
	struct hades_route *r = compat ? &rs->ia32 : &rs->native;
	if (!r->exit)
		return 0;
	struct hades_route *cur = route_get(1);
	if (!cur)
		return 0;
	*cur = *r;
	bpf_tail_call(ctx, &exit_progs, r->exit);
	return 0;
}

SEC("raw_tp/sys_enter")
int sys_enter_dispatch(struct bpf_raw_tracepoint_args *ctx)
{
	return enter_dispatch(ctx, true);
}

SEC("raw_tp/sys_exit")
int sys_exit_dispatch(struct bpf_raw_tracepoint_args *ctx)
{
	return exit_dispatch(ctx, true);
}

SEC("raw_tp/sys_enter")
int sys_enter_dispatch_probe(struct bpf_raw_tracepoint_args *ctx)
{
	return enter_dispatch(ctx, false);
}

SEC("raw_tp/sys_exit")
int sys_exit_dispatch_probe(struct bpf_raw_tracepoint_args *ctx)
{
	return exit_dispatch(ctx, false);
}

/* The arguments of the call, as the kernel takes them: ia32 ones zero-extended from 32 bits
 * (ints are compared as (__s32) where the sign matters), 16-bit ids widened as the kernel
 * does, a socketcall's from its array. */
static __always_inline void load_args(struct bpf_raw_tracepoint_args *ctx,
				      const struct hades_route *r, __u64 a[6])
{
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
#if defined(__TARGET_ARCH_x86)
	if (r->abi & HADES_ABI_SOCKETCALL) {
		__u32 zero = 0;
		struct sc_args *sa = bpf_map_lookup_elem(&socketcall_args, &zero);
		if (sa)
			__builtin_memcpy(a, sa->a, sizeof(sa->a));
		return;
	}
	if (r->abi & HADES_ABI_IA32) {
		a[0] = (__u32)BPF_CORE_READ(regs, bx);
		a[1] = (__u32)BPF_CORE_READ(regs, cx);
		a[2] = (__u32)BPF_CORE_READ(regs, dx);
		a[3] = (__u32)BPF_CORE_READ(regs, si);
		a[4] = (__u32)BPF_CORE_READ(regs, di);
		a[5] = (__u32)BPF_CORE_READ(regs, bp);
		if (r->abi & HADES_ABI_LEN64)
			a[1] |= a[2] << 32;
		if (r->abi & HADES_ABI_UID16) {
			for (int i = 0; i < 3; i++) {
				a[i] &= 0xffff;
				if (a[i] == 0xffff)
					a[i] = 0xffffffff; /* the kernel's low2highuid */
			}
		}
		return;
	}
#endif
	a[0] = PT_REGS_PARM1_CORE_SYSCALL(regs);
	a[1] = PT_REGS_PARM2_CORE_SYSCALL(regs);
	a[2] = PT_REGS_PARM3_CORE_SYSCALL(regs);
	a[3] = PT_REGS_PARM4_CORE_SYSCALL(regs);
	a[4] = PT_REGS_PARM5_CORE_SYSCALL(regs);
}

/* ------------------------------------------------------------------ */
/* sys_enter handlers                                                   */

/* An AF_UNIX path (kernel memory: a connect's sockaddr copy, or a bound address) matched against
 * the UNIX_PATH prefixes. */
static __always_inline bool unix_name_watched(struct scratch *s, const void *path)
{
	struct hades_lpm_key *k = &s->lpm;
	long n = bpf_probe_read_kernel_str(k->data, UNIX_PATH_MAX, path);
	if (n <= 1) /* empty or abstract (leading NUL) */
		return false;
	k->prefixlen = (n - 1) * 8;
	return bpf_map_lookup_elem(&unix_prefix, k) != NULL;
}

/* AF_UNIX path of st->sa matched against the UNIX_PATH prefixes. */
static __always_inline bool unix_path_watched(struct scratch *s, struct inflight *st)
{
	return unix_name_watched(s, st->sa + 2);
}

/* st->extra of a unix connect whose path, as spelled, is not watched: at its return the path the
 * connected peer was bound to decides (a relative path, "//", /proc/self/root/..., a symlink). */
#define UNIX_CHECK_PEER 1

/*
 * The path the peer of a connected AF_UNIX socket was bound to (for a stream socket the kernel
 * gives the server's new socket the listener's address), or NULL (not connected, unbound,
 * abstract names included: the caller's str read sees their leading NUL).
 */
static __always_inline const char *unix_peer_path(struct sock *sk)
{
	struct sock *peer = BPF_CORE_READ((struct unix_sock *)sk, peer);
	if (!peer)
		return NULL;
	struct unix_address *addr = BPF_CORE_READ((struct unix_sock *)peer, addr);
	if (!addr)
		return NULL;
	return (const char *)addr->name[0].sun_path;
}

SEC("raw_tp")
int he_connect(struct bpf_raw_tracepoint_args *ctx)
{
	struct hades_route *r = route_get(0);
	struct inflight *st = state_tmp();
	struct scratch *s = get_scratch();
	if (!r || !st || !s)
		return 0;
	load_args(ctx, r, st->args);
	__u64 uaddr = st->args[1];
	__u32 alen = (__u32)st->args[2];
	if (!uaddr || alen < 2)
		return 0;
	if (alen > 112)
		alen = 112;
	barrier_var(alen);
	if (bpf_probe_read_user(st->sa, alen & 127, (void *)uaddr))
		return 0;
	__u16 fam = st->sa[0] | st->sa[1] << 8;
	st->extra = 0;
	if (fam == AF_UNIX) {
		/* not watched as spelled: its peer's bound path decides at the return (abstract names never) */
		if (!unix_path_watched(s, st)) {
			if (alen < 3 || st->sa[2] == 0)
				return 0;
			st->extra = UNIX_CHECK_PEER;
		}
	} else if (fam != AF_INET && fam != AF_INET6) {
		return 0; /* AF_UNSPEC (disconnect), netlink, ...: not a connection */
	}
	__u64 pt = bpf_get_current_pid_tgid();
	struct hades_hook_counters *c = hook_begin(r->hook, pt >> 32);
	if (!c)
		return 0;
	st->sc = r->sc;
	st->hook = r->hook;
	st->sa_len = alen;
	state_put(c, (__u32)pt, st);
	return 0;
}

static __always_inline bool kill_target_protected(struct task_struct *t, __u8 sc, __u64 *a)
{
	__s32 pid = (__s32)a[0];
	__u32 k;

	switch (sc) {
	case HADES_SC_KILL:
		if (pid == -1)
			return (__u32)a[1] != 0; /* broadcast: every protected process gets it */
		if (pid == 0)
			return false; /* own process group: the agent is not in it */
		k = pid < 0 ? (__u32)-pid : (__u32)pid;
		return bpf_map_lookup_elem(&protected_pid, &k) != NULL;
	case HADES_SC_TKILL:
	case HADES_SC_TGKILL:
		k = (__u32)pid;
		return pid > 0 && bpf_map_lookup_elem(&protected_pid, &k) != NULL;
	case HADES_SC_PIDFD_SEND_SIGNAL: {
		/* a pidfd's private data is its struct pid (the fd is an int) */
		struct file *f = fd_file(t, (int)a[0]);
		struct pid *p = f ? BPF_CORE_READ(f, private_data) : NULL;
		k = p ? BPF_CORE_READ(p, numbers[0].nr) : 0;
		a[5] = k; /* remembered for the record */
		return k && bpf_map_lookup_elem(&protected_pid, &k) != NULL;
	}
	}
	return false;
}

static __always_inline bool ptrace_request_watched(__u64 req)
{
	switch (req) {
	case PTRACE_TRACEME:
	case PTRACE_POKETEXT:
	case PTRACE_POKEDATA:
	case PTRACE_POKEUSR:
	case PTRACE_SETREGS:
	case PTRACE_SETFPREGS:
	case PTRACE_ATTACH:
	case PTRACE_SETREGSET:
	case PTRACE_SEIZE:
		return true;
	}
	return false;
}

/* Generic entry: cheap relevance test per syscall, then the arguments. */
SEC("raw_tp")
int he_args(struct bpf_raw_tracepoint_args *ctx)
{
	struct hades_route *r = route_get(0);
	struct inflight *st = state_tmp();
	if (!r || !st)
		return 0;
	struct task_struct *t = cur_task();
	load_args(ctx, r, st->args);
	__u64 *a = st->args;

	switch (r->sc) {
	/* opens that may create a file, empty one (cp onto an existing file: O_TRUNC alone), or
	 * write into one (O_WRONLY/O_RDWR: then write, pwrite, mmap, splice, copy_file_range...);
	 * read-only opens, most of them, stop here */
	case HADES_SC_OPEN:
		if (!(a[1] & (O_CREAT | O_TRUNC | O_ACCMODE)))
			return 0;
		break;
	case HADES_SC_OPENAT:
		if (!(a[2] & (O_CREAT | O_TRUNC | O_ACCMODE)))
			return 0;
		break;
	case HADES_SC_OPEN_BY_HANDLE_AT:
		if (!(a[2] & (O_TRUNC | O_ACCMODE)))
			return 0;
		break;
	case HADES_SC_OPENAT2: {
		__u64 flags = 0; /* struct open_how starts with u64 flags */
		if (bpf_probe_read_user(&flags, sizeof(flags), (void *)a[2]) ||
		    !(flags & (O_CREAT | O_TRUNC | O_ACCMODE)))
			return 0;
		a[5] = flags;
		break;
	}
	case HADES_SC_PTRACE:
		if (!ptrace_request_watched(a[0]))
			return 0;
		break;
	case HADES_SC_KILL:
	case HADES_SC_TKILL:
	case HADES_SC_TGKILL:
	case HADES_SC_PIDFD_SEND_SIGNAL:
		if (!kill_target_protected(t, r->sc, a))
			return 0;
		break;
	/* timestamps set to a given time (timestomping); a NULL time, or UTIME_NOW / UTIME_OMIT
	 * for both, sets them to now (touch, a build): not reported. Unreadable times fail the call. */
	case HADES_SC_UTIME:
	case HADES_SC_UTIMES:
	case HADES_SC_FUTIMESAT:
	case HADES_SC_UTIMENSAT: {
		__u64 ut = r->sc == HADES_SC_UTIME || r->sc == HADES_SC_UTIMES ? a[1] : a[2];
		__s64 v[4] = {}; /* utimbuf: actime, modtime; timeval/timespec[2]: sec, usec/nsec each */
		/* a compat task's structs hold 32-bit fields (but utimensat_time64's) */
		bool t32 = (r->abi & HADES_ABI_IA32) && !(r->abi & HADES_ABI_TIME64);
		if (!ut)
			return 0;
		if (t32) {
			__s32 w[4] = {};
			if (bpf_probe_read_user(w, r->sc == HADES_SC_UTIME ? 8 : 16, (void *)ut))
				return 0;
			v[0] = w[0], v[1] = w[1], v[2] = w[2], v[3] = w[3];
		} else if (bpf_probe_read_user(v, r->sc == HADES_SC_UTIME ? 16 : 32, (void *)ut)) {
			return 0;
		}
		/* utimbuf: actime, modtime; the others: the seconds of atime, then of mtime */
		st->times.sec[0] = v[0], st->times.sec[1] = r->sc == HADES_SC_UTIME ? v[1] : v[2];
		st->times.given = HADES_TIMES_ATIME | HADES_TIMES_MTIME;
		if (r->sc == HADES_SC_UTIMENSAT) {
			__u32 given = 0;
			if (v[1] == UTIME_NOW_NS)
				given |= HADES_TIMES_ATIME_NOW;
			else if (v[1] != UTIME_OMIT_NS)
				given |= HADES_TIMES_ATIME;
			if (v[3] == UTIME_NOW_NS)
				given |= HADES_TIMES_MTIME_NOW;
			else if (v[3] != UTIME_OMIT_NS)
				given |= HADES_TIMES_MTIME;
			if (!(given & (HADES_TIMES_ATIME | HADES_TIMES_MTIME)))
				return 0;
			st->times.given = given;
		}
		break;
	}
	/* emptying a file (a log wiped with `truncate -s 0`, os.truncate): length 0 only, so
	 * the frequent ftruncate calls of databases cost one compare */
	case HADES_SC_TRUNCATE:
	case HADES_SC_FTRUNCATE:
		if (a[1] != 0)
			return 0;
		break;
	case HADES_SC_FCHMOD: {
		/* the old mode is only readable before the call */
		/* the kernel takes an unsigned int fd: the upper half of the register is ignored */
		struct file *f = fd_file(t, (__u32)a[0]);
		if (f)
			st->extra = BPF_CORE_READ(f, f_inode, i_mode) | 0x80000000u;
		break;
	}
	}
	__u64 pt = bpf_get_current_pid_tgid();
	struct hades_hook_counters *c = hook_begin(r->hook, pt >> 32);
	if (!c)
		return 0;
	st->sc = r->sc;
	st->hook = r->hook;
	state_put(c, (__u32)pt, st);
	return 0;
}

SEC("raw_tp")
int he_cred(struct bpf_raw_tracepoint_args *ctx)
{
	struct hades_route *r = route_get(0);
	struct inflight *st = state_tmp();
	if (!r || !st)
		return 0;
	__u64 pt = bpf_get_current_pid_tgid();
	struct hades_hook_counters *c = hook_begin(r->hook, pt >> 32);
	if (!c)
		return 0;
	load_args(ctx, r, st->args);
	const struct cred *cr = BPF_CORE_READ(cur_task(), cred);
	st->cred.ids[0] = BPF_CORE_READ(cr, uid.val);
	st->cred.ids[1] = BPF_CORE_READ(cr, gid.val);
	st->cred.ids[2] = BPF_CORE_READ(cr, euid.val);
	st->cred.ids[3] = BPF_CORE_READ(cr, egid.val);
	st->cred.ids[4] = BPF_CORE_READ(cr, suid.val);
	st->cred.ids[5] = BPF_CORE_READ(cr, sgid.val);
	st->cred.ids[6] = BPF_CORE_READ(cr, fsuid.val);
	st->cred.ids[7] = BPF_CORE_READ(cr, fsgid.val);
	bpf_core_read(&st->cred.caps[0], 8, &cr->cap_effective);
	bpf_core_read(&st->cred.caps[1], 8, &cr->cap_permitted);
	bpf_core_read(&st->cred.caps[2], 8, &cr->cap_inheritable);
	st->sc = r->sc;
	st->hook = r->hook;
	state_put(c, (__u32)pt, st);
	return 0;
}

/* Socket of fd if it is a TCP/UDP inet socket. */
static __always_inline struct sock *inet_sock_of(struct task_struct *t, long fd,
						 struct sk_addrs *a)
{
	struct sock *sk = file_sock(fd_file(t, fd));
	if (!sk)
		return NULL;
	read_sk(sk, a);
	if (a->family != AF_INET && a->family != AF_INET6)
		return NULL;
	if (a->proto != IPPROTO_UDP && a->proto != IPPROTO_TCP)
		return NULL;
	return sk;
}

/* iovec i of an array in user memory (ia32: struct compat_iovec); non-zero on a fault */
static __always_inline long read_iovec(bool ia32, __u64 iov, int i, struct u_iovec *v)
{
	if (ia32) {
		struct u_iovec32 c;
		long err = bpf_probe_read_user(&c, sizeof(c), (void *)(iov + i * sizeof(c)));
		v->base = c.base;
		v->len = c.len;
		return err;
	}
	return bpf_probe_read_user(v, sizeof(*v), (void *)(iov + i * sizeof(*v)));
}

/* A user msghdr (ia32: struct compat_msghdr) as the 64-bit layout; non-zero on a fault */
static __always_inline long read_msghdr(bool ia32, __u64 uaddr, struct u_msghdr *m)
{
	if (ia32) {
		struct u_msghdr32 c;
		long err = bpf_probe_read_user(&c, sizeof(c), (void *)uaddr);
		m->name = c.name;
		m->namelen = c.namelen;
		m->iov = c.iov;
		m->iovlen = c.iovlen;
		return err;
	}
	return bpf_probe_read_user(m, sizeof(*m), (void *)uaddr);
}

/* Copies up to 512 bytes from up to DNS_IOV_MAX iovecs after the fixed part;
 * returns bytes copied, *total = sum of the iovec lengths. */
static __always_inline __u32 copy_iov(struct scratch *s, bool ia32, __u64 iov, __u64 cnt,
				      __u64 limit, __u64 *total)
{
	struct u_iovec v;
	__u32 off = 0;

	*total = 0;
	for (int i = 0; i < DNS_IOV_MAX; i++) {
		if (i >= cnt)
			break;
		if (read_iovec(ia32, iov, i, &v))
			break;
		*total += v.len;
		__u64 n = v.len;
		if (n > limit - off)
			n = limit - off;
		if (n > HADES_DNS_PAYLOAD_MAX - off)
			n = HADES_DNS_PAYLOAD_MAX - off;
		/* clang drops masks it deems redundant; the verifier needs them */
		barrier_var(off);
		barrier_var(n);
		off &= 1023;
		if (n && bpf_probe_read_user(s->rec + HADES_DNS_FIXED_SIZE + off, n & 1023,
					     (void *)v.base))
			break;
		off += n;
		if (off >= HADES_DNS_PAYLOAD_MAX || off >= limit)
			break;
	}
	return off > HADES_DNS_PAYLOAD_MAX ? HADES_DNS_PAYLOAD_MAX : off;
}

/* Builds and sends one DNS record; payload from buf/len or iov/iovcnt (ia32: compat iovecs). */
static __always_inline void emit_dns(struct hades_hook_counters *c, struct scratch *s,
				     struct task_struct *t, const struct hades_route *r, __u8 dir,
				     long fd, struct sk_addrs *a, __s32 result, __u64 buf, __u64 len,
				     __u64 iov, __u64 iovcnt)
{
	__u8 sc = r->sc;

	struct hades_dns *d = (void *)s->rec;

	__builtin_memset(d, 0, sizeof(*d));
	sec_header(&d->hdr, HADES_KIND_DNS, 0, t);
	fill_proc(&d->proc, t);
	d->result = result;
	d->fd = fd;
	d->family = a->family;
	d->protocol = a->proto;
	d->local_port = a->lport;
	d->remote_port = a->rport;
	__builtin_memcpy(d->local_addr, a->laddr, 16);
	__builtin_memcpy(d->remote_addr, a->raddr, 16);
	d->direction = dir;
	d->syscall = sc;
	__u32 n = 0;
	__u64 total = len;
	if (iov) {
		n = copy_iov(s, r->abi & HADES_ABI_IA32, iov, iovcnt, len, &total);
	} else if (buf && len) {
		n = len > HADES_DNS_PAYLOAD_MAX ? HADES_DNS_PAYLOAD_MAX : len;
		barrier_var(n);
		if (bpf_probe_read_user(s->rec + HADES_DNS_FIXED_SIZE, n & 1023, (void *)buf)) {
			n = 0;
			d->hdr.missing |= HADES_M_PAYLOAD;
		}
	}
	if (dir == HADES_DNS_ANSWER)
		total = result;
	barrier_var(n);
	n &= 1023;
	d->payload_len = n;
	d->payload_orig_len = total > 0xffffffffULL ? 0xffffffff : total;
	if (total > n)
		d->hdr.flags |= HADES_F_PAYLOAD_TRUNCATED;
	submit_scratch(c, s, HADES_DNS_FIXED_SIZE + n);
}

/*
 * Destination of a send (or the sender of a datagram received), as the kernel uses it: the
 * connected peer, or the address given with the call where the protocol takes one. TCP ignores
 * an address given to sendto/sendmsg on a connected socket; UDP over IPv4 takes AF_INET and
 * AF_UNSPEC (the address as given); UDP over IPv6 takes AF_INET6, AF_INET (sent over IPv4:
 * recorded v4-mapped, as the kernel reports such a peer to an IPv6 socket) and AF_UNSPEC (the
 * connected peer). Other families are refused by the kernel: nothing is sent.
 */
static __always_inline bool dns_dest(__u64 uaddr, struct sk_addrs *a)
{
	if (uaddr && a->proto == IPPROTO_UDP) {
		__u8 sa[24] = {};
		if (bpf_probe_read_user(sa, sizeof(sa), (void *)uaddr))
			return false;
		__u16 fam = sa[0] | sa[1] << 8;
		__u16 port = sa[2] << 8 | sa[3];
		if (a->family == AF_INET && (fam == AF_INET || fam == AF_UNSPEC)) {
			__builtin_memset(a->raddr, 0, 16);
			__builtin_memcpy(a->raddr, sa + 4, 4);
			a->rport = port;
		} else if (a->family == AF_INET6 && fam == AF_INET6) {
			__builtin_memcpy(a->raddr, sa + 8, 16);
			a->rport = port;
		} else if (a->family == AF_INET6 && fam == AF_INET) {
			__builtin_memset(a->raddr, 0, 16);
			a->raddr[10] = 0xff;
			a->raddr[11] = 0xff;
			__builtin_memcpy(a->raddr + 12, sa + 4, 4);
			a->rport = port;
		} else if (!(a->family == AF_INET6 && fam == AF_UNSPEC)) {
			return false;
		}
	}
	return a->rport == DNS_PORT;
}

SEC("raw_tp")
int he_dns_send(struct bpf_raw_tracepoint_args *ctx)
{
	struct hades_route *r = route_get(0);
	struct scratch *s = get_scratch();
	if (!r || !s)
		return 0;
	struct task_struct *t = cur_task();
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	bool ia32 = r->abi & HADES_ABI_IA32;
	__u64 args[6] = {};
	long fd;
	struct sk_addrs a = {};

	/* write/writev are hot: the fd -> socket test comes first (native: one register) */
	if (ia32)
		load_args(ctx, r, args);
	else
		args[0] = PT_REGS_PARM1_CORE_SYSCALL(regs);
	fd = (int)args[0];
	if (!inet_sock_of(t, fd, &a))
		return 0;
	if (!ia32) {
		args[1] = PT_REGS_PARM2_CORE_SYSCALL(regs);
		args[2] = PT_REGS_PARM3_CORE_SYSCALL(regs);
		args[4] = PT_REGS_PARM5_CORE_SYSCALL(regs);
	}
	__u64 a2 = args[1];
	__u64 a3 = args[2];
	__u64 pt = bpf_get_current_pid_tgid();
	struct hades_hook_counters *c;
	struct u_msghdr m = {};
	__u32 stride = ia32 ? U_MMSGHDR32_SIZE : U_MMSGHDR_SIZE;

	switch (r->sc) {
	case HADES_SC_WRITE:
		if (!dns_dest(0, &a) || !(c = hook_begin(r->hook, pt >> 32)))
			return 0;
		emit_dns(c, s, t, r, HADES_DNS_QUERY, fd, &a, 0, a2, a3, 0, 0);
		return 0;
	case HADES_SC_WRITEV:
		if (!dns_dest(0, &a) || !(c = hook_begin(r->hook, pt >> 32)))
			return 0;
		emit_dns(c, s, t, r, HADES_DNS_QUERY, fd, &a, 0, 0, ~0ULL, a2, a3);
		return 0;
	case HADES_SC_SENDTO: {
		__u64 dest = args[4];
		if (!dns_dest(dest, &a) || !(c = hook_begin(r->hook, pt >> 32)))
			return 0;
		emit_dns(c, s, t, r, HADES_DNS_QUERY, fd, &a, 0, a2, a3, 0, 0);
		return 0;
	}
	case HADES_SC_SENDMSG:
		if (read_msghdr(ia32, a2, &m))
			return 0;
		/* a name of length 0 is no name: the kernel sends to the connected peer */
		if (!dns_dest(m.namelen ? m.name : 0, &a) || !(c = hook_begin(r->hook, pt >> 32)))
			return 0;
		emit_dns(c, s, t, r, HADES_DNS_QUERY, fd, &a, 0, 0, ~0ULL, m.iov, m.iovlen);
		return 0;
	case HADES_SC_SENDMMSG:
		/* glibc sends the A and AAAA queries in one sendmmsg: report the
		 * first two messages */
		for (int i = 0; i < 2; i++) {
			if (i >= a3)
				break;
			if (read_msghdr(ia32, a2 + i * stride, &m))
				break;
			/* each message from the socket's own peer, not the one before */
			struct sk_addrs d = a;
			if (!dns_dest(m.namelen ? m.name : 0, &d) || !(c = hook_begin(r->hook, pt >> 32)))
				break;
			emit_dns(c, s, t, r, HADES_DNS_QUERY, fd, &d, 0, 0, ~0ULL, m.iov, m.iovlen);
		}
		return 0;
	}
	return 0;
}

SEC("raw_tp")
int he_dns_recv(struct bpf_raw_tracepoint_args *ctx)
{
	struct hades_route *r = route_get(0);
	struct inflight *st = state_tmp();
	if (!r || !st)
		return 0;
	struct task_struct *t = cur_task();
	load_args(ctx, r, st->args);
	struct sk_addrs a = {};
	if (!inet_sock_of(t, (long)st->args[0], &a))
		return 0;
	/* connected to a resolver, or an unconnected UDP socket whose sender
	 * address is checked at exit */
	if (a.rport != DNS_PORT && !(a.proto == IPPROTO_UDP && a.rport == 0))
		return 0;
	if (hook_disabled[HADES_HOOK_DNS])
		return 0;
	__u64 pt = bpf_get_current_pid_tgid();
	if (filtered_out(pt >> 32))
		return 0;
	st->sc = r->sc;
	st->hook = r->hook;
	__u32 tid = (__u32)pt;
	if (bpf_map_update_elem(&inflight, &tid, st, BPF_ANY)) {
		struct hades_hook_counters *c = hook_counters(HADES_HOOK_DNS);
		if (c)
			bump(&c->dropped_state_full);
	}
	return 0;
}

#if defined(__TARGET_ARCH_x86)
/* 32-bit words of socketcall's argument array per call (net/compat.c nas[]); 0: not read */
static __always_inline __u32 socketcall_nargs(__u32 call)
{
	switch (call) {
	case 4: /* SYS_LISTEN */
		return 2;
	case 3: /* SYS_CONNECT */
	case 5: /* SYS_ACCEPT */
	case 16: /* SYS_SENDMSG */
	case 17: /* SYS_RECVMSG */
		return 3;
	case 9: /* SYS_SEND */
	case 10: /* SYS_RECV */
	case 18: /* SYS_ACCEPT4 */
	case 20: /* SYS_SENDMMSG */
		return 4;
	case 11: /* SYS_SENDTO */
	case 12: /* SYS_RECVFROM */
		return 6;
	}
	return 0;
}
#endif

/*
 * ia32 socketcall(call, args): the call's route (socketcall_route, filled by the loader: send
 * as sendto without an address, recv as recvfrom) and its arguments, read from the array of
 * 32-bit words, for the handler it tail-calls (load_args takes them from socketcall_args).
 */
SEC("raw_tp")
int he_socketcall(struct bpf_raw_tracepoint_args *ctx)
{
#if defined(__TARGET_ARCH_x86)
	struct hades_route *cur = route_get(0);
	__u32 zero = 0;
	struct sc_args *sa = bpf_map_lookup_elem(&socketcall_args, &zero);
	if (!cur || !sa)
		return 0;
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	__u32 call = BPF_CORE_READ(regs, bx);
	__u32 uargs = BPF_CORE_READ(regs, cx);
	struct hades_route *r = bpf_map_lookup_elem(&socketcall_route, &call);
	__u32 n = socketcall_nargs(call);
	if (!r || !r->enter || !n)
		return 0;
	__u32 w[6] = {};
	if (bpf_probe_read_user(w, (n * 4) & 31, (void *)(__u64)uargs))
		return 0;
	for (int i = 0; i < 6; i++)
		sa->a[i] = w[i];
	*cur = *r;
	bpf_tail_call(ctx, &enter_progs, r->enter);
#endif
	return 0;
}

/* ------------------------------------------------------------------ */
/* sys_exit handlers                                                    */

/* ia32 socketcall: the exit handler of its call (the call number is still in bx) */
SEC("raw_tp")
int hx_socketcall(struct bpf_raw_tracepoint_args *ctx)
{
#if defined(__TARGET_ARCH_x86)
	struct hades_route *cur = route_get(1);
	if (!cur)
		return 0;
	__u32 call = BPF_CORE_READ((struct pt_regs *)ctx->args[0], bx);
	struct hades_route *r = bpf_map_lookup_elem(&socketcall_route, &call);
	if (!r || !r->exit)
		return 0;
	*cur = *r;
	bpf_tail_call(ctx, &exit_progs, r->exit);
#endif
	return 0;
}

/* Takes the state of the current thread (removing it) into *out. */
static __always_inline bool state_take(struct inflight *out, __u8 sc)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct inflight *st = bpf_map_lookup_elem(&inflight, &tid);
	if (!st)
		return false;
	__builtin_memcpy(out, st, sizeof(*out));
	bpf_map_delete_elem(&inflight, &tid);
	return out->sc == sc;
}

/* true when this (key) was reported less than the window ago: counted. */
static __always_inline bool dedup_suppress(struct hades_hook_counters *c, struct dedup_key *k,
					   __u32 *repeat)
{
	__u64 win = connect_dedup_ns;
	__u64 now = bpf_ktime_get_boot_ns();

	*repeat = 0;
	if (!win)
		return false;
	struct dedup_val *v = bpf_map_lookup_elem(&net_dedup, k);
	if (v) {
		if (now - v->last_ns < win) {
			__sync_fetch_and_add(&v->suppressed, 1);
			bump(&c->suppressed);
			return true;
		}
		v->last_ns = now;
		__u64 n = __sync_lock_test_and_set(&v->suppressed, 0);
		*repeat = n > 0xffffffffULL ? 0xffffffff : (__u32)n;
		return false;
	}
	struct dedup_val nv = { .last_ns = now };
	bpf_map_update_elem(&net_dedup, k, &nv, BPF_ANY);
	return false;
}

/*
 * The start of an exit program: the call's state staged at sys_enter (into *st), the scratch
 * record (*s) and the counters of its hook; NULL when nothing was staged, or when the kernel
 * restarts the call (counted `ignored`: it is reported then).
 */
static __always_inline struct hades_hook_counters *exit_begin(struct bpf_raw_tracepoint_args *ctx,
								struct inflight **st, struct scratch **s)
{
	struct hades_route *r = route_get(1);
	*st = state_tmp();
	*s = get_scratch();
	if (!r || !*st || !*s || !state_take(*st, r->sc))
		return NULL;
	struct hades_hook_counters *c = hook_counters((*st)->hook);
	if (c && is_restart(ctx->args[1])) {
		bump(&c->ignored);
		return NULL;
	}
	return c;
}

SEC("raw_tp")
int hx_net(struct bpf_raw_tracepoint_args *ctx)
{
	struct inflight *st;
	struct scratch *s;
	struct hades_hook_counters *c = exit_begin(ctx, &st, &s);
	if (!c)
		return 0;
	long ret = ctx->args[1];
	struct task_struct *t = cur_task();
	struct sk_addrs a = {};
	struct sock *sk = NULL;
	__u16 ufam = st->sa[0] | st->sa[1] << 8;
	__u32 repeat = 0;
	__u8 kind;

	switch (st->sc) {
	case HADES_SC_CONNECT:
		kind = HADES_KIND_CONNECT;
		sk = file_sock(fd_file(t, (long)st->args[0]));
		/* dedup first: the key needs only the protocol from the socket,
		 * so a suppressed repeat skips the address reads below */
		if (sk && (ufam == AF_INET || ufam == AF_INET6)) {
			struct dedup_key k = {
				.tgid = bpf_get_current_pid_tgid() >> 32,
				.result = ret < 0 ? ret : 0,
				.family = ufam,
				.port = st->sa[2] << 8 | st->sa[3],
				.proto = BPF_CORE_READ(sk, sk_protocol),
				.hook = st->hook,
			};
			if (ufam == AF_INET)
				__builtin_memcpy(k.addr, st->sa + 4, 4);
			else
				__builtin_memcpy(k.addr, st->sa + 8, 16);
			if (dedup_suppress(c, &k, &repeat))
				return 0;
		}
		if (ufam == AF_UNIX && st->extra == UNIX_CHECK_PEER) {
			/* spelled another way (relative, "//", a symlink, /proc/self/root): a
			 * watched socket is known by the path its server bound; a failed
			 * connect has no peer to ask, and is not reported */
			const char *bound = ret == 0 && sk ? unix_peer_path(sk) : NULL;
			if (!bound || !unix_name_watched(s, bound)) {
				bump(&c->ignored);
				return 0;
			}
			/* reported with the bound path (what the prefixes name) */
			bpf_probe_read_kernel_str(st->sa + 2, UNIX_PATH_MAX, bound);
		}
		if (sk)
			read_sk(sk, &a);
		/* a UDP IPv6 socket connected to an AF_INET address talks IPv4:
		 * its local address is v4-mapped, the IPv4 one is its last 4 bytes */
		if (ufam == AF_INET && a.family == AF_INET6) {
			__builtin_memcpy(a.laddr, a.laddr + 12, 4);
			__builtin_memset(a.laddr + 4, 0, 12);
		}
		/* the requested destination is authoritative: a failed connect
		 * resets the socket's peer */
		a.family = ufam;
		if (ufam == AF_INET || ufam == AF_INET6) {
			__builtin_memset(a.raddr, 0, 16);
			a.rport = st->sa[2] << 8 | st->sa[3];
			if (ufam == AF_INET)
				__builtin_memcpy(a.raddr, st->sa + 4, 4);
			else
				__builtin_memcpy(a.raddr, st->sa + 8, 16);
		}
		break;
	case HADES_SC_ACCEPT:
	case HADES_SC_ACCEPT4:
		kind = HADES_KIND_ACCEPT;
		if (ret < 0) {
			bump(&c->ignored); /* EAGAIN of event loops, ... */
			return 0;
		}
		sk = file_sock(fd_file(t, ret));
		if (!sk)
			return 0;
		read_sk(sk, &a);
		if (a.family != AF_INET && a.family != AF_INET6) {
			bump(&c->ignored);
			return 0;
		}
		break;
	case HADES_SC_LISTEN:
		kind = HADES_KIND_LISTEN;
		sk = file_sock(fd_file(t, (long)st->args[0]));
		if (sk)
			read_sk(sk, &a);
		if (a.family != AF_INET && a.family != AF_INET6) {
			bump(&c->ignored);
			return 0;
		}
		break;
	default:
		return 0;
	}

	if (kind == HADES_KIND_ACCEPT) {
		struct dedup_key k = {
			.tgid = bpf_get_current_pid_tgid() >> 32,
			.result = ret < 0 ? ret : 0,
			.family = a.family,
			.port = kind == HADES_KIND_CONNECT ? a.rport : a.lport,
			.proto = a.proto,
			.hook = st->hook,
		};
		__builtin_memcpy(k.addr, a.raddr, 16);
		if (dedup_suppress(c, &k, &repeat))
			return 0;
	}

	struct hades_net *n = (void *)s->rec;
	__builtin_memset(n, 0, sizeof(*n));
	sec_header(&n->hdr, kind, 0, t);
	fill_proc(&n->proc, t);
	n->result = ret;
	n->fd = st->args[0];
	n->family = a.family;
	n->sock_type = a.type;
	n->protocol = a.proto;
	n->local_port = a.lport;
	n->remote_port = a.rport;
	n->origin = HADES_ORIGIN_SYSCALL;
	n->repeat_count = repeat;
	if (kind == HADES_KIND_LISTEN)
		n->backlog = st->args[1];
	__builtin_memcpy(n->local_addr, a.laddr, 16);
	__builtin_memcpy(n->remote_addr, a.raddr, 16);
	__u32 end = sizeof(*n);
	if (a.family == AF_UNIX) {
		long l = bpf_probe_read_kernel_str(s->rec + sizeof(*n), UNIX_PATH_MAX, st->sa + 2);
		if (l > 1) {
			n->path_len = l - 1;
			end += (l - 1) & 127;
		}
	}
	submit_scratch(c, s, end);
	if (kind == HADES_KIND_CONNECT && ret == -EINPROGRESS && sk && a.proto == IPPROTO_TCP) {
		/* completion comes later through inet_sock_set_state... */
		__u64 key = (__u64)sk;
		bpf_map_update_elem(&pending_conn, &key, n, BPF_ANY);
		/* ...unless it already happened inside this call (loopback does
		 * the handshake in softirq before connect returns). Whoever
		 * deletes the pending entry reports the result, so it is
		 * reported exactly once. */
		__u8 state = BPF_CORE_READ(sk, __sk_common.skc_state);
		if (state != TCP_SYN_SENT && bpf_map_delete_elem(&pending_conn, &key) == 0) {
			n->hdr.ktime_ns = bpf_ktime_get_boot_ns();
			n->repeat_count = 0;
			if (state == TCP_CLOSE) {
				n->origin = HADES_ORIGIN_TCP_FAILED;
				n->result = -(__s32)BPF_CORE_READ(sk, sk_err);
			} else {
				n->origin = HADES_ORIGIN_TCP_ESTABLISHED;
				n->result = 0;
			}
			read_sk(sk, &a);
			n->local_port = a.lport;
			__builtin_memcpy(n->local_addr, a.laddr, 16);
			submit_scratch(c, s, sizeof(*n));
		}
	}
	return 0;
}

/* Async end of a non-blocking TCP connect. Runs in softirq context. */
/*
 * A TCP socket going CLOSE -> SYN_SENT: an active open, in the context of the task that opens it.
 * connect(2) is reported at its sys_exit (its in-flight state says so); any other way is reported
 * from here: sendto/sendmsg with MSG_FASTOPEN on an unconnected socket, io_uring's
 * IORING_OP_CONNECT. A pending CONNECT record (-115),
 * completed as for a non-blocking connect. Kernel threads (NFS, iSCSI clients) are left out.
 */
static __noinline void on_syn_sent(const struct sock *sk)
{
	struct task_struct *t = cur_task();
	if (BPF_CORE_READ(t, flags) & PF_KTHREAD)
		return;
	__u64 pt = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pt;
	struct inflight *st = bpf_map_lookup_elem(&inflight, &tid);
	if (st && st->hook == HADES_HOOK_CONNECT)
		return;
	struct hades_hook_counters *c = hook_begin(HADES_HOOK_CONNECT, pt >> 32);
	if (!c)
		return;
	struct scratch *s = get_scratch();
	if (!s)
		return;
	struct hades_net *n = (void *)s->rec;
	struct sk_addrs a = {};
	__builtin_memset(n, 0, sizeof(*n));
	read_sk((struct sock *)sk, &a);
	sec_header(&n->hdr, HADES_KIND_CONNECT, 0, t);
	fill_proc(&n->proc, t);
	n->result = -EINPROGRESS;
	n->fd = -1;
	n->family = a.family;
	n->sock_type = a.type;
	n->protocol = a.proto;
	n->local_port = a.lport;
	n->remote_port = a.rport;
	n->origin = HADES_ORIGIN_TCP_SYN_SENT;
	__builtin_memcpy(n->local_addr, a.laddr, 16);
	__builtin_memcpy(n->remote_addr, a.raddr, 16);
	submit_scratch(c, s, sizeof(*n));
	__u64 key = (__u64)sk;
	bpf_map_update_elem(&pending_conn, &key, n, BPF_ANY);
}

static __always_inline void on_sock_state(const struct sock *sk, int oldstate, int newstate)
{
	if (oldstate == TCP_CLOSE && newstate == TCP_SYN_SENT) {
		on_syn_sent(sk);
		return;
	}
	if (oldstate != TCP_SYN_SENT)
		return;
	__u64 key = (__u64)sk;
	struct hades_net *p = bpf_map_lookup_elem(&pending_conn, &key);
	if (!p)
		return;
	struct hades_hook_counters *c = hook_counters(HADES_HOOK_CONNECT);
	if (!c)
		return;
	struct hades_net *n = bpf_ringbuf_reserve(&events, sizeof(*n), 0);
	if (!n) {
		bump(&c->dropped_ringbuf_full);
		bpf_map_delete_elem(&pending_conn, &key);
		return;
	}
	__builtin_memcpy(n, p, sizeof(*n));
	bpf_map_delete_elem(&pending_conn, &key);
	n->hdr.size = sizeof(*n);
	n->hdr.ktime_ns = bpf_ktime_get_boot_ns();
	n->repeat_count = 0;
	if (newstate == TCP_ESTABLISHED) {
		n->origin = HADES_ORIGIN_TCP_ESTABLISHED;
		n->result = 0;
	} else {
		n->origin = HADES_ORIGIN_TCP_FAILED;
		n->result = -(__s32)BPF_CORE_READ(sk, sk_err);
	}
	struct sk_addrs a = {};
	read_sk((struct sock *)sk, &a);
	n->local_port = a.lport;
	__builtin_memcpy(n->local_addr, a.laddr, 16);
	bpf_ringbuf_submit(n, 0);
	bump(&c->sent);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(tpbtf_sock_state, const struct sock *sk, const int oldstate, const int newstate)
{
	on_sock_state(sk, oldstate, newstate);
	return 0;
}

SEC("raw_tp/inet_sock_set_state")
int raw_sock_state(struct bpf_raw_tracepoint_args *ctx)
{
	on_sock_state((const struct sock *)ctx->args[0], (int)ctx->args[1], (int)ctx->args[2]);
	return 0;
}

SEC("raw_tp")
int hx_dns_recv(struct bpf_raw_tracepoint_args *ctx)
{
	struct hades_route *r = route_get(1);
	struct inflight *st = state_tmp();
	struct scratch *s = get_scratch();
	if (!r || !st || !s || !state_take(st, r->sc))
		return 0;
	long ret = ctx->args[1];
	if (ret <= 0)
		return 0;
	struct task_struct *t = cur_task();
	struct sk_addrs a = {};
	if (!inet_sock_of(t, (long)st->args[0], &a))
		return 0;
	struct u_msghdr m = {};
	__u64 src = 0;
	if (st->sc == HADES_SC_RECVFROM) {
		src = st->args[4];
	} else {
		if (read_msghdr(r->abi & HADES_ABI_IA32, st->args[1], &m))
			return 0;
		src = m.name;
	}
	if (a.rport != DNS_PORT) {
		/* unconnected socket: the sender address the kernel wrote back */
		if (!src || !dns_dest(src, &a))
			return 0;
	}
	struct hades_hook_counters *c = hook_counters(HADES_HOOK_DNS);
	if (!c)
		return 0;
	bump(&c->seen);
	if (st->sc == HADES_SC_RECVFROM)
		emit_dns(c, s, t, r, HADES_DNS_ANSWER, st->args[0], &a, ret, st->args[1], ret, 0, 0);
	else
		emit_dns(c, s, t, r, HADES_DNS_ANSWER, st->args[0], &a, ret, 0, ret, m.iov,
			 m.iovlen);
	return 0;
}

SEC("raw_tp")
int hx_cred(struct bpf_raw_tracepoint_args *ctx)
{
	struct hades_route *r = route_get(1);
	struct inflight *st = state_tmp();
	if (!r || !st || !state_take(st, r->sc))
		return 0;
	struct hades_hook_counters *c = hook_counters(HADES_HOOK_PRIV);
	if (!c)
		return 0;
	long ret = ctx->args[1];
	struct task_struct *t = cur_task();
	const struct cred *cr = BPF_CORE_READ(t, cred);
	__u32 ids[8];
	__u64 caps[3] = {};
	ids[0] = BPF_CORE_READ(cr, uid.val);
	ids[1] = BPF_CORE_READ(cr, gid.val);
	ids[2] = BPF_CORE_READ(cr, euid.val);
	ids[3] = BPF_CORE_READ(cr, egid.val);
	ids[4] = BPF_CORE_READ(cr, suid.val);
	ids[5] = BPF_CORE_READ(cr, sgid.val);
	ids[6] = BPF_CORE_READ(cr, fsuid.val);
	ids[7] = BPF_CORE_READ(cr, fsgid.val);
	bpf_core_read(&caps[0], 8, &cr->cap_effective);
	bpf_core_read(&caps[1], 8, &cr->cap_permitted);
	bpf_core_read(&caps[2], 8, &cr->cap_inheritable);
	__u16 changed = 0;
	for (int i = 0; i < 8; i++)
		if (ids[i] != st->cred.ids[i])
			changed |= 1u << i;
	for (int i = 0; i < 3; i++)
		if (caps[i] != st->cred.caps[i])
			changed |= 1u << (8 + i);
	/* no-op calls (e.g. setuid(0) as root) are noise; EPERM is an attempt
	 * to gain identities the process may not have */
	if (!changed && ret != -EPERM) {
		bump(&c->ignored);
		return 0;
	}
	struct hades_priv *p = bpf_ringbuf_reserve(&events, sizeof(*p), 0);
	if (!p) {
		bump(&c->dropped_ringbuf_full);
		return 0;
	}
	__builtin_memset(p, 0, sizeof(*p));
	sec_header(&p->hdr, HADES_KIND_PRIV_CHANGE, sizeof(*p), t);
	fill_proc(&p->proc, t);
	p->result = ret;
	p->syscall = st->sc;
	p->changed = changed;
	/* only the arguments the call has; the other registers are garbage */
	switch (st->sc) {
	case HADES_SC_SETRESUID:
	case HADES_SC_SETRESGID:
		p->args[2] = st->args[2];
		/* fallthrough */
	case HADES_SC_SETREUID:
	case HADES_SC_SETREGID:
		p->args[1] = st->args[1];
		/* fallthrough */
	case HADES_SC_SETUID:
	case HADES_SC_SETGID:
	case HADES_SC_SETFSUID:
	case HADES_SC_SETFSGID:
		p->args[0] = st->args[0];
	}
	for (int i = 0; i < 8; i++) {
		p->old_ids[i] = st->cred.ids[i];
		p->new_ids[i] = ids[i];
	}
	p->old_cap_effective = st->cred.caps[0];
	p->old_cap_permitted = st->cred.caps[1];
	p->old_cap_inheritable = st->cred.caps[2];
	p->new_cap_effective = caps[0];
	p->new_cap_permitted = caps[1];
	p->new_cap_inheritable = caps[2];
	bpf_ringbuf_submit(p, 0);
	bump(&c->sent);
	return 0;
}

SEC("raw_tp")
int hx_ptrace(struct bpf_raw_tracepoint_args *ctx)
{
	struct hades_route *r = route_get(1);
	struct inflight *st = state_tmp();
	if (!r || !st || !state_take(st, r->sc))
		return 0;
	struct hades_hook_counters *c = hook_counters(HADES_HOOK_PTRACE);
	if (!c)
		return 0;
	long ret = ctx->args[1];
	struct task_struct *t = cur_task();
	struct hades_ptrace *p = bpf_ringbuf_reserve(&events, sizeof(*p), 0);
	if (!p) {
		bump(&c->dropped_ringbuf_full);
		return 0;
	}
	__builtin_memset(p, 0, sizeof(*p));
	sec_header(&p->hdr, HADES_KIND_PTRACE, sizeof(*p), t);
	fill_proc(&p->proc, t);
	p->result = ret;
	if (st->sc == HADES_SC_PROCESS_VM_WRITEV) {
		/* pid, local iov, liovcnt, remote iov, riovcnt, flags: the pid is the caller's view,
		 * left for the agent to resolve (no tracee link to follow) */
		p->request = HADES_PTRACE_VM_WRITEV;
		p->target_pid = st->args[0];
		p->addr = st->args[3];
		p->data = st->args[4];
		p->hdr.missing |= HADES_M_TARGET;
		bpf_ringbuf_submit(p, 0);
		bump(&c->sent);
		return 0;
	}
	p->request = st->args[0];
	p->target_pid = st->args[1];
	p->addr = st->args[2];
	p->data = st->args[3];

	/* Target: TRACEME -> the parent; otherwise a tracee of this thread
	 * (ATTACH/SEIZE link it at the head of current->ptraced on success;
	 * POKE and SETREGS need an attached tracee). A failed ATTACH has no
	 * tracee to find: missing TARGET. Pids compare in the initial pid ns. */
	struct task_struct *target = NULL;
	if (st->args[0] == PTRACE_TRACEME) {
		target = BPF_CORE_READ(t, real_parent);
		p->target_pid = BPF_CORE_READ(target, tgid);
	} else {
		__u64 off = bpf_core_field_offset(struct task_struct, ptrace_entry);
		struct list_head *head = (void *)t + bpf_core_field_offset(struct task_struct, ptraced);
		struct list_head *pos = BPF_CORE_READ(head, next);
		for (int i = 0; i < PTRACED_SCAN; i++) {
			if (!pos || pos == head)
				break;
			struct task_struct *cand = (void *)pos - off;
			if (BPF_CORE_READ(cand, pid) == (__s32)st->args[1]) {
				target = cand;
				break;
			}
			pos = BPF_CORE_READ(pos, next);
		}
	}
	if (target) {
		p->target_tgid = BPF_CORE_READ(target, tgid);
		p->target_start_ns = process_start(target);
		BPF_CORE_READ_STR_INTO(&p->target_comm, target, group_leader, comm);
	} else {
		p->hdr.missing |= HADES_M_TARGET;
		bump(&c->read_errors);
	}
	bpf_ringbuf_submit(p, 0);
	bump(&c->sent);
	return 0;
}

SEC("raw_tp")
int hx_memfd(struct bpf_raw_tracepoint_args *ctx)
{
	struct hades_route *r = route_get(1);
	struct inflight *st = state_tmp();
	struct scratch *s = get_scratch();
	if (!r || !st || !s || !state_take(st, r->sc))
		return 0;
	struct hades_hook_counters *c = hook_counters(HADES_HOOK_MEMFD);
	if (!c)
		return 0;
	struct task_struct *t = cur_task();
	struct hades_memfd *m = (void *)s->rec;
	__builtin_memset(m, 0, sizeof(*m));
	sec_header(&m->hdr, HADES_KIND_MEMFD_CREATE, 0, t);
	fill_proc(&m->proc, t);
	m->result = ctx->args[1];
	m->flags = st->args[1];
	long n = bpf_probe_read_user_str(s->rec + sizeof(*m), MEMFD_NAME_MAX, (void *)st->args[0]);
	if (n > 0)
		m->name_len = n - 1;
	else
		m->hdr.missing |= HADES_M_NAME;
	submit_scratch(c, s, sizeof(*m) + (m->name_len & 255));
	return 0;
}

/* Appends the path of an open file at s->off; returns its length. */
static __always_inline __u32 append_file_path(struct scratch *s, struct file *f, __u32 *flags)
{
	if (!f)
		return 0;
	if (build_path(s, BPF_CORE_READ(f, f_path.dentry), BPF_CORE_READ(f, f_path.mnt)))
		*flags |= HADES_F_PATH_TRUNCATED;
	return append_path(s);
}

SEC("raw_tp")
int hx_module(struct bpf_raw_tracepoint_args *ctx)
{
	struct hades_route *r = route_get(1);
	struct inflight *st = state_tmp();
	struct scratch *s = get_scratch();
	if (!r || !st || !s || !state_take(st, r->sc))
		return 0;
	struct hades_hook_counters *c = hook_counters(HADES_HOOK_MODULE);
	if (!c)
		return 0;
	struct task_struct *t = cur_task();
	struct hades_module *m = (void *)s->rec;
	__builtin_memset(m, 0, sizeof(*m));
	sec_header(&m->hdr, HADES_KIND_MODULE_LOAD, 0, t);
	fill_proc(&m->proc, t);
	m->result = ctx->args[1];
	m->syscall = st->sc;
	m->fd = -1;
	if (st->extra)
		__builtin_memcpy(m->name, st->modname, sizeof(m->name));
	STORE(s->off, sizeof(*m));
	if (st->sc == HADES_SC_FINIT_MODULE) {
		__u32 fl = 0;
		m->fd = st->args[0];
		m->flags = st->args[2];
		struct file *f = fd_file(t, (long)st->args[0]);
		if (f) {
			m->path_len = append_file_path(s, f, &fl);
			m->hdr.flags |= fl;
		} else {
			m->hdr.missing |= HADES_M_PATH;
		}
	}
	submit_scratch(c, s, sizeof(*m) + (m->path_len & 4095));
	return 0;
}

/* Module name at load time, in the loading task's context. */
static __always_inline void on_module_load(struct module *mod)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct inflight *st = bpf_map_lookup_elem(&inflight, &tid);
	if (st && st->hook == HADES_HOOK_MODULE) {
		bpf_probe_read_kernel_str(st->modname, sizeof(st->modname), &mod->name);
		st->extra = 1;
		return;
	}
	/* not through a watched syscall (hook filtered or disabled at entry,
	 * or a syscall we do not route): report from here */
	struct task_struct *t = cur_task();
	struct hades_hook_counters *c = hook_begin(HADES_HOOK_MODULE, BPF_CORE_READ(t, tgid));
	if (!c)
		return;
	struct hades_module *m = bpf_ringbuf_reserve(&events, sizeof(*m), 0);
	if (!m) {
		bump(&c->dropped_ringbuf_full);
		return;
	}
	__builtin_memset(m, 0, sizeof(*m));
	sec_header(&m->hdr, HADES_KIND_MODULE_LOAD, sizeof(*m), t);
	fill_proc(&m->proc, t);
	m->fd = -1;
	bpf_probe_read_kernel_str(m->name, sizeof(m->name), &mod->name);
	bpf_ringbuf_submit(m, 0);
	bump(&c->sent);
}

SEC("tp_btf/module_load")
int BPF_PROG(tpbtf_module_load, struct module *mod)
{
	on_module_load(mod);
	return 0;
}

SEC("raw_tp/module_load")
int raw_module_load(struct bpf_raw_tracepoint_args *ctx)
{
	on_module_load((struct module *)ctx->args[0]);
	return 0;
}

/*
 * Appends the absolute form of (dirfd, upath) at s->off: absolute paths as
 * given, relative ones behind the dirfd's (or cwd's) path from the dentry
 * walk. "." and ".." are not collapsed. Returns the length written.
 */
static __always_inline __u32 append_user_path(struct scratch *s, struct task_struct *t,
					      long dirfd, __u64 upath, __u32 *flags,
					      __u32 *missing)
{
	__u32 start = LOAD(s->off);
	char c0 = 0;

	if (!upath || bpf_probe_read_user(&c0, 1, (void *)upath)) {
		*missing |= HADES_M_PATH;
		return 0;
	}
	if (c0 != '/') {
		struct dentry *d = NULL;
		struct vfsmount *mnt = NULL;
		if ((int)dirfd == AT_FDCWD) {
			struct fs_struct *fs = BPF_CORE_READ(t, fs);
			d = BPF_CORE_READ(fs, pwd.dentry);
			mnt = BPF_CORE_READ(fs, pwd.mnt);
		} else {
			struct file *f = fd_file(t, (int)dirfd); /* an int: the upper half is ignored */
			if (f) {
				d = BPF_CORE_READ(f, f_path.dentry);
				mnt = BPF_CORE_READ(f, f_path.mnt);
			}
		}
		if (d) {
			if (build_path(s, d, mnt))
				*flags |= HADES_F_PATH_TRUNCATED;
			__u32 blen = append_path(s);
			__u32 off = LOAD(s->off);
			if (c0 && blen != 1) {
				s->rec[off & TAIL_OFF_MASK] = '/';
				STORE(s->off, off + 1);
			}
		} else {
			*missing |= HADES_M_PATH; /* stays relative */
		}
	}
	if (c0) {
		__u32 off = LOAD(s->off);
		long n = bpf_probe_read_user_str(s->rec + (off & TAIL_OFF_MASK), HADES_PATH_MAX,
						 (void *)upath);
		if (n > 1)
			STORE(s->off, off + ((n - 1) & (HADES_PATH_MAX - 1)));
	}
	return LOAD(s->off) - start;
}

/* Appends a user string as given (a symlink's target: not a path to resolve); returns its length. */
static __always_inline __u32 append_user_string(struct scratch *s, __u64 ustr, __u32 *flags,
						__u32 *missing)
{
	__u32 off = LOAD(s->off);
	long n = ustr ? bpf_probe_read_user_str(s->rec + (off & TAIL_OFF_MASK), HADES_PATH_MAX, (void *)ustr) : -1;
	if (n < 1) {
		*missing |= HADES_M_PATH;
		return 0;
	}
	if (n == HADES_PATH_MAX)
		*flags |= HADES_F_PATH_TRUNCATED;
	STORE(s->off, off + ((n - 1) & (HADES_PATH_MAX - 1)));
	return (n - 1) & (HADES_PATH_MAX - 1);
}

/* Bytes [0, n) of a 64-bit word (little-endian), n clamped to 0..8. */
static __always_inline __u64 byte_mask(int n)
{
	if (n <= 0)
		return 0;
	if (n >= 8)
		return ~0ULL;
	return (1ULL << (8 * n)) - 1;
}

/* win[0..len) == suf[0..len), both 32 bytes, compared as 4 masked words */
static __always_inline bool prefix_eq(const __u64 *win, const __u64 *suf, int len)
{
	__u64 diff = 0;
	for (int w = 0; w < 4; w++)
		diff |= (win[w] ^ suf[w]) & byte_mask(len - 8 * w);
	return diff == 0;
}

#define BYTES(c) (0x0101010101010101ULL * (__u8)(c))

/* The high bit of every byte of w equal to c (exact: no carries between bytes). */
static __always_inline __u64 eq_bytes(__u64 w, __u8 c)
{
	__u64 x = w ^ BYTES(c);
	return ~(((x & BYTES(0x7f)) + BYTES(0x7f)) | x | BYTES(0x7f));
}

/*
 * Is rec[start, start+len) below a FILE_PREFIX entry? A global (not
 * inlined) function: the verifier checks it once instead of once per path
 * through the caller. The component-end cursor goes through map memory so
 * the up to 255 exits of the search loop collapse into one verifier state.
 */
__noinline int path_watched(struct scratch *s, __u32 start, __u32 len)
{
	if (!s)
		return 0;
	struct hades_lpm_key *k = &s->lpm;
	__u32 n = len > HADES_PREFIX_MAX ? HADES_PREFIX_MAX : len;

	if (n == 0)
		return 0;
	/* zeroed so that bytes past the path compare as 0 below */
	for (int i = 0; i < 32; i++)
		((__u64 *)k->data)[i] = 0;
	barrier_var(n);
	if (bpf_probe_read_kernel(k->data, n & 255, s->rec + (start & TAIL_OFF_MASK)))
		return 0;
	k->prefixlen = n * 8;
	struct hades_prefix_val *v = bpf_map_lookup_elem(&file_prefix, k);
	if (!v)
		return 0;
	if (v->all)
		return 1;
	/* "PREFIX*" rules: skip one component, then compare the suffix */
	STORE(s->len, 0);
	for (int i = 0; i < HADES_PREFIX_MAX; i++) {
		__u32 idx = v->plen + i;
		if (idx >= n)
			break;
		if (k->data[idx & 255] == '/') {
			STORE(s->len, idx + 1);
			break;
		}
	}
	__u32 j = LOAD(s->len);
	if (j == 0 || j > HADES_PREFIX_MAX)
		return 0;
	__u64 win[4] = {};
	bpf_probe_read_kernel(win, sizeof(win), k->data + (j & 255));
	for (int q = 0; q < HADES_SUFFIXES; q++) {
		if (q >= v->nsuffix)
			break;
		int sl = v->slen[q] & HADES_SUFFIX_MAX;
		if (sl == 0 || j + sl > HADES_PREFIX_MAX)
			continue;
		__u64 suf[4];
		__builtin_memcpy(suf, v->suffix[q], sizeof(suf));
		if (prefix_eq(win, suf, sl))
			return 1;
		/* the directory itself: "/home/u/.ssh" for the rule ".ssh/" */
		if (j + sl - 1 == n && v->suffix[q][(sl - 1) & HADES_SUFFIX_MAX] == '/' &&
		    prefix_eq(win, suf, sl - 1))
			return 1;
	}
	return 0;
}

/*
 * Is the path path_watched left in s->lpm a temporary folder's file: below a FRESH_PREFIX, directly
 * or one folder below (`/tmp/x`, `/tmp/d/x`, not `/tmp/d/e/x`, where builds and caches unpack
 * thousands)? A global function, verified once, like path_watched.
 */
__noinline int fresh_place(struct scratch *s)
{
	if (!s)
		return 0;
	struct hades_lpm_key *k = &s->lpm;
	__u32 n = k->prefixlen / 8;
	if (n == 0 || n > HADES_PREFIX_MAX)
		return 0;
	__u32 *plen = bpf_map_lookup_elem(&fresh_prefix, k);
	if (!plen)
		return 0;
	__u32 from = *plen;
	/* The slashes in [from, n), counted a word of 8 bytes at a time: a loop over single bytes
	 * took the verifier half a second at each load. */
	int slashes = 0;
	for (int w = 0; w < 32; w++) {
		__u32 base = w * 8;
		if (base >= n)
			break;
		if (base + 8 <= from)
			continue;
		__u64 m = eq_bytes(((__u64 *)k->data)[w], '/');
		/* byte b of the word (b = 0 lowest, as read on little-endian) is bit 8b+7 of m */
		if (base + 8 > n)
			m &= (1ULL << (((n - base) & 7) * 8)) - 1;
		if (base < from)
			m &= ~((1ULL << (((from - base) & 7) * 8)) - 1);
		slashes += __builtin_popcountll(m);
		if (slashes > 1)
			return 0;
	}
	return 1;
}

/*
 * A regular file opened for writing in a temporary folder (the FILE_CREATE record of the call is
 * being sent): remember its identity, its writer and the time, for hx_file_open. A FILE_SECRET
 * file stays one. A file written again keeps its slot and takes the new time; it takes the new
 * writer only when the first one's write is older than HADES_FRESH_WINDOW_NS. A global
 * function (verified once; the task and file come as addresses, read with probe reads): inlined,
 * it pushed hx_file over the verifier's limit.
 */
__noinline int fresh_note(struct scratch *s, __u64 task_addr, __u64 file_addr)
{
	struct task_struct *t = (void *)task_addr;
	struct file *file = (void *)file_addr;
	if (!s || !file || !fresh_on || hook_disabled[HADES_HOOK_FILE_OPEN])
		return 0;
	if (!(BPF_CORE_READ(file, f_mode) & FMODE_WRITE))
		return 0;
	struct inode *ino = BPF_CORE_READ(file, f_inode);
	if ((BPF_CORE_READ(ino, i_mode) & S_IFMT) != S_IFREG || !fresh_place(s))
		return 0;
	struct hades_hook_counters *c = hook_counters(HADES_HOOK_FILE_OPEN);
	if (!c)
		return 0;
	struct hades_secret_key k = { .ino = BPF_CORE_READ(ino, i_ino),
				      .dev = BPF_CORE_READ(ino, i_sb, s_dev) };
	struct hades_watch_val v = { .kind = HADES_WATCH_FRESH,
				     .writer_tgid = BPF_CORE_READ(t, tgid),
				     .writer_start_ns = process_start(t),
				     .written_ns = bpf_ktime_get_boot_ns() };
	struct hades_watch_val *old = bpf_map_lookup_elem(&file_watch, &k);
	if (old) {
		if (old->kind != HADES_WATCH_FRESH)
			return 0;
		v.slot = old->slot;
		/* Another process's write still within the window keeps its writer: a reader that
		 * opens the file for writing first (`: >> /tmp/x; . /tmp/x`) does not become its writer
		 * and so exempt from the report. */
		if ((old->writer_tgid != v.writer_tgid || old->writer_start_ns != v.writer_start_ns) &&
		    v.written_ns - old->written_ns <= HADES_FRESH_WINDOW_NS) {
			v.writer_tgid = old->writer_tgid;
			v.writer_start_ns = old->writer_start_ns;
		}
		bpf_map_update_elem(&file_watch, &k, &v, BPF_ANY);
		return 0;
	}
	__u32 slot = __sync_fetch_and_add(&fresh_next, 1) & (HADES_FRESH_MAX - 1);
	struct hades_secret_key *rk = bpf_map_lookup_elem(&fresh_ring, &slot);
	if (!rk)
		return 0;
	if (rk->ino) {
		struct hades_secret_key gone = *rk;
		struct hades_watch_val *ev = bpf_map_lookup_elem(&file_watch, &gone);
		if (ev && ev->kind == HADES_WATCH_FRESH && ev->slot == slot &&
		    !bpf_map_delete_elem(&file_watch, &gone))
			bump(&c->evicted);
	}
	*rk = k;
	v.slot = slot;
	/* full only if the slots were outrun by concurrent notes: not remembered, counted */
	if (bpf_map_update_elem(&file_watch, &k, &v, BPF_ANY)) {
		bump(&c->dropped_state_full);
		return 0;
	}
	if (!fresh_used)
		fresh_used = 1;
	return 1;
}

/*
 * Does rec[start, start+len), an absolute path, have a component the kernel resolves but the
 * prefix match takes as text: an empty one ("//"), "." or ".."? `/usr/lib//systemd/system/x`
 * and `/root/../etc/cron.d/x` name watched files without starting with a watched prefix, so such
 * a path is reported wherever it points; the agent compares its lexical normal form with the
 * watched prefixes. Rare in practice. Eight bytes per turn, each '/' tested against the three
 * bytes after it (a byte-wise loop over 4 KiB is more than the verifier follows).
 */
__noinline int path_odd(struct scratch *s, __u32 start, __u32 len)
{
	if (!s || len == 0 || len > HADES_PATH_MAX || s->rec[start & TAIL_OFF_MASK] != '/')
		return 0;
	/* 16 NUL bytes after the path for the turns to read (what was there is put back) */
	__u8 *end = s->rec + ((start + len) & TAIL_OFF_MASK);
	__u64 saved[2] = {}, zero[2] = {};
	bpf_probe_read_kernel(saved, sizeof(saved), end);
	bpf_probe_read_kernel(end, sizeof(zero), zero);
	int odd = 0;
	for (int i = 0; i < HADES_PATH_MAX / 8 + 1; i++) {
		__u32 at = i * 8;
		if (at >= len)
			break;
		__u64 w[2] = {};
		bpf_probe_read_kernel(w, sizeof(w), s->rec + ((start + at) & TAIL_OFF_MASK));
		__u64 w1 = w[0] >> 8 | w[1] << 56, w2 = w[0] >> 16 | w[1] << 48;
		__u64 w3 = w[0] >> 24 | w[1] << 40;
		__u64 dot1 = eq_bytes(w1, '.'), dot2 = eq_bytes(w2, '.');
		__u64 end2 = eq_bytes(w2, '/') | eq_bytes(w2, 0);
		__u64 end3 = eq_bytes(w3, '/') | eq_bytes(w3, 0);
		if (eq_bytes(w[0], '/') & (eq_bytes(w1, '/') | (dot1 & end2) | (dot1 & dot2 & end3))) {
			odd = 1;
			break;
		}
	}
	bpf_probe_read_kernel(end, sizeof(saved), saved);
	return odd;
}

static __always_inline __u32 mode_flags(__u32 mode)
{
	__u32 f = 0;
	if (mode & 0111)
		f |= HADES_F_MODE_EXEC;
	if (mode & 04000)
		f |= HADES_F_MODE_SETUID;
	if (mode & 02000)
		f |= HADES_F_MODE_SETGID;
	return f;
}

static __always_inline bool open_family(__u8 sc)
{
	return sc == HADES_SC_OPEN || sc == HADES_SC_OPENAT || sc == HADES_SC_OPENAT2 ||
	       sc == HADES_SC_CREAT || sc == HADES_SC_OPEN_BY_HANDLE_AT;
}

/*
 * An open for writing of a file of the proc filesystem: /proc/PID/mem (or .../task/TID/mem), the
 * memory of process PID, written with pwrite at the addresses of its code: process injection
 * without ptrace. A PTRACE record (request HADES_PTRACE_MEM_OPEN), the target being the task of
 * the proc inode.
 */
static __noinline void proc_mem_open(struct task_struct *t, struct file *file, struct inode *ino,
				     long ret, __u32 op_flags)
{
	char name[4] = {};
	struct qstr q = BPF_CORE_READ(file, f_path.dentry, d_name);
	if (q.len != 3 || bpf_probe_read_kernel(name, 3, q.name) || name[0] != 'm' ||
	    name[1] != 'e' || name[2] != 'm')
		return;
	struct hades_hook_counters *c = hook_begin(HADES_HOOK_PTRACE, bpf_get_current_pid_tgid() >> 32);
	if (!c)
		return;
	struct hades_ptrace *p = bpf_ringbuf_reserve(&events, sizeof(*p), 0);
	if (!p) {
		bump(&c->dropped_ringbuf_full);
		return;
	}
	__builtin_memset(p, 0, sizeof(*p));
	sec_header(&p->hdr, HADES_KIND_PTRACE, sizeof(*p), t);
	fill_proc(&p->proc, t);
	p->result = ret;
	p->request = HADES_PTRACE_MEM_OPEN;
	p->data = op_flags;
	/* proc_inode { ..., struct inode vfs_inode }: its pid, and the task of that pid */
	struct proc_inode *pi = (void *)ino - bpf_core_field_offset(struct proc_inode, vfs_inode);
	struct pid *pid = BPF_CORE_READ(pi, pid);
	struct hlist_node *first = pid ? BPF_CORE_READ(pid, tasks[PIDTYPE_PID].first) : NULL;
	struct task_struct *target = first ? (void *)first - bpf_core_field_offset(struct task_struct, pid_links) : NULL;
	if (target) {
		p->target_pid = BPF_CORE_READ(target, pid);
		p->target_tgid = BPF_CORE_READ(target, tgid);
		p->target_start_ns = process_start(target);
		BPF_CORE_READ_STR_INTO(&p->target_comm, target, group_leader, comm);
	} else {
		p->hdr.missing |= HADES_M_TARGET;
		bump(&c->read_errors);
	}
	bpf_ringbuf_submit(p, 0);
	bump(&c->sent);
}

/* The FILE_CREATE / RENAME / DELETE / CHMOD record of a call staged at sys_enter. */
static __always_inline void file_record(struct bpf_raw_tracepoint_args *ctx, struct inflight *st,
					struct scratch *s)
{
	struct hades_hook_counters *c = hook_counters(st->hook);
	if (!c)
		return;
	long ret = ctx->args[1];
	if (is_restart(ret)) {
		bump(&c->ignored);
		return;
	}
	struct task_struct *t = cur_task();
	struct hades_file *f = (void *)s->rec;
	__u64 *a = st->args;
	__u32 flags = 0, missing = 0;
	__u8 kind = HADES_KIND_FILE_CREATE;

	__builtin_memset(f, 0, sizeof(*f));
	STORE(s->off, sizeof(*f));
	long dfd = AT_FDCWD, dfd2 = AT_FDCWD;
	__u64 p1 = 0, p2 = 0, raw2 = 0;
	switch (st->sc) {
	case HADES_SC_OPEN:
		p1 = a[0], f->op_flags = a[1], f->mode = a[2];
		break;
	case HADES_SC_CREAT:
		p1 = a[0], f->op_flags = 01101 /* O_CREAT|O_WRONLY|O_TRUNC */, f->mode = a[1];
		break;
	case HADES_SC_OPENAT:
		dfd = a[0], p1 = a[1], f->op_flags = a[2], f->mode = a[3];
		break;
	case HADES_SC_OPENAT2: {
		__u64 how[2] = {}; /* flags, mode */
		bpf_probe_read_user(how, sizeof(how), (void *)a[2]);
		/* the flags as read at entry: user memory may have changed since */
		dfd = a[0], p1 = a[1], f->op_flags = a[5], f->mode = how[1];
		break;
	}
	case HADES_SC_OPEN_BY_HANDLE_AT:
		f->op_flags = a[2]; /* no path argument: the path comes from the fd */
		break;
	case HADES_SC_MKDIR:
		p1 = a[0], f->mode = a[1];
		break;
	case HADES_SC_MKDIRAT:
		dfd = a[0], p1 = a[1], f->mode = a[2];
		break;
	/* links: path = the new name, path2 = the existing file (hard) or the target as given */
	case HADES_SC_LINK:
		p1 = a[1], p2 = a[0], flags |= HADES_F_LINK_HARD;
		break;
	case HADES_SC_LINKAT:
		dfd = a[2], p1 = a[3], dfd2 = a[0], p2 = a[1], f->op_flags = a[4];
		flags |= HADES_F_LINK_HARD;
		break;
	case HADES_SC_SYMLINK:
		p1 = a[1], raw2 = a[0], flags |= HADES_F_LINK_SYMBOLIC;
		break;
	/* emptied (length 0, checked at entry): op_flags O_TRUNC says so, as for an open. The
	 * argument is not resolved (`/var//log/x`, `/tmp/../var/log/x`, a link), so a successful
	 * truncate(path, 0), rare, is reported wherever it points; the agent normalises it. */
	case HADES_SC_TRUNCATE:
		p1 = a[0], f->op_flags = O_TRUNC;
		break;
	case HADES_SC_FTRUNCATE:
		f->op_flags = O_TRUNC;
		break;
	case HADES_SC_SYMLINKAT:
		dfd = a[1], p1 = a[2], raw2 = a[0], flags |= HADES_F_LINK_SYMBOLIC;
		break;
	case HADES_SC_RENAME:
		kind = HADES_KIND_FILE_RENAME, p1 = a[0], p2 = a[1];
		break;
	case HADES_SC_RENAMEAT:
	case HADES_SC_RENAMEAT2:
		kind = HADES_KIND_FILE_RENAME, dfd = a[0], p1 = a[1], dfd2 = a[2], p2 = a[3];
		if (st->sc == HADES_SC_RENAMEAT2)
			f->op_flags = a[4];
		break;
	case HADES_SC_UNLINK:
	case HADES_SC_RMDIR:
		kind = HADES_KIND_FILE_DELETE, p1 = a[0];
		if (st->sc == HADES_SC_RMDIR)
			f->op_flags = AT_REMOVEDIR;
		break;
	case HADES_SC_UNLINKAT:
		kind = HADES_KIND_FILE_DELETE, dfd = a[0], p1 = a[1], f->op_flags = a[2];
		break;
	case HADES_SC_CHMOD:
		kind = HADES_KIND_FILE_CHMOD, p1 = a[0], f->mode = a[1];
		break;
	case HADES_SC_FCHMOD:
		kind = HADES_KIND_FILE_CHMOD, f->mode = a[1];
		break;
	case HADES_SC_FCHMODAT:
	case HADES_SC_FCHMODAT2:
		kind = HADES_KIND_FILE_CHMOD, dfd = a[0], p1 = a[1], f->mode = a[2];
		if (st->sc == HADES_SC_FCHMODAT2)
			f->op_flags = a[3];
		break;
	default:
		return;
	}

	bool is_open = open_family(st->sc);
	struct file *file = NULL;
	if (is_open && ret >= 0)
		file = fd_file(t, ret);
	else if (st->sc == HADES_SC_FCHMOD || st->sc == HADES_SC_FTRUNCATE)
		file = fd_file(t, (__u32)a[0]); /* fchmod, ftruncate: unsigned int fd */
	/* An existing file opened for writing, neither created nor emptied: reported only when it
	 * is a regular file the open gave write access to (not /dev/null, a tty, O_PATH), so that
	 * the cost of the path stays with the rare writes into files. A failed attempt is not
	 * reported (no file to name). /proc/PID/mem is another process' memory: a PTRACE record. */
	if (is_open && !(f->op_flags & (O_CREAT | O_TRUNC))) {
		if (!file || !(BPF_CORE_READ(file, f_mode) & FMODE_WRITE)) {
			bump(&c->ignored);
			return;
		}
		struct inode *wi = BPF_CORE_READ(file, f_inode);
		if ((BPF_CORE_READ(wi, i_mode) & S_IFMT) != S_IFREG) {
			bump(&c->ignored);
			return;
		}
		if (BPF_CORE_READ(wi, i_sb, s_magic) == PROC_SUPER_MAGIC) {
			bump(&c->ignored);
			proc_mem_open(t, file, wi, ret, f->op_flags);
			return;
		}
	}
	if (file) {
		/* for hx_fresh_note: path_watched leaves this path in s->lpm (called for a setuid
		 * creation too, below) */
		STORE(s->note_file, (__u64)file);
		/* canonical path of the object itself: symlinks and ".." resolved */
		f->path_len = append_file_path(s, file, &flags);
		flags |= HADES_F_PATH_FROM_FD;
		struct inode *ino = BPF_CORE_READ(file, f_inode);
		f->inode = BPF_CORE_READ(ino, i_ino);
		if (is_open || st->sc == HADES_SC_FTRUNCATE)
			f->file_mode = BPF_CORE_READ(ino, i_mode);
		if (is_open && (BPF_CORE_READ(file, f_mode) & FMODE_CREATED))
			flags |= HADES_F_FILE_CREATED;
	} else {
		f->path_len = append_user_path(s, t, dfd, p1, &flags, &missing);
	}
	__u32 p1_len = f->path_len;
	if (p2)
		f->path2_len = append_user_path(s, t, dfd2, p2, &flags, &missing);
	else if (raw2)
		f->path2_len = append_user_string(s, raw2, &flags, &missing);

	/* a symbolic link's absolute target counts too: a link to /etc/shadow made in a web root */
	bool abs2 = raw2 && f->path2_len && s->rec[(sizeof(*f) + p1_len) & TAIL_OFF_MASK] == '/';
	/* an argument's "//", "." or ".." (not the canonical path of an opened file): checked
	 * only when the prefixes did not match, so watched places cost nothing more. A setuid bit
	 * given (chmod, or a file created with it) is reported wherever the file is: a setuid
	 * program anywhere runs as its owner. */
	bool setuid_given = (kind == HADES_KIND_FILE_CHMOD || (is_open && (f->op_flags & O_CREAT))) &&
			    (f->mode & 04000);
	/* hx_fresh_note reads the path from s->lpm, which path_watched leaves there: a file created
	 * with the setuid bit in a temporary folder (then chmod'ed and sourced) is remembered too */
	if (setuid_given && file && is_open)
		path_watched(s, sizeof(*f), p1_len);
	if (!setuid_given && !(st->sc == HADES_SC_TRUNCATE && ret == 0) && !path_watched(s, sizeof(*f), p1_len) &&
	    !((p2 || abs2) && path_watched(s, sizeof(*f) + p1_len, f->path2_len)) &&
	    !(!(flags & HADES_F_PATH_FROM_FD) && path_odd(s, sizeof(*f), p1_len)) &&
	    !((p2 || abs2) && path_odd(s, sizeof(*f) + p1_len, f->path2_len))) {
		bump(&c->ignored);
		return;
	}
	/* path_watched left p1 in s->lpm (an open has no p2). Not for openat2, whose flags the
	 * caller can change in its memory between the kernel's copy and the entry's read. */
	bool emptied = (f->op_flags & O_TRUNC) && !(f->op_flags & O_PATH);
	if (file && is_open && !setuid_given && st->sc != HADES_SC_OPENAT2 && !(flags & HADES_F_FILE_CREATED) && !emptied &&
	    bpf_map_lookup_elem(&file_quiet, &s->lpm)) {
		bump(&c->ignored);
		return;
	}

	if (st->sc == HADES_SC_FCHMOD) {
		if (st->extra)
			f->file_mode = st->extra & 0xffff;
		else
			missing |= HADES_M_MODE;
	} else if (kind == HADES_KIND_FILE_CHMOD || (is_open && !file) ||
		   st->sc == HADES_SC_MKDIR || st->sc == HADES_SC_MKDIRAT || st->sc == HADES_SC_TRUNCATE ||
		   (st->sc == HADES_SC_FTRUNCATE && !file) ||
		   (flags & (HADES_F_LINK_HARD | HADES_F_LINK_SYMBOLIC))) {
		missing |= HADES_M_MODE; /* path-based: no inode before or after */
	}
	/* a link call that succeeded made the new name */
	if ((flags & (HADES_F_LINK_HARD | HADES_F_LINK_SYMBOLIC)) && ret == 0)
		flags |= HADES_F_FILE_CREATED;
	if (kind == HADES_KIND_FILE_CHMOD)
		flags |= mode_flags(f->mode);
	else if (is_open)
		flags |= mode_flags(file ? f->file_mode : f->mode);

	sec_header(&f->hdr, kind, 0, t);
	fill_proc(&f->proc, t);
	f->hdr.flags |= flags;
	f->hdr.missing = missing;
	f->result = ret;
	f->syscall = st->sc;
	submit_scratch(c, s, LOAD(s->off));
}

/* any successful open may be of a FILE_SECRET or fresh file, whatever its flags: on to hx_file_open */
static __always_inline void to_file_open(struct bpf_raw_tracepoint_args *ctx, const struct hades_route *r)
{
	if ((file_secret_count || fresh_used) && open_family(r->sc) && (long)ctx->args[1] >= 0)
		bpf_tail_call(ctx, &exit_progs, HADES_HX_FILE_OPEN);
}

SEC("raw_tp")
int hx_file(struct bpf_raw_tracepoint_args *ctx)
{
	struct hades_route *r = route_get(1);
	struct inflight *st = state_tmp();
	struct scratch *s = get_scratch();
	if (!r || !st || !s)
		return 0;
	STORE(s->note_file, 0);
	STORE(s->lpm.prefixlen, 0);
	if (state_take(st, r->sc))
		file_record(ctx, st, s);
	/* an open that gave a file: hx_fresh_note looks at it (and goes on to hx_file_open) */
	if (fresh_on && open_family(r->sc) && LOAD(s->note_file))
		bpf_tail_call(ctx, &exit_progs, HADES_HX_FRESH_NOTE);
	to_file_open(ctx, r);
	return 0;
}

/* After hx_file, for an open that gave a file whose path was looked at: a file written in a
 * temporary folder is noted (fresh_note); then on to hx_file_open like hx_file. Apart from
 * hx_file, whose verification is near the verifier's limit. */
SEC("raw_tp")
int hx_fresh_note(struct bpf_raw_tracepoint_args *ctx)
{
	struct hades_route *r = route_get(1);
	struct scratch *s = get_scratch();
	if (!r || !s)
		return 0;
	fresh_note(s, (__u64)cur_task(), LOAD(s->note_file));
	to_file_open(ctx, r);
	return 0;
}

/* FILE_OPEN: the record of a successful open of a FILE_SECRET file (O_PATH opens, which give
 * no access to the content, excepted), or of a fresh file (`fresh`, w its entry, copied): its first open for reading
 * by each process other than its writer within HADES_FRESH_WINDOW_NS of the write. */
static __always_inline void file_open_record(long ret, struct file *file, struct hades_secret_key *k,
					     const struct hades_watch_val *w, bool fresh)
{
	struct hades_route *r = route_get(1);
	struct scratch *s = get_scratch();
	struct task_struct *t = cur_task();
	/* the dispatcher chose the route of the task's ABI: an open of either returns an fd */
	if (!r || !s || !open_family(r->sc))
		return;
	__u32 fflags = BPF_CORE_READ(file, f_flags);
	if (fflags & O_PATH)
		return;
	__u64 pt = bpf_get_current_pid_tgid();
	__u32 tgid = pt >> 32;
	struct hades_hook_counters *c = hook_begin(HADES_HOOK_FILE_OPEN, tgid);
	if (!c)
		return;
	__u64 age = 0;
	__u32 writer = 0;
	if (fresh) {
		__u64 now = bpf_ktime_get_boot_ns(), written = w->written_ns, start = process_start(t);
		writer = w->writer_tgid;
		age = now > written ? now - written : 0;
		if (!(BPF_CORE_READ(file, f_mode) & FMODE_READ) || age > HADES_FRESH_WINDOW_NS ||
		    (writer == tgid && w->writer_start_ns == start)) {
			bump(&c->ignored);
			return;
		}
		struct hades_fresh_seen_key sk = { .ino = k->ino, .dev = k->dev, .tgid = tgid,
						   .start_ns = start };
		__u64 *seen = bpf_map_lookup_elem(&fresh_seen, &sk);
		if (seen && *seen == written) {
			bump(&c->suppressed);
			return;
		}
		bpf_map_update_elem(&fresh_seen, &sk, &written, BPF_ANY);
	}
	struct hades_file *f = (void *)s->rec;
	__u32 flags = HADES_F_PATH_FROM_FD;
	__builtin_memset(f, 0, sizeof(*f));
	STORE(s->off, sizeof(*f));
	f->path_len = append_file_path(s, file, &flags);
	f->inode = k->ino;
	f->dev = k->dev;
	f->file_mode = BPF_CORE_READ(file, f_inode, i_mode);
	f->op_flags = fflags;
	if (fresh) {
		flags |= HADES_F_OPEN_FRESH;
		f->mode = age / 1000000;
		f->writer_pid = writer;
	}
	sec_header(&f->hdr, HADES_KIND_FILE_OPEN, 0, t);
	fill_proc(&f->proc, t);
	f->hdr.flags |= flags;
	f->result = ret;
	f->syscall = r->sc;
	submit_scratch(c, s, LOAD(s->off));
}

/* Every successful open of the host comes to one of these two (tail-called from hx_file, or
 * routed to directly when FILE_CREATE is off): the least work until the lookup, one lookup for
 * both kinds of file. This one reads the kernel's structures with probe reads, one helper call
 * each. */
SEC("raw_tp")
int hx_file_open(struct bpf_raw_tracepoint_args *ctx)
{
	long ret = ctx->args[1];
	if (!(file_secret_count || fresh_used) || hook_disabled[HADES_HOOK_FILE_OPEN] || ret < 0)
		return 0;
	struct file *file = fd_file(cur_task(), ret);
	if (!file)
		return 0;
	struct inode *ino = BPF_CORE_READ(file, f_inode);
	struct hades_secret_key k = { .ino = BPF_CORE_READ(ino, i_ino),
				      .dev = BPF_CORE_READ(ino, i_sb, s_dev) };
	struct hades_watch_val *w = bpf_map_lookup_elem(&file_watch, &k);
	if (w) {
		struct hades_watch_val wv = *w;
		file_open_record(ret, file, &k, &wv, wv.kind == HADES_WATCH_FRESH);
	}
	return 0;
}

/* The same with typed pointers (plain loads the kernel guards), about a third of the cost; the
 * loader chooses it where the kernel has bpf_rdonly_cast (6.2). */
SEC("raw_tp")
int hx_file_open_btf(struct bpf_raw_tracepoint_args *ctx)
{
	long ret = ctx->args[1];
	if (!(file_secret_count || fresh_used) || hook_disabled[HADES_HOOK_FILE_OPEN] || ret < 0)
		return 0;
	struct fdtable *fdt = bpf_get_current_task_btf()->files->fdt;
	if ((__u64)ret >= fdt->max_fds)
		return 0;
	struct file **arr = fdt->fd;
	struct file *raw = NULL;
	bpf_probe_read_kernel(&raw, sizeof(raw), arr + ret);
	if (!raw)
		return 0;
	struct file *file = bpf_rdonly_cast(raw, bpf_core_type_id_kernel(struct file));
	struct inode *ino = file->f_inode;
	struct hades_secret_key k = { .ino = ino->i_ino, .dev = ino->i_sb->s_dev };
	struct hades_watch_val *w = bpf_map_lookup_elem(&file_watch, &k);
	if (w) {
		struct hades_watch_val wv = *w;
		file_open_record(ret, raw, &k, &wv, wv.kind == HADES_WATCH_FRESH);
	}
	return 0;
}

/* FILE_TIMES: a file's times set to a given time (staged at sys_enter), in a watched place. */
SEC("raw_tp")
int hx_file_times(struct bpf_raw_tracepoint_args *ctx)
{
	struct inflight *st;
	struct scratch *s;
	struct hades_hook_counters *c = exit_begin(ctx, &st, &s);
	if (!c)
		return 0;
	long ret = ctx->args[1];
	struct task_struct *t = cur_task();
	struct hades_file_times *f = (void *)s->rec;
	__u64 *a = st->args;
	__u32 flags = 0, missing = 0;
	long dfd = AT_FDCWD;
	__u64 p1 = 0;

	__builtin_memset(f, 0, sizeof(*f));
	STORE(s->off, sizeof(*f));
	switch (st->sc) {
	case HADES_SC_UTIME:
	case HADES_SC_UTIMES:
		p1 = a[0];
		break;
	case HADES_SC_FUTIMESAT:
		dfd = a[0], p1 = a[1];
		break;
	case HADES_SC_UTIMENSAT:
		dfd = a[0], p1 = a[1], f->op_flags = a[3];
		break;
	default:
		return 0;
	}
	/* utimensat(fd, NULL, ...) (futimens), utimensat(fd, "", ..., AT_EMPTY_PATH) and
	 * futimesat(fd, NULL, ...) set the times of the descriptor's file */
	char c0 = 1;
	if (st->sc == HADES_SC_UTIMENSAT && p1 && (f->op_flags & AT_EMPTY_PATH_FLAG))
		bpf_probe_read_user(&c0, 1, (void *)p1);
	struct file *file = NULL;
	if ((st->sc == HADES_SC_UTIMENSAT || st->sc == HADES_SC_FUTIMESAT) && (!p1 || !c0))
		file = fd_file(t, (int)dfd);
	if (file) {
		f->path_len = append_file_path(s, file, &flags);
		flags |= HADES_F_PATH_FROM_FD;
		f->inode = BPF_CORE_READ(file, f_inode, i_ino);
	} else {
		f->path_len = append_user_path(s, t, dfd, p1, &flags, &missing);
	}
	if (!path_watched(s, sizeof(*f), f->path_len) &&
	    !(!(flags & HADES_F_PATH_FROM_FD) && path_odd(s, sizeof(*f), f->path_len))) {
		bump(&c->ignored);
		return 0;
	}
	sec_header(&f->hdr, HADES_KIND_FILE_TIMES, 0, t);
	fill_proc(&f->proc, t);
	f->hdr.flags |= flags;
	f->hdr.missing = missing;
	f->result = ret;
	f->syscall = st->sc;
	f->given = st->times.given;
	f->atime_sec = st->times.sec[0];
	f->mtime_sec = st->times.sec[1];
	submit_scratch(c, s, LOAD(s->off));
	return 0;
}

SEC("raw_tp")
int hx_kill(struct bpf_raw_tracepoint_args *ctx)
{
	struct hades_route *r = route_get(1);
	struct inflight *st = state_tmp();
	if (!r || !st || !state_take(st, r->sc))
		return 0;
	struct hades_hook_counters *c = hook_counters(HADES_HOOK_KILL);
	if (!c)
		return 0;
	struct task_struct *t = cur_task();
	struct hades_kill *k = bpf_ringbuf_reserve(&events, sizeof(*k), 0);
	if (!k) {
		bump(&c->dropped_ringbuf_full);
		return 0;
	}
	__builtin_memset(k, 0, sizeof(*k));
	sec_header(&k->hdr, HADES_KIND_KILL, sizeof(*k), t);
	fill_proc(&k->proc, t);
	k->result = ctx->args[1];
	k->syscall = st->sc;
	__s32 pid = st->args[0];
	switch (st->sc) {
	case HADES_SC_KILL:
		k->target_pid = pid;
		k->target_tgid = pid;
		k->signal = st->args[1];
		if (pid == -1)
			k->hdr.flags |= HADES_F_KILL_BROADCAST;
		else if (pid < 0)
			k->hdr.flags |= HADES_F_KILL_GROUP;
		break;
	case HADES_SC_TKILL:
		k->target_pid = pid;
		k->target_tgid = pid;
		k->signal = st->args[1];
		break;
	case HADES_SC_TGKILL:
		k->target_tgid = pid;
		k->target_pid = st->args[1];
		k->signal = st->args[2];
		break;
	case HADES_SC_PIDFD_SEND_SIGNAL:
		k->target_pid = st->args[5];
		k->target_tgid = st->args[5];
		k->signal = st->args[1];
		break;
	}
	bpf_ringbuf_submit(k, 0);
	bump(&c->sent);
	return 0;
}

/*
 * PROC_RENAME: task:task_rename, fired by __set_task_comm before the new name is copied in (so
 * task->comm is still the old one): prctl(PR_SET_NAME), writes to /proc/PID/comm and
 * /proc/PID/task/TID/comm (the kernel allows those only within the writer's thread group),
 * kernel threads naming themselves, and every exec. Exec's own rename comes first and costs one
 * load: the exec record already names the process, so it is skipped before any map is touched
 * (task->in_execve is set from the start of bprm_execve to its end; the loader does not load
 * this program on a kernel without that field). Threads rename themselves all the time
 * (pthread_setname_np in Java, Go, browsers, systemd): only the thread group leader's name is
 * the process's name (ps, top, /proc/PID/stat), so only its renames are reported, at most
 * HADES_RENAME_BURST per process per HADES_RENAME_WINDOW_NS; the others are counted
 * (dropped_rate_limit) and carried by the process's next record (unreported). A process that
 * stops renaming after a dropped one would keep its last name unreported: the budget keeps what
 * the loader needs to send that record itself once the window has passed (a catch-up record,
 * HADES_F_RENAME_CATCH_UP: ebpf.c rename_catch_up). The loader writes only rename_caught, the
 * budget is written here only, so no count of this program is ever overwritten.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, HADES_RENAME_MAP_ENTRIES);
	__type(key, __u32);
	__type(value, struct rename_caught);
} rename_caught SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, HADES_RENAME_MAP_ENTRIES);
	__type(key, __u32);
	__type(value, struct rename_budget);
} rename_budget SEC(".maps");

static __always_inline void on_task_rename(struct task_struct *task, const char *comm, bool btf)
{
	/* exec's own rename: the cheapest possible exit, the exec path must not get slower */
	if (btf ? BPF_CORE_READ_BITFIELD(task, in_execve) : BPF_CORE_READ_BITFIELD_PROBED(task, in_execve))
		return;
	struct hades_hook_counters *c = hook_counters(HADES_HOOK_TASK_RENAME);
	if (!c)
		return;
	bump(&c->seen);
	__u32 tgid = RD(btf, task, tgid);
	struct task_struct *cur = cur_task();
	/* a thread that is not the leader, a kernel thread, or (never seen: the kernel refuses
	 * it) another process's task */
	if (RD(btf, task, pid) != tgid || (RD(btf, task, flags) & PF_KTHREAD) ||
	    (__u32)(bpf_get_current_pid_tgid() >> 32) != tgid) {
		bump(&c->ignored);
		return;
	}
	if (hook_disabled[HADES_HOOK_TASK_RENAME]) {
		bump(&c->disabled);
		return;
	}
	if (filtered_out(tgid)) {
		bump(&c->filtered);
		return;
	}
	char oldc[16] = {}, newc[16] = {};
	bpf_probe_read_kernel_str(oldc, sizeof(oldc), &task->comm);
	bpf_probe_read_kernel_str(newc, sizeof(newc), comm);
	if (*(__u64 *)oldc == *(__u64 *)newc && *(__u64 *)(oldc + 8) == *(__u64 *)(newc + 8)) {
		bump(&c->ignored); /* the same name again */
		return;
	}
	__u64 now = bpf_ktime_get_boot_ns();
	__u64 start = process_start_t(task, btf);
	__u32 unreported = 0;
	struct rename_budget *b = bpf_map_lookup_elem(&rename_budget, &tgid);
	if (b && b->start_ns == start) {
		if (now - b->window_ns >= HADES_RENAME_WINDOW_NS) {
			b->window_ns = now;
			b->sent = 0;
		}
		if (b->sent >= HADES_RENAME_BURST) {
			if (b->dropped == b->carried)
				__builtin_memcpy(b->old_comm, oldc, sizeof(oldc));
			__builtin_memcpy(b->last_comm, newc, sizeof(newc));
			fill_proc(&b->proc, cur);
			__builtin_memcpy(b->proc.comm, oldc, sizeof(oldc));
			b->last_tid = (__u32)bpf_get_current_pid_tgid();
			b->last_ns = now;
			__sync_fetch_and_add(&b->dropped, 1);
			bump(&c->dropped_rate_limit);
			return;
		}
		b->sent++;
		__u32 dropped = b->dropped, from = b->carried;
		if (dropped != from) {
			/* some may have been sent by the loader already (catch-up records) */
			struct rename_caught *cu = bpf_map_lookup_elem(&rename_caught, &tgid);
			if (cu && cu->start_ns == start && (__s32)(cu->upto - from) > 0 &&
			    (__s32)(dropped - cu->upto) >= 0)
				from = cu->upto;
			unreported = dropped - from;
			b->carried = dropped;
		}
	} else {
		struct rename_budget nb = {};
		nb.start_ns = start;
		nb.window_ns = now;
		nb.sent = 1;
		bpf_map_update_elem(&rename_budget, &tgid, &nb, BPF_ANY);
	}
	struct hades_rename *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		bump(&c->dropped_ringbuf_full);
		return;
	}
	__builtin_memset(r, 0, sizeof(*r));
	sec_header(&r->hdr, HADES_KIND_PROC_RENAME, sizeof(*r), cur);
	fill_proc(&r->proc, cur);
	__builtin_memcpy(r->proc.comm, oldc, sizeof(oldc));
	__builtin_memcpy(r->old_comm, oldc, sizeof(oldc));
	__builtin_memcpy(r->new_comm, newc, sizeof(newc));
	r->target_tid = RD(btf, task, pid);
	r->unreported = unreported;
	bpf_ringbuf_submit(r, 0);
	bump(&c->sent);
}

SEC("tp_btf/task_rename")
int BPF_PROG(tpbtf_task_rename, struct task_struct *task, const char *comm)
{
	on_task_rename(task, comm, true);
	return 0;
}

SEC("raw_tp/task_rename")
int raw_task_rename(struct bpf_raw_tracepoint_args *ctx)
{
	on_task_rename((struct task_struct *)ctx->args[0], (const char *)ctx->args[1], false);
	return 0;
}
