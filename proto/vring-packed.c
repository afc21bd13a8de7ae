/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Packed virtqueues (virtio 1.1+ "Packed Virtqueues"): one descriptor ring that
 * the driver fills in order (AVAIL/USED flags against its wrap counter) and the
 * device overwrites with used descriptors in the order it completes them, one per
 * chain, skipping the chain's other descriptors; event suppression structures for
 * both directions.
 *
 * What the ring needs to know per buffer id (how many ring descriptors its chain
 * took, where its inflight record is) lives in arrays allocated when the ring is
 * mapped. A pushed completion is kept aside; the flush writes the batch's used
 * descriptors together (id, len, flags), the first one's flags last: the driver
 * polls that one, and writes spread over the device's work (id and len at each
 * push) pulled the lines it polls back and forth (the loop benchmark's rate with
 * DPDK's virtio-user: ~1.6x written together, median of 7 paired runs).
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "proto/log.h"
#include "proto/vring-int.h"

#define AVAIL VRING_PACKED_DESC_F_AVAIL
#define USED VRING_PACKED_DESC_F_USED

/* Flags the driver made available in the lap whose wrap counter is wrap (AVAIL matches it). */
static inline bool avail_in_lap(uint16_t flags, bool wrap)
{
	return !(flags & AVAIL) == !wrap;
}

/* ... and USED the inverse, as the driver must set it. */
static inline bool used_bit_right(uint16_t flags, bool wrap)
{
	return !(flags & USED) == wrap;
}

_Static_assert(sizeof(struct vring_packed_state) % _Alignof(struct vring_packed_pend) == 0 &&
		       sizeof(struct vring_packed_pend) % _Alignof(struct vring_packed_buf) == 0,
	       "the arrays after the state in its block are aligned");

void vring_packed_free(struct vu_vring *vq)
{
	free(vq->ps);
	vq->ps = NULL;
}

/* Every buffer the device's again, nothing pushed, the next used descriptor at used_idx. */
static void reset_state(struct vu_vring *vq)
{
	struct vring_packed_state *ps = vq->ps;

	if (!ps)
		return;
	memset(ps->buf, 0, ps->num * sizeof(ps->buf[0]));
	ps->popped_pos = 0;
	ps->next_used = vq->used_idx;
	ps->next_used_wrap = vq->used_wrap;
}

bool vring_packed_map(struct vu_vring *vq)
{
	uint64_t n = vq->num;

	if (!n || n > VU_VRING_MAX_SIZE || (vq->desc_uva & 15) || (vq->avail_uva & 3) || (vq->used_uva & 3) ||
	    vq->last_avail >= n || vq->used_idx >= n)
		return false;
	if (!vq->ps || vq->ps->num != n) {
		/* One block: the state, then its arrays, the most aligned first (pend: 4 bytes). */
		size_t size = sizeof(*vq->ps) + n * (sizeof(vq->ps->buf[0]) + sizeof(vq->ps->pend[0]) +
						     sizeof(vq->ps->popped[0]));
		struct vring_packed_state *ps = calloc(1, size);
		if (!ps)
			return false;
		free(vq->ps);
		ps->num = n;
		ps->pend = (struct vring_packed_pend *)(ps + 1);
		ps->buf = (struct vring_packed_buf *)(ps->pend + n);
		ps->popped = (uint16_t *)(ps->buf + n);
		vq->ps = ps;
		vq->pending = 0;
		reset_state(vq);
	}
	vq->pdesc = vu_mem_uva(vq->mem, vq->desc_uva, 16 * n);
	vq->driver_event = vu_mem_uva(vq->mem, vq->avail_uva, sizeof(struct vring_packed_event));
	vq->device_event = vu_mem_uva(vq->mem, vq->used_uva, sizeof(struct vring_packed_event));
	/* A region whose user address and file offset disagree could misalign our view. */
	if (((uintptr_t)vq->pdesc & 15) || ((uintptr_t)vq->driver_event & 3) || ((uintptr_t)vq->device_event & 3))
		vq->pdesc = NULL;
	if (!vq->pdesc || !vu_mem_host_gpa(vq->mem, vq->pdesc, &vq->ps->desc_gpa))
		vq->ps->desc_gpa = UINT64_MAX;
	return true;
}

void vring_packed_set_base(struct vu_vring *vq, uint32_t base)
{
	vq->last_avail = base & 0x7fff;
	vq->avail_wrap = base & VRING_PACKED_EVENT_WRAP;
	vq->used_idx = (base >> 16) & 0x7fff;
	vq->used_wrap = base >> 31;
	reset_state(vq);
}

/* An indirect table (packed descriptors, taken in sequence): its buffers into req. */
static const char *walk_indirect(struct vu_vring *vq, struct vu_req *req, uint64_t addr, uint32_t len)
{
	const char *why;
	const struct vring_packed_desc *t = vring_indirect_table(vq, addr, len, &why);

	if (!t)
		return why;
	for (unsigned i = 0; i < len / sizeof(*t); i++) {
		uint16_t flags = READ_ONCE(t[i].flags);
		vq->budget--;
		/* WRITE is the only flag that means something here; the others are reserved. */
		if (flags & VRING_DESC_F_INDIRECT)
			return "indirect descriptor inside an indirect table";
		why = vring_add_buffer(vq, req, READ_ONCE(t[i].addr), READ_ONCE(t[i].len),
				       flags & VRING_DESC_F_WRITE);
		if (why)
			return why;
	}
	return NULL;
}

/* One descriptor of a chain (the n-th, from 1) into req. */
static inline const char *add_desc(struct vu_vring *vq, struct vu_req *req, unsigned n, uint16_t flags,
			    uint64_t addr, uint32_t len)
{
	if (!(flags & VRING_DESC_F_INDIRECT))
		return vring_add_buffer(vq, req, addr, len, flags & VRING_DESC_F_WRITE);
	if (flags & VRING_DESC_F_NEXT)
		return "indirect descriptor with the NEXT flag";
	if (n != 1)
		return "indirect descriptor inside a chain";
	return walk_indirect(vq, req, addr, len);
}

/* Why id cannot be the next buffer the device takes, or NULL. */
static inline const char *id_unusable(const struct vu_vring *vq, uint16_t id)
{
	if (id >= vq->num)
		return "buffer id out of range";
	if (vq->ps->buf[id].state != VRING_BUF_FREE)
		return "buffer id already in use";
	return NULL;
}

/* Buffer id (usable) becomes the device's, its chain n ring descriptors long. */
static inline void mark_popped(struct vu_vring *vq, uint16_t id, unsigned n, uint16_t infl)
{
	struct vring_packed_state *ps = vq->ps;

	ps->buf[id] = (struct vring_packed_buf){ .ndesc = (uint16_t)n, .infl = infl, .state = VRING_BUF_POPPED };
	ps->popped[ps->popped_pos] = id;
	if (++ps->popped_pos == vq->num)
		ps->popped_pos = 0;
}

/* The buffer id a chain ended with becomes the device's, its chain n ring descriptors long. */
static inline const char *take_id(struct vu_vring *vq, uint16_t id, unsigned n, uint16_t infl)
{
	const char *why = id_unusable(vq, id);

	if (!why)
		mark_popped(vq, id, n, infl);
	return why;
}

/*
 * Any request (a chain, an INDIRECT table, an inflight record) whose head, at the
 * ring's next position with flags, is available. Apart from vring_packed_pop's
 * common case, which then needs no stack frame of this size.
 */
static __attribute__((noinline)) int pop_chain(struct vu_vring *vq, struct vu_req *req, uint16_t flags)
{
	uint16_t pos = vq->last_avail;
	bool wrap = vq->avail_wrap;
	const struct vring_packed_desc *d = &vq->pdesc[pos];

	/* Inflight: each ring descriptor is recorded in an entry of the free list. */
	struct vu_inflight_packed *q = vq->inflight_packed;
	uint16_t first = q ? READ_ONCE(q->free_head) : 0, entry = first, last = first;
	const char *why = NULL;
	uint16_t id = 0;
	unsigned n = 0;
	for (;;) {
		if (!used_bit_right(flags, wrap)) {
			why = "available descriptor with the wrong USED flag";
			break;
		}
		uint64_t addr = READ_ONCE(d->addr);
		uint32_t len = READ_ONCE(d->len);
		id = READ_ONCE(d->id);
		vq->budget--;
		if ((why = add_desc(vq, req, ++n, flags, addr, len)))
			break;
		if (q) {
			if (entry >= vq->num) {
				why = "inflight free list out of range";
				break;
			}
			struct vu_inflight_packed_desc *e = &q->desc[entry];
			e->addr = addr;
			e->len = len;
			e->flags = flags;
			e->id = id;
			last = entry;
			entry = READ_ONCE(e->next);
		}
		pos = vring_packed_advance(vq, pos, 1, &wrap);
		if (!(flags & VRING_DESC_F_NEXT))
			break;
		if (n == vq->num) {
			why = "descriptor chain longer than the queue";
			break;
		}
		d = &vq->pdesc[pos];
		flags = READ_ONCE(d->flags);
		if (!avail_in_lap(flags, wrap)) {
			why = "chained descriptor not made available";
			break;
		}
	}
	if (why || (why = take_id(vq, id, n, first))) {
		vu_vring_fail(vq, why);
		return -1;
	}
	vq->last_avail = pos;
	vq->avail_wrap = wrap;
	req->head = id;
	if (q) {
		struct vu_inflight_packed_desc *h = &q->desc[first];
		h->num = (uint16_t)n;
		h->last = last;
		h->counter = ++vq->inflight_counter;
		q->free_head = entry;
		/* Whole before it counts: a back-end killed meanwhile takes the chain from the ring again. */
		__atomic_store_n(&h->inflight, 1, __ATOMIC_RELEASE);
	}
	return 1;
}

int vring_packed_pop(struct vu_vring *vq, struct vu_req *req)
{
	uint16_t pos = vq->last_avail;
	const struct vring_packed_desc *d = &vq->pdesc[pos];
	uint16_t flags = __atomic_load_n(&d->flags, __ATOMIC_ACQUIRE);

	if (!avail_in_lap(flags, vq->avail_wrap))
		return 0;
	vring_req_start(req, 0);
	if (__builtin_expect((flags & (VRING_DESC_F_NEXT | VRING_DESC_F_INDIRECT)) || vq->inflight_packed ||
			     !used_bit_right(flags, vq->avail_wrap), 0))
		return pop_chain(vq, req, flags);

	/* The common request: one descriptor, no inflight record. */
	uint64_t addr = READ_ONCE(d->addr);
	uint32_t len = READ_ONCE(d->len);
	uint16_t id = READ_ONCE(d->id);
	vq->budget--;
	const char *why = vring_add_buffer(vq, req, addr, len, flags & VRING_DESC_F_WRITE);
	if (why || (why = take_id(vq, id, 1, 0))) {
		vu_vring_fail(vq, why);
		return -1;
	}
	vq->last_avail = vring_packed_advance(vq, pos, 1, &vq->avail_wrap);
	req->head = id;
	return 1;
}

/*
 * The common case four at a time (DPDK's vhost takes a cache line of descriptors
 * per step likewise): the next VU_VRING_BURST ring descriptors each one buffer
 * on its own (no chain, no INDIRECT), not across the ring's end, no inflight region.
 * Their flags are checked together, then one fence orders the reads of the rest.
 * Returns how many were taken: VU_VRING_BURST, or 0 when the group does not
 * qualify (not all available yet, or anything unusual or wrong in it). The caller
 * then takes them one by one, which also finds and reports what was wrong: a
 * group that fails a check leaves nothing taken or changed in the ring's state
 * (the ids it marked taken are given back).
 */
int vring_packed_pop_batch(struct vu_vring *vq, struct vu_req *reqs)
{
	enum { N = VU_VRING_BURST };
	struct vring_packed_state *ps = vq->ps;
	uint16_t pos = vq->last_avail, ids[N];
	bool wrap = vq->avail_wrap;

	if ((unsigned)pos + N > vq->num || vq->inflight_packed)
		return 0;
	/* Each flags word as one available on its own in this lap has it: AVAIL as wrap, USED not. */
	const uint16_t checked = AVAIL | USED | VRING_DESC_F_NEXT | VRING_DESC_F_INDIRECT;
	const uint16_t expected = wrap ? AVAIL : USED;
	const struct vring_packed_desc *d = &vq->pdesc[pos];
	uint16_t flags[N], off_lap = 0;
	for (unsigned i = 0; i < N; i++) {
		flags[i] = READ_ONCE(d[i].flags);
		off_lap |= flags[i] ^ expected;
	}
	if (off_lap & checked)
		return 0;
	__atomic_thread_fence(__ATOMIC_ACQUIRE); /* the flags before the rest of each descriptor */
	unsigned i;
#pragma GCC unroll 4
	for (i = 0; i < N; i++) {
		ids[i] = READ_ONCE(d[i].id);
		uint32_t len = READ_ONCE(d[i].len);
		void *host = vring_host_at_hint(vq, READ_ONCE(d[i].addr), len);
		/* Taken as it is checked: a second use of an id in the group is then not free. */
		if (id_unusable(vq, ids[i]) || !host || !reqs[i].max_iov)
			break;
		ps->buf[ids[i]].state = VRING_BUF_POPPED;
		vring_req_start(&reqs[i], ids[i]);
		vring_req_append(&reqs[i], host, len, flags[i] & VRING_DESC_F_WRITE);
	}
	if (i < N) {
		while (i--)
			ps->buf[ids[i]].state = VRING_BUF_FREE;
		return 0;
	}
#pragma GCC unroll 4
	for (i = 0; i < N; i++)
		mark_popped(vq, ids[i], 1, 0);
	vq->budget -= N;
	vq->last_avail = vring_packed_advance(vq, pos, N, &vq->avail_wrap);
	return N;
}

int vring_packed_resubmit(struct vu_vring *vq, struct vu_req *req, uint16_t entry)
{
	struct vu_inflight_packed *q = vq->inflight_packed;
	const char *why = NULL;
	uint16_t id = 0;
	unsigned n = 0;

	vring_req_start(req, 0);
	/* The front-end holds the region too: every index read from it is checked again. */
	if (!q || entry >= vq->num || !(n = READ_ONCE(q->desc[entry].num)) || n > vq->num) {
		why = "inflight record out of range";
	} else {
		uint16_t e = entry;
		for (unsigned k = 1; k <= n && !why; k++) {
			if (e >= vq->num) {
				why = "inflight record out of range";
				break;
			}
			const struct vu_inflight_packed_desc *s = &q->desc[e];
			id = READ_ONCE(s->id);
			vq->budget--;
			why = add_desc(vq, req, k, READ_ONCE(s->flags), READ_ONCE(s->addr), READ_ONCE(s->len));
			e = READ_ONCE(s->next);
		}
	}
	if (why || (why = take_id(vq, id, n, entry))) {
		vu_vring_fail(vq, why);
		return -1;
	}
	req->head = id;
	return 1;
}

void vring_packed_unpop(struct vu_vring *vq, unsigned n)
{
	struct vring_packed_state *ps = vq->ps;

	for (unsigned k = 0; k < n; k++) {
		ps->popped_pos = (ps->popped_pos ? ps->popped_pos : vq->num) - 1;
		struct vring_packed_buf *b = &ps->buf[ps->popped[ps->popped_pos]];
		if (vq->last_avail >= b->ndesc) {
			vq->last_avail -= b->ndesc;
		} else {
			vq->last_avail = (uint16_t)(vq->last_avail + vq->num - b->ndesc);
			vq->avail_wrap = !vq->avail_wrap;
		}
		b->state = VRING_BUF_FREE;
	}
}

void vring_packed_push(struct vu_vring *vq, const struct vu_req *reqs, unsigned n, const uint32_t *written_at,
		       size_t step)
{
	struct vring_packed_state *ps = vq->ps;
	/* Kept in locals: the stores into pend and buf could otherwise alias them. */
	unsigned pending = vq->pending;
	uint16_t next_used = ps->next_used;
	bool wrap = ps->next_used_wrap, may_merge = vq->in_order && !vq->inflight_packed;

	for (unsigned i = 0; i < n; i++) {
		uint16_t id = reqs[i].head;
		uint32_t written = written_at[i * step];
		if (id >= vq->num || ps->buf[id].state != VRING_BUF_POPPED) {
			vu_warn("queue %u: completion of buffer %u, which the device does not hold", vq->index, id);
			continue;
		}
		struct vring_packed_buf *b = &ps->buf[id];

		if (may_merge && !written && pending && !(ps->pend[pending - 1].flags & VRING_DESC_F_WRITE)) {
			/*
			 * In order, nothing written, after a completion that wrote nothing: one
			 * used descriptor for both, with the later id; the driver takes the
			 * buffers before it as used whole (virtio's in-order batches). The
			 * earlier one is done.
			 */
			struct vring_packed_pend *last = &ps->pend[pending - 1];
			ps->buf[last->id].state = VRING_BUF_FREE;
			last->id = id;
		} else {
			uint16_t flags = (wrap ? AVAIL | USED : 0) | (written ? VRING_DESC_F_WRITE : 0);
			ps->pend[pending++] = (struct vring_packed_pend){ .slot = next_used, .flags = flags, .id = id,
									  .infl = b->infl, .len = written };
			if (vq->inflight_packed)
				vq->inflight_packed->desc[b->infl].inflight = VU_INFLIGHT_PACKED_PUSHED;
		}
		next_used = vring_packed_advance(vq, next_used, b->ndesc, &wrap);
		b->state = VRING_BUF_PUSHED;
	}
	vq->pending = pending;
	ps->next_used = next_used;
	ps->next_used_wrap = wrap;
}

/* The position a (pos, wrap) pair has in the two laps a wrap counter takes to come back. */
static inline unsigned linear(const struct vu_vring *vq, uint16_t pos, bool wrap)
{
	return wrap ? pos : pos + vq->num;
}

/*
 * Did used descriptors written from old to new (at most a lap) cover the driver's
 * event descriptor (off, wrap)? Positions count over two laps, modulo.
 */
static bool need_event(const struct vu_vring *vq, uint16_t off, bool off_wrap, uint16_t old,
		       bool old_wrap, uint16_t new, bool new_wrap)
{
	unsigned period = 2 * vq->num, from = linear(vq, old, old_wrap);
	unsigned span = (linear(vq, new, new_wrap) + period - from) % period;
	unsigned dist = (linear(vq, off, off_wrap) + period - from) % period;

	return dist < span;
}

static bool should_notify(struct vu_vring *vq)
{
	smp_mb(); /* the used flags must be visible before we read the driver's wishes */
	uint16_t flags = __atomic_load_n(&vq->driver_event->flags, __ATOMIC_ACQUIRE) & 3;
	uint16_t off_wrap = READ_ONCE(vq->driver_event->off_wrap);
	bool valid = vq->signalled_valid;
	uint16_t old = vq->signalled_used;
	bool old_wrap = vq->signalled_wrap;

	vq->signalled_used = vq->used_idx;
	vq->signalled_wrap = vq->used_wrap;
	vq->signalled_valid = true;
	if (flags == VRING_PACKED_EVENT_DISABLE)
		return false;
	if (flags != VRING_PACKED_EVENT_DESC || !vq->event_idx || !valid)
		return true;
	uint16_t off = off_wrap & 0x7fff;
	return off < vq->num && need_event(vq, off, off_wrap & VRING_PACKED_EVENT_WRAP, old, old_wrap,
					   vq->used_idx, vq->used_wrap);
}

void vring_packed_flush(struct vu_vring *vq)
{
	struct vring_packed_state *ps = vq->ps;
	struct vu_inflight_packed *q = vq->inflight_packed;
	unsigned n = vq->pending;

	if (q) {
		/* The batch is under way: a restart looks at the ring to tell whether the driver saw it. */
		q->used_idx = ps->next_used;
		q->used_wrap_counter = ps->next_used_wrap;
		__atomic_signal_fence(__ATOMIC_RELEASE);
	}
	/*
	 * The used descriptors, written together (the driver polls the batch's first slot:
	 * writes spread over the device's work would pull the lines back and forth), the
	 * first one's flags last.
	 */
	for (unsigned i = n - 1; i > 0; i--) {
		struct vring_packed_desc *d = &vq->pdesc[ps->pend[i].slot];
		WRITE_ONCE(d->id, ps->pend[i].id);
		WRITE_ONCE(d->len, ps->pend[i].len);
		WRITE_ONCE(d->flags, ps->pend[i].flags);
	}
	struct vring_packed_desc *first = &vq->pdesc[ps->pend[0].slot];
	WRITE_ONCE(first->id, ps->pend[0].id);
	WRITE_ONCE(first->len, ps->pend[0].len);
	__atomic_store_n(&first->flags, ps->pend[0].flags, __ATOMIC_RELEASE);
	if (__builtin_expect(vq->mem->log.on, 0)) {
		if (vq->log_used && ps->desc_gpa != UINT64_MAX)
			for (unsigned i = 0; i < n; i++)
				vu_mem_log(vq->mem, ps->desc_gpa + 16ull * ps->pend[i].slot, 16);
		vring_log_notify(vq);
	}
	vq->used_idx = ps->next_used;
	vq->used_wrap = ps->next_used_wrap;
	vq->pending = 0;
	for (unsigned i = 0; i < n; i++)
		ps->buf[ps->pend[i].id].state = VRING_BUF_FREE;
	if (q) {
		__atomic_signal_fence(__ATOMIC_ACQUIRE);
		for (unsigned i = 0; i < n; i++) {
			/* Done: its record's entries go back to the free list. */
			uint16_t e = ps->pend[i].infl, last = READ_ONCE(q->desc[e].last);
			q->desc[e].inflight = 0;
			if (last < vq->num) {
				q->desc[last].next = q->free_head;
				q->free_head = e;
			}
		}
		__atomic_signal_fence(__ATOMIC_RELEASE);
		q->old_free_head = q->free_head;
		q->old_used_idx = q->used_idx;
		q->old_used_wrap_counter = q->used_wrap_counter;
	}
	if (should_notify(vq))
		vu_vring_signal(vq);
}

bool vring_packed_kicks(struct vu_vring *vq, bool enable)
{
	uint16_t flags = enable ? VRING_PACKED_EVENT_ENABLE : VRING_PACKED_EVENT_DISABLE;

	/* Written only when it changes (see vring_split_kicks). */
	if (READ_ONCE(vq->device_event->flags) != flags) {
		WRITE_ONCE(vq->device_event->flags, flags);
		vring_log_used(vq, offsetof(struct vring_packed_event, flags), sizeof(flags));
	}
	if (!enable)
		return false;
	smp_mb(); /* our wish must be visible before we look for new requests */
	uint16_t f = __atomic_load_n(&vq->pdesc[vq->last_avail].flags, __ATOMIC_ACQUIRE);
	return avail_in_lap(f, vq->avail_wrap) && !vring_over_budget(vq);
}
