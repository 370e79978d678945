/* SPDX-License-Identifier: MIT */
/* metrics.c — see metrics.h. */
#include <string.h>

#include "service/metrics.h"

/* Upper bounds of the latency buckets, in microseconds (le= in seconds). */
static const int64_t bucket_us[METRICS_BUCKETS] = {100,   250,   500,   1000,   2500,   5000,
                                                   10000, 25000, 50000, 100000, 500000, 2500000};
/* Handler run time: a forward on loopback takes a millisecond, an exec a few,
 * a slow one up to TRELLOHOOK_HANDLER_TIMEOUT (30 s by default). */
static const int64_t run_bucket_us[METRICS_BUCKETS] = {
    1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000, 5000000, 15000000, 30000000};

static const char *outcome_names[METRICS_OUTCOMES] = {"done", "failed", "dead"};

static const char *reject_names[REJECT__COUNT] = {
    "signature_missing", "signature_malformed", "signature_mismatch", "bad_payload", "too_large",
    "unknown_webhook",   "webhook_removed",     "store_unavailable",  "bad_request"};

void metrics_init(metrics *m)
{
	memset(m, 0, sizeof *m);
	atomic_flag_clear(&m->handlers_adding);
	pthread_mutex_init(&m->commit_lock, NULL);
}

const char *metrics_reject_name(enum reject_reason r)
{
	return r < REJECT__COUNT ? reject_names[r] : "unknown";
}

const char *metrics_outcome_name(enum metrics_outcome oc)
{
	return (unsigned)oc < METRICS_OUTCOMES ? outcome_names[oc] : "unknown";
}

static void observe(histogram *h, const int64_t *bounds, int64_t micros)
{
	for (size_t i = 0; i < METRICS_BUCKETS; i++)
		if (micros <= bounds[i]) {
			atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
			break;
		}
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_us, (uint_fast64_t)(micros > 0 ? micros : 0),
	                          memory_order_relaxed);
}

void metrics_observe(histogram *h, int64_t micros)
{
	observe(h, bucket_us, micros);
}

/* Can @id stand in a label value as it is (no quoting needed) and fit a slot?
 * Our ids are 20 URL-safe characters; anything else is counted as "other". */
static bool label_safe(const char *id)
{
	size_t n = strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.:");
	return n > 0 && id[n] == '\0' && n < sizeof((metrics_handler *)0)->id;
}

/* The published slot of @id, or NULL. Lock-free: slots below nhandlers are
 * complete and never change (the acquire pairs with the release in add). */
static metrics_handler *find_handler(metrics *m, const char *id, size_t *n_out)
{
	size_t n = atomic_load_explicit(&m->nhandlers, memory_order_acquire);
	*n_out = n;
	for (size_t i = 0; i < n; i++)
		if (str_eq(m->handlers[i].id, id))
			return &m->handlers[i];
	return NULL;
}

/* The slot of @id: found, or added while there is room, else NULL. */
static metrics_handler *handler_slot(metrics *m, const char *id, enum handler_kind kind)
{
	size_t n;
	metrics_handler *h = find_handler(m, id, &n);
	if (h || n >= METRICS_HANDLERS || !label_safe(id))
		return h;
	/* rare (once per new id): one adder at a time, so an id gets one slot */
	while (atomic_flag_test_and_set_explicit(&m->handlers_adding, memory_order_acquire))
		;
	h = find_handler(m, id, &n);
	if (!h && n < METRICS_HANDLERS) {
		h = &m->handlers[n];
		str_copy(h->id, sizeof h->id, id);
		h->kind = kind;
		atomic_store_explicit(&m->nhandlers, n + 1, memory_order_release);
	}
	atomic_flag_clear_explicit(&m->handlers_adding, memory_order_release);
	return h;
}

void metrics_handler_run(metrics *m, const char *handler_id, enum handler_kind kind, int64_t micros,
                         enum metrics_outcome oc)
{
	if ((unsigned)kind >= METRICS_KINDS || (unsigned)oc >= METRICS_OUTCOMES)
		return;
	observe(&m->run_by_kind[kind], run_bucket_us, micros);
	atomic_fetch_add_explicit(&m->outcomes_by_kind[kind][oc], 1, memory_order_relaxed);
	metrics_handler *h = handler_id ? handler_slot(m, handler_id, kind) : NULL;
	if (!h)
		h = &m->other[kind];
	observe(&h->run, run_bucket_us, micros);
	atomic_fetch_add_explicit(&h->outcomes[oc], 1, memory_order_relaxed);
}

/* The samples of one histogram with @labels ("kind=\"exec\"," or ""). The
 * +Inf bucket and _count are the bucket sum read here, so a scrape racing an
 * observation never shows a count below a bucket. */
static int render_series(buf *out, const char *name, const char *labels, const int64_t *bounds,
                         const histogram *h)
{
	int rc = 0;
	uint64_t cum = 0;
	for (size_t i = 0; !rc && i < METRICS_BUCKETS; i++) {
		cum += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
		rc = buf_printf(out, "%s_bucket{%sle=\"%g\"} %llu\n", name, labels,
		                (double)bounds[i] / 1e6, (unsigned long long)cum);
	}
	uint64_t count = atomic_load_explicit(&h->count, memory_order_relaxed);
	if (count < cum)
		count = cum;
	/* the label set without its trailing comma, for _sum and _count */
	int ll = (int)strlen(labels);
	ll = ll ? ll - 1 : 0;
	if (!rc)
		rc = buf_printf(out, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, labels,
		                (unsigned long long)count);
	if (!rc)
		rc = buf_printf(
		    out, "%s_sum%s%.*s%s %.6f\n%s_count%s%.*s%s %llu\n", name, ll ? "{" : "", ll,
		    labels, ll ? "}" : "",
		    (double)atomic_load_explicit(&h->sum_us, memory_order_relaxed) / 1e6, name,
		    ll ? "{" : "", ll, labels, ll ? "}" : "", (unsigned long long)count);
	return rc;
}

static int render_histogram(buf *out, const char *name, const char *help, const histogram *h)
{
	int rc = buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	return rc ? rc : render_series(out, name, "", bucket_us, h);
}

static int counter(buf *out, const char *name, const char *help, uint64_t v)
{
	return buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
	                  (unsigned long long)v);
}

#define LOAD(x) ((uint64_t)atomic_load_explicit(&(x), memory_order_relaxed))

/* One handler's attempts by outcome (all three, so rate() sees zeros). */
static int render_attempts(buf *out, const char *id, enum handler_kind kind,
                           const metrics_handler *h)
{
	int rc = 0;
	for (int o = 0; !rc && o < METRICS_OUTCOMES; o++)
		rc = buf_printf(out,
		                "trellohook_delivery_attempts_total{handler=\"%s\",kind=\"%s\","
		                "outcome=\"%s\"} %llu\n",
		                id, handler_kind_name(kind), outcome_names[o],
		                (unsigned long long)LOAD(h->outcomes[o]));
	return rc;
}

/* Delivery attempts: run time and outcomes, by kind and by handler. */
static int render_handlers(const metrics *m, buf *out)
{
	char labels[128];
	int rc = buf_puts(out, "# HELP trellohook_handler_run_seconds Run time of one delivery "
	                       "attempt, by handler kind.\n"
	                       "# TYPE trellohook_handler_run_seconds histogram\n");
	for (int k = 0; !rc && k < METRICS_KINDS; k++) {
		str_printf(labels, sizeof labels, "kind=\"%s\",", handler_kind_name(k));
		rc = render_series(out, "trellohook_handler_run_seconds", labels, run_bucket_us,
		                   &m->run_by_kind[k]);
	}
	size_t n = atomic_load_explicit(&m->nhandlers, memory_order_acquire);
	if (!rc)
		rc = buf_printf(out,
		                "# HELP trellohook_handler_run_by_handler_seconds Run time of one "
		                "delivery attempt, by handler (the first %d handlers; the rest as "
		                "handler=\"other\").\n"
		                "# TYPE trellohook_handler_run_by_handler_seconds histogram\n",
		                METRICS_HANDLERS);
	for (size_t i = 0; !rc && i < n; i++) {
		const metrics_handler *h = &m->handlers[i];
		str_printf(labels, sizeof labels, "handler=\"%s\",kind=\"%s\",", h->id,
		           handler_kind_name(h->kind));
		rc = render_series(out, "trellohook_handler_run_by_handler_seconds", labels,
		                   run_bucket_us, &h->run);
	}
	for (int k = 0; !rc && k < METRICS_KINDS; k++) {
		if (!LOAD(m->other[k].run.count))
			continue;
		str_printf(labels, sizeof labels, "handler=\"other\",kind=\"%s\",",
		           handler_kind_name(k));
		rc = render_series(out, "trellohook_handler_run_by_handler_seconds", labels,
		                   run_bucket_us, &m->other[k].run);
	}
	if (!rc)
		rc = buf_puts(out, "# HELP trellohook_delivery_outcomes_total Delivery attempts by "
		                   "handler kind and outcome (failed: a retry follows).\n"
		                   "# TYPE trellohook_delivery_outcomes_total counter\n");
	for (int k = 0; !rc && k < METRICS_KINDS; k++)
		for (int o = 0; !rc && o < METRICS_OUTCOMES; o++)
			rc = buf_printf(
			    out,
			    "trellohook_delivery_outcomes_total{kind=\"%s\",outcome=\"%s\"} "
			    "%llu\n",
			    handler_kind_name(k), outcome_names[o],
			    (unsigned long long)LOAD(m->outcomes_by_kind[k][o]));
	if (!rc)
		rc = buf_printf(out,
		                "# HELP trellohook_delivery_attempts_total Delivery attempts by "
		                "handler and outcome (the first %d handlers; the rest as "
		                "handler=\"other\").\n"
		                "# TYPE trellohook_delivery_attempts_total counter\n",
		                METRICS_HANDLERS);
	for (size_t i = 0; !rc && i < n; i++)
		rc = render_attempts(out, m->handlers[i].id, m->handlers[i].kind, &m->handlers[i]);
	for (int k = 0; !rc && k < METRICS_KINDS; k++)
		if (LOAD(m->other[k].run.count))
			rc = render_attempts(out, "other", k, &m->other[k]);
	return rc;
}

int metrics_render_deliveries(const int64_t counts[5], int64_t oldest_pending_at, int64_t now_ms,
                              buf *out)
{
	int rc = buf_puts(out, "# HELP trellohook_deliveries Deliveries in the store by status "
	                       "(pending: waiting to run; failed: waiting for a retry).\n"
	                       "# TYPE trellohook_deliveries gauge\n");
	for (int s = 0; !rc && s < 5; s++)
		rc =
		    buf_printf(out, "trellohook_deliveries{status=\"%s\"} %lld\n",
		               delivery_status_name((enum delivery_status)s), (long long)counts[s]);
	int64_t age =
	    oldest_pending_at && now_ms > oldest_pending_at ? now_ms - oldest_pending_at : 0;
	if (!rc)
		rc = buf_printf(
		    out,
		    "# HELP trellohook_delivery_oldest_pending_seconds How long the oldest "
		    "pending delivery has been due (0: none pending).\n"
		    "# TYPE trellohook_delivery_oldest_pending_seconds gauge\n"
		    "trellohook_delivery_oldest_pending_seconds %.3f\n",
		    (double)age / 1000.0);
	return rc;
}

/* A counter without labels, read when the page is rendered. */
typedef struct plain_counter {
	const char *name, *help;
	uint64_t v;
} plain_counter;

static int counters(buf *out, const plain_counter *c, size_t n)
{
	int rc = 0;
	for (size_t i = 0; !rc && i < n; i++)
		rc = counter(out, c[i].name, c[i].help, c[i].v);
	return rc;
}

int metrics_render(const metrics *m, buf *out)
{
	const plain_counter events[] = {
	    {"trellohook_events_received_total", "Verified callbacks handed to the store.",
	     LOAD(m->events_received)},
	    {"trellohook_events_stored_total", "Events durably stored.", LOAD(m->events_stored)},
	    {"trellohook_events_duplicate_total", "Callbacks whose action was already stored.",
	     LOAD(m->events_duplicate)},
	    {"trellohook_backfilled_events_total",
	     "Events recovered from Trello's actions listing after downtime (also in "
	     "events_stored).",
	     LOAD(m->events_backfilled)},
	};
	const plain_counter others[] = {
	    {"trellohook_head_checks_total", "HEAD requests answered.", LOAD(m->head_checks)},
	    {"trellohook_store_commits_total", "Group-commit transactions.", LOAD(m->commits)},
	    {"trellohook_token_problems_total",
	     "Trello answers saying a token expired or is invalid.", LOAD(m->token_problems)},
	    {"trellohook_health_passes_total", "Periodic health passes completed.",
	     LOAD(m->health_passes)},
	    {"trellohook_health_failures_total", "Periodic health passes that failed.",
	     LOAD(m->health_failures)},
	    {"trellohook_health_webhooks_disabled_total",
	     "Webhooks the health pass found disabled by Trello.",
	     LOAD(m->health_webhooks_disabled)},
	    {"trellohook_health_webhooks_deleted_total",
	     "Webhooks the health pass found deleted on Trello.", LOAD(m->health_webhooks_deleted)},
	    {"trellohook_health_removals_finished_total",
	     "Removals the health pass finished on Trello.", LOAD(m->health_removals_finished)},
	};
	int rc = counters(out, events, TH_ARRAY_LEN(events));
	rc = rc ? rc
	        : buf_puts(out,
	                   "# HELP trellohook_events_rejected_total Callbacks refused, by reason.\n"
	                   "# TYPE trellohook_events_rejected_total counter\n");
	for (size_t i = 0; !rc && i < REJECT__COUNT; i++)
		rc = buf_printf(out, "trellohook_events_rejected_total{reason=\"%s\"} %llu\n",
		                reject_names[i], (unsigned long long)LOAD(m->rejected[i]));
	rc = rc ? rc : counters(out, others, TH_ARRAY_LEN(others));
	rc = rc ? rc
	        : render_histogram(out, "trellohook_callback_latency_seconds",
	                           "Time from a callback's arrival to its answer.",
	                           &m->callback_latency);
	rc = rc ? rc
	        : render_histogram(out, "trellohook_commit_latency_seconds",
	                           "Duration of one group commit.", &m->commit_latency);
	return rc ? rc : render_handlers(m, out);
}
