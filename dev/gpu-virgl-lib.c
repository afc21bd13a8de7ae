/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Loads virglrenderer on first use (dev/gpu-virgl-lib.h says why): dlopen, then
 * every function gpu-virgl.c calls, looked up in it and the libraries it brings
 * (libdrm among them). Never unloaded: Mesa does not survive it (gpu-virgl.c pins
 * its drivers for the same reason).
 */
#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>

#include "dev/gpu-virgl-lib.h"

struct gpu_virgl_lib gpu_virgl_lib;

/* The table's order: the names to look up, as strings. */
#define GPU_VIRGL_NAME(f) #f,
static const char *const names[] = { GPU_VIRGL_FUNCS(GPU_VIRGL_NAME) };
_Static_assert(sizeof(struct gpu_virgl_lib) == sizeof(names) / sizeof(names[0]) * sizeof(void *),
	       "one function pointer per name");

bool gpu_virgl_lib_load(const char **why)
{
	static void *handle;
	static char error[256];

	if (!handle && !error[0]) {
		void **slot = (void **)&gpu_virgl_lib;
		handle = dlopen(GPU_VIRGL_LIB, RTLD_NOW | RTLD_NODELETE);
		for (size_t i = 0; handle && i < sizeof(names) / sizeof(names[0]); i++)
			if (!(slot[i] = dlsym(handle, names[i])))
				handle = NULL;
		if (!handle)
			snprintf(error, sizeof(error), "%s", dlerror());
	}
	if (why)
		*why = error;
	return handle != NULL;
}
