/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target: message decoding and session handling. The input is a
 * sequence of records [fd-code:1][header:12][payload:size]; the fd code attaches
 * up to 3 fds (memfds usable as guest RAM, or eventfds). The records go to a
 * session of the rng device through a socketpair, exactly as a front-end's would.
 */
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/log.h"
#include "proto/msg.h"
#include "proto/session.h"

extern const struct vu_device_type vu_dev_rng;

static void on_end(void *opaque, struct vu_session *s)
{
	vu_session_free(s);
	vu_loop_stop(opaque);
}

static int make_fd(unsigned kind)
{
	if (kind & 1)
		return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	int fd = memfd_create("fuzz-ram", MFD_CLOEXEC);
	if (fd >= 0 && ftruncate(fd, 1 << 20) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Sends the records; returns when the input is used up. */
static void send_records(int sock, const uint8_t *data, size_t size)
{
	while (size > 1 + sizeof(struct vu_hdr)) {
		unsigned code = data[0];
		struct vu_hdr hdr;
		memcpy(&hdr, data + 1, sizeof(hdr));
		data += 1 + sizeof(hdr);
		size -= 1 + sizeof(hdr);
		uint32_t len = hdr.size < size ? hdr.size : (uint32_t)size;

		int fds[3], nfds = code & 3;
		for (int i = 0; i < nfds; i++)
			fds[i] = make_fd(code >> (2 + i));
		vu_msg_send(sock, hdr.request, hdr.flags, data, len, fds, nfds);
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		/* A short payload stays short: the next record starts after it. */
		if (len < hdr.size)
			break;
		data += len;
		size -= len;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool quiet;
	int sv[2];

	if (!quiet) {
		vu_log_set_name("fuzz");
		quiet = true;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 0;
	/* Replies must never block the single-threaded run: give them room. */
	int big = 4 << 20;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	send_records(sv[1], data, size);
	shutdown(sv[1], SHUT_WR);

	struct vu_loop *loop = vu_loop_new();
	struct vu_dev *dev = vu_device_create(&vu_dev_rng);
	struct vu_session *s = vu_session_new(loop, sv[0], dev, on_end, loop);
	if (s)
		vu_loop_run(loop);
	vu_dev_rng.destroy(dev);
	vu_loop_free(loop);
	close(sv[1]);
	return 0;
}
