/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A disk image and its asynchronous I/O, shared by the disk back-ends (blk,
 * scsi): io_uring submissions straight between the image and guest memory,
 * completions read on the shared loop through an eventfd. No thread, no copy.
 */
#ifndef VU_BLK_IO_H
#define VU_BLK_IO_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

struct vu_loop;

struct blk_image {
	int fd;
	bool block_device;
	bool read_only;
	uint64_t size;      /* bytes */
};

/*
 * Opens the image, and locks it (blk_image_lock) when lock is set; prints why and
 * returns -1 on failure.
 */
int blk_image_open(struct blk_image *img, const char *path, bool read_only, bool direct,
		   unsigned block_size, bool lock);
void blk_image_close(struct blk_image *img);
/*
 * The image's lock, an OFD lock on the whole file: shared when read-only, else
 * exclusive, so no two back-ends write one image and nobody writes what one reads.
 * 0, -EAGAIN when another open file holds a conflicting lock, or another -errno.
 */
int blk_image_lock(struct blk_image *img);
void blk_image_unlock(struct blk_image *img);
/* Whether another open file holds a lock that keeps us from taking ours now. */
bool blk_image_lock_busy(struct blk_image *img);
/*
 * Whether the bytes at off are allocated (false: a hole, reading as zeros), and
 * how many bytes from off, at most len, are the same; a block device is all
 * allocated. 0 or -errno.
 */
int blk_image_extent(struct blk_image *img, uint64_t off, uint64_t len, bool *allocated, uint64_t *same);

/*
 * done() runs for every completed operation with its result (bytes, or -errno);
 * batch_end() after each batch of completions, to publish them together.
 */
typedef void (*blk_io_done_fn)(void *opaque, void *op, int result);
typedef void (*blk_io_batch_fn)(void *opaque);

struct blk_io;
struct blk_io *blk_io_new(struct vu_loop *loop, unsigned depth, blk_io_done_fn done,
			  blk_io_batch_fn batch_end, void *opaque);
void blk_io_free(struct blk_io *io);

/* Queue operations; they start at blk_io_submit(). op comes back in done(). */
int blk_io_readv(struct blk_io *io, int fd, const struct iovec *iov, unsigned n, uint64_t off, void *op);
int blk_io_writev(struct blk_io *io, int fd, const struct iovec *iov, unsigned n, uint64_t off,
		  bool dsync, void *op);
int blk_io_fdatasync(struct blk_io *io, int fd, void *op);
/* How blk_io_zero clears a range. */
enum blk_zero {
	BLK_ZERO,         /* zeros, the space kept allocated */
	BLK_ZERO_UNMAP,   /* zeros, the space may be deallocated */
	BLK_DISCARD,      /* deallocated; what it reads back as is the medium's business */
};
/*
 * Clears [off, off + len) of img. A block device takes its ioctl at once
 * (returns 1: done); on a file a fallocate is queued (0: done() brings its
 * result, 0 on success) that punches a hole where unmapping is allowed, a hole
 * reading back as zeros. -errno when it failed or could not be queued.
 */
int blk_io_zero(struct blk_io *io, struct blk_image *img, enum blk_zero how, uint64_t off, uint64_t len,
		void *op);
void blk_io_submit(struct blk_io *io);
/* Waits for at least one completion and delivers all that are ready. */
void blk_io_wait(struct blk_io *io);

#endif
