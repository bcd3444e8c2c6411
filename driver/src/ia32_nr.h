/* SPDX-License-Identifier: MIT */
/*
 * ia32 syscall numbers the driver routes on x86_64 (a compat task's numbering), from the
 * kernel's arch/x86/entry/syscalls/syscall_32.tbl. tools/ia32-syscalls.c checks them against
 * <asm/unistd_32.h> (generated from that table) and makes the calls with int $0x80.
 */
#ifndef HADES_IA32_NR_H
#define HADES_IA32_NR_H

#define HADES_NR32_write 4
#define HADES_NR32_open 5
#define HADES_NR32_creat 8
#define HADES_NR32_link 9
#define HADES_NR32_unlink 10
#define HADES_NR32_chmod 15
#define HADES_NR32_setuid 23
#define HADES_NR32_ptrace 26
#define HADES_NR32_utime 30
#define HADES_NR32_kill 37
#define HADES_NR32_rename 38
#define HADES_NR32_mkdir 39
#define HADES_NR32_rmdir 40
#define HADES_NR32_setgid 46
#define HADES_NR32_setreuid 70
#define HADES_NR32_setregid 71
#define HADES_NR32_symlink 83
#define HADES_NR32_truncate 92
#define HADES_NR32_ftruncate 93
#define HADES_NR32_fchmod 94
#define HADES_NR32_socketcall 102
#define HADES_NR32_init_module 128
#define HADES_NR32_setfsuid 138
#define HADES_NR32_setfsgid 139
#define HADES_NR32_writev 146
#define HADES_NR32_setresuid 164
#define HADES_NR32_setresgid 170
#define HADES_NR32_capset 185
#define HADES_NR32_truncate64 193
#define HADES_NR32_ftruncate64 194
#define HADES_NR32_setreuid32 203
#define HADES_NR32_setregid32 204
#define HADES_NR32_setresuid32 208
#define HADES_NR32_setresgid32 210
#define HADES_NR32_setuid32 213
#define HADES_NR32_setgid32 214
#define HADES_NR32_setfsuid32 215
#define HADES_NR32_setfsgid32 216
#define HADES_NR32_tkill 238
#define HADES_NR32_tgkill 270
#define HADES_NR32_utimes 271
#define HADES_NR32_openat 295
#define HADES_NR32_mkdirat 296
#define HADES_NR32_futimesat 299
#define HADES_NR32_unlinkat 301
#define HADES_NR32_renameat 302
#define HADES_NR32_linkat 303
#define HADES_NR32_symlinkat 304
#define HADES_NR32_fchmodat 306
#define HADES_NR32_utimensat 320
#define HADES_NR32_open_by_handle_at 342
#define HADES_NR32_sendmmsg 345
#define HADES_NR32_process_vm_writev 348
#define HADES_NR32_finit_module 350
#define HADES_NR32_renameat2 353
#define HADES_NR32_memfd_create 356
#define HADES_NR32_connect 362
#define HADES_NR32_listen 363
#define HADES_NR32_accept4 364
#define HADES_NR32_sendto 369
#define HADES_NR32_sendmsg 370
#define HADES_NR32_recvfrom 371
#define HADES_NR32_recvmsg 372
#define HADES_NR32_utimensat_time64 412
#define HADES_NR32_pidfd_send_signal 424
#define HADES_NR32_openat2 437
#define HADES_NR32_fchmodat2 452

#endif
