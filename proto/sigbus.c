/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "proto/log.h"
#include "proto/loop.h"
#include "proto/sigbus.h"

/* Enough for several VMs with many memory slots each; a full table only loses guards. */
#define MAX_GUARDS 4096

struct guard {
	uintptr_t start;    /* 0: free. Published last, cleared first (the handler reads it). */
	size_t len;
	int hit;
	vu_sigbus_fn fn;
	void *opaque;
};

static struct guard guards[MAX_GUARDS];
static unsigned high_water;            /* slots at or above are all free */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int wake_fd = -1;
static uintptr_t page_mask;

/* Async-signal-safe: atomics, mmap and write only. */
static void on_sigbus(int sig, siginfo_t *si, void *ucontext)
{
	uintptr_t addr = (uintptr_t)si->si_addr;
	unsigned n = __atomic_load_n(&high_water, __ATOMIC_ACQUIRE);

	for (unsigned i = 0; i < n; i++) {
		struct guard *g = &guards[i];
		uintptr_t start = __atomic_load_n(&g->start, __ATOMIC_ACQUIRE);
		if (!start || addr - start >= g->len)
			continue;
		void *page = (void *)(addr & page_mask);
		if (mmap(page, ~page_mask + 1, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
			break;
		__atomic_store_n(&g->hit, 1, __ATOMIC_RELEASE);
		uint64_t one = 1;
		if (write(wake_fd, &one, sizeof(one)) < 0) {
			/* Nothing to do in a handler: the next hit or wake-up reports it. */
		}
		return;
	}
	/* Not guest memory: a real bug. The retried access dies of the default action. */
	signal(SIGBUS, SIG_DFL);
}

static void on_wake(void *opaque, int fd, uint32_t events)
{
	uint64_t count;

	if (read(fd, &count, sizeof(count)) < 0)
		return;
	/* An owner's call may unguard any slot (its whole memory table): look at each again. */
	for (unsigned i = 0; i < high_water; i++) {
		struct guard *g = &guards[i];
		if (__atomic_load_n(&g->start, __ATOMIC_ACQUIRE) &&
		    __atomic_exchange_n(&g->hit, 0, __ATOMIC_ACQ_REL))
			g->fn(g->opaque);
	}
}

int vu_sigbus_init(struct vu_loop *loop)
{
	struct sigaction sa = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO };

	page_mask = ~(uintptr_t)(sysconf(_SC_PAGESIZE) - 1);
	wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (wake_fd < 0 || vu_loop_watch(loop, wake_fd, EPOLLIN, on_wake, NULL) < 0 ||
	    sigaction(SIGBUS, &sa, NULL) < 0)
		return -1;
	return 0;
}

int vu_sigbus_guard(void *base, size_t len, vu_sigbus_fn fn, void *opaque)
{
	int slot = -1;

	pthread_mutex_lock(&lock);
	for (unsigned i = 0; i < MAX_GUARDS && slot < 0; i++)
		if (!guards[i].start)
			slot = (int)i;
	if (slot >= 0) {
		struct guard *g = &guards[slot];
		g->len = len;
		g->fn = fn;
		g->opaque = opaque;
		g->hit = 0;
		__atomic_store_n(&g->start, (uintptr_t)base, __ATOMIC_RELEASE);
		if ((unsigned)slot >= high_water)
			__atomic_store_n(&high_water, (unsigned)slot + 1, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&lock);
	if (slot < 0)
		vu_warn("%zu bytes of shared memory without a SIGBUS guard: all %d are in use", len, MAX_GUARDS);
	return slot;
}

void vu_sigbus_unguard(int slot)
{
	if (slot < 0)
		return;
	pthread_mutex_lock(&lock);
	__atomic_store_n(&guards[slot].start, 0, __ATOMIC_RELEASE);
	guards[slot].hit = 0;
	pthread_mutex_unlock(&lock);
}
