/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target: the virtio-gpu device with --virgl, on Mesa's software
 * renderer (llvmpipe, surfaceless EGL: no render node is opened), with the
 * fuzz-display.h display; driven through the device harness (fuzz-device.h).
 *
 * virglrenderer is one per process and takes some 150 ms to start, so the
 * device is made once and each input gets a new session of it (the session's
 * end resets it, as a front-end's departure does). Where virgl cannot start,
 * the target says so and exits with status 0 before fuzzing anything.
 */
#include <stdio.h>
#include <stdlib.h>

#include "test/fuzz/fuzz-device.h"
#include "test/fuzz/fuzz-display.h"

extern const struct vu_device_type vu_dev_gpu;

static const char *const options[] = { "virgl", "max-memory=16", NULL };

static const struct fz_target virgl = {
	.type = &vu_dev_gpu,
	.options = options,
	.nports = 1,
	.keep_device = true,
	.settle_ns = 100000,
	.connected = fz_display_connected,
	.op = fz_display_op,
	.service = fz_display_service,
	.finish = fz_display_finish,
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* One rasterizer thread: the fuzzer's machine is shared, and the result is the same. */
	setenv("LP_NUM_THREADS", "1", 0);
	if (!vu_dev_gpu.cap_available("virgl")) {
		printf("SKIP: fuzz-virgl: virglrenderer cannot start here (no usable EGL renderer)\n");
		exit(0);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fz_run(&virgl, data, size);
}
