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

struct hades_route {
	__u8 enter; /* HADES_HE_* slot in enter_progs, 0 = nothing at sys_enter */
	__u8 exit;  /* HADES_HX_* slot in exit_progs, 0 = nothing at sys_exit */
	__u8 sc;    /* enum hades_sc */
	__u8 hook;  /* enum hades_hook */
};

/* tail-call slots of the sys_enter handlers */
enum hades_enter_slot {
	HADES_HE_CONNECT = 1,  /* connect: sockaddr, unix path filter */
	HADES_HE_ARGS = 2,     /* generic: relevance check + argument capture */
	HADES_HE_DNS_SEND = 3, /* sendto/sendmsg/sendmmsg/write/writev to port 53: emits */
	HADES_HE_DNS_RECV = 4, /* recvfrom/recvmsg on a DNS-capable socket */
	HADES_HE_CRED = 5,     /* set*id/capset: old credentials */
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
	HADES_HX_SLOTS = 12,
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

#endif
