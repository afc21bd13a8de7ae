/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The ring engine's own CPU cost per request, split against packed, on one core
 * (test/ring-builder.c's rings, no process, no socket): a burst of 32 one-buffer
 * requests made available, then timed: popped (one by one, or vu_vring_pop_burst),
 * each pushed, the batch flushed. Buffers the device reads (transmit-like) and ones
 * it writes (receive-like). What crosses cores in a real run (the driver's lines)
 * is not in it; the load of a shared machine hardly moves it: each figure is the
 * fastest of many short rounds.
 */
#include <stdio.h>
#include <time.h>

#include "proto/loop.h"
#include "proto/vring.h"
#include "test/ring-builder.h"

enum { NUM = 256, BURST = 32, ITERS = 2000, ROUNDS = 40, LEN = 64 };

static struct vu_req req[BURST];
static struct iovec iov[BURST][4];

static double now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

/* The driver's side: BURST requests with ids from first on, one buffer each. */
static void offer(struct rb *rb, const uint64_t *bufs, unsigned first, bool packed, uint16_t flags)
{
	for (unsigned i = 0; i < BURST; i++) {
		uint16_t id = (uint16_t)((first + i) % NUM);
		if (packed) {
			struct vring_packed_desc d = { .addr = bufs[id], .len = LEN, .flags = flags };
			rb_packed_add(rb, id, &d, 1);
		} else {
			rb_desc(&rb->desc[id], bufs[id], LEN, flags, 0);
			rb_offer(rb, id);
		}
	}
}

/* ns per request, the fastest round; negative if the ring did not give what was offered. */
static double cost(bool packed, bool burst, bool write)
{
	static uint64_t bufs[NUM];
	struct rb rb;
	double best = -1;

	if (rb_init(&rb, NUM, packed ? RB_PACKED : 0))
		return -1;
	for (unsigned i = 0; i < NUM; i++)
		bufs[i] = rb_alloc(&rb, LEN, LEN);
	for (unsigned round = 0; round < ROUNDS; round++) {
		double t = 0;
		for (unsigned it = 0; it < ITERS; it++) {
			vu_loop_turns++; /* a fresh budget, as each turn of the loop has */
			offer(&rb, bufs, it * BURST, packed, write ? VRING_DESC_F_WRITE : 0);
			double t0 = now_ns();
			for (unsigned i = 0; i < BURST; i++)
				req[i] = (struct vu_req){ .iov = iov[i], .max_iov = 4 };
			int n = 0;
			if (burst)
				n = vu_vring_pop_burst(&rb.vq, req, BURST);
			else
				while (n < BURST && vu_vring_pop(&rb.vq, &req[n]) == 1)
					n++;
			for (int i = 0; i < n; i++)
				vu_vring_push(&rb.vq, &req[i], write ? LEN : 0);
			vu_vring_flush(&rb.vq);
			t += now_ns() - t0;
			if (n != BURST) {
				rb_fini(&rb);
				return -1;
			}
			for (int i = 0; packed && i < n; i++)
				rb_packed_used(&rb, NULL, NULL, NULL);
		}
		if (best < 0 || t / (ITERS * BURST) < best)
			best = t / (ITERS * BURST);
	}
	rb_fini(&rb);
	return best;
}

int main(void)
{
	int status = 0;

	printf("%-9s | %11s %11s | %11s %11s   (ns per request: pop, push, flush; bursts of %u)\n", "buffers",
	       "split pop", "split burst", "packed pop", "packed burst", BURST);
	for (unsigned w = 0; w < 2; w++) {
		double c[4];
		for (unsigned k = 0; k < 4; k++)
			if ((c[k] = cost(k >= 2, k & 1, w)) < 0)
				status = 1;
		printf("%-9s | %11.1f %11.1f | %11.1f %11.1f\n", w ? "written" : "read", c[0], c[1], c[2], c[3]);
	}
	return status;
}
