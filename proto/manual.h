/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Manual pages (roff, man(7) macros) written from the same tables as --help,
 * so the installed pages cannot drift from the binary: one per personality
 * (`vhost-user-NAME --man`) and vhostbox(1) (`vhostbox --man`).
 */
#ifndef VU_MANUAL_H
#define VU_MANUAL_H

#include <stddef.h>
#include <stdio.h>

#include "proto/device.h"

/* An option every personality has (proto/backend.c's table). */
struct vu_common_option {
	const char *name;
	int id;                 /* getopt's value for it */
	const char *arg;        /* the value's name; NULL for a flag */
	const char *help;
};

void vu_manual_personality(const struct vu_device_type *t, const struct vu_common_option *common,
			   size_t ncommon, FILE *out);
void vu_manual_vhostbox(const struct vu_device_type *const *types, size_t n, FILE *out);

#endif
