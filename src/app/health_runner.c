/* SPDX-License-Identifier: MIT */
/*
 * health_runner.c — the thread of `serve` that talks to Trello on its own:
 * the periodic health pass (svc_health_pass, service/health_pass.c), first a
 * few seconds after start, then every TRELLOHOOK_HEALTH_INTERVAL, each
 * followed by a backfill of every active webhook (service/backfill.c), and
 * the backfills the admin asks for (svc_backfill_request) in between. One
 * Trello client for all of it, so they share its rate-limit table; never on
 * the receive path. Owned by the app (app->health) between health_start and
 * health_stop.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/app.h"
#include "service/backfill.h"
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

#define BACKFILL_QUEUE 64 /* webhooks asked for by the admin, waiting */
/* All the Trello calls of one backfill stage may take this long (what is
 * left is done by the next pass, from the mark). */
#define BACKFILL_BUDGET_MS 300000

struct health_runner {
	struct app_runner r; /* r.t.cv: signalled by health_stop and backfill requests */
	atomic_bool cancel;  /* the stop: ends the Trello call in flight, then the pass */
	/* guarded by t.mu: webhooks whose backfill was asked for (admin button) */
	char want[BACKFILL_QUEUE][64];
	size_t nwant;
};

/* ---- the runner thread ------------------------------------------------------------------- */

/* wait_thread_sleep's wake-up: a backfill is asked for. t.mu held. */
static bool wants_backfill(void *ctx)
{
	const struct health_runner *h = ctx;
	return h->nwant > 0;
}

/* Wait up to @ms (-1: for ever), until stopped or a backfill is asked for;
 * returns true when asked to stop. */
static bool wait_stop(struct health_runner *h, int64_t ms)
{
	return wait_thread_sleep(&h->r.t, ms, wants_backfill, h);
}

/* The next webhook asked for into @id (64 bytes); false when none. */
static bool take_want(struct health_runner *h, char *id)
{
	pthread_mutex_lock(&h->r.t.mu);
	bool any = h->nwant > 0;
	if (any) {
		str_copy(id, 64, h->want[0]);
		memmove(h->want[0], h->want[1], (h->nwant - 1) * sizeof h->want[0]);
		h->nwant--;
	}
	pthread_mutex_unlock(&h->r.t.mu);
	return any;
}

/* svc_ctx.backfill_request: queue @id for the runner (a repeat is queued once). */
static int request_backfill(void *ctx, const char *id, th_error *err)
{
	struct health_runner *h = ctx;
	int rc = 0;
	pthread_mutex_lock(&h->r.t.mu);
	bool queued = false;
	for (size_t i = 0; i < h->nwant; i++)
		queued = queued || str_eq(h->want[i], id);
	if (!queued && h->nwant == BACKFILL_QUEUE)
		rc = th_err(err, TH_EUNAVAIL, "%d backfills are waiting already; try again soon",
		            BACKFILL_QUEUE);
	else if (!queued && !str_copy(h->want[h->nwant], sizeof h->want[0], id))
		rc = th_err(err, TH_EINVAL, "not a webhook id");
	else if (!queued)
		h->nwant++;
	pthread_cond_signal(&h->r.t.cv);
	pthread_mutex_unlock(&h->r.t.mu);
	return rc;
}

static void run_health(svc_ctx *sc, trello_client *tc)
{
	health_stats s;
	th_error err = {0, {0}};
	int64_t t0 = time_mono_ms();
	/* no call runs on tc between passes: setting its deadline is safe */
	trello_client_set_deadline(tc, pass_budget_ms(sc->cfg->health_interval_ms));
	if (svc_health_pass(sc, tc, &s, &err)) {
		atomic_fetch_add_explicit(&sc->m->health_failures, 1, memory_order_relaxed);
		log_warn(COMPONENT, "health pass failed: %s", err.msg);
		return;
	}
	atomic_fetch_add_explicit(&sc->m->health_passes, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&sc->m->health_webhooks_disabled, s.webhooks_disabled,
	                          memory_order_relaxed);
	atomic_fetch_add_explicit(&sc->m->health_webhooks_deleted, s.webhooks_deleted,
	                          memory_order_relaxed);
	atomic_fetch_add_explicit(&sc->m->health_removals_finished, s.removals_finished,
	                          memory_order_relaxed);
	log_info(COMPONENT,
	         "health pass in %lld ms: %zu token(s) checked, %zu dead; %zu "
	         "webhook(s) seen, %zu disabled, %zu deleted on Trello, %zu removal(s) "
	         "finished, %zu error(s)",
	         (long long)(time_mono_ms() - t0), s.tokens_checked, s.tokens_dead, s.webhooks_seen,
	         s.webhooks_disabled, s.webhooks_deleted, s.removals_finished, s.errors);
}

/* Backfill: every active webhook when @all, then every one asked for. The
 * same client as the health pass, so both share its rate-limit table. */
static void run_backfill(struct health_runner *h, svc_ctx *sc, trello_client *tc, bool all)
{
	trello_client_set_deadline(tc, BACKFILL_BUDGET_MS);
	if (all) {
		size_t n = svc_backfill_all(sc, tc, &h->cancel);
		if (n)
			log_info(COMPONENT, "backfill: %zu missed event(s) recovered", n);
	}
	char id[64];
	while (!atomic_load(&h->cancel) && take_want(h, id)) {
		backfill_opts o = BACKFILL_OPTS_INIT;
		backfill_result r;
		th_error err = {0, {0}};
		o.cancel = &h->cancel;
		trello_client_set_deadline(tc, BACKFILL_BUDGET_MS);
		/* the pass logs its own outcome and keeps it in the mark */
		(void)svc_backfill_webhook(sc, tc, id, &o, &r, &err);
	}
}

static void *runner(void *arg)
{
	struct health_runner *h = arg;
	svc_ctx *sc = &h->r.a->svc;
	trello_client *tc = NULL;
	th_error err = {0, {0}};
	int64_t interval = sc->cfg->health_interval_ms;
	int64_t first =
	    interval > 0 && interval < FIRST_PASS_DELAY_MS ? interval : FIRST_PASS_DELAY_MS;
	if (svc_trello_client(sc, &tc, &err)) {
		log_error(COMPONENT, "health pass and backfill disabled: %s", err.msg);
		return NULL;
	}
	/* a stop abandons the call in flight: a Trello that does not answer
	 * must not hold serve's exit for a pass's budget (up to 5 min) */
	trello_client_set_cancel(tc, &h->cancel);
	/* first the health pass (so webhook states are fresh), then what was
	 * missed while we were down; then every interval the same */
	int64_t next = time_mono_ms() + first;
	while (!wait_stop(h, next ? (next > time_mono_ms() ? next - time_mono_ms() : 0) : -1)) {
		bool due = next && time_mono_ms() >= next;
		if (due && interval > 0)
			run_health(sc, tc);
		run_backfill(h, sc, tc, due);
		if (due)
			next = interval > 0 ? time_mono_ms() + interval : 0;
	}
	trello_client_free(tc);
	return NULL;
}

int health_start(app *a, th_error *err)
{
	a->health = NULL;
	if (!a->cfg.api_key[0]) {
		log_info(COMPONENT,
		         "periodic health pass and backfill off: TRELLO_API_KEY is not set");
		return 0;
	}
	if (a->cfg.health_interval_ms <= 0)
		log_info(COMPONENT, "periodic health pass off (TRELLOHOOK_HEALTH_INTERVAL=0); "
		                    "backfill runs at start and when asked for");
	struct app_runner *r;
	int rc = app_runner_start(&r, a, sizeof(struct health_runner), runner, "the health pass",
	                          "th-health", err);
	if (rc)
		return rc;
	struct health_runner *h = (struct health_runner *)r;
	a->health = h;
	a->svc.backfill_request = request_backfill;
	a->svc.backfill_ctx = h;
	return 0;
}

void health_stop(app *a)
{
	struct health_runner *h = a ? a->health : NULL;
	if (!h)
		return;
	a->svc.backfill_request = NULL;
	a->svc.backfill_ctx = NULL;
	atomic_store(&h->cancel, true);
	app_runner_stop(&h->r);
	a->health = NULL;
}
