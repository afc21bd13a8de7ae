/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The cursor queue's commands: MOVE_CURSOR and UPDATE_CURSOR become the
 * front-end's CURSOR_POS, CURSOR_POS_HIDE and CURSOR_UPDATE. The image comes
 * from a 2D resource's pixels or, for a virgl one, from virglrenderer.
 */
#include <stddef.h>
#include <string.h>

#include "dev/gpu.h"
#include "dev/gpu-chan.h"

void gpu_cursor_command(struct gpu *g, struct gpu_cmd *cmd)
{
	struct virtio_gpu_update_cursor c;

	if (!gpu_cmd_read(cmd, 0, &c, sizeof(c)) || c.pos.scanout_id >= g->max_outputs)
		return;
	struct gpu_msg_cursor_pos pos = { c.pos.scanout_id, c.pos.x, c.pos.y };
	if (c.hdr.type == VIRTIO_GPU_CMD_MOVE_CURSOR) {
		gpu_chan_send(g, GPU_MSG_CURSOR_POS, &pos, sizeof(pos), -1);
		return;
	}
	if (c.hdr.type != VIRTIO_GPU_CMD_UPDATE_CURSOR)
		return;
	if (!c.resource_id) {
		gpu_chan_send(g, GPU_MSG_CURSOR_POS_HIDE, &pos, sizeof(pos), -1);
		return;
	}
	struct gpu_res *res = gpu_res_find(g, c.resource_id);
	if (!res)
		return;
	struct gpu_msg_cursor_update *m = gpu_chan_send_buf(g, GPU_MSG_CURSOR_UPDATE, sizeof(*m));
	if (!m)
		return;
	memset(m, 0, sizeof(*m));
	m->pos = pos;
	m->hot_x = c.hot_x;
	m->hot_y = c.hot_y;
	uint8_t *image = (uint8_t *)m + offsetof(struct gpu_msg_cursor_update, data);
	if (res->virgl) {
		gpu_virgl_cursor_image(g, res, image);
		return;
	}
	uint32_t w = res->width < GPU_CURSOR_SIZE ? res->width : GPU_CURSOR_SIZE;
	uint32_t h = res->height < GPU_CURSOR_SIZE ? res->height : GPU_CURSOR_SIZE;
	for (uint32_t y = 0; y < h; y++)
		gpu_convert_rows(res->format, res->px.cur + (size_t)y * res->width * GPU_BPP, 0,
				 image + y * GPU_CURSOR_SIZE * GPU_BPP, w, 1, true);
}
