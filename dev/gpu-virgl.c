/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virtio-gpu 3D (--virgl): every resource lives in virglrenderer, which draws
 * with EGL (through libepoxy). With a render node it runs on the host GPU via
 * GBM and scanouts are shared with the front-end as dmabufs; without one it
 * runs surfaceless on Mesa's software rasterizer (llvmpipe) and scanouts are
 * read back and sent as pixel UPDATEs. Fenced commands are answered when
 * virglrenderer retires their fence (its eventfd is watched by the loop).
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dev/gpu.h"
#include "dev/gpu-chan.h"
#include "dev/gpu-virgl-lib.h"
#include "proto/log.h"
#include "proto/loop.h"

#define MAX_SUBMIT (16u << 20)        /* bytes of one SUBMIT_3D */
#define FENCE_POLL_NS 1000000ull      /* without virglrenderer's eventfd, look this often */
#define PIPE_TEXTURE_2D 2
/* virglrenderer's box (opaque in its header) has virtio's layout: x, y, z, w, h, d. */
#define VBOX(b) ((struct virgl_box *)(b))

struct gpu_virgl {
	int drm_fd;                    /* the render node, or -1: surfaceless llvmpipe */
	int poll_fd;
	struct vu_timer *poll_timer;
	uint32_t next_fence, done_fence;
	struct gpu_cmd *fenced, *fenced_last; /* waiting for their fence, oldest first */
	uint32_t num_capsets;
};

/* virglrenderer is one per process: the device that initialised it. */
static struct gpu *owner;

static int get_drm_fd(void *cookie)
{
	struct gpu *g = cookie;
	return g && g->virgl ? fcntl(g->virgl->drm_fd, F_DUPFD_CLOEXEC, 3) : -1;
}

static void write_fence(void *cookie, uint32_t fence)
{
	struct gpu *g = cookie;
	if (g && g->virgl)
		g->virgl->done_fence = fence;
}

static struct virgl_renderer_callbacks callbacks = {
	.version = 2,
	.write_fence = write_fence,
	.get_drm_fd = get_drm_fd,
};

/* Opens path if it is a DRM render node: -1 (errno set) otherwise. */
static int open_render_node(const char *path)
{
	if (!gpu_virgl_lib_load(NULL)) {
		errno = ENOSYS;
		return -1;
	}
	int fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd >= 0 && drmGetNodeTypeFromFd(fd) != DRM_NODE_RENDER) {
		close(fd);
		errno = ENODEV;
		return -1;
	}
	return fd;
}

const char *gpu_default_render_node(void)
{
	static char path[sizeof("/dev/dri/") + 256];
	struct dirent **names;
	int n = scandir("/dev/dri", &names, NULL, alphasort);
	const char *found = NULL;

	for (int i = 0; i < n; i++) {
		if (!found && !strncmp(names[i]->d_name, "renderD", 7)) {
			snprintf(path, sizeof(path), "/dev/dri/%s", names[i]->d_name);
			int fd = open_render_node(path);
			if (fd >= 0) {
				close(fd);
				found = path;
			}
		}
		free(names[i]);
	}
	if (n >= 0)
		free(names);
	return found;
}

/* Starts virglrenderer on the render node (drm_fd) or surfaceless; 0 or -1. */
static int pin_driver(struct dl_phdr_info *info, size_t size, void *unused)
{
	const char *name = info->dlpi_name;

	if (strstr(name, "/dri/") || strstr(name, "libgallium"))
		dlopen(name, RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE); /* the handle is kept on purpose */
	return 0;
}

/*
 * Keeps the Mesa drivers EGL loaded for as long as the process lives. Stopping
 * the renderer unloads them, and Mesa (22.3.6-1+deb12u2) loses, rather than
 * frees, what a driver set up once per load: pinned, every later start finds
 * it in place (and ASan's leak check at exit stays meaningful).
 */
static void pin_drivers(void)
{
	dl_iterate_phdr(pin_driver, NULL);
}

static int start_renderer(struct gpu *g, int drm_fd)
{
	int flags = VIRGL_RENDERER_USE_EGL | VIRGL_RENDERER_THREAD_SYNC;

	if (drm_fd < 0)
		flags |= VIRGL_RENDERER_USE_SURFACELESS;
	if (virgl_renderer_init(g, flags, &callbacks) != 0)
		return -1;
	pin_drivers();
	return 0;
}

/*
 * Whether virgl works here (on node, or else on any usable renderer when
 * need_node is false): starts virglrenderer once and stops it again.
 */
bool gpu_virgl_probe(const char *node, bool need_node)
{
	struct gpu probe = { 0 };
	struct gpu_virgl v = { .drm_fd = -1 };

	if (!gpu_virgl_lib_load(NULL))
		return false;
	if (!node && !need_node)
		node = gpu_default_render_node();
	if (node)
		v.drm_fd = open_render_node(node);
	if (v.drm_fd < 0 && need_node)
		return false;
	probe.virgl = &v;
	bool ok = start_renderer(&probe, v.drm_fd) == 0;
	if (!ok && v.drm_fd >= 0 && !need_node) {
		close(v.drm_fd);
		v.drm_fd = -1;
		ok = start_renderer(&probe, -1) == 0;
	}
	if (ok)
		virgl_renderer_cleanup(&probe);
	if (v.drm_fd >= 0)
		close(v.drm_fd);
	return ok;
}

static void on_fence_fd(void *opaque, int fd, uint32_t events)
{
	struct gpu *g = opaque;

	virgl_renderer_poll();
	gpu_virgl_drain(g, false);
	g->resume(g);
}

static void on_fence_timer(void *opaque)
{
	on_fence_fd(opaque, -1, 0);
}

int gpu_virgl_init(struct gpu *g)
{
	const char *why;

	if (!gpu_virgl_lib_load(&why)) {
		vu_err("--virgl: cannot load %s: %s", GPU_VIRGL_LIB, why);
		return -1;
	}
	struct gpu_virgl *v = calloc(1, sizeof(*v));
	const char *node = g->render_node ? g->render_node : gpu_default_render_node();

	if (!v)
		return -1;
	if (owner) {
		vu_err("--virgl: only one virgl device per process");
		free(v);
		return -1;
	}
	v->drm_fd = node ? open_render_node(node) : -1;
	if (g->render_node && v->drm_fd < 0) {
		vu_err("--render-node=%s: %s", g->render_node,
		       errno == ENODEV ? "not a DRM render node" : strerror(errno));
		free(v);
		return -1;
	}
	g->virgl = v;
	if (start_renderer(g, v->drm_fd) < 0 && (g->render_node || v->drm_fd < 0 ||
						 (close(v->drm_fd), v->drm_fd = -1, start_renderer(g, -1) < 0))) {
		vu_err("--virgl: virglrenderer cannot start (%s)", node && g->render_node ? node : "no usable EGL renderer");
		if (v->drm_fd >= 0)
			close(v->drm_fd);
		free(v);
		g->virgl = NULL;
		return -1;
	}
	owner = g;
	vu_info("virgl on %s", v->drm_fd >= 0 ? node : "surfaceless EGL (software)");
	uint32_t ver, size;
	virgl_renderer_get_cap_set(VIRTIO_GPU_CAPSET_VIRGL2, &ver, &size);
	v->num_capsets = ver ? 2 : 1;
	v->poll_fd = virgl_renderer_get_poll_fd();
	if (v->poll_fd >= 0 && vu_loop_watch(g->loop, v->poll_fd, EPOLLIN, on_fence_fd, g) < 0)
		v->poll_fd = -1;
	if (v->poll_fd < 0)
		v->poll_timer = vu_timer_new(g->loop, on_fence_timer, g);
	return 0;
}

void gpu_virgl_fini(struct gpu *g)
{
	struct gpu_virgl *v = g->virgl;

	if (!v)
		return;
	if (v->poll_fd >= 0)
		vu_loop_unwatch(g->loop, v->poll_fd);
	vu_timer_free(v->poll_timer);
	virgl_renderer_cleanup(g);
	if (v->drm_fd >= 0)
		close(v->drm_fd);
	free(v);
	g->virgl = NULL;
	owner = NULL;
}

uint32_t gpu_virgl_num_capsets(const struct gpu *g)
{
	return g->virgl ? g->virgl->num_capsets : 0;
}

/*
 * What virglrenderer, libepoxy and Mesa (llvmpipe or a render node's driver)
 * call while serving, beyond proto and 2D: their threads and locks, JIT code
 * (executable mappings), the render node's ioctls, files they open (the shader
 * cache, driver configuration). Wider than any other list by far: --virgl is
 * confined by seccomp only.
 */
const struct vu_syscall gpu_virgl_syscalls[] = {
	VU_SYSCALL(mmap), VU_SYSCALL(mprotect), VU_SYSCALL(ioctl), VU_SYSCALL(fcntl),
	VU_SYSCALL(openat), VU_SYSCALL(open), VU_SYSCALL(newfstatat), VU_SYSCALL(fstat), VU_SYSCALL(lseek),
	VU_SYSCALL(pread64), VU_SYSCALL(pwrite64), VU_SYSCALL(getdents64), VU_SYSCALL(readlink),
	VU_SYSCALL(access), VU_SYSCALL(mkdir), VU_SYSCALL(rename), VU_SYSCALL(unlink), VU_SYSCALL(flock),
	VU_SYSCALL(fallocate), VU_SYSCALL(fsync), VU_SYSCALL(dup), VU_SYSCALL(dup3),
	VU_SYSCALL(sched_getaffinity), VU_SYSCALL(sched_setaffinity), VU_SYSCALL(getrandom),
	VU_SYSCALL(uname), VU_SYSCALL(getuid), VU_SYSCALL(geteuid), VU_SYSCALL(getgid), VU_SYSCALL(getegid),
	VU_SYSCALL(sysinfo), VU_SYSCALL(prctl), VU_SYSCALL(poll), VU_SYSCALL(ppoll),
	VU_SYSCALL_END,
};

/* ---- fences ---- */

static bool retired(const struct gpu_virgl *v, uint32_t fence)
{
	return (int32_t)(v->done_fence - fence) >= 0;
}

void gpu_virgl_drain(struct gpu *g, bool wait)
{
	struct gpu_virgl *v = g->virgl;

	if (!v)
		return;
	while (v->fenced) {
		struct gpu_cmd *cmd = v->fenced;
		if (!retired(v, cmd->fence)) {
			if (!wait)
				break;
			virgl_renderer_poll();
			if (!retired(v, cmd->fence))
				usleep(200);
			continue;
		}
		v->fenced = cmd->next;
		if (!v->fenced)
			v->fenced_last = NULL;
		gpu_respond_nodata(g, cmd, VIRTIO_GPU_RESP_OK_NODATA);
	}
	if (v->poll_timer) {
		if (v->fenced)
			vu_timer_arm(v->poll_timer, FENCE_POLL_NS, 0);
		else
			vu_timer_disarm(v->poll_timer);
	}
}

static void fence(struct gpu *g, struct gpu_cmd *cmd)
{
	struct gpu_virgl *v = g->virgl;

	cmd->fence = ++v->next_fence;
	cmd->next = NULL;
	if (virgl_renderer_create_fence(cmd->fence, cmd->hdr.ctx_id)) {
		gpu_respond_nodata(g, cmd, VIRTIO_GPU_RESP_ERR_UNSPEC);
		return;
	}
	if (v->fenced_last)
		v->fenced_last->next = cmd;
	else
		v->fenced = cmd;
	v->fenced_last = cmd;
	if (v->poll_timer)
		vu_timer_arm(v->poll_timer, FENCE_POLL_NS, 0);
}

void gpu_virgl_reset(struct gpu *g)
{
	if (!g->virgl)
		return;
	gpu_virgl_drain(g, true);
	for (unsigned b = 0; b < GPU_RES_BUCKETS; b++)
		for (struct gpu_res *r = g->res[b]; r; r = r->next) {
			virgl_renderer_resource_detach_iov(r->id, NULL, NULL);
			virgl_renderer_resource_unref(r->id);
		}
	virgl_renderer_reset();
}

/* ---- resources ---- */

/*
 * Lends res's backing iovecs to virglrenderer, which keeps them (until detached)
 * and reads and writes guest memory through them; false if it refuses them, and
 * then the resource has no backing.
 */
static bool lend_backing(struct gpu *g, struct gpu_res *res)
{
	if (!virgl_renderer_resource_attach_iov(res->id, res->backing.iov, res->backing.niov))
		return true;
	gpu_backing_free(g, &res->backing);
	return false;
}

/*
 * Not only TRANSFER_* go through the lent iovecs: a command stream's
 * COPY_TRANSFER3D does too, at any time. So virglrenderer gives them back before
 * they are translated anew (which reallocates them) and gets the new ones.
 */
void gpu_virgl_remap(struct gpu *g, struct gpu_res *res)
{
	virgl_renderer_resource_detach_iov(res->id, NULL, NULL);
	if (gpu_backing_map(g, &res->backing))
		lend_backing(g, res);
	else
		gpu_backing_free(g, &res->backing);
}

static uint32_t create(struct gpu *g, struct virgl_renderer_resource_create_args *a)
{
	uint32_t err;

	if (!a->width || !a->height || a->width > GPU_MAX_DIM || a->height > GPU_MAX_DIM || a->depth > GPU_MAX_DIM ||
	    a->array_size > GPU_MAX_DIM || a->last_level > 15 || a->nr_samples > 32)
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	/* An estimate of what the host keeps: 4 bytes a texel, mip levels and samples aside. */
	uint64_t layers = (uint64_t)(a->depth ? a->depth : 1) * (a->array_size ? a->array_size : 1);
	uint64_t bytes = (uint64_t)a->width * a->height * 4;
	if (layers > (g->max_memory / bytes) + 1)
		return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
	struct gpu_res *res = gpu_res_new(g, a->handle, bytes * layers, &err);
	if (!res)
		return err;
	if (virgl_renderer_resource_create(a, NULL, 0)) {
		gpu_res_free(g, res);
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	}
	res->virgl = true;
	res->format = a->format;
	res->width = a->width;
	res->height = a->height;
	return 0;
}

static uint32_t create_2d(struct gpu *g, struct gpu_cmd *cmd)
{
	struct virtio_gpu_resource_create_2d c;

	if (!gpu_cmd_read(cmd, 0, &c, sizeof(c)))
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	if (!gpu_format_valid(c.format))
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	struct virgl_renderer_resource_create_args a = {
		.handle = c.resource_id, .target = PIPE_TEXTURE_2D, .format = c.format,
		.bind = VIRGL_RES_BIND_RENDER_TARGET, .width = c.width, .height = c.height,
		.depth = 1, .array_size = 1, .flags = VIRTIO_GPU_RESOURCE_FLAG_Y_0_TOP,
	};
	return create(g, &a);
}

static uint32_t create_3d(struct gpu *g, struct gpu_cmd *cmd)
{
	struct virtio_gpu_resource_create_3d c;

	if (!gpu_cmd_read(cmd, 0, &c, sizeof(c)))
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	struct virgl_renderer_resource_create_args a = {
		.handle = c.resource_id, .target = c.target, .format = c.format, .bind = c.bind,
		.width = c.width, .height = c.height, .depth = c.depth, .array_size = c.array_size,
		.last_level = c.last_level, .nr_samples = c.nr_samples, .flags = c.flags,
	};
	return create(g, &a);
}

/* Reads the resource id that follows the header of most commands and finds it. */
static struct gpu_res *find(struct gpu *g, struct gpu_cmd *cmd, size_t offset, uint32_t *err)
{
	uint32_t id;

	if (!gpu_cmd_read(cmd, offset, &id, sizeof(id))) {
		*err = VIRTIO_GPU_RESP_ERR_UNSPEC;
		return NULL;
	}
	struct gpu_res *res = gpu_res_find(g, id);
	*err = res ? 0 : VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
	return res;
}

#define ID_AFTER_HDR sizeof(struct virtio_gpu_ctrl_hdr)

static uint32_t unref(struct gpu *g, struct gpu_cmd *cmd)
{
	uint32_t err;
	struct gpu_res *res = find(g, cmd, ID_AFTER_HDR, &err);

	if (res) {
		virgl_renderer_resource_detach_iov(res->id, NULL, NULL);
		virgl_renderer_resource_unref(res->id);
		gpu_scanouts_drop(g, res);
		gpu_res_free(g, res);
	}
	return err;
}

static uint32_t attach_backing(struct gpu *g, struct gpu_cmd *cmd)
{
	uint32_t err;
	struct gpu_res *res = find(g, cmd, ID_AFTER_HDR, &err);

	if (!res)
		return err;
	if (res->backing.entries)
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	err = gpu_backing_attach(g, cmd, &res->backing);
	if (!err && !lend_backing(g, res))
		err = VIRTIO_GPU_RESP_ERR_UNSPEC;
	return err;
}

static uint32_t detach_backing(struct gpu *g, struct gpu_cmd *cmd)
{
	uint32_t err;
	struct gpu_res *res = find(g, cmd, ID_AFTER_HDR, &err);

	if (!res)
		return err;
	if (!res->backing.entries)
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	virgl_renderer_resource_detach_iov(res->id, NULL, NULL);
	gpu_backing_free(g, &res->backing);
	return 0;
}

static uint32_t transfer_2d(struct gpu *g, struct gpu_cmd *cmd)
{
	struct virtio_gpu_transfer_to_host_2d t;
	uint32_t err;
	struct gpu_res *res = gpu_transfer_2d_read(g, cmd, &t, &err);

	if (!res)
		return err;
	struct virtio_gpu_box box = { t.r.x, t.r.y, 0, t.r.width, t.r.height, 1 };
	return virgl_renderer_transfer_write_iov(res->id, 0, 0, 0, 0, VBOX(&box), t.offset, NULL, 0) ?
		       VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER : 0;
}

static uint32_t transfer_3d(struct gpu *g, struct gpu_cmd *cmd, bool to_host)
{
	struct virtio_gpu_transfer_host_3d t;

	if (!gpu_cmd_read(cmd, 0, &t, sizeof(t)))
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	struct gpu_res *res = gpu_res_find(g, t.resource_id);
	if (!res)
		return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
	struct virtio_gpu_box box = t.box;
	int r = to_host ? virgl_renderer_transfer_write_iov(res->id, t.hdr.ctx_id, t.level, t.stride, t.layer_stride,
							    VBOX(&box), t.offset, NULL, 0)
			: virgl_renderer_transfer_read_iov(res->id, t.hdr.ctx_id, t.level, t.stride, t.layer_stride,
							   VBOX(&box), t.offset, NULL, 0);
	return r ? VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER : 0;
}

/* ---- scanouts ---- */

static void announce_scanout(struct gpu *g, uint32_t id, struct gpu_res *res)
{
	struct virtio_gpu_rect *r = &g->scanout[id].r;
	struct virgl_renderer_resource_info info;
	int fd, stride, offset;

	if (g->virgl->drm_fd >= 0 && !virgl_renderer_resource_get_info(res->id, &info) &&
	    !virgl_renderer_get_fd_for_texture2(info.tex_id, &fd, &stride, &offset)) {
		struct gpu_msg_dmabuf_scanout m = {
			.scanout_id = id, .x = r->x, .y = r->y, .width = r->width, .height = r->height,
			.fd_width = info.width, .fd_height = info.height, .fd_stride = stride,
			.fd_flags = info.flags, .fd_drm_fourcc = info.drm_fourcc,
		};
		bool two = gpu_chan_has_dmabuf2(g);
		gpu_chan_send(g, two ? GPU_MSG_DMABUF_SCANOUT2 : GPU_MSG_DMABUF_SCANOUT, &m,
			      two ? sizeof(m) : sizeof(m) - sizeof(m.modifier), fd);
		return;
	}
	gpu_scanout_announce(g, id, r->width, r->height);
}

static uint32_t set_scanout(struct gpu *g, struct gpu_cmd *cmd)
{
	struct gpu_res *res;
	uint32_t id, err = gpu_scanout_set(g, cmd, &id, &res);

	if (!err && res)
		announce_scanout(g, id, res);
	return err;
}

/* Reads the visible part of r back from the renderer and sends it as pixels. */
static void update_pixels(struct gpu *g, struct gpu_res *res, unsigned id, const struct virtio_gpu_rect *r)
{
	struct gpu_msg_update head;
	uint32_t x0, y0;

	if (!gpu_scanout_visible(g, id, r, &head, &x0, &y0))
		return;
	uint32_t w = head.width, h = head.height;
	size_t bytes = (size_t)w * h * 4;
	uint8_t *raw = malloc(bytes);
	struct iovec iov = { raw, bytes };
	struct virtio_gpu_box box = { x0, y0, 0, w, h, 1 };
	if (raw && !virgl_renderer_transfer_read_iov(res->id, 0, 0, w * 4, 0, VBOX(&box), 0, &iov, 1))
		gpu_scanout_send_rows(g, &head, res->format, raw, (size_t)w * 4);
	free(raw);
}

static void dmabuf_updated(struct gpu *g, struct gpu_cmd *cmd, const void *payload, uint32_t size)
{
	gpu_respond_nodata(g, cmd, VIRTIO_GPU_RESP_OK_NODATA);
	g->ctrl_waiting = false;
	g->resume(g);
}

/* Returns true when cmd is answered later (the front-end acknowledges a dmabuf update). */
static bool flush(struct gpu *g, struct gpu_cmd *cmd, uint32_t *err)
{
	struct virtio_gpu_resource_flush f;
	bool waits = false;
	struct gpu_res *res = gpu_flush_read(g, cmd, &f, err);

	if (!res)
		return false;
	for (unsigned i = 0; i < g->max_outputs; i++) {
		if (!(res->scanouts & (1u << i)))
			continue;
		if (g->virgl->drm_fd < 0) {
			update_pixels(g, res, i, &f.r);
			continue;
		}
		struct gpu_msg_update m = { i, f.r.x, f.r.y, f.r.width, f.r.height };
		/* The front-end acknowledges each; the command waits for the first. */
		if (gpu_chan_call(g, GPU_MSG_DMABUF_UPDATE, &m, sizeof(m), 0, waits ? NULL : dmabuf_updated,
				  waits ? NULL : cmd))
			waits = g->ctrl_waiting = true;
	}
	return waits;
}

void gpu_virgl_cursor_image(struct gpu *g, struct gpu_res *res, uint8_t *data)
{
	uint32_t w, h;
	uint8_t *pixels = virgl_renderer_get_cursor_data(res->id, &w, &h);

	if (!pixels)
		return;
	for (uint32_t y = 0; y < h && y < GPU_CURSOR_SIZE; y++)
		memcpy(data + y * GPU_CURSOR_SIZE * 4, pixels + (size_t)y * w * 4,
		       (w < GPU_CURSOR_SIZE ? w : GPU_CURSOR_SIZE) * 4);
	free(pixels);
}

/* ---- contexts and capsets ---- */

static uint32_t ctx_create(struct gpu *g, struct gpu_cmd *cmd)
{
	struct virtio_gpu_ctx_create c;

	if (!gpu_cmd_read(cmd, 0, &c, sizeof(c)))
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	if (c.nlen > sizeof(c.debug_name) || !c.hdr.ctx_id)
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	int r = c.context_init ? virgl_renderer_context_create_with_flags(c.hdr.ctx_id, c.context_init, c.nlen,
									   c.debug_name)
			       : virgl_renderer_context_create(c.hdr.ctx_id, c.nlen, c.debug_name);
	return r ? VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID : 0;
}

static uint32_t ctx_resource(struct gpu *g, struct gpu_cmd *cmd, bool attach)
{
	uint32_t err;
	struct gpu_res *res = find(g, cmd, ID_AFTER_HDR, &err);

	if (!res)
		return err;
	if (attach)
		virgl_renderer_ctx_attach_resource(cmd->hdr.ctx_id, res->id);
	else
		virgl_renderer_ctx_detach_resource(cmd->hdr.ctx_id, res->id);
	return 0;
}

static uint32_t submit(struct gpu *g, struct gpu_cmd *cmd)
{
	struct virtio_gpu_cmd_submit c;

	if (!gpu_cmd_read(cmd, 0, &c, sizeof(c)))
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	if (c.size % 4 || c.size > MAX_SUBMIT || c.size > cmd->out_bytes - sizeof(c))
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	void *buf = malloc(c.size ? c.size : 4);
	if (!buf)
		return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
	gpu_cmd_read(cmd, sizeof(c), buf, c.size);
	int r = virgl_renderer_submit_cmd(buf, c.hdr.ctx_id, c.size / 4);
	free(buf);
	return r ? VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER : 0;
}

static uint32_t capset_id(const struct gpu *g, uint32_t index)
{
	return index < g->virgl->num_capsets ? (index ? VIRTIO_GPU_CAPSET_VIRGL2 : VIRTIO_GPU_CAPSET_VIRGL) : 0;
}

static bool capset_info(struct gpu *g, struct gpu_cmd *cmd, uint32_t *err)
{
	struct virtio_gpu_get_capset_info c;
	struct virtio_gpu_resp_capset_info resp = { .hdr.type = VIRTIO_GPU_RESP_OK_CAPSET_INFO };

	if (!gpu_cmd_read(cmd, 0, &c, sizeof(c))) {
		*err = VIRTIO_GPU_RESP_ERR_UNSPEC;
		return false;
	}
	resp.capset_id = capset_id(g, c.capset_index);
	if (resp.capset_id)
		virgl_renderer_get_cap_set(resp.capset_id, &resp.capset_max_version, &resp.capset_max_size);
	gpu_respond(g, cmd, &resp, sizeof(resp));
	return true;
}

static bool capset(struct gpu *g, struct gpu_cmd *cmd, uint32_t *err)
{
	struct virtio_gpu_get_capset c;
	uint32_t max_ver = 0, size = 0;

	*err = VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	if (!gpu_cmd_read(cmd, 0, &c, sizeof(c)))
		return false;
	if (c.capset_id == VIRTIO_GPU_CAPSET_VIRGL || c.capset_id == capset_id(g, 1))
		virgl_renderer_get_cap_set(c.capset_id, &max_ver, &size);
	if (!size || c.capset_version > max_ver)
		return false;
	struct virtio_gpu_resp_capset *resp = calloc(1, sizeof(*resp) + size);
	if (!resp) {
		*err = VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
		return false;
	}
	virgl_renderer_fill_caps(c.capset_id, c.capset_version, resp->capset_data);
	resp->hdr.type = VIRTIO_GPU_RESP_OK_CAPSET;
	gpu_respond(g, cmd, resp, sizeof(*resp) + size);
	free(resp);
	return true;
}

void gpu_virgl_command(struct gpu *g, struct gpu_cmd *cmd)
{
	uint32_t err = 0;
	bool answered = false;

	virgl_renderer_force_ctx_0();
	switch (cmd->hdr.type) {
	case VIRTIO_GPU_CMD_RESOURCE_CREATE_2D: err = create_2d(g, cmd); break;
	case VIRTIO_GPU_CMD_RESOURCE_CREATE_3D: err = create_3d(g, cmd); break;
	case VIRTIO_GPU_CMD_RESOURCE_UNREF: err = unref(g, cmd); break;
	case VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING: err = attach_backing(g, cmd); break;
	case VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING: err = detach_backing(g, cmd); break;
	case VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D: err = transfer_2d(g, cmd); break;
	case VIRTIO_GPU_CMD_TRANSFER_TO_HOST_3D: err = transfer_3d(g, cmd, true); break;
	case VIRTIO_GPU_CMD_TRANSFER_FROM_HOST_3D: err = transfer_3d(g, cmd, false); break;
	case VIRTIO_GPU_CMD_SET_SCANOUT: err = set_scanout(g, cmd); break;
	case VIRTIO_GPU_CMD_RESOURCE_FLUSH: answered = flush(g, cmd, &err); break;
	case VIRTIO_GPU_CMD_CTX_CREATE: err = ctx_create(g, cmd); break;
	case VIRTIO_GPU_CMD_CTX_DESTROY: virgl_renderer_context_destroy(cmd->hdr.ctx_id); break;
	case VIRTIO_GPU_CMD_CTX_ATTACH_RESOURCE: err = ctx_resource(g, cmd, true); break;
	case VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE: err = ctx_resource(g, cmd, false); break;
	case VIRTIO_GPU_CMD_SUBMIT_3D: err = submit(g, cmd); break;
	case VIRTIO_GPU_CMD_GET_CAPSET_INFO: answered = capset_info(g, cmd, &err); break;
	case VIRTIO_GPU_CMD_GET_CAPSET: answered = capset(g, cmd, &err); break;
	default: err = VIRTIO_GPU_RESP_ERR_UNSPEC;
	}
	if (answered)
		return;
	if (err)
		gpu_respond_nodata(g, cmd, err);
	else if (cmd->hdr.flags & VIRTIO_GPU_FLAG_FENCE)
		fence(g, cmd);
	else
		gpu_respond_nodata(g, cmd, VIRTIO_GPU_RESP_OK_NODATA);
}
