/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The management side of vhost-user back-end discovery (QEMU's vhost-user.json,
 * @VhostUserBackend): `vhostbox --discover TYPE [--feature F]... [--root DIR]`
 * finds the back-end a management application would pick and prints its JSON
 * file (line 1) and binary (line 2).
 */
#ifndef VU_DISCOVER_H
#define VU_DISCOVER_H

/* argv is vhostbox's whole argv ("vhostbox --discover TYPE ..."); returns the exit status. */
int vu_discover_main(int argc, char **argv);

#endif
