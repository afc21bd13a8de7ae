/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What both ring layouts share: set-up, the per-turn budget, buffers appended to a
 * request, indirect tables, the dirty log, notifications, resubmitted requests
 * first, and the dispatch to proto/vring-split.c or proto/vring-packed.c.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/log.h"
#include "proto/loop.h"
#include "proto/prefetch.h"
#include "proto/vring-int.h"

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

void vu_vring_free(struct vu_vring *vq)
{
	vring_packed_free(vq);
	free(vq->resubmit);
	vq->resubmit = NULL;
	vq->resubmit_n = vq->resubmit_pos = 0;
}

void vu_vring_set_base(struct vu_vring *vq, uint32_t base)
{
	vq->pending = 0;
	vq->signalled_valid = false;
	if (vq->packed)
		vring_packed_set_base(vq, base);
	else
		vring_split_set_base(vq, base);
}

uint32_t vu_vring_get_base(const struct vu_vring *vq)
{
	if (vq->packed)
		return VU_PACKED_BASE(vq->last_avail, vq->avail_wrap, vq->used_idx, vq->used_wrap);
	return vq->last_avail;
}

bool vu_vring_map(struct vu_vring *vq, const struct vu_mem *mem)
{
	vq->mem = mem;
	vq->region_hint = 0;
	vq->desc = NULL;
	vq->avail = NULL;
	vq->used = NULL;
	return (vq->packed ? vring_packed_map(vq) : vring_split_map(vq)) && vu_vring_ready(vq);
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

bool vring_over_budget(struct vu_vring *vq)
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

const char *vring_add_buffer_slow(struct vu_vring *vq, struct vu_req *req, uint64_t addr, uint32_t len,
				  bool writable)
{
	unsigned used = req->out + req->in;
	int i = vu_mem_region_of(vq->mem, addr);

	if (i >= 0)
		vq->region_hint = (unsigned)i; /* for the next buffers (see vring_add_buffer) */
	/* By the flags, not by what was described: empty or undescribed buffers count too. */
	if (!writable && req->writing)
		return "device-readable descriptor after a device-writable one";
	req->writing |= writable;
	if (!len && !vu_mem_gpa_valid(vq->mem, addr, 1))
		return "buffer outside guest memory"; /* even an empty one points somewhere */
	int n = req->truncated ? -1 : vu_mem_gpa_iov(vq->mem, addr, len, req->iov + used, req->max_iov - used);
	if (n < 0) {
		/* Not described: outside guest memory, or more segments than the device takes. */
		if (!vu_mem_gpa_valid(vq->mem, addr, len))
			return "buffer outside guest memory";
		req->truncated = true;
		return NULL;
	}
	if (writable) {
		req->in += n;
		req->in_bytes += len;
	} else {
		req->out += n;
	}
	return NULL;
}

const void *vring_indirect_table(struct vu_vring *vq, uint64_t addr, uint32_t len, const char **why)
{
	const void *t = NULL;

	*why = NULL;
	if (!vq->indirect)
		*why = "indirect descriptor without VIRTIO_RING_F_INDIRECT_DESC";
	else if (len == 0 || len % 16)
		*why = "indirect table length is not a multiple of 16";
	/* No legal chain is longer than the largest queue: this bounds one request's walk. */
	else if (len / 16 > VU_VRING_MAX_SIZE)
		*why = "indirect table longer than the largest queue";
	else if (!(t = vu_mem_gpa(vq->mem, addr, len)) || ((uintptr_t)t & 7))
		*why = "indirect table outside guest memory";
	return *why ? NULL : t;
}

void vring_log_used(struct vu_vring *vq, uint64_t offset, uint64_t len)
{
	if (vq->log_used)
		vu_mem_log(vq->mem, vq->log_guest_addr + offset, len);
}

void vring_log_notify(struct vu_vring *vq)
{
	static const uint64_t one = 1;

	if (vq->mem->log.notify_fd >= 0 && write(vq->mem->log.notify_fd, &one, sizeof(one)) < 0)
		vu_warn("queue %u: cannot signal the log eventfd", vq->index);
}

void vu_vring_signal(struct vu_vring *vq)
{
	static const uint64_t one = 1;

	if (vq->call_fd >= 0) {
		if (write(vq->call_fd, &one, sizeof(one)) < 0)
			vu_warn("queue %u: cannot signal the call eventfd", vq->index);
	} else if (vq->signal_inband) {
		vq->signal_inband(vq);
	}
}

/* The next request of a ring that is ready and within its budget (see vu_vring_pop). */
static int pop_one(struct vu_vring *vq, struct vu_req *req)
{
	if (__builtin_expect(vq->resubmit_pos < vq->resubmit_n, 0)) {
		uint16_t r = vq->resubmit[vq->resubmit_pos++];
		return vq->packed ? vring_packed_resubmit(vq, req, r) : vring_split_resubmit(vq, req, r);
	}
	return vq->packed ? vring_packed_pop(vq, req) : vring_split_pop(vq, req);
}

int vu_vring_pop(struct vu_vring *vq, struct vu_req *req)
{
	if (!vu_vring_ready(vq))
		return vq->broken ? -1 : 0;
	if (vring_over_budget(vq))
		return 0;
	return pop_one(vq, req);
}

int vu_vring_pop_burst(struct vu_vring *vq, struct vu_req *reqs, unsigned n)
{
	unsigned got = 0;
	int r = 0;

	if (!vu_vring_ready(vq))
		return vq->broken ? -1 : 0;
	while (got < n && !vring_over_budget(vq)) {
		if (vq->packed && n - got >= VU_VRING_BURST && vq->resubmit_pos == vq->resubmit_n &&
		    (r = vring_packed_pop_batch(vq, reqs + got)) > 0) {
			got += (unsigned)r;
			continue;
		}
		if ((r = pop_one(vq, reqs + got)) <= 0)
			break;
		got++;
	}
	return got ? (int)got : r;
}

/* Asks for the lines that hold bytes [p, p + len). */
static void prefetch_lines(const void *p, size_t len, bool for_write)
{
	for (uintptr_t a = (uintptr_t)p & ~(uintptr_t)63; a < (uintptr_t)p + len; a += 64) {
		if (for_write)
			vu_prefetch_for_write((const void *)a);
		else
			__builtin_prefetch((const void *)a);
	}
}

/* ... those of count entries of size bytes from index at, in a ring of num (at < num). */
static void prefetch_ring(const void *ring, size_t size, unsigned num, unsigned at, unsigned count, bool for_write)
{
	const char *base = ring;

	if (count > num)
		count = num;
	unsigned first = count < num - at ? count : num - at;
	prefetch_lines(base + (size_t)at * size, (size_t)first * size, for_write);
	prefetch_lines(base, (size_t)(count - first) * size, for_write);
}

void vu_vring_prefetch(const struct vu_vring *vq, unsigned n, bool for_write)
{
	if (!vu_vring_ready(vq))
		return;
	if (vq->packed)
		prefetch_ring(vq->pdesc, sizeof(*vq->pdesc), vq->num, vq->last_avail, n, for_write);
	else /* the avail ring is only read; a split ring's size is a power of 2 */
		prefetch_ring(vq->avail->ring, sizeof(vq->avail->ring[0]), vq->num, vq->last_avail & (vq->num - 1), n,
			      false);
}

void vu_vring_unpop(struct vu_vring *vq, unsigned n)
{
	if (vq->packed)
		vring_packed_unpop(vq, n);
	else
		vring_split_unpop(vq, n);
}

/*
 * What the device wrote is in the request's writable iovecs (what it was given):
 * marked through the memory table, not by walking the chain again, whose ring
 * slots may hold other completions by now (packed) or what the guest changed.
 * Apart from vu_vring_push, which then needs no stack frame of its own.
 */
static __attribute__((noinline, cold)) void log_written(struct vu_vring *vq, const struct vu_req *req)
{
	for (unsigned i = req->out; i < req->out + req->in; i++)
		vu_mem_log_host(vq->mem, req->iov[i].iov_base, req->iov[i].iov_len);
}

/* n pushes, reqs[i] with written[i * step] bytes (step 0: the same for all). */
static void push_lens(struct vu_vring *vq, const struct vu_req *reqs, unsigned n, const uint32_t *written,
		      size_t step)
{
	if (__builtin_expect(!vq->desc, 0))
		return; /* not mapped (any more): nothing to complete into */
	if (__builtin_expect(vq->mem && vq->mem->log.on, 0))
		for (unsigned i = 0; i < n; i++)
			log_written(vq, &reqs[i]);
	if (vq->packed)
		vring_packed_push(vq, reqs, n, written, step);
	else
		vring_split_push(vq, reqs, n, written, step);
}

void vu_vring_push_burst(struct vu_vring *vq, const struct vu_req *reqs, unsigned n, uint32_t written)
{
	push_lens(vq, reqs, n, &written, 0);
}

void vu_vring_push_each(struct vu_vring *vq, const struct vu_req *reqs, unsigned n, const uint32_t *written)
{
	push_lens(vq, reqs, n, written, 1);
}

void vu_vring_push(struct vu_vring *vq, const struct vu_req *req, uint32_t written)
{
	push_lens(vq, req, 1, &written, 0);
}

void vu_vring_flush(struct vu_vring *vq)
{
	if (!vq->pending || !vu_vring_ready(vq))
		return;
	if (vq->packed)
		vring_packed_flush(vq);
	else
		vring_split_flush(vq);
}

bool vu_vring_kicks(struct vu_vring *vq, bool enable)
{
	if (!vu_vring_ready(vq))
		return false;
	return vq->packed ? vring_packed_kicks(vq, enable) : vring_split_kicks(vq, enable);
}
