/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdarg.h>
#include <stdio.h>

#include "proto/log.h"

static const char *prog_name = "vhostbox";
static bool verbose;
static bool quiet;

void vu_log_set_name(const char *name) { prog_name = name; }
const char *vu_log_name(void) { return prog_name; }
void vu_log_set_verbose(bool on) { verbose = on; }
void vu_log_set_quiet(bool on) { quiet = on; }

static void vlog(const char *level, const char *fmt, va_list ap)
{
	char line[1024];

	/* One write per line so concurrent writers don't interleave mid-line. */
	int n = snprintf(line, sizeof(line), "%s: %s", prog_name, level);
	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
	vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	fprintf(stderr, "%s\n", line);
}

#define LOG_FN(fn, level, cond)                 \
	void fn(const char *fmt, ...)           \
	{                                       \
		va_list ap;                     \
		if (!(cond))                    \
			return;                 \
		va_start(ap, fmt);              \
		vlog(level, fmt, ap);           \
		va_end(ap);                     \
	}

LOG_FN(vu_err, "error: ", !quiet)
LOG_FN(vu_warn, "warning: ", !quiet)
LOG_FN(vu_info, "", !quiet)
LOG_FN(vu_debug, "debug: ", verbose && !quiet)
