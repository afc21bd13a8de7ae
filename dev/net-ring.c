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
#include <stddef.h>
#include <string.h>

#include "dev/net.h"
#include "proto/iov.h"
#include "proto/prefetch.h"

/*
 * Fetches the first two lines of a transmit buffer: a virtio-net header and the
 * frame's first bytes, two lines where a driver puts the header right before the
 * frame's first line. The driver's core touched them last. Asked for as each
 * request is popped, so they travel while the rest of the burst is popped: when
 * the two cores are far apart (a line takes ~150 ns) asking only after all the pops
 * left the burst waiting that much longer, twice (transmit and receive).
 */
static inline void prefetch_start(const struct iovec *b)
{
	const char *p = b->iov_base;

	for (size_t off = 0; off < 128 && off < b->iov_len; off += 64)
		__builtin_prefetch(p + off);
}

/*
 * The same for a receive buffer, whose frame's lines are written: its header's
 * line is read (and written only if it changes, see put_rx_hdr), unless the
 * frame starts in it.
 */
static inline void prefetch_rx_start(const struct iovec *b, size_t hdr_len)
{
	const char *p = b->iov_base;

	__builtin_prefetch(p);
	for (size_t off = hdr_len; off < hdr_len + 128 && off < b->iov_len; off += 64)
		vu_prefetch_for_write(p + off);
}

/*
 * The header's size, as a constant per case: copied with a known size, a header is
 * two moves instead of a call (see vu_copy_small).
 */
static inline size_t hdr_size(const struct net_rings *r)
{
	return r->hdr_len == NET_HDR_LEN ? NET_HDR_LEN : NET_HDR_LEN_LEGACY;
}

/* ---- receive ------------------------------------------------------------------ */

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
static inline unsigned needs(const struct net_hdr *h)
{
	if (!(h->flags & NET_HDR_F_NEEDS_CSUM) && h->gso_type == NET_GSO_NONE)
		return 0; /* most frames */
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
 * Buffers for the next frames, popped together (a packed ring takes a group of
 * descriptors at a time). Each is described by one iovec, so that taken in order
 * they lie where take_buffers would have put them one by one: at rx_req[s->req],
 * rx_iov[s->iov] and on. Those that do not fit that (more segments, a device-
 * readable part) are given back, with the ones after them, and popped one by one.
 */
static void pop_ahead(struct net_rings *r, struct net_rx_slot *s, unsigned frames)
{
	struct vu_req *req = &r->rx_req[s->req];
	unsigned n = frames < NET_BURST ? frames : NET_BURST;

	vu_vring_prefetch(s->vq, n, true);
	for (unsigned i = 0; i < n; i++) {
		req[i].iov = r->rx_iov + s->iov + i;
		req[i].max_iov = 1;
	}
	int got = vu_vring_pop_burst(s->vq, req, n);
	unsigned m = got > 0 ? (unsigned)got : 0, k = 0;
	while (k < m && req[k].in == 1 && !req[k].out && !req[k].truncated)
		prefetch_rx_start(req[k++].iov, r->hdr_len);
	if (k < m)
		vu_vring_unpop(s->vq, m - k);
	r->ahead_vq = s->vq;
	r->ahead = k;
}

/* Gives back the buffers popped ahead that no frame took. */
static void give_back_ahead(struct net_rings *r)
{
	if (r->ahead)
		vu_vring_unpop(r->ahead_vq, r->ahead);
	r->ahead = 0;
}

/*
 * Pops buffers until they hold need bytes: one chain, or several with MRG_RXBUF,
 * described from rx_req[s->req] and rx_iov[s->iov] on (the scratch has room for
 * the most one frame may take), first those popped ahead for it. False if the
 * ring has too few (they are given back, with those popped ahead).
 */
static bool take_buffers(struct net_rings *r, struct net_rx_slot *s, size_t need, unsigned frames)
{
	unsigned nbufs = 0, used = 0;
	size_t room = 0;

	if (r->ahead && r->ahead_vq != s->vq)
		give_back_ahead(r); /* another ring's */
	if (!r->ahead && frames > 1)
		pop_ahead(r, s, frames);
	while (room < need) {
		struct vu_req *req = &r->rx_req[s->req + nbufs];
		if (nbufs == NET_RX_MAX_BUFS || (nbufs && !r->mrg_rxbuf) || used == NET_RX_MAX_IOV)
			goto short_of_room;
		if (r->ahead) {
			r->ahead--; /* the next of those popped ahead: at req, described at used */
		} else {
			req->iov = r->rx_iov + s->iov + used;
			req->max_iov = NET_RX_MAX_IOV - used;
			if (vu_vring_pop(s->vq, req) <= 0)
				goto short_of_room;
			if (req->out) {
				vu_vring_fail(s->vq, "receive buffer with a device-readable part");
				return false;
			}
			if (req->in)
				prefetch_rx_start(req->iov, r->hdr_len);
		}
		nbufs++;
		used += req->in;
		room += req->in_bytes;
		if (nbufs == 1 && req->in_bytes < r->hdr_len)
			goto short_of_room; /* not even the header fits */
	}
	s->nbufs = nbufs;
	s->niov = used;
	return true;
short_of_room:
	vu_vring_unpop(s->vq, nbufs + r->ahead); /* the last popped: this frame's, then those ahead */
	r->ahead = 0;
	return false;
}

/*
 * Does the port take pkt, and have room for it? Takes its buffers into *s if so;
 * frames: how many of the burst are left, this one included.
 */
static bool admit(struct net_rings *r, const struct net_pkt *pkt, struct net_rx_slot *s, unsigned frames)
{
	if (!net_filter_accepts(&r->filter, pkt->dst))
		return false;
	s->pkt = pkt;
	/* The pair the source used, if this port has it (a division only if not). */
	s->vq = r->rx[pkt->queue < r->pairs ? pkt->queue : pkt->queue % r->pairs];
	if (!s->vq)
		s->vq = r->rx[0];
	if (!s->vq || (needs(&pkt->hdr) & ~r->port.offloads & ~NET_OFF_CSUM) || s->vq->broken ||
	    !take_buffers(r, s, r->hdr_len + pkt->len, frames)) {
		r->port.stats.rx_dropped++; /* no ring or room, or a GSO frame the driver cannot take */
		return false;
	}
	return true;
}

/* A header as two words: bytes 0-7, and 8-11 (csum_offset, num_buffers). */
union hdr_words {
	struct net_hdr h;
	struct {
		uint64_t lo;
		uint32_t hi;
	} w;
};

/* Writes want's first 8 + tail bytes at to, unless they are there already. */
static inline void put_words_if_changed(char *to, const union hdr_words *want, size_t tail)
{
	uint64_t lo;

	memcpy(&lo, to, 8);
	if (lo != want->w.lo || memcmp(to + 8, &want->w.hi, tail)) {
		memcpy(to, &want->w.lo, 8);
		memcpy(to + 8, &want->w.hi, tail);
	}
}

/*
 * Writes the header a received frame gets: the sender's (its num_buffers aside),
 * less the checksum request where this port cannot take it, with nbufs. Not
 * written where the buffer holds it already, as a receive buffer mostly does
 * (what it held the last time round: no offloads, num_buffers 1): left alone, its
 * line stays shared with the driver's core instead of being taken from it and then
 * taken back when the driver reads it. Made and compared as words, field by field
 * only through masks: a header patched on the stack and read back with wider loads
 * waited for its stores (a failed store forward).
 */
static inline void put_rx_hdr(const struct net_rings *r, const struct net_rx_slot *s)
{
	static const union hdr_words csum_fields = { .h = { .flags = 0xff, .csum_start = 0xffff,
							    .csum_offset = 0xffff } };
	static const union hdr_words nbufs_field = { .h = { .num_buffers = 0xffff } };
	/*
	 * nbufs where num_buffers lies in the second word: the mask's lowest bit of the
	 * field times the value. Not a union written on the stack and read back whole:
	 * that load waited for the stores, and so for every older store, the previous
	 * frame's copy into a line still on its way from the driver's core among them.
	 */
	const uint32_t nbufs = (uint32_t)htole16((uint16_t)s->nbufs) * (nbufs_field.w.hi / 0xffff);
	const struct iovec *iov = r->rx_iov + s->iov;
	size_t size = hdr_size(r);
	union hdr_words want;

	memcpy(&want.w.lo, &s->pkt->hdr, 8);
	memcpy(&want.w.hi, (const char *)&s->pkt->hdr + 8, 4);
	if (!(r->port.offloads & NET_OFF_CSUM)) {
		want.w.lo &= ~csum_fields.w.lo;
		want.w.hi &= ~csum_fields.w.hi;
	}
	want.w.hi = (want.w.hi & ~nbufs_field.w.hi) | nbufs;
	if (__builtin_expect(iov[0].iov_len < size, 0)) {
		vu_iov_from_buf(iov, s->niov, 0, &want.h, size); /* split across buffers */
		return;
	}
	/* Each size a constant, for loads and compares of fixed widths. */
	if (size == NET_HDR_LEN)
		put_words_if_changed(iov[0].iov_base, &want, NET_HDR_LEN - 8);
	else
		put_words_if_changed(iov[0].iov_base, &want, NET_HDR_LEN_LEGACY - 8);
}

/* Copies a frame into the buffers taken for it; says in rx_len how much each holds. */
static void fill(struct net_rings *r, const struct net_rx_slot *s)
{
	const struct net_pkt *pkt = s->pkt;
	const struct iovec *iov = r->rx_iov + s->iov;
	const struct vu_req *req = r->rx_req + s->req;
	const struct net_hdr *h = &pkt->hdr;
	unsigned missing = needs(h) & ~r->port.offloads;
	size_t total = r->hdr_len + pkt->len;
	size_t csum_start = r->hdr_len + le16toh(h->csum_start), csum_at = csum_start + le16toh(h->csum_offset);

	put_rx_hdr(r, s);
	/*
	 * The addresses the switch decided on, not the sender's memory again: the sender
	 * could change its frame's destination meanwhile and get past this port's filter.
	 */
	vu_iov_from_buf(iov, s->niov, r->hdr_len, pkt->addrs, sizeof(pkt->addrs));
	vu_iov_copy(iov, s->niov, r->hdr_len + sizeof(pkt->addrs), pkt->iov, pkt->niov, sizeof(pkt->addrs),
		    pkt->len - sizeof(pkt->addrs));
	if (missing) {
		/* The sender left the checksum to the receiver, which cannot: fill it in the copy. */
		uint16_t sum = htobe16((uint16_t)~csum_iov(iov, s->niov, csum_start, total - csum_start));
		vu_iov_from_buf(iov, s->niov, csum_at, &sum, sizeof(sum));
	}
	uint32_t *len = r->rx_len + s->req;
	for (unsigned i = 0; i < s->nbufs; i++) {
		len[i] = total < req[i].in_bytes ? total : req[i].in_bytes;
		total -= len[i];
	}
	r->port.stats.rx++;
}

/*
 * Fills the frames whose buffers were taken (their first lines asked for meanwhile)
 * and hands the buffers back to the drivers, each run of frames for one ring in one
 * push (the slots' buffers lie one after the other in rx_req).
 */
static void fill_all(struct net_rings *r, unsigned nslots)
{
	for (unsigned i = 0, run = 0; i < nslots; i++) {
		const struct net_rx_slot *s = &r->rx_slot[i];
		fill(r, s);
		if (i + 1 == nslots || r->rx_slot[i + 1].vq != s->vq) {
			const struct net_rx_slot *first = &r->rx_slot[run];
			vu_vring_push_each(s->vq, r->rx_req + first->req, s->req + s->nbufs - first->req,
					   r->rx_len + first->req);
			run = i + 1;
		}
	}
}

/* Takes buffers for every frame of the burst first, then fills them. */
static void ring_deliver(struct net_port *p, const struct net_pkt *const *pkts, unsigned n)
{
	struct net_rings *r = (struct net_rings *)p;
	unsigned nslots = 0, reqs = 0, iovs = 0;

	for (unsigned i = 0; i < n; i++) {
		if (reqs + NET_RX_MAX_BUFS > NET_RX_SCRATCH_BUFS || iovs + NET_RX_MAX_IOV > NET_RX_SCRATCH_IOV) {
			give_back_ahead(r); /* their place in the scratch is taken again */
			fill_all(r, nslots); /* large frames: the scratch is full */
			nslots = reqs = iovs = 0;
		}
		struct net_rx_slot *s = &r->rx_slot[nslots];
		s->req = reqs;
		s->iov = iovs;
		if (!admit(r, pkts[i], s, n - i))
			continue;
		reqs += s->nbufs;
		iovs += s->niov;
		nslots++;
	}
	give_back_ahead(r);
	fill_all(r, nslots);
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
	unsigned offloads = needs(h);

	/*
	 * Most frames ask for no offload. Answered first: the general checks, compiled,
	 * kept gso_type in a byte on the stack and read it back as a word, which waited
	 * for every older store to land (a failed store forward).
	 */
	if (!offloads)
		return true;
	if (offloads & ~r->tx_offloads)
		return false;
	unsigned gso = h->gso_type & ~NET_GSO_ECN;
	if (h->flags & NET_HDR_F_NEEDS_CSUM &&
	    (uint32_t)le16toh(h->csum_start) + le16toh(h->csum_offset) + 2 > len)
		return false;
	if (gso == NET_GSO_NONE)
		return !(h->gso_type & NET_GSO_ECN);
	return (gso == NET_GSO_TCPV4 || gso == NET_GSO_TCPV6) && h->gso_size &&
	       (h->flags & NET_HDR_F_NEEDS_CSUM);
}

/* Fills in what the switch reads from a frame: its addresses. */
static void set_addresses(struct net_pkt *pkt)
{
	vu_iov_to_buf(pkt->iov, pkt->niov, 0, pkt->addrs, sizeof(pkt->addrs));
}

/*
 * Checks a transmit request and describes its frame in *pkt, in place of the
 * request's own iovecs (less the header). False if it is malformed (counted).
 */
static bool tx_parse(struct net_rings *r, struct vu_req *req, unsigned queue, struct net_pkt *pkt)
{
	size_t total = vu_iov_size(req->iov, req->out);

	if (req->in || req->truncated || total < r->hdr_len + NET_ETH_HLEN ||
	    total - r->hdr_len > NET_MAX_FRAME)
		goto bad;
	*pkt = (struct net_pkt){ .len = total - r->hdr_len, .queue = queue, .iov = req->iov };
	if (r->hdr_len == NET_HDR_LEN) /* each size a constant (see vu_copy_small) */
		vu_iov_to_buf(req->iov, req->out, 0, &pkt->hdr, NET_HDR_LEN);
	else
		vu_iov_to_buf(req->iov, req->out, 0, &pkt->hdr, NET_HDR_LEN_LEGACY);
	int n = vu_iov_slice(req->iov, req->out, r->hdr_len, pkt->len, req->iov, req->out);
	if (n < 0 || !hdr_ok(r, &pkt->hdr, pkt->len))
		goto bad;
	pkt->niov = n;
	/* Stored only if it changes: a byte stored into the header's first word made
	 * put_rx_hdr's load of that word wait (see vu_copy_small). */
	if (pkt->hdr.flags & ~NET_HDR_F_NEEDS_CSUM)
		pkt->hdr.flags &= NET_HDR_F_NEEDS_CSUM;
	set_addresses(pkt);
	return true;
bad:
	r->port.stats.tx_errors++;
	return false;
}

/*
 * Pops up to n requests, asking for the start (header, addresses) of each frame a
 * few requests at a time: enough for the ring to take them together (a packed
 * ring's cache line of descriptors), soon enough that the lines travel while the
 * rest of the burst is popped (see prefetch_start).
 */
static unsigned tx_pop(struct net_rings *r, struct vu_vring *vq, unsigned n)
{
	unsigned got = 0;

	vu_vring_prefetch(vq, n, false);
	for (unsigned i = 0; i < n; i++) {
		r->tx_req[i].iov = r->tx_iov[i];
		r->tx_req[i].max_iov = NET_TX_MAX_IOV;
	}
	while (got < n) {
		int k = vu_vring_pop_burst(vq, r->tx_req + got, n - got < VU_VRING_BURST ? n - got : VU_VRING_BURST);
		for (int i = 0; i < k; i++)
			if (r->tx_req[got + i].out)
				prefetch_start(&r->tx_req[got + i].iov[0]);
		if (k < VU_VRING_BURST)
			return got + (k > 0 ? (unsigned)k : 0);
		got += VU_VRING_BURST;
	}
	return got;
}

unsigned net_ring_tx(struct net_rings *r, struct vu_vring *vq, unsigned budget)
{
	unsigned done = 0, n;

	vu_vring_kicks(vq, false);
	do {
		n = tx_pop(r, vq, budget - done < NET_BURST ? budget - done : NET_BURST);
		unsigned npkts = 0;
		for (unsigned i = 0; i < n; i++)
			npkts += tx_parse(r, &r->tx_req[i], vq->index / 2, &r->tx_pkt[npkts]);
		r->port.stats.tx += npkts;
		net_switch_forward(&r->port, r->tx_pkt, npkts);
		/* The frames are copied: the requests go back, in one used-ring update, and the
		 * receivers publish theirs. */
		vu_vring_push_burst(vq, r->tx_req, n, 0);
		vu_vring_flush(vq);
		net_switch_flush();
		done += n;
	} while (n == NET_BURST && done < budget);
	return done;
}

void net_ring_inject(struct net_rings *r, const void *frame, size_t len)
{
	struct iovec iov = { (void *)frame, len };
	struct net_pkt pkt = { .iov = &iov, .niov = 1, .len = len };

	set_addresses(&pkt);
	r->port.stats.tx++;
	net_switch_forward(&r->port, &pkt, 1);
	net_switch_flush();
}
