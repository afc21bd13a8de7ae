/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target: the split-ring walker over a fuzzed guest memory image.
 * The first bytes choose the queue size, features and ring placement; the rest
 * is guest RAM (two regions with a hole between them). Every request is popped,
 * completed and flushed until the ring is empty or broken.
 */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "proto/log.h"
#include "proto/vring.h"

#define RAM_SIZE 65536u   /* per region */
#define HOLE 4096u

struct params {
	uint8_t log2_num;
	uint8_t flags;      /* bit 0: EVENT_IDX, bit 1: INDIRECT */
	uint16_t desc_off, avail_off, used_off;
	uint16_t last_avail;
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vu_mem mem;
	struct params p;
	struct iovec iov[128];

	vu_log_set_name("fuzz");
	if (size < sizeof(p))
		return 0;
	memcpy(&p, data, sizeof(p));
	data += sizeof(p);
	size -= sizeof(p);

	/* Region 0 at gpa 0, region 1 right after a hole; user addresses elsewhere. */
	size_t first = size < RAM_SIZE ? size : RAM_SIZE;
	struct vu_mem_region r0 = { 0, RAM_SIZE, 0x100000, 0 };
	struct vu_mem_region r1 = { RAM_SIZE + HOLE, RAM_SIZE, 0x100000 + RAM_SIZE, 0 };
	if (vu_mem_add(&mem, &r0, region_fd(data, first)) ||
	    vu_mem_add(&mem, &r1, region_fd(data + first, size - first))) {
		vu_mem_clear(&mem);
		return 0;
	}

	struct vu_vring vq = { .index = 0 };
	vu_vring_init(&vq);
	vq.num = 1u << (p.log2_num % 9);
	vq.desc_uva = 0x100000 + p.desc_off;
	vq.avail_uva = 0x100000 + p.avail_off;
	vq.used_uva = 0x100000 + p.used_off;
	vq.event_idx = p.flags & 1;
	vq.indirect = p.flags & 2;
	vu_vring_set_base(&vq, p.last_avail);
	if (vu_vring_map(&vq, &mem)) {
		vq.used_idx = vq.used->idx;
		struct vu_req req = { .iov = iov, .max_iov = 128 };
		for (unsigned i = 0; i < 2 * vq.num; i++) {
			vu_vring_kicks(&vq, false);
			if (vu_vring_pop(&vq, &req) <= 0)
				break;
			uint64_t sum = 0;
			for (unsigned j = 0; j < req.out + req.in; j++) {
				/* Touch every byte boundary the walker handed out. */
				volatile uint8_t *b = iov[j].iov_base;
				if (iov[j].iov_len)
					sum += b[0] + b[iov[j].iov_len - 1];
			}
			if (req.in)
				memset(iov[req.out].iov_base, 0xab, iov[req.out].iov_len);
			vu_vring_push(&vq, &req, (uint32_t)sum);
			vu_vring_flush(&vq);
			vu_vring_kicks(&vq, true);
		}
	}
	vu_mem_clear(&mem);
	return 0;
}
