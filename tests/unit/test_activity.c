/* SPDX-License-Identifier: MIT */
/* activity: the admin charts' numbers from the hourly event rollup over a
 * real (in-memory) SQLite store — hourly and daily buckets and their edges,
 * types ordered by total, per-webhook series, refused arguments — and the
 * silence rule of the webhooks page at its boundaries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "service/activity.h"
#include "store/store.h"

#define H 3600000LL
/* "now": 2026-12-01 13:30 UTC, in ms */
#define NOW ((int64_t)1796131800000LL)

static event *mk(const char *wh, const char *action, const char *type, int64_t at)
{
	event *ev = calloc(1, sizeof *ev);
	assert_non_null(ev);
	ev->webhook_id = str_dup(wh);
	ev->action_id = str_dup(action);
	ev->action_type = str_dup(type);
	ev->summary = str_dup("s");
	ev->payload = str_dup("{}");
	ev->payload_len = 2;
	ev->received_at = at;
	return ev;
}

static int setup(void **state)
{
	store *st = NULL;
	th_error err = {0, {0}};
	if (store_open(&st, "sqlite::memory:", &err) != 0)
		return -1;
	/* hour of NOW (13:00-14:00): 2 createCard on w1, 1 commentCard on w2;
	 * 23 hours back (the first hourly bucket): 1 createCard on w1;
	 * 24 hours back (outside 24 hourly buckets): 1 updateCard on w1;
	 * 29 days back: 5 commentCard on w2 (inside 30 daily buckets) */
	struct {
		const char *wh, *type;
		int64_t at;
	} seed[] = {
	    {"w1", "createCard", NOW},
	    {"w1", "createCard", NOW - 30 * 60000},
	    {"w2", "commentCard", NOW + 60000},
	    {"w1", "createCard", NOW - 23 * H},
	    {"w1", "updateCard", NOW - 24 * H},
	    {"w2", "commentCard", NOW - 29 * 24 * H},
	    {"w2", "commentCard", NOW - 29 * 24 * H + 1},
	    {"w2", "commentCard", NOW - 29 * 24 * H + 2},
	    {"w2", "commentCard", NOW - 29 * 24 * H + 3},
	    {"w2", "commentCard", NOW - 29 * 24 * H + 4},
	};
	enum { N = sizeof seed / sizeof seed[0] };
	event *evs[N];
	enum store_put r[N];
	for (size_t i = 0; i < N; i++) {
		char id[16];
		str_printf(id, sizeof id, "a%zu", i);
		evs[i] = mk(seed[i].wh, id, seed[i].type, seed[i].at);
	}
	/* events are stored only under webhooks that exist */
	const char *hooks[] = {"w1", "w2"};
	for (size_t i = 0; i < 2; i++) {
		webhook w = {.id = (char *)hooks[i],
		             .id_model = (char *)hooks[i],
		             .callback_url = (char *)"https://example.test/callbacks/x",
		             .token = (char *)hooks[i],
		             .state = WEBHOOK_ACTIVE};
		if (store_webhook_insert(st, &w, &err) != 0)
			return -1;
	}
	int rc = store_events_put(st, evs, N, r, &err);
	for (size_t i = 0; i < N; i++) {
		event_clear(evs[i]);
		free(evs[i]);
	}
	if (rc != 0)
		return -1;
	*state = st;
	return 0;
}

static int teardown(void **state)
{
	store_close(*state);
	return 0;
}

static void test_hourly(void **state)
{
	svc_ctx sc = {.st = *state};
	svc_activity a;
	th_error err = {0, {0}};
	assert_int_equal(svc_activity_read(&sc, NOW, 1, 24, true, &a, &err), 0);
	assert_int_equal(a.nbuckets, 24);
	assert_int_equal(a.first_hour, NOW / H - 23);
	assert_int_equal(a.ntypes, 2); /* updateCard fell outside */
	assert_string_equal(a.types[0].name, "createCard");
	assert_int_equal(a.types[0].total, 3);
	assert_int_equal(a.types[0].values[23], 2);
	assert_int_equal(a.types[0].values[0], 1);
	assert_string_equal(a.types[1].name, "commentCard");
	assert_int_equal(a.types[1].values[23], 1);
	const svc_activity_series *w1 = svc_activity_webhook(&a, "w1");
	assert_non_null(w1);
	assert_int_equal(w1->total, 3);
	assert_null(svc_activity_webhook(&a, "nope"));
	svc_activity_clear(&a);
	assert_int_equal(a.ntypes, 0);
	/* by type only (the dashboard): the same type series, no webhook series */
	assert_int_equal(svc_activity_read(&sc, NOW, 1, 24, false, &a, &err), 0);
	assert_int_equal(a.ntypes, 2);
	assert_string_equal(a.types[0].name, "createCard");
	assert_int_equal(a.types[0].total, 3);
	assert_int_equal(a.types[0].values[23], 2);
	assert_int_equal(a.types[1].values[23], 1);
	assert_int_equal(a.nwebhooks, 0);
	assert_null(svc_activity_webhook(&a, "w1"));
	svc_activity_clear(&a);
}

static void test_daily(void **state)
{
	svc_ctx sc = {.st = *state};
	svc_activity a;
	th_error err = {0, {0}};
	assert_int_equal(svc_activity_read(&sc, NOW, 24, 30, true, &a, &err), 0);
	assert_int_equal(a.first_hour % 24, 0); /* days start at UTC midnight */
	assert_int_equal(a.ntypes, 3);
	assert_string_equal(a.types[0].name, "commentCard"); /* 6 in all */
	assert_int_equal(a.types[0].total, 6);
	assert_int_equal(a.types[0].values[0], 5);
	assert_int_equal(a.types[0].values[29], 1);
	svc_activity_clear(&a);
}

static void test_empty_and_refused(void **state)
{
	svc_ctx sc = {.st = *state};
	svc_activity a;
	th_error err = {0, {0}};
	/* a window long before anything was stored */
	assert_int_equal(svc_activity_read(&sc, NOW - 400 * 24 * H, 1, 24, true, &a, &err), 0);
	assert_int_equal(a.ntypes, 0);
	assert_int_equal(a.nwebhooks, 0);
	svc_activity_clear(&a);
	assert_int_equal(svc_activity_read(&sc, NOW, 2, 24, true, &a, &err), TH_EINVAL);
	assert_int_equal(svc_activity_read(&sc, NOW, 1, 0, true, &a, &err), TH_EINVAL);
	assert_int_equal(svc_activity_read(&sc, NOW, 24, 32, true, &a, &err), TH_EINVAL);
	assert_int_equal(
	    svc_activity_read(&sc, NOW, 1, SVC_ACTIVITY_MAX_BUCKETS + 1, true, &a, &err),
	    TH_EINVAL);
	svc_activity_clear(&a);
	svc_activity_clear(NULL);
}

static void test_silence_rule(void **state)
{
	(void)state;
	int64_t limit = -1;
	/* too few events in 7 days: never silent */
	assert_false(
	    svc_activity_silent(SVC_SILENT_MIN_EVENTS - 1, NOW - 30 * 24 * H, NOW, &limit));
	assert_int_equal(limit, 0);
	/* never had an event */
	assert_false(svc_activity_silent(1000, 0, NOW, &limit));
	/* 168 events a week: one an hour on average; 4x -> 4 h */
	assert_false(svc_activity_silent(168, NOW - 4 * H, NOW, &limit));
	assert_int_equal(limit, 4 * H);
	assert_true(svc_activity_silent(168, NOW - 4 * H - 1, NOW, NULL));
	/* a busy webhook: 4x its gap is minutes, the floor is 1 h */
	assert_false(svc_activity_silent(100000, NOW - H, NOW, &limit));
	assert_int_equal(limit, H);
	assert_true(svc_activity_silent(100000, NOW - H - 1, NOW, NULL));
	/* 24 a week: 7 h gap -> silent after 28 h */
	assert_false(svc_activity_silent(24, NOW - 28 * H, NOW, &limit));
	assert_true(svc_activity_silent(24, NOW - 28 * H - 1, NOW, NULL));
}

/* Quantiles from run-time buckets: empty, one bucket, interpolation, the
 * unbounded last bucket. */
static void test_run_quantile(void **state)
{
	(void)state;
	uint64_t c[SVC_RUN_BUCKETS] = {0};
	assert_int_equal(svc_run_quantile(c, 0.5), -1);
	c[2] = 10; /* 10 attempts in (2 ms, 5 ms] */
	assert_int_equal(svc_run_quantile(c, 0.5), 3500);
	assert_int_equal(svc_run_quantile(c, 1.0), 5000);
	c[9] = 10; /* and 10 in (500 ms, 1 s] */
	assert_int_equal(svc_run_quantile(c, 0.5), 5000);
	assert_int_equal(svc_run_quantile(c, 0.95), 500000 + 450000);
	uint64_t top[SVC_RUN_BUCKETS] = {0};
	top[SVC_RUN_BUCKETS - 1] = 3; /* over a minute: its lower bound */
	assert_int_equal(svc_run_quantile(top, 0.95), 60000000);
}

/* Deliveries per hour by outcome and per handler, from outcomes recorded
 * through the store (the rollup is keyed by the hour they were recorded). */
static void test_delivery_activity(void **state)
{
	store *st = *state;
	svc_ctx sc = {.st = st};
	th_error err = {0, {0}};
	const char *ids[2] = {"hFast", "hSlow"};
	for (int i = 0; i < 2; i++) {
		handler h = {0};
		h.id = (char *)ids[i];
		h.kind = HANDLER_EXEC;
		h.target = (char *)"/bin/true";
		h.enabled = true;
		assert_int_equal(store_handler_insert(st, &h, &err), 0);
	}
	event *evs[4];
	enum store_put r[4];
	for (int i = 0; i < 4; i++) {
		char id[16];
		str_printf(id, sizeof id, "d%d", i);
		evs[i] = mk("w1", id, "createCard", time_now_ms());
	}
	assert_int_equal(store_events_put(st, evs, 4, r, &err), 0);
	for (int i = 0; i < 4; i++) {
		event_clear(evs[i]);
		free(evs[i]);
	}
	/* claims come one event at a time per handler (order per webhook):
	 * hFast is done in 3 ms but fails its first; hSlow takes 700 ms and its
	 * last is dead */
	size_t seen_fast = 0, seen_slow = 0;
	for (int round = 0; round < 4; round++) {
		delivery *d = NULL;
		size_t n = 0;
		assert_int_equal(
		    store_delivery_claim(st, 1u << HANDLER_EXEC, 100, 60000, &d, &n, &err), 0);
		assert_int_equal(n, 2);
		delivery_outcome o[2];
		for (size_t i = 0; i < n; i++) {
			bool fast = str_eq(d[i].handler_id, "hFast");
			size_t k = fast ? seen_fast++ : seen_slow++;
			enum delivery_status s = fast && k == 0    ? DELIVERY_FAILED
			                         : !fast && k == 3 ? DELIVERY_DEAD
			                                           : DELIVERY_DONE;
			o[i] = (delivery_outcome){d[i].id, s, 0, NULL, fast ? 3000 : 700000, 0};
		}
		assert_int_equal(store_delivery_finish_many(st, o, n, NULL, &err), 0);
		delivery_list_free(d, n);
	}

	svc_delivery_activity a;
	assert_int_equal(svc_delivery_activity_read(&sc, time_now_ms(), 24, &a, &err), 0);
	assert_int_equal(a.nbuckets, 24);
	uint64_t done = 0, failed = 0, dead = 0;
	for (size_t i = 0; i < a.nbuckets; i++) {
		done += a.done[i];
		failed += a.failed[i];
		dead += a.dead[i];
	}
	assert_int_equal(done, 6);
	assert_int_equal(failed, 1);
	assert_int_equal(dead, 1);
	assert_int_equal(a.nhandlers, 2);
	for (size_t i = 0; i < 2; i++) {
		const svc_handler_stats *h = &a.handlers[i];
		assert_int_equal(h->done + h->failed + h->dead, 4);
		assert_int_equal(h->timed, 4);
		if (str_eq(h->handler_id, "hFast")) {
			assert_int_equal(h->failed, 1);
			assert_true(h->p50_us > 2000 && h->p50_us <= 5000);
			assert_true(h->p95_us > 2000 && h->p95_us <= 5000);
		} else {
			assert_string_equal(h->handler_id, "hSlow");
			assert_int_equal(h->dead, 1);
			assert_true(h->p50_us > 500000 && h->p50_us <= 1000000);
		}
	}
	svc_delivery_activity_clear(&a);
	/* a window without attempts, and refused windows */
	assert_int_equal(svc_delivery_activity_read(&sc, time_now_ms() - 48 * H, 24, &a, &err), 0);
	assert_int_equal(a.nhandlers, 0);
	svc_delivery_activity_clear(&a);
	assert_int_equal(svc_delivery_activity_read(&sc, time_now_ms(), 0, &a, &err), TH_EINVAL);
	svc_delivery_activity_clear(&a);
	assert_int_equal(svc_delivery_activity_read(&sc, time_now_ms(), 10000, &a, &err),
	                 TH_EINVAL);
	assert_non_null(strstr(err.msg, "hours"));
	svc_delivery_activity_clear(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_hourly, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_daily, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_empty_and_refused, setup, teardown),
	    cmocka_unit_test(test_silence_rule),
	    cmocka_unit_test(test_run_quantile),
	    cmocka_unit_test_setup_teardown(test_delivery_activity, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
