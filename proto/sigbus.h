/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Surviving a front-end that shrinks a file we mapped (guest RAM, the inflight
 * buffer). Touching a mapped page past the new end of the file raises SIGBUS;
 * one process may serve several VMs, so that must not kill it. Each such
 * mapping is guarded: the handler puts a private zero page where the faulting
 * page was (the access is retried and succeeds), marks the guard hit and wakes
 * the main loop, which calls the guard's owner there — the session then ends its
 * connection. A SIGBUS anywhere else keeps its default action.
 *
 * What remains: between the fault and the end of the connection, the device may
 * read zeros from (and write into private pages at) the lost part of that VM's
 * memory; nothing outside that VM's mappings is touched. The kernel itself
 * (io_uring, splice, sendmsg) gets EFAULT there, which devices report as errors.
 */
#ifndef VU_SIGBUS_H
#define VU_SIGBUS_H

#include <stddef.h>

struct vu_loop;

/* Called on the main loop's thread for a guard that was hit. */
typedef void (*vu_sigbus_fn)(void *opaque);

/* Installs the handler; hits are reported on loop. Once per process. */
int vu_sigbus_init(struct vu_loop *loop);

/*
 * Guards [base, base + len) of a MAP_SHARED file mapping until vu_sigbus_unguard.
 * Returns the guard's slot, or -1 when every slot is taken (the mapping then has
 * no guard: a warning says so).
 */
int vu_sigbus_guard(void *base, size_t len, vu_sigbus_fn fn, void *opaque);
/* Before the mapping is unmapped. Slot -1 is ignored. */
void vu_sigbus_unguard(int slot);

#endif
