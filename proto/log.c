/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdarg.h>
#include <stdio.h>

#include "proto/log.h"

static const char *prog_name = "vhostbox";
static enum vu_log_level shown = VU_LOG_INFO;
static bool quiet;

void vu_log_set_name(const char *name) { prog_name = name; }
const char *vu_log_name(void) { return prog_name; }
void vu_log_set_level(enum vu_log_level level) { shown = level; }
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

LOG_FN(vu_err, "error: ", !quiet && shown >= VU_LOG_ERROR)
LOG_FN(vu_warn, "warning: ", !quiet && shown >= VU_LOG_WARN)
LOG_FN(vu_info, "", !quiet && shown >= VU_LOG_INFO)
LOG_FN(vu_debug, "debug: ", !quiet && shown >= VU_LOG_DEBUG)
