/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * proto/vring-packed.c on its own: packed rings laid out by hand in guest memory
 * (test/ring-builder.c with RB_PACKED), walked, completed and notified directly,
 * without a session. Chains, both wrap counters going round (also on a queue
 * size that is not a power of 2), indirect tables, completions out of order and
 * the skip over a chain's other descriptors, when the driver is notified (its
 * event suppression structure, EVENT_IDX's descriptor mode with wrap counters),
 * what the device asks of kicks, hostile rings (each refusal breaks the queue and
 * says why), unpop, the per-turn budget, SET/GET_VRING_BASE's encoding, the dirty
 * log, and the packed inflight region: recording, committing, and a restart that
 * resubmits what was in flight from the saved descriptors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "proto/inflight.h"
#include "proto/loop.h"
#include "proto/vring.h"
#include "test/check.h"
#include "test/ring-builder.h"

#define NUM 16
#define MAX_IOV 64
#define LEN 64

static struct iovec iov[MAX_IOV];

static struct vu_req new_req(unsigned max_iov)
{
	return (struct vu_req){ .iov = iov, .max_iov = max_iov };
}

static bool ring(struct rb *rb, unsigned num, unsigned flags, const char *name)
{
	if (rb_init(rb, num, flags | RB_PACKED) == 0)
		return true;
	CHECK(0, "%s: ring", name);
	return false;
}

static uint64_t buf(struct rb *rb)
{
	return rb_alloc(rb, LEN, 8);
}

/* True when iov[i] is the back-end's view of guest bytes [gpa, gpa + len). */
static bool iov_at(struct rb *rb, unsigned i, uint64_t gpa, size_t len)
{
	return iov[i].iov_base == rb_backend(rb, gpa) && iov[i].iov_len == len;
}

/* Pops one request and completes it at once with len bytes written; its id, or -1. */
static int pop_push(struct rb *rb, uint32_t len)
{
	struct vu_req req = new_req(MAX_IOV);

	if (rb_pop(rb, &req) != 1)
		return -1;
	vu_vring_push(&rb->vq, &req, len);
	return req.head;
}

/* ---- what the walker accepts ----------------------------------------------- */

static void test_chains(void)
{
	struct rb rb;
	struct vu_req req = new_req(MAX_IOV);

	if (!ring(&rb, NUM, RB_INDIRECT, "chains"))
		return;
	CHECK_EQ(rb_pop(&rb, &req), 0, "chains: an empty ring has nothing");

	uint16_t p = rb_packed_chain(&rb, 3, 1, 0, LEN);
	CHECK(rb_pop(&rb, &req) == 1 && req.head == 3 && req.out == 1 && req.in == 0 && !req.truncated &&
	      iov_at(&rb, 0, rb.pdesc[p].addr, LEN), "chains: one device-readable buffer, buffer id 3");

	p = rb_packed_chain(&rb, 7, 2, 3, LEN);
	bool at = rb_pop(&rb, &req) == 1;
	for (unsigned i = 0; i < 5; i++)
		at &= iov_at(&rb, i, rb.pdesc[p + i].addr, LEN);
	CHECK(at && req.head == 7 && req.out == 2 && req.in == 3 &&
	      req.in_bytes == 3 * LEN && at, "chains: 2 readable then 3 writable, in ring order");
	CHECK(rb.vq.last_avail == 6 && rb.vq.avail_wrap, "chains: the ring moved past both chains (6)");

	/* The id is the last descriptor's: the others' are ignored. */
	struct vring_packed_desc d[2] = { { .addr = buf(&rb), .len = LEN }, { .addr = buf(&rb), .len = 8,
									    .flags = VRING_DESC_F_WRITE } };
	p = rb_packed_add(&rb, 9, d, 2);
	rb.pdesc[p].id = 1234;
	CHECK(rb_pop(&rb, &req) == 1 && req.head == 9 && req.out == 1 && req.in == 1,
	      "chains: the buffer id comes from the chain's last descriptor");
	CHECK_EQ(rb_pop(&rb, &req), 0, "chains: empty after the last");
	CHECK(!rb.vq.broken && rb_errors(&rb) == 0, "chains: nothing was refused");

	/* A buffer crossing from region 0 into region 1: two iovecs. */
	uint64_t cross = RB_GPA + RB_RAM0 - 8;
	d[0] = (struct vring_packed_desc){ .addr = cross, .len = 24, .flags = VRING_DESC_F_WRITE };
	rb_packed_add(&rb, 0, d, 1);
	CHECK(rb_pop(&rb, &req) == 1 && req.in == 2 && iov_at(&rb, 0, cross, 8) &&
	      iov_at(&rb, 1, RB_GPA + RB_RAM0, 16), "chains: a buffer across two regions is two iovecs");
	rb_fini(&rb);
}

/* Chains of 1 to 3 descriptors going round a small ring many times. */
static void wrap_rounds(unsigned num, const char *name)
{
	struct rb rb;
	struct vu_req req = new_req(MAX_IOV);

	if (!ring(&rb, num, 0, name))
		return;
	unsigned ok = 0, rounds = 5 * num, flips = 0;
	bool last_wrap = rb.vq.avail_wrap;
	for (unsigned r = 0; r < rounds; r++) {
		unsigned n = 1 + r % 3;
		if (n > num)
			n = num;
		uint16_t id = (uint16_t)(r % num);
		rb_packed_chain(&rb, id, n - 1, 1, 16);
		uint16_t got_id = 0xffff;
		uint32_t got_len = 0;
		if (rb_pop(&rb, &req) == 1 && req.head == id && req.out == n - 1 && req.in == 1) {
			vu_vring_push(&rb.vq, &req, 10 + r);
			vu_vring_flush(&rb.vq);
			if (rb_packed_used(&rb, &got_id, &got_len, NULL) == 1 && got_id == id && got_len == 10 + r)
				ok++;
		}
		flips += rb.vq.avail_wrap != last_wrap;
		last_wrap = rb.vq.avail_wrap;
	}
	CHECK_EQ(ok, rounds, "%s: %u chains of 1-3 descriptors, each used and seen by the driver", name, rounds);
	CHECK(rb.vq.last_avail == rb.next_avail && rb.vq.avail_wrap == rb.avail_wrap &&
	      rb.vq.used_idx == rb.next_used && rb.vq.used_wrap == rb.used_wrap && flips >= 4,
	      "%s: both wrap counters went round with the driver's (%u flips)", name, flips);
	CHECK(!rb.vq.broken, "%s: nothing refused", name);
	rb_fini(&rb);
}

static void test_wrap(void)
{
	wrap_rounds(4, "wrap: queue of 4");
	wrap_rounds(5, "wrap: queue of 5 (not a power of 2)");
	wrap_rounds(1, "wrap: queue of 1");

	/* A chain the whole size of the queue, across the end. */
	struct rb rb;
	struct vu_req req = new_req(MAX_IOV);
	if (!ring(&rb, 4, 0, "wrap: whole-ring chain"))
		return;
	rb_packed_chain(&rb, 0, 0, 1, 8);
	CHECK(pop_push(&rb, 1) == 0, "wrap: whole-ring chain: a first request");
	vu_vring_flush(&rb.vq);
	rb_packed_used(&rb, NULL, NULL, NULL);
	rb_packed_chain(&rb, 2, 2, 2, 8);
	CHECK(rb_pop(&rb, &req) == 1 && req.head == 2 && req.out == 2 && req.in == 2 &&
	      rb.vq.last_avail == 1 && !rb.vq.avail_wrap, "wrap: a chain of 4 from position 1 to 0 (wrapped)");
	vu_vring_push(&rb.vq, &req, 5);
	vu_vring_flush(&rb.vq);
	uint16_t id;
	CHECK(rb_packed_used(&rb, &id, NULL, NULL) == 1 && id == 2 && rb.vq.used_idx == 1 && !rb.vq.used_wrap,
	      "wrap: its used descriptor at 1, the next used position 1 in the next lap");
	rb_fini(&rb);
}

static void test_indirect(void)
{
	struct rb rb;
	struct vu_req req = new_req(MAX_IOV);

	if (!ring(&rb, NUM, RB_INDIRECT, "indirect"))
		return;
	uint64_t gpa;
	struct vring_packed_desc *t = (struct vring_packed_desc *)rb_table(&rb, 3, &gpa);
	for (unsigned i = 0; i < 3; i++)
		t[i] = (struct vring_packed_desc){ .addr = buf(&rb), .len = LEN,
						   .flags = i == 2 ? VRING_DESC_F_WRITE : 0 };
	/* NEXT and ids in a table mean nothing: ignored. */
	t[0].flags |= VRING_DESC_F_NEXT;
	t[1].id = 77;
	struct vring_packed_desc d = { .addr = gpa, .len = 48, .flags = VRING_DESC_F_INDIRECT };
	rb_packed_add(&rb, 5, &d, 1);
	CHECK(rb_pop(&rb, &req) == 1 && req.head == 5 && req.out == 2 && req.in == 1 && req.in_bytes == LEN &&
	      iov_at(&rb, 0, t[0].addr, LEN) && iov_at(&rb, 2, t[2].addr, LEN),
	      "indirect: a table of 2 readable + 1 writable, in table order");
	CHECK(rb.vq.last_avail == 1, "indirect: the table took one ring descriptor");

	/* The longest legal table, described as far as max_iov goes. */
	t = (struct vring_packed_desc *)rb_table(&rb, VU_VRING_MAX_SIZE, &gpa);
	for (unsigned i = 0; i < VU_VRING_MAX_SIZE; i++)
		t[i] = (struct vring_packed_desc){ .addr = RB_GPA + RB_RAM0 + 16 * (i % 64), .len = 16 };
	d = (struct vring_packed_desc){ .addr = gpa, .len = 16 * VU_VRING_MAX_SIZE, .flags = VRING_DESC_F_INDIRECT };
	rb_packed_add(&rb, 6, &d, 1);
	vu_loop_turns++;
	CHECK(rb_pop(&rb, &req) == 1 && req.head == 6 && req.out == MAX_IOV && req.truncated && !rb.vq.broken,
	      "indirect: a table of 32768 entries (truncated to max_iov)");
	rb_fini(&rb);
}

/* ---- completions ------------------------------------------------------------- */

static void test_out_of_order(void)
{
	struct rb rb;
	struct vu_req a = new_req(MAX_IOV), b, c;
	struct iovec ib[8], ic[8];

	if (!ring(&rb, NUM, 0, "out of order"))
		return;
	b = (struct vu_req){ .iov = ib, .max_iov = 8 };
	c = (struct vu_req){ .iov = ic, .max_iov = 8 };
	rb_packed_chain(&rb, 4, 0, 1, 8);     /* A at 0 */
	rb_packed_chain(&rb, 9, 1, 1, 8);     /* B at 1-2 */
	rb_packed_chain(&rb, 2, 0, 1, 8);     /* C at 3 */
	if (!CHECK(rb_pop(&rb, &a) == 1 && rb_pop(&rb, &b) == 1 && rb_pop(&rb, &c) == 1 && a.head == 4 &&
		   b.head == 9 && c.head == 2, "out of order: three requests taken")) {
		rb_fini(&rb);
		return;
	}
	/* C, then A, at once (vu_vring_push_each), each with its own length. */
	const struct vu_req ca[2] = { c, a };
	vu_vring_push_each(&rb.vq, ca, 2, (const uint32_t[]){ 3, 1 });
	CHECK(rb_packed_used(&rb, NULL, NULL, NULL) == 0 && rb.pdesc[0].id == 4 && rb.pdesc[0].len == 8,
	      "out of order: pushed, not flushed: the ring is as the driver left it");
	vu_vring_flush(&rb.vq);
	vu_vring_push(&rb.vq, &b, 0);
	vu_vring_flush(&rb.vq);
	uint16_t id[3] = { 0 }, flags[3] = { 0 };
	uint32_t len[3] = { 0 };
	unsigned n = 0;
	while (n < 3 && rb_packed_used(&rb, &id[n], &len[n], &flags[n]) == 1)
		n++;
	CHECK(n == 3 && id[0] == 2 && len[0] == 3 && id[1] == 4 && len[1] == 1 && id[2] == 9 && len[2] == 0,
	      "out of order: used in completion order (C, A, B), the driver skipping each chain");
	CHECK((flags[0] & VRING_DESC_F_WRITE) && !(flags[2] & VRING_DESC_F_WRITE),
	      "out of order: WRITE says whether anything was written");
	CHECK(rb.next_used == 4 && rb.vq.used_idx == 4 && rb_packed_used(&rb, NULL, NULL, NULL) == 0,
	      "out of order: 3 used descriptors covered the 4 ring descriptors");
	/* B's chain slot 2 was skipped: still the driver's descriptor. */
	/* C took slot 0, A slot 1, B slot 2 (and 3, skipped): 3 is still C's available descriptor. */
	CHECK((rb.pdesc[3].flags & (VRING_PACKED_DESC_F_AVAIL | VRING_PACKED_DESC_F_USED)) == rb_avail_flags(true) &&
	      rb.pdesc[3].len == 8 && rb.pdesc[3].id == 2, "out of order: the skipped slot is untouched");

	/* A completion for a buffer the device does not hold writes nothing. */
	struct vu_req stray = { .head = 9, .iov = iov };
	vu_vring_push(&rb.vq, &stray, 7);
	vu_vring_flush(&rb.vq);
	CHECK(rb.vq.pending == 0 && rb_packed_used(&rb, NULL, NULL, NULL) == 0 && rb.pdesc[4].len == 0,
	      "out of order: a second completion of the same buffer is ignored");
	rb_fini(&rb);
}

/* VIRTIO_F_IN_ORDER: a run of completions that wrote nothing is one used descriptor. */
static void test_in_order(void)
{
	struct rb rb;
	struct vu_req r[5];
	struct iovec v[5][4];

	if (!ring(&rb, NUM, 0, "in order"))
		return;
	rb.vq.in_order = true;
	rb_packed_chain(&rb, 4, 1, 0, 8);     /* 0 */
	rb_packed_chain(&rb, 9, 2, 0, 8);     /* 1-2 */
	rb_packed_chain(&rb, 2, 1, 0, 8);     /* 3 */
	rb_packed_chain(&rb, 7, 0, 1, 8);     /* 4: writable */
	rb_packed_chain(&rb, 5, 1, 0, 8);     /* 5 */
	unsigned n = 0;
	for (; n < 5; n++) {
		r[n] = (struct vu_req){ .iov = v[n], .max_iov = 4 };
		if (rb_pop(&rb, &r[n]) != 1)
			break;
	}
	if (!CHECK_EQ(n, 5, "in order: five requests taken")) {
		rb_fini(&rb);
		return;
	}
	vu_vring_push_burst(&rb.vq, r, 3, 0); /* as three pushes */
	vu_vring_push(&rb.vq, &r[3], 8);
	vu_vring_push(&rb.vq, &r[4], 0);
	vu_vring_flush(&rb.vq);
	uint16_t flags0 = rb.pdesc[0].flags, used = VRING_PACKED_DESC_F_AVAIL | VRING_PACKED_DESC_F_USED;
	CHECK((flags0 & used) == used && rb.pdesc[0].id == 2 && (rb.pdesc[1].flags & used) != used &&
	      (rb.pdesc[3].flags & used) != used, "in order: three that wrote nothing: one used descriptor, the last id");
	CHECK((rb.pdesc[4].flags & used) == used && rb.pdesc[4].id == 7 && rb.pdesc[4].len == 8 &&
	      (rb.pdesc[5].flags & used) == used && rb.pdesc[5].id == 5,
	      "in order: one that wrote something has its own, and so has the next");
	CHECK(rb.vq.used_idx == 6 && rb.vq.pending == 0, "in order: the used position after all six descriptors");
	rb_packed_chain(&rb, 4, 1, 0, 8);
	rb_packed_chain(&rb, 9, 1, 0, 8);
	r[0] = (struct vu_req){ .iov = v[0], .max_iov = 4 };
	r[1] = (struct vu_req){ .iov = v[1], .max_iov = 4 };
	CHECK(rb_pop(&rb, &r[0]) == 1 && r[0].head == 4 && rb_pop(&rb, &r[1]) == 1 && r[1].head == 9,
	      "in order: the ids of the batch are free again");
	rb_fini(&rb);
}

static void test_unpop(void)
{
	struct rb rb;
	struct vu_req req = new_req(MAX_IOV);
	unsigned h[5] = { 99, 99, 99, 99, 99 };

	if (!ring(&rb, 5, 0, "unpop"))
		return;
	/* Across the end of a 5-entry ring: 1 at 0-0, then ids 1 (2 descs), 2 (3 descs). */
	rb_packed_chain(&rb, 0, 0, 1, 8);
	pop_push(&rb, 1);
	vu_vring_flush(&rb.vq);
	rb_packed_used(&rb, NULL, NULL, NULL);
	rb_packed_chain(&rb, 1, 1, 1, 8);
	rb_packed_chain(&rb, 2, 2, 1, 8);
	for (unsigned i = 0; i < 2; i++)
		if (rb_pop(&rb, &req) == 1)
			h[i] = req.head;
	CHECK(rb.vq.last_avail == 1 && !rb.vq.avail_wrap, "unpop: two chains taken, across the end");
	vu_vring_unpop(&rb.vq, 2);
	CHECK(rb.vq.last_avail == 1 && rb.vq.avail_wrap, "unpop: back by 5 descriptors, wrap counter back");
	for (unsigned i = 2; i < 4; i++)
		if (rb_pop(&rb, &req) == 1)
			h[i] = req.head;
	CHECK(h[0] == 1 && h[1] == 2 && h[2] == 1 && h[3] == 2 && !rb.vq.broken,
	      "unpop: the same requests again (their ids free to take again)");
	CHECK_EQ(rb_pop(&rb, &req), 0, "unpop: then empty");
	rb_fini(&rb);
}

/* ---- bursts (vu_vring_pop_burst: four one-descriptor requests at a time) ---- */

/* One descriptor with buffer id, made available. */
static void one(struct rb *rb, uint16_t id, uint64_t addr, uint32_t len, uint16_t flags)
{
	struct vring_packed_desc d = { .addr = addr, .len = len, .flags = flags };
	rb_packed_add(rb, id, &d, 1);
}

#define BURST 32
static struct vu_req breq[BURST];
static struct iovec biov[BURST][4];

/* Pops a burst of up to n into breq; what vu_vring_pop_burst returned. */
static int burst(struct rb *rb, unsigned n)
{
	for (unsigned i = 0; i < BURST; i++)
		breq[i] = (struct vu_req){ .iov = biov[i], .max_iov = 4 };
	return rb_pop_burst(rb, breq, n);
}

/* Completes breq[0..n) with 100 + id written, publishes, and checks the driver sees them in order. */
static bool complete_burst(struct rb *rb, unsigned n)
{
	bool ok = true;

	for (unsigned i = 0; i < n; i++)
		vu_vring_push(&rb->vq, &breq[i], 100u + breq[i].head);
	vu_vring_flush(&rb->vq);
	for (unsigned i = 0; i < n; i++) {
		uint16_t id;
		uint32_t len;
		ok &= rb_packed_used(rb, &id, &len, NULL) == 1 && id == breq[i].head && len == 100u + id;
	}
	return ok;
}

/* Bursts of 1 to 11 one-descriptor requests round a 6-entry ring: groups of four across its end too. */
static void burst_rounds(void)
{
	struct rb rb;
	unsigned ok = 0, rounds = 40, flips = 0;

	if (!ring(&rb, 6, 0, "burst: round a 6-entry ring"))
		return;
	bool last_wrap = rb.vq.avail_wrap;
	for (unsigned r = 0; r < rounds; r++) {
		unsigned k = 1 + r % 6;
		uint64_t addr[6];
		for (unsigned i = 0; i < k; i++) {
			addr[i] = buf(&rb);
			one(&rb, (uint16_t)((r + i) % 6), addr[i], LEN, i % 2 ? VRING_DESC_F_WRITE : 0);
		}
		bool good = burst(&rb, BURST) == (int)k;
		for (unsigned i = 0; good && i < k; i++)
			good = breq[i].head == (r + i) % 6 && breq[i].out + breq[i].in == 1 &&
			       breq[i].in == i % 2 && breq[i].iov[0].iov_base == rb_backend(&rb, addr[i]) &&
			       breq[i].iov[0].iov_len == LEN;
		ok += good && complete_burst(&rb, k);
		flips += rb.vq.avail_wrap != last_wrap;
		last_wrap = rb.vq.avail_wrap;
	}
	CHECK_EQ(ok, rounds, "burst: %u bursts of 1-6 round a 6-entry ring, taken in order and used", rounds);
	CHECK(rb.vq.last_avail == rb.next_avail && rb.vq.avail_wrap == rb.avail_wrap &&
	      rb.vq.used_idx == rb.next_used && rb.vq.used_wrap == rb.used_wrap && flips >= 4 && !rb.vq.broken,
	      "burst: both wrap counters went round with the driver's (%u flips)", flips);
	rb_fini(&rb);
}

/* Chains and indirect tables between one-descriptor requests: each as vu_vring_pop takes it. */
static void burst_mixed(void)
{
	struct rb rb;

	if (!ring(&rb, NUM, RB_INDIRECT, "burst: mixed"))
		return;
	uint64_t gpa;
	struct vring_packed_desc *t = (struct vring_packed_desc *)rb_table(&rb, 3, &gpa);
	for (unsigned i = 0; i < 3; i++)
		t[i] = (struct vring_packed_desc){ .addr = buf(&rb), .len = LEN, .flags = i ? VRING_DESC_F_WRITE : 0 };
	rb_packed_chain(&rb, 0, 1, 0, 8);  /* 0 */
	rb_packed_chain(&rb, 1, 1, 0, 8);  /* 1 */
	rb_packed_chain(&rb, 2, 1, 1, 8);  /* 2-3: a chain inside the first group of four */
	rb_packed_chain(&rb, 3, 0, 1, 8);  /* 4 */
	rb_packed_chain(&rb, 4, 0, 1, 8);  /* 5 */
	rb_packed_chain(&rb, 5, 0, 1, 8);  /* 6 */
	rb_packed_chain(&rb, 6, 1, 0, 8);  /* 7 */
	one(&rb, 7, gpa, 3 * sizeof(*t), VRING_DESC_F_INDIRECT); /* 8 */
	rb_packed_chain(&rb, 8, 1, 0, 8);  /* 9 */
	static const unsigned out[] = { 1, 1, 1, 0, 0, 0, 1, 1, 1 }, in[] = { 0, 0, 1, 1, 1, 1, 0, 2, 0 };
	bool good = burst(&rb, BURST) == 9;
	for (unsigned i = 0; good && i < 9; i++)
		good = breq[i].head == i && breq[i].out == out[i] && breq[i].in == in[i];
	CHECK(good, "burst: 9 requests (a chain and an indirect table among them), each whole and in order");
	CHECK(rb.vq.last_avail == 10 && complete_burst(&rb, 9) && rb.vq.used_idx == 10 && !rb.vq.broken,
	      "burst: all ten descriptors taken and used");
	rb_fini(&rb);
}

/* Fewer available than asked for, more than asked for, none. */
static void burst_partial(void)
{
	struct rb rb;

	if (!ring(&rb, NUM, 0, "burst: partial"))
		return;
	for (uint16_t id = 0; id < 3; id++)
		rb_packed_chain(&rb, id, 1, 0, 8);
	CHECK(burst(&rb, BURST) == 3 && breq[2].head == 2, "burst: 3 available of 32 asked for: 3 taken");
	CHECK_EQ(burst(&rb, BURST), 0, "burst: then empty");
	for (uint16_t id = 3; id < 11; id++)
		rb_packed_chain(&rb, id, 1, 0, 8);
	CHECK(burst(&rb, 5) == 5 && breq[0].head == 3 && breq[4].head == 7, "burst: 8 available, 5 asked for: 5 taken");
	CHECK(burst(&rb, BURST) == 3 && breq[0].head == 8 && breq[2].head == 10 && rb.vq.last_avail == 11,
	      "burst: then the other 3");
	/* The third of a group of four not yet made available: the two before it are taken. */
	one(&rb, 11, buf(&rb), LEN, 0);
	one(&rb, 12, buf(&rb), LEN, 0);
	uint16_t at = rb_packed_chain(&rb, 13, 1, 0, 8);
	one(&rb, 14, buf(&rb), LEN, 0);
	uint16_t flags = rb.pdesc[at].flags;
	rb.pdesc[at].flags ^= VRING_PACKED_DESC_F_AVAIL | VRING_PACKED_DESC_F_USED; /* the previous lap's */
	CHECK(burst(&rb, BURST) == 2 && breq[1].head == 12 && !rb.vq.broken,
	      "burst: a descriptor not yet available in a group of four: the ones before it taken, nothing refused");
	rb.pdesc[at].flags = flags;
	CHECK(burst(&rb, BURST) == 2 && breq[0].head == 13 && breq[1].head == 14, "burst: the rest once it is");
	rb_fini(&rb);
}

/* Hostile descriptors inside a group of four: the ones before them taken, then the ring fails. */
static void burst_hostile(void)
{
	static const struct {
		const char *name, *why;
	} cases[] = {
		{ "wrong USED flag", "available descriptor with the wrong USED flag" },
		{ "buffer id out of range", "buffer id out of range" },
		{ "the group's first id again", "buffer id already in use" },
		{ "buffer outside guest memory", "buffer outside guest memory" },
	};
	for (unsigned c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct rb rb;
		char name[96];
		snprintf(name, sizeof(name), "burst: hostile %s", cases[c].name);
		if (!ring(&rb, NUM, 0, name))
			continue;
		one(&rb, 0, buf(&rb), LEN, 0);
		one(&rb, 1, buf(&rb), LEN, 0);
		one(&rb, c == 1 ? NUM : c == 2 ? 0 : 2, c == 3 ? RB_END : buf(&rb), LEN, 0);
		one(&rb, 3, buf(&rb), LEN, 0);
		if (c == 0)
			rb.pdesc[2].flags |= VRING_PACKED_DESC_F_USED;
		vu_loop_turns++;
		CHECK(burst(&rb, BURST) == 2 && breq[0].head == 0 && breq[1].head == 1, "%s: the two before it taken",
		      name);
		if (!CHECK(rb.vq.broken && strstr(rb.log, cases[c].why), "%s: the ring fails: \"%s\"", name,
			   cases[c].why))
			check_note("logged: %s", rb.log);
		CHECK(burst(&rb, BURST) == -1 && rb_errors(&rb) == 1, "%s: then -1, error eventfd signalled once", name);
		rb_fini(&rb);
	}
}

static void test_burst(void)
{
	burst_rounds();
	burst_mixed();
	burst_partial();
	burst_hostile();
}

/* ---- notifications and kicks ---------------------------------------------------- */

/* The driver's event structure: flags, and for DESC the descriptor it waits for. */
static void driver_wants(struct rb *rb, uint16_t flags, uint16_t off, bool wrap)
{
	rb->driver_event->off_wrap = off | (wrap ? VRING_PACKED_EVENT_WRAP : 0);
	rb->driver_event->flags = flags;
}

/* Completes n one-descriptor requests with one flush; the notifications it sent. */
static unsigned complete(struct rb *rb, unsigned n)
{
	unsigned before = rb->signals;

	for (unsigned i = 0; i < n; i++)
		rb_packed_chain(rb, (uint16_t)i, 0, 1, 8);
	for (unsigned i = 0; i < n; i++)
		pop_push(rb, 1);
	vu_vring_flush(&rb->vq);
	while (rb_packed_used(rb, NULL, NULL, NULL))
		;
	return rb->signals - before;
}

static void test_notify(void)
{
	struct rb rb;

	if (!ring(&rb, NUM, 0, "notify"))
		return;
	vu_vring_flush(&rb.vq);
	CHECK_EQ(rb.signals, 0, "notify: flush with nothing pushed does nothing");
	CHECK_EQ(complete(&rb, 2), 1, "notify: ENABLE: one notification per flush");
	driver_wants(&rb, VRING_PACKED_EVENT_DISABLE, 0, 1);
	CHECK_EQ(complete(&rb, 2), 0, "notify: DISABLE: published, not notified");
	CHECK(rb.vq.used_idx == 4, "notify: DISABLE: the used descriptors are there");
	driver_wants(&rb, VRING_PACKED_EVENT_DESC, 0, 0);
	CHECK_EQ(complete(&rb, 1), 1, "notify: DESC without EVENT_IDX is taken as ENABLE");
	int call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	rb.vq.call_fd = call;
	driver_wants(&rb, VRING_PACKED_EVENT_ENABLE, 0, 0);
	unsigned before = rb.signals;
	complete(&rb, 1);
	uint64_t v = 0;
	CHECK(read(call, &v, sizeof(v)) == sizeof(v) && v == 1 && rb.signals == before,
	      "notify: through the call eventfd when there is one");
	rb.vq.call_fd = -1;
	close(call);
	rb_fini(&rb);

	/*
	 * EVENT_IDX's descriptor mode: notified when the used descriptors of a flush
	 * cover (off, wrap). A flush from position old (lap wrap 1) of n descriptors.
	 */
	static const struct {
		uint16_t old;       /* the used position before the flush (first lap: wrap 1) */
		uint16_t n;
		uint16_t off;
		bool wrap;
		bool notify;
	} cases[] = {
		{ 4, 3, 3, 1, false }, { 4, 3, 4, 1, true }, { 4, 3, 6, 1, true }, { 4, 3, 7, 1, false },
		{ 4, 3, 5, 0, false },  /* the right position in the next lap */
		{ 14, 4, 15, 1, true }, { 14, 4, 0, 0, true }, { 14, 4, 1, 0, true }, { 14, 4, 2, 0, false },
		{ 14, 4, 0, 1, false }, /* position 0 of this lap is behind */
		{ 14, 4, 13, 1, false }, { 0, 16, 15, 1, true }, { 0, 16, 0, 0, false },
		{ 15, 1, 15, 1, true }, { 15, 1, 0, 0, false },
	};
	for (unsigned k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		if (!ring(&rb, NUM, RB_EVENT_IDX, "notify: event idx"))
			continue;
		/* Move both sides to old with a first flush (that one always notifies). */
		for (unsigned i = 0; i < cases[k].old; i++)
			rb_packed_chain(&rb, (uint16_t)i, 0, 1, 8);
		for (unsigned i = 0; i < cases[k].old; i++)
			pop_push(&rb, 1);
		vu_vring_flush(&rb.vq);
		while (rb_packed_used(&rb, NULL, NULL, NULL))
			;
		driver_wants(&rb, VRING_PACKED_EVENT_DESC, cases[k].off, cases[k].wrap);
		if (cases[k].old == 0) {
			/* Nothing flushed yet: make the first decision with a flush outside the range. */
			rb.vq.signalled_valid = true;
			rb.vq.signalled_used = 0;
			rb.vq.signalled_wrap = true;
		}
		CHECK_EQ(complete(&rb, cases[k].n), cases[k].notify,
			 "notify: event idx: used %u -> +%u, event at %u wrap %d: %s", cases[k].old, cases[k].n,
			 cases[k].off, cases[k].wrap, cases[k].notify ? "notified" : "not notified");
		rb_fini(&rb);
	}
	if (!ring(&rb, NUM, RB_EVENT_IDX, "notify: first"))
		return;
	driver_wants(&rb, VRING_PACKED_EVENT_DESC, 9, 0);
	CHECK_EQ(complete(&rb, 1), 1, "notify: event idx: the first flush notifies whatever the event says");
	CHECK_EQ(complete(&rb, 1), 0, "notify: event idx: then the event decides");
	driver_wants(&rb, VRING_PACKED_EVENT_DESC, NUM + 3, 1);
	CHECK_EQ(complete(&rb, 3), 0, "notify: event idx: an offset past the queue size never matches");
	rb_fini(&rb);
}

static void test_kicks(void)
{
	struct rb rb;
	struct vu_req req = new_req(MAX_IOV);

	if (!ring(&rb, NUM, RB_EVENT_IDX, "kicks"))
		return;
	CHECK(!vu_vring_kicks(&rb.vq, false) && rb.device_event->flags == VRING_PACKED_EVENT_DISABLE,
	      "kicks: off writes DISABLE");
	CHECK(!vu_vring_kicks(&rb.vq, true) && rb.device_event->flags == VRING_PACKED_EVENT_ENABLE,
	      "kicks: on writes ENABLE; nothing waits");
	rb_packed_chain(&rb, 0, 1, 0, 8);
	CHECK(vu_vring_kicks(&rb.vq, true), "kicks: on says a request arrived meanwhile");
	rb_pop(&rb, &req);
	CHECK(!vu_vring_kicks(&rb.vq, true), "kicks: on with the ring drained");
	vu_vring_fail(&rb.vq, "t-vring-packed: on purpose");
	rb_packed_chain(&rb, 1, 1, 0, 8);
	CHECK(!vu_vring_kicks(&rb.vq, true) && !vu_vring_kicks(&rb.vq, false) &&
	      rb.device_event->flags == VRING_PACKED_EVENT_ENABLE, "kicks: a broken ring says nothing and writes nothing");
	rb_fini(&rb);
}

/* ---- what the walker refuses ----------------------------------------------- */

struct refusal {
	const char *name;
	unsigned flags;
	void (*build)(struct rb *rb);
	const char *why;
};

static void head_used_bit(struct rb *rb)
{
	one(rb, 0, buf(rb), LEN, 0);
	rb->pdesc[0].flags |= VRING_PACKED_DESC_F_USED; /* AVAIL and USED both 1 in lap 1 */
}

static void chained_not_available(struct rb *rb)
{
	struct vring_packed_desc d[2] = { { .addr = buf(rb), .len = LEN }, { .addr = buf(rb), .len = LEN } };
	rb_packed_add(rb, 0, d, 2);
	rb->pdesc[1].flags = VRING_PACKED_DESC_F_USED; /* still the previous lap's */
}

static void chained_used_bit(struct rb *rb)
{
	struct vring_packed_desc d[2] = { { .addr = buf(rb), .len = LEN }, { .addr = buf(rb), .len = LEN } };
	rb_packed_add(rb, 0, d, 2);
	rb->pdesc[1].flags |= VRING_PACKED_DESC_F_USED;
}

static void id_is_num(struct rb *rb)
{
	one(rb, NUM, buf(rb), LEN, 0);
}

static void id_ffff(struct rb *rb)
{
	one(rb, 0xffff, buf(rb), LEN, 0);
}

static void id_twice(struct rb *rb)
{
	struct vu_req req = new_req(MAX_IOV);

	one(rb, 5, buf(rb), LEN, 0);
	rb_pop(rb, &req);
	one(rb, 5, buf(rb), LEN, 0);
}

static void id_pushed_not_published(struct rb *rb)
{
	/* The driver may reuse an id only once it saw its used descriptor. */
	one(rb, 5, buf(rb), LEN, 0);
	pop_push(rb, 0);
	one(rb, 5, buf(rb), LEN, 0);
}

static void chain_longer_than_ring(struct rb *rb)
{
	struct vring_packed_desc d[NUM];
	for (unsigned i = 0; i < NUM; i++)
		d[i] = (struct vring_packed_desc){ .addr = buf(rb), .len = LEN };
	rb_packed_add(rb, 0, d, NUM);
	rb->pdesc[NUM - 1].flags |= VRING_DESC_F_NEXT; /* and on around to its own head */
}

static void readable_after_writable(struct rb *rb)
{
	struct vring_packed_desc d[2] = { { .addr = buf(rb), .len = LEN, .flags = VRING_DESC_F_WRITE },
					  { .addr = buf(rb), .len = LEN } };
	rb_packed_add(rb, 0, d, 2);
}

static void buffer_outside(struct rb *rb)
{
	one(rb, 0, 0x1000, LEN, 0);
}

static void buffer_past_end(struct rb *rb)
{
	one(rb, 0, RB_END - 16, 17, VRING_DESC_F_WRITE);
}

static void buffer_wraps(struct rb *rb)
{
	one(rb, 0, 0xfffffffffffffff0ull, 32, 0);
}

static void empty_outside(struct rb *rb)
{
	one(rb, 0, 0xdead0000000ull, 0, 0);
}

/* An indirect descriptor for a valid table of n readable entries; the table. */
static struct vring_packed_desc *indirect(struct rb *rb, unsigned n, uint16_t flags)
{
	uint64_t gpa;
	struct vring_packed_desc *t = (struct vring_packed_desc *)rb_table(rb, n, &gpa);

	for (unsigned i = 0; i < n && i < 64; i++)
		t[i] = (struct vring_packed_desc){ .addr = buf(rb), .len = LEN };
	for (unsigned i = 64; i < n; i++)
		t[i] = (struct vring_packed_desc){ .addr = t[0].addr, .len = LEN };
	one(rb, 0, gpa, 16 * n, VRING_DESC_F_INDIRECT | flags);
	return t;
}

static void indirect_plain(struct rb *rb)
{
	indirect(rb, 2, 0);
}

static void indirect_nested(struct rb *rb)
{
	struct vring_packed_desc *t = indirect(rb, 2, 0);
	t[1].flags = VRING_DESC_F_INDIRECT;
}

static void indirect_with_next(struct rb *rb)
{
	struct vring_packed_desc d[2] = { { .len = 32, .flags = VRING_DESC_F_INDIRECT },
					  { .addr = buf(rb), .len = LEN } };
	uint64_t gpa;
	struct vring_packed_desc *t = (struct vring_packed_desc *)rb_table(rb, 2, &gpa);
	t[0] = t[1] = (struct vring_packed_desc){ .addr = buf(rb), .len = LEN };
	d[0].addr = gpa;
	rb_packed_add(rb, 0, d, 2);
}

static void indirect_in_chain(struct rb *rb)
{
	uint64_t gpa;
	struct vring_packed_desc *t = (struct vring_packed_desc *)rb_table(rb, 1, &gpa);
	t[0] = (struct vring_packed_desc){ .addr = buf(rb), .len = LEN };
	struct vring_packed_desc d[2] = { { .addr = buf(rb), .len = LEN },
					  { .addr = gpa, .len = 16, .flags = VRING_DESC_F_INDIRECT } };
	rb_packed_add(rb, 0, d, 2);
}

static void indirect_len(struct rb *rb, uint32_t len)
{
	indirect(rb, 2, 0);
	rb->pdesc[0].len = len;
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
	indirect(rb, VU_VRING_MAX_SIZE + 1, 0);
}

static void indirect_outside(struct rb *rb)
{
	indirect(rb, 2, 0);
	rb->pdesc[0].addr = RB_END - 16;
}

static void indirect_crossing(struct rb *rb)
{
	indirect(rb, 2, 0);
	rb->pdesc[0].addr = RB_GPA + RB_RAM0 - 16;
}

static void indirect_misaligned(struct rb *rb)
{
	indirect(rb, 2, 0);
	rb->pdesc[0].addr += 4;
}

static void indirect_readable_after_writable(struct rb *rb)
{
	struct vring_packed_desc *t = indirect(rb, 2, 0);
	t[0].flags = VRING_DESC_F_WRITE;
}

static void indirect_buffer_outside(struct rb *rb)
{
	struct vring_packed_desc *t = indirect(rb, 2, 0);
	t[1].addr = RB_END - 8;
}

static const struct refusal refusals[] = {
	{ "head with both wrap bits of its lap", 0, head_used_bit, "available descriptor with the wrong USED flag" },
	{ "chained descriptor of the previous lap", 0, chained_not_available,
	  "chained descriptor not made available" },
	{ "chained descriptor with both wrap bits", 0, chained_used_bit,
	  "available descriptor with the wrong USED flag" },
	{ "buffer id = queue size", 0, id_is_num, "buffer id out of range" },
	{ "buffer id 0xffff", 0, id_ffff, "buffer id out of range" },
	{ "buffer id in flight", 0, id_twice, "buffer id already in use" },
	{ "buffer id pushed, not yet published", 0, id_pushed_not_published, "buffer id already in use" },
	{ "chain around the whole ring", 0, chain_longer_than_ring, "descriptor chain longer than the queue" },
	{ "device-readable after device-writable", 0, readable_after_writable,
	  "device-readable descriptor after a device-writable one" },
	{ "buffer below guest memory", 0, buffer_outside, "buffer outside guest memory" },
	{ "buffer one byte past the end of guest memory", 0, buffer_past_end, "buffer outside guest memory" },
	{ "buffer whose address + length overflows", 0, buffer_wraps, "buffer outside guest memory" },
	{ "empty buffer outside guest memory", 0, empty_outside, "buffer outside guest memory" },
	{ "indirect without the feature", 0, indirect_plain, "indirect descriptor without VIRTIO_RING_F_INDIRECT_DESC" },
	{ "indirect inside an indirect table", RB_INDIRECT, indirect_nested,
	  "indirect descriptor inside an indirect table" },
	{ "INDIRECT with NEXT", RB_INDIRECT, indirect_with_next, "indirect descriptor with the NEXT flag" },
	{ "indirect after a direct descriptor", RB_INDIRECT, indirect_in_chain, "indirect descriptor inside a chain" },
	{ "indirect table of length 0", RB_INDIRECT, indirect_len0, "indirect table length is not a multiple of 16" },
	{ "indirect table of length 24", RB_INDIRECT, indirect_len24, "indirect table length is not a multiple of 16" },
	{ "indirect table of 32769 entries", RB_INDIRECT, indirect_too_long,
	  "indirect table longer than the largest queue" },
	{ "indirect table past the end of guest memory", RB_INDIRECT, indirect_outside,
	  "indirect table outside guest memory" },
	{ "indirect table across two regions", RB_INDIRECT, indirect_crossing, "indirect table outside guest memory" },
	{ "indirect table not 8-byte aligned", RB_INDIRECT, indirect_misaligned, "indirect table outside guest memory" },
	{ "indirect: device-readable after device-writable", RB_INDIRECT, indirect_readable_after_writable,
	  "device-readable descriptor after a device-writable one" },
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
		vu_loop_turns++;
		CHECK_EQ(rb_pop(&rb, &req), -1, "refuse: %s: pop fails", c->name);
		if (!CHECK(strstr(rb.log, c->why), "refuse: %s: the log says \"%s\"", c->name, c->why))
			check_note("logged: %s", rb.log);
		CHECK(rb_pop(&rb, &req) == -1 && !vu_vring_ready(&rb.vq), "refuse: %s: the ring stays broken", c->name);
		CHECK_EQ(rb_errors(&rb), 1, "refuse: %s: error eventfd signalled once", c->name);
		rb_fini(&rb);
	}
}

/* ---- mapping and the base ------------------------------------------------------ */

static void test_map(void)
{
	struct rb rb;

	if (!ring(&rb, NUM, 0, "map"))
		return;
	struct vu_vring saved = rb.vq;
	static const struct {
		const char *name;
		unsigned num;
		uint64_t desc, driver, device;
	} bad[] = {
		{ "queue size 0", 0, 0, 0, 0 },
		{ "queue size 32769", 32769, 0, 0, 0 },
		{ "descriptor ring not 16-byte aligned", NUM, 8, 0, 0 },
		{ "driver area not 4-byte aligned", NUM, 0, 2, 0 },
		{ "device area not 4-byte aligned", NUM, 0, 0, 2 },
		{ "descriptor ring outside memory", NUM, RB_END, 0, 0 },
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rb.vq = saved;
		rb.vq.num = bad[i].num;
		rb.vq.desc_uva += bad[i].desc;
		rb.vq.avail_uva += bad[i].driver;
		rb.vq.used_uva += bad[i].device;
		CHECK(!vu_vring_map(&rb.vq, &rb.mem) && !vu_vring_ready(&rb.vq), "map: refused: %s", bad[i].name);
	}
	rb.vq = saved;
	rb.vq.last_avail = NUM;
	CHECK(!vu_vring_map(&rb.vq, &rb.mem), "map: refused: avail position past the queue size");
	rb.vq = saved;
	CHECK(vu_vring_map(&rb.vq, &rb.mem), "map: the good addresses again");
	rb_fini(&rb);

	CHECK(rb_init(&rb, 1000, RB_PACKED) == 0, "map: a ring of 1000 entries (not a power of 2)");
	rb_fini(&rb);
	CHECK(rb_init(&rb, VU_VRING_MAX_SIZE, RB_PACKED) == 0, "map: a ring of 32768 entries");
	rb_fini(&rb);
}

static void test_base(void)
{
	struct rb rb;
	struct vu_req req = new_req(MAX_IOV);

	if (!ring(&rb, NUM, 0, "base"))
		return;
	uint32_t b = VU_PACKED_BASE(5, 0, 3, 1);
	CHECK_EQ(b, 5u | 3u << 16 | 1u << 31, "base: the encoding: avail 0-14, wrap 15, used 16-30, wrap 31");
	vu_vring_set_base(&rb.vq, b);
	CHECK(rb.vq.last_avail == 5 && !rb.vq.avail_wrap && rb.vq.used_idx == 3 && rb.vq.used_wrap,
	      "base: SET_VRING_BASE's value taken apart");
	CHECK_EQ(vu_vring_get_base(&rb.vq), b, "base: GET_VRING_BASE gives it back");

	/* From there: the driver continues at 5 in its second lap. */
	rb.next_avail = 5;
	rb.avail_wrap = false;
	rb.next_used = 3;
	rb.used_wrap = true;
	rb_packed_chain(&rb, 1, 0, 1, 8);
	CHECK(rb_pop(&rb, &req) == 1 && req.head == 1, "base: the next request is at 5, lap 0");
	vu_vring_push(&rb.vq, &req, 2);
	vu_vring_flush(&rb.vq);
	CHECK(rb_packed_used(&rb, NULL, NULL, NULL) == 1 && vu_vring_get_base(&rb.vq) == VU_PACKED_BASE(6, 0, 4, 1),
	      "base: its used descriptor at 3; the base is now 6/0, 4/1");
	rb_fini(&rb);
}

/* ---- the per-turn budget ---------------------------------------------------- */

#define QUARTER (VU_VRING_TURN_BUDGET / 4)

static void test_budget(void)
{
	struct rb rb;
	struct vu_req req = new_req(MAX_IOV);

	if (!ring(&rb, NUM, RB_INDIRECT, "budget"))
		return;
	vu_loop_turns++;
	uint64_t gpa;
	struct vring_packed_desc *t = (struct vring_packed_desc *)rb_table(&rb, QUARTER - 1, &gpa);
	uint64_t b8 = rb_alloc(&rb, 8, 8);
	for (unsigned i = 0; i < QUARTER - 1; i++)
		t[i] = (struct vring_packed_desc){ .addr = b8, .len = 8 };
	for (unsigned i = 0; i < 6; i++)
		one(&rb, (uint16_t)i, gpa, 16 * (QUARTER - 1), VRING_DESC_F_INDIRECT);
	unsigned n = 0;
	while (n < 6 && rb_pop(&rb, &req) == 1)
		n++;
	CHECK(n == 4 && rb.defers == 1 && !rb.vq.broken,
	      "budget: 4 requests of a quarter each, then the ring looks empty and defers");
	CHECK(!vu_vring_kicks(&rb.vq, true) && rb.defers == 2, "budget: kicks on says nothing waits (and defers)");
	vu_loop_turns++;
	CHECK(rb_pop(&rb, &req) == 1 && rb_pop(&rb, &req) == 1 && rb_pop(&rb, &req) == 0 && rb.defers == 2,
	      "budget: the next turn takes the rest");
	rb_fini(&rb);
}

/* ---- the dirty log ----------------------------------------------------------- */

static void test_dirty_log(void)
{
	struct rb rb;
	struct vu_req req = new_req(MAX_IOV);
	size_t size = (RB_END / VU_LOG_PAGE + 7) / 8;
	int fd = rb_memfd(size);
	uint8_t *bits = fd >= 0 ? mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;

	if (!CHECK(bits != MAP_FAILED, "dirty log: a log") || !ring(&rb, NUM, 0, "dirty log")) {
		if (fd >= 0)
			close(fd);
		return;
	}
	struct vu_log where = { .mmap_size = size };
	CHECK(!vu_mem_set_log(&rb.mem, dup(fd), &where), "dirty log: set");
	vu_mem_want_log(&rb.mem, true);
	rb.vq.log_used = true;
	rb.vq.log_guest_addr = rb.pdesc_gpa + 16 * NUM + 4; /* the device area, as QEMU gives it */
	vu_vring_map(&rb.vq, &rb.mem);

	uint64_t out = RB_GPA + 0x200000, in = RB_GPA + 0x300000;
	struct vring_packed_desc d[2] = { { .addr = out, .len = 64 },
					  { .addr = in, .len = 2 * VU_LOG_PAGE, .flags = VRING_DESC_F_WRITE } };
	rb_packed_add(&rb, 0, d, 2);
#define MARKED(gpa) (bits[(gpa) / VU_LOG_PAGE / 8] & (1u << ((gpa) / VU_LOG_PAGE % 8)))
	vu_vring_kicks(&rb.vq, false);
	CHECK(MARKED(rb.pdesc_gpa + 16 * NUM + 4), "dirty log: the device area's write marked");
	memset(bits, 0, size);
	if (rb_pop(&rb, &req) == 1) {
		vu_vring_push(&rb.vq, &req, 2 * VU_LOG_PAGE);
		vu_vring_flush(&rb.vq);
	}
	unsigned count = 0;
	for (size_t i = 0; i < size; i++)
		count += __builtin_popcount(bits[i]);
	CHECK(MARKED(in) && MARKED(in + VU_LOG_PAGE), "dirty log: both pages of the writable buffer marked");
	CHECK(MARKED(rb.pdesc_gpa) && !MARKED(out), "dirty log: the used descriptor's page marked, not the readable buffer");
	CHECK_EQ(count, 3, "dirty log: nothing else marked");
	vu_mem_clear_log(&rb.mem);
	munmap(bits, size);
	close(fd);
	rb_fini(&rb);
}

/* ---- the packed inflight region ------------------------------------------------ */

struct region {
	struct vu_inflight_packed *q;
	size_t size;
	uint16_t resubmit[NUM];
};

static bool region_attach(struct rb *rb, struct region *r)
{
	if (!r->q) {
		r->size = vu_inflight_queue_size(NUM);
		r->q = aligned_alloc(64, r->size);
		if (!r->q)
			return false;
		memset(r->q, 0, r->size);
	}
	rb->vq.inflight_packed = r->q;
	rb->vq.resubmit = r->resubmit;
	return vu_inflight_start(&rb->vq) == NULL;
}

/* The ring's back-end dies: a new vring over the same guest memory, started on the region. */
static const char *restart(struct rb *rb, struct region *r, uint32_t stale_base)
{
	rb->vq.resubmit = NULL;     /* r->resubmit is not the ring's to free */
	vu_vring_free(&rb->vq);
	unsigned index = rb->vq.index;
	int err_fd = rb->vq.err_fd;
	void *owner = rb->vq.owner;
	vu_vring_init(&rb->vq);
	rb->vq.index = index;
	rb->vq.err_fd = err_fd;
	rb->vq.owner = owner;
	rb->vq.num = NUM;
	rb->vq.packed = true;
	rb->vq.desc_uva = rb->pdesc_gpa + RB_UVA_DELTA;
	rb->vq.avail_uva = rb->vq.desc_uva + 16 * NUM;
	rb->vq.used_uva = rb->vq.avail_uva + 4;
	vu_vring_set_base(&rb->vq, stale_base);
	if (!vu_vring_map(&rb->vq, &rb->mem))
		return "cannot map";
	rb->vq.inflight_packed = r->q;
	rb->vq.resubmit = r->resubmit;
	return vu_inflight_start(&rb->vq);
}

static void detach(struct rb *rb)
{
	rb->vq.resubmit = NULL;
	rb->vq.resubmit_n = 0;
}

static void test_inflight(void)
{
	struct rb rb;
	struct region r = { 0 };
	struct vu_req a = new_req(MAX_IOV), b, c;
	struct iovec ib[8], ic[8];

	if (!ring(&rb, NUM, 0, "inflight"))
		return;
	b = (struct vu_req){ .iov = ib, .max_iov = 8 };
	c = (struct vu_req){ .iov = ic, .max_iov = 8 };
	if (!CHECK(region_attach(&rb, &r), "inflight: a fresh region is set up")) {
		detach(&rb);
		rb_fini(&rb);
		free(r.q);
		return;
	}
	struct vu_inflight_packed *q = r.q;
	CHECK(q->version == 1 && q->desc_num == NUM && q->free_head == 0 && q->desc[0].next == 1 &&
	      q->desc[NUM - 1].next == NUM && q->used_wrap_counter == 1, "inflight: fresh: version, free list, used position");

	rb_packed_chain(&rb, 6, 0, 1, 8);   /* A: 1 descriptor at 0 */
	rb_packed_chain(&rb, 2, 1, 1, 8);   /* B: 2 at 1-2 */
	rb_packed_chain(&rb, 11, 0, 1, 8);  /* C: 1 at 3 */
	uint64_t b_addr[2] = { rb.pdesc[1].addr, rb.pdesc[2].addr }, c_addr = rb.pdesc[3].addr;
	bool popped = rb_pop(&rb, &a) == 1 && rb_pop(&rb, &b) == 1 && rb_pop(&rb, &c) == 1;
	CHECK(popped && q->desc[0].inflight == 1 && q->desc[0].num == 1 && q->desc[1].inflight == 1 &&
	      q->desc[1].num == 2 && q->desc[1].last == 2 && q->desc[2].id == 2 && q->desc[3].inflight == 1 &&
	      q->desc[1].counter == 2 && q->desc[3].counter == 3 && q->free_head == 4,
	      "inflight: each chain recorded from the free list: heads in flight, num, last, counter");
	CHECK(q->desc[1].addr == b_addr[0] && q->desc[2].addr == b_addr[1] && q->desc[2].flags & VRING_DESC_F_WRITE,
	      "inflight: the ring descriptors saved: addr, flags, id");

	uint64_t a_addr = rb.pdesc[0].addr;
	vu_vring_push(&rb.vq, &c, 1);
	CHECK(q->desc[3].inflight == VU_INFLIGHT_PACKED_PUSHED && q->old_used_idx == 0,
	      "inflight: pushed: 2, nothing committed yet");
	vu_vring_flush(&rb.vq);
	CHECK(q->desc[3].inflight == 0 && q->free_head == 3 && q->desc[3].next == 4 && q->used_idx == 1 &&
	      q->old_used_idx == 1 && q->old_free_head == 3,
	      "inflight: flushed: done, its entry back on the free list, committed");
	uint16_t id = 0;
	CHECK(rb_packed_used(&rb, &id, NULL, NULL) == 1 && id == 11 && rb.pdesc[0].id == 11,
	      "inflight: C's used descriptor took A's ring slot");
	/* The driver took it: the slot is the driver's again, to write as it likes. */
	rb.pdesc[0].addr = 0xdead0000;
	rb.pdesc[0].len = 3;

	const char *why = restart(&rb, &r, VU_PACKED_BASE(0, 1, 0, 1));
	CHECK(!why && rb.vq.resubmit_n == 2 && r.resubmit[0] == 0 && r.resubmit[1] == 1,
	      "inflight: restart: A and B to resubmit, oldest first");
	CHECK(rb.vq.used_idx == 1 && rb.vq.used_wrap && rb.vq.last_avail == 4 && rb.vq.avail_wrap,
	      "inflight: restart: used at 1, new requests after the 3 descriptors in flight (4)");
	CHECK(q->free_head == 3 && q->desc[3].next == 4, "inflight: restart: the free list rebuilt without them");
	a = new_req(MAX_IOV);
	b = (struct vu_req){ .iov = ib, .max_iov = 8 };
	int r1 = rb_pop(&rb, &a), r2 = rb_pop(&rb, &b);
	CHECK(r1 == 1 && a.head == 6 && a.in == 1 && iov[0].iov_base == rb_backend(&rb, a_addr) &&
	      r2 == 1 && b.head == 2 && b.out == 1 && b.in == 1 && ib[0].iov_base == rb_backend(&rb, b_addr[0]) &&
	      ib[1].iov_base == rb_backend(&rb, b_addr[1]),
	      "inflight: restart: resubmitted from the saved descriptors (A's slot holds C's completion)");
	rb_packed_chain(&rb, 7, 0, 1, 8);
	struct vu_req d = new_req(MAX_IOV);
	struct iovec id_iov[4];
	d.iov = id_iov;
	d.max_iov = 4;
	CHECK(rb_pop(&rb, &d) == 1 && d.head == 7, "inflight: restart: then the ring's next request (at 4)");
	CHECK(c_addr && !rb.vq.broken, "inflight: restart: nothing refused");

	/* B and A complete; the back-end is killed after the flush wrote used_idx, before the ring. */
	vu_vring_push(&rb.vq, &b, 1);
	vu_vring_push(&rb.vq, &a, 1);
	q->used_idx = 4; /* what the flush writes first: B 1 -> 3, A 3 -> 4 */
	why = restart(&rb, &r, VU_PACKED_BASE(9, 1, 9, 1));
	CHECK(!why && rb.vq.resubmit_n == 3 && rb.vq.used_idx == 1 && rb.vq.last_avail == 5 &&
	      q->used_idx == 1 && q->old_used_idx == 1,
	      "inflight: killed before the batch reached the ring: rolled back, A, B and the new one resubmitted");

	/* Killed right after the ring got a batch, before it was cleared and committed. */
	for (unsigned i = 0; i < 3; i++) {
		struct vu_req x = new_req(MAX_IOV);
		if (rb_pop(&rb, &x) == 1)
			vu_vring_push(&rb.vq, &x, 1);
	}
	void *snap = malloc(r.size);
	memcpy(snap, q, r.size);
	vu_vring_flush(&rb.vq);
	uint16_t used_after = q->used_idx;
	memcpy(q, snap, r.size);
	free(snap);
	q->used_idx = used_after;
	why = restart(&rb, &r, VU_PACKED_BASE(0, 1, 0, 1));
	CHECK(!why && used_after == 5 && rb.vq.resubmit_n == 0 && rb.vq.used_idx == 5 && rb.vq.last_avail == 5,
	      "inflight: killed after the ring got the batch: it is done, nothing resubmitted");
	unsigned busy = 0;
	for (unsigned i = 0; i < NUM; i++)
		busy += q->desc[i].inflight != 0;
	CHECK_EQ(busy, 0, "inflight: killed after the ring got the batch: no entry left in flight");
	while (rb_packed_used(&rb, NULL, NULL, NULL))
		;

	/* A region the front-end scribbled on is refused. */
	rb_packed_chain(&rb, 3, 0, 1, 8);
	struct vu_req y = new_req(MAX_IOV);
	unsigned h = NUM;
	if (rb_pop(&rb, &y) == 1)
		for (h = 0; h < NUM && q->desc[h].inflight != 1; h++)
			;
	if (CHECK(h < NUM, "inflight: hostile region: a chain in flight")) {
		q->desc[h].num = NUM + 1;
		CHECK(restart(&rb, &r, 0) != NULL, "inflight: hostile region: a chain longer than the queue is refused");
		q->desc[h].num = 1;
		q->desc[h].id = NUM;
		CHECK(restart(&rb, &r, 0) != NULL, "inflight: hostile region: a buffer id out of range is refused");
		q->desc[h].id = 3;
		q->desc[h].next = (uint16_t)h; /* a second chain sharing its entry */
		q->desc[(h + 1) % NUM] = q->desc[h];
		q->desc[(h + 1) % NUM].id = 4;
		CHECK(restart(&rb, &r, 0) != NULL, "inflight: hostile region: two chains sharing an entry are refused");
		q->desc[(h + 1) % NUM].inflight = 0;
		q->used_idx = NUM;
		CHECK(restart(&rb, &r, 0) != NULL, "inflight: hostile region: a used position out of range is refused");
		q->used_idx = q->old_used_idx;
		q->version = 7;
		CHECK(restart(&rb, &r, 0) != NULL, "inflight: hostile region: an unknown version is refused");
	}
	detach(&rb);
	rb_fini(&rb);
	free(r.q);
}

int main(void)
{
	check_deadline(120);
	test_chains();
	test_wrap();
	test_indirect();
	test_out_of_order();
	test_in_order();
	test_unpop();
	test_burst();
	test_notify();
	test_kicks();
	test_refusals();
	test_map();
	test_base();
	test_budget();
	test_dirty_log();
	test_inflight();
	return check_exit();
}
