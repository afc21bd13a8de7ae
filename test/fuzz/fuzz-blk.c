/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target: the virtio-blk device with two queues and an inflight
 * buffer, on a memfd image, driven through the device harness (fuzz-device.h).
 * The header's device byte picks options: bit 0 --read-only, bit 1
 * --writethrough, bit 2 --logical-block-size=4096, bit 3 --threads=2 (queue 1
 * on a worker thread, whose I/O the harness does not wait for: it goes on as a
 * guest's vCPU would, while the worker works). FZ_OP_DEVICE: the host
 * truncates the image under the device to a u16 number of sectors (reads and
 * writes past its end then come back short).
 */
#include <unistd.h>

#include "test/fuzz/fuzz-device.h"

#define IMAGE_SIZE (1u << 20)

extern const struct vu_device_type vu_dev_blk;

static int prepare(struct fz_port *p)
{
	uint8_t d = p->hdr->device;

	if ((d & 1 && fz_set_option(p->dev, "read-only") < 0) ||
	    (d & 2 && fz_set_option(p->dev, "writethrough") < 0) ||
	    (d & 4 && fz_set_option(p->dev, "logical-block-size=4096") < 0) ||
	    (d & 8 && fz_set_option(p->dev, "threads=2") < 0))
		return -1;
	p->image_fd = fz_memfd_option(p->dev, "blk-file", IMAGE_SIZE, p->image_option);
	return p->image_fd < 0 ? -1 : 0;
}

static void truncate_image(struct fz_port *p, struct fz_input *in)
{
	if (ftruncate(p->image_fd, (off_t)fz_u16(in) * 512) < 0)
		return;
}

static const char *const options[] = { "num-queues=2", NULL };

static const struct fz_target blk = {
	.type = &vu_dev_blk,
	.options = options,
	.nports = 1,
	.settle_ns = 20000,
	.prepare = prepare,
	.op = truncate_image,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fz_run(&blk, data, size);
}
