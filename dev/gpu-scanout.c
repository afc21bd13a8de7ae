/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Scanouts, the displays the guest sets up with SET_SCANOUT: which resource
 * each shows and what part of it, kept in step with the resources' own masks.
 * Shared by gpu-2d.c and gpu-virgl.c (SET_SCANOUT and RESOURCE_FLUSH read and
 * checked, pixels sent as an UPDATE), which tell the front-end each in their
 * way what an enabled scanout shows; a disabled one is announced here.
 */
#include <string.h>

#include "dev/gpu.h"
#include "dev/gpu-chan.h"

void gpu_scanout_announce(struct gpu *g, unsigned id, uint32_t width, uint32_t height)
{
	struct gpu_msg_scanout m = { id, width, height };

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
			gpu_scanout_announce(g, i, 0, 0);
		}
}

uint32_t gpu_scanout_set(struct gpu *g, struct gpu_cmd *cmd, uint32_t *idp, struct gpu_res **resp)
{
	struct virtio_gpu_set_scanout c;
	struct gpu_res *res = NULL;

	*resp = NULL;
	if (!gpu_cmd_read(cmd, 0, &c, sizeof(c)))
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	uint32_t scanout_id = c.scanout_id, res_id = c.resource_id;
	const struct virtio_gpu_rect *r = &c.r;
	*idp = scanout_id;
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
		gpu_scanout_announce(g, scanout_id, 0, 0);
		return 0;
	}
	g->scanout[scanout_id] = (struct gpu_scanout){ .res_id = res_id, .r = *r };
	res->scanouts |= 1u << scanout_id;
	return 0;
}

struct gpu_res *gpu_flush_read(struct gpu *g, struct gpu_cmd *cmd, struct virtio_gpu_resource_flush *f,
			       uint32_t *err)
{
	struct gpu_res *res = NULL;

	*err = 0;
	if (!gpu_cmd_read(cmd, 0, f, sizeof(*f)))
		*err = VIRTIO_GPU_RESP_ERR_UNSPEC;
	else if (!(res = gpu_res_find(g, f->resource_id)))
		*err = VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
	else if (!gpu_rect_inside(&f->r, res->width, res->height))
		*err = VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	return *err ? NULL : res;
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

void gpu_scanout_send_rows(struct gpu *g, const struct gpu_msg_update *head, uint32_t format, const uint8_t *src,
			   size_t stride)
{
	struct gpu_msg_update *m =
		gpu_chan_send_buf(g, GPU_MSG_UPDATE, sizeof(*m) + (size_t)head->width * head->height * GPU_BPP);

	if (!m)
		return;
	*m = *head;
	gpu_convert_rows(format, src, stride, m->data, head->width, head->height, false);
}
