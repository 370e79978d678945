/* SPDX-License-Identifier: MIT */
/*
 * store_suite_history.c — the shared store tests of the history operations
 * (issue 17): event_seq_bounds, event_page (export) and events_prune
 * (retention), run on SQLite (test_store) and PostgreSQL (test_store_pg).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "store/store.h"
#include "util/util.h"

#include "store_suite.h"

/* Store @id on webhook @wh with type @type received at @at. */
static int64_t put_at(store *st, const char *wh, const char *action, const char *type, int64_t at,
                      const char *payload)
{
	event *ev = suite_ev_new(wh, action, type, "s", payload, 0);
	ev->received_at = at;
	assert_int_equal(suite_put1(st, ev), STORE_PUT_NEW);
	suite_ev_free(ev);
	return at;
}

/* Every page of @q's filters, walked as the export does in windows of @w
 * seqs and pages of @limit rows: the action ids in order, comma-separated. */
static void walk_pages(store *st, event_page_query q, int64_t w, char *out, size_t outsz)
{
	int64_t lo, hi;
	th_error err = {0};
	assert_int_equal(store_event_seq_bounds(st, &lo, &hi, &err), 0);
	buf b;
	buf_init(&b, outsz - 1);
	q.after_seq = lo - 1;
	while (q.after_seq < hi) {
		q.upto_seq = q.after_seq + w < hi ? q.after_seq + w : hi;
		event_row *rows = NULL;
		size_t n = 0;
		if (store_event_page(st, &q, &rows, &n, &err))
			fail_msg("event_page: %s", err.msg);
		assert_true(n <= q.limit);
		for (size_t i = 0; i < n; i++) {
			assert_true(rows[i].seq > q.after_seq && rows[i].seq <= q.upto_seq);
			assert_non_null(rows[i].ev.payload); /* pages carry payloads */
			assert_int_equal(
			    buf_printf(&b, "%s%s", b.len ? "," : "", rows[i].ev.action_id), 0);
		}
		q.after_seq = n == q.limit ? rows[n - 1].seq : q.upto_seq;
		event_row_list_free(rows, n);
	}
	str_copy(out, outsz, b.data ? b.data : "");
	buf_free(&b);
}

/* Pages: oldest first, filters by webhook, type and received_at, windows and
 * limits that cut anywhere give every event exactly once; payloads exact. */
void suite_history_page(void **state)
{
	store_fx *f = suite_fx(state);
	store *st = f->st;
	th_error err = {0};
	int64_t lo, hi;
	assert_int_equal(store_event_seq_bounds(st, &lo, &hi, &err), 0);
	assert_int_equal(lo, 0);
	assert_int_equal(hi, 0);
	const int64_t T = 1700000000000;
	put_at(st, "wa", "a1", "createCard", T + 1, "{\"n\":1}");
	put_at(st, "wb", "a2", "createCard", T + 2, NULL);
	put_at(st, "wa", "a3", "commentCard", T + 3, NULL);
	put_at(st, "wa", "a4", "createCard", T + 4, NULL);
	put_at(st, "wb", "a5", "commentCard", T + 5, NULL);
	/* a body with every byte value but NUL, stored and paged back exactly */
	char odd[300];
	for (int i = 0; i < 255; i++)
		odd[i] = (char)(i + 1);
	event *ev = suite_ev_new("wa", "a6", "createCard", "s", odd, 255);
	ev->received_at = T + 6;
	assert_int_equal(suite_put1(st, ev), STORE_PUT_NEW);
	suite_ev_free(ev);
	assert_int_equal(store_event_seq_bounds(st, &lo, &hi, &err), 0);
	assert_true(lo >= 1 && hi - lo == 5);

	char got[512];
	event_page_query q = {0};
	const int64_t windows[] = {1, 2, 3, 100};
	const size_t limits[] = {1, 2, 1000};
	for (size_t w = 0; w < 4; w++)
		for (size_t l = 0; l < 3; l++) {
			q.limit = limits[l];
			walk_pages(st, q, windows[w], got, sizeof got);
			assert_string_equal(got, "a1,a2,a3,a4,a5,a6");
		}
	q.limit = 2;
	q.webhook_id = "wa";
	walk_pages(st, q, 2, got, sizeof got);
	assert_string_equal(got, "a1,a3,a4,a6");
	q.action_type = "createCard";
	walk_pages(st, q, 2, got, sizeof got);
	assert_string_equal(got, "a1,a4,a6");
	q = (event_page_query){.limit = 3, .since_ms = T + 2, .until_ms = T + 5};
	walk_pages(st, q, 4, got, sizeof got);
	assert_string_equal(got, "a2,a3,a4"); /* since <= received_at < until */
	/* hostile filter text is a value, never SQL */
	q = (event_page_query){.limit = 3, .webhook_id = "wa' OR '1'='1", .action_type = "x\"--"};
	walk_pages(st, q, 100, got, sizeof got);
	assert_string_equal(got, "");

	/* the exact bytes come back */
	event_page_query one = {.limit = 10, .after_seq = hi - 1, .upto_seq = hi};
	event_row *rows = NULL;
	size_t n = 0;
	assert_int_equal(store_event_page(st, &one, &rows, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].ev.payload_len, 255);
	assert_memory_equal(rows[0].ev.payload, odd, 255);
	assert_int_equal(rows[0].ev.received_at, T + 6);
	assert_int_equal(rows[0].ev.source, EVENT_FROM_DELIVERY);
	event_row_list_free(rows, n);
	/* limits out of range are refused */
	one.limit = 0;
	assert_int_equal(store_event_page(st, &one, &rows, &n, &err), TH_EINVAL);
	one.limit = STORE_PAGE_MAX + 1;
	assert_int_equal(store_event_page(st, &one, &rows, &n, &err), TH_EINVAL);
}

/* The status of the one delivery of @event_id ("" when it has none). */
static enum delivery_status status_of(store *st, const char *event_id, int *count)
{
	delivery *d = NULL;
	size_t n = 0;
	th_error err = {0};
	assert_int_equal(store_delivery_list(st, NULL, event_id, 100, &d, &n, &err), 0);
	*count = (int)n;
	enum delivery_status s = n ? d[0].status : DELIVERY_PENDING;
	delivery_list_free(d, n);
	return s;
}

static bool event_exists(store *st, const char *id)
{
	event ev = {0};
	th_error err = {0};
	int rc = store_event_get(st, id, &ev, &err);
	event_clear(&ev);
	assert_true(rc == 0 || rc == TH_ENOTFOUND);
	return rc == 0;
}

/* Prune everything before @cutoff in batches of @limit: the totals. */
static prune_batch prune_all(store *st, int64_t cutoff, size_t limit, bool dry)
{
	prune_batch b = {0}, total = {0};
	th_error err = {0};
	int guard = 0;
	while (!b.done) {
		if (store_events_prune(st, cutoff, limit, dry, &b, &err))
			fail_msg("events_prune: %s", err.msg);
		total.events += b.events;
		total.deliveries += b.deliveries;
		total.kept += b.kept;
		assert_true(++guard < 1000);
	}
	return total;
}

/* Prune: only events received before the cutoff whose deliveries are all done
 * or dead go, with their deliveries; a dry run counts the same and changes
 * nothing; any batch size gives the same result. */
void suite_history_prune(void **state)
{
	store_fx *f = suite_fx(state);
	store *st = f->st;
	th_error err = {0};
	const int64_t old = 1600000000000, now = time_now_ms();
	/* an event from before any handler: no deliveries at all */
	event *e0 = suite_ev_new("wp", "p0", "createCard", "s", NULL, 0);
	e0->received_at = old;
	assert_int_equal(suite_put1(st, e0), STORE_PUT_NEW);
	suite_add_handler(st, "hp", HANDLER_EXEC, NULL, NULL, true);
	const char *acts[] = {"p1", "p2", "p3", "p4", "p5", "p6"};
	/* one webhook each: a webhook's deliveries are claimed in order, one at a time */
	const char *hooks[] = {"wp1", "wp2", "wp3", "wp4", "wp5", "wp6"};
	event *e[6];
	for (int i = 0; i < 6; i++) {
		e[i] = suite_ev_new(hooks[i], acts[i], "createCard", "s", NULL, 0);
		e[i]->received_at = i == 5 ? now : old + i;
		assert_int_equal(suite_put1(st, e[i]), STORE_PUT_NEW);
	}
	/* p1 done, p2 dead, p3 failed (will retry), p4 running, p5 done; p6 is new */
	delivery *d = NULL;
	size_t n = 0;
	assert_int_equal(store_delivery_claim(st, SUITE_ALL_KINDS, 10, 60000, &d, &n, &err), 0);
	assert_int_equal(n, 6);
	for (size_t i = 0; i < n; i++) {
		const char *ev = d[i].event_id;
		enum delivery_status s = DELIVERY_RUNNING;
		if (str_eq(ev, e[0]->id) || str_eq(ev, e[4]->id))
			s = DELIVERY_DONE;
		else if (str_eq(ev, e[1]->id))
			s = DELIVERY_DEAD;
		else if (str_eq(ev, e[2]->id))
			s = DELIVERY_FAILED;
		if (s != DELIVERY_RUNNING)
			assert_int_equal(
			    store_delivery_finish(st, d[i].id, s, now + 3600000, "x", &err), 0);
	}
	delivery_list_free(d, n);

	/* a dry run, in batches of every size: counts, changes nothing */
	const size_t sizes[] = {1, 2, 3, 500};
	for (size_t k = 0; k < 4; k++) {
		prune_batch t = prune_all(st, now - 60000, sizes[k], true);
		assert_int_equal(t.events, 4); /* p0, p1, p2, p5 */
		assert_int_equal(t.deliveries, 3);
		assert_int_equal(t.kept, 2); /* p3 failed, p4 running */
	}
	assert_true(event_exists(st, e0->id));
	for (int i = 0; i < 6; i++)
		assert_true(event_exists(st, e[i]->id));

	/* for real, two at a time */
	prune_batch t = prune_all(st, now - 60000, 2, false);
	assert_int_equal(t.events, 4);
	assert_int_equal(t.deliveries, 3);
	assert_int_equal(t.kept, 2);
	assert_false(event_exists(st, e0->id));
	assert_false(event_exists(st, e[0]->id));
	assert_false(event_exists(st, e[1]->id));
	assert_false(event_exists(st, e[4]->id));
	int cnt;
	assert_true(event_exists(st, e[2]->id));
	assert_int_equal(status_of(st, e[2]->id, &cnt), DELIVERY_FAILED);
	assert_int_equal(cnt, 1);
	assert_true(event_exists(st, e[3]->id));
	assert_int_equal(status_of(st, e[3]->id, &cnt), DELIVERY_RUNNING);
	assert_true(event_exists(st, e[5]->id));
	(void)status_of(st, e[0]->id, &cnt);
	assert_int_equal(cnt, 0); /* its delivery went with it */
	/* the webhooks' event counters follow: wp1's event went, wp3's stayed */
	const char *counted[] = {"wp1", "wp3"};
	for (int i = 0; i < 2; i++) {
		webhook w = {0};
		assert_int_equal(store_webhook_get(st, counted[i], &w, &err), 0);
		assert_int_equal(w.event_count, i);
		webhook_clear(&w);
	}
	/* again: nothing more to do, the two kept are counted again */
	t = prune_all(st, now - 60000, 500, false);
	assert_int_equal(t.events, 0);
	assert_int_equal(t.kept, 2);
	/* listings and pages agree with what is left */
	int64_t lo, hi;
	assert_int_equal(store_event_seq_bounds(st, &lo, &hi, &err), 0);
	event_row *rows = NULL;
	event_page_query q = {.limit = 100, .after_seq = 0, .upto_seq = hi};
	assert_int_equal(store_event_page(st, &q, &rows, &n, &err), 0);
	assert_int_equal(n, 3);
	event_row_list_free(rows, n);
	/* a batch limit out of range is refused */
	prune_batch b = {0};
	assert_int_equal(store_events_prune(st, now, 0, false, &b, &err), TH_EINVAL);
	/* compact is safe to call on every backend */
	int64_t freed = -1;
	assert_int_equal(store_compact(st, 100, &freed, &err), 0);
	assert_true(freed >= 0);
	suite_ev_free(e0);
	for (int i = 0; i < 6; i++)
		suite_ev_free(e[i]);
}
