/* metrics.c — see metrics.h. */
#include <string.h>

#include "service/metrics.h"

/* Upper bounds of the latency buckets, in microseconds (le= in seconds). */
static const int64_t bucket_us[METRICS_BUCKETS] = {100,   250,   500,   1000,   2500,   5000,
                                                   10000, 25000, 50000, 100000, 500000, 2500000};

static const char *reject_names[REJECT__COUNT] = {
    "signature_missing", "signature_malformed", "signature_mismatch", "bad_payload", "too_large",
    "unknown_webhook",   "webhook_removed",     "store_unavailable",  "bad_request"};

void metrics_init(metrics *m)
{
	memset(m, 0, sizeof *m);
}

const char *metrics_reject_name(enum reject_reason r)
{
	return r < REJECT__COUNT ? reject_names[r] : "unknown";
}

void metrics_observe(histogram *h, int64_t micros)
{
	for (size_t i = 0; i < METRICS_BUCKETS; i++)
		if (micros <= bucket_us[i]) {
			atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
			break;
		}
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_us, (uint_fast64_t)(micros > 0 ? micros : 0),
	                          memory_order_relaxed);
}

static int render_histogram(buf *out, const char *name, const char *help, const histogram *h)
{
	int rc = buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	uint64_t cum = 0;
	for (size_t i = 0; !rc && i < METRICS_BUCKETS; i++) {
		cum += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
		rc = buf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name,
		                (double)bucket_us[i] / 1e6, (unsigned long long)cum);
	}
	uint64_t count = atomic_load_explicit(&h->count, memory_order_relaxed);
	if (!rc)
		rc =
		    buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n",
		               name, (unsigned long long)count, name,
		               (double)atomic_load_explicit(&h->sum_us, memory_order_relaxed) / 1e6,
		               name, (unsigned long long)count);
	return rc;
}

static int counter(buf *out, const char *name, const char *help, uint64_t v)
{
	return buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
	                  (unsigned long long)v);
}

#define LOAD(x) ((uint64_t)atomic_load_explicit(&(x), memory_order_relaxed))

int metrics_render(const metrics *m, buf *out)
{
	int rc = counter(out, "trellohook_events_received_total",
	                 "Verified callbacks handed to the store.", LOAD(m->events_received));
	rc = rc ? rc
	        : counter(out, "trellohook_events_stored_total", "Events durably stored.",
	                  LOAD(m->events_stored));
	rc = rc ? rc
	        : counter(out, "trellohook_events_duplicate_total",
	                  "Callbacks whose action was already stored.", LOAD(m->events_duplicate));
	rc = rc ? rc
	        : buf_puts(out,
	                   "# HELP trellohook_events_rejected_total Callbacks refused, by reason.\n"
	                   "# TYPE trellohook_events_rejected_total counter\n");
	for (size_t i = 0; !rc && i < REJECT__COUNT; i++)
		rc = buf_printf(out, "trellohook_events_rejected_total{reason=\"%s\"} %llu\n",
		                reject_names[i], (unsigned long long)LOAD(m->rejected[i]));
	rc = rc ? rc
	        : counter(out, "trellohook_head_checks_total", "HEAD requests answered.",
	                  LOAD(m->head_checks));
	rc = rc ? rc
	        : counter(out, "trellohook_store_commits_total", "Group-commit transactions.",
	                  LOAD(m->commits));
	rc = rc ? rc
	        : counter(out, "trellohook_token_problems_total",
	                  "Trello answers saying a token expired or is invalid.",
	                  LOAD(m->token_problems));
	rc = rc ? rc
	        : counter(out, "trellohook_health_passes_total",
	                  "Periodic health passes completed.", LOAD(m->health_passes));
	rc = rc ? rc
	        : counter(out, "trellohook_health_failures_total",
	                  "Periodic health passes that failed.", LOAD(m->health_failures));
	rc = rc ? rc
	        : counter(out, "trellohook_health_webhooks_disabled_total",
	                  "Webhooks the health pass found disabled by Trello.",
	                  LOAD(m->health_webhooks_disabled));
	rc = rc ? rc
	        : counter(out, "trellohook_health_webhooks_deleted_total",
	                  "Webhooks the health pass found deleted on Trello.",
	                  LOAD(m->health_webhooks_deleted));
	rc = rc ? rc
	        : counter(out, "trellohook_health_removals_finished_total",
	                  "Removals the health pass finished on Trello.",
	                  LOAD(m->health_removals_finished));
	rc = rc ? rc
	        : render_histogram(out, "trellohook_callback_latency_seconds",
	                           "Time from a callback's arrival to its answer.",
	                           &m->callback_latency);
	rc = rc ? rc
	        : render_histogram(out, "trellohook_commit_latency_seconds",
	                           "Duration of one group commit.", &m->commit_latency);
	return rc;
}
