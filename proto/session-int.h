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
#include <unistd.h>

#include "proto/msg.h"
#include "proto/session.h"

struct queue {
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
	/* The inflight buffer (INFLIGHT_SHMFD): one region per queue, for the first inflight_nq. */
	uint8_t *inflight;
	size_t inflight_size;
	int inflight_guard;     /* its SIGBUS guard (the front-end holds its fd) */
	uint16_t inflight_qsize;
	unsigned inflight_nq;
	unsigned nq;
	struct queue q[];
};

static inline bool has_pf(const struct vu_session *s, int bit)
{
	return s->protocol_features & (1ull << bit);
}

static inline void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* One message being handled: handlers return NULL on success, else why it failed. */
struct ctx {
	struct vu_session *s;
	struct vu_msg *m;
	bool replied;
};

/* Replies to the message (the handler then returns what this returns). */
const char *session_reply(struct ctx *c, const void *payload, uint32_t size);
const char *session_reply_u64(struct ctx *c, uint64_t v);

/* ---- session-rings.c ---- */

/* Around every message that changes ring or memory state (see pause_on_thread). */
void session_pause_rings(struct vu_session *s);
void session_resume_rings(struct vu_session *s);
/* Back to how a new connection finds the ring: stopped, disabled, no fds. */
void session_reset_ring(struct vu_session *s, struct queue *q);
/* Polls rings whose kick is NOFD while any is and in-band kicks are not negotiated. */
void session_update_polling(struct vu_session *s);
/* The poll timer's callback (opaque: the session). */
void session_poll_rings(void *opaque);
/* After the memory table changed (rings paused): ring addresses are looked up again. */
void session_remap_rings(struct vu_session *s);
void session_unmap_inflight(struct vu_session *s);
/* The front-end shrank the file of a mapping we use (a SIGBUS guard was hit). */
void session_memory_lost(void *opaque);
const char *session_set_vring_num(struct ctx *c);
const char *session_set_vring_addr(struct ctx *c);
const char *session_set_vring_base(struct ctx *c);
const char *session_get_vring_base(struct ctx *c);
const char *session_set_vring_kick(struct ctx *c);
const char *session_set_vring_call(struct ctx *c);
const char *session_set_vring_err(struct ctx *c);
const char *session_vring_kick(struct ctx *c);
const char *session_set_vring_enable(struct ctx *c);
const char *session_get_inflight_fd(struct ctx *c);
const char *session_set_inflight_fd(struct ctx *c);

#endif
