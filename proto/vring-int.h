/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What proto/vring.c (both layouts), proto/vring-split.c and proto/vring-packed.c
 * share. Nothing outside these three files includes it.
 */
#ifndef VU_VRING_INT_H
#define VU_VRING_INT_H

#include "proto/vring.h"

/*
 * The driver writes the rings concurrently: every descriptor is copied once and
 * only the copy is used, so a value cannot change between the check and the use.
 */
#define READ_ONCE(x) (*(const volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))

static inline void smp_mb(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/* ---- vring.c: both layouts ---- */

/*
 * True when the ring has walked its budget in this turn of the loop; the owner
 * is then asked to run it again next turn.
 */
bool vring_over_budget(struct vu_vring *vq);
/* A request about to be filled: nothing described yet. */
static inline void vring_req_start(struct vu_req *req, uint16_t head)
{
	req->head = head;
	req->out = req->in = 0;
	req->truncated = req->writing = false;
	req->in_bytes = 0;
}
/* vring_add_buffer when the buffer is not simply in the region the last one was in. */
const char *vring_add_buffer_slow(struct vu_vring *vq, struct vu_req *req, uint64_t addr, uint32_t len,
				  bool writable);

/*
 * Where a buffer of len (> 0) bytes at addr lies if it is all in the region the
 * ring's last buffer was in, else NULL. Most are (guest RAM is a few big regions):
 * a look there first spares the search over the table, inline.
 */
static inline void *vring_host_at_hint(const struct vu_vring *vq, uint64_t addr, uint32_t len)
{
	const struct vu_mem *mem = vq->mem;

	if (vq->region_hint >= mem->n || !len)
		return NULL;
	const struct vu_region *r = &mem->r[vq->region_hint];
	uint64_t off = addr - r->gpa;
	return off < r->size && len <= r->size - off ? r->host + off : NULL;
}

/* Describes a buffer found at host as the request's next iovec (it has room for one). */
static inline void vring_req_append(struct vu_req *req, void *host, uint32_t len, bool writable)
{
	req->iov[req->out + req->in] = (struct iovec){ host, len };
	req->writing |= writable;
	if (writable) {
		req->in++;
		req->in_bytes += len;
	} else {
		req->out++;
	}
}

/* Appends one buffer of a chain to the request: NULL, or why the chain is bad. */
static inline const char *vring_add_buffer(struct vu_vring *vq, struct vu_req *req, uint64_t addr,
					   uint32_t len, bool writable)
{
	void *host;

	if (__builtin_expect(req->out + req->in < req->max_iov && !req->truncated && (writable || !req->writing) &&
			     (host = vring_host_at_hint(vq, addr, len)), 1)) {
		vring_req_append(req, host, len, writable);
		return NULL;
	}
	return vring_add_buffer_slow(vq, req, addr, len, writable);
}
/* Checks an indirect descriptor's table: its host address, or NULL with *why set. */
const void *vring_indirect_table(struct vu_vring *vq, uint64_t addr, uint32_t len, const char **why);
/* Marks [offset, offset + len) of the used ring / device area in the dirty log, if the ring is logged. */
void vring_log_used(struct vu_vring *vq, uint64_t offset, uint64_t len);
/* Tells the front-end the dirty log changed (SET_LOG_FD), after a logged publish. */
void vring_log_notify(struct vu_vring *vq);

/* ---- vring-split.c ---- */

bool vring_split_map(struct vu_vring *vq);
void vring_split_set_base(struct vu_vring *vq, uint32_t base);
int vring_split_pop(struct vu_vring *vq, struct vu_req *req);
int vring_split_resubmit(struct vu_vring *vq, struct vu_req *req, uint16_t head);
void vring_split_unpop(struct vu_vring *vq, unsigned n);
/*
 * Pushes: reqs[0..n), reqs[i] with written[i * step] bytes (step 0: the same for
 * all, 1: each its own; see vu_vring_push_burst and vu_vring_push_each).
 */
void vring_split_push(struct vu_vring *vq, const struct vu_req *reqs, unsigned n, const uint32_t *written,
		      size_t step);
void vring_split_flush(struct vu_vring *vq);
bool vring_split_kicks(struct vu_vring *vq, bool enable);

/* ---- vring-packed.c ---- */

/* Per buffer id, while the buffer is the device's. */
struct vring_packed_buf {
	uint16_t ndesc;          /* ring descriptors its chain took (where the next used one goes) */
	uint16_t infl;           /* its head entry in the inflight region */
	uint8_t state;           /* VRING_BUF_* */
};
enum { VRING_BUF_FREE, VRING_BUF_POPPED, VRING_BUF_PUSHED };

/* One pushed completion: its used descriptor, written at the flush. */
struct vring_packed_pend {
	uint16_t slot, flags, id, infl;
	uint32_t len;
};

struct vring_packed_state {
	unsigned num;                    /* the queue size it was allocated for */
	struct vring_packed_buf *buf;    /* [num], by buffer id */
	struct vring_packed_pend *pend;  /* [num], in push order */
	uint16_t *popped;                /* [num], a ring of the ids popped last (for unpop) */
	unsigned popped_pos;
	uint16_t next_used;              /* where the next push writes its used descriptor */
	bool next_used_wrap;
	uint64_t desc_gpa;               /* the descriptor ring's guest-physical address (dirty log) */
};

bool vring_packed_map(struct vu_vring *vq);
void vring_packed_free(struct vu_vring *vq);
void vring_packed_set_base(struct vu_vring *vq, uint32_t base);
int vring_packed_pop(struct vu_vring *vq, struct vu_req *req);
int vring_packed_pop_batch(struct vu_vring *vq, struct vu_req *reqs);
int vring_packed_resubmit(struct vu_vring *vq, struct vu_req *req, uint16_t entry);
void vring_packed_unpop(struct vu_vring *vq, unsigned n);
void vring_packed_push(struct vu_vring *vq, const struct vu_req *reqs, unsigned n, const uint32_t *written,
		       size_t step);
void vring_packed_flush(struct vu_vring *vq);
bool vring_packed_kicks(struct vu_vring *vq, bool enable);
/* Position pos advanced by n descriptors (n <= num), with its wrap counter. */
static inline uint16_t vring_packed_advance(const struct vu_vring *vq, uint16_t pos, unsigned n,
					    bool *wrap)
{
	unsigned p = pos + n;

	if (p >= vq->num) {
		p -= vq->num;
		*wrap = !*wrap;
	}
	return (uint16_t)p;
}

#endif
