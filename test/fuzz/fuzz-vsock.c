/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target: vhost-user-vsock driven through the device harness
 * (fuzz-device.h) as guest CID 3. Queues: 0 receive, 1 transmit (the guest's
 * packets: any header, any length), 2 events. The host side is a directory of
 * this process: a listener for guest port-1000 connects (<uds>_1000), never
 * accepting during an input, so the back-end's writes to it fill up and stall; no
 * listener on other ports, so those connects are refused.
 * FZ_OP_DEVICE: a byte, then with bit 0 set a host program connects to the
 * back-end's socket and writes "CONNECT <u16>\n"; clear, it writes up to 64 bytes
 * of the input on the newest such connection.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "test/fuzz/fuzz-device.h"

extern const struct vu_device_type vu_dev_vsock;

#define MAX_CLIENTS 4

static char dir[64];
static int listener = -1;
static int clients[MAX_CLIENTS], nclients;

static int unix_socket_at(const char *path, bool listen_there)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0)
		return -1;
	if (listen_there ? bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0
			 : connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

static void remove_dir(void)
{
	char path[96];

	snprintf(path, sizeof(path), "%s/v_1000", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/v", dir);
	unlink(path);
	rmdir(dir);
}

/* Once per process: the directory and the port-1000 listener; per input, the options. */
static int prepare(struct fz_port *p)
{
	static char opt[96]; /* options are kept as given, as argv's strings are */
	char path[96];

	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/tmp/fuzz-vsock.XXXXXX");
		if (!mkdtemp(dir))
			abort();
		atexit(remove_dir);
		snprintf(path, sizeof(path), "%s/v_1000", dir);
		listener = unix_socket_at(path, true);
		if (listener < 0)
			abort();
	}
	snprintf(opt, sizeof(opt), "uds-path=%s/v", dir);
	return fz_set_option(p->dev, "guest-cid=3") < 0 ? -1 : fz_set_option(p->dev, opt);
}

static void vsock_op(struct fz_port *p, struct fz_input *in)
{
	char path[96], line[32];

	if (fz_u8(in) & 1) {
		snprintf(path, sizeof(path), "%s/v", dir);
		int fd = nclients < MAX_CLIENTS ? unix_socket_at(path, false) : -1;
		int n = snprintf(line, sizeof(line), "CONNECT %u\n", fz_u16(in));
		if (fd < 0)
			return;
		clients[nclients++] = fd;
		if (write(fd, line, (size_t)n) < 0) {
			/* The back-end may have refused it already: what it does then is the point. */
		}
		return;
	}
	const uint8_t *b;
	size_t n = fz_bytes(in, 64, &b);
	if (nclients && n && write(clients[nclients - 1], b, n) < 0) {
		/* Full or closed: the same. */
	}
}

/* The input is over: the host programs leave, the connections the back-end made go. */
static void finish(struct fz_port *p)
{
	while (nclients)
		close(clients[--nclients]);
	for (int fd; (fd = accept(listener, NULL, NULL)) >= 0;)
		close(fd);
}

static const struct fz_target vsock = {
	.type = &vu_dev_vsock,
	.nports = 1,
	.settle_ns = 0, /* everything it does, it does on the loop at once */
	.prepare = prepare,
	.op = vsock_op,
	.finish = finish,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fz_run(&vsock, data, size);
}
