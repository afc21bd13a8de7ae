/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>

#include "proto/device.h"
#include "proto/log.h"

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

int vu_option_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "%s: ", vu_log_name());
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	return -1;
}
