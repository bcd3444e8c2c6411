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
#define HADES_RECORD_VERSION 1 /* every kind except EXEC */
#define HADES_EXEC_VERSION 2   /* v2 added the executable's identity (exe_ino ...) */

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
	/* security kinds (eBPF backend only); each starts with header + struct hades_proc */
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
	HADES_KIND_KILL = 16,
	HADES_KIND_FILE_OPEN = 17,
	HADES_KIND_PROC_RENAME = 18,
	HADES_KIND_FILE_TIMES = 19,
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
#define HADES_F_MODE_EXEC (1u << 10)          /* FILE_*: resulting mode has an execute bit */
#define HADES_F_MODE_SETUID (1u << 11)        /* FILE_*: resulting mode has S_ISUID */
#define HADES_F_MODE_SETGID (1u << 12)        /* FILE_*: resulting mode has S_ISGID */
#define HADES_F_FILE_CREATED (1u << 13)       /* FILE_CREATE: this call created the file */
#define HADES_F_PATH_TRUNCATED (1u << 14)     /* a path (base dir walk) hit a limit */
#define HADES_F_PATH_FROM_FD (1u << 15)       /* path resolved from the file itself (canonical) */
#define HADES_F_PAYLOAD_TRUNCATED (1u << 16)  /* DNS: payload cut at 512 bytes */
#define HADES_F_KILL_BROADCAST (1u << 17)     /* KILL: kill(-1, sig) */
#define HADES_F_KILL_GROUP (1u << 18)         /* KILL: target was a process group */
#define HADES_F_EXE_SETUID_ROOT (1u << 19)    /* EXEC: the executable is setuid (or setgid) and owned by root (uid or gid 0) */
#define HADES_F_LINK_HARD (1u << 20)          /* FILE_CREATE: link/linkat; path2 = the old name as given (PROTOCOL.md 2.13) */
#define HADES_F_LINK_SYMBOLIC (1u << 21)      /* FILE_CREATE: symlink/symlinkat; path2 = the target as given */
#define HADES_F_IA32 (1u << 22)               /* security records: made by an ia32 system call (a 32-bit program, or int 0x80) */
#define HADES_F_RENAME_CATCH_UP (1u << 23)    /* PROC_RENAME: sent by the loader for renames over the bound that no later record carried (PROTOCOL.md 2.16) */
#define HADES_F_OPEN_FRESH (1u << 24)         /* FILE_OPEN: a file freshly written in a temporary folder, not a FILE_SECRET (PROTOCOL.md 2.13) */
#define HADES_F_STDIN_DELETED (1u << 25)      /* EXEC: the file on standard input (stdin_path) has no link left (deleted) */

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
#define HADES_M_TARGET (1u << 15)   /* PTRACE: target task not resolved */
#define HADES_M_PATH (1u << 16)     /* FILE_x, MODULE_LOAD, CONNECT (unix): a path could not be read */
#define HADES_M_ADDR (1u << 17)     /* CONNECT/DNS: user sockaddr unreadable */
#define HADES_M_PAYLOAD (1u << 18)  /* DNS: payload unreadable */
#define HADES_M_MODE (1u << 19)     /* FILE_*: file_mode not known */
#define HADES_M_NAME (1u << 20)     /* MEMFD_CREATE/MODULE_LOAD: name not readable */
#define HADES_M_EXE_ID (1u << 21)   /* EXEC v2: exe_ino..exe_dev not readable */
#define HADES_M_EXIT_CODE (1u << 22) /* EXIT (cn_proc): the last thread's exit message was lost, exit_code unknown (0) */

struct hades_record_header {
	__u16 kind;
	__u16 version;   /* HADES_RECORD_VERSION; EXEC: HADES_EXEC_VERSION */
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
 * stdin_path, argv (argv = the raw NUL-separated argument area). Then zero padding to a
 * multiple of 8. Version 1 ended at reserved2 (336 bytes); version 2 appends
 * the identity of the executed file, so the agent can key its hash cache
 * without a racy stat() of the path. */
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
	__u16 stdin_path_len;  /* a regular file on fd 0 (`cmd < file`): its path, in the tail
				* between cgroup_path and argv; 0 = none or not read (reserved,
				* always 0, in drivers before 2026-12-01) */
	__u32 argv_len;        /* bytes of argv present in the tail */
	__u32 argv_orig_len;   /* full size of the argument area (arg_end - arg_start) */
	__u32 argc;            /* arguments, those cut off included (linux_binprm argc; cn_proc: only when
				* argv is cut, from the whole /proc/PID/cmdline); 0 = not known */
	/* v2: mm->exe_file's inode (cn_proc: stat of /proc/PID/exe) */
	__u64 exe_ino;
	__u64 exe_size;        /* bytes */
	__u64 exe_mtime_sec;   /* seconds since the epoch (s64 in the kernel) */
	__u64 exe_ctime_sec;
	__u32 exe_mtime_nsec;
	__u32 exe_ctime_nsec;
	__u32 exe_dev;         /* device of the filesystem: major << 20 | minor */
	__u32 reserved3;
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

/*
 * Security kinds (>= 4). Every one starts with the 32-byte header and this
 * 56-byte process context, so the agent can identify the process (pid +
 * start_ns) even when it has not seen its EXEC.
 */
struct hades_proc {
	__u64 start_ns;  /* process start, CLOCK_BOOTTIME ns (same value as EXEC.start_ns) */
	__u64 cgroup_id;
	__u32 ppid;
	__u32 uid, gid, euid, egid; /* at the time of the record */
	__u32 loginuid;  /* 0xffffffff = unset */
	char comm[16];
};

/* origin of a CONNECT record */
#define HADES_ORIGIN_SYSCALL 1     /* sys_exit of connect/accept/listen */
#define HADES_ORIGIN_TCP_ESTABLISHED 2 /* async: a pending (EINPROGRESS) connect completed */
#define HADES_ORIGIN_TCP_FAILED 3  /* async: a pending connect failed (result = -errno) */
/* a TCP connection opened without a watched connect(2) (sendto/sendmsg with MSG_FASTOPEN,
 * io_uring's IORING_OP_CONNECT): seen at the socket's CLOSE -> SYN_SENT
 * change, in the connecting task; result -115 (pending), completed as for EINPROGRESS */
#define HADES_ORIGIN_TCP_SYN_SENT 4

/* CONNECT (4), ACCEPT (5), LISTEN (6); tail: AF_UNIX path (path_len bytes) */
struct hades_net {
	struct hades_record_header hdr;
	struct hades_proc proc;
	__s32 result;        /* syscall return: 0 / new fd (accept) / -errno; -115 EINPROGRESS = pending */
	__u32 fd;            /* socket fd the call was made on (accept: the listening socket) */
	__u16 family;        /* AF_INET 2, AF_INET6 10, AF_UNIX 1 */
	__u16 sock_type;     /* SOCK_STREAM 1, SOCK_DGRAM 2, ... 0 = unknown */
	__u16 protocol;      /* IPPROTO_TCP 6, IPPROTO_UDP 17, 0 */
	__u16 local_port;    /* host order */
	__u16 remote_port;   /* host order */
	__u8 origin;         /* HADES_ORIGIN_* */
	__u8 reserved;
	__u32 repeat_count;  /* identical events suppressed since the previous record of this key */
	__u32 backlog;       /* LISTEN: backlog argument */
	__u16 path_len;      /* AF_UNIX: length of the path in the tail */
	__u16 reserved2;
	__u8 local_addr[16]; /* network order, IPv4 in the first 4 bytes */
	__u8 remote_addr[16];
};

#define HADES_DNS_QUERY 1  /* sent to port 53, captured at syscall entry */
#define HADES_DNS_ANSWER 2 /* received from port 53, captured at syscall exit */
#define HADES_DNS_PAYLOAD_MAX 512

/* DNS (7); tail: payload (payload_len bytes) */
struct hades_dns {
	struct hades_record_header hdr;
	struct hades_proc proc;
	__s32 result;        /* ANSWER: bytes received; QUERY: 0 (not known at entry) */
	__u32 fd;
	__u16 family;
	__u16 protocol;      /* 17 UDP, 6 TCP (TCP payloads start with the 2-byte length) */
	__u16 local_port;
	__u16 remote_port;   /* the resolver's port (53) */
	__u8 direction;      /* HADES_DNS_* */
	__u8 syscall;        /* HADES_SC_* */
	__u16 payload_len;   /* bytes in the tail, <= 512 */
	__u32 payload_orig_len; /* full message size (bytes asked to send / received) */
	__u8 local_addr[16];
	__u8 remote_addr[16];
};

/* PTRACE (8) request values that are no ptrace(2) requests: other ways to write into a process */
#define HADES_PTRACE_VM_WRITEV 0x10000 /* process_vm_writev(pid, ..., remote iov = addr, riovcnt = data) */
#define HADES_PTRACE_MEM_OPEN 0x10001  /* /proc/PID/mem opened for writing (data = open flags) */

/* PTRACE (8) */
struct hades_ptrace {
	struct hades_record_header hdr;
	struct hades_proc proc;
	__s32 result;
	__u32 request;       /* PTRACE_*, or HADES_PTRACE_VM_WRITEV / HADES_PTRACE_MEM_OPEN */
	__u32 target_pid;    /* pid argument (TRACEME: the parent) */
	__u32 target_tgid;   /* resolved target process, 0 if not (missing TARGET) */
	__u64 target_start_ns;
	__u64 addr;
	__u64 data;
	char target_comm[16];
};

/* MEMFD_CREATE (9); tail: name (name_len bytes, without the "memfd:" prefix) */
struct hades_memfd {
	struct hades_record_header hdr;
	struct hades_proc proc;
	__s32 result;        /* new fd or -errno */
	__u32 flags;         /* MFD_* */
	__u16 name_len;
	__u16 reserved[3];
};

/* MODULE_LOAD (10); tail: path of the finit_module fd (path_len bytes) */
struct hades_module {
	struct hades_record_header hdr;
	struct hades_proc proc;
	__s32 result;        /* syscall return; 0 when emitted from the tracepoint alone */
	__u16 syscall;       /* HADES_SC_INIT_MODULE / HADES_SC_FINIT_MODULE / 0 */
	__u16 path_len;
	__s32 fd;            /* finit_module fd, -1 otherwise */
	__u32 flags;         /* finit_module flags */
	char name[56];       /* module name from the module_load tracepoint, "" if not reached */
};

/* FILE_CREATE (12), FILE_RENAME (13), FILE_DELETE (14), FILE_CHMOD (15), FILE_OPEN (17);
 * tail: path (path_len), then path2 (path2_len: RENAME's new path) */
struct hades_file {
	struct hades_record_header hdr;
	struct hades_proc proc;
	__s32 result;
	__u16 syscall;       /* HADES_SC_* */
	__u16 reserved;
	__u32 op_flags;      /* open flags / renameat2 flags / unlinkat flags / fchmodat flags */
	__u32 mode;          /* CREATE: mode argument; CHMOD: new mode argument; OPEN with OPEN_FRESH: ms since the write (age_ms) */
	__u32 file_mode;     /* CREATE / OPEN: inode mode after the call; CHMOD (fchmod): mode before */
	__u32 dev;           /* OPEN: device of the file's filesystem, major << 20 | minor; else 0 */
	__u64 inode;         /* CREATE / fchmod: inode number when known */
	__u16 path_len;
	__u16 path2_len;
	__u32 writer_pid;    /* OPEN with OPEN_FRESH: tgid of the process that wrote the file; else 0 */
};

/* FILE_TIMES (19): a file's access or modification time set to a given time by utime, utimes,
 * futimesat or utimensat (calls that set them to now are not reported); tail: path (path_len) */
struct hades_file_times {
	struct hades_record_header hdr;
	struct hades_proc proc;
	__s32 result;
	__u16 syscall;       /* HADES_SC_UTIME / UTIMES / FUTIMESAT / UTIMENSAT */
	__u16 given;         /* HADES_TIMES_*: which times the call set, and how */
	__u32 op_flags;      /* utimensat flags (AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH) */
	__u32 reserved;
	__s64 atime_sec;     /* the access time given, seconds since the epoch (HADES_TIMES_ATIME) */
	__s64 mtime_sec;     /* the modification time given (HADES_TIMES_MTIME) */
	__u64 inode;         /* the file's inode when the call named it by descriptor, else 0 */
	__u16 path_len;
	__u16 reserved2[3];
};
#define HADES_TIMES_ATIME (1u << 0)     /* atime_sec given */
#define HADES_TIMES_MTIME (1u << 1)     /* mtime_sec given */
#define HADES_TIMES_ATIME_NOW (1u << 2) /* utimensat: the access time set to now (UTIME_NOW) */
#define HADES_TIMES_MTIME_NOW (1u << 3)

/* PRIV_CHANGE (11); proc.* creds are the new ones */
struct hades_priv {
	struct hades_record_header hdr;
	struct hades_proc proc;
	__s32 result;
	__u16 syscall;       /* HADES_SC_* */
	__u16 changed;       /* HADES_PRIV_CHANGED_* */
	__u32 args[3];       /* id arguments as passed (-1 = unchanged); capset: 0 */
	__u32 reserved;
	__u32 old_ids[8];    /* uid gid euid egid suid sgid fsuid fsgid before */
	__u32 new_ids[8];    /* same after */
	__u64 old_cap_effective, old_cap_permitted, old_cap_inheritable;
	__u64 new_cap_effective, new_cap_permitted, new_cap_inheritable;
};
/* changed bits: 0..7 = old_ids[i] != new_ids[i]; 8 eff, 9 prm, 10 inh caps */
#define HADES_PRIV_CHANGED_CAP_EFF (1u << 8)
#define HADES_PRIV_CHANGED_CAP_PRM (1u << 9)
#define HADES_PRIV_CHANGED_CAP_INH (1u << 10)

/* KILL (16) */
struct hades_kill {
	struct hades_record_header hdr;
	struct hades_proc proc;
	__s32 result;
	__u16 syscall;       /* HADES_SC_KILL / TKILL / TGKILL / PIDFD_SEND_SIGNAL */
	__u16 reserved;
	__s32 target_pid;    /* kill: pid argument; tkill/tgkill: tid; pidfd: the pidfd's pid */
	__s32 target_tgid;   /* tgkill: tgid argument; otherwise = target_pid */
	__u32 signal;
	__u32 reserved2;
};

/* PROC_RENAME (18): a process changed its name (comm) other than by exec: prctl(PR_SET_NAME),
 * a write to /proc/PID/comm or /proc/PID/task/TID/comm. Reported only for the thread group
 * leader (its comm is the process's name in ps, top and /proc/PID/stat), at most
 * HADES_RENAME_BURST per process per HADES_RENAME_WINDOW_NS. */
struct hades_rename {
	struct hades_record_header hdr; /* pid/tid: the thread that made the change */
	struct hades_proc proc;  /* its process; proc.comm: the leader's name before the change */
	__s32 result;            /* always 0: the kernel reports the change as it makes it */
	__u32 target_tid;        /* the renamed thread: the thread group leader (= hdr.pid) */
	char old_comm[16];       /* NUL-padded */
	char new_comm[16];       /* NUL-padded; the kernel keeps at most 15 bytes */
	__u32 unreported;        /* renames of this process over the rate bound since its previous record;
				  * HADES_F_RENAME_CATCH_UP: the renames this record stands for, the newest
				  * of which gave new_comm */
	__u32 reserved;
};
#define HADES_RENAME_BURST 8
#define HADES_RENAME_WINDOW_NS 1000000000ULL

/* Syscall identifiers on the wire (architecture independent). */
enum hades_sc {
	HADES_SC_NONE = 0,
	HADES_SC_CONNECT = 1,
	HADES_SC_ACCEPT = 2,
	HADES_SC_ACCEPT4 = 3,
	HADES_SC_LISTEN = 4,
	HADES_SC_SENDTO = 5,
	HADES_SC_SENDMSG = 6,
	HADES_SC_SENDMMSG = 7,
	HADES_SC_WRITE = 8,
	HADES_SC_WRITEV = 9,
	HADES_SC_RECVFROM = 10,
	HADES_SC_RECVMSG = 11,
	HADES_SC_SETUID = 12,
	HADES_SC_SETGID = 13,
	HADES_SC_SETREUID = 14,
	HADES_SC_SETREGID = 15,
	HADES_SC_SETRESUID = 16,
	HADES_SC_SETRESGID = 17,
	HADES_SC_SETFSUID = 18,
	HADES_SC_SETFSGID = 19,
	HADES_SC_CAPSET = 20,
	HADES_SC_PTRACE = 21,
	HADES_SC_MEMFD_CREATE = 22,
	HADES_SC_INIT_MODULE = 23,
	HADES_SC_FINIT_MODULE = 24,
	HADES_SC_OPEN = 25,
	HADES_SC_OPENAT = 26,
	HADES_SC_OPENAT2 = 27,
	HADES_SC_CREAT = 28,
	HADES_SC_MKDIR = 29,
	HADES_SC_MKDIRAT = 30,
	HADES_SC_RENAME = 31,
	HADES_SC_RENAMEAT = 32,
	HADES_SC_RENAMEAT2 = 33,
	HADES_SC_UNLINK = 34,
	HADES_SC_UNLINKAT = 35,
	HADES_SC_RMDIR = 36,
	HADES_SC_CHMOD = 37,
	HADES_SC_FCHMOD = 38,
	HADES_SC_FCHMODAT = 39,
	HADES_SC_FCHMODAT2 = 40,
	HADES_SC_KILL = 41,
	HADES_SC_TKILL = 42,
	HADES_SC_TGKILL = 43,
	HADES_SC_PIDFD_SEND_SIGNAL = 44,
	HADES_SC_OPEN_BY_HANDLE_AT = 45,
	HADES_SC_LINK = 46,
	HADES_SC_LINKAT = 47,
	HADES_SC_SYMLINK = 48,
	HADES_SC_SYMLINKAT = 49,
	HADES_SC_TRUNCATE = 50,
	HADES_SC_FTRUNCATE = 51,
	HADES_SC_PROCESS_VM_WRITEV = 52,
	HADES_SC_UTIME = 53,
	HADES_SC_UTIMES = 54,
	HADES_SC_FUTIMESAT = 55,
	HADES_SC_UTIMENSAT = 56,
	HADES_SC_COUNT = 57,
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
	HADES_HOOK_CONNECT = 3,
	HADES_HOOK_ACCEPT = 4,
	HADES_HOOK_LISTEN = 5,
	HADES_HOOK_DNS = 6,
	HADES_HOOK_PTRACE = 7,
	HADES_HOOK_MEMFD = 8,
	HADES_HOOK_MODULE = 9,
	HADES_HOOK_PRIV = 10,
	HADES_HOOK_FILE_CREATE = 11,
	HADES_HOOK_FILE_RENAME = 12,
	HADES_HOOK_FILE_DELETE = 13,
	HADES_HOOK_FILE_CHMOD = 14,
	HADES_HOOK_KILL = 15,
	HADES_HOOK_FILE_OPEN = 16,
	HADES_HOOK_TASK_RENAME = 17, /* task:task_rename tracepoint, not a syscall hook */
	HADES_HOOK_COUNT = 18,
};
#define HADES_HOOK_SLOTS 32 /* room for future hooks in the config arrays */

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
	__u64 suppressed;           /* CONNECT/ACCEPT: deduplicated (counted in repeat_count) */
	__u64 dropped_state_full;   /* sys_enter state map full: the event is lost */
	__u64 dropped_rate_limit;   /* TASK_RENAME: over the per-process bound (counted in unreported) */
	__u64 evicted;              /* FILE_OPEN: fresh temporary files forgotten to make room for newer ones */
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
	HADES_FILTER_FILE_PREFIX = 6, /* value: path prefix, 1..255 bytes, may hold one "*" component */
	HADES_FILTER_PROTECTED_PID = 7, /* value: u32 pid */
	HADES_FILTER_UNIX_PATH = 8,   /* value: AF_UNIX path prefix, 1..107 bytes */
	HADES_FILTER_CONNECT_DEDUP_MS = 9, /* SET, value: u32 window in ms, 0 = off */
	HADES_FILTER_FILE_QUIET = 10, /* value: path prefix, 1..255 bytes, no "*" */
	HADES_FILTER_FILE_SECRET = 11, /* value: struct hades_secret_key (16 bytes, pad 0) */
};

/* FILE_SECRET key: a file whose every open is reported (FILE_OPEN), by identity, so that
 * links, bind mounts and relative paths lead to it too */
struct hades_secret_key {
	__u64 ino;
	__u32 dev; /* major << 20 | minor, as the kernel's super_block.s_dev */
	__u32 pad; /* 0 */
};
#define HADES_SECRETS_MAX 4096
/* fresh temporary files remembered at once (FILE_OPEN with OPEN_FRESH; a power of two) */
#define HADES_FRESH_MAX 8192
/* how long after its write an open of a fresh temporary file is reported */
#define HADES_FRESH_WINDOW_NS (600ull * 1000000000ull)
/* PROTECTED_PID: Hades' own pids and the security daemons' the agent adds */
#define HADES_PROTECTED_MAX 1024

#define HADES_PREFIX_MAX 255      /* FILE_PREFIX / UNIX_PATH value length limit */
#define HADES_SUFFIX_MAX 31       /* length of the part after the "*" component */
#define HADES_SUFFIXES 16         /* "*" component rules per prefix */
#define HADES_CONNECT_DEDUP_DEFAULT_MS 1000

#define HADES_CGROUP_VAL_DENY 1
#define HADES_CGROUP_VAL_ALLOW 2

/* sizes are part of the protocol */
#define HADES_EXEC_FIXED_SIZE 384    /* version 2 */
#define HADES_EXEC_V1_FIXED_SIZE 336 /* version 1: up to reserved2 */
#define HADES_FORK_SIZE 88
#define HADES_EXIT_SIZE 64
#define HADES_NET_FIXED_SIZE 152
#define HADES_DNS_FIXED_SIZE 144
#define HADES_PTRACE_SIZE 144
#define HADES_MEMFD_FIXED_SIZE 104
#define HADES_MODULE_FIXED_SIZE 160
#define HADES_FILE_FIXED_SIZE 128
#define HADES_PRIV_SIZE 224
#define HADES_KILL_SIZE 112
#define HADES_RENAME_SIZE 136
_Static_assert(sizeof(struct hades_record_header) == 32, "header size");
_Static_assert(sizeof(struct hades_fd_info) == 56, "fd info size");
_Static_assert(sizeof(struct hades_exec) == HADES_EXEC_FIXED_SIZE, "exec size");
_Static_assert(sizeof(struct hades_exec) % 8 == 0, "exec tail starts 8-aligned");
_Static_assert(__builtin_offsetof(struct hades_exec, exe_ino) == HADES_EXEC_V1_FIXED_SIZE,
	       "v2 fields follow the v1 layout");
_Static_assert(__builtin_offsetof(struct hades_exec, exe_dev) == 376, "exe_dev offset");
_Static_assert(sizeof(struct hades_fork) == HADES_FORK_SIZE, "fork size");
_Static_assert(sizeof(struct hades_exit) == HADES_EXIT_SIZE, "exit size");
_Static_assert(sizeof(struct hades_proc) == 56, "proc size");
_Static_assert(sizeof(struct hades_net) == HADES_NET_FIXED_SIZE, "net size");
_Static_assert(sizeof(struct hades_dns) == HADES_DNS_FIXED_SIZE, "dns size");
_Static_assert(sizeof(struct hades_ptrace) == HADES_PTRACE_SIZE, "ptrace size");
_Static_assert(sizeof(struct hades_memfd) == HADES_MEMFD_FIXED_SIZE, "memfd size");
_Static_assert(sizeof(struct hades_module) == HADES_MODULE_FIXED_SIZE, "module size");
_Static_assert(sizeof(struct hades_file) == HADES_FILE_FIXED_SIZE, "file size");
_Static_assert(sizeof(struct hades_priv) == HADES_PRIV_SIZE, "priv size");
_Static_assert(sizeof(struct hades_kill) == HADES_KILL_SIZE, "kill size");
_Static_assert(sizeof(struct hades_rename) == HADES_RENAME_SIZE, "rename size");
_Static_assert(sizeof(struct hades_secret_key) == 16, "secret key size");

#endif
