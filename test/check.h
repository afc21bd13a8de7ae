/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Minimal test reporting shared by the C tests. Every case prints one line that
 * test/run.sh counts:
 *   PASS: name
 *   FAIL: name: file:line condition [details]
 *   SKIP: name: why
 * Names are printf formats and must be unique within a program (a repeated
 * name is reported as a failure of its own). check_exit() gives the program's
 * exit status: 1 if anything failed, else 0.
 */
#ifndef VU_TEST_CHECK_H
#define VU_TEST_CHECK_H

#include <stdbool.h>

/* CHECK(cond, name_fmt, ...): reports cond; evaluates to cond, so it can gate what follows. */
#define CHECK(cond, ...) check_report(!!(cond), #cond, __FILE__, __LINE__, __VA_ARGS__)

/* CHECK_EQ(got, want, name_fmt, ...): integer comparison that prints both values on failure. */
#define CHECK_EQ(got, want, ...)                                                        \
	check_report_eq((long long)(got), (long long)(want), #got " == " #want, __FILE__, \
			__LINE__, __VA_ARGS__)

/* SKIP(name, why): a case that cannot run here. */
#define SKIP(name, why) check_skip(name, why)

bool check_report(bool ok, const char *cond, const char *file, int line, const char *name_fmt, ...)
	__attribute__((format(printf, 5, 6)));
bool check_report_eq(long long got, long long want, const char *cond, const char *file, int line,
		     const char *name_fmt, ...) __attribute__((format(printf, 6, 7)));
void check_skip(const char *name, const char *why);
/* Appended to every case's name from now on: a suite run again another way ("-packed"). */
extern const char *check_suffix;

/* A diagnostic line ("# ...") that the runner ignores. */
void check_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * A hang is a failure, not a stuck suite: after seconds, print a FAIL line and
 * exit (SIGALRM). For tests that need nothing cleaned up on the way out.
 */
void check_deadline(unsigned seconds);

int check_failures(void);
/* Exit status for main: 1 if any case failed, else 0. */
int check_exit(void);

#endif
