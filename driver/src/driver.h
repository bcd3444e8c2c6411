/* SPDX-License-Identifier: MIT */
/* Shared declarations of the loader: configuration and the backend interface. */
#ifndef HADES_DRIVER_H
#define HADES_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include <linux/types.h>

#include "json.h"
#include "wire.h"

#define HADES_DRIVER_NAME "hades-driver"
#define HADES_DRIVER_VERSION "0.1.0"

#define LOG_ERR(...) fprintf(stderr, "hades-driver: " __VA_ARGS__)

enum backend_choice { BACKEND_AUTO, BACKEND_EBPF, BACKEND_CNPROC };

struct config {
	enum backend_choice backend;
	uint32_t argv_max;
	uint32_t ringbuf_mb;
	uint32_t stats_interval_ms;
	/* longest pause after a busy wakeup, so records gather into big writes
	 * (eBPF only; see run_loop) */
	uint32_t batch_ms;
	pid_t *exclude_pids;   /* own pid, parent pid, then --exclude-pid values */
	size_t n_exclude_pids;
	bool ignore_stdin;     /* debugging: keep running when stdin is closed */
	/* bit h set: hook h was left out of --hooks, so nothing of it is loaded
	 * or attached. Zero (the default, also for --probe) = every hook. */
	uint32_t hooks_unrequested;
};

/* Monotonic milliseconds, for timing how long a backend took to load. */
static inline double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static inline bool hook_requested(const struct config *cfg, int hook)
{
	return !(cfg->hooks_unrequested & (1u << hook));
}

extern const char *const hades_hook_names[HADES_HOOK_COUNT];

struct hook_status {
	const char *type;      /* "tp_btf", "raw_tracepoint", "netlink" */
	bool requested;        /* listed in --hooks (HOOK enable of others: ENOENT) */
	bool active;
	bool enabled_state;    /* false after a HOOK disable command */
	char error[192];       /* empty when none; may be set on an active hook when an optional part failed */
	char attach[96];       /* comma-separated attach points in use (HELLO "attach") */
};

/* One event source. Every function returns 0 or a negative errno. */
struct backend {
	const char *name; /* "ebpf" or "cnproc" */
	void *ctx;
	struct hook_status hooks[HADES_HOOK_COUNT];
	/* fd to wait on for readability; on readability call pump() */
	int (*fd)(struct backend *be);
	/* moves pending events to the output batch (caller flushes) */
	int (*pump)(struct backend *be);
	/* fills c[HADES_HOOK_COUNT] with cumulative counters */
	int (*counters)(struct backend *be, struct hades_hook_counters *c);
	/* called about once a second (the loader's timer): PROC_RENAME catch-up records
	 * (PROTOCOL.md 2.16); may write records (caller flushes) */
	int (*tick)(struct backend *be);
	/* appends backend specific ,"key":value pairs to the loader stats */
	void (*loader_stats)(struct backend *be, struct jbuf *j);
	int (*filter)(struct backend *be, uint8_t op, uint8_t target, const uint8_t *val,
		      uint32_t len, const char **why);
	int (*hook)(struct backend *be, uint32_t hook, bool enable);
	/* stops event production (detach hooks); pump() still drains */
	void (*stop)(struct backend *be);
	void (*destroy)(struct backend *be);
	/* informational for HELLO */
	uint64_t ringbuf_bytes;
	/* longest pause after a busy wakeup to batch records; 0 = none (cn_proc
	 * must read /proc before the process exits, so it never waits) */
	long batch_window_ns;
	double load_ms;
};

int ebpf_backend_open(const struct config *cfg, struct backend *be, char *err, size_t errlen);
int cnproc_backend_open(const struct config *cfg, struct backend *be, char *err, size_t errlen);
int probe_run(void);

/* Appends the HELLO "hooks" array for be. */
void hooks_json(struct jbuf *j, const struct backend *be);

/* Sets the status of a hook left out of --hooks (HELLO: inactive, "not requested"). */
void hook_status_unrequested(struct hook_status *hs);

/* Resolves a hook name to its id, -1 if unknown. */
int hook_by_name(const char *name, size_t len);

#endif
