/* SPDX-License-Identifier: MIT */
/* The store test suite shared by both backends: every case here runs
 * unchanged against SQLite (test_store.c) and PostgreSQL (test_store_pg.c).
 * Each test gets a fresh, migrated, empty store from the backend's fixture
 * (see store_suite.h); backend-specific cases stay in the backend's file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "model/model.h"
#include "store/store.h"
#include "service/service.h"
#include "store/store_fault.h"
#include "util/util.h"

#include "child.h"
#include "store_suite.h"

/* The fixture of the running test; skips the test when the backend has none
 * (PostgreSQL without a server). */
store_fx *suite_fx(void **state)
{
	store_fx *f = *state;
	if (!f)
		skip();
	return f;
}

/* Open @f->url into @f->st; see store_suite.h (@f heads the backend's heap
 * fixture, which is freed here on failure). */
int suite_fx_open(void **state, store_fx *f)
{
	th_error err = {0};
	if (store_open(&f->st, f->url, &err) != 0) {
		fprintf(stderr, "store_open: %s\n", err.msg);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

/* ---- helpers (also used by the backends' own tests) ----------------------------------- */

/* A hand-built event (the store's input); free with suite_ev_free(). */
event *suite_ev_new(const char *webhook_id, const char *action_id, const char *type,
                    const char *summary, const char *payload, size_t len)
{
	event *ev = calloc(1, sizeof *ev);
	assert_non_null(ev);
	ev->webhook_id = str_dup(webhook_id);
	ev->action_id = str_dup(action_id);
	ev->action_type = str_dup(type);
	ev->summary = str_dup(summary);
	ev->board_id = str_dup("b0000000000000000000000b");
	ev->model_id = str_dup("b0000000000000000000000b");
	if (!payload)
		payload = "{}";
	if (len == 0)
		len = strlen(payload);
	ev->payload = malloc(len + 1);
	assert_non_null(ev->payload);
	memcpy(ev->payload, payload, len);
	ev->payload[len] = '\0';
	ev->payload_len = len;
	return ev;
}

/* Clear and free an event from suite_ev_new()/ev_from_file(). NULL-safe. */
void suite_ev_free(event *ev)
{
	if (ev) {
		event_clear(ev);
		free(ev);
	}
}

/* An event parsed from a sample payload in tests/data/payloads. */
static event *ev_from_file(const char *name, const char *webhook_id)
{
	const char *dir = getenv("TH_TEST_DATA");
	char path[512];
	str_printf(path, sizeof path, "%s/payloads/%s", dir ? dir : "tests/data", name);
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	static char body[1 << 16];
	size_t n = fread(body, 1, sizeof body, fp);
	fclose(fp);
	event *ev = calloc(1, sizeof *ev);
	assert_non_null(ev);
	th_error err = {0};
	int rc = event_parse(ev, body, n, &err);
	if (rc != 0)
		fail_msg("event_parse(%s): %s", name, err.msg);
	ev->webhook_id = str_dup(webhook_id);
	return ev;
}

/* Give every webhook id of @evs that has no row one (model and token made
 * from the id, so they stay unique), as `webhook add` would have. */
void suite_ensure_webhooks(store *st, event **evs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!evs[i] || !evs[i]->webhook_id)
			continue;
		bool seen = false; /* once per distinct id: a get counts the events too */
		for (size_t j = 0; j < i && !seen; j++)
			seen = evs[j] && evs[j]->webhook_id &&
			       str_eq(evs[j]->webhook_id, evs[i]->webhook_id);
		if (seen)
			continue;
		webhook w = {0};
		th_error err = {0};
		int rc = store_webhook_get(st, evs[i]->webhook_id, &w, &err);
		webhook_clear(&w);
		if (rc == TH_ENOTFOUND) {
			char model[96], tok[96];
			str_printf(model, sizeof model, "model-%s", evs[i]->webhook_id);
			str_printf(tok, sizeof tok, "tok-%s", evs[i]->webhook_id);
			suite_add_webhook(st, evs[i]->webhook_id, model, tok);
		} else if (rc != 0) {
			fail_msg("webhook_get %s: %s", evs[i]->webhook_id, err.msg);
		}
	}
}

/* store_events_put under webhooks that exist (suite_ensure_webhooks first):
 * the receive path only ever stores events of registered webhooks. */
int suite_events_put(store *st, event **evs, size_t n, enum store_put *results, th_error *err)
{
	suite_ensure_webhooks(st, evs, n);
	return store_events_put(st, evs, n, results, err);
}

/* Store one event (its webhook made when missing); returns what happened. */
enum store_put suite_put1(store *st, event *ev)
{
	enum store_put r;
	th_error err = {0};
	int rc = suite_events_put(st, &ev, 1, &r, &err);
	if (rc != 0)
		fail_msg("events_put: %s", err.msg);
	return r;
}

/* Insert an active webhook @id on @model with token @tok; fails the test on error. */
void suite_add_webhook(store *st, const char *id, const char *model, const char *tok)
{
	webhook w = {0};
	w.id = (char *)id;
	w.id_model = (char *)model;
	w.callback_url = (char *)"https://example.test/callbacks/x";
	w.token = (char *)tok;
	w.state = WEBHOOK_ACTIVE;
	th_error err = {0};
	int rc = store_webhook_insert(st, &w, &err);
	if (rc != 0)
		fail_msg("webhook_insert: %s", err.msg);
}

/* Insert handler @id of @kind (target /bin/true) filtering on @on and @model;
 * fails the test on error. */
void suite_add_handler(store *st, const char *id, enum handler_kind kind, const char *on,
                       const char *model, bool enabled)
{
	handler h = {0};
	h.id = (char *)id;
	h.kind = kind;
	h.target = (char *)"/bin/true";
	h.on = (char *)on;
	h.model = (char *)model;
	h.enabled = enabled;
	th_error err = {0};
	int rc = store_handler_insert(st, &h, &err);
	if (rc != 0)
		fail_msg("handler_insert: %s", err.msg);
}

/* Number of deliveries of @event_id (any status) to @handler_id. */
static int count_deliveries(store *st, const char *event_id, const char *handler_id)
{
	delivery *d = NULL;
	size_t n = 0;
	th_error err = {0};
	assert_int_equal(store_delivery_list(st, NULL, event_id, 1000, &d, &n, &err), 0);
	int c = 0;
	for (size_t i = 0; i < n; i++)
		if (!handler_id || str_eq(d[i].handler_id, handler_id))
			c++;
	delivery_list_free(d, n);
	return c;
}

/* Claim and return the ids as one string "e1,e2" of event ids (for order checks). */
static void claim_events(store *st, unsigned kinds, size_t max, int64_t lease, char *out,
                         size_t outsz, delivery **keep, size_t *nkeep)
{
	delivery *d = NULL;
	size_t n = 0;
	th_error err = {0};
	int rc = store_delivery_claim(st, kinds, max, lease, &d, &n, &err);
	if (rc != 0)
		fail_msg("delivery_claim: %s", err.msg);
	out[0] = '\0';
	buf b;
	buf_init(&b, outsz - 1);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(d[i].status, DELIVERY_RUNNING);
		assert_true(d[i].attempts >= 1);
		assert_int_equal(
		    buf_printf(&b, "%s%s/%s", i ? "," : "", d[i].event_id, d[i].handler_id), 0);
	}
	if (b.data)
		str_copy(out, outsz, b.data);
	buf_free(&b);
	if (keep) {
		*keep = d;
		*nkeep = n;
	} else {
		delivery_list_free(d, n);
	}
}

/* ---- webhooks, tokens, handlers, users ---------------------------------------------------- */

/* Webhooks: insert, get, find, list, update, delete and their uniqueness rules. */
void suite_webhook_crud(void **state)
{
	store_fx *f = suite_fx(state);
	store *st = f->st;
	th_error err = {0};
	const char *tok = "ATTAtoken1111111111111111111111111111";
	suite_add_webhook(st, "wh1", "6123456789abcdef01234567", tok);

	webhook w = {0};
	assert_int_equal(store_webhook_get(st, "wh1", &w, &err), 0);
	assert_string_equal(w.id, "wh1");
	assert_string_equal(w.id_model, "6123456789abcdef01234567");
	assert_string_equal(w.token, tok);
	assert_int_equal(w.state, WEBHOOK_ACTIVE);
	assert_null(w.trello_id);
	assert_true(w.created_at > 0);
	assert_int_equal(w.event_count, 0);

	/* update every mutable field */
	free(w.trello_id);
	w.trello_id = str_dup("7000000000000000000000aa");
	free(w.description);
	w.description = str_dup("Roadmap \"quoted\" <b>");
	w.state = WEBHOOK_NEEDS_TOKEN;
	w.active = true;
	w.consecutive_failures = 3;
	w.first_consecutive_fail_at = 1234;
	assert_int_equal(store_webhook_update(st, &w, &err), 0);
	webhook_clear(&w);
	assert_int_equal(store_webhook_find(st, "6123456789abcdef01234567", tok, &w, &err), 0);
	assert_string_equal(w.trello_id, "7000000000000000000000aa");
	assert_string_equal(w.description, "Roadmap \"quoted\" <b>");
	assert_int_equal(w.state, WEBHOOK_NEEDS_TOKEN);
	assert_true(w.active);
	assert_int_equal(w.consecutive_failures, 3);
	assert_int_equal(w.first_consecutive_fail_at, 1234);
	webhook_clear(&w);

	/* uniqueness: same (model, token) under another id; same id */
	webhook d = {.id = (char *)"wh2",
	             .id_model = (char *)"6123456789abcdef01234567",
	             .callback_url = (char *)"https://x/callbacks/wh2",
	             .token = (char *)tok};
	assert_int_equal(store_webhook_insert(st, &d, &err), TH_EEXISTS);
	assert_non_null(strstr(err.msg, "6123456789abcdef01234567"));
	assert_non_null(strstr(err.msg, "already exists"));
	assert_null(strstr(err.msg, tok)); /* never the token */
	d.id = (char *)"wh1";
	d.id_model = (char *)"6123456789abcdef0123ffff";
	assert_int_equal(store_webhook_insert(st, &d, &err), TH_EEXISTS);
	assert_non_null(strstr(err.msg, "wh1"));
	/* same model, another token: fine */
	suite_add_webhook(st, "wh2", "6123456789abcdef01234567", "ATTAother");
	/* updating wh2 onto wh1's (model, token) hits the rule too */
	assert_int_equal(store_webhook_get(st, "wh2", &w, &err), 0);
	free(w.token);
	w.token = str_dup(tok);
	assert_int_equal(store_webhook_update(st, &w, &err), TH_EEXISTS);
	webhook_clear(&w);
	/* required fields */
	webhook bad = {.id = (char *)"wh3", .id_model = (char *)"m"};
	assert_int_equal(store_webhook_insert(st, &bad, &err), TH_EINVAL);

	webhook *list = NULL;
	size_t n = 0;
	assert_int_equal(store_webhook_list(st, &list, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].id, "wh1");
	assert_string_equal(list[1].id, "wh2");
	webhook_list_free(list, n);

	/* not found */
	assert_int_equal(store_webhook_get(st, "nope", &w, &err), TH_ENOTFOUND);
	assert_string_equal(err.msg, "no webhook with id nope");
	assert_int_equal(store_webhook_find(st, "6123456789abcdef01234567", "ATTAx", &w, &err),
	                 TH_ENOTFOUND);
	webhook ghost = {.id = (char *)"ghost",
	                 .id_model = (char *)"m",
	                 .callback_url = (char *)"u",
	                 .token = (char *)"t"};
	assert_int_equal(store_webhook_update(st, &ghost, &err), TH_ENOTFOUND);
	assert_int_equal(store_webhook_delete(st, "wh2", &err), 0);
	assert_int_equal(store_webhook_delete(st, "wh2", &err), TH_ENOTFOUND);
	assert_string_equal(err.msg, "no webhook with id wh2");

	/* hostile ids are data, not SQL */
	suite_add_webhook(st, "x'); DROP TABLE webhooks; --", "m2", "t2");
	assert_int_equal(store_webhook_get(st, "x'); DROP TABLE webhooks; --", &w, &err), 0);
	webhook_clear(&w);
	assert_int_equal(store_webhook_get(st, "wh1", &w, &err), 0);
	webhook_clear(&w);
}

/* A stale writer never undoes `webhook rm`: the health pass (or sync) reads
 * the rows, `webhook rm` in another process marks one removing (or deletes
 * it), then the stale writer saves its whole row back. */
void suite_webhook_removal_not_undone(void **state)
{
	store_fx *f = suite_fx(state);
	store *st = f->st;
	th_error err = {0};
	store *other = NULL;
	assert_int_equal(store_open(&other, f->url, &err), 0);
	suite_add_webhook(st, "wR1", "6123456789abcdef0000f001", "tokR");
	suite_add_webhook(st, "wR2", "6123456789abcdef0000f002", "tokR");
	webhook stale1 = {0}, stale2 = {0}, w = {0};
	assert_int_equal(store_webhook_get(st, "wR1", &stale1, &err), 0);
	assert_int_equal(store_webhook_get(st, "wR2", &stale2, &err), 0);

	/* the other process: wR1 marked removing, wR2 deleted */
	assert_int_equal(store_webhook_get(other, "wR1", &w, &err), 0);
	w.state = WEBHOOK_REMOVING;
	w.active = false;
	assert_int_equal(store_webhook_update(other, &w, &err), 0);
	webhook_clear(&w);
	assert_int_equal(store_webhook_delete(other, "wR2", &err), 0);

	/* the stale writer's view: disabled, then active; both refused */
	stale1.state = WEBHOOK_DISABLED;
	stale1.active = false;
	stale1.consecutive_failures = 7;
	assert_int_equal(store_webhook_update(st, &stale1, &err), TH_ENOTFOUND);
	assert_non_null(strstr(err.msg, "wR1"));
	assert_non_null(strstr(err.msg, "being removed"));
	stale1.state = WEBHOOK_ACTIVE;
	stale1.active = true;
	assert_int_equal(store_webhook_update(st, &stale1, &err), TH_ENOTFOUND);
	stale2.state = WEBHOOK_DISABLED;
	assert_int_equal(store_webhook_update(st, &stale2, &err), TH_ENOTFOUND);
	assert_int_equal(store_webhook_get(st, "wR2", &w, &err), TH_ENOTFOUND);

	assert_int_equal(store_webhook_get(st, "wR1", &w, &err), 0);
	assert_int_equal(w.state, WEBHOOK_REMOVING);
	assert_false(w.active);
	assert_int_equal(w.consecutive_failures, 0);
	/* a writer that keeps it removing (rm retried) still writes */
	w.consecutive_failures = 2;
	assert_int_equal(store_webhook_update(st, &w, &err), 0);
	webhook_clear(&w);
	assert_int_equal(store_webhook_get(other, "wR1", &w, &err), 0);
	assert_int_equal(w.state, WEBHOOK_REMOVING);
	assert_int_equal(w.consecutive_failures, 2);
	webhook_clear(&w);
	/* other states still move freely: a fresh row goes needs_token and back */
	suite_add_webhook(st, "wR3", "6123456789abcdef0000f003", "tokR");
	assert_int_equal(store_webhook_get(st, "wR3", &w, &err), 0);
	w.state = WEBHOOK_NEEDS_TOKEN;
	assert_int_equal(store_webhook_update(other, &w, &err), 0);
	w.state = WEBHOOK_ACTIVE;
	assert_int_equal(store_webhook_update(st, &w, &err), 0);
	webhook_clear(&w);
	webhook_clear(&stale1);
	webhook_clear(&stale2);
	store_close(other);
}

/* Tokens: put (insert or update), get, list, delete. */
void suite_token_crud(void **state)
{
	store_fx *f = suite_fx(state);
	store *st = f->st;
	th_error err = {0};
	token t = {.token = (char *)"ATTAabc",
	           .member = (char *)"zoe",
	           .expires_at = 99,
	           .state = TOKEN_VALID,
	           .checked_at = 5};
	assert_int_equal(store_token_put(st, &t, &err), 0);
	token g = {0};
	assert_int_equal(store_token_get(st, "ATTAabc", &g, &err), 0);
	assert_string_equal(g.member, "zoe");
	assert_int_equal(g.expires_at, 99);
	assert_int_equal(g.state, TOKEN_VALID);
	assert_int_equal(g.checked_at, 5);
	int64_t created = g.created_at;
	assert_true(created > 0);
	token_clear(&g);
	/* put again = update, created_at kept */
	t.state = TOKEN_EXPIRED;
	t.member = NULL;
	t.created_at = 1;
	assert_int_equal(store_token_put(st, &t, &err), 0);
	assert_int_equal(store_token_get(st, "ATTAabc", &g, &err), 0);
	assert_int_equal(g.state, TOKEN_EXPIRED);
	assert_null(g.member);
	assert_int_equal(g.created_at, created);
	token_clear(&g);
	token t2 = {.token = (char *)"ATTAdef"};
	assert_int_equal(store_token_put(st, &t2, &err), 0);
	token *list = NULL;
	size_t n = 0;
	assert_int_equal(store_token_list(st, &list, &n, &err), 0);
	assert_int_equal(n, 2);
	token_list_free(list, n);
	assert_int_equal(store_token_delete(st, "ATTAabc", &err), 0);
	assert_int_equal(store_token_delete(st, "ATTAabc", &err), TH_ENOTFOUND);
	assert_null(strstr(err.msg, "ATTAabc")); /* tokens are not echoed */
	assert_int_equal(store_token_get(st, "ATTAabc", &g, &err), TH_ENOTFOUND);
	token empty = {0};
	assert_int_equal(store_token_put(st, &empty, &err), TH_EINVAL);
}

/* Handlers: insert, get, list, enable/disable, delete. */
void suite_handler_crud(void **state)
{
	store_fx *f = suite_fx(state);
	store *st = f->st;
	th_error err = {0};
	handler h = {.id = (char *)"h1",
	             .kind = HANDLER_FORWARD,
	             .target = (char *)"http://127.0.0.1:1/x",
	             .on = (char *)"commentCard,updateCard:idList",
	             .secret = (char *)"whsec_abc",
	             .enabled = true};
	assert_int_equal(store_handler_insert(st, &h, &err), 0);
	assert_int_equal(store_handler_insert(st, &h, &err), TH_EEXISTS);
	assert_non_null(strstr(err.msg, "h1"));
	handler g = {0};
	assert_int_equal(store_handler_get(st, "h1", &g, &err), 0);
	assert_int_equal(g.kind, HANDLER_FORWARD);
	assert_string_equal(g.target, "http://127.0.0.1:1/x");
	assert_string_equal(g.on, "commentCard,updateCard:idList");
	assert_null(g.model);
	assert_string_equal(g.secret, "whsec_abc");
	assert_true(g.enabled);
	handler_clear(&g);
	assert_int_equal(store_handler_set_enabled(st, "h1", false, &err), 0);
	assert_int_equal(store_handler_get(st, "h1", &g, &err), 0);
	assert_false(g.enabled);
	handler_clear(&g);
	assert_int_equal(store_handler_set_enabled(st, "zz", true, &err), TH_ENOTFOUND);
	/* the secret is replaced only while it is still the one the caller read
	 * (sealing old rows at start-up, two processes at once) */
	bool changed = true;
	assert_int_equal(
	    store_handler_set_secret(st, "h1", "whsec_other", "enc:v1:x", &changed, &err), 0);
	assert_false(changed);
	assert_int_equal(
	    store_handler_set_secret(st, "h1", "whsec_abc", "enc:v1:AAAA", &changed, &err), 0);
	assert_true(changed);
	assert_int_equal(
	    store_handler_set_secret(st, "h1", "whsec_abc", "enc:v1:BBBB", &changed, &err), 0);
	assert_false(changed);
	assert_int_equal(
	    store_handler_set_secret(st, "zz", "whsec_abc", "enc:v1:x", &changed, &err), 0);
	assert_false(changed);
	assert_int_equal(store_handler_set_secret(st, "h1", NULL, "enc:v1:x", &changed, &err),
	                 TH_EINVAL);
	assert_int_equal(store_handler_get(st, "h1", &g, &err), 0);
	assert_string_equal(g.secret, "enc:v1:AAAA");
	handler_clear(&g);
	suite_add_handler(st, "h2", HANDLER_FUNC, NULL, "b0000000000000000000000b", true);
	handler *list = NULL;
	size_t n = 0;
	assert_int_equal(store_handler_list(st, &list, &n, &err), 0);
	assert_int_equal(n, 2);
	handler_list_free(list, n);
	assert_int_equal(store_handler_delete(st, "h1", &err), 0);
	assert_int_equal(store_handler_delete(st, "h1", &err), TH_ENOTFOUND);
	assert_string_equal(err.msg, "no handler with id h1");
	assert_int_equal(store_handler_get(st, "h1", &g, &err), TH_ENOTFOUND);
}

/* Admin users and sessions: password hashes, sessions, purge and delete. */
/* Backfill marks: none at first; stored and read back whole; the newest
 * action only moves forward (an older or a NULL one keeps it) while the
 * pass's outcome is replaced; the model kind, once learnt, stays. */
void suite_backfill_marks(void **state)
{
	store_fx *f = suite_fx(state);
	store *st = f->st;
	th_error err = {0};
	backfill_mark m = {0};
	assert_int_equal(store_backfill_mark_get(st, "wh1", &m, &err), TH_ENOTFOUND);
	assert_null(m.webhook_id);
	backfill_mark in = {.webhook_id = (char *)"wh1",
	                    .last_action_id = (char *)"5f0000000000000000000002",
	                    .last_action_at = 2000,
	                    .model_kind = (char *)"board",
	                    .recovered = 3,
	                    .gap_from = 1000,
	                    .gap_to = 2000,
	                    .updated_at = 5000};
	assert_int_equal(store_backfill_mark_put(st, &in, &err), 0);
	assert_int_equal(store_backfill_mark_get(st, "wh1", &m, &err), 0);
	assert_string_equal(m.webhook_id, "wh1");
	assert_string_equal(m.last_action_id, "5f0000000000000000000002");
	assert_int_equal(m.last_action_at, 2000);
	assert_string_equal(m.model_kind, "board");
	assert_null(m.error);
	assert_int_equal(m.recovered, 3);
	assert_int_equal(m.gap_from, 1000);
	assert_int_equal(m.gap_to, 2000);
	assert_int_equal(m.updated_at, 5000);
	backfill_mark_clear(&m);
	assert_null(m.webhook_id);

	/* An older action and an error: the mark stays. */
	backfill_mark older = {.webhook_id = (char *)"wh1",
	                       .last_action_id = (char *)"5f0000000000000000000001",
	                       .last_action_at = 1000,
	                       .error = (char *)"Trello: expired token",
	                       .updated_at = 6000};
	assert_int_equal(store_backfill_mark_put(st, &older, &err), 0);
	assert_int_equal(store_backfill_mark_get(st, "wh1", &m, &err), 0);
	assert_string_equal(m.last_action_id, "5f0000000000000000000002");
	assert_int_equal(m.last_action_at, 2000);
	assert_string_equal(m.model_kind, "board");
	assert_string_equal(m.error, "Trello: expired token");
	assert_int_equal(m.recovered, 0);
	assert_int_equal(m.updated_at, 6000);
	backfill_mark_clear(&m);

	/* No action at all (a pass that found nothing): the mark stays too. */
	backfill_mark none = {.webhook_id = (char *)"wh1", .updated_at = 7000};
	assert_int_equal(store_backfill_mark_put(st, &none, &err), 0);
	assert_int_equal(store_backfill_mark_get(st, "wh1", &m, &err), 0);
	assert_string_equal(m.last_action_id, "5f0000000000000000000002");
	assert_null(m.error);
	backfill_mark_clear(&m);

	/* A newer one moves it. Other webhooks are their own. */
	backfill_mark newer = {.webhook_id = (char *)"wh1",
	                       .last_action_id = (char *)"5f0000000000000000000003",
	                       .last_action_at = 3000};
	assert_int_equal(store_backfill_mark_put(st, &newer, &err), 0);
	assert_int_equal(store_backfill_mark_get(st, "wh1", &m, &err), 0);
	assert_string_equal(m.last_action_id, "5f0000000000000000000003");
	assert_int_equal(m.last_action_at, 3000);
	backfill_mark_clear(&m);
	assert_int_equal(store_backfill_mark_get(st, "wh2", &m, &err), TH_ENOTFOUND);
}

void suite_users_sessions(void **state)
{
	store_fx *f = suite_fx(state);
	store *st = f->st;
	th_error err = {0};
	char *hash = NULL;
	assert_int_equal(store_user_get_hash(st, "admin", &hash, &err), TH_ENOTFOUND);
	assert_null(hash);
	assert_int_equal(store_user_put(st, "admin", "$argon2id$v=19$one", &err), 0);
	assert_int_equal(store_user_get_hash(st, "admin", &hash, &err), 0);
	assert_string_equal(hash, "$argon2id$v=19$one");
	free(hash);
	assert_int_equal(store_user_put(st, "admin", "$argon2id$v=19$two", &err), 0);
	assert_int_equal(store_user_get_hash(st, "admin", &hash, &err), 0);
	assert_string_equal(hash, "$argon2id$v=19$two");
	free(hash);

	int64_t later = time_now_ms() + 3600000;
	user_session s = {.id_hash = (char *)"aa11",
	                  .user = (char *)"admin",
	                  .csrf = (char *)"c1",
	                  .expires_at = later};
	assert_int_equal(store_session_put(st, &s, &err), 0);
	user_session g = {0};
	assert_int_equal(store_session_get(st, "aa11", &g, &err), 0);
	assert_string_equal(g.user, "admin");
	assert_string_equal(g.csrf, "c1");
	assert_int_equal(g.expires_at, later);
	user_session_clear(&g);
	/* a session for nobody is refused */
	user_session bad = {.id_hash = (char *)"bb",
	                    .user = (char *)"ghost",
	                    .csrf = (char *)"c",
	                    .expires_at = later};
	assert_int_equal(store_session_put(st, &bad, &err), TH_ENOTFOUND);
	/* expired sessions are purged when a new one is stored */
	user_session old = {.id_hash = (char *)"old",
	                    .user = (char *)"admin",
	                    .csrf = (char *)"c",
	                    .expires_at = 1};
	assert_int_equal(store_session_put(st, &old, &err), 0);
	assert_int_equal(store_session_get(st, "old", &g, &err), 0);
	user_session_clear(&g);
	s.id_hash = (char *)"cc22";
	assert_int_equal(store_session_put(st, &s, &err), 0);
	assert_int_equal(store_session_get(st, "old", &g, &err), TH_ENOTFOUND);
	assert_int_equal(store_session_delete(st, "aa11", &err), 0);
	assert_int_equal(store_session_delete(st, "aa11", &err), TH_ENOTFOUND);
	assert_int_equal(store_session_get(st, "aa11", &g, &err), TH_ENOTFOUND);
}

/* ---- events ---------------------------------------------------------------------------- */

/* events_put: new vs duplicate per (webhook, action), batches, ids and times filled. */
void suite_events_dedupe(void **state)
{
	store_fx *f = suite_fx(state);
	store *st = f->st;
	th_error err = {0};
	suite_add_webhook(st, "w1", "b0000000000000000000000b", "t");
	event *evs[4] = {
	    suite_ev_new("w1", "a1", "commentCard", "one", NULL, 0),
	    suite_ev_new("w1", "a2", "commentCard", "two", NULL, 0),
	    suite_ev_new("w1", "a1", "commentCard", "one again", NULL,
	                 0), /* dup in the same batch */
	    suite_ev_new("w2", "a1", "commentCard", "other webhook", NULL,
	                 0), /* same action, other webhook */
	};
	enum store_put r[4];
	assert_int_equal(suite_events_put(st, evs, 4, r, &err), 0);
	assert_int_equal(r[0], STORE_PUT_NEW);
	assert_int_equal(r[1], STORE_PUT_NEW);
	assert_int_equal(r[2], STORE_PUT_DUPLICATE);
	assert_int_equal(r[3], STORE_PUT_NEW);
	assert_non_null(evs[0]->id);
	assert_true(id_is_wellformed(evs[0]->id));
	assert_true(evs[0]->received_at > 0);
	assert_null(evs[2]->id); /* not stored: no id made up for it */
	assert_int_equal(evs[2]->received_at, 0);

	/* across batches */
	event *again = suite_ev_new("w1", "a2", "commentCard", "two again", NULL, 0);
	assert_int_equal(suite_put1(st, again), STORE_PUT_DUPLICATE);
	suite_ev_free(again);

	event_query q = {.webhook_id = "w1"};
	event_row *rows = NULL;
	size_t n = 0;
	assert_int_equal(store_event_list(st, &q, &rows, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(rows[0].ev.summary, "two"); /* newest first */
	assert_string_equal(rows[1].ev.summary, "one");
	assert_true(rows[0].seq > rows[1].seq);
	assert_null(rows[0].ev.payload);
	event_row_list_free(rows, n);

	webhook w = {0};
	assert_int_equal(store_webhook_get(st, "w1", &w, &err), 0);
	assert_int_equal(w.event_count, 2);
	assert_int_equal(w.last_event_at, evs[1]->received_at);
	webhook_clear(&w);

	/* an event without its keys fails alone; the rest are stored */
	event *bad = suite_ev_new("w1", "a9", "commentCard", "bad", NULL, 0);
	free(bad->action_id);
	bad->action_id = NULL;
	event *good = suite_ev_new("w1", "a10", "commentCard", "good", NULL, 0);
	event *mix[2] = {bad, good};
	assert_int_equal(suite_events_put(st, mix, 2, r, &err), 0);
	assert_int_equal(r[0], STORE_PUT_FAILED);
	assert_int_equal(r[1], STORE_PUT_NEW);
	suite_ev_free(bad);
	suite_ev_free(good);

	/* a batch whose transaction fails stores nothing: here the second event
	 * reuses the id of a stored one (a rule ON CONFLICT does not cover) */
	event *fresh = suite_ev_new("w1", "a20", "commentCard", "fresh", NULL, 0);
	event *clash = suite_ev_new("w1", "a21", "commentCard", "clash", NULL, 0);
	clash->id = str_dup(evs[0]->id);
	event *batch[2] = {fresh, clash};
	assert_int_equal(suite_events_put(st, batch, 2, r, &err), TH_ESTORE);
	assert_int_equal(r[0], STORE_PUT_FAILED);
	assert_int_equal(r[1], STORE_PUT_FAILED);
	assert_null(fresh->id); /* the id made up for it is taken back */
	assert_int_equal(fresh->received_at, 0);
	assert_string_equal(clash->id, evs[0]->id); /* the caller's own id is kept */
	free(clash->id);
	clash->id = NULL;
	assert_int_equal(suite_events_put(st, batch, 2, r, &err), 0); /* nothing half-stored */
	assert_int_equal(r[0], STORE_PUT_NEW);
	assert_int_equal(r[1], STORE_PUT_NEW);
	assert_int_equal(suite_events_put(st, batch, 0, r, &err), 0);
	suite_ev_free(fresh);
	suite_ev_free(clash);
	for (size_t i = 0; i < 4; i++)
		suite_ev_free(evs[i]);
}

/* Deleting a webhook keeps its events. */
void suite_events_survive_webhook_delete(void **state)
{
	store_fx *f = suite_fx(state);
	store *st = f->st;
	th_error err = {0};
	suite_add_webhook(st, "w1", "b0000000000000000000000b", "t");
	event *ev = suite_ev_new("w1", "a1", "createCard", "made", NULL, 0);
	assert_int_equal(suite_put1(st, ev), STORE_PUT_NEW);
	assert_int_equal(store_webhook_delete(st, "w1", &err), 0);
	event got = {0};
	assert_int_equal(store_event_get(st, ev->id, &got, &err), 0);
	assert_string_equal(got.webhook_id, "w1");
	event_clear(&got);
	/* but no new event is stored under the webhook once it is gone */
	event *ev2 = suite_ev_new("w1", "a2", "createCard", "late", NULL, 0);
	enum store_put r;
	assert_int_equal(store_events_put(st, &ev2, 1, &r, &err), 0);
	assert_int_equal(r, STORE_PUT_GONE);
	assert_null(ev2->id); /* not stored: given back as it came */
	suite_ev_free(ev);
	suite_ev_free(ev2);
}

/* A body of @len bytes that compresses well (the SQLite store keeps such
 * bodies LZ4-packed) and is hostile: NUL bytes, invalid UTF-8, a quote. */
static char *repetitive_body(size_t len)
{
	static const char unit[] = "{\"text\":\"x\0\xff\xfe\xc0\xaf \xe2\x80\xae\"},";
	char *b = malloc(len + 1);
	assert_non_null(b);
	for (size_t i = 0; i < len; i++)
		b[i] = unit[i % (sizeof unit - 1)];
	b[len] = '\0';
	return b;
}

/* Store @p (@len bytes) as event @aid and read it back by id and in an
 * export page: the exact bytes, with a NUL after them. */
static void check_bytes_kept(store *st, const char *aid, const char *p, size_t len)
{
	th_error err = {0};
	event *ev = suite_ev_new("w1", aid, "x", "s", p, len);
	assert_int_equal(suite_put1(st, ev), STORE_PUT_NEW);
	event got = {0};
	assert_int_equal(store_event_get(st, ev->id, &got, &err), 0);
	assert_int_equal(got.payload_len, len);
	assert_memory_equal(got.payload, p, len);
	assert_int_equal(got.payload[len], '\0');
	assert_string_equal(got.action_id, aid);
	assert_int_equal(got.received_at, ev->received_at);
	event_clear(&got);
	/* the export's page reads the payload by another query */
	event_page_query q = {.after_seq = 0, .upto_seq = INT64_MAX, .limit = STORE_PAGE_MAX};
	event_row *rows = NULL;
	size_t n = 0;
	assert_int_equal(store_event_page(st, &q, &rows, &n, &err), 0);
	bool seen = false;
	for (size_t i = 0; i < n; i++) {
		if (!str_eq(rows[i].ev.id, ev->id))
			continue;
		seen = true;
		assert_int_equal(rows[i].ev.payload_len, len);
		assert_memory_equal(rows[i].ev.payload, p, len);
	}
	assert_true(seen);
	event_row_list_free(rows, n);
	suite_ev_free(ev);
}

/* Payloads come back byte for byte (NUL bytes, invalid UTF-8, HTML), whether
 * the store keeps them as they came or packed (store/payload_codec.h): short
 * ones, ones at and around the packing threshold, a real delivery, 1 MiB. */
void suite_payload_bytes_exact(void **state)
{
	store_fx *f = suite_fx(state);
	store *st = f->st;
	th_error err = {0};
	static const char nul[] = "{\"a\":\"x\0y\"}\0tail";
	static const char bad_utf8[] = "{\"n\":\"\xff\xfe\xc0\xaf\xed\xa0\x80\"}";
	static const char html[] =
	    "{\"t\":\"<script>alert('x')</script>&amp;\\u0000 \xe2\x80\xae\"}";
	struct {
		const char *p;
		size_t len;
	} cases[] = {
	    {nul, sizeof nul - 1}, {bad_utf8, sizeof bad_utf8 - 1}, {html, sizeof html - 1}};
	unsigned char all[256];
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	for (size_t i = 0; i < TH_ARRAY_LEN(cases) + 1; i++) {
		const char *p = i < TH_ARRAY_LEN(cases) ? cases[i].p : (const char *)all;
		size_t len = i < TH_ARRAY_LEN(cases) ? cases[i].len : sizeof all;
		char aid[16];
		str_printf(aid, sizeof aid, "a%zu", i);
		check_bytes_kept(st, aid, p, len);
	}
	static const size_t sizes[] = {63, 64, 65, 3000, (size_t)1 << 20};
	for (size_t i = 0; i < TH_ARRAY_LEN(sizes); i++) {
		char *b = repetitive_body(sizes[i]);
		char aid[16];
		str_printf(aid, sizeof aid, "r%zu", sizes[i]);
		check_bytes_kept(st, aid, b, sizes[i]);
		free(b);
	}
	event *real = ev_from_file("createCard.json", "w1");
	check_bytes_kept(st, "real", real->payload, real->payload_len);
	suite_ev_free(real);
	/* all stored by this version: nothing for doctor to suggest packing */
	bool raw = true;
	assert_int_equal(store_payloads_raw_sample(st, &raw, &err), 0);
	assert_false(raw);
	event got = {0};
	assert_int_equal(store_event_get(st, "missing", &got, &err), TH_ENOTFOUND);
	assert_string_equal(err.msg, "no event with id missing");
}

/* An event's source and who acted (schema 8) read back from both the full
 * read and a listing, which reads no payload; a payload that says otherwise
 * does not change the columns. */
void suite_event_source_member(void **state)
{
	store_fx *f = suite_fx(state);
	store *st = f->st;
	th_error err = {0};
	event *live = suite_ev_new("w1", "s1", "commentCard", "live", NULL, 0);
	event *past =
	    suite_ev_new("w1", "s2", "commentCard", "past",
	                 "{\"action\":{\"idMemberCreator\":\"0000000000000000000000ff\"}}", 0);
	past->source = EVENT_FROM_BACKFILL;
	past->member_id = str_dup("5f00000000000000000000cc");
	assert_int_equal(suite_put1(st, live), STORE_PUT_NEW);
	assert_int_equal(suite_put1(st, past), STORE_PUT_NEW);

	event got = {0};
	assert_int_equal(store_event_get(st, past->id, &got, &err), 0);
	assert_int_equal(got.source, EVENT_FROM_BACKFILL);
	assert_string_equal(got.member_id, "5f00000000000000000000cc");
	event_clear(&got);
	assert_int_equal(store_event_get(st, live->id, &got, &err), 0);
	assert_int_equal(got.source, EVENT_FROM_DELIVERY);
	assert_null(got.member_id);
	event_clear(&got);

	event_query q = {0};
	event_row *rows = NULL;
	size_t n = 0;
	assert_int_equal(store_event_list(st, &q, &rows, &n, &err), 0);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++) {
		bool is_past = strcmp(rows[i].ev.id, past->id) == 0;
		assert_int_equal(rows[i].ev.source,
		                 is_past ? EVENT_FROM_BACKFILL : EVENT_FROM_DELIVERY);
		if (is_past)
			assert_string_equal(rows[i].ev.member_id, "5f00000000000000000000cc");
		else
			assert_null(rows[i].ev.member_id);
	}
	event_row_list_free(rows, n);
	suite_ev_free(live);
	suite_ev_free(past);
}

/* event_list: every filter, paging, order and the limit. */
void suite_event_list_filters(void **state)
{
	store_fx *f = suite_fx(state);
	store *st = f->st;
	th_error err = {0};
	const char *summaries[] = {"Zoë moved card", "100% done",   "a_b here",
	                           "axb there",      "A%B literal", "plain \\ backslash",
	                           "MIXED case Word"};
	enum { N = 40 };
	event *evs[N];
	for (int i = 0; i < N; i++) {
		char aid[16];
		str_printf(aid, sizeof aid, "act%02d", i);
		evs[i] =
		    suite_ev_new(i % 2 ? "wB" : "wA", aid, i % 3 ? "updateCard" : "commentCard",
		                 summaries[i % TH_ARRAY_LEN(summaries)], NULL, 0);
	}
	enum store_put r[N];
	assert_int_equal(suite_events_put(st, evs, N, r, &err), 0);

	event_row *rows = NULL;
	size_t n = 0;
	event_query q = {0};
	assert_int_equal(store_event_list(st, &q, &rows, &n, &err), 0);
	assert_int_equal(n, N);
	for (size_t i = 1; i < n; i++)
		assert_true(rows[i - 1].seq > rows[i].seq);
	event_row_list_free(rows, n);

	q = (event_query){.webhook_id = "wA", .action_type = "commentCard"};
	assert_int_equal(store_event_list(st, &q, &rows, &n, &err), 0);
	size_t expect = 0;
	for (int i = 0; i < N; i++)
		if (i % 2 == 0 && i % 3 == 0)
			expect++;
	assert_int_equal(n, expect);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(rows[i].ev.webhook_id, "wA");
		assert_string_equal(rows[i].ev.action_type, "commentCard");
	}
	event_row_list_free(rows, n);

	/* text: '%' and '_' are literal, case-insensitive for ASCII */
	struct {
		const char *text;
		const char *only;
	} texts[] = {{"%", NULL},
	             {"_", "a_b here"},
	             {"a_b", "a_b here"},
	             {"a%b", "A%B literal"},
	             {"mixed CASE", "MIXED case Word"},
	             {"\\", "plain \\ backslash"}};
	for (size_t t = 0; t < TH_ARRAY_LEN(texts); t++) {
		q = (event_query){.text = texts[t].text, .limit = 1000};
		assert_int_equal(store_event_list(st, &q, &rows, &n, &err), 0);
		assert_true(n > 0);
		for (size_t i = 0; i < n; i++) {
			if (texts[t].only)
				assert_string_equal(rows[i].ev.summary, texts[t].only);
			else
				assert_non_null(strchr(rows[i].ev.summary, '%'));
		}
		event_row_list_free(rows, n);
	}
	q = (event_query){.text = "no such words"};
	assert_int_equal(store_event_list(st, &q, &rows, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_null(rows);

	/* paging newest first with before_seq */
	int64_t seen = 0, before = 0;
	for (;;) {
		q = (event_query){.limit = 7, .before_seq = before};
		assert_int_equal(store_event_list(st, &q, &rows, &n, &err), 0);
		if (n == 0)
			break;
		assert_true(n <= 7);
		if (before)
			assert_true(rows[0].seq < before);
		before = rows[n - 1].seq;
		seen += (int64_t)n;
		event_row_list_free(rows, n);
	}
	assert_int_equal(seen, N);
	/* tail: after_seq, oldest first */
	q = (event_query){.after_seq = before + 34, .oldest_first = true};
	assert_int_equal(store_event_list(st, &q, &rows, &n, &err), 0);
	assert_int_equal(n, 5);
	assert_int_equal(rows[0].seq, before + 35);
	assert_true(rows[0].seq < rows[1].seq);
	event_row_list_free(rows, n);
	/* the limit is capped */
	q = (event_query){.limit = 5000000};
	assert_int_equal(store_event_list(st, &q, &rows, &n, &err), 0);
	assert_int_equal(n, N);
	event_row_list_free(rows, n);
	for (int i = 0; i < N; i++)
		suite_ev_free(evs[i]);
}

/* ---- deliveries --------------------------------------------------------------------------- */

/* One pending delivery per matching enabled handler of a new event. */
void suite_deliveries_for_matching_handlers(void **state)
{
	store_fx *f = suite_fx(state);
	store *st = f->st;
	/* no handler: a batch makes no deliveries, so it wakes no dispatcher */
	event *lone = suite_ev_new("w1", "lone", "updateCard", "s", "{}", 2);
	assert_int_equal(suite_put1(st, lone), STORE_PUT_NEW);
	assert_false(store_take_fresh_deliveries(st));
	suite_ev_free(lone);
	suite_add_handler(st, "all", HANDLER_EXEC, NULL, NULL, true);
	suite_add_handler(st, "comments", HANDLER_EXEC, "commentCard", NULL, true);
	suite_add_handler(st, "moves", HANDLER_FORWARD, " addLabelToCard , updateCard:idList ",
	                  NULL, true);
	suite_add_handler(st, "off", HANDLER_EXEC, NULL, NULL, false);
	suite_add_handler(st, "otherboard", HANDLER_EXEC, NULL, "ffffffffffffffffffffffff", true);
	suite_add_handler(st, "thisboard", HANDLER_FUNC, NULL, "6123456789abcdef01234567", true);
	suite_add_handler(st, "renames", HANDLER_FUNC, "updateCard:name", NULL, true);

	event *move = ev_from_file("updateCard-moveList.json", "w1");
	event *rename = ev_from_file("updateCard-rename.json", "w1");
	event *comment = ev_from_file("commentCard.json", "w1");
	/* the same move without a parsed tree: the store parses the payload */
	event *move_raw =
	    suite_ev_new("w1", "raw-move", "updateCard", "s", move->payload, move->payload_len);
	event *rename_raw = suite_ev_new("w1", "raw-rename", "updateCard", "s", rename->payload,
	                                 rename->payload_len);
	event *evs[] = {move, rename, comment, move_raw, rename_raw};
	enum store_put r[5];
	th_error err = {0};
	assert_int_equal(suite_events_put(st, evs, 5, r, &err), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(r[i], STORE_PUT_NEW);
	assert_true(store_take_fresh_deliveries(st));
	assert_false(store_take_fresh_deliveries(st)); /* taken */

	assert_int_equal(count_deliveries(st, move->id, "all"), 1);
	assert_int_equal(count_deliveries(st, move->id, "moves"), 1);
	assert_int_equal(count_deliveries(st, move->id, "comments"), 0);
	assert_int_equal(count_deliveries(st, move->id, "off"), 0);
	assert_int_equal(count_deliveries(st, move->id, "otherboard"), 0);
	assert_int_equal(count_deliveries(st, move->id, "thisboard"), 1);
	assert_int_equal(count_deliveries(st, rename->id, "moves"), 0);
	assert_int_equal(count_deliveries(st, rename->id, "renames"), 1);
	assert_int_equal(count_deliveries(st, move->id, "renames"), 0);
	assert_int_equal(count_deliveries(st, rename_raw->id, "renames"), 1);
	assert_int_equal(count_deliveries(st, rename->id, "all"), 1);
	assert_int_equal(count_deliveries(st, comment->id, "comments"), 1);
	assert_int_equal(count_deliveries(st, comment->id, "moves"), 0);
	assert_int_equal(count_deliveries(st, comment->id, "thisboard"), 1);
	assert_int_equal(count_deliveries(st, rename->id, "thisboard"), 1);
	assert_int_equal(count_deliveries(st, move_raw->id, "moves"), 1);
	assert_int_equal(count_deliveries(st, rename_raw->id, "moves"), 0);
	/* hand-built events point at board b000...: "thisboard" does not match them */
	assert_int_equal(count_deliveries(st, move_raw->id, "thisboard"), 0);

	delivery *d = NULL;
	size_t n = 0;
	assert_int_equal(store_delivery_list(st, "pending", NULL, 0, &d, &n, &err), 0);
	/* move: all, moves, thisboard; rename: all, thisboard; comment: all, comments,
	 * thisboard; move_raw: all, moves; rename_raw: all */
	assert_int_equal(n, 3 + 2 + 3 + 2 + 1 + 2); /* + renames: rename, rename_raw */
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(d[i].status, DELIVERY_PENDING);
		assert_int_equal(d[i].attempts, 0);
		assert_true(d[i].next_attempt_at > 0);
	}
	delivery_list_free(d, n);
	assert_int_equal(store_delivery_list(st, "bogus", NULL, 0, &d, &n, &err), TH_EINVAL);
	/* the same batch again: duplicates only, no delivery made */
	assert_int_equal(suite_events_put(st, evs, 5, r, &err), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(r[i], STORE_PUT_DUPLICATE);
	assert_false(store_take_fresh_deliveries(st));
	for (size_t i = 0; i < TH_ARRAY_LEN(evs); i++)
		suite_ev_free(evs[i]);
}

/* delivery_claim keeps per-(webhook, handler) order and respects kinds. */
void suite_claim_order(void **state)
{
	store_fx *f = suite_fx(state);
	store *st = f->st;
	suite_add_handler(st, "h1", HANDLER_EXEC, NULL, NULL, true);
	suite_add_handler(st, "h2", HANDLER_FORWARD, NULL, NULL, true);
	event *e[4] = {
	    suite_ev_new("wA", "1", "t", "s", NULL, 0), suite_ev_new("wA", "2", "t", "s", NULL, 0),
	    suite_ev_new("wB", "3", "t", "s", NULL, 0), suite_ev_new("wA", "4", "t", "s", NULL, 0)};
	enum store_put r[4];
	th_error err = {0};
	assert_int_equal(suite_events_put(st, e, 4, r, &err), 0);
	char got[1024], want[1024];

	/* kinds filter: only exec */
	claim_events(st, 1u << HANDLER_EXEC, 10, 60000, got, sizeof got, NULL, NULL);
	str_printf(want, sizeof want, "%s/h1,%s/h1", e[0]->id, e[2]->id);
	assert_string_equal(got, want);
	/* h1's wA queue is blocked behind the running event 1; forward ones are free */
	claim_events(st, SUITE_ALL_KINDS, 10, 60000, got, sizeof got, NULL, NULL);
	str_printf(want, sizeof want, "%s/h2,%s/h2", e[0]->id, e[2]->id);
	assert_string_equal(got, want);
	claim_events(st, SUITE_ALL_KINDS, 10, 60000, got, sizeof got, NULL, NULL);
	assert_string_equal(got, "");
	claim_events(st, 0, 10, 60000, got, sizeof got, NULL, NULL);
	assert_string_equal(got, "");

	/* finishing event 1 for h1 releases event 2 for h1 only */
	delivery *d = NULL;
	size_t n = 0;
	assert_int_equal(store_delivery_list(st, "running", e[0]->id, 0, &d, &n, &err), 0);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++)
		if (str_eq(d[i].handler_id, "h1"))
			assert_int_equal(
			    store_delivery_finish(st, d[i].id, DELIVERY_DONE, 0, NULL, &err), 0);
	delivery_list_free(d, n);
	claim_events(st, SUITE_ALL_KINDS, 10, 60000, got, sizeof got, NULL, NULL);
	str_printf(want, sizeof want, "%s/h1", e[1]->id);
	assert_string_equal(got, want);

	/* max is honoured */
	event *more[3] = {suite_ev_new("wC", "5", "t", "s", NULL, 0),
	                  suite_ev_new("wD", "6", "t", "s", NULL, 0),
	                  suite_ev_new("wE", "7", "t", "s", NULL, 0)};
	assert_int_equal(suite_events_put(st, more, 3, r, &err), 0);
	claim_events(st, SUITE_ALL_KINDS, 2, 60000, got, sizeof got, &d, &n);
	assert_int_equal(n, 2);
	delivery_list_free(d, n);
	for (int i = 0; i < 4; i++)
		suite_ev_free(e[i]);
	for (int i = 0; i < 3; i++)
		suite_ev_free(more[i]);
}

/* A running delivery whose lease ran out is claimed again. */
void suite_lease_expiry(void **state)
{
	store_fx *f = suite_fx(state);
	store *st = f->st;
	th_error err = {0};
	suite_add_handler(st, "h1", HANDLER_EXEC, NULL, NULL, true);
	event *e[2] = {suite_ev_new("wA", "1", "t", "s", NULL, 0),
	               suite_ev_new("wA", "2", "t", "s", NULL, 0)};
	enum store_put r[2];
	assert_int_equal(suite_events_put(st, e, 2, r, &err), 0);
	delivery *d = NULL;
	size_t n = 0;
	/* a lease long enough that a slow run (valgrind, a loaded machine) is
	 * still inside it at the second claim */
	int64_t lease_ms = 3000, leased_at = time_now_ms();
	assert_int_equal(store_delivery_claim(st, SUITE_ALL_KINDS, 10, lease_ms, &d, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(d[0].event_id, e[0]->id);
	assert_int_equal(d[0].attempts, 1);
	char *first = str_dup(d[0].id);
	delivery_list_free(d, n);
	/* lease still valid: nothing (event 2 waits behind the running one) */
	assert_int_equal(store_delivery_claim(st, SUITE_ALL_KINDS, 10, lease_ms, &d, &n, &err), 0);
	assert_int_equal(n, 0);
	while (time_now_ms() - leased_at <= lease_ms + 50)
		usleep(20 * 1000);
	/* the lease ran out: the same delivery is claimed again, not event 2 */
	assert_int_equal(store_delivery_claim(st, SUITE_ALL_KINDS, 10, 60000, &d, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(d[0].id, first);
	assert_int_equal(d[0].attempts, 2);
	assert_true(d[0].claimed_until > time_now_ms() + 50000);
	delivery_list_free(d, n);
	delivery g = {0};
	assert_int_equal(store_delivery_get(st, first, &g, &err), 0);
	assert_int_equal(g.status, DELIVERY_RUNNING);
	assert_int_equal(g.attempts, 2);
	delivery_clear(&g);
	/* the first claim's outcome, recorded late (the dispatcher held it and
	 * dropped the second claim): its attempt count is put back, so the
	 * retry schedule skips no step */
	delivery_outcome late = {first, DELIVERY_FAILED, 1, "exit status 1", 1000, 1};
	size_t changed = 0;
	assert_int_equal(store_delivery_finish_many(st, &late, 1, &changed, &err), 0);
	assert_int_equal(changed, 1);
	assert_int_equal(store_delivery_get(st, first, &g, &err), 0);
	assert_int_equal(g.status, DELIVERY_FAILED);
	assert_int_equal(g.attempts, 1);
	delivery_clear(&g);
	assert_int_equal(store_delivery_claim(st, SUITE_ALL_KINDS, 10, 60000, &d, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(d[0].id, first);
	assert_int_equal(d[0].attempts, 2); /* the second attempt, as scheduled */
	delivery_list_free(d, n);
	/* an outcome without an attempt number (0) keeps the stored count */
	late = (delivery_outcome){first, DELIVERY_FAILED, 1, "exit status 1", 1000, 0};
	assert_int_equal(store_delivery_finish_many(st, &late, 1, &changed, &err), 0);
	assert_int_equal(store_delivery_get(st, first, &g, &err), 0);
	assert_int_equal(g.attempts, 2);
	delivery_clear(&g);
	assert_int_equal(store_delivery_get(st, "nope", &g, &err), TH_ENOTFOUND);
	free(first);
	suite_ev_free(e[0]);
	suite_ev_free(e[1]);
}

/* webhooks.last_event_at after a batch: the latest new event of each webhook;
 * duplicates do not count, and an older batch never moves it back. */
void suite_last_event_at(void **state)
{
	store_fx *f = suite_fx(state);
	store *st = f->st;
	th_error err = {0};
	suite_add_webhook(st, "wl1", "6123456789abcdef0000aa01", "tokA");
	suite_add_webhook(st, "wl2", "6123456789abcdef0000aa02", "tokA");
	event *first = suite_ev_new("wl1", "x1", "commentCard", "s", NULL, 0);
	first->received_at = 5000;
	assert_int_equal(suite_put1(st, first), STORE_PUT_NEW);
	event *e[5] = {suite_ev_new("wl1", "b1", "commentCard", "s", NULL, 0),
	               suite_ev_new("wl2", "b2", "commentCard", "s", NULL, 0),
	               suite_ev_new("wl1", "b3", "commentCard", "s", NULL, 0),
	               suite_ev_new("wl2", "b4", "commentCard", "s", NULL, 0),
	               suite_ev_new("wl1", "x1", "commentCard", "dup", NULL, 0)};
	const int64_t at[5] = {7000, 9000, 8000, 6000, 99000};
	for (size_t i = 0; i < 5; i++)
		e[i]->received_at = at[i];
	enum store_put r[5];
	assert_int_equal(suite_events_put(st, e, 5, r, &err), 0);
	assert_int_equal(r[4], STORE_PUT_DUPLICATE);
	webhook w = {0};
	assert_int_equal(store_webhook_get(st, "wl1", &w, &err), 0);
	assert_int_equal(w.last_event_at, 8000); /* not the duplicate's 99000 */
	webhook_clear(&w);
	assert_int_equal(store_webhook_get(st, "wl2", &w, &err), 0);
	assert_int_equal(w.last_event_at, 9000);
	webhook_clear(&w);
	/* an older event later never moves it back */
	event *old = suite_ev_new("wl2", "b5", "commentCard", "s", NULL, 0);
	old->received_at = 1000;
	assert_int_equal(suite_put1(st, old), STORE_PUT_NEW);
	assert_int_equal(store_webhook_get(st, "wl2", &w, &err), 0);
	assert_int_equal(w.last_event_at, 9000);
	webhook_clear(&w);
	/* the event counter (migration 9) follows the same batches: new events
	 * only, per webhook, across batches; a listing reads the same numbers */
	assert_int_equal(store_webhook_get(st, "wl1", &w, &err), 0);
	assert_int_equal(w.event_count, 3);
	webhook_clear(&w);
	webhook *ws = NULL;
	size_t nw = 0;
	assert_int_equal(store_webhook_list(st, &ws, &nw, &err), 0);
	for (size_t i = 0; i < nw; i++)
		assert_int_equal(ws[i].event_count, 3); /* wl1: x1 b1 b3; wl2: b2 b4 b5 */
	assert_int_equal(nw, 2);
	webhook_list_free(ws, nw);
	/* a removed webhook's history keeps its count when it comes back */
	assert_int_equal(store_webhook_delete(st, "wl2", &err), 0);
	suite_add_webhook(st, "wl2", "6123456789abcdef0000aa02", "tokA");
	assert_int_equal(store_webhook_get(st, "wl2", &w, &err), 0);
	assert_int_equal(w.event_count, 3);
	webhook_clear(&w);
	suite_ev_free(first);
	suite_ev_free(old);
	for (size_t i = 0; i < 5; i++)
		suite_ev_free(e[i]);
}

/* The count of rollup cell (@wh, @type, @hour) in @a, -1 when absent. */
static int64_t rollup_cell(const event_rollup_row *a, size_t n, const char *wh, const char *type,
                           int64_t hour)
{
	for (size_t i = 0; i < n; i++)
		if (a[i].hour == hour && str_eq(a[i].webhook_id, wh) &&
		    str_eq(a[i].action_type, type))
			return a[i].n;
	return -1;
}

/* A batch larger than one statement's share (PostgreSQL stores 1,000 events
 * per statement, all in one pipelined transaction): a duplicate of an event
 * of the first part in the second part, deliveries for every new event and
 * none for the duplicate, a handler id that needs quoting in an array
 * literal, the rollup and last_event_at summed over both parts. */
void suite_events_big_batch(void **state)
{
	store_fx *f = suite_fx(state);
	store *st = f->st;
	th_error err = {0};
	const char *odd = "we\"ird\\id,{x}";
	suite_add_webhook(st, "wb1", "6123456789abcdef0000bb01", "tokB");
	suite_add_handler(st, odd, HANDLER_EXEC, NULL, NULL, true);
	suite_add_handler(st, "comments", HANDLER_EXEC, "commentCard", NULL, true);
	enum { N = 1100, DUP = 1050 };
	const int64_t H = 3600000, h = 490001;
	event **evs = calloc(N, sizeof *evs);
	enum store_put *r = calloc(N, sizeof *r);
	assert_non_null(evs);
	assert_non_null(r);
	for (int i = 0; i < N; i++) {
		char aid[16];
		str_printf(aid, sizeof aid, "big%04d", i == DUP ? 3 : i);
		evs[i] =
		    suite_ev_new("wb1", aid, i % 2 ? "commentCard" : "updateCard", "s", NULL, 0);
		evs[i]->received_at = h * H + i;
	}
	assert_int_equal(store_events_put(st, evs, N, r, &err), 0);
	for (int i = 0; i < N; i++)
		assert_int_equal(r[i], i == DUP ? STORE_PUT_DUPLICATE : STORE_PUT_NEW);
	assert_null(evs[DUP]->id);
	for (int i = 0; i < N; i += (i < 990 ? 97 : 1)) {
		if (i == DUP)
			continue;
		assert_int_equal(count_deliveries(st, evs[i]->id, odd), 1);
		assert_int_equal(count_deliveries(st, evs[i]->id, "comments"), i % 2);
	}
	int64_t counts[5] = {0}, oldest = 0;
	assert_int_equal(store_delivery_stats(st, counts, &oldest, &err), 0);
	assert_int_equal(counts[DELIVERY_PENDING], (N - 1) + N / 2); /* all new, + comments */
	event_rollup_row *a = NULL;
	size_t n = 0;
	assert_int_equal(store_event_rollup(st, h, h + 1, 1, true, &a, &n, &err), 0);
	assert_int_equal(rollup_cell(a, n, "wb1", "updateCard", h) +
	                     rollup_cell(a, n, "wb1", "commentCard", h),
	                 N - 1);
	event_rollup_list_free(a, n);
	webhook w = {0};
	assert_int_equal(store_webhook_get(st, "wb1", &w, &err), 0);
	assert_int_equal(w.last_event_at, h * H + N - 1);
	webhook_clear(&w);
	for (int i = 0; i < N; i++)
		suite_ev_free(evs[i]);
	free(evs);
	free(r);
}

/* The hourly rollup follows events_put: one cell per (hour, webhook, type),
 * counting new events only (duplicates and a failed batch add nothing),
 * summed across batches; the range is half-open and oldest first. */
void suite_event_rollup(void **state)
{
	store_fx *f = suite_fx(state);
	store *st = f->st;
	th_error err = {0};
	const int64_t h = 490000; /* an hour number (hours since the epoch) */
	const int64_t H = 3600000;
	event *e[6] = {suite_ev_new("wr1", "r1", "createCard", "s", NULL, 0),
	               suite_ev_new("wr1", "r2", "createCard", "s", NULL, 0),
	               suite_ev_new("wr1", "r3", "commentCard", "s", NULL, 0),
	               suite_ev_new("wr2", "r4", "createCard", "s", NULL, 0),
	               suite_ev_new("wr1", "r5", "createCard", "s", NULL, 0),
	               suite_ev_new("wr1", "r1", "createCard", "dup", NULL, 0)};
	const int64_t at[6] = {h * H, h * H + H - 1, h * H + 5, h * H + 7, (h + 1) * H, h * H};
	for (size_t i = 0; i < 6; i++)
		e[i]->received_at = at[i];
	enum store_put r[6];
	assert_int_equal(suite_events_put(st, e, 6, r, &err), 0);
	assert_int_equal(r[5], STORE_PUT_DUPLICATE);
	/* a later batch adds to an existing cell; a long, non-ASCII type is kept as given */
	event *more = suite_ev_new("wr1", "r6", "createCard", "s", NULL, 0);
	more->received_at = h * H + 42;
	assert_int_equal(suite_put1(st, more), STORE_PUT_NEW);
	char longtype[300];
	memset(longtype, 'x', sizeof longtype - 1);
	memcpy(longtype, "Zo\xc3\xab<b>", 8);
	longtype[sizeof longtype - 1] = '\0';
	event *odd = suite_ev_new("wr2", "r7", longtype, "s", NULL, 0);
	odd->received_at = (h + 2) * H;
	assert_int_equal(suite_put1(st, odd), STORE_PUT_NEW);
	/* a duplicate alone adds nothing */
	event *dup = suite_ev_new("wr1", "r2", "createCard", "again", NULL, 0);
	dup->received_at = h * H;
	assert_int_equal(suite_put1(st, dup), STORE_PUT_DUPLICATE);

	event_rollup_row *a = NULL;
	size_t n = 0;
	assert_int_equal(store_event_rollup(st, h, h + 3, 1, true, &a, &n, &err), 0);
	assert_int_equal(n, 5);
	assert_int_equal(rollup_cell(a, n, "wr1", "createCard", h), 3);
	assert_int_equal(rollup_cell(a, n, "wr1", "commentCard", h), 1);
	assert_int_equal(rollup_cell(a, n, "wr2", "createCard", h), 1);
	assert_int_equal(rollup_cell(a, n, "wr1", "createCard", h + 1), 1);
	assert_int_equal(rollup_cell(a, n, "wr2", longtype, h + 2), 1);
	for (size_t i = 1; i < n; i++)
		assert_true(a[i - 1].hour <= a[i].hour);
	event_rollup_list_free(a, n);
	/* half-open: [h + 1, h + 2) holds only hour h + 1 */
	assert_int_equal(store_event_rollup(st, h + 1, h + 2, 1, true, &a, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(a[0].hour, h + 1);
	event_rollup_list_free(a, n);
	/* an empty range */
	assert_int_equal(store_event_rollup(st, h + 10, h + 20, 1, true, &a, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_null(a);
	/* buckets of 2 hours starting at an even hour: h and h + 1 summed */
	assert_int_equal(h % 2, 0);
	assert_int_equal(store_event_rollup(st, h, h + 3, 2, true, &a, &n, &err), 0);
	assert_int_equal(rollup_cell(a, n, "wr1", "createCard", h), 4);
	assert_int_equal(rollup_cell(a, n, "wr1", "createCard", h + 1), -1);
	assert_int_equal(rollup_cell(a, n, "wr2", longtype, h + 2), 1);
	event_rollup_list_free(a, n);
	/* by type only (the dashboard's): summed over the webhooks, webhook "" */
	assert_int_equal(store_event_rollup(st, h, h + 3, 1, false, &a, &n, &err), 0);
	assert_int_equal(n, 4);
	assert_int_equal(rollup_cell(a, n, "", "createCard", h), 4);
	assert_int_equal(rollup_cell(a, n, "", "commentCard", h), 1);
	assert_int_equal(rollup_cell(a, n, "", "createCard", h + 1), 1);
	assert_int_equal(rollup_cell(a, n, "", longtype, h + 2), 1);
	for (size_t i = 1; i < n; i++)
		assert_true(a[i - 1].hour <= a[i].hour);
	event_rollup_list_free(a, n);
	assert_int_equal(store_event_rollup(st, h, h + 3, 2, false, &a, &n, &err), 0);
	assert_int_equal(rollup_cell(a, n, "", "createCard", h), 5);
	assert_int_equal(rollup_cell(a, n, "", longtype, h + 2), 1);
	event_rollup_list_free(a, n);
	assert_int_equal(store_event_rollup(st, h, h + 3, 0, true, &a, &n, &err), TH_EINVAL);
	assert_int_equal(store_event_rollup(st, h, h + 3, 0, false, &a, &n, &err), TH_EINVAL);
	suite_ev_free(more);
	suite_ev_free(odd);
	suite_ev_free(dup);
	for (size_t i = 0; i < 6; i++)
		suite_ev_free(e[i]);
}

/* delivery_finish_many: several outcomes in one transaction; unknown ids are
 * skipped and counted out; a bad status refuses the whole batch. */
void suite_finish_many(void **state)
{
	store_fx *f = suite_fx(state);
	store *st = f->st;
	th_error err = {0};
	suite_add_handler(st, "h1", HANDLER_EXEC, NULL, NULL, true);
	event *e[3] = {suite_ev_new("wA", "1", "commentCard", "s", NULL, 0),
	               suite_ev_new("wB", "2", "commentCard", "s", NULL, 0),
	               suite_ev_new("wC", "3", "commentCard", "s", NULL, 0)};
	enum store_put r[3];
	assert_int_equal(suite_events_put(st, e, 3, r, &err), 0);
	delivery *d = NULL;
	size_t n = 0;
	assert_int_equal(store_delivery_claim(st, SUITE_ALL_KINDS, 10, 60000, &d, &n, &err), 0);
	assert_int_equal(n, 3);
	int64_t later = time_now_ms() + 60000;
	delivery_outcome outs[4] = {{d[0].id, DELIVERY_DONE, 0, NULL, 3000, 0},
	                            {d[1].id, DELIVERY_FAILED, later, "exit status 1", 700000, 0},
	                            {"no-such-delivery", DELIVERY_DONE, 0, NULL, 3000, 0},
	                            {d[2].id, DELIVERY_DEAD, 0, "gave up", -1, 0}};
	/* a status an attempt cannot end in refuses the whole batch, nothing recorded */
	delivery_outcome bad[2] = {outs[0], {d[2].id, DELIVERY_PENDING, 0, NULL, 1, 0}};
	size_t changed = 99;
	assert_int_equal(store_delivery_finish_many(st, bad, 2, &changed, &err), TH_EINVAL);
	assert_int_equal(changed, 0);
	delivery g = {0};
	assert_int_equal(store_delivery_get(st, d[0].id, &g, &err), 0);
	assert_int_equal(g.status, DELIVERY_RUNNING);
	delivery_clear(&g);

	assert_int_equal(store_delivery_finish_many(st, outs, 4, &changed, &err), 0);
	assert_int_equal(changed, 3);
	const enum delivery_status want[3] = {DELIVERY_DONE, DELIVERY_FAILED, DELIVERY_DEAD};
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(store_delivery_get(st, d[i].id, &g, &err), 0);
		assert_int_equal(g.status, want[i]);
		assert_int_equal(g.claimed_until, 0);
		delivery_clear(&g);
	}
	assert_int_equal(store_delivery_get(st, d[1].id, &g, &err), 0);
	assert_string_equal(g.last_error, "exit status 1");
	assert_int_equal(g.next_attempt_at, later);
	delivery_clear(&g);
	assert_int_equal(store_delivery_finish_many(st, outs, 0, &changed, &err), 0);
	assert_int_equal(changed, 0);

	/* the hourly delivery rollup (migration 9) counted the three outcomes
	 * that found their delivery, by handler, outcome and run-time bucket;
	 * the refused batch and the unknown id added nothing */
	int64_t hour = time_now_ms() / 3600000;
	delivery_rollup_row *ru = NULL;
	size_t nru = 0;
	assert_int_equal(store_delivery_rollup(st, hour - 1, hour + 2, &ru, &nru, &err), 0);
	assert_int_equal(nru, 3);
	int64_t total = 0;
	for (size_t i = 0; i < nru; i++) {
		assert_true(ru[i].hour == hour || ru[i].hour == hour + 1); /* an hour may turn */
		assert_int_equal(ru[i].n, 1);
		total += ru[i].n;
		const char *want_id = ru[i].status == DELIVERY_DONE     ? d[0].handler_id
		                      : ru[i].status == DELIVERY_FAILED ? d[1].handler_id
		                                                        : d[2].handler_id;
		assert_string_equal(ru[i].handler_id, want_id);
		assert_int_equal(ru[i].bucket, ru[i].status == DELIVERY_DONE     ? 2 /* <= 5 ms */
		                               : ru[i].status == DELIVERY_FAILED ? 9 /* <= 1 s */
		                                                                 : -1);
	}
	assert_int_equal(total, 3);
	delivery_rollup_list_free(ru, nru);

	/* outcomes of one batch in the same cell count together: two more
	 * quick successes make the done cell 3 */
	event *e2[2] = {suite_ev_new("wD", "4", "commentCard", "s", NULL, 0),
	                suite_ev_new("wE", "5", "commentCard", "s", NULL, 0)};
	assert_int_equal(suite_events_put(st, e2, 2, r, &err), 0);
	delivery *d2 = NULL;
	size_t n2 = 0;
	assert_int_equal(store_delivery_claim(st, SUITE_ALL_KINDS, 10, 60000, &d2, &n2, &err), 0);
	assert_int_equal(n2, 2);
	delivery_outcome two[2] = {{d2[0].id, DELIVERY_DONE, 0, NULL, 2500, 0},
	                           {d2[1].id, DELIVERY_DONE, 0, NULL, 4000, 0}};
	assert_int_equal(store_delivery_finish_many(st, two, 2, &changed, &err), 0);
	assert_int_equal(changed, 2);
	assert_int_equal(store_delivery_rollup(st, hour - 1, hour + 2, &ru, &nru, &err), 0);
	int64_t done = 0;
	for (size_t i = 0; i < nru; i++)
		if (ru[i].status == DELIVERY_DONE && ru[i].bucket == 2)
			done += ru[i].n;
	assert_int_equal(done, 3);
	delivery_rollup_list_free(ru, nru);
	delivery_list_free(d2, n2);
	for (size_t i = 0; i < 2; i++)
		suite_ev_free(e2[i]);
	/* a range without outcomes is empty */
	assert_int_equal(store_delivery_rollup(st, hour - 10, hour - 5, &ru, &nru, &err), 0);
	assert_int_equal(nru, 0);
	delivery_rollup_list_free(ru, nru);
	assert_int_equal(store_run_bucket(-5), -1);
	assert_int_equal(store_run_bucket(0), 0);
	assert_int_equal(store_run_bucket(1000), 0);
	assert_int_equal(store_run_bucket(1001), 1);
	assert_int_equal(store_run_bucket(INT64_MAX), STORE_RUN_BUCKETS - 1);
	delivery_list_free(d, n);
	for (size_t i = 0; i < 3; i++)
		suite_ev_free(e[i]);
}

/* delivery_finish, delivery_retry and event_replay. */
void suite_finish_retry_replay(void **state)
{
	store_fx *f = suite_fx(state);
	store *st = f->st;
	th_error err = {0};
	suite_add_handler(st, "h1", HANDLER_EXEC, "commentCard", NULL, true);
	suite_add_handler(st, "h2", HANDLER_EXEC, "createCard", NULL, true);
	event *e[2] = {suite_ev_new("wA", "1", "commentCard", "s", NULL, 0),
	               suite_ev_new("wA", "2", "commentCard", "s", NULL, 0)};
	enum store_put r[2];
	assert_int_equal(suite_events_put(st, e, 2, r, &err), 0);
	delivery *d = NULL;
	size_t n = 0;
	assert_int_equal(store_delivery_claim(st, SUITE_ALL_KINDS, 10, 60000, &d, &n, &err), 0);
	assert_int_equal(n, 1);
	char *id1 = str_dup(d[0].id);
	delivery_list_free(d, n);

	/* failed with a later retry time: not due, and event 2 still waits */
	assert_int_equal(store_delivery_finish(st, id1, DELIVERY_FAILED, time_now_ms() + 60000,
	                                       "exit status 3", &err),
	                 0);
	assert_int_equal(store_delivery_claim(st, SUITE_ALL_KINDS, 10, 60000, &d, &n, &err), 0);
	assert_int_equal(n, 0);
	delivery g = {0};
	assert_int_equal(store_delivery_get(st, id1, &g, &err), 0);
	assert_int_equal(g.status, DELIVERY_FAILED);
	assert_string_equal(g.last_error, "exit status 3");
	assert_int_equal(g.claimed_until, 0);
	delivery_clear(&g);
	/* due again: claimed again with attempts 2 */
	assert_int_equal(
	    store_delivery_finish(st, id1, DELIVERY_FAILED, time_now_ms() - 1, "again", &err), 0);
	assert_int_equal(store_delivery_claim(st, SUITE_ALL_KINDS, 10, 60000, &d, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(d[0].id, id1);
	assert_int_equal(d[0].attempts, 2);
	delivery_list_free(d, n);
	/* running cannot be retried by hand */
	assert_int_equal(store_delivery_retry(st, id1, &err), TH_EINVAL);
	/* dead unblocks the next event */
	assert_int_equal(store_delivery_finish(st, id1, DELIVERY_DEAD, 0, "gave up", &err), 0);
	assert_int_equal(store_delivery_finish(st, id1, DELIVERY_RUNNING, 0, NULL, &err),
	                 TH_EINVAL);
	assert_int_equal(store_delivery_finish(st, "nope", DELIVERY_DONE, 0, NULL, &err),
	                 TH_ENOTFOUND);
	assert_int_equal(store_delivery_claim(st, SUITE_ALL_KINDS, 10, 60000, &d, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(d[0].event_id, e[1]->id);
	assert_int_equal(store_delivery_finish(st, d[0].id, DELIVERY_DONE, 0, NULL, &err), 0);
	delivery_list_free(d, n);

	int64_t counts[5], oldest = -1;
	assert_int_equal(store_delivery_stats(st, counts, &oldest, &err), 0);
	assert_int_equal(counts[DELIVERY_DEAD], 1);
	assert_int_equal(counts[DELIVERY_DONE], 1);
	assert_int_equal(counts[DELIVERY_PENDING], 0);
	assert_int_equal(oldest, 0);

	/* retry the dead one: pending, due now, attempts start over */
	assert_int_equal(store_delivery_retry(st, id1, &err), 0);
	assert_int_equal(store_delivery_get(st, id1, &g, &err), 0);
	assert_int_equal(g.status, DELIVERY_PENDING);
	assert_int_equal(g.attempts, 0);
	assert_true(g.next_attempt_at <= time_now_ms());
	delivery_clear(&g);
	assert_int_equal(store_delivery_retry(st, "nope", &err), TH_ENOTFOUND);
	assert_int_equal(store_delivery_stats(st, counts, &oldest, &err), 0);
	assert_int_equal(counts[DELIVERY_PENDING], 1);
	assert_true(oldest > 0);
	/* and a claim takes it again (the retried row is back in the claim's indexes) */
	assert_int_equal(store_delivery_claim(st, SUITE_ALL_KINDS, 10, 60000, &d, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(d[0].id, id1);
	assert_int_equal(d[0].attempts, 1);
	delivery_list_free(d, n);
	assert_int_equal(store_delivery_finish(st, id1, DELIVERY_DEAD, 0, "gave up again", &err),
	                 0);
	assert_int_equal(store_delivery_retry(st, id1, &err), 0);

	/* replay: a new generation per matching enabled handler (h1 only) */
	size_t made = 99;
	assert_int_equal(store_event_replay(st, e[1]->id, &made, &err), 0);
	assert_int_equal(made, 1);
	assert_int_equal(store_event_replay(st, e[1]->id, &made, &err), 0);
	assert_int_equal(made, 1);
	assert_int_equal(count_deliveries(st, e[1]->id, "h1"), 3);
	assert_int_equal(count_deliveries(st, e[1]->id, "h2"), 0);
	assert_int_equal(store_event_replay(st, "missing", &made, &err), TH_ENOTFOUND);
	assert_int_equal(made, 0);
	assert_int_equal(store_handler_set_enabled(st, "h1", false, &err), 0);
	assert_int_equal(store_event_replay(st, e[1]->id, &made, &err), 0);
	assert_int_equal(made, 0);
	free(id1);
	suite_ev_free(e[0]);
	suite_ev_free(e[1]);
}

/* Deleting a handler drops its unfinished deliveries, keeps done ones. */
void suite_handler_delete_drops_pending(void **state)
{
	store_fx *f = suite_fx(state);
	store *st = f->st;
	th_error err = {0};
	suite_add_handler(st, "h1", HANDLER_EXEC, NULL, NULL, true);
	suite_add_handler(st, "h2", HANDLER_EXEC, NULL, NULL, true);
	event *e[2] = {suite_ev_new("wA", "1", "t", "s", NULL, 0),
	               suite_ev_new("wB", "2", "t", "s", NULL, 0)};
	enum store_put r[2];
	assert_int_equal(suite_events_put(st, e, 2, r, &err), 0);
	delivery *d = NULL;
	size_t n = 0;
	assert_int_equal(store_delivery_list(st, NULL, e[0]->id, 0, &d, &n, &err), 0);
	for (size_t i = 0; i < n; i++)
		if (str_eq(d[i].handler_id, "h1"))
			assert_int_equal(
			    store_delivery_finish(st, d[i].id, DELIVERY_DONE, 0, NULL, &err), 0);
	delivery_list_free(d, n);
	assert_int_equal(store_handler_delete(st, "h1", &err), 0);
	assert_int_equal(count_deliveries(st, e[0]->id, "h1"), 1); /* done: kept */
	assert_int_equal(count_deliveries(st, e[1]->id, "h1"), 0); /* pending: gone */
	assert_int_equal(count_deliveries(st, e[0]->id, "h2"), 1);
	assert_int_equal(count_deliveries(st, e[1]->id, "h2"), 1);
	suite_ev_free(e[0]);
	suite_ev_free(e[1]);
}

/* ---- two handles on one file --------------------------------------------------------------- */

struct writer {
	const char *url;
	const char *webhook;
	int batches;
	int per_batch;
	int failures;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	store *st = NULL;
	th_error err = {0};
	if (store_open(&st, w->url, &err) != 0) {
		w->failures = -1;
		return NULL;
	}
	for (int b = 0; b < w->batches; b++) {
		event *evs[64];
		enum store_put r[64];
		for (int i = 0; i < w->per_batch; i++) {
			char aid[32];
			str_printf(aid, sizeof aid, "%d-%d", b, i);
			evs[i] = calloc(1, sizeof(event));
			evs[i]->webhook_id = str_dup(w->webhook);
			evs[i]->action_id = str_dup(aid);
			evs[i]->payload = str_dup("{}");
			evs[i]->payload_len = 2;
		}
		if (suite_events_put(st, evs, (size_t)w->per_batch, r, &err) != 0)
			w->failures++;
		for (int i = 0; i < w->per_batch; i++) {
			if (r[i] != STORE_PUT_NEW)
				w->failures++;
			event_clear(evs[i]);
			free(evs[i]);
		}
	}
	store_close(st);
	return NULL;
}

/* Two handles on one database, and concurrent writers. */
void suite_two_handles(void **state)
{
	store_fx *f = suite_fx(state);
	th_error err = {0};
	store *other = NULL;
	assert_int_equal(store_open(&other, f->url, &err), 0);
	suite_add_webhook(f->st, "w1", "m", "t");
	webhook w = {0};
	assert_int_equal(store_webhook_get(other, "w1", &w, &err), 0);
	webhook_clear(&w);
	suite_add_handler(other, "h1", HANDLER_EXEC, NULL, NULL, true);
	event *ev = suite_ev_new("w1", "a1", "t", "s", NULL, 0);
	assert_int_equal(suite_put1(f->st, ev), STORE_PUT_NEW);
	assert_int_equal(count_deliveries(other, ev->id, "h1"), 1);
	suite_ev_free(ev);
	store_close(other);

	/* concurrent writers on separate handles (busy_timeout makes them wait) and
	 * concurrent threads on the same handle (its mutex) */
	/* valgrind runs one thread at a time, 20-50 times slower: with the full
	 * load a waiter can be starved past busy_timeout (5 s) by the three others
	 * (seen in CI); a quarter of the batches still overlap every writer */
	const char *preload = getenv("LD_PRELOAD");
	int batches = preload && strstr(preload, "vgpreload") ? 10 : 40;
	struct writer ws[3] = {{f->url, "wX", batches, 25, 0},
	                       {f->url, "wY", batches, 25, 0},
	                       {f->url, "wZ", batches, 25, 0}};
	pthread_t th[3];
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&th[i], NULL, writer_main, &ws[i]), 0);
	int64_t claimed = 0;
	for (int k = 0; k < 50; k++) { /* claim meanwhile through the first handle */
		delivery *d = NULL;
		size_t n = 0;
		assert_int_equal(
		    store_delivery_claim(f->st, SUITE_ALL_KINDS, 20, 60000, &d, &n, &err), 0);
		for (size_t i = 0; i < n; i++)
			assert_int_equal(
			    store_delivery_finish(f->st, d[i].id, DELIVERY_DONE, 0, NULL, &err), 0);
		claimed += (int64_t)n;
		delivery_list_free(d, n);
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(ws[i].failures, 0);
	}
	int64_t counts[5];
	assert_int_equal(store_delivery_stats(f->st, counts, NULL, &err), 0);
	assert_int_equal(counts[DELIVERY_DONE] + counts[DELIVERY_PENDING], 1 + 3 * batches * 25);
	assert_int_equal(counts[DELIVERY_DONE], claimed);
}

/* Group commit throughput on a real file (informational, generous bound). */
void suite_batch_throughput(void **state)
{
	store_fx *f = suite_fx(state);
	store *st = f->st;
	th_error err = {0};
	suite_add_handler(st, "h1", HANDLER_EXEC, "commentCard", NULL, true);
	enum { BATCH = 500, BATCHES = 40 };
	static event evs_store[BATCH];
	event *evs[BATCH];
	enum store_put r[BATCH];
	int64_t t0 = time_mono_ms();
	for (int b = 0; b < BATCHES; b++) {
		for (int i = 0; i < BATCH; i++) {
			char aid[32];
			event *ev = &evs_store[i];
			memset(ev, 0, sizeof *ev);
			str_printf(aid, sizeof aid, "%d.%d", b, i);
			ev->webhook_id = str_dup("w1");
			ev->action_id = str_dup(aid);
			ev->action_type = str_dup(i % 2 ? "commentCard" : "updateCard");
			ev->summary = str_dup("someone did something on a board");
			ev->payload =
			    str_dup("{\"action\":{\"id\":\"x\",\"type\":\"commentCard\"}}");
			ev->payload_len = strlen(ev->payload);
			evs[i] = ev;
		}
		assert_int_equal(suite_events_put(st, evs, BATCH, r, &err), 0);
		for (int i = 0; i < BATCH; i++) {
			assert_int_equal(r[i], STORE_PUT_NEW);
			event_clear(evs[i]);
		}
	}
	int64_t ms = time_mono_ms() - t0;
	print_message("stored %d events in %lld ms (%.0f events/s)\n", BATCH * BATCHES,
	              (long long)ms, ms ? BATCH * BATCHES * 1000.0 / (double)ms : 0.0);
	assert_true(ms < 60000);
	int64_t counts[5];
	assert_int_equal(store_delivery_stats(st, counts, NULL, &err), 0);
	assert_int_equal(counts[DELIVERY_PENDING], BATCH * BATCHES / 2);
}

/* Tokens sealed with a random nonce never compare equal: the token's keyed
 * fingerprint (token_fp) is what the schema keeps unique, per model for
 * webhooks and alone for tokens. Rows from before fingerprints (NULL) never
 * collide, and filling them in refuses a second row with the same identity. */
void suite_token_identity(void **state)
{
	store_fx *f = suite_fx(state);
	store *st = f->st;
	th_error err = {0};
	const char *model = "6123456789abcdef01234567";
	const char *fp = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
	webhook a = {.id = (char *)"fpa",
	             .id_model = (char *)model,
	             .callback_url = (char *)"https://x/callbacks/fpa",
	             .token = (char *)"enc:v1:first-sealing",
	             .token_fp = (char *)fp};
	assert_int_equal(store_webhook_insert(st, &a, &err), 0);
	/* the same token sealed again (another nonce): refused by the database */
	webhook b = a;
	b.id = (char *)"fpb";
	b.callback_url = (char *)"https://x/callbacks/fpb";
	b.token = (char *)"enc:v1:second-sealing";
	assert_int_equal(store_webhook_insert(st, &b, &err), TH_EEXISTS);
	assert_non_null(strstr(err.msg, model));
	/* another model with that token is fine */
	b.id_model = (char *)"6123456789abcdef01234568";
	assert_int_equal(store_webhook_insert(st, &b, &err), 0);
	/* an update without a fingerprint keeps the stored one */
	webhook g = {0};
	assert_int_equal(store_webhook_get(st, "fpa", &g, &err), 0);
	assert_string_equal(g.token_fp, fp);
	free(g.token_fp);
	g.token_fp = NULL;
	assert_int_equal(store_webhook_update(st, &g, &err), 0);
	webhook_clear(&g);
	assert_int_equal(store_webhook_get(st, "fpa", &g, &err), 0);
	assert_string_equal(g.token_fp, fp);
	webhook_clear(&g);

	/* rows from before fingerprints: NULL, no collision, filled once */
	webhook old1 = {.id = (char *)"old1",
	                .id_model = (char *)model,
	                .callback_url = (char *)"https://x/callbacks/old1",
	                .token = (char *)"enc:v1:old-one"};
	webhook old2 = old1;
	old2.id = (char *)"old2";
	old2.callback_url = (char *)"https://x/callbacks/old2";
	old2.token = (char *)"enc:v1:old-two";
	assert_int_equal(store_webhook_insert(st, &old1, &err), 0);
	assert_int_equal(store_webhook_insert(st, &old2, &err), 0);
	const char *fp2 = "1111111111111111111111111111111111111111111111111111111111111111";
	assert_int_equal(store_webhook_fill_fp(st, "old1", fp2, &err), 0);
	assert_int_equal(store_webhook_fill_fp(st, "old2", fp2, &err), TH_EEXISTS);
	assert_int_equal(store_webhook_fill_fp(st, "old1", fp, &err), 0); /* already has one */
	assert_int_equal(store_webhook_get(st, "old1", &g, &err), 0);
	assert_string_equal(g.token_fp, fp2);
	webhook_clear(&g);
	assert_int_equal(store_webhook_get(st, "old2", &g, &err), 0);
	assert_null(g.token_fp);
	webhook_clear(&g);

	/* tokens: one row per fingerprint */
	token t1 = {.token = (char *)"enc:v1:tok-one", .token_fp = (char *)fp};
	token t2 = {.token = (char *)"enc:v1:tok-two", .token_fp = (char *)fp};
	assert_int_equal(store_token_put(st, &t1, &err), 0);
	assert_int_not_equal(store_token_put(st, &t2, &err), 0);
	token tl = {.token = (char *)"enc:v1:legacy"};
	assert_int_equal(store_token_put(st, &tl, &err), 0);
	assert_int_equal(store_token_fill_fp(st, "enc:v1:legacy", fp, &err), TH_EEXISTS);
	assert_int_equal(store_token_fill_fp(st, "enc:v1:legacy", fp2, &err), 0);
	token tg = {0};
	assert_int_equal(store_token_get(st, "enc:v1:legacy", &tg, &err), 0);
	assert_string_equal(tg.token_fp, fp2);
	token_clear(&tg);
	assert_int_equal(store_token_get(st, "enc:v1:tok-one", &tg, &err), 0);
	assert_string_equal(tg.token_fp, fp);
	token_clear(&tg);
}

/* A process that claimed deliveries and died (a child that _exits without
 * finishing or closing: kill -9 as far as the store can tell) leaves them
 * running under a lease; delivery_recover at start-up makes them failed and
 * due at once, while the claims of a live process (this one) stay. */
/* The claiming child of suite_recover_dead_claims, when this binary was
 * started as one (its environment names the store, the event, the pipe and
 * the parent): claim one delivery, write a verdict byte ('0': claimed the
 * expected one), then die by SIGKILL. Returns when not started as one. */
void suite_child_main(void)
{
	const char *fdv = getenv(CLAIM_CHILD_FD), *ppid = getenv(CLAIM_CHILD_PARENT);
	const char *url = getenv(CLAIM_CHILD_URL), *evid = getenv(CLAIM_CHILD_EVENT);
	if (!fdv && !ppid && !url && !evid)
		return; /* a normal run */
	if (!fdv || !ppid || !url || !evid)
		_exit(3); /* a child started wrong: never run the suite in it */
	int64_t fd = -1, parent = -1;
	if (num_parse_i64(fdv, 0, 1 << 20, &fd) || num_parse_i64(ppid, 1, INT32_MAX, &parent))
		_exit(4);
	child_dies_with_parent((pid_t)parent);
	store *other = NULL;
	th_error cerr = {0};
	char verdict = '2';
	delivery *cd = NULL;
	size_t cn = 0;
	if (store_open(&other, url, &cerr) == 0)
		verdict =
		    store_delivery_claim(other, SUITE_ALL_KINDS, 10, 60000, &cd, &cn, &cerr) != 0
		        ? '3'
		    : cn == 1 && str_eq(cd[0].event_id, evid) ? '0'
		                                              : '4';
	if (write((int)fd, &verdict, 1) != 1)
		_exit(5);
	raise(SIGKILL);
	_exit(6);
}

void suite_recover_dead_claims(void **state)
{
	store_fx *f = suite_fx(state);
	store *st = f->st;
	th_error err = {0};
	suite_add_handler(st, "h1", HANDLER_EXEC, NULL, NULL, true);
	event *e[2] = {suite_ev_new("wLive", "1", "t", "s", NULL, 0),
	               suite_ev_new("wDead", "1", "t", "s", NULL, 0)};
	enum store_put r[2];
	assert_int_equal(suite_events_put(st, e, 1, r, &err), 0);
	delivery *d = NULL;
	size_t n = 0;
	/* ours, alive: claimed with a long lease */
	assert_int_equal(store_delivery_claim(st, SUITE_ALL_KINDS, 10, 60000, &d, &n, &err), 0);
	assert_int_equal(n, 1);
	char *live = str_dup(d[0].id);
	delivery_list_free(d, n);
	assert_int_equal(suite_events_put(st, e + 1, 1, r + 1, &err), 0);

	/* a process that claims and then dies as kill -9 kills it: no finish, no
	 * close, no exit handlers (nor a leak report under valgrind); it says how
	 * its claim went through a pipe first. It is this binary started afresh
	 * (suite_child_main): a plain fork of this process, whose store has
	 * threads, could hang on a lock one of them held at the fork (seen under
	 * ASan: the child never wrote, the test timed out). */
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	char fdv[64], ppid[64], url[700], evid[128];
	assert_true(str_printf(fdv, sizeof fdv, "%s=%d", CLAIM_CHILD_FD, pfd[1]));
	assert_true(str_printf(ppid, sizeof ppid, "%s=%d", CLAIM_CHILD_PARENT, (int)getpid()));
	assert_true(str_printf(url, sizeof url, "%s=%s", CLAIM_CHILD_URL, f->url));
	assert_true(str_printf(evid, sizeof evid, "%s=%s", CLAIM_CHILD_EVENT, e[1]->id));
	char *child_env[] = {fdv, ppid, url, evid, NULL};
	char *child_argv[] = {(char *)"store-suite-claim-child", NULL};
	/* this binary's path (under valgrind, /proc/self/exe itself would be
	 * valgrind's tool; its readlink is answered with ours) */
	char self[4096];
	ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
	assert_true(sl > 0);
	self[sl] = '\0';
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		execve(self, child_argv, child_env); /* async-signal-safe */
		_exit(127);
	}
	close(pfd[1]);
	char verdict = 0;
	struct pollfd pf = {pfd[0], POLLIN, 0};
	assert_int_equal(poll(&pf, 1, 120000), 1); /* not forever: say it hung */
	assert_int_equal(read(pfd[0], &verdict, 1), 1);
	close(pfd[0]);
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	assert_int_equal(verdict, '0');

	/* both leases hold: nothing to claim */
	assert_int_equal(store_delivery_claim(st, SUITE_ALL_KINDS, 10, 60000, &d, &n, &err), 0);
	assert_int_equal(n, 0);
	size_t rec = 99;
	assert_int_equal(store_delivery_recover(st, &rec, &err), 0);
	assert_int_equal(rec, 1);
	assert_int_equal(store_delivery_recover(st, &rec, &err), 0);
	assert_int_equal(rec, 0); /* once only */
	/* the dead one's delivery is due now; ours is still running */
	assert_int_equal(store_delivery_claim(st, SUITE_ALL_KINDS, 10, 60000, &d, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(d[0].event_id, e[1]->id);
	assert_int_equal(d[0].attempts, 2); /* the attempt that died counts */
	assert_non_null(strstr(d[0].last_error, "recovered"));
	delivery_list_free(d, n);
	delivery g = {0};
	assert_int_equal(store_delivery_get(st, live, &g, &err), 0);
	assert_int_equal(g.status, DELIVERY_RUNNING);
	assert_int_equal(g.attempts, 1);
	delivery_clear(&g);
	free(live);
	suite_ev_free(e[0]);
	suite_ev_free(e[1]);
}

/* A service context over the fixture's store with fresh metrics (the health
 * state lives there). */
static svc_ctx health_ctx(store *st, metrics *m)
{
	metrics_init(m);
	return (svc_ctx){.st = st, .m = m};
}

/* /healthz's answer: the write probe leaves nothing behind; a failed commit
 * makes the store unhealthy with its reason until a later commit succeeds;
 * when idle, the probe (at most one per SVC_PROBE_IDLE_MS) decides. */
void suite_store_health(void **state)
{
	store_fx *f = suite_fx(state);
	th_error err = {0};
	metrics m;
	svc_ctx sc = health_ctx(f->st, &m);
	int v0 = 0, v1 = 0;
	assert_int_equal(store_migrate(f->st, &v0, &err), 0);
	assert_int_equal(store_probe_write(f->st, &err), 0);
	assert_int_equal(store_probe_write(f->st, &err), 0); /* nothing left to collide with */
	assert_int_equal(store_migrate(f->st, &v1, &err), 0);
	assert_int_equal(v0, v1);
	int64_t t = 1000000;
	/* nothing seen yet: the probe runs and succeeds */
	assert_int_equal(svc_store_health(&sc, t, &err), 0);
	assert_int_equal(atomic_load(&m.probe_last_ms), t);
	/* a group commit fails (as with SQLITE_FULL) */
	th_error full = {0};
	th_err(&full, TH_ESTORE, "storing events: database or disk is full");
	svc_note_commit_at(&sc, TH_ESTORE, &full, t + 10);
	assert_int_equal(svc_store_health(&sc, t + 20, &err), TH_EUNAVAIL);
	assert_non_null(strstr(err.msg, "store cannot commit"));
	assert_non_null(strstr(err.msg, "database or disk is full"));
	/* not idle yet: no probe, the failure stands */
	assert_int_equal(svc_store_health(&sc, t + SVC_PROBE_IDLE_MS, &err), TH_EUNAVAIL);
	assert_int_equal(atomic_load(&m.probe_last_ms), t);
	/* a later commit succeeds: healthy at once */
	svc_note_commit_at(&sc, 0, NULL, t + 30);
	assert_int_equal(svc_store_health(&sc, t + 40, &err), 0);
	/* failed again, then idle: the probe (a real write) clears it */
	svc_note_commit_at(&sc, TH_ESTORE, &full, t + 50);
	assert_int_equal(svc_store_health(&sc, t + 60, &err), TH_EUNAVAIL);
	assert_int_equal(svc_store_health(&sc, t + 50 + SVC_PROBE_IDLE_MS, &err), 0);
	assert_int_equal(atomic_load(&m.probe_last_ms), t + 50 + SVC_PROBE_IDLE_MS);
}

static size_t count_events(store *st)
{
	event_row *rows = NULL;
	size_t n = 0;
	th_error err = {0};
	event_query q = {.limit = 1000};
	assert_int_equal(store_event_list(st, &q, &rows, &n, &err), 0);
	event_row_list_free(rows, n);
	return n;
}

static size_t count_by_status(store *st, const char *status)
{
	delivery *d = NULL;
	size_t n = 0;
	th_error err = {0};
	assert_int_equal(store_delivery_list(st, status, NULL, 1000, &d, &n, &err), 0);
	delivery_list_free(d, n);
	return n;
}

/* Events of a webhook that has no row, or whose row is being removed, are
 * not stored (GONE) — also when another handle (another process) made it so
 * after this one last looked — while the rest of the batch is; no delivery,
 * rollup or last_event_at comes of the refused ones. */
void suite_events_refused_for_gone_webhooks(void **state)
{
	store_fx *f = suite_fx(state);
	store *st = f->st;
	th_error err = {0};
	store *other = NULL;
	assert_int_equal(store_open(&other, f->url, &err), 0);
	suite_add_webhook(st, "wG-live", "6123456789abcdef0000e001", "tokG");
	suite_add_webhook(st, "wG-rm", "6123456789abcdef0000e002", "tokG");
	suite_add_webhook(st, "wG-del", "6123456789abcdef0000e003", "tokG");
	suite_add_handler(st, "hG", HANDLER_EXEC, NULL, NULL, true);
	/* the first batch goes in whole: all three webhooks take events */
	event *e0[3] = {suite_ev_new("wG-live", "g0", "t", "s", NULL, 0),
	                suite_ev_new("wG-rm", "g0", "t", "s", NULL, 0),
	                suite_ev_new("wG-del", "g0", "t", "s", NULL, 0)};
	enum store_put r[5];
	assert_int_equal(store_events_put(st, e0, 3, r, &err), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(r[i], STORE_PUT_NEW);
	/* through the other handle: one marked removing, one deleted */
	webhook w = {0};
	assert_int_equal(store_webhook_get(other, "wG-rm", &w, &err), 0);
	w.state = WEBHOOK_REMOVING;
	w.active = false;
	assert_int_equal(store_webhook_update(other, &w, &err), 0);
	webhook_clear(&w);
	assert_int_equal(store_webhook_delete(other, "wG-del", &err), 0);
	assert_int_equal(store_webhook_get(st, "wG-live", &w, &err), 0);
	int64_t live_last = w.last_event_at;
	webhook_clear(&w);
	size_t events0 = count_events(st), deliveries0 = count_by_status(st, NULL);

	event *e[5] = {suite_ev_new("wG-rm", "g1", "t", "s", NULL, 0),
	               suite_ev_new("wG-live", "g1", "t", "s", NULL, 0),
	               suite_ev_new("wG-del", "g1", "t", "s", NULL, 0),
	               suite_ev_new("wG-never", "g1", "t", "s", NULL, 0),
	               suite_ev_new("wG-live", "g0", "t", "s", NULL, 0)};
	e[1]->received_at = live_last + 1000;
	assert_int_equal(store_events_put(st, e, 5, r, &err), 0);
	assert_int_equal(r[0], STORE_PUT_GONE);
	assert_int_equal(r[1], STORE_PUT_NEW);
	assert_int_equal(r[2], STORE_PUT_GONE);
	assert_int_equal(r[3], STORE_PUT_GONE);
	assert_int_equal(r[4], STORE_PUT_DUPLICATE);
	assert_null(e[0]->id);
	assert_non_null(e[1]->id);
	assert_int_equal(count_events(st), events0 + 1);
	assert_int_equal(count_by_status(st, NULL), deliveries0 + 1);
	assert_int_equal(count_deliveries(st, e[1]->id, "hG"), 1);
	assert_int_equal(store_webhook_get(st, "wG-live", &w, &err), 0);
	assert_int_equal(w.last_event_at, live_last + 1000);
	webhook_clear(&w);
	/* the refused webhooks got no rollup count for "t" beyond the first batch */
	event_rollup_row *rows = NULL;
	size_t nrows = 0;
	int64_t hour = e[1]->received_at / 3600000;
	assert_int_equal(store_event_rollup(st, 0, hour + 24 * 400, 1, true, &rows, &nrows, &err),
	                 0);
	int64_t gone_n = 0;
	for (size_t i = 0; i < nrows; i++)
		if (!str_eq(rows[i].webhook_id, "wG-live"))
			gone_n += rows[i].n;
	assert_int_equal(gone_n, 2); /* the g0 events of wG-rm and wG-del only */
	event_rollup_list_free(rows, nrows);
	for (int i = 0; i < 5; i++)
		suite_ev_free(e[i]);
	for (int i = 0; i < 3; i++)
		suite_ev_free(e0[i]);
	store_close(other);
}

#ifdef TH_FAULT_INJECTION
/* ---- fault injection (meson -Dfault_injection=true: make fault) ----------------------- */

/* The kinds of operation this backend counts (store_fault.h). */
static size_t fault_kinds(store *st, enum store_fault *out)
{
	if (str_eq(store_name(st), "sqlite")) {
		out[0] = STORE_FAULT_PREPARE;
		out[1] = STORE_FAULT_STEP;
		out[2] = STORE_FAULT_COMMIT;
		return 3;
	}
	out[0] = STORE_FAULT_QUERY;
	return 1;
}

/* Ingest under a fault at every point in turn: events_put answers failure,
 * stores nothing (no event, no delivery, no half batch) and gives the
 * events back as they came; once the fault clears the same batch is stored. */
void suite_fault_events_put(void **state)
{
	store_fx *f = suite_fx(state);
	store *st = f->st;
	th_error err = {0};
	suite_add_webhook(st, "wF1", "6123456789abcdef0000f001", "tokF1");
	suite_add_webhook(st, "wF2", "6123456789abcdef0000f002", "tokF1");
	suite_add_handler(st, "hF", HANDLER_EXEC, NULL, NULL, true);
	enum store_fault kinds[3];
	size_t nk = fault_kinds(st, kinds), faults = 0;
	int round = 0;
	int64_t stored_f1 = 0; /* events of wF1 stored so far */
	for (size_t k = 0; k < nk; k++) {
		for (long nth = 1;; nth++) {
			char a1[32], a2[32], a3[32];
			round++;
			str_printf(a1, sizeof a1, "f%d-1", round);
			str_printf(a2, sizeof a2, "f%d-2", round);
			str_printf(a3, sizeof a3, "f%d-3", round);
			event *e[3] = {suite_ev_new("wF1", a1, "t", "s", NULL, 0),
			               suite_ev_new("wF1", a2, "t", "s", NULL, 0),
			               suite_ev_new("wF2", a3, "t", "s", NULL, 0)};
			enum store_put r[3];
			size_t events0 = count_events(st), deliveries0 = count_by_status(st, NULL);
			store_fault_arm(kinds[k], nth, -1);
			int rc = store_events_put(st, e, 3, r, &err);
			bool hit = store_fault_seen(kinds[k]) >= nth;
			store_fault_clear();
			if (hit) {
				faults++;
				assert_int_not_equal(rc, 0);
				for (int i = 0; i < 3; i++) {
					assert_int_equal(r[i], STORE_PUT_FAILED);
					assert_null(e[i]->id); /* given back as it came */
				}
				assert_int_equal(count_events(st), events0);
				assert_int_equal(count_by_status(st, NULL), deliveries0);
				/* the fault cleared: the same batch goes in whole */
				rc = store_events_put(st, e, 3, r, &err);
			}
			assert_int_equal(rc, 0);
			for (int i = 0; i < 3; i++)
				assert_int_equal(r[i], STORE_PUT_NEW);
			assert_int_equal(count_events(st), events0 + 3);
			assert_int_equal(count_by_status(st, NULL), deliveries0 + 3);
			stored_f1 += 2;
			/* a failed batch added nothing to the event counter either */
			webhook w = {0};
			assert_int_equal(store_webhook_get(st, "wF1", &w, &err), 0);
			assert_int_equal(w.event_count, stored_f1);
			webhook_clear(&w);
			for (int i = 0; i < 3; i++)
				suite_ev_free(e[i]);
			if (!hit)
				break; /* past the last operation of a batch */
		}
	}
	assert_true(faults >= nk); /* every kind failed somewhere */
}

/* /healthz under a failing commit (the store's own COMMIT for SQLite, every
 * query for PostgreSQL): the idle probe fails, the reason is told, and the
 * next probe once the fault clears makes the store healthy again. */
void suite_fault_health(void **state)
{
	store_fx *f = suite_fx(state);
	th_error err = {0};
	metrics m;
	svc_ctx sc = health_ctx(f->st, &m);
	bool sqlite = str_eq(store_name(f->st), "sqlite");
	int64_t t = 1000000;
	/* PostgreSQL: the ping is a query too; fail from the probe's BEGIN on */
	store_fault_arm(sqlite ? STORE_FAULT_COMMIT : STORE_FAULT_QUERY, sqlite ? 1 : 2, -1);
	int rc = svc_store_health(&sc, t, &err);
	store_fault_clear();
	assert_int_equal(rc, TH_EUNAVAIL);
	assert_non_null(strstr(err.msg, "store cannot commit: write probe"));
	/* within the probe interval the failure stands, with no new probe */
	assert_int_equal(svc_store_health(&sc, t + 1, &err), TH_EUNAVAIL);
	/* the fault cleared; the next idle probe succeeds */
	assert_int_equal(svc_store_health(&sc, t + SVC_PROBE_IDLE_MS, &err), 0);
	/* a failed group commit (a real one, under the fault) flips it again */
	suite_add_webhook(f->st, "wH1", "6123456789abcdef0000f0a1", "tokH1");
	event *e[1] = {suite_ev_new("wH1", "h1", "t", "s", NULL, 0)};
	enum store_put r[1];
	store_fault_arm(sqlite ? STORE_FAULT_COMMIT : STORE_FAULT_QUERY, 1, -1);
	rc = svc_events_store(&sc, e, 1, r, &err);
	store_fault_clear();
	assert_int_not_equal(rc, 0);
	svc_note_commit_at(&sc, rc, &err, t + SVC_PROBE_IDLE_MS + 10);
	assert_int_equal(svc_store_health(&sc, t + SVC_PROBE_IDLE_MS + 20, &err), TH_EUNAVAIL);
	rc = svc_events_store(&sc, e, 1, r, &err);
	assert_int_equal(rc, 0);
	svc_note_commit_at(&sc, rc, &err, t + SVC_PROBE_IDLE_MS + 30);
	assert_int_equal(svc_store_health(&sc, t + SVC_PROBE_IDLE_MS + 40, &err), 0);
	suite_ev_free(e[0]);
}

/* Dispatch under a fault at every point in turn: a failed claim leaves
 * nothing running, and a failed finish marks nothing done (all or nothing);
 * once the fault clears the same claim and finish go through. */
void suite_fault_dispatch(void **state)
{
	store_fx *f = suite_fx(state);
	store *st = f->st;
	th_error err = {0};
	suite_add_handler(st, "hD", HANDLER_EXEC, NULL, NULL, true);
	event *e[3] = {suite_ev_new("wD1", "1", "t", "s", NULL, 0),
	               suite_ev_new("wD2", "1", "t", "s", NULL, 0),
	               suite_ev_new("wD3", "1", "t", "s", NULL, 0)};
	enum store_put r[3];
	assert_int_equal(suite_events_put(st, e, 3, r, &err), 0);
	enum store_fault kinds[3];
	size_t nk = fault_kinds(st, kinds), faults = 0;
	for (size_t k = 0; k < nk; k++) {
		for (long nth = 1;; nth++) {
			delivery *d = NULL;
			size_t n = 0;
			/* claim */
			store_fault_arm(kinds[k], nth, -1);
			int rc = store_delivery_claim(st, SUITE_ALL_KINDS, 10, 60000, &d, &n, &err);
			bool hit = store_fault_seen(kinds[k]) >= nth;
			store_fault_clear();
			if (hit) {
				faults++;
				assert_int_not_equal(rc, 0);
				assert_null(d);
				assert_int_equal(count_by_status(st, "running"), 0);
				rc = store_delivery_claim(st, SUITE_ALL_KINDS, 10, 60000, &d, &n,
				                          &err);
			}
			assert_int_equal(rc, 0);
			assert_int_equal(n, 3);
			/* finish all three as done */
			delivery_outcome o[3];
			for (int i = 0; i < 3; i++)
				o[i] = (delivery_outcome){d[i].id, DELIVERY_DONE, 0, NULL, 1000, 0};
			store_fault_arm(kinds[k], nth, -1);
			size_t changed = 0;
			rc = store_delivery_finish_many(st, o, 3, &changed, &err);
			bool fhit = store_fault_seen(kinds[k]) >= nth;
			store_fault_clear();
			if (fhit) {
				faults++;
				assert_int_not_equal(rc, 0);
				assert_int_equal(count_by_status(st, "done"),
				                 0); /* nothing ran: not done */
				assert_int_equal(count_by_status(st, "running"), 3);
				rc = store_delivery_finish_many(st, o, 3, &changed, &err);
			}
			assert_int_equal(rc, 0);
			assert_int_equal(changed, 3);
			assert_int_equal(count_by_status(st, "done"), 3);
			/* again from the start: the same three pending */
			for (int i = 0; i < 3; i++)
				assert_int_equal(store_delivery_retry(st, d[i].id, &err), 0);
			delivery_list_free(d, n);
			if (!hit && !fhit)
				break;
		}
	}
	assert_true(faults >= nk);
	for (int i = 0; i < 3; i++)
		suite_ev_free(e[i]);
}
#endif
