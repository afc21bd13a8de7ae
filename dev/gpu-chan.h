/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The vhost-user-gpu side channel (gpu-chan.c): the messages on the socket of
 * GPU_SET_SOCKET as they are on the wire, and the channel that queues them
 * towards the front-end and takes its replies.
 */
#ifndef VU_DEV_GPU_CHAN_H
#define VU_DEV_GPU_CHAN_H

#include "dev/gpu.h"

/* vhost-user-gpu requests (back-end → front-end). */
enum {
	GPU_MSG_GET_PROTOCOL_FEATURES = 1, GPU_MSG_SET_PROTOCOL_FEATURES, GPU_MSG_GET_DISPLAY_INFO,
	GPU_MSG_CURSOR_POS, GPU_MSG_CURSOR_POS_HIDE, GPU_MSG_CURSOR_UPDATE, GPU_MSG_SCANOUT,
	GPU_MSG_UPDATE, GPU_MSG_DMABUF_SCANOUT, GPU_MSG_DMABUF_UPDATE, GPU_MSG_GET_EDID,
	GPU_MSG_DMABUF_SCANOUT2,
};
#define GPU_MSG_FLAG_REPLY 0x4
#define GPU_PF_EDID 0
#define GPU_PF_DMABUF2 1

struct gpu_msg_hdr {
	uint32_t request, flags, size;
} __attribute__((packed));

struct gpu_msg_cursor_pos {
	uint32_t scanout_id, x, y;
} __attribute__((packed));

struct gpu_msg_cursor_update {
	struct gpu_msg_cursor_pos pos;
	uint32_t hot_x, hot_y;
	uint32_t data[GPU_CURSOR_SIZE * GPU_CURSOR_SIZE];
} __attribute__((packed));

struct gpu_msg_scanout {
	uint32_t scanout_id, width, height;
} __attribute__((packed));

struct gpu_msg_update {
	uint32_t scanout_id, x, y, width, height;
	uint8_t data[];
} __attribute__((packed));

struct gpu_msg_dmabuf_scanout {
	uint32_t scanout_id, x, y, width, height;
	uint32_t fd_width, fd_height, fd_stride, fd_flags;
	int32_t fd_drm_fourcc;
	uint64_t modifier;          /* DMABUF_SCANOUT2 only */
} __attribute__((packed));

/* A reply to a request (payload NULL: none came); see gpu_chan_call(). */
typedef void (*gpu_reply_fn)(struct gpu *g, struct gpu_cmd *cmd, const void *payload, uint32_t size);

int gpu_chan_open(struct gpu *g, int fd);
void gpu_chan_close(struct gpu *g);
/*
 * Too much is queued for the front-end: the control and cursor queues stop
 * taking requests; g->resume() runs when that ends.
 */
bool gpu_chan_busy(struct gpu *g);
/* Whether the front-end negotiated EDID / DMABUF_SCANOUT2. */
bool gpu_chan_has_edid(const struct gpu *g);
bool gpu_chan_has_dmabuf2(const struct gpu *g);
/*
 * Queues a message; payload of size bytes is copied. fd (or -1) travels with it and
 * is closed once sent. Dropped silently when there is no channel.
 */
void gpu_chan_send(struct gpu *g, uint32_t request, const void *payload, uint32_t size, int fd);
/* Queues a message whose payload the caller fills in: returns where, or NULL. */
void *gpu_chan_send_buf(struct gpu *g, uint32_t request, uint32_t size);
/*
 * Sends a request that has a reply; fn(g, cmd, payload, size) runs when it comes,
 * or with payload NULL if it cannot (no channel, bad reply, timeout, drain).
 * Returns false (fn not called) if there is no channel.
 */
bool gpu_chan_call(struct gpu *g, uint32_t request, const void *payload, uint32_t size, uint32_t reply_size,
		   gpu_reply_fn fn, struct gpu_cmd *cmd);
/* Gives up waiting on behalf of commands (their fn runs with NULL); late replies are dropped. */
void gpu_chan_abandon(struct gpu *g);
/*
 * Queues a message whose payload is head (copied) then len bytes of the file fd
 * at off, spliced into the socket: the front-end reads those pages themselves.
 * Returns their ticket for gpu_chan_reading(), or 0 if nothing was queued (no
 * channel, or it cannot splice): the caller then copies.
 */
uint64_t gpu_chan_send_pages(struct gpu *g, uint32_t request, const void *head, uint32_t head_size, int fd,
			     uint64_t off, uint32_t len);
/* Whether the front-end may still read the pages of ticket: they must not change yet. */
bool gpu_chan_reading(struct gpu *g, uint64_t ticket);
/*
 * Runs fn(g) once the pages of ticket are read, or once waiting is given up (the
 * channel closes, the ring stops, or the front-end has not read them for a while:
 * all pages then count as read). One wait at a time: the control queue waits with it.
 */
void gpu_chan_when_read(struct gpu *g, uint64_t ticket, void (*fn)(struct gpu *g));
/* Writes what is queued, as far as the socket takes it. */
void gpu_chan_flush(struct gpu *g);

#endif
