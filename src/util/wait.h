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

#endif
