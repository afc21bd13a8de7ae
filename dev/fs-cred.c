/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Whose request it is. Where the process may act as other users (root, also root
 * of its own user namespace with --uid-map/--gid-map), a request runs on its
 * thread with the guest's uid and gid (FUSE's in.uid, in.gid) as the thread's
 * fsuid and fsgid, so the host kernel decides access and ownership as for that
 * user, and back to 0 after. The raw calls: they change the calling thread only
 * (as glibc's wrappers do), and a second call reads back what the first did. An
 * fsuid other than 0 also takes the file-system capabilities (CAP_DAC_OVERRIDE,
 * CAP_FOWNER, CAP_FSETID...) out of the thread's effective set, the kernel's own
 * rule, so only the guest's root acts with them. The process has no supplementary
 * groups (proto/sandbox.c leaves them where it keeps capabilities): only the
 * guest's gid counts, and the one supplementary group the guest's kernel sends
 * with a request that creates (FUSE_CREATE_SUPP_GROUP), set on the thread for it.
 *
 * Setuid and setgid bits (FUSE_HANDLE_KILLPRIV_V2): a write or truncate by a user
 * without CAP_FSETID clears them. A guest user's runs as that user, without it, so
 * the host kernel clears them as it would; a request the guest marks KILL_SUIDGID
 * (its caller lacks CAP_FSETID, be it uid 0) runs without CAP_FSETID as well.
 * A chown clears them on the host whoever asks.
 *
 * And the --uid-map/--gid-map options (the maps of proto/sandbox.c's user namespace).
 */
#include <ctype.h>
#include <errno.h>
#include <linux/capability.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dev/fs.h"
#include "proto/log.h"

void fs_cred_probe(struct fs *fs)
{
	fs->switch_ids = fs->supp_group = false;
	if (geteuid() != 0)
		return;
	/* setfsuid() says nothing on failure: the id it leaves shows. -1 changes nothing: it reports. */
	syscall(SYS_setfsuid, 1);
	fs->switch_ids = syscall(SYS_setfsuid, -1) == 1;
	syscall(SYS_setfsuid, 0);
	/* A user namespace whose setgroups is "deny" (no --gid-map) has none to give. */
	fs->supp_group = fs->switch_ids && syscall(SYS_setgroups, 0, NULL) == 0;
}

/*
 * The supplementary group a request carries (FUSE_CREATE_SUPP_GROUP: on CREATE,
 * MKNOD, MKDIR and SYMLINK, the caller's group that owns the parent directory)
 * among its extensions, the last total_extlen * 8 bytes of its arguments. 0 with
 * *group set or left (none), or -EINVAL for extensions that do not add up.
 */
static int supp_group(const struct fs_req *r, uint32_t *group, bool *has)
{
	size_t len = (size_t)r->in.total_extlen * 8;

	*has = false;
	if (len > r->arg_len)
		return -EINVAL;
	for (const uint8_t *p = r->arg + r->arg_len - len; len;) {
		struct fuse_ext_header h;
		struct fuse_supp_groups g;
		if (len < sizeof(h))
			return -EINVAL;
		memcpy(&h, p, sizeof(h));
		if (h.size < sizeof(h) || h.size > len || h.size % 8)
			return -EINVAL;
		if (h.type == FUSE_EXT_GROUPS) {
			/* The kernel sends one group: anything else is not its. */
			if (h.size < sizeof(h) + sizeof(g) + sizeof(uint32_t))
				return -EINVAL;
			memcpy(&g, p + sizeof(h), sizeof(g));
			if (g.nr_groups != 1 || *has)
				return -EINVAL;
			memcpy(group, p + sizeof(h) + sizeof(g), sizeof(*group));
			*has = true;
		}
		p += h.size; /* other kinds (security contexts) are not asked for: skipped */
		len -= h.size;
	}
	return 0;
}

/* The thread's fsuid (setfsuid) or fsgid (setfsgid) becomes id: false when it did not. */
static bool set_fs_id(long call, uint32_t id)
{
	syscall(call, id);
	return (uint32_t)syscall(call, -1) == id;
}

int fs_cred_enter(const struct fs *fs, const struct fs_req *r)
{
	uint32_t group;
	bool has;

	if (!fs->switch_ids || (!r->in.uid && !r->in.gid))
		return 0; /* the guest's root: as we are */
	int err = fs->supp_group ? supp_group(r, &group, &has) : 0;
	if (err)
		return err;
	/* setgroups(2) itself changes this thread's only (glibc's wrapper changes them all). */
	if ((fs->supp_group && has && syscall(SYS_setgroups, 1, &group) < 0) || !set_fs_id(SYS_setfsgid, r->in.gid) ||
	    !set_fs_id(SYS_setfsuid, r->in.uid)) {
		fs_cred_leave(fs, r);
		return -EPERM; /* an id our user namespace does not map */
	}
	return 0;
}

void fs_cred_leave(const struct fs *fs, const struct fs_req *r)
{
	if (!fs->switch_ids || (!r->in.uid && !r->in.gid))
		return;
	/* fsuid 0 again: the kernel puts the file-system capabilities back into the effective set. */
	syscall(SYS_setfsuid, 0);
	syscall(SYS_setfsgid, 0);
	if (fs->supp_group && r->in.total_extlen)
		syscall(SYS_setgroups, 0, NULL);
}

bool fs_cred_fsetid_off(bool kill)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];

	if (!kill || syscall(SYS_capget, &h, d) < 0 || !(d[0].effective & 1u << CAP_FSETID))
		return false; /* not asked, or the thread lacks it already: the kernel clears the bits */
	d[0].effective &= ~(1u << CAP_FSETID);
	return syscall(SYS_capset, &h, d) == 0;
}

void fs_cred_fsetid_on(bool off)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];

	if (!off || syscall(SYS_capget, &h, d) < 0)
		return;
	d[0].effective |= 1u << CAP_FSETID;
	if (syscall(SYS_capset, &h, d) < 0)
		vu_warn("fs: cannot take CAP_FSETID back: %s", strerror(errno));
}

/* ---- --uid-map, --gid-map ---------------------------------------------------------- */

/* A decimal uint32_t (digits only); false when s is not one. */
static bool parse_u32(const char *s, size_t len, uint32_t *out)
{
	uint64_t v = 0;

	if (!len || len > 10)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = (uint32_t)v;
	return v <= UINT32_MAX;
}

/*
 * virtiofsd's form: the last character (not a letter or digit) is the delimiter,
 * the value starts with it and holds three numbers between: namespace id, host id,
 * count (":0:100000:65536:"). The count is at least 1 and neither range passes 2^32.
 */
static int parse_map(const char *opt, const char *arg, struct vu_id_map *maps, unsigned *n)
{
	size_t len = strlen(arg);
	char delim = len ? arg[len - 1] : 0;
	uint32_t v[3];
	unsigned k = 0;
	const char *p = arg + 1;

	bool ok = len >= 2 && delim > ' ' && delim < 0x7f && !isalnum((unsigned char)delim) && arg[0] == delim;
	while (ok && k < 3) {
		const char *end = strchr(p, delim);
		ok = end && parse_u32(p, (size_t)(end - p), &v[k++]);
		if (ok)
			p = end + 1;
	}
	ok = ok && k == 3 && p == arg + len && v[2] >= 1 && (uint64_t)v[0] + v[2] <= (uint64_t)UINT32_MAX + 1 &&
	     (uint64_t)v[1] + v[2] <= (uint64_t)UINT32_MAX + 1;
	if (!ok) {
		vu_err("--%s: '%s' is not :namespace_id:host_id:count: (any one delimiter, count at least 1)", opt, arg);
		return -1;
	}
	if (*n == VU_ID_MAP_MAX) {
		vu_err("--%s: at most %u maps", opt, VU_ID_MAP_MAX);
		return -1;
	}
	maps[(*n)++] = (struct vu_id_map){ .inside = v[0], .outside = v[1], .count = v[2] };
	return 0;
}

int fs_parse_uid_map(struct vu_dev *dev, const char *arg)
{
	struct fs *fs = (struct fs *)dev;
	return parse_map("uid-map", arg, fs->uid_map, &fs->n_uid_map);
}

int fs_parse_gid_map(struct vu_dev *dev, const char *arg)
{
	struct fs *fs = (struct fs *)dev;
	return parse_map("gid-map", arg, fs->gid_map, &fs->n_gid_map);
}
