/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vhost-user-gpu 2D benchmark driver: a full-HD B8G8R8X8 resource backed by 4 KiB
 * guest pages, shown on scanout 0; each frame changes a row of guest pixels, then
 * TRANSFER_TO_HOST_2D + RESOURCE_FLUSH of the whole screen, one command at a time
 * (the back-end copies and sends the whole screen every frame either way; changing
 * only a row keeps the driver's own work from being what is measured).
 * Usage: gpu-bench SOCKET SECONDS   (the back-end already listens on SOCKET)
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

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: gpu-bench SOCKET SECONDS\n");
		return 2;
	}
	double seconds = atof(argv[2]);
	if (!gpu_drv_open(&d, argv[1], NULL, 64, true, FW, FH)) {
		fprintf(stderr, "gpu-bench: cannot set up the device: %s\n", d.f ? vuf_error(d.f) : "no connection");
		return 1;
	}
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
	int64_t start = vuf_now_ms(), end = start + (int64_t)(seconds * 1000);
	unsigned frames = 0;
	while (vuf_now_ms() < end) {
		/* A new row each frame: the transfer still copies the whole screen, the driver stays cheap. */
		memset(px + (size_t)(frames % FH) * FW * 4, frames & 0xff, FW * 4);
		if (send(&t, sizeof(t)) != VIRTIO_GPU_RESP_OK_NODATA || send(&f, sizeof(f)) != VIRTIO_GPU_RESP_OK_NODATA) {
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
