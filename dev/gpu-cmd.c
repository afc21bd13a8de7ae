/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One request of the control (or cursor) queue: reading its body, and
 * answering it. The response goes on its ring (gpu.c flushes it), its slot back
 * to the free list; a fenced command's response carries its fence.
 */
#include "dev/gpu.h"
#include "proto/iov.h"
#include "proto/log.h"

bool gpu_cmd_read(const struct gpu_cmd *cmd, size_t offset, void *buf, size_t len)
{
	return offset + len <= cmd->out_bytes &&
	       vu_iov_to_buf(cmd->req.iov, cmd->req.out, offset, buf, len) == len;
}

void gpu_respond(struct gpu *g, struct gpu_cmd *cmd, void *resp, size_t size)
{
	struct virtio_gpu_ctrl_hdr *h = resp;

	h->flags = 0;
	h->fence_id = 0;
	h->ctx_id = 0;
	h->ring_idx = 0;
	if (cmd->hdr.flags & VIRTIO_GPU_FLAG_FENCE) {
		h->flags = cmd->hdr.flags & (VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX);
		h->fence_id = cmd->hdr.fence_id;
		h->ctx_id = cmd->hdr.ctx_id;
		h->ring_idx = cmd->hdr.ring_idx;
	}
	size_t written = vu_iov_from_buf(cmd->req.iov + cmd->req.out, cmd->req.in, 0, resp, size);
	vu_vring_push(cmd->vq, &cmd->req, written);
	g->ctrl_dirty = true;
	cmd->next = g->free;
	g->free = cmd;
}

void gpu_respond_nodata(struct gpu *g, struct gpu_cmd *cmd, uint32_t type)
{
	struct virtio_gpu_ctrl_hdr h = { .type = type };

	if (type != VIRTIO_GPU_RESP_OK_NODATA)
		vu_debug("gpu command 0x%x: error 0x%x", cmd->hdr.type, type);
	gpu_respond(g, cmd, &h, sizeof(h));
}
