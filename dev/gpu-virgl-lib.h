/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virglrenderer (and libdrm's one call), loaded when first used rather than linked:
 * virglrenderer brings some twenty libraries (EGL, GBM, X11, Wayland, Vulkan and
 * VA-API loaders) that would otherwise be mapped and relocated in every vhostbox
 * process, whatever its personality, each time it starts (--print-capabilities
 * included). gpu-virgl.c includes this instead of the libraries' headers and calls
 * them by their names, which resolve through the table below once
 * gpu_virgl_lib_load() succeeded.
 */
#ifndef VU_GPU_VIRGL_LIB_H
#define VU_GPU_VIRGL_LIB_H

#include <stdbool.h>
#include <virgl/virglrenderer.h>
#include <xf86drm.h>

#define GPU_VIRGL_LIB "libvirglrenderer.so.1"

#define GPU_VIRGL_FUNCS(X) \
	X(virgl_renderer_init) X(virgl_renderer_cleanup) X(virgl_renderer_reset) X(virgl_renderer_poll) \
	X(virgl_renderer_get_poll_fd) X(virgl_renderer_get_cap_set) X(virgl_renderer_fill_caps) \
	X(virgl_renderer_context_create) X(virgl_renderer_context_create_with_flags) \
	X(virgl_renderer_context_destroy) X(virgl_renderer_ctx_attach_resource) \
	X(virgl_renderer_ctx_detach_resource) X(virgl_renderer_force_ctx_0) X(virgl_renderer_submit_cmd) \
	X(virgl_renderer_create_fence) X(virgl_renderer_resource_create) X(virgl_renderer_resource_unref) \
	X(virgl_renderer_resource_attach_iov) X(virgl_renderer_resource_detach_iov) \
	X(virgl_renderer_resource_get_info) X(virgl_renderer_transfer_read_iov) \
	X(virgl_renderer_transfer_write_iov) X(virgl_renderer_get_cursor_data) \
	X(virgl_renderer_get_fd_for_texture2) X(drmGetNodeTypeFromFd)

#define GPU_VIRGL_FIELD(f) __typeof__(f) *f;
extern struct gpu_virgl_lib {
	GPU_VIRGL_FUNCS(GPU_VIRGL_FIELD)
} gpu_virgl_lib;
#undef GPU_VIRGL_FIELD

/* Loads the library once; false (and why, in *why) if it cannot. */
bool gpu_virgl_lib_load(const char **why);

#define virgl_renderer_init (gpu_virgl_lib.virgl_renderer_init)
#define virgl_renderer_cleanup (gpu_virgl_lib.virgl_renderer_cleanup)
#define virgl_renderer_reset (gpu_virgl_lib.virgl_renderer_reset)
#define virgl_renderer_poll (gpu_virgl_lib.virgl_renderer_poll)
#define virgl_renderer_get_poll_fd (gpu_virgl_lib.virgl_renderer_get_poll_fd)
#define virgl_renderer_get_cap_set (gpu_virgl_lib.virgl_renderer_get_cap_set)
#define virgl_renderer_fill_caps (gpu_virgl_lib.virgl_renderer_fill_caps)
#define virgl_renderer_context_create (gpu_virgl_lib.virgl_renderer_context_create)
#define virgl_renderer_context_create_with_flags (gpu_virgl_lib.virgl_renderer_context_create_with_flags)
#define virgl_renderer_context_destroy (gpu_virgl_lib.virgl_renderer_context_destroy)
#define virgl_renderer_ctx_attach_resource (gpu_virgl_lib.virgl_renderer_ctx_attach_resource)
#define virgl_renderer_ctx_detach_resource (gpu_virgl_lib.virgl_renderer_ctx_detach_resource)
#define virgl_renderer_force_ctx_0 (gpu_virgl_lib.virgl_renderer_force_ctx_0)
#define virgl_renderer_submit_cmd (gpu_virgl_lib.virgl_renderer_submit_cmd)
#define virgl_renderer_create_fence (gpu_virgl_lib.virgl_renderer_create_fence)
#define virgl_renderer_resource_create (gpu_virgl_lib.virgl_renderer_resource_create)
#define virgl_renderer_resource_unref (gpu_virgl_lib.virgl_renderer_resource_unref)
#define virgl_renderer_resource_attach_iov (gpu_virgl_lib.virgl_renderer_resource_attach_iov)
#define virgl_renderer_resource_detach_iov (gpu_virgl_lib.virgl_renderer_resource_detach_iov)
#define virgl_renderer_resource_get_info (gpu_virgl_lib.virgl_renderer_resource_get_info)
#define virgl_renderer_transfer_read_iov (gpu_virgl_lib.virgl_renderer_transfer_read_iov)
#define virgl_renderer_transfer_write_iov (gpu_virgl_lib.virgl_renderer_transfer_write_iov)
#define virgl_renderer_get_cursor_data (gpu_virgl_lib.virgl_renderer_get_cursor_data)
#define virgl_renderer_get_fd_for_texture2 (gpu_virgl_lib.virgl_renderer_get_fd_for_texture2)
#define drmGetNodeTypeFromFd (gpu_virgl_lib.drmGetNodeTypeFromFd)

#endif
