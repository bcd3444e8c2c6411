// SPDX-License-Identifier: MIT
#include "control.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "output.h"

#define READ_CHUNK 65536
#define BUF_CAP (HADES_FRAME_HEADER_SIZE + HADES_FRAME_MAX_PAYLOAD)

static struct backend *backend;
static uint8_t *buf;
static size_t buf_len;
static uint64_t skip_left; /* payload bytes of an oversized frame still to discard */
static struct control_stats stats;

void control_init(struct backend *be)
{
	backend = be;
}

void control_fini(void)
{
	free(buf);
	buf = NULL;
	buf_len = 0;
}

const struct control_stats *control_stats(void)
{
	return &stats;
}

static int ack(uint32_t id, int err, const char *msg)
{
	struct jbuf j;
	jb_init(&j);
	jb_printf(&j, "{\"request_id\":%u,\"ok\":%s", id, err ? "false" : "true");
	if (err) {
		jb_raw(&j, ",\"code\":");
		jb_str(&j, strerrorname_np(-err) ? strerrorname_np(-err) : "EIO");
		jb_raw(&j, ",\"msg\":");
		jb_str(&j, msg ? msg : strerror(-err));
	}
	jb_raw(&j, "}");
	int rc = j.oom ? -ENOMEM : out_frame(HADES_FRAME_ACK, j.p, (uint32_t)j.len);
	jb_free(&j);
	return rc;
}

static int __attribute__((format(printf, 1, 2))) reject(const char *fmt, ...)
{
	char msg[160];
	va_list ap;
	stats.rejected++;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return out_log("warn", "bad_command", "%s", msg);
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static uint16_t rd16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
}

/* FILTER: u32 request_id, u8 op, u8 target, u16 reserved, u32 value_len, value */
static int on_filter(const uint8_t *p, uint32_t len)
{
	if (len < 12)
		return reject("FILTER payload too short (%u < %u)", len, 12);
	uint32_t id = rd32(p), vlen = rd32(p + 8);
	uint8_t op = p[4], target = p[5];
	if (vlen != len - 12) {
		stats.rejected++;
		return ack(id, -EINVAL, "value_len does not match payload length");
	}
	const char *why = NULL;
	int err = backend->filter(backend, op, target, p + 12, vlen, &why);
	if (err)
		stats.rejected++;
	else
		stats.frames++;
	return ack(id, err, why);
}

/* HOOK: u32 request_id, u8 enable, u8 reserved, u16 hook_id, [name if id 0xffff] */
static int on_hook(const uint8_t *p, uint32_t len)
{
	if (len < 8)
		return reject("HOOK payload too short (%u < %u)", len, 8);
	uint32_t id = rd32(p);
	uint8_t enable = p[4];
	int hook = rd16(p + 6);
	if (enable > 1) {
		stats.rejected++;
		return ack(id, -EINVAL, "enable must be 0 or 1");
	}
	if (hook == 0xffff) {
		hook = hook_by_name((const char *)p + 8, len - 8);
	} else if (len != 8) {
		stats.rejected++;
		return ack(id, -EINVAL, "HOOK by id must be exactly 8 bytes");
	}
	if (hook < 0 || hook >= HADES_HOOK_COUNT) {
		stats.rejected++;
		return ack(id, -ENOENT, "unknown hook");
	}
	if (!backend->hooks[hook].requested) {
		/* its programs were never loaded (--hooks): nothing to enable, and
		 * disabling is already true */
		if (enable) {
			stats.rejected++;
			return ack(id, -ENOENT, "hook not requested (--hooks)");
		}
		stats.frames++;
		return ack(id, 0, NULL);
	}
	int err = backend->hook(backend, (uint32_t)hook, enable);
	if (err) {
		stats.rejected++;
	} else {
		stats.frames++;
		backend->hooks[hook].enabled_state = enable;
	}
	return ack(id, err, NULL);
}

static int dispatch(uint16_t type, const uint8_t *p, uint32_t len)
{
	switch (type) {
	case HADES_FRAME_FILTER:
		return on_filter(p, len);
	case HADES_FRAME_HOOK:
		return on_hook(p, len);
	case HADES_FRAME_STATS_REQUEST:
		if (len == 0) {
			stats.frames++;
			return emit_stats(-1);
		}
		if (len != 4)
			return reject("STATS_REQUEST payload must be 0 or 4 bytes, got %u", len);
		stats.frames++;
		return emit_stats(rd32(p));
	default:
		return reject("unknown frame type 0x%x (payload %u bytes skipped)", type, len);
	}
}

int control_read(int fd, bool *eof)
{
	int rc = 0;

	*eof = false;
	if (!buf) {
		buf = malloc(BUF_CAP);
		if (!buf)
			return -ENOMEM;
	}
	size_t room = BUF_CAP - buf_len;
	ssize_t n = read(fd, buf + buf_len, room < READ_CHUNK ? room : READ_CHUNK);
	if (n < 0) {
		if (errno == EINTR || errno == EAGAIN)
			return 0;
		*eof = true; /* an unreadable control channel means the agent is gone */
		return 0;
	}
	if (n == 0) {
		*eof = true;
		if (buf_len || skip_left)
			out_log("warn", "bad_command", "stdin closed inside a frame (%zu bytes pending)",
				buf_len);
		return 0;
	}
	stats.bytes += (uint64_t)n;
	buf_len += (size_t)n;

	size_t pos = 0;
	while (rc == 0) {
		if (skip_left) {
			size_t take = buf_len - pos < skip_left ? buf_len - pos : skip_left;
			pos += take;
			skip_left -= take;
			if (skip_left)
				break;
			continue;
		}
		if (buf_len - pos < HADES_FRAME_HEADER_SIZE)
			break;
		uint32_t plen = rd32(buf + pos);
		uint16_t type = rd16(buf + pos + 4);
		if (plen > HADES_FRAME_MAX_PAYLOAD) {
			/* the length still delimits the frame, so skip it and resync */
			rc = reject("frame payload %u exceeds the 1 MiB cap (type 0x%x), skipped", plen,
				    type);
			pos += HADES_FRAME_HEADER_SIZE;
			skip_left = plen;
			continue;
		}
		if (buf_len - pos < HADES_FRAME_HEADER_SIZE + plen)
			break;
		rc = dispatch(type, buf + pos + HADES_FRAME_HEADER_SIZE, plen);
		pos += HADES_FRAME_HEADER_SIZE + plen;
	}
	memmove(buf, buf + pos, buf_len - pos);
	buf_len -= pos;
	return rc;
}
