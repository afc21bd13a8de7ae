/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virtio-gpu 2D commands (without --virgl): resources kept as host-side pixel
 * copies (gpu-pixels.c), filled from their backing by transfers and sent to the
 * scanouts that show them by flushes. Every number the guest
 * sends is checked: resource sizes against --max-memory, rectangles against the
 * resource (backing entries against guest memory: gpu-backing.c).
 */
#include <string.h>

#include "dev/gpu.h"
#include "dev/gpu-chan.h"

static uint32_t create_2d(struct gpu *g, struct gpu_cmd *cmd)
{
	struct virtio_gpu_resource_create_2d c;
	uint32_t err;

	if (!gpu_cmd_read(cmd, 0, &c, sizeof(c)))
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	if (!gpu_format_valid(c.format) || !c.width || !c.height || c.width > GPU_MAX_DIM || c.height > GPU_MAX_DIM)
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	uint64_t bytes = (uint64_t)c.width * c.height * GPU_BPP;
	struct gpu_res *res = gpu_res_new(g, c.resource_id, bytes, &err);
	if (!res)
		return err;
	res->format = c.format;
	res->width = c.width;
	res->height = c.height;
	if ((err = gpu_pixels_alloc(&res->px, bytes))) {
		gpu_res_free(g, res);
		return err;
	}
	return 0;
}

static uint32_t unref(struct gpu *g, struct gpu_cmd *cmd)
{
	struct virtio_gpu_resource_unref c;

	if (!gpu_cmd_read(cmd, 0, &c, sizeof(c)))
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	struct gpu_res *res = gpu_res_find(g, c.resource_id);
	if (!res)
		return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
	gpu_scanouts_drop(g, res);
	gpu_res_free(g, res);
	return 0;
}

static uint32_t attach_backing(struct gpu *g, struct gpu_cmd *cmd)
{
	struct virtio_gpu_resource_attach_backing c;

	if (!gpu_cmd_read(cmd, 0, &c, sizeof(c)))
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	struct gpu_res *res = gpu_res_find(g, c.resource_id);
	if (!res)
		return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
	if (res->backing.entries)
		return VIRTIO_GPU_RESP_ERR_UNSPEC; /* detach first */
	return gpu_backing_attach(g, cmd, &res->backing);
}

static uint32_t detach_backing(struct gpu *g, struct gpu_cmd *cmd)
{
	struct virtio_gpu_resource_detach_backing c;

	if (!gpu_cmd_read(cmd, 0, &c, sizeof(c)))
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	struct gpu_res *res = gpu_res_find(g, c.resource_id);
	if (!res)
		return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
	if (!res->backing.entries)
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	gpu_backing_free(g, &res->backing);
	return 0;
}

#define WAIT_FOR_DISPLAY UINT32_MAX  /* not a response: the command waits (gpu->parked) */

static void retry_parked(struct gpu *g)
{
	struct gpu_cmd *cmd = g->parked;

	g->parked = NULL;
	g->ctrl_waiting = false;
	gpu_2d_command(g, cmd);
	g->resume(g);
}

static uint32_t transfer_to_host(struct gpu *g, struct gpu_cmd *cmd)
{
	struct virtio_gpu_transfer_to_host_2d t;
	uint32_t err;
	struct gpu_res *res = gpu_transfer_2d_read(g, cmd, &t, &err);

	if (!res)
		return err;
	if (!res->backing.entries)
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	if (!t.r.width || !t.r.height)
		return 0;
	uint64_t stride = (uint64_t)res->width * GPU_BPP, row = (uint64_t)t.r.width * GPU_BPP;
	/* The last row read ends at offset + (height - 1) * stride + row. */
	uint64_t size = res->backing.size;
	if (t.offset > size || (uint64_t)(t.r.height - 1) * stride + row > size - t.offset)
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	uint64_t ticket;
	bool whole = t.r.width == res->width && t.r.height == res->height;
	uint8_t *pixels = gpu_pixels_for_write(g, &res->px, whole, &ticket);
	if (!pixels) {
		/* The front-end still reads these pixels: the transfer runs again once it has. */
		g->parked = cmd;
		g->ctrl_waiting = true;
		gpu_chan_when_read(g, ticket, retry_parked);
		return WAIT_FOR_DISPLAY;
	}
	uint8_t *dst = pixels + t.r.y * stride + (uint64_t)t.r.x * GPU_BPP;
	if (row == stride) {
		gpu_backing_read(&res->backing, t.offset, dst, t.r.height * stride);
		return 0;
	}
	for (uint32_t y = 0; y < t.r.height; y++)
		gpu_backing_read(&res->backing, t.offset + y * stride, dst + y * stride, row);
	return 0;
}

static uint32_t set_scanout(struct gpu *g, struct gpu_cmd *cmd)
{
	struct gpu_res *res;
	uint32_t id, err = gpu_scanout_set(g, cmd, &id, &res);

	if (!err && res) {
		gpu_pixels_share(g, &res->px);
		gpu_scanout_announce(g, id, g->scanout[id].r.width, g->scanout[id].r.height);
	}
	return err;
}

/* Sends the part of r (resource coordinates) that scanout i shows. */
static void update_scanout(struct gpu *g, struct gpu_res *res, unsigned i, const struct virtio_gpu_rect *r)
{
	struct gpu_msg_update head;
	uint32_t x0, y0;

	if (!gpu_scanout_visible(g, i, r, &head, &x0, &y0))
		return;
	uint32_t w = head.width, h = head.height;
	size_t stride = (size_t)res->width * GPU_BPP;
	const uint8_t *src = res->px.cur + y0 * stride + (size_t)x0 * GPU_BPP;
	/* Whole rows of memfd pixels already in the display's byte order are spliced as they are. */
	bool as_is = res->format == VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM || res->format == VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM;
	if (as_is && res->px.fd >= 0 && (w == res->width || h == 1)) {
		uint64_t ticket = gpu_chan_send_pages(g, GPU_MSG_UPDATE, &head, sizeof(head), res->px.fd,
						      src - res->px.map, w * h * GPU_BPP);
		if (ticket) {
			res->px.ticket[res->px.idx] = ticket;
			return;
		}
	}
	gpu_scanout_send_rows(g, &head, res->format, src, stride);
}

static uint32_t flush(struct gpu *g, struct gpu_cmd *cmd)
{
	struct virtio_gpu_resource_flush f;
	uint32_t err;
	struct gpu_res *res = gpu_flush_read(g, cmd, &f, &err);

	if (!res)
		return err;
	for (unsigned i = 0; i < g->max_outputs; i++)
		if (res->scanouts & (1u << i))
			update_scanout(g, res, i, &f.r);
	return 0;
}

void gpu_2d_command(struct gpu *g, struct gpu_cmd *cmd)
{
	uint32_t err;

	switch (cmd->hdr.type) {
	case VIRTIO_GPU_CMD_RESOURCE_CREATE_2D: err = create_2d(g, cmd); break;
	case VIRTIO_GPU_CMD_RESOURCE_UNREF: err = unref(g, cmd); break;
	case VIRTIO_GPU_CMD_SET_SCANOUT: err = set_scanout(g, cmd); break;
	case VIRTIO_GPU_CMD_RESOURCE_FLUSH: err = flush(g, cmd); break;
	case VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D: err = transfer_to_host(g, cmd); break;
	case VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING: err = attach_backing(g, cmd); break;
	case VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING: err = detach_backing(g, cmd); break;
	default: err = VIRTIO_GPU_RESP_ERR_UNSPEC; /* 3D without --virgl, or unknown */
	}
	if (err == WAIT_FOR_DISPLAY)
		return;
	gpu_respond_nodata(g, cmd, err ? err : VIRTIO_GPU_RESP_OK_NODATA);
}
