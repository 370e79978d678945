/* SPDX-License-Identifier: MIT */
/*
 * pg.c — the PostgreSQL implementation of the store (libpq), for several
 * `trellohook serve` instances on one database.
 *
 * Connections: a small pool (DATABASE_URL query parameter `pool_size`, else
 * TRELLOHOOK_DB_POOL, default 4), opened lazily. Each connection runs with
 * application_name=trellohook and statement_timeout (parameter
 * `statement_timeout` in ms, default 30000). Our own parameters are stripped
 * before the URL goes to libpq. An operation that finds its connection broken
 * (the server restarted) resets it and runs once more; every operation is one
 * transaction, so a retry never sees half of an earlier attempt.
 *
 * Semantics are those of sqlite.c (the reference): versioned migrations
 * (applied under pg_advisory_xact_lock, so instances starting together are
 * safe), events_put as ONE transaction per batch (one WAL flush) with
 * multi-row INSERT ... ON CONFLICT DO NOTHING RETURNING to tell new from
 * duplicate, deliveries for matching enabled handlers, and delivery_claim with
 * FOR UPDATE SKIP LOCKED plus leases (claimed_until) so a crashed instance's
 * running deliveries are claimed again once the lease ran out.
 *
 * Data crossing the wire: every value is a query parameter (never spliced
 * into SQL). Text goes as text and must be UTF-8 (event fields that are not
 * are repaired with U+FFFD-free '?' substitutes so one hostile event cannot
 * fail a batch); the payload goes as binary BYTEA, byte-exact. Results come
 * back in text format (bytea as hex, decoded with PQunescapeBytea).
 *
 * The password is never logged or put in an error: errors name the URL
 * through mask_url() with the query string dropped.
 */
#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/migrations_pg.h"
#include "store/pg_int.h"
#include "store/store_fault.h"
#include "util/log.h"

#define POOL_DEFAULT 4
#define POOL_MAX 64
#define STMT_TIMEOUT_DEFAULT 30000
#define MIGRATION_LOCK_KEY "7466323030303831" /* any constant; ours */

/* ---- the handle and its pool ------------------------------------------------------------ */

/* Server notices ("relation ... already exists, skipping") are not errors:
 * libpq would print them on stderr; we drop them. */
static void pg_quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* The settings of a server session of ours beyond the connect options:
 * issued on every new session, at connect and after each PQreset (which
 * starts a new one, without them). */
static void pg_session_setup(PGconn *c)
{
	/* Event payloads (~3 KB) are compressed as they are stored: lz4 costs a
	 * fraction of the server's default pglz (PostgreSQL 14+ built with lz4;
	 * elsewhere this fails and the default stays). Applies to values written
	 * in this session; reading either kind needs nothing. */
	PQclear(PQexec(c, "SET default_toast_compression = lz4"));
}

void pq_reset(PGconn *c)
{
	PQreset(c);
	if (PQstatus(c) == CONNECTION_OK)
		pg_session_setup(c);
}

/* Open one connection with our settings. NULL with @err (TH_EUNAVAIL) on failure. */
static PGconn *pg_connect(pgs *s, th_error *err)
{
	/* keywords in order: later ones win, dbname expands the URL in place, so
	 * the URL may override connect_timeout but not our name and timeout */
	const char *keys[] = {"connect_timeout", "dbname", "application_name", "options", NULL};
	const char *vals[] = {"10", s->conninfo, "trellohook", s->options, NULL};
	PGconn *c = PQconnectdbParams(keys, vals, 1);
	if (!c) {
		th_err(err, TH_ENOMEM, "PostgreSQL at %s: out of memory", s->masked);
		return NULL;
	}
	if (PQstatus(c) != CONNECTION_OK) {
		char msg[200];
		str_copy(msg, sizeof msg, PQerrorMessage(c));
		msg[strcspn(msg, "\n")] = '\0';
		th_err(err, TH_EUNAVAIL, "cannot connect to PostgreSQL at %s: %s", s->masked, msg);
		PQfinish(c);
		return NULL;
	}
	PQsetNoticeProcessor(c, pg_quiet, NULL); /* kept across PQreset */
	pg_session_setup(c);
	if (pq_prepared_attach(c) != 0) {
		th_err(err, TH_ENOMEM, "PostgreSQL at %s: out of memory", s->masked);
		PQfinish(c);
		return NULL;
	}
	return c;
}

/* Take a free slot (waiting for one), connected. Returns the slot index or -1
 * with @err filled. The caller gives it back with pool_put(). */
static int pool_get(pgs *s, th_error *err)
{
	pthread_mutex_lock(&s->mu);
	int slot = -1;
	for (;;) {
		for (size_t i = 0; i < s->pool_size; i++) {
			if (!s->busy[i] && (slot < 0 || (s->conns[i] && !s->conns[slot])))
				slot = (int)i; /* prefer a slot that is already connected */
		}
		if (slot >= 0)
			break;
		pthread_cond_wait(&s->cv, &s->mu);
	}
	s->busy[slot] = true;
	pthread_mutex_unlock(&s->mu);
	PGconn *c = s->conns[slot];
	if (c && PQstatus(c) != CONNECTION_OK) {
		pq_reset(c);
		if (PQstatus(c) != CONNECTION_OK) {
			PQfinish(c);
			s->conns[slot] = c = NULL;
		}
	}
	if (!c && !(s->conns[slot] = pg_connect(s, err))) {
		pthread_mutex_lock(&s->mu);
		s->busy[slot] = false;
		pthread_cond_signal(&s->cv);
		pthread_mutex_unlock(&s->mu);
		return -1;
	}
	return slot;
}

static void pool_put(pgs *s, int slot)
{
	pthread_mutex_lock(&s->mu);
	s->busy[slot] = false;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* Run @op on a pooled connection. When it fails because the connection broke
 * (server restart, network), reset the connection and run @op once more. */
int with_conn(pgs *s, pg_op op, void *ctx, th_error *err)
{
	th_error e = {0};
	int slot = pool_get(s, &e);
	if (slot < 0) {
		if (err)
			*err = e;
		return e.code ? e.code : TH_EUNAVAIL;
	}
	int ret = op(s, s->conns[slot], ctx, err);
	if (ret != 0 && PQstatus(s->conns[slot]) == CONNECTION_BAD) {
		pq_reset(s->conns[slot]);
		if (PQstatus(s->conns[slot]) == CONNECTION_OK)
			ret = op(s, s->conns[slot], ctx, err);
		else
			ret = th_err(err, TH_EUNAVAIL,
			             "lost the connection to PostgreSQL at %s and could "
			             "not reconnect",
			             s->masked);
	}
	pool_put(s, slot);
	return ret;
}

/* ---- parameters ------------------------------------------------------------------------- */

void pp_free(pparams *p)
{
	for (int i = 0; i < p->nowned; i++)
		free(p->owned[i]);
	TH_FREE_ALL(p->owned, p->v, p->len, p->fmt);
	memset(p, 0, sizeof *p);
}

void pp_reset(pparams *p)
{
	for (int i = 0; i < p->nowned; i++)
		free(p->owned[i]);
	p->nowned = 0;
	p->n = 0;
}

static void pw_text(store_params *w, const char *v)
{
	pp_text(w->dst, v);
}
static void pw_int(store_params *w, int64_t v)
{
	pp_i64(w->dst, v);
}
static void pw_bool(store_params *w, bool v)
{
	pp_bool(w->dst, v);
}
const struct store_params_ops pp_params_ops = {pw_text, pw_int, pw_bool};

/* For values from outside (filters): text repaired (pp_text_repair). */
static void pw_text_repair(store_params *w, const char *v)
{
	pp_text_repair(w->dst, v);
}
static const struct store_params_ops pp_repair_params_ops = {pw_text_repair, pw_int, pw_bool};

static bool pp_room(pparams *p)
{
	if (p->oom)
		return false;
	if (p->n < p->cap)
		return true;
	int ncap = p->cap ? p->cap * 2 : 32;
	const char **v = realloc(p->v, (size_t)ncap * sizeof *v);
	if (v)
		p->v = v;
	int *len = realloc(p->len, (size_t)ncap * sizeof *len);
	if (len)
		p->len = len;
	int *fmt = realloc(p->fmt, (size_t)ncap * sizeof *fmt);
	if (fmt)
		p->fmt = fmt;
	if (!v || !len || !fmt) {
		p->oom = true;
		return false;
	}
	p->cap = ncap;
	return true;
}

/* Keep @str (heap) until pp_free; frees it and sets oom when that fails. */
const char *pp_own(pparams *p, char *str)
{
	if (!str) {
		p->oom = true;
		return NULL;
	}
	if (p->nowned == p->capowned) {
		int ncap = p->capowned ? p->capowned * 2 : 16;
		char **o = realloc(p->owned, (size_t)ncap * sizeof *o);
		if (!o) {
			free(str);
			p->oom = true;
			return NULL;
		}
		p->owned = o;
		p->capowned = ncap;
	}
	p->owned[p->nowned++] = str;
	return str;
}

static void pp_add(pparams *p, const char *v, int len, int fmt)
{
	if (!pp_room(p))
		return;
	p->v[p->n] = v;
	p->len[p->n] = len;
	p->fmt[p->n] = fmt;
	p->n++;
}

/* A text value (NULL: SQL NULL); must stay valid until the query ran. */
void pp_text(pparams *p, const char *v)
{
	pp_add(p, v, 0, 0);
}

/* A text value that came from outside: invalid UTF-8 bytes become '?'
 * (PostgreSQL refuses them in TEXT; the payload keeps the exact bytes). */
void pp_text_repair(pparams *p, const char *v)
{
	if (!v || str_utf8_valid(v, strlen(v))) {
		pp_text(p, v);
		return;
	}
	size_t n = strlen(v);
	char *c = malloc(n + 1);
	if (c) {
		size_t i = 0;
		while (i < n) {
			/* a valid sequence, else one '?' */
			size_t k = str_utf8_seq(v + i, n - i);
			if (k == 0) {
				c[i] = '?';
				i++;
			} else {
				memcpy(c + i, v + i, k);
				i += k;
			}
		}
		c[n] = '\0';
	}
	pp_text(p, pp_own(p, c));
}

void pp_i64(pparams *p, int64_t v)
{
	char tmp[24];
	str_printf(tmp, sizeof tmp, "%lld", (long long)v);
	pp_text(p, pp_own(p, str_dup(tmp)));
}

void pp_bool(pparams *p, bool v)
{
	pp_text(p, v ? "t" : "f");
}

/* Binary bytes (BYTEA): sent as is, length explicit, NUL bytes included. */
void pp_bytes(pparams *p, const void *data, size_t len)
{
	if (len > (size_t)INT32_MAX) {
		p->oom = true;
		return;
	}
	pp_add(p, len ? (const char *)data : "", (int)len, 1);
}

/* ---- running queries -------------------------------------------------------------------- */

/* A failed statement or connection as a th_error: TH_EEXISTS for a unique
 * violation (23505), TH_ENOTFOUND for a foreign key (23503), TH_EUNAVAIL when
 * the connection is gone, else TH_ESTORE "what: message". */
int pg_fail(pgs *s, PGconn *c, const PGresult *r, const char *what, th_error *err)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	char msg[200];
	str_copy(msg, sizeof msg, r ? PQresultErrorMessage(r) : PQerrorMessage(c));
	if (!*msg)
		str_copy(msg, sizeof msg, PQerrorMessage(c));
	msg[strcspn(msg, "\n")] = '\0';
	if (str_eq(state, "23505"))
		return th_err(err, TH_EEXISTS, "%s: %s", what, msg);
	if (str_eq(state, "23503"))
		return th_err(err, TH_ENOTFOUND, "%s: %s", what, msg);
	if (PQstatus(c) == CONNECTION_BAD)
		return th_err(err, TH_EUNAVAIL, "%s: lost the connection to PostgreSQL at %s: %s",
		              what, s->masked, msg);
	return th_err(err, TH_ESTORE, "%s: %s", what, msg);
}

/* Run @sql with @p (may be NULL). Returns the result when its status is
 * PGRES_COMMAND_OK or PGRES_TUPLES_OK (PQclear it), else NULL with @err. */
PGresult *pq(pgs *s, PGconn *c, const char *sql, pparams *p, const char *what, th_error *err)
{
	return pq_state(s, c, sql, p, what, NULL, err);
}

int pq_args_of(const pparams *p, const char *what, pq_args *a, th_error *err)
{
	*a = (pq_args){0, NULL, NULL, NULL};
	if (p && p->oom)
		return th_err(err, TH_ENOMEM, "%s: out of memory", what);
	if (store_fault_hit(STORE_FAULT_QUERY)) /* tests only (store_fault.h) */
		return th_err(err, TH_ESTORE, "%s: injected fault", what);
	if (p)
		*a = (pq_args){p->n, p->v, p->len, p->fmt};
	return 0;
}

/* The one way statements run: @sql as text, or the statement prepared as
 * @name (non-NULL); the result in *@out (PQclear it) and 0, or *@out NULL and
 * the error's code (pg_fail), with the failed statement's SQLSTATE in @state
 * when given ("" when it had none, e.g. out of memory). */
static int pq_run(pgs *s, PGconn *c, const char *name, const char *sql, pparams *p,
                  const char *what, char state[6], PGresult **out, th_error *err)
{
	*out = NULL;
	if (state)
		state[0] = '\0';
	pq_args a;
	int ret = pq_args_of(p, what, &a, err);
	if (ret != 0)
		return ret;
	PGresult *r = name ? PQexecPrepared(c, name, a.n, a.v, a.len, a.fmt, 0)
	                   : PQexecParams(c, sql, a.n, NULL, a.v, a.len, a.fmt, 0);
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		*out = r;
		return 0;
	}
	const char *code = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	if (state)
		str_copy(state, 6, code ? code : "");
	pq_prepared_lost(c, r);
	ret = pg_fail(s, c, r, what, err);
	PQclear(r);
	return ret;
}

/* pq(), and when the statement failed its SQLSTATE in @state (optional),
 * for pg_retry(). */
PGresult *pq_state(pgs *s, PGconn *c, const char *sql, pparams *p, const char *what, char state[6],
                   th_error *err)
{
	return pq_named(s, c, NULL, sql, p, what, state, err);
}

PGresult *pq_named(pgs *s, PGconn *c, const char *name, const char *sql, pparams *p,
                   const char *what, char state[6], th_error *err)
{
	PGresult *r = NULL;
	(void)pq_run(s, c, name, sql, p, what, state, &r, err);
	return r;
}

int pq_get(pgs *s, PGconn *c, const char *sql, pparams *p, const char *what, PGresult **out,
           th_error *err)
{
	return pq_run(s, c, NULL, sql, p, what, NULL, out, err);
}

/* Run a statement whose result is not needed; 0 or the error code. */
int pq_do(pgs *s, PGconn *c, const char *sql, pparams *p, const char *what, th_error *err)
{
	PGresult *r = NULL;
	int ret = pq_get(s, c, sql, p, what, &r, err);
	PQclear(r);
	return ret;
}

/* Rows affected by a command result. */
long pq_changes(PGresult *r)
{
	int64_t v = 0;
	const char *t = PQcmdTuples(r);
	if (!t || !*t || num_parse_i64(t, 0, INT64_MAX, &v) != 0)
		return 0;
	return (long)v;
}

int pq_begin(pgs *s, PGconn *c, th_error *err)
{
	return pq_do(s, c, "BEGIN", NULL, "starting a transaction", err);
}

int pq_commit(pgs *s, PGconn *c, const char *what, th_error *err)
{
	return pq_do(s, c, "COMMIT", NULL, what, err);
}

/* Roll back whatever is open; errors ignored (the first one is in @err). */
void pq_rollback(PGconn *c)
{
	if (PQstatus(c) != CONNECTION_OK)
		return;
	if (PQtransactionStatus(c) == PQTRANS_IDLE)
		return;
	PGresult *r = PQexec(c, "ROLLBACK");
	PQclear(r);
}

/* One transaction: @body runs between BEGIN and COMMIT on one connection;
 * any failure (its own or the commit's) rolls back. */
typedef struct pg_txn {
	pg_op body;
	void *ctx;
} pg_txn;

static int op_txn(pgs *s, PGconn *c, void *ctx, th_error *err)
{
	pg_txn *t = ctx;
	int ret = pq_begin(s, c, err);
	if (ret == 0)
		ret = t->body(s, c, t->ctx, err);
	if (ret == 0)
		ret = pq_commit(s, c, "commit", err);
	if (ret != 0)
		pq_rollback(c);
	return ret;
}

/* Run @body with @ctx in one transaction on a pooled connection (see with_conn). */
int with_txn(pgs *s, pg_op body, void *ctx, th_error *err)
{
	pg_txn t = {body, ctx};
	return with_conn(s, op_txn, &t, err);
}

/* ---- trying again after a deadlock -------------------------------------------------------- */

bool pg_retryable(const char *sqlstate)
{
	return str_eq(sqlstate, "40P01") || str_eq(sqlstate, "40001");
}

/* Before try @try + 1: 10..40 ms times @try, jittered so the two instances
 * that collided do not collide again in step. */
void pg_retry_pause(int try)
{
	unsigned char r = 0;
	if (rand_fill(&r, 1) != 0)
		r = 128;
	long ms = (10 + (long)r * 30 / 255) * try;
	struct timespec ts = {0, ms * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int pg_retry(pgs *s, bool txn, pg_op op, void *ctx, char *state, const char *what, th_error *err)
{
	for (int try = 1;; try++) {
		state[0] = '\0';
		int ret = txn ? with_txn(s, op, ctx, err) : with_conn(s, op, ctx, err);
		if (ret == 0 || !pg_retryable(state) || try > PG_RETRIES)
			return ret;
		log_warn("store",
		         "%s: %s (SQLSTATE %s, with another instance); trying again (%d of %d)",
		         what, str_eq(state, "40P01") ? "deadlock" : "serialization failure", state,
		         try, PG_RETRIES);
		pg_retry_pause(try);
	}
}

/* ---- reading: a result as a store_row cursor (store_rows.c reads the rows) --------------- */

static int pg_row_next(store_row *r, th_error *err)
{
	(void)err;
	if (r->row + 1 >= PQntuples(r->src))
		return 0;
	r->row++;
	return 1;
}

static bool pg_row_null(const store_row *r, int c)
{
	return PQgetisnull(r->src, r->row, c);
}

static const char *pg_row_text(const store_row *r, int c, size_t *len)
{
	*len = (size_t)PQgetlength(r->src, r->row, c);
	return PQgetvalue(r->src, r->row, c);
}

static int64_t pg_row_int(const store_row *r, int c)
{
	int64_t v = 0;
	if (!PQgetisnull(r->src, r->row, c))
		(void)num_parse_i64(PQgetvalue(r->src, r->row, c), INT64_MIN, INT64_MAX, &v);
	return v;
}

static bool pg_row_bool(const store_row *r, int c)
{
	return !PQgetisnull(r->src, r->row, c) && PQgetvalue(r->src, r->row, c)[0] == 't';
}

/* BYTEA in text format is "\x<hex>"; decode to the exact bytes, add a NUL. */
static char *pg_row_blob(const store_row *r, int c, size_t *len)
{
	size_t n = 0;
	unsigned char *raw =
	    PQunescapeBytea((const unsigned char *)PQgetvalue(r->src, r->row, c), &n);
	char *v = raw ? malloc(n + 1) : NULL;
	if (v) {
		if (n)
			memcpy(v, raw, n);
		v[n] = '\0';
		*len = n;
	}
	PQfreemem(raw);
	return v;
}

static const struct store_row_ops pg_row_ops = {
    pg_row_next, pg_row_null, pg_row_text, pg_row_int, pg_row_bool, pg_row_blob,
};

int pg_read_rows(PGresult *r, const store_rowtype *rt, void **out, size_t *n, th_error *err)
{
	store_row w = {&pg_row_ops, r, -1, 0, false, "reading rows", ""};
	return store_rows_collect(&w, rt, out, n, err);
}

int pg_read_first(PGresult *r, const store_rowtype *rt, void *out, const char *nf, th_error *err)
{
	store_row w = {&pg_row_ops, r, -1, 0, false, "reading a row", ""};
	return store_rows_first(&w, rt, out, nf, err);
}

/* ---- migrations ------------------------------------------------------------------------- */

/* Apply every migration the database lacks. Each runs in a transaction that
 * first takes a transaction-scoped advisory lock, so two instances starting
 * at once apply each migration exactly once (the second waits, then sees the
 * new version). */
static int op_migrate(pgs *s, PGconn *c, void *ctx, th_error *err)
{
	int *out_version = ctx;
	const int latest = (int)TH_ARRAY_LEN(pg_migrations);
	int ret = 0, version = 0;
	PGresult *r = NULL;
	for (;;) {
		if ((ret = pq_begin(s, c, err)) != 0)
			goto fail;
		if ((ret = pq_do(s, c, "SELECT pg_advisory_xact_lock(" MIGRATION_LOCK_KEY ")", NULL,
		                 "taking the migration lock", err)) != 0)
			goto fail;
		if ((ret = pq_do(s, c,
		                 "CREATE TABLE IF NOT EXISTS schema_migrations ("
		                 " version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)",
		                 NULL, "creating schema_migrations", err)) != 0)
			goto fail;
		if ((ret = pq_get(s, c, "SELECT coalesce(max(version), 0) FROM schema_migrations",
		                  NULL, "reading the schema version", &r, err)) != 0)
			goto fail;
		int64_t v = 0;
		(void)num_parse_i64(PQgetvalue(r, 0, 0), 0, INT32_MAX, &v);
		PQclear(r);
		r = NULL;
		version = (int)v;
		if ((ret = store_check_schema_version(version, latest, err)) != 0)
			goto fail;
		if (version == latest) {
			if ((ret = pq_commit(s, c, "commit", err)) != 0)
				goto fail;
			break;
		}
		/* a migration is several statements: the simple query protocol runs them all */
		r = PQexec(c, pg_migrations[version]);
		if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
			char what[48];
			str_printf(what, sizeof what, "migration %d", version + 1);
			ret = pg_fail(s, c, r, what, err);
			goto fail;
		}
		PQclear(r);
		r = NULL;
		pparams p = {0};
		pp_i64(&p, version + 1);
		pp_i64(&p, time_now_ms());
		ret = pq_do(s, c,
		            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
		            &p, "recording a migration", err);
		pp_free(&p);
		if (ret != 0)
			goto fail;
		if ((ret = pq_commit(s, c, "committing a migration", err)) != 0)
			goto fail;
	}
	if (out_version)
		*out_version = version;
	return 0;
fail:
	PQclear(r);
	pq_rollback(c);
	return ret;
}

int pg_migrate(store *st, int *out_version, th_error *err)
{
	return with_conn(pgs_of(st), op_migrate, out_version, err);
}

static int op_ping(pgs *s, PGconn *c, void *ctx, th_error *err)
{
	(void)ctx;
	return pq_do(s, c, "SELECT 1", NULL, "ping", err);
}

int pg_ping(store *st, th_error *err)
{
	return with_conn(pgs_of(st), op_ping, NULL, err);
}

/* A write that commits like an event batch and leaves nothing (see
 * sq_probe_write): schema_migrations gains version -1 and loses it again. */
static int op_probe_write(pgs *s, PGconn *c, void *ctx, th_error *err)
{
	(void)ctx;
	int ret = pq_do(s, c, "BEGIN", NULL, "write probe: begin", err);
	if (!ret)
		ret = pq_do(s, c,
		            "INSERT INTO schema_migrations (version, applied_at) VALUES (-1, 0)",
		            NULL, "write probe", err);
	if (!ret)
		ret = pq_do(s, c, "DELETE FROM schema_migrations WHERE version = -1", NULL,
		            "write probe", err);
	if (!ret)
		ret = pq_do(s, c, "COMMIT", NULL, "write probe: commit", err);
	if (ret)
		pq_rollback(c);
	return ret;
}

int pg_probe_write(store *st, th_error *err)
{
	return with_conn(pgs_of(st), op_probe_write, NULL, err);
}

static void pg_close(store *st)
{
	pgs *s = pgs_of(st);
	if (!s)
		return;
	for (size_t i = 0; s->conns && i < s->pool_size; i++)
		if (s->conns[i])
			PQfinish(s->conns[i]);
	free(s->conns);
	free(s->busy);
	pg_batch_forget_handlers(s);
	if (s->conninfo) {
		memset(s->conninfo, 0, strlen(s->conninfo)); /* it holds the password */
		free(s->conninfo);
	}
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* ---- generic one-statement operations ---------------------------------------------------- */

int pg_simple(pgs *s, PGconn *c, void *ctx, th_error *err)
{
	simple_op *o = ctx;
	/* o->stmt: prepared once per connection, then run by name */
	PGresult *r = o->stmt ? pq_stmt(s, c, o->stmt, o->sql, o->p, o->what, o->sqlstate, err)
	                      : pq_state(s, c, o->sql, o->p, o->what, o->sqlstate, err);
	if (!r)
		return err ? err->code : TH_ESTORE;
	int ret = 0;
	o->changes = pq_changes(r);
	if (o->rt && o->first)
		ret = pg_read_first(r, o->rt, o->first, o->nf, err);
	else if (o->rt)
		ret = pg_read_rows(r, o->rt, o->out, o->n, err);
	PQclear(r);
	return ret;
}

int pg_get_one(pgs *s, const char *sql, pparams *p, const char *what, const store_rowtype *rt,
               void *out, const char *nf, th_error *err)
{
	memset(out, 0, rt->size);
	simple_op o = {.sql = sql, .p = p, .what = what, .rt = rt, .first = out, .nf = nf};
	return with_conn(s, pg_simple, &o, err);
}

int pg_get_key(pgs *s, const char *sql, const char *key, const char *what, const store_rowtype *rt,
               void *out, const char *nf, th_error *err)
{
	pparams p = {0};
	pp_text(&p, key);
	int ret = pg_get_one(s, sql, &p, what, rt, out, nf, err);
	pp_free(&p);
	return ret;
}

int pg_get_id(pgs *s, const char *sql, const char *id, const char *what, const store_rowtype *rt,
              void *out, const char *entity, th_error *err)
{
	char nf[160];
	return pg_get_key(s, sql, id, what, rt, out, store_not_found_msg(nf, sizeof nf, entity, id),
	                  err);
}

int pg_list_all(pgs *s, const char *sql, pparams *p, const char *what, const store_rowtype *rt,
                void **out, size_t *n, th_error *err)
{
	*out = NULL;
	*n = 0;
	simple_op o = {.sql = sql, .p = p, .what = what, .rt = rt, .out = out, .n = n};
	return with_conn(s, pg_simple, &o, err);
}

/* The dialect's listing: @sql with the values @bind writes (text from
 * outside, so repaired), on a pooled connection. */
static int pg_list_sql(store *st, const char *sql, store_binder bind, const void *ctx,
                       const store_rowtype *rt, void **out, size_t *n, const char *what,
                       th_error *err)
{
	pparams p = {0};
	bind(&(store_params){&pp_repair_params_ops, &p}, ctx);
	int ret = pg_list_all(pgs_of(st), sql, &p, what, rt, out, n, err);
	pp_free(&p);
	return ret;
}

/* ILIKE: with the C collation of our clusters it folds ASCII letters;
 * deliveries.seq (identity) is the insertion order. */
static const store_dialect pg_dialect = {'$', " AND summary ILIKE ", " ORDER BY d.seq DESC LIMIT ",
                                         pg_list_sql};

int pg_command(pgs *s, const char *sql, pparams *p, const char *what, long *changes, th_error *err)
{
	simple_op o = {.sql = sql, .p = p, .what = what};
	int ret = with_conn(s, pg_simple, &o, err);
	if (changes)
		*changes = ret == 0 ? o.changes : 0;
	return ret;
}

int pg_delete_one(pgs *s, const char *sql, const char *key, const char *what, bool show_key,
                  th_error *err)
{
	pparams p = {0};
	pp_text(&p, key);
	long changes = 0;
	int ret = pg_command(s, sql, &p, "deleting", &changes, err);
	pp_free(&p);
	if (ret == 0 && changes == 0)
		ret = store_delete_not_found(err, what, key, show_key);
	return ret;
}

/* clang-format off */
#define PG_OP_ENTRY(op, params, args) .op = pg_##op,
static const struct store_ops pg_ops = {
    .name = "postgresql",
    .close = pg_close,
    .dialect = &pg_dialect,
    STORE_OPS_ALL(PG_OP_ENTRY) /* .migrate = pg_migrate, ... */
};
#undef PG_OP_ENTRY
/* clang-format on */

/* ---- opening -------------------------------------------------------------------------------- */

/* Split our own query parameters (pool_size, statement_timeout) off @url:
 * @s->conninfo gets the rest for libpq, and @s->masked a printable form. */
static int parse_url(pgs *s, const char *url, th_error *err)
{
	int ret = 0;
	buf out;
	buf_init(&out, 8192);
	int64_t pool = POOL_DEFAULT, timeout = STMT_TIMEOUT_DEFAULT;
	const char *env = getenv("TRELLOHOOK_DB_POOL");
	char *copy = NULL;
	if (env && *env && num_parse_i64(env, 1, POOL_MAX, &pool) != 0)
		return th_err(err, TH_ECONFIG,
		              "TRELLOHOOK_DB_POOL must be a number from 1 to %d, "
		              "not \"%.32s\"",
		              POOL_MAX, env);
	const char *q = strchr(url, '?');
	size_t base = q ? (size_t)(q - url) : strlen(url);
	{
		char *b = str_ndup(url, base);
		if (!b)
			return th_err(err, TH_ENOMEM, "out of memory");
		mask_url(b, s->masked, sizeof s->masked);
		free(b);
	}
	if (buf_append(&out, url, base) != 0) {
		ret = th_err(err, TH_ETOOBIG, "DATABASE_URL is too long");
		goto out;
	}
	if (q) {
		copy = str_dup(q + 1);
		if (!copy) {
			ret = th_err(err, TH_ENOMEM, "out of memory");
			goto out;
		}
		bool first = true;
		char *p = copy;
		while (p) {
			char *amp = strchr(p, '&');
			if (amp)
				*amp = '\0';
			char *eq = strchr(p, '=');
			const char *val = eq ? eq + 1 : "";
			size_t klen = eq ? (size_t)(eq - p) : strlen(p);
			if (klen == 9 && !strncmp(p, "pool_size", 9)) {
				if (num_parse_i64(val, 1, POOL_MAX, &pool) != 0) {
					ret = th_err(err, TH_ECONFIG,
					             "DATABASE_URL: pool_size must be a number "
					             "from 1 to %d, not \"%.32s\"",
					             POOL_MAX, val);
					goto out;
				}
			} else if (klen == 17 && !strncmp(p, "statement_timeout", 17)) {
				if (num_parse_i64(val, 0, 86400000, &timeout) != 0) {
					ret = th_err(err, TH_ECONFIG,
					             "DATABASE_URL: statement_timeout is in "
					             "milliseconds (0 to 86400000), not \"%.32s\"",
					             val);
					goto out;
				}
			} else if (*p) {
				if (buf_putc(&out, first ? '?' : '&') != 0 ||
				    buf_puts(&out, p) != 0) {
					ret = th_err(err, TH_ETOOBIG, "DATABASE_URL is too long");
					goto out;
				}
				first = false;
			}
			p = amp ? amp + 1 : NULL;
		}
	}
	s->pool_size = (size_t)pool;
	str_printf(s->options, sizeof s->options, "-c statement_timeout=%lld", (long long)timeout);
	if (!(s->conninfo = buf_detach(&out, NULL)))
		ret = th_err(err, TH_ENOMEM, "out of memory");
out:
	if (copy) {
		memset(copy, 0, strlen(copy));
		free(copy);
	}
	if (out.data)
		memset(out.data, 0, out.len);
	buf_free(&out);
	return ret;
}

/* Open a store on the PostgreSQL database named by @url (postgresql://... or
 * postgres://..., libpq's URI syntax, plus our optional parameters
 * pool_size=N and statement_timeout=MS), connect once to fail early, and
 * migrate. On success *out belongs to the caller (store_close()); it is safe
 * to use from several threads (at most pool_size queries run at once). On
 * failure @err names the URL with its password masked: TH_ECONFIG for a
 * malformed URL, TH_EUNAVAIL when the server cannot be reached, TH_ESTORE
 * when migrating fails. */
int store_pg_open(store **out, const char *url, th_error *err)
{
	*out = NULL;
	if (!url || !*url)
		return th_err(err, TH_ECONFIG, "the PostgreSQL URL is empty");
	pgs *s = calloc(1, sizeof *s);
	if (!s)
		return th_err(err, TH_ENOMEM, "out of memory");
	s->base.ops = &pg_ops;
	store_instance_init(&s->base);
	if (pthread_mutex_init(&s->mu, NULL) != 0) {
		free(s);
		return th_err(err, TH_ENOMEM, "cannot create a mutex");
	}
	if (pthread_cond_init(&s->cv, NULL) != 0) {
		pthread_mutex_destroy(&s->mu);
		free(s);
		return th_err(err, TH_ENOMEM, "cannot create a condition variable");
	}
	int ret = parse_url(s, url, err);
	if (ret != 0)
		goto fail;
	/* libpq's own check of the URI syntax, so a typo is a config error */
	char *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(s->conninfo, &perr);
	if (!opts) {
		char msg[160];
		str_copy(msg, sizeof msg, perr ? perr : "out of memory");
		msg[strcspn(msg, "\n")] = '\0';
		/* libpq quotes the whole URI, password included: cut it off */
		char *quoted = strstr(msg, "\"postgres");
		if (quoted)
			*quoted = '\0';
		PQfreemem(perr);
		ret = th_err(err, TH_ECONFIG, "PostgreSQL URL %s is not valid: %s", s->masked, msg);
		goto fail;
	}
	PQconninfoFree(opts);
	s->conns = calloc(s->pool_size, sizeof *s->conns);
	s->busy = calloc(s->pool_size, sizeof *s->busy);
	if (!s->conns || !s->busy) {
		ret = th_err(err, TH_ENOMEM, "out of memory");
		goto fail;
	}
	if ((ret = with_conn(s, op_migrate, NULL, err)) != 0)
		goto fail;
	*out = &s->base;
	return 0;
fail:
	pg_close(&s->base);
	return ret;
}
