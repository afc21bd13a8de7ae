/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Calls glibc (2.36) wraps and musl (1.2.3, the static build: static/static.mk)
 * does not, made straight through syscall(2): the same system calls, so the
 * seccomp allowlists hold for both.
 */
#ifndef VU_LIBC_COMPAT_H
#define VU_LIBC_COMPAT_H

#ifndef __GLIBC__
#include <signal.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static inline int epoll_pwait2(int epfd, struct epoll_event *evs, int max, const struct timespec *timeout,
			       const sigset_t *mask)
{
	return syscall(SYS_epoll_pwait2, epfd, evs, max, timeout, mask, _NSIG / 8);
}

static inline int close_range(unsigned int first, unsigned int last, int flags)
{
	return syscall(SYS_close_range, first, last, flags);
}
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#endif

#endif
