/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vhost-user-net through the test front-end: three ports of one switch (three
 * sockets of one process). Config space, forwarding and learning, mergeable
 * receive buffers, the control queue, malformed frames and headers, a full
 * receive ring (dropped and counted, other ports unaffected), checksum
 * completion for a receiver without GUEST_CSUM, MAC ageing, SEND_RARP and the
 * announcement it asks of a driver with GUEST_ANNOUNCE, and the pages a received
 * frame marks in a live migration's dirty log.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test/check.h"
#include "test/dirty-log.h"
#include "test/frontend.h"

enum {
	F_CSUM = 0, F_GUEST_CSUM = 1, F_CTRL_GUEST_OFFLOADS = 2, F_MTU = 3, F_MAC = 5,
	F_GUEST_TSO4 = 7, F_HOST_TSO4 = 11, F_MRG_RXBUF = 15, F_STATUS = 16, F_CTRL_VQ = 17,
	F_CTRL_RX = 18, F_CTRL_RX_EXTRA = 20, F_GUEST_ANNOUNCE = 21, F_MQ = 22, F_CTRL_MAC_ADDR = 23,
};
#define BIT(f) (1ull << (f))
#define RING 64
#define HDR 12

struct hdr {
	uint8_t flags, gso_type;
	uint16_t hdr_len, gso_size, csum_start, csum_offset, num_buffers;
} __attribute__((packed));

struct port {
	struct vuf *f;
	struct vuf_vq *rx, *tx, *ctrl;
	uint64_t rx_gpa[RING];
	uint64_t txbuf, ctrlbuf;
};

static char dir[] = "/tmp/t-net.XXXXXX";
static char sock[3][64], logpath[64];
static const uint8_t MAC[3][6] = { { 2, 0, 0, 0, 0, 0xa }, { 2, 0, 0, 0, 0, 0xb }, { 2, 0, 0, 0, 0, 0xc } };
static const uint8_t BCAST[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

/* The cases run twice: split rings, then packed ones (VIRTIO_F_RING_PACKED added here). */
static uint64_t base_features = BIT(VIRTIO_F_VERSION_1) | BIT(VHOST_USER_F_PROTOCOL_FEATURES) |
				BIT(VIRTIO_RING_F_EVENT_IDX) | BIT(VIRTIO_RING_F_INDIRECT_DESC);
static const uint64_t all_pf = 1ull << VU_PF_MQ | 1ull << VU_PF_REPLY_ACK | 1ull << VU_PF_CONFIG |
			       1ull << VU_PF_RARP | 1ull << VU_PF_NET_MTU | 1ull << VU_PF_BACKEND_REQ;

static void port_close(struct port *p)
{
	vuf_close(p->f);
	memset(p, 0, sizeof(*p));
}

/* Connects to port i with the given virtio-net features and more protocol features. */
static bool port_open_pf(struct port *p, unsigned i, uint64_t features, uint64_t more_pf)
{
	memset(p, 0, sizeof(*p));
	p->f = vuf_connect(sock[i], 2000);
	if (!p->f || vuf_mem_init(p->f, 1, 8 << 20, 0) < 0 ||
	    vuf_negotiate(p->f, base_features | features, all_pf | more_pf) < 0)
		return false;
	p->rx = vuf_vq_setup(p->f, 0, RING, 0);
	p->tx = vuf_vq_setup(p->f, 1, RING, 0);
	if (features & BIT(F_CTRL_VQ))
		p->ctrl = vuf_vq_setup(p->f, (features & BIT(F_MQ)) ? 4 : 2, RING, 0);
	p->txbuf = vuf_alloc(p->f, 70000, 64);
	p->ctrlbuf = vuf_alloc(p->f, 4096, 64);
	bool ok = p->rx && p->tx && p->txbuf && p->ctrlbuf && (!(features & BIT(F_CTRL_VQ)) || p->ctrl);
	if (!ok)
		check_note("port %u: %s", i, vuf_error(p->f));
	return ok;
}

/* Connects to port i with the given virtio-net features; the control queue if CTRL_VQ. */
static bool port_open(struct port *p, unsigned i, uint64_t features)
{
	return port_open_pf(p, i, features, 0);
}

/* Gives the receive ring n buffers of size bytes and kicks it (which starts it). */
static bool add_rx(struct port *p, unsigned n, uint32_t size)
{
	for (unsigned i = 0; i < n; i++) {
		struct vuf_buf b = { vuf_alloc(p->f, size, 64), size };
		int head = b.gpa ? vuf_vq_add(p->rx, NULL, 0, &b, 1, false) : -1;
		if (head < 0)
			return false;
		p->rx_gpa[head] = b.gpa;
	}
	return vuf_vq_kick(p->rx) == 0;
}

/* A frame: dst, src, ethertype 0x88b5 (local experimental), then len - 14 patterned bytes. */
static size_t make_frame(uint8_t *f, const uint8_t *dst, const uint8_t *src, size_t len, uint8_t seed)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = 0x88, f[13] = 0xb5;
	for (size_t i = 14; i < len; i++)
		f[i] = (uint8_t)(i * 7 + seed);
	return len;
}

/* Sends header + frame in two descriptors; waits until the switch has taken it. */
static int send_raw(struct port *p, const struct hdr *h, const void *frame, size_t len)
{
	uint8_t *g = vuf_gpa(p->f, p->txbuf, HDR + len);
	struct vuf_buf out[2] = { { p->txbuf, HDR }, { p->txbuf + HDR, (uint32_t)len } };

	memcpy(g, h, HDR);
	memcpy(g + HDR, frame, len);
	if (vuf_vq_add(p->tx, out, 2, NULL, 0, false) < 0 || vuf_vq_kick(p->tx) < 0)
		return -1;
	return vuf_vq_wait_used(p->tx, NULL, NULL, 2000);
}

static int send_frame(struct port *p, const uint8_t *dst, const uint8_t *src, size_t len, uint8_t seed)
{
	static uint8_t frame[70000];
	struct hdr h = { 0 };

	return send_raw(p, &h, frame, make_frame(frame, dst, src, len, seed));
}

/*
 * Receives one frame (gathering merged buffers) into buf; returns its length, or
 * -ETIMEDOUT if none came within timeout_ms. *h gets the header.
 */
static int recv_frame(struct port *p, struct hdr *h, uint8_t *buf, size_t max, int timeout_ms)
{
	uint32_t id, len;
	size_t got = 0;
	int r = vuf_vq_wait_used(p->rx, &id, &len, timeout_ms);

	if (r < 0)
		return r;
	if (id >= RING || len < HDR || vuf_gpa_read(p->f, p->rx_gpa[id], h, HDR) < 0)
		return -EPROTO;
	unsigned nbufs = le16toh(h->num_buffers);
	for (unsigned i = 0; i < nbufs; i++) {
		if (i && (vuf_vq_wait_used(p->rx, &id, &len, 1000) < 0 || id >= RING))
			return -EPROTO;
		uint32_t skip = i ? 0 : HDR;
		if (got + len - skip > max || vuf_gpa_read(p->f, p->rx_gpa[id] + skip, buf + got, len - skip) < 0)
			return -EPROTO;
		got += len - skip;
	}
	return (int)got;
}

/*
 * Sends n frames (header + frame in two descriptors each) with one kick, from
 * the n * (HDR + len_max) bytes at gpa; waits until the switch has taken them all.
 */
static int send_burst(struct port *p, uint64_t gpa, unsigned n, const uint8_t (*dst)[6], const uint8_t (*src)[6],
		      const size_t *len, size_t len_max)
{
	struct hdr h = { 0 };

	for (unsigned i = 0; i < n; i++) {
		uint64_t at = gpa + i * (HDR + len_max);
		uint8_t *g = vuf_gpa(p->f, at, HDR + len[i]);
		struct vuf_buf out[2] = { { at, HDR }, { at + HDR, (uint32_t)len[i] } };
		memcpy(g, &h, HDR);
		make_frame(g + HDR, dst[i], src[i], len[i], (uint8_t)i);
		if (vuf_vq_add(p->tx, out, 2, NULL, 0, false) < 0)
			return -1;
	}
	if (vuf_vq_kick(p->tx) < 0)
		return -1;
	for (unsigned i = 0; i < n; i++)
		if (vuf_vq_wait_used(p->tx, NULL, NULL, 2000) < 0)
			return -1;
	return 0;
}

/* Expects a frame equal to make_frame(dst, src, len, seed) on p. */
static bool got_frame(struct port *p, const uint8_t *dst, const uint8_t *src, size_t len, uint8_t seed,
		      unsigned *nbufs)
{
	static uint8_t want[70000], buf[70000];
	struct hdr h;
	int n = recv_frame(p, &h, buf, sizeof(buf), 1000);

	make_frame(want, dst, src, len, seed);
	if (nbufs)
		*nbufs = n > 0 ? le16toh(h.num_buffers) : 0;
	if (n != (int)len || memcmp(buf, want, len))
		check_note("expected a %zu-byte frame, got %d bytes (%s)", len, n,
			   n < 0 ? vuf_error(p->f) : n == (int)len ? "different" : "length differs");
	return n == (int)len && !memcmp(buf, want, len);
}

static bool nothing_on(struct port *p)
{
	struct hdr h;
	uint8_t buf[2048];
	return recv_frame(p, &h, buf, sizeof(buf), 200) == -ETIMEDOUT;
}

/* One control command; returns the ack byte or -1. */
static int ctrl(struct port *p, uint8_t cls, uint8_t cmd, const void *data, size_t len)
{
	uint8_t *g = vuf_gpa(p->f, p->ctrlbuf, 2048);
	struct vuf_buf out = { p->ctrlbuf, 2 + (uint32_t)len }, in = { p->ctrlbuf + 2040, 1 };
	uint32_t used;

	g[0] = cls, g[1] = cmd;
	if (len)
		memcpy(g + 2, data, len);
	g[2040] = 0xee;
	if (vuf_vq_add(p->ctrl, &out, 1, &in, 1, false) < 0 || vuf_vq_kick(p->ctrl) < 0 ||
	    vuf_vq_wait_used(p->ctrl, NULL, &used, 2000) < 0 || used != 1)
		return -1;
	return g[2040];
}

/* ---- cases -------------------------------------------------------------- */

static void test_config(void)
{
	struct port p;
	uint8_t cfg[12];

	if (!CHECK(port_open(&p, 0, BIT(F_MAC) | BIT(F_STATUS) | BIT(F_MTU) | BIT(F_MQ)), "config-connect"))
		return;
	uint64_t want = BIT(F_MAC) | BIT(F_STATUS) | BIT(F_MTU) | BIT(F_MQ) | BIT(F_MRG_RXBUF) |
			BIT(F_CTRL_VQ) | BIT(F_CTRL_RX) | BIT(F_CSUM) | BIT(F_GUEST_CSUM) | BIT(F_HOST_TSO4) |
			BIT(F_GUEST_ANNOUNCE);
	CHECK((p.f->offered_features & want) == want, "config-features-offered");
	CHECK((p.f->features & BIT(VIRTIO_F_RING_PACKED)) == (base_features & BIT(VIRTIO_F_RING_PACKED)),
	      "config-ring-layout (packed when asked for)");
	CHECK(p.f->offered_protocol_features & (1ull << VU_PF_RARP), "config-offers-rarp");
	CHECK(p.f->offered_protocol_features & (1ull << VU_PF_NET_MTU), "config-offers-net-mtu");
	uint64_t nq = 0;
	CHECK(vuf_get_queue_num(p.f, &nq) == 0 && nq == 5, "config-queue-num (2 pairs + control)");
	if (CHECK(vuf_get_config(p.f, 0, sizeof(cfg), cfg) == sizeof(cfg) + VU_CONFIG_HDR_SIZE, "config-read")) {
		CHECK(!memcmp(cfg, MAC[0], 6), "config-mac");
		CHECK_EQ(cfg[6] | cfg[7] << 8, 1, "config-status-link-up");
		CHECK_EQ(cfg[8] | cfg[9] << 8, 2, "config-max-pairs");
		CHECK_EQ(cfg[10] | cfg[11] << 8, 9000, "config-mtu");
	}
	CHECK(vuf_get_config(p.f, 8, 8, cfg) == 0, "config-read-beyond-end-refused");
	uint64_t mtu = 1400;
	CHECK(vuf_request(p.f, VU_REQ_NET_SET_MTU, &mtu, sizeof(mtu), NULL, 0) == 0 &&
	      vuf_get_config(p.f, 10, 2, cfg) == 2 + VU_CONFIG_HDR_SIZE && (cfg[0] | cfg[1] << 8) == 1400, "config-net-set-mtu");
	mtu = 9000; /* as the command line set it, for the cases run again with packed rings */
	CHECK(vuf_request(p.f, VU_REQ_NET_SET_MTU, &mtu, sizeof(mtu), NULL, 0) == 0, "config-net-set-mtu-back");
	port_close(&p);
}

static void test_forwarding(void)
{
	struct port a, b, c;
	uint8_t X[6] = { 2, 0x11, 0, 0, 0, 1 }, Y[6] = { 2, 0x22, 0, 0, 0, 2 };
	unsigned nb;

	if (!CHECK(port_open(&a, 0, BIT(F_MRG_RXBUF)) && port_open(&b, 1, BIT(F_MRG_RXBUF)) &&
		   port_open(&c, 2, BIT(F_MRG_RXBUF)) && add_rx(&a, 16, 2048) && add_rx(&b, 16, 2048) &&
		   add_rx(&c, 16, 2048), "forward-setup"))
		return;
	/* Unknown destination: flooded to b and c, not back to a. */
	CHECK(send_frame(&a, Y, X, 100, 1) == 0, "forward-send");
	CHECK(got_frame(&b, Y, X, 100, 1, &nb) && nb == 1, "forward-flood-b");
	CHECK(got_frame(&c, Y, X, 100, 1, NULL), "forward-flood-c");
	CHECK(nothing_on(&a), "forward-not-reflected");
	/* X was learned on a: a frame to X goes to a only. */
	CHECK(send_frame(&c, X, Y, 1514, 2) == 0, "forward-send-learned");
	CHECK(got_frame(&a, X, Y, 1514, 2, NULL), "forward-learned-to-a");
	CHECK(nothing_on(&b), "forward-learned-not-flooded");
	/* Y is now on c: b sends to it, only c gets it. */
	CHECK(send_frame(&b, Y, MAC[1], 60, 3) == 0 && got_frame(&c, Y, MAC[1], 60, 3, NULL) && nothing_on(&a),
	      "forward-learned-to-c");
	/* Broadcast reaches everybody else. */
	CHECK(send_frame(&c, BCAST, Y, 60, 4) == 0 && got_frame(&a, BCAST, Y, 60, 4, NULL) &&
	      got_frame(&b, BCAST, Y, 60, 4, NULL) && nothing_on(&c), "forward-broadcast");
	/* A disconnected port's MACs are forgotten: a frame to X floods again. */
	port_close(&a);
	CHECK(send_frame(&c, X, Y, 60, 5) == 0 && got_frame(&b, X, Y, 60, 5, NULL), "forward-forget-on-disconnect");
	port_close(&b);
	port_close(&c);
}

static void test_mergeable(void)
{
	struct port a, b, c;
	uint8_t X[6] = { 2, 0x11, 0, 0, 0, 1 };
	unsigned nb;

	if (!CHECK(port_open(&a, 0, 0) && port_open(&b, 1, BIT(F_MRG_RXBUF)) && port_open(&c, 2, 0) &&
		   add_rx(&b, 48, 256) && add_rx(&c, 8, 256), "mrg-setup"))
		return;
	/* 1000 bytes + header in 256-byte buffers: 4 buffers merged. */
	CHECK(send_frame(&a, MAC[1], X, 1000, 6) == 0, "mrg-send");
	CHECK(got_frame(&b, MAC[1], X, 1000, 6, &nb), "mrg-merged-frame");
	CHECK_EQ(nb, 4, "mrg-num-buffers");
	/* c has no MRG_RXBUF: one 256-byte buffer cannot take it, so it was dropped. */
	CHECK(nothing_on(&c), "mrg-without-mrg-too-big-dropped");
	CHECK(send_frame(&a, MAC[2], X, 200, 7) == 0 && got_frame(&c, MAC[2], X, 200, 7, &nb) && nb == 1,
	      "mrg-without-mrg-small-fits");
	CHECK(got_frame(&b, MAC[2], X, 200, 7, &nb) && nb == 1, "mrg-small-flooded-to-b-too");
	/* 9000 bytes: 36 buffers. */
	CHECK(send_frame(&a, MAC[1], X, 9000, 8) == 0 && got_frame(&b, MAC[1], X, 9000, 8, &nb) && nb == 36,
	      "mrg-jumbo-36-buffers");
	port_close(&a);
	port_close(&b);
	port_close(&c);
}

/*
 * The receive header is written field by field, only where the buffer holds
 * something else: into buffers full of stale bytes it comes out exact, the
 * sender's fields passed on (hdr_len, gso_size) and num_buffers set; so it does
 * when it lies across two descriptors of a chain (5 + 7 bytes).
 */
static void test_rx_header(void)
{
	struct port a, b;
	uint8_t X[6] = { 2, 0x11, 0, 0, 0, 2 };
	static uint8_t frame[200], want[200];
	const struct hdr sent = { .hdr_len = htole16(0x1234), .gso_size = htole16(0x0567) };
	const struct hdr want_h = { .hdr_len = sent.hdr_len, .gso_size = sent.gso_size, .num_buffers = htole16(1) };
	struct hdr h;

	if (!CHECK(port_open(&a, 0, 0) && port_open(&b, 1, BIT(F_MRG_RXBUF)) && add_rx(&b, 2, 256), "rxhdr-setup"))
		return;
	for (unsigned i = 0; i < RING; i++)
		if (b.rx_gpa[i])
			memset(vuf_gpa(b.f, b.rx_gpa[i], 256), 0xff, 256);
	size_t len = make_frame(frame, MAC[1], X, 100, 9);
	for (unsigned i = 0; i < 2; i++) {
		int n = send_raw(&a, &sent, frame, len) == 0 ? recv_frame(&b, &h, want, sizeof(want), 1000) : -1;
		CHECK(n == (int)len && !memcmp(want, frame, len) && !memcmp(&h, &want_h, HDR),
		      "rxhdr-exact-over-stale-bytes-%u", i);
	}
	uint64_t g = vuf_alloc(b.f, 512, 64);
	struct vuf_buf in[2] = { { g, 5 }, { g + 256, 251 } };
	uint32_t id, used = 0;
	if (g)
		memset(vuf_gpa(b.f, g, 512), 0xff, 512);
	if (CHECK(g && vuf_vq_add(b.rx, NULL, 0, in, 2, false) >= 0 && vuf_vq_kick(b.rx) == 0 &&
		  send_raw(&a, &sent, frame, len) == 0 && vuf_vq_wait_used(b.rx, &id, &used, 1000) == 0 &&
		  used == HDR + len, "rxhdr-split-received")) {
		uint8_t got[HDR + 200];
		memcpy(got, vuf_gpa(b.f, g, 5), 5);
		memcpy(got + 5, vuf_gpa(b.f, g + 256, used - 5), used - 5);
		CHECK(!memcmp(got, &want_h, HDR) && !memcmp(got + HDR, frame, len), "rxhdr-split-header-exact");
	}
	port_close(&a);
	port_close(&b);
}

static void test_ctrl(void)
{
	struct port a, b;
	uint8_t X[6] = { 2, 0x11, 0, 0, 0, 1 }, U[6] = { 2, 0x33, 0, 0, 0, 3 }, M[6] = { 1, 0, 0x5e, 0, 0, 1 };
	uint8_t on = 1, off = 0, cfg[6];
	uint64_t f = BIT(F_CTRL_VQ) | BIT(F_CTRL_RX) | BIT(F_CTRL_RX_EXTRA) | BIT(F_MQ) | BIT(F_CTRL_MAC_ADDR) |
		     BIT(F_MRG_RXBUF);

	if (!CHECK(port_open(&a, 0, 0) && port_open(&b, 1, f) && add_rx(&b, 32, 2048), "ctrl-setup"))
		return;
	CHECK(send_frame(&a, U, X, 60, 1) == 0 && got_frame(&b, U, X, 60, 1, NULL), "ctrl-promisc-by-default");
	CHECK_EQ(ctrl(&b, 0, 0, &off, 1), 0, "ctrl-promisc-off");
	CHECK(send_frame(&a, U, X, 60, 2) == 0 && nothing_on(&b), "ctrl-unknown-unicast-filtered");
	CHECK(send_frame(&a, MAC[1], X, 60, 3) == 0 && got_frame(&b, MAC[1], X, 60, 3, NULL), "ctrl-own-mac-passes");
	CHECK(send_frame(&a, BCAST, X, 60, 4) == 0 && got_frame(&b, BCAST, X, 60, 4, NULL), "ctrl-broadcast-passes");
	CHECK(send_frame(&a, M, X, 60, 5) == 0 && nothing_on(&b), "ctrl-multicast-filtered");
	/* MAC table: one unicast and one multicast entry. */
	uint8_t table[4 + 6 + 4 + 6];
	uint32_t one = htole32(1);
	memcpy(table, &one, 4), memcpy(table + 4, U, 6), memcpy(table + 10, &one, 4), memcpy(table + 14, M, 6);
	CHECK_EQ(ctrl(&b, 1, 0, table, sizeof(table)), 0, "ctrl-mac-table-set");
	CHECK(send_frame(&a, U, X, 60, 6) == 0 && got_frame(&b, U, X, 60, 6, NULL), "ctrl-table-unicast-passes");
	CHECK(send_frame(&a, M, X, 60, 7) == 0 && got_frame(&b, M, X, 60, 7, NULL), "ctrl-table-multicast-passes");
	uint32_t huge = htole32(1000);
	CHECK_EQ(ctrl(&b, 1, 0, &huge, 4), 1, "ctrl-mac-table-truncated-refused");
	CHECK_EQ(ctrl(&b, 0, 5, &on, 1), 0, "ctrl-nobcast");
	CHECK(send_frame(&a, BCAST, X, 60, 8) == 0 && nothing_on(&b), "ctrl-nobcast-filters");
	CHECK_EQ(ctrl(&b, 0, 0, &on, 1), 0, "ctrl-promisc-on");
	CHECK(send_frame(&a, BCAST, X, 60, 9) == 0 && got_frame(&b, BCAST, X, 60, 9, NULL), "ctrl-promisc-takes-all");
	/* MAC_ADDR_SET changes the address in the config space too. */
	CHECK_EQ(ctrl(&b, 1, 1, U, 6), 0, "ctrl-mac-addr-set");
	CHECK(vuf_get_config(b.f, 0, 6, cfg) == 6 + VU_CONFIG_HDR_SIZE && !memcmp(cfg, U, 6), "ctrl-mac-addr-in-config");
	CHECK_EQ(ctrl(&b, 1, 1, M, 6), 1, "ctrl-mac-addr-multicast-refused");
	uint16_t pairs = htole16(2);
	CHECK_EQ(ctrl(&b, 4, 0, &pairs, 2), 0, "ctrl-mq-pairs-2");
	pairs = htole16(3);
	CHECK_EQ(ctrl(&b, 4, 0, &pairs, 2), 1, "ctrl-mq-pairs-beyond-max-refused");
	CHECK_EQ(ctrl(&b, 9, 0, NULL, 0), 1, "ctrl-unknown-class-refused");
	CHECK_EQ(ctrl(&b, 0, 0, NULL, 0), 1, "ctrl-missing-data-refused");
	CHECK_EQ(ctrl(&b, 3, 0, NULL, 0), 1, "ctrl-announce-not-negotiated-refused");
	port_close(&a);
	port_close(&b);
}

static void test_malformed(void)
{
	struct port a, b;
	uint8_t X[6] = { 2, 0x11, 0, 0, 0, 1 }, frame[100];
	struct hdr h = { 0 };

	if (!CHECK(port_open(&a, 0, 0) && port_open(&b, 1, BIT(F_MRG_RXBUF)) && add_rx(&b, 32, 2048), "bad-setup"))
		return;
	make_frame(frame, BCAST, X, sizeof(frame), 1);
	/* A transmit buffer the device could write. */
	struct vuf_buf out = { a.txbuf, 100 }, in = { a.txbuf + 200, 100 };
	CHECK(vuf_vq_add(a.tx, &out, 1, &in, 1, false) >= 0 && vuf_vq_kick(a.tx) == 0 &&
	      vuf_vq_wait_used(a.tx, NULL, NULL, 2000) == 0 && nothing_on(&b), "bad-writable-tx-buffer");
	/* Shorter than the header plus an Ethernet header. */
	CHECK(send_raw(&a, &h, frame, 10) == 0 && nothing_on(&b), "bad-runt");
	/* Offloads that were not negotiated. */
	h = (struct hdr){ .flags = 1, .csum_start = 14, .csum_offset = 6 };
	CHECK(send_raw(&a, &h, frame, sizeof(frame)) == 0 && nothing_on(&b), "bad-needs-csum-without-csum");
	h = (struct hdr){ .flags = 1, .gso_type = 1, .gso_size = 1400, .csum_start = 34, .csum_offset = 16 };
	CHECK(send_raw(&a, &h, frame, sizeof(frame)) == 0 && nothing_on(&b), "bad-gso-without-tso");
	h = (struct hdr){ .flags = 4 };
	CHECK(send_raw(&a, &h, frame, sizeof(frame)) == 0 && got_frame(&b, BCAST, X, sizeof(frame), 1, NULL),
	      "bad-unknown-flag-ignored");
	h = (struct hdr){ .gso_type = 0x80 };
	CHECK(send_raw(&a, &h, frame, sizeof(frame)) == 0 && nothing_on(&b), "bad-ecn-without-gso");
	/* A chain into memory that does not exist breaks the ring, nothing else. */
	struct vuf_buf wild = { 0x7fff0000000ull, 100 };
	CHECK(vuf_vq_add(a.tx, &wild, 1, NULL, 0, false) >= 0 && vuf_vq_kick(a.tx) == 0 &&
	      vuf_vq_wait_err(a.tx, 2000) == 1, "bad-buffer-outside-memory-breaks-ring");
	port_close(&a);
	/* The switch and the other port are fine. */
	CHECK(port_open(&a, 0, 0) && send_frame(&a, BCAST, X, 80, 2) == 0 && got_frame(&b, BCAST, X, 80, 2, NULL),
	      "bad-others-unaffected");
	port_close(&a);
	port_close(&b);
}

static void test_full_ring(void)
{
	struct port a, b, c;
	uint8_t X[6] = { 2, 0x11, 0, 0, 0, 1 };
	unsigned got_b = 0, got_c = 0;

	if (!CHECK(port_open(&a, 0, 0) && port_open(&b, 1, BIT(F_MRG_RXBUF)) && port_open(&c, 2, BIT(F_MRG_RXBUF)) &&
		   add_rx(&b, 4, 2048) && add_rx(&c, 32, 2048), "full-setup"))
		return;
	bool sent = true;
	for (unsigned i = 0; i < 10; i++)
		sent &= send_frame(&a, BCAST, X, 500, (uint8_t)i) == 0;
	CHECK(sent, "full-sender-never-stalls");
	for (unsigned i = 0; i < 10; i++)
		got_c += got_frame(&c, BCAST, X, 500, (uint8_t)i, NULL);
	CHECK_EQ(got_c, 10, "full-other-port-gets-all");
	/* c has all ten, so the switch is done with them: b has the first four, no more. */
	for (unsigned i = 0; i < 4; i++)
		got_b += got_frame(&b, BCAST, X, 500, (uint8_t)i, NULL);
	CHECK_EQ(got_b, 4, "full-ring-takes-what-fits");
	CHECK(nothing_on(&b), "full-ring-drops-the-rest");
	/* Refilled, it receives again. */
	CHECK(add_rx(&b, 4, 2048) && send_frame(&a, BCAST, X, 500, 42) == 0 && got_frame(&b, BCAST, X, 500, 42, NULL),
	      "full-refilled-receives");
	port_close(&a);
	port_close(&b);
	port_close(&c);
}

/*
 * A burst of 32 frames in one kick, to two learned stations and to all, small and
 * jumbo (five merged buffers each, more than one batch of receive buffers takes at
 * once): each receiver gets its frames whole and in the order they were sent.
 */
static void test_burst(void)
{
	enum { N = 32, JUMBO = 9000 };
	struct port a, b, c;
	const uint8_t Y[6] = { 2, 0x22, 0, 0, 0, 1 }, Z[6] = { 2, 0x22, 0, 0, 0, 2 }, X[6] = { 2, 0x11, 0, 0, 0, 1 };
	uint8_t dst[N][6], src[N][6];
	size_t len[N];
	unsigned got_b = 0, got_c = 0, want_b = 0, want_c = 0;

	if (!CHECK(port_open(&a, 0, 0) && port_open(&b, 1, BIT(F_MRG_RXBUF)) && port_open(&c, 2, BIT(F_MRG_RXBUF)) &&
		   add_rx(&b, RING, 2048) && add_rx(&c, 32, 2048), "burst-setup"))
		return;
	/* Y is learned behind b, Z behind c. */
	CHECK(send_frame(&b, BCAST, Y, 60, 0) == 0 && got_frame(&c, BCAST, Y, 60, 0, NULL) &&
	      send_frame(&c, BCAST, Z, 60, 0) == 0 && got_frame(&b, BCAST, Z, 60, 0, NULL), "burst-learn");
	for (unsigned i = 0; i < N; i++) {
		memcpy(dst[i], i % 4 == 1 ? Z : i % 4 == 2 ? BCAST : Y, 6);
		memcpy(src[i], X, 6);
		len[i] = i % 4 == 3 ? JUMBO : 60 + i;
	}
	uint64_t gpa = vuf_alloc(a.f, N * (HDR + JUMBO), 64);
	CHECK(gpa && send_burst(&a, gpa, N, (const uint8_t (*)[6])dst, (const uint8_t (*)[6])src, len, JUMBO) == 0, "burst-sent-in-one-kick");
	for (unsigned i = 0; i < N; i++) {
		if (i % 4 != 1) {
			want_b++;
			got_b += got_frame(&b, dst[i], X, len[i], (uint8_t)i, NULL);
		}
		if (i % 4 == 1 || i % 4 == 2) {
			want_c++;
			got_c += got_frame(&c, dst[i], X, len[i], (uint8_t)i, NULL);
		}
	}
	CHECK_EQ(got_b, want_b, "burst-b-gets-its-frames-in-order");
	CHECK_EQ(got_c, want_c, "burst-c-gets-its-frames-in-order");
	CHECK(nothing_on(&b) && nothing_on(&c), "burst-nothing-more");
	port_close(&a);
	port_close(&b);
	port_close(&c);
}

/*
 * Learning inside one burst, where the switch skips a source it has just learned and
 * a destination it has just looked up: a station that moves behind the sending port
 * mid-burst is no longer reached through its old port by the frames after the move.
 */
static void test_burst_station_moves(void)
{
	enum { N = 6 };
	struct port a, b;
	const uint8_t X[6] = { 2, 0x11, 0, 0, 0, 1 }, Y[6] = { 2, 0x22, 0, 0, 0, 1 };
	/* X to Y twice (Y is behind b), then Y itself from a, then X to Y again twice. */
	const uint8_t dst[N][6] = { { 2, 0x22, 0, 0, 0, 1 }, { 2, 0x22, 0, 0, 0, 1 }, { 2, 0x22, 0, 0, 0, 1 },
				   { 2, 0x22, 0, 0, 0, 1 }, { 2, 0x22, 0, 0, 0, 1 }, { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff } };
	const uint8_t src[N][6] = { { 2, 0x11, 0, 0, 0, 1 }, { 2, 0x11, 0, 0, 0, 1 }, { 2, 0x22, 0, 0, 0, 1 },
				   { 2, 0x11, 0, 0, 0, 1 }, { 2, 0x11, 0, 0, 0, 1 }, { 2, 0x11, 0, 0, 0, 1 } };
	const size_t len[N] = { 60, 61, 62, 63, 64, 65 };

	if (!CHECK(port_open(&a, 0, 0) && port_open(&b, 1, 0) && add_rx(&a, 16, 2048) && add_rx(&b, 16, 2048),
		   "moves-setup"))
		return;
	CHECK(send_frame(&b, BCAST, Y, 60, 0) == 0 && got_frame(&a, BCAST, Y, 60, 0, NULL), "moves-y-learned-on-b");
	uint64_t gpa = vuf_alloc(a.f, N * (HDR + 128), 64);
	CHECK(gpa && send_burst(&a, gpa, N, dst, src, len, 128) == 0, "moves-burst-sent");
	CHECK(got_frame(&b, Y, X, 60, 0, NULL) && got_frame(&b, Y, X, 61, 1, NULL), "moves-before-the-move-to-b");
	/* Frames 2-4 are for a station now behind a itself: they stay there. The broadcast still comes. */
	CHECK(got_frame(&b, BCAST, X, 65, 5, NULL), "moves-after-the-move-not-to-b");
	CHECK(nothing_on(&b) && nothing_on(&a), "moves-nothing-more");
	port_close(&a);
	port_close(&b);
}

/* The standard Internet checksum of a flat buffer (RFC 1071). */
static uint16_t inet_csum(const uint8_t *p, size_t len, uint32_t sum)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void test_checksum(void)
{
	struct port a, b;
	uint8_t X[6] = { 2, 0x11, 0, 0, 0, 1 }, f[128] = { 0 }, buf[2048];
	struct hdr h;

	if (!CHECK(port_open(&a, 0, BIT(F_CSUM) | BIT(F_HOST_TSO4)) && port_open(&b, 1, BIT(F_MRG_RXBUF)) &&
		   add_rx(&b, 16, 2048), "csum-setup"))
		return;
	/* An IPv4/UDP frame whose UDP checksum holds only the pseudo-header sum. */
	size_t len = 14 + 20 + 8 + 50;
	memcpy(f, MAC[1], 6), memcpy(f + 6, X, 6), f[12] = 0x08;
	uint8_t *ip = f + 14, *udp = ip + 20;
	ip[0] = 0x45, ip[3] = 20 + 8 + 50, ip[8] = 64, ip[9] = 17;
	ip[12] = 10, ip[15] = 1, ip[16] = 10, ip[19] = 2;
	udp[1] = 7, udp[3] = 9, udp[5] = 8 + 50;
	for (unsigned i = 0; i < 50; i++)
		udp[8 + i] = (uint8_t)(i * 13 + 1);
	uint32_t pseudo = (10 << 8) + 1 + (10 << 8) + 2 + 17 + 58;
	uint16_t partial = (uint16_t)~inet_csum(NULL, 0, pseudo);
	udp[6] = partial >> 8, udp[7] = partial & 0xff;
	h = (struct hdr){ .flags = 1, .csum_start = htole16(34), .csum_offset = htole16(6) };
	int n = send_raw(&a, &h, f, len) == 0 ? recv_frame(&b, &h, buf, sizeof(buf), 1000) : -1;
	if (CHECK_EQ(n, (int)len, "csum-delivered")) {
		CHECK(h.flags == 0 && h.csum_start == 0 && h.csum_offset == 0,
		      "csum-header-cleared-for-receiver-without-guest-csum");
		/* A correct checksum sums (with the pseudo-header) to zero. */
		CHECK_EQ(inet_csum(buf + 34, 58, pseudo), 0, "csum-filled-in");
	}
	h = (struct hdr){ .flags = 1, .gso_type = 1, .gso_size = htole16(1400), .csum_start = htole16(34),
			  .csum_offset = htole16(16) };
	CHECK(send_raw(&a, &h, f, len) == 0 && nothing_on(&b), "csum-gso-to-receiver-without-tso-dropped");
	port_close(&a);
	port_close(&b);
}

static void test_ageing_and_rarp(void)
{
	struct port a, b, c;
	uint8_t X[6] = { 2, 0x11, 0, 0, 0, 1 }, R[6] = { 2, 0x44, 0, 0, 0, 4 }, buf[2048];
	struct hdr h;

	if (!CHECK(port_open(&a, 0, 0) && port_open(&b, 1, 0) && port_open(&c, 2, 0) && add_rx(&a, 16, 2048) &&
		   add_rx(&b, 16, 2048) && add_rx(&c, 16, 2048), "age-setup"))
		return;
	CHECK(send_frame(&a, BCAST, X, 60, 1) == 0 && got_frame(&b, BCAST, X, 60, 1, NULL) &&
	      got_frame(&c, BCAST, X, 60, 1, NULL), "age-learn");
	CHECK(send_frame(&c, X, MAC[2], 60, 2) == 0 && got_frame(&a, X, MAC[2], 60, 2, NULL) && nothing_on(&b),
	      "age-fresh-entry-used");
	sleep(3); /* --ageing=2 */
	CHECK(send_frame(&c, X, MAC[2], 60, 3) == 0 && got_frame(&b, X, MAC[2], 60, 3, NULL), "age-aged-out-floods");
	got_frame(&a, X, MAC[2], 60, 3, NULL);
	/* SEND_RARP on a: everybody else hears a RARP from R, and R is now on a. */
	uint64_t mac = 0;
	memcpy(&mac, R, 6);
	CHECK(vuf_request(a.f, VU_REQ_SEND_RARP, &mac, sizeof(mac), NULL, 0) == 0, "rarp-accepted");
	int n = recv_frame(&b, &h, buf, sizeof(buf), 1000);
	CHECK(n >= 42 && !memcmp(buf, BCAST, 6) && !memcmp(buf + 6, R, 6) && buf[12] == 0x80 && buf[13] == 0x35 &&
	      buf[21] == 3 && !memcmp(buf + 22, R, 6), "rarp-broadcast");
	CHECK(nothing_on(&a), "rarp-not-to-itself");
	recv_frame(&c, &h, buf, sizeof(buf), 1000);
	CHECK(send_frame(&c, R, MAC[2], 60, 4) == 0 && got_frame(&a, R, MAC[2], 60, 4, NULL) && nothing_on(&b),
	      "rarp-mac-learned");
	port_close(&a);
	port_close(&b);
	port_close(&c);
}

static uint16_t config_status(struct port *p)
{
	uint8_t st[2] = { 0xff, 0xff };

	vuf_get_config(p->f, 6, 2, st);
	return st[0] | st[1] << 8;
}

/* SEND_RARP for a driver with GUEST_ANNOUNCE: it is asked (S_ANNOUNCE) to announce itself too. */
static void test_announce(void)
{
	struct port a;
	struct vu_hdr hdr;
	uint8_t R[6] = { 2, 0x55, 0, 0, 0, 5 };
	uint64_t mac = 0;

	if (!CHECK(port_open(&a, 0, BIT(F_CTRL_VQ) | BIT(F_STATUS) | BIT(F_GUEST_ANNOUNCE)) &&
		   vuf_set_backend_req_fd(a.f) == 0, "announce-setup"))
		return;
	CHECK_EQ(config_status(&a), 1, "announce-not-before-rarp");
	memcpy(&mac, R, 6);
	CHECK(vuf_request(a.f, VU_REQ_SEND_RARP, &mac, sizeof(mac), NULL, 0) == 0, "announce-rarp-accepted");
	CHECK(vuf_backend_recv(a.f, &hdr, NULL, 0, 1000) >= 0 && hdr.request == VU_BREQ_CONFIG_CHANGE_MSG,
	      "announce-config-change-sent");
	CHECK_EQ(config_status(&a), 3, "announce-status-link-up-and-announce");
	CHECK_EQ(ctrl(&a, 3, 0, NULL, 0), 0, "announce-ack");
	CHECK_EQ(config_status(&a), 1, "announce-ack-clears-announce");
	CHECK_EQ(ctrl(&a, 3, 1, NULL, 0), 1, "announce-unknown-command-refused");
	port_close(&a);
}

/* Pages of a ring's used ring marked in the log. */
static unsigned used_pages_marked(const struct vuf_log *log, const struct vuf_vq *vq)
{
	return vuf_log_count_range(log, vq->used_gpa, 6 + 8 * vq->num);
}

/*
 * Two ports, each with its own log (two guests being migrated): a 6000-byte frame
 * from a to b, received in b's 4 KiB mergeable buffers, marks on b the two
 * buffers' pages it was copied into (header and num_buffers included) and b's
 * used ring, nothing else; on a only its transmit ring's used ring (its frame's
 * pages are only read).
 */
static void test_dirty_log(void)
{
	struct port a, b;
	struct vuf_log la = { .fd = -1 }, lb = { .fd = -1 };
	uint64_t rxbuf[4];
	uint8_t X[6] = { 2, 0x11, 0, 0, 0, 1 };
	const uint64_t f_log = BIT(VHOST_F_LOG_ALL), pf_log = 1ull << VU_PF_LOG_SHMFD;

	memset(&b, 0, sizeof(b));
	if (!CHECK(port_open_pf(&a, 0, f_log | BIT(F_MRG_RXBUF), pf_log) &&
		   port_open_pf(&b, 1, f_log | BIT(F_MRG_RXBUF), pf_log) && (a.f->features & f_log) &&
		   (b.f->features & f_log) && vuf_log_init(&la, 4096) && vuf_log_init(&lb, 4096), "log-setup"))
		goto out;
	bool ok = vuf_log_send(a.f, &la) == 0 && vuf_log_send(b.f, &lb) == 0;
	ok = ok && vuf_log_ring(a.rx) == 0 && vuf_log_ring(a.tx) == 0 && vuf_log_ring(b.rx) == 0 &&
	     vuf_log_ring(b.tx) == 0;
	for (unsigned i = 0; ok && i < 4; i++) {
		struct vuf_buf buf = { rxbuf[i] = vuf_alloc(b.f, VU_LOG_PAGE, VU_LOG_PAGE), VU_LOG_PAGE };
		int head = buf.gpa ? vuf_vq_add(b.rx, NULL, 0, &buf, 1, false) : -1;
		ok = head >= 0;
		if (ok)
			b.rx_gpa[head] = buf.gpa;
	}
	if (!CHECK(ok && vuf_vq_kick(b.rx) == 0, "log-base-rings-and-buffers"))
		goto out;
	unsigned nb = 0;
	CHECK(send_frame(&a, MAC[1], X, 6000, 9) == 0 && got_frame(&b, MAC[1], X, 6000, 9, &nb) && nb == 2,
	      "log-frame-in-two-buffers");
	CHECK(vuf_log_marked(&lb, rxbuf[0]) && vuf_log_marked(&lb, rxbuf[1]), "log-receiver-buffers-marked");
	CHECK(!vuf_log_marked(&lb, rxbuf[2]) && !vuf_log_marked(&lb, rxbuf[3]), "log-receiver-unused-buffers-not-marked");
	unsigned used = used_pages_marked(&lb, b.rx);
	CHECK(used >= 1, "log-receiver-used-ring-marked");
	CHECK_EQ(vuf_log_count(&lb) - used, 2, "log-receiver-nothing-else-marked");
	/* (The frame's first page may be the used ring's: look at the one after.) */
	uint64_t inside = (a.txbuf + VU_LOG_PAGE) & ~(uint64_t)(VU_LOG_PAGE - 1);
	CHECK(!vuf_log_marked(&la, inside), "log-sender-frame-not-marked");
	used = used_pages_marked(&la, a.tx);
	CHECK(used >= 1, "log-sender-tx-used-ring-marked");
	CHECK_EQ(vuf_log_count(&la) - used, 0, "log-sender-nothing-else-marked");
out:
	vuf_log_free(&la);
	vuf_log_free(&lb);
	port_close(&a);
	port_close(&b);
}

/* The counters the back-end logs at exit: "port MAC: sent S, received R, dropped D, bad B". */
static bool port_stats(const char *mac, unsigned long long *v)
{
	char line[512], key[64];
	FILE *f = fopen(logpath, "r");
	bool found = false;

	snprintf(key, sizeof(key), "port %s: sent", mac);
	while (f && fgets(line, sizeof(line), f)) {
		char *p = strstr(line, key);
		if (p && sscanf(p + strlen(key), " %llu, received %llu, dropped %llu, bad %llu", &v[0], &v[1], &v[2],
				&v[3]) == 4)
			found = true;
	}
	if (f)
		fclose(f);
	return found;
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	for (unsigned i = 0; i < 3; i++)
		snprintf(sock[i], sizeof(sock[i]), "%s/p%u.sock", dir, i);
	snprintf(logpath, sizeof(logpath), "%s/backend.log", dir);
	setenv("VUF_BACKEND_LOG", logpath, 1);
	char sb[80], sc[80];
	snprintf(sb, sizeof(sb), "--socket-path=%s", sock[1]);
	snprintf(sc, sizeof(sc), "--socket-path=%s", sock[2]);
	/* The first socket comes first on the command line: each port gets its options after it. */
	const char *args[] = { "--ageing=2", "--queues=2", "--mtu=9000", "--mac=02:00:00:00:00:0a",
			       sb, "--queues=2", "--mac=02:00:00:00:00:0b", sc, "--mac=02:00:00:00:00:0c", NULL };
	struct vuf_backend *be = vuf_backend_start("net", args, sock[0]);

	if (!CHECK(be != NULL, "backend-start"))
		return check_exit();
	for (unsigned packed = 0; packed < 2; packed++) {
		if (packed) {
			base_features |= BIT(VIRTIO_F_RING_PACKED);
			check_suffix = "-packed";
		}
		test_config();
		test_forwarding();
		test_mergeable();
		test_rx_header();
		test_ctrl();
		test_malformed();
		test_full_ring();
		test_burst();
		test_burst_station_moves();
		test_checksum();
		test_ageing_and_rarp();
		test_announce();
		test_dirty_log();
	}
	check_suffix = "";
	CHECK(vuf_backend_alive(be), "backend-survived");
	CHECK_EQ(vuf_backend_stop(be, 5000), 0, "backend-clean-exit");
	unsigned long long s[4];
	if (CHECK(port_stats("02:00:00:00:00:0b", s), "stats-logged")) {
		check_note("port b: sent %llu received %llu dropped %llu bad %llu", s[0], s[1], s[2], s[3]);
		CHECK(s[2] >= 6, "stats-full-ring-drops-counted");
	}
	if (CHECK(port_stats("02:00:00:00:00:0a", s), "stats-logged-a"))
		CHECK(s[3] >= 5, "stats-malformed-counted");
	if (!check_failures())
		unlink(logpath);
	for (unsigned i = 0; i < 3; i++)
		unlink(sock[i]);
	rmdir(dir);
	return check_exit();
}
