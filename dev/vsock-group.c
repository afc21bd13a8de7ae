/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Sibling VMs: the devices of one process with the same --vm-group reach each other by
 * CID. A packet from one guest to a sibling's CID goes into the sibling's receive
 * buffers as it is: the connection is the two guests' business, credit included, end
 * to end, and the back-end keeps no state for it. Its data is split over as many
 * receive buffers as it needs (Linux sends up to 64 KiB, receives in 4 KiB). While the
 * sibling has no buffers (or its rings are stopped: a paused VM) packets wait in its
 * relay queue, in order; when that is full, the sender's transmit ring waits for it
 * (group members trust each other: a sibling whose driver never gives buffers holds
 * up its senders' rings). A sibling without a front-end refuses (RST).
 */
#include <endian.h>
#include <stdlib.h>
#include <string.h>

#include "dev/vsock.h"
#include "proto/iov.h"
#include "proto/log.h"

#define RELAY_QUEUE (1u << 20)

static bool same_group(const struct vsock *a, const struct vsock *b)
{
	return a != b && a->group && b->group && !strcmp(a->group, b->group);
}

struct vsock *vsock_group_find(struct vsock *v, uint64_t cid)
{
	for (struct vsock *o = vsock_instances; o; o = o->next_instance)
		if (same_group(v, o) && o->guest_cid == cid)
			return o;
	return NULL;
}

int vsock_group_init(struct vsock *v)
{
	if (!v->group)
		return 0;
	for (struct vsock *o = vsock_instances; o; o = o->next_instance)
		if (same_group(v, o) && o->guest_cid == v->guest_cid) {
			vu_err("vsock: two VMs with --guest-cid=%u in group %s", v->guest_cid, v->group);
			return -1;
		}
	v->relayq = malloc(RELAY_QUEUE);
	v->relayq_size = RELAY_QUEUE;
	if (!v->relayq) {
		vu_err("vsock: out of memory");
		return -1;
	}
	return 0;
}

void vsock_group_fini(struct vsock *v)
{
	vsock_group_down(v);
	free(v->relayq);
	v->relayq = NULL;
}

/* ---- the relay queue: records of a header and its data, in a ring of bytes ---- */

/* Bytes [at, at + len) of the queue (from its head) as at most two iovecs. */
static unsigned queue_iov(const struct vsock *v, uint32_t at, uint32_t len, struct iovec iov[2])
{
	uint32_t start = (v->relayq_head + at) % v->relayq_size;
	uint32_t first = len < v->relayq_size - start ? len : v->relayq_size - start;

	iov[0] = (struct iovec){ v->relayq + start, first };
	iov[1] = (struct iovec){ v->relayq, len - first };
	return len > first ? 2 : 1;
}

static void queue_put(struct vsock *v, const struct vsock_hdr *h, const struct iovec *src, unsigned n, size_t off,
		      uint32_t len)
{
	struct iovec iov[2];
	unsigned k = queue_iov(v, v->relayq_len, VSOCK_HDR_LEN, iov);

	vu_iov_from_buf(iov, k, 0, h, VSOCK_HDR_LEN);
	k = queue_iov(v, v->relayq_len + VSOCK_HDR_LEN, len, iov);
	vu_iov_copy(iov, k, 0, src, n, off, len);
	v->relayq_len += VSOCK_HDR_LEN + len;
}

/*
 * Puts h and len bytes of data (at off in src) into v's receive buffers, one header
 * each; *done says how much data went (a packet without data: one buffer, done 0).
 * False when not all of it found a buffer.
 */
static bool deliver(struct vsock *v, struct vsock_hdr h, const struct iovec *src, unsigned n, size_t off, uint32_t len,
		    uint32_t *done)
{
	size_t room;

	*done = 0;
	do {
		if (!vsock_rx_get(v, 0, &room))
			return false;
		if (!room && len) {
			vu_vring_unpop(v->rx, 1); /* a buffer for headers only: data waits for better ones */
			return false;
		}
		uint32_t chunk = len - *done < room ? len - *done : (uint32_t)room;
		vu_iov_copy(v->rx_req[0].iov, v->rx_req[0].in, VSOCK_HDR_LEN, src, n, off + *done, chunk);
		h.len = htole32(chunk);
		vsock_rx_put(v, 0, &h, chunk);
		*done += chunk;
	} while (*done < len);
	return true;
}

int vsock_group_relay(struct vsock *v, struct vsock *sib, const struct vsock_hdr *h, const struct vu_req *req,
		      uint32_t len)
{
	uint32_t done = 0;

	if (!sib->up)
		return VSOCK_RELAY_REFUSED;
	/* Room for all of it first: once part is delivered, the rest must be taken. */
	if (sib->relayq_size - sib->relayq_len < VSOCK_HDR_LEN + len) {
		v->stalled_on = sib;
		return VSOCK_RELAY_FULL;
	}
	if (sib->relayq_len || !deliver(sib, *h, req->iov, req->out, VSOCK_HDR_LEN, len, &done)) {
		struct vsock_hdr rest = *h;
		rest.len = htole32(len - done);
		queue_put(sib, &rest, req->iov, req->out, VSOCK_HDR_LEN + done, len - done);
	}
	sib->relay_touched = true;
	v->stats.relayed++;
	return VSOCK_RELAY_DONE;
}

void vsock_group_drain(struct vsock *v)
{
	bool moved = false;

	while (v->relayq_len) {
		struct vsock_hdr h;
		struct iovec iov[2];
		unsigned k = queue_iov(v, 0, VSOCK_HDR_LEN, iov);
		vu_iov_to_buf(iov, k, 0, &h, VSOCK_HDR_LEN);
		uint32_t len = le32toh(h.len), done;
		k = queue_iov(v, VSOCK_HDR_LEN, len, iov);
		bool all = deliver(v, h, iov, k, 0, len, &done);
		if (all) {
			done += VSOCK_HDR_LEN;
		} else if (done) {
			/* What is left keeps its place: its header is written again before it. */
			h.len = htole32(len - done);
			k = queue_iov(v, done, VSOCK_HDR_LEN, iov);
			vu_iov_from_buf(iov, k, 0, &h, VSOCK_HDR_LEN);
		}
		v->relayq_head = (v->relayq_head + done) % v->relayq_size;
		v->relayq_len -= done;
		moved |= done > 0;
		if (!all)
			break;
	}
	if (!v->relayq_len)
		v->relayq_head = 0;
	if (moved)
		for (struct vsock *o = vsock_instances; o; o = o->next_instance)
			if (o->stalled_on == v) {
				o->stalled_on = NULL;
				vsock_later(o);
			}
}

void vsock_group_settle(struct vsock *v)
{
	for (struct vsock *o = vsock_instances; o; o = o->next_instance) {
		if (!o->relay_touched)
			continue;
		o->relay_touched = false;
		if (o->rx && o->rx_pushed)
			vu_vring_flush(o->rx);
		o->rx_pushed = false;
		/* Packets wait: a kick when buffers come (now, if they came meanwhile). */
		if (o->relayq_len && o->rx && vu_vring_kicks(o->rx, true))
			vsock_later(o);
	}
}

void vsock_group_down(struct vsock *v)
{
	if (v->relayq_len)
		vu_info("vsock: guest CID %u: %u bytes from siblings dropped: the front-end left", v->guest_cid,
			v->relayq_len);
	v->relayq_head = v->relayq_len = 0;
	for (struct vsock *o = vsock_instances; o; o = o->next_instance)
		if (o->stalled_on == v) {
			o->stalled_on = NULL;
			vsock_later(o);
		}
}
