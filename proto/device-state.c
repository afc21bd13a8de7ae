/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include "proto/device-state.h"
#include "proto/log.h"

#define CHECK_WAIT_MS 1000   /* how long CHECK_DEVICE_STATE waits for the rest of a load */

void vu_state_init(struct vu_state_xfer *x)
{
	*x = (struct vu_state_xfer){ .fd = -1, .result = -1 };
}

void vu_state_cancel(struct vu_state_xfer *x)
{
	if (x->fd >= 0) {
		vu_loop_unwatch(x->loop, x->fd);
		close(x->fd);
	}
	free(x->buf);
	vu_state_init(x);
}

/* The transfer is over: the fd goes; a load hands what came to the device. */
static void finish(struct vu_state_xfer *x, bool ok)
{
	vu_loop_unwatch(x->loop, x->fd);
	close(x->fd);
	x->fd = -1;
	if (ok && !x->saving && x->dev->type->state_load(x->dev, x->buf, x->done) < 0)
		ok = false;
	if (!ok) {
		x->result = -1;
		vu_warn("device state %s failed", x->saving ? "save" : "load");
	}
	free(x->buf);
	x->buf = NULL;
}

/* Reads what is there; true when the stream is over (end of file, or an error). */
static bool read_some(struct vu_state_xfer *x, bool *ok)
{
	for (;;) {
		if (x->done == x->cap) {
			size_t cap = x->cap ? 2 * x->cap : 4096;
			uint8_t *buf = cap <= VU_STATE_MAX ? realloc(x->buf, cap) : NULL;
			if (!buf) {
				*ok = false; /* more than any device's state: not one of ours */
				return true;
			}
			x->buf = buf;
			x->cap = cap;
		}
		ssize_t n = read(x->fd, x->buf + x->done, x->cap - x->done);
		if (n > 0) {
			x->done += n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return false;
		*ok = n == 0;
		return true;
	}
}

/* Writes what the pipe takes; true when all is written (or it failed). */
static bool write_some(struct vu_state_xfer *x, bool *ok)
{
	while (x->done < x->len) {
		ssize_t n = write(x->fd, x->buf + x->done, x->len - x->done);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return false;
		if (n <= 0) {
			*ok = false;
			return true;
		}
		x->done += n;
	}
	*ok = true;
	return true;
}

static void on_ready(void *opaque, int fd, uint32_t events)
{
	struct vu_state_xfer *x = opaque;
	bool ok = false;

	if (x->saving ? write_some(x, &ok) : read_some(x, &ok))
		finish(x, ok);
}

const char *vu_state_start(struct vu_state_xfer *x, struct vu_loop *loop, struct vu_dev *dev,
			   uint32_t direction, int fd)
{
	const struct vu_device_type *t = dev->type;

	vu_state_cancel(x);
	x->loop = loop;
	x->dev = dev;
	x->saving = direction == VU_STATE_SAVE;
	const char *why = NULL;
	if (direction != VU_STATE_SAVE && direction != VU_STATE_LOAD)
		why = "unknown device state transfer direction";
	else if (fd < 0 || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
		why = "no usable device state fd";
	else if (x->saving && t->state_save(dev, (void **)&x->buf, &x->len) < 0)
		why = "the device cannot save its state";
	else if (vu_loop_watch(loop, fd, x->saving ? EPOLLOUT : EPOLLIN, on_ready, x) < 0)
		why = "cannot watch the device state fd";
	if (why) {
		if (fd >= 0)
			close(fd);
		vu_state_cancel(x);
		return why;
	}
	x->fd = fd;
	x->result = 0;
	return NULL;
}

int vu_state_check(struct vu_state_xfer *x)
{
	bool ok = false;

	if (x->fd >= 0 && !x->saving) {
		/*
		 * The front-end closed its end before asking, so the rest is in the pipe; a
		 * front-end that did not is not waited for long (the loop stops meanwhile).
		 */
		bool over = read_some(x, &ok);
		while (!over && poll(&(struct pollfd){ .fd = x->fd, .events = POLLIN }, 1, CHECK_WAIT_MS) > 0)
			over = read_some(x, &ok);
		finish(x, over && ok);
	} else if (x->fd >= 0) {
		finish(x, false); /* the front-end says it read everything, but we had not written it */
	}
	int result = x->result;
	x->result = -1; /* the next check needs a new transfer */
	return result;
}
