/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Runs one device as a vhost-user back-end program: the common options of the
 * back-end program conventions, the device's own options, the listener, the
 * loop, one front-end at a time, and a clean end on SIGTERM/SIGINT.
 */
#ifndef VU_BACKEND_H
#define VU_BACKEND_H

#include "proto/device.h"

#define VU_EXIT_USAGE 2

/* argv[0] is the personality's name. Returns the process exit status. */
int vu_backend_main(const struct vu_device_type *type, int argc, char **argv);

#endif
