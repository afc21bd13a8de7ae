/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virtio-gpu (device id 16) as a vhost-user-gpu back-end: options, config
 * space, the control and cursor queues, and command dispatch. 2D resources are
 * kept host-side (gpu-2d.c); --virgl hands them and the 3D commands to
 * virglrenderer (gpu-virgl.c). What the guest shows goes to the front-end over
 * the socket of GPU_SET_SOCKET (gpu-chan.c). gpu.h says what the other files
 * hold and how they layer, this one on top.
 *
 * build: gpu.c gpu-cmd.c gpu-chan.c gpu-format.c gpu-pixels.c gpu-backing.c gpu-res.c gpu-scanout.c gpu-2d.c gpu-virgl.c gpu-virgl-lib.c gpu-cursor.c
 * pkg-config: virglrenderer epoxy gbm libdrm
 * dlopen: virglrenderer epoxy gbm libdrm
 * fallback: gpu-virgl.c gpu-virgl-lib.c -> gpu-novirgl.c
 * debian: libvirglrenderer-dev libepoxy-dev libgbm-dev libdrm-dev
 * systemd: RestrictAddressFamilies=AF_UNIX
 * systemd: PrivateNetwork=yes
 */
#include <fcntl.h>
#include <linux/sockios.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dev/gpu.h"
#include "dev/gpu-chan.h"
#include "proto/iov.h"
#include "proto/log.h"

#define DEFAULT_WIDTH 1280
#define DEFAULT_HEIGHT 800
#define DEFAULT_MAX_MEMORY_MIB 256
enum { Q_CONTROL = 0, Q_CURSOR = 1 };

#define GPU_FIELD(f) offsetof(struct gpu, f)
static const struct vu_option gpu_options[] = {
	{ .name = "virgl", .kind = VU_OPT_FLAG, .offset = GPU_FIELD(virgl_wanted),
	  .help = "3D acceleration through virglrenderer (a render node, else llvmpipe)",
	  .flags = VU_OPT_CAPABILITY },
	{ .name = "render-node", .kind = VU_OPT_PATH, .offset = GPU_FIELD(render_node), .arg = "PATH",
	  .help = "DRM render node for --virgl (default: the first usable /dev/dri/renderD*)",
	  .flags = VU_OPT_CAPABILITY },
	{ .name = "max-outputs", .kind = VU_OPT_UINT, .offset = GPU_FIELD(max_outputs), .arg = "N",
	  .help = "scanouts (displays)", .min = 1, .max = VIRTIO_GPU_MAX_SCANOUTS },
	{ .name = "max-memory", .kind = VU_OPT_SIZE, .offset = GPU_FIELD(max_memory), .arg = "MIB",
	  .help = "host memory the guest's resources may use", .min = 1, .max = 1u << 20, .unit = "MiB",
	  .scale = 1u << 20 },
	{ NULL },
};

static void gpu_resume(struct gpu *g);

static struct vu_dev *gpu_create(void)
{
	struct gpu *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->max_outputs = 1;
	g->max_memory = (uint64_t)DEFAULT_MAX_MEMORY_MIB << 20;
	for (unsigned i = 0; i < GPU_CMD_SLOTS; i++) {
		g->slots[i].req.iov = g->slots[i].iov;
		g->slots[i].req.max_iov = GPU_MAX_IOV;
		g->slots[i].next = i + 1 < GPU_CMD_SLOTS ? &g->slots[i + 1] : NULL;
	}
	g->free = g->slots;
	g->resume = gpu_resume;
	return &g->dev;
}

static int gpu_init(struct vu_dev *dev, struct vu_loop *loop)
{
	struct gpu *g = (struct gpu *)dev;

	g->loop = loop;
	if (g->render_node && !g->virgl_wanted) {
		vu_err("--render-node needs --virgl");
		return -1;
	}
	if (g->virgl_wanted) {
		if (gpu_virgl_init(g) < 0)
			return -1; /* said why */
		dev->features |= 1ull << VIRTIO_GPU_F_VIRGL;
	}
	g->config.num_scanouts = g->max_outputs;
	g->config.num_capsets = gpu_virgl_num_capsets(g);
	return 0;
}

static void gpu_reset(struct vu_dev *dev)
{
	struct gpu *g = (struct gpu *)dev;

	g->ctrl_vq = g->cursor_vq = NULL;
	gpu_chan_close(g);
	gpu_virgl_reset(g);
	gpu_scanouts_reset(g);
	gpu_res_reset(g);
	g->ctrl_waiting = false;
}

static void gpu_destroy(struct vu_dev *dev)
{
	struct gpu *g = (struct gpu *)dev;

	gpu_reset(dev);
	gpu_virgl_fini(g);
	free(g);
}

/* ---- completions ---------------------------------------------------------- */

static void flush_ctrl(struct gpu *g)
{
	if (g->ctrl_dirty && g->ctrl_vq) {
		g->ctrl_dirty = false;
		vu_vring_flush(g->ctrl_vq);
	}
}

/* ---- queries the front-end answers ----------------------------------------- */

static void local_display_info(struct gpu *g, struct virtio_gpu_resp_display_info *info)
{
	memset(info, 0, sizeof(*info));
	info->pmodes[0].r.width = DEFAULT_WIDTH;
	info->pmodes[0].r.height = DEFAULT_HEIGHT;
	info->pmodes[0].enabled = 1;
}

static void display_info_reply(struct gpu *g, struct gpu_cmd *cmd, const void *payload, uint32_t size)
{
	struct virtio_gpu_resp_display_info info;

	if (payload)
		memcpy(&info, payload, sizeof(info));
	else
		local_display_info(g, &info);
	/* Only our scanouts exist, whatever the front-end says. */
	for (unsigned i = g->max_outputs; i < VIRTIO_GPU_MAX_SCANOUTS; i++)
		memset(&info.pmodes[i], 0, sizeof(info.pmodes[i]));
	info.hdr.type = VIRTIO_GPU_RESP_OK_DISPLAY_INFO;
	gpu_respond(g, cmd, &info, sizeof(info));
	g->ctrl_waiting = false;
	gpu_resume(g);
}

static void edid_reply(struct gpu *g, struct gpu_cmd *cmd, const void *payload, uint32_t size)
{
	struct virtio_gpu_resp_edid edid;

	if (payload)
		memcpy(&edid, payload, sizeof(edid));
	if (!payload || edid.size > sizeof(edid.edid)) {
		gpu_respond_nodata(g, cmd, VIRTIO_GPU_RESP_ERR_UNSPEC);
	} else {
		edid.hdr.type = VIRTIO_GPU_RESP_OK_EDID;
		gpu_respond(g, cmd, &edid, sizeof(edid));
	}
	g->ctrl_waiting = false;
	gpu_resume(g);
}

static void get_display_info(struct gpu *g, struct gpu_cmd *cmd)
{
	g->ctrl_waiting = true;
	if (!gpu_chan_call(g, GPU_MSG_GET_DISPLAY_INFO, NULL, 0, sizeof(struct virtio_gpu_resp_display_info),
			   display_info_reply, cmd))
		display_info_reply(g, cmd, NULL, 0);
}

static void get_edid(struct gpu *g, struct gpu_cmd *cmd)
{
	struct virtio_gpu_cmd_get_edid req;

	if (!gpu_cmd_read(cmd, 0, &req, sizeof(req)))
		return gpu_respond_nodata(g, cmd, VIRTIO_GPU_RESP_ERR_UNSPEC);
	if (req.scanout >= g->max_outputs)
		return gpu_respond_nodata(g, cmd, VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID);
	if (!gpu_chan_has_edid(g))
		return gpu_respond_nodata(g, cmd, VIRTIO_GPU_RESP_ERR_UNSPEC);
	uint32_t scanout = req.scanout;
	g->ctrl_waiting = true;
	if (!gpu_chan_call(g, GPU_MSG_GET_EDID, &scanout, sizeof(scanout), sizeof(struct virtio_gpu_resp_edid),
			   edid_reply, cmd))
		edid_reply(g, cmd, NULL, 0);
}

/* ---- queues --------------------------------------------------------------- */

static void start(struct gpu *g, struct gpu_cmd *cmd)
{
	cmd->out_bytes = vu_iov_size(cmd->req.iov, cmd->req.out);
	if (!gpu_cmd_read(cmd, 0, &cmd->hdr, sizeof(cmd->hdr))) {
		memset(&cmd->hdr, 0, sizeof(cmd->hdr));
		return gpu_respond_nodata(g, cmd, VIRTIO_GPU_RESP_ERR_UNSPEC);
	}
	vu_debug("gpu command 0x%x%s", cmd->hdr.type, cmd->hdr.flags & VIRTIO_GPU_FLAG_FENCE ? " (fenced)" : "");
	switch (cmd->hdr.type) {
	case VIRTIO_GPU_CMD_GET_DISPLAY_INFO:
		return get_display_info(g, cmd);
	case VIRTIO_GPU_CMD_GET_EDID:
		return get_edid(g, cmd);
	}
	if (g->virgl)
		gpu_virgl_command(g, cmd);
	else
		gpu_2d_command(g, cmd);
}

static bool ctrl_blocked(struct gpu *g)
{
	return g->ctrl_waiting || !g->free || gpu_chan_busy(g);
}

static void ctrl_kick(struct gpu *g, struct vu_vring *vq)
{
	do {
		vu_vring_kicks(vq, false);
		while (!ctrl_blocked(g)) {
			struct gpu_cmd *cmd = g->free;
			if (vu_vring_pop(vq, &cmd->req) <= 0)
				break;
			if (cmd->req.truncated || !cmd->req.in) {
				vu_vring_fail(vq, cmd->req.in ? "gpu request with too many segments" :
								"gpu request without room for a response");
				break;
			}
			g->free = cmd->next;
			cmd->vq = vq;
			start(g, cmd);
		}
		/* The driver hears first: what the display is sent meanwhile is no reason to wait. */
		flush_ctrl(g);
		gpu_chan_flush(g);
	} while (!vq->broken && vu_vring_kicks(vq, true) && !ctrl_blocked(g));
}

/*
 * Every cursor request queues a message for the display (an image is 16 KiB):
 * while the display is behind, requests wait in the ring, as on the control
 * queue, and go on in order when it has caught up (gpu_resume).
 */
static void cursor_kick(struct gpu *g, struct vu_vring *vq)
{
	struct gpu_cmd cmd = { .vq = vq, .req = { .iov = cmd.iov, .max_iov = GPU_MAX_IOV } };

	do {
		vu_vring_kicks(vq, false);
		while (!gpu_chan_busy(g) && vu_vring_pop(vq, &cmd.req) > 0) {
			cmd.out_bytes = vu_iov_size(cmd.req.iov, cmd.req.out);
			gpu_cursor_command(g, &cmd);
			vu_vring_push(vq, &cmd.req, 0);
		}
		gpu_chan_flush(g);
		vu_vring_flush(vq);
	} while (!vq->broken && vu_vring_kicks(vq, true) && !gpu_chan_busy(g));
}

static void gpu_kick(struct vu_dev *dev, struct vu_vring *vq)
{
	struct gpu *g = (struct gpu *)dev;

	if (vq->index == Q_CONTROL) {
		g->ctrl_vq = vq;
		gpu_virgl_drain(g, false);
		ctrl_kick(g, vq);
	} else {
		g->cursor_vq = vq;
		cursor_kick(g, vq);
	}
}

/* A ring the device saw kicked, not drained since, and still usable. */
static bool runs(const struct vu_vring *vq)
{
	return vq && !vq->broken && vu_vring_ready(vq);
}

static void gpu_resume(struct gpu *g)
{
	flush_ctrl(g);
	if (runs(g->ctrl_vq))
		ctrl_kick(g, g->ctrl_vq);
	if (runs(g->cursor_vq))
		cursor_kick(g, g->cursor_vq);
}

/*
 * The ring stops or guest memory is about to change: no command may wait any
 * more (one waiting for the display runs now, in the memory it was given).
 */
static void gpu_queue_drain(struct vu_dev *dev, struct vu_vring *vq)
{
	struct gpu *g = (struct gpu *)dev;

	if (vq->index != Q_CONTROL) {
		g->cursor_vq = NULL; /* nothing in flight: its requests are done as they are taken */
		return;
	}
	g->ctrl_vq = NULL; /* completions below must not take new requests */
	gpu_chan_abandon(g);
	gpu_virgl_drain(g, true);
	gpu_chan_flush(g);
	if (g->ctrl_dirty) {
		g->ctrl_dirty = false;
		vu_vring_flush(vq);
	}
}

/*
 * Guest memory changed, the rings drained: every backing is translated into the
 * new table before anything reads through it again (transfers never translate);
 * one the new memory no longer holds is dropped, as DETACH_BACKING would.
 */
static void gpu_mem_changed(struct vu_dev *dev, const struct vu_mem *mem)
{
	struct gpu *g = (struct gpu *)dev;

	/* An empty table is no memory (the last one comes as the session, which holds it, ends). */
	g->mem = mem->n ? mem : NULL;
	for (unsigned b = 0; b < GPU_RES_BUCKETS; b++)
		for (struct gpu_res *r = g->res[b]; r; r = r->next) {
			if (!r->backing.entries)
				continue;
			if (r->virgl)
				gpu_virgl_remap(g, r);
			else if (!gpu_backing_map(g, &r->backing))
				gpu_backing_free(g, &r->backing);
		}
}

static int gpu_get_config(struct vu_dev *dev, uint8_t *buf, uint32_t offset, uint32_t len)
{
	memcpy(buf, (uint8_t *)&((struct gpu *)dev)->config + offset, len);
	return 0;
}

/* The driver acknowledges display events by writing events_clear. */
static int gpu_set_config(struct vu_dev *dev, const uint8_t *buf, uint32_t offset, uint32_t len)
{
	struct gpu *g = (struct gpu *)dev;
	struct virtio_gpu_config c = g->config;

	memcpy((uint8_t *)&c + offset, buf, len);
	g->config.events_read &= ~c.events_clear;
	return 0;
}

static int gpu_set_socket(struct vu_dev *dev, int fd)
{
	return gpu_chan_open((struct gpu *)dev, fd);
}

static bool gpu_cap_available(const char *feature)
{
	if (!strcmp(feature, "virgl"))
		return gpu_virgl_probe(NULL, false);
	if (!strcmp(feature, "render-node"))
		return gpu_default_render_node() && gpu_virgl_probe(gpu_default_render_node(), true);
	return false;
}

/*
 * Confined (2D): pixels move into memfds and are spliced through a pipe (sized
 * once) into the display socket, whose send queue is measured (SIOCOUTQ) and
 * sized (SO_SNDBUF).
 */
static const struct vu_syscall gpu_syscalls[] = {
	VU_SYSCALL(splice), VU_SYSCALL(pipe2), VU_SYSCALL_IF(fcntl, 1, F_SETPIPE_SZ),
	VU_SYSCALL_IF(ioctl, 1, SIOCOUTQ), VU_SYSCALL_IF(setsockopt, 2, SO_SNDBUF),
	VU_SYSCALL_END,
};

/*
 * virgl: Mesa starts its threads in init (a new root would reach the main thread
 * only) and keeps opening files and mapping code while serving: seccomp, with
 * its own wider list (dev/gpu-virgl.c).
 */
static void gpu_sandbox(const struct vu_dev *dev, struct vu_sandbox_needs *needs)
{
	if (((const struct gpu *)dev)->virgl_wanted) {
		needs->strictest = VU_SANDBOX_SECCOMP;
		needs->why = "--virgl runs Mesa, whose threads start before confinement and which opens "
			     "files while serving";
		needs->syscalls = gpu_virgl_syscalls;
	}
}

const struct vu_device_type vu_dev_gpu = {
	.name = "gpu",
	.schema_type = "gpu",
	.summary = "virtio-gpu: 2D scanouts, virgl 3D (render node or llvmpipe)",
	.qemu_args = "-device vhost-user-gpu-pci,chardev=vu0",
	.virtio_id = 16,
	.num_queues = 2,
	.features = 1ull << VIRTIO_GPU_F_EDID,
	.config_size = sizeof(struct virtio_gpu_config),
	/*
	 * Resources, backings and scanouts live here, and QEMU 10 neither asks for them
	 * (no device state for vhost-user-gpu) nor restarts the device on a migration's
	 * destination: a migrated guest would have a dead display. Refused instead.
	 */
	.unmigratable = true,
	.options = gpu_options,
	.cap_available = gpu_cap_available,
	.create = gpu_create,
	.init = gpu_init,
	.kick = gpu_kick,
	.queue_drain = gpu_queue_drain,
	.mem_changed = gpu_mem_changed,
	.get_config = gpu_get_config,
	.set_config = gpu_set_config,
	.reset = gpu_reset,
	.destroy = gpu_destroy,
	.set_gpu_socket = gpu_set_socket,
	.syscalls = gpu_syscalls,
	.sandbox = gpu_sandbox,
};
