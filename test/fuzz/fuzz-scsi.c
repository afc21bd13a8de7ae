/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target: the virtio-scsi device with two LUNs on memfd images and two
 * request queues (queues 2 and 3, after the control and event queues), inflight
 * offered, driven through the device harness (fuzz-device.h). The header's device
 * byte picks settings: bit 0 LUN 1 read-only, bit 1 --writethrough, bit 2 LUN 0
 * with 4096-byte blocks, bit 3 LUN 1 rotational. FZ_OP_DEVICE: the host truncates
 * LUN 0's image under the device to a u16 number of 512-byte blocks (reads past
 * its end then come back short: MEDIUM ERROR).
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "test/fuzz/fuzz-device.h"

#define IMAGE_SIZE (1u << 20)

extern const struct vu_device_type vu_dev_scsi;

/* A memfd image given to the device as one more --lun with these settings; the fd or -1. */
static int add_lun(struct fz_port *p, const char *settings, char *opt)
{
	int fd = memfd_create("fuzz-lun", MFD_CLOEXEC);

	if (fd < 0)
		return -1;
	snprintf(opt, FZ_OPTION_MAX, "lun=/proc/self/fd/%d%s", fd, settings);
	if (ftruncate(fd, IMAGE_SIZE) < 0 || fz_set_option(p->dev, opt) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

struct luns {
	int fd1;                      /* LUN 1's image (LUN 0's is the port's image_fd) */
	char option1[FZ_OPTION_MAX];
};

static int prepare(struct fz_port *p)
{
	uint8_t d = p->hdr->device;
	struct luns *l = calloc(1, sizeof(*l));
	char settings1[32];

	if (!l)
		return -1;
	p->priv = l;
	l->fd1 = -1;
	if (d & 2 && fz_set_option(p->dev, "writethrough") < 0)
		return -1;
	p->image_fd = add_lun(p, d & 4 ? ",lbs=4096,serial=fuzz0" : ",serial=fuzz0", p->image_option);
	snprintf(settings1, sizeof(settings1), "%s%s", d & 1 ? ",ro" : "", d & 8 ? ",rotational" : "");
	l->fd1 = add_lun(p, settings1, l->option1);
	return p->image_fd < 0 || l->fd1 < 0 ? -1 : 0;
}

static void truncate_image(struct fz_port *p, struct fz_input *in)
{
	if (ftruncate(p->image_fd, (off_t)fz_u16(in) * 512) < 0)
		return;
}

static void finish(struct fz_port *p)
{
	struct luns *l = p->priv;

	if (l && l->fd1 >= 0)
		close(l->fd1);
	free(l);
	p->priv = NULL;
}

static const char *const options[] = { "num-queues=2", NULL };

static const struct fz_target scsi = {
	.type = &vu_dev_scsi,
	.options = options,
	.nports = 1,
	.settle_ns = 20000,
	.prepare = prepare,
	.op = truncate_image,
	.finish = finish,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fz_run(&scsi, data, size);
}
