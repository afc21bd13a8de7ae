/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Confinement of a back-end once start-up is done (devices opened, sockets
 * bound or received) and before the first front-end message: --sandbox,
 * --user/--group, --rlimit-nofile. The modes are in proto/device.h; what a
 * device still needs is declared in its struct vu_device_type (syscalls, and
 * the sandbox hook for what depends on its options).
 */
#ifndef VU_SANDBOX_H
#define VU_SANDBOX_H

#include <stdbool.h>
#include <sys/types.h>

#include "proto/device.h"

struct vu_sandbox {
	int mode;                  /* enum vu_sandbox_mode, or -1: the strictest the devices allow */
	bool mode_asked;           /* --sandbox was given */
	bool set_user, set_group;
	bool gid_known;            /* --group, or --user's passwd entry */
	uid_t uid;
	gid_t gid;                 /* --group, else --user's primary group */
	unsigned long nofile;      /* --rlimit-nofile, 0: not given */

	/* Filled by vu_sandbox_plan() from the devices' declarations. */
	const struct vu_syscall *lists[4];   /* the devices' own lists, then instances' wider ones */
	unsigned nlists;
	bool host_net;
	const char *const *chroot_dir;  /* the device's directory for chroot mode (one device) */
	uint64_t caps;             /* kept where the process may act as other users (the devices' needs) */
	const struct vu_id_map *uid_map, *gid_map;   /* the user namespace's, from one device */
	unsigned n_uid_map, n_gid_map;
	int strictest;             /* what every device allows */
	const char *why;           /* what limited strictest */
};

/* The option parsers: NULL, or the reason the value is refused (for a usage error). */
const char *vu_sandbox_set_mode(struct vu_sandbox *sb, const char *arg);
const char *vu_sandbox_set_user(struct vu_sandbox *sb, const char *arg);
const char *vu_sandbox_set_group(struct vu_sandbox *sb, const char *arg);
const char *vu_sandbox_set_nofile(struct vu_sandbox *sb, const char *arg);

/*
 * Settles the mode for these devices (their options are set, init not yet run):
 * the one asked for, or the strictest all of them allow. 0, or -1 after a one-line
 * error when the mode asked for is stricter than a device allows.
 */
int vu_sandbox_plan(struct vu_sandbox *sb, struct vu_dev *const *devs, unsigned n);

/*
 * Confines the process as planned. socket_paths (n_paths of them) are the socket
 * files this process created: from now on they are unlinked by vu_sandbox_exit()
 * (a small helper outside the confinement does it), not by their owner. A default
 * mode that the host cannot provide (no namespaces in a container) falls back to
 * seccomp with a warning. 0, or -1 after an error line: the program must end.
 */
int vu_sandbox_enter(struct vu_sandbox *sb, const char *const *socket_paths, unsigned n_paths);

/* At the very end: the socket files handed over by vu_sandbox_enter() are unlinked. */
void vu_sandbox_exit(void);

/* The mode in force ("none", "seccomp", "chroot", "namespace"). */
const char *vu_sandbox_mode_name(int mode);

#endif
