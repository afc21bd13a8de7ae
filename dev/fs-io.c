/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * FUSE requests on open files and directories: OPEN, OPENDIR, CREATE, READ, WRITE,
 * RELEASE, FLUSH, FSYNC, READDIR, READDIRPLUS, locks, FALLOCATE, LSEEK,
 * COPY_FILE_RANGE, and the xattr requests. Reads and writes go between the file and
 * guest memory with preadv/pwritev on iovecs sliced out of the request's own
 * descriptors: no copy on the way.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/limits.h>      /* XATTR_*: musl's limits.h does not bring them */
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "dev/fs.h"
#include "proto/iov.h"

#define COPY_MAX (1u << 30)         /* COPY_FILE_RANGE bytes one request may move */

/* The device-writable buffers and their size. */
static const struct iovec *wbuf(const struct fs_req *r, size_t *room)
{
	*room = vu_iov_size(r->iov + r->vr.out, r->vr.in);
	return r->iov + r->vr.out;
}

/* A reply whose len bytes of body are already in place after the header's room. */
static void reply_in_place(struct fs_req *r, size_t len)
{
	struct fuse_out_header h = { .len = (uint32_t)(sizeof(h) + len), .unique = r->in.unique };

	vu_iov_from_buf(r->iov + r->vr.out, r->vr.in, 0, &h, sizeof(h));
	r->written = h.len;
}

/* The open file a request names (a reference to put back), or NULL after replying EBADF. */
static struct fs_file *file_of(struct fs *fs, struct fs_req *r, uint64_t fh)
{
	struct fs_file *f = fs_file_get(fs, fh);

	if (!f)
		fs_reply_err(r, -EBADF);
	return f;
}

/* ---- open, create, release ------------------------------------------------------------ */

/* The guest's open flags we pass on; the rest (O_CREAT, O_NOFOLLOW, O_DIRECT...) is ours to say. */
static int open_flags(const struct fs *fs, uint32_t flags, int *fd_flags)
{
	*fd_flags = (int)flags & (O_ACCMODE | O_APPEND | O_TRUNC | O_SYNC | O_DSYNC | O_EXCL);
	if ((*fd_flags & O_ACCMODE) == O_ACCMODE)
		return -EINVAL;
	if (fs->readonly && ((*fd_flags & O_ACCMODE) != O_RDONLY || *fd_flags & O_TRUNC))
		return -EROFS;
	return 0;
}

static uint32_t fopen_flags(const struct fs *fs, bool dir)
{
	switch (fs->cache) {
	case FS_CACHE_NEVER:
	case FS_CACHE_METADATA: return dir ? 0 : FOPEN_DIRECT_IO;
	case FS_CACHE_ALWAYS: return dir ? FOPEN_KEEP_CACHE | FOPEN_CACHE_DIR : FOPEN_KEEP_CACHE;
	default: return 0;
	}
}

void fs_op_open(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a)
{
	const struct fuse_open_in *in = fs_take(a, sizeof(*in));
	bool dir = r->in.opcode == FUSE_OPENDIR;
	struct fuse_open_out out = { .open_flags = fopen_flags(fs, dir) };
	int flags = O_RDONLY | O_DIRECTORY, err;

	if (!in)
		return fs_reply_err(r, -EINVAL);
	if (n->type != (dir ? S_IFDIR : S_IFREG))
		return fs_reply_err(r, dir ? -ENOTDIR : n->type == S_IFDIR ? -EISDIR : -EACCES);
	if (!dir && (err = open_flags(fs, in->flags, &flags)) < 0)
		return fs_reply_err(r, err);
	bool off = fs_cred_fsetid_off(!dir && flags & O_TRUNC && in->open_flags & FUSE_OPEN_KILL_SUIDGID);
	int fd = fs_node_open(fs, n, flags);
	fs_cred_fsetid_on(off);
	if (fd < 0 || (err = fs_file_new(fs, fd, &out.fh)) < 0)
		return fs_reply_err(r, fd < 0 ? fd : err);
	fs_reply(r, 0, &out, sizeof(out));
}

void fs_op_create(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a)
{
	const struct fuse_create_in *in = fs_take(a, sizeof(*in));
	const char *name = fs_take_str(a, NAME_MAX);
	struct {
		struct fuse_entry_out e;
		struct fuse_open_out o;
	} out = { .o.open_flags = fopen_flags(fs, false) };
	int flags, err;

	if (!in || !name || !fs_name_ok(name))
		return fs_reply_err(r, -EINVAL);
	if ((err = open_flags(fs, in->flags, &flags)) < 0)
		return fs_reply_err(r, err);
	bool off = fs_cred_fsetid_off(flags & O_TRUNC && in->open_flags & FUSE_OPEN_KILL_SUIDGID);
	int fd = fs_open_beneath(n->fd, name, flags | O_CREAT, in->mode & 07777);
	err = -errno;
	fs_cred_fsetid_on(off);
	if (fd < 0)
		return fs_reply_err(r, err);
	if ((err = fs_node_lookup(fs, n, name, &out.e)) < 0) {
		close(fd);
		return fs_reply_err(r, err);
	}
	if ((err = fs_file_new(fs, fd, &out.o.fh)) < 0) {
		fs_node_forget(fs, out.e.nodeid, 1);
		return fs_reply_err(r, err);
	}
	fs_reply(r, 0, &out, sizeof(out));
}

void fs_op_release(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a)
{
	const struct fuse_release_in *in = fs_take(a, sizeof(*in));

	fs_reply_err(r, !in ? -EINVAL : fs_file_release(fs, in->fh));
}

/* Our locks belong to the open file (OFD locks) and go with RELEASE: nothing to do at a close. */
void fs_op_flush(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a)
{
	const struct fuse_flush_in *in = fs_take(a, sizeof(*in));
	struct fs_file *f = in ? file_of(fs, r, in->fh) : NULL;

	if (!in)
		return fs_reply_err(r, -EINVAL);
	if (f) {
		fs_file_put(fs, f);
		fs_reply_err(r, 0);
	}
}

void fs_op_fsync(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a)
{
	const struct fuse_fsync_in *in = fs_take(a, sizeof(*in));
	struct fs_file *f = in ? file_of(fs, r, in->fh) : NULL;

	if (!in)
		return fs_reply_err(r, -EINVAL);
	if (!f)
		return;
	int ret = in->fsync_flags & 1 ? fdatasync(f->fd) : fsync(f->fd);
	fs_reply_err(r, ret < 0 ? -errno : 0);
	fs_file_put(fs, f);
}

/* ---- data ---------------------------------------------------------------------------------- */

/*
 * preadv or pwritev of len bytes at off between fd and the bytes [at, at + len) of
 * the iovecs, until done, the end of the file, or an error; bytes moved or -errno.
 */
static ssize_t move_data(struct fs_req *r, int fd, bool write, const struct iovec *iov, unsigned n, size_t at,
			 size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		int cnt = vu_iov_slice(iov, n, at + done, len - done, r->data, FS_MAX_IOV);
		if (cnt < 0)
			return done ? (ssize_t)done : -EINVAL;
		ssize_t got = write ? pwritev(fd, r->data, cnt, off + (off_t)done) : preadv(fd, r->data, cnt, off + (off_t)done);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return done ? (ssize_t)done : -errno;
		if (got == 0)
			break;
		done += (size_t)got;
	}
	return (ssize_t)done;
}

void fs_op_read(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a)
{
	const struct fuse_read_in *in = fs_take(a, sizeof(*in));
	size_t room;
	const struct iovec *w = wbuf(r, &room);

	if (!in || in->offset > INT64_MAX || room < sizeof(struct fuse_out_header))
		return fs_reply_err(r, -EINVAL);
	struct fs_file *f = file_of(fs, r, in->fh);
	if (!f)
		return;
	size_t len = in->size < FS_MAX_WRITE ? in->size : FS_MAX_WRITE;
	if (len > room - sizeof(struct fuse_out_header))
		len = room - sizeof(struct fuse_out_header);
	ssize_t got = move_data(r, f->fd, false, w, r->vr.in, sizeof(struct fuse_out_header), len, (off_t)in->offset);
	fs_file_put(fs, f);
	if (got < 0)
		return fs_reply_err(r, (int)got);
	reply_in_place(r, (size_t)got);
}

void fs_op_write(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a)
{
	const struct fuse_write_in *in = fs_take(a, sizeof(*in));
	const size_t at = sizeof(struct fuse_in_header) + sizeof(*in); /* where the data starts */

	if (!in || in->offset > INT64_MAX || in->size > FS_MAX_WRITE || r->in_bytes < at ||
	    in->size > r->in_bytes - at)
		return fs_reply_err(r, -EINVAL);
	struct fs_file *f = file_of(fs, r, in->fh);
	if (!f)
		return;
	bool off = fs_cred_fsetid_off(in->write_flags & FUSE_WRITE_KILL_SUIDGID);
	ssize_t got = move_data(r, f->fd, true, r->iov, r->vr.out, at, in->size, (off_t)in->offset);
	fs_cred_fsetid_on(off);
	fs_file_put(fs, f);
	if (got < 0)
		return fs_reply_err(r, (int)got);
	struct fuse_write_out out = { .size = (uint32_t)got };
	fs_reply(r, 0, &out, sizeof(out));
}

/* ---- directories ----------------------------------------------------------------------------- */

/* What getdents64 fills in. */
struct kdirent {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/*
 * One entry into the reply at *used, if it fits (a READDIRPLUS entry is looked up:
 * that counts as a LOOKUP, so it is only done once the entry is known to fit).
 * false: the reply is full.
 */
static bool put_entry(struct fs *fs, struct fs_req *r, struct fs_node *dir, bool plus, const struct kdirent *d,
		      size_t *used, size_t size)
{
	size_t namelen = strnlen(d->d_name, NAME_MAX + 1);
	uint64_t buf[(sizeof(struct fuse_entry_out) + FUSE_NAME_OFFSET + NAME_MAX + 8) / 8] = { 0 };
	struct fuse_entry_out *e = (struct fuse_entry_out *)buf;
	struct fuse_dirent *de = (struct fuse_dirent *)((uint8_t *)buf + (plus ? sizeof(*e) : 0));

	if (namelen > NAME_MAX)
		return true; /* not a name we could have: skip it */
	size_t rec = plus ? FUSE_REC_ALIGN(sizeof(*e) + FUSE_NAME_OFFSET + namelen) :
			    FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + namelen);
	if (*used + rec > size)
		return false;
	*de = (struct fuse_dirent){ .ino = d->d_ino, .off = (uint64_t)d->d_off, .namelen = (uint32_t)namelen,
				    .type = d->d_type };
	memcpy(de->name, d->d_name, namelen);
	/* "." and "..", and a name gone meanwhile, go without a node: the kernel looks them up itself. */
	if (plus && fs_name_ok(d->d_name) && fs_node_lookup(fs, dir, d->d_name, e) < 0)
		memset(e, 0, sizeof(*e));
	vu_iov_from_buf(r->iov + r->vr.out, r->vr.in, sizeof(struct fuse_out_header) + *used, buf, rec);
	*used += rec;
	return true;
}

void fs_op_readdir(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a)
{
	const struct fuse_read_in *in = fs_take(a, sizeof(*in));
	bool plus = r->in.opcode == FUSE_READDIRPLUS;
	size_t room, used = 0;

	wbuf(r, &room);
	if (!in || in->offset > INT64_MAX || room < sizeof(struct fuse_out_header))
		return fs_reply_err(r, -EINVAL);
	struct fs_file *f = file_of(fs, r, in->fh);
	if (!f)
		return;
	size_t size = in->size < room - sizeof(struct fuse_out_header) ? in->size : room - sizeof(struct fuse_out_header);
	pthread_mutex_lock(&f->lock);
	/* The offsets are the directory's own cookies (d_off): each READDIR starts where it says. */
	long got = lseek(f->fd, (off_t)in->offset, SEEK_SET) < 0 ? -1 :
		   syscall(SYS_getdents64, f->fd, r->reply, size < FS_REPLY_MAX ? size : FS_REPLY_MAX);
	int err = got < 0 ? -errno : 0;
	for (long pos = 0; pos < got;) {
		const struct kdirent *d = (const struct kdirent *)(r->reply + pos);
		if (!put_entry(fs, r, n, plus, d, &used, size))
			break;
		pos += d->d_reclen;
	}
	pthread_mutex_unlock(&f->lock);
	fs_file_put(fs, f);
	if (err && !used)
		return fs_reply_err(r, err);
	reply_in_place(r, used);
}

/* ---- locks ------------------------------------------------------------------------------------ */

/*
 * POSIX locks as open file description locks on the FUSE file's own fd: guest
 * processes that opened the file apart conflict as they would on one host. A
 * SETLKW that would block is not waited for here: the request is tried again
 * (r->again) from the loop's timer, so no worker and no loop ever sleeps on a lock.
 */
void fs_op_lk(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a)
{
	const struct fuse_lk_in *in = fs_take(a, sizeof(*in));
	bool wait = r->in.opcode == FUSE_SETLKW, get = r->in.opcode == FUSE_GETLK;

	if (!in || (in->lk.type != F_RDLCK && in->lk.type != F_WRLCK && in->lk.type != F_UNLCK) ||
	    in->lk.start > in->lk.end || in->lk.end > INT64_MAX)
		return fs_reply_err(r, -EINVAL);
	struct fs_file *f = file_of(fs, r, in->fh);
	if (!f)
		return;
	int ret;
	if (in->lk_flags & FUSE_LK_FLOCK) {
		int op = in->lk.type == F_RDLCK ? LOCK_SH : in->lk.type == F_WRLCK ? LOCK_EX : LOCK_UN;
		ret = get ? (errno = EINVAL, -1) : flock(f->fd, op | LOCK_NB);
	} else {
		struct flock fl = { .l_type = (short)in->lk.type, .l_whence = SEEK_SET, .l_start = (off_t)in->lk.start,
				    .l_len = in->lk.end == INT64_MAX ? 0 : (off_t)(in->lk.end - in->lk.start + 1) };
		ret = fcntl(f->fd, get ? F_OFD_GETLK : F_OFD_SETLK, &fl);
		if (get && ret == 0) {
			struct fuse_lk_out out = { .lk = { .type = (uint32_t)fl.l_type } };
			if (fl.l_type != F_UNLCK) {
				out.lk.start = (uint64_t)fl.l_start;
				out.lk.end = fl.l_len ? (uint64_t)(fl.l_start + fl.l_len - 1) : INT64_MAX;
			}
			fs_file_put(fs, f);
			return fs_reply(r, 0, &out, sizeof(out));
		}
	}
	int err = ret < 0 ? -errno : 0;
	fs_file_put(fs, f);
	if (wait && (err == -EAGAIN || err == -EWOULDBLOCK || err == -EACCES))
		r->again = true;
	else
		fs_reply_err(r, err);
}

/* ---- the rest on open files --------------------------------------------------------------------- */

void fs_op_fallocate(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a)
{
	const struct fuse_fallocate_in *in = fs_take(a, sizeof(*in));

	if (!in || in->offset > INT64_MAX || in->length > INT64_MAX)
		return fs_reply_err(r, -EINVAL);
	struct fs_file *f = file_of(fs, r, in->fh);
	if (!f)
		return;
	int ret = fallocate(f->fd, (int)in->mode, (off_t)in->offset, (off_t)in->length);
	fs_reply_err(r, ret < 0 ? -errno : 0);
	fs_file_put(fs, f);
}

void fs_op_lseek(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a)
{
	const struct fuse_lseek_in *in = fs_take(a, sizeof(*in));

	if (!in || in->offset > INT64_MAX || (in->whence != SEEK_DATA && in->whence != SEEK_HOLE))
		return fs_reply_err(r, -EINVAL); /* the kernel answers the others itself */
	struct fs_file *f = file_of(fs, r, in->fh);
	if (!f)
		return;
	/* SEEK_DATA and SEEK_HOLE give an absolute offset: the position shared with READDIR is not used. */
	off_t off = lseek(f->fd, (off_t)in->offset, (int)in->whence);
	int err = off < 0 ? -errno : 0;
	fs_file_put(fs, f);
	struct fuse_lseek_out out = { .offset = (uint64_t)off };
	fs_reply(r, err, &out, sizeof(out));
}

void fs_op_copy_file_range(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a)
{
	const struct fuse_copy_file_range_in *in = fs_take(a, sizeof(*in));

	if (!in || in->flags || in->off_in > INT64_MAX || in->off_out > INT64_MAX)
		return fs_reply_err(r, -EINVAL);
	struct fs_file *from = file_of(fs, r, in->fh_in);
	struct fs_file *to = from ? file_of(fs, r, in->fh_out) : NULL;
	if (!to) {
		if (from)
			fs_file_put(fs, from);
		return;
	}
	loff_t off_in = (loff_t)in->off_in, off_out = (loff_t)in->off_out;
	ssize_t got = copy_file_range(from->fd, &off_in, to->fd, &off_out, in->len < COPY_MAX ? in->len : COPY_MAX, 0);
	int err = got < 0 ? -errno : 0;
	fs_file_put(fs, from);
	fs_file_put(fs, to);
	struct fuse_write_out out = { .size = got < 0 ? 0 : (uint32_t)got };
	fs_reply(r, err, &out, sizeof(out));
}

/* ---- xattrs ------------------------------------------------------------------------------------- */

/*
 * On the inode reopened for reading (fs_node_open: regular files and directories;
 * the xattrs of symlinks and special files are not served). For user.* attributes
 * the kernel asks read permission to get them too; setting one on a file its owner
 * may write but not read is refused here where the kernel would allow it.
 */
void fs_op_xattr(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a)
{
	uint32_t op = r->in.opcode;
	const struct fuse_getxattr_in *get = NULL;
	const struct fuse_setxattr_in *set = NULL;
	const char *name = NULL;
	const void *value = NULL;
	ssize_t ret;

	if (!fs->xattr)
		return fs_reply_err(r, -ENOSYS); /* the kernel stops asking */
	if (op == FUSE_SETXATTR)
		set = fs_take(a, FUSE_COMPAT_SETXATTR_IN_SIZE); /* without FUSE_SETXATTR_EXT: the 8-byte form */
	else if (op == FUSE_GETXATTR || op == FUSE_LISTXATTR)
		get = fs_take(a, sizeof(*get));
	if (op != FUSE_LISTXATTR)
		name = fs_take_str(a, XATTR_NAME_MAX);
	if (set && set->size <= XATTR_SIZE_MAX)
		value = fs_take(a, set->size);
	if ((op == FUSE_SETXATTR && !value) || (op == FUSE_GETXATTR && !get) || (op == FUSE_LISTXATTR && !get) ||
	    (op != FUSE_LISTXATTR && (!name || !*name)))
		return fs_reply_err(r, op == FUSE_SETXATTR && set && set->size > XATTR_SIZE_MAX ? -E2BIG : -EINVAL);
	if (n->type != S_IFREG && n->type != S_IFDIR)
		return fs_reply_err(r, -EOPNOTSUPP);
	int fd = fs_node_open(fs, n, O_RDONLY | O_NONBLOCK);
	if (fd < 0)
		return fs_reply_err(r, fd);
	size_t size = get ? (get->size < FS_REPLY_MAX ? get->size : FS_REPLY_MAX) : 0;
	switch (op) {
	case FUSE_SETXATTR: ret = fsetxattr(fd, name, value, set->size, (int)set->flags); break;
	case FUSE_REMOVEXATTR: ret = fremovexattr(fd, name); break;
	case FUSE_GETXATTR: ret = fgetxattr(fd, name, size ? r->reply : NULL, size); break;
	default: ret = flistxattr(fd, size ? (char *)r->reply : NULL, size); break;
	}
	int err = ret < 0 ? -errno : 0;
	close(fd);
	if (err)
		return fs_reply_err(r, err);
	if (!get)
		return fs_reply_err(r, 0);
	if (!get->size) {
		struct fuse_getxattr_out out = { .size = (uint32_t)ret };
		return fs_reply(r, 0, &out, sizeof(out));
	}
	fs_reply(r, 0, r->reply, (size_t)ret);
}
