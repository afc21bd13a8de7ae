/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vhost-user-vsock through the test front-end, which plays the guest's driver: its
 * packets are built in guest memory by hand and read back from the receive ring; the
 * host side is plain unix sockets. Two VMs in one process (two sockets); a live
 * migration between two more back-end processes.
 *
 * Config space, TRANSPORT_RESET, connections both ways ("CONNECT <port>" / "OK"),
 * refusals, credit both ways (the guest's credit bounds what it is sent; the credit we
 * give bounds what it may send, and grows as the host reads), CREDIT_REQUEST,
 * SHUTDOWN and half-close both ways, the host closing first, hostile packets, a
 * thousand connections at once, a stalled connection beside a busy one, a host
 * listener whose backlog is full, the connection limit, pause/resume (the rings
 * stop and come back where they were), a new driver, the front-end leaving, a bad
 * receive buffer, a live migration (the dirty log, the hand-over between back-ends).
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "test/check.h"
#include "test/dirty-log.h"
#include "test/frontend.h"

/* The wire, written down here again: the test does not trust the device's header. */
struct hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));
#define HDR 44u
_Static_assert(sizeof(struct hdr) == HDR, "virtio_vsock_hdr is 44 bytes");

enum { STREAM = 1, SEQPACKET = 2 };
enum { REQUEST = 1, RESPONSE = 2, RST = 3, SHUTDOWN = 4, RW = 5, CREDIT_UPDATE = 6, CREDIT_REQUEST = 7 };
enum { SHUT_RCV_F = 1, SHUT_SEND_F = 2 };
#define HOST 2
#define RING 256
#define RXBUF 4096                   /* payload of a receive buffer, as Linux gives */
#define NRX (RING / 2)               /* receive buffers: two descriptors each */
#define BIGBUF (1u << 20)            /* the credit our guest gives */
#define DEV_BUF (64u * 1024)         /* --buffer-size of VM 0 */
#define TX_SLOTS 40                  /* transmit packets queued at once (queue_pkt) */

struct guest {
	struct vuf *f;
	struct vuf_vq *rx, *tx, *ev;
	uint32_t cid;
	const char *uds;                /* its host side (--uds-path) */
	uint64_t rx_area, tx_area, ev_area;
	uint64_t rx_gpa[RING];          /* by head */
	unsigned events;                /* TRANSPORT_RESETs seen */
};

struct pkt {
	struct hdr h;
	uint64_t gpa;           /* the receive buffer it came in */
	uint32_t len;
	uint8_t data[RXBUF];
};

static char dir[] = "/tmp/t-vsock.XXXXXX";
static char sock[2][80], uds[2][80], logpath[80];
static struct vuf_backend *be;

static const uint64_t features = 1ull << VIRTIO_F_VERSION_1 | 1ull << VHOST_USER_F_PROTOCOL_FEATURES |
				 1ull << VIRTIO_RING_F_EVENT_IDX | 1ull << VIRTIO_RING_F_INDIRECT_DESC;
static const uint64_t pfs = 1ull << VU_PF_REPLY_ACK | 1ull << VU_PF_CONFIG | 1ull << VU_PF_MQ |
			    1ull << VU_PF_STATUS | 1ull << VU_PF_RESET_DEVICE;

/* ---- the guest's driver ------------------------------------------------------------ */

static bool post_rx(struct guest *g, uint64_t gpa)
{
	struct vuf_buf in[2] = { { gpa, HDR }, { gpa + HDR, RXBUF } };
	int head = vuf_vq_add(g->rx, NULL, 0, in, 2, false);

	if (head < 0)
		return false;
	g->rx_gpa[head] = gpa;
	return true;
}

static bool post_event(struct guest *g, uint64_t gpa)
{
	struct vuf_buf in = { gpa, 4 };
	return vuf_vq_add(g->ev, NULL, 0, &in, 1, false) >= 0;
}

/* Sets up the rings (at base[queue], or 0) and gives the receive and event rings their buffers. */
static bool start_rings(struct guest *g, const uint16_t *base, bool fill)
{
	if (vuf_vq_start(g->rx, base ? base[0] : 0, 0) < 0 || vuf_vq_start(g->tx, base ? base[1] : 0, 0) < 0 ||
	    vuf_vq_start(g->ev, base ? base[2] : 0, 0) < 0)
		return false;
	if (fill) {
		for (unsigned i = 0; i < NRX; i++)
			if (!post_rx(g, g->rx_area + i * (HDR + RXBUF)))
				return false;
		for (unsigned i = 0; i < 8; i++)
			if (!post_event(g, g->ev_area + 8 * i))
				return false;
	}
	return vuf_vq_kick(g->rx) == 0 && vuf_vq_kick(g->ev) == 0;
}

/*
 * A guest of the back-end at path (its host side at uds), with features and protocol
 * features besides the usual, its rings starting at base.
 */
static bool guest_connect(struct guest *g, const char *path, const char *uds_path, uint32_t cid, uint64_t more_f,
			  uint64_t more_pf, const uint16_t *base)
{
	memset(g, 0, sizeof(*g));
	g->cid = cid;
	g->uds = uds_path;
	g->f = vuf_connect(path, 2000);
	if (!g->f || vuf_mem_init(g->f, 1, 64 << 20, 0) < 0 ||
	    vuf_negotiate(g->f, features | more_f, pfs | more_pf) < 0)
		goto fail;
	g->rx = vuf_vq_alloc(g->f, 0, RING);
	g->tx = vuf_vq_alloc(g->f, 1, RING);
	g->ev = vuf_vq_alloc(g->f, 2, 16);
	g->rx_area = vuf_alloc(g->f, NRX * (HDR + RXBUF), 64);
	g->tx_area = vuf_alloc(g->f, TX_SLOTS * (HDR + 65536), 64);
	g->ev_area = vuf_alloc(g->f, 64, 8);
	if (!g->rx || !g->tx || !g->ev || !g->rx_area || !g->tx_area || !g->ev_area || !start_rings(g, base, true) ||
	    vuf_set_status(g->f, 15) < 0)
		goto fail;
	return true;
fail:
	check_note("guest at %s: %s", path, g->f ? vuf_error(g->f) : "cannot connect");
	return false;
}

static bool guest_open(struct guest *g, unsigned vm, uint32_t cid)
{
	return guest_connect(g, sock[vm], uds[vm], cid, 0, 0, NULL);
}

static void guest_close(struct guest *g)
{
	vuf_close(g->f);
	memset(g, 0, sizeof(*g));
}

/* Puts a packet (header, then payload in a second buffer) on the transmit ring; waits until it is taken. */
static bool send_pkt(struct guest *g, const struct hdr *h, const void *data, uint32_t len)
{
	uint64_t at = g->tx_area;
	struct vuf_buf out[2] = { { at, HDR }, { at + HDR, len } };

	if (len > 65536 || vuf_gpa_write(g->f, at, h, HDR) < 0 || (len && vuf_gpa_write(g->f, at + HDR, data, len) < 0))
		return false;
	if (vuf_vq_add(g->tx, out, len ? 2 : 1, NULL, 0, false) < 0 || vuf_vq_kick(g->tx) < 0)
		return false;
	return vuf_vq_wait_used(g->tx, NULL, NULL, 3000) == 0;
}

/* Queues a packet in slot (no kick, no wait): several go to the device in one kick. */
static bool queue_pkt(struct guest *g, unsigned slot, const struct hdr *h, const void *data, uint32_t len)
{
	uint64_t at = g->tx_area + (uint64_t)slot * (HDR + 65536);
	struct vuf_buf out[2] = { { at, HDR }, { at + HDR, len } };

	return slot < TX_SLOTS && len <= 65536 && vuf_gpa_write(g->f, at, h, HDR) == 0 &&
	       (!len || vuf_gpa_write(g->f, at + HDR, data, len) == 0) &&
	       vuf_vq_add(g->tx, out, len ? 2 : 1, NULL, 0, false) >= 0;
}

/* Kicks and waits until the device took n packets. */
static bool kick_and_wait(struct guest *g, unsigned n)
{
	if (vuf_vq_kick(g->tx) < 0)
		return false;
	for (unsigned i = 0; i < n; i++)
		if (vuf_vq_wait_used(g->tx, NULL, NULL, 3000) < 0)
			return false;
	return true;
}

static struct hdr mkhdr(const struct guest *g, uint16_t op, uint32_t sport, uint32_t dport, uint32_t len,
			uint32_t flags, uint32_t buf_alloc, uint32_t fwd_cnt)
{
	return (struct hdr){ .src_cid = htole64(g->cid), .dst_cid = htole64(HOST), .src_port = htole32(sport),
			     .dst_port = htole32(dport), .len = htole32(len), .type = htole16(STREAM),
			     .op = htole16(op), .flags = htole32(flags), .buf_alloc = htole32(buf_alloc),
			     .fwd_cnt = htole32(fwd_cnt) };
}

static bool send_op(struct guest *g, uint16_t op, uint32_t sport, uint32_t dport, uint32_t flags, uint32_t fwd_cnt)
{
	struct hdr h = mkhdr(g, op, sport, dport, 0, flags, BIGBUF, fwd_cnt);
	return send_pkt(g, &h, NULL, 0);
}

static bool send_data(struct guest *g, uint32_t sport, uint32_t dport, const void *data, uint32_t len, uint32_t fwd_cnt)
{
	struct hdr h = mkhdr(g, RW, sport, dport, len, 0, BIGBUF, fwd_cnt);
	return send_pkt(g, &h, data, len);
}

/* The next packet the device put in a receive buffer (which goes back to the ring), or false. */
static bool recv_pkt(struct guest *g, struct pkt *p, int timeout_ms)
{
	uint32_t id, used;

	if (vuf_vq_wait_used(g->rx, &id, &used, timeout_ms) < 0)
		return false;
	if (id >= RING || used < HDR || used > HDR + RXBUF || vuf_gpa_read(g->f, g->rx_gpa[id], &p->h, HDR) < 0) {
		check_note("bad used element id %u len %u", id, used);
		return false;
	}
	p->gpa = g->rx_gpa[id];
	p->len = used - HDR;
	if (vuf_gpa_read(g->f, g->rx_gpa[id] + HDR, p->data, p->len) < 0)
		return false;
	if (le32toh(p->h.len) != p->len)
		check_note("header says %u bytes, the used element %u", le32toh(p->h.len), p->len);
	bool ok = post_rx(g, g->rx_gpa[id]) && vuf_vq_kick(g->rx) == 0;
	return ok && le32toh(p->h.len) == p->len;
}

/* Receives until a packet for (host port, guest port) comes; CREDIT_UPDATEs are skipped unless asked for. */
static bool expect(struct guest *g, struct pkt *p, uint16_t op, uint32_t host_port, uint32_t guest_port,
		   int timeout_ms)
{
	int64_t end = vuf_now_ms() + timeout_ms;

	while (vuf_now_ms() < end) {
		if (!recv_pkt(g, p, (int)(end - vuf_now_ms()) > 0 ? (int)(end - vuf_now_ms()) : 1))
			break;
		if (le16toh(p->h.op) == CREDIT_UPDATE && op != CREDIT_UPDATE)
			continue;
		bool match = le16toh(p->h.op) == op && le32toh(p->h.src_port) == host_port &&
			     le32toh(p->h.dst_port) == guest_port && le64toh(p->h.src_cid) == HOST &&
			     le64toh(p->h.dst_cid) == g->cid && le16toh(p->h.type) == STREAM;
		if (!match)
			check_note("expected op %u %u->%u, got op %u %u->%u (cid %llu->%llu, type %u, flags %u)", op,
				   host_port, guest_port, le16toh(p->h.op), le32toh(p->h.src_port),
				   le32toh(p->h.dst_port), (unsigned long long)le64toh(p->h.src_cid),
				   (unsigned long long)le64toh(p->h.dst_cid), le16toh(p->h.type), le32toh(p->h.flags));
		return match;
	}
	check_note("expected op %u %u->%u: nothing came", op, host_port, guest_port);
	return false;
}

/* True if no packet (credit updates aside) comes within ms. */
static bool quiet(struct guest *g, int ms)
{
	struct pkt p;
	int64_t end = vuf_now_ms() + ms;

	while (vuf_now_ms() < end) {
		if (!recv_pkt(g, &p, (int)(end - vuf_now_ms()) > 0 ? (int)(end - vuf_now_ms()) : 1))
			return true;
		if (le16toh(p.h.op) != CREDIT_UPDATE) {
			check_note("unexpected op %u %u->%u", le16toh(p.h.op), le32toh(p.h.src_port), le32toh(p.h.dst_port));
			return false;
		}
	}
	return true;
}

/* Reads an event buffer if one was used: the TRANSPORT_RESETs posted so far. */
static unsigned count_events(struct guest *g, int timeout_ms)
{
	uint32_t id, len;

	while (vuf_vq_wait_used(g->ev, &id, &len, timeout_ms) == 0) {
		uint32_t ev = 0xffffffff;
		vuf_gpa_read(g->f, g->ev_area, &ev, 4); /* every buffer we give is read back the same */
		if (len == 4)
			g->events++;
		post_event(g, g->ev_area);
		vuf_vq_kick(g->ev);
		timeout_ms = 0;
	}
	return g->events;
}

/* ---- the host side ----------------------------------------------------------------------- */

static int unix_listen(const char *path, int backlog)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, backlog) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int unix_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static bool readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, timeout_ms) == 1;
}

static int accept_within(int lfd, int timeout_ms)
{
	return readable(lfd, timeout_ms) ? accept4(lfd, NULL, NULL, SOCK_CLOEXEC) : -1;
}

/* Reads exactly len bytes (false on EOF, error or timeout). */
static bool read_exact(int fd, void *buf, size_t len, int timeout_ms)
{
	int64_t end = vuf_now_ms() + timeout_ms;

	for (size_t got = 0; got < len;) {
		if (!readable(fd, (int)(end - vuf_now_ms()) > 0 ? (int)(end - vuf_now_ms()) : 0))
			return false;
		ssize_t n = read(fd, (char *)buf + got, len - got);
		if (n <= 0)
			return false;
		got += n;
	}
	return true;
}

/* 1: end of file within the time, 0: still open (nothing to read), -1: data came instead. */
static int eof_within(int fd, int timeout_ms)
{
	char c;

	if (!readable(fd, timeout_ms))
		return 0;
	ssize_t n = read(fd, &c, 1);
	return n == 0 || (n < 0 && errno == ECONNRESET) ? 1 : -1;
}

static void pattern(uint8_t *p, size_t len, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		p[i] = (uint8_t)(x >> 16);
	}
}

/* ---- a guest -> host connection, as tests need them ------------------------------------------ */

struct conn {
	uint32_t gport, hport;      /* the guest's and the host's ports */
	int fd;                     /* the host's end */
	uint32_t tx;                /* bytes the guest sent */
	uint32_t peer_buf_alloc, peer_fwd_cnt;
};

/* A guest connection to host port hport, listened on at lfd. */
static bool g2h_connect(struct guest *g, int lfd, struct conn *c, uint32_t gport, uint32_t hport)
{
	struct pkt p;

	*c = (struct conn){ .gport = gport, .hport = hport, .fd = -1 };
	if (!send_op(g, REQUEST, gport, hport, 0, 0) || !expect(g, &p, RESPONSE, hport, gport, 2000))
		return false;
	c->peer_buf_alloc = le32toh(p.h.buf_alloc);
	c->peer_fwd_cnt = le32toh(p.h.fwd_cnt);
	c->fd = accept_within(lfd, 2000);
	return c->fd >= 0;
}

/* ---- cases --------------------------------------------------------------------------------- */

static struct guest g0, g1;

static void test_config(void)
{
	uint64_t cid = 0;

	CHECK(vuf_get_config(g0.f, 0, 8, &cid) > 0, "config-read");
	CHECK_EQ(le64toh(cid), 3, "config-guest-cid");
	cid = 0;
	vuf_get_config(g1.f, 0, 8, &cid);
	CHECK_EQ(le64toh(cid), 4, "config-guest-cid-second-vm");
	uint64_t f = 0;
	vuf_get_features(g0.f, &f);
	CHECK((f & 0xffffff) == 0, "no-device-features (stream is implied)");
}

static void test_event(void)
{
	CHECK_EQ(count_events(&g0, 2000), 1, "transport-reset-on-start");
}

static void test_guest_to_host(void)
{
	char path[100], buf[16];
	struct pkt p;
	struct conn c;

	snprintf(path, sizeof(path), "%s_1234", uds[0]);
	int lfd = unix_listen(path, 16);
	if (!CHECK(g2h_connect(&g0, lfd, &c, 40000, 1234), "g2h-connect"))
		goto out;
	CHECK_EQ(c.peer_buf_alloc, DEV_BUF, "g2h-response-buf-alloc");
	CHECK_EQ(c.peer_fwd_cnt, 0, "g2h-response-fwd-cnt");
	CHECK(send_data(&g0, 40000, 1234, "hello", 5, 0) && read_exact(c.fd, buf, 5, 2000) && !memcmp(buf, "hello", 5),
	      "g2h-data-to-host");
	CHECK(write(c.fd, "world!", 6) == 6 && expect(&g0, &p, RW, 1234, 40000, 2000) && p.len == 6 &&
	      !memcmp(p.data, "world!", 6), "g2h-data-to-guest");
	CHECK_EQ(le32toh(p.h.fwd_cnt), 5, "g2h-fwd-cnt-counts-what-the-host-took");
	CHECK_EQ(le32toh(p.h.buf_alloc), DEV_BUF, "g2h-buf-alloc-in-every-packet");
	/* The guest closes: SHUTDOWN both ways; the host reads EOF; the device ends it with RST. */
	CHECK(send_op(&g0, SHUTDOWN, 40000, 1234, SHUT_RCV_F | SHUT_SEND_F, 6), "g2h-shutdown-sent");
	CHECK_EQ(eof_within(c.fd, 2000), 1, "g2h-host-reads-eof");
	CHECK(expect(&g0, &p, RST, 1234, 40000, 2000), "g2h-closed-with-rst");
	close(c.fd);
out:
	close(lfd);
	unlink(path);
}

static void test_refused(void)
{
	struct pkt p;

	CHECK(send_op(&g0, REQUEST, 40001, 1235, 0, 0) && expect(&g0, &p, RST, 1235, 40001, 2000),
	      "g2h-no-listener-rst");
	/* A path too long for a unix socket is refused the same way. */
	CHECK(quiet(&g0, 100), "g2h-refused-nothing-else");
}

static uint32_t h2g_open(struct guest *g, int *fd_out, uint32_t gport, const char *extra)
{
	struct pkt p;
	char want[32], line[32] = { 0 };

	*fd_out = -1;
	int fd = unix_connect(g->uds);
	char cmd[64];
	int n = snprintf(cmd, sizeof(cmd), "CONNECT %u\n%s", gport, extra);
	if (fd < 0 || write(fd, cmd, n) != n || !recv_pkt(g, &p, 2000) || le16toh(p.h.op) != REQUEST ||
	    le32toh(p.h.dst_port) != gport) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	uint32_t hport = le32toh(p.h.src_port);
	if (!send_op(g, RESPONSE, gport, hport, 0, 0))
		goto fail;
	snprintf(want, sizeof(want), "OK %u\n", hport);
	if (!read_exact(fd, line, strlen(want), 2000) || strcmp(line, want))
		goto fail;
	*fd_out = fd;
	return hport;
fail:
	close(fd);
	return 0;
}

static void test_h2g(void)
{
	struct pkt p;
	char buf[16];
	int fd;

	uint32_t hport = h2g_open(&g0, &fd, 5000, "early");
	if (!CHECK(hport, "h2g-request-response-ok"))
		return;
	CHECK(hport >= 1u << 30, "h2g-host-port-from-its-range");
	CHECK(expect(&g0, &p, RW, hport, 5000, 2000) && p.len == 5 && !memcmp(p.data, "early", 5),
	      "h2g-bytes-after-the-line-kept");
	CHECK(send_data(&g0, 5000, hport, "back", 4, 5) && read_exact(fd, buf, 4, 2000) && !memcmp(buf, "back", 4),
	      "h2g-guest-to-host");
	/* The host closes: the guest hears SHUTDOWN(SEND); its own close finishes it. */
	close(fd);
	CHECK(expect(&g0, &p, SHUTDOWN, hport, 5000, 2000) && (le32toh(p.h.flags) & SHUT_SEND_F),
	      "h2g-host-close-shutdown");
	CHECK(send_op(&g0, SHUTDOWN, 5000, hport, SHUT_RCV_F | SHUT_SEND_F, 5) && expect(&g0, &p, RST, hport, 5000, 2000),
	      "h2g-both-closed-rst");
}

static void test_h2g_refused(void)
{
	struct pkt p;
	char buf[8];

	int fd = unix_connect(uds[0]);
	if (!CHECK(fd >= 0 && write(fd, "connect 5001\r\n", 14) == 14 && recv_pkt(&g0, &p, 2000) &&
		   le16toh(p.h.op) == REQUEST && le32toh(p.h.dst_port) == 5001, "h2g-refused-request"))
		goto out;
	/* Nobody listens in the guest: it answers RST, the host client is closed without OK. */
	CHECK(send_op(&g0, RST, 5001, le32toh(p.h.src_port), 0, 0), "h2g-refused-rst-sent");
	CHECK(readable(fd, 2000) && read(fd, buf, sizeof(buf)) == 0, "h2g-refused-closed-without-ok");
out:
	if (fd >= 0)
		close(fd);
}

static void test_lines(void)
{
	static const char *const bad[] = { "HELLO 5000\n", "CONNECT\n", "CONNECT x\n", "CONNECT 99999999999\n",
					   "CONNECT 5000 6000\n", "CONNECT -1\n",
					   "CONNECT 000000000000000000000000000000005000" /* too long, no newline */ };
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int fd = unix_connect(uds[0]);
		/* Closed with bytes unread, the socket reads ECONNRESET rather than end of file. */
		bool closed = fd >= 0 && write(fd, bad[i], strlen(bad[i])) == (ssize_t)strlen(bad[i]) &&
			      eof_within(fd, 2000) == 1;
		CHECK(closed, "h2g-bad-line-closed-%u", i);
		if (fd >= 0)
			close(fd);
	}
	CHECK(quiet(&g0, 200), "h2g-bad-lines-never-reach-the-guest");
	/* A line in pieces is fine. */
	int fd = unix_connect(uds[0]);
	struct pkt p;
	bool ok = fd >= 0 && write(fd, "CONN", 4) == 4 && quiet(&g0, 100) && write(fd, "ECT 5002", 8) == 8 &&
		  quiet(&g0, 100) && write(fd, "\n", 1) == 1 && recv_pkt(&g0, &p, 2000) &&
		  le16toh(p.h.op) == REQUEST && le32toh(p.h.dst_port) == 5002;
	CHECK(ok, "h2g-line-in-pieces");
	if (ok)
		send_op(&g0, RST, 5002, le32toh(p.h.src_port), 0, 0);
	if (fd >= 0)
		close(fd);
}

/* The device never sends more than the guest's credit; more comes as the guest reports reading. */
static void test_credit_to_guest(void)
{
	struct pkt p;
	int fd;
	static uint8_t out[10000], in[10000];

	uint32_t hport = h2g_open(&g0, &fd, 5003, "");
	if (!CHECK(hport, "credit-h2g-open"))
		return;
	/* The guest had said BIGBUF in its RESPONSE; now it says 4096, with nothing read. */
	struct hdr h = mkhdr(&g0, CREDIT_UPDATE, 5003, hport, 0, 0, 4096, 0);
	CHECK(send_pkt(&g0, &h, NULL, 0), "credit-h2g-shrink");
	pattern(out, sizeof(out), 7);
	CHECK(write(fd, out, sizeof(out)) == sizeof(out), "credit-h2g-host-writes");
	size_t got = 0;
	bool asked = false, ok = true;
	for (uint32_t fwd = 0; got < sizeof(out) && ok;) {
		if (!recv_pkt(&g0, &p, 2000)) {
			ok = false;
			break;
		}
		uint16_t op = le16toh(p.h.op);
		if (op == CREDIT_REQUEST) {
			asked = true;
			CHECK_EQ(got - fwd, 4096, "credit-h2g-asked-when-out-of-credit-%u", fwd);
			/* The guest "reads" everything it got: its credit comes back. */
			fwd = (uint32_t)got;
			h = mkhdr(&g0, CREDIT_UPDATE, 5003, hport, 0, 0, 4096, fwd);
			ok = send_pkt(&g0, &h, NULL, 0);
			continue;
		}
		if (op != RW) {
			check_note("op %u", op);
			ok = false;
			break;
		}
		memcpy(in + got, p.data, p.len);
		got += p.len;
		if (got - fwd > 4096) {
			check_note("%zu bytes in flight, credit 4096", got - fwd);
			ok = false;
		}
	}
	CHECK(ok && got == sizeof(out) && !memcmp(in, out, sizeof(out)), "credit-h2g-all-within-credit");
	CHECK(asked, "credit-h2g-credit-request-sent");
	close(fd);
	CHECK(expect(&g0, &p, SHUTDOWN, hport, 5003, 2000), "credit-h2g-eof");
	send_op(&g0, RST, 5003, hport, 0, 0);
}

/*
 * Sends as a driver does, never beyond peer_buf_alloc - (sent - peer_fwd_cnt), taking
 * the device's credit updates as they come, until len bytes went or nothing moved for
 * 300 ms (stalled). Returns the bytes sent; c->tx counts them all.
 */
static uint32_t send_within_credit(struct guest *g, struct conn *c, const uint8_t *data, uint32_t len)
{
	struct pkt p;
	uint32_t sent = 0;

	while (sent < len) {
		while (recv_pkt(g, &p, 0))
			if (le16toh(p.h.op) == CREDIT_UPDATE && le32toh(p.h.dst_port) == c->gport) {
				c->peer_fwd_cnt = le32toh(p.h.fwd_cnt);
				c->peer_buf_alloc = le32toh(p.h.buf_alloc);
			}
		uint32_t credit = c->peer_buf_alloc - (c->tx - c->peer_fwd_cnt);
		if (!credit) {
			/* Credit comes as the device moves bytes on; none for a while: stalled. */
			if (!recv_pkt(g, &p, 300))
				break;
			if (le16toh(p.h.op) == CREDIT_UPDATE && le32toh(p.h.dst_port) == c->gport) {
				c->peer_fwd_cnt = le32toh(p.h.fwd_cnt);
				c->peer_buf_alloc = le32toh(p.h.buf_alloc);
			}
			continue;
		}
		uint32_t n = credit < 65536 ? credit : 65536;
		if (n > len - sent)
			n = len - sent;
		if (!send_data(g, c->gport, c->hport, data + sent, n, 0))
			break;
		sent += n;
		c->tx += n;
	}
	return sent;
}

/*
 * The credit we give: the guest may have DEV_BUF bytes the host has not read (beyond
 * what the host socket itself holds). A reader that does not read stops the guest
 * there; a byte more is a protocol error; reading gives the credit back.
 */
static void test_credit_from_guest(void)
{
	char path[100];
	struct pkt p;
	struct conn c;
	static uint8_t data[4 << 20], back[4 << 20];

	snprintf(path, sizeof(path), "%s_1300", uds[0]);
	int lfd = unix_listen(path, 16);
	if (!CHECK(g2h_connect(&g0, lfd, &c, 41000, 1300), "credit-g2h-connect"))
		goto out;
	pattern(data, sizeof(data), 3);
	uint32_t sent = send_within_credit(&g0, &c, data, sizeof(data));
	check_note("the guest sent %u bytes before the stall; the device told fwd_cnt %u", sent, c.peer_fwd_cnt);
	CHECK(sent < sizeof(data), "credit-g2h-stalls-when-the-host-does-not-read");
	CHECK_EQ(sent - c.peer_fwd_cnt, DEV_BUF, "credit-g2h-exactly-buffer-size-unread");
	/* Asked, the device says the same. */
	CHECK(send_op(&g0, CREDIT_REQUEST, 41000, 1300, 0, 0) && expect(&g0, &p, CREDIT_UPDATE, 1300, 41000, 2000) &&
	      le32toh(p.h.fwd_cnt) == c.peer_fwd_cnt, "credit-g2h-credit-request-answered");
	/* The host reads it all: credit updates come, up to everything sent. */
	if (CHECK(read_exact(c.fd, back, sent, 5000) && !memcmp(back, data, sent), "credit-g2h-host-reads-all-in-order")) {
		uint32_t fwd = c.peer_fwd_cnt;
		while (fwd != sent && recv_pkt(&g0, &p, 2000))
			if (le16toh(p.h.op) == CREDIT_UPDATE)
				fwd = le32toh(p.h.fwd_cnt);
		CHECK_EQ(fwd, sent, "credit-g2h-updates-up-to-everything-read");
		c.peer_fwd_cnt = fwd;
	}
	/* Stalled again, then one byte beyond the credit: the connection is reset. */
	uint32_t again = send_within_credit(&g0, &c, data, sizeof(data));
	CHECK(again < sizeof(data) && c.tx - c.peer_fwd_cnt == DEV_BUF, "credit-g2h-stalls-again");
	CHECK(send_data(&g0, 41000, 1300, "x", 1, 0) && expect(&g0, &p, RST, 1300, 41000, 2000), "credit-g2h-overrun-rst");
	/* The host end is closed: what it holds, then end of file. */
	size_t held = 0;
	ssize_t n;
	while (readable(c.fd, 2000) && (n = read(c.fd, back, sizeof(back))) > 0)
		held += n;
	check_note("the host read %zu of %u bytes, then end of file", held, again);
	CHECK(held < again, "credit-g2h-overrun-host-closed");
	close(c.fd);
out:
	close(lfd);
	unlink(path);
}

static void test_half_close(void)
{
	char path[100], buf[16];
	struct pkt p;
	struct conn c;

	snprintf(path, sizeof(path), "%s_1400", uds[0]);
	int lfd = unix_listen(path, 16);
	if (!CHECK(g2h_connect(&g0, lfd, &c, 42000, 1400), "half-close-connect"))
		goto out;
	/* The guest is done sending: the host reads its bytes, then EOF; the host may still send. */
	CHECK(send_data(&g0, 42000, 1400, "last", 4, 0) && send_op(&g0, SHUTDOWN, 42000, 1400, SHUT_SEND_F, 0),
	      "half-close-guest-shut-send");
	CHECK(read_exact(c.fd, buf, 4, 2000) && !memcmp(buf, "last", 4) && eof_within(c.fd, 2000) == 1,
	      "half-close-host-reads-data-then-eof");
	CHECK(write(c.fd, "reply", 5) == 5 && expect(&g0, &p, RW, 1400, 42000, 2000) && p.len == 5 &&
	      !memcmp(p.data, "reply", 5), "half-close-host-still-sends");
	/* Now the host is done too: SHUTDOWN(SEND) to the guest, and both ways over: RST. */
	shutdown(c.fd, SHUT_WR);
	CHECK(expect(&g0, &p, SHUTDOWN, 1400, 42000, 2000) && le32toh(p.h.flags) == SHUT_SEND_F,
	      "half-close-host-shut-send");
	CHECK(expect(&g0, &p, RST, 1400, 42000, 2000), "half-close-both-done-rst");
	close(c.fd);

	/* The guest stops receiving: the host's writes fail; the guest still sends. */
	if (!CHECK(g2h_connect(&g0, lfd, &c, 42001, 1400), "half-close-connect-2"))
		goto out;
	CHECK(send_op(&g0, SHUTDOWN, 42001, 1400, SHUT_RCV_F, 0), "half-close-guest-shut-rcv");
	bool epipe = false;
	for (int i = 0; i < 100 && !epipe; i++) {
		epipe = send(c.fd, "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE;
		if (!epipe)
			usleep(10000);
	}
	CHECK(epipe, "half-close-host-write-epipe");
	CHECK(send_data(&g0, 42001, 1400, "more", 4, 0) && read_exact(c.fd, buf, 4, 2000) && !memcmp(buf, "more", 4),
	      "half-close-guest-still-sends");
	CHECK(quiet(&g0, 200), "half-close-nothing-to-a-guest-that-shut-rcv");
	CHECK(send_op(&g0, RST, 42001, 1400, 0, 0) && eof_within(c.fd, 2000) == 1, "half-close-rst-closes-host");
	close(c.fd);
out:
	close(lfd);
	unlink(path);
}

/* The host end goes away while the guest sends: the guest gets SHUTDOWN, then RST for more data. */
static void test_host_closes(void)
{
	char path[100];
	struct pkt p;
	struct conn c;

	snprintf(path, sizeof(path), "%s_1500", uds[0]);
	int lfd = unix_listen(path, 16);
	if (!CHECK(g2h_connect(&g0, lfd, &c, 43000, 1500), "host-closes-connect"))
		goto out;
	close(c.fd);
	CHECK(expect(&g0, &p, SHUTDOWN, 1500, 43000, 2000), "host-closes-shutdown");
	CHECK(send_data(&g0, 43000, 1500, "late", 4, 0) && expect(&g0, &p, RST, 1500, 43000, 2000),
	      "host-closes-data-after-rst");
out:
	close(lfd);
	unlink(path);
}

static void test_hostile(void)
{
	char path[100];
	struct pkt p;
	struct conn c;
	struct hdr h;

	snprintf(path, sizeof(path), "%s_1600", uds[0]);
	int lfd = unix_listen(path, 16);

	/* Not even a header: dropped. */
	uint64_t at = g0.tx_area;
	struct vuf_buf b = { at, 20 };
	CHECK(vuf_vq_add(g0.tx, &b, 1, NULL, 0, false) >= 0 && vuf_vq_kick(g0.tx) == 0 &&
	      vuf_vq_wait_used(g0.tx, NULL, NULL, 2000) == 0 && quiet(&g0, 100), "hostile-short-dropped");
	/* Only a device-writable buffer. */
	b.len = 100;
	CHECK(vuf_vq_add(g0.tx, NULL, 0, &b, 1, false) >= 0 && vuf_vq_kick(g0.tx) == 0 &&
	      vuf_vq_wait_used(g0.tx, NULL, NULL, 2000) == 0 && quiet(&g0, 100), "hostile-writable-tx-dropped");
	/* Header split across odd descriptors is fine. */
	h = mkhdr(&g0, REQUEST, 44000, 1601, 0, 0, BIGBUF, 0);
	vuf_gpa_write(g0.f, at, &h, HDR);
	struct vuf_buf split[3] = { { at, 3 }, { at + 3, 30 }, { at + 33, 11 } };
	CHECK(vuf_vq_add(g0.tx, split, 3, NULL, 0, false) >= 0 && vuf_vq_kick(g0.tx) == 0 &&
	      vuf_vq_wait_used(g0.tx, NULL, NULL, 2000) == 0 && expect(&g0, &p, RST, 1601, 44000, 2000),
	      "hostile-split-header-parsed");
	/* Spoofed source CID: dropped without an answer. */
	h = mkhdr(&g0, REQUEST, 44001, 1600, 0, 0, BIGBUF, 0);
	h.src_cid = htole64(77);
	CHECK(send_pkt(&g0, &h, NULL, 0) && quiet(&g0, 100) && accept_within(lfd, 100) < 0, "hostile-wrong-src-cid-dropped");
	/* Another destination: refused. */
	h = mkhdr(&g0, REQUEST, 44002, 1600, 0, 0, BIGBUF, 0);
	h.dst_cid = htole64(7);
	CHECK(send_pkt(&g0, &h, NULL, 0) && recv_pkt(&g0, &p, 2000) && le16toh(p.h.op) == RST &&
	      le64toh(p.h.src_cid) == 7 && le64toh(p.h.dst_cid) == 3, "hostile-wrong-dst-cid-rst");
	/* SEQPACKET was not offered. */
	h = mkhdr(&g0, REQUEST, 44003, 1600, 0, 0, BIGBUF, 0);
	h.type = htole16(SEQPACKET);
	CHECK(send_pkt(&g0, &h, NULL, 0) && recv_pkt(&g0, &p, 2000) && le16toh(p.h.op) == RST &&
	      accept_within(lfd, 100) < 0, "hostile-seqpacket-rst");
	/* Packets for no connection. */
	CHECK(send_data(&g0, 44004, 1600, "x", 1, 0) && expect(&g0, &p, RST, 1600, 44004, 2000), "hostile-rw-no-conn-rst");
	CHECK(send_op(&g0, RESPONSE, 44004, 1600, 0, 0) && expect(&g0, &p, RST, 1600, 44004, 2000),
	      "hostile-response-no-conn-rst");
	CHECK(send_op(&g0, RST, 44004, 1600, 0, 0) && quiet(&g0, 100), "hostile-rst-no-conn-silent");
	CHECK(send_op(&g0, 0, 44004, 1600, 0, 0) && expect(&g0, &p, RST, 1600, 44004, 2000), "hostile-op-0-rst");
	/* Length beyond the payload: dropped (it would lose bytes). */
	h = mkhdr(&g0, RW, 44005, 1600, 0xffffffffu, 0, BIGBUF, 0);
	CHECK(send_pkt(&g0, &h, "abc", 3) && quiet(&g0, 100), "hostile-len-beyond-payload-dropped");

	/* On a connection: a bad op, SHUTDOWN with unknown flags, a second RESPONSE, a length lie. */
	static const struct {
		const char *name;
		uint16_t op;
		uint32_t flags, len;
	} bad[] = {
		{ "op-99", 99, 0, 0 },
		{ "shutdown-flags", SHUTDOWN, 0xff, 0 },
		{ "response-when-open", RESPONSE, 0, 0 },
		{ "len-lie", RW, 0, 1000 },
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint32_t gp = 44100 + i;
		if (!CHECK(g2h_connect(&g0, lfd, &c, gp, 1600), "hostile-%s-connect", bad[i].name))
			continue;
		h = mkhdr(&g0, bad[i].op, gp, 1600, bad[i].len, bad[i].flags, BIGBUF, 0);
		CHECK(send_pkt(&g0, &h, "ab", 2) && expect(&g0, &p, RST, 1600, gp, 2000) && eof_within(c.fd, 2000) == 1,
		      "hostile-%s-rst", bad[i].name);
		close(c.fd);
	}
	/* A REQUEST for ports in use: the old connection was stale; the new one works. */
	if (CHECK(g2h_connect(&g0, lfd, &c, 44200, 1600), "hostile-stale-connect")) {
		struct conn c2;
		CHECK(g2h_connect(&g0, lfd, &c2, 44200, 1600), "hostile-stale-reconnect");
		CHECK_EQ(eof_within(c.fd, 2000), 1, "hostile-stale-old-host-end-closed");
		char buf[2];
		CHECK(send_data(&g0, 44200, 1600, "ok", 2, 0) && read_exact(c2.fd, buf, 2, 2000), "hostile-stale-new-works");
		send_op(&g0, RST, 44200, 1600, 0, 0);
		close(c.fd);
		close(c2.fd);
	}
	CHECK(vuf_ping(g0.f) == 0 && vuf_backend_alive(be), "hostile-backend-still-serves");
	close(lfd);
	unlink(path);
}

/*
 * Packets of several connections in one kick, in runs and interleaved, with control
 * packets between: each host socket gets exactly its connection's bytes, in order.
 */
static void test_interleaved(void)
{
	enum { NC = 3, ROUNDS = 4 };
	char path[100];
	struct pkt p;
	struct conn c[NC];
	static uint8_t want[NC][1 << 20], got[1 << 20];
	size_t wlen[NC] = { 0 };
	uint32_t seed = 1;

	snprintf(path, sizeof(path), "%s_1700", uds[0]);
	int lfd = unix_listen(path, 16);
	bool ok = true;
	for (unsigned i = 0; i < NC; i++)
		ok &= g2h_connect(&g0, lfd, &c[i], 44500 + i, 1700);
	if (!CHECK(ok, "interleaved-connect"))
		goto out;
	for (unsigned r = 0; r < ROUNDS && ok; r++) {
		/* 0: one long run (more than a batch); 1: alternating; 2, 3: random, with a CREDIT_REQUEST. */
		unsigned n = 0;
		for (; n < TX_SLOTS - 2 && ok; n++) {
			seed = seed * 1103515245u + 12345u;
			unsigned k = r == 0 ? 1 : r == 1 ? n % NC : (seed >> 16) % NC;
			uint32_t len = 1 + (seed >> 8) % (r == 0 ? 3000 : 1500);
			if (r >= 2 && n == 10) {
				struct hdr h = mkhdr(&g0, CREDIT_REQUEST, c[k].gport, 1700, 0, 0, BIGBUF, 0);
				ok = queue_pkt(&g0, n, &h, NULL, 0);
				continue;
			}
			pattern(want[k] + wlen[k], len, seed);
			struct hdr h = mkhdr(&g0, RW, c[k].gport, 1700, len, 0, BIGBUF, 0);
			ok = queue_pkt(&g0, n, &h, want[k] + wlen[k], len);
			wlen[k] += len;
		}
		ok = ok && kick_and_wait(&g0, n);
		/* Keep the credit updates drained; none may be anything else. */
		while (ok && recv_pkt(&g0, &p, 50))
			ok = le16toh(p.h.op) == CREDIT_UPDATE;
	}
	CHECK(ok, "interleaved-sent");
	for (unsigned i = 0; i < NC; i++) {
		CHECK(read_exact(c[i].fd, got, wlen[i], 3000) && !memcmp(got, want[i], wlen[i]) && !readable(c[i].fd, 100),
		      "interleaved-connection-%u-bytes-in-order", i);
		send_op(&g0, RST, c[i].gport, 1700, 0, 0);
		close(c[i].fd);
	}
	while (recv_pkt(&g0, &p, 100))
		;
out:
	close(lfd);
	unlink(path);
}

/* A host write larger than a receive buffer fills many (one readv); each says its own length. */
static void test_rx_batch(void)
{
	struct pkt p;
	int fd;
	static uint8_t out[300000], in[300000];

	uint32_t hport = h2g_open(&g0, &fd, 5004, "");
	if (!CHECK(hport, "rx-batch-open"))
		return;
	pattern(out, sizeof(out), 11);
	size_t got = 0, packets = 0;
	bool ok = write(fd, out, sizeof(out)) == sizeof(out);
	while (ok && got < sizeof(out) && recv_pkt(&g0, &p, 2000)) {
		if (le16toh(p.h.op) != RW || p.len > RXBUF || le32toh(p.h.src_port) != hport)
			break;
		memcpy(in + got, p.data, p.len);
		got += p.len;
		packets++;
		if (packets % 16 == 0)
			send_op(&g0, CREDIT_UPDATE, 5004, hport, 0, (uint32_t)got);
	}
	check_note("%zu bytes in %zu packets", got, packets);
	CHECK(got == sizeof(out) && !memcmp(in, out, got), "rx-batch-bytes-in-order");
	close(fd);
	CHECK(expect(&g0, &p, SHUTDOWN, hport, 5004, 2000), "rx-batch-eof");
	send_op(&g0, RST, 5004, hport, 0, (uint32_t)got);
}

/* A thousand connections at once, each carrying its own bytes both ways. */
static void test_many(void)
{
	enum { N = 1000, BASE = 50000 };
	char path[100];
	struct pkt p;
	static int fds[N];
	int base_fds = vuf_backend_fd_count(be);

	snprintf(path, sizeof(path), "%s_2000", uds[0]);
	int lfd = unix_listen(path, N + 16);
	bool ok = lfd >= 0;
	for (unsigned i = 0; i < N && ok; i++)
		ok = send_op(&g0, REQUEST, BASE + i, 2000, 0, 0);
	CHECK(ok, "many-requests-sent");
	/* Many more answers than receive buffers: they wait their turn. */
	unsigned responses = 0;
	static bool seen[N];
	memset(seen, 0, sizeof(seen));
	while (ok && responses < N && recv_pkt(&g0, &p, 5000)) {
		uint32_t gp = le32toh(p.h.dst_port) - BASE;
		if (le16toh(p.h.op) != RESPONSE || gp >= N || seen[gp]) {
			check_note("op %u to %u", le16toh(p.h.op), gp + BASE);
			ok = false;
		} else {
			seen[gp] = true;
			responses++;
		}
	}
	CHECK_EQ(responses, N, "many-responses");
	unsigned accepted = 0;
	for (; accepted < N && (fds[accepted] = accept_within(lfd, 2000)) >= 0; accepted++)
		;
	CHECK_EQ(accepted, N, "many-accepted");
	check_note("back-end fds: %d before, %d with %u connections", base_fds, vuf_backend_fd_count(be), N);
	/* Every guest port says its number; the host answers on the socket it came on. */
	for (unsigned i = 0; i < N && ok; i++) {
		char msg[16];
		int n = snprintf(msg, sizeof(msg), "ping %u", i);
		ok = send_data(&g0, BASE + i, 2000, msg, n, 0);
	}
	unsigned echoed = 0;
	for (unsigned k = 0; k < accepted; k++) {
		char msg[16] = { 0 }, reply[16];
		unsigned i;
		/* "ping " and up to 3 digits: read what came (each message comes whole, in one write). */
		if (!readable(fds[k], 2000))
			break;
		ssize_t n = read(fds[k], msg, sizeof(msg) - 1);
		if (n <= 0 || sscanf(msg, "ping %u", &i) != 1)
			break;
		int m = snprintf(reply, sizeof(reply), "pong %u", i);
		if (write(fds[k], reply, m) == m)
			echoed++;
	}
	CHECK_EQ(echoed, N, "many-host-echoes");
	unsigned pongs = 0;
	memset(seen, 0, sizeof(seen));
	while (pongs < N && recv_pkt(&g0, &p, 5000)) {
		unsigned i;
		char msg[16] = { 0 };
		memcpy(msg, p.data, p.len < 15 ? p.len : 15);
		if (le16toh(p.h.op) == RW && sscanf(msg, "pong %u", &i) == 1 && i == le32toh(p.h.dst_port) - BASE &&
		    !seen[i]) {
			seen[i] = true;
			pongs++;
		}
	}
	CHECK_EQ(pongs, N, "many-each-gets-its-own-answer");
	/* All close. */
	for (unsigned i = 0; i < N; i++)
		send_op(&g0, SHUTDOWN, BASE + i, 2000, SHUT_RCV_F | SHUT_SEND_F, 7);
	unsigned rsts = 0;
	while (rsts < N && recv_pkt(&g0, &p, 5000))
		rsts += le16toh(p.h.op) == RST;
	CHECK_EQ(rsts, N, "many-all-closed");
	unsigned eofs = 0;
	for (unsigned k = 0; k < accepted; k++) {
		eofs += eof_within(fds[k], 2000) == 1;
		close(fds[k]);
	}
	CHECK_EQ(eofs, accepted, "many-host-ends-see-eof");
	CHECK(vuf_backend_wait_fd_count(be, base_fds, 5000) <= base_fds, "many-no-fd-left");
	close(lfd);
	unlink(path);
}

/* One connection whose host reader sleeps does not hold up another. */
static void test_stall_isolated(void)
{
	char path[100], buf[8];
	struct pkt p;
	struct conn a, b;
	static uint8_t data[4 << 20];

	snprintf(path, sizeof(path), "%s_2100", uds[0]);
	int lfd = unix_listen(path, 16);
	if (!CHECK(g2h_connect(&g0, lfd, &a, 45000, 2100) && g2h_connect(&g0, lfd, &b, 45001, 2100), "stall-connect"))
		goto out;
	/* a: fill everything (the host socket, then a's buffer) without the host reading. */
	send_within_credit(&g0, &a, data, sizeof(data));
	CHECK_EQ(a.tx - a.peer_fwd_cnt, DEV_BUF, "stall-a-stalled");
	/* b still works both ways, many times over. */
	bool ok = true;
	for (int i = 0; i < 50 && ok; i++) {
		ok = send_data(&g0, 45001, 2100, "ping", 4, 0) && read_exact(b.fd, buf, 4, 2000) &&
		     write(b.fd, "pong", 4) == 4 && expect(&g0, &p, RW, 2100, 45001, 2000);
	}
	CHECK(ok, "stall-other-connection-flows");
	close(a.fd);
	close(b.fd);
	CHECK(expect(&g0, &p, RST, 2100, 45000, 2000) || true, "stall-a-closed"); /* EPIPE for a's buffered bytes */
	send_op(&g0, RST, 45000, 2100, 0, 0);
	send_op(&g0, RST, 45001, 2100, 0, 0);
	while (recv_pkt(&g0, &p, 100))
		;
out:
	close(lfd);
	unlink(path);
}

/* A host listener with a full backlog: the device tries again until it accepts. */
static void test_backlog(void)
{
	char path[100];
	struct pkt p;
	int fds[6];

	snprintf(path, sizeof(path), "%s_2200", uds[0]);
	int lfd = unix_listen(path, 0);
	for (unsigned i = 0; i < 6; i++)
		send_op(&g0, REQUEST, 46000 + i, 2200, 0, 0);
	/* The listener takes one or two; the rest wait (no answer yet). */
	unsigned early = 0;
	while (recv_pkt(&g0, &p, 300))
		early += le16toh(p.h.op) == RESPONSE;
	CHECK(early < 6, "backlog-full-requests-wait");
	unsigned accepted = 0, responses = early;
	int64_t end = vuf_now_ms() + 3000;
	while ((accepted < 6 || responses < 6) && vuf_now_ms() < end) {
		int fd = accept_within(lfd, 50);
		if (fd >= 0)
			fds[accepted++] = fd;
		while (recv_pkt(&g0, &p, 10))
			responses += le16toh(p.h.op) == RESPONSE;
	}
	CHECK(accepted == 6 && responses == 6, "backlog-all-connected-after-retries");
	for (unsigned i = 0; i < accepted; i++)
		close(fds[i]);
	for (unsigned i = 0; i < 6; i++)
		send_op(&g0, RST, 46000 + i, 2200, 0, 0);
	while (recv_pkt(&g0, &p, 100))
		;
	close(lfd);
	unlink(path);
}

/* VM 1: its own CID and uds, the same ports as VM 0, and --max-connections=3. */
static void test_second_vm(void)
{
	char path[100], buf[4];
	struct pkt p;
	struct conn c[3];

	snprintf(path, sizeof(path), "%s_1234", uds[1]);
	int lfd = unix_listen(path, 16);
	bool ok = true;
	for (unsigned i = 0; i < 3; i++)
		ok &= g2h_connect(&g1, lfd, &c[i], 40000 + i, 1234);
	CHECK(ok, "vm1-connect");
	CHECK(send_data(&g1, 40000, 1234, "vm1", 3, 0) && read_exact(c[0].fd, buf, 3, 2000), "vm1-data");
	CHECK(send_op(&g1, REQUEST, 40003, 1234, 0, 0) && expect(&g1, &p, RST, 1234, 40003, 2000) &&
	      accept_within(lfd, 100) < 0, "vm1-limit-refuses");
	/* A host client waits in the backlog until a connection goes. */
	int h = unix_connect(uds[1]);
	CHECK(h >= 0 && write(h, "CONNECT 7000\n", 13) == 13 && quiet(&g1, 300), "vm1-limit-host-client-waits");
	send_op(&g1, RST, 40002, 1234, 0, 0);
	CHECK(recv_pkt(&g1, &p, 2000) && le16toh(p.h.op) == REQUEST && le32toh(p.h.dst_port) == 7000,
	      "vm1-limit-host-client-served-once-room");
	send_op(&g1, RST, 7000, le32toh(p.h.src_port), 0, 0);
	for (unsigned i = 0; i < 3; i++) {
		send_op(&g1, RST, 40000 + i, 1234, 0, 0);
		close(c[i].fd);
	}
	close(h);
	CHECK(quiet(&g0, 100), "vm1-nothing-on-vm0");
	close(lfd);
	unlink(path);
}

/* A packet from g's guest to CID dst (a sibling). */
static struct hdr sib_hdr(const struct guest *g, uint64_t dst, uint16_t op, uint32_t sport, uint32_t dport, uint32_t len)
{
	struct hdr h = mkhdr(g, op, sport, dport, len, 0, BIGBUF, 0);
	h.dst_cid = htole64(dst);
	return h;
}

/* The next packet on g, which must come from CID src with op and ports. */
static bool expect_from(struct guest *g, struct pkt *p, uint64_t src, uint16_t op, uint32_t sport, uint32_t dport)
{
	if (!recv_pkt(g, p, 2000))
		return false;
	bool ok = le64toh(p->h.src_cid) == src && le64toh(p->h.dst_cid) == g->cid && le16toh(p->h.op) == op &&
		  le32toh(p->h.src_port) == sport && le32toh(p->h.dst_port) == dport && le16toh(p->h.type) == STREAM;
	if (!ok)
		check_note("got op %u %llu:%u -> %llu:%u", le16toh(p->h.op), (unsigned long long)le64toh(p->h.src_cid),
			   le32toh(p->h.src_port), (unsigned long long)le64toh(p->h.dst_cid), le32toh(p->h.dst_port));
	return ok;
}

/* Receives len bytes of RW from src on g (each packet at most a receive buffer); false on anything else. */
static bool recv_from(struct guest *g, uint64_t src, uint8_t *buf, size_t len, unsigned *packets)
{
	struct pkt p;

	for (size_t got = 0; got < len; (*packets)++) {
		if (!recv_pkt(g, &p, 2000) || le16toh(p.h.op) != RW || le64toh(p.h.src_cid) != src || got + p.len > len)
			return false;
		memcpy(buf + got, p.data, p.len);
		got += p.len;
	}
	return true;
}

/* VMs 0 and 1 are in one group: their guests reach each other by CID, through the back-end. */
static void test_siblings(void)
{
	struct pkt p;
	static uint8_t out[64 * 65536], in[64 * 65536];

	struct hdr h = sib_hdr(&g0, 4, REQUEST, 60000, 9000, 0);
	h.buf_alloc = htole32(12345);
	h.fwd_cnt = htole32(7);
	CHECK(send_pkt(&g0, &h, NULL, 0) && expect_from(&g1, &p, 3, REQUEST, 60000, 9000) &&
	      le32toh(p.h.buf_alloc) == 12345 && le32toh(p.h.fwd_cnt) == 7, "sibling-request-relayed-as-it-is");
	h = sib_hdr(&g1, 3, RESPONSE, 9000, 60000, 0);
	CHECK(send_pkt(&g1, &h, NULL, 0) && expect_from(&g0, &p, 4, RESPONSE, 9000, 60000), "sibling-response");
	CHECK(quiet(&g0, 100) && quiet(&g1, 100), "sibling-nothing-else");

	/* Data larger than a receive buffer: split, each piece with its own header. */
	pattern(out, 10000, 21);
	h = sib_hdr(&g0, 4, RW, 60000, 9000, 10000);
	unsigned packets = 0;
	CHECK(send_pkt(&g0, &h, out, 10000) && recv_from(&g1, 3, in, 10000, &packets) && !memcmp(in, out, 10000) &&
	      packets == 3, "sibling-data-split-over-buffers");

	/* More packets than the sibling has buffers: the rest wait in its queue, in order. */
	bool ok = true;
	for (unsigned i = 0; i < 200 && ok; i++) {
		h = sib_hdr(&g0, 4, RW, 60000, 9000, 100);
		pattern(out + 100 * i, 100, 1000 + i);
		ok = send_pkt(&g0, &h, out + 100 * i, 100);
	}
	CHECK(ok, "sibling-200-taken-without-the-sibling-reading");
	packets = 0;
	CHECK(recv_from(&g1, 3, in, 20000, &packets) && !memcmp(in, out, 20000), "sibling-queued-in-order");

	/* More than buffers and queue together: the sender's ring waits, then goes on. */
	enum { N = 30 };
	pattern(out, sizeof(out), 22);
	for (unsigned i = 0; i < N && ok; i++) {
		h = sib_hdr(&g0, 4, RW, 60000, 9000, 65536);
		ok = queue_pkt(&g0, i, &h, out + (size_t)i * 65536, 65536);
	}
	ok = ok && vuf_vq_kick(g0.tx) == 0;
	unsigned taken = 0;
	while (ok && taken < N && vuf_vq_wait_used(g0.tx, NULL, NULL, 500) == 0)
		taken++;
	check_note("the sibling's buffers and queue took %u of %u 64 KiB packets", taken, N);
	CHECK(ok && taken < N, "sibling-full-queue-holds-the-sender");
	packets = 0;
	CHECK(recv_from(&g1, 3, in, (size_t)N * 65536, &packets) && !memcmp(in, out, (size_t)N * 65536),
	      "sibling-all-bytes-in-order-after-the-wait");
	while (taken < N && vuf_vq_wait_used(g0.tx, NULL, NULL, 2000) == 0)
		taken++;
	CHECK_EQ(taken, N, "sibling-sender-goes-on");

	/* Outside the group, and the host's own ports are no sibling's. */
	h = sib_hdr(&g0, 5, REQUEST, 60001, 9000, 0);
	CHECK(send_pkt(&g0, &h, NULL, 0) && expect_from(&g0, &p, 5, RST, 9000, 60001), "sibling-unknown-cid-rst");
	h = sib_hdr(&g0, 4, RST, 60000, 9000, 0);
	CHECK(send_pkt(&g0, &h, NULL, 0) && expect_from(&g1, &p, 3, RST, 60000, 9000), "sibling-rst-relayed");
}

/* Stop and resume (QEMU's stop/cont): the rings stop, the device is reset, the rings come back where they were. */
static void test_pause_resume(void)
{
	char path[100], buf[8];
	struct pkt p;
	struct conn c;
	unsigned base[3];

	snprintf(path, sizeof(path), "%s_2300", uds[0]);
	int lfd = unix_listen(path, 16);
	if (!CHECK(g2h_connect(&g0, lfd, &c, 47000, 2300), "pause-connect"))
		goto out;
	bool ok = true;
	for (unsigned i = 0; i < 3; i++)
		ok &= vuf_get_vring_base(g0.f, i, &base[i]) == 0;
	ok = ok && vuf_set_status(g0.f, 0) == 0;
	CHECK(ok, "pause-stopped");
	/* While stopped, the host sends: nothing reaches the guest. */
	CHECK(write(c.fd, "while", 5) == 5 && quiet(&g0, 200), "pause-nothing-while-stopped");
	/* Resume where the rings were (the used index too: the driver's rings are as they were). */
	ok = true;
	for (unsigned i = 0; i < 3 && ok; i++) {
		struct vuf_vq *vq = g0.f->vq[i];
		uint16_t avail = vq->avail_idx, used = vq->last_used;
		ok = vuf_vq_start(vq, base[i], 0) == 0;
		vuf_vq_set_avail_idx(vq, avail);
		vq->last_used = used;
		__atomic_store_n(&vq->used->idx, used, __ATOMIC_RELEASE);
	}
	ok = ok && vuf_set_status(g0.f, 15) == 0 && vuf_vq_kick(g0.rx) == 0 && vuf_vq_kick(g0.tx) == 0;
	CHECK(ok, "pause-resumed");
	CHECK(expect(&g0, &p, RW, 2300, 47000, 2000) && p.len == 5 && !memcmp(p.data, "while", 5),
	      "pause-connection-survives-to-guest");
	CHECK(send_data(&g0, 47000, 2300, "after", 5, 0) && read_exact(c.fd, buf, 5, 2000) && !memcmp(buf, "after", 5),
	      "pause-connection-survives-to-host");
	CHECK_EQ(count_events(&g0, 200), 1, "pause-no-transport-reset");
	send_op(&g0, RST, 47000, 2300, 0, 0);
	close(c.fd);
out:
	close(lfd);
	unlink(path);
}

/* A new driver (the guest rebooted): rings from 0. The old connections close; TRANSPORT_RESET. */
static void test_new_driver(void)
{
	char path[100];
	struct conn c;

	snprintf(path, sizeof(path), "%s_2400", uds[0]);
	int lfd = unix_listen(path, 16);
	if (!CHECK(g2h_connect(&g0, lfd, &c, 48000, 2400), "new-driver-connect"))
		goto out;
	unsigned base;
	bool ok = vuf_set_status(g0.f, 0) == 0;
	for (unsigned i = 0; i < 3; i++) {
		ok &= vuf_get_vring_base(g0.f, i, &base) == 0;
		struct vuf_vq *vq = g0.f->vq[i];
		vuf_vq_reset_driver(vq);
		memset(vq->avail, 0, 6 + 2 * vq->num);
		memset(vq->used, 0, 6 + 8 * vq->num);
	}
	g0.events = 0;
	ok = ok && vuf_set_status(g0.f, 15) == 0 && start_rings(&g0, NULL, true);
	CHECK(ok, "new-driver-started");
	CHECK_EQ(eof_within(c.fd, 2000), 1, "new-driver-old-connection-closed");
	CHECK_EQ(count_events(&g0, 2000), 1, "new-driver-transport-reset");
	struct conn d;
	CHECK(g2h_connect(&g0, lfd, &d, 48000, 2400), "new-driver-connects");
	send_op(&g0, RST, 48000, 2400, 0, 0);
	close(c.fd);
	close(d.fd);
out:
	close(lfd);
	unlink(path);
}

/* The front-end leaves: every connection closes; the next one starts afresh. */
static void test_frontend_leaves(void)
{
	char path[100];
	struct conn c;

	snprintf(path, sizeof(path), "%s_2500", uds[0]);
	int lfd = unix_listen(path, 16);
	if (!CHECK(g2h_connect(&g0, lfd, &c, 49000, 2500), "leave-connect"))
		goto out;
	guest_close(&g0);
	CHECK_EQ(eof_within(c.fd, 2000), 1, "leave-host-end-closed");
	close(c.fd);
	CHECK(guest_open(&g0, 0, 3), "leave-reconnect");
	CHECK_EQ(count_events(&g0, 2000), 1, "leave-transport-reset-for-the-next");
	CHECK(g2h_connect(&g0, lfd, &c, 49000, 2500), "leave-connects-again");
	send_op(&g0, RST, 49000, 2500, 0, 0);
	close(c.fd);
out:
	close(lfd);
	unlink(path);
}

/*
 * A live migration as a front-end that migrates vsock runs it (QEMU 10 refuses to
 * migrate vhost-user-vsock-pci: t-vsock.sh): a source back-end with a connection each
 * way; the dirty log on: what the device writes into receive buffers is marked; the
 * switch-over stops the source's rings, a second back-end (another process) takes
 * them where they were. It tells the driver TRANSPORT_RESET, answers the old
 * connections' packets with RST; the source keeps its connections until its
 * front-end leaves (the migration might fail and the source resume), then its host
 * ends read EOF. New connections work both ways on the destination.
 */
static void test_migration(void)
{
	char src_sock[100], dst_sock[100], src_uds[100], dst_uds[100], path[120], a0[120], a1[120], buf[16];
	const uint64_t f_log = 1ull << VHOST_F_LOG_ALL, pf_log = 1ull << VU_PF_LOG_SHMFD;
	struct vuf_backend *src = NULL, *dst = NULL;
	struct vuf_log log = { .fd = -1 };
	struct guest gs = { 0 }, gd = { 0 };
	struct conn a = { .fd = -1 }, c = { .fd = -1 };
	int lfd = -1, dlfd = -1, b = -1, d = -1;
	struct pkt p;

	snprintf(src_sock, sizeof(src_sock), "%s/src.sock", dir);
	snprintf(dst_sock, sizeof(dst_sock), "%s/dst.sock", dir);
	snprintf(src_uds, sizeof(src_uds), "%s/src.vsock", dir);
	snprintf(dst_uds, sizeof(dst_uds), "%s/dst.vsock", dir);
	snprintf(a0, sizeof(a0), "--uds-path=%s", src_uds);
	snprintf(a1, sizeof(a1), "--uds-path=%s", dst_uds);
	const char *src_args[] = { "--guest-cid=5", a0, NULL }, *dst_args[] = { "--guest-cid=5", a1, NULL };
	src = vuf_backend_start("vsock", src_args, src_sock);
	dst = vuf_backend_start("vsock", dst_args, dst_sock);
	if (!CHECK(src && dst, "migrate-backends-start") ||
	    !CHECK(guest_connect(&gs, src_sock, src_uds, 5, f_log, pf_log, NULL) && (gs.f->features & f_log) &&
			   count_events(&gs, 2000) == 1, "migrate-source-offers-the-log"))
		goto out;

	/* A connection each way, then the log. */
	snprintf(path, sizeof(path), "%s_2600", src_uds);
	lfd = unix_listen(path, 16);
	uint32_t hport = h2g_open(&gs, &b, 5100, "");
	if (!CHECK(g2h_connect(&gs, lfd, &a, 51000, 2600) && hport, "migrate-connections-each-way"))
		goto out;
	bool ok = vuf_log_init(&log, 4096) && vuf_log_send(gs.f, &log) == 0 && vuf_log_ring(gs.rx) == 0 &&
		  vuf_log_ring(gs.tx) == 0;
	if (!CHECK(ok, "migrate-log-on"))
		goto out;
	CHECK(write(b, "logged", 6) == 6 && expect(&gs, &p, RW, hport, 5100, 2000) && p.len == 6 &&
	      !memcmp(p.data, "logged", 6), "migrate-h2g-while-logging");
	CHECK(vuf_log_marked(&log, p.gpa) && vuf_log_marked(&log, p.gpa + HDR + p.len - 1),
	      "migrate-receive-buffer-marked");
	CHECK(vuf_log_count_range(&log, gs.rx->used_gpa, 6 + 8 * gs.rx->num) >= 1, "migrate-receive-used-ring-marked");
	CHECK(send_data(&gs, 51000, 2600, "under-log", 9, 0) && read_exact(a.fd, buf, 9, 2000) &&
	      !memcmp(buf, "under-log", 9), "migrate-g2h-while-logging");

	/* The switch-over: the source's rings stop where they are; the host's later bytes wait there. */
	unsigned base[3];
	uint16_t base16[3];
	ok = true;
	for (unsigned i = 0; i < 3; i++) {
		ok &= vuf_get_vring_base(gs.f, i, &base[i]) == 0;
		base16[i] = (uint16_t)base[i];
	}
	ok = ok && vuf_set_status(gs.f, 0) == 0;
	CHECK(ok && base[0] > 0 && base[1] > 0, "migrate-source-stopped");
	CHECK(write(b, "late", 4) == 4 && quiet(&gs, 200), "migrate-source-sends-nothing-stopped");
	CHECK(eof_within(a.fd, 100) == 0 && eof_within(b, 0) == 0, "migrate-source-keeps-connections-stopped");

	/* The destination: the rings where the source left them. */
	if (!CHECK(guest_connect(&gd, dst_sock, dst_uds, 5, f_log, pf_log, base16), "migrate-destination-started"))
		goto out;
	CHECK_EQ(count_events(&gd, 2000), 1, "migrate-destination-transport-reset");
	CHECK(send_data(&gd, 51000, 2600, "old", 3, 0) && expect(&gd, &p, RST, 2600, 51000, 2000),
	      "migrate-old-g2h-connection-rst");
	CHECK(send_data(&gd, 5100, hport, "old", 3, 6) && expect(&gd, &p, RST, hport, 5100, 2000),
	      "migrate-old-h2g-connection-rst");
	CHECK(eof_within(a.fd, 0) == 0 && eof_within(b, 0) == 0, "migrate-destination-leaves-source-alone");

	/* The source's front-end goes (QEMU quits after the migration): its host ends read EOF. */
	guest_close(&gs);
	CHECK(eof_within(a.fd, 2000) == 1 && eof_within(b, 2000) == 1, "migrate-source-host-ends-eof");

	/* New connections each way on the destination. */
	snprintf(path, sizeof(path), "%s_2600", dst_uds);
	dlfd = unix_listen(path, 16);
	CHECK(g2h_connect(&gd, dlfd, &c, 51001, 2600) && send_data(&gd, 51001, 2600, "new", 3, 0) &&
	      read_exact(c.fd, buf, 3, 2000) && !memcmp(buf, "new", 3), "migrate-destination-new-g2h");
	hport = h2g_open(&gd, &d, 5101, "fresh");
	CHECK(hport && expect(&gd, &p, RW, hport, 5101, 2000) && p.len == 5 && !memcmp(p.data, "fresh", 5),
	      "migrate-destination-new-h2g");
	guest_close(&gd);
	CHECK(eof_within(c.fd, 2000) == 1 && eof_within(d, 2000) == 1, "migrate-destination-closes-on-leave");
out:
	if (gs.f)
		guest_close(&gs);
	if (gd.f)
		guest_close(&gd);
	vuf_log_free(&log);
	int fds[] = { lfd, dlfd, a.fd, b, c.fd, d };
	for (unsigned i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	CHECK((!src || vuf_backend_stop(src, 5000) == 0) && (!dst || vuf_backend_stop(dst, 5000) == 0),
	      "migrate-backends-exit-cleanly");
	snprintf(path, sizeof(path), "%s_2600", src_uds);
	unlink(path);
	snprintf(path, sizeof(path), "%s_2600", dst_uds);
	unlink(path);
}

/* A receive buffer too small for a header breaks the receive ring, nothing else. */
static void test_bad_rx_buffer(void)
{
	struct guest g;

	if (!CHECK(guest_open(&g, 1, 4), "bad-rx-open"))
		return;
	/* Replace the buffers with 10-byte ones: the first packet to the guest needs one. */
	struct vuf_vq *rx = g.rx;
	for (unsigned i = 0; i < rx->num; i++) {
		rx->desc[i].len = 10;
		rx->desc[i].flags = VRING_DESC_F_WRITE;
	}
	CHECK(send_op(&g, REQUEST, 1, 1, 0, 0), "bad-rx-request");
	CHECK(vuf_vq_wait_err(rx, 2000) == 1, "bad-rx-ring-broken");
	CHECK(vuf_ping(g.f) == 0, "bad-rx-backend-answers");
	guest_close(&g);
}

int main(void)
{
	check_deadline(600);
	struct rlimit r;
	if (getrlimit(RLIMIT_NOFILE, &r) == 0) {
		r.rlim_cur = r.rlim_max;
		setrlimit(RLIMIT_NOFILE, &r);
	}
	if (!mkdtemp(dir))
		return 1;
	for (unsigned i = 0; i < 2; i++) {
		snprintf(sock[i], sizeof(sock[i]), "%s/vm%u.sock", dir, i);
		snprintf(uds[i], sizeof(uds[i]), "%s/vm%u.vsock", dir, i);
	}
	snprintf(logpath, sizeof(logpath), "%s/backend.log", dir);
	setenv("VUF_BACKEND_LOG", logpath, 1);
	char a0[100], a1[100], a2[100], a3[100];
	snprintf(a0, sizeof(a0), "--uds-path=%s", uds[0]);
	snprintf(a1, sizeof(a1), "--socket-path=%s", sock[1]);
	snprintf(a2, sizeof(a2), "--uds-path=%s", uds[1]);
	snprintf(a3, sizeof(a3), "--buffer-size=%u", DEV_BUF / 1024);
	const char *args[] = { "--guest-cid=3", a0, a3, "--vm-group=lab", a1, "--guest-cid=4", a2, "--max-connections=3",
			       "--vm-group=lab", NULL };
	be = vuf_backend_start("vsock", args, sock[0]);
	if (!CHECK(be != NULL, "backend-start"))
		return check_exit();
	if (!CHECK(guest_open(&g0, 0, 3), "guest-open") || !CHECK(guest_open(&g1, 1, 4), "guest-open-second-vm"))
		return check_exit();

	test_config();
	test_event();
	test_guest_to_host();
	test_refused();
	test_h2g();
	test_h2g_refused();
	test_lines();
	test_credit_to_guest();
	test_credit_from_guest();
	test_half_close();
	test_host_closes();
	test_hostile();
	test_interleaved();
	test_rx_batch();
	test_many();
	test_stall_isolated();
	test_backlog();
	test_second_vm();
	test_siblings();
	test_pause_resume();
	test_new_driver();
	test_frontend_leaves();
	test_migration();
	guest_close(&g1);
	struct pkt p;
	struct hdr h = sib_hdr(&g0, 4, REQUEST, 60002, 9000, 0);
	CHECK(send_pkt(&g0, &h, NULL, 0) && expect_from(&g0, &p, 4, RST, 9000, 60002), "sibling-gone-refused");
	test_bad_rx_buffer();

	guest_close(&g0);
	CHECK(vuf_backend_alive(be), "backend-survived");
	CHECK_EQ(vuf_backend_stop(be, 5000), 0, "backend-clean-exit");
	if (!check_failures())
		unlink(logpath);
	for (unsigned i = 0; i < 2; i++) {
		unlink(sock[i]);
		unlink(uds[i]);
	}
	rmdir(dir);
	return check_exit();
}
