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

/* A shared mapping of a file the front-end sent. */
struct vu_mapping {
	void *base;         /* what mmap returned (page aligned) */
	size_t len;
	int guard;          /* its SIGBUS guard slot, or -1 (proto/sigbus.h) */
};

struct vu_region {
	uint64_t gpa;       /* guest physical address of the first byte */
	uint64_t size;
	uint64_t uva;       /* the front-end's address of the first byte */
	uint8_t *host;      /* our address of the first byte */
	struct vu_mapping map;
};

/*
 * The dirty log of a live migration (SET_LOG_BASE): one bit per VU_LOG_PAGE of guest
 * physical memory, set atomically for every byte the back-end writes there, while
 * the front-end has acked VHOST_F_LOG_ALL (on).
 */
struct vu_dirty_log {
	uint8_t *bits;
	uint64_t size;      /* bytes of bits */
	struct vu_mapping map;
	int notify_fd;      /* SET_LOG_FD: signalled when used rings publish logged writes; -1: none */
	bool wanted;        /* the front-end acked VHOST_F_LOG_ALL */
	bool on;            /* wanted, and there is a log */
};

struct vu_mem {
	struct vu_region r[VU_MAX_MEM_SLOTS]; /* sorted by gpa, never overlapping */
	unsigned n;
	struct vu_dirty_log log;
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

/* The index in mem->r of the region holding gpa, or -1. */
int vu_mem_region_of(const struct vu_mem *mem, uint64_t gpa);

/* True if every byte of [gpa, gpa+len) is mapped (possibly across regions). */
bool vu_mem_gpa_valid(const struct vu_mem *mem, uint64_t gpa, uint64_t len);

/*
 * Appends iovecs for [gpa, gpa+len), split where the range crosses regions.
 * Returns the number of iovecs added, or -1 if the range leaves mapped memory
 * or needs more than max entries.
 */
int vu_mem_gpa_iov(const struct vu_mem *mem, uint64_t gpa, uint64_t len, struct iovec *iov,
		   unsigned max);

/* Maps the dirty log from fd (always closed); replaces the previous one. NULL or a reason. */
const char *vu_mem_set_log(struct vu_mem *mem, int fd, const struct vu_log *where);
void vu_mem_clear_log(struct vu_mem *mem);
/* VHOST_F_LOG_ALL acked or not: logging is on while it is and a log is mapped. */
void vu_mem_want_log(struct vu_mem *mem, bool wanted);

/*
 * The guest-physical address of host pointer p, which lies in a mapped region (the
 * back-end's view of guest memory, as translations hand out). False if it does not.
 * A walk over the regions: for the dirty log, not for every request.
 */
bool vu_mem_host_gpa(const struct vu_mem *mem, const void *p, uint64_t *gpa);

/* The slow path of vu_mem_log. */
void vu_mem_log_range(const struct vu_dirty_log *log, uint64_t gpa, uint64_t len);
/*
 * Marks [gpa, gpa + len) as written, when logging is on (bits past the log's end are
 * dropped). The back-end's writes reach it through proto/vring.c; a device calls it
 * only for guest memory it writes outside its requests' buffers.
 */
static inline void vu_mem_log(const struct vu_mem *mem, uint64_t gpa, uint64_t len)
{
	if (__builtin_expect(mem->log.on, 0) && len)
		vu_mem_log_range(&mem->log, gpa, len);
}

/*
 * Marks host bytes [p, p + len), which lie in one region (an iovec a translation
 * handed out), as written, when logging is on.
 */
static inline void vu_mem_log_host(const struct vu_mem *mem, const void *p, uint64_t len)
{
	uint64_t gpa;

	if (__builtin_expect(mem->log.on, 0) && len && vu_mem_host_gpa(mem, p, &gpa))
		vu_mem_log_range(&mem->log, gpa, len);
}

#endif
