/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "proto/libc-compat.h"
#include "proto/log.h"
#include "proto/loop.h"

/*
 * Watches are kept in an array indexed by fd. The epoll cookie carries the fd
 * and a generation number, so an event for an fd that was unwatched (and maybe
 * reused) earlier in the same epoll_wait batch is recognised as stale.
 */
struct watch {
	vu_watch_fn fn;
	void *opaque;
	uint32_t gen;
};

struct vu_loop {
	int epfd;
	int sigfd;
	struct watch *w;
	int nw;
	uint32_t next_gen;
	bool stop;
	int signal;
	struct vu_poller *pollers;
	unsigned polling;        /* pollers that are on */

	/* Worker loops only: the thread, and one cross-thread call at a time. */
	bool threaded;
	pthread_t thread;
	int call_fd;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	void (*call_fn)(void *arg);
	void *call_arg;
	bool call_done;
	struct vu_loop *held_next;   /* waiting for vu_loop_release_threads() */
};

static __thread struct vu_loop *this_thread_loop;
__thread unsigned vu_loop_turns;

/* While polling, the fds are checked once every this many turns. */
#define POLL_TURNS_PER_WAIT 16

struct vu_timer {
	struct vu_loop *loop;
	int fd;
	vu_timer_fn fn;
	void *opaque;
};

struct vu_poller {
	struct vu_loop *loop;
	vu_timer_fn fn;
	void *opaque;
	bool on;
	struct vu_poller *next;
};

struct vu_loop *vu_loop_new(void)
{
	struct vu_loop *loop = calloc(1, sizeof(*loop));

	if (!loop)
		return NULL;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	loop->sigfd = -1;
	loop->next_gen = 1;
	if (loop->epfd < 0) {
		free(loop);
		return NULL;
	}
	return loop;
}

static void forget_held(struct vu_loop *loop);

void vu_loop_free(struct vu_loop *loop)
{
	if (!loop)
		return;
	forget_held(loop);
	if (loop->sigfd >= 0)
		close(loop->sigfd);
	if (loop->threaded) {
		close(loop->call_fd);
		pthread_mutex_destroy(&loop->lock);
		pthread_cond_destroy(&loop->cond);
	}
	close(loop->epfd);
	free(loop->w);
	free(loop);
}

static uint64_t cookie(int fd, uint32_t gen)
{
	return (uint64_t)gen << 32 | (uint32_t)fd;
}

int vu_loop_watch(struct vu_loop *loop, int fd, uint32_t events, vu_watch_fn fn, void *opaque)
{
	if (fd < 0)
		return -EBADF;
	if (fd >= loop->nw) {
		int n = fd + 64;
		struct watch *w = realloc(loop->w, n * sizeof(*w));
		if (!w)
			return -ENOMEM;
		memset(w + loop->nw, 0, (n - loop->nw) * sizeof(*w));
		loop->w = w;
		loop->nw = n;
	}
	struct watch *w = &loop->w[fd];
	if (w->fn)
		return -EEXIST;
	uint32_t gen = loop->next_gen++;
	struct epoll_event ev = { .events = events, .data.u64 = cookie(fd, gen) };
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	*w = (struct watch){ .fn = fn, .opaque = opaque, .gen = gen };
	return 0;
}

int vu_loop_rewatch(struct vu_loop *loop, int fd, uint32_t events)
{
	if (fd < 0 || fd >= loop->nw || !loop->w[fd].fn)
		return -ENOENT;
	struct epoll_event ev = { .events = events, .data.u64 = cookie(fd, loop->w[fd].gen) };
	return epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

void vu_loop_unwatch(struct vu_loop *loop, int fd)
{
	if (fd < 0 || fd >= loop->nw || !loop->w[fd].fn)
		return;
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
	loop->w[fd] = (struct watch){ 0 };
}

static void on_timer(void *opaque, int fd, uint32_t events)
{
	struct vu_timer *t = opaque;
	uint64_t expirations;

	if (read(fd, &expirations, sizeof(expirations)) == sizeof(expirations))
		t->fn(t->opaque);
}

struct vu_timer *vu_timer_new(struct vu_loop *loop, vu_timer_fn fn, void *opaque)
{
	struct vu_timer *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	*t = (struct vu_timer){ .loop = loop, .fn = fn, .opaque = opaque };
	t->fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (t->fd < 0 || vu_loop_watch(loop, t->fd, EPOLLIN, on_timer, t) < 0) {
		if (t->fd >= 0)
			close(t->fd);
		free(t);
		return NULL;
	}
	return t;
}

static struct timespec ns_to_ts(uint64_t ns)
{
	return (struct timespec){ .tv_sec = ns / 1000000000u, .tv_nsec = ns % 1000000000u };
}

void vu_timer_arm(struct vu_timer *t, uint64_t first_ns, uint64_t interval_ns)
{
	struct itimerspec its = { .it_value = ns_to_ts(first_ns ? first_ns : 1),
				  .it_interval = ns_to_ts(interval_ns) };
	timerfd_settime(t->fd, 0, &its, NULL);
}

void vu_timer_disarm(struct vu_timer *t)
{
	struct itimerspec its = { 0 };
	timerfd_settime(t->fd, 0, &its, NULL);
}

void vu_timer_free(struct vu_timer *t)
{
	if (!t)
		return;
	vu_loop_unwatch(t->loop, t->fd);
	close(t->fd);
	free(t);
}

struct vu_poller *vu_poller_new(struct vu_loop *loop, vu_timer_fn fn, void *opaque)
{
	struct vu_poller *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	*p = (struct vu_poller){ .loop = loop, .fn = fn, .opaque = opaque, .next = loop->pollers };
	loop->pollers = p;
	return p;
}

void vu_poller_set(struct vu_poller *p, bool on)
{
	if (p->on != on)
		p->loop->polling += on ? 1 : -1;
	p->on = on;
}

void vu_poller_free(struct vu_poller *p)
{
	if (!p)
		return;
	vu_poller_set(p, false);
	for (struct vu_poller **pp = &p->loop->pollers; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	free(p);
}

static void run_pollers(struct vu_loop *loop)
{
	for (struct vu_poller *p = loop->pollers; p && !loop->stop; p = p->next)
		if (p->on)
			p->fn(p->opaque);
}

static void on_signal(void *opaque, int fd, uint32_t events)
{
	struct vu_loop *loop = opaque;
	struct signalfd_siginfo si;

	if (read(fd, &si, sizeof(si)) == sizeof(si)) {
		loop->signal = si.ssi_signo;
		loop->stop = true;
	}
}

int vu_loop_catch_signals(struct vu_loop *loop)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	loop->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (loop->sigfd < 0)
		return -errno;
	/* A peer closing its end must not kill us: writes return EPIPE instead. */
	signal(SIGPIPE, SIG_IGN);
	return vu_loop_watch(loop, loop->sigfd, EPOLLIN, on_signal, loop);
}

/* Runs the callbacks of a batch of events from epoll_wait. */
static void dispatch(struct vu_loop *loop, const struct epoll_event *evs, int n)
{
	for (int i = 0; i < n && !loop->stop; i++) {
		int fd = (int)(uint32_t)evs[i].data.u64;
		uint32_t gen = evs[i].data.u64 >> 32;
		if (fd >= loop->nw || loop->w[fd].gen != gen || !loop->w[fd].fn)
			continue; /* unwatched earlier in this batch */
		loop->w[fd].fn(loop->w[fd].opaque, fd, evs[i].events);
	}
}

int vu_loop_run(struct vu_loop *loop)
{
	struct epoll_event evs[64];
	unsigned turns = 0;

	this_thread_loop = loop;
	while (!loop->stop) {
		vu_loop_turns++;
		if (loop->polling && ++turns % POLL_TURNS_PER_WAIT) {
			run_pollers(loop);
			continue;
		}
		int n = epoll_wait(loop->epfd, evs, 64, loop->polling ? 0 : -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			vu_err("epoll_wait: %s", strerror(errno));
			return -1;
		}
		dispatch(loop, evs, n);
		if (loop->polling)
			run_pollers(loop);
	}
	return loop->signal;
}

int vu_loop_run_until_idle(struct vu_loop *loop, uint64_t settle_ns)
{
	struct epoll_event evs[64];
	const struct timespec settle = { .tv_sec = settle_ns / 1000000000u, .tv_nsec = settle_ns % 1000000000u };
	bool waited = false;

	this_thread_loop = loop;
	loop->stop = false;
	while (!loop->stop) {
		vu_loop_turns++;
		if (loop->polling)
			run_pollers(loop);
		/* Ready now? Only when nothing is, wait out the settling time once. */
		int n = epoll_pwait2(loop->epfd, evs, 64, loop->polling || !waited ? &(struct timespec){ 0 } : &settle,
				     NULL);
		if (n < 0) {
			if (errno != EINTR) {
				vu_err("epoll_pwait2: %s", strerror(errno));
				return -1;
			}
			/* Task work (io_uring completions) interrupts the wait: look again. */
			waited = false;
		} else if (n > 0) {
			dispatch(loop, evs, n);
			waited = false;
		} else if (!loop->polling) {
			if (waited)
				break;
			waited = true;
		}
	}
	return 0;
}

void vu_loop_stop(struct vu_loop *loop)
{
	loop->stop = true;
}

void vu_loop_fail(struct vu_loop *loop)
{
	loop->signal = -1;
	loop->stop = true;
}

/* ---- worker threads ------------------------------------------------------------ */

static void on_call(void *opaque, int fd, uint32_t events)
{
	struct vu_loop *loop = opaque;
	uint64_t n;

	if (read(fd, &n, sizeof(n)) < 0)
		return;
	pthread_mutex_lock(&loop->lock);
	void (*fn)(void *) = loop->call_done ? NULL : loop->call_fn;
	void *arg = loop->call_arg;
	pthread_mutex_unlock(&loop->lock);
	if (!fn)
		return;
	fn(arg);
	pthread_mutex_lock(&loop->lock);
	loop->call_done = true;
	pthread_cond_broadcast(&loop->cond);
	pthread_mutex_unlock(&loop->lock);
}

static void *thread_main(void *arg)
{
	vu_loop_run(arg);
	return NULL;
}

static bool threads_held;
static struct vu_loop *held_first, **held_last = &held_first;

void vu_loop_hold_threads(void)
{
	threads_held = true;
}

static int start_thread(struct vu_loop *loop);

static void forget_held(struct vu_loop *loop)
{
	for (struct vu_loop **pp = &held_first; *pp; pp = &(*pp)->held_next)
		if (*pp == loop) {
			*pp = loop->held_next;
			if (!*pp)
				held_last = pp;
			return;
		}
}

int vu_loop_release_threads(void)
{
	int r = 0;

	threads_held = false;
	while (held_first) {
		struct vu_loop *loop = held_first;
		held_first = loop->held_next;
		if (r == 0)
			r = start_thread(loop);
	}
	held_last = &held_first;
	return r;
}

int vu_loop_start_thread(struct vu_loop *loop)
{
	if (threads_held) {
		loop->held_next = NULL;
		*held_last = loop;
		held_last = &loop->held_next;
		return 0;
	}
	return start_thread(loop);
}

static int start_thread(struct vu_loop *loop)
{
	loop->call_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (loop->call_fd < 0)
		return -errno;
	pthread_mutex_init(&loop->lock, NULL);
	pthread_cond_init(&loop->cond, NULL);
	loop->threaded = true;
	int r = vu_loop_watch(loop, loop->call_fd, EPOLLIN, on_call, loop);
	if (r == 0)
		r = -pthread_create(&loop->thread, NULL, thread_main, loop);
	if (r < 0) {
		vu_loop_unwatch(loop, loop->call_fd);
		close(loop->call_fd);
		loop->threaded = false;
	}
	return r;
}

void vu_loop_call(struct vu_loop *loop, void (*fn)(void *arg), void *arg)
{
	static const uint64_t one = 1;

	if (!loop->threaded || this_thread_loop == loop) {
		fn(arg);
		return;
	}
	pthread_mutex_lock(&loop->lock);
	while (loop->call_fn) /* another caller's turn */
		pthread_cond_wait(&loop->cond, &loop->lock);
	loop->call_fn = fn;
	loop->call_arg = arg;
	loop->call_done = false;
	if (write(loop->call_fd, &one, sizeof(one)) < 0)
		vu_err("cannot wake a worker thread");
	while (!loop->call_done)
		pthread_cond_wait(&loop->cond, &loop->lock);
	loop->call_fn = NULL;
	pthread_cond_broadcast(&loop->cond);
	pthread_mutex_unlock(&loop->lock);
}

static void stop_here(void *arg)
{
	vu_loop_stop(arg);
}

void vu_loop_stop_thread(struct vu_loop *loop)
{
	if (!loop->threaded)
		return;
	vu_loop_call(loop, stop_here, loop);
	pthread_join(loop->thread, NULL);
}
