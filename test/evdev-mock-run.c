/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * evdev-mock-run: runs a command with emulated evdev devices (test/evdev-mock.c)
 * and drives them from stdin, for shell tests and the demo.
 *
 *   evdev-mock-run --device N=KIND[,LINK]... -- COMMAND [ARG]...
 *
 * KIND is keyboard, mouse or tablet; the device is /dev/input/eventN inside the
 * command's view (and /dev/input/by-id/LINK if given). Lines on stdin:
 *   send N TYPE CODE VALUE      an event from device N (numbers, as in linux/input.h)
 *   remove N                    unplug device N
 *   add N KIND                  plug it (back) in
 * Writes the command makes to a device (LEDs) are printed as "write N TYPE CODE VALUE".
 * End of stdin stops the command with SIGTERM. The exit status is the command's.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test/evdev-mock.h"

#define MAX_DEVICES 16

static int usage(void)
{
	fprintf(stderr, "usage: evdev-mock-run --device N=KIND[,LINK]... -- COMMAND [ARG]...\n");
	return 2;
}

static int add(struct evdev_mock *m, bool *present, const char *arg)
{
	char kind[32] = "", link[128] = "";
	unsigned n;

	if (sscanf(arg, "%u=%31[a-z],%127s", &n, kind, link) < 2 || n >= MAX_DEVICES ||
	    !evdev_mock_spec_find(kind)) {
		fprintf(stderr, "evdev-mock-run: bad device '%s'\n", arg);
		return -1;
	}
	if (evdev_mock_add(m, n, evdev_mock_spec_find(kind), *link ? link : NULL) < 0) {
		fprintf(stderr, "evdev-mock-run: cannot add device %u\n", n);
		return -1;
	}
	present[n] = true;
	return 0;
}

static void command(struct evdev_mock *m, bool *present, const char *line)
{
	unsigned n, type, code;
	int value;
	char kind[32], spec[64];

	if (sscanf(line, "send %u %u %u %d", &n, &type, &code, &value) == 4) {
		if (evdev_mock_send(m, n, type, code, value) < 0)
			fprintf(stderr, "evdev-mock-run: send to device %u failed\n", n);
	} else if (sscanf(line, "remove %u", &n) == 1 && n < MAX_DEVICES) {
		evdev_mock_remove(m, n);
		present[n] = false;
	} else if (sscanf(line, "add %u %31s", &n, kind) == 2) {
		snprintf(spec, sizeof(spec), "%u=%s", n, kind);
		add(m, present, spec);
	} else if (line[0] != '\n' && line[0] != '#') {
		fprintf(stderr, "evdev-mock-run: unknown command: %s", line);
	}
}

/* Prints what the command wrote to the devices. */
static void show_writes(struct evdev_mock *m, const bool *present)
{
	struct input_event ev;

	for (unsigned n = 0; n < MAX_DEVICES; n++)
		while (present[n] && evdev_mock_recv(m, n, &ev, 0) == 1)
			printf("write %u %u %u %d\n", n, ev.type, ev.code, ev.value);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	bool present[MAX_DEVICES] = { false };
	struct evdev_mock *m = evdev_mock_new();
	int i, status;

	if (!m)
		return 1;
	for (i = 1; i < argc && strcmp(argv[i], "--"); i++) {
		if (strncmp(argv[i], "--device=", 9) == 0) {
			if (add(m, present, argv[i] + 9) < 0)
				return 1;
		} else if (!strcmp(argv[i], "--device") && i + 1 < argc) {
			if (add(m, present, argv[++i]) < 0)
				return 1;
		} else {
			return usage();
		}
	}
	if (i + 1 >= argc)
		return usage();
	evdev_mock_env();
	pid_t pid = fork();
	if (pid == 0) {
		execvp(argv[i + 1], argv + i + 1);
		fprintf(stderr, "evdev-mock-run: cannot run %s: %s\n", argv[i + 1], strerror(errno));
		_exit(127);
	}
	if (pid < 0)
		return 1;

	char line[256];
	bool input_open = true;
	/* Unbuffered: poll() must see every line stdio has not taken yet. */
	setvbuf(stdin, NULL, _IONBF, 0);
	for (;;) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
		struct pollfd p = { .fd = 0, .events = POLLIN };
		if (input_open && poll(&p, 1, 50) > 0) {
			if (fgets(line, sizeof(line), stdin))
				command(m, present, line);
			else {
				input_open = false;
				kill(pid, SIGTERM);
			}
		} else if (!input_open) {
			usleep(50000);
		}
		show_writes(m, present);
	}
	evdev_mock_free(m);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
