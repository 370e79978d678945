/* SPDX-License-Identifier: MIT */
/*
 * retention.c — the thread of `serve` that keeps the history bounded
 * (TRELLOHOOK_RETENTION): a prune shortly after start, then every hour,
 * of the events received longer ago than the retention whose deliveries are
 * all finished (svc_events_prune: small batches, so ingest keeps its lock
 * times). Its own thread: a prune never delays the health pass's Trello
 * calls, nor they it. Owned by the app between retention_start and
 * retention_stop.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/app.h"
#include "service/history.h"
#include "util/log.h"
#include "util/wait.h"

#define COMPONENT "retention"
#define FIRST_PRUNE_DELAY_MS 3000
#define PRUNE_INTERVAL_MS 3600000

struct retention_runner {
	struct app_runner r; /* stopped by retention_stop */
};

/* svc_events_prune's progress: go on until serve stops. */
static bool keep_going(void *ctx, uint64_t done, uint64_t total)
{
	struct retention_runner *r = ctx;
	return !wait_thread_stopping(&r->r.t);
}

static void *runner(void *arg)
{
	struct retention_runner *r = arg;
	svc_ctx *sc = &r->r.a->svc;
	int64_t delay = FIRST_PRUNE_DELAY_MS;
	while (!wait_thread_sleep(&r->r.t, delay, NULL, NULL)) {
		svc_prune_result res;
		th_error err = {0, {0}};
		int64_t t0 = time_mono_ms();
		int rc =
		    svc_events_prune(sc, sc->cfg->retention_ms, false, keep_going, r, &res, &err);
		char cutoff[32];
		time_format_iso(res.cutoff_ms, cutoff);
		if (rc)
			log_warn(COMPONENT,
			         "prune failed after %lld event(s): %s; trying again in an hour",
			         (long long)res.events, err.msg);
		else
			log_info(COMPONENT,
			         "%s %lld event(s) received before %s with %lld delivery(ies) "
			         "in %lld ms (%lld batch(es)); kept %lld with a delivery not yet "
			         "finished; %lld page(s) given back",
			         res.stopped ? "stopping: pruned so far" : "pruned",
			         (long long)res.events, cutoff, (long long)res.deliveries,
			         (long long)(time_mono_ms() - t0), (long long)res.batches,
			         (long long)res.kept, (long long)res.pages_freed);
		delay = PRUNE_INTERVAL_MS;
	}
	return NULL;
}

int retention_start(app *a, th_error *err)
{
	a->retention = NULL;
	if (a->cfg.retention_ms <= 0) {
		log_debug(COMPONENT, "no TRELLOHOOK_RETENTION: every event is kept");
		return 0;
	}
	struct app_runner *started;
	int rc = app_runner_start(&started, a, sizeof(struct retention_runner), runner,
	                          "the retention thread", "th-retention", err);
	if (rc)
		return rc;
	struct retention_runner *r = (struct retention_runner *)started;
	log_info(COMPONENT, "events older than %lld s are pruned hourly (TRELLOHOOK_RETENTION)",
	         (long long)(a->cfg.retention_ms / 1000));
	a->retention = r;
	return 0;
}

void retention_stop(app *a)
{
	struct retention_runner *r = a ? a->retention : NULL;
	if (!r)
		return;
	/* a prune in progress stops after its current batch (each is short) */
	app_runner_stop(&r->r);
	a->retention = NULL;
}
