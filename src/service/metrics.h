/*
 * metrics — counters and latency histograms, rendered in the Prometheus text
 * format for GET /metrics. Owned by the app; lock-free atomics, so the hot
 * path pays a few relaxed increments per request.
 */
#ifndef TH_METRICS_H
#define TH_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

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

typedef struct metrics {
	atomic_uint_fast64_t events_received; /* verified POSTs handed to the store */
	atomic_uint_fast64_t events_stored;
	atomic_uint_fast64_t events_duplicate;
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
} metrics;

void metrics_init(metrics *m);
void metrics_observe(histogram *h, int64_t micros);
const char *metrics_reject_name(enum reject_reason r);
/* Append this module's series in Prometheus text format. */
int metrics_render(const metrics *m, buf *out);

#endif
