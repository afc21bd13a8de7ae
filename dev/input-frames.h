/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A bounded queue of input events held until the guest has buffers for them.
 * Events are grouped into frames, each ending with SYN_REPORT; only whole frames
 * are handed out or dropped. When the queue is full the oldest whole frames make
 * room and are counted, so memory stays bounded whatever the host device sends.
 */
#ifndef VU_DEV_INPUT_FRAMES_H
#define VU_DEV_INPUT_FRAMES_H

#include <stdbool.h>
#include <stdint.h>

#define INPUT_FRAMES_CAP 1024    /* events held in all */
#define INPUT_FRAME_MAX 256      /* events in one frame; a longer one is dropped */

struct input_ev {
	uint16_t type, code;
	int32_t value;
};

struct input_frames {
	struct input_ev ev[INPUT_FRAMES_CAP];
	/* Free-running counters (index = counter % CAP): [head, done) holds complete
	 * frames, [done, tail) the frame still being received. */
	unsigned head, done, tail;
	bool skipping;           /* the frame being received was dropped: wait for its end */
	uint64_t dropped;        /* frames dropped, for the log */
};

void input_frames_clear(struct input_frames *q);
/* Appends an event; a SYN_REPORT completes the frame. False if a frame was dropped. */
bool input_frames_add(struct input_frames *q, struct input_ev ev);
/* Forgets the frame being received (the host device dropped events mid-frame). */
void input_frames_abort(struct input_frames *q);
/* Events in the oldest complete frame, 0 if there is none. */
unsigned input_frames_next(const struct input_frames *q);
/* Event i (0-based) of the oldest complete frame. */
const struct input_ev *input_frames_at(const struct input_frames *q, unsigned i);
/* Removes the oldest complete frame. */
void input_frames_pop(struct input_frames *q);

#endif
