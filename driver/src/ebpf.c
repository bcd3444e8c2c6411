// SPDX-License-Identifier: MIT
/* eBPF backend: loads hades.bpf.c, attaches the hooks, drains the ring buffer. */
#include <dirent.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "bpf_shared.h"
#include "ia32_nr.h"
#include "driver.h"
#include "output.h"
#include "hades.skel.h"

/*
 * Program slots. Each slot is one program in tp_btf and/or raw_tp flavour;
 * a slot whose program fails to load falls back to the next flavour, then to
 * "not loaded", and the object is loaded again without it: one bad program
 * (e.g. a tracepoint this kernel lacks) never costs the other hooks.
 */
enum slot_id {
	S_EXEC, S_FORK, S_EXIT, S_SOCK_STATE, S_MODULE_TP, S_TASK_RENAME, S_SYS_ENTER, S_SYS_EXIT,
	S_HE_CONNECT, S_HE_ARGS, S_HE_DNS_SEND, S_HE_DNS_RECV, S_HE_CRED, S_HE_SOCKETCALL,
	S_HX_NET, S_HX_DNS_RECV, S_HX_CRED, S_HX_PTRACE, S_HX_MEMFD, S_HX_MODULE, S_HX_FILE,
	S_HX_KILL, S_HX_FILE_OPEN, S_HX_SOCKETCALL, S_HX_FILE_TIMES, S_HX_FRESH_NOTE, S_COUNT,
};

enum { CHOICE_BTF, CHOICE_RAW, CHOICE_NONE };

struct slot_def {
	const char *btf, *raw; /* program names; NULL = no such flavour */
	const char *tp;        /* attach point (NULL: tail-call target, not attached) */
	int he, hx;            /* tail-call slot in enter_progs / exit_progs */
	const char *btf_needs; /* tail-call target: kernel function its btf flavour calls */
};

static const struct slot_def slot_defs[S_COUNT] = {
	[S_EXEC] = { "tpbtf_exec", "raw_exec", "sched_process_exec", 0, 0 },
	[S_FORK] = { "tpbtf_fork", "raw_fork", "sched_process_fork", 0, 0 },
	[S_EXIT] = { "tpbtf_exit", "raw_exit", "sched_process_exit", 0, 0 },
	[S_SOCK_STATE] = { "tpbtf_sock_state", "raw_sock_state", "inet_sock_set_state", 0, 0 },
	[S_MODULE_TP] = { "tpbtf_module_load", "raw_module_load", "module_load", 0, 0 },
	[S_TASK_RENAME] = { "tpbtf_task_rename", "raw_task_rename", "task_rename", 0, 0 },
	/* both flavours are raw_tp; the first reads the compat flag with a plain load (5.11) */
	[S_SYS_ENTER] = { "sys_enter_dispatch", "sys_enter_dispatch_probe", "sys_enter", 0, 0 },
	[S_SYS_EXIT] = { "sys_exit_dispatch", "sys_exit_dispatch_probe", "sys_exit", 0, 0 },
	[S_HE_CONNECT] = { NULL, "he_connect", NULL, HADES_HE_CONNECT, 0 },
	[S_HE_ARGS] = { NULL, "he_args", NULL, HADES_HE_ARGS, 0 },
	[S_HE_DNS_SEND] = { NULL, "he_dns_send", NULL, HADES_HE_DNS_SEND, 0 },
	[S_HE_DNS_RECV] = { NULL, "he_dns_recv", NULL, HADES_HE_DNS_RECV, 0 },
	[S_HE_CRED] = { NULL, "he_cred", NULL, HADES_HE_CRED, 0 },
	[S_HE_SOCKETCALL] = { NULL, "he_socketcall", NULL, HADES_HE_SOCKETCALL, 0 },
	[S_HX_NET] = { NULL, "hx_net", NULL, 0, HADES_HX_NET },
	[S_HX_DNS_RECV] = { NULL, "hx_dns_recv", NULL, 0, HADES_HX_DNS_RECV },
	[S_HX_CRED] = { NULL, "hx_cred", NULL, 0, HADES_HX_CRED },
	[S_HX_PTRACE] = { NULL, "hx_ptrace", NULL, 0, HADES_HX_PTRACE },
	[S_HX_MEMFD] = { NULL, "hx_memfd", NULL, 0, HADES_HX_MEMFD },
	[S_HX_MODULE] = { NULL, "hx_module", NULL, 0, HADES_HX_MODULE },
	[S_HX_FILE] = { NULL, "hx_file", NULL, 0, HADES_HX_FILE },
	[S_HX_KILL] = { NULL, "hx_kill", NULL, 0, HADES_HX_KILL },
	[S_HX_FILE_TIMES] = { NULL, "hx_file_times", NULL, 0, HADES_HX_FILE_TIMES },
	/* not loaded: fresh temporary files are not noted (FILE_OPEN has only FILE_SECRET files) */
	[S_HX_FRESH_NOTE] = { NULL, "hx_fresh_note", NULL, 0, HADES_HX_FRESH_NOTE },
	[S_HX_FILE_OPEN] = { "hx_file_open_btf", "hx_file_open", NULL, 0, HADES_HX_FILE_OPEN, "bpf_rdonly_cast" },
	[S_HX_SOCKETCALL] = { NULL, "hx_socketcall", NULL, 0, HADES_HX_SOCKETCALL },
};

#ifndef __NR_fchmodat2
#define __NR_fchmodat2 452 /* Linux 6.6; same number on x86_64 and the generic table */
#endif

/* Syscalls routed to the security handlers: host numbering, then (x86_64) the ia32 numbering
 * and the calls of ia32's socketcall(2). A syscall may serve two hooks (the opens:
 * FILE_CREATE, FILE_OPEN; socketcall: every network hook); its route takes each side from
 * the first enabled hook that has one (route_of). The `sc` ids are the same in every ABI. */
struct sc_def {
	int nr;      /* __NR_* of the table `abi` names; a socketcall call number (SYS_*) */
	uint8_t sc, hook, he, hx;
	uint8_t abi; /* 0 = native; HADES_ABI_* */
};

enum sc_table { TABLE_NATIVE, TABLE_IA32, TABLE_SOCKETCALL };

static enum sc_table table_of(const struct sc_def *d)
{
	if (d->abi & HADES_ABI_SOCKETCALL)
		return TABLE_SOCKETCALL;
	return d->abi & HADES_ABI_IA32 ? TABLE_IA32 : TABLE_NATIVE;
}

#define SC(name, sc, hook, he, hx) { __NR_##name, HADES_SC_##sc, HADES_HOOK_##hook, he, hx, 0 }
/* ia32: numbers of ia32_nr.h */
#define SC32(name, sc, hook, he, hx, abi) \
	{ HADES_NR32_##name, HADES_SC_##sc, HADES_HOOK_##hook, he, hx, HADES_ABI_IA32 | (abi) }
#define SOCKETCALL(nr, sc, hook, he, hx) \
	{ nr, HADES_SC_##sc, HADES_HOOK_##hook, he, hx, HADES_ABI_IA32 | HADES_ABI_SOCKETCALL }
static const struct sc_def sc_defs[] = {
	SC(connect, CONNECT, CONNECT, HADES_HE_CONNECT, HADES_HX_NET),
	SC(accept, ACCEPT, ACCEPT, HADES_HE_ARGS, HADES_HX_NET),
	SC(accept4, ACCEPT4, ACCEPT, HADES_HE_ARGS, HADES_HX_NET),
	SC(listen, LISTEN, LISTEN, HADES_HE_ARGS, HADES_HX_NET),
	SC(sendto, SENDTO, DNS, HADES_HE_DNS_SEND, 0),
	SC(sendmsg, SENDMSG, DNS, HADES_HE_DNS_SEND, 0),
	SC(sendmmsg, SENDMMSG, DNS, HADES_HE_DNS_SEND, 0),
	SC(write, WRITE, DNS, HADES_HE_DNS_SEND, 0),
	SC(writev, WRITEV, DNS, HADES_HE_DNS_SEND, 0),
	SC(recvfrom, RECVFROM, DNS, HADES_HE_DNS_RECV, HADES_HX_DNS_RECV),
	SC(recvmsg, RECVMSG, DNS, HADES_HE_DNS_RECV, HADES_HX_DNS_RECV),
	SC(setuid, SETUID, PRIV, HADES_HE_CRED, HADES_HX_CRED),
	SC(setgid, SETGID, PRIV, HADES_HE_CRED, HADES_HX_CRED),
	SC(setreuid, SETREUID, PRIV, HADES_HE_CRED, HADES_HX_CRED),
	SC(setregid, SETREGID, PRIV, HADES_HE_CRED, HADES_HX_CRED),
	SC(setresuid, SETRESUID, PRIV, HADES_HE_CRED, HADES_HX_CRED),
	SC(setresgid, SETRESGID, PRIV, HADES_HE_CRED, HADES_HX_CRED),
	SC(setfsuid, SETFSUID, PRIV, HADES_HE_CRED, HADES_HX_CRED),
	SC(setfsgid, SETFSGID, PRIV, HADES_HE_CRED, HADES_HX_CRED),
	SC(capset, CAPSET, PRIV, HADES_HE_CRED, HADES_HX_CRED),
	SC(ptrace, PTRACE, PTRACE, HADES_HE_ARGS, HADES_HX_PTRACE),
	SC(process_vm_writev, PROCESS_VM_WRITEV, PTRACE, HADES_HE_ARGS, HADES_HX_PTRACE),
	SC(memfd_create, MEMFD_CREATE, MEMFD, HADES_HE_ARGS, HADES_HX_MEMFD),
	SC(init_module, INIT_MODULE, MODULE, HADES_HE_ARGS, HADES_HX_MODULE),
	SC(finit_module, FINIT_MODULE, MODULE, HADES_HE_ARGS, HADES_HX_MODULE),
#ifdef __NR_open
	SC(open, OPEN, FILE_CREATE, HADES_HE_ARGS, HADES_HX_FILE),
	SC(creat, CREAT, FILE_CREATE, HADES_HE_ARGS, HADES_HX_FILE),
	SC(mkdir, MKDIR, FILE_CREATE, HADES_HE_ARGS, HADES_HX_FILE),
	SC(rename, RENAME, FILE_RENAME, HADES_HE_ARGS, HADES_HX_FILE),
	SC(unlink, UNLINK, FILE_DELETE, HADES_HE_ARGS, HADES_HX_FILE),
	SC(rmdir, RMDIR, FILE_DELETE, HADES_HE_ARGS, HADES_HX_FILE),
	SC(chmod, CHMOD, FILE_CHMOD, HADES_HE_ARGS, HADES_HX_FILE),
	SC(link, LINK, FILE_CREATE, HADES_HE_ARGS, HADES_HX_FILE),
	SC(symlink, SYMLINK, FILE_CREATE, HADES_HE_ARGS, HADES_HX_FILE),
#endif
	SC(openat, OPENAT, FILE_CREATE, HADES_HE_ARGS, HADES_HX_FILE),
	SC(openat2, OPENAT2, FILE_CREATE, HADES_HE_ARGS, HADES_HX_FILE),
	SC(open_by_handle_at, OPEN_BY_HANDLE_AT, FILE_CREATE, HADES_HE_ARGS, HADES_HX_FILE),
	SC(mkdirat, MKDIRAT, FILE_CREATE, HADES_HE_ARGS, HADES_HX_FILE),
	SC(linkat, LINKAT, FILE_CREATE, HADES_HE_ARGS, HADES_HX_FILE),
	SC(symlinkat, SYMLINKAT, FILE_CREATE, HADES_HE_ARGS, HADES_HX_FILE),
	SC(truncate, TRUNCATE, FILE_CREATE, HADES_HE_ARGS, HADES_HX_FILE),
	SC(ftruncate, FTRUNCATE, FILE_CREATE, HADES_HE_ARGS, HADES_HX_FILE),
	SC(renameat, RENAMEAT, FILE_RENAME, HADES_HE_ARGS, HADES_HX_FILE),
	SC(renameat2, RENAMEAT2, FILE_RENAME, HADES_HE_ARGS, HADES_HX_FILE),
	SC(unlinkat, UNLINKAT, FILE_DELETE, HADES_HE_ARGS, HADES_HX_FILE),
	SC(fchmod, FCHMOD, FILE_CHMOD, HADES_HE_ARGS, HADES_HX_FILE),
	SC(fchmodat, FCHMODAT, FILE_CHMOD, HADES_HE_ARGS, HADES_HX_FILE),
	SC(fchmodat2, FCHMODAT2, FILE_CHMOD, HADES_HE_ARGS, HADES_HX_FILE),
	/* timestamps set to a given time: attribute changes, under the file_chmod hook */
#ifdef __NR_utime
	SC(utime, UTIME, FILE_CHMOD, HADES_HE_ARGS, HADES_HX_FILE_TIMES),
	SC(utimes, UTIMES, FILE_CHMOD, HADES_HE_ARGS, HADES_HX_FILE_TIMES),
	SC(futimesat, FUTIMESAT, FILE_CHMOD, HADES_HE_ARGS, HADES_HX_FILE_TIMES),
#endif
	SC(utimensat, UTIMENSAT, FILE_CHMOD, HADES_HE_ARGS, HADES_HX_FILE_TIMES),
	SC(kill, KILL, KILL, HADES_HE_ARGS, HADES_HX_KILL),
	SC(tkill, TKILL, KILL, HADES_HE_ARGS, HADES_HX_KILL),
	SC(tgkill, TGKILL, KILL, HADES_HE_ARGS, HADES_HX_KILL),
	SC(pidfd_send_signal, PIDFD_SEND_SIGNAL, KILL, HADES_HE_ARGS, HADES_HX_KILL),
	/* after FILE_CREATE: hx_file tail-calls hx_file_open, which is routed to directly
	 * only when FILE_CREATE is off */
#ifdef __NR_open
	SC(open, OPEN, FILE_OPEN, 0, HADES_HX_FILE_OPEN),
	SC(creat, CREAT, FILE_OPEN, 0, HADES_HX_FILE_OPEN),
#endif
	SC(openat, OPENAT, FILE_OPEN, 0, HADES_HX_FILE_OPEN),
	SC(openat2, OPENAT2, FILE_OPEN, 0, HADES_HX_FILE_OPEN),
	SC(open_by_handle_at, OPEN_BY_HANDLE_AT, FILE_OPEN, 0, HADES_HX_FILE_OPEN),
#if defined(__x86_64__)
	SC32(connect, CONNECT, CONNECT, HADES_HE_CONNECT, HADES_HX_NET, 0),
	SC32(accept4, ACCEPT4, ACCEPT, HADES_HE_ARGS, HADES_HX_NET, 0),
	SC32(listen, LISTEN, LISTEN, HADES_HE_ARGS, HADES_HX_NET, 0),
	SC32(sendto, SENDTO, DNS, HADES_HE_DNS_SEND, 0, 0),
	SC32(sendmsg, SENDMSG, DNS, HADES_HE_DNS_SEND, 0, 0),
	SC32(sendmmsg, SENDMMSG, DNS, HADES_HE_DNS_SEND, 0, 0),
	SC32(write, WRITE, DNS, HADES_HE_DNS_SEND, 0, 0),
	SC32(writev, WRITEV, DNS, HADES_HE_DNS_SEND, 0, 0),
	SC32(recvfrom, RECVFROM, DNS, HADES_HE_DNS_RECV, HADES_HX_DNS_RECV, 0),
	SC32(recvmsg, RECVMSG, DNS, HADES_HE_DNS_RECV, HADES_HX_DNS_RECV, 0),
	/* socketcall(2): routed while any network hook is; each call by socketcall_route */
	SC32(socketcall, NONE, CONNECT, HADES_HE_SOCKETCALL, HADES_HX_SOCKETCALL, 0),
	SC32(socketcall, NONE, ACCEPT, HADES_HE_SOCKETCALL, HADES_HX_SOCKETCALL, 0),
	SC32(socketcall, NONE, LISTEN, HADES_HE_SOCKETCALL, HADES_HX_SOCKETCALL, 0),
	SC32(socketcall, NONE, DNS, HADES_HE_SOCKETCALL, HADES_HX_SOCKETCALL, 0),
	/* set*id of 16-bit ids (the old calls) and of 32-bit ones (the *32 calls) */
	SC32(setuid, SETUID, PRIV, HADES_HE_CRED, HADES_HX_CRED, HADES_ABI_UID16),
	SC32(setgid, SETGID, PRIV, HADES_HE_CRED, HADES_HX_CRED, HADES_ABI_UID16),
	SC32(setreuid, SETREUID, PRIV, HADES_HE_CRED, HADES_HX_CRED, HADES_ABI_UID16),
	SC32(setregid, SETREGID, PRIV, HADES_HE_CRED, HADES_HX_CRED, HADES_ABI_UID16),
	SC32(setresuid, SETRESUID, PRIV, HADES_HE_CRED, HADES_HX_CRED, HADES_ABI_UID16),
	SC32(setresgid, SETRESGID, PRIV, HADES_HE_CRED, HADES_HX_CRED, HADES_ABI_UID16),
	SC32(setfsuid, SETFSUID, PRIV, HADES_HE_CRED, HADES_HX_CRED, HADES_ABI_UID16),
	SC32(setfsgid, SETFSGID, PRIV, HADES_HE_CRED, HADES_HX_CRED, HADES_ABI_UID16),
	SC32(setuid32, SETUID, PRIV, HADES_HE_CRED, HADES_HX_CRED, 0),
	SC32(setgid32, SETGID, PRIV, HADES_HE_CRED, HADES_HX_CRED, 0),
	SC32(setreuid32, SETREUID, PRIV, HADES_HE_CRED, HADES_HX_CRED, 0),
	SC32(setregid32, SETREGID, PRIV, HADES_HE_CRED, HADES_HX_CRED, 0),
	SC32(setresuid32, SETRESUID, PRIV, HADES_HE_CRED, HADES_HX_CRED, 0),
	SC32(setresgid32, SETRESGID, PRIV, HADES_HE_CRED, HADES_HX_CRED, 0),
	SC32(setfsuid32, SETFSUID, PRIV, HADES_HE_CRED, HADES_HX_CRED, 0),
	SC32(setfsgid32, SETFSGID, PRIV, HADES_HE_CRED, HADES_HX_CRED, 0),
	SC32(capset, CAPSET, PRIV, HADES_HE_CRED, HADES_HX_CRED, 0),
	SC32(ptrace, PTRACE, PTRACE, HADES_HE_ARGS, HADES_HX_PTRACE, 0),
	SC32(process_vm_writev, PROCESS_VM_WRITEV, PTRACE, HADES_HE_ARGS, HADES_HX_PTRACE, 0),
	SC32(memfd_create, MEMFD_CREATE, MEMFD, HADES_HE_ARGS, HADES_HX_MEMFD, 0),
	SC32(init_module, INIT_MODULE, MODULE, HADES_HE_ARGS, HADES_HX_MODULE, 0),
	SC32(finit_module, FINIT_MODULE, MODULE, HADES_HE_ARGS, HADES_HX_MODULE, 0),
	SC32(open, OPEN, FILE_CREATE, HADES_HE_ARGS, HADES_HX_FILE, 0),
	SC32(creat, CREAT, FILE_CREATE, HADES_HE_ARGS, HADES_HX_FILE, 0),
	SC32(mkdir, MKDIR, FILE_CREATE, HADES_HE_ARGS, HADES_HX_FILE, 0),
	SC32(rename, RENAME, FILE_RENAME, HADES_HE_ARGS, HADES_HX_FILE, 0),
	SC32(unlink, UNLINK, FILE_DELETE, HADES_HE_ARGS, HADES_HX_FILE, 0),
	SC32(rmdir, RMDIR, FILE_DELETE, HADES_HE_ARGS, HADES_HX_FILE, 0),
	SC32(chmod, CHMOD, FILE_CHMOD, HADES_HE_ARGS, HADES_HX_FILE, 0),
	SC32(link, LINK, FILE_CREATE, HADES_HE_ARGS, HADES_HX_FILE, 0),
	SC32(symlink, SYMLINK, FILE_CREATE, HADES_HE_ARGS, HADES_HX_FILE, 0),
	SC32(openat, OPENAT, FILE_CREATE, HADES_HE_ARGS, HADES_HX_FILE, 0),
	SC32(openat2, OPENAT2, FILE_CREATE, HADES_HE_ARGS, HADES_HX_FILE, 0),
	SC32(open_by_handle_at, OPEN_BY_HANDLE_AT, FILE_CREATE, HADES_HE_ARGS, HADES_HX_FILE, 0),
	SC32(mkdirat, MKDIRAT, FILE_CREATE, HADES_HE_ARGS, HADES_HX_FILE, 0),
	SC32(linkat, LINKAT, FILE_CREATE, HADES_HE_ARGS, HADES_HX_FILE, 0),
	SC32(symlinkat, SYMLINKAT, FILE_CREATE, HADES_HE_ARGS, HADES_HX_FILE, 0),
	SC32(truncate, TRUNCATE, FILE_CREATE, HADES_HE_ARGS, HADES_HX_FILE, 0),
	SC32(ftruncate, FTRUNCATE, FILE_CREATE, HADES_HE_ARGS, HADES_HX_FILE, 0),
	SC32(truncate64, TRUNCATE, FILE_CREATE, HADES_HE_ARGS, HADES_HX_FILE, HADES_ABI_LEN64),
	SC32(ftruncate64, FTRUNCATE, FILE_CREATE, HADES_HE_ARGS, HADES_HX_FILE, HADES_ABI_LEN64),
	SC32(renameat, RENAMEAT, FILE_RENAME, HADES_HE_ARGS, HADES_HX_FILE, 0),
	SC32(renameat2, RENAMEAT2, FILE_RENAME, HADES_HE_ARGS, HADES_HX_FILE, 0),
	SC32(unlinkat, UNLINKAT, FILE_DELETE, HADES_HE_ARGS, HADES_HX_FILE, 0),
	SC32(fchmod, FCHMOD, FILE_CHMOD, HADES_HE_ARGS, HADES_HX_FILE, 0),
	SC32(fchmodat, FCHMODAT, FILE_CHMOD, HADES_HE_ARGS, HADES_HX_FILE, 0),
	SC32(fchmodat2, FCHMODAT2, FILE_CHMOD, HADES_HE_ARGS, HADES_HX_FILE, 0),
	SC32(utime, UTIME, FILE_CHMOD, HADES_HE_ARGS, HADES_HX_FILE_TIMES, 0),
	SC32(utimes, UTIMES, FILE_CHMOD, HADES_HE_ARGS, HADES_HX_FILE_TIMES, 0),
	SC32(futimesat, FUTIMESAT, FILE_CHMOD, HADES_HE_ARGS, HADES_HX_FILE_TIMES, 0),
	SC32(utimensat, UTIMENSAT, FILE_CHMOD, HADES_HE_ARGS, HADES_HX_FILE_TIMES, 0),
	SC32(utimensat_time64, UTIMENSAT, FILE_CHMOD, HADES_HE_ARGS, HADES_HX_FILE_TIMES, HADES_ABI_TIME64),
	SC32(kill, KILL, KILL, HADES_HE_ARGS, HADES_HX_KILL, 0),
	SC32(tkill, TKILL, KILL, HADES_HE_ARGS, HADES_HX_KILL, 0),
	SC32(tgkill, TGKILL, KILL, HADES_HE_ARGS, HADES_HX_KILL, 0),
	SC32(pidfd_send_signal, PIDFD_SEND_SIGNAL, KILL, HADES_HE_ARGS, HADES_HX_KILL, 0),
	SC32(open, OPEN, FILE_OPEN, 0, HADES_HX_FILE_OPEN, 0),
	SC32(creat, CREAT, FILE_OPEN, 0, HADES_HX_FILE_OPEN, 0),
	SC32(openat, OPENAT, FILE_OPEN, 0, HADES_HX_FILE_OPEN, 0),
	SC32(openat2, OPENAT2, FILE_OPEN, 0, HADES_HX_FILE_OPEN, 0),
	SC32(open_by_handle_at, OPEN_BY_HANDLE_AT, FILE_OPEN, 0, HADES_HX_FILE_OPEN, 0),
	/* socketcall(2) calls (include/uapi/linux/net.h SYS_*) */
	SOCKETCALL(3, CONNECT, CONNECT, HADES_HE_CONNECT, HADES_HX_NET),
	SOCKETCALL(4, LISTEN, LISTEN, HADES_HE_ARGS, HADES_HX_NET),
	SOCKETCALL(5, ACCEPT, ACCEPT, HADES_HE_ARGS, HADES_HX_NET),
	SOCKETCALL(9, SENDTO, DNS, HADES_HE_DNS_SEND, 0),        /* SYS_SEND: no address */
	SOCKETCALL(10, RECVFROM, DNS, HADES_HE_DNS_RECV, HADES_HX_DNS_RECV), /* SYS_RECV */
	SOCKETCALL(11, SENDTO, DNS, HADES_HE_DNS_SEND, 0),
	SOCKETCALL(12, RECVFROM, DNS, HADES_HE_DNS_RECV, HADES_HX_DNS_RECV),
	SOCKETCALL(16, SENDMSG, DNS, HADES_HE_DNS_SEND, 0),
	SOCKETCALL(17, RECVMSG, DNS, HADES_HE_DNS_RECV, HADES_HX_DNS_RECV),
	SOCKETCALL(18, ACCEPT4, ACCEPT, HADES_HE_ARGS, HADES_HX_NET),
	SOCKETCALL(20, SENDMMSG, DNS, HADES_HE_DNS_SEND, 0),
#endif
};
#undef SC
#undef SC32
#undef SOCKETCALL

struct ebpf {
	struct hades *skel;
	struct ring_buffer *rb;
	int choice[S_COUNT];
	char slot_err[S_COUNT][160];
	struct bpf_link *links[S_COUNT];
	const struct config *cfg;
	int ncpus;
	struct hades_hook_counters *percpu; /* lookup buffer, ncpus entries */
	uint64_t bad_size;                  /* ring buffer records with a bad size */
	/* PROC_RENAME catch-up (rename_catch_up) */
	uint64_t rename_dropped_seen; /* task_rename dropped_rate_limit at the last scan */
	bool rename_pending;          /* the last scan left renames whose window had not passed */
	uint64_t rename_catch_ups;    /* catch-up records sent */
};

static int on_record(void *ctx, void *data, size_t size)
{
	struct ebpf *e = ctx;
	const struct hades_record_header *h = data;

	/* ring buffer sizes are rounded; the record states its own length */
	if (size < sizeof(*h) || h->size > size) {
		e->bad_size++;
		return 0;
	}
	int err = out_record(data, h->size);
	return err < 0 ? err : 0;
}

static int eb_fd(struct backend *be)
{
	struct ebpf *e = be->ctx;
	return ring_buffer__epoll_fd(e->rb);
}

static int eb_pump(struct backend *be)
{
	struct ebpf *e = be->ctx;
	int n = ring_buffer__consume(e->rb);
	return n < 0 ? n : 0;
}

static int eb_counters(struct backend *be, struct hades_hook_counters *out)
{
	struct ebpf *e = be->ctx;
	int fd = bpf_map__fd(e->skel->maps.counters);

	memset(out, 0, sizeof(*out) * HADES_HOOK_COUNT);
	for (uint32_t h = 0; h < HADES_HOOK_COUNT; h++) {
		if (bpf_map_lookup_elem(fd, &h, e->percpu))
			return -errno;
		for (int c = 0; c < e->ncpus; c++) {
			const struct hades_hook_counters *p = &e->percpu[c];
			out[h].seen += p->seen;
			out[h].sent += p->sent;
			out[h].filtered += p->filtered;
			out[h].dropped_ringbuf_full += p->dropped_ringbuf_full;
			out[h].truncated += p->truncated;
			out[h].read_errors += p->read_errors;
			out[h].ignored += p->ignored;
			out[h].disabled += p->disabled;
			out[h].suppressed += p->suppressed;
			out[h].dropped_state_full += p->dropped_state_full;
			out[h].dropped_rate_limit += p->dropped_rate_limit;
			out[h].evicted += p->evicted;
		}
	}
	return 0;
}

static void eb_loader_stats(struct backend *be, struct jbuf *j)
{
	struct ebpf *e = be->ctx;
	jb_printf(j, ",\"ringbuf_bad_records\":%llu,\"rename_catch_ups\":%llu,\"fresh_files\":%llu",
		  (unsigned long long)e->bad_size, (unsigned long long)e->rename_catch_ups,
		  (unsigned long long)e->skel->bss->fresh_next);
}

static uint64_t boottime_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_BOOTTIME, &t);
	return (uint64_t)t.tv_sec * 1000000000ULL + (uint64_t)t.tv_nsec;
}

/* The dropped renames of budget b not yet carried by any record: those after the kernel's last
 * record (carried) and after the last catch-up record (cu, when it is of the same process). */
static uint32_t rename_pending_of(const struct rename_budget *b, const struct rename_caught *cu)
{
	uint32_t from = b->carried;
	if (cu && cu->start_ns == b->start_ns && (int32_t)(cu->upto - from) > 0 &&
	    (int32_t)(b->dropped - cu->upto) >= 0)
		from = cu->upto;
	return b->dropped - from;
}

/*
 * PROC_RENAME catch-up (PROTOCOL.md 2.16): a process whose renames went over the bound carries
 * them in its next record, but one that then stops renaming would keep its last name unreported.
 * On the timer, and only when the hook's dropped_rate_limit moved since the last scan (or that
 * scan left some whose window had not passed), the budgets are read: for each process with
 * dropped renames whose window has passed, the loader records them as caught (rename_caught,
 * which the kernel program subtracts from its next record's unreported) and sends the record
 * of the newest one, flagged HADES_F_RENAME_CATCH_UP, unreported = the renames it stands for.
 * The budget is read again after rename_caught is written: a record the kernel sent in between
 * carried them already, and nothing is sent. The two sides share no lock: only a rename made
 * in the very microseconds between these two reads can be carried twice (never lost).
 */
static int rename_catch_up(struct ebpf *e)
{
	if (!e->links[S_TASK_RENAME])
		return 0;
	uint32_t h = HADES_HOOK_TASK_RENAME;
	if (bpf_map_lookup_elem(bpf_map__fd(e->skel->maps.counters), &h, e->percpu))
		return 0;
	uint64_t dropped = 0;
	for (int c = 0; c < e->ncpus; c++)
		dropped += e->percpu[c].dropped_rate_limit;
	if (dropped == e->rename_dropped_seen && !e->rename_pending)
		return 0; /* idle: one lookup */
	e->rename_dropped_seen = dropped;
	e->rename_pending = false;

	int bfd = bpf_map__fd(e->skel->maps.rename_budget), cfd = bpf_map__fd(e->skel->maps.rename_caught);
	uint64_t now = boottime_ns();
	uint32_t key, next;
	bool first = true;
	/* bounded: keys deleted while walking (LRU eviction) restart the walk */
	for (int n = 0; n < 2 * HADES_RENAME_MAP_ENTRIES; n++, first = false) {
		if (bpf_map_get_next_key(bfd, first ? NULL : &key, &next))
			break;
		key = next;
		struct rename_budget b;
		struct rename_caught cu;
		if (bpf_map_lookup_elem(bfd, &key, &b) || b.dropped == b.carried)
			continue;
		bool have_cu = bpf_map_lookup_elem(cfd, &key, &cu) == 0;
		uint32_t pending = rename_pending_of(&b, have_cu ? &cu : NULL);
		if (!pending)
			continue;
		if (now - b.window_ns < HADES_RENAME_WINDOW_NS) {
			e->rename_pending = true; /* its next record may still carry them */
			continue;
		}
		struct rename_caught mark = { .start_ns = b.start_ns, .upto = b.dropped };
		if (bpf_map_update_elem(cfd, &key, &mark, BPF_ANY))
			continue;
		struct rename_budget again;
		if (bpf_map_lookup_elem(bfd, &key, &again) == 0 && again.start_ns == b.start_ns &&
		    (int32_t)(again.carried - b.dropped) >= 0)
			continue; /* a kernel record carried them meanwhile */
		struct hades_rename r;
		memset(&r, 0, sizeof(r));
		r.hdr.kind = HADES_KIND_PROC_RENAME;
		r.hdr.version = HADES_RECORD_VERSION;
		r.hdr.size = sizeof(r);
		r.hdr.ktime_ns = b.last_ns;
		r.hdr.pid = key;
		r.hdr.tid = b.last_tid;
		r.hdr.flags = HADES_F_RENAME_CATCH_UP;
		r.proc = b.proc;
		memcpy(r.proc.comm, b.old_comm, sizeof(r.proc.comm));
		memcpy(r.old_comm, b.old_comm, sizeof(r.old_comm));
		memcpy(r.new_comm, b.last_comm, sizeof(r.new_comm));
		r.target_tid = key;
		r.unreported = pending;
		int err = out_record(&r, sizeof(r));
		if (err)
			return err;
		e->rename_catch_ups++;
	}
	return 0;
}

static int eb_tick(struct backend *be)
{
	return rename_catch_up(be->ctx);
}

static int map_clear(int fd, size_t key_size)
{
	uint8_t key[sizeof(struct hades_lpm_key) + 8], next[sizeof(struct hades_lpm_key) + 8];

	if (key_size > sizeof(key))
		return -EINVAL;
	/* always restart from the first key: deleting invalidates the cursor */
	while (bpf_map_get_next_key(fd, NULL, next) == 0) {
		memcpy(key, next, key_size);
		if (bpf_map_delete_elem(fd, key) && errno != ENOENT)
			return -errno;
	}
	return 0;
}

static int add_builtin_pid_denies(struct ebpf *e)
{
	int fd = bpf_map__fd(e->skel->maps.deny_pid);
	uint8_t one = 1;

	for (size_t i = 0; i < e->cfg->n_exclude_pids; i++) {
		uint32_t pid = (uint32_t)e->cfg->exclude_pids[i];
		if (bpf_map_update_elem(fd, &pid, &one, BPF_ANY))
			return -errno;
	}
	return 0;
}

/* Mutes processes that already run a newly denied executable, so their
 * fork/exit records are dropped like those of processes exec'd later. */
static void mute_running(struct ebpf *e, const char *path)
{
	int fd = bpf_map__fd(e->skel->maps.muted_tgid);
	DIR *d = opendir("/proc");
	struct dirent *de;
	char link[64], target[HADES_EXE_KEY_LEN + 1];
	uint8_t one = 1;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char *end;
		unsigned long pid = strtoul(de->d_name, &end, 10);
		if (*end || pid == 0)
			continue;
		snprintf(link, sizeof(link), "/proc/%lu/exe", pid);
		ssize_t n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = 0;
		if (strcmp(target, path) == 0) {
			uint32_t k = (uint32_t)pid;
			bpf_map_update_elem(fd, &k, &one, BPF_ANY);
		}
	}
	closedir(d);
}

/* Deletes the cgroup entries holding value want. Keys are collected first
 * because deleting while iterating invalidates the cursor. */
static int cgroup_clear(int fd, uint8_t want)
{
	size_t n = 0, cap = 64;
	uint64_t *keys = malloc(cap * sizeof(*keys)), cursor, key;
	bool first = true;
	int rc = 0;

	if (!keys)
		return -ENOMEM;
	while (bpf_map_get_next_key(fd, first ? NULL : &cursor, &key) == 0) {
		uint8_t cur;
		first = false;
		cursor = key;
		if (bpf_map_lookup_elem(fd, &key, &cur) || cur != want)
			continue;
		if (n == cap) {
			uint64_t *k = realloc(keys, cap * 2 * sizeof(*keys));
			if (!k) {
				rc = -ENOMEM;
				break;
			}
			keys = k;
			cap *= 2;
		}
		keys[n++] = key;
	}
	for (size_t i = 0; i < n && rc == 0; i++)
		if (bpf_map_delete_elem(fd, &keys[i]) && errno != ENOENT)
			rc = -errno;
	free(keys);
	return rc;
}

/*
 * FILE_PREFIX: "P" watches everything whose path starts with the bytes P;
 * P + "*" + "/S" (P ending in '/', "*" a whole component) watches only
 * P<name>/S... paths.
 * Both kinds share one LPM entry per P, merged here read-modify-write.
 */
static int file_prefix_op(struct ebpf *e, uint8_t op, const uint8_t *val, uint32_t len,
			  const char **why)
{
	int fd = bpf_map__fd(e->skel->maps.file_prefix);
	struct hades_lpm_key k = { 0 };
	struct hades_prefix_val pv = { 0 };

	if (op == HADES_FILTER_CLEAR)
		return map_clear(fd, sizeof(k));
	if (op != HADES_FILTER_ADD && op != HADES_FILTER_DEL) {
		*why = "operation not valid for this target";
		return -EINVAL;
	}
	if (len == 0 || len > HADES_PREFIX_MAX || memchr(val, 0, len)) {
		*why = "prefix must be 1..255 bytes without NUL";
		return -EINVAL;
	}
	const uint8_t *star = memchr(val, '*', len);
	uint32_t plen = len, slen = 0;
	const uint8_t *suffix = NULL;
	if (star) {
		plen = (uint32_t)(star - val);
		suffix = star + 2;
		slen = len - plen - 2;
		if (plen == 0 || val[plen - 1] != '/' || plen + 1 >= len || star[1] != '/' ||
		    slen == 0 || slen > HADES_SUFFIX_MAX || memchr(suffix, '*', slen)) {
			*why = "a '*' must be a whole component followed by 1..31 bytes: /home/*/.ssh/";
			return -EINVAL;
		}
	}
	k.prefixlen = plen * 8;
	memcpy(k.data, val, plen);
	bool exists = bpf_map_lookup_elem(fd, &k, &pv) == 0;
	if (!exists) {
		memset(&pv, 0, sizeof(pv));
		pv.plen = (uint16_t)plen;
	}
	int found = -1;
	for (int i = 0; star && i < pv.nsuffix && i < HADES_SUFFIXES; i++)
		if (pv.slen[i] == slen && memcmp(pv.suffix[i], suffix, slen) == 0)
			found = i;
	if (op == HADES_FILTER_ADD) {
		if (!star) {
			pv.all = 1;
		} else if (found < 0) {
			if (pv.nsuffix >= HADES_SUFFIXES) {
				*why = "at most 16 '*' rules per prefix";
				return -ENOSPC;
			}
			pv.slen[pv.nsuffix] = (uint8_t)slen;
			memset(pv.suffix[pv.nsuffix], 0, sizeof(pv.suffix[0]));
			memcpy(pv.suffix[pv.nsuffix], suffix, slen);
			pv.nsuffix++;
		}
	} else {
		if (!exists)
			return 0;
		if (!star) {
			pv.all = 0;
		} else if (found >= 0) {
			for (int i = found; i + 1 < pv.nsuffix; i++) {
				pv.slen[i] = pv.slen[i + 1];
				memcpy(pv.suffix[i], pv.suffix[i + 1], sizeof(pv.suffix[0]));
			}
			pv.nsuffix--;
		}
		if (!pv.all && pv.nsuffix == 0)
			return bpf_map_delete_elem(fd, &k) && errno != ENOENT ? -errno : 0;
	}
	return bpf_map_update_elem(fd, &k, &pv, BPF_ANY) ? -errno : 0;
}

/* ADD sets a key's 1-byte flag, DEL removes it (absent is fine); other ops are invalid. */
static int flag_key_op(int fd, const void *key, uint8_t op, const char **why)
{
	uint8_t one = 1;
	if (op == HADES_FILTER_ADD)
		return bpf_map_update_elem(fd, key, &one, BPF_ANY) ? -errno : 0;
	if (op == HADES_FILTER_DEL)
		return bpf_map_delete_elem(fd, key) && errno != ENOENT ? -errno : 0;
	*why = "operation not valid for this target";
	return -EINVAL;
}

/*
 * A flagged path prefix in an LPM trie (UNIX_PATH, FILE_QUIET): CLEAR empties the map; ADD and
 * DEL take 1..max bytes without NUL (and without '*' when no_star), else EINVAL with `bad`.
 */
static int prefix_flag_op(int fd, uint8_t op, const uint8_t *val, uint32_t len, uint32_t max,
			  bool no_star, const char *bad, const char **why)
{
	if (op == HADES_FILTER_CLEAR)
		return map_clear(fd, sizeof(struct hades_lpm_key));
	if (len == 0 || len > max || memchr(val, 0, len) || (no_star && memchr(val, '*', len))) {
		*why = bad;
		return -EINVAL;
	}
	struct hades_lpm_key k = { 0 };
	k.prefixlen = len * 8;
	memcpy(k.data, val, len);
	return flag_key_op(fd, &k, op, why);
}

/* FILE_SECRET: the kind SECRET entries of file_watch and file_secret_count, which lets every open
 * skip the lookup while the map is empty of both kinds, change together. The kernel's fresh
 * entries (kind FRESH) share the map: an ADD turns one into a secret, DEL and CLEAR leave them. */
static int file_secret_op(struct ebpf *e, uint8_t op, const uint8_t *val, uint32_t len,
			  const char **why)
{
	int fd = bpf_map__fd(e->skel->maps.file_watch);
	struct hades_watch_val v;
	if (op == HADES_FILTER_CLEAR) {
		/* the secrets' keys first, then their deletion (deleting moves the cursor); the walk is
		 * bounded: concurrent kernel changes can restart it from the first key */
		struct hades_secret_key *keys = calloc(HADES_SECRETS_MAX, sizeof(*keys));
		struct hades_secret_key cur, next;
		size_t n = 0, bound = 2 * (HADES_SECRETS_MAX + HADES_FRESH_MAX + 256);
		int err = 0;
		if (!keys)
			return -ENOMEM;
		for (size_t i = 0; i < bound && bpf_map_get_next_key(fd, i ? &cur : NULL, &next) == 0; i++) {
			cur = next;
			if (n < HADES_SECRETS_MAX && bpf_map_lookup_elem(fd, &cur, &v) == 0 &&
			    v.kind == HADES_WATCH_SECRET)
				keys[n++] = cur;
		}
		for (size_t i = 0; i < n && !err; i++)
			if (bpf_map_delete_elem(fd, &keys[i]) && errno != ENOENT)
				err = -errno;
		free(keys);
		if (!err)
			e->skel->bss->file_secret_count = 0;
		return err;
	}
	struct hades_secret_key k;
	if (len != sizeof(k)) {
		*why = "secret file key must be 16 bytes (u64 inode, u32 device, u32 0)";
		return -EINVAL;
	}
	memcpy(&k, val, sizeof(k));
	if (k.pad != 0 || k.ino == 0) {
		*why = "secret file key needs a non-zero inode and a zero pad";
		return -EINVAL;
	}
	bool had = bpf_map_lookup_elem(fd, &k, &v) == 0 && v.kind == HADES_WATCH_SECRET;
	if (op == HADES_FILTER_ADD) {
		if (had)
			return 0;
		if (e->skel->bss->file_secret_count >= HADES_SECRETS_MAX)
			return -E2BIG;
		memset(&v, 0, sizeof(v));
		v.kind = HADES_WATCH_SECRET;
		if (bpf_map_update_elem(fd, &k, &v, BPF_ANY))
			return -errno;
		e->skel->bss->file_secret_count++;
		return 0;
	}
	if (op == HADES_FILTER_DEL) {
		if (had && !bpf_map_delete_elem(fd, &k))
			e->skel->bss->file_secret_count--;
		return 0;
	}
	*why = "operation not valid for this target";
	return -EINVAL;
}

/* The temporary folders whose new files are remembered for FILE_OPEN (OPEN_FRESH) */
static const char *const fresh_prefixes[] = { "/tmp/", "/var/tmp/", "/dev/shm/" };

static int add_fresh_prefixes(struct ebpf *e)
{
	int fd = bpf_map__fd(e->skel->maps.fresh_prefix);
	for (size_t i = 0; i < sizeof(fresh_prefixes) / sizeof(fresh_prefixes[0]); i++) {
		struct hades_lpm_key k = { 0 };
		uint32_t len = (uint32_t)strlen(fresh_prefixes[i]);
		k.prefixlen = len * 8;
		memcpy(k.data, fresh_prefixes[i], len);
		if (bpf_map_update_elem(fd, &k, &len, BPF_ANY))
			return -errno;
	}
	return 0;
}

static int eb_filter(struct backend *be, uint8_t op, uint8_t target, const uint8_t *val,
		     uint32_t len, const char **why)
{
	struct ebpf *e = be->ctx;
	int fd, err = 0;

	switch (target) {
	case HADES_FILTER_PID_DENY: {
		fd = bpf_map__fd(e->skel->maps.deny_pid);
		if (op == HADES_FILTER_CLEAR) {
			err = map_clear(fd, sizeof(uint32_t));
			if (!err)
				err = add_builtin_pid_denies(e);
			return err;
		}
		uint32_t pid;
		if (len != sizeof(pid)) {
			*why = "pid value must be 4 bytes";
			return -EINVAL;
		}
		memcpy(&pid, val, sizeof(pid));
		return flag_key_op(fd, &pid, op, why);
	}
	case HADES_FILTER_EXE_DENY: {
		fd = bpf_map__fd(e->skel->maps.deny_exe);
		if (op == HADES_FILTER_CLEAR)
			return map_clear(fd, HADES_EXE_KEY_LEN);
		char key[HADES_EXE_KEY_LEN] = { 0 };
		if (len == 0 || len >= HADES_EXE_KEY_LEN || memchr(val, 0, len)) {
			*why = "exe path must be 1..255 bytes without NUL";
			return -EINVAL;
		}
		memcpy(key, val, len);
		err = flag_key_op(fd, key, op, why);
		/* Processes already running that program are muted too. */
		if (!err && op == HADES_FILTER_ADD)
			mute_running(e, key);
		return err;
	}
	case HADES_FILTER_CGROUP_DENY:
	case HADES_FILTER_CGROUP_ALLOW: {
		/* one map: an id is either denied or allowed, the last op wins */
		uint8_t want = target == HADES_FILTER_CGROUP_DENY ? HADES_CGROUP_VAL_DENY
								  : HADES_CGROUP_VAL_ALLOW;
		fd = bpf_map__fd(e->skel->maps.cgroup_filter);
		if (op == HADES_FILTER_CLEAR)
			return cgroup_clear(fd, want);
		uint64_t id;
		if (len != sizeof(id)) {
			*why = "cgroup id must be 8 bytes";
			return -EINVAL;
		}
		memcpy(&id, val, sizeof(id));
		if (op == HADES_FILTER_ADD)
			return bpf_map_update_elem(fd, &id, &want, BPF_ANY) ? -errno : 0;
		if (op == HADES_FILTER_DEL) {
			uint8_t cur;
			if (bpf_map_lookup_elem(fd, &id, &cur) || cur != want)
				return 0;
			return bpf_map_delete_elem(fd, &id) && errno != ENOENT ? -errno : 0;
		}
		goto bad_op;
	}
	case HADES_FILTER_CGROUP_MODE: {
		uint32_t mode;
		if (op != HADES_FILTER_SET)
			goto bad_op;
		if (len != sizeof(mode)) {
			*why = "cgroup mode must be 4 bytes";
			return -EINVAL;
		}
		memcpy(&mode, val, sizeof(mode));
		if (mode > 1) {
			*why = "cgroup mode must be 0 or 1";
			return -EINVAL;
		}
		e->skel->bss->cgroup_allow_only = mode;
		return 0;
	}
	case HADES_FILTER_FILE_PREFIX:
		return file_prefix_op(e, op, val, len, why);
	case HADES_FILTER_UNIX_PATH:
		return prefix_flag_op(bpf_map__fd(e->skel->maps.unix_prefix), op, val, len, 107, false,
				      "unix path prefix must be 1..107 bytes without NUL", why);
	case HADES_FILTER_FILE_QUIET:
		return prefix_flag_op(bpf_map__fd(e->skel->maps.file_quiet), op, val, len, HADES_PREFIX_MAX, true,
				      "quiet prefix must be 1..255 bytes without NUL or '*'", why);
	case HADES_FILTER_FILE_SECRET:
		return file_secret_op(e, op, val, len, why);
	case HADES_FILTER_PROTECTED_PID: {
		fd = bpf_map__fd(e->skel->maps.protected_pid);
		if (op == HADES_FILTER_CLEAR)
			return map_clear(fd, sizeof(uint32_t));
		uint32_t pid;
		if (len != sizeof(pid)) {
			*why = "pid value must be 4 bytes";
			return -EINVAL;
		}
		memcpy(&pid, val, sizeof(pid));
		err = flag_key_op(fd, &pid, op, why);
		if (err == -E2BIG)
			*why = "at most 1024 protected pids (HADES_PROTECTED_MAX)";
		return err;
	}
	case HADES_FILTER_CONNECT_DEDUP_MS: {
		uint32_t ms;
		if (op != HADES_FILTER_SET)
			goto bad_op;
		if (len != sizeof(ms)) {
			*why = "dedup window must be 4 bytes (u32 ms)";
			return -EINVAL;
		}
		memcpy(&ms, val, sizeof(ms));
		if (ms > 3600000) {
			*why = "dedup window must be 0..3600000 ms";
			return -EINVAL;
		}
		e->skel->bss->connect_dedup_ns = (uint64_t)ms * 1000000ULL;
		return 0;
	}
	default:
		*why = "unknown filter target";
		return -EINVAL;
	}
bad_op:
	*why = "operation not valid for this target";
	return -EINVAL;
}

static int slot_of_he(int he);
static int slot_of_hx(int hx);
static bool slot_loaded(const struct ebpf *e, int slot);

/* The route of syscall `nr` of `table`: each side from the first of its sc_defs whose hook is
 * requested and enabled; `hook`, `sc` and `abi` from the one giving the entry side, else the
 * exit side. */
static struct hades_route route_of(const struct ebpf *e, enum sc_table table, int nr)
{
	struct hades_route r = { 0 };
	for (size_t i = 0; i < sizeof(sc_defs) / sizeof(sc_defs[0]); i++) {
		const struct sc_def *d = &sc_defs[i];
		if (d->nr != nr || table_of(d) != table || !hook_requested(e->cfg, d->hook) ||
		    e->skel->bss->hook_disabled[d->hook])
			continue;
		/* a handler that did not load leaves its side to the next hook (or to nothing) */
		int he = slot_of_he(d->he), hx = slot_of_hx(d->hx);
		if (he >= 0 && !slot_loaded(e, he))
			continue;
		if (hx >= 0 && !slot_loaded(e, hx))
			continue;
		if (!r.enter && d->he) {
			r.enter = d->he;
			r.sc = d->sc;
			r.hook = d->hook;
			r.abi = d->abi;
		}
		if (!r.exit && d->hx) {
			r.exit = d->hx;
			if (!r.enter) {
				r.sc = d->sc;
				r.hook = d->hook;
				r.abi = d->abi;
			}
		}
	}
	return r;
}

/* Writes the routes of d's number: both ABIs of an sc_route entry, or a socketcall call. */
static int put_route(struct ebpf *e, const struct sc_def *d)
{
	uint32_t k = (uint32_t)d->nr;
	if (table_of(d) == TABLE_SOCKETCALL) {
		if (d->nr >= HADES_SOCKETCALL_MAX)
			return -EINVAL;
		struct hades_route r = route_of(e, TABLE_SOCKETCALL, d->nr);
		return bpf_map_update_elem(bpf_map__fd(e->skel->maps.socketcall_route), &k, &r, BPF_ANY) ? -errno : 0;
	}
	if (d->nr < 0 || d->nr >= HADES_SC_ROUTE_MAX)
		return -EINVAL;
	struct hades_routes rs = { .native = route_of(e, TABLE_NATIVE, d->nr),
				   .ia32 = route_of(e, TABLE_IA32, d->nr) };
	return bpf_map_update_elem(bpf_map__fd(e->skel->maps.sc_route), &k, &rs, BPF_ANY) ? -errno : 0;
}

static int eb_hook(struct backend *be, uint32_t hook, bool enable)
{
	struct ebpf *e = be->ctx;
	if (hook >= HADES_HOOK_COUNT)
		return -EINVAL;
	if (!hook_requested(e->cfg, (int)hook))
		return -ENOENT; /* never loaded: there are no routes to restore */
	/* the programs stay attached; they check this flag first (cheap, and
	 * re-enabling cannot fail the way a re-attach could) */
	e->skel->bss->hook_disabled[hook] = enable ? 0 : 1;
	if (hook <= HADES_HOOK_EXIT || hook == HADES_HOOK_TASK_RENAME)
		return 0;
	/* syscall hooks: also take their syscalls out of the routing table, so
	 * a disabled hook costs only the dispatcher's lookup (write/writev for
	 * dns, openat for file_create are hot). Their `disabled` counter then
	 * stays 0: the handlers no longer run. */
	for (size_t i = 0; i < sizeof(sc_defs) / sizeof(sc_defs[0]); i++) {
		const struct sc_def *d = &sc_defs[i];
		if (d->hook != hook)
			continue;
		int rc = put_route(e, d);
		if (rc)
			return rc;
	}
	return 0;
}

static void eb_stop(struct backend *be)
{
	struct ebpf *e = be->ctx;
	/* dispatchers first: nothing tail-calls into a detached state */
	for (int i = S_COUNT - 1; i >= 0; i--) {
		bpf_link__destroy(e->links[i]);
		e->links[i] = NULL;
	}
}

static void eb_destroy(struct backend *be)
{
	struct ebpf *e = be->ctx;
	if (!e)
		return;
	eb_stop(be);
	ring_buffer__free(e->rb);
	hades__destroy(e->skel);
	free(e->percpu);
	free(e);
	be->ctx = NULL;
}

/* While loading, libbpf's first "prog 'NAME': ..." warning names the program
 * that failed; it is kept to retry without that program. */
static bool capture_on;
static char capture_prog[64], capture_msg[160];

/* Silences libbpf's verbose loader chatter unless HADES_DEBUG is set. */
static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	bool debug = getenv("HADES_DEBUG") != NULL;
	if (capture_on && level == LIBBPF_WARN) {
		char line[512];
		va_list aq;
		va_copy(aq, ap);
		vsnprintf(line, sizeof(line), fmt, aq);
		va_end(aq);
		const char *p = strstr(line, "prog '");
		if (p && !capture_prog[0]) {
			p += 6;
			const char *q = strchr(p, '\'');
			if (q && (size_t)(q - p) < sizeof(capture_prog)) {
				memcpy(capture_prog, p, (size_t)(q - p));
				capture_prog[q - p] = 0;
				const char *m = strstr(q, ": ");
				snprintf(capture_msg, sizeof(capture_msg), "%s", m ? m + 2 : q);
				capture_msg[strcspn(capture_msg, "\n")] = 0;
			}
		}
		if (!debug)
			return 0; /* reported through HELLO hook errors instead */
	}
	if (level == LIBBPF_DEBUG && !debug)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static struct bpf_program *slot_prog(struct hades *skel, int slot, int choice)
{
	const char *name = choice == CHOICE_BTF ? slot_defs[slot].btf
			   : choice == CHOICE_RAW ? slot_defs[slot].raw
						 : NULL;
	return name ? bpf_object__find_program_by_name(skel->obj, name) : NULL;
}

static int slot_by_prog(const char *name)
{
	for (int i = 0; i < S_COUNT; i++)
		if ((slot_defs[i].btf && !strcmp(slot_defs[i].btf, name)) ||
		    (slot_defs[i].raw && !strcmp(slot_defs[i].raw, name)))
			return i;
	return -1;
}

static void next_choice(struct ebpf *e, int slot)
{
	int c = e->choice[slot] + 1;
	if (c == CHOICE_RAW && !slot_defs[slot].raw)
		c = CHOICE_NONE;
	e->choice[slot] = c;
}

/* Opens and loads the object with the current per-slot choices. */
static int load_once(struct ebpf *e, uint64_t rb_bytes, char *err, size_t errlen)
{
	int rc;

	e->skel = hades__open();
	if (!e->skel) {
		rc = -errno;
		snprintf(err, errlen, "open BPF object: %s", strerror(-rc));
		return rc;
	}
	for (int i = 0; i < S_COUNT; i++) {
		for (int c = CHOICE_BTF; c <= CHOICE_RAW; c++) {
			struct bpf_program *p = slot_prog(e->skel, i, c);
			if (p)
				bpf_program__set_autoload(p, e->choice[i] == c);
		}
	}
	e->skel->rodata->cfg_argv_max = e->cfg->argv_max;
	if ((rc = bpf_map__set_max_entries(e->skel->maps.scratch, (uint32_t)e->ncpus)) ||
	    (rc = bpf_map__set_max_entries(e->skel->maps.events, (uint32_t)rb_bytes))) {
		snprintf(err, errlen, "size maps: %s", strerror(-rc));
		hades__destroy(e->skel);
		e->skel = NULL;
		return rc;
	}
	capture_prog[0] = 0;
	capture_msg[0] = 0;
	capture_on = true;
	rc = hades__load(e->skel);
	capture_on = false;
	if (rc) {
		snprintf(err, errlen, "load: %s", strerror(-rc));
		hades__destroy(e->skel);
		e->skel = NULL;
	}
	return rc;
}

static int slot_of_he(int he)
{
	for (int i = 0; i < S_COUNT; i++)
		if (he && slot_defs[i].he == he)
			return i;
	return -1;
}

static int slot_of_hx(int hx)
{
	for (int i = 0; i < S_COUNT; i++)
		if (hx && slot_defs[i].hx == hx)
			return i;
	return -1;
}

static bool any_syscall_hook(const struct config *cfg)
{
	for (int h = HADES_HOOK_CONNECT; h < HADES_HOOK_COUNT; h++)
		if (h != HADES_HOOK_TASK_RENAME && hook_requested(cfg, h))
			return true;
	return false;
}

/* Which programs the requested hooks (--hooks) need; the others are neither
 * loaded (no verifier time) nor attached (no cost per event). */
static void slots_needed(const struct config *cfg, bool need[S_COUNT])
{
	bool sys = any_syscall_hook(cfg);

	memset(need, 0, sizeof(bool) * S_COUNT);
	need[S_EXEC] = hook_requested(cfg, HADES_HOOK_EXEC);
	need[S_FORK] = hook_requested(cfg, HADES_HOOK_FORK);
	/* the exit program also frees the syscall state of threads that die
	 * inside a watched call, so syscall hooks keep it attached */
	need[S_EXIT] = hook_requested(cfg, HADES_HOOK_EXIT) || sys;
	need[S_SOCK_STATE] = hook_requested(cfg, HADES_HOOK_CONNECT);
	need[S_MODULE_TP] = hook_requested(cfg, HADES_HOOK_MODULE);
	need[S_TASK_RENAME] = hook_requested(cfg, HADES_HOOK_TASK_RENAME);
	/* files written in the temporary folders are seen by FILE_CREATE, reported by FILE_OPEN */
	need[S_HX_FRESH_NOTE] = hook_requested(cfg, HADES_HOOK_FILE_OPEN) &&
				hook_requested(cfg, HADES_HOOK_FILE_CREATE);
	/* any attached sys_enter/sys_exit program puts every syscall of the
	 * machine on the traced path: only when a syscall hook wants them */
	need[S_SYS_EXIT] = sys;
	/* sys_enter only for hooks with an entry side (not file_open alone) */
	for (size_t i = 0; i < sizeof(sc_defs) / sizeof(sc_defs[0]); i++)
		need[S_SYS_ENTER] |= sc_defs[i].he && hook_requested(cfg, sc_defs[i].hook);
	for (size_t i = 0; i < sizeof(sc_defs) / sizeof(sc_defs[0]); i++) {
		if (!hook_requested(cfg, sc_defs[i].hook))
			continue;
		int he = slot_of_he(sc_defs[i].he), hx = slot_of_hx(sc_defs[i].hx);
		if (he >= 0)
			need[he] = true;
		if (hx >= 0)
			need[hx] = true;
	}
}

/* Does the kernel's task_struct have the in_execve bit the rename program reads? (vmlinux NULL:
 * HADES_FORCE_RAW_TP, the BTF is loaded here then.) */
static bool task_has_in_execve(struct btf *vmlinux)
{
	struct btf *own = vmlinux ? NULL : btf__load_vmlinux_btf();
	struct btf *b = vmlinux ? vmlinux : own;
	bool found = false;
	int id = b ? btf__find_by_name_kind(b, "task_struct", BTF_KIND_STRUCT) : -1;
	if (id > 0) {
		const struct btf_type *t = btf__type_by_id(b, (uint32_t)id);
		const struct btf_member *m = btf_members(t);
		for (int i = 0; i < btf_vlen(t) && !found; i++, m++)
			found = !strcmp(btf__name_by_offset(b, m->name_off), "in_execve");
	}
	btf__free(own);
	return found;
}

/* Loads with fallbacks; fails only when the exec program cannot load. */
static int load_all(struct ebpf *e, uint64_t rb_bytes, char *err, size_t errlen)
{
	bool force_raw = getenv("HADES_FORCE_RAW_TP") != NULL;
	bool stripped = false;
	bool need[S_COUNT];

	slots_needed(e->cfg, need);
	/* a tp_btf program whose tracepoint is not in the kernel's BTF cannot
	 * load; checking first saves a whole (verifier-heavy) reload */
	struct btf *vmlinux = force_raw ? NULL : btf__load_vmlinux_btf();
	for (int i = 0; i < S_COUNT; i++) {
		e->choice[i] = slot_defs[i].btf && !force_raw ? CHOICE_BTF : CHOICE_RAW;
		e->slot_err[i][0] = 0;
		if (!need[i]) {
			e->choice[i] = CHOICE_NONE;
			snprintf(e->slot_err[i], sizeof(e->slot_err[i]), "not requested");
			continue;
		}
		if (e->choice[i] == CHOICE_BTF && vmlinux && slot_defs[i].tp) {
			char name[96];
			snprintf(name, sizeof(name), "btf_trace_%s", slot_defs[i].tp);
			if (btf__find_by_name_kind(vmlinux, name, BTF_KIND_TYPEDEF) < 0)
				e->choice[i] = CHOICE_RAW;
		} else if (e->choice[i] == CHOICE_BTF && (!vmlinux || (slot_defs[i].btf_needs &&
			   btf__find_by_name_kind(vmlinux, slot_defs[i].btf_needs, BTF_KIND_FUNC) < 0))) {
			e->choice[i] = CHOICE_RAW;
		}
	}
	if (need[S_TASK_RENAME] && !task_has_in_execve(vmlinux)) {
		/* exec's own rename could not be told apart: every exec would send a second record */
		e->choice[S_TASK_RENAME] = CHOICE_NONE;
		snprintf(e->slot_err[S_TASK_RENAME], sizeof(e->slot_err[S_TASK_RENAME]),
			 "task_struct has no in_execve in this kernel's BTF: exec's own rename cannot be told apart");
	}
	btf__free(vmlinux);
	for (int attempt = 0; attempt < 3 * S_COUNT; attempt++) {
		int rc = load_once(e, rb_bytes, err, errlen);
		if (rc == 0)
			return 0;
		int bad = capture_prog[0] ? slot_by_prog(capture_prog) : -1;
		if (bad < 0 || e->choice[bad] == CHOICE_NONE) {
			/* not attributable: keep only the process hooks */
			if (stripped)
				return rc;
			stripped = true;
			for (int i = S_SOCK_STATE; i < S_COUNT; i++) {
				e->choice[i] = CHOICE_NONE;
				snprintf(e->slot_err[i], sizeof(e->slot_err[i]), "not loaded: %s", err);
			}
			continue;
		}
		snprintf(e->slot_err[bad], sizeof(e->slot_err[bad]), "load %s: %s", capture_prog,
			 capture_msg[0] ? capture_msg : strerror(-rc));
		LOG_ERR("program %s failed to load (%s); retrying without it\n", capture_prog,
			capture_msg);
		next_choice(e, bad);
		if (bad == S_EXEC && e->choice[bad] == CHOICE_NONE) {
			snprintf(err, errlen, "%s", e->slot_err[bad]);
			return rc;
		}
	}
	snprintf(err, errlen, "load: too many failing programs");
	return -ENOEXEC;
}

static bool slot_loaded(const struct ebpf *e, int slot)
{
	return e->choice[slot] != CHOICE_NONE;
}

/* Fills the tail-call arrays and the syscall routing table. */
static int install_routes(struct ebpf *e)
{
	int efd = bpf_map__fd(e->skel->maps.enter_progs);
	int xfd = bpf_map__fd(e->skel->maps.exit_progs);

	for (int i = 0; i < S_COUNT; i++) {
		if (!slot_loaded(e, i) || (!slot_defs[i].he && !slot_defs[i].hx))
			continue;
		int pfd = bpf_program__fd(slot_prog(e->skel, i, e->choice[i]));
		uint32_t k = (uint32_t)(slot_defs[i].he ? slot_defs[i].he : slot_defs[i].hx);
		if (bpf_map_update_elem(slot_defs[i].he ? efd : xfd, &k, &pfd, BPF_ANY))
			return -errno;
	}
	for (size_t i = 0; i < sizeof(sc_defs) / sizeof(sc_defs[0]); i++) {
		const struct sc_def *d = &sc_defs[i];
		if (!hook_requested(e->cfg, d->hook))
			continue;
		int rc = put_route(e, d);
		if (rc)
			return rc;
	}
	return 0;
}

static void add_attach(struct hook_status *hs, const char *tp)
{
	size_t n = strlen(hs->attach);
	snprintf(hs->attach + n, sizeof(hs->attach) - n, "%s%s", n ? "," : "", tp);
}

static void add_error(struct hook_status *hs, const char *fmt, ...)
{
	size_t n = strlen(hs->error);
	va_list ap;
	if (n && n + 2 < sizeof(hs->error)) {
		memcpy(hs->error + n, "; ", 3);
		n += 2;
	}
	va_start(ap, fmt);
	vsnprintf(hs->error + n, sizeof(hs->error) - n, fmt, ap);
	va_end(ap);
}

static const char *slot_type(const struct ebpf *e, int slot)
{
	return e->choice[slot] == CHOICE_BTF ? "tp_btf" : "raw_tracepoint";
}

/* Attaches every loaded program with an attach point; errors go to slot_err. */
static void attach_all(struct ebpf *e)
{
	for (int i = 0; i < S_COUNT; i++) {
		if (!slot_defs[i].tp || !slot_loaded(e, i))
			continue;
		/* the exit dispatcher first would see syscalls without entry state;
		 * the order below (sys_enter before sys_exit) is the slot order */
		e->links[i] = bpf_program__attach(slot_prog(e->skel, i, e->choice[i]));
		if (!e->links[i])
			snprintf(e->slot_err[i], sizeof(e->slot_err[i]), "attach %s: %s",
				 slot_defs[i].tp, strerror(errno));
	}
}

/* Derives each hook's HELLO status from its programs. */
static void hook_statuses(struct ebpf *e, struct backend *be)
{
	static const int core[3] = { S_EXEC, S_FORK, S_EXIT };

	for (int h = 0; h < HADES_HOOK_COUNT; h++) {
		struct hook_status *hs = &be->hooks[h];
		hs->error[0] = 0;
		hs->attach[0] = 0;
		hs->active = false;
		hs->requested = hook_requested(e->cfg, h);
		if (!hs->requested)
			hook_status_unrequested(hs);
	}
	for (int h = 0; h < 3; h++) {
		struct hook_status *hs = &be->hooks[h];
		int sl = core[h];
		if (!hook_requested(e->cfg, h))
			continue;
		hs->type = slot_type(e, sl);
		hs->active = e->links[sl] != NULL;
		if (hs->active)
			add_attach(hs, slot_defs[sl].tp);
		else
			add_error(hs, "%s", e->slot_err[sl][0] ? e->slot_err[sl] : "not loaded");
	}
	if (hook_requested(e->cfg, HADES_HOOK_TASK_RENAME)) {
		/* a tracepoint of its own, like the process hooks */
		struct hook_status *hs = &be->hooks[HADES_HOOK_TASK_RENAME];
		hs->type = slot_type(e, S_TASK_RENAME);
		hs->active = e->links[S_TASK_RENAME] != NULL;
		if (hs->active)
			add_attach(hs, slot_defs[S_TASK_RENAME].tp);
		else
			add_error(hs, "%s", e->slot_err[S_TASK_RENAME][0] ? e->slot_err[S_TASK_RENAME] : "not loaded");
	}
	for (int h = 3; h < HADES_HOOK_COUNT; h++) {
		struct hook_status *hs = &be->hooks[h];
		if (!hook_requested(e->cfg, h) || h == HADES_HOOK_TASK_RENAME)
			continue;
		hs->type = "raw_tracepoint";
		/* the dispatchers this hook's syscalls need (file_open: sys_exit only) */
		bool side[2] = { false, false };
		for (size_t i = 0; i < sizeof(sc_defs) / sizeof(sc_defs[0]); i++) {
			if (sc_defs[i].hook == h) {
				side[0] |= sc_defs[i].he != 0;
				side[1] |= sc_defs[i].hx != 0;
			}
		}
		bool ok = true;
		for (int k = 0; k < 2; k++) {
			int sl = k ? S_SYS_EXIT : S_SYS_ENTER;
			if (!side[k] || e->links[sl])
				continue;
			ok = false;
			add_error(hs, "%s", e->slot_err[sl][0] ? e->slot_err[sl] : "sys tracepoint not loaded");
		}
		/* every handler this hook's syscalls route to must be loaded */
		bool reported[S_COUNT] = { 0 };
		for (size_t i = 0; i < sizeof(sc_defs) / sizeof(sc_defs[0]); i++) {
			if (sc_defs[i].hook != h)
				continue;
			int sls[2] = { slot_of_he(sc_defs[i].he), slot_of_hx(sc_defs[i].hx) };
			for (int k = 0; k < 2; k++) {
				if (sls[k] < 0 || slot_loaded(e, sls[k]))
					continue;
				ok = false;
				if (!reported[sls[k]]) {
					reported[sls[k]] = true;
					add_error(hs, "%s", e->slot_err[sls[k]]);
				}
			}
		}
		if (ok) {
			if (side[0])
				add_attach(hs, "sys_enter");
			if (side[1])
				add_attach(hs, "sys_exit");
		}
		if (h == HADES_HOOK_CONNECT) {
			/* optional: completion of non-blocking TCP connects */
			if (e->links[S_SOCK_STATE])
				add_attach(hs, slot_defs[S_SOCK_STATE].tp);
			else
				add_error(hs, "async TCP results unavailable: %s",
					  e->slot_err[S_SOCK_STATE][0] ? e->slot_err[S_SOCK_STATE]
									: "not loaded");
		}
		if (h == HADES_HOOK_MODULE) {
			/* either part gives records: the tracepoint adds the name */
			if (e->links[S_MODULE_TP]) {
				add_attach(hs, slot_defs[S_MODULE_TP].tp);
				if (!ok)
					hs->type = slot_type(e, S_MODULE_TP);
				ok = true;
			} else {
				add_error(hs, "module names unavailable: %s",
					  e->slot_err[S_MODULE_TP][0] ? e->slot_err[S_MODULE_TP]
									: "not loaded");
			}
		}
		hs->active = ok;
	}
}

int ebpf_backend_open(const struct config *cfg, struct backend *be, char *err, size_t errlen)
{
	double t0 = now_ms();
	struct ebpf *e = calloc(1, sizeof(*e));
	int rc;

	if (!e)
		return -ENOMEM;
	libbpf_set_print(libbpf_log);
	e->cfg = cfg;
	e->ncpus = libbpf_num_possible_cpus();
	if (e->ncpus <= 0) {
		rc = e->ncpus ? e->ncpus : -EINVAL;
		snprintf(err, errlen, "cannot count CPUs: %s", strerror(-rc));
		free(e);
		return rc;
	}
	e->percpu = calloc((size_t)e->ncpus, sizeof(*e->percpu));
	if (!e->percpu) {
		free(e);
		return -ENOMEM;
	}
	/* ring buffer size must be a power of two multiple of the page size */
	uint64_t rb = (uint64_t)cfg->ringbuf_mb << 20, p2 = 1ULL << 20;
	while (p2 < rb)
		p2 <<= 1;
	be->ringbuf_bytes = p2;

	/* HADES_FORCE_RAW_TP=1 exercises the raw_tp flavour on kernels where tp_btf works */
	rc = load_all(e, p2, err, errlen);
	if (rc)
		goto fail;
	e->skel->bss->connect_dedup_ns = (uint64_t)HADES_CONNECT_DEDUP_DEFAULT_MS * 1000000ULL;
	/* the kernel must not report our own activity back to us */
	rc = add_builtin_pid_denies(e);
	if (rc) {
		snprintf(err, errlen, "fill pid deny map: %s", strerror(-rc));
		goto fail;
	}
	rc = install_routes(e);
	if (rc) {
		snprintf(err, errlen, "fill syscall routes: %s", strerror(-rc));
		goto fail;
	}
	rc = add_fresh_prefixes(e);
	if (rc) {
		snprintf(err, errlen, "fill temporary folder map: %s", strerror(-rc));
		goto fail;
	}
	/* files written in the temporary folders are noted only for a file_open hook */
	e->skel->bss->fresh_on = hook_requested(cfg, HADES_HOOK_FILE_OPEN);
	/* set before attaching so the exit program never reports unasked */
	e->skel->bss->exit_cleanup_only = !hook_requested(cfg, HADES_HOOK_EXIT);
	attach_all(e);
	if (hook_requested(cfg, HADES_HOOK_EXEC) && !e->links[S_EXEC]) {
		/* without exec there is no point in this backend */
		snprintf(err, errlen, "%s", e->slot_err[S_EXEC]);
		rc = -ENOENT;
		goto fail;
	}
	hook_statuses(e, be);
	bool any = false;
	for (int h = 0; h < HADES_HOOK_COUNT; h++)
		any |= be->hooks[h].active;
	if (!any) {
		snprintf(err, errlen, "none of the requested hooks could be attached");
		rc = -ENOENT;
		goto fail;
	}
	e->rb = ring_buffer__new(bpf_map__fd(e->skel->maps.events), on_record, e, NULL);
	if (!e->rb) {
		rc = -errno;
		snprintf(err, errlen, "ring buffer: %s", strerror(-rc));
		goto fail;
	}
	be->name = "ebpf";
	be->ctx = e;
	be->fd = eb_fd;
	be->pump = eb_pump;
	be->counters = eb_counters;
	be->loader_stats = eb_loader_stats;
	be->tick = eb_tick;
	be->filter = eb_filter;
	be->hook = eb_hook;
	be->stop = eb_stop;
	be->batch_window_ns = (long)cfg->batch_ms * 1000 * 1000;
	be->destroy = eb_destroy;
	be->load_ms = now_ms() - t0;
	return 0;
fail:
	be->ctx = e;
	eb_destroy(be);
	return rc;
}
