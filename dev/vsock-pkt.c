/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The vsock packet state machine (virtio 1.3, 5.10.6): packets from the guest on the
 * transmit ring, packets to it in receive buffers, and the credit each side gives.
 *
 * Guest to host: every transmit packet is handled when it is taken, so one
 * connection never holds up the ring. Its data goes to the host socket at once, or
 * into the connection's buffer, which can always take it: we gave the guest no more
 * credit (buf_alloc) than the buffer has room (our fwd_cnt counts what the host
 * socket took).
 *
 * Host to guest: a connection reads its socket straight into a receive buffer, never
 * more than the guest's credit (peer_buf_alloc - (tx_cnt - peer_fwd_cnt)). With no
 * credit it stops reading (the host writer blocks in its own socket); with no receive
 * buffer it waits, in order, on v->waiting with what it owes (control packets are
 * flags, owed once each). Only RSTs for packets without a connection are queued; when
 * that queue is full the transmit ring waits for the receive ring.
 */
#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dev/vsock.h"
#include "proto/iov.h"
#include "proto/log.h"

uint32_t vsock_peer_free(const struct vsock_conn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;

	return in_flight > c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

/* ---- receive buffers ------------------------------------------------------------- */

bool vsock_rx_get(struct vsock *v, unsigned i, size_t *room)
{
	struct vu_req *req = &v->rx_req[i];

	if (!v->rx)
		return false;
	req->iov = v->rx_iov[i];
	req->max_iov = VSOCK_MAX_IOV;
	if (vu_vring_pop(v->rx, req) <= 0)
		return false;
	if (req->out) {
		vu_vring_fail(v->rx, "receive buffer with a device-readable part");
		return false;
	}
	size_t total = vu_iov_size(req->iov, req->in);
	if (total < VSOCK_HDR_LEN) {
		vu_vring_fail(v->rx, "receive buffer smaller than a packet header");
		return false;
	}
	*room = total - VSOCK_HDR_LEN;
	return true;
}

void vsock_rx_put(struct vsock *v, unsigned i, const struct vsock_hdr *h, uint32_t len)
{
	vu_iov_from_buf(v->rx_req[i].iov, v->rx_req[i].in, 0, h, VSOCK_HDR_LEN);
	vu_vring_push(v->rx, &v->rx_req[i], VSOCK_HDR_LEN + len);
	v->rx_pushed = true;
}

/* A header from the host side of c; it tells the guest our credit, as every packet does. */
static void conn_hdr(struct vsock_conn *c, struct vsock_hdr *h, uint16_t op, uint32_t flags, uint32_t len)
{
	*h = (struct vsock_hdr){
		.src_cid = htole64(VSOCK_CID_HOST),
		.dst_cid = htole64(c->v->guest_cid),
		.src_port = htole32(c->local_port),
		.dst_port = htole32(c->peer_port),
		.len = htole32(len),
		.type = htole16(VSOCK_TYPE_STREAM),
		.op = htole16(op),
		.flags = htole32(flags),
		.buf_alloc = htole32(c->buf_alloc),
		.fwd_cnt = htole32(c->fwd_cnt),
	};
	c->fwd_cnt_sent = c->fwd_cnt;
	c->owe &= ~OWE_CREDIT_UPDATE;
}

static void wait_for_buffers(struct vsock_conn *c)
{
	if (c->waiting)
		return;
	vsock_list_add_tail(&c->v->waiting, &c->wait);
	c->waiting = true;
}

/* ---- what a connection sends ------------------------------------------------------ */

static const struct {
	uint8_t bit;
	uint16_t op;
} owed_order[] = {
	{ OWE_REQUEST, VSOCK_OP_REQUEST },
	{ OWE_RESPONSE, VSOCK_OP_RESPONSE },
	{ OWE_CREDIT_UPDATE, VSOCK_OP_CREDIT_UPDATE },
	{ OWE_CREDIT_REQUEST, VSOCK_OP_CREDIT_REQUEST },
	{ OWE_SHUTDOWN, VSOCK_OP_SHUTDOWN },
};

/* Sends the control packets c owes; false when it must wait for receive buffers. */
static bool send_owed(struct vsock_conn *c)
{
	struct vsock *v = c->v;
	struct vsock_hdr h;
	size_t room;

	while (c->owe && !c->released) {
		if (!vsock_rx_get(v, 0, &room))
			return false;
		if (c->owe & OWE_RST) {
			/* The last word: whatever else was owed no longer matters. */
			conn_hdr(c, &h, VSOCK_OP_RST, 0, 0);
			vsock_rx_put(v, 0, &h, 0);
			v->stats.resets_sent++;
			vsock_conn_release(c);
			return true;
		}
		for (unsigned i = 0; i < sizeof(owed_order) / sizeof(owed_order[0]); i++) {
			if (!(c->owe & owed_order[i].bit))
				continue;
			uint8_t bit = owed_order[i].bit;
			conn_hdr(c, &h, owed_order[i].op, bit == OWE_SHUTDOWN ? c->owe_shutdown : 0, 0);
			vsock_rx_put(v, 0, &h, 0);
			c->owe &= ~bit;
			if (bit == OWE_REQUEST) {
				c->guest_knows = true;
				vsock_conn_set_deadline(c, vsock_now_ms() + VSOCK_REQUEST_TIMEOUT_MS);
			}
			break;
		}
	}
	return true;
}

static bool wants_data(const struct vsock_conn *c)
{
	return c->state == CONN_OPEN && !c->released && !c->host_eof && !c->guest_shut_recv &&
	       !(c->owe & (OWE_RESPONSE | OWE_RST));
}

/*
 * Reads the host socket into receive buffers, budget reads at most, each into as many
 * buffers as the guest's credit covers (one readv for a batch of Linux's 4 KiB
 * buffers); false when it must wait for buffers.
 */
static bool pump(struct vsock_conn *c, unsigned budget)
{
	struct vsock *v = c->v;
	struct vsock_hdr h;
	size_t room, take[VSOCK_BATCH];

	while (budget-- && wants_data(c)) {
		uint32_t credit = vsock_peer_free(c);
		if (!credit) {
			/* The guest updates its credit as it reads; asking once per stall does no harm. */
			if (!c->credit_asked)
				c->owe |= OWE_CREDIT_REQUEST;
			c->credit_asked = true;
			return true;
		}
		size_t want = credit < VSOCK_BATCH_BYTES ? credit : VSOCK_BATCH_BYTES, total = 0;
		unsigned nb = 0, cnt = 0;
		while (nb < VSOCK_BATCH && total < want && vsock_rx_get(v, nb, &room)) {
			size_t t = want - total < room ? want - total : room;
			if (t > VSOCK_MAX_PKT)
				t = VSOCK_MAX_PKT;
			int k = vu_iov_slice(v->rx_req[nb].iov, v->rx_req[nb].in, VSOCK_HDR_LEN, t, v->slice + cnt,
					     VSOCK_SLICES - cnt);
			if (k <= 0) {
				vu_vring_unpop(v->rx, 1); /* no room in this readv: the next one takes it */
				break;
			}
			take[nb++] = t;
			cnt += (unsigned)k;
			total += t;
		}
		if (!nb)
			return false;
		ssize_t n = vsock_host_read(c, v->slice, cnt);
		int err = errno;
		unsigned used = 0;
		for (size_t left = n > 0 ? (size_t)n : 0; left; used++) {
			uint32_t len = (uint32_t)(left < take[used] ? left : take[used]);
			conn_hdr(c, &h, VSOCK_OP_RW, 0, len);
			vsock_rx_put(v, used, &h, len);
			c->tx_cnt += len;
			left -= len;
		}
		vu_vring_unpop(v->rx, nb - used);
		if (n > 0) {
			/* Less than asked: the socket is empty for now (a hung-up one reads on to its end). */
			if ((size_t)n < total && !c->hup)
				return true;
			continue;
		}
		if (n == 0) {
			/* The host will send no more: neither will we, once the guest hears it. */
			c->host_eof = true;
			c->owe |= OWE_SHUTDOWN;
			c->owe_shutdown |= VSOCK_SHUTDOWN_SEND;
			return true;
		}
		if (err != EAGAIN && err != EWOULDBLOCK)
			vsock_conn_reset(c, "readv: %s", strerror(err));
		return true;
	}
	return true;
}

void vsock_conn_progress(struct vsock_conn *c, bool readable)
{
	if (c->released)
		return;
	if (!c->waiting) {
		/* Owed packets first (a RESPONSE before data), SHUTDOWN after the data before it. */
		bool ok = send_owed(c);
		if (ok && (readable || c->hup))
			ok = pump(c, c->hup ? UINT_MAX : VSOCK_PUMP_BUDGET);
		if (ok)
			ok = send_owed(c);
		if (!ok && !c->released)
			wait_for_buffers(c);
	}
	if (c->released)
		return;
	vsock_host_update(c);
	vsock_conn_check_done(c);
}

void vsock_conn_reset(struct vsock_conn *c, const char *why, ...)
{
	if (c->released)
		return;
	char text[160];
	va_list ap;
	va_start(ap, why);
	vsnprintf(text, sizeof(text), why, ap);
	va_end(ap);
	vu_debug("vsock: guest port %u <-> host port %u: reset: %s", c->peer_port, c->local_port, text);
	if (!c->guest_knows) {
		vsock_conn_release(c);
		return;
	}
	vsock_conn_close_host(c);
	vsock_conn_set_deadline(c, 0);
	c->owe = OWE_RST;
	vsock_conn_progress(c, false);
}

void vsock_conn_check_done(struct vsock_conn *c)
{
	if (c->state != CONN_OPEN || c->released)
		return;
	/* Everything the guest sent reached the host, and nothing more goes to the guest. */
	bool in_done = c->guest_shut_send && !c->buf.len && c->line_off == c->line_len;
	bool out_done = (c->host_eof && !(c->owe & OWE_SHUTDOWN)) || c->guest_shut_recv;
	if (in_done && out_done)
		vsock_conn_reset(c, "both directions are done"); /* Linux ends a connection shut both ways with an RST too */
}

void vsock_conn_credit_changed(struct vsock_conn *c)
{
	if (c->state != CONN_OPEN || c->guest_shut_send || c->fwd_cnt == c->fwd_cnt_sent)
		return;
	/* What the guest believes it may still send, from the fwd_cnt it last heard. */
	uint32_t believed = c->buf_alloc - (c->rx_cnt - c->fwd_cnt_sent);
	if (believed < c->buf_alloc / 2)
		c->owe |= OWE_CREDIT_UPDATE;
}

/* ---- RSTs without a connection ---------------------------------------------------- */

/* Answers a packet that has no connection (or a bad one) with an RST, as Linux does. */
static void refuse(struct vsock *v, const struct vsock_hdr *pkt)
{
	if (le16toh(pkt->op) == VSOCK_OP_RST || v->rstq_n == VSOCK_RSTQ)
		return; /* never an RST for an RST; the queue has room (the ring waits when full) */
	struct vsock_hdr *h = &v->rstq[(v->rstq_head + v->rstq_n++) % VSOCK_RSTQ];
	*h = (struct vsock_hdr){
		.src_cid = pkt->dst_cid,
		.dst_cid = pkt->src_cid,
		.src_port = pkt->dst_port,
		.dst_port = pkt->src_port,
		.type = pkt->type,
		.op = htole16(VSOCK_OP_RST),
	};
}

/* ---- the transmit ring --------------------------------------------------------------- */

/* Handles a packet of connection c; true when it joined the run (it is pushed once written). */
static bool conn_packet(struct vsock_conn *c, const struct vsock_hdr *h)
{
	struct vsock *v = c->v;
	uint16_t op = le16toh(h->op);
	uint32_t len = le32toh(h->len), flags = le32toh(h->flags);

	/* Every packet carries the guest's credit. */
	c->peer_buf_alloc = le32toh(h->buf_alloc);
	c->peer_fwd_cnt = le32toh(h->fwd_cnt);
	if (vsock_peer_free(c))
		c->credit_asked = false;

	switch (op) {
	case VSOCK_OP_RESPONSE:
		if (c->state != CONN_REQUEST || (c->owe & OWE_REQUEST)) {
			vsock_conn_reset(c, "RESPONSE to no REQUEST");
			return false;
		}
		vsock_host_accepted(c);
		break;
	case VSOCK_OP_RST:
		vsock_conn_release(c);
		return false;
	case VSOCK_OP_SHUTDOWN:
		if (c->state != CONN_OPEN || (flags & ~(VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND))) {
			vsock_conn_reset(c, "SHUTDOWN on a connection not open, or unknown flags");
			return false;
		}
		c->guest_shut_recv |= !!(flags & VSOCK_SHUTDOWN_RCV);
		c->guest_shut_send |= !!(flags & VSOCK_SHUTDOWN_SEND);
		vsock_host_shutdown(c);
		break;
	case VSOCK_OP_RW:
		/* Data beyond the credit we gave has nowhere to go: the guest broke the protocol. */
		if (c->state != CONN_OPEN || c->guest_shut_send || len > c->buf_alloc - (c->rx_cnt - c->fwd_cnt)) {
			vsock_conn_reset(c, "data %s", c->state != CONN_OPEN ? "before the connection is open" :
						       c->guest_shut_send ? "after SHUTDOWN(SEND)" : "beyond its credit");
			return false;
		}
		c->rx_cnt += len;
		if (len) {
			/* Written with the packets of c that follow it in this batch (run_flush). */
			v->run_c = c;
			v->run_len[v->run_n] = len;
			return true;
		}
		break;
	case VSOCK_OP_CREDIT_UPDATE:
		break;
	case VSOCK_OP_CREDIT_REQUEST:
		c->owe |= OWE_CREDIT_UPDATE;
		break;
	default:
		vsock_conn_reset(c, "unknown op");
		return false;
	}
	vsock_conn_progress(c, false);
	return false;
}

/* Writes the run's data to its connection's socket and gives its packets back. */
static void run_flush(struct vsock *v)
{
	struct vsock_piece p[VSOCK_BATCH];
	struct vsock_conn *c = v->run_c;

	if (!v->run_n)
		return;
	for (unsigned i = 0; i < v->run_n; i++)
		p[i] = (struct vsock_piece){ v->tx_req[i].iov, v->tx_req[i].out, VSOCK_HDR_LEN, v->run_len[i] };
	bool ok = vsock_host_write(c, p, v->run_n);
	for (unsigned i = 0; i < v->run_n; i++)
		vu_vring_push(v->tx, &v->tx_req[i], 0);
	v->run_n = 0;
	v->run_c = NULL;
	if (ok) {
		vsock_conn_credit_changed(c);
		vsock_conn_progress(c, false);
	}
}

enum { TX_DONE, TX_RUN, TX_WAIT };

/* Handles one packet from the guest: TX_DONE, TX_RUN (it joined the run: pushed at run_flush), TX_WAIT (left on the ring). */
static int tx_packet(struct vsock *v, const struct vu_req *req)
{
	struct vsock_hdr h;

	if (vu_iov_to_buf(req->iov, req->out, 0, &h, VSOCK_HDR_LEN) != VSOCK_HDR_LEN) {
		v->stats.dropped++; /* not even a header */
		return TX_DONE;
	}
	uint64_t src_cid = le64toh(h.src_cid), dst_cid = le64toh(h.dst_cid);
	uint32_t src_port = le32toh(h.src_port), dst_port = le32toh(h.dst_port), len = le32toh(h.len);
	uint16_t op = le16toh(h.op);
	bool lies = len > vu_iov_size(req->iov, req->out) - VSOCK_HDR_LEN;

	if (src_cid != v->guest_cid) {
		v->stats.dropped++; /* not from this guest: nobody to answer */
		return TX_DONE;
	}
	if (le16toh(h.type) != VSOCK_TYPE_STREAM) {
		refuse(v, &h);
		return TX_DONE;
	}
	if (dst_cid != VSOCK_CID_HOST) {
		struct vsock *sib = vsock_group_find(v, dst_cid);
		if (lies) {
			v->stats.dropped++;
			return TX_DONE;
		}
		int r = sib ? vsock_group_relay(v, sib, &h, req, len) : VSOCK_RELAY_REFUSED;
		if (r == VSOCK_RELAY_REFUSED)
			refuse(v, &h);
		return r == VSOCK_RELAY_FULL ? TX_WAIT : TX_DONE;
	}
	struct vsock_conn *c = vsock_conn_find(v, dst_port, src_port);
	/* Whatever happens to the run's connection comes after the run's data; data of another starts a run. */
	if (v->run_n && (c == v->run_c) != (op == VSOCK_OP_RW))
		run_flush(v);
	if (lies) {
		/* Says more data than it carries: the stream would lose bytes. */
		v->stats.dropped++;
		if (c)
			vsock_conn_reset(c, "length beyond the packet");
		return TX_DONE;
	}
	if (op == VSOCK_OP_REQUEST) {
		/* A guest socket asks afresh: anything we had under these ports is stale. */
		if (c)
			vsock_conn_release(c);
		if (!vsock_host_dial(v, dst_port, src_port, &h))
			refuse(v, &h);
		return TX_DONE;
	}
	if (!c) {
		refuse(v, &h);
		return TX_DONE;
	}
	if (c->state == CONN_DEAD)
		return TX_DONE; /* its RST is on the way */
	return conn_packet(c, &h) ? TX_RUN : TX_DONE;
}

void vsock_pkt_tx(struct vsock *v)
{
	struct vu_vring *tx = v->tx;

	if (!tx || v->in_tx)
		return;
	v->in_tx = true;
	v->tx_stalled = false;
	do {
		vu_vring_kicks(tx, false);
		/* Each packet may need one RST of the queue: take one only while it has room. */
		while (v->rstq_n < VSOCK_RSTQ) {
			unsigned k = v->run_n;
			struct vu_req *req = &v->tx_req[k];
			req->iov = v->tx_iov[k];
			req->max_iov = VSOCK_MAX_IOV;
			if (vu_vring_pop(tx, req) <= 0)
				break;
			int r = tx_packet(v, req);
			if (r == TX_WAIT) {
				/* A sibling's queue is full: this packet and the rest wait until it drains. */
				vu_vring_unpop(tx, 1);
				break;
			}
			if (r == TX_DONE) {
				vu_vring_push(tx, req, 0);
				continue;
			}
			/* It joined the run (its length is in run_len[run_n]), which a flush may have emptied: it goes in the next slot. */
			if (k != v->run_n) {
				struct vu_req *to = &v->tx_req[v->run_n];
				*to = *req;
				to->iov = v->tx_iov[v->run_n];
				memcpy(to->iov, req->iov, (req->out + req->in) * sizeof(*req->iov));
			}
			if (++v->run_n == VSOCK_BATCH)
				run_flush(v);
		}
		run_flush(v);
		vu_vring_flush(tx);
		if (v->rstq_n == VSOCK_RSTQ || v->stalled_on) {
			v->tx_stalled = true; /* vsock_pkt_rx, or the sibling's, comes back */
			break;
		}
	} while (!tx->broken && vu_vring_kicks(tx, true));
	v->in_tx = false;
}

/* ---- the receive ring -------------------------------------------------------------- */

void vsock_pkt_rx(struct vsock *v)
{
	size_t room;

	if (v->relayq_len)
		vsock_group_drain(v);
	while (v->rstq_n) {
		if (!vsock_rx_get(v, 0, &room))
			return;
		vsock_rx_put(v, 0, &v->rstq[v->rstq_head], 0);
		v->rstq_head = (v->rstq_head + 1) % VSOCK_RSTQ;
		v->rstq_n--;
		v->stats.resets_sent++;
	}
	if (v->tx_stalled && !v->stalled_on)
		vsock_pkt_tx(v);
	/* The connections that wait, in order; one that runs out of buffers again keeps its place. */
	struct vsock_link *last = v->waiting.prev;
	while (!vsock_list_empty(&v->waiting)) {
		struct vsock_link *l = v->waiting.next;
		struct vsock_conn *c = vsock_container(l, struct vsock_conn, wait);
		vsock_list_del(l);
		c->waiting = false;
		vsock_conn_progress(c, true);
		if (c->waiting) {
			vsock_list_del(&c->wait);
			vsock_list_add_head(&v->waiting, &c->wait);
			break;
		}
		if (l == last)
			break; /* each once per call: those that came meanwhile wait for the next */
	}
}

/* ---- the event queue ------------------------------------------------------------------ */

void vsock_pkt_event(struct vsock *v)
{
	struct vu_req *req = &v->ev_req;
	uint32_t id = htole32(VSOCK_EVENT_TRANSPORT_RESET);

	if (!v->evq || !v->evq_reset_owed)
		return;
	req->iov = v->ev_iov;
	req->max_iov = sizeof(v->ev_iov) / sizeof(v->ev_iov[0]);
	if (vu_vring_pop(v->evq, req) <= 0) {
		vu_vring_kicks(v->evq, true); /* posted when the driver gives a buffer */
		return;
	}
	if (req->out || vu_iov_from_buf(req->iov, req->in, 0, &id, sizeof(id)) != sizeof(id)) {
		vu_vring_fail(v->evq, "event buffer not a writable 4 bytes");
		return;
	}
	vu_vring_push(v->evq, req, sizeof(id));
	vu_vring_flush(v->evq);
	v->evq_reset_owed = false;
	vu_info("vsock: guest CID %u: transport reset posted", v->guest_cid);
}

/* ---- end of a turn ----------------------------------------------------------------------- */

void vsock_settle(struct vsock *v)
{
	for (unsigned round = 0; round < 4; round++) {
		bool pending = v->rstq_n || v->relayq_len || (v->tx_stalled && !v->stalled_on) ||
			       !vsock_list_empty(&v->waiting);
		if (pending)
			vsock_pkt_rx(v);
		if (v->rx && v->rx_pushed)
			vu_vring_flush(v->rx);
		v->rx_pushed = false;
		pending = v->rstq_n || v->relayq_len || (v->tx_stalled && !v->stalled_on) ||
			  !vsock_list_empty(&v->waiting);
		/* Buffers that came while we asked for a kick are used now; else the kick brings us back. */
		if (!pending || !v->rx || !vu_vring_kicks(v->rx, true))
			break;
	}
	if (v->evq_reset_owed)
		vsock_pkt_event(v);
	vsock_group_settle(v);
	vsock_conns_reap(v);
}
