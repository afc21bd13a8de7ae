/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Guest memory: the regions the front-end shared (SET_MEM_TABLE, ADD_MEM_REG,
 * REM_MEM_REG), mapped into this process. A translation succeeds only when the
 * whole range lies inside mapped memory; nothing outside a mapping is touched.
 */
#ifndef VU_MEM_H
#define VU_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "proto/sigbus.h"
#include "proto/wire.h"

#define VU_MAX_MEM_SLOTS 509

struct vu_region {
	uint64_t gpa;       /* guest physical address of the first byte */
	uint64_t size;
	uint64_t uva;       /* the front-end's address of the first byte */
	uint8_t *host;      /* our address of the first byte */
	void *map_base;     /* what mmap returned (page aligned) */
	size_t map_len;
	int guard;          /* its SIGBUS guard slot, or -1 (proto/sigbus.h) */
};

struct vu_mem {
	struct vu_region r[VU_MAX_MEM_SLOTS]; /* sorted by gpa, never overlapping */
	unsigned n;
	/* Told (on the main loop) when the front-end shrank a region's file under us. */
	vu_sigbus_fn on_lost;
	void *lost_opaque;
};

/* Maps a region from fd (always closed). Returns 0 or a reason. */
const char *vu_mem_add(struct vu_mem *mem, const struct vu_mem_region *desc, int fd);
/* Unmaps the region with the same gpa, size and uva. */
const char *vu_mem_remove(struct vu_mem *mem, const struct vu_mem_region *desc);
void vu_mem_clear(struct vu_mem *mem);

/* Host pointer for [gpa, gpa+len) if it lies in one region, else NULL. */
void *vu_mem_gpa(const struct vu_mem *mem, uint64_t gpa, uint64_t len);
/* Same for a front-end (user) address, used for ring addresses. */
void *vu_mem_uva(const struct vu_mem *mem, uint64_t uva, uint64_t len);

/* True if every byte of [gpa, gpa+len) is mapped (possibly across regions). */
bool vu_mem_gpa_valid(const struct vu_mem *mem, uint64_t gpa, uint64_t len);

/*
 * Appends iovecs for [gpa, gpa+len), split where the range crosses regions.
 * Returns the number of iovecs added, or -1 if the range leaves mapped memory
 * or needs more than max entries.
 */
int vu_mem_gpa_iov(const struct vu_mem *mem, uint64_t gpa, uint64_t len, struct iovec *iov,
		   unsigned max);

#endif
