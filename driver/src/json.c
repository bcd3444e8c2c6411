// SPDX-License-Identifier: MIT
#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jb_init(struct jbuf *j)
{
	memset(j, 0, sizeof(*j));
}

void jb_free(struct jbuf *j)
{
	free(j->p);
	memset(j, 0, sizeof(*j));
}

void jb_reset(struct jbuf *j)
{
	j->len = 0;
	j->oom = false;
	if (j->p)
		j->p[0] = 0;
}

static bool jb_reserve(struct jbuf *j, size_t extra)
{
	if (j->oom)
		return false;
	if (j->len + extra + 1 <= j->cap)
		return true;
	size_t cap = j->cap ? j->cap : 256;
	while (cap < j->len + extra + 1)
		cap *= 2;
	char *p = realloc(j->p, cap);
	if (!p) {
		j->oom = true;
		return false;
	}
	j->p = p;
	j->cap = cap;
	return true;
}

static void jb_append(struct jbuf *j, const char *s, size_t n)
{
	if (!jb_reserve(j, n))
		return;
	memcpy(j->p + j->len, s, n);
	j->len += n;
	j->p[j->len] = 0;
}

void jb_raw(struct jbuf *j, const char *s)
{
	jb_append(j, s, strlen(s));
}

void jb_printf(struct jbuf *j, const char *fmt, ...)
{
	va_list ap;
	char small[256];

	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		jb_append(j, small, (size_t)n);
		return;
	}
	if (!jb_reserve(j, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(j->p + j->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	j->len += (size_t)n;
}

/* Length of the valid UTF-8 sequence at s (max n bytes), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t want;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		want = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		want = 3;
		cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		want = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (want > n)
		return 0;
	for (size_t i = 1; i < want; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* reject overlong forms, surrogates and out-of-range code points */
	if ((want == 2 && cp < 0x80) || (want == 3 && cp < 0x800) || (want == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return want;
}

void jb_strn(struct jbuf *j, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	char esc[8];

	jb_append(j, "\"", 1);
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			jb_append(j, esc, 2);
			i++;
		} else if (c < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			jb_append(j, esc, 6);
			i++;
		} else {
			size_t l = utf8_seq(s + i, n - i);
			if (l == 0) {
				snprintf(esc, sizeof(esc), "\\u%04x", c);
				jb_append(j, esc, 6);
				i++;
			} else {
				jb_append(j, (const char *)s + i, l);
				i += l;
			}
		}
	}
	jb_append(j, "\"", 1);
}

void jb_str(struct jbuf *j, const char *s)
{
	jb_strn(j, s, strlen(s));
}

void jb_str_or_null(struct jbuf *j, const char *s)
{
	if (s)
		jb_str(j, s);
	else
		jb_raw(j, "null");
}
