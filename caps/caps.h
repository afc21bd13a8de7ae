/* SPDX-License-Identifier: GPL-2.0-or-later */
/* --print-capabilities: the VHostUserBackendCapabilities JSON of vhost-user.json. */
#ifndef VU_CAPS_H
#define VU_CAPS_H

#include "proto/device.h"

/* Prints {"type": ..., "features": [...]} to stdout, two-space indent. */
int vu_caps_print(const struct vu_device_type *type);

#endif
