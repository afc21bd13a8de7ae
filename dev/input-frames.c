/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <linux/input.h>
#include <string.h>

#include "dev/input-frames.h"

void input_frames_clear(struct input_frames *q)
{
	uint64_t dropped = q->dropped;

	memset(q, 0, sizeof(*q));
	q->dropped = dropped;
}

static bool is_report(const struct input_ev *e)
{
	return e->type == EV_SYN && e->code == SYN_REPORT;
}

unsigned input_frames_next(const struct input_frames *q)
{
	for (unsigned i = q->head; i != q->done; i++)
		if (is_report(&q->ev[i % INPUT_FRAMES_CAP]))
			return i - q->head + 1;
	return 0;
}

const struct input_ev *input_frames_at(const struct input_frames *q, unsigned i)
{
	return &q->ev[(q->head + i) % INPUT_FRAMES_CAP];
}

void input_frames_pop(struct input_frames *q)
{
	q->head += input_frames_next(q);
}

void input_frames_abort(struct input_frames *q)
{
	q->tail = q->done;
	q->skipping = false;
}

bool input_frames_add(struct input_frames *q, struct input_ev ev)
{
	bool kept = true;

	if (q->skipping) {
		if (is_report(&ev))
			q->skipping = false;
		return true;
	}
	if (q->tail - q->done == INPUT_FRAME_MAX) {
		/* A frame this long cannot be delivered whole: drop it to its end. */
		input_frames_abort(q);
		q->dropped++;
		q->skipping = !is_report(&ev);
		return false;
	}
	/* Room is made by dropping the oldest complete frames, never the one arriving. */
	while (q->tail - q->head == INPUT_FRAMES_CAP) {
		input_frames_pop(q);
		q->dropped++;
		kept = false;
	}
	q->ev[q->tail++ % INPUT_FRAMES_CAP] = ev;
	if (is_report(&ev))
		q->done = q->tail;
	return kept;
}
