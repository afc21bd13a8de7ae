/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <sys/resource.h>

#include "proto/device.h"

void vu_device_raise_nofile(void)
{
	struct rlimit r;

	if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
		r.rlim_cur = r.rlim_max;
		setrlimit(RLIMIT_NOFILE, &r);
	}
}

struct vu_dev *vu_device_create(const struct vu_device_type *type)
{
	struct vu_dev *dev = type->create();

	if (dev) {
		dev->type = type;
		dev->num_queues = type->num_queues;
		dev->features = type->features;
		dev->max_queue_size = VU_VRING_MAX_SIZE;
	}
	return dev;
}
