/* SPDX-License-Identifier: MIT */
/*
 * wait — the two halves of "sleep until woken or a timeout" that the
 * background threads (dispatcher claimer, health runner, SQLite checkpoint
 * thread) share: an absolute deadline for pthread_cond_timedwait(), and
 * raising a flag under its mutex with a signal to the one waiter.
 */
#ifndef TH_UTIL_WAIT_H
#define TH_UTIL_WAIT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* The instant @ms milliseconds from now (@ms >= 0) on @clock, normalised
 * (0 <= tv_nsec < 1e9), for pthread_cond_timedwait(): CLOCK_REALTIME for a
 * default condition variable, else the clock it was made with
 * (pthread_condattr_setclock). Thread-safe. */
void wait_deadline(struct timespec *until, clockid_t clock, int64_t ms);

/* Set *@flag to true with @mu held and signal @cv, so a thread waiting on @cv
 * under @mu sees it when it wakes. The caller owns all three; @mu must not be
 * held by the calling thread. Thread-safe. */
void wait_raise(pthread_mutex_t *mu, pthread_cond_t *cv, bool *flag);

/* A background thread that sleeps between rounds of work until it is asked
 * to stop (the health runner, retention, the connection guard's reaper, the
 * live view's heartbeat). @mu guards @stop and whatever else its owner keeps
 * beside it; @cv is signalled when @stop is raised (and may be signalled by
 * the owner for its own reasons, under @mu). */
typedef struct wait_thread {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* on CLOCK_MONOTONIC */
	bool stop;         /* guarded by mu */
} wait_thread;

/* Give thread @t the label @name (at most 15 bytes, "th-" first by
 * convention), which top -H, ps -L, perf and gdb show instead of the
 * program's name. A label only: when the kernel refuses one, nothing else
 * changes, so there is no error to return. */
void thread_name(pthread_t t, const char *name);

/* Set up @t (zeroed by the caller) and start @fn(@arg) in its thread, named
 * @name (thread_name). Returns 0, or pthread_create's error number with @t
 * torn down again. */
int wait_thread_start(wait_thread *t, void *(*fn)(void *), void *arg, const char *name);

/* From @t's thread: sleep up to @ms (-1: without a timeout), until stopped or,
 * when @woken is not NULL, until @woken(@ctx) (called with mu held) is true
 * after a signal. Returns true when asked to stop. */
bool wait_thread_sleep(wait_thread *t, int64_t ms, bool (*woken)(void *ctx), void *ctx);

/* Has @t been asked to stop? Thread-safe. */
bool wait_thread_stopping(wait_thread *t);

/* Raise @t's stop flag, wait for its thread to return and tear @t down. Not
 * from @t's own thread. */
void wait_thread_stop(wait_thread *t);

#endif
