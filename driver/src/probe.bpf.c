// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Minimal programs of each type the driver might use. `hades-driver --probe`
 * loads and attaches them one at a time to learn what this kernel allows;
 * loading is the only reliable test (lockdown refuses fentry/LSM at load).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

SEC("tp/sched/sched_process_exec")
int probe_tracepoint(void *ctx)
{
	return 0;
}

SEC("raw_tp/sched_process_exec")
int probe_raw_tracepoint(struct bpf_raw_tracepoint_args *ctx)
{
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(probe_tp_btf, struct task_struct *p)
{
	return 0;
}

SEC("fentry/vfs_read")
int BPF_PROG(probe_fentry, struct file *f)
{
	return 0;
}

SEC("kprobe/vfs_read")
int BPF_KPROBE(probe_kprobe, struct file *f)
{
	return 0;
}

SEC("lsm/file_open")
int BPF_PROG(probe_lsm, struct file *f)
{
	return 0;
}
