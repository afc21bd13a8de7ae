/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the disk devices (blk, scsi) do around one request queue: a pool of request
 * slots, the loop a kick runs (requests taken while slots last, their I/O submitted
 * and completions published in batches), completion and drain. The device says
 * what a request is (start) and holds its slots' other fields.
 */
#ifndef VU_DISK_QUEUE_H
#define VU_DISK_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dev/blk-io.h"
#include "proto/vring.h"

/* The first member of a device's slot. */
struct disk_slot {
	struct vu_req req;           /* as popped: kept until it is pushed */
	struct disk_slot *next_free;
};

struct disk_queue {
	struct vu_vring *vq;         /* while the ring runs */
	struct blk_io *io;           /* the engine the queue's I/O goes to */
	char *slots;                 /* nslots of slot_size bytes, each starting with a struct disk_slot */
	size_t slot_size;
	unsigned nslots;
	struct disk_slot *free;
	unsigned busy;               /* slots holding a request */
	bool starved;                /* requests were left on the ring for lack of a slot */
	bool dirty;                  /* completions pushed but not published */
};

/*
 * Makes the pool once: n slots of size bytes, each request described into the
 * max_iov iovecs at iov_offset in its slot. False when out of memory.
 */
bool disk_queue_slots(struct disk_queue *q, unsigned n, size_t size, size_t iov_offset, unsigned max_iov);
void disk_queue_free(struct disk_queue *q);
/* Slot i of the pool, for a device that looks through them. */
struct disk_slot *disk_queue_slot(struct disk_queue *q, unsigned i);

/*
 * Starts a popped request: DISK_DONE when it is complete (start pushed it with
 * disk_queue_complete), DISK_QUEUED when its I/O completes it later, DISK_BROKEN
 * when start failed the ring for it (the slot goes back unused).
 */
enum disk_start { DISK_DONE, DISK_QUEUED, DISK_BROKEN };
typedef enum disk_start (*disk_start_fn)(void *opaque, struct disk_queue *q, struct disk_slot *s);

/*
 * A kick: requests go into free slots and to start, their I/O is submitted and
 * completions published, until the ring stays empty or the slots run out (then
 * starved is set, and the device runs the queue again as completions free slots).
 */
void disk_queue_kick(struct disk_queue *q, disk_start_fn start, void *opaque);
/* Completes s with written bytes of guest memory, and gives its slot back. */
void disk_queue_complete(struct disk_queue *q, struct disk_slot *s, uint32_t written);
/* Publishes the completions pushed since the last time (after a batch). */
void disk_queue_publish(struct disk_queue *q);
/* After a batch of completions: whether the queue ran out of slots and has some again (cleared). */
bool disk_queue_refill(struct disk_queue *q);
/* Waits for everything the queue has in flight; the ring is stopping. */
void disk_queue_drain(struct disk_queue *q);

#endif
