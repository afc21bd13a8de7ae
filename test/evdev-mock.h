/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Emulated evdev devices for tests, built on umockdev: each device gets a
 * /dev/input/eventN node (a pty whose far end the test holds) and an ioctl
 * record generated from a small description, so a program started with
 * evdev_mock_env() runs its real libevdev code against it. The test writes the
 * device's events and reads what the program writes back (LEDs).
 */
#ifndef VU_TEST_EVDEV_MOCK_H
#define VU_TEST_EVDEV_MOCK_H

#include <linux/input.h>
#include <stdbool.h>
#include <stdint.h>

struct evdev_mock_abs {
	uint16_t code;
	struct input_absinfo info;
};

/* What an emulated device looks like; code lists end with { 0, 0 }. */
struct evdev_mock_spec {
	const char *kind;                 /* keyboard, mouse, tablet */
	const char *name, *uniq;
	struct input_id id;
	uint32_t props;                   /* INPUT_PROP_* bits */
	const uint16_t (*codes)[2];       /* { type, code } pairs */
	const struct evdev_mock_abs *abs; /* ends with code 0 and max 0 */
	bool rep;                         /* EV_REP (autorepeat by the device) */
};

extern const struct evdev_mock_spec evdev_mock_keyboard, evdev_mock_mouse, evdev_mock_tablet;
/* The spec for a kind name, or NULL. */
const struct evdev_mock_spec *evdev_mock_spec_find(const char *kind);

struct evdev_mock;

/* A new testbed (sets UMOCKDEV_DIR). NULL with a message on stderr on failure. */
struct evdev_mock *evdev_mock_new(void);
void evdev_mock_free(struct evdev_mock *m);
/*
 * Makes children see the testbed: LD_PRELOAD gains the umockdev preload library
 * (and sanitizer builds are told not to mind it not coming first).
 */
void evdev_mock_env(void);

/*
 * Adds the device as /dev/input/event<n>, and, if link is set, the stable name
 * /dev/input/by-id/<link> pointing to it. 0 or -1. umockdev cannot bring back a
 * node it removed: a device plugged in again takes a new n (as real ones do).
 */
int evdev_mock_add(struct evdev_mock *m, unsigned n, const struct evdev_mock_spec *spec, const char *link);
/* Unplugs device n: its node and link go, and a program holding it open sees a hang-up. */
void evdev_mock_remove(struct evdev_mock *m, unsigned n);

/* Our end of device n's pty (what evdev_mock_send writes to), or -1. */
int evdev_mock_fd(struct evdev_mock *m, unsigned n);
/* Writes one event from device n to whoever has it open. 0 or -1. */
int evdev_mock_send(struct evdev_mock *m, unsigned n, uint16_t type, uint16_t code, int32_t value);
/* Reads one event the program wrote to device n: 1, 0 after timeout_ms, -1 on error. */
int evdev_mock_recv(struct evdev_mock *m, unsigned n, struct input_event *ev, int timeout_ms);

#endif
