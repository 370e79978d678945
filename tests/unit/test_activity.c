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
	assert_int_equal(svc_activity_read(&sc, NOW, 1, 24, &a, &err), 0);
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
}

static void test_daily(void **state)
{
	svc_ctx sc = {.st = *state};
	svc_activity a;
	th_error err = {0, {0}};
	assert_int_equal(svc_activity_read(&sc, NOW, 24, 30, &a, &err), 0);
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
	assert_int_equal(svc_activity_read(&sc, NOW - 400 * 24 * H, 1, 24, &a, &err), 0);
	assert_int_equal(a.ntypes, 0);
	assert_int_equal(a.nwebhooks, 0);
	svc_activity_clear(&a);
	assert_int_equal(svc_activity_read(&sc, NOW, 2, 24, &a, &err), TH_EINVAL);
	assert_int_equal(svc_activity_read(&sc, NOW, 1, 0, &a, &err), TH_EINVAL);
	assert_int_equal(svc_activity_read(&sc, NOW, 24, 32, &a, &err), TH_EINVAL);
	assert_int_equal(svc_activity_read(&sc, NOW, 1, SVC_ACTIVITY_MAX_BUCKETS + 1, &a, &err),
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_hourly, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_daily, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_empty_and_refused, setup, teardown),
	    cmocka_unit_test(test_silence_rule),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
