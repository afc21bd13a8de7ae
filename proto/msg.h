/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One vhost-user message in or out. The only code that reads the wire: it
 * checks the header, the payload size each request requires and the number of
 * fds each request may carry, and closes every fd it does not hand on.
 */
#ifndef VU_MSG_H
#define VU_MSG_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/wire.h"

struct vu_msg {
	struct vu_hdr hdr;
	union vu_payload p;
	int fds[VU_MAX_FDS];
	int nfds;
};

/*
 * A message being received. A front-end may send a message in pieces: reading
 * never blocks, the reader keeps what came so far until the message is whole,
 * so one slow or stalled front-end never holds up the loop.
 */
struct vu_msg_reader {
	struct vu_msg m;
	size_t got;         /* bytes of header and payload so far */
	const char *why;    /* after -1: what was wrong, NULL for an orderly end */
};

/*
 * Reads what the socket has. Returns 1 when r->m is a whole, checked message,
 * 0 when more must come, -1 when the connection must end (r->why says why; no
 * fd is left open).
 */
int vu_msg_read(int sock, struct vu_msg_reader *r);

/* Takes fd i out of the message (the caller owns it now); -1 if absent. */
int vu_msg_take_fd(struct vu_msg *m, int i);
void vu_msg_close_fds(struct vu_msg *m);

/* True when the request id carries its own reply payload (GET_*). */
bool vu_msg_has_reply(uint32_t request);

const char *vu_msg_name(uint32_t request);

/* Sends without blocking; a full socket buffer is an error (-EAGAIN). */
int vu_msg_send(int sock, uint32_t request, uint32_t flags, const void *payload, uint32_t size,
		const int *fds, int nfds);
/* A reply to req: same request id, flags exactly REPLY|VERSION. */
int vu_msg_reply(int sock, const struct vu_msg *req, const void *payload, uint32_t size);

#endif
