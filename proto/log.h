/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Messages on stderr, prefixed with the name the program was started as. */
#ifndef VU_LOG_H
#define VU_LOG_H

#include <stdbool.h>

void vu_log_set_name(const char *name);
const char *vu_log_name(void);
/* The most detailed messages shown: 0 none, then errors, warnings, information (the default), debugging. */
enum vu_log_level { VU_LOG_OFF, VU_LOG_ERROR, VU_LOG_WARN, VU_LOG_INFO, VU_LOG_DEBUG };
void vu_log_set_level(enum vu_log_level level);
/* Drops every message: fuzzers run millions of inputs, most of which something refuses. */
void vu_log_set_quiet(bool quiet);

void vu_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vu_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vu_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vu_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
