/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "proto/inflight.h"
#include "proto/vring.h"

size_t vu_inflight_layout_size(uint16_t num, int packed)
{
	if (packed)
		return sizeof(struct vu_inflight_packed) + (size_t)num * sizeof(struct vu_inflight_packed_desc);
	return sizeof(struct vu_inflight_queue) + (size_t)num * sizeof(struct vu_inflight_desc);
}

size_t vu_inflight_queue_size(uint16_t num)
{
	size_t split = vu_inflight_layout_size(num, 0), packed = vu_inflight_layout_size(num, 1);
	size_t size = split > packed ? split : packed;

	return (size + 63) & ~(size_t)63;
}

static int by_counter(const void *a, const void *b, void *descs)
{
	const struct vu_inflight_desc *d = descs;
	uint64_t ca = d[*(const uint16_t *)a].counter, cb = d[*(const uint16_t *)b].counter;
	return ca < cb ? -1 : ca > cb;
}

static const char *start_split(struct vu_vring *vq)
{
	struct vu_inflight_queue *q = vq->inflight;
	uint16_t used = __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE);

	if (q->version == 0) {
		/* A fresh region: nothing was in flight. */
		memset(q->desc, 0, vq->num * sizeof(q->desc[0]));
		q->version = 1;
		q->desc_num = vq->num;
		q->used_idx = used;
		q->last_batch_head = 0;
		vq->inflight_counter = 0;
		return NULL;
	}
	if (q->version != 1 || q->desc_num != vq->num)
		return "inflight region does not match the queue";

	/* Used idx moved but the batch was not cleared: the batch is complete. */
	uint16_t batch = used - q->used_idx;
	uint16_t head = q->last_batch_head;
	for (uint16_t i = 0; i < batch && batch <= vq->num; i++) {
		if (head >= vq->num)
			return "inflight batch list out of range";
		q->desc[head].inflight = 0;
		head = q->desc[head].next;
	}
	q->used_idx = used;

	vq->inflight_counter = 0;
	for (unsigned i = 0; i < vq->num; i++) {
		if (q->desc[i].counter > vq->inflight_counter)
			vq->inflight_counter = q->desc[i].counter;
		if (q->desc[i].inflight)
			vq->resubmit[vq->resubmit_n++] = i;
	}
	qsort_r(vq->resubmit, vq->resubmit_n, sizeof(vq->resubmit[0]), by_counter, q->desc);
	/* What was taken is either used or in flight: continue after both. */
	vu_vring_set_base(vq, (uint16_t)(used + vq->resubmit_n));
	return NULL;
}

static int by_counter_packed(const void *a, const void *b, void *descs)
{
	const struct vu_inflight_packed_desc *d = descs;
	uint64_t ca = d[*(const uint16_t *)a].counter, cb = d[*(const uint16_t *)b].counter;
	return ca < cb ? -1 : ca > cb;
}

/*
 * The chains in flight (inflight 1) after the uncommitted batch is settled: each
 * checked (entries and ids in range, none shared), queued for resubmission, their
 * entries marked in owned[]. *descs gets their ring descriptors. NULL or why not.
 */
static const char *find_in_flight(struct vu_vring *vq, uint8_t *owned, uint8_t *ids, unsigned *descs)
{
	struct vu_inflight_packed *q = vq->inflight_packed;
	unsigned num = vq->num, total = 0;

	for (unsigned i = 0; i < num; i++) {
		struct vu_inflight_packed_desc *h = &q->desc[i];
		if (h->counter > vq->inflight_counter)
			vq->inflight_counter = h->counter;
		if (h->inflight != 1)
			continue;
		unsigned n = h->num;
		if (!n || n > num - total)
			return "inflight chain longer than the queue";
		uint16_t e = (uint16_t)i, last = e;
		for (unsigned k = 0; k < n; k++) {
			if (e >= num || owned[e])
				return "inflight chains out of range or overlapping";
			owned[e] = 1;
			last = e;
			e = q->desc[e].next;
		}
		uint16_t id = q->desc[last].id;
		if (last != h->last || id >= num || ids[id])
			return "inflight chain with a bad end or buffer id";
		ids[id] = 1;
		total += n;
		vq->resubmit[vq->resubmit_n++] = (uint16_t)i;
	}
	*descs = total;
	return NULL;
}

static const char *start_packed(struct vu_vring *vq)
{
	struct vu_inflight_packed *q = vq->inflight_packed;
	unsigned num = vq->num;

	vq->inflight_counter = 0;
	if (q->version == 0) {
		/* A fresh region: nothing in flight, every entry free, the ring where it starts. */
		memset(q->desc, 0, num * sizeof(q->desc[0]));
		for (unsigned i = 0; i < num; i++)
			q->desc[i].next = (uint16_t)(i + 1); /* the last one's, num, ends the list */
		q->features = 0;
		q->free_head = q->old_free_head = 0;
		q->used_idx = q->old_used_idx = vq->used_idx;
		q->used_wrap_counter = q->old_used_wrap_counter = vq->used_wrap;
		q->desc_num = (uint16_t)num;
		q->version = 1;
		return NULL;
	}
	if (q->version != 1 || q->desc_num != num)
		return "inflight region does not match the queue";
	uint16_t used = q->used_idx, old = q->old_used_idx;
	bool wrap = q->used_wrap_counter, old_wrap = q->old_used_wrap_counter;
	if (used >= num || old >= num || q->used_wrap_counter > 1 || q->old_used_wrap_counter > 1)
		return "inflight region's used position out of range";

	/*
	 * A batch was being published: if its first used descriptor reached the ring (the
	 * USED flag says the device's lap, or the driver already took it and wrote the
	 * slot anew for the next lap) the driver has it; if not, it never saw the batch.
	 */
	bool published = false;
	if (used != old || wrap != old_wrap) {
		uint16_t f = __atomic_load_n(&vq->pdesc[old].flags, __ATOMIC_ACQUIRE);
		published = !(f & VRING_PACKED_DESC_F_USED) == !old_wrap;
		if (!published) {
			used = old;
			wrap = old_wrap;
		}
	}
	for (unsigned i = 0; i < num; i++)
		if (q->desc[i].inflight == VU_INFLIGHT_PACKED_PUSHED)
			q->desc[i].inflight = published ? 0 : 1;

	uint8_t *owned = calloc(2, num);
	if (!owned)
		return "out of memory";
	unsigned descs = 0;
	const char *why = find_in_flight(vq, owned, owned + num, &descs);
	if (!why) {
		qsort_r(vq->resubmit, vq->resubmit_n, sizeof(vq->resubmit[0]), by_counter_packed, q->desc);
		/* Every entry no chain in flight holds is free again. */
		uint16_t head = (uint16_t)num;
		for (unsigned i = num; i-- > 0;) {
			if (!owned[i]) {
				q->desc[i].next = head;
				head = (uint16_t)i;
			}
		}
		q->free_head = q->old_free_head = head;
		q->used_idx = q->old_used_idx = used;
		q->used_wrap_counter = q->old_used_wrap_counter = wrap;
		/* The ring goes on after the used position and the descriptors still in flight. */
		unsigned avail = used + descs;
		bool avail_wrap = wrap;
		if (avail >= num) {
			avail -= num;
			avail_wrap = !avail_wrap;
		}
		vu_vring_set_base(vq, VU_PACKED_BASE(avail, avail_wrap, used, wrap));
	}
	free(owned);
	return why;
}

const char *vu_inflight_start(struct vu_vring *vq)
{
	vq->resubmit_n = vq->resubmit_pos = 0;
	return vq->packed ? start_packed(vq) : start_split(vq);
}
