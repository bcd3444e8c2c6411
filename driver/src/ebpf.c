// SPDX-License-Identifier: MIT
/* eBPF backend: loads hades.bpf.c, attaches the sched hooks, drains the ring buffer. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "driver.h"
#include "output.h"
#include "hades.skel.h"

struct ebpf {
	struct hades *skel;
	struct ring_buffer *rb;
	struct bpf_link *links[HADES_HOOK_COUNT];
	const struct config *cfg;
	int ncpus;
	struct hades_hook_counters *percpu; /* lookup buffer, ncpus entries */
	uint64_t bad_size;                  /* ring buffer records with a bad size */
};

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

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
		}
	}
	return 0;
}

static void eb_loader_stats(struct backend *be, struct jbuf *j)
{
	struct ebpf *e = be->ctx;
	jb_printf(j, ",\"ringbuf_bad_records\":%llu", (unsigned long long)e->bad_size);
}

static int map_clear(int fd, size_t key_size)
{
	uint8_t key[HADES_EXE_KEY_LEN], next[HADES_EXE_KEY_LEN];

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

static int eb_filter(struct backend *be, uint8_t op, uint8_t target, const uint8_t *val,
		     uint32_t len, const char **why)
{
	struct ebpf *e = be->ctx;
	uint8_t v;
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
		v = 1;
		if (op == HADES_FILTER_ADD)
			err = bpf_map_update_elem(fd, &pid, &v, BPF_ANY) ? -errno : 0;
		else if (op == HADES_FILTER_DEL)
			err = bpf_map_delete_elem(fd, &pid) && errno != ENOENT ? -errno : 0;
		else
			goto bad_op;
		return err;
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
		v = 1;
		if (op == HADES_FILTER_ADD) {
			if (bpf_map_update_elem(fd, key, &v, BPF_ANY))
				return -errno;
			mute_running(e, key);
			return 0;
		}
		if (op == HADES_FILTER_DEL)
			return bpf_map_delete_elem(fd, key) && errno != ENOENT ? -errno : 0;
		goto bad_op;
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
	default:
		*why = "unknown filter target";
		return -EINVAL;
	}
bad_op:
	*why = "operation not valid for this target";
	return -EINVAL;
}

static int eb_hook(struct backend *be, uint32_t hook, bool enable)
{
	struct ebpf *e = be->ctx;
	if (hook >= HADES_HOOK_COUNT)
		return -EINVAL;
	/* the programs stay attached; they check this flag first (cheap, and
	 * re-enabling cannot fail the way a re-attach could) */
	e->skel->bss->hook_disabled[hook] = enable ? 0 : 1;
	return 0;
}

static void eb_stop(struct backend *be)
{
	struct ebpf *e = be->ctx;
	for (int i = 0; i < HADES_HOOK_COUNT; i++) {
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

/* Silences libbpf's verbose loader chatter unless HADES_DEBUG is set. */
static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && !getenv("HADES_DEBUG"))
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static struct bpf_program *hook_prog(struct hades *skel, int hook, bool btf)
{
	switch (hook) {
	case HADES_HOOK_EXEC:
		return btf ? skel->progs.tpbtf_exec : skel->progs.raw_exec;
	case HADES_HOOK_FORK:
		return btf ? skel->progs.tpbtf_fork : skel->progs.raw_fork;
	default:
		return btf ? skel->progs.tpbtf_exit : skel->progs.raw_exit;
	}
}

/* Opens and loads the object with either the tp_btf or the raw_tp flavour. */
static int load_flavour(struct ebpf *e, bool btf, uint64_t rb_bytes, char *err, size_t errlen)
{
	int rc;

	e->skel = hades__open();
	if (!e->skel) {
		rc = -errno;
		snprintf(err, errlen, "open BPF object: %s", strerror(-rc));
		return rc;
	}
	for (int h = 0; h < HADES_HOOK_COUNT; h++) {
		bpf_program__set_autoload(hook_prog(e->skel, h, !btf), false);
	}
	e->skel->rodata->cfg_argv_max = e->cfg->argv_max;
	if ((rc = bpf_map__set_max_entries(e->skel->maps.scratch, (uint32_t)e->ncpus)) ||
	    (rc = bpf_map__set_max_entries(e->skel->maps.events, (uint32_t)rb_bytes))) {
		snprintf(err, errlen, "size maps: %s", strerror(-rc));
		return rc;
	}
	rc = hades__load(e->skel);
	if (rc) {
		snprintf(err, errlen, "load %s programs: %s", btf ? "tp_btf" : "raw_tp",
			 strerror(-rc));
		hades__destroy(e->skel);
		e->skel = NULL;
		return rc;
	}
	return 0;
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

	/* HADES_FORCE_RAW_TP=1 exercises the fallback flavour on kernels where tp_btf works */
	bool btf = !getenv("HADES_FORCE_RAW_TP");
	char err1[160] = "forced by HADES_FORCE_RAW_TP";
	rc = btf ? load_flavour(e, true, p2, err1, sizeof(err1)) : -ENOTSUP;
	if (rc) {
		LOG_ERR("%s; trying raw_tp\n", err1);
		btf = false;
		rc = load_flavour(e, false, p2, err, errlen);
		if (rc)
			goto fail;
	}
	/* the kernel must not report our own activity back to us */
	rc = add_builtin_pid_denies(e);
	if (rc) {
		snprintf(err, errlen, "fill pid deny map: %s", strerror(-rc));
		goto fail;
	}
	for (int h = 0; h < HADES_HOOK_COUNT; h++) {
		struct hook_status *hs = &be->hooks[h];
		hs->type = btf ? "tp_btf" : "raw_tracepoint";
		e->links[h] = bpf_program__attach(hook_prog(e->skel, h, btf));
		if (!e->links[h]) {
			int a = -errno;
			snprintf(hs->error, sizeof(hs->error), "attach: %s", strerror(-a));
			hs->active = false;
			if (h == HADES_HOOK_EXEC) {
				/* without exec there is no point in this backend */
				snprintf(err, errlen, "attach sched_process_exec: %s", strerror(-a));
				rc = a;
				goto fail;
			}
		} else {
			hs->active = true;
		}
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
	be->filter = eb_filter;
	be->hook = eb_hook;
	be->stop = eb_stop;
	be->batch_window_ns = 5 * 1000 * 1000; /* the ring buffer holds seconds of storm */
	be->destroy = eb_destroy;
	be->load_ms = now_ms() - t0;
	return 0;
fail:
	be->ctx = e;
	eb_destroy(be);
	return rc;
}
