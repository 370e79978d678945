/* SPDX-License-Identifier: MIT */
/* test_receive — svc_receive, the decision on one callback POST, without
 * sockets: every outcome, over a real SQLite store and the real group-commit
 * receive queue of app/ (started as `serve` starts it). Hostile bodies
 * (truncated, non-UTF-8, not JSON, wrong shape) must all end as MALFORMED
 * once signed, and never reach the parser unsigned. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "service/service.h"
#include "util/sign.h"
#include "util/util.h"

#define SECRET "unit-test-secret-0123456789"
#define DOMAIN "https://hooks.example.org"
#define TOKEN  \
	"ATTA" \
	"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef01234567"
#define WH_ACTIVE "ReceiveTestActive001"
#define WH_REMOVING "ReceiveTestRemoving1"

typedef struct fx {
	char dir[64];
	char dburl[128];
	char dbpath[128];
	app *a;
	/* what the done callback saw */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int dones;
	enum svc_recv last;
	char last_msg[256];
	int accepts;
	bool refuse_accept; /* accept answers NULL (out of memory) */
} fx;

static fx *g_fx;

static const char *fake_env(const char *name)
{
	if (str_eq(name, "DATABASE_URL"))
		return g_fx->dburl;
	if (str_eq(name, "CALLBACK_DOMAIN"))
		return DOMAIN;
	if (str_eq(name, "TRELLO_API_SECRET"))
		return SECRET;
	if (str_eq(name, "TRELLOHOOK_LOG_LEVEL"))
		return "error";
	return NULL;
}

static void *on_accept(void *ctx)
{
	fx *f = ctx;
	f->accepts++;
	return f->refuse_accept ? NULL : f;
}

static void on_done(void *ctx, enum svc_recv outcome, const th_error *err, svc_recv_left *left)
{
	fx *f = ctx;
	assert_non_null(left); /* every accepted event hands its memory back */
	svc_recv_release(left);
	pthread_mutex_lock(&f->mu);
	f->last = outcome;
	str_copy(f->last_msg, sizeof f->last_msg, err ? err->msg : "");
	f->dones++;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

/* Wait (at most 10 s) until done has been called @n times in all. */
static enum svc_recv wait_done(fx *f, int n)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&f->mu);
	while (f->dones < n)
		if (pthread_cond_timedwait(&f->cv, &f->mu, &until))
			break;
	int got = f->dones;
	enum svc_recv last = f->last;
	pthread_mutex_unlock(&f->mu);
	assert_int_equal(got, n);
	return last;
}

static void add_webhook(fx *f, const char *id, const char *model, enum webhook_state state)
{
	char url[256];
	str_printf(url, sizeof url, DOMAIN "/callbacks/%s", id);
	webhook w = {.id = (char *)id,
	             .id_model = (char *)model,
	             .callback_url = url,
	             .token = (char *)TOKEN,
	             .state = state,
	             .created_at = time_now_ms()};
	th_error err = {0, {0}};
	assert_int_equal(svc_webhook_insert(app_svc(f->a), &w, &err), 0);
}

static int setup(void **state)
{
	fx *f = calloc(1, sizeof *f);
	assert_non_null(f);
	g_fx = f;
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	str_copy(f->dir, sizeof f->dir, "/tmp/th-receive-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	str_printf(f->dbpath, sizeof f->dbpath, "%s/th.db", f->dir);
	str_printf(f->dburl, sizeof f->dburl, "sqlite:%s", f->dbpath);
	th_config cfg;
	th_error err = {0, {0}};
	assert_int_equal(config_load_env(&cfg, fake_env, &err), 0);
	assert_int_equal(app_new(&f->a, &cfg, &err), 0);
	add_webhook(f, WH_ACTIVE, "6123456789abcdef01234567", WEBHOOK_ACTIVE);
	add_webhook(f, WH_REMOVING, "6123456789abcdef00000002", WEBHOOK_REMOVING);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;
	app_receiver_stop(f->a);
	th_app_free(f->a);
	char cmd[128];
	str_printf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", f->dir);
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
	free(f);
	return 0;
}

/* A Trello payload for action @action_id. */
static void payload(char *out, size_t outsz, const char *action_id)
{
	str_printf(out, outsz,
	           "{\"model\":{\"id\":\"6123456789abcdef01234567\",\"name\":\"Roadmap\"},"
	           "\"action\":{\"id\":\"%s\",\"type\":\"createCard\","
	           "\"date\":\"2026-12-01T10:00:00.000Z\","
	           "\"data\":{\"board\":{\"id\":\"6123456789abcdef01234567\",\"name\":\"Roadmap\"},"
	           "\"card\":{\"id\":\"6123456789abcdef0000aaaa\",\"name\":\"A card\"}},"
	           "\"memberCreator\":{\"id\":\"6123456789abcdef0000bbbb\",\"username\":\"ann\"}}}",
	           action_id);
}

/* svc_receive of @body as signed for webhook @id (signature computed over the
 * stored callback URL unless @sig is given). */
static enum svc_recv post(fx *f, const char *id, const char *body, size_t len, const char *sig,
                          bool repeated, th_error *err)
{
	char good[TRELLO_SIG_LEN + 1];
	char url[256];
	str_printf(url, sizeof url, DOMAIN "/callbacks/%s", id);
	if (!sig) {
		assert_int_equal(sign_trello(SECRET, body, len, url, good), 0);
		sig = good;
	}
	svc_recv_opts o = {.remote = "192.0.2.7",
	                   .signature_repeated = repeated,
	                   .accept = on_accept,
	                   .ctx = f,
	                   .done = on_done};
	return svc_receive(app_svc(f->a), id, sig, body, len, &o, err);
}

static uint64_t rejected(fx *f, enum reject_reason r)
{
	return atomic_load(&f->a->m.rejected[r]);
}

static size_t stored_events(fx *f, const char *webhook_id)
{
	event_query q = {0};
	q.webhook_id = webhook_id;
	event_row *rows = NULL;
	size_t n = 0;
	th_error err = {0, {0}};
	assert_int_equal(svc_event_list(app_svc(f->a), &q, &rows, &n, &err), 0);
	event_row_list_free(rows, n);
	return n;
}

static void exec_sql(fx *f, const char *sql)
{
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(f->dbpath, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	char *msg = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK)
		fprintf(stderr, "%s: %s\n", sql, msg ? msg : "?");
	sqlite3_free(msg);
	sqlite3_close(db);
	assert_int_equal(rc, SQLITE_OK);
}

static void test_stored_then_duplicate(void **state)
{
	fx *f = *state;
	th_error err = {0, {0}};
	assert_int_equal(app_receiver_start(f->a, &err), 0);
	char body[1024];
	payload(body, sizeof body, "5f0000000000000000000001");
	assert_int_equal(post(f, WH_ACTIVE, body, strlen(body), NULL, false, &err),
	                 SVC_RECV_QUEUED);
	assert_int_equal(wait_done(f, 1), SVC_RECV_STORED);
	assert_int_equal(stored_events(f, WH_ACTIVE), 1);
	assert_int_equal(atomic_load(&f->a->m.events_received), 1);
	/* the same action again: Trello retried; stored once, answered 200 */
	assert_int_equal(post(f, WH_ACTIVE, body, strlen(body), NULL, false, &err),
	                 SVC_RECV_QUEUED);
	assert_int_equal(wait_done(f, 2), SVC_RECV_DUPLICATE);
	assert_int_equal(stored_events(f, WH_ACTIVE), 1);
	assert_int_equal(f->accepts, 2);
	assert_string_equal(svc_recv_name(SVC_RECV_DUPLICATE), "duplicate");
}

static void test_unknown_and_gone(void **state)
{
	fx *f = *state;
	th_error err = {0, {0}};
	char body[1024];
	payload(body, sizeof body, "5f0000000000000000000002");
	assert_int_equal(post(f, "NoSuchWebhook0000001", body, strlen(body), NULL, false, &err),
	                 SVC_RECV_UNKNOWN);
	assert_int_equal(rejected(f, REJECT_UNKNOWN_WEBHOOK), 1);
	assert_int_equal(post(f, WH_REMOVING, body, strlen(body), NULL, false, &err),
	                 SVC_RECV_GONE);
	assert_int_equal(rejected(f, REJECT_WEBHOOK_REMOVED), 1);
	assert_int_equal(f->accepts, 0);
	assert_int_equal(f->dones, 0);
	assert_int_equal(stored_events(f, WH_REMOVING), 0);
}

/* Another process (here: a second SQLite connection, as the CLI) marks the
 * webhook removing, then deletes it, while this process's cache still holds
 * it as active: the POST is not stored and ends GONE (410) through the store's
 * check; the entry is then forgotten, so the next POST stops at the cache. */
static void test_removed_by_another_process(void **state)
{
	fx *f = *state;
	th_error err = {0, {0}};
	assert_int_equal(app_receiver_start(f->a, &err), 0);
	char body[1024];
	payload(body, sizeof body, "5f0000000000000000000011");
	assert_int_equal(post(f, WH_ACTIVE, body, strlen(body), NULL, false, &err),
	                 SVC_RECV_QUEUED);
	assert_int_equal(wait_done(f, 1), SVC_RECV_STORED); /* cached as active now */
	exec_sql(f,
	         "UPDATE webhooks SET state = 'removing', active = 0 WHERE id = '" WH_ACTIVE "'");
	payload(body, sizeof body, "5f0000000000000000000012");
	assert_int_equal(post(f, WH_ACTIVE, body, strlen(body), NULL, false, &err),
	                 SVC_RECV_QUEUED); /* the cache did not know yet */
	assert_int_equal(wait_done(f, 2), SVC_RECV_GONE);
	assert_int_equal(stored_events(f, WH_ACTIVE), 1);
	assert_int_equal(rejected(f, REJECT_WEBHOOK_REMOVED), 1);
	/* forgotten: the next one is refused before the queue */
	assert_int_equal(post(f, WH_ACTIVE, body, strlen(body), NULL, false, &err), SVC_RECV_GONE);
	assert_int_equal(f->dones, 2);

	/* the same with the row deleted outright (Trello reachable: rm finished) */
	add_webhook(f, "ReceiveTestDeleted01", "6123456789abcdef00000003", WEBHOOK_ACTIVE);
	payload(body, sizeof body, "5f0000000000000000000013");
	assert_int_equal(post(f, "ReceiveTestDeleted01", body, strlen(body), NULL, false, &err),
	                 SVC_RECV_QUEUED);
	assert_int_equal(wait_done(f, 3), SVC_RECV_STORED);
	exec_sql(f, "DELETE FROM webhooks WHERE id = 'ReceiveTestDeleted01'");
	payload(body, sizeof body, "5f0000000000000000000014");
	assert_int_equal(post(f, "ReceiveTestDeleted01", body, strlen(body), NULL, false, &err),
	                 SVC_RECV_QUEUED);
	assert_int_equal(wait_done(f, 4), SVC_RECV_GONE);
	assert_int_equal(stored_events(f, "ReceiveTestDeleted01"), 1);
	assert_int_equal(post(f, "ReceiveTestDeleted01", body, strlen(body), NULL, false, &err),
	                 SVC_RECV_UNKNOWN);
}

/* A change made in this process (svc_webhook_*: the admin, the health pass)
 * is seen by the very next POST: the entry is forgotten at once. */
static void test_removed_in_process(void **state)
{
	fx *f = *state;
	th_error err = {0, {0}};
	assert_int_equal(app_receiver_start(f->a, &err), 0);
	char body[1024];
	payload(body, sizeof body, "5f0000000000000000000021");
	assert_int_equal(post(f, WH_ACTIVE, body, strlen(body), NULL, false, &err),
	                 SVC_RECV_QUEUED);
	assert_int_equal(wait_done(f, 1), SVC_RECV_STORED);
	webhook w = {0};
	assert_int_equal(svc_webhook_get(app_svc(f->a), WH_ACTIVE, &w, &err), 0);
	w.state = WEBHOOK_REMOVING;
	assert_int_equal(svc_webhook_update(app_svc(f->a), &w, &err), 0);
	webhook_clear(&w);
	payload(body, sizeof body, "5f0000000000000000000022");
	assert_int_equal(post(f, WH_ACTIVE, body, strlen(body), NULL, false, &err), SVC_RECV_GONE);
	assert_int_equal(svc_webhook_delete(app_svc(f->a), WH_ACTIVE, &err), 0);
	assert_int_equal(post(f, WH_ACTIVE, body, strlen(body), NULL, false, &err),
	                 SVC_RECV_UNKNOWN);
	assert_int_equal(f->dones, 1);
	assert_int_equal(stored_events(f, WH_ACTIVE), 1);
}

static void test_signatures(void **state)
{
	fx *f = *state;
	th_error err = {0, {0}};
	char body[1024];
	payload(body, sizeof body, "5f0000000000000000000003");
	size_t len = strlen(body);
	svc_recv_opts o = {.accept = on_accept, .ctx = f, .done = on_done};
	/* missing */
	assert_int_equal(svc_receive(app_svc(f->a), WH_ACTIVE, NULL, body, len, &o, &err),
	                 SVC_RECV_SIG_MISSING);
	assert_string_equal(err.msg, "missing");
	/* malformed: not base64, empty, overlong, binary */
	const char *bad[] = {"not base64!", "", "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB",
	                     "\xff\xfe\x80"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		enum svc_recv r = post(f, WH_ACTIVE, body, len, bad[i], false, &err);
		assert_true(r == SVC_RECV_SIG_MALFORMED || r == SVC_RECV_SIG_MISSING);
	}
	/* the header twice: malformed, even when one copy is right */
	assert_int_equal(post(f, WH_ACTIVE, body, len, NULL, true, &err), SVC_RECV_SIG_MALFORMED);
	assert_string_equal(err.msg, "malformed");
	/* well-formed but made with another secret, or over another URL */
	char other[TRELLO_SIG_LEN + 1];
	assert_int_equal(
	    sign_trello("another-secret", body, len, DOMAIN "/callbacks/" WH_ACTIVE, other), 0);
	assert_int_equal(post(f, WH_ACTIVE, body, len, other, false, &err), SVC_RECV_SIG_MISMATCH);
	assert_string_equal(err.msg, "mismatch");
	assert_int_equal(sign_trello(SECRET, body, len, "https://proxy.example/callbacks/x", other),
	                 0);
	assert_int_equal(post(f, WH_ACTIVE, body, len, other, false, &err), SVC_RECV_SIG_MISMATCH);
	/* signed over a body one byte shorter: the bytes are what is signed */
	assert_int_equal(sign_trello(SECRET, body, len - 1, DOMAIN "/callbacks/" WH_ACTIVE, other),
	                 0);
	assert_int_equal(post(f, WH_ACTIVE, body, len, other, false, &err), SVC_RECV_SIG_MISMATCH);
	assert_int_equal(rejected(f, REJECT_SIGNATURE_MISSING) +
	                     rejected(f, REJECT_SIGNATURE_MALFORMED) +
	                     rejected(f, REJECT_SIGNATURE_MISMATCH),
	                 1 + 4 + 1 + 3);
	assert_int_equal(f->accepts, 0);
	assert_int_equal(stored_events(f, WH_ACTIVE), 0);
}

static void test_malformed_bodies(void **state)
{
	fx *f = *state;
	th_error err = {0, {0}};
	char good[1024];
	payload(good, sizeof good, "5f0000000000000000000004");
	char truncated[1024];
	str_copy(truncated, sizeof truncated, good);
	truncated[strlen(truncated) / 2] = '\0';
	char big[70000];
	memset(big, '[', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	const char *bodies[] = {
	    "",
	    "not json",
	    truncated,
	    "{}",
	    "[]",
	    "null",
	    "{\"model\":{\"id\":\"6123456789abcdef01234567\"}}",
	    "{\"action\":{\"id\":\"\xff\xfe\",\"type\":\"createCard\"},\"model\":{}}",
	    "{\"action\":\"createCard\",\"model\":7}",
	    big, /* nesting far past any sane depth */
	};
	for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
		err.msg[0] = '\0';
		assert_int_equal(
		    post(f, WH_ACTIVE, bodies[i], strlen(bodies[i]), NULL, false, &err),
		    SVC_RECV_MALFORMED);
		assert_true(err.msg[0] != '\0');
	}
	/* a NUL inside the signed bytes */
	const char nul[] = "{\"action\":{\"id\":\"a\0b\"}}";
	assert_int_equal(post(f, WH_ACTIVE, nul, sizeof nul - 1, NULL, false, &err),
	                 SVC_RECV_MALFORMED);
	assert_int_equal(rejected(f, REJECT_BAD_PAYLOAD), sizeof bodies / sizeof bodies[0] + 1);
	assert_int_equal(f->accepts, 0);
	assert_int_equal(stored_events(f, WH_ACTIVE), 0);
}

static void test_out_of_memory_and_not_receiving(void **state)
{
	fx *f = *state;
	th_error err = {0, {0}};
	char body[1024];
	payload(body, sizeof body, "5f0000000000000000000005");
	/* the caller could not suspend its request: nothing queued, no done */
	f->refuse_accept = true;
	assert_int_equal(post(f, WH_ACTIVE, body, strlen(body), NULL, false, &err), SVC_RECV_NOMEM);
	assert_int_equal(f->dones, 0);
	f->refuse_accept = false;
	/* accepted, but no receive queue runs: done says BUSY */
	assert_int_equal(post(f, WH_ACTIVE, body, strlen(body), NULL, false, &err),
	                 SVC_RECV_QUEUED);
	assert_int_equal(wait_done(f, 1), SVC_RECV_BUSY);
	assert_non_null(strstr(f->last_msg, "not receiving"));
	assert_int_equal(rejected(f, REJECT_STORE_UNAVAILABLE), 2);
	assert_int_equal(stored_events(f, WH_ACTIVE), 0);
}

static void test_store_failures(void **state)
{
	fx *f = *state;
	th_error err = {0, {0}};
	assert_int_equal(app_receiver_start(f->a, &err), 0);
	char body[1024];
	payload(body, sizeof body, "5f0000000000000000000006");
	/* warm the cache for the active webhook, then lose the events table:
	 * the commit fails and the request hears STORE_FAILED (503, Trello retries) */
	assert_int_equal(post(f, WH_ACTIVE, body, strlen(body), NULL, false, &err),
	                 SVC_RECV_QUEUED);
	assert_int_equal(wait_done(f, 1), SVC_RECV_STORED);
	exec_sql(f, "PRAGMA foreign_keys=OFF; DROP TABLE deliveries; DROP TABLE events;");
	payload(body, sizeof body, "5f0000000000000000000007");
	assert_int_equal(post(f, WH_ACTIVE, body, strlen(body), NULL, false, &err),
	                 SVC_RECV_QUEUED);
	assert_int_equal(wait_done(f, 2), SVC_RECV_STORE_FAILED);
	assert_true(f->last_msg[0] != '\0');
	/* an id the cache has not seen, with the webhooks table gone: the lookup
	 * fails (503), nothing is accepted */
	exec_sql(f, "DROP TABLE webhooks;");
	err.msg[0] = '\0';
	assert_int_equal(post(f, "NotCachedWebhook0001", body, strlen(body), NULL, false, &err),
	                 SVC_RECV_LOOKUP_FAILED);
	assert_true(err.msg[0] != '\0');
	assert_int_equal(f->accepts, 2);
	assert_int_equal(rejected(f, REJECT_STORE_UNAVAILABLE), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_stored_then_duplicate, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_and_gone, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_removed_by_another_process, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_removed_in_process, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_signatures, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_malformed_bodies, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_out_of_memory_and_not_receiving, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_failures, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
