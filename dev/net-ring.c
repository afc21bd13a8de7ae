/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A vhost-user port's data path. Transmit: frames are taken off the driver's
 * ring in batches, checked, and handed to the switch as iovecs into guest
 * memory. Receive: a frame is copied once, straight from where it lies (another
 * guest's transmit buffers, or the tap's) into buffers popped from this guest's
 * receive ring, merged across several with MRG_RXBUF; a frame that does not fit
 * in what the ring holds is dropped and counted, never waited for.
 */
#include <endian.h>
#include <string.h>

#include "dev/net.h"
#include "proto/iov.h"

/* ---- receive ------------------------------------------------------------------ */

/* Receive buffers are fetched into the cache this many frames before they are filled. */
#define RX_PREFETCH_AHEAD 4

bool net_filter_accepts(const struct net_filter *f, const uint8_t *dst)
{
	static const uint8_t bcast[NET_ALEN] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

	if (f->promisc)
		return true;
	if (!memcmp(dst, bcast, NET_ALEN))
		return !f->nobcast;
	if (dst[0] & 1) {
		if (f->nomulti)
			return false;
		if (f->allmulti)
			return true;
		for (unsigned i = 0; i < f->nmulti; i++)
			if (!memcmp(dst, f->multi[i], NET_ALEN))
				return true;
		return false;
	}
	if (f->nouni)
		return false;
	if (f->alluni || !memcmp(dst, f->mac, NET_ALEN))
		return true;
	for (unsigned i = 0; i < f->nuni; i++)
		if (!memcmp(dst, f->uni[i], NET_ALEN))
			return true;
	return false;
}

/* The ones' complement sum of bytes [off, off + len) of iov, folded to 16 bits. */
static uint16_t csum_iov(const struct iovec *iov, unsigned n, size_t off, size_t len)
{
	uint64_t sum = 0;
	bool odd = false;

	for (unsigned i = 0; i < n && len; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		const uint8_t *p = (const uint8_t *)iov[i].iov_base + off;
		size_t chunk = iov[i].iov_len - off < len ? iov[i].iov_len - off : len;
		len -= chunk;
		off = 0;
		for (size_t k = 0; k < chunk; k++, odd = !odd)
			sum += odd ? p[k] : (uint32_t)p[k] << 8;
	}
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* Offloads a header needs from whoever receives it. */
static unsigned needs(const struct net_hdr *h)
{
	unsigned off = h->flags & NET_HDR_F_NEEDS_CSUM ? NET_OFF_CSUM : 0;

	switch (h->gso_type & ~NET_GSO_ECN) {
	case NET_GSO_TCPV4: off |= NET_OFF_TSO4; break;
	case NET_GSO_TCPV6: off |= NET_OFF_TSO6; break;
	}
	if (h->gso_type & NET_GSO_ECN)
		off |= NET_OFF_ECN;
	return off;
}

/*
 * Pops buffers until they hold need bytes: one chain, or several with MRG_RXBUF.
 * Returns how many, 0 if the ring has too few (they are given back).
 */
static unsigned take_buffers(struct net_rings *r, struct vu_vring *vq, size_t need, unsigned *niov)
{
	unsigned nbufs = 0, used = 0;
	size_t room = 0;

	while (room < need) {
		struct vu_req *req = &r->rx_req[nbufs];
		if (nbufs == NET_RX_MAX_BUFS || (nbufs && !r->mrg_rxbuf) || used == NET_RX_MAX_IOV)
			goto short_of_room;
		req->iov = r->rx_iov + used;
		req->max_iov = NET_RX_MAX_IOV - used;
		if (vu_vring_pop(vq, req) <= 0)
			goto short_of_room;
		nbufs++;
		if (req->out) {
			vu_vring_fail(vq, "receive buffer with a device-readable part");
			return 0;
		}
		used += req->in;
		room += req->in_bytes;
		if (nbufs == 1 && req->in_bytes < r->hdr_len)
			goto short_of_room; /* not even the header fits */
	}
	*niov = used;
	return nbufs;
short_of_room:
	vu_vring_unpop(vq, nbufs);
	return 0;
}

static void ring_deliver(struct net_port *p, const struct net_pkt *pkt)
{
	struct net_rings *r = (struct net_rings *)p;
	struct net_hdr h = pkt->hdr;

	if (!net_filter_accepts(&r->filter, pkt->dst))
		return;
	unsigned missing = needs(&h) & ~p->offloads;
	struct vu_vring *vq = r->rx[pkt->queue % r->pairs];
	if (!vq)
		vq = r->rx[0];
	if (!vq || (missing & ~NET_OFF_CSUM) || vq->broken) {
		p->stats.rx_dropped++; /* no ring, or a GSO frame the driver cannot take */
		return;
	}
	unsigned niov, nbufs = take_buffers(r, vq, r->hdr_len + pkt->len, &niov);
	if (!nbufs) {
		p->stats.rx_dropped++;
		return;
	}
	vu_vring_prefetch(vq, RX_PREFETCH_AHEAD, true);
	size_t csum_start = r->hdr_len + le16toh(h.csum_start), csum_at = csum_start + le16toh(h.csum_offset);
	if (!(p->offloads & NET_OFF_CSUM))
		h.flags = h.csum_start = h.csum_offset = 0;
	h.num_buffers = htole16(nbufs);
	vu_iov_from_buf(r->rx_iov, niov, 0, &h, r->hdr_len);
	vu_iov_copy(r->rx_iov, niov, r->hdr_len, pkt->iov, pkt->niov, 0, pkt->len);
	if (missing) {
		/* The sender left the checksum to the receiver, which cannot: fill it in the copy. */
		uint16_t sum = htobe16((uint16_t)~csum_iov(r->rx_iov, niov, csum_start,
							   r->hdr_len + pkt->len - csum_start));
		vu_iov_from_buf(r->rx_iov, niov, csum_at, &sum, sizeof(sum));
	}
	size_t left = r->hdr_len + pkt->len;
	for (unsigned i = 0; i < nbufs; i++) {
		uint32_t n = left < r->rx_req[i].in_bytes ? left : r->rx_req[i].in_bytes;
		vu_vring_push(vq, r->rx_req[i].head, n);
		left -= n;
	}
	p->stats.rx++;
}

static void ring_flush(struct net_port *p)
{
	struct net_rings *r = (struct net_rings *)p;

	for (unsigned i = 0; i < NET_MAX_PAIRS; i++)
		if (r->rx[i])
			vu_vring_flush(r->rx[i]);
}

const struct net_port_ops net_ring_ops = {
	.deliver = ring_deliver,
	.flush = ring_flush,
};

/* ---- transmit ----------------------------------------------------------------- */

/* Is the driver's header one it may send, for a frame of len bytes? */
static bool hdr_ok(const struct net_rings *r, const struct net_hdr *h, size_t len)
{
	unsigned gso = h->gso_type & ~NET_GSO_ECN;

	if (needs(h) & ~r->tx_offloads)
		return false;
	if (h->flags & NET_HDR_F_NEEDS_CSUM &&
	    (uint32_t)le16toh(h->csum_start) + le16toh(h->csum_offset) + 2 > len)
		return false;
	if (gso == NET_GSO_NONE)
		return !(h->gso_type & NET_GSO_ECN);
	return (gso == NET_GSO_TCPV4 || gso == NET_GSO_TCPV6) && h->gso_size &&
	       (h->flags & NET_HDR_F_NEEDS_CSUM);
}

static void forward(struct net_rings *r, const struct iovec *iov, unsigned n, size_t len,
		    const struct net_hdr *h, unsigned queue)
{
	struct net_pkt pkt = { .hdr = *h, .iov = iov, .niov = n, .len = len, .queue = queue };

	vu_iov_to_buf(iov, n, 0, pkt.dst, NET_ALEN);
	vu_iov_to_buf(iov, n, NET_ALEN, pkt.src, NET_ALEN);
	pkt.hdr.flags &= NET_HDR_F_NEEDS_CSUM;
	r->port.stats.tx++;
	net_switch_forward(&r->port, &pkt);
}

static void tx_one(struct net_rings *r, const struct vu_req *req, unsigned queue)
{
	struct net_hdr h = { 0 };
	size_t total = vu_iov_size(req->iov, req->out);

	if (req->in || req->truncated || total < r->hdr_len + NET_ETH_HLEN ||
	    total - r->hdr_len > NET_MAX_FRAME) {
		r->port.stats.tx_errors++;
		return;
	}
	size_t len = total - r->hdr_len;
	vu_iov_to_buf(req->iov, req->out, 0, &h, r->hdr_len);
	int n = vu_iov_slice(req->iov, req->out, r->hdr_len, len, r->frame_iov, NET_TX_MAX_IOV);
	if (n < 0 || !hdr_ok(r, &h, len)) {
		r->port.stats.tx_errors++;
		return;
	}
	forward(r, r->frame_iov, n, len, &h, queue);
}

/*
 * Pops up to n requests; their first bytes (header, addresses) are fetched into
 * the cache meanwhile: the driver wrote them on another core.
 */
static unsigned tx_pop(struct net_rings *r, struct vu_vring *vq, unsigned n)
{
	unsigned got = 0;

	for (; got < n; got++) {
		struct vu_req *req = &r->tx_req[got];
		req->iov = r->tx_iov[got];
		req->max_iov = NET_TX_MAX_IOV;
		if (vu_vring_pop(vq, req) <= 0)
			break;
		if (req->out)
			__builtin_prefetch(req->iov[0].iov_base);
	}
	return got;
}

unsigned net_ring_tx(struct net_rings *r, struct vu_vring *vq, unsigned budget)
{
	unsigned done = 0, n;

	vu_vring_kicks(vq, false);
	do {
		n = tx_pop(r, vq, budget - done < NET_TX_BATCH ? budget - done : NET_TX_BATCH);
		for (unsigned i = 0; i < n; i++) {
			tx_one(r, &r->tx_req[i], vq->index / 2);
			vu_vring_push(vq, r->tx_req[i].head, 0);
		}
		done += n;
		/* One used-ring update per batch, and the receivers publish theirs. */
		vu_vring_flush(vq);
		net_switch_flush();
	} while (n == NET_TX_BATCH && done < budget);
	return done;
}

void net_ring_inject(struct net_rings *r, const void *frame, size_t len)
{
	struct iovec iov = { (void *)frame, len };
	struct net_hdr h = { 0 };

	forward(r, &iov, 1, len, &h, 0);
	net_switch_flush();
}
