/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Inside a test guest (test/guest/t-static-input.sh): a real kernel evdev device
 * for vhost-user-input and the driver that reads it through the back-end.
 *
 *   input-uinput SOCKET
 *   input-uinput --keyboards N     (N keyboards, their nodes printed, nothing else)
 *
 * Creates a uinput keyboard, prints "UINPUT-NODE /dev/input/eventN", waits (10 s)
 * for a back-end to listen on SOCKET (the script starts it on that node), connects
 * as its front-end (test/frontend.c), and prints what a virtio-input driver sees:
 *   GUEST-RESULT: input-name NAME             the config space's ID_NAME
 *   GUEST-RESULT: input-events T C V,...      events after a key press and release
 * then keeps the device (and the connection) until it is killed. Exits 1 with a
 * line on stderr when it cannot get that far; the script compares the results.
 */
#include <endian.h>
#include <fcntl.h>
#include <linux/uinput.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test/frontend.h"

#define NAME "vhostbox uinput keyboard"
#define NBUF 16
#define CONFIG_SIZE 136
#define CFG_ID_NAME 1

static int die(const char *what)
{
	fprintf(stderr, "input-uinput: %s\n", what);
	return 1;
}

static int emit(int fd, uint16_t type, uint16_t code, int32_t value)
{
	struct input_event e = { .type = type, .code = code, .value = value };
	return write(fd, &e, sizeof(e)) == sizeof(e) ? 0 : -1;
}

/* The uinput keyboard's /dev/input/eventN, from its sysfs directory. */
static int event_node(int fd, char *node, size_t size)
{
	char sys[64], path[160];

	if (ioctl(fd, UI_GET_SYSNAME(sizeof(sys)), sys) < 0)
		return -1;
	for (int i = 0; i < 64; i++) {
		snprintf(path, sizeof(path), "/sys/devices/virtual/input/%s/event%d", sys, i);
		if (access(path, F_OK) == 0) {
			snprintf(node, size, "/dev/input/event%d", i);
			return 0;
		}
	}
	return -1;
}

/* Creates a uinput keyboard and prints "UINPUT-NODE /dev/input/eventN": its fd, or -1. */
static int create_keyboard(void)
{
	int ui = open("/dev/uinput", O_WRONLY | O_CLOEXEC);
	struct uinput_setup setup = { .id = { .bustype = BUS_VIRTUAL, .vendor = 0x1234, .product = 0x5678 } };
	char node[64];

	snprintf(setup.name, sizeof(setup.name), NAME);
	if (ui < 0 || ioctl(ui, UI_SET_EVBIT, EV_KEY) < 0 || ioctl(ui, UI_SET_KEYBIT, KEY_A) < 0 ||
	    ioctl(ui, UI_SET_KEYBIT, KEY_B) < 0 || ioctl(ui, UI_DEV_SETUP, &setup) < 0 ||
	    ioctl(ui, UI_DEV_CREATE) < 0)
		return die("cannot create a uinput keyboard"), -1;
	for (int i = 0; event_node(ui, node, sizeof(node)) < 0; i++) {
		if (i == 50)
			return die("the uinput keyboard has no event node"), -1;
		usleep(100000);
	}
	printf("UINPUT-NODE %s\n", node);
	fflush(stdout);
	return ui;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--keyboards")) {
		/* Only devices (for the footprint): kept until killed. */
		for (int n = atoi(argv[2]); n > 0; n--)
			if (create_keyboard() < 0)
				return 1;
		pause();
		return 0;
	}
	if (argc != 2)
		return die("usage: input-uinput SOCKET | input-uinput --keyboards N");

	int ui = create_keyboard();
	if (ui < 0)
		return 1;

	struct stat st;
	for (int i = 0; stat(argv[1], &st) < 0 || !S_ISSOCK(st.st_mode); i++) {
		if (i == 100)
			return die("no back-end listening");
		usleep(100000);
	}
	struct vuf *f = vuf_connect(argv[1], 3000);
	const uint64_t features = 1ull << VIRTIO_F_VERSION_1 | 1ull << VHOST_USER_F_PROTOCOL_FEATURES;
	const uint64_t pf = 1ull << VU_PF_MQ | 1ull << VU_PF_REPLY_ACK | 1ull << VU_PF_CONFIG;
	if (!f || vuf_mem_init(f, 1, 1 << 20, 0) < 0 || vuf_negotiate(f, features, pf) < 0)
		return die("cannot connect and negotiate");

	/* virtio-input config: select ID_NAME, read the string back. */
	struct {
		uint8_t select, subsel, size, reserved[5];
		char u[128];
	} cfg = { 0 };
	uint8_t sel[2] = { CFG_ID_NAME, 0 };
	if (vuf_set_config(f, 0, 2, sel) < 0 ||
	    vuf_get_config(f, 0, CONFIG_SIZE, &cfg) != VU_CONFIG_HDR_SIZE + CONFIG_SIZE)
		return die("cannot read the config space");
	printf("GUEST-RESULT: input-name %.*s\n", cfg.size, cfg.u);

	struct vuf_vq *evq = vuf_vq_setup(f, 0, NBUF, 0), *stq = vuf_vq_setup(f, 1, NBUF, 0);
	uint64_t bufs = vuf_alloc(f, NBUF * 8, 8);
	if (!evq || !stq || !bufs)
		return die("cannot set up the queues");
	for (unsigned i = 0; i < NBUF; i++) {
		struct vuf_buf b = { bufs + i * 8, 8 };
		vuf_vq_add(evq, NULL, 0, &b, 1, false);
	}
	vuf_vq_kick(evq);

	if (emit(ui, EV_KEY, KEY_A, 1) < 0 || emit(ui, EV_SYN, SYN_REPORT, 0) < 0 ||
	    emit(ui, EV_KEY, KEY_A, 0) < 0 || emit(ui, EV_SYN, SYN_REPORT, 0) < 0)
		return die("cannot write events to uinput");
	printf("GUEST-RESULT: input-events ");
	for (int n = 0; n < 4; n++) {
		uint32_t id, len;
		struct { uint16_t type, code; uint32_t value; } e;
		if (vuf_vq_wait_used(evq, &id, &len, 5000) < 0 || len != 8)
			break;
		vuf_gpa_read(f, evq->desc[id].addr, &e, sizeof(e));
		printf("%u %u %u,", le16toh(e.type), le16toh(e.code), le32toh(e.value));
	}
	printf("\n");
	fflush(stdout);
	/* The device lives while this runs: the script looks at the back-end, then ends us. */
	pause();
	return 0;
}
