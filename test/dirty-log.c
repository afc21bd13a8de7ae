/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "test/dirty-log.h"

bool vuf_log_init(struct vuf_log *log, size_t size)
{
	log->size = size;
	log->fd = memfd_create("vuf-dirty-log", MFD_CLOEXEC);
	log->bits = MAP_FAILED;
	if (log->fd >= 0 && ftruncate(log->fd, size) == 0)
		log->bits = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, log->fd, 0);
	if (log->bits == MAP_FAILED) {
		log->bits = NULL;
		vuf_log_free(log);
		return false;
	}
	return true;
}

void vuf_log_free(struct vuf_log *log)
{
	if (log->bits)
		munmap(log->bits, log->size);
	if (log->fd >= 0)
		close(log->fd);
	log->bits = NULL;
	log->fd = -1;
}

int vuf_log_send(struct vuf *f, const struct vuf_log *log)
{
	struct vu_log where = { .mmap_size = log->size }, reply;
	struct vu_hdr h;

	if (vuf_send(f, VU_REQ_SET_LOG_BASE, VU_FLAG_VERSION, &where, sizeof(where), &log->fd, 1) < 0)
		return -1;
	int n = vuf_recv(f, &h, &reply, sizeof(reply), f->timeout_ms);
	return n >= 0 && h.request == VU_REQ_SET_LOG_BASE && h.flags == (VU_FLAG_REPLY | VU_FLAG_VERSION) ? 0 : -1;
}

int vuf_log_ring(struct vuf_vq *vq)
{
	struct vu_vring_addr a = {
		.index = vq->index, .flags = VU_VRING_F_LOG,
		.desc_user_addr = (uintptr_t)vuf_gpa(vq->f, vq->desc_gpa, 1),
		.used_user_addr = (uintptr_t)vuf_gpa(vq->f, vq->used_gpa, 1),
		.avail_user_addr = (uintptr_t)vuf_gpa(vq->f, vq->avail_gpa, 1),
		.log_guest_addr = vq->used_gpa, /* packed: the device area, as QEMU sends it */
	};
	return vuf_request(vq->f, VU_REQ_SET_VRING_ADDR, &a, sizeof(a), NULL, 0);
}

bool vuf_log_marked(const struct vuf_log *log, uint64_t gpa)
{
	uint64_t page = gpa / VU_LOG_PAGE;
	return page / 8 < log->size && (log->bits[page / 8] & (1u << (page % 8)));
}

unsigned vuf_log_count_range(const struct vuf_log *log, uint64_t gpa, uint64_t len)
{
	unsigned n = 0;

	for (uint64_t page = gpa / VU_LOG_PAGE; len && page <= (gpa + len - 1) / VU_LOG_PAGE; page++)
		n += vuf_log_marked(log, page * VU_LOG_PAGE);
	return n;
}

unsigned vuf_log_count(const struct vuf_log *log)
{
	unsigned n = 0;

	for (size_t i = 0; i < log->size; i++)
		n += __builtin_popcount(log->bits[i]);
	return n;
}

void vuf_log_clear(struct vuf_log *log)
{
	memset(log->bits, 0, log->size);
}
