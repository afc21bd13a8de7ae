/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Virtqueues, split or packed (VIRTIO_F_RING_PACKED) behind one API: devices
 * never know which layout runs. A request is popped as iovecs that point straight
 * into guest memory (device-readable first, then device-writable); completions are
 * pushed and published in batches. Anything malformed marks the queue broken: it
 * is never processed again until it is set up anew.
 *
 * proto/vring.c holds what both layouts share (budget, buffers, dirty logging,
 * notifications, dispatch), proto/vring-split.c and proto/vring-packed.c the
 * layouts, proto/vring-int.h what they share privately.
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
struct vring_packed_state;
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
	bool packed;             /* the layout: VIRTIO_F_RING_PACKED (set it before mapping) */
	/*
	 * Where the ring takes the next request (set it with vu_vring_set_base): split,
	 * the free-running avail ring index; packed, the descriptor's position and the
	 * driver's wrap counter there.
	 */
	uint16_t last_avail;
	bool avail_wrap;
	uint16_t avail_ready;    /* split: entries after it the last read of avail->idx showed */
	bool event_idx;
	bool indirect;
	/*
	 * VIRTIO_F_IN_ORDER: the device completes requests in the order it took them
	 * (only devices that do offer it). A packed ring then publishes a run of
	 * completions that wrote nothing as one used descriptor, the last one's id.
	 */
	bool in_order;
	bool log_used;           /* VU_VRING_F_LOG: the device's ring writes go to the dirty log ... */
	uint64_t log_guest_addr; /* ... the used ring's (split) or device area's (packed) at this gpa */

	/*
	 * Host pointers, valid while mapped: split, the descriptor table and the avail
	 * and used rings; packed, the descriptor ring and the driver's and the device's
	 * event suppression structures (SET_VRING_ADDR's avail and used addresses).
	 */
	union {
		struct vring_desc *desc;
		struct vring_packed_desc *pdesc;
	};
	union {
		struct vring_avail *avail;
		struct vring_packed_event *driver_event;
	};
	union {
		struct vring_used *used;
		struct vring_packed_event *device_event;
	};
	const struct vu_mem *mem;
	unsigned region_hint;    /* the region of mem the last buffer was in: looked at first */

	/* Published completions: split, our copy of used->idx; packed, the next used position. */
	uint16_t used_idx;
	bool used_wrap;          /* packed: the device's wrap counter at used_idx */
	uint16_t signalled_used; /* used_idx (and wrap) at the last notification decision */
	bool signalled_wrap;
	bool signalled_valid;
	unsigned pending;        /* pushed but not yet published */
	bool broken;
	struct vring_packed_state *ps; /* packed: per-buffer state, allocated when mapped */

	/* Inflight tracking (INFLIGHT_SHMFD), when the front-end gave us a region. */
	struct vu_inflight_queue *inflight;       /* split layout ... */
	struct vu_inflight_packed *inflight_packed; /* ... or packed: one of them */
	uint64_t inflight_counter;
	uint16_t *resubmit;      /* requests to hand out again after a restart, oldest first */
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
 * device decides (fill less, or refuse). The request (and the iovecs it points
 * at) must stay as popped until it is pushed: the push marks its writable
 * iovecs in the dirty log.
 */
struct vu_req {
	uint16_t head;           /* split: the chain's head; packed: the buffer id */
	unsigned out, in;
	bool truncated;
	bool writing;            /* a device-writable descriptor came (all later ones must be too) */
	uint64_t in_bytes;       /* total device-writable length described */
	struct iovec *iov;
	unsigned max_iov;
};

void vu_vring_init(struct vu_vring *vq);
/* Frees what mapping allocated and the resubmission list; the ring is then as after init. */
void vu_vring_free(struct vu_vring *vq);
/*
 * Where the ring starts (SET_VRING_BASE, an inflight restart): split, the next avail
 * index (16 bits); packed, VU_PACKED_BASE's encoding. Forgets requests in flight.
 */
void vu_vring_set_base(struct vu_vring *vq, uint32_t base);
/* What GET_VRING_BASE answers: the same encodings. */
uint32_t vu_vring_get_base(const struct vu_vring *vq);
/*
 * Resolves the ring addresses in mem (and allocates a packed ring's per-buffer
 * state for num, kept across remappings of the same size); false if any part is
 * not mapped or misaligned, or the queue size does not suit the layout.
 */
bool vu_vring_map(struct vu_vring *vq, const struct vu_mem *mem);
bool vu_vring_ready(const struct vu_vring *vq);

/*
 * Takes the next available request (first those an inflight region says were
 * in flight when the previous back-end stopped). Returns 1 with *req filled, 0 when the ring
 * is empty or has used up this turn's budget, -1 when the ring is (now) broken.
 */
int vu_vring_pop(struct vu_vring *vq, struct vu_req *req);
/*
 * Takes up to n requests into reqs[0..n), each set up as for vu_vring_pop (iov,
 * max_iov), in ring order: what n calls of vu_vring_pop would take, cheaper (a
 * packed ring takes runs of one-descriptor requests a cache line at a time).
 * Returns how many were taken; 0 when the ring is empty or over budget, -1 when it
 * is broken and nothing was taken (requests taken before it broke are returned).
 */
int vu_vring_pop_burst(struct vu_vring *vq, struct vu_req *reqs, unsigned n);
/* The requests a burst takes together at best (a cache line of packed descriptors). */
#define VU_VRING_BURST 4
/*
 * Asks for the lines that popping the next n requests reads first (a packed ring's
 * descriptors; a split ring's avail entries), so that their misses overlap instead
 * of following one another group by group. for_write: each of them is to be
 * completed on its own soon, and a packed ring then writes its used descriptor
 * into the same line (taken exclusive now, it needs no second trip to the driver's
 * core). A hint: nothing is read or checked.
 */
void vu_vring_prefetch(const struct vu_vring *vq, unsigned n, bool for_write);
/*
 * Gives back the last n popped requests, not pushed: they are popped again next.
 * For devices that find a request unusable only after taking it (a packet larger
 * than the buffers popped for it); not for rings with an inflight region.
 */
void vu_vring_unpop(struct vu_vring *vq, unsigned n);
/*
 * Records the completion of req (as popped); it becomes visible to the driver at
 * vu_vring_flush(). While a migration logs dirty pages, the request's device-
 * writable iovecs are marked here, after the device wrote them and before the
 * driver can see the completion.
 */
void vu_vring_push(struct vu_vring *vq, const struct vu_req *req, uint32_t written);
/* n pushes at once: reqs[0..n), each with written bytes (a transmit burst's, 0). */
void vu_vring_push_burst(struct vu_vring *vq, const struct vu_req *reqs, unsigned n, uint32_t written);
/* n pushes at once, reqs[i] with written[i] bytes (a burst of received frames). */
void vu_vring_push_each(struct vu_vring *vq, const struct vu_req *reqs, unsigned n, const uint32_t *written);
/* Publishes pushed completions and notifies the driver unless it asked not to be. */
void vu_vring_flush(struct vu_vring *vq);

/*
 * Asks the driver not to kick (while draining) or to kick again. Enabling returns
 * true if requests arrived meanwhile, so the caller drains once more (false when
 * the ring used up this turn's budget: it is run again next turn).
 */
bool vu_vring_kicks(struct vu_vring *vq, bool enable);

/* Notifies the driver whatever it asked for: the call eventfd, or in-band. */
void vu_vring_signal(struct vu_vring *vq);

/* Marks the ring broken, logs why and signals the error eventfd. */
void vu_vring_fail(struct vu_vring *vq, const char *why);

#endif
