/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A front-end connection: reading messages, dispatching them (with the rings
 * paused around those that change ring or memory state), REPLY_ACK, feature and
 * protocol-feature negotiation, the memory table, config space, status, the
 * back-end channel and the device-specific messages. The rings' own messages
 * and their running are in session-rings.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/log.h"
#include "proto/session-int.h"

static const uint64_t core_features = 1ull << VIRTIO_F_VERSION_1 |
				      1ull << VIRTIO_RING_F_INDIRECT_DESC |
				      1ull << VIRTIO_RING_F_EVENT_IDX |
				      1ull << VIRTIO_F_RING_PACKED |
				      1ull << VHOST_F_LOG_ALL |
				      1ull << VHOST_USER_F_PROTOCOL_FEATURES;

static uint64_t offered_features(const struct vu_session *s)
{
	uint64_t f = core_features | s->dev->features;

	return s->dev->type->unmigratable ? f & ~(1ull << VHOST_F_LOG_ALL) : f;
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
	if (!s->dev->type->unmigratable)
		pf |= 1ull << VU_PF_LOG_SHMFD;
	if (s->dev->type->config_size)
		pf |= 1ull << VU_PF_CONFIG;
	if (s->dev->type->inflight)
		pf |= 1ull << VU_PF_INFLIGHT_SHMFD;
	if (s->dev->type->send_rarp)
		pf |= 1ull << VU_PF_RARP;
	if (s->dev->type->set_mtu)
		pf |= 1ull << VU_PF_NET_MTU;
	if (s->dev->type->state_save && s->dev->type->state_load)
		pf |= 1ull << VU_PF_DEVICE_STATE;
	return pf;
}

static void reset_device(struct vu_session *s)
{
	for (unsigned i = 0; i < s->nq; i++)
		session_reset_ring(s, &s->q[i]);
	session_update_polling(s);
	s->features = 0;
	s->status = 0;
	if (s->dev->type->reset)
		s->dev->type->reset(s->dev);
}

/* ---- message handlers: NULL on success, else why the request failed ---- */

static const char *get_features(struct session_ctx *c)
{
	return session_answer_u64(c, offered_features(c->s));
}

static const char *set_features(struct session_ctx *c)
{
	struct vu_session *s = c->s;
	uint64_t f = c->m->p.u64;

	if (f & ~(offered_features(s) | honoured_unoffered))
		return "front-end acked features that were neither offered nor supported";
	/* The ring layout is the rings' own business, fixed while they run. */
	bool packed = f & (1ull << VIRTIO_F_RING_PACKED);
	for (unsigned i = 0; i < s->nq; i++)
		if (s->q[i].vring.packed != packed && (s->q[i].started || s->q[i].kick_fd >= 0 || s->q[i].polled))
			return "ring layout changed while a ring runs";
	s->features = f;
	vu_debug("features %#llx: %s rings", (unsigned long long)f, packed ? "packed" : "split");
	vu_mem_want_log(&s->mem, f & (1ull << VHOST_F_LOG_ALL));
	if (s->dev->type->set_features)
		s->dev->type->set_features(s->dev, f);
	for (unsigned i = 0; i < s->nq; i++) {
		struct session_queue *q = &s->q[i];
		q->vring.event_idx = f & (1ull << VIRTIO_RING_F_EVENT_IDX);
		q->vring.indirect = f & (1ull << VIRTIO_RING_F_INDIRECT_DESC);
		q->vring.in_order = f & (1ull << VIRTIO_F_IN_ORDER);
		if (q->vring.packed != packed) {
			/* Addresses already set are looked at again with the new layout. */
			q->vring.packed = packed;
			if (q->vring.desc_uva && !vu_vring_map(&q->vring, &s->mem))
				q->vring.desc_uva = 0;
		}
		/* Without protocol features rings are enabled from the start. */
		if (!(f & (1ull << VHOST_USER_F_PROTOCOL_FEATURES)))
			q->enabled = true;
	}
	return NULL;
}

static const char *get_protocol_features(struct session_ctx *c)
{
	return session_answer_u64(c, offered_protocol_features(c->s));
}

static const char *set_protocol_features(struct session_ctx *c)
{
	uint64_t pf = c->m->p.u64;

	if (pf & ~offered_protocol_features(c->s))
		return "front-end acked protocol features that were not offered";
	c->s->protocol_features = pf;
	session_update_polling(c->s);
	return NULL;
}

static const char *nothing(struct session_ctx *c)
{
	return NULL;
}

/*
 * Deprecated; the spec recommends ignoring it or disabling all rings, and warns
 * that discarding connection state leads to bugs. Rings are disabled.
 */
static const char *reset_owner(struct session_ctx *c)
{
	for (unsigned i = 0; i < c->s->nq; i++)
		c->s->q[i].enabled = false;
	return NULL;
}

static const char *do_reset_device(struct session_ctx *c)
{
	if (!session_has_pf(c->s, VU_PF_RESET_DEVICE))
		return "RESET_DEVICE without its protocol feature";
	reset_device(c->s);
	return NULL;
}

/* After the table changed (rings paused): rings and the device look again. */
static void memory_changed(struct vu_session *s)
{
	session_remap_rings(s);
	if (s->dev->type->mem_changed)
		s->dev->type->mem_changed(s->dev, &s->mem);
}

static const char *set_mem_table(struct session_ctx *c)
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
	memory_changed(s);
	return why;
}

static const char *add_mem_reg(struct session_ctx *c)
{
	if (!session_has_pf(c->s, VU_PF_CONFIGURE_MEM_SLOTS))
		return "ADD_MEM_REG without CONFIGURE_MEM_SLOTS";
	const char *why = vu_mem_add(&c->s->mem, &c->m->p.mem_one.region, vu_msg_take_fd(c->m, 0));
	memory_changed(c->s);
	return why;
}

static const char *rem_mem_reg(struct session_ctx *c)
{
	if (!session_has_pf(c->s, VU_PF_CONFIGURE_MEM_SLOTS))
		return "REM_MEM_REG without CONFIGURE_MEM_SLOTS";
	const char *why = vu_mem_remove(&c->s->mem, &c->m->p.mem_one.region);
	memory_changed(c->s);
	return why;
}

/* The dirty log of a live migration; the reply tells the front-end it is in use. */
static const char *set_log_base(struct session_ctx *c)
{
	if (!session_has_pf(c->s, VU_PF_LOG_SHMFD) || c->m->nfds != 1)
		return "SET_LOG_BASE without LOG_SHMFD and its fd";
	const char *why = vu_mem_set_log(&c->s->mem, vu_msg_take_fd(c->m, 0), &c->m->p.log);
	return why ? why : session_answer(c, &c->m->p.log, sizeof(c->m->p.log));
}

static const char *set_log_fd(struct session_ctx *c)
{
	session_close_fd(&c->s->mem.log.notify_fd);
	c->s->mem.log.notify_fd = vu_msg_take_fd(c->m, 0);
	return NULL;
}

static const char *get_max_mem_slots(struct session_ctx *c)
{
	return session_answer_u64(c, VU_MAX_MEM_SLOTS);
}

static const char *get_queue_num(struct session_ctx *c)
{
	return session_answer_u64(c, c->s->nq);
}

static const char *get_config(struct session_ctx *c)
{
	const struct vu_device_type *t = c->s->dev->type;
	struct vu_config *cfg = &c->m->p.config;

	/* A failed GET_CONFIG is answered with an empty payload. */
	if (!session_has_pf(c->s, VU_PF_CONFIG) || !t->get_config || cfg->offset > t->config_size ||
	    cfg->size > t->config_size - cfg->offset ||
	    t->get_config(c->s->dev, cfg->payload, cfg->offset, cfg->size) < 0)
		return session_answer(c, NULL, 0);
	return session_answer(c, cfg, VU_CONFIG_HDR_SIZE + cfg->size);
}

static const char *set_config(struct session_ctx *c)
{
	const struct vu_device_type *t = c->s->dev->type;
	const struct vu_config *cfg = &c->m->p.config;

	if (!session_has_pf(c->s, VU_PF_CONFIG) || !t->set_config)
		return "device config space is not writable";
	if (cfg->offset > t->config_size || cfg->size > t->config_size - cfg->offset)
		return "config write outside the config space";
	return t->set_config(c->s->dev, cfg->payload, cfg->offset, cfg->size) < 0 ?
		       "device refused the config write" : NULL;
}

static void on_backend_channel(void *opaque, int fd, uint32_t events)
{
	struct vu_session *s = opaque;
	char buf[256];

	/* Only acks to our in-band calls come back here; they need no action. */
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		vu_loop_unwatch(s->loop, fd);
		session_close_fd(&s->backend_fd);
	}
}

void vu_dev_config_changed(struct vu_dev *dev)
{
	struct vu_session *s = dev->session;

	if (!s || s->backend_fd < 0 || !session_has_pf(s, VU_PF_CONFIG))
		return;
	if (vu_msg_send(s->backend_fd, VU_BREQ_CONFIG_CHANGE_MSG, VU_FLAG_VERSION, NULL, 0, NULL, 0) < 0)
		vu_warn("cannot tell the front-end that the config space changed");
}

static const char *set_backend_req_fd(struct session_ctx *c)
{
	struct vu_session *s = c->s;
	if (!session_has_pf(s, VU_PF_BACKEND_REQ))
		return "SET_BACKEND_REQ_FD without BACKEND_REQ";
	if (s->backend_fd >= 0)
		vu_loop_unwatch(s->loop, s->backend_fd);
	session_close_fd(&s->backend_fd);
	s->backend_fd = vu_msg_take_fd(c->m, 0);
	if (vu_loop_watch(s->loop, s->backend_fd, EPOLLIN, on_backend_channel, s) < 0)
		return "cannot watch the back-end channel";
	return NULL;
}

/* Writing 0 is a device reset (virtio): the device drops what the driver set up. */
static const char *set_status(struct session_ctx *c)
{
	struct vu_session *s = c->s;

	if (c->m->p.u64 > 0xff)
		return "device status beyond 8 bits";
	if (c->m->p.u64 == 0 && s->status != 0 && s->dev->type->reset)
		s->dev->type->reset(s->dev);
	s->status = c->m->p.u64;
	return NULL;
}

static const char *get_status(struct session_ctx *c)
{
	uint64_t status = c->s->status;

	for (unsigned i = 0; i < c->s->nq; i++)
		if (c->s->q[i].vring.broken)
			status |= VIRTIO_STATUS_NEEDS_RESET;
	return session_answer_u64(c, status);
}

/* ---- device-specific messages: decoded here, handed to the device's hook ---- */

static const char *gpu_set_socket(struct session_ctx *c)
{
	const struct vu_device_type *t = c->s->dev->type;
	int fd = vu_msg_take_fd(c->m, 0);

	if (!t->set_gpu_socket) {
		close(fd);
		return "GPU_SET_SOCKET for a device that is not a gpu";
	}
	return t->set_gpu_socket(c->s->dev, fd) < 0 ? "the gpu refused its socket" : NULL;
}

static const char *send_rarp(struct session_ctx *c)
{
	const struct vu_device_type *t = c->s->dev->type;
	uint8_t mac[6];

	if (!t->send_rarp || !session_has_pf(c->s, VU_PF_RARP))
		return "SEND_RARP without the RARP protocol feature";
	memcpy(mac, &c->m->p.u64, sizeof(mac)); /* the MAC is in the first 6 bytes */
	return t->send_rarp(c->s->dev, mac) < 0 ? "the device cannot announce itself" : NULL;
}

static const char *net_set_mtu(struct session_ctx *c)
{
	const struct vu_device_type *t = c->s->dev->type;

	if (!t->set_mtu || !session_has_pf(c->s, VU_PF_NET_MTU))
		return "NET_SET_MTU without the NET_MTU protocol feature";
	if (c->m->p.u64 < 68 || c->m->p.u64 > 65535)
		return "MTU out of range";
	return t->set_mtu(c->s->dev, (uint16_t)c->m->p.u64) < 0 ? "the device refused the MTU" : NULL;
}

/* Bits of SET_DEVICE_STATE_FD's reply: the front-end's fd is used (we return none). */
#define STATE_FD_NOT_RETURNED (1ull << 8)

static const char *set_device_state_fd(struct session_ctx *c)
{
	struct vu_session *s = c->s;
	int fd = vu_msg_take_fd(c->m, 0);
	const char *why = NULL;
	/* payload: u32 direction, u32 phase (0: after memory, device stopped: the only one) */
	uint32_t direction = (uint32_t)c->m->p.u64, phase = (uint32_t)(c->m->p.u64 >> 32);

	if (!session_has_pf(s, VU_PF_DEVICE_STATE))
		why = "SET_DEVICE_STATE_FD without DEVICE_STATE";
	else if (phase != 0)
		why = "device state transfer in an unknown migration phase";
	for (unsigned i = 0; i < s->nq && !why; i++)
		if (s->q[i].started)
			why = "device state transfer while a ring runs";
	if (why) {
		if (fd >= 0)
			close(fd);
	} else {
		why = vu_state_start(&s->state, s->loop, s->dev, direction, fd);
	}
	if (why)
		vu_warn("SET_DEVICE_STATE_FD: %s", why);
	return session_answer_u64(c, why ? 1 | STATE_FD_NOT_RETURNED : STATE_FD_NOT_RETURNED);
}

static const char *check_device_state(struct session_ctx *c)
{
	if (!session_has_pf(c->s, VU_PF_DEVICE_STATE))
		return "CHECK_DEVICE_STATE without DEVICE_STATE";
	return session_answer_u64(c, vu_state_check(&c->s->state) < 0 ? 1 : 0);
}

typedef const char *(*handler_fn)(struct session_ctx *c);
static const handler_fn handlers[VU_REQ_MAX] = {
	[VU_REQ_GET_FEATURES] = get_features,
	[VU_REQ_SET_FEATURES] = set_features,
	[VU_REQ_SET_OWNER] = nothing,
	[VU_REQ_RESET_OWNER] = reset_owner,
	[VU_REQ_SET_MEM_TABLE] = set_mem_table,
	[VU_REQ_SET_LOG_BASE] = set_log_base,
	[VU_REQ_SET_LOG_FD] = set_log_fd,
	[VU_REQ_SET_VRING_NUM] = session_set_vring_num,
	[VU_REQ_SET_VRING_ADDR] = session_set_vring_addr,
	[VU_REQ_SET_VRING_BASE] = session_set_vring_base,
	[VU_REQ_GET_VRING_BASE] = session_get_vring_base,
	[VU_REQ_SET_VRING_KICK] = session_set_vring_kick,
	[VU_REQ_SET_VRING_CALL] = session_set_vring_call,
	[VU_REQ_SET_VRING_ERR] = session_set_vring_err,
	[VU_REQ_GET_PROTOCOL_FEATURES] = get_protocol_features,
	[VU_REQ_SET_PROTOCOL_FEATURES] = set_protocol_features,
	[VU_REQ_GET_QUEUE_NUM] = get_queue_num,
	[VU_REQ_SET_VRING_ENABLE] = session_set_vring_enable,
	[VU_REQ_SET_BACKEND_REQ_FD] = set_backend_req_fd,
	[VU_REQ_GET_CONFIG] = get_config,
	[VU_REQ_SET_CONFIG] = set_config,
	[VU_REQ_RESET_DEVICE] = do_reset_device,
	[VU_REQ_VRING_KICK] = session_vring_kick,
	[VU_REQ_GET_MAX_MEM_SLOTS] = get_max_mem_slots,
	[VU_REQ_ADD_MEM_REG] = add_mem_reg,
	[VU_REQ_REM_MEM_REG] = rem_mem_reg,
	[VU_REQ_SET_STATUS] = set_status,
	[VU_REQ_GET_STATUS] = get_status,
	[VU_REQ_GET_INFLIGHT_FD] = session_get_inflight_fd,
	[VU_REQ_SET_INFLIGHT_FD] = session_set_inflight_fd,
	[VU_REQ_GPU_SET_SOCKET] = gpu_set_socket,
	[VU_REQ_SEND_RARP] = send_rarp,
	[VU_REQ_NET_SET_MTU] = net_set_mtu,
	[VU_REQ_SET_DEVICE_STATE_FD] = set_device_state_fd,
	[VU_REQ_CHECK_DEVICE_STATE] = check_device_state,
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

/* The front-end shrank the file of a mapping we use (a SIGBUS guard was hit). */
static void memory_lost(void *opaque)
{
	end_session(opaque, "the front-end shrank the file of guest memory or of the inflight "
			    "buffer under its mapping (SIGBUS)");
}

/* Handles one message. Returns false when the connection must end (*why says why). */
static bool handle(struct vu_session *s, struct vu_msg *m, const char **why)
{
	struct session_ctx c = { .s = s, .m = m, .reply_fd = -1 };
	uint32_t req = m->hdr.request;
	handler_fn fn = req < VU_REQ_MAX ? handlers[req] : NULL;
	bool pause = fn && !leaves_rings_alone[req];
	if (pause)
		session_pause_rings(s);
	*why = fn ? fn(&c) : "unsupported request";
	if (pause)
		session_resume_rings(s);
	vu_msg_close_fds(m);
	/* Looked at afterwards: SET_PROTOCOL_FEATURES may just have negotiated REPLY_ACK. */
	bool ack_wanted = (m->hdr.flags & VU_FLAG_NEED_REPLY) && session_has_pf(s, VU_PF_REPLY_ACK);
	if (req == VU_REQ_SET_PROTOCOL_FEATURES && !*why &&
	    session_has_pf(s, VU_PF_INBAND_NOTIFICATIONS) &&
	    (!session_has_pf(s, VU_PF_BACKEND_REQ) || !session_has_pf(s, VU_PF_REPLY_ACK))) {
		/* The spec's answer to this: close the connection. */
		*why = "INBAND_NOTIFICATIONS negotiated without BACKEND_REQ and REPLY_ACK";
		return false;
	}
	if (c.has_reply) {
		if (!*why && vu_msg_send(s->sock, req, VU_FLAG_REPLY | VU_FLAG_VERSION, &c.reply, c.reply_size,
					 &c.reply_fd, c.reply_fd >= 0) < 0)
			*why = "cannot send the reply";
		if (c.reply_fd >= 0)
			close(c.reply_fd);
		return !*why;
	}
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
				  .opaque = opaque, .backend_fd = -1, .inflight_guard = -1, .nq = nq };
	s->mem.on_lost = memory_lost;
	s->mem.lost_opaque = s;
	s->mem.log.notify_fd = -1;
	vu_state_init(&s->state);
	for (unsigned i = 0; i < nq; i++) {
		s->q[i].loop = dev->type->queue_loop ? dev->type->queue_loop(dev, i) : loop;
		s->q[i].kick_fd = -1;
		s->q[i].vring.index = i;
		s->q[i].vring.call_fd = s->q[i].vring.err_fd = -1;
		session_reset_ring(s, &s->q[i]);
	}
	s->poll_timer = vu_timer_new(loop, session_poll_rings, s);
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
	session_pause_rings(s);
	for (unsigned i = 0; i < s->nq; i++)
		session_reset_ring(s, &s->q[i]);
	if (s->dev->type->reset)
		s->dev->type->reset(s->dev);
	vu_state_cancel(&s->state);
	vu_mem_clear(&s->mem);
	vu_mem_clear_log(&s->mem);
	session_close_fd(&s->mem.log.notify_fd);
	if (s->dev->type->mem_changed)
		s->dev->type->mem_changed(s->dev, &s->mem);
	session_unmap_inflight(s);
	if (s->backend_fd >= 0)
		vu_loop_unwatch(s->loop, s->backend_fd);
	session_close_fd(&s->backend_fd);
	vu_timer_free(s->poll_timer);
	vu_loop_unwatch(s->loop, s->sock);
	close(s->sock);
	if (s->dev->session == s)
		s->dev->session = NULL;
	free(s);
}
