/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Back-end state that QEMU does not carry, moved with a migration
 * (VHOST_USER_PROTOCOL_F_DEVICE_STATE: SET_DEVICE_STATE_FD, CHECK_DEVICE_STATE).
 * The front-end hands over one end of a pipe; the source writes the device's
 * state into it and closes it, the destination reads until end of file. Both
 * go on the loop without blocking it; CHECK_DEVICE_STATE says how it went.
 */
#ifndef VU_DEVICE_STATE_H
#define VU_DEVICE_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/device.h"
#include "proto/loop.h"

#define VU_STATE_SAVE 0          /* transfer directions */
#define VU_STATE_LOAD 1
#define VU_STATE_MAX (16u << 20) /* the most a destination reads (a bound for a hostile stream) */

struct vu_state_xfer {
	int fd;                  /* -1: no transfer */
	bool saving;
	uint8_t *buf;
	size_t len, done;        /* saving: bytes to write, written; loading: read so far */
	size_t cap;
	int result;              /* 0, or -1 once something failed */
	struct vu_loop *loop;
	struct vu_dev *dev;
};

void vu_state_init(struct vu_state_xfer *x);
/* Starts a transfer over fd (taken); NULL or why it cannot (fd is closed then). */
const char *vu_state_start(struct vu_state_xfer *x, struct vu_loop *loop, struct vu_dev *dev,
			   uint32_t direction, int fd);
/* CHECK_DEVICE_STATE: finishes what the front-end already ended; 0 if it all went well. */
int vu_state_check(struct vu_state_xfer *x);
/* Drops a transfer under way (the front-end left or started another). */
void vu_state_cancel(struct vu_state_xfer *x);

#endif
