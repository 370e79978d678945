/* SPDX-License-Identifier: MIT */
/* backfill: one pass of service/backfill.c against the real trello-mock
 * (started per test on port 0) and a real SQLite store in a temp dir: the
 * listing's paging with `before`, oldest-first storing through the delivery
 * path, the mark, the horizon, resuming after a pass that stopped between
 * chunks, a mark behind what is stored (a kill between commit and mark), and
 * hostile listings and Trello errors ending the pass with nothing stored twice. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "service/backfill.h"
#include "service/service.h"
#include "service/webhook_cache.h"
#include "util/util.h"

#define KEY "5f1d3c0b9a8e7d6c5b4a39281706f5e4" /* the mock's demo key */
#define TOK                                                                \
	"ATTA"                                                             \
	"a1b2c3d4a1b2c3d4a1b2c3d4a1b2c3d4a1b2c3d4a1b2c3d4a1b2c3d4a1b2c3d4" \
	"ABCDEF12"

/* ---- trello-mock --------------------------------------------------------------------- */

struct env {
	pid_t pid;
	char base[128], root[128];
	char dir[64], url[128];
	th_config cfg;
	store *st;
	webhook_cache *cache;
	metrics *m;
	svc_ctx sc;
	trello_client *tc;
	char board[32], card[32];
	int progress_stop_after; /* cancel once this many were stored (0: never) */
	atomic_bool cancel;
};

static bool mock_start(struct env *v)
{
	const char *dir = getenv("TH_BUILD");
	char bin[512];
	snprintf(bin, sizeof bin, "%s/trello-mock", dir ? dir : "build");
	const char *argv[] = {
	    bin,   "--listen",         "127.0.0.1:0", "--token", TOK, "--retry-delays",
	    "600", "--rate-window-ms", "200",         NULL};
	int fds[2];
	if (pipe(fds))
		return false;
	pid_t pid = fork();
	if (pid < 0)
		return false;
	if (pid == 0) {
		/* the mock goes with this test even when a sanitizer aborts it */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execv(bin, (char *const *)(void *)argv);
		_exit(127);
	}
	close(fds[1]);
	v->pid = pid;
	char line[256];
	size_t len = 0;
	int64_t deadline = time_mono_ms() + 10000;
	while (len < sizeof line - 1 && time_mono_ms() < deadline) {
		struct pollfd pf = {.fd = fds[0], .events = POLLIN};
		if (poll(&pf, 1, 200) <= 0)
			continue;
		if (read(fds[0], line + len, 1) <= 0 || line[len] == '\n')
			break;
		len++;
	}
	line[len] = '\0';
	close(fds[0]);
	if (!str_starts(line, "http://") || !str_ends(line, "/1"))
		return false;
	str_copy(v->base, sizeof v->base, line);
	str_copy(v->root, sizeof v->root, line);
	v->root[strlen(v->root) - 2] = '\0';
	return true;
}

static size_t collect(char *d, size_t sz, size_t nm, void *ud)
{
	return buf_append(ud, d, sz * nm) == 0 ? sz * nm : 0;
}

/* The mock's control API (plain libcurl, no client of ours). */
static json_t *mock_call(struct env *v, const char *path, const char *body)
{
	CURL *e = curl_easy_init();
	buf b;
	buf_init(&b, 1 << 20);
	char url[512];
	snprintf(url, sizeof url, "%s%s", v->root, path);
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, body ? body : "");
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, 10L);
	CURLcode cc = curl_easy_perform(e);
	long status = 0;
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	curl_easy_cleanup(e);
	if (cc != CURLE_OK || status != 200)
		fail_msg("mock POST %s: curl %d, HTTP %ld: %s", path, cc, status,
		         b.data ? b.data : "");
	json_t *j = json_loadb(b.data ? b.data : "", b.len, 0, NULL);
	buf_free(&b);
	assert_non_null(j);
	return j;
}

/* @n comments on the card; their ids into @ids (oldest first). */
static void comment(struct env *v, int n, char ids[][32])
{
	for (int i = 0; i < n; i++) {
		char body[256];
		snprintf(body, sizeof body,
		         "{\"type\":\"commentCard\",\"idModel\":\"%s\",\"text\":\"missed %d\"}",
		         v->card, i);
		json_t *r = mock_call(v, "/_mock/actions", body);
		str_copy(ids[i], 32,
		         json_string_value(json_object_get(json_object_get(r, "action"), "id")));
		json_decref(r);
	}
}

static void fault(struct env *v, const char *body)
{
	json_decref(mock_call(v, "/_mock/faults/actions", body));
}

#define WEBHOOK_ID "bfwebhook0000000000000001"

static int setup(void **state)
{
	struct env *v = calloc(1, sizeof *v);
	assert_non_null(v);
	if (!mock_start(v))
		fail_msg("trello-mock in TH_BUILD (%s) did not start or print its URL",
		         getenv("TH_BUILD") ? getenv("TH_BUILD") : "unset");
	str_copy(v->dir, sizeof v->dir, "/tmp/th-backfill-XXXXXX");
	assert_non_null(mkdtemp(v->dir));
	snprintf(v->url, sizeof v->url, "sqlite:%s/th.db", v->dir);
	th_error err = {0, {0}};
	assert_int_equal(config_load_env(&v->cfg, NULL, &err), 0);
	str_copy(v->cfg.api_key, sizeof v->cfg.api_key, KEY);
	str_copy(v->cfg.api_url, sizeof v->cfg.api_url, v->base);
	v->cfg.has_secret_key = false;
	if (store_open(&v->st, v->url, &err))
		fail_msg("%s", err.msg);
	assert_int_equal(webhook_cache_new(&v->cache, 1000), 0);
	v->m = calloc(1, sizeof *v->m);
	assert_non_null(v->m);
	metrics_init(v->m);
	v->sc = (svc_ctx){.cfg = &v->cfg, .st = v->st, .cache = v->cache, .m = v->m};
	assert_int_equal(svc_trello_client(&v->sc, &v->tc, &err), 0);
	json_t *b = mock_call(v, "/_mock/boards", "{\"name\":\"Roadmap 2027\"}");
	str_copy(v->board, sizeof v->board, json_string_value(json_object_get(b, "id")));
	str_copy(v->card, sizeof v->card,
	         json_string_value(
	             json_object_get(json_array_get(json_object_get(b, "cards"), 0), "id")));
	json_decref(b);
	/* a webhook row as `webhook add` leaves it, created a minute ago */
	webhook w = {0};
	w.id = WEBHOOK_ID;
	w.trello_id = "6a0000000000000000000001";
	w.id_model = v->board;
	w.model_type = "board";
	w.model_name = "Roadmap 2027";
	w.callback_url = "http://127.0.0.1:1/callbacks/" WEBHOOK_ID;
	w.token = TOK;
	w.state = WEBHOOK_ACTIVE;
	w.active = true;
	w.created_at = time_now_ms() - 60000;
	if (svc_webhook_insert(&v->sc, &w, &err))
		fail_msg("%s", err.msg);
	*state = v;
	return 0;
}

static int teardown(void **state)
{
	struct env *v = *state;
	trello_client_free(v->tc);
	store_close(v->st);
	webhook_cache_free(v->cache);
	free(v->m);
	kill(v->pid, SIGTERM);
	waitpid(v->pid, NULL, 0);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", v->dir);
	if (system(cmd) != 0)
		print_message("could not remove %s\n", v->dir);
	free(v);
	return 0;
}

#define ENV(v) struct env *v = *state

/* The webhook's events, oldest first. */
static size_t stored(struct env *v, event_row **rows)
{
	event_query q = {.webhook_id = WEBHOOK_ID, .limit = 1000, .oldest_first = true};
	size_t n = 0;
	th_error err = {0, {0}};
	if (store_event_list(v->st, &q, rows, &n, &err))
		fail_msg("%s", err.msg);
	return n;
}

static void assert_stored(struct env *v, char ids[][32], size_t n)
{
	event_row *rows = NULL;
	size_t got = stored(v, &rows);
	assert_int_equal(got, n);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(rows[i].ev.action_id, ids[i]); /* in the order of the actions */
		assert_int_equal(rows[i].ev.source, EVENT_FROM_BACKFILL);
		assert_non_null(strstr(rows[i].ev.summary, "commented"));
	}
	event_row_list_free(rows, got);
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_payload_bytes(void **state)
{
	(void)state;
	char *p = NULL;
	size_t len = 0;
	th_error err = {0, {0}};
	assert_int_equal(backfill_payload("{\"id\":\"a\"}", "{\"id\":\"m\"}", &p, &len, &err), 0);
	assert_string_equal(p, "{\"action\":{\"id\":\"a\"},\"model\":{\"id\":\"m\"}}");
	assert_int_equal(len, strlen(p));
	free(p);
}

static void test_pass_stores_oldest_first_once(void **state)
{
	ENV(v);
	char ids[7][32];
	comment(v, 7, ids);
	backfill_result r;
	th_error err = {0, {0}};
	assert_int_equal(svc_backfill_webhook(&v->sc, v->tc, WEBHOOK_ID, NULL, &r, &err), 0);
	assert_int_equal(r.listed, 7);
	assert_int_equal(r.recovered, 7);
	assert_int_equal(r.duplicates, 0);
	assert_true(r.gap_from <= r.gap_to && r.gap_from > 0);
	assert_stored(v, ids, 7);
	assert_int_equal(atomic_load(&v->m->events_backfilled), 7);
	/* the payload is the delivery's shape, the model as Trello returns it */
	event_row *rows = NULL;
	size_t n = stored(v, &rows);
	event ev = {0};
	assert_int_equal(store_event_get(v->st, rows[0].ev.id, &ev, &err), 0);
	json_t *p = json_loads(ev.payload, 0, NULL);
	assert_non_null(p);
	assert_int_equal(json_object_size(p), 2);
	assert_string_equal(json_string_value(json_object_get(json_object_get(p, "model"), "id")),
	                    v->board);
	assert_string_equal(json_string_value(json_object_get(json_object_get(p, "action"), "id")),
	                    ids[0]);
	json_decref(p);
	event_clear(&ev);
	event_row_list_free(rows, n);
	/* the mark: the newest action, the gap, no error */
	backfill_mark m = {0};
	assert_int_equal(svc_backfill_mark(&v->sc, WEBHOOK_ID, &m, &err), 0);
	assert_string_equal(m.last_action_id, ids[6]);
	assert_int_equal(m.recovered, 7);
	assert_null(m.error);
	assert_string_equal(m.model_kind, "board");
	backfill_mark_clear(&m);
	/* the next pass lists from the mark: nothing, and keeps the gap it told of */
	assert_int_equal(svc_backfill_webhook(&v->sc, v->tc, WEBHOOK_ID, NULL, &r, &err), 0);
	assert_int_equal(r.listed, 0);
	assert_string_equal(r.since, ids[6]);
	assert_int_equal(svc_backfill_mark(&v->sc, WEBHOOK_ID, &m, &err), 0);
	assert_int_equal(m.recovered, 7);
	backfill_mark_clear(&m);
}

/* Pages of 2 (going back with `before`), and at most 3 held: rounds. */
static void test_paging_and_rounds(void **state)
{
	ENV(v);
	char ids[9][32];
	comment(v, 9, ids);
	backfill_opts o = BACKFILL_OPTS_INIT;
	o.page_size = 2;
	o.max_held = 3;
	backfill_result r;
	th_error err = {0, {0}};
	assert_int_equal(svc_backfill_webhook(&v->sc, v->tc, WEBHOOK_ID, &o, &r, &err), 0);
	assert_int_equal(r.recovered, 9);
	assert_stored(v, ids, 9);
}

static void stop_after(void *ctx, size_t done, size_t total)
{
	struct env *v = ctx;
	if (total && (int)done >= v->progress_stop_after)
		atomic_store(&v->cancel, true);
}

/* A pass that stops between chunks (as serve's shutdown does; a kill -9
 * leaves the same state) is resumed by the next: nothing lost or twice. */
static void test_resume_after_stop(void **state)
{
	ENV(v);
	char ids[8][32];
	comment(v, 8, ids);
	backfill_opts o = BACKFILL_OPTS_INIT;
	o.max_held = 3;
	o.progress = stop_after;
	o.progress_ctx = v;
	o.cancel = &v->cancel;
	v->progress_stop_after = 3;
	backfill_result r;
	th_error err = {0, {0}};
	assert_int_not_equal(svc_backfill_webhook(&v->sc, v->tc, WEBHOOK_ID, &o, &r, &err), 0);
	assert_int_equal(r.recovered, 3);
	event_row *rows = NULL;
	size_t n = stored(v, &rows);
	assert_int_equal(n, 3);
	event_row_list_free(rows, n);
	backfill_mark m = {0};
	assert_int_equal(svc_backfill_mark(&v->sc, WEBHOOK_ID, &m, &err), 0);
	assert_string_equal(m.last_action_id, ids[2]);
	assert_non_null(m.error);
	backfill_mark_clear(&m);
	assert_int_equal(svc_backfill_webhook(&v->sc, v->tc, WEBHOOK_ID, NULL, &r, &err), 0);
	assert_int_equal(r.recovered, 5);
	assert_int_equal(r.listed, 5);
	assert_stored(v, ids, 8);
	assert_int_equal(svc_backfill_mark(&v->sc, WEBHOOK_ID, &m, &err), 0);
	assert_null(m.error);
	backfill_mark_clear(&m);
}

/* A mark behind what is stored (killed after a commit, before the mark):
 * everything after it is listed again and none of it stored twice. */
static void test_mark_behind_stores_nothing_twice(void **state)
{
	ENV(v);
	char ids[5][32];
	comment(v, 5, ids);
	backfill_result r;
	th_error err = {0, {0}};
	assert_int_equal(svc_backfill_webhook(&v->sc, v->tc, WEBHOOK_ID, NULL, &r, &err), 0);
	backfill_opts o = BACKFILL_OPTS_INIT;
	o.since = ids[0];
	assert_int_equal(svc_backfill_webhook(&v->sc, v->tc, WEBHOOK_ID, &o, &r, &err), 0);
	assert_int_equal(r.listed, 4);
	assert_int_equal(r.recovered, 0);
	assert_int_equal(r.duplicates, 4);
	assert_stored(v, ids, 5);
}

/* never further back than TRELLOHOOK_BACKFILL_MAX_AGE */
static void test_horizon(void **state)
{
	ENV(v);
	char ids[2][32];
	comment(v, 2, ids);
	backfill_opts o = BACKFILL_OPTS_INIT;
	o.since = "2001-01-01T00:00:00Z";
	backfill_result r;
	th_error err = {0, {0}};
	assert_int_equal(svc_backfill_webhook(&v->sc, v->tc, WEBHOOK_ID, &o, &r, &err), 0);
	assert_true(r.clamped);
	assert_int_equal(r.recovered, 2);
	/* a clock a year ahead: the horizon is past every action */
	o.since = NULL;
	o.now_ms = time_now_ms() + (int64_t)365 * 86400000;
	assert_int_equal(svc_backfill_webhook(&v->sc, v->tc, WEBHOOK_ID, &o, &r, &err), 0);
	assert_true(r.clamped);
	assert_int_equal(r.listed, 0);
	/* malformed --since: refused before any call */
	static const char *const bad[] = {
	    "yesterday", "",          "2026-02-30T00:00:00Z", "6123456789abcdef0123456",
	    "\xff\xfe",  "2026-01-01"};
	for (size_t i = 0; i < TH_ARRAY_LEN(bad); i++) {
		o = (backfill_opts)BACKFILL_OPTS_INIT;
		o.since = bad[i];
		assert_int_equal(svc_backfill_webhook(&v->sc, v->tc, WEBHOOK_ID, &o, &r, &err),
		                 TH_EINVAL);
		assert_non_null(strstr(err.msg, "--since"));
	}
	/* ...and is the caller's mistake, not the last pass's error */
	backfill_mark m = {0};
	assert_int_equal(svc_backfill_mark(&v->sc, WEBHOOK_ID, &m, &err), 0);
	assert_null(m.error);
	backfill_mark_clear(&m);
}

/* Hostile listings end the pass with a clear error; nothing is stored, the
 * mark says why, and a good listing afterwards stores everything once. */
static void test_hostile_listings(void **state)
{
	ENV(v);
	char ids[3][32];
	comment(v, 3, ids);
	static const char *const faults[] = {"{\"mode\":\"truncated\"}",
	                                     "{\"mode\":\"wrong-types\"}",
	                                     "{\"mode\":\"huge\"}",
	                                     "{\"mode\":\"status\",\"status\":404}",
	                                     "{\"mode\":\"status\",\"status\":429}",
	                                     "{\"mode\":\"status\",\"status\":503}"};
	static const char *const want[] = {"unexpected answer", "unexpected answer",
	                                   "unexpected answer", "gone on Trello",
	                                   "rate limit",        "next pass"};
	for (size_t i = 0; i < TH_ARRAY_LEN(faults); i++) {
		fault(v, faults[i]);
		backfill_result r;
		th_error err = {0, {0}};
		assert_int_not_equal(
		    svc_backfill_webhook(&v->sc, v->tc, WEBHOOK_ID, NULL, &r, &err), 0);
		if (!strstr(err.msg, want[i]))
			fail_msg("%s: %s", faults[i], err.msg);
		assert_int_equal(r.recovered, 0);
		backfill_mark m = {0};
		assert_int_equal(svc_backfill_mark(&v->sc, WEBHOOK_ID, &m, &err), 0);
		assert_non_null(m.error);
		assert_null(m.last_action_id);
		backfill_mark_clear(&m);
		event_row *rows = NULL;
		size_t n = stored(v, &rows);
		assert_int_equal(n, 0);
		event_row_list_free(rows, n);
	}
	fault(v, "{\"mode\":\"none\"}");
	backfill_result r;
	th_error err = {0, {0}};
	assert_int_equal(svc_backfill_webhook(&v->sc, v->tc, WEBHOOK_ID, NULL, &r, &err), 0);
	assert_stored(v, ids, 3);
}

/* Webhooks that cannot be backfilled say why, and ask nothing of Trello. */
static void test_refusals(void **state)
{
	ENV(v);
	backfill_result r;
	th_error err = {0, {0}};
	assert_int_equal(svc_backfill_webhook(&v->sc, v->tc, "nosuch", NULL, &r, &err),
	                 TH_ENOTFOUND);
	webhook w = {0};
	assert_int_equal(svc_webhook_get(&v->sc, WEBHOOK_ID, &w, &err), 0);
	free(w.model_type);
	w.model_type = str_dup("member");
	assert_int_equal(svc_webhook_update(&v->sc, &w, &err), 0);
	assert_int_equal(svc_backfill_webhook(&v->sc, v->tc, WEBHOOK_ID, NULL, &r, &err),
	                 TH_EINVAL);
	assert_non_null(strstr(err.msg, "boards, lists and cards"));
	/* not serving: the admin's request has nobody to run it */
	free(w.model_type);
	w.model_type = str_dup("board");
	assert_int_equal(svc_webhook_update(&v->sc, &w, &err), 0);
	assert_int_equal(svc_backfill_request(&v->sc, WEBHOOK_ID, &err), TH_EUNAVAIL);
	/* last: a removing row never goes back (the store refuses to undo it) */
	w.state = WEBHOOK_REMOVING;
	assert_int_equal(svc_webhook_update(&v->sc, &w, &err), 0);
	assert_int_equal(svc_backfill_webhook(&v->sc, v->tc, WEBHOOK_ID, NULL, &r, &err),
	                 TH_EINVAL);
	assert_non_null(strstr(err.msg, "being removed"));
	webhook_clear(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_payload_bytes),
	    cmocka_unit_test_setup_teardown(test_pass_stores_oldest_first_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_paging_and_rounds, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resume_after_stop, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mark_behind_stores_nothing_twice, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_horizon, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hostile_listings, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
