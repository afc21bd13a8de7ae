/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target: the virtio-gpu device in 2D (control and cursor queues),
 * with a display at the other end of its side channel (fuzz-display.h) that
 * reads, stalls, closes or answers wrongly; driven through the device harness
 * (fuzz-device.h). --max-memory=16 keeps one input's resources small enough
 * that copying them stays quick; --max-outputs=2 gives scanouts to mix up.
 */
#include "test/fuzz/fuzz-device.h"
#include "test/fuzz/fuzz-display.h"

extern const struct vu_device_type vu_dev_gpu;

static const char *const options[] = { "max-memory=16", "max-outputs=2", NULL };

static const struct fz_target gpu = {
	.type = &vu_dev_gpu,
	.options = options,
	.nports = 1,
	.settle_ns = 20000,
	.connected = fz_display_connected,
	.op = fz_display_op,
	.service = fz_display_service,
	.finish = fz_display_finish,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fz_run(&gpu, data, size);
}
