/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * THE event loop: one epoll instance shared by the listener, every session and
 * every device. Callbacks run one at a time; nothing here is thread-safe.
 */
#ifndef VU_LOOP_H
#define VU_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

struct vu_loop;
struct vu_timer;
struct vu_poller;

typedef void (*vu_watch_fn)(void *opaque, int fd, uint32_t events);
typedef void (*vu_timer_fn)(void *opaque);

struct vu_loop *vu_loop_new(void);
void vu_loop_free(struct vu_loop *loop);

/* Watch fd for EPOLLIN/EPOLLOUT...; one watch per fd. Safe to call from callbacks. */
int vu_loop_watch(struct vu_loop *loop, int fd, uint32_t events, vu_watch_fn fn, void *opaque);
int vu_loop_rewatch(struct vu_loop *loop, int fd, uint32_t events);
void vu_loop_unwatch(struct vu_loop *loop, int fd);

/* Periodic or one-shot timers on timerfds watched by the loop. */
struct vu_timer *vu_timer_new(struct vu_loop *loop, vu_timer_fn fn, void *opaque);
void vu_timer_arm(struct vu_timer *t, uint64_t first_ns, uint64_t interval_ns);
void vu_timer_disarm(struct vu_timer *t);
void vu_timer_free(struct vu_timer *t);

/*
 * Busy polling: while a poller is on, the loop calls it on every turn and no longer
 * sleeps; the fds are then checked (without waiting) every few turns. A poller turns
 * itself off when there is nothing left to poll. Pollers cost no system call per turn,
 * which a timer of zero length would.
 */
struct vu_poller *vu_poller_new(struct vu_loop *loop, vu_timer_fn fn, void *opaque);
void vu_poller_set(struct vu_poller *p, bool on);
void vu_poller_free(struct vu_poller *p);

/* SIGTERM and SIGINT end vu_loop_run(); they are blocked and read through a signalfd. */
int vu_loop_catch_signals(struct vu_loop *loop);

/*
 * Runs until vu_loop_stop() or a caught signal. Returns the signal number, or 0;
 * -1 after vu_loop_fail() (or when polling itself fails).
 */
int vu_loop_run(struct vu_loop *loop);
/*
 * Counts the turns of the loop running on this thread (each look for events, or
 * pollers' round): work limits "per turn" compare it (see proto/vring.c).
 */
extern __thread unsigned vu_loop_turns;
void vu_loop_stop(struct vu_loop *loop);
/*
 * Runs callbacks until nothing has been ready for settle_ns (or vu_loop_stop()),
 * for tests and fuzzers that play the front-end on the loop's own thread: after
 * each step they let the device finish, including work that completes a moment
 * later (io_uring completions, timers about to expire). Timers armed further out
 * are not waited for; pollers that stay on keep it running. 0, or -1 when polling
 * fails.
 */
int vu_loop_run_until_idle(struct vu_loop *loop, uint64_t settle_ns);
/* Ends vu_loop_run() with -1: something the program cannot serve without is gone. */
void vu_loop_fail(struct vu_loop *loop);

/*
 * Loops on worker threads (devices that spread queues over cores). A worker loop
 * is set up from the main thread, then started; from then on only its own
 * thread touches it, and other threads reach it through vu_loop_call().
 */
int vu_loop_start_thread(struct vu_loop *loop);
/*
 * Threads wait for confinement: between vu_loop_hold_threads() and
 * vu_loop_release_threads() (proto/backend.c: from before the devices' init
 * until the process is confined) vu_loop_start_thread() only records the loop,
 * and release starts the threads, in order (0, or -errno of the first failure).
 */
void vu_loop_hold_threads(void);
int vu_loop_release_threads(void);
/* Stops the loop's thread and waits for it; the loop can then be freed. */
void vu_loop_stop_thread(struct vu_loop *loop);
/* Runs fn(arg) on the loop's thread and waits for it (directly if that is this thread). */
void vu_loop_call(struct vu_loop *loop, void (*fn)(void *arg), void *arg);

#endif
