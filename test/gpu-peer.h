/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The display end of the vhost-user-gpu side channel, for tests and benchmarks:
 * a thread that answers the back-end's queries (protocol features, display info,
 * EDID, dmabuf update acks) and records what it is shown (scanouts, updates,
 * cursor), keeping a copy of scanout 0's pixels. And the guest driver end: a
 * back-end connection with both queues and one command at a time.
 */
#ifndef VU_TEST_GPU_PEER_H
#define VU_TEST_GPU_PEER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define GPU_PEER_EDID_SIZE 128
#define GPU_PEER_TAILS 16

struct gpu_peer {
	int fd;                     /* our end */
	int backend_fd;             /* the end to send with GPU_SET_SOCKET (closed once sent) */
	uint32_t width, height;     /* what GET_DISPLAY_INFO reports for scanout 0 */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t resumed;
	bool paused;                /* stop reading the socket (it fills up) until resumed */
	/*
	 * For benchmarks (set before SCANOUT): keep no picture and read a message in
	 * one go; by default scanout 0 is kept in fb and reads go in small chunks, so
	 * that a pause holds back all but a chunk of what the back-end sends.
	 */
	bool fast;
	/* what the back-end did, under lock */
	uint64_t features_set;      /* SET_PROTOCOL_FEATURES, or ~0 before */
	unsigned scanouts, updates, cursor_updates, cursor_moves, cursor_hides, other;
	uint64_t update_bytes;
	uint32_t scanout_w, scanout_h;
	uint32_t last_x, last_y, last_w, last_h;
	uint32_t *fb;               /* scanout 0, scanout_w x scanout_h x8r8g8b8 */
	uint32_t cursor_pixel;      /* first pixel of the last cursor image */
	uint32_t tails[GPU_PEER_TAILS]; /* last pixel of update n, at (n - 1) % GPU_PEER_TAILS */
	bool closed;
};

/* Starts the peer; NULL on failure. */
struct gpu_peer *gpu_peer_start(uint32_t width, uint32_t height);
void gpu_peer_stop(struct gpu_peer *p);
/* Stops or resumes reading the side channel. */
void gpu_peer_pause(struct gpu_peer *p, bool paused);
/* Updates received so far (locked read). */
unsigned gpu_peer_updates(struct gpu_peer *p);
/* Waits up to timeout_ms until at least n updates arrived; true if they did. */
bool gpu_peer_wait_updates(struct gpu_peer *p, unsigned n, int timeout_ms);

/* ---- the driver ---- */

struct vuf;
struct vuf_vq;
struct vuf_backend;

struct gpu_drv {
	struct vuf_backend *be;
	struct vuf *f;
	struct vuf_vq *ctrl, *cursor;
	struct gpu_peer *peer;
	uint64_t req, resp;         /* guest buffers for one command */
};
#define GPU_DRV_REQ_MAX (1u << 20)
#define GPU_DRV_RESP_MAX 65536

/*
 * Starts `$VHOSTBOX gpu --socket-path=SOCK ARGS` (args NULL: a back-end already
 * listens there), connects with ram_mib of guest RAM, hands it a display peer
 * (width x height) unless peer is false. false on failure.
 */
bool gpu_drv_open(struct gpu_drv *d, const char *sock, const char *const *args, unsigned ram_mib,
		  bool peer, uint32_t width, uint32_t height);
void gpu_drv_close(struct gpu_drv *d);
/*
 * Sends one control (cursor: queue 1) request of req_len bytes and waits for its
 * response; returns the response type (0 if none came) and copies up to resp_len bytes.
 */
uint32_t gpu_drv_cmd(struct gpu_drv *d, unsigned queue, const void *req, size_t req_len, void *resp,
		     size_t resp_len);

#endif
