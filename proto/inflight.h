/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Inflight I/O tracking (INFLIGHT_SHMFD, "Inflight I/O tracking" in
 * vhost-user.rst, split-ring layout): a shared buffer the front-end keeps for
 * us, so that a back-end that was killed and restarted resubmits the requests
 * that were in flight, in the order they were taken.
 */
#ifndef VU_INFLIGHT_H
#define VU_INFLIGHT_H

#include <stddef.h>
#include <stdint.h>

struct vu_inflight_desc {
	uint8_t inflight;
	uint8_t padding[5];
	uint16_t next;
	uint64_t counter;
};

struct vu_inflight_queue {
	uint64_t features;
	uint16_t version;
	uint16_t desc_num;
	uint16_t last_batch_head;
	uint16_t used_idx;
	struct vu_inflight_desc desc[];
};

struct vu_vring;

/* Bytes one queue's region takes for a queue of num entries (64-byte aligned). */
size_t vu_inflight_queue_size(uint16_t num);

/*
 * Called when a ring with an inflight region starts: initialises a fresh region
 * or repairs the last batch of an old one, and queues every request still in
 * flight for resubmission. Returns NULL or why the region is unusable.
 */
const char *vu_inflight_start(struct vu_vring *vq);

#endif
