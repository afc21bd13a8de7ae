/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rb: a virtqueue laid out by hand in guest memory, split or packed (RB_PACKED),
 * so unit tests drive proto/vring*.c (and proto/mem.c) directly: no back-end
 * process, no socket.
 *
 * Guest RAM is two memfd-backed regions registered in rb->mem with vu_mem_add,
 * each mapped twice: by vu_mem_add (the back-end's view, what the walker reads)
 * and here (the driver's view, what the test writes). Region 1 starts in guest-
 * physical space where region 0 ends, but the two are apart in both views, so a
 * buffer may cross from one region into the other. Region 0 holds the descriptor
 * table, the avail ring, the used ring (packed: the descriptor ring and the driver's
and the device's event suppression structures), then what rb_alloc hands out; region 1 is
 * left for buffers placed by hand. Front-end (user) addresses are the guest-
 * physical ones plus RB_UVA_DELTA, so a walker mixing the two up fails.
 *
 * The ring is mapped and ready after rb_init; the test may still change rb->vq
 * (num, features, addresses) and call vu_vring_map again.
 */
#ifndef VU_TEST_RING_BUILDER_H
#define VU_TEST_RING_BUILDER_H

#include <stdbool.h>
#include <stdint.h>

#include "proto/mem.h"
#include "proto/vring.h"

#define RB_GPA 0x100000ull               /* guest-physical address of region 0 */
#define RB_RAM0 (4ull << 20)             /* its size: room for 32768-entry tables */
#define RB_RAM1 (1ull << 20)             /* region 1: RB_GPA + RB_RAM0 onwards */
#define RB_END (RB_GPA + RB_RAM0 + RB_RAM1) /* the first byte after guest RAM */
#define RB_UVA_DELTA 0x7e0000000000ull   /* front-end address = gpa + this */

/* rb_init flags: the ring's negotiated features, and its layout. */
enum { RB_EVENT_IDX = 1, RB_INDIRECT = 2, RB_PACKED = 4 };

struct rb {
	struct vu_mem mem;
	struct vu_vring vq;       /* signal_inband, defer and err_fd are the counters below */

	/* The driver's view. */
	uint8_t *ram[2];
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t *used_event;     /* avail->ring[num] (EVENT_IDX: "notify me past this") */
	uint16_t *avail_event;    /* used->ring[num] (EVENT_IDX: "kick me past this") */
	uint16_t avail_idx;       /* the driver's next avail index (rb_offer publishes it) */
	uint64_t next;            /* rb_alloc's next free guest-physical address */

	/* The driver's view of a packed ring (RB_PACKED). */
	struct vring_packed_desc *pdesc;
	struct vring_packed_event *driver_event; /* the driver's wishes: notify me or not */
	struct vring_packed_event *device_event; /* the device's: kick me or not */
	uint64_t pdesc_gpa;
	uint16_t next_avail;      /* where the driver makes the next descriptor available */
	bool avail_wrap;          /* the driver's wrap counter there */
	uint16_t next_used;       /* where the driver looks for the next used descriptor */
	bool used_wrap;           /* the wrap counter a used descriptor there has */
	uint16_t *chain;          /* per buffer id: ring descriptors of its chain (to skip) */

	/* What the ring did. */
	unsigned signals;         /* notifications sent (no call fd: signal_inband) */
	unsigned defers;          /* calls of the defer hook (ring over its turn budget) */
	char log[512];            /* what the last rb_pop logged: why the ring broke */
};

/* A memfd of size bytes (zeros), or -1. */
int rb_memfd(uint64_t size);

/*
 * Lays out a ring of num entries (split: a power of two; at most 32768). 0, or -1
 * with a note. A packed ring starts at position 0 with both wrap counters 1.
 */
int rb_init(struct rb *rb, unsigned num, unsigned flags);
void rb_fini(struct rb *rb);

/* The driver's pointer to guest-physical gpa (region 0 or 1), or NULL outside RAM. */
void *rb_host(struct rb *rb, uint64_t gpa);
/* The back-end's pointer to gpa (what the walker's iovecs must point at). */
void *rb_backend(struct rb *rb, uint64_t gpa);
/*
 * Guest-physical room for len bytes in region 0, aligned (a power of two). When
 * region 0 is full: an address outside guest RAM (and a note), so the test fails.
 */
uint64_t rb_alloc(struct rb *rb, uint64_t len, uint64_t align);

/* Writes one descriptor. */
void rb_desc(struct vring_desc *d, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next);
/*
 * Writes a chain into table (rb->desc or an indirect table) at entries first,
 * first + 1, ...: n_out device-readable then n_in device-writable buffers of len
 * bytes each, freshly allocated. Returns first.
 */
uint16_t rb_chain(struct rb *rb, struct vring_desc *table, uint16_t first, unsigned n_out,
		  unsigned n_in, uint32_t len);
/* An indirect table of n entries in guest RAM: the driver's pointer, its gpa in *gpa. */
struct vring_desc *rb_table(struct rb *rb, unsigned n, uint64_t *gpa);

/* Makes head available: the next avail entry, then avail->idx (release). */
void rb_offer(struct rb *rb, uint16_t head);
/* ---- packed rings ---- */

/* The flags that make a descriptor available in the lap whose driver wrap counter is wrap. */
uint16_t rb_avail_flags(bool wrap);
/*
 * Makes a chain of n descriptors available with buffer id in each: their addr, len
 * and flags (WRITE, INDIRECT; NEXT is set here on all but the last) from d; the
 * AVAIL/USED bits are those of each position; the head's flags are written last.
 * Returns the head's position.
 */
uint16_t rb_packed_add(struct rb *rb, uint16_t id, const struct vring_packed_desc *d, unsigned n);
/* n_out device-readable then n_in device-writable buffers of len bytes, freshly allocated. */
uint16_t rb_packed_chain(struct rb *rb, uint16_t id, unsigned n_out, unsigned n_in, uint32_t len);
/*
 * The next used descriptor, if the device wrote it: 1 with its id, len and flags
 * (NULL: not wanted), the driver then skips the buffer's chain; else 0.
 */
int rb_packed_used(struct rb *rb, uint16_t *id, uint32_t *len, uint16_t *flags);

/* vu_vring_pop, with what it logs (the reason a ring broke) caught in rb->log. */
int rb_pop(struct rb *rb, struct vu_req *req);
/* vu_vring_pop_burst, likewise. */
int rb_pop_burst(struct rb *rb, struct vu_req *reqs, unsigned n);
/* How often the error eventfd was signalled since the last call. */
unsigned rb_errors(struct rb *rb);

#endif
