/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <termios.h>
#include <unistd.h>
#include <umockdev.h>

#include "test/evdev-mock.h"

#define MAX_DEVICES 16
#define PRELOAD "libumockdev-preload.so.0"

struct evdev_mock {
	UMockdevTestbed *tb;
	char *root;
	int fd[MAX_DEVICES];       /* our end of each device's pty, -1 if absent */
	int peek[MAX_DEVICES];     /* the program's end, opened to see how much it has not read */
	unsigned sent[MAX_DEVICES];
	char *link[MAX_DEVICES];   /* its /dev/input/by-id name, if any */
};

/* ---- the emulated devices -------------------------------------------------- */

static const uint16_t keyboard_codes[][2] = {
	{ EV_KEY, KEY_ESC }, { EV_KEY, KEY_1 }, { EV_KEY, KEY_2 }, { EV_KEY, KEY_A }, { EV_KEY, KEY_B },
	{ EV_KEY, KEY_C }, { EV_KEY, KEY_ENTER }, { EV_KEY, KEY_LEFTSHIFT }, { EV_KEY, KEY_SPACE },
	{ EV_KEY, KEY_CAPSLOCK }, { EV_MSC, MSC_SCAN }, { EV_LED, LED_NUML }, { EV_LED, LED_CAPSL },
	{ EV_LED, LED_SCROLLL }, { 0, 0 },
};
const struct evdev_mock_spec evdev_mock_keyboard = {
	.kind = "keyboard", .name = "vhostbox test keyboard", .uniq = "kbd-0001",
	.id = { BUS_USB, 0x1234, 0x5678, 0x0111 }, .codes = keyboard_codes, .rep = true,
};

static const uint16_t mouse_codes[][2] = {
	{ EV_KEY, BTN_LEFT }, { EV_KEY, BTN_RIGHT }, { EV_KEY, BTN_MIDDLE }, { EV_REL, REL_X },
	{ EV_REL, REL_Y }, { EV_REL, REL_WHEEL }, { 0, 0 },
};
const struct evdev_mock_spec evdev_mock_mouse = {
	.kind = "mouse", .name = "vhostbox test mouse", .id = { BUS_USB, 0x1234, 0x0002, 0x0100 },
	.codes = mouse_codes,
};

static const uint16_t tablet_codes[][2] = {
	{ EV_KEY, BTN_TOUCH }, { EV_KEY, BTN_TOOL_PEN }, { EV_KEY, BTN_STYLUS }, { EV_ABS, ABS_X },
	{ EV_ABS, ABS_Y }, { EV_ABS, ABS_PRESSURE }, { 0, 0 },
};
static const struct evdev_mock_abs tablet_abs[] = {
	{ ABS_X, { .minimum = 0, .maximum = 32767, .resolution = 100 } },
	{ ABS_Y, { .minimum = 0, .maximum = 20000, .fuzz = 4, .resolution = 100 } },
	{ ABS_PRESSURE, { .minimum = 0, .maximum = 1023, .flat = 2 } },
	{ 0, { .maximum = 0 } },
};
const struct evdev_mock_spec evdev_mock_tablet = {
	.kind = "tablet", .name = "vhostbox test tablet", .uniq = "tab-42",
	.id = { BUS_VIRTUAL, 0x1234, 0x0003, 0x0001 }, .props = 1u << INPUT_PROP_DIRECT,
	.codes = tablet_codes, .abs = tablet_abs,
};

const struct evdev_mock_spec *evdev_mock_spec_find(const char *kind)
{
	static const struct evdev_mock_spec *const all[] = { &evdev_mock_keyboard, &evdev_mock_mouse,
							     &evdev_mock_tablet };
	for (unsigned i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (!strcmp(all[i]->kind, kind))
			return all[i];
	return NULL;
}

/* ---- the ioctl record -------------------------------------------------------- */

/* One record line: NAME RESULT HEX, with exactly the buffer size libevdev asks for. */
static void record(FILE *f, const char *name, int result, const void *data, size_t len)
{
	fprintf(f, "%s %d ", name, result);
	for (size_t i = 0; i < len; i++)
		fprintf(f, "%02X", ((const uint8_t *)data)[i]);
	fputc('\n', f);
}

static void set_bit(uint8_t *bits, unsigned bit)
{
	bits[bit / 8] |= 1u << (bit % 8);
}

/* The answers libevdev_new_from_fd() and a SYN_DROPPED resync need. */
static void write_ioctls(FILE *f, const char *node, const struct evdev_mock_spec *s)
{
	/* EVIOCGBIT sizes are libevdev's bitmaps: longs enough for each type's codes. */
	static const struct { unsigned type; size_t bytes; } bit_sizes[] = {
		{ EV_KEY, 96 }, { EV_REL, 8 }, { EV_ABS, 8 }, { EV_MSC, 8 }, { EV_SW, 8 },
		{ EV_LED, 8 }, { EV_SND, 8 }, { EV_FF, 16 },
	};
	uint8_t ev[8] = { 0 }, bits[EV_CNT][96] = { { 0 } }, zero[96] = { 0 }, props[8] = { 0 };
	char name[255] = { 0 }, uniq[255] = { 0 }, label[32];

	set_bit(ev, EV_SYN);
	if (s->rep)
		set_bit(ev, EV_REP);
	for (const uint16_t (*c)[2] = s->codes; (*c)[0] || (*c)[1]; c++) {
		set_bit(ev, (*c)[0]);
		set_bit(bits[(*c)[0]], (*c)[1]);
	}
	for (unsigned p = 0; p < 32; p++)
		if (s->props & (1u << p))
			set_bit(props, p);
	strncpy(name, s->name, sizeof(name) - 1);
	fprintf(f, "@DEV %s\n", node);
	record(f, "EVIOCGBIT(0)", 8, ev, sizeof(ev));
	record(f, "EVIOCGNAME(0)", (int)strlen(name) + 1, name, sizeof(name));
	if (s->uniq) {
		strncpy(uniq, s->uniq, sizeof(uniq) - 1);
		record(f, "EVIOCGUNIQ(0)", (int)strlen(uniq) + 1, uniq, sizeof(uniq));
	}
	record(f, "EVIOCGID", 0, &s->id, sizeof(s->id));
	record(f, "EVIOCGVERSION", 0, (const uint32_t[]){ EV_VERSION }, 4);
	record(f, "EVIOCGPROP(0)", 8, props, sizeof(props));
	for (unsigned i = 0; i < sizeof(bit_sizes) / sizeof(bit_sizes[0]); i++) {
		snprintf(label, sizeof(label), "EVIOCGBIT(%u)", bit_sizes[i].type);
		record(f, label, (int)bit_sizes[i].bytes, bits[bit_sizes[i].type], bit_sizes[i].bytes);
	}
	if (s->rep)
		record(f, "EVIOCGREP", 0, (const uint32_t[]){ 250, 33 }, 8);
	/* Device state: nothing pressed, no LED lit, axes at their minimum. */
	record(f, "EVIOCGKEY(0)", 96, zero, 96);
	record(f, "EVIOCGLED(0)", 8, zero, 8);
	record(f, "EVIOCGSW(0)", 8, zero, 8);
	for (const struct evdev_mock_abs *a = s->abs; a && a->info.maximum; a++) {
		/* umockdev writes axis 0 without the parenthesis. */
		if (a->code)
			snprintf(label, sizeof(label), "EVIOCGABS(%u)", a->code);
		else
			snprintf(label, sizeof(label), "EVIOCGABS");
		record(f, label, 0, &a->info, sizeof(a->info));
	}
}

/* ---- the testbed ------------------------------------------------------------- */

struct evdev_mock *evdev_mock_new(void)
{
	struct evdev_mock *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	for (unsigned i = 0; i < MAX_DEVICES; i++)
		m->fd[i] = m->peek[i] = -1;
	m->tb = umockdev_testbed_new();
	if (!m->tb) {
		fprintf(stderr, "evdev-mock: cannot create the umockdev testbed\n");
		free(m);
		return NULL;
	}
	m->root = umockdev_testbed_get_root_dir(m->tb);
	return m;
}

void evdev_mock_free(struct evdev_mock *m)
{
	if (!m)
		return;
	for (unsigned i = 0; i < MAX_DEVICES; i++) {
		if (m->peek[i] >= 0)
			close(m->peek[i]);
		free(m->link[i]);
	}
	g_object_unref(m->tb);
	g_free(m->root);
	free(m);
}

void evdev_mock_env(void)
{
	const char *old = getenv("LD_PRELOAD");
	char *v;

	if (old && strstr(old, PRELOAD))
		return;
	if (asprintf(&v, "%s%s%s", PRELOAD, old ? ":" : "", old ? old : "") < 0)
		return;
	setenv("LD_PRELOAD", v, 1);
	free(v);
	/* The ASan runtime insists on coming first in the library list; here it cannot. */
	setenv("ASAN_OPTIONS", "verify_asan_link_order=0", 0);
}

int evdev_mock_add(struct evdev_mock *m, unsigned n, const struct evdev_mock_spec *spec, const char *link)
{
	char node[64], *desc = NULL, *ioctl_path = NULL;
	GError *err = NULL;
	int r = -1;

	if (n >= MAX_DEVICES || m->fd[n] >= 0)
		return -1;
	snprintf(node, sizeof(node), "/dev/input/event%u", n);
	if (asprintf(&desc,
		     "P: /devices/virtual/input/input%u/event%u\nN: input/event%u\nE: DEVNAME=%s\n"
		     "E: SUBSYSTEM=input\nE: MAJOR=13\nE: MINOR=%u\nA: dev=13:%u\n\n"
		     "P: /devices/virtual/input/input%u\nE: SUBSYSTEM=input\nA: name=%s\n",
		     n, n, n, node, 64 + n, 64 + n, n, spec->name) < 0 ||
	    asprintf(&ioctl_path, "%s/event%u.ioctl", m->root, n) < 0)
		goto out;
	FILE *f = fopen(ioctl_path, "w");
	if (!f)
		goto out;
	write_ioctls(f, node, spec);
	if (fclose(f) != 0)
		goto out;
	if (!umockdev_testbed_add_from_string(m->tb, desc, &err) ||
	    !umockdev_testbed_load_ioctl(m->tb, node, ioctl_path, &err)) {
		fprintf(stderr, "evdev-mock: %s: %s\n", node, err ? err->message : "?");
		goto out;
	}
	m->fd[n] = umockdev_testbed_get_dev_fd(m->tb, node);
	/* Only we may hold the far end: if a child did, unplugging could not hang up. */
	if (m->fd[n] < 0 || fcntl(m->fd[n], F_SETFD, FD_CLOEXEC) < 0)
		goto out;
	/* Events are binary: no line discipline may eat or turn bytes (^C, ^S...). */
	struct termios t;
	if (tcgetattr(m->fd[n], &t) < 0)
		goto out;
	cfmakeraw(&t);
	if (tcsetattr(m->fd[n], TCSANOW, &t) < 0)
		goto out;
	m->peek[n] = open(ptsname(m->fd[n]), O_RDONLY | O_NOCTTY | O_CLOEXEC);
	if (m->peek[n] < 0)
		goto out;
	if (link) {
		char *path, target[32];
		snprintf(target, sizeof(target), "../event%u", n);
		if (asprintf(&path, "%s/dev/input/by-id", m->root) < 0)
			goto out;
		mkdir(path, 0755);
		free(path);
		if (asprintf(&path, "%s/dev/input/by-id/%s", m->root, link) < 0)
			goto out;
		unlink(path);
		int k = symlink(target, path);
		free(path);
		/*
		 * umockdev answers ioctls by the name a node is opened with: the link's
		 * too. That answer outlives the device, and serves it when it is back.
		 */
		char by_id[160], served[256];
		snprintf(by_id, sizeof(by_id), "/dev/input/by-id/%s", link);
		snprintf(served, sizeof(served), "%s/ioctl%s", m->root, by_id);
		if (k < 0 || (access(served, F_OK) != 0 && !umockdev_testbed_load_ioctl(m->tb, by_id, ioctl_path, &err)))
			goto out;
		m->link[n] = strdup(link);
	}
	r = 0;
out:
	g_clear_error(&err);
	free(desc);
	free(ioctl_path);
	return r;
}

void evdev_mock_remove(struct evdev_mock *m, unsigned n)
{
	char path[80];

	if (n >= MAX_DEVICES || m->fd[n] < 0)
		return;
	/* The event node first: removing only its parent would leave its node behind. */
	snprintf(path, sizeof(path), "/sys/devices/virtual/input/input%u/event%u", n, n);
	umockdev_testbed_remove_device(m->tb, path);
	snprintf(path, sizeof(path), "/sys/devices/virtual/input/input%u", n);
	umockdev_testbed_remove_device(m->tb, path);
	/*
	 * umockdev keeps the pty open after removal; closing our end is what makes
	 * the program's reads fail, as an unplugged device's do. Its map entry for
	 * the pty stays too, and would make umockdev abort when the kernel hands the
	 * same pty number to a device added later: it goes with the pty.
	 */
	char *map;
	const char *pts = ptsname(m->fd[n]);
	if (pts && asprintf(&map, "%s/dev/.ptymap/%s", m->root, pts) >= 0) {
		for (char *c = map + strlen(m->root) + strlen("/dev/.ptymap/"); *c; c++)
			if (*c == '/')
				*c = '_';
		unlink(map);
		free(map);
	}
	/* As udev does, the stable name goes with the device. */
	if (m->link[n] && asprintf(&map, "%s/dev/input/by-id/%s", m->root, m->link[n]) >= 0) {
		unlink(map);
		free(map);
	}
	free(m->link[n]);
	m->link[n] = NULL;
	close(m->fd[n]);
	close(m->peek[n]);
	m->fd[n] = m->peek[n] = -1;
}

/*
 * A pty holds 4096 bytes for its reader, not a multiple of an event; were it to
 * fill up, a read could end mid-event, which no evdev node does. So after each
 * 2 KiB of events we wait for the reader to have taken them all: a moment for
 * the kernel to move them from the pty's own queue (invisible to FIONREAD) to
 * the reader's, then until the reader's is empty.
 */
#define BATCH (2048 / sizeof(struct input_event))

static int wait_drained(int peek)
{
	int queued;

	usleep(5000);
	for (int i = 0; i < 5000; i++) {
		if (ioctl(peek, FIONREAD, &queued) < 0)
			return -1;
		if (queued == 0)
			return 0;
		usleep(1000);
	}
	return -1;
}

int evdev_mock_fd(struct evdev_mock *m, unsigned n)
{
	return n < MAX_DEVICES ? m->fd[n] : -1;
}

int evdev_mock_send(struct evdev_mock *m, unsigned n, uint16_t type, uint16_t code, int32_t value)
{
	struct input_event ev = { .type = type, .code = code, .value = value };

	gettimeofday(&ev.time, NULL);
	if (n >= MAX_DEVICES || m->fd[n] < 0)
		return -1;
	if (m->sent[n]++ % BATCH == BATCH - 1 && wait_drained(m->peek[n]) < 0)
		return -1;
	return write(m->fd[n], &ev, sizeof(ev)) == sizeof(ev) ? 0 : -1;
}

int evdev_mock_recv(struct evdev_mock *m, unsigned n, struct input_event *ev, int timeout_ms)
{
	size_t got = 0;

	if (n >= MAX_DEVICES || m->fd[n] < 0)
		return -1;
	while (got < sizeof(*ev)) {
		struct pollfd p = { .fd = m->fd[n], .events = POLLIN };
		int r = poll(&p, 1, timeout_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -1 : 0;
		ssize_t k = read(m->fd[n], (char *)ev + got, sizeof(*ev) - got);
		if (k <= 0)
			return -1;
		got += k;
	}
	return 1;
}
