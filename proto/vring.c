/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "proto/log.h"
#include "proto/loop.h"
#include "proto/vring.h"

/*
 * The driver writes the rings concurrently: every descriptor is copied once
 * (read_desc) and only the copy is used, so a value cannot change between the
 * check and the use.
 */
#define READ_ONCE(x) (*(const volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))

static inline void smp_mb(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

/* The ring slot of a free-running 16-bit index: num is a power of two (vu_vring_map
 * refuses others), so a mask, not a division (tens of cycles, several per request). */
static inline unsigned slot(const struct vu_vring *vq, uint16_t idx)
{
	return idx & (vq->num - 1);
}

void vu_vring_init(struct vu_vring *vq)
{
	unsigned index = vq->index;

	memset(vq, 0, sizeof(*vq));
	vq->index = index;
	vq->budget = VU_VRING_TURN_BUDGET;
	vq->budget_turn = vu_loop_turns;
	vq->call_fd = -1;
	vq->err_fd = -1;
}

void vu_vring_set_base(struct vu_vring *vq, uint16_t last_avail)
{
	vq->last_avail = last_avail;
	vq->avail_ready = 0;
}

bool vu_vring_map(struct vu_vring *vq, const struct vu_mem *mem)
{
	uint64_t n = vq->num;

	vq->mem = mem;
	vq->desc = NULL;
	vq->avail = NULL;
	vq->used = NULL;
	if (!n || (n & (n - 1)) || (vq->desc_uva & 15) || (vq->avail_uva & 1) || (vq->used_uva & 3))
		return false;
	vq->desc = vu_mem_uva(mem, vq->desc_uva, 16 * n);
	vq->avail = vu_mem_uva(mem, vq->avail_uva, 4 + 2 * n + 2);
	vq->used = vu_mem_uva(mem, vq->used_uva, 4 + 8 * n + 2);
	/* A region whose user address and file offset disagree could misalign our view. */
	if (((uintptr_t)vq->desc & 15) || ((uintptr_t)vq->avail & 1) || ((uintptr_t)vq->used & 3))
		vq->desc = NULL;
	return vu_vring_ready(vq);
}

bool vu_vring_ready(const struct vu_vring *vq)
{
	return vq->desc && vq->avail && vq->used && !vq->broken;
}

void vu_vring_fail(struct vu_vring *vq, const char *why)
{
	static const uint64_t one = 1;

	if (vq->broken)
		return;
	vq->broken = true;
	vu_err("queue %u broken: %s", vq->index, why);
	if (vq->err_fd >= 0 && write(vq->err_fd, &one, sizeof(one)) < 0)
		vu_warn("queue %u: cannot signal the error eventfd", vq->index);
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

/*
 * True when the ring has walked its budget in this turn of the loop; the owner
 * is then asked to run it again next turn.
 */
static bool over_budget(struct vu_vring *vq)
{
	if (vq->budget_turn != vu_loop_turns) {
		vq->budget_turn = vu_loop_turns;
		vq->budget = VU_VRING_TURN_BUDGET;
	}
	if (vq->budget > 0)
		return false;
	if (vq->defer)
		vq->defer(vq);
	return true;
}

/* What a walk does with each buffer of a chain: NULL to go on, else why the chain is bad. */
typedef const char *(*visit_fn)(struct vu_vring *vq, void *ctx, const struct vring_desc *d);

/* Appends one buffer to the request (ctx). */
static const char *add_buffer(struct vu_vring *vq, void *ctx, const struct vring_desc *d)
{
	struct vu_req *req = ctx;
	unsigned used = req->out + req->in;
	bool writable = d->flags & VRING_DESC_F_WRITE;

	/* By the flags, not by what was described: empty or undescribed buffers count too. */
	if (!writable && req->writing)
		return "device-readable descriptor after a device-writable one";
	req->writing |= writable;
	if (!d->len && !vu_mem_gpa_valid(vq->mem, d->addr, 1))
		return "buffer outside guest memory"; /* even an empty one points somewhere */
	int n = req->truncated ? -1 :
		vu_mem_gpa_iov(vq->mem, d->addr, d->len, req->iov + used, req->max_iov - used);
	if (n < 0) {
		/* Not described: outside guest memory, or more segments than the device takes. */
		if (!vu_mem_gpa_valid(vq->mem, d->addr, d->len))
			return "buffer outside guest memory";
		req->truncated = true;
		return NULL;
	}
	if (writable) {
		req->in += n;
		req->in_bytes += d->len;
	} else {
		req->out += n;
	}
	return NULL;
}

/* Marks a device-writable buffer in the dirty log. */
static const char *log_buffer(struct vu_vring *vq, void *ctx, const struct vring_desc *d)
{
	if (d->flags & VRING_DESC_F_WRITE)
		vu_mem_log(vq->mem, d->addr, d->len);
	return NULL;
}

/* Walks a chain in a descriptor table of tsize entries, visiting each buffer. */
static const char *walk(struct vu_vring *vq, const struct vring_desc *table, unsigned tsize,
			unsigned i, bool nested, visit_fn visit, void *ctx)
{
	for (unsigned count = 1;; count++) {
		if (i >= tsize)
			return "descriptor index out of range";
		if (count > tsize)
			return "descriptor chain loops or is longer than its table";
		struct vring_desc d = read_desc(&table[i]);
		vq->budget--;

		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (!vq->indirect)
				return "indirect descriptor without VIRTIO_RING_F_INDIRECT_DESC";
			if (nested)
				return "indirect descriptor inside an indirect table";
			if (d.flags & VRING_DESC_F_NEXT)
				return "indirect descriptor with the NEXT flag";
			if (count != 1)
				return "indirect descriptor not at the head of its chain";
			if (d.len == 0 || d.len % sizeof(struct vring_desc))
				return "indirect table length is not a multiple of 16";
			/* No legal chain is longer than the largest queue: this bounds one request's walk. */
			if (d.len / sizeof(struct vring_desc) > VU_VRING_MAX_SIZE)
				return "indirect table longer than the largest queue";
			const struct vring_desc *sub = vu_mem_gpa(vq->mem, d.addr, d.len);
			if (!sub || ((uintptr_t)sub & 7))
				return "indirect table outside guest memory";
			return walk(vq, sub, d.len / sizeof(struct vring_desc), 0, true, visit, ctx);
		}
		const char *why = visit(vq, ctx, &d);
		if (why)
			return why;
		if (!(d.flags & VRING_DESC_F_NEXT))
			return NULL;
		i = d.next;
	}
}

static int pop_head(struct vu_vring *vq, struct vu_req *req, uint16_t head)
{
	req->head = head;
	req->out = req->in = 0;
	req->truncated = req->writing = false;
	req->in_bytes = 0;
	const char *why = head >= vq->num ? "head index out of range" :
					     walk(vq, vq->desc, vq->num, head, false, add_buffer, req);
	if (why) {
		vu_vring_fail(vq, why);
		return -1;
	}
	return 1;
}

int vu_vring_pop(struct vu_vring *vq, struct vu_req *req)
{
	if (!vu_vring_ready(vq))
		return vq->broken ? -1 : 0;
	if (over_budget(vq))
		return 0;
	if (vq->resubmit_pos < vq->resubmit_n)
		return pop_head(vq, req, vq->resubmit[vq->resubmit_pos++]);

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
	if (pop_head(vq, req, head) < 0)
		return -1;
	vq->last_avail++;
	vq->avail_ready--;
	if (vq->inflight) {
		vq->inflight->desc[head].counter = ++vq->inflight_counter;
		vq->inflight->desc[head].inflight = 1;
	}
	return 1;
}

void vu_vring_unpop(struct vu_vring *vq, unsigned n)
{
	vq->last_avail -= n;
	vq->avail_ready += n;
}

/* Marks [offset, offset + len) of the used ring in the dirty log, if the ring is logged. */
static void log_used(struct vu_vring *vq, uint64_t offset, uint64_t len)
{
	if (vq->log_used)
		vu_mem_log(vq->mem, vq->log_guest_addr + offset, len);
}

void vu_vring_push(struct vu_vring *vq, uint16_t head, uint32_t written)
{
	struct vring_used_elem *e = &vq->used->ring[slot(vq, vq->used_idx + vq->pending)];

	/* The chain was checked when popped: walking it again can only see what the guest changed since. */
	if (__builtin_expect(vq->mem->log.on, 0) && head < vq->num)
		walk(vq, vq->desc, vq->num, head, false, log_buffer, NULL);

	WRITE_ONCE(e->id, head);
	WRITE_ONCE(e->len, written);
	vq->pending++;
	if (vq->inflight && head < vq->num) {
		vq->inflight->desc[head].next = vq->inflight->last_batch_head;
		vq->inflight->last_batch_head = head;
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

void vu_vring_flush(struct vu_vring *vq)
{
	static const uint64_t one = 1;

	if (!vq->pending || !vu_vring_ready(vq))
		return;
	uint16_t old = vq->used_idx;
	vq->used_idx += vq->pending;
	if (__builtin_expect(vq->mem->log.on, 0)) {
		/* The new used elements (in at most two pieces, around the ring's end), then the index. */
		unsigned first = slot(vq, old), n = vq->pending, tail = vq->num - first < n ? vq->num - first : n;
		log_used(vq, offsetof(struct vring_used, ring) + first * sizeof(struct vring_used_elem),
			 tail * sizeof(struct vring_used_elem));
		log_used(vq, offsetof(struct vring_used, ring), (n - tail) * sizeof(struct vring_used_elem));
		log_used(vq, offsetof(struct vring_used, idx), sizeof(vq->used->idx));
		if (vq->mem->log.notify_fd >= 0 && write(vq->mem->log.notify_fd, &one, sizeof(one)) < 0)
			vu_warn("queue %u: cannot signal the log eventfd", vq->index);
	}
	vq->pending = 0;
	__atomic_store_n(&vq->used->idx, vq->used_idx, __ATOMIC_RELEASE);
	if (vq->inflight) {
		/* The batch is visible to the driver: it is no longer in flight. */
		for (uint16_t i = old; i != vq->used_idx; i++)
			vq->inflight->desc[vq->used->ring[slot(vq, i)].id % vq->num].inflight = 0;
		vq->inflight->used_idx = vq->used_idx;
	}
	if (!should_notify(vq))
		return;
	if (vq->call_fd >= 0) {
		if (write(vq->call_fd, &one, sizeof(one)) < 0)
			vu_warn("queue %u: cannot signal the call eventfd", vq->index);
	} else if (vq->signal_inband) {
		vq->signal_inband(vq);
	}
}

bool vu_vring_kicks(struct vu_vring *vq, bool enable)
{
	if (!vu_vring_ready(vq))
		return false;
	/*
	 * Written only when it changes: a busy-polling caller asks on every turn, and
	 * each write would take the cache line from the driver, which reads it.
	 */
	if (vq->event_idx) {
		/* With EVENT_IDX the driver kicks when it passes avail_event. */
		uint16_t *avail_event = (uint16_t *)&vq->used->ring[vq->num];
		if (enable && READ_ONCE(*avail_event) != vq->last_avail) {
			WRITE_ONCE(*avail_event, vq->last_avail);
			log_used(vq, (uint8_t *)avail_event - (uint8_t *)vq->used, sizeof(*avail_event));
		}
	} else {
		uint16_t flags = enable ? 0 : VRING_USED_F_NO_NOTIFY;
		if (READ_ONCE(vq->used->flags) != flags) {
			WRITE_ONCE(vq->used->flags, flags);
			log_used(vq, offsetof(struct vring_used, flags), sizeof(flags));
		}
	}
	if (!enable)
		return false;
	smp_mb(); /* our wish must be visible before we look for new requests */
	return __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE) != vq->last_avail &&
	       !over_budget(vq);
}
