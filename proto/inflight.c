/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdlib.h>
#include <string.h>

#include "proto/inflight.h"
#include "proto/vring.h"

size_t vu_inflight_queue_size(uint16_t num)
{
	size_t size = sizeof(struct vu_inflight_queue) + (size_t)num * sizeof(struct vu_inflight_desc);
	return (size + 63) & ~(size_t)63;
}

static int by_counter(const void *a, const void *b, void *descs)
{
	const struct vu_inflight_desc *d = descs;
	uint64_t ca = d[*(const uint16_t *)a].counter, cb = d[*(const uint16_t *)b].counter;
	return ca < cb ? -1 : ca > cb;
}

const char *vu_inflight_start(struct vu_vring *vq)
{
	struct vu_inflight_queue *q = vq->inflight;
	uint16_t used = __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE);

	vq->resubmit_n = vq->resubmit_pos = 0;
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
	vu_vring_set_base(vq, used + vq->resubmit_n);
	return NULL;
}
