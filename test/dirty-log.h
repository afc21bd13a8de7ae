/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The front-end's side of a live migration's dirty log, for tests: a log in a
 * memfd handed to the back-end with SET_LOG_BASE, read back page by page.
 */
#ifndef VU_TEST_DIRTY_LOG_H
#define VU_TEST_DIRTY_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "test/frontend.h"

struct vuf_log {
	int fd;
	uint8_t *bits;      /* one bit per VU_LOG_PAGE of guest physical memory */
	size_t size;
};

/* A zeroed log of size bytes; false if it cannot be made. */
bool vuf_log_init(struct vuf_log *log, size_t size);
void vuf_log_free(struct vuf_log *log);
/* SET_LOG_BASE with it; 0 if the back-end gave the reply QEMU waits for. */
int vuf_log_send(struct vuf *f, const struct vuf_log *log);
/* SET_VRING_ADDR again with VRING_F_LOG: the ring's used-ring writes are logged too. */
int vuf_log_ring(struct vuf_vq *vq);
bool vuf_log_marked(const struct vuf_log *log, uint64_t gpa);
/* Pages marked in [gpa, gpa + len). */
unsigned vuf_log_count_range(const struct vuf_log *log, uint64_t gpa, uint64_t len);
/* Pages marked in the whole log. */
unsigned vuf_log_count(const struct vuf_log *log);
void vuf_log_clear(struct vuf_log *log);

#endif
