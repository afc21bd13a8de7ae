/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The back-end side of discovery: the JSON file a personality is installed with
 * in /usr/share/qemu/vhost-user (QEMU's vhost-user.json, @VhostUserBackend),
 * written from the device's own declaration, so it cannot drift from the binary.
 */
#ifndef VU_DESCRIBE_H
#define VU_DESCRIBE_H

#include "proto/device.h"

/* Prints the discovery file of type t installed as binary (an absolute path). Returns 0 or -1. */
int vu_describe_print(const struct vu_device_type *t, const char *binary);

#endif
