/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/mem.h"

/* A memfd sealed against shrinking cannot lose pages under us; anything else may. */
static bool may_shrink(int fd)
{
	int seals = fcntl(fd, F_GET_SEALS);
	return seals < 0 || !(seals & F_SEAL_SHRINK);
}

/* Index of the region containing gpa, or -1. Binary search over sorted regions. */
static int find_gpa(const struct vu_mem *mem, uint64_t gpa)
{
	int lo = 0, hi = (int)mem->n - 1;

	while (lo <= hi) {
		int mid = lo + (hi - lo) / 2;
		const struct vu_region *r = &mem->r[mid];
		if (gpa < r->gpa)
			hi = mid - 1;
		else if (gpa - r->gpa >= r->size)
			lo = mid + 1;
		else
			return mid;
	}
	return -1;
}

/*
 * Maps [offset, offset + size) of fd (always closed) at *host. The mapping is
 * guarded when the file may shrink under it. NULL or why not.
 */
static const char *map_fd(struct vu_mem *mem, int fd, uint64_t offset, uint64_t size, int flags,
			  struct vu_mapping *m, uint8_t **host)
{
	long page = sysconf(_SC_PAGESIZE);
	struct stat st;
	const char *why = NULL;

	if (size == 0)
		why = "mapping of size 0";
	else if (offset + size < offset || size > SIZE_MAX / 2)
		why = "mapping range overflows";
	else if (fstat(fd, &st) < 0)
		why = "fd cannot be examined";
	else if (S_ISREG(st.st_mode) && offset + size > (uint64_t)st.st_size)
		why = "mapping lies beyond the end of its fd";
	if (!why) {
		uint64_t skew = offset % page;
		m->len = size + skew;
		m->base = mmap(NULL, m->len, PROT_READ | PROT_WRITE, MAP_SHARED | flags, fd, offset - skew);
		if (m->base == MAP_FAILED) {
			why = "fd cannot be mapped";
		} else {
			*host = (uint8_t *)m->base + skew;
			m->guard = mem->on_lost && may_shrink(fd) ?
					   vu_sigbus_guard(m->base, m->len, mem->on_lost, mem->lost_opaque) : -1;
		}
	}
	close(fd);
	return why;
}

static void unmap(const struct vu_mapping *m)
{
	vu_sigbus_unguard(m->guard);
	munmap(m->base, m->len);
}

const char *vu_mem_add(struct vu_mem *mem, const struct vu_mem_region *d, int fd)
{
	const char *why = NULL;

	if (mem->n >= VU_MAX_MEM_SLOTS)
		why = "no free memory slot";
	else if (d->guest_phys_addr + d->memory_size < d->guest_phys_addr ||
		 d->userspace_addr + d->memory_size < d->userspace_addr)
		why = "region range overflows";
	/* Reject overlap with any existing region (in guest physical space). */
	for (unsigned i = 0; i < mem->n && !why; i++) {
		const struct vu_region *r = &mem->r[i];
		if (d->guest_phys_addr < r->gpa + r->size && r->gpa < d->guest_phys_addr + d->memory_size)
			why = "region overlaps another region";
	}
	if (why) {
		close(fd);
		return why;
	}
	struct vu_mapping m;
	uint8_t *host;
	why = map_fd(mem, fd, d->mmap_offset, d->memory_size, MAP_NORESERVE, &m, &host);
	if (why)
		return why;

	unsigned pos = 0;
	while (pos < mem->n && mem->r[pos].gpa < d->guest_phys_addr)
		pos++;
	memmove(&mem->r[pos + 1], &mem->r[pos], (mem->n - pos) * sizeof(mem->r[0]));
	mem->r[pos] = (struct vu_region){
		.gpa = d->guest_phys_addr, .size = d->memory_size, .uva = d->userspace_addr,
		.host = host, .map = m,
	};
	mem->n++;
	return NULL;
}

const char *vu_mem_remove(struct vu_mem *mem, const struct vu_mem_region *d)
{
	for (unsigned i = 0; i < mem->n; i++) {
		struct vu_region *r = &mem->r[i];
		if (r->gpa == d->guest_phys_addr && r->size == d->memory_size &&
		    r->uva == d->userspace_addr) {
			unmap(&r->map);
			memmove(r, r + 1, (mem->n - i - 1) * sizeof(*r));
			mem->n--;
			return NULL;
		}
	}
	return "no such memory region";
}

void vu_mem_clear(struct vu_mem *mem)
{
	for (unsigned i = 0; i < mem->n; i++)
		unmap(&mem->r[i].map);
	mem->n = 0;
}

int vu_mem_region_of(const struct vu_mem *mem, uint64_t gpa)
{
	return find_gpa(mem, gpa);
}

void *vu_mem_gpa(const struct vu_mem *mem, uint64_t gpa, uint64_t len)
{
	int i = find_gpa(mem, gpa);

	if (i < 0)
		return NULL;
	const struct vu_region *r = &mem->r[i];
	if (len > r->size - (gpa - r->gpa))
		return NULL;
	return r->host + (gpa - r->gpa);
}

void *vu_mem_uva(const struct vu_mem *mem, uint64_t uva, uint64_t len)
{
	for (unsigned i = 0; i < mem->n; i++) {
		const struct vu_region *r = &mem->r[i];
		if (uva >= r->uva && uva - r->uva < r->size && len <= r->size - (uva - r->uva))
			return r->host + (uva - r->uva);
	}
	return NULL;
}

bool vu_mem_gpa_valid(const struct vu_mem *mem, uint64_t gpa, uint64_t len)
{
	if (gpa + len < gpa)
		return false;
	while (len) {
		int i = find_gpa(mem, gpa);
		if (i < 0)
			return false;
		uint64_t left = mem->r[i].size - (gpa - mem->r[i].gpa);
		if (left >= len)
			return true;
		gpa += left;
		len -= left;
	}
	return true;
}

int vu_mem_gpa_iov(const struct vu_mem *mem, uint64_t gpa, uint64_t len, struct iovec *iov,
		   unsigned max)
{
	unsigned n = 0;

	if (gpa + len < gpa)
		return -1;
	while (len) {
		int i = find_gpa(mem, gpa);
		if (i < 0 || n == max)
			return -1;
		const struct vu_region *r = &mem->r[i];
		uint64_t off = gpa - r->gpa;
		uint64_t chunk = r->size - off < len ? r->size - off : len;
		iov[n].iov_base = r->host + off;
		iov[n].iov_len = chunk;
		n++;
		gpa += chunk;
		len -= chunk;
	}
	return (int)n;
}

bool vu_mem_host_gpa(const struct vu_mem *mem, const void *p, uint64_t *gpa)
{
	const uint8_t *h = p;

	for (unsigned i = 0; i < mem->n; i++) {
		const struct vu_region *r = &mem->r[i];
		if (h >= r->host && (uint64_t)(h - r->host) < r->size) {
			*gpa = r->gpa + (uint64_t)(h - r->host);
			return true;
		}
	}
	return false;
}

void vu_mem_log_range(const struct vu_dirty_log *log, uint64_t gpa, uint64_t len)
{
	uint64_t first = gpa / VU_LOG_PAGE, last = (gpa + len - 1) / VU_LOG_PAGE;

	if (gpa + len - 1 < gpa)
		last = UINT64_MAX / VU_LOG_PAGE;
	/*
	 * Always the locked OR, even on a bit already set: testing first would let our
	 * writes to the page still sit in the store buffer while the front-end clears the
	 * bit and reads the page (a load may pass earlier stores), losing the change.
	 */
	for (uint64_t page = first; page <= last && page / 8 < log->size; page++)
		__atomic_fetch_or(&log->bits[page / 8], (uint8_t)(1u << (page % 8)), __ATOMIC_RELAXED);
}

void vu_mem_clear_log(struct vu_mem *mem)
{
	struct vu_dirty_log *log = &mem->log;

	if (log->bits)
		unmap(&log->map);
	*log = (struct vu_dirty_log){ .notify_fd = log->notify_fd, .wanted = log->wanted };
}

void vu_mem_want_log(struct vu_mem *mem, bool wanted)
{
	mem->log.wanted = wanted;
	mem->log.on = wanted && mem->log.bits;
}

const char *vu_mem_set_log(struct vu_mem *mem, int fd, const struct vu_log *where)
{
	struct vu_mapping m;
	uint8_t *bits;
	const char *why = map_fd(mem, fd, where->mmap_offset, where->mmap_size, 0, &m, &bits);

	if (why)
		return why;
	vu_mem_clear_log(mem);
	mem->log = (struct vu_dirty_log){
		.bits = bits, .size = where->mmap_size, .map = m, .notify_fd = mem->log.notify_fd,
		.wanted = mem->log.wanted, .on = mem->log.wanted,
	};
	return NULL;
}
