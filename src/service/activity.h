/* SPDX-License-Identifier: MIT */
/*
 * activity — what the admin's charts show, read from the hourly event rollup
 * (store/store.h, event_rollup) and never from the events themselves: events
 * per bucket (an hour or a day) by action type and by webhook, over a window
 * that ends now.
 */
#ifndef TH_SVC_ACTIVITY_H
#define TH_SVC_ACTIVITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "service/ctx.h"

#define SVC_ACTIVITY_MAX_BUCKETS 744 /* 31 days of hours */

/* One name (an action type or a webhook id) and its count per bucket. */
typedef struct svc_activity_series {
	char *name;
	uint64_t *values; /* nbuckets counts, oldest bucket first */
	uint64_t total;
} svc_activity_series;

/* Counts per bucket; bucket i starts at hour first_hour + i * bucket_hours
 * (hours since the epoch, UTC). */
typedef struct svc_activity {
	int64_t first_hour;
	int64_t bucket_hours; /* 1 or 24 */
	size_t nbuckets;
	svc_activity_series *types; /* by action type, largest total first */
	size_t ntypes;
	svc_activity_series *webhooks; /* by webhook id, in no particular order */
	size_t nwebhooks;
} svc_activity;

/* Fill @out with the @nbuckets buckets of @bucket_hours hours (1: hours, 24:
 * days aligned to UTC midnight) that end with the one holding @now_ms;
 * by webhook too only when @per_webhook (else out->webhooks stays empty and
 * the store sums over webhooks: fewer rows for charts of types alone).
 * TH_EINVAL for a bucket size other than 1 or 24 or more than
 * SVC_ACTIVITY_MAX_BUCKETS hours in all; the store's error otherwise. @out
 * is the caller's, freed with svc_activity_clear() (also after a failure).
 * Thread-safe: reads the store only. */
int svc_activity_read(svc_ctx *sc, int64_t now_ms, int64_t bucket_hours, size_t nbuckets,
                      bool per_webhook, svc_activity *out, th_error *err);

/* The series of @a named @name (a webhook id), or NULL. */
const svc_activity_series *svc_activity_webhook(const svc_activity *a, const char *name);

/* The silence rule of the webhooks page. A webhook "usually gets events"
 * when it received at least SVC_SILENT_MIN_EVENTS in the 7 days before now;
 * it is "silent" when, besides, its last event is older than 4 times its
 * mean inter-arrival over those 7 days (7 days / that count), and at least
 * 1 hour. The mean comes from the hourly rollup (a bounded read); a median
 * would need every arrival time. Returns whether @last_event_at (ms, 0:
 * never) is silent at @now_ms; *@limit_ms (may be NULL) gets the threshold
 * (0 when the webhook does not usually get events). Pure; thread-safe. */
#define SVC_SILENT_MIN_EVENTS 24
#define SVC_SILENT_FACTOR 4
#define SVC_SILENT_FLOOR_MS 3600000
bool svc_activity_silent(uint64_t events_7d, int64_t last_event_at, int64_t now_ms,
                         int64_t *limit_ms);

/* Free what svc_activity_read() filled. NULL-safe; @a is zeroed. */
void svc_activity_clear(svc_activity *a);

/* ---- deliveries (delivery_activity.c), from the hourly delivery rollup ---- */

#define SVC_RUN_BUCKETS 16 /* == STORE_RUN_BUCKETS (store.h) */

/* One handler's attempts over the window. */
typedef struct svc_handler_stats {
	char *handler_id;
	uint64_t done, failed, dead;    /* attempts by outcome */
	uint64_t runs[SVC_RUN_BUCKETS]; /* attempts with a known run time, by bucket */
	uint64_t timed;                 /* their sum */
	int64_t p50_us, p95_us;         /* -1: no attempt with a known run time */
} svc_handler_stats;

/* Attempts per hour by outcome, and per handler. */
typedef struct svc_delivery_activity {
	int64_t first_hour; /* hours since the epoch (UTC) of bucket 0 */
	size_t nbuckets;
	uint64_t *done, *failed, *dead; /* nbuckets each, oldest first */
	svc_handler_stats *handlers;    /* by attempts, most first */
	size_t nhandlers;
} svc_delivery_activity;

/* Fill @out with the @hours hours that end with the one holding @now_ms
 * (1..SVC_ACTIVITY_MAX_BUCKETS, else TH_EINVAL). Reads the rollup only.
 * Free with svc_delivery_activity_clear() (also after a failure). */
int svc_delivery_activity_read(svc_ctx *sc, int64_t now_ms, size_t hours,
                               svc_delivery_activity *out, th_error *err);
void svc_delivery_activity_clear(svc_delivery_activity *a);
/* The run time at quantile @q (0..1) of @counts (attempts per run-time
 * bucket, store.h's bounds), interpolated linearly inside its bucket like
 * Prometheus' histogram_quantile; the last, unbounded bucket answers its
 * lower bound. -1 when @counts are all 0. Pure. */
int64_t svc_run_quantile(const uint64_t counts[SVC_RUN_BUCKETS], double q);

#endif
