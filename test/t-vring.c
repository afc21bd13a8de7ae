/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * proto/vring.c on its own: split rings laid out by hand in guest memory
 * (test/ring-builder.c) and walked, completed and notified directly, without a
 * session. What the ring must refuse (each refusal breaks the queue and says
 * why), what it must accept (chains, indirect tables, buffers crossing regions,
 * chains longer than the device's iovec array), used-ring publishing, when the
 * driver is notified (with and without EVENT_IDX, across 16-bit wrap-around),
 * what the device asks of the driver's kicks, and the per-turn work budget.
 */
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "proto/loop.h"
#include "proto/vring.h"
#include "test/check.h"
#include "test/ring-builder.h"

#define NUM 16
#define MAX_IOV 64
#define LEN 64               /* the length of buffers rb_chain allocates here */

static struct iovec iov[MAX_IOV];

static struct vu_req new_req(unsigned max_iov)
{
	return (struct vu_req){ .iov = iov, .max_iov = max_iov };
}

/* A completion of head with nothing described (split rings take any head). */
static void push_head(struct vu_vring *vq, uint16_t head, uint32_t len)
{
	struct vu_req req = { .head = head, .iov = iov };

	vu_vring_push(vq, &req, len);
}

/* True when iov[i] is the back-end's view of guest bytes [gpa, gpa + len). */
static bool iov_at(struct rb *rb, unsigned i, uint64_t gpa, size_t len)
{
	return iov[i].iov_base == rb_backend(rb, gpa) && iov[i].iov_len == len;
}

/* True when the request's iovecs are the buffers of table[first..first + n), in order. */
static bool iov_are(struct rb *rb, const struct vu_req *req, const struct vring_desc *table,
		    unsigned first, unsigned n)
{
	if (req->out + req->in != n)
		return false;
	for (unsigned i = 0; i < n; i++)
		if (!iov_at(rb, i, table[first + i].addr, table[first + i].len))
			return false;
	return true;
}

/* A fresh ring of num entries; only a failure to build one is reported (as "name: ring"). */
static bool ring(struct rb *rb, unsigned num, unsigned flags, const char *name)
{
	if (rb_init(rb, num, flags) == 0)
		return true;
	CHECK(0, "%s: ring", name);
	return false;
}

/* ---- what the walker refuses ----------------------------------------------- */

/*
 * Each case writes one hostile request (or avail index) into a fresh ring of NUM
 * entries; popping must fail, break the ring, signal the error eventfd once and
 * log the reason given.
 */
struct refusal {
	const char *name;
	unsigned flags;              /* rb_init flags: the ring's features */
	void (*build)(struct rb *rb);
	const char *why;             /* what the log must say */
};

static uint64_t buf(struct rb *rb)
{
	return rb_alloc(rb, LEN, 8);
}

static void readable_after_writable(struct rb *rb)
{
	rb_desc(&rb->desc[0], buf(rb), LEN, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	rb_desc(&rb->desc[1], buf(rb), LEN, 0, 0);
	rb_offer(rb, 0);
}

/* The order is by the flags: an empty writable buffer still comes before the readable one. */
static void readable_after_empty_writable(struct rb *rb)
{
	rb_desc(&rb->desc[0], buf(rb), 0, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	rb_desc(&rb->desc[1], buf(rb), LEN, 0, 0);
	rb_offer(rb, 0);
}

static void empty_buffer_outside_memory(struct rb *rb)
{
	rb_desc(&rb->desc[0], 0xdead0000000ull, 0, 0, 0);
	rb_offer(rb, 0);
}

static void two_loop(struct rb *rb)
{
	rb_desc(&rb->desc[0], buf(rb), LEN, VRING_DESC_F_NEXT, 1);
	rb_desc(&rb->desc[1], buf(rb), LEN, VRING_DESC_F_NEXT, 0);
	rb_offer(rb, 0);
}

static void self_loop(struct rb *rb)
{
	rb_desc(&rb->desc[3], buf(rb), LEN, VRING_DESC_F_NEXT, 3);
	rb_offer(rb, 3);
}

static void full_table_loop(struct rb *rb)
{
	/* Every entry once, then back to the start: NUM + 1 steps. */
	rb_chain(rb, rb->desc, 0, NUM, 0, LEN);
	rb->desc[NUM - 1].flags |= VRING_DESC_F_NEXT;
	rb->desc[NUM - 1].next = 0;
	rb_offer(rb, 0);
}

static void next_is_num(struct rb *rb)
{
	rb_desc(&rb->desc[0], buf(rb), LEN, VRING_DESC_F_NEXT, NUM);
	rb_offer(rb, 0);
}

static void next_is_ffff(struct rb *rb)
{
	rb_desc(&rb->desc[0], buf(rb), LEN, VRING_DESC_F_NEXT, 0xffff);
	rb_offer(rb, 0);
}

static void head_is_num(struct rb *rb)
{
	rb_offer(rb, NUM);
}

static void head_is_ffff(struct rb *rb)
{
	rb_offer(rb, 0xffff);
}

static void avail_ahead(struct rb *rb)
{
	rb_chain(rb, rb->desc, 0, 1, 0, LEN);
	rb->avail->idx = NUM + 1;
}

static void avail_behind(struct rb *rb)
{
	/* One behind what the device took (0): 0xffff entries "waiting". */
	rb->avail->idx = 0xffff;
}

static void buffer_below_memory(struct rb *rb)
{
	rb_desc(&rb->desc[0], 0x1000, LEN, 0, 0);
	rb_offer(rb, 0);
}

static void buffer_past_end(struct rb *rb)
{
	rb_desc(&rb->desc[0], RB_END - 16, 17, 0, 0);
	rb_offer(rb, 0);
}

static void buffer_wraps(struct rb *rb)
{
	rb_desc(&rb->desc[0], 0xfffffffffffffff0ull, 32, 0, 0);
	rb_offer(rb, 0);
}

static void writable_outside(struct rb *rb)
{
	rb_desc(&rb->desc[0], buf(rb), LEN, VRING_DESC_F_NEXT, 1);
	rb_desc(&rb->desc[1], RB_END, LEN, VRING_DESC_F_WRITE, 0);
	rb_offer(rb, 0);
}

/* The head is an indirect descriptor for a table of n entries (a valid chain). */
static struct vring_desc *indirect_head(struct rb *rb, unsigned n, uint16_t flags)
{
	uint64_t gpa;
	struct vring_desc *t = rb_table(rb, n, &gpa);

	rb_chain(rb, t, 0, n, 0, LEN);
	rb_desc(&rb->desc[0], gpa, 16 * n, VRING_DESC_F_INDIRECT | flags, 1);
	rb_offer(rb, 0);
	return t;
}

static void indirect_plain(struct rb *rb)
{
	indirect_head(rb, 2, 0);
}

static void indirect_nested(struct rb *rb)
{
	uint64_t gpa;
	struct vring_desc *inner = rb_table(rb, 1, &gpa);
	struct vring_desc *t = indirect_head(rb, 2, 0);

	rb_chain(rb, inner, 0, 1, 0, LEN);
	rb_desc(&t[1], gpa, 16, VRING_DESC_F_INDIRECT, 0);
}

static void indirect_with_next(struct rb *rb)
{
	rb_desc(&rb->desc[1], buf(rb), LEN, 0, 0);
	indirect_head(rb, 2, VRING_DESC_F_NEXT);
}

static void indirect_not_head(struct rb *rb)
{
	uint64_t gpa;
	struct vring_desc *t = rb_table(rb, 1, &gpa);

	rb_chain(rb, t, 0, 1, 0, LEN);
	rb_desc(&rb->desc[0], buf(rb), LEN, VRING_DESC_F_NEXT, 1);
	rb_desc(&rb->desc[1], gpa, 16, VRING_DESC_F_INDIRECT, 0);
	rb_offer(rb, 0);
}

static void indirect_len(struct rb *rb, uint32_t len)
{
	indirect_head(rb, 2, 0);
	rb->desc[0].len = len;
}

static void indirect_len0(struct rb *rb)
{
	indirect_len(rb, 0);
}

static void indirect_len24(struct rb *rb)
{
	indirect_len(rb, 24);
}

static void indirect_too_long(struct rb *rb)
{
	/* One entry more than the largest queue, the whole table inside guest memory. */
	indirect_head(rb, VU_VRING_MAX_SIZE + 1, 0);
}

static void indirect_outside(struct rb *rb)
{
	indirect_head(rb, 2, 0);
	rb->desc[0].addr = RB_END - 16;
}

static void indirect_crossing(struct rb *rb)
{
	/* The walker reads a table through one mapping: it may not span two regions. */
	indirect_head(rb, 2, 0);
	rb->desc[0].addr = RB_GPA + RB_RAM0 - 16;
}

static void indirect_misaligned(struct rb *rb)
{
	indirect_head(rb, 2, 0);
	rb->desc[0].addr += 4;
}

static void indirect_loop(struct rb *rb)
{
	struct vring_desc *t = indirect_head(rb, 2, 0);
	t[1].flags |= VRING_DESC_F_NEXT;
	t[1].next = 0;
}

static void indirect_next_out(struct rb *rb)
{
	struct vring_desc *t = indirect_head(rb, 2, 0);
	t[1].flags |= VRING_DESC_F_NEXT;
	t[1].next = 2;
}

static void indirect_readable_after_writable(struct rb *rb)
{
	struct vring_desc *t = indirect_head(rb, 2, 0);
	t[0].flags |= VRING_DESC_F_WRITE;
}

static void indirect_buffer_outside(struct rb *rb)
{
	struct vring_desc *t = indirect_head(rb, 2, 0);
	t[1].addr = RB_END - 8;
}

static const struct refusal refusals[] = {
	{ "device-readable after an empty device-writable", RB_INDIRECT, readable_after_empty_writable,
	  "device-readable descriptor after a device-writable one" },
	{ "empty buffer outside guest memory", RB_INDIRECT, empty_buffer_outside_memory,
	  "buffer outside guest memory" },
	{ "device-readable after device-writable", RB_INDIRECT, readable_after_writable,
	  "device-readable descriptor after a device-writable one" },
	{ "two descriptors chained to each other", RB_INDIRECT, two_loop, "loops" },
	{ "a descriptor chained to itself", RB_INDIRECT, self_loop, "loops" },
	{ "every descriptor once, then back to the head", RB_INDIRECT, full_table_loop, "loops" },
	{ "next index = queue size", RB_INDIRECT, next_is_num, "descriptor index out of range" },
	{ "next index 0xffff", RB_INDIRECT, next_is_ffff, "descriptor index out of range" },
	{ "head index = queue size", RB_INDIRECT, head_is_num, "head index out of range" },
	{ "head index 0xffff", RB_INDIRECT, head_is_ffff, "head index out of range" },
	{ "avail idx queue size + 1 ahead", RB_INDIRECT, avail_ahead,
	  "available index moved further than the queue size" },
	{ "avail idx behind the device", RB_INDIRECT, avail_behind,
	  "available index moved further than the queue size" },
	{ "buffer below guest memory", RB_INDIRECT, buffer_below_memory, "buffer outside guest memory" },
	{ "buffer one byte past the end of guest memory", RB_INDIRECT, buffer_past_end,
	  "buffer outside guest memory" },
	{ "buffer whose address + length overflows", RB_INDIRECT, buffer_wraps, "buffer outside guest memory" },
	{ "device-writable buffer outside guest memory", RB_INDIRECT, writable_outside,
	  "buffer outside guest memory" },
	{ "indirect without the feature", 0, indirect_plain,
	  "indirect descriptor without VIRTIO_RING_F_INDIRECT_DESC" },
	{ "indirect inside an indirect table", RB_INDIRECT, indirect_nested,
	  "indirect descriptor inside an indirect table" },
	{ "INDIRECT with NEXT", RB_INDIRECT, indirect_with_next, "indirect descriptor with the NEXT flag" },
	{ "indirect after a direct descriptor", RB_INDIRECT, indirect_not_head,
	  "indirect descriptor not at the head of its chain" },
	{ "indirect table of length 0", RB_INDIRECT, indirect_len0,
	  "indirect table length is not a multiple of 16" },
	{ "indirect table of length 24", RB_INDIRECT, indirect_len24,
	  "indirect table length is not a multiple of 16" },
	{ "indirect table of 32769 entries", RB_INDIRECT, indirect_too_long,
	  "indirect table longer than the largest queue" },
	{ "indirect table past the end of guest memory", RB_INDIRECT, indirect_outside,
	  "indirect table outside guest memory" },
	{ "indirect table across two regions", RB_INDIRECT, indirect_crossing,
	  "indirect table outside guest memory" },
	{ "indirect table not 8-byte aligned", RB_INDIRECT, indirect_misaligned,
	  "indirect table outside guest memory" },
	{ "indirect chain that loops", RB_INDIRECT, indirect_loop, "loops" },
	{ "indirect next index past its table", RB_INDIRECT, indirect_next_out,
	  "descriptor index out of range" },
	{ "indirect: device-readable after device-writable", RB_INDIRECT,
	  indirect_readable_after_writable, "device-readable descriptor after a device-writable one" },
	{ "indirect: buffer outside guest memory", RB_INDIRECT, indirect_buffer_outside,
	  "buffer outside guest memory" },
};

static void test_refusals(void)
{
	for (unsigned k = 0; k < sizeof(refusals) / sizeof(refusals[0]); k++) {
		const struct refusal *c = &refusals[k];
		struct rb rb;
		struct vu_req req = new_req(MAX_IOV);

		char name[160];
		snprintf(name, sizeof(name), "refuse: %s", c->name);
		if (!ring(&rb, NUM, c->flags, name))
			continue;
		c->build(&rb);
		CHECK_EQ(rb_pop(&rb, &req), -1, "refuse: %s: pop fails", c->name);
		if (!CHECK(strstr(rb.log, c->why), "refuse: %s: the log says \"%s\"", c->name, c->why))
			check_note("logged: %s", rb.log);
		CHECK(rb_pop(&rb, &req) == -1 && !vu_vring_ready(&rb.vq),
		      "refuse: %s: the ring stays broken", c->name);
		CHECK_EQ(rb_errors(&rb), 1, "refuse: %s: error eventfd signalled once", c->name);
		rb_fini(&rb);
	}
}

/* ---- mapping ----------------------------------------------------------------- */

static void test_map(void)
{
	struct rb rb;

	if (!ring(&rb, NUM, 0, "map"))
		return;
	struct vu_vring saved = rb.vq;
	static const struct {
		const char *name;
		unsigned num;
		uint64_t desc, avail, used; /* added to the good addresses */
	} bad[] = {
		{ "queue size 0", 0, 0, 0, 0 },
		{ "queue size 3", 3, 0, 0, 0 },
		{ "queue size 24", 24, 0, 0, 0 },
		{ "descriptor table not 16-byte aligned", NUM, 8, 0, 0 },
		{ "avail ring at an odd address", NUM, 0, 1, 0 },
		{ "used ring not 4-byte aligned", NUM, 0, 0, 2 },
		{ "descriptor table outside memory", NUM, RB_END, 0, 0 },
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rb.vq = saved;
		rb.vq.num = bad[i].num;
		rb.vq.desc_uva += bad[i].desc;
		rb.vq.avail_uva += bad[i].avail;
		rb.vq.used_uva += bad[i].used;
		CHECK(!vu_vring_map(&rb.vq, &rb.mem) && !vu_vring_ready(&rb.vq), "map: refused: %s",
		      bad[i].name);
	}
	rb.vq = saved;
	rb.vq.used_uva = RB_END - 8 + RB_UVA_DELTA;
	CHECK(!vu_vring_map(&rb.vq, &rb.mem), "map: refused: used ring running past the end of memory");
	rb.vq = saved;
	rb.vq.desc_uva -= RB_UVA_DELTA;
	CHECK(!vu_vring_map(&rb.vq, &rb.mem), "map: a guest-physical address is not a user address");
	rb.vq = saved;
	CHECK(vu_vring_map(&rb.vq, &rb.mem), "map: the good addresses again");
	rb_fini(&rb);

	CHECK(rb_init(&rb, VU_VRING_MAX_SIZE, 0) == 0, "map: a ring of 32768 entries");
	rb_fini(&rb);
}

/* ---- what the walker accepts ----------------------------------------------- */

static void test_chains(void)
{
	struct rb rb;
	struct vu_req req = new_req(MAX_IOV);

	if (!ring(&rb, NUM, RB_INDIRECT, "chains"))
		return;
	CHECK_EQ(rb_pop(&rb, &req), 0, "chains: an empty ring has nothing");

	rb_offer(&rb, rb_chain(&rb, rb.desc, 0, 1, 0, LEN));
	CHECK(rb_pop(&rb, &req) == 1 && req.head == 0 && req.out == 1 && req.in == 0 &&
	      req.in_bytes == 0 && !req.truncated && iov_are(&rb, &req, rb.desc, 0, 1),
	      "chains: one device-readable buffer");

	rb_offer(&rb, rb_chain(&rb, rb.desc, 5, 2, 3, LEN));
	CHECK(rb_pop(&rb, &req) == 1 && req.head == 5 && req.out == 2 && req.in == 3 &&
	      req.in_bytes == 3 * LEN && iov_are(&rb, &req, rb.desc, 5, 5),
	      "chains: 2 readable then 3 writable, in order");

	rb_offer(&rb, rb_chain(&rb, rb.desc, 12, 0, 2, LEN));
	CHECK(rb_pop(&rb, &req) == 1 && req.head == 12 && req.out == 0 && req.in == 2 &&
	      req.in_bytes == 2 * LEN, "chains: writable only");

	/* Chains are followed by their next fields, not by position. */
	rb_desc(&rb.desc[10], rb_alloc(&rb, LEN, 8), LEN, VRING_DESC_F_NEXT, 3);
	rb_desc(&rb.desc[3], rb_alloc(&rb, 8, 8), 8, VRING_DESC_F_WRITE, 0);
	rb_offer(&rb, 10);
	CHECK(rb_pop(&rb, &req) == 1 && req.head == 10 && req.out == 1 && req.in == 1 &&
	      iov_at(&rb, 0, rb.desc[10].addr, LEN) && iov_at(&rb, 1, rb.desc[3].addr, 8),
	      "chains: followed through next (10 -> 3)");

	/* Several requests: taken in avail order; then the ring is empty again. */
	rb_offer(&rb, 12);
	rb_offer(&rb, 0);
	rb_offer(&rb, 5);
	unsigned h[3] = { 99, 99, 99 };
	for (unsigned i = 0; i < 3; i++)
		if (rb_pop(&rb, &req) == 1)
			h[i] = req.head;
	CHECK(h[0] == 12 && h[1] == 0 && h[2] == 5, "chains: requests in avail order");
	CHECK_EQ(rb_pop(&rb, &req), 0, "chains: empty after the last");
	CHECK(!rb.vq.broken && rb_errors(&rb) == 0, "chains: nothing was refused");

	/* A buffer crossing from region 0 into region 1: two iovecs, one per mapping. */
	uint64_t at = RB_GPA + RB_RAM0 - 8;
	rb_desc(&rb.desc[1], at, 24, VRING_DESC_F_WRITE, 0);
	rb_offer(&rb, 1);
	CHECK(rb_pop(&rb, &req) == 1 && req.in == 2 && req.in_bytes == 24 && iov_at(&rb, 0, at, 8) &&
	      iov_at(&rb, 1, RB_GPA + RB_RAM0, 16), "chains: a buffer across two regions is two iovecs");

	rb_desc(&rb.desc[1], RB_END - 16, 16, 0, 0);
	rb_offer(&rb, 1);
	CHECK(rb_pop(&rb, &req) == 1 && req.out == 1 && iov_at(&rb, 0, RB_END - 16, 16),
	      "chains: a buffer ending at the last byte of guest memory");
	rb_fini(&rb);
}

static void test_avail_index(void)
{
	struct rb rb;
	struct vu_req req = new_req(MAX_IOV);

	if (!ring(&rb, NUM, 0, "avail"))
		return;
	for (unsigned i = 0; i < NUM; i++)
		rb_desc(&rb.desc[i], rb_alloc(&rb, LEN, 8), LEN, 0, 0);

	/* Exactly a full ring waiting is legal. */
	for (unsigned i = 0; i < NUM; i++)
		rb_offer(&rb, (uint16_t)(NUM - 1 - i));
	unsigned n = 0;
	while (n <= NUM && rb_pop(&rb, &req) == 1 && req.head == NUM - 1 - n)
		n++;
	CHECK_EQ(n, NUM, "avail: a full ring (idx = queue size ahead) is taken whole");

	/* Free-running 16-bit indices: 0xfffe, 0xffff, 0, 1. */
	vu_vring_set_base(&rb.vq, 0xfffe);
	rb.avail_idx = 0xfffe;
	for (unsigned i = 0; i < 4; i++)
		rb_offer(&rb, (uint16_t)(3 * i));
	n = 0;
	while (n < 5 && rb_pop(&rb, &req) == 1 && req.head == 3 * n)
		n++;
	CHECK(n == 4 && rb.vq.last_avail == 2 && !rb.vq.broken, "avail: across the 16-bit wrap");

	/* avail->idx read once per batch: entries the driver adds meanwhile come after. */
	rb_offer(&rb, 7);
	rb_offer(&rb, 8);
	int r1 = rb_pop(&rb, &req);
	uint16_t h1 = req.head;
	rb_offer(&rb, 9);
	int r2 = rb_pop(&rb, &req);
	uint16_t h2 = req.head;
	int r3 = rb_pop(&rb, &req);
	CHECK(r1 == 1 && h1 == 7 && r2 == 1 && h2 == 8 && r3 == 1 && req.head == 9,
	      "avail: entries added while draining are taken in order");
	rb_fini(&rb);
}

static void test_indirect(void)
{
	struct rb rb;
	struct vu_req req = new_req(MAX_IOV);

	if (!ring(&rb, NUM, RB_INDIRECT, "indirect"))
		return;
	uint64_t gpa;
	struct vring_desc *t = rb_table(&rb, 3, &gpa);
	rb_chain(&rb, t, 0, 2, 1, LEN);
	rb_desc(&rb.desc[4], gpa, 3 * 16, VRING_DESC_F_INDIRECT, 0);
	rb_offer(&rb, 4);
	CHECK(rb_pop(&rb, &req) == 1 && req.head == 4 && req.out == 2 && req.in == 1 &&
	      req.in_bytes == LEN && iov_are(&rb, &req, t, 0, 3),
	      "indirect: table of 2 readable + 1 writable");

	/* The longest legal chain: 32768 entries, described as far as max_iov goes. */
	t = rb_table(&rb, VU_VRING_MAX_SIZE, &gpa);
	for (unsigned i = 0; i < VU_VRING_MAX_SIZE; i++)
		rb_desc(&t[i], RB_GPA + RB_RAM0 + 16 * (i % 64), 16,
			i + 1 < VU_VRING_MAX_SIZE ? VRING_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	rb_desc(&rb.desc[6], gpa, 16 * VU_VRING_MAX_SIZE, VRING_DESC_F_INDIRECT, 0);
	rb_offer(&rb, 6);
	CHECK(rb_pop(&rb, &req) == 1 && req.head == 6 && req.out == MAX_IOV && req.truncated &&
	      !rb.vq.broken, "indirect: a table of 32768 entries (truncated to max_iov)");
	rb_fini(&rb);
}

/* A chain with more segments than max_iov: walked (and checked) whole, described in part. */
static void test_truncation(void)
{
	struct rb rb;
	struct vu_req req;

	if (!ring(&rb, NUM, 0, "truncate"))
		return;
	rb_offer(&rb, rb_chain(&rb, rb.desc, 0, 6, 0, LEN));
	req = new_req(4);
	CHECK(rb_pop(&rb, &req) == 1 && req.truncated && req.out == 4 && req.in == 0 &&
	      iov_are(&rb, &req, rb.desc, 0, 4), "truncate: 6 readable, max_iov 4");

	rb_offer(&rb, rb_chain(&rb, rb.desc, 6, 2, 4, LEN));
	req = new_req(3);
	CHECK(rb_pop(&rb, &req) == 1 && req.truncated && req.out == 2 && req.in == 1 &&
	      req.in_bytes == LEN, "truncate: 2 readable + 4 writable, max_iov 3: in_bytes as described");

	req = new_req(6);
	rb_offer(&rb, 6);
	CHECK(rb_pop(&rb, &req) == 1 && !req.truncated && req.out + req.in == 6,
	      "truncate: the same chain with max_iov 6 is whole");

	/* A buffer that needs two iovecs where one is left is not described at all. */
	rb_desc(&rb.desc[12], rb_alloc(&rb, LEN, 8), LEN, VRING_DESC_F_NEXT, 13);
	rb_desc(&rb.desc[13], RB_GPA + RB_RAM0 - 8, 16, 0, 0);
	rb_offer(&rb, 12);
	req = new_req(2);
	CHECK(rb_pop(&rb, &req) == 1 && req.truncated && req.out == 1,
	      "truncate: a buffer across regions with one iovec left");
	CHECK(!rb.vq.broken && rb_errors(&rb) == 0, "truncate: nothing was refused");

	/* Past max_iov the chain is still checked: a bad last buffer breaks the ring. */
	rb_chain(&rb, rb.desc, 0, 6, 0, LEN);
	rb.desc[5].addr = RB_END;
	rb_offer(&rb, 0);
	req = new_req(2);
	CHECK(rb_pop(&rb, &req) == -1 && strstr(rb.log, "buffer outside guest memory"),
	      "truncate: a bad buffer past max_iov still breaks the ring");
	rb_fini(&rb);
}

static void test_unpop(void)
{
	struct rb rb;
	struct vu_req req = new_req(MAX_IOV);
	unsigned h[5] = { 99, 99, 99, 99, 99 };

	if (!ring(&rb, NUM, 0, "unpop"))
		return;
	for (uint16_t i = 0; i < 3; i++)
		rb_offer(&rb, rb_chain(&rb, rb.desc, 2 * i, 1, 1, LEN));
	for (unsigned i = 0; i < 2; i++)
		if (rb_pop(&rb, &req) == 1)
			h[i] = req.head;
	vu_vring_unpop(&rb.vq, 2);
	CHECK_EQ(rb.vq.last_avail, 0, "unpop: last_avail back by 2");
	for (unsigned i = 2; i < 5; i++)
		if (rb_pop(&rb, &req) == 1)
			h[i] = req.head;
	CHECK(h[0] == 0 && h[1] == 2 && h[2] == 0 && h[3] == 2 && h[4] == 4,
	      "unpop: the same requests again, then the next");
	CHECK_EQ(rb_pop(&rb, &req), 0, "unpop: then empty");
	rb_fini(&rb);
}

/* ---- completions and notifications ---------------------------------------- */

static void test_used(void)
{
	struct rb rb;
	struct vu_req req = new_req(MAX_IOV);

	if (!ring(&rb, NUM, 0, "used"))
		return;
	vu_vring_flush(&rb.vq);
	CHECK(rb.used->idx == 0 && rb.signals == 0, "used: flush with nothing pushed does nothing");

	for (uint16_t i = 0; i < 3; i++)
		rb_offer(&rb, rb_chain(&rb, rb.desc, 3 * i, 1, 1, LEN));
	for (uint32_t i = 0; i < 3; i++)
		if (rb_pop(&rb, &req) == 1)
			vu_vring_push(&rb.vq, &req, 100 + i);
	CHECK(rb.used->idx == 0 && rb.signals == 0, "used: pushed is not published before flush");
	vu_vring_flush(&rb.vq);
	CHECK_EQ(rb.used->idx, 3, "used: flush publishes used idx");
	CHECK(rb.used->ring[0].id == 0 && rb.used->ring[0].len == 100 && rb.used->ring[1].id == 3 &&
	      rb.used->ring[1].len == 101 && rb.used->ring[2].id == 6 && rb.used->ring[2].len == 102,
	      "used: elements in push order with their lengths");
	CHECK_EQ(rb.signals, 1, "used: one notification per flush");

	/* Three at once (vu_vring_push_burst): the same elements as three pushes. */
	struct vu_req reqs[3];
	struct iovec iovs[3][MAX_IOV];
	for (uint16_t i = 0; i < 3; i++)
		rb_offer(&rb, rb_chain(&rb, rb.desc, 3 * i, 1, 1, LEN));
	vu_vring_prefetch(&rb.vq, NUM + 3, true); /* a hint, more than the ring holds: nothing changes */
	unsigned got = 0;
	for (unsigned i = 0; i < 3; i++) {
		reqs[i] = (struct vu_req){ .iov = iovs[i], .max_iov = MAX_IOV };
		got += rb_pop(&rb, &reqs[i]) == 1;
	}
	vu_vring_push_burst(&rb.vq, reqs, got, 7);
	vu_vring_flush(&rb.vq);
	CHECK(got == 3 && rb.used->idx == 6 && rb.used->ring[3].id == 0 && rb.used->ring[4].id == 3 &&
	      rb.used->ring[5].id == 6 && rb.used->ring[3].len == 7 && rb.used->ring[5].len == 7 && rb.signals == 2,
	      "used: a burst of three pushed at once: three elements, one flush, one notification");

	/* Three at once, each with its own length (vu_vring_push_each). */
	for (uint16_t i = 0; i < 3; i++)
		rb_offer(&rb, rb_chain(&rb, rb.desc, 3 * i, 1, 1, LEN));
	got = 0;
	for (unsigned i = 0; i < 3; i++) {
		reqs[i] = (struct vu_req){ .iov = iovs[i], .max_iov = MAX_IOV };
		got += rb_pop(&rb, &reqs[i]) == 1;
	}
	vu_vring_push_each(&rb.vq, reqs, got, (const uint32_t[]){ 11, 0, 13 });
	vu_vring_flush(&rb.vq);
	CHECK(got == 3 && rb.used->idx == 9 && rb.used->ring[6].id == 0 && rb.used->ring[6].len == 11 &&
	      rb.used->ring[7].id == 3 && rb.used->ring[7].len == 0 && rb.used->ring[8].id == 6 &&
	      rb.used->ring[8].len == 13, "used: three pushed at once with their own lengths");

	/* Used idx across the 16-bit wrap: slots 14, 15, 0. */
	rb.vq.used_idx = 0xfffe;
	rb.used->idx = 0xfffe;
	for (uint32_t i = 0; i < 3; i++)
		push_head(&rb.vq, (uint16_t)i, i);
	vu_vring_flush(&rb.vq);
	CHECK(rb.used->idx == 1 && rb.used->ring[14].id == 0 && rb.used->ring[15].id == 1 &&
	      rb.used->ring[0].id == 2, "used: across the 16-bit wrap");

	/* A call eventfd is used when there is one. */
	int call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	rb.vq.call_fd = call;
	unsigned before = rb.signals;
	push_head(&rb.vq, 0, 0);
	vu_vring_flush(&rb.vq);
	uint64_t v = 0;
	CHECK(read(call, &v, sizeof(v)) == sizeof(v) && v == 1 && rb.signals == before,
	      "used: notified through the call eventfd");
	rb.vq.call_fd = -1;
	close(call);

	/* Without EVENT_IDX, NO_INTERRUPT is the driver's wish. */
	rb.avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
	before = rb.signals;
	push_head(&rb.vq, 0, 0);
	vu_vring_flush(&rb.vq);
	CHECK(rb.signals == before && rb.used->idx == 3, "used: NO_INTERRUPT: published, not notified");
	rb.avail->flags = 0;
	push_head(&rb.vq, 0, 0);
	vu_vring_flush(&rb.vq);
	CHECK_EQ(rb.signals, before + 1, "used: notified again once NO_INTERRUPT is cleared");

	/* A broken ring publishes nothing more. */
	push_head(&rb.vq, 0, 0);
	vu_vring_fail(&rb.vq, "t-vring: on purpose");
	vu_vring_fail(&rb.vq, "t-vring: twice");
	before = rb.signals;
	uint16_t idx = rb.used->idx;
	vu_vring_flush(&rb.vq);
	CHECK(rb.used->idx == idx && rb.signals == before, "used: nothing published once broken");
	CHECK_EQ(rb_errors(&rb), 1, "used: vu_vring_fail signals the error eventfd once");
	rb_fini(&rb);
}

/*
 * EVENT_IDX: the driver is notified when used idx moves past used_event, i.e.
 * when used_event lies in [old, new) of the flush (virtio's vring_need_event).
 */
static void test_event_idx(void)
{
	static const struct {
		uint16_t old;       /* used idx before the flush */
		uint16_t n;         /* completions in it */
		uint16_t event;     /* used_event */
		bool notify;
	} cases[] = {
		{ 10, 3, 9, false },      { 10, 3, 10, true },     { 10, 3, 12, true },
		{ 10, 3, 13, false },     { 10, 3, 200, false },   { 10, 3, 10 + 0x8000, false },
		{ 10, 1, 10, true },      { 10, 1, 11, false },
		{ 0xfffe, 3, 0xfffd, false }, { 0xfffe, 3, 0xfffe, true }, { 0xfffe, 3, 0xffff, true },
		{ 0xfffe, 3, 0, true },   { 0xfffe, 3, 1, false },
		{ 0xffff, 1, 0xffff, true }, { 0xffff, 1, 0, false },
	};
	for (unsigned k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct rb rb;
		if (!ring(&rb, NUM, RB_EVENT_IDX, "event idx"))
			continue;
		/* A first flush (always notified) ends at old. */
		rb.vq.used_idx = (uint16_t)(cases[k].old - 1);
		push_head(&rb.vq, 0, 0);
		vu_vring_flush(&rb.vq);
		unsigned before = rb.signals;
		*rb.used_event = cases[k].event;
		for (unsigned i = 0; i < cases[k].n; i++)
			push_head(&rb.vq, 0, 0);
		vu_vring_flush(&rb.vq);
		CHECK_EQ(rb.signals - before, cases[k].notify,
			 "event idx: used %#x -> %#x, used_event %#x: %s", cases[k].old,
			 (uint16_t)(cases[k].old + cases[k].n), cases[k].event,
			 cases[k].notify ? "notified" : "not notified");
		rb_fini(&rb);
	}

	struct rb rb;
	if (!ring(&rb, NUM, RB_EVENT_IDX, "event idx"))
		return;
	*rb.used_event = 500;
	push_head(&rb.vq, 0, 0);
	vu_vring_flush(&rb.vq);
	CHECK_EQ(rb.signals, 1, "event idx: the first flush notifies whatever used_event says");
	/* With EVENT_IDX the flags field is not the driver's wish. */
	rb.avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
	*rb.used_event = 1;
	push_head(&rb.vq, 0, 0);
	vu_vring_flush(&rb.vq);
	CHECK_EQ(rb.signals, 2, "event idx: NO_INTERRUPT is ignored");
	rb_fini(&rb);
}

/* What the device tells the driver about kicks: NO_NOTIFY, or avail_event with EVENT_IDX. */
static void test_kicks(void)
{
	struct rb rb;
	struct vu_req req = new_req(MAX_IOV);

	if (!ring(&rb, NUM, 0, "kicks"))
		return;
	*rb.avail_event = 0x1234;
	CHECK(!vu_vring_kicks(&rb.vq, false) && rb.used->flags == VRING_USED_F_NO_NOTIFY,
	      "kicks: off sets NO_NOTIFY");
	CHECK(!vu_vring_kicks(&rb.vq, true) && rb.used->flags == 0, "kicks: on clears it; nothing waits");
	rb_offer(&rb, rb_chain(&rb, rb.desc, 0, 1, 0, LEN));
	CHECK(vu_vring_kicks(&rb.vq, true), "kicks: on says a request arrived meanwhile");
	rb_pop(&rb, &req);
	CHECK(!vu_vring_kicks(&rb.vq, true), "kicks: on with the ring drained");
	CHECK_EQ(*rb.avail_event, 0x1234, "kicks: avail_event untouched without EVENT_IDX");
	vu_vring_fail(&rb.vq, "t-vring: on purpose");
	rb_offer(&rb, 0);
	CHECK(!vu_vring_kicks(&rb.vq, true) && !vu_vring_kicks(&rb.vq, false) && rb.used->flags == 0,
	      "kicks: a broken ring says nothing and writes nothing");
	rb_fini(&rb);

	if (!ring(&rb, NUM, RB_EVENT_IDX, "kicks: event idx"))
		return;
	*rb.avail_event = 0x1234;
	CHECK(!vu_vring_kicks(&rb.vq, false) && rb.used->flags == 0 && *rb.avail_event == 0x1234,
	      "kicks: event idx: off writes neither flags nor avail_event");
	CHECK(!vu_vring_kicks(&rb.vq, true) && *rb.avail_event == 0 && rb.used->flags == 0,
	      "kicks: event idx: on sets avail_event to the next entry (0)");
	vu_vring_set_base(&rb.vq, 0xffff);
	rb.avail_idx = 0xffff;
	rb_offer(&rb, rb_chain(&rb, rb.desc, 0, 1, 0, LEN));
	rb_offer(&rb, 0);
	rb_pop(&rb, &req);
	CHECK(vu_vring_kicks(&rb.vq, true) && *rb.avail_event == 0,
	      "kicks: event idx: avail_event follows the wrap (0xffff -> 0), one waits");
	rb_pop(&rb, &req);
	CHECK(!vu_vring_kicks(&rb.vq, true) && *rb.avail_event == 1, "kicks: event idx: drained at 1");
	rb_fini(&rb);
}

/* ---- the per-turn budget ---------------------------------------------------- */

/* Requests costing a quarter of the budget each: an indirect head and its table. */
#define QUARTER (VU_VRING_TURN_BUDGET / 4)
_Static_assert(VU_VRING_TURN_BUDGET % 4 == 0 && QUARTER - 1 <= VU_VRING_MAX_SIZE,
	       "the budget test builds chains of a quarter of the budget");

static void test_budget(void)
{
	struct rb rb;
	struct vu_req req = new_req(MAX_IOV);

	if (!ring(&rb, NUM, RB_INDIRECT, "budget"))
		return;
	uint64_t gpa;
	struct vring_desc *t = rb_table(&rb, QUARTER - 1, &gpa);
	rb_chain(&rb, t, 0, QUARTER - 1, 0, 8);
	rb_desc(&rb.desc[0], gpa, 16 * (QUARTER - 1), VRING_DESC_F_INDIRECT, 0);
	for (unsigned i = 0; i < 6; i++)
		rb_offer(&rb, 0);

	unsigned n = 0;
	while (n < 6 && rb_pop(&rb, &req) == 1)
		n++;
	CHECK(n == 4 && rb.defers == 1 && !rb.vq.broken,
	      "budget: 4 requests of a quarter each, then the ring looks empty and defers");
	CHECK(rb_pop(&rb, &req) == 0 && rb.defers == 2, "budget: still over in the same turn: defers again");
	CHECK(!vu_vring_kicks(&rb.vq, true) && rb.defers == 3,
	      "budget: kicks on says nothing waits (and defers) while over");
	vu_loop_turns++;
	CHECK(rb_pop(&rb, &req) == 1 && rb_pop(&rb, &req) == 1 && rb.defers == 3,
	      "budget: the next turn takes the rest");
	CHECK(rb_pop(&rb, &req) == 0 && rb.defers == 3, "budget: empty is not over budget");

	/* One legal request bigger than the budget is taken whole, then the ring waits a turn. */
	vu_loop_turns++;
	t = rb_table(&rb, 2 * VU_VRING_TURN_BUDGET, &gpa);
	rb_chain(&rb, t, 0, 2 * VU_VRING_TURN_BUDGET, 0, 8);
	rb_desc(&rb.desc[1], gpa, 32 * VU_VRING_TURN_BUDGET, VRING_DESC_F_INDIRECT, 0);
	rb_offer(&rb, 1);
	rb_offer(&rb, 0);
	CHECK(rb_pop(&rb, &req) == 1 && req.head == 1 && req.truncated,
	      "budget: a request of twice the budget is taken whole");
	CHECK(rb_pop(&rb, &req) == 0 && rb.defers == 4, "budget: then the ring waits for the next turn");
	vu_loop_turns++;
	CHECK(rb_pop(&rb, &req) == 1 && req.head == 0, "budget: and goes on there");
	rb_fini(&rb);
}

int main(void)
{
	check_deadline(120);
	test_refusals();
	test_map();
	test_chains();
	test_avail_index();
	test_indirect();
	test_truncation();
	test_unpop();
	test_used();
	test_event_idx();
	test_kicks();
	test_budget();
	return check_exit();
}
