/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The rings of a session: running them (kicks, polling, in-band calls), pausing
 * them on their own threads around state changes, the messages that set them up
 * (SET_VRING_*, GET_VRING_BASE, VRING_KICK), the memory table's effect on them,
 * and their inflight buffer (GET/SET_INFLIGHT_FD).
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/log.h"
#include "proto/session-int.h"

#define POLL_INTERVAL_NS 1000000u   /* rings whose kick is NOFD are polled this often */

/* ---- rings ------------------------------------------------------------ */

static void run_queue(struct vu_session *s, struct session_queue *q)
{
	if (q->started && q->enabled && vu_vring_ready(&q->vring))
		s->dev->type->kick(s->dev, &q->vring);
}

static void on_kick(void *opaque, int fd, uint32_t events)
{
	struct session_queue *q = opaque;
	struct vu_session *s = q->vring.owner;
	uint64_t count;

	if (read(fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		vu_warn("queue %u: kick eventfd read failed", q->vring.index);
	q->started = true;
	run_queue(s, q);
}

static void run_on_thread(void *arg)
{
	struct session_queue *q = arg;
	run_queue(q->vring.owner, q);
}

void session_poll_rings(void *opaque)
{
	struct vu_session *s = opaque;

	for (unsigned i = 0; i < s->nq; i++)
		if (s->q[i].polled)
			vu_loop_call(s->q[i].loop, run_on_thread, &s->q[i]);
}

/* In-band call notification (INBAND_NOTIFICATIONS) when the call fd is NOFD. */
static void signal_inband(struct vu_vring *vq)
{
	struct vu_session *s = vq->owner;
	struct vu_vring_state st = { .index = vq->index, .num = 0 };

	if (s->backend_fd < 0 || !session_has_pf(s, VU_PF_INBAND_NOTIFICATIONS))
		return;
	if (vu_msg_send(s->backend_fd, VU_BREQ_VRING_CALL, VU_FLAG_VERSION | VU_FLAG_NEED_REPLY,
			&st, sizeof(st), NULL, 0) < 0)
		vu_warn("queue %u: in-band call notification failed", vq->index);
}

/*
 * A ring went over its budget for this turn (on its own thread): it must run again
 * next turn even if the driver never kicks again. A kick to ourselves does that; a
 * ring without a kick eventfd is polled, and in-band rings get a one-shot poll.
 */
static void defer_ring(struct vu_vring *vq)
{
	static const uint64_t one = 1;
	struct vu_session *s = vq->owner;
	struct session_queue *q = &s->q[vq->index];

	if (q->kick_fd >= 0) {
		if (write(q->kick_fd, &one, sizeof(one)) < 0)
			vu_warn("queue %u: cannot kick ourselves", vq->index);
	} else if (session_has_pf(s, VU_PF_INBAND_NOTIFICATIONS)) {
		vu_timer_arm(s->poll_timer, POLL_INTERVAL_NS, 0);
	}
}

/*
 * Rings run on their loop's thread. Around every message that changes ring or
 * memory state the session pauses them there (the device finishes what is in
 * flight, kicks are not watched), changes what the message says on the main
 * thread, and resumes them (kicks watched again, pending requests processed).
 */
static void pause_on_thread(void *arg)
{
	struct session_queue *q = arg;
	struct vu_session *s = q->vring.owner;

	if (q->started && s->dev->type->queue_drain)
		s->dev->type->queue_drain(s->dev, &q->vring);
	vu_vring_flush(&q->vring);
	if (q->attached)
		vu_loop_unwatch(q->loop, q->kick_fd);
	q->attached = false;
}

static void resume_on_thread(void *arg)
{
	struct session_queue *q = arg;

	if (q->kick_fd >= 0 && !q->attached) {
		if (vu_loop_watch(q->loop, q->kick_fd, EPOLLIN, on_kick, q) < 0)
			vu_vring_fail(&q->vring, "cannot watch the kick eventfd");
		else
			q->attached = true;
	}
	run_queue(q->vring.owner, q);
}

void session_pause_rings(struct vu_session *s)
{
	for (unsigned i = 0; i < s->nq; i++)
		vu_loop_call(s->q[i].loop, pause_on_thread, &s->q[i]);
}

void session_resume_rings(struct vu_session *s)
{
	for (unsigned i = 0; i < s->nq; i++)
		vu_loop_call(s->q[i].loop, resume_on_thread, &s->q[i]);
}

/*
 * Stops a paused ring (GET_VRING_BASE, reset): no kicks any more until a new
 * SET_VRING_KICK, which attaches the inflight region again for the size then set.
 */
static void stop_queue(struct session_queue *q)
{
	struct vu_session *s = q->vring.owner;

	if (s && s->dev->type->queue_stop)
		s->dev->type->queue_stop(s->dev, &q->vring);
	session_close_fd(&q->kick_fd);
	q->polled = false;
	q->started = false;
	q->vring.inflight = NULL;
	q->vring.inflight_packed = NULL;
}

void session_reset_ring(struct vu_session *s, struct session_queue *q)
{
	stop_queue(q);
	session_close_fd(&q->vring.call_fd);
	session_close_fd(&q->vring.err_fd);
	vu_vring_free(&q->vring);
	vu_vring_init(&q->vring);
	q->vring.owner = s;
	q->vring.signal_inband = signal_inband;
	q->vring.defer = defer_ring;
	q->enabled = false;
}

void session_update_polling(struct vu_session *s)
{
	bool any = false;

	for (unsigned i = 0; i < s->nq; i++)
		any |= s->q[i].polled;
	if (any && !session_has_pf(s, VU_PF_INBAND_NOTIFICATIONS))
		vu_timer_arm(s->poll_timer, POLL_INTERVAL_NS, POLL_INTERVAL_NS);
	else
		vu_timer_disarm(s->poll_timer);
}

/* After the memory table changed (rings are paused), rings are looked up again. */
void session_remap_rings(struct vu_session *s)
{
	for (unsigned i = 0; i < s->nq; i++) {
		struct vu_vring *vq = &s->q[i].vring;
		if (vq->desc_uva && !vu_vring_map(vq, &s->mem))
			vu_warn("queue %u: ring no longer in guest memory", i);
	}
}

static struct session_queue *queue_of(struct session_ctx *c, uint32_t index)
{
	return index < c->s->nq ? &c->s->q[index] : NULL;
}

#define NEED_QUEUE(c, q, index)                          \
	struct session_queue *q = queue_of(c, index);            \
	if (!q)                                          \
		return "queue index out of range"

const char *session_set_vring_num(struct session_ctx *c)
{
	uint32_t num = c->m->p.state.num;
	NEED_QUEUE(c, q, c->m->p.state.index);

	/* Packed rings may have any size (the split layout's indices need a power of 2). */
	if (num == 0 || num > VU_VRING_MAX_SIZE)
		return "queue size is not between 1 and 32768";
	if (!q->vring.packed && (num & (num - 1)))
		return "queue size is not a power of 2 between 1 and 32768";
	if (num > c->s->dev->max_queue_size)
		return "queue size larger than the device accepts";
	/* The inflight region and the resubmit list were sized for the old num at SET_VRING_KICK. */
	if (q->started || q->kick_fd >= 0 || q->polled)
		return "queue size changed after the ring's kick was set";
	q->vring.num = num;
	if (q->vring.desc_uva && !vu_vring_map(&q->vring, &c->s->mem))
		q->vring.desc_uva = 0; /* the ring needs new addresses */
	return NULL;
}

const char *session_set_vring_addr(struct session_ctx *c)
{
	const struct vu_vring_addr *a = &c->m->p.addr;
	NEED_QUEUE(c, q, a->index);

	if (a->flags & ~VU_VRING_F_LOG)
		return "unknown ring address flags";
	struct vu_vring *vq = &q->vring;
	vq->log_used = a->flags & VU_VRING_F_LOG;
	vq->log_guest_addr = a->log_guest_addr;
	vq->desc_uva = a->desc_user_addr;
	vq->avail_uva = a->avail_user_addr;
	vq->used_uva = a->used_user_addr;
	vq->broken = false; /* the ring is being set up anew */
	if (!vu_vring_map(vq, &c->s->mem)) {
		vq->desc_uva = 0;
		return "ring addresses are not in guest memory";
	}
	/* A packed ring's used position comes with SET_VRING_BASE, a split one's from the ring. */
	if (!vq->packed)
		vq->used_idx = __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE);
	vq->signalled_valid = false;
	return NULL;
}

const char *session_set_vring_base(struct session_ctx *c)
{
	NEED_QUEUE(c, q, c->m->p.state.index);
	struct vu_vring *vq = &q->vring;
	uint32_t base = c->m->p.state.num;

	if (q->started)
		return "ring base changed while the ring runs";
	if (!vq->packed) {
		if (base > 0xffff)
			return "ring base beyond 16 bits";
		vu_vring_set_base(vq, base);
		return NULL;
	}
	/*
	 * Packed: avail position and wrap counter in the low half, used in the high
	 * half. DPDK's virtio-user sends only the low half: nothing is in flight then,
	 * used is where avail is.
	 */
	if (!(base >> 16))
		base |= base << 16;
	if (vq->num && ((base & 0x7fff) >= vq->num || ((base >> 16) & 0x7fff) >= vq->num))
		return "ring base beyond the queue size";
	vu_vring_set_base(vq, base);
	return NULL;
}

const char *session_get_vring_base(struct session_ctx *c)
{
	NEED_QUEUE(c, q, c->m->p.state.index);

	stop_queue(q);
	session_update_polling(c->s);
	struct vu_vring_state st = { .index = q->vring.index, .num = vu_vring_get_base(&q->vring) };
	return session_answer(c, &st, sizeof(st));
}

/* SET_VRING_KICK/CALL/ERR payload: index in bits 0-7, NOFD in bit 8. */
static const char *vring_fd(struct session_ctx *c, struct session_queue **qp, int *fd)
{
	uint64_t v = c->m->p.u64;

	*fd = -1;
	if (v & ~(uint64_t)(VU_VRING_IDX_MASK | VU_VRING_NOFD_MASK))
		return "reserved bits set in the vring fd message";
	*qp = queue_of(c, v & VU_VRING_IDX_MASK);
	if (!*qp)
		return "queue index out of range";
	bool nofd = v & VU_VRING_NOFD_MASK;
	if (nofd != (c->m->nfds == 0))
		return nofd ? "fd sent with the NOFD flag" : "no fd sent without the NOFD flag";
	*fd = vu_msg_take_fd(c->m, 0);
	return NULL;
}

/* Attaches the queue's inflight region as the ring starts, and finds what to resubmit. */
static const char *start_inflight(struct vu_session *s, struct session_queue *q)
{
	struct vu_vring *vq = &q->vring;

	vq->inflight = NULL;
	vq->inflight_packed = NULL;
	if (!s->inflight || !vu_vring_ready(vq))
		return NULL;
	if (vq->index >= s->inflight_nq)
		return "queue has no region in the inflight buffer";
	if (vq->num != s->inflight_qsize)
		return "queue size differs from the inflight buffer's";
	if (s->inflight_stride < vu_inflight_layout_size(vq->num, vq->packed))
		return "inflight buffer too small for the ring's layout";
	uint16_t *resubmit = realloc(vq->resubmit, vq->num * sizeof(*resubmit));
	if (!resubmit)
		return "out of memory";
	vq->resubmit = resubmit;
	void *region = s->inflight + vq->index * s->inflight_stride;
	if (vq->packed)
		vq->inflight_packed = region;
	else
		vq->inflight = region;
	const char *why = vu_inflight_start(vq);
	if (why) {
		vq->inflight = NULL;
		vq->inflight_packed = NULL;
	}
	return why;
}

const char *session_set_vring_kick(struct session_ctx *c)
{
	struct vu_session *s = c->s;
	struct session_queue *q;
	int fd;
	const char *why = vring_fd(c, &q, &fd);

	if (why)
		return why;
	/* The ring is paused: the new fd is watched when it resumes. */
	session_close_fd(&q->kick_fd);
	q->kick_fd = fd;
	q->polled = fd < 0;
	/* Started on the first kick, as the spec says; a polled ring at once. */
	q->started = q->polled;
	session_update_polling(s);
	why = start_inflight(s, q);
	/*
	 * Requests a previous back-end left in flight are done without waiting for a
	 * kick: the guest already kicked for them and may never kick again (a front-end
	 * need not signal the new kick eventfd). They run once the ring is enabled.
	 */
	if (!why && q->vring.resubmit_n)
		q->started = true;
	return why;
}

/* SET_VRING_CALL and SET_VRING_ERR: the eventfd we signal (or -1 with NOFD). */
static const char *set_vring_signal_fd(struct session_ctx *c, bool call)
{
	struct session_queue *q;
	int fd;
	const char *why = vring_fd(c, &q, &fd);

	if (why)
		return why;
	int *slot = call ? &q->vring.call_fd : &q->vring.err_fd;
	session_close_fd(slot);
	*slot = fd;
	/*
	 * A front-end that restarts a ring on a new back-end (QEMU after a reconnect) can
	 * move its call to another eventfd only after the ring runs: a completion signalled
	 * on the old one meanwhile (a resubmitted request's) is lost, and the guest waits
	 * for it forever. A spurious call costs the driver a look at the used ring.
	 */
	if (call && fd >= 0 && q->started)
		vu_vring_signal(&q->vring);
	return NULL;
}

const char *session_set_vring_call(struct session_ctx *c)
{
	return set_vring_signal_fd(c, true);
}

const char *session_set_vring_err(struct session_ctx *c)
{
	return set_vring_signal_fd(c, false);
}

const char *session_vring_kick(struct session_ctx *c)
{
	NEED_QUEUE(c, q, c->m->p.state.index);

	if (!session_has_pf(c->s, VU_PF_INBAND_NOTIFICATIONS))
		return "VRING_KICK without INBAND_NOTIFICATIONS";
	if (c->m->p.state.num != 0)
		return "VRING_KICK with a non-zero reserved field";
	const char *why = NULL;
	if (q->kick_fd < 0 && !q->polled) {
		/* The spec lets this start a ring that had no SET_VRING_KICK: set it up as that would. */
		q->polled = true;
		why = start_inflight(c->s, q);
	}
	q->started = true; /* processed as the ring resumes */
	return why;
}

const char *session_set_vring_enable(struct session_ctx *c)
{
	NEED_QUEUE(c, q, c->m->p.state.index);

	if (c->m->p.state.num > 1)
		return "ring enable value is neither 0 nor 1";
	q->enabled = c->m->p.state.num;
	return NULL;
}

void session_unmap_inflight(struct vu_session *s)
{
	vu_sigbus_unguard(s->inflight_guard);
	s->inflight_guard = -1;
	if (s->inflight)
		munmap(s->inflight, s->inflight_size);
	s->inflight = NULL;
	s->inflight_nq = 0;
	for (unsigned i = 0; i < s->nq; i++) {
		s->q[i].vring.inflight = NULL;
		s->q[i].vring.inflight_packed = NULL;
	}
}

static const char *check_inflight_geometry(struct vu_session *s, const struct vu_inflight *in)
{
	if (!session_has_pf(s, VU_PF_INFLIGHT_SHMFD))
		return "inflight buffer without INFLIGHT_SHMFD";
	if (in->num_queues == 0 || in->num_queues > s->nq)
		return "inflight queue count out of range";
	/* Any size a ring may have (packed rings need not be a power of 2); each ring checks its own. */
	if (in->queue_size == 0 || in->queue_size > VU_VRING_MAX_SIZE)
		return "inflight queue size is not between 1 and 32768";
	return NULL;
}

const char *session_get_inflight_fd(struct session_ctx *c)
{
	struct vu_session *s = c->s;
	struct vu_inflight in = c->m->p.inflight;
	const char *why = check_inflight_geometry(s, &in);

	if (why)
		return why;
	session_unmap_inflight(s);
	size_t size = (size_t)in.num_queues * vu_inflight_queue_size(in.queue_size);
	int fd = memfd_create("vhostbox-inflight", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0 || ftruncate(fd, size) < 0 ||
	    (s->inflight = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
		s->inflight = NULL;
		if (fd >= 0)
			close(fd);
		return "cannot create the inflight buffer";
	}
	s->inflight_size = size;
	s->inflight_stride = vu_inflight_queue_size(in.queue_size);
	s->inflight_qsize = in.queue_size;
	s->inflight_nq = in.num_queues;
	s->inflight_guard = vu_sigbus_guard(s->inflight, size, s->mem.on_lost, s->mem.lost_opaque);
	in.mmap_size = size;
	in.mmap_offset = 0;
	c->reply_fd = fd;
	return session_answer(c, &in, sizeof(in));
}

const char *session_set_inflight_fd(struct session_ctx *c)
{
	struct vu_session *s = c->s;
	const struct vu_inflight *in = &c->m->p.inflight;
	int fd = vu_msg_take_fd(c->m, 0);
	const char *why = check_inflight_geometry(s, in);
	struct stat st;

	/*
	 * Regions follow each other every mmap_size / num_queues bytes (what GET_INFLIGHT_FD
	 * gave, or an older vhostbox's smaller split-only regions); each ring checks that
	 * its region is big enough for its layout when it starts.
	 */
	size_t stride = (size_t)(in->mmap_size / (in->num_queues ? in->num_queues : 1)) & ~(size_t)63;
	if (!why && (stride < vu_inflight_layout_size(in->queue_size, 0) ||
		     in->mmap_offset + in->mmap_size < in->mmap_offset || fstat(fd, &st) < 0 ||
		     in->mmap_offset + in->mmap_size > (uint64_t)st.st_size ||
		     in->mmap_offset % sysconf(_SC_PAGESIZE)))
		why = "inflight buffer does not fit its fd";
	if (!why) {
		session_unmap_inflight(s);
		void *p = mmap(NULL, in->mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, in->mmap_offset);
		if (p == MAP_FAILED)
			why = "cannot map the inflight buffer";
		else {
			s->inflight = p;
			s->inflight_size = in->mmap_size;
			s->inflight_stride = stride;
			s->inflight_qsize = in->queue_size;
			s->inflight_nq = in->num_queues;
			s->inflight_guard = vu_sigbus_guard(p, in->mmap_size, s->mem.on_lost, s->mem.lost_opaque);
		}
	}
	close(fd);
	return why;
}
