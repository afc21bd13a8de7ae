/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/log.h"
#include "proto/msg.h"
#include "proto/session.h"

#define POLL_INTERVAL_NS 1000000u   /* rings whose kick is NOFD are polled this often */

struct queue {
	struct vu_vring vring;
	struct vu_loop *loop;   /* where the ring is processed (a device may use worker threads) */
	bool attached;          /* kick_fd is watched on loop */
	int kick_fd;
	bool polled;    /* kick set with NOFD: no eventfd, we look ourselves */
	bool started;   /* kicked since the last stop */
	bool enabled;
};

struct vu_session {
	struct vu_loop *loop;
	int sock;
	struct vu_dev *dev;
	vu_session_end_fn on_end;
	void *opaque;

	uint64_t features;
	uint64_t protocol_features;
	uint8_t status;
	struct vu_mem mem;
	int backend_fd;
	struct vu_msg_reader reader;
	struct vu_timer *poll_timer;
	/* The inflight buffer (INFLIGHT_SHMFD): one region per queue. */
	uint8_t *inflight;
	size_t inflight_size;
	uint16_t inflight_qsize;
	unsigned nq;
	struct queue q[];
};

static const uint64_t core_features = 1ull << VIRTIO_F_VERSION_1 |
				      1ull << VIRTIO_RING_F_INDIRECT_DESC |
				      1ull << VIRTIO_RING_F_EVENT_IDX |
				      1ull << VHOST_USER_F_PROTOCOL_FEATURES;

static uint64_t offered_features(const struct vu_session *s)
{
	return core_features | s->dev->features;
}

/*
 * Front-ends may ack bits we never offered (QEMU passes on what its guest
 * negotiated with the transport). Those we can honour are accepted: a ring
 * reset (VIRTIO_F_RING_RESET) reaches a back-end as a ring stop and restart,
 * which every device handles. Anything else unoffered is refused.
 */
static const uint64_t honoured_unoffered = 1ull << VIRTIO_F_RING_RESET;

static uint64_t offered_protocol_features(const struct vu_session *s)
{
	uint64_t pf = 1ull << VU_PF_MQ | 1ull << VU_PF_REPLY_ACK | 1ull << VU_PF_BACKEND_REQ |
		      1ull << VU_PF_CONFIGURE_MEM_SLOTS | 1ull << VU_PF_RESET_DEVICE |
		      1ull << VU_PF_STATUS | 1ull << VU_PF_INBAND_NOTIFICATIONS;
	if (s->dev->type->config_size)
		pf |= 1ull << VU_PF_CONFIG;
	if (s->dev->type->inflight)
		pf |= 1ull << VU_PF_INFLIGHT_SHMFD;
	if (s->dev->type->send_rarp)
		pf |= 1ull << VU_PF_RARP;
	if (s->dev->type->set_mtu)
		pf |= 1ull << VU_PF_NET_MTU;
	return pf;
}

static bool has_pf(const struct vu_session *s, int bit)
{
	return s->protocol_features & (1ull << bit);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* ---- rings ------------------------------------------------------------ */

static void run_queue(struct vu_session *s, struct queue *q)
{
	if (q->started && q->enabled && vu_vring_ready(&q->vring))
		s->dev->type->kick(s->dev, &q->vring);
}

static void on_kick(void *opaque, int fd, uint32_t events)
{
	struct queue *q = opaque;
	struct vu_session *s = q->vring.owner;
	uint64_t count;

	if (read(fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		vu_warn("queue %u: kick eventfd read failed", q->vring.index);
	q->started = true;
	run_queue(s, q);
}

static void run_on_thread(void *arg)
{
	struct queue *q = arg;
	run_queue(q->vring.owner, q);
}

static void on_poll(void *opaque)
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

	if (s->backend_fd < 0 || !has_pf(s, VU_PF_INBAND_NOTIFICATIONS))
		return;
	if (vu_msg_send(s->backend_fd, VU_BREQ_VRING_CALL, VU_FLAG_VERSION | VU_FLAG_NEED_REPLY,
			&st, sizeof(st), NULL, 0) < 0)
		vu_warn("queue %u: in-band call notification failed", vq->index);
}

/*
 * Rings run on their loop's thread. Around every message that changes ring or
 * memory state the session pauses them there (the device finishes what is in
 * flight, kicks are not watched), changes what the message says on the main
 * thread, and resumes them (kicks watched again, pending requests processed).
 */
static void pause_on_thread(void *arg)
{
	struct queue *q = arg;
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
	struct queue *q = arg;

	if (q->kick_fd >= 0 && !q->attached) {
		if (vu_loop_watch(q->loop, q->kick_fd, EPOLLIN, on_kick, q) < 0)
			vu_vring_fail(&q->vring, "cannot watch the kick eventfd");
		else
			q->attached = true;
	}
	run_queue(q->vring.owner, q);
}

static void pause_queues(struct vu_session *s)
{
	for (unsigned i = 0; i < s->nq; i++)
		vu_loop_call(s->q[i].loop, pause_on_thread, &s->q[i]);
}

static void resume_queues(struct vu_session *s)
{
	for (unsigned i = 0; i < s->nq; i++)
		vu_loop_call(s->q[i].loop, resume_on_thread, &s->q[i]);
}

/* Stops a paused ring (GET_VRING_BASE, reset): no kicks any more until a new SET_VRING_KICK. */
static void stop_queue(struct queue *q)
{
	close_fd(&q->kick_fd);
	q->polled = false;
	q->started = false;
}

static void reset_queue(struct vu_session *s, struct queue *q)
{
	stop_queue(q);
	close_fd(&q->vring.call_fd);
	close_fd(&q->vring.err_fd);
	free(q->vring.resubmit);
	vu_vring_init(&q->vring);
	q->vring.owner = s;
	q->vring.signal_inband = signal_inband;
	q->enabled = false;
}

static void update_polling(struct vu_session *s)
{
	bool any = false;

	for (unsigned i = 0; i < s->nq; i++)
		any |= s->q[i].polled;
	if (any && !has_pf(s, VU_PF_INBAND_NOTIFICATIONS))
		vu_timer_arm(s->poll_timer, POLL_INTERVAL_NS, POLL_INTERVAL_NS);
	else
		vu_timer_disarm(s->poll_timer);
}

static void reset_device(struct vu_session *s)
{
	for (unsigned i = 0; i < s->nq; i++)
		reset_queue(s, &s->q[i]);
	update_polling(s);
	s->features = 0;
	s->status = 0;
	if (s->dev->type->reset)
		s->dev->type->reset(s->dev);
}

/* ---- message handlers: NULL on success, else why the request failed ---- */

struct ctx {
	struct vu_session *s;
	struct vu_msg *m;
	bool replied;
};

static const char *reply(struct ctx *c, const void *payload, uint32_t size)
{
	c->replied = true;
	return vu_msg_reply(c->s->sock, c->m, payload, size) < 0 ? "cannot send the reply" : NULL;
}

static const char *reply_u64(struct ctx *c, uint64_t v)
{
	return reply(c, &v, sizeof(v));
}

static struct queue *queue_of(struct ctx *c, uint32_t index)
{
	return index < c->s->nq ? &c->s->q[index] : NULL;
}

#define NEED_QUEUE(c, q, index)                          \
	struct queue *q = queue_of(c, index);            \
	if (!q)                                          \
		return "queue index out of range"

static const char *get_features(struct ctx *c)
{
	return reply_u64(c, offered_features(c->s));
}

static const char *set_features(struct ctx *c)
{
	struct vu_session *s = c->s;
	uint64_t f = c->m->p.u64;

	if (f & ~(offered_features(s) | honoured_unoffered))
		return "front-end acked features that were neither offered nor supported";
	s->features = f;
	if (s->dev->type->set_features)
		s->dev->type->set_features(s->dev, f);
	for (unsigned i = 0; i < s->nq; i++) {
		struct queue *q = &s->q[i];
		q->vring.event_idx = f & (1ull << VIRTIO_RING_F_EVENT_IDX);
		q->vring.indirect = f & (1ull << VIRTIO_RING_F_INDIRECT_DESC);
		/* Without protocol features rings are enabled from the start. */
		if (!(f & (1ull << VHOST_USER_F_PROTOCOL_FEATURES)))
			q->enabled = true;
	}
	return NULL;
}

static const char *get_protocol_features(struct ctx *c)
{
	return reply_u64(c, offered_protocol_features(c->s));
}

static const char *set_protocol_features(struct ctx *c)
{
	uint64_t pf = c->m->p.u64;

	if (pf & ~offered_protocol_features(c->s))
		return "front-end acked protocol features that were not offered";
	c->s->protocol_features = pf;
	update_polling(c->s);
	return NULL;
}

static const char *nothing(struct ctx *c)
{
	return NULL;
}

/*
 * Deprecated; the spec recommends ignoring it or disabling all rings, and warns
 * that discarding connection state leads to bugs. Rings are disabled.
 */
static const char *reset_owner(struct ctx *c)
{
	for (unsigned i = 0; i < c->s->nq; i++)
		c->s->q[i].enabled = false;
	return NULL;
}

static const char *do_reset_device(struct ctx *c)
{
	if (!has_pf(c->s, VU_PF_RESET_DEVICE))
		return "RESET_DEVICE without its protocol feature";
	reset_device(c->s);
	return NULL;
}

/* After the memory table changed (rings are paused), rings are looked up again. */
static void remap_queues(struct vu_session *s)
{
	for (unsigned i = 0; i < s->nq; i++) {
		struct vu_vring *vq = &s->q[i].vring;
		if (vq->desc_uva && !vu_vring_map(vq, &s->mem))
			vu_warn("queue %u: ring no longer in guest memory", i);
	}
}

static const char *set_mem_table(struct ctx *c)
{
	struct vu_session *s = c->s;
	const char *why = NULL;

	vu_mem_clear(&s->mem);
	for (unsigned i = 0; i < c->m->p.mem.nregions; i++) {
		const char *w = vu_mem_add(&s->mem, &c->m->p.mem.regions[i], vu_msg_take_fd(c->m, i));
		if (w && !why)
			why = w;
	}
	if (why)
		vu_mem_clear(&s->mem);
	remap_queues(s);
	return why;
}

static const char *add_mem_reg(struct ctx *c)
{
	if (!has_pf(c->s, VU_PF_CONFIGURE_MEM_SLOTS))
		return "ADD_MEM_REG without CONFIGURE_MEM_SLOTS";
	const char *why = vu_mem_add(&c->s->mem, &c->m->p.mem_one.region, vu_msg_take_fd(c->m, 0));
	remap_queues(c->s);
	return why;
}

static const char *rem_mem_reg(struct ctx *c)
{
	if (!has_pf(c->s, VU_PF_CONFIGURE_MEM_SLOTS))
		return "REM_MEM_REG without CONFIGURE_MEM_SLOTS";
	const char *why = vu_mem_remove(&c->s->mem, &c->m->p.mem_one.region);
	remap_queues(c->s);
	return why;
}

static const char *get_max_mem_slots(struct ctx *c)
{
	return reply_u64(c, VU_MAX_MEM_SLOTS);
}

static const char *set_vring_num(struct ctx *c)
{
	uint32_t num = c->m->p.state.num;
	NEED_QUEUE(c, q, c->m->p.state.index);

	if (num == 0 || num > VU_VRING_MAX_SIZE || (num & (num - 1)))
		return "queue size is not a power of 2 between 1 and 32768";
	if (num > c->s->dev->max_queue_size)
		return "queue size larger than the device's --queue-size";
	if (q->started)
		return "queue size changed while the ring runs";
	q->vring.num = num;
	if (q->vring.desc_uva && !vu_vring_map(&q->vring, &c->s->mem))
		q->vring.desc_uva = 0; /* the ring needs new addresses */
	return NULL;
}

static const char *set_vring_addr(struct ctx *c)
{
	const struct vu_vring_addr *a = &c->m->p.addr;
	NEED_QUEUE(c, q, a->index);

	if (a->flags & VU_VRING_F_LOG)
		return "ring logging requested but not supported";
	struct vu_vring *vq = &q->vring;
	vq->desc_uva = a->desc_user_addr;
	vq->avail_uva = a->avail_user_addr;
	vq->used_uva = a->used_user_addr;
	vq->broken = false; /* the ring is being set up anew */
	if (!vu_vring_map(vq, &c->s->mem)) {
		vq->desc_uva = 0;
		return "ring addresses are not in guest memory";
	}
	vq->used_idx = __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE);
	vq->signalled_valid = false;
	return NULL;
}

static const char *set_vring_base(struct ctx *c)
{
	NEED_QUEUE(c, q, c->m->p.state.index);

	if (c->m->p.state.num > 0xffff)
		return "ring base beyond 16 bits";
	if (q->started)
		return "ring base changed while the ring runs";
	vu_vring_set_base(&q->vring, c->m->p.state.num);
	return NULL;
}

static const char *get_vring_base(struct ctx *c)
{
	NEED_QUEUE(c, q, c->m->p.state.index);

	stop_queue(q);
	update_polling(c->s);
	struct vu_vring_state st = { .index = q->vring.index, .num = q->vring.last_avail };
	return reply(c, &st, sizeof(st));
}

/* SET_VRING_KICK/CALL/ERR payload: index in bits 0-7, NOFD in bit 8. */
static const char *vring_fd(struct ctx *c, struct queue **qp, int *fd)
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
static const char *start_inflight(struct vu_session *s, struct queue *q)
{
	struct vu_vring *vq = &q->vring;

	if (!s->inflight || !vu_vring_ready(vq))
		return NULL;
	if (vq->num != s->inflight_qsize)
		return "queue size differs from the inflight buffer's";
	uint16_t *resubmit = realloc(vq->resubmit, vq->num * sizeof(*resubmit));
	if (!resubmit)
		return "out of memory";
	vq->resubmit = resubmit;
	vq->inflight = (struct vu_inflight_queue *)(s->inflight +
						    vq->index * vu_inflight_queue_size(vq->num));
	return vu_inflight_start(vq);
}

static const char *set_vring_kick(struct ctx *c)
{
	struct vu_session *s = c->s;
	struct queue *q;
	int fd;
	const char *why = vring_fd(c, &q, &fd);

	if (why)
		return why;
	/* The ring is paused: the new fd is watched when it resumes. */
	close_fd(&q->kick_fd);
	q->kick_fd = fd;
	q->polled = fd < 0;
	/* Started on the first kick, as the spec says; a polled ring at once. */
	q->started = q->polled;
	update_polling(s);
	return start_inflight(s, q);
}

/* SET_VRING_CALL and SET_VRING_ERR: the eventfd we signal (or -1 with NOFD). */
static const char *set_vring_signal_fd(struct ctx *c, bool call)
{
	struct queue *q;
	int fd;
	const char *why = vring_fd(c, &q, &fd);

	if (why)
		return why;
	int *slot = call ? &q->vring.call_fd : &q->vring.err_fd;
	close_fd(slot);
	*slot = fd;
	return NULL;
}

static const char *set_vring_call(struct ctx *c)
{
	return set_vring_signal_fd(c, true);
}

static const char *set_vring_err(struct ctx *c)
{
	return set_vring_signal_fd(c, false);
}

static const char *vring_kick(struct ctx *c)
{
	NEED_QUEUE(c, q, c->m->p.state.index);

	if (!has_pf(c->s, VU_PF_INBAND_NOTIFICATIONS))
		return "VRING_KICK without INBAND_NOTIFICATIONS";
	if (c->m->p.state.num != 0)
		return "VRING_KICK with a non-zero reserved field";
	q->started = true; /* processed as the ring resumes */
	return NULL;
}

static const char *set_vring_enable(struct ctx *c)
{
	NEED_QUEUE(c, q, c->m->p.state.index);

	if (c->m->p.state.num > 1)
		return "ring enable value is neither 0 nor 1";
	q->enabled = c->m->p.state.num;
	return NULL;
}

static const char *get_queue_num(struct ctx *c)
{
	return reply_u64(c, c->s->nq);
}

static const char *get_config(struct ctx *c)
{
	const struct vu_device_type *t = c->s->dev->type;
	struct vu_config *cfg = &c->m->p.config;

	/* A failed GET_CONFIG is answered with an empty payload. */
	if (!has_pf(c->s, VU_PF_CONFIG) || !t->get_config || cfg->offset > t->config_size ||
	    cfg->size > t->config_size - cfg->offset ||
	    t->get_config(c->s->dev, cfg->payload, cfg->offset, cfg->size) < 0)
		return reply(c, NULL, 0);
	return reply(c, cfg, VU_CONFIG_HDR_SIZE + cfg->size);
}

static const char *set_config(struct ctx *c)
{
	const struct vu_device_type *t = c->s->dev->type;
	const struct vu_config *cfg = &c->m->p.config;

	if (!has_pf(c->s, VU_PF_CONFIG) || !t->set_config)
		return "device config space is not writable";
	if (cfg->offset > t->config_size || cfg->size > t->config_size - cfg->offset)
		return "config write outside the config space";
	return t->set_config(c->s->dev, cfg->payload, cfg->offset, cfg->size) < 0 ?
		       "device refused the config write" : NULL;
}

static void unmap_inflight(struct vu_session *s)
{
	if (s->inflight)
		munmap(s->inflight, s->inflight_size);
	s->inflight = NULL;
	for (unsigned i = 0; i < s->nq; i++)
		s->q[i].vring.inflight = NULL;
}

static const char *check_inflight_geometry(struct vu_session *s, const struct vu_inflight *in)
{
	if (!has_pf(s, VU_PF_INFLIGHT_SHMFD))
		return "inflight buffer without INFLIGHT_SHMFD";
	if (in->num_queues == 0 || in->num_queues > s->nq)
		return "inflight queue count out of range";
	if (in->queue_size == 0 || in->queue_size > VU_VRING_MAX_SIZE ||
	    (in->queue_size & (in->queue_size - 1)))
		return "inflight queue size is not a power of 2";
	return NULL;
}

static const char *get_inflight_fd(struct ctx *c)
{
	struct vu_session *s = c->s;
	struct vu_inflight in = c->m->p.inflight;
	const char *why = check_inflight_geometry(s, &in);

	if (why)
		return why;
	unmap_inflight(s);
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
	s->inflight_qsize = in.queue_size;
	in.mmap_size = size;
	in.mmap_offset = 0;
	c->replied = true;
	int r = vu_msg_send(s->sock, VU_REQ_GET_INFLIGHT_FD, VU_FLAG_REPLY | VU_FLAG_VERSION, &in,
			    c->m->hdr.size, &fd, 1);
	close(fd);
	return r < 0 ? "cannot send the inflight buffer" : NULL;
}

static const char *set_inflight_fd(struct ctx *c)
{
	struct vu_session *s = c->s;
	const struct vu_inflight *in = &c->m->p.inflight;
	int fd = vu_msg_take_fd(c->m, 0);
	const char *why = check_inflight_geometry(s, in);
	struct stat st;

	if (!why && (in->mmap_size < in->num_queues * vu_inflight_queue_size(in->queue_size) ||
		     in->mmap_offset + in->mmap_size < in->mmap_offset || fstat(fd, &st) < 0 ||
		     in->mmap_offset + in->mmap_size > (uint64_t)st.st_size ||
		     in->mmap_offset % sysconf(_SC_PAGESIZE)))
		why = "inflight buffer does not fit its fd";
	if (!why) {
		unmap_inflight(s);
		void *p = mmap(NULL, in->mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, in->mmap_offset);
		if (p == MAP_FAILED)
			why = "cannot map the inflight buffer";
		else {
			s->inflight = p;
			s->inflight_size = in->mmap_size;
			s->inflight_qsize = in->queue_size;
		}
	}
	close(fd);
	return why;
}

static void on_backend_channel(void *opaque, int fd, uint32_t events)
{
	struct vu_session *s = opaque;
	char buf[256];

	/* Only acks to our in-band calls come back here; they need no action. */
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		vu_loop_unwatch(s->loop, fd);
		close_fd(&s->backend_fd);
	}
}

void vu_dev_config_changed(struct vu_dev *dev)
{
	struct vu_session *s = dev->session;

	if (!s || s->backend_fd < 0 || !has_pf(s, VU_PF_CONFIG))
		return;
	if (vu_msg_send(s->backend_fd, VU_BREQ_CONFIG_CHANGE_MSG, VU_FLAG_VERSION, NULL, 0, NULL, 0) < 0)
		vu_warn("cannot tell the front-end that the config space changed");
}

static const char *set_backend_req_fd(struct ctx *c)
{
	struct vu_session *s = c->s;
	if (!has_pf(s, VU_PF_BACKEND_REQ))
		return "SET_BACKEND_REQ_FD without BACKEND_REQ";
	if (s->backend_fd >= 0)
		vu_loop_unwatch(s->loop, s->backend_fd);
	close_fd(&s->backend_fd);
	s->backend_fd = vu_msg_take_fd(c->m, 0);
	if (vu_loop_watch(s->loop, s->backend_fd, EPOLLIN, on_backend_channel, s) < 0)
		return "cannot watch the back-end channel";
	return NULL;
}

/* Writing 0 is a device reset (virtio): the device drops what the driver set up. */
static const char *set_status(struct ctx *c)
{
	struct vu_session *s = c->s;

	if (c->m->p.u64 > 0xff)
		return "device status beyond 8 bits";
	if (c->m->p.u64 == 0 && s->status != 0 && s->dev->type->reset)
		s->dev->type->reset(s->dev);
	s->status = c->m->p.u64;
	return NULL;
}

static const char *get_status(struct ctx *c)
{
	uint64_t status = c->s->status;

	for (unsigned i = 0; i < c->s->nq; i++)
		if (c->s->q[i].vring.broken)
			status |= VIRTIO_STATUS_NEEDS_RESET;
	return reply_u64(c, status);
}

/* ---- device-specific messages: decoded here, handed to the device's hook ---- */

static const char *gpu_set_socket(struct ctx *c)
{
	const struct vu_device_type *t = c->s->dev->type;
	int fd = vu_msg_take_fd(c->m, 0);

	if (!t->set_gpu_socket) {
		close(fd);
		return "GPU_SET_SOCKET for a device that is not a gpu";
	}
	return t->set_gpu_socket(c->s->dev, fd) < 0 ? "the gpu refused its socket" : NULL;
}

static const char *send_rarp(struct ctx *c)
{
	const struct vu_device_type *t = c->s->dev->type;
	uint8_t mac[6];

	if (!t->send_rarp || !has_pf(c->s, VU_PF_RARP))
		return "SEND_RARP without the RARP protocol feature";
	memcpy(mac, &c->m->p.u64, sizeof(mac)); /* the MAC is in the first 6 bytes */
	return t->send_rarp(c->s->dev, mac) < 0 ? "the device cannot announce itself" : NULL;
}

static const char *net_set_mtu(struct ctx *c)
{
	const struct vu_device_type *t = c->s->dev->type;

	if (!t->set_mtu || !has_pf(c->s, VU_PF_NET_MTU))
		return "NET_SET_MTU without the NET_MTU protocol feature";
	if (c->m->p.u64 < 68 || c->m->p.u64 > 65535)
		return "MTU out of range";
	return t->set_mtu(c->s->dev, (uint16_t)c->m->p.u64) < 0 ? "the device refused the MTU" : NULL;
}

typedef const char *(*handler_fn)(struct ctx *c);
static const handler_fn handlers[VU_REQ_MAX] = {
	[VU_REQ_GET_FEATURES] = get_features,
	[VU_REQ_SET_FEATURES] = set_features,
	[VU_REQ_SET_OWNER] = nothing,
	[VU_REQ_RESET_OWNER] = reset_owner,
	[VU_REQ_SET_MEM_TABLE] = set_mem_table,
	[VU_REQ_SET_VRING_NUM] = set_vring_num,
	[VU_REQ_SET_VRING_ADDR] = set_vring_addr,
	[VU_REQ_SET_VRING_BASE] = set_vring_base,
	[VU_REQ_GET_VRING_BASE] = get_vring_base,
	[VU_REQ_SET_VRING_KICK] = set_vring_kick,
	[VU_REQ_SET_VRING_CALL] = set_vring_call,
	[VU_REQ_SET_VRING_ERR] = set_vring_err,
	[VU_REQ_GET_PROTOCOL_FEATURES] = get_protocol_features,
	[VU_REQ_SET_PROTOCOL_FEATURES] = set_protocol_features,
	[VU_REQ_GET_QUEUE_NUM] = get_queue_num,
	[VU_REQ_SET_VRING_ENABLE] = set_vring_enable,
	[VU_REQ_SET_BACKEND_REQ_FD] = set_backend_req_fd,
	[VU_REQ_GET_CONFIG] = get_config,
	[VU_REQ_SET_CONFIG] = set_config,
	[VU_REQ_RESET_DEVICE] = do_reset_device,
	[VU_REQ_VRING_KICK] = vring_kick,
	[VU_REQ_GET_MAX_MEM_SLOTS] = get_max_mem_slots,
	[VU_REQ_ADD_MEM_REG] = add_mem_reg,
	[VU_REQ_REM_MEM_REG] = rem_mem_reg,
	[VU_REQ_SET_STATUS] = set_status,
	[VU_REQ_GET_STATUS] = get_status,
	[VU_REQ_GET_INFLIGHT_FD] = get_inflight_fd,
	[VU_REQ_SET_INFLIGHT_FD] = set_inflight_fd,
	[VU_REQ_GPU_SET_SOCKET] = gpu_set_socket,
	[VU_REQ_SEND_RARP] = send_rarp,
	[VU_REQ_NET_SET_MTU] = net_set_mtu,
};

/* Requests that neither read nor change ring or memory state: rings keep running. */
static const bool leaves_rings_alone[VU_REQ_MAX] = {
	[VU_REQ_GET_FEATURES] = true,
	[VU_REQ_GET_PROTOCOL_FEATURES] = true,
	[VU_REQ_GET_QUEUE_NUM] = true,
	[VU_REQ_GET_MAX_MEM_SLOTS] = true,
	[VU_REQ_GET_STATUS] = true,
	[VU_REQ_GET_CONFIG] = true,
	[VU_REQ_SET_CONFIG] = true,
	[VU_REQ_SET_OWNER] = true,
};

/* ---- the connection ----------------------------------------------------- */

static void end_session(struct vu_session *s, const char *why)
{
	if (why)
		vu_err("closing the connection: %s", why);
	else
		vu_info("front-end disconnected");
	s->on_end(s->opaque, s);
}

/* Handles one message. Returns false when the connection must end (*why says why). */
static bool handle(struct vu_session *s, struct vu_msg *m, const char **why)
{
	struct ctx c = { .s = s, .m = m };
	uint32_t req = m->hdr.request;
	handler_fn fn = req < VU_REQ_MAX ? handlers[req] : NULL;
	bool pause = fn && !leaves_rings_alone[req];
	if (pause)
		pause_queues(s);
	*why = fn ? fn(&c) : "unsupported request";
	if (pause)
		resume_queues(s);
	vu_msg_close_fds(m);
	/* Looked at afterwards: SET_PROTOCOL_FEATURES may just have negotiated REPLY_ACK. */
	bool ack_wanted = (m->hdr.flags & VU_FLAG_NEED_REPLY) && has_pf(s, VU_PF_REPLY_ACK);
	if (req == VU_REQ_SET_PROTOCOL_FEATURES && !*why &&
	    has_pf(s, VU_PF_INBAND_NOTIFICATIONS) &&
	    (!has_pf(s, VU_PF_BACKEND_REQ) || !has_pf(s, VU_PF_REPLY_ACK))) {
		/* The spec's answer to this: close the connection. */
		*why = "INBAND_NOTIFICATIONS negotiated without BACKEND_REQ and REPLY_ACK";
		return false;
	}
	if (c.replied)
		return !*why;
	if (*why && !(ack_wanted && !vu_msg_has_reply(req)))
		return false;
	if (*why)
		vu_warn("%s failed: %s", vu_msg_name(req), *why);
	if (ack_wanted && vu_msg_reply(s->sock, m, &(uint64_t){ *why ? 1 : 0 }, 8) < 0) {
		*why = "cannot send the ack";
		return false;
	}
	return true;
}

static void on_message(void *opaque, int fd, uint32_t events)
{
	struct vu_session *s = opaque;
	struct vu_msg *m = &s->reader.m;
	const char *why;

	int r = vu_msg_read(fd, &s->reader);
	if (r < 0) {
		end_session(s, s->reader.why);
		return;
	}
	if (r == 0)
		return;
	vu_debug("%s size %u fds %d", vu_msg_name(m->hdr.request), m->hdr.size, m->nfds);
	if (!handle(s, m, &why)) {
		char msg[160];
		snprintf(msg, sizeof(msg), "%s: %s", vu_msg_name(m->hdr.request), why);
		end_session(s, msg);
	}
}

struct vu_session *vu_session_new(struct vu_loop *loop, int sock, struct vu_dev *dev,
				  vu_session_end_fn on_end, void *opaque)
{
	unsigned nq = dev->num_queues;
	struct vu_session *s = calloc(1, sizeof(*s) + nq * sizeof(s->q[0]));

	if (!s) {
		close(sock);
		return NULL;
	}
	*s = (struct vu_session){ .loop = loop, .sock = sock, .dev = dev, .on_end = on_end,
				  .opaque = opaque, .backend_fd = -1, .nq = nq };
	for (unsigned i = 0; i < nq; i++) {
		s->q[i].loop = dev->type->queue_loop ? dev->type->queue_loop(dev, i) : loop;
		s->q[i].kick_fd = -1;
		s->q[i].vring.index = i;
		s->q[i].vring.call_fd = s->q[i].vring.err_fd = -1;
		reset_queue(s, &s->q[i]);
	}
	s->poll_timer = vu_timer_new(loop, on_poll, s);
	if (!s->poll_timer || vu_loop_watch(loop, sock, EPOLLIN, on_message, s) < 0) {
		vu_timer_free(s->poll_timer);
		close(sock);
		free(s);
		return NULL;
	}
	dev->session = s;
	return s;
}

void vu_session_free(struct vu_session *s)
{
	if (!s)
		return;
	pause_queues(s);
	for (unsigned i = 0; i < s->nq; i++)
		reset_queue(s, &s->q[i]);
	if (s->dev->type->reset)
		s->dev->type->reset(s->dev);
	vu_mem_clear(&s->mem);
	unmap_inflight(s);
	if (s->backend_fd >= 0)
		vu_loop_unwatch(s->loop, s->backend_fd);
	close_fd(&s->backend_fd);
	vu_timer_free(s->poll_timer);
	vu_loop_unwatch(s->loop, s->sock);
	close(s->sock);
	if (s->dev->session == s)
		s->dev->session = NULL;
	free(s);
}
