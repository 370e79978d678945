/* SPDX-License-Identifier: MIT */
/* wait.c — see wait.h. */
#include "util/wait.h"

#include <errno.h>

#include "util/log.h"

void wait_deadline(struct timespec *until, clockid_t clock, int64_t ms)
{
	clock_gettime(clock, until);
	until->tv_sec += (time_t)(ms / 1000);
	until->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until->tv_nsec >= 1000000000L) {
		until->tv_sec++;
		until->tv_nsec -= 1000000000L;
	}
}

void wait_raise(pthread_mutex_t *mu, pthread_cond_t *cv, bool *flag)
{
	pthread_mutex_lock(mu);
	*flag = true;
	pthread_cond_signal(cv);
	pthread_mutex_unlock(mu);
}

void thread_name(pthread_t t, const char *name)
{
	/* ERANGE (longer than 15 bytes) is a mistake in our code; any other
	 * failure leaves the program's name, which is harmless */
	if (pthread_setname_np(t, name) == ERANGE)
		log_warn("thread", "thread name \"%s\" is longer than 15 bytes", name);
}

int wait_thread_start(wait_thread *t, void *(*fn)(void *), void *arg, const char *name)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* a clock set back delays no round */
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cv, &ca);
	pthread_condattr_destroy(&ca);
	t->stop = false;
	int rc = pthread_create(&t->thread, NULL, fn, arg);
	if (rc) {
		pthread_cond_destroy(&t->cv);
		pthread_mutex_destroy(&t->mu);
		return rc;
	}
	thread_name(t->thread, name);
	return 0;
}

bool wait_thread_sleep(wait_thread *t, int64_t ms, bool (*woken)(void *ctx), void *ctx)
{
	struct timespec until;
	wait_deadline(&until, CLOCK_MONOTONIC, ms < 0 ? (int64_t)86400000 * 365 : ms);
	pthread_mutex_lock(&t->mu);
	while (!t->stop && !(woken && woken(ctx)))
		if (pthread_cond_timedwait(&t->cv, &t->mu, &until) == ETIMEDOUT)
			break;
	bool stop = t->stop;
	pthread_mutex_unlock(&t->mu);
	return stop;
}

bool wait_thread_stopping(wait_thread *t)
{
	pthread_mutex_lock(&t->mu);
	bool stop = t->stop;
	pthread_mutex_unlock(&t->mu);
	return stop;
}

void wait_thread_stop(wait_thread *t)
{
	wait_raise(&t->mu, &t->cv, &t->stop);
	pthread_join(t->thread, NULL);
	pthread_cond_destroy(&t->cv);
	pthread_mutex_destroy(&t->mu);
}
