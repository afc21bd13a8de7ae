/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virtio-gpu internals shared by dev/gpu*.c: the device state, resources and
 * scanouts, one control command being processed, and each file's entry points.
 *
 * The files are layers, each calling only into layers below it:
 *
 *   7  gpu.c          the device: options, config space, the queues and their
 *                     dispatch, reset, guest memory changes
 *   6  gpu-cursor.c   the cursor queue's commands, on 2D or virgl resources
 *   5  gpu-2d.c       2D commands on host-side copies (without --virgl)
 *      gpu-virgl.c    commands on virglrenderer's resources (--virgl)
 *   4  gpu-scanout.c  what each scanout shows
 *   3  gpu-res.c      the resource table, and the checks 2D and virgl share
 *   2  gpu-backing.c  the guest pages behind a resource
 *   1  gpu-pixels.c   where 2D pixels live
 *   0  gpu-cmd.c      one request: reading its body, answering it
 *      gpu-chan.c     the vhost-user-gpu side channel, with gpu-chan.h
 *      gpu-format.c   2D pixel formats and their conversion
 *
 * Upwards there is one way: the hook g->resume, which gpu.c sets, lets the
 * queues go on when a lower layer stops waiting (a reply, a drained channel, a
 * retired fence).
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
#define GPU_BPP 4u                  /* bytes per pixel: every 2D format has 32-bit pixels */

struct vu_loop;
struct vu_mem;
struct gpu_virgl;
struct gpu;

/* Guest pages behind a resource, as the guest gave them and as host iovecs. */
struct gpu_backing {
	struct virtio_gpu_mem_entry *entries;
	unsigned nentries;
	uint64_t size;              /* sum of the entry lengths */
	struct iovec *iov;          /* translated in the current guest memory (mem_changed keeps them so) */
	uint64_t *iov_end;          /* offset just past each iov, for lookups */
	unsigned niov;
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

struct gpu_chan;                    /* the vhost-user-gpu socket (gpu-chan.h) */

struct gpu {
	struct vu_dev dev;
	struct vu_loop *loop;
	/* options */
	unsigned max_outputs;
	uint64_t max_memory;
	bool virgl_wanted;
	const char *render_node;

	const struct vu_mem *mem;   /* guest memory (the table mem_changed gave), NULL: none */
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
	struct vu_vring *cursor_vq; /* set while the cursor queue runs (it may wait for the display) */

	struct gpu_chan *chan;      /* NULL until GPU_SET_SOCKET */
	/*
	 * Bytes ever queued on display channels, and how many of them the front-end
	 * has surely read: a spliced message's ticket is where it ends in that count.
	 */
	uint64_t stream_queued, stream_read;
	unsigned shared_pixels;     /* resources with memfd pixels */
	struct gpu_virgl *virgl;    /* NULL without --virgl */
	/*
	 * The queues may go on (a reply came, the side channel drained, a fence
	 * retired): set by gpu.c, which runs the queues; the files below it reach
	 * it through this.
	 */
	void (*resume)(struct gpu *g);
};

/*
 * Counts bytes against --max-memory; false (nothing counted) if they do not fit.
 * Pixels, backings and resources all charge: this sits below every layer.
 */
static inline bool gpu_charge(struct gpu *g, uint64_t bytes)
{
	if (bytes > g->max_memory - g->used_memory)
		return false;
	g->used_memory += bytes;
	return true;
}

/* ---- gpu-cmd.c: one request's body and response ---- */

/* Answers cmd with a response of size bytes starting with a ctrl header (type set by the caller). */
void gpu_respond(struct gpu *g, struct gpu_cmd *cmd, void *resp, size_t size);
/* Answers cmd with a header-only response of this type (OK_NODATA or an ERR_*). */
void gpu_respond_nodata(struct gpu *g, struct gpu_cmd *cmd, uint32_t type);
/* Reads the request's body (after nothing: offset 0) into buf; false if it is shorter. */
bool gpu_cmd_read(const struct gpu_cmd *cmd, size_t offset, void *buf, size_t len);

/* ---- gpu-format.c: 2D pixel formats ---- */

bool gpu_format_valid(uint32_t format);
/* Copies a width x height area of 32-bit pixels in format to x8r8g8b8 (cursor: a8r8g8b8). */
void gpu_convert_rows(uint32_t format, const uint8_t *src, size_t src_stride, uint8_t *dst, uint32_t width,
		      uint32_t height, bool keep_alpha);

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

/* ---- gpu-backing.c: the guest pages behind a resource ---- */

/* Reads and checks the entries of RESOURCE_ATTACH_BACKING into b; 0 or an ERR_* code. */
uint32_t gpu_backing_attach(struct gpu *g, struct gpu_cmd *cmd, struct gpu_backing *b);
void gpu_backing_free(struct gpu *g, struct gpu_backing *b);
/*
 * Translates b's entries into b->iov in the current guest memory (at attach time
 * and when the memory changes, never per transfer); false if some entry left it
 * or there was no room: drop the backing then.
 */
bool gpu_backing_map(struct gpu *g, struct gpu_backing *b);
/* Copies len bytes at offset off of the backing (mapped, range checked) to dst. */
void gpu_backing_read(const struct gpu_backing *b, uint64_t off, uint8_t *dst, size_t len);

/* ---- gpu-res.c: the resource table ---- */

struct gpu_res *gpu_res_find(struct gpu *g, uint32_t id);
/* Creates and registers a resource object charged `bytes`; NULL with *err set. */
struct gpu_res *gpu_res_new(struct gpu *g, uint32_t id, uint64_t bytes, uint32_t *err);
/* Frees res with its backing and pixels; no scanout may show it (gpu_scanouts_drop). */
void gpu_res_free(struct gpu *g, struct gpu_res *res);
/* Frees every resource (no scanout shows any: gpu_scanouts_reset). */
void gpu_res_reset(struct gpu *g);
/* Checks a rectangle against a width x height area. */
bool gpu_rect_inside(const struct virtio_gpu_rect *r, uint32_t width, uint32_t height);
/*
 * Reads a TRANSFER_TO_HOST_2D command (2D and virgl share it): the resource, with
 * the rectangle inside it, or NULL with *err set to the response code.
 */
struct gpu_res *gpu_transfer_2d_read(struct gpu *g, struct gpu_cmd *cmd,
				     struct virtio_gpu_transfer_to_host_2d *t, uint32_t *err);

/* ---- gpu-scanout.c: what each scanout shows ---- */

/*
 * SET_SCANOUT's common part: reads, checks and records the command (announces only
 * a disabled scanout); 0 or an ERR_* code. On 0, *id is the scanout and *res what it
 * now shows (NULL: disabled), for the caller to announce in its way.
 */
uint32_t gpu_scanout_set(struct gpu *g, struct gpu_cmd *cmd, uint32_t *id, struct gpu_res **res);
/* Tells the front-end scanout id shows width x height pixels (0 x 0: disabled). */
void gpu_scanout_announce(struct gpu *g, unsigned id, uint32_t width, uint32_t height);
/*
 * Reads a RESOURCE_FLUSH command (2D and virgl share it): the resource, with the
 * rectangle inside it, or NULL with *err set to the response code.
 */
struct gpu_res *gpu_flush_read(struct gpu *g, struct gpu_cmd *cmd, struct virtio_gpu_resource_flush *f,
			       uint32_t *err);
struct gpu_msg_update;
/*
 * The part of r (resource coordinates) that scanout id shows: its UPDATE header
 * (where on the scanout) in *u, its top-left corner in the resource in *x, *y;
 * false if the scanout shows none of r.
 */
bool gpu_scanout_visible(const struct gpu *g, unsigned id, const struct virtio_gpu_rect *r,
			 struct gpu_msg_update *u, uint32_t *x, uint32_t *y);
/* Sends head's rectangle of src (rows stride bytes apart, in format) as an UPDATE in the display's byte order. */
void gpu_scanout_send_rows(struct gpu *g, const struct gpu_msg_update *head, uint32_t format, const uint8_t *src,
			   size_t stride);
/* Disables the scanouts that show res, telling the front-end: before res is freed. */
void gpu_scanouts_drop(struct gpu *g, struct gpu_res *res);
/* Disables every scanout, telling no one (the device resets). */
void gpu_scanouts_reset(struct gpu *g);

/* ---- gpu-2d.c: 2D commands on host-side copies ---- */

void gpu_2d_command(struct gpu *g, struct gpu_cmd *cmd);

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
/* Guest memory changed: res's backing is translated anew and lent to virglrenderer again (or dropped). */
void gpu_virgl_remap(struct gpu *g, struct gpu_res *res);
uint32_t gpu_virgl_num_capsets(const struct gpu *g);
/* The 64x64 a8r8g8b8 image of a cursor resource. */
void gpu_virgl_cursor_image(struct gpu *g, struct gpu_res *res, uint8_t *data);
const char *gpu_default_render_node(void);

/* ---- gpu-cursor.c: the cursor queue ---- */

/* Tells the front-end about one cursor request (it has no response). */
void gpu_cursor_command(struct gpu *g, struct gpu_cmd *cmd);

#endif
