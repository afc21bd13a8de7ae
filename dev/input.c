/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virtio-input (device id 18) passing a host evdev device to the guest.
 * Queue 0 (eventq) carries host events into guest buffers, one 8-byte
 * virtio_input_event per buffer, a whole SYN_REPORT frame at a time; queue 1
 * (statusq) carries LED and sound events from the guest back to the device.
 * The config space describes the host device (dev/input-evdev.c).
 *
 * build: input.c input-evdev.c input-frames.c
 * pkg-config: libevdev
 * debian: libevdev-dev
 * systemd: RestrictAddressFamilies=AF_UNIX
 * systemd: PrivateNetwork=yes
 * systemd: SystemCallFilter=@system-service
 */
#include <endian.h>
#include <fcntl.h>
#include <libevdev/libevdev.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "dev/input-evdev.h"
#include "dev/input-frames.h"
#include "proto/device.h"
#include "proto/iov.h"
#include "proto/log.h"
#include "proto/loop.h"

enum { EVENTQ = 0, STATUSQ = 1 };

/* virtio 1.2, 5.8.4: what the driver selects with select/subsel. */
enum {
	CFG_UNSET = 0x00, CFG_ID_NAME = 0x01, CFG_ID_SERIAL = 0x02, CFG_ID_DEVIDS = 0x03,
	CFG_PROP_BITS = 0x10, CFG_EV_BITS = 0x11, CFG_ABS_INFO = 0x12,
};

struct input_config {
	uint8_t select;
	uint8_t subsel;
	uint8_t size;
	uint8_t reserved[5];
	union {
		char string[128];
		uint8_t bitmap[128];
		struct { uint32_t min, max, fuzz, flat, res; } abs;          /* little endian */
		struct { uint16_t bustype, vendor, product, version; } ids;  /* little endian */
	} u;
} __attribute__((packed));

struct virtio_input_event {
	uint16_t type;
	uint16_t code;
	uint32_t value;
} __attribute__((packed));

#define HELD_MAX INPUT_FRAME_MAX /* guest buffers held for the next frames */
#define HELD_IOV 4               /* segments of one 8-byte buffer */

/* A guest buffer taken from the eventq, waiting for an event. */
/* A guest buffer taken for an event: the request as popped, and its iovecs. */
struct held {
	struct vu_req req;
	struct iovec iov[HELD_IOV];
};

struct input {
	struct vu_dev dev;
	struct input_evdev evdev;
	bool no_grab;
	uint8_t select, subsel;
	struct vu_vring *eventq;         /* set while the ring runs */
	struct held held[HELD_MAX];      /* a FIFO: held[(first + i) % HELD_MAX] */
	unsigned held_first, nheld;
	struct input_frames frames;
	uint64_t dropped_logged;         /* frames.dropped when we last said so */
	bool dropping;                   /* we said the guest takes no events */
};

#define INPUT_FIELD(f) offsetof(struct input, f)
static const struct vu_option input_options[] = {
	{ .name = "evdev-path", .kind = VU_OPT_PATH, .offset = INPUT_FIELD(evdev.path), .arg = "PATH",
	  .help = "host evdev device to pass on, e.g. /dev/input/by-id/... (required)",
	  .flags = VU_OPT_CAPABILITY },
	{ .name = "no-grab", .kind = VU_OPT_FLAG, .offset = INPUT_FIELD(no_grab),
	  .help = "do not grab the device: the host keeps receiving its events too",
	  .flags = VU_OPT_CAPABILITY },
	{ .name = "reconnect-device", .kind = VU_OPT_FLAG, .offset = INPUT_FIELD(evdev.reconnect),
	  .help = "when the device goes away, wait for it and open it again (default: exit 1)" },
	{ NULL },
};

static struct vu_dev *input_create(void)
{
	struct input *in = calloc(1, sizeof(*in));

	if (!in)
		return NULL;
	in->evdev.fd = -1;
	return &in->dev;
}

/* ---- eventq ---------------------------------------------------------------- */

/* Takes the buffers the guest posted, so that a frame is sent only when all of it fits. */
static void refill(struct input *in)
{
	struct vu_vring *vq = in->eventq;

	do {
		vu_vring_kicks(vq, false);
		while (in->nheld < HELD_MAX) {
			struct held *h = &in->held[(in->held_first + in->nheld) % HELD_MAX];
			h->req = (struct vu_req){ .iov = h->iov, .max_iov = HELD_IOV };
			if (vu_vring_pop(vq, &h->req) <= 0)
				break;
			if (h->req.out || h->req.truncated || h->req.in_bytes < sizeof(struct virtio_input_event)) {
				vu_vring_fail(vq, "event buffer is not 8 device-writable bytes");
				return;
			}
			in->nheld++;
		}
	} while (!vq->broken && in->nheld < HELD_MAX && vu_vring_kicks(vq, true));
}

static void put_event(struct input *in, const struct input_ev *e)
{
	struct held *h = &in->held[in->held_first];
	struct virtio_input_event v = {
		.type = htole16(e->type), .code = htole16(e->code), .value = htole32((uint32_t)e->value),
	};

	vu_iov_from_buf(h->req.iov, h->req.in, 0, &v, sizeof(v));
	vu_vring_push(in->eventq, &h->req, sizeof(v));
	in->held_first = (in->held_first + 1) % HELD_MAX;
	in->nheld--;
}

/* Says when dropping starts, and how much was lost once the guest takes events again. */
static void log_drops(struct input *in, bool delivered)
{
	uint64_t dropped = in->frames.dropped;

	if (dropped == in->dropped_logged)
		return;
	if (!delivered && !in->dropping) {
		vu_warn("%s: the guest takes no events: dropping the oldest", in->evdev.path);
		in->dropping = true;
	} else if (delivered) {
		vu_warn("%s: %llu frames of events were dropped", in->evdev.path,
			(unsigned long long)(dropped - in->dropped_logged));
		in->dropped_logged = dropped;
		in->dropping = false;
	}
}

/* Sends every complete frame the held buffers can take whole, then one notification. */
static void deliver(struct input *in)
{
	struct vu_vring *vq = in->eventq;
	bool delivered = false;
	unsigned n;

	if (!vq || vq->broken) {
		log_drops(in, false);
		return;
	}
	refill(in);
	while ((n = input_frames_next(&in->frames)) && !vq->broken) {
		if (n > vq->num) {
			/* Could never fit this ring whole: dropping beats splitting it. */
			input_frames_pop(&in->frames);
			in->frames.dropped++;
			continue;
		}
		if (n > in->nheld)
			break; /* wait for the guest to post more buffers */
		for (unsigned i = 0; i < n; i++)
			put_event(in, input_frames_at(&in->frames, i));
		input_frames_pop(&in->frames);
		delivered = true;
		refill(in);
	}
	vu_vring_flush(vq);
	log_drops(in, delivered);
}

static void on_host_event(void *opaque, uint16_t type, uint16_t code, int32_t value)
{
	struct input *in = opaque;

	if (type == EV_SYN && code == SYN_DROPPED) {
		input_frames_abort(&in->frames);
		return;
	}
	input_frames_add(&in->frames, (struct input_ev){ type, code, value });
	if (type == EV_SYN && code == SYN_REPORT)
		deliver(in);
	else
		log_drops(in, false);
}

/* The device left: release what the guest believes is held down, so nothing sticks. */
static void on_host_gone(void *opaque)
{
	struct input *in = opaque;
	struct libevdev *d = in->evdev.dev;
	bool any = false;

	input_frames_abort(&in->frames);
	for (unsigned code = 0; code <= KEY_MAX; code++) {
		if (libevdev_has_event_code(d, EV_KEY, code) && libevdev_get_event_value(d, EV_KEY, code)) {
			input_frames_add(&in->frames, (struct input_ev){ EV_KEY, code, 0 });
			any = true;
		}
	}
	if (any)
		on_host_event(in, EV_SYN, SYN_REPORT, 0);
}

/* ---- statusq --------------------------------------------------------------- */

/* LEDs and sounds the guest sets go to the host device, if it has them. */
static void status_event(struct input *in, const struct virtio_input_event *v)
{
	uint16_t type = le16toh(v->type), code = le16toh(v->code);
	int32_t value = (int32_t)le32toh(v->value);

	if ((type != EV_LED && type != EV_SND) || !libevdev_has_event_code(in->evdev.dev, type, code)) {
		vu_debug("%s: status event %u/%u ignored", in->evdev.path, type, code);
		return;
	}
	input_evdev_write(&in->evdev, type, code, value);
}

static void status_kick(struct input *in, struct vu_vring *vq)
{
	struct iovec iov[HELD_IOV];
	struct vu_req req = { .iov = iov, .max_iov = HELD_IOV };

	do {
		vu_vring_kicks(vq, false);
		while (vu_vring_pop(vq, &req) > 0) {
			struct virtio_input_event v;
			if (req.in || vu_iov_to_buf(req.iov, req.out, 0, &v, sizeof(v)) != sizeof(v)) {
				vu_vring_fail(vq, "status buffer is not 8 device-readable bytes");
				return;
			}
			status_event(in, &v);
			vu_vring_push(vq, &req, 0);
		}
		vu_vring_flush(vq);
	} while (!vq->broken && vu_vring_kicks(vq, true));
}

static void input_kick(struct vu_dev *dev, struct vu_vring *vq)
{
	struct input *in = (struct input *)dev;

	if (vq->index == STATUSQ) {
		status_kick(in, vq);
		return;
	}
	in->eventq = vq;
	deliver(in);
}

/*
 * The ring stops: buffers we hold go back to the guest now. Each gets an empty
 * SYN_REPORT, which the guest's input core ignores (a report with no events),
 * where the stale event in it could be taken for a new one.
 */
static void input_queue_drain(struct vu_dev *dev, struct vu_vring *vq)
{
	struct input *in = (struct input *)dev;
	static const struct input_ev empty = { EV_SYN, SYN_REPORT, 0 };

	if (vq->index != EVENTQ || in->eventq != vq)
		return;
	while (in->nheld)
		put_event(in, &empty);
	vu_vring_flush(vq);
	in->held_first = 0;
	in->eventq = NULL;
}

/* A new driver starts clean: no events from before it, config selection unset. */
static void input_reset(struct vu_dev *dev)
{
	struct input *in = (struct input *)dev;

	input_frames_clear(&in->frames);
	in->select = in->subsel = CFG_UNSET;
}

/* ---- config space ---------------------------------------------------------- */

static void mark(struct input_config *c, unsigned bit)
{
	c->u.bitmap[bit / 8] |= 1u << (bit % 8);
	if (bit / 8 >= c->size)
		c->size = bit / 8 + 1;
}

/* Event types the guest gets to see: not EV_SYN (implied), EV_REP (the host repeats
 * keys itself: a guest repeating too would double them) nor force feedback. */
static bool type_offered(unsigned type)
{
	return type == EV_KEY || type == EV_REL || type == EV_ABS || type == EV_MSC || type == EV_SW ||
	       type == EV_LED || type == EV_SND;
}

static void fill_string(struct input_config *c, const char *s)
{
	if (!s)
		return; /* the device has none: size 0 */
	c->size = strnlen(s, sizeof(c->u.string));
	memcpy(c->u.string, s, c->size);
}

static void build_config(struct input *in, struct input_config *c)
{
	struct libevdev *d = in->evdev.dev;

	*c = (struct input_config){ .select = in->select, .subsel = in->subsel };
	switch (in->select) {
	case CFG_ID_NAME:
		if (in->subsel == 0)
			fill_string(c, libevdev_get_name(d));
		break;
	case CFG_ID_SERIAL:
		if (in->subsel == 0)
			fill_string(c, libevdev_get_uniq(d));
		break;
	case CFG_ID_DEVIDS:
		if (in->subsel == 0) {
			c->u.ids.bustype = htole16(libevdev_get_id_bustype(d));
			c->u.ids.vendor = htole16(libevdev_get_id_vendor(d));
			c->u.ids.product = htole16(libevdev_get_id_product(d));
			c->u.ids.version = htole16(libevdev_get_id_version(d));
			c->size = sizeof(c->u.ids);
		}
		break;
	case CFG_PROP_BITS:
		for (unsigned p = 0; in->subsel == 0 && p <= INPUT_PROP_MAX; p++)
			if (libevdev_has_property(d, p))
				mark(c, p);
		break;
	case CFG_EV_BITS:
		/* Every code of an offered type fits: KEY_MAX (0x2ff) is below 128 * 8. */
		for (int code = 0; type_offered(in->subsel) && code <= libevdev_event_type_get_max(in->subsel); code++)
			if (libevdev_has_event_code(d, in->subsel, code))
				mark(c, code);
		break;
	case CFG_ABS_INFO: {
		const struct input_absinfo *a = libevdev_get_abs_info(d, in->subsel);
		if (a) {
			c->u.abs.min = htole32((uint32_t)a->minimum);
			c->u.abs.max = htole32((uint32_t)a->maximum);
			c->u.abs.fuzz = htole32((uint32_t)a->fuzz);
			c->u.abs.flat = htole32((uint32_t)a->flat);
			c->u.abs.res = htole32((uint32_t)a->resolution);
			c->size = sizeof(c->u.abs);
		}
		break;
	}
	}
}

static int input_get_config(struct vu_dev *dev, uint8_t *buf, uint32_t offset, uint32_t len)
{
	struct input_config c;

	build_config((struct input *)dev, &c);
	memcpy(buf, (uint8_t *)&c + offset, len);
	return 0;
}

/* Only select and subsel are writable; QEMU writes the whole space, so the rest is ignored. */
static int input_set_config(struct vu_dev *dev, const uint8_t *buf, uint32_t offset, uint32_t len)
{
	struct input *in = (struct input *)dev;

	if (offset == 0 && len >= 1)
		in->select = buf[0];
	if (offset <= 1 && offset + len >= 2)
		in->subsel = buf[1 - offset];
	return 0;
}

/* ---- life cycle ------------------------------------------------------------ */

static const struct input_evdev_ops evdev_ops = { .event = on_host_event, .gone = on_host_gone };

static int input_init(struct vu_dev *dev, struct vu_loop *loop)
{
	struct input *in = (struct input *)dev;

	if (!in->evdev.path) {
		vu_err("--evdev-path is required");
		return -1;
	}
	in->evdev.grab = !in->no_grab;
	if (input_evdev_open(&in->evdev) < 0 || input_evdev_start(&in->evdev, loop, &evdev_ops, in) < 0)
		return -1;
	vu_info("%s: \"%s\"%s", in->evdev.path, libevdev_get_name(in->evdev.dev),
		in->evdev.grab ? " (grabbed)" : "");
	return 0;
}

static void input_destroy(struct vu_dev *dev)
{
	struct input *in = (struct input *)dev;

	input_evdev_close(&in->evdev);
	free(in);
}

/*
 * Confined: events are read and LEDs written on the open node; libevdev asks the
 * device for its state again after SYN_DROPPED (evdev ioctls, type 'E').
 */
static const struct vu_syscall input_syscalls[] = {
	VU_SYSCALL_MASK(ioctl, 1, 0xff00, 'E' << 8),
	VU_SYSCALL_END,
};

/* --reconnect-device opens the node again by its path: files can be opened (not created). */
static const struct vu_syscall input_reopen_syscalls[] = {
	VU_SYSCALL_MASK(openat, 2, O_CREAT | O_TRUNC | O_PATH, 0),
	VU_SYSCALL_MASK(open, 1, O_CREAT | O_TRUNC | O_PATH, 0),
	VU_SYSCALL_END,
};

static void input_sandbox(const struct vu_dev *dev, struct vu_sandbox_needs *needs)
{
	if (((const struct input *)dev)->evdev.reconnect) {
		needs->strictest = VU_SANDBOX_SECCOMP;
		needs->why = "--reconnect-device opens the device again by its path, which the empty root "
			     "of namespace mode does not have";
		needs->syscalls = input_reopen_syscalls;
	}
}

const struct vu_device_type vu_dev_input = {
	.name = "input",
	.schema_type = "input",
	.summary = "virtio-input passing a host evdev device (keyboard, mouse, tablet...) to the guest",
	.qemu_args = "-device vhost-user-input-pci,chardev=vu0",
	.virtio_id = 18,
	.num_queues = 2,
	.config_size = sizeof(struct input_config),
	.options = input_options,
	.create = input_create,
	.init = input_init,
	.kick = input_kick,
	.queue_drain = input_queue_drain,
	.get_config = input_get_config,
	.set_config = input_set_config,
	.reset = input_reset,
	.destroy = input_destroy,
	.syscalls = input_syscalls,
	.sandbox = input_sandbox,
};
