/* SPDX-License-Identifier: MIT */
/*
 * Hades driver wire format, shared by the BPF programs, the loader and the
 * dump tool. PROTOCOL.md is the normative description; keep them in sync.
 *
 * Only __u8/__u16/__u32/__u64 are used so the header compiles both against
 * vmlinux.h (BPF side) and <linux/types.h> (user space). All integers are
 * little-endian on the wire (the driver only runs on little-endian hosts and
 * refuses to build elsewhere).
 */
#ifndef HADES_WIRE_H
#define HADES_WIRE_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "hades wire format is little-endian; big-endian hosts are not supported"
#endif

#define HADES_PROTOCOL_VERSION 1
#define HADES_RECORD_VERSION 1

/* ---- frames (both directions) ---- */
#define HADES_FRAME_HEADER_SIZE 8
#define HADES_FRAME_MAX_PAYLOAD (1u << 20)

/* driver -> agent */
#define HADES_FRAME_HELLO 1
#define HADES_FRAME_RECORDS 2
#define HADES_FRAME_STATS 3
#define HADES_FRAME_LOG 4
#define HADES_FRAME_ACK 5
/* agent -> driver */
#define HADES_FRAME_FILTER 0x81
#define HADES_FRAME_HOOK 0x82
#define HADES_FRAME_STATS_REQUEST 0x83

struct hades_frame_header {
	__u32 payload_len;
	__u16 type;
	__u16 flags; /* no flags defined yet; senders write 0, receivers ignore */
};

/* ---- records ---- */
enum hades_kind {
	HADES_KIND_EXEC = 1,
	HADES_KIND_FORK = 2,
	HADES_KIND_EXIT = 3,
	/* reserved, not emitted yet */
	HADES_KIND_CONNECT = 4,
	HADES_KIND_ACCEPT = 5,
	HADES_KIND_LISTEN = 6,
	HADES_KIND_DNS = 7,
	HADES_KIND_PTRACE = 8,
	HADES_KIND_MEMFD_CREATE = 9,
	HADES_KIND_MODULE_LOAD = 10,
	HADES_KIND_PRIV_CHANGE = 11,
	HADES_KIND_FILE_CREATE = 12,
	HADES_KIND_FILE_RENAME = 13,
	HADES_KIND_FILE_DELETE = 14,
	HADES_KIND_FILE_CHMOD = 15,
};

/* header.flags: one registry for all kinds */
#define HADES_F_CNPROC (1u << 0)              /* produced by the cn_proc backend */
#define HADES_F_ARGV_TRUNCATED (1u << 1)      /* argv cut at argv_max */
#define HADES_F_CWD_TRUNCATED (1u << 2)       /* cwd walk hit depth/size limit */
#define HADES_F_EXE_TRUNCATED (1u << 3)       /* exe path walk hit a limit */
#define HADES_F_FILENAME_TRUNCATED (1u << 4)
#define HADES_F_CGROUP_TRUNCATED (1u << 5)
#define HADES_F_EXE_DELETED (1u << 6)         /* exe inode nlink == 0 */
#define HADES_F_EXE_TMPFS (1u << 7)           /* exe lives on tmpfs/ramfs/shmem */
#define HADES_F_EXE_MEMFD (1u << 8)           /* exe is a memfd ("memfd:" name) */
#define HADES_F_START_TICKS (1u << 9)         /* start times have 1/CLK_TCK resolution */

/* header.missing: fields that could not be read (zero/empty in the record) */
#define HADES_M_FILENAME (1u << 0)
#define HADES_M_EXE (1u << 1)
#define HADES_M_ARGV (1u << 2)
#define HADES_M_CWD (1u << 3)
#define HADES_M_CREDS (1u << 4)     /* uid..fsgid, caps */
#define HADES_M_PARENT (1u << 5)    /* ppid, parent_start_ns */
#define HADES_M_PGID_SID (1u << 6)
#define HADES_M_TTY (1u << 7)
#define HADES_M_FDS (1u << 8)
#define HADES_M_CGROUP (1u << 9)    /* cgroup id and path */
#define HADES_M_NS (1u << 10)
#define HADES_M_COMM (1u << 11)
#define HADES_M_START (1u << 12)
#define HADES_M_LOGINUID (1u << 13) /* loginuid and audit session id */
#define HADES_M_CAPS (1u << 14)

struct hades_record_header {
	__u16 kind;
	__u16 version;   /* HADES_RECORD_VERSION */
	__u32 size;      /* total record size incl. header, multiple of 8 */
	__u64 ktime_ns;  /* CLOCK_BOOTTIME ns; add HELLO.boot_time_ns for wall clock */
	__u32 pid;       /* tgid of the task the event happened in */
	__u32 tid;       /* thread id of that task */
	__u32 flags;     /* HADES_F_* */
	__u32 missing;   /* HADES_M_* */
};

enum hades_fd_kind {
	HADES_FD_NONE = 0,   /* not open */
	HADES_FD_CHAR = 1,   /* character device (tty, /dev/null, ...) */
	HADES_FD_PIPE = 2,   /* pipe or FIFO */
	HADES_FD_SOCKET = 3,
	HADES_FD_FILE = 4,   /* regular file */
	HADES_FD_DIR = 5,
	HADES_FD_BLOCK = 6,
	HADES_FD_OTHER = 7,  /* anon inode, eventfd, symlink, ... */
	HADES_FD_UNKNOWN = 8, /* open but could not be inspected */
};

struct hades_fd_info {
	__u8 kind;          /* enum hades_fd_kind */
	__u8 family;        /* socket address family (AF_*) or 0 */
	__u16 sock_type;    /* SOCK_STREAM=1, SOCK_DGRAM=2, ... or 0 */
	__u16 protocol;     /* IPPROTO_* or 0 */
	__u16 reserved;
	__u64 inode;        /* inode number */
	__u16 local_port;   /* host order */
	__u16 remote_port;  /* host order */
	__u32 rdev;         /* char/block devices: major << 20 | minor */
	__u8 local_addr[16];  /* IPv4 in the first 4 bytes, network order */
	__u8 remote_addr[16];
};

/* EXEC: fixed part, then the tail strings in this order, each exactly *_len
 * bytes and not NUL-terminated: filename, exe_path, cwd, tty, cgroup_path,
 * argv (argv = the raw NUL-separated argument area). Then zero padding to a
 * multiple of 8. */
struct hades_exec {
	struct hades_record_header hdr;
	__u64 start_ns;        /* process start, CLOCK_BOOTTIME ns */
	__u64 parent_start_ns; /* real parent's start, CLOCK_BOOTTIME ns */
	__u64 cgroup_id;       /* cgroup v2 id (inode of the cgroup dir) */
	__u64 cap_effective;
	__u32 ppid;
	__u32 pgid;
	__u32 sid;
	__u32 uid, gid, euid, egid, suid, sgid, fsuid, fsgid;
	__u32 loginuid;        /* 0xffffffff = unset */
	__u32 audit_session;   /* 0xffffffff = unset */
	__u32 pid_ns;          /* pid namespace inode number */
	__u32 mnt_ns;          /* mount namespace inode number */
	__u32 tty_dev;         /* controlling tty: major << 20 | minor, 0 = none */
	char comm[16];         /* NUL-padded */
	struct hades_fd_info fds[3];
	__u16 filename_len;
	__u16 exe_len;
	__u16 cwd_len;
	__u16 tty_len;
	__u16 cgroup_len;
	__u16 reserved;
	__u32 argv_len;        /* bytes of argv present in the tail */
	__u32 argv_orig_len;   /* full size of the argument area (arg_end - arg_start) */
	__u32 reserved2;
};

struct hades_fork {
	struct hades_record_header hdr; /* pid/tid = the forking task */
	__u64 child_start_ns;
	__u64 parent_start_ns; /* start of the forking process */
	__u64 cgroup_id;
	__u32 child_pid;
	__u32 ppid;            /* child's real parent tgid (differs with CLONE_PARENT) */
	__u32 uid;
	__u32 gid;
	char comm[16];
};

struct hades_exit {
	struct hades_record_header hdr; /* pid = tgid, tid = last exiting thread */
	__u64 start_ns;
	__u32 exit_code;  /* wait status: (status << 8) | signal | 0x80 if core */
	__u32 ppid;
	char comm[16];
};

/* limits */
#define HADES_ARGV_MAX_LIMIT 32768
#define HADES_PATH_MAX 4096
#define HADES_TTY_MAX 64
#define HADES_CGROUP_PATH_MAX 1024
#define HADES_EXE_KEY_LEN 256 /* exe deny keys: paths shorter than this */

/* hooks; ids are stable and used by HOOK frames and STATS */
enum hades_hook {
	HADES_HOOK_EXEC = 0,
	HADES_HOOK_FORK = 1,
	HADES_HOOK_EXIT = 2,
	HADES_HOOK_COUNT = 3,
};
#define HADES_HOOK_SLOTS 16 /* room for future hooks in the config arrays */

/* per-hook counters, one per-CPU array entry per hook */
struct hades_hook_counters {
	__u64 seen;                 /* tracepoint hits */
	__u64 sent;                 /* records written to the ring buffer */
	__u64 filtered;             /* dropped by pid/exe/cgroup filters */
	__u64 dropped_ringbuf_full; /* ring buffer output failed */
	__u64 truncated;            /* records with a truncation flag */
	__u64 read_errors;          /* records with a missing bit */
	__u64 ignored;              /* not relevant (threads, non-final exits) */
	__u64 disabled;             /* hook disabled by HOOK frame */
};

/* FILTER frame payload (agent -> driver) */
enum hades_filter_op {
	HADES_FILTER_ADD = 1,
	HADES_FILTER_DEL = 2,
	HADES_FILTER_CLEAR = 3, /* value_len 0 */
	HADES_FILTER_SET = 4,   /* only for HADES_FILTER_CGROUP_MODE */
};

enum hades_filter_target {
	HADES_FILTER_PID_DENY = 1,    /* value: u32 pid */
	HADES_FILTER_EXE_DENY = 2,    /* value: path bytes, 1..255, no NUL */
	HADES_FILTER_CGROUP_DENY = 3, /* value: u64 cgroup id */
	HADES_FILTER_CGROUP_ALLOW = 4,/* value: u64 cgroup id */
	HADES_FILTER_CGROUP_MODE = 5, /* value: u32 0 = all, 1 = allow-list only */
};

#define HADES_CGROUP_VAL_DENY 1
#define HADES_CGROUP_VAL_ALLOW 2

/* sizes are part of the protocol */
#define HADES_EXEC_FIXED_SIZE 336
#define HADES_FORK_SIZE 88
#define HADES_EXIT_SIZE 64
_Static_assert(sizeof(struct hades_record_header) == 32, "header size");
_Static_assert(sizeof(struct hades_fd_info) == 56, "fd info size");
_Static_assert(sizeof(struct hades_exec) == HADES_EXEC_FIXED_SIZE, "exec size");
_Static_assert(sizeof(struct hades_fork) == HADES_FORK_SIZE, "fork size");
_Static_assert(sizeof(struct hades_exit) == HADES_EXIT_SIZE, "exit size");

#endif
