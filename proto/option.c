/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "proto/device.h"
#include "proto/log.h"
#include "proto/option.h"

static void *field(const struct vu_dev *dev, const struct vu_option *o)
{
	return (uint8_t *)dev + o->offset;
}

static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (!*s || *end || errno || *s == '-' || *s == '+' || *s == ' ')
		return false;
	*out = v;
	return true;
}

/* "512 or 4096", "a, b or c" */
static void choices_text(const struct vu_choice *c, char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = 0;
	for (unsigned i = 0; c[i].name && n < size; i++)
		n += snprintf(buf + n, size - n, "%s%s", i == 0 ? "" : c[i + 1].name ? ", " : " or ",
			      c[i].name);
}

/* The accepted values in words, for errors and --help: "1..64", "a power of 2, 2..32768". */
static void range_text(const struct vu_option *o, char *buf, size_t size)
{
	switch (o->kind) {
	case VU_OPT_UINT:
	case VU_OPT_SIZE:
		snprintf(buf, size, "%s%llu..%llu%s%s", o->flags & VU_OPT_POW2 ? "a power of 2, " : "",
			 (unsigned long long)o->min, (unsigned long long)o->max, o->unit ? " " : "",
			 o->unit ? o->unit : "");
		break;
	case VU_OPT_ENUM:
		choices_text(o->choices, buf, size);
		break;
	case VU_OPT_STRING:
		if (o->max)
			snprintf(buf, size, "%llu..%llu bytes", (unsigned long long)o->min,
				 (unsigned long long)o->max);
		else
			buf[0] = 0;
		break;
	default:
		buf[0] = 0;
	}
}

static int bad_value(const struct vu_option *o, const char *arg)
{
	char range[160];

	range_text(o, range, sizeof(range));
	fprintf(stderr, "%s: ", vu_log_name());
	switch (o->kind) {
	case VU_OPT_MAC:
		fprintf(stderr, "--%s needs a unicast address like 52:54:00:12:34:56, not '%s'\n", o->name, arg);
		break;
	case VU_OPT_FD:
		fprintf(stderr, "--%s needs a file descriptor number, not '%s'\n", o->name, arg);
		break;
	case VU_OPT_PATH:
		fprintf(stderr, "--%s needs a path\n", o->name);
		break;
	case VU_OPT_STRING:
		fprintf(stderr, "--%s must be %s long, not '%s'\n", o->name, range, arg);
		break;
	default:
		fprintf(stderr, "--%s must be %s, not '%s'\n", o->name, range, arg);
	}
	return -1;
}

static bool parse_mac(const char *s, uint8_t mac[6])
{
	char tail;

	return strlen(s) == 17 &&
	       sscanf(s, "%2hhx:%2hhx:%2hhx:%2hhx:%2hhx:%2hhx%c", &mac[0], &mac[1], &mac[2], &mac[3],
		      &mac[4], &mac[5], &tail) == 6 &&
	       !(mac[0] & 1); /* group addresses cannot be a port's */
}

int vu_option_set(struct vu_dev *dev, const struct vu_option *o, const char *arg)
{
	void *to = field(dev, o);
	uint64_t v;
	size_t len;

	switch (o->kind) {
	case VU_OPT_FLAG:
		*(bool *)to = true;
		return 0;
	case VU_OPT_PATH:
		if (!*arg)
			return bad_value(o, arg);
		*(const char **)to = arg;
		return 0;
	case VU_OPT_STRING:
		len = strlen(arg);
		if (len < o->min || (o->max && len > o->max))
			return bad_value(o, arg);
		*(const char **)to = arg;
		return 0;
	case VU_OPT_UINT:
	case VU_OPT_SIZE:
		if (!parse_u64(arg, &v) || v < o->min || v > o->max ||
		    ((o->flags & VU_OPT_POW2) && (v & (v - 1))))
			return bad_value(o, arg);
		if (o->kind == VU_OPT_SIZE)
			*(uint64_t *)to = v * o->scale;
		else
			*(unsigned *)to = (unsigned)v;
		return 0;
	case VU_OPT_ENUM:
		for (const struct vu_choice *c = o->choices; c->name; c++)
			if (!strcmp(c->name, arg)) {
				*(unsigned *)to = c->value;
				return 0;
			}
		return bad_value(o, arg);
	case VU_OPT_MAC:
		return parse_mac(arg, to) ? 0 : bad_value(o, arg);
	case VU_OPT_FD:
		if (!parse_u64(arg, &v) || v > INT_MAX)
			return bad_value(o, arg);
		*(int *)to = (int)v;
		return 0;
	case VU_OPT_PARSE:
		return o->parse(dev, arg);
	}
	return bad_value(o, arg);
}

/* ", default X" from the freshly created device, or nothing where it has none. */
static void default_text(const struct vu_option *o, const struct vu_dev *dev, char *buf, size_t size)
{
	const void *from = field(dev, o);

	buf[0] = 0;
	switch (o->kind) {
	case VU_OPT_UINT:
		/* A value outside the range means "not given" (the help text says what then). */
		if (*(const unsigned *)from >= o->min && *(const unsigned *)from <= o->max)
			snprintf(buf, size, "default %u", *(const unsigned *)from);
		break;
	case VU_OPT_SIZE:
		snprintf(buf, size, "default %llu", (unsigned long long)(*(const uint64_t *)from / o->scale));
		break;
	case VU_OPT_ENUM:
		for (const struct vu_choice *c = o->choices; c->name; c++)
			if (c->value == *(const unsigned *)from)
				snprintf(buf, size, "default %s", c->name);
		break;
	case VU_OPT_STRING:
	case VU_OPT_PATH:
		if (*(const char *const *)from)
			snprintf(buf, size, "default %s", *(const char *const *)from);
		break;
	default:
		break;
	}
}

void vu_option_text(const struct vu_option *o, const struct vu_dev *dev, char *buf, size_t size)
{
	char range[160], def[64];

	range_text(o, range, sizeof(range));
	default_text(o, dev, def, sizeof(def));
	if (*range || *def)
		snprintf(buf, size, "%s (%s%s%s)", o->help, range, *range && *def ? ", " : "", def);
	else
		snprintf(buf, size, "%s", o->help);
}

void vu_option_help(const struct vu_option *table, const struct vu_dev *dev, FILE *out)
{
	for (const struct vu_option *o = table; o && o->name; o++) {
		char left[64], text[512];
		if (o->short_name)
			snprintf(left, sizeof(left), "-%c %s", o->short_name, o->kind == VU_OPT_FLAG ? "" : o->arg);
		else
			snprintf(left, sizeof(left), "--%s%s%s", o->name, o->kind == VU_OPT_FLAG ? "" : "=",
				 o->kind == VU_OPT_FLAG ? "" : o->arg);
		vu_option_text(o, dev, text, sizeof(text));
		fprintf(out, "  %-23s %s\n", left, text);
	}
}
