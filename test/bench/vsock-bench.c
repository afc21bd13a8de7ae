/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vsock benchmark driver (test/bench/vsock.sh): the test front-end plays the guest's
 * driver, threads of this process play the host programs on the unix sockets. It
 * reports what moved and the back-end's CPU time (from /proc/PID/stat) over the run.
 *
 *   vsock-bench SOCKET UDS PID g2h SIZE SECONDS    guest -> host stream, SIZE-byte packets
 *   vsock-bench SOCKET UDS PID h2g SIZE SECONDS    host -> guest stream, SIZE-byte receive buffers
 *   vsock-bench SOCKET UDS PID conns 0 SECONDS     guest connections opened and closed
 *   vsock-bench - - - memcpy SIZE SECONDS          memcpy of SIZE-byte blocks, one core
 *   vsock-bench - - - readv SIZE SECONDS           host -> guest's floor: only the unix socket's
 *   vsock-bench - - - writev SIZE SECONDS          (guest -> host's) part, SIZE-byte buffers
 *
 * Output: "bytes=N conns=N seconds=S cpu=S" (cpu: the back-end's user + system seconds).
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "test/frontend.h"

struct hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));
#define HDR 44u
enum { REQUEST = 1, RESPONSE = 2, RST = 3, SHUTDOWN = 4, RW = 5, CREDIT_UPDATE = 6, CREDIT_REQUEST = 7 };
#define CID 3
#define RING 256
#define SLOTS 64                /* transmit packets in flight */
#define GUEST_BUF (4u << 20)    /* the credit the driver gives */

static struct vuf *f;
static struct vuf_vq *rx, *tx;
static uint64_t rx_area, tx_area;
static uint64_t rx_gpa[RING];
static uint32_t rx_size, pkt_size;
static pid_t backend;
static atomic_bool stop;
static atomic_uint_fast64_t host_bytes;
static char uds[100];
static unsigned tx_free_slots = SLOTS;
static uint64_t tx_slot_of[RING];

static double cpu_seconds(void)
{
	char path[64], buf[1024];
	unsigned long ut, st;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)backend);
	FILE *fp = fopen(path, "r");
	if (!fp || !fgets(buf, sizeof(buf), fp)) {
		if (fp)
			fclose(fp);
		return 0;
	}
	fclose(fp);
	char *p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return 0;
	return (double)(ut + st) / sysconf(_SC_CLK_TCK);
}

static double now_s(void)
{
	return vuf_now_ms() / 1000.0;
}

static void die(const char *what)
{
	fprintf(stderr, "vsock-bench: %s: %s\n", what, f ? vuf_error(f) : strerror(errno));
	exit(1);
}

static void post_rx(uint64_t gpa)
{
	struct vuf_buf in[2] = { { gpa, HDR }, { gpa + HDR, rx_size } };
	int head = vuf_vq_add(rx, NULL, 0, in, 2, false);
	if (head < 0)
		die("posting a receive buffer");
	rx_gpa[head] = gpa;
}

static void setup(const char *sock)
{
	f = vuf_connect(sock, 5000);
	if (!f || vuf_mem_init(f, 1, 256 << 20, 0) < 0 ||
	    vuf_negotiate(f, 1ull << VIRTIO_F_VERSION_1 | 1ull << VHOST_USER_F_PROTOCOL_FEATURES |
				     1ull << VIRTIO_RING_F_EVENT_IDX,
			  1ull << VU_PF_REPLY_ACK | 1ull << VU_PF_CONFIG) < 0)
		die("connecting");
	rx = vuf_vq_setup(f, 0, RING, 0);
	tx = vuf_vq_setup(f, 1, RING, 0);
	if (rx && tx)
		rx->manual_used_event = tx->manual_used_event = true; /* arm() */
	rx_area = vuf_alloc(f, (uint64_t)(RING / 2) * (HDR + rx_size), 64);
	tx_area = vuf_alloc(f, (uint64_t)SLOTS * (HDR + pkt_size), 64);
	if (!rx || !tx || !rx_area || !tx_area)
		die("setting up the rings");
	for (unsigned i = 0; i < RING / 2; i++)
		post_rx(rx_area + (uint64_t)i * (HDR + rx_size));
	vuf_vq_kick(rx);
	uint8_t *d = vuf_gpa(f, tx_area, (uint64_t)SLOTS * (HDR + pkt_size));
	for (size_t i = 0; i < (size_t)SLOTS * (HDR + pkt_size); i++)
		d[i] = (uint8_t)(i * 131);
}

static struct hdr mkhdr(uint16_t op, uint32_t sport, uint32_t dport, uint32_t len, uint32_t fwd)
{
	return (struct hdr){ .src_cid = htole64(CID), .dst_cid = htole64(2), .src_port = htole32(sport),
			     .dst_port = htole32(dport), .len = htole32(len), .type = htole16(1),
			     .op = htole16(op), .buf_alloc = htole32(GUEST_BUF), .fwd_cnt = htole32(fwd) };
}

/*
 * Asks for a call once the device uses anything beyond what we took; true if it already
 * has. As Linux's driver does (virtqueue_enable_cb, after a virtqueue_disable_cb and
 * taking every used buffer): not after each buffer taken, while we are still taking them.
 */
static bool arm(struct vuf_vq *vq)
{
	vuf_vq_set_used_event(vq, vq->last_used);
	return vuf_vq_used_pending(vq) != 0;
}

/* Frees transmit slots the device is done with. */
static void reap_tx(void)
{
	uint32_t id;

	while (vuf_vq_used_pending(tx) && vuf_vq_wait_used(tx, &id, NULL, 0) == 0)
		if (id < RING && tx_slot_of[id] != UINT64_MAX) {
			tx_slot_of[id] = UINT64_MAX;
			tx_free_slots++;
		}
}

static unsigned next_slot;

/* Queues a packet (not kicked); false when no slot is free. */
static bool queue_pkt(const struct hdr *h, uint32_t len)
{
	if (!tx_free_slots)
		return false;
	uint64_t at = tx_area + (uint64_t)(next_slot++ % SLOTS) * (HDR + pkt_size);
	vuf_gpa_write(f, at, h, HDR);
	struct vuf_buf out[2] = { { at, HDR }, { at + HDR, len } };
	int head = vuf_vq_add(tx, out, len ? 2 : 1, NULL, 0, false);
	if (head < 0)
		die("adding a packet");
	tx_slot_of[head] = at;
	tx_free_slots--;
	return true;
}

static void send_now(const struct hdr *h)
{
	while (!queue_pkt(h, 0)) {
		reap_tx();
		if (!arm(tx))
			vuf_vq_wait_call(tx, 1);
	}
	vuf_vq_kick(tx);
}

/* The next packet from the device (its buffer goes back), or false within timeout_ms. */
static bool next_rx(struct hdr *h, uint32_t *len, int timeout_ms)
{
	uint32_t id, used;
	int64_t end = vuf_now_ms() + timeout_ms;

	while (!vuf_vq_used_pending(rx) && !arm(rx)) {
		int64_t left = end - vuf_now_ms();
		if (left <= 0)
			return false;
		vuf_vq_wait_call(rx, (int)left);
	}
	if (vuf_vq_wait_used(rx, &id, &used, 0) < 0 || id >= RING)
		return false;
	vuf_gpa_read(f, rx_gpa[id], h, HDR);
	*len = used - HDR;
	/* The buffer goes back; a kick only if the device asked for one, as Linux's driver does. */
	uint16_t old = rx->avail_idx;
	post_rx(rx_gpa[id]);
	if (vuf_vq_kick_needed(rx, old))
		vuf_vq_kick(rx);
	return true;
}

/* Waits on both rings' call eventfds for up to ms (not if either has used buffers already). */
static void idle(int ms)
{
	struct pollfd p[2] = { { rx->call_fd, POLLIN, 0 }, { tx->call_fd, POLLIN, 0 } };
	uint64_t n;

	if (arm(rx) | arm(tx))
		return;
	if (poll(p, 2, ms) > 0)
		for (int i = 0; i < 2; i++)
			if (p[i].revents && read(p[i].fd, &n, sizeof(n)) < 0)
				break;
}

static int unix_listen(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1024) < 0)
		die("listen");
	return fd;
}

/* ---- guest -> host ---- */

static void *host_reader(void *arg)
{
	int lfd = *(int *)arg, fd = accept(lfd, NULL, NULL);
	static uint8_t buf[1 << 18];

	for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;)
		host_bytes += n;
	close(fd);
	return NULL;
}

static void g2h(double secs)
{
	char path[120];
	struct hdr h;
	uint32_t len;
	pthread_t t;

	snprintf(path, sizeof(path), "%s_7000", uds);
	int lfd = unix_listen(path);
	pthread_create(&t, NULL, host_reader, &lfd);
	h = mkhdr(REQUEST, 1, 7000, 0, 0);
	send_now(&h);
	uint32_t peer_alloc = 0, peer_fwd = 0, sent = 0;
	while (next_rx(&h, &len, 2000)) {
		if (le16toh(h.op) == RESPONSE) {
			peer_alloc = le32toh(h.buf_alloc);
			break;
		}
	}
	if (!peer_alloc)
		die("no RESPONSE");
	double c0 = cpu_seconds(), t0 = now_s(), end = t0 + secs;
	uint64_t b0 = host_bytes;
	while (now_s() < end) {
		reap_tx();
		while (next_rx(&h, &len, 0))
			if (le16toh(h.op) == CREDIT_UPDATE || le16toh(h.op) == RW) {
				peer_fwd = le32toh(h.fwd_cnt);
				peer_alloc = le32toh(h.buf_alloc);
			}
		uint16_t old = tx->avail_idx;
		unsigned queued = 0;
		for (;;) {
			uint32_t credit = peer_alloc - (sent - peer_fwd);
			if (credit < pkt_size)
				break;
			h = mkhdr(RW, 1, 7000, pkt_size, 0);
			if (!queue_pkt(&h, pkt_size))
				break;
			sent += pkt_size;
			queued++;
		}
		if (queued && vuf_vq_kick_needed(tx, old))
			vuf_vq_kick(tx);
		if (!queued)
			idle(1);
	}
	double t1 = now_s(), c1 = cpu_seconds();
	printf("bytes=%llu conns=0 seconds=%.3f cpu=%.3f\n", (unsigned long long)(host_bytes - b0), t1 - t0, c1 - c0);
	h = mkhdr(RST, 1, 7000, 0, 0);
	send_now(&h);
	pthread_join(t, NULL);
	close(lfd);
	unlink(path);
}

/* ---- host -> guest ---- */

static void *host_writer(void *arg)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	static uint8_t buf[65536];
	char line[64];
	int got = 0;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", uds);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || write(fd, "CONNECT 7001\n", 13) != 13)
		die("host client");
	while (got < 63 && read(fd, line + got, 1) == 1 && line[got++] != '\n')
		;
	memset(buf, 0x5a, sizeof(buf));
	while (!stop && write(fd, buf, sizeof(buf)) > 0)
		;
	close(fd);
	return NULL;
}

static void h2g(double secs)
{
	struct hdr h;
	uint32_t len, hport = 0, fwd = 0, told = 0;
	bool asked = false;
	pthread_t t;

	pthread_create(&t, NULL, host_writer, NULL);
	while (next_rx(&h, &len, 2000))
		if (le16toh(h.op) == REQUEST) {
			hport = le32toh(h.src_port);
			break;
		}
	if (!hport)
		die("no REQUEST");
	h = mkhdr(RESPONSE, 7001, hport, 0, 0);
	send_now(&h);
	double c0 = cpu_seconds(), t0 = now_s(), end = t0 + secs;
	uint64_t bytes = 0;
	while (now_s() < end) {
		bool any = false;
		while (next_rx(&h, &len, 0)) {
			any = true;
			if (le16toh(h.op) == RW) {
				bytes += len;
				fwd += len; /* "read" at once */
			} else if (le16toh(h.op) == CREDIT_REQUEST) {
				asked = true;
			}
		}
		reap_tx();
		if (fwd - told >= GUEST_BUF / 4 || asked) {
			h = mkhdr(CREDIT_UPDATE, 7001, hport, 0, fwd);
			if (queue_pkt(&h, 0)) {
				vuf_vq_kick(tx);
				told = fwd;
				asked = false;
			}
		}
		if (!any)
			idle(1);
	}
	double t1 = now_s(), c1 = cpu_seconds();
	printf("bytes=%llu conns=0 seconds=%.3f cpu=%.3f\n", (unsigned long long)bytes, t1 - t0, c1 - c0);
	stop = true;
	h = mkhdr(RST, 7001, hport, 0, fwd);
	send_now(&h);
	pthread_join(t, NULL);
}

/* ---- connections ---- */

static void *host_acceptor(void *arg)
{
	int lfd = *(int *)arg;

	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			break;
		close(fd);
	}
	return NULL;
}

static void conns(double secs)
{
	enum { BATCH = 32 };
	char path[120];
	struct hdr h;
	uint32_t len;
	pthread_t t;
	uint64_t done = 0;
	uint32_t port = 10000;

	snprintf(path, sizeof(path), "%s_7002", uds);
	int lfd = unix_listen(path);
	pthread_create(&t, NULL, host_acceptor, &lfd);
	double c0 = cpu_seconds(), t0 = now_s(), end = t0 + secs;
	while (now_s() < end) {
		/* A batch of connections: REQUEST, RESPONSE, then the guest closes each (RST). */
		for (unsigned i = 0; i < BATCH; i++) {
			h = mkhdr(REQUEST, port + i, 7002, 0, 0);
			while (!queue_pkt(&h, 0)) {
				vuf_vq_kick(tx);
				reap_tx();
				idle(1);
			}
		}
		vuf_vq_kick(tx);
		unsigned answered = 0;
		while (answered < BATCH && next_rx(&h, &len, 2000))
			answered += le16toh(h.op) == RESPONSE || le16toh(h.op) == RST;
		if (answered < BATCH)
			die("connections not answered");
		for (unsigned i = 0; i < BATCH; i++) {
			h = mkhdr(RST, port + i, 7002, 0, 0);
			while (!queue_pkt(&h, 0)) {
				vuf_vq_kick(tx);
				reap_tx();
				idle(1);
			}
		}
		vuf_vq_kick(tx);
		reap_tx();
		while (next_rx(&h, &len, 0))
			;
		done += BATCH;
		port += BATCH;
		if (port > 60000)
			port = 10000;
	}
	double t1 = now_s(), c1 = cpu_seconds();
	printf("bytes=0 conns=%llu seconds=%.3f cpu=%.3f\n", (unsigned long long)done, t1 - t0, c1 - c0);
	shutdown(lfd, SHUT_RDWR);
	close(lfd);
	pthread_join(t, NULL);
	unlink(path);
}

/* ---- the bound: memcpy of the same blocks, from a region larger than the caches ---- */

static void bench_memcpy(uint32_t size, double secs)
{
	size_t src_len = 64u << 20, dst_len = 1u << 18;
	uint8_t *src = malloc(src_len), *dst = malloc(dst_len);
	uint64_t bytes = 0;

	memset(src, 1, src_len);
	memset(dst, 2, dst_len);
	/* Per second of this thread's CPU time, as the back-end's is counted: not the machine's load. */
	struct timespec a, b;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
	double t0 = now_s(), end = t0 + secs;
	size_t s = 0, d = 0;
	while (now_s() < end)
		for (int i = 0; i < 64; i++) {
			memcpy(dst + d, src + s, size);
			s = (s + size) % (src_len - size + 1);
			d = (d + size) % (dst_len - size + 1);
			bytes += size;
		}
	double t1 = now_s();
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
	__asm__ volatile("" : : "r"(dst) : "memory");
	double cpu = (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
	printf("bytes=%llu conns=0 seconds=%.3f cpu=%.3f\n", (unsigned long long)bytes, t1 - t0, cpu);
	free(src);
	free(dst);
}

/*
 * ---- the floor of each direction: only the unix socket's part ----
 * What the back-end cannot avoid for each byte, whatever else it does: host -> guest
 * (readv), a non-blocking readv of up to 256 KiB into buffers like the driver's
 * receive buffers (SIZE bytes, a packet header left free at the start of each, a
 * ring of 256), the host program writing 64 KiB blocks as host_writer does; guest ->
 * host (writev), a non-blocking writev of up to 64 packets' payloads (SIZE bytes less
 * the header each, from such a ring) that the host program reads as host_reader does.
 * A wait in poll when the socket is empty (full). Counted as the back-end is: this
 * thread's CPU time.
 */
static void *pair_peer(void *arg)
{
	int *fd = arg;
	static uint8_t buf[1 << 18];

	memset(buf, 0x5a, sizeof(buf));
	if (fd[1])
		while (!stop && write(fd[0], buf, 65536) > 0)
			;
	else
		while (read(fd[0], buf, sizeof(buf)) > 0)
			;
	return NULL;
}

static void bench_socket(uint32_t size, double secs, bool to_socket)
{
	enum { BATCH = 64, RING_BUFS = RING, BATCH_BYTES = 256u * 1024 };
	uint32_t payload = size - HDR;
	uint8_t *bufs = malloc((size_t)RING_BUFS * size);
	unsigned next = 0;
	uint64_t bytes = 0;
	int sv[2], peer[2];
	pthread_t t;

	if (!bufs || size <= HDR || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0 ||
	    fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0) /* the back-end's end; the host program blocks */
		die("socket floor setup");
	memset(bufs, 0x33, (size_t)RING_BUFS * size);
	peer[0] = sv[1];
	peer[1] = !to_socket; /* the host program writes when we read */
	pthread_create(&t, NULL, pair_peer, peer);
	struct timespec a, b;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
	double t0 = now_s(), end = t0 + secs;
	while (now_s() < end) {
		struct iovec iov[BATCH];
		unsigned n = 0;
		for (size_t want = 0; n < BATCH && want < BATCH_BYTES; n++, want += payload)
			iov[n] = (struct iovec){ bufs + (size_t)((next + n) % RING_BUFS) * size + HDR, payload };
		ssize_t got = to_socket ? writev(sv[0], iov, (int)n) : readv(sv[0], iov, (int)n);
		if (got > 0) {
			bytes += (uint64_t)got;
			next = (next + (unsigned)(((size_t)got + payload - 1) / payload)) % RING_BUFS;
		} else if (got < 0 && errno == EAGAIN) {
			struct pollfd p = { .fd = sv[0], .events = to_socket ? POLLOUT : POLLIN };
			poll(&p, 1, 100);
		} else {
			die("socket floor");
		}
	}
	double t1 = now_s();
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
	stop = true;
	shutdown(sv[0], SHUT_RDWR);
	pthread_join(t, NULL);
	close(sv[0]);
	close(sv[1]);
	double cpu = (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
	printf("bytes=%llu conns=0 seconds=%.3f cpu=%.3f\n", (unsigned long long)bytes, t1 - t0, cpu);
	free(bufs);
}

int main(int argc, char **argv)
{
	if (argc != 7) {
		fprintf(stderr, "usage: vsock-bench SOCKET UDS PID g2h|h2g|conns|memcpy|readv|writev SIZE SECONDS\n");
		return 2;
	}
	const char *mode = argv[4];
	uint32_t size = (uint32_t)strtoul(argv[5], NULL, 0);
	double secs = atof(argv[6]);

	if (!strcmp(mode, "memcpy")) {
		bench_memcpy(size, secs);
		return 0;
	}
	if (!strcmp(mode, "readv") || !strcmp(mode, "writev")) {
		bench_socket(size, secs, !strcmp(mode, "writev"));
		return 0;
	}
	snprintf(uds, sizeof(uds), "%s", argv[2]);
	backend = (pid_t)atoi(argv[3]);
	memset(tx_slot_of, 0xff, sizeof(tx_slot_of));
	pkt_size = !strcmp(mode, "g2h") ? size : 64;
	rx_size = !strcmp(mode, "h2g") ? size : 4096;
	setup(argv[1]);
	if (!strcmp(mode, "g2h"))
		g2h(secs);
	else if (!strcmp(mode, "h2g"))
		h2g(secs);
	else if (!strcmp(mode, "conns"))
		conns(secs);
	else
		return 2;
	vuf_close(f);
	return 0;
}
