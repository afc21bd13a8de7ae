/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dev/gpu-chan.h"
#include "test/fuzz/fuzz-device.h"
#include "test/fuzz/fuzz-display.h"

#define READS_PER_TURN 64           /* 4 MiB: a big update, then the loop's turn again */
#define READ_MAX 65536

struct display {
	int fd;                     /* our end, -1 once closed */
	bool stalled;
	size_t chunk;               /* bytes read per turn, 0: all there is */
	uint64_t features;
	uint16_t width, height;
	unsigned fault;             /* for the next reply */
	struct gpu_msg_hdr h;       /* the message being read */
	size_t got;                 /* of its header, then of its payload */
	uint8_t head[4];            /* its first payload bytes: GET_EDID's scanout */
};

static struct display *display_of(struct fz_port *p)
{
	if (!p->priv) {
		struct display *d = calloc(1, sizeof(*d));
		if (!d)
			abort();
		*d = (struct display){ .fd = -1, .features = 1u << GPU_PF_EDID | 1u << GPU_PF_DMABUF2,
				       .width = 1024, .height = 768 };
		p->priv = d;
	}
	return p->priv;
}

static void close_display(struct display *d)
{
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
	d->got = 0;
}

/* A new channel: the back-end gets one end with GPU_SET_SOCKET. */
void fz_display_connected(struct fz_port *p)
{
	struct display *d = display_of(p);
	int sv[2];

	close_display(d);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
		return;
	fz_send(p, VU_REQ_GPU_SET_SOCKET, NULL, 0, &sv[1], 1);
	close(sv[1]);
	d->fd = sv[0];
}

void fz_display_finish(struct fz_port *p)
{
	if (p->priv)
		close_display(p->priv);
	free(p->priv);
	p->priv = NULL;
}

static void reply(struct display *d, uint32_t request, const void *payload, uint32_t size)
{
	struct gpu_msg_hdr h = { request, GPU_MSG_FLAG_REPLY, size };
	uint8_t buf[sizeof(h) + sizeof(struct virtio_gpu_resp_edid)];

	if (d->fault == 1)
		h.size--;
	else if (d->fault == 2)
		h.request++;
	else if (d->fault == 3)
		h.flags = 0;
	d->fault = 0;
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), payload, size);
	if (send(d->fd, buf, sizeof(h) + h.size, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		return; /* the back-end hung up, or stopped reading: its problem */
}

/* A whole message came: answer it if it asks. */
static void handle(struct display *d)
{
	switch (d->h.request) {
	case GPU_MSG_GET_PROTOCOL_FEATURES:
		reply(d, d->h.request, &d->features, sizeof(d->features));
		break;
	case GPU_MSG_GET_DISPLAY_INFO: {
		struct virtio_gpu_resp_display_info info = { .hdr.type = VIRTIO_GPU_RESP_OK_DISPLAY_INFO };
		info.pmodes[0].r.width = d->width;
		info.pmodes[0].r.height = d->height;
		info.pmodes[0].enabled = d->width && d->height;
		info.pmodes[1] = info.pmodes[0]; /* beyond most configurations' outputs */
		reply(d, d->h.request, &info, sizeof(info));
		break;
	}
	case GPU_MSG_GET_EDID: {
		struct virtio_gpu_resp_edid e = { .hdr.type = VIRTIO_GPU_RESP_OK_EDID, .size = 128 };
		memset(e.edid, 0xa5, e.size);
		memcpy(e.edid, d->head, sizeof(d->head));
		reply(d, d->h.request, &e, sizeof(e));
		break;
	}
	case GPU_MSG_DMABUF_UPDATE:
		reply(d, d->h.request, NULL, 0);
		break;
	}
}

/* Takes n bytes of the stream (header, then payload). */
static void parse(struct display *d, const uint8_t *b, size_t n)
{
	while (n) {
		if (d->got < sizeof(d->h)) {
			size_t k = sizeof(d->h) - d->got < n ? sizeof(d->h) - d->got : n;
			memcpy((uint8_t *)&d->h + d->got, b, k);
			d->got += k, b += k, n -= k;
		} else {
			size_t at = d->got - sizeof(d->h), left = d->h.size - at;
			size_t k = left < n ? left : n;
			if (at < sizeof(d->head))
				memcpy(d->head + at, b, k < sizeof(d->head) - at ? k : sizeof(d->head) - at);
			d->got += k, b += k, n -= k;
		}
		if (d->got >= sizeof(d->h) && d->got == sizeof(d->h) + d->h.size) {
			handle(d);
			d->got = 0;
			memset(d->head, 0, sizeof(d->head));
		}
	}
}

bool fz_display_service(struct fz_port *p)
{
	struct display *d = display_of(p);
	bool any = false;
	static uint8_t buf[READ_MAX];

	for (unsigned i = 0; i < (d->chunk ? 1 : READS_PER_TURN) && d->fd >= 0 && !d->stalled; i++) {
		union {
			char buf[CMSG_SPACE(4 * sizeof(int))];
			struct cmsghdr align;
		} control;
		struct iovec iov = { buf, d->chunk ? d->chunk : sizeof(buf) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
				     .msg_controllen = sizeof(control.buf) };
		ssize_t n = recvmsg(d->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n <= 0) {
			if (n == 0)
				close_display(d); /* the back-end closed it */
			break;
		}
		/* Dmabufs of DMABUF_SCANOUT: not looked at. */
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			for (size_t k = 0; k < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); k++) {
				int fd;
				memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof(fd));
				close(fd);
			}
		parse(d, buf, (size_t)n);
		any = true;
	}
	return any;
}

void fz_display_op(struct fz_port *p, struct fz_input *in)
{
	struct display *d = display_of(p);
	const uint8_t *b;
	size_t n;

	switch (fz_u8(in) % FZ_DISPLAY_COUNT) {
	case FZ_DISPLAY_READ:
		d->stalled = false;
		d->chunk = fz_u8(in) * 256;
		break;
	case FZ_DISPLAY_STALL:
		d->stalled = true;
		break;
	case FZ_DISPLAY_CLOSE:
		close_display(d);
		break;
	case FZ_DISPLAY_NEW:
		fz_display_connected(p);
		break;
	case FZ_DISPLAY_SIZE:
		d->width = fz_u16(in);
		d->height = fz_u16(in);
		break;
	case FZ_DISPLAY_RAW:
		n = fz_bytes(in, fz_u8(in), &b);
		if (d->fd >= 0 && send(d->fd, b, n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			break;
		break;
	case FZ_DISPLAY_FAULT:
		d->fault = fz_u8(in) % 4;
		break;
	case FZ_DISPLAY_FEATURES:
		d->features = fz_u8(in) & 3;
		break;
	}
}
