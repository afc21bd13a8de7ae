/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Black-box protocol tests: starts `$VHOSTBOX rng` (virtio-rng: one queue,
 * device-writable buffers filled with random bytes) and drives it through the
 * test front-end (test/frontend.c) as QEMU would, then as a hostile front-end
 * and a hostile guest would. Expectations come from docs/interop/vhost-user.rst
 * and the virtio 1.x split ring; the error contract is the project's:
 *   - a message breaking framing/size/fd rules closes the connection;
 *   - a well-formed but invalid (or unknown) request gets a failure ack when it
 *     asked for one (NEED_REPLY with REPLY_ACK), else closes the connection;
 *   - a hostile ring marks the queue broken (err eventfd, NEEDS_RESET) and
 *     nothing else: the process, and other connections, go on.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "proto/vring.h"
#include "test/check.h"
#include "test/dirty-log.h"
#include "test/frontend.h"

#define F(bit) (1ull << (bit))
#define PF(name) (1ull << VU_PF_##name)
#define ALL_F (F(VIRTIO_F_VERSION_1) | F(VIRTIO_RING_F_INDIRECT_DESC) | F(VIRTIO_RING_F_EVENT_IDX) | \
	       F(VHOST_USER_F_PROTOCOL_FEATURES))
#define RNG_PF (PF(MQ) | PF(REPLY_ACK) | PF(BACKEND_REQ) | PF(CONFIGURE_MEM_SLOTS) | PF(RESET_DEVICE) | \
		PF(STATUS) | PF(INBAND_NOTIFICATIONS))
#define STD_PF (RNG_PF & ~PF(INBAND_NOTIFICATIONS))

#define REGION_SIZE (4ull << 20)
#define QUIET_MS 150     /* how long "nothing happens" is watched */
#define WAIT_MS 2000     /* how long something that must happen is waited for */
#define PATTERN 0xa5

static struct vuf_backend *be;
static char dir[64], sock_a[108], sock_b[108];
static int idle_fds = -1;          /* the back-end's fd count with no front-end connected */
static volatile pid_t be_pid;

/* ---- helpers ------------------------------------------------------------ */

static void on_alarm(int sig)
{
	static const char msg[] = "FAIL: t-protocol: the whole run took too long (alarm)\n";
	if (write(1, msg, sizeof(msg) - 1) < 0)
		_exit(1);
	if (be_pid > 0)
		kill(be_pid, SIGKILL);
	_exit(1);
}

/*
 * The back-end's fd count with no front-end: a probe on path is answered (the
 * back-end serves), then closed; the count drops by the session's socket.
 */
static int idle_count(struct vuf_backend *b, const char *path)
{
	struct vuf *f = vuf_connect(path, 3000);

	if (!f || vuf_ping(f) < 0) {
		vuf_close(f);
		return -1;
	}
	int busy = vuf_backend_fd_count(b);
	vuf_close(f);
	return vuf_backend_wait_fd_count(b, busy - 1, 1000);
}

static bool start_backend(void)
{
	char opt_b[140];
	const char *extra[] = { opt_b, NULL };

	snprintf(opt_b, sizeof(opt_b), "--socket-path=%s", sock_b);
	be = vuf_backend_start("rng", extra, sock_a);
	if (!be)
		return false;
	be_pid = be->pid;
	/* Probing the second socket also shows both are served. */
	idle_fds = idle_count(be, sock_b);
	return idle_fds > 0;
}

/* Restarts the back-end if an earlier case killed it (that case has already failed). */
static void ensure_backend(const char *group)
{
	if (be && vuf_backend_alive(be))
		return;
	check_note("%s: (re)starting the back-end", group);
	if (be)
		vuf_backend_stop(be, 500);
	be = NULL;
	if (!start_backend())
		check_note("%s: cannot start the back-end", group);
}

/* Waits until the back-end has dropped its last connection; returns its fd count. */
static int settle(void)
{
	return vuf_backend_wait_fd_count(be, idle_fds, 1500);
}

static struct vuf *open_conn(const char *path, unsigned nregions, uint64_t hole)
{
	struct vuf *f = vuf_connect(path, 2000);

	if (!f) {
		check_note("cannot connect to %s", path);
		return NULL;
	}
	if (nregions && vuf_mem_init(f, nregions, REGION_SIZE, hole) < 0) {
		check_note("guest RAM: %s", vuf_error(f));
		vuf_close(f);
		return NULL;
	}
	return f;
}

/* Connected, negotiated, memory table sent. */
static struct vuf *ready_on(const char *path, uint64_t features, uint64_t pf)
{
	struct vuf *f = open_conn(path, 2, 0);

	if (f && vuf_negotiate(f, features, pf) < 0) {
		check_note("negotiation: %s", vuf_error(f));
		vuf_close(f);
		return NULL;
	}
	return f;
}

static struct vuf *ready(uint64_t features, uint64_t pf)
{
	return ready_on(sock_a, features, pf);
}

static bool all_bytes(const uint8_t *p, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

static bool varied(const uint8_t *p, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (p[i] != p[0])
			return true;
	return false;
}

/* A guest buffer of len bytes filled with PATTERN. */
static uint64_t pattern_buf(struct vuf *f, uint32_t len)
{
	uint64_t gpa = vuf_alloc(f, len, 16);
	uint8_t *p = gpa ? vuf_gpa(f, gpa, len) : NULL;

	if (p)
		memset(p, PATTERN, len);
	return p ? gpa : 0;
}

/* One rng request of one writable buffer: kick, wait. Returns used.len, or -1. */
static long rng_once(struct vuf *f, struct vuf_vq *vq, uint32_t len)
{
	uint64_t gpa = pattern_buf(f, len);
	struct vuf_buf b = { gpa, len };
	uint32_t id, used_len;

	if (!gpa)
		return -1;
	int head = vuf_vq_add(vq, NULL, 0, &b, 1, false);
	if (head < 0 || vuf_vq_kick(vq) < 0 || vuf_vq_wait_used(vq, &id, &used_len, WAIT_MS) < 0) {
		check_note("rng request: %s", vuf_error(f));
		return -1;
	}
	if (id != (uint32_t)head) {
		check_note("used id %u, expected head %d", id, head);
		return -1;
	}
	return used_len;
}

/* A whole session on path: negotiate, set up the ring, get 256 random bytes. */
static bool fresh_works(const char *path)
{
	struct vuf *f = ready_on(path, ALL_F, STD_PF);
	struct vuf_vq *vq = f ? vuf_vq_setup(f, 0, 64, 0) : NULL;
	bool ok = vq && rng_once(f, vq, 256) == 256;

	if (f && !vq)
		check_note("ring setup: %s", vuf_error(f));
	vuf_close(f);
	return ok;
}

/* ---- message coverage ---------------------------------------------------- */

static void test_features(void)
{
	struct vuf *f = open_conn(sock_a, 2, 0);
	uint64_t v = 0, pf = 0, ack = 1;

	if (!f) {
		CHECK(0, "features: connect");
		return;
	}
	CHECK(vuf_get_features(f, &v) == 0, "GET_FEATURES answers");
	CHECK((v & ALL_F) == ALL_F, "GET_FEATURES offers VERSION_1, INDIRECT_DESC, EVENT_IDX, PROTOCOL_FEATURES");
	CHECK(vuf_get_protocol_features(f, &pf) == 0, "GET_PROTOCOL_FEATURES answers before SET_FEATURES");
	CHECK((pf & RNG_PF) == RNG_PF, "GET_PROTOCOL_FEATURES offers MQ, REPLY_ACK, BACKEND_REQ, "
	      "CONFIGURE_MEM_SLOTS, RESET_DEVICE, STATUS, INBAND_NOTIFICATIONS");
	CHECK(!(pf & PF(CONFIG)), "GET_PROTOCOL_FEATURES does not offer CONFIG for rng");
	CHECK(vuf_set_protocol_features(f, pf & STD_PF) == 0, "SET_PROTOCOL_FEATURES accepted");
	CHECK(f->need_reply, "REPLY_ACK negotiated");
	CHECK(vuf_send_ack(f, VU_REQ_SET_OWNER, NULL, 0, NULL, 0, &ack) == 0 && ack == 0,
	      "SET_OWNER with NEED_REPLY acked 0");
	v = F(VIRTIO_F_ACCESS_PLATFORM) | F(VIRTIO_F_VERSION_1);
	ack = 0;
	CHECK(vuf_send_ack(f, VU_REQ_SET_FEATURES, &v, 8, NULL, 0, &ack) == 0 && ack != 0,
	      "SET_FEATURES with a feature not offered gets a failure ack");
	CHECK(vuf_set_features(f, ALL_F) == 0, "SET_FEATURES with offered features acked 0");
	uint64_t n = 0;
	CHECK(vuf_get_queue_num(f, &n) == 0, "GET_QUEUE_NUM answers");
	CHECK_EQ(n, 1, "GET_QUEUE_NUM is 1 for rng");
	n = 0;
	CHECK(vuf_get_max_mem_slots(f, &n) == 0, "GET_MAX_MEM_SLOTS answers");
	CHECK_EQ(n, 509, "GET_MAX_MEM_SLOTS is 509");
	CHECK(vuf_set_mem_table(f) == 0, "SET_MEM_TABLE of 2 regions acked 0");
	CHECK(vuf_set_backend_req_fd(f) == 0, "SET_BACKEND_REQ_FD acked 0");

	/* A ring, message by message. */
	struct vuf_vq *vq = vuf_vq_alloc(f, 0, 128);
	CHECK(vq != NULL, "ring allocated in guest RAM");
	if (vq) {
		int kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		int call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		int err = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		vq->kick_fd = kick;
		vq->call_fd = call;
		vq->err_fd = err;
		vq->event_idx = true;
		CHECK(vuf_set_vring_num(f, 0, 128) == 0, "SET_VRING_NUM acked 0");
		CHECK(vuf_set_vring_base(f, 0, 0) == 0, "SET_VRING_BASE acked 0");
		CHECK(vuf_set_vring_addr(f, 0, (uintptr_t)vq->desc, (uintptr_t)vq->avail,
					 (uintptr_t)vq->used) == 0, "SET_VRING_ADDR acked 0");
		CHECK(vuf_set_vring_err(f, 0, -1) == 0, "SET_VRING_ERR with NOFD acked 0");
		CHECK(vuf_set_vring_err(f, 0, err) == 0, "SET_VRING_ERR with an eventfd acked 0");
		CHECK(vuf_set_vring_call(f, 0, -1) == 0, "SET_VRING_CALL with NOFD acked 0");
		CHECK(vuf_set_vring_call(f, 0, call) == 0, "SET_VRING_CALL with an eventfd acked 0");
		CHECK(vuf_set_vring_kick(f, 0, kick) == 0, "SET_VRING_KICK with an eventfd acked 0");
		CHECK(vuf_set_vring_enable(f, 0, true) == 0, "SET_VRING_ENABLE 1 acked 0");
		CHECK_EQ(rng_once(f, vq, 512), 512, "ring set up message by message serves a request");
		CHECK(vuf_vq_wait_call(vq, WAIT_MS) == 1, "call eventfd signalled after a used buffer");
		unsigned base = 99;
		CHECK(vuf_get_vring_base(f, 0, &base) == 0, "GET_VRING_BASE answers");
		CHECK_EQ(base, 1, "GET_VRING_BASE is 1 after one request");
	}
	CHECK(vuf_set_status(f, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				    VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK) == 0,
	      "SET_STATUS acked 0");
	uint64_t st = 0;
	CHECK(vuf_get_status(f, &st) == 0, "GET_STATUS answers");
	CHECK_EQ(st, 0xf, "GET_STATUS returns what SET_STATUS set");

	uint8_t cfg[16];
	CHECK_EQ(vuf_get_config(f, 0, 8, cfg), 0, "GET_CONFIG refused for rng (empty reply)");
	memset(cfg, 0, sizeof(cfg));
	CHECK_EQ(vuf_set_config(f, 0, 8, cfg), -EREMOTEIO, "SET_CONFIG refused for rng (failure ack)");
	CHECK(vuf_ping(f) == 0, "connection stays after refused config requests");

	CHECK(vuf_reset_owner(f) == 0, "RESET_OWNER accepted (acked 0)");
	CHECK(vuf_ping(f) == 0, "connection stays after RESET_OWNER");
	vuf_close(f);
}

/* Every reply: the request's id, flags exactly REPLY|VERSION, the right size. */
static void test_reply_format(void)
{
	struct vuf *f = ready(ALL_F, STD_PF);
	static const struct { uint32_t req; const char *name; } gets[] = {
		{ VU_REQ_GET_FEATURES, "GET_FEATURES" },
		{ VU_REQ_GET_PROTOCOL_FEATURES, "GET_PROTOCOL_FEATURES" },
		{ VU_REQ_GET_QUEUE_NUM, "GET_QUEUE_NUM" },
		{ VU_REQ_GET_MAX_MEM_SLOTS, "GET_MAX_MEM_SLOTS" },
		{ VU_REQ_GET_STATUS, "GET_STATUS" },
	};
	union vu_payload p;
	struct vu_hdr h;

	if (!CHECK(f != NULL, "reply format: session"))
		return;
	for (unsigned i = 0; i < sizeof(gets) / sizeof(gets[0]); i++) {
		memset(&h, 0xff, sizeof(h));
		int r = vuf_send(f, gets[i].req, VU_FLAG_VERSION, NULL, 0, NULL, 0);
		if (r == 0)
			r = vuf_recv(f, &h, &p, sizeof(p), WAIT_MS);
		CHECK(r == 8 && h.request == gets[i].req && h.flags == 0x5 && h.size == 8,
		      "reply format: %s reply is {request, 0x5, 8}", gets[i].name);
		/* With NEED_REPLY too: still exactly one reply, the same. */
		r = vuf_send(f, gets[i].req, VU_FLAG_VERSION | VU_FLAG_NEED_REPLY, NULL, 0, NULL, 0);
		if (r == 0)
			r = vuf_recv(f, &h, &p, sizeof(p), WAIT_MS);
		CHECK(r == 8 && h.request == gets[i].req && h.flags == 0x5 && h.size == 8,
		      "reply format: %s with NEED_REPLY has one plain reply", gets[i].name);
		CHECK(vuf_ping(f) == 0, "reply format: %s with NEED_REPLY: no second reply", gets[i].name);
	}
	struct vuf_vq *vq = vuf_vq_setup(f, 0, 32, 0);
	struct vu_vring_state st = { .index = 0 };
	int r = vq ? vuf_send(f, VU_REQ_GET_VRING_BASE, VU_FLAG_VERSION, &st, 8, NULL, 0) : -1;
	if (r == 0)
		r = vuf_recv(f, &h, &p, sizeof(p), WAIT_MS);
	CHECK(r == 8 && h.request == VU_REQ_GET_VRING_BASE && h.flags == 0x5 && h.size == 8 &&
	      p.state.index == 0 && p.state.num == 0,
	      "reply format: GET_VRING_BASE reply is {request, 0x5, 8} with {0, 0}");

	uint64_t v = 1;
	r = vuf_send(f, VU_REQ_SET_STATUS, VU_FLAG_VERSION | VU_FLAG_NEED_REPLY, &v, 8, NULL, 0);
	if (r == 0)
		r = vuf_recv(f, &h, &p, sizeof(p), WAIT_MS);
	CHECK(r == 8 && h.request == VU_REQ_SET_STATUS && h.flags == 0x5 && h.size == 8 && p.u64 == 0,
	      "reply format: ack is {request, 0x5, 8} with u64 0");

	struct vu_config c = { .offset = 0, .size = 4 };
	r = vuf_send(f, VU_REQ_GET_CONFIG, VU_FLAG_VERSION, &c, VU_CONFIG_HDR_SIZE + 4, NULL, 0);
	if (r == 0)
		r = vuf_recv(f, &h, &p, sizeof(p), WAIT_MS);
	CHECK(r == 0 && h.request == VU_REQ_GET_CONFIG && h.flags == 0x5,
	      "reply format: refused GET_CONFIG is {request, 0x5, 0}");
	vuf_close(f);
}

static void test_config_without_pf(void)
{
	/* GET_CONFIG needs CONFIG; without it the answer is still well-formed. */
	struct vuf *f = ready(ALL_F, 0);
	uint8_t buf[8];

	if (!CHECK(f != NULL, "config without protocol features: session"))
		return;
	CHECK_EQ(vuf_get_config(f, 0, 8, buf), 0, "GET_CONFIG without REPLY_ACK answered with an empty reply");
	vuf_close(f);
}

static void test_mem_slots(void)
{
	struct vuf *f = open_conn(sock_a, 0, 0);
	uint64_t ack = 1;

	if (!f || vuf_negotiate(f, ALL_F, STD_PF) < 0 || vuf_mem_init(f, 2, REGION_SIZE, 1 << 20) < 0) {
		CHECK(0, "mem slots: session");
		vuf_close(f);
		return;
	}
	CHECK(vuf_add_mem_reg(f, 0) == 0, "ADD_MEM_REG of region 0 acked 0");
	CHECK(vuf_add_mem_reg(f, 1) == 0, "ADD_MEM_REG of region 1 acked 0");
	/* The ring lies in region 0 (allocated first); the buffer in region 1. */
	struct vuf_vq *vq = vuf_vq_setup(f, 0, 64, 0);
	CHECK(vq != NULL, "ring set up in memory added by ADD_MEM_REG");
	if (!vq) {
		vuf_close(f);
		return;
	}
	uint64_t gpa = f->region[1].gpa + 8192;
	memset(vuf_gpa(f, gpa, 1024), PATTERN, 1024);
	struct vuf_buf b = { gpa, 1024 };
	uint32_t id, len = 0;
	int head = vuf_vq_add(vq, NULL, 0, &b, 1, false);
	vuf_vq_kick(vq);
	CHECK(vuf_vq_wait_used(vq, &id, &len, WAIT_MS) == 0 && len == 1024 && id == (uint32_t)head &&
	      varied(vuf_gpa(f, gpa, 1024), 1024),
	      "request into a region added by ADD_MEM_REG is served");

	/* REM_MEM_REG with a stray fd: accepted or not, the fd must be closed. */
	int before = vuf_backend_fd_count(be);
	int stray = eventfd(0, EFD_CLOEXEC);
	struct vu_mem_single m = { .region = vuf_region_desc(f, 1) };
	int r = vuf_send_ack(f, VU_REQ_REM_MEM_REG, &m, sizeof(m), &stray, 1, &ack);
	close(stray);
	CHECK(r == 0 && ack == 0, "REM_MEM_REG of region 1 (with a stray fd) acked 0");
	CHECK_EQ(vuf_backend_fd_count(be), before, "REM_MEM_REG's stray fd is closed by the back-end");
	ack = 0;
	r = vuf_send_ack(f, VU_REQ_REM_MEM_REG, &m, sizeof(m), NULL, 0, &ack);
	CHECK(r == 0 && ack != 0, "REM_MEM_REG of a removed region gets a failure ack");
	CHECK(vuf_ping(f) == 0, "connection stays after a refused REM_MEM_REG");

	/* A buffer in the removed region is now outside guest memory. */
	head = vuf_vq_add(vq, NULL, 0, &b, 1, false);
	vuf_vq_kick(vq);
	CHECK(vuf_vq_wait_err(vq, WAIT_MS) == 1, "buffer in a removed region breaks the queue (err eventfd)");
	CHECK_EQ(vuf_vq_used_pending(vq), 0, "buffer in a removed region is not used");
	vuf_close(f);
}

static void test_reset_device(void)
{
	struct vuf *f = ready(ALL_F, STD_PF);
	struct vuf_vq *vq = f ? vuf_vq_setup(f, 0, 64, 0) : NULL;

	if (!CHECK(vq != NULL, "RESET_DEVICE: session"))
		goto out;
	CHECK(vuf_set_status(f, 0xf) == 0 && rng_once(f, vq, 100) == 100, "RESET_DEVICE: ring runs before");
	CHECK(vuf_reset_device(f) == 0, "RESET_DEVICE acked 0");
	uint64_t st = 99;
	CHECK(vuf_get_status(f, &st) == 0 && st == 0, "RESET_DEVICE clears the device status");
	/* The old ring is gone: a kick on the old eventfd does nothing. */
	uint64_t gpa = pattern_buf(f, 64);
	struct vuf_buf b = { gpa, 64 };
	vuf_vq_add(vq, NULL, 0, &b, 1, false);
	vuf_vq_kick(vq);
	usleep(QUIET_MS * 1000);
	CHECK(vuf_vq_used_pending(vq) == 0 && all_bytes(vuf_gpa(f, gpa, 64), 64, PATTERN),
	      "RESET_DEVICE: the reset ring processes nothing");
	/* And the device can be set up again, as a front-end does after a reset. */
	vuf_vq_free(vq);
	int r = vuf_set_features(f, ALL_F);
	vq = r == 0 ? vuf_vq_setup(f, 0, 64, 0) : NULL;
	CHECK(vq && rng_once(f, vq, 100) == 100, "RESET_DEVICE: device set up again serves requests");
out:
	vuf_close(f);
}

/* In-band notifications: VRING_KICK in, BACKEND_VRING_CALL out. */
static void test_inband(void)
{
	struct vuf *f = ready(ALL_F, RNG_PF);
	struct vuf_vq *vq = f ? vuf_vq_setup(f, 0, 64, VUF_VQ_KICK_NOFD | VUF_VQ_CALL_NOFD) : NULL;
	union vu_payload p;
	struct vu_hdr h;

	if (!CHECK(vq != NULL, "in-band: session with INBAND_NOTIFICATIONS and NOFD kick/call")) {
		if (f)
			check_note("%s", vuf_error(f));
		goto out;
	}
	uint64_t gpa = pattern_buf(f, 300);
	struct vuf_buf b = { gpa, 300 };
	int head = vuf_vq_add(vq, NULL, 0, &b, 1, false);
	CHECK(vuf_vring_kick(f, 0) == 0, "in-band: VRING_KICK acked 0");
	uint32_t id, len = 0;
	CHECK(vuf_vq_wait_used(vq, &id, &len, WAIT_MS) == 0 && id == (uint32_t)head && len == 300,
	      "in-band: VRING_KICK starts the ring and the request is served");
	int r = vuf_backend_recv(f, &h, &p, sizeof(p), WAIT_MS);
	CHECK(r == 8 && h.request == VU_BREQ_VRING_CALL && (h.flags & VU_FLAG_VERSION_MASK) == 1 &&
	      !(h.flags & VU_FLAG_REPLY) && p.state.index == 0 && p.state.num == 0,
	      "in-band: back-end sends BACKEND_VRING_CALL {0, 0} instead of an eventfd call");
	CHECK(vuf_ping(f) == 0, "in-band: main channel fine after the back-end request");

	/* With a call eventfd set, it is used instead of the message. */
	int call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vq->call_fd = call;
	CHECK(vuf_set_vring_call(f, 0, call) == 0, "in-band: SET_VRING_CALL eventfd acked 0");
	gpa = pattern_buf(f, 300);
	b.gpa = gpa;
	vuf_vq_want_call_at_next(vq);
	head = vuf_vq_add(vq, NULL, 0, &b, 1, false);
	vuf_vring_kick(f, 0);
	CHECK(vuf_vq_wait_used(vq, &id, &len, WAIT_MS) == 0 && len == 300, "in-band: second request served");
	CHECK_EQ(vuf_vq_wait_call(vq, WAIT_MS), 1, "in-band: call eventfd preferred once set");
	r = vuf_backend_recv(f, &h, &p, sizeof(p), QUIET_MS);
	CHECK_EQ(r, -ETIMEDOUT, "in-band: no BACKEND_VRING_CALL when a call eventfd is set");
out:
	vuf_close(f);

	/* INBAND_NOTIFICATIONS without BACKEND_REQ and REPLY_ACK: the spec says close. */
	f = open_conn(sock_a, 0, 0);
	uint64_t v;
	if (f && vuf_get_features(f, &v) == 0 && vuf_set_features(f, ALL_F) == 0 &&
	    vuf_get_protocol_features(f, &v) == 0) {
		v = PF(INBAND_NOTIFICATIONS);
		vuf_send(f, VU_REQ_SET_PROTOCOL_FEATURES, VU_FLAG_VERSION, &v, 8, NULL, 0);
		CHECK_EQ(vuf_wait_closed(f, WAIT_MS), 1,
			 "in-band: INBAND_NOTIFICATIONS without BACKEND_REQ and REPLY_ACK closes the connection");
	} else {
		CHECK(0, "in-band: session for the lone INBAND_NOTIFICATIONS case");
	}
	vuf_close(f);
	settle();
}

/* Kick with NOFD: the back-end polls the ring. Call with NOFD: we poll. */
static void test_nofd_polling(void)
{
	struct vuf *f = ready(ALL_F, STD_PF);
	struct vuf_vq *vq = f ? vuf_vq_setup(f, 0, 64, VUF_VQ_KICK_NOFD | VUF_VQ_CALL_NOFD) : NULL;
	uint32_t id, len = 0;

	if (!CHECK(vq != NULL, "polling: session with NOFD kick and call"))
		goto out;
	uint64_t gpa = pattern_buf(f, 128);
	struct vuf_buf b = { gpa, 128 };
	int head = vuf_vq_add(vq, NULL, 0, &b, 1, false);
	CHECK(vuf_vq_wait_used(vq, &id, &len, WAIT_MS) == 0 && id == (uint32_t)head && len == 128,
	      "polling: kick NOFD: request served without any kick");
	CHECK(varied(vuf_gpa(f, gpa, 128), 128), "polling: buffer filled");
out:
	vuf_close(f);
}

/* Configuration changed while the ring runs, as the spec allows ("on the fly"). */
static void test_on_the_fly(void)
{
	uint32_t id, len;
	struct vuf *f = ready(ALL_F, STD_PF);
	struct vuf_vq *vq = f ? vuf_vq_setup(f, 0, 64, 0) : NULL;

	if (!CHECK(vq != NULL, "on the fly: session"))
		goto out;
	CHECK_EQ(rng_once(f, vq, 64), 64, "on the fly: ring runs");
	vuf_vq_wait_call(vq, WAIT_MS);

	/* A new kick eventfd replaces the old one. */
	int old_kick = vq->kick_fd;
	vq->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	CHECK(vuf_set_vring_kick(f, 0, vq->kick_fd) == 0, "on the fly: SET_VRING_KICK with a new eventfd acked");
	CHECK_EQ(rng_once(f, vq, 64), 64, "on the fly: the new kick eventfd works");
	uint64_t gpa = pattern_buf(f, 64);
	struct vuf_buf b = { gpa, 64 };
	int head = vuf_vq_add(vq, NULL, 0, &b, 1, false);
	uint64_t one = 1;
	CHECK(write(old_kick, &one, 8) == 8, "on the fly: old kick eventfd still writable on our side");
	usleep(QUIET_MS * 1000);
	CHECK(vuf_vq_used_pending(vq) == 0, "on the fly: the replaced kick eventfd is no longer watched");
	close(old_kick);
	vuf_vq_kick(vq);
	CHECK(vuf_vq_wait_used(vq, &id, &len, WAIT_MS) == 0 && id == (uint32_t)head, "on the fly: request then served");

	/* A new call eventfd replaces the old one. */
	vuf_vq_wait_call(vq, QUIET_MS);
	int old_call = vq->call_fd;
	vq->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	CHECK(vuf_set_vring_call(f, 0, vq->call_fd) == 0, "on the fly: SET_VRING_CALL with a new eventfd acked");
	vuf_vq_want_call_at_next(vq);
	CHECK_EQ(rng_once(f, vq, 64), 64, "on the fly: request after the call change served");
	CHECK_EQ(vuf_vq_wait_call(vq, WAIT_MS), 1, "on the fly: the new call eventfd is signalled");
	uint64_t v;
	CHECK(read(old_call, &v, 8) < 0, "on the fly: the replaced call eventfd is not signalled");
	close(old_call);

	/* The same memory table again: the ring is looked up again and goes on. */
	CHECK(vuf_set_mem_table(f) == 0, "on the fly: SET_MEM_TABLE again while the ring runs acked");
	CHECK_EQ(rng_once(f, vq, 64), 64, "on the fly: ring works after the memory table was sent again");

	/* More memory added while the ring runs; a buffer in it is served. */
	vuf_close(f);
	f = open_conn(sock_a, 0, 0);
	if (!f || vuf_negotiate(f, ALL_F, STD_PF) < 0 || vuf_mem_init(f, 2, REGION_SIZE, 1 << 20) < 0 ||
	    vuf_add_mem_reg(f, 0) < 0 || !(vq = vuf_vq_setup(f, 0, 64, 0))) {
		CHECK(0, "on the fly: ADD_MEM_REG session");
		goto out;
	}
	CHECK_EQ(rng_once(f, vq, 64), 64, "on the fly: ring in the first added region runs");
	CHECK(vuf_add_mem_reg(f, 1) == 0, "on the fly: ADD_MEM_REG while the ring runs acked");
	gpa = f->region[1].gpa + 4096;
	b = (struct vuf_buf){ gpa, 256 };
	head = vuf_vq_add(vq, NULL, 0, &b, 1, false);
	vuf_vq_kick(vq);
	CHECK(vuf_vq_wait_used(vq, &id, &len, WAIT_MS) == 0 && id == (uint32_t)head && len == 256 &&
	      varied(vuf_gpa(f, gpa, 256), 256),
	      "on the fly: buffer in a region added while the ring runs is served");
out:
	vuf_close(f);
}

/* RESET_OWNER is deprecated: the spec recommends ignoring it or disabling the rings. */
static void test_reset_owner(void)
{
	struct vuf *f = ready(ALL_F, STD_PF);
	struct vuf_vq *vq = f ? vuf_vq_setup(f, 0, 64, 0) : NULL;
	uint32_t id, len;

	if (!CHECK(vq != NULL, "RESET_OWNER semantics: session"))
		goto out;
	CHECK_EQ(rng_once(f, vq, 64), 64, "RESET_OWNER semantics: ring runs before");
	vuf_vq_wait_call(vq, QUIET_MS);
	CHECK(vuf_reset_owner(f) == 0, "RESET_OWNER semantics: acked 0");
	/* Ignored or rings disabled: re-enabling must bring the same ring back. */
	CHECK(vuf_set_vring_enable(f, 0, true) == 0, "RESET_OWNER semantics: SET_VRING_ENABLE 1 acked");
	uint64_t gpa = pattern_buf(f, 64);
	struct vuf_buf b = { gpa, 64 };
	int head = vuf_vq_add(vq, NULL, 0, &b, 1, false);
	vuf_vq_kick(vq);
	CHECK(vuf_vq_wait_used(vq, &id, &len, WAIT_MS) == 0 && id == (uint32_t)head && len == 64,
	      "RESET_OWNER semantics: ring state kept (ignored or rings only disabled; re-enabled ring runs)");
out:
	vuf_close(f);
}

/* Stopped means stopped: neither enabling nor polling restarts a ring after GET_VRING_BASE. */
static void test_stopped(void)
{
	struct vuf *f = ready(ALL_F, STD_PF);
	struct vuf_vq *vq = f ? vuf_vq_setup(f, 0, 64, 0) : NULL;
	unsigned base;

	if (!CHECK(vq != NULL, "stopped ring: session"))
		goto out;
	rng_once(f, vq, 64);
	CHECK(vuf_get_vring_base(f, 0, &base) == 0 && base == 1, "stopped ring: GET_VRING_BASE 1");
	CHECK(vuf_set_vring_enable(f, 0, true) == 0, "stopped ring: SET_VRING_ENABLE 1 acked");
	uint64_t gpa = pattern_buf(f, 64);
	struct vuf_buf b = { gpa, 64 };
	vuf_vq_add(vq, NULL, 0, &b, 1, false);
	vuf_vq_kick(vq);
	usleep(QUIET_MS * 1000);
	CHECK(vuf_vq_used_pending(vq) == 0 && all_bytes(vuf_gpa(f, gpa, 64), 64, PATTERN),
	      "stopped ring: SET_VRING_ENABLE does not restart a stopped ring");
	vuf_close(f);

	f = ready(ALL_F, STD_PF);
	vq = f ? vuf_vq_setup(f, 0, 64, VUF_VQ_KICK_NOFD) : NULL;
	if (!CHECK(vq != NULL, "stopped ring: polled session"))
		goto out;
	CHECK_EQ(rng_once(f, vq, 64), 64, "stopped ring: polled ring runs");
	CHECK(vuf_get_vring_base(f, 0, &base) == 0 && base == 1, "stopped ring: GET_VRING_BASE 1 on a polled ring");
	gpa = pattern_buf(f, 64);
	b.gpa = gpa;
	vuf_vq_add(vq, NULL, 0, &b, 1, false);
	usleep(QUIET_MS * 1000);
	CHECK(vuf_vq_used_pending(vq) == 0 && all_bytes(vuf_gpa(f, gpa, 64), 64, PATTERN),
	      "stopped ring: polling ends with GET_VRING_BASE");
out:
	vuf_close(f);
}

/* Messages split over writes, or several in one write, are the same messages. */
static void test_framing(void)
{
	struct vuf *f = ready(ALL_F, STD_PF);
	union vu_payload p;
	struct vu_hdr h;

	if (!CHECK(f != NULL, "framing: session"))
		return;
	struct vu_vring_state st = { 0, 0 };
	uint8_t msg[12 + 8];
	struct vu_hdr sh = { VU_REQ_GET_VRING_BASE, VU_FLAG_VERSION, 8 };
	memcpy(msg, &sh, 12);
	memcpy(msg + 12, &st, 8);
	vuf_send_bytes(f, msg, 5, NULL, 0);
	usleep(20000);
	vuf_send_bytes(f, msg + 5, 10, NULL, 0);
	usleep(20000);
	vuf_send_bytes(f, msg + 15, 5, NULL, 0);
	int r = vuf_recv(f, &h, &p, sizeof(p), WAIT_MS);
	CHECK(r == 8 && h.request == VU_REQ_GET_VRING_BASE && h.flags == 0x5,
	      "framing: a message arriving in three pieces is answered");

	uint8_t two[24];
	struct vu_hdr g = { VU_REQ_GET_FEATURES, VU_FLAG_VERSION, 0 };
	struct vu_hdr q = { VU_REQ_GET_QUEUE_NUM, VU_FLAG_VERSION, 0 };
	memcpy(two, &g, 12);
	memcpy(two + 12, &q, 12);
	vuf_send_bytes(f, two, sizeof(two), NULL, 0);
	r = vuf_recv(f, &h, &p, sizeof(p), WAIT_MS);
	bool first = r == 8 && h.request == VU_REQ_GET_FEATURES;
	r = vuf_recv(f, &h, &p, sizeof(p), WAIT_MS);
	CHECK(first && r == 8 && h.request == VU_REQ_GET_QUEUE_NUM && p.u64 == 1,
	      "framing: two messages in one write are both answered, in order");
	vuf_close(f);

	/* A second front-end on the same socket is served once the first leaves. */
	settle();
	struct vuf *a = ready(ALL_F, STD_PF);
	struct vuf *b = vuf_connect(sock_a, 2000);
	uint64_t v;
	CHECK(a && b, "framing: two front-ends connect to one socket");
	if (a && b) {
		vuf_send(b, VU_REQ_GET_FEATURES, VU_FLAG_VERSION, NULL, 0, NULL, 0);
		vuf_close(a);
		a = NULL;
		r = vuf_recv(b, &h, &v, sizeof(v), WAIT_MS);
		CHECK(r == 8 && h.request == VU_REQ_GET_FEATURES && (v & ALL_F) == ALL_F,
		      "framing: the waiting front-end is served after the first disconnects");
	}
	vuf_close(a);
	vuf_close(b);
	settle();
}

/* Legal but large: long chains, the biggest ring. */
static void test_large(void)
{
	uint32_t id, len;
	struct vuf *f = ready(ALL_F, STD_PF);
	struct vuf_vq *vq = f ? vuf_vq_setup(f, 0, 256, 0) : NULL;

	if (!CHECK(vq != NULL, "large: session"))
		goto out;
	/* 100 one-byte... 32-byte writable buffers: shorter than the queue, so legal. */
	struct vuf_buf bufs[100];
	for (int i = 0; i < 100; i++)
		bufs[i] = (struct vuf_buf){ pattern_buf(f, 32), 32 };
	int head = vuf_vq_add(vq, NULL, 0, bufs, 100, false);
	vuf_vq_kick(vq);
	int r = vuf_vq_wait_used(vq, &id, &len, WAIT_MS);
	CHECK(r == 0 && id == (uint32_t)head && len > 0 && len <= 3200,
	      "large: chain of 100 writable descriptors (legal, queue of 256) served");
	if (r)
		check_note("chain of 100: %s", vuf_error(f));
	uint64_t st = 0;
	CHECK(vuf_get_status(f, &st) == 0 && !(st & VIRTIO_STATUS_NEEDS_RESET),
	      "large: chain of 100 does not mark the queue broken");
	CHECK_EQ(vuf_vq_wait_err(vq, 0), 0, "large: chain of 100 does not signal the err eventfd");

	/* An indirect table of 64 entries. */
	vuf_close(f);
	f = ready(ALL_F, STD_PF);
	vq = f ? vuf_vq_setup(f, 0, 256, 0) : NULL;
	if (!CHECK(vq != NULL, "large: second session"))
		goto out;
	for (int i = 0; i < VUF_INDIRECT_MAX; i++)
		bufs[i] = (struct vuf_buf){ pattern_buf(f, 32), 32 };
	head = vuf_vq_add(vq, NULL, 0, bufs, VUF_INDIRECT_MAX, true);
	vuf_vq_kick(vq);
	r = vuf_vq_wait_used(vq, &id, &len, WAIT_MS);
	CHECK(r == 0 && id == (uint32_t)head && len == 32 * VUF_INDIRECT_MAX,
	      "large: indirect table of 64 writable buffers served whole");
	vuf_close(f);

	/* The biggest queue, 32768 entries. */
	f = ready(ALL_F, STD_PF);
	vq = f ? vuf_vq_setup(f, 0, 32768, 0) : NULL;
	if (!CHECK(vq != NULL, "large: ring of 32768 entries set up"))
		goto out;
	bool ok = true;
	for (int i = 0; i < 3; i++)
		ok &= rng_once(f, vq, 512) == 512;
	CHECK(ok, "large: ring of 32768 entries serves requests");
out:
	vuf_close(f);
}

/* ---- ring states --------------------------------------------------------- */

static void test_ring_states(void)
{
	uint32_t id, len;
	struct vuf *f = ready(ALL_F, STD_PF);
	struct vuf_vq *vq = f ? vuf_vq_setup(f, 0, 64, VUF_VQ_NO_ENABLE) : NULL;

	if (!CHECK(vq != NULL, "ring states: session"))
		goto out;
	/* Started (kick fd given) but no kick yet: stopped. Not enabled: disabled. */
	uint64_t gpa = pattern_buf(f, 256);
	struct vuf_buf b = { gpa, 256 };
	int head = vuf_vq_add(vq, NULL, 0, &b, 1, false);
	vuf_vq_kick(vq);
	usleep(QUIET_MS * 1000 + 50000);
	CHECK(vuf_vq_used_pending(vq) == 0, "ring states: with F_PROTOCOL_FEATURES a ring starts disabled (no used entry)");
	CHECK(all_bytes(vuf_gpa(f, gpa, 256), 256, PATTERN),
	      "ring states: a disabled ring does not write guest memory");
	CHECK(vuf_set_vring_enable(f, 0, true) == 0, "ring states: SET_VRING_ENABLE 1 acked");
	CHECK(vuf_vq_wait_used(vq, &id, &len, WAIT_MS) == 0 && id == (uint32_t)head && len == 256,
	      "ring states: enabling a kicked ring serves what is waiting");
	CHECK(varied(vuf_gpa(f, gpa, 256), 256), "ring states: enabled ring filled the buffer");

	/* Disable again: nothing consumed; enable: consumed. */
	CHECK(vuf_set_vring_enable(f, 0, false) == 0, "ring states: SET_VRING_ENABLE 0 acked");
	gpa = pattern_buf(f, 256);
	b.gpa = gpa;
	head = vuf_vq_add(vq, NULL, 0, &b, 1, false);
	vuf_vq_kick(vq);
	usleep(QUIET_MS * 1000);
	CHECK(vuf_vq_used_pending(vq) == 0 && all_bytes(vuf_gpa(f, gpa, 256), 256, PATTERN),
	      "ring states: a ring disabled again consumes nothing");
	vuf_set_vring_enable(f, 0, true);
	CHECK(vuf_vq_wait_used(vq, &id, &len, WAIT_MS) == 0 && id == (uint32_t)head,
	      "ring states: re-enabled ring serves the waiting request");

	/* Stopped until kicked: a new ring, enabled, with a request but no kick. */
	vuf_close(f);
	f = ready(ALL_F, STD_PF);
	vq = f ? vuf_vq_setup(f, 0, 64, 0) : NULL;
	if (!CHECK(vq != NULL, "ring states: second session"))
		goto out;
	gpa = pattern_buf(f, 64);
	b = (struct vuf_buf){ gpa, 64 };
	head = vuf_vq_add(vq, NULL, 0, &b, 1, false);
	usleep(QUIET_MS * 1000);
	CHECK(vuf_vq_used_pending(vq) == 0 && all_bytes(vuf_gpa(f, gpa, 64), 64, PATTERN),
	      "ring states: a ring is stopped until its first kick");
	vuf_vq_kick(vq);
	CHECK(vuf_vq_wait_used(vq, &id, &len, WAIT_MS) == 0 && id == (uint32_t)head && len == 64,
	      "ring states: the first kick starts the ring");

	/* GET_VRING_BASE: requests consumed since SET_VRING_BASE, then the ring stops. */
	for (int i = 0; i < 4; i++)
		rng_once(f, vq, 32);
	unsigned base = 0;
	CHECK(vuf_get_vring_base(f, 0, &base) == 0, "ring states: GET_VRING_BASE answers on a running ring");
	CHECK_EQ(base, 5, "ring states: GET_VRING_BASE returns the next avail index (5 after 5 requests)");
	gpa = pattern_buf(f, 64);
	b.gpa = gpa;
	head = vuf_vq_add(vq, NULL, 0, &b, 1, false);
	vuf_vq_kick(vq);
	usleep(QUIET_MS * 1000);
	CHECK(vuf_vq_used_pending(vq) == 0 && all_bytes(vuf_gpa(f, gpa, 64), 64, PATTERN),
	      "ring states: after GET_VRING_BASE a kick processes nothing");
	base = 0;
	CHECK(vuf_get_vring_base(f, 0, &base) == 0 && base == 5,
	      "ring states: GET_VRING_BASE on a stopped ring still returns 5");

	/* Restart from base 5 with a fresh kick eventfd: the waiting request is served. */
	close(vq->kick_fd);
	vq->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	CHECK(vuf_set_vring_base(f, 0, 5) == 0, "ring states: SET_VRING_BASE 5 on a stopped ring acked");
	CHECK(vuf_set_vring_kick(f, 0, vq->kick_fd) == 0, "ring states: SET_VRING_KICK after the stop acked");
	vuf_vq_kick(vq);
	CHECK(vuf_vq_wait_used(vq, &id, &len, WAIT_MS) == 0 && id == (uint32_t)head && len == 64,
	      "ring states: SET_VRING_BASE then kick resumes at the given index");
	CHECK_EQ(__atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE), 6,
		 "ring states: used idx continues at 6 after the restart");
	base = 0;
	CHECK(vuf_get_vring_base(f, 0, &base) == 0 && base == 6, "ring states: GET_VRING_BASE is 6 after the restart");
	vuf_close(f);

	/* Base near the 16-bit wrap: the returned base is mod 2^16. */
	f = ready(ALL_F, STD_PF);
	vq = f ? vuf_vq_alloc(f, 0, 16) : NULL;
	if (!CHECK(vq && vuf_vq_start(vq, 65534, 0) == 0, "ring states: ring started at base 65534"))
		goto out;
	bool ok = true;
	for (int i = 0; i < 4; i++)
		ok &= rng_once(f, vq, 16) == 16;
	CHECK(ok, "ring states: requests across the 16-bit index wrap served");
	CHECK_EQ(__atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE), 2, "ring states: used idx wrapped to 2");
	base = 0;
	CHECK(vuf_get_vring_base(f, 0, &base) == 0 && base == 2,
	      "ring states: GET_VRING_BASE after the wrap is 2 (mod 2^16)");
	vuf_close(f);

	/* Without F_PROTOCOL_FEATURES rings start enabled. */
	f = ready(ALL_F & ~F(VHOST_USER_F_PROTOCOL_FEATURES), 0);
	vq = f ? vuf_vq_setup(f, 0, 64, 0) : NULL;
	if (!CHECK(vq != NULL, "ring states: session without F_PROTOCOL_FEATURES"))
		goto out;
	CHECK_EQ(rng_once(f, vq, 200), 200,
		 "ring states: without F_PROTOCOL_FEATURES the ring starts enabled (served without SET_VRING_ENABLE)");
out:
	vuf_close(f);
}

/* ---- real data ------------------------------------------------------------ */

static void test_data(void)
{
	static const uint32_t sizes[] = { 1, 16, 100, 4096, 65536 };
	struct vuf *f = open_conn(sock_a, 2, 0); /* contiguous regions: no hole */
	struct vuf_vq *vq = NULL;
	uint32_t id, len;

	if (f && vuf_negotiate(f, ALL_F, STD_PF) == 0)
		vq = vuf_vq_setup(f, 0, 256, 0);
	if (!CHECK(vq != NULL, "data: session"))
		goto out;
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint32_t n = sizes[i];
		uint64_t gpa = pattern_buf(f, n + 64);
		struct vuf_buf b = { gpa, n };
		int head = vuf_vq_add(vq, NULL, 0, &b, 1, false);
		vuf_vq_kick(vq);
		int r = vuf_vq_wait_used(vq, &id, &len, WAIT_MS);
		const uint8_t *p = vuf_gpa(f, gpa, n + 64);
		CHECK(r == 0 && id == (uint32_t)head && len == n, "data: %u-byte buffer: used.len is %u", n, n);
		CHECK(n < 16 || varied(p, n), "data: %u-byte buffer filled with varied bytes", n);
		CHECK(all_bytes(p + n, 64, PATTERN), "data: %u-byte buffer: nothing written past its end", n);
	}

	/* Bigger than the device fills at once: used.len says how much, the rest untouched. */
	uint32_t big = 200000;
	uint64_t gpa = pattern_buf(f, big);
	struct vuf_buf bb = { gpa, big };
	int head = vuf_vq_add(vq, NULL, 0, &bb, 1, false);
	vuf_vq_kick(vq);
	int r = vuf_vq_wait_used(vq, &id, &len, WAIT_MS);
	const uint8_t *p = vuf_gpa(f, gpa, big);
	CHECK(r == 0 && id == (uint32_t)head && len > 0 && len <= big,
	      "data: 200000-byte buffer: 0 < used.len <= 200000");
	if (r == 0 && len > 0 && len <= big) {
		CHECK(varied(p, len), "data: 200000-byte buffer: the used.len bytes are random");
		CHECK(all_bytes(p + len, big - len, PATTERN), "data: 200000-byte buffer: nothing past used.len written");
	}

	/* A chain of three writable buffers. */
	struct vuf_buf chain[3];
	uint32_t sz[3] = { 100, 200, 300 };
	for (int i = 0; i < 3; i++)
		chain[i] = (struct vuf_buf){ pattern_buf(f, sz[i] + 32), sz[i] };
	head = vuf_vq_add(vq, NULL, 0, chain, 3, false);
	vuf_vq_kick(vq);
	r = vuf_vq_wait_used(vq, &id, &len, WAIT_MS);
	CHECK(r == 0 && id == (uint32_t)head && len == 600, "data: chain of 3 writable buffers: used.len 600");
	bool filled = true, clean = true;
	for (int i = 0; i < 3; i++) {
		filled &= varied(vuf_gpa(f, chain[i].gpa, sz[i]), sz[i]);
		clean &= all_bytes((uint8_t *)vuf_gpa(f, chain[i].gpa, sz[i] + 32) + sz[i], 32, PATTERN);
	}
	CHECK(filled, "data: chain of 3: every buffer filled");
	CHECK(clean, "data: chain of 3: nothing written past any buffer");

	/* Indirect table of four writable buffers. */
	struct vuf_buf ind[4];
	for (int i = 0; i < 4; i++)
		ind[i] = (struct vuf_buf){ pattern_buf(f, 512), 512 };
	head = vuf_vq_add(vq, NULL, 0, ind, 4, true);
	vuf_vq_kick(vq);
	r = vuf_vq_wait_used(vq, &id, &len, WAIT_MS);
	CHECK(r == 0 && id == (uint32_t)head && len == 2048, "data: indirect table of 4 buffers: used.len 2048");
	filled = true;
	for (int i = 0; i < 4; i++)
		filled &= varied(vuf_gpa(f, ind[i].gpa, 512), 512);
	CHECK(filled, "data: indirect table: every buffer filled");

	/* One buffer crossing from region 0 into region 1 (contiguous gpa, separate mappings). */
	uint64_t cross = f->region[1].gpa - 2048;
	memset(vuf_gpa(f, cross, 2048), PATTERN, 2048);
	memset(vuf_gpa(f, f->region[1].gpa, 2048 + 64), PATTERN, 2048 + 64);
	struct vuf_buf cb = { cross, 4096 };
	head = vuf_vq_add(vq, NULL, 0, &cb, 1, false);
	vuf_vq_kick(vq);
	r = vuf_vq_wait_used(vq, &id, &len, WAIT_MS);
	CHECK(r == 0 && id == (uint32_t)head && len == 4096, "data: buffer crossing two regions: used.len 4096");
	CHECK(varied(vuf_gpa(f, cross, 2048), 2048) && varied(vuf_gpa(f, f->region[1].gpa, 2048), 2048),
	      "data: buffer crossing two regions: both parts filled");
	CHECK(all_bytes((uint8_t *)vuf_gpa(f, f->region[1].gpa, 2048 + 64) + 2048, 64, PATTERN),
	      "data: buffer crossing two regions: nothing written past its end");

	/* Two requests give different bytes. */
	uint64_t g1 = pattern_buf(f, 64), g2 = pattern_buf(f, 64);
	struct vuf_buf b1 = { g1, 64 }, b2 = { g2, 64 };
	vuf_vq_add(vq, NULL, 0, &b1, 1, false);
	vuf_vq_add(vq, NULL, 0, &b2, 1, false);
	vuf_vq_kick(vq);
	r = vuf_vq_wait_used(vq, NULL, NULL, WAIT_MS);
	if (r == 0)
		r = vuf_vq_wait_used(vq, NULL, NULL, WAIT_MS);
	CHECK(r == 0 && memcmp(vuf_gpa(f, g1, 64), vuf_gpa(f, g2, 64), 64) != 0,
	      "data: two requests get different random bytes");

	/* Many requests through a small ring: the indexes wrap the ring several times. */
	vuf_close(f);
	f = ready(ALL_F, STD_PF);
	vq = f ? vuf_vq_setup(f, 0, 16, 0) : NULL;
	if (!CHECK(vq != NULL, "data: small-ring session"))
		goto out;
	uint64_t pool = vuf_alloc(f, 16 * 64, 64);
	unsigned done = 0, bad = 0;
	for (int round = 0; round < 20; round++) {
		int heads[16];
		for (int i = 0; i < 16; i++) {
			struct vuf_buf b = { pool + 64 * i, 64 };
			heads[i] = vuf_vq_add(vq, NULL, 0, &b, 1, false);
		}
		vuf_vq_kick(vq);
		for (int i = 0; i < 16; i++) {
			if (vuf_vq_wait_used(vq, &id, &len, WAIT_MS) < 0)
				break;
			done++;
			bad += id != (uint32_t)heads[i] || len != 64;
		}
	}
	CHECK_EQ(done, 320, "data: 320 requests through a 16-entry ring all completed");
	CHECK_EQ(bad, 0, "data: 320 requests: used ids in order and lengths right");
out:
	vuf_close(f);
}

/* Regions carved from one memfd at non-zero mmap offsets, as QEMU sends RAM blocks. */
static void test_mmap_offset(void)
{
	struct vuf *f = vuf_connect(sock_a, 2000);
	struct vuf_vq *vq = NULL;
	uint32_t id, len;

	if (f && vuf_mem_init_one_fd(f, 3, 1 << 20, 0, 2 << 20) == 0 && vuf_negotiate(f, ALL_F, STD_PF) == 0)
		vq = vuf_vq_setup(f, 0, 64, 0);
	if (!CHECK(vq != NULL, "mmap offsets: session with 3 regions of one memfd at offsets 2, 3, 4 MiB")) {
		if (f)
			check_note("%s", vuf_error(f));
		vuf_close(f);
		return;
	}
	bool ok = true;
	for (unsigned i = 0; i < 3; i++) {
		uint64_t gpa = f->region[i].gpa + f->region[i].size - 8192;
		memset(vuf_gpa(f, gpa, 4096 + 64), PATTERN, 4096 + 64);
		struct vuf_buf b = { gpa, 4096 };
		int head = vuf_vq_add(vq, NULL, 0, &b, 1, false);
		vuf_vq_kick(vq);
		ok &= vuf_vq_wait_used(vq, &id, &len, WAIT_MS) == 0 && id == (uint32_t)head && len == 4096 &&
		      varied(vuf_gpa(f, gpa, 4096), 4096) &&
		      all_bytes((uint8_t *)vuf_gpa(f, gpa, 4096 + 64) + 4096, 64, PATTERN);
	}
	CHECK(ok, "mmap offsets: a buffer near the end of each region lands at the right file offset");
	uint64_t cross = f->region[2].gpa - 1024;
	memset(vuf_gpa(f, cross, 1024), PATTERN, 1024);
	memset(vuf_gpa(f, f->region[2].gpa, 1024), PATTERN, 1024);
	struct vuf_buf cb = { cross, 2048 };
	int head = vuf_vq_add(vq, NULL, 0, &cb, 1, false);
	vuf_vq_kick(vq);
	CHECK(vuf_vq_wait_used(vq, &id, &len, WAIT_MS) == 0 && id == (uint32_t)head && len == 2048 &&
	      varied(vuf_gpa(f, cross, 1024), 1024) && varied(vuf_gpa(f, f->region[2].gpa, 1024), 1024),
	      "mmap offsets: a buffer crossing regions 1 and 2 is filled in both");
	vuf_close(f);
}

static void test_notifications(void)
{
	uint32_t id, len;
	int64_t until;
	struct vuf *f = ready(ALL_F, STD_PF);
	struct vuf_vq *vq = f ? vuf_vq_setup(f, 0, 64, 0) : NULL;

	if (!CHECK(vq != NULL, "EVENT_IDX: session"))
		goto out;
	CHECK(vq->event_idx, "EVENT_IDX: negotiated");
	vq->manual_used_event = true;
	/* Warm-up: the first notification may always come. */
	rng_once(f, vq, 32);
	vuf_vq_wait_call(vq, WAIT_MS);
	/* used_event = last_used + 1: the next used entry does not pass it. */
	vuf_vq_set_used_event(vq, (uint16_t)(vq->last_used + 1));
	CHECK_EQ(rng_once(f, vq, 32), 32, "EVENT_IDX: request before used_event served");
	CHECK_EQ(vuf_vq_wait_call(vq, QUIET_MS), 0, "EVENT_IDX: no call while used_event is not reached");
	/* The next one passes it. */
	uint64_t gpa = pattern_buf(f, 32);
	struct vuf_buf b = { gpa, 32 };
	vuf_vq_add(vq, NULL, 0, &b, 1, false);
	vuf_vq_kick(vq);
	CHECK_EQ(vuf_vq_wait_call(vq, WAIT_MS), 1, "EVENT_IDX: call once used_event is reached");
	CHECK(vuf_vq_wait_used(vq, &id, &len, WAIT_MS) == 0 && len == 32, "EVENT_IDX: that request served");
	/*
	 * The device publishes avail_event: once it is idle again it asks for a kick
	 * for the very next request (it may write it after the call, so wait).
	 */
	volatile uint16_t *avail_event = (uint16_t *)&vq->used->ring[vq->num];
	until = vuf_now_ms() + WAIT_MS;
	while (*avail_event != vq->avail_idx && vuf_now_ms() < until)
		usleep(1000);
	CHECK_EQ(*avail_event, vq->avail_idx, "EVENT_IDX: idle device's avail_event is the next avail index");
	uint16_t old = vq->avail_idx;
	vuf_vq_add(vq, NULL, 0, &b, 1, false);
	CHECK(vuf_vq_kick_needed(vq, old), "EVENT_IDX: avail_event asks for a kick for the next request");
	vuf_vq_kick(vq);
	vuf_vq_wait_used(vq, NULL, NULL, WAIT_MS);
	vuf_close(f);

	/* Without EVENT_IDX: VRING_AVAIL_F_NO_INTERRUPT suppresses the call. */
	f = ready(ALL_F & ~F(VIRTIO_RING_F_EVENT_IDX), STD_PF);
	vq = f ? vuf_vq_setup(f, 0, 64, 0) : NULL;
	if (!CHECK(vq != NULL, "NO_INTERRUPT: session without EVENT_IDX"))
		goto out;
	rng_once(f, vq, 32);
	CHECK_EQ(vuf_vq_wait_call(vq, WAIT_MS), 1, "NO_INTERRUPT: call without the flag");
	vuf_vq_set_avail_flags(vq, VRING_AVAIL_F_NO_INTERRUPT);
	CHECK_EQ(rng_once(f, vq, 32), 32, "NO_INTERRUPT: request served with the flag set");
	CHECK_EQ(vuf_vq_wait_call(vq, QUIET_MS), 0, "NO_INTERRUPT: flag honoured (no call)");
	vuf_vq_set_avail_flags(vq, 0);
	rng_once(f, vq, 32);
	CHECK_EQ(vuf_vq_wait_call(vq, WAIT_MS), 1, "NO_INTERRUPT: call again once the flag is cleared");
	volatile uint16_t *used_flags = &vq->used->flags;
	until = vuf_now_ms() + WAIT_MS;
	while ((*used_flags & VRING_USED_F_NO_NOTIFY) && vuf_now_ms() < until)
		usleep(1000);
	uint16_t old2 = vq->avail_idx;
	vuf_vq_add(vq, NULL, 0, &b, 1, false);
	CHECK(vuf_vq_kick_needed(vq, old2), "NO_INTERRUPT: used->flags does not suppress kicks when idle");
	vuf_vq_kick(vq);
	vuf_vq_wait_used(vq, NULL, NULL, WAIT_MS);
out:
	vuf_close(f);
}

/* ---- malformed messages ---------------------------------------------------- */

static struct vuf *mal_begin(uint64_t pf)
{
	settle();
	return ready(ALL_F, pf);
}

/* Common end of every malformed case: alive, no fd leak, a new session works. */
static void mal_end(const char *name, struct vuf *f)
{
	vuf_close(f);
	CHECK(vuf_backend_alive(be), "malformed: %s: back-end alive", name);
	int n = settle();
	/* Fewer is no leak: an fd the idle count caught in passing (a loaded machine) has gone. */
	CHECK(n <= idle_fds, "malformed: %s: back-end fd count back to idle", name);
	if (n < idle_fds)
		idle_fds = n;
	if (n > idle_fds) {
		/* Leaked: measure later cases from here, so each does not wait out the leak. */
		check_note("%s: back-end leaked %d fds", name, n - idle_fds);
		idle_fds = n;
	}
	CHECK(fresh_works(sock_a), "malformed: %s: a new connection works afterwards", name);
	ensure_backend(name);
}

static void expect_closed(const char *name, struct vuf *f)
{
	CHECK_EQ(vuf_wait_closed(f, WAIT_MS), 1, "malformed: %s: connection closed", name);
}

static void expect_nack(const char *name, struct vuf *f, int r, uint64_t ack)
{
	if (r < 0)
		check_note("%s: %s", name, vuf_error(f));
	CHECK(r == 0 && ack != 0, "malformed: %s: failure ack", name);
	CHECK(vuf_ping(f) == 0, "malformed: %s: connection stays", name);
}

/* Sends a header + payload and expects the connection to close. */
static void mal_close(const char *name, uint32_t req, uint32_t flags, const void *payload,
		      uint32_t size, const int *fds, int nfds)
{
	struct vuf *f = mal_begin(STD_PF);

	if (f) {
		vuf_send(f, req, flags, payload, size, fds, nfds);
		expect_closed(name, f);
	} else {
		CHECK(0, "malformed: %s: session", name);
	}
	mal_end(name, f);
}

/* Sends with NEED_REPLY (REPLY_ACK negotiated) and expects a failure ack. */
static void mal_nack(const char *name, uint64_t pf, uint32_t req, const void *payload, uint32_t size,
		     const int *fds, int nfds)
{
	struct vuf *f = mal_begin(pf);
	uint64_t ack = 0;

	if (f) {
		int r = vuf_send_ack(f, req, payload, size, fds, nfds, &ack);
		expect_nack(name, f, r, ack);
	} else {
		CHECK(0, "malformed: %s: session", name);
	}
	mal_end(name, f);
}

/*
 * The malformed messages that are one send each, on a fresh session: CLOSE cases
 * go out with exactly the flags given and must close the connection; NACK cases
 * go out with NEED_REPLY on a session with protocol features pf and must get a
 * failure ack, the connection kept. p holds the payload (the first size bytes are
 * sent, zeros past what is set); nfds eventfds ride along.
 */
struct mal_case {
	const char *name;
	bool nack;
	uint64_t pf;
	uint32_t req, flags;
	uint32_t size;
	int nfds;
	union {
		uint64_t u64;
		struct vu_vring_state st;
		struct vu_vring_addr addr;
		uint8_t bytes[sizeof(union vu_payload) + 8];
	} p;
};
#define CLOSE(name, req, flags, size, nfds, ...) { name, false, STD_PF, req, flags, size, nfds, { __VA_ARGS__ } }
#define NACK(name, pf, req, size, nfds, ...) { name, true, pf, req, 0, size, nfds, { __VA_ARGS__ } }

static const struct mal_case mal_cases[] = {
	/* Header flags. */
	CLOSE("version 0 in flags", VU_REQ_GET_FEATURES, 0x0, 0, 0),
	CLOSE("version 2 in flags", VU_REQ_GET_FEATURES, 0x2, 0, 0),
	CLOSE("version 3 in flags", VU_REQ_GET_FEATURES, 0x3, 0, 0),
	CLOSE("reply flag on a request", VU_REQ_GET_FEATURES, 0x5, 0, 0),
	CLOSE("reply flag on SET_FEATURES", VU_REQ_SET_FEATURES, 0x5, 8, 0, .u64 = ALL_F),

	/* Sizes. */
	CLOSE("size bigger than the payload union (sent)", VU_REQ_SET_FEATURES, VU_FLAG_VERSION,
	      sizeof(union vu_payload) + 8, 0),
	CLOSE("SET_FEATURES with size 4", VU_REQ_SET_FEATURES, VU_FLAG_VERSION, 4, 0, .u64 = ALL_F),
	CLOSE("SET_FEATURES with size 16", VU_REQ_SET_FEATURES, VU_FLAG_VERSION, 16, 0),
	CLOSE("SET_FEATURES with size 0", VU_REQ_SET_FEATURES, VU_FLAG_VERSION, 0, 0),
	CLOSE("GET_FEATURES with size 8", VU_REQ_GET_FEATURES, VU_FLAG_VERSION, 8, 0),
	CLOSE("SET_VRING_NUM with size 12", VU_REQ_SET_VRING_NUM, VU_FLAG_VERSION, 12, 0),
	CLOSE("SET_VRING_NUM with size 4", VU_REQ_SET_VRING_NUM, VU_FLAG_VERSION, 4, 0, .st = { 0, 64 }),
	CLOSE("SET_VRING_ADDR with size 32", VU_REQ_SET_VRING_ADDR, VU_FLAG_VERSION, 32, 0),
	CLOSE("SET_VRING_NUM with size 12 and NEED_REPLY", VU_REQ_SET_VRING_NUM,
	      VU_FLAG_VERSION | VU_FLAG_NEED_REPLY, 12, 0),

	/* Fds where they do not belong: the connection closes and every fd is closed. */
	CLOSE("9 fds on SET_VRING_CALL", VU_REQ_SET_VRING_CALL, VU_FLAG_VERSION, 8, 9, .u64 = 0),
	CLOSE("3 fds on GET_FEATURES", VU_REQ_GET_FEATURES, VU_FLAG_VERSION, 0, 3),
	CLOSE("1 fd on SET_VRING_NUM", VU_REQ_SET_VRING_NUM, VU_FLAG_VERSION, 8, 1, .st = { 0, 64 }),
	CLOSE("2 fds on SET_VRING_KICK", VU_REQ_SET_VRING_KICK, VU_FLAG_VERSION, 8, 2, .u64 = 0),
	CLOSE("no fd on SET_BACKEND_REQ_FD", VU_REQ_SET_BACKEND_REQ_FD, VU_FLAG_VERSION, 0, 0),
	CLOSE("no fd on ADD_MEM_REG", VU_REQ_ADD_MEM_REG, VU_FLAG_VERSION, 40, 0),

	/* Unknown requests. */
	CLOSE("unknown request 9999 without NEED_REPLY", 9999, VU_FLAG_VERSION, 0, 0),
	CLOSE("unknown request 9999 with an fd", 9999, VU_FLAG_VERSION | VU_FLAG_NEED_REPLY, 0, 1),
	NACK("unknown request 9999 with NEED_REPLY", STD_PF, 9999, 0, 0),
	NACK("unknown request 9999 with NEED_REPLY and 8 bytes", STD_PF, 9999, 8, 0),
	NACK("request 0 with NEED_REPLY", STD_PF, 0, 0, 0),
	NACK("request VU_REQ_MAX with NEED_REPLY", STD_PF, VU_REQ_MAX, 0, 0),
	NACK("SET_LOG_BASE (not offered) with NEED_REPLY", STD_PF, VU_REQ_SET_LOG_BASE, 16, 0),

	/* Semantically invalid, with NEED_REPLY: failure ack, the connection stays. */
	NACK("SET_VRING_NUM for ring 1 (of 1)", STD_PF, VU_REQ_SET_VRING_NUM, 8, 0, .st = { 1, 64 }),
	NACK("SET_VRING_NUM for ring 255", STD_PF, VU_REQ_SET_VRING_NUM, 8, 0, .st = { 255, 64 }),
	NACK("SET_VRING_NUM for ring 0x10000", STD_PF, VU_REQ_SET_VRING_NUM, 8, 0, .st = { 0x10000, 64 }),
	NACK("SET_VRING_BASE for ring 1", STD_PF, VU_REQ_SET_VRING_BASE, 8, 0, .st = { 1, 0 }),
	NACK("SET_VRING_ENABLE for ring 2", STD_PF, VU_REQ_SET_VRING_ENABLE, 8, 0, .st = { 2, 1 }),
	NACK("SET_VRING_ADDR for ring 1", STD_PF, VU_REQ_SET_VRING_ADDR, sizeof(struct vu_vring_addr), 0,
	     .addr = { .index = 1 }),
	NACK("SET_VRING_KICK for ring 1 (fd closed)", STD_PF, VU_REQ_SET_VRING_KICK, 8, 1, .u64 = 1),
	NACK("SET_VRING_CALL for ring 1 (fd closed)", STD_PF, VU_REQ_SET_VRING_CALL, 8, 1, .u64 = 1),
	NACK("SET_VRING_ERR for ring 1 (fd closed)", STD_PF, VU_REQ_SET_VRING_ERR, 8, 1, .u64 = 1),
	NACK("SET_VRING_KICK without fd and without NOFD", STD_PF, VU_REQ_SET_VRING_KICK, 8, 0, .u64 = 0),
	NACK("SET_VRING_CALL with NOFD and an fd", STD_PF, VU_REQ_SET_VRING_CALL, 8, 1,
	     .u64 = VU_VRING_NOFD_MASK),
	NACK("VRING_KICK for ring 1", RNG_PF, VU_REQ_VRING_KICK, 8, 0, .st = { 1, 0 }),
	NACK("VRING_KICK without INBAND_NOTIFICATIONS", STD_PF, VU_REQ_VRING_KICK, 8, 0, .st = { 0, 0 }),
	NACK("RESET_DEVICE without its protocol feature", STD_PF & ~PF(RESET_DEVICE), VU_REQ_RESET_DEVICE,
	     0, 0),
	NACK("SET_PROTOCOL_FEATURES with CONFIG (not offered)", STD_PF, VU_REQ_SET_PROTOCOL_FEATURES, 8, 0,
	     .u64 = PF(CONFIG) | PF(REPLY_ACK)),
	NACK("SET_FEATURES with ACCESS_PLATFORM (not offered)", STD_PF, VU_REQ_SET_FEATURES, 8, 0,
	     .u64 = F(VIRTIO_F_ACCESS_PLATFORM) | ALL_F),
	NACK("SET_VRING_ENABLE with 2", STD_PF, VU_REQ_SET_VRING_ENABLE, 8, 0, .st = { 0, 2 }),
	NACK("SET_VRING_NUM 0", STD_PF, VU_REQ_SET_VRING_NUM, 8, 0, .st = { 0, 0 }),
	NACK("SET_VRING_NUM 3", STD_PF, VU_REQ_SET_VRING_NUM, 8, 0, .st = { 0, 3 }),
	NACK("SET_VRING_NUM 100", STD_PF, VU_REQ_SET_VRING_NUM, 8, 0, .st = { 0, 100 }),
	NACK("SET_VRING_NUM 32769", STD_PF, VU_REQ_SET_VRING_NUM, 8, 0, .st = { 0, 32769 }),
	NACK("SET_VRING_NUM 65536", STD_PF, VU_REQ_SET_VRING_NUM, 8, 0, .st = { 0, 65536 }),

	/* Semantically invalid without NEED_REPLY: the back-end closes the connection. */
	CLOSE("SET_VRING_NUM for ring 1 without NEED_REPLY", VU_REQ_SET_VRING_NUM, VU_FLAG_VERSION, 8, 0,
	      .st = { 1, 64 }),
	CLOSE("SET_VRING_NUM 3 without NEED_REPLY", VU_REQ_SET_VRING_NUM, VU_FLAG_VERSION, 8, 0,
	      .st = { 0, 3 }),
};
#undef CLOSE
#undef NACK

static void test_malformed(void)
{
	struct vu_vring_state st;
	int efd[9];

	for (int i = 0; i < 9; i++)
		efd[i] = eventfd(0, EFD_CLOEXEC);

	for (unsigned k = 0; k < sizeof(mal_cases) / sizeof(mal_cases[0]); k++) {
		const struct mal_case *c = &mal_cases[k];
		if (c->nack)
			mal_nack(c->name, c->pf, c->req, c->p.bytes, c->size, efd, c->nfds);
		else
			mal_close(c->name, c->req, c->flags, c->p.bytes, c->size, efd, c->nfds);
	}

	/* The cases that take more than one send, or check more than the table can say. */
	{
		/* The header claims a huge size; only the header goes out. */
		struct vuf *f = mal_begin(STD_PF);
		struct vu_hdr h = { VU_REQ_SET_FEATURES, VU_FLAG_VERSION, 0xffffffffu };
		if (f) {
			vuf_send_bytes(f, &h, sizeof(h), NULL, 0);
			expect_closed("header with size 0xffffffff", f);
		}
		mal_end("header with size 0xffffffff", f);
	}

	/* Memory tables that do not add up: region i describes (and fd i is) test region i % 2. */
	static const struct {
		const char *name;
		uint32_t nregions;
		unsigned ndesc, size, nfds;
	} bad_tables[] = {
		{ "SET_MEM_TABLE with nregions 9", 9, 8, 8 + 8 * 32, 8 },
		{ "SET_MEM_TABLE with nregions 0", 0, 0, 8, 0 },
		{ "SET_MEM_TABLE with size not 8+32*n", 1, 1, 8 + 32 + 4, 1 },
		{ "SET_MEM_TABLE with nregions 2 but size for 1", 2, 2, 8 + 32, 1 },
		{ "SET_MEM_TABLE with 2 regions and 1 fd", 2, 2, 8 + 64, 1 },
		{ "SET_MEM_TABLE with 1 region and 2 fds", 1, 1, 8 + 32, 2 },
	};
	for (unsigned k = 0; k < sizeof(bad_tables) / sizeof(bad_tables[0]); k++) {
		struct vuf *f = mal_begin(STD_PF);
		if (f) {
			struct vu_mem_table t = { .nregions = bad_tables[k].nregions };
			int fds[8];
			for (unsigned i = 0; i < bad_tables[k].ndesc; i++)
				t.regions[i] = vuf_region_desc(f, i % 2);
			for (unsigned i = 0; i < bad_tables[k].nfds; i++)
				fds[i] = f->region[i % 2].fd;
			vuf_send(f, VU_REQ_SET_MEM_TABLE, VU_FLAG_VERSION, &t, bad_tables[k].size, fds,
				 (int)bad_tables[k].nfds);
			expect_closed(bad_tables[k].name, f);
		}
		mal_end(bad_tables[k].name, f);
	}

	/* Truncated messages, then the front-end goes away. */
	{
		struct vuf *f = mal_begin(STD_PF);
		struct vu_hdr h = { VU_REQ_GET_FEATURES, VU_FLAG_VERSION, 0 };
		if (f)
			vuf_send_bytes(f, &h, 6, NULL, 0);
		mal_end("truncated header then close", f);
	}
	{
		struct vuf *f = mal_begin(STD_PF);
		uint8_t msg[12 + 4];
		struct vu_hdr h = { VU_REQ_SET_FEATURES, VU_FLAG_VERSION, 8 };
		memcpy(msg, &h, 12);
		memset(msg + 12, 0, 4);
		if (f)
			vuf_send_bytes(f, msg, sizeof(msg), NULL, 0);
		mal_end("truncated payload then close", f);
	}
	{
		struct vuf *f = mal_begin(STD_PF);
		struct vu_hdr h = { VU_REQ_SET_VRING_CALL, VU_FLAG_VERSION, 8 };
		if (f)
			vuf_send_bytes(f, &h, sizeof(h), efd, 1);
		mal_end("header with an fd, payload missing, then close", f);
	}

	{
		/*
		 * A front-end that stops mid-message and stays connected must not stall
		 * the process: another socket's front-end is still answered.
		 */
		struct vuf *o = ready_on(sock_b, ALL_F, STD_PF);
		struct vuf *f = mal_begin(STD_PF);
		struct vu_hdr h = { VU_REQ_GET_FEATURES, VU_FLAG_VERSION, 0 };
		if (f && o) {
			vuf_send_bytes(f, &h, 6, NULL, 0);
			usleep(20000);
			o->timeout_ms = 1000;
			int64_t t = vuf_now_ms();
			int r = vuf_ping(o);
			check_note("partial header held open: other socket answered %d after %lld ms", r,
				   (long long)(vuf_now_ms() - t));
			CHECK(r == 0, "malformed: truncated header held open: another socket is still served");
		} else {
			CHECK(0, "malformed: truncated header held open: sessions");
		}
		vuf_close(o);
		mal_end("truncated header held open", f);
	}

	{
		struct vuf *f = mal_begin(STD_PF);
		uint64_t ack = 1;
		st = (struct vu_vring_state){ 0, 32768 };
		int r = f ? vuf_send_ack(f, VU_REQ_SET_VRING_NUM, &st, 8, NULL, 0, &ack) : -1;
		CHECK(r == 0 && ack == 0, "SET_VRING_NUM 32768 (the maximum) acked 0");
		vuf_close(f);
	}

	/* Ring addresses outside guest memory. */
	{
		struct vuf *f = mal_begin(STD_PF);
		uint64_t ack = 0;
		int r = -1;
		if (f && vuf_set_vring_num(f, 0, 64) == 0) {
			struct vu_vring_addr a = { .index = 0, .desc_user_addr = 0x1000,
						   .avail_user_addr = 0x2000, .used_user_addr = 0x3000 };
			r = vuf_send_ack(f, VU_REQ_SET_VRING_ADDR, &a, sizeof(a), NULL, 0, &ack);
		}
		expect_nack("SET_VRING_ADDR outside guest memory", f, r, ack);
		mal_end("SET_VRING_ADDR outside guest memory", f);
	}
	{
		struct vuf *f = mal_begin(STD_PF);
		uint64_t ack = 0;
		int r = -1;
		if (f && vuf_set_vring_num(f, 0, 256) == 0) {
			/* The used ring starts 100 bytes before the end of region 1 (hole after it). */
			uintptr_t end = (uintptr_t)f->region[1].host + f->region[1].size;
			uintptr_t base = (uintptr_t)f->region[0].host;
			struct vu_vring_addr a = { .index = 0, .desc_user_addr = base,
						   .avail_user_addr = base + 8192,
						   .used_user_addr = (end - 100) & ~(uintptr_t)3 };
			r = vuf_send_ack(f, VU_REQ_SET_VRING_ADDR, &a, sizeof(a), NULL, 0, &ack);
		}
		expect_nack("SET_VRING_ADDR with the used ring running past memory", f, r, ack);
		mal_end("SET_VRING_ADDR with the used ring running past memory", f);
	}

	/* Memory regions that cannot be right. */
	struct { const char *name; uint64_t gpa, size, off; bool uva_abs; uint64_t uva; } regs[] = {
		{ "region gpa+size overflows", 0xfffffffffffff000ull, REGION_SIZE, 0, false, 0 },
		{ "region userspace_addr+size overflows", VUF_RAM_BASE, REGION_SIZE, 0, true,
		  0xfffffffffffff000ull },
		{ "region mmap_offset beyond the fd size", VUF_RAM_BASE, REGION_SIZE, 64ull << 20, false, 0 },
		{ "region mmap_offset+size overflows", VUF_RAM_BASE, REGION_SIZE, 0xfffffffffffff000ull, false, 0 },
		{ "region size beyond the fd size", VUF_RAM_BASE, REGION_SIZE * 4, 0, false, 0 },
		{ "region of size 0", VUF_RAM_BASE, 0, 0, false, 0 },
	};
	for (unsigned i = 0; i < sizeof(regs) / sizeof(regs[0]); i++) {
		char name[120];
		uint64_t ack = 0;
		struct vuf *g = mal_begin(STD_PF);
		struct vu_mem_region d = { 0 };
		if (g)
			d = (struct vu_mem_region){
				.guest_phys_addr = regs[i].gpa, .memory_size = regs[i].size,
				.userspace_addr = regs[i].uva_abs ? regs[i].uva : (uintptr_t)g->region[0].host,
				.mmap_offset = regs[i].off };
		/* As a whole new table (replacing the valid one). */
		snprintf(name, sizeof(name), "SET_MEM_TABLE %s", regs[i].name);
		if (g) {
			struct vu_mem_table t = { .nregions = 1, .regions = { d } };
			int r = vuf_send_ack(g, VU_REQ_SET_MEM_TABLE, &t, 8 + 32, &g->region[0].fd, 1, &ack);
			expect_nack(name, g, r, ack);
		} else {
			CHECK(0, "malformed: %s: session", name);
		}
		mal_end(name, g);
		/* As one more region, away from the mapped ones. */
		snprintf(name, sizeof(name), "ADD_MEM_REG %s", regs[i].name);
		g = mal_begin(STD_PF);
		if (g) {
			struct vu_mem_single m = { .region = d };
			if (m.region.guest_phys_addr == VUF_RAM_BASE)
				m.region.guest_phys_addr = 0x40000000;
			m.region.userspace_addr = regs[i].uva_abs ? regs[i].uva : (uintptr_t)g->region[0].host;
			int r = vuf_send_ack(g, VU_REQ_ADD_MEM_REG, &m, sizeof(m), &g->region[0].fd, 1, &ack);
			expect_nack(name, g, r, ack);
		} else {
			CHECK(0, "malformed: %s: session", name);
		}
		mal_end(name, g);
	}
	{
		struct vuf *f = mal_begin(STD_PF);
		uint64_t ack = 0;
		int r = -1;
		if (f) {
			struct vu_mem_single m = { .region = vuf_region_desc(f, 0) };
			m.region.guest_phys_addr += 4096; /* overlaps region 0 of the table sent */
			r = vuf_send_ack(f, VU_REQ_ADD_MEM_REG, &m, sizeof(m), &f->region[0].fd, 1, &ack);
		}
		expect_nack("ADD_MEM_REG overlapping a mapped region", f, r, ack);
		mal_end("ADD_MEM_REG overlapping a mapped region", f);
	}
	{
		struct vuf *f = mal_begin(STD_PF);
		uint64_t ack = 0;
		int r = -1;
		if (f) {
			struct vu_mem_single m = { .region = vuf_region_desc(f, 0) };
			m.region.guest_phys_addr = 0x40000000;
			r = vuf_send_ack(f, VU_REQ_REM_MEM_REG, &m, sizeof(m), NULL, 0, &ack);
		}
		expect_nack("REM_MEM_REG of a region that does not exist", f, r, ack);
		mal_end("REM_MEM_REG of a region that does not exist", f);
	}

	{
		struct vuf *f = mal_begin(STD_PF);
		if (f) {
			struct vu_mem_table t = { .nregions = 1 };
			t.regions[0] = vuf_region_desc(f, 0);
			t.regions[0].mmap_offset = 64ull << 20;
			vuf_send(f, VU_REQ_SET_MEM_TABLE, VU_FLAG_VERSION, &t, 8 + 32, &f->region[0].fd, 1);
			expect_closed("SET_MEM_TABLE beyond the fd without NEED_REPLY", f);
		}
		mal_end("SET_MEM_TABLE beyond the fd without NEED_REPLY", f);
	}
	{
		/* Without REPLY_ACK negotiated, NEED_REPLY means nothing: invalid closes. */
		struct vuf *f = mal_begin(STD_PF & ~PF(REPLY_ACK));
		st = (struct vu_vring_state){ 1, 64 };
		if (f) {
			vuf_send(f, VU_REQ_SET_VRING_NUM, VU_FLAG_VERSION | VU_FLAG_NEED_REPLY, &st, 8, NULL, 0);
			expect_closed("SET_VRING_NUM for ring 1 with NEED_REPLY but no REPLY_ACK", f);
		}
		mal_end("SET_VRING_NUM for ring 1 with NEED_REPLY but no REPLY_ACK", f);
	}

	for (int i = 0; i < 9; i++)
		close(efd[i]);
}

/* ---- hostile descriptor tables ------------------------------------------- */

static struct vuf *other;          /* a session on the second socket, kept through the group */
static struct vuf_vq *other_vq;

struct hostile {
	struct vuf *f;
	struct vuf_vq *vq;
	uint64_t buf;     /* a valid 4 KiB guest buffer */
	uint64_t end;     /* the first guest address past guest memory */
};

static bool hostile_begin(struct hostile *h, uint64_t features)
{
	h->f = ready(features, STD_PF);
	h->vq = h->f ? vuf_vq_setup(h->f, 0, 8, 0) : NULL;
	h->buf = h->f ? vuf_alloc(h->f, 4096, 16) : 0;
	h->end = h->f ? h->f->region[1].gpa + h->f->region[1].size : 0;
	return h->vq && h->buf;
}

/* Offers descriptor 0 alone, pointing at addr/len: the shape of most hostile requests. */
static void hostile_push(struct hostile *h, uint64_t addr, uint32_t len, uint16_t flags)
{
	vuf_vq_write_desc(h->vq, 0, addr, len, flags, 0);
	vuf_vq_push_avail(h->vq, 0);
}

/*
 * Offers descriptor 0 as an indirect descriptor of length len, pointing at a fresh
 * table of size bytes; returns the table for the caller to fill before the kick.
 */
static struct vring_desc *hostile_indirect(struct hostile *h, uint32_t size, uint32_t len)
{
	uint64_t ind = vuf_alloc(h->f, size, 16);

	hostile_push(h, ind, len, VRING_DESC_F_INDIRECT);
	return ind ? vuf_gpa(h->f, ind, size) : NULL;
}

static void hostile_end(const char *name, struct hostile *h)
{
	uint64_t st = 0;

	if (!h->vq) {
		CHECK(0, "hostile: %s: session", name);
		vuf_close(h->f);
		ensure_backend(name);
		return;
	}
	vuf_vq_kick(h->vq);
	CHECK_EQ(vuf_vq_wait_err(h->vq, WAIT_MS), 1, "hostile: %s: err eventfd signalled", name);
	CHECK(vuf_get_status(h->f, &st) == 0 && (st & VIRTIO_STATUS_NEEDS_RESET),
	      "hostile: %s: GET_STATUS has NEEDS_RESET", name);
	CHECK_EQ(__atomic_load_n(&h->vq->used->idx, __ATOMIC_ACQUIRE), 0,
		 "hostile: %s: nothing put in the used ring", name);
	CHECK(vuf_backend_alive(be), "hostile: %s: back-end alive", name);
	CHECK(other_vq && rng_once(other, other_vq, 128) == 128,
	      "hostile: %s: the other connection still serves", name);
	vuf_close(h->f);
	CHECK(fresh_works(sock_a), "hostile: %s: a new connection works afterwards", name);
	ensure_backend(name);
}

static void test_hostile(void)
{
	struct hostile h;
	uint64_t ind;
	struct vring_desc *t;

	other = ready_on(sock_b, ALL_F, STD_PF);
	other_vq = other ? vuf_vq_setup(other, 0, 64, 0) : NULL;
	CHECK(other_vq && rng_once(other, other_vq, 128) == 128, "hostile: second socket serves (reference)");

	if (hostile_begin(&h, ALL_F)) {
		vuf_vq_write_desc(h.vq, 0, h.buf, 64, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
		vuf_vq_write_desc(h.vq, 1, h.buf + 64, 64, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 0);
		vuf_vq_push_avail(h.vq, 0);
	}
	hostile_end("descriptor loop (0 -> 1 -> 0)", &h);

	if (hostile_begin(&h, ALL_F)) {
		vuf_vq_write_desc(h.vq, 3, h.buf, 64, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 3);
		vuf_vq_push_avail(h.vq, 3);
	}
	hostile_end("descriptor pointing at itself", &h);

	if (hostile_begin(&h, ALL_F)) {
		/* All 8 descriptors chained, the last pointing back to the first: longer than the queue. */
		for (int i = 0; i < 8; i++)
			vuf_vq_write_desc(h.vq, i, h.buf + 16 * i, 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT,
					  (uint16_t)((i + 1) % 8));
		vuf_vq_push_avail(h.vq, 0);
	}
	hostile_end("chain longer than the queue size", &h);

	if (hostile_begin(&h, ALL_F)) {
		vuf_vq_write_desc(h.vq, 0, h.buf, 64, VRING_DESC_F_WRITE, 0);
		vuf_vq_push_avail(h.vq, 8);
	}
	hostile_end("head index == num in the avail ring", &h);

	if (hostile_begin(&h, ALL_F))
		vuf_vq_push_avail(h.vq, 0xffff);
	hostile_end("head index 0xffff in the avail ring", &h);

	if (hostile_begin(&h, ALL_F)) {
		vuf_vq_write_desc(h.vq, 0, h.buf, 64, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 8);
		vuf_vq_push_avail(h.vq, 0);
	}
	hostile_end("next index >= num", &h);

	if (hostile_begin(&h, ALL_F))
		hostile_push(&h, 0x1000, 64, VRING_DESC_F_WRITE);
	hostile_end("buffer below guest memory (gpa 0x1000)", &h);

	if (hostile_begin(&h, ALL_F))
		hostile_push(&h, h.end + (1 << 20), 64, VRING_DESC_F_WRITE);
	hostile_end("buffer above guest memory", &h);

	if (hostile_begin(&h, ALL_F))
		hostile_push(&h, h.end - 32, 64, VRING_DESC_F_WRITE);
	hostile_end("buffer running past the end of guest memory", &h);

	if (hostile_begin(&h, ALL_F))
		hostile_push(&h, 0xfffffffffffff000ull, 0x2000, VRING_DESC_F_WRITE);
	hostile_end("buffer address+len overflowing", &h);

	if (hostile_begin(&h, ALL_F))
		hostile_push(&h, h.buf, 0xffffffffu, VRING_DESC_F_WRITE);
	hostile_end("buffer of 4 GiB", &h);

	if (hostile_begin(&h, ALL_F)) {
		t = hostile_indirect(&h, 64, 16);
		t[0] = (struct vring_desc){ h.buf, 64, VRING_DESC_F_INDIRECT, 0 };
	}
	hostile_end("indirect table inside an indirect descriptor", &h);

	if (hostile_begin(&h, ALL_F)) {
		t = hostile_indirect(&h, 64, 24);
		t[0] = (struct vring_desc){ h.buf, 64, VRING_DESC_F_WRITE, 0 };
	}
	hostile_end("indirect table length 24 (not a multiple of 16)", &h);

	if (hostile_begin(&h, ALL_F))
		hostile_indirect(&h, 64, 0);
	hostile_end("indirect table length 0", &h);

	if (hostile_begin(&h, ALL_F)) {
		ind = vuf_alloc(h.f, 64, 16);
		t = vuf_gpa(h.f, ind, 64);
		t[0] = (struct vring_desc){ h.buf, 64, VRING_DESC_F_WRITE, 0 };
		vuf_vq_write_desc(h.vq, 0, ind, 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1);
		vuf_vq_write_desc(h.vq, 1, h.buf + 64, 64, VRING_DESC_F_WRITE, 0);
		vuf_vq_push_avail(h.vq, 0);
	}
	hostile_end("INDIRECT combined with NEXT", &h);

	if (hostile_begin(&h, ALL_F))
		hostile_push(&h, 0x2000, 64, VRING_DESC_F_INDIRECT);
	hostile_end("indirect table outside guest memory", &h);

	if (hostile_begin(&h, ALL_F)) {
		t = hostile_indirect(&h, 64, 64);
		for (int i = 0; i < 4; i++)
			t[i] = (struct vring_desc){ h.buf + 64 * i, 64, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT,
						    (uint16_t)((i + 1) % 4) };
	}
	hostile_end("loop inside an indirect table", &h);

	if (hostile_begin(&h, ALL_F)) {
		t = hostile_indirect(&h, 64, 32);
		t[0] = (struct vring_desc){ h.buf, 64, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 9 };
	}
	hostile_end("next index beyond an indirect table", &h);

	if (hostile_begin(&h, ALL_F)) {
		vuf_vq_write_desc(h.vq, 0, h.buf, 64, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
		vuf_vq_write_desc(h.vq, 1, h.buf + 64, 64, 0, 0);
		vuf_vq_push_avail(h.vq, 0);
	}
	hostile_end("device-readable descriptor after a device-writable one", &h);

	if (hostile_begin(&h, ALL_F))
		hostile_push(&h, h.buf, 64, 0);
	hostile_end("rng request with only a device-readable buffer", &h);

	if (hostile_begin(&h, ALL_F)) {
		vuf_vq_write_desc(h.vq, 0, h.buf, 64, VRING_DESC_F_WRITE, 0);
		for (int i = 0; i < 8; i++)
			h.vq->avail->ring[i] = 0;
		vuf_vq_set_avail_idx(h.vq, 9);
	}
	hostile_end("avail idx 9 ahead with a queue of 8", &h);

	if (hostile_begin(&h, ALL_F)) {
		vuf_vq_write_desc(h.vq, 0, h.buf, 64, VRING_DESC_F_WRITE, 0);
		vuf_vq_set_avail_idx(h.vq, 0x8000);
	}
	hostile_end("avail idx 0x8000 ahead", &h);

	if (hostile_begin(&h, ALL_F & ~F(VIRTIO_RING_F_INDIRECT_DESC))) {
		t = hostile_indirect(&h, 64, 16);
		t[0] = (struct vring_desc){ h.buf, 64, VRING_DESC_F_WRITE, 0 };
	}
	hostile_end("indirect descriptor without INDIRECT_DESC negotiated", &h);

	if (hostile_begin(&h, ALL_F)) {
		/* 32769 entries (512 KiB): longer than any queue, so longer than any legal chain. */
		uint32_t len = (VU_VRING_MAX_SIZE + 1) * sizeof(struct vring_desc);
		t = hostile_indirect(&h, len, len);
		for (unsigned i = 0; t && i <= VU_VRING_MAX_SIZE; i++)
			t[i] = (struct vring_desc){ h.buf, 1, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, (uint16_t)(i + 1) };
	}
	hostile_end("indirect table of 32769 descriptors", &h);

	/* A broken ring is set up anew by SET_VRING_ADDR (what a front-end does on reset). */
	if (hostile_begin(&h, ALL_F)) {
		hostile_push(&h, 0x1000, 64, VRING_DESC_F_WRITE);
		vuf_vq_kick(h.vq);
		CHECK_EQ(vuf_vq_wait_err(h.vq, WAIT_MS), 1, "hostile: broken ring reported before a re-setup");
		uint64_t st = 0;
		/* Reset the device and bring the ring up again with fresh rings. */
		vuf_reset_device(h.f);
		vuf_vq_free(h.vq);
		vuf_set_features(h.f, ALL_F);
		h.vq = vuf_vq_setup(h.f, 0, 8, 0);
		CHECK(h.vq && rng_once(h.f, h.vq, 64) == 64, "hostile: after RESET_DEVICE the ring works again");
		CHECK(vuf_get_status(h.f, &st) == 0 && !(st & VIRTIO_STATUS_NEEDS_RESET),
		      "hostile: after RESET_DEVICE NEEDS_RESET is clear");
	} else {
		CHECK(0, "hostile: re-setup session");
	}
	vuf_close(h.f);
	vuf_close(other);
	other = NULL;
	other_vq = NULL;
	settle();
}

/* ---- lifecycle ------------------------------------------------------------ */

static void test_lifecycle(void)
{
	long rss0 = -1, rss1 = -1;
	int fds0 = -1, fds1 = -1, idle = -1, ok = 0;
	char sock_c[sizeof(sock_a)];

	/*
	 * A back-end of its own. Under ASan freed memory sits in a quarantine that
	 * grows VmRSS by itself: turn it off so growth means what it says (leaks are
	 * LeakSanitizer's to find).
	 */
	const char *old = getenv("ASAN_OPTIONS");
	char *saved = old ? strdup(old) : NULL;
	char opts[512];
	snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=0:thread_local_quarantine_size_kb=0",
		 old ? old : "", old && *old ? ":" : "");
	setenv("ASAN_OPTIONS", opts, 1);
	snprintf(sock_c, sizeof(sock_c), "%s/c.sock", dir);
	struct vuf_backend *lb = vuf_backend_start("rng", NULL, sock_c);
	if (saved)
		setenv("ASAN_OPTIONS", saved, 1);
	else
		unsetenv("ASAN_OPTIONS");
	free(saved);
	if (!CHECK(lb != NULL, "lifecycle: back-end of its own starts"))
		return;
	idle = idle_count(lb, sock_c);

	for (int i = 0; i < 100; i++) {
		struct vuf *f = open_conn(sock_c, 1, 0);
		struct vuf_vq *vq = NULL;
		if (f && vuf_negotiate(f, ALL_F, STD_PF) == 0)
			vq = vuf_vq_setup(f, 0, 64, 0);
		if (vq && rng_once(f, vq, 4096) == 4096)
			ok++;
		vuf_close(f);
		if (i == 9) {
			fds0 = vuf_backend_wait_fd_count(lb, idle, 1500);
			rss0 = vuf_backend_rss_kb(lb);
		}
	}
	/*
	 * Waited for down to the lower of the two: "idle" may have caught a transient fd
	 * (a sanitizer's, a closing session's), and then so may this count, one above
	 * cycle 10's without anything leaked.
	 */
	fds1 = vuf_backend_wait_fd_count(lb, fds0 > 0 && fds0 < idle ? fds0 : idle, 1500);
	rss1 = vuf_backend_rss_kb(lb);
	check_note("lifecycle: fds %d -> %d (idle %d), VmRSS %ld -> %ld KiB", fds0, fds1, idle, rss0, rss1);
	CHECK_EQ(ok, 100, "lifecycle: 100 connect/negotiate/ring/request/disconnect cycles all served");
	CHECK(fds1 > 0 && fds1 <= idle, "lifecycle: back-end fd count back to idle after 100 cycles");
	CHECK(fds1 <= fds0, "lifecycle: no fd growth between cycle 10 and cycle 100");
	CHECK(rss0 > 0 && rss1 > 0 && rss1 - rss0 < 1024, "lifecycle: VmRSS growth under 1 MiB over 90 cycles");
	CHECK_EQ(vuf_backend_stop(lb, 3000), 0, "lifecycle: back-end exits 0 on SIGTERM when idle");
}

/* ---- the dirty log of a live migration ----------------------------------- */

/* One rng request for a 2-page buffer at gpa; true when it completed. */
static bool rng_at(struct vuf_vq *vq, uint64_t gpa)
{
	struct vuf_buf b = { gpa, 2 * VU_LOG_PAGE };
	uint32_t id, len;
	return vuf_vq_add(vq, NULL, 0, &b, 1, false) >= 0 && vuf_vq_kick(vq) == 0 &&
	       vuf_vq_wait_used(vq, &id, &len, WAIT_MS) == 0;
}

/*
 * What the back-end writes into guest memory is marked in the log — the request's
 * buffer and the used ring (VRING_F_LOG) — and nothing else; a log replaced
 * mid-run gets the next writes; with LOG_ALL acked off nothing is marked.
 */
static void test_dirty_log(void)
{
	struct vuf *f = ready(ALL_F | F(VHOST_F_LOG_ALL), STD_PF | PF(LOG_SHMFD));
	struct vuf_vq *vq = f ? vuf_vq_setup(f, 0, 64, 0) : NULL;
	uint64_t buf = f ? vuf_alloc(f, 2 * VU_LOG_PAGE, VU_LOG_PAGE) : 0;
	struct vuf_log a = { .fd = -1 }, b = { .fd = -1 };

	if (!CHECK(vq && buf && vuf_log_init(&a, 4096) && vuf_log_init(&b, 4096) &&
		   (f->features & F(VHOST_F_LOG_ALL)) && (f->protocol_features & PF(LOG_SHMFD)),
		   "dirty log: LOG_ALL and LOG_SHMFD negotiated"))
		goto out;
	CHECK(vuf_log_send(f, &a) == 0, "dirty log: SET_LOG_BASE answered with its reply");
	CHECK(vuf_log_ring(vq) == 0, "dirty log: ring with VRING_F_LOG");

	CHECK(rng_at(vq, buf), "dirty log: request completes");
	CHECK_EQ(vuf_log_count_range(&a, buf, 2 * VU_LOG_PAGE), 2, "dirty log: both pages of the buffer marked");
	CHECK(vuf_log_marked(&a, vq->used_gpa), "dirty log: the used ring's page marked");
	CHECK(!vuf_log_marked(&a, vq->desc_gpa) && !vuf_log_marked(&a, vq->avail_gpa),
	      "dirty log: descriptor and avail pages (read only) not marked");
	CHECK_EQ(vuf_log_count(&a), 3, "dirty log: nothing else marked");

	CHECK(vuf_log_send(f, &b) == 0, "dirty log: log replaced mid-run");
	vuf_log_clear(&a);
	CHECK(rng_at(vq, buf) && vuf_log_marked(&b, buf) && vuf_log_count(&a) == 0,
	      "dirty log: the new log gets the writes, the old one none");

	vuf_log_clear(&b);
	CHECK(vuf_set_features(f, f->features & ~F(VHOST_F_LOG_ALL)) == 0 && rng_at(vq, buf) &&
	      vuf_log_count(&b) == 0, "dirty log: LOG_ALL off: nothing marked");

	CHECK(vuf_backend_alive(be) && vuf_ping(f) == 0, "dirty log: the session goes on");
out:
	vuf_log_free(&a);
	vuf_log_free(&b);
	vuf_close(f);
}

/*
 * The same with a packed ring: the buffer's pages and the descriptor ring's page
 * (the used descriptor written there) are marked, the driver's area is not.
 */
static void test_dirty_log_packed(void)
{
	struct vuf *f = ready(ALL_F | F(VIRTIO_F_RING_PACKED) | F(VHOST_F_LOG_ALL), STD_PF | PF(LOG_SHMFD));
	struct vuf_vq *vq = f ? vuf_vq_setup(f, 0, 64, 0) : NULL;
	uint64_t buf = f ? vuf_alloc(f, 2 * VU_LOG_PAGE, VU_LOG_PAGE) : 0;
	struct vuf_log a = { .fd = -1 };

	if (!CHECK(vq && vq->packed && buf && vuf_log_init(&a, 4096) && vuf_log_send(f, &a) == 0 &&
		   vuf_log_ring(vq) == 0, "dirty log packed: a logged packed ring"))
		goto out;
	vuf_log_clear(&a);
	CHECK(rng_at(vq, buf), "dirty log packed: request completes");
	CHECK_EQ(vuf_log_count_range(&a, buf, 2 * VU_LOG_PAGE), 2, "dirty log packed: both pages of the buffer marked");
	CHECK(vuf_log_marked(&a, vq->desc_gpa), "dirty log packed: the descriptor ring's page marked");
	CHECK(!vuf_log_marked(&a, vq->avail_gpa) || vq->avail_gpa / VU_LOG_PAGE == vq->desc_gpa / VU_LOG_PAGE,
	      "dirty log packed: the driver area (read only) not marked");
out:
	vuf_log_free(&a);
	vuf_close(f);
}

/*
 * Packed rings end to end (rng): offered and negotiated; a ring of 100 entries (not
 * a power of 2); requests direct and indirect, 1 to 3 buffers, around the ring
 * several times; a notification for each with EVENT_IDX's descriptor mode; GET/
 * SET_VRING_BASE with the wrap bits, and the ring going on from the base it is
 * given back; bases past the queue size and a layout change under a running ring
 * refused; DPDK's base (the avail half only).
 */
static void test_packed(void)
{
	struct vuf *f = ready(ALL_F | F(VIRTIO_F_RING_PACKED), STD_PF);
	struct vuf_vq *vq = NULL;
	uint64_t ack = 0;

	if (!CHECK(f && (f->offered_features & F(VIRTIO_F_RING_PACKED)) && (f->features & F(VIRTIO_F_RING_PACKED)),
		   "packed: offered and negotiated"))
		goto out;
	vq = vuf_vq_setup(f, 0, 100, 0);
	if (!CHECK(vq && vq->packed, "packed: a ring of 100 entries (SET_VRING_NUM 100 accepted)"))
		goto out;
	uint64_t bufs = vuf_alloc(f, 3 * 256, 16);
	unsigned ok = 0, calls = 0, n = 300;
	for (unsigned i = 0; i < n && bufs; i++) {
		vuf_vq_want_call_at_next(vq);
		unsigned nb = 1 + i % 3;
		struct vuf_buf b[3];
		for (unsigned k = 0; k < nb; k++) {
			b[k] = (struct vuf_buf){ bufs + 256 * k, 16 + 8 * k };
			memset(vuf_gpa(f, b[k].gpa, b[k].len), PATTERN, b[k].len);
		}
		uint32_t id, len, want = nb * 16 + 8 * (nb * (nb - 1) / 2);
		int head = vuf_vq_add(vq, NULL, 0, b, nb, i % 4 == 1);
		if (head >= 0 && vuf_vq_kick(vq) == 0 && vuf_vq_wait_used(vq, &id, &len, WAIT_MS) == 0 &&
		    id == (uint32_t)head && len == want && varied(vuf_gpa(f, b[nb - 1].gpa, b[nb - 1].len), b[nb - 1].len))
			ok++;
		calls += vuf_vq_wait_call(vq, 0) == 1 || vuf_vq_wait_call(vq, WAIT_MS) == 1;
	}
	CHECK_EQ(ok, n, "packed: %u requests of 1-3 buffers, direct and indirect, around the ring", n);
	CHECK_EQ(calls, n, "packed: EVENT_IDX descriptor mode: a notification for each");
	check_note("packed: the driver is at avail %u/%d, used %u/%d", vq->next_avail, vq->avail_wrap, vq->next_used,
		   vq->used_wrap);

	unsigned base = 0;
	uint32_t want = VU_PACKED_BASE(vq->next_avail, vq->avail_wrap, vq->next_used, vq->used_wrap);
	CHECK(vuf_get_vring_base(f, 0, &base) == 0 && base == want && (want & 0x80008000) != 0x80008000,
	      "packed: GET_VRING_BASE: positions and wrap counters (one of them 0 by now)");
	struct vu_vring_state st = { 0, want | 100 };
	CHECK(vuf_send_ack(f, VU_REQ_SET_VRING_BASE, &st, sizeof(st), NULL, 0, &ack) == 0 && ack != 0,
	      "packed: SET_VRING_BASE with the avail position past the queue size refused");
	st.num = want + (100u << 16);
	CHECK(vuf_send_ack(f, VU_REQ_SET_VRING_BASE, &st, sizeof(st), NULL, 0, &ack) == 0 && ack != 0,
	      "packed: SET_VRING_BASE with the used position past the queue size refused");
	CHECK(vuf_set_vring_base(f, 0, want) == 0 && vuf_set_vring_kick(f, 0, vq->kick_fd) == 0 &&
	      rng_once(f, vq, 64) == 64, "packed: the ring goes on from the base it was given back");
	CHECK(vuf_send_ack(f, VU_REQ_SET_FEATURES, &(uint64_t){ f->features & ~F(VIRTIO_F_RING_PACKED) }, 8, NULL, 0,
			   &ack) == 0 && ack != 0, "packed: the layout cannot change while the ring runs");
	CHECK(rng_once(f, vq, 64) == 64, "packed: the ring runs on");
	vuf_close(f);

	/* DPDK's virtio-user sends the avail half only: avail 0, wrap 1; used is taken to be there. */
	f = ready(ALL_F | F(VIRTIO_F_RING_PACKED), STD_PF);
	vq = f ? vuf_vq_alloc(f, 0, 64) : NULL;
	if (CHECK(vq && vuf_vq_start(vq, 0, VUF_VQ_NO_KICK) == 0 && vuf_set_vring_base(f, 0, 0x8000) == 0,
		  "packed: a ring started with base 0x8000") &&
	    CHECK(vuf_set_vring_kick(f, 0, vq->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) == 0,
		  "packed: base 0x8000: kick set")) {
		unsigned done = 0;
		for (unsigned i = 0; i < 70; i++)
			done += rng_once(f, vq, 32) == 32;
		CHECK(done == 70 && vuf_get_vring_base(f, 0, &base) == 0 && base == VU_PACKED_BASE(6, 0, 6, 0),
		      "packed: base 0x8000: 70 requests, then base 6/0, 6/0");
	}
out:
	vuf_close(f);
}

/*
 * More work than one turn of the loop may take (VU_VRING_TURN_BUDGET descriptors):
 * 256 requests of 64 descriptors each, kicked once. The ring goes on in later
 * turns by itself, and every request completes without another kick.
 */
static void test_turn_budget(void)
{
	struct vuf *f = ready(ALL_F, STD_PF);
	struct vuf_vq *vq = f ? vuf_vq_setup(f, 0, 256, 0) : NULL;
	uint64_t buf = f ? vuf_alloc(f, VUF_INDIRECT_MAX * 16, 16) : 0;
	struct vuf_buf in[VUF_INDIRECT_MAX];
	int added = 0;

	for (unsigned i = 0; i < VUF_INDIRECT_MAX; i++)
		in[i] = (struct vuf_buf){ buf + 16 * i, 16 };
	while (vq && buf && added < 256 && vuf_vq_add(vq, NULL, 0, in, VUF_INDIRECT_MAX, true) >= 0)
		added++;
	if (!CHECK(added == 256 && 256 * VUF_INDIRECT_MAX > 2 * VU_VRING_TURN_BUDGET,
		   "turn budget: 256 requests of %d descriptors queued", VUF_INDIRECT_MAX))
		goto out;
	vuf_vq_kick(vq);
	uint32_t id, len;
	int done = 0;
	while (done < 256 && vuf_vq_wait_used(vq, &id, &len, WAIT_MS) == 0)
		done++;
	CHECK_EQ(done, 256, "turn budget: all requests complete after one kick");
	CHECK(fresh_works(sock_b), "turn budget: the other socket serves");
out:
	vuf_close(f);
}

/*
 * A front-end that shrinks its guest-memory file under the back-end's mapping:
 * the back-end's next ring access would die of SIGBUS. Only that connection may
 * end; the process and its other socket keep serving.
 */
static void test_shrunk_memory(void)
{
	struct vuf *f = ready(ALL_F, STD_PF);
	struct vuf_vq *vq = f ? vuf_vq_setup(f, 0, 64, 0) : NULL;

	if (!CHECK(vq && rng_once(f, vq, 64) == 64, "shrunk memory: ring runs before"))
		goto out;
	/* The ring lives in region 0; from here on neither side may touch that memory. */
	CHECK(ftruncate(f->region[0].fd, 0) == 0, "shrunk memory: front-end truncates region 0");
	vuf_vq_kick(vq);
	CHECK_EQ(vuf_wait_closed(f, WAIT_MS), 1, "shrunk memory: that connection is closed");
	CHECK(vuf_backend_alive(be), "shrunk memory: the back-end survives (no SIGBUS death)");
	CHECK(fresh_works(sock_b), "shrunk memory: the other socket still serves");
	CHECK(fresh_works(sock_a), "shrunk memory: the same socket serves a new connection");
out:
	vuf_close(f);
}

static void test_sigterm(void)
{
	struct vuf *f = ready(ALL_F, STD_PF);
	struct vuf_vq *vq = f ? vuf_vq_setup(f, 0, 64, 0) : NULL;

	CHECK(vq && rng_once(f, vq, 64) == 64, "SIGTERM: connected session with a running ring");
	int64_t t0 = vuf_now_ms();
	int status = vuf_backend_stop(be, 3000);
	int64_t took = vuf_now_ms() - t0;
	be = NULL;
	be_pid = 0;
	CHECK_EQ(status, 0, "SIGTERM while connected: exit status 0");
	check_note("SIGTERM: the back-end took %lld ms to exit", (long long)took);
	CHECK(took < 2000, "SIGTERM while connected: exits within 2 s");
	CHECK_EQ(vuf_wait_closed(f, WAIT_MS), 1, "SIGTERM while connected: the connection is closed");
	vuf_close(f);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, on_alarm);
	alarm(120);

	snprintf(dir, sizeof(dir), "/tmp/vuf-proto-XXXXXX");
	if (!mkdtemp(dir)) {
		CHECK(0, "t-protocol: temporary directory");
		return check_exit();
	}
	snprintf(sock_a, sizeof(sock_a), "%s/a.sock", dir);
	snprintf(sock_b, sizeof(sock_b), "%s/b.sock", dir);
	if (!CHECK(start_backend(), "back-end starts and listens on two sockets")) {
		if (be)
			vuf_backend_stop(be, 1000);
		rmdir(dir);
		return check_exit();
	}
	check_note("back-end pid %d, %d fds when idle", (int)be->pid, idle_fds);

	int64_t t0 = vuf_now_ms();
	test_features();
	test_reply_format();
	test_config_without_pf();
	test_mem_slots();
	test_reset_device();
	test_inband();
	test_nofd_polling();
	test_on_the_fly();
	test_reset_owner();
	test_stopped();
	test_framing();
	ensure_backend("large");
	test_large();
	ensure_backend("ring states");
	test_ring_states();
	ensure_backend("data");
	test_data();
	test_mmap_offset();
	ensure_backend("notifications");
	test_notifications();
	ensure_backend("malformed");
	test_malformed();
	ensure_backend("hostile");
	test_hostile();
	ensure_backend("dirty log");
	test_dirty_log();
	ensure_backend("dirty log packed");
	test_dirty_log_packed();
	ensure_backend("packed");
	test_packed();
	ensure_backend("turn budget");
	test_turn_budget();
	ensure_backend("shrunk memory");
	test_shrunk_memory();
	ensure_backend("lifecycle");
	test_lifecycle();
	ensure_backend("sigterm");
	test_sigterm();
	check_note("t-protocol took %lld ms", (long long)(vuf_now_ms() - t0));

	if (be)
		vuf_backend_stop(be, 1000);
	unlink(sock_a);
	unlink(sock_b);
	rmdir(dir);
	return check_exit();
}
