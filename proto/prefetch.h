/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef VHOSTBOX_PREFETCH_H
#define VHOSTBOX_PREFETCH_H

/*
 * Fetches a line for writing. PREFETCHW takes it exclusive at once; a plain
 * prefetch (what __builtin_prefetch(p, 1) is without -mprfchw) takes it shared,
 * and the write must then ask the core that had it a second time. (x86-64 CPUs
 * that do not list PREFETCHW run it as a no-op.)
 */
static inline void vu_prefetch_for_write(const void *p)
{
#if defined(__x86_64__)
	__asm__ volatile("prefetchw %0" : : "m"(*(const char *)p));
#else
	__builtin_prefetch(p, 1);
#endif
}

#endif
