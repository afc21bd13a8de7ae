/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h> /* FALLOC_FL_*: musl's fcntl.h has no such flags */
#include <liburing.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dev/blk-io.h"
#include "proto/log.h"
#include "proto/loop.h"

int blk_image_lock(struct blk_image *img)
{
	struct flock lock = { .l_type = img->read_only ? F_RDLCK : F_WRLCK, .l_whence = SEEK_SET };

	if (fcntl(img->fd, F_OFD_SETLK, &lock) == 0)
		return 0;
	return errno == EACCES || errno == EAGAIN ? -EAGAIN : -errno;
}

void blk_image_unlock(struct blk_image *img)
{
	struct flock lock = { .l_type = F_UNLCK, .l_whence = SEEK_SET };

	if (fcntl(img->fd, F_OFD_SETLK, &lock) < 0)
		vu_warn("cannot unlock the image: %s", strerror(errno));
}

bool blk_image_lock_busy(struct blk_image *img)
{
	struct flock lock = { .l_type = img->read_only ? F_RDLCK : F_WRLCK, .l_whence = SEEK_SET };

	return fcntl(img->fd, F_OFD_GETLK, &lock) == 0 && lock.l_type != F_UNLCK;
}

int blk_image_extent(struct blk_image *img, uint64_t off, uint64_t len, bool *allocated, uint64_t *same)
{
	*allocated = true;
	*same = len;
	if (img->block_device)
		return 0;
	/* A hole starts at or after off; a data extent at or after the hole. */
	off_t hole = lseek(img->fd, off, SEEK_HOLE);
	if (hole < 0)
		return -errno;
	if ((uint64_t)hole == off) {
		*allocated = false;
		off_t data = lseek(img->fd, off, SEEK_DATA);
		if (data < 0 && errno != ENXIO)
			return -errno;
		hole = data < 0 ? (off_t)img->size : data; /* ENXIO: a hole up to the end */
	}
	if ((uint64_t)hole - off < len)
		*same = hole - off;
	return 0;
}

int blk_image_open(struct blk_image *img, const char *path, bool read_only, bool direct,
		   unsigned block_size, bool lock)
{
	struct stat st;
	int flags = (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | (direct ? O_DIRECT : 0);

	img->read_only = read_only;
	img->fd = open(path, flags);
	if (img->fd < 0) {
		vu_err("cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	int r = lock ? blk_image_lock(img) : 0;
	if (r < 0) {
		vu_err("%s is in use by another process (lock: %s)", path, strerror(-r));
		goto fail;
	}
	if (fstat(img->fd, &st) < 0)
		goto fail_errno;
	img->block_device = S_ISBLK(st.st_mode);
	if (img->block_device) {
		if (ioctl(img->fd, BLKGETSIZE64, &img->size) < 0)
			goto fail_errno;
	} else if (S_ISREG(st.st_mode)) {
		img->size = st.st_size;
	} else {
		vu_err("%s is neither a regular file nor a block device", path);
		goto fail;
	}
	if (img->size == 0 || img->size % block_size) {
		vu_err("%s: size %llu is not a non-zero multiple of the block size %u", path,
		       (unsigned long long)img->size, block_size);
		goto fail;
	}
	return 0;
fail_errno:
	vu_err("%s: %s", path, strerror(errno));
fail:
	close(img->fd);
	img->fd = -1;
	return -1;
}

void blk_image_close(struct blk_image *img)
{
	if (img->fd >= 0)
		close(img->fd);
	img->fd = -1;
}

struct blk_io {
	struct io_uring ring;
	int efd;
	struct vu_loop *loop;
	blk_io_done_fn done;
	blk_io_batch_fn batch_end;
	void *opaque;
};

static void reap(struct blk_io *io)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;

	io_uring_for_each_cqe(&io->ring, head, cqe) {
		io->done(io->opaque, io_uring_cqe_get_data(cqe), cqe->res);
		n++;
	}
	io_uring_cq_advance(&io->ring, n);
	if (n)
		io->batch_end(io->opaque);
}

static void on_completion(void *opaque, int fd, uint32_t events)
{
	struct blk_io *io = opaque;
	uint64_t count;

	if (read(fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		vu_warn("io_uring eventfd read failed");
	reap(io);
}

/*
 * The ring's operations are what blk_io_* submit, nothing else (io_uring
 * register restrictions): io_uring does its work outside seccomp's view, so a
 * confined process must not be able to open files or sockets through it.
 */
static int restrict_ring(struct io_uring *ring)
{
	static const uint8_t ops[] = { IORING_OP_READV, IORING_OP_WRITEV, IORING_OP_FSYNC, IORING_OP_FALLOCATE };
	struct io_uring_restriction res[sizeof(ops)];

	memset(res, 0, sizeof(res));
	for (unsigned i = 0; i < sizeof(ops); i++) {
		res[i].opcode = IORING_RESTRICTION_SQE_OP;
		res[i].sqe_op = ops[i];
	}
	/* The system call itself: Debian's liburing 2.3 declares these helpers but does not export them. */
	if (syscall(__NR_io_uring_register, ring->ring_fd, IORING_REGISTER_RESTRICTIONS, res, sizeof(ops)) < 0 ||
	    syscall(__NR_io_uring_register, ring->ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0) < 0)
		return -errno;
	return 0;
}

struct blk_io *blk_io_new(struct vu_loop *loop, unsigned depth, blk_io_done_fn done,
			  blk_io_batch_fn batch_end, void *opaque)
{
	struct blk_io *io = calloc(1, sizeof(*io));
	int r;

	if (!io)
		return NULL;
	*io = (struct blk_io){ .loop = loop, .done = done, .batch_end = batch_end, .opaque = opaque,
			      .efd = -1 };
	r = io_uring_queue_init(depth, &io->ring, IORING_SETUP_R_DISABLED);
	if (r < 0) {
		vu_err("io_uring: %s", strerror(-r));
		free(io);
		return NULL;
	}
	io->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (io->efd < 0 || io_uring_register_eventfd(&io->ring, io->efd) < 0) {
		vu_err("cannot watch io_uring completions");
		blk_io_free(io);
		return NULL;
	}
	r = restrict_ring(&io->ring);
	if (r < 0) {
		vu_err("io_uring: cannot restrict the ring to reads, writes, syncs and fallocate: %s", strerror(-r));
		blk_io_free(io);
		return NULL;
	}
	if (vu_loop_watch(loop, io->efd, EPOLLIN, on_completion, io) < 0) {
		vu_err("cannot watch io_uring completions");
		blk_io_free(io);
		return NULL;
	}
	return io;
}

void blk_io_free(struct blk_io *io)
{
	if (!io)
		return;
	if (io->efd >= 0) {
		vu_loop_unwatch(io->loop, io->efd);
		close(io->efd);
	}
	io_uring_queue_exit(&io->ring);
	free(io);
}

/* A free submission slot; submits what is queued when the ring is full. */
static struct io_uring_sqe *sqe_for(struct blk_io *io)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&io->ring);

	if (!sqe) {
		io_uring_submit(&io->ring);
		sqe = io_uring_get_sqe(&io->ring);
	}
	return sqe;
}

int blk_io_readv(struct blk_io *io, int fd, const struct iovec *iov, unsigned n, uint64_t off, void *op)
{
	struct io_uring_sqe *sqe = sqe_for(io);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_readv(sqe, fd, iov, n, off);
	io_uring_sqe_set_data(sqe, op);
	return 0;
}

int blk_io_writev(struct blk_io *io, int fd, const struct iovec *iov, unsigned n, uint64_t off,
		  bool dsync, void *op)
{
	struct io_uring_sqe *sqe = sqe_for(io);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_writev(sqe, fd, iov, n, off);
	if (dsync)
		sqe->rw_flags = RWF_DSYNC;
	io_uring_sqe_set_data(sqe, op);
	return 0;
}

int blk_io_fdatasync(struct blk_io *io, int fd, void *op)
{
	struct io_uring_sqe *sqe = sqe_for(io);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
	io_uring_sqe_set_data(sqe, op);
	return 0;
}

int blk_io_zero(struct blk_io *io, struct blk_image *img, enum blk_zero how, uint64_t off, uint64_t len,
		void *op)
{
	if (img->block_device) {
		/* No io_uring operation for these on a block device: the ioctls are quick. */
		uint64_t range[2] = { off, len };
		return ioctl(img->fd, how == BLK_DISCARD ? BLKDISCARD : BLKZEROOUT, range) < 0 ? -errno : 1;
	}
	struct io_uring_sqe *sqe = sqe_for(io);
	if (!sqe)
		return -EBUSY;
	int mode = (how == BLK_ZERO ? FALLOC_FL_ZERO_RANGE : FALLOC_FL_PUNCH_HOLE) | FALLOC_FL_KEEP_SIZE;
	io_uring_prep_fallocate(sqe, img->fd, mode, off, len);
	io_uring_sqe_set_data(sqe, op);
	return 0;
}

void blk_io_submit(struct blk_io *io)
{
	int r = io_uring_submit(&io->ring);
	if (r < 0)
		vu_warn("io_uring submit: %s", strerror(-r));
}

void blk_io_wait(struct blk_io *io)
{
	struct io_uring_cqe *cqe;

	io_uring_submit_and_wait(&io->ring, 1);
	if (io_uring_peek_cqe(&io->ring, &cqe) == 0)
		reap(io);
}
