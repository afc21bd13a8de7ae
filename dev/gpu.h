/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virtio-gpu internals shared by dev/gpu*.c: the device state, resources and
 * scanouts, one control command being processed, and the entry points of the
 * 2D resource code (gpu-2d.c), the vhost-user-gpu side channel (gpu-scanout.c)
 * and the virgl 3D renderer (gpu-virgl.c).
 */
#ifndef VU_DEV_GPU_H
#define VU_DEV_GPU_H

#include <linux/virtio_gpu.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "proto/device.h"

#define GPU_MAX_IOV 64              /* segments of one control request */
#define GPU_CMD_SLOTS 64            /* control requests in flight (waiting for a fence or a reply) */
#define GPU_MAX_BACKING 16384       /* entries of one RESOURCE_ATTACH_BACKING */
#define GPU_MAX_DIM 16384           /* widest and tallest resource */
#define GPU_RES_BUCKETS 256
#define GPU_CURSOR_SIZE 64
#define GPU_MAX_SHARED 32           /* resources with memfd pixels (each holds an fd) */

struct vu_loop;
struct vu_mem;
struct gpu_virgl;
struct gpu;

/* Guest pages behind a resource, as the guest gave them and as host iovecs. */
struct gpu_backing {
	struct virtio_gpu_mem_entry *entries;
	unsigned nentries;
	uint64_t size;              /* sum of the entry lengths */
	struct iovec *iov;          /* translated in guest memory epoch `epoch` */
	uint64_t *iov_end;          /* offset just past each iov, for lookups */
	unsigned niov;
	unsigned epoch;
};

/*
 * Where a 2D resource's pixels live (gpu-pixels.c): on the heap, or, once a scanout
 * shows a big one, in a memfd with room for two buffers. Updates of memfd pixels
 * are spliced into the display socket (the front-end reads our pages, nothing is
 * copied on the way), so a buffer the front-end may still read is never written:
 * a transfer that replaces every pixel fills the other buffer, any other waits.
 */
struct gpu_pixels {
	uint8_t *cur;               /* the resource's pixels: width * 4 bytes per row */
	uint64_t size;              /* bytes of one buffer */
	int fd;                     /* the memfd; -1: cur is on the heap */
	uint8_t *map;               /* the memfd's mapping: buffer i at map + i * size */
	unsigned idx;               /* cur == map + idx * size */
	uint64_t ticket[2];         /* each buffer's last splice (gpu_chan_send_pages) */
	bool second;                /* the second buffer is made and charged */
};

struct gpu_res {
	uint32_t id, format, width, height;
	struct gpu_pixels px;       /* 2D: the host copy */
	uint64_t charged;           /* bytes counted against --max-memory */
	struct gpu_backing backing;
	uint32_t scanouts;          /* bitmask of scanouts showing it */
	bool virgl;                 /* created through virglrenderer */
	struct gpu_res *next;       /* hash chain */
};

struct gpu_scanout {
	uint32_t res_id;            /* 0: disabled */
	struct virtio_gpu_rect r;   /* the part of the resource shown */
};

/* One control (or cursor) request from pop to completion. */
struct gpu_cmd {
	struct vu_vring *vq;
	struct vu_req req;
	struct iovec iov[GPU_MAX_IOV];
	struct virtio_gpu_ctrl_hdr hdr;
	size_t out_bytes;
	uint32_t fence;             /* virgl: the fence that completes it */
	struct gpu_cmd *next;       /* free list, or the fence list */
};

/* The vhost-user-gpu socket (gpu-scanout.c). */
typedef void (*gpu_reply_fn)(struct gpu *g, struct gpu_cmd *cmd, const void *payload, uint32_t size);
struct gpu_chan;

struct gpu {
	struct vu_dev dev;
	struct vu_loop *loop;
	/* options */
	unsigned max_outputs;
	uint64_t max_memory;
	bool virgl_wanted;
	const char *render_node;

	const struct vu_mem *mem;   /* guest memory, from the rings */
	unsigned mem_epoch;         /* bumped whenever the mapping may change */
	uint64_t used_memory;
	struct gpu_res *res[GPU_RES_BUCKETS];
	struct gpu_scanout scanout[VIRTIO_GPU_MAX_SCANOUTS];
	struct virtio_gpu_config config;

	struct vu_vring *ctrl_vq;
	struct gpu_cmd slots[GPU_CMD_SLOTS];
	struct gpu_cmd *free;
	struct gpu_cmd *parked;     /* a transfer waiting for the display to read pixels it would overwrite */
	bool ctrl_dirty;            /* completions pushed on the control ring, not flushed */
	bool ctrl_waiting;          /* a command waits for the front-end: stop popping */

	struct gpu_chan *chan;      /* NULL until GPU_SET_SOCKET */
	/*
	 * Bytes ever queued on display channels, and how many of them the front-end
	 * has surely read: a spliced message's ticket is where it ends in that count.
	 */
	uint64_t stream_queued, stream_read;
	unsigned shared_pixels;     /* resources with memfd pixels */
	struct gpu_virgl *virgl;    /* NULL without --virgl */
};

/* ---- gpu.c: completing commands ---- */

/* Answers cmd with a response of size bytes starting with a ctrl header (type set by the caller). */
void gpu_respond(struct gpu *g, struct gpu_cmd *cmd, void *resp, size_t size);
/* Answers cmd with a header-only response of this type (OK_NODATA or an ERR_*). */
void gpu_respond_nodata(struct gpu *g, struct gpu_cmd *cmd, uint32_t type);
/* The control queue may go on (a reply came, the side channel drained, a fence retired). */
void gpu_resume(struct gpu *g);
/* Reads the request's body (after nothing: offset 0) into buf; false if it is shorter. */
bool gpu_cmd_read(const struct gpu_cmd *cmd, size_t offset, void *buf, size_t len);

/* ---- gpu-2d.c: resources, scanouts, cursor (host-side copies) ---- */

struct gpu_res *gpu_res_find(struct gpu *g, uint32_t id);
/* Counts bytes against --max-memory; false (nothing counted) if they do not fit. */
bool gpu_charge(struct gpu *g, uint64_t bytes);
/* Creates and registers a resource object charged `bytes`; NULL with *err set. */
struct gpu_res *gpu_res_new(struct gpu *g, uint32_t id, uint64_t bytes, uint32_t *err);
void gpu_res_free(struct gpu *g, struct gpu_res *res);
/* Reads and checks the entries of RESOURCE_ATTACH_BACKING into b; 0 or an ERR_* code. */
uint32_t gpu_backing_attach(struct gpu *g, struct gpu_cmd *cmd, struct gpu_backing *b);
void gpu_backing_free(struct gpu *g, struct gpu_backing *b);
/* Makes b->iov match the current guest memory; false if some page left it. */
bool gpu_backing_map(struct gpu *g, struct gpu_backing *b);
/* Checks a rectangle against a width x height area. */
bool gpu_rect_inside(const struct virtio_gpu_rect *r, uint32_t width, uint32_t height);
/*
 * Reads a TRANSFER_TO_HOST_2D command (2D and virgl share it): the resource, with
 * the rectangle inside it, or NULL with *err set to the response code.
 */
struct gpu_res *gpu_transfer_2d_read(struct gpu *g, struct gpu_cmd *cmd,
				     struct virtio_gpu_transfer_to_host_2d *t, uint32_t *err);
struct gpu_msg_update;
/*
 * The part of r (resource coordinates) that scanout id shows: its UPDATE header
 * (where on the scanout) in *u, its top-left corner in the resource in *x, *y;
 * false if the scanout shows none of r.
 */
bool gpu_scanout_visible(const struct gpu *g, unsigned id, const struct virtio_gpu_rect *r,
			 struct gpu_msg_update *u, uint32_t *x, uint32_t *y);
/* Shows or hides scanouts whose resource is res (disabling them). */
void gpu_scanouts_drop(struct gpu *g, struct gpu_res *res);
/* SET_SCANOUT's common part: checks and records (announces only a disabled scanout); 0 or an ERR_* code. */
uint32_t gpu_scanout_set(struct gpu *g, uint32_t scanout_id, uint32_t res_id, const struct virtio_gpu_rect *r,
			 struct gpu_res **resp);
void gpu_2d_command(struct gpu *g, struct gpu_cmd *cmd);
void gpu_cursor_command(struct gpu *g, struct gpu_cmd *cmd);
void gpu_reset_resources(struct gpu *g);
/* Copies a width x height area of 32-bit pixels in format to x8r8g8b8 (cursor: a8r8g8b8). */
void gpu_convert_rows(uint32_t format, const uint8_t *src, size_t src_stride, uint8_t *dst, uint32_t width,
		      uint32_t height, bool keep_alpha);
bool gpu_format_valid(uint32_t format);

/* ---- gpu-pixels.c: where 2D pixels live ---- */

/* Zeroed pixels on the heap; 0 or VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY. */
uint32_t gpu_pixels_alloc(struct gpu_pixels *p, uint64_t size);
void gpu_pixels_free(struct gpu *g, struct gpu_pixels *p);
/* A scanout shows them: big heap pixels move into a memfd (they stay if they cannot). */
void gpu_pixels_share(struct gpu *g, struct gpu_pixels *p);
/*
 * The buffer a transfer writes (and from now on the current one): the current
 * buffer, or for a transfer of every pixel (whole) the other one, whichever the
 * front-end no longer reads. NULL if none: wait for *ticket with gpu_chan_when_read().
 */
uint8_t *gpu_pixels_for_write(struct gpu *g, struct gpu_pixels *p, bool whole, uint64_t *ticket);
/* memcpy for big copies into pixels: stores that bypass the cache, which the copy would only flush. */
void gpu_pixels_copy(uint8_t *dst, const uint8_t *src, size_t len);

/* ---- gpu-scanout.c: the vhost-user-gpu protocol towards the front-end ---- */

int gpu_chan_open(struct gpu *g, int fd);
void gpu_chan_close(struct gpu *g);
/*
 * Too much is queued for the front-end: the control queue stops taking
 * requests; gpu_resume() runs when that ends.
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

/* ---- gpu-virgl.c: 3D through virglrenderer ---- */

bool gpu_virgl_probe(const char *render_node, bool need_node);
/* What virglrenderer and Mesa call while serving (confined with --virgl: seccomp only). */
extern const struct vu_syscall gpu_virgl_syscalls[];
int gpu_virgl_init(struct gpu *g);
void gpu_virgl_fini(struct gpu *g);
void gpu_virgl_command(struct gpu *g, struct gpu_cmd *cmd);
/* Completes fenced commands whose fences have retired, or (wait) all of them. */
void gpu_virgl_drain(struct gpu *g, bool wait);
void gpu_virgl_reset(struct gpu *g);
uint32_t gpu_virgl_num_capsets(const struct gpu *g);
/* The 64x64 a8r8g8b8 image of a cursor resource. */
void gpu_virgl_cursor_image(struct gpu *g, struct gpu_res *res, uint8_t *data);
const char *gpu_default_render_node(void);

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

#endif
