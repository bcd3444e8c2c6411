// SPDX-License-Identifier: MIT
#include "output.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "json.h"
#include "wire.h"

/* Big enough for the largest EXEC record (argv_max 32 KiB + paths) and for
 * batching hundreds of typical records into one write(). */
#define BATCH_CAP (64 * 1024)

static int out_fd = -1;
static uint8_t *batch;
static uint32_t batch_len;
static uint32_t batch_records;
static struct output_stats stats;

int out_init(int fd)
{
	batch = malloc(BATCH_CAP);
	if (!batch)
		return -ENOMEM;
	out_fd = fd;
	batch_len = 0;
	return 0;
}

void out_fini(void)
{
	free(batch);
	batch = NULL;
}

uint64_t out_pending(void)
{
	return batch_records;
}

const struct output_stats *out_stats(void)
{
	return &stats;
}

/* Writes all of iov; blocking is intended: a slow agent backs up into the
 * ring buffer, where the kernel counts the drops. */
static int write_all(struct iovec *iov, int cnt)
{
	while (cnt > 0) {
		ssize_t n = writev(out_fd, iov, cnt);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		while (cnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

static int emit(uint16_t type, const void *payload, uint32_t len)
{
	struct hades_frame_header h = { .payload_len = len, .type = type, .flags = 0 };
	struct iovec iov[2] = {
		{ .iov_base = &h, .iov_len = sizeof(h) },
		{ .iov_base = (void *)payload, .iov_len = len },
	};

	if (len > HADES_FRAME_MAX_PAYLOAD)
		return -EMSGSIZE;
	int err = write_all(iov, len ? 2 : 1);
	if (err)
		return err;
	stats.frames++;
	stats.bytes += sizeof(h) + len;
	return 0;
}

int out_flush(void)
{
	if (batch_len == 0)
		return 0;
	int err = emit(HADES_FRAME_RECORDS, batch, batch_len);
	if (err)
		return err;
	stats.records += batch_records;
	batch_len = 0;
	batch_records = 0;
	return 0;
}

int out_record(const void *rec, uint32_t len)
{
	const struct hades_record_header *h = rec;

	/* never forward a record the agent could not skip over */
	if (len < sizeof(*h) || h->size != len || (len & 7) || len > BATCH_CAP) {
		stats.bad_records++;
		return 0;
	}
	if (batch_len + len > BATCH_CAP) {
		int err = out_flush();
		if (err)
			return err;
	}
	memcpy(batch + batch_len, rec, len);
	batch_len += len;
	batch_records++;
	return 0;
}

int out_frame(uint16_t type, const void *payload, uint32_t len)
{
	int err = out_flush();
	if (err)
		return err;
	return emit(type, payload, len);
}

int out_log(const char *level, const char *code, const char *fmt, ...)
{
	char msg[512];
	struct jbuf j;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "hades-driver: %s: %s (%s)\n", level, msg, code);
	if (out_fd < 0)
		return 0;
	jb_init(&j);
	jb_raw(&j, "{\"level\":");
	jb_str(&j, level);
	jb_raw(&j, ",\"msg\":");
	jb_str(&j, msg);
	jb_raw(&j, ",\"code\":");
	jb_str(&j, code);
	jb_raw(&j, "}");
	int err = j.oom ? -ENOMEM : out_frame(HADES_FRAME_LOG, j.p, (uint32_t)j.len);
	jb_free(&j);
	return err;
}
