/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * proto/msg.c on its own, over a socketpair: the reader (vu_msg_read) fed whole
 * messages, messages in pieces (headers and payloads split across reads, fds
 * on any piece), messages that end early, bad headers, the payload size and fd
 * count each request allows, too many fds; the writer (vu_msg_send,
 * vu_msg_reply) checked byte for byte. No fd may be left open by a refused
 * message: the process's fd count is compared before and after.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/msg.h"
#include "test/check.h"
#include "test/frontend.h"

#define V VU_FLAG_VERSION
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static int fe = -1, be = -1;         /* the front-end's end (tests write), the back-end's (msg reads) */
static struct vu_msg_reader rd;
static int efd[10];                  /* eventfds to attach: put(..., n) sends the first n */

/* A fresh connection and reader. */
static void reconnect(void)
{
	int sv[2];

	if (fe >= 0)
		close(fe);
	if (be >= 0)
		close(be);
	fe = be = -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0) {
		fe = sv[0];
		be = sv[1];
	}
	memset(&rd, 0, sizeof(rd));
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* Writes bytes (fds on them) to the front-end's end, whole. */
static void put(const void *buf, size_t len, int nfds)
{
	struct iovec iov = { (void *)buf, len };
	int r = vuf_sendmsg(fe, &iov, 1, efd, nfds);

	if (r < 0)
		check_note("sending %zu bytes failed: %s", len, strerror(-r));
}

/* A message as bytes: header then payload. */
struct wire {
	struct vu_hdr h;
	uint8_t p[sizeof(union vu_payload) + 16];
} __attribute__((packed));

static struct wire msg(uint32_t request, uint32_t flags, uint32_t size, const void *payload)
{
	struct wire w = { .h = { request, flags, size } };

	if (payload)
		memcpy(w.p, payload, size);
	return w;
}

/* Sends a whole message and reads it: vu_msg_read's result (rd.why says why on -1). */
static int roundtrip(uint32_t request, uint32_t flags, uint32_t size, const void *payload, int nfds)
{
	struct wire w = msg(request, flags, size, payload);

	put(&w, sizeof(w.h) + size, nfds);
	return vu_msg_read(be, &rd);
}

static bool why_is(const char *part)
{
	return rd.why && strstr(rd.why, part);
}

/* ---- whole messages and pieces ------------------------------------------- */

static void test_whole(void)
{
	uint64_t u = 0x123456789abcdef0ull;

	reconnect();
	CHECK_EQ(vu_msg_read(be, &rd), 0, "whole: nothing sent: nothing yet");
	CHECK(roundtrip(VU_REQ_GET_FEATURES, V, 0, NULL, 0) == 1 && rd.m.hdr.request == VU_REQ_GET_FEATURES &&
	      rd.m.hdr.flags == V && rd.m.hdr.size == 0 && rd.m.nfds == 0, "whole: GET_FEATURES");
	CHECK(roundtrip(VU_REQ_SET_FEATURES, V | VU_FLAG_NEED_REPLY, 8, &u, 0) == 1 && rd.m.p.u64 == u &&
	      rd.m.hdr.flags == (V | VU_FLAG_NEED_REPLY), "whole: SET_FEATURES with NEED_REPLY and its u64");

	/* Two messages in one write: one at a time. */
	struct wire two[2] = { msg(VU_REQ_SET_OWNER, V, 0, NULL), msg(VU_REQ_SET_FEATURES, V, 8, &u) };
	uint8_t buf[2 * sizeof(struct vu_hdr) + 8];
	memcpy(buf, &two[0], 12);
	memcpy(buf + 12, &two[1], 20);
	put(buf, sizeof(buf), 0);
	int r1 = vu_msg_read(be, &rd);
	uint32_t req1 = rd.m.hdr.request;
	int r2 = vu_msg_read(be, &rd);
	CHECK(r1 == 1 && req1 == VU_REQ_SET_OWNER && r2 == 1 && rd.m.hdr.request == VU_REQ_SET_FEATURES &&
	      rd.m.p.u64 == u, "whole: two messages in one write, one per read");
	CHECK_EQ(vu_msg_read(be, &rd), 0, "whole: then nothing");
}

static void test_pieces(void)
{
	uint64_t u = 0x0102030405060708ull;
	struct wire w = msg(VU_REQ_SET_FEATURES, V, 8, &u);
	const uint8_t *b = (const uint8_t *)&w;

	reconnect();
	put(b, 5, 0);
	int r1 = vu_msg_read(be, &rd);
	put(b + 5, 15, 0);
	CHECK(r1 == 0 && vu_msg_read(be, &rd) == 1 && rd.m.p.u64 == u, "pieces: header split 5 + 7 (+ payload)");

	bool ok = true;
	for (unsigned i = 0; i < 19; i++) {
		put(b + i, 1, 0);
		ok = ok && vu_msg_read(be, &rd) == 0;
	}
	put(b + 19, 1, 0);
	CHECK(ok && vu_msg_read(be, &rd) == 1 && rd.m.p.u64 == u, "pieces: one byte per read");

	put(b, 15, 0);
	r1 = vu_msg_read(be, &rd);
	put(b + 15, 5, 0);
	CHECK(r1 == 0 && vu_msg_read(be, &rd) == 1 && rd.m.p.u64 == u, "pieces: payload split 3 + 5");

	struct vu_vring_addr a = { .index = 0, .flags = 0, .desc_user_addr = 0x1000,
				   .used_user_addr = 0x3000, .avail_user_addr = 0x2000,
				   .log_guest_addr = 0x4000 };
	w = msg(VU_REQ_SET_VRING_ADDR, V, sizeof(a), &a);
	put(&w, 12, 0);
	r1 = vu_msg_read(be, &rd);
	put(w.p, 3, 0);
	int r2 = vu_msg_read(be, &rd);
	put(w.p + 3, sizeof(a) - 3, 0);
	CHECK(r1 == 0 && r2 == 0 && vu_msg_read(be, &rd) == 1 && !memcmp(&rd.m.p.addr, &a, sizeof(a)),
	      "pieces: header, then 3 payload bytes, then the rest");

	/* Fds come with whichever piece carries them. */
	uint64_t idx = 0;
	int before = count_fds();
	w = msg(VU_REQ_SET_VRING_CALL, V, 8, &idx);
	put(&w, 4, 1);
	r1 = vu_msg_read(be, &rd);
	put((uint8_t *)&w + 4, 16, 0);
	CHECK(r1 == 0 && vu_msg_read(be, &rd) == 1 && rd.m.nfds == 1, "pieces: the fd on the first piece");
	vu_msg_close_fds(&rd.m);
	put(&w, 14, 0);
	r1 = vu_msg_read(be, &rd);
	put((uint8_t *)&w + 14, 6, 1);
	CHECK(r1 == 0 && vu_msg_read(be, &rd) == 1 && rd.m.nfds == 1, "pieces: the fd on the last piece");
	vu_msg_close_fds(&rd.m);
	CHECK_EQ(count_fds(), before, "pieces: no fd left open");
}

static void test_ends(void)
{
	struct wire w = msg(VU_REQ_SET_VRING_CALL, V, 8, NULL);
	int before = count_fds();

	reconnect();
	close(fe);
	fe = -1;
	CHECK(vu_msg_read(be, &rd) == -1 && rd.why == NULL, "ends: closed between messages: an orderly end");

	reconnect();
	put(&w, 6, 0);
	close(fe);
	fe = -1;
	CHECK(vu_msg_read(be, &rd) == -1 && why_is("closed in the middle of a message"),
	      "ends: closed inside the header");

	reconnect();
	put(&w, 12 + 4, 1);
	CHECK_EQ(vu_msg_read(be, &rd), 0, "ends: half a payload and an fd: more must come");
	close(fe);
	fe = -1;
	CHECK(vu_msg_read(be, &rd) == -1 && why_is("closed in the middle of a message"),
	      "ends: closed inside the payload");
	reconnect();
	CHECK_EQ(count_fds(), before, "ends: the fd that came is closed");

	/* The reader starts afresh after a failure. */
	put(&w, 12, 0);
	put("\1\2\3\4", 4, 0);
	shutdown(fe, SHUT_WR);
	CHECK_EQ(vu_msg_read(be, &rd), -1, "ends: one more failure");
	reconnect();
	CHECK(roundtrip(VU_REQ_GET_FEATURES, V, 0, NULL, 0) == 1 && rd.m.hdr.request == VU_REQ_GET_FEATURES,
	      "ends: the next message after a failure is read whole");
}

/* ---- header and size rules ------------------------------------------------ */

static void test_header(void)
{
	static const struct { const char *name; uint32_t flags; const char *why; } bad[] = {
		{ "version 0", 0, "unsupported protocol version" },
		{ "version 2", 2, "unsupported protocol version" },
		{ "version 3", 3, "unsupported protocol version" },
		{ "reply flag", V | VU_FLAG_REPLY, "reply flag set on a request" },
	};
	for (unsigned i = 0; i < ARRAY_LEN(bad); i++) {
		reconnect();
		CHECK(roundtrip(VU_REQ_GET_FEATURES, bad[i].flags, 0, NULL, 0) == -1 && why_is(bad[i].why),
		      "header: %s refused", bad[i].name);
	}
	reconnect();
	CHECK(roundtrip(VU_REQ_GET_FEATURES, V | VU_FLAG_NEED_REPLY | 0xff00, 0, NULL, 0) == 1,
	      "header: unknown flag bits are ignored");

	/* A size no request allows is refused on the header alone: no payload is waited for. */
	reconnect();
	struct vu_hdr h = { VU_REQ_SET_FEATURES, V, sizeof(union vu_payload) + 1 };
	put(&h, sizeof(h), 0);
	CHECK(vu_msg_read(be, &rd) == -1 && why_is("payload larger than any request allows"),
	      "header: size one more than any payload, refused before the payload");
	reconnect();
	h.size = 0xffffffffu;
	put(&h, sizeof(h), 0);
	CHECK(vu_msg_read(be, &rd) == -1 && why_is("payload larger"), "header: size 0xffffffff");

	/* An unknown request is the session's business: any size that fits, no fds. */
	static const uint8_t zero[sizeof(union vu_payload)];
	reconnect();
	CHECK(roundtrip(9999, V, sizeof(zero), zero, 0) == 1 && rd.m.hdr.request == 9999,
	      "header: unknown request with the largest payload is read");
	CHECK(roundtrip(VU_REQ_NONE, V, 0, NULL, 0) == 1, "header: request 0 is read");
	CHECK(roundtrip(VU_REQ_MAX, V, 0, NULL, 0) == 1, "header: request VU_REQ_MAX is read");
	CHECK(roundtrip(9999, V, 0, NULL, 1) == -1 && why_is("unknown request carries fds"),
	      "header: unknown request with an fd refused");
	CHECK(!strcmp(vu_msg_name(9999), "UNKNOWN") && !vu_msg_has_reply(9999) && !vu_msg_has_reply(0),
	      "header: an unknown request has no name and no reply");
}

/*
 * The payload size and fd count of every fixed-size request, from
 * docs/interop/vhost-user.rst; reply: the back-end answers with a payload.
 */
static const struct rule {
	uint32_t req;
	const char *name;
	uint32_t size;
	int fds_min, fds_max;
	bool reply;
} rules[] = {
#define R(id, size, fmin, fmax, reply) { VU_REQ_##id, #id, size, fmin, fmax, reply }
	R(GET_FEATURES, 0, 0, 0, true),            R(SET_FEATURES, 8, 0, 0, false),
	R(SET_OWNER, 0, 0, 0, false),              R(RESET_OWNER, 0, 0, 0, false),
	R(SET_LOG_BASE, 16, 0, 1, false),          R(SET_LOG_FD, 0, 1, 1, false),
	R(SET_VRING_NUM, 8, 0, 0, false),          R(SET_VRING_ADDR, 40, 0, 0, false),
	R(SET_VRING_BASE, 8, 0, 0, false),         R(GET_VRING_BASE, 8, 0, 0, true),
	R(SET_VRING_KICK, 8, 0, 1, false),         R(SET_VRING_CALL, 8, 0, 1, false),
	R(SET_VRING_ERR, 8, 0, 1, false),          R(GET_PROTOCOL_FEATURES, 0, 0, 0, true),
	R(SET_PROTOCOL_FEATURES, 8, 0, 0, false),  R(GET_QUEUE_NUM, 0, 0, 0, true),
	R(SET_VRING_ENABLE, 8, 0, 0, false),       R(SEND_RARP, 8, 0, 0, false),
	R(NET_SET_MTU, 8, 0, 0, false),            R(SET_BACKEND_REQ_FD, 0, 1, 1, false),
	R(SET_VRING_ENDIAN, 8, 0, 0, false),       R(CLOSE_CRYPTO_SESSION, 8, 0, 0, false),
	R(POSTCOPY_ADVISE, 0, 0, 0, true),         R(POSTCOPY_LISTEN, 0, 0, 0, false),
	R(POSTCOPY_END, 0, 0, 0, false),           R(GPU_SET_SOCKET, 0, 1, 1, false),
	R(RESET_DEVICE, 0, 0, 0, false),           R(VRING_KICK, 8, 0, 0, false),
	R(GET_MAX_MEM_SLOTS, 0, 0, 0, true),       R(ADD_MEM_REG, 40, 1, 1, false),
	R(REM_MEM_REG, 40, 0, 1, false),           R(SET_STATUS, 8, 0, 0, false),
	R(GET_STATUS, 0, 0, 0, true),              R(GET_SHARED_OBJECT, 16, 0, 0, true),
	R(SET_DEVICE_STATE_FD, 8, 1, 1, true),     R(CHECK_DEVICE_STATE, 0, 0, 0, true),
#undef R
};

static void test_sizes(void)
{
	static const uint8_t zero[64];
	int before = count_fds();

	for (unsigned i = 0; i < ARRAY_LEN(rules); i++) {
		const struct rule *r = &rules[i];
		reconnect();
		CHECK(!strcmp(vu_msg_name(r->req), r->name) && vu_msg_has_reply(r->req) == r->reply,
		      "rules: %s: name and reply", r->name);
		int got = roundtrip(r->req, V, r->size, zero, r->fds_min);
		CHECK(got == 1 && rd.m.nfds == r->fds_min, "rules: %s: size %u with %d fds read", r->name,
		      r->size, r->fds_min);
		vu_msg_close_fds(&rd.m);
		if (r->fds_max > r->fds_min) {
			got = roundtrip(r->req, V, r->size, zero, r->fds_max);
			CHECK(got == 1 && rd.m.nfds == r->fds_max, "rules: %s: with %d fds read", r->name, r->fds_max);
			vu_msg_close_fds(&rd.m);
		}
		CHECK(roundtrip(r->req, V, r->size + 1, zero, r->fds_min) == -1 &&
		      why_is("payload size is wrong"), "rules: %s: size %u refused", r->name, r->size + 1);
		if (r->size) {
			reconnect();
			CHECK(roundtrip(r->req, V, r->size - 1, zero, r->fds_min) == -1 &&
			      why_is("payload size is wrong"), "rules: %s: size %u refused", r->name, r->size - 1);
		}
		reconnect();
		CHECK(roundtrip(r->req, V, r->size, zero, r->fds_max + 1) == -1 &&
		      why_is("wrong number of fds"), "rules: %s: fd count %d refused", r->name, r->fds_max + 1);
		if (r->fds_min) {
			reconnect();
			CHECK(roundtrip(r->req, V, r->size, zero, 0) == -1 && why_is("wrong number of fds"),
			      "rules: %s: fd count 0 refused", r->name);
		}
	}
	reconnect();
	CHECK_EQ(count_fds(), before, "rules: no fd left open");
}

/* SET_MEM_TABLE: 8 + 32 * nregions bytes, one fd per region. */
static void test_mem_table(void)
{
	static const struct {
		const char *name;
		uint32_t nregions, size;
		int nfds;
		const char *why;     /* NULL: read */
	} cases[] = {
		{ "1 region, 1 fd", 1, 8 + 32, 1, NULL },
		{ "2 regions, 2 fds", 2, 8 + 64, 2, NULL },
		{ "8 regions, 8 fds", 8, 8 + 8 * 32, 8, NULL },
		{ "0 regions", 0, 8, 0, "region count out of range" },
		{ "9 regions (size of 8)", 9, 8 + 8 * 32, 8, "region count out of range" },
		{ "size 4", 1, 4, 1, "not 8 + 32 * n" },
		{ "size 8 + 32 + 4", 1, 8 + 32 + 4, 1, "not 8 + 32 * n" },
		{ "2 regions, size for 1", 2, 8 + 32, 2, "does not match its region count" },
		{ "1 region, size for 2", 1, 8 + 64, 1, "does not match its region count" },
		{ "2 regions, 1 fd", 2, 8 + 64, 1, "fd count does not match" },
		{ "1 region, 2 fds", 1, 8 + 32, 2, "fd count does not match" },
		{ "1 region, no fd", 1, 8 + 32, 0, "fd count does not match" },
	};
	int before = count_fds();

	for (unsigned i = 0; i < ARRAY_LEN(cases); i++) {
		struct vu_mem_table t = { .nregions = cases[i].nregions };
		reconnect();
		int r = roundtrip(VU_REQ_SET_MEM_TABLE, V, cases[i].size, &t, cases[i].nfds);
		if (cases[i].why)
			CHECK(r == -1 && why_is(cases[i].why), "mem table: %s: refused", cases[i].name);
		else
			CHECK(r == 1 && rd.m.nfds == cases[i].nfds && rd.m.p.mem.nregions == cases[i].nregions,
			      "mem table: %s: read", cases[i].name);
		vu_msg_close_fds(&rd.m);
	}
	CHECK_EQ(count_fds(), before, "mem table: no fd left open");
}

/* The other variable sizes: config (12 + its size) and inflight (20 or 24). */
static void test_var_sizes(void)
{
	static const struct {
		const char *name;
		uint32_t req, size, config_size;
		int nfds;
		const char *why;
	} cases[] = {
		{ "GET_CONFIG of 4 bytes", VU_REQ_GET_CONFIG, 12 + 4, 4, 0, NULL },
		{ "GET_CONFIG of 256 bytes", VU_REQ_GET_CONFIG, 12 + 256, 256, 0, NULL },
		{ "GET_CONFIG of 0 bytes", VU_REQ_GET_CONFIG, 12, 0, 0, NULL },
		{ "SET_CONFIG of 8 bytes", VU_REQ_SET_CONFIG, 12 + 8, 8, 0, NULL },
		{ "GET_CONFIG shorter than its header", VU_REQ_GET_CONFIG, 8, 0, 0, "shorter than its header" },
		{ "GET_CONFIG size 8 in 4 bytes", VU_REQ_GET_CONFIG, 12 + 4, 8, 0, "does not match" },
		{ "SET_CONFIG size 4 in 8 bytes", VU_REQ_SET_CONFIG, 12 + 8, 4, 0, "does not match" },
		{ "GET_CONFIG size 257", VU_REQ_GET_CONFIG, 12 + 256, 257, 0, "does not match" },
		{ "GET_CONFIG size 0xffffffff", VU_REQ_GET_CONFIG, 12 + 4, 0xffffffffu, 0, "does not match" },
		{ "GET_CONFIG with an fd", VU_REQ_GET_CONFIG, 12 + 4, 4, 1, "wrong number of fds" },
		{ "GET_INFLIGHT_FD of 20 bytes", VU_REQ_GET_INFLIGHT_FD, 20, 0, 0, NULL },
		{ "GET_INFLIGHT_FD of 24 bytes", VU_REQ_GET_INFLIGHT_FD, 24, 0, 0, NULL },
		{ "GET_INFLIGHT_FD of 16 bytes", VU_REQ_GET_INFLIGHT_FD, 16, 0, 0, "neither 20 nor 24" },
		{ "GET_INFLIGHT_FD of 28 bytes", VU_REQ_GET_INFLIGHT_FD, 28, 0, 0, "neither 20 nor 24" },
		{ "SET_INFLIGHT_FD of 24 bytes and an fd", VU_REQ_SET_INFLIGHT_FD, 24, 0, 1, NULL },
		{ "SET_INFLIGHT_FD without an fd", VU_REQ_SET_INFLIGHT_FD, 24, 0, 0, "wrong number of fds" },
		{ "SET_INFLIGHT_FD with 2 fds", VU_REQ_SET_INFLIGHT_FD, 24, 0, 2, "wrong number of fds" },
		{ "IOTLB_MSG of 7 bytes", VU_REQ_IOTLB_MSG, 7, 0, 0, NULL },
		{ "CREATE_CRYPTO_SESSION of 100 bytes", VU_REQ_CREATE_CRYPTO_SESSION, 100, 0, 0, NULL },
		{ "IOTLB_MSG with an fd", VU_REQ_IOTLB_MSG, 8, 0, 1, "wrong number of fds" },
	};
	int before = count_fds();

	for (unsigned i = 0; i < ARRAY_LEN(cases); i++) {
		struct vu_config c = { .offset = 0, .size = cases[i].config_size };
		reconnect();
		int r = roundtrip(cases[i].req, V, cases[i].size, &c, cases[i].nfds);
		if (cases[i].why)
			CHECK(r == -1 && why_is(cases[i].why), "var size: %s: refused", cases[i].name);
		else
			CHECK(r == 1 && rd.m.nfds == cases[i].nfds, "var size: %s: read", cases[i].name);
		vu_msg_close_fds(&rd.m);
	}
	CHECK_EQ(count_fds(), before, "var size: no fd left open");
}

/* ---- fds --------------------------------------------------------------------- */

static void test_fds(void)
{
	uint64_t idx = 0, v = 0;
	int before = count_fds();

	reconnect();
	if (CHECK(roundtrip(VU_REQ_SET_VRING_CALL, V, 8, &idx, 1) == 1 && rd.m.nfds == 1, "fds: one eventfd")) {
		/* The fd received is the eventfd sent: what is written to one is read from the other. */
		int fd = vu_msg_take_fd(&rd.m, 0);
		uint64_t one = 1;
		CHECK(fd >= 0 && write(fd, &one, 8) == 8 && read(efd[0], &v, 8) == 8 && v == 1,
		      "fds: the same eventfd arrives");
		CHECK(rd.m.fds[0] == -1 && vu_msg_take_fd(&rd.m, 0) == -1 && vu_msg_take_fd(&rd.m, 1) == -1,
		      "fds: taken once; no second fd");
		vu_msg_close_fds(&rd.m);
		CHECK(fd >= 0 && fcntl(fd, F_GETFD) >= 0 && rd.m.nfds == 0,
		      "fds: closing the message leaves a taken fd open");
		CHECK(fd >= 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC), "fds: received close-on-exec");
		if (fd >= 0)
			close(fd);
	}
	/* Fds a message carried are not carried over to the next, even if nobody closed them. */
	int left = -1;
	if (roundtrip(VU_REQ_SET_VRING_CALL, V, 8, &idx, 1) == 1 && rd.m.nfds == 1)
		left = rd.m.fds[0];
	CHECK(left >= 0 && roundtrip(VU_REQ_GET_FEATURES, V, 0, NULL, 0) == 1 && rd.m.nfds == 0,
	      "fds: the next message starts with none");
	if (left >= 0)
		close(left);

	CHECK(roundtrip(VU_REQ_SET_VRING_KICK, V, 8, &idx, 2) == -1 && why_is("wrong number of fds"),
	      "fds: 2 on SET_VRING_KICK refused");
	reconnect();
	CHECK(roundtrip(VU_REQ_SET_VRING_CALL, V, 8, &idx, 9) == -1 && why_is("more than 8 fds (control data truncated)"),
	      "fds: 9 in one message refused");

	/* Spread over two pieces: 8 are fine, 9 are not. */
	struct vu_mem_table t = { .nregions = 8 };
	struct wire w = msg(VU_REQ_SET_MEM_TABLE, V, 8 + 8 * 32, &t);
	reconnect();
	put(&w, 6, 5);
	int r1 = vu_msg_read(be, &rd);
	put((uint8_t *)&w + 6, 12 + 8 + 8 * 32 - 6, 3);
	CHECK(r1 == 0 && vu_msg_read(be, &rd) == 1 && rd.m.nfds == 8, "fds: 5 + 3 over two pieces read");
	vu_msg_close_fds(&rd.m);
	reconnect();
	put(&w, 6, 5);
	r1 = vu_msg_read(be, &rd);
	put((uint8_t *)&w + 6, 12 + 8 + 8 * 32 - 6, 4);
	CHECK(r1 == 0 && vu_msg_read(be, &rd) == -1 && rd.why && !strcmp(rd.why, "more than 8 fds"),
	      "fds: 5 + 4 over two pieces refused");
	reconnect();
	CHECK_EQ(count_fds(), before, "fds: no fd left open");
}

/* ---- the writer ------------------------------------------------------------- */

/* Reads what the back-end's end sent: bytes into buf, fds counted (and closed). */
static ssize_t take(void *buf, size_t max, int *nfds)
{
	union {
		char buf[CMSG_SPACE(16 * sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = { buf, max };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
			     .msg_controllen = sizeof(control.buf) };
	ssize_t n = recvmsg(fe, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

	*nfds = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); n >= 0 && c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		int n_here = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (int i = 0; i < n_here; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			close(fd);
		}
		*nfds += n_here;
	}
	return n;
}

static void test_send(void)
{
	uint8_t buf[512];
	int nfds;
	uint64_t u = 0xfeedface;

	reconnect();
	CHECK_EQ(vu_msg_send(be, VU_REQ_GET_FEATURES, V, &u, 8, NULL, 0), 0, "send: returns 0");
	struct wire want = msg(VU_REQ_GET_FEATURES, V, 8, &u);
	ssize_t n = take(buf, sizeof(buf), &nfds);
	CHECK(n == 20 && !memcmp(buf, &want, 20) && nfds == 0, "send: header then payload, 20 bytes");

	CHECK(vu_msg_send(be, VU_REQ_SET_OWNER, V, NULL, 0, NULL, 0) == 0 &&
	      take(buf, sizeof(buf), &nfds) == 12, "send: no payload: the header alone");

	CHECK(vu_msg_send(be, VU_REQ_SET_VRING_CALL, V, &u, 8, efd, 2) == 0 &&
	      take(buf, sizeof(buf), &nfds) == 20 && nfds == 2, "send: with 2 fds");
	CHECK_EQ(vu_msg_send(be, VU_REQ_SET_VRING_CALL, V, &u, 8, efd, 9), -EINVAL, "send: 9 fds refused");
	CHECK(take(buf, sizeof(buf), &nfds) < 0 && errno == EAGAIN, "send: ... and nothing sent");

	/* What the writer sends, the reader takes (both ends of the protocol in one process). */
	int other[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, other) == 0) {
		struct vu_vring_state st = { 1, 256 };
		memset(&rd, 0, sizeof(rd));
		CHECK(vu_msg_send(other[0], VU_REQ_SET_VRING_NUM, V, &st, 8, NULL, 0) == 0 &&
		      vu_msg_read(other[1], &rd) == 1 && rd.m.p.state.index == 1 && rd.m.p.state.num == 256,
		      "send: read back by vu_msg_read");
		close(other[0]);
		close(other[1]);
	}

	/* A reply: the request's id, flags exactly REPLY | VERSION whatever the request had. */
	struct vu_msg req = { .hdr = { VU_REQ_GET_PROTOCOL_FEATURES, V | VU_FLAG_NEED_REPLY | 0x100, 0 } };
	u = 0x8001;
	CHECK_EQ(vu_msg_reply(be, &req, &u, 8), 0, "reply: returns 0");
	want = msg(VU_REQ_GET_PROTOCOL_FEATURES, VU_FLAG_REPLY | V, 8, &u);
	CHECK(take(buf, sizeof(buf), &nfds) == 20 && !memcmp(buf, &want, 20), "reply: id, flags 0x5, payload");

	/* A front-end that does not read: the writer does not wait for it. */
	int small = 4096;
	setsockopt(be, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	int r = 0;
	unsigned sent = 0;
	static const uint8_t big[sizeof(union vu_payload)];
	while (sent < 100000 && (r = vu_msg_send(be, 9999, V, big, sizeof(big), NULL, 0)) == 0)
		sent++;
	CHECK(r == -EAGAIN && sent > 0, "send: a full socket is -EAGAIN, not a wait");

	reconnect();
	close(fe);
	fe = -1;
	CHECK_EQ(vu_msg_send(be, VU_REQ_GET_FEATURES, V, &u, 8, NULL, 0), -EPIPE,
		 "send: to a closed peer is -EPIPE (no SIGPIPE)");
}

int main(void)
{
	check_deadline(60);
	for (unsigned i = 0; i < ARRAY_LEN(efd); i++)
		efd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	test_whole();
	test_pieces();
	test_ends();
	test_header();
	test_sizes();
	test_mem_table();
	test_var_sizes();
	test_fds();
	test_send();
	return check_exit();
}
