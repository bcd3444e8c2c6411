// SPDX-License-Identifier: MIT
/* --probe: which BPF program types load and attach on this kernel. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "driver.h"
#include "probe.skel.h"

struct probe_case {
	const char *type;
	const char *prog;
};

static const struct probe_case cases[] = {
	{ "tracepoint", "probe_tracepoint" },
	{ "raw_tracepoint", "probe_raw_tracepoint" },
	{ "tp_btf", "probe_tp_btf" },
	{ "fentry", "probe_fentry" },
	{ "kprobe", "probe_kprobe" },
	{ "lsm", "probe_lsm" },
};

static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level;
	(void)fmt;
	(void)ap;
	return 0;
}

/* Loads only the named program and tries to attach it; error text on failure. */
static void try_case(const struct probe_case *pc, struct jbuf *j)
{
	struct probe *skel = probe__open();
	struct bpf_program *prog, *target = NULL;
	struct bpf_link *link = NULL;
	bool loaded = false, attached = false;
	char err[160] = "";

	if (!skel) {
		snprintf(err, sizeof(err), "open: %s", strerror(errno));
		goto done;
	}
	bpf_object__for_each_program(prog, skel->obj) {
		bool me = strcmp(bpf_program__name(prog), pc->prog) == 0;
		bpf_program__set_autoload(prog, me);
		if (me)
			target = prog;
	}
	if (!target) {
		snprintf(err, sizeof(err), "program %s missing from probe object", pc->prog);
		goto done;
	}
	int rc = probe__load(skel);
	if (rc) {
		snprintf(err, sizeof(err), "load: %s", strerror(-rc));
		goto done;
	}
	loaded = true;
	link = bpf_program__attach(target);
	if (!link) {
		snprintf(err, sizeof(err), "attach: %s", strerror(errno));
		goto done;
	}
	attached = true;
done:
	bpf_link__destroy(link);
	probe__destroy(skel);
	jb_printf(j, "\"%s\":{\"load\":%s,\"attach\":%s,\"error\":", pc->type, loaded ? "true" : "false",
		  attached ? "true" : "false");
	jb_str_or_null(j, err[0] ? err : NULL);
	jb_raw(j, "}");
}

int probe_run(void)
{
	struct jbuf j;
	struct utsname u;

	libbpf_set_print(quiet);
	jb_init(&j);
	jb_raw(&j, "{\"driver\":\"" HADES_DRIVER_NAME "\",\"version\":\"" HADES_DRIVER_VERSION "\"");
	if (uname(&u) == 0) {
		jb_raw(&j, ",\"kernel\":");
		jb_str(&j, u.release);
	}
	/* classic tracepoints attach through tracefs ids: say whether it is there */
	bool tracefs = access("/sys/kernel/tracing/events", F_OK) == 0 ||
		       access("/sys/kernel/debug/tracing/events", F_OK) == 0;
	jb_printf(&j, ",\"tracefs\":%s", tracefs ? "true" : "false");
	jb_printf(&j, ",\"btf\":%s,\"ringbuf\":%s,\"types\":{",
		  access("/sys/kernel/btf/vmlinux", R_OK) == 0 ? "true" : "false",
		  libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, NULL) == 1 ? "true" : "false");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (i)
			jb_raw(&j, ",");
		try_case(&cases[i], &j);
	}
	jb_raw(&j, "}");
	/* the real hook set: load and attach the driver's programs once */
	pid_t self = getpid();
	struct config cfg = { .backend = BACKEND_EBPF, .argv_max = 4096, .ringbuf_mb = 1,
			      .exclude_pids = &self, .n_exclude_pids = 1 };
	struct backend be = { 0 };
	char err[256] = "";
	if (ebpf_backend_open(&cfg, &be, err, sizeof(err)) == 0) {
		jb_printf(&j, ",\"load_ms\":%.1f,\"hooks\":", be.load_ms);
		hooks_json(&j, &be);
		be.destroy(&be);
	} else {
		jb_raw(&j, ",\"hooks\":null,\"hooks_error\":");
		jb_str(&j, err);
	}
	jb_raw(&j, "}\n");
	if (j.oom) {
		jb_free(&j);
		return -1;
	}
	fputs(j.p, stdout);
	jb_free(&j);
	return fflush(stdout) ? -1 : 0;
}
