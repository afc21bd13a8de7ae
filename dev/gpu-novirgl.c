/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * gpu-virgl.c's interface in a build without virglrenderer (the static build,
 * `make static`: virglrenderer, Mesa and EGL do not link statically): 2D only.
 * --virgl is refused at start-up, and --print-capabilities does not list virgl
 * or render-node, since the probe says no. No virgl resource ever exists here,
 * so the calls made for them are never reached.
 */
#include <stdlib.h>

#include "dev/gpu.h"
#include "proto/log.h"

bool gpu_virgl_probe(const char *render_node, bool need_node)
{
	return false;
}

const char *gpu_default_render_node(void)
{
	return NULL;
}

/* gpu_sandbox() names it with --virgl, which init refuses first. */
const struct vu_syscall gpu_virgl_syscalls[] = { VU_SYSCALL_END };

int gpu_virgl_init(struct gpu *g)
{
	vu_err("--virgl: this vhostbox was built without virglrenderer (2D only); "
	       "3D needs the dynamically linked build");
	return -1;
}

void gpu_virgl_fini(struct gpu *g)
{
}

uint32_t gpu_virgl_num_capsets(const struct gpu *g)
{
	return 0;
}

void gpu_virgl_drain(struct gpu *g, bool wait)
{
}

void gpu_virgl_reset(struct gpu *g)
{
}

/* g->virgl is never set, so gpu.c sends no command and no resource here. */
void gpu_virgl_command(struct gpu *g, struct gpu_cmd *cmd)
{
	abort();
}

void gpu_virgl_remap(struct gpu *g, struct gpu_res *res)
{
	abort();
}

void gpu_virgl_cursor_image(struct gpu *g, struct gpu_res *res, uint8_t *data)
{
	abort();
}
