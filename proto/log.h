/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Messages on stderr, prefixed with the name the program was started as. */
#ifndef VU_LOG_H
#define VU_LOG_H

#include <stdbool.h>

void vu_log_set_name(const char *name);
const char *vu_log_name(void);
void vu_log_set_verbose(bool verbose);
/* Drops every message: fuzzers run millions of inputs, most of which something refuses. */
void vu_log_set_quiet(bool quiet);

void vu_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vu_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vu_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vu_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
