/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target: the virtio-fs device (queue 0 high priority, queue 1 requests)
 * serving a fresh directory per input (a file, a subdirectory, a symlink out of it),
 * driven through the device harness (fuzz-device.h): FUSE requests as the guest's
 * driver would put them, and anything else. The header's device byte picks options:
 * bit 0 --thread-pool-size=2 (requests on workers the harness does not wait for, as
 * a guest's vCPU would not), bit 1 --readonly, bit 2 --cache=never, bit 3 --xattr.
 * Without bit 0 every request runs on the loop. The harness's FZ_OP_STATE saves the
 * device's state (the inodes and open files a migration moves) and loads any bytes
 * as one (dev/fs-migrate.c parses them). The directory is checked after each
 * input: nothing may have been made outside it.
 */
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test/fuzz/fuzz-device.h"

extern const struct vu_device_type vu_dev_fs;

struct share {
	char top[64];        /* a directory holding the share and the file outside it */
	char option[96];     /* shared-dir=TOP/share: the device keeps the string */
};

static int prepare(struct fz_port *p)
{
	struct share *s = calloc(1, sizeof(*s));
	uint8_t d = p->hdr->device;
	char path[160];

	if (!s)
		return -1;
	p->priv = s;
	snprintf(s->top, sizeof(s->top), "/tmp/fuzz-fs.XXXXXX");
	if (!mkdtemp(s->top))
		return -1;
	snprintf(s->option, sizeof(s->option), "shared-dir=%s/share", s->top);
	snprintf(path, sizeof(path), "%s/share", s->top);
	if (mkdir(path, 0755) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/share/a", s->top);
	int fd = open(path, O_CREAT | O_WRONLY, 0644);
	if (fd < 0 || write(fd, "0123456789abcdef", 16) != 16)
		return -1;
	close(fd);
	snprintf(path, sizeof(path), "%s/share/d", s->top);
	if (mkdir(path, 0755) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/share/out", s->top);
	if (symlink("../outside", path) < 0)
		return -1;
	if (fz_set_option(p->dev, s->option) < 0 ||
	    fz_set_option(p->dev, d & 1 ? "thread-pool-size=2" : "thread-pool-size=0") < 0 || (d & 2 && fz_set_option(p->dev, "readonly") < 0) || (d & 4 && fz_set_option(p->dev, "cache=never") < 0) ||
	    (d & 8 && fz_set_option(p->dev, "xattr") < 0))
		return -1;
	return 0;
}

/* What cannot go is left behind: the next input has a directory of its own. */
static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	remove(path);
	return 0;
}

static void finish(struct fz_port *p)
{
	struct share *s = p->priv;
	char path[160];

	if (!s)
		return;
	/* Only the share and nothing beside it: an escape would have made "outside". */
	snprintf(path, sizeof(path), "%s/outside", s->top);
	if (access(path, F_OK) == 0)
		abort();
	nftw(s->top, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	free(s);
	p->priv = NULL;
}

static const struct fz_target fs = {
	.type = &vu_dev_fs,
	.nports = 1,
	.settle_ns = 20000,
	.prepare = prepare,
	.finish = finish,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fz_run(&fs, data, size);
}
