/* SPDX-License-Identifier: MIT */
/* Agent -> driver command frames read from stdin. */
#ifndef HADES_CONTROL_H
#define HADES_CONTROL_H

#include <stdbool.h>
#include <stdint.h>
#include "driver.h"

struct control_stats {
	uint64_t frames;     /* well-formed command frames handled */
	uint64_t rejected;   /* frames rejected (bad length, type, values) */
	uint64_t bytes;
};

/* Emits a STATS frame; request_id < 0 means "not requested". Defined in main.c. */
int emit_stats(int64_t request_id);

void control_init(struct backend *be);
void control_fini(void);
/* Reads what is available on fd once and handles every complete frame.
 * Sets *eof on end of input. Returns 0 or -errno of a fatal output error. */
int control_read(int fd, bool *eof);
const struct control_stats *control_stats(void);

#endif
