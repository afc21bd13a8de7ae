/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Typed device options. A device declares a table; proto parses, range-checks
 * and stores every value into the device's own struct, reports a bad one in one
 * line (exit 2), and derives --help and the --print-capabilities feature list
 * from the same table. A device keeps code only for what a table cannot say
 * (what follows from a value, in its init hook).
 */
#ifndef VU_OPTION_H
#define VU_OPTION_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct vu_dev;

enum vu_option_kind {
	VU_OPT_FLAG,    /* no value: bool = true */
	VU_OPT_STRING,  /* const char *, min..max bytes long (max 0: any length) */
	VU_OPT_PATH,    /* const char *, not empty */
	VU_OPT_UINT,    /* unsigned in min..max */
	VU_OPT_SIZE,    /* uint64_t = a count of units in min..max, times scale bytes */
	VU_OPT_ENUM,    /* unsigned: the value of one of choices */
	VU_OPT_MAC,     /* uint8_t[6], a unicast Ethernet address */
	VU_OPT_FD,      /* int: an open file descriptor's number */
	VU_OPT_PARSE,   /* the option's parse hook takes the value: repeatable options, sub-options */
};

/* flags */
#define VU_OPT_POW2        0x1   /* UINT: a power of 2 */
#define VU_OPT_CAPABILITY  0x2   /* a feature of the schema type, listed by --print-capabilities */

struct vu_choice {
	const char *name;
	unsigned value;
};

struct vu_option {
	const char *name;
	char short_name;        /* also -C (an older spelling a management tool may use), or 0 */
	enum vu_option_kind kind;
	size_t offset;          /* where the value goes in the device's struct (offsetof) */
	const char *arg;        /* the value's name in --help; none for flags */
	const char *help;       /* ranges, choices and the default are added to it */
	uint64_t min, max;
	const char *unit;       /* UINT, SIZE: said after the range ("MiB", "seconds") */
	uint64_t scale;         /* SIZE: bytes per unit */
	const struct vu_choice *choices;   /* ENUM: NULL-name terminated */
	unsigned flags;
	/* PARSE: stores what arg says into dev; 0, or -1 after one line on stderr. */
	int (*parse)(struct vu_dev *dev, const char *arg);
};

/* Parses arg for opt and stores it into dev; -1 after the one-line error on stderr. */
int vu_option_set(struct vu_dev *dev, const struct vu_option *opt, const char *arg);

/* "help (range, default)" of one option; the default is read from dev, a device just created. */
void vu_option_text(const struct vu_option *o, const struct vu_dev *dev, char *buf, size_t size);
/*
 * Prints "  --name=ARG   help (range, default)" for each option of the table;
 * defaults are read from dev, a device just created.
 */
void vu_option_help(const struct vu_option *table, const struct vu_dev *dev, FILE *out);

#endif
