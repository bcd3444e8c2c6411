/* SPDX-License-Identifier: MIT */
/* Frame writer: batches records into RECORDS frames on stdout. */
#ifndef HADES_OUTPUT_H
#define HADES_OUTPUT_H

#include <stdint.h>
#include <stddef.h>

struct output_stats {
	uint64_t records;
	uint64_t frames;
	uint64_t bytes;
	uint64_t bad_records; /* records from a backend that failed validation */
};

int out_init(int fd);
void out_fini(void);
/* Writes one frame of the given type right away (after flushing records, so
 * frame order follows event order). Returns 0 or -errno (-EPIPE: agent gone). */
int out_frame(uint16_t type, const void *payload, uint32_t len);
/* Queues one record; flushes first when the batch would overflow. */
int out_record(const void *rec, uint32_t len);
int out_flush(void);
/* Records queued but not yet written. */
uint64_t out_pending(void);
const struct output_stats *out_stats(void);
/* LOG frame: {"level":..,"msg":..,"code":..}; also echoed to stderr. */
int out_log(const char *level, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
