/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Scanouts, the displays the guest sets up with SET_SCANOUT: which resource
 * each shows and what part of it, kept in step with the resources' own masks.
 * Shared by gpu-2d.c and gpu-virgl.c, which tell the front-end each in their
 * way what an enabled scanout shows; a disabled one is announced here.
 */
#include <string.h>

#include "dev/gpu.h"
#include "dev/gpu-chan.h"

static void announce_off(struct gpu *g, unsigned id)
{
	struct gpu_msg_scanout m = { .scanout_id = id };
	gpu_chan_send(g, GPU_MSG_SCANOUT, &m, sizeof(m), -1);
}

static void scanout_clear(struct gpu *g, unsigned id)
{
	struct gpu_scanout *s = &g->scanout[id];
	struct gpu_res *old = s->res_id ? gpu_res_find(g, s->res_id) : NULL;

	if (old)
		old->scanouts &= ~(1u << id);
	memset(s, 0, sizeof(*s));
}

void gpu_scanouts_reset(struct gpu *g)
{
	for (unsigned i = 0; i < VIRTIO_GPU_MAX_SCANOUTS; i++)
		scanout_clear(g, i);
}

void gpu_scanouts_drop(struct gpu *g, struct gpu_res *res)
{
	for (unsigned i = 0; i < VIRTIO_GPU_MAX_SCANOUTS; i++)
		if (res->scanouts & (1u << i)) {
			scanout_clear(g, i);
			announce_off(g, i);
		}
}

uint32_t gpu_scanout_set(struct gpu *g, uint32_t scanout_id, uint32_t res_id, const struct virtio_gpu_rect *r,
			 struct gpu_res **resp)
{
	struct gpu_res *res = NULL;

	if (scanout_id >= g->max_outputs)
		return VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID;
	if (res_id) {
		res = gpu_res_find(g, res_id);
		if (!res)
			return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
		if (!r->width || !r->height || !gpu_rect_inside(r, res->width, res->height))
			return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	}
	scanout_clear(g, scanout_id);
	*resp = res;
	if (!res) {
		announce_off(g, scanout_id);
		return 0;
	}
	g->scanout[scanout_id] = (struct gpu_scanout){ .res_id = res_id, .r = *r };
	res->scanouts |= 1u << scanout_id;
	return 0;
}

bool gpu_scanout_visible(const struct gpu *g, unsigned id, const struct virtio_gpu_rect *r,
			 struct gpu_msg_update *u, uint32_t *x, uint32_t *y)
{
	const struct virtio_gpu_rect *s = &g->scanout[id].r;
	uint32_t x0 = r->x > s->x ? r->x : s->x, y0 = r->y > s->y ? r->y : s->y;
	uint32_t x1 = r->x + r->width < s->x + s->width ? r->x + r->width : s->x + s->width;
	uint32_t y1 = r->y + r->height < s->y + s->height ? r->y + r->height : s->y + s->height;

	if (x0 >= x1 || y0 >= y1)
		return false;
	*u = (struct gpu_msg_update){ id, x0 - s->x, y0 - s->y, x1 - x0, y1 - y0 };
	*x = x0;
	*y = y0;
	return true;
}
