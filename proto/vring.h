/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Split virtqueues. A request is popped as iovecs that point straight into
 * guest memory (device-readable first, then device-writable); completions are
 * pushed to the used ring and published in batches. Anything malformed marks
 * the queue broken: it is never processed again until it is set up anew.
 */
#ifndef VU_VRING_H
#define VU_VRING_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "proto/inflight.h"
#include "proto/mem.h"
#include "proto/wire.h"

struct vu_vring;
typedef void (*vu_vring_signal_fn)(struct vu_vring *vq);

/*
 * Work one ring may cost in one turn of its loop, in descriptors walked, so one
 * guest cannot stall the others that share the loop. A ring over it looks empty
 * until the next turn, and its owner's defer hook makes sure that turn comes.
 */
#define VU_VRING_TURN_BUDGET 4096

struct vu_vring {
	unsigned index;          /* for messages */
	/* Set by the session from SET_VRING_NUM / ADDR / BASE and the features. */
	unsigned num;
	uint64_t desc_uva, avail_uva, used_uva;
	uint16_t last_avail;     /* next avail entry to take: set it with vu_vring_set_base() */
	uint16_t avail_ready;    /* entries after it the last read of avail->idx showed */
	bool event_idx;
	bool indirect;
	bool log_used;           /* VU_VRING_F_LOG: used-ring writes go to the dirty log ... */
	uint64_t log_guest_addr; /* ... as writes at this guest physical address (the used ring's) */

	/* Host pointers, valid while mapped. */
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	const struct vu_mem *mem;

	uint16_t used_idx;       /* our copy of used->idx */
	uint16_t signalled_used; /* used idx at the last notification */
	bool signalled_valid;
	unsigned pending;        /* pushed but not yet published */
	bool broken;

	/* Inflight tracking (INFLIGHT_SHMFD), when the front-end gave us a region. */
	struct vu_inflight_queue *inflight;
	uint64_t inflight_counter;
	uint16_t *resubmit;      /* heads to hand out again after a restart, oldest first */
	unsigned resubmit_n, resubmit_pos;

	/* Descriptors this ring may still walk in loop turn budget_turn. */
	int budget;
	unsigned budget_turn;

	int call_fd, err_fd;     /* -1 when absent */
	vu_vring_signal_fn signal_inband; /* used when call_fd is -1 */
	vu_vring_signal_fn defer;         /* run the ring again next turn (it went over budget) */
	void *owner;
};

/*
 * One popped request. iov[0..out) are device-readable, iov[out..out+in) writable.
 * A legal chain with more segments than max_iov is walked (and checked) whole,
 * but only its first max_iov segments are described: truncated says so, and the
 * device decides (fill less, or refuse).
 */
struct vu_req {
	uint16_t head;
	unsigned out, in;
	bool truncated;
	bool writing;            /* a device-writable descriptor came (all later ones must be too) */
	uint64_t in_bytes;       /* total device-writable length described */
	struct iovec *iov;
	unsigned max_iov;
};

void vu_vring_init(struct vu_vring *vq);
/* Where the ring starts taking requests (SET_VRING_BASE, an inflight restart). */
void vu_vring_set_base(struct vu_vring *vq, uint16_t last_avail);
/* Resolves the ring addresses in mem; false if any part is not mapped. */
bool vu_vring_map(struct vu_vring *vq, const struct vu_mem *mem);
bool vu_vring_ready(const struct vu_vring *vq);

/*
 * Takes the next available request (first those an inflight region says were
 * in flight when the previous back-end stopped). Returns 1 with *req filled, 0 when the ring
 * is empty or has used up this turn's budget, -1 when the ring is (now) broken.
 */
int vu_vring_pop(struct vu_vring *vq, struct vu_req *req);
/*
 * Gives back the last n popped requests, not pushed: they are popped again next.
 * For devices that find a request unusable only after taking it (a packet larger
 * than the buffers popped for it); not for rings with an inflight region.
 */
void vu_vring_unpop(struct vu_vring *vq, unsigned n);
/*
 * Records a completion; it becomes visible to the driver at vu_vring_flush(). While
 * a migration logs dirty pages, the request's device-writable buffers are marked
 * here, after the device wrote them and before the driver can see the completion.
 */
void vu_vring_push(struct vu_vring *vq, uint16_t head, uint32_t written);
/* Publishes pushed completions and notifies the driver unless it asked not to be. */
void vu_vring_flush(struct vu_vring *vq);

/*
 * Asks the driver not to kick (while draining) or to kick again. Enabling returns
 * true if requests arrived meanwhile, so the caller drains once more (false when
 * the ring used up this turn's budget: it is run again next turn).
 */
bool vu_vring_kicks(struct vu_vring *vq, bool enable);

/* Marks the ring broken, logs why and signals the error eventfd. */
void vu_vring_fail(struct vu_vring *vq, const char *why);

#endif
