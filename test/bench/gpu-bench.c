/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vhost-user-gpu 2D benchmark driver: a full-HD B8G8R8X8 resource backed by 4 KiB
 * guest pages, shown on scanout 0; each frame changes a row of guest pixels, then
 * TRANSFER_TO_HOST_2D + RESOURCE_FLUSH of the whole screen (the back-end copies
 * and sends the whole screen every frame either way; changing only a row keeps
 * the driver's own work from being what is measured).
 *
 * By default the two commands are queued together and the driver sleeps on the
 * back-end's call eventfd until both are answered, as Linux's virtio-gpu does for
 * a plane update, and the display reads every byte of every update, as a
 * front-end must, but keeps no picture: it shares a core with this driver, and
 * its blit, the same whichever back-end runs, would be most of what is measured.
 * --serial: one command at a time (polling the used ring) and a display that
 * copies each update into its picture, the harder layout for a fast back-end.
 *
 * Usage: gpu-bench SOCKET SECONDS [--serial]   (the back-end already listens on SOCKET)
 * Prints: frames=N seconds=S updates=U update_mb=M
 */
#include <linux/virtio_gpu.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test/frontend.h"
#include "test/gpu-peer.h"

/* Requests are written as positional initializers; unnamed padding stays zero. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#define FW 1920
#define FH 1080
#define PAGE 4096u

static struct gpu_drv d;

static uint32_t send(const void *req, size_t len)
{
	return gpu_drv_cmd(&d, 0, req, len, NULL, 0);
}

/* Guest buffers of one frame's two requests and their responses. */
struct frame_bufs {
	uint64_t req[2], resp[2];
};

/* Queues both requests, kicks once, and sleeps on the call eventfd until both are answered OK. */
static bool frame(const struct frame_bufs *b)
{
	for (unsigned i = 0; i < 2; i++) {
		struct vuf_buf out = { b->req[i], i ? sizeof(struct virtio_gpu_resource_flush) :
						     sizeof(struct virtio_gpu_transfer_to_host_2d) };
		struct vuf_buf in = { b->resp[i], sizeof(struct virtio_gpu_ctrl_hdr) };
		if (vuf_vq_add(d.ctrl, &out, 1, &in, 1, false) < 0)
			return false;
	}
	if (vuf_vq_kick(d.ctrl) < 0)
		return false;
	for (unsigned done = 0; done < 2;) {
		if (!vuf_vq_used_pending(d.ctrl) && vuf_vq_wait_call(d.ctrl, 10000) <= 0 && !vuf_vq_used_pending(d.ctrl))
			return false;
		while (vuf_vq_used_pending(d.ctrl)) {
			uint32_t id, len;
			if (vuf_vq_wait_used(d.ctrl, &id, &len, 0) < 0)
				return false;
			done++;
		}
	}
	for (unsigned i = 0; i < 2; i++) {
		struct virtio_gpu_ctrl_hdr h;
		if (vuf_gpa_read(d.f, b->resp[i], &h, sizeof(h)) < 0 || h.type != VIRTIO_GPU_RESP_OK_NODATA)
			return false;
	}
	return true;
}

int main(int argc, char **argv)
{
	bool serial = argc == 4 && !strcmp(argv[3], "--serial");
	if (argc != 3 && !serial) {
		fprintf(stderr, "usage: gpu-bench SOCKET SECONDS [--serial]\n");
		return 2;
	}
	double seconds = atof(argv[2]);
	if (!gpu_drv_open(&d, argv[1], NULL, 64, true, FW, FH)) {
		fprintf(stderr, "gpu-bench: cannot set up the device: %s\n", d.f ? vuf_error(d.f) : "no connection");
		return 1;
	}
	pthread_mutex_lock(&d.peer->lock);
	d.peer->fast = !serial;
	pthread_mutex_unlock(&d.peer->lock);
	const uint32_t bytes = FW * FH * 4, pages = (bytes + PAGE - 1) / PAGE;
	uint64_t fb = vuf_alloc(d.f, (uint64_t)pages * PAGE, PAGE);
	uint8_t *px = vuf_gpa(d.f, fb, bytes);
	size_t req_len = sizeof(struct virtio_gpu_resource_attach_backing) + pages * sizeof(struct virtio_gpu_mem_entry);
	struct virtio_gpu_resource_attach_backing *ab = calloc(1, req_len);
	if (!fb || !px || !ab)
		return 1;

	struct virtio_gpu_resource_create_2d c = { { VIRTIO_GPU_CMD_RESOURCE_CREATE_2D }, 1,
						   VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, FW, FH };
	*ab = (struct virtio_gpu_resource_attach_backing){ { VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING }, 1, pages };
	struct virtio_gpu_mem_entry *e = (struct virtio_gpu_mem_entry *)(ab + 1);
	for (uint32_t i = 0; i < pages; i++)
		e[i] = (struct virtio_gpu_mem_entry){ fb + (uint64_t)i * PAGE, PAGE, 0 };
	struct virtio_gpu_set_scanout s = { { VIRTIO_GPU_CMD_SET_SCANOUT }, { 0, 0, FW, FH }, 0, 1 };
	if (send(&c, sizeof(c)) != VIRTIO_GPU_RESP_OK_NODATA || send(ab, req_len) != VIRTIO_GPU_RESP_OK_NODATA ||
	    send(&s, sizeof(s)) != VIRTIO_GPU_RESP_OK_NODATA) {
		fprintf(stderr, "gpu-bench: setting up the scanout failed\n");
		return 1;
	}
	struct virtio_gpu_transfer_to_host_2d t = { { VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D }, { 0, 0, FW, FH }, 0, 1, 0 };
	struct virtio_gpu_resource_flush f = { { VIRTIO_GPU_CMD_RESOURCE_FLUSH }, { 0, 0, FW, FH }, 1, 0 };
	struct frame_bufs bufs;
	for (unsigned i = 0; i < 2; i++) {
		bufs.req[i] = vuf_alloc(d.f, 64, 64);
		bufs.resp[i] = vuf_alloc(d.f, 64, 64);
	}
	if (!bufs.req[1] || !bufs.resp[1] || vuf_gpa_write(d.f, bufs.req[0], &t, sizeof(t)) < 0 ||
	    vuf_gpa_write(d.f, bufs.req[1], &f, sizeof(f)) < 0)
		return 1;
	int64_t start = vuf_now_ms(), end = start + (int64_t)(seconds * 1000);
	unsigned frames = 0;
	while (vuf_now_ms() < end) {
		/* A new row each frame: the transfer still copies the whole screen, the driver stays cheap. */
		memset(px + (size_t)(frames % FH) * FW * 4, frames & 0xff, FW * 4);
		bool ok = serial ? send(&t, sizeof(t)) == VIRTIO_GPU_RESP_OK_NODATA &&
					   send(&f, sizeof(f)) == VIRTIO_GPU_RESP_OK_NODATA
				 : frame(&bufs);
		if (!ok) {
			fprintf(stderr, "gpu-bench: frame %u failed\n", frames);
			return 1;
		}
		frames++;
	}
	double took = (vuf_now_ms() - start) / 1000.0;
	gpu_peer_wait_updates(d.peer, frames, 2000);
	pthread_mutex_lock(&d.peer->lock);
	unsigned updates = d.peer->updates;
	double mb = d.peer->update_bytes / 1e6;
	pthread_mutex_unlock(&d.peer->lock);
	printf("frames=%u seconds=%.3f updates=%u update_mb=%.0f\n", frames, took, updates, mb);
	free(ab);
	gpu_drv_close(&d);
	return 0;
}
