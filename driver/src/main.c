// SPDX-License-Identifier: MIT
/*
 * hades-driver: streams process lifecycle records to the agent on stdout and
 * takes commands on stdin. See PROTOCOL.md for the byte layout.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "driver.h"
#include "output.h"

const char *const hades_hook_names[HADES_HOOK_COUNT] = {
	[HADES_HOOK_EXEC] = "sched_process_exec",
	[HADES_HOOK_FORK] = "sched_process_fork",
	[HADES_HOOK_EXIT] = "sched_process_exit",
	[HADES_HOOK_CONNECT] = "connect",
	[HADES_HOOK_ACCEPT] = "accept",
	[HADES_HOOK_LISTEN] = "listen",
	[HADES_HOOK_DNS] = "dns",
	[HADES_HOOK_PTRACE] = "ptrace",
	[HADES_HOOK_MEMFD] = "memfd_create",
	[HADES_HOOK_MODULE] = "module_load",
	[HADES_HOOK_PRIV] = "priv_change",
	[HADES_HOOK_FILE_CREATE] = "file_create",
	[HADES_HOOK_FILE_RENAME] = "file_rename",
	[HADES_HOOK_FILE_DELETE] = "file_delete",
	[HADES_HOOK_FILE_CHMOD] = "file_chmod",
	[HADES_HOOK_KILL] = "kill",
	[HADES_HOOK_FILE_OPEN] = "file_open",
	[HADES_HOOK_TASK_RENAME] = "task_rename",
};

static struct backend backend;
static struct config cfg;

int hook_by_name(const char *name, size_t len)
{
	for (int i = 0; i < HADES_HOOK_COUNT; i++)
		if (strlen(hades_hook_names[i]) == len && memcmp(hades_hook_names[i], name, len) == 0)
			return i;
	return -1;
}

void hook_status_unrequested(struct hook_status *hs)
{
	hs->requested = false;
	hs->active = false;
	hs->type = "none";
	hs->attach[0] = 0;
	snprintf(hs->error, sizeof(hs->error), "not requested");
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: hades-driver [--backend auto|ebpf|cnproc] [--argv-max BYTES]\n"
		"                    [--ringbuf-mb N] [--batch-ms N] [--exclude-pid PID]...\n"
		"                    [--hooks NAME[,NAME...]]... [--stats-interval-ms N]\n"
		"                    [--ignore-stdin] [--probe]\n"
		"Frames go to stdout (see PROTOCOL.md), commands come from stdin,\n"
		"diagnostics go to stderr.\n");
}

/* Adds the comma-separated hook names of arg to *want; on an unknown name
 * prints the valid ones and returns -EINVAL. */
static int parse_hooks(const char *arg, uint32_t *want)
{
	for (const char *p = arg;;) {
		size_t n = strcspn(p, ",");
		int h = hook_by_name(p, n);
		if (h < 0) {
			LOG_ERR("--hooks: unknown hook \"%.*s\"; valid names:", (int)n, p);
			for (int i = 0; i < HADES_HOOK_COUNT; i++)
				fprintf(stderr, "%s%s", i ? "," : " ", hades_hook_names[i]);
			fputc('\n', stderr);
			return -EINVAL;
		}
		*want |= 1u << h;
		if (!p[n])
			return 0;
		p += n + 1;
	}
}

static int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *s == 0 || *end || *s == '-' || v < min || v > max)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

static int64_t ns_of(clockid_t c)
{
	struct timespec t;
	clock_gettime(c, &t);
	return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* CLOCK_REALTIME - CLOCK_BOOTTIME, sampled tightly to keep the error small */
static int64_t boot_time_ns(void)
{
	int64_t best = 0, best_gap = INT64_MAX;
	for (int i = 0; i < 5; i++) {
		int64_t a = ns_of(CLOCK_BOOTTIME), r = ns_of(CLOCK_REALTIME), b = ns_of(CLOCK_BOOTTIME);
		if (b - a < best_gap) {
			best_gap = b - a;
			best = r - (a + (b - a) / 2);
		}
	}
	return best;
}

/* ,"attach":["a","b"] from a comma-separated list */
static void attach_json(struct jbuf *j, const char *list)
{
	jb_raw(j, ",\"attach\":[");
	for (const char *p = list; *p;) {
		size_t n = strcspn(p, ",");
		jb_printf(j, "%s\"%.*s\"", p == list ? "" : ",", (int)n, p);
		p += n + (p[n] == ',');
	}
	jb_raw(j, "]");
}

void hooks_json(struct jbuf *j, const struct backend *be)
{
	jb_raw(j, "[");
	for (int i = 0; i < HADES_HOOK_COUNT; i++) {
		const struct hook_status *h = &be->hooks[i];
		jb_printf(j, "%s{\"id\":%d,\"name\":\"%s\",\"type\":\"%s\",\"active\":%s,\"error\":",
			  i ? "," : "", i, hades_hook_names[i], h->type ? h->type : "none",
			  h->active ? "true" : "false");
		jb_str_or_null(j, h->error[0] ? h->error : NULL);
		attach_json(j, h->attach);
		jb_raw(j, "}");
	}
	jb_raw(j, "]");
}

static int emit_hello(void)
{
	struct jbuf j;
	struct utsname u;

	jb_init(&j);
	jb_printf(&j, "{\"protocol\":%d,\"driver\":\"%s\",\"version\":\"%s\",\"backend\":\"%s\"",
		  HADES_PROTOCOL_VERSION, HADES_DRIVER_NAME, HADES_DRIVER_VERSION, backend.name);
	jb_raw(&j, ",\"hooks\":");
	hooks_json(&j, &backend);
	jb_printf(&j, ",\"argv_max\":%u,\"ringbuf_bytes\":%llu,\"batch_ms\":%ld,\"boot_time_ns\":%lld",
		  cfg.argv_max, (unsigned long long)backend.ringbuf_bytes,
		  backend.batch_window_ns / 1000000L, (long long)boot_time_ns());
	jb_printf(&j, ",\"pid\":%d,\"load_ms\":%.3f,\"clk_tck\":%ld", getpid(), backend.load_ms,
		  sysconf(_SC_CLK_TCK));
	jb_raw(&j, ",\"excluded_pids\":[");
	for (size_t i = 0; i < cfg.n_exclude_pids; i++)
		jb_printf(&j, "%s%d", i ? "," : "", cfg.exclude_pids[i]);
	jb_raw(&j, "]");
	if (uname(&u) == 0) {
		jb_raw(&j, ",\"kernel\":");
		jb_str(&j, u.release);
	}
	jb_raw(&j, "}");
	int rc = j.oom ? -ENOMEM : out_frame(HADES_FRAME_HELLO, j.p, (uint32_t)j.len);
	jb_free(&j);
	return rc;
}

static int64_t start_ns;

int emit_stats(int64_t request_id)
{
	struct hades_hook_counters c[HADES_HOOK_COUNT];
	const struct output_stats *o = out_stats();
	const struct control_stats *cs = control_stats();
	struct jbuf j;
	/* flush first so the loader counters include every record before this frame */
	int err = out_flush();
	if (err)
		return err;
	err = backend.counters(&backend, c);

	jb_init(&j);
	jb_raw(&j, "{");
	if (request_id >= 0)
		jb_printf(&j, "\"request_id\":%lld,", (long long)request_id);
	jb_printf(&j, "\"backend\":\"%s\",\"uptime_ms\":%lld,\"hooks\":{", backend.name,
		  (long long)((ns_of(CLOCK_MONOTONIC) - start_ns) / 1000000));
	for (int i = 0; i < HADES_HOOK_COUNT && !err; i++) {
		jb_printf(&j,
			  "%s\"%s\":{\"active\":%s,\"enabled\":%s,\"seen\":%llu,\"sent\":%llu,"
			  "\"filtered\":%llu,\"dropped_ringbuf_full\":%llu,\"truncated\":%llu,"
			  "\"read_errors\":%llu,\"ignored\":%llu,\"disabled\":%llu,"
			  "\"suppressed\":%llu,\"dropped_state_full\":%llu,\"dropped_rate_limit\":%llu,"
			  "\"evicted\":%llu",
			  i ? "," : "", hades_hook_names[i], backend.hooks[i].active ? "true" : "false",
			  backend.hooks[i].enabled_state ? "true" : "false",
			  (unsigned long long)c[i].seen, (unsigned long long)c[i].sent,
			  (unsigned long long)c[i].filtered, (unsigned long long)c[i].dropped_ringbuf_full,
			  (unsigned long long)c[i].truncated, (unsigned long long)c[i].read_errors,
			  (unsigned long long)c[i].ignored, (unsigned long long)c[i].disabled,
			  (unsigned long long)c[i].suppressed,
			  (unsigned long long)c[i].dropped_state_full,
			  (unsigned long long)c[i].dropped_rate_limit,
			  (unsigned long long)c[i].evicted);
		jb_raw(&j, backend.hooks[i].requested ? "}" : ",\"error\":\"not requested\"}");
	}
	/* records/frames/bytes count what was written before this frame */
	jb_printf(&j,
		  "},\"loader\":{\"records\":%llu,\"frames\":%llu,\"bytes\":%llu,"
		  "\"bad_records\":%llu,\"commands\":%llu,\"commands_rejected\":%llu",
		  (unsigned long long)o->records, (unsigned long long)o->frames,
		  (unsigned long long)o->bytes, (unsigned long long)o->bad_records,
		  (unsigned long long)cs->frames, (unsigned long long)cs->rejected);
	backend.loader_stats(&backend, &j);
	jb_raw(&j, "}");
	if (err) {
		jb_raw(&j, ",\"error\":");
		jb_str(&j, strerror(-err));
	}
	jb_raw(&j, "}");
	int rc = j.oom ? -ENOMEM : out_frame(HADES_FRAME_STATS, j.p, (uint32_t)j.len);
	jb_free(&j);
	return rc;
}

static int add_exclude(pid_t pid)
{
	for (size_t i = 0; i < cfg.n_exclude_pids; i++)
		if (cfg.exclude_pids[i] == pid)
			return 0;
	pid_t *p = realloc(cfg.exclude_pids, (cfg.n_exclude_pids + 1) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	p[cfg.n_exclude_pids++] = pid;
	cfg.exclude_pids = p;
	return 0;
}

static int epoll_add(int ep, int fd, uint32_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = tag };
	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

#define BATCH_MIN_RECORDS 2

/* When the last pump emptied the ring buffer: what the next pump reads
 * gathered since then (the pause included). */
static int64_t gathered_since;

/*
 * How long to let records gather after a pump that delivered `bytes` which
 * had gathered for `elapsed_ns`: the batch window, shortened so that at the
 * rate just seen the ring buffer stays at most a quarter full (a flood must
 * not overflow it while the loop sleeps).
 */
static long batch_pause_ns(uint64_t bytes, uint64_t elapsed_ns)
{
	long pause = backend.batch_window_ns;
	if (bytes == 0 || elapsed_ns == 0)
		return pause;
	double fill_ns = (double)(backend.ringbuf_bytes / 4) * (double)elapsed_ns / (double)bytes;
	return fill_ns < (double)pause ? (long)fill_ns : pause;
}

enum { TAG_EVENTS = 1, TAG_STDIN, TAG_SIGNAL, TAG_TIMER };

#define TICK_MS 1000 /* the backend's tick (struct backend.tick) */

static int run_loop(void)
{
	int ep = -1, sfd = -1, tfd = -1, rc = 0;
	bool stdin_open = !cfg.ignore_stdin;
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	/* signals arrive through signalfd so shutdown happens between batches */
	if (sigprocmask(SIG_BLOCK, &mask, NULL) || (sfd = signalfd(-1, &mask, SFD_CLOEXEC)) < 0) {
		rc = -errno;
		LOG_ERR("signalfd: %s\n", strerror(errno));
		goto out;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0) {
		rc = -errno;
		LOG_ERR("epoll: %s\n", strerror(errno));
		goto out;
	}
	if ((rc = epoll_add(ep, backend.fd(&backend), TAG_EVENTS)) || (rc = epoll_add(ep, sfd, TAG_SIGNAL))) {
		LOG_ERR("epoll_ctl: %s\n", strerror(-rc));
		goto out;
	}
	if (stdin_open) {
		int e = epoll_add(ep, STDIN_FILENO, TAG_STDIN);
		if (e == -EPERM) {
			/* regular files and /dev/null cannot be polled: treat as EOF */
			out_log("warn", "stdin_not_pollable",
				"stdin cannot be polled; shutting down (use --ignore-stdin to run without a control channel)");
			goto out;
		} else if (e) {
			rc = e;
			LOG_ERR("epoll_ctl stdin: %s\n", strerror(-e));
			goto out;
		}
	}
	/* One timer: STATS every stats_interval_ms, and the backend's tick (PROC_RENAME catch-up)
	 * about once a second whatever the STATS interval, off included. */
	uint32_t period_ms = cfg.stats_interval_ms && cfg.stats_interval_ms < TICK_MS ? cfg.stats_interval_ms : TICK_MS;
	int64_t stats_due = ns_of(CLOCK_MONOTONIC) + (int64_t)cfg.stats_interval_ms * 1000000LL;
	{
		struct itimerspec its = {
			.it_interval = { period_ms / 1000, (period_ms % 1000) * 1000000L },
		};
		its.it_value = its.it_interval;
		tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		if (tfd < 0 || timerfd_settime(tfd, 0, &its, NULL) || (rc = epoll_add(ep, tfd, TAG_TIMER))) {
			rc = rc ? rc : -errno;
			LOG_ERR("stats timer: %s\n", strerror(-rc));
			goto out;
		}
	}

	for (;;) {
		struct epoll_event evs[4];
		int n = epoll_wait(ep, evs, 4, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			LOG_ERR("epoll_wait: %s\n", strerror(errno));
			goto out;
		}
		for (int i = 0; i < n; i++) {
			switch (evs[i].data.u32) {
			case TAG_EVENTS: {
				uint64_t before = out_stats()->records + out_pending();
				uint64_t bytes_before = out_stats()->bytes;
				rc = backend.pump(&backend);
				if (rc == 0)
					rc = out_flush();
				/* Under load, pausing lets records accumulate so one wakeup
				 * and one write carry hundreds of them: the agent then
				 * wakes a few dozen times a second instead of hundreds,
				 * which more than halves its CPU in an exec storm. When
				 * idle nothing arrives and the loop sleeps in epoll_wait
				 * without a timeout. */
				int64_t drained = ns_of(CLOCK_MONOTONIC);
				if (rc == 0 && backend.batch_window_ns &&
				    out_stats()->records + out_pending() - before >= BATCH_MIN_RECORDS) {
					long pause = batch_pause_ns(out_stats()->bytes - bytes_before,
								    (uint64_t)(drained - gathered_since));
					struct timespec ts = { pause / 1000000000L, pause % 1000000000L };
					nanosleep(&ts, NULL);
				}
				/* the ring buffer was empty when the pump ended */
				gathered_since = drained;
				break;
			}
			case TAG_STDIN: {
				bool eof;
				rc = control_read(STDIN_FILENO, &eof);
				if (rc == 0 && eof) {
					LOG_ERR("stdin closed, shutting down\n");
					goto out;
				}
				break;
			}
			case TAG_SIGNAL: {
				struct signalfd_siginfo si;
				if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
					LOG_ERR("signal %u, shutting down\n", si.ssi_signo);
				goto out;
			}
			case TAG_TIMER: {
				uint64_t ticks;
				if (read(tfd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN) {
					rc = -errno;
					break;
				}
				rc = backend.tick ? backend.tick(&backend) : 0;
				if (rc == 0)
					rc = out_flush();
				/* half a period early at most: a tick that comes a little before the
				 * due time still sends the STATS it is there for */
				int64_t now = ns_of(CLOCK_MONOTONIC);
				if (rc == 0 && cfg.stats_interval_ms && now >= stats_due - (int64_t)period_ms * 500000LL) {
					stats_due += (int64_t)cfg.stats_interval_ms * 1000000LL;
					if (stats_due < now)
						stats_due = now + (int64_t)cfg.stats_interval_ms * 1000000LL;
					rc = emit_stats(-1);
				}
				break;
			}
			}
			if (rc) {
				if (rc != -EPIPE)
					LOG_ERR("fatal: %s\n", strerror(-rc));
				goto out;
			}
		}
	}
out:
	if (tfd >= 0)
		close(tfd);
	if (sfd >= 0)
		close(sfd);
	if (ep >= 0)
		close(ep);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "backend", required_argument, NULL, 'b' },
		{ "argv-max", required_argument, NULL, 'a' },
		{ "ringbuf-mb", required_argument, NULL, 'r' },
		{ "batch-ms", required_argument, NULL, 'w' },
		{ "exclude-pid", required_argument, NULL, 'x' },
		{ "stats-interval-ms", required_argument, NULL, 's' },
		{ "ignore-stdin", no_argument, NULL, 'i' },
		{ "hooks", required_argument, NULL, 'k' },
		{ "probe", no_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	bool probe = false, hooks_given = false;
	uint32_t v, hooks_want = 0;
	int c;

	start_ns = ns_of(CLOCK_MONOTONIC);
	cfg.backend = BACKEND_AUTO;
	cfg.argv_max = 4096;
	cfg.ringbuf_mb = 8;
	cfg.stats_interval_ms = 1000;
	cfg.batch_ms = 50;
	if (add_exclude(getpid()) || add_exclude(getppid()))
		return 1;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			if (!strcmp(optarg, "auto"))
				cfg.backend = BACKEND_AUTO;
			else if (!strcmp(optarg, "ebpf"))
				cfg.backend = BACKEND_EBPF;
			else if (!strcmp(optarg, "cnproc"))
				cfg.backend = BACKEND_CNPROC;
			else {
				LOG_ERR("--backend must be auto, ebpf or cnproc\n");
				return 2;
			}
			break;
		case 'a':
			if (parse_u32(optarg, 0, HADES_ARGV_MAX_LIMIT, &cfg.argv_max)) {
				LOG_ERR("--argv-max must be 0..%d\n", HADES_ARGV_MAX_LIMIT);
				return 2;
			}
			break;
		case 'r':
			if (parse_u32(optarg, 1, 1024, &cfg.ringbuf_mb)) {
				LOG_ERR("--ringbuf-mb must be 1..1024\n");
				return 2;
			}
			break;
		case 'w':
			if (parse_u32(optarg, 0, 1000, &cfg.batch_ms)) {
				LOG_ERR("--batch-ms must be 0..1000 (0 = never wait)\n");
				return 2;
			}
			break;
		case 'x':
			if (parse_u32(optarg, 1, INT_MAX, &v)) {
				LOG_ERR("--exclude-pid needs a positive pid\n");
				return 2;
			}
			if (add_exclude((pid_t)v))
				return 1;
			break;
		case 's':
			if (parse_u32(optarg, 0, 3600000, &cfg.stats_interval_ms)) {
				LOG_ERR("--stats-interval-ms must be 0..3600000 (0 = only on request)\n");
				return 2;
			}
			break;
		case 'i':
			cfg.ignore_stdin = true;
			break;
		case 'k':
			if (parse_hooks(optarg, &hooks_want))
				return 2;
			hooks_given = true;
			break;
		case 'p':
			probe = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	if (hooks_given)
		cfg.hooks_unrequested = ((1u << HADES_HOOK_COUNT) - 1) & ~hooks_want;
	if (probe)
		return probe_run() ? 1 : 0;

	/* a dead agent must surface as EPIPE from write, not kill us silently */
	signal(SIGPIPE, SIG_IGN);

	char err[256] = "";
	int rc = -ENOSYS;
	if (cfg.backend != BACKEND_CNPROC) {
		rc = ebpf_backend_open(&cfg, &backend, err, sizeof(err));
		if (rc)
			LOG_ERR("ebpf backend unavailable: %s\n", err);
	}
	char ebpf_err[256];
	snprintf(ebpf_err, sizeof(ebpf_err), "%s", err);
	if (rc && cfg.backend != BACKEND_EBPF) {
		rc = cnproc_backend_open(&cfg, &backend, err, sizeof(err));
		if (rc)
			LOG_ERR("cnproc backend unavailable: %s\n", err);
	}
	if (rc)
		return 1;
	for (int i = 0; i < HADES_HOOK_COUNT; i++)
		backend.hooks[i].enabled_state = backend.hooks[i].requested;
	if ((rc = out_init(STDOUT_FILENO))) {
		LOG_ERR("output: %s\n", strerror(-rc));
		backend.destroy(&backend);
		return 1;
	}
	control_init(&backend);
	rc = emit_hello();
	if (rc == 0 && cfg.backend == BACKEND_AUTO && strcmp(backend.name, "ebpf") != 0)
		rc = out_log("warn", "ebpf_unavailable", "eBPF backend failed (%s); using cn_proc", ebpf_err);
	if (rc == 0)
		rc = run_loop();
	/* clean shutdown: detach first so nothing new arrives, then drain and
	 * report final counters */
	backend.stop(&backend);
	if (rc != -EPIPE) {
		int e = backend.pump(&backend);
		if (e == 0)
			e = emit_stats(-1);
		if (e == 0)
			out_flush();
	}
	backend.destroy(&backend);
	control_fini();
	out_fini();
	free(cfg.exclude_pids);
	return rc == 0 || rc == -EPIPE ? 0 : 1;
}
