/* Unit tests of the PostgreSQL store on a real server: the same constraints
 * as the SQLite suite (test_store.c — the shared cases below are ported from
 * it and run unchanged against PostgreSQL), plus what only PostgreSQL has:
 * migrations under an advisory lock by several processes at once, the
 * connection pool and its settings, reconnecting after the server restarts,
 * statement timeouts, and FOR UPDATE SKIP LOCKED claims by concurrent
 * claimers on separate handles.
 *
 * The server: TH_TEST_PG_URL when set (a role allowed to CREATE DATABASE),
 * else a throwaway cluster started here with scripts/pg.sh (TH_PG_SCRIPT).
 * Every test gets a fresh database. When the PostgreSQL server binaries are
 * missing and no URL is given, every test is skipped with a loud message. */
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

/* ---- the server (one per test binary) ----------------------------------------------------- */

/* Set up once in group_setup, read-only afterwards. */
static struct {
	bool skip;             /* no server: every test skips */
	bool own;              /* we started the cluster (so we may restart it) */
	char dir[64];          /* the cluster's directory when own */
	char script[512];      /* scripts/pg.sh */
	char base[512];        /* URL of the maintenance database */
	int counter;
} pgt;

/* @base with its database name replaced by @db (and extra query @q, may be ""). */
static void url_with_db(char *out, size_t size, const char *base, const char *db, const char *q)
{
	const char *hostpart = strstr(base, "://");
	hostpart = hostpart ? hostpart + 3 : base;
	const char *slash = strchr(hostpart, '/');
	const char *query = strchr(base, '?');
	size_t keep = slash ? (size_t)(slash - base) : (query ? (size_t)(query - base) : strlen(base));
	char extra[256] = "";
	if (query && *q)
		str_printf(extra, sizeof extra, "%s&%s", query, q);
	else if (query)
		str_copy(extra, sizeof extra, query);
	else if (*q)
		str_printf(extra, sizeof extra, "?%s", q);
	str_printf(out, size, "%.*s/%s%s", (int)keep, base, db, extra);
}

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
	url_with_db(url, sizeof url, pgt.base, db, "");
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
	const char *url = getenv("TH_TEST_PG_URL");
	if (url && *url) {
		str_copy(pgt.base, sizeof pgt.base, url);
		return 0;
	}
	const char *script = getenv("TH_PG_SCRIPT");
	if (script && *script) {
		str_copy(pgt.script, sizeof pgt.script, script);
	} else {
		const char *data = getenv("TH_TEST_DATA");
		str_printf(pgt.script, sizeof pgt.script, "%s/../../scripts/pg.sh", data ? data : "tests/data");
	}
	char cmd[700];
	str_printf(cmd, sizeof cmd, "'%s' available", pgt.script);
	if (system(cmd) != 0) {
		fprintf(stderr,
		        "\n*** SKIPPING THE POSTGRESQL STORE TESTS: no PostgreSQL server binaries and no\n"
		        "*** TH_TEST_PG_URL. Install the 'postgresql' package (make deps-test) to run them.\n\n");
		pgt.skip = true;
		return 0;
	}
	str_copy(pgt.dir, sizeof pgt.dir, "/tmp/th-pgtest-XXXXXX");
	if (!mkdtemp(pgt.dir))
		return -1;
	str_printf(cmd, sizeof cmd, "'%s' start '%s'", pgt.script, pgt.dir);
	FILE *p = popen(cmd, "r");
	if (!p)
		return -1;
	char line[512] = "";
	char *got = fgets(line, sizeof line, p);
	int rc = pclose(p);
	if (!got || rc != 0) {
		fprintf(stderr, "pg.sh start failed (%d)\n", rc);
		return -1;
	}
	line[strcspn(line, "\r\n")] = '\0';
	str_copy(pgt.base, sizeof pgt.base, line);
	pgt.own = true;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	if (pgt.own) {
		char cmd[700];
		str_printf(cmd, sizeof cmd, "'%s' stop '%s'", pgt.script, pgt.dir);
		if (system(cmd) != 0)
			fprintf(stderr, "pg.sh stop failed\n");
	}
	return 0;
}

/* ---- fixtures ------------------------------------------------------------------------------- */

typedef struct fx {
	char db[64];
	char url[600];
	store *st;
} fx;

/* A fresh empty database; its URL (with @query) in @f->url. */
static void fresh_db(fx *f, const char *query)
{
	char sql[160];
	str_printf(f->db, sizeof f->db, "th_test_%d_%d", (int)getpid(), ++pgt.counter);
	str_printf(sql, sizeof sql, "CREATE DATABASE %s", f->db);
	admin_exec(sql);
	url_with_db(f->url, sizeof f->url, pgt.base, f->db, query);
}

static int fx_setup(void **state)
{
	if (pgt.skip) {
		*state = NULL;
		return 0;
	}
	fx *f = calloc(1, sizeof *f);
	if (!f)
		return -1;
	fresh_db(f, "");
	th_error err = {0};
	if (store_open(&f->st, f->url, &err) != 0) {
		fprintf(stderr, "store_open: %s\n", err.msg);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	fx *f = *state;
	if (!f)
		return 0;
	store_close(f->st);
	char sql[160];
	str_printf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", f->db);
	admin_exec(sql);
	free(f);
	return 0;
}

#define NEED_PG()                                                                              \
	do {                                                                                       \
		if (pgt.skip)                                                                          \
			skip();                                                                            \
	} while (0)

/* A hand-built event (the store's input); free with ev_free(). */
static event *ev_new(const char *webhook_id, const char *action_id, const char *type,
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

static void ev_free(event *ev)
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

/* Store one event; returns what happened. */
static enum store_put put1(store *st, event *ev)
{
	enum store_put r;
	th_error err = {0};
	int rc = st->ops->events_put(st, &ev, 1, &r, &err);
	if (rc != 0)
		fail_msg("events_put: %s", err.msg);
	return r;
}

static void add_webhook(store *st, const char *id, const char *model, const char *tok)
{
	webhook w = {0};
	w.id = (char *)id;
	w.id_model = (char *)model;
	w.callback_url = (char *)"https://example.test/callbacks/x";
	w.token = (char *)tok;
	w.state = WEBHOOK_ACTIVE;
	th_error err = {0};
	int rc = st->ops->webhook_insert(st, &w, &err);
	if (rc != 0)
		fail_msg("webhook_insert: %s", err.msg);
}

static void add_handler(store *st, const char *id, enum handler_kind kind, const char *on,
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
	int rc = st->ops->handler_insert(st, &h, &err);
	if (rc != 0)
		fail_msg("handler_insert: %s", err.msg);
}

/* Number of deliveries of @event_id (any status) to @handler_id. */
static int count_deliveries(store *st, const char *event_id, const char *handler_id)
{
	delivery *d = NULL;
	size_t n = 0;
	th_error err = {0};
	assert_int_equal(st->ops->delivery_list(st, NULL, event_id, 1000, &d, &n, &err), 0);
	int c = 0;
	for (size_t i = 0; i < n; i++)
		if (!handler_id || str_eq(d[i].handler_id, handler_id))
			c++;
	delivery_list_free(d, n);
	return c;
}

static const unsigned ALL_KINDS = (1u << HANDLER_EXEC) | (1u << HANDLER_FORWARD) | (1u << HANDLER_FUNC);

/* Claim and return the ids as one string "e1,e2" of event ids (for order checks). */
static void claim_events(store *st, unsigned kinds, size_t max, int64_t lease, char *out,
                         size_t outsz, delivery **keep, size_t *nkeep)
{
	delivery *d = NULL;
	size_t n = 0;
	th_error err = {0};
	int rc = st->ops->delivery_claim(st, kinds, max, lease, &d, &n, &err);
	if (rc != 0)
		fail_msg("delivery_claim: %s", err.msg);
	out[0] = '\0';
	buf b;
	buf_init(&b, outsz - 1);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(d[i].status, DELIVERY_RUNNING);
		assert_true(d[i].attempts >= 1);
		assert_int_equal(buf_printf(&b, "%s%s/%s", i ? "," : "", d[i].event_id, d[i].handler_id), 0);
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

static void test_webhook_crud(void **state)
{
	NEED_PG();
	fx *f = *state;
	store *st = f->st;
	th_error err = {0};
	const char *tok = "ATTAtoken1111111111111111111111111111";
	add_webhook(st, "wh1", "6123456789abcdef01234567", tok);

	webhook w = {0};
	assert_int_equal(st->ops->webhook_get(st, "wh1", &w, &err), 0);
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
	assert_int_equal(st->ops->webhook_update(st, &w, &err), 0);
	webhook_clear(&w);
	assert_int_equal(st->ops->webhook_find(st, "6123456789abcdef01234567", tok, &w, &err), 0);
	assert_string_equal(w.trello_id, "7000000000000000000000aa");
	assert_string_equal(w.description, "Roadmap \"quoted\" <b>");
	assert_int_equal(w.state, WEBHOOK_NEEDS_TOKEN);
	assert_true(w.active);
	assert_int_equal(w.consecutive_failures, 3);
	assert_int_equal(w.first_consecutive_fail_at, 1234);
	webhook_clear(&w);

	/* uniqueness: same (model, token) under another id; same id */
	webhook d = {.id = (char *)"wh2", .id_model = (char *)"6123456789abcdef01234567",
	             .callback_url = (char *)"https://x/callbacks/wh2", .token = (char *)tok};
	assert_int_equal(st->ops->webhook_insert(st, &d, &err), TH_EEXISTS);
	assert_non_null(strstr(err.msg, "6123456789abcdef01234567"));
	assert_non_null(strstr(err.msg, "already exists"));
	assert_null(strstr(err.msg, tok)); /* never the token */
	d.id = (char *)"wh1";
	d.id_model = (char *)"6123456789abcdef0123ffff";
	assert_int_equal(st->ops->webhook_insert(st, &d, &err), TH_EEXISTS);
	assert_non_null(strstr(err.msg, "wh1"));
	/* same model, another token: fine */
	add_webhook(st, "wh2", "6123456789abcdef01234567", "ATTAother");
	/* updating wh2 onto wh1's (model, token) hits the rule too */
	assert_int_equal(st->ops->webhook_get(st, "wh2", &w, &err), 0);
	free(w.token);
	w.token = str_dup(tok);
	assert_int_equal(st->ops->webhook_update(st, &w, &err), TH_EEXISTS);
	webhook_clear(&w);
	/* required fields */
	webhook bad = {.id = (char *)"wh3", .id_model = (char *)"m"};
	assert_int_equal(st->ops->webhook_insert(st, &bad, &err), TH_EINVAL);

	webhook *list = NULL;
	size_t n = 0;
	assert_int_equal(st->ops->webhook_list(st, &list, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].id, "wh1");
	assert_string_equal(list[1].id, "wh2");
	webhook_list_free(list, n);

	/* not found */
	assert_int_equal(st->ops->webhook_get(st, "nope", &w, &err), TH_ENOTFOUND);
	assert_string_equal(err.msg, "no webhook with id nope");
	assert_int_equal(st->ops->webhook_find(st, "6123456789abcdef01234567", "ATTAx", &w, &err),
	                 TH_ENOTFOUND);
	webhook ghost = {.id = (char *)"ghost", .id_model = (char *)"m", .callback_url = (char *)"u",
	                 .token = (char *)"t"};
	assert_int_equal(st->ops->webhook_update(st, &ghost, &err), TH_ENOTFOUND);
	assert_int_equal(st->ops->webhook_delete(st, "wh2", &err), 0);
	assert_int_equal(st->ops->webhook_delete(st, "wh2", &err), TH_ENOTFOUND);
	assert_string_equal(err.msg, "no webhook with id wh2");

	/* hostile ids are data, not SQL */
	add_webhook(st, "x'); DROP TABLE webhooks; --", "m2", "t2");
	assert_int_equal(st->ops->webhook_get(st, "x'); DROP TABLE webhooks; --", &w, &err), 0);
	webhook_clear(&w);
	assert_int_equal(st->ops->webhook_get(st, "wh1", &w, &err), 0);
	webhook_clear(&w);
}

static void test_token_crud(void **state)
{
	NEED_PG();
	fx *f = *state;
	store *st = f->st;
	th_error err = {0};
	token t = {.token = (char *)"ATTAabc", .member = (char *)"zoe", .expires_at = 99,
	           .state = TOKEN_VALID, .checked_at = 5};
	assert_int_equal(st->ops->token_put(st, &t, &err), 0);
	token g = {0};
	assert_int_equal(st->ops->token_get(st, "ATTAabc", &g, &err), 0);
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
	assert_int_equal(st->ops->token_put(st, &t, &err), 0);
	assert_int_equal(st->ops->token_get(st, "ATTAabc", &g, &err), 0);
	assert_int_equal(g.state, TOKEN_EXPIRED);
	assert_null(g.member);
	assert_int_equal(g.created_at, created);
	token_clear(&g);
	token t2 = {.token = (char *)"ATTAdef"};
	assert_int_equal(st->ops->token_put(st, &t2, &err), 0);
	token *list = NULL;
	size_t n = 0;
	assert_int_equal(st->ops->token_list(st, &list, &n, &err), 0);
	assert_int_equal(n, 2);
	token_list_free(list, n);
	assert_int_equal(st->ops->token_delete(st, "ATTAabc", &err), 0);
	assert_int_equal(st->ops->token_delete(st, "ATTAabc", &err), TH_ENOTFOUND);
	assert_null(strstr(err.msg, "ATTAabc")); /* tokens are not echoed */
	assert_int_equal(st->ops->token_get(st, "ATTAabc", &g, &err), TH_ENOTFOUND);
	token empty = {0};
	assert_int_equal(st->ops->token_put(st, &empty, &err), TH_EINVAL);
}

static void test_handler_crud(void **state)
{
	NEED_PG();
	fx *f = *state;
	store *st = f->st;
	th_error err = {0};
	handler h = {.id = (char *)"h1", .kind = HANDLER_FORWARD, .target = (char *)"http://127.0.0.1:1/x",
	             .on = (char *)"commentCard,updateCard:idList", .secret = (char *)"whsec_abc",
	             .enabled = true};
	assert_int_equal(st->ops->handler_insert(st, &h, &err), 0);
	assert_int_equal(st->ops->handler_insert(st, &h, &err), TH_EEXISTS);
	assert_non_null(strstr(err.msg, "h1"));
	handler g = {0};
	assert_int_equal(st->ops->handler_get(st, "h1", &g, &err), 0);
	assert_int_equal(g.kind, HANDLER_FORWARD);
	assert_string_equal(g.target, "http://127.0.0.1:1/x");
	assert_string_equal(g.on, "commentCard,updateCard:idList");
	assert_null(g.model);
	assert_string_equal(g.secret, "whsec_abc");
	assert_true(g.enabled);
	handler_clear(&g);
	assert_int_equal(st->ops->handler_set_enabled(st, "h1", false, &err), 0);
	assert_int_equal(st->ops->handler_get(st, "h1", &g, &err), 0);
	assert_false(g.enabled);
	handler_clear(&g);
	assert_int_equal(st->ops->handler_set_enabled(st, "zz", true, &err), TH_ENOTFOUND);
	add_handler(st, "h2", HANDLER_FUNC, NULL, "b0000000000000000000000b", true);
	handler *list = NULL;
	size_t n = 0;
	assert_int_equal(st->ops->handler_list(st, &list, &n, &err), 0);
	assert_int_equal(n, 2);
	handler_list_free(list, n);
	assert_int_equal(st->ops->handler_delete(st, "h1", &err), 0);
	assert_int_equal(st->ops->handler_delete(st, "h1", &err), TH_ENOTFOUND);
	assert_string_equal(err.msg, "no handler with id h1");
	assert_int_equal(st->ops->handler_get(st, "h1", &g, &err), TH_ENOTFOUND);
}

static void test_users_sessions(void **state)
{
	NEED_PG();
	fx *f = *state;
	store *st = f->st;
	th_error err = {0};
	char *hash = NULL;
	assert_int_equal(st->ops->user_get_hash(st, "admin", &hash, &err), TH_ENOTFOUND);
	assert_null(hash);
	assert_int_equal(st->ops->user_put(st, "admin", "$argon2id$v=19$one", &err), 0);
	assert_int_equal(st->ops->user_get_hash(st, "admin", &hash, &err), 0);
	assert_string_equal(hash, "$argon2id$v=19$one");
	free(hash);
	assert_int_equal(st->ops->user_put(st, "admin", "$argon2id$v=19$two", &err), 0);
	assert_int_equal(st->ops->user_get_hash(st, "admin", &hash, &err), 0);
	assert_string_equal(hash, "$argon2id$v=19$two");
	free(hash);

	int64_t later = time_now_ms() + 3600000;
	user_session s = {.id_hash = (char *)"aa11", .user = (char *)"admin", .csrf = (char *)"c1",
	                  .expires_at = later};
	assert_int_equal(st->ops->session_put(st, &s, &err), 0);
	user_session g = {0};
	assert_int_equal(st->ops->session_get(st, "aa11", &g, &err), 0);
	assert_string_equal(g.user, "admin");
	assert_string_equal(g.csrf, "c1");
	assert_int_equal(g.expires_at, later);
	user_session_clear(&g);
	/* a session for nobody is refused */
	user_session bad = {.id_hash = (char *)"bb", .user = (char *)"ghost", .csrf = (char *)"c",
	                    .expires_at = later};
	assert_int_equal(st->ops->session_put(st, &bad, &err), TH_ENOTFOUND);
	/* expired sessions are purged when a new one is stored */
	user_session old = {.id_hash = (char *)"old", .user = (char *)"admin", .csrf = (char *)"c",
	                    .expires_at = 1};
	assert_int_equal(st->ops->session_put(st, &old, &err), 0);
	assert_int_equal(st->ops->session_get(st, "old", &g, &err), 0);
	user_session_clear(&g);
	s.id_hash = (char *)"cc22";
	assert_int_equal(st->ops->session_put(st, &s, &err), 0);
	assert_int_equal(st->ops->session_get(st, "old", &g, &err), TH_ENOTFOUND);
	assert_int_equal(st->ops->session_delete(st, "aa11", &err), 0);
	assert_int_equal(st->ops->session_delete(st, "aa11", &err), TH_ENOTFOUND);
	assert_int_equal(st->ops->session_get(st, "aa11", &g, &err), TH_ENOTFOUND);
}

/* ---- events ---------------------------------------------------------------------------- */

static void test_events_dedupe(void **state)
{
	NEED_PG();
	fx *f = *state;
	store *st = f->st;
	th_error err = {0};
	add_webhook(st, "w1", "b0000000000000000000000b", "t");
	event *evs[4] = {
	    ev_new("w1", "a1", "commentCard", "one", NULL, 0),
	    ev_new("w1", "a2", "commentCard", "two", NULL, 0),
	    ev_new("w1", "a1", "commentCard", "one again", NULL, 0), /* dup in the same batch */
	    ev_new("w2", "a1", "commentCard", "other webhook", NULL, 0), /* same action, other webhook */
	};
	enum store_put r[4];
	assert_int_equal(st->ops->events_put(st, evs, 4, r, &err), 0);
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
	event *again = ev_new("w1", "a2", "commentCard", "two again", NULL, 0);
	assert_int_equal(put1(st, again), STORE_PUT_DUPLICATE);
	ev_free(again);

	event_query q = {.webhook_id = "w1"};
	event_row *rows = NULL;
	size_t n = 0;
	assert_int_equal(st->ops->event_list(st, &q, &rows, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(rows[0].ev.summary, "two"); /* newest first */
	assert_string_equal(rows[1].ev.summary, "one");
	assert_true(rows[0].seq > rows[1].seq);
	assert_null(rows[0].ev.payload);
	event_row_list_free(rows, n);

	webhook w = {0};
	assert_int_equal(st->ops->webhook_get(st, "w1", &w, &err), 0);
	assert_int_equal(w.event_count, 2);
	assert_int_equal(w.last_event_at, evs[1]->received_at);
	webhook_clear(&w);

	/* an event without its keys fails alone; the rest are stored */
	event *bad = ev_new("w1", "a9", "commentCard", "bad", NULL, 0);
	free(bad->action_id);
	bad->action_id = NULL;
	event *good = ev_new("w1", "a10", "commentCard", "good", NULL, 0);
	event *mix[2] = {bad, good};
	assert_int_equal(st->ops->events_put(st, mix, 2, r, &err), 0);
	assert_int_equal(r[0], STORE_PUT_FAILED);
	assert_int_equal(r[1], STORE_PUT_NEW);
	ev_free(bad);
	ev_free(good);

	/* a batch whose transaction fails stores nothing: here the second event
	 * reuses the id of a stored one (a rule ON CONFLICT does not cover) */
	event *fresh = ev_new("w1", "a20", "commentCard", "fresh", NULL, 0);
	event *clash = ev_new("w1", "a21", "commentCard", "clash", NULL, 0);
	clash->id = str_dup(evs[0]->id);
	event *batch[2] = {fresh, clash};
	assert_int_equal(st->ops->events_put(st, batch, 2, r, &err), TH_ESTORE);
	assert_int_equal(r[0], STORE_PUT_FAILED);
	assert_int_equal(r[1], STORE_PUT_FAILED);
	assert_null(fresh->id); /* the id made up for it is taken back */
	assert_int_equal(fresh->received_at, 0);
	assert_string_equal(clash->id, evs[0]->id); /* the caller's own id is kept */
	free(clash->id);
	clash->id = NULL;
	assert_int_equal(st->ops->events_put(st, batch, 2, r, &err), 0); /* nothing half-stored */
	assert_int_equal(r[0], STORE_PUT_NEW);
	assert_int_equal(r[1], STORE_PUT_NEW);
	assert_int_equal(st->ops->events_put(st, batch, 0, r, &err), 0);
	ev_free(fresh);
	ev_free(clash);
	for (size_t i = 0; i < 4; i++)
		ev_free(evs[i]);
}

static void test_events_survive_webhook_delete(void **state)
{
	NEED_PG();
	fx *f = *state;
	store *st = f->st;
	th_error err = {0};
	add_webhook(st, "w1", "b0000000000000000000000b", "t");
	event *ev = ev_new("w1", "a1", "createCard", "made", NULL, 0);
	assert_int_equal(put1(st, ev), STORE_PUT_NEW);
	assert_int_equal(st->ops->webhook_delete(st, "w1", &err), 0);
	event got = {0};
	assert_int_equal(st->ops->event_get(st, ev->id, &got, &err), 0);
	assert_string_equal(got.webhook_id, "w1");
	event_clear(&got);
	/* and events for a webhook that has no row can still be stored */
	event *ev2 = ev_new("w1", "a2", "createCard", "late", NULL, 0);
	assert_int_equal(put1(st, ev2), STORE_PUT_NEW);
	ev_free(ev);
	ev_free(ev2);
}

static void test_payload_bytes_exact(void **state)
{
	NEED_PG();
	fx *f = *state;
	store *st = f->st;
	th_error err = {0};
	static const char nul[] = "{\"a\":\"x\0y\"}\0tail";
	static const char bad_utf8[] = "{\"n\":\"\xff\xfe\xc0\xaf\xed\xa0\x80\"}";
	static const char html[] = "{\"t\":\"<script>alert('x')</script>&amp;\\u0000 \xe2\x80\xae\"}";
	struct {
		const char *p;
		size_t len;
	} cases[] = {{nul, sizeof nul - 1}, {bad_utf8, sizeof bad_utf8 - 1}, {html, sizeof html - 1}};
	unsigned char all[256];
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	for (size_t i = 0; i < TH_ARRAY_LEN(cases) + 1; i++) {
		const char *p = i < TH_ARRAY_LEN(cases) ? cases[i].p : (const char *)all;
		size_t len = i < TH_ARRAY_LEN(cases) ? cases[i].len : sizeof all;
		char aid[16];
		str_printf(aid, sizeof aid, "a%zu", i);
		event *ev = ev_new("w1", aid, "x", "s", p, len);
		assert_int_equal(put1(st, ev), STORE_PUT_NEW);
		event got = {0};
		assert_int_equal(st->ops->event_get(st, ev->id, &got, &err), 0);
		assert_int_equal(got.payload_len, len);
		assert_memory_equal(got.payload, p, len);
		assert_int_equal(got.payload[len], '\0');
		assert_string_equal(got.action_id, aid);
		assert_int_equal(got.received_at, ev->received_at);
		event_clear(&got);
		ev_free(ev);
	}
	event got = {0};
	assert_int_equal(st->ops->event_get(st, "missing", &got, &err), TH_ENOTFOUND);
	assert_string_equal(err.msg, "no event with id missing");
}

static void test_event_list_filters(void **state)
{
	NEED_PG();
	fx *f = *state;
	store *st = f->st;
	th_error err = {0};
	const char *summaries[] = {"Zoë moved card", "100% done", "a_b here", "axb there",
	                           "A%B literal", "plain \\ backslash", "MIXED case Word"};
	enum { N = 40 };
	event *evs[N];
	for (int i = 0; i < N; i++) {
		char aid[16];
		str_printf(aid, sizeof aid, "act%02d", i);
		evs[i] = ev_new(i % 2 ? "wB" : "wA", aid, i % 3 ? "updateCard" : "commentCard",
		                summaries[i % TH_ARRAY_LEN(summaries)], NULL, 0);
	}
	enum store_put r[N];
	assert_int_equal(st->ops->events_put(st, evs, N, r, &err), 0);

	event_row *rows = NULL;
	size_t n = 0;
	event_query q = {0};
	assert_int_equal(st->ops->event_list(st, &q, &rows, &n, &err), 0);
	assert_int_equal(n, N);
	for (size_t i = 1; i < n; i++)
		assert_true(rows[i - 1].seq > rows[i].seq);
	event_row_list_free(rows, n);

	q = (event_query){.webhook_id = "wA", .action_type = "commentCard"};
	assert_int_equal(st->ops->event_list(st, &q, &rows, &n, &err), 0);
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
	} texts[] = {{"%", NULL}, {"_", "a_b here"}, {"a_b", "a_b here"}, {"a%b", "A%B literal"},
	             {"mixed CASE", "MIXED case Word"}, {"\\", "plain \\ backslash"}};
	for (size_t t = 0; t < TH_ARRAY_LEN(texts); t++) {
		q = (event_query){.text = texts[t].text, .limit = 1000};
		assert_int_equal(st->ops->event_list(st, &q, &rows, &n, &err), 0);
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
	assert_int_equal(st->ops->event_list(st, &q, &rows, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_null(rows);

	/* paging newest first with before_seq */
	int64_t seen = 0, before = 0;
	for (;;) {
		q = (event_query){.limit = 7, .before_seq = before};
		assert_int_equal(st->ops->event_list(st, &q, &rows, &n, &err), 0);
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
	assert_int_equal(st->ops->event_list(st, &q, &rows, &n, &err), 0);
	assert_int_equal(n, 5);
	assert_int_equal(rows[0].seq, before + 35);
	assert_true(rows[0].seq < rows[1].seq);
	event_row_list_free(rows, n);
	/* the limit is capped */
	q = (event_query){.limit = 5000000};
	assert_int_equal(st->ops->event_list(st, &q, &rows, &n, &err), 0);
	assert_int_equal(n, N);
	event_row_list_free(rows, n);
	for (int i = 0; i < N; i++)
		ev_free(evs[i]);
}

/* ---- deliveries --------------------------------------------------------------------------- */

static void test_deliveries_for_matching_handlers(void **state)
{
	NEED_PG();
	fx *f = *state;
	store *st = f->st;
	add_handler(st, "all", HANDLER_EXEC, NULL, NULL, true);
	add_handler(st, "comments", HANDLER_EXEC, "commentCard", NULL, true);
	add_handler(st, "moves", HANDLER_FORWARD, " addLabelToCard , updateCard:idList ", NULL, true);
	add_handler(st, "off", HANDLER_EXEC, NULL, NULL, false);
	add_handler(st, "otherboard", HANDLER_EXEC, NULL, "ffffffffffffffffffffffff", true);
	add_handler(st, "thisboard", HANDLER_FUNC, NULL, "6123456789abcdef01234567", true);
	add_handler(st, "renames", HANDLER_FUNC, "updateCard:name", NULL, true);

	event *move = ev_from_file("updateCard-moveList.json", "w1");
	event *rename = ev_from_file("updateCard-rename.json", "w1");
	event *comment = ev_from_file("commentCard.json", "w1");
	/* the same move without a parsed tree: the store parses the payload */
	event *move_raw = ev_new("w1", "raw-move", "updateCard", "s", move->payload, move->payload_len);
	event *rename_raw = ev_new("w1", "raw-rename", "updateCard", "s", rename->payload,
	                           rename->payload_len);
	event *evs[] = {move, rename, comment, move_raw, rename_raw};
	enum store_put r[5];
	th_error err = {0};
	assert_int_equal(st->ops->events_put(st, evs, 5, r, &err), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(r[i], STORE_PUT_NEW);

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
	assert_int_equal(st->ops->delivery_list(st, "pending", NULL, 0, &d, &n, &err), 0);
	/* move: all, moves, thisboard; rename: all, thisboard; comment: all, comments,
	 * thisboard; move_raw: all, moves; rename_raw: all */
	assert_int_equal(n, 3 + 2 + 3 + 2 + 1 + 2); /* + renames: rename, rename_raw */
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(d[i].status, DELIVERY_PENDING);
		assert_int_equal(d[i].attempts, 0);
		assert_true(d[i].next_attempt_at > 0);
	}
	delivery_list_free(d, n);
	assert_int_equal(st->ops->delivery_list(st, "bogus", NULL, 0, &d, &n, &err), TH_EINVAL);
	for (size_t i = 0; i < TH_ARRAY_LEN(evs); i++)
		ev_free(evs[i]);
}

static void test_claim_order(void **state)
{
	NEED_PG();
	fx *f = *state;
	store *st = f->st;
	add_handler(st, "h1", HANDLER_EXEC, NULL, NULL, true);
	add_handler(st, "h2", HANDLER_FORWARD, NULL, NULL, true);
	event *e[4] = {ev_new("wA", "1", "t", "s", NULL, 0), ev_new("wA", "2", "t", "s", NULL, 0),
	               ev_new("wB", "3", "t", "s", NULL, 0), ev_new("wA", "4", "t", "s", NULL, 0)};
	enum store_put r[4];
	th_error err = {0};
	assert_int_equal(st->ops->events_put(st, e, 4, r, &err), 0);
	char got[1024], want[1024];

	/* kinds filter: only exec */
	claim_events(st, 1u << HANDLER_EXEC, 10, 60000, got, sizeof got, NULL, NULL);
	str_printf(want, sizeof want, "%s/h1,%s/h1", e[0]->id, e[2]->id);
	assert_string_equal(got, want);
	/* h1's wA queue is blocked behind the running event 1; forward ones are free */
	claim_events(st, ALL_KINDS, 10, 60000, got, sizeof got, NULL, NULL);
	str_printf(want, sizeof want, "%s/h2,%s/h2", e[0]->id, e[2]->id);
	assert_string_equal(got, want);
	claim_events(st, ALL_KINDS, 10, 60000, got, sizeof got, NULL, NULL);
	assert_string_equal(got, "");
	claim_events(st, 0, 10, 60000, got, sizeof got, NULL, NULL);
	assert_string_equal(got, "");

	/* finishing event 1 for h1 releases event 2 for h1 only */
	delivery *d = NULL;
	size_t n = 0;
	assert_int_equal(st->ops->delivery_list(st, "running", e[0]->id, 0, &d, &n, &err), 0);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++)
		if (str_eq(d[i].handler_id, "h1"))
			assert_int_equal(st->ops->delivery_finish(st, d[i].id, DELIVERY_DONE, 0, NULL, &err), 0);
	delivery_list_free(d, n);
	claim_events(st, ALL_KINDS, 10, 60000, got, sizeof got, NULL, NULL);
	str_printf(want, sizeof want, "%s/h1", e[1]->id);
	assert_string_equal(got, want);

	/* max is honoured */
	event *more[3] = {ev_new("wC", "5", "t", "s", NULL, 0), ev_new("wD", "6", "t", "s", NULL, 0),
	                  ev_new("wE", "7", "t", "s", NULL, 0)};
	assert_int_equal(st->ops->events_put(st, more, 3, r, &err), 0);
	claim_events(st, ALL_KINDS, 2, 60000, got, sizeof got, &d, &n);
	assert_int_equal(n, 2);
	delivery_list_free(d, n);
	for (int i = 0; i < 4; i++)
		ev_free(e[i]);
	for (int i = 0; i < 3; i++)
		ev_free(more[i]);
}

static void test_lease_expiry(void **state)
{
	NEED_PG();
	fx *f = *state;
	store *st = f->st;
	th_error err = {0};
	add_handler(st, "h1", HANDLER_EXEC, NULL, NULL, true);
	event *e[2] = {ev_new("wA", "1", "t", "s", NULL, 0), ev_new("wA", "2", "t", "s", NULL, 0)};
	enum store_put r[2];
	assert_int_equal(st->ops->events_put(st, e, 2, r, &err), 0);
	delivery *d = NULL;
	size_t n = 0;
	assert_int_equal(st->ops->delivery_claim(st, ALL_KINDS, 10, 30, &d, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(d[0].event_id, e[0]->id);
	assert_int_equal(d[0].attempts, 1);
	char *first = str_dup(d[0].id);
	delivery_list_free(d, n);
	/* lease still valid: nothing (event 2 waits behind the running one) */
	assert_int_equal(st->ops->delivery_claim(st, ALL_KINDS, 10, 30, &d, &n, &err), 0);
	assert_int_equal(n, 0);
	usleep(80 * 1000);
	/* the lease ran out: the same delivery is claimed again, not event 2 */
	assert_int_equal(st->ops->delivery_claim(st, ALL_KINDS, 10, 60000, &d, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(d[0].id, first);
	assert_int_equal(d[0].attempts, 2);
	assert_true(d[0].claimed_until > time_now_ms() + 50000);
	delivery_list_free(d, n);
	delivery g = {0};
	assert_int_equal(st->ops->delivery_get(st, first, &g, &err), 0);
	assert_int_equal(g.status, DELIVERY_RUNNING);
	assert_int_equal(g.attempts, 2);
	delivery_clear(&g);
	assert_int_equal(st->ops->delivery_get(st, "nope", &g, &err), TH_ENOTFOUND);
	free(first);
	ev_free(e[0]);
	ev_free(e[1]);
}

static void test_finish_retry_replay(void **state)
{
	NEED_PG();
	fx *f = *state;
	store *st = f->st;
	th_error err = {0};
	add_handler(st, "h1", HANDLER_EXEC, "commentCard", NULL, true);
	add_handler(st, "h2", HANDLER_EXEC, "createCard", NULL, true);
	event *e[2] = {ev_new("wA", "1", "commentCard", "s", NULL, 0),
	               ev_new("wA", "2", "commentCard", "s", NULL, 0)};
	enum store_put r[2];
	assert_int_equal(st->ops->events_put(st, e, 2, r, &err), 0);
	delivery *d = NULL;
	size_t n = 0;
	assert_int_equal(st->ops->delivery_claim(st, ALL_KINDS, 10, 60000, &d, &n, &err), 0);
	assert_int_equal(n, 1);
	char *id1 = str_dup(d[0].id);
	delivery_list_free(d, n);

	/* failed with a later retry time: not due, and event 2 still waits */
	assert_int_equal(st->ops->delivery_finish(st, id1, DELIVERY_FAILED, time_now_ms() + 60000,
	                                          "exit status 3", &err), 0);
	assert_int_equal(st->ops->delivery_claim(st, ALL_KINDS, 10, 60000, &d, &n, &err), 0);
	assert_int_equal(n, 0);
	delivery g = {0};
	assert_int_equal(st->ops->delivery_get(st, id1, &g, &err), 0);
	assert_int_equal(g.status, DELIVERY_FAILED);
	assert_string_equal(g.last_error, "exit status 3");
	assert_int_equal(g.claimed_until, 0);
	delivery_clear(&g);
	/* due again: claimed again with attempts 2 */
	assert_int_equal(st->ops->delivery_finish(st, id1, DELIVERY_FAILED, time_now_ms() - 1,
	                                          "again", &err), 0);
	assert_int_equal(st->ops->delivery_claim(st, ALL_KINDS, 10, 60000, &d, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(d[0].id, id1);
	assert_int_equal(d[0].attempts, 2);
	delivery_list_free(d, n);
	/* running cannot be retried by hand */
	assert_int_equal(st->ops->delivery_retry(st, id1, &err), TH_EINVAL);
	/* dead unblocks the next event */
	assert_int_equal(st->ops->delivery_finish(st, id1, DELIVERY_DEAD, 0, "gave up", &err), 0);
	assert_int_equal(st->ops->delivery_finish(st, id1, DELIVERY_RUNNING, 0, NULL, &err), TH_EINVAL);
	assert_int_equal(st->ops->delivery_finish(st, "nope", DELIVERY_DONE, 0, NULL, &err),
	                 TH_ENOTFOUND);
	assert_int_equal(st->ops->delivery_claim(st, ALL_KINDS, 10, 60000, &d, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(d[0].event_id, e[1]->id);
	assert_int_equal(st->ops->delivery_finish(st, d[0].id, DELIVERY_DONE, 0, NULL, &err), 0);
	delivery_list_free(d, n);

	int64_t counts[5], oldest = -1;
	assert_int_equal(st->ops->delivery_stats(st, counts, &oldest, &err), 0);
	assert_int_equal(counts[DELIVERY_DEAD], 1);
	assert_int_equal(counts[DELIVERY_DONE], 1);
	assert_int_equal(counts[DELIVERY_PENDING], 0);
	assert_int_equal(oldest, 0);

	/* retry the dead one: pending, due now, attempts start over */
	assert_int_equal(st->ops->delivery_retry(st, id1, &err), 0);
	assert_int_equal(st->ops->delivery_get(st, id1, &g, &err), 0);
	assert_int_equal(g.status, DELIVERY_PENDING);
	assert_int_equal(g.attempts, 0);
	assert_true(g.next_attempt_at <= time_now_ms());
	delivery_clear(&g);
	assert_int_equal(st->ops->delivery_retry(st, "nope", &err), TH_ENOTFOUND);
	assert_int_equal(st->ops->delivery_stats(st, counts, &oldest, &err), 0);
	assert_int_equal(counts[DELIVERY_PENDING], 1);
	assert_true(oldest > 0);

	/* replay: a new generation per matching enabled handler (h1 only) */
	size_t made = 99;
	assert_int_equal(st->ops->event_replay(st, e[1]->id, &made, &err), 0);
	assert_int_equal(made, 1);
	assert_int_equal(st->ops->event_replay(st, e[1]->id, &made, &err), 0);
	assert_int_equal(made, 1);
	assert_int_equal(count_deliveries(st, e[1]->id, "h1"), 3);
	assert_int_equal(count_deliveries(st, e[1]->id, "h2"), 0);
	assert_int_equal(st->ops->event_replay(st, "missing", &made, &err), TH_ENOTFOUND);
	assert_int_equal(made, 0);
	assert_int_equal(st->ops->handler_set_enabled(st, "h1", false, &err), 0);
	assert_int_equal(st->ops->event_replay(st, e[1]->id, &made, &err), 0);
	assert_int_equal(made, 0);
	free(id1);
	ev_free(e[0]);
	ev_free(e[1]);
}

static void test_handler_delete_drops_pending(void **state)
{
	NEED_PG();
	fx *f = *state;
	store *st = f->st;
	th_error err = {0};
	add_handler(st, "h1", HANDLER_EXEC, NULL, NULL, true);
	add_handler(st, "h2", HANDLER_EXEC, NULL, NULL, true);
	event *e[2] = {ev_new("wA", "1", "t", "s", NULL, 0), ev_new("wB", "2", "t", "s", NULL, 0)};
	enum store_put r[2];
	assert_int_equal(st->ops->events_put(st, e, 2, r, &err), 0);
	delivery *d = NULL;
	size_t n = 0;
	assert_int_equal(st->ops->delivery_list(st, NULL, e[0]->id, 0, &d, &n, &err), 0);
	for (size_t i = 0; i < n; i++)
		if (str_eq(d[i].handler_id, "h1"))
			assert_int_equal(st->ops->delivery_finish(st, d[i].id, DELIVERY_DONE, 0, NULL, &err), 0);
	delivery_list_free(d, n);
	assert_int_equal(st->ops->handler_delete(st, "h1", &err), 0);
	assert_int_equal(count_deliveries(st, e[0]->id, "h1"), 1); /* done: kept */
	assert_int_equal(count_deliveries(st, e[1]->id, "h1"), 0); /* pending: gone */
	assert_int_equal(count_deliveries(st, e[0]->id, "h2"), 1);
	assert_int_equal(count_deliveries(st, e[1]->id, "h2"), 1);
	ev_free(e[0]);
	ev_free(e[1]);
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
		if (st->ops->events_put(st, evs, (size_t)w->per_batch, r, &err) != 0)
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

static void test_two_handles(void **state)
{
	NEED_PG();
	fx *f = *state;
	th_error err = {0};
	store *other = NULL;
	assert_int_equal(store_open(&other, f->url, &err), 0);
	add_webhook(f->st, "w1", "m", "t");
	webhook w = {0};
	assert_int_equal(other->ops->webhook_get(other, "w1", &w, &err), 0);
	webhook_clear(&w);
	add_handler(other, "h1", HANDLER_EXEC, NULL, NULL, true);
	event *ev = ev_new("w1", "a1", "t", "s", NULL, 0);
	assert_int_equal(put1(f->st, ev), STORE_PUT_NEW);
	assert_int_equal(count_deliveries(other, ev->id, "h1"), 1);
	ev_free(ev);
	store_close(other);

	/* concurrent writers on separate handles (busy_timeout makes them wait) and
	 * concurrent threads on the same handle (its mutex) */
	struct writer ws[3] = {{f->url, "wX", 40, 25, 0}, {f->url, "wY", 40, 25, 0},
	                       {f->url, "wZ", 40, 25, 0}};
	pthread_t th[3];
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&th[i], NULL, writer_main, &ws[i]), 0);
	int64_t claimed = 0;
	for (int k = 0; k < 50; k++) { /* claim meanwhile through the first handle */
		delivery *d = NULL;
		size_t n = 0;
		assert_int_equal(f->st->ops->delivery_claim(f->st, ALL_KINDS, 20, 60000, &d, &n, &err), 0);
		for (size_t i = 0; i < n; i++)
			assert_int_equal(f->st->ops->delivery_finish(f->st, d[i].id, DELIVERY_DONE, 0, NULL,
			                                             &err), 0);
		claimed += (int64_t)n;
		delivery_list_free(d, n);
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(ws[i].failures, 0);
	}
	int64_t counts[5];
	assert_int_equal(f->st->ops->delivery_stats(f->st, counts, NULL, &err), 0);
	assert_int_equal(counts[DELIVERY_DONE] + counts[DELIVERY_PENDING], 1 + 3 * 40 * 25);
	assert_int_equal(counts[DELIVERY_DONE], claimed);
}

/* Group commit throughput on a real file (informational, generous bound). */
static void test_batch_throughput(void **state)
{
	NEED_PG();
	fx *f = *state;
	store *st = f->st;
	th_error err = {0};
	add_handler(st, "h1", HANDLER_EXEC, "commentCard", NULL, true);
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
			ev->payload = str_dup("{\"action\":{\"id\":\"x\",\"type\":\"commentCard\"}}");
			ev->payload_len = strlen(ev->payload);
			evs[i] = ev;
		}
		assert_int_equal(st->ops->events_put(st, evs, BATCH, r, &err), 0);
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
	assert_int_equal(st->ops->delivery_stats(st, counts, NULL, &err), 0);
	assert_int_equal(counts[DELIVERY_PENDING], BATCH * BATCHES / 2);
}


/* ---- PostgreSQL only: opening, URL parameters, errors ----------------------------------------- */

static void test_pg_open_errors(void **state)
{
	(void)state;
	NEED_PG();
	store *st = (store *)0x1;
	th_error err = {0};
	/* nothing listens there: unavailable, the URL named with its password masked */
	int rc = store_open(&st, "postgresql://th:hunter2secret@127.0.0.1:1/th?connect_timeout=2", &err);
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
	url_with_db(url, sizeof url, pgt.base, "th_no_such_db", "");
	assert_int_equal(store_open(&st, url, &err), TH_EUNAVAIL);
	assert_non_null(strstr(err.msg, "th_no_such_db"));
}

static void test_pg_migrations(void **state)
{
	NEED_PG();
	fx *f = *state;
	th_error err = {0};
	int v1 = -1, v2 = -1;
	assert_string_equal(f->st->ops->name, "postgresql");
	assert_int_equal(f->st->ops->ping(f->st, &err), 0);
	assert_int_equal(f->st->ops->migrate(f->st, &v1, &err), 0);
	assert_true(v1 >= 1);
	store_close(f->st);
	f->st = NULL;
	assert_int_equal(store_open(&f->st, f->url, &err), 0); /* migrates again at open */
	assert_int_equal(f->st->ops->migrate(f->st, &v2, &err), 0);
	assert_int_equal(v1, v2);
	assert_int_equal(db_value(f->db, "SELECT count(*) FROM schema_migrations"), v1);
	assert_int_equal(db_value(f->db, "SELECT max(version) FROM schema_migrations"), v1);
	/* the constraints and indexes exist as in SQLite */
	assert_int_equal(db_value(f->db, "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'"
	                                 " AND indexname IN ('events_webhook_seq', 'events_type_seq',"
	                                 " 'events_received_at', 'deliveries_due', 'deliveries_order',"
	                                 " 'deliveries_handler', 'sessions_expires',"
	                                 " 'webhooks_model_token', 'events_webhook_action',"
	                                 " 'deliveries_event_handler_generation')"), 10);
	assert_int_equal(db_value(f->db, "SELECT count(*) FROM information_schema.columns"
	                                 " WHERE table_name = 'events' AND column_name = 'payload'"
	                                 " AND data_type = 'bytea'"), 1);

	/* a newer schema is refused, untouched */
	store_close(f->st);
	f->st = NULL;
	char url[600];
	url_with_db(url, sizeof url, pgt.base, f->db, "");
	PGconn *c = PQconnectdb(url);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	PQclear(PQexec(c, "INSERT INTO schema_migrations VALUES (999, 0)"));
	assert_int_equal(store_open(&f->st, f->url, &err), TH_ESTORE);
	assert_non_null(strstr(err.msg, "newer"));
	assert_null(f->st);
	PQclear(PQexec(c, "DELETE FROM schema_migrations WHERE version = 999"));
	PQfinish(c);
	assert_int_equal(store_open(&f->st, f->url, &err), 0);
}

/* Several processes open (and so migrate) one fresh database at the same
 * moment: the advisory lock makes each migration run exactly once. */
static void test_pg_concurrent_migrations(void **state)
{
	(void)state;
	NEED_PG();
	fx f = {0};
	fresh_db(&f, "");
	enum { PROCS = 4 };
	pid_t pids[PROCS];
	int64_t start = time_now_ms() + 300; /* all children go at once */
	for (int i = 0; i < PROCS; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			while (time_now_ms() < start)
				usleep(1000);
			store *st = NULL;
			th_error err = {0};
			int rc = store_open(&st, f.url, &err);
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
	assert_int_equal(db_value(f.db, "SELECT count(*) FROM pg_tables WHERE tablename = 'events'"), 1);
	fx *fp = calloc(1, sizeof *fp);
	*fp = f;
	void *s = fp;
	fx_teardown(&s);
}

/* Hostile text: invalid UTF-8 in event fields is repaired (PostgreSQL would
 * refuse it and fail the whole batch); the payload keeps the exact bytes. */
static void test_pg_non_utf8_fields(void **state)
{
	NEED_PG();
	fx *f = *state;
	store *st = f->st;
	th_error err = {0};
	event *ev = ev_new("w1", "a\xff" "1", "t", "bad \xc3 summary \xe2\x82", "{\"x\":\"\xff\"}", 0);
	event *ok = ev_new("w1", "a2", "t", "Zo\xc3\xab fine", NULL, 0);
	event *evs[2] = {ev, ok};
	enum store_put r[2];
	assert_int_equal(st->ops->events_put(st, evs, 2, r, &err), 0);
	assert_int_equal(r[0], STORE_PUT_NEW);
	assert_int_equal(r[1], STORE_PUT_NEW);
	event got = {0};
	assert_int_equal(st->ops->event_get(st, ev->id, &got, &err), 0);
	assert_string_equal(got.summary, "bad ? summary ??");
	assert_string_equal(got.action_id, "a?1");
	assert_int_equal(got.payload_len, ev->payload_len);
	assert_memory_equal(got.payload, ev->payload, ev->payload_len);
	event_clear(&got);
	assert_int_equal(st->ops->event_get(st, ok->id, &got, &err), 0);
	assert_string_equal(got.summary, "Zo\xc3\xab fine");
	event_clear(&got);
	ev_free(ev);
	ev_free(ok);
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
		if (h->st->ops->delivery_stats(h->st, counts, NULL, &err) != 0)
			h->failures++;
		if (h->st->ops->ping(h->st, &err) != 0)
			h->failures++;
	}
	return NULL;
}

static void test_pg_pool(void **state)
{
	(void)state;
	NEED_PG();
	fx f = {0};
	fresh_db(&f, "pool_size=2&statement_timeout=20000");
	th_error err = {0};
	assert_int_equal(store_open(&f.st, f.url, &err), 0);
	enum { T = 8 };
	struct hammer hs[T];
	pthread_t th[T];
	for (int i = 0; i < T; i++) {
		hs[i] = (struct hammer){f.st, 50, 0};
		assert_int_equal(pthread_create(&th[i], NULL, hammer_main, &hs[i]), 0);
	}
	for (int i = 0; i < T; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(hs[i].failures, 0);
	}
	char sql[300];
	str_printf(sql, sizeof sql, "SELECT count(*) FROM pg_stat_activity WHERE datname = '%s'"
	                            " AND application_name = 'trellohook'", f.db);
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
	NEED_PG();
	fx f = {0};
	fresh_db(&f, "statement_timeout=300");
	th_error err = {0};
	assert_int_equal(store_open(&f.st, f.url, &err), 0);
	char url[600];
	url_with_db(url, sizeof url, pgt.base, f.db, "");
	PGconn *c = PQconnectdb(url);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	PQclear(PQexec(c, "BEGIN"));
	PQclear(PQexec(c, "LOCK TABLE handlers IN ACCESS EXCLUSIVE MODE"));
	handler *hs = NULL;
	size_t n = 0;
	int64_t t0 = time_mono_ms();
	assert_int_equal(f.st->ops->handler_list(f.st, &hs, &n, &err), TH_ESTORE);
	assert_true(time_mono_ms() - t0 < 5000);
	assert_non_null(strstr(err.msg, "statement timeout"));
	PQclear(PQexec(c, "ROLLBACK"));
	PQfinish(c);
	/* and the store works again at once */
	assert_int_equal(f.st->ops->handler_list(f.st, &hs, &n, &err), 0);
	handler_list_free(hs, n);
	fx *fp = calloc(1, sizeof *fp);
	*fp = f;
	void *s = fp;
	fx_teardown(&s);
}

/* The server drops our connections (an administrator, a failover) or
 * restarts: the next operations reconnect on their own. */
static void test_pg_reconnect(void **state)
{
	NEED_PG();
	fx *f = *state;
	store *st = f->st;
	th_error err = {0};
	add_webhook(st, "w1", "m", "t");
	char sql[300];
	str_printf(sql, sizeof sql, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
	                            " WHERE datname = '%s' AND application_name = 'trellohook'", f->db);
	assert_true(db_value(f->db, sql) >= 1);
	usleep(100 * 1000);
	webhook w = {0};
	assert_int_equal(st->ops->webhook_get(st, "w1", &w, &err), 0);
	webhook_clear(&w);
	event *ev = ev_new("w1", "a1", "t", "s", NULL, 0);
	assert_int_equal(put1(st, ev), STORE_PUT_NEW);
	ev_free(ev);

	if (!pgt.own)
		return; /* a server we do not own is not restarted */
	char cmd[700];
	str_printf(cmd, sizeof cmd, "'%s' restart '%s'", pgt.script, pgt.dir);
	assert_int_equal(system(cmd), 0);
	/* every pooled connection is stale now; each op must still succeed */
	for (int i = 0; i < 6; i++) {
		char aid[16];
		str_printf(aid, sizeof aid, "r%d", i);
		ev = ev_new("w1", aid, "t", "s", NULL, 0);
		assert_int_equal(put1(st, ev), STORE_PUT_NEW);
		ev_free(ev);
		assert_int_equal(st->ops->ping(st, &err), 0);
	}
	assert_int_equal(st->ops->webhook_get(st, "w1", &w, &err), 0);
	assert_int_equal(w.event_count, 7);
	webhook_clear(&w);
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
		if (c->st->ops->delivery_claim(c->st, ALL_KINDS, 7, 60000, &d, &n, &err) != 0) {
			c->failures++;
			break;
		}
		empty = n == 0 ? empty + 1 : 0;
		for (size_t i = 0; i < n; i++)
			if (c->st->ops->delivery_finish(c->st, d[i].id, DELIVERY_DONE, 0, NULL, &err) != 0)
				c->failures++;
		c->claimed += (int64_t)n;
		delivery_list_free(d, n);
	}
	return NULL;
}

static void test_pg_concurrent_claims(void **state)
{
	NEED_PG();
	fx *f = *state;
	th_error err = {0};
	store *other = NULL;
	assert_int_equal(store_open(&other, f->url, &err), 0);
	add_handler(f->st, "h1", HANDLER_EXEC, NULL, NULL, true);
	add_handler(f->st, "h2", HANDLER_FORWARD, NULL, NULL, true);
	enum { N = 600 };
	static event *evs[N];
	enum store_put r[N];
	for (int i = 0; i < N; i++) {
		char wid[16], aid[16];
		str_printf(wid, sizeof wid, "w%d", i % 50); /* 50 webhooks: order rules apply too */
		str_printf(aid, sizeof aid, "a%d", i);
		evs[i] = ev_new(wid, aid, "t", "s", NULL, 0);
	}
	assert_int_equal(f->st->ops->events_put(f->st, evs, N, r, &err), 0);
	enum { T = 6 };
	struct claimer cs[T];
	pthread_t th[T];
	for (int i = 0; i < T; i++) {
		cs[i] = (struct claimer){i % 2 ? other : f->st, 0, 0};
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
	                                 " AND attempts = 1"), 2 * N);
	assert_int_equal(db_value(f->db, "SELECT count(*) FROM deliveries"), 2 * N);
	/* both handles claimed something */
	assert_true(cs[0].claimed + cs[2].claimed + cs[4].claimed > 0);
	assert_true(cs[1].claimed + cs[3].claimed + cs[5].claimed > 0);
	for (int i = 0; i < N; i++)
		ev_free(evs[i]);
	store_close(other);
}

/* A crashed instance: its claims stay running until the lease runs out, then
 * the other instance claims them again. */
static void test_pg_crashed_instance_lease(void **state)
{
	NEED_PG();
	fx *f = *state;
	th_error err = {0};
	add_handler(f->st, "h1", HANDLER_EXEC, NULL, NULL, true);
	event *e[3] = {ev_new("wA", "1", "t", "s", NULL, 0), ev_new("wB", "2", "t", "s", NULL, 0),
	               ev_new("wC", "3", "t", "s", NULL, 0)};
	enum store_put r[3];
	assert_int_equal(f->st->ops->events_put(f->st, e, 3, r, &err), 0);
	store *crashing = NULL;
	assert_int_equal(store_open(&crashing, f->url, &err), 0);
	delivery *d = NULL;
	size_t n = 0;
	assert_int_equal(crashing->ops->delivery_claim(crashing, ALL_KINDS, 2, 200, &d, &n, &err), 0);
	assert_int_equal(n, 2);
	delivery_list_free(d, n);
	store_close(crashing); /* gone without finishing */
	assert_int_equal(f->st->ops->delivery_claim(f->st, ALL_KINDS, 10, 60000, &d, &n, &err), 0);
	assert_int_equal(n, 1); /* only the unclaimed one */
	assert_string_equal(d[0].event_id, e[2]->id);
	delivery_list_free(d, n);
	usleep(300 * 1000);
	assert_int_equal(f->st->ops->delivery_claim(f->st, ALL_KINDS, 10, 60000, &d, &n, &err), 0);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(d[i].attempts, 2);
	delivery_list_free(d, n);
	for (int i = 0; i < 3; i++)
		ev_free(e[i]);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pg_open_errors),
	    T(test_pg_migrations),
	    cmocka_unit_test(test_pg_concurrent_migrations),
	    T(test_webhook_crud),
	    T(test_token_crud),
	    T(test_handler_crud),
	    T(test_users_sessions),
	    T(test_events_dedupe),
	    T(test_events_survive_webhook_delete),
	    T(test_payload_bytes_exact),
	    T(test_pg_non_utf8_fields),
	    T(test_event_list_filters),
	    T(test_deliveries_for_matching_handlers),
	    T(test_claim_order),
	    T(test_lease_expiry),
	    T(test_finish_retry_replay),
	    T(test_handler_delete_drops_pending),
	    T(test_two_handles),
	    cmocka_unit_test(test_pg_pool),
	    cmocka_unit_test(test_pg_statement_timeout),
	    T(test_pg_reconnect),
	    T(test_pg_concurrent_claims),
	    T(test_pg_crashed_instance_lease),
	    T(test_batch_throughput),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
