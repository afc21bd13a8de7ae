/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vhostbox: every vhost-user device back-end in one program. The name it is
 * started as picks the device (vhost-user-rng → rng); `vhostbox rng ARGS` does
 * the same. This file only dispatches.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "json/describe.h"
#include "json/discover.h"
#include "proto/backend.h"
#include "proto/log.h"
#include "proto/manual.h"

#define VU_PERSONALITY(n) extern const struct vu_device_type vu_dev_##n;
#include "personalities.h"
#undef VU_PERSONALITY
#define VU_PERSONALITY(n) &vu_dev_##n,
static const struct vu_device_type *const personalities[] = {
#include "personalities.h"
};
#undef VU_PERSONALITY
#define N_PERSONALITIES (sizeof(personalities) / sizeof(personalities[0]))

#define PREFIX "vhost-user-"

static const struct vu_device_type *find(const char *name)
{
	for (size_t i = 0; i < N_PERSONALITIES; i++) {
		const struct vu_device_type *t = personalities[i];
		if (!strcmp(name, t->name))
			return t;
		for (const char *const *a = t->aliases; a && *a; a++)
			if (!strcmp(name, *a))
				return t;
	}
	return NULL;
}

static void usage(FILE *out)
{
	fprintf(out, "Usage: vhostbox PERSONALITY [OPTION]...   (or run as vhost-user-PERSONALITY)\n"
		     "       vhostbox --list                      one line each: NAME TYPE [ALIAS]...\n"
		     "       vhostbox --discover TYPE [--feature F]...\n"
		     "       vhostbox --discovery-file NAME BINARY  the JSON file QEMU's vhost-user.json\n"
		     "                                            describes, for NAME installed as BINARY\n"
		     "       vhostbox --man | --help | --version\n\n"
		     "Personalities:\n");
	for (size_t i = 0; i < N_PERSONALITIES; i++)
		fprintf(out, "  %-8s %s\n", personalities[i]->name, personalities[i]->summary);
	fprintf(out, "\n`vhostbox PERSONALITY --help` lists the options of each.\n");
}

/* The conventions promise fds 0-2 exist; make sure no socket of ours lands there. */
static void ensure_std_fds(void)
{
	while (fcntl(2, F_GETFD) < 0) {
		int fd = open("/dev/null", O_RDWR);
		if (fd < 0 || fd > 2)
			break;
	}
}

static int run(const struct vu_device_type *t, int argc, char **argv)
{
	static char name[64];

	snprintf(name, sizeof(name), PREFIX "%s", t->name);
	vu_log_set_name(name);
	return vu_backend_main(t, argc, argv);
}

int main(int argc, char **argv)
{
	const char *self = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];

	ensure_std_fds();
	if (!strncmp(self, PREFIX, strlen(PREFIX))) {
		const struct vu_device_type *t = find(self + strlen(PREFIX));
		if (!t) {
			fprintf(stderr, "vhostbox: no personality is called %s\n", self);
			return VU_EXIT_USAGE;
		}
		return run(t, argc, argv);
	}

	const char *cmd = argc > 1 ? argv[1] : NULL;
	if (!cmd) {
		usage(stderr);
		return VU_EXIT_USAGE;
	}
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "--man")) {
		vu_manual_vhostbox(personalities, N_PERSONALITIES, stdout);
		return 0;
	}
	if (!strcmp(cmd, "--version")) {
		printf("vhostbox %s\n", VHOSTBOX_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "--list")) {
		for (size_t i = 0; i < N_PERSONALITIES; i++) {
			const struct vu_device_type *t = personalities[i];
			printf("%s %s", t->name, t->schema_type);
			for (const char *const *a = t->aliases; a && *a; a++)
				printf(" %s", *a);
			putchar('\n');
		}
		return 0;
	}
	if (!strcmp(cmd, "--discovery-file")) {
		const struct vu_device_type *t = argc == 4 ? find(argv[2]) : NULL;
		if (!t || argv[3][0] != '/') {
			fprintf(stderr, "vhostbox: --discovery-file needs a personality and an absolute path\n");
			return VU_EXIT_USAGE;
		}
		return vu_describe_print(t, argv[3]) < 0 ? 1 : 0;
	}
	if (!strncmp(cmd, "--discover", strlen("--discover")))
		return vu_discover_main(argc, argv);

	const struct vu_device_type *t = find(cmd);
	if (!t) {
		fprintf(stderr, "vhostbox: unknown personality or option '%s' (see --help)\n", cmd);
		return VU_EXIT_USAGE;
	}
	return run(t, argc - 1, argv + 1);
}
