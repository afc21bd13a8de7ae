/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <ctype.h>
#include <string.h>

#include "proto/manual.h"

/* Text for roff: backslashes escaped, a line never starts with a control character. */
static void text(FILE *out, const char *s)
{
	if (*s == '.' || *s == '\'')
		fputs("\\&", out);
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\e", out);
		else
			fputc(*s, out);
	}
}

/* An option name or a command: hyphens are minus signs, so they can be searched for. */
static void literal(FILE *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '-')
			fputs("\\-", out);
		else if (*s == '\\')
			fputs("\\e", out);
		else
			fputc(*s, out);
	}
}

/* "--name=ARG", or "-C ARG" for an option known by its short name. */
static void option(FILE *out, char short_name, const char *name, const char *arg, const char *help)
{
	if (short_name) {
		fprintf(out, ".TP\n.B \\-%c", short_name);
	} else {
		fputs(".TP\n.B \\-\\-", out);
		literal(out, name);
	}
	if (arg) {
		fputs(short_name ? " \\fI" : "=\\fI", out);
		literal(out, arg);
		fputs("\\fR", out);
	}
	fputc('\n', out);
	text(out, help);
	fputc('\n', out);
}

static void header(FILE *out, const char *name, const char *what)
{
	char upper[64];
	size_t i;

	for (i = 0; name[i] && i + 1 < sizeof(upper); i++)
		upper[i] = (char)toupper((unsigned char)name[i]);
	upper[i] = 0;
	fprintf(out, ".TH %s 1 \"\" \"vhostbox %s\" \"User Commands\"\n.SH NAME\n", upper, VHOSTBOX_VERSION);
	literal(out, name);
	fputs(" \\- ", out);
	text(out, what);
	fputc('\n', out);
}

void vu_manual_personality(const struct vu_device_type *t, const struct vu_common_option *common,
			   size_t ncommon, FILE *out)
{
	char name[64];

	snprintf(name, sizeof(name), "vhost-user-%s", t->name);
	header(out, name, t->summary);
	fputs(".SH SYNOPSIS\n.B ", out);
	literal(out, name);
	fputs("\n.RB [ \\-\\-socket\\-path=\\fIPATH\\fR | \\-\\-fd=\\fIFDNUM\\fR ]\n[\\fIOPTION\\fR]...\n", out);
	fputs(".SH DESCRIPTION\nA vhost-user back-end of schema type \\fB", out);
	literal(out, t->schema_type);
	fputs("\\fR, following QEMU's back-end program conventions: it serves one device per\n"
	      "socket to a front-end such as QEMU, never daemonizes, ends at once on SIGTERM,\n"
	      "and reports a bad command line in one line with status 2.\n"
	      "It is one personality of \\fBvhostbox\\fR(1), which it is a link to.\n", out);
	if (t->aliases && *t->aliases) {
		fputs("It is also installed as", out);
		for (const char *const *a = t->aliases; *a; a++) {
			fputs(a == t->aliases ? " \\fBvhost\\-user\\-" : ", \\fBvhost\\-user\\-", out);
			literal(out, *a);
			fputs("\\fR", out);
		}
		fputs(".\n", out);
	}
	fputs(".PP\nWithout \\-\\-socket\\-path or \\-\\-fd, a socket passed by systemd (LISTEN_FDS) is\n"
	      "used. Repeat \\-\\-socket\\-path (or \\-\\-fd) to serve several devices from one process:\n"
	      "device options after a socket option apply to that device, options before it to all.\n",
	      out);
	fputs(".SH OPTIONS\n", out);
	for (size_t i = 0; i < ncommon; i++)
		option(out, 0, common[i].name, common[i].arg, common[i].help);
	struct vu_dev *dev = t->options ? vu_device_create(t) : NULL;
	for (const struct vu_option *o = t->options; dev && o->name; o++) {
		char help[512];
		vu_option_text(o, dev, help, sizeof(help));
		option(out, o->short_name, o->name, o->kind == VU_OPT_FLAG ? NULL : o->arg, help);
	}
	if (dev && t->destroy)
		t->destroy(dev);
	fputs(".SH EXAMPLES\nWith QEMU (vhost-user needs guest memory that can be shared):\n.PP\n.nf\n", out);
	literal(out, name);
	fputs(" \\-\\-socket\\-path=/run/vu0.sock ...\nqemu\\-system\\-x86_64 ... \\e\n"
	      "  \\-object memory\\-backend\\-memfd,id=mem,size=1G,share=on \\-numa node,memdev=mem \\e\n"
	      "  \\-chardev socket,id=vu0,path=/run/vu0.sock \\e\n  ", out);
	literal(out, t->qemu_args);
	fputs("\n.fi\n.PP\nWith libvirt, which picks the back-end through its discovery file in\n"
	      "/usr/share/qemu/vhost\\-user: give the device a\n"
	      "\\fB<source type='unix' path='/run/vu0.sock'/>\\fR and the domain\n"
	      "\\fB<memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>\\fR.\n"
	      ".PP\nWith systemd socket activation (the units vhostbox installs):\n.PP\n.nf\n"
	      "systemctl enable \\-\\-now ", out);
	literal(out, name);
	fputs("@vu0.socket\n.fi\n.PP\nThe instance's options come from /etc/vhostbox/", out);
	literal(out, name);
	fputs("@vu0.conf\n(VHOSTBOX_ARGS=...), its socket is /run/vhostbox/", out);
	literal(out, name);
	fputs("@vu0.sock.\n.SH EXIT STATUS\n0 after SIGTERM or SIGINT; 1 when it cannot serve (say why on stderr);\n"
	      "2 for a bad command line.\n.SH SEE ALSO\n\\fBvhostbox\\fR(1), \\fBqemu\\-system\\-x86_64\\fR(1)\n",
	      out);
}

void vu_manual_vhostbox(const struct vu_device_type *const *types, size_t n, FILE *out)
{
	header(out, "vhostbox", "every vhost-user device back-end in one program");
	fputs(".SH SYNOPSIS\n.B vhostbox\n\\fIPERSONALITY\\fR [\\fIOPTION\\fR]...\n.br\n"
	      ".B vhost\\-user\\-\\fIPERSONALITY\\fR\n[\\fIOPTION\\fR]...\n.br\n"
	      ".B vhostbox\n\\-\\-list | \\-\\-discover \\fITYPE\\fR [\\-\\-feature \\fIF\\fR]... |\n"
	      "\\-\\-discovery\\-file \\fINAME BINARY\\fR | \\-\\-man | \\-\\-help | \\-\\-version\n"
	      ".SH DESCRIPTION\nOne program that provides vhost-user device back-ends, busybox-style: the name\n"
	      "it is started as (vhost\\-user\\-\\fINAME\\fR) or its first argument picks the device.\n"
	      "Each personality has its own manual page.\n.SH PERSONALITIES\n", out);
	for (size_t i = 0; i < n; i++) {
		char ref[96];
		snprintf(ref, sizeof(ref), "vhost-user-%s", types[i]->name);
		fputs(".TP\n.BR ", out);
		literal(out, ref);
		fputs(" (1)\n", out);
		text(out, types[i]->summary);
		fputs(" (type ", out);
		text(out, types[i]->schema_type);
		fputs(")\n", out);
	}
	fputs(".SH OPTIONS\n", out);
	option(out, 0, "list", NULL, "one line per personality built in: NAME TYPE [ALIAS]...");
	option(out, 0, "discover", "TYPE",
	       "the back-end management software would pick for TYPE (QEMU's vhost-user.json rules): "
	       "its discovery file and binary");
	option(out, 0, "discovery-file", "NAME BINARY", "the discovery file of personality NAME installed as BINARY");
	option(out, 0, "man", NULL, "this page");
	fputs(".SH SEE ALSO\n\\fBqemu\\-system\\-x86_64\\fR(1)\n", out);
}
