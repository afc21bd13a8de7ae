/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The disk devices' image lock (blk: its image; scsi: every LUN's), with its two
 * modes: --lock=open holds it from start-up to exit; --lock=start takes it when the
 * front-end starts the device (a queue's first kick) and releases it when the
 * front-end has stopped every queue that took it, so that a live migration's
 * destination on the same images gets it at the switch-over. A started queue
 * finding the images locked by another process tries again every 20 ms, on its
 * own loop, up to --lock-wait seconds, then fails.
 */
#ifndef VU_DISK_LOCK_H
#define VU_DISK_LOCK_H

#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dev/blk-io.h"
#include "proto/device.h"

enum disk_lock_mode { DISK_LOCK_OPEN, DISK_LOCK_START };

#define DISK_LOCK_MAX_IMAGES 64

struct disk_lock_image {
	struct blk_image *img;
	const char *path;
};

/* A device's lock over its images. */
struct disk_lock {
	unsigned mode;               /* --lock */
	unsigned wait;               /* --lock-wait, seconds */
	unsigned nimages;
	struct disk_lock_image images[DISK_LOCK_MAX_IMAGES];
	pthread_mutex_t mu;          /* holders, between queue threads */
	unsigned holders;            /* --lock=start: started queues the images are locked for (0: unlocked) */
};

/* One queue's share, used on the queue's loop (and by queue_stop, rings paused). */
struct disk_lock_queue {
	struct disk_lock *lock;
	struct vu_dev *dev;
	struct vu_vring *vq;         /* while it waits */
	struct vu_timer *retry;      /* --lock=start: tries again while it waits */
	bool holds;                  /* started, and the images are locked for it */
	bool waiting;                /* started, waiting for another process to unlock them */
	int64_t wait_since;          /* ms, CLOCK_MONOTONIC */
};

extern const struct vu_choice disk_lock_modes[];

/* The --lock and --lock-wait entries of an option table; off: where the struct disk_lock is. */
#define DISK_LOCK_OPTIONS(off) \
	{ .name = "lock", .kind = VU_OPT_ENUM, .offset = (off) + offsetof(struct disk_lock, mode), .arg = "WHEN", \
	  .help = "when the image is locked against other back-ends: open (start-up to exit) or start " \
		  "(while the front-end runs the device: for live migration)", .choices = disk_lock_modes }, \
	{ .name = "lock-wait", .kind = VU_OPT_UINT, .offset = (off) + offsetof(struct disk_lock, wait), \
	  .arg = "SECONDS", .help = "--lock=start: how long a started device waits for the lock before its queues fail", \
	  .min = 1, .max = 3600, .unit = "seconds" }

/* The system calls taking and releasing the lock after start-up, for a device's allowlist. */
#define DISK_LOCK_SYSCALLS VU_SYSCALL_IF(fcntl, 1, F_OFD_SETLK), VU_SYSCALL_IF(fcntl, 1, F_OFD_GETLK)

/* The defaults (--lock=open, --lock-wait=30), before the options are parsed. */
void disk_lock_init(struct disk_lock *l);
void disk_lock_destroy(struct disk_lock *l);
/*
 * Opens one image of the set (blk_image_open), locked now with --lock=open; with
 * --lock=start, says so when another process holds it already. -1 on failure.
 */
int disk_lock_open(struct disk_lock *l, struct blk_image *img, const char *path, bool read_only, bool direct,
		   unsigned block_size);
/* A queue's share, its retry timer on the queue's loop; -1 when that cannot be made. */
int disk_lock_queue_init(struct disk_lock *l, struct disk_lock_queue *q, struct vu_dev *dev,
			 struct vu_loop *loop);
void disk_lock_queue_free(struct disk_lock_queue *q);
/*
 * At the start of a kick of vq: true when the queue may touch the images. False
 * when it waits for them (the device's kick runs again when they may be locked)
 * or vq was failed.
 */
bool disk_lock_kick(struct disk_lock_queue *q, struct vu_vring *vq);
/* The front-end stopped the queue's ring (the device's queue_stop, rings paused). */
void disk_lock_stop(struct disk_lock_queue *q);

#endif
