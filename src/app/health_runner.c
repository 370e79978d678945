/* SPDX-License-Identifier: MIT */
/*
 * health_runner.c — the thread of `serve` that runs the periodic health pass
 * (svc_health_pass, service/health_pass.c): first a few seconds after start,
 * then every TRELLOHOOK_HEALTH_INTERVAL, with its own Trello client. Owned by
 * the app (app->health) between health_start and health_stop.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/app.h"
#include "service/service.h"
#include "util/log.h"
#include "util/wait.h"

#define COMPONENT "health"
#define FIRST_PASS_DELAY_MS 2000
/* Each pass may wait for Trello this long in all: half the interval, within
 * these bounds (a Trello that never answers ends the pass, not the thread). */
#define PASS_BUDGET_MIN_MS 10000
#define PASS_BUDGET_MAX_MS 300000

static int64_t pass_budget_ms(int64_t interval_ms)
{
	int64_t b = interval_ms / 2;
	return b < PASS_BUDGET_MIN_MS   ? PASS_BUDGET_MIN_MS
	       : b > PASS_BUDGET_MAX_MS ? PASS_BUDGET_MAX_MS
	                                : b;
}

struct health_runner {
	app *a;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* signalled by health_stop */
	bool stop;         /* guarded by mu */
};

/* ---- the runner thread ------------------------------------------------------------------- */

/* Wait up to @ms or until stopped; returns true when asked to stop. */
static bool wait_stop(struct health_runner *h, int64_t ms)
{
	struct timespec until;
	wait_deadline(&until, CLOCK_REALTIME, ms);
	pthread_mutex_lock(&h->mu);
	while (!h->stop) {
		int rc = pthread_cond_timedwait(&h->cv, &h->mu, &until);
		if (rc == ETIMEDOUT)
			break;
	}
	bool stop = h->stop;
	pthread_mutex_unlock(&h->mu);
	return stop;
}

static void *runner(void *arg)
{
	struct health_runner *h = arg;
	svc_ctx *sc = &h->a->svc;
	trello_client *tc = NULL;
	th_error err = {0, {0}};
	int64_t delay = FIRST_PASS_DELAY_MS < sc->cfg->health_interval_ms
	                    ? FIRST_PASS_DELAY_MS
	                    : sc->cfg->health_interval_ms;
	if (svc_trello_client(sc, &tc, &err)) {
		log_error(COMPONENT, "health pass disabled: %s", err.msg);
		return NULL;
	}
	while (!wait_stop(h, delay)) {
		health_stats s;
		int64_t t0 = time_mono_ms();
		/* no call runs on tc between passes: setting its deadline is safe */
		trello_client_set_deadline(tc, pass_budget_ms(sc->cfg->health_interval_ms));
		if (svc_health_pass(sc, tc, &s, &err)) {
			atomic_fetch_add_explicit(&sc->m->health_failures, 1, memory_order_relaxed);
			log_warn(COMPONENT, "health pass failed: %s", err.msg);
		} else {
			atomic_fetch_add_explicit(&sc->m->health_passes, 1, memory_order_relaxed);
			atomic_fetch_add_explicit(&sc->m->health_webhooks_disabled,
			                          s.webhooks_disabled, memory_order_relaxed);
			atomic_fetch_add_explicit(&sc->m->health_webhooks_deleted,
			                          s.webhooks_deleted, memory_order_relaxed);
			atomic_fetch_add_explicit(&sc->m->health_removals_finished,
			                          s.removals_finished, memory_order_relaxed);
			log_info(
			    COMPONENT,
			    "health pass in %lld ms: %zu token(s) checked, %zu dead; %zu "
			    "webhook(s) seen, %zu disabled, %zu deleted on Trello, %zu removal(s) "
			    "finished, %zu error(s)",
			    (long long)(time_mono_ms() - t0), s.tokens_checked, s.tokens_dead,
			    s.webhooks_seen, s.webhooks_disabled, s.webhooks_deleted,
			    s.removals_finished, s.errors);
		}
		delay = sc->cfg->health_interval_ms;
	}
	trello_client_free(tc);
	return NULL;
}

int health_start(app *a, th_error *err)
{
	a->health = NULL;
	if (a->cfg.health_interval_ms <= 0) {
		log_info(COMPONENT, "periodic health pass off (TRELLOHOOK_HEALTH_INTERVAL=0)");
		return 0;
	}
	if (!a->cfg.api_key[0]) {
		log_info(COMPONENT, "periodic health pass off: TRELLO_API_KEY is not set");
		return 0;
	}
	struct health_runner *h = calloc(1, sizeof *h);
	if (!h)
		return th_err(err, TH_ENOMEM, "out of memory");
	h->a = a;
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	int prc = pthread_create(&h->thread, NULL, runner, h);
	if (prc) {
		pthread_cond_destroy(&h->cv);
		pthread_mutex_destroy(&h->mu);
		free(h);
		return th_err(err, TH_EIO, "cannot start the health pass: %s", strerror(prc));
	}
	a->health = h;
	return 0;
}

void health_stop(app *a)
{
	struct health_runner *h = a ? a->health : NULL;
	if (!h)
		return;
	wait_raise(&h->mu, &h->cv, &h->stop);
	pthread_join(h->thread, NULL);
	pthread_cond_destroy(&h->cv);
	pthread_mutex_destroy(&h->mu);
	free(h);
	a->health = NULL;
}
