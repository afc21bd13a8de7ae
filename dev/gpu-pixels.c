/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Where a 2D resource's pixels live. Every resource starts on the heap. When a
 * scanout first shows a big one, its pixels move into a memfd sized for two
 * buffers (the second stays a hole until used): its updates then leave by
 * splice, the front-end reading our pages with no copy on the way, which is
 * the one copy per frame a socket would otherwise cost.
 *
 * The price: pages handed to the socket must not change until the front-end
 * has read them. A transfer that replaces every pixel therefore fills the other
 * buffer (copying nothing else), and one that replaces a part waits, as does a
 * whole one when the front-end still reads both buffers.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "dev/gpu.h"
#include "dev/gpu-chan.h"
#include "proto/log.h"

#define SHARE_MIN (1u << 20)         /* smaller pixels stay on the heap: copying them is cheap */
#define STREAM_MIN (256u << 10)      /* copies this big bypass the cache */

uint32_t gpu_pixels_alloc(struct gpu_pixels *p, uint64_t size)
{
	*p = (struct gpu_pixels){ .size = size, .fd = -1, .cur = calloc(1, size) };
	return p->cur ? 0 : VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
}

void gpu_pixels_free(struct gpu *g, struct gpu_pixels *p)
{
	if (p->fd >= 0) {
		/* Pages still queued on the socket stay alive: the kernel holds them. */
		munmap(p->map, 2 * p->size);
		close(p->fd);
		g->shared_pixels--;
		if (p->second)
			g->used_memory -= p->size;
	} else {
		free(p->cur);
	}
	memset(p, 0, sizeof(*p));
	p->fd = -1;
}

void gpu_pixels_share(struct gpu *g, struct gpu_pixels *p)
{
	if (p->fd >= 0 || p->size < SHARE_MIN || g->shared_pixels >= GPU_MAX_SHARED)
		return;
	int fd = memfd_create("vhostbox-gpu-pixels", MFD_CLOEXEC);
	uint8_t *map = MAP_FAILED;
	if (fd >= 0 && ftruncate(fd, 2 * p->size) == 0)
		map = mmap(NULL, 2 * p->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		vu_debug("gpu: pixels stay on the heap (no memfd: %m)");
		if (fd >= 0)
			close(fd);
		return;
	}
	memcpy(map, p->cur, p->size);
	free(p->cur);
	p->fd = fd;
	p->map = p->cur = map;
	p->idx = 0;
	p->ticket[0] = p->ticket[1] = 0;
	g->shared_pixels++;
}

uint8_t *gpu_pixels_for_write(struct gpu *g, struct gpu_pixels *p, bool whole, uint64_t *ticket)
{
	if (p->fd < 0 || !gpu_chan_reading(g, p->ticket[p->idx]))
		return p->cur;
	unsigned other = !p->idx;
	*ticket = p->ticket[p->idx];
	if (!whole)
		return NULL;
	if (!p->second) {
		if (!gpu_charge(g, p->size))
			return NULL; /* no room for a second buffer: wait for the first */
		p->second = true;
	} else if (gpu_chan_reading(g, p->ticket[other])) {
		*ticket = p->ticket[other] < *ticket ? p->ticket[other] : *ticket;
		return NULL;
	}
	p->idx = other;
	p->cur = p->map + other * p->size;
	return p->cur;
}

void gpu_pixels_copy(uint8_t *dst, const uint8_t *src, size_t len)
{
#ifdef __SSE2__
	if (len >= STREAM_MIN) {
		size_t head = -(uintptr_t)dst & 15;
		memcpy(dst, src, head);
		dst += head, src += head, len -= head;
		for (; len >= 64; dst += 64, src += 64, len -= 64) {
			__m128i a = _mm_loadu_si128((const __m128i *)src), b = _mm_loadu_si128((const __m128i *)src + 1),
				c = _mm_loadu_si128((const __m128i *)src + 2), d = _mm_loadu_si128((const __m128i *)src + 3);
			_mm_stream_si128((__m128i *)dst, a);
			_mm_stream_si128((__m128i *)dst + 1, b);
			_mm_stream_si128((__m128i *)dst + 2, c);
			_mm_stream_si128((__m128i *)dst + 3, d);
		}
		_mm_sfence(); /* streaming stores are weakly ordered: done before anyone reads */
	}
#endif
	memcpy(dst, src, len);
}
