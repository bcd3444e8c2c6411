/* SPDX-License-Identifier: MIT */
/*
 * Internal contract between the BPF programs and the loader (not part of the
 * wire protocol): syscall routing table, tail-call slots, prefix map layout.
 */
#ifndef HADES_BPF_SHARED_H
#define HADES_BPF_SHARED_H

#include "wire.h"

/* The syscall dispatchers look the syscall number up in this array (filled by
 * the loader from the host's __NR_* values, so the BPF side is independent of
 * the architecture's numbering) and tail-call the handler named there. */
#define HADES_SC_ROUTE_MAX 512

/* How a routed call passes its arguments (hades_route.abi) */
#define HADES_ABI_IA32 0x1       /* x86_64 compat task: args in bx, cx, dx, si, di, bp (32 bits), 32-bit user structs */
#define HADES_ABI_UID16 0x2      /* ia32 setuid & co. of 16-bit ids: (u16)-1 is -1 */
#define HADES_ABI_LEN64 0x4      /* ia32 truncate64/ftruncate64: the length is args 1 (low) and 2 (high) */
#define HADES_ABI_SOCKETCALL 0x8 /* a socketcall(2) call: args from its array of 32-bit words */
#define HADES_ABI_TIME64 0x10    /* ia32 utimensat_time64: 64-bit times in a compat task's call */

struct hades_route {
	__u8 enter; /* HADES_HE_* slot in enter_progs, 0 = nothing at sys_enter */
	__u8 exit;  /* HADES_HX_* slot in exit_progs, 0 = nothing at sys_exit */
	__u8 sc;    /* enum hades_sc: the same whatever the ABI */
	__u8 hook;  /* enum hades_hook */
	__u8 abi;   /* HADES_ABI_* */
	__u8 pad[3];
};

/* An sc_route entry: what number N means for a native task and, on x86_64, for a compat
 * (ia32) one. One lookup serves both, so a number routed in neither ABI costs what it did
 * before ia32 support; the task's compat flag is read only for numbers routed in either. */
struct hades_routes {
	struct hades_route native;
	struct hades_route ia32;
};

/* socketcall(2) call numbers (include/uapi/linux/net.h) go up to SYS_SENDMMSG = 20 */
#define HADES_SOCKETCALL_MAX 21

/* tail-call slots of the sys_enter handlers */
enum hades_enter_slot {
	HADES_HE_CONNECT = 1,  /* connect: sockaddr, unix path filter */
	HADES_HE_ARGS = 2,     /* generic: relevance check + argument capture */
	HADES_HE_DNS_SEND = 3, /* sendto/sendmsg/sendmmsg/write/writev to port 53: emits */
	HADES_HE_DNS_RECV = 4, /* recvfrom/recvmsg on a DNS-capable socket */
	HADES_HE_CRED = 5,     /* set*id/capset: old credentials */
	HADES_HE_SOCKETCALL = 6, /* ia32 socketcall: decodes the call, tail-calls its handler */
	HADES_HE_SLOTS = 8,
};

/* tail-call slots of the sys_exit handlers */
enum hades_exit_slot {
	HADES_HX_NET = 1,
	HADES_HX_DNS_RECV = 2,
	HADES_HX_CRED = 3,
	HADES_HX_PTRACE = 4,
	HADES_HX_MEMFD = 5,
	HADES_HX_MODULE = 6,
	HADES_HX_FILE = 7,
	HADES_HX_KILL = 8,
	HADES_HX_FILE_OPEN = 9, /* opens of FILE_SECRET files; also tail-called by HADES_HX_FILE */
	HADES_HX_SOCKETCALL = 10, /* ia32 socketcall: tail-calls the exit handler of its call */
	HADES_HX_FILE_TIMES = 11,
	HADES_HX_FRESH_NOTE = 12, /* tail-called by HADES_HX_FILE after an open in a watched place */
	HADES_HX_SLOTS = 16,
};

/* LPM trie key for FILE_PREFIX and UNIX_PATH: prefixlen in bits */
struct hades_lpm_key {
	__u32 prefixlen;
	__u8 data[256];
};

/* FILE_PREFIX value. `all`: everything below the prefix matches. Otherwise
 * only paths of the form PREFIX<one component>/<suffix...> match (rules added
 * as "PREFIX*" "/SUFFIX", e.g. "/home/" + "*" + "/.ssh/"). */
struct hades_prefix_val {
	__u16 plen;   /* prefix length in bytes */
	__u8 all;
	__u8 nsuffix;
	__u8 slen[HADES_SUFFIXES];
	char suffix[HADES_SUFFIXES][HADES_SUFFIX_MAX + 1];
};

/* PROC_RENAME rate bound, per process (security.bpf.h on_task_rename; the loader reads it for
 * catch-up records, ebpf.c rename_catch_up) */
#define HADES_RENAME_MAP_ENTRIES 4096

struct rename_budget {
	__u64 start_ns;  /* the process's start: a reused pid starts afresh */
	__u64 window_ns; /* start of the current window */
	__u64 last_ns;   /* time of the newest dropped rename */
	__u32 sent;      /* records in the window */
	__u32 dropped;   /* renames over the bound since the process's first record (wraps) */
	__u32 carried;   /* the value of dropped that this program's records have carried */
	__u32 last_tid;  /* the thread that made the newest dropped rename */
	char old_comm[16];  /* the name before the first rename dropped since the last record */
	char last_comm[16]; /* the name the newest dropped rename gave */
	struct hades_proc proc; /* the process at the newest dropped rename (comm: its old name) */
};

/* What the loader has reported of a budget's dropped renames in catch-up records: written by
 * the loader only (whole values), read here when a record carries dropped renames. */
struct rename_caught {
	__u64 start_ns;
	__u32 upto; /* rename_budget.dropped covered by the loader's records */
	__u32 reserved;
};

/* file_watch value: a FILE_SECRET key (kind SECRET, set by the loader) or a file freshly written
 * in a temporary folder (kind FRESH, set by the file_create handler, forgotten first in first out
 * through the fresh_ring slots) */
#define HADES_WATCH_SECRET 1
#define HADES_WATCH_FRESH 2
struct hades_watch_val {
	__u8 kind;
	__u8 pad[3];
	__u32 slot;            /* FRESH: its fresh_ring slot */
	__u32 writer_tgid;     /* FRESH: the process that wrote it */
	__u32 pad2;
	__u64 writer_start_ns; /* FRESH: that process's start (a reused pid is another process) */
	__u64 written_ns;      /* FRESH: boot-time ns of the write */
};

/* fresh_seen key: a (file, process) pair already reported */
struct hades_fresh_seen_key {
	__u64 ino;
	__u32 dev;
	__u32 tgid;
	__u64 start_ns;
};

/* FRESH_PREFIX entries (the temporary folders); value: the prefix length in bytes */
#define HADES_FRESH_PREFIXES 16

#endif
