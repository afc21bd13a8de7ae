/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Block benchmark driver: drives any vhost-user-blk back-end (vhostbox, QEMU's
 * qemu-storage-daemon, ...) through the test front-end with 4 KiB random reads
 * or writes at a fixed queue depth per queue, waiting on call eventfds like a
 * guest would, and prints "ios=N seconds=S".
 *
 *   blk-bench SOCKET read|write QUEUE_DEPTH QUEUES SECONDS [packed] [log]
 *
 * "packed" asks for packed virtqueues (VIRTIO_F_RING_PACKED): it fails if the
 * back-end does not offer them. With "log", the back-end runs as during a live
 * migration's precopy: VHOST_F_LOG_ALL and a dirty log (LOG_SHMFD) over all of guest
 * memory, every ring logged, and the log read and cleared every 100 ms as QEMU's sync
 * does; "marked=N" counts the pages found marked (a back-end that did not log would
 * show 0).
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test/dirty-log.h"
#include "test/frontend.h"

#define BS 4096
#define SECTOR 512
#define RAM (64ull << 20)
#define LOG_SYNC_MS 100

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

/* Takes the marked pages out of the log, as the front-end's sync does; returns how many. */
static uint64_t log_sync(struct vuf_log *log)
{
	uint64_t n = 0, *w = (uint64_t *)log->bits;

	for (size_t i = 0; i < log->size / 8; i++)
		if (__atomic_load_n(&w[i], __ATOMIC_RELAXED))
			n += __builtin_popcountll(__atomic_exchange_n(&w[i], 0, __ATOMIC_ACQ_REL));
	return n;
}

int main(int argc, char **argv)
{
	bool packed = false, logging = false, usage = argc < 6;

	for (int i = 6; i < argc; i++) {
		if (!strcmp(argv[i], "packed"))
			packed = true;
		else if (!strcmp(argv[i], "log"))
			logging = true;
		else
			usage = true;
	}
	if (usage) {
		fprintf(stderr, "usage: blk-bench SOCKET read|write QUEUE_DEPTH QUEUES SECONDS [packed] [log]\n");
		return 2;
	}
	type = !strcmp(argv[2], "write");
	unsigned qd = atoi(argv[3]), nq = atoi(argv[4]);
	double seconds = atof(argv[5]);
	struct vuf *f = vuf_connect(argv[1], 5000);
	uint64_t want = 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_RING_F_EVENT_IDX |
			1ull << VHOST_USER_F_PROTOCOL_FEATURES | 1ull << 12 /* VIRTIO_BLK_F_MQ */;
	uint64_t pf = 1ull << VU_PF_MQ | 1ull << VU_PF_REPLY_ACK | 1ull << VU_PF_CONFIG;
	struct vuf_log log = { .fd = -1 };

	if (packed)
		want |= 1ull << VIRTIO_F_RING_PACKED;
	if (logging) {
		want |= 1ull << VHOST_F_LOG_ALL;
		pf |= 1ull << VU_PF_LOG_SHMFD;
	}
	if (!f || qd < 1 || qd > 128 || nq < 1 || nq > VUF_MAX_QUEUES ||
	    vuf_mem_init(f, 1, RAM, 0) < 0 || vuf_negotiate(f, want, pf) < 0) {
		fprintf(stderr, "blk-bench: %s\n", f ? vuf_error(f) : "cannot connect");
		return 1;
	}
	if (packed && !(f->features & (1ull << VIRTIO_F_RING_PACKED))) {
		fprintf(stderr, "blk-bench: the back-end does not offer packed virtqueues\n");
		return 1;
	}
	/* One bit per page of guest-physical memory up to the end of RAM, rounded to 8 bytes. */
	if (logging && (!(f->features & (1ull << VHOST_F_LOG_ALL)) || !(f->protocol_features & (1ull << VU_PF_LOG_SHMFD)) ||
			!vuf_log_init(&log, ((VUF_RAM_BASE + RAM) / VU_LOG_PAGE / 8 + 7) / 8 * 8) ||
			vuf_log_send(f, &log) < 0)) {
		fprintf(stderr, "blk-bench: the back-end does not take a dirty log: %s\n", vuf_error(f));
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
		if (!q[i].vq || !q[i].slots || !q[i].spare || (logging && vuf_log_ring(q[i].vq) < 0)) {
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

	uint64_t ios = 0, errors = 0, marked = 0;
	int64_t start = vuf_now_ms(), end = start + (int64_t)(seconds * 1000), next_sync = start + LOG_SYNC_MS;
	while (vuf_now_ms() < end) {
		if (logging && vuf_now_ms() >= next_sync) {
			marked += log_sync(&log);
			next_sync += LOG_SYNC_MS;
		}
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
	if (logging)
		marked += log_sync(&log);
	printf("ios=%llu seconds=%.3f errors=%llu marked=%llu\n", (unsigned long long)ios, took,
	       (unsigned long long)errors, (unsigned long long)marked);
	vuf_close(f);
	vuf_log_free(&log);
	return errors ? 1 : 0;
}
