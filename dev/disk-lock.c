/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "dev/disk-lock.h"
#include "proto/log.h"
#include "proto/loop.h"

#define RETRY_NS 20000000u  /* a started queue waiting for the lock tries this often */

const struct vu_choice disk_lock_modes[] = { { "open", DISK_LOCK_OPEN }, { "start", DISK_LOCK_START }, { NULL } };

void disk_lock_init(struct disk_lock *l)
{
	l->mode = DISK_LOCK_OPEN;
	l->wait = 30;
	pthread_mutex_init(&l->mu, NULL);
}

void disk_lock_destroy(struct disk_lock *l)
{
	pthread_mutex_destroy(&l->mu);
}

static bool same_file(struct blk_image *a, struct blk_image *b)
{
	struct stat sa, sb;

	if (fstat(a->fd, &sa) < 0 || fstat(b->fd, &sb) < 0 || a->block_device != b->block_device)
		return false;
	return a->block_device ? sa.st_rdev == sb.st_rdev : sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int disk_lock_open(struct disk_lock *l, struct blk_image *img, const char *path, bool read_only, bool direct,
		   unsigned block_size)
{
	if (l->nimages == DISK_LOCK_MAX_IMAGES) {
		vu_err("%s: more than %u images", path, DISK_LOCK_MAX_IMAGES);
		return -1;
	}
	if (blk_image_open(img, path, read_only, direct, block_size, l->mode == DISK_LOCK_OPEN) < 0)
		return -1;
	/* What --lock=open's lock refuses at once would keep --lock=start's from ever being taken. */
	for (unsigned i = 0; l->mode == DISK_LOCK_START && i < l->nimages; i++)
		if (same_file(img, l->images[i].img) && !(read_only && l->images[i].img->read_only)) {
			vu_err("%s and %s are one image: served writable, it can be served once", path,
			       l->images[i].path);
			return -1;
		}
	l->images[l->nimages++] = (struct disk_lock_image){ img, path };
	if (l->mode == DISK_LOCK_START && blk_image_lock_busy(img))
		vu_info("%s is locked by another process now: the device takes the lock when the front-end "
			"starts it, waiting up to %u s for it then", path, l->wait);
	return 0;
}

static void retry(void *opaque);

int disk_lock_queue_init(struct disk_lock *l, struct disk_lock_queue *q, struct vu_dev *dev,
			 struct vu_loop *loop)
{
	*q = (struct disk_lock_queue){ .lock = l, .dev = dev };
	if (l->mode == DISK_LOCK_START && !(q->retry = vu_timer_new(loop, retry, q)))
		return -1;
	return 0;
}

void disk_lock_queue_free(struct disk_lock_queue *q)
{
	vu_timer_free(q->retry);
	q->retry = NULL;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Locks every image, or none: 0, or -errno with *busy the image that could not be locked. */
static int lock_all(struct disk_lock *l, unsigned *busy)
{
	for (unsigned i = 0; i < l->nimages; i++) {
		int r = blk_image_lock(l->images[i].img);
		if (r < 0) {
			*busy = i;
			while (i--)
				blk_image_unlock(l->images[i].img);
			return r;
		}
	}
	for (unsigned i = 0; i < l->nimages; i++)
		vu_info("%s: locked (the front-end started the device)", l->images[i].path);
	return 0;
}

/*
 * A started queue needs the images locked before it touches them. True when they
 * are; otherwise the queue waits (its timer tries again) up to --lock-wait
 * seconds, after which the queue fails.
 */
static bool lock_for_queue(struct disk_lock_queue *q)
{
	struct disk_lock *l = q->lock;
	unsigned busy = 0;
	int r = 0;

	pthread_mutex_lock(&l->mu);
	if (!l->holders)
		r = lock_all(l, &busy); /* the first queue to start takes the lock for all */
	if (r == 0) {
		q->holds = true;
		l->holders++;
	}
	pthread_mutex_unlock(&l->mu);
	if (q->holds) {
		if (q->waiting)
			vu_info("queue %u: got the lock after %lld ms", q->vq->index,
				(long long)(now_ms() - q->wait_since));
		q->waiting = false;
		return true;
	}
	const char *path = l->images[busy].path;
	if (r != -EAGAIN) {
		vu_err("%s: cannot lock: %s", path, strerror(-r));
		vu_vring_fail(q->vq, "the image cannot be locked");
		return false;
	}
	int64_t now = now_ms();
	if (!q->waiting) {
		q->waiting = true;
		q->wait_since = now;
		vu_info("queue %u: %s is locked by another process (a migration's source not stopped yet?): "
			"waiting up to %u s", q->vq->index, path, l->wait);
	} else if (now - q->wait_since >= (int64_t)l->wait * 1000) {
		q->waiting = false;
		vu_vring_fail(q->vq, "the image stayed locked by another process (--lock-wait)");
		return false;
	}
	vu_timer_arm(q->retry, RETRY_NS, 0);
	return false;
}

/* A queue waiting for the lock tries again, on its loop, through the device's kick. */
static void retry(void *opaque)
{
	struct disk_lock_queue *q = opaque;

	if (q->waiting && q->vq && !q->vq->broken)
		q->dev->type->kick(q->dev, q->vq);
}

bool disk_lock_kick(struct disk_lock_queue *q, struct vu_vring *vq)
{
	if (q->lock->mode != DISK_LOCK_START || q->holds)
		return true;
	q->vq = vq;
	return lock_for_queue(q);
}

/*
 * The front-end stopped a ring (GET_VRING_BASE: VM stop, a migration's switch-over,
 * guest reset; RESET_DEVICE; the front-end gone), rings paused: the lock goes once
 * no started queue holds it. SET_STATUS(0) changes nothing here: QEMU sends it
 * after stopping the rings, and a ring still running keeps the lock.
 */
void disk_lock_stop(struct disk_lock_queue *q)
{
	struct disk_lock *l = q->lock;

	q->waiting = false;
	if (!q->holds)
		return;
	q->holds = false;
	pthread_mutex_lock(&l->mu);
	if (--l->holders == 0) {
		for (unsigned i = 0; i < l->nimages; i++) {
			blk_image_unlock(l->images[i].img);
			vu_info("%s: unlocked (the front-end stopped every queue)", l->images[i].path);
		}
	}
	pthread_mutex_unlock(&l->mu);
}
