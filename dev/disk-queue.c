/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdlib.h>

#include "dev/disk-queue.h"

bool disk_queue_slots(struct disk_queue *q, unsigned n, size_t size, size_t iov_offset, unsigned max_iov)
{
	if (q->slots)
		return true;
	q->slots = calloc(n, size);
	if (!q->slots)
		return false;
	q->slot_size = size;
	q->nslots = n;
	for (unsigned i = 0; i < n; i++) {
		struct disk_slot *s = disk_queue_slot(q, i);
		s->req.iov = (struct iovec *)((char *)s + iov_offset);
		s->req.max_iov = max_iov;
		s->next_free = i + 1 < n ? disk_queue_slot(q, i + 1) : NULL;
	}
	q->free = disk_queue_slot(q, 0);
	return true;
}

void disk_queue_free(struct disk_queue *q)
{
	free(q->slots);
	q->slots = NULL;
}

struct disk_slot *disk_queue_slot(struct disk_queue *q, unsigned i)
{
	return (struct disk_slot *)(q->slots + (size_t)i * q->slot_size);
}

/* Every completion of both devices goes to the driver here. */
void disk_queue_complete(struct disk_queue *q, struct disk_slot *s, uint32_t written)
{
	vu_vring_push(q->vq, &s->req, written);
	q->dirty = true;
	s->next_free = q->free;
	q->free = s;
	q->busy--;
}

void disk_queue_publish(struct disk_queue *q)
{
	if (q->dirty) {
		q->dirty = false;
		vu_vring_flush(q->vq);
	}
}

bool disk_queue_refill(struct disk_queue *q)
{
	if (!q->starved || !q->vq || !q->free)
		return false;
	q->starved = false;
	return true;
}

void disk_queue_kick(struct disk_queue *q, disk_start_fn start, void *opaque)
{
	struct vu_vring *vq = q->vq;

	do {
		vu_vring_kicks(vq, false);
		while (q->free) {
			struct disk_slot *s = q->free;
			if (vu_vring_pop(vq, &s->req) <= 0)
				break;
			q->free = s->next_free;
			q->busy++;
			enum disk_start r = start(opaque, q, s);
			if (r == DISK_BROKEN) {
				s->next_free = q->free;
				q->free = s;
				q->busy--;
				break;
			}
		}
		if (!q->free) {
			q->starved = true; /* completions will run the queue again */
			break;
		}
		blk_io_submit(q->io);
		disk_queue_publish(q);
	} while (!vq->broken && vu_vring_kicks(vq, true));
	blk_io_submit(q->io);
	disk_queue_publish(q);
}

void disk_queue_drain(struct disk_queue *q)
{
	blk_io_submit(q->io);
	while (q->busy)
		blk_io_wait(q->io);
	q->starved = false;
	q->vq = NULL;
}
