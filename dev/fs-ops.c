/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * FUSE requests: the dispatch of every opcode, replies, and the requests on names
 * and attributes (INIT, LOOKUP, FORGET, GETATTR, SETATTR, the ones that create,
 * remove, rename and link, STATFS, ACCESS, SYNCFS, DESTROY). dev/fs-io.c has the
 * ones on open files. Arguments are read with fs_take*(): every length the guest
 * sends is checked against what it actually sent before anything is used.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>          /* RENAME_*, which musl does not define */
#include <stdio.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dev/fs.h"
#include "proto/iov.h"
#include "proto/log.h"

#define FS_MINOR 33                 /* the protocol minor we speak: submounts (7.32), no INIT_EXT */

/* What INIT may turn on: the kernel's offer, masked with these. */
#define FS_INIT_FLAGS (FUSE_ASYNC_READ | FUSE_POSIX_LOCKS | FUSE_ATOMIC_O_TRUNC | FUSE_BIG_WRITES | \
		       FUSE_FLOCK_LOCKS | FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO | FUSE_PARALLEL_DIROPS | \
		       FUSE_AUTO_INVAL_DATA | FUSE_MAX_PAGES | FUSE_CACHE_SYMLINKS | FUSE_HANDLE_KILLPRIV_V2)

const void *fs_take(struct fs_args *a, size_t n)
{
	const void *p = a->p;

	if (n > a->left)
		return NULL;
	a->p += n;
	a->left -= n;
	return p;
}

const char *fs_take_str(struct fs_args *a, size_t max)
{
	size_t len = strnlen((const char *)a->p, a->left);

	if (len == a->left || len > max)
		return NULL; /* no NUL in what was sent, or too long */
	return fs_take(a, len + 1);
}

void fs_reply(struct fs_req *r, int error, const void *body, size_t len)
{
	const struct iovec *w = r->iov + r->vr.out;
	size_t room = vu_iov_size(w, r->vr.in);
	struct fuse_out_header h = { .unique = r->in.unique, .error = error };

	if (room < sizeof(h)) {
		r->written = 0; /* nowhere to answer: the driver sees an empty completion */
		return;
	}
	if (!error && len > room - sizeof(h)) {
		h.error = -ERANGE; /* the guest offered less room than its own request needs */
		len = 0;
	}
	if (error)
		len = 0;
	h.len = (uint32_t)(sizeof(h) + len);
	vu_iov_from_buf(w, r->vr.in, 0, &h, sizeof(h));
	if (len)
		vu_iov_from_buf(w, r->vr.in, sizeof(h), body, len);
	r->written = h.len;
}

/* ---- session ---------------------------------------------------------------------- */

static void op_init(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a)
{
	const struct fuse_init_in *in = fs_take(a, offsetof(struct fuse_init_in, flags2));
	struct fuse_init_out out = { .major = FUSE_KERNEL_VERSION, .minor = FS_MINOR };

	if (!in)
		return fs_reply_err(r, -EINVAL);
	const uint32_t *flags2 = in->flags & FUSE_INIT_EXT ? fs_take(a, sizeof(*flags2)) : NULL;
	if (in->major > FUSE_KERNEL_VERSION) /* the kernel tries again with ours */
		return fs_reply(r, 0, &out, FUSE_COMPAT_INIT_OUT_SIZE);
	if (in->major < FUSE_KERNEL_VERSION || in->minor < 27) {
		vu_err("fs: FUSE %u.%u is too old (7.27 or later)", in->major, in->minor);
		return fs_reply_err(r, -EPROTO);
	}
	bool new_driver = __atomic_exchange_n(&fs->reset_seen, false, __ATOMIC_ACQ_REL);
	if (!new_driver && __atomic_load_n(&fs->initialized, __ATOMIC_ACQUIRE))
		return fs_reply_err(r, -EPROTO); /* a second INIT without DESTROY or a reset */
	if (new_driver)
		fs_nodes_forget_all(fs); /* what the driver before the reset looked up and opened */
	uint32_t want = FS_INIT_FLAGS | (fs->announce_submounts ? FUSE_SUBMOUNTS : 0);
	out.minor = in->minor < FS_MINOR ? in->minor : FS_MINOR;
	out.flags = in->flags & want;
	/* The one flag of the second word we take: only where requests run as the guest's users. */
	if (flags2 && *flags2 & FUSE_CREATE_SUPP_GROUP >> 32 && fs->supp_group) {
		out.flags |= FUSE_INIT_EXT;
		out.flags2 = FUSE_CREATE_SUPP_GROUP >> 32;
	}
	out.max_readahead = in->max_readahead;
	out.max_background = 64;
	out.congestion_threshold = 48;
	out.max_write = FS_MAX_WRITE;
	out.time_gran = 1;
	out.max_pages = FS_MAX_PAGES;
	vu_info("fs: FUSE %u.%u, flags 0x%x 0x%x", out.major, out.minor, out.flags, out.flags2);
	__atomic_store_n(&fs->initialized, true, __ATOMIC_RELEASE);
	fs_reply(r, 0, &out, sizeof(out)); /* the whole reply: 7.23 and later take it */
}

static void op_destroy(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a)
{
	__atomic_store_n(&fs->initialized, false, __ATOMIC_RELEASE);
	fs_nodes_forget_all(fs);
	fs_reply_err(r, 0);
}

/* FORGET and BATCH_FORGET have no reply. */
static void op_forget(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a)
{
	const struct fuse_forget_in *in = fs_take(a, sizeof(*in));

	if (in)
		fs_node_forget(fs, r->in.nodeid, in->nlookup);
}

static void op_batch_forget(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a)
{
	const struct fuse_batch_forget_in *in = fs_take(a, sizeof(*in));
	const struct fuse_forget_one *one;

	/* As many as were sent, however many the count claims. */
	for (uint32_t i = 0; in && i < in->count && (one = fs_take(a, sizeof(*one))); i++)
		fs_node_forget(fs, one->nodeid, one->nlookup);
}

/* ---- names -------------------------------------------------------------------------- */

static const char *take_name(struct fs_args *a)
{
	const char *name = fs_take_str(a, NAME_MAX);
	return name && fs_name_ok(name) ? name : NULL;
}

/* After a call that created name in dir: looks it up and replies with the entry. */
static void reply_entry(struct fs *fs, struct fs_req *r, struct fs_node *dir, const char *name, int err)
{
	struct fuse_entry_out e;

	if (!err)
		err = fs_node_lookup(fs, dir, name, &e);
	if (err)
		return fs_reply_err(r, err);
	fs_reply(r, 0, &e, sizeof(e));
}

static void op_lookup(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a)
{
	const char *name = take_name(a);

	if (!name)
		return fs_reply_err(r, -EINVAL);
	if (n->type != S_IFDIR)
		return fs_reply_err(r, -ENOTDIR);
	reply_entry(fs, r, n, name, 0);
}

static void op_mknod(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a)
{
	const struct fuse_mknod_in *in = fs_take(a, sizeof(*in));
	const char *name = take_name(a);

	if (!in || !name)
		return fs_reply_err(r, -EINVAL);
	/* A device node in the share would reach a host device, for the host's users at least. */
	if (S_ISCHR(in->mode) || S_ISBLK(in->mode))
		return fs_reply_err(r, -EPERM);
	reply_entry(fs, r, n, name, mknodat(n->fd, name, in->mode, in->rdev) < 0 ? -errno : 0);
}

static void op_mkdir(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a)
{
	const struct fuse_mkdir_in *in = fs_take(a, sizeof(*in));
	const char *name = take_name(a);

	if (!in || !name)
		return fs_reply_err(r, -EINVAL);
	reply_entry(fs, r, n, name, mkdirat(n->fd, name, in->mode & 07777) < 0 ? -errno : 0);
}

static void op_symlink(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a)
{
	const char *name = take_name(a);
	const char *target = fs_take_str(a, PATH_MAX - 1);

	if (!name || !target || !*target)
		return fs_reply_err(r, -EINVAL);
	/* The target is only text here: it is never followed (lookups refuse symlinks). */
	reply_entry(fs, r, n, name, symlinkat(target, n->fd, name) < 0 ? -errno : 0);
}

static void op_link(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a)
{
	const struct fuse_link_in *in = fs_take(a, sizeof(*in));
	const char *name = take_name(a);
	char old[16];

	if (!in || !name)
		return fs_reply_err(r, -EINVAL);
	struct fs_node *o = fs_node_get(fs, in->oldnodeid);
	if (!o)
		return fs_reply_err(r, -ESTALE);
	int err = 0;
	if (o->type == S_IFDIR) {
		err = -EPERM;
	} else {
		/* Our own handle's magic link: the inode itself, which is beneath the shared directory. */
		fs_node_procname(o, old);
		if (linkat(fs->proc_fd, old, n->fd, name, AT_SYMLINK_FOLLOW) < 0)
			err = -errno;
	}
	fs_node_put(fs, o);
	reply_entry(fs, r, n, name, err);
}

static void op_unlink(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a)
{
	const char *name = take_name(a);

	if (!name)
		return fs_reply_err(r, -EINVAL);
	int flags = r->in.opcode == FUSE_RMDIR ? AT_REMOVEDIR : 0;
	fs_reply_err(r, unlinkat(n->fd, name, flags) < 0 ? -errno : 0);
}

static void op_rename(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a)
{
	uint64_t newdir;
	uint32_t flags = 0;

	if (r->in.opcode == FUSE_RENAME2) {
		const struct fuse_rename2_in *in = fs_take(a, sizeof(*in));
		if (!in)
			return fs_reply_err(r, -EINVAL);
		newdir = in->newdir;
		flags = in->flags;
	} else {
		const struct fuse_rename_in *in = fs_take(a, sizeof(*in));
		if (!in)
			return fs_reply_err(r, -EINVAL);
		newdir = in->newdir;
	}
	const char *old = take_name(a);
	const char *new = take_name(a);
	if (!old || !new || flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT))
		return fs_reply_err(r, -EINVAL);
	struct fs_node *to = fs_node_get(fs, newdir);
	if (!to)
		return fs_reply_err(r, -ESTALE);
	/* Both directories are handles beneath the shared directory: nothing crosses it. */
	/* The system call itself: musl has no renameat2() (make static). */
	int err = syscall(SYS_renameat2, n->fd, old, to->fd, new, flags) < 0 ? -errno : 0;
	fs_node_put(fs, to);
	fs_reply_err(r, err);
}

static void op_readlink(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a)
{
	if (n->type != S_IFLNK)
		return fs_reply_err(r, -EINVAL);
	ssize_t len = readlinkat(n->fd, "", (char *)r->reply, PATH_MAX);
	if (len < 0)
		return fs_reply_err(r, -errno);
	fs_reply(r, 0, r->reply, (size_t)len);
}

/* ---- attributes ------------------------------------------------------------------------ */

static void reply_attr(struct fs *fs, struct fs_req *r, struct fs_node *n)
{
	struct fuse_attr_out out = { .attr_valid = fs_cache_timeout(fs) };
	int err = fs_node_stat(fs, n, &out.attr);

	if (err)
		return fs_reply_err(r, err);
	fs_reply(r, 0, &out, sizeof(out));
}

static void op_getattr(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a)
{
	if (!fs_take(a, sizeof(struct fuse_getattr_in)))
		return fs_reply_err(r, -EINVAL);
	reply_attr(fs, r, n);
}

static int set_times(struct fs *fs, struct fs_node *n, const struct fuse_setattr_in *in)
{
	struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_OMIT } };
	char name[16];

	if (in->valid & FATTR_ATIME)
		ts[0] = (struct timespec){ .tv_sec = (time_t)in->atime, .tv_nsec = in->atimensec };
	if (in->valid & FATTR_ATIME_NOW)
		ts[0].tv_nsec = UTIME_NOW;
	if (in->valid & FATTR_MTIME)
		ts[1] = (struct timespec){ .tv_sec = (time_t)in->mtime, .tv_nsec = in->mtimensec };
	if (in->valid & FATTR_MTIME_NOW)
		ts[1].tv_nsec = UTIME_NOW;
	if (n->type == S_IFLNK)
		return -EOPNOTSUPP; /* the magic link would be followed to the link's target */
	fs_node_procname(n, name);
	return utimensat(fs->proc_fd, name, ts, 0) < 0 ? -errno : 0;
}

static int set_size(struct fs *fs, struct fs_node *n, const struct fuse_setattr_in *in)
{
	struct fs_file *f = in->valid & FATTR_FH ? fs_file_get(fs, in->fh) : NULL;
	int err = 0;

	if (in->valid & FATTR_FH && !f)
		return -EBADF;
	int fd = f ? f->fd : fs_node_open(fs, n, O_WRONLY);
	if (fd < 0)
		return fd;
	bool off = fs_cred_fsetid_off(in->valid & FATTR_KILL_SUIDGID);
	if (n->type != S_IFREG)
		err = -EINVAL;
	else if (in->size > INT64_MAX || ftruncate(fd, (off_t)in->size) < 0)
		err = in->size > INT64_MAX ? -EFBIG : -errno;
	fs_cred_fsetid_on(off);
	if (f)
		fs_file_put(fs, f);
	else
		close(fd);
	return err;
}

static void op_setattr(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a)
{
	const struct fuse_setattr_in *in = fs_take(a, sizeof(*in));
	char name[16];
	int err = 0;

	if (!in)
		return fs_reply_err(r, -EINVAL);
	fs_node_procname(n, name);
	if (in->valid & FATTR_MODE)
		err = n->type == S_IFLNK ? -EOPNOTSUPP :
		      fchmodat(fs->proc_fd, name, in->mode & 07777, 0) < 0 ? -errno : 0;
	if (!err && in->valid & (FATTR_UID | FATTR_GID) &&
	    fchownat(n->fd, "", in->valid & FATTR_UID ? in->uid : (uid_t)-1, in->valid & FATTR_GID ? in->gid : (gid_t)-1,
		     AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		err = -errno;
	if (!err && in->valid & FATTR_SIZE)
		err = set_size(fs, n, in);
	if (!err && in->valid & (FATTR_ATIME | FATTR_MTIME | FATTR_ATIME_NOW | FATTR_MTIME_NOW))
		err = set_times(fs, n, in);
	if (err)
		return fs_reply_err(r, err);
	reply_attr(fs, r, n);
}

static void op_statfs(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a)
{
	struct statfs st;
	struct fuse_statfs_out out = { 0 };

	if (fstatfs(n->fd, &st) < 0)
		return fs_reply_err(r, -errno);
	out.st = (struct fuse_kstatfs){ .blocks = st.f_blocks, .bfree = st.f_bfree, .bavail = st.f_bavail,
					.files = st.f_files, .ffree = st.f_ffree, .bsize = (uint32_t)st.f_bsize,
					.namelen = (uint32_t)st.f_namelen, .frsize = (uint32_t)st.f_frsize };
	fs_reply(r, 0, &out, sizeof(out));
}

static void op_access(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a)
{
	const struct fuse_access_in *in = fs_take(a, sizeof(*in));

	if (!in || in->mask & ~(unsigned)(R_OK | W_OK | X_OK))
		return fs_reply_err(r, -EINVAL);
	if (fs->readonly && in->mask & W_OK)
		return fs_reply_err(r, -EROFS);
	long ret = syscall(SYS_faccessat2, n->fd, "", (int)in->mask, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
	fs_reply_err(r, ret < 0 ? -errno : 0);
}

static void op_syncfs(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a)
{
	if (!fs_take(a, sizeof(struct fuse_syncfs_in)))
		return fs_reply_err(r, -EINVAL);
	fs_reply_err(r, syncfs(fs->root_dir_fd) < 0 ? -errno : 0);
}

/* ---- dispatch ----------------------------------------------------------------------------- */

#define NO_NODE  0x1    /* the request names no node */
#define WRITES   0x2    /* changes the shared directory: refused with --readonly */
#define NO_REPLY 0x4

static const struct {
	fs_op_fn fn;
	unsigned flags;
} ops[] = {
	[FUSE_LOOKUP] = { op_lookup },
	[FUSE_FORGET] = { op_forget, NO_NODE | NO_REPLY },
	[FUSE_BATCH_FORGET] = { op_batch_forget, NO_NODE | NO_REPLY },
	[FUSE_GETATTR] = { op_getattr },
	[FUSE_SETATTR] = { op_setattr, WRITES },
	[FUSE_READLINK] = { op_readlink },
	[FUSE_SYMLINK] = { op_symlink, WRITES },
	[FUSE_MKNOD] = { op_mknod, WRITES },
	[FUSE_MKDIR] = { op_mkdir, WRITES },
	[FUSE_UNLINK] = { op_unlink, WRITES },
	[FUSE_RMDIR] = { op_unlink, WRITES },
	[FUSE_RENAME] = { op_rename, WRITES },
	[FUSE_RENAME2] = { op_rename, WRITES },
	[FUSE_LINK] = { op_link, WRITES },
	[FUSE_OPEN] = { fs_op_open },
	[FUSE_OPENDIR] = { fs_op_open },
	[FUSE_CREATE] = { fs_op_create, WRITES },
	[FUSE_READ] = { fs_op_read },
	[FUSE_WRITE] = { fs_op_write, WRITES },
	/* The fh alone: a file whose inode a migration lost is released all the same. */
	[FUSE_RELEASE] = { fs_op_release, NO_NODE },
	[FUSE_RELEASEDIR] = { fs_op_release, NO_NODE },
	[FUSE_FLUSH] = { fs_op_flush },
	[FUSE_FSYNC] = { fs_op_fsync },
	[FUSE_FSYNCDIR] = { fs_op_fsync },
	[FUSE_READDIR] = { fs_op_readdir },
	[FUSE_READDIRPLUS] = { fs_op_readdir },
	[FUSE_STATFS] = { op_statfs },
	[FUSE_SETXATTR] = { fs_op_xattr, WRITES },
	[FUSE_GETXATTR] = { fs_op_xattr },
	[FUSE_LISTXATTR] = { fs_op_xattr },
	[FUSE_REMOVEXATTR] = { fs_op_xattr, WRITES },
	[FUSE_GETLK] = { fs_op_lk },
	[FUSE_SETLK] = { fs_op_lk },
	[FUSE_SETLKW] = { fs_op_lk },
	[FUSE_ACCESS] = { op_access },
	[FUSE_FALLOCATE] = { fs_op_fallocate, WRITES },
	[FUSE_LSEEK] = { fs_op_lseek },
	[FUSE_COPY_FILE_RANGE] = { fs_op_copy_file_range, WRITES },
	[FUSE_SYNCFS] = { op_syncfs },
	[FUSE_DESTROY] = { op_destroy, NO_NODE },
	[FUSE_INIT] = { op_init, NO_NODE },
};

void fs_op_run(struct fs *fs, struct fs_req *r)
{
	size_t ext = (size_t)r->in.total_extlen * 8;    /* extensions (dev/fs-cred.c reads them) end the arguments */
	struct fs_args a = { r->arg, r->arg_len - (ext <= r->arg_len ? ext : 0) };
	uint32_t op = r->in.opcode;
	unsigned flags = op < sizeof(ops) / sizeof(ops[0]) && ops[op].fn ? ops[op].flags : 0;

	r->written = 0;
	if (ext > r->arg_len)
		return fs_reply_err(r, -EINVAL);
	if (op == FUSE_INTERRUPT)
		return; /* nothing here waits long enough to interrupt: no reply, as for FORGET */
	if (op >= sizeof(ops) / sizeof(ops[0]) || !ops[op].fn)
		return fs_reply_err(r, -ENOSYS);
	if (op != FUSE_INIT && !(flags & NO_REPLY) && !__atomic_load_n(&fs->initialized, __ATOMIC_ACQUIRE))
		return fs_reply_err(r, -EIO);
	if (fs->readonly && flags & WRITES)
		return fs_reply_err(r, -EROFS);
	if (flags & NO_NODE)
		return ops[op].fn(fs, r, NULL, &a);
	struct fs_node *n = fs_node_get(fs, r->in.nodeid);
	if (!n)
		return fs_reply_err(r, -ESTALE);
	ops[op].fn(fs, r, n, &a);
	fs_node_put(fs, n);
}
