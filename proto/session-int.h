/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What session.c (the connection: negotiation, dispatch, config, status) and
 * session-rings.c (the rings and their inflight buffer) share. Devices never
 * include this: they see proto/device.h and proto/session.h.
 */
#ifndef VU_SESSION_INT_H
#define VU_SESSION_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "proto/device-state.h"
#include "proto/msg.h"
#include "proto/session.h"

struct session_queue {
	struct vu_vring vring;
	struct vu_loop *loop;   /* where the ring is processed (a device may use worker threads) */
	bool attached;          /* kick_fd is watched on loop */
	int kick_fd;
	bool polled;    /* kick set with NOFD: no eventfd, we look ourselves */
	/* kick_fd >= 0 || polled: SET_VRING_KICK came; the ring's geometry is fixed until it stops. */
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
	struct vu_state_xfer state;     /* DEVICE_STATE transfer, if one is under way */
	/* The inflight buffer (INFLIGHT_SHMFD): one region per queue, for the first inflight_nq. */
	uint8_t *inflight;
	size_t inflight_size;
	size_t inflight_stride;  /* bytes from one queue's region to the next */
	int inflight_guard;     /* its SIGBUS guard (the front-end holds its fd) */
	uint16_t inflight_qsize;
	unsigned inflight_nq;
	unsigned nq;
	struct session_queue q[];
};

static inline bool session_has_pf(const struct vu_session *s, int bit)
{
	return s->protocol_features & (1ull << bit);
}

static inline void session_close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/*
 * One message being handled. Handlers return NULL on success, else why it failed;
 * a handler whose request has a reply leaves it here, and the dispatcher sends it.
 */
struct session_ctx {
	struct vu_session *s;
	struct vu_msg *m;
	bool has_reply;
	union vu_payload reply;
	uint32_t reply_size;
	int reply_fd;           /* sent with the reply (and then closed), or -1 */
};

static inline const char *session_answer(struct session_ctx *c, const void *payload, uint32_t size)
{
	c->has_reply = true;
	c->reply_size = size;
	if (size)
		memcpy(&c->reply, payload, size);
	return NULL;
}

static inline const char *session_answer_u64(struct session_ctx *c, uint64_t v)
{
	return session_answer(c, &v, sizeof(v));
}

/* ---- session-rings.c ---- */

/* Around every message that changes ring or memory state (see pause_on_thread). */
void session_pause_rings(struct vu_session *s);
void session_resume_rings(struct vu_session *s);
/* Back to how a new connection finds the ring: stopped, disabled, no fds. */
void session_reset_ring(struct vu_session *s, struct session_queue *q);
/* Polls rings whose kick is NOFD while any is and in-band kicks are not negotiated. */
void session_update_polling(struct vu_session *s);
/* The poll timer's callback (opaque: the session). */
void session_poll_rings(void *opaque);
/* After the memory table changed (rings paused): ring addresses are looked up again. */
void session_remap_rings(struct vu_session *s);
void session_unmap_inflight(struct vu_session *s);
const char *session_set_vring_num(struct session_ctx *c);
const char *session_set_vring_addr(struct session_ctx *c);
const char *session_set_vring_base(struct session_ctx *c);
const char *session_get_vring_base(struct session_ctx *c);
const char *session_set_vring_kick(struct session_ctx *c);
const char *session_set_vring_call(struct session_ctx *c);
const char *session_set_vring_err(struct session_ctx *c);
const char *session_vring_kick(struct session_ctx *c);
const char *session_set_vring_enable(struct session_ctx *c);
const char *session_get_inflight_fd(struct session_ctx *c);
const char *session_set_inflight_fd(struct session_ctx *c);

#endif
