/* SPDX-License-Identifier: MIT */
/* Minimal JSON text builder for HELLO/STATS/LOG/ACK payloads. */
#ifndef HADES_JSON_H
#define HADES_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

struct jbuf {
	char *p;
	size_t len;
	size_t cap;
	bool oom; /* sticky: once an allocation failed the text is incomplete */
};

void jb_init(struct jbuf *j);
void jb_free(struct jbuf *j);
void jb_reset(struct jbuf *j);
void jb_raw(struct jbuf *j, const char *s);
void jb_printf(struct jbuf *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends a quoted, escaped string; bytes that are not valid UTF-8 are
 * written as \u00XX of the byte so the output is always valid JSON. */
void jb_str(struct jbuf *j, const char *s);
void jb_strn(struct jbuf *j, const char *s, size_t n);
void jb_str_or_null(struct jbuf *j, const char *s);

#endif
