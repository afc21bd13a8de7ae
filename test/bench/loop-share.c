/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * How long one guest can stall another that shares the back-end's loop. Two rng
 * connections to one back-end process: A fills its 256-entry ring with requests
 * whose indirect tables hold DESCS descriptors each (the longest legal chain by
 * default) and kicks once; B then asks for 64 bytes and times the answer.
 * Prints "b_wait_ms=N a_done_ms=N" (B's wait, and how long A's ring took).
 * DESCS above 65536 makes a hostile table: 16-bit next indices can reach only
 * its first 65536 entries, so the chain loops until a walker gives up.
 *
 *   loop-share SOCKET_A SOCKET_B [DESCS]
 */
#include <stdio.h>
#include <stdlib.h>

#include "test/frontend.h"

#define RING 256

static struct vuf *ready(const char *path, uint64_t ram)
{
	struct vuf *f = vuf_connect(path, 2000);
	uint64_t features = 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_RING_F_INDIRECT_DESC |
			    1ull << VHOST_USER_F_PROTOCOL_FEATURES;

	if (!f || vuf_mem_init(f, 1, ram, 0) < 0 || vuf_negotiate(f, features, 1ull << VU_PF_REPLY_ACK) < 0) {
		fprintf(stderr, "loop-share: %s: %s\n", path, f ? vuf_error(f) : "cannot connect");
		exit(1);
	}
	return f;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: loop-share SOCKET_A SOCKET_B [DESCS]\n");
		return 2;
	}
	unsigned descs = argc > 3 ? (unsigned)atoi(argv[3]) : 32768;
	uint64_t table_size = (uint64_t)descs * 16;
	struct vuf *a = ready(argv[1], (table_size + (8 << 20)) & ~0xfffffull), *b = ready(argv[2], 4 << 20);
	struct vuf_vq *qa = vuf_vq_setup(a, 0, RING, 0), *qb = vuf_vq_setup(b, 0, 64, 0);
	uint64_t byte = vuf_alloc(a, 64, 64);
	uint64_t table = vuf_alloc(a, table_size, 16);
	uint64_t out = vuf_alloc(b, 64, 64);

	if (!qa || !qb || !byte || !table || !out || descs == 0) {
		fprintf(stderr, "loop-share: set-up failed\n");
		return 1;
	}
	/* One table of 1-byte buffers, shared by every request of A (only what a chain reaches is written). */
	struct vring_desc *t = vuf_gpa(a, table, table_size);
	for (unsigned i = 0; i < descs && i <= 0xffff; i++)
		t[i] = (struct vring_desc){ byte, 1, VRING_DESC_F_WRITE | (i + 1 < descs ? VRING_DESC_F_NEXT : 0),
					    (uint16_t)(i + 1) };
	for (unsigned i = 0; i < RING; i++) {
		vuf_vq_write_desc(qa, i, table, (uint32_t)table_size, VRING_DESC_F_INDIRECT, 0);
		vuf_vq_push_avail(qa, (uint16_t)i);
	}

	struct vuf_buf buf = { out, 64 };
	uint32_t id, len;
	int64_t t0 = vuf_now_ms();
	vuf_vq_kick(qa);
	if (vuf_vq_add(qb, NULL, 0, &buf, 1, false) < 0 || vuf_vq_kick(qb) < 0 ||
	    vuf_vq_wait_used(qb, &id, &len, 60000) < 0) {
		fprintf(stderr, "loop-share: B got no answer\n");
		return 1;
	}
	int64_t b_wait = vuf_now_ms() - t0;
	/* Until A's ring is done, or broken (a hostile table). */
	while (__atomic_load_n(&qa->used->idx, __ATOMIC_ACQUIRE) != RING && vuf_now_ms() - t0 < 60000 &&
	       !vuf_vq_wait_err(qa, 0))
		;
	printf("b_wait_ms=%lld a_done_ms=%lld\n", (long long)b_wait, (long long)(vuf_now_ms() - t0));
	vuf_close(a);
	vuf_close(b);
	return 0;
}
