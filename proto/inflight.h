/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Inflight I/O tracking (INFLIGHT_SHMFD, "Inflight I/O tracking" in
 * vhost-user.rst): a shared buffer the front-end keeps for us, so that a back-end
 * that was killed and restarted resubmits the requests that were in flight, in
 * the order they were taken. One region per queue, laid out as the ring's layout
 * wants (QueueRegionSplit or QueueRegionPacked); every region is as big as the
 * packed one, so GET_INFLIGHT_FD need not know the layout.
 *
 * Packed rings (what vhostbox does with QueueRegionPacked's fields): a chain the
 * ring hands out is recorded in entries taken from the free list (free_head, next),
 * one per ring descriptor with its addr, len, flags and id, since the ring slots
 * are overwritten by other completions; its head entry has num, last, counter and
 * inflight = 1 once the record is whole. Pushing a completion sets inflight = 2;
 * publishing a batch writes used_idx (and wrap) first, then the ring, then clears
 * inflight and returns the entries to the free list, then sets old_free_head,
 * old_used_idx and old_used_wrap_counter (the batch is committed). A restart looks
 * at the ring where an uncommitted batch began to tell whether the driver saw it:
 * if so its requests are done (2 -> 0), if not they are in flight again (2 -> 1,
 * used_idx back to old_used_idx). The free list is then rebuilt from the entries
 * no in-flight chain holds, and the ring takes new requests after the used
 * position plus the descriptors of the chains in flight.
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

/* DescStatePacked. inflight: 0 free or done, 1 in flight, 2 pushed (not yet published). */
struct vu_inflight_packed_desc {
	uint8_t inflight;
	uint8_t padding;
	uint16_t next;
	uint16_t last;
	uint16_t num;
	uint64_t counter;
	uint16_t id;
	uint16_t flags;
	uint32_t len;
	uint64_t addr;
};

/* QueueRegionPacked. */
struct vu_inflight_packed {
	uint64_t features;
	uint16_t version;
	uint16_t desc_num;
	uint16_t free_head;
	uint16_t old_free_head;
	uint16_t used_idx;
	uint16_t old_used_idx;
	uint8_t used_wrap_counter;
	uint8_t old_used_wrap_counter;
	uint8_t padding[7];
	struct vu_inflight_packed_desc desc[];
};

_Static_assert(sizeof(struct vu_inflight_desc) == 16, "DescStateSplit is 16 bytes");
_Static_assert(sizeof(struct vu_inflight_packed_desc) == 32, "DescStatePacked is 32 bytes");
_Static_assert(offsetof(struct vu_inflight_packed, desc) == 32, "QueueRegionPacked's header is 32 bytes");

#define VU_INFLIGHT_PACKED_PUSHED 2

struct vu_vring;

/* Bytes one queue's region takes for a queue of num entries, either layout (64-byte aligned). */
size_t vu_inflight_queue_size(uint16_t num);
/* Bytes the region of one layout needs (unaligned): what a region given to us must hold. */
size_t vu_inflight_layout_size(uint16_t num, int packed);

/*
 * Called when a ring with an inflight region starts (vq->inflight or
 * vq->inflight_packed set, the ring mapped, vq->resubmit sized for vq->num):
 * initialises a fresh region or repairs the last batch of an old one, and queues
 * every request still in flight for resubmission. Returns NULL or why the region
 * is unusable.
 */
const char *vu_inflight_start(struct vu_vring *vq);

#endif
