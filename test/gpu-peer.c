/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <linux/virtio_gpu.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "test/frontend.h"
#include "test/gpu-peer.h"

enum { GET_PROTOCOL_FEATURES = 1, SET_PROTOCOL_FEATURES, GET_DISPLAY_INFO, CURSOR_POS, CURSOR_POS_HIDE,
       CURSOR_UPDATE, SCANOUT, UPDATE, DMABUF_SCANOUT, DMABUF_UPDATE, GET_EDID, DMABUF_SCANOUT2 };
#define FLAG_REPLY 0x4

struct hdr {
	uint32_t request, flags, size;
};

#define READ_CHUNK 65536

static void wait_unpaused(struct gpu_peer *p)
{
	pthread_mutex_lock(&p->lock);
	while (p->paused)
		pthread_cond_wait(&p->resumed, &p->lock);
	pthread_mutex_unlock(&p->lock);
}

/* Reads len bytes in chunks, stopping between them while paused: a pause holds at most a chunk back. */
static bool read_all(struct gpu_peer *p, void *buf, size_t len)
{
	for (size_t done = 0; done < len;) {
		wait_unpaused(p);
		size_t want = len - done < READ_CHUNK || p->fast ? len - done : READ_CHUNK;
		ssize_t n = read(p->fd, (char *)buf + done, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		done += n;
	}
	return true;
}

static void reply(struct gpu_peer *p, uint32_t request, const void *payload, uint32_t size)
{
	struct hdr h = { request, FLAG_REPLY, size };
	char buf[sizeof(h) + 2048];

	memcpy(buf, &h, sizeof(h));
	if (size)
		memcpy(buf + sizeof(h), payload, size);
	if (write(p->fd, buf, sizeof(h) + size) < 0)
		return;
}

static void handle(struct gpu_peer *p, const struct hdr *h, const uint8_t *m)
{
	uint32_t u[5] = { 0 };

	if (h->size)
		memcpy(u, m, h->size < sizeof(u) ? h->size : sizeof(u));
	switch (h->request) {
	case GET_PROTOCOL_FEATURES: {
		uint64_t f = 3; /* EDID, DMABUF2 */
		reply(p, h->request, &f, sizeof(f));
		break;
	}
	case SET_PROTOCOL_FEATURES:
		memcpy(&p->features_set, m, sizeof(uint64_t));
		break;
	case GET_DISPLAY_INFO: {
		struct virtio_gpu_resp_display_info info = { .hdr.type = VIRTIO_GPU_RESP_OK_DISPLAY_INFO };
		info.pmodes[0].r.width = p->width;
		info.pmodes[0].r.height = p->height;
		info.pmodes[0].enabled = 1;
		info.pmodes[1].enabled = 1; /* beyond the back-end's outputs: it must hide this */
		reply(p, h->request, &info, sizeof(info));
		break;
	}
	case GET_EDID: {
		struct virtio_gpu_resp_edid e = { .hdr.type = VIRTIO_GPU_RESP_OK_EDID, .size = GPU_PEER_EDID_SIZE };
		memset(e.edid, 0xa5, GPU_PEER_EDID_SIZE);
		e.edid[0] = u[0]; /* the scanout asked for */
		reply(p, h->request, &e, sizeof(e));
		break;
	}
	case SCANOUT:
		p->scanouts++;
		if (u[0] == 0 && !p->fast) {
			free(p->fb);
			p->fb = calloc((size_t)u[1] * u[2] + 1, 4);
			p->scanout_w = u[1];
			p->scanout_h = u[2];
		}
		break;
	case UPDATE:
		p->updates++;
		p->update_bytes += h->size;
		p->last_x = u[1], p->last_y = u[2], p->last_w = u[3], p->last_h = u[4];
		if (h->size >= 24)
			memcpy(&p->tails[(p->updates - 1) % GPU_PEER_TAILS], m + h->size - 4, 4);
		if (u[0] == 0 && p->fb && u[1] <= p->scanout_w && u[3] <= p->scanout_w - u[1] &&
		    u[2] <= p->scanout_h && u[4] <= p->scanout_h - u[2] && h->size >= 20 + (uint64_t)u[3] * u[4] * 4)
			for (uint32_t y = 0; y < u[4]; y++)
				memcpy(p->fb + (size_t)(u[2] + y) * p->scanout_w + u[1], m + 20 + (size_t)y * u[3] * 4,
				       (size_t)u[3] * 4);
		break;
	case CURSOR_UPDATE:
		p->cursor_updates++;
		memcpy(&p->cursor_pixel, m + 20, 4);
		break;
	case CURSOR_POS:
		p->cursor_moves++;
		break;
	case CURSOR_POS_HIDE:
		p->cursor_hides++;
		break;
	case DMABUF_UPDATE:
		reply(p, h->request, NULL, 0);
		break;
	default:
		p->other++;
	}
}

static void *run(void *arg)
{
	struct gpu_peer *p = arg;
	uint8_t *buf = NULL;
	size_t cap = 0;
	struct hdr h;

	for (;;) {
		if (!read_all(p, &h, sizeof(h)))
			break;
		if (h.size > cap) {
			free(buf);
			cap = h.size;
			buf = malloc(cap);
			if (!buf)
				break;
		}
		if (!read_all(p, buf, h.size))
			break;
		pthread_mutex_lock(&p->lock);
		handle(p, &h, buf);
		pthread_mutex_unlock(&p->lock);
	}
	free(buf);
	pthread_mutex_lock(&p->lock);
	p->closed = true;
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

struct gpu_peer *gpu_peer_start(uint32_t width, uint32_t height)
{
	struct gpu_peer *p = calloc(1, sizeof(*p));
	int sv[2];

	if (!p || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		free(p);
		return NULL;
	}
	p->fd = sv[0];
	p->backend_fd = sv[1];
	p->width = width;
	p->height = height;
	p->features_set = ~0ull;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->resumed, NULL);
	if (pthread_create(&p->thread, NULL, run, p)) {
		close(sv[0]);
		close(sv[1]);
		free(p);
		return NULL;
	}
	return p;
}

void gpu_peer_pause(struct gpu_peer *p, bool paused)
{
	pthread_mutex_lock(&p->lock);
	p->paused = paused;
	pthread_cond_broadcast(&p->resumed);
	pthread_mutex_unlock(&p->lock);
}

void gpu_peer_stop(struct gpu_peer *p)
{
	if (!p)
		return;
	gpu_peer_pause(p, false);
	shutdown(p->fd, SHUT_RDWR);
	pthread_join(p->thread, NULL);
	close(p->fd);
	if (p->backend_fd >= 0)
		close(p->backend_fd);
	free(p->fb);
	free(p);
}

unsigned gpu_peer_updates(struct gpu_peer *p)
{
	pthread_mutex_lock(&p->lock);
	unsigned n = p->updates;
	pthread_mutex_unlock(&p->lock);
	return n;
}

bool gpu_peer_wait_updates(struct gpu_peer *p, unsigned n, int timeout_ms)
{
	for (int waited = 0; waited <= timeout_ms; waited++) {
		if (gpu_peer_updates(p) >= n)
			return true;
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	}
	return false;
}

/* ---- the driver ---- */

bool gpu_drv_open(struct gpu_drv *d, const char *sock, const char *const *args, unsigned ram_mib,
		  bool peer, uint32_t width, uint32_t height)
{
	const uint64_t features = 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_RING_F_EVENT_IDX |
				  1ull << VHOST_USER_F_PROTOCOL_FEATURES | 0xffffffull;
	const uint64_t pf = 1ull << VU_PF_MQ | 1ull << VU_PF_REPLY_ACK | 1ull << VU_PF_CONFIG;

	memset(d, 0, sizeof(*d));
	if (args && !(d->be = vuf_backend_start("gpu", args, sock)))
		return false;
	d->f = vuf_connect(sock, 2000);
	if (!d->f || vuf_mem_init(d->f, 1, (uint64_t)ram_mib << 20, 0) < 0 || vuf_negotiate(d->f, features, pf) < 0)
		return false;
	d->f->timeout_ms = 10000;
	if (peer) {
		d->peer = gpu_peer_start(width, height);
		if (!d->peer || vuf_request(d->f, VU_REQ_GPU_SET_SOCKET, NULL, 0, &d->peer->backend_fd, 1) < 0)
			return false;
		close(d->peer->backend_fd);
		d->peer->backend_fd = -1;
	}
	d->ctrl = vuf_vq_setup(d->f, 0, 256, 0);
	d->cursor = vuf_vq_setup(d->f, 1, 16, 0);
	d->req = vuf_alloc(d->f, GPU_DRV_REQ_MAX, 4096);
	d->resp = vuf_alloc(d->f, GPU_DRV_RESP_MAX, 4096);
	return d->ctrl && d->cursor && d->req && d->resp;
}

void gpu_drv_close(struct gpu_drv *d)
{
	vuf_close(d->f);
	if (d->be)
		vuf_backend_stop(d->be, 3000);
	gpu_peer_stop(d->peer);
	memset(d, 0, sizeof(*d));
}

uint32_t gpu_drv_cmd(struct gpu_drv *d, unsigned queue, const void *req, size_t req_len, void *resp,
		     size_t resp_len)
{
	struct vuf_vq *vq = queue ? d->cursor : d->ctrl;
	struct virtio_gpu_ctrl_hdr h = { 0 };
	uint32_t id, len;

	if (req_len > GPU_DRV_REQ_MAX || resp_len > GPU_DRV_RESP_MAX ||
	    vuf_gpa_write(d->f, d->req, req, req_len) < 0)
		return 0;
	vuf_gpa_write(d->f, d->resp, &h, sizeof(h));
	struct vuf_buf out = { d->req, req_len };
	struct vuf_buf in = { d->resp, resp_len > sizeof(h) ? resp_len : sizeof(h) };
	if (vuf_vq_add(vq, &out, 1, &in, 1, false) < 0 || vuf_vq_kick(vq) < 0 ||
	    vuf_vq_wait_used(vq, &id, &len, 10000) < 0)
		return 0;
	if (queue)
		return len == 0 ? VIRTIO_GPU_RESP_OK_NODATA : 0;
	if (resp && resp_len)
		vuf_gpa_read(d->f, d->resp, resp, resp_len);
	vuf_gpa_read(d->f, d->resp, &h, sizeof(h));
	return len >= sizeof(h) ? h.type : 0;
}
