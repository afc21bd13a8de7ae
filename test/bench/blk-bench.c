/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Block benchmark driver: drives any vhost-user-blk back-end (vhostbox, QEMU's
 * qemu-storage-daemon, ...) through the test front-end with 4 KiB random reads
 * or writes at a fixed queue depth per queue, waiting on call eventfds like a
 * guest would, and prints "ios=N seconds=S".
 *
 *   blk-bench SOCKET read|write QUEUE_DEPTH QUEUES SECONDS [packed]
 *
 * "packed" asks for packed virtqueues (VIRTIO_F_RING_PACKED): it fails if the
 * back-end does not offer them.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test/frontend.h"

#define BS 4096
#define SECTOR 512

struct slot {
	uint64_t hdr, data, status;
};

struct bench_queue {
	struct vuf_vq *vq;
	struct slot *slots;     /* indexed by descriptor head */
	struct slot *spare;     /* slots not in flight */
	unsigned nspare;
};

static uint64_t capacity;   /* in 4 KiB blocks */
static uint32_t type;       /* 0 read, 1 write */

static uint64_t rnd(void)
{
	static uint64_t x = 0x9e3779b97f4a7c15ull;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return x;
}

static int submit(struct vuf *f, struct bench_queue *q)
{
	struct slot s = q->spare[--q->nspare];
	struct { uint32_t type, reserved; uint64_t sector; } h = { type, 0, rnd() % capacity * (BS / SECTOR) };
	struct vuf_buf hdr = { s.hdr, sizeof(h) }, data = { s.data, BS }, status = { s.status, 1 };
	struct vuf_buf out[2] = { hdr, data }, in[2] = { data, status };

	vuf_gpa_write(f, s.hdr, &h, sizeof(h));
	int head = type ? vuf_vq_add(q->vq, out, 2, &status, 1, false)
			: vuf_vq_add(q->vq, &hdr, 1, in, 2, false);
	if (head < 0)
		return -1;
	q->slots[head] = s;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 6 && !(argc == 7 && !strcmp(argv[6], "packed"))) {
		fprintf(stderr, "usage: blk-bench SOCKET read|write QUEUE_DEPTH QUEUES SECONDS [packed]\n");
		return 2;
	}
	type = !strcmp(argv[2], "write");
	unsigned qd = atoi(argv[3]), nq = atoi(argv[4]);
	double seconds = atof(argv[5]);
	struct vuf *f = vuf_connect(argv[1], 5000);
	uint64_t want = 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_RING_F_EVENT_IDX |
			1ull << VHOST_USER_F_PROTOCOL_FEATURES | 1ull << 12 /* VIRTIO_BLK_F_MQ */;
	uint64_t pf = 1ull << VU_PF_MQ | 1ull << VU_PF_REPLY_ACK | 1ull << VU_PF_CONFIG;
	bool packed = argc == 7;

	if (packed)
		want |= 1ull << VIRTIO_F_RING_PACKED;

	if (!f || qd < 1 || qd > 128 || nq < 1 || nq > VUF_MAX_QUEUES ||
	    vuf_mem_init(f, 1, 64ull << 20, 0) < 0 || vuf_negotiate(f, want, pf) < 0) {
		fprintf(stderr, "blk-bench: %s\n", f ? vuf_error(f) : "cannot connect");
		return 1;
	}
	if (packed && !(f->features & (1ull << VIRTIO_F_RING_PACKED))) {
		fprintf(stderr, "blk-bench: the back-end does not offer packed virtqueues\n");
		return 1;
	}
	uint8_t cfg[8];
	if (vuf_get_config(f, 0, 8, cfg) != 8 + VU_CONFIG_HDR_SIZE) {
		fprintf(stderr, "blk-bench: no config space\n");
		return 1;
	}
	memcpy(&capacity, cfg, 8);
	capacity = capacity * SECTOR / BS;

	struct bench_queue q[VUF_MAX_QUEUES];
	struct pollfd pfd[VUF_MAX_QUEUES];
	for (unsigned i = 0; i < nq; i++) {
		q[i].vq = vuf_vq_setup(f, i, 256, 0);
		q[i].slots = calloc(256, sizeof(struct slot));
		q[i].spare = calloc(qd, sizeof(struct slot));
		if (!q[i].vq || !q[i].slots || !q[i].spare) {
			fprintf(stderr, "blk-bench: queue %u: %s\n", i, vuf_error(f));
			return 1;
		}
		for (q[i].nspare = 0; q[i].nspare < qd; q[i].nspare++) {
			struct slot *s = &q[i].spare[q[i].nspare];
			s->hdr = vuf_alloc(f, 16, 16);
			s->data = vuf_alloc(f, BS, BS);
			s->status = vuf_alloc(f, 1, 1);
		}
		pfd[i] = (struct pollfd){ .fd = q[i].vq->call_fd, .events = POLLIN };
	}

	uint64_t ios = 0, errors = 0;
	int64_t start = vuf_now_ms(), end = start + (int64_t)(seconds * 1000);
	while (vuf_now_ms() < end) {
		for (unsigned i = 0; i < nq; i++) {
			uint16_t old = q[i].vq->avail_idx;
			while (q[i].nspare)
				submit(f, &q[i]);
			if (vuf_vq_kick_needed(q[i].vq, old))
				vuf_vq_kick(q[i].vq);
		}
		bool any = false;
		for (unsigned i = 0; i < nq; i++) {
			uint32_t id, len;
			while (vuf_vq_used_pending(q[i].vq) && vuf_vq_wait_used(q[i].vq, &id, &len, 0) == 0) {
				uint8_t st = 1;
				vuf_gpa_read(f, q[i].slots[id].status, &st, 1);
				errors += st != 0;
				q[i].spare[q[i].nspare++] = q[i].slots[id];
				ios++;
				any = true;
			}
		}
		if (!any && poll(pfd, nq, 1000) > 0) {
			uint64_t n;
			for (unsigned i = 0; i < nq; i++)
				if (pfd[i].revents && read(pfd[i].fd, &n, sizeof(n)) < 0)
					break;
		}
	}
	double took = (vuf_now_ms() - start) / 1000.0;
	printf("ios=%llu seconds=%.3f errors=%llu\n", (unsigned long long)ios, took,
	       (unsigned long long)errors);
	vuf_close(f);
	return errors ? 1 : 0;
}
