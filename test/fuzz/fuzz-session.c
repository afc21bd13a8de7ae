/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target: message decoding and session handling. The first byte
 * picks the device: even the rng (one queue), odd blk (two queues, an inflight
 * buffer on offer, a memfd image). Then records, each starting with a code byte:
 *
 *   code < 0x80: a message, [header:12][payload:size]; code bits 0-1 attach up to
 *                3 fds, bit 2 + i says fd i is an eventfd (else a memfd usable as
 *                guest RAM). Eventfds are kept (the last 8) for kicks.
 *   code >= 0x80: a kick: kept eventfd number (code & 7) is written.
 *
 * The records go to a session of the device through a socketpair, exactly as a
 * front-end's would; after each the loop runs until it is idle, so that kicks
 * meet rings in whatever state the messages before them left.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/loop.h"
#include "proto/msg.h"
#include "proto/session.h"
#include "test/fuzz/fuzz-device.h"

#define KEPT 8
#define SETTLE_NS 20000

extern const struct vu_device_type vu_dev_rng, vu_dev_blk;

struct run {
	struct vu_loop *loop;
	struct vu_session *s;
	int kept[KEPT];            /* eventfds sent, for kicks */
	unsigned nkept;
};

static void on_end(void *opaque, struct vu_session *s)
{
	struct run *r = opaque;

	vu_session_free(s);
	r->s = NULL;
}

static int make_fd(struct run *r, bool event)
{
	if (event) {
		int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (fd >= 0) {
			if (r->nkept >= KEPT)
				close(r->kept[r->nkept % KEPT]);
			r->kept[r->nkept++ % KEPT] = dup(fd);
		}
		return fd;
	}
	int fd = memfd_create("fuzz-ram", MFD_CLOEXEC);
	if (fd >= 0 && ftruncate(fd, 1 << 20) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void kick(struct run *r, unsigned i)
{
	uint64_t one = 1;

	if (i < r->nkept && i < KEPT && write(r->kept[i], &one, sizeof(one)) < 0)
		return;
}

/* Sends one message record; false when the input is used up. */
static bool send_message(struct run *r, int sock, unsigned code, struct fz_input *in)
{
	struct vu_hdr hdr;
	const uint8_t *h, *payload;

	if (fz_bytes(in, sizeof(hdr), &h) < sizeof(hdr))
		return false;
	memcpy(&hdr, h, sizeof(hdr));
	uint32_t len = (uint32_t)fz_bytes(in, hdr.size, &payload);

	int fds[3], nfds = code & 3;
	for (int i = 0; i < nfds; i++)
		fds[i] = make_fd(r, code & (4u << i));
	vu_msg_send(sock, hdr.request, hdr.flags, payload, len, fds, nfds);
	for (int i = 0; i < nfds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	/* A short payload stays short: the session waits for the rest until the end. */
	return len == hdr.size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char image_option[FZ_OPTION_MAX];
	struct fz_input in = { data, size };
	struct run r = { 0 };
	int sv[2], image = -1;

	fz_init_process();
	if (!size || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 0;
	/* Replies must never block the single-threaded run: give them room. */
	int big = 4 << 20;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));

	bool blk = fz_u8(&in) & 1;
	const struct vu_device_type *type = blk ? &vu_dev_blk : &vu_dev_rng;
	struct vu_dev *dev = vu_device_create(type);
	r.loop = vu_loop_new();
	if (blk && (fz_set_option(dev, "num-queues=2") < 0 ||
		    (image = fz_memfd_option(dev, "blk-file", 1 << 20, image_option)) < 0))
		abort();
	if (type->init && type->init(dev, r.loop) < 0)
		abort();
	r.s = vu_session_new(r.loop, sv[0], dev, on_end, &r);
	while (r.s && in.n) {
		unsigned code = fz_u8(&in);
		if (code & 0x80)
			kick(&r, code & 7);
		else if (!send_message(&r, sv[1], code, &in))
			break;
		vu_loop_run_until_idle(r.loop, SETTLE_NS);
	}
	shutdown(sv[1], SHUT_WR);
	vu_loop_run_until_idle(r.loop, 0);
	if (r.s)
		vu_session_free(r.s);
	type->destroy(dev);
	vu_loop_free(r.loop);
	close(sv[1]);
	if (image >= 0)
		close(image);
	for (unsigned i = 0; i < r.nkept && i < KEPT; i++)
		close(r.kept[i]);
	return 0;
}
