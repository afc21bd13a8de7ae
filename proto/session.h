/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One front-end connection: feature negotiation, the memory table, ring states
 * ("Ring states" in vhost-user.rst), replies and REPLY_ACK. Everything is
 * released when the connection ends, so the next front-end starts clean.
 */
#ifndef VU_SESSION_H
#define VU_SESSION_H

#include "proto/device.h"
#include "proto/loop.h"

struct vu_session;
typedef void (*vu_session_end_fn)(void *opaque, struct vu_session *s);

/* Serves a connected socket (takes it). on_end runs when the connection is over. */
struct vu_session *vu_session_new(struct vu_loop *loop, int sock, struct vu_dev *dev,
				  vu_session_end_fn on_end, void *opaque);
/* Releases everything; also used by on_end's owner and at shutdown. */
void vu_session_free(struct vu_session *s);

#endif
