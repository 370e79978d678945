/* SPDX-License-Identifier: MIT */
/*
 * delivery_activity.c — the dashboard's deliveries chart and the handlers'
 * success rate and p50/p95 run time (activity.h), from the hourly delivery
 * rollup (migration 9): one row per (hour, handler, outcome, run-time
 * bucket), so 24 hours read at most 24 x handlers x 3 x 16 small rows,
 * however many deliveries there were.
 */
#include <stdlib.h>
#include <string.h>

#include "service/activity.h"
#include "store/store.h"
#include "util/util.h"

_Static_assert(SVC_RUN_BUCKETS == STORE_RUN_BUCKETS, "one set of run-time buckets");

int64_t svc_run_quantile(const uint64_t counts[SVC_RUN_BUCKETS], double q)
{
	uint64_t total = 0;
	for (int b = 0; b < SVC_RUN_BUCKETS; b++)
		total += counts[b];
	if (!total)
		return -1;
	double rank = q * (double)total, seen = 0;
	for (int b = 0; b < SVC_RUN_BUCKETS; b++) {
		if (!counts[b] || seen + (double)counts[b] < rank) {
			seen += (double)counts[b];
			continue;
		}
		int64_t lo = b ? store_run_bucket_max_us[b - 1] : 0;
		if (b == SVC_RUN_BUCKETS - 1)
			return lo; /* unbounded: "more than" its lower bound */
		int64_t hi = store_run_bucket_max_us[b];
		double within = (rank - seen) / (double)counts[b];
		return lo + (int64_t)(within * (double)(hi - lo));
	}
	return store_run_bucket_max_us[SVC_RUN_BUCKETS - 2];
}

static svc_handler_stats *stats_for(svc_delivery_activity *a, const char *id)
{
	for (size_t i = 0; i < a->nhandlers; i++)
		if (str_eq(a->handlers[i].handler_id, id))
			return &a->handlers[i];
	svc_handler_stats *grown = realloc(a->handlers, (a->nhandlers + 1) * sizeof *grown);
	if (!grown)
		return NULL;
	a->handlers = grown;
	svc_handler_stats *h = &grown[a->nhandlers];
	memset(h, 0, sizeof *h);
	if (!(h->handler_id = str_dup(id ? id : "")))
		return NULL;
	a->nhandlers++;
	return h;
}

static int by_attempts(const void *x, const void *y)
{
	const svc_handler_stats *a = x, *b = y;
	uint64_t na = a->done + a->failed + a->dead, nb = b->done + b->failed + b->dead;
	if (na != nb)
		return na > nb ? -1 : 1;
	return strcmp(a->handler_id, b->handler_id);
}

int svc_delivery_activity_read(svc_ctx *sc, int64_t now_ms, size_t hours,
                               svc_delivery_activity *out, th_error *err)
{
	memset(out, 0, sizeof *out);
	if (hours < 1 || hours > SVC_ACTIVITY_MAX_BUCKETS)
		return th_err(err, TH_EINVAL, "delivery activity: 1 to %d hours",
		              SVC_ACTIVITY_MAX_BUCKETS);
	int64_t last = now_ms / 3600000;
	out->first_hour = last - (int64_t)hours + 1;
	out->nbuckets = hours;
	out->done = calloc(hours, sizeof *out->done);
	out->failed = calloc(hours, sizeof *out->failed);
	out->dead = calloc(hours, sizeof *out->dead);
	if (!out->done || !out->failed || !out->dead)
		return th_err(err, TH_ENOMEM, "out of memory");
	delivery_rollup_row *rows = NULL;
	size_t n = 0;
	int ret = store_delivery_rollup(sc->st, out->first_hour, last + 1, &rows, &n, err);
	for (size_t i = 0; ret == 0 && i < n; i++) {
		const delivery_rollup_row *r = &rows[i];
		int64_t k = r->hour - out->first_hour;
		if (k < 0 || k >= (int64_t)hours || r->n <= 0)
			continue;
		uint64_t c = (uint64_t)r->n;
		svc_handler_stats *h = stats_for(out, r->handler_id);
		if (!h) {
			ret = th_err(err, TH_ENOMEM, "out of memory");
			break;
		}
		if (r->status == DELIVERY_DONE) {
			out->done[k] += c;
			h->done += c;
		} else if (r->status == DELIVERY_DEAD) {
			out->dead[k] += c;
			h->dead += c;
		} else {
			out->failed[k] += c;
			h->failed += c;
		}
		if (r->bucket >= 0 && r->bucket < SVC_RUN_BUCKETS) {
			h->runs[r->bucket] += c;
			h->timed += c;
		}
	}
	delivery_rollup_list_free(rows, n);
	for (size_t i = 0; ret == 0 && i < out->nhandlers; i++) {
		out->handlers[i].p50_us = svc_run_quantile(out->handlers[i].runs, 0.50);
		out->handlers[i].p95_us = svc_run_quantile(out->handlers[i].runs, 0.95);
	}
	if (ret == 0 && out->nhandlers > 1)
		qsort(out->handlers, out->nhandlers, sizeof *out->handlers, by_attempts);
	return ret;
}

void svc_delivery_activity_clear(svc_delivery_activity *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->nhandlers; i++)
		free(a->handlers[i].handler_id);
	TH_FREE_ALL(a->done, a->failed, a->dead, a->handlers);
	memset(a, 0, sizeof *a);
}
