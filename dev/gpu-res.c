/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The resource table: the guest's resource ids, hashed to their objects, each
 * created charged against --max-memory and freed with its backing and pixels;
 * and the checks 2D and virgl commands share: a rectangle inside a resource,
 * the resource and rectangle of a TRANSFER_TO_HOST_2D.
 */
#include <stdlib.h>

#include "dev/gpu.h"

static unsigned bucket(uint32_t id)
{
	return (id * 2654435761u) >> 24;
}

struct gpu_res *gpu_res_find(struct gpu *g, uint32_t id)
{
	for (struct gpu_res *r = g->res[bucket(id)]; r; r = r->next)
		if (r->id == id)
			return r;
	return NULL;
}

struct gpu_res *gpu_res_new(struct gpu *g, uint32_t id, uint64_t bytes, uint32_t *err)
{
	struct gpu_res *r;

	if (id == 0 || gpu_res_find(g, id)) {
		*err = VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
		return NULL;
	}
	bytes += sizeof(*r);
	bool charged = gpu_charge(g, bytes);
	if (!charged || !(r = calloc(1, sizeof(*r)))) {
		if (charged) /* a refused charge counted nothing: giving it back would make room */
			g->used_memory -= bytes;
		*err = VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
		return NULL;
	}
	r->id = id;
	r->charged = bytes;
	r->px.fd = -1;
	r->next = g->res[bucket(id)];
	g->res[bucket(id)] = r;
	return r;
}

void gpu_res_free(struct gpu *g, struct gpu_res *res)
{
	struct gpu_res **p = &g->res[bucket(res->id)];

	while (*p != res)
		p = &(*p)->next;
	*p = res->next;
	gpu_backing_free(g, &res->backing);
	g->used_memory -= res->charged;
	gpu_pixels_free(g, &res->px);
	free(res);
}

void gpu_res_reset(struct gpu *g)
{
	for (unsigned b = 0; b < GPU_RES_BUCKETS; b++)
		while (g->res[b])
			gpu_res_free(g, g->res[b]);
}

bool gpu_rect_inside(const struct virtio_gpu_rect *r, uint32_t width, uint32_t height)
{
	return r->x <= width && r->width <= width - r->x && r->y <= height && r->height <= height - r->y;
}

struct gpu_res *gpu_transfer_2d_read(struct gpu *g, struct gpu_cmd *cmd,
				     struct virtio_gpu_transfer_to_host_2d *t, uint32_t *err)
{
	struct gpu_res *res;

	if (!gpu_cmd_read(cmd, 0, t, sizeof(*t)))
		*err = VIRTIO_GPU_RESP_ERR_UNSPEC;
	else if (!(res = gpu_res_find(g, t->resource_id)))
		*err = VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
	else if (!gpu_rect_inside(&t->r, res->width, res->height))
		*err = VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	else
		return res;
	return NULL;
}
