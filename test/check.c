/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test/check.h"

static int failures;
static char **names;
static size_t nnames, capnames;

/* Records name; false if it was reported before. */
static bool remember(const char *name)
{
	for (size_t i = 0; i < nnames; i++)
		if (!strcmp(names[i], name))
			return false;
	if (nnames == capnames) {
		size_t cap = capnames ? capnames * 2 : 64;
		char **n = realloc(names, cap * sizeof(*n));
		if (!n)
			return true; /* only the duplicate check is lost */
		names = n;
		capnames = cap;
	}
	names[nnames] = strdup(name);
	if (names[nnames])
		nnames++;
	return true;
}

/* Prints one result line; newlines in the name would break the runner's counting. */
static void line(const char *kind, const char *name, const char *rest)
{
	char clean[512];
	size_t i;

	for (i = 0; name[i] && i < sizeof(clean) - 1; i++)
		clean[i] = name[i] == '\n' ? ' ' : name[i];
	clean[i] = 0;
	if (rest)
		printf("%s: %s: %s\n", kind, clean, rest);
	else
		printf("%s: %s\n", kind, clean);
	fflush(stdout);
}

const char *check_suffix = "";

static void report(bool ok, const char *case_name, const char *detail)
{
	char name[512];

	snprintf(name, sizeof(name), "%s%s", case_name, check_suffix);
	if (!remember(name)) {
		failures++;
		line("FAIL", name, "duplicate test name");
		return;
	}
	if (ok) {
		line("PASS", name, NULL);
	} else {
		failures++;
		line("FAIL", name, detail);
	}
}

bool check_report(bool ok, const char *cond, const char *file, int line_no, const char *name_fmt, ...)
{
	char name[400], detail[600];
	va_list ap;

	va_start(ap, name_fmt);
	vsnprintf(name, sizeof(name), name_fmt, ap);
	va_end(ap);
	snprintf(detail, sizeof(detail), "%s:%d %s", file, line_no, cond);
	report(ok, name, detail);
	return ok;
}

bool check_report_eq(long long got, long long want, const char *cond, const char *file, int line_no,
		     const char *name_fmt, ...)
{
	char name[400], detail[600];
	va_list ap;
	bool ok = got == want;

	va_start(ap, name_fmt);
	vsnprintf(name, sizeof(name), name_fmt, ap);
	va_end(ap);
	snprintf(detail, sizeof(detail), "%s:%d %s (got %lld / 0x%llx, want %lld / 0x%llx)", file,
		 line_no, cond, got, (unsigned long long)got, want, (unsigned long long)want);
	report(ok, name, detail);
	return ok;
}

void check_skip(const char *case_name, const char *why)
{
	char name[512];

	snprintf(name, sizeof(name), "%s%s", case_name, check_suffix);
	if (!remember(name)) {
		failures++;
		line("FAIL", name, "duplicate test name");
		return;
	}
	line("SKIP", name, why);
}

void check_note(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static void on_deadline(int sig)
{
	/* Only async-signal-safe calls here: the test may be stuck anywhere. */
	static const char msg[] = ": took too long (a hang?)\n";
	const char *name = program_invocation_short_name;

	if (write(1, "FAIL: ", 6) == 6 && write(1, name, strlen(name)) > 0)
		(void)!write(1, msg, sizeof(msg) - 1);
	_exit(1);
}

void check_deadline(unsigned seconds)
{
	signal(SIGALRM, on_deadline);
	alarm(seconds);
}

int check_failures(void)
{
	return failures;
}

int check_exit(void)
{
	return failures ? 1 : 0;
}
