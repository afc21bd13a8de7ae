/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target: the packed-ring walker over a fuzzed guest memory image. The
 * first bytes choose the queue size (any, up to 300), features, where the three
 * ring parts lie, the base (positions and wrap counters), and whether an inflight
 * region (its bytes fuzzed too) is attached and completions come out of order;
 * the rest is guest RAM (two regions with a hole between them). Requests are
 * popped (one at a time or in bursts), completed (in order or reversed in groups),
 * flushed, sometimes given back and taken again, until the ring is empty or broken.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "proto/log.h"
#include "proto/vring.h"

#define RAM_SIZE 65536u   /* per region */
#define HOLE 4096u
#define GROUP 8           /* requests held before completing them out of order */

struct params {
	uint16_t num;
	uint8_t flags;      /* bit 0: EVENT_IDX, 1: INDIRECT, 2: inflight region, 3: out of order, 4: unpop,
			       5: bursts (vu_vring_pop_burst) */
	uint16_t desc_off, driver_off, device_off;
	uint32_t base;
	uint8_t inflight_seed;
} __attribute__((packed));

static int region_fd(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz-guest", MFD_CLOEXEC);
	if (fd < 0)
		return -1;
	if (ftruncate(fd, RAM_SIZE) < 0 || (size && write(fd, data, size < RAM_SIZE ? size : RAM_SIZE) < 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Touches every byte boundary the walker handed out; writes into the first writable buffer. */
static uint32_t use(struct vu_req *req)
{
	uint64_t sum = 0;

	for (unsigned j = 0; j < req->out + req->in; j++) {
		volatile uint8_t *b = req->iov[j].iov_base;
		if (req->iov[j].iov_len)
			sum += b[0] + b[req->iov[j].iov_len - 1];
	}
	if (req->in)
		memset(req->iov[req->out].iov_base, 0xab, req->iov[req->out].iov_len);
	return (uint32_t)sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vu_mem mem;
	static struct iovec iov[GROUP][64];
	struct vu_req req[GROUP];
	struct params p;

	vu_log_set_name("fuzz");
	if (size < sizeof(p))
		return 0;
	memcpy(&p, data, sizeof(p));
	data += sizeof(p);
	size -= sizeof(p);

	size_t first = size < RAM_SIZE ? size : RAM_SIZE;
	struct vu_mem_region r0 = { 0, RAM_SIZE, 0x100000, 0 };
	struct vu_mem_region r1 = { RAM_SIZE + HOLE, RAM_SIZE, 0x100000 + RAM_SIZE, 0 };
	mem.log.notify_fd = -1;
	if (vu_mem_add(&mem, &r0, region_fd(data, first)) ||
	    vu_mem_add(&mem, &r1, region_fd(data + first, size - first))) {
		vu_mem_clear(&mem);
		return 0;
	}

	struct vu_vring vq = { .index = 0 };
	vu_vring_init(&vq);
	vq.packed = true;
	vq.num = 1 + p.num % 300;
	vq.desc_uva = 0x100000 + p.desc_off;
	vq.avail_uva = 0x100000 + p.driver_off;
	vq.used_uva = 0x100000 + p.device_off;
	vq.event_idx = p.flags & 1;
	vq.indirect = p.flags & 2;
	bool out_of_order = p.flags & 8, unpop = p.flags & 16, bursts = p.flags & 32;
	/* As the session takes it: positions past the queue size are refused there. */
	if ((p.base & 0x7fff) >= vq.num || ((p.base >> 16) & 0x7fff) >= vq.num)
		p.base &= 0x80008000;
	vu_vring_set_base(&vq, p.base);

	struct vu_inflight_packed *region = NULL;
	uint16_t resubmit[300];
	bool ok = vu_vring_map(&vq, &mem);
	if (ok && (p.flags & 4)) {
		/* The region: fuzzed bytes (from guest RAM's image), or fresh when the seed says so. */
		size_t rsize = vu_inflight_queue_size(vq.num);
		region = aligned_alloc(64, (rsize + 63) & ~(size_t)63);
		if (!region) {
			ok = false;
		} else {
			memset(region, 0, rsize);
			if (p.inflight_seed & 1) {
				/* A region a previous back-end left: whatever its records say. */
				memcpy(region, data, rsize < size ? rsize : size);
				region->version = 1;
				region->desc_num = (uint16_t)vq.num;
			}
			vq.inflight_packed = region;
			vq.resubmit = resubmit;
			ok = vu_inflight_start(&vq) == NULL;
		}
	}
	unsigned held = 0;
	for (unsigned i = 0; ok && i < 2 * vq.num + 8; i++) {
		vu_vring_kicks(&vq, false);
		unsigned want = bursts ? GROUP - held : 1;
		for (unsigned k = 0; k < want; k++)
			req[held + k] = (struct vu_req){ .iov = iov[held + k], .max_iov = 64 };
		int r = bursts ? vu_vring_pop_burst(&vq, &req[held], want) : vu_vring_pop(&vq, &req[held]);
		if (r > 0 && unpop && !region && i % 3 == 1) {
			vu_vring_unpop(&vq, (unsigned)r);
			r = bursts ? vu_vring_pop_burst(&vq, &req[held], want) : vu_vring_pop(&vq, &req[held]);
		}
		if (r > 0)
			held += (unsigned)r;
		if (held && (!out_of_order || held == GROUP || r <= 0)) {
			/* In order, or the group reversed. */
			for (unsigned k = 0; k < held; k++) {
				struct vu_req *q = &req[out_of_order ? held - 1 - k : k];
				vu_vring_push(&vq, q, use(q));
			}
			held = 0;
			vu_vring_flush(&vq);
		}
		if (r <= 0)
			break;
		vu_vring_kicks(&vq, true);
	}
	(void)vu_vring_get_base(&vq);
	vq.resubmit = NULL;
	vu_vring_free(&vq);
	free(region);
	vu_mem_clear(&mem);
	return 0;
}
