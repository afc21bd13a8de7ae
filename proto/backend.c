/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caps/caps.h"
#include "proto/backend.h"
#include "proto/listen.h"
#include "proto/log.h"
#include "proto/session.h"

enum { OPT_SOCKET_PATH = 1, OPT_FD, OPT_SOCKET_MODE, OPT_HELP, OPT_VERSION, OPT_VERBOSE,
       OPT_PRINT_CAPS, OPT_DEVICE = 1000 };

static const struct option common_options[] = {
	{ "socket-path", required_argument, NULL, OPT_SOCKET_PATH },
	{ "fd", required_argument, NULL, OPT_FD },
	{ "socket-mode", required_argument, NULL, OPT_SOCKET_MODE },
	{ "print-capabilities", no_argument, NULL, OPT_PRINT_CAPS },
	{ "verbose", no_argument, NULL, OPT_VERBOSE },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
};
#define N_COMMON (sizeof(common_options) / sizeof(common_options[0]))

struct backend {
	struct vu_loop *loop;
	struct vu_listener listener;
	struct vu_dev *dev;
	struct vu_session *session;
};

static void usage(const struct vu_device_type *t, FILE *out)
{
	fprintf(out,
		"Usage: %s [OPTION]...\n"
		"%s (vhost-user back-end, type \"%s\").\n\n"
		"  --socket-path=PATH      listen on this unix socket (created mode 0600)\n"
		"  --fd=FDNUM              serve this inherited socket (listening or connected)\n"
		"  --socket-mode=MODE      octal permissions for the socket file\n"
		"  --print-capabilities    print the back-end's capabilities as JSON and exit\n"
		"  --verbose               log every message\n"
		"  --help, --version\n",
		vu_log_name(), t->summary, t->schema_type);
	for (const struct vu_option *o = t->options; o && o->name; o++) {
		char left[64];
		snprintf(left, sizeof(left), "--%s%s%s", o->name, o->arg ? "=" : "", o->arg ? o->arg : "");
		fprintf(out, "  %-23s %s\n", left, o->help);
	}
	fprintf(out, "\nWithout --socket-path or --fd, a socket passed by systemd (LISTEN_FDS) is used.\n");
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "%s: ", vu_log_name());
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (see --help)\n");
	return VU_EXIT_USAGE;
}

static bool parse_uint(const char *s, int base, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	unsigned long v = strtoul(s, &end, base);
	if (!*s || *end || errno || v > max || *s == '-')
		return false;
	*out = v;
	return true;
}

static void on_session_end(void *opaque, struct vu_session *s);

static void on_connection(void *opaque, int fd, uint32_t events)
{
	struct backend *b = opaque;
	int conn = vu_listen_accept(&b->listener);

	if (conn < 0)
		return;
	/* One front-end at a time: the next waits in the backlog until this one leaves. */
	if (b->listener.fd >= 0)
		vu_loop_unwatch(b->loop, b->listener.fd);
	b->session = vu_session_new(b->loop, conn, b->dev, on_session_end, b);
	if (!b->session)
		on_session_end(b, NULL);
	else
		vu_info("front-end connected");
}

static void on_session_end(void *opaque, struct vu_session *s)
{
	struct backend *b = opaque;

	vu_session_free(s);
	b->session = NULL;
	if (b->listener.fd < 0)
		vu_loop_stop(b->loop); /* served the one connection we were given */
	else
		vu_loop_watch(b->loop, b->listener.fd, EPOLLIN, on_connection, b);
}

static int serve(struct backend *b)
{
	b->loop = vu_loop_new();
	if (!b->loop || vu_loop_catch_signals(b->loop) < 0) {
		vu_err("cannot set up the event loop");
		return 1;
	}
	if (b->dev->type->init && b->dev->type->init(b->dev, b->loop) < 0)
		return 1; /* the device said why */
	if (b->listener.fd >= 0)
		vu_loop_watch(b->loop, b->listener.fd, EPOLLIN, on_connection, b);
	else
		on_connection(b, -1, 0);
	vu_notify_ready();
	int sig = vu_loop_run(b->loop);
	if (sig > 0)
		vu_info("signal %d: shutting down", sig);
	return sig < 0 ? 1 : 0;
}

int vu_backend_main(const struct vu_device_type *t, int argc, char **argv)
{
	/* --print-capabilities wins over everything else on the line, even bad options. */
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--print-capabilities"))
			return vu_caps_print(t) < 0 ? 1 : 0;

	struct backend b = { .listener = { .fd = -1, .conn = -1 } };
	b.dev = vu_device_create(t);
	if (!b.dev) {
		vu_err("out of memory");
		return 1;
	}

	struct option opts[N_COMMON + 64 + 1];
	size_t n = 0;
	memcpy(opts, common_options, sizeof(common_options));
	n = N_COMMON;
	for (const struct vu_option *o = t->options; o && o->name && n < N_COMMON + 64; o++, n++)
		opts[n] = (struct option){ o->name, o->arg ? required_argument : no_argument, NULL,
					   OPT_DEVICE + (int)(o - t->options) };
	opts[n] = (struct option){ 0 };

	const char *socket_path = NULL;
	unsigned long fd = ULONG_MAX, mode = 0600;
	int c, status = 0;
	opterr = 0;
	optind = 1;
	while (!status && (c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (c) {
		case OPT_SOCKET_PATH: socket_path = optarg; break;
		case OPT_FD:
			if (!parse_uint(optarg, 10, INT_MAX, &fd))
				status = usage_error("--fd needs a file descriptor number, not '%s'", optarg);
			break;
		case OPT_SOCKET_MODE:
			if (!parse_uint(optarg, 8, 0777, &mode))
				status = usage_error("--socket-mode needs an octal mode, not '%s'", optarg);
			break;
		case OPT_VERBOSE: vu_log_set_verbose(true); break;
		case OPT_HELP: usage(t, stdout); status = -1; break;
		case OPT_VERSION: printf("vhostbox %s\n", VHOSTBOX_VERSION); status = -1; break;
		case ':': status = usage_error("option '%s' needs a value", argv[optind - 1]); break;
		case '?': status = usage_error("unknown option '%s'", argv[optind - 1]); break;
		default: {
			const struct vu_option *o = &t->options[c - OPT_DEVICE];
			if (t->set_option(b.dev, o, optarg) < 0)
				status = VU_EXIT_USAGE; /* set_option printed the one line */
		}
		}
	}
	if (!status && optind < argc)
		status = usage_error("unexpected argument '%s'", argv[optind]);
	if (!status && socket_path && fd != ULONG_MAX)
		status = usage_error("%s", "--socket-path and --fd are mutually exclusive");
	if (!status) {
		int r = 0;
		if (socket_path)
			r = vu_listen_path(&b.listener, socket_path, mode);
		else if (fd != ULONG_MAX)
			r = vu_listen_fd(&b.listener, (int)fd);
		else if ((r = vu_listen_systemd(&b.listener)) == 0)
			status = usage_error("%s", "one of --socket-path or --fd is needed (or systemd socket activation)");
		if (r < 0)
			status = 1;
	}
	if (!status)
		status = serve(&b);
	if (b.session)
		vu_session_free(b.session);
	vu_listen_close(&b.listener);
	if (t->destroy)
		t->destroy(b.dev);
	vu_loop_free(b.loop);
	return status < 0 ? 0 : status;
}
