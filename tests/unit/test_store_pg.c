/* SPDX-License-Identifier: MIT */
/* Unit tests of the PostgreSQL store on a real server: the shared store
 * suite (store_suite.c, the same cases test_store.c runs on SQLite), plus
 * what only PostgreSQL has: migrations under an advisory lock by several processes at once, the
 * connection pool and its settings, reconnecting after the server restarts,
 * statement timeouts, and FOR UPDATE SKIP LOCKED claims by concurrent
 * claimers on separate handles.
 *
 * The server: TH_TEST_PG_URL when set (a role allowed to CREATE DATABASE),
 * else a throwaway cluster started here with scripts/pg.sh (TH_PG_SCRIPT).
 * Every test gets a fresh database. When the PostgreSQL server binaries are
 * missing and no URL is given, the binary fails, or with TH_SKIP_PG=1 is
 * skipped (exit 77), with a loud message (pg_optional.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "model/model.h"
#include "store/store.h"
#include "util/util.h"

#include "child.h"
#include "pg_cluster.h"
#include "pg_optional.h"
#include "store_suite.h"

/* ---- the server (one per test binary) ----------------------------------------------------- */

/* Set up once in group_setup, read-only afterwards. */
static pg_cluster pgt;
static int db_counter; /* the databases made so far */

/* Run @sql on the maintenance database; fails the test on error. */
static void admin_exec(const char *sql)
{
	PGconn *c = PQconnectdb(pgt.base);
	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("admin connect: %s", PQerrorMessage(c));
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
}

/* Run @sql on database @db and return the first value as a number. */
static int64_t db_value(const char *db, const char *sql)
{
	char url[600];
	pg_url_with_db(url, sizeof url, pgt.base, db, "");
	PGconn *c = PQconnectdb(url);
	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("connect %s: %s", db, PQerrorMessage(c));
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	int64_t v = 0;
	assert_int_equal(num_parse_i64(PQgetvalue(r, 0, 0), INT64_MIN, INT64_MAX, &v), 0);
	PQclear(r);
	PQfinish(c);
	return v;
}

static int group_setup(void **state)
{
	(void)state;
	if (pg_cluster_start(&pgt, "th-pgtest", "STORE") != 0)
		return -1;
	/* every test here needs the server: the whole binary is skipped
	 * (exit 77, meson's SKIP), only when asked (pg_optional.h) */
	if (pgt.skip)
		exit(PG_SKIP_EXIT);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	pg_cluster_stop(&pgt);
	return 0;
}

/* ---- fixtures ------------------------------------------------------------------------------- */

/* A fresh database on the server. */
typedef struct fx {
	store_fx base; /* first: what the shared suite sees */
	char db[64];
} fx;

/* A fresh empty database; its URL (with @query) in @f->base.url. */
static void fresh_db(fx *f, const char *query)
{
	char sql[160];
	str_printf(f->db, sizeof f->db, "th_test_%d_%d", (int)getpid(), ++db_counter);
	str_printf(sql, sizeof sql, "CREATE DATABASE %s", f->db);
	admin_exec(sql);
	pg_url_with_db(f->base.url, sizeof f->base.url, pgt.base, f->db, query);
}

static int fx_setup(void **state)
{
	fx *f = calloc(1, sizeof *f);
	if (!f)
		return -1;
	fresh_db(f, "");
	return suite_fx_open(state, &f->base);
}

static int fx_teardown(void **state)
{
	fx *f = *state;
	if (!f)
		return 0;
	store_close(f->base.st);
	char sql[160];
	str_printf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", f->db);
	admin_exec(sql);
	free(f);
	return 0;
}

/* ---- PostgreSQL only: opening, URL parameters, errors -----------------------------------------
 */

static void test_pg_open_errors(void **state)
{
	(void)state;
	store *st = (store *)0x1;
	th_error err = {0};
	/* nothing listens there: unavailable, the URL named with its password masked */
	int rc =
	    store_open(&st, "postgresql://th:hunter2secret@127.0.0.1:1/th?connect_timeout=2", &err);
	assert_int_equal(rc, TH_EUNAVAIL);
	assert_null(st);
	assert_non_null(strstr(err.msg, "DATABASE_URL"));
	assert_non_null(strstr(err.msg, "postgresql://th:****@127.0.0.1:1/th"));
	assert_null(strstr(err.msg, "hunter2secret"));
	/* our own parameters are checked */
	const char *bad[] = {"postgresql://u:hunter2secret@127.0.0.1:1/th?pool_size=0",
	                     "postgresql://u:hunter2secret@127.0.0.1:1/th?pool_size=1000",
	                     "postgresql://u:hunter2secret@127.0.0.1:1/th?pool_size=+3",
	                     "postgresql://u:hunter2secret@127.0.0.1:1/th?statement_timeout=soon",
	                     "postgresql://u:hunter2secret@127.0.0.1:1/th?nosuchparam=1",
	                     "postgresql://u:hunter2secret@[::1/th"};
	for (size_t i = 0; i < TH_ARRAY_LEN(bad); i++) {
		rc = store_open(&st, bad[i], &err);
		if (rc != TH_ECONFIG)
			fail_msg("%s: %d %s", bad[i], rc, err.msg);
		assert_null(st);
		assert_null(strstr(err.msg, "hunter2secret"));
	}
	/* a bad option value (libpq checks it when connecting) */
	rc = store_open(&st, "postgres://u:hunter2secret@127.0.0.1:1/th?sslmode=bogus", &err);
	assert_int_not_equal(rc, 0);
	assert_non_null(strstr(err.msg, "sslmode"));
	assert_null(strstr(err.msg, "hunter2secret"));
	/* a password given as a query parameter is not shown either */
	rc = store_open(&st, "postgresql://127.0.0.1:1/th?password=hunter2secret&connect_timeout=2",
	                &err);
	assert_int_not_equal(rc, 0);
	assert_null(strstr(err.msg, "hunter2secret"));
	/* a wrong database name: the server answers, the connection is refused */
	char url[600];
	pg_url_with_db(url, sizeof url, pgt.base, "th_no_such_db", "");
	assert_int_equal(store_open(&st, url, &err), TH_EUNAVAIL);
	assert_non_null(strstr(err.msg, "th_no_such_db"));
}

static void test_pg_migrations(void **state)
{
	fx *f = *state;
	th_error err = {0};
	int v1 = -1, v2 = -1;
	assert_string_equal(store_name(f->base.st), "postgresql");
	assert_int_equal(store_ping(f->base.st, &err), 0);
	assert_int_equal(store_migrate(f->base.st, &v1, &err), 0);
	assert_true(v1 >= 1);
	store_close(f->base.st);
	f->base.st = NULL;
	assert_int_equal(store_open(&f->base.st, f->base.url, &err),
	                 0); /* migrates again at open */
	assert_int_equal(store_migrate(f->base.st, &v2, &err), 0);
	assert_int_equal(v1, v2);
	assert_int_equal(db_value(f->db, "SELECT count(*) FROM schema_migrations"), v1);
	assert_int_equal(db_value(f->db, "SELECT max(version) FROM schema_migrations"), v1);
	/* the constraints and indexes exist as in SQLite */
	assert_int_equal(db_value(f->db,
	                          "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'"
	                          " AND indexname IN ('events_webhook_seq', 'events_type_seq',"
	                          " 'deliveries_chain', 'deliveries_queue',"
	                          " 'deliveries_due', 'deliveries_order',"
	                          " 'deliveries_handler', 'sessions_expires',"
	                          " 'webhooks_model_token', 'events_webhook_action',"
	                          " 'deliveries_event_handler_generation')"),
	                 11);
	/* migration 3 dropped the unused events_received_at, and 10
	 * deliveries_unfinished (deliveries_chain answers its probe) */
	assert_int_equal(db_value(f->db, "SELECT count(*) FROM pg_indexes"
	                                 " WHERE indexname IN ('events_received_at',"
	                                 " 'deliveries_unfinished')"),
	                 0);
	assert_int_equal(db_value(f->db, "SELECT count(*) FROM information_schema.columns"
	                                 " WHERE table_name = 'events' AND column_name = 'payload'"
	                                 " AND data_type = 'bytea'"),
	                 1);

	/* a newer schema is refused, untouched */
	store_close(f->base.st);
	f->base.st = NULL;
	char url[600];
	pg_url_with_db(url, sizeof url, pgt.base, f->db, "");
	PGconn *c = PQconnectdb(url);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	PQclear(PQexec(c, "INSERT INTO schema_migrations VALUES (999, 0)"));
	assert_int_equal(store_open(&f->base.st, f->base.url, &err), TH_ESTORE);
	assert_non_null(strstr(err.msg, "newer"));
	assert_null(f->base.st);
	PQclear(PQexec(c, "DELETE FROM schema_migrations WHERE version = 999"));
	PQfinish(c);
	assert_int_equal(store_open(&f->base.st, f->base.url, &err), 0);
}

/* Several processes open (and so migrate) one fresh database at the same
 * moment: the advisory lock makes each migration run exactly once. */
static void test_pg_concurrent_migrations(void **state)
{
	(void)state;
	fx f = {0};
	fresh_db(&f, "");
	enum { PROCS = 4 };
	pid_t pids[PROCS];
	int64_t start = time_now_ms() + 300; /* all children go at once */
	pid_t parent = getpid();
	for (int i = 0; i < PROCS; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			child_dies_with_parent(parent);
			while (time_now_ms() < start)
				usleep(1000);
			store *st = NULL;
			th_error err = {0};
			int rc = store_open(&st, f.base.url, &err);
			if (rc != 0)
				fprintf(stderr, "child store_open: %s\n", err.msg);
			store_close(st);
			_exit(rc == 0 ? 0 : 1);
		}
	}
	for (int i = 0; i < PROCS; i++) {
		int status = 0;
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	assert_int_equal(db_value(f.db, "SELECT count(*) FROM schema_migrations"),
	                 db_value(f.db, "SELECT max(version) FROM schema_migrations"));
	assert_int_equal(
	    db_value(f.db, "SELECT count(*) FROM pg_tables WHERE tablename = 'events'"), 1);
	fx *fp = calloc(1, sizeof *fp);
	*fp = f;
	void *s = fp;
	fx_teardown(&s);
}

/* Hostile text: invalid UTF-8 in event fields is repaired (PostgreSQL would
 * refuse it and fail the whole batch); the payload keeps the exact bytes. */
static void test_pg_non_utf8_fields(void **state)
{
	fx *f = *state;
	store *st = f->base.st;
	th_error err = {0};
	event *ev = suite_ev_new("w1",
	                         "a\xff"
	                         "1",
	                         "t", "bad \xc3 summary \xe2\x82", "{\"x\":\"\xff\"}", 0);
	event *ok = suite_ev_new("w1", "a2", "t", "Zo\xc3\xab fine", NULL, 0);
	event *evs[2] = {ev, ok};
	enum store_put r[2];
	assert_int_equal(suite_events_put(st, evs, 2, r, &err), 0);
	assert_int_equal(r[0], STORE_PUT_NEW);
	assert_int_equal(r[1], STORE_PUT_NEW);
	event got = {0};
	assert_int_equal(store_event_get(st, ev->id, &got, &err), 0);
	assert_string_equal(got.summary, "bad ? summary ??");
	assert_string_equal(got.action_id, "a?1");
	assert_int_equal(got.payload_len, ev->payload_len);
	assert_memory_equal(got.payload, ev->payload, ev->payload_len);
	event_clear(&got);
	assert_int_equal(store_event_get(st, ok->id, &got, &err), 0);
	assert_string_equal(got.summary, "Zo\xc3\xab fine");
	event_clear(&got);
	suite_ev_free(ev);
	suite_ev_free(ok);
}

/* Every connection says who it is; the pool never holds more than pool_size
 * connections however many threads call. */
struct hammer {
	store *st;
	int rounds;
	int failures;
};

static void *hammer_main(void *arg)
{
	struct hammer *h = arg;
	for (int i = 0; i < h->rounds; i++) {
		th_error err = {0};
		int64_t counts[5];
		if (store_delivery_stats(h->st, counts, NULL, &err) != 0)
			h->failures++;
		if (store_ping(h->st, &err) != 0)
			h->failures++;
	}
	return NULL;
}

static void test_pg_pool(void **state)
{
	(void)state;
	fx f = {0};
	fresh_db(&f, "pool_size=2&statement_timeout=20000");
	th_error err = {0};
	assert_int_equal(store_open(&f.base.st, f.base.url, &err), 0);
	enum { T = 8 };
	struct hammer hs[T];
	pthread_t th[T];
	for (int i = 0; i < T; i++) {
		hs[i] = (struct hammer){f.base.st, 50, 0};
		assert_int_equal(pthread_create(&th[i], NULL, hammer_main, &hs[i]), 0);
	}
	for (int i = 0; i < T; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(hs[i].failures, 0);
	}
	char sql[300];
	str_printf(sql, sizeof sql,
	           "SELECT count(*) FROM pg_stat_activity WHERE datname = '%s'"
	           " AND application_name = 'trellohook'",
	           f.db);
	int64_t conns = db_value(f.db, sql);
	assert_true(conns >= 1 && conns <= 2);
	fx *fp = calloc(1, sizeof *fp);
	*fp = f;
	void *s = fp;
	fx_teardown(&s);
}

/* statement_timeout applies: a statement stuck behind a lock gives up. */
static void test_pg_statement_timeout(void **state)
{
	(void)state;
	fx f = {0};
	fresh_db(&f, "statement_timeout=300");
	th_error err = {0};
	assert_int_equal(store_open(&f.base.st, f.base.url, &err), 0);
	char url[600];
	pg_url_with_db(url, sizeof url, pgt.base, f.db, "");
	PGconn *c = PQconnectdb(url);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	PQclear(PQexec(c, "BEGIN"));
	PQclear(PQexec(c, "LOCK TABLE handlers IN ACCESS EXCLUSIVE MODE"));
	handler *hs = NULL;
	size_t n = 0;
	int64_t t0 = time_mono_ms();
	assert_int_equal(store_handler_list(f.base.st, &hs, &n, &err), TH_ESTORE);
	assert_true(time_mono_ms() - t0 < 5000);
	assert_non_null(strstr(err.msg, "statement timeout"));
	PQclear(PQexec(c, "ROLLBACK"));
	PQfinish(c);
	/* and the store works again at once */
	assert_int_equal(store_handler_list(f.base.st, &hs, &n, &err), 0);
	handler_list_free(hs, n);
	fx *fp = calloc(1, sizeof *fp);
	*fp = f;
	void *s = fp;
	fx_teardown(&s);
}

/* A batch of one event and a claim: both run statements that a connection
 * prepares once (pg_int.h, enum pq_stmt), so after a reconnect they show that
 * the new session prepares them again. */
static void put_and_claim(store *st, const char *action_id)
{
	th_error err = {0};
	event *ev = suite_ev_new("w1", action_id, "t", "s", NULL, 0);
	assert_int_equal(suite_put1(st, ev), STORE_PUT_NEW);
	suite_ev_free(ev);
	delivery *ds = NULL;
	size_t n = 0;
	assert_int_equal(store_delivery_claim(st, SUITE_ALL_KINDS, 8, 1000, &ds, &n, &err), 0);
	delivery_list_free(ds, n);
}

/* The server drops the store's connections (an administrator, a failover). */
static void drop_store_connections(fx *f)
{
	char sql[300];
	str_printf(sql, sizeof sql,
	           "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
	           " WHERE datname = '%s' AND application_name = 'trellohook'",
	           f->db);
	assert_true(db_value(f->db, sql) >= 1);
	usleep(100 * 1000);
}

/* The server drops our connections (an administrator, a failover) or
 * restarts: the next operations reconnect on their own (and prepare their
 * statements again in the new sessions). */
static void test_pg_reconnect(void **state)
{
	fx *f = *state;
	store *st = f->base.st;
	th_error err = {0};
	suite_add_webhook(st, "w1", "m", "t");
	put_and_claim(st, "a0"); /* the pool's connection has prepared statements */
	drop_store_connections(f);
	webhook w = {0};
	assert_int_equal(store_webhook_get(st, "w1", &w, &err), 0);
	webhook_clear(&w);
	put_and_claim(st, "a1");

	if (!pgt.own)
		return; /* a server we do not own is not restarted */
	char cmd[700];
	str_printf(cmd, sizeof cmd, "'%s' restart '%s'", pgt.script, pgt.dir);
	assert_int_equal(system(cmd), 0);
	/* every pooled connection is stale now; each op must still succeed */
	for (int i = 0; i < 6; i++) {
		char aid[16];
		str_printf(aid, sizeof aid, "r%d", i);
		put_and_claim(st, aid);
		assert_int_equal(store_ping(st, &err), 0);
	}
	assert_int_equal(store_webhook_get(st, "w1", &w, &err), 0);
	assert_int_equal(w.event_count, 8);
	webhook_clear(&w);
}

/* Store one event with a 4,000-byte compressible payload under @action_id;
 * returns how many events are stored lz4-compressed, or -1 when the server
 * has no lz4 (it keeps its default). */
static long put_compressible(fx *f, const char *action_id)
{
	char body[4000];
	for (size_t i = 0; i < sizeof body; i++)
		body[i] = (char)('a' + i % 7);
	event *ev = suite_ev_new("w1", action_id, "t", "s", body, sizeof body);
	assert_int_equal(suite_put1(f->base.st, ev), STORE_PUT_NEW);
	suite_ev_free(ev);
	if (db_value(f->db, "SELECT count(*) FROM pg_settings WHERE name ="
	                    " 'default_toast_compression' AND 'lz4' = ANY (enumvals)") == 0)
		return -1;
	return db_value(f->db, "SELECT count(*) FROM events"
	                       " WHERE pg_column_compression(payload) = 'lz4'");
}

/* Payloads are stored lz4-compressed where the server has lz4 (pg.c,
 * pg_session_setup), byte for byte as received; a connection the server
 * dropped comes back as a new session, which gets the setting again. The
 * store itself never packs them (payload_codec stays 0: TOAST does it), so
 * `migrate --repack` has nothing to do here. */
static void test_pg_payload_lz4(void **state)
{
	fx *f = *state;
	store *st = f->base.st;
	suite_add_webhook(st, "w1", "m", "t");
	long lz4 = put_compressible(f, "a1");
	assert_int_equal(
	    db_value(f->db, "SELECT count(*) FROM events WHERE length(payload) = 4000"), 1);
	assert_int_equal(db_value(f->db, "SELECT count(*) FROM events WHERE payload_codec <> 0"),
	                 0);
	repack_batch rb = {.after_seq = 0, .upto_seq = 1000};
	th_error rerr = {0};
	assert_int_equal(store_payloads_repack(st, 100, &rb, &rerr), 0);
	assert_true(rb.done);
	assert_int_equal(rb.raw + rb.packed, 0);
	int64_t before = -1, after = -1;
	assert_int_equal(store_vacuum(st, &before, &after, &rerr), 0);
	assert_int_equal(before + after, 0);
	if (lz4 < 0)
		return; /* a server without lz4 keeps its default */
	assert_int_equal(lz4, 1);

	drop_store_connections(f);
	th_error err = {0};
	webhook w = {0};
	assert_int_equal(store_webhook_get(st, "w1", &w, &err), 0); /* reconnects */
	webhook_clear(&w);
	assert_int_equal(put_compressible(f, "a2"), 2);
}

/* How many deliveries the event of @action_id has to @handler_id. */
static int64_t deliveries_to(fx *f, const char *action_id, const char *handler_id)
{
	char sql[300];
	str_printf(sql, sizeof sql,
	           "SELECT count(*) FROM deliveries d JOIN events e ON e.id = d.event_id"
	           " WHERE e.action_id = '%s' AND d.handler_id = '%s'",
	           action_id, handler_id);
	return db_value(f->db, sql);
}

/* Run @sql (an UPDATE) on the test's database from a connection of its own. */
static void db_update(fx *f, const char *sql)
{
	char q[400];
	str_printf(q, sizeof q, "WITH u AS (%s RETURNING 1) SELECT count(*) FROM u", sql);
	assert_true(db_value(f->db, q) >= 1);
}

/* A batch takes its handlers from the store's previous batch and stores in
 * one round trip when its guard finds them, and its webhooks, unchanged
 * (pg_events.c). Changes made elsewhere between two batches (another
 * instance, or SQL) are seen by the very next one: a handler added, edited,
 * disabled, and a webhook being removed. Without the guard, each step below
 * would store with the previous batch's view. */
static void test_pg_batch_sees_changes_elsewhere(void **state)
{
	fx *f = *state;
	store *st = f->base.st, *other = NULL;
	th_error err = {0};
	assert_int_equal(store_open(&other, f->base.url, &err), 0);
	suite_add_webhook(st, "w1", "m1", "t");
	suite_add_webhook(st, "w2", "m2", "t");
	const char *actions[] = {"a1", "a2", "a3", "a4", "a5"};
	for (size_t i = 0; i < TH_ARRAY_LEN(actions); i++) {
		if (i == 1) /* another instance adds a handler */
			suite_add_handler(other, "h1", HANDLER_EXEC, NULL, NULL, true);
		if (i == 3) /* now it takes another type only */
			db_update(f, "UPDATE handlers SET on_types = 'other' WHERE id = 'h1'");
		if (i == 4) { /* a second one, and the first disabled */
			suite_add_handler(other, "h2", HANDLER_EXEC, NULL, NULL, true);
			db_update(f, "UPDATE handlers SET on_types = NULL, enabled = false"
			             " WHERE id = 'h1'");
		}
		event *ev = suite_ev_new("w1", actions[i], "t", "s", NULL, 0);
		assert_int_equal(suite_put1(st, ev), STORE_PUT_NEW);
		suite_ev_free(ev);
	}
	assert_int_equal(deliveries_to(f, "a1", "h1"), 0);
	assert_int_equal(deliveries_to(f, "a2", "h1"), 1); /* the batch right after the add */
	assert_int_equal(deliveries_to(f, "a3", "h1"), 1);
	assert_int_equal(deliveries_to(f, "a4", "h1"), 0);
	assert_int_equal(deliveries_to(f, "a5", "h1"), 0);
	assert_int_equal(deliveries_to(f, "a5", "h2"), 1);

	/* a batch over two webhooks, then again once another instance began removing one */
	for (int round = 0; round < 2; round++) {
		if (round == 1)
			db_update(f, "UPDATE webhooks SET state = 'removing' WHERE id = 'w2'");
		char a[8], b[8];
		str_printf(a, sizeof a, "x%d", round);
		str_printf(b, sizeof b, "y%d", round);
		event *evs[2] = {suite_ev_new("w1", a, "t", "s", NULL, 0),
		                 suite_ev_new("w2", b, "t", "s", NULL, 0)};
		enum store_put r[2];
		assert_int_equal(store_events_put(st, evs, 2, r, &err), 0);
		assert_int_equal(r[0], STORE_PUT_NEW);
		assert_int_equal(r[1], round == 0 ? STORE_PUT_NEW : STORE_PUT_GONE);
		suite_ev_free(evs[0]);
		suite_ev_free(evs[1]);
	}
	assert_int_equal(db_value(f->db, "SELECT count(*) FROM events WHERE webhook_id = 'w2'"), 1);
	store_close(other);
}

/* Two instances (separate handles, separate pools) and several threads each
 * claim at once: SKIP LOCKED hands every delivery to exactly one claimer. */
struct claimer {
	store *st;
	int64_t claimed;
	int failures;
};

static void *claimer_main(void *arg)
{
	struct claimer *c = arg;
	int empty = 0;
	while (empty < 3) {
		delivery *d = NULL;
		size_t n = 0;
		th_error err = {0};
		if (store_delivery_claim(c->st, SUITE_ALL_KINDS, 7, 60000, &d, &n, &err) != 0) {
			c->failures++;
			break;
		}
		empty = n == 0 ? empty + 1 : 0;
		for (size_t i = 0; i < n; i++)
			if (store_delivery_finish(c->st, d[i].id, DELIVERY_DONE, 0, NULL, &err) !=
			    0)
				c->failures++;
		c->claimed += (int64_t)n;
		delivery_list_free(d, n);
	}
	return NULL;
}

static void test_pg_concurrent_claims(void **state)
{
	fx *f = *state;
	th_error err = {0};
	store *other = NULL;
	assert_int_equal(store_open(&other, f->base.url, &err), 0);
	suite_add_handler(f->base.st, "h1", HANDLER_EXEC, NULL, NULL, true);
	suite_add_handler(f->base.st, "h2", HANDLER_FORWARD, NULL, NULL, true);
	enum { N = 600 };
	static event *evs[N];
	enum store_put r[N];
	for (int i = 0; i < N; i++) {
		char wid[16], aid[16];
		str_printf(wid, sizeof wid, "w%d", i % 50); /* 50 webhooks: order rules apply too */
		str_printf(aid, sizeof aid, "a%d", i);
		evs[i] = suite_ev_new(wid, aid, "t", "s", NULL, 0);
	}
	assert_int_equal(suite_events_put(f->base.st, evs, N, r, &err), 0);
	enum { T = 6 };
	struct claimer cs[T];
	pthread_t th[T];
	for (int i = 0; i < T; i++) {
		cs[i] = (struct claimer){i % 2 ? other : f->base.st, 0, 0};
		assert_int_equal(pthread_create(&th[i], NULL, claimer_main, &cs[i]), 0);
	}
	int64_t total = 0;
	for (int i = 0; i < T; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(cs[i].failures, 0);
		total += cs[i].claimed;
	}
	assert_int_equal(total, 2 * N);
	/* each delivery ran exactly once: one attempt, done */
	assert_int_equal(db_value(f->db, "SELECT count(*) FROM deliveries WHERE status = 'done'"
	                                 " AND attempts = 1"),
	                 2 * N);
	assert_int_equal(db_value(f->db, "SELECT count(*) FROM deliveries"), 2 * N);
	/* both handles claimed something */
	assert_true(cs[0].claimed + cs[2].claimed + cs[4].claimed > 0);
	assert_true(cs[1].claimed + cs[3].claimed + cs[5].claimed > 0);
	for (int i = 0; i < N; i++)
		suite_ev_free(evs[i]);
	store_close(other);
}

/* Two instances store batches that share their events in opposite orders
 * (Trello retrying a delivery to both, each with its own batch): the inserts
 * wait for each other's duplicates, PostgreSQL aborts one transaction as a
 * deadlock (40P01), and the store tries that batch again. Every event is
 * stored once, and neither caller sees an error. */
enum { OVERLAP_ROUNDS = 12, OVERLAP_EVENTS = 300 };

struct overlapper {
	store *st;
	pthread_barrier_t *go;
	bool reversed;
	int failures, stored;
	char msg[200];
};

static void *overlapper_main(void *arg)
{
	struct overlapper *o = arg;
	for (int round = 0; round < OVERLAP_ROUNDS; round++) {
		event *evs[OVERLAP_EVENTS];
		enum store_put r[OVERLAP_EVENTS];
		for (int i = 0; i < OVERLAP_EVENTS; i++) {
			int k = o->reversed ? OVERLAP_EVENTS - 1 - i : i;
			char wid[16], aid[32];
			str_printf(wid, sizeof wid, "wO%d", k % 4);
			str_printf(aid, sizeof aid, "o%d-%d", round, k);
			evs[i] = suite_ev_new(wid, aid, "t", "s", NULL, 0);
		}
		th_error err = {0};
		pthread_barrier_wait(o->go);
		if (store_events_put(o->st, evs, OVERLAP_EVENTS, r, &err) != 0) {
			o->failures++;
			str_copy(o->msg, sizeof o->msg, err.msg);
		}
		for (int i = 0; i < OVERLAP_EVENTS; i++) {
			o->stored += r[i] == STORE_PUT_NEW;
			suite_ev_free(evs[i]);
		}
	}
	return NULL;
}

static void test_pg_overlapping_batches(void **state)
{
	fx *f = *state;
	th_error err = {0};
	/* a deadlock is found after deadlock_timeout (1 s by default): shorter
	 * for this database when the role may (the test only runs slower if not) */
	char sql[160];
	str_printf(sql, sizeof sql, "ALTER DATABASE %s SET deadlock_timeout = '50ms'", f->db);
	PGconn *ac = PQconnectdb(pgt.base);
	PQclear(PQexec(ac, sql));
	PQfinish(ac);
	store *a = NULL, *b = NULL;
	assert_int_equal(store_open(&a, f->base.url, &err), 0);
	assert_int_equal(store_open(&b, f->base.url, &err), 0);
	suite_add_handler(f->base.st, "h1", HANDLER_EXEC, NULL, NULL, true);
	for (int i = 0; i < 4; i++) {
		char wid[16], model[32];
		str_printf(wid, sizeof wid, "wO%d", i);
		str_printf(model, sizeof model, "6123456789abcdef0000a00%d", i);
		suite_add_webhook(f->base.st, wid, model, "tokO");
	}
	pthread_barrier_t go;
	assert_int_equal(pthread_barrier_init(&go, NULL, 2), 0);
	struct overlapper os[2] = {{.st = a, .go = &go, .reversed = false},
	                           {.st = b, .go = &go, .reversed = true}};
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, overlapper_main, &os[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&go);
	for (int i = 0; i < 2; i++)
		if (os[i].failures)
			fail_msg("instance %d: %d batches failed, last: %s", i, os[i].failures,
			         os[i].msg);
	int64_t total = (int64_t)OVERLAP_ROUNDS * OVERLAP_EVENTS;
	assert_int_equal(os[0].stored + os[1].stored, total);
	assert_int_equal(db_value(f->db, "SELECT count(*) FROM events"), total);
	assert_int_equal(db_value(f->db, "SELECT count(*) FROM deliveries"), total);
	assert_int_equal(db_value(f->db, "SELECT coalesce(sum(n), 0) FROM webhook_event_count"),
	                 total);
	assert_int_equal(db_value(f->db, "SELECT coalesce(sum(n), 0) FROM event_rollup_hour"),
	                 total);
	store_close(a);
	store_close(b);
}

/* Outcomes whose batch PostgreSQL aborts as a deadlock (40P01) with another
 * transaction are recorded anyway: the store runs the batch again. The other
 * transaction holds the second delivery's row; the store's batch updates the
 * first and waits for the second; then the other asks for the first. The
 * store's backends check for a deadlock 2 s after they begin to wait, the
 * other's only after 30 s (when the role may set it; else both after 1 s,
 * the default, and the store's still checks first), so the store's batch is
 * the one aborted. */
struct finisher {
	store *st;
	const delivery_outcome *outs;
	size_t n, changed;
	int ret;
	char msg[256];
};

static void *finisher_main(void *arg)
{
	struct finisher *fi = arg;
	th_error err = {0};
	fi->ret = store_delivery_finish_many(fi->st, fi->outs, fi->n, &fi->changed, &err);
	str_copy(fi->msg, sizeof fi->msg, err.msg);
	return NULL;
}

static void test_pg_finish_many_deadlock(void **state)
{
	fx *f = *state;
	th_error err = {0};
	char url[600], sql[300];
	str_printf(sql, sizeof sql, "ALTER DATABASE %s SET deadlock_timeout = '2s'", f->db);
	PGconn *ac = PQconnectdb(pgt.base);
	PQclear(PQexec(ac, sql));
	PQfinish(ac);
	store *st = NULL; /* connects after the setting */
	assert_int_equal(store_open(&st, f->base.url, &err), 0);
	suite_add_handler(st, "h1", HANDLER_EXEC, NULL, NULL, true);
	event *e[2] = {suite_ev_new("wA", "1", "t", "s", NULL, 0),
	               suite_ev_new("wB", "2", "t", "s", NULL, 0)};
	enum store_put r[2];
	assert_int_equal(suite_events_put(st, e, 2, r, &err), 0);
	delivery *d = NULL;
	size_t n = 0;
	assert_int_equal(store_delivery_claim(st, SUITE_ALL_KINDS, 10, 60000, &d, &n, &err), 0);
	assert_int_equal(n, 2);
	pg_url_with_db(url, sizeof url, pgt.base, f->db, "");
	PGconn *c = PQconnectdb(url);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	PQclear(PQexec(c, "SET deadlock_timeout = '30s'"));
	PQclear(PQexec(c, "BEGIN"));
	str_printf(sql, sizeof sql, "UPDATE deliveries SET updated_at = 1 WHERE id = '%s'",
	           d[1].id);
	PGresult *res = PQexec(c, sql);
	assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);

	delivery_outcome outs[2] = {{d[0].id, DELIVERY_DONE, 0, NULL, 1000, 1},
	                            {d[1].id, DELIVERY_DONE, 0, NULL, 1000, 1}};
	struct finisher fi = {.st = st, .outs = outs, .n = 2};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, finisher_main, &fi), 0);
	/* the batch waits for the second row */
	str_printf(sql, sizeof sql,
	           "SELECT count(*) FROM pg_stat_activity WHERE datname = '%s'"
	           " AND application_name = 'trellohook' AND wait_event_type = 'Lock'",
	           f->db);
	int64_t t0 = time_mono_ms();
	while (db_value(f->db, sql) == 0) {
		assert_true(time_mono_ms() - t0 < 10000);
		usleep(2000);
	}
	/* closes the cycle; this waits until the store's batch is aborted */
	str_printf(sql, sizeof sql, "UPDATE deliveries SET updated_at = 1 WHERE id = '%s'",
	           d[0].id);
	res = PQexec(c, sql);
	assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	PQclear(PQexec(c, "COMMIT"));
	PQfinish(c);
	pthread_join(th, NULL);
	if (fi.ret != 0)
		fail_msg("finish_many after a deadlock: %d %s", fi.ret, fi.msg);
	assert_int_equal(fi.changed, 2);
	assert_int_equal(db_value(f->db, "SELECT count(*) FROM deliveries WHERE status = 'done'"),
	                 2);
	delivery_list_free(d, n);
	for (int i = 0; i < 2; i++)
		suite_ev_free(e[i]);
	store_close(st);
}

/* A crashed instance: its claims stay running until the lease runs out, then
 * the other instance claims them again. */
static void test_pg_crashed_instance_lease(void **state)
{
	fx *f = *state;
	th_error err = {0};
	suite_add_handler(f->base.st, "h1", HANDLER_EXEC, NULL, NULL, true);
	event *e[3] = {suite_ev_new("wA", "1", "t", "s", NULL, 0),
	               suite_ev_new("wB", "2", "t", "s", NULL, 0),
	               suite_ev_new("wC", "3", "t", "s", NULL, 0)};
	enum store_put r[3];
	assert_int_equal(suite_events_put(f->base.st, e, 3, r, &err), 0);
	store *crashing = NULL;
	assert_int_equal(store_open(&crashing, f->base.url, &err), 0);
	delivery *d = NULL;
	size_t n = 0;
	assert_int_equal(store_delivery_claim(crashing, SUITE_ALL_KINDS, 2, 200, &d, &n, &err), 0);
	assert_int_equal(n, 2);
	delivery_list_free(d, n);
	store_close(crashing); /* gone without finishing */
	assert_int_equal(store_delivery_claim(f->base.st, SUITE_ALL_KINDS, 10, 60000, &d, &n, &err),
	                 0);
	assert_int_equal(n, 1); /* only the unclaimed one */
	assert_string_equal(d[0].event_id, e[2]->id);
	delivery_list_free(d, n);
	usleep(300 * 1000);
	assert_int_equal(store_delivery_claim(f->base.st, SUITE_ALL_KINDS, 10, 60000, &d, &n, &err),
	                 0);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(d[i].attempts, 2);
	delivery_list_free(d, n);
	for (int i = 0; i < 3; i++)
		suite_ev_free(e[i]);
}

/* ---- the claim against the query it replaced ------------------------------------------ */

/* The claim query before schema 10 (one walk of the whole queue), with the
 * tie order the claim now makes explicit (seq): what the bounded claim must
 * return, row for row. */
static const char OLD_CLAIM[] =
    "SELECT d.id FROM deliveries d JOIN handlers h ON h.id = d.handler_id"
    " WHERE d.status IN ('pending', 'running', 'failed')"
    "   AND ((d.status IN ('pending', 'failed') AND d.next_attempt_at <= $1)"
    "        OR (d.status = 'running' AND d.claimed_until < $1))"
    "   AND h.enabled"
    "   AND (($2::bigint >> (CASE h.kind WHEN 'exec' THEN 0 WHEN 'forward' THEN 1"
    "                         WHEN 'func' THEN 2 ELSE 62 END)) & 1) = 1"
    "   AND NOT EXISTS (SELECT 1 FROM deliveries p"
    "        WHERE p.webhook_id = d.webhook_id AND p.handler_id = d.handler_id"
    "          AND p.event_seq < d.event_seq"
    "          AND p.status IN ('pending', 'running', 'failed'))"
    " ORDER BY d.event_seq, d.generation, d.seq LIMIT $3";

/* Run @sql with text parameters on @c; the result (the caller clears it). */
static PGresult *pg_run(PGconn *c, const char *sql, int n, const char *const *vals)
{
	PGresult *r = PQexecParams(c, sql, n, NULL, vals, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		fail_msg("%.80s: %s", sql, PQerrorMessage(c));
	return r;
}

/* Random states (a hash of the id and @salt) for every delivery (@all) or
 * about one in eight, and every handler enabled or not (@all). */
static void pg_scramble(PGconn *c, int salt, bool all)
{
	char s[16], far[32];
	str_printf(s, sizeof s, "%d", salt);
	str_printf(far, sizeof far, "%lld", (long long)(time_now_ms() + 1000000000));
	const char *v[] = {s, far, all ? "true" : "false"};
	PQclear(pg_run(c,
	               "UPDATE deliveries SET status = (ARRAY['pending', 'pending', 'pending',"
	               " 'pending', 'failed', 'failed', 'running', 'running', 'done', 'dead'])"
	               "[1 + abs(hashtext(id || $1)) % 10],"
	               " next_attempt_at = CASE WHEN abs(hashtext(id || $1 || 'n')) % 3 = 0"
	               "   THEN $2::bigint ELSE 0 END,"
	               " claimed_until = CASE WHEN abs(hashtext(id || $1 || 'l')) % 2 = 0"
	               "   THEN $2::bigint ELSE 1 END"
	               " WHERE $3::boolean OR abs(hashtext(id || $1 || 'p')) % 8 = 0",
	               3, v));
	if (salt % 3 == 0)
		PQclear(pg_run(c, "UPDATE handlers SET enabled = abs(hashtext(id || $1)) % 4 <> 0",
		               1, v));
}

/* suite_old_claim_fn: the old query's ids into @out ("id,id,...") */
static void pg_old_claim(void *ctx, int64_t now, unsigned kinds, int limit, buf *out)
{
	char snow[32], skinds[16], slimit[16];
	str_printf(snow, sizeof snow, "%lld", (long long)now);
	str_printf(skinds, sizeof skinds, "%u", kinds);
	str_printf(slimit, sizeof slimit, "%d", limit);
	const char *v[] = {snow, skinds, slimit};
	PGresult *res = pg_run(ctx, OLD_CLAIM, 3, v);
	for (int i = 0; i < PQntuples(res); i++)
		assert_int_equal(buf_printf(out, "%s,", PQgetvalue(res, i, 0)), 0);
	PQclear(res);
}

/* suite_scramble_fn: every delivery's state at first, then some */
static void pg_claim_scramble(void *ctx, int round)
{
	pg_scramble(ctx, round < 0 ? 0 : round, round < 0);
}

/* Random queues (blocked chains, disabled handlers, kinds out of the mask,
 * replays, leases running or over), longer than the claim's window: every
 * claim returns exactly the rows, in the order, of the old full walk. */
static void test_pg_claim_same_as_full_walk(void **state)
{
	fx *f = *state;
	enum { EVENTS = 400 };
	event *evs[EVENTS];
	suite_claim_random_queue(f->base.st, evs, EVENTS);
	char url[600];
	pg_url_with_db(url, sizeof url, pgt.base, f->db, "");
	PGconn *c = PQconnectdb(url);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	suite_claim_compare(f->base.st, pg_old_claim, pg_claim_scramble, c);
	PQfinish(c);
	for (int i = 0; i < EVENTS; i++)
		suite_ev_free(evs[i]);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)

int main(void)
{
	suite_child_main(); /* returns unless started as a test's child */
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pg_open_errors),
	    T(test_pg_migrations),
	    cmocka_unit_test(test_pg_concurrent_migrations),
	    STORE_SUITE_TESTS(fx_setup, fx_teardown),
	    T(test_pg_non_utf8_fields),
	    cmocka_unit_test(test_pg_pool),
	    cmocka_unit_test(test_pg_statement_timeout),
	    T(test_pg_reconnect),
	    T(test_pg_payload_lz4),
	    T(test_pg_batch_sees_changes_elsewhere),
	    T(test_pg_concurrent_claims),
	    T(test_pg_claim_same_as_full_walk),
	    T(test_pg_overlapping_batches),
	    T(test_pg_finish_many_deadlock),
	    T(test_pg_crashed_instance_lease),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
