/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vhost-user-input through the test front-end, with host devices emulated by
 * umockdev (test/evdev-mock.c) so the back-end's real libevdev code runs:
 * config space of a keyboard, mouse and tablet served by one process, event
 * order and SYN framing, a full queue, SYN_DROPPED, LED write-back, the pages
 * events mark in a live migration's dirty log, a device that goes away (exit,
 * or wait and reopen) and paths that are not devices.
 */
#include <endian.h>
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test/check.h"
#include "test/dirty-log.h"
#include "test/evdev-mock.h"
#include "test/frontend.h"

enum { CFG_ID_NAME = 1, CFG_ID_SERIAL = 2, CFG_ID_DEVIDS = 3, CFG_PROP_BITS = 0x10, CFG_EV_BITS = 0x11,
       CFG_ABS_INFO = 0x12 };
#define CONFIG_SIZE 136
#define NBUF 64                  /* event buffers the driver owns */
#define KBD_LINK "usb-vhostbox-test-kbd-event-kbd"

struct vin_event {
	uint16_t type, code;
	uint32_t value;
};

struct cfg {
	uint8_t select, subsel, size, reserved[5];
	uint8_t u[128];
};

/* One connected driver of an input device. */
struct drv {
	struct vuf *f;
	struct vuf_vq *evq, *stq;
	uint64_t bufs;               /* NBUF event buffers of 8 bytes */
	uint64_t status;             /* one status buffer */
};

static struct evdev_mock *mock;
static char dir[] = "/tmp/t-input.XXXXXX";

static const uint64_t want_features = 1ull << VIRTIO_F_VERSION_1 | 1ull << VHOST_USER_F_PROTOCOL_FEATURES |
				      1ull << VIRTIO_RING_F_INDIRECT_DESC;
static const uint64_t want_pf = 1ull << VU_PF_MQ | 1ull << VU_PF_REPLY_ACK | 1ull << VU_PF_CONFIG;

static const char *sock_path(const char *name)
{
	static char paths[8][96];
	static unsigned next;
	char *p = paths[next++ % 8];
	snprintf(p, sizeof(paths[0]), "%s/%s.sock", dir, name);
	return p;
}

static bool drv_open_with(struct drv *d, const char *sock, uint64_t more_features, uint64_t more_pf)
{
	memset(d, 0, sizeof(*d));
	d->f = vuf_connect(sock, 3000);
	if (!d->f || vuf_mem_init(d->f, 1, 1 << 20, 0) < 0 ||
	    vuf_negotiate(d->f, want_features | more_features, want_pf | more_pf) < 0)
		return false;
	d->evq = vuf_vq_setup(d->f, 0, NBUF, 0);
	d->stq = vuf_vq_setup(d->f, 1, 16, 0);
	d->bufs = vuf_alloc(d->f, NBUF * 8, 8);
	d->status = vuf_alloc(d->f, 8, 8);
	return d->evq && d->stq && d->bufs && d->status;
}

static bool drv_open(struct drv *d, const char *sock, bool event_idx)
{
	return drv_open_with(d, sock, event_idx ? 1ull << VIRTIO_RING_F_EVENT_IDX : 0, 0);
}

static void drv_close(struct drv *d)
{
	vuf_close(d->f);
	memset(d, 0, sizeof(*d));
}

/* Posts n event buffers (the next ones round the NBUF area) and kicks. */
static void post(struct drv *d, unsigned n)
{
	static unsigned next;
	for (unsigned i = 0; i < n; i++, next++) {
		struct vuf_buf b = { d->bufs + (next % NBUF) * 8, 8 };
		vuf_vq_add(d->evq, NULL, 0, &b, 1, false);
	}
	vuf_vq_kick(d->evq);
}

/* Takes the next used event buffer: 1, or 0 after timeout_ms. */
static int take(struct drv *d, struct vin_event *e, int timeout_ms)
{
	uint32_t id, len;
	if (vuf_vq_wait_used(d->evq, &id, &len, timeout_ms) < 0)
		return 0;
	uint64_t gpa = d->evq->desc[id].addr;
	vuf_gpa_read(d->f, gpa, e, sizeof(*e));
	e->type = le16toh(e->type);
	e->code = le16toh(e->code);
	e->value = le32toh(e->value);
	return len == 8;
}

/* Reads a config selection; returns its size. */
static int cfg_read(struct drv *d, uint8_t select, uint8_t subsel, struct cfg *c)
{
	uint8_t sel[2] = { select, subsel };
	memset(c, 0, sizeof(*c));
	if (vuf_set_config(d->f, 0, 2, sel) < 0 || vuf_get_config(d->f, 0, CONFIG_SIZE, c) != VU_CONFIG_HDR_SIZE + CONFIG_SIZE)
		return -1;
	return c->select == select && c->subsel == subsel ? c->size : -1;
}

static bool bit(const struct cfg *c, unsigned b)
{
	return b / 8 < c->size && (c->u[b / 8] >> (b % 8)) & 1;
}

static void send(unsigned dev, uint16_t type, uint16_t code, int32_t value)
{
	if (evdev_mock_send(mock, dev, type, code, value) < 0)
		check_note("writing an event to device %u failed", dev);
}

/* ---- config space -------------------------------------------------------------- */

static void check_ids(const char *what, struct drv *d, const struct evdev_mock_spec *s)
{
	struct cfg c;
	int n = cfg_read(d, CFG_ID_NAME, 0, &c);
	CHECK(n == (int)strlen(s->name) && !memcmp(c.u, s->name, n), "config-%s-name", what);
	n = cfg_read(d, CFG_ID_SERIAL, 0, &c);
	CHECK(s->uniq ? n == (int)strlen(s->uniq) && !memcmp(c.u, s->uniq, n) : n == 0, "config-%s-serial", what);
	n = cfg_read(d, CFG_ID_DEVIDS, 0, &c);
	uint16_t ids[4];
	memcpy(ids, c.u, sizeof(ids));
	CHECK(n == 8 && le16toh(ids[0]) == s->id.bustype && le16toh(ids[1]) == s->id.vendor &&
	      le16toh(ids[2]) == s->id.product && le16toh(ids[3]) == s->id.version, "config-%s-devids", what);
	n = cfg_read(d, CFG_PROP_BITS, 0, &c);
	CHECK(s->props ? n == 1 && c.u[0] == s->props : n == 0, "config-%s-props", what);
	/* Every type with codes, exactly its codes; no EV_REP (the host repeats), no EV_SYN. */
	bool ok = true;
	for (unsigned type = 0; type < EV_CNT; type++) {
		n = cfg_read(d, CFG_EV_BITS, type, &c);
		unsigned want = 0, have = 0;
		for (const uint16_t (*p)[2] = s->codes; (*p)[0] || (*p)[1]; p++)
			if ((*p)[0] == type) {
				want++;
				have += bit(&c, (*p)[1]);
			}
		unsigned set = 0;
		for (int i = 0; i < n && i < 128; i++)
			set += __builtin_popcount(c.u[i]);
		if (n < 0 || have != want || set != want || (!want && n != 0)) {
			check_note("%s: EV_BITS %u: size %d, %u of %u codes, %u bits set", what, type, n, have, want, set);
			ok = false;
		}
	}
	CHECK(ok, "config-%s-ev-bits", what);
	ok = true;
	for (unsigned axis = 0; axis < ABS_CNT; axis++) {
		const struct evdev_mock_abs *a = s->abs;
		while (a && a->info.maximum && a->code != axis)
			a++;
		n = cfg_read(d, CFG_ABS_INFO, axis, &c);
		uint32_t v[5];
		memcpy(v, c.u, sizeof(v));
		if (a && a->info.maximum)
			ok &= n == 20 && (int32_t)le32toh(v[0]) == a->info.minimum &&
			      (int32_t)le32toh(v[1]) == a->info.maximum && (int32_t)le32toh(v[2]) == a->info.fuzz &&
			      (int32_t)le32toh(v[3]) == a->info.flat && (int32_t)le32toh(v[4]) == a->info.resolution;
		else
			ok &= n == 0;
	}
	CHECK(ok, "config-%s-abs-info", what);
}

/* ---- events --------------------------------------------------------------------- */

/* Expects exactly these events next, in order. */
static bool expect(struct drv *d, const struct vin_event *want, unsigned n, const char *what)
{
	for (unsigned i = 0; i < n; i++) {
		struct vin_event e;
		if (!take(d, &e, 2000)) {
			check_note("%s: event %u (%u/%u/%d) did not come", what, i, want[i].type, want[i].code,
				   (int)want[i].value);
			return false;
		}
		if (e.type != want[i].type || e.code != want[i].code || e.value != want[i].value) {
			check_note("%s: event %u is %u/%u/%d, not %u/%u/%d", what, i, e.type, e.code, (int)e.value,
				   want[i].type, want[i].code, (int)want[i].value);
			return false;
		}
	}
	return true;
}

static bool nothing_more(struct drv *d, int ms)
{
	struct vin_event e;
	return !take(d, &e, ms);
}

static void test_order(struct drv *kbd, struct drv *mouse)
{
	post(kbd, NBUF);
	post(mouse, NBUF);
	send(0, EV_MSC, MSC_SCAN, 0x70004);
	send(0, EV_KEY, KEY_A, 1);
	send(0, EV_SYN, SYN_REPORT, 0);
	send(1, EV_REL, REL_X, 5);
	send(1, EV_REL, REL_Y, -3);
	send(1, EV_SYN, SYN_REPORT, 0);
	send(0, EV_KEY, KEY_A, 0);
	send(0, EV_SYN, SYN_REPORT, 0);
	const struct vin_event k[] = { { EV_MSC, MSC_SCAN, 0x70004 }, { EV_KEY, KEY_A, 1 }, { EV_SYN, SYN_REPORT, 0 },
				       { EV_KEY, KEY_A, 0 }, { EV_SYN, SYN_REPORT, 0 } };
	const struct vin_event m[] = { { EV_REL, REL_X, 5 }, { EV_REL, REL_Y, (uint32_t)-3 },
				       { EV_SYN, SYN_REPORT, 0 } };
	CHECK(expect(kbd, k, 5, "keyboard") && nothing_more(kbd, 100), "events-keyboard-order");
	CHECK(expect(mouse, m, 3, "mouse") && nothing_more(mouse, 100), "events-mouse-order-two-devices");
}

/* A frame waits until the driver has buffers for all of it; it is never split. */
static void test_whole_frames(struct drv *kbd)
{
	/* The driver has NBUF - 5 buffers posted from test_order: leave 3. */
	struct vin_event e;
	send(0, EV_MSC, MSC_SCAN, 1);
	send(0, EV_SYN, SYN_REPORT, 0);
	bool ok = true;
	for (unsigned i = 0; i < NBUF - 5 - 3 - 2; i += 2) {
		send(0, EV_MSC, MSC_SCAN, 1);
		send(0, EV_SYN, SYN_REPORT, 0);
	}
	for (unsigned i = 0; i < NBUF - 5 - 3; i++)
		ok &= take(kbd, &e, 2000);
	/* 3 buffers left: a 4-event frame must wait for a fourth. */
	send(0, EV_KEY, KEY_A, 1);
	send(0, EV_KEY, KEY_B, 1);
	send(0, EV_KEY, KEY_C, 1);
	send(0, EV_SYN, SYN_REPORT, 0);
	ok &= nothing_more(kbd, 300);
	post(kbd, 1);
	const struct vin_event f[] = { { EV_KEY, KEY_A, 1 }, { EV_KEY, KEY_B, 1 }, { EV_KEY, KEY_C, 1 },
				       { EV_SYN, SYN_REPORT, 0 } };
	CHECK(ok && expect(kbd, f, 4, "frame") && nothing_more(kbd, 100), "events-frame-waits-for-buffers");
	/* Release the keys for what follows. */
	post(kbd, 4);
	send(0, EV_KEY, KEY_A, 0);
	send(0, EV_KEY, KEY_B, 0);
	send(0, EV_KEY, KEY_C, 0);
	send(0, EV_SYN, SYN_REPORT, 0);
	for (unsigned i = 0; i < 4; i++)
		take(kbd, &e, 2000);
}

/* With no buffers, frames are held up to a bound and the oldest dropped. */
static void test_queue_full(struct drv *kbd)
{
	const unsigned frames = 3000, kept = 512; /* the back-end holds 1024 events */
	for (unsigned i = 0; i < frames; i++) {
		send(0, EV_MSC, MSC_SCAN, i);
		send(0, EV_SYN, SYN_REPORT, 0);
	}
	usleep(500000); /* let the back-end read them all */
	bool ok = true;
	unsigned first = 0, got = 0;
	for (unsigned round = 0; round < 2 * kept / NBUF && ok; round++) {
		post(kbd, NBUF);
		for (unsigned i = 0; i < NBUF / 2 && ok; i++, got++) {
			struct vin_event a, b;
			ok = take(kbd, &a, 2000) && take(kbd, &b, 2000) && a.type == EV_MSC &&
			     b.type == EV_SYN && b.code == SYN_REPORT;
			if (got == 0)
				first = a.value;
			else if (ok && a.value != first + got) {
				check_note("frame %u has scan code %u, not %u", got, a.value, first + got);
				ok = false;
			}
		}
	}
	check_note("after %u frames with no buffers: %u kept, the first being %u", frames, got, first);
	CHECK(ok && got == kept && first == frames - kept && nothing_more(kbd, 200), "events-queue-full-drops-oldest");
}

/* SYN_DROPPED: the partial frame is forgotten, libevdev's catch-up comes instead. */
static void test_syn_dropped(struct drv *kbd)
{
	post(kbd, NBUF);
	send(0, EV_KEY, KEY_SPACE, 1);
	send(0, EV_SYN, SYN_REPORT, 0);
	send(0, EV_KEY, KEY_B, 1); /* lost with the drop */
	send(0, EV_SYN, SYN_DROPPED, 0);
	/*
	 * The emulated device reports nothing pressed: the catch-up frame releases
	 * space (and b, which the guest never saw pressed: harmless), and presses nothing.
	 */
	bool ok = expect(kbd, (const struct vin_event[]){ { EV_KEY, KEY_SPACE, 1 }, { EV_SYN, SYN_REPORT, 0 } }, 2,
			 "space");
	bool released = false;
	for (unsigned i = 0; ok && i < 8; i++) {
		struct vin_event e;
		ok = take(kbd, &e, 2000) && !(e.type == EV_KEY && e.value != 0);
		released |= e.type == EV_KEY && e.code == KEY_SPACE;
		if (e.type == EV_SYN && e.code == SYN_REPORT)
			break;
	}
	send(0, EV_KEY, KEY_ENTER, 1);
	send(0, EV_SYN, SYN_REPORT, 0);
	const struct vin_event g[] = { { EV_KEY, KEY_ENTER, 1 }, { EV_SYN, SYN_REPORT, 0 } };
	CHECK(ok && released && expect(kbd, g, 2, "after-resync"), "events-syn-dropped-resync");
	send(0, EV_KEY, KEY_ENTER, 0);
	send(0, EV_SYN, SYN_REPORT, 0);
	expect(kbd, (const struct vin_event[]){ { EV_KEY, KEY_ENTER, 0 }, { EV_SYN, SYN_REPORT, 0 } }, 2, "enter");
}

static void status(struct drv *d, uint16_t type, uint16_t code, uint32_t value)
{
	struct vin_event e = { htole16(type), htole16(code), htole32(value) };
	struct vuf_buf b = { d->status, 8 };
	uint32_t id, len;
	vuf_gpa_write(d->f, d->status, &e, sizeof(e));
	vuf_vq_add(d->stq, &b, 1, NULL, 0, false);
	vuf_vq_kick(d->stq);
	vuf_vq_wait_used(d->stq, &id, &len, 2000);
}

/* LEDs the guest sets reach the device; what it does not have is not written. */
static void test_leds(struct drv *kbd)
{
	struct input_event ev, syn;
	status(kbd, EV_LED, LED_CAPSL, 1);
	bool ok = evdev_mock_recv(mock, 0, &ev, 2000) == 1 && evdev_mock_recv(mock, 0, &syn, 2000) == 1;
	CHECK(ok && ev.type == EV_LED && ev.code == LED_CAPSL && ev.value == 1 && syn.type == EV_SYN &&
	      syn.code == SYN_REPORT, "status-led-written-back");
	status(kbd, EV_LED, LED_KANA, 1);    /* the keyboard has no such LED */
	status(kbd, EV_KEY, KEY_A, 1);       /* not a status event */
	status(kbd, EV_LED, LED_NUML, 0);
	ok = evdev_mock_recv(mock, 0, &ev, 2000) == 1 && evdev_mock_recv(mock, 0, &syn, 2000) == 1;
	CHECK(ok && ev.type == EV_LED && ev.code == LED_NUML && ev.value == 0, "status-foreign-events-dropped");
}

/* Pages of a ring's used ring marked in the log. */
static unsigned used_pages_marked(const struct vuf_log *log, const struct vuf_vq *vq)
{
	return vuf_log_count_range(log, vq->used_gpa, 6 + 8 * vq->num);
}

/*
 * A driver with VHOST_F_LOG_ALL and a log, four event buffers on pages of their
 * own: a two-event frame marks the two buffers it filled and the event queue's
 * used ring, nothing else; a status (LED) buffer, which the device only reads,
 * marks nothing but the status queue's used ring.
 */
static void test_dirty_log(const char *sock)
{
	const uint64_t f_log = 1ull << VHOST_F_LOG_ALL, pf_log = 1ull << VU_PF_LOG_SHMFD;
	struct vuf_log log = { .fd = -1 };
	uint64_t ev[4];
	struct drv d;
	bool ok;

	if (!CHECK(drv_open_with(&d, sock, f_log, pf_log) && (d.f->features & f_log) &&
		   (d.f->protocol_features & pf_log) && vuf_log_init(&log, 4096), "log-setup"))
		goto out;
	ok = vuf_log_send(d.f, &log) == 0 && vuf_log_ring(d.evq) == 0 && vuf_log_ring(d.stq) == 0;
	d.status = vuf_alloc(d.f, VU_LOG_PAGE, VU_LOG_PAGE);
	for (unsigned i = 0; ok && i < 4; i++) {
		struct vuf_buf b = { ev[i] = vuf_alloc(d.f, VU_LOG_PAGE, VU_LOG_PAGE), 8 };
		ok = b.gpa && d.status && vuf_vq_add(d.evq, NULL, 0, &b, 1, false) >= 0;
	}
	if (!CHECK(ok && vuf_vq_kick(d.evq) == 0, "log-base-rings-and-buffers"))
		goto out;
	send(0, EV_KEY, KEY_B, 1);
	send(0, EV_SYN, SYN_REPORT, 0);
	const struct vin_event k[] = { { EV_KEY, KEY_B, 1 }, { EV_SYN, SYN_REPORT, 0 } };
	CHECK(expect(&d, k, 2, "logged keyboard"), "log-events-delivered");
	CHECK(vuf_log_marked(&log, ev[0]) && vuf_log_marked(&log, ev[1]), "log-event-buffers-marked");
	CHECK(!vuf_log_marked(&log, ev[2]) && !vuf_log_marked(&log, ev[3]), "log-unused-buffers-not-marked");
	unsigned used = used_pages_marked(&log, d.evq);
	CHECK(used >= 1, "log-event-used-ring-marked");
	CHECK_EQ(vuf_log_count(&log) - used, 2, "log-events-mark-nothing-else");

	vuf_log_clear(&log);
	struct input_event led, syn;
	status(&d, EV_LED, LED_CAPSL, 0);
	CHECK(evdev_mock_recv(mock, 0, &led, 2000) == 1 && evdev_mock_recv(mock, 0, &syn, 2000) == 1 &&
	      led.type == EV_LED, "log-status-led-written");
	CHECK(!vuf_log_marked(&log, d.status), "log-status-buffer-not-marked");
	used = used_pages_marked(&log, d.stq);
	CHECK(used >= 1 && vuf_log_count(&log) == used, "log-status-marks-only-its-used-ring");
out:
	vuf_log_free(&log);
	drv_close(&d);
}

/* ---- devices that come and go ----------------------------------------------------- */

/* Runs the back-end to completion (it must not serve): exit status, or -1. */
static int run_to_exit(const char *evdev_path)
{
	char opt[256], sock[128];
	snprintf(opt, sizeof(opt), "--evdev-path=%s", evdev_path);
	snprintf(sock, sizeof(sock), "%s/never.sock", dir);
	const char *bin = getenv("VHOSTBOX") ? getenv("VHOSTBOX") : "./vhostbox";
	pid_t pid = fork();
	if (pid == 0) {
		unsetenv("LD_PRELOAD"); /* the real /dev: its /dev/null */
		execl(bin, bin, "input", "--socket-path", sock, opt, (char *)NULL);
		_exit(127);
	}
	int st;
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return -1;
	struct stat sb;
	return stat(sock, &sb) == 0 ? -2 : WEXITSTATUS(st);
}

static void test_not_devices(void)
{
	char path[160];
	CHECK_EQ(run_to_exit("/dev/null"), 1, "open-not-evdev-fails");
	CHECK_EQ(run_to_exit("/tmp"), 1, "open-directory-fails");
	snprintf(path, sizeof(path), "%s/plain-file", dir);
	FILE *f = fopen(path, "w");
	if (f)
		fclose(f);
	CHECK_EQ(run_to_exit(path), 1, "open-plain-file-fails");
	CHECK_EQ(run_to_exit("/dev/input/event15"), 1, "open-missing-fails");
}

/* Without --reconnect-device an unplugged device ends the program with status 1. */
static void test_gone_exits(void)
{
	const char *sock = sock_path("gone");
	static const char *const args[] = { "--evdev-path=/dev/input/event3", NULL };
	struct drv d;
	if (evdev_mock_add(mock, 3, &evdev_mock_mouse, NULL) < 0) {
		CHECK(false, "gone-exits: cannot add the device");
		return;
	}
	struct vuf_backend *be = vuf_backend_start("input", args, sock);
	bool ok = be && drv_open(&d, sock, true);
	evdev_mock_remove(mock, 3);
	for (int i = 0; i < 100 && vuf_backend_alive(be); i++)
		usleep(20000);
	CHECK(ok && !vuf_backend_alive(be), "gone-exits");
	CHECK_EQ(vuf_backend_stop(be, 1000), 1, "gone-exit-status");
	drv_close(&d);
}

/*
 * The test build of the back-end next to this test (build[/asan]/test/vhostbox-selftest):
 * its allowlist also lets umockdev's preloaded library do what it does when a node
 * is opened (check paths, connect to its ioctl socket), which the shipped list
 * refuses. Reopening a node confined is then tested with everything else as shipped.
 */
static const char *selftest_binary(void)
{
	static char path[4096];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 32);

	if (n <= 0)
		return NULL;
	path[n] = 0;
	strcpy(strrchr(path, '/') + 1, "vhostbox-selftest");
	return access(path, X_OK) == 0 ? path : NULL;
}

/* With --reconnect-device, keys held are released, and the device is used again when back. */
static void test_reconnect(void)
{
	const char *sock = sock_path("again");
	static const char *const args[] = { "--evdev-path=/dev/input/by-id/" KBD_LINK, "--reconnect-device", NULL };
	static const char *const args_unconfined[] = { "--evdev-path=/dev/input/by-id/" KBD_LINK, "--reconnect-device",
						       "--sandbox=none", NULL };
	struct drv d;
	if (evdev_mock_add(mock, 4, &evdev_mock_keyboard, KBD_LINK) < 0) {
		CHECK(false, "reconnect: cannot add the device");
		return;
	}
	/* Confined by default (seccomp: the path is opened again), with the test build's umockdev allowance. */
	const char *selftest = selftest_binary();
	char *saved = getenv("VHOSTBOX") ? strdup(getenv("VHOSTBOX")) : NULL;
	if (selftest)
		setenv("VHOSTBOX", selftest, 1);
	else
		check_note("reconnect: no vhostbox-selftest next to this test: --sandbox=none");
	struct vuf_backend *be = vuf_backend_start("input", selftest ? args : args_unconfined, sock);
	if (saved)
		setenv("VHOSTBOX", saved, 1);
	else
		unsetenv("VHOSTBOX");
	free(saved);
	if (!be || !drv_open(&d, sock, false)) {
		CHECK(false, "reconnect: back-end start: %s", d.f ? vuf_error(d.f) : "no connection");
		vuf_backend_stop(be, 1000);
		return;
	}
	struct cfg c;
	int n = cfg_read(&d, CFG_ID_NAME, 0, &c);
	CHECK(n == (int)strlen(evdev_mock_keyboard.name), "open-by-id-link");
	post(&d, NBUF);
	send(4, EV_KEY, KEY_LEFTSHIFT, 1);
	send(4, EV_SYN, SYN_REPORT, 0);
	bool ok = expect(&d, (const struct vin_event[]){ { EV_KEY, KEY_LEFTSHIFT, 1 }, { EV_SYN, SYN_REPORT, 0 } },
			 2, "shift");
	evdev_mock_remove(mock, 4);
	CHECK(ok && expect(&d, (const struct vin_event[]){ { EV_KEY, KEY_LEFTSHIFT, 0 }, { EV_SYN, SYN_REPORT, 0 } },
			   2, "release") && vuf_backend_alive(be), "reconnect-releases-held-keys");
	usleep(300000);
	/* Back under the same stable name, as a new node. */
	ok = vuf_backend_alive(be) && evdev_mock_add(mock, 5, &evdev_mock_keyboard, KBD_LINK) == 0;
	usleep(600000); /* the back-end looks every 250 ms */
	send(5, EV_KEY, KEY_1, 1);
	send(5, EV_SYN, SYN_REPORT, 0);
	CHECK(ok && expect(&d, (const struct vin_event[]){ { EV_KEY, KEY_1, 1 }, { EV_SYN, SYN_REPORT, 0 } }, 2,
			   "after reconnect"), "reconnect-events-flow-again");
	drv_close(&d);
	CHECK_EQ(vuf_backend_stop(be, 2000), 0, "reconnect-sigterm-exit-0");
}

static bool built_with_input(void)
{
	char line[256];
	const char *bin = getenv("VHOSTBOX") ? getenv("VHOSTBOX") : "./vhostbox";
	snprintf(line, sizeof(line), "'%s' --list 2>/dev/null | grep -q '^input\\b'", bin);
	return system(line) == 0;
}

/* umockdev emulates the devices through LD_PRELOAD: no use on a binary without a dynamic loader. */
static bool dynamically_linked(void)
{
	const char *bin = getenv("VHOSTBOX") ? getenv("VHOSTBOX") : "./vhostbox";
	FILE *f = fopen(bin, "rb");
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	bool interp = false;

	if (f && fread(&eh, sizeof(eh), 1, f) == 1)
		for (unsigned i = 0; i < eh.e_phnum && !interp; i++)
			interp = fseek(f, (long)(eh.e_phoff + (uint64_t)i * eh.e_phentsize), SEEK_SET) == 0 &&
				 fread(&ph, sizeof(ph), 1, f) == 1 && ph.p_type == PT_INTERP;
	if (f)
		fclose(f);
	return interp;
}

int main(void)
{
	if (!built_with_input()) {
		SKIP("input", "the binary was built without the input personality (libevdev missing)");
		return 0;
	}
	if (!dynamically_linked()) {
		SKIP("input", "the binary is statically linked: umockdev's LD_PRELOAD cannot reach it "
		     "(test/guest/t-static-input.sh tests it)");
		return 0;
	}
	if (!mkdtemp(dir))
		return 1;
	mock = evdev_mock_new();
	if (!mock || evdev_mock_add(mock, 0, &evdev_mock_keyboard, NULL) < 0 ||
	    evdev_mock_add(mock, 1, &evdev_mock_mouse, NULL) < 0 || evdev_mock_add(mock, 2, &evdev_mock_tablet, NULL) < 0) {
		CHECK(false, "umockdev-testbed");
		return check_exit();
	}
	evdev_mock_env();

	/* One process, three sockets, three devices: options follow their socket. */
	const char *s0 = sock_path("kbd"), *s1 = sock_path("mouse"), *s2 = sock_path("tablet");
	char o1[128], o2[128];
	snprintf(o1, sizeof(o1), "--socket-path=%s", s1);
	snprintf(o2, sizeof(o2), "--socket-path=%s", s2);
	const char *const args[] = { "--evdev-path=/dev/input/event0", o1, "--evdev-path=/dev/input/event1", o2,
				     "--evdev-path=/dev/input/event2", "--no-grab", NULL };
	struct vuf_backend *be = vuf_backend_start("input", args, s0);
	struct drv kbd, mouse, tablet;
	if (!CHECK(be, "start-three-devices") || !CHECK(drv_open(&kbd, s0, true), "connect-keyboard") ||
	    !CHECK(drv_open(&mouse, s1, false), "connect-mouse") || !CHECK(drv_open(&tablet, s2, true), "connect-tablet")) {
		vuf_backend_stop(be, 1000);
		return check_exit();
	}
	uint64_t qn = 0;
	vuf_get_queue_num(kbd.f, &qn);
	CHECK_EQ(qn, 2, "two-queues");
	CHECK(kbd.f->offered_features & 1ull << VIRTIO_RING_F_EVENT_IDX, "event-idx-offered");
	check_ids("keyboard", &kbd, &evdev_mock_keyboard);
	check_ids("mouse", &mouse, &evdev_mock_mouse);
	check_ids("tablet", &tablet, &evdev_mock_tablet);

	test_order(&kbd, &mouse);
	test_whole_frames(&kbd);
	/* A fresh driver for the queue test: it starts with no buffers posted. */
	drv_close(&kbd);
	if (CHECK(drv_open(&kbd, s0, true), "reconnect-keyboard-driver")) {
		test_queue_full(&kbd);
		test_syn_dropped(&kbd);
		test_leds(&kbd);
	}
	drv_close(&kbd);
	test_dirty_log(s0);
	drv_close(&mouse);
	drv_close(&tablet);
	CHECK_EQ(vuf_backend_stop(be, 2000), 0, "sigterm-exit-0");

	test_not_devices();
	test_gone_exits();
	test_reconnect();

	if (access("/dev/uinput", W_OK) != 0)
		SKIP("uinput", "no writable /dev/uinput here: only the umockdev-emulated devices were used");
	else
		SKIP("uinput", "the uinput variant of these tests is not written yet");
	evdev_mock_free(mock);
	return check_exit();
}
