/* SPDX-License-Identifier: MIT */
/* wait.c — see wait.h. */
#include "util/wait.h"

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
