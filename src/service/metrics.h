/* SPDX-License-Identifier: MIT */
/*
 * metrics — counters and latency histograms, rendered in the Prometheus text
 * format for GET /metrics. Owned by the app; lock-free atomics, so the hot
 * path pays a few relaxed increments per request (and the dispatch path a few
 * per delivery attempt). docs/metrics.md lists every series.
 */
#ifndef TH_METRICS_H
#define TH_METRICS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "model/model.h"
#include "util/util.h"

/* Why a callback was refused; each has its own counter. */
enum reject_reason {
	REJECT_SIGNATURE_MISSING = 0,
	REJECT_SIGNATURE_MALFORMED,
	REJECT_SIGNATURE_MISMATCH,
	REJECT_BAD_PAYLOAD,
	REJECT_TOO_LARGE,
	REJECT_UNKNOWN_WEBHOOK,
	REJECT_WEBHOOK_REMOVED,
	REJECT_STORE_UNAVAILABLE,
	REJECT_BAD_REQUEST,
	REJECT__COUNT
};

#define METRICS_BUCKETS 12

typedef struct histogram {
	atomic_uint_fast64_t buckets[METRICS_BUCKETS]; /* cumulative at render time */
	atomic_uint_fast64_t count;
	atomic_uint_fast64_t sum_us;
} histogram;

/* What one delivery attempt came to (the dispatcher's decision). */
enum metrics_outcome { METRICS_DONE = 0, METRICS_FAILED, METRICS_DEAD, METRICS_OUTCOMES };

#define METRICS_KINDS 3     /* enum handler_kind: exec, forward, func */
#define METRICS_HANDLERS 50 /* handler ids with series of their own; the rest are "other" */

/* One handler's series: its run time and its attempts by outcome. The id and
 * kind are written once, before the slot is published (metrics.nhandlers). */
typedef struct metrics_handler {
	char id[64];
	enum handler_kind kind;
	histogram run; /* seconds, the run-time buckets */
	atomic_uint_fast64_t outcomes[METRICS_OUTCOMES];
} metrics_handler;

typedef struct metrics {
	atomic_uint_fast64_t events_received; /* verified POSTs handed to the store */
	atomic_uint_fast64_t events_stored;
	atomic_uint_fast64_t events_duplicate;
	atomic_uint_fast64_t events_backfilled; /* stored from Trello's actions listing */
	atomic_uint_fast64_t rejected[REJECT__COUNT];
	atomic_uint_fast64_t head_checks;
	atomic_uint_fast64_t commits;        /* group-commit transactions */
	histogram callback_latency;          /* POST arrival to 200, seconds */
	histogram commit_latency;            /* one group commit, seconds */
	atomic_uint_fast64_t token_problems; /* tokens found expired/invalid */
	/* the periodic health pass (service/health_pass.c) */
	atomic_uint_fast64_t health_passes;
	atomic_uint_fast64_t health_failures;
	atomic_uint_fast64_t health_webhooks_disabled; /* found disabled by Trello */
	atomic_uint_fast64_t health_webhooks_deleted;  /* found deleted on Trello */
	atomic_uint_fast64_t health_removals_finished; /* "removing" webhooks finished */
	/* delivery attempts (dispatch/dispatcher.c), by handler kind and by handler */
	histogram run_by_kind[METRICS_KINDS];
	atomic_uint_fast64_t outcomes_by_kind[METRICS_KINDS][METRICS_OUTCOMES];
	metrics_handler handlers[METRICS_HANDLERS];
	atomic_size_t nhandlers;              /* slots [0, nhandlers) are published, read-only */
	atomic_flag handlers_adding;          /* held only while a new slot is filled in */
	metrics_handler other[METRICS_KINDS]; /* ids past METRICS_HANDLERS, by kind */
	/* can the store commit? (service/store_health.c) */
	atomic_bool commit_failing;         /* the last commit (batch or probe) failed */
	atomic_int_fast64_t commit_last_ms; /* monotonic ms of that outcome; 0: none yet */
	atomic_int_fast64_t probe_last_ms;  /* monotonic ms of the last write probe */
	pthread_mutex_t commit_lock;        /* guards commit_error */
	char commit_error[192];             /* why the last failed commit failed */
} metrics;

/* Zero every counter and set up the lock (once, before any thread uses @m). */
void metrics_init(metrics *m);
void metrics_observe(histogram *h, int64_t micros);
const char *metrics_reject_name(enum reject_reason r);
/* Count one delivery attempt of handler @handler_id (of @kind) that ran for
 * @micros and came to @oc: the run-time histograms (by kind, and by handler
 * for the first METRICS_HANDLERS ids seen, the rest under handler="other")
 * and the outcome counters. Thread-safe and lock-free on every call but the
 * first of each new id (a spin while its slot is filled in). */
void metrics_handler_run(metrics *m, const char *handler_id, enum handler_kind kind, int64_t micros,
                         enum metrics_outcome oc);
const char *metrics_outcome_name(enum metrics_outcome oc); /* "done", "failed", "dead" */

/* Append this module's series in Prometheus text format. */
int metrics_render(const metrics *m, buf *out);

/* What the store says about deliveries, for /metrics: @counts by
 * delivery_status and when the oldest pending one fell due (ms, 0: none).
 * Appends trellohook_deliveries{status} (pending is the queue waiting to
 * run; failed ones wait for a retry) and
 * trellohook_delivery_oldest_pending_seconds (age at @now_ms, never below 0). */
int metrics_render_deliveries(const int64_t counts[5], int64_t oldest_pending_at, int64_t now_ms,
                              buf *out);

#endif
