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
#include "proto/loop.h"
#include "proto/manual.h"
#include "proto/sandbox.h"
#include "proto/session.h"
#include "proto/sigbus.h"

enum { OPT_SOCKET_PATH = 1, OPT_FD, OPT_SOCKET_MODE, OPT_HELP, OPT_MAN, OPT_VERSION, OPT_VERBOSE,
       OPT_PRINT_CAPS, OPT_SANDBOX, OPT_USER, OPT_GROUP, OPT_RLIMIT_NOFILE, OPT_DEVICE = 1000 };

/* The options every personality has: the back-end program conventions' and ours. */
static const struct vu_common_option common[] = {
	{ "socket-path", OPT_SOCKET_PATH, "PATH", "listen on this unix socket (created mode 0600)" },
	{ "fd", OPT_FD, "FDNUM", "serve this inherited socket (listening or connected)" },
	{ "socket-mode", OPT_SOCKET_MODE, "MODE", "octal permissions for the socket file" },
	{ "print-capabilities", OPT_PRINT_CAPS, NULL, "print the back-end's capabilities as JSON and exit" },
	{ "verbose", OPT_VERBOSE, NULL, "log every message" },
	{ "sandbox", OPT_SANDBOX, "MODE",
	  "confinement once serving: namespace (seccomp, namespaces, an empty root), chroot (seccomp, "
	  "chroot into the device's directory: fs), seccomp (a system call allowlist), none; default: the "
	  "strictest this device allows" },
	{ "user", OPT_USER, "USER", "serve as this user (name or uid) once set up" },
	{ "group", OPT_GROUP, "GROUP", "and this group (default: the user's)" },
	{ "rlimit-nofile", OPT_RLIMIT_NOFILE, "N", "limit open files to N" },
	{ "help", OPT_HELP, NULL, "print this help and exit" },
	{ "man", OPT_MAN, NULL, "print this help as a manual page (roff) and exit" },
	{ "version", OPT_VERSION, NULL, "print the version and exit" },
};
#define N_COMMON (sizeof(common) / sizeof(common[0]))

#define MAX_PORTS 64

/* One socket and the device instance behind it; a process may serve several. */
struct port {
	struct backend *b;
	const char *socket_path;   /* with mode, or */
	mode_t mode;
	int fd;
	struct vu_listener listener;
	struct vu_dev *dev;
	struct vu_session *session;
};

/* A device option as given on the command line; port -1: before any socket option. */
struct given_option {
	int port;
	const struct vu_option *opt;
	const char *arg;
};

struct backend {
	const struct vu_device_type *type;
	struct vu_loop *loop;
	struct port ports[MAX_PORTS];
	unsigned nports;
	unsigned serving;          /* ports that can still get a front-end */
	struct given_option given[256];
	unsigned ngiven;
	struct vu_sandbox sandbox;
};

static void usage(const struct vu_device_type *t, FILE *out)
{
	fprintf(out, "Usage: %s [OPTION]...\n%s (vhost-user back-end, type \"%s\").\n\n", vu_log_name(),
		t->summary, t->schema_type);
	for (size_t i = 0; i < N_COMMON; i++) {
		char left[64];
		snprintf(left, sizeof(left), "--%s%s%s", common[i].name, common[i].arg ? "=" : "",
			 common[i].arg ? common[i].arg : "");
		fprintf(out, "  %-23s %s\n", left, common[i].help);
	}
	/* The defaults are those of a device just created. */
	struct vu_dev *dev = vu_device_create(t);
	vu_option_help(t->options, dev, out);
	if (dev && t->destroy)
		t->destroy(dev);
	fprintf(out, "\nWithout --socket-path or --fd, a socket passed by systemd (LISTEN_FDS) is used.\n"
		     "Repeat --socket-path (or --fd) to serve several devices from one process: device\n"
		     "options after a socket option apply to that device, options before it to all.\n");
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
	struct port *p = opaque;
	int conn = vu_listen_accept(&p->listener);

	if (conn < 0)
		return;
	/* One front-end at a time: the next waits in the backlog until this one leaves. */
	if (p->listener.fd >= 0)
		vu_loop_unwatch(p->b->loop, p->listener.fd);
	p->session = vu_session_new(p->b->loop, conn, p->dev, on_session_end, p);
	if (!p->session)
		on_session_end(p, NULL);
	else
		vu_info("front-end connected");
}

static void on_session_end(void *opaque, struct vu_session *s)
{
	struct port *p = opaque;

	vu_session_free(s);
	p->session = NULL;
	if (p->listener.fd >= 0)
		vu_loop_watch(p->b->loop, p->listener.fd, EPOLLIN, on_connection, p);
	else if (--p->b->serving == 0)
		vu_loop_stop(p->b->loop); /* served every connection we were given */
}

/* Records the options of the command line; returns 0, -1 (done: help/version) or an exit status. */
static int parse(struct backend *b, int argc, char **argv)
{
	const struct vu_device_type *t = b->type;
	struct option opts[N_COMMON + 64 + 1];
	char shorts[2 + 2 * 64 + 1] = ":";   /* the device options' short names */
	size_t n = N_COMMON, ns = 1;
	bool by_path = false, by_fd = false;
	unsigned long fd, mode = 0600;
	int c;

	for (size_t i = 0; i < N_COMMON; i++)
		opts[i] = (struct option){ common[i].name, common[i].arg ? required_argument : no_argument, NULL,
					   common[i].id };
	/* A device option may not take a common option's name: getopt would give it to the common one. */
	for (const struct vu_option *o = t->options; o && o->name; o++)
		for (size_t i = 0; i < N_COMMON; i++)
			if (!strcmp(o->name, common[i].name)) {
				vu_err("internal: the device option --%s hides a common option", o->name);
				return 1;
			}
	for (const struct vu_option *o = t->options; o && o->name && n < N_COMMON + 64; o++, n++) {
		opts[n] = (struct option){ o->name, o->kind == VU_OPT_FLAG ? no_argument : required_argument,
					   NULL, OPT_DEVICE + (int)(o - t->options) };
		if (o->short_name) {
			shorts[ns++] = o->short_name;
			if (o->kind != VU_OPT_FLAG)
				shorts[ns++] = ':';
		}
	}
	opts[n] = (struct option){ 0 };

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, shorts, opts, NULL)) != -1) {
		struct port *p = &b->ports[b->nports];
		for (const struct vu_option *o = t->options; c > 0 && c < 128 && o && o->name; o++)
			if (o->short_name == c)
				c = OPT_DEVICE + (int)(o - t->options);
		switch (c) {
		case OPT_SOCKET_PATH:
		case OPT_FD:
			if (b->nports == MAX_PORTS)
				return usage_error("more than %s sockets", "64");
			*p = (struct port){ .b = b, .fd = -1, .listener = { .fd = -1, .conn = -1 } };
			if (c == OPT_SOCKET_PATH) {
				p->socket_path = optarg;
				by_path = true;
			} else {
				if (!parse_uint(optarg, 10, INT_MAX, &fd))
					return usage_error("--fd needs a file descriptor number, not '%s'", optarg);
				p->fd = (int)fd;
				by_fd = true;
			}
			b->nports++;
			break;
		case OPT_SOCKET_MODE:
			if (!parse_uint(optarg, 8, 0777, &mode))
				return usage_error("--socket-mode needs an octal mode, not '%s'", optarg);
			break;
		case OPT_VERBOSE: vu_log_set_level(VU_LOG_DEBUG); break;
		case OPT_SANDBOX:
		case OPT_USER:
		case OPT_GROUP:
		case OPT_RLIMIT_NOFILE: {
			const char *why = c == OPT_SANDBOX ? vu_sandbox_set_mode(&b->sandbox, optarg) :
					  c == OPT_USER    ? vu_sandbox_set_user(&b->sandbox, optarg) :
					  c == OPT_GROUP   ? vu_sandbox_set_group(&b->sandbox, optarg) :
							     vu_sandbox_set_nofile(&b->sandbox, optarg);
			if (why)
				return usage_error("%s", why);
			break;
		}
		case OPT_HELP: usage(t, stdout); return -1;
		case OPT_MAN: vu_manual_personality(t, common, N_COMMON, stdout); return -1;
		case OPT_VERSION: printf("vhostbox %s\n", VHOSTBOX_VERSION); return -1;
		case ':': return usage_error("option '%s' needs a value", argv[optind - 1]);
		case '?': return usage_error("unknown option '%s'", argv[optind - 1]);
		default:
			if (b->ngiven == sizeof(b->given) / sizeof(b->given[0]))
				return usage_error("%s", "too many options");
			b->given[b->ngiven++] = (struct given_option){
				.port = (int)b->nports - 1, .opt = &t->options[c - OPT_DEVICE], .arg = optarg };
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (by_path && by_fd)
		return usage_error("%s", "--socket-path and --fd are mutually exclusive");
	for (unsigned i = 0; i < b->nports; i++)
		b->ports[i].mode = mode;
	return 0;
}

/* Creates port i's device from the options that apply to it. */
static int create_device(struct backend *b, unsigned i)
{
	struct port *p = &b->ports[i];

	p->dev = vu_device_create(b->type);
	if (!p->dev) {
		vu_err("out of memory");
		return 1;
	}
	for (int pass = 0; pass < 2; pass++)
		for (unsigned g = 0; g < b->ngiven; g++)
			if (b->given[g].port == (pass ? (int)i : -1) &&
			    vu_option_set(p->dev, b->given[g].opt, b->given[g].arg) < 0)
				return VU_EXIT_USAGE; /* the one line is printed */
	return 0;
}

/* Sets up a port's socket, unless socket activation already did. */
static int open_socket(struct port *p)
{
	if (p->listener.fd >= 0 || p->listener.conn >= 0)
		return 0;
	if (p->socket_path)
		return vu_listen_path(&p->listener, p->socket_path, p->mode) < 0 ? 1 : 0;
	return vu_listen_fd(&p->listener, p->fd) < 0 ? 1 : 0;
}

/*
 * Hands the socket files over to the sandbox (it unlinks them at the end), then
 * confines the process; threads of worker loops start after that.
 */
static int confine(struct backend *b)
{
	const char *paths[MAX_PORTS + 16];
	/* The ports' sockets, and any a device listens on (vsock's host side). */
	unsigned n = vu_listen_paths(paths, sizeof(paths) / sizeof(paths[0]));

	vu_notify_open();
	if (vu_sandbox_enter(&b->sandbox, paths, n) < 0)
		return -1;
	if (b->sandbox.mode > VU_SANDBOX_NONE || b->sandbox.set_user)
		vu_listen_paths_handed_over();
	int r = vu_loop_release_threads();
	if (r < 0) {
		vu_err("cannot start worker threads: %s", strerror(-r));
		return -1;
	}
	return 0;
}

/* Devices first, sockets last, then confinement: whatever fails, fails before anything is served. */
static int serve(struct backend *b)
{
	b->loop = vu_loop_new();
	if (!b->loop || vu_loop_catch_signals(b->loop) < 0 || vu_sigbus_init(b->loop) < 0) {
		vu_err("cannot set up the event loop");
		return 1;
	}
	vu_loop_hold_threads();
	for (unsigned i = 0; i < b->nports; i++) {
		struct port *p = &b->ports[i];
		int r = b->type->init ? b->type->init(p->dev, b->loop) : 0;
		if (r < 0)
			return r == VU_INIT_USAGE ? VU_EXIT_USAGE : 1; /* the device said why */
	}
	for (unsigned i = 0; i < b->nports; i++)
		if (open_socket(&b->ports[i]))
			return 1;
	b->serving = b->nports;
	for (unsigned i = 0; i < b->nports; i++) {
		struct port *p = &b->ports[i];
		if (p->listener.fd >= 0)
			vu_loop_watch(b->loop, p->listener.fd, EPOLLIN, on_connection, p);
		else
			on_connection(p, -1, 0);
	}
	if (confine(b) < 0)
		return 1;
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

	static struct backend b;
	b = (struct backend){ .type = t, .sandbox = { .mode = -1 } };
	int status = parse(&b, argc, argv);

	if (!status && b.nports == 0) {
		/* Neither option: systemd socket activation, or nothing to serve. */
		struct port *p = &b.ports[0];
		*p = (struct port){ .b = &b, .fd = -1, .listener = { .fd = -1, .conn = -1 } };
		int r = vu_listen_systemd(&p->listener);
		if (r == 0)
			status = usage_error("%s", "one of --socket-path or --fd is needed (or systemd socket activation)");
		else if (r < 0)
			status = 1;
		else
			b.nports = 1;
	}
	for (unsigned i = 0; i < b.nports && !status; i++)
		status = create_device(&b, i);
	if (!status) {
		struct vu_dev *devs[MAX_PORTS];
		for (unsigned i = 0; i < b.nports; i++)
			devs[i] = b.ports[i].dev;
		if (vu_sandbox_plan(&b.sandbox, devs, b.nports) < 0)
			status = VU_EXIT_USAGE;
	}
	if (!status)
		status = serve(&b);

	for (unsigned i = 0; i < b.nports; i++) {
		struct port *p = &b.ports[i];
		vu_session_free(p->session);
		vu_listen_close(&p->listener);
		if (p->dev && t->destroy)
			t->destroy(p->dev);
	}
	vu_loop_free(b.loop);
	vu_sandbox_exit();
	return status < 0 ? 0 : status;
}
