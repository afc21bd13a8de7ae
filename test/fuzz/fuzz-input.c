/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target: the virtio-input device on an evdev device emulated by
 * umockdev (test/evdev-mock.c, as t-input uses it), driven through the device
 * harness (fuzz-device.h): the event queue, the status queue (LEDs written back
 * to the host device) and the config space. The header's device byte picks the
 * host device: even a keyboard (LEDs, scan codes), odd a tablet (absolute axes).
 * FZ_OP_DEVICE: a count (% 16) of host events (u8 type, u16 code, u32 value),
 * written to the device's end of its pty as the kernel would hand them on.
 *
 * umockdev's preload library must be in the process that opens the device,
 * and its testbed in another one (the testbed answers the preloaded process's
 * ioctls; both in one process, the testbed's files go missing). So the first
 * process sets up the testbed and runs the fuzzer as its child, preloaded, with
 * the ptys' far ends inherited, and a second opening of each device's own end
 * (to see what it has not read yet); the child's libFuzzer jobs inherit them again.
 */
#include <fcntl.h>
#include <linux/input.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test/evdev-mock.h"
#include "test/fuzz/fuzz-device.h"

#define FD_ENV "VU_FUZZ_EVDEV_FDS"

extern const struct vu_device_type vu_dev_input;

static int host_fd[2] = { -1, -1 };   /* our end of each emulated device */
static int peek_fd[2] = { -1, -1 };   /* the device's end, opened again: FIONREAD */

/* The testbed's process: sets up both devices, runs the fuzzer, passes on its status. */
static void run_testbed(char **argv)
{
	struct evdev_mock *m = evdev_mock_new();
	char fds[64];

	if (!m || evdev_mock_add(m, 0, &evdev_mock_keyboard, NULL) < 0 ||
	    evdev_mock_add(m, 1, &evdev_mock_tablet, NULL) < 0) {
		fprintf(stderr, "fuzz-input: cannot emulate evdev devices\n");
		exit(1);
	}
	/* Without close-on-exec: the fuzzer's processes write events to these and watch them arrive. */
	snprintf(fds, sizeof(fds), "%d,%d,%d,%d", dup(evdev_mock_fd(m, 0)), dup(evdev_mock_fd(m, 1)),
		 open(ptsname(evdev_mock_fd(m, 0)), O_RDONLY | O_NOCTTY),
		 open(ptsname(evdev_mock_fd(m, 1)), O_RDONLY | O_NOCTTY));
	setenv(FD_ENV, fds, 1);
	evdev_mock_env();
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	int status = 1;
	while (pid > 0 && waitpid(pid, &status, 0) < 0)
		;
	evdev_mock_free(m);
	exit(pid < 0 ? 1 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *fds = getenv(FD_ENV);

	if (!fds)
		run_testbed(*argv);
	if (sscanf(fds, "%d,%d,%d,%d", &host_fd[0], &host_fd[1], &peek_fd[0], &peek_fd[1]) != 4 ||
	    peek_fd[0] < 0 || peek_fd[1] < 0)
		abort();
	/* Between steps nothing may wait: a full pty drops events, an empty one reads nothing. */
	for (int i = 0; i < 2; i++)
		fcntl(host_fd[i], F_SETFL, fcntl(host_fd[i], F_GETFL) | O_NONBLOCK);
	return 0;
}

static unsigned which(const struct fz_port *p)
{
	return p->hdr->device & 1;
}

static int prepare(struct fz_port *p)
{
	return fz_set_option(p->dev, which(p) ? "evdev-path=/dev/input/event1" : "evdev-path=/dev/input/event0");
}

static void host_events(struct fz_port *p, struct fz_input *in)
{
	unsigned n = fz_u8(in) % 16;
	struct input_event ev[16] = { 0 };

	for (unsigned i = 0; i < n; i++) {
		ev[i].type = fz_u8(in);
		ev[i].code = fz_u16(in);
		ev[i].value = (int32_t)fz_u32(in);
	}
	/*
	 * The pty hands them to the device's end a moment later (a kernel worker): they
	 * are waited for, else a loaded machine would deliver them a step or two late.
	 * Nothing reads that end meanwhile: the device reads on the loop, after this.
	 */
	int before = 0, now = 0;
	ioctl(peek_fd[which(p)], FIONREAD, &before);
	ssize_t written = n ? write(host_fd[which(p)], ev, n * sizeof(ev[0])) : 0;
	for (unsigned i = 0; i < 2000 && written > 0 && now < before + written; i++) {
		ioctl(peek_fd[which(p)], FIONREAD, &now);
		if (now < before + written)
			usleep(10);
	}
}

/* LEDs the device writes back: read and dropped, so the pty never fills up. */
static bool drain_host(struct fz_port *p)
{
	char buf[4096];

	while (read(host_fd[which(p)], buf, sizeof(buf)) > 0)
		;
	return false;
}

static const struct fz_target input = {
	.type = &vu_dev_input,
	.nports = 1,
	.settle_ns = 100000,
	.prepare = prepare,
	.op = host_events,
	.service = drain_host,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fz_run(&input, data, size);
}
