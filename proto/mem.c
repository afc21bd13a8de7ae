/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/mem.h"

static void unmap(struct vu_region *r)
{
	vu_sigbus_unguard(r->guard);
	munmap(r->map_base, r->map_len);
}

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

const char *vu_mem_add(struct vu_mem *mem, const struct vu_mem_region *d, int fd)
{
	const char *why = NULL;
	long page = sysconf(_SC_PAGESIZE);
	struct stat st;

	if (mem->n >= VU_MAX_MEM_SLOTS)
		why = "no free memory slot";
	else if (d->memory_size == 0)
		why = "region of size 0";
	else if (d->guest_phys_addr + d->memory_size < d->guest_phys_addr ||
		 d->userspace_addr + d->memory_size < d->userspace_addr ||
		 d->mmap_offset + d->memory_size < d->mmap_offset ||
		 d->memory_size > SIZE_MAX / 2)
		why = "region range overflows";
	else if (fstat(fd, &st) < 0)
		why = "region fd cannot be examined";
	else if (S_ISREG(st.st_mode) && d->mmap_offset + d->memory_size > (uint64_t)st.st_size)
		why = "region lies beyond the end of its fd";
	if (why) {
		close(fd);
		return why;
	}
	/* Reject overlap with any existing region (in guest physical space). */
	for (unsigned i = 0; i < mem->n; i++) {
		const struct vu_region *r = &mem->r[i];
		if (d->guest_phys_addr < r->gpa + r->size && r->gpa < d->guest_phys_addr + d->memory_size) {
			close(fd);
			return "region overlaps another region";
		}
	}

	uint64_t skew = d->mmap_offset % page;
	size_t len = d->memory_size + skew;
	void *base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd,
			  d->mmap_offset - skew);
	bool guard = base != MAP_FAILED && mem->on_lost && may_shrink(fd);
	close(fd);
	if (base == MAP_FAILED)
		return "region cannot be mapped";

	unsigned pos = 0;
	while (pos < mem->n && mem->r[pos].gpa < d->guest_phys_addr)
		pos++;
	memmove(&mem->r[pos + 1], &mem->r[pos], (mem->n - pos) * sizeof(mem->r[0]));
	mem->r[pos] = (struct vu_region){
		.gpa = d->guest_phys_addr, .size = d->memory_size, .uva = d->userspace_addr,
		.host = (uint8_t *)base + skew, .map_base = base, .map_len = len,
		.guard = guard ? vu_sigbus_guard(base, len, mem->on_lost, mem->lost_opaque) : -1,
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
			unmap(r);
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
		unmap(&mem->r[i]);
	mem->n = 0;
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
