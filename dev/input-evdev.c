/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <libevdev/libevdev.h>
#include <string.h>
#include <unistd.h>

#include "dev/input-evdev.h"
#include "proto/log.h"
#include "proto/loop.h"

#define RETRY_NS 250000000ull    /* how often a device that went away is looked for */

/* Opens and checks the node; returns the new libevdev handle or NULL (errno-style reason in *why). */
static struct libevdev *open_node(struct input_evdev *e, int *fd_out, int *why)
{
	struct libevdev *dev = NULL;
	/* Read-write for LEDs; a node we may only read still gives events. */
	int fd = open(e->path, O_RDWR | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0 && (errno == EACCES || errno == EPERM || errno == EROFS))
		fd = open(e->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		*why = errno;
		return NULL;
	}
	int r = libevdev_new_from_fd(fd, &dev);
	if (r < 0) {
		*why = r == -ENOTTY || r == -EINVAL ? ENOTTY : -r;
		close(fd);
		return NULL;
	}
	if (e->grab && (r = libevdev_grab(dev, LIBEVDEV_GRAB)) < 0) {
		*why = -r;
		libevdev_free(dev);
		close(fd);
		return NULL;
	}
	*fd_out = fd;
	return dev;
}

int input_evdev_open(struct input_evdev *e)
{
	int why = 0;

	e->fd = -1;
	e->dev = open_node(e, &e->fd, &why);
	if (e->dev)
		return 0;
	if (why == ENOTTY)
		vu_err("%s is not an evdev input device", e->path);
	else if (why == EBUSY)
		vu_err("cannot grab %s: another program holds it (--no-grab shares the device)", e->path);
	else
		vu_err("cannot open %s: %s", e->path, strerror(why));
	return -1;
}

static void on_readable(void *opaque, int fd, uint32_t events);

static void lose(struct input_evdev *e, const char *why)
{
	vu_loop_unwatch(e->loop, e->fd);
	close(e->fd);
	e->fd = -1;
	e->ops->gone(e->opaque);
	if (!e->reconnect) {
		vu_err("input device %s is gone (%s); --reconnect-device waits for it instead", e->path, why);
		vu_loop_fail(e->loop);
		return;
	}
	vu_warn("input device %s is gone (%s): waiting for it to come back", e->path, why);
	vu_timer_arm(e->retry, RETRY_NS, RETRY_NS);
}

static void on_retry(void *opaque)
{
	struct input_evdev *e = opaque;
	int why, fd;
	struct libevdev *dev = open_node(e, &fd, &why);

	if (!dev)
		return; /* not back yet (or not usable yet): try again later */
	if (vu_loop_watch(e->loop, fd, EPOLLIN, on_readable, e) < 0) {
		libevdev_free(dev);
		close(fd);
		return;
	}
	vu_timer_disarm(e->retry);
	libevdev_free(e->dev);
	e->dev = dev;
	e->fd = fd;
	vu_info("input device %s is back: \"%s\"", e->path, libevdev_get_name(dev));
}

static void on_readable(void *opaque, int fd, uint32_t events)
{
	struct input_evdev *e = opaque;
	unsigned flags = LIBEVDEV_READ_FLAG_NORMAL;
	struct input_event ev;
	int r;

	/* Drain what is there; a closed or removed node reports an error after its data. */
	for (;;) {
		r = libevdev_next_event(e->dev, flags, &ev);
		if (r == -EAGAIN && flags == LIBEVDEV_READ_FLAG_SYNC) {
			flags = LIBEVDEV_READ_FLAG_NORMAL; /* caught up after SYN_DROPPED */
			continue;
		}
		if (r < 0)
			break;
		/*
		 * SYN_DROPPED is handed on (the consumer forgets its partial frame); then
		 * libevdev gives the state changes that were lost, ending with SYN_REPORT.
		 */
		if (r == LIBEVDEV_READ_STATUS_SYNC)
			flags = LIBEVDEV_READ_FLAG_SYNC;
		e->ops->event(e->opaque, ev.type, ev.code, ev.value);
	}
	if (r != -EAGAIN)
		lose(e, strerror(-r));
	else if (events & (EPOLLHUP | EPOLLERR))
		lose(e, "hang-up");
}

int input_evdev_start(struct input_evdev *e, struct vu_loop *loop, const struct input_evdev_ops *ops,
		      void *opaque)
{
	e->loop = loop;
	e->ops = ops;
	e->opaque = opaque;
	e->retry = vu_timer_new(loop, on_retry, e);
	if (!e->retry || vu_loop_watch(loop, e->fd, EPOLLIN, on_readable, e) < 0) {
		vu_err("cannot watch %s", e->path);
		return -1;
	}
	return 0;
}

void input_evdev_write(struct input_evdev *e, uint16_t type, uint16_t code, int32_t value)
{
	struct input_event ev[2] = {
		{ .type = type, .code = code, .value = value },
		{ .type = EV_SYN, .code = SYN_REPORT },
	};

	if (e->fd >= 0 && write(e->fd, ev, sizeof(ev)) != sizeof(ev))
		vu_debug("%s: writing an event back failed: %s", e->path, strerror(errno));
}

void input_evdev_close(struct input_evdev *e)
{
	if (e->retry)
		vu_timer_free(e->retry);
	if (e->fd >= 0) {
		if (e->loop)
			vu_loop_unwatch(e->loop, e->fd);
		close(e->fd);
	}
	libevdev_free(e->dev);
	*e = (struct input_evdev){ .fd = -1 };
}
