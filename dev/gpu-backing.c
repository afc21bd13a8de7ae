/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The guest pages behind a resource: RESOURCE_ATTACH_BACKING's entries, checked
 * against guest memory and charged against --max-memory, translated into host
 * iovecs once (and again when guest memory changes), and read by transfers.
 */
#include <stdlib.h>
#include <string.h>

#include "dev/gpu.h"
#include "proto/log.h"
#include "proto/mem.h"

#define MAX_ENTRY_SPLIT 8            /* guest memory regions one backing entry may cross */

/* Bytes one entry costs while attached: the entry, its iovecs and their offsets. */
#define ENTRY_COST (sizeof(struct virtio_gpu_mem_entry) + 2 * (sizeof(struct iovec) + sizeof(uint64_t)))

void gpu_backing_free(struct gpu *g, struct gpu_backing *b)
{
	if (b->entries)
		g->used_memory -= (uint64_t)b->nentries * ENTRY_COST;
	free(b->entries);
	free(b->iov);
	free(b->iov_end);
	memset(b, 0, sizeof(*b));
}

uint32_t gpu_backing_attach(struct gpu *g, struct gpu_cmd *cmd, struct gpu_backing *b)
{
	struct virtio_gpu_resource_attach_backing ab;
	const size_t at = sizeof(ab);

	if (!gpu_cmd_read(cmd, 0, &ab, sizeof(ab)))
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	if (ab.nr_entries == 0 || ab.nr_entries > GPU_MAX_BACKING ||
	    cmd->out_bytes - at < (uint64_t)ab.nr_entries * sizeof(struct virtio_gpu_mem_entry))
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	if (!g->mem)
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	if (!gpu_charge(g, (uint64_t)ab.nr_entries * ENTRY_COST))
		return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
	memset(b, 0, sizeof(*b));
	b->nentries = ab.nr_entries;
	b->entries = malloc(ab.nr_entries * sizeof(*b->entries));
	if (!b->entries) {
		g->used_memory -= (uint64_t)ab.nr_entries * ENTRY_COST;
		return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
	}
	gpu_cmd_read(cmd, at, b->entries, ab.nr_entries * sizeof(*b->entries));
	for (unsigned i = 0; i < b->nentries; i++) {
		const struct virtio_gpu_mem_entry *e = &b->entries[i];
		if (!vu_mem_gpa_valid(g->mem, e->addr, e->length)) {
			vu_debug("gpu: backing entry %u (0x%llx + %u) is outside guest memory", i,
				 (unsigned long long)e->addr, e->length);
			gpu_backing_free(g, b);
			return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
		}
		b->size += e->length;
	}
	if (!gpu_backing_map(g, b)) {
		gpu_backing_free(g, b);
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	}
	return 0;
}

bool gpu_backing_map(struct gpu *g, struct gpu_backing *b)
{
	struct iovec tmp[MAX_ENTRY_SPLIT];
	unsigned n = 0;

	if (!g->mem)
		return false;
	for (unsigned i = 0; i < b->nentries; i++) {
		int k = vu_mem_gpa_iov(g->mem, b->entries[i].addr, b->entries[i].length, tmp, MAX_ENTRY_SPLIT);
		if (k < 0)
			return false;
		n += k;
	}
	/* At most 2 iovecs per entry were charged; more splits are unusual but fine. */
	struct iovec *iov = realloc(b->iov, (n ? n : 1) * sizeof(*iov));
	uint64_t *end = iov ? realloc(b->iov_end, (n ? n : 1) * sizeof(*end)) : NULL;
	if (iov)
		b->iov = iov;
	if (end)
		b->iov_end = end;
	if (!iov || !end)
		return false;
	unsigned j = 0;
	uint64_t off = 0;
	for (unsigned i = 0; i < b->nentries; i++) {
		/* The entry's iovecs land at base; merging moves j back behind what is still unread. */
		unsigned base = j;
		int k = vu_mem_gpa_iov(g->mem, b->entries[i].addr, b->entries[i].length, b->iov + base, n - base);
		for (int m = 0; m < k; m++) {
			struct iovec *v = &b->iov[base + m];
			off += v->iov_len;
			/* Pages that follow each other in host memory become one iovec: fewer, longer copies. */
			if (j && (uint8_t *)b->iov[j - 1].iov_base + b->iov[j - 1].iov_len == (uint8_t *)v->iov_base) {
				b->iov[j - 1].iov_len += v->iov_len;
				b->iov_end[j - 1] = off;
				continue;
			}
			b->iov[j] = *v;
			b->iov_end[j++] = off;
		}
	}
	b->niov = j;
	return true;
}

void gpu_backing_read(const struct gpu_backing *b, uint64_t off, uint8_t *dst, size_t len)
{
	unsigned lo = 0, hi = b->niov;

	while (lo < hi) { /* the first iovec ending after off */
		unsigned mid = (lo + hi) / 2;
		if (b->iov_end[mid] > off)
			hi = mid;
		else
			lo = mid + 1;
	}
	for (unsigned i = lo; len && i < b->niov; i++) {
		uint64_t start = b->iov_end[i] - b->iov[i].iov_len;
		size_t in = off - start, n = b->iov[i].iov_len - in;
		if (n > len)
			n = len;
		gpu_pixels_copy(dst, (uint8_t *)b->iov[i].iov_base + in, n);
		dst += n;
		off += n;
		len -= n;
	}
}
