/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Split virtqueues (virtio 1.x "Split Virtqueues"): a descriptor table, the
 * driver's avail ring and the device's used ring, with the split inflight layout.
 */
#include <stddef.h>

#include "proto/log.h"
#include "proto/vring-int.h"

/* The ring slot of a free-running 16-bit index: num is a power of two (vring_split_map
 * refuses others), so a mask, not a division (tens of cycles, several per request). */
static inline unsigned slot(const struct vu_vring *vq, uint16_t idx)
{
	return idx & (vq->num - 1);
}

void vring_split_set_base(struct vu_vring *vq, uint32_t base)
{
	vq->last_avail = (uint16_t)base;
	vq->avail_ready = 0;
}

bool vring_split_map(struct vu_vring *vq)
{
	uint64_t n = vq->num;

	if (!n || (n & (n - 1)) || (vq->desc_uva & 15) || (vq->avail_uva & 1) || (vq->used_uva & 3))
		return false;
	vq->desc = vu_mem_uva(vq->mem, vq->desc_uva, 16 * n);
	vq->avail = vu_mem_uva(vq->mem, vq->avail_uva, 4 + 2 * n + 2);
	vq->used = vu_mem_uva(vq->mem, vq->used_uva, 4 + 8 * n + 2);
	/* A region whose user address and file offset disagree could misalign our view. */
	if (((uintptr_t)vq->desc & 15) || ((uintptr_t)vq->avail & 1) || ((uintptr_t)vq->used & 3))
		vq->desc = NULL;
	return true;
}

static struct vring_desc read_desc(const struct vring_desc *d)
{
	struct vring_desc c;

	c.addr = READ_ONCE(d->addr);
	c.len = READ_ONCE(d->len);
	c.flags = READ_ONCE(d->flags);
	c.next = READ_ONCE(d->next);
	return c;
}

/* Walks a chain in a descriptor table of tsize entries into req. */
static const char *walk(struct vu_vring *vq, const struct vring_desc *table, unsigned tsize,
			unsigned i, bool nested, struct vu_req *req)
{
	for (unsigned count = 1;; count++) {
		if (i >= tsize)
			return "descriptor index out of range";
		if (count > tsize)
			return "descriptor chain loops or is longer than its table";
		struct vring_desc d = read_desc(&table[i]);
		vq->budget--;

		if (d.flags & VRING_DESC_F_INDIRECT) {
			const char *why;
			if (!vq->indirect)
				return "indirect descriptor without VIRTIO_RING_F_INDIRECT_DESC";
			if (nested)
				return "indirect descriptor inside an indirect table";
			if (d.flags & VRING_DESC_F_NEXT)
				return "indirect descriptor with the NEXT flag";
			if (count != 1)
				return "indirect descriptor not at the head of its chain";
			const struct vring_desc *sub = vring_indirect_table(vq, d.addr, d.len, &why);
			return sub ? walk(vq, sub, d.len / sizeof(struct vring_desc), 0, true, req) : why;
		}
		const char *why = vring_add_buffer(vq, req, d.addr, d.len, d.flags & VRING_DESC_F_WRITE);
		if (why)
			return why;
		if (!(d.flags & VRING_DESC_F_NEXT))
			return NULL;
		i = d.next;
	}
}

int vring_split_resubmit(struct vu_vring *vq, struct vu_req *req, uint16_t head)
{
	vring_req_start(req, head);
	const char *why = head >= vq->num ? "head index out of range" :
					     walk(vq, vq->desc, vq->num, head, false, req);
	if (why) {
		vu_vring_fail(vq, why);
		return -1;
	}
	return 1;
}

int vring_split_pop(struct vu_vring *vq, struct vu_req *req)
{
	/*
	 * avail->idx is read again only when what it last showed is taken: the driver
	 * writes its cache line all the time, and each read would fetch it anew.
	 */
	if (!vq->avail_ready) {
		uint16_t waiting = __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE) - vq->last_avail;
		if (waiting > vq->num) {
			vu_vring_fail(vq, "available index moved further than the queue size");
			return -1;
		}
		if (!waiting)
			return 0;
		vq->avail_ready = waiting;
	}

	uint16_t head = READ_ONCE(vq->avail->ring[slot(vq, vq->last_avail)]);
	if (vring_split_resubmit(vq, req, head) < 0)
		return -1;
	vq->last_avail++;
	vq->avail_ready--;
	if (vq->inflight) {
		vq->inflight->desc[head].counter = ++vq->inflight_counter;
		vq->inflight->desc[head].inflight = 1;
	}
	return 1;
}

void vring_split_unpop(struct vu_vring *vq, unsigned n)
{
	vq->last_avail -= n;
	vq->avail_ready += n;
}

void vring_split_push(struct vu_vring *vq, const struct vu_req *reqs, unsigned n, const uint32_t *written,
		      size_t step)
{
	for (unsigned i = 0; i < n; i++) {
		uint16_t head = reqs[i].head;
		struct vring_used_elem *e = &vq->used->ring[slot(vq, vq->used_idx + vq->pending)];

		WRITE_ONCE(e->id, head);
		WRITE_ONCE(e->len, written[i * step]);
		vq->pending++;
		if (vq->inflight && head < vq->num) {
			vq->inflight->desc[head].next = vq->inflight->last_batch_head;
			vq->inflight->last_batch_head = head;
		}
	}
}

/* virtio's vring_need_event: did [old, new) cross the driver's event index? */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

static bool should_notify(struct vu_vring *vq)
{
	smp_mb(); /* used->idx must be visible before we read the driver's wishes */
	if (!vq->event_idx)
		return !(READ_ONCE(vq->avail->flags) & VRING_AVAIL_F_NO_INTERRUPT);

	uint16_t used_event = READ_ONCE(vq->avail->ring[vq->num]);
	bool valid = vq->signalled_valid;
	uint16_t old = vq->signalled_used;
	vq->signalled_used = vq->used_idx;
	vq->signalled_valid = true;
	return !valid || need_event(used_event, vq->used_idx, old);
}

void vring_split_flush(struct vu_vring *vq)
{
	uint16_t old = vq->used_idx;

	vq->used_idx += vq->pending;
	if (__builtin_expect(vq->mem->log.on, 0)) {
		/* The new used elements (in at most two pieces, around the ring's end), then the index. */
		unsigned first = slot(vq, old), n = vq->pending, tail = vq->num - first < n ? vq->num - first : n;
		vring_log_used(vq, offsetof(struct vring_used, ring) + first * sizeof(struct vring_used_elem),
			       tail * sizeof(struct vring_used_elem));
		vring_log_used(vq, offsetof(struct vring_used, ring), (n - tail) * sizeof(struct vring_used_elem));
		vring_log_used(vq, offsetof(struct vring_used, idx), sizeof(vq->used->idx));
		vring_log_notify(vq);
	}
	vq->pending = 0;
	__atomic_store_n(&vq->used->idx, vq->used_idx, __ATOMIC_RELEASE);
	if (vq->inflight) {
		/* The batch is visible to the driver: it is no longer in flight. */
		for (uint16_t i = old; i != vq->used_idx; i++)
			vq->inflight->desc[vq->used->ring[slot(vq, i)].id % vq->num].inflight = 0;
		vq->inflight->used_idx = vq->used_idx;
	}
	if (should_notify(vq))
		vu_vring_signal(vq);
}

bool vring_split_kicks(struct vu_vring *vq, bool enable)
{
	/*
	 * Written only when it changes: a busy-polling caller asks on every turn, and
	 * each write would take the cache line from the driver, which reads it.
	 */
	if (vq->event_idx) {
		/* With EVENT_IDX the driver kicks when it passes avail_event. */
		uint16_t *avail_event = (uint16_t *)&vq->used->ring[vq->num];
		if (enable && READ_ONCE(*avail_event) != vq->last_avail) {
			WRITE_ONCE(*avail_event, vq->last_avail);
			vring_log_used(vq, (uint8_t *)avail_event - (uint8_t *)vq->used, sizeof(*avail_event));
		}
	} else {
		uint16_t flags = enable ? 0 : VRING_USED_F_NO_NOTIFY;
		if (READ_ONCE(vq->used->flags) != flags) {
			WRITE_ONCE(vq->used->flags, flags);
			vring_log_used(vq, offsetof(struct vring_used, flags), sizeof(flags));
		}
	}
	if (!enable)
		return false;
	smp_mb(); /* our wish must be visible before we look for new requests */
	return __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE) != vq->last_avail &&
	       !vring_over_budget(vq);
}
