/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The host side of vhost-user-input: one evdev device opened (and grabbed)
 * through libevdev and watched on the loop. Events are handed on one by one,
 * SYN_DROPPED resynchronised by libevdev; when the device goes away it is
 * either waited for and opened again, or the program ends with status 1.
 */
#ifndef VU_DEV_INPUT_EVDEV_H
#define VU_DEV_INPUT_EVDEV_H

#include <stdbool.h>
#include <stdint.h>

struct libevdev;
struct vu_loop;
struct vu_timer;

/*
 * event: one host event. SYN_DROPPED comes through as such: the frame being
 * received is incomplete; the changes it missed follow, ending with SYN_REPORT.
 * gone: the device left (before it is waited for, or the program ends).
 */
struct input_evdev_ops {
	void (*event)(void *opaque, uint16_t type, uint16_t code, int32_t value);
	void (*gone)(void *opaque);
};

struct input_evdev {
	const char *path;
	bool grab;
	bool reconnect;
	int fd;
	/* Kept while the device is away: it still describes it (config space). */
	struct libevdev *dev;
	struct vu_loop *loop;
	struct vu_timer *retry;
	const struct input_evdev_ops *ops;
	void *opaque;
};

/* Opens path (an evdev node or a link to one, e.g. /dev/input/by-id/...); logs why not. */
int input_evdev_open(struct input_evdev *e);
/* Starts watching the device on loop. */
int input_evdev_start(struct input_evdev *e, struct vu_loop *loop, const struct input_evdev_ops *ops,
		      void *opaque);
/* Sends an event to the device (LEDs, sounds), followed by a SYN_REPORT. */
void input_evdev_write(struct input_evdev *e, uint16_t type, uint16_t code, int32_t value);
void input_evdev_close(struct input_evdev *e);

#endif
